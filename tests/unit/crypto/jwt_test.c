/*
 * jwt_test.c - signed JWTs: RS256 / PS256 / ES256 round trips checked against OpenSSL used
 * directly (PSS salt length, raw ECDSA r||s), JWK values against the key's own parameters, keys
 * from DER and PEM (private, public, traditional, certificate, encrypted), certificate
 * thumbprints against independently computed digests, the registered-claim rules, and an attack
 * corpus in which every token asserts one exact status. Attack tokens are signed with the real
 * key wherever a signature is possible, so the decoder, not the signature check, must refuse
 * them. Allocation failure and concurrent use of one key are covered at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"
#include "crypto/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKCAP 20000
#define NOW    ((int64_t)1700000000)

static rp_jwt_key *rsa1, *rsa2, *ec1, *ec2;

/* ---------------------------------------------------------------- helpers */

/* The EVP_PKEY behind a key, through its DER export (the test's independent copy). */
static EVP_PKEY *pkey_of(const rp_jwt_key *k)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t n = 0;
    EVP_PKEY *pk;

    if (rp_jwt_key_is_private(k)) {
        PKCS8_PRIV_KEY_INFO *p8;
        assert_int_equal(rp_jwt_key_private_der(k, &der, &n), 0);
        p = der;
        p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)n);
        assert_non_null(p8);
        pk = EVP_PKCS82PKEY(p8);
        PKCS8_PRIV_KEY_INFO_free(p8);
        OPENSSL_cleanse(der, n);
    } else {
        assert_int_equal(rp_jwt_key_public_der(k, &der, &n), 0);
        p = der;
        pk = d2i_PUBKEY(NULL, &p, (long)n);
    }
    assert_non_null(pk);
    rp_free(der);
    return pk;
}

/* Appends the base64url of p[0..n) to out at *pos. */
static void put_b64(char *out, size_t *pos, const void *p, size_t n)
{
    assert_true(*pos + n / 3 * 4 + 4 < TOKCAP);
    assert_int_equal(rp_b64url_encode(p, n, out + *pos, TOKCAP - *pos), 0);
    *pos += strlen(out + *pos);
}

/* "b64(hdr).b64(payload)" into out; returns its length. */
static size_t signing_input(const char *hdr, const char *payload, char *out)
{
    size_t pos = 0;

    put_b64(out, &pos, hdr, strlen(hdr));
    out[pos++] = '.';
    put_b64(out, &pos, payload, strlen(payload));
    out[pos] = '\0';
    return pos;
}

/* Signs in[0..n) with OpenSSL directly; salt is the PSS salt length (PS256 only). */
static size_t raw_sign(EVP_PKEY *pk, rp_jwt_alg alg, int salt, const char *in, size_t n,
                       unsigned char *sig)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    unsigned char der[128];
    size_t len;

    assert_non_null(m);
    assert_int_equal(EVP_DigestSignInit(m, &pc, EVP_sha256(), NULL, pk), 1);
    if (alg == RP_JWT_PS256) {
        assert_true(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, salt) > 0);
    }
    if (alg != RP_JWT_ES256) {
        len = 1024;
        assert_int_equal(EVP_DigestSign(m, sig, &len, (const unsigned char *)in, n), 1);
    } else {
        const unsigned char *p = der;
        const BIGNUM *r, *s;
        ECDSA_SIG *es;
        len = sizeof(der);
        assert_int_equal(EVP_DigestSign(m, der, &len, (const unsigned char *)in, n), 1);
        es = d2i_ECDSA_SIG(NULL, &p, (long)len);
        assert_non_null(es);
        ECDSA_SIG_get0(es, &r, &s);
        assert_int_equal(BN_bn2binpad(r, sig, 32), 32);
        assert_int_equal(BN_bn2binpad(s, sig + 32, 32), 32);
        ECDSA_SIG_free(es);
        len = 64;
    }
    EVP_MD_CTX_free(m);
    return len;
}

/* A token with exactly this header and payload text, validly signed by k (OpenSSL directly). */
static void signed_tok(const rp_jwt_key *k, rp_jwt_alg alg, const char *hdr, const char *payload,
                       char *out)
{
    unsigned char sig[1024];
    EVP_PKEY *pk = pkey_of(k);
    size_t pos = signing_input(hdr, payload, out);
    size_t n = raw_sign(pk, alg, 32, out, pos, sig);

    out[pos++] = '.';
    put_b64(out, &pos, sig, n);
    EVP_PKEY_free(pk);
}

/* A token with this header, payload and signature bytes. */
static void forged_tok(const char *hdr, const char *payload, const void *sig, size_t n, char *out)
{
    size_t pos = signing_input(hdr, payload, out);

    out[pos++] = '.';
    put_b64(out, &pos, sig, n);
}

static rp_jwt_status decode_n(const char *tok, size_t n, unsigned algs)
{
    rp_jwt *j = NULL;
    rp_jwt_status st = rp_jwt_decode(tok, n, algs, &j);

    assert_true(st == RP_JWT_OK ? j != NULL : j == NULL);
    rp_jwt_free(j);
    return st;
}

static rp_jwt_status decode_st(const char *tok)
{
    return decode_n(tok, strlen(tok), RP_JWT_ALL_ALGS);
}

/* Decode with every alg allowed, then verify with k: the first failure. */
static rp_jwt_status dv_n(const char *tok, size_t n, const rp_jwt_key *k)
{
    rp_jwt *j = NULL;
    rp_jwt_status st = rp_jwt_decode(tok, n, RP_JWT_ALL_ALGS, &j);

    if (st == RP_JWT_OK)
        st = rp_jwt_verify(j, k);
    rp_jwt_free(j);
    return st;
}

static rp_jwt_status dv(const char *tok, const rp_jwt_key *k)
{
    return dv_n(tok, strlen(tok), k);
}

/* Decode + verify + claims with a standard expectation at NOW. */
static const char *const std_auds[] = {"api://rampart", "https://vault.rampart.localhost", NULL};

static rp_jwt_status full(const char *tok, const rp_jwt_key *k)
{
    rp_jwt_expect e = {"https://login.rampart.localhost/t/v2.0", std_auds, NOW, 60, 1, 0};
    rp_jwt *j = NULL;
    rp_jwt_status st = rp_jwt_decode(tok, strlen(tok), RP_JWT_ALL_ALGS, &j);

    if (st == RP_JWT_OK)
        st = rp_jwt_verify(j, k);
    if (st == RP_JWT_OK)
        st = rp_jwt_check_claims(j, &e);
    rp_jwt_free(j);
    return st;
}

/* Claims of a valid token at NOW. */
static json_t *std_claims(void)
{
    json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "iss",
                          "https://login.rampart.localhost/t/v2.0", "sub", "principal-1", "aud",
                          "api://rampart", "iat", (json_int_t)NOW - 10, "nbf", (json_int_t)NOW - 10,
                          "exp", (json_int_t)NOW + 3600, "jti", "id-1");
    assert_non_null(c);
    return c;
}

static char *sign_std(const rp_jwt_key *k, rp_jwt_alg alg)
{
    json_t *c = std_claims();
    char *tok = NULL;
    size_t n = 0;

    assert_int_equal(rp_jwt_sign(k, alg, NULL, c, &tok, &n), 0);
    assert_int_equal(n, strlen(tok));
    json_decref(c);
    return tok;
}

/* Independent base64url decoder (OpenSSL's block decoder after translation) into out. */
static size_t unb64(const char *s, unsigned char *out)
{
    char tmp[4096];
    size_t n = strlen(s), pad = (4 - n % 4) % 4;
    int len;

    assert_true(n + pad < sizeof(tmp));
    for (size_t i = 0; i < n; i++) {
        assert_true(s[i] != '=' && s[i] != '+' && s[i] != '/');
        tmp[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    }
    for (size_t i = 0; i < pad; i++)
        tmp[n + i] = '=';
    len = EVP_DecodeBlock(out, (const unsigned char *)tmp, (int)(n + pad));
    assert_true(len >= 0);
    return (size_t)len - pad;
}

/* Independent base64url encoder (OpenSSL's block encoder, translated, padding stripped). */
static void b64_indep(const unsigned char *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);

    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (int i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
}

static EVP_PKEY *gen_raw(const char *type, const char *arg)
{
    EVP_PKEY *pk;

    if (strcmp(type, "RSA-PSS") == 0) {
        /* RSASSA-PSS-only key (its own SPKI algorithm) */
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);
        pk = NULL;
        assert_non_null(c);
        assert_true(EVP_PKEY_keygen_init(c) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_keygen_bits(c, 2048) > 0);
        assert_true(EVP_PKEY_generate(c, &pk) > 0);
        EVP_PKEY_CTX_free(c);
    } else if (strcmp(type, "RSA") == 0)
        pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)strtoul(arg, NULL, 10));
    else if (strcmp(type, "EC") == 0)
        pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", arg);
    else
        pk = EVP_PKEY_Q_keygen(NULL, NULL, type);
    assert_non_null(pk);
    return pk;
}

/* DER of an EVP_PKEY: SPKI (pub) or PKCS#8. Caller OPENSSL_free's. */
static int der_of(EVP_PKEY *pk, int pub, unsigned char **der)
{
    int n;

    *der = NULL;
    if (pub)
        return i2d_PUBKEY(pk, der);
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pk);
    assert_non_null(p8);
    n = i2d_PKCS8_PRIV_KEY_INFO(p8, der);
    PKCS8_PRIV_KEY_INFO_free(p8);
    return n;
}

/* A self-signed certificate for pk. */
static X509 *self_signed(EVP_PKEY *pk)
{
    X509 *x = X509_new();
    X509_NAME *nm;

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 4242), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 30));
    assert_int_equal(X509_set_pubkey(x, pk), 1);
    nm = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"client-app", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, nm), 1);
    /* Ed25519 signs without a separate digest */
    assert_true(X509_sign(x, pk, EVP_PKEY_is_a(pk, "ED25519") ? NULL : EVP_sha256()) > 0);
    return x;
}

/* PEM text written by fn into a NUL-terminated heap string. */
static char *bio_text(BIO *b)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    char *s = rp_strndup(p, (size_t)n);

    assert_non_null(s);
    BIO_free(b);
    return s;
}

/* Loads a key from s[0..strlen) copied into an exactly-sized, unterminated buffer. */
static int from_pem_exact(const char *s, const char *kid, rp_jwt_key **out)
{
    size_t n = strlen(s);
    char *copy = rp_malloc(n);
    int rc;

    assert_non_null(copy);
    memcpy(copy, s, n);
    rc = rp_jwt_key_from_pem(copy, n, kid, out);
    rp_free(copy);
    return rc;
}

/* ---------------------------------------------------------------- setup */

