/*
 * kvkey_test.c - Key Vault key material: generation limits, PKCS#8 round trips, JWK import and
 * export, every algorithm both ways, and interoperability checked against OpenSSL used directly
 * (OAEP with SHA-1 set explicitly as Node's publicEncrypt does, PKCS#1 v1.5, PSS with salt =
 * hash length, ECDSA r||s converted to DER), plus the failures: wrong key type, wrong digest
 * length, truncated ciphertext, tampered signature, inconsistent and public-only JWKs.
 *
 * Set RP_KVKEY_BENCH=1 to print the RSA-2048 unwrapKey rate (compare with
 * `openssl speed rsa2048`, sign/s).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"
#include "vault/kvkey.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static rp_kvkey *rsa2048, *p256, *p384, *p521, *p256k;

static int setup(void **state)
{
    (void)state;
    if (rp_kvkey_generate_rsa(2048, 0, &rsa2048, NULL) != 0 ||
        rp_kvkey_generate_ec("P-256", &p256, NULL) != 0 ||
        rp_kvkey_generate_ec("P-384", &p384, NULL) != 0 ||
        rp_kvkey_generate_ec("P-521", &p521, NULL) != 0 ||
        rp_kvkey_generate_ec("P-256K", &p256k, NULL) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rp_kvkey_free(rsa2048);
    rp_kvkey_free(p256);
    rp_kvkey_free(p384);
    rp_kvkey_free(p521);
    rp_kvkey_free(p256k);
    return 0;
}

/* An independent OpenSSL key equal to k (through the module's PKCS#8). */
static EVP_PKEY *pkey_of(const rp_kvkey *k)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t n = 0;
    PKCS8_PRIV_KEY_INFO *p8;
    EVP_PKEY *pkey;

    assert_int_equal(rp_kvkey_to_der(k, &der, &n), 0);
    p = der;
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)n);
    assert_non_null(p8);
    pkey = EVP_PKCS82PKEY(p8);
    assert_non_null(pkey);
    PKCS8_PRIV_KEY_INFO_free(p8);
    rp_kvkey_der_free(der, n);
    return pkey;
}

static void fill(unsigned char *b, size_t n)
{
    assert_int_equal(RAND_bytes(b, (int)n), 1);
}

/* ---------------------------------------------------------------- creation */

static void test_generate_limits(void **state)
{
    rp_kvkey *k = NULL;
    const char *why = NULL;

    (void)state;
    assert_int_equal(rp_kvkey_type_of(rsa2048), RP_KVKEY_RSA);
    assert_int_equal(rp_kvkey_bits(rsa2048), 2048);
    assert_null(rp_kvkey_crv(rsa2048));
    assert_string_equal(rp_kvkey_crv(p256), "P-256");
    assert_string_equal(rp_kvkey_crv(p521), "P-521");
    assert_int_equal(rp_kvkey_bits(p521), 521);
    assert_string_equal(rp_kvkey_crv(p256k), "P-256K");

    assert_int_equal(rp_kvkey_generate_rsa(1024, 0, &k, &why), RP_EINVAL);
    assert_non_null(why);
    assert_int_equal(rp_kvkey_generate_rsa(2047, 0, &k, NULL), RP_EINVAL);
    assert_int_equal(rp_kvkey_generate_rsa(8192, 0, &k, NULL), RP_EINVAL);
    assert_int_equal(rp_kvkey_generate_rsa(2048, 65536, &k, NULL), RP_EINVAL);
    assert_int_equal(rp_kvkey_generate_rsa(2048, 1, &k, NULL), RP_EINVAL);
    assert_int_equal(rp_kvkey_generate_rsa(2048, UINT64_C(0x100000001), &k, NULL), RP_EINVAL);
    assert_null(k);
    assert_int_equal(rp_kvkey_generate_ec("P-192", &k, &why), RP_EUNSUPPORTED);
    assert_int_equal(rp_kvkey_generate_ec("p-256", &k, NULL), RP_EUNSUPPORTED);
    assert_null(k);

    /* a given exponent is used */
    assert_int_equal(rp_kvkey_generate_rsa(3072, 3, &k, NULL), 0);
    {
        json_t *jwk = NULL;
        assert_int_equal(rp_kvkey_public_jwk(k, "kid", "RSA", 0, &jwk), 0);
        assert_string_equal(json_string_value(json_object_get(jwk, "e")), "Aw");
        assert_int_equal(json_string_length(json_object_get(jwk, "n")), 512);
        json_decref(jwk);
    }
    assert_int_equal(rp_kvkey_bits(k), 3072);
    rp_kvkey_free(k);
}

static void test_der_roundtrip(void **state)
{
    rp_kvkey *keys[] = {rsa2048, p256, p384, p521, p256k};
    const char *kty[] = {"RSA", "EC", "EC-HSM", "EC", "EC"};

    (void)state;
    for (size_t i = 0; i < 5; i++) {
        unsigned char *der = NULL, *longer;
        size_t n = 0;
        rp_kvkey *back = NULL;
        json_t *a = NULL, *b = NULL;
        unsigned char dg[64] = {1, 2, 3}, sig[RP_KVKEY_MAX_OUT];
        size_t sl = 0;
        int ok = 0;
        const char *alg = i == 0   ? "PS256"
                          : i == 1 ? "ES256"
                          : i == 2 ? "ES384"
                          : i == 3 ? "ES512"
                                   : "ES256K";
        size_t dl = i == 2 ? 48 : i == 3 ? 64 : 32;

        assert_int_equal(rp_kvkey_to_der(keys[i], &der, &n), 0);
        assert_int_equal(rp_kvkey_from_der(der, n, &back, NULL), 0);
        assert_int_equal(rp_kvkey_public_jwk(keys[i], "k", kty[i], RP_KVOP_SIGN, &a), 0);
        assert_int_equal(rp_kvkey_public_jwk(back, "k", kty[i], RP_KVOP_SIGN, &b), 0);
        assert_true(json_equal(a, b));
        /* the reloaded private key signs for the original */
        assert_int_equal(rp_kvkey_sign(back, alg, dg, dl, sig, sizeof(sig), &sl, NULL), 0);
        assert_int_equal(rp_kvkey_verify(keys[i], alg, dg, dl, sig, sl, &ok, NULL), 0);
        assert_int_equal(ok, 1);
        json_decref(a);
        json_decref(b);
        rp_kvkey_free(back);
        back = NULL;

        /* trailing bytes, truncation and garbage are refused */
        longer = malloc(n + 1);
        assert_non_null(longer);
        memcpy(longer, der, n);
        longer[n] = 0;
        assert_int_equal(rp_kvkey_from_der(longer, n + 1, &back, NULL), RP_EINVAL);
        assert_int_equal(rp_kvkey_from_der(der, n - 1, &back, NULL), RP_EINVAL);
        memset(longer, 0x30, n);
        assert_int_equal(rp_kvkey_from_der(longer, n, &back, NULL), RP_EINVAL);
        assert_null(back);
        free(longer);
        rp_kvkey_der_free(der, n);
    }
}

