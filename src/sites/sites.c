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
#include "sites/appenv.h"
#include "sites/easyauth.h"
#include "iam/oidc.h"
#include "functions/fnapp.h"
#include "functions/fnhost.h"
#include "functions/invoke.h"
#include "functions/keyset.h"
#include "functions/timers.h"
#include "sites/settings.h"
#include "sites/signin.h"
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

#define RP_SITES_INSTANCES_MAX 16    /* WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT at most */
#define RP_SITES_SCALE_IN_MS   10000 /* an extra instance stops once no call waited this long */
#define PATH_CAP               4096
#define SCOPE_CAP              (16 + 2 * RP_SITES_NAME_MAX)
/* In every app's releases/: the rdir it belongs to (see owner_write). */
#define OWNER_FILE ".owner"

/* A release opened for serving; freed when the last request or the registry drops it. */
typedef struct content {
    rp_static *st;
    rp_fn_app *fn; /* a function app's index (host.json at the root, no command); else NULL */
    int64_t release;
    unsigned refs;
} content;

/* A function app's keys, shared like content (refs under mu). */
typedef struct fnkeys {
    rp_fn_keyset *set;
    unsigned refs;
} fnkeys;

typedef struct app {
    char name[RP_SITES_NAME_MAX + 1];
    char id[37];
    char rdir[37]; /* the release directory it owns: what its releases/.owner says */
    uint32_t uid;  /* the app process's user and group id */
    int64_t created, updated;
    content *live;                      /* NULL until the first deploy */
    rp_appcfg *cfg;                     /* never NULL; replaced whole on a change */
    rp_easyauth *auth;                  /* built-in authentication; NULL: none configured */
    char parent[RP_SITES_NAME_MAX + 1]; /* a slot: its production app ("" for an app) */
    char slot[RP_SITES_SLOT_MAX + 1];   /* a slot: its name within the app */
    json_t *sticky;       /* production: slotConfigNames (settings that stay with a slot) */
    int must_restart;     /* a swap changed its release: restart once its environment is built */
    int swapping;         /* a swap is running: no settings change starts */
    int busy_ops;         /* settings changes (config, auth, sticky) between check and commit */
    int64_t load_release; /* start-up only: the live release to open */
    int64_t next_release; /* the number the next deploy gets */
    int deploying;        /* one deploy (or rollback) at a time */
    int settings_busy;    /* one settings write at a time (each rewrites the sealed set) */
    rp_appenv *env;       /* settings, references, identity: NULL until first built */
    fnkeys *keys;         /* a function app's keys: NULL until loaded or made */
    rp_fn_gate *gate;     /* a function app's throttle: NULL until its first call */
    long gate_conc, gate_out; /* the bounds gate has (host.json of the live release) */
    rp_fn_invlog *invlog;     /* a function app's invocation log: NULL until first needed */
    json_t *workers;          /* functions whose own worker was started (names), or NULL */
    int env_want;             /* the identity session the last environment build asked for */
    int parked;        /* a function app scaled to zero: its processes stopped until a call */
    int instances;     /* a function app's extra handler instances wanted (scale out) */
    int instances_run; /* ... and started */
    unsigned inflight[RP_SITES_INSTANCES_MAX]; /* calls on each instance (0: the first) */
    uint64_t drain_since;   /* monotonic ms an instance stopped taking calls (scale in) */
    int timer_runs;         /* timer runs in flight (no scale to zero meanwhile) */
    uint64_t queue_seen;    /* monotonic ms calls last waited in line (scale in after quiet) */
    int64_t timers_release; /* the release and environment its timers were installed from */
    unsigned timers_gen;    /* ... (env_gen) */
    unsigned env_gen;       /* counts the environments env has had */
    uint64_t last_call;     /* monotonic ms of its last function call */
    uint64_t fn_ids;        /* a hash of the functions with their own identity, at that build */
    int env_ready;          /* the first build finished (its process may start) */
    struct app *next;
} app;

struct rp_sites {
    char domain[256];
    int port;
    rp_store *store;
    rp_iam *iam;
    char apps_path[PATH_CAP]; /* DATA/apps */
    rp_helper *helper;        /* borrowed: the privileged helper (sandbox/helper.h) */
    int apps_fd;
    rp_procs *procs;  /* app processes */
    rp_appenvs *envs; /* builds app environments (settings, references, identity) */
    rp_keyring *kr;
    rp_vault *vault;
    rp_oidc *oidc;        /* external OpenID issuers' keys; NULL: only rampart's tokens */
    rp_session_box *box;  /* seals sign-in state and session cookies (signin.c) */
    rp_fn_timers *timers; /* function apps' timer triggers */
    uv_mutex_t keys_mu;   /* one function-key document update at a time (read, edit, seal, store) */
    int keys_mu_ready;
    uv_mutex_t mu; /* guards apps and every app's live, next_release, deploying, updated */
    int mu_ready;
    app *apps;
};

enum {
    OP_CREATE = 1,
    OP_DELETE,
    OP_DEPLOY,
    OP_ROLLBACK,
    OP_CONFIG,
    OP_SETTINGS,
    OP_READ,
    OP_AUTH,
    OP_STICKY,
    OP_SWAP
};

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
    rp_appcfg *newcfg;    /* create, config: the settings being stored */
    int conn;             /* settings: connection strings (1) or app settings (0) */
    json_t *sjson;        /* settings: the checked set being stored */
    rp_buf wdek, ct;      /* settings: the whole set, sealed */
    json_t *reply;        /* settings, read: the answer */
    rp_easyauth *newauth; /* auth: the settings being stored (their JSON in cfgtext) */
    char parent[RP_SITES_NAME_MAX + 1]; /* create: a slot's production app */
    char slot[RP_SITES_SLOT_MAX + 1];
    char other[RP_SITES_NAME_MAX + 1]; /* swap: the slot (name is the production app) */
    char other_id[37];                 /* swap: its object id */
    int renamed;                       /* swap: the directories were exchanged */
    char *authtext;                    /* create (slot): the app's authsettingsV2 it inherits */
    json_t *sticky;                    /* swap: the production app's slotConfigNames */
    rp_appcfg *newcfg2;                /* swap: the slot's new settings (text in cfgtext2) */
    char *cfgtext2;
    rp_buf wdek2, ct2; /* swap: the slot's sealed settings */
    char *cfgtext;     /* their stored JSON */
    int64_t prune[RP_SITES_KEEP_RELEASES + 64];
    int nprune;
    int fn_mode;           /* deploy: how the new release's host.json is read (content_open) */
    int fn_bad;            /* deploy: the release is a function app that does not load */
    int allow_anon;        /* deploy: ?allowAnonymous=true (anonymous HTTP functions meant) */
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
    rp_fn_app_free(c->fn);
    rp_free(c);
}

static void keys_put(rp_sites *s, fnkeys *k)
{
    int last;

    if (k == NULL)
        return;
    uv_mutex_lock(&s->mu);
    last = --k->refs == 0;
    uv_mutex_unlock(&s->mu);
    if (last) {
        rp_fn_keyset_free(k->set);
        rp_free(k);
    }
}

static app *find_locked(rp_sites *s, const char *name, size_t n);

/* Makes set app name's live keys (taking it over; freed if the app is gone). */
static void keys_publish(rp_sites *s, const char *name, rp_fn_keyset *set)
{
    fnkeys *k = set != NULL ? rp_calloc(1, sizeof(*k)) : NULL, *old = NULL;
    app *a;

    if (k == NULL) {
        rp_fn_keyset_free(set);
        return;
    }
    k->set = set;
    k->refs = 1;
    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL) {
        old = a->keys;
        a->keys = k;
        k = NULL;
    }
    uv_mutex_unlock(&s->mu);
    keys_put(s, old);
    if (k != NULL) {
        rp_fn_keyset_free(k->set);
        rp_free(k);
    }
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
/* How content_open treats a host.json at the release root. */
enum { FN_IGNORE = 0, FN_STRICT, FN_LENIENT };

/*
 * Opens a release: its static files, and with fn FN_STRICT or FN_LENIENT (an app without a
 * command) its functions when host.json is at the root. A function app that does not load is an
 * error with FN_STRICT (a deploy: err says why) and a logged, function-less release with
 * FN_LENIENT (start-up: the other apps and the static files still serve).
 */
static int content_open(const rp_sites *s, const char *name, int64_t release, int fn, content **out,
                        char *err, size_t errlen)
{
    char path[PATH_CAP], why[256];
    content *c;
    int rc = release_path(s, name, release, path, sizeof(path)), dfd;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
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
    if (fn != FN_IGNORE) {
        dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        rc = dfd < 0 ? RP_EIO : rp_fn_app_load(dfd, &c->fn, why, sizeof(why));
        if (dfd >= 0)
            close(dfd);
        if (rc == RP_ENOENT) {
            rc = 0; /* no host.json: not a function app */
        } else if (rc != 0 && fn == FN_LENIENT) {
            rp_logline l;
            rp_logline_begin(&l, RP_LOG_ERROR, "functions.load");
            rp_logline_str(&l, "message",
                           "a function app's release does not load; no function "
                           "answers until a good one is deployed");
            rp_logline_str(&l, "app", name);
            rp_logline_str(&l, "reason", why);
            rp_logline_end(&l);
            rc = 0;
        } else if (rc != 0) {
            if (err != NULL)
                snprintf(err, errlen, "%s", why);
            content_free(c);
            return rc == RP_EIO || rc == RP_ENOMEM ? rc : RP_EPARSE;
        }
    }
    c->release = release;
    c->refs = 1;
    *out = c;
    return 0;
}

/* ---------------------------------------------------------------- function keys */

/* What a keys document write stores (fnkeys_write). */
typedef struct keys_rec {
    const char *name;
    rp_buf wdek, ct;
    int64_t now;
} keys_rec;

static int fnkeys_write(sqlite3 *db, void *arg)
{
    keys_rec *r = arg;
    char id[RP_SITES_NAME_MAX + 16];
    sqlite3_stmt *st;

    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO app_fnkeys (app, wdek, updated_at)"
                           " VALUES (?1, ?2, ?3)",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return RP_EDB;
    }
    sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, r->wdek.data, (int)r->wdek.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r->now);
    if (sqlite3_step(st) != SQLITE_DONE) {
        sqlite3_finalize(st);
        return RP_EDB; /* the app is gone (foreign key) or the disk failed */
    }
    sqlite3_finalize(st);
    snprintf(id, sizeof(id), "apps/%s/fnkeys", r->name);
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO obj.blobs (id, ct) VALUES (?1, ?2)", -1, &st,
                           NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return RP_EDB;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, r->ct.data, (int)r->ct.len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        sqlite3_finalize(st);
        return RP_EDB;
    }
    sqlite3_finalize(st);
    return 0;
}

/* An edit of a keys document: *doc is NULL when the app has none yet (the edit may create one).
 * >0 changed (store it), 0 unchanged, or a negative RP_E* code with err filled in. */
typedef int (*keys_edit_fn)(json_t **doc, void *arg, char *err, size_t errlen);

/*
 * Reads app name's keys document, applies edit, seals and stores it when it changed, and makes
 * the result the app's live keys; *out (may be NULL) gets a copy of its own. Blocking (the
 * keyring, the store's writer): thread pool and start-up only. One at a time (keys_mu): two
 * changes never start from the same old document, and the live keys are replaced in the order
 * the documents were stored (a revoked key cannot come back with an older set).
 */
static int fnkeys_update(rp_sites *s, const char *name, const char *id, keys_edit_fn edit,
                         void *arg, rp_fn_keyset **out, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    json_t *doc = NULL;
    const char *reason = NULL;
    keys_rec r = {name, {0}, {0}, now_s()};
    int rc, changed;

    if (out != NULL)
        *out = NULL;
    rp_buf_init(&r.wdek, 4096);
    rp_buf_init(&r.ct, RP_FN_KEYSET_MAX + 4096);
    uv_mutex_lock(&s->keys_mu);
    rc = rp_store_reader_open(s->store, &db);
    if (rc == 0)
        rc = rp_appenv_sealed_read(db, s->kr, name, id, "fnkeys", &doc, &reason);
    sqlite3_close(db);
    if (rc != 0) {
        snprintf(err, errlen, "the app's keys cannot be read%s%s", reason ? ": " : "",
                 reason ? reason : "");
        goto out;
    }
    changed = edit(&doc, arg, err, errlen);
    if (changed < 0) {
        rc = changed;
        goto out;
    }
    if (changed > 0) {
        rc = rp_appenv_sealed_seal(s->kr, name, id, "fnkeys", doc, &r.wdek, &r.ct, &reason);
        if (rc == 0)
            rc = rp_store_write_sync(s->store, fnkeys_write, &r);
        if (rc != 0) {
            snprintf(err, errlen, "the app's keys cannot be stored%s%s", reason ? ": " : "",
                     reason ? reason : "");
            goto out;
        }
    }
    if (doc != NULL) {
        rp_fn_keyset *live = NULL;
        if ((rc = rp_fn_keyset_parse(doc, &live, err, errlen)) != 0 ||
            (out != NULL && (rc = rp_fn_keyset_parse(doc, out, err, errlen)) != 0)) {
            rp_fn_keyset_free(live);
            goto out;
        }
        keys_publish(s, name, live);
    }
out:
    uv_mutex_unlock(&s->keys_mu);
    /* jansson's allocator wipes the key values as they are freed (base/jsonmem.h). */
    json_decref(doc);
    rp_buf_free(&r.wdek);
    rp_buf_free(&r.ct);
    return rc;
}

/* The edit a release going live needs: a new document, or default keys for new functions. */
static int keys_for_release(json_t **doc, void *arg, char *err, size_t errlen)
{
    const rp_fn_app *fa = arg;
    const char *names[RP_FN_FUNCTIONS_MAX];
    size_t n = rp_fn_app_count(fa);
    int rc;

    for (size_t i = 0; i < n && i < RP_FN_FUNCTIONS_MAX; i++)
        names[i] = rp_fn_app_function(fa, i)->name;
    if (*doc == NULL) {
        rc = rp_fn_keyset_new(names, n, doc);
        if (rc != 0)
            snprintf(err, errlen, "the app's keys cannot be made");
        return rc == 0 ? 1 : rc;
    }
    rc = rp_fn_keyset_add_defaults(*doc, names, n);
    if (rc < 0)
        snprintf(err, errlen, "the app's keys cannot be made");
    return rc;
}

/* Caller holds mu. */
static app *find_locked(rp_sites *s, const char *name, size_t n)
{
    for (app *a = s->apps; a != NULL; a = a->next)
        if (strlen(a->name) == n && memcmp(a->name, name, n) == 0)
            return a;
    return NULL;
}

/* Slots of app name. Caller holds mu. */
static int slot_count_locked(rp_sites *s, const char *name)
{
    int n = 0;

    for (app *a = s->apps; a != NULL; a = a->next)
        n += strcmp(a->parent, name) == 0;
    return n;
}

/* The RBAC scope of an app ("/apps/NAME") or a slot ("/apps/PARENT/slots/SLOT"). Caller holds
 * mu, or a is not shared yet. */
static void scope_locked(const app *a, char *out, size_t cap)
{
    if (a->parent[0])
        snprintf(out, cap, "/apps/%s/slots/%s", a->parent, a->slot);
    else
        snprintf(out, cap, "/apps/%s", a->name);
}

/* The scope of app name, as scope_locked; "/apps/NAME" for an app that does not exist (the
 * request then meets a 404 after its authorization). */
static void app_scope(rp_sites *s, const char *name, char *out, size_t cap)
{
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL)
        scope_locked(a, out, cap);
    else
        snprintf(out, cap, "/apps/%s", name);
    uv_mutex_unlock(&s->mu);
}

/* Is a a function app now (no command, a function app's release live)? Caller holds mu. */
static int is_fn_app(const app *a)
{
    return rp_appcfg_command(a->cfg) == NULL && a->live != NULL && a->live->fn != NULL;
}

/* Does app a's process get an identity session? Not without a process (a command, or a
 * function app's handler), and not in the isolated tier (no route to the endpoint). */
static int wants_session(const app *a)
{
    return (rp_appcfg_command(a->cfg) != NULL || is_fn_app(a)) &&
           rp_appcfg_tier(a->cfg) != RP_PROC_ISOLATED;
}

/* FNV-1a, 64 bits. */
static uint64_t fnv64(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Does function f of a function app run in a worker of its own (its own identity)? */
static int fn_own_worker(const rp_fn_function *f)
{
    return f->own_identity && !f->disabled;
}

/* A hash of the names of a's functions with their own identity (0: none). Caller holds mu. */
static uint64_t fn_ids_hash(const app *a)
{
    uint64_t h = 0;

    if (!is_fn_app(a))
        return 0;
    for (size_t i = 0; i < rp_fn_app_count(a->live->fn); i++) {
        const rp_fn_function *f = rp_fn_app_function(a->live->fn, i);
        if (fn_own_worker(f))
            h = fnv64(fnv64(h ? h : 14695981039346656037ull, f->name), "/");
    }
    return h;
}

/* Queues a build of a's environment. Caller holds mu (or a is not shared yet). */
static void env_build_locked(rp_sites *s, app *a)
{
    a->env_want = wants_session(a);
    a->fn_ids = fn_ids_hash(a);
    rp_appenvs_build(s->envs, a->name, a->id, a->env_want, 0);
}

/* The same, for new code or a new command: a new identity header too (the old one ends), and
 * the process restarts once it is built. Caller holds mu. */
static void env_rotate_locked(rp_sites *s, app *a)
{
    a->must_restart = 1;
    a->env_want = wants_session(a);
    a->fn_ids = fn_ids_hash(a);
    rp_appenvs_build(s->envs, a->name, a->id, a->env_want, 1);
}

/* The functions of app (instance id) that want an identity of their own now (rp_appenvs's
 * question, on its thread). */
static size_t fn_identities(void *arg, const char *name, const char *id,
                            char names[][RP_APPENV_FN_NAME_MAX + 1], size_t cap)
{
    rp_sites *s = arg;
    size_t n = 0;
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL && strcmp(a->id, id) == 0 && is_fn_app(a))
        for (size_t i = 0; i < rp_fn_app_count(a->live->fn) && n < cap; i++) {
            const rp_fn_function *f = rp_fn_app_function(a->live->fn, i);
            if (fn_own_worker(f) && rp_strlcpy(names[n], f->name, RP_APPENV_FN_NAME_MAX + 1) == 0)
                n++;
        }
    uv_mutex_unlock(&s->mu);
    return n;
}

/* Queues a build of app name's environment: 1, or 0 when there is no such app. */
static int env_build(rp_sites *s, const char *name)
{
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL)
        env_build_locked(s, a);
    uv_mutex_unlock(&s->mu);
    return a != NULL;
}

/* Does the app instance "/apps/NAME/instance/ID" still exist? (rp_appenvs_sweep; for one of
 * its functions' identities, ".../functions/F", whether the instance does: a function that no
 * longer wants one loses it at the app's next environment build.) */
static int instance_exists(void *arg, const char *resource)
{
    rp_sites *s = arg;
    char res[RP_APPENV_RES_MAX];
    int found = 0;

    uv_mutex_lock(&s->mu);
    for (app *a = s->apps; a != NULL && !found; a = a->next) {
        size_t n;
        if (rp_appenv_resource(a->name, a->id, res, sizeof(res)) != 0)
            continue;
        n = strlen(res);
        found = strncmp(res, resource, n) == 0 &&
                (resource[n] == '\0' || strncmp(resource + n, "/functions/", 11) == 0);
    }
    uv_mutex_unlock(&s->mu);
    return found;
}

/* The object id of app name into id ("" if there is none). */
static void app_id(rp_sites *s, const char *name, char id[37])
{
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL)
        memcpy(id, a->id, 37);
    else
        id[0] = '\0';
    uv_mutex_unlock(&s->mu);
}

static void fail(rp_req *req, int status, const char *code, const char *msg);

/*
 * Before a settings change is submitted: the app is still the one authorized (object id), no
 * swap is running, and (based_on not NULL) its settings are still the ones the change was
 * computed from. Counts the change in flight until cfg_end, so a swap waits for it. 0 when
 * refused (answered 409; the caller frees the op).
 */
static int cfg_begin(op *o, const rp_appcfg *based_on)
{
    const char *why = NULL;
    app *a;

    uv_mutex_lock(&o->s->mu);
    a = find_locked(o->s, o->name, strlen(o->name));
    if (a == NULL || strcmp(a->id, o->id) != 0)
        why = "the app was deleted or replaced while the request was read; send it again";
    else if (a->swapping)
        why = "a slot swap of this app is running; send the change again after it";
    else if (based_on != NULL && a->cfg != based_on)
        why = "the app's settings changed while the request was read; send it again";
    else
        a->busy_ops++;
    uv_mutex_unlock(&o->s->mu);
    if (why != NULL)
        fail(o->req, 409, "Conflict", why);
    return why == NULL;
}

static void cfg_end(rp_sites *s, op *o)
{
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, o->name, strlen(o->name));
    if (a != NULL && strcmp(a->id, o->id) == 0 && a->busy_ops > 0)
        a->busy_ops--;
    uv_mutex_unlock(&s->mu);
}

