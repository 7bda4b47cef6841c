/*
 * kvhsm.h - Key Vault "-HSM" keys (kty RSA-HSM / EC-HSM): key pairs generated or imported into a
 * PKCS#11 token, whose private halves never leave it, and the keys API's operations on them.
 *
 * Workload: the vault opens one handle per process at start-up (rp_kvhsm_open: dlopen the
 * module, find the token by label, log in) and keeps it until shutdown. Creating or importing
 * an HSM key stores only the reference this module writes ("kvhsm:" + 32 hex digits, the random
 * CKA_ID shared by both halves of the pair) next to the key's metadata; each crypto request
 * passes the reference back. The reference is all that is needed to find the key again after a
 * restart (the objects are CKA_TOKEN=TRUE). Per reference the handle caches the object handles
 * and an EVP_PKEY of the public half (at most RP_KVHSM_CACHE_MAX references), so a request
 * costs one C_*Init + C_Decrypt/C_Sign in the token for private operations, and nothing in the
 * token for public ones (encrypt, wrapKey, verify run in OpenSSL on the public key read from the
 * token's public attributes).
 *
 * Threading: an rp_kvhsm is thread-safe. It holds one PKCS#11 session; every call into the
 * token takes the handle's mutex (a session must not be used by two threads at once), so
 * private operations of one handle are serialised. Public operations run outside the mutex.
 * A key destroyed through another handle or process stays usable for public operations (encrypt,
 * wrapKey, verify, public_jwk, describe) through this handle's cache until a private operation
 * or rp_kvhsm_destroy on this handle notices that it is gone; the vault deletes keys through its
 * own metadata first, so it never relies on that.
 *
 * Algorithms, digest-length rules, output formats and reasons are exactly those of kvkey.h
 * (RSA-OAEP = SHA-1/MGF1-SHA-1, RSA-OAEP-256, RSA1_5 encryption, RS/PS/ES JWS signatures with
 * raw r||s), with one deliberate difference: RSA1_5 DECRYPTION is refused (RP_EUNSUPPORTED)
 * because CKM_RSA_PKCS decryption reports padding errors, a Bleichenbacher padding oracle once
 * that status reaches a client. Tokens that refuse CKM_RSA_PKCS_OAEP with SHA-256 (SoftHSM 2.6
 * accepts only SHA-1 there) get RSA-OAEP-256 decryption as the raw RSA operation (CKM_RSA_X_509)
 * in the token followed by OpenSSL's constant-time OAEP decoding in this process; the private
 * key still never leaves the token.
 *
 * Errors: 0 or a negative RP_E* code. Operations add to kvkey's set RP_ENOENT (no key with that
 * reference: never created, or destroyed) and RP_EIO (the token or the session failed); *reason
 * (when reason is non-NULL) is a static English sentence fit for a Key Vault error message and
 * never contains key material, input or a PIN. OpenSSL's error queue is cleared before return.
 *
 * Process-wide state: a PKCS#11 module may be C_Initialize'd only once per process, so loaded
 * modules are shared and reference-counted across rp_kvhsm handles, and a module is
 * C_Finalize'd with the last handle only if this module initialised it. Another component of the
 * process using the same library through its own loader (crypto/keyprov.c keeps a list of its
 * own) must outlive every rp_kvhsm if it initialised the library first.
 *
 * Allocation: rp_malloc for the handle, the cache and temporary buffers; OpenSSL and the module
 * allocate through their own functions. Nothing here aborts on OOM.
 */
#ifndef RP_VAULT_KVHSM_H
#define RP_VAULT_KVHSM_H

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

struct rp_kvkey;

/* Size of a reference buffer: "kvhsm:" + 32 hex digits + NUL fits with room to spare. */
#define RP_KVHSM_REF_MAX 96
/* Longest CKA_LABEL accepted (bytes). */
#define RP_KVHSM_LABEL_MAX 128
/* References whose handles and public key a handle keeps at most. */
#define RP_KVHSM_CACHE_MAX 256

typedef struct rp_kvhsm rp_kvhsm;

/*
 * Loads the PKCS#11 library at module (dlopen, C_GetFunctionList, C_Initialize unless already
 * initialised in this process), finds the initialised token whose label is token, opens a
 * read/write session and logs in as the user with pin. 0 and *out (owned by the caller; release
 * with rp_kvhsm_close), or:
 *   RP_EINVAL  a NULL or empty argument
 *   RP_ENOENT  the module file does not exist, or no token has that label
 *   RP_ECRYPTO the PIN is wrong
 *   RP_EPERM   the user PIN is locked
 *   RP_EIO     the library is not a PKCS#11 module or a PKCS#11 call failed
 *   RP_ENOMEM
 * and on failure a sentence naming the cause in err[errlen] (never the PIN). pin stays the
 * caller's to wipe; this module keeps no copy. If this process is already logged in to the
 * token (another handle), the login is reused and pin is not checked again.
 */
int rp_kvhsm_open(const char *module, const char *token, const char *pin, rp_kvhsm **out, char *err,
                  size_t errlen);

/*
 * Closes the session, drops the cache and releases the module (see the file comment). No other
 * thread may be using h. Accepts NULL.
 */
