/*
 * vault_int.h - what the files of the vault service share (vault.c: service, loops, auth,
 * dispatch, management API; kv_secrets.c; kv_keys.c). Not for other modules.
 */
#ifndef RP_VAULT_VAULT_INT_H
#define RP_VAULT_VAULT_INT_H

#include "base/arena.h"
#include "base/buf.h"
#include "http/request.h"
#include "iam/authn.h"
#include "vault/kvreq.h"
#include "vault/vault.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>

#define RP__KV_SECRET       1
#define RP__KV_KEY          2
#define RP__KV_VERSION_LEN  32
#define RP__KV_PAGE_DEFAULT 25
#define RP__KV_PAGE_MAX     25
#define RP__KV_NAME_MAX     127

struct rp_vault {
    char domain[256];
    int port;
    rp_store *store;
    rp_iam *iam;
    rp_keyring *kr;
    struct rp_kvhsm *hsm; /* NULL without a PKCS#11 module for -HSM keys */
};

/* A vault as a request sees it (copied out of the store). */
typedef struct rp__kv_vault {
    char name[RP_VAULT_NAME_MAX + 1];
    char resource[8 + RP_VAULT_NAME_MAX + 1]; /* "/vaults/NAME": RBAC scope and keyring resource */
    int purge_protection;
    int retention_days;
} rp__kv_vault;

/* One version of a secret or key, as read (pointers into the request arena). */
typedef struct rp__kv_row {
    const char *name;
    const char *version;
    int64_t created, updated, nbf, exp;
    int enabled;
    const char *content_type; /* NULL if unset */
    const char *tags;         /* JSON object text or NULL */
    const char *meta;         /* keys: JSON text (kty, key_ops, public parts ...) */
    const void *wdek;
    size_t wdek_len;
    const void *ct;
    size_t ct_len;
    int64_t deleted_at, purge_at; /* of the object */
} rp__kv_row;

/* A request to the data plane, after authentication and vault lookup. */
typedef struct rp__kv_call {
    rp_vault *v;
    rp_req *req;
    rp_identity who;
    rp__kv_vault vault;
    const char *seg[5]; /* path segments (may be ""), seg[0] = "secrets", "keys" ... */
    int nseg;
    const char *base; /* "https://NAME.vault.D[:port]" */
    const char *body; /* the raw request body (PUT, PATCH, POST), NULL otherwise; wiped after */
    size_t body_len;  /* the handler returns (parsers copy what they keep into the arena) */
} rp__kv_call;

/* ---- errors in Key Vault's format ({"error":{"code","message","innererror":{"code"}}}) */
void rp__kv_error(rp_req *req, int status, const char *code, const char *inner, const char *fmt,
                  ...) __attribute__((format(printf, 5, 6)));
void rp__kv_oom(rp_req *req);
/* Maps an RP_E* from the store or keyring to an answer (reason: keyring's, may be NULL). */
void rp__kv_fail(rp_req *req, int rc, const char *reason);

/* ---- authorization: rp_authz with the data action, answering 403 Forbidden on denial. */
int rp__kv_allow(rp__kv_call *c, const char *action, const char *scope);
/* "/vaults/NAME/secrets/OBJ" (or keys) in the request arena. */
const char *rp__kv_scope(rp__kv_call *c, const char *collection, const char *name);

/* ---- reads: this loop thread's reader connection. */
sqlite3 *rp__kv_db(void);
/* Prepared statement i of this loop, reset and cleared (sql must be a constant). */
sqlite3_stmt *rp__kv_stmt(int i, const char *sql);
/* Latest (version NULL or "") or given version of a live or deleted object. 0, RP_ENOENT, RP_EDB. */
int rp__kv_get(rp__kv_call *c, int kind, const char *name, const char *version, rp__kv_row *row);
/* Fills row from a statement whose columns are ROW_COLUMNS in order, starting at column 0. */
void rp__kv_row_read(rp_arena *a, sqlite3_stmt *st, rp__kv_row *row);
#define RP__KV_ROW_COLUMNS                                                                         \
    "v.name, v.version, v.created_at, v.updated_at, v.nbf, v.exp, v.enabled, v.content_type,"      \
    " v.tags, v.meta, v.wdek, b.ct, o.deleted_at, o.purge_at"
#define RP__KV_ROW_JOIN                                                                            \
    " FROM kv_versions v JOIN kv_objects o ON o.vault = v.vault AND o.kind = v.kind AND"           \
    " o.name = v.name JOIN obj.blobs b ON b.id = 'kv/' || v.vault || '/' || v.version"