/* A public-only or 1024-bit key in PKCS#8 / SPKI form is refused. */
static void test_der_refused(void **state)
{
    EVP_PKEY *pk = EVP_RSA_gen(1024);
    PKCS8_PRIV_KEY_INFO *p8;
    unsigned char *der = NULL;
    int len;
    rp_kvkey *k = NULL;
    const char *why = NULL;

    (void)state;
    assert_non_null(pk);
    p8 = EVP_PKEY2PKCS8(pk);
    assert_non_null(p8);
    len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
    assert_true(len > 0);
    assert_int_equal(rp_kvkey_from_der(der, (size_t)len, &k, &why), RP_EINVAL);
    assert_non_null(why);
    assert_non_null(strstr(why, "2048")); /* names the sizes */
    OPENSSL_clear_free(der, (size_t)len);
    der = NULL;
    PKCS8_PRIV_KEY_INFO_free(p8);

    len = i2d_PUBKEY(pk, &der);
    assert_true(len > 0);
    assert_int_equal(rp_kvkey_from_der(der, (size_t)len, &k, NULL), RP_EINVAL);
    OPENSSL_free(der);
    EVP_PKEY_free(pk);
    assert_null(k);
}

/* ---------------------------------------------------------------- encryption */

/* OpenSSL directly: encrypt (enc = 1) or decrypt with pad and, for OAEP, md + MGF1-md. */
static int evp_crypt(EVP_PKEY *pk, int enc, int pad, const EVP_MD *md, const unsigned char *in,
                     size_t n, unsigned char *out, size_t *outlen)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
    int ok;

    assert_non_null(ctx);
    ok = (enc ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) > 0 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, pad) > 0;
    if (ok && pad == RSA_PKCS1_OAEP_PADDING)
        ok = EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) > 0 && EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) > 0;
    if (ok)
        ok = (enc ? EVP_PKEY_encrypt(ctx, out, outlen, in, n)
                  : EVP_PKEY_decrypt(ctx, out, outlen, in, n)) > 0;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static void test_encrypt_interop(void **state)
{
    static const struct {
        const char *alg;
        int pad;
        size_t max;
    } cases[] = {
        {"RSA-OAEP", RSA_PKCS1_OAEP_PADDING, 256 - 42},
        {"RSA-OAEP-256", RSA_PKCS1_OAEP_PADDING, 256 - 66},
        {"RSA1_5", RSA_PKCS1_PADDING, 256 - 11},
    };
    EVP_PKEY *pk = pkey_of(rsa2048);

    (void)state;
    for (size_t c = 0; c < 3; c++) {
        const EVP_MD *md = c == 1 ? EVP_sha256() : EVP_sha1();
        size_t sizes[] = {0, 1, 16, 32, cases[c].max};

        for (size_t s = 0; s < 5; s++) {
            unsigned char pt[256], ct[RP_KVKEY_MAX_OUT], ct2[RP_KVKEY_MAX_OUT],
                back[RP_KVKEY_MAX_OUT];
            size_t n = sizes[s], cl = sizeof(ct), bl = 0, cl2 = 0;

            fill(pt, n);
            /* OpenSSL encrypts, the module decrypts (decrypt and unwrapKey) */
            assert_true(evp_crypt(pk, 1, cases[c].pad, md, pt, n, ct, &cl));
            assert_int_equal(cl, 256);
            assert_int_equal(
                rp_kvkey_decrypt(rsa2048, cases[c].alg, ct, cl, back, sizeof(back), &bl, NULL), 0);
            assert_int_equal(bl, n);
            assert_memory_equal(back, pt, n);
            bl = 0;
            assert_int_equal(
                rp_kvkey_unwrap_key(rsa2048, cases[c].alg, ct, cl, back, sizeof(back), &bl, NULL),
                0);
            assert_int_equal(bl, n);
            assert_memory_equal(back, n ? pt : back, n);

            /* the module encrypts (randomised), OpenSSL decrypts */
            assert_int_equal(
                rp_kvkey_wrap_key(rsa2048, cases[c].alg, pt, n, ct2, sizeof(ct2), &cl2, NULL), 0);
            assert_int_equal(cl2, 256);
            assert_memory_not_equal(ct, ct2, 256);
            bl = sizeof(back);
            assert_true(evp_crypt(pk, 0, cases[c].pad, md, ct2, cl2, back, &bl));
            assert_int_equal(bl, n);
            assert_memory_equal(back, n ? pt : back, n);
            assert_int_equal(
                rp_kvkey_encrypt(rsa2048, cases[c].alg, pt, n, ct2, sizeof(ct2), &cl2, NULL), 0);
        }
        /* one byte too many */
        {
            unsigned char pt[256] = {0}, ct[RP_KVKEY_MAX_OUT];
            size_t cl = 0;
            const char *why = NULL;
            assert_int_equal(rp_kvkey_encrypt(rsa2048, cases[c].alg, pt, cases[c].max + 1, ct,
                                              sizeof(ct), &cl, &why),
                             RP_EINVAL);
            assert_non_null(why);
        }
    }
    EVP_PKEY_free(pk);
}

static void test_decrypt_failures(void **state)
{
    EVP_PKEY *pk = pkey_of(rsa2048);
    unsigned char pt[32], ct[256], out[RP_KVKEY_MAX_OUT];
    size_t cl = sizeof(ct), ol = 12345;
    const char *why = NULL;

    (void)state;
    fill(pt, sizeof(pt));
    assert_true(evp_crypt(pk, 1, RSA_PKCS1_OAEP_PADDING, EVP_sha1(), pt, 32, ct, &cl));
    /* truncated or extended ciphertext: a length error */
    assert_int_equal(rp_kvkey_decrypt(rsa2048, "RSA-OAEP", ct, 255, out, sizeof(out), &ol, &why),
                     RP_EINVAL);
    assert_string_equal(why, "the ciphertext length does not match the key size");
    assert_int_equal(rp_kvkey_decrypt(rsa2048, "RSA1_5", ct, 255, out, sizeof(out), &ol, NULL),
                     RP_EINVAL);
    /* OAEP-SHA1 ciphertext is not OAEP-SHA256 */
    assert_int_equal(
        rp_kvkey_decrypt(rsa2048, "RSA-OAEP-256", ct, 256, out, sizeof(out), &ol, &why),
        RP_ECRYPTO);
    assert_string_equal(why, "decryption failed");
    /* a flipped bit */
    ct[100] ^= 1;
    assert_int_equal(rp_kvkey_decrypt(rsa2048, "RSA-OAEP", ct, 256, out, sizeof(out), &ol, NULL),
                     RP_ECRYPTO);
    assert_int_equal(ol, 12345);
    /* output buffer smaller than the modulus */
    assert_int_equal(rp_kvkey_decrypt(rsa2048, "RSA-OAEP", ct, 256, out, 255, &ol, NULL),
                     RP_EINVAL);
    /* ciphertext >= n */
    memset(ct, 0xff, sizeof(ct));
    assert_int_equal(rp_kvkey_decrypt(rsa2048, "RSA1_5", ct, 256, out, sizeof(out), &ol, NULL),
                     RP_ECRYPTO);
    EVP_PKEY_free(pk);
}

