/*
 * kvkey.h - Key Vault key material: RSA and EC private keys and the cryptographic operations of
 * the keys API (encrypt / decrypt / wrapKey / unwrapKey / sign / verify), with OpenSSL 3 EVP.
 *
 * Workload: the vault creates or imports a key once, serialises it (rp_kvkey_to_der) and seals
 * the bytes under a DEK; on each crypto request it needs the parsed key. Parsing PKCS#8 and
 * setting up RSA's CRT / Montgomery state costs about as much as one private operation, so the
 * vault keeps rp_kvkey handles (in a cache of its own) and calls the operations on them: an
 * RSA-2048 unwrapKey is then one EVP_PKEY_CTX set-up plus the RSA private operation.
 *
 * Handles: an rp_kvkey owns one EVP_PKEY holding private material. It is immutable after
 * creation and reference-counted (rp_kvkey_ref / rp_kvkey_free are atomic); every operation
 * makes a fresh EVP_PKEY_CTX, so any number of threads may use one handle at once. Freeing the
 * last reference wipes what this module derived from the key (see RSA1_5 below) and frees the
 * EVP_PKEY, which OpenSSL wipes itself.
 *
 * Keys accepted anywhere (generate, DER, JWK): RSA of exactly 2048, 3072 or 4096 bits with an
 * odd public exponent 3 <= e <= 2^32-1; EC on P-256, P-384, P-521 and P-256K (secp256k1) with a
 * named curve. Anything else is RP_EINVAL (a size or exponent we refuse) or RP_EUNSUPPORTED (a
 * curve or key type we do not implement, e.g. oct, Ed25519, brainpool).
 *
 * Algorithms (Key Vault names, case-sensitive):
 *   RSA-OAEP      OAEP, SHA-1 and MGF1-SHA-1 (Node crypto.publicEncrypt's default, which the SDK
 *                 uses locally for encrypt/wrapKey, so unwrap here must match it)
 *   RSA-OAEP-256  OAEP, SHA-256 and MGF1-SHA-256
 *   RSA1_5        PKCS#1 v1.5 encryption. Decryption is not a padding oracle: it uses implicit
 *                 rejection (draft-irtf-cfrg-rsa-guidance, the scheme of OpenSSL >= 3.2, which
 *                 is implemented here because the OpenSSL 3.0 we build against lacks it). A
 *                 ciphertext with bad padding "decrypts" without error to a pseudo-random
 *                 message derived (HMAC-SHA-256) from the private exponent and the ciphertext;
 *                 the padding check and the choice between the real and the synthetic message
 *                 are constant-time, so neither the status nor the timing says which happened.
 *                 Callers must not add a check of their own that reveals it (e.g. refusing
 *                 outputs of the "wrong" length with a distinct error).
 *   RS256/384/512 RSASSA-PKCS1-v1_5 over the given digest (not hashed again); the digest must be
 *                 32 / 48 / 64 bytes
 *   PS256/384/512 RSASSA-PSS, MGF1 with the same hash, salt length = hash length; same digests
 *   ES256 (P-256, 32-byte digest), ES384 (P-384, 48), ES512 (P-521, 64), ES256K (P-256K, 32):
 *                 ECDSA with JWS signatures: raw r||s, each zero-padded to the curve's width
 *                 (64, 96, 132, 64 bytes), never DER
 * An algorithm that does not suit the key ("RSA-OAEP" on an EC key, ES384 on a P-256 key, any
 * AES algorithm) is RP_EINVAL with reason "the key type does not support this algorithm"; an
 * encryption algorithm given to sign (or the reverse) is RP_EINVAL too.
 *
 * Errors: every operation returns 0 or RP_EINVAL (bad input: unknown or unsuitable alg, wrong
 * length), RP_EUNSUPPORTED, RP_ECRYPTO (OpenSSL failed, e.g. an OAEP ciphertext that does not
 * decrypt) or RP_ENOMEM, and sets *reason (when reason is non-NULL) to a static English
 * sentence fit for a Key Vault error message. Reasons never contain key material or input.
 * OpenSSL's error queue is cleared before returning.
 *
 * Allocation: rp_malloc for handles and DER output; OpenSSL allocates through its own
 * functions. Nothing here aborts on OOM.
 */
