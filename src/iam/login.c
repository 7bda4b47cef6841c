/*
 * login.c - the token service at https://login.D/: OIDC discovery, the JWKS and the
 * client-credentials token endpoint, answering as Entra ID does where the Azure SDKs look
 * (shared/specs/azure-data-planes.md §1.4).
 *
 * Every token request is audited (success or the AADSTS code). Secrets are compared as
 * SHA-256 hashes in constant time; assertions are RS256/PS256/ES256 JWTs signed by a registered
 * certificate, for this token endpoint, at most RP__ASSERTION_MAX_S long, and their jti is
 * remembered until they expire so none can be replayed.
 */
#include "base/alloc.h"
#include "base/err.h"
#include "base/rand.h"
#include "base/str.h"
#include "http/query.h"
#include "http/router.h"
#include "iam/iam_int.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define RP__TOKEN_BODY_MAX  (64 * 1024)
#define RP__ASSERTION_MAX_S 900
#define RP__ASSERTION_TYPE  "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/* Entra ID's error shape: the SDKs read error, error_description and error_codes. */
static void aad_error(rp_req *req, int status, const char *error, int code, const char *desc)
{
    char d[600], ts[32], trace[37], corr[37];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%SZ", &tm);
    snprintf(d, sizeof(d), "AADSTS%d: %s Trace ID: %s", code, desc, req->id);
    if (rp_random_uuid(trace) != 0)
        rp_strlcpy(trace, req->id, sizeof(trace));
    rp_strlcpy(corr, req->id, sizeof(corr));
    rp_resp_header(req, "Cache-Control", "no-store");
    rp_resp_json(req, status,
                 json_pack("{s:s,s:s,s:[i],s:s,s:s,s:s}", "error", error, "error_description", d,
                           "error_codes", code, "timestamp", ts, "trace_id", trace,
                           "correlation_id", corr));
}

/* Splits "/{tenant}/rest" and checks the tenant. NULL when it is not ours. */
static const char *tenant_rest(rp_iam *iam, const char *path)
{
    size_t n = strlen(iam->tenant);

    if (path[0] != '/' || strncasecmp(path + 1, iam->tenant, n) != 0 || path[1 + n] != '/')
        return NULL;
    return path + 1 + n;
}

static void discovery(rp_iam *iam, rp_req *req)
{
    char tok[512], jwks[512], authz[512];

    snprintf(tok, sizeof(tok), "%s", iam->token_url);
    snprintf(jwks, sizeof(jwks), "%s/%s/discovery/v2.0/keys", iam->login, iam->tenant);
    snprintf(authz, sizeof(authz), "%s/%s/oauth2/v2.0/authorize", iam->login, iam->tenant);
    rp_resp_header(req, "Cache-Control", "max-age=3600");
    rp_resp_json(req, 200,
                 json_pack("{s:s,s:s,s:s,s:s,s:s,s:[s],s:[s],s:[s],s:[s,s],s:[s],s:s}", "issuer",
                           iam->issuer, "token_endpoint", tok, "jwks_uri", jwks,
                           "authorization_endpoint", authz, "tenant_region_scope", "rampart",
                           "response_types_supported", "token", "grant_types_supported",
                           "client_credentials", "id_token_signing_alg_values_supported", "ES256",
                           "token_endpoint_auth_methods_supported", "client_secret_post",
                           "private_key_jwt", "subject_types_supported", "pairwise", "tenant_id",
                           iam->tenant));
}