/* Raw RSA on em (no padding), with OpenSSL: builds ciphertexts with any padding we like. */
static void raw_encrypt(EVP_PKEY *pk, const unsigned char em[256], unsigned char ct[256])
{
    size_t cl = 256;
    assert_true(evp_crypt(pk, 1, RSA_NO_PADDING, NULL, em, 256, ct, &cl));
    assert_int_equal(cl, 256);
}

/* RSA1_5: bad padding is not an error but a deterministic pseudo-random message. */
static void test_rsa15_implicit_rejection(void **state)
{
    EVP_PKEY *pk = pkey_of(rsa2048);
    unsigned char em[256], ct1[256], ct2[256], o1[RP_KVKEY_MAX_OUT], o2[RP_KVKEY_MAX_OUT];
    size_t l1 = 0, l2 = 0;

    (void)state;
    /* well-formed: 00 02 <8+ non-zero> 00 msg */
    memset(em, 0x5a, sizeof(em));
    em[0] = 0;
    em[1] = 2;
    em[200] = 0;
    raw_encrypt(pk, em, ct1);
    assert_int_equal(rp_kvkey_decrypt(rsa2048, "RSA1_5", ct1, 256, o1, sizeof(o1), &l1, NULL), 0);
    assert_int_equal(l1, 55);
    assert_memory_equal(o1, em + 201, 55);

    /* each kind of bad padding decrypts "successfully", deterministically */
    for (int kind = 0; kind < 4; kind++) {
        memset(em, 0x5a, sizeof(em));
        em[0] = 0;
        em[1] = 2;
        em[200] = 0;
        if (kind == 0)
            em[0] = 1; /* wrong leading byte */
        else if (kind == 1)
            em[1] = 1; /* block type 1 */
        else if (kind == 2)
            em[200] = 0x5a, em[5] = 0; /* padding shorter than 8 bytes */
        else
            em[200] = 0x5a; /* no separator */
        raw_encrypt(pk, em, ct2);
        assert_int_equal(rp_kvkey_decrypt(rsa2048, "RSA1_5", ct2, 256, o1, sizeof(o1), &l1, NULL),
                         0);
        assert_int_equal(rp_kvkey_decrypt(rsa2048, "RSA1_5", ct2, 256, o2, sizeof(o2), &l2, NULL),
                         0);
        assert_int_equal(l1, l2);
        assert_memory_equal(o1, o2, l1);
        assert_true(l1 <= 256 - 11);
        /* OpenSSL 3.0 reports this as a padding error: the oracle we do not have */
        {
            size_t ol = sizeof(o2);
            assert_false(evp_crypt(pk, 0, RSA_PKCS1_PADDING, NULL, ct2, 256, o2, &ol));
        }
    }
    /* two different bad ciphertexts give different messages */
    memset(em, 0x11, sizeof(em));
    raw_encrypt(pk, em, ct1);
    em[3] = 0x12;
    raw_encrypt(pk, em, ct2);
    assert_int_equal(rp_kvkey_decrypt(rsa2048, "RSA1_5", ct1, 256, o1, sizeof(o1), &l1, NULL), 0);
    assert_int_equal(rp_kvkey_decrypt(rsa2048, "RSA1_5", ct2, 256, o2, sizeof(o2), &l2, NULL), 0);
    assert_true(l1 != l2 || memcmp(o1, o2, l1) != 0);
    EVP_PKEY_free(pk);
}

/* ---------------------------------------------------------------- signatures */

