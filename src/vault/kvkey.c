/*
 * kvkey.c - Key Vault key material and operations over OpenSSL 3 EVP (see kvkey.h for the
 * contract and the threading model).
 *
 * Layout: the curve and algorithm tables of kvalg.c (shared with kvhsm.c) drive everything;
 * each operation looks its algorithm up, checks it against the key, sets up one EVP_PKEY_CTX
 * and runs. RSA1_5 decryption is the exception: it runs the raw RSA private operation (no
 * padding) and then removes the padding itself in constant time with implicit rejection,
 * because OpenSSL 3.0's RSA_PKCS1_PADDING decryption returns an error on bad padding (a
 * Bleichenbacher oracle once that error reaches an HTTP status). The scheme is the one of
 * draft-irtf-cfrg-rsa-guidance and OpenSSL 3.2:
 *   KDK = HMAC-SHA256(key = SHA256(I2OSP(d, k)), C)
 *   PRF(label, bits) = concat over i of HMAC-SHA256(KDK, I2OSP(i, 2) || label || I2OSP(bits, 2))
 *   synthetic message = PRF("message", 8k); its length is the last of 128 16-bit candidates
 *   from PRF("length", 2048), masked to the bit length of k-10, that is below k-10.
 * SHA256(I2OSP(d, k)) is computed once per key and kept in the handle (wiped on free).
 */
#include "vault/kvkey.h"

#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"
#include "vault/kvalg.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <stdatomic.h>
#include <string.h>

#define RSA_MAX_BYTES 512 /* RSA-4096 */
#define EC_MAX_WIDTH  66  /* P-521 */

struct rp_kvkey {
    EVP_PKEY *pkey;
    atomic_int refs;
    rp_kvkey_type type;
    int bits;
    size_t size;             /* RSA: modulus bytes; EC: coordinate width */
    int curve;               /* kvalg curve index, -1 for RSA */
    unsigned char dhash[32]; /* RSA: SHA256(I2OSP(d, size)), the implicit-rejection KDK key */
};

static void set_reason(const char **reason, const char *r)
{
    if (reason != NULL)
        *reason = r;
}

/* rp__kvalg_for for k (kvalg.h). */
static const rp__kvalg *alg_for(const rp_kvkey *k, const char *alg, rp__kvalg_kind kind, int *rc,
                                const char **reason)
{
    return rp__kvalg_for(k->type == RP_KVKEY_EC, k->curve, alg, kind, rc, reason);
}

/* ---------------------------------------------------------------- handles */

