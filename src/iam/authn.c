/*
 * authn.c - authentication (administrator tokens, bearer JWTs, client certificates) and the
 * RBAC check, with a per-thread cache of verified tokens.
 *
 * Workload: runs on every authenticated request. The cache makes the repeated case cheap: a
 * hash over the token's tail picks a slot, a constant-time comparison of the whole token
 * confirms it, then the expiry and the principal's existence (a binary search in the
 * snapshot) are checked again - so deleting a principal or letting a token expire takes
 * effect on the next request even for cached tokens. The cache is per loop thread, so it
 * needs no lock; it holds RP__TCACHE_SLOTS entries and a new token replaces whatever its
 * slot held.
 */
#include "iam/authn.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/rand.h"
#include "base/str.h"
#include "iam/iam_int.h"

#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <string.h>

#define RP__TCACHE_SLOTS 4096
#define RP__AUD_MAX      340

typedef struct tentry {
    uint64_t h;
    char *tok; /* rp_malloc'ed copy, wiped when replaced */
    size_t len;
    int64_t exp;
    int64_t nbf;
    char aud[RP__AUD_MAX];
    char principal[37];
} tentry;

struct rp__tcache {
    uint64_t seed;
    tentry slots[RP__TCACHE_SLOTS];
};

static _Thread_local rp_authn_stats tl_stats;

void rp__tcache_free(struct rp__tcache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < RP__TCACHE_SLOTS; i++) {
        if (c->slots[i].tok != NULL) {
            OPENSSL_cleanse(c->slots[i].tok, c->slots[i].len);
            rp_free(c->slots[i].tok);
        }
    }
    rp_free(c);
}

static struct rp__tcache *tcache(void)
{
    rp__loop *l = rp__iam_loop();

    if (l == NULL)
        return NULL;
    if (l->cache == NULL) {
        l->cache = rp_calloc(1, sizeof(*l->cache));
        if (l->cache != NULL && rp_random_bytes(&l->cache->seed, sizeof(l->cache->seed)) != 0) {
            rp_free(l->cache);
            l->cache = NULL;
        }
    }
    return l->cache;
}

/* FNV-1a over the last 64 bytes (the signature's tail: different for every token), seeded so
 * slot collisions cannot be planned from outside. The whole token is compared on a hit. */
static uint64_t thash(uint64_t seed, const char *t, size_t n)
{
    uint64_t h = 1469598103934665603ULL ^ seed;
    size_t from = n > 64 ? n - 64 : 0;

    for (size_t i = from; i < n; i++) {
        h ^= (unsigned char)t[i];
        h *= 1099511628211ULL;
    }
    return h ^ n;
}

const char *rp_authn_status_name(rp_authn_status s)
{
    switch (s) {
    case RP_AUTHN_OK: return "ok";
    case RP_AUTHN_MISSING: return "missing";
    case RP_AUTHN_INVALID: return "invalid";
    case RP_AUTHN_EXPIRED: return "expired";
    case RP_AUTHN_AUDIENCE: return "audience";
    case RP_AUTHN_REVOKED: return "revoked";
    }
    return "invalid";
}

void rp_authn_stats_get(rp_authn_stats *out)
{
    *out = tl_stats;
}

static void fill(rp_identity *who, const rp__principal *p, const char *via)
{
    memcpy(who->id, p->id, sizeof(who->id));
    memcpy(who->client_id, p->client_id, sizeof(who->client_id));
    who->kind = p->kind;
    rp_strlcpy(who->name, p->name, sizeof(who->name));
    who->via = via;
}

static void fill_admin(rp_identity *who)
{
    memset(who, 0, sizeof(*who));
    rp_strlcpy(who->id, RP_IAM_ADMIN_ID, sizeof(who->id));
    who->kind = RP_PRINCIPAL_ADMIN;
    rp_strlcpy(who->name, "administrator", sizeof(who->name));
    who->via = "admin-token";
}

static rp_authn_status map_jwt(rp_jwt_status s)
{
    switch (s) {
    case RP_JWT_OK: return RP_AUTHN_OK;
    case RP_JWT_EXPIRED:
    case RP_JWT_NOT_YET_VALID: return RP_AUTHN_EXPIRED;
    case RP_JWT_AUDIENCE: return RP_AUTHN_AUDIENCE;
    default: return RP_AUTHN_INVALID;
    }
}

