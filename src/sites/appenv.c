/*
 * appenv.c - app environments: settings, Key Vault references and the managed identity
 * session, built on a service thread (appenv.h).
 */
#include "sites/appenv.h"

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/str.h"
#include "iam/authn.h"
#include "sites/settings.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uv.h>

#define SCOPE_CAP RP_APPENV_RES_MAX

struct rp_appenv {
    unsigned refs; /* atomic */
    char **vars;
    size_t nvars;
    json_t *refstat;
    char principal[37];
    char client[37];
    struct fnenv *fns; /* functions with an identity of their own */
    size_t nfns;
};

/* One function's own identity and its worker's variables (copies, wiped when dropped). */
typedef struct fnenv {
    char name[RP_APPENV_FN_NAME_MAX + 1];
    char principal[37];
    char client[37];
    char **vars;
    size_t nvars;
} fnenv;

enum { JOB_BUILD = 1, JOB_FORGET, JOB_SWEEP };

typedef struct job {
    int kind, session, rotate;
    char app[64];
    char id[37];
    struct job *next;
} job;

/* Apps to build again at refresh_at: versionless or unresolved references, failed builds. */
typedef struct due {
    char app[64];
    char id[37];
    int session;
    int64_t refresh_at;
    struct due *next;
} due;

/* An app's running identity session: kept across builds so its process keeps its header. */
typedef struct sess {
    char res[SCOPE_CAP];
    char principal[37];
    char header[64];
    struct sess *next;
} sess;

struct rp_appenvs {
    rp_appenvs_opts o;
    char domain[256];
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cv;
    int quit, started;
    job *head, **tail;
    due *dues;   /* the thread's own */
    sess *sesss; /* the thread's own */
};

/* ---------------------------------------------------------------- rp_appenv */

rp_appenv *rp_appenv_ref(rp_appenv *e)
{
    if (e != NULL)
        __atomic_add_fetch(&e->refs, 1, __ATOMIC_RELAXED);
    return e;
}

void rp_appenv_unref(rp_appenv *e)
{
    if (e == NULL || __atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < e->nvars; i++) {
        OPENSSL_cleanse(e->vars[i], strlen(e->vars[i]));
        rp_free(e->vars[i]);
    }
    rp_free(e->vars);
    for (size_t f = 0; f < e->nfns; f++) {
        for (size_t i = 0; i < e->fns[f].nvars; i++) {
            OPENSSL_cleanse(e->fns[f].vars[i], strlen(e->fns[f].vars[i]));
            rp_free(e->fns[f].vars[i]);
        }
        rp_free(e->fns[f].vars);
    }
    rp_free(e->fns);
    json_decref(e->refstat);
    rp_free(e);
}

const char *const *rp_appenv_vars(const rp_appenv *e, size_t *n)
{
    *n = e ? e->nvars : 0;
    return e ? (const char *const *)e->vars : NULL;
}

static int vars_same(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return 1;
}

int rp_appenv_same(const rp_appenv *a, const rp_appenv *b)
{
    size_t nf = a ? a->nfns : 0;

    if (!vars_same(a ? a->vars : NULL, a ? a->nvars : 0, b ? b->vars : NULL, b ? b->nvars : 0) ||
        nf != (b ? b->nfns : 0))
        return 0;
    for (size_t f = 0; f < nf; f++)
        if (strcmp(a->fns[f].name, b->fns[f].name) != 0 ||
            !vars_same(a->fns[f].vars, a->fns[f].nvars, b->fns[f].vars, b->fns[f].nvars))
            return 0;
    return 1;
}

/* Function names, like the identity resources they make, match ignoring case. */
static const fnenv *fn_find(const rp_appenv *e, const char *fn)
{
    for (size_t i = 0; e != NULL && fn != NULL && i < e->nfns; i++)
        if (strcasecmp(e->fns[i].name, fn) == 0)
            return &e->fns[i];
    return NULL;
}

size_t rp_appenv_fn_count(const rp_appenv *e)
{
    return e ? e->nfns : 0;
}