/* SHA256(I2OSP(d, size)) into k->dhash. 0, RP_ECRYPTO (no d: not a private key), RP_ENOMEM. */
static int rsa_dhash(rp_kvkey *k)
{
    BIGNUM *d = NULL;
    unsigned char buf[RSA_MAX_BYTES];
    unsigned int mdlen = 0;
    int rc = RP_ECRYPTO;

    if (EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_D, &d) != 1 || BN_is_zero(d))
        goto out;
    if (BN_bn2binpad(d, buf, (int)k->size) != (int)k->size)
        goto out;
    if (EVP_Digest(buf, k->size, k->dhash, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        goto out;
    rc = 0;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    BN_clear_free(d);
    return rc;
}

/* kvalg's index of pkey's named curve, or -1. */
static int curve_of(const EVP_PKEY *pkey)
{
    char name[64];
    size_t nlen = 0;

    if (EVP_PKEY_get_group_name(pkey, name, sizeof(name), &nlen) != 1)
        return -1;
    return rp__kvalg_curve_by_group(name);
}

/*
 * Checks that pkey (owned by this call from here on, success or not) is a private key this
 * module accepts and wraps it in a new handle.
 */
static int key_wrap(EVP_PKEY *pkey, rp_kvkey **out, const char **reason)
{
    rp_kvkey *k = NULL;
    BIGNUM *e = NULL, *priv = NULL;
    char enc[32];
    size_t elen = 0;
    int rc = RP_EINVAL;

    k = rp_calloc(1, sizeof(*k));
    if (k == NULL) {
        rc = RP_ENOMEM;
        set_reason(reason, RP_KVR_NOMEM);
        goto out;
    }
    k->bits = EVP_PKEY_get_bits(pkey);
    k->pkey = pkey;
    pkey = NULL;
    atomic_init(&k->refs, 1);
    if (EVP_PKEY_is_a(k->pkey, "RSA")) {
        k->type = RP_KVKEY_RSA;
        k->curve = -1;
        k->size = (size_t)EVP_PKEY_get_size(k->pkey);
        if (k->bits != 2048 && k->bits != 3072 && k->bits != 4096) {
            set_reason(reason, RP_KVR_BITS);
            goto out;
        }
        if (k->size != (size_t)k->bits / 8) {
            set_reason(reason, "the RSA key is malformed");
            goto out;
        }
        if (EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1 || !BN_is_odd(e) ||
            BN_is_one(e) || BN_num_bits(e) > 32) {
            set_reason(reason, RP_KVR_EXP);
            goto out;
        }
        rc = rsa_dhash(k);
        if (rc != 0) {
            rc = RP_EINVAL;
            set_reason(reason, "the key has no private part");
            goto out;
        }
    } else if (EVP_PKEY_is_a(k->pkey, "EC")) {
        k->type = RP_KVKEY_EC;
        k->curve = curve_of(k->pkey);
        if (k->curve < 0) {
            rc = RP_EUNSUPPORTED;
            set_reason(reason, RP_KVR_CURVE);
            goto out;
        }
        /* explicit curve parameters are refused even when they match a named curve */
        if (EVP_PKEY_get_utf8_string_param(k->pkey, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof(enc),
                                           &elen) != 1 ||
            strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) != 0) {
            rc = RP_EUNSUPPORTED;
            set_reason(reason, "EC keys must use a named curve");
            goto out;
        }
        if (EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_PRIV_KEY, &priv) != 1 ||
            BN_is_zero(priv)) {
            set_reason(reason, "the key has no private part");
            goto out;
        }
        k->size = rp__kvalg_curve_at(k->curve)->width;
        k->bits = rp__kvalg_curve_at(k->curve)->bits;
    } else {
        rc = RP_EUNSUPPORTED;
        set_reason(reason, "the key type is not supported");
        goto out;
    }
    *out = k;
    k = NULL;
    rc = 0;
out:
    rp_kvkey_free(k);
    EVP_PKEY_free(pkey);
    BN_free(e);
    BN_clear_free(priv);
    ERR_clear_error();
    return rc;
}

rp_kvkey *rp_kvkey_ref(rp_kvkey *k)
{
    if (k != NULL)
        atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
    return k;
}

void rp_kvkey_free(rp_kvkey *k)
{
    if (k == NULL)
        return;
    if (atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1)
        return;
    EVP_PKEY_free(k->pkey);
    OPENSSL_cleanse(k, sizeof(*k));
    rp_free(k);
}

rp_kvkey_type rp_kvkey_type_of(const rp_kvkey *k)
{
    return k->type;
}

int rp_kvkey_bits(const rp_kvkey *k)
{
    return k->bits;
}

const char *rp_kvkey_crv(const rp_kvkey *k)
{
    return k->type == RP_KVKEY_EC ? rp__kvalg_curve_at(k->curve)->crv : NULL;
}

int rp_kvkey_generate_rsa(int bits, uint64_t e, rp_kvkey **out, const char **reason)
{
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *bn = NULL;
    int rc = RP_EINVAL;

    if (out == NULL) {
        set_reason(reason, RP_KVR_ARG);
        return RP_EINVAL;
    }
    rc = rp__kvalg_rsa_params(bits, &e, reason);
    if (rc != 0)
        return rc;
    rc = RP_ECRYPTO;
    set_reason(reason, RP_KVR_CRYPTO);
    bn = BN_new();
    if (bn == NULL || BN_set_word(bn, (BN_ULONG)e) != 1)
        goto out;
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits) <= 0 ||
        EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, bn) <= 0 || EVP_PKEY_generate(ctx, &pkey) <= 0)
        goto out;
    rc = key_wrap(pkey, out, reason);
out:
    BN_free(bn);
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

