/*
 * vault.h - Key Vault: vaults as resources, and each vault's data plane (secrets and keys) at
 * https://NAME.vault.D/, speaking enough of Azure's REST API (api-version 2025-07-01) for the
 * unmodified @azure/keyvault-secrets and @azure/keyvault-keys SDKs (docs/vault.md).
 *
 * Every secret version and every private key is sealed under its own DEK, wrapped by the
 * vault's KEK in the keyring (crypto/keyring.h); the ciphertext lives in the store's ciphertext
 * file, the metadata and wrapped DEK in the content database. Requests are authenticated with
 * the identity service's bearer tokens (the SDK's challenge flow), authorized against the Key
 * Vault data actions, and every read of secret material is audited durably before the answer.
 *
 * Threads: open/close on the main thread; rp_vault_loop_start/stop on every loop thread that
 * serves requests, like rp_iam_loop_start.
 */
#ifndef RP_VAULT_VAULT_H
#define RP_VAULT_VAULT_H

#include "base/buf.h"
#include "crypto/keyring.h"
#include "http/router.h"
#include "iam/iam.h"
#include "store/store.h"

#include <uv.h>

#define RP_VAULT_NAME_MIN          3
#define RP_VAULT_NAME_MAX          24
#define RP_VAULT_RETENTION_DEFAULT 90
#define RP_VAULT_RETENTION_MIN     7
#define RP_VAULT_RETENTION_MAX     90

typedef struct rp_vault rp_vault;

typedef struct rp_vault_opts {
    const char *domain;  /* D */
    int https_port;      /* for ids (omitted when 443); rp_vault_set_port once bound */
    rp_store *store;     /* borrowed; must outlive the vault */
    rp_iam *iam;         /* borrowed */
    rp_keyring *keyring; /* borrowed */
    /* -HSM keys: the PKCS#11 module, token label and user PIN (copied nowhere; the caller
     * wipes it). NULL module: -HSM keys are refused. */
    const char *hsm_module;
    const char *hsm_token;
    const char *hsm_pin;
} rp_vault_opts;

/* Opens the service (repairs what a crash left half-written). err names the cause. */
int rp_vault_open(const rp_vault_opts *o, rp_vault **out, char *err, size_t errlen);
/* All loops must have stopped. Accepts NULL. */
void rp_vault_close(rp_vault *v);

/* The public HTTPS port, once the listener is bound (main thread, before loops serve). */
void rp_vault_set_port(rp_vault *v, int https_port);

/* Per loop thread, after rp_iam_loop_start / before rp_iam_loop_stop. */
int rp_vault_loop_start(rp_vault *v, uv_loop_t *loop);
void rp_vault_loop_stop(rp_vault *v);

/* Registers the data plane ("*.vault") and the management collection /api/vaults on D. */
int rp_vault_register(rp_vault *v, rp_router *r);

/* Why a secret could not be read for a Key Vault reference: App Service's ResolveStatus. */
typedef enum {
    RP_VAULT_REF_RESOLVED = 0,
    RP_VAULT_REF_VAULT_NOT_FOUND,
    RP_VAULT_REF_SECRET_NOT_FOUND,
    RP_VAULT_REF_VERSION_NOT_FOUND,
    RP_VAULT_REF_DENIED, /* AccessToKeyVaultDenied: the identity holds no role that reads it */
    RP_VAULT_REF_OTHER   /* OtherReasons: disabled, expired, not yet valid, key unusable, ... */
} rp_vault_ref_status;

/*
 * Reads secret vault/name[/version] (version NULL or "": the latest) on behalf of principal_id
 * (an app's managed identity) for a Key Vault reference: the same rules as a GET of the
 * secret by that identity - RBAC (getSecret at the secret's scope), enabled, nbf/exp - and the
 * same durable audit record before the value is returned. Appends the value to *value (release
 * it with rp_buf_free_secret) and writes the version read into used_version. Blocking (store
 * reads, audit sync): the thread pool or a service thread, never a serving loop. 0 with
 * *status RP_VAULT_REF_RESOLVED; RP_ENOENT / RP_EPERM with *status saying why and *detail a
 * static English sentence; RP_EDB, RP_ENOMEM, RP_EIO.
 */
int rp_vault_secret_for(rp_vault *v, const char *principal_id, const char *vault, const char *name,
                        const char *version, rp_buf *value, char used_version[33],
                        rp_vault_ref_status *status, const char **detail);
const char *rp_vault_ref_status_name(rp_vault_ref_status s);

/* Valid vault name: 3-24 of [a-z0-9-], starting with a letter, ending with a letter or digit,
 * no "--" (Azure's rule; rampart's names are lower case because they are DNS labels). */
int rp_vault_name_valid(const char *name);

#endif
