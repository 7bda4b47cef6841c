/*
 * keyprov.h - root key providers: where the top of the key hierarchy lives and how it wraps the
 * keys below it (docs/encryption.md "Providers").
 *
 *   file        keys/root-<g>.key: 32 random bytes, mode 0600 (the legacy keys/root.key too)
 *   passphrase  keys/root-<g>.sealed: the 32 random bytes sealed under Argon2id(passphrase)
 *   pkcs11      an AES-256 secret key object in a PKCS#11 token (label "rampart-root-<g>"),
 *               created sensitive and non-extractable: its bytes never leave the token
 *
 * A provider wraps and unwraps 32-byte keys (the system key and the resource KEKs) with an AAD
 * naming what they are. It never hands out the root key: file and passphrase keep in locked
 * memory only a wrapping key derived from it (HKDF, "rampart/v1/root-wrap"); PKCS#11 keeps an
 * object handle and lets the token do AES-GCM.
 *
 * One rp_keyprov is one connection to a provider (a PKCS#11 session logged in with the PIN, or
 * the keys directory and, for the passphrase provider, the passphrase in locked memory for
 * creating later generations). Several generations can be loaded at once (a root rotation wraps
 * with the new one while the old one still unwraps). Every call is serialised by one mutex per
 * provider, so it may be shared by threads; calls may block (files, Argon2id, the HSM).
 *
 * Ownership: the keyring owns its provider (rp_keyprov_close wipes everything it holds).
 */
#ifndef RP_CRYPTO_KEYPROV_H
#define RP_CRYPTO_KEYPROV_H

#include "base/buf.h"
#include "crypto/keyring.h"

#include <stddef.h>
#include <stdint.h>

#define RP_KEYPROV_REF_MAX        128  /* a generation's reference: file name or label#id */
#define RP_KEYPROV_WRAP_LEN       64   /* bytes a wrapped 32-byte key takes, every provider */
#define RP_KEYPROV_PASSPHRASE_MAX 1024 /* longest passphrase accepted */

/* Argon2id parameters new sealed files get (each file records its own). */
#define RP_KEYPROV_ARGON2_T     3
#define RP_KEYPROV_ARGON2_M_KIB (64 * 1024)
#define RP_KEYPROV_ARGON2_P     1

typedef struct rp_keyprov rp_keyprov;

/*
 * Connects to the provider o->provider: for pkcs11 loads o->pkcs11_module, finds the token
 * labelled o->pkcs11_token and logs in with o->pkcs11_pin; for passphrase copies the passphrase
 * into locked memory; for all remembers o->keys_dir. No generation is loaded yet.
 * 0 and *out (close with rp_keyprov_close); RP_EINVAL (missing option), RP_ETOOBIG, RP_ENOENT
 * (module or token not found), RP_ECRYPTO (wrong PIN), RP_EIO (the module failed), RP_ENOMEM.
 * err names the cause; it never contains a PIN or passphrase.
 */
int rp_keyprov_open(const rp_keyring_opts *o, rp_keyprov **out, char *err, size_t errlen);

/* Wipes every loaded key and the passphrase, closes the HSM session. Accepts NULL. */
void rp_keyprov_close(rp_keyprov *p);

rp_root_provider rp_keyprov_type(const rp_keyprov *p);

/*
 * Chooses the reference generation gen will have (nothing is created): "root-<g>.key",
 * "root-<g>.sealed" or "rampart-root-<g>#<32 hex digits of a random CKA_ID>" into ref[cap]
 * (cap >= RP_KEYPROV_REF_MAX). Record it before rp_keyprov_generate, so a crash in between
 * leaves something rp_keyprov_destroy can find. 0, RP_EINVAL, RP_ETOOBIG, RP_ECRYPTO.
 */
int rp_keyprov_new_ref(rp_keyprov *p, uint32_t gen, char *ref, size_t cap);

/*
 * Creates generation gen's key at ref (from rp_keyprov_new_ref): a new file (O_EXCL, 0600,
 * fsync'ed with its directory) or a token object. Does not load it. 0, RP_EEXIST, RP_EINVAL,
 * RP_EIO, RP_ECRYPTO, RP_ENOMEM; on failure nothing is left behind.
 */
int rp_keyprov_generate(rp_keyprov *p, uint32_t gen, const char *ref);

