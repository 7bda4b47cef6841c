/*
 * easyauth.h - an app's built-in authentication (App Service "Easy Auth", docs: the platform
 * controls spec, section 2): the authsettingsV2 settings parsed once into an immutable,
 * reference-counted object, and the per-request decision made from it. Pure logic, no I/O.
 *
 * Division of labour: the caller finds the bearer token, has rampart's identity service verify
 * it (signature, lifetime) and hands this module the verified claims, or NULL and the reason
 * there are none. This module checks issuer, audience and the authorization policies, says what
 * to do with the request (pass with a principal, pass anonymously, 401, 403, redirect to the
 * login endpoint) and builds the X-MS-CLIENT-PRINCIPAL* headers and the /.auth/me answer. The
 * caller serves the endpoints under the api prefix (rp_easyauth_is_auth_path), strips
 * client-sent X-MS-CLIENT-PRINCIPAL* and X-MS-TOKEN-* headers from every request, and turns
 * X-Requested-With: XMLHttpRequest into the xhr flag.
 *
 * Workload: built on start-up and on every settings change (rare); decided on every request of
 * the app, from any loop thread, through a reference. Nothing changes after build, so readers
 * take no lock. A decision allocates nothing; principal headers allocate a few strings.
 *
 * Stored form: a JSON object in authsettingsV2's shape (the "properties"), this subset only
 * (every other member, at any level, is refused; members are case-sensitive; enum values are
 * compared ignoring ASCII case and shown in Azure's spelling):
 *   platform.enabled                                    bool, default false
 *   globalValidation.requireAuthentication              bool, default true
 *   globalValidation.unauthenticatedClientAction        "RedirectToLoginPage" | "Return401"
 *                                                       (default) | "Return403" | "AllowAnonymous"
 *   globalValidation.redirectToProvider                 "azureactivedirectory" | "aad"
 *   globalValidation.excludedPaths                      ["/health", ...]: see RP_EASYAUTH_PATHS_*
 *   httpSettings.requireHttps                           true only (rampart serves HTTPS only)
 *   httpSettings.routes.apiPrefix                       default "/.auth"
 *   identityProviders.azureActiveDirectory.enabled      bool, default true (see below)
 *     .registration.openIdIssuer                        https URL, default rampart's issuer
 *     .registration.clientId                            string
 *     .registration.clientSecretSettingName             an app setting's NAME ([A-Za-z0-9_])
 *     .validation.allowedAudiences                      [string], at most 500 characters in all
 *     .validation.jwtClaimChecks.allowedClientApplications              [client id]
 *     .validation.defaultAuthorizationPolicy.allowedApplications        [client id]
 *     .validation.defaultAuthorizationPolicy.allowedPrincipals.identities [object id]
 *   login.tokenStore.enabled                            bool, default false (shown only: /.auth/me
 *                                                       answers bearer callers regardless)
 * Secure defaults where Azure's differ: a clientSecret member is refused (secret values are
 * never stored in auth settings); requireHttps false is refused; a multi-tenant openIdIssuer
 * (/common, /organizations, /consumers), for which Azure skips issuer validation, is refused.
 * The Entra provider is rampart's own identity service, so it is on unless switched off: "enabled
 * with nothing else" accepts rampart tokens for the app's audience and answers 401 to the rest.
 * With the provider switched off every request counts as unauthenticated.
 *
 * Lists of ids (client applications, identities) compare ignoring ASCII case (they are GUIDs);
 * issuers and audiences compare exactly, except that one trailing '/' on either side is ignored
 * ("https://app.d" and "https://app.d/" are one audience).
 */
#ifndef RP_SITES_EASYAUTH_H
#define RP_SITES_EASYAUTH_H

#include <jansson.h>
#include <stddef.h>

#define RP_EASYAUTH_PATHS_MAX     64    /* excludedPaths entries */
#define RP_EASYAUTH_PATH_LEN_MAX  256   /* bytes of one excluded path */
#define RP_EASYAUTH_PREFIX_MAX    64    /* bytes of apiPrefix */
#define RP_EASYAUTH_AUDIENCES_MAX 500   /* characters of all allowedAudiences together (Azure) */
#define RP_EASYAUTH_LIST_MAX      64    /* entries of each audience / id list */
#define RP_EASYAUTH_ID_MAX        128   /* bytes of a clientId, a listed id, a setting name */
#define RP_EASYAUTH_ISSUER_MAX    256   /* bytes of openIdIssuer */
#define RP_EASYAUTH_HEADER_MAX    16384 /* bytes of X-MS-CLIENT-PRINCIPAL (base64) */
#define RP_EASYAUTH_NAME_MAX      1024  /* bytes of X-MS-CLIENT-PRINCIPAL-ID / -NAME */
#define RP_EASYAUTH_CLAIMS_MAX    512   /* flattened claims in a principal or /.auth/me */
#define RP_EASYAUTH_LOCATION_MAX  2048  /* bytes of a redirect Location, NUL included */

