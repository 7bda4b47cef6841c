/*
 * kvalg.c - the Key Vault curve and algorithm tables and the public-key operations that
 * kvkey.c and kvhsm.c share (see kvalg.h). One table drives both stores, so an algorithm added
 * here is offered, checked and refused the same way for software and HSM keys.
 */
#include "vault/kvalg.h"

#include "base/err.h"
#include "base/str.h"
#include "vault/kvkey.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include <string.h>

#define RSA_MAX_BYTES 512 /* RSA-4096 */

const char RP_KVR_KEYTYPE[] = "the key type does not support this algorithm";
const char RP_KVR_UNKNOWN_ALG[] = "unknown algorithm";
const char RP_KVR_NOT_ENC[] = "the algorithm is not an encryption algorithm";
const char RP_KVR_NOT_SIG[] = "the algorithm is not a signature algorithm";
const char RP_KVR_DIGEST_LEN[] = "the digest length does not match the algorithm";
const char RP_KVR_CT_LEN[] = "the ciphertext length does not match the key size";
const char RP_KVR_PT_LEN[] = "the plaintext is too long for the key and algorithm";
const char RP_KVR_DECRYPT[] = "decryption failed";
const char RP_KVR_CRYPTO[] = "the cryptographic operation failed";
const char RP_KVR_NOMEM[] = "out of memory";
const char RP_KVR_ARG[] = "invalid argument";
const char RP_KVR_OUTCAP[] = "the output buffer is too small";
const char RP_KVR_BITS[] = "RSA keys must be 2048, 3072 or 4096 bits";
const char RP_KVR_EXP[] = "the RSA public exponent must be odd and between 3 and 2^32-1";
const char RP_KVR_CURVE[] = "the curve is not supported (P-256, P-384, P-521, P-256K)";

/* ---------------------------------------------------------------- tables */

static const unsigned char OID_P256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char OID_P384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const unsigned char OID_P521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static const unsigned char OID_K256[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};

static const rp__kvalg_curve curves[] = {
    {"P-256", "prime256v1", "P-256", OID_P256, sizeof(OID_P256), 256, 32},
    {"P-384", "secp384r1", "P-384", OID_P384, sizeof(OID_P384), 384, 48},
    {"P-521", "secp521r1", "P-521", OID_P521, sizeof(OID_P521), 521, 66},
    {"P-256K", "secp256k1", NULL, OID_K256, sizeof(OID_K256), 256, 32},
};
#define NCURVES (sizeof(curves) / sizeof(curves[0]))

static const unsigned char DI_SHA256[RP_KVALG_DI_LEN] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                                         0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                                         0x01, 0x05, 0x00, 0x04, 0x20};
static const unsigned char DI_SHA384[RP_KVALG_DI_LEN] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                                         0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                                         0x02, 0x05, 0x00, 0x04, 0x30};
static const unsigned char DI_SHA512[RP_KVALG_DI_LEN] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                                         0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                                         0x03, 0x05, 0x00, 0x04, 0x40};

#define ENC   RP__KVALG_ENC
#define SIG   RP__KVALG_SIG
#define OAEP  RP__KVALG_OAEP
#define PKCS1 RP__KVALG_PKCS1
#define PSS   RP__KVALG_PSS
#define ECDSA RP__KVALG_ECDSA

