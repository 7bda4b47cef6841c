/*
 * api.c - the management API for identity and access (docs/iam.md, "Management API"):
 * users, service principals and their credentials, managed identities and workload sessions,
 * role definitions and assignments, PIM eligibilities and activations, and the audit trail.
 *
 * Every request is authenticated (administrator token or a bearer token for
 * https://management.D) before anything else, so an anonymous caller learns nothing - not
 * even whether a path exists. Every change is authorized against RBAC at the scope it
 * touches, committed through the store's writer (a few SQL statements in one savepoint),
 * audited durably, and then the snapshot is rebuilt before the answer, so the next request
 * on any thread sees it.
 */
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/rand.h"
#include "base/str.h"
#include "base/time.h"
#include "http/router.h"
#include "iam/authn.h"
#include "iam/iam_int.h"

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_STMTS  4
#define MAX_PARAMS 12
#define SEGS       6
/* How long an activation request may wait for an approver. */
#define RP__PIM_PENDING_S (24 * 3600)

/* ---------------------------------------------------------------- writes */

typedef struct param {
    int type; /* 't' text, 'i' integer, 'b' blob, 'n' null */
    const char *text;
    int64_t i;
    const void *blob;
    size_t blen;
} param;

typedef struct stmt {
    const char *sql;
    param p[MAX_PARAMS];
    int np;
    int must_change;   /* 1: zero rows changed -> RP_ENOENT */
    struct wop *owner; /* bound values are copied into its arena */
} stmt;

typedef struct wop {
    rp__pending pending; /* first: linked while the store or the audit log has it */
    rp_iam *iam;
    rp_req *req; /* NULL once the request is gone */
    /* Owns every bound value: the request's arena can be reset (client gone, drain) while the
     * write still waits in the writer's queue. */
    rp_arena *arena;
    int oom;
    stmt st[MAX_STMTS];
    int nst;
    json_t *reply; /* answer on success (status 201/200/204) */
    int status;
    char action[160];
    char scope[1100];
    char principal[37];
    unsigned char secret[48]; /* wiped when the op is freed */
} wop;

static void oom(rp_req *req)
{
    rp_resp_error(req, 500, "InternalError", "out of memory");
}

static int wop_run(sqlite3 *db, void *arg)
{
    wop *w = arg;

    for (int i = 0; i < w->nst; i++) {
        stmt *s = &w->st[i];
        sqlite3_stmt *q = NULL;
        int rc;

        if (sqlite3_prepare_v2(db, s->sql, -1, &q, NULL) != SQLITE_OK)
            return RP_EDB;
        for (int j = 0; j < s->np; j++) {
            param *p = &s->p[j];
            switch (p->type) {
            case 't': sqlite3_bind_text(q, j + 1, p->text, -1, SQLITE_STATIC); break;
            case 'i': sqlite3_bind_int64(q, j + 1, p->i); break;
            case 'b': sqlite3_bind_blob(q, j + 1, p->blob, (int)p->blen, SQLITE_STATIC); break;
            default: sqlite3_bind_null(q, j + 1); break;
            }
        }
        rc = sqlite3_step(q);
        sqlite3_finalize(q);
        if (rc == SQLITE_CONSTRAINT)
            return RP_EEXIST;
        if (rc != SQLITE_DONE)
            return RP_EDB;
        if (s->must_change && sqlite3_changes(db) == 0)
            return RP_ENOENT;
    }
    return 0;
}

static void wop_free(wop *w)
{
    if (w == NULL)
        return;
    rp__iam_pending_remove(&w->pending);
    json_decref(w->reply);
    OPENSSL_cleanse(w->secret, sizeof(w->secret));
    rp_arena_destroy(w->arena);
    rp_free(w);
}

/* The loop stopped before the write's completion could run (rp_iam_loop_stop). */
static void wop_release(rp__pending *p)
{
    wop_free((wop *)p);
}

static void wop_cancel(void *arg)
{
    wop **slot = arg;

    if (*slot != NULL)
        (*slot)->req = NULL;
}

static void wop_answer(wop *w, int status)
{
    rp_req *req = w->req;

    if (req != NULL) {
        wop **slot = req->handler_data;
        *slot = NULL;
        if (status == RP_EEXIST)
            rp_resp_error(req, 409, "Conflict", "an object with that name or id exists already");
        else if (status == RP_ENOENT)
            rp_resp_error(req, 404, "NotFound", "no such object");
        else if (status != 0)
            rp_resp_error(req, 500, "InternalError", "the change could not be stored or audited");
        else if (w->status == 204 || w->reply == NULL)
            rp_resp_send(req, w->status == 0 ? 204 : w->status, NULL, NULL, 0);
        else {
            rp_resp_json(req, w->status, w->reply);
            w->reply = NULL;
        }
    }
    wop_free(w);
}

static void wop_audited(int status, void *arg)
{
    wop *w = arg;

    /* Fail closed: a change whose record is not on disk is not reported as done (and a
     * secret it created is never shown). */
    wop_answer(w, status == 0 ? 0 : RP_EIO);
}

/* After the commit: publish the new snapshot, then write the change's audit record durably
 * and answer only once it is on disk. */
static void wop_done(int status, void *arg)
{
    wop *w = arg;
    rp__loop *l = rp__iam_loop();
    json_t *detail = status == 0 ? NULL : json_pack("{s:s}", "error", rp_strerror(status));
    rp_audit_rec rec = {w->principal,
                        "change",
                        w->action,
                        w->scope,
                        status == 0 ? "success" : "failure",
                        w->req ? w->req->id : "",
                        w->req && w->req->client_ip ? w->req->client_ip : "",
                        detail};
    int rc = 0;

    if (status == 0)
        rc = rp__iam_reload(w->iam);
    if (rc == 0 && l != NULL &&
        rp_audit_log(l->aport, &rec, status == 0 ? RP_AUDIT_DURABLE : 0,
                     status == 0 ? wop_audited : NULL, w) == 0 &&
        status == 0) {
        json_decref(detail);
        return; /* wop_audited answers */
    }
    json_decref(detail);
    wop_answer(w, status != 0 ? status : RP_EIO);
}

static wop *wop_new(rp_iam *iam, rp_req *req, const rp_identity *who, const char *action,
                    const char *scope)
{
    wop *w = rp_calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->arena = rp_arena_create(2048);
    if (w->arena == NULL) {
        rp_free(w);
        return NULL;
    }
    w->iam = iam;
    w->req = req;
    w->status = 201;
    rp_strlcpy(w->action, action, sizeof(w->action));
    rp_strlcpy(w->scope, scope, sizeof(w->scope));
    rp_strlcpy(w->principal, who->id, sizeof(w->principal));
    return w;
}

static stmt *wop_stmt(wop *w, const char *sql, int must_change)
{
    stmt *s = &w->st[w->nst++];

    s->sql = sql;
    s->must_change = must_change;
    s->owner = w;
    return s;
}

static void pt(stmt *s, const char *t)
{
    char *copy = t ? rp_arena_strndup(s->owner->arena, t, strlen(t)) : NULL;

    if (t != NULL && copy == NULL)
        s->owner->oom = 1;
    s->p[s->np].type = copy ? 't' : 'n';
    s->p[s->np++].text = copy;
}

static void pi(stmt *s, int64_t i)
{
    s->p[s->np].type = 'i';
    s->p[s->np++].i = i;
}

static void pb(stmt *s, const void *b, size_t n)
{
    void *copy = rp_arena_alloc(s->owner->arena, n ? n : 1);

    if (copy == NULL)
        s->owner->oom = 1;
    else
        memcpy(copy, b, n);
    s->p[s->np].type = 'b';
    s->p[s->np].blob = copy;
    s->p[s->np++].blen = n;
}

/* Hands w to the store; the answer comes from wop_done. pt and pb copied every bound value
 * into w's own arena. */
static void wop_submit(wop *w)
{
    rp__loop *l = rp__iam_loop();
    rp_req *req = w->req;
    wop **slot = rp_arena_alloc(req->arena, sizeof(*slot));
    int rc;

    if (w->oom || (w->status != 204 && w->reply == NULL))
        slot = NULL; /* a bound value or the answer could not be built */
    if (slot == NULL || l == NULL || rp_arena_add_cleanup(req->arena, wop_cancel, slot) != 0) {
        wop_free(w);
        oom(req);
        return;
    }
    *slot = w;
    req->handler_data = slot;
    rc = rp_store_submit(l->sport, wop_run, w, wop_done);
    if (rc != 0) {
        *slot = NULL;
        wop_free(w);
        rp_resp_error(req, 503, "ServiceUnavailable", "the store is not accepting writes");
        return;
    }
    w->pending.release = wop_release;
    rp__iam_pending_add(&w->pending);
}

/* ---------------------------------------------------------------- helpers */

typedef struct call {
    rp_iam *iam;
    rp_req *req;
    rp_identity who;
    const char *seg[SEGS]; /* path segments after /api */
    int nseg;
    json_t *body;
} call;