/* ---- asynchronous work: a store write, then (optionally) a durable audit record, then the
 * answer. The op owns its data (its own arena): the request may go away meanwhile. */
typedef struct rp__kv_op rp__kv_op;
typedef int (*rp__kv_write_fn)(sqlite3 *db, rp__kv_op *op);
struct rp__kv_op {
    struct rp__kv_op *prev, *next; /* this loop's list of ops in flight */
    rp_vault *v;
    rp_req *req; /* NULL once the request is gone */
    rp_arena *arena;
    rp__kv_write_fn write;
    int in_store; /* the writer may still run write */
    int status;   /* HTTP status of the answer on success */
    json_t *reply;
    int audit_durable; /* write a durable audit record before answering */
    char audit_kind[8];
    char action[96];
    char scope[320];
    rp_identity who;
    rp__kv_vault vault;
    int kind;
    char name[RP__KV_NAME_MAX + 1];
    char version[RP__KV_VERSION_LEN + 1];
    void *data;  /* the operation's own fields (in arena) */
    void *extra; /* a collection hook's own fields (in arena) */
    int err;     /* RP_E* the write set when failing, for the answer */
    int has_grant;
    rp_authz_grant grant; /* a deferred authorization folded into this op's record */
    const char *reason;
    void (*done)(rp__kv_op *op, int status); /* optional: builds reply after the commit */
};
rp__kv_op *rp__kv_op_new(rp__kv_call *c, const char *action, const char *scope, int kind,
                         const char *name);
/* Hands op to the store (write may be NULL: audit only). Answers the request itself on error. */
void rp__kv_op_submit(rp__kv_op *op);
void rp__kv_op_free(rp__kv_op *op);

/* Answers a read of secret material: writes the durable audit record, then sends reply (steals
 * it) only once it is on disk; fails closed with 500. */
void rp__kv_send_audited(rp__kv_call *c, const char *action, const char *scope, const char *name,
                         json_t *reply);
/* The same for a read authorized with rp__kv_allow_deferred: the durable record is also the
 * authorization decision's (it names the role and where it is assigned). */
void rp__kv_send_audited_grant(rp__kv_call *c, const char *action, const char *scope,
                               const char *name, json_t *reply, const rp_authz_grant *grant);
/* rp__kv_allow whose allowance is recorded by the caller's durable record (rp_authz_deferred). */
int rp__kv_allow_deferred(rp__kv_call *c, const char *action, const char *scope,
                          rp_authz_grant *grant);

/* ---- JSON helpers */
/* id URL: base "/" collection "/" name ["/" version] in the arena. */
const char *rp__kv_id(rp__kv_call *c, const char *collection, const char *name,
                      const char *version);
const char *rp__kv_recovery_level(const rp__kv_vault *v);
json_t *rp__kv_attributes(const rp__kv_vault *v, const rp__kv_row *r);
int rp__kv_name_valid(const char *s);
int rp__kv_version_valid(const char *s);
void rp__kv_version_new(char out[RP__KV_VERSION_LEN + 1]);
int64_t rp__kv_now(void);
/* maxresults query parameter (1..25, default 25); answers 400 and returns -1 if invalid. */
int rp__kv_page_size(rp__kv_call *c);

/* ---- what secrets and keys share (kv_common.c) */

/* A collection: its kind, path names, error codes, data actions and bundle shape. */
typedef struct rp__kv_coll {
    int kind;
    const char *live;      /* "secrets" */
    const char *deleted;   /* "deletedsecrets" */
    const char *noun;      /* "secret" */
    const char *not_found; /* "SecretNotFound" */
    const char *act_meta, *act_delete, *act_recover, *act_purge, *act_backup, *act_restore;
    /* The bundle, no secret material. item: 0 the full bundle, 1 the list item of an object
     * (id without version), 2 the list item of a version; deleted: add recoveryId and dates. */
    json_t *(*bundle)(rp__kv_call *c, const rp__kv_row *r, int item, int deleted);
    /* Optional: before a purge is queued (gathers what to release; non-zero refuses it with
     * that RP_E*), and once it committed (releases it, e.g. HSM objects). */
    int (*purge_prepare)(rp__kv_call *c, const char *name, rp__kv_op *op);
    void (*purged)(rp__kv_op *op, int status);
} rp__kv_coll;

extern const rp__kv_coll rp__kv_secret_coll, rp__kv_key_coll;

/* What a new version is made of (the plaintext is sealed before the write is queued). */
typedef struct rp__kv_version_in {
    const char *version;
    int64_t now, nbf, exp;
    int enabled;
    const char *content_type; /* or NULL */
    const char *tags;         /* JSON text or NULL */
    const char *meta;         /* JSON text or NULL (keys) */
    rp_buf wdek, ct;
} rp__kv_version_in;