static rp_authn_status bearer(rp_iam *iam, const rp__snap *s, const char *tok, size_t n,
                              const char *aud, rp_identity *who, const char **why)
{
    struct rp__tcache *c = tcache();
    int64_t now = rp__now();
    const char *auds[2] = {aud, NULL};
    const char *oid;
    const rp__principal *p;
    rp_jwt *j = NULL;
    rp_jwt_status js;
    tentry *e = NULL;
    uint64_t h = 0;

    if (c != NULL) {
        h = thash(c->seed, tok, n);
        e = &c->slots[h % RP__TCACHE_SLOTS];
        if (e->tok != NULL && e->h == h && e->len == n && CRYPTO_memcmp(e->tok, tok, n) == 0) {
            tl_stats.hits++;
            if (now >= e->exp + RP_IAM_SKEW_S || now + RP_IAM_SKEW_S < e->nbf) {
                *why = "expired";
                return RP_AUTHN_EXPIRED;
            }
            if (strcmp(e->aud, aud) != 0) {
                *why = "audience";
                return RP_AUTHN_AUDIENCE;
            }
            p = rp__iam_principal(s, e->principal);
            if (p == NULL) {
                *why = "principal deleted";
                return RP_AUTHN_REVOKED;
            }
            fill(who, p, "bearer");
            return RP_AUTHN_OK;
        }
        tl_stats.misses++;
    }
    js = rp_jwt_decode(tok, n, RP__IAM_VERIFY_ALGS, &j);
    if (js == RP_JWT_OK) {
        const rp_jwt_key *k = rp__iam_verify_key(s, rp_jwt_kid(j));
        if (k == NULL)
            js = RP_JWT_KID;
        else
            js = rp_jwt_verify(j, k);
    }
    if (js == RP_JWT_OK) {
        rp_jwt_expect ex = {iam->issuer, auds, now, RP_IAM_SKEW_S, 1, 0};
        js = rp_jwt_check_claims(j, &ex);
    }
    if (js != RP_JWT_OK) {
        tl_stats.rejected++;
        *why = rp_jwt_status_name(js);
        rp_jwt_free(j);
        return map_jwt(js);
    }
    tl_stats.verified++;
    oid = rp_jwt_claim_str(j, "oid");
    p = oid ? rp__iam_principal(s, oid) : NULL;
    if (p == NULL ||
        strcmp(rp_jwt_claim_str(j, "tid") ? rp_jwt_claim_str(j, "tid") : "", iam->tenant) != 0) {
        *why = p == NULL ? "principal deleted" : "tenant";
        rp_jwt_free(j);
        return p == NULL ? RP_AUTHN_REVOKED : RP_AUTHN_INVALID;
    }
    fill(who, p, "bearer");
    if (e != NULL) {
        char *copy = rp_malloc(n);
        json_t *exp = json_object_get(rp_jwt_claims(j), "exp");
        json_t *nbf = json_object_get(rp_jwt_claims(j), "nbf");

        if (copy != NULL) {
            if (e->tok != NULL) {
                OPENSSL_cleanse(e->tok, e->len);
                rp_free(e->tok);
            }
            memcpy(copy, tok, n);
            e->tok = copy;
            e->len = n;
            e->h = h;
            e->exp = json_integer_value(exp);
            e->nbf = json_is_integer(nbf) ? json_integer_value(nbf) : 0;
            rp_strlcpy(e->aud, aud, sizeof(e->aud));
            memcpy(e->principal, p->id, sizeof(e->principal));
        }
    }
    rp_jwt_free(j);
    return RP_AUTHN_OK;
}

static rp_authn_status client_cert(rp_iam *iam, const rp__snap *s, rp_req *req, rp_identity *who,
                                   const char **why)
{
    X509 *x = rp_req_peer_cert(req);
    unsigned char *der = NULL;
    char x5t[28], s256[44], hex[65];
    const rp__principal *owner = NULL;
    const rp__cred *c;
    int len;

    (void)iam;
    if (x == NULL)
        return RP_AUTHN_MISSING;
    len = i2d_X509(x, &der);
    if (len <= 0 || rp_jwt_cert_thumbprints(der, (size_t)len, x5t, s256, hex) != 0) {
        OPENSSL_free(der);
        *why = "unreadable certificate";
        return RP_AUTHN_INVALID;
    }
    OPENSSL_free(der);
    c = rp__iam_cert(s, s256, 1, &owner);
    if (c == NULL) {
        *why = "certificate not registered";
        return RP_AUTHN_INVALID;
    }
    if (c->expires_at <= rp__now()) {
        *why = "certificate credential expired";
        return RP_AUTHN_EXPIRED;
    }
    fill(who, owner, "client-certificate");
    return RP_AUTHN_OK;
}