static char *adup(rp_req *req, const char *s)
{
    return rp_arena_strndup(req->arena, s, strlen(s));
}

static int name_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > RP_IAM_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return s[0] != '.' && s[0] != '-';
}

static void iso(int64_t t, char out[32])
{
    rp_iso_time(t, out);
}

/* "2026-11-29T07:00:00Z" or an integer (Unix seconds). */
static int time_parse(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return *out > 0 ? 0 : RP_EINVAL;
    }
    if (!json_is_string(v))
        return RP_EINVAL;
    return rp_iso_time_parse(json_string_value(v), json_string_length(v), out);
}

/* ISO 8601 duration (PT8H) or a number of seconds. */
static int duration_parse(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return *out > 0 ? 0 : RP_EINVAL;
    }
    if (!json_is_string(v))
        return RP_EINVAL;
    return rp_iso_duration_parse(json_string_value(v), json_string_length(v), out);
}

static json_t *principal_json(const rp_iam *iam, const rp__principal *p, int64_t now)
{
    char t[32];
    json_t *creds = json_array(), *o;

    for (size_t i = 0; creds && i < p->ncreds; i++) {
        const rp__cred *c = &p->creds[i];
        iso(c->expires_at, t);
        json_array_append_new(
            creds, c->is_cert ? json_pack("{s:s,s:s,s:s,s:s,s:b}", "keyId", c->id, "type",
                                          "certificate", "thumbprint", c->thumb_hex, "expiresAt", t,
                                          "expired", c->expires_at <= now)
                              : json_pack("{s:s,s:s,s:s,s:b}", "keyId", c->id, "type", "secret",
                                          "expiresAt", t, "expired", c->expires_at <= now));
    }
    iso(p->created_at, t);
    o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o}", "id", p->id, "appId", p->client_id,
                  "clientId", p->client_id, "name", p->name, "type", rp__iam_kind_name(p->kind),
                  "tenantId", iam->tenant, "createdAt", t, "credentials",
                  creds ? creds : json_array());
    if (o != NULL && p->scope != NULL)
        json_object_set_new(o, "resource", json_string(p->scope));
    return o;
}

static void bad(rp_req *req, const char *msg)
{
    rp_resp_error(req, 400, "InvalidRequest", msg);
}

static int authz_or_reply(call *c, const char *action, const char *scope)
{
    if (rp_authz(c->iam, c->req, &c->who, action, 0, scope))
        return 1;
    rp_authz_reply(c->req, &c->who, action, scope);
    return 0;
}

static const char *body_str(const call *c, const char *key)
{
    json_t *v = c->body ? json_object_get(c->body, key) : NULL;

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int method_is(const call *c, rp_method m)
{
    return c->req->method == m || (m == RP_METHOD_GET && c->req->method == RP_METHOD_HEAD);
}

static void no_method(call *c, const char *allow)
{
    rp_resp_header(c->req, "Allow", allow);
    rp_resp_error(c->req, 405, "MethodNotAllowed", "method not allowed for this resource");
}

/* ---------------------------------------------------------------- principals */

static rp_principal_kind coll_kind(const char *coll)
{
    if (strcmp(coll, "users") == 0)
        return RP_PRINCIPAL_USER;
    if (strcmp(coll, "servicePrincipals") == 0)
        return RP_PRINCIPAL_SP;
    return RP_PRINCIPAL_MI;
}

static const char *coll_action(rp_principal_kind k)
{
    return k == RP_PRINCIPAL_USER ? "Microsoft.Authorization/users"
           : k == RP_PRINCIPAL_SP ? "Microsoft.Authorization/servicePrincipals"
                                  : "Microsoft.ManagedIdentity/userAssignedIdentities";
}

static const rp__principal *find_in(const rp__snap *s, rp_principal_kind k, const char *ref)
{
    const rp__principal *p = rp__iam_principal_by_name(s, k, ref);

    if (p == NULL) {
        p = rp__iam_principal(s, ref);
        if (p == NULL)
            p = rp__iam_principal_by_client(s, ref);
        if (p != NULL && (p->kind != k || (k == RP_PRINCIPAL_MI && p->scope != NULL)))
            p = NULL;
    }
    return p;
}

static void scope_for(rp_principal_kind k, const char *name, char *out, size_t cap)
{
    if (k == RP_PRINCIPAL_MI)
        snprintf(out, cap, "/identities/%s", name);
    else
        rp_strlcpy(out, "/", cap);
}

/* A new secret: 32 random bytes shown once (base64url), stored as SHA-256. */
static int new_secret(wop *w, char out[64], unsigned char hash[32])
{
    if (rp_random_bytes(w->secret, 32) != 0 || rp_b64url_encode(w->secret, 32, out, 64) < 0)
        return RP_ECRYPTO;
    return rp__iam_sha256(out, strlen(out), hash);
}

static void principal_create(call *c, rp_principal_kind k)
{
    const char *name = body_str(c, "name");
    char action[160], scope[128], id[37], client[37], t[32], secret[64];
    rp__snap *s;
    wop *w;
    stmt *st;
    int64_t now = rp__now();
    unsigned char *hash;

    if (name == NULL || !name_valid(name) ||
        (k == RP_PRINCIPAL_MI && strcasecmp(name, "sessions") == 0)) {
        bad(c->req, "name: 1 to 64 characters of letters, digits, '.', '-' and '_' (and not "
                    "\"sessions\" for an identity)");
        return;
    }
    snprintf(action, sizeof(action), "%s/write", coll_action(k));
    scope_for(k, name, scope, sizeof(scope));
    if (!authz_or_reply(c, action, scope))
        return;
    s = rp__iam_snap(c->iam);
    if (find_in(s, k, name) != NULL) {
        rp_resp_error(c->req, 409, "Conflict", "a principal of this kind has that name already");
        return;
    }
    if (rp_random_uuid(id) != 0 || rp_random_uuid(client) != 0 ||
        (w = wop_new(c->iam, c->req, &c->who, action, scope)) == NULL) {
        oom(c->req);
        return;
    }
    st = wop_stmt(w,
                  "INSERT INTO principals (id, kind, name, client_id, scope, created_by,"
                  " created_at) VALUES (?, ?, ?, ?, NULL, ?, ?)",
                  0);
    pt(st, adup(c->req, id));
    pt(st, rp__iam_kind_name(k));
    pt(st, adup(c->req, name));
    pt(st, adup(c->req, client));
    pt(st, w->principal);
    pi(st, now);
    iso(now, t);
    w->reply = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[]}", "id", id, "appId", client,
                         "clientId", client, "name", name, "type", rp__iam_kind_name(k), "tenantId",
                         c->iam->tenant, "createdAt", t, "credentials");
    if (k == RP_PRINCIPAL_USER) {
        /* A user gets its first secret with the account: it is how `rampart login` signs in. */
        char kid[37], exp[32];
        hash = rp_arena_alloc(c->req->arena, 32);
        if (hash == NULL || rp_random_uuid(kid) != 0 || new_secret(w, secret, hash) != 0) {
            wop_free(w);
            oom(c->req);
            return;
        }
        st = wop_stmt(w,
                      "INSERT INTO credentials (id, principal_id, type, hash, created_at,"
                      " expires_at) VALUES (?, ?, 'secret', ?, ?, ?)",
                      0);
        pt(st, adup(c->req, kid));
        pt(st, adup(c->req, id));
        pb(st, hash, 32);
        pi(st, now);
        pi(st, now + (int64_t)RP_IAM_SECRET_DAYS * 86400);
        iso(now + (int64_t)RP_IAM_SECRET_DAYS * 86400, exp);
        json_object_set_new(w->reply, "secret", json_string(secret));
        json_object_set_new(w->reply, "secretExpiresAt", json_string(exp));
        OPENSSL_cleanse(secret, sizeof(secret));
    }
    if (w->reply == NULL) {
        wop_free(w);
        oom(c->req);
        return;
    }
    wop_submit(w);
}

static void principal_delete(call *c, const rp__principal *p, rp_principal_kind k)
{
    char action[160], scope[128];
    wop *w;
    stmt *st;

    snprintf(action, sizeof(action), "%s/delete", coll_action(k));
    scope_for(k, p->name, scope, sizeof(scope));
    if (!authz_or_reply(c, action, scope))
        return;
    w = wop_new(c->iam, c->req, &c->who, action, scope);
    if (w == NULL) {
        oom(c->req);
        return;
    }
    w->status = 204;
    /* The principal and everything that grants it anything go in one savepoint. */
    st = wop_stmt(w, "DELETE FROM principals WHERE id = ?", 1);
    pt(st, adup(c->req, p->id));
    st = wop_stmt(w, "DELETE FROM role_assignments WHERE principal_id = ?", 0);
    pt(st, adup(c->req, p->id));
    st = wop_stmt(w, "DELETE FROM role_eligibilities WHERE principal_id = ?", 0);
    pt(st, adup(c->req, p->id));
    wop_submit(w);
}

