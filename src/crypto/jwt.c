/*
 * jwt.c - compact JWS over OpenSSL 3 EVP and jansson: keys, signing, strict decoding,
 * signature verification and registered-claim checks.
 *
 * Design notes (the contract is in jwt.h):
 *   - Decode does all the parsing a token will ever need, once: the header and payload become
 *     jansson objects, the signing input ("header.payload") and the raw signature bytes are kept
 *     in the same allocation as the rp_jwt. Base64url is decoded into one stack buffer that is
 *     big enough for any segment of a token of RP_JWT_MAX_LEN, so a token costs one rp_malloc
 *     plus jansson's own allocations.
 *   - Verify checks everything cheap first (alg against the key type, signature length, ES256
 *     scalar range) and then runs one EVP_DigestVerify on a fresh context: no parsing, no heap
 *     allocation of ours. ES256's raw r||s is re-encoded as DER on the stack for EVP.
 *   - Keys are validated once when they are created (type, size, curve, exponent), so the verify
 *     path only compares a cached type and size. They are immutable afterwards, and their
 *     reference count is atomic, which is what makes sharing them across threads safe.
 *   - OpenSSL pushes errors onto its per-thread queue when a parse or a verification fails; those
 *     failures are expected here (attacker input), so the queue is cleared on the way out rather
 *     than left for an unrelated caller to find.
 */
#include "crypto/jwt.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <stdatomic.h>
#include <string.h>

/* RSA moduli accepted for keys that are loaded (generation is limited to 2048..4096). */
#define RSA_MIN_BITS  2048
#define RSA_MAX_BITS  8192
#define RSA_MAX_BYTES (RSA_MAX_BITS / 8)
/* ES256: raw signature size, and the largest DER form of it (SEQUENCE of two 33-byte INTEGERs). */
#define ES256_SIG_LEN 64
#define ES256_DER_MAX 72
/* PS256 salt length: the digest length (RFC 7518 3.5). */
#define PS256_SALT_LEN 32
/* Any decoded segment of a token of RP_JWT_MAX_LEN fits. */
#define SEG_MAX (RP_JWT_MAX_LEN / 4 * 3)

enum { KEY_RSA = 1, KEY_P256 = 2 };

struct rp_jwt_key {
    EVP_PKEY *pkey;
    atomic_int refs;
    int type;    /* KEY_RSA or KEY_P256 */
    int bits;    /* modulus or field size */
    size_t size; /* RSA: modulus bytes, the exact signature length */
    int priv;
    char kid[RP_JWT_MAX_KID + 1];
};

struct rp_jwt {
    json_t *header;
    json_t *claims;
    const char *kid; /* borrowed from header, or NULL */
    rp_jwt_alg alg;
    size_t input_len;   /* "header.payload", the signing input */
    size_t sig_len;     /* decoded signature bytes */
    unsigned char *sig; /* points after input[] in the same allocation */
    char input[];       /* input_len bytes + NUL, then the signature */
};

/* Order n of the P-256 group, big-endian (SEC 2). */
static const unsigned char p256_order[32] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51};

/* Header members that would let the token choose its own key, or demand extensions we do not
 * implement: refused on decode, never written on sign. */
static const char *const refused_headers[] = {"jwk", "jku", "x5u", "x5c", "crit"};
#define NREFUSED (sizeof(refused_headers) / sizeof(refused_headers[0]))

const char *rp_jwt_status_name(rp_jwt_status s)
{
    switch (s) {
    case RP_JWT_OK: return "ok";
    case RP_JWT_MALFORMED: return "malformed";
    case RP_JWT_ALG: return "alg";
    case RP_JWT_KID: return "kid";
    case RP_JWT_SIGNATURE: return "signature";
    case RP_JWT_EXPIRED: return "expired";
    case RP_JWT_NOT_YET_VALID: return "not_yet_valid";
    case RP_JWT_ISSUER: return "issuer";
    case RP_JWT_AUDIENCE: return "audience";
    case RP_JWT_CLAIMS: return "claims";
    case RP_JWT_TOO_BIG: return "too_big";
    case RP_JWT_NOMEM: return "nomem";
    }
    return "unknown";
}

/* ---------------------------------------------------------------- small helpers */

static const char *alg_name(rp_jwt_alg alg)
{
    switch (alg) {
    case RP_JWT_RS256: return "RS256";
    case RP_JWT_PS256: return "PS256";
    case RP_JWT_ES256: return "ES256";
    }
    return NULL;
}

/* The alg named s[0..n) exactly (case-sensitive), or 0. */
static rp_jwt_alg alg_from_name(const char *s, size_t n)
{
    rp_str v = {s, n};

    if (rp_str_eq(v, "RS256"))
        return RP_JWT_RS256;
    if (rp_str_eq(v, "PS256"))
        return RP_JWT_PS256;
    if (rp_str_eq(v, "ES256"))
        return RP_JWT_ES256;
    return (rp_jwt_alg)0;
}

