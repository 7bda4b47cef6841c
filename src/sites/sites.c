/*
 * sites.c - App Service (sites.h): the app registry, the data plane that serves each app's live
 * release, zip deploy on the scm host, rollback, and /api/apps.
 *
 * Workload: the data plane is a static file server per app, so a request takes the registry's
 * lock twice (find the app and take a reference on its live release; drop it) and otherwise
 * runs rp_static. Deploys are rare and large: the body streams into an unlinked temporary file
 * (O_TMPFILE, so a crash leaves nothing), unpacking runs on the thread pool, and the switch to
 * the new release is one store write followed by a pointer swap under the lock. Requests that
 * already hold the old release finish on it; the next ones see the new one.
 *
 * Crash safety: a release directory exists before its row, and the row (plus apps.release) is
 * the commit. rp_sites_open removes release directories without a row and apps' directories
 * without an app, so a deploy cut short never becomes visible and never leaks disk.
 */
#include "sites/sites.h"
#include "base/alloc.h"
#include "base/arena.h"
#include "base/err.h"
#include "base/file.h"
#include "base/log.h"
#include "base/rand.h"
#include "base/str.h"
#include "http/static.h"
#include "iam/authn.h"
#include "monitor/audit.h"
#include "sites/appcfg.h"
#include "sites/proc.h"
#include "sites/proxy.h"
#include "sites/unzip.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define PATH_CAP  4096
#define SCOPE_CAP (8 + RP_SITES_NAME_MAX)

/* A release opened for serving; freed when the last request or the registry drops it. */
typedef struct content {
    rp_static *st;
    int64_t release;
    unsigned refs;
} content;

typedef struct app {
    char name[RP_SITES_NAME_MAX + 1];
    char id[37];
    uint32_t uid; /* the app process's user and group id */
    int64_t created, updated;
    content *live;        /* NULL until the first deploy */
    rp_appcfg *cfg;       /* never NULL; replaced whole on a change */
    int64_t next_release; /* the number the next deploy gets */
    int deploying;        /* one deploy (or rollback) at a time */
    struct app *next;
} app;

struct rp_sites {
    char domain[256];
    int port;
    rp_store *store;
    rp_iam *iam;
    char apps_path[PATH_CAP]; /* DATA/apps */
    int apps_fd;
    rp_procs *procs; /* app processes */
    uv_mutex_t mu;   /* guards apps and every app's live, next_release, deploying, updated */
    int mu_ready;
    app *apps;
};

enum { OP_CREATE = 1, OP_DELETE, OP_DEPLOY, OP_ROLLBACK, OP_CONFIG };

typedef struct op op;
struct op {
    rp_sites *s;
    rp_req *req; /* NULL once the request is gone (its arena cleanup) */
    rp_identity who;
    int kind;
    char name[RP_SITES_NAME_MAX + 1];
    char scope[SCOPE_CAP];
    const char *action;
    char id[37];
    uint32_t uid; /* create: the uid the writer gave the app */
    int64_t now;
    int64_t release; /* deploy: the new release; rollback: the target */
    int64_t prev;    /* the live release before */
    int fd;          /* deploy: the upload */
    uint64_t received;
    uv_work_t work;
    int in_work, in_store;
    int waiting_body; /* the request's body is still being read */
    char tomb[64];    /* delete: where the app's directory went */
    int rc;
    char err[256];
    rp_unzip_result res;
    content *newc;
    rp_appcfg *newcfg; /* create, config: the settings being stored */
    char *cfgtext;     /* their stored JSON */
    int64_t prune[RP_SITES_KEEP_RELEASES + 64];
    int nprune;
    op *prev_op, *next_op; /* the loop's list, so loop stop can release them */
};

typedef struct sloop {
    rp_sites *s;
    uv_loop_t *loop;
    rp_store_port *port;
    sqlite3 *db;
    op ops; /* list head */
} sloop;

static __thread sloop *tl;

static const char *const reserved[] = {"login",  "management", "vault",    "scm",
                                       "events", "blob",       "storage",  "api",
                                       "www",    "admin",      "localhost"};

int rp_sites_name_valid(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;

    if (n < RP_SITES_NAME_MIN || n > RP_SITES_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return 0;
    }
    if (name[0] == '-' || name[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcmp(name, reserved[i]) == 0)
            return 0;
    return 1;
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* ---------------------------------------------------------------- registry */

static void content_free(content *c)
{
    if (c == NULL)
        return;
    rp_static_close(c->st);
    rp_free(c);
}

/* Drops one reference (the registry's or a request's). */
static void content_put(rp_sites *s, content *c)
{
    int last;

    if (c == NULL)
        return;
    uv_mutex_lock(&s->mu);
    last = --c->refs == 0;
    uv_mutex_unlock(&s->mu);
    if (last)
        content_free(c);
}

static int release_path(const rp_sites *s, const char *name, int64_t release, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s/releases/%" PRId64, s->apps_path, name, release);

    return n < 0 || (size_t)n >= cap ? RP_ETOOBIG : 0;
}

/* Opens release for serving (one reference, the caller's). */
static int content_open(const rp_sites *s, const char *name, int64_t release, content **out)
{
    char path[PATH_CAP];
    content *c;
    int rc = release_path(s, name, release, path, sizeof(path));

    if (rc != 0)
        return rc;
    c = rp_calloc(1, sizeof(*c));
    if (c == NULL)
        return RP_ENOMEM;
    rc = rp_static_open(path, &c->st);
    if (rc != 0) {
        rp_free(c);
        return rc;
    }
    c->release = release;
    c->refs = 1;
    *out = c;
    return 0;
}

/* Caller holds mu. */
static app *find_locked(rp_sites *s, const char *name, size_t n)
{
    for (app *a = s->apps; a != NULL; a = a->next)
        if (strlen(a->name) == n && memcmp(a->name, name, n) == 0)
            return a;
    return NULL;
}

static void app_free(rp_sites *s, app *a)
{
    if (a == NULL)
        return;
    rp_appcfg_unref(a->cfg);
    content_put(s, a->live);
    rp_free(a);
}

/* ---------------------------------------------------------------- loops and ops */

int rp_sites_loop_start(rp_sites *s, uv_loop_t *loop)
{
    sloop *l;
    int rc;

    if (tl != NULL)
        return RP_EINVAL;
    l = rp_calloc(1, sizeof(*l));
    if (l == NULL)
        return RP_ENOMEM;
    l->s = s;
    l->loop = loop;
    l->ops.prev_op = l->ops.next_op = &l->ops;
    rc = rp_store_port_open(s->store, loop, &l->port);
    if (rc == 0)
        rc = rp_store_reader_open(s->store, &l->db);
    if (rc != 0) {
        rp_store_port_close(l->port);
        sqlite3_close(l->db);
        rp_free(l);
        return rc;
    }
    tl = l;
    return 0;
}

static void op_free(op *o);

static int barrier(sqlite3 *db, void *arg)
{
    (void)db;
    (void)arg;
    return 0;
}

void rp_sites_loop_stop(rp_sites *s)
{
    sloop *l = tl;
    int waited = 0;

    if (l == NULL || l->s != s)
        return;
    rp_store_port_close(l->port);
    /* Ops on the thread pool are released by their after-work callback (it sees tl == NULL);
     * the writer is FIFO, so after one barrier no older write still touches an op. */
    for (op *o = l->ops.next_op; o != &l->ops;) {
        op *next = o->next_op;
        if (o->in_store && !waited) {
            (void)rp_store_write_sync(s->store, barrier, NULL);
            waited = 1;
        }
        if (o->in_work) {
            /* Its after-work callback frees it; the list head goes away with this loop. */
            o->prev_op->next_op = o->next_op;
            o->next_op->prev_op = o->prev_op;
            o->prev_op = o->next_op = o;
        } else {
            op_free(o);
        }
        o = next;
    }
    sqlite3_close(l->db);
    tl = NULL;
    rp_free(l);
}

static void deploy_end(rp_sites *s, const char *name);

static void op_cancel(void *arg)
{
    op **slot = arg;
    op *o = *slot;

    if (o == NULL)
        return;
    o->req = NULL;
    /* Gone before its body arrived: nothing else will ever complete this op. */
    if (o->waiting_body) {
        *slot = NULL;
        if (o->kind == OP_DEPLOY)
            deploy_end(o->s, o->name);
        op_free(o);
    }
}

static op *op_new(rp_sites *s, rp_req *req, const rp_identity *who, int kind, const char *action,
                  const char *name)
{
    op **slot;
    op *o;

    if (tl == NULL)
        return NULL;
    slot = rp_arena_alloc(req->arena, sizeof(*slot));
    o = rp_calloc(1, sizeof(*o));
    if (slot == NULL || o == NULL || rp_arena_add_cleanup(req->arena, op_cancel, slot) != 0) {
        rp_free(o);
        return NULL;
    }
    *slot = o;
    req->handler_data = slot;
    o->s = s;
    o->req = req;
    o->who = *who;
    o->kind = kind;
    o->action = action;
    o->fd = -1;
    o->now = now_s();
    rp_strlcpy(o->name, name, sizeof(o->name));
    snprintf(o->scope, sizeof(o->scope), "/apps/%s", name);
    o->prev_op = &tl->ops;
    o->next_op = tl->ops.next_op;
    tl->ops.next_op->prev_op = o;
    tl->ops.next_op = o;
    return o;
}

static void op_free(op *o)
{
    if (o == NULL)
        return;
    o->prev_op->next_op = o->next_op;
    o->next_op->prev_op = o->prev_op;
    if (o->req != NULL) {
        op **slot = o->req->handler_data;
        if (slot != NULL && *slot == o)
            *slot = NULL;
    }
    if (o->fd >= 0)
        close(o->fd);
    content_put(o->s, o->newc);
    rp_appcfg_unref(o->newcfg);
    free(o->cfgtext); /* jansson's allocator */
    rp_free(o);
}

/* ---------------------------------------------------------------- JSON */

static void host_url(const rp_sites *s, const char *name, const char *sub, char *out, size_t cap)
{
    if (s->port == 443 || s->port == 0)
        snprintf(out, cap, "https://%s%s.%s/", name, sub, s->domain);
    else
        snprintf(out, cap, "https://%s%s.%s:%d/", name, sub, s->domain, s->port);
}

/* Caller holds mu (reads a's fields). */
static json_t *app_json_locked(const rp_sites *s, const app *a)
{
    char url[600], scm[600], host[400], id[SCOPE_CAP];
    json_t *o, *view = rp_appcfg_view(a->cfg);

    host_url(s, a->name, "", url, sizeof(url));
    host_url(s, a->name, ".scm", scm, sizeof(scm));
    snprintf(host, sizeof(host), "%s.%s", a->name, s->domain);
    snprintf(id, sizeof(id), "/apps/%s", a->name);
    o = json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:s,s:b,s:I,s:s,s:I,s:I}}", "name", a->name, "id", id,
                  "objectId", a->id, "properties", "defaultHostName", host, "url", url, "scmUri",
                  scm, "httpsOnly", 1, "release", (json_int_t)(a->live ? a->live->release : 0),
                  "state", a->live ? "Running" : "Empty", "createdAt", (json_int_t)a->created,
                  "updatedAt", (json_int_t)a->updated);
    if (o == NULL || view == NULL ||
        json_object_update(json_object_get(o, "properties"), view) != 0) {
        json_decref(o);
        o = NULL;
    }
    json_decref(view);
    return o;
}