rp_authn_status rp_authn(rp_iam *iam, rp_req *req, const rp_authn_policy *policy, rp_identity *who)
{
    rp_str auth = rp_req_header(req, "authorization");
    rp__snap *s = rp__iam_snap(iam);
    rp_authn_status st = RP_AUTHN_MISSING;
    const char *why = "no credential";
    const char *aud = policy->audience ? rp__iam_resource(iam, policy->audience) : NULL;

    memset(who, 0, sizeof(*who));
    if (auth.p != NULL && rp_req_header_count(req, "authorization") > 1) {
        /* Two credentials: which one a proxy or a later reader would pick is anyone's guess. */
        st = RP_AUTHN_INVALID;
        why = "more than one Authorization header";
    } else if (auth.p != NULL && auth.n > 7 && rp_str_eq_nocase((rp_str){auth.p, 7}, "bearer ")) {
        rp_str tok = rp_str_trim((rp_str){auth.p + 7, auth.n - 7});
        int is_admin = tok.n > 4 && memcmp(tok.p, RP_ADMIN_TOKEN_PREFIX, 4) == 0;

        if (is_admin && (policy->accept & RP_AUTHN_ADMIN)) {
            int rc;
            pthread_rwlock_rdlock(&iam->admin_lock);
            rc = rp_admin_creds_check(iam->admin, tok.p, tok.n);
            pthread_rwlock_unlock(&iam->admin_lock);
            if (rc == 0) {
                fill_admin(who);
                st = RP_AUTHN_OK;
            } else {
                st = RP_AUTHN_INVALID;
                why = "administrator token not valid";
            }
        } else if (!is_admin && (policy->accept & RP_AUTHN_BEARER) && aud != NULL) {
            if (tok.n > RP_JWT_MAX_LEN) {
                st = RP_AUTHN_INVALID;
                why = "token too long";
            } else {
                st = bearer(iam, s, tok.p, tok.n, aud, who, &why);
            }
        } else {
            st = RP_AUTHN_INVALID;
            why = "credential type not accepted here";
        }
    } else if (auth.p != NULL) {
        st = RP_AUTHN_INVALID;
        why = "unsupported authorization scheme";
    } else if (policy->accept & RP_AUTHN_CLIENT_CERT) {
        st = client_cert(iam, s, req, who, &why);
    }
    if (st != RP_AUTHN_OK)
        rp__iam_audit(iam, req, NULL, "authn", policy->audience ? policy->audience : "", req->path,
                      "failure",
                      json_pack("{s:s,s:s}", "status", rp_authn_status_name(st), "reason", why));
    rp__iam_snap_done(iam, s);
    return st;
}

rp_authn_status rp_authn_bearer(rp_iam *iam, const char *tok, size_t n, const char *audience,
                                rp_identity *who)
{
    rp__snap *s = rp__iam_snap(iam);
    const char *aud = rp__iam_resource(iam, audience);
    const char *why = "";
    rp_authn_status st;

    memset(who, 0, sizeof(*who));
    st = aud == NULL || n > RP_JWT_MAX_LEN ? RP_AUTHN_INVALID
                                           : bearer(iam, s, tok, n, aud, who, &why);
    rp__iam_snap_done(iam, s);
    return st;
}

/* The JWT's payload, decoded but NOT verified (to pick the audience to verify against, and,
 * once verified, as its claims). NULL when it is not a JWT with a JSON object payload. */
static json_t *payload(const char *tok, size_t n)
{
    const char *d1 = memchr(tok, '.', n), *d2;
    unsigned char *raw;
    size_t len = 0;
    json_t *j = NULL;

    if (d1 == NULL)
        return NULL;
    d2 = memchr(d1 + 1, '.', (size_t)(tok + n - d1 - 1));
    if (d2 == NULL)
        return NULL;
    raw = rp_malloc((size_t)(d2 - d1) + 1);
    if (raw == NULL)
        return NULL;
    if (rp_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), raw, (size_t)(d2 - d1), &len) == 0)
        j = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
    rp_free(raw);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