static int kid_valid(const char *s, size_t n)
{
    if (n < 1 || n > RP_JWT_MAX_KID)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* A kid argument: NULL or "" (no kid), or a valid kid. */
static int kid_arg_ok(const char *kid)
{
    size_t n;

    if (kid == NULL || kid[0] == '\0')
        return 1;
    n = strnlen(kid, RP_JWT_MAX_KID + 1);
    return kid_valid(kid, n);
}

/* Length of the unpadded base64url encoding of n bytes. */
static size_t b64_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* ---------------------------------------------------------------- keys */

/*
 * Checks that pkey is a key this module uses and reports its type, size in bits and, for RSA,
 * the signature length. 0 or RP_EUNSUPPORTED / RP_ENOMEM.
 */
static int key_check(EVP_PKEY *pkey, int *type, int *bits, size_t *size)
{
    BIGNUM *e = NULL;
    char name[64];
    size_t nlen = 0;
    int rc = RP_EUNSUPPORTED;

    *bits = EVP_PKEY_get_bits(pkey);
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        if (*bits < RSA_MIN_BITS || *bits > RSA_MAX_BITS)
            goto out;
        /* e = 1 would make every value its own signature; even e is not RSA. */
        if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1 || !BN_is_odd(e) ||
            BN_is_one(e))
            goto out;
        *type = KEY_RSA;
        *size = (size_t)EVP_PKEY_get_size(pkey);
        if (*size < RSA_MIN_BITS / 8 || *size > RSA_MAX_BYTES)
            goto out;
        rc = 0;
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        /* Named P-256 only: explicit curve parameters are refused even when they match. */
        if (EVP_PKEY_get_group_name(pkey, name, sizeof(name), &nlen) != 1 ||
            (strcmp(name, "prime256v1") != 0 && strcmp(name, "P-256") != 0))
            goto out;
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING, name, sizeof(name),
                                           &nlen) != 1 ||
            strcmp(name, OSSL_PKEY_EC_ENCODING_GROUP) != 0)
            goto out;
        *type = KEY_P256;
        *size = ES256_SIG_LEN;
        rc = 0;
    }
out:
    BN_free(e);
    return rc;
}

/* Wraps pkey (owned by this call from here on, success or not) in a new key. kid was checked. */
static int key_wrap(EVP_PKEY *pkey, int priv, const char *kid, rp_jwt_key **out)
{
    rp_jwt_key *k = NULL;
    int type = 0, bits = 0;
    size_t size = 0;
    int rc;

    rc = key_check(pkey, &type, &bits, &size);
    if (rc != 0)
        goto out;
    k = rp_calloc(1, sizeof(*k));
    if (k == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    k->pkey = pkey;
    pkey = NULL;
    atomic_init(&k->refs, 1);
    k->type = type;
    k->bits = bits;
    k->size = size;
    k->priv = priv;
    if (kid != NULL)
        rp_strlcpy(k->kid, kid, sizeof(k->kid));
    *out = k;
out:
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return rc;
}

static int key_generate(const char *algname, int rsa_bits, const char *kid, rp_jwt_key **out)
{
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    int rc = RP_ECRYPTO;

    ctx = EVP_PKEY_CTX_new_from_name(NULL, algname, NULL);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0)
        goto out;
    if (rsa_bits > 0 && EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, rsa_bits) <= 0)
        goto out;
    if (rsa_bits == 0 && EVP_PKEY_CTX_set_group_name(ctx, "P-256") <= 0)
        goto out;
    if (EVP_PKEY_generate(ctx, &pkey) <= 0)
        goto out;
    rc = key_wrap(pkey, 1, kid, out);
out:
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

int rp_jwt_key_generate_rsa(int bits, const char *kid, rp_jwt_key **out)
{
    if (out == NULL || bits < 2048 || bits > 4096 || !kid_arg_ok(kid))
        return RP_EINVAL;
    return key_generate("RSA", bits, kid, out);
}

int rp_jwt_key_generate_p256(const char *kid, rp_jwt_key **out)
{
    if (out == NULL || !kid_arg_ok(kid))
        return RP_EINVAL;
    return key_generate("EC", 0, kid, out);
}

/* Parses exactly one PKCS#8 PrivateKeyInfo; NULL if der[0..n) is anything else. */
static EVP_PKEY *parse_pkcs8(const unsigned char *der, size_t n)
{
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)n);
    EVP_PKEY *pkey = NULL;

    /* The structure's free callback wipes the private key octets it holds. */
    if (p8 != NULL && p == der + n)
        pkey = EVP_PKCS82PKEY(p8);
    PKCS8_PRIV_KEY_INFO_free(p8);
    return pkey;
}

