/*
 * iam.h - identity and access: principals, the token service, managed identities,
 * authentication, RBAC, PIM and the audit trail (docs/iam.md).
 *
 * One rp_iam per server process. Its state lives in the store (tables of schema v2); what
 * requests read - principals and their credentials, role definitions and assignments, PIM
 * eligibilities, managed-identity sessions and the token signing keys - is loaded into an
 * immutable snapshot that loop threads read without locks. A management change commits through
 * the store's writer, then the snapshot is rebuilt whole and swapped (generation counter):
 * changes are rare and the tables small, so rebuilding beats incremental bookkeeping.
 * Time-bound grants (role assignments with an expiry, PIM activations) are evaluated against
 * the clock on every check, so they end without a rebuild or a restart.
 *
 * Threads: rp_iam_open/close and rp_iam_rotate_keys run on the main thread; every loop thread
 * that serves requests calls rp_iam_loop_start (on that thread) before serving and
 * rp_iam_loop_stop before its loop closes. Handlers registered by rp_iam_register only run on
 * such threads.
 */
#ifndef RP_IAM_IAM_H
#define RP_IAM_IAM_H

#include "crypto/rootkey.h"
#include "http/router.h"
#include "store/store.h"

#include <stdint.h>
#include <uv.h>

#define RP_IAM_NAME_MAX         64   /* principal names: [A-Za-z0-9._-], 1..64 */
#define RP_IAM_TOKEN_LIFETIME_S 3600 /* access tokens */
#define RP_IAM_KEY_ROTATE_S     (30 * 86400)
#define RP_IAM_SKEW_S           60  /* clock skew allowed on exp/nbf */
#define RP_IAM_SECRET_DAYS      180 /* default client secret lifetime */
#define RP_IAM_SECRET_MAX_DAYS  730
#define RP_IAM_SESSION_MAX_S    86400 /* managed identity workload sessions */
#define RP_IAM_PIM_DEFAULT_S    (8 * 3600)
#define RP_IAM_PIM_MAX_S        (24 * 3600)
#define RP_IAM_ADMIN_ID         "admin"

typedef enum {
    RP_PRINCIPAL_ADMIN = 1,
    RP_PRINCIPAL_USER = 2,
    RP_PRINCIPAL_SP = 3,
    RP_PRINCIPAL_MI = 4
} rp_principal_kind;

typedef struct rp_iam rp_iam;
struct rp_admin_creds;

typedef struct rp_iam_opts {
    const char *domain;            /* D */
    int https_port;                /* public HTTPS port (issuer and endpoints name it unless 443) */
    const rp_rootkey *rootkey;     /* borrowed; must outlive the rp_iam */
    rp_store *store;               /* borrowed; must outlive the rp_iam */
    const char *audit_path;        /* DATA/audit/audit.log */
    const char *identity_endpoint; /* "http://127.0.0.1:8459/msi/token", or NULL if disabled */
    int64_t token_lifetime_s;      /* 0 = RP_IAM_TOKEN_LIFETIME_S */
    int64_t key_rotate_s;          /* 0 = RP_IAM_KEY_ROTATE_S */
} rp_iam_opts;

/*
 * Opens the service: creates the tenant id on first use, makes sure a current signing key
 * exists (creating or rotating one as due), opens the audit log and loads the first snapshot.
 * admin is the administrator credential set (ownership passes to the rp_iam). On failure err
 * names the cause and every resource is released (including admin).
 */
int rp_iam_open(const rp_iam_opts *o, struct rp_admin_creds *admin, rp_iam **out, char *err,
                size_t errlen);
/* Flushes and closes the audit log, frees everything. All loops must have stopped. NULL ok. */
void rp_iam_close(rp_iam *iam);

/* Replaces the administrator credentials (SIGHUP). Takes ownership of admin. */
void rp_iam_set_admin(rp_iam *iam, struct rp_admin_creds *admin);

/* Per loop thread: opens the store and audit completion ports and the token cache. */
int rp_iam_loop_start(rp_iam *iam, uv_loop_t *loop);
void rp_iam_loop_stop(rp_iam *iam);

/*
 * Registers the token service (login.D), the management API (/api on D) and /health.
 * max_body bounds management request bodies.
 */
int rp_iam_register(rp_iam *iam, rp_router *r, size_t max_body);

/* Registers the managed identity endpoint on the loopback listener's router. */
int rp_iam_register_local(rp_iam *iam, rp_router *r);

/* Rotates the signing key if due (main thread, e.g. from a daily timer). 0 or RP_E*. */
int rp_iam_rotate_keys(rp_iam *iam, int force);

/*
 * Names the public HTTPS port (for issuer and endpoint URLs) and the managed identity endpoint
 * once the listeners are bound (ephemeral ports). Main thread, before any loop serves.
 */
