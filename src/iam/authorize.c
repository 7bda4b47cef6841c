/*
 * authorize.c - interactive sign-in at the token service: the OAuth 2.0 authorization endpoint
 * (code flow with PKCE S256) that built-in authentication (Easy Auth) sends browsers to, and
 * the redemption of its codes (rp_iam_signin_redeem).
 *
 *   GET  /{tenant}/oauth2/v2.0/authorize?client_id=https://APP.D&response_type=code
 *        &redirect_uri=https://APP.D[:port]/...&state=..&nonce=..&code_challenge=..
 *        &code_challenge_method=S256                        -> the sign-in form
 *   POST the same path, the form's fields + username + secret -> 302 redirect_uri?code&state
 *
 * Clients are the platform's apps only: client_id is an existing app's origin and redirect_uri
 * must be on that origin (scheme, host and this server's port), so a code can never be sent to
 * a host the platform does not serve. Until both check out, errors are shown as a page and never
 * redirected (RFC 6749 §4.1.2.1). Users only: service principals have no interactive sign-in.
 *
 * Codes are 256-bit random, kept only as SHA-256 hashes in memory, single use, valid for
 * RP__CODE_TTL_S and bound to client, redirect_uri and the PKCE challenge. Redemption happens
 * in-process (the app's callback calls rp_iam_signin_redeem), so the token endpoint does not
 * take authorization_code grants and the discovery document does not advertise them.
 *
 * Cross-site request forgery of the form (a login CSRF would sign a victim in as the attacker)
 * is stopped twice: the POST must carry the value of a __Host- cookie set with the form (a
 * sibling host under D cannot plant a __Host- cookie), and a browser's Origin header, when
 * present, must be the token service's own. The page may not be framed.
 */
#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/rand.h"
#include "base/str.h"
#include "http/cookie.h"
#include "http/query.h"
#include "iam/iam_int.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define RP__STATE_MAX      512
#define RP__REDIRECT_MAX   512
#define RP__CSRF_COOKIE    "__Host-rampart-signin"
#define RP__CSRF_MAX_AGE_S 900
#define RP__PAGE_MAX       (32 * 1024)

struct rp__code {
    unsigned char hash[32]; /* SHA-256 of the code; all zero = free slot */
    char client_id[300];
    char redirect_uri[RP__REDIRECT_MAX + 1];
    char challenge[44];
    char nonce[RP_IAM_NONCE_MAX + 1];
    char principal_id[37];
    char name[RP_IAM_NAME_MAX + 1];
    int64_t expires_at, auth_time;
};

/* An authorize request's parameters, checked. */
typedef struct areq {
    const char *client_id, *redirect_uri, *response_type, *state, *nonce, *challenge, *method,
        *scope, *mode, *login_hint;
} areq;

/* ---- the code table ----------------------------------------------------------------------- */

int rp__iam_codes_init(rp_iam *iam)
{
    return pthread_mutex_init(&iam->code_lock, NULL) == 0 ? 0 : RP_ENOMEM;
}

void rp__iam_codes_free(rp_iam *iam)
{
    if (iam->codes != NULL) {
        OPENSSL_cleanse(iam->codes, RP__CODES_MAX * sizeof(*iam->codes));
        rp_free(iam->codes);
    }
    pthread_mutex_destroy(&iam->code_lock);
}

static int slot_free(const struct rp__code *c)
{
    static const unsigned char zero[32];
    return memcmp(c->hash, zero, 32) == 0;
}

/* Stores c (its hash filled in). 0, RP_ETOOBIG when RP__CODES_MAX unexpired codes wait, or
 * RP_ENOMEM. */