static const rp__kvalg algs[] = {
    {"RSA-OAEP", ENC, 0, OAEP, "SHA1", 20, -1, CKM_SHA_1, CKG_MGF1_SHA1, NULL},
    {"RSA-OAEP-256", ENC, 0, OAEP, "SHA256", 32, -1, CKM_SHA256, CKG_MGF1_SHA256, NULL},
    {"RSA1_5", ENC, 0, PKCS1, NULL, 0, -1, 0, 0, NULL},
    {"RS256", SIG, 0, PKCS1, "SHA256", 32, -1, CKM_SHA256, 0, DI_SHA256},
    {"RS384", SIG, 0, PKCS1, "SHA384", 48, -1, CKM_SHA384, 0, DI_SHA384},
    {"RS512", SIG, 0, PKCS1, "SHA512", 64, -1, CKM_SHA512, 0, DI_SHA512},
    {"PS256", SIG, 0, PSS, "SHA256", 32, -1, CKM_SHA256, CKG_MGF1_SHA256, NULL},
    {"PS384", SIG, 0, PSS, "SHA384", 48, -1, CKM_SHA384, CKG_MGF1_SHA384, NULL},
    {"PS512", SIG, 0, PSS, "SHA512", 64, -1, CKM_SHA512, CKG_MGF1_SHA512, NULL},
    {"ES256", SIG, 1, ECDSA, "SHA256", 32, 0, 0, 0, NULL},
    {"ES384", SIG, 1, ECDSA, "SHA384", 48, 1, 0, 0, NULL},
    {"ES512", SIG, 1, ECDSA, "SHA512", 64, 2, 0, 0, NULL},
    {"ES256K", SIG, 1, ECDSA, "SHA256", 32, 3, 0, 0, NULL},
};
#define NALGS (sizeof(algs) / sizeof(algs[0]))

/* Key Vault algorithms for keys neither store holds (oct): a "wrong key type". */
static const char *const other_algs[] = {
    "A128KW",
    "A192KW",
    "A256KW",
    "A128GCM",
    "A192GCM",
    "A256GCM",
    "A128CBC",
    "A192CBC",
    "A256CBC",
    "A128CBCPAD",
    "A192CBCPAD",
    "A256CBCPAD",
    "CKM_AES_KEY_WRAP",
    "CKM_AES_KEY_WRAP_PAD",
    "HS256",
    "HS384",
    "HS512",
    "EdDSA",
};

static void set_reason(const char **reason, const char *r)
{
    if (reason != NULL)
        *reason = r;
}

const rp__kvalg_curve *rp__kvalg_curve_at(int i)
{
    return &curves[i];
}

int rp__kvalg_curve_by_crv(const char *crv)
{
    for (size_t i = 0; crv != NULL && i < NCURVES; i++) {
        if (strcmp(crv, curves[i].crv) == 0)
            return (int)i;
    }
    return -1;
}

int rp__kvalg_curve_by_group(const char *group)
{
    for (size_t i = 0; i < NCURVES; i++) {
        if (strcmp(group, curves[i].group) == 0 ||
            (curves[i].alias != NULL && strcmp(group, curves[i].alias) == 0))
            return (int)i;
    }
    return -1;
}

int rp__kvalg_curve_by_oid(const unsigned char *oid, size_t n)
{
    for (size_t i = 0; i < NCURVES; i++) {
        if (n == curves[i].oidlen && memcmp(oid, curves[i].oid, n) == 0)
            return (int)i;
    }
    return -1;
}

const rp__kvalg *rp__kvalg_find(const char *name)
{
    for (size_t i = 0; i < NALGS; i++) {
        if (strcmp(algs[i].name, name) == 0)
            return &algs[i];
    }
    return NULL;
}

int rp__kvalg_is_other(const char *name)
{
    for (size_t i = 0; i < sizeof(other_algs) / sizeof(other_algs[0]); i++) {
        if (strcmp(other_algs[i], name) == 0)
            return 1;
    }
    return 0;
}

const rp__kvalg *rp__kvalg_for(int ec, int curve, const char *alg, rp__kvalg_kind kind, int *rc,
                               const char **reason)
{
    const rp__kvalg *a = rp__kvalg_find(alg);

    *rc = RP_EINVAL;
    if (a == NULL) {
        set_reason(reason, rp__kvalg_is_other(alg) ? RP_KVR_KEYTYPE : RP_KVR_UNKNOWN_ALG);
        return NULL;
    }
    if (a->ec != ec || (a->curve >= 0 && a->curve != curve)) {
        set_reason(reason, RP_KVR_KEYTYPE);
        return NULL;
    }
    if (a->kind != kind) {
        set_reason(reason, kind == RP__KVALG_ENC ? RP_KVR_NOT_ENC : RP_KVR_NOT_SIG);
        return NULL;
    }
    *rc = 0;
    return a;
}