/* OpenSSL directly: verify (sign = 0) or sign an RSA digest with pad (PSS: salt = digest). */
static int evp_rsa_sig(EVP_PKEY *pk, int sign, int pad, const EVP_MD *md, const unsigned char *dg,
                       size_t dn, unsigned char *sig, size_t *sn)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
    int ok;

    assert_non_null(ctx);
    ok = (sign ? EVP_PKEY_sign_init(ctx) : EVP_PKEY_verify_init(ctx)) > 0 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, pad) > 0 && EVP_PKEY_CTX_set_signature_md(ctx, md) > 0;
    if (ok && pad == RSA_PKCS1_PSS_PADDING)
        ok = EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) > 0 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) > 0;
    if (ok)
        ok = sign ? EVP_PKEY_sign(ctx, sig, sn, dg, dn) > 0
                  : EVP_PKEY_verify(ctx, sig, *sn, dg, dn) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static void test_rsa_sign_interop(void **state)
{
    static const char *const names[] = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"};
    EVP_PKEY *pk = pkey_of(rsa2048);

    (void)state;
    for (size_t i = 0; i < 6; i++) {
        const EVP_MD *md = i % 3 == 0 ? EVP_sha256() : i % 3 == 1 ? EVP_sha384() : EVP_sha512();
        int pad = i < 3 ? RSA_PKCS1_PADDING : RSA_PKCS1_PSS_PADDING;
        size_t dn = (size_t)EVP_MD_get_size(md), sl = 0, sl2 = 512;
        unsigned char dg[64], sig[RP_KVKEY_MAX_OUT], sig2[RP_KVKEY_MAX_OUT];
        int ok = -1;
        const char *why = NULL;

        fill(dg, sizeof(dg));
        assert_int_equal(rp_kvkey_sign(rsa2048, names[i], dg, dn, sig, sizeof(sig), &sl, NULL), 0);
        assert_int_equal(sl, 256);
        /* OpenSSL verifies the module's signature over the same digest (no second hash) */
        assert_true(evp_rsa_sig(pk, 0, pad, md, dg, dn, sig, &sl));
        assert_int_equal(rp_kvkey_verify(rsa2048, names[i], dg, dn, sig, sl, &ok, NULL), 0);
        assert_int_equal(ok, 1);
        /* and the module verifies OpenSSL's */
        assert_true(evp_rsa_sig(pk, 1, pad, md, dg, dn, sig2, &sl2));
        assert_int_equal(rp_kvkey_verify(rsa2048, names[i], dg, dn, sig2, sl2, &ok, NULL), 0);
        assert_int_equal(ok, 1);
        /* RS*: deterministic, equal to OpenSSL's */
        if (i < 3)
            assert_memory_equal(sig, sig2, 256);

        /* tampered signature, tampered digest, truncated signature: false, not an error */
        sig[7] ^= 0x40;
        assert_int_equal(rp_kvkey_verify(rsa2048, names[i], dg, dn, sig, sl, &ok, NULL), 0);
        assert_int_equal(ok, 0);
        sig[7] ^= 0x40;
        dg[0] ^= 1;
        ok = -1;
        assert_int_equal(rp_kvkey_verify(rsa2048, names[i], dg, dn, sig, sl, &ok, NULL), 0);
        assert_int_equal(ok, 0);
        dg[0] ^= 1;
        ok = -1;
        assert_int_equal(rp_kvkey_verify(rsa2048, names[i], dg, dn, sig, sl - 1, &ok, NULL), 0);
        assert_int_equal(ok, 0);
        ok = -1;
        assert_int_equal(rp_kvkey_verify(rsa2048, names[i], dg, dn, sig, 0, &ok, NULL), 0);
        assert_int_equal(ok, 0);

        /* wrong digest length: an error for both */
        ok = -1;
        assert_int_equal(rp_kvkey_sign(rsa2048, names[i], dg, dn - 1, sig, sizeof(sig), &sl, &why),
                         RP_EINVAL);
        assert_string_equal(why, "the digest length does not match the algorithm");
        assert_int_equal(rp_kvkey_verify(rsa2048, names[i], dg, dn + 1, sig, sl, &ok, NULL),
                         RP_EINVAL);
        assert_int_equal(ok, -1);
    }
    /* PSS with the maximum salt (raw Node default) is not PS256 */
    {
        unsigned char dg[32] = {9}, sig[256];
        size_t sl = sizeof(sig);
        int ok = -1;
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
        assert_true(EVP_PKEY_sign_init(ctx) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0);
        assert_true(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_MAX) > 0);
        assert_true(EVP_PKEY_sign(ctx, sig, &sl, dg, 32) > 0);
        EVP_PKEY_CTX_free(ctx);
        assert_int_equal(rp_kvkey_verify(rsa2048, "PS256", dg, 32, sig, sl, &ok, NULL), 0);
        assert_int_equal(ok, 0);
    }
    EVP_PKEY_free(pk);
}

/* r||s -> DER, with OpenSSL. */
static int rs_to_der(const unsigned char *sig, size_t w, unsigned char **der)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)w, NULL), *s = BN_bin2bn(sig + w, (int)w, NULL);
    int len;

    assert_non_null(es);
    assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
    len = i2d_ECDSA_SIG(es, der);
    ECDSA_SIG_free(es);
    return len;
}

static void test_ec_sign_interop(void **state)
{
    struct {
        rp_kvkey *k;
        const char *alg;
        size_t dn, w;
    } cases[] = {{p256, "ES256", 32, 32},
                 {p384, "ES384", 48, 48},
                 {p521, "ES512", 64, 66},
                 {p256k, "ES256K", 32, 32}};

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        EVP_PKEY *pk = pkey_of(cases[i].k);
        unsigned char dg[64], sig[RP_KVKEY_MAX_OUT], *der = NULL, zero[132] = {0};
        size_t sl = 0, dl;
        int ok = -1, derlen;
        EVP_PKEY_CTX *ctx;
        const char *why = NULL;

        fill(dg, sizeof(dg));
        assert_int_equal(
            rp_kvkey_sign(cases[i].k, cases[i].alg, dg, cases[i].dn, sig, sizeof(sig), &sl, NULL),
            0);
        assert_int_equal(sl, 2 * cases[i].w);
        /* r||s converted to DER verifies with OpenSSL over the digest as given */
        derlen = rs_to_der(sig, cases[i].w, &der);
        assert_true(derlen > 0);
        ctx = EVP_PKEY_CTX_new(pk, NULL);
        assert_true(EVP_PKEY_verify_init(ctx) > 0);
        assert_int_equal(EVP_PKEY_verify(ctx, der, (size_t)derlen, dg, cases[i].dn), 1);
        OPENSSL_free(der);
        der = NULL;
        /* OpenSSL's DER signature, as r||s, verifies with the module */
        {
            unsigned char d2[200], rs[132];
            const unsigned char *p = d2;
            ECDSA_SIG *es;
            const BIGNUM *r, *s;
            dl = sizeof(d2);
            assert_true(EVP_PKEY_sign_init(ctx) > 0);
            assert_true(EVP_PKEY_sign(ctx, d2, &dl, dg, cases[i].dn) > 0);
            es = d2i_ECDSA_SIG(NULL, &p, (long)dl);
            assert_non_null(es);
            ECDSA_SIG_get0(es, &r, &s);
            assert_int_equal(BN_bn2binpad(r, rs, (int)cases[i].w), (int)cases[i].w);
            assert_int_equal(BN_bn2binpad(s, rs + cases[i].w, (int)cases[i].w), (int)cases[i].w);
            ECDSA_SIG_free(es);
            assert_int_equal(rp_kvkey_verify(cases[i].k, cases[i].alg, dg, cases[i].dn, rs,
                                             2 * cases[i].w, &ok, NULL),
                             0);
            assert_int_equal(ok, 1);
            /* DER handed to verify is not r||s: false */
            ok = -1;
            assert_int_equal(
                rp_kvkey_verify(cases[i].k, cases[i].alg, dg, cases[i].dn, d2, dl, &ok, NULL), 0);
            assert_int_equal(ok, 0);
        }
        EVP_PKEY_CTX_free(ctx);

        assert_int_equal(
            rp_kvkey_verify(cases[i].k, cases[i].alg, dg, cases[i].dn, sig, sl, &ok, NULL), 0);
        assert_int_equal(ok, 1);
        sig[sl - 1] ^= 1;
        assert_int_equal(
            rp_kvkey_verify(cases[i].k, cases[i].alg, dg, cases[i].dn, sig, sl, &ok, NULL), 0);
        assert_int_equal(ok, 0);
        ok = -1;
        assert_int_equal(
            rp_kvkey_verify(cases[i].k, cases[i].alg, dg, cases[i].dn, sig, sl - 1, &ok, NULL), 0);
        assert_int_equal(ok, 0);
        /* r = s = 0 ("psychic signature") */
        ok = -1;
        assert_int_equal(
            rp_kvkey_verify(cases[i].k, cases[i].alg, dg, cases[i].dn, zero, sl, &ok, NULL), 0);
        assert_int_equal(ok, 0);
        /* wrong digest length */
        assert_int_equal(rp_kvkey_sign(cases[i].k, cases[i].alg, dg, cases[i].dn + 1, sig,
                                       sizeof(sig), &sl, &why),
                         RP_EINVAL);
        EVP_PKEY_free(pk);
    }
}

