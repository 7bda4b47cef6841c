/*
 * kvreq.h - parsing and validating Key Vault request bodies and object names.
 *
 * Every function here is a pure function of its input (no I/O, no global state): a request
 * body (bytes, len), or an already-parsed JSON object for callers that hold one, becomes a
 * struct whose strings and byte arrays live in the caller's rp_arena (the request arena), so
 * nothing needs freeing one by one. The one exception to "pure" is ImportKey, which also builds
 * and validates the key (rp_kvkey) so that no private JWK text outlives the parse.
 *
 * Strictness: a body must be one JSON object (jansson json_loadb with JSON_REJECT_DUPLICATES:
 * duplicate members, trailing data, invalid UTF-8 and \u0000 in strings are malformed); unknown
 * members are ignored, as Key Vault does, but known members of the wrong type are refused;
 * JSON null for an optional member means "absent" unless the struct has a has_ flag that says
 * otherwise (PATCH bodies, where null clears). Integers must be JSON integers (1e9 and 1.0 are
 * refused). Limits count UTF-8 characters (code points) for names and texts and bytes for
 * secret values and decoded binary fields.
 *
 * Errors: 0, or RP_EINVAL (bad input) / RP_ETOOBIG (a size limit: body, secret value, decoded
 * binary field) with *msg set to a static English sentence fit for the "message" of a Key Vault
 * error whose code is BadParameter (HTTP 400, for both codes). RP_ENOMEM when the arena or
 * jansson cannot allocate (*msg "out of memory"). ImportKey may also return RP_EUNSUPPORTED
 * (e.g. an oct key; also BadParameter on the wire) or RP_ECRYPTO (OpenSSL failed: HTTP 500).
 * Messages never quote input (a secret value must not reach a log line through an error). On
 * failure *out is left partly written and must not be used.
 *
 * Secrets: SetSecret's value and KeyOperation's decoded bytes (plaintext for encrypt, digests,
 * key material for wrapKey) are placed in rp_arena_alloc_secret memory, wiped when the arena
 * resets. jansson's own copies are wiped before release for the secret value and the JWK's
 * private members; jansson's lexer scratch buffer and the caller's body buffer are not ours to
 * wipe (the body belongs to the HTTP layer, which should wipe it for secret-bearing routes).
 *
 * Thread-safety: reentrant; the arena follows its own rule (one thread at a time).
 */
#ifndef RP_VAULT_KVREQ_H
#define RP_VAULT_KVREQ_H

#include "base/arena.h"
#include "vault/kvkey.h"

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

/* Limits (Key Vault's, where it documents one). */
#define RP_KVREQ_NAME_MAX         127          /* secret and key names */
#define RP_KVREQ_VERSION_LEN      32           /* lowercase hex */
#define RP_KVREQ_MAX_BODY         (512 * 1024) /* any body, before parsing */
#define RP_KVREQ_SECRET_MAX       25600        /* secret value, bytes */
#define RP_KVREQ_CONTENT_TYPE_MAX 255          /* characters */
#define RP_KVREQ_TAGS_MAX         15
#define RP_KVREQ_TAG_NAME_MAX     512          /* characters */
#define RP_KVREQ_TAG_VALUE_MAX    512          /* characters */
#define RP_KVREQ_ALG_MAX          32           /* bytes of an "alg" name */
#define RP_KVREQ_OP_VALUE_MAX     (16 * 1024)  /* decoded bytes of each KeyOperation field */
#define RP_KVREQ_RESTORE_MAX      (256 * 1024) /* decoded bytes of a backup blob */
#define RP_KVREQ_TIME_MAX         INT64_C(253402300799) /* nbf / exp: 9999-12-31T23:59:59Z */

/* 1 if s[0..n) is a valid secret or key name (^[0-9a-zA-Z-]{1,127}$), else 0. */
int rp_kvreq_name_valid(const char *s, size_t n);

/* 1 if s[0..n) is a version id: exactly 32 lowercase hex digits, else 0. (The empty version of
 * "/keys/k1//decrypt" means "latest": the caller tests for n == 0 before calling.) */