static int group_setup(void **state)
{
    (void)state;
    if (rp_jwt_key_generate_rsa(2048, "rsa-1", &rsa1) != 0 ||
        rp_jwt_key_generate_rsa(2048, "rsa-2", &rsa2) != 0 ||
        rp_jwt_key_generate_p256("ec-1", &ec1) != 0 || rp_jwt_key_generate_p256("ec-2", &ec2) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    rp_jwt_key_free(rsa1);
    rp_jwt_key_free(rsa2);
    rp_jwt_key_free(ec1);
    rp_jwt_key_free(ec2);
    return 0;
}

/* ---------------------------------------------------------------- basics */

static void test_status_names(void **state)
{
    assert_string_equal(rp_jwt_status_name(RP_JWT_OK), "ok");
    assert_string_equal(rp_jwt_status_name(RP_JWT_MALFORMED), "malformed");
    assert_string_equal(rp_jwt_status_name(RP_JWT_EXPIRED), "expired");
    assert_string_equal(rp_jwt_status_name(RP_JWT_NOT_YET_VALID), "not_yet_valid");
    assert_string_equal(rp_jwt_status_name(RP_JWT_NOMEM), "nomem");
    for (int s = RP_JWT_OK; s <= RP_JWT_NOMEM; s++)
        assert_string_not_equal(rp_jwt_status_name((rp_jwt_status)s), "unknown");
    assert_string_equal(rp_jwt_status_name((rp_jwt_status)99), "unknown");
}

static void test_key_basics(void **state)
{
    rp_jwt_key *k = NULL;
    char kid[RP_JWT_MAX_KID + 2];

    assert_string_equal(rp_jwt_key_kid(rsa1), "rsa-1");
    assert_int_equal(rp_jwt_key_is_private(rsa1), 1);
    assert_int_equal(rp_jwt_key_is_private(NULL), 0);
    assert_string_equal(rp_jwt_key_kid(NULL), "");
    /* references */
    assert_ptr_equal(rp_jwt_key_ref(rsa1), rsa1);
    rp_jwt_key_free(rsa1);
    assert_null(rp_jwt_key_ref(NULL));
    rp_jwt_key_free(NULL);
    /* kid arguments */
    assert_int_equal(rp_jwt_key_generate_p256(NULL, &k), 0);
    assert_string_equal(rp_jwt_key_kid(k), "");
    rp_jwt_key_free(k);
    memset(kid, 'k', RP_JWT_MAX_KID);
    kid[RP_JWT_MAX_KID] = '\0';
    assert_int_equal(rp_jwt_key_generate_p256(kid, &k), 0);
    assert_string_equal(rp_jwt_key_kid(k), kid);
    rp_jwt_key_free(k);
    kid[RP_JWT_MAX_KID] = 'k';
    kid[RP_JWT_MAX_KID + 1] = '\0';
    k = NULL;
    assert_int_equal(rp_jwt_key_generate_p256(kid, &k), RP_EINVAL);
    assert_int_equal(rp_jwt_key_generate_p256("a\nb", &k), RP_EINVAL);
    assert_int_equal(rp_jwt_key_generate_p256("caf\xc3\xa9", &k), RP_EINVAL);
    assert_null(k);
    /* sizes */
    assert_int_equal(rp_jwt_key_generate_rsa(1024, "x", &k), RP_EINVAL);
    assert_int_equal(rp_jwt_key_generate_rsa(2047, "x", &k), RP_EINVAL);
    assert_int_equal(rp_jwt_key_generate_rsa(8192, "x", &k), RP_EINVAL);
    assert_int_equal(rp_jwt_key_generate_rsa(2048, "x", NULL), RP_EINVAL);
    assert_null(k);
}

/* ---------------------------------------------------------------- round trips */

static void roundtrip(const rp_jwt_key *k, const rp_jwt_key *other, rp_jwt_alg alg,
                      const char *name)
{
    json_t *c = std_claims(), *x = json_pack("{s:s}", "x5t#S256", "thumb");
    char *tok = NULL, *tok2 = NULL;
    size_t n = 0, n2 = 0;
    rp_jwt *j = NULL;
    rp_jwt_expect e = {"https://login.rampart.localhost/t/v2.0", std_auds, NOW, 60, 1, 0};

    assert_int_equal(rp_jwt_sign(k, alg, x, c, &tok, &n), 0);
    assert_int_equal(n, strlen(tok));
    assert_int_equal(rp_jwt_decode(tok, n, alg, &j), RP_JWT_OK);
    assert_int_equal(rp_jwt_alg_of(j), alg);
    assert_string_equal(rp_jwt_kid(j), rp_jwt_key_kid(k));
    assert_string_equal(rp_jwt_header_str(j, "alg"), name);
    assert_string_equal(rp_jwt_header_str(j, "typ"), "JWT");
    assert_string_equal(rp_jwt_header_str(j, "x5t#S256"), "thumb");
    assert_null(rp_jwt_header_str(j, "x5t"));
    assert_string_equal(rp_jwt_claim_str(j, "sub"), "principal-1");
    assert_null(rp_jwt_claim_str(j, "exp")); /* not a string */
    assert_null(rp_jwt_claim_str(j, "nope"));
    assert_true(json_equal((json_t *)rp_jwt_claims(j), c));
    assert_int_equal(rp_jwt_verify(j, k), RP_JWT_OK);
    assert_int_equal(rp_jwt_check_claims(j, &e), RP_JWT_OK);
    assert_int_equal(rp_jwt_verify(j, other), RP_JWT_SIGNATURE);
    assert_int_equal(rp_jwt_verify(j, NULL), RP_JWT_KID);
    assert_int_equal(rp_jwt_verify(NULL, k), RP_JWT_MALFORMED);
    rp_jwt_free(j);
    /* header members in order: alg, typ, kid, then the extras */
    {
        char hdr[256];
        size_t hl = (size_t)(strchr(tok, '.') - tok);
        unsigned char raw[256];
        char want[256];
        size_t rl;
        memcpy(hdr, tok, hl);
        hdr[hl] = '\0';
        rl = unb64(hdr, raw);
        snprintf(want, sizeof(want),
                 "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\",\"x5t#S256\":"
                 "\"thumb\"}",
                 name, rp_jwt_key_kid(k));
        assert_int_equal(rl, strlen(want));
        assert_memory_equal(raw, want, rl);
    }
    /* only the named alg is accepted when it is the only one allowed */
    assert_int_equal(decode_n(tok, n, RP_JWT_ALL_ALGS & ~(unsigned)alg), RP_JWT_ALG);
    assert_int_equal(decode_n(tok, n, 0), RP_JWT_ALG);
    /* PS256 and ES256 are randomised, RS256 is deterministic */
    assert_int_equal(rp_jwt_sign(k, alg, x, c, &tok2, &n2), 0);
    if (alg == RP_JWT_RS256)
        assert_string_equal(tok, tok2);
    else
        assert_string_not_equal(tok, tok2);
    assert_int_equal(dv(tok2, k), RP_JWT_OK);
    rp_free(tok);
    rp_free(tok2);
    json_decref(c);
    json_decref(x);
}

static void test_roundtrip_rs256(void **state)
{
    roundtrip(rsa1, rsa2, RP_JWT_RS256, "RS256");
}

static void test_roundtrip_ps256(void **state)
{
    roundtrip(rsa1, rsa2, RP_JWT_PS256, "PS256");
}

static void test_roundtrip_es256(void **state)
{
    roundtrip(ec1, ec2, RP_JWT_ES256, "ES256");
}

/* Our signatures verified by OpenSSL directly: PSS with salt 32 exactly, ES256 as raw r||s. */
static void test_signatures_independent(void **state)
{
    char *tok = sign_std(rsa1, RP_JWT_PS256);
    char *dot = strrchr(tok, '.');
    unsigned char sig[1024], der[80], *dp = der;
    size_t n = unb64(dot + 1, sig);
    EVP_PKEY *pk = pkey_of(rsa1);
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    ECDSA_SIG *es;
    BIGNUM *r, *s;
    int dl;

    assert_int_equal(n, 256);
    for (int salt = 0; salt <= 64; salt += 32) {
        assert_int_equal(EVP_DigestVerifyInit(m, &pc, EVP_sha256(), NULL, pk), 1);
        assert_true(EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, salt) > 0);
        assert_int_equal(EVP_DigestVerify(m, sig, n, (unsigned char *)tok, (size_t)(dot - tok)),
                         salt == 32 ? 1 : 0);
        EVP_MD_CTX_reset(m);
    }
    ERR_clear_error();
    EVP_PKEY_free(pk);
    rp_free(tok);

    tok = sign_std(ec1, RP_JWT_ES256);
    dot = strrchr(tok, '.');
    assert_int_equal(unb64(dot + 1, sig), 64);
    es = ECDSA_SIG_new();
    r = BN_bin2bn(sig, 32, NULL);
    s = BN_bin2bn(sig + 32, 32, NULL);
    assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
    dl = i2d_ECDSA_SIG(es, &dp);
    assert_true(dl > 0);
    pk = pkey_of(ec1);
    assert_int_equal(EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, pk), 1);
    assert_int_equal(
        EVP_DigestVerify(m, der, (size_t)dl, (unsigned char *)tok, (size_t)(dot - tok)), 1);
    ECDSA_SIG_free(es);
    EVP_PKEY_free(pk);
    EVP_MD_CTX_free(m);
    rp_free(tok);
}

/* Tokens signed by OpenSSL directly (the shape other libraries produce) verify. */
static void test_foreign_tokens_verify(void **state)
{
    char tok[TOKCAP];
    const char *p = "{\"aud\":\"api://rampart\",\"exp\":1700000600,\"iss\":\"https://login."
                    "rampart.localhost/t/v2.0\",\"sub\":\"c\",\"nbf\":1700000000,\"jti\":\"j\"}";

    signed_tok(rsa1, RP_JWT_RS256, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", p, tok);
    assert_int_equal(full(tok, rsa1), RP_JWT_OK);
    /* MSAL for Node: PS256 via jsonwebtoken/jwa, salt = 32, x5t#S256 header */
    signed_tok(rsa1, RP_JWT_PS256,
               "{\"alg\":\"PS256\",\"typ\":\"JWT\",\"x5t#S256\":\"q83vEjRWeJCrze8SNFZ4kKvN7xI\"}",
               p, tok);
    assert_int_equal(full(tok, rsa1), RP_JWT_OK);
    /* no typ, lower-case typ, kid of any printable characters */
    signed_tok(ec1, RP_JWT_ES256, "{\"alg\":\"ES256\"}", p, tok);
    assert_int_equal(full(tok, ec1), RP_JWT_OK);
    signed_tok(ec1, RP_JWT_ES256, "{\"typ\":\"jwt\",\"kid\":\" ~!x y\",\"alg\":\"ES256\"}", p, tok);
    assert_int_equal(full(tok, ec1), RP_JWT_OK);
}

/* ---------------------------------------------------------------- JWK */

static void test_jwk_rsa(void **state)
{
    json_t *jwk = NULL;
    EVP_PKEY *pk = pkey_of(rsa1);
    BIGNUM *n = NULL, *e = NULL;
    unsigned char want[1024], got[1100];
    int wl;
    size_t gl;

    assert_int_equal(rp_jwt_key_public_jwk(rsa1, &jwk), 0);
    assert_int_equal(json_object_size(jwk), 6);
    assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "RSA");
    assert_string_equal(json_string_value(json_object_get(jwk, "use")), "sig");
    assert_string_equal(json_string_value(json_object_get(jwk, "kid")), "rsa-1");
    assert_string_equal(json_string_value(json_object_get(jwk, "alg")), "RS256");
    assert_string_equal(json_string_value(json_object_get(jwk, "e")), "AQAB");
    assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e), 1);
    wl = BN_bn2bin(n, want);
    assert_int_equal(wl, 256);
    gl = unb64(json_string_value(json_object_get(jwk, "n")), got);
    assert_int_equal(gl, (size_t)wl);
    assert_true(got[0] != 0);
    assert_memory_equal(got, want, gl);
    wl = BN_bn2bin(e, want);
    gl = unb64(json_string_value(json_object_get(jwk, "e")), got);
    assert_int_equal(gl, (size_t)wl);
    assert_memory_equal(got, want, gl);
    /* the public-only twin publishes the same JWK */
    {
        unsigned char *der = NULL;
        size_t dn = 0;
        rp_jwt_key *pub = NULL;
        json_t *jwk2 = NULL;
        assert_int_equal(rp_jwt_key_public_der(rsa1, &der, &dn), 0);
        assert_int_equal(rp_jwt_key_from_der(der, dn, "rsa-1", &pub), 0);
        assert_int_equal(rp_jwt_key_public_jwk(pub, &jwk2), 0);
        assert_true(json_equal(jwk, jwk2));
        json_decref(jwk2);
        rp_jwt_key_free(pub);
        rp_free(der);
    }
    BN_free(n);
    BN_free(e);
    EVP_PKEY_free(pk);
    json_decref(jwk);
    assert_int_equal(rp_jwt_key_public_jwk(NULL, &jwk), RP_EINVAL);
}