/*
 * Loads generation gen from ref so wrap/unwrap can use it (loading a loaded generation again
 * is a no-op). 0; RP_ENOENT (no such file or object); RP_EPERM (a key file that is not a
 * regular 0600 file or is a symlink); RP_EPARSE (malformed file); RP_ECRYPTO (wrong
 * passphrase); RP_ETOOBIG (too many generations loaded); RP_EIO; RP_ENOMEM.
 */
int rp_keyprov_load(rp_keyprov *p, uint32_t gen, const char *ref);

/* Forgets a loaded generation (its wrapping key is wiped). No-op if not loaded. */
void rp_keyprov_unload(rp_keyprov *p, uint32_t gen);

/*
 * Destroys generation gen at ref for good: a key file is overwritten with zeros, fsync'ed and
 * unlinked (and its directory fsync'ed); a token object is destroyed. Unloads it first. A
 * reference with nothing behind it is not an error (a crash may have come before generate).
 * 0, RP_EINVAL, RP_EIO.
 */
int rp_keyprov_destroy(rp_keyprov *p, uint32_t gen, const char *ref);

/*
 * Wraps key under loaded generation gen with aad, appending RP_KEYPROV_WRAP_LEN bytes to out:
 * an RPE1 envelope (file, passphrase) or "RPH1" | IV (12) | ciphertext (32) | tag (16) made by
 * the token with CKM_AES_GCM (pkcs11). 0, RP_ENOENT (gen not loaded), RP_EINVAL, RP_ETOOBIG,
 * RP_ECRYPTO, RP_EIO, RP_ENOMEM.
 */
int rp_keyprov_wrap(rp_keyprov *p, uint32_t gen, const unsigned char key[RP_KEYRING_KEY_LEN],
                    const void *aad, size_t aadlen, rp_buf *out);

/*
 * Unwraps what rp_keyprov_wrap made with the same generation and aad into key (wiped on
 * failure). 0, RP_ENOENT (gen not loaded), RP_EPARSE (not a wrapped key), RP_ECRYPTO (altered,
 * or another aad or generation), RP_EIO.
 */
int rp_keyprov_unwrap(rp_keyprov *p, uint32_t gen, const void *w, size_t n, const void *aad,
                      size_t aadlen, unsigned char key[RP_KEYRING_KEY_LEN]);

/* ------------------------------------------------------------ passphrase-sealed file format */

/*
 * A sealed root key file (all integers big-endian), RP_KEYPROV_SEALED_LEN bytes:
 *   "RPS1" | u32 generation | u32 Argon2id t | u32 m (KiB) | u32 p | salt (16)
 *          | RPE1 envelope (64) of the 32-byte root key
 * key = Argon2id(passphrase, salt, t, m, p) (32 bytes); AAD = "rampart/v1/root-sealed" "\0"
 * followed by the 36 header bytes, so the parameters and the generation are authenticated.
 */
#define RP_KEYPROV_SEALED_MAGIC   "RPS1"
#define RP_KEYPROV_SALT_LEN       16
#define RP_KEYPROV_SEALED_HDR_LEN (4 + 4 * 4 + RP_KEYPROV_SALT_LEN)
#define RP_KEYPROV_SEALED_LEN     (RP_KEYPROV_SEALED_HDR_LEN + 64)

typedef struct rp_keyprov_sealed {
    uint32_t gen, t_cost, m_kib, lanes;
    const unsigned char *hdr; /* RP_KEYPROV_SEALED_HDR_LEN bytes, into the parsed data */
    const unsigned char *salt;
    const unsigned char *env; /* the envelope, 64 bytes */
} rp_keyprov_sealed;

/*
 * Parses a sealed file's bytes (borrowed by *out). Refuses Argon2id parameters outside
 * 1 <= t <= 16, 8 * p <= m <= 1 GiB, 1 <= p <= 16 so a damaged file cannot make the KDF run
 * for hours. 0 or RP_EPARSE.
 */
int rp_keyprov_sealed_parse(const void *data, size_t n, rp_keyprov_sealed *out);

/*
 * Opens a parsed file's envelope with the Argon2id output kek into key (wiped on failure).
 * 0, RP_EPARSE, RP_ECRYPTO (wrong passphrase or altered file).
 */
int rp_keyprov_sealed_open(const rp_keyprov_sealed *s, const unsigned char kek[32],
                           unsigned char key[RP_KEYRING_KEY_LEN]);

#endif