int rp_kvreq_version_valid(const char *s, size_t n);

/* "attributes": {"enabled", "nbf", "exp", "exportable"}; "created", "updated", "recoveryLevel",
 * "recoverableDays" and anything else are ignored. */
typedef struct rp_kvreq_attrs {
    int enabled; /* -1 absent (or null), 0 false, 1 true */
    int has_nbf; /* nbf member present (number or null) */
    int64_t nbf; /* 0..RP_KVREQ_TIME_MAX; 0 means unset (JSON null or 0) */
    int has_exp;
    int64_t exp;
    int exportable; /* keys only: -1 absent, 0, 1 (parsed for secrets too, and ignored) */
} rp_kvreq_attrs;

/* "tags": an object of at most RP_KVREQ_TAGS_MAX string members. */
typedef struct rp_kvreq_tags {
    int present;      /* the member was there (object or null) */
    const char *json; /* compact JSON object text in member order; NULL if absent or null */
    size_t count;
} rp_kvreq_tags;

/* A decoded binary field. */
typedef struct rp_kvreq_bytes {
    int present;
    const unsigned char *p; /* arena memory (never NULL when present, even for 0 bytes) */
    size_t n;
} rp_kvreq_bytes;

/* PUT /secrets/{name}: {"value" (required), "contentType"?, "tags"?, "attributes"?} */
typedef struct rp_kvreq_set_secret {
    const char *value;        /* NUL-terminated, in wiped-on-reset arena memory */
    size_t value_len;         /* 0..RP_KVREQ_SECRET_MAX bytes */
    const char *content_type; /* NULL if absent */
    rp_kvreq_tags tags;
    rp_kvreq_attrs attrs;
} rp_kvreq_set_secret;

/* PATCH /secrets/{name}/{version}: every member optional; null clears contentType / tags. */
typedef struct rp_kvreq_update_secret {
    int has_content_type;
    const char *content_type; /* NULL when the member was null (clear) */
    rp_kvreq_tags tags;       /* tags.present && tags.json == NULL: clear */
    rp_kvreq_attrs attrs;
} rp_kvreq_update_secret;

/* POST /keys/{name}/create */
typedef struct rp_kvreq_create_key {
    const char *kty;          /* static: "RSA" "RSA-HSM" "EC" "EC-HSM" "oct" "oct-HSM" */
    rp_kvkey_type type;       /* RP_KVKEY_RSA, RP_KVKEY_EC, or 0 for oct */
    int hsm;                  /* kty ends in -HSM */
    int key_size;             /* RSA: given or 2048 (2048/3072/4096); oct: given or 256
                                 (128/192/256); EC: 0 (the curve decides; ignored if given) */
    uint64_t public_exponent; /* RSA: 0 (absent: default) or odd 3..RP_KVKEY_RSA_E_MAX */
    const char *crv;          /* EC: static "P-256" (default) "P-384" "P-521" "P-256K"; else NULL */
    int has_key_ops;
    unsigned key_ops; /* RP_KVOP_* mask when has_key_ops */
    rp_kvreq_attrs attrs;
    rp_kvreq_tags tags;
    const char *release_policy; /* compact JSON object text, or NULL */
} rp_kvreq_create_key;

/* PUT /keys/{name}: {"Hsm"?, "key" (required private JWK), "attributes"?, "tags"?,
 * "release_policy"?} */
typedef struct rp_kvreq_import_key {
    int hsm;         /* "Hsm": true, or a -HSM kty in the JWK */
    const char *kty; /* static: the JWK's kty ("RSA", "RSA-HSM", "EC", "EC-HSM") */
    rp_kvkey *key;   /* owned by the arena (freed at reset / destroy): rp_kvkey_ref to keep */
    int has_key_ops; /* the JWK had key_ops */
    unsigned key_ops;
    rp_kvreq_attrs attrs;
    rp_kvreq_tags tags;
    const char *release_policy;
} rp_kvreq_import_key;