static void credential_add(call *c, const rp__principal *p)
{
    const char *type = body_str(c, "type");
    const char *action = "Microsoft.Authorization/servicePrincipals/credentials/write";
    json_t *days = json_object_get(c->body, "expiresInDays");
    int64_t now = rp__now(), d = RP_IAM_SECRET_DAYS, exp;
    char kid[37], t[32], secret[64];
    wop *w;
    stmt *st;

    if (p->kind == RP_PRINCIPAL_USER)
        action = "Microsoft.Authorization/users/credentials/write";
    if (!authz_or_reply(c, action, "/"))
        return;
    if (days != NULL) {
        if (!json_is_integer(days) || json_integer_value(days) < 1 ||
            json_integer_value(days) > RP_IAM_SECRET_MAX_DAYS) {
            bad(c->req, "expiresInDays: an integer from 1 to 730");
            return;
        }
        d = json_integer_value(days);
    }
    if (type == NULL || (strcmp(type, "secret") != 0 && strcmp(type, "certificate") != 0)) {
        bad(c->req, "type: \"secret\" or \"certificate\"");
        return;
    }
    if (rp_random_uuid(kid) != 0 || (w = wop_new(c->iam, c->req, &c->who, action, "/")) == NULL) {
        oom(c->req);
        return;
    }
    exp = now + d * 86400;
    if (strcmp(type, "secret") == 0) {
        unsigned char *hash = rp_arena_alloc(c->req->arena, 32);
        if (hash == NULL || new_secret(w, secret, hash) != 0) {
            wop_free(w);
            oom(c->req);
            return;
        }
        st = wop_stmt(w,
                      "INSERT INTO credentials (id, principal_id, type, hash, hint, created_at,"
                      " expires_at) VALUES (?, ?, 'secret', ?, ?, ?, ?)",
                      0);
        pt(st, adup(c->req, kid));
        pt(st, adup(c->req, p->id));
        pb(st, hash, 32);
        pt(st, rp_arena_strndup(c->req->arena, secret, 3));
        pi(st, now);
        pi(st, exp);
        iso(exp, t);
        w->reply = json_pack("{s:s,s:s,s:s,s:s}", "keyId", kid, "type", "secret", "secret", secret,
                             "expiresAt", t);
        OPENSSL_cleanse(secret, sizeof(secret));
    } else {
        const char *pem = body_str(c, "certificate");
        BIO *bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;
        X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        unsigned char *der = NULL, *copy;
        int len = x ? i2d_X509(x, &der) : -1;
        char x5t[28], s256[44], hex[65];
        EVP_PKEY *pk = x ? X509_get0_pubkey(x) : NULL;
        int ok =
            len > 0 && pk != NULL &&
            (EVP_PKEY_is_a(pk, "RSA") ? EVP_PKEY_get_bits(pk) >= 2048 : EVP_PKEY_is_a(pk, "EC")) &&
            rp_jwt_cert_thumbprints(der, (size_t)len, x5t, s256, hex) == 0;
        const ASN1_TIME *na = x ? X509_get0_notAfter(x) : NULL;
        struct tm tm;

        BIO_free(bio);
        if (ok && na != NULL && ASN1_TIME_to_tm(na, &tm) == 1) {
            int64_t cert_exp = (int64_t)timegm(&tm);
            if (cert_exp < exp)
                exp = cert_exp;
        }
        copy = ok ? rp_arena_alloc(c->req->arena, (size_t)len) : NULL;
        if (copy != NULL)
            memcpy(copy, der, (size_t)len);
        OPENSSL_free(der);
        X509_free(x);
        if (!ok || copy == NULL || exp <= now) {
            wop_free(w);
            bad(c->req, "certificate: a PEM X.509 certificate with an RSA (2048 bits or more) or "
                        "EC key, not expired");
            return;
        }
        st = wop_stmt(w,
                      "INSERT INTO credentials (id, principal_id, type, thumbprint, cert,"
                      " created_at, expires_at) VALUES (?, ?, 'certificate', ?, ?, ?, ?)",
                      0);
        pt(st, adup(c->req, kid));
        pt(st, adup(c->req, p->id));
        pt(st, adup(c->req, hex));
        pb(st, copy, (size_t)len);
        pi(st, now);
        pi(st, exp);
        iso(exp, t);
        w->reply = json_pack("{s:s,s:s,s:s,s:s}", "keyId", kid, "type", "certificate", "thumbprint",
                             hex, "expiresAt", t);
    }
    if (w->reply == NULL) {
        wop_free(w);
        oom(c->req);
        return;
    }
    wop_submit(w);
}

static void credential_delete(call *c, const rp__principal *p, const char *kid)
{
    const char *action = p->kind == RP_PRINCIPAL_USER
                             ? "Microsoft.Authorization/users/credentials/write"
                             : "Microsoft.Authorization/servicePrincipals/credentials/write";
    wop *w;
    stmt *st;

    if (!authz_or_reply(c, action, "/"))
        return;
    w = wop_new(c->iam, c->req, &c->who, action, "/");
    if (w == NULL) {
        oom(c->req);
        return;
    }
    w->status = 204;
    st = wop_stmt(w, "DELETE FROM credentials WHERE id = ? AND principal_id = ?", 1);
    pt(st, adup(c->req, kid));
    pt(st, adup(c->req, p->id));
    wop_submit(w);
}

