/*
 * authn.h - the one authentication and authorization middleware every service calls.
 *
 * A service declares what it accepts (administrator tokens, bearer JWTs for its audience,
 * client certificates) and gets back the principal or the reason for a refusal; it never
 * parses a credential itself. Authorization is an RBAC check of one action at one scope for
 * that principal. Both steps write an audit record (authentication failures and every
 * authorization decision; successful authentications are folded into the decision's record).
 *
 * Bearer JWTs: ES256 (RS256 for keys of earlier builds) only, kid from the current key set, iss exact, aud one of the accepted
 * resources, exp/nbf with RP_IAM_SKEW_S of skew, and the principal must still exist. A
 * verified token is remembered per loop thread until it expires, so a repeated token costs a
 * hash lookup and a constant-time comparison instead of an RSA verification.
 */
#ifndef RP_IAM_AUTHN_H
#define RP_IAM_AUTHN_H

#include "http/request.h"
#include "iam/iam.h"

#define RP_AUTHN_ADMIN       1u /* administrator tokens (rpa_...) */
#define RP_AUTHN_BEARER      2u /* access tokens from the token service */
#define RP_AUTHN_CLIENT_CERT 4u /* TLS client certificate registered to a principal */

typedef enum {
    RP_AUTHN_OK = 0,
    RP_AUTHN_MISSING,  /* no credential at all */
    RP_AUTHN_INVALID,  /* malformed, bad signature, unknown key, wrong issuer */
    RP_AUTHN_EXPIRED,  /* expired or not yet valid */
    RP_AUTHN_AUDIENCE, /* a valid token for another resource */
    RP_AUTHN_REVOKED   /* the principal no longer exists */
} rp_authn_status;

typedef struct rp_authn_policy {
    unsigned accept;      /* RP_AUTHN_* mask */
    const char *audience; /* resource name for bearer tokens: "management", "vault", ... */
} rp_authn_policy;

/* Who made the request. Copied out of the snapshot: valid for the request's life. */
typedef struct rp_identity {
    char id[37];        /* object id, or RP_IAM_ADMIN_ID */
    char client_id[37]; /* empty for the administrator */
    rp_principal_kind kind;
    char name[RP_IAM_NAME_MAX + 1];
    const char *via; /* "admin-token", "bearer", "client-certificate" */
} rp_identity;

/*
 * Authenticates req under policy. RP_AUTHN_OK fills *who. Any other status has been audited;
 * the caller answers in its own wire format (rp_authn_reply gives the management API's).
 */
rp_authn_status rp_authn(rp_iam *iam, rp_req *req, const rp_authn_policy *policy, rp_identity *who);
const char *rp_authn_status_name(rp_authn_status s);

/*
 * The bearer step of rp_authn alone, for a token already taken from its header: audience is
 * a resource name ("management"). No audit record. Uses this thread's token cache when called
 * on a loop thread (rp_iam_loop_start). For tests and benchmarks; services call rp_authn.
 */
rp_authn_status rp_authn_bearer(rp_iam *iam, const char *tok, size_t n, const char *audience,
                                rp_identity *who);

/*
 * An app's built-in authentication (Easy Auth): verifies req's bearer token as rp_authn does
 * (signature, issuer, tenant, lifetime, the principal still exists) for one of the audiences
 * auds[0..n) - the token's own aud claim picks which - and returns its claims (a new reference
 * in *claims) and token (borrowed from req: *tok, *tlen). Administrator tokens are not bearer
 * tokens here. Failures are audited (kind authn) like rp_authn's. RP_AUTHN_MISSING when there
 * is no Authorization header.
 */
rp_authn_status rp_authn_app(rp_iam *iam, rp_req *req, const char *const *auds, size_t n,
                             rp_identity *who, json_t **claims, const char **tok, size_t *tlen);

/* Answers 401 with a JSON error and a WWW-Authenticate challenge for status. */
void rp_authn_reply(rp_req *req, rp_authn_status status);

/*
 * Is who allowed action (a data action when data is 1) at scope? Deny by default; the
 * administrator is Owner at "/". Audits the decision. 1 allowed, 0 denied.
 */
int rp_authz(rp_iam *iam, rp_req *req, const rp_identity *who, const char *action, int data,
             const char *scope);

/* What allowed a deferred decision: the role and where it is assigned. */
typedef struct rp_authz_grant {
    char role[128];
    char at[512];
} rp_authz_grant;

/*
 * rp_authz for a request whose answer waits for a durable audit record of its own (a read of
 * secret material): a denial is audited here as usual; an allowance is not, and fills *grant
 * instead - the caller MUST put grant's role and scope into that record, which then is the
 * decision's record (one record and one write instead of two on the hottest path).
 */
int rp_authz_deferred(rp_iam *iam, rp_req *req, const rp_identity *who, const char *action,
                      int data, const char *scope, rp_authz_grant *grant);

/*
 * rp_authz for roleAssignments/write and /delete on an assignment of role_id: honours roles
 * whose ABAC condition limits which roles they may assign (Key Vault Data Access
 * Administrator). 1 allowed, 0 denied; audited.
 */
int rp_authz_assignment(rp_iam *iam, rp_req *req, const rp_identity *who, const char *action,
                        const char *scope, const char *role_id);

/* Answers 403 AuthorizationFailed naming the action and scope. */
void rp_authz_reply(rp_req *req, const rp_identity *who, const char *action, const char *scope);

/*
 * Writes an audit record for a service's own decision or change made for who on req (kind
 * "read" or "change", result "success"/"failure"), through this loop thread's audit port.
 * With RP_AUDIT_DURABLE in flags, done(status, arg) runs on this loop once the record is on
 * disk (status 0) or could not be written; a service answers a read of secret material, or
 * reports a change, only from there and only on status 0 (fail closed). If the loop stops
 * first, done never runs (the caller releases arg in its own loop-stop path). detail is
 * borrowed. 0 when queued (done will run), RP_ECLOSED off a loop thread, or rp_audit_log's
 * errors (done will not run).
 */
int rp_iam_audit(rp_iam *iam, const rp_req *req, const rp_identity *who, const char *kind,
                 const char *action, const char *scope, const char *result, json_t *detail,
                 unsigned flags, void (*done)(int status, void *arg), void *arg);

/*
 * For work a service does on a principal's behalf outside any request (an app's Key Vault
 * references, resolved with the app's managed identity): *who for principal id, as rp_authn
 * would have filled it (via "platform"). 0 or RP_ENOENT.
 */
int rp_iam_identity_of(rp_iam *iam, const char *id, rp_identity *who);

/*
 * rp_iam_audit off the loop threads: blocks until the record is written (and synced with
 * RP_AUDIT_DURABLE). For service threads and the thread pool; never on a serving loop.
 * 0 or rp_audit_log_sync's errors. detail is borrowed.
 */
int rp_iam_audit_sync(rp_iam *iam, const rp_identity *who, const char *kind, const char *action,
                      const char *scope, const char *result, json_t *detail, unsigned flags);

/* Counters of this thread's token cache, for tests and benchmarks. */
typedef struct rp_authn_stats {
    uint64_t hits, misses, verified, rejected;
} rp_authn_stats;
void rp_authn_stats_get(rp_authn_stats *out);

#endif
