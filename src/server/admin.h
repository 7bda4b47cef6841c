/*
 * admin.h - the first administrator credential: the management API's bearer token until the
 * identity service replaces it.
 *
 * Token format: "rpa_" + base64url(8-byte id) + "." + base64url(32 random bytes), 59 characters.
 * The "rpa_" prefix makes a leaked token easy to recognise (secret scanners, logs). Only the
 * SHA-256 of the whole token is stored (table admin_credentials, keyed by the id text), so the
 * database alone does not grant access; the token itself is shown once, by `rampart init`.
 * A fast hash is enough: the secret part is 256 random bits, there is nothing to brute-force.
 *
 * Usage: rp_admin_token_create inside a store write; at start-up rp_admin_creds_load on any
 * connection, then rp_admin_creds_check per request from any thread.
 */
#ifndef RP_SERVER_ADMIN_H
#define RP_SERVER_ADMIN_H

#include <sqlite3.h>
#include <stddef.h>

#define RP_ADMIN_TOKEN_PREFIX "rpa_"
#define RP_ADMIN_ID_BYTES     8
#define RP_ADMIN_SECRET_BYTES 32
/* strlen of a token: 4 + 11 + 1 + 43. A buffer needs RP_ADMIN_TOKEN_LEN + 1. */
#define RP_ADMIN_TOKEN_LEN 59
/* Most credentials rp_admin_creds_load accepts. */
#define RP_ADMIN_MAX_CREDS 1024

/*
 * Creates a credential: random id and secret, inserts (id, SHA-256(token), now) into
 * admin_credentials on db and writes the NUL-terminated token into token_out[cap]
 * (cap > RP_ADMIN_TOKEN_LEN). Meant to run inside a store write (rp_store_write_fn), so the row
 * commits or rolls back with it. The caller shows the token once and wipes it (OPENSSL_cleanse).
 * 0, RP_EINVAL, RP_ETOOBIG (cap too small), RP_ECRYPTO, RP_EDB; token_out is wiped on failure.
 */
int rp_admin_token_create(sqlite3 *db, char *token_out, size_t cap);

/* The credential hashes loaded from the database. Immutable once loaded: share it freely. */
typedef struct rp_admin_creds rp_admin_creds;

/*
 * Loads every row of admin_credentials into a new set (caller frees with rp_admin_creds_free).
 * 0 and *out; RP_EDB, RP_EPARSE (a row with a malformed id or hash), RP_ETOOBIG (more than
 * RP_ADMIN_MAX_CREDS), RP_ENOMEM. An empty table gives an empty set that accepts nothing.
 */
int rp_admin_creds_load(sqlite3 *db, rp_admin_creds **out);

/* Frees the set. Accepts NULL. */
void rp_admin_creds_free(rp_admin_creds *c);

/*
 * 0 if token[0..n) is a well-formed token whose hash matches the stored credential with its id,
 * RP_EPERM otherwise (malformed, unknown id, wrong secret, c NULL). The comparison of hashes is
 * constant-time and every stored credential is visited whatever the input, so the time taken
 * reveals nothing about the secret part. Thread-safe.
 */
int rp_admin_creds_check(const rp_admin_creds *c, const char *token, size_t n);

#endif
