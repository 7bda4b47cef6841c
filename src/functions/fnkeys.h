/*
 * fnkeys.h - Azure Functions keys: their kinds, new values, and the authorization level a
 * presented key grants (shared/specs/azure-platform-controls.md 1.1-1.4; docs/functions.md
 * "Keys").
 *
 * Kinds and what they grant: the master key (named "_master") grants admin, which satisfies
 * every level; system keys grant system (extension webhooks) and nothing else; host function
 * keys and the target function's keys grant function. A presented key is compared with every
 * key, whichever matches, as SHA-256 digests compared in constant time, so the time taken says
 * nothing about which key matched, how much of one was right, or how long the keys are.
 */
#ifndef RP_FUNCTIONS_FNKEYS_H
#define RP_FUNCTIONS_FNKEYS_H

#include <stddef.h>

/* Levels, ordered only for readability: the rule is rp_fn_authorized's, not a comparison. */
typedef enum {
    RP_FN_LEVEL_NONE = 0, /* no key, or no key matched */
    RP_FN_LEVEL_ANONYMOUS,
    RP_FN_LEVEL_FUNCTION,
    RP_FN_LEVEL_SYSTEM,
    RP_FN_LEVEL_ADMIN
} rp_fn_level;

typedef enum {
    RP_FN_KEY_MASTER,  /* one per app, "_master"; cannot be deleted, only regenerated */
    RP_FN_KEY_SYSTEM,  /* host: extension webhooks ("eventgrid_extension", ...) */
    RP_FN_KEY_HOST,    /* host function keys: every function */
    RP_FN_KEY_FUNCTION /* the target function's own keys */
} rp_fn_key_kind;

#define RP_FN_KEY_DIGEST_LEN 32 /* SHA-256 */

/*
 * One key as rp_fn_key_level sees it. digest, when not NULL, is rp_fn_key_digest of value,
 * computed when the key set was built (keyset.h's sets always fill it), so that checking a key
 * costs one digest, the presented key's, whatever the number of keys; NULL has it computed on
 * every check (keys made by hand, such as tests').
 */
typedef struct rp_fn_key {
    rp_fn_key_kind kind;
    const char *name;
    const char *value;
    size_t value_len;
    const unsigned char *digest; /* RP_FN_KEY_DIGEST_LEN bytes, or NULL */
} rp_fn_key;

#define RP_FN_MASTER_NAME   "_master"
#define RP_FN_KEY_NAME_MAX  128
#define RP_FN_KEY_VALUE_MIN 16 /* rampart's floor for a value set by hand (Azure has none) */
#define RP_FN_KEY_VALUE_MAX 1024
#define RP_FN_KEY_LEN       56 /* a generated value: 40 random bytes, base64url with padding */

/* A new key value (NUL-terminated, RP_FN_KEY_LEN characters of [A-Za-z0-9_=-]): 0, RP_EIO. */
int rp_fn_key_generate(char out[RP_FN_KEY_LEN + 1]);

/* Key names: 1-128 of [A-Za-z0-9_.-], "_master" reserved for the master key. 1 or 0. */
int rp_fn_key_name_ok(const char *name);

/*
 * A value set by hand: RP_FN_KEY_VALUE_MIN to RP_FN_KEY_VALUE_MAX printable ASCII characters,
 * no space (Azure takes any value; its older generated keys hold '/' and '+', which clients
 * percent-encode in ?code=, so the caller compares the decoded parameter). 1 or 0.
 */
int rp_fn_key_value_ok(const char *value, size_t n);

/*
 * SHA-256 of value[0..n) into out: what rp_fn_key.digest holds. The caller wipes out with the
 * value. Thread-safe. 0, or RP_ENOMEM (OpenSSL could not compute it).
 */
int rp_fn_key_digest(const char *value, size_t n, unsigned char out[RP_FN_KEY_DIGEST_LEN]);

/*
 * The level the presented key grants among keys[n] (the app's master, system and host keys and
 * the target function's keys): admin for the master key, system for a system key, function for
 * a host or function key; RP_FN_LEVEL_NONE when none matches or nothing is presented. When
 * several match (the same value set twice), the first kind in that order wins. *name (may be
 * NULL) gets the matching key's name. Costs one SHA-256 (of the presented key) and n constant-time
 * comparisons when every key carries its digest; presented keys longer than
 * RP_FN_KEY_VALUE_MAX match nothing.
 */
rp_fn_level rp_fn_key_level(const rp_fn_key *keys, size_t n, const char *presented, size_t len,
                            const char **name);

/*
 * Whether a caller holding level `have` may call what requires `need`: anonymous needs
 * nothing; admin satisfies every level; otherwise the levels must be equal (a system key does
 * not satisfy function, a function key not admin). 1 or 0.
 */
int rp_fn_authorized(rp_fn_level need, rp_fn_level have);

/* "anonymous", "function", "admin" (any case) -> level: 0, or RP_EPARSE. */
int rp_fn_level_parse(const char *s, rp_fn_level *out);

#endif
