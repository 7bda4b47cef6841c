/*
 * keyring.h - the key hierarchy every service encrypts with (ARCHITECTURE "Keys and encryption
 * at rest", docs/encryption.md).
 *
 *     root key (provider: file | passphrase | pkcs11; generation g)
 *       └─ wraps the system key and every resource KEK        (key store: DATA/keys/keystore.db)
 *            └─ a resource KEK wraps per-object DEKs          (content database: wrapped DEKs)
 *                 └─ a DEK seals one object, AAD = its identity (ciphertext store)
 *
 * The system key is a KEK like the others, for the platform's own purposes: rp_rootkey_derive
 * on it gives the key-file sealing key, the audit checkpoint key, ... (rp_keyring_system).
 * Because it is wrapped rather than derived, rotating the root key changes nothing below it.
 * An install made before the key store existed has only keys/root.key: its system key is those
 * same 32 bytes, so every key derived before stays the same.
 *
 * A resource KEK is wrapped by the root key, or by a customer-managed key (an RSA key in a vault)
 * through the callbacks the vault registers (rp_keyring_set_cmk_ops). Unwrapped KEKs are kept in
 * memory (locked, not dumpable, wiped when dropped); rp_keyring_cmk_changed drops the ones a
 * customer key wraps, so disabling that key makes the resource's data unreadable at once, and
 * re-enabling it makes it readable again.
 *
 * Threads: open/close/create/kek_ensure/kek_drop/rotate_root/set_cmk block (key store writes,
 * HSM calls) and belong on the main thread, a worker thread or the CLI. seal/open_object and
 * cmk_changed are thread-safe and, once the resource's KEK is in memory, do no I/O, so loop
 * threads call them.
 */
#ifndef RP_CRYPTO_KEYRING_H
#define RP_CRYPTO_KEYRING_H

#include "base/buf.h"
#include "crypto/rootkey.h"

#include <stddef.h>
#include <stdint.h>

#define RP_KEYRING_KEY_LEN 32
/* Bytes a wrapped DEK takes ("RPK1" | KEK version | RPE1 envelope of 32 bytes). */
#define RP_KEYRING_WDEK_LEN     (4 + 4 + 32 + 32)
#define RP_KEYRING_RESOURCE_MAX 256       /* "/vaults/name" ... */
#define RP_KEYRING_KID_MAX      512       /* customer-managed key ids */
#define RP_KEYRING_OBJECT_MAX   2048      /* an object's name inside its resource */
#define RP_KEYRING_SYSTEM       "/system" /* the system key's resource (not for services) */

typedef enum {
    RP_ROOT_FILE = 1,       /* keys/root-<g>.key, 0600 */
    RP_ROOT_PASSPHRASE = 2, /* keys/root-<g>.sealed: Argon2id(passphrase) seals the root key */
    RP_ROOT_PKCS11 = 3      /* an AES-256 key object in a PKCS#11 token that never leaves it */
} rp_root_provider;

typedef struct rp_keyring_opts {
    const char *keys_dir; /* DATA/keys (created 0700 by create) */
    rp_root_provider provider;
    const char *passphrase; /* RP_ROOT_PASSPHRASE */
    size_t passphrase_len;
    const char *pkcs11_module; /* RP_ROOT_PKCS11: the module (.so), its token label, user PIN */
    const char *pkcs11_token;
    const char *pkcs11_pin;
} rp_keyring_opts;

typedef struct rp_keyring rp_keyring;

/*
 * Creates the key hierarchy of a new install in o->keys_dir: root key generation 1 with
 * o->provider, the key store and the system key. RP_EEXIST if a key store is there already.
 * On failure err names the cause and nothing is left behind.
 */
int rp_keyring_create(const rp_keyring_opts *o, char *err, size_t errlen);

/*
 * Which provider the install in keys_dir uses (so serve knows whether it needs a passphrase
 * before it can open). An install with only the legacy keys/root.key is RP_ROOT_FILE.
 * 0, RP_ENOENT (no key store and no root key), RP_EIO, RP_EDB.
 */
int rp_keyring_provider_of(const char *keys_dir, rp_root_provider *out);