/* x and y are always 32 bytes, including for keys whose coordinate starts with a zero byte. */
static void test_jwk_ec(void **state)
{
    int saw_zero = 0;

    for (int i = 0; i < 4000 && saw_zero < 1; i++) {
        rp_jwt_key *k = NULL;
        json_t *jwk = NULL;
        EVP_PKEY *pk;
        BIGNUM *x = NULL, *y = NULL;
        unsigned char wx[32], wy[32], got[64];

        assert_int_equal(rp_jwt_key_generate_p256(i == 0 ? NULL : "ec", &k), 0);
        assert_int_equal(rp_jwt_key_public_jwk(k, &jwk), 0);
        pk = pkey_of(k);
        assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
        assert_int_equal(BN_bn2binpad(x, wx, 32), 32);
        assert_int_equal(BN_bn2binpad(y, wy, 32), 32);
        assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "EC");
        assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "P-256");
        assert_string_equal(json_string_value(json_object_get(jwk, "alg")), "ES256");
        assert_string_equal(json_string_value(json_object_get(jwk, "use")), "sig");
        assert_int_equal(json_object_size(jwk), i == 0 ? 6 : 7); /* no kid on the first */
        assert_null(json_object_get(jwk, "d"));
        assert_int_equal(strlen(json_string_value(json_object_get(jwk, "x"))), 43);
        assert_int_equal(unb64(json_string_value(json_object_get(jwk, "x")), got), 32);
        assert_memory_equal(got, wx, 32);
        assert_int_equal(unb64(json_string_value(json_object_get(jwk, "y")), got), 32);
        assert_memory_equal(got, wy, 32);
        if (wx[0] == 0 || wy[0] == 0)
            saw_zero++;
        BN_free(x);
        BN_free(y);
        EVP_PKEY_free(pk);
        json_decref(jwk);
        rp_jwt_key_free(k);
    }
    assert_true(saw_zero > 0); /* probability of missing one in 4000 keys: ~1e-14 */
}

/* ---------------------------------------------------------------- DER and PEM */

static void test_der_roundtrip(void **state)
{
    const rp_jwt_key *keys[] = {rsa1, ec1};

    for (size_t i = 0; i < 2; i++) {
        unsigned char *priv = NULL, *pub = NULL, *pub2 = NULL, *junk;
        size_t pn = 0, un = 0, un2 = 0, dummy = 0;
        rp_jwt_key *kp = NULL, *ku = NULL, *none = NULL;
        char *tok;

        assert_int_equal(rp_jwt_key_private_der(keys[i], &priv, &pn), 0);
        assert_int_equal(priv[0], 0x30);
        assert_int_equal(rp_jwt_key_public_der(keys[i], &pub, &un), 0);
        assert_int_equal(rp_jwt_key_from_der(priv, pn, "p", &kp), 0);
        assert_int_equal(rp_jwt_key_is_private(kp), 1);
        assert_string_equal(rp_jwt_key_kid(kp), "p");
        assert_int_equal(rp_jwt_key_public_der(kp, &pub2, &un2), 0);
        assert_int_equal(un, un2);
        assert_memory_equal(pub, pub2, un);
        assert_int_equal(rp_jwt_key_from_der(pub, un, "u", &ku), 0);
        assert_int_equal(rp_jwt_key_is_private(ku), 0);
        assert_int_equal(rp_jwt_key_private_der(ku, &junk, &dummy), RP_EINVAL);
        /* a reloaded private key signs what the original verifies and vice versa */
        tok = sign_std(kp, i == 0 ? RP_JWT_RS256 : RP_JWT_ES256);
        assert_int_equal(dv(tok, keys[i]), RP_JWT_OK);
        assert_int_equal(dv(tok, ku), RP_JWT_OK);
        rp_free(tok);
        /* a public key cannot sign */
        {
            json_t *c = std_claims();
            char *t = NULL;
            size_t tl = 0;
            assert_int_equal(
                rp_jwt_sign(ku, i == 0 ? RP_JWT_RS256 : RP_JWT_ES256, NULL, c, &t, &tl), RP_EINVAL);
            assert_null(t);
            json_decref(c);
        }
        /* trailing bytes, truncation, garbage */
        junk = rp_malloc(pn + 1);
        assert_non_null(junk);
        memcpy(junk, priv, pn);
        junk[pn] = 0;
        assert_int_equal(rp_jwt_key_from_der(junk, pn + 1, "x", &none), RP_EPARSE);
        assert_int_equal(rp_jwt_key_from_der(junk, pn - 1, "x", &none), RP_EPARSE);
        memcpy(junk, pub, un);
        junk[un] = 0;
        assert_int_equal(rp_jwt_key_from_der(junk, un + 1, "x", &none), RP_EPARSE);
        assert_int_equal(rp_jwt_key_from_der(junk, un - 1, "x", &none), RP_EPARSE);
        assert_int_equal(rp_jwt_key_from_der((const unsigned char *)"hello", 5, "x", &none),
                         RP_EPARSE);
        assert_int_equal(rp_jwt_key_from_der(junk, 0, "x", &none), RP_EINVAL);
        assert_int_equal(rp_jwt_key_from_der(junk, un, "bad\x01", &none), RP_EINVAL);
        assert_null(none);
        rp_free(junk);
        OPENSSL_cleanse(priv, pn);
        rp_free(priv);
        rp_free(pub);
        rp_free(pub2);
        rp_jwt_key_free(kp);
        rp_jwt_key_free(ku);
    }
    assert_int_equal(ERR_peek_error(), 0); /* expected failures leave no errors behind */
}

static void test_pem(void **state)
{
    EVP_PKEY *types[2];

    types[0] = gen_raw("RSA", "2048");
    types[1] = gen_raw("EC", "P-256");
    for (size_t i = 0; i < 2; i++) {
        EVP_PKEY *pk = types[i];
        rp_jwt_alg alg = i == 0 ? RP_JWT_PS256 : RP_JWT_ES256;
        X509 *x = self_signed(pk);
        BIO *b;
        char *priv, *trad, *pub, *cert, *enc, *chain;
        rp_jwt_key *kp = NULL, *kt = NULL, *ku = NULL, *kc = NULL, *none = NULL;
        char *tok;

        b = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL), 1);
        priv = bio_text(b);
        assert_non_null(strstr(priv, "-----BEGIN PRIVATE KEY-----"));
        b = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, pk, NULL, NULL, 0, NULL, NULL), 1);
        trad = bio_text(b);
        assert_non_null(strstr(trad, i == 0 ? "BEGIN RSA PRIVATE KEY" : "BEGIN EC PRIVATE KEY"));
        b = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_PUBKEY(b, pk), 1);
        pub = bio_text(b);
        b = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_X509(b, x), 1);
        cert = bio_text(b);
        b = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_PKCS8PrivateKey(b, pk, EVP_aes_256_cbc(), NULL, 0, NULL,
                                                       (void *)"passphrase"),
                         1);
        enc = bio_text(b);

        assert_int_equal(from_pem_exact(priv, "kp", &kp), 0);
        assert_int_equal(rp_jwt_key_is_private(kp), 1);
        assert_int_equal(from_pem_exact(trad, "kt", &kt), 0);
        assert_int_equal(rp_jwt_key_is_private(kt), 1);
        assert_int_equal(from_pem_exact(pub, "ku", &ku), 0);
        assert_int_equal(rp_jwt_key_is_private(ku), 0);
        assert_int_equal(from_pem_exact(cert, "kc", &kc), 0);
        assert_int_equal(rp_jwt_key_is_private(kc), 0);
        assert_string_equal(rp_jwt_key_kid(kc), "kc");
        tok = sign_std(kp, alg);
        assert_int_equal(dv(tok, ku), RP_JWT_OK);
        assert_int_equal(dv(tok, kc), RP_JWT_OK);
        assert_int_equal(dv(tok, kt), RP_JWT_OK);
        rp_free(tok);
        tok = sign_std(kt, alg);
        assert_int_equal(dv(tok, kc), RP_JWT_OK);
        rp_free(tok);

        /* text before the block is skipped; only the first block counts (leaf of a chain) */
        chain = rp_malloc(strlen(cert) * 2 + 64);
        assert_non_null(chain);
        snprintf(chain, strlen(cert) * 2 + 64, "subject=CN = client-app\n%s%s", cert, priv);
        assert_int_equal(from_pem_exact(chain, "c", &none), 0);
        assert_int_equal(rp_jwt_key_is_private(none), 0);
        rp_jwt_key_free(none);
        none = NULL;
        rp_free(chain);

        assert_int_equal(from_pem_exact(enc, "x", &none), RP_EUNSUPPORTED);
        assert_int_equal(
            from_pem_exact("-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", "x", &none),
            RP_EPARSE);
        assert_int_equal(from_pem_exact("not a pem at all", "x", &none), RP_EPARSE);
        /* a corrupted body */
        {
            char *bad = rp_strdup(pub);
            char *mid = strchr(bad, '\n') + 10;
            *mid = *mid == 'A' ? 'B' : 'A';
            int rc = from_pem_exact(bad, "x", &none);
            assert_true(rc == RP_EPARSE || rc == RP_EUNSUPPORTED);
            rp_free(bad);
        }
        assert_int_equal(rp_jwt_key_from_pem(pub, 0, "x", &none), RP_EINVAL);
        assert_null(none);

        rp_jwt_key_free(kp);
        rp_jwt_key_free(kt);
        rp_jwt_key_free(ku);
        rp_jwt_key_free(kc);
        rp_free(priv);
        rp_free(trad);
        rp_free(pub);
        rp_free(cert);
        rp_free(enc);
        X509_free(x);
        EVP_PKEY_free(pk);
    }
    assert_int_equal(ERR_peek_error(), 0);
}