#ifndef RP_VAULT_KVKEY_H
#define RP_VAULT_KVKEY_H

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

/* Largest output of any operation (an RSA-4096 block); a buffer this big always suffices. */
#define RP_KVKEY_MAX_OUT 512
/* Default RSA public exponent (create without public_exponent). */
#define RP_KVKEY_RSA_E_DEFAULT 65537
/* Largest RSA public exponent accepted. */
#define RP_KVKEY_RSA_E_MAX UINT64_C(0xffffffff)
/* Largest PKCS#8 DER accepted by rp_kvkey_from_der (an RSA-4096 key is about 2.4 KB). */
#define RP_KVKEY_MAX_DER (16 * 1024)

typedef enum { RP_KVKEY_RSA = 1, RP_KVKEY_EC = 2 } rp_kvkey_type;

/* Key operations (JWK key_ops) as bits, so that a key's allowed set is a mask. */
enum {
    RP_KVOP_ENCRYPT = 1u << 0,
    RP_KVOP_DECRYPT = 1u << 1,
    RP_KVOP_SIGN = 1u << 2,
    RP_KVOP_VERIFY = 1u << 3,
    RP_KVOP_WRAP_KEY = 1u << 4,
    RP_KVOP_UNWRAP_KEY = 1u << 5,
    RP_KVOP_IMPORT = 1u << 6,
    RP_KVOP_EXPORT = 1u << 7
};
/* Every operation an RSA key can do, and an EC key (Key Vault's defaults when key_ops is
 * absent). */
#define RP_KVOP_RSA_ALL                                                                            \
    (RP_KVOP_ENCRYPT | RP_KVOP_DECRYPT | RP_KVOP_SIGN | RP_KVOP_VERIFY | RP_KVOP_WRAP_KEY |        \
     RP_KVOP_UNWRAP_KEY)
#define RP_KVOP_EC_ALL (RP_KVOP_SIGN | RP_KVOP_VERIFY)

typedef struct rp_kvkey rp_kvkey;

/* ---------------------------------------------------------------- creating and storing */

/*
 * Generates an RSA key of bits (2048, 3072 or 4096) with public exponent e (0 means
 * RP_KVKEY_RSA_E_DEFAULT; otherwise odd, 3..RP_KVKEY_RSA_E_MAX). 0 and *out (one reference), or
 * RP_EINVAL (bits or e refused), RP_ENOMEM, RP_ECRYPTO with *out untouched.
 */
int rp_kvkey_generate_rsa(int bits, uint64_t e, rp_kvkey **out, const char **reason);

/*
 * Generates an EC key on crv, a Key Vault curve name: "P-256", "P-384", "P-521" or "P-256K".
 * 0 and *out, or RP_EUNSUPPORTED (another name), RP_EINVAL (NULL), RP_ENOMEM, RP_ECRYPTO.
 */
int rp_kvkey_generate_ec(const char *crv, rp_kvkey **out, const char **reason);

/*
 * The private key as PKCS#8 PrivateKeyInfo DER: 0 and *der (rp_malloc'ed, *n bytes), which the
 * caller seals and then releases with rp_kvkey_der_free (it wipes). RP_EINVAL, RP_ENOMEM,
 * RP_ECRYPTO with *der and *n untouched.
 */
int rp_kvkey_to_der(const rp_kvkey *k, unsigned char **der, size_t *n);

/* Wipes der[0..n) and frees it. Accepts NULL. */
void rp_kvkey_der_free(unsigned char *der, size_t n);