/* What a PATCH changes on one version (secrets and keys); what it does not name stays. */
typedef struct rp__kv_patch {
    rp_kvreq_attrs attrs;
    int has_content_type;
    const char *content_type; /* NULL with has_content_type: cleared */
    rp_kvreq_tags tags;       /* tags.present && tags.json == NULL: cleared */
    const char *meta;         /* keys: the new meta text, NULL when unchanged */
} rp__kv_patch;

/* Applies p to row r, as the version will be once the update commits (the answer). */
void rp__kv_patch_apply(const rp__kv_patch *p, rp__kv_row *r);
/* The store write of a PATCH: op->data is an rp__kv_patch, op->version the version. */
int rp__kv_patch_write(sqlite3 *db, rp__kv_op *op);

/* "secrets/NAME/VERSION" (NAME lower-cased) in arena a: the AAD of a version's material. */
const char *rp__kv_object_id(rp_arena *a, const rp__kv_coll *k, const char *name,
                             const char *version);
void rp__kv_not_found(rp__kv_call *c, const rp__kv_coll *k, const char *name, int deleted);
/* Opens a version's material into pt (release with rp_buf_free_secret). */
int rp__kv_open(rp__kv_call *c, const rp__kv_coll *k, const rp__kv_row *r, rp_buf *pt,
                const char **reason);
/*
 * Seals pt[0..n) as a new version of name (v->version set by the caller, v's other fields
 * filled) and queues the write; answers with reply (stolen) once it is durable and audited, or
 * with the error (409 when the name is soft-deleted). action/scope name the audit record.
 */
void rp__kv_new_version(rp__kv_call *c, const rp__kv_coll *k, const char *action, const char *scope,
                        const char *name, rp__kv_version_in *v, const void *pt, size_t n,
                        json_t *reply);
void rp__kv_list(rp__kv_call *c, const rp__kv_coll *k, const char *name, int deleted);
/* mode 0 delete (soft), 1 recover, 2 purge. */
void rp__kv_delete(rp__kv_call *c, const rp__kv_coll *k, const char *name, int mode);
void rp__kv_deleted_get(rp__kv_call *c, const rp__kv_coll *k, const char *name);
void rp__kv_backup(rp__kv_call *c, const rp__kv_coll *k, const char *name);
void rp__kv_restore(rp__kv_call *c, const rp__kv_coll *k);
json_t *rp__kv_tags(const char *text);

/* ---- this loop's cache of parsed keys (a private key is parsed once, not per operation) */
struct rp_kvkey;
/* A new reference to the cached key of vault/version, or NULL. */
struct rp_kvkey *rp__kv_key_cached(const char *vault, const char *version);
/* Caches k under vault/version (takes a new reference). */
void rp__kv_key_cache(const char *vault, const char *version, struct rp_kvkey *k);

/* ---- customer-managed keys (kv_cmk.c) */
/* Splits "VAULT/keys/NAME[/VERSION]": 0 or RP_EINVAL. */
int rp__kv_cmk_parse(const char *kid, char vault[RP_VAULT_NAME_MAX + 1],
                     char name[RP__KV_NAME_MAX + 1], char version[RP__KV_VERSION_LEN + 1]);
/* Accepts that form or "https://VAULT.vault.D[:port]/keys/NAME[/VERSION]" and writes the short
 * form into out[cap]. 0, RP_EINVAL, RP_ETOOBIG. */
int rp__kv_cmk_normalize(const char *in, const char *domain, char *out, size_t cap);
/* Registers the keyring callbacks. */
void rp__kv_cmk_register(rp_vault *v);

/* What a collection does itself; rp__kv_dispatch routes the rest (lists, versions, deleted
 * objects, delete/recover/purge, restore). version is "" for the latest. extra handles paths
 * only one collection has (keys: create, rotate, operations): 1 when it answered. */
typedef struct rp__kv_handlers {
    void (*put)(rp__kv_call *c, const char *name);
    void (*get)(rp__kv_call *c, const char *name, const char *version);
    void (*patch)(rp__kv_call *c, const char *name, const char *version);
    void (*backup)(rp__kv_call *c, const char *name);
    int (*extra)(rp__kv_call *c, const char *name);
} rp__kv_handlers;
void rp__kv_dispatch(rp__kv_call *c, const rp__kv_coll *k, const rp__kv_handlers *h);

/* ---- the collections */
void rp__kv_secrets(rp__kv_call *c);
void rp__kv_keys(rp__kv_call *c);

#endif