static void session_create(call *c, const rp__principal *p)
{
    rp__snap *s = rp__iam_snap(c->iam);
    json_t *extra = json_object_get(c->body, "identities"), *ids, *v, *ttl;
    const char *action = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action";
    char sid[37], hdr[64], scope[128], t[32];
    unsigned char *hash;
    int64_t now = rp__now(), life = 3600;
    size_t i;
    wop *w;
    stmt *st;

    scope_for(RP_PRINCIPAL_MI, p->name, scope, sizeof(scope));
    if (!authz_or_reply(c, action, scope))
        return;
    if (!c->iam->identity_endpoint) {
        rp_resp_error(c->req, 409, "IdentityEndpointDisabled",
                      "the managed identity endpoint is turned off (identity_listen)");
        return;
    }
    ttl = json_object_get(c->body, "ttlSeconds");
    if (ttl != NULL) {
        if (!json_is_integer(ttl) || json_integer_value(ttl) < 60 ||
            json_integer_value(ttl) > RP_IAM_SESSION_MAX_S) {
            bad(c->req, "ttlSeconds: an integer from 60 to 86400");
            return;
        }
        life = json_integer_value(ttl);
    }
    if (extra != NULL && (!json_is_array(extra) || json_array_size(extra) > 16)) {
        bad(c->req, "identities: an array of at most 16 identity names");
        return;
    }
    ids = json_pack("[s]", p->id);
    if (ids == NULL) {
        oom(c->req);
        return;
    }
    json_array_foreach(extra, i, v)
    {
        const rp__principal *q =
            json_is_string(v) ? find_in(s, RP_PRINCIPAL_MI, json_string_value(v)) : NULL;
        if (q == NULL) {
            json_decref(ids);
            bad(c->req, "identities: no such user-assigned identity");
            return;
        }
        scope_for(RP_PRINCIPAL_MI, q->name, scope, sizeof(scope));
        if (!authz_or_reply(c, action, scope)) {
            json_decref(ids);
            return;
        }
        json_array_append_new(ids, json_string(q->id));
    }
    w = wop_new(c->iam, c->req, &c->who, "Microsoft.ManagedIdentity/sessions/write", "/identities");
    hash = rp_arena_alloc(c->req->arena, 32);
    if (w == NULL || hash == NULL || rp_random_uuid(sid) != 0 || new_secret(w, hdr, hash) != 0) {
        json_decref(ids);
        wop_free(w);
        oom(c->req);
        return;
    }
    st = wop_stmt(w,
                  "INSERT INTO identity_sessions (id, hash, principals, created_by, created_at,"
                  " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                  0);
    pt(st, adup(c->req, sid));
    pb(st, hash, 32);
    {
        char *j = json_dumps(ids, JSON_COMPACT);
        pt(st, j ? adup(c->req, j) : "[]");
        free(j);
    }
    pt(st, w->principal);
    pi(st, now);
    pi(st, now + life);
    /* Sessions that ended are pruned with every new one. */
    st = wop_stmt(w, "DELETE FROM identity_sessions WHERE expires_at <= ?", 0);
    pi(st, now);
    json_decref(ids);
    iso(now + life, t);
    w->reply = json_pack("{s:s,s:s,s:s,s:s}", "id", sid, "endpoint", c->iam->identity_endpoint,
                         "header", hdr, "expiresAt", t);
    OPENSSL_cleanse(hdr, sizeof(hdr));
    if (w->reply == NULL) {
        wop_free(w);
        oom(c->req);
        return;
    }
    wop_submit(w);
}

static json_t *list_rows(rp_iam *iam, const char *sql, const char *a1, const char *a2,
                         json_t *(*row)(sqlite3_stmt *));

static json_t *id_row(sqlite3_stmt *q)
{
    return json_pack("{s:s}", "id", sqlite3_column_text(q, 0));
}

static json_t *session_row(sqlite3_stmt *q)
{
    return json_pack("{s:s,s:s}", "id", sqlite3_column_text(q, 0), "createdBy",
                     sqlite3_column_text(q, 1));
}

static void session_delete(call *c, const char *sid)
{
    const char *action = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action";
    json_t *rows = list_rows(c->iam, "SELECT id, created_by FROM identity_sessions WHERE id = ?1",
                             sid, NULL, session_row);
    const char *creator =
        rows ? json_string_value(json_object_get(json_array_get(rows, 0), "createdBy")) : NULL;
    int mine = creator != NULL && strcmp(creator, c->who.id) == 0;
    wop *w;
    stmt *st;

    json_decref(rows);
    /* The creator ends its own session; anyone else needs the right to start one. The check
     * comes before "not found" so that nobody learns which sessions exist. */
    if (!mine && !authz_or_reply(c, action, "/"))
        return;
    w = wop_new(c->iam, c->req, &c->who, "Microsoft.ManagedIdentity/sessions/delete", "/");
    if (w == NULL) {
        oom(c->req);
        return;
    }
    w->status = 204;
    st = wop_stmt(w, "DELETE FROM identity_sessions WHERE id = ?", 1);
    pt(st, adup(c->req, sid));
    wop_submit(w);
}

static void principals(call *c, const char *coll)
{
    rp_principal_kind k = coll_kind(coll);
    rp__snap *s = rp__iam_snap(c->iam);
    char action[160];
    const rp__principal *p;
    int64_t now = rp__now();

    if (k == RP_PRINCIPAL_MI && c->nseg >= 2 && strcmp(c->seg[1], "sessions") == 0) {
        if (c->nseg == 3 && method_is(c, RP_METHOD_DELETE))
            session_delete(c, c->seg[2]);
        else if (c->nseg == 3)
            no_method(c, "DELETE");
        else
            rp_resp_error(c->req, 404, "NotFound", "no such resource");
        return;
    }
    if (c->nseg == 1) {
        if (method_is(c, RP_METHOD_GET)) {
            json_t *arr = json_array();
            snprintf(action, sizeof(action), "%s/read", coll_action(k));
            if (!authz_or_reply(c, action, "/")) {
                json_decref(arr);
                return;
            }
            for (size_t i = 0; arr && i < s->nprincipals; i++) {
                p = &s->principals[i];
                if (p->kind == k && (k != RP_PRINCIPAL_MI || p->scope == NULL))
                    json_array_append_new(arr, principal_json(c->iam, p, now));
            }
            rp_resp_json(c->req, 200, json_pack("{s:o}", "value", arr ? arr : json_array()));
        } else if (method_is(c, RP_METHOD_POST)) {
            principal_create(c, k);
        } else {
            no_method(c, "GET, HEAD, POST");
        }
        return;
    }
    p = find_in(s, k, c->seg[1]);
    if (p == NULL) {
        /* The check the request would have met had the principal existed, at the scope its
         * name gives: a caller without that right cannot tell "missing" from "forbidden". */
        char scope[160];
        if (c->nseg >= 3 && strcmp(c->seg[2], "credentials") == 0)
            snprintf(action, sizeof(action), "%s/credentials/write", coll_action(k));
        else if (c->nseg >= 3 && strcmp(c->seg[2], "sessions") == 0)
            snprintf(action, sizeof(action), "%s/assign/action", coll_action(k));
        else
            snprintf(action, sizeof(action), "%s/%s", coll_action(k),
                     method_is(c, RP_METHOD_DELETE) ? "delete" : "read");
        if (k == RP_PRINCIPAL_MI && strlen(c->seg[1]) < 100)
            snprintf(scope, sizeof(scope), "/identities/%s", c->seg[1]);
        else
            rp_strlcpy(scope, "/", sizeof(scope));
        if (!rp_rbac_scope_valid(scope, strlen(scope)))
            rp_strlcpy(scope, "/", sizeof(scope));
        if (authz_or_reply(c, action, scope))
            rp_resp_error(c->req, 404, "NotFound", "no such principal");
        return;
    }
    if (c->nseg == 2) {
        if (method_is(c, RP_METHOD_GET)) {
            char scope[128];
            snprintf(action, sizeof(action), "%s/read", coll_action(k));
            scope_for(k, p->name, scope, sizeof(scope));
            if (authz_or_reply(c, action, scope))
                rp_resp_json(c->req, 200, principal_json(c->iam, p, now));
        } else if (method_is(c, RP_METHOD_DELETE)) {
            principal_delete(c, p, k);
        } else {
            no_method(c, "GET, HEAD, DELETE");
        }
        return;
    }
    if (k != RP_PRINCIPAL_MI && strcmp(c->seg[2], "credentials") == 0) {
        if (c->nseg == 3 && method_is(c, RP_METHOD_POST))
            credential_add(c, p);
        else if (c->nseg == 4 && method_is(c, RP_METHOD_DELETE))
            credential_delete(c, p, c->seg[3]);
        else
            no_method(c, c->nseg == 3 ? "POST" : "DELETE");
        return;
    }
    if (k == RP_PRINCIPAL_MI && strcmp(c->seg[2], "sessions") == 0 && c->nseg == 3) {
        if (method_is(c, RP_METHOD_POST))
            session_create(c, p);
        else
            no_method(c, "POST");
        return;
    }
    rp_resp_error(c->req, 404, "NotFound", "no such resource");
}

/* ---------------------------------------------------------------- roles */

static void role_definitions(call *c)
{
    rp__snap *s = rp__iam_snap(c->iam);
    const char *rd = "Microsoft.Authorization/roleDefinitions/read";

    if (c->nseg == 1 && method_is(c, RP_METHOD_GET)) {
        json_t *arr = json_array();
        if (!authz_or_reply(c, rd, "/")) {
            json_decref(arr);
            return;
        }
        for (size_t i = 0; arr && i < rp_rbac_role_count(s->rbac); i++)
            json_array_append_new(arr, rp_rbac_role_to_json(rp_rbac_role_at(s->rbac, i)));
        rp_resp_json(c->req, 200, json_pack("{s:o}", "value", arr ? arr : json_array()));
        return;
    }
    if (c->nseg == 1 && method_is(c, RP_METHOD_POST)) {
        const char *action = "Microsoft.Authorization/roleDefinitions/write";
        json_t *def = c->body, *props;
        rp_rbac *tmp = NULL;
        char err[256], id[37], *text;
        wop *w;
        stmt *st;

        if (!authz_or_reply(c, action, "/"))
            return;
        if (!json_is_object(def)) {
            bad(c->req, "the body must be a role definition object");
            return;
        }
        def = json_deep_copy(def);
        if (def == NULL || rp_random_uuid(id) != 0) {
            json_decref(def);
            oom(c->req);
            return;
        }
        /* The server names the role: a caller cannot pick the id of a built-in. */
        json_object_set_new(def, "id", json_string(id));
        json_object_set_new(def, "name", json_string(id));
        props = json_object_get(def, "properties");
        if (json_is_object(props))
            json_object_set_new(props, "type", json_string("CustomRole"));
        /* Validate against a scratch set holding every existing role (names must be unique). */
        if (rp_rbac_create(&tmp) != 0) {
            json_decref(def);
            oom(c->req);
            return;
        }
        for (size_t i = 0; i < rp_rbac_role_count(s->rbac); i++) {
            const rp_rbac_role *r = rp_rbac_role_at(s->rbac, i);
            json_t *j;
            if (rp_rbac_role_builtin(r))
                continue;
            j = rp_rbac_role_to_json(r);
            rp_rbac_add_role_json(tmp, j, 0, err, sizeof(err));
            json_decref(j);
        }
        int rc = rp_rbac_add_role_json(tmp, def, 0, err, sizeof(err));
        if (rc != 0) {
            rp_rbac_free(tmp);
            json_decref(def);
            if (rc == RP_EEXIST)
                rp_resp_error(c->req, 409, "RoleDefinitionExists", err);
            else
                bad(c->req, err);
            return;
        }
        rp_resp_header(c->req, "Cache-Control", "no-store");
        {
            const rp_rbac_role *r = rp_rbac_role_find(tmp, id);
            json_t *canon = r ? rp_rbac_role_to_json(r) : NULL;
            const char *rname = r ? adup(c->req, rp_rbac_role_name(r)) : NULL;
            rp_rbac_free(tmp); /* r dies here: only copies of its strings are used below */
            json_decref(def);
            text = canon && rname ? json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
            w = text ? wop_new(c->iam, c->req, &c->who, action, "/") : NULL;
            if (w == NULL) {
                free(text);
                json_decref(canon);
                oom(c->req);
                return;
            }
            st = wop_stmt(w,
                          "INSERT INTO role_definitions (id, name, body, created_at)"
                          " VALUES (?, ?, ?, ?)",
                          0);
            pt(st, adup(c->req, id));
            pt(st, rname);
            pt(st, adup(c->req, text));
            pi(st, rp__now());
            free(text);
            w->reply = canon;
            wop_submit(w);
        }
        return;
    }
    if (c->nseg == 2) {
        const rp_rbac_role *r = rp_rbac_role_find(s->rbac, c->seg[1]);
        if (method_is(c, RP_METHOD_GET)) {
            if (!authz_or_reply(c, rd, "/"))
                return;
            if (r == NULL)
                rp_resp_error(c->req, 404, "RoleDefinitionDoesNotExist", "no such role");
            else
                rp_resp_json(c->req, 200, rp_rbac_role_to_json(r));
            return;
        }
        if (method_is(c, RP_METHOD_DELETE)) {
            const char *action = "Microsoft.Authorization/roleDefinitions/delete";
            wop *w;
            stmt *st;
            if (!authz_or_reply(c, action, "/"))
                return;
            if (r == NULL) {
                rp_resp_error(c->req, 404, "RoleDefinitionDoesNotExist", "no such role");
                return;
            }
            if (rp_rbac_role_builtin(r)) {
                rp_resp_error(c->req, 409, "BuiltInRole", "built-in roles cannot be deleted");
                return;
            }
            {
                json_t *used = list_rows(c->iam,
                                         "SELECT id FROM role_assignments WHERE role_id = ?1"
                                         " UNION ALL SELECT id FROM role_eligibilities WHERE"
                                         " role_id = ?1",
                                         rp_rbac_role_id(r), NULL, id_row);
                size_t n = used ? json_array_size(used) : 1;
                json_decref(used);
                if (n > 0) {
                    rp_resp_error(c->req, 409, "RoleDefinitionHasAssignments",
                                  "the role is still assigned or eligible; remove those first");
                    return;
                }
            }
            w = wop_new(c->iam, c->req, &c->who, action, "/");
            if (w == NULL) {
                oom(c->req);
                return;
            }
            w->status = 204;
            /* Refused (no row deleted -> 404 is wrong, so check assignments in SQL). */
            st = wop_stmt(w,
                          "DELETE FROM role_definitions WHERE id = ? AND NOT EXISTS (SELECT 1"
                          " FROM role_assignments WHERE role_id = ?) AND NOT EXISTS (SELECT 1"
                          " FROM role_eligibilities WHERE role_id = ?)",
                          1);
            pt(st, adup(c->req, rp_rbac_role_id(r)));
            pt(st, adup(c->req, rp_rbac_role_id(r)));
            pt(st, adup(c->req, rp_rbac_role_id(r)));
            wop_submit(w);
            return;
        }
        no_method(c, "GET, HEAD, DELETE");
        return;
    }
    if (c->nseg == 1)
        no_method(c, "GET, HEAD, POST");
    else
        rp_resp_error(c->req, 404, "NotFound", "no such resource");
}

static json_t *assignment_row(sqlite3_stmt *q)
{
    char nb[32], ex[32];
    int64_t e = sqlite3_column_int64(q, 5);

    iso(sqlite3_column_int64(q, 4), nb);
    iso(e, ex);
    return json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s?,s:s?}", "id", sqlite3_column_text(q, 0),
                     "principalId", sqlite3_column_text(q, 1), "roleDefinitionId",
                     sqlite3_column_text(q, 2), "scope", sqlite3_column_text(q, 3), "expiresAt",
                     e ? ex : NULL, "activationId", sqlite3_column_text(q, 6), "createdBy",
                     sqlite3_column_text(q, 7));
}