/* Parses exactly one SubjectPublicKeyInfo; NULL if der[0..n) is anything else. */
static EVP_PKEY *parse_spki(const unsigned char *der, size_t n)
{
    const unsigned char *p = der;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)n);

    if (pkey != NULL && p != der + n) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    return pkey;
}

int rp_jwt_key_from_der(const unsigned char *der, size_t n, const char *kid, rp_jwt_key **out)
{
    EVP_PKEY *pkey;
    int priv = 1;

    if (der == NULL || n == 0 || out == NULL || !kid_arg_ok(kid))
        return RP_EINVAL;
    if (n > RP_JWT_MAX_KEY_INPUT)
        return RP_ETOOBIG;
    /* A PrivateKeyInfo starts with an INTEGER, a SubjectPublicKeyInfo with a SEQUENCE: at most
     * one of the two parses. */
    pkey = parse_pkcs8(der, n);
    if (pkey == NULL) {
        priv = 0;
        pkey = parse_spki(der, n);
    }
    if (pkey == NULL) {
        ERR_clear_error();
        return RP_EPARSE;
    }
    return key_wrap(pkey, priv, kid, out);
}

/* The public key of exactly one DER certificate, or NULL. */
static EVP_PKEY *parse_cert_key(const unsigned char *der, size_t n)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)n);
    EVP_PKEY *pkey = NULL;

    if (x != NULL && p == der + n)
        pkey = X509_get_pubkey(x);
    X509_free(x);
    return pkey;
}

/* A traditional (PKCS#1 / SEC 1) private key of type id, exactly der[0..n), or NULL. */
static EVP_PKEY *parse_traditional(int id, const unsigned char *der, size_t n)
{
    const unsigned char *p = der;
    EVP_PKEY *pkey = d2i_PrivateKey(id, NULL, &p, (long)n);

    if (pkey != NULL && p != der + n) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    return pkey;
}