int rp_kvkey_generate_ec(const char *crv, rp_kvkey **out, const char **reason)
{
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    int c, rc = RP_ECRYPTO;

    if (crv == NULL || out == NULL) {
        set_reason(reason, RP_KVR_ARG);
        return RP_EINVAL;
    }
    c = rp__kvalg_curve_by_crv(crv);
    if (c < 0) {
        set_reason(reason, RP_KVR_CURVE);
        return RP_EUNSUPPORTED;
    }
    set_reason(reason, RP_KVR_CRYPTO);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_group_name(ctx, rp__kvalg_curve_at(c)->group) <= 0 ||
        EVP_PKEY_generate(ctx, &pkey) <= 0)
        goto out;
    rc = key_wrap(pkey, out, reason);
out:
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

int rp_kvkey_to_der(const rp_kvkey *k, unsigned char **der, size_t *n)
{
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    unsigned char *buf = NULL, *p;
    int len = 0, rc = RP_ECRYPTO;

    if (k == NULL || der == NULL || n == NULL)
        return RP_EINVAL;
    p8 = EVP_PKEY2PKCS8(k->pkey);
    if (p8 == NULL)
        goto out;
    len = i2d_PKCS8_PRIV_KEY_INFO(p8, NULL);
    if (len <= 0)
        goto out;
    buf = rp_malloc((size_t)len);
    if (buf == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    p = buf;
    if (i2d_PKCS8_PRIV_KEY_INFO(p8, &p) != len)
        goto out;
    *der = buf;
    *n = (size_t)len;
    buf = NULL;
    rc = 0;
out:
    rp_kvkey_der_free(buf, len > 0 ? (size_t)len : 0);
    PKCS8_PRIV_KEY_INFO_free(p8); /* its free callback wipes the key octets */
    ERR_clear_error();
    return rc;
}

void rp_kvkey_der_free(unsigned char *der, size_t n)
{
    if (der == NULL)
        return;
    OPENSSL_cleanse(der, n);
    rp_free(der);
}

int rp_kvkey_from_der(const unsigned char *der, size_t n, rp_kvkey **out, const char **reason)
{
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    EVP_PKEY *pkey = NULL;
    int rc = RP_EINVAL;

    if (der == NULL || n == 0 || n > RP_KVKEY_MAX_DER || out == NULL) {
        set_reason(reason, RP_KVR_ARG);
        return RP_EINVAL;
    }
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)n);
    if (p8 == NULL || p != der + n) {
        set_reason(reason, "not a PKCS#8 private key");
        goto out;
    }
    pkey = EVP_PKCS82PKEY(p8);
    if (pkey == NULL) {
        set_reason(reason, "not a PKCS#8 private key");
        goto out;
    }
    rc = key_wrap(pkey, out, reason);
out:
    PKCS8_PRIV_KEY_INFO_free(p8);
    ERR_clear_error();
    return rc;
}

/* ---------------------------------------------------------------- base64 */

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-' || c == '+')
        return 62;
    if (c == '_' || c == '/')
        return 63;
    return -1;
}

size_t rp_kvkey_b64_max(size_t n)
{
    return n / 4 * 3 + 3;
}

int rp_kvkey_b64_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen)
{
    size_t o = 0, pad = 0;
    unsigned acc = 0;
    int bits = 0;

    if ((in == NULL && n > 0) || outlen == NULL)
        return RP_EINVAL;
    while (n > 0 && in[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    /* padding, when present, must complete a 4-character group */
    if (n % 4 == 1 || (pad > 0 && (n + pad) % 4 != 0))
        return RP_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)in[i]);
        if (v < 0)
            return RP_EINVAL;
        acc = ((acc << 6) | (unsigned)v) & 0xffffu;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return RP_ETOOBIG;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    *outlen = o;
    return 0;
}

/* ---------------------------------------------------------------- key_ops */

static const char *const op_names[] = {"encrypt", "decrypt",   "sign",   "verify",
                                       "wrapKey", "unwrapKey", "import", "export"};
#define NOPS (sizeof(op_names) / sizeof(op_names[0]))

int rp_kvkey_ops_parse(const json_t *arr, unsigned *ops, const char **reason)
{
    unsigned mask = 0;
    size_t i;
    json_t *v;

    if (!json_is_array(arr) || ops == NULL) {
        set_reason(reason, "key_ops must be an array of strings");
        return RP_EINVAL;
    }
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        size_t j;

        if (s == NULL) {
            set_reason(reason, "key_ops must be an array of strings");
            return RP_EINVAL;
        }
        for (j = 0; j < NOPS; j++) {
            if (strlen(op_names[j]) == json_string_length(v) && strcmp(op_names[j], s) == 0)
                break;
        }
        if (j == NOPS) {
            set_reason(reason, "key_ops contains an unknown operation");
            return RP_EINVAL;
        }
        mask |= 1u << j;
    }
    *ops = mask;
    return 0;
}