/* Keys this module refuses to load at all. */
static void test_key_refused(void **state)
{
    static const struct {
        const char *type, *arg;
    } bad[] = {{"RSA", "1024"},     {"RSA", "1536"},   {"EC", "P-384"},
               {"EC", "secp256k1"}, {"ED25519", NULL}, {"RSA-PSS", NULL}};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        EVP_PKEY *pk;
        unsigned char *der = NULL;
        rp_jwt_key *k = NULL;
        int n;
        BIO *b;
        char *pem;

        pk = gen_raw(bad[i].type, bad[i].arg);
        for (int pub = 0; pub <= 1; pub++) {
            n = der_of(pk, pub, &der);
            assert_true(n > 0);
            assert_int_equal(rp_jwt_key_from_der(der, (size_t)n, "weak", &k), RP_EUNSUPPORTED);
            assert_null(k);
            OPENSSL_free(der);
        }
        b = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_PUBKEY(b, pk), 1);
        pem = bio_text(b);
        assert_int_equal(from_pem_exact(pem, "weak", &k), RP_EUNSUPPORTED);
        rp_free(pem);
        {
            X509 *x = self_signed(pk);
            b = BIO_new(BIO_s_mem());
            assert_int_equal(PEM_write_bio_X509(b, x), 1);
            pem = bio_text(b);
            assert_int_equal(from_pem_exact(pem, "weak", &k), RP_EUNSUPPORTED);
            rp_free(pem);
            X509_free(x);
        }
        assert_null(k);
        EVP_PKEY_free(pk);
    }
    /* P-256 with explicit curve parameters instead of the name */
    {
        EVP_PKEY *pk = gen_raw("EC", "P-256");
        unsigned char *der = NULL;
        rp_jwt_key *k = NULL;
        int n;
        assert_int_equal(
            EVP_PKEY_set_utf8_string_param(pk, OSSL_PKEY_PARAM_EC_ENCODING, "explicit"), 1);
        n = i2d_PUBKEY(pk, &der);
        assert_true(n > 0);
        assert_int_equal(rp_jwt_key_from_der(der, (size_t)n, "x", &k), RP_EUNSUPPORTED);
        OPENSSL_free(der);
        EVP_PKEY_free(pk);
    }
    assert_int_equal(ERR_peek_error(), 0);
}

static void test_thumbprints(void **state)
{
    EVP_PKEY *pk = gen_raw("EC", "P-256");
    X509 *x = self_signed(pk);
    unsigned char *der = NULL, d1[20], d256[32];
    int n = i2d_X509(x, &der);
    char x5t[28], s256[44], hex[65], w1[40], w256[60], whex[65];
    unsigned int l;

    assert_true(n > 0);
    assert_int_equal(rp_jwt_cert_thumbprints(der, (size_t)n, x5t, s256, hex), 0);
    assert_int_equal(EVP_Digest(der, (size_t)n, d1, &l, EVP_sha1(), NULL), 1);
    assert_int_equal(EVP_Digest(der, (size_t)n, d256, &l, EVP_sha256(), NULL), 1);
    b64_indep(d1, 20, w1);
    b64_indep(d256, 32, w256);
    for (int i = 0; i < 32; i++)
        snprintf(whex + 2 * i, 3, "%02X", d256[i]);
    assert_int_equal(strlen(x5t), 27);
    assert_int_equal(strlen(s256), 43);
    assert_string_equal(x5t, w1);
    assert_string_equal(s256, w256);
    assert_string_equal(hex, whex);
    /* outputs may be skipped */
    memset(hex, 0, sizeof(hex));
    assert_int_equal(rp_jwt_cert_thumbprints(der, (size_t)n, NULL, NULL, hex), 0);
    assert_string_equal(hex, whex);
    /* not exactly one certificate: outputs untouched */
    memset(x5t, 'z', sizeof(x5t));
    assert_int_equal(rp_jwt_cert_thumbprints(der, (size_t)n - 1, x5t, s256, hex), RP_EPARSE);
    assert_int_equal(x5t[0], 'z');
    assert_int_equal(rp_jwt_cert_thumbprints((const unsigned char *)"junk", 4, x5t, s256, hex),
                     RP_EPARSE);
    assert_int_equal(rp_jwt_cert_thumbprints(der, 0, x5t, s256, hex), RP_EINVAL);
    OPENSSL_free(der);
    X509_free(x);
    EVP_PKEY_free(pk);
    assert_int_equal(ERR_peek_error(), 0);
}

/* ---------------------------------------------------------------- signing arguments */

static void test_sign_args(void **state)
{
    json_t *c = std_claims(), *arr = json_array(), *x;
    char *tok = NULL;
    size_t n = 0;
    static const char *const reserved[] = {"alg", "typ", "kid", "jwk", "jku", "x5u", "x5c", "crit"};

    assert_int_equal(rp_jwt_sign(rsa1, RP_JWT_ES256, NULL, c, &tok, &n), RP_EINVAL);
    assert_int_equal(rp_jwt_sign(ec1, RP_JWT_RS256, NULL, c, &tok, &n), RP_EINVAL);
    assert_int_equal(rp_jwt_sign(ec1, RP_JWT_PS256, NULL, c, &tok, &n), RP_EINVAL);
    assert_int_equal(rp_jwt_sign(rsa1, (rp_jwt_alg)3, NULL, c, &tok, &n), RP_EINVAL);
    assert_int_equal(rp_jwt_sign(rsa1, (rp_jwt_alg)0, NULL, c, &tok, &n), RP_EINVAL);
    assert_int_equal(rp_jwt_sign(NULL, RP_JWT_RS256, NULL, c, &tok, &n), RP_EINVAL);
    assert_int_equal(rp_jwt_sign(rsa1, RP_JWT_RS256, NULL, arr, &tok, &n), RP_EINVAL);
    assert_int_equal(rp_jwt_sign(rsa1, RP_JWT_RS256, NULL, NULL, &tok, &n), RP_EINVAL);
    assert_int_equal(rp_jwt_sign(rsa1, RP_JWT_RS256, arr, c, &tok, &n), RP_EINVAL);
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        x = json_pack("{s:s, s:s}", "x5t", "t", reserved[i], "v");
        assert_int_equal(rp_jwt_sign(rsa1, RP_JWT_RS256, x, c, &tok, &n), RP_EINVAL);
        json_decref(x);
    }
    assert_null(tok);
    assert_int_equal(n, 0);
    /* a key without a kid writes no kid */
    {
        rp_jwt_key *k = NULL;
        rp_jwt *j = NULL;
        assert_int_equal(rp_jwt_key_generate_p256(NULL, &k), 0);
        assert_int_equal(rp_jwt_sign(k, RP_JWT_ES256, NULL, c, &tok, &n), 0);
        assert_int_equal(rp_jwt_decode(tok, n, RP_JWT_ES256, &j), RP_JWT_OK);
        assert_null(rp_jwt_kid(j));
        assert_int_equal(rp_jwt_verify(j, k), RP_JWT_OK);
        rp_jwt_free(j);
        rp_free(tok);
        rp_jwt_key_free(k);
    }
    json_decref(arr);
    json_decref(c);
}

/* The largest token that can be signed is exactly RP_JWT_MAX_LEN long and decodes; one byte
 * more of claims is RP_ETOOBIG; RP_JWT_MAX_LEN + 1 bytes of anything is RP_JWT_TOO_BIG. */
static void test_size_limit(void **state)
{
    char *pad = rp_malloc(RP_JWT_MAX_LEN + 1), *big;
    size_t lo = 0, hi = RP_JWT_MAX_LEN, n;
    json_t *c;
    char *tok = NULL;

    assert_non_null(pad);
    memset(pad, 'p', RP_JWT_MAX_LEN);
    /* largest padding that still signs (ES256: fixed signature length) */
    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2;
        int rc;
        pad[mid] = '\0';
        c = json_pack("{s:s, s:I}", "pad", pad, "exp", (json_int_t)NOW + 60);
        rc = rp_jwt_sign(ec1, RP_JWT_ES256, NULL, c, &tok, &n);
        json_decref(c);
        pad[mid] = 'p';
        if (rc == 0) {
            lo = mid;
            rp_free(tok);
            tok = NULL;
        } else {
            assert_int_equal(rc, RP_ETOOBIG);
            hi = mid - 1;
        }
    }
    pad[lo] = '\0';
    c = json_pack("{s:s, s:I}", "pad", pad, "exp", (json_int_t)NOW + 60);
    assert_int_equal(rp_jwt_sign(ec1, RP_JWT_ES256, NULL, c, &tok, &n), 0);
    json_decref(c);
    assert_true(n <= RP_JWT_MAX_LEN && n > RP_JWT_MAX_LEN - 4);
    assert_int_equal(dv(tok, ec1), RP_JWT_OK);
    rp_free(tok);
    /* anything over the limit is refused before it is looked at */
    big = rp_malloc(RP_JWT_MAX_LEN + 2);
    assert_non_null(big);
    memset(big, 'A', RP_JWT_MAX_LEN + 1);
    big[RP_JWT_MAX_LEN + 1] = '\0';
    big[10] = '.';
    big[20] = '.';
    assert_int_equal(decode_n(big, RP_JWT_MAX_LEN + 1, RP_JWT_ALL_ALGS), RP_JWT_TOO_BIG);
    assert_int_equal(decode_n(big, SIZE_MAX, RP_JWT_ALL_ALGS), RP_JWT_TOO_BIG);
    assert_int_equal(decode_n(NULL, 5, RP_JWT_ALL_ALGS), RP_JWT_MALFORMED);
    rp_free(big);
    rp_free(pad);
}

/* ---------------------------------------------------------------- attack corpus */

static const char *const P_OK =
    "{\"iss\":\"https://login.rampart.localhost/t/v2.0\",\"sub\":\"x\",\"aud\":\"api://rampart\","
    "\"exp\":1700003600,\"iat\":1699999990}";

static void test_attack_alg_none(void **state)
{
    char tok[TOKCAP], good[TOKCAP];
    size_t pos;

    /* alg none, empty signature */
    pos = signing_input("{\"alg\":\"none\",\"typ\":\"JWT\"}", P_OK, tok);
    tok[pos++] = '.';
    tok[pos] = '\0';
    assert_int_equal(decode_st(tok), RP_JWT_ALG);
    /* alg none with a real RS256 signature over the same input */
    signed_tok(rsa1, RP_JWT_RS256, "{\"alg\":\"none\",\"typ\":\"JWT\"}", P_OK, tok);
    assert_int_equal(decode_st(tok), RP_JWT_ALG);
    /* case games and neighbours */
    static const char *const hdrs[] = {
        "{\"alg\":\"None\"}",  "{\"alg\":\"nOnE\"}",    "{\"alg\":\"NONE\"}",
        "{\"alg\":\"\"}",      "{\"alg\":\"rs256\"}",   "{\"alg\":\"RS256 \"}",
        "{\"alg\":\"RS384\"}", "{\"alg\":\"RS512\"}",   "{\"alg\":\"ES384\"}",
        "{\"alg\":\"EdDSA\"}", "{\"alg\":\"HS256\"}",   "{\"alg\":\"PS512\"}",
        "{\"alg\":\"dir\"}",   "{\"alg\":\"RSA-OAEP\"}"};
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        signed_tok(rsa1, RP_JWT_RS256, hdrs[i], P_OK, tok);
        assert_int_equal(decode_st(tok), RP_JWT_ALG);
        assert_int_equal(decode_n(tok, strlen(tok), ~0u), RP_JWT_ALG);
    }
    /* alg missing or not a string */
    signed_tok(rsa1, RP_JWT_RS256, "{\"typ\":\"JWT\"}", P_OK, tok);
    assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
    signed_tok(rsa1, RP_JWT_RS256, "{\"alg\":null}", P_OK, tok);
    assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
    signed_tok(rsa1, RP_JWT_RS256, "{\"alg\":[\"RS256\"]}", P_OK, tok);
    assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
    signed_tok(rsa1, RP_JWT_RS256, "{\"alg\":1}", P_OK, tok);
    assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
    /* the same payload properly signed is fine */
    signed_tok(rsa1, RP_JWT_RS256, "{\"alg\":\"RS256\"}", P_OK, good);
    assert_int_equal(full(good, rsa1), RP_JWT_OK);
}