int rp_jwt_key_from_pem(const char *pem, size_t n, const char *kid, rp_jwt_key **out)
{
    BIO *bio = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    EVP_PKEY *pkey = NULL;
    int priv = 0, rc = RP_EPARSE;

    if (pem == NULL || n == 0 || out == NULL || !kid_arg_ok(kid))
        return RP_EINVAL;
    if (n > RP_JWT_MAX_KEY_INPUT)
        return RP_ETOOBIG;
    bio = BIO_new_mem_buf(pem, (int)n);
    if (bio == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    if (PEM_read_bio(bio, &name, &header, &data, &len) != 1 || len <= 0)
        goto out;
    if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0 || (header != NULL && header[0] != '\0')) {
        rc = RP_EUNSUPPORTED; /* encrypted (PKCS#8 or legacy Proc-Type) */
        goto out;
    }
    if (strcmp(name, "PRIVATE KEY") == 0) {
        pkey = parse_pkcs8(data, (size_t)len);
        priv = 1;
    } else if (strcmp(name, "RSA PRIVATE KEY") == 0) {
        pkey = parse_traditional(EVP_PKEY_RSA, data, (size_t)len);
        priv = 1;
    } else if (strcmp(name, "EC PRIVATE KEY") == 0) {
        pkey = parse_traditional(EVP_PKEY_EC, data, (size_t)len);
        priv = 1;
    } else if (strcmp(name, "PUBLIC KEY") == 0) {
        pkey = parse_spki(data, (size_t)len);
    } else if (strcmp(name, "CERTIFICATE") == 0) {
        pkey = parse_cert_key(data, (size_t)len);
    }
    if (pkey == NULL)
        goto out;
    rc = key_wrap(pkey, priv, kid, out);
out:
    if (data != NULL)
        OPENSSL_clear_free(data, (size_t)len);
    OPENSSL_free(name);
    OPENSSL_free(header);
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

int rp_jwt_key_private_der(const rp_jwt_key *k, unsigned char **der, size_t *n)
{
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    unsigned char *buf = NULL, *p;
    int len, rc = RP_ECRYPTO;

    if (k == NULL || der == NULL || n == NULL || !k->priv)
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
    if (i2d_PKCS8_PRIV_KEY_INFO(p8, &p) != len) {
        OPENSSL_cleanse(buf, (size_t)len);
        rp_free(buf);
        goto out;
    }
    *der = buf;
    *n = (size_t)len;
    rc = 0;
out:
    PKCS8_PRIV_KEY_INFO_free(p8);
    ERR_clear_error();
    return rc;
}

int rp_jwt_key_public_der(const rp_jwt_key *k, unsigned char **der, size_t *n)
{
    unsigned char *buf, *p;
    int len;

    if (k == NULL || der == NULL || n == NULL)
        return RP_EINVAL;
    len = i2d_PUBKEY(k->pkey, NULL);
    if (len <= 0) {
        ERR_clear_error();
        return RP_ECRYPTO;
    }
    buf = rp_malloc((size_t)len);
    if (buf == NULL)
        return RP_ENOMEM;
    p = buf;
    if (i2d_PUBKEY(k->pkey, &p) != len) {
        rp_free(buf);
        ERR_clear_error();
        return RP_ECRYPTO;
    }
    *der = buf;
    *n = (size_t)len;
    return 0;
}

/*
 * Base64url of the big-endian bytes of a key parameter into out[cap]: the minimal encoding when
 * width is 0, else exactly width bytes. 0, RP_ECRYPTO (no such parameter, too long) or
 * RP_ENOMEM.
 */
static int param_b64(const EVP_PKEY *pkey, const char *param, int width, char *out, size_t cap)
{
    unsigned char bytes[RSA_MAX_BYTES];
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
    if (len <= 0)
        goto out;
    if (rp_b64url_encode(bytes, (size_t)len, out, cap) != 0)
        goto out;
    rc = 0;
out:
    BN_free(bn);
    return rc;
}

int rp_jwt_key_public_jwk(const rp_jwt_key *k, json_t **out)
{
    char a[RSA_MAX_BYTES / 3 * 4 + 8], b[RSA_MAX_BYTES / 3 * 4 + 8];
    const char *kid;
    json_t *jwk;
    int rc;

    if (k == NULL || out == NULL)
        return RP_EINVAL;
    kid = k->kid[0] != '\0' ? k->kid : NULL;
    if (k->type == KEY_RSA) {
        rc = param_b64(k->pkey, OSSL_PKEY_PARAM_RSA_N, 0, a, sizeof(a));
        if (rc == 0)
            rc = param_b64(k->pkey, OSSL_PKEY_PARAM_RSA_E, 0, b, sizeof(b));
        if (rc != 0)
            goto out;
        jwk = json_pack("{s:s, s:s, s:s*, s:s, s:s, s:s}", "kty", "RSA", "use", "sig", "kid", kid,
                        "n", a, "e", b, "alg", "RS256");
    } else {
        rc = param_b64(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32, a, sizeof(a));
        if (rc == 0)
            rc = param_b64(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32, b, sizeof(b));
        if (rc != 0)
            goto out;
        jwk = json_pack("{s:s, s:s, s:s*, s:s, s:s, s:s, s:s}", "kty", "EC", "use", "sig", "kid",
                        kid, "crv", "P-256", "x", a, "y", b, "alg", "ES256");
    }
    if (jwk == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    *out = jwk;
out:
    ERR_clear_error();
    return rc;
}

const char *rp_jwt_key_kid(const rp_jwt_key *k)
{
    return k != NULL ? k->kid : "";
}

int rp_jwt_key_is_private(const rp_jwt_key *k)
{
    return k != NULL && k->priv;
}

rp_jwt_key *rp_jwt_key_ref(rp_jwt_key *k)
{
    if (k != NULL)
        atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
    return k;
}

void rp_jwt_key_free(rp_jwt_key *k)
{
    if (k == NULL)
        return;
    /* acq_rel: the thread that frees sees every other owner's last use of the key. */
    if (atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1)
        return;
    EVP_PKEY_free(k->pkey); /* OpenSSL clears private key components as it frees them */
    rp_free(k);
}

int rp_jwt_cert_thumbprints(const unsigned char *der, size_t n, char x5t[28], char x5t_s256[44],
                            char hex_s256[65])
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = der;
    unsigned char s1[20], s256[32];
    char t1[28], t256[44];
    unsigned int mdlen;
    X509 *x;
    int rc = RP_ECRYPTO;

    if (der == NULL || n == 0)
        return RP_EINVAL;
    if (n > RP_JWT_MAX_KEY_INPUT)
        return RP_ETOOBIG;
    x = d2i_X509(NULL, &p, (long)n);
    if (x == NULL || p != der + n) {
        rc = RP_EPARSE;
        goto out;
    }
    if (EVP_Digest(der, n, s1, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != sizeof(s1) ||
        EVP_Digest(der, n, s256, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof(s256))
        goto out;
    if (rp_b64url_encode(s1, sizeof(s1), t1, sizeof(t1)) != 0 ||
        rp_b64url_encode(s256, sizeof(s256), t256, sizeof(t256)) != 0)
        goto out;
    if (x5t != NULL)
        memcpy(x5t, t1, sizeof(t1));
    if (x5t_s256 != NULL)
        memcpy(x5t_s256, t256, sizeof(t256));
    if (hex_s256 != NULL) {
        for (size_t i = 0; i < sizeof(s256); i++) {
            hex_s256[2 * i] = hex[s256[i] >> 4];
            hex_s256[2 * i + 1] = hex[s256[i] & 15];
        }
        hex_s256[64] = '\0';
    }
    rc = 0;
out:
    X509_free(x);
    ERR_clear_error();
    return rc;
}

/* ---------------------------------------------------------------- signing */

/* Sets the RSA padding parameters of alg on a signing or verification context. 1 or 0. */
static int rsa_params(EVP_PKEY_CTX *pctx, rp_jwt_alg alg)
{
    if (alg == RP_JWT_RS256)
        return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0;
    if (alg == RP_JWT_PS256)
        return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
               EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) > 0 &&
               EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, PS256_SALT_LEN) > 0;
    return 1;
}

static int alg_suits(const rp_jwt_key *k, rp_jwt_alg alg)
{
    if (alg == RP_JWT_RS256 || alg == RP_JWT_PS256)
        return k->type == KEY_RSA && k->bits >= RSA_MIN_BITS;
    if (alg == RP_JWT_ES256)
        return k->type == KEY_P256;
    return 0;
}

typedef struct dump_ctx {
    rp_buf *b;
    int rc;
} dump_ctx;

static int dump_cb(const char *p, size_t n, void *data)
{
    dump_ctx *d = data;
    int rc = rp_buf_append(d->b, p, n);

    if (rc != 0) {
        d->rc = rc;
        return -1;
    }
    return 0;
}

/* Compact JSON of v into b (initialised by the caller). 0, RP_ETOOBIG, RP_ENOMEM, RP_EINVAL. */
static int dump_json(const json_t *v, rp_buf *b)
{
    dump_ctx d = {b, 0};

    if (json_dump_callback(v, dump_cb, &d, JSON_COMPACT) != 0)
        return d.rc != 0 ? d.rc : RP_EINVAL;
    return 0;
}

/* The header object for k and alg plus extra's members. 0, RP_EINVAL or RP_ENOMEM. */
static int build_header(const rp_jwt_key *k, rp_jwt_alg alg, const json_t *extra, json_t **out)
{
    json_t *h = json_pack("{s:s, s:s}", "alg", alg_name(alg), "typ", "JWT");
    const char *name;
    json_t *v;
    int rc = RP_ENOMEM;

    if (h == NULL)
        return RP_ENOMEM;
    if (k->kid[0] != '\0' && json_object_set_new(h, "kid", json_string(k->kid)) != 0)
        goto out;
    if (extra != NULL) {
        rc = RP_EINVAL;
        if (!json_is_object(extra))
            goto out;
        /* jansson's iteration takes a non-const object; it is only read here. */
        json_object_foreach((json_t *)extra, name, v)
        {
            if (json_object_get(h, name) != NULL || strcmp(name, "alg") == 0 ||
                strcmp(name, "typ") == 0 || strcmp(name, "kid") == 0)
                goto out;
            for (size_t i = 0; i < NREFUSED; i++)
                if (strcmp(name, refused_headers[i]) == 0)
                    goto out;
            rc = RP_ENOMEM;
            if (json_object_set(h, name, v) != 0)
                goto out;
            rc = RP_EINVAL;
        }
    }
    *out = h;
    return 0;
out:
    json_decref(h);
    return rc;
}

/*
 * Signs in[0..n) with k for alg into sig (room for k->size bytes; 64 for ES256), *siglen set.
 * 0, RP_ENOMEM or RP_ECRYPTO.
 */
static int sign_input(const rp_jwt_key *k, rp_jwt_alg alg, const char *in, size_t n,
                      unsigned char *sig, size_t *siglen)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char der[ES256_DER_MAX + 8];
    const unsigned char *p = der;
    ECDSA_SIG *es = NULL;
    const BIGNUM *r, *s;
    size_t len;
    int rc = RP_ECRYPTO;

    if (mctx == NULL)
        return RP_ENOMEM;
    if (EVP_DigestSignInit(mctx, &pctx, EVP_sha256(), NULL, k->pkey) != 1 || !rsa_params(pctx, alg))
        goto out;
    if (alg != RP_JWT_ES256) {
        len = k->size;
        if (EVP_DigestSign(mctx, sig, &len, (const unsigned char *)in, n) != 1 || len != k->size)
            goto out;
        *siglen = len;
        rc = 0;
        goto out;
    }
    /* ECDSA comes out of EVP as DER; JWS wants the two scalars, 32 bytes each. */
    len = sizeof(der);
    if (EVP_DigestSign(mctx, der, &len, (const unsigned char *)in, n) != 1)
        goto out;
    es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (es == NULL)
        goto out;
    ECDSA_SIG_get0(es, &r, &s);
    if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(s, sig + 32, 32) != 32)
        goto out;
    *siglen = ES256_SIG_LEN;
    rc = 0;