static void jwks(rp_iam *iam, rp_req *req)
{
    rp__snap *s = rp__iam_snap(iam);
    json_t *keys = json_array();

    int64_t now = rp__now();

    for (size_t i = 0; keys != NULL && i < s->nkeys; i++) {
        json_t *k = NULL;
        /* Only keys whose tokens can still be valid (a retired key for one more lifetime). */
        if (s->keys[i].retired_at != 0 && now > s->keys[i].retired_at + s->key_grace)
            continue;
        if (rp_jwt_key_public_jwk(s->keys[i].key, &k) != 0 || json_array_append_new(keys, k) != 0) {
            json_decref(keys);
            keys = NULL;
        }
    }
    rp__iam_snap_done(iam, s);
    if (keys == NULL) {
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    rp_resp_header(req, "Cache-Control", "max-age=3600");
    rp_resp_json(req, 200, json_pack("{s:o}", "keys", keys));
}

const char *rp__iam_form(const rp_query_param *p, size_t n, const char *name, int *dup)
{
    const char *v = NULL;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(p[i].name, name) != 0)
            continue;
        if (v != NULL)
            *dup = 1;
        v = p[i].value;
    }
    return v;
}

static void audit_token(rp_iam *iam, rp_req *req, const char *principal, const char *client,
                        const char *resource, const char *result, int code)
{
    rp__iam_audit(
        iam, req, principal, "authn", "token.issue", "/", result,
        json_pack("{s:s?,s:s?,s:i}", "client_id", client, "resource", resource, "aadsts", code));
}

/* Checks a private_key_jwt assertion. 0 and *owner, or an AADSTS description in *why. */
static int check_assertion(rp_iam *iam, const rp__snap *s, const char *client_id,
                           const char *assertion, const rp__principal **owner, const char **why)
{
    const char *auds[2] = {iam->token_url, NULL};
    const rp__cred *c = NULL;
    const char *t, *jti;
    rp_jwt *j = NULL;
    rp_jwt_status js;
    int64_t now = rp__now();
    int rc = RP_EPERM;

    js =
        rp_jwt_decode(assertion, strlen(assertion), RP_JWT_RS256 | RP_JWT_PS256 | RP_JWT_ES256, &j);
    if (js != RP_JWT_OK) {
        *why = "Client assertion is not a valid signed JWT.";
        goto out;
    }
    if ((t = rp_jwt_header_str(j, "x5t#S256")) != NULL)
        c = rp__iam_cert(s, t, 1, owner);
    else if ((t = rp_jwt_header_str(j, "x5t")) != NULL)
        c = rp__iam_cert(s, t, 0, owner);
    if (c == NULL || strcmp((*owner)->client_id, client_id) != 0) {
        *why = "Client assertion contains an invalid signature: no certificate with this "
               "thumbprint is registered for the client.";
        goto out;
    }
    if (c->expires_at <= now) {
        *why = "The certificate credential has expired.";
        goto out;
    }
    js = rp_jwt_verify(j, c->key);
    if (js == RP_JWT_OK) {
        rp_jwt_expect ex = {NULL, auds, now, RP_IAM_SKEW_S, 1, RP__ASSERTION_MAX_S};
        js = rp_jwt_check_claims(j, &ex);
    }
    if (js != RP_JWT_OK) {
        *why = js == RP_JWT_SIGNATURE ? "Client assertion contains an invalid signature."
                                      : "Client assertion failed validation (audience, lifetime "
                                        "or time range).";
        goto out;
    }
    t = rp_jwt_claim_str(j, "iss");
    if (t == NULL || strcmp(t, client_id) != 0 || rp_jwt_claim_str(j, "sub") == NULL ||
        strcmp(rp_jwt_claim_str(j, "sub"), client_id) != 0) {
        *why = "Client assertion issuer and subject must be the client id.";
        goto out;
    }
    jti = rp_jwt_claim_str(j, "jti");
    if (jti == NULL || strlen(jti) == 0 || strlen(jti) > 128) {
        *why = "Client assertion must carry a jti.";
        goto out;
    }
    switch (rp__iam_jti_seen(iam, client_id, jti,
                             json_integer_value(json_object_get(rp_jwt_claims(j), "exp")), now)) {
    case 0: break;
    case RP_EEXIST: *why = "The client assertion has been used before (replay)."; goto out;
    case RP_ETOOBIG:
        *why = "Too many unexpired client assertions for this client; use shorter-lived ones.";
        goto out;
    default: *why = "The client assertion could not be recorded."; goto out;
    }
    rc = 0;
out:
    rp_jwt_free(j);
    return rc;
}

