/*
 * signin.c - interactive sign-in for apps with built-in authentication (see signin.h).
 *
 * Workload: sign-ins and sign-outs are rare (a few per user per day); rp_signin_session runs on
 * every request of a signed-in browser, so it only opens the cookie (AES-GCM + a small JSON
 * parse), asks the revocation list and looks the user up in the identity snapshot.
 */
#include "sites/signin.h"
#include "base/err.h"
#include "base/rand.h"
#include "base/str.h"
#include "http/cookie.h"
#include "http/query.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define PROVIDER "aad"

int rp_signin_local_path(const char *path)
{
    size_t n = 0;

    if (path == NULL || path[0] != '/' || path[1] == '/' || path[1] == '\\')
        return 0;
    for (; path[n] != '\0'; n++)
        if ((unsigned char)path[n] < 0x21 || (unsigned char)path[n] > 0x7e || path[n] == '\\' ||
            n >= RP_SIGNIN_TARGET_MAX)
            return 0;
    return 1;
}

/* What a sealed value is bound to: the app and its instance ("NAME/ID"). */
static const char *binding(const rp_signin_ctx *c, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", c->app, c->app_id != NULL ? c->app_id : "");
    return out;
}

static void audit(const rp_signin_ctx *c, rp_req *req, const rp_identity *who, const char *action,
                  const char *result, const char *reason)
{
    json_t *d = json_pack("{s:s,s:s?}", "app", c->app, "reason", reason);

    (void)rp_iam_audit(c->iam, req, who, "authn", action, c->scope, result, d, 0, NULL, NULL);
    json_decref(d);
}

static void set_cookie(rp_req *req, const char *name, const char *value, int64_t max_age)
{
    char h[RP_SESSION_VALUE_MAX + 160];

    snprintf(h, sizeof(h), "%s=%s; Max-Age=%lld; Path=/; Secure; HttpOnly; SameSite=Lax", name,
             value, (long long)max_age);
    rp_resp_header(req, "Set-Cookie", h);
    OPENSSL_cleanse(h, sizeof(h));
}

static void clear_cookie(rp_req *req, const char *name)
{
    set_cookie(req, name, "", 0);
}

static void redirect(rp_req *req, const char *location)
{
    rp_resp_header(req, "Cache-Control", "no-store");
    rp_resp_header(req, "Location", location);
    rp_resp_send(req, 302, NULL, NULL, 0);
}

static int random_b64(size_t bytes, char *out, size_t cap)
{
    unsigned char r[32];
    int rc;

    if (bytes > sizeof(r) || rp_random_bytes(r, bytes) != 0)
        return RP_ECRYPTO;
    rc = rp_b64url_encode(r, bytes, out, cap) == 0 ? 0 : RP_ETOOBIG;
    OPENSSL_cleanse(r, sizeof(r));
    return rc;
}

/* GET {prefix}/login/aad: the sign-in state into a sealed cookie, the browser to the token
 * service. */
static void start(const rp_signin_ctx *c, rp_req *req)
{
    const char *target = rp_req_query(req, "post_login_redirect_uri");
    char state[48], verifier[48], nonce[48], challenge[48], sealed[RP_SESSION_VALUE_MAX];
    char loc[4096], e1[512], cb[700], e2[2100], bind[160];
    unsigned char h[SHA256_DIGEST_LENGTH];
    json_t *st = NULL;
    int n;

    if (target == NULL)
        target = "/";
    if (!rp_signin_local_path(target)) {
        rp_resp_error(req, 400, "BadRequest",
                      "post_login_redirect_uri must be a path on this site (\"/...\")");
        return;
    }
    if (random_b64(16, state, sizeof(state)) != 0 ||
        random_b64(32, verifier, sizeof(verifier)) != 0 ||
        random_b64(16, nonce, sizeof(nonce)) != 0 ||
        SHA256((const unsigned char *)verifier, strlen(verifier), h) == NULL ||
        rp_b64url_encode(h, sizeof(h), challenge, sizeof(challenge)) != 0) {
        rp_resp_error(req, 500, "InternalError", "no randomness");
        goto out;
    }
    st = json_pack("{s:s,s:s,s:s,s:s,s:I}", "s", state, "v", verifier, "n", nonce, "t", target,
                   "exp", (json_int_t)(c->now + RP_SIGNIN_STATE_TTL_S));
    if (st == NULL || rp_session_seal(c->box, binding(c, bind, sizeof(bind)), "login", st, sealed,
                                      sizeof(sealed)) != 0) {
        rp_resp_error(req, 500, "InternalError", "the sign-in state could not be sealed");
        goto out;
    }
    snprintf(cb, sizeof(cb), "%s%s%s/login/" PROVIDER "/callback", c->origin, c->port, c->prefix);
    if (rp_query_encode(c->origin, e1, sizeof(e1)) != 0 ||
        rp_query_encode(cb, e2, sizeof(e2)) != 0) {
        rp_resp_error(req, 500, "InternalError", "the app's address is too long");
        goto out;
    }
    n = snprintf(loc, sizeof(loc),
                 "%s/%s/oauth2/v2.0/authorize?client_id=%s&response_type=code&redirect_uri=%s"
                 "&scope=openid%%20profile&response_mode=query&state=%s&nonce=%s"
                 "&code_challenge=%s&code_challenge_method=S256",
                 rp_iam_login(c->iam), rp_iam_tenant(c->iam), e1, e2, state, nonce, challenge);
    if (n < 0 || (size_t)n >= sizeof(loc)) {
        rp_resp_error(req, 500, "InternalError", "the app's address is too long");
        goto out;
    }
    set_cookie(req, RP_SIGNIN_STATE_COOKIE, sealed, RP_SIGNIN_STATE_TTL_S);
    redirect(req, loc);
out:
    OPENSSL_cleanse(verifier, sizeof(verifier));
    OPENSSL_cleanse(sealed, sizeof(sealed));
    if (st != NULL) {
        json_t *v = json_object_get(st, "v");
        if (json_is_string(v)) /* jansson keeps its own copy of the verifier */
            OPENSSL_cleanse((char *)json_string_value(v), strlen(json_string_value(v)));
    }
    json_decref(st);
}