/* Reads rows for a listing on the calling thread (a private reader connection). a1 and a2
 * bind ?1 and ?2 (NULL binds SQL NULL); a statement with fewer parameters ignores the rest. */
static json_t *list_rows(rp_iam *iam, const char *sql, const char *a1, const char *a2,
                         json_t *(*row)(sqlite3_stmt *))
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    json_t *arr = json_array();

    if (arr == NULL || rp_store_reader_open(iam->store, &db) != 0 ||
        sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) {
        json_decref(arr);
        arr = NULL;
        goto out;
    }
    sqlite3_bind_text(q, 1, a1, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, a2, -1, SQLITE_STATIC);
    while (sqlite3_step(q) == SQLITE_ROW)
        json_array_append_new(arr, row(q));
out:
    sqlite3_finalize(q);
    sqlite3_close(db);
    return arr;
}

static void role_assignments(call *c)
{
    rp__snap *s = rp__iam_snap(c->iam);

    if (c->nseg == 1 && method_is(c, RP_METHOD_GET)) {
        const char *scope = rp_req_query(c->req, "scope");
        const char *pref = rp_req_query(c->req, "principal");
        const rp__principal *p = pref ? rp__iam_principal_ref(s, pref) : NULL;
        json_t *arr;

        if (!authz_or_reply(c, "Microsoft.Authorization/roleAssignments/read", "/"))
            return;
        if (pref != NULL && p == NULL) {
            rp_resp_json(c->req, 200, json_pack("{s:[]}", "value"));
            return;
        }
        arr = list_rows(c->iam,
                        "SELECT id, principal_id, role_id, scope, not_before, expires_at,"
                        " activation_id, created_by FROM role_assignments WHERE (?1 IS NULL OR"
                        " scope = ?1) AND (?2 IS NULL OR principal_id = ?2) ORDER BY created_at",
                        scope, p ? p->id : NULL, assignment_row);
        if (arr == NULL)
            rp_resp_error(c->req, 500, "InternalError", "cannot read role assignments");
        else
            rp_resp_json(c->req, 200, json_pack("{s:o}", "value", arr));
        return;
    }
    if (c->nseg == 1 && method_is(c, RP_METHOD_POST)) {
        const char *action = "Microsoft.Authorization/roleAssignments/write";
        const char *pref = body_str(c, "principal"), *role = body_str(c, "role");
        const char *scope = body_str(c, "scope");
        json_t *expv = json_object_get(c->body, "expiresAt");
        const rp__principal *p;
        const rp_rbac_role *r;
        int64_t exp = 0, now = rp__now();
        char id[37], t[32];
        wop *w;
        stmt *st;

        if (scope == NULL || !rp_rbac_scope_valid(scope, strlen(scope))) {
            bad(c->req, "scope: a scope such as \"/\" or \"/vaults/v\"");
            return;
        }
        r = role ? rp_rbac_role_find(s->rbac, role) : NULL;
        if (!rp_authz_assignment(c->iam, c->req, &c->who, action, scope,
                                 r ? rp_rbac_role_id(r) : "")) {
            rp_authz_reply(c->req, &c->who, action, scope);
            return;
        }
        p = rp__iam_principal_ref(s, pref);
        if (p == NULL) {
            bad(c->req, "principal: no such principal");
            return;
        }
        if (r == NULL) {
            bad(c->req, "role: no such role definition");
            return;
        }
        if (!rp_rbac_role_scope_assignable(r, scope)) {
            bad(c->req, "scope: the role cannot be assigned at this scope");
            return;
        }
        if (expv != NULL && (time_parse(expv, &exp) != 0 || exp <= now)) {
            bad(c->req, "expiresAt: a future time such as \"2026-12-01T00:00:00Z\"");
            return;
        }
        w = wop_new(c->iam, c->req, &c->who, action, scope);
        if (w == NULL || rp_random_uuid(id) != 0) {
            wop_free(w);
            oom(c->req);
            return;
        }
        st = wop_stmt(w,
                      "INSERT INTO role_assignments (id, principal_id, role_id, scope,"
                      " not_before, expires_at, created_by, created_at)"
                      " VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                      0);
        pt(st, adup(c->req, id));
        pt(st, adup(c->req, p->id));
        pt(st, adup(c->req, rp_rbac_role_id(r)));
        pt(st, adup(c->req, scope));
        pi(st, exp);
        pt(st, w->principal);
        pi(st, now);
        iso(exp, t);
        w->reply = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s?}", "id", id, "principalId", p->id,
                             "roleDefinitionId", rp_rbac_role_id(r), "roleName",
                             rp_rbac_role_name(r), "scope", scope, "expiresAt", exp ? t : NULL);
        wop_submit(w);
        return;
    }
    if (c->nseg == 2 && method_is(c, RP_METHOD_DELETE)) {
        /* The scope checked is the assignment's own: look it up first. */
        json_t *rows = list_rows(c->iam,
                                 "SELECT id, principal_id, role_id, scope, not_before, expires_at,"
                                 " activation_id, created_by FROM role_assignments WHERE id = ?1",
                                 c->seg[1], NULL, assignment_row);
        const char *action = "Microsoft.Authorization/roleAssignments/delete";
        const char *scope;
        wop *w;
        stmt *st;

        if (rows == NULL) {
            rp_resp_error(c->req, 500, "InternalError", "cannot read role assignments");
            return;
        }
        {
            json_t *row = json_array_get(rows, 0);
            const char *rid =
                row ? json_string_value(json_object_get(row, "roleDefinitionId")) : NULL;
            scope = adup(c->req, row ? json_string_value(json_object_get(row, "scope")) : "/");
            rid = adup(c->req, rid ? rid : "");
            json_decref(rows);
            if (!rp_authz_assignment(c->iam, c->req, &c->who, action, scope, rid)) {
                rp_authz_reply(c->req, &c->who, action, scope);
                return;
            }
        }
        w = wop_new(c->iam, c->req, &c->who, action, scope);
        if (w == NULL) {
            oom(c->req);
            return;
        }
        w->status = 204;
        st = wop_stmt(w, "DELETE FROM role_assignments WHERE id = ?", 1);
        pt(st, adup(c->req, c->seg[1]));
        wop_submit(w);
        return;
    }
    if (c->nseg == 1)
        no_method(c, "GET, HEAD, POST");
    else if (c->nseg == 2)
        no_method(c, "DELETE");
    else
        rp_resp_error(c->req, 404, "NotFound", "no such resource");
}