static void token_body(rp_req *req)
{
    rp_iam *iam = req->route_data;
    rp_query_param *p = NULL;
    size_t n = 0;
    int dup = 0;
    const char *grant, *client, *scope, *secret, *atype, *assertion, *resource;
    const rp__principal *prin = NULL;
    rp__snap *s = NULL;
    char *jwt = NULL;
    int64_t exp = 0, now = rp__now();
    int rc;

    rp_str ct = rp_req_header(req, "content-type");
    if (ct.p == NULL || !rp_str_has_prefix(ct, "application/x-www-form-urlencoded")) {
        aad_error(req, 400, "invalid_request", 900144,
                  "The request body must be application/x-www-form-urlencoded.");
        return;
    }
    if (rp_query_parse(req->arena, req->body.data, req->body.len, 1, &p, &n) != 0) {
        aad_error(req, 400, "invalid_request", 900144, "The request body is malformed.");
        goto out;
    }
    grant = rp__iam_form(p, n, "grant_type", &dup);
    client = rp__iam_form(p, n, "client_id", &dup);
    scope = rp__iam_form(p, n, "scope", &dup);
    secret = rp__iam_form(p, n, "client_secret", &dup);
    atype = rp__iam_form(p, n, "client_assertion_type", &dup);
    assertion = rp__iam_form(p, n, "client_assertion", &dup);
    if (dup) {
        aad_error(req, 400, "invalid_request", 90014, "A request parameter appears twice.");
        goto out;
    }
    if (grant == NULL || client == NULL || scope == NULL) {
        aad_error(req, 400, "invalid_request", 900144,
                  grant == NULL    ? "The request body must contain the parameter 'grant_type'."
                  : client == NULL ? "The request body must contain the parameter 'client_id'."
                                   : "The request body must contain the parameter 'scope'.");
        goto out;
    }
    if (strcmp(grant, "client_credentials") != 0) {
        aad_error(req, 400, "unsupported_grant_type", 70003,
                  "The app requested an unsupported grant type.");
        goto out;
    }
    if (strchr(scope, ' ') != NULL ||
        !rp_str_has_suffix_nocase((rp_str){scope, strlen(scope)}, "/.default")) {
        aad_error(req, 400, "invalid_scope", 1002012,
                  "The provided value for scope is not valid. Client credential flows must have "
                  "a single scope value with /.default suffixed to the resource identifier.");
        goto out;
    }
    resource = rp__iam_resource_match(iam, scope, strlen(scope));
    if (resource == NULL) {
        audit_token(iam, req, NULL, client, scope, "failure", 500011);
        aad_error(req, 400, "invalid_resource", 500011,
                  "The resource principal named in the scope was not found in the tenant.");
        goto out;
    }
    s = rp__iam_snap(iam);
    /* Users sign in as "user:NAME" (rampart login); everyone else by client id. */
    if (strncmp(client, "user:", 5) == 0)
        prin = rp__iam_principal_ref(s, client);
    else
        prin = rp__iam_principal_by_client(s, client);
    if (prin == NULL || prin->kind == RP_PRINCIPAL_MI) {
        audit_token(iam, req, NULL, client, resource, "failure", 700016);
        aad_error(req, 400, "unauthorized_client", 700016,
                  "Application was not found in the directory, or it has no credentials.");
        goto out;
    }
    if (secret != NULL && assertion == NULL) {
        rc = rp__iam_check_secret(prin, secret, strlen(secret), now);
        if (rc != 0) {
            int code = rc == RP_ETIMEDOUT ? 7000222 : 7000215;
            audit_token(iam, req, prin->id, client, resource, "failure", code);
            aad_error(req, 401, "invalid_client", code,
                      rc == RP_ETIMEDOUT ? "The provided client secret keys are expired."
                                         : "Invalid client secret provided.");
            goto out;
        }
    } else if (assertion != NULL && secret == NULL) {
        const rp__principal *owner = NULL;
        const char *why = "";
        if (atype == NULL || strcmp(atype, RP__ASSERTION_TYPE) != 0) {
            aad_error(req, 400, "invalid_request", 900144,
                      "client_assertion_type must be " RP__ASSERTION_TYPE ".");
            goto out;
        }
        if (check_assertion(iam, s, prin->client_id, assertion, &owner, &why) != 0) {
            audit_token(iam, req, prin->id, client, resource, "failure", 700027);
            aad_error(req, 401, "invalid_client", 700027, why);
            goto out;
        }
    } else {
        aad_error(req, 400, "invalid_request", 900144,
                  "The request body must contain exactly one of 'client_secret' or "
                  "'client_assertion'.");
        goto out;
    }
    rc = rp__iam_mint(iam, s, prin, resource, now, &jwt, &exp);
    if (rc != 0) {
        aad_error(req, 500, "server_error", 50000, "The token could not be issued.");
        goto out;
    }
    audit_token(iam, req, prin->id, client, resource, "success", 0);
    rp_resp_header(req, "Cache-Control", "no-store");
    rp_resp_header(req, "Pragma", "no-cache");
    rp_resp_json(req, 200,
                 json_pack("{s:s,s:I,s:I,s:s}", "token_type", "Bearer", "expires_in",
                           (json_int_t)(exp - now - 1), "ext_expires_in",
                           (json_int_t)(exp - now - 1), "access_token", jwt));
    OPENSSL_cleanse(jwt, strlen(jwt));
    rp_free(jwt);
out:
    /* The secret lives in the pooled request arena (decoded, every copy a repeated field gave)
     * and in the body buffer (encoded): do not leave it in either. */
    for (size_t i = 0; i < n; i++)
        if (strcmp(p[i].name, "client_secret") == 0)
            OPENSSL_cleanse((char *)p[i].value, p[i].value_len);
    if (req->body.data != NULL)
        OPENSSL_cleanse(req->body.data, req->body.len);
    if (s != NULL)
        rp__iam_snap_done(iam, s);
}