/* HS256 with the RSA public key (PEM) as the HMAC secret: the classic confusion. */
static void test_attack_hs256_pubkey(void **state)
{
    EVP_PKEY *pk = pkey_of(rsa1);
    BIO *b = BIO_new(BIO_s_mem());
    char *pem, tok[TOKCAP];
    unsigned char mac[32];
    size_t maclen = 0, pos;
    const char *hdrs[] = {"{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"alg\":\"HS256\"}",
                          "{\"alg\":\"HS256\",\"kid\":\"rsa-1\"}"};

    assert_int_equal(PEM_write_bio_PUBKEY(b, pk), 1);
    pem = bio_text(b);
    for (size_t i = 0; i < 3; i++) {
        pos = signing_input(hdrs[i], P_OK, tok);
        assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, pem, strlen(pem),
                                  (unsigned char *)tok, pos, mac, sizeof(mac), &maclen));
        tok[pos++] = '.';
        put_b64(tok, &pos, mac, maclen);
        assert_int_equal(decode_st(tok), RP_JWT_ALG);
        assert_int_equal(decode_n(tok, strlen(tok), ~0u), RP_JWT_ALG);
    }
    rp_free(pem);
    EVP_PKEY_free(pk);
}

/* The key type decides, not the header: RSA never verifies ES256 and EC never RS/PS256. */
static void test_attack_key_confusion(void **state)
{
    char *rs = sign_std(rsa1, RP_JWT_RS256), *ps = sign_std(rsa1, RP_JWT_PS256),
         *es = sign_std(ec1, RP_JWT_ES256);
    char tok[TOKCAP];

    assert_int_equal(dv(rs, ec1), RP_JWT_ALG);
    assert_int_equal(dv(ps, ec1), RP_JWT_ALG);
    assert_int_equal(dv(es, rsa1), RP_JWT_ALG);
    assert_int_equal(dv(rs, rsa1), RP_JWT_OK);
    /* a PKCS#1 v1.5 signature relabelled PS256, and a PSS one relabelled RS256 */
    {
        size_t pos = signing_input("{\"alg\":\"PS256\"}", P_OK, tok);
        EVP_PKEY *pk = pkey_of(rsa1);
        unsigned char s[1024];
        size_t n = raw_sign(pk, RP_JWT_RS256, 0, tok, pos, s);
        tok[pos++] = '.';
        put_b64(tok, &pos, s, n);
        assert_int_equal(dv(tok, rsa1), RP_JWT_SIGNATURE);
        pos = signing_input("{\"alg\":\"RS256\"}", P_OK, tok);
        n = raw_sign(pk, RP_JWT_PS256, 32, tok, pos, s);
        tok[pos++] = '.';
        put_b64(tok, &pos, s, n);
        assert_int_equal(dv(tok, rsa1), RP_JWT_SIGNATURE);
        EVP_PKEY_free(pk);
    }
    /* ES256 header over an RSA signature, and the reverse */
    {
        const char *sig = strrchr(rs, '.') + 1;
        size_t pos = signing_input("{\"alg\":\"ES256\"}", P_OK, tok);
        tok[pos++] = '.';
        memcpy(tok + pos, sig, strlen(sig) + 1);
        assert_int_equal(dv(tok, ec1), RP_JWT_SIGNATURE);
        sig = strrchr(es, '.') + 1;
        pos = signing_input("{\"alg\":\"RS256\"}", P_OK, tok);
        tok[pos++] = '.';
        memcpy(tok + pos, sig, strlen(sig) + 1);
        assert_int_equal(dv(tok, rsa1), RP_JWT_SIGNATURE);
    }
    rp_free(rs);
    rp_free(ps);
    rp_free(es);
}

/* PSS salt lengths other than 32 (raw Node crypto.sign's default is the maximum). */
static void test_attack_pss_salt(void **state)
{
    static const int salts[] = {0, 20, 31, 33, 64, RSA_PSS_SALTLEN_MAX};
    char tok[TOKCAP];
    EVP_PKEY *pk = pkey_of(rsa1);

    for (size_t i = 0; i < sizeof(salts) / sizeof(salts[0]); i++) {
        unsigned char s[1024];
        size_t pos = signing_input("{\"alg\":\"PS256\",\"typ\":\"JWT\"}", P_OK, tok);
        size_t n = raw_sign(pk, RP_JWT_PS256, salts[i], tok, pos, s);
        tok[pos++] = '.';
        put_b64(tok, &pos, s, n);
        assert_int_equal(dv(tok, rsa1), RP_JWT_SIGNATURE);
    }
    signed_tok(rsa1, RP_JWT_PS256, "{\"alg\":\"PS256\",\"typ\":\"JWT\"}", P_OK, tok);
    assert_int_equal(dv(tok, rsa1), RP_JWT_OK);
    EVP_PKEY_free(pk);
}

/* ES256 signatures with r or s out of [1, n-1], and of the wrong length or form. */
static void test_attack_es256_scalars(void **state)
{
    static const unsigned char n[32] = {0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00,
                                        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                        0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84,
                                        0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51};
    const char *hdr = "{\"alg\":\"ES256\",\"typ\":\"JWT\"}";
    unsigned char sig[80], good[64];
    char tok[TOKCAP];
    size_t pos;
    EVP_PKEY *pk = pkey_of(ec1);

    /* r = s = 0: the "psychic signature" */
    memset(sig, 0, 64);
    forged_tok(hdr, P_OK, sig, 64, tok);
    assert_int_equal(decode_st(tok), RP_JWT_OK);
    assert_int_equal(dv(tok, ec1), RP_JWT_SIGNATURE);
    /* r = s = n */
    memcpy(sig, n, 32);
    memcpy(sig + 32, n, 32);
    forged_tok(hdr, P_OK, sig, 64, tok);
    assert_int_equal(dv(tok, ec1), RP_JWT_SIGNATURE);
    /* r = s = 0xff..ff */
    memset(sig, 0xff, 64);
    forged_tok(hdr, P_OK, sig, 64, tok);
    assert_int_equal(dv(tok, ec1), RP_JWT_SIGNATURE);
    /* a real signature with r or s replaced by 0, or by r + n style values */
    pos = signing_input(hdr, P_OK, tok);
    assert_int_equal(raw_sign(pk, RP_JWT_ES256, 0, tok, pos, good), 64);
    memcpy(sig, good, 64);
    memset(sig, 0, 32);
    forged_tok(hdr, P_OK, sig, 64, tok);
    assert_int_equal(dv(tok, ec1), RP_JWT_SIGNATURE);
    memcpy(sig, good, 64);
    memset(sig + 32, 0, 32);
    forged_tok(hdr, P_OK, sig, 64, tok);
    assert_int_equal(dv(tok, ec1), RP_JWT_SIGNATURE);
    memcpy(sig, good, 64);
    memcpy(sig + 32, n, 32);
    forged_tok(hdr, P_OK, sig, 64, tok);
    assert_int_equal(dv(tok, ec1), RP_JWT_SIGNATURE);
    /* the real one still verifies; then wrong lengths around it */
    forged_tok(hdr, P_OK, good, 64, tok);
    assert_int_equal(dv(tok, ec1), RP_JWT_OK);
    memcpy(sig, good, 64);
    sig[64] = 0;
    forged_tok(hdr, P_OK, sig, 65, tok);
    assert_int_equal(dv(tok, ec1), RP_JWT_SIGNATURE);
    forged_tok(hdr, P_OK, sig, 63, tok);
    assert_int_equal(dv(tok, ec1), RP_JWT_SIGNATURE);
    forged_tok(hdr, P_OK, sig, 32, tok);
    assert_int_equal(dv(tok, ec1), RP_JWT_SIGNATURE);
    forged_tok(hdr, P_OK, sig, 1, tok);
    assert_int_equal(dv(tok, ec1), RP_JWT_SIGNATURE);
    /* the DER form some libraries emit by mistake */
    {
        ECDSA_SIG *es = ECDSA_SIG_new();
        unsigned char *dp = sig;
        int dl;
        assert_int_equal(
            ECDSA_SIG_set0(es, BN_bin2bn(good, 32, NULL), BN_bin2bn(good + 32, 32, NULL)), 1);
        dl = i2d_ECDSA_SIG(es, &dp);
        assert_true(dl > 64);
        forged_tok(hdr, P_OK, sig, (size_t)dl, tok);
        assert_int_equal(dv(tok, ec1), RP_JWT_SIGNATURE);
        ECDSA_SIG_free(es);
    }
    /* (r, n - s) is the other valid ECDSA signature of the same message: ECDSA is malleable
     * and JWS does not forbid it, so it verifies - callers must not use the signature as an
     * identifier (use jti). */
    {
        BIGNUM *bn = BN_bin2bn(n, 32, NULL), *s = BN_bin2bn(good + 32, 32, NULL);
        assert_int_equal(BN_sub(s, bn, s), 1);
        memcpy(sig, good, 32);
        assert_int_equal(BN_bn2binpad(s, sig + 32, 32), 32);
        forged_tok(hdr, P_OK, sig, 64, tok);
        assert_int_equal(dv(tok, ec1), RP_JWT_OK);
        BN_free(bn);
        BN_free(s);
    }
    EVP_PKEY_free(pk);
}

static void test_attack_rsa_sig_length(void **state)
{
    char *rs = sign_std(rsa1, RP_JWT_RS256);
    char tok[TOKCAP], *dot = strrchr(rs, '.');
    unsigned char sig[600];
    size_t n = unb64(dot + 1, sig), pos;

    assert_int_equal(n, 256);
    /* leading zero byte prepended, last byte dropped, empty-ish */
    memmove(sig + 1, sig, n);
    sig[0] = 0;
    pos = (size_t)(dot - rs) + 1;
    memcpy(tok, rs, pos);
    put_b64(tok, &pos, sig, n + 1);
    assert_int_equal(dv(tok, rsa1), RP_JWT_SIGNATURE);
    pos = (size_t)(dot - rs) + 1;
    put_b64(tok, &pos, sig + 1, n - 1);
    assert_int_equal(dv(tok, rsa1), RP_JWT_SIGNATURE);
    pos = (size_t)(dot - rs) + 1;
    put_b64(tok, &pos, sig + 1, 1);
    assert_int_equal(dv(tok, rsa1), RP_JWT_SIGNATURE);
    /* a 4096-bit-sized signature */
    memset(sig, 0x5a, 512);
    pos = (size_t)(dot - rs) + 1;
    put_b64(tok, &pos, sig, 512);
    assert_int_equal(dv(tok, rsa1), RP_JWT_SIGNATURE);
    rp_free(rs);
}