static void app_free(rp_sites *s, app *a)
{
    if (a == NULL)
        return;
    rp_appcfg_unref(a->cfg);
    rp_easyauth_unref(a->auth);
    json_decref(a->sticky);
    rp_appenv_unref(a->env);
    content_put(s, a->live);
    keys_put(s, a->keys);
    rp_fn_gate_unref(a->gate);
    rp_fn_invlog_unref(a->invlog);
    json_decref(a->workers);
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

    rp_proxy_loop_stop();
    rp_invoke_loop_stop(); /* the functions host's idle connections to handlers */
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
static int config_request(rp_sites *s, rp_req *req, const rp_identity *who, const char *name,
                          const char *sub);
static void sticky_request(rp_sites *s, rp_req *req, const rp_identity *who, const char *name);
static int auth_build(rp_sites *s, const char *name, const json_t *stored, int check_issuer,
                      rp_easyauth **out, char *err, size_t errlen);
static const char *external_issuer(const rp_sites *s, const rp_easyauth *auth);
static void swap_written(rp_sites *s, op *o, int status);
static int allowed(rp_sites *s, rp_req *req, const rp_identity *who, const char *action,
                   const char *name);
static void keys_list(rp_sites *s, rp_req *req, const rp_identity *who, const char *name,
                      const char *sub);

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
    rp_buf_init(&o->wdek, 4096);
    rp_buf_init(&o->ct, 2 * RP_SETTINGS_TOTAL_MAX + 4096);
    rp_buf_init(&o->wdek2, 4096);
    rp_buf_init(&o->ct2, 2 * RP_SETTINGS_TOTAL_MAX + 4096);
    o->now = now_s();
    rp_strlcpy(o->name, name, sizeof(o->name));
    {
        app *a;
        uv_mutex_lock(&s->mu);
        a = find_locked(s, name, strlen(name));
        if (a != NULL) {
            scope_locked(a, o->scope, sizeof(o->scope));
            memcpy(o->id, a->id, sizeof(o->id));
        } else {
            snprintf(o->scope, sizeof(o->scope), "/apps/%s", name);
        }
        uv_mutex_unlock(&s->mu);
    }
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
    json_decref(o->sjson);
    json_decref(o->reply);
    rp_easyauth_unref(o->newauth);
    json_decref(o->sticky);
    rp_appcfg_unref(o->newcfg2);
    free(o->cfgtext2);
    free(o->authtext);
    rp_buf_free(&o->wdek2);
    rp_buf_free(&o->ct2);
    rp_buf_free(&o->wdek);
    rp_buf_free(&o->ct);
    free(o->cfgtext); /* jansson's allocator */
    rp_free(o);
}

/* ---------------------------------------------------------------- JSON */

/* ":PORT" of the public HTTPS port as an origin spells it, or "" for 443. */
static const char *port_part(const rp_sites *s, char out[16])
{
    if (s->port == 443 || s->port == 0)
        out[0] = '\0';
    else
        snprintf(out, 16, ":%d", s->port);
    return out;
}

static void host_url(const rp_sites *s, const char *name, const char *sub, char *out, size_t cap)
{
    char port[16];

    snprintf(out, cap, "https://%s%s.%s%s/", name, sub, s->domain, port_part(s, port));
}

/* Caller holds mu (reads a's fields). */
static json_t *app_json_locked(const rp_sites *s, const app *a)
{
    char url[600], scm[600], host[400], id[SCOPE_CAP];
    json_t *o, *view = rp_appcfg_view(a->cfg);

    host_url(s, a->name, "", url, sizeof(url));
    host_url(s, a->name, ".scm", scm, sizeof(scm));
    snprintf(host, sizeof(host), "%s.%s", a->name, s->domain);
    scope_locked(a, id, sizeof(id));
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
    /* A process app's (or function app's handler's) supervisor state: running, ready,
     * healthy, restarts, last failure. */
    if (o != NULL && (rp_appcfg_command(a->cfg) != NULL || (a->live != NULL && a->live->fn))) {
        rp_proc_state ps;
        if (rp_procs_state(s->procs, a->name, &ps) == 0)
            json_object_set_new(json_object_get(o, "properties"), "process",
                                json_pack("{s:b,s:b,s:b,s:I,s:s,s:i}", "running", ps.running,
                                          "ready", ps.ready, "healthy", ps.healthy, "restarts",
                                          (json_int_t)ps.restarts, "lastFailure", ps.last_failure,
                                          "instances", 1 + a->instances_run));
    }
    /* Azure's shape: present once the system-assigned identity exists. */
    if (o != NULL && a->env != NULL && rp_appenv_principal(a->env)[0])
        json_object_set_new(o, "identity",
                            json_pack("{s:s,s:s,s:s,s:s}", "type", "SystemAssigned", "principalId",
                                      rp_appenv_principal(a->env), "clientId",
                                      rp_appenv_client(a->env), "tenantId", rp_iam_tenant(s->iam)));
    /* Beyond Azure: the functions with an identity of their own, the same shape each. */
    if (o != NULL && rp_appenv_fn_count(a->env) > 0) {
        json_t *m = json_object();
        for (size_t i = 0; m != NULL && i < rp_appenv_fn_count(a->env); i++) {
            const char *f = rp_appenv_fn_name(a->env, i);
            if (json_object_set_new(m, f,
                                    json_pack("{s:s,s:s,s:s,s:s}", "type", "SystemAssigned",
                                              "principalId", rp_appenv_fn_principal(a->env, f),
                                              "clientId", rp_appenv_fn_client(a->env, f),
                                              "tenantId", rp_iam_tenant(s->iam))) != 0) {
                json_decref(m);
                m = NULL;
            }
        }
        if (m == NULL ||
            json_object_set_new(json_object_get(o, "properties"), "functionIdentities", m) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
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
    if (o->reply != NULL) {
        json_t *r = o->reply;
        o->reply = NULL;
        return r;
    }
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
    if (rp_iam_audit(o->s->iam, o->req, &o->who, o->kind == OP_READ ? "read" : "change", o->action,
                     o->scope, rc == 0 ? "success" : "failure", d, durable ? RP_AUDIT_DURABLE : 0,
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
    char rdir[37];      /* when set: only if the parent directory's .owner still says this */
} chore;

/*
 * The run directories in apps/<dir> (isolated apps' socket directories) belong to the app's
 * uid, which the service user cannot empty: the privileged helper removes them first.
 */
static void runs_remove(rp_sites *s, const char *dir)
{
    char path[PATH_CAP];

    for (int k = 0; k < 10; k++) {
        int n = k == 0 ? snprintf(path, sizeof(path), "%s/%s/run", s->apps_path, dir)
                       : snprintf(path, sizeof(path), "%s/%s/run.%d", s->apps_path, dir, k);
        if (n > 0 && (size_t)n < sizeof(path))
            (void)rp_helper_rmrun(s->helper, path);
    }
}

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
        /* A release of an app that a swap has since moved to the other app's name: checked and
         * removed through the same directory descriptor, so the answer cannot go stale. */
        if (c->rdir[0] != '\0') {
            char own[37] = "";
            int ofd = openat(fd, OWNER_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            ssize_t n = ofd >= 0 ? read(ofd, own, 36) : -1;
            if (ofd >= 0)
                close(ofd);
            if (n != 36 || memcmp(own, c->rdir, 36) != 0) {
                close(fd);
                return; /* start-up's sweep removes what no row owns */
            }
        }
    }
    if (slash == NULL)
        runs_remove(c->s, c->dir);
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
    chore *c = tl ? rp_calloc(1, sizeof(*c)) : NULL;
    app *a;

    if (c == NULL)
        return;
    c->s = s;
    snprintf(c->dir, sizeof(c->dir), "%s/releases/%" PRId64, name, release);
    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL)
        memcpy(c->rdir, a->rdir, sizeof(c->rdir));
    uv_mutex_unlock(&s->mu);
    c->work.data = c;
    if (uv_queue_work(tl->loop, &c->work, chore_work, chore_done) != 0)
        rp_free(c);
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

/*
 * apps/NAME/releases/.owner names the app (its object id) whose releases the directory holds: a
 * swap exchanges two apps' release directories (one atomic rename) inside the store write that
 * records it, so a crash between the two leaves directories that disagree with the store, and
 * start-up (owners_repair) exchanges them back.
 */

static int owner_write(rp_sites *s, const char *name, const char *id)
{
    char path[PATH_CAP];

    /* Whole or not at all (a temporary file renamed over it): a crash never leaves half. */
    if ((size_t)snprintf(path, sizeof(path), "%s/%s/releases/" OWNER_FILE, s->apps_path, name) >=
        sizeof(path))
        return RP_ETOOBIG;
    return rp_file_write_atomic(path, id, strlen(id), 0644);
}

static int owner_read(rp_sites *s, const char *name, char id[37])
{
    char rel[PATH_CAP];
    ssize_t n;
    int fd;

    snprintf(rel, sizeof(rel), "%s/releases/" OWNER_FILE, name);
    fd = openat(s->apps_fd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return RP_ENOENT;
    n = read(fd, id, 36);
    close(fd);
    if (n != 36)
        return RP_EPARSE;
    id[36] = '\0';
    return 0;
}

/* mkdir apps/NAME and apps/NAME/releases; a stale directory of that name is removed first. */
static int make_app_dirs(rp_sites *s, const char *name, const char *id)
{
    char rel[PATH_CAP];

    if (mkdirat(s->apps_fd, name, 0700) != 0) {
        if (errno != EEXIST)
            return RP_EIO;
        runs_remove(s, name);
        if (rp_unzip_rmtree(s->apps_fd, name) != 0 || mkdirat(s->apps_fd, name, 0700) != 0)
            return RP_EIO;
    }
    snprintf(rel, sizeof(rel), "%s/releases", name);
    if (mkdirat(s->apps_fd, rel, 0755) != 0 && errno != EEXIST)
        return RP_EIO;
    return owner_write(s, name, id);
}

static int create_write(sqlite3 *db, void *arg)
{
    op *o = arg;
    sqlite3_stmt *st = NULL;

    int64_t uid = RP_SITES_UID_BASE;

    /* A slot needs its app, and room, at commit time (a delete of the app may have raced). */
    if (o->parent[0] != '\0') {
        int ok = 0;
        if ((st = prep(db,
                       "SELECT (SELECT COUNT(*) FROM apps WHERE name = ?1 AND parent = ''),"
                       " (SELECT COUNT(*) FROM apps WHERE parent = ?1)",
                       o->parent)) == NULL)
            return RP_EDB;
        if (sqlite3_step(st) == SQLITE_ROW)
            ok = sqlite3_column_int(st, 0) == 1 && sqlite3_column_int(st, 1) < RP_SITES_SLOTS_MAX
                     ? 1
                     : -1;
        sqlite3_finalize(st);
        st = NULL;
        if (ok == 0)
            return RP_EDB;
        if (ok < 0)
            return RP_ECONFLICT;
    }
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
                   " created_at, updated_at, uid, parent, slot, rdir, auth) VALUES (?1, ?2, 0, 1,"
                   " ?4, ?3, ?3, ?5, ?6, ?7, ?2, ?8)",
                   o->name)) == NULL)
        return RP_EDB;
    sqlite3_bind_text(st, 6, o->parent, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, o->slot, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, o->authtext ? o->authtext : "{}", -1, SQLITE_STATIC);
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
    return make_app_dirs(o->s, o->name, o->id);
}

static int delete_write(sqlite3 *db, void *arg)
{
    op *o = arg;
    sqlite3_stmt *st = NULL;
    char blob[RP_SITES_NAME_MAX + 16];
    int slots = -1;

    /* Checked here, at commit, too: a slot create may have raced the delete. */
    if ((st = prep(db, "SELECT COUNT(*) FROM apps WHERE parent = ?1", o->name)) == NULL)
        return RP_EDB;
    if (sqlite3_step(st) == SQLITE_ROW)
        slots = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (slots != 0)
        return slots < 0 ? RP_EDB : RP_ECONFLICT;
    /* The sealed settings and function keys go with the app (their KEK is destroyed after the
     * commit; the app_fnkeys row goes with the apps row). */
    snprintf(blob, sizeof(blob), "apps/%s/settings", o->name);
    if ((st = prep(db, "DELETE FROM obj.blobs WHERE id = ?1", blob)) == NULL || step_done(st) != 0)
        return RP_EDB;
    snprintf(blob, sizeof(blob), "apps/%s/fnkeys", o->name);
    if ((st = prep(db, "DELETE FROM obj.blobs WHERE id = ?1", blob)) == NULL || step_done(st) != 0)
        return RP_EDB;

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
                   " principal, allow_anon) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                   o->name)) == NULL)
        return RP_EDB;
    sqlite3_bind_int64(st, 2, o->release);
    sqlite3_bind_int64(st, 3, o->now);
    sqlite3_bind_int64(st, 4, o->res.files);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)o->res.bytes);
    sqlite3_bind_int64(st, 6, o->res.skipped);
    sqlite3_bind_text(st, 7, o->who.id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, o->allow_anon != 0);
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