typedef struct rp_easyauth rp_easyauth;

/*
 * Builds settings from base (the stored object; NULL = all defaults: disabled) with patch
 * merged over it as a JSON merge patch (RFC 7396: objects merge member by member at every
 * level, null removes a member and so restores its default, anything else replaces; NULL =
 * no patch). Nulls in base are dropped the same way, so the stored form stays minimal.
 * app_audience is the app's own audience ("https://NAME.D"), always allowed besides
 * allowedAudiences and clientId; issuer is rampart's token issuer, the one expected when
 * openIdIssuer is absent. Both are copied; either may be NULL (no implicit audience; no token
 * passes the issuer check unless openIdIssuer is set).
 *
 * Unknown members, wrong types, bad values and lists over their limits are refused with
 * RP_EINVAL and one line in err naming the property by its path, e.g.
 * "identityProviders.azureActiveDirectory.validation.allowedAudiences: ..." (printable ASCII;
 * it quotes member names the caller sent, sanitised). Returns 0 and *out (one reference),
 * RP_EINVAL, or RP_ENOMEM; *out is untouched on failure.
 */
int rp_easyauth_build(const json_t *base, const json_t *patch, const char *app_audience,
                      const char *issuer, rp_easyauth **out, char *err, size_t errlen);
rp_easyauth *rp_easyauth_ref(rp_easyauth *c); /* accepts NULL */
void rp_easyauth_unref(rp_easyauth *c);       /* accepts NULL */

/* The merged settings as stored (borrowed, valid as long as c; c not NULL). */
const json_t *rp_easyauth_stored(const rp_easyauth *c);
/* The settings as the API shows them (c not NULL): authsettingsV2's shape with every default
 * filled in, except openIdIssuer, clientId, clientSecretSettingName and redirectToProvider,
 * shown only when set (an absent openIdIssuer follows rampart's issuer wherever it moves).
 * Building from it gives the same behaviour. New reference, NULL on allocation failure. */
json_t *rp_easyauth_view(const rp_easyauth *c);

/* Accessors; c NULL reads as the defaults (disabled). Strings are valid as long as c. */
int rp_easyauth_enabled(const rp_easyauth *c);
const char *rp_easyauth_api_prefix(const rp_easyauth *c);     /* "/.auth" by default */
const char *rp_easyauth_secret_setting(const rp_easyauth *c); /* or NULL */
int rp_easyauth_token_store(const rp_easyauth *c);
/* The session cookie's lifetime (login.cookieExpiration.timeToExpiration, FixedTime only):
 * RP_EASYAUTH_COOKIE_S unless set, RP_EASYAUTH_COOKIE_MIN_S..RP_EASYAUTH_COOKIE_MAX_S. */
#define RP_EASYAUTH_COOKIE_S     (8 * 3600)
#define RP_EASYAUTH_COOKIE_MIN_S 300
#define RP_EASYAUTH_COOKIE_MAX_S (7 * 86400)
int64_t rp_easyauth_cookie_seconds(const rp_easyauth *c);

/*
 * 1 when the normalised path (no query) is under excludedPaths: a whole-segment prefix match
 * ignoring ASCII case ("/health" covers /health and /health/x, not /healthz; "/api/" covers
 * /api/x, not /api). 0 otherwise, and always when c is NULL. Works whether or not auth is
 * enabled; rp_easyauth_decide only asks when it is.
 */
int rp_easyauth_excluded(const rp_easyauth *c, const char *path);

/*
 * 1 when auth is enabled and the normalised path is the api prefix or below it ("/.auth",
 * "/.auth/me", ignoring ASCII case): the caller serves it (login, logout, me) instead of the
 * app. 0 otherwise: with auth disabled such paths belong to the app.
 */
int rp_easyauth_is_auth_path(const rp_easyauth *c, const char *path);

typedef enum {
    RP_EA_PASS = 0, /* authenticated and authorized: inject the principal headers */
    RP_EA_ANON,     /* pass without principal: disabled, excluded path, anonymous allowed */
    RP_EA_401,      /* answer 401 */
    RP_EA_403,      /* answer 403 */
    RP_EA_REDIRECT  /* answer 302 to location */
} rp_easyauth_verdict;