/* Every single-bit change of the decoded header, payload or signature fails. */
static void test_attack_bit_flips(void **state)
{
    const rp_jwt_key *keys[] = {rsa1, rsa1, ec1};
    const rp_jwt_alg algs[] = {RP_JWT_RS256, RP_JWT_PS256, RP_JWT_ES256};

    for (size_t a = 0; a < 3; a++) {
        char *good = sign_std(keys[a], algs[a]);
        char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
        unsigned char seg[3][2048];
        size_t len[3];
        char tok[TOKCAP];

        {
            char tmp[4096];
            memcpy(tmp, good, (size_t)(d1 - good));
            tmp[d1 - good] = '\0';
            len[0] = unb64(tmp, seg[0]);
            memcpy(tmp, d1 + 1, (size_t)(d2 - d1 - 1));
            tmp[d2 - d1 - 1] = '\0';
            len[1] = unb64(tmp, seg[1]);
            len[2] = unb64(d2 + 1, seg[2]);
        }
        for (size_t s = 0; s < 3; s++) {
            for (size_t i = 0; i < len[s]; i++) {
                for (int bit = 0; bit < 8; bit += (s == 2 ? 3 : 1)) {
                    size_t pos = 0;
                    rp_jwt_status st;
                    seg[s][i] ^= (unsigned char)(1u << bit);
                    put_b64(tok, &pos, seg[0], len[0]);
                    tok[pos++] = '.';
                    put_b64(tok, &pos, seg[1], len[1]);
                    tok[pos++] = '.';
                    put_b64(tok, &pos, seg[2], len[2]);
                    st = dv(tok, keys[a]);
                    seg[s][i] ^= (unsigned char)(1u << bit);
                    if (s == 2 || st == RP_JWT_OK)
                        assert_int_equal(st, RP_JWT_SIGNATURE);
                    else
                        assert_true(st == RP_JWT_SIGNATURE || st == RP_JWT_MALFORMED ||
                                    st == RP_JWT_ALG);
                }
            }
        }
        /* and every substitution of one character of the text */
        for (size_t i = 0; good[i] != '\0'; i++) {
            char saved = good[i];
            if (saved == '.')
                continue;
            good[i] = saved == 'A' ? 'B' : 'A';
            assert_int_not_equal(dv(good, keys[a]), RP_JWT_OK);
            good[i] = saved;
        }
        assert_int_equal(dv(good, keys[a]), RP_JWT_OK);
        rp_free(good);
    }
}

/* No prefix of a valid token verifies (and none crashes). */
static void test_attack_truncation(void **state)
{
    const rp_jwt_key *keys[] = {rsa1, rsa1, ec1};
    const rp_jwt_alg algs[] = {RP_JWT_RS256, RP_JWT_PS256, RP_JWT_ES256};

    for (size_t a = 0; a < 3; a++) {
        char *good = sign_std(keys[a], algs[a]);
        size_t n = strlen(good);
        char *copy = rp_malloc(n);

        assert_non_null(copy);
        for (size_t i = 0; i < n; i++) {
            /* exactly-sized copy so ASan sees any read past the given length */
            memcpy(copy, good, i);
            assert_int_not_equal(dv_n(copy, i, keys[a]), RP_JWT_OK);
        }
        memcpy(copy, good, n);
        assert_int_equal(dv_n(copy, n, keys[a]), RP_JWT_OK);
        rp_free(copy);
        rp_free(good);
    }
}

static void test_attack_kid(void **state)
{
    char tok[TOKCAP], hdr[512], kid[RP_JWT_MAX_KID + 2];
    rp_jwt *j = NULL;
    static const char *const bad[] = {"{\"alg\":\"RS256\",\"kid\":\"\"}",
                                      "{\"alg\":\"RS256\",\"kid\":\"a\\nb\"}",
                                      "{\"alg\":\"RS256\",\"kid\":\"a\\u0001\"}",
                                      "{\"alg\":\"RS256\",\"kid\":\"\\u007f\"}",
                                      "{\"alg\":\"RS256\",\"kid\":\"caf\\u00e9\"}",
                                      "{\"alg\":\"RS256\",\"kid\":\"a\\tb\"}",
                                      "{\"alg\":\"RS256\",\"kid\":\"a\\u0000b\"}",
                                      "{\"alg\":\"RS256\",\"kid\":7}",
                                      "{\"alg\":\"RS256\",\"kid\":null}",
                                      "{\"alg\":\"RS256\",\"kid\":[\"rsa-1\"]}",
                                      "{\"alg\":\"RS256\",\"kid\":\"\\ud83d\\ude00\"}"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        signed_tok(rsa1, RP_JWT_RS256, bad[i], P_OK, tok);
        assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
    }
    memset(kid, 'k', RP_JWT_MAX_KID + 1);
    kid[RP_JWT_MAX_KID + 1] = '\0';
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"RS256\",\"kid\":\"%s\"}", kid);
    signed_tok(rsa1, RP_JWT_RS256, hdr, P_OK, tok);
    assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
    kid[RP_JWT_MAX_KID] = '\0';
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"RS256\",\"kid\":\"%s\"}", kid);
    signed_tok(rsa1, RP_JWT_RS256, hdr, P_OK, tok);
    assert_int_equal(full(tok, rsa1), RP_JWT_OK);
    /* an unknown kid decodes: finding the key is the caller's job (and it finds none) */
    signed_tok(rsa1, RP_JWT_RS256, "{\"alg\":\"RS256\",\"kid\":\"no-such-key\"}", P_OK, tok);
    assert_int_equal(rp_jwt_decode(tok, strlen(tok), RP_JWT_RS256, &j), RP_JWT_OK);
    assert_string_equal(rp_jwt_kid(j), "no-such-key");
    assert_int_equal(rp_jwt_verify(j, NULL), RP_JWT_KID);
    rp_jwt_free(j);
}

static void test_attack_embedded_keys(void **state)
{
    static const char *const hdrs[] = {
        "{\"alg\":\"RS256\",\"jwk\":{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}}",
        "{\"alg\":\"RS256\",\"jku\":\"https://attacker.example/jwks\"}",
        "{\"alg\":\"RS256\",\"x5u\":\"https://attacker.example/cert.pem\"}",
        "{\"alg\":\"RS256\",\"x5c\":[\"MIIB\"]}",
        "{\"alg\":\"RS256\",\"crit\":[\"exp\"]}",
        "{\"alg\":\"RS256\",\"crit\":[]}",
        "{\"alg\":\"RS256\",\"jwk\":null}",
        "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}",
        "{\"alg\":\"RS256\",\"typ\":\"JWS\"}",
        "{\"alg\":\"RS256\",\"typ\":\"\"}",
        "{\"alg\":\"RS256\",\"typ\":1}",
        "{\"alg\":\"RS256\",\"typ\":null}"};
    char tok[TOKCAP];

    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
        signed_tok(rsa1, RP_JWT_RS256, hdrs[i], P_OK, tok);
        assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
    }
    signed_tok(rsa1, RP_JWT_RS256, "{\"alg\":\"RS256\",\"typ\":\"jWt\",\"x5t\":\"abc\"}", P_OK,
               tok);
    assert_int_equal(full(tok, rsa1), RP_JWT_OK);
}

static void test_attack_json(void **state)
{
    static const struct {
        const char *hdr, *payload;
    } bad[] = {
        {"{\"alg\":\"RS256\",\"alg\":\"RS256\"}", NULL},
        {"{\"alg\":\"none\",\"alg\":\"RS256\"}", NULL},
        {"{\"alg\":\"RS256\",\"x\":{\"a\":1,\"a\":2}}", NULL},
        {NULL, "{\"sub\":\"a\",\"sub\":\"b\",\"exp\":1700003600}"},
        {NULL, "{\"exp\":1700003600,\"aud\":\"api://rampart\",\"aud\":\"api://other\"}"},
        {"[\"RS256\"]", NULL},
        {"\"RS256\"", NULL},
        {"42", NULL},
        {"null", NULL},
        {"{\"alg\":\"RS256\"}{}", NULL},
        {"{\"alg\":\"RS256\"", NULL},
        {"{'alg':'RS256'}", NULL},
        {"{\"alg\":\"RS256\",}", NULL},
        {"\xef\xbb\xbf{\"alg\":\"RS256\"}", NULL},
        {"{\"alg\":\"RS256\",\"x\":\"\xff\"}", NULL},
        {"{\"alg\":\"RS256\",\"x\":\"a\\u0000b\"}", NULL},
        {NULL, "not json"},
        {NULL, "[]"},
        {NULL, "[{\"exp\":1700003600}]"},
        {NULL, "\"claims\""},
        {NULL, "{\"exp\":1700003600} x"},
        {NULL, "{\"sub\":\"a\\u0000b\"}"},
        {NULL, "{\"n\":1e99999}"},
        {NULL, "{\"n\":123456789012345678901234567890}"},
        {NULL, ""},
    };
    char tok[TOKCAP];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *h = bad[i].hdr ? bad[i].hdr : "{\"alg\":\"RS256\"}";
        const char *p = bad[i].payload ? bad[i].payload : P_OK;
        signed_tok(rsa1, RP_JWT_RS256, h, p, tok);
        assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
    }
    /* whitespace around the JSON text is JSON (RFC 8259 "ws"): accepted; the signature covers
     * the exact bytes, so it is not a second spelling of a signed token */
    signed_tok(rsa1, RP_JWT_RS256, " {\"alg\":\"RS256\"}\n", "\t{\"exp\":1700003600} ", tok);
    assert_int_equal(dv(tok, rsa1), RP_JWT_OK);
}

/* Anything that is not exactly three strict base64url segments. */
static void test_attack_structure(void **state)
{
    char *good = sign_std(rsa1, RP_JWT_RS256);
    char tok[TOKCAP], *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
    size_t hl = (size_t)(d1 - good), pl = (size_t)(d2 - d1 - 1), n = strlen(good);
    static const char *const literal[] = {
        "", ".", "..", "...", "a.b.c", "a..c", ".b.c", "e30.e30.", "e30.e30.e30.e30", "e30"};

    for (size_t i = 0; i < sizeof(literal) / sizeof(literal[0]); i++)
        assert_int_equal(decode_st(literal[i]), RP_JWT_MALFORMED);
    /* four and five segments (JWE-like), with the real signature in place */
    snprintf(tok, sizeof(tok), "%s.%s", good, d2 + 1);
    assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
    snprintf(tok, sizeof(tok), "%s.%.*s.%s", good, (int)hl, good, d2 + 1);
    assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
    snprintf(tok, sizeof(tok), "%s..", good);
    assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
    snprintf(tok, sizeof(tok), "%s.", good);
    assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
    /* empty segments */
    snprintf(tok, sizeof(tok), ".%s", d1 + 1);
    assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
    snprintf(tok, sizeof(tok), "%.*s.%s", (int)hl, good, d2);
    assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
    snprintf(tok, sizeof(tok), "%.*s.", (int)(hl + 1 + pl), good);
    assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
    /* whitespace anywhere, a scheme prefix, a NUL inside */
    static const char *const wrap[] = {" %s",  "%s ",       "%s\n",  "%s\r\n",
                                       "\t%s", "Bearer %s", "\"%s\""};
    for (size_t i = 0; i < sizeof(wrap) / sizeof(wrap[0]); i++) {
        snprintf(tok, sizeof(tok), wrap[i], good);
        assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
    }
    for (size_t at = 0; at < n; at += 37) {
        static const char ins[] = {' ', '\n', '=', '+', '/', '\0', '%', '*'};
        for (size_t c = 0; c < sizeof(ins); c++) {
            memcpy(tok, good, at);
            tok[at] = ins[c];
            memcpy(tok + at + 1, good + at, n - at + 1);
            assert_int_not_equal(decode_n(tok, n + 1, RP_JWT_ALL_ALGS), RP_JWT_OK);
        }
    }
    /* standard base64 alphabet instead of base64url */
    {
        unsigned char raw[600];
        char std[1024];
        size_t sl = unb64(d2 + 1, raw);
        int el = EVP_EncodeBlock((unsigned char *)std, raw, (int)sl);
        while (el > 0 && std[el - 1] == '=')
            std[--el] = '\0';
        if (strchr(std, '+') != NULL || strchr(std, '/') != NULL) {
            snprintf(tok, sizeof(tok), "%.*s%s", (int)(hl + 1 + pl + 1), good, std);
            assert_int_equal(decode_st(tok), RP_JWT_MALFORMED);
        }
    }
    rp_free(good);
}

