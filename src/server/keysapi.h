/*
 * keysapi.h - the management API of the key hierarchy (docs/encryption.md "Operations"):
 *
 *     GET  /api/keys               {"provider","generation","keks","cmkKeks"}
 *     POST /api/keys/rotate-root   re-wraps every KEK under a new root key generation, online
 *
 * Both need a management credential and RBAC at "/" (Microsoft.Rampart/keys/read,
 * Microsoft.Rampart/keys/rotate/action: Owner has them). A rotation runs on libuv's thread pool
 * (it may run Argon2id or HSM calls), is audited durably, and is answered only then.
 */
#ifndef RP_SERVER_KEYSAPI_H
#define RP_SERVER_KEYSAPI_H

#include "crypto/keyring.h"
#include "http/router.h"
#include "iam/iam.h"

typedef struct rp_keysapi {
    rp_iam *iam;
    rp_keyring *kr;
} rp_keysapi;

/* Registers the routes; api must outlive the router. 0 or RP_E*. */
int rp_keysapi_register(rp_keysapi *api, rp_router *r);

#endif