int rp_iam_set_endpoints(rp_iam *iam, int https_port, const char *identity_endpoint);

/*
 * The system-assigned managed identity of a resource (an app "/apps/a", or beyond Azure one
 * function "/apps/a/functions/f"): created on first use, then the same one; it is deleted with
 * its resource (rp_iam_system_identity_delete). resource must be a valid RBAC scope other than
 * "/". Writes the object id into id. Blocking (store write): for start-up, the CLI and service
 * threads, never a loop thread. 0, RP_EINVAL, RP_EDB, RP_ENOMEM.
 */
int rp_iam_system_identity(rp_iam *iam, const char *resource, char id[37]);
int rp_iam_system_identity_delete(rp_iam *iam, const char *resource);
/* The object id of resource's system-assigned identity if it has one: 0 or RP_ENOENT. Lock-free
 * (the snapshot); any thread. */
int rp_iam_system_identity_find(rp_iam *iam, const char *resource, char id[37]);
/*
 * Deletes every system-assigned identity whose resource starts with prefix and for which
 * keep(arg, resource) is 0, with its sessions and role assignments. Blocking. 0 or RP_EDB.
 */
int rp_iam_system_identity_sweep(rp_iam *iam, const char *prefix,
                                 int (*keep)(void *arg, const char *resource), void *arg);

/*
 * Starts a workload session for the managed identities ids[0..n) (ids[0] is the default one,
 * the others may be chosen with client_id/object_id): what a workload started by rampart gets
 * as IDENTITY_ENDPOINT (*endpoint, borrowed from iam) and IDENTITY_HEADER (header, 43 chars +
 * NUL, shown to nobody else; only its hash is stored), valid ttl_s seconds (60..86400).
 * Blocking, like rp_iam_system_identity. 0, RP_EINVAL (no endpoint, bad ttl, unknown or
 * non-identity id), RP_EDB, RP_ENOMEM, RP_ECRYPTO.
 */
int rp_iam_workload_session(rp_iam *iam, const char *const *ids, size_t n, int64_t ttl_s,
                            char header[64], char session_id[37], const char **endpoint);
/* ttl_s for a session that lasts as long as one process: until rp_iam_workload_sessions_end. */
#define RP_IAM_SESSION_PROCESS 0
/*
 * Ends every workload session whose default identity is principal_id (an app's process was
 * stopped or is being replaced): their IDENTITY_HEADERs stop working at once. Blocking. 0,
 * RP_EDB.
 */
int rp_iam_workload_sessions_end(rp_iam *iam, const char *principal_id);

/*
 * Lets the token service issue tokens for apps' origins, "https://NAME.D" (what an app's
 * built-in authentication accepts): known(arg, label, n) says whether the host label (lower
 * case, n bytes, not NUL-terminated) is an app. Thread-safe callback; set on the main thread
 * before any loop serves.
 */
#define RP_IAM_APP_LABEL_MAX 63
void rp_iam_set_app_resolver(rp_iam *iam, int (*known)(void *arg, const char *label, size_t n),
                             void *arg);

/* The managed identity endpoint workloads get ("http://127.0.0.1:8459/msi/token"), or NULL
 * when it is switched off. Valid while iam lives. */
const char *rp_iam_identity_endpoint(const rp_iam *iam);
const char *rp_iam_tenant(const rp_iam *iam);
const char *rp_iam_issuer(const rp_iam *iam);
/* The token service's origin, "https://login.D[:port]" (the authority is login + "/" + tenant). */
const char *rp_iam_login(const rp_iam *iam);

/*
 * Interactive sign-in (src/iam/authorize.c, docs/iam.md "Interactive sign-in"). A user who signed
 * in at the authorization endpoint was sent back to an app with a code; the app's built-in
 * authentication redeems it here, in-process:
 *   code          the code from the redirect (43 base64url characters)
 *   client_id     the app's origin the code was issued to ("https://NAME.D")
 *   redirect_uri  exactly the redirect_uri of the authorize request
 *   verifier      the PKCE code_verifier (43..128 characters) whose S256 challenge was sent
 * A code redeems once: any attempt, right or wrong, uses it up. 0 and *out filled; RP_EINVAL
 * (malformed), RP_ENOENT (unknown, used or evicted), RP_EPERM (expired, another client or
 * redirect_uri, a wrong verifier, or the user was deleted since), RP_ENOMEM.
 */
#define RP_IAM_NONCE_MAX 128
typedef struct rp_iam_signin {
    char principal_id[37];
    char name[RP_IAM_NAME_MAX + 1];
    char nonce[RP_IAM_NONCE_MAX + 1]; /* as the authorize request sent it, or "" */
    int64_t auth_time;
} rp_iam_signin;
int rp_iam_signin_redeem(rp_iam *iam, const char *code, const char *client_id,
                         const char *redirect_uri, const char *verifier, rp_iam_signin *out);

#endif