static void refuse(const rp_signin_ctx *c, rp_req *req, const rp_identity *who, int status,
                   const char *code, const char *why)
{
    audit(c, req, who, "signin", "failure", why);
    clear_cookie(req, RP_SIGNIN_STATE_COOKIE);
    rp_resp_header(req, "Cache-Control", "no-store");
    rp_resp_error(req, status, code, why);
}

/* GET {prefix}/login/aad/callback: state checked against the cookie, the code redeemed, the
 * session cookie set. */
static void callback(const rp_signin_ctx *c, rp_req *req)
{
    const char *code = rp_req_query(req, "code"), *state = rp_req_query(req, "state");
    const char *error = rp_req_query(req, "error"), *s = NULL, *v = NULL, *nn = NULL, *t = NULL;
    char redirect_uri[1024], sid[RP_SESSION_ID_LEN + 1], sealed[RP_SESSION_VALUE_MAX], bind[160];
    rp_iam_signin who;
    rp_identity id;
    json_t *st = NULL, *sess = NULL;
    rp_str ck;
    int rc;

    memset(&who, 0, sizeof(who));
    memset(&id, 0, sizeof(id));
    rc = rp_cookie_get(req->head, RP_SIGNIN_STATE_COOKIE, &ck);
    if (rc != 0 ||
        rp_session_open(c->box, binding(c, bind, sizeof(bind)), "login", ck.p, ck.n, &st) != 0) {
        refuse(c, req, NULL, 401, "SignInStateMissing",
               rc == RP_EEXIST ? "more than one sign-in state cookie: sign in again"
                               : "no sign-in is in progress in this browser (or it was started "
                                 "before the server restarted): sign in again");
        goto out;
    }
    s = json_string_value(json_object_get(st, "s"));
    v = json_string_value(json_object_get(st, "v"));
    nn = json_string_value(json_object_get(st, "n"));
    t = json_string_value(json_object_get(st, "t"));
    if (s == NULL || v == NULL || nn == NULL || t == NULL || !rp_signin_local_path(t) ||
        json_integer_value(json_object_get(st, "exp")) <= c->now) {
        refuse(c, req, NULL, 401, "SignInExpired", "the sign-in took too long: sign in again");
        goto out;
    }
    if (state == NULL || !rp_ct_equal(state, strlen(state), s, strlen(s))) {
        refuse(c, req, NULL, 401, "SignInStateMismatch",
               "the answer from the token service does not belong to this browser's sign-in");
        goto out;
    }
    if (error != NULL || code == NULL) {
        refuse(c, req, NULL, 401, "SignInFailed",
               error != NULL ? "the token service refused the sign-in"
                             : "the token service sent no code");
        goto out;
    }
    snprintf(redirect_uri, sizeof(redirect_uri), "%s%s%s/login/" PROVIDER "/callback", c->origin,
             c->port, c->prefix);
    rc = rp_iam_signin_redeem(c->iam, code, c->origin, redirect_uri, v, &who);
    if (rc == 0 && !rp_ct_equal(who.nonce, strlen(who.nonce), nn, strlen(nn)))
        rc = RP_EPERM;
    if (rc == 0 && rp_iam_identity_of(c->iam, who.principal_id, &id) != 0)
        rc = RP_EPERM;
    if (rc != 0) {
        refuse(c, req, NULL, 401, "SignInFailed",
               rc == RP_ENOENT ? "the sign-in code is unknown or was used already: sign in again"
                               : "the sign-in code does not match this sign-in: sign in again");
        goto out;
    }
    if (rp_session_id(sid) != 0 ||
        (sess = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I}", "sid", sid, "oid", who.principal_id,
                          "name", who.name, "iat", (json_int_t)c->now, "exp",
                          (json_int_t)(c->now + c->lifetime_s), "at", (json_int_t)who.auth_time,
                          "g", (json_int_t)rp_session_generation(c->box))) == NULL ||
        rp_session_seal(c->box, binding(c, bind, sizeof(bind)), "session", sess, sealed,
                        sizeof(sealed)) != 0) {
        refuse(c, req, &id, 500, "InternalError", "the session could not be sealed");
        goto out;
    }
    audit(c, req, &id, "signin", "success", NULL);
    clear_cookie(req, RP_SIGNIN_STATE_COOKIE);
    set_cookie(req, RP_SIGNIN_COOKIE, sealed, c->lifetime_s);
    redirect(req, t);