static void test_wrong_key_type(void **state)
{
    unsigned char in[256] = {0}, out[RP_KVKEY_MAX_OUT];
    size_t ol = 0;
    int ok = -1;
    const char *why = NULL;

    (void)state;
    assert_int_equal(rp_kvkey_encrypt(p256, "RSA-OAEP", in, 16, out, sizeof(out), &ol, &why),
                     RP_EINVAL);
    assert_string_equal(why, "the key type does not support this algorithm");
    why = NULL;
    assert_int_equal(
        rp_kvkey_unwrap_key(p256, "RSA-OAEP-256", in, 256, out, sizeof(out), &ol, &why), RP_EINVAL);
    assert_string_equal(why, "the key type does not support this algorithm");
    assert_int_equal(rp_kvkey_sign(p256, "ES384", in, 48, out, sizeof(out), &ol, &why), RP_EINVAL);
    assert_string_equal(why, "the key type does not support this algorithm");
    assert_int_equal(rp_kvkey_sign(p384, "ES256", in, 32, out, sizeof(out), &ol, NULL), RP_EINVAL);
    assert_int_equal(rp_kvkey_sign(p256, "ES256K", in, 32, out, sizeof(out), &ol, NULL), RP_EINVAL);
    assert_int_equal(rp_kvkey_sign(p256k, "ES256", in, 32, out, sizeof(out), &ol, NULL), RP_EINVAL);
    assert_int_equal(rp_kvkey_sign(p256, "RS256", in, 32, out, sizeof(out), &ol, NULL), RP_EINVAL);
    assert_int_equal(rp_kvkey_verify(p256, "PS256", in, 32, in, 64, &ok, NULL), RP_EINVAL);
    assert_int_equal(rp_kvkey_sign(rsa2048, "ES256", in, 32, out, sizeof(out), &ol, NULL),
                     RP_EINVAL);
    assert_int_equal(rp_kvkey_verify(rsa2048, "ES256", in, 32, in, 64, &ok, NULL), RP_EINVAL);
    assert_int_equal(ok, -1);
    assert_int_equal(rp_kvkey_wrap_key(rsa2048, "A256KW", in, 32, out, sizeof(out), &ol, &why),
                     RP_EINVAL);
    assert_string_equal(why, "the key type does not support this algorithm");
    /* an encryption algorithm for signing and the reverse */
    assert_int_equal(rp_kvkey_sign(rsa2048, "RSA-OAEP", in, 32, out, sizeof(out), &ol, &why),
                     RP_EINVAL);
    assert_string_equal(why, "the algorithm is not a signature algorithm");
    assert_int_equal(rp_kvkey_encrypt(rsa2048, "RS256", in, 32, out, sizeof(out), &ol, &why),
                     RP_EINVAL);
    assert_string_equal(why, "the algorithm is not an encryption algorithm");
    /* unknown and case-mangled names */
    assert_int_equal(rp_kvkey_encrypt(rsa2048, "rsa-oaep", in, 32, out, sizeof(out), &ol, &why),
                     RP_EINVAL);
    assert_string_equal(why, "unknown algorithm");
    assert_int_equal(rp_kvkey_sign(rsa2048, "", in, 32, out, sizeof(out), &ol, NULL), RP_EINVAL);
    assert_int_equal(ol, 0);
}

/* ---------------------------------------------------------------- JWK */

static char *b64u(const BIGNUM *bn, int width)
{
    unsigned char buf[600];
    char *s = malloc(900);
    int len = width > 0 ? BN_bn2binpad(bn, buf, width) : BN_bn2bin(bn, buf);

    assert_non_null(s);
    assert_true(len > 0);
    assert_int_equal(rp_b64url_encode(buf, (size_t)len, s, 900), 0);
    return s;
}

static void set_bn(json_t *o, const char *name, EVP_PKEY *pk, const char *param, int width)
{
    BIGNUM *bn = NULL;
    char *s;

    assert_int_equal(EVP_PKEY_get_bn_param(pk, param, &bn), 1);
    s = b64u(bn, width);
    assert_int_equal(json_object_set_new(o, name, json_string(s)), 0);
    free(s);
    BN_clear_free(bn);
}

/* The full private JWK of an OpenSSL RSA key, built from its components. */
static json_t *rsa_jwk(EVP_PKEY *pk, const char *kty)
{
    json_t *o = json_object();

    json_object_set_new(o, "kty", json_string(kty));
    set_bn(o, "n", pk, OSSL_PKEY_PARAM_RSA_N, 0);
    set_bn(o, "e", pk, OSSL_PKEY_PARAM_RSA_E, 0);
    set_bn(o, "d", pk, OSSL_PKEY_PARAM_RSA_D, 0);
    set_bn(o, "p", pk, OSSL_PKEY_PARAM_RSA_FACTOR1, 0);
    set_bn(o, "q", pk, OSSL_PKEY_PARAM_RSA_FACTOR2, 0);
    set_bn(o, "dp", pk, OSSL_PKEY_PARAM_RSA_EXPONENT1, 0);
    set_bn(o, "dq", pk, OSSL_PKEY_PARAM_RSA_EXPONENT2, 0);
    set_bn(o, "qi", pk, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, 0);
    return o;
}

static json_t *ec_jwk(EVP_PKEY *pk, const char *crv, int w)
{
    json_t *o = json_object();

    json_object_set_new(o, "kty", json_string("EC"));
    json_object_set_new(o, "crv", json_string(crv));
    set_bn(o, "x", pk, OSSL_PKEY_PARAM_EC_PUB_X, w);
    set_bn(o, "y", pk, OSSL_PKEY_PARAM_EC_PUB_Y, w);
    set_bn(o, "d", pk, OSSL_PKEY_PARAM_PRIV_KEY, w);
    return o;
}

static void import_fails(json_t *jwk, int want)
{
    rp_kvkey *k = NULL;
    const char *why = NULL;

    assert_int_equal(rp_kvkey_from_jwk(jwk, &k, &why), want);
    assert_null(k);
    assert_non_null(why);
}