rp_authn_status rp_authn_app(rp_iam *iam, rp_req *req, const char *const *auds, size_t n,
                             rp_identity *who, json_t **claims, const char **tok, size_t *tlen)
{
    rp_str auth = rp_req_header(req, "authorization");
    rp_authn_status st = RP_AUTHN_INVALID;
    const char *why = "no credential", *aud = NULL;
    json_t *pl = NULL;
    rp__snap *s;

    memset(who, 0, sizeof(*who));
    *claims = NULL;
    *tok = NULL;
    *tlen = 0;
    if (auth.p == NULL)
        return RP_AUTHN_MISSING;
    s = rp__iam_snap(iam);
    if (rp_req_header_count(req, "authorization") > 1) {
        why = "more than one Authorization header";
    } else if (auth.n <= 7 || !rp_str_eq_nocase((rp_str){auth.p, 7}, "bearer ")) {
        why = "unsupported authorization scheme";
    } else {
        rp_str t = rp_str_trim((rp_str){auth.p + 7, auth.n - 7});
        const char *claimed;
        pl = t.n <= RP_JWT_MAX_LEN ? payload(t.p, t.n) : NULL;
        claimed = json_string_value(json_object_get(pl, "aud"));
        why = pl == NULL ? "not a token" : "audience";
        st = pl == NULL ? RP_AUTHN_INVALID : RP_AUTHN_AUDIENCE;
        /* One trailing '/' is not a difference (https://NAME.D and https://NAME.D/); the
         * token is then verified against its own spelling. */
        for (size_t i = 0; claimed != NULL && i < n; i++) {
            size_t a = auds[i] ? strlen(auds[i]) : 0, c = strlen(claimed);
            if (a > 0 && auds[i][a - 1] == '/')
                a--;
            if (c > 0 && claimed[c - 1] == '/')
                c--;
            if (auds[i] != NULL && a == c && strncmp(auds[i], claimed, a) == 0)
                aud = claimed;
        }
        if (aud != NULL)
            st = bearer(iam, s, t.p, t.n, aud, who, &why);
        if (st == RP_AUTHN_OK) {
            *claims = pl;
            pl = NULL;
            *tok = t.p;
            *tlen = t.n;
        }
    }
    if (st != RP_AUTHN_OK)
        rp__iam_audit(iam, req, NULL, "authn", "app", req->path, "failure",
                      json_pack("{s:s,s:s}", "status", rp_authn_status_name(st), "reason", why));
    json_decref(pl);
    rp__iam_snap_done(iam, s);
    return st;
}

void rp_authn_reply(rp_req *req, rp_authn_status status)
{
    if (status == RP_AUTHN_MISSING) {
        rp_resp_header(req, "WWW-Authenticate", "Bearer realm=\"rampart\"");
        rp_resp_error(req, 401, "Unauthorized", "a bearer token is required");
        return;
    }
    rp_resp_header(req, "WWW-Authenticate", "Bearer realm=\"rampart\", error=\"invalid_token\"");
    switch (status) {
    case RP_AUTHN_EXPIRED:
        rp_resp_error(req, 401, "ExpiredAuthenticationToken",
                      "the access token has expired or is not yet valid");
        break;
    case RP_AUTHN_AUDIENCE:
        rp_resp_error(req, 401, "InvalidAuthenticationTokenAudience",
                      "the access token was issued for another resource");
        break;
    default:
        rp_resp_error(req, 401, "InvalidAuthenticationToken", "the access token is not valid");
        break;
    }
}