void rp_kvhsm_close(rp_kvhsm *h);

/*
 * Generates an RSA key pair of bits (2048, 3072 or 4096) with public exponent e (0 means
 * 65537; otherwise odd, 3..2^32-1) in the token: the private key CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE, not CKA_EXTRACTABLE, with CKA_DECRYPT and CKA_SIGN only; the public key
 * CKA_TOKEN, CKA_ENCRYPT and CKA_VERIFY only. Both carry CKA_LABEL label (1..
 * RP_KVHSM_LABEL_MAX bytes, not necessarily unique) and one new random 16-byte CKA_ID. 0 and the
 * NUL-terminated reference in ref, or RP_EINVAL (bits, e or label refused), RP_EIO,
 * RP_ECRYPTO (the token refused the template or failed), RP_ENOMEM, with ref untouched.
 */
int rp_kvhsm_generate_rsa(rp_kvhsm *h, int bits, uint64_t e, const char *label,
                          char ref[RP_KVHSM_REF_MAX], const char **reason);

/*
 * Generates an EC key pair on crv ("P-256", "P-384", "P-521" or "P-256K") like
 * rp_kvhsm_generate_rsa, the private key with CKA_SIGN only. RP_EUNSUPPORTED for another name or
 * a curve the token does not implement; other errors as for RSA.
 */
int rp_kvhsm_generate_ec(rp_kvhsm *h, const char *crv, const char *label,
                         char ref[RP_KVHSM_REF_MAX], const char **reason);

/*
 * Copies the software key k (any key kvkey accepts) into the token as a key pair with the
 * attributes of a generated one (the private half sensitive and never extractable; CKA_LOCAL is
 * FALSE, as it must be for an imported key). k stays the caller's and unchanged; every copy of
 * the private components made here is wiped. If the public half cannot be created the private
 * half is destroyed again. 0 and ref, or RP_EINVAL, RP_EUNSUPPORTED (a curve the token does not
 * implement), RP_ECRYPTO, RP_EIO, RP_ENOMEM.
 */
int rp_kvhsm_import(rp_kvhsm *h, const struct rp_kvkey *k, const char *label,
                    char ref[RP_KVHSM_REF_MAX], const char **reason);

/*
 * Destroys both halves of ref's key in the token (a purge: there is no way back). 0, RP_ENOENT
 * (no object with that reference), RP_EINVAL (not a reference), RP_EIO.
 */
int rp_kvhsm_destroy(rp_kvhsm *h, const char *ref);

/*
 * The public JWK of ref's key, as rp_kvkey_public_jwk writes it (same members, order and
 * encoding), built from the token's CKA_MODULUS / CKA_PUBLIC_EXPONENT or CKA_EC_PARAMS /
 * CKA_EC_POINT. kty must name the key's family ("RSA-HSM" or "RSA"; "EC-HSM" or "EC"). 0 and
 * *out (new reference), or RP_EINVAL (NULL, empty kid, kty of another family), RP_ENOENT,
 * RP_EIO, RP_ENOMEM, RP_ECRYPTO.
 */
int rp_kvhsm_public_jwk(rp_kvhsm *h, const char *ref, const char *kid, const char *kty,
                        unsigned ops, json_t **out);

/*
 * The operations, with the contracts of rp_kvkey_encrypt / decrypt / wrap_key / unwrap_key /
 * sign / verify (kvkey.h) on the key ref names, plus RP_ENOENT and RP_EIO (file comment).
 * encrypt, wrapKey and verify use the public key in software; decrypt, unwrapKey and sign run
 * in the token. decrypt / unwrapKey with RSA1_5 are RP_EUNSUPPORTED, reason "RSA1_5 decryption
 * is not offered for HSM-protected keys". The plaintext a decryption writes to out is secret:
 * the caller wipes it.
 */
int rp_kvhsm_encrypt(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *in,
                     size_t n, unsigned char *out, size_t cap, size_t *outlen, const char **reason);
int rp_kvhsm_decrypt(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *in,
                     size_t n, unsigned char *out, size_t cap, size_t *outlen, const char **reason);
int rp_kvhsm_wrap_key(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *in,
                      size_t n, unsigned char *out, size_t cap, size_t *outlen,
                      const char **reason);
int rp_kvhsm_unwrap_key(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *in,
                        size_t n, unsigned char *out, size_t cap, size_t *outlen,
                        const char **reason);
int rp_kvhsm_sign(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *digest,
                  size_t n, unsigned char *out, size_t cap, size_t *outlen, const char **reason);
int rp_kvhsm_verify(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *digest,
                    size_t dn, const unsigned char *sig, size_t sn, int *valid,
                    const char **reason);

/*
 * The kind of ref's key, for rotation (a new key of the same kind): *is_ec 0 or 1, *bits the
 * modulus size or the curve's size (256, 384, 521, 256), *crv the Key Vault curve name (a static
 * string) or NULL for RSA. Any out pointer may be NULL. 0, RP_EINVAL, RP_ENOENT, RP_EIO,
 * RP_ENOMEM.
 */
int rp_kvhsm_describe(rp_kvhsm *h, const char *ref, int *is_ec, int *bits, const char **crv);

#endif