json_t *rp_kvkey_ops_json(unsigned ops)
{
    json_t *a = json_array();

    if (a == NULL)
        return NULL;
    for (size_t j = 0; j < NOPS; j++) {
        if ((ops & (1u << j)) != 0 && json_array_append_new(a, json_string(op_names[j])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

int rp_kvkey_op_allowed(unsigned ops, unsigned op)
{
    return op != 0 && (ops & op) == op;
}

const char *rp_kvkey_op_name(unsigned op)
{
    for (size_t j = 0; j < NOPS; j++) {
        if (op == 1u << j)
            return op_names[j];
    }
    return NULL;
}

/* ---------------------------------------------------------------- JWK */

int rp_kvkey_public_jwk(const rp_kvkey *k, const char *kid, const char *kty, unsigned ops,
                        json_t **out)
{
    if (k == NULL || kid == NULL || kid[0] == '\0' || kty == NULL || out == NULL)
        return RP_EINVAL;
    return rp__kvalg_public_jwk(k->pkey, k->type == RP_KVKEY_EC, k->curve, k->size, kid, kty, ops,
                                out);
}

/*
 * Decodes JWK member name (a string) into a BIGNUM. width > 0: exactly width bytes (exact) or
 * at most width bytes (!exact). width 0: 1..RSA_MAX_BYTES bytes. Decoded bytes are wiped.
 */
static int jwk_bn(const json_t *jwk, const char *name, size_t width, int exact, BIGNUM **bn,
                  const char **reason)
{
    const json_t *v = json_object_get(jwk, name);
    unsigned char buf[RSA_MAX_BYTES];
    size_t len = 0, max = width > 0 ? width : RSA_MAX_BYTES;
    int rc = RP_EINVAL;

    if (v == NULL || json_is_null(v)) {
        set_reason(reason, strcmp(name, "d") == 0
                               ? "the JWK has no private key (d): public-only keys cannot be "
                                 "imported"
                               : "the JWK lacks a required member (RSA: n, e, d, p, q, dp, dq, "
                                 "qi; EC: crv, x, y, d)");
        return RP_EINVAL;
    }
    if (!json_is_string(v)) {
        set_reason(reason, "a JWK member is not a string");
        return RP_EINVAL;
    }
    if (rp_kvkey_b64_decode(json_string_value(v), json_string_length(v), buf, max, &len) != 0 ||
        len == 0 || (exact && len != width)) {
        set_reason(reason, "a JWK member is not valid base64url of the right length");
        goto out;
    }
    *bn = BN_bin2bn(buf, (int)len, NULL);
    if (*bn == NULL) {
        rc = RP_ENOMEM;
        set_reason(reason, RP_KVR_NOMEM);
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

/* Wipes and frees a parameter array built by OSSL_PARAM_BLD (3.0 has no OSSL_PARAM_clear_free). */
static void params_clear_free(OSSL_PARAM *params)
{
    if (params == NULL)
        return;
    for (OSSL_PARAM *p = params; p->key != NULL; p++) {
        if (p->data != NULL && p->data_size > 0)
            OPENSSL_cleanse(p->data, p->data_size);
    }
    OSSL_PARAM_free(params);
}

/* Builds a key from params and validates it fully (public, private, pairwise). */
static int key_from_params(const char *type, OSSL_PARAM *params, EVP_PKEY **pkey,
                           const char **reason)
{
    EVP_PKEY_CTX *ctx = NULL, *vctx = NULL;
    int rc = RP_EINVAL;

    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0) {
        rc = RP_ECRYPTO;
        set_reason(reason, RP_KVR_CRYPTO);
        goto out;
    }
    if (EVP_PKEY_fromdata(ctx, pkey, EVP_PKEY_KEYPAIR, params) <= 0) {
        set_reason(reason, "the JWK is not a valid key");
        goto out;
    }
    vctx = EVP_PKEY_CTX_new_from_pkey(NULL, *pkey, NULL);
    if (vctx == NULL) {
        rc = RP_ECRYPTO;
        set_reason(reason, RP_KVR_CRYPTO);
        goto out;
    }
    if (EVP_PKEY_check(vctx) != 1) {
        set_reason(reason, "the JWK's members are inconsistent (not a valid key pair)");
        goto out;
    }
    rc = 0;
out:
    if (rc != 0) {
        EVP_PKEY_free(*pkey);
        *pkey = NULL;
    }
    EVP_PKEY_CTX_free(vctx);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

static int jwk_rsa(const json_t *jwk, EVP_PKEY **pkey, const char **reason)
{
    static const char *const names[8] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
    static const char *const params[8] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    BIGNUM *bn[8] = {NULL};
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *p = NULL;
    int rc = 0, bits;

    /* d is looked at first so a public-only key gets the clearer reason */
    rc = jwk_bn(jwk, "d", 0, 0, &bn[2], reason);
    for (int i = 0; i < 8 && rc == 0; i++) {
        if (bn[i] == NULL)
            rc = jwk_bn(jwk, names[i], 0, 0, &bn[i], reason);
    }
    if (rc != 0)
        goto out;
    bits = BN_num_bits(bn[0]);
    if (bits != 2048 && bits != 3072 && bits != 4096) {
        rc = RP_EINVAL;
        set_reason(reason, RP_KVR_BITS);
        goto out;
    }
    if (!BN_is_odd(bn[1]) || BN_is_one(bn[1]) || BN_num_bits(bn[1]) > 32) {
        rc = RP_EINVAL;
        set_reason(reason, RP_KVR_EXP);
        goto out;
    }
    bld = OSSL_PARAM_BLD_new();
    rc = RP_ENOMEM;
    set_reason(reason, RP_KVR_NOMEM);
    if (bld == NULL)
        goto out;
    for (int i = 0; i < 8; i++) {
        if (OSSL_PARAM_BLD_push_BN(bld, params[i], bn[i]) != 1)
            goto out;
    }
    p = OSSL_PARAM_BLD_to_param(bld);
    if (p == NULL)
        goto out;
    rc = key_from_params("RSA", p, pkey, reason);
out:
    params_clear_free(p);
    OSSL_PARAM_BLD_free(bld);
    for (int i = 0; i < 8; i++)
        BN_clear_free(bn[i]);
    return rc;
}

static int jwk_ec(const json_t *jwk, EVP_PKEY **pkey, const char **reason)
{
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    BIGNUM *x = NULL, *y = NULL, *d = NULL;
    unsigned char pub[1 + 2 * EC_MAX_WIDTH];
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *p = NULL;
    int c, rc;
    size_t w;

    if (crv == NULL) {
        set_reason(reason, "the JWK lacks crv");
        return RP_EINVAL;
    }
    c = rp__kvalg_curve_by_crv(crv);
    if (c < 0) {
        set_reason(reason, RP_KVR_CURVE);
        return RP_EUNSUPPORTED;
    }
    w = rp__kvalg_curve_at(c)->width;
    rc = jwk_bn(jwk, "d", w, 0, &d, reason);
    if (rc == 0)
        rc = jwk_bn(jwk, "x", w, 1, &x, reason);
    if (rc == 0)
        rc = jwk_bn(jwk, "y", w, 1, &y, reason);
    if (rc != 0)
        goto out;
    pub[0] = 0x04;
    if (BN_bn2binpad(x, pub + 1, (int)w) != (int)w ||
        BN_bn2binpad(y, pub + 1 + w, (int)w) != (int)w) {
        rc = RP_ECRYPTO;
        set_reason(reason, RP_KVR_CRYPTO);
        goto out;
    }
    rc = RP_ENOMEM;
    set_reason(reason, RP_KVR_NOMEM);
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                        rp__kvalg_curve_at(c)->group, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * w) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) != 1)
        goto out;
    p = OSSL_PARAM_BLD_to_param(bld);
    if (p == NULL)
        goto out;
    rc = key_from_params("EC", p, pkey, reason);
out:
    params_clear_free(p);
    OSSL_PARAM_BLD_free(bld);
    BN_free(x);
    BN_free(y);
    BN_clear_free(d);
    return rc;
}

int rp_kvkey_from_jwk(const json_t *jwk, rp_kvkey **out, const char **reason)
{
    EVP_PKEY *pkey = NULL;
    const char *kty;
    int rc;

    if (jwk == NULL || out == NULL) {
        set_reason(reason, RP_KVR_ARG);
        return RP_EINVAL;
    }
    if (!json_is_object(jwk)) {
        set_reason(reason, "the key must be a JSON object (JWK)");
        return RP_EINVAL;
    }
    kty = json_string_value(json_object_get(jwk, "kty"));
    if (kty == NULL) {
        set_reason(reason, "the JWK lacks kty");
        return RP_EINVAL;
    }
    if (strcmp(kty, "RSA") == 0 || strcmp(kty, "RSA-HSM") == 0) {
        rc = jwk_rsa(jwk, &pkey, reason);
    } else if (strcmp(kty, "EC") == 0 || strcmp(kty, "EC-HSM") == 0) {
        rc = jwk_ec(jwk, &pkey, reason);
    } else if (strcmp(kty, "oct") == 0 || strcmp(kty, "oct-HSM") == 0) {
        set_reason(reason, "symmetric (oct) keys are not supported");
        return RP_EUNSUPPORTED;
    } else {
        set_reason(reason, "the JWK's kty is not one of RSA, RSA-HSM, EC, EC-HSM");
        return RP_EINVAL;
    }
    if (rc == 0)
        rc = key_wrap(pkey, out, reason);
    ERR_clear_error();
    return rc;
}

/* ---------------------------------------------------------------- operations */

static int do_encrypt(const rp_kvkey *k, const char *alg, const unsigned char *in, size_t n,
                      unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    const rp__kvalg *a;
    int rc;

    if (k == NULL || alg == NULL || (in == NULL && n > 0) || out == NULL || outlen == NULL) {
        set_reason(reason, RP_KVR_ARG);
        return RP_EINVAL;
    }
    a = alg_for(k, alg, RP__KVALG_ENC, &rc, reason);
    if (a == NULL)
        return rc;
    return rp__kvalg_encrypt(k->pkey, k->size, a, in, n, out, cap, outlen, reason);
}

/* Constant-time helpers: all-ones when the condition holds, else zero. */
static unsigned ct_msb(unsigned a)
{
    return 0u - (a >> (sizeof(a) * 8 - 1));
}

static unsigned ct_is_zero(unsigned a)
{
    return ct_msb(~a & (a - 1));
}

static unsigned ct_eq(unsigned a, unsigned b)
{
    return ct_is_zero(a ^ b);
}

static unsigned ct_lt(unsigned a, unsigned b)
{
    return ct_msb(a ^ ((a ^ b) | ((a - b) ^ b)));
}

static unsigned ct_ge(unsigned a, unsigned b)
{
    return ~ct_lt(a, b);
}

static unsigned ct_select(unsigned mask, unsigned a, unsigned b)
{
    return (mask & a) | (~mask & b);
}

/*
 * The implicit-rejection PRF: out[0..len) = PRF(kdk, label, len * 8). 0 or RP_ECRYPTO.
 */
static int ir_prf(const unsigned char kdk[32], const char *label, unsigned char *out, size_t len)
{
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    unsigned char block[32], hdr[2], bl[2];
    size_t llen = strlen(label), got = 0, outl;
    unsigned bitlen = (unsigned)(len * 8);
    int rc = RP_ECRYPTO;

    bl[0] = (unsigned char)(bitlen >> 8);
    bl[1] = (unsigned char)bitlen;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    if (ctx == NULL)
        goto out;
    for (unsigned i = 0; got < len; i++) {
        hdr[0] = (unsigned char)(i >> 8);
        hdr[1] = (unsigned char)i;
        if (EVP_MAC_init(ctx, kdk, 32, params) != 1 || EVP_MAC_update(ctx, hdr, 2) != 1 ||
            EVP_MAC_update(ctx, (const unsigned char *)label, llen) != 1 ||
            EVP_MAC_update(ctx, bl, 2) != 1 ||
            EVP_MAC_final(ctx, block, &outl, sizeof(block)) != 1 || outl != 32)
            goto out;
        memcpy(out + got, block, len - got < 32 ? len - got : 32);
        got += len - got < 32 ? len - got : 32;
    }
    rc = 0;
out:
    OPENSSL_cleanse(block, sizeof(block));
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

/*
 * RSA1_5 decryption with implicit rejection (file comment). ct is exactly k->size bytes. Writes
 * the real or the synthetic message to out and its length to *outlen; fails only for reasons
 * that do not depend on the padding.
 */
static int rsa15_decrypt(const rp_kvkey *k, const unsigned char *ct, unsigned char *out,
                         size_t *outlen, const char **reason)
{
    EVP_PKEY_CTX *ctx = NULL;
    unsigned char em[RSA_MAX_BYTES], synth[RSA_MAX_BYTES], lens[256], kdk[32];
    unsigned int kdklen = 0;
    size_t emlen = sizeof(em), flen = k->size;
    unsigned good, found, zero_index = 0, msg_index, synth_len = 0, max_sep, mask;
    int rc = RP_ECRYPTO;

    set_reason(reason, RP_KVR_CRYPTO);
    ctx = rp__kvalg_op_ctx(k->pkey, EVP_PKEY_decrypt_init);
    if (ctx == NULL || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) <= 0)
        goto out;
    /* fails only for c >= n, a public property of the ciphertext */
    if (EVP_PKEY_decrypt(ctx, em, &emlen, ct, flen) <= 0 || emlen != flen) {
        rc = RP_ECRYPTO;
        set_reason(reason, RP_KVR_DECRYPT);
        goto out;
    }
    if (HMAC(EVP_sha256(), k->dhash, 32, ct, flen, kdk, &kdklen) == NULL || kdklen != 32)
        goto out;
    if (ir_prf(kdk, "message", synth, flen) != 0 || ir_prf(kdk, "length", lens, sizeof(lens)) != 0)
        goto out;
    max_sep = (unsigned)flen - 2 - 8;
    mask = max_sep;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    for (size_t i = 0; i < sizeof(lens); i += 2) {
        unsigned cand = ((unsigned)lens[i] << 8 | lens[i + 1]) & mask;
        synth_len = ct_select(ct_lt(cand, max_sep), cand, synth_len);
    }
    good = ct_is_zero(em[0]) & ct_eq(em[1], 2);
    found = 0;
    for (size_t i = 2; i < flen; i++) {
        unsigned z = ct_is_zero(em[i]);
        zero_index = ct_select(~found & z, (unsigned)i, zero_index);
        found |= z;
    }
    /* at least 8 bytes of padding; zero_index stays 0 (and fails this) if no separator */
    good &= ct_ge(zero_index, 2 + 8);
    msg_index = ct_select(good, zero_index + 1, (unsigned)flen - synth_len);
    /* the length is the output's, public either way; read both buffers at every position */
    for (size_t i = msg_index, j = 0; i < flen; i++, j++)
        out[j] = (unsigned char)ct_select(good, em[i], synth[i]);
    *outlen = flen - msg_index;
    rc = 0;
out:
    OPENSSL_cleanse(em, sizeof(em));
    OPENSSL_cleanse(synth, sizeof(synth));
    OPENSSL_cleanse(lens, sizeof(lens));
    OPENSSL_cleanse(kdk, sizeof(kdk));
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

static int do_decrypt(const rp_kvkey *k, const char *alg, const unsigned char *in, size_t n,
                      unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    const rp__kvalg *a;
    EVP_PKEY_CTX *ctx = NULL;
    unsigned char buf[RSA_MAX_BYTES];
    size_t len = sizeof(buf);
    int rc;

    if (k == NULL || alg == NULL || in == NULL || out == NULL || outlen == NULL) {
        set_reason(reason, RP_KVR_ARG);
        return RP_EINVAL;
    }
    a = alg_for(k, alg, RP__KVALG_ENC, &rc, reason);
    if (a == NULL)
        return rc;
    if (cap < k->size) {
        set_reason(reason, RP_KVR_OUTCAP);
        return RP_EINVAL;
    }
    if (n != k->size) {
        set_reason(reason, RP_KVR_CT_LEN);
        return RP_EINVAL;
    }
    if (a->pad == RP__KVALG_PKCS1) {
        rc = rsa15_decrypt(k, in, out, outlen, reason);
        goto out;
    }
    rc = RP_ECRYPTO;
    set_reason(reason, RP_KVR_CRYPTO);
    ctx = rp__kvalg_op_ctx(k->pkey, EVP_PKEY_decrypt_init);
    if (ctx == NULL || rp__kvalg_set_enc_padding(ctx, a) <= 0)
        goto out;
    if (EVP_PKEY_decrypt(ctx, buf, &len, in, n) <= 0 || len > k->size) {
        set_reason(reason, RP_KVR_DECRYPT);
        goto out;
    }
    memcpy(out, buf, len);
    *outlen = len;
    rc = 0;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

int rp_kvkey_encrypt(const rp_kvkey *k, const char *alg, const unsigned char *in, size_t n,
                     unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    return do_encrypt(k, alg, in, n, out, cap, outlen, reason);
}

int rp_kvkey_decrypt(const rp_kvkey *k, const char *alg, const unsigned char *in, size_t n,
                     unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    return do_decrypt(k, alg, in, n, out, cap, outlen, reason);
}

int rp_kvkey_wrap_key(const rp_kvkey *k, const char *alg, const unsigned char *in, size_t n,
                      unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    return do_encrypt(k, alg, in, n, out, cap, outlen, reason);
}

int rp_kvkey_unwrap_key(const rp_kvkey *k, const char *alg, const unsigned char *in, size_t n,
                        unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    return do_decrypt(k, alg, in, n, out, cap, outlen, reason);
}

/* Checks the common arguments of sign / verify and finds the algorithm. */
static const rp__kvalg *sig_alg(const rp_kvkey *k, const char *alg, const unsigned char *digest,
                                size_t n, int *rc, const char **reason)
{
    if (k == NULL || alg == NULL || digest == NULL) {
        *rc = RP_EINVAL;
        set_reason(reason, RP_KVR_ARG);
        return NULL;
    }
    return rp__kvalg_sig(k->type == RP_KVKEY_EC, k->curve, alg, n, rc, reason);
}

int rp_kvkey_sign(const rp_kvkey *k, const char *alg, const unsigned char *digest, size_t n,
                  unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    const rp__kvalg *a;
    EVP_PKEY_CTX *ctx = NULL;
    unsigned char der[2 * EC_MAX_WIDTH + 16];
    const unsigned char *p = der;
    size_t len, need;
    ECDSA_SIG *es = NULL;
    const BIGNUM *r, *s;
    int rc;

    a = sig_alg(k, alg, digest, n, &rc, reason);
    if (a == NULL)
        return rc;
    need = k->type == RP_KVKEY_RSA ? k->size : 2 * k->size;
    if (out == NULL || outlen == NULL || cap < need) {
        set_reason(reason, out == NULL || outlen == NULL ? RP_KVR_ARG : RP_KVR_OUTCAP);
        return RP_EINVAL;
    }
    rc = RP_ECRYPTO;
    set_reason(reason, RP_KVR_CRYPTO);
    ctx = rp__kvalg_op_ctx(k->pkey, EVP_PKEY_sign_init);
    if (ctx == NULL || rp__kvalg_set_sig_params(ctx, a) <= 0)
        goto out;
    if (k->type == RP_KVKEY_RSA) {
        len = cap;
        if (EVP_PKEY_sign(ctx, out, &len, digest, n) <= 0 || len != k->size)
            goto out;
        *outlen = len;
        rc = 0;
        goto out;
    }
    len = sizeof(der);
    if (EVP_PKEY_sign(ctx, der, &len, digest, n) <= 0)
        goto out;
    es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (es == NULL)
        goto out;
    ECDSA_SIG_get0(es, &r, &s);
    if (BN_bn2binpad(r, out, (int)k->size) != (int)k->size ||
        BN_bn2binpad(s, out + k->size, (int)k->size) != (int)k->size)
        goto out;
    *outlen = need;
    rc = 0;
out:
    ECDSA_SIG_free(es);
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

int rp_kvkey_verify(const rp_kvkey *k, const char *alg, const unsigned char *digest, size_t dn,
                    const unsigned char *sig, size_t sn, int *valid, const char **reason)
{
    const rp__kvalg *a;
    int rc;

    a = sig_alg(k, alg, digest, dn, &rc, reason);
    if (a == NULL)
        return rc;
    return rp__kvalg_verify(k->pkey, k->type == RP_KVKEY_EC, k->size, a, digest, dn, sig, sn, valid,
                            reason);
}