out:
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(mctx);
    ERR_clear_error();
    return rc;
}

int rp_jwt_sign(const rp_jwt_key *k, rp_jwt_alg alg, const json_t *extra_header,
                const json_t *claims, char **out, size_t *outlen)
{
    unsigned char sig[RSA_MAX_BYTES];
    rp_buf hjson, cjson;
    json_t *header = NULL;
    char *tok = NULL;
    size_t hl, cl, sl, total, pos, siglen = 0;
    int rc;

    if (k == NULL || claims == NULL || out == NULL || outlen == NULL || !json_is_object(claims) ||
        !k->priv || !alg_suits(k, alg))
        return RP_EINVAL;
    rp_buf_init(&hjson, RP_JWT_MAX_LEN);
    rp_buf_init(&cjson, RP_JWT_MAX_LEN);
    rc = build_header(k, alg, extra_header, &header);
    if (rc == 0)
        rc = dump_json(header, &hjson);
    if (rc == 0)
        rc = dump_json(claims, &cjson);
    if (rc != 0)
        goto out;
    /* Every length is bounded by RP_JWT_MAX_LEN or RSA_MAX_BYTES: no overflow below. */
    hl = b64_len(hjson.len);
    cl = b64_len(cjson.len);
    sl = b64_len(k->size);
    total = hl + 1 + cl + 1 + sl;
    if (total > RP_JWT_MAX_LEN) {
        rc = RP_ETOOBIG;
        goto out;
    }
    /* Slack for the encoder's own room check and its NUL. */
    tok = rp_malloc(total + 4);
    if (tok == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    pos = 0;
    rc = rp_b64url_encode((const unsigned char *)hjson.data, hjson.len, tok, total + 4);
    if (rc != 0)
        goto out;
    pos += hl;
    tok[pos++] = '.';
    rc = rp_b64url_encode((const unsigned char *)cjson.data, cjson.len, tok + pos, total + 4 - pos);
    if (rc != 0)
        goto out;
    pos += cl;
    rc = sign_input(k, alg, tok, pos, sig, &siglen);
    if (rc != 0)
        goto out;
    tok[pos++] = '.';
    rc = rp_b64url_encode(sig, siglen, tok + pos, total + 4 - pos);
    if (rc != 0)
        goto out;
    pos += b64_len(siglen);
    *out = tok;
    *outlen = pos;
    tok = NULL;
out:
    rp_free(tok);
    json_decref(header);
    rp_buf_free(&hjson);
    rp_buf_free(&cjson);
    return rc;
}

/* ---------------------------------------------------------------- decoding */

/*
 * Decodes one base64url segment into buf and parses it as a JSON object.
 * RP_JWT_OK and *out, RP_JWT_MALFORMED or RP_JWT_NOMEM.
 */
static rp_jwt_status parse_segment(const char *seg, size_t n, unsigned char *buf, size_t cap,
                                   json_t **out)
{
    json_error_t err;
    size_t len;
    json_t *v;

    if (n == 0 || rp_b64url_decode(seg, n, buf, cap, &len) != 0)
        return RP_JWT_MALFORMED;
    /* Without JSON_DECODE_ANY the text must be an array or object; json_loadb refuses trailing
     * data (whitespace around the value is JSON and is allowed: the signature covers the exact
     * bytes anyway); without JSON_ALLOW_NUL strings cannot hide a \u0000. */
    v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &err);
    if (v == NULL)
        return json_error_code(&err) == json_error_out_of_memory ? RP_JWT_NOMEM : RP_JWT_MALFORMED;
    if (!json_is_object(v)) {
        json_decref(v);
        return RP_JWT_MALFORMED;
    }
    *out = v;
    return RP_JWT_OK;
}

