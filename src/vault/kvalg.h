/*
 * kvalg.h - what the two Key Vault key stores share: the curve and algorithm tables, the checks
 * of an algorithm against a key, the reasons they give, and the operations that only need a
 * public EVP_PKEY (RSA encryption, signature verification, the public JWK). kvkey.c (keys held
 * in memory) and kvhsm.c (keys in a PKCS#11 token) both use it, so both stores accept the same
 * names and answer the same inputs with the same statuses and reasons. Not for other modules.
 *
 * Everything here is immutable tables and stateless functions: safe from any thread. Reasons
 * follow kvkey.h: a static string written to *reason when reason is not NULL.
 */
#ifndef RP_VAULT_KVALG_H
#define RP_VAULT_KVALG_H

#include <jansson.h>
#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

#include <stddef.h>
#include <stdint.h>

#define RP_KVALG_DI_LEN 19 /* DigestInfo prefix of SHA-256/384/512 */

/* The reasons both stores give for the same cause. */
extern const char RP_KVR_KEYTYPE[];
extern const char RP_KVR_UNKNOWN_ALG[];
extern const char RP_KVR_NOT_ENC[];
extern const char RP_KVR_NOT_SIG[];
extern const char RP_KVR_DIGEST_LEN[];
extern const char RP_KVR_CT_LEN[];
extern const char RP_KVR_PT_LEN[];
extern const char RP_KVR_DECRYPT[];
extern const char RP_KVR_CRYPTO[];
extern const char RP_KVR_NOMEM[];
extern const char RP_KVR_ARG[];
extern const char RP_KVR_OUTCAP[];
extern const char RP_KVR_BITS[];
extern const char RP_KVR_EXP[];
extern const char RP_KVR_CURVE[];

/* A curve both stores support. */
typedef struct rp__kvalg_curve {
    const char *crv;          /* Key Vault name */
    const char *group;        /* OpenSSL group name */
    const char *alias;        /* another name OpenSSL may report, or NULL */
    const unsigned char *oid; /* CKA_EC_PARAMS: the DER namedCurve OID */
    size_t oidlen;
    int bits;
    size_t width; /* coordinate / scalar bytes */
} rp__kvalg_curve;

typedef enum { RP__KVALG_ENC = 1, RP__KVALG_SIG = 2 } rp__kvalg_kind;
typedef enum { RP__KVALG_OAEP, RP__KVALG_PKCS1, RP__KVALG_PSS, RP__KVALG_ECDSA } rp__kvalg_pad;

/* One Key Vault algorithm of RSA or EC keys. */
typedef struct rp__kvalg {
    const char *name;
    rp__kvalg_kind kind;
    int ec; /* 1: EC keys, 0: RSA keys */
    rp__kvalg_pad pad;
    const char *md;              /* OpenSSL digest name */
    size_t dlen;                 /* digest length */
    int curve;                   /* ES*: required curve index, else -1 */
    CK_MECHANISM_TYPE hash;      /* PKCS#11: the OAEP / PSS hash */
    CK_RSA_PKCS_MGF_TYPE mgf;    /* PKCS#11: the OAEP / PSS MGF */
    const unsigned char *prefix; /* RS*: DigestInfo prefix (RP_KVALG_DI_LEN bytes) */
} rp__kvalg;

/* Curve i (0 <= i < the number of curves). */
const rp__kvalg_curve *rp__kvalg_curve_at(int i);

/* Index of a curve by Key Vault name (NULL: -1), OpenSSL group name or alias, or DER OID; -1. */
int rp__kvalg_curve_by_crv(const char *crv);
int rp__kvalg_curve_by_group(const char *group);
int rp__kvalg_curve_by_oid(const unsigned char *oid, size_t n);

/* The algorithm named name, or NULL. */
const rp__kvalg *rp__kvalg_find(const char *name);

/* Whether name is a Key Vault algorithm of keys neither store holds (oct): a wrong key type. */
int rp__kvalg_is_other(const char *name);

/*
 * Finds alg and checks it against a key (ec, curve index) and the operation kind. NULL with
 * *rc = RP_EINVAL and *reason set if it does not fit.
 */
const rp__kvalg *rp__kvalg_for(int ec, int curve, const char *alg, rp__kvalg_kind kind, int *rc,
                               const char **reason);

/* rp__kvalg_for for signatures, and the digest length dn checked against the algorithm. */
const rp__kvalg *rp__kvalg_sig(int ec, int curve, const char *alg, size_t dn, int *rc,
                               const char **reason);

/*
 * Checks RSA generation parameters; *e == 0 becomes RP_KVKEY_RSA_E_DEFAULT. 0 or RP_EINVAL
 * with a reason.
 */
int rp__kvalg_rsa_params(int bits, uint64_t *e, const char **reason);

/* A fresh context for pkey, initialised by init (EVP_PKEY_encrypt_init ...); NULL on failure. */
EVP_PKEY_CTX *rp__kvalg_op_ctx(EVP_PKEY *pkey, int (*init)(EVP_PKEY_CTX *));

/* Sets the RSA encryption padding of a on ctx. 1 or <= 0. */
int rp__kvalg_set_enc_padding(EVP_PKEY_CTX *ctx, const rp__kvalg *a);

/* Sets up ctx (sign or verify initialised) for signature algorithm a. 1 or <= 0. */
int rp__kvalg_set_sig_params(EVP_PKEY_CTX *ctx, const rp__kvalg *a);

/*
 * RSA encryption with the public key pkey of size bytes (a checked by rp__kvalg_for): the
 * output-capacity and plaintext-length checks, then the operation. kvkey.h's encrypt contract.
 */
int rp__kvalg_encrypt(EVP_PKEY *pkey, size_t size, const rp__kvalg *a, const unsigned char *in,
                      size_t n, unsigned char *out, size_t cap, size_t *outlen,
                      const char **reason);

/*
 * Verifies sig over digest[0..dn) with the public key pkey (ec, coordinate width or modulus
 * size bytes; a checked by rp__kvalg_sig). ECDSA signatures are raw r||s. kvkey.h's verify
 * contract from the valid / sig argument check on.
 */
int rp__kvalg_verify(EVP_PKEY *pkey, int ec, size_t size, const rp__kvalg *a,
                     const unsigned char *digest, size_t dn, const unsigned char *sig, size_t sn,
                     int *valid, const char **reason);

/*
 * The public JWK of pkey (ec, curve index, coordinate width size) as kvkey.h's
 * rp_kvkey_public_jwk: RP_EINVAL for a kty of another family, RP_ENOMEM, RP_ECRYPTO.
 */
int rp__kvalg_public_jwk(EVP_PKEY *pkey, int ec, int curve, size_t size, const char *kid,
                         const char *kty, unsigned ops, json_t **out);

#endif