const rp__kvalg *rp__kvalg_sig(int ec, int curve, const char *alg, size_t dn, int *rc,
                               const char **reason)
{
    const rp__kvalg *a = rp__kvalg_for(ec, curve, alg, RP__KVALG_SIG, rc, reason);

    if (a != NULL && dn != a->dlen) {
        *rc = RP_EINVAL;
        set_reason(reason, RP_KVR_DIGEST_LEN);
        return NULL;
    }
    return a;
}

int rp__kvalg_rsa_params(int bits, uint64_t *e, const char **reason)
{
    if (bits != 2048 && bits != 3072 && bits != 4096) {
        set_reason(reason, RP_KVR_BITS);
        return RP_EINVAL;
    }
    if (*e == 0)
        *e = RP_KVKEY_RSA_E_DEFAULT;
    if (*e < 3 || *e > RP_KVKEY_RSA_E_MAX || (*e & 1) == 0) {
        set_reason(reason, RP_KVR_EXP);
        return RP_EINVAL;
    }
    return 0;
}

/* ---------------------------------------------------------------- operations */

EVP_PKEY_CTX *rp__kvalg_op_ctx(EVP_PKEY *pkey, int (*init)(EVP_PKEY_CTX *))
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

    if (ctx != NULL && init(ctx) <= 0) {
        EVP_PKEY_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

int rp__kvalg_set_enc_padding(EVP_PKEY_CTX *ctx, const rp__kvalg *a)
{
    if (a->pad == RP__KVALG_PKCS1)
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING);
    if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, a->md, NULL) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, a->md, NULL) <= 0)
        return 0;
    return 1;
}

int rp__kvalg_set_sig_params(EVP_PKEY_CTX *ctx, const rp__kvalg *a)
{
    if (EVP_PKEY_CTX_set_signature_md(ctx, EVP_get_digestbyname(a->md)) <= 0)
        return 0;
    if (a->pad == RP__KVALG_PKCS1)
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING);
    if (a->pad == RP__KVALG_PSS)
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 &&
               EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, a->md, NULL) > 0 &&
               EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) > 0;
    return 1;
}