const char *rp_appenv_fn_name(const rp_appenv *e, size_t i)
{
    return e != NULL && i < e->nfns ? e->fns[i].name : NULL;
}

const char *const *rp_appenv_fn_vars(const rp_appenv *e, const char *fn, size_t *n)
{
    const fnenv *f = fn_find(e, fn);

    *n = f ? f->nvars : 0;
    return f ? (const char *const *)f->vars : NULL;
}

const char *rp_appenv_fn_principal(const rp_appenv *e, const char *fn)
{
    const fnenv *f = fn_find(e, fn);
    return f ? f->principal : "";
}

const char *rp_appenv_fn_client(const rp_appenv *e, const char *fn)
{
    const fnenv *f = fn_find(e, fn);
    return f ? f->client : "";
}

const json_t *rp_appenv_refs(const rp_appenv *e)
{
    return e ? e->refstat : NULL;
}

const char *rp_appenv_principal(const rp_appenv *e)
{
    return e ? e->principal : "";
}

const char *rp_appenv_client(const rp_appenv *e)
{
    return e ? e->client : "";
}

static int vars_add(char **vars, size_t *n, size_t cap, const char *name, const char *value,
                    size_t vn)
{
    size_t nn = strlen(name);
    char *v;

    if (*n == cap)
        return RP_ETOOBIG;
    v = rp_malloc(nn + vn + 2);
    if (v == NULL)
        return RP_ENOMEM;
    memcpy(v, name, nn);
    v[nn] = '=';
    memcpy(v + nn + 1, value, vn);
    v[nn + 1 + vn] = '\0';
    vars[(*n)++] = v;
    return 0;
}

static int add_var(rp_appenv *e, size_t cap, const char *name, const char *value, size_t vn)
{
    return vars_add(e->vars, &e->nvars, cap, name, value, vn);
}

/* ---------------------------------------------------------------- sealed settings */

int rp_appenv_resource(const char *app, const char *id, char *out, size_t cap)
{
    if (app == NULL || id == NULL || strlen(id) != 36 || strspn(id, "0123456789abcdef-") != 36)
        return RP_EINVAL;
    return (size_t)snprintf(out, cap, "/apps/%s/instance/%s", app, id) < cap ? 0 : RP_ETOOBIG;
}

/* The table holding a sealed object's wrapped DEK, or NULL for an unknown object. */
static const char *sealed_table(const char *object)
{
    if (strcmp(object, "settings") == 0)
        return "SELECT s.wdek, b.ct FROM app_secrets s JOIN obj.blobs b ON b.id = ?2"
               " WHERE s.app = ?1";
    if (strcmp(object, "fnkeys") == 0)
        return "SELECT s.wdek, b.ct FROM app_fnkeys s JOIN obj.blobs b ON b.id = ?2"
               " WHERE s.app = ?1";
    return NULL;
}

int rp_appenv_settings_read(sqlite3 *db, rp_keyring *kr, const char *app, const char *appid,
                            json_t **out, const char **reason)
{
    return rp_appenv_sealed_read(db, kr, app, appid, "settings", out, reason);
}

int rp_appenv_sealed_read(sqlite3 *db, rp_keyring *kr, const char *app, const char *appid,
                          const char *object, json_t **out, const char **reason)
{
    char scope[SCOPE_CAP], id[SCOPE_CAP + 16];
    const char *sql = sealed_table(object);
    sqlite3_stmt *st = NULL;
    rp_buf pt;
    int rc;

    *out = NULL;
    if (sql == NULL || rp_appenv_resource(app, appid, scope, sizeof(scope)) != 0)
        return RP_EINVAL;
    snprintf(id, sizeof(id), "apps/%s/%s", app, object);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return RP_EDB;
    }
    sqlite3_bind_text(st, 1, app, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return RP_EDB;
    }
    rp_buf_init(&pt, RP_SETTINGS_TOTAL_MAX * 2 + 4096);
    rc = rp_keyring_open_object(kr, scope, object, sqlite3_column_blob(st, 0),
                                (size_t)sqlite3_column_bytes(st, 0), sqlite3_column_blob(st, 1),
                                (size_t)sqlite3_column_bytes(st, 1), &pt, reason);
    sqlite3_finalize(st);
    if (rc == 0) {
        *out = json_loadb(pt.data, pt.len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(*out)) {
            json_decref(*out);
            *out = NULL;
            rc = RP_EPARSE;
        }
    }
    rp_buf_free_secret(&pt);
    return rc;
}