/* PATCH /keys/{name}/{version}: {"key_ops"?, "attributes"?, "tags"?, "release_policy"?} */
typedef struct rp_kvreq_update_key {
    int has_key_ops;
    unsigned key_ops;
    rp_kvreq_attrs attrs;
    rp_kvreq_tags tags;
    int has_release_policy;
    const char *release_policy; /* NULL when null */
} rp_kvreq_update_key;

/* POST .../encrypt | decrypt | wrapkey | unwrapkey | sign: {"alg", "value", "iv"?, "aad"?,
 * "tag"?}. Each binary field at most RP_KVREQ_OP_VALUE_MAX bytes decoded, in secret memory. */
typedef struct rp_kvreq_key_op {
    const char *alg; /* 1..RP_KVREQ_ALG_MAX bytes, as given (not checked against a list here) */
    rp_kvreq_bytes value, iv, aad, tag;
} rp_kvreq_key_op;

/* POST .../verify: {"alg", "digest", "value"} all required. */
typedef struct rp_kvreq_key_verify {
    const char *alg;
    rp_kvreq_bytes digest, value;
} rp_kvreq_key_verify;

/* POST /secrets/restore, /keys/restore: {"value"} (at most RP_KVREQ_RESTORE_MAX decoded). */
typedef struct rp_kvreq_restore {
    rp_kvreq_bytes value;
} rp_kvreq_restore;

/*
 * The parsers. body[0..len) need not be NUL-terminated; len 0 is "The request body is empty"
 * (RP_EINVAL) and len > RP_KVREQ_MAX_BODY is RP_ETOOBIG. a, out and msg must be non-NULL.
 * The _json forms take a parsed root instead (any flags; it must be an object) and do not
 * modify it, except ImportKey's, which wipes the private JWK members' string bytes in place.
 */
int rp_kvreq_parse_set_secret(rp_arena *a, const char *body, size_t len, rp_kvreq_set_secret *out,
                              const char **msg);
int rp_kvreq_parse_update_secret(rp_arena *a, const char *body, size_t len,
                                 rp_kvreq_update_secret *out, const char **msg);
int rp_kvreq_parse_create_key(rp_arena *a, const char *body, size_t len, rp_kvreq_create_key *out,
                              const char **msg);
int rp_kvreq_parse_import_key(rp_arena *a, const char *body, size_t len, rp_kvreq_import_key *out,
                              const char **msg);
int rp_kvreq_parse_update_key(rp_arena *a, const char *body, size_t len, rp_kvreq_update_key *out,
                              const char **msg);
int rp_kvreq_parse_key_op(rp_arena *a, const char *body, size_t len, rp_kvreq_key_op *out,
                          const char **msg);
int rp_kvreq_parse_key_verify(rp_arena *a, const char *body, size_t len, rp_kvreq_key_verify *out,
                              const char **msg);
int rp_kvreq_parse_restore(rp_arena *a, const char *body, size_t len, rp_kvreq_restore *out,
                           const char **msg);

int rp_kvreq_set_secret_json(rp_arena *a, const json_t *root, rp_kvreq_set_secret *out,
                             const char **msg);
int rp_kvreq_update_secret_json(rp_arena *a, const json_t *root, rp_kvreq_update_secret *out,
                                const char **msg);
int rp_kvreq_create_key_json(rp_arena *a, const json_t *root, rp_kvreq_create_key *out,
                             const char **msg);
int rp_kvreq_import_key_json(rp_arena *a, json_t *root, rp_kvreq_import_key *out, const char **msg);
int rp_kvreq_update_key_json(rp_arena *a, const json_t *root, rp_kvreq_update_key *out,
                             const char **msg);
int rp_kvreq_key_op_json(rp_arena *a, const json_t *root, rp_kvreq_key_op *out, const char **msg);
int rp_kvreq_key_verify_json(rp_arena *a, const json_t *root, rp_kvreq_key_verify *out,
                             const char **msg);
int rp_kvreq_restore_json(rp_arena *a, const json_t *root, rp_kvreq_restore *out, const char **msg);

#endif