int rp__kvalg_encrypt(EVP_PKEY *pkey, size_t size, const rp__kvalg *a, const unsigned char *in,
                      size_t n, unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    EVP_PKEY_CTX *ctx = NULL;
    size_t len, overhead;
    int rc;

    if (cap < size) {
        set_reason(reason, RP_KVR_OUTCAP);
        return RP_EINVAL;
    }
    overhead = a->pad == RP__KVALG_PKCS1 ? 11 : 2 * a->dlen + 2;
    if (n > size - overhead) {
        set_reason(reason, RP_KVR_PT_LEN);
        return RP_EINVAL;
    }
    rc = RP_ECRYPTO;
    set_reason(reason, RP_KVR_CRYPTO);
    ctx = rp__kvalg_op_ctx(pkey, EVP_PKEY_encrypt_init);
    len = cap;
    if (ctx == NULL || rp__kvalg_set_enc_padding(ctx, a) <= 0 ||
        EVP_PKEY_encrypt(ctx, out, &len, n > 0 ? in : (const unsigned char *)"", n) <= 0 ||
        len != size)
        goto out;
    *outlen = len;
    rc = 0;
out:
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

int rp__kvalg_verify(EVP_PKEY *pkey, int ec, size_t size, const rp__kvalg *a,
                     const unsigned char *digest, size_t dn, const unsigned char *sig, size_t sn,
                     int *valid, const char **reason)
{
    EVP_PKEY_CTX *ctx = NULL;
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *der = NULL;
    int derlen, rc, ok = 0;

    if (valid == NULL || (sig == NULL && sn > 0)) {
        set_reason(reason, RP_KVR_ARG);
        return RP_EINVAL;
    }
    rc = RP_ECRYPTO;
    set_reason(reason, RP_KVR_CRYPTO);
    ctx = rp__kvalg_op_ctx(pkey, EVP_PKEY_verify_init);
    if (ctx == NULL || rp__kvalg_set_sig_params(ctx, a) <= 0)
        goto out;
    if (!ec) {
        ok = sn == size && EVP_PKEY_verify(ctx, sig, sn, digest, dn) == 1;
    } else if (sn == 2 * size) {
        es = ECDSA_SIG_new();
        r = BN_bin2bn(sig, (int)size, NULL);
        s = BN_bin2bn(sig + size, (int)size, NULL);
        if (es == NULL || r == NULL || s == NULL) {
            rc = RP_ENOMEM;
            set_reason(reason, RP_KVR_NOMEM);
            goto out;
        }
        if (ECDSA_SIG_set0(es, r, s) != 1)
            goto out;
        r = s = NULL;
        derlen = i2d_ECDSA_SIG(es, &der);
        if (derlen <= 0)
            goto out;
        /* OpenSSL refuses r or s outside [1, n-1] itself */
        ok = EVP_PKEY_verify(ctx, der, (size_t)derlen, digest, dn) == 1;
    }
    *valid = ok;
    rc = 0;
out:
    OPENSSL_free(der);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

/* ---------------------------------------------------------------- JWK */

/* Unpadded base64url of the big-endian bytes of parameter param (width 0: minimal) into obj. */
static int put_param(json_t *obj, const char *name, const EVP_PKEY *pkey, const char *param,
                     int width)
{
    unsigned char bytes[RSA_MAX_BYTES];
    char text[RSA_MAX_BYTES / 3 * 4 + 8];
    BIGNUM *bn = NULL;
    int len, rc = RP_ECRYPTO;

    if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
        goto out;
    if (width > 0)
        len = BN_bn2binpad(bn, bytes, width);
    else if (BN_num_bytes(bn) <= (int)sizeof(bytes))
        len = BN_bn2bin(bn, bytes);
    else
        len = -1;
    if (len <= 0 || rp_b64url_encode(bytes, (size_t)len, text, sizeof(text)) != 0)
        goto out;
    rc = json_object_set_new(obj, name, json_string(text)) == 0 ? 0 : RP_ENOMEM;
out:
    BN_free(bn);
    return rc;
}

int rp__kvalg_public_jwk(EVP_PKEY *pkey, int ec, int curve, size_t size, const char *kid,
                         const char *kty, unsigned ops, json_t **out)
{
    json_t *j = NULL, *a = NULL;
    int rc = RP_ENOMEM;

    if (!ec ? strcmp(kty, "RSA") != 0 && strcmp(kty, "RSA-HSM") != 0
            : strcmp(kty, "EC") != 0 && strcmp(kty, "EC-HSM") != 0)
        return RP_EINVAL;
    j = json_object();
    a = rp_kvkey_ops_json(ops);
    if (j == NULL || a == NULL || json_object_set_new(j, "kid", json_string(kid)) != 0 ||
        json_object_set_new(j, "kty", json_string(kty)) != 0 ||
        json_object_set(j, "key_ops", a) != 0)
        goto out;
    if (!ec) {
        rc = put_param(j, "n", pkey, OSSL_PKEY_PARAM_RSA_N, 0);
        if (rc == 0)
            rc = put_param(j, "e", pkey, OSSL_PKEY_PARAM_RSA_E, 0);
    } else {
        rc = json_object_set_new(j, "crv", json_string(curves[curve].crv)) == 0 ? 0 : RP_ENOMEM;
        if (rc == 0)
            rc = put_param(j, "x", pkey, OSSL_PKEY_PARAM_EC_PUB_X, (int)size);
        if (rc == 0)
            rc = put_param(j, "y", pkey, OSSL_PKEY_PARAM_EC_PUB_Y, (int)size);
    }
    if (rc != 0)
        goto out;
    *out = j;
    j = NULL;
out:
    json_decref(a);
    json_decref(j);
    ERR_clear_error();
    return rc;
}