static json_t *app_json(rp_sites *s, const char *name)
{
    json_t *o = NULL;
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL)
        o = app_json_locked(s, a);
    uv_mutex_unlock(&s->mu);
    return o;
}

static void iso_time(int64_t t, char out[32])
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (gmtime_r(&tt, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        rp_strlcpy(out, "1970-01-01T00:00:00Z", 32);
}

/* A deployment record in the shape Kudu's /api/deployments uses, plus rampart's counts. */
static json_t *deployment_json(int64_t release, int64_t created, const char *by, int64_t files,
                               int64_t bytes, int64_t skipped, int active)
{
    char id[24], t[32];

    snprintf(id, sizeof(id), "%" PRId64, release);
    iso_time(created, t);
    return json_pack("{s:s,s:I,s:i,s:s,s:b,s:b,s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "id", id, "release",
                     (json_int_t)release, "status", 4, "status_text", "Success", "complete", 1,
                     "active", active, "author", by ? by : "", "deployer", "ZipDeploy",
                     "received_time", t, "end_time", t, "files", (json_int_t)files, "bytes",
                     (json_int_t)bytes, "skipped", (json_int_t)skipped);
}

static void fail(rp_req *req, int status, const char *code, const char *msg)
{
    if (req != NULL)
        rp_resp_error(req, status, code, msg);
}

/* ---------------------------------------------------------------- answering ops */

static void op_answer(op *o, int status, json_t *reply)
{
    if (o->req != NULL) {
        if (reply != NULL)
            rp_resp_json(o->req, status, reply);
        else
            rp_resp_send(o->req, status, NULL, NULL, 0);
    } else {
        json_decref(reply);
    }
    op_free(o);
}

static json_t *op_reply(op *o)
{
    if (o->kind == OP_DEPLOY)
        return deployment_json(o->release, o->now, o->who.id, o->res.files, (int64_t)o->res.bytes,
                               o->res.skipped, 1);
    if (o->kind == OP_DELETE)
        return NULL;
    return app_json(o->s, o->name);
}

static void op_audited(int status, void *arg)
{
    op *o = arg;

    /* Fail closed: a change is reported done only once its record is on disk. */
    if (status != 0) {
        fail(o->req, 500, "InternalError", "the change was made but could not be audited");
        op_free(o);
        return;
    }
    op_answer(o, o->kind == OP_CREATE ? 201 : o->kind == OP_DELETE ? 204 : 200, op_reply(o));
}

/* Records the outcome; a success is answered once its record is durable. */
static void op_audit(op *o, int rc, const char *why)
{
    json_t *d = json_pack("{s:s}", "app", o->name);
    int durable = rc == 0;

    if (d != NULL && (o->kind == OP_DEPLOY || o->kind == OP_ROLLBACK) && rc == 0) {
        json_object_set_new(d, "release", json_integer(o->release));
        json_object_set_new(d, "previous", json_integer(o->prev));
    }
    if (d != NULL && o->kind == OP_DEPLOY && rc == 0) {
        json_object_set_new(d, "files", json_integer(o->res.files));
        json_object_set_new(d, "bytes", json_integer((json_int_t)o->res.bytes));
        json_object_set_new(d, "skipped", json_integer(o->res.skipped));
    }
    if (d != NULL && rc != 0)
        json_object_set_new(d, "error", json_string(why ? why : rp_strerror(rc)));
    if (rp_iam_audit(o->s->iam, o->req, &o->who, "change", o->action, o->scope,
                     rc == 0 ? "success" : "failure", d, durable ? RP_AUDIT_DURABLE : 0,
                     durable ? op_audited : NULL, o) != 0 &&
        durable) {
        json_decref(d);
        fail(o->req, 500, "InternalError", "the change was made but could not be audited");
        op_free(o);
        return;
    }
    json_decref(d);
}

/* ---------------------------------------------------------------- thread-pool chores */

typedef struct chore {
    uv_work_t work;
    rp_sites *s;
    char dir[PATH_CAP]; /* removed recursively, relative to apps_fd */
} chore;

static void chore_work(uv_work_t *w)
{
    chore *c = w->data;
    char *slash = strrchr(c->dir, '/');
    int fd = c->s->apps_fd, rc;

    /* rmtree takes one component: open what is above it (our own directories) first. */
    if (slash != NULL) {
        *slash = '\0';
        fd = openat(c->s->apps_fd, c->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return; /* gone already */
    }
    rc = rp_unzip_rmtree(fd, slash != NULL ? slash + 1 : c->dir);
    if (fd != c->s->apps_fd)
        close(fd);

    if (rc != 0)
        rp_log_err("sites.cleanup", "a directory could not be removed", rc);
}

static void chore_done(uv_work_t *w, int status)
{
    (void)status;
    rp_free(w->data);
}

/* Removes apps/<dir> later, off the loop; best effort (start-up cleans up what is left). */
static void remove_later(rp_sites *s, const char *dir)
{
    chore *c = tl ? rp_calloc(1, sizeof(*c)) : NULL;

    if (c == NULL)
        return;
    c->s = s;
    rp_strlcpy(c->dir, dir, sizeof(c->dir));
    c->work.data = c;
    if (uv_queue_work(tl->loop, &c->work, chore_work, chore_done) != 0)
        rp_free(c);
}

static void remove_release_later(rp_sites *s, const char *name, int64_t release)
{
    char dir[PATH_CAP];

    snprintf(dir, sizeof(dir), "%s/releases/%" PRId64, name, release);
    remove_later(s, dir);
}

/* ---------------------------------------------------------------- store writes */

/* sql prepared with the app's name bound to ?1, or NULL. */
static sqlite3_stmt *prep(sqlite3 *db, const char *sql, const char *name)
{
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return NULL;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return st;
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : RP_EDB;

    sqlite3_finalize(st);
    return rc;
}

/* mkdir apps/NAME and apps/NAME/releases; a stale directory of that name is removed first. */
static int make_app_dirs(rp_sites *s, const char *name)
{
    char rel[PATH_CAP];

    if (mkdirat(s->apps_fd, name, 0700) != 0) {
        if (errno != EEXIST)
            return RP_EIO;
        if (rp_unzip_rmtree(s->apps_fd, name) != 0 || mkdirat(s->apps_fd, name, 0700) != 0)
            return RP_EIO;
    }
    snprintf(rel, sizeof(rel), "%s/releases", name);
    if (mkdirat(s->apps_fd, rel, 0755) != 0 && errno != EEXIST)
        return RP_EIO;
    return 0;
}

static int create_write(sqlite3 *db, void *arg)
{
    op *o = arg;
    sqlite3_stmt *st = NULL;

    int64_t uid = RP_SITES_UID_BASE;

    /* The next uid after every app's: on the one writer thread, so two creates cannot pick
     * the same one (the unique index would refuse it anyway). */
    if (sqlite3_prepare_v2(db, "SELECT MAX(uid) FROM apps", -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return RP_EDB;
    }
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) >= uid)
        uid = sqlite3_column_int64(st, 0) + 1;
    sqlite3_finalize(st);
    if (uid > (int64_t)RP_SITES_UID_BASE + 0xFFFFFF)
        return RP_ETOOBIG;
    if ((st = prep(db,
                   "INSERT INTO apps (name, id, release, next_release, config,"
                   " created_at, updated_at, uid) VALUES (?1, ?2, 0, 1, ?4, ?3, ?3, ?5)",
                   o->name)) == NULL)
        return RP_EDB;
    sqlite3_bind_text(st, 2, o->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, o->now);
    sqlite3_bind_text(st, 4, o->cfgtext ? o->cfgtext : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, uid);
    if (sqlite3_step(st) != SQLITE_DONE) {
        int ext = sqlite3_extended_errcode(db);
        sqlite3_finalize(st);
        return ext == SQLITE_CONSTRAINT_PRIMARYKEY ? RP_EEXIST : RP_EDB;
    }
    sqlite3_finalize(st);
    o->uid = (uint32_t)uid;
    /* Here, on the one writer thread, so two creates (or a create and a delete) of one name
     * cannot interleave their directory work; a failure rolls the row back. */
    return make_app_dirs(o->s, o->name);
}

static int delete_write(sqlite3 *db, void *arg)
{
    op *o = arg;
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(db, "DELETE FROM app_releases WHERE app = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        sqlite3_finalize(st);
        return RP_EDB;
    }
    sqlite3_bind_text(st, 1, o->name, -1, SQLITE_STATIC);
    if (step_done(st) != 0)
        return RP_EDB;
    if ((st = prep(db, "DELETE FROM apps WHERE name = ?1", o->name)) == NULL)
        return RP_EDB;
    if (step_done(st) != 0)
        return RP_EDB;
    if (sqlite3_changes(db) != 1)
        return RP_ENOENT;
    /* Out of the name's way at once, serialised with creates; removed later off the loop. */
    if (rp_random_uuid(o->tomb + 6) != 0)
        return RP_EIO;
    memcpy(o->tomb, ".gone-", 6);
    if (renameat(o->s->apps_fd, o->name, o->s->apps_fd, o->tomb) != 0 && errno != ENOENT)
        return RP_EIO;
    return 0;
}

/* The release row, the switch, and the rows of releases past the ones kept. */
static int release_write(sqlite3 *db, void *arg)
{
    op *o = arg;
    sqlite3_stmt *st = NULL;
    int rc;

    if ((st = prep(db,
                   "UPDATE apps SET release = ?2, updated_at = ?3,"
                   " next_release = max(next_release, ?2 + 1) WHERE name = ?1",
                   o->name)) == NULL)
        return RP_EDB;
    sqlite3_bind_int64(st, 2, o->release);
    sqlite3_bind_int64(st, 3, o->now);
    if (step_done(st) != 0)
        return RP_EDB;
    if (sqlite3_changes(db) != 1)
        return RP_ENOENT; /* deleted meanwhile */
    if (o->kind == OP_ROLLBACK)
        return 0; /* the row exists (checked by the caller, and kept: nothing prunes it) */
    if ((st = prep(db,
                   "INSERT INTO app_releases (app, seq, created_at, files, bytes, skipped,"
                   " principal) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                   o->name)) == NULL)
        return RP_EDB;
    sqlite3_bind_int64(st, 2, o->release);
    sqlite3_bind_int64(st, 3, o->now);
    sqlite3_bind_int64(st, 4, o->res.files);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)o->res.bytes);
    sqlite3_bind_int64(st, 6, o->res.skipped);
    sqlite3_bind_text(st, 7, o->who.id, -1, SQLITE_STATIC);
    if (step_done(st) != 0)
        return RP_EDB;
    /* Older releases beyond the ones kept for rollback go (their directories after commit). */
    if ((st = prep(db,
                   "SELECT seq FROM app_releases WHERE app = ?1 ORDER BY seq DESC"
                   " LIMIT -1 OFFSET ?2",
                   o->name)) == NULL)
        return RP_EDB;
    sqlite3_bind_int(st, 2, RP_SITES_KEEP_RELEASES);
    o->nprune = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (o->nprune < (int)(sizeof(o->prune) / sizeof(o->prune[0])))
            o->prune[o->nprune++] = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return RP_EDB;
    for (int i = 0; i < o->nprune; i++) {
        if ((st = prep(db, "DELETE FROM app_releases WHERE app = ?1 AND seq = ?2", o->name)) ==
            NULL)
            return RP_EDB;
        sqlite3_bind_int64(st, 2, o->prune[i]);
        if (step_done(st) != 0)
            return RP_EDB;
    }
    return 0;
}

static int config_write(sqlite3 *db, void *arg)
{
    op *o = arg;
    sqlite3_stmt *st = NULL;

    if ((st = prep(db, "UPDATE apps SET config = ?2, updated_at = ?3 WHERE name = ?1", o->name)) ==
        NULL)
        return RP_EDB;
    sqlite3_bind_text(st, 2, o->cfgtext, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, o->now);
    if (step_done(st) != 0)
        return RP_EDB;
    return sqlite3_changes(db) == 1 ? 0 : RP_ENOENT;
}

static void op_written(int status, void *arg);

static void op_submit(op *o, rp_store_write_fn fn)
{
    int rc;

    o->in_store = 1;
    rc = rp_store_submit(tl->port, fn, o, op_written);
    if (rc != 0) {
        o->in_store = 0;
        op_written(rc, o);
    }
}

/* Puts c live for the app (the app takes over the caller's reference). */
static int64_t switch_live(rp_sites *s, const char *name, content *c, int64_t now, int deploy_done)
{
    content *old = NULL;
    int64_t prev = 0;
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL) {
        old = a->live;
        prev = old ? old->release : 0;
        a->live = c;
        a->updated = now;
        if (c != NULL && c->release >= a->next_release)
            a->next_release = c->release + 1;
        if (deploy_done)
            a->deploying = 0;
        c = NULL;
    }
    uv_mutex_unlock(&s->mu);
    content_put(s, old);
    content_put(s, c); /* the app went away meanwhile */
    return prev;
}

/*
 * Brings app name's process in line with its settings and live release: (re)started from the
 * release with appCommandLine, or stopped when there is none of either.
 */
static void sync_process(rp_sites *s, const char *name)
{
    char dir[PATH_CAP], logs[PATH_CAP], host[300], cmd[RP_PROC_COMMAND_MAX + 1];
    int run = 0;
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL && a->live != NULL && rp_appcfg_command(a->cfg) != NULL &&
        release_path(s, name, a->live->release, dir, sizeof(dir)) == 0) {
        rp_strlcpy(cmd, rp_appcfg_command(a->cfg), sizeof(cmd));
        run = 1;
    }
    /* Posted under the lock: the supervisor gets the messages of concurrent deploys, config
     * changes and deletes in the order their state changed here. */
    if (!run) {
        rp_procs_stop(s->procs, name);
    } else if ((size_t)snprintf(logs, sizeof(logs), "%.3900s/%.60s/logs", s->apps_path, name) <
               sizeof(logs)) {
        snprintf(host, sizeof(host), "%s.%s", name, s->domain);
        if (rp_procs_set(s->procs, name, cmd, dir, logs, host) != 0)
            rp_log_msg(RP_LOG_ERROR, "sites.process", "an app's process could not be scheduled");
    }
    uv_mutex_unlock(&s->mu);
}

