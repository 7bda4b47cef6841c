/*
 * iam_int.h - what the files of src/iam share: the snapshot, the per-loop context and the
 * helpers the token service, the authentication middleware and the management API call.
 * Not for other modules (they use iam.h and authn.h).
 */
#ifndef RP_IAM_IAM_INT_H
#define RP_IAM_IAM_INT_H

#include "crypto/jwt.h"
#include "iam/iam.h"
#include "iam/rbac.h"
#include "monitor/audit.h"
#include "server/admin.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#define RP__IAM_HASH_LEN 32
#define RP__IAM_NRES     4
/*
 * Access tokens are ES256 (P-256). Measured on this hardware (docs/benchmarks.md): ES256 signs
 * ~20x faster than RSA-2048 and verifies ~3.4x slower; verification happens once per token and
 * loop thread (the verified-token cache answers the rest), issuance once per token, so ES256
 * is cheaper end to end and is the only choice that reaches 2,000 tokens/s on two cores.
 * Verification also accepts RS256 so that keys made by earlier builds keep working until they
 * are retired; rp_jwt_verify never lets an algorithm verify under the other key type.
 */
#define RP__IAM_TOKEN_ALG   RP_JWT_ES256
#define RP__IAM_VERIFY_ALGS (RP_JWT_ES256 | RP_JWT_RS256)

typedef struct rp__cred {
    char id[37];
    int is_cert;
    unsigned char hash[RP__IAM_HASH_LEN]; /* secret: SHA-256 of the secret */
    char x5t[28];                         /* certificate: SHA-1 thumbprint, base64url */
    char x5t_s256[44];                    /* certificate: SHA-256 thumbprint, base64url */
    char thumb_hex[65];                   /* certificate: SHA-256, upper-case hex */
    rp_jwt_key *key;                      /* certificate: its public key */
    int64_t expires_at;
} rp__cred;

typedef struct rp__principal {
    char id[37];
    char client_id[37];
    rp_principal_kind kind;
    char *name;
    char *scope; /* system-assigned identities: the owning resource; else NULL */
    int64_t created_at;
    rp__cred *creds;
    size_t ncreds;
} rp__principal;

typedef struct rp__eligibility {
    char id[37];
    char principal_id[37];
    char role_id[37];
    char *scope;
    int64_t max_duration;
    int64_t expires_at;
    json_t *approvers; /* array of principal ids */
} rp__eligibility;

typedef struct rp__session {
    unsigned char hash[RP__IAM_HASH_LEN];
    char id[37];
    char **principals; /* ids; [0] is the default identity */
    size_t nprincipals;
    int64_t expires_at;
} rp__session;

typedef struct rp__signkey {
    rp_jwt_key *key;
    int64_t created_at;
    int64_t retired_at;
} rp__signkey;

/* Immutable once published. */
typedef struct rp__snap {
    atomic_int refs;
    uint64_t gen;
    rp__principal *principals; /* sorted by id */
    size_t nprincipals;
    rp__principal **by_client; /* sorted by client_id */
    rp__cred **certs;          /* certificate credentials sorted by x5t_s256 */
    rp__principal **cert_owner;
    size_t ncerts;
    rp_rbac *rbac;
    rp__eligibility *elig;
    size_t nelig;
    rp__session *sessions; /* sorted by hash */
    size_t nsessions;
    rp__signkey *keys; /* [0] is the signing key; the rest verify only */
    size_t nkeys;
    int64_t key_grace; /* a retired key verifies this long after its retirement */
} rp__snap;

typedef struct rp__loop rp__loop;

/*
 * Work a loop handed to a writer thread whose completion has not run yet. If the loop stops
 * first (its completion ports close and drop the callback), rp_iam_loop_stop releases it.
 */
typedef struct rp__pending {
    struct rp__pending *prev, *next;
    void (*release)(struct rp__pending *p);
} rp__pending;

/* On the loop's thread. add links p into this loop's list; remove unlinks it (a no-op if it is
 * not linked). */
void rp__iam_pending_add(rp__pending *p);
void rp__iam_pending_remove(rp__pending *p);

struct rp_iam {
    char domain[256];
    char tenant[37];
    char origin[300]; /* "https://D[:port]" */
    char login[300];  /* "https://login.D[:port]" */
    char issuer[400]; /* login + "/" + tenant + "/v2.0" */
    char token_url[400];
    char *resources[RP__IAM_NRES]; /* token audiences: https://management.D ... */
    /* Apps' origins are audiences too (Easy Auth): is this host label an app? */
    int (*app_known)(void *arg, const char *label, size_t n);
    void *app_known_arg;
    char *identity_endpoint;
    char *audit_path;
    int64_t token_lifetime_s;
    int64_t key_rotate_s;
    const rp_rootkey *rk;
    rp_store *store;
    rp_audit *audit;
    pthread_mutex_t lock;        /* guards snap */
    pthread_mutex_t reload_lock; /* one rebuild at a time, published in commit order */
    pthread_mutex_t jti_lock;    /* guards the jti table */
    rp__snap *snap;
    atomic_uint_fast64_t gen;
    pthread_rwlock_t admin_lock;
    rp_admin_creds *admin;
    struct jti *jtis;
    size_t njtis;
    pthread_mutex_t code_lock; /* guards codes (authorize.c) */
    struct rp__code *codes;    /* RP__CODES_MAX slots, allocated on first sign-in */
};

