/*
 * keyset.h - a function app's keys as one document: the master key, system keys, host function
 * keys and each function's own keys (shared/specs/azure-platform-controls.md §1.2, §1.5;
 * docs/functions.md "Keys").
 *
 * The document is JSON, sealed at rest under the app's KEK by the caller (it never touches disk
 * in plaintext):
 *   {"master": V, "system": {NAME: V}, "host": {NAME: V}, "functions": {FUNCTION: {NAME: V}}}
 * This module parses and checks such a document into an immutable rp_fn_keyset that any number
 * of threads read at once, answers "which keys apply to a call of function F" as the rp_fn_key
 * array fnkeys.h's rp_fn_key_level takes, and makes changed copies (a new key, a regenerated one,
 * a deletion, defaults for new functions). It does no I/O. Each key's SHA-256 is computed once
 * when a set is parsed and kept with it, so checking a call's key against the set digests only
 * the presented key. Values and digests are wiped when a set is freed.
 *
 * Function names compare ignoring ASCII case (Azure's function names do); key names exactly.
 */
#ifndef RP_FUNCTIONS_KEYSET_H
#define RP_FUNCTIONS_KEYSET_H

#include "functions/fnkeys.h"

#include <jansson.h>
#include <stddef.h>

#define RP_FN_KEYS_PER_SCOPE      32           /* keys of one kind (system, host) or one function */
#define RP_FN_FUNCTIONS_KEYED_MAX 256          /* functions with keys of their own */
#define RP_FN_KEYSET_MAX          (256u << 10) /* bytes of the JSON document */
#define RP_FN_DEFAULT_KEY         "default"

typedef struct rp_fn_keyset rp_fn_keyset;

/*
 * Parses doc into *out. Checks: the four members and nothing else (system, host, functions may
 * be absent: empty); every name passes rp_fn_key_name_ok ("_master" only as the master key);
 * every value rp_fn_key_value_ok; function names 1..RP_FN_NAME_MAX bytes; at most
 * RP_FN_KEYS_PER_SCOPE keys per scope. Computes every value's digest. 0, RP_EPARSE (err says
 * which member), RP_ETOOBIG, or RP_ENOMEM (also when a digest cannot be made). err may be NULL
 * when cap is 0.
 */
int rp_fn_keyset_parse(const json_t *doc, rp_fn_keyset **out, char *err, size_t cap);
void rp_fn_keyset_free(rp_fn_keyset *k); /* accepts NULL; wipes the values and digests */

/* The document for k (new reference; its strings are copies the caller wipes or lets go). */
json_t *rp_fn_keyset_json(const rp_fn_keyset *k);

/*
 * The keys that may call function fn (NULL: only master, system and host keys): master, system,
 * host, then fn's own. Fills keys[0..*n) (pointers into k, digests included, valid while k
 * lives); a cap of RP_FN_KEYS_FOR_CALL is always enough. 0, or RP_ETOOBIG.
 */
#define RP_FN_KEYS_FOR_CALL (1 + 3 * RP_FN_KEYS_PER_SCOPE)
int rp_fn_keyset_for(const rp_fn_keyset *k, const char *fn, rp_fn_key *keys, size_t cap, size_t *n);

/*
 * A new document: master and host "default" freshly generated, plus a "default" key for each of
 * the nfn function names. 0, RP_EIO (no randomness), RP_ENOMEM.
 */
int rp_fn_keyset_new(const char *const *fns, size_t nfn, json_t **out);

/*
 * Edits doc (a parsed-valid document, changed in place): adds a "default" key for each of the
 * nfn functions that has no keys yet. Returns the number added (>= 0) or RP_EIO / RP_ENOMEM.
 */
int rp_fn_keyset_add_defaults(json_t *doc, const char *const *fns, size_t nfn);

/*
 * Edits doc: sets key name of scope to value, or to a new generated value when value is NULL.
 * scope is "master" (name must be "_master"), "system", "host" or "functions/FN". 0; RP_EINVAL
 * (bad scope, name or value, as parse would refuse); RP_ETOOBIG (the scope is full); RP_EIO;
 * RP_ENOMEM.
 */
int rp_fn_keyset_set(json_t *doc, const char *scope, const char *name, const char *value);

/* Edits doc: deletes key name of scope. 0; RP_ENOENT; RP_EINVAL (the master key cannot be
 * deleted, only regenerated). */
int rp_fn_keyset_delete(json_t *doc, const char *scope, const char *name);

/* The value of key name in scope, or NULL (pointer into k). */
const char *rp_fn_keyset_get(const rp_fn_keyset *k, const char *scope, const char *name);

#endif