/*
 * Loads what rp_kvkey_to_der wrote: exactly one unencrypted PKCS#8 PrivateKeyInfo (trailing
 * bytes are refused) holding a key this module accepts. der stays the caller's (wipe it);
 * copies made here are wiped. 0 and *out, or RP_EINVAL (not such a key, or over
 * RP_KVKEY_MAX_DER), RP_EUNSUPPORTED, RP_ENOMEM, RP_ECRYPTO with *out untouched.
 */
int rp_kvkey_from_der(const unsigned char *der, size_t n, rp_kvkey **out, const char **reason);

/*
 * Imports a private JWK (a JSON object, e.g. the "key" of an ImportKey body):
 *   kty "RSA" / "RSA-HSM": n, e, d, p, q, dp, dq, qi all required;
 *   kty "EC" / "EC-HSM":   crv, x, y (exactly the curve's width) and d (at most the width).
 * Binary members are base64url with or without padding, standard alphabet accepted
 * (rp_kvkey_b64_decode). Other members (kid, key_ops, ...) are ignored here. The key is
 * validated in full (RSA: primes, n = p*q, d, CRT values; EC: point on the curve, d*G = (x,y)),
 * so an inconsistent key is refused, as is a public-only one. kty "oct" / "oct-HSM" is
 * RP_EUNSUPPORTED. 0 and *out, or RP_EINVAL / RP_EUNSUPPORTED / RP_ENOMEM / RP_ECRYPTO with a
 * reason. Decoded private values are wiped; the JSON strings are the caller's to wipe.
 */
int rp_kvkey_from_jwk(const json_t *jwk, rp_kvkey **out, const char **reason);

/*
 * The public JWK as Key Vault returns it, in *out (new reference; caller json_decref's):
 *   RSA: {"kid","kty","key_ops","n","e"}     EC: {"kid","kty","key_ops","crv","x","y"}
 * kid is copied as given (non-empty); kty is written as given and must name the key's family
 * ("RSA"/"RSA-HSM" for RSA, "EC"/"EC-HSM" for EC); key_ops lists the bits of ops in the order
 * encrypt, decrypt, sign, verify, wrapKey, unwrapKey, import, export. n and e are minimal
 * unpadded base64url, x and y exactly the curve's width. Never contains d, p, q, dp, dq, qi.
 * 0, RP_EINVAL (NULL, empty kid, kty not of the key's family), RP_ENOMEM, RP_ECRYPTO.
 */
int rp_kvkey_public_jwk(const rp_kvkey *k, const char *kid, const char *kty, unsigned ops,
                        json_t **out);

/* The key's family. */
rp_kvkey_type rp_kvkey_type_of(const rp_kvkey *k);
/* Modulus size in bits (RSA) or the curve's size in bits (256, 384, 521, 256). */
int rp_kvkey_bits(const rp_kvkey *k);
/* "P-256", "P-384", "P-521" or "P-256K" for EC keys, NULL for RSA (static strings). */
const char *rp_kvkey_crv(const rp_kvkey *k);

/* Adds a reference (thread-safe) and returns k; NULL for NULL. */
rp_kvkey *rp_kvkey_ref(rp_kvkey *k);
/* Drops a reference (thread-safe); the last one wipes and frees. Accepts NULL. */
void rp_kvkey_free(rp_kvkey *k);

/* ---------------------------------------------------------------- operations */

/*
 * Common contract: k and alg non-NULL; in[0..n) the input; out[0..cap) receives the result and
 * *outlen its length. cap must be at least the key's largest output (the modulus size for RSA,
 * twice the curve width for EC; RP_KVKEY_MAX_OUT always suffices), else RP_EINVAL. On failure
 * out may hold garbage (decrypt wipes what it wrote) and *outlen is untouched.
 *
 * encrypt / wrapKey: RSA-OAEP, RSA-OAEP-256, RSA1_5. Plaintext at most k-42, k-66, k-11 bytes
 * (k = modulus bytes); empty plaintext is allowed. Randomised: two calls give different output.
 * decrypt / unwrapKey: same algorithms; the ciphertext must be exactly k bytes. RSA-OAEP(-256)
 * failures are RP_ECRYPTO "decryption failed"; RSA1_5 never fails on padding (see the file
 * comment). The plaintext in out is secret: the caller wipes it.
 * wrapKey / unwrapKey are encrypt / decrypt under another name (Key Vault permits them
 * separately through key_ops; the cryptography is the same).
 */