/* The header checks after alg (see rp_jwt_decode). */
static rp_jwt_status check_header(const json_t *h, const char **kid)
{
    const json_t *v;

    v = json_object_get(h, "typ");
    if (v != NULL &&
        (!json_is_string(v) ||
         !rp_str_eq_nocase((rp_str){json_string_value(v), json_string_length(v)}, "JWT")))
        return RP_JWT_MALFORMED;
    for (size_t i = 0; i < NREFUSED; i++)
        if (json_object_get(h, refused_headers[i]) != NULL)
            return RP_JWT_MALFORMED;
    *kid = NULL;
    v = json_object_get(h, "kid");
    if (v != NULL) {
        if (!json_is_string(v) || !kid_valid(json_string_value(v), json_string_length(v)))
            return RP_JWT_MALFORMED;
        *kid = json_string_value(v);
    }
    return RP_JWT_OK;
}

rp_jwt_status rp_jwt_decode(const char *tok, size_t len, unsigned allowed_algs, rp_jwt **out)
{
    unsigned char buf[SEG_MAX];
    json_t *header = NULL, *claims = NULL;
    const char *d1, *d2, *kid = NULL;
    const json_t *a;
    size_t hlen, plen, slen, siglen, size;
    rp_jwt_alg alg;
    rp_jwt *j;
    rp_jwt_status st;

    if (len > RP_JWT_MAX_LEN)
        return RP_JWT_TOO_BIG;
    if (tok == NULL || out == NULL)
        return RP_JWT_MALFORMED;
    d1 = memchr(tok, '.', len);
    if (d1 == NULL)
        return RP_JWT_MALFORMED;
    d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL)
        return RP_JWT_MALFORMED;
    hlen = (size_t)(d1 - tok);
    plen = (size_t)(d2 - d1 - 1);
    slen = len - (size_t)(d2 + 1 - tok);
    if (hlen == 0 || plen == 0)
        return RP_JWT_MALFORMED;

    st = parse_segment(tok, hlen, buf, sizeof(buf), &header);
    if (st != RP_JWT_OK)
        goto fail;
    st = RP_JWT_MALFORMED;
    a = json_object_get(header, "alg");
    if (!json_is_string(a))
        goto fail;
    alg = alg_from_name(json_string_value(a), json_string_length(a));
    if (alg == 0 || (alg & allowed_algs) == 0) {
        st = RP_JWT_ALG;
        goto fail;
    }
    st = check_header(header, &kid);
    if (st != RP_JWT_OK)
        goto fail;
    st = parse_segment(d1 + 1, plen, buf, sizeof(buf), &claims);
    if (st != RP_JWT_OK)
        goto fail;
    st = RP_JWT_MALFORMED;
    if (slen == 0 || rp_b64url_decode(d2 + 1, slen, buf, sizeof(buf), &siglen) != 0)
        goto fail;

    /* struct + "header.payload" + NUL + signature; all bounded by RP_JWT_MAX_LEN. */
    size = sizeof(*j) + hlen + 1 + plen + 1 + siglen;
    j = rp_malloc(size);
    if (j == NULL) {
        st = RP_JWT_NOMEM;
        goto fail;
    }
    j->header = header;
    j->claims = claims;
    j->kid = kid;
    j->alg = alg;
    j->input_len = hlen + 1 + plen;
    memcpy(j->input, tok, j->input_len);
    j->input[j->input_len] = '\0';
    j->sig = (unsigned char *)j->input + j->input_len + 1;
    j->sig_len = siglen;
    memcpy(j->sig, buf, siglen);
    *out = j;
    return RP_JWT_OK;