static int code_put(rp_iam *iam, const struct rp__code *c, int64_t now)
{
    int rc = RP_ETOOBIG;

    pthread_mutex_lock(&iam->code_lock);
    if (iam->codes == NULL && (iam->codes = rp_calloc(RP__CODES_MAX, sizeof(*c))) == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    {
        struct rp__code *slot = NULL;
        size_t mine = 0;
        /* One user cannot hold the table: at most RP__CODES_PER_USER of the waiting codes. */
        for (size_t i = 0; i < RP__CODES_MAX; i++) {
            struct rp__code *s = &iam->codes[i];
            if (!slot_free(s) && s->expires_at > now)
                mine += strcmp(s->principal_id, c->principal_id) == 0;
            else if (slot == NULL)
                slot = s;
        }
        if (slot != NULL && mine < RP__CODES_PER_USER) {
            *slot = *c;
            rc = 0;
        }
    }
out:
    pthread_mutex_unlock(&iam->code_lock);
    return rc;
}

/* Takes the code whose hash is h out of the table (single use): 0 and *out, or RP_ENOENT. */
static int code_take(rp_iam *iam, const unsigned char h[32], struct rp__code *out)
{
    int rc = RP_ENOENT;

    pthread_mutex_lock(&iam->code_lock);
    for (size_t i = 0; iam->codes != NULL && i < RP__CODES_MAX; i++) {
        struct rp__code *s = &iam->codes[i];
        if (slot_free(s) || CRYPTO_memcmp(s->hash, h, 32) != 0)
            continue;
        *out = *s;
        OPENSSL_cleanse(s, sizeof(*s));
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&iam->code_lock);
    return rc;
}

int rp__iam_code_issue(rp_iam *iam, const char *client_id, const char *redirect_uri,
                       const char *challenge, const char *nonce, const char *principal_id,
                       const char *name, int64_t now, char code[RP__CODE_LEN + 1])
{
    struct rp__code c;
    unsigned char raw[32];
    char tmp[48];
    int rc = RP_ECRYPTO;

    memset(&c, 0, sizeof(c));
    if (rp_strlcpy(c.client_id, client_id, sizeof(c.client_id)) != 0 ||
        rp_strlcpy(c.redirect_uri, redirect_uri, sizeof(c.redirect_uri)) != 0 ||
        rp_strlcpy(c.challenge, challenge, sizeof(c.challenge)) != 0 ||
        rp_strlcpy(c.nonce, nonce != NULL ? nonce : "", sizeof(c.nonce)) != 0 ||
        rp_strlcpy(c.principal_id, principal_id, sizeof(c.principal_id)) != 0 ||
        rp_strlcpy(c.name, name, sizeof(c.name)) != 0)
        return RP_EINVAL;
    if (rp_random_bytes(raw, sizeof(raw)) != 0 ||
        rp_b64url_encode(raw, sizeof(raw), tmp, sizeof(tmp)) != 0 ||
        rp__iam_sha256(tmp, strlen(tmp), c.hash) != 0)
        goto out;
    c.auth_time = now;
    c.expires_at = now + RP__CODE_TTL_S;
    if ((rc = code_put(iam, &c, now)) == 0)
        memcpy(code, tmp, RP__CODE_LEN + 1);
out:
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(tmp, sizeof(tmp));
    OPENSSL_cleanse(&c, sizeof(c));
    return rc;
}

int rp_iam_signin_redeem(rp_iam *iam, const char *code, const char *client_id,
                         const char *redirect_uri, const char *verifier, rp_iam_signin *out)
{
    struct rp__code c;
    unsigned char h[32], vh[32];
    char enc[44];
    const rp__principal *p;
    rp__snap *s;
    int rc;

    memset(out, 0, sizeof(*out));
    if (code == NULL || verifier == NULL || strlen(code) != RP__CODE_LEN)
        return RP_EINVAL;
    if (rp__iam_sha256(code, strlen(code), h) != 0)
        return RP_ENOMEM;
    if ((rc = code_take(iam, h, &c)) != 0)
        return rc;
    /* Taken: from here on every outcome, a malformed verifier included, has used it up. */
    rc = strlen(verifier) < 43 || strlen(verifier) > 128 ? RP_EINVAL : RP_EPERM;
    if (rc == RP_EINVAL || c.expires_at <= rp__now() || strcmp(c.client_id, client_id) != 0 ||
        strcmp(c.redirect_uri, redirect_uri) != 0)
        goto out;
    /* PKCE S256: BASE64URL(SHA-256(verifier)) must be the challenge the request carried. */
    if (rp__iam_sha256(verifier, strlen(verifier), vh) != 0 ||
        rp_b64url_encode(vh, sizeof(vh), enc, sizeof(enc)) != 0 ||
        !rp_ct_equal(enc, strlen(enc), c.challenge, strlen(c.challenge)))
        goto out;
    /* The user may have been deleted in the seconds since. */
    s = rp__iam_snap(iam);
    p = rp__iam_principal(s, c.principal_id);
    if (p != NULL && p->kind == RP_PRINCIPAL_USER) {
        memcpy(out->principal_id, c.principal_id, sizeof(out->principal_id));
        rp_strlcpy(out->name, c.name, sizeof(out->name));
        rp_strlcpy(out->nonce, c.nonce, sizeof(out->nonce));
        out->auth_time = c.auth_time;
        rc = 0;
    }
    rp__iam_snap_done(iam, s);
out:
    OPENSSL_cleanse(&c, sizeof(c));
    return rc;
}

/* ---- pages -------------------------------------------------------------------------------- */

static int html(rp_buf *b, const char *s)
{
    int rc = 0;

    for (; rc == 0 && s != NULL && *s != '\0'; s++) {
        switch (*s) {
        case '&': rc = rp_buf_append_str(b, "&amp;"); break;
        case '<': rc = rp_buf_append_str(b, "&lt;"); break;
        case '>': rc = rp_buf_append_str(b, "&gt;"); break;
        case '"': rc = rp_buf_append_str(b, "&quot;"); break;
        case '\'': rc = rp_buf_append_str(b, "&#39;"); break;
        default: rc = rp_buf_push(b, *s);
        }
    }
    return rc;
}

/* Cache-Control: no-store is already set for everything under the token service (login.c). */
static void page_headers(rp_req *req)
{
    rp_resp_header(req, "Pragma", "no-cache");
    rp_resp_header(req, "X-Frame-Options", "DENY");
    rp_resp_header(req, "Referrer-Policy", "no-referrer");
    rp_resp_header(req, "Content-Security-Policy",
                   "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                   "frame-ancestors 'none'; base-uri 'none'");
}

static const char *const head =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>Sign in - rampart</title><style>body{font:16px system-ui,sans-serif;max-width:26em;"
    "margin:4em auto;padding:0 1em}label{display:block;margin-top:1em}input{width:100%;"
    "padding:.4em;box-sizing:border-box}button{margin-top:1.5em;padding:.5em 2em}"
    ".err{color:#a00}</style></head><body>";

/* An error shown in the browser, never redirected (the redirect target is not trusted yet). */
static void error_page(rp_req *req, int status, const char *error, const char *desc)
{
    rp_buf b;

    rp_buf_init(&b, RP__PAGE_MAX);
    if (rp_buf_append_str(&b, head) != 0 ||
        rp_buf_append_str(&b, "<h1>Sign-in failed</h1><p>") != 0 || html(&b, error) != 0 ||
        rp_buf_append_str(&b, ": ") != 0 || html(&b, desc) != 0 ||
        rp_buf_append_str(&b, "</p></body></html>") != 0) {
        rp_buf_free(&b);
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    page_headers(req);
    rp_resp_send(req, status, "text/html; charset=utf-8", b.data, b.len);
    rp_buf_free(&b);
}

static const char *const hidden[] = {
    "client_id",      "redirect_uri",          "response_type", "state",        "nonce",
    "code_challenge", "code_challenge_method", "scope",         "response_mode"};

static const char *areq_get(const areq *a, size_t i)
{
    const char *v[] = {a->client_id, a->redirect_uri, a->response_type, a->state, a->nonce,
                       a->challenge, a->method,       a->scope,         a->mode};
    return v[i];
}

/* The sign-in form: the request's parameters as hidden fields, a fresh CSRF value in both the
 * form and a __Host- cookie. */
static void form_page(rp_iam *iam, rp_req *req, int status, const areq *a, const char *user,
                      const char *msg)
{
    unsigned char raw[32];
    char csrf[48], cookie[160];
    rp_buf b;
    int bad;

    if (rp_random_bytes(raw, sizeof(raw)) != 0 ||
        rp_b64url_encode(raw, sizeof(raw), csrf, sizeof(csrf)) != 0) {
        error_page(req, 500, "server_error", "no randomness");
        return;
    }
    rp_buf_init(&b, RP__PAGE_MAX);
    bad = rp_buf_append_str(&b, head) != 0 ||
          rp_buf_append_str(&b, "<h1>Sign in</h1><p>to <b>") != 0 || html(&b, a->client_id) != 0 ||
          rp_buf_append_str(&b, "</b> with your rampart user name and secret.</p>") != 0;
    if (!bad && msg != NULL)
        bad = rp_buf_append_str(&b, "<p class=\"err\" role=\"alert\">") != 0 ||
              html(&b, msg) != 0 || rp_buf_append_str(&b, "</p>") != 0;
    if (!bad)
        bad = rp_buf_appendf(&b, "<form method=\"post\" action=\"/%s/oauth2/v2.0/authorize\">",
                             iam->tenant) < 0;
    for (size_t i = 0; !bad && i < sizeof(hidden) / sizeof(hidden[0]); i++) {
        const char *v = areq_get(a, i);
        if (v == NULL)
            continue;
        bad = rp_buf_appendf(&b, "<input type=\"hidden\" name=\"%s\" value=\"", hidden[i]) < 0 ||
              html(&b, v) != 0 || rp_buf_append_str(&b, "\">") != 0;
    }
    if (!bad)
        bad = rp_buf_appendf(&b, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", csrf) < 0 ||
              rp_buf_append_str(&b, "<label>User name<input name=\"username\" "
                                    "autocomplete=\"username\" required value=\"") != 0 ||
              html(&b, user) != 0 ||
              rp_buf_append_str(&b, "\"></label><label>Secret<input name=\"secret\" "
                                    "type=\"password\" autocomplete=\"current-password\" "
                                    "required></label><button type=\"submit\">Sign in</button>"
                                    "</form></body></html>") != 0;
    if (bad) {
        rp_buf_free(&b);
        error_page(req, 500, "server_error", "the page is too large");
        return;
    }
    snprintf(cookie, sizeof(cookie),
             RP__CSRF_COOKIE "=%s; Max-Age=%d; Path=/; Secure; HttpOnly; "
                             "SameSite=Strict",
             csrf, RP__CSRF_MAX_AGE_S);
    page_headers(req);
    rp_resp_header(req, "Set-Cookie", cookie);
    rp_resp_send(req, status, "text/html; charset=utf-8", b.data, b.len);
    rp_buf_free(&b);
    OPENSSL_cleanse(raw, sizeof(raw));
}

/* ---- the request -------------------------------------------------------------------------- */

static int printable(const char *s, size_t max)
{
    size_t n = 0;

    for (; *s != '\0'; s++, n++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e || n >= max)
            return 0;
    return 1;
}

/*
 * Checks the client and its redirect_uri: 0 when client_id is an app's origin known to the token
 * service and redirect_uri is https on that host and this server's port, with a path and no
 * fragment; else *why says why (shown, never redirected).
 */
static int check_client(rp_iam *iam, const areq *a, const char **why)
{
    const char *canon, *port = iam->origin + 8 + strlen(iam->domain), *rest;
    size_t cl;

    if (a->client_id == NULL || a->redirect_uri == NULL) {
        *why = "client_id and redirect_uri are required.";
        return RP_EINVAL;
    }
    cl = strlen(a->client_id);
    canon = rp__iam_resource_match(iam, a->client_id, cl);
    /* Only an app's own origin, exactly as spelt canonically (no "/.default", no slash). */
    for (int i = 0; canon != NULL && i < RP__IAM_NRES; i++)
        if (strcmp(canon, iam->resources[i]) == 0)
            canon = NULL; /* the platform's own services are not clients */
    if (canon == NULL || strcmp(canon, a->client_id) != 0) {
        *why = "client_id must be the origin of an app on this platform (https://NAME.D).";
        return RP_EPERM;
    }
    /* Only the app's own sign-in callback: a code can go nowhere else, and the token service
     * never redirects to an arbitrary page of some app with text of a caller's choosing. */
    *why = "redirect_uri must be the client's own sign-in callback "
           "(https://NAME.D[:port]/.auth/login/aad/callback).";
    if (strlen(a->redirect_uri) > RP__REDIRECT_MAX ||
        !printable(a->redirect_uri, RP__REDIRECT_MAX) ||
        strncmp(a->redirect_uri, a->client_id, cl) != 0)
        return RP_EPERM;
    rest = a->redirect_uri + cl;
    if (strncmp(rest, port, strlen(port)) != 0 || rest[strlen(port)] != '/' ||
        strpbrk(rest, "#?\\") != NULL ||
        !rp_str_has_suffix_nocase((rp_str){rest, strlen(rest)}, "/login/aad/callback"))
        return RP_EPERM;
    *why = "";
    return 0;
}

/* Checks the rest once the redirect target is trusted: 0, or an OAuth error code and *why. */
static const char *check_request(const areq *a, const char **why)
{
    if (a->response_type == NULL || strcmp(a->response_type, "code") != 0) {
        *why = "Only response_type=code is supported.";
        return "unsupported_response_type";
    }
    if (a->mode != NULL && strcmp(a->mode, "query") != 0) {
        *why = "Only response_mode=query is supported.";
        return "invalid_request";
    }
    if (a->challenge == NULL || a->method == NULL || strcmp(a->method, "S256") != 0 ||
        strlen(a->challenge) != 43) {
        *why = "PKCE is required: code_challenge (43 characters) with code_challenge_method=S256.";
        return "invalid_request";
    }
    for (const char *c = a->challenge; *c != '\0'; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_')) {
            *why = "code_challenge must be base64url.";
            return "invalid_request";
        }
    if (a->state != NULL && !printable(a->state, RP__STATE_MAX)) {
        *why = "state is too long or has characters outside printable ASCII.";
        return "invalid_request";
    }
    if (a->nonce != NULL && !printable(a->nonce, RP_IAM_NONCE_MAX)) {
        *why = "nonce is too long or has characters outside printable ASCII.";
        return "invalid_request";
    }
    return NULL;
}

/* 302 to redirect_uri with the given pairs (values percent-encoded) and state. */
static void redirect_back(rp_req *req, const areq *a, const char *k1, const char *v1,
                          const char *k2, const char *v2)
{
    char loc[RP__REDIRECT_MAX + 2048], enc[3 * RP__STATE_MAX + 1];
    size_t n;

    n = (size_t)snprintf(loc, sizeof(loc), "%s%c", a->redirect_uri,
                         strchr(a->redirect_uri, '?') != NULL ? '&' : '?');
    if (rp_query_encode(v1, enc, sizeof(enc)) == 0)
        n += (size_t)snprintf(loc + n, sizeof(loc) - n, "%s=%s", k1, enc);
    if (k2 != NULL && v2 != NULL && n < sizeof(loc) && rp_query_encode(v2, enc, sizeof(enc)) == 0)
        n += (size_t)snprintf(loc + n, sizeof(loc) - n, "&%s=%s", k2, enc);
    if (a->state != NULL && n < sizeof(loc) && rp_query_encode(a->state, enc, sizeof(enc)) == 0)
        n += (size_t)snprintf(loc + n, sizeof(loc) - n, "&state=%s", enc);
    if (n >= sizeof(loc)) {
        error_page(req, 400, "invalid_request", "The redirect address is too long.");
        return;
    }
    rp_resp_header(req, "Referrer-Policy", "no-referrer");
    rp_resp_header(req, "Location", loc);
    rp_resp_send(req, 302, NULL, NULL, 0);
}

static int read_areq(const rp_query_param *p, size_t n, areq *a)
{
    int dup = 0;

    memset(a, 0, sizeof(*a));
    a->client_id = rp__iam_form(p, n, "client_id", &dup);
    a->redirect_uri = rp__iam_form(p, n, "redirect_uri", &dup);
    a->response_type = rp__iam_form(p, n, "response_type", &dup);
    a->state = rp__iam_form(p, n, "state", &dup);
    a->nonce = rp__iam_form(p, n, "nonce", &dup);
    a->challenge = rp__iam_form(p, n, "code_challenge", &dup);
    a->method = rp__iam_form(p, n, "code_challenge_method", &dup);
    a->scope = rp__iam_form(p, n, "scope", &dup);
    a->mode = rp__iam_form(p, n, "response_mode", &dup);
    a->login_hint = rp__iam_form(p, n, "login_hint", &dup);
    if (a->login_hint != NULL && !printable(a->login_hint, RP_IAM_NAME_MAX))
        a->login_hint = NULL;
    return dup ? RP_EINVAL : 0;
}

static void audit_signin(rp_iam *iam, rp_req *req, const char *principal, const areq *a,
                         const char *user, const char *result, const char *reason)
{
    const char *client = a->client_id;

    /* Only printable ASCII reaches the record (a hostile name could be anything). */
    if (user != NULL && !printable(user, RP_IAM_NAME_MAX))
        user = "?";
    if (client != NULL && !printable(client, RP__REDIRECT_MAX))
        client = "?";
    rp__iam_audit(
        iam, req, principal, "authn", "signin", "/", result,
        json_pack("{s:s?,s:s?,s:s?}", "client_id", client, "user", user, "reason", reason));
}

static void authorize_post(rp_req *req)
{
    rp_iam *iam = req->route_data;
    rp_query_param *p = NULL;
    size_t n = 0;
    areq a;
    const char *why = "", *err, *user, *secret, *csrf;
    char ref[8 + RP_IAM_NAME_MAX + 1];
    rp_str ct = rp_req_header(req, "content-type"), origin = rp_req_header(req, "origin"), ck;
    const rp__principal *prin = NULL;
    char code[RP__CODE_LEN + 1];
    rp__snap *s = NULL;
    int dup = 0, rc;
    int64_t now = rp__now();

    code[0] = '\0';
    secret = NULL;
    if (ct.p == NULL || !rp_str_has_prefix(ct, "application/x-www-form-urlencoded") ||
        rp_query_parse(req->arena, req->body.data, req->body.len, 1, &p, &n) != 0) {
        error_page(req, 400, "invalid_request", "The sign-in form could not be read.");
        goto out;
    }
    secret = rp__iam_form(p, n, "secret", &dup);
    user = rp__iam_form(p, n, "username", &dup);
    csrf = rp__iam_form(p, n, "csrf", &dup);
    if (read_areq(p, n, &a) != 0 || dup) {
        error_page(req, 400, "invalid_request", "A request parameter appears twice.");
        goto out;
    }
    if (check_client(iam, &a, &why) != 0) {
        audit_signin(iam, req, NULL, &a, user, "failure", "invalid client or redirect_uri");
        error_page(req, 400, "invalid_client", why);
        goto out;
    }
    /* A form posted from another page (a sibling app under D is same-site) is refused. */
    if (origin.p != NULL && !rp_str_eq_nocase(origin, iam->login)) {
        audit_signin(iam, req, NULL, &a, user, "failure", "form posted from another origin");
        error_page(req, 403, "access_denied", "The sign-in form was posted from another site.");
        goto out;
    }
    if (csrf == NULL || rp_cookie_get(req->head, RP__CSRF_COOKIE, &ck) != 0 ||
        !rp_ct_equal(ck.p, ck.n, csrf, strlen(csrf))) {
        audit_signin(iam, req, NULL, &a, user, "failure", "missing or wrong form cookie");
        error_page(req, 403, "access_denied",
                   "The sign-in form expired or did not come from this page. Go back to the app "
                   "and sign in again.");
        goto out;
    }
    if ((err = check_request(&a, &why)) != NULL) {
        redirect_back(req, &a, "error", err, "error_description", why);
        goto out;
    }
    if (user == NULL || secret == NULL || user[0] == '\0' || strlen(user) > RP_IAM_NAME_MAX) {
        form_page(iam, req, 400, &a, user && strlen(user) <= RP_IAM_NAME_MAX ? user : "",
                  "Enter your user name and secret.");
        goto out;
    }
    snprintf(ref, sizeof(ref), "user:%s", user);
    s = rp__iam_snap(iam);
    prin = rp__iam_principal_ref(s, ref);
    /* Only users sign in here; a miss and a wrong secret look the same to the browser. */
    rc = prin == NULL || prin->kind != RP_PRINCIPAL_USER
             ? RP_ENOENT
             : rp__iam_check_secret(prin, secret, strlen(secret), now);
    if (rc != 0) {
        audit_signin(iam, req, rc == RP_ENOENT ? NULL : prin->id, &a, user, "failure",
                     rc == RP_ENOENT      ? "no such user"
                     : rc == RP_ETIMEDOUT ? "expired secret"
                                          : "wrong secret");
        form_page(iam, req, 401, &a, user,
                  rc == RP_ETIMEDOUT
                      ? "This secret has expired. Ask an administrator for a new one."
                      : "Wrong user name or secret.");
        goto out;
    }
    rc = rp__iam_code_issue(iam, a.client_id, a.redirect_uri, a.challenge, a.nonce, prin->id,
                            prin->name, now, code);
    if (rc == RP_ETOOBIG) {
        audit_signin(iam, req, prin->id, &a, user, "failure", "too many pending sign-ins");
        redirect_back(req, &a, "error", "temporarily_unavailable", "error_description",
                      "Too many sign-ins are in progress; try again in a minute.");
        goto out;
    }
    if (rc != 0) {
        audit_signin(iam, req, prin->id, &a, user, "failure", "the code could not be issued");
        redirect_back(req, &a, "error", "server_error", "error_description",
                      "The sign-in could not be completed.");
        goto out;
    }
    audit_signin(iam, req, prin->id, &a, user, "success", NULL);
    /* The form's cookie has done its job. */
    rp_resp_header(req, "Set-Cookie",
                   RP__CSRF_COOKIE "=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Strict");
    redirect_back(req, &a, "code", code, NULL, NULL);
out:
    if (s != NULL)
        rp__iam_snap_done(iam, s);
    OPENSSL_cleanse(code, sizeof(code));
    /* The secret lives in the pooled request arena (decoded, every copy a repeated field gave)
     * and in the body buffer (encoded): do not leave it in either. */
    for (size_t i = 0; i < n; i++)
        if (strcmp(p[i].name, "secret") == 0)
            OPENSSL_cleanse((char *)p[i].value, p[i].value_len);
    if (req->body.data != NULL)
        OPENSSL_cleanse(req->body.data, req->body.len);
}

void rp__iam_authorize(rp_iam *iam, rp_req *req)
{
    areq a;
    const char *why = "", *err;

    if (req->method == RP_METHOD_POST) {
        rp_req_read_body(req, authorize_post);
        return;
    }
    if (req->method != RP_METHOD_GET && req->method != RP_METHOD_HEAD) {
        rp_resp_header(req, "Allow", "GET, HEAD, POST");
        rp_resp_error(req, 405, "MethodNotAllowed", "method not allowed for this resource");
        return;
    }
    if (read_areq(req->query, req->nquery, &a) != 0) {
        error_page(req, 400, "invalid_request", "A request parameter appears twice.");
        return;
    }
    if (check_client(iam, &a, &why) != 0) {
        error_page(req, 400, "invalid_client", why);
        return;
    }
    if ((err = check_request(&a, &why)) != NULL) {
        redirect_back(req, &a, "error", err, "error_description", why);
        return;
    }
    form_page(iam, req, 200, &a, a.login_hint != NULL ? a.login_hint : "", NULL);
}