static void deploy_end(rp_sites *s, const char *name)
{
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL)
        a->deploying = 0;
    uv_mutex_unlock(&s->mu);
}

static void op_written(int status, void *arg)
{
    op *o = arg;
    rp_sites *s = o->s;

    o->in_store = 0;
    switch (o->kind) {
    case OP_CREATE:
        if (status == 0) {
            app *a = rp_calloc(1, sizeof(*a));
            if (a == NULL) {
                status = RP_ENOMEM;
                break;
            }
            rp_strlcpy(a->name, o->name, sizeof(a->name));
            rp_strlcpy(a->id, o->id, sizeof(a->id));
            a->created = a->updated = o->now;
            a->next_release = 1;
            a->uid = o->uid;
            a->cfg = o->newcfg;
            o->newcfg = NULL;
            uv_mutex_lock(&s->mu);
            if (find_locked(s, o->name, strlen(o->name)) == NULL) {
                a->next = s->apps;
                s->apps = a;
                a = NULL;
            }
            uv_mutex_unlock(&s->mu);
            app_free(s, a);
        }
        break;
    case OP_CONFIG:
        if (status == 0) {
            rp_appcfg *old = NULL;
            app *a;
            uv_mutex_lock(&s->mu);
            a = find_locked(s, o->name, strlen(o->name));
            if (a != NULL) {
                old = a->cfg;
                a->cfg = o->newcfg;
                a->updated = o->now;
                o->newcfg = NULL;
            }
            /* A changed command starts, restarts or stops the process; other settings leave
             * it alone. Compared under the lock: a delete may free a right after it. */
            int changed = 0;
            if (old != NULL && a != NULL) {
                const char *was = rp_appcfg_command(old), *now = rp_appcfg_command(a->cfg);
                changed = (was == NULL) != (now == NULL) || (was != NULL && strcmp(was, now) != 0);
            }
            uv_mutex_unlock(&s->mu);
            if (changed)
                sync_process(s, o->name);
            rp_appcfg_unref(old);
        }
        break;
    case OP_DELETE:
        if (status != 0)
            deploy_end(s, o->name);
        if (status == 0) {
            app **pp, *gone = NULL;
            uv_mutex_lock(&s->mu);
            for (pp = &s->apps; *pp != NULL; pp = &(*pp)->next) {
                if (strcmp((*pp)->name, o->name) == 0) {
                    gone = *pp;
                    *pp = gone->next;
                    break;
                }
            }
            uv_mutex_unlock(&s->mu);
            app_free(s, gone);
            rp_procs_stop(s->procs, o->name);
            remove_later(s, o->tomb);
        }
        break;
    case OP_DEPLOY:
    case OP_ROLLBACK:
        if (status == 0) {
            o->prev = switch_live(s, o->name, o->newc, o->now, 1);
            o->newc = NULL;
            sync_process(s, o->name);
            for (int i = 0; i < o->nprune; i++)
                remove_release_later(s, o->name, o->prune[i]);
        } else {
            deploy_end(s, o->name);
            if (o->kind == OP_DEPLOY)
                remove_release_later(s, o->name, o->release);
        }
        break;
    default: break;
    }
    if (status != 0) {
        op_audit(o, status, NULL);
        if (status == RP_ENOENT)
            fail(o->req, 404, "NotFound", "no such app");
        else if (status == RP_EEXIST)
            fail(o->req, 409, "Conflict", "the app exists already");
        else
            fail(o->req, 500, "InternalError", "the change could not be stored");
        op_free(o);
        return;
    }
    op_audit(o, 0, NULL);
}