/* ---------------------------------------------------------------- PIM */

static json_t *elig_json(const rp__eligibility *e, const rp_rbac *rb)
{
    const rp_rbac_role *r = rp_rbac_role_find(rb, e->role_id);
    char t[32];

    iso(e->expires_at, t);
    return json_pack("{s:s,s:s,s:s,s:s?,s:s,s:I,s:O,s:s?}", "id", e->id, "principalId",
                     e->principal_id, "roleDefinitionId", e->role_id, "roleName",
                     r ? rp_rbac_role_name(r) : NULL, "scope", e->scope, "maxDurationSeconds",
                     (json_int_t)e->max_duration, "approvers", e->approvers, "expiresAt",
                     e->expires_at ? t : NULL);
}

static void eligibilities(call *c)
{
    rp__snap *s = rp__iam_snap(c->iam);

    if (c->nseg == 1 && method_is(c, RP_METHOD_GET)) {
        int all = rp_authz(c->iam, c->req, &c->who,
                           "Microsoft.Authorization/roleEligibilitySchedules/read", 0, "/");
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < s->nelig; i++)
            if (all || strcmp(s->elig[i].principal_id, c->who.id) == 0)
                json_array_append_new(arr, elig_json(&s->elig[i], s->rbac));
        rp_resp_json(c->req, 200, json_pack("{s:o}", "value", arr ? arr : json_array()));
        return;
    }
    if (c->nseg == 1 && method_is(c, RP_METHOD_POST)) {
        const char *action = "Microsoft.Authorization/roleEligibilitySchedules/write";
        const char *pref = body_str(c, "principal"), *role = body_str(c, "role");
        const char *scope = body_str(c, "scope");
        json_t *md = json_object_get(c->body, "maxDuration");
        json_t *appr = json_object_get(c->body, "approvers"), *ids, *v;
        json_t *expv = json_object_get(c->body, "expiresAt");
        const rp__principal *p;
        const rp_rbac_role *r;
        int64_t maxd, exp = 0, now = rp__now();
        char id[37], *text;
        size_t i;
        wop *w;
        stmt *st;

        if (scope == NULL || !rp_rbac_scope_valid(scope, strlen(scope))) {
            bad(c->req, "scope: a scope such as \"/\" or \"/vaults/v\"");
            return;
        }
        if (!authz_or_reply(c, action, scope))
            return;
        p = rp__iam_principal_ref(s, pref);
        r = role ? rp_rbac_role_find(s->rbac, role) : NULL;
        if (p == NULL || r == NULL) {
            bad(c->req, p == NULL ? "principal: no such principal" : "role: no such role");
            return;
        }
        if (!rp_rbac_role_scope_assignable(r, scope)) {
            bad(c->req, "scope: the role cannot be assigned at this scope");
            return;
        }
        maxd = rp_rbac_role_max_activation_s(r);
        if (maxd <= 0)
            maxd = RP_IAM_PIM_DEFAULT_S;
        if (md != NULL && (duration_parse(md, &maxd) != 0 || maxd > RP_IAM_PIM_MAX_S)) {
            bad(c->req, "maxDuration: an ISO 8601 duration up to PT24H");
            return;
        }
        if (expv != NULL && (time_parse(expv, &exp) != 0 || exp <= now)) {
            bad(c->req, "expiresAt: a future time");
            return;
        }
        if (appr != NULL && (!json_is_array(appr) || json_array_size(appr) > 16)) {
            bad(c->req, "approvers: an array of at most 16 principals");
            return;
        }
        ids = json_array();
        json_array_foreach(appr, i, v)
        {
            const rp__principal *a =
                json_is_string(v) ? rp__iam_principal_ref(s, json_string_value(v)) : NULL;
            const char *aid =
                a ? a->id
                : (json_is_string(v) && strcmp(json_string_value(v), RP_IAM_ADMIN_ID) == 0)
                    ? RP_IAM_ADMIN_ID
                    : NULL;
            if (aid == NULL || (a != NULL && strcmp(a->id, p->id) == 0)) {
                json_decref(ids);
                bad(c->req, "approvers: each must be an existing principal other than the "
                            "eligible one");
                return;
            }
            json_array_append_new(ids, json_string(aid));
        }
        text = ids ? json_dumps(ids, JSON_COMPACT) : NULL;
        json_decref(ids);
        w = text ? wop_new(c->iam, c->req, &c->who, action, scope) : NULL;
        if (w == NULL || rp_random_uuid(id) != 0) {
            free(text);
            wop_free(w);
            oom(c->req);
            return;
        }
        st = wop_stmt(w,
                      "INSERT INTO role_eligibilities (id, principal_id, role_id, scope,"
                      " max_duration, approvers, expires_at, created_by, created_at)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      0);
        pt(st, adup(c->req, id));
        pt(st, adup(c->req, p->id));
        pt(st, adup(c->req, rp_rbac_role_id(r)));
        pt(st, adup(c->req, scope));
        pi(st, maxd);
        pt(st, adup(c->req, text));
        pi(st, exp);
        pt(st, w->principal);
        pi(st, now);
        w->reply = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:o}", "id", id, "principalId", p->id,
                             "roleDefinitionId", rp_rbac_role_id(r), "roleName",
                             rp_rbac_role_name(r), "scope", scope, "maxDurationSeconds",
                             (json_int_t)maxd, "approvers", json_loads(text, 0, NULL));
        free(text);
        wop_submit(w);
        return;
    }
    if (c->nseg == 2 && method_is(c, RP_METHOD_DELETE)) {
        const char *action = "Microsoft.Authorization/roleEligibilitySchedules/delete";
        const rp__eligibility *e = NULL;
        wop *w;
        stmt *st;

        for (size_t i = 0; i < s->nelig; i++)
            if (strcmp(s->elig[i].id, c->seg[1]) == 0)
                e = &s->elig[i];
        if (!authz_or_reply(c, action, e ? e->scope : "/"))
            return;
        if (e == NULL) {
            rp_resp_error(c->req, 404, "NotFound", "no such eligibility");
            return;
        }
        w = wop_new(c->iam, c->req, &c->who, action, e->scope);
        if (w == NULL) {
            oom(c->req);
            return;
        }
        w->status = 204;
        st = wop_stmt(w, "DELETE FROM role_eligibilities WHERE id = ?", 1);
        pt(st, adup(c->req, e->id));
        /* Activations granted through it end with it. */
        st = wop_stmt(w,
                      "DELETE FROM role_assignments WHERE activation_id IN (SELECT id FROM"
                      " role_activations WHERE eligibility_id = ?)",
                      0);
        pt(st, adup(c->req, e->id));
        wop_submit(w);
        return;
    }
    if (c->nseg == 1)
        no_method(c, "GET, HEAD, POST");
    else
        no_method(c, "DELETE");
}

static json_t *activation_row(sqlite3_stmt *q)
{
    char ra[32], ex[32];
    int64_t e = sqlite3_column_int64(q, 9);

    iso(sqlite3_column_int64(q, 7), ra);
    iso(e, ex);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s?,s:s?}", "id",
                     sqlite3_column_text(q, 0), "eligibilityId", sqlite3_column_text(q, 1),
                     "principalId", sqlite3_column_text(q, 2), "roleDefinitionId",
                     sqlite3_column_text(q, 3), "scope", sqlite3_column_text(q, 4), "justification",
                     sqlite3_column_text(q, 5), "durationSeconds",
                     (json_int_t)sqlite3_column_int64(q, 6), "requestedAt", ra, "status",
                     sqlite3_column_text(q, 8), "expiresAt", e ? ex : NULL, "decidedBy",
                     sqlite3_column_text(q, 10));
}

#define ACT_COLS                                                                                   \
    "SELECT id, eligibility_id, principal_id, role_id, scope, justification, duration,"            \
    " requested_at, CASE WHEN status = 'Active' AND expires_at <= strftime('%s','now') THEN"       \
    " 'Expired' ELSE status END, expires_at, decided_by FROM role_activations"

/* Adds the time-bound assignment an approved activation grants. */
static void grant(wop *w, rp_req *req, const char *act_id, const char *pid, const char *role,
                  const char *scope, int64_t now, int64_t exp)
{
    char aid[37];
    stmt *st;

    if (rp_random_uuid(aid) != 0)
        return;
    st = wop_stmt(w,
                  "INSERT INTO role_assignments (id, principal_id, role_id, scope, not_before,"
                  " expires_at, activation_id, created_by, created_at)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?, 'pim', ?)",
                  0);
    pt(st, adup(req, aid));
    pt(st, adup(req, pid));
    pt(st, adup(req, role));
    pt(st, adup(req, scope));
    pi(st, now);
    pi(st, exp);
    pt(st, adup(req, act_id));
    pi(st, now);
}