static int authz(rp_iam *iam, rp_req *req, const rp_identity *who, const char *action, int data,
                 const char *scope, const char *role_id, rp_authz_grant *grant)
{
    rp__snap *s;
    rp_rbac_decision why = {0, NULL, NULL, NULL};
    int ok;

    if (who->kind == RP_PRINCIPAL_ADMIN) {
        /* The administrator is Owner at "/": every control-plane action, no data actions
         * (like Owner in Azure; data access takes a data role). */
        ok = !data;
        if (ok && grant != NULL) {
            rp_strlcpy(grant->role, "Owner", sizeof(grant->role));
            rp_strlcpy(grant->at, "/", sizeof(grant->at));
            return ok;
        }
        rp__iam_audit(iam, req, who->id, "authz", action, scope, ok ? "allowed" : "denied",
                      json_pack("{s:s,s:s}", "role", "Owner", "via", who->via));
        return ok;
    }
    s = rp__iam_snap(iam);
    ok = role_id
             ? rp_rbac_check_assignment(s->rbac, who->id, action, scope, role_id, rp__now(), &why)
             : rp_rbac_check(s->rbac, who->id, action, data, scope, rp__now(), &why);
    if (ok && grant != NULL) {
        rp_strlcpy(grant->role, why.role_name ? why.role_name : "", sizeof(grant->role));
        rp_strlcpy(grant->at, why.assignment_scope ? why.assignment_scope : "", sizeof(grant->at));
    } else {
        rp__iam_audit(iam, req, who->id, "authz", action, scope, ok ? "allowed" : "denied",
                      ok ? json_pack("{s:s?,s:s?,s:s}", "role", why.role_name, "at",
                                     why.assignment_scope, "via", who->via)
                         : json_pack("{s:s}", "via", who->via));
    }
    rp__iam_snap_done(iam, s);
    return ok;
}

int rp_authz_deferred(rp_iam *iam, rp_req *req, const rp_identity *who, const char *action,
                      int data, const char *scope, rp_authz_grant *grant)
{
    return authz(iam, req, who, action, data, scope, NULL, grant);
}

int rp_authz(rp_iam *iam, rp_req *req, const rp_identity *who, const char *action, int data,
             const char *scope)
{
    return authz(iam, req, who, action, data, scope, NULL, NULL);
}

int rp_authz_assignment(rp_iam *iam, rp_req *req, const rp_identity *who, const char *action,
                        const char *scope, const char *role_id)
{
    return authz(iam, req, who, action, 0, scope, role_id, NULL);
}

void rp_authz_reply(rp_req *req, const rp_identity *who, const char *action, const char *scope)
{
    char msg[1200];

    snprintf(msg, sizeof(msg),
             "The client '%s' with object id '%s' does not have authorization to perform action "
             "'%s' over scope '%s' or the scope is invalid.",
             who->name, who->id, action, scope);
    rp_resp_error(req, 403, "AuthorizationFailed", msg);
}

int rp_iam_identity_of(rp_iam *iam, const char *id, rp_identity *who)
{
    rp__snap *s = rp__iam_snap(iam);
    const rp__principal *p = id ? rp__iam_principal(s, id) : NULL;

    memset(who, 0, sizeof(*who));
    if (p != NULL) {
        rp_strlcpy(who->id, p->id, sizeof(who->id));
        rp_strlcpy(who->client_id, p->client_id, sizeof(who->client_id));
        rp_strlcpy(who->name, p->name ? p->name : "", sizeof(who->name));
        who->kind = p->kind;
        who->via = "platform";
    }
    rp__iam_snap_done(iam, s);
    return p != NULL ? 0 : RP_ENOENT;
}

int rp_iam_audit_sync(rp_iam *iam, const rp_identity *who, const char *kind, const char *action,
                      const char *scope, const char *result, json_t *detail, unsigned flags)
{
    rp_audit_rec rec = {
        who ? who->id : "anonymous", kind, action, scope ? scope : "/", result, "", "", detail};

    return rp_audit_log_sync(iam->audit, &rec, flags);
}

int rp_iam_audit(rp_iam *iam, const rp_req *req, const rp_identity *who, const char *kind,
                 const char *action, const char *scope, const char *result, json_t *detail,
                 unsigned flags, void (*done)(int status, void *arg), void *arg)
{
    rp__loop *l = rp__iam_loop();
    rp_audit_rec rec = {who ? who->id : "anonymous",
                        kind,
                        action,
                        scope ? scope : "/",
                        result,
                        req ? req->id : "",
                        req && req->client_ip ? req->client_ip : "",
                        detail};

    if (l == NULL || l->iam != iam || l->aport == NULL)
        return RP_ECLOSED;
    return rp_audit_log(l->aport, &rec, flags, done, arg);
}