/* ---------------------------------------------------------------- data plane */

static void not_found(rp_req *req, const char *code, const char *msg)
{
    rp_resp_error(req, 404, code, msg);
}

/* Takes a reference on the app's settings (and live release when content is not NULL). 0 when
 * there is no such app. */
static int app_get(rp_sites *s, const char *name, size_t n, rp_appcfg **cfg, content **c)
{
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, n);
    if (a != NULL) {
        *cfg = rp_appcfg_ref(a->cfg);
        if (c != NULL && a->live != NULL) {
            *c = a->live;
            (*c)->refs++;
        }
    }
    uv_mutex_unlock(&s->mu);
    return a != NULL;
}

/* Access restrictions: 1 to go on; otherwise answered 403 "Ip Forbidden" as Azure does. */
static int access_ok(rp_sites *s, rp_req *req, const rp_appcfg *cfg, int scm, const char *name)
{
    rp_access_result res;
    char msg[200];

    if (rp_appcfg_access(cfg, scm, req, &res))
        return 1;
    /* The caller's own address, which it knows anyway; the rule that matched is not shown. */
    (void)rp_resp_reason(req, "Ip Forbidden");
    if (req->client_ip != NULL)
        (void)rp_resp_header(req, "x-ms-forbidden-ip", req->client_ip);
    snprintf(msg, sizeof(msg), "The web app you have attempted to reach has blocked your access.");
    rp_resp_error(req, 403, "IpForbidden", msg);
    {
        char scope[SCOPE_CAP];
        json_t *d = json_pack("{s:s,s:s,s:s}", "host", scm ? "scm" : "site", "rule", res.rule,
                              "client", req->client_ip ? req->client_ip : "");
        snprintf(scope, sizeof(scope), "/apps/%s", name);
        (void)rp_iam_audit(s->iam, req, NULL, "authz", "Microsoft.Web/sites/ipSecurityRestriction",
                           scope, "denied", d, 0, NULL, NULL);
        json_decref(d);
    }
    return 0;
}

/* A token list as Access-Control-Request-Headers sends it: echoed back only if it is one. */
static int token_list(rp_str v)
{
    if (v.n == 0 || v.n > 1024)
        return 0;
    for (size_t i = 0; i < v.n; i++) {
        unsigned char ch = (unsigned char)v.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == ',' || ch == ' '))
            return 0;
    }
    return 1;
}

/*
 * CORS (appcfg.h "cors"): adds the headers for an allowed Origin; answers a preflight (OPTIONS
 * with Access-Control-Request-Method) itself. 1 when the request goes on.
 */