typedef struct rp_easyauth_decision {
    rp_easyauth_verdict verdict;
    /* Why, for logs and audit: printable ASCII, never a token or a claim value. */
    char reason[96];
    /* REDIRECT only (else ""): "{prefix}/login/aad?post_login_redirect_uri=" + the target
     * percent-encoded (everything but A-Z a-z 0-9 - . _ ~). */
    char location[RP_EASYAUTH_LOCATION_MAX];
} rp_easyauth_decision;

/*
 * The decision for one request. path is the normalised path the router used (no query): the
 * excludedPaths check reads only it. target is the request target as the client sent it
 * (path and query; NULL = path), used only for the redirect's post_login_redirect_uri; a target
 * that is not a local path (not starting with '/', or starting with "//" or "/\") becomes "/",
 * and so does one whose encoding would not fit in location. claims are the verified token's
 * claims, or NULL with why saying why there are none ("missing", "expired", "invalid", ...;
 * NULL = "missing"); expiry and signature are the caller's checks. xhr is 1 when the request
 * sent X-Requested-With: XMLHttpRequest (a redirect becomes 401).
 *
 * Rules: c NULL or disabled -> ANON; excluded path -> ANON. Claims whose iss is not the
 * expected issuer, or whose aud (a string, or an array of which one must match) is not in
 * allowedAudiences, clientId or app_audience, count as no claims, as do all claims when the
 * Entra provider is switched off. Claims that pass but whose appid (else azp) is not in a
 * non-empty allowedClientApplications or allowedApplications, or whose oid is not in a
 * non-empty identities list -> 403. Otherwise -> PASS. Without claims: requireAuthentication
 * false or AllowAnonymous -> ANON; Return401 -> 401; Return403 -> 403; RedirectToLoginPage ->
 * REDIRECT, or 401 when xhr. Never fails; fills *out and returns out->verdict.
 */
rp_easyauth_verdict rp_easyauth_decide(const rp_easyauth *c, const char *path, const char *target,
                                       const json_t *claims, const char *why, int xhr,
                                       rp_easyauth_decision *out);

/* "pass", "anonymous", "401", "403", "redirect" (static; "?" for other values). */
const char *rp_easyauth_verdict_name(rp_easyauth_verdict v);

/* Principal headers for a PASS. The strings are the caller's (rp_easyauth_principal_free). */
typedef struct rp_easyauth_principal {
    char *principal; /* X-MS-CLIENT-PRINCIPAL: base64 (standard, padded) of compact JSON
                        {"auth_typ":"aad","claims":[{"typ":..,"val":..},...],"name_typ":..,
                        "role_typ":..} */
    char *id;        /* X-MS-CLIENT-PRINCIPAL-ID: oid, else sub; NULL = send no header */
    char *name;      /* X-MS-CLIENT-PRINCIPAL-NAME: name, else preferred_username, else upn,
                        else appid, else azp; NULL = send no header */
    const char *idp; /* X-MS-CLIENT-PRINCIPAL-IDP: "aad" (static) */
} rp_easyauth_principal;

/*
 * Builds the principal headers from verified claims (a JSON object). The claim list is flat:
 * an array claim (roles, groups) becomes one entry per element; oid, tid and upn take the long
 * URIs Azure uses (.../objectidentifier, .../tenantid, .../upn), other claims keep their JWT
 * names; strings are kept, numbers and booleans become their JSON text, objects and nested
 * arrays their compact JSON text, nulls are left out. Control bytes in id and name are
 * replaced by '?' (they go into header values as they are).
 *
 * Returns 0 and *out filled; RP_EINVAL (claims not an object); RP_ETOOBIG (more than
 * RP_EASYAUTH_CLAIMS_MAX entries, a principal over RP_EASYAUTH_HEADER_MAX bytes, or id or name
 * over RP_EASYAUTH_NAME_MAX); RP_ENOMEM. On failure *out is all NULL but idp.
 */
int rp_easyauth_principal_build(const json_t *claims, rp_easyauth_principal *out);
/* Frees the strings and clears *p; accepts NULL and a cleared or failed struct. */
void rp_easyauth_principal_free(rp_easyauth_principal *p);

/*
 * The GET {prefix}/me answer for a caller with verified claims and their bearer token:
 * [{"access_token":token,"expires_on":"YYYY-MM-DDTHH:MM:SSZ" (from exp; left out without an
 * integer exp),"provider_name":"aad","user_claims":[the principal's flattened claims],
 * "user_id":the principal's name, else its id, else ""}]. New reference; NULL when claims is not
 * an object, the claims are over the principal's limits, or on allocation failure. The answer
 * holds the token: send it to its owner only.
 */
json_t *rp_easyauth_me(const json_t *claims, const char *token);

#endif