int rp_appenv_settings_seal(rp_keyring *kr, const char *app, const char *id, const json_t *settings,
                            rp_buf *wdek, rp_buf *ct, const char **reason)
{
    return rp_appenv_sealed_seal(kr, app, id, "settings", settings, wdek, ct, reason);
}

int rp_appenv_sealed_seal(rp_keyring *kr, const char *app, const char *id, const char *object,
                          const json_t *doc, rp_buf *wdek, rp_buf *ct, const char **reason)
{
    char scope[SCOPE_CAP], *text;
    int rc;

    if (sealed_table(object) == NULL || rp_appenv_resource(app, id, scope, sizeof(scope)) != 0)
        return RP_EINVAL;
    rc = rp_keyring_kek_ensure(kr, scope);
    if (rc != 0)
        return rc;
    text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        return RP_ENOMEM;
    rc = rp_keyring_seal(kr, scope, object, text, strlen(text), wdek, ct, reason);
    OPENSSL_cleanse(text, strlen(text));
    free(text); /* jansson's allocator */
    return rc;
}

/* ---------------------------------------------------------------- building */

/* The status object of one reference (Azure's ApiKVReference properties). */
static json_t *ref_status(const char *value, const rp_kvref *r, const char *status,
                          const char *details, const char *active)
{
    return json_pack("{s:s,s:s?,s:s?,s:s?,s:s,s:s,s:s,s:s,s:s?}", "reference", value, "vaultName",
                     r && r->vault[0] ? r->vault : NULL, "secretName",
                     r && r->secret[0] ? r->secret : NULL, "secretVersion",
                     r && r->version[0] ? r->version : NULL, "identityType", "SystemAssigned",
                     "status", status, "details", details, "source", "KeyVault", "activeVersion",
                     active && active[0] ? active : NULL);
}

/*
 * The value a setting gives the process: itself, or the secret its reference names. An
 * unresolvable reference leaves the literal (as Azure does) and its status says why.
 * *versionless is set when a resolved reference follows the latest version.
 */
static int resolve(rp_appenvs *q, const char *principal, const char *name, const char *value,
                   size_t n, rp_buf *out, json_t *statuses, int64_t *refresh)
{
    rp_kvref r;
    const char *why = "";
    char used[33] = "";
    rp_vault_ref_status st = RP_VAULT_REF_OTHER;
    int k = rp_kvref_parse(value, n, q->domain, &r, &why), rc;

    if (k == 0)
        return rp_buf_append(out, value, n);
    if (k < 0) {
        json_object_set_new(statuses, name, ref_status(value, NULL, "InvalidSyntax", why, NULL));
        return rp_buf_append(out, value, n);
    }
    if (q->o.vault == NULL || principal[0] == '\0') {
        *refresh = RP_APPENV_RETRY_S;
        json_object_set_new(statuses, name,
                            ref_status(value, &r, principal[0] ? "OtherReasons" : "MSINotEnabled",
                                       principal[0] ? "Key Vault is not enabled on this server"
                                                    : "the app has no managed identity",
                                       NULL));
        return rp_buf_append(out, value, n);
    }
    rc = rp_vault_secret_for(q->o.vault, principal, r.vault, r.secret, r.version, out, used, &st,
                             &why);
    if (rc == 0) {
        json_object_set_new(statuses, name, ref_status(value, &r, "Resolved", "", used));
        if (r.version[0] == '\0' && (*refresh == 0 || *refresh > RP_APPENV_REFRESH_S))
            *refresh = RP_APPENV_REFRESH_S;
        return 0;
    }
    /* Tried again (a role may be granted, a secret created) without waiting a day. */
    *refresh = RP_APPENV_RETRY_S;
    rp_buf_free_secret(out);
    json_object_set_new(statuses, name,
                        ref_status(value, &r, rp_vault_ref_status_name(st), why, NULL));
    return rp_buf_append(out, value, n);
}