static int cors(rp_req *req, const rp_appcfg *cfg)
{
    rp_str origin = rp_req_header(req, "origin");
    rp_str method = rp_req_header(req, "access-control-request-method");
    int preflight = req->method == RP_METHOD_OPTIONS && method.p != NULL;
    int allowed, credentials = 0;
    char value[300];

    (void)rp_resp_header(req, "Vary", "Origin");
    if (origin.p == NULL || origin.n >= sizeof(value)) {
        if (req->method != RP_METHOD_OPTIONS)
            return 1;
        (void)rp_resp_header(req, "Allow", "GET, HEAD, OPTIONS");
        rp_resp_send(req, 204, NULL, NULL, 0);
        return 0;
    }
    allowed = rp_appcfg_cors(cfg, origin.p, origin.n, &credentials);
    if (!allowed) {
        if (!preflight && req->method != RP_METHOD_OPTIONS)
            return 1; /* served without CORS headers: the browser keeps it from the page */
        rp_resp_error(req, 403, "CorsOriginNotAllowed", "this origin may not call the app");
        return 0;
    }
    memcpy(value, origin.p, origin.n);
    value[origin.n] = '\0';
    (void)rp_resp_header(req, "Access-Control-Allow-Origin", value);
    if (credentials)
        (void)rp_resp_header(req, "Access-Control-Allow-Credentials", "true");
    if (req->method != RP_METHOD_OPTIONS)
        return 1;
    (void)rp_resp_header(req, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
    {
        rp_str h = rp_req_header(req, "access-control-request-headers");
        if (h.p != NULL && h.n < sizeof(value) && token_list(h)) {
            memcpy(value, h.p, h.n);
            value[h.n] = '\0';
            (void)rp_resp_header(req, "Access-Control-Allow-Headers", value);
        }
    }
    (void)rp_resp_header(req, "Access-Control-Max-Age", "3600");
    rp_resp_send(req, 204, NULL, NULL, 0);
    return 0;
}

/* The verified client certificate as X-ARR-ClientCert carries it: base64 DER, one line. */
static char *cert_b64(rp_req *req)
{
    X509 *x = rp_req_peer_cert(req);
    unsigned char *der = NULL;
    char *out = NULL;
    int n = x ? i2d_X509(x, &der) : -1;

    if (n > 0 && n < 65536) {
        out = malloc(((size_t)n + 2) / 3 * 4 + 1);
        if (out != NULL)
            EVP_EncodeBlock((unsigned char *)out, der, n);
    }
    OPENSSL_free(der);
    return out;
}

static void site_request(rp_req *req)
{
    rp_sites *s = req->route_data;
    rp_appcfg *cfg = NULL;
    content *c = NULL;
    int trusted;

    if (!app_get(s, req->host_label.p, req->host_label.n, &cfg, &c)) {
        not_found(req, "SiteNotFound", "there is no app at this address");
        return;
    }
    {
        char name[RP_SITES_NAME_MAX + 1];
        size_t n = req->host_label.n < sizeof(name) ? req->host_label.n : sizeof(name) - 1;
        memcpy(name, req->host_label.p, n);
        name[n] = '\0';
        if (!access_ok(s, req, cfg, 0, name))
            goto out;
    }
    /* An app of the older TLS version is refused whatever the SNI said (a client can leave SNI
     * out, and then no per-host policy applied at the handshake). */
    if (rp_appcfg_min_tls(cfg) == 13 && req->secure && rp_req_tls_version(req) < 13) {
        rp_resp_close(req);
        rp_resp_error(req, 421, "MisdirectedRequest", "this app needs TLS 1.3");
        goto out;
    }
    /* Before the certificate check: browsers send preflights without credentials. A process
     * app without CORS settings answers its own OPTIONS and CORS headers. */
    if ((rp_appcfg_command(cfg) == NULL || rp_appcfg_cors_set(cfg)) && !cors(req, cfg))
        goto out;
    if (!rp_appcfg_cert_check(cfg, req->path, rp_req_peer_cert(req), &trusted)) {
        rp_resp_error(req, 403, "ClientCertificateRequired",
                      "this app requires a client certificate issued by one of its trusted CAs");
        goto out;
    }
    if (c == NULL) {
        not_found(req, "NoContent", "nothing has been deployed to this app yet");
        goto out;
    }
    if (rp_appcfg_command(cfg) != NULL) {
        char name[RP_SITES_NAME_MAX + 1], *b64 = NULL;
        int running, port;
        size_t n = req->host_label.n < sizeof(name) ? req->host_label.n : sizeof(name) - 1;
        memcpy(name, req->host_label.p, n);
        name[n] = '\0';
        port = rp_procs_port(s->procs, name, &running);
        if (port == 0) {
            rp_resp_error(req, 503, "AppNotRunning", "the app's process is not running");
            goto out;
        }
        if (trusted)
            b64 = cert_b64(req);
        rp_proxy_forward(req, port, b64);
        free(b64);
        goto out;
    }
    if (req->method != RP_METHOD_GET && req->method != RP_METHOD_HEAD) {
        rp_resp_header(req, "Allow", "GET, HEAD, OPTIONS");
        rp_resp_error(req, 405, "MethodNotAllowed", "a static app answers GET and HEAD");
        goto out;
    }
    /* Synchronous: the file is open (or the answer sent) before the reference goes. */
    rp_static_serve(c->st, req);
out:
    content_put(s, c);
    rp_appcfg_unref(cfg);
}

void rp_sites_tls_policy(void *arg, const char *host, rp_tls_host_policy *out)
{
    rp_sites *s = arg;
    size_t hn = strlen(host), dn = strlen(s->domain), n;
    rp_appcfg *cfg = NULL;
    int scm = 0;

    /* NAME.D or NAME.scm.D */
    if (hn <= dn + 1 || host[hn - dn - 1] != '.' || strcasecmp(host + hn - dn, s->domain) != 0)
        return;
    n = hn - dn - 1;
    if (n > 4 && memcmp(host + n - 4, ".scm", 4) == 0) {
        n -= 4;
        scm = 1;
    }
    if (memchr(host, '.', n) != NULL || !app_get(s, host, n, &cfg, NULL))
        return;
    out->min_version = rp_appcfg_min_tls(cfg);
    /* The scm host authenticates with tokens; certificates are the site's setting. */
    out->client_cert = !scm && rp_appcfg_cert_mode(cfg) != RP_CERT_OFF;
    rp_appcfg_unref(cfg);
}

/* ---------------------------------------------------------------- deploy (scm host) */

static int authenticate(rp_sites *s, rp_req *req, rp_identity *who)
{
    rp_authn_policy pol = {RP_AUTHN_ADMIN | RP_AUTHN_BEARER | RP_AUTHN_CLIENT_CERT, "management"};
    rp_authn_status st = rp_authn(s->iam, req, &pol, who);

    if (st != RP_AUTHN_OK) {
        rp_authn_reply(req, st);
        return 0;
    }
    return 1;
}

static int allowed(rp_sites *s, rp_req *req, const rp_identity *who, const char *action,
                   const char *name)
{
    char scope[SCOPE_CAP];

    snprintf(scope, sizeof(scope), "/apps/%s", name);
    if (rp_authz(s->iam, req, who, action, 0, scope))
        return 1;
    rp_authz_reply(req, who, action, scope);
    return 0;
}

static int deploy_data(rp_req *req, const char *data, size_t len)
{
    op **slot = req->handler_data;
    op *o = slot ? *slot : NULL;

    if (o == NULL || o->fd < 0)
        return -1;
    if (rp_file_write_all(o->fd, data, len) != 0) {
        o->rc = RP_EIO;
        return -1;
    }
    o->received += len;
    return 0;
}

static void unpack_work(uv_work_t *w)
{
    op *o = w->data;
    char rel[PATH_CAP], seq[24];
    rp_unzip_limits lim;
    int relfd;

    rp_unzip_limits_default(&lim);
    snprintf(rel, sizeof(rel), "%s/releases", o->name);
    snprintf(seq, sizeof(seq), "%" PRId64, o->release);
    relfd = openat(o->s->apps_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (relfd < 0) {
        o->rc = RP_EIO;
        snprintf(o->err, sizeof(o->err), "the app's release directory is missing");
        return;
    }
    if (lseek(o->fd, 0, SEEK_SET) != 0) {
        close(relfd);
        o->rc = RP_EIO;
        return;
    }
    /* A directory left by a deploy that crashed before its commit has the same number. */
    (void)rp_unzip_rmtree(relfd, seq);
    o->rc = rp_unzip_extract(o->fd, relfd, seq, &lim, NULL, NULL, NULL, &o->res, o->err,
                             sizeof(o->err));
    /* The commit must not point at files a power cut could still lose. */
    if (o->rc == 0 && syncfs(relfd) != 0) {
        o->rc = RP_EIO;
        snprintf(o->err, sizeof(o->err), "the new release could not be written to disk");
    }
    close(relfd);
    if (o->rc == 0) {
        o->rc = content_open(o->s, o->name, o->release, &o->newc);
        if (o->rc != 0)
            snprintf(o->err, sizeof(o->err), "the new release cannot be opened");
    }
}

static void unpack_done(uv_work_t *w, int status)
{
    op *o = w->data;

    o->in_work = 0;
    close(o->fd);
    o->fd = -1;
    if (tl == NULL) {
        /* The loop stopped meanwhile: nothing is committed; start-up removes the directory. */
        o->prev_op->next_op = o->next_op;
        o->next_op->prev_op = o->prev_op;
        o->prev_op = o->next_op = o;
        op_free(o);
        return;
    }
    if (status != 0 && o->rc == 0)
        o->rc = RP_EIO;
    if (o->rc != 0) {
        int code = o->rc == RP_ETOOBIG ? 413 : o->rc == RP_EIO || o->rc == RP_ENOMEM ? 500 : 400;
        const char *msg = o->err[0] ? o->err : "the archive could not be unpacked";
        deploy_end(o->s, o->name);
        op_audit(o, o->rc, msg);
        fail(o->req, code,
             o->rc == RP_ETOOBIG  ? "ArchiveTooLarge"
             : code == 500        ? "InternalError"
             : o->rc == RP_EPARSE ? "InvalidArchive"
                                  : "UnsafeArchive",
             msg);
        op_free(o);
        return;
    }
    op_submit(o, release_write);
}

static void deploy_body_done(rp_req *req)
{
    op **slot = req->handler_data;
    op *o = slot ? *slot : NULL;

    if (o == NULL)
        return;
    o->waiting_body = 0;
    if (o->received == 0) {
        deploy_end(o->s, o->name);
        fail(req, 400, "InvalidArchive", "the request has no body: send the zip file");
        op_free(o);
        return;
    }
    o->work.data = o;
    o->in_work = 1;
    if (uv_queue_work(tl->loop, &o->work, unpack_work, unpack_done) != 0) {
        o->in_work = 0;
        deploy_end(o->s, o->name);
        fail(req, 500, "InternalError", "the deploy could not be started");
        op_free(o);
    }
}

static void zipdeploy(rp_sites *s, rp_req *req, const rp_identity *who, const char *name)
{
    rp_str ct = rp_req_header(req, "content-type");
    char dir[RP_SITES_NAME_MAX + 1];
    int busy = 0;
    op *o;
    app *a;

    if (ct.p != NULL && !rp_str_has_prefix(ct, "application/zip") &&
        !rp_str_has_prefix(ct, "application/octet-stream") &&
        !rp_str_has_prefix(ct, "application/x-zip-compressed")) {
        rp_resp_error(req, 415, "UnsupportedMediaType", "send the zip as application/zip");
        return;
    }
    o = op_new(s, req, who, OP_DEPLOY, "Microsoft.Web/sites/publish/action", name);
    if (o == NULL) {
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL) {
        busy = a->deploying;
        if (!busy) {
            a->deploying = 1;
            o->release = a->next_release++;
        }
    }
    uv_mutex_unlock(&s->mu);
    if (a == NULL || busy) {
        if (a == NULL)
            rp_resp_error(req, 404, "NotFound", "no such app");
        else
            rp_resp_error(req, 409, "Conflict", "another deploy to this app is running");
        op_free(o);
        return;
    }
    rp_strlcpy(dir, name, sizeof(dir));
    /* Unlinked from the start: an upload never outlives its request, not even across a crash. */
    o->fd = openat(s->apps_fd, dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (o->fd < 0) {
        deploy_end(s, name);
        rp_resp_error(req, 500, "InternalError", "no room for the upload");
        op_free(o);
        return;
    }
    o->waiting_body = 1;
    rp_req_stream_body(req, deploy_data, deploy_body_done);
}

static void latest_deployment(rp_sites *s, rp_req *req, const char *name)
{
    sqlite3_stmt *st = NULL;
    int64_t live = 0;
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL && a->live != NULL)
        live = a->live->release;
    uv_mutex_unlock(&s->mu);
    if (live == 0) {
        rp_resp_error(req, 404, "NotFound", "no deployment yet");
        return;
    }
    if (sqlite3_prepare_v2(tl->db,
                           "SELECT created_at, principal, files, bytes, skipped FROM app_releases"
                           " WHERE app = ?1 AND seq = ?2",
                           -1, &st, NULL) != SQLITE_OK ||
        (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC), sqlite3_bind_int64(st, 2, live),
         sqlite3_step(st) != SQLITE_ROW)) {
        sqlite3_finalize(st);
        rp_resp_error(req, 404, "NotFound", "no deployment yet");
        return;
    }
    rp_resp_json(req, 200,
                 deployment_json(live, sqlite3_column_int64(st, 0),
                                 (const char *)sqlite3_column_text(st, 1),
                                 sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
                                 sqlite3_column_int64(st, 4), 1));
    sqlite3_finalize(st);
}

static void scm_request(rp_req *req)
{
    rp_sites *s = req->route_data;
    char name[RP_SITES_NAME_MAX + 1];
    rp_identity who;

    if (req->host_label.n == 0 || req->host_label.n > RP_SITES_NAME_MAX) {
        rp_resp_error(req, 404, "NotFound", "there is no app at this address");
        return;
    }
    memcpy(name, req->host_label.p, req->host_label.n);
    name[req->host_label.n] = '\0';
    {
        rp_appcfg *cfg = NULL;
        int ok;
        if (!app_get(s, name, strlen(name), &cfg, NULL)) {
            rp_resp_error(req, 404, "NotFound", "there is no app at this address");
            return;
        }
        ok = access_ok(s, req, cfg, 1, name);
        rp_appcfg_unref(cfg);
        if (!ok)
            return;
    }
    if (!authenticate(s, req, &who))
        return;
    if (strcmp(req->path, "/api/zipdeploy") == 0) {
        if (req->method != RP_METHOD_POST) {
            rp_resp_header(req, "Allow", "POST");
            rp_resp_error(req, 405, "MethodNotAllowed", "use POST with the zip as the body");
            return;
        }
        if (!allowed(s, req, &who, "Microsoft.Web/sites/publish/action", name))
            return;
        zipdeploy(s, req, &who, name);
        return;
    }
    if (strcmp(req->path, "/api/deployments/latest") == 0 &&
        (req->method == RP_METHOD_GET || req->method == RP_METHOD_HEAD)) {
        if (!allowed(s, req, &who, "Microsoft.Web/sites/read", name))
            return;
        latest_deployment(s, req, name);
        return;
    }
    rp_resp_error(req, 404, "NotFound",
                  "the deployment endpoint answers POST /api/zipdeploy and "
                  "GET /api/deployments/latest");
}

/* ---------------------------------------------------------------- management: /api/apps */

static void mgmt_list(rp_sites *s, rp_req *req, const rp_identity *who)
{
    json_t *arr = json_array();
    char names[256][RP_SITES_NAME_MAX + 1];
    size_t n = 0;

    if (arr == NULL) {
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    uv_mutex_lock(&s->mu);
    for (app *a = s->apps; a != NULL && n < sizeof(names) / sizeof(names[0]); a = a->next)
        rp_strlcpy(names[n++], a->name, sizeof(names[0]));
    uv_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        char scope[SCOPE_CAP];
        json_t *o;
        snprintf(scope, sizeof(scope), "/apps/%.60s", names[i]);
        /* Only what the caller may read (each decision is audited like any other). */
        if (!rp_authz(s->iam, req, who, "Microsoft.Web/sites/read", 0, scope))
            continue;
        o = app_json(s, names[i]);
        if (o != NULL)
            json_array_append_new(arr, o);
    }
    rp_resp_json(req, 200, json_pack("{s:o}", "value", arr));
}

/* Bytes of log text per call, and what a call without ?offset starts with (the tail). */
#define LOG_CHUNK (256u << 10)
#define LOG_TAIL  (16u << 10)

/*
 * GET /api/apps/NAME/logs[?offset=N]: {"offset": next, "size": file size, "text": "..."} from
 * the app's log (what its process printed, and rampart's notes about it). Without offset, the
 * last 16 KiB. Bytes that are not UTF-8 come out as '?'.
 */
static void mgmt_logs(rp_sites *s, rp_req *req, const char *name)
{
    char path[PATH_CAP];
    const char *q = rp_req_query(req, "offset");
    uint64_t off = 0;
    struct stat st;
    char *buf = NULL;
    ssize_t n = 0;
    json_t *o;
    int fd;

    snprintf(path, sizeof(path), "%s/logs/app.log", name);
    fd = openat(s->apps_fd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        rp_resp_json(req, 200, json_pack("{s:i,s:i,s:s}", "offset", 0, "size", 0, "text", ""));
        return;
    }
    if (q != NULL) {
        if (rp_parse_u64(q, strlen(q), INT64_MAX, &off) != 0) {
            close(fd);
            rp_resp_error(req, 400, "InvalidParameter", "offset is a byte offset");
            return;
        }
    } else if ((uint64_t)st.st_size > LOG_TAIL) {
        off = (uint64_t)st.st_size - LOG_TAIL;
    }
    if (off > (uint64_t)st.st_size)
        off = (uint64_t)st.st_size; /* rotated: start again from the end */
    buf = rp_malloc(LOG_CHUNK + 1);
    if (buf != NULL)
        n = pread(fd, buf, LOG_CHUNK, (off_t)off);
    close(fd);
    if (buf == NULL || n < 0) {
        rp_free(buf);
        rp_resp_error(req, 500, "InternalError", "the log cannot be read");
        return;
    }
    /* Whole UTF-8 characters only; anything else becomes '?'. */
    for (ssize_t i = 0; i < n;) {
        unsigned char c = (unsigned char)buf[i];
        ssize_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        if (c < 0x80 && (c >= 0x20 || c == '\n' || c == '\t')) {
            i++;
            continue;
        }
        if (c >= 0x80 && i + len <= n && rp_utf8_valid(buf + i, (size_t)len, 1)) {
            i += len;
            continue;
        }
        buf[i++] = '?';
    }
    o = json_pack("{s:I,s:I,s:s#}", "offset", (json_int_t)(off + (uint64_t)n), "size",
                  (json_int_t)st.st_size, "text", buf, (int)n);
    rp_free(buf);
    if (o == NULL)
        rp_resp_error(req, 500, "InternalError", "the log cannot be read");
    else
        rp_resp_json(req, 200, o);
}

static void mgmt_releases(rp_sites *s, rp_req *req, const char *name)
{
    sqlite3_stmt *st = NULL;
    json_t *arr = json_array();
    int64_t live = 0;
    int known, rc;
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    known = a != NULL;
    if (a != NULL && a->live != NULL)
        live = a->live->release;
    uv_mutex_unlock(&s->mu);
    if (!known || arr == NULL) {
        json_decref(arr);
        if (!known)
            rp_resp_error(req, 404, "NotFound", "no such app");
        else
            rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    if (sqlite3_prepare_v2(tl->db,
                           "SELECT seq, created_at, principal, files, bytes, skipped FROM"
                           " app_releases WHERE app = ?1 ORDER BY seq DESC",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        json_decref(arr);
        rp_resp_error(req, 500, "InternalError", "the store cannot be read");
        return;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0);
        json_array_append_new(arr, deployment_json(seq, sqlite3_column_int64(st, 1),
                                                   (const char *)sqlite3_column_text(st, 2),
                                                   sqlite3_column_int64(st, 3),
                                                   sqlite3_column_int64(st, 4),
                                                   sqlite3_column_int64(st, 5), seq == live));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        rp_resp_error(req, 500, "InternalError", "the store cannot be read");
        return;
    }
    rp_resp_json(req, 200, json_pack("{s:o}", "value", arr));
}

/*
 * PUT /api/apps/NAME: {} or {"properties": {settings}} (appcfg.h). A new app is created with
 * them; an existing one gets the named settings changed (the others stay), in one store write.
 */
static void put_body(rp_req *req)
{
    op **slot = req->handler_data;
    op *o = slot ? *slot : NULL;
    json_t *body = NULL, *props = NULL;
    rp_appcfg *cur = NULL;
    json_error_t je;
    char err[300];
    app *a;
    int rc;

    if (o == NULL)
        return;
    o->waiting_body = 0;
    if (req->body.len > 0) {
        body = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &je);
        props = json_object_get(body, "properties");
        if (!json_is_object(body) || json_object_size(body) > (props ? 1u : 0u) ||
            (props != NULL && !json_is_object(props))) {
            json_decref(body);
            fail(req, 400, "InvalidParameter",
                 "the body is {} or {\"properties\": {...}} with the app's settings");
            op_free(o);
            return;
        }
    }
    uv_mutex_lock(&o->s->mu);
    a = find_locked(o->s, o->name, strlen(o->name));
    if (a != NULL)
        cur = rp_appcfg_ref(a->cfg);
    uv_mutex_unlock(&o->s->mu);
    if (a != NULL && props == NULL) {
        /* Nothing asked to change: the app as it is. */
        json_decref(body);
        rp_appcfg_unref(cur);
        op_answer(o, 200, app_json(o->s, o->name));
        return;
    }
    err[0] = '\0';
    rc = rp_appcfg_build(cur ? rp_appcfg_stored(cur) : NULL, props, &o->newcfg, err, sizeof(err));
    rp_appcfg_unref(cur);
    json_decref(body);
    if (rc == 0) {
        o->cfgtext = json_dumps(rp_appcfg_stored(o->newcfg), JSON_COMPACT | JSON_SORT_KEYS);
        if (o->cfgtext == NULL)
            rc = RP_ENOMEM;
    }
    if (rc != 0) {
        fail(req, rc == RP_EINVAL ? 400 : 500,
             rc == RP_EINVAL ? "InvalidParameter" : "InternalError",
             err[0] ? err : "the settings cannot be stored");
        op_free(o);
        return;
    }
    if (a != NULL) {
        o->kind = OP_CONFIG;
        op_submit(o, config_write);
        return;
    }
    if (rp_random_uuid(o->id) != 0) {
        fail(req, 500, "InternalError", "no randomness for the app's id");
        op_free(o);
        return;
    }
    op_submit(o, create_write);
}

static int64_t rollback_target(const char *name, int64_t want, int64_t live)
{
    sqlite3_stmt *st = NULL;
    int64_t t = 0;

    if (sqlite3_prepare_v2(tl->db,
                           want > 0 ? "SELECT seq FROM app_releases WHERE app = ?1 AND seq = ?2"
                                    : "SELECT seq FROM app_releases WHERE app = ?1 AND seq < ?2"
                                      " ORDER BY seq DESC LIMIT 1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, want > 0 ? want : live);
        if (sqlite3_step(st) == SQLITE_ROW)
            t = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return t;
}

static void rollback_body(rp_req *req)
{
    op **slot = req->handler_data;
    op *o = slot ? *slot : NULL;
    rp_sites *s;
    int64_t want = 0, live = 0, target;
    int busy = 0, known;
    json_t *body = NULL, *x;
    json_error_t je;
    app *a;

    if (o == NULL)
        return;
    o->waiting_body = 0;
    s = o->s;
    if (req->body.len > 0) {
        body = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &je);
        x = json_object_get(body, "release");
        if (!json_is_object(body) || json_object_size(body) > (x ? 1u : 0u) ||
            (x != NULL && (!json_is_integer(x) || json_integer_value(x) < 1))) {
            json_decref(body);
            fail(req, 400, "InvalidParameter",
                 "the body is {} or {\"release\": N} with N a kept release number");
            op_free(o);
            return;
        }
        want = x ? json_integer_value(x) : 0;
        json_decref(body);
    }
    uv_mutex_lock(&s->mu);
    a = find_locked(s, o->name, strlen(o->name));
    known = a != NULL;
    if (a != NULL) {
        live = a->live ? a->live->release : 0;
        busy = a->deploying;
        if (!busy)
            a->deploying = 1;
    }
    uv_mutex_unlock(&s->mu);
    if (!known || busy) {
        if (!known)
            fail(req, 404, "NotFound", "no such app");
        else
            fail(req, 409, "Conflict", "a deploy to this app is running");
        op_free(o);
        return;
    }
    target = rollback_target(o->name, want, live);
    if (target == 0 || target == live) {
        deploy_end(s, o->name);
        fail(req, 409, "Conflict",
             target == live && target != 0 ? "that release is live already"
             : want > 0                    ? "no such release is kept"
                                           : "there is no earlier release to roll back to");
        op_free(o);
        return;
    }
    o->release = target;
    if (content_open(s, o->name, target, &o->newc) != 0) {
        deploy_end(s, o->name);
        fail(req, 500, "InternalError", "the release's files cannot be opened");
        op_free(o);
        return;
    }
    op_submit(o, release_write);
}

static void mgmt(rp_req *req)
{
    rp_sites *s = req->route_data;
    char name[RP_SITES_NAME_MAX + 1];
    const char *rest, *sub;
    rp_identity who;
    op *o;
    json_t *j;
    size_t n;

    if (!authenticate(s, req, &who))
        return;
    if (strcmp(req->path, "/api/apps") == 0 || strcmp(req->path, "/api/apps/") == 0) {
        if (req->method != RP_METHOD_GET && req->method != RP_METHOD_HEAD) {
            rp_resp_header(req, "Allow", "GET, HEAD");
            rp_resp_error(req, 405, "MethodNotAllowed", "use GET on the collection");
            return;
        }
        mgmt_list(s, req, &who);
        return;
    }
    rest = req->path + strlen("/api/apps/");
    sub = strchr(rest, '/');
    n = sub ? (size_t)(sub - rest) : strlen(rest);
    if (n > RP_SITES_NAME_MAX) {
        n = 0;
    } else {
        memcpy(name, rest, n);
        name[n] = '\0';
    }
    if (n == 0 || !rp_sites_name_valid(name)) {
        rp_resp_error(req, 400, "InvalidName",
                      "an app name is 2-60 characters of a-z, 0-9 and '-', starts and ends with a "
                      "letter or digit, and is not a name the platform uses itself");
        return;
    }
    if (sub != NULL) {
        if (strcmp(sub, "/releases") == 0 &&
            (req->method == RP_METHOD_GET || req->method == RP_METHOD_HEAD)) {
            if (allowed(s, req, &who, "Microsoft.Web/sites/read", name))
                mgmt_releases(s, req, name);
            return;
        }
        if (strcmp(sub, "/logs") == 0 &&
            (req->method == RP_METHOD_GET || req->method == RP_METHOD_HEAD)) {
            /* What an app prints may be sensitive: the same right as changing it. */
            if (allowed(s, req, &who, "Microsoft.Web/sites/write", name))
                mgmt_logs(s, req, name);
            return;
        }
        if (strcmp(sub, "/rollback") == 0 && req->method == RP_METHOD_POST) {
            if (!allowed(s, req, &who, "Microsoft.Web/sites/publish/action", name))
                return;
            o = op_new(s, req, &who, OP_ROLLBACK, "Microsoft.Web/sites/publish/action", name);
            if (o == NULL) {
                rp_resp_error(req, 500, "InternalError", "out of memory");
                return;
            }
            o->waiting_body = 1;
            rp_req_read_body(req, rollback_body);
            return;
        }
        rp_resp_error(req, 404, "NotFound",
                      "an app has /releases (GET) and /rollback (POST) below it");
        return;
    }
    switch (req->method) {
    case RP_METHOD_GET:
    case RP_METHOD_HEAD:
        if (!allowed(s, req, &who, "Microsoft.Web/sites/read", name))
            return;
        j = app_json(s, name);
        if (j == NULL)
            rp_resp_error(req, 404, "NotFound", "no such app");
        else
            rp_resp_json(req, 200, j);
        return;
    case RP_METHOD_PUT:
        if (!allowed(s, req, &who, "Microsoft.Web/sites/write", name))
            return;
        o = op_new(s, req, &who, OP_CREATE, "Microsoft.Web/sites/write", name);
        if (o == NULL) {
            rp_resp_error(req, 500, "InternalError", "out of memory");
            return;
        }
        o->waiting_body = 1;
        rp_req_read_body(req, put_body);
        return;
    case RP_METHOD_DELETE: {
        int busy = 0;
        app *a;
        if (!allowed(s, req, &who, "Microsoft.Web/sites/delete", name))
            return;
        uv_mutex_lock(&s->mu);
        a = find_locked(s, name, strlen(name));
        if (a != NULL) {
            busy = a->deploying;
            a->deploying = 1; /* no deploy starts while the delete is in flight */
        }
        uv_mutex_unlock(&s->mu);
        if (busy) {
            rp_resp_error(req, 409, "Conflict", "a deploy to this app is running");
            return;
        }
        o = op_new(s, req, &who, OP_DELETE, "Microsoft.Web/sites/delete", name);
        if (o == NULL) {
            deploy_end(s, name);
            rp_resp_error(req, 500, "InternalError", "out of memory");
            return;
        }
        op_submit(o, delete_write);
        return;
    }
    default:
        rp_resp_header(req, "Allow", "GET, HEAD, PUT, DELETE");
        rp_resp_error(req, 405, "MethodNotAllowed", "use GET, PUT or DELETE");
        return;
    }
}

/* ---------------------------------------------------------------- service */

int rp_sites_register(rp_sites *s, rp_router *r)
{
    rp_route_opts site = {RP_M_ANY, RP_SITES_BODY_MAX, s};
    rp_route_opts scm = {RP_M_READ | RP_M(RP_METHOD_POST), (size_t)RP_SITES_ZIP_MAX, s};
    rp_route_opts m = {RP_M_READ | RP_M(RP_METHOD_PUT) | RP_M(RP_METHOD_DELETE) |
                           RP_M(RP_METHOD_POST),
                       RP_APPCFG_CA_MAX + 64 * 1024, s};
    int rc = rp_router_add(r, "*", "/", site_request, &site);

    if (rc == 0)
        rc = rp_router_add(r, "*.scm", "/", scm_request, &scm);
    if (rc == 0)
        rc = rp_router_add(r, "@", "/api/apps", mgmt, &m);
    return rc;
}

void rp_sites_set_port(rp_sites *s, int https_port)
{
    s->port = https_port;
}

static int release_dir_name(const char *d, int64_t *out)
{
    uint64_t v;

    if (rp_parse_u64(d, strlen(d), INT64_MAX, &v) != 0 || v == 0)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* Is (name, seq) a committed release? */
static int release_known(sqlite3 *db, const char *name, int64_t seq)
{
    sqlite3_stmt *st = NULL;
    int known = 1; /* when in doubt, keep */

    if (sqlite3_prepare_v2(db, "SELECT 1 FROM app_releases WHERE app = ?1 AND seq = ?2", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, seq);
        known = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return known;
}

/* Removes what no commit owns: directories of deleted apps, tombstones, uncommitted releases. */
static void sweep_dirs(rp_sites *s, sqlite3 *db)
{
    int fd = dup(s->apps_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;

    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        app *a;
        char rel[PATH_CAP];
        int rfd;
        DIR *rd;
        struct dirent *re;

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        uv_mutex_lock(&s->mu);
        a = find_locked(s, e->d_name, strlen(e->d_name));
        uv_mutex_unlock(&s->mu);
        if (a == NULL) {
            if (rp_unzip_rmtree(s->apps_fd, e->d_name) != 0)
                rp_log_msg(RP_LOG_WARN, "sites.sweep", "a stale app directory stays");
            continue;
        }
        snprintf(rel, sizeof(rel), "%s/releases", e->d_name);
        rfd = openat(s->apps_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        rd = rfd >= 0 ? fdopendir(rfd) : NULL;
        if (rd == NULL) {
            if (rfd >= 0)
                close(rfd);
            continue;
        }
        while ((re = readdir(rd)) != NULL) {
            int64_t seq;
            if (strcmp(re->d_name, ".") == 0 || strcmp(re->d_name, "..") == 0)
                continue;
            if (release_dir_name(re->d_name, &seq) == 0 && release_known(db, a->name, seq))
                continue;
            (void)rp_unzip_rmtree(dirfd(rd), re->d_name);
        }
        closedir(rd);
    }
    closedir(d);
}

static int load(rp_sites *s, sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(db,
                           "SELECT name, id, created_at, updated_at, release, next_release,"
                           " config, uid FROM apps",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        snprintf(err, errlen, "the apps cannot be read from the store");
        return RP_EDB;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        app *a = rp_calloc(1, sizeof(*a));
        int64_t release = sqlite3_column_int64(st, 4);
        if (a == NULL) {
            sqlite3_finalize(st);
            return RP_ENOMEM;
        }
        rp_strlcpy(a->name, (const char *)sqlite3_column_text(st, 0), sizeof(a->name));
        rp_strlcpy(a->id, (const char *)sqlite3_column_text(st, 1), sizeof(a->id));
        a->created = sqlite3_column_int64(st, 2);
        a->updated = sqlite3_column_int64(st, 3);
        a->next_release = sqlite3_column_int64(st, 5);
        a->uid = (uint32_t)sqlite3_column_int64(st, 7);
        {
            const char *text = (const char *)sqlite3_column_text(st, 6);
            json_t *stored = text ? json_loads(text, 0, NULL) : NULL;
            char cerr[300] = "";
            int crc = rp_appcfg_build(stored, NULL, &a->cfg, cerr, sizeof(cerr));
            json_decref(stored);
            if (crc != 0) {
                /* Stored settings that no longer parse: refuse to start rather than serve the
                 * app without its restrictions. */
                snprintf(err, errlen, "app %s: its settings cannot be used: %s", a->name, cerr);
                app_free(s, a);
                sqlite3_finalize(st);
                return crc;
            }
        }
        if (release > 0 && content_open(s, a->name, release, &a->live) != 0) {
            /* Served as "nothing deployed" rather than refusing to start every other app. */
            rp_logline l;
            rp_logline_begin(&l, RP_LOG_ERROR, "sites.open");
            rp_logline_str(&l, "message", "the live release of an app cannot be opened");
            rp_logline_str(&l, "app", a->name);
            rp_logline_int(&l, "release", release);
            rp_logline_end(&l);
        }
        a->next = s->apps;
        s->apps = a;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "the apps cannot be read from the store");
        return RP_EDB;
    }
    return 0;
}

int rp_sites_open(const rp_sites_opts *o, rp_sites **out, char *err, size_t errlen)
{
    rp_sites *s = rp_calloc(1, sizeof(*s));
    sqlite3 *db = NULL;
    int n, rc;

    if (s == NULL)
        return RP_ENOMEM;
    s->apps_fd = -1;
    s->store = o->store;
    s->iam = o->iam;
    s->port = o->https_port;
    if (rp_strlcpy(s->domain, o->domain, sizeof(s->domain)) != 0) {
        rc = RP_ETOOBIG;
        goto fail;
    }
    n = snprintf(s->apps_path, sizeof(s->apps_path), "%s/apps", o->data_dir);
    if (n < 0 || (size_t)n >= sizeof(s->apps_path) - 128) {
        snprintf(err, errlen, "data directory path too long");
        rc = RP_ETOOBIG;
        goto fail;
    }
    if (uv_mutex_init(&s->mu) != 0) {
        rc = RP_ENOMEM;
        goto fail;
    }
    s->mu_ready = 1;
    if (mkdir(s->apps_path, 0711) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s", s->apps_path);
        rc = RP_EIO;
        goto fail;
    }
    s->apps_fd = open(s->apps_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (s->apps_fd < 0) {
        snprintf(err, errlen, "cannot open %s", s->apps_path);
        rc = RP_EIO;
        goto fail;
    }
    rc = rp_procs_open(NULL, &s->procs);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the app process supervisor");
        goto fail;
    }
    rc = rp_store_reader_open(s->store, &db);
    if (rc == 0)
        rc = load(s, db, err, errlen);
    if (rc == 0)
        sweep_dirs(s, db);
    sqlite3_close(db);
    if (rc != 0)
        goto fail;
    for (app *a = s->apps; a != NULL; a = a->next)
        sync_process(s, a->name);
    *out = s;
    return 0;
fail:
    rp_sites_close(s);
    return rc;
}

void rp_sites_close(rp_sites *s)
{
    if (s == NULL)
        return;
    rp_procs_close(s->procs);
    while (s->apps != NULL) {
        app *a = s->apps;
        s->apps = a->next;
        app_free(s, a);
    }
    if (s->apps_fd >= 0)
        close(s->apps_fd);
    if (s->mu_ready)
        uv_mutex_destroy(&s->mu);
    rp_free(s);
}