out:
    OPENSSL_cleanse(sealed, sizeof(sealed));
    if (v != NULL && st != NULL)
        OPENSSL_cleanse((char *)v, strlen(v));
    json_decref(st);
    json_decref(sess);
}

/* GET {prefix}/logout: revoke the session (if any), clear its cookie, send the browser on. */
static void logout(const rp_signin_ctx *c, rp_req *req)
{
    const char *target = rp_req_query(req, "post_logout_redirect_uri");
    char complete[600], bind[160];
    json_t *sess = NULL;
    rp_str ck;

    if (target != NULL && !rp_signin_local_path(target)) {
        rp_resp_error(req, 400, "BadRequest",
                      "post_logout_redirect_uri must be a path on this site (\"/...\")");
        return;
    }
    if (rp_cookie_get(req->head, RP_SIGNIN_COOKIE, &ck) == 0 &&
        rp_session_open(c->box, binding(c, bind, sizeof(bind)), "session", ck.p, ck.n, &sess) ==
            0) {
        const char *sid = json_string_value(json_object_get(sess, "sid"));
        const char *oid = json_string_value(json_object_get(sess, "oid"));
        rp_identity id;
        if (sid != NULL)
            (void)rp_session_revoke(c->box, sid,
                                    (uint64_t)json_integer_value(json_object_get(sess, "g")),
                                    json_integer_value(json_object_get(sess, "exp")), c->now);
        if (oid == NULL || rp_iam_identity_of(c->iam, oid, &id) != 0)
            audit(c, req, NULL, "signout", "success", NULL);
        else
            audit(c, req, &id, "signout", "success", NULL);
    }
    json_decref(sess);
    clear_cookie(req, RP_SIGNIN_COOKIE);
    clear_cookie(req, RP_SIGNIN_STATE_COOKIE);
    if (target == NULL) {
        snprintf(complete, sizeof(complete), "%s/logout/complete", c->prefix);
        target = complete;
    }
    redirect(req, target);
}

int rp_signin_serve(const rp_signin_ctx *c, rp_req *req, const char *rest)
{
    int get = req->method == RP_METHOD_GET || req->method == RP_METHOD_HEAD;

    if (strcmp(rest, "/logout/complete") == 0) {
        static const char page[] = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                                   "<title>Signed out</title></head><body><p>You have signed "
                                   "out.</p></body></html>";
        rp_resp_header(req, "Cache-Control", "no-store");
        rp_resp_send(req, 200, "text/html; charset=utf-8", page, sizeof(page) - 1);
        return 1;
    }
    if (strcmp(rest, "/logout") == 0) {
        if (!get) {
            rp_resp_header(req, "Allow", "GET, HEAD");
            rp_resp_error(req, 405, "MethodNotAllowed", "sign out with GET");
        } else {
            logout(c, req);
        }
        return 1;
    }
    if (strncmp(rest, "/login", 6) != 0 || (rest[6] != '\0' && rest[6] != '/'))
        return 0;
    if (strcmp(rest, "/login/" PROVIDER) == 0 ||
        strcmp(rest, "/login/" PROVIDER "/callback") == 0) {
        if (!get) {
            rp_resp_header(req, "Allow", "GET, HEAD");
            rp_resp_error(req, 405, "MethodNotAllowed",
                          "only the server-directed sign-in (GET) is supported; API clients send "
                          "a bearer token from the token service instead");
        } else if (rest[7 + strlen(PROVIDER)] == '\0') {
            start(c, req);
        } else {
            callback(c, req);
        }
        return 1;
    }
    rp_resp_error(req, 404, "NotFound",
                  "unknown identity provider: this platform signs in with /login/" PROVIDER);
    return 1;
}

