/*
 * aead.h - AES-256-GCM in a small versioned envelope: the one way rampart encrypts bytes.
 *
 * Envelope (what is stored):  "RPE1" | nonce (12 random bytes) | ciphertext | tag (16 bytes)
 *
 * The AAD is the identity of the object the bytes belong to (a vault/secret/version name, a key
 * file label ...). It is authenticated but never stored: the reader supplies it again, so an
 * envelope copied onto another object fails to open instead of decrypting as that object.
 *
 * Nonces are random. With 96-bit random nonces one key may seal at most 2^32 envelopes; keys in
 * the hierarchy are per object or per purpose, far below that.
 *
 * Both calls are stateless and thread-safe.
 */
#ifndef RP_CRYPTO_AEAD_H
#define RP_CRYPTO_AEAD_H

#include "base/buf.h"

#include <stddef.h>

#define RP_AEAD_KEY_LEN   32
#define RP_AEAD_MAGIC     "RPE1"
#define RP_AEAD_MAGIC_LEN 4
#define RP_AEAD_NONCE_LEN 12
#define RP_AEAD_TAG_LEN   16
/* Bytes an envelope adds to the plaintext. */
#define RP_AEAD_OVERHEAD (RP_AEAD_MAGIC_LEN + RP_AEAD_NONCE_LEN + RP_AEAD_TAG_LEN)
/* Largest plaintext and AAD accepted (large objects are chunked by their service). */
#define RP_AEAD_MAX_PLAINTEXT ((size_t)1 << 30)
#define RP_AEAD_MAX_AAD       ((size_t)1 << 16)

/*
 * Seals pt[0..ptlen) under key with aad and appends the envelope (ptlen + RP_AEAD_OVERHEAD
 * bytes) to out, which the caller has initialised with rp_buf_init and a big enough max.
 * aad may be NULL when aadlen is 0; pt may be NULL when ptlen is 0.
 * 0, RP_EINVAL, RP_ETOOBIG (over the limits above or out's max), RP_ENOMEM or RP_ECRYPTO;
 * on failure out is left as it was.
 */
int rp_aead_seal(const unsigned char key[32], const void *aad, size_t aadlen, const void *pt,
                 size_t ptlen, rp_buf *out);

/*
 * Checks and decrypts an envelope sealed with the same key and aad, appending the plaintext to
 * out. Room is reserved before decryption so the plaintext is never left behind in memory freed
 * by a realloc: when it is secret, release out with rp_buf_free_secret.
 * 0; RP_EPARSE if env is not an envelope (too short, unknown magic); RP_ECRYPTO if the tag does
 * not verify (wrong key, wrong aad, altered bytes); RP_EINVAL, RP_ETOOBIG, RP_ENOMEM.
 * On failure out keeps its previous length and every byte this call wrote is wiped.
 */
int rp_aead_open(const unsigned char key[32], const void *aad, size_t aadlen, const void *env,
                 size_t envlen, rp_buf *out);

#endif
