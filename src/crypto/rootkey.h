/*
 * rootkey.h - the install's root key: the top of the key hierarchy (ARCHITECTURE "Keys and
 * encryption at rest").
 *
 * Nothing is encrypted with the root key directly. Each use derives its own purpose-bound key
 * with HKDF-SHA256 (rp_rootkey_derive, info = a label such as "rampart/v1/keyfile"), so two
 * purposes never share a key and a new purpose needs no new secret.
 *
 * Providers: today the key is 32 random bytes in a file (keys/root.key, mode 0600). Passphrase-
 * sealed and PKCS#11 providers come later behind the same opaque handle, which is why callers
 * never see the key bytes: they only ask for derived keys.
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

#endif