fail:
    json_decref(claims);
    json_decref(header);
    return st;
}

rp_jwt_alg rp_jwt_alg_of(const rp_jwt *j)
{
    return j != NULL ? j->alg : (rp_jwt_alg)0;
}

const char *rp_jwt_kid(const rp_jwt *j)
{
    return j != NULL ? j->kid : NULL;
}

const char *rp_jwt_header_str(const rp_jwt *j, const char *name)
{
    return j != NULL && name != NULL ? json_string_value(json_object_get(j->header, name)) : NULL;
}

const json_t *rp_jwt_claims(const rp_jwt *j)
{
    return j != NULL ? j->claims : NULL;
}

const char *rp_jwt_claim_str(const rp_jwt *j, const char *name)
{
    return j != NULL && name != NULL ? json_string_value(json_object_get(j->claims, name)) : NULL;
}

void rp_jwt_free(rp_jwt *j)
{
    if (j == NULL)
        return;
    json_decref(j->claims);
    json_decref(j->header);
    rp_free(j);
}

/* ---------------------------------------------------------------- verifying */

/* 1 if the 32-byte big-endian v is in [1, n-1] for the P-256 order n. Public data: no need for
 * constant time. */
static int p256_scalar_ok(const unsigned char *v)
{
    unsigned char any = 0;

    for (size_t i = 0; i < 32; i++)
        any |= v[i];
    return any != 0 && memcmp(v, p256_order, 32) < 0;
}

/* Writes the DER INTEGER of the non-zero 32-byte big-endian unsigned v; returns its length. */
static size_t der_uint(const unsigned char *v, unsigned char *o)
{
    size_t i = 0, n, pos = 0;

    while (v[i] == 0)
        i++;
    n = 32 - i;
    o[pos++] = 0x02;
    o[pos++] = (unsigned char)(n + (v[i] >> 7));
    if (v[i] & 0x80)
        o[pos++] = 0x00; /* keep it positive */
    memcpy(o + pos, v + i, n);
    return pos + n;
}

/* ECDSA-Sig-Value DER of raw r||s (both checked non-zero) into der; returns its length. */
static size_t es256_der(const unsigned char *rs, unsigned char der[ES256_DER_MAX])
{
    size_t n = der_uint(rs, der + 2);

    n += der_uint(rs + 32, der + 2 + n);
    der[0] = 0x30;
    der[1] = (unsigned char)n; /* at most 70: short form */
    return n + 2;
}

