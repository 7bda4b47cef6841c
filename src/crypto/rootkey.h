/*
 * rootkey.h - the install's root key: the top of the key hierarchy (ARCHITECTURE "Keys and
 * encryption at rest").
 *
 * Nothing is encrypted with the root key directly. Each use derives its own purpose-bound key
 * with HKDF-SHA256 (rp_rootkey_derive, info = a label such as "rampart/v1/keyfile"), so two
 * purposes never share a key and a new purpose needs no new secret.
 *
 * The handle is also what the key hierarchy (crypto/keyring.h) hands out as the install's
 * system key: rp_keyring_system builds one with rp_rootkey_from_bytes. An install made before
 * the key store existed used keys/root.key directly; the file functions below are its format
 * (and the file root-key provider's, crypto/keyprov.h). Callers never see the key bytes: they
 * only ask for derived keys.
 *
 * Ownership: a loaded key is owned by whoever loaded it and must be released with
 * rp_rootkey_free, which wipes it. A loaded key is immutable, so it can be shared read-only
 * across threads. Its memory is excluded from core dumps and locked in RAM where the system
 * allows it.
 */
#ifndef RP_CRYPTO_ROOTKEY_H
#define RP_CRYPTO_ROOTKEY_H

#include <stddef.h>

#define RP_ROOTKEY_LEN 32
/* Longest derived key rp_rootkey_derive hands out (HKDF-SHA256 allows 255 * 32). */
#define RP_ROOTKEY_DERIVE_MAX 64

typedef struct rp_rootkey rp_rootkey;

/*
 * Creates a new root key file: RP_ROOTKEY_LEN random bytes, created with O_CREAT|O_EXCL, mode
 * 0600, fsync'ed. Never overwrites: RP_EEXIST if path exists. RP_EIO on other system errors
 * (the partial file is removed), RP_ECRYPTO if the random generator fails.
 */
int rp_rootkey_file_create(const char *path);

/*
 * Loads a root key file into *out (caller frees with rp_rootkey_free).
 * RP_ENOENT if the file does not exist, RP_EPERM if it is not a regular file or is accessible
 * by group or others (a leaked key must not be silently accepted), RP_EPARSE if it is not
 * exactly RP_ROOTKEY_LEN bytes, RP_EIO / RP_ENOMEM otherwise. *out is untouched on failure.
 */
int rp_rootkey_file_load(const char *path, rp_rootkey **out);

/*
 * Makes a key handle holding a copy of key[0..RP_ROOTKEY_LEN) (the caller wipes its own copy).
 * 0 and *out (free with rp_rootkey_free), RP_EINVAL or RP_ENOMEM.
 */
int rp_rootkey_from_bytes(const unsigned char key[RP_ROOTKEY_LEN], rp_rootkey **out);

/* Wipes and frees the key. Accepts NULL. */
void rp_rootkey_free(rp_rootkey *k);

/*
 * Derives a purpose-bound key: HKDF-SHA256(ikm = root key, no salt, info = label), n bytes into
 * out. label must be a non-empty constant naming the purpose and a version
 * ("rampart/v1/keyfile"); the same label always gives the same key. 1 <= n <=
 * RP_ROOTKEY_DERIVE_MAX. 0, RP_EINVAL or RP_ECRYPTO (out is wiped on failure). The caller
 * wipes out (OPENSSL_cleanse) when done.
 */
int rp_rootkey_derive(const rp_rootkey *k, const char *label, unsigned char *out, size_t n);

/* ------------------------------------------------ internal (crypto/keyring.c, crypto/keyprov.c) */

/*
 * The key bytes (RP_ROOTKEY_LEN), borrowed: only the key hierarchy reads them, to wrap a legacy
 * root key as the system key. Never log or copy them elsewhere.
 */
const unsigned char *rp__rootkey_bytes(const rp_rootkey *k);

/*
 * Locked, non-dumpable memory for key material: n bytes (rounded up to whole pages) in their
 * own anonymous mapping, zeroed, MADV_DONTDUMP and mlock'ed (both best effort). NULL on failure.
 * rp__secmem_free wipes the n bytes and unmaps them (n as given to alloc); accepts NULL.
 */
void *rp__secmem_alloc(size_t n);
void rp__secmem_free(void *p, size_t n);

#endif