static void login(rp_req *req)
{
    rp_iam *iam = req->route_data;
    const char *rest = tenant_rest(iam, req->path);

    rp_resp_header(req, "Cache-Control", "no-store");
    if (rest == NULL) {
        aad_error(req, 400, "invalid_request", 90002,
                  "Tenant not found. This install has one tenant; use its id.");
        return;
    }
    if (strcmp(rest, "/v2.0/.well-known/openid-configuration") == 0 ||
        strcmp(rest, "/discovery/v2.0/keys") == 0) {
        if (req->method != RP_METHOD_GET && req->method != RP_METHOD_HEAD) {
            rp_resp_header(req, "Allow", "GET, HEAD");
            rp_resp_error(req, 405, "MethodNotAllowed", "method not allowed for this resource");
            return;
        }
        if (rest[1] == 'v')
            discovery(iam, req);
        else
            jwks(iam, req);
        return;
    }
    if (strcmp(rest, "/oauth2/v2.0/authorize") == 0) {
        rp__iam_authorize(iam, req);
        return;
    }
    if (strcmp(rest, "/oauth2/v2.0/token") == 0) {
        if (req->method != RP_METHOD_POST) {
            rp_resp_header(req, "Allow", "POST");
            rp_resp_error(req, 405, "MethodNotAllowed", "method not allowed for this resource");
            return;
        }
        rp_req_read_body(req, token_body);
        return;
    }
    aad_error(req, 404, "invalid_request", 900144, "No such endpoint.");
}

int rp__iam_register_login(rp_iam *iam, rp_router *r);

int rp__iam_register_login(rp_iam *iam, rp_router *r)
{
    rp_route_opts o = {RP_M_READ | RP_M(RP_METHOD_POST), RP__TOKEN_BODY_MAX, iam};

    return rp_router_add(r, "login", "/", login, &o);
}