/* "=" padding in any segment, and non-canonical trailing bits. */
static void test_attack_padding(void **state)
{
    /* a 28-byte header: 38 base64url characters, two "=" when padded */
    const char *hdr = "{\"alg\":\"RS256\",\"kid\":\"abcd\"}";
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char tok[TOKCAP], padded[TOKCAP];
    const char *seg[3];
    size_t len[3], hl;
    int v;

    assert_int_equal(strlen(hdr), 28);
    signed_tok(rsa1, RP_JWT_RS256, hdr, P_OK, tok);
    assert_int_equal(full(tok, rsa1), RP_JWT_OK);
    seg[0] = tok;
    seg[1] = strchr(tok, '.') + 1;
    seg[2] = strrchr(tok, '.') + 1;
    len[0] = (size_t)(seg[1] - seg[0] - 1);
    len[1] = (size_t)(seg[2] - seg[1] - 1);
    len[2] = strlen(seg[2]);
    assert_int_equal(len[0] % 4, 2);
    /* each segment padded as standard base64 would, or with one stray "=" */
    for (int s = 0; s < 3; s++) {
        for (int mode = 0; mode < 2; mode++) {
            size_t o = 0, npad = mode == 0 ? (4 - len[s] % 4) % 4 : 1;
            if (npad == 0)
                continue;
            for (int t = 0; t < 3; t++) {
                memcpy(padded + o, seg[t], len[t]);
                o += len[t];
                if (t == s)
                    for (size_t k = 0; k < npad; k++)
                        padded[o++] = '=';
                if (t < 2)
                    padded[o++] = '.';
            }
            padded[o] = '\0';
            assert_int_equal(decode_st(padded), RP_JWT_MALFORMED);
        }
    }
    /* the header's last character carries 4 unused bits: setting one is another spelling of
     * the same bytes, which strict decoding refuses */
    hl = len[0];
    v = (int)(strchr(alpha, tok[hl - 1]) - alpha);
    assert_int_equal(v & 15, 0);
    memcpy(padded, tok, strlen(tok) + 1);
    padded[hl - 1] = alpha[v | 1];
    assert_int_equal(decode_st(padded), RP_JWT_MALFORMED);
}

/* ---------------------------------------------------------------- claims */

static rp_jwt_status claims_st(const char *payload, const rp_jwt_expect *e)
{
    char tok[TOKCAP];
    rp_jwt *j = NULL;
    rp_jwt_status st;

    signed_tok(ec1, RP_JWT_ES256, "{\"alg\":\"ES256\"}", payload, tok);
    assert_int_equal(rp_jwt_decode(tok, strlen(tok), RP_JWT_ES256, &j), RP_JWT_OK);
    assert_int_equal(rp_jwt_verify(j, ec1), RP_JWT_OK);
    st = rp_jwt_check_claims(j, e);
    rp_jwt_free(j);
    return st;
}

static void test_claims_time(void **state)
{
    rp_jwt_expect e = {NULL, NULL, NOW, 60, 1, 0};
    char p[512];
    static const struct {
        const char *fmt;
        int64_t v;
        rp_jwt_status want;
    } cases[] = {
        {"{\"exp\":%lld}", NOW + 1, RP_JWT_OK},
        {"{\"exp\":%lld}", NOW, RP_JWT_OK},           /* inside the skew */
        {"{\"exp\":%lld}", NOW - 59, RP_JWT_OK},      /* last second of the skew */
        {"{\"exp\":%lld}", NOW - 60, RP_JWT_EXPIRED}, /* exp <= now - skew */
        {"{\"exp\":%lld}", NOW - 86400, RP_JWT_EXPIRED},
        {"{\"exp\":%lld}", 0, RP_JWT_EXPIRED},
        {"{\"exp\":1800000000,\"nbf\":%lld}", NOW + 60, RP_JWT_OK},
        {"{\"exp\":1800000000,\"nbf\":%lld}", NOW + 61, RP_JWT_NOT_YET_VALID},
        {"{\"exp\":1800000000,\"nbf\":%lld}", NOW + 86400, RP_JWT_NOT_YET_VALID},
        {"{\"exp\":1800000000,\"iat\":%lld}", NOW + 60, RP_JWT_OK},
        {"{\"exp\":1800000000,\"iat\":%lld}", NOW + 61, RP_JWT_NOT_YET_VALID},
        {"{\"exp\":1800000000,\"iat\":%lld}", 0, RP_JWT_OK},
        {"{\"exp\":%lld}", (int64_t)1 << 40, RP_JWT_OK},
        {"{\"exp\":%lld}", ((int64_t)1 << 40) + 1, RP_JWT_CLAIMS},
        {"{\"exp\":%lld}", INT64_MAX, RP_JWT_CLAIMS},
        {"{\"exp\":%lld}", -1, RP_JWT_CLAIMS},
        {"{\"exp\":%lld.0}", NOW + 100, RP_JWT_CLAIMS},
        {"{\"exp\":%lld.5}", NOW + 100, RP_JWT_CLAIMS},
        {"{\"exp\":\"%lld\"}", NOW + 100, RP_JWT_CLAIMS},
        {"{\"exp\":[%lld]}", NOW + 100, RP_JWT_CLAIMS},
        {"{\"exp\":true,\"x\":%lld}", 0, RP_JWT_CLAIMS},
        {"{\"exp\":null,\"x\":%lld}", 0, RP_JWT_CLAIMS},
        {"{\"exp\":1800000000,\"nbf\":\"%lld\"}", NOW, RP_JWT_CLAIMS},
        {"{\"exp\":1800000000,\"iat\":%lld.25}", NOW, RP_JWT_CLAIMS},
        {"{\"exp\":1800000000,\"iat\":%lld}", -5, RP_JWT_CLAIMS},
        {"{\"x\":%lld}", 0, RP_JWT_CLAIMS}, /* exp missing, required */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(p, sizeof(p), cases[i].fmt, (long long)cases[i].v);
        assert_int_equal(claims_st(p, &e), cases[i].want);
    }
    assert_int_equal(claims_st("{\"exp\":1.8e9}", &e), RP_JWT_CLAIMS);
    /* exp optional when not required */
    e.require_exp = 0;
    assert_int_equal(claims_st("{\"sub\":\"x\"}", &e), RP_JWT_OK);
    /* skew is clamped to 0..RP_JWT_MAX_SKEW_S */
    e.require_exp = 1;
    e.skew_s = 100000;
    snprintf(p, sizeof(p), "{\"exp\":%lld}", (long long)(NOW - RP_JWT_MAX_SKEW_S + 1));
    assert_int_equal(claims_st(p, &e), RP_JWT_OK);
    snprintf(p, sizeof(p), "{\"exp\":%lld}", (long long)(NOW - RP_JWT_MAX_SKEW_S));
    assert_int_equal(claims_st(p, &e), RP_JWT_EXPIRED);
    e.skew_s = -5;
    snprintf(p, sizeof(p), "{\"exp\":%lld}", (long long)NOW);
    assert_int_equal(claims_st(p, &e), RP_JWT_EXPIRED);
    snprintf(p, sizeof(p), "{\"exp\":%lld}", (long long)NOW + 1);
    assert_int_equal(claims_st(p, &e), RP_JWT_OK);
    /* a nonsense clock is the caller's bug */
    e.now = -1;
    assert_int_equal(claims_st(p, &e), RP_JWT_CLAIMS);
    e.now = INT64_MAX;
    assert_int_equal(claims_st(p, &e), RP_JWT_CLAIMS);
    assert_int_equal(rp_jwt_check_claims(NULL, &e), RP_JWT_MALFORMED);
}

static void test_claims_lifetime(void **state)
{
    rp_jwt_expect e = {NULL, NULL, NOW, 60, 1, 600};
    char p[256];

    snprintf(p, sizeof(p), "{\"nbf\":%lld,\"exp\":%lld}", (long long)NOW, (long long)NOW + 600);
    assert_int_equal(claims_st(p, &e), RP_JWT_OK);
    snprintf(p, sizeof(p), "{\"nbf\":%lld,\"exp\":%lld}", (long long)NOW, (long long)NOW + 601);
    assert_int_equal(claims_st(p, &e), RP_JWT_CLAIMS);
    /* iat is the start when there is no nbf; now when there is neither */
    snprintf(p, sizeof(p), "{\"iat\":%lld,\"exp\":%lld}", (long long)NOW - 10,
             (long long)NOW + 591);
    assert_int_equal(claims_st(p, &e), RP_JWT_CLAIMS);
    snprintf(p, sizeof(p), "{\"iat\":%lld,\"exp\":%lld}", (long long)NOW - 10,
             (long long)NOW + 590);
    assert_int_equal(claims_st(p, &e), RP_JWT_OK);
    snprintf(p, sizeof(p), "{\"exp\":%lld}", (long long)NOW + 600);
    assert_int_equal(claims_st(p, &e), RP_JWT_OK);
    snprintf(p, sizeof(p), "{\"exp\":%lld}", (long long)NOW + 601);
    assert_int_equal(claims_st(p, &e), RP_JWT_CLAIMS);
    /* an old nbf cannot be used to stretch it either: exp - nbf counts */
    snprintf(p, sizeof(p), "{\"nbf\":%lld,\"exp\":%lld}", (long long)NOW - 3600,
             (long long)NOW + 100);
    assert_int_equal(claims_st(p, &e), RP_JWT_CLAIMS);
    /* a lifetime limit implies exp */
    e.require_exp = 0;
    assert_int_equal(claims_st("{\"nbf\":1700000000}", &e), RP_JWT_CLAIMS);
}

