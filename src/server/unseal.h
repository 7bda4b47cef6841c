/*
 * unseal.h - the sealed state of an install whose root key is sealed by a passphrase
 * (docs/encryption.md "Passphrase provider", docs/operations.md "Sealed start").
 *
 * Until the passphrase arrives nothing can be decrypted - not the TLS key, not the token
 * signing key, not the audit checkpoint key - so `rampart serve` answers only two requests, on
 * the loopback-only identity listener (plain HTTP, like the managed identity endpoint):
 *     GET  /health   {"status":"sealed"}
 *     POST /unseal   {"passphrase":"..."}  -> 200 {"status":"unsealed"} or 403
 * `rampart unseal` sends the second. A wrong passphrase costs the caller one Argon2id run and a
 * one-second pause; every attempt is logged (never the passphrase itself).
 */
#ifndef RP_SERVER_UNSEAL_H
#define RP_SERVER_UNSEAL_H

#include "crypto/keyring.h"
#include "server/config.h"

#include <stddef.h>

/* Longest passphrase accepted (bytes). */
#define RP_UNSEAL_PASSPHRASE_MAX 1024

/*
 * Serves the sealed state until a passphrase opens the keyring described by ko (ko->passphrase
 * is ignored), then stops and hands the opened keyring to *out. Prints
 * {"event":"sealed","unseal":"http://HOST:PORT/unseal","pid":N} on stdout when listening.
 * SIGTERM/SIGINT end it with RP_ECLOSED. err names any other failure (binding the listener).
 */
int rp_unseal_serve(const rp_config *cfg, const rp_keyring_opts *ko, rp_keyring **out, char *err,
                    size_t errlen);

#endif