/*
 * 1 when the cookie may count for req: a safe method, or a request the browser says comes from
 * the app's own pages (Sec-Fetch-Site same-origin or none, Origin the app's). Other apps under D
 * are same-site, so SameSite=Lax alone would let them post with the user's session.
 */
static int same_origin(const rp_signin_ctx *c, rp_req *req)
{
    rp_str sfs = rp_req_header(req, "sec-fetch-site"), origin = rp_req_header(req, "origin");
    const char *port = c->port;
    size_t ol = strlen(c->origin), pl = strlen(port);

    if (req->method == RP_METHOD_GET || req->method == RP_METHOD_HEAD ||
        req->method == RP_METHOD_OPTIONS)
        return 1;
    if (sfs.p != NULL && !rp_str_eq_nocase(sfs, "same-origin") && !rp_str_eq_nocase(sfs, "none"))
        return 0;
    if (origin.p != NULL && (origin.n != ol + pl || strncasecmp(origin.p, c->origin, ol) != 0 ||
                             memcmp(origin.p + ol, port, pl) != 0))
        return 0;
    return 1;
}

rp_authn_status rp_signin_session(const rp_signin_ctx *c, rp_req *req, json_t **claims,
                                  rp_identity *who)
{
    const char *sid, *oid, *why = NULL;
    char bind[160];
    json_t *sess = NULL;
    rp_authn_status st = RP_AUTHN_INVALID;
    int64_t iat, exp;
    rp_str ck;
    int rc;

    *claims = NULL;
    memset(who, 0, sizeof(*who));
    rc = rp_cookie_get(req->head, RP_SIGNIN_COOKIE, &ck);
    if (rc == RP_ENOENT)
        return RP_AUTHN_MISSING;
    if (rc != 0) {
        why = "more than one session cookie";
        goto out;
    }
    if (!same_origin(c, req)) {
        why = "a cross-origin request that changes state carried the session cookie";
        goto out;
    }
    if (rp_session_open(c->box, binding(c, bind, sizeof(bind)), "session", ck.p, ck.n, &sess) !=
        0) {
        why = "session cookie not sealed by this server for this app (or the server restarted)";
        goto out;
    }
    sid = json_string_value(json_object_get(sess, "sid"));
    oid = json_string_value(json_object_get(sess, "oid"));
    iat = json_integer_value(json_object_get(sess, "iat"));
    exp = json_integer_value(json_object_get(sess, "exp"));
    if (sid == NULL || oid == NULL) {
        why = "session cookie without an id";
        goto out;
    }
    /* A lifetime shortened since the sign-in applies to the sessions already out there. */
    if (exp <= c->now || iat + c->lifetime_s <= c->now) {
        st = RP_AUTHN_EXPIRED;
        why = "session expired";
        goto out;
    }
    if (rp_session_revoked(c->box, sid, (uint64_t)json_integer_value(json_object_get(sess, "g")),
                           c->now) ||
        rp_iam_identity_of(c->iam, oid, who) != 0) {
        st = RP_AUTHN_REVOKED;
        why = "session signed out, or its user was deleted";
        goto out;
    }
    *claims = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:[s]}", "aud",
                        c->origin, "iss", rp_iam_issuer(c->iam), "sub", oid, "oid", oid, "tid",
                        rp_iam_tenant(c->iam), "name", who->name, "preferred_username", who->name,
                        "idtyp", "user", "azp", c->origin, "iat", (json_int_t)iat, "exp",
                        (json_int_t)exp, "auth_time",
                        json_integer_value(json_object_get(sess, "at")), "sid", sid, "amr", "pwd");
    if (*claims == NULL) {
        why = "out of memory";
        goto out;
    }
    who->via = "session-cookie";
    st = RP_AUTHN_OK;
out:
    if (st != RP_AUTHN_OK) {
        json_t *d = json_pack("{s:s,s:s,s:s}", "status", rp_authn_status_name(st), "reason", why,
                              "app", c->app);
        (void)rp_iam_audit(c->iam, req, NULL, "authn", "app.session", c->scope, "failure", d, 0,
                           NULL, NULL);
        json_decref(d);
        memset(who, 0, sizeof(*who));
    }
    json_decref(sess);
    return st;
}