static void test_jwk_import_rsa(void **state)
{
    EVP_PKEY *pk = EVP_RSA_gen(2048), *other = pkey_of(rsa2048);
    json_t *jwk, *pub = NULL, *bad;
    rp_kvkey *k = NULL;
    const char *why = NULL;
    unsigned char pt[16] = "0123456789abcdef", ct[256], out[RP_KVKEY_MAX_OUT];
    size_t cl = sizeof(ct), ol = 0;

    (void)state;
    assert_non_null(pk);
    jwk = rsa_jwk(pk, "RSA-HSM");
    assert_int_equal(rp_kvkey_from_jwk(jwk, &k, &why), 0);
    assert_int_equal(rp_kvkey_public_jwk(k, "https://v/keys/k/1", "RSA-HSM", RP_KVOP_RSA_ALL, &pub),
                     0);
    assert_true(json_equal(json_object_get(pub, "n"), json_object_get(jwk, "n")));
    assert_true(json_equal(json_object_get(pub, "e"), json_object_get(jwk, "e")));
    assert_string_equal(json_string_value(json_object_get(pub, "e")), "AQAB");
    /* the imported key decrypts what OpenSSL encrypted under the original */
    assert_true(evp_crypt(pk, 1, RSA_PKCS1_OAEP_PADDING, EVP_sha1(), pt, 16, ct, &cl));
    assert_int_equal(rp_kvkey_unwrap_key(k, "RSA-OAEP", ct, cl, out, sizeof(out), &ol, NULL), 0);
    assert_int_equal(ol, 16);
    assert_memory_equal(out, pt, 16);
    json_decref(pub);
    rp_kvkey_free(k);
    k = NULL;

    /* padded / standard-alphabet encodings are accepted (Node's decoder does) */
    {
        const char *n = json_string_value(json_object_get(jwk, "n"));
        char *std = strdup(n);
        size_t len = strlen(std);
        char *padded = malloc(len + 3);
        for (size_t i = 0; i < len; i++)
            std[i] = std[i] == '-' ? '+' : std[i] == '_' ? '/' : std[i];
        memcpy(padded, std, len);
        while (len % 4)
            padded[len++] = '=';
        padded[len] = '\0';
        bad = json_deep_copy(jwk);
        json_object_set_new(bad, "n", json_string(padded));
        assert_int_equal(rp_kvkey_from_jwk(bad, &k, NULL), 0);
        rp_kvkey_free(k);
        k = NULL;
        json_decref(bad);
        free(std);
        free(padded);
    }

    /* public-only */
    bad = json_deep_copy(jwk);
    json_object_del(bad, "d");
    import_fails(bad, RP_EINVAL);
    assert_int_equal(rp_kvkey_from_jwk(bad, &k, &why), RP_EINVAL);
    assert_non_null(strstr(why, "public-only"));
    json_object_del(bad, "p");
    json_object_del(bad, "q");
    json_object_del(bad, "dp");
    json_object_del(bad, "dq");
    json_object_del(bad, "qi");
    import_fails(bad, RP_EINVAL);
    json_decref(bad);
    /* each CRT member missing */
    {
        static const char *const m[] = {"n", "e", "p", "q", "dp", "dq", "qi"};
        for (size_t i = 0; i < 7; i++) {
            bad = json_deep_copy(jwk);
            json_object_del(bad, m[i]);
            import_fails(bad, RP_EINVAL);
            json_decref(bad);
        }
    }
    /* inconsistent: d from another key, dp and dq swapped, p and q of another key */
    {
        json_t *o = rsa_jwk(other, "RSA");
        bad = json_deep_copy(jwk);
        json_object_set(bad, "d", json_object_get(o, "d"));
        import_fails(bad, RP_EINVAL);
        json_decref(bad);
        bad = json_deep_copy(jwk);
        json_object_set(bad, "dp", json_object_get(jwk, "dq"));
        json_object_set(bad, "dq", json_object_get(jwk, "dp"));
        import_fails(bad, RP_EINVAL);
        json_decref(bad);
        bad = json_deep_copy(jwk);
        json_object_set(bad, "qi", json_object_get(o, "qi"));
        import_fails(bad, RP_EINVAL);
        json_decref(bad);
        bad = json_deep_copy(jwk);
        json_object_set(bad, "n", json_object_get(o, "n"));
        import_fails(bad, RP_EINVAL);
        json_decref(bad);
        json_decref(o);
    }
    /* wrong types and encodings */
    bad = json_deep_copy(jwk);
    json_object_set_new(bad, "e", json_integer(65537));
    import_fails(bad, RP_EINVAL);
    json_object_set_new(bad, "e", json_string("AQ*B"));
    import_fails(bad, RP_EINVAL);
    json_object_set_new(bad, "e", json_string(""));
    import_fails(bad, RP_EINVAL);
    json_object_set_new(bad, "e", json_string("AQAA")); /* even exponent */
    import_fails(bad, RP_EINVAL);
    json_decref(bad);
    bad = json_deep_copy(jwk);
    json_object_set_new(bad, "kty", json_string("oct"));
    import_fails(bad, RP_EUNSUPPORTED);
    json_object_set_new(bad, "kty", json_string("rsa"));
    import_fails(bad, RP_EINVAL);
    json_object_del(bad, "kty");
    import_fails(bad, RP_EINVAL);
    json_decref(bad);
    bad = json_array();
    import_fails(bad, RP_EINVAL);
    json_decref(bad);

    json_decref(jwk);
    EVP_PKEY_free(pk);
    EVP_PKEY_free(other);
    /* 1024-bit keys are refused on import */
    pk = EVP_RSA_gen(1024);
    jwk = rsa_jwk(pk, "RSA");
    import_fails(jwk, RP_EINVAL);
    json_decref(jwk);
    EVP_PKEY_free(pk);
}