/* Per loop thread (thread-local): ports, the current snapshot and the token cache. */
struct rp__loop {
    rp_iam *iam;
    uv_loop_t *loop;
    rp_store_port *sport;
    rp_audit_port *aport;
    rp__snap *snap;
    uint64_t gen;
    rp__snap **retired; /* replaced during this loop iteration; released by the check handle */
    size_t nretired, capretired;
    uv_check_t check;
    rp__pending pending; /* list head */
    struct rp__tcache *cache;
};

rp__loop *rp__iam_loop(void);
/* Frees a loop's verified-token cache (authn.c), wiping the tokens it held. Accepts NULL. */
void rp__tcache_free(struct rp__tcache *c);

/*
 * The current snapshot for this thread. On a loop thread it stays valid until the loop
 * iteration ends, even if a newer one is published meanwhile (a replaced snapshot is retired
 * and released by a uv_check handle after every callback of the iteration has returned), so a
 * handler may look something up, call rp_authz, and keep using what it found. A handler that
 * waits for I/O copies what it needs. On threads without a loop context it is a reference
 * taken under the lock. Either way, end with rp__iam_snap_done.
 */
rp__snap *rp__iam_snap(rp_iam *iam);
void rp__iam_snap_done(rp_iam *iam, rp__snap *s);
void rp__iam_snap_put(rp__snap *s);
/* Rebuilds the snapshot from the store and publishes it. Any thread. */
int rp__iam_reload(rp_iam *iam);

const rp__principal *rp__iam_principal(const rp__snap *s, const char *id);
const rp__principal *rp__iam_principal_by_client(const rp__snap *s, const char *client_id);
/* By object id, client id, or "kind:name" (user:, sp:, identity:). */
const rp__principal *rp__iam_principal_ref(const rp__snap *s, const char *ref);
const rp__principal *rp__iam_principal_by_name(const rp__snap *s, rp_principal_kind k,
                                               const char *name);
const char *rp__iam_kind_name(rp_principal_kind k);
const rp__session *rp__iam_session(const rp__snap *s, const unsigned char hash[32]);
/* Certificate credential by x5t#S256 (or x5t when s256 is 0). */
const rp__cred *rp__iam_cert(const rp__snap *s, const char *thumb, int s256,
                             const rp__principal **owner);
const rp_jwt_key *rp__iam_verify_key(const rp__snap *s, const char *kid);

/* Resource URI for an audience name ("management", "vault"...), or NULL. */
const char *rp__iam_resource(const rp_iam *iam, const char *name);
/* Normalises a requested resource ("https://vault.D/", "https://vault.D/.default"): the
 * canonical resource string or NULL if it is not one rampart issues tokens for. */
/* The canonical audience res names (a "/.default" scope or a resource), or NULL. An app's
 * origin is returned in a per-thread buffer, valid until the next call on this thread. */
const char *rp__iam_resource_match(const rp_iam *iam, const char *res, size_t n);

/* Mints an access token for p and resource. *jwt is rp_malloc'ed. */
int rp__iam_mint(rp_iam *iam, const rp__snap *s, const rp__principal *p, const char *resource,
                 int64_t now, char **jwt, int64_t *exp);

/* Checks a client secret against p's unexpired secrets in constant time per credential.
 * 0 ok, RP_EPERM wrong, RP_ETIMEDOUT only expired secrets matched. */
int rp__iam_check_secret(const rp__principal *p, const char *secret, size_t n, int64_t now);

/* Outstanding assertion ids one client may have (replay protection memory). */
#define RP__JTI_PER_CLIENT 1024
/* Remembers a client's assertion id until exp: 0; RP_EEXIST if seen; RP_ETOOBIG if the
 * client has RP__JTI_PER_CLIENT unexpired ones (or the table is full); RP_ENOMEM. */
int rp__iam_jti_seen(rp_iam *iam, const char *client, const char *jti, int64_t exp, int64_t now);

int rp__iam_sha256(const void *p, size_t n, unsigned char out[32]);

/* The value of form or query parameter name among p[0..n), or NULL; sets *dup when it appears
 * more than once (the token service refuses repeated parameters). */
struct rp_query_param;
const char *rp__iam_form(const struct rp_query_param *p, size_t n, const char *name, int *dup);

/* Interactive sign-in (authorize.c): the code table's lock (init: 0 or RP_ENOMEM; free wipes
 * every pending code) and the authorization endpoint's handler. */
int rp__iam_codes_init(rp_iam *iam);
void rp__iam_codes_free(rp_iam *iam);
struct rp_req;
void rp__iam_authorize(rp_iam *iam, struct rp_req *req);
/*
 * Issues a code for a user who just signed in: bound to client_id, redirect_uri, the PKCE S256
 * challenge and nonce (may be NULL), valid RP__CODE_TTL_S from now. Writes it (RP__CODE_LEN
 * base64url characters) to code. 0; RP_EINVAL (a field too long); RP_ETOOBIG (RP__CODES_MAX
 * unexpired codes wait); RP_ENOMEM; RP_ECRYPTO.
 */
#define RP__CODE_TTL_S     60
#define RP__CODES_MAX      1024
#define RP__CODES_PER_USER 16
#define RP__CODE_LEN       43
int rp__iam_code_issue(rp_iam *iam, const char *client_id, const char *redirect_uri,
                       const char *challenge, const char *nonce, const char *principal_id,
                       const char *name, int64_t now, char code[RP__CODE_LEN + 1]);

/* Audit helpers: fill principal/client/request from the request. */
struct rp_req;
void rp__iam_audit(rp_iam *iam, const struct rp_req *req, const char *principal, const char *kind,
                   const char *action, const char *scope, const char *result, json_t *detail);
int64_t rp__now(void);

#endif