static void test_claims_iss_aud(void **state)
{
    const char *const auds[] = {"api://rampart", "https://vault.rampart.localhost", NULL};
    rp_jwt_expect e = {"https://issuer.example/", auds, NOW, 60, 1, 0};
    static const struct {
        const char *p;
        rp_jwt_status want;
    } cases[] = {
        {"{\"exp\":1800000000,\"iss\":\"https://issuer.example/\",\"aud\":\"api://rampart\"}",
         RP_JWT_OK},
        {"{\"exp\":1800000000,\"iss\":\"https://issuer.example\",\"aud\":\"api://rampart\"}",
         RP_JWT_ISSUER},
        {"{\"exp\":1800000000,\"iss\":\"HTTPS://ISSUER.EXAMPLE/\",\"aud\":\"api://rampart\"}",
         RP_JWT_ISSUER},
        {"{\"exp\":1800000000,\"aud\":\"api://rampart\"}", RP_JWT_ISSUER},
        {"{\"exp\":1800000000,\"iss\":\"\",\"aud\":\"api://rampart\"}", RP_JWT_ISSUER},
        {"{\"exp\":1800000000,\"iss\":[\"https://issuer.example/\"],\"aud\":\"api://rampart\"}",
         RP_JWT_CLAIMS},
        {"{\"exp\":1800000000,\"iss\":null,\"aud\":\"api://rampart\"}", RP_JWT_CLAIMS},
        {"{\"exp\":1800000000,\"iss\":\"https://issuer.example/\",\"aud\":\"api://other\"}",
         RP_JWT_AUDIENCE},
        {"{\"exp\":1800000000,\"iss\":\"https://issuer.example/\",\"aud\":\"api://rampart/\"}",
         RP_JWT_AUDIENCE},
        {"{\"exp\":1800000000,\"iss\":\"https://issuer.example/\"}", RP_JWT_AUDIENCE},
        {"{\"exp\":1800000000,\"iss\":\"https://issuer.example/\",\"aud\":[\"x\","
         "\"https://vault.rampart.localhost\"]}",
         RP_JWT_OK},
        {"{\"exp\":1800000000,\"iss\":\"https://issuer.example/\",\"aud\":[\"x\",\"y\"]}",
         RP_JWT_AUDIENCE},
        {"{\"exp\":1800000000,\"iss\":\"https://issuer.example/\",\"aud\":[]}", RP_JWT_AUDIENCE},
        {"{\"exp\":1800000000,\"iss\":\"https://issuer.example/\",\"aud\":[\"api://rampart\",1]}",
         RP_JWT_CLAIMS},
        {"{\"exp\":1800000000,\"iss\":\"https://issuer.example/\",\"aud\":[[\"api://rampart\"]]}",
         RP_JWT_CLAIMS},
        {"{\"exp\":1800000000,\"iss\":\"https://issuer.example/\",\"aud\":{\"a\":1}}",
         RP_JWT_CLAIMS},
        {"{\"exp\":1800000000,\"iss\":\"https://issuer.example/\",\"aud\":\"api://rampart\","
         "\"sub\":5}",
         RP_JWT_CLAIMS},
        {"{\"exp\":1800000000,\"iss\":\"https://issuer.example/\",\"aud\":\"api://rampart\","
         "\"jti\":{}}",
         RP_JWT_CLAIMS},
        /* order: time before issuer before audience */
        {"{\"exp\":1600000000,\"iss\":\"wrong\",\"aud\":\"wrong\"}", RP_JWT_EXPIRED},
        {"{\"exp\":1800000000,\"iss\":\"wrong\",\"aud\":\"wrong\"}", RP_JWT_ISSUER},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(claims_st(cases[i].p, &e), cases[i].want);
    /* unchecked when not asked for */
    e.issuer = NULL;
    e.audiences = NULL;
    assert_int_equal(claims_st("{\"exp\":1800000000,\"iss\":\"any\",\"aud\":\"any\"}", &e),
                     RP_JWT_OK);
    assert_int_equal(claims_st("{\"exp\":1800000000}", &e), RP_JWT_OK);
}

/* What login.c does with an MSAL-style client assertion; x5c (MSAL's sendX5C) is refused. */
static void test_client_assertion_shape(void **state)
{
    const char *const auds[] = {"https://login.rampart.localhost/t/oauth2/v2.0/token", NULL};
    rp_jwt_expect e = {NULL, auds, NOW, 300, 1, 600};
    char p[512], tok[TOKCAP];
    rp_jwt *j = NULL;

    snprintf(p, sizeof(p),
             "{\"aud\":\"%s\",\"exp\":%lld,\"iss\":\"client-1\",\"sub\":\"client-1\",\"nbf\":%lld,"
             "\"jti\":\"6f2c1d0e-2b1a-4c55-9f0a-0b1c2d3e4f50\"}",
             auds[0], (long long)NOW + 600, (long long)NOW);
    signed_tok(rsa1, RP_JWT_PS256,
               "{\"alg\":\"PS256\",\"typ\":\"JWT\",\"x5t#S256\":\"q83vEjRWeJCrze8SNFZ4kKvN7xI\"}",
               p, tok);
    assert_int_equal(rp_jwt_decode(tok, strlen(tok), RP_JWT_RS256 | RP_JWT_PS256, &j), RP_JWT_OK);
    assert_string_equal(rp_jwt_header_str(j, "x5t#S256"), "q83vEjRWeJCrze8SNFZ4kKvN7xI");
    assert_int_equal(rp_jwt_verify(j, rsa1), RP_JWT_OK);
    assert_int_equal(rp_jwt_check_claims(j, &e), RP_JWT_OK);
    assert_string_equal(rp_jwt_claim_str(j, "iss"), "client-1");
    rp_jwt_free(j);
    signed_tok(rsa1, RP_JWT_PS256,
               "{\"alg\":\"PS256\",\"typ\":\"JWT\",\"x5t#S256\":\"q83v\",\"x5c\":[\"MIIB\"]}", p,
               tok);
    assert_int_equal(decode_n(tok, strlen(tok), RP_JWT_RS256 | RP_JWT_PS256), RP_JWT_MALFORMED);
}

/* ---------------------------------------------------------------- allocation failure */

static void test_alloc_failure(void **state)
{
    json_t *c = std_claims(), *x = json_pack("{s:s}", "x5t#S256", "t");
    char *good = sign_std(rsa1, RP_JWT_RS256);
    unsigned char *der = NULL;
    size_t dn = 0;
    int done;

    /* sign */
    done = 0;
    for (long n = 0; n < 64 && !done; n++) {
        char *tok = NULL;
        size_t tl = 0;
        int rc;
        rp_alloc_fail_after(n);
        rc = rp_jwt_sign(rsa1, RP_JWT_PS256, x, c, &tok, &tl);
        rp_alloc_fail_after(-1);
        if (rc == 0) {
            assert_int_equal(dv(tok, rsa1), RP_JWT_OK);
            rp_free(tok);
            done = 1;
        } else {
            assert_int_equal(rc, RP_ENOMEM);
            assert_null(tok);
        }
    }
    assert_true(done);
    /* decode */
    done = 0;
    for (long n = 0; n < 64 && !done; n++) {
        rp_jwt *j = NULL;
        rp_jwt_status st;
        rp_alloc_fail_after(n);
        st = rp_jwt_decode(good, strlen(good), RP_JWT_ALL_ALGS, &j);
        rp_alloc_fail_after(-1);
        if (st == RP_JWT_OK) {
            assert_int_equal(rp_jwt_verify(j, rsa1), RP_JWT_OK);
            rp_jwt_free(j);
            done = 1;
        } else {
            assert_int_equal(st, RP_JWT_NOMEM);
            assert_null(j);
        }
    }
    assert_true(done);
    /* keys */
    assert_int_equal(rp_jwt_key_private_der(ec1, &der, &dn), 0);
    done = 0;
    for (long n = 0; n < 64 && !done; n++) {
        rp_jwt_key *k = NULL;
        unsigned char *pub = NULL;
        size_t pn = 0;
        json_t *jwk = NULL;
        int rc;
        rp_alloc_fail_after(n);
        rc = rp_jwt_key_from_der(der, dn, "k", &k);
        if (rc == 0)
            rc = rp_jwt_key_public_der(k, &pub, &pn);
        if (rc == 0)
            rc = rp_jwt_key_public_jwk(k, &jwk);
        rp_alloc_fail_after(-1);
        if (rc == 0)
            done = 1;
        else
            assert_int_equal(rc, RP_ENOMEM);
        json_decref(jwk);
        rp_free(pub);
        rp_jwt_key_free(k);
    }
    assert_true(done);
    rp_alloc_fail_after(0);
    {
        rp_jwt_key *k = NULL;
        unsigned char *p = NULL;
        size_t pn = 0;
        assert_int_equal(rp_jwt_key_generate_p256("k", &k), RP_ENOMEM);
        assert_null(k);
        assert_int_equal(rp_jwt_key_private_der(ec1, &p, &pn), RP_ENOMEM);
        assert_null(p);
    }
    rp_alloc_fail_after(-1);
    OPENSSL_cleanse(der, dn);
    rp_free(der);
    rp_free(good);
    json_decref(c);
    json_decref(x);
}

/* ---------------------------------------------------------------- threads */

typedef struct verify_job {
    rp_jwt_key *key;
    const char *tok;
    int ok;
} verify_job;

static void *verify_many(void *arg)
{
    verify_job *v = arg;
    rp_jwt_key *k = v->key; /* the reference handed over by the spawning thread */

    for (int i = 0; i < 200; i++) {
        rp_jwt *j = NULL;
        if (rp_jwt_decode(v->tok, strlen(v->tok), RP_JWT_ALL_ALGS, &j) == RP_JWT_OK &&
            rp_jwt_verify(j, k) == RP_JWT_OK)
            v->ok++;
        rp_jwt_free(j);
    }
    rp_jwt_key_free(k);
    return NULL;
}

static void test_threads_share_key(void **state)
{
    rp_jwt_key *k = NULL;
    unsigned char *der = NULL;
    size_t dn = 0;
    char *tok = sign_std(rsa1, RP_JWT_PS256);
    pthread_t t[4];
    verify_job jobs[4];

    assert_int_equal(rp_jwt_key_public_der(rsa1, &der, &dn), 0);
    assert_int_equal(rp_jwt_key_from_der(der, dn, "shared", &k), 0);
    for (int i = 0; i < 4; i++) {
        jobs[i].key = rp_jwt_key_ref(k);
        jobs[i].tok = tok;
        jobs[i].ok = 0;
        assert_int_equal(pthread_create(&t[i], NULL, verify_many, &jobs[i]), 0);
    }
    rp_jwt_key_free(k); /* the threads hold the last references */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(jobs[i].ok, 200);
    }
    rp_free(der);
    rp_free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_key_basics),
        cmocka_unit_test(test_roundtrip_rs256),
        cmocka_unit_test(test_roundtrip_ps256),
        cmocka_unit_test(test_roundtrip_es256),
        cmocka_unit_test(test_signatures_independent),
        cmocka_unit_test(test_foreign_tokens_verify),
        cmocka_unit_test(test_jwk_rsa),
        cmocka_unit_test(test_jwk_ec),
        cmocka_unit_test(test_der_roundtrip),
        cmocka_unit_test(test_pem),
        cmocka_unit_test(test_key_refused),
        cmocka_unit_test(test_thumbprints),
        cmocka_unit_test(test_sign_args),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_attack_alg_none),
        cmocka_unit_test(test_attack_hs256_pubkey),
        cmocka_unit_test(test_attack_key_confusion),
        cmocka_unit_test(test_attack_pss_salt),
        cmocka_unit_test(test_attack_es256_scalars),
        cmocka_unit_test(test_attack_rsa_sig_length),
        cmocka_unit_test(test_attack_bit_flips),
        cmocka_unit_test(test_attack_truncation),
        cmocka_unit_test(test_attack_kid),
        cmocka_unit_test(test_attack_embedded_keys),
        cmocka_unit_test(test_attack_json),
        cmocka_unit_test(test_attack_structure),
        cmocka_unit_test(test_attack_padding),
        cmocka_unit_test(test_claims_time),
        cmocka_unit_test(test_claims_lifetime),
        cmocka_unit_test(test_claims_iss_aud),
        cmocka_unit_test(test_client_assertion_shape),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_threads_share_key),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
