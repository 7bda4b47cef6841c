/*
 * signin.h - the browser side of built-in authentication: the server-directed sign-in flow
 * (authorization code + PKCE with rampart's token service), the session cookie it ends in, and
 * sign-out (docs/sites.md "Interactive sign-in").
 *
 *   GET {prefix}/login/aad?post_login_redirect_uri=/path
 *       -> 302 to https://login.D/{tenant}/oauth2/v2.0/authorize?... with a sealed sign-in
 *          state cookie (__Host-AppServiceAuthLogin: state, PKCE verifier, nonce, target)
 *   GET {prefix}/login/aad/callback?code=..&state=..
 *       -> the code redeemed in-process, a sealed session cookie
 *          (__Host-AppServiceAuthSession), 302 back to the target
 *   GET {prefix}/logout[?post_logout_redirect_uri=/path]
 *       -> the session revoked and its cookie cleared; 302 to the path or {prefix}/logout/complete
 *
 * Cookies carry the __Host- prefix: every app lives under the same parent domain, and a sibling
 * app could otherwise plant a cookie of its own choosing (Domain=D) for this one. They are Secure,
 * HttpOnly and SameSite=Lax (the callback is a top-level navigation from the token service).
 *
 * Failures answer in the front door's JSON error format and are audited (kind authn).
 *
 * Every app shares the parent domain D, so for a browser they are all the same site and
 * SameSite=Lax would let any app's page post to another app with the user's cookie. A session
 * therefore only counts for GET, HEAD and OPTIONS, or for a request whose Sec-Fetch-Site is
 * same-origin / none (when sent) and whose Origin is the app's own (when sent): a cross-origin
 * request with a session cookie is an unauthenticated one, and audited.
 */
#ifndef RP_SITES_SIGNIN_H
#define RP_SITES_SIGNIN_H

#include "http/request.h"
#include "iam/authn.h"
#include "iam/iam.h"
#include "sites/session.h"

#include <jansson.h>
#include <stdint.h>

#define RP_SIGNIN_COOKIE       "__Host-AppServiceAuthSession"
#define RP_SIGNIN_STATE_COOKIE "__Host-AppServiceAuthLogin"
#define RP_SIGNIN_STATE_TTL_S  600
#define RP_SIGNIN_TARGET_MAX   1024 /* bytes of a post-login / post-logout path */

/* What a request needs to know about its app. Everything is borrowed for the call. */
typedef struct rp_signin_ctx {
    rp_iam *iam;
    rp_session_box *box;
    const char *app;    /* the host label, "NAME" or "NAME-SLOT" */
    const char *app_id; /* the app instance's id: a re-created app opens no old cookie */
    const char *origin; /* "https://NAME.D": the client id and the token audience */
    const char *port;   /* ":PORT" of the public HTTPS port, or "" for 443 */
    const char *scope;  /* "/apps/NAME" for audit records */
    const char *prefix; /* the app's apiPrefix, "/.auth" by default */
    int64_t lifetime_s; /* the session cookie's lifetime */
    int64_t now;
} rp_signin_ctx;

/*
 * Serves rest = the path below the prefix when it is /login/..., /logout or /logout/complete:
 * 1 answered, 0 not one of these (the caller answers /me and 404s).
 */
int rp_signin_serve(const rp_signin_ctx *c, rp_req *req, const char *rest);

/*
 * The session of req, if it carries one: RP_AUTHN_OK with *claims (new reference, shaped like an
 * access token's claims: aud, iss, oid, sub, tid, name, idtyp "user", azp, iat, exp, sid) and
 * *who; RP_AUTHN_MISSING without a session cookie; RP_AUTHN_INVALID (two cookies, not sealed
 * by this server for this app instance, a cross-origin unsafe request), RP_AUTHN_EXPIRED (past
 * its exp, or older than the app's current cookie lifetime), RP_AUTHN_REVOKED (signed out, or
 * the user is gone). Failures are audited.
 */
rp_authn_status rp_signin_session(const rp_signin_ctx *c, rp_req *req, json_t **claims,
                                  rp_identity *who);

/* 1 when path is a local path this site may send a browser back to ("/x", not "//x" or
 * "/\x", printable ASCII, at most RP_SIGNIN_TARGET_MAX bytes). */
int rp_signin_local_path(const char *path);

#endif