static sess **sess_find(rp_appenvs *q, const char *res)
{
    sess **pp = &q->sesss;

    /* Resources match ignoring case, as the identity service finds them. */
    while (*pp != NULL && strcasecmp((*pp)->res, res) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void sess_drop(rp_appenvs *q, const char *res)
{
    sess **pp = sess_find(q, res), *x = *pp;

    if (x == NULL)
        return;
    *pp = x->next;
    OPENSSL_cleanse(x->header, sizeof(x->header));
    rp_free(x);
}

/*
 * The session header of identity principal (resource res) for the process that runs as it: its
 * running session's (kept, so the process's header stays valid and an unchanged environment
 * restarts nothing), or a new session after ending whatever an earlier server left. Without a
 * session wanted, a running one ends. *header NULL: no session (none wanted, or the endpoint is
 * off).
 */
static int session_header(rp_appenvs *q, const char *res, const char *principal, int want,
                          int rotate, const char **header)
{
    const char *endpoint = NULL;
    sess **pp = sess_find(q, res), *x = *pp;
    char sid[37];
    int rc;

    *header = NULL;
    if (x != NULL && (!want || rotate || strcmp(x->principal, principal) != 0)) {
        (void)rp_iam_workload_sessions_end(q->o.iam, x->principal);
        sess_drop(q, res);
        x = NULL;
    }
    if (!want || principal[0] == '\0')
        return 0;
    if (x == NULL) {
        const char *ids[1] = {principal};
        x = rp_calloc(1, sizeof(*x));
        if (x == NULL)
            return RP_ENOMEM;
        /* Sessions of this identity an earlier run of the server started are stale now. */
        rc = rp_iam_workload_sessions_end(q->o.iam, principal);
        if (rc == 0)
            rc = rp_iam_workload_session(q->o.iam, ids, 1, RP_IAM_SESSION_PROCESS, x->header, sid,
                                         &endpoint);
        if (rc != 0) {
            rp_free(x);
            /* RP_EINVAL: the identity endpoint is switched off; the app runs without one. */
            if (rc != RP_EINVAL)
                rp_log_err("sites.identity", "an app's identity session could not be started", rc);
            return 0;
        }
        rp_strlcpy(x->res, res, sizeof(x->res));
        memcpy(x->principal, principal, sizeof(x->principal));
        x->next = q->sesss;
        q->sesss = x;
    }
    if (rp_iam_identity_endpoint(q->o.iam) != NULL)
        *header = x->header;
    return 0;
}

/* IDENTITY_ENDPOINT and IDENTITY_HEADER into vars, when there is a session. */
static int session_vars(rp_appenvs *q, char **vars, size_t *n, size_t cap, const char *res,
                        const char *principal, int want, int rotate)
{
    const char *header, *endpoint;
    int rc = session_header(q, res, principal, want, rotate, &header);

    if (rc != 0 || header == NULL || (endpoint = rp_iam_identity_endpoint(q->o.iam)) == NULL)
        return rc;
    rc = vars_add(vars, n, cap, "IDENTITY_ENDPOINT", endpoint, strlen(endpoint));
    if (rc == 0)
        rc = vars_add(vars, n, cap, "IDENTITY_HEADER", header, strlen(header));
    return rc;
}

/* Is resource (under "SCOPE/functions/") one of e's functions? (rp_iam_system_identity_sweep) */
typedef struct fnkeep {
    const rp_appenv *e;
    size_t prefix;
} fnkeep;

static int fn_keep(void *arg, const char *resource)
{
    const fnkeep *k = arg;

    return strlen(resource) > k->prefix && fn_find(k->e, resource + k->prefix) != NULL;
}

/*
 * The identities of the functions opts.fn_identities names now, their workers' variables (the
 * app's without its IDENTITY_*, then their own); the identities (and sessions) of functions no
 * longer named are deleted.
 */
static int fn_envs(rp_appenvs *q, rp_appenv *e, const char *app, const char *appid,
                   const char *scope, int session, int rotate)
{
    char(*names)[RP_APPENV_FN_NAME_MAX + 1] = NULL;
    char res[SCOPE_CAP];
    size_t n = 0;
    fnkeep keep = {e, 0};
    int rc = 0;

    if (q->o.fn_identities != NULL) {
        if ((names = rp_calloc(RP_APPENV_FN_MAX, sizeof(*names))) == NULL)
            return RP_ENOMEM;
        n = q->o.fn_identities(q->o.arg, app, appid, names, RP_APPENV_FN_MAX);
    }
    if (n > RP_APPENV_FN_MAX)
        n = RP_APPENV_FN_MAX;
    if (n > 0 && (e->fns = rp_calloc(n, sizeof(*e->fns))) == NULL) {
        rp_free(names);
        return RP_ENOMEM;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        fnenv *f = &e->fns[e->nfns];
        rp_identity who;
        size_t cap = e->nvars + 2;
        /* This function's identity first: one that cannot be made leaves it without a worker
         * (its calls are 503) while the app and its other functions go on. */
        if ((size_t)snprintf(res, sizeof(res), "%s/functions/%s", scope, names[i]) >= sizeof(res) ||
            (rc = rp_iam_system_identity(q->o.iam, res, f->principal)) != 0) {
            rp_log_err("sites.identity", "a function's managed identity could not be created",
                       rc != 0 ? rc : RP_ETOOBIG);
            memset(f, 0, sizeof(*f));
            rc = 0;
            continue;
        }
        rp_strlcpy(f->name, names[i], sizeof(f->name));
        e->nfns++;
        if (rp_iam_identity_of(q->o.iam, f->principal, &who) == 0)
            rp_strlcpy(f->client, who.client_id, sizeof(f->client));
        if ((f->vars = rp_calloc(cap, sizeof(*f->vars))) == NULL) {
            rc = RP_ENOMEM;
            break;
        }
        for (size_t v = 0; v < e->nvars; v++) {
            if (strncmp(e->vars[v], "IDENTITY_", 9) == 0)
                continue; /* the app's identity is not the function's */
            if ((f->vars[f->nvars] = rp_strdup(e->vars[v])) == NULL) {
                rc = RP_ENOMEM;
                break;
            }
            f->nvars++;
        }
        if (rc == 0)
            rc = session_vars(q, f->vars, &f->nvars, cap, res, f->principal, session, rotate);
    }
    rp_free(names);
    if (rc != 0)
        return rc;
    /* Functions that no longer have one: their sessions end, their identities go. */
    keep.prefix = (size_t)snprintf(res, sizeof(res), "%s/functions/", scope);
    for (sess *x = q->sesss, *next; x != NULL; x = next) {
        next = x->next;
        if (strncasecmp(x->res, res, keep.prefix) == 0 && !fn_keep(&keep, x->res)) {
            (void)rp_iam_workload_sessions_end(q->o.iam, x->principal);
            sess_drop(q, x->res);
        }
    }
    rc = rp_iam_system_identity_sweep(q->o.iam, res, fn_keep, &keep);
    if (rc != 0)
        rp_log_err("sites.identity", "a function's old identity could not be removed", rc);
    return 0;
}

static int build(rp_appenvs *q, const char *app, const char *appid, int session, int rotate,
                 rp_appenv **out, int64_t *refresh)
{
    char scope[SCOPE_CAP], envname[2 * RP_SETTINGS_NAME_MAX + 64];
    const char *reason = NULL, *k;
    json_t *settings = NULL, *apps, *conns, *v, *sa = NULL, *sc = NULL;
    sqlite3 *db = NULL;
    rp_appenv *e;
    rp_identity who;
    size_t cap;
    int rc;

    *out = NULL;
    if (rp_appenv_resource(app, appid, scope, sizeof(scope)) != 0)
        return RP_EINVAL;
    e = rp_calloc(1, sizeof(*e));
    if (e == NULL)
        return RP_ENOMEM;
    e->refs = 1;
    rc = rp_iam_system_identity(q->o.iam, scope, e->principal);
    if (rc == 0 && rp_iam_identity_of(q->o.iam, e->principal, &who) == 0)
        rp_strlcpy(e->client, who.client_id, sizeof(e->client));
    if (rc != 0) {
        rp_log_err("sites.identity", "an app's managed identity could not be created", rc);
        e->principal[0] = '\0';
    }
    rc = rp_store_reader_open(q->o.store, &db);
    if (rc == 0)
        rc = rp_appenv_settings_read(db, q->o.kr, app, appid, &settings, &reason);
    if (db != NULL)
        sqlite3_close(db);
    if (rc != 0) {
        rp_logline l;
        rp_logline_begin(&l, RP_LOG_ERROR, "sites.settings");
        rp_logline_str(&l, "message", "an app's settings cannot be opened: its process waits");
        rp_logline_str(&l, "app", app);
        rp_logline_str(&l, "reason", reason ? reason : rp_strerror(rc));
        rp_logline_end(&l);
        goto fail;
    }
    apps = json_object_get(settings, "appSettings");
    conns = json_object_get(settings, "connectionStrings");
    cap = json_object_size(apps) + json_object_size(conns) + 4;
    e->vars = rp_calloc(cap, sizeof(*e->vars));
    e->refstat = json_pack("{s:o,s:o}", "appSettings", sa = json_object(), "connectionStrings",
                           sc = json_object());
    rc = RP_ENOMEM;
    if (e->vars == NULL || e->refstat == NULL)
        goto fail;
    json_object_foreach(apps, k, v)
    {
        rp_buf val;
        rp_buf_init(&val, RP_SETTINGS_VALUE_MAX * 2 + 64);
        rc = rp_settings_env_name(k, envname, sizeof(envname));
        if (rc == 0)
            rc = resolve(q, e->principal, k, json_string_value(v), json_string_length(v), &val, sa,
                         refresh);
        if (rc == 0)
            rc = add_var(e, cap, envname, val.data ? val.data : "", val.len);
        rp_buf_free_secret(&val);
        if (rc != 0)
            goto fail;
    }
    json_object_foreach(conns, k, v)
    {
        const json_t *cv = json_object_get(v, "value");
        const char *prefix = rp_settings_conn_prefix(json_string_value(json_object_get(v, "type")));
        size_t pl = prefix ? strlen(prefix) : 0;
        rp_buf val;
        if (prefix == NULL || !json_is_string(cv))
            continue;
        rp_buf_init(&val, RP_SETTINGS_VALUE_MAX * 2 + 64);
        memcpy(envname, prefix, pl);
        rc = rp_settings_env_name(k, envname + pl, sizeof(envname) - pl);
        if (rc == 0)
            rc = resolve(q, e->principal, k, json_string_value(cv), json_string_length(cv), &val,
                         sc, refresh);
        if (rc == 0)
            rc = add_var(e, cap, envname, val.data ? val.data : "", val.len);
        rp_buf_free_secret(&val);
        if (rc != 0)
            goto fail;
    }
    rc = session_vars(q, e->vars, &e->nvars, cap, scope, e->principal, session, rotate);
    if (rc == 0)
        rc = fn_envs(q, e, app, appid, scope, session, rotate);
    if (rc != 0)
        goto fail;
    json_decref(settings);
    *out = e;
    return 0;
fail:
    json_decref(settings);
    rp_appenv_unref(e);
    return rc != 0 ? rc : RP_ENOMEM;
}

static void forget(rp_appenvs *q, const char *app, const char *appid)
{
    char scope[SCOPE_CAP], id[37];
    int rc = 0;

    if (rp_appenv_resource(app, appid, scope, sizeof(scope)) != 0)
        return;
    sess_drop(q, scope);
    /* The identity's sessions first (their headers stop working), then the identity and its
     * role assignments, then the KEK: the settings can never be opened again. */
    if (rp_iam_system_identity_find(q->o.iam, scope, id) == 0) {
        rc = rp_iam_workload_sessions_end(q->o.iam, id);
        if (rc == 0)
            rc = rp_iam_system_identity_delete(q->o.iam, scope);
    }
    /* Its functions' identities too (the sweep ends their sessions). */
    if (rc == 0) {
        char prefix[SCOPE_CAP];
        fnkeep none = {NULL, 0};
        none.prefix = (size_t)snprintf(prefix, sizeof(prefix), "%s/functions/", scope);
        for (sess *x = q->sesss, *next; x != NULL; x = next) {
            next = x->next;
            if (strncasecmp(x->res, prefix, none.prefix) == 0)
                sess_drop(q, x->res);
        }
        rc = rp_iam_system_identity_sweep(q->o.iam, prefix, fn_keep, &none);
    }
    if (rc != 0)
        rp_log_err("sites.identity", "a deleted app's identity could not be removed", rc);
    rc = rp_keyring_kek_drop(q->o.kr, scope);
    if (rc != 0 && rc != RP_ENOENT)
        rp_log_err("sites.settings", "a deleted app's settings key could not be destroyed", rc);
}

static int sweep_keep(void *arg, const char *resource)
{
    rp_appenvs *q = arg;
    char id[37];

    if (q->o.exists != NULL && !q->o.exists(q->o.arg, resource))
        return 0;
    /* Kept, but what an earlier run handed out ends: no process of it runs any more. */
    if (rp_iam_system_identity_find(q->o.iam, resource, id) == 0)
        (void)rp_iam_workload_sessions_end(q->o.iam, id);
    return 1;
}

/* ---------------------------------------------------------------- the thread */

static int64_t mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

static void due_set(rp_appenvs *q, const char *app, const char *id, int session, int64_t after)
{
    due **pp = &q->dues, *d;

    while (*pp != NULL && (strcmp((*pp)->app, app) != 0 || strcmp((*pp)->id, id) != 0))
        pp = &(*pp)->next;
    d = *pp;
    if (after == 0) {
        if (d != NULL) {
            *pp = d->next;
            rp_free(d);
        }
        return;
    }
    if (d == NULL) {
        d = rp_calloc(1, sizeof(*d));
        if (d == NULL)
            return; /* built again on the next change or restart instead */
        rp_strlcpy(d->app, app, sizeof(d->app));
        rp_strlcpy(d->id, id, sizeof(d->id));
        d->next = q->dues;
        q->dues = d;
    }
    d->session = session;
    d->refresh_at = mono_s() + after;
}

static void run_job(rp_appenvs *q, job *j)
{
    if (j->kind == JOB_BUILD) {
        rp_appenv *e = NULL;
        int64_t refresh = 0;
        char res[SCOPE_CAP];
        /* Deleted since it was queued: building would make it an identity again. */
        if (rp_appenv_resource(j->app, j->id, res, sizeof(res)) != 0 ||
            (q->o.exists != NULL && !q->o.exists(q->o.arg, res))) {
            due_set(q, j->app, j->id, 0, 0);
            return;
        }
        if (build(q, j->app, j->id, j->session, j->rotate, &e, &refresh) != 0) {
            e = NULL;
            refresh = RP_APPENV_FAILED_S;
        }
        due_set(q, j->app, j->id, j->session, refresh);
        q->o.ready(q->o.arg, j->app, j->id, e);
    } else if (j->kind == JOB_FORGET) {
        due_set(q, j->app, j->id, 0, 0);
        forget(q, j->app, j->id);
    } else if (rp_iam_system_identity_sweep(q->o.iam, "/apps/", sweep_keep, q) != 0) {
        rp_log_msg(RP_LOG_ERROR, "sites.identity", "leftover app identities could not be removed");
    }
}

static void run(void *arg)
{
    rp_appenvs *q = arg;

    uv_mutex_lock(&q->mu);
    while (!q->quit) {
        job *j = q->head;
        if (j == NULL) {
            int64_t now = mono_s(), next = now + 3600;
            for (due *d = q->dues; d != NULL; d = d->next) {
                if (d->refresh_at <= now) {
                    job *r = rp_calloc(1, sizeof(*r));
                    if (r != NULL) {
                        r->kind = JOB_BUILD;
                        r->session = d->session;
                        rp_strlcpy(r->app, d->app, sizeof(r->app));
                        rp_strlcpy(r->id, d->id, sizeof(r->id));
                        *q->tail = r;
                        q->tail = &r->next;
                    }
                    d->refresh_at = now + RP_APPENV_REFRESH_S;
                }
                if (d->refresh_at < next)
                    next = d->refresh_at;
            }
            if (q->head == NULL)
                (void)uv_cond_timedwait(&q->cv, &q->mu,
                                        (uint64_t)(next > now ? next - now : 1) * 1000000000ull);
            continue;
        }
        q->head = j->next;
        if (q->head == NULL)
            q->tail = &q->head;
        uv_mutex_unlock(&q->mu);
        run_job(q, j);
        rp_free(j);
        uv_mutex_lock(&q->mu);
    }
    uv_mutex_unlock(&q->mu);
}

static void push(rp_appenvs *q, int kind, const char *app, const char *id, int session, int rotate)
{
    job *j;

    if (q == NULL || strlen(app) >= sizeof(j->app) || strlen(id) >= sizeof(j->id))
        return;
    j = rp_calloc(1, sizeof(*j));
    if (j == NULL) {
        rp_log_msg(RP_LOG_ERROR, "sites.settings", "out of memory queueing an app's environment");
        return;
    }
    j->kind = kind;
    j->session = session;
    j->rotate = rotate;
    rp_strlcpy(j->app, app, sizeof(j->app));
    rp_strlcpy(j->id, id, sizeof(j->id));
    uv_mutex_lock(&q->mu);
    *q->tail = j;
    q->tail = &j->next;
    uv_cond_signal(&q->cv);
    uv_mutex_unlock(&q->mu);
}

void rp_appenvs_build(rp_appenvs *q, const char *app, const char *id, int session, int rotate)
{
    push(q, JOB_BUILD, app, id, session, rotate);
}

void rp_appenvs_forget(rp_appenvs *q, const char *app, const char *id)
{
    push(q, JOB_FORGET, app, id, 0, 0);
}

void rp_appenvs_sweep(rp_appenvs *q)
{
    push(q, JOB_SWEEP, "", "", 0, 0);
}

int rp_appenvs_open(const rp_appenvs_opts *o, rp_appenvs **out)
{
    rp_appenvs *q = rp_calloc(1, sizeof(*q));

    if (q == NULL)
        return RP_ENOMEM;
    q->o = *o;
    rp_strlcpy(q->domain, o->domain, sizeof(q->domain));
    q->o.domain = q->domain;
    q->tail = &q->head;
    if (uv_mutex_init(&q->mu) != 0) {
        rp_free(q);
        return RP_ENOMEM;
    }
    if (uv_cond_init(&q->cv) != 0) {
        uv_mutex_destroy(&q->mu);
        rp_free(q);
        return RP_ENOMEM;
    }
    if (uv_thread_create(&q->thread, run, q) != 0) {
        uv_cond_destroy(&q->cv);
        uv_mutex_destroy(&q->mu);
        rp_free(q);
        return RP_ENOMEM;
    }
    q->started = 1;
    *out = q;
    return 0;
}

void rp_appenvs_close(rp_appenvs *q)
{
    if (q == NULL)
        return;
    uv_mutex_lock(&q->mu);
    q->quit = 1;
    uv_cond_signal(&q->cv);
    uv_mutex_unlock(&q->mu);
    if (q->started)
        uv_thread_join(&q->thread);
    /* A delete's clean-up is not dropped (builds are: the processes stop with the server). */
    while (q->head != NULL) {
        job *j = q->head;
        q->head = j->next;
        if (j->kind == JOB_FORGET)
            run_job(q, j);
        rp_free(j);
    }
    while (q->sesss != NULL)
        sess_drop(q, q->sesss->res);
    while (q->dues != NULL) {
        due *d = q->dues;
        q->dues = d->next;
        rp_free(d);
    }
    uv_cond_destroy(&q->cv);
    uv_mutex_destroy(&q->mu);
    rp_free(q);
}