static void activations(call *c)
{
    rp__snap *s = rp__iam_snap(c->iam);
    int64_t now = rp__now();

    if (c->nseg == 1 && method_is(c, RP_METHOD_GET)) {
        int all = rp_authz(c->iam, c->req, &c->who,
                           "Microsoft.Authorization/roleAssignmentSchedules/read", 0, "/");
        /* Everything is read; what the caller may see is filtered below (own requests, those
         * it decided, and those waiting for it as an approver). */
        json_t *arr =
            list_rows(c->iam, ACT_COLS " ORDER BY requested_at", NULL, NULL, activation_row);
        if (arr == NULL) {
            rp_resp_error(c->req, 500, "InternalError", "cannot read activations");
            return;
        }
        if (!all) {
            /* Approvers also see the requests waiting for them. */
            size_t i = 0;
            while (i < json_array_size(arr)) {
                json_t *a = json_array_get(arr, i);
                const char *pid = json_string_value(json_object_get(a, "principalId"));
                const char *eid = json_string_value(json_object_get(a, "eligibilityId"));
                const char *dec = json_string_value(json_object_get(a, "decidedBy"));
                int mine =
                    (pid && strcmp(pid, c->who.id) == 0) || (dec && strcmp(dec, c->who.id) == 0);
                for (size_t k = 0; !mine && eid && k < s->nelig; k++) {
                    size_t j;
                    json_t *v;
                    if (strcmp(s->elig[k].id, eid) != 0)
                        continue;
                    json_array_foreach(s->elig[k].approvers, j,
                                       v) if (strcmp(json_string_value(v), c->who.id) == 0) mine =
                        1;
                }
                if (mine)
                    i++;
                else
                    json_array_remove(arr, i);
            }
        }
        rp_resp_json(c->req, 200, json_pack("{s:o}", "value", arr));
        return;
    }
    if (c->nseg == 1 && method_is(c, RP_METHOD_POST)) {
        const char *eid = body_str(c, "eligibility"), *just = body_str(c, "justification");
        const char *role = body_str(c, "role"), *scope = body_str(c, "scope");
        json_t *dv = json_object_get(c->body, "duration");
        const rp__eligibility *e = NULL;
        int64_t dur = 0;
        char id[37], t[32];
        int needs_approval;
        wop *w;
        stmt *st;

        for (size_t i = 0; i < s->nelig; i++) {
            const rp__eligibility *x = &s->elig[i];
            const rp_rbac_role *r = role ? rp_rbac_role_find(s->rbac, role) : NULL;
            if (strcmp(x->principal_id, c->who.id) != 0)
                continue;
            if ((eid && strcmp(x->id, eid) == 0) ||
                (!eid && r && scope && strcmp(rp_rbac_role_id(r), x->role_id) == 0 &&
                 strcasecmp(x->scope, scope) == 0))
                e = x;
        }
        if (e == NULL) {
            rp__iam_audit(c->iam, c->req, c->who.id, "change", "pim.activate", scope ? scope : "/",
                          "denied", json_pack("{s:s}", "reason", "not eligible"));
            rp_resp_error(c->req, 403, "NotEligible",
                          "the caller holds no eligibility matching this request");
            return;
        }
        if (e->expires_at != 0 && e->expires_at <= now) {
            rp_resp_error(c->req, 403, "EligibilityExpired", "the eligibility has expired");
            return;
        }
        if (just == NULL || strlen(just) < 1 || strlen(just) > 500) {
            bad(c->req, "justification: 1 to 500 characters are required");
            return;
        }
        dur = e->max_duration;
        if (dv != NULL && duration_parse(dv, &dur) != 0) {
            bad(c->req, "duration: an ISO 8601 duration such as PT2H");
            return;
        }
        if (dur > e->max_duration || dur < 300) {
            rp__iam_audit(c->iam, c->req, c->who.id, "change", "pim.activate", e->scope, "denied",
                          json_pack("{s:s,s:I}", "reason", "duration over the maximum",
                                    "maxDurationSeconds", (json_int_t)e->max_duration));
            rp_resp_error(c->req, 400, "DurationOverMaximum",
                          "the duration must be from 5 minutes up to the eligibility's maximum");
            return;
        }
        needs_approval = json_array_size(e->approvers) > 0;
        /* Never past the eligibility's own end. */
        if (e->expires_at != 0 && now + dur > e->expires_at)
            dur = e->expires_at - now;
        w = wop_new(c->iam, c->req, &c->who, "pim.activate", e->scope);
        if (w == NULL || rp_random_uuid(id) != 0) {
            wop_free(w);
            oom(c->req);
            return;
        }
        st = wop_stmt(w,
                      "INSERT INTO role_activations (id, eligibility_id, principal_id, role_id,"
                      " scope, justification, duration, status, requested_at, expires_at)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      0);
        pt(st, adup(c->req, id));
        pt(st, adup(c->req, e->id));
        pt(st, w->principal);
        pt(st, adup(c->req, e->role_id));
        pt(st, adup(c->req, e->scope));
        pt(st, adup(c->req, just));
        pi(st, dur);
        pt(st, needs_approval ? "PendingApproval" : "Active");
        pi(st, now);
        pi(st, needs_approval ? 0 : now + dur);
        if (!needs_approval)
            grant(w, c->req, id, c->who.id, e->role_id, e->scope, now, now + dur);
        iso(now + dur, t);
        w->reply = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s?}", "id", id, "eligibilityId", e->id,
                             "status", needs_approval ? "PendingApproval" : "Active",
                             "roleDefinitionId", e->role_id, "scope", e->scope, "durationSeconds",
                             (json_int_t)dur, "expiresAt", needs_approval ? NULL : t);
        wop_submit(w);
        return;
    }
    if (c->nseg >= 2) {
        json_t *rows =
            list_rows(c->iam, ACT_COLS " WHERE id = ?1", c->seg[1], NULL, activation_row);
        json_t *a = rows ? json_array_get(rows, 0) : NULL;
        const char *pid, *eid, *status, *role, *scope;
        const rp__eligibility *e = NULL;
        wop *w;
        stmt *st;

        if (a == NULL) {
            json_decref(rows);
            rp_resp_error(c->req, 404, "NotFound", "no such activation");
            return;
        }
        pid = adup(c->req, json_string_value(json_object_get(a, "principalId")));
        eid = adup(c->req, json_string_value(json_object_get(a, "eligibilityId")));
        status = adup(c->req, json_string_value(json_object_get(a, "status")));
        role = adup(c->req, json_string_value(json_object_get(a, "roleDefinitionId")));
        scope = adup(c->req, json_string_value(json_object_get(a, "scope")));
        int64_t dur = json_integer_value(json_object_get(a, "durationSeconds"));
        int64_t requested = 0;
        json_t *ra = json_object_get(a, "requestedAt");
        if (ra == NULL ||
            rp_iso_time_parse(json_string_value(ra), json_string_length(ra), &requested) != 0)
            requested = 0;
        json_decref(rows);
        for (size_t i = 0; i < s->nelig; i++)
            if (strcmp(s->elig[i].id, eid) == 0)
                e = &s->elig[i];
        if (c->nseg == 2 && method_is(c, RP_METHOD_DELETE)) {
            if (strcmp(pid, c->who.id) != 0 &&
                !authz_or_reply(c, "Microsoft.Authorization/roleAssignments/delete", scope))
                return;
            w = wop_new(c->iam, c->req, &c->who, "pim.deactivate", scope);
            if (w == NULL) {
                oom(c->req);
                return;
            }
            w->status = 204;
            st = wop_stmt(w,
                          "UPDATE role_activations SET status = 'Revoked', decided_at = ?"
                          " WHERE id = ?",
                          1);
            pi(st, now);
            pt(st, adup(c->req, c->seg[1]));
            st = wop_stmt(w, "DELETE FROM role_assignments WHERE activation_id = ?", 0);
            pt(st, adup(c->req, c->seg[1]));
            wop_submit(w);
            return;
        }
        if (c->nseg == 3 && method_is(c, RP_METHOD_POST) &&
            (strcmp(c->seg[2], "approve") == 0 || strcmp(c->seg[2], "deny") == 0)) {
            int approve = c->seg[2][0] == 'a', is_approver = 0;
            size_t j;
            json_t *v;

            if (e != NULL)
                json_array_foreach(e->approvers, j, v) if (strcmp(json_string_value(v),
                                                                  c->who.id) == 0) is_approver = 1;
            if (!is_approver || strcmp(pid, c->who.id) == 0) {
                rp__iam_audit(c->iam, c->req, c->who.id, "change",
                              approve ? "pim.approve" : "pim.deny", scope, "denied",
                              json_pack("{s:s}", "reason", "not an approver of this request"));
                rp_resp_error(c->req, 403, "NotApprover",
                              "only a listed approver other than the requester can decide");
                return;
            }
            if (strcmp(status, "PendingApproval") != 0) {
                rp_resp_error(c->req, 409, "NotPending", "the request is not pending approval");
                return;
            }
            /* A request outlives neither its eligibility nor RP__PIM_PENDING_S. */
            if (approve && (e == NULL || (e->expires_at != 0 && e->expires_at <= now) ||
                            now - requested > RP__PIM_PENDING_S)) {
                rp_resp_error(c->req, 409, "RequestExpired",
                              "the eligibility has ended or the request waited too long; the "
                              "requester must ask again");
                return;
            }
            if (e != NULL && e->expires_at != 0 && now + dur > e->expires_at)
                dur = e->expires_at - now;
            w = wop_new(c->iam, c->req, &c->who, approve ? "pim.approve" : "pim.deny", scope);
            if (w == NULL) {
                oom(c->req);
                return;
            }
            w->status = 200;
            /* The activation's clock starts when it is approved. */
            st = wop_stmt(w,
                          "UPDATE role_activations SET status = ?, decided_by = ?, decided_at ="
                          " ?, expires_at = ? WHERE id = ? AND status = 'PendingApproval'",
                          1);
            pt(st, approve ? "Active" : "Denied");
            pt(st, w->principal);
            pi(st, now);
            pi(st, approve ? now + dur : 0);
            pt(st, adup(c->req, c->seg[1]));
            if (approve)
                grant(w, c->req, c->seg[1], pid, role, scope, now, now + dur);
            w->reply =
                json_pack("{s:s,s:s}", "id", c->seg[1], "status", approve ? "Active" : "Denied");
            wop_submit(w);
            return;
        }
        no_method(c, c->nseg == 2 ? "DELETE" : "POST");
        return;
    }
    no_method(c, "GET, HEAD, POST");
}