/*
 * Opens the hierarchy: unseals the current root key, unwraps the system key (upgrading a legacy
 * install) and finishes a root rotation that a crash interrupted. Resource KEKs are unwrapped on
 * first use. RP_ECRYPTO for a wrong passphrase or PIN (err says which), RP_ENOENT, RP_EPERM
 * (key file readable by others), RP_EIO, RP_EDB, RP_ENOMEM, RP_EUNSUPPORTED (o->provider differs
 * from the install's).
 */
int rp_keyring_open(const rp_keyring_opts *o, rp_keyring **out, char *err, size_t errlen);

/* Wipes every key in memory, closes the key store and the HSM session. Accepts NULL. */
void rp_keyring_close(rp_keyring *kr);

/* The system key, for rp_rootkey_derive (borrowed; lives as long as kr). */
const rp_rootkey *rp_keyring_system(const rp_keyring *kr);

/*
 * Makes sure resource (an RBAC-style scope, "/vaults/v1") has a KEK: creates a random one
 * wrapped by the current root key if it has none. 0 (created or already there), RP_EINVAL,
 * RP_EDB, RP_ECRYPTO, RP_ENOMEM.
 */
int rp_keyring_kek_ensure(rp_keyring *kr, const char *resource);

/*
 * Destroys the resource's KEK (every version) in the key store and in memory: whatever it
 * wrapped can never be opened again (crypto-shredding on purge). 0 or RP_ENOENT, RP_EDB.
 */
int rp_keyring_kek_drop(rp_keyring *kr, const char *resource);

/*
 * Seals one object: a fresh random DEK encrypts pt (AES-256-GCM, AAD = resource "\0" object)
 * into ct (an RPE1 envelope, appended), and the resource's current KEK wraps the DEK into wdek
 * (RP_KEYRING_WDEK_LEN bytes appended, AAD = resource "\0" object). The DEK is wiped before
 * return. 0; RP_ENOENT (no KEK: rp_keyring_kek_ensure first); RP_EPERM (the KEK is wrapped by a
 * customer key that cannot be used now: *reason, if not NULL, gets a static English reason);
 * RP_EINVAL, RP_ETOOBIG, RP_ENOMEM, RP_ECRYPTO.
 */
int rp_keyring_seal(rp_keyring *kr, const char *resource, const char *object, const void *pt,
                    size_t n, rp_buf *wdek, rp_buf *ct, const char **reason);

/*
 * Opens what rp_keyring_seal produced for the same resource and object, appending the plaintext
 * to pt (release pt with rp_buf_free_secret). Errors as seal, plus RP_EPARSE (not a wrapped DEK
 * or envelope) and RP_ECRYPTO (altered bytes, or sealed for another object).
 */
int rp_keyring_open_object(rp_keyring *kr, const char *resource, const char *object,
                           const void *wdek, size_t wn, const void *ct, size_t cn, rp_buf *pt,
                           const char **reason);

/*
 * Rotates the root key online: a new generation is created with the same provider, every KEK
 * and the system key are re-wrapped under it in one key-store transaction, then the old
 * generation is destroyed. Data and DEKs are not touched. A crash at any point leaves either the
 * old or the new generation in force, and rp_keyring_open cleans up the other. Writes the new
 * generation to *gen. 0, RP_EIO, RP_EDB, RP_ECRYPTO, RP_ENOMEM (err names the step).
 */
int rp_keyring_rotate_root(rp_keyring *kr, uint32_t *gen, char *err, size_t errlen);

typedef struct rp_keyring_status {
    rp_root_provider provider;
    uint32_t generation;
    size_t keks;     /* resources with a KEK */
    size_t cmk_keks; /* of those, wrapped by a customer-managed key */
} rp_keyring_status;
void rp_keyring_get_status(rp_keyring *kr, rp_keyring_status *out);

/* ------------------------------------------------------------ customer-managed keys */

/*
 * What the vault service provides so a KEK can be wrapped by one of its keys (RSA-OAEP-256).
 * wrap: kid names a key, with or without a version; wraps the 32-byte kek and writes the
 * versioned kid it used into used_kid[cap]. unwrap: with exactly that versioned kid. Both return
 * 0, or RP_EPERM with *reason set (key disabled, expired, deleted, not permitted ...), or another
 * RP_E*. They may block and are called without keyring locks held.
 */