static void test_jwk_import_ec(void **state)
{
    static const struct {
        const char *crv, *group, *alg;
        int w;
        size_t dn;
    } cases[] = {{"P-256", "P-256", "ES256", 32, 32},
                 {"P-384", "P-384", "ES384", 48, 48},
                 {"P-521", "P-521", "ES512", 66, 64},
                 {"P-256K", "secp256k1", "ES256K", 32, 32}};

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        EVP_PKEY *pk = EVP_EC_gen(cases[i].group), *pk2 = EVP_EC_gen(cases[i].group);
        json_t *jwk, *pub = NULL, *bad, *o2;
        rp_kvkey *k = NULL;
        unsigned char dg[64] = {7}, sig[RP_KVKEY_MAX_OUT], *der = NULL;
        size_t sl = 0;
        int derlen;
        EVP_PKEY_CTX *ctx;

        assert_non_null(pk);
        assert_non_null(pk2);
        jwk = ec_jwk(pk, cases[i].crv, cases[i].w);
        assert_int_equal(rp_kvkey_from_jwk(jwk, &k, NULL), 0);
        assert_string_equal(rp_kvkey_crv(k), cases[i].crv);
        assert_int_equal(rp_kvkey_public_jwk(k, "kid1", "EC-HSM", RP_KVOP_EC_ALL, &pub), 0);
        assert_string_equal(json_string_value(json_object_get(pub, "crv")), cases[i].crv);
        assert_true(json_equal(json_object_get(pub, "x"), json_object_get(jwk, "x")));
        assert_true(json_equal(json_object_get(pub, "y"), json_object_get(jwk, "y")));
        assert_null(json_object_get(pub, "d"));
        /* the imported key signs for the original */
        assert_int_equal(
            rp_kvkey_sign(k, cases[i].alg, dg, cases[i].dn, sig, sizeof(sig), &sl, NULL), 0);
        derlen = rs_to_der(sig, (size_t)cases[i].w, &der);
        ctx = EVP_PKEY_CTX_new(pk, NULL);
        assert_true(EVP_PKEY_verify_init(ctx) > 0);
        assert_int_equal(EVP_PKEY_verify(ctx, der, (size_t)derlen, dg, cases[i].dn), 1);
        EVP_PKEY_CTX_free(ctx);
        OPENSSL_free(der);
        json_decref(pub);
        rp_kvkey_free(k);

        /* public-only, inconsistent (d of another key; x of another key), bad lengths */
        o2 = ec_jwk(pk2, cases[i].crv, cases[i].w);
        bad = json_deep_copy(jwk);
        json_object_del(bad, "d");
        import_fails(bad, RP_EINVAL);
        json_object_set(bad, "d", json_object_get(o2, "d"));
        import_fails(bad, RP_EINVAL);
        json_decref(bad);
        bad = json_deep_copy(jwk);
        json_object_set(bad, "x", json_object_get(o2, "x"));
        import_fails(bad, RP_EINVAL);
        json_object_set_new(bad, "x", json_string("AAAA"));
        import_fails(bad, RP_EINVAL);
        json_decref(bad);
        bad = json_deep_copy(jwk);
        json_object_set_new(bad, "crv", json_string("P-192"));
        import_fails(bad, RP_EUNSUPPORTED);
        json_object_del(bad, "crv");
        import_fails(bad, RP_EINVAL);
        json_decref(bad);
        /* the curve of another key size */
        bad = json_deep_copy(jwk);
        json_object_set_new(bad, "crv", json_string(i == 1 ? "P-256" : "P-384"));
        import_fails(bad, RP_EINVAL);
        json_decref(bad);
        json_decref(o2);
        json_decref(jwk);
        EVP_PKEY_free(pk);
        EVP_PKEY_free(pk2);
    }
}

static void test_public_jwk(void **state)
{
    json_t *j = NULL;
    const char *key;
    json_t *v;
    size_t n = 0;

    (void)state;
    assert_int_equal(rp_kvkey_public_jwk(rsa2048, "https://v.vault.x/keys/k1/0123", "RSA",
                                         RP_KVOP_RSA_ALL | RP_KVOP_IMPORT, &j),
                     0);
    json_object_foreach(j, key, v)
    {
        assert_true(strcmp(key, "kid") == 0 || strcmp(key, "kty") == 0 ||
                    strcmp(key, "key_ops") == 0 || strcmp(key, "n") == 0 || strcmp(key, "e") == 0);
        n++;
    }
    assert_int_equal(n, 5);
    assert_string_equal(json_string_value(json_object_get(j, "kid")),
                        "https://v.vault.x/keys/k1/0123");
    {
        char *s = json_dumps(json_object_get(j, "key_ops"), JSON_COMPACT);
        assert_string_equal(
            s,
            "[\"encrypt\",\"decrypt\",\"sign\",\"verify\",\"wrapKey\",\"unwrapKey\",\"import\"]");
        free(s);
    }
    /* 2048-bit modulus: 256 bytes = 342 base64url characters, no padding */
    assert_int_equal(json_string_length(json_object_get(j, "n")), 342);
    assert_null(strchr(json_string_value(json_object_get(j, "n")), '='));
    json_decref(j);

    assert_int_equal(rp_kvkey_public_jwk(p521, "kid", "EC", RP_KVOP_SIGN | RP_KVOP_VERIFY, &j), 0);
    n = 0;
    json_object_foreach(j, key, v)
    {
        assert_true(strcmp(key, "kid") == 0 || strcmp(key, "kty") == 0 ||
                    strcmp(key, "key_ops") == 0 || strcmp(key, "crv") == 0 ||
                    strcmp(key, "x") == 0 || strcmp(key, "y") == 0);
        n++;
    }
    assert_int_equal(n, 6);
    assert_int_equal(json_string_length(json_object_get(j, "x")), 88); /* 66 bytes */
    json_decref(j);
    j = NULL;

    assert_int_equal(rp_kvkey_public_jwk(rsa2048, "kid", "EC", 0, &j), RP_EINVAL);
    assert_int_equal(rp_kvkey_public_jwk(p256, "kid", "RSA", 0, &j), RP_EINVAL);
    assert_int_equal(rp_kvkey_public_jwk(p256, "kid", "oct", 0, &j), RP_EINVAL);
    assert_int_equal(rp_kvkey_public_jwk(p256, "", "EC", 0, &j), RP_EINVAL);
    assert_null(j);
}

/* ---------------------------------------------------------------- key_ops, base64 */