/* ---------------------------------------------------------------- audit */

static int audit_collect(const rp_audit_entry *e, const char *line, size_t len, void *arg)
{
    json_t *arr = arg;

    (void)line;
    (void)len;
    return json_array_append(arr, e->obj) == 0 ? 0 : RP_ENOMEM;
}

static void audit_list(call *c)
{
    const char *after = rp_req_query(c->req, "after"), *limit = rp_req_query(c->req, "limit");
    uint64_t a = 0, l = 100;
    json_t *arr;
    uint64_t next = 0;

    if (!method_is(c, RP_METHOD_GET)) {
        no_method(c, "GET, HEAD");
        return;
    }
    if ((after && rp_parse_u64(after, strlen(after), UINT64_MAX / 2, &a) != 0) ||
        (limit && (rp_parse_u64(limit, strlen(limit), 1000, &l) != 0 || l == 0))) {
        bad(c->req, "after: a record number; limit: 1 to 1000");
        return;
    }
    if (!authz_or_reply(c, "Microsoft.Insights/auditLogs/read", "/"))
        return;
    arr = json_array();
    if (arr == NULL ||
        rp_audit_read(c->iam->audit_path, a, (size_t)l, audit_collect, arr, &next) != 0) {
        json_decref(arr);
        rp_resp_error(c->req, 500, "InternalError", "cannot read the audit log");
        return;
    }
    rp_resp_json(c->req, 200, json_pack("{s:o,s:I}", "value", arr, "next", (json_int_t)next));
}

/* ---------------------------------------------------------------- dispatch */

static void version(call *c)
{
    if (c->nseg != 1)
        return rp_resp_error(c->req, 404, "NotFound", "no such resource");
    if (!method_is(c, RP_METHOD_GET))
        return no_method(c, "GET, HEAD");
    rp_resp_json(c->req, 200,
                 json_pack("{s:s,s:s,s:s,s:s}", "name", "rampart", "version", RP_VERSION, "domain",
                           c->iam->domain, "tenant", c->iam->tenant));
}

static void whoami(call *c)
{
    if (c->nseg != 1)
        return rp_resp_error(c->req, 404, "NotFound", "no such resource");
    if (!method_is(c, RP_METHOD_GET))
        return no_method(c, "GET, HEAD");
    rp_resp_json(c->req, 200,
                 json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", c->who.id, "clientId", c->who.client_id,
                           "name", c->who.name, "type", rp__iam_kind_name(c->who.kind), "via",
                           c->who.via));
}

static void principals_of(call *c)
{
    principals(c, c->seg[0]);
}

static void audit(call *c)
{
    if (c->nseg != 1)
        return rp_resp_error(c->req, 404, "NotFound", "no such resource");
    audit_list(c);
}

/* The collections under /api and who answers them: the one list (api() checks names
 * against it before reading a body, dispatch() calls the handler). */
static const struct {
    const char *name;
    void (*fn)(call *c);
} collections[] = {
    {"version", version},
    {"whoami", whoami},
    {"users", principals_of},
    {"servicePrincipals", principals_of},
    {"identities", principals_of},
    {"roleDefinitions", role_definitions},
    {"roleAssignments", role_assignments},
    {"roleEligibilities", eligibilities},
    {"roleActivations", activations},
    {"audit", audit},
};

static void (*collection(const char *name))(call *c)
{
    for (size_t i = 0; i < sizeof(collections) / sizeof(collections[0]); i++)
        if (strcmp(name, collections[i].name) == 0)
            return collections[i].fn;
    return NULL;
}

static void dispatch(call *c)
{
    rp_resp_header(c->req, "Cache-Control", "no-store");
    collection(c->seg[0])(c);
}

static call *call_new(rp_req *req)
{
    call *c = rp_arena_calloc(req->arena, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->iam = req->route_data;
    c->req = req;
    return c;
}

static void split_path(call *c)
{
    const char *s = c->req->path + 4; /* after "/api" */

    c->nseg = 0;
    while (*s == '/' && c->nseg < SEGS) {
        const char *e = strchr(s + 1, '/');
        size_t n = e ? (size_t)(e - s - 1) : strlen(s + 1);
        if (n > 0)
            c->seg[c->nseg++] = rp_arena_strndup(c->req->arena, s + 1, n);
        if (e == NULL)
            return;
        s = e;
    }
    if (*s == '/' && s[1] != '\0')
        c->nseg = SEGS + 1; /* too deep: nothing answers */
}

static void with_body(rp_req *req)
{
    call *c = req->handler_data;
    json_error_t je;

    req->handler_data = NULL;
    if (req->body.len > 0) {
        c->body = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &je);
        if (c->body == NULL || !json_is_object(c->body)) {
            json_decref(c->body);
            c->body = NULL;
            rp_resp_error(req, 400, "InvalidJson", "the body must be one JSON object");
            return;
        }
    } else {
        c->body = json_object();
    }
    dispatch(c);
    json_decref(c->body);
}

static void api(rp_req *req)
{
    rp_iam *iam = req->route_data;
    static const rp_authn_policy pol = {RP_AUTHN_ADMIN | RP_AUTHN_BEARER | RP_AUTHN_CLIENT_CERT,
                                        "management"};
    call *c = call_new(req);
    rp_authn_status st;

    if (c == NULL) {
        oom(req);
        return;
    }
    st = rp_authn(iam, req, &pol, &c->who);
    if (st != RP_AUTHN_OK) {
        rp_authn_reply(req, st);
        return;
    }
    split_path(c);
    if (c->nseg == 0 || c->nseg > SEGS || collection(c->seg[0]) == NULL) {
        rp_resp_error(req, 404, "NotFound", "no such resource");
        return;
    }
    if (req->method == RP_METHOD_POST || req->method == RP_METHOD_PUT ||
        req->method == RP_METHOD_PATCH) {
        rp_str ct = rp_req_header(req, "content-type");
        if (ct.p != NULL && !rp_str_has_prefix(ct, "application/json")) {
            rp_resp_error(req, 415, "UnsupportedMediaType", "bodies are application/json");
            return;
        }
        req->handler_data = c;
        rp_req_read_body(req, with_body);
        return;
    }
    c->body = json_object();
    dispatch(c);
    json_decref(c->body);
}

static void health(rp_req *req)
{
    rp_iam *iam = req->route_data;

    rp_resp_header(req, "Cache-Control", "no-store");
    rp_resp_json(req, 200, json_pack("{s:s,s:s}", "status", "ok", "tenant", iam->tenant));
}

int rp__iam_register_login(rp_iam *iam, rp_router *r);

int rp_iam_register(rp_iam *iam, rp_router *r, size_t max_body)
{
    rp_route_opts h = {RP_M_READ, 0, iam};
    /* Every method reaches the API handler so that authentication comes before 405/404. */
    rp_route_opts a = {RP_M_ANY, max_body, iam};
    int rc = rp_router_add(r, "@", "/health", health, &h);

    if (rc == 0)
        rc = rp_router_add(r, "@", "/api", api, &a);
    if (rc == 0)
        rc = rp__iam_register_login(iam, r);
    return rc;
}