static int auth_write(sqlite3 *db, void *arg)
{
    op *o = arg;
    sqlite3_stmt *st = NULL;

    if ((st = prep(db, "UPDATE apps SET auth = ?2, updated_at = ?3 WHERE name = ?1", o->name)) ==
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
 * A function app's process: its custom handler's command line (host.json), in its working
 * directory, told its port the way the custom handler protocol does. %NAME% in arguments stays
 * as written: expanding settings here would put them (secrets among them) on a command line,
 * where rampart never puts them; the handler reads them from its environment.
 * Caller holds mu. 0, or -1 (logged) when it cannot run: too long, or the isolated tier, whose
 * unix socket the protocol's FUNCTIONS_CUSTOMHANDLER_PORT cannot name.
 */
static int fn_command(const app *a, char *cmd, size_t cap)
{
    const rp_fn_app *fa = a->live->fn;
    const char *wd = rp_fn_app_workdir(fa), *why = NULL;
    char line[RP_FN_COMMAND_MAX + 1];
    size_t n = 0;
    int k;

    if (rp_appcfg_tier(a->cfg) == RP_PROC_ISOLATED)
        why = "function apps run in the shared tier for now: the isolated tier's socket cannot be "
              "named by FUNCTIONS_CUSTOMHANDLER_PORT";
    else if (rp_fn_app_command(fa, NULL, 0, line, sizeof(line)) != 0)
        why = "the custom handler's command line is too long";
    if (why == NULL) {
        k = snprintf(cmd, cap,
                     "FUNCTIONS_APP_ROOT_PATH=\"$PWD\"; export FUNCTIONS_APP_ROOT_PATH; %s",
                     wd[0] ? "cd " : "");
        n = k > 0 && (size_t)k < cap ? (size_t)k : cap;
        if (n >= cap || (wd[0] && rp_fn_sh_word(wd, cmd, cap, &n) != 0))
            why = "the custom handler's command line is too long";
    }
    if (why == NULL) {
        k = snprintf(cmd + n, cap - n,
                     "%sFUNCTIONS_CUSTOMHANDLER_PORT=\"$PORT\" FUNCTIONS_WORKER_RUNTIME=custom "
                     "FUNCTIONS_CUSTOMHANDLER_WORKER_ID=1 exec %s",
                     wd[0] ? " && " : "", line);
        if (k < 0 || (size_t)k >= cap - n)
            why = "the custom handler's command line is too long (1 KiB at most)";
    }
    if (why != NULL) {
        rp_logline l;
        rp_logline_begin(&l, RP_LOG_ERROR, "functions.start");
        rp_logline_str(&l, "message", why);
        rp_logline_str(&l, "app", a->name);
        rp_logline_end(&l);
        cmd[0] = '\0';
        return -1;
    }
    return 0;
}

/* FNV-1a, 32 bits: a function worker's run directory suffix. */
static uint32_t fnv32(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The supervisor's name of function fn's own worker: "APP~FN". */
static int worker_name(const char *appname, const char *fn, char *out, size_t cap)
{
    return (size_t)snprintf(out, cap, "%s~%s", appname, fn) < cap ? 0 : RP_ETOOBIG;
}

/*
 * Functions with an identity of their own (beyond Azure): each runs a worker of its own, the
 * app's handler command with the app's settings and the function's IDENTITY_* instead of the
 * app's, so no other function's code ever holds its header. base is the app's own process
 * spec (NULL: no process, every worker stops). A function's worker starts once the app's
 * environment has its identity (a build follows any deploy that changes the set). Caller holds
 * mu.
 */
static void sync_workers_locked(rp_sites *s, const char *name, app *a, const rp_proc_spec *base)
{
    json_t *now = json_array(), *v;
    char wname[RP_SITES_NAME_MAX + RP_FN_NAME_MAX + 2], wrun[PATH_CAP];
    uint32_t used[RP_APPENV_FN_MAX];
    size_t nused = 0, i;

    for (i = 0; now != NULL && a != NULL && base != NULL && i < rp_appenv_fn_count(a->env); i++) {
        const char *f = rp_appenv_fn_name(a->env, i);
        const rp_fn_function *fd = rp_fn_app_find(a->live->fn, f);
        rp_proc_spec spec = *base;
        uint32_t h = fnv32(f);
        size_t k;
        int rc;
        if (fd == NULL || !fn_own_worker(fd))
            continue; /* the environment is older than the release: gone, or now without */
        for (k = 0; k < nused && used[k] != h; k++)
            ;
        if (k < nused || worker_name(name, f, wname, sizeof(wname)) != 0 ||
            (size_t)snprintf(wrun, sizeof(wrun), "%.3900s/%.60s/run-%08x", s->apps_path, name, h) >=
                sizeof(wrun)) {
            rp_log_msg(RP_LOG_ERROR, "functions.start",
                       "a function's own worker cannot be named (two names share a hash)");
            continue;
        }
        used[nused++] = h;
        spec.name = wname;
        spec.site = name;
        spec.run_dir = wrun;
        spec.health_path = NULL;
        spec.env = rp_appenv_fn_vars(a->env, f, &spec.nenv);
        rc = rp_procs_set(s->procs, &spec);
        if (rc != 0)
            rp_log_msg(RP_LOG_ERROR, "functions.start",
                       "a function's own worker could not be scheduled");
        else if (json_array_append_new(now, json_string(f)) != 0)
            break;
    }
    /* Workers no longer wanted stop (all of them when base is NULL). */
    json_array_foreach(a != NULL ? a->workers : NULL, i, v)
    {
        size_t k;
        json_t *w;
        int keep = 0;
        json_array_foreach(now, k, w) keep |= json_equal(v, w);
        if (!keep && worker_name(name, json_string_value(v), wname, sizeof(wname)) == 0)
            rp_procs_stop(s->procs, wname);
    }
    if (a != NULL) {
        json_decref(a->workers);
        a->workers = now;
        now = NULL;
    }
    json_decref(now);
}

/*
 * Brings app name's process in line with its settings and live release: (re)started from the
 * release with appCommandLine in the sandbox its settings ask for (tier, limits) under the
 * app's uid, with its environment (settings, references, identity) when that is built; or
 * stopped when there is no command or nothing deployed. A function app's functions with their
 * own identity get their workers (sync_workers_locked).
 */
/* App setting name of a function app as a number lo..hi, or def (absent or out of range).
 * Caller holds mu. */
static uint64_t fn_setting(const app *a, const char *name, uint64_t lo, uint64_t hi, uint64_t def)
{
    const char *const *vars;
    size_t n, k = strlen(name);
    uint64_t v;

    if (!is_fn_app(a) || a->env == NULL)
        return def;
    vars = rp_appenv_vars(a->env, &n);
    for (size_t i = 0; i < n; i++)
        if (strncmp(vars[i], name, k) == 0 && vars[i][k] == '=')
            return rp_parse_u64(vars[i] + k + 1, strlen(vars[i] + k + 1), hi, &v) == 0 && v >= lo
                       ? v
                       : def;
    return def;
}

/* RAMPART_FUNCTIONS_IDLE_SECONDS of a's settings (5-86400), or 0: never scaled to zero (a
 * timer occurrence wakes an app at zero like a call does). Caller holds mu. */
static uint64_t idle_seconds(const app *a)
{
    return fn_setting(a, "RAMPART_FUNCTIONS_IDLE_SECONDS", 5, 86400, 0);
}

/* Azure's WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT: instances of the handler at most (1-16,
 * default 1: one instance, as on a dedicated plan). Caller holds mu. */
static int max_instances(const app *a)
{
    return (int)fn_setting(a, "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT", 1,
                           RP_SITES_INSTANCES_MAX, 1);
}

/* The supervisor's name of extra instance k (1..) of app: "APP#k". */
static void instance_name(const char *appname, int k, char *out, size_t cap)
{
    snprintf(out, cap, "%s#%d", appname, k);
}

/* The gate's concurrency for a's instances: maxConcurrentRequests for each one ready (the
 * first always counts: calls wait for it to start). Returns how many extra instances are
 * ready. Caller holds mu. */
static long gate_instances_locked(rp_sites *s, app *a)
{
    char iname[RP_SITES_NAME_MAX + 16], sock[RP_PROC_SOCKET_MAX + 1];
    long per = a->gate_conc, ready = 1;
    int port, running;

    for (int k = 1; k <= a->instances_run; k++) {
        instance_name(a->name, k, iname, sizeof(iname));
        ready +=
            rp_procs_target(s->procs, iname, &port, sock, sizeof(sock), &running) == 0 && running;
    }
    if (a->gate != NULL && per > 0)
        rp_fn_gate_limits(a->gate, per * ready, a->gate_out);
    return ready - 1;
}

/*
 * A function app's extra instances (scale out): instances 1..a->instances run the app's handler
 * as "APP#k" beside the first, with its spec (base; NULL: none runs). from: the first instance
 * to (re)start (1 after a new release or environment, else the first new one: a scale-out does
 * not restart the running ones). Caller holds mu.
 */
static void sync_instances_locked(rp_sites *s, const char *name, app *a, const rp_proc_spec *base,
                                  int from)
{
    char iname[RP_SITES_NAME_MAX + 16], irun[PATH_CAP], tag[16];
    int want = base != NULL && a != NULL && is_fn_app(a) ? a->instances : 0;

    for (int k = from; k <= want; k++) {
        rp_proc_spec spec = *base;
        instance_name(name, k, iname, sizeof(iname));
        snprintf(tag, sizeof(tag), "#%d", k);
        if ((size_t)snprintf(irun, sizeof(irun), "%.3900s/%.60s/run-%08x", s->apps_path, name,
                             fnv32(tag)) >= sizeof(irun))
            continue;
        spec.name = iname;
        spec.site = name;
        spec.run_dir = irun;
        if (rp_procs_set(s->procs, &spec) != 0)
            rp_log_msg(RP_LOG_ERROR, "functions.scale", "an instance could not be scheduled");
    }
    for (int k = want + 1; a != NULL && k <= a->instances_run; k++) {
        instance_name(name, k, iname, sizeof(iname));
        rp_procs_stop(s->procs, iname);
    }
    if (a != NULL) {
        a->instances_run = want;
        gate_instances_locked(s, a);
    }
}

static void sync_process_(rp_sites *s, const char *name, int only_instances);

static void sync_process(rp_sites *s, const char *name)
{
    sync_process_(s, name, 0);
}

static void sync_process_(rp_sites *s, const char *name, int only_instances)
{
    char dir[PATH_CAP], logs[PATH_CAP], run_dir[PATH_CAP], host[300];
    char cmd[RP_PROC_COMMAND_MAX + 1];
    const char *vars[2 * RP_SETTINGS_COUNT_MAX + 8];
    rp_proc_spec spec = {0};
    int run = 0;
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL && !a->env_ready) {
        /* Its environment is being built: env_ready starts it with that (an app process never
         * runs without its settings and identity once it has some). */
        uv_mutex_unlock(&s->mu);
        return;
    }
    if (a != NULL && a->live != NULL && rp_appcfg_command(a->cfg) != NULL &&
        release_path(s, name, a->live->release, dir, sizeof(dir)) == 0) {
        rp_strlcpy(cmd, rp_appcfg_command(a->cfg), sizeof(cmd));
        run = 1;
    } else if (a != NULL && a->live != NULL && a->live->fn != NULL && !a->parked &&
               release_path(s, name, a->live->release, dir, sizeof(dir)) == 0) {
        run = fn_command(a, cmd, sizeof(cmd)) == 0;
    }
    /* A function app's timers follow its live release and settings (none for anything else);
     * scaling to zero and back changes neither, and reinstalls nothing. */
    if (s->timers != NULL && !only_instances) {
        const rp_fn_app *fa = a != NULL && is_fn_app(a) ? a->live->fn : NULL;
        int64_t rel = fa != NULL ? a->live->release : 0;
        if (a == NULL || rel != a->timers_release || a->env_gen != a->timers_gen || rel == 0) {
            const char *const *env = NULL;
            size_t nenv = 0;
            char state[PATH_CAP];
            if (fa != NULL)
                env = rp_appenv_vars(a->env, &nenv);
            if ((size_t)snprintf(state, sizeof(state), "%.3900s/%.60s/timers.json", s->apps_path,
                                 name) >= sizeof(state))
                state[0] = '\0';
            (void)rp_fn_timers_set(s->timers, name, fa, env, nenv, state[0] ? state : NULL);
            if (a != NULL) {
                a->timers_release = rel;
                a->timers_gen = a->env_gen;
            }
        }
    }
    /* Posted under the lock: the supervisor gets the messages of concurrent deploys, config
     * changes and deletes in the order their state changed here. */
    if (!run) {
        if (!only_instances) {
            rp_procs_stop(s->procs, name);
            sync_workers_locked(s, name, a, NULL);
        }
        sync_instances_locked(s, name, a, NULL, 1);
    } else if ((size_t)snprintf(logs, sizeof(logs), "%.3900s/%.60s/logs", s->apps_path, name) <
                   sizeof(logs) &&
               (size_t)snprintf(run_dir, sizeof(run_dir), "%.3900s/%.60s/run", s->apps_path, name) <
                   sizeof(run_dir)) {
        int rc;
        snprintf(host, sizeof(host), "%s.%s", name, s->domain);
        spec.name = name;
        spec.command = cmd;
        spec.dir = dir;
        spec.log_dir = logs;
        spec.run_dir = run_dir;
        spec.host = host;
        spec.uid = a->uid;
        spec.tier = rp_appcfg_tier(a->cfg);
        spec.memory_mb = rp_appcfg_memory_mb(a->cfg);
        spec.pids = rp_appcfg_pids(a->cfg);
        spec.cpu_percent = rp_appcfg_cpu_percent(a->cfg);
        spec.health_path = rp_appcfg_health_path(a->cfg); /* NULL: none */
        /* Copied by rp_procs_set, under the lock that keeps a->env alive. An isolated app has
         * no route to the managed identity endpoint (its own network namespace): no identity
         * variables that would only make the SDKs time out. */
        spec.env = a->env != NULL ? rp_appenv_vars(a->env, &spec.nenv) : NULL;
        if (spec.tier == RP_PROC_ISOLATED && spec.nenv > 0) {
            size_t k = 0;
            for (size_t i = 0; i < spec.nenv && k < sizeof(vars) / sizeof(vars[0]); i++)
                if (strncmp(spec.env[i], "IDENTITY_", 9) != 0)
                    vars[k++] = spec.env[i];
            spec.env = vars;
            spec.nenv = k;
        }
        if (only_instances) {
            /* A scale out or in: the running processes stay as they are. */
            sync_instances_locked(s, name, a, &spec, a->instances_run + 1);
            uv_mutex_unlock(&s->mu);
            return;
        }
        rc = rp_procs_set(s->procs, &spec);
        if (rc == RP_ETOOBIG)
            rp_log_msg(RP_LOG_ERROR, "sites.process",
                       "an app's process cannot start: its variables are over 256 KiB, or the "
                       "data directory's path is too long for an isolated app's socket");
        else if (rc != 0)
            rp_log_msg(RP_LOG_ERROR, "sites.process", "an app's process could not be scheduled");
        sync_workers_locked(s, name, a, rp_appcfg_command(a->cfg) == NULL ? &spec : NULL);
        sync_instances_locked(s, name, a, rp_appcfg_command(a->cfg) == NULL ? &spec : NULL, 1);
    }
    uv_mutex_unlock(&s->mu);
}

static void deploy_end(rp_sites *s, const char *name)
{
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL)
        a->deploying = a->swapping = 0;
    uv_mutex_unlock(&s->mu);
}

static void op_written(int status, void *arg)
{
    op *o = arg;
    rp_sites *s = o->s;

    o->in_store = 0;
    if (o->kind == OP_CONFIG || o->kind == OP_AUTH || o->kind == OP_STICKY)
        cfg_end(s, o);
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
            rp_strlcpy(a->rdir, o->id, sizeof(a->rdir));
            a->created = a->updated = o->now;
            a->next_release = 1;
            a->uid = o->uid;
            rp_strlcpy(a->parent, o->parent, sizeof(a->parent));
            rp_strlcpy(a->slot, o->slot, sizeof(a->slot));
            if (o->authtext != NULL) {
                json_t *st = json_loads(o->authtext, 0, NULL);
                char aerr[300];
                /* The app's settings, accepted before: only memory can fail here. */
                if (auth_build(s, a->name, st, 0, &a->auth, aerr, sizeof(aerr)) != 0)
                    rp_log_msg(RP_LOG_ERROR, "sites.auth",
                               "a new slot's authentication could not be built: restart");
                json_decref(st);
            }
            a->cfg = o->newcfg;
            o->newcfg = NULL;
            uv_mutex_lock(&s->mu);
            if (find_locked(s, o->name, strlen(o->name)) == NULL) {
                a->next = s->apps;
                s->apps = a;
                /* Its identity now (so roles can be assigned before the first deploy). */
                env_build_locked(s, a);
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
            /* A changed command starts, restarts or stops the process, changed sandbox settings
             * restart it; other settings leave it alone. Compared under the lock: a delete may
             * free a right after it. */
            int changed = old != NULL && a != NULL && !rp_appcfg_process_equal(old, a->cfg);
            int process = a != NULL && rp_appcfg_command(a->cfg) != NULL;
            /* A process that starts or stops (or changes tier) needs its identity session
             * started or ended: the new environment's arrival (re)starts it. */
            if (a != NULL && changed)
                env_rotate_locked(s, a);
            uv_mutex_unlock(&s->mu);
            if (changed && !process)
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
            if (gone != NULL)
                sync_workers_locked(s, gone->name, gone, NULL);
            uv_mutex_unlock(&s->mu);
            if (gone != NULL)
                rp_appenvs_forget(s->envs, gone->name, gone->id);
            app_free(s, gone);
            rp_procs_stop(s->procs, o->name);
            (void)rp_fn_timers_set(s->timers, o->name, NULL, NULL, 0, NULL);
            remove_later(s, o->tomb);
        }
        break;
    case OP_DEPLOY:
    case OP_ROLLBACK:
        if (status == 0) {
            o->prev = switch_live(s, o->name, o->newc, o->now, 1);
            o->newc = NULL;
            {
                /* A function app's first release (its handler gets an identity session) or a
                 * changed set of functions with their own identity: a new environment. */
                app *a;
                uv_mutex_lock(&s->mu);
                a = find_locked(s, o->name, strlen(o->name));
                if (a != NULL && (a->env_want != wants_session(a) || a->fn_ids != fn_ids_hash(a)))
                    env_build_locked(s, a);
                uv_mutex_unlock(&s->mu);
            }
            /* The same app's new code keeps its identity header (a swap, which brings another
             * slot's code, or a new command gets a new one): replaced once ready. */
            sync_process(s, o->name);
            for (int i = 0; i < o->nprune; i++)
                remove_release_later(s, o->name, o->prune[i]);
        } else {
            deploy_end(s, o->name);
            if (o->kind == OP_DEPLOY)
                remove_release_later(s, o->name, o->release);
        }
        break;
    case OP_SWAP: swap_written(s, o, status); break;
    case OP_STICKY:
        if (status == 0) {
            json_t *old = NULL;
            app *a;
            uv_mutex_lock(&s->mu);
            a = find_locked(s, o->name, strlen(o->name));
            if (a != NULL) {
                old = a->sticky;
                a->sticky = json_deep_copy(o->sticky);
                a->updated = o->now;
            }
            uv_mutex_unlock(&s->mu);
            json_decref(old);
        }
        break;
    case OP_AUTH:
        if (status == 0) {
            rp_easyauth *old = NULL;
            app *a;
            uv_mutex_lock(&s->mu);
            a = find_locked(s, o->name, strlen(o->name));
            if (a != NULL) {
                old = a->auth;
                a->auth = o->newauth;
                a->updated = o->now;
                o->newauth = NULL;
                /* Its keys are fetched now, off the loops, before the first token comes. */
                if (s->oidc != NULL && external_issuer(s, a->auth) != NULL)
                    (void)rp_oidc_watch(s->oidc, external_issuer(s, a->auth));
            }
            uv_mutex_unlock(&s->mu);
            rp_easyauth_unref(old);
        }
        break;
    case OP_SETTINGS: {
        app *a;
        uv_mutex_lock(&s->mu);
        a = find_locked(s, o->name, strlen(o->name));
        if (a != NULL && strcmp(a->id, o->id) != 0)
            a = NULL; /* another instance of the name: its flag is its own */
        if (a != NULL) {
            a->settings_busy = 0;
            /* A settings change restarts the app with them (as in Azure), references re-read. */
            if (status == 0) {
                a->updated = o->now;
                env_build_locked(s, a);
            }
        }
        uv_mutex_unlock(&s->mu);
        break;
    }
    default: break;
    }
    if (status != 0) {
        op_audit(o, status, NULL);
        if (status == RP_ENOENT)
            fail(o->req, 404, "NotFound", "no such app");
        else if (status == RP_EEXIST)
            fail(o->req, 409, "Conflict", "the app exists already");
        else if (status == RP_ECONFLICT)
            fail(o->req, 409, "Conflict",
                 o->kind == OP_DELETE ? "the app has deployment slots: delete them first"
                                      : "the app is gone or has as many slots as it may have");
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
static int app_get(rp_sites *s, const char *name, size_t n, rp_appcfg **cfg, content **c,
                   rp_easyauth **auth)
{
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, n);
    if (a != NULL) {
        *cfg = rp_appcfg_ref(a->cfg);
        if (auth != NULL)
            *auth = rp_easyauth_ref(a->auth);
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
        app_scope(s, name, scope, sizeof(scope));
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
 * with Access-Control-Request-Method) itself. A static app serves GET and HEAD only; a process
 * or function app takes any method, so its preflight allows the one asked for (as Azure's
 * platform CORS does), and an OPTIONS that is no preflight goes on to it. 1 when the request
 * goes on.
 */
static int cors(rp_req *req, const rp_appcfg *cfg, int static_app)
{
    rp_str origin = rp_req_header(req, "origin");
    rp_str method = rp_req_header(req, "access-control-request-method");
    int preflight = req->method == RP_METHOD_OPTIONS && method.p != NULL;
    int allowed, credentials = 0;
    char value[300];

    (void)rp_resp_header(req, "Vary", "Origin");
    if (origin.p == NULL || origin.n >= sizeof(value)) {
        if (req->method != RP_METHOD_OPTIONS || !static_app)
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
    if (req->method != RP_METHOD_OPTIONS || (!preflight && !static_app))
        return 1;
    if (static_app || method.n == 0 || method.n >= sizeof(value)) {
        (void)rp_resp_header(req, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
    } else {
        size_t i;
        for (i = 0; i < method.n && rp_http_tchar((unsigned char)method.p[i]); i++)
            value[i] = method.p[i];
        value[i] = '\0';
        (void)rp_resp_header(req, "Access-Control-Allow-Methods",
                             i == method.n ? value : "GET, HEAD, OPTIONS");
    }
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

/* ---------------------------------------------------------------- built-in authentication */

static void auth_audit(rp_sites *s, rp_req *req, const rp_identity *who, const char *verdict,
                       const char *reason)
{
    char scope[SCOPE_CAP], name[RP_SITES_NAME_MAX + 1];
    json_t *d = json_pack("{s:s,s:s}", "verdict", verdict, "reason", reason);

    snprintf(name, sizeof(name), "%.*s", (int)req->host_label.n, req->host_label.p);
    app_scope(s, name, scope, sizeof(scope));
    (void)rp_iam_audit(s->iam, req, who, "authz", "Microsoft.Web/sites/easyAuth", scope, "denied",
                       d, 0, NULL, NULL);
    json_decref(d);
}

static void app_audience(const rp_sites *s, const char *name, size_t n, char *out, size_t cap)
{
    snprintf(out, cap, "https://%.*s.%s", (int)n, name, s->domain);
}

/* The audiences a token for this app may carry: its origin, the registration's client id and
 * allowedAudiences (all verified by the token service's keys; the policy checks them again). */
static size_t audiences(const rp_easyauth *auth, const char *origin, const char **out, size_t cap)
{
    const json_t *aad = json_object_get(
        json_object_get(rp_easyauth_stored(auth), "identityProviders"), "azureActiveDirectory");
    const json_t *list = json_object_get(json_object_get(aad, "validation"), "allowedAudiences");
    const char *cid =
        json_string_value(json_object_get(json_object_get(aad, "registration"), "clientId"));
    const json_t *v;
    size_t n = 0, i;

    out[n++] = origin;
    if (cid != NULL && n < cap)
        out[n++] = cid;
    json_array_foreach(list, i, v) if (json_is_string(v) && n < cap) out[n++] =
        json_string_value(v);
    return n;
}

/*
 * A bearer token of an external OpenID issuer (openIdIssuer): verified with its published keys
 * (iam/oidc.c: fetched over verified TLS, cached, never on this thread). Failures are audited.
 */
static rp_authn_status external_token(rp_sites *s, rp_req *req, const char *issuer, json_t **claims,
                                      const char **tok, size_t *tlen)
{
    rp_str auth = rp_req_header(req, "authorization");
    rp_authn_status st = RP_AUTHN_INVALID;
    const char *why = "unsupported authorization scheme";

    *claims = NULL;
    if (auth.p == NULL)
        return RP_AUTHN_MISSING;
    if (rp_req_header_count(req, "authorization") > 1) {
        why = "more than one Authorization header";
    } else if (auth.n > 7 && rp_str_eq_nocase((rp_str){auth.p, 7}, "bearer ")) {
        rp_str t = rp_str_trim((rp_str){auth.p + 7, auth.n - 7});
        rp_oidc_status os;
        (void)rp_oidc_watch(s->oidc, issuer); /* no I/O: re-adds an evicted issuer */
        os = rp_oidc_verify(s->oidc, issuer, t.p, t.n, now_s(), claims, &why);
        st = os == RP_OIDC_OK        ? RP_AUTHN_OK
             : os == RP_OIDC_EXPIRED ? RP_AUTHN_EXPIRED
                                     : RP_AUTHN_INVALID;
        if (st == RP_AUTHN_OK) {
            *tok = t.p;
            *tlen = t.n;
        }
    }
    if (st != RP_AUTHN_OK) {
        json_t *d = json_pack("{s:s,s:s,s:s}", "status", rp_authn_status_name(st), "reason", why,
                              "issuer", issuer);
        (void)rp_iam_audit(s->iam, req, NULL, "authn", "app", req->path, "failure", d, 0, NULL,
                           NULL);
        json_decref(d);
    }
    return st;
}

/*
 * Easy Auth in front of the app: 1 signed in (*who holds the principal headers), 0 anonymous
 * and allowed on, -1 answered here (a refusal, a redirect, or an endpoint under the prefix).
 */
static int easy_auth(rp_sites *s, rp_req *req, const rp_easyauth *auth, rp_easyauth_principal *who)
{
    char origin[400], target[2048], name[RP_SITES_NAME_MAX + 1], scope[SCOPE_CAP], appid[37] = "";
    const char *auds[72], *tok = NULL;
    json_t *claims = NULL;
    rp_easyauth_decision d;
    rp_signin_ctx sc;
    char port[16];
    rp_identity id;
    rp_authn_status st;
    rp_str xhr = rp_req_header(req, "x-requested-with");
    const char *ext = NULL;
    size_t tlen = 0, naud;
    int rc = -1;

    app_audience(s, req->host_label.p, req->host_label.n, origin, sizeof(origin));
    naud = audiences(auth, origin, auds, sizeof(auds) / sizeof(auds[0]));
    snprintf(name, sizeof(name), "%.*s", (int)req->host_label.n, req->host_label.p);
    /* One look under the lock for what sign-in needs (this runs on every request). */
    uv_mutex_lock(&s->mu);
    {
        const app *a = find_locked(s, name, strlen(name));
        if (a != NULL) {
            scope_locked(a, scope, sizeof(scope));
            memcpy(appid, a->id, sizeof(appid));
        } else {
            snprintf(scope, sizeof(scope), "/apps/%s", name);
        }
    }
    uv_mutex_unlock(&s->mu);
    sc = (rp_signin_ctx){.iam = s->iam,
                         .box = s->box,
                         .app = name,
                         .app_id = appid,
                         .port = port_part(s, port),
                         .origin = origin,
                         .scope = scope,
                         .prefix = rp_easyauth_api_prefix(auth),
                         .lifetime_s = rp_easyauth_cookie_seconds(auth),
                         .now = now_s()};
    if (s->oidc != NULL && (ext = external_issuer(s, auth)) != NULL) {
        /* Another OpenID issuer's token, with its published keys (the policy checks aud). */
        memset(&id, 0, sizeof(id));
        st = external_token(s, req, ext, &claims, &tok, &tlen);
    } else {
        st = rp_authn_app(s->iam, req, auds, naud, &id, &claims, &tok, &tlen);
        /* No Authorization header: a browser's session from an interactive sign-in, if any. */
        if (st == RP_AUTHN_MISSING)
            st = rp_signin_session(&sc, req, &claims, &id);
    }
    if (rp_easyauth_is_auth_path(auth, req->path)) {
        const char *prefix = rp_easyauth_api_prefix(auth), *rest = req->path + strlen(prefix);
        if (strcmp(rest, "/me") == 0 &&
            (req->method == RP_METHOD_GET || req->method == RP_METHOD_HEAD)) {
            /* A session has no access token to show (there is no token store). */
            char *t = claims && tok ? rp_arena_strndup(req->arena, tok, tlen) : NULL;
            json_t *me = claims && (t || !tok) ? rp_easyauth_me(claims, t) : NULL;
            rp_resp_header(req, "Cache-Control", "no-store");
            if (me != NULL)
                rp_resp_json(req, 200, me);
            else
                rp_resp_error(req, 401, "Unauthorized", "send a bearer token for this app");
        } else if (ext != NULL && strncmp(rest, "/login", 6) == 0) {
            rp_resp_error(req, 501, "InteractiveLoginUnavailable",
                          "sign-in in the browser works with this platform's token service; with "
                          "an external openIdIssuer, send that issuer's bearer tokens");
        } else if (rp_signin_serve(&sc, req, rest)) {
            /* answered: login, callback, logout */
        } else {
            rp_resp_error(req, 404, "NotFound", "no such authentication endpoint");
        }
        goto out;
    }
    /* The redirect's way back: the path and query as the client sent them, still
     * percent-encoded ("/a%20b" and "/x%3Fy" must come back as they were; decide keeps it
     * inside the site and drops it when too long). */
    snprintf(target, sizeof(target), "%.*s%s%.*s", (int)req->head->path.n,
             req->head->path.p != NULL ? req->head->path.p : "/", req->head->query.n ? "?" : "",
             (int)req->head->query.n, req->head->query.p ? req->head->query.p : "");
    rp_easyauth_decide(auth, req->path, target, claims,
                       st == RP_AUTHN_OK ? NULL : rp_authn_status_name(st),
                       xhr.p != NULL && rp_str_eq_nocase(xhr, "XMLHttpRequest"), &d);
    switch (d.verdict) {
    case RP_EA_PASS:
        if (rp_easyauth_principal_build(claims, who) != 0) {
            rp_resp_error(req, 403, "Forbidden", "the token's claims are too large to pass on");
            break;
        }
        rc = 1;
        break;
    case RP_EA_ANON: rc = 0; break;
    case RP_EA_REDIRECT:
        rp_resp_header(req, "Location", d.location);
        rp_resp_send(req, 302, NULL, NULL, 0);
        break;
    case RP_EA_401: {
        char chal[600];
        snprintf(chal, sizeof(chal), "Bearer realm=\"%s\", authorization_uri=\"%s/%s\"", origin + 8,
                 rp_iam_login(s->iam), rp_iam_tenant(s->iam));
        rp_resp_header(req, "WWW-Authenticate", chal);
        rp_resp_error(req, 401, "Unauthorized", "this app requires authentication");
        break;
    }
    case RP_EA_403:
        rp_resp_error(req, 403, "Forbidden", "the caller is not allowed by this app's policy");
        break;
    }
    /* Refusals are audited (the app decides for itself what a signed-in caller may do). */
    if (rc < 0)
        auth_audit(s, req, st == RP_AUTHN_OK && ext == NULL ? &id : NULL,
                   rp_easyauth_verdict_name(d.verdict), d.reason);
out:
    json_decref(claims);
    return rc;
}

/* ---------------------------------------------------------------- function apps */

/* A key change the admin API asked for, on the thread pool. */
typedef struct keyop {
    uv_work_t w;
    rp_sites *s;
    rp_req *req; /* NULL once the request is gone */
    char name[RP_SITES_NAME_MAX + 1], id[37], scope[16 + RP_FN_NAME_MAX];
    char key[RP_FN_KEY_NAME_MAX + 1];
    char value[RP_FN_KEY_VALUE_MAX + 1]; /* "" = generate one */
    int del, existed, rc;
    char err[256];
    rp_fn_keyset *set;
    rp_identity who; /* the management API's caller; id "" for a master-key holder */
} keyop;

static void keyop_gone(void *arg)
{
    keyop **slot = arg;

    if (*slot != NULL)
        (*slot)->req = NULL;
}

static int keys_admin_edit(json_t **doc, void *arg, char *err, size_t errlen)
{
    keyop *k = arg;
    rp_fn_keyset *cur = NULL;
    int rc;

    if (*doc == NULL) {
        snprintf(err, errlen, "the app has no keys yet");
        return RP_ENOENT;
    }
    if (rp_fn_keyset_parse(*doc, &cur, NULL, 0) == 0) {
        k->existed = rp_fn_keyset_get(cur, k->scope, k->key) != NULL;
        rp_fn_keyset_free(cur);
    }
    if (k->del) {
        rc = rp_fn_keyset_delete(*doc, k->scope, k->key);
        if (rc == RP_ENOENT)
            snprintf(err, errlen, "no such key");
    } else {
        rc = rp_fn_keyset_set(*doc, k->scope, k->key, k->value[0] ? k->value : NULL);
        if (rc == RP_EINVAL)
            snprintf(err, errlen,
                     "a key name is 1-128 of A-Z a-z 0-9 _ . - and a value 16-1024 "
                     "printable characters without spaces");
        else if (rc == RP_ETOOBIG)
            snprintf(err, errlen, "this scope holds %d keys at most", RP_FN_KEYS_PER_SCOPE);
    }
    return rc == 0 ? 1 : rc;
}

static void keyop_work(uv_work_t *w)
{
    keyop *k = w->data;

    k->rc =
        fnkeys_update(k->s, k->name, k->id, keys_admin_edit, k, &k->set, k->err, sizeof(k->err));
    OPENSSL_cleanse(k->value, sizeof(k->value));
}

static void keyop_done(uv_work_t *w, int status)
{
    keyop *k = w->data;
    rp_req *req = k->req;
    json_t *d;

    if (status != 0 && k->rc == 0)
        k->rc = RP_EIO;
    if (req != NULL) {
        keyop **slot = req->handler_data;
        if (slot != NULL)
            *slot = NULL;
        d = json_pack("{s:s,s:s,s:s,s:b}", "scope", k->scope, "key", k->key, "via",
                      k->who.id[0] ? "management API" : "master key", "delete", k->del);
        (void)rp_iam_audit(k->s->iam, req, k->who.id[0] ? &k->who : NULL, "change",
                           "Microsoft.Web/sites/functions/keys", k->name,
                           k->rc == 0 ? "success" : "failure", d, 0, NULL, NULL);
        json_decref(d);
    }
    if (k->rc == 0) {
        const char *v = k->set != NULL ? rp_fn_keyset_get(k->set, k->scope, k->key) : NULL;
        if (req != NULL && k->del) {
            rp_resp_send(req, 204, NULL, NULL, 0);
        } else if (req != NULL) {
            rp_resp_header(req, "Cache-Control", "no-store");
            rp_resp_json(req, k->existed ? 200 : 201,
                         json_pack("{s:s,s:s,s:[]}", "name", k->key, "value", v ? v : "", "links"));
        }
    } else if (req != NULL) {
        if (k->rc == RP_ENOENT)
            rp_resp_send(req, 404, NULL, NULL, 0);
        else if (k->rc == RP_EINVAL || k->rc == RP_ETOOBIG)
            rp_resp_error(req, 400, "BadRequest", k->err);
        else
            rp_resp_error(req, 500, "InternalError", k->err[0] ? k->err : "keys not stored");
    }
    rp_fn_keyset_free(k->set);
    OPENSSL_cleanse(k, sizeof(*k));
    rp_free(k);
}

/* fnhost's keys_change: runs the change on the thread pool, answers from there. */
static void keys_change(rp_sites *s, rp_req *req, const rp_identity *who, const char *appname,
                        const char *scope, const char *name, const char *value, int del)
{
    keyop *k = rp_calloc(1, sizeof(*k));
    keyop **slot = rp_arena_calloc(req->arena, sizeof(*slot));
    const app *a;
    int found = 0;

    if (k == NULL || slot == NULL || rp_arena_add_cleanup(req->arena, keyop_gone, slot) != 0) {
        rp_free(k);
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    k->s = s;
    k->req = req;
    k->del = del;
    if (who != NULL)
        k->who = *who;
    rp_strlcpy(k->name, appname, sizeof(k->name));
    rp_strlcpy(k->scope, scope, sizeof(k->scope));
    rp_strlcpy(k->key, name, sizeof(k->key));
    if (value != NULL && rp_strlcpy(k->value, value, sizeof(k->value)) != 0) {
        rp_free(k);
        rp_resp_error(req, 400, "BadRequest", "the key value is too long");
        return;
    }
    uv_mutex_lock(&s->mu);
    if ((a = find_locked(s, k->name, strlen(k->name))) != NULL) {
        memcpy(k->id, a->id, sizeof(k->id));
        found = 1;
    }
    uv_mutex_unlock(&s->mu);
    k->w.data = k;
    *slot = k;
    req->handler_data = slot;
    if (!found || uv_queue_work(rp_req_loop(req), &k->w, keyop_work, keyop_done) != 0) {
        *slot = NULL;
        OPENSSL_cleanse(k, sizeof(*k));
        rp_free(k);
        rp_resp_error(req, found ? 500 : 404, found ? "InternalError" : "NotFound",
                      found ? "the change could not be started" : "no such app");
    }
}

/* fnhost's keys_change: the app is the request's host. */
static void fn_keys_change(void *arg, rp_req *req, const char *scope, const char *name,
                           const char *value, int del)
{
    char app_name[RP_SITES_NAME_MAX + 1];

    snprintf(app_name, sizeof(app_name), "%.*s", (int)req->host_label.n, req->host_label.p);
    keys_change(arg, req, NULL, app_name, scope, name, value, del);
}

/* The management API's key change: PUT {"properties": {"value"?}} or DELETE. */
typedef struct mkey {
    rp_sites *s;
    rp_identity who;
    char app[RP_SITES_NAME_MAX + 1], scope[16 + RP_FN_NAME_MAX], key[RP_FN_KEY_NAME_MAX + 1];
} mkey;

static void mkey_body(rp_req *req)
{
    mkey *m = req->handler_data;
    json_t *b = req->body.len ? json_loadb(req->body.data, req->body.len, 0, NULL) : json_object();
    const json_t *props = json_object_get(b, "properties");
    const char *value = json_string_value(json_object_get(props ? props : b, "value"));

    if (req->body.data != NULL)
        OPENSSL_cleanse(req->body.data, req->body.len);
    if (!json_is_object(b))
        rp_resp_error(req, 400, "BadRequest", "send {\"properties\": {\"value\": VALUE}} or {}");
    else
        keys_change(m->s, req, &m->who, m->app, m->scope, m->key, value, 0);
    if (value != NULL)
        OPENSSL_cleanse((char *)value, strlen(value));
    json_decref(b);
}

/*
 * PUT/DELETE /api/apps/NAME/functions/F/keys/K and /api/apps/NAME/host/default/
 * {functionKeys|systemKeys}/K (systemKeys/_master: the master key, regenerated by a PUT without
 * a value). 1 when handled.
 */
static int keys_mgmt(rp_sites *s, rp_req *req, const rp_identity *who, const char *name,
                     const char *sub)
{
    const char *rest, *k;
    const char *action;
    mkey *m;
    int del = req->method == RP_METHOD_DELETE;
    char scope[16 + RP_FN_NAME_MAX];

    if (req->method != RP_METHOD_PUT && !del)
        return 0;
    if (strncmp(sub, "/functions/", 11) == 0) {
        const char *f = sub + 11, *slash = strchr(f, '/');
        if (slash == NULL || strncmp(slash, "/keys/", 6) != 0 ||
            (size_t)(slash - f) > RP_FN_NAME_MAX)
            return 0;
        snprintf(scope, sizeof(scope), "functions/%.*s", (int)(slash - f), f);
        rest = slash + 6;
        action = del ? "Microsoft.Web/sites/functions/keys/delete"
                     : "Microsoft.Web/sites/functions/keys/write";
    } else if (strncmp(sub, "/host/default/functionKeys/", 27) == 0) {
        rp_strlcpy(scope, "host", sizeof(scope));
        rest = sub + 27;
        action = del ? "Microsoft.Web/sites/host/functionKeys/delete"
                     : "Microsoft.Web/sites/host/functionKeys/write";
    } else if (strncmp(sub, "/host/default/systemKeys/", 25) == 0) {
        rp_strlcpy(scope, "system", sizeof(scope));
        rest = sub + 25;
        action = del ? "Microsoft.Web/sites/host/systemKeys/delete"
                     : "Microsoft.Web/sites/host/systemKeys/write";
    } else {
        return 0;
    }
    k = rest;
    if (k[0] == '\0' || strchr(k, '/') != NULL || strlen(k) > RP_FN_KEY_NAME_MAX)
        return 0;
    if (!allowed(s, req, who, action, name))
        return 1;
    if (strcmp(scope, "system") == 0 && strcmp(k, RP_FN_MASTER_NAME) == 0) {
        if (del) {
            rp_resp_error(req, 400, "BadRequest", "Cannot delete System Key.");
            return 1;
        }
        rp_strlcpy(scope, "master", sizeof(scope));
    } else if (!rp_fn_key_name_ok(k)) {
        rp_resp_error(req, 400, "BadRequest", "a key name is 1-128 of A-Z a-z 0-9 _ . -");
        return 1;
    }
    if (del) {
        keys_change(s, req, who, name, scope, k, NULL, 1);
        return 1;
    }
    m = rp_arena_calloc(req->arena, sizeof(*m));
    if (m == NULL) {
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return 1;
    }
    m->s = s;
    m->who = *who;
    rp_strlcpy(m->app, name, sizeof(m->app));
    rp_strlcpy(m->scope, scope, sizeof(m->scope));
    rp_strlcpy(m->key, k, sizeof(m->key));
    req->handler_data = m;
    rp_req_read_body(req, mkey_body);
    return 1;
}

/* The timers' thread asks where a function app's handler listens (0: not running). */
static int fn_resolve(void *arg, const char *name, const char *fn, int own, int *slot);

/* The timers' question: where does app's function fn answer now? (fn_resolve's answer: a
 * scaled-to-zero app is woken for its timers.) */
static int fn_port(void *arg, const char *name, const char *fn)
{
    rp_sites *s = arg;
    const rp_fn_function *f;
    int own = 0, port;
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    f = a != NULL && is_fn_app(a) ? rp_fn_app_find(a->live->fn, fn) : NULL;
    own = f != NULL && fn_own_worker(f);
    uv_mutex_unlock(&s->mu);
    /* Fail closed: a function the live release no longer has (or an app that is no function
     * app any more) runs nowhere, least of all in a process holding another identity. */
    if (f == NULL)
        return -1;
    port = fn_resolve(s, name, fn, own, NULL);
    if (port > 0) { /* a run starts: no scale to zero until it ends (fn_timer_ran) */
        uv_mutex_lock(&s->mu);
        if ((a = find_locked(s, name, strlen(name))) != NULL)
            a->timer_runs++;
        uv_mutex_unlock(&s->mu);
    }
    return port;
}

/* App a's invocation log, made on first use (NULL when it cannot be). Caller holds mu. */
static rp_fn_invlog *invlog_locked(rp_sites *s, app *a)
{
    char path[PATH_CAP];

    if (a->invlog == NULL && (size_t)snprintf(path, sizeof(path), "%s/%s/logs/invocations.log",
                                              s->apps_path, a->name) < sizeof(path))
        (void)rp_fn_invlog_new(path, &a->invlog);
    return a->invlog;
}

/* App a's throttle with the bounds of fa's host.json (NULL when it cannot be made). Caller
 * holds mu. */
static rp_fn_gate *gate_locked(rp_sites *s, app *a, const rp_fn_app *fa)
{
    const rp_fn_host *h = rp_fn_app_host(fa);

    if (a->gate == NULL) {
        if (rp_fn_gate_new(h->max_concurrent, h->max_outstanding, &a->gate) != 0)
            return NULL;
        a->gate_conc = a->gate_out = 0; /* set below, with the instances counted */
    } else if (a->gate_conc != h->max_concurrent || a->gate_out != h->max_outstanding) {
        rp_fn_gate_limits(a->gate, h->max_concurrent, h->max_outstanding);
    }
    if (a->gate_conc != h->max_concurrent || a->gate_out != h->max_outstanding) {
        a->gate_conc = h->max_concurrent;
        a->gate_out = h->max_outstanding;
        gate_instances_locked(s, a); /* maxConcurrentRequests is per instance */
    }
    return a->gate;
}

/* A timer run's record (the timers' thread). */
static void fn_timer_ran(void *arg, const char *name, const rp_fn_inv *inv)
{
    rp_sites *s = arg;
    rp_fn_invlog *log = NULL;
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL && invlog_locked(s, a) != NULL)
        log = rp_fn_invlog_ref(a->invlog);
    if (a != NULL && inv->outcome != RP_FN_SKIPPED) { /* a run that had a port has ended */
        if (a->timer_runs > 0)
            a->timer_runs--;
        a->last_call = uv_hrtime() / 1000000u;
    }
    uv_mutex_unlock(&s->mu);
    if (log != NULL)
        rp_fn_invlog_add(log, inv);
    rp_fn_invlog_unref(log);
}

/*
 * Scale to zero (the timers' thread, once a second): a function app idle for its
 * RAMPART_FUNCTIONS_IDLE_SECONDS, with no call running or waiting, has its processes stopped;
 * the next call starts them again (fn_resolve) and waits for them.
 */
static void fn_idle_tick(void *arg)
{
    rp_sites *s = arg;
    char names[16][RP_SITES_NAME_MAX + 1];
    const char *why[16];
    int scale[16];
    size_t n = 0;
    uint64_t now = uv_hrtime() / 1000000u;

    rp_fn_invlog *logs[64];
    size_t nlogs = 0;

    uv_mutex_lock(&s->mu);
    /* Invocation records reach their files once a second (written after the lock). */
    for (app *a = s->apps; a != NULL && nlogs < 64; a = a->next)
        if (a->invlog != NULL)
            logs[nlogs++] = rp_fn_invlog_ref(a->invlog);
    for (app *a = s->apps; a != NULL && n < 16; a = a->next) {
        uint64_t idle = idle_seconds(a);
        size_t running = 0, waiting = 0;
        long ready = 0;
        int busy = 0;
        if (!is_fn_app(a) || a->parked)
            continue;
        if (a->last_call == 0)
            a->last_call = now; /* a fresh start is no idleness */
        if (a->gate != NULL)
            rp_fn_gate_counts(a->gate, &running, &waiting);
        if (waiting > 0)
            a->queue_seen = now;
        ready = gate_instances_locked(s, a); /* instances that became ready take calls */
        /* Scale out: calls wait in line, every instance started is ready, another is allowed. */
        if (waiting > 0 && a->instances == a->instances_run && ready == a->instances_run &&
            a->instances + 1 < max_instances(a)) {
            a->instances++;
            why[n] = "calls wait: one more instance";
            scale[n] = 1;
            rp_strlcpy(names[n++], a->name, sizeof(names[0]));
            continue;
        }
        /* Scale in: no call has waited for a while (or fewer are allowed now). The last
         * instance gets no new calls from now on; it stops once its calls are done. */
        if (a->instances > 0 && a->instances == a->instances_run &&
            (a->instances + 1 > max_instances(a) || now - a->queue_seen > RP_SITES_SCALE_IN_MS)) {
            a->instances--;
            a->drain_since = now;
            continue;
        }
        if (a->instances_run > a->instances) {
            uint64_t limit = (uint64_t)rp_fn_app_host(a->live->fn)->timeout_s * 1000u;
            for (int k = a->instances + 1; k <= a->instances_run && k < RP_SITES_INSTANCES_MAX; k++)
                busy |= a->inflight[k] > 0;
            if (busy && now - a->drain_since < limit)
                continue;
            why[n] = "no calls wait: one instance fewer";
            scale[n] = 1;
            rp_strlcpy(names[n++], a->name, sizeof(names[0]));
            continue;
        }
        if (idle == 0 || now - a->last_call < idle * 1000u || running + waiting > 0 ||
            a->timer_runs > 0)
            continue;
        a->parked = 1;
        a->instances = 0;
        why[n] = "idle: scaled to zero";
        scale[n] = 0;
        rp_strlcpy(names[n++], a->name, sizeof(names[0]));
    }
    uv_mutex_unlock(&s->mu);
    for (size_t i = 0; i < nlogs; i++) {
        rp_fn_invlog_flush(logs[i]);
        rp_fn_invlog_unref(logs[i]);
    }
    for (size_t i = 0; i < n; i++) {
        rp_logline l;
        rp_logline_begin(&l, RP_LOG_INFO, "functions.scale");
        rp_logline_str(&l, "app", names[i]);
        rp_logline_str(&l, "message", why[i]);
        rp_logline_end(&l);
        sync_process_(s, names[i], scale[i]);
    }
}

/*
 * fnhost's question: where does function fn of app answer? The port of the app's handler (or
 * of fn's own worker), > 0 once it is ready; 0 while it is starting (the call waits: after a
 * deploy, or a scaled-to-zero app this call wakes up); < 0 when nothing is meant to run.
 */
static int fn_resolve(void *arg, const char *name, const char *fn, int own, int *slot)
{
    rp_sites *s = arg;
    char wname[RP_SITES_NAME_MAX + RP_FN_NAME_MAX + 2], sock[RP_PROC_SOCKET_MAX + 1];
    int wake = 0, port = 0, running = 0, meant = 0, best = -1, best_port = 0;
    app *a;

    if (slot != NULL)
        *slot = -1;
    if (own && worker_name(name, fn, wname, sizeof(wname)) != 0)
        return -1;
    /* One pass under the lock (the supervisor's lock nests inside it, as in sync_process). */
    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL) {
        wake = a->parked;
        a->parked = 0;
        a->last_call = uv_hrtime() / 1000000u;
        /* Something is meant to run it: a start is on its way even while the supervisor shows
         * nothing yet (a wake-up posted by another call, a process between two states). */
        meant = is_fn_app(a) && a->env_ready;
    }
    /* The ready instance with the fewest calls in flight (the gate lets in
     * maxConcurrentRequests per ready instance); a woken app has none ready yet. */
    for (int k = 0; a != NULL && !wake && !own && slot != NULL && k <= a->instances &&
                    k <= a->instances_run && k < RP_SITES_INSTANCES_MAX;
         k++) {
        char iname[RP_SITES_NAME_MAX + 16];
        if (best >= 0 && a->inflight[k] >= a->inflight[best])
            continue;
        if (k == 0)
            rp_strlcpy(iname, name, sizeof(iname));
        else
            instance_name(name, k, iname, sizeof(iname));
        if (rp_procs_target(s->procs, iname, &port, sock, sizeof(sock), &running) == 0 && running &&
            sock[0] == '\0' && port > 0) {
            best = k;
            best_port = port;
        }
    }
    if (best >= 0) {
        a->inflight[best]++;
        *slot = best;
    }
    uv_mutex_unlock(&s->mu);
    if (a == NULL)
        return -1;
    if (best >= 0)
        return best_port;
    if (wake) {
        rp_logline l;
        rp_logline_begin(&l, RP_LOG_INFO, "functions.scale");
        rp_logline_str(&l, "app", name);
        rp_logline_str(&l, "message", "a call: starting from zero");
        rp_logline_end(&l);
        sync_process(s, name);
    }
    if (rp_procs_target(s->procs, own ? wname : name, &port, sock, sizeof(sock), &running) != 0)
        return meant ? 0 : -1; /* its start is posted; the caller's deadline decides */
    if (sock[0] != '\0')
        return -1; /* the isolated tier: no function app runs there */
    return running ? port : 0;
}

/* A call placed on instance slot by fn_resolve has ended. */
static void fn_release(void *arg, const char *name, int slot)
{
    rp_sites *s = arg;
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL && slot >= 0 && slot < RP_SITES_INSTANCES_MAX && a->inflight[slot] > 0)
        a->inflight[slot]--;
    uv_mutex_unlock(&s->mu);
}

/* A request to a function app: the functions host (functions/fnhost.c) with the app's keys,
 * throttle and invocation log. */
static void fn_request(rp_sites *s, rp_req *req, const content *c, const char *name, int port,
                       const char *cert, const rp_proxy_hdr *extra, size_t nextra)
{
    char origin[400], pp[16];
    fnkeys *k = NULL;
    rp_fn_gate *gate = NULL;
    rp_fn_invlog *log = NULL;
    app *a;
    rp_fnhost_target t;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL && (k = a->keys) != NULL)
        k->refs++;
    /* The bounds of the live release, not of this request's (a deploy may have just passed). */
    if (a != NULL && gate_locked(s, a, is_fn_app(a) ? a->live->fn : c->fn) != NULL)
        gate = rp_fn_gate_ref(a->gate);
    if (a != NULL && invlog_locked(s, a) != NULL)
        log = rp_fn_invlog_ref(a->invlog);
    if (a != NULL)
        a->last_call = uv_hrtime() / 1000000u;
    uv_mutex_unlock(&s->mu);
    snprintf(origin, sizeof(origin), "https://%s.%s%s", name, s->domain, port_part(s, pp));
    t = (rp_fnhost_target){.app = c->fn,
                           .keys = k != NULL ? k->set : NULL,
                           .port = port,
                           .origin = origin,
                           .client_cert = cert,
                           .extra = nextra ? extra : NULL,
                           .nextra = nextra,
                           .gate = gate,
                           .log = log,
                           .app_name = name,
                           .resolve = fn_resolve,
                           .release = fn_release,
                           .resolve_arg = s,
                           .keys_change = fn_keys_change,
                           .keys_arg = s};
    /* Synchronous as far as the keys go: nothing of them is used after it returns (the call
     * takes its own references to the gate and the log). */
    rp_fnhost_serve(req, &t);
    keys_put(s, k);
    rp_fn_gate_unref(gate);
    rp_fn_invlog_unref(log);
}

static void site_request(rp_req *req)
{
    rp_sites *s = req->route_data;
    rp_appcfg *cfg = NULL;
    rp_easyauth *auth = NULL;
    rp_easyauth_principal who = {NULL, NULL, NULL, NULL};
    content *c = NULL;
    int trusted, signed_in = 0, static_app;

    if (!app_get(s, req->host_label.p, req->host_label.n, &cfg, &c, &auth)) {
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
    static_app = rp_appcfg_command(cfg) == NULL && (c == NULL || c->fn == NULL);
    /* A function app without CORS settings gets its OPTIONS like any other method (a function
     * may take them); with them, the platform answers preflights as for a process app. */
    if ((static_app || rp_appcfg_cors_set(cfg)) && !cors(req, cfg, static_app))
        goto out;
    if (!rp_appcfg_cert_check(cfg, req->path, rp_req_peer_cert(req), &trusted)) {
        rp_resp_error(req, 403, "ClientCertificateRequired",
                      "this app requires a client certificate issued by one of its trusted CAs");
        goto out;
    }
    if (rp_easyauth_enabled(auth)) {
        signed_in = easy_auth(s, req, auth, &who);
        if (signed_in < 0)
            goto out; /* answered */
    }
    if (c == NULL) {
        not_found(req, "NoContent", "nothing has been deployed to this app yet");
        goto out;
    }
    if (rp_appcfg_command(cfg) != NULL || c->fn != NULL) {
        char name[RP_SITES_NAME_MAX + 1], sock[RP_PROC_SOCKET_MAX + 1], *b64 = NULL;
        int running, port, fn = rp_appcfg_command(cfg) == NULL;
        size_t n = req->host_label.n < sizeof(name) ? req->host_label.n : sizeof(name) - 1;
        memcpy(name, req->host_label.p, n);
        name[n] = '\0';
        if (rp_procs_target(s->procs, name, &port, sock, sizeof(sock), &running) != 0)
            port = 0, sock[0] = '\0';
        /* A function app's host answers its keys API with the handler down, too. */
        if (port == 0 && sock[0] == '\0' && !fn) {
            rp_resp_error(req, 503, "AppNotRunning", "the app's process is not running");
            goto out;
        }
        if (trusted)
            b64 = cert_b64(req);
        {
            rp_proxy_hdr extra[5];
            size_t nextra = 0;
            if (signed_in) {
                extra[nextra++] = (rp_proxy_hdr){"X-MS-CLIENT-PRINCIPAL", who.principal};
                if (who.id != NULL)
                    extra[nextra++] = (rp_proxy_hdr){"X-MS-CLIENT-PRINCIPAL-ID", who.id};
                if (who.name != NULL)
                    extra[nextra++] = (rp_proxy_hdr){"X-MS-CLIENT-PRINCIPAL-NAME", who.name};
                extra[nextra++] = (rp_proxy_hdr){"X-MS-CLIENT-PRINCIPAL-IDP", who.idp};
            }
            if (fn) {
                fn_request(s, req, c, name, sock[0] ? 0 : port, b64, extra, nextra);
                free(b64);
                goto out;
            }
            rp_proxy_forward(req, &(rp_proxy_target){.port = port,
                                                     .unix_path = sock[0] ? sock : NULL,
                                                     .client_cert = b64,
                                                     .extra = nextra ? extra : NULL,
                                                     .nextra = nextra});
        }
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
    rp_easyauth_principal_free(&who);
    rp_easyauth_unref(auth);
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
    if (memchr(host, '.', n) != NULL || !app_get(s, host, n, &cfg, NULL, NULL))
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

    app_scope(s, name, scope, sizeof(scope));
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

/*
 * A thread-pool op whose loop stopped while it worked (its list is gone): freed here. 1 when
 * that was the case (the after-work callback returns), 0 to go on.
 */
static int work_orphaned(op *o)
{
    if (tl != NULL)
        return 0;
    o->prev_op->next_op = o->next_op;
    o->next_op->prev_op = o->prev_op;
    o->prev_op = o->next_op = o;
    op_free(o);
    return 1;
}

/*
 * A function with its own identity in an app whose handler gets HTTP requests forwarded as they
 * came: the handler would route the raw path itself, its own way, and could run another
 * function's code in that function's worker (or this one's in the app's). Refused: 1 and err.
 */
static int forwarded_identity(const rp_fn_app *fa, char *err, size_t cap)
{
    const rp_fn_handler *h = rp_fn_app_host(fa)->handler;

    if (h == NULL || !h->forward)
        return 0;
    for (size_t i = 0; i < rp_fn_app_count(fa); i++) {
        const rp_fn_function *f = rp_fn_app_function(fa, i);
        if (!f->own_identity)
            continue;
        snprintf(err, cap,
                 "%s/function.json: identity: a function with its own identity needs invocation "
                 "mode; host.json forwards HTTP requests (enableForwardingHttpRequest), and the "
                 "handler would choose by itself which code runs with the identity",
                 f->name);
        return 1;
    }
    return 0;
}

/*
 * Does fa have an enabled HTTP function with authLevel anonymous? 1 and err names the first
 * (file and field, as fnapp's errors), or 0.
 */
static int anonymous_function(const rp_fn_app *fa, char *err, size_t cap)
{
    for (size_t i = 0; i < rp_fn_app_count(fa); i++) {
        const rp_fn_function *f = rp_fn_app_function(fa, i);
        const rp_fn_binding *b = &f->bindings[f->trigger];
        if (f->disabled || b->type != RP_FN_HTTP_TRIGGER || b->auth_level != RP_FN_AUTH_ANONYMOUS)
            continue;
        snprintf(err, cap,
                 "%s/function.json: bindings[%zu].authLevel: \"anonymous\" lets anyone call "
                 "it; deploy with allowAnonymous=true (rampart app deploy --allow-anonymous) "
                 "if that is meant",
                 f->name, f->trigger);
        return 1;
    }
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
        o->rc =
            content_open(o->s, o->name, o->release, o->fn_mode, &o->newc, o->err, sizeof(o->err));
        if (o->rc == RP_EPARSE)
            o->fn_bad = 1; /* o->err names the file and the field */
        else if (o->rc != 0)
            snprintf(o->err, sizeof(o->err), "the new release cannot be opened");
    }
    /* Secure by default: a function anyone may call is deployed only when the deploy says so. */
    if (o->rc == 0 && o->newc->fn != NULL &&
        ((!o->allow_anon && anonymous_function(o->newc->fn, o->err, sizeof(o->err))) ||
         forwarded_identity(o->newc->fn, o->err, sizeof(o->err)))) {
        o->rc = RP_EPARSE;
        o->fn_bad = 1;
    }
    /* A function app's keys exist before its first function can be called. */
    if (o->rc == 0 && o->newc->fn != NULL)
        o->rc = fnkeys_update(o->s, o->name, o->id, keys_for_release, o->newc->fn, NULL, o->err,
                              sizeof(o->err));
}

static void unpack_done(uv_work_t *w, int status)
{
    op *o = w->data;

    o->in_work = 0;
    close(o->fd);
    o->fd = -1;
    /* The loop stopped meanwhile: nothing is committed; start-up removes the directory. */
    if (work_orphaned(o))
        return;
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
             : o->fn_bad          ? "InvalidFunctionApp"
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
    {
        const char *q = rp_req_query(req, "allowAnonymous");
        o->allow_anon = q != NULL && strcasecmp(q, "true") == 0;
    }
    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL) {
        busy = a->deploying;
        if (!busy) {
            a->deploying = 1;
            o->release = a->next_release++;
            /* An app with a command is a web app whatever files it ships. */
            o->fn_mode = rp_appcfg_command(a->cfg) == NULL ? FN_STRICT : FN_IGNORE;
            memcpy(o->id, a->id, sizeof(o->id));
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
        if (!app_get(s, name, strlen(name), &cfg, NULL, NULL)) {
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
        app_scope(s, names[i], scope, sizeof(scope));
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

/*
 * GET /api/apps/NAME/invocations[?after=SEQ][&limit=N][&function=F]: a page of the function
 * app's invocation log (functions/invlog.h); {"value": [], "next": 0} before its first call.
 */
static void mgmt_invocations(rp_sites *s, rp_req *req, const char *name)
{
    const char *qa = rp_req_query(req, "after"), *ql = rp_req_query(req, "limit");
    const char *fn = rp_req_query(req, "function");
    uint64_t after = 0, limit = 100;
    rp_fn_invlog *log = NULL;
    json_t *page;
    app *a;

    if ((qa != NULL && rp_parse_u64(qa, strlen(qa), INT64_MAX, &after) != 0) ||
        (ql != NULL &&
         (rp_parse_u64(ql, strlen(ql), RP_FN_INVLOG_PAGE_MAX, &limit) != 0 || limit == 0))) {
        rp_resp_error(req, 400, "InvalidParameter",
                      "after is a sequence number and limit a count from 1 to 500");
        return;
    }
    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL && a->invlog != NULL)
        log = rp_fn_invlog_ref(a->invlog);
    uv_mutex_unlock(&s->mu);
    if (a == NULL) {
        not_found(req, "ResourceNotFound", "there is no such app");
        return;
    }
    page = log != NULL ? rp_fn_invlog_page(log, after, (size_t)limit, fn)
                       : json_pack("{s:[],s:i}", "value", "next", 0);
    rp_fn_invlog_unref(log);
    if (page == NULL)
        rp_resp_error(req, 500, "InternalError", "out of memory");
    else
        rp_resp_json(req, 200, page);
}

/* GET /api/apps/NAME/metrics: per-function counters of this run of the server and the calls
 * running and waiting now. */
static void mgmt_metrics(rp_sites *s, rp_req *req, const char *name)
{
    rp_fn_invlog *log = NULL;
    rp_fn_gate *gate = NULL;
    size_t running = 0, waiting = 0;
    json_t *m;
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL && a->invlog != NULL)
        log = rp_fn_invlog_ref(a->invlog);
    if (a != NULL && a->gate != NULL)
        gate = rp_fn_gate_ref(a->gate);
    uv_mutex_unlock(&s->mu);
    if (a == NULL) {
        not_found(req, "ResourceNotFound", "there is no such app");
        return;
    }
    if (gate != NULL)
        rp_fn_gate_counts(gate, &running, &waiting);
    m = log != NULL ? rp_fn_invlog_metrics(log) : json_pack("{s:{}}", "functions");
    if (m != NULL && (json_object_set_new(m, "running", json_integer((json_int_t)running)) != 0 ||
                      json_object_set_new(m, "waiting", json_integer((json_int_t)waiting)) != 0)) {
        json_decref(m);
        m = NULL;
    }
    rp_fn_invlog_unref(log);
    rp_fn_gate_unref(gate);
    if (m == NULL)
        rp_resp_error(req, 500, "InternalError", "out of memory");
    else
        rp_resp_json(req, 200, m);
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
    json_decref(body);
    if (rc == 0) {
        o->cfgtext = json_dumps(rp_appcfg_stored(o->newcfg), JSON_COMPACT | JSON_SORT_KEYS);
        if (o->cfgtext == NULL)
            rc = RP_ENOMEM;
    }
    if (rc != 0) {
        rp_appcfg_unref(cur);
        fail(req, rc == RP_EINVAL ? 400 : 500,
             rc == RP_EINVAL ? "InvalidParameter" : "InternalError",
             err[0] ? err : "the settings cannot be stored");
        op_free(o);
        return;
    }
    if (a != NULL) {
        /* cur still referenced: the comparison cannot meet a recycled address. */
        int ok = cfg_begin(o, cur);
        rp_appcfg_unref(cur);
        if (!ok) {
            op_free(o);
            return;
        }
        o->kind = OP_CONFIG;
        op_submit(o, config_write);
        return;
    }
    if (o->id[0] != '\0') {
        /* It existed when authorized and is gone now. */
        fail(req, 409, "Conflict", "the app was deleted while the request was read");
        op_free(o);
        return;
    }
    if (rp_random_uuid(o->id) != 0) {
        fail(req, 500, "InternalError", "no randomness for the app's id");
        op_free(o);
        return;
    }
    op_submit(o, create_write);
}

/* Did release seq of app name's deploy allow anonymous functions? (0 when unknown.) */
static int release_allows_anonymous(sqlite3 *db, const char *name, int64_t seq)
{
    sqlite3_stmt *st = NULL;
    int yes = 0;

    if (db != NULL &&
        sqlite3_prepare_v2(db, "SELECT allow_anon FROM app_releases WHERE app = ?1 AND seq = ?2",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, seq);
        yes = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) != 0;
    }
    sqlite3_finalize(st);
    return yes;
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
    if (content_open(s, o->name, target, FN_LENIENT, &o->newc, NULL, 0) != 0) {
        deploy_end(s, o->name);
        fail(req, 500, "InternalError", "the release's files cannot be opened");
        op_free(o);
        return;
    }
    /* The deploy-time rules again: the release may have been deployed to the app while it had
     * a command (no function checks then), or without allowAnonymous. */
    if (o->newc->fn != NULL && (forwarded_identity(o->newc->fn, o->err, sizeof(o->err)) ||
                                (!release_allows_anonymous(tl->db, o->name, target) &&
                                 anonymous_function(o->newc->fn, o->err, sizeof(o->err))))) {
        deploy_end(s, o->name);
        fail(req, 400, "InvalidFunctionApp", o->err);
        op_free(o);
        return;
    }
    op_submit(o, release_write);
}

static void mgmt_app(rp_sites *s, rp_req *req, const rp_identity *who_, const char *name,
                     const char *sub);
static void slots_request(rp_sites *s, rp_req *req, const rp_identity *who, const char *name,
                          const char *rest);
static void swap_request(rp_sites *s, rp_req *req, const rp_identity *who, const char *name,
                         const char *slot);

static void mgmt(rp_req *req)
{
    rp_sites *s = req->route_data;
    char name[RP_SITES_NAME_MAX + 1];
    const char *rest, *sub;
    rp_identity who;
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
    if (sub != NULL && strncmp(sub, "/slots", 6) == 0 && (sub[6] == '\0' || sub[6] == '/')) {
        slots_request(s, req, &who, name, sub + 6);
        return;
    }
    mgmt_app(s, req, &who, name, sub);
}

/* /api/apps/NAME[SUB], NAME an app or (through /slots/SLOT) a slot. */
static void mgmt_app(rp_sites *s, rp_req *req, const rp_identity *who_, const char *name,
                     const char *sub)
{
    rp_identity who = *who_;
    op *o;
    json_t *j;

    if (sub != NULL && strcmp(sub, "/slotsswap") == 0) {
        swap_request(s, req, &who, name, NULL);
        return;
    }
    if (sub != NULL && strncmp(sub, "/config/", 8) == 0 && config_request(s, req, &who, name, sub))
        return;
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
        if (strcmp(sub, "/invocations") == 0 &&
            (req->method == RP_METHOD_GET || req->method == RP_METHOD_HEAD)) {
            /* The handler's Logs lines are what it printed: the right /logs needs. */
            if (allowed(s, req, &who, "Microsoft.Web/sites/write", name))
                mgmt_invocations(s, req, name);
            return;
        }
        if (strcmp(sub, "/metrics") == 0 &&
            (req->method == RP_METHOD_GET || req->method == RP_METHOD_HEAD)) {
            if (allowed(s, req, &who, "Microsoft.Web/sites/read", name))
                mgmt_metrics(s, req, name);
            return;
        }
        if (keys_mgmt(s, req, &who, name, sub))
            return;
        if ((strcmp(sub, "/host/default/listkeys") == 0 || strncmp(sub, "/functions/", 11) == 0) &&
            req->method == RP_METHOD_POST) {
            keys_list(s, req, &who, name, sub);
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
                      "an app has /releases (GET), /rollback (POST) and, for a function app, "
                      "/host/default/listkeys and /functions/NAME/listkeys (POST) below it");
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
        if (a != NULL && slot_count_locked(s, name) > 0) {
            busy = 2;
        } else if (a != NULL) {
            busy = a->deploying || a->settings_busy || a->busy_ops;
            a->deploying = 1; /* no deploy starts while the delete is in flight */
        }
        uv_mutex_unlock(&s->mu);
        if (busy) {
            rp_resp_error(req, 409, "Conflict",
                          busy == 2 ? "the app has deployment slots: delete them first"
                                    : "a deploy or a settings change of this app is running");
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

/* ---------------------------------------------------------------- authsettingsV2 */

/* The openIdIssuer of auth when it is not this platform's own token service, else NULL. */
static const char *external_issuer(const rp_sites *s, const rp_easyauth *auth)
{
    const char *iss = json_string_value(json_object_get(
        json_object_get(
            json_object_get(json_object_get(rp_easyauth_stored(auth), "identityProviders"),
                            "azureActiveDirectory"),
            "registration"),
        "openIdIssuer"));
    size_t a, b = strlen(rp_iam_issuer(s->iam));

    if (iss == NULL)
        return NULL;
    a = strlen(iss);
    if (a > 0 && iss[a - 1] == '/')
        a--;
    return a == b && strncmp(iss, rp_iam_issuer(s->iam), b) == 0 ? NULL : iss;
}

/* Is x (an audience) one of this platform's hosts other than the app's own origin (own)? */
static int platform_audience(const rp_sites *s, const char *x, const char *own)
{
    size_t n = strlen(x), dl = strlen(s->domain), ol = strlen(own), hl;
    const char *host, *end;

    if (n > 0 && x[n - 1] == '/')
        n--;
    if (n == ol && strncasecmp(x, own, n) == 0)
        return 0;
    if (n < 8 || strncasecmp(x, "https://", 8) != 0)
        return 0;
    host = x + 8;
    end = host;
    while (end < x + n && *end != '/' && *end != ':')
        end++;
    hl = (size_t)(end - host);
    return (hl == dl && strncasecmp(host, s->domain, dl) == 0) ||
           (hl > dl && host[hl - dl - 1] == '.' && strncasecmp(host + hl - dl, s->domain, dl) == 0);
}

/*
 * An app's built-in authentication from its stored settings; *out NULL when none are set.
 * check_issuer refuses an openIdIssuer other than this platform's (at a PUT: tokens of other
 * issuers would need their keys fetched, which is not built yet).
 */
static int auth_build(rp_sites *s, const char *name, const json_t *stored, int check_issuer,
                      rp_easyauth **out, char *err, size_t errlen)
{
    char aud[400];
    const char *iss;
    int rc;

    *out = NULL;
    if (stored == NULL || json_object_size(stored) == 0)
        return 0;
    app_audience(s, name, strlen(name), aud, sizeof(aud));
    rc = rp_easyauth_build(stored, NULL, aud, rp_iam_issuer(s->iam), out, err, errlen);
    if (rc != 0 || !check_issuer)
        return rc;
    /* No audience of the platform's own (management, vault, another app): the app would be
     * handed, in Authorization, tokens that work elsewhere. */
    {
        const json_t *aad =
            json_object_get(json_object_get(stored, "identityProviders"), "azureActiveDirectory");
        const json_t *list =
            json_object_get(json_object_get(aad, "validation"), "allowedAudiences");
        const char *cid =
            json_string_value(json_object_get(json_object_get(aad, "registration"), "clientId"));
        size_t i, n = json_array_size(list);
        for (i = 0; i <= n; i++) {
            const char *x = i < n ? json_string_value(json_array_get(list, i)) : cid;
            if (x != NULL && platform_audience(s, x, aud)) {
                snprintf(err, errlen,
                         "identityProviders.azureActiveDirectory: '%.100s' is an audience of the "
                         "platform itself, not of this app",
                         x);
                rp_easyauth_unref(*out);
                *out = NULL;
                return RP_EINVAL;
            }
        }
    }
    iss = json_string_value(json_object_get(
        json_object_get(
            json_object_get(json_object_get(stored, "identityProviders"), "azureActiveDirectory"),
            "registration"),
        "openIdIssuer"));
    if (iss != NULL && s->oidc == NULL) {
        size_t a = strlen(iss), b = strlen(rp_iam_issuer(s->iam));
        if (a > 0 && iss[a - 1] == '/')
            a--;
        if (a != b || strncmp(iss, rp_iam_issuer(s->iam), b) != 0) {
            snprintf(err, errlen,
                     "identityProviders.azureActiveDirectory.registration.openIdIssuer: only this "
                     "platform's token service (%s) is supported",
                     rp_iam_issuer(s->iam));
            rp_easyauth_unref(*out);
            *out = NULL;
            return RP_EINVAL;
        }
    }
    return 0;
}

/* PUT .../config/authsettingsV2 {"properties": {...}}: replaces the whole settings. */
static void auth_body(rp_req *req)
{
    op **slot = req->handler_data;
    op *o = slot ? *slot : NULL;
    json_t *body, *props;
    json_error_t je;
    char err[400] = "";
    int rc;

    if (o == NULL)
        return;
    o->waiting_body = 0;
    body = json_loadb(req->body.data ? req->body.data : "", req->body.len, JSON_REJECT_DUPLICATES,
                      &je);
    props = json_object_get(body, "properties");
    if (!json_is_object(body) || !json_is_object(props)) {
        json_decref(body);
        fail(req, 400, "InvalidParameter", "the body is {\"properties\": {authsettingsV2}}");
        op_free(o);
        return;
    }
    /* Azure's GET answers also carry name, id, type: accepted and ignored. */
    rc = auth_build(o->s, o->name, props, 1, &o->newauth, err, sizeof(err));
    if (rc == 0 && o->newauth == NULL)
        rc = rp_easyauth_build(NULL, NULL, "", "", &o->newauth, err, sizeof(err));
    if (rc == 0) {
        o->cfgtext = json_dumps(rp_easyauth_stored(o->newauth), JSON_COMPACT | JSON_SORT_KEYS);
        o->reply = json_pack("{s:s,s:o}", "name", "authsettingsV2", "properties",
                             rp_easyauth_view(o->newauth));
        if (o->cfgtext == NULL || o->reply == NULL)
            rc = RP_ENOMEM;
    }
    json_decref(body);
    if (rc != 0) {
        fail(req, rc == RP_EINVAL ? 400 : 500,
             rc == RP_EINVAL ? "InvalidParameter" : "InternalError",
             err[0] ? err : "the settings cannot be stored");
        op_free(o);
        return;
    }
    if (!cfg_begin(o, NULL)) {
        op_free(o);
        return;
    }
    op_submit(o, auth_write);
}

static void auth_get(rp_sites *s, rp_req *req, const char *name)
{
    rp_easyauth *auth = NULL;
    json_t *view;
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL)
        auth = rp_easyauth_ref(a->auth);
    uv_mutex_unlock(&s->mu);
    if (a == NULL) {
        rp_resp_error(req, 404, "NotFound", "no such app");
        return;
    }
    if (auth == NULL && rp_easyauth_build(NULL, NULL, "", "", &auth, NULL, 0) != 0) {
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    view = rp_easyauth_view(auth);
    rp_easyauth_unref(auth);
    rp_resp_json(req, 200, json_pack("{s:s,s:o}", "name", "authsettingsV2", "properties", view));
}

/* ---------------------------------------------------------------- app settings */

static void settings_end(rp_sites *s, const char *name, const char *id)
{
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL && strcmp(a->id, id) == 0)
        a->settings_busy = 0;
    uv_mutex_unlock(&s->mu);
}

/* Thread pool: the stored set with one of its halves replaced, sealed whole. */
static void settings_work(uv_work_t *w)
{
    op *o = w->data;
    const char *reason = NULL;
    json_t *cur = NULL;
    sqlite3 *db = NULL;

    o->rc = rp_store_reader_open(o->s->store, &db);
    if (o->rc == 0)
        o->rc = rp_appenv_settings_read(db, o->s->kr, o->name, o->id, &cur, &reason);
    if (db != NULL)
        sqlite3_close(db);
    if (o->rc == 0 && cur == NULL && (cur = json_object()) == NULL)
        o->rc = RP_ENOMEM;
    if (o->rc == 0 &&
        json_object_set(cur, o->conn ? "connectionStrings" : "appSettings", o->sjson) != 0)
        o->rc = RP_ENOMEM;
    if (o->rc == 0 && (o->rc = rp_settings_check_all(cur, o->err, sizeof(o->err))) != 0) {
        json_decref(cur);
        return;
    }
    if (o->rc == 0)
        o->rc = rp_appenv_settings_seal(o->s->kr, o->name, o->id, cur, &o->wdek, &o->ct, &reason);
    if (o->rc != 0)
        snprintf(o->err, sizeof(o->err), "%s",
                 reason ? reason : "the settings could not be sealed");
    json_decref(cur);
}

static int secrets_put(sqlite3 *db, const char *name, const rp_buf *wdek, const rp_buf *ct,
                       int64_t now);

static int settings_write(sqlite3 *db, void *arg)
{
    op *o = arg;
    sqlite3_stmt *st;

    /* By object id too: sealed for this instance, never stored for one created meanwhile. */
    if ((st = prep(db, "UPDATE apps SET updated_at = ?2 WHERE name = ?1 AND id = ?3", o->name)) ==
        NULL)
        return RP_EDB;
    sqlite3_bind_int64(st, 2, o->now);
    sqlite3_bind_text(st, 3, o->id, -1, SQLITE_STATIC);
    if (step_done(st) != 0)
        return RP_EDB;
    if (sqlite3_changes(db) != 1)
        return RP_ENOENT;
    return secrets_put(db, o->name, &o->wdek, &o->ct, o->now);
}

static void settings_done(uv_work_t *w, int status)
{
    op *o = w->data;

    o->in_work = 0;
    if (tl == NULL)
        settings_end(o->s, o->name, o->id);
    if (work_orphaned(o))
        return;
    if (status != 0 && o->rc == 0)
        o->rc = RP_EIO;
    if (o->rc != 0) {
        settings_end(o->s, o->name, o->id);
        op_audit(o, o->rc, o->err);
        fail(o->req,
             o->rc == RP_EINVAL  ? 400
             : o->rc == RP_EPERM ? 409
                                 : 500,
             o->rc == RP_EINVAL  ? "InvalidParameter"
             : o->rc == RP_EPERM ? "KeyUnavailable"
                                 : "InternalError",
             o->err);
        op_free(o);
        return;
    }
    op_submit(o, settings_write);
}

/*
 * PUT /api/apps/NAME/config/appsettings and .../connectionstrings: {"properties": {...}}
 * replaces that whole set (Azure's semantics); the other set stays.
 */
static void settings_body(rp_req *req)
{
    op **slot = req->handler_data;
    op *o = slot ? *slot : NULL;
    json_t *body = NULL, *props;
    json_error_t je;
    char err[300] = "";
    int rc, busy = -1;
    app *a;

    if (o == NULL)
        return;
    o->waiting_body = 0;
    body = json_loadb(req->body.data ? req->body.data : "", req->body.len, JSON_REJECT_DUPLICATES,
                      &je);
    props = json_object_get(body, "properties");
    if (!json_is_object(body) || json_object_size(body) != 1 || props == NULL) {
        json_decref(body);
        fail(req, 400, "InvalidParameter",
             o->conn ? "the body is {\"properties\": {\"NAME\": {\"value\": \"...\", "
                       "\"type\": \"Custom\"}, ...}}"
                     : "the body is {\"properties\": {\"NAME\": \"value\", ...}}");
        op_free(o);
        return;
    }
    rc = o->conn ? rp_settings_check_conn(props, &o->sjson, err, sizeof(err))
                 : rp_settings_check_app(props, &o->sjson, err, sizeof(err));
    json_decref(body);
    if (rc != 0) {
        fail(req, rc == RP_EINVAL ? 400 : 500,
             rc == RP_EINVAL ? "InvalidParameter" : "InternalError", err);
        op_free(o);
        return;
    }
    uv_mutex_lock(&o->s->mu);
    a = find_locked(o->s, o->name, strlen(o->name));
    if (a != NULL && (strcmp(a->id, o->id) != 0 || a->swapping)) {
        busy = 2;
    } else if (a != NULL) {
        busy = a->settings_busy;
        a->settings_busy = 1;
    }
    uv_mutex_unlock(&o->s->mu);
    if (busy != 0) {
        fail(req, busy < 0 ? 404 : 409, busy < 0 ? "NotFound" : "Conflict",
             busy < 0    ? "no such app"
             : busy == 2 ? "the app was replaced, or a slot swap is running: send it again"
                         : "another change to this app's settings is running");
        op_free(o);
        return;
    }
    o->reply = json_pack("{s:s,s:O}", "name", o->conn ? "connectionstrings" : "appsettings",
                         "properties", o->sjson);
    o->work.data = o;
    o->in_work = 1;
    if (o->reply == NULL || uv_queue_work(tl->loop, &o->work, settings_work, settings_done) != 0) {
        o->in_work = 0;
        settings_end(o->s, o->name, o->id);
        fail(req, 500, "InternalError", "out of memory");
        op_free(o);
    }
}

/*
 * POST .../config/appsettings/list and .../connectionstrings/list: the values, as stored
 * (references as written). A read of secret material: answered once its record is durable.
 */
static void settings_list(rp_sites *s, rp_req *req, const rp_identity *who, const char *name,
                          int conn)
{
    const char *reason = NULL;
    json_t *all = NULL, *half;
    op *o;
    int rc, known;

    uv_mutex_lock(&s->mu);
    known = find_locked(s, name, strlen(name)) != NULL;
    uv_mutex_unlock(&s->mu);
    if (!known) {
        rp_resp_error(req, 404, "NotFound", "no such app");
        return;
    }
    {
        char id[37];
        app_id(s, name, id);
        rc = rp_appenv_settings_read(tl->db, s->kr, name, id, &all, &reason);
    }
    if (rc != 0) {
        rp_resp_error(req, rc == RP_EPERM ? 409 : 500,
                      rc == RP_EPERM ? "KeyUnavailable" : "InternalError",
                      reason ? reason : "the settings cannot be opened");
        return;
    }
    half = json_object_get(all, conn ? "connectionStrings" : "appSettings");
    o = op_new(s, req, who, OP_READ, "Microsoft.Web/sites/config/list/action", name);
    if (o != NULL)
        o->reply = json_pack("{s:s,s:O}", "name", conn ? "connectionstrings" : "appsettings",
                             "properties", half ? half : json_object());
    /* json_pack's O on a fresh json_object() took its own reference. */
    json_decref(all);
    if (o == NULL || o->reply == NULL) {
        op_free(o);
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    op_audit(o, 0, NULL);
}

/*
 * POST .../host/default/listkeys ({"masterKey","functionKeys","systemKeys"}) and
 * .../functions/F/listkeys ({NAME: VALUE} of F's keys), as ARM answers them. Key material: the
 * answer waits for its audit record to be durable.
 */
static void keys_list(rp_sites *s, rp_req *req, const rp_identity *who, const char *name,
                      const char *sub)
{
    const char *fn = NULL, *action = "Microsoft.Web/sites/host/listkeys/action";
    char fname[RP_FN_NAME_MAX + 1];
    json_t *doc = NULL, *reply = NULL, *o;
    fnkeys *k = NULL;
    app *a;
    op *rd;

    if (strncmp(sub, "/functions/", 11) == 0) {
        const char *f = sub + 11, *end = strchr(f, '/');
        if (end == NULL || strcmp(end, "/listkeys") != 0 || (size_t)(end - f) > RP_FN_NAME_MAX) {
            rp_resp_error(req, 404, "NotFound", "use POST .../functions/NAME/listkeys");
            return;
        }
        snprintf(fname, sizeof(fname), "%.*s", (int)(end - f), f);
        fn = fname;
        action = "Microsoft.Web/sites/functions/listkeys/action";
    }
    if (!allowed(s, req, who, action, name))
        return;
    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL && (k = a->keys) != NULL)
        k->refs++;
    uv_mutex_unlock(&s->mu);
    if (k == NULL) {
        rp_resp_error(req, 404, "NotFound",
                      a == NULL ? "no such app"
                                : "this app has no function keys (not a function app)");
        return;
    }
    doc = rp_fn_keyset_json(k->set);
    keys_put(s, k);
    if (doc == NULL) {
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    if (fn == NULL) {
        reply =
            json_pack("{s:o,s:o,s:o}", "masterKey", json_deep_copy(json_object_get(doc, "master")),
                      "functionKeys", json_deep_copy(json_object_get(doc, "host")), "systemKeys",
                      json_deep_copy(json_object_get(doc, "system")));
    } else {
        const char *key;
        json_t *v;
        o = NULL;
        json_object_foreach(json_object_get(doc, "functions"), key, v)
        {
            if (strcasecmp(key, fn) == 0)
                o = v;
        }
        reply = o != NULL ? json_deep_copy(o) : NULL;
        if (o == NULL) {
            json_decref(doc);
            rp_resp_error(req, 404, "NotFound", "no such function, or it has no keys");
            return;
        }
    }
    json_decref(doc);
    rd = reply != NULL ? op_new(s, req, who, OP_READ, action, name) : NULL;
    if (rd == NULL) {
        json_decref(reply);
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    rd->reply = reply;
    op_audit(rd, 0, NULL);
}

/* GET .../config/configreferences/appsettings (or /connectionstrings): each reference's
 * status, in Azure's {"value": [{"name", "properties": {...}}]} shape. */
static void references(rp_sites *s, rp_req *req, const char *name, int conn)
{
    json_t *out = json_array(), *st = NULL;
    const char *k;
    json_t *v;
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    if (a != NULL && a->env != NULL)
        st = json_deep_copy(
            json_object_get(rp_appenv_refs(a->env), conn ? "connectionStrings" : "appSettings"));
    uv_mutex_unlock(&s->mu);
    if (a == NULL) {
        json_decref(out);
        json_decref(st);
        rp_resp_error(req, 404, "NotFound", "no such app");
        return;
    }
    json_object_foreach(st, k, v)
    {
        json_array_append_new(out, json_pack("{s:s,s:O}", "name", k, "properties", v));
    }
    json_decref(st);
    rp_resp_json(req, 200, json_pack("{s:o}", "value", out));
}

/* /api/apps/NAME/config/...: 1 when handled. */
static int config_request(rp_sites *s, rp_req *req, const rp_identity *who, const char *name,
                          const char *sub)
{
    int conn = -1;
    op *o;

    if (strcmp(sub, "/config/appsettings") == 0 || strcmp(sub, "/config/appsettings/list") == 0)
        conn = 0;
    else if (strcmp(sub, "/config/connectionstrings") == 0 ||
             strcmp(sub, "/config/connectionstrings/list") == 0)
        conn = 1;
    if (conn >= 0 && strstr(sub, "/list") != NULL) {
        if (req->method != RP_METHOD_POST) {
            rp_resp_header(req, "Allow", "POST");
            rp_resp_error(req, 405, "MethodNotAllowed", "use POST to list the values");
            return 1;
        }
        if (allowed(s, req, who, "Microsoft.Web/sites/config/list/action", name))
            settings_list(s, req, who, name, conn);
        return 1;
    }
    if (conn >= 0) {
        if (req->method != RP_METHOD_PUT) {
            rp_resp_header(req, "Allow", "PUT");
            rp_resp_error(req, 405, "MethodNotAllowed",
                          "use PUT to replace the set, POST .../list to read it");
            return 1;
        }
        if (!allowed(s, req, who, "Microsoft.Web/sites/config/write", name))
            return 1;
        o = op_new(s, req, who, OP_SETTINGS, "Microsoft.Web/sites/config/write", name);
        if (o == NULL) {
            rp_resp_error(req, 500, "InternalError", "out of memory");
            return 1;
        }
        o->conn = conn;
        o->waiting_body = 1;
        rp_req_read_body(req, settings_body);
        return 1;
    }
    if (strcmp(sub, "/config/slotConfigNames") == 0) {
        sticky_request(s, req, who, name);
        return 1;
    }
    if (strcmp(sub, "/config/authsettingsV2") == 0) {
        if (req->method == RP_METHOD_GET || req->method == RP_METHOD_HEAD) {
            if (allowed(s, req, who, "Microsoft.Web/sites/config/read", name))
                auth_get(s, req, name);
            return 1;
        }
        if (req->method != RP_METHOD_PUT) {
            rp_resp_header(req, "Allow", "GET, HEAD, PUT");
            rp_resp_error(req, 405, "MethodNotAllowed", "use GET or PUT");
            return 1;
        }
        if (!allowed(s, req, who, "Microsoft.Web/sites/config/write", name))
            return 1;
        o = op_new(s, req, who, OP_AUTH, "Microsoft.Web/sites/config/write", name);
        if (o == NULL) {
            rp_resp_error(req, 500, "InternalError", "out of memory");
            return 1;
        }
        o->waiting_body = 1;
        rp_req_read_body(req, auth_body);
        return 1;
    }
    if (strcmp(sub, "/config/configreferences/appsettings") == 0 ||
        strcmp(sub, "/config/configreferences/connectionstrings") == 0) {
        if (req->method != RP_METHOD_GET && req->method != RP_METHOD_HEAD) {
            rp_resp_header(req, "Allow", "GET, HEAD");
            rp_resp_error(req, 405, "MethodNotAllowed", "use GET");
            return 1;
        }
        if (allowed(s, req, who, "Microsoft.Web/sites/config/read", name))
            references(s, req, name, strstr(sub, "connectionstrings") != NULL);
        return 1;
    }
    if (strcmp(sub, "/config/configreferences/appsettings/refresh") == 0) {
        if (req->method != RP_METHOD_POST) {
            rp_resp_header(req, "Allow", "POST");
            rp_resp_error(req, 405, "MethodNotAllowed", "use POST");
            return 1;
        }
        if (!allowed(s, req, who, "Microsoft.Web/sites/config/write", name))
            return 1;
        /* Re-read now; the app restarts only if a value changed. */
        if (!env_build(s, name)) {
            rp_resp_error(req, 404, "NotFound", "no such app");
            return 1;
        }
        rp_resp_json(req, 202, json_pack("{s:s}", "status", "Refreshing"));
        return 1;
    }
    return 0;
}

/* Service thread: app's environment was built (or could not be). */
static void env_ready(void *arg, const char *name, const char *id, rp_appenv *env)
{
    rp_sites *s = arg;
    rp_appenv *old = NULL;
    int restart = 0;
    app *a;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    /* Built for an instance deleted meanwhile (and perhaps created again): not this app's. */
    if (a != NULL && strcmp(a->id, id) != 0)
        a = NULL;
    if (a != NULL && env != NULL) {
        /* A failed build (env NULL) changes nothing: a running process keeps what it has, and
         * one that never started waits (its settings could not be opened: starting it without
         * them would fail open); the build is tried again. */
        restart = !a->env_ready || a->must_restart || !rp_appenv_same(a->env, env);
        a->must_restart = 0;
        old = a->env;
        a->env = env;
        a->env_gen++;
        env = NULL;
        a->env_ready = 1;
    }
    uv_mutex_unlock(&s->mu);
    rp_appenv_unref(old);
    rp_appenv_unref(env);
    if (restart)
        sync_process(s, name);
}

/* ---------------------------------------------------------------- deployment slots */

/* 1-19 of [a-z0-9-], a letter or digit first and last, not "production" (Azure's names). */
static int slot_name_valid(const char *slot, size_t n)
{
    if (n < 1 || n > RP_SITES_SLOT_MAX || slot[0] == '-' || slot[n - 1] == '-' ||
        (n == 10 && memcmp(slot, "production", 10) == 0))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((slot[i] >= 'a' && slot[i] <= 'z') || (slot[i] >= '0' && slot[i] <= '9') ||
              slot[i] == '-'))
            return 0;
    return 1;
}

static void clear_busy(rp_sites *s, const char *a, const char *b)
{
    deploy_end(s, a);
    if (b != NULL)
        deploy_end(s, b);
}

/* PUT /api/apps/NAME/slots/SLOT: a new slot starts with the production app's settings (its
 * access restrictions, TLS and client certificate rules, CORS, command, sandbox): the secure
 * choice; "properties" change some of them. An existing slot gets them changed (as PUT on an
 * app). */
static void slot_put_body(rp_req *req)
{
    op **slot = req->handler_data;
    op *o = slot ? *slot : NULL;
    json_t *body = NULL, *props = NULL;
    rp_appcfg *base = NULL;
    char err[300] = "";
    app *a, *p;
    int rc, exists = 0;

    if (o == NULL)
        return;
    o->waiting_body = 0;
    if (req->body.len > 0) {
        body = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, NULL);
        props = json_object_get(body, "properties");
        if (!json_is_object(body) || json_object_size(body) > (props ? 1u : 0u) ||
            (props != NULL && !json_is_object(props))) {
            json_decref(body);
            fail(req, 400, "InvalidParameter",
                 "the body is {} or {\"properties\": {...}} with the slot's settings");
            op_free(o);
            return;
        }
    }
    uv_mutex_lock(&o->s->mu);
    a = find_locked(o->s, o->name, strlen(o->name));
    p = find_locked(o->s, o->parent, strlen(o->parent));
    if (a != NULL) {
        exists = 1;
        base = rp_appcfg_ref(a->cfg);
    } else if (p != NULL && slot_count_locked(o->s, o->parent) < RP_SITES_SLOTS_MAX) {
        base = rp_appcfg_ref(p->cfg);
        /* Its app's Easy Auth too: a slot is never more open than its app. */
        if (p->auth != NULL)
            o->authtext = json_dumps(rp_easyauth_stored(p->auth), JSON_COMPACT | JSON_SORT_KEYS);
    }
    if (a != NULL && strcmp(a->parent, o->parent) != 0) {
        /* An app of this name that is not this slot appeared while the body was read. */
        rp_appcfg_unref(base);
        base = NULL;
    }
    uv_mutex_unlock(&o->s->mu);
    if (base == NULL) {
        json_decref(body);
        fail(req, p == NULL ? 404 : 409, p == NULL ? "NotFound" : "Conflict",
             p == NULL ? "no such app"
                       : "the app has as many slots as it may have (5), or another app took "
                         "this slot's name");
        op_free(o);
        return;
    }
    if (exists && props == NULL) {
        json_decref(body);
        rp_appcfg_unref(base);
        op_answer(o, 200, app_json(o->s, o->name));
        return;
    }
    rc = rp_appcfg_build(rp_appcfg_stored(base), props, &o->newcfg, err, sizeof(err));
    json_decref(body);
    if (rc == 0) {
        o->cfgtext = json_dumps(rp_appcfg_stored(o->newcfg), JSON_COMPACT | JSON_SORT_KEYS);
        if (o->cfgtext == NULL)
            rc = RP_ENOMEM;
    }
    if (rc == 0 && !exists && rp_random_uuid(o->id) != 0)
        rc = RP_ECRYPTO;
    /* The inherited authentication, checked for this slot's own origin (an audience the app
     * lists may be one the slot must not receive tokens for). */
    if (rc == 0 && !exists && o->authtext != NULL) {
        json_t *st = json_loads(o->authtext, 0, NULL);
        rp_easyauth *chk = NULL;
        rc = auth_build(o->s, o->name, st, 1, &chk, err, sizeof(err));
        rp_easyauth_unref(chk);
        json_decref(st);
    }
    if (rc != 0) {
        rp_appcfg_unref(base);
        fail(req, rc == RP_EINVAL ? 400 : 500,
             rc == RP_EINVAL ? "InvalidParameter" : "InternalError",
             err[0] ? err : "the slot cannot be stored");
        op_free(o);
        return;
    }
    if (exists) {
        /* An existing slot: the same checks as any settings change (o->id is its id). */
        int ok = cfg_begin(o, base);
        rp_appcfg_unref(base);
        if (!ok) {
            op_free(o);
            return;
        }
        o->kind = OP_CONFIG;
        op_submit(o, config_write);
    } else {
        rp_appcfg_unref(base);
        op_submit(o, create_write);
    }
}

static void slots_list(rp_sites *s, rp_req *req, const char *name)
{
    char names[RP_SITES_SLOTS_MAX + 8][RP_SITES_NAME_MAX + 1];
    json_t *arr = json_array();
    size_t n = 0;

    uv_mutex_lock(&s->mu);
    for (app *a = s->apps; a != NULL && n < sizeof(names) / sizeof(names[0]); a = a->next)
        if (strcmp(a->parent, name) == 0)
            rp_strlcpy(names[n++], a->name, sizeof(names[0]));
    uv_mutex_unlock(&s->mu);
    for (size_t i = 0; arr != NULL && i < n; i++) {
        json_t *o = app_json(s, names[i]);
        if (o != NULL)
            json_array_append_new(arr, o);
    }
    if (arr == NULL)
        rp_resp_error(req, 500, "InternalError", "out of memory");
    else
        rp_resp_json(req, 200, json_pack("{s:o}", "value", arr));
}

/* /api/apps/NAME/slots[/SLOT[/...]] (rest is what follows "/slots"). */
static void slots_request(rp_sites *s, rp_req *req, const rp_identity *who, const char *name,
                          const char *rest)
{
    char full[RP_SITES_NAME_MAX + 1], slot[RP_SITES_SLOT_MAX + 1], scope[SCOPE_CAP];
    const char *tail;
    size_t n;
    int prod, mine;
    app *a;
    op *o;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    prod = a != NULL && a->parent[0] == '\0';
    uv_mutex_unlock(&s->mu);
    if (rest[0] == '\0' || strcmp(rest, "/") == 0) {
        if (req->method != RP_METHOD_GET && req->method != RP_METHOD_HEAD) {
            rp_resp_header(req, "Allow", "GET, HEAD");
            rp_resp_error(req, 405, "MethodNotAllowed", "use GET on the slots");
            return;
        }
        if (!allowed(s, req, who, "Microsoft.Web/sites/slots/read", name))
            return;
        if (!prod)
            rp_resp_error(req, 404, "NotFound", "no such app");
        else
            slots_list(s, req, name);
        return;
    }
    tail = strchr(rest + 1, '/');
    n = tail ? (size_t)(tail - rest - 1) : strlen(rest + 1);
    if (!slot_name_valid(rest + 1, n) ||
        (size_t)snprintf(full, sizeof(full), "%s-%.*s", name, (int)n, rest + 1) >= sizeof(full) ||
        !rp_sites_name_valid(full)) {
        rp_resp_error(req, 400, "InvalidName",
                      "a slot name is 1-19 characters of a-z, 0-9 and '-', starts and ends with a "
                      "letter or digit, is not 'production', and APP-SLOT is at most 60 "
                      "characters");
        return;
    }
    memcpy(slot, rest + 1, n);
    slot[n] = '\0';
    tail = tail ? tail : "";
    snprintf(scope, sizeof(scope), "/apps/%s/slots/%s", name, slot);
    uv_mutex_lock(&s->mu);
    a = find_locked(s, full, strlen(full));
    mine = a != NULL && strcmp(a->parent, name) == 0 && strcmp(a->slot, slot) == 0;
    uv_mutex_unlock(&s->mu);
    if (strcmp(tail, "/slotsswap") == 0) {
        swap_request(s, req, who, name, slot);
        return;
    }
    if (tail[0] == '\0' && req->method == RP_METHOD_PUT) {
        if (!rp_authz(s->iam, req, who, "Microsoft.Web/sites/slots/write", 0, scope)) {
            rp_authz_reply(req, who, "Microsoft.Web/sites/slots/write", scope);
            return;
        }
        if (!prod || (a != NULL && !mine)) {
            rp_resp_error(req, !prod ? 404 : 409, !prod ? "NotFound" : "Conflict",
                          !prod ? "no such app (or it is a slot itself)"
                                : "another app already has this slot's host name");
            return;
        }
        o = op_new(s, req, who, OP_CREATE, "Microsoft.Web/sites/slots/write", full);
        if (o == NULL) {
            rp_resp_error(req, 500, "InternalError", "out of memory");
            return;
        }
        rp_strlcpy(o->scope, scope, sizeof(o->scope));
        rp_strlcpy(o->parent, name, sizeof(o->parent));
        rp_strlcpy(o->slot, slot, sizeof(o->slot));
        o->waiting_body = 1;
        rp_req_read_body(req, slot_put_body);
        return;
    }
    if (!mine) {
        if (allowed(s, req, who, "Microsoft.Web/sites/slots/read", name))
            rp_resp_error(req, 404, "NotFound", "no such slot");
        return;
    }
    /* Everything an app has, a slot has: /api/apps/NAME/slots/SLOT/x is /api/apps/NAME-SLOT/x,
     * authorized at the slot's scope (below the app's). */
    mgmt_app(s, req, who, full, tail[0] ? tail : NULL);
}

/* ------------------------------------------------ slotConfigNames (sticky settings) */

static int sticky_write(sqlite3 *db, void *arg)
{
    op *o = arg;
    sqlite3_stmt *st;

    if ((st = prep(db, "UPDATE apps SET sticky = ?2, updated_at = ?3 WHERE name = ?1", o->name)) ==
        NULL)
        return RP_EDB;
    sqlite3_bind_text(st, 2, o->cfgtext, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, o->now);
    if (step_done(st) != 0)
        return RP_EDB;
    return sqlite3_changes(db) == 1 ? 0 : RP_ENOENT;
}

/* {"appSettingNames": [...], "connectionStringNames": [...]}, names as settings have them. */
static json_t *sticky_check(const json_t *props, char *err, size_t errlen)
{
    static const char *const keys[] = {"appSettingNames", "connectionStringNames"};
    json_t *out = json_object();
    const char *k;
    json_t *v;

    if (out == NULL)
        return NULL;
    json_object_foreach((json_t *)props, k, v)
    {
        if (strcmp(k, keys[0]) != 0 && strcmp(k, keys[1]) != 0 &&
            strcmp(k, "azureStorageConfigNames") != 0) {
            snprintf(err, errlen,
                     "unknown member '%.40s' (appSettingNames, "
                     "connectionStringNames)",
                     k);
            json_decref(out);
            return NULL;
        }
    }
    for (size_t i = 0; i < 2; i++) {
        const json_t *list = json_object_get(props, keys[i]), *x;
        json_t *names = json_array();
        size_t j;
        if (list != NULL && !json_is_null(list) &&
            (!json_is_array(list) || json_array_size(list) > RP_SETTINGS_COUNT_MAX)) {
            snprintf(err, errlen, "%s: an array of at most %d names", keys[i],
                     RP_SETTINGS_COUNT_MAX);
            json_decref(names);
            json_decref(out);
            return NULL;
        }
        json_array_foreach(list, j, x)
        {
            const char *nm = json_string_value(x);
            size_t l = nm ? strlen(nm) : 0;
            int ok = l > 0 && l <= RP_SETTINGS_NAME_MAX;
            for (size_t c = 0; ok && c < l; c++)
                ok = (nm[c] >= 'A' && nm[c] <= 'Z') || (nm[c] >= 'a' && nm[c] <= 'z') ||
                     (nm[c] >= '0' && nm[c] <= '9') || strchr("_.:-", nm[c]) != NULL;
            if (!ok) {
                snprintf(err, errlen, "%s: each entry is a setting name", keys[i]);
                json_decref(names);
                json_decref(out);
                return NULL;
            }
            json_array_append_new(names, json_string(nm));
        }
        json_object_set_new(out, keys[i], names);
    }
    return out;
}

static void sticky_body(rp_req *req)
{
    op **slot = req->handler_data;
    op *o = slot ? *slot : NULL;
    json_t *body, *props, *names = NULL;
    char err[300] = "";

    if (o == NULL)
        return;
    o->waiting_body = 0;
    body = json_loadb(req->body.data ? req->body.data : "", req->body.len, JSON_REJECT_DUPLICATES,
                      NULL);
    props = json_object_get(body, "properties");
    if (json_is_object(props))
        names = sticky_check(props, err, sizeof(err));
    json_decref(body);
    if (names == NULL) {
        fail(req, 400, "InvalidParameter",
             err[0] ? err
                    : "the body is {\"properties\": {\"appSettingNames\": [...], "
                      "\"connectionStringNames\": [...]}}");
        op_free(o);
        return;
    }
    o->cfgtext = json_dumps(names, JSON_COMPACT | JSON_SORT_KEYS);
    o->sticky = names;
    o->reply = json_pack("{s:s,s:O}", "name", "slotConfigNames", "properties", names);
    if (o->cfgtext == NULL || o->reply == NULL) {
        fail(req, 500, "InternalError", "out of memory");
        op_free(o);
        return;
    }
    if (!cfg_begin(o, NULL)) {
        op_free(o);
        return;
    }
    op_submit(o, sticky_write);
}

/* GET or PUT .../config/slotConfigNames (the production app's; shared by its slots). */
static void sticky_request(rp_sites *s, rp_req *req, const rp_identity *who, const char *name)
{
    json_t *names = NULL;
    int prod = 0, known = 0;
    op *o;
    app *a;

    if (req->method == RP_METHOD_GET || req->method == RP_METHOD_HEAD) {
        if (!allowed(s, req, who, "Microsoft.Web/sites/config/read", name))
            return;
        uv_mutex_lock(&s->mu);
        a = find_locked(s, name, strlen(name));
        if (a != NULL) {
            known = 1;
            names = a->sticky ? json_deep_copy(a->sticky) : NULL;
        }
        uv_mutex_unlock(&s->mu);
        if (!known) {
            rp_resp_error(req, 404, "NotFound", "no such app");
            return;
        }
        if (names == NULL)
            names = json_pack("{s:[],s:[]}", "appSettingNames", "connectionStringNames");
        rp_resp_json(req, 200,
                     json_pack("{s:s,s:o}", "name", "slotConfigNames", "properties", names));
        return;
    }
    if (req->method != RP_METHOD_PUT) {
        rp_resp_header(req, "Allow", "GET, HEAD, PUT");
        rp_resp_error(req, 405, "MethodNotAllowed", "use GET or PUT");
        return;
    }
    if (!allowed(s, req, who, "Microsoft.Web/sites/config/write", name))
        return;
    uv_mutex_lock(&s->mu);
    a = find_locked(s, name, strlen(name));
    known = a != NULL;
    prod = a != NULL && a->parent[0] == '\0';
    uv_mutex_unlock(&s->mu);
    if (!prod) {
        rp_resp_error(req, known ? 400 : 404, known ? "InvalidParameter" : "NotFound",
                      known ? "slotConfigNames belong to the production app, for all its slots"
                            : "no such app");
        return;
    }
    o = op_new(s, req, who, OP_STICKY, "Microsoft.Web/sites/config/write", name);
    if (o == NULL) {
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    o->waiting_body = 1;
    rp_req_read_body(req, sticky_body);
}

/* ---------------------------------------------------------------- swap */

static int sticky_has(const json_t *sticky, const char *list, const char *name)
{
    const json_t *v;
    size_t i;

    json_array_foreach(json_object_get(sticky, list), i,
                       v) if (json_is_string(v) &&
                              strcasecmp(json_string_value(v), name) == 0) return 1;
    return 0;
}

/* What mine becomes after a swap: its own sticky members, the other's non-sticky ones. */
static json_t *swapped_set(const json_t *mine, const json_t *theirs, const json_t *sticky,
                           const char *list)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;

    if (out == NULL)
        return NULL;
    json_object_foreach((json_t *)mine, k, v) if (sticky_has(sticky, list, k))
        json_object_set(out, k, v);
    json_object_foreach((json_t *)theirs, k, v) if (!sticky_has(sticky, list, k))
        json_object_set(out, k, v);
    return out;
}

/* Thread pool: both apps' settings swapped (sticky ones stay) and sealed, each under its own
 * app's KEK. */
static void swap_work(uv_work_t *w)
{
    op *o = w->data;
    const char *reason = NULL;
    json_t *a = NULL, *b = NULL, *na = NULL, *nb = NULL;
    sqlite3 *db = NULL;

    o->rc = rp_store_reader_open(o->s->store, &db);
    if (o->rc == 0)
        o->rc = rp_appenv_settings_read(db, o->s->kr, o->name, o->id, &a, &reason);
    if (o->rc == 0)
        o->rc = rp_appenv_settings_read(db, o->s->kr, o->other, o->other_id, &b, &reason);
    if (db != NULL)
        sqlite3_close(db);
    if (o->rc == 0) {
        na = json_pack("{s:o,s:o}", "appSettings",
                       swapped_set(json_object_get(a, "appSettings"),
                                   json_object_get(b, "appSettings"), o->sticky, "appSettingNames"),
                       "connectionStrings",
                       swapped_set(json_object_get(a, "connectionStrings"),
                                   json_object_get(b, "connectionStrings"), o->sticky,
                                   "connectionStringNames"));
        nb = json_pack("{s:o,s:o}", "appSettings",
                       swapped_set(json_object_get(b, "appSettings"),
                                   json_object_get(a, "appSettings"), o->sticky, "appSettingNames"),
                       "connectionStrings",
                       swapped_set(json_object_get(b, "connectionStrings"),
                                   json_object_get(a, "connectionStrings"), o->sticky,
                                   "connectionStringNames"));
        o->rc = na && nb ? 0 : RP_ENOMEM;
    }
    if (o->rc == 0 && ((o->rc = rp_settings_check_all(na, o->err, sizeof(o->err))) != 0 ||
                       (o->rc = rp_settings_check_all(nb, o->err, sizeof(o->err))) != 0)) {
        json_decref(a);
        json_decref(b);
        json_decref(na);
        json_decref(nb);
        return; /* o->err says which names would collide */
    }
    if (o->rc == 0)
        o->rc = rp_appenv_settings_seal(o->s->kr, o->name, o->id, na, &o->wdek, &o->ct, &reason);
    if (o->rc == 0)
        o->rc = rp_appenv_settings_seal(o->s->kr, o->other, o->other_id, nb, &o->wdek2, &o->ct2,
                                        &reason);
    if (o->rc != 0)
        snprintf(o->err, sizeof(o->err), "%s",
                 reason ? reason : "the settings could not be swapped");
    json_decref(a);
    json_decref(b);
    json_decref(na);
    json_decref(nb);
}

static int secrets_put(sqlite3 *db, const char *name, const rp_buf *wdek, const rp_buf *ct,
                       int64_t now)
{
    char id[RP_SITES_NAME_MAX + 16];
    sqlite3_stmt *st;

    if ((st = prep(db,
                   "INSERT OR REPLACE INTO app_secrets (app, wdek, updated_at) VALUES (?1, ?2, ?3)",
                   name)) == NULL)
        return RP_EDB;
    sqlite3_bind_blob(st, 2, wdek->data, (int)wdek->len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    if (step_done(st) != 0)
        return RP_EDB;
    snprintf(id, sizeof(id), "apps/%s/settings", name);
    if ((st = prep(db, "INSERT OR REPLACE INTO obj.blobs (id, ct) VALUES (?1, ?2)", id)) == NULL)
        return RP_EDB;
    sqlite3_bind_blob(st, 2, ct->data, (int)ct->len, SQLITE_STATIC);
    return step_done(st);
}

/*
 * One transaction: the two apps exchange their releases (rows, live and next numbers), their
 * commands and their non-sticky settings; then their release directories are exchanged with
 * one atomic rename. A failed rename rolls the transaction back; a crash after it but before
 * the commit is undone at start-up (owners_repair).
 */
static int swap_write(sqlite3 *db, void *arg)
{
    op *o = arg;
    const char *names[2] = {o->name, o->other};
    int64_t rel[2] = {0, 0}, next[2] = {1, 1};
    char ra[PATH_CAP], rb[PATH_CAP];
    sqlite3_stmt *st;

    char rdir[2][37];

    for (int i = 0; i < 2; i++) {
        if ((st = prep(db, "SELECT release, next_release, rdir FROM apps WHERE name = ?1",
                       names[i])) == NULL)
            return RP_EDB;
        if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_bytes(st, 2) != 36) {
            sqlite3_finalize(st);
            return RP_ENOENT;
        }
        rel[i] = sqlite3_column_int64(st, 0);
        next[i] = sqlite3_column_int64(st, 1);
        memcpy(rdir[i], sqlite3_column_text(st, 2), 37);
        sqlite3_finalize(st);
    }
    for (int i = 0; i < 2; i++) {
        if ((st = prep(db,
                       "UPDATE apps SET release = ?2, next_release = ?3, config = ?4,"
                       " updated_at = ?5, rdir = ?6 WHERE name = ?1",
                       names[i])) == NULL)
            return RP_EDB;
        sqlite3_bind_int64(st, 2, rel[1 - i]);
        sqlite3_bind_int64(st, 3, next[1 - i]);
        sqlite3_bind_text(st, 4, i == 0 ? o->cfgtext : o->cfgtext2, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, o->now);
        sqlite3_bind_text(st, 6, rdir[1 - i], -1, SQLITE_TRANSIENT);
        if (step_done(st) != 0)
            return RP_EDB;
    }
    /* Through negative numbers: (app, seq) stays unique at every step. */
    if ((st = prep(db, "UPDATE app_releases SET seq = -seq WHERE app = ?1", o->name)) == NULL ||
        step_done(st) != 0)
        return RP_EDB;
    if ((st = prep(db, "UPDATE app_releases SET app = ?1 WHERE app = ?2", o->name)) == NULL)
        return RP_EDB;
    sqlite3_bind_text(st, 2, o->other, -1, SQLITE_STATIC);
    if (step_done(st) != 0)
        return RP_EDB;
    if ((st = prep(db, "UPDATE app_releases SET app = ?2, seq = -seq WHERE app = ?1 AND seq < 0",
                   o->name)) == NULL)
        return RP_EDB;
    sqlite3_bind_text(st, 2, o->other, -1, SQLITE_STATIC);
    if (step_done(st) != 0)
        return RP_EDB;
    if (secrets_put(db, o->name, &o->wdek, &o->ct, o->now) != 0 ||
        secrets_put(db, o->other, &o->wdek2, &o->ct2, o->now) != 0)
        return RP_EDB;
    o->release = rel[1];
    o->prev = rel[0];
    snprintf(ra, sizeof(ra), "%s/releases", o->name);
    snprintf(rb, sizeof(rb), "%s/releases", o->other);
    if (renameat2(o->s->apps_fd, ra, o->s->apps_fd, rb, RENAME_EXCHANGE) != 0) {
        snprintf(o->err, sizeof(o->err), "the release directories could not be exchanged: %s",
                 strerror(errno));
        return RP_EIO;
    }
    o->renamed = 1;
    if (fsync(o->s->apps_fd) != 0) {
        /* Put back what the store will not record. */
        (void)renameat2(o->s->apps_fd, ra, o->s->apps_fd, rb, RENAME_EXCHANGE);
        return RP_EIO;
    }
    return 0;
}

static void swap_done(uv_work_t *w, int status)
{
    op *o = w->data;

    o->in_work = 0;
    if (tl == NULL)
        clear_busy(o->s, o->name, o->other);
    if (work_orphaned(o))
        return;
    if (status != 0 && o->rc == 0)
        o->rc = RP_EIO;
    if (o->rc != 0) {
        clear_busy(o->s, o->name, o->other);
        op_audit(o, o->rc, o->err);
        fail(o->req, o->rc == RP_EPERM || o->rc == RP_EINVAL ? 409 : 500,
             o->rc == RP_EINVAL  ? "Conflict"
             : o->rc == RP_EPERM ? "KeyUnavailable"
                                 : "InternalError",
             o->err);
        op_free(o);
        return;
    }
    op_submit(o, swap_write);
}

/* After the commit: the apps serve each other's content at once, and restart their processes
 * with the swapped commands and settings. */
static void swap_written(rp_sites *s, op *o, int status)
{
    app *a, *b;

    uv_mutex_lock(&s->mu);
    a = find_locked(s, o->name, strlen(o->name));
    b = find_locked(s, o->other, strlen(o->other));
    if (status == 0 && a != NULL && b != NULL) {
        content *c = a->live;
        int64_t n = a->next_release;
        rp_appcfg *ca = a->cfg, *cb = b->cfg;
        a->live = b->live;
        b->live = c;
        {
            char r[37];
            memcpy(r, a->rdir, sizeof(r));
            memcpy(a->rdir, b->rdir, sizeof(r));
            memcpy(b->rdir, r, sizeof(r));
        }
        a->next_release = b->next_release;
        b->next_release = n;
        a->cfg = o->newcfg;
        b->cfg = o->newcfg2;
        o->newcfg = ca; /* released with the op */
        o->newcfg2 = cb;
        a->updated = b->updated = o->now;
        /* Another slot's code: new identity headers, processes replaced once built. */
        env_rotate_locked(s, a);
        env_rotate_locked(s, b);
    }
    if (status != 0 && o->renamed && a != NULL) {
        /* The rename happened but the transaction did not commit (a later op of its group
         * failed, or the commit): put the directories back while both apps are still busy. */
        char ra[PATH_CAP], rb[PATH_CAP], own[37];
        snprintf(ra, sizeof(ra), "%s/releases", o->name);
        snprintf(rb, sizeof(rb), "%s/releases", o->other);
        if (owner_read(s, o->name, own) == 0 && strcmp(own, a->rdir) != 0 &&
            renameat2(s->apps_fd, ra, s->apps_fd, rb, RENAME_EXCHANGE) != 0)
            rp_log_msg(RP_LOG_ERROR, "sites.swap",
                       "a failed swap's directories could not be put back: restart repairs them");
    }
    if (a != NULL)
        a->deploying = a->swapping = 0;
    if (b != NULL)
        b->deploying = b->swapping = 0;
    uv_mutex_unlock(&s->mu);
    if (status == 0) {
        o->reply = json_pack("{s:o*,s:o*}", "production", app_json(s, o->name), "slot",
                             app_json(s, o->other));
    }
}

/* The swap request once its body is read: {"targetSlot": "production" | SLOT}. */
static void swap_body(rp_req *req)
{
    op **slotp = req->handler_data;
    op *o = slotp ? *slotp : NULL;
    json_t *body;
    const char *target;
    char slot[RP_SITES_SLOT_MAX + 1], cmd_a[RP_PROC_COMMAND_MAX + 1],
        cmd_b[RP_PROC_COMMAND_MAX + 1], err[300] = "";
    rp_appcfg *ca = NULL, *cb = NULL;
    json_t *pa = NULL, *pb = NULL;
    int busy = -1, rc;
    app *a, *b;

    if (o == NULL)
        return;
    o->waiting_body = 0;
    body = json_loadb(req->body.data ? req->body.data : "", req->body.len, JSON_REJECT_DUPLICATES,
                      NULL);
    target = json_string_value(json_object_get(body, "targetSlot"));
    rc = target == NULL ? RP_EINVAL : 0;
    if (rc == 0 && o->slot[0] != '\0') {
        /* .../slots/SLOT/slotsswap: the target is production. */
        rc = strcasecmp(target, "production") == 0 ? 0 : RP_EINVAL;
        rp_strlcpy(slot, o->slot, sizeof(slot));
    } else if (rc == 0) {
        rc = slot_name_valid(target, strlen(target)) ? 0 : RP_EINVAL;
        if (rc == 0)
            rp_strlcpy(slot, target, sizeof(slot));
    }
    json_decref(body);
    if (rc != 0) {
        fail(req, 400, "InvalidParameter",
             "the body is {\"targetSlot\": \"production\"} (from a slot) or {\"targetSlot\": "
             "\"SLOT\"} (from the app)");
        op_free(o);
        return;
    }
    if ((size_t)snprintf(o->other, sizeof(o->other), "%s-%s", o->name, slot) >= sizeof(o->other)) {
        fail(req, 404, "NotFound", "no such slot");
        op_free(o);
        return;
    }
    /* Authorized at the production app: a swap changes what it serves, so a role on the slot
     * alone (enough to deploy there) must not be enough to push it into production. */
    snprintf(o->scope, sizeof(o->scope), "/apps/%s", o->name);
    if (!rp_authz(o->s->iam, req, &o->who, o->action, 0, o->scope)) {
        rp_authz_reply(req, &o->who, o->action, o->scope);
        op_free(o);
        return;
    }
    uv_mutex_lock(&o->s->mu);
    a = find_locked(o->s, o->name, strlen(o->name));
    b = find_locked(o->s, o->other, strlen(o->other));
    if (a != NULL && b != NULL && a->parent[0] == '\0' && strcmp(b->parent, o->name) == 0 &&
        strcmp(a->id, o->id) == 0) {
        busy = a->deploying || b->deploying || a->busy_ops || b->busy_ops || a->settings_busy ||
               b->settings_busy;
        if (!busy) {
            a->deploying = b->deploying = 1;
            a->swapping = b->swapping = 1;
            ca = rp_appcfg_ref(a->cfg);
            memcpy(o->other_id, b->id, sizeof(o->other_id));
            cb = rp_appcfg_ref(b->cfg);
            o->sticky = a->sticky ? json_deep_copy(a->sticky) : json_object();
        }
    }
    uv_mutex_unlock(&o->s->mu);
    if (busy != 0) {
        fail(req, busy < 0 ? 404 : 409, busy < 0 ? "NotFound" : "Conflict",
             busy < 0 ? "no such app or slot"
                      : "a deploy, swap, delete or settings change of one of them is running");
        op_free(o);
        return;
    }
    rp_strlcpy(cmd_a, rp_appcfg_command(ca) ? rp_appcfg_command(ca) : "", sizeof(cmd_a));
    rp_strlcpy(cmd_b, rp_appcfg_command(cb) ? rp_appcfg_command(cb) : "", sizeof(cmd_b));
    /* The command moves with the content (it is the "stack"); every other setting stays. */
    pa = json_pack("{s:s}", "appCommandLine", cmd_b);
    pb = json_pack("{s:s}", "appCommandLine", cmd_a);
    rc = pa && pb ? rp_appcfg_build(rp_appcfg_stored(ca), pa, &o->newcfg, err, sizeof(err))
                  : RP_ENOMEM;
    if (rc == 0)
        rc = rp_appcfg_build(rp_appcfg_stored(cb), pb, &o->newcfg2, err, sizeof(err));
    if (rc == 0) {
        o->cfgtext = json_dumps(rp_appcfg_stored(o->newcfg), JSON_COMPACT | JSON_SORT_KEYS);
        o->cfgtext2 = json_dumps(rp_appcfg_stored(o->newcfg2), JSON_COMPACT | JSON_SORT_KEYS);
        if (o->cfgtext == NULL || o->cfgtext2 == NULL || o->sticky == NULL)
            rc = RP_ENOMEM;
    }
    json_decref(pa);
    json_decref(pb);
    rp_appcfg_unref(ca);
    rp_appcfg_unref(cb);
    o->work.data = o;
    o->in_work = rc == 0;
    if (rc != 0 || uv_queue_work(tl->loop, &o->work, swap_work, swap_done) != 0) {
        o->in_work = 0;
        clear_busy(o->s, o->name, o->other);
        fail(req, 500, "InternalError", err[0] ? err : "the swap could not be started");
        op_free(o);
    }
}

/* POST /api/apps/NAME/slotsswap {"targetSlot": SLOT}, or .../slots/SLOT/slotsswap
 * {"targetSlot": "production"} (slot given): the slot and the production app swap. */
static void swap_request(rp_sites *s, rp_req *req, const rp_identity *who, const char *name,
                         const char *slot)
{
    op *o;

    if (req->method != RP_METHOD_POST) {
        rp_resp_header(req, "Allow", "POST");
        rp_resp_error(req, 405, "MethodNotAllowed", "use POST");
        return;
    }
    o = op_new(s, req, who, OP_SWAP, "Microsoft.Web/sites/slots/slotsswap/action", name);
    if (o == NULL) {
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    if (slot != NULL)
        rp_strlcpy(o->slot, slot, sizeof(o->slot));
    o->waiting_body = 1;
    rp_req_read_body(req, swap_body);
}

/* ---------------------------------------------------------------- service */

int rp_sites_register(rp_sites *s, rp_router *r)
{
    rp_route_opts site = {RP_M_ANY, RP_SITES_BODY_MAX, s};
    rp_route_opts scm = {RP_M_READ | RP_M(RP_METHOD_POST), (size_t)RP_SITES_ZIP_MAX, s};
    rp_route_opts m = {RP_M_READ | RP_M(RP_METHOD_PUT) | RP_M(RP_METHOD_DELETE) |
                           RP_M(RP_METHOD_POST),
                       RP_APPCFG_CA_MAX + 3 * RP_SETTINGS_TOTAL_MAX, s};
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

/* The token service's question: may a token be issued for https://LABEL.D? (Easy Auth) */
static int app_known(void *arg, const char *label, size_t n)
{
    rp_sites *s = arg;
    int known;

    uv_mutex_lock(&s->mu);
    known = find_locked(s, label, n) != NULL;
    uv_mutex_unlock(&s->mu);
    return known;
}

void rp_sites_start(rp_sites *s)
{
    /* Identities of apps whose delete was cut short go before any app is built. */
    rp_appenvs_sweep(s->envs);
    uv_mutex_lock(&s->mu);
    for (app *a = s->apps; a != NULL; a = a->next) {
        rp_easyauth *again = NULL;
        char err[400];
        /* The issuer names the HTTPS port, known only now. */
        if (a->auth != NULL &&
            auth_build(s, a->name, rp_easyauth_stored(a->auth), 0, &again, err, sizeof(err)) == 0 &&
            again != NULL) {
            rp_easyauth_unref(a->auth);
            a->auth = again;
        }
        if (a->auth != NULL && s->oidc != NULL && external_issuer(s, a->auth) != NULL)
            (void)rp_oidc_watch(s->oidc, external_issuer(s, a->auth));
    }
    for (app *a = s->apps; a != NULL; a = a->next)
        env_build_locked(s, a);
    uv_mutex_unlock(&s->mu);
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

/*
 * Makes every app's release directory the one its .owner names (see OWNER_FILE): a swap cut
 * between its rename and its commit left two apps with each other's releases. An app without a
 * marker (made before markers existed) gets one.
 */
static void owners_repair(rp_sites *s)
{
    for (app *a = s->apps; a != NULL; a = a->next) {
        char id[37], rel[PATH_CAP], orel[PATH_CAP];
        app *b = NULL;
        int rc = owner_read(s, a->name, id);

        if (rc == RP_ENOENT || rc == RP_EPARSE) {
            snprintf(rel, sizeof(rel), "%s/releases", a->name);
            if (faccessat(s->apps_fd, rel, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                (void)owner_write(s, a->name, a->rdir);
            continue;
        }
        if (rc != 0 || strcmp(id, a->rdir) == 0)
            continue;
        for (app *x = s->apps; x != NULL; x = x->next)
            if (strcmp(x->rdir, id) == 0)
                b = x;
        if (b == NULL || owner_read(s, b->name, id) != 0 || strcmp(id, a->rdir) != 0) {
            rp_log_msg(RP_LOG_ERROR, "sites.swap",
                       "an app's release directory belongs to no app: left alone");
            continue;
        }
        snprintf(rel, sizeof(rel), "%s/releases", a->name);
        snprintf(orel, sizeof(orel), "%s/releases", b->name);
        if (renameat2(s->apps_fd, rel, s->apps_fd, orel, RENAME_EXCHANGE) != 0 ||
            fsync(s->apps_fd) != 0) {
            rp_log_msg(RP_LOG_ERROR, "sites.swap", "a half-done swap could not be undone");
            continue;
        }
        rp_logline l;
        rp_logline_begin(&l, RP_LOG_WARN, "sites.swap");
        rp_logline_str(&l, "message", "a swap cut short by a crash was rolled back on disk");
        rp_logline_str(&l, "app", a->name);
        rp_logline_str(&l, "slot", b->name);
        rp_logline_end(&l);
    }
}

/* Opens every app's live release (start-up, after owners_repair). */
static void open_live(rp_sites *s, sqlite3 *db)
{
    for (app *a = s->apps; a != NULL; a = a->next) {
        if (a->load_release > 0 &&
            content_open(s, a->name, a->load_release,
                         rp_appcfg_command(a->cfg) == NULL ? FN_LENIENT : FN_IGNORE, &a->live, NULL,
                         0) != 0) {
            /* Served as "nothing deployed" rather than refusing to start every other app. */
            rp_logline l;
            rp_logline_begin(&l, RP_LOG_ERROR, "sites.open");
            rp_logline_str(&l, "message", "the live release of an app cannot be opened");
            rp_logline_str(&l, "app", a->name);
            rp_logline_int(&l, "release", a->load_release);
            rp_logline_end(&l);
        }
        /* The deploy-time rules again (the release may have been deployed while the app had a
         * command): a release that breaks them serves without its functions. */
        if (a->live != NULL && a->live->fn != NULL) {
            char why[400];
            if (forwarded_identity(a->live->fn, why, sizeof(why)) ||
                (!release_allows_anonymous(db, a->name, a->load_release) &&
                 anonymous_function(a->live->fn, why, sizeof(why)))) {
                rp_logline l;
                rp_logline_begin(&l, RP_LOG_ERROR, "functions.load");
                rp_logline_str(&l, "message",
                               "the live release breaks a deploy rule; no function "
                               "answers until a release that keeps them is live");
                rp_logline_str(&l, "app", a->name);
                rp_logline_str(&l, "reason", why);
                rp_logline_end(&l);
                rp_fn_app_free(a->live->fn);
                a->live->fn = NULL;
            }
        }
        /* A function app's keys: loaded, or made for a release deployed before there were any. */
        if (a->live != NULL && a->live->fn != NULL) {
            char err[256];
            if (fnkeys_update(s, a->name, a->id, keys_for_release, a->live->fn, NULL, err,
                              sizeof(err)) != 0) {
                rp_logline l;
                rp_logline_begin(&l, RP_LOG_ERROR, "functions.keys");
                rp_logline_str(&l, "message",
                               "a function app's keys cannot be loaded; only "
                               "anonymous functions answer");
                rp_logline_str(&l, "app", a->name);
                rp_logline_str(&l, "reason", err);
                rp_logline_end(&l);
            }
        }
    }
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
            runs_remove(s, e->d_name);
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
            if (strcmp(re->d_name, ".") == 0 || strcmp(re->d_name, "..") == 0 ||
                strcmp(re->d_name, OWNER_FILE) == 0)
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
                           " config, uid, auth, parent, slot, sticky, rdir FROM apps",
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
        if (sqlite3_column_text(st, 9) != NULL)
            rp_strlcpy(a->parent, (const char *)sqlite3_column_text(st, 9), sizeof(a->parent));
        if (sqlite3_column_text(st, 10) != NULL)
            rp_strlcpy(a->slot, (const char *)sqlite3_column_text(st, 10), sizeof(a->slot));
        if (sqlite3_column_text(st, 11) != NULL)
            a->sticky = json_loads((const char *)sqlite3_column_text(st, 11), 0, NULL);
        rp_strlcpy(a->rdir,
                   sqlite3_column_text(st, 12) && sqlite3_column_bytes(st, 12) == 36
                       ? (const char *)sqlite3_column_text(st, 12)
                       : a->id,
                   sizeof(a->rdir));
        {
            const char *text = (const char *)sqlite3_column_text(st, 8);
            json_t *stored = text ? json_loads(text, 0, NULL) : NULL;
            char aerr[400] = "";
            /* Built again by rp_sites_start once the issuer's port is known; refusing to start
             * beats serving an app without the authentication it asked for. */
            int arc = s->iam != NULL
                          ? auth_build(s, a->name, stored, 0, &a->auth, aerr, sizeof(aerr))
                          : 0;
            json_decref(stored);
            if (arc != 0) {
                snprintf(err, errlen, "app %s: its authentication settings cannot be used: %s",
                         a->name, aerr);
                app_free(s, a);
                sqlite3_finalize(st);
                return arc;
            }
        }
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
        a->load_release = release; /* opened once the directories are repaired (open_live) */
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
    s->kr = o->keyring;
    s->vault = o->vault;
    s->oidc = o->oidc;
    s->helper = o->helper;
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
    if (uv_mutex_init(&s->keys_mu) != 0) {
        rc = RP_ENOMEM;
        goto fail;
    }
    s->keys_mu_ready = 1;
    if ((rc = rp_session_box_new(&s->box)) != 0) {
        snprintf(err, errlen, "cannot make the session cookie key");
        goto fail;
    }
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
    rc = rp_procs_open(s->helper, &s->procs);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the app process supervisor");
        goto fail;
    }
    rc = rp_fn_timers_open(fn_port, fn_timer_ran, fn_idle_tick, s, &s->timers);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the timer triggers' thread");
        goto fail;
    }
    rc = rp_store_reader_open(s->store, &db);
    if (rc == 0)
        rc = load(s, db, err, errlen);
    if (rc == 0) {
        owners_repair(s);
        sweep_dirs(s, db);
        open_live(s, db);
    }
    sqlite3_close(db);
    if (rc != 0)
        goto fail;
    {
        rp_appenvs_opts eo = {.domain = s->domain,
                              .iam = s->iam,
                              .vault = s->vault,
                              .kr = s->kr,
                              .store = s->store,
                              .ready = env_ready,
                              .exists = instance_exists,
                              .fn_identities = fn_identities,
                              .arg = s};
        rc = rp_appenvs_open(&eo, &s->envs);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start the app environment thread");
            goto fail;
        }
    }
    if (s->iam != NULL)
        rp_iam_set_app_resolver(s->iam, app_known, s);
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
    if (s->iam != NULL)
        rp_iam_set_app_resolver(s->iam, NULL, NULL);
    /* Before the supervisor: a finishing build may still ask it to start a process. */
    rp_appenvs_close(s->envs);
    rp_fn_timers_close(s->timers);
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
    if (s->keys_mu_ready)
        uv_mutex_destroy(&s->keys_mu);
    rp_session_box_free(s->box);
    rp_free(s);
}