int rp_kvkey_encrypt(const rp_kvkey *k, const char *alg, const unsigned char *in, size_t n,
                     unsigned char *out, size_t cap, size_t *outlen, const char **reason);
int rp_kvkey_decrypt(const rp_kvkey *k, const char *alg, const unsigned char *in, size_t n,
                     unsigned char *out, size_t cap, size_t *outlen, const char **reason);
int rp_kvkey_wrap_key(const rp_kvkey *k, const char *alg, const unsigned char *in, size_t n,
                      unsigned char *out, size_t cap, size_t *outlen, const char **reason);
int rp_kvkey_unwrap_key(const rp_kvkey *k, const char *alg, const unsigned char *in, size_t n,
                        unsigned char *out, size_t cap, size_t *outlen, const char **reason);

/*
 * Signs the digest in[0..n) (RS*, PS*, ES*: see the file comment; n must be the hash length,
 * else RP_EINVAL). RSA signatures are exactly k bytes, EC signatures raw r||s.
 */
int rp_kvkey_sign(const rp_kvkey *k, const char *alg, const unsigned char *digest, size_t n,
                  unsigned char *out, size_t cap, size_t *outlen, const char **reason);

/*
 * Verifies sig[0..sn) over digest[0..dn). 0 with *valid = 1 (good) or 0 (bad signature of any
 * kind: tampered, wrong length, not r||s of the right width, r or s out of range); a bad
 * signature is not an error. Errors as for sign (unknown or unsuitable alg, wrong digest
 * length: RP_EINVAL), with *valid untouched.
 */
int rp_kvkey_verify(const rp_kvkey *k, const char *alg, const unsigned char *digest, size_t dn,
                    const unsigned char *sig, size_t sn, int *valid, const char **reason);

/* ---------------------------------------------------------------- key_ops and encoding */

/*
 * Parses a key_ops JSON array of the camelCase names encrypt, decrypt, sign, verify, wrapKey,
 * unwrapKey, import, export (repeats are harmless) into a mask in *ops. RP_EINVAL with a reason
 * if ops is not an array, an element is not a string, or a name is unknown (names are
 * case-sensitive: "wrapkey" is refused).
 */
int rp_kvkey_ops_parse(const json_t *arr, unsigned *ops, const char **reason);

/* The key_ops array for a mask (canonical order, unknown bits ignored); NULL on OOM. */
json_t *rp_kvkey_ops_json(unsigned ops);

/* 1 if every bit of op is in ops, else 0 (op 0 is never allowed). */
int rp_kvkey_op_allowed(unsigned ops, unsigned op);

/* The camelCase name of a single op bit, or NULL. */
const char *rp_kvkey_op_name(unsigned op);

/*
 * Key Vault's binary fields as the SDK's (Node's) decoder reads them: base64url or standard
 * base64 characters (both alphabets may even mix), with or without '=' padding at the end;
 * non-zero trailing bits are accepted. No whitespace or other characters, and a length that is
 * 1 mod 4 (after removing padding) is refused. 0 and *outlen, RP_EINVAL (bad input) or
 * RP_ETOOBIG (more than cap bytes). The decoded size never exceeds rp_kvkey_b64_max(n).
 */
int rp_kvkey_b64_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen);
/* Upper bound of the decoded size of n characters. */
size_t rp_kvkey_b64_max(size_t n);

#endif