rp_jwt_status rp_jwt_verify(const rp_jwt *j, const rp_jwt_key *k)
{
    unsigned char der[ES256_DER_MAX];
    const unsigned char *sig;
    size_t siglen;
    EVP_MD_CTX *mctx;
    EVP_PKEY_CTX *pctx = NULL;
    rp_jwt_status st = RP_JWT_SIGNATURE;

    if (j == NULL)
        return RP_JWT_MALFORMED;
    if (k == NULL)
        return RP_JWT_KID;
    if (!alg_suits(k, j->alg))
        return RP_JWT_ALG;
    sig = j->sig;
    siglen = j->sig_len;
    if (j->alg == RP_JWT_ES256) {
        if (siglen != ES256_SIG_LEN || !p256_scalar_ok(sig) || !p256_scalar_ok(sig + 32))
            return RP_JWT_SIGNATURE;
        siglen = es256_der(sig, der);
        sig = der;
    } else if (siglen != k->size) {
        return RP_JWT_SIGNATURE;
    }
    mctx = EVP_MD_CTX_new();
    if (mctx == NULL)
        return RP_JWT_NOMEM;
    if (EVP_DigestVerifyInit(mctx, &pctx, EVP_sha256(), NULL, k->pkey) == 1 &&
        rsa_params(pctx, j->alg) &&
        EVP_DigestVerify(mctx, sig, siglen, (const unsigned char *)j->input, j->input_len) == 1)
        st = RP_JWT_OK;
    EVP_MD_CTX_free(mctx);
    if (st != RP_JWT_OK)
        ERR_clear_error();
    return st;
}

/* ---------------------------------------------------------------- claims */

/* A time claim: absent (0, *present = 0), or an integer in range (0, *v). -1 otherwise. */
static int time_claim(const json_t *claims, const char *name, int64_t *v, int *present)
{
    const json_t *t = json_object_get(claims, name);
    json_int_t x;

    *present = 0;
    if (t == NULL)
        return 0;
    if (!json_is_integer(t))
        return -1;
    x = json_integer_value(t);
    if (x < 0 || x > RP_JWT_MAX_TIME)
        return -1;
    *v = (int64_t)x;
    *present = 1;
    return 0;
}

/* 1 if aud is absent or a string or an array of strings. */
static int aud_type_ok(const json_t *aud)
{
    size_t i;
    const json_t *v;

    if (aud == NULL || json_is_string(aud))
        return 1;
    if (!json_is_array(aud))
        return 0;
    json_array_foreach(aud, i, v) if (!json_is_string(v)) return 0;
    return 1;
}

static int in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

static int aud_match(const json_t *aud, const char *const *list)
{
    size_t i;
    const json_t *v;

    if (json_is_string(aud))
        return in_list(json_string_value(aud), list);
    json_array_foreach(aud, i, v) if (in_list(json_string_value(v), list)) return 1;
    return 0;
}

static int opt_string(const json_t *claims, const char *name)
{
    const json_t *v = json_object_get(claims, name);

    return v == NULL || json_is_string(v);
}

rp_jwt_status rp_jwt_check_claims(const rp_jwt *j, const rp_jwt_expect *e)
{
    int64_t exp = 0, nbf = 0, iat = 0, now, start;
    int has_exp, has_nbf, has_iat, skew;
    const json_t *c, *aud;
    const char *iss;

    if (j == NULL)
        return RP_JWT_MALFORMED;
    if (e == NULL || e->now < 0 || e->now > RP_JWT_MAX_TIME)
        return RP_JWT_CLAIMS;
    c = j->claims;
    now = e->now;
    skew = e->skew_s < 0 ? 0 : e->skew_s > RP_JWT_MAX_SKEW_S ? RP_JWT_MAX_SKEW_S : e->skew_s;
    aud = json_object_get(c, "aud");
    if (time_claim(c, "exp", &exp, &has_exp) != 0 || time_claim(c, "nbf", &nbf, &has_nbf) != 0 ||
        time_claim(c, "iat", &iat, &has_iat) != 0 || !opt_string(c, "iss") ||
        !opt_string(c, "sub") || !opt_string(c, "jti") || !aud_type_ok(aud))
        return RP_JWT_CLAIMS;
    if (!has_exp && (e->require_exp || e->max_lifetime_s > 0))
        return RP_JWT_CLAIMS;
    /* All values are in 0..2^40 and skew <= 300: none of the sums below can overflow. */
    if (has_exp && exp + skew <= now)
        return RP_JWT_EXPIRED;
    if ((has_nbf && nbf > now + skew) || (has_iat && iat > now + skew))
        return RP_JWT_NOT_YET_VALID;
    if (e->max_lifetime_s > 0) {
        start = has_nbf ? nbf : has_iat ? iat : now;
        if (exp - start > e->max_lifetime_s)
            return RP_JWT_CLAIMS;
    }
    if (e->issuer != NULL) {
        iss = json_string_value(json_object_get(c, "iss"));
        if (iss == NULL || strcmp(iss, e->issuer) != 0)
            return RP_JWT_ISSUER;
    }
    if (e->audiences != NULL && (aud == NULL || !aud_match(aud, e->audiences)))
        return RP_JWT_AUDIENCE;
    return RP_JWT_OK;
}