typedef struct rp_keyring_cmk_ops {
    int (*wrap)(void *arg, const char *kid, const unsigned char kek[RP_KEYRING_KEY_LEN],
                rp_buf *out, char *used_kid, size_t cap, const char **reason);
    int (*unwrap)(void *arg, const char *used_kid, const void *w, size_t n,
                  unsigned char kek[RP_KEYRING_KEY_LEN], const char **reason);
    void *arg;
} rp_keyring_cmk_ops;

/* Registers the callbacks (copied). Before any CMK-wrapped KEK is used. */
void rp_keyring_set_cmk_ops(rp_keyring *kr, const rp_keyring_cmk_ops *ops);

/*
 * Re-wraps resource's KEK with the customer key kid (unversioned: the latest version, followed
 * by rp_keyring_cmk_changed), or with the root key again when kid is NULL. The KEK itself, and
 * so every DEK and all data, stay the same. 0, RP_ENOENT, RP_EPERM (+reason), RP_EDB, ...
 */
int rp_keyring_set_cmk(rp_keyring *kr, const char *resource, const char *kid, const char **reason);

/*
 * Tells the keyring that customer key key_base (its kid without version) changed: disabled,
 * enabled, deleted, recovered or rotated. Drops from memory every KEK that key wraps (the next
 * seal/open unwraps again through the callbacks, and fails while the key is unusable). For an
 * unversioned configuration whose latest version changed, the KEK is re-wrapped with the new
 * version on its next unwrap. Thread-safe, no I/O.
 * A versioned kid is its key's kid, '/', then the version (as in Key Vault key ids): a KEK
 * matches key_base when its configured kid or the versioned kid that wrapped it is key_base or
 * starts with key_base "/".
 */
void rp_keyring_cmk_changed(rp_keyring *kr, const char *key_base);

/*
 * The customer key configured for resource (as given to set_cmk) into kid[cap], or "" when the
 * root key wraps it. 0 or RP_ENOENT.
 */
int rp_keyring_cmk_of(rp_keyring *kr, const char *resource, char *kid, size_t cap);

/* ------------------------------------------------------------ formats (no keyring state) */

/*
 * The byte formats seal/open use, as pure functions for tools, tests and the fuzzer.
 *   wrapped DEK: "RPK1" | u32 BE KEK version | RPE1 envelope of the 32-byte DEK under the KEK,
 *                AAD = "dek" "\0" resource "\0" object
 *   object:      RPE1 envelope of the plaintext under the DEK,
 *                AAD = "obj" "\0" resource "\0" object
 * parse: 0 and *version, or RP_EPARSE. wdek_open: 0 and dek (wiped on failure), RP_EPARSE,
 * RP_ECRYPTO, RP_EINVAL. wdek_seal appends RP_KEYRING_WDEK_LEN bytes to out.
 * obj_seal/obj_open: as rp_aead_seal/rp_aead_open with the AAD above.
 */
int rp_keyring_wdek_parse(const void *wdek, size_t wn, uint32_t *version);
int rp_keyring_wdek_seal(const unsigned char kek[RP_KEYRING_KEY_LEN], uint32_t version,
                         const char *resource, const char *object,
                         const unsigned char dek[RP_KEYRING_KEY_LEN], rp_buf *out);
int rp_keyring_wdek_open(const unsigned char kek[RP_KEYRING_KEY_LEN], const char *resource,
                         const char *object, const void *wdek, size_t wn,
                         unsigned char dek[RP_KEYRING_KEY_LEN]);
int rp_keyring_obj_seal(const unsigned char dek[RP_KEYRING_KEY_LEN], const char *resource,
                        const char *object, const void *pt, size_t n, rp_buf *ct);
int rp_keyring_obj_open(const unsigned char dek[RP_KEYRING_KEY_LEN], const char *resource,
                        const char *object, const void *ct, size_t cn, rp_buf *pt);

#endif