static void test_key_ops(void **state)
{
    json_t *a =
        json_loads("[\"encrypt\",\"wrapKey\",\"unwrapKey\",\"export\",\"wrapKey\"]", 0, NULL);
    unsigned ops = 0;
    const char *why = NULL;
    json_t *back;
    char *s;

    (void)state;
    assert_int_equal(rp_kvkey_ops_parse(a, &ops, NULL), 0);
    assert_int_equal(ops, RP_KVOP_ENCRYPT | RP_KVOP_WRAP_KEY | RP_KVOP_UNWRAP_KEY | RP_KVOP_EXPORT);
    assert_true(rp_kvkey_op_allowed(ops, RP_KVOP_WRAP_KEY));
    assert_false(rp_kvkey_op_allowed(ops, RP_KVOP_DECRYPT));
    assert_false(rp_kvkey_op_allowed(ops, 0));
    back = rp_kvkey_ops_json(ops);
    s = json_dumps(back, JSON_COMPACT);
    assert_string_equal(s, "[\"encrypt\",\"wrapKey\",\"unwrapKey\",\"export\"]");
    free(s);
    json_decref(back);
    json_decref(a);
    assert_string_equal(rp_kvkey_op_name(RP_KVOP_UNWRAP_KEY), "unwrapKey");
    assert_null(rp_kvkey_op_name(3));

    a = json_loads("[]", 0, NULL);
    assert_int_equal(rp_kvkey_ops_parse(a, &ops, NULL), 0);
    assert_int_equal(ops, 0);
    json_decref(a);
    a = json_loads("[\"wrapkey\"]", 0, NULL);
    assert_int_equal(rp_kvkey_ops_parse(a, &ops, &why), RP_EINVAL);
    assert_string_equal(why, "key_ops contains an unknown operation");
    json_decref(a);
    a = json_loads("[\"sign\", 1]", 0, NULL);
    assert_int_equal(rp_kvkey_ops_parse(a, &ops, NULL), RP_EINVAL);
    json_decref(a);
    a = json_loads("\"sign\"", JSON_DECODE_ANY, NULL);
    assert_int_equal(rp_kvkey_ops_parse(a, &ops, NULL), RP_EINVAL);
    json_decref(a);
    a = json_loads("[\"sign\\u0000x\"]", JSON_ALLOW_NUL, NULL);
    assert_int_equal(rp_kvkey_ops_parse(a, &ops, NULL), RP_EINVAL);
    json_decref(a);
}

static void test_b64(void **state)
{
    unsigned char out[16];
    size_t n = 0;

    (void)state;
    assert_int_equal(rp_kvkey_b64_decode("", 0, out, sizeof(out), &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(rp_kvkey_b64_decode("-_8", 3, out, sizeof(out), &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(rp_kvkey_b64_decode("+/8=", 4, out, sizeof(out), &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(rp_kvkey_b64_decode("QQ==", 4, out, sizeof(out), &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 'A');
    assert_int_equal(rp_kvkey_b64_decode("QR", 2, out, sizeof(out), &n), 0); /* trailing bits */
    assert_int_equal(rp_kvkey_b64_decode("QQ=", 3, out, sizeof(out), &n), RP_EINVAL);
    assert_int_equal(rp_kvkey_b64_decode("QQ===", 5, out, sizeof(out), &n), RP_EINVAL);
    assert_int_equal(rp_kvkey_b64_decode("Q", 1, out, sizeof(out), &n), RP_EINVAL);
    assert_int_equal(rp_kvkey_b64_decode("Q=Q=", 4, out, sizeof(out), &n), RP_EINVAL);
    assert_int_equal(rp_kvkey_b64_decode("QU JD", 5, out, sizeof(out), &n), RP_EINVAL);
    assert_int_equal(rp_kvkey_b64_decode("QUJD", 4, out, 2, &n), RP_ETOOBIG);
    assert_true(rp_kvkey_b64_max(4) >= 3);
    assert_true(rp_kvkey_b64_max(3) >= 2);
}

/* A failed handle or DER allocation is RP_ENOMEM and leaks nothing. */
static void test_oom(void **state)
{
    unsigned char *der = NULL;
    size_t n = 0;
    rp_kvkey *k = NULL;

    (void)state;
    assert_int_equal(rp_kvkey_to_der(p256, &der, &n), 0);
    rp_alloc_fail_after(0);
    assert_int_equal(rp_kvkey_from_der(der, n, &k, NULL), RP_ENOMEM);
    assert_int_equal(rp_kvkey_generate_ec("P-256", &k, NULL), RP_ENOMEM);
    {
        unsigned char *d2 = NULL;
        size_t n2 = 0;
        assert_int_equal(rp_kvkey_to_der(p256, &d2, &n2), RP_ENOMEM);
        assert_null(d2);
    }
    rp_alloc_fail_after(-1);
    assert_null(k);
    assert_int_equal(rp_kvkey_from_der(der, n, &k, NULL), 0);
    rp_kvkey_free(k);
    rp_kvkey_der_free(der, n);
}

/* ---------------------------------------------------------------- threads, speed */

typedef struct worker {
    const unsigned char *ct;
    const unsigned char *pt;
    int fails;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    unsigned char out[RP_KVKEY_MAX_OUT];
    size_t ol = 0;

    for (int i = 0; i < 50; i++) {
        if (rp_kvkey_unwrap_key(rsa2048, "RSA-OAEP", w->ct, 256, out, sizeof(out), &ol, NULL) !=
                0 ||
            ol != 32 || memcmp(out, w->pt, 32) != 0)
            w->fails++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    EVP_PKEY *pk = pkey_of(rsa2048);
    unsigned char pt[32], ct[256];
    size_t cl = sizeof(ct);
    pthread_t t[4];
    worker w[4];

    (void)state;
    fill(pt, sizeof(pt));
    assert_true(evp_crypt(pk, 1, RSA_PKCS1_OAEP_PADDING, EVP_sha1(), pt, 32, ct, &cl));
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){ct, pt, 0};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].fails, 0);
    }
    EVP_PKEY_free(pk);

    if (getenv("RP_KVKEY_BENCH") != NULL) {
        unsigned char out[RP_KVKEY_MAX_OUT];
        size_t ol;
        struct timespec a, b;
        int n = 0;
        double s;
        clock_gettime(CLOCK_MONOTONIC, &a);
        do {
            for (int i = 0; i < 100; i++, n++)
                assert_int_equal(
                    rp_kvkey_unwrap_key(rsa2048, "RSA-OAEP", ct, 256, out, sizeof(out), &ol, NULL),
                    0);
            clock_gettime(CLOCK_MONOTONIC, &b);
            s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
        } while (s < 3.0);
        printf("kvkey bench: RSA-2048 RSA-OAEP unwrapKey %.1f/s (one thread)\n", n / s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_limits),
        cmocka_unit_test(test_der_roundtrip),
        cmocka_unit_test(test_der_refused),
        cmocka_unit_test(test_encrypt_interop),
        cmocka_unit_test(test_decrypt_failures),
        cmocka_unit_test(test_rsa15_implicit_rejection),
        cmocka_unit_test(test_rsa_sign_interop),
        cmocka_unit_test(test_ec_sign_interop),
        cmocka_unit_test(test_wrong_key_type),
        cmocka_unit_test(test_jwk_import_rsa),
        cmocka_unit_test(test_jwk_import_ec),
        cmocka_unit_test(test_public_jwk),
        cmocka_unit_test(test_key_ops),
        cmocka_unit_test(test_b64),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
