/*
 * kvhsm_test.c - Key Vault -HSM keys against a real SoftHSM2 token the test creates in its
 * scratch directory: generation (RSA-2048, P-256, P-384, P-521, P-256K) and its limits, every
 * algorithm both ways, interoperability with OpenSSL used directly on the public JWK (OAEP
 * SHA-1 set explicitly as Node does, OAEP SHA-256, RS/PS verification, ES r||s converted to DER)
 * and with the software module (kvkey) for imported keys, the private objects' attributes
 * (sensitive, never extractable, private values unreadable), destroy, persistence across a
 * close / reopen of the module, wrong PIN and token label, the RSA1_5 decryption refusal, wrong
 * digest lengths and key types, and four threads signing at once.
 *
 * Skipped (with a message) only when /usr/lib/softhsm/libsofthsm2.so is not installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "base/err.h"
#include "base/str.h"
#include "vault/kvhsm.h"
#include "vault/kvkey.h"

#include <dlfcn.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SOFTHSM "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN   "kvhsm-test"
#define PIN     "1234"

static char scratch[512];
static int have_hsm;

static int hsm_setup(void)
{
    char conf[600], tokens[600], cmd[1400];
    FILE *f;

    if (access(SOFTHSM, R_OK) != 0)
        return 0;
    assert_true((size_t)snprintf(conf, sizeof(conf), "%s/softhsm2.conf", scratch) < sizeof(conf));
    assert_true((size_t)snprintf(tokens, sizeof(tokens), "%s/tokens", scratch) < sizeof(tokens));
    rp_test_mkdir_p(tokens);
    f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens);
    fclose(f);
    assert_int_equal(setenv("SOFTHSM2_CONF", conf, 1), 0);
    snprintf(cmd, sizeof(cmd),
             "softhsm2-util --init-token --free --label " TOKEN " --pin " PIN
             " --so-pin 5678 >/dev/null");
    assert_int_equal(system(cmd), 0);
    return 1;
}

static int setup(void **state)
{
    (void)state;
    rp_test_scratch("kvhsm", scratch, sizeof(scratch));
    have_hsm = hsm_setup();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rp_test_rmtree(scratch);
    return 0;
}

#define NEED_HSM()                                                                                 \
    do {                                                                                           \
        if (!have_hsm) {                                                                           \
            print_message("SKIP: %s is not installed; HSM keys are untested\n", SOFTHSM);          \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static rp_kvhsm *open_hsm(void)
{
    rp_kvhsm *h = NULL;
    char err[256] = "";

    if (rp_kvhsm_open(SOFTHSM, TOKEN, PIN, &h, err, sizeof(err)) != 0)
        fail_msg("rp_kvhsm_open: %s", err);
    return h;
}

/* ---- helpers: OpenSSL on the public JWK ---- */

static BIGNUM *jwk_bn(const json_t *jwk, const char *name, size_t *len)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    unsigned char buf[600];
    size_t n = 0;

    assert_non_null(s);
    assert_int_equal(rp_kvkey_b64_decode(s, strlen(s), buf, sizeof(buf), &n), 0);
    if (len != NULL)
        *len = n;
    return BN_bin2bn(buf, (int)n, NULL);
}

/* An OpenSSL public key from a public JWK (RSA n/e or EC crv/x/y). */
static EVP_PKEY *pkey_from_jwk(const json_t *jwk)
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    BIGNUM *a = NULL, *b = NULL;
    unsigned char pt[1 + 2 * 66]; /* the builder keeps a pointer to it until to_param */
    int ec = strncmp(kty, "EC", 2) == 0;

    assert_non_null(bld);
    if (!ec) {
        a = jwk_bn(jwk, "n", NULL);
        b = jwk_bn(jwk, "e", NULL);
        assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, a), 1);
        assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, b), 1);
    } else {
        const char *crv = json_string_value(json_object_get(jwk, "crv"));
        const char *group = strcmp(crv, "P-256") == 0   ? "prime256v1"
                            : strcmp(crv, "P-384") == 0 ? "secp384r1"
                            : strcmp(crv, "P-521") == 0 ? "secp521r1"
                                                        : "secp256k1";
        size_t w = strcmp(crv, "P-384") == 0 ? 48 : strcmp(crv, "P-521") == 0 ? 66 : 32, xl, yl;
        a = jwk_bn(jwk, "x", &xl);
        b = jwk_bn(jwk, "y", &yl);
        assert_int_equal(xl, w); /* exactly the curve's width */
        assert_int_equal(yl, w);
        pt[0] = 4;
        assert_int_equal(BN_bn2binpad(a, pt + 1, (int)w), (int)w);
        assert_int_equal(BN_bn2binpad(b, pt + 1 + w, (int)w), (int)w);
        assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
                         1);
        assert_int_equal(
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * w), 1);
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, ec ? "EC" : "RSA", NULL);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params), 1);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(a);
    BN_free(b);
    return pk;
}

static EVP_PKEY *pkey_of_ref(rp_kvhsm *h, const char *ref, const char *kty, json_t **jwk_out)
{
    json_t *jwk = NULL;
    EVP_PKEY *pk;

    assert_int_equal(rp_kvhsm_public_jwk(h, ref, "https://v/keys/k/1", kty, RP_KVOP_RSA_ALL, &jwk),
                     0);
    assert_null(json_object_get(jwk, "d"));
    assert_null(json_object_get(jwk, "p"));
    assert_string_equal(json_string_value(json_object_get(jwk, "kty")), kty);
    pk = pkey_from_jwk(jwk);
    if (jwk_out != NULL)
        *jwk_out = jwk;
    else
        json_decref(jwk);
    return pk;
}

/* OpenSSL encryption with OAEP (md for OAEP and MGF1, both set explicitly). */
static size_t ossl_oaep_encrypt(EVP_PKEY *pk, const char *md, const unsigned char *in, size_t n,
                                unsigned char *out)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    size_t len = RP_KVKEY_MAX_OUT;

    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_encrypt_init(ctx), 1);
    assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0);
    assert_true(EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, md, NULL) > 0);
    assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, md, NULL) > 0);
    assert_int_equal(EVP_PKEY_encrypt(ctx, out, &len, in, n), 1);
    EVP_PKEY_CTX_free(ctx);
    return len;
}

/* OpenSSL verification of an RS* / PS* signature, or of an ES* one after r||s -> DER. */
static int ossl_verify(EVP_PKEY *pk, const char *alg, const unsigned char *dg, size_t dn,
                       const unsigned char *sig, size_t sn)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    const char *md = strstr(alg, "384") ? "SHA384" : strstr(alg, "512") ? "SHA512" : "SHA256";
    unsigned char *der = NULL;
    int derlen, ok;

    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
    assert_true(EVP_PKEY_CTX_set_signature_md(ctx, EVP_get_digestbyname(md)) > 0);
    if (alg[0] == 'R') {
        assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0);
    } else if (alg[0] == 'P') {
        assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, md, NULL) > 0);
        assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int)dn) > 0); /* salt = hash length */
    }
    if (alg[0] == 'E') {
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int)sn / 2, NULL),
               *s = BN_bin2bn(sig + sn / 2, (int)sn / 2, NULL);
        assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
        derlen = i2d_ECDSA_SIG(es, &der);
        assert_true(derlen > 0);
        ok = EVP_PKEY_verify(ctx, der, (size_t)derlen, dg, dn) == 1;
        OPENSSL_free(der);
        ECDSA_SIG_free(es);
    } else {
        ok = EVP_PKEY_verify(ctx, sig, sn, dg, dn) == 1;
    }
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* ---- helpers: the token seen directly ---- */

static CK_FUNCTION_LIST_PTR p11_funcs(void)
{
    void *dl = dlopen(SOFTHSM, RTLD_NOW | RTLD_LOCAL);
    CK_C_GetFunctionList get;
    CK_FUNCTION_LIST_PTR f = NULL;

    assert_non_null(dl);
    *(void **)&get = dlsym(dl, "C_GetFunctionList");
    assert_non_null(get);
    assert_int_equal(get(&f), CKR_OK);
    return f;
}

/* Our own logged-in session (an rp_kvhsm must hold the module initialised). */
static CK_SESSION_HANDLE p11_session(CK_FUNCTION_LIST_PTR f)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    CK_TOKEN_INFO ti;
    CK_SESSION_HANDLE s;
    CK_RV rv;

    assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    for (CK_ULONG i = 0; i < n; i++) {
        assert_int_equal(f->C_GetTokenInfo(slots[i], &ti), CKR_OK);
        if (memcmp(ti.label, TOKEN " ", sizeof(TOKEN)) == 0) {
            assert_int_equal(f->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &s),
                             CKR_OK);
            rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)PIN, 4);
            assert_true(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN);
            return s;
        }
    }
    fail_msg("token not found");
    return 0;
}

/* The objects of class cls with the CKA_ID in ref. */
static CK_ULONG p11_find(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                         const char *ref, CK_OBJECT_HANDLE *first)
{
    unsigned char id[16];
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_ID, id, sizeof(id)}};
    CK_OBJECT_HANDLE objs[4];
    CK_ULONG n = 0;

    assert_int_equal(strlen(ref), 6 + 32);
    assert_memory_equal(ref, "kvhsm:", 6);
    for (int i = 0; i < 16; i++)
        id[i] = (unsigned char)(rp_hex_value((unsigned char)ref[6 + 2 * i]) << 4 |
                                rp_hex_value((unsigned char)ref[7 + 2 * i]));
    assert_int_equal(f->C_FindObjectsInit(s, t, 2), CKR_OK);
    assert_int_equal(f->C_FindObjects(s, objs, 4, &n), CKR_OK);
    assert_int_equal(f->C_FindObjectsFinal(s), CKR_OK);
    if (first != NULL && n > 0)
        *first = objs[0];
    return n;
}

/* The private half: sensitive, never extractable, on the token, its secrets unreadable. */
static void check_private_object(const char *ref, int ec, int generated, const char *label)
{
    CK_FUNCTION_LIST_PTR f = p11_funcs();
    CK_SESSION_HANDLE s = p11_session(f);
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE, pub = CK_INVALID_HANDLE;
    CK_BBOOL sens = 0, extr = 1, tok = 0, prv = 0, never = 0, always = 0, dec = 0;
    unsigned char value[600];
    char lbl[200];

    assert_int_equal(p11_find(f, s, CKO_PRIVATE_KEY, ref, &priv), 1);
    assert_int_equal(p11_find(f, s, CKO_PUBLIC_KEY, ref, &pub), 1);
    {
        CK_ATTRIBUTE a[] = {
            {CKA_SENSITIVE, &sens, 1},
            {CKA_EXTRACTABLE, &extr, 1},
            {CKA_TOKEN, &tok, 1},
            {CKA_PRIVATE, &prv, 1},
            {CKA_NEVER_EXTRACTABLE, &never, 1},
            {CKA_ALWAYS_SENSITIVE, &always, 1},
            {CKA_DECRYPT, &dec, 1},
            {CKA_LABEL, lbl, sizeof(lbl)},
        };
        assert_int_equal(f->C_GetAttributeValue(s, priv, a, 8), CKR_OK);
        assert_int_equal(sens, CK_TRUE);
        assert_int_equal(extr, CK_FALSE);
        assert_int_equal(tok, CK_TRUE);
        assert_int_equal(prv, CK_TRUE);
        assert_int_equal(dec, ec ? CK_FALSE : CK_TRUE);
        if (generated) {
            assert_int_equal(never, CK_TRUE);
            assert_int_equal(always, CK_TRUE);
        }
        assert_int_equal(a[7].ulValueLen, strlen(label));
        assert_memory_equal(lbl, label, strlen(label));
    }
    {
        CK_ATTRIBUTE v[] = {{ec ? CKA_VALUE : CKA_PRIVATE_EXPONENT, value, sizeof(value)}};
        assert_int_equal(f->C_GetAttributeValue(s, priv, v, 1), CKR_ATTRIBUTE_SENSITIVE);
        assert_int_equal(v[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        if (!ec) {
            CK_ATTRIBUTE p1[] = {{CKA_PRIME_1, value, sizeof(value)}};
            assert_int_equal(f->C_GetAttributeValue(s, priv, p1, 1), CKR_ATTRIBUTE_SENSITIVE);
        }
    }
    /* and it cannot be made extractable or wrapped out */
    {
        CK_BBOOL yes = CK_TRUE;
        CK_ATTRIBUTE set[] = {{CKA_EXTRACTABLE, &yes, 1}};
        assert_int_not_equal(f->C_SetAttributeValue(s, priv, set, 1), CKR_OK);
    }
    assert_int_equal(f->C_CloseSession(s), CKR_OK);
}

/* ---- tests ---- */

static void test_open_errors(void **state)
{
    rp_kvhsm *h = NULL;
    char err[256];

    NEED_HSM();
    assert_int_equal(rp_kvhsm_open(SOFTHSM, TOKEN, "4321", &h, err, sizeof(err)), RP_ECRYPTO);
    assert_null(h);
    assert_non_null(strstr(err, "wrong PIN"));
    assert_null(strstr(err, "4321"));
    assert_int_equal(rp_kvhsm_open(SOFTHSM, "no-such-token", PIN, &h, err, sizeof(err)), RP_ENOENT);
    assert_non_null(strstr(err, "no PKCS#11 token labelled \"no-such-token\""));
    assert_null(strstr(err, PIN));
    assert_int_equal(rp_kvhsm_open("/nonexistent/module.so", TOKEN, PIN, &h, err, sizeof(err)),
                     RP_ENOENT);
    assert_non_null(strstr(err, "cannot load"));
    assert_int_equal(rp_kvhsm_open("/etc/hostname", TOKEN, PIN, &h, err, sizeof(err)), RP_EIO);
    assert_int_equal(rp_kvhsm_open(SOFTHSM, TOKEN, "", &h, err, sizeof(err)), RP_EINVAL);
    assert_int_equal(rp_kvhsm_open(NULL, TOKEN, PIN, &h, err, sizeof(err)), RP_EINVAL);
    assert_null(h);
    /* and after all that the right PIN still works */
    h = open_hsm();
    rp_kvhsm_close(h);
    rp_kvhsm_close(NULL);
}

static void test_generate_limits(void **state)
{
    rp_kvhsm *h;
    char ref[RP_KVHSM_REF_MAX], big[RP_KVHSM_LABEL_MAX + 2];
    const char *reason = NULL, *crv = NULL;
    int is_ec = -1, bits = 0;

    NEED_HSM();
    h = open_hsm();
    assert_int_equal(rp_kvhsm_generate_rsa(h, 1024, 0, "x", ref, &reason), RP_EINVAL);
    assert_string_equal(reason, "RSA keys must be 2048, 3072 or 4096 bits");
    assert_int_equal(rp_kvhsm_generate_rsa(h, 2048, 65536, "x", ref, &reason), RP_EINVAL);
    assert_int_equal(rp_kvhsm_generate_rsa(h, 2048, 1, "x", ref, &reason), RP_EINVAL);
    assert_int_equal(rp_kvhsm_generate_rsa(h, 2048, UINT64_C(0x100000001), "x", ref, &reason),
                     RP_EINVAL);
    assert_int_equal(rp_kvhsm_generate_rsa(h, 2048, 0, "", ref, &reason), RP_EINVAL);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(rp_kvhsm_generate_rsa(h, 2048, 0, big, ref, &reason), RP_EINVAL);
    assert_int_equal(rp_kvhsm_generate_ec(h, "P-192", "x", ref, &reason), RP_EUNSUPPORTED);
    assert_int_equal(rp_kvhsm_generate_ec(h, "Ed25519", "x", ref, &reason), RP_EUNSUPPORTED);

    /* e = 3 is honoured */
    assert_int_equal(rp_kvhsm_generate_rsa(h, 2048, 3, "e3", ref, &reason), 0);
    {
        json_t *jwk = NULL;
        assert_int_equal(rp_kvhsm_public_jwk(h, ref, "k", "RSA-HSM", 0, &jwk), 0);
        assert_string_equal(json_string_value(json_object_get(jwk, "e")), "Aw");
        json_decref(jwk);
    }
    assert_int_equal(rp_kvhsm_describe(h, ref, &is_ec, &bits, &crv), 0);
    assert_int_equal(is_ec, 0);
    assert_int_equal(bits, 2048);
    assert_null(crv);
    assert_int_equal(rp_kvhsm_destroy(h, ref), 0);

    /* P-521 and P-256K (SoftHSM 2.6 with OpenSSL has both) */
    assert_int_equal(rp_kvhsm_generate_ec(h, "P-521", "p521", ref, &reason), 0);
    assert_int_equal(rp_kvhsm_describe(h, ref, &is_ec, &bits, &crv), 0);
    assert_int_equal(is_ec, 1);
    assert_int_equal(bits, 521);
    assert_string_equal(crv, "P-521");
    {
        unsigned char dg[64], sig[RP_KVKEY_MAX_OUT];
        size_t sn = 0;
        int valid = 0;
        EVP_PKEY *pk = pkey_of_ref(h, ref, "EC-HSM", NULL);
        RAND_bytes(dg, sizeof(dg));
        assert_int_equal(rp_kvhsm_sign(h, ref, "ES512", dg, 64, sig, sizeof(sig), &sn, &reason), 0);
        assert_int_equal(sn, 132);
        assert_int_equal(rp_kvhsm_verify(h, ref, "ES512", dg, 64, sig, sn, &valid, &reason), 0);
        assert_int_equal(valid, 1);
        assert_true(ossl_verify(pk, "ES512", dg, 64, sig, sn));
        EVP_PKEY_free(pk);
    }
    assert_int_equal(rp_kvhsm_destroy(h, ref), 0);
    reason = NULL;
    {
        int rc = rp_kvhsm_generate_ec(h, "P-256K", "k1", ref, &reason);
        if (rc == RP_EUNSUPPORTED) {
            print_message("note: this SoftHSM has no secp256k1 (%s)\n", reason);
        } else {
            unsigned char dg[32], sig[RP_KVKEY_MAX_OUT];
            size_t sn = 0;
            EVP_PKEY *pk;
            assert_int_equal(rc, 0);
            pk = pkey_of_ref(h, ref, "EC-HSM", NULL);
            RAND_bytes(dg, sizeof(dg));
            assert_int_equal(
                rp_kvhsm_sign(h, ref, "ES256K", dg, 32, sig, sizeof(sig), &sn, &reason), 0);
            assert_int_equal(sn, 64);
            assert_true(ossl_verify(pk, "ES256K", dg, 32, sig, sn));
            EVP_PKEY_free(pk);
            assert_int_equal(rp_kvhsm_destroy(h, ref), 0);
        }
    }
    rp_kvhsm_close(h);
}

static void test_rsa(void **state)
{
    static const char *const encs[] = {"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"};
    static const char *const sigs[] = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"};
    rp_kvhsm *h;
    char ref[RP_KVHSM_REF_MAX];
    const char *reason = NULL;
    unsigned char pt[300], ct[RP_KVKEY_MAX_OUT], ct2[RP_KVKEY_MAX_OUT], out[RP_KVKEY_MAX_OUT];
    unsigned char dg[64], sig[RP_KVKEY_MAX_OUT];
    size_t cn = 0, cn2 = 0, on = 0, sn = 0;
    int valid = -1;
    json_t *jwk = NULL;
    EVP_PKEY *pk;

    NEED_HSM();
    h = open_hsm();
    assert_int_equal(rp_kvhsm_generate_rsa(h, 2048, 0, "vault1/rsa", ref, &reason), 0);
    assert_int_equal(strlen(ref), 38);
    assert_memory_equal(ref, "kvhsm:", 6);
    check_private_object(ref, 0, 1, "vault1/rsa");
    pk = pkey_of_ref(h, ref, "RSA-HSM", &jwk);
    assert_string_equal(json_string_value(json_object_get(jwk, "e")), "AQAB");
    assert_int_equal(json_array_size(json_object_get(jwk, "key_ops")), 6);
    assert_int_equal(EVP_PKEY_get_bits(pk), 2048);
    json_decref(jwk);
    /* a JWK of the other family is refused */
    assert_int_equal(rp_kvhsm_public_jwk(h, ref, "k", "EC-HSM", 0, &jwk), RP_EINVAL);
    assert_int_equal(rp_kvhsm_public_jwk(h, ref, "", "RSA-HSM", 0, &jwk), RP_EINVAL);

    RAND_bytes(pt, sizeof(pt));
    /* every encryption algorithm through the module, both names */
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(rp_kvhsm_encrypt(h, ref, encs[i], pt, 32, ct, sizeof(ct), &cn, &reason),
                         0);
        assert_int_equal(cn, 256);
        assert_int_equal(rp_kvhsm_wrap_key(h, ref, encs[i], pt, 32, ct2, sizeof(ct2), &cn2, NULL),
                         0);
        assert_memory_not_equal(ct, ct2, 256); /* randomised */
        if (i == 2) {
            reason = NULL;
            assert_int_equal(
                rp_kvhsm_decrypt(h, ref, encs[i], ct, cn, out, sizeof(out), &on, &reason),
                RP_EUNSUPPORTED);
            assert_string_equal(reason, "RSA1_5 decryption is not offered for HSM-protected keys");
            assert_int_equal(
                rp_kvhsm_unwrap_key(h, ref, encs[i], ct2, cn2, out, sizeof(out), &on, &reason),
                RP_EUNSUPPORTED);
            /* the ciphertext is valid PKCS#1 v1.5: OpenSSL cannot check it without the private
             * key, which is the point; the refusal does not depend on the ciphertext */
            continue;
        }
        assert_int_equal(rp_kvhsm_decrypt(h, ref, encs[i], ct, cn, out, sizeof(out), &on, &reason),
                         0);
        assert_int_equal(on, 32);
        assert_memory_equal(out, pt, 32);
        assert_int_equal(
            rp_kvhsm_unwrap_key(h, ref, encs[i], ct2, cn2, out, sizeof(out), &on, &reason), 0);
        assert_memory_equal(out, pt, 32);
        /* a corrupted ciphertext does not decrypt */
        ct[100] ^= 1;
        reason = NULL;
        assert_int_equal(rp_kvhsm_decrypt(h, ref, encs[i], ct, cn, out, sizeof(out), &on, &reason),
                         RP_ECRYPTO);
        assert_string_equal(reason, "decryption failed");
        /* the ciphertext must be exactly the modulus size; the output must fit the key */
        assert_int_equal(
            rp_kvhsm_decrypt(h, ref, encs[i], ct, cn - 1, out, sizeof(out), &on, &reason),
            RP_EINVAL);
        assert_string_equal(reason, "the ciphertext length does not match the key size");
        assert_int_equal(rp_kvhsm_decrypt(h, ref, encs[i], ct2, cn2, out, 255, &on, &reason),
                         RP_EINVAL);
    }
    /* plaintext limits: k-42 (OAEP), k-66 (OAEP-256), k-11 (RSA1_5); empty is allowed */
    assert_int_equal(rp_kvhsm_encrypt(h, ref, "RSA-OAEP", pt, 214, ct, sizeof(ct), &cn, NULL), 0);
    assert_int_equal(rp_kvhsm_decrypt(h, ref, "RSA-OAEP", ct, cn, out, sizeof(out), &on, NULL), 0);
    assert_int_equal(on, 214);
    assert_memory_equal(out, pt, 214);
    assert_int_equal(rp_kvhsm_encrypt(h, ref, "RSA-OAEP", pt, 215, ct, sizeof(ct), &cn, &reason),
                     RP_EINVAL);
    assert_string_equal(reason, "the plaintext is too long for the key and algorithm");
    assert_int_equal(rp_kvhsm_encrypt(h, ref, "RSA-OAEP-256", pt, 190, ct, sizeof(ct), &cn, NULL),
                     0);
    assert_int_equal(rp_kvhsm_decrypt(h, ref, "RSA-OAEP-256", ct, cn, out, sizeof(out), &on, NULL),
                     0);
    assert_int_equal(on, 190);
    assert_memory_equal(out, pt, 190);
    assert_int_equal(rp_kvhsm_encrypt(h, ref, "RSA-OAEP-256", pt, 191, ct, sizeof(ct), &cn, NULL),
                     RP_EINVAL);
    assert_int_equal(rp_kvhsm_encrypt(h, ref, "RSA1_5", pt, 245, ct, sizeof(ct), &cn, NULL), 0);
    assert_int_equal(rp_kvhsm_encrypt(h, ref, "RSA1_5", pt, 246, ct, sizeof(ct), &cn, NULL),
                     RP_EINVAL);
    assert_int_equal(rp_kvhsm_encrypt(h, ref, "RSA-OAEP", NULL, 0, ct, sizeof(ct), &cn, NULL), 0);
    assert_int_equal(rp_kvhsm_decrypt(h, ref, "RSA-OAEP", ct, cn, out, sizeof(out), &on, NULL), 0);
    assert_int_equal(on, 0);

    /* interop: OpenSSL on the public JWK encrypts (Node's OAEP: SHA-1 set explicitly, and
     * SHA-256), the token unwraps */
    cn = ossl_oaep_encrypt(pk, "SHA1", pt, 32, ct);
    assert_int_equal(rp_kvhsm_unwrap_key(h, ref, "RSA-OAEP", ct, cn, out, sizeof(out), &on, NULL),
                     0);
    assert_int_equal(on, 32);
    assert_memory_equal(out, pt, 32);
    /* ... and not under the other hash */
    assert_int_equal(
        rp_kvhsm_unwrap_key(h, ref, "RSA-OAEP-256", ct, cn, out, sizeof(out), &on, NULL),
        RP_ECRYPTO);
    cn = ossl_oaep_encrypt(pk, "SHA256", pt, 32, ct);
    assert_int_equal(
        rp_kvhsm_unwrap_key(h, ref, "RSA-OAEP-256", ct, cn, out, sizeof(out), &on, NULL), 0);
    assert_int_equal(on, 32);
    assert_memory_equal(out, pt, 32);
    assert_int_equal(rp_kvhsm_unwrap_key(h, ref, "RSA-OAEP", ct, cn, out, sizeof(out), &on, NULL),
                     RP_ECRYPTO);
    /* a ciphertext >= n */
    memset(ct, 0xff, 256);
    assert_int_equal(
        rp_kvhsm_unwrap_key(h, ref, "RSA-OAEP-256", ct, 256, out, sizeof(out), &on, &reason),
        RP_ECRYPTO);
    assert_int_equal(rp_kvhsm_unwrap_key(h, ref, "RSA-OAEP", ct, 256, out, sizeof(out), &on, NULL),
                     RP_ECRYPTO);

    /* signatures: in the token, verified here and by OpenSSL directly */
    for (size_t i = 0; i < 6; i++) {
        size_t dn = strstr(sigs[i], "384") ? 48 : strstr(sigs[i], "512") ? 64 : 32;
        RAND_bytes(dg, sizeof(dg));
        assert_int_equal(rp_kvhsm_sign(h, ref, sigs[i], dg, dn, sig, sizeof(sig), &sn, &reason), 0);
        assert_int_equal(sn, 256);
        assert_true(ossl_verify(pk, sigs[i], dg, dn, sig, sn));
        assert_int_equal(rp_kvhsm_verify(h, ref, sigs[i], dg, dn, sig, sn, &valid, &reason), 0);
        assert_int_equal(valid, 1);
        sig[7] ^= 0x40;
        assert_int_equal(rp_kvhsm_verify(h, ref, sigs[i], dg, dn, sig, sn, &valid, &reason), 0);
        assert_int_equal(valid, 0);
        assert_int_equal(rp_kvhsm_verify(h, ref, sigs[i], dg, dn, sig, sn - 1, &valid, &reason), 0);
        assert_int_equal(valid, 0);
        /* the wrong digest length */
        assert_int_equal(rp_kvhsm_sign(h, ref, sigs[i], dg, dn - 1, sig, sizeof(sig), &sn, &reason),
                         RP_EINVAL);
        assert_string_equal(reason, "the digest length does not match the algorithm");
        assert_int_equal(rp_kvhsm_verify(h, ref, sigs[i], dg, dn + 1, sig, 256, &valid, &reason),
                         RP_EINVAL);
    }
    /* RS256 is deterministic */
    {
        unsigned char s2[RP_KVKEY_MAX_OUT];
        size_t sn2 = 0;
        assert_int_equal(rp_kvhsm_sign(h, ref, "RS256", dg, 32, sig, sizeof(sig), &sn, NULL), 0);
        assert_int_equal(rp_kvhsm_sign(h, ref, "RS256", dg, 32, s2, sizeof(s2), &sn2, NULL), 0);
        assert_memory_equal(sig, s2, 256);
    }
    /* wrong key type, wrong kind of algorithm, unknown algorithm, short output */
    assert_int_equal(rp_kvhsm_sign(h, ref, "ES256", dg, 32, sig, sizeof(sig), &sn, &reason),
                     RP_EINVAL);
    assert_string_equal(reason, "the key type does not support this algorithm");
    assert_int_equal(rp_kvhsm_encrypt(h, ref, "A256KW", pt, 32, ct, sizeof(ct), &cn, &reason),
                     RP_EINVAL);
    assert_string_equal(reason, "the key type does not support this algorithm");
    assert_int_equal(rp_kvhsm_sign(h, ref, "RSA-OAEP", dg, 32, sig, sizeof(sig), &sn, &reason),
                     RP_EINVAL);
    assert_string_equal(reason, "the algorithm is not a signature algorithm");
    assert_int_equal(rp_kvhsm_decrypt(h, ref, "RS256", ct, 256, out, sizeof(out), &on, &reason),
                     RP_EINVAL);
    assert_string_equal(reason, "the algorithm is not an encryption algorithm");
    assert_int_equal(rp_kvhsm_sign(h, ref, "RS999", dg, 32, sig, sizeof(sig), &sn, &reason),
                     RP_EINVAL);
    assert_string_equal(reason, "unknown algorithm");
    assert_int_equal(rp_kvhsm_sign(h, ref, "RS256", dg, 32, sig, 255, &sn, &reason), RP_EINVAL);
    assert_string_equal(reason, "the output buffer is too small");
    assert_int_equal(rp_kvhsm_encrypt(h, ref, "RSA-OAEP", pt, 32, ct, 255, &cn, &reason),
                     RP_EINVAL);
    /* malformed references */
    assert_int_equal(rp_kvhsm_sign(h, "kvhsm:zz", "RS256", dg, 32, sig, sizeof(sig), &sn, &reason),
                     RP_EINVAL);
    assert_int_equal(rp_kvhsm_sign(h, "kvhsm:0123456789abcdef0123456789abcdeg", "RS256", dg, 32,
                                   sig, sizeof(sig), &sn, &reason),
                     RP_EINVAL);
    assert_int_equal(rp_kvhsm_sign(h, NULL, "RS256", dg, 32, sig, sizeof(sig), &sn, &reason),
                     RP_EINVAL);
    /* a well-formed reference to nothing */
    assert_int_equal(rp_kvhsm_sign(h, "kvhsm:0123456789abcdef0123456789abcdef", "RS256", dg, 32,
                                   sig, sizeof(sig), &sn, &reason),
                     RP_ENOENT);
    assert_string_equal(reason, "the key was not found in the HSM");

    EVP_PKEY_free(pk);
    assert_int_equal(rp_kvhsm_destroy(h, ref), 0);
    rp_kvhsm_close(h);
}

static void ec_case(rp_kvhsm *h, const char *crv, const char *alg, size_t dn, size_t width)
{
    char ref[RP_KVHSM_REF_MAX];
    const char *reason = NULL;
    unsigned char dg[64], sig[RP_KVKEY_MAX_OUT], s2[RP_KVKEY_MAX_OUT], out[RP_KVKEY_MAX_OUT];
    size_t sn = 0, sn2 = 0, on = 0;
    int valid = -1, bits = 0, is_ec = 0;
    json_t *jwk = NULL;
    EVP_PKEY *pk;

    assert_int_equal(rp_kvhsm_generate_ec(h, crv, "vault1/ec", ref, &reason), 0);
    check_private_object(ref, 1, 1, "vault1/ec");
    pk = pkey_of_ref(h, ref, "EC-HSM", &jwk);
    assert_string_equal(json_string_value(json_object_get(jwk, "crv")), crv);
    json_decref(jwk);
    assert_int_equal(rp_kvhsm_describe(h, ref, &is_ec, &bits, NULL), 0);
    assert_int_equal(is_ec, 1);
    assert_int_equal(bits, (int)width * 8);

    RAND_bytes(dg, sizeof(dg));
    assert_int_equal(rp_kvhsm_sign(h, ref, alg, dg, dn, sig, sizeof(sig), &sn, &reason), 0);
    assert_int_equal(sn, 2 * width); /* raw r||s */
    assert_true(ossl_verify(pk, alg, dg, dn, sig, sn));
    assert_int_equal(rp_kvhsm_verify(h, ref, alg, dg, dn, sig, sn, &valid, &reason), 0);
    assert_int_equal(valid, 1);
    /* randomised, and both verify */
    assert_int_equal(rp_kvhsm_sign(h, ref, alg, dg, dn, s2, sizeof(s2), &sn2, &reason), 0);
    assert_memory_not_equal(sig, s2, sn);
    assert_true(ossl_verify(pk, alg, dg, dn, s2, sn2));
    /* tampered, truncated, DER instead of r||s */
    sig[3] ^= 1;
    assert_int_equal(rp_kvhsm_verify(h, ref, alg, dg, dn, sig, sn, &valid, &reason), 0);
    assert_int_equal(valid, 0);
    assert_int_equal(rp_kvhsm_verify(h, ref, alg, dg, dn, s2, sn2 - 1, &valid, &reason), 0);
    assert_int_equal(valid, 0);
    /* wrong digest length, curve, key type */
    assert_int_equal(rp_kvhsm_sign(h, ref, alg, dg, dn + 1, sig, sizeof(sig), &sn, &reason),
                     RP_EINVAL);
    assert_string_equal(reason, "the digest length does not match the algorithm");
    assert_int_equal(rp_kvhsm_sign(h, ref, strcmp(alg, "ES256") == 0 ? "ES384" : "ES256", dg, 32,
                                   sig, sizeof(sig), &sn, &reason),
                     RP_EINVAL);
    assert_string_equal(reason, "the key type does not support this algorithm");
    assert_int_equal(rp_kvhsm_sign(h, ref, "RS256", dg, 32, sig, sizeof(sig), &sn, &reason),
                     RP_EINVAL);
    assert_int_equal(rp_kvhsm_encrypt(h, ref, "RSA-OAEP", dg, 16, out, sizeof(out), &on, &reason),
                     RP_EINVAL);
    assert_string_equal(reason, "the key type does not support this algorithm");
    assert_int_equal(rp_kvhsm_decrypt(h, ref, "RSA-OAEP", out, 64, out, sizeof(out), &on, &reason),
                     RP_EINVAL);
    assert_int_equal(rp_kvhsm_sign(h, ref, alg, dg, dn, sig, 2 * width - 1, &sn, &reason),
                     RP_EINVAL);
    assert_int_equal(rp_kvhsm_public_jwk(h, ref, "k", "RSA-HSM", 0, &jwk), RP_EINVAL);
    EVP_PKEY_free(pk);
    assert_int_equal(rp_kvhsm_destroy(h, ref), 0);
}

static void test_ec(void **state)
{
    rp_kvhsm *h;

    NEED_HSM();
    h = open_hsm();
    ec_case(h, "P-256", "ES256", 32, 32);
    ec_case(h, "P-384", "ES384", 48, 48);
    rp_kvhsm_close(h);
}

static void test_import(void **state)
{
    rp_kvhsm *h;
    rp_kvkey *rsa = NULL, *ec = NULL;
    char rref[RP_KVHSM_REF_MAX], eref[RP_KVHSM_REF_MAX];
    const char *reason = NULL;
    unsigned char pt[32], ct[RP_KVKEY_MAX_OUT], out[RP_KVKEY_MAX_OUT], dg[32];
    unsigned char s1[RP_KVKEY_MAX_OUT], s2[RP_KVKEY_MAX_OUT];
    size_t cn = 0, on = 0, n1 = 0, n2 = 0;
    int valid = 0;
    json_t *a = NULL, *b = NULL;

    NEED_HSM();
    h = open_hsm();
    assert_int_equal(rp_kvkey_generate_rsa(2048, 0, &rsa, NULL), 0);
    assert_int_equal(rp_kvkey_generate_ec("P-256", &ec, NULL), 0);
    assert_int_equal(rp_kvhsm_import(h, rsa, "imported/rsa", rref, &reason), 0);
    assert_int_equal(rp_kvhsm_import(h, ec, "imported/ec", eref, &reason), 0);
    assert_int_equal(rp_kvhsm_import(h, rsa, "", rref, &reason), RP_EINVAL);
    check_private_object(rref, 0, 0, "imported/rsa");
    check_private_object(eref, 1, 0, "imported/ec");

    /* the same public JWK from either module */
    assert_int_equal(rp_kvkey_public_jwk(rsa, "kid", "RSA-HSM", RP_KVOP_RSA_ALL, &a), 0);
    assert_int_equal(rp_kvhsm_public_jwk(h, rref, "kid", "RSA-HSM", RP_KVOP_RSA_ALL, &b), 0);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    assert_int_equal(rp_kvkey_public_jwk(ec, "kid", "EC-HSM", RP_KVOP_EC_ALL, &a), 0);
    assert_int_equal(rp_kvhsm_public_jwk(h, eref, "kid", "EC-HSM", RP_KVOP_EC_ALL, &b), 0);
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);

    RAND_bytes(pt, sizeof(pt));
    RAND_bytes(dg, sizeof(dg));
    /* software encrypts, the token decrypts */
    assert_int_equal(rp_kvkey_wrap_key(rsa, "RSA-OAEP-256", pt, 32, ct, sizeof(ct), &cn, NULL), 0);
    assert_int_equal(
        rp_kvhsm_unwrap_key(h, rref, "RSA-OAEP-256", ct, cn, out, sizeof(out), &on, &reason), 0);
    assert_memory_equal(out, pt, 32);
    assert_int_equal(rp_kvkey_encrypt(rsa, "RSA-OAEP", pt, 32, ct, sizeof(ct), &cn, NULL), 0);
    assert_int_equal(rp_kvhsm_decrypt(h, rref, "RSA-OAEP", ct, cn, out, sizeof(out), &on, &reason),
                     0);
    assert_memory_equal(out, pt, 32);
    /* the token encrypts, software decrypts */
    assert_int_equal(rp_kvhsm_encrypt(h, rref, "RSA1_5", pt, 32, ct, sizeof(ct), &cn, NULL), 0);
    assert_int_equal(rp_kvkey_decrypt(rsa, "RSA1_5", ct, cn, out, sizeof(out), &on, NULL), 0);
    assert_int_equal(on, 32);
    assert_memory_equal(out, pt, 32);
    /* RS256 is deterministic: the token's signature is the software's, byte for byte */
    assert_int_equal(rp_kvhsm_sign(h, rref, "RS256", dg, 32, s1, sizeof(s1), &n1, &reason), 0);
    assert_int_equal(rp_kvkey_sign(rsa, "RS256", dg, 32, s2, sizeof(s2), &n2, NULL), 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(s1, s2, n1);
    assert_int_equal(rp_kvhsm_sign(h, rref, "PS256", dg, 32, s1, sizeof(s1), &n1, &reason), 0);
    assert_int_equal(rp_kvkey_verify(rsa, "PS256", dg, 32, s1, n1, &valid, NULL), 0);
    assert_int_equal(valid, 1);
    assert_int_equal(rp_kvkey_sign(rsa, "PS384", dg, 32, s1, sizeof(s1), &n1, NULL), RP_EINVAL);
    /* ES256 both ways */
    assert_int_equal(rp_kvhsm_sign(h, eref, "ES256", dg, 32, s1, sizeof(s1), &n1, &reason), 0);
    assert_int_equal(rp_kvkey_verify(ec, "ES256", dg, 32, s1, n1, &valid, NULL), 0);
    assert_int_equal(valid, 1);
    assert_int_equal(rp_kvkey_sign(ec, "ES256", dg, 32, s2, sizeof(s2), &n2, NULL), 0);
    valid = 0;
    assert_int_equal(rp_kvhsm_verify(h, eref, "ES256", dg, 32, s2, n2, &valid, &reason), 0);
    assert_int_equal(valid, 1);

    assert_int_equal(rp_kvhsm_destroy(h, rref), 0);
    assert_int_equal(rp_kvhsm_destroy(h, eref), 0);
    rp_kvkey_free(rsa);
    rp_kvkey_free(ec);
    rp_kvhsm_close(h);
}

static void test_destroy(void **state)
{
    rp_kvhsm *h, *h2;
    char ref[RP_KVHSM_REF_MAX], ref2[RP_KVHSM_REF_MAX];
    const char *reason = NULL;
    unsigned char dg[32] = {1}, sig[RP_KVKEY_MAX_OUT], ct[RP_KVKEY_MAX_OUT];
    size_t sn = 0, cn = 0;
    int valid = 0;
    json_t *jwk = NULL;

    NEED_HSM();
    h = open_hsm();
    assert_int_equal(rp_kvhsm_generate_ec(h, "P-256", "gone", ref, &reason), 0);
    assert_int_equal(rp_kvhsm_sign(h, ref, "ES256", dg, 32, sig, sizeof(sig), &sn, &reason), 0);
    assert_int_equal(rp_kvhsm_destroy(h, ref), 0);
    {
        CK_FUNCTION_LIST_PTR f = p11_funcs();
        CK_SESSION_HANDLE s = p11_session(f);
        assert_int_equal(p11_find(f, s, CKO_PRIVATE_KEY, ref, NULL), 0);
        assert_int_equal(p11_find(f, s, CKO_PUBLIC_KEY, ref, NULL), 0);
        assert_int_equal(f->C_CloseSession(s), CKR_OK);
    }
    assert_int_equal(rp_kvhsm_sign(h, ref, "ES256", dg, 32, sig, sizeof(sig), &sn, &reason),
                     RP_ENOENT);
    assert_int_equal(rp_kvhsm_verify(h, ref, "ES256", dg, 32, sig, sn, &valid, &reason), RP_ENOENT);
    assert_int_equal(rp_kvhsm_public_jwk(h, ref, "k", "EC-HSM", 0, &jwk), RP_ENOENT);
    assert_int_equal(rp_kvhsm_describe(h, ref, NULL, NULL, NULL), RP_ENOENT);
    assert_int_equal(rp_kvhsm_destroy(h, ref), RP_ENOENT);
    assert_int_equal(rp_kvhsm_destroy(h, "nope"), RP_EINVAL);

    /* destroyed through another handle while this one has it cached */
    assert_int_equal(rp_kvhsm_generate_rsa(h, 2048, 0, "gone2", ref2, &reason), 0);
    assert_int_equal(rp_kvhsm_sign(h, ref2, "RS256", dg, 32, sig, sizeof(sig), &sn, &reason), 0);
    h2 = open_hsm();
    assert_int_equal(rp_kvhsm_destroy(h2, ref2), 0);
    rp_kvhsm_close(h2);
    assert_int_equal(rp_kvhsm_sign(h, ref2, "RS256", dg, 32, sig, sizeof(sig), &sn, &reason),
                     RP_ENOENT);
    assert_int_equal(rp_kvhsm_decrypt(h, ref2, "RSA-OAEP", ct, 256, sig, sizeof(sig), &cn, &reason),
                     RP_ENOENT);
    rp_kvhsm_close(h);
}

static void test_persistence(void **state)
{
    rp_kvhsm *h;
    char rref[RP_KVHSM_REF_MAX], eref[RP_KVHSM_REF_MAX];
    unsigned char pt[32], ct[RP_KVKEY_MAX_OUT], out[RP_KVKEY_MAX_OUT], dg[48];
    unsigned char sig[RP_KVKEY_MAX_OUT];
    size_t cn = 0, on = 0, sn = 0;
    json_t *j1 = NULL, *j2 = NULL, *e1 = NULL, *e2 = NULL;
    EVP_PKEY *pk;

    NEED_HSM();
    h = open_hsm();
    assert_int_equal(rp_kvhsm_generate_rsa(h, 2048, 0, "persist/rsa", rref, NULL), 0);
    assert_int_equal(rp_kvhsm_generate_ec(h, "P-384", "persist/ec", eref, NULL), 0);
    assert_int_equal(rp_kvhsm_public_jwk(h, rref, "k", "RSA-HSM", 0, &j1), 0);
    assert_int_equal(rp_kvhsm_public_jwk(h, eref, "k", "EC-HSM", 0, &e1), 0);
    RAND_bytes(pt, sizeof(pt));
    RAND_bytes(dg, sizeof(dg));
    assert_int_equal(rp_kvhsm_wrap_key(h, rref, "RSA-OAEP-256", pt, 32, ct, sizeof(ct), &cn, NULL),
                     0);
    rp_kvhsm_close(h); /* the last handle: the module is finalised */

    h = open_hsm();
    assert_int_equal(rp_kvhsm_public_jwk(h, rref, "k", "RSA-HSM", 0, &j2), 0);
    assert_int_equal(rp_kvhsm_public_jwk(h, eref, "k", "EC-HSM", 0, &e2), 0);
    assert_true(json_equal(j1, j2));
    assert_true(json_equal(e1, e2));
    assert_int_equal(
        rp_kvhsm_unwrap_key(h, rref, "RSA-OAEP-256", ct, cn, out, sizeof(out), &on, NULL), 0);
    assert_int_equal(on, 32);
    assert_memory_equal(out, pt, 32);
    assert_int_equal(rp_kvhsm_sign(h, eref, "ES384", dg, 48, sig, sizeof(sig), &sn, NULL), 0);
    pk = pkey_from_jwk(e1);
    assert_true(ossl_verify(pk, "ES384", dg, 48, sig, sn));
    EVP_PKEY_free(pk);
    assert_int_equal(rp_kvhsm_destroy(h, rref), 0);
    assert_int_equal(rp_kvhsm_destroy(h, eref), 0);
    json_decref(j1);
    json_decref(j2);
    json_decref(e1);
    json_decref(e2);
    rp_kvhsm_close(h);
}

typedef struct worker {
    rp_kvhsm *h;
    const char *rref, *eref;
    int failures;
} worker;

static void *sign_worker(void *arg)
{
    worker *w = arg;
    unsigned char dg[32], sig[RP_KVKEY_MAX_OUT], pt[32], ct[RP_KVKEY_MAX_OUT],
        out[RP_KVKEY_MAX_OUT];
    size_t sn = 0, cn = 0, on = 0;
    int valid = 0;

    for (int i = 0; i < 25; i++) {
        RAND_bytes(dg, sizeof(dg));
        RAND_bytes(pt, sizeof(pt));
        if (rp_kvhsm_sign(w->h, w->rref, i % 2 ? "RS256" : "PS256", dg, 32, sig, sizeof(sig), &sn,
                          NULL) != 0 ||
            rp_kvhsm_verify(w->h, w->rref, i % 2 ? "RS256" : "PS256", dg, 32, sig, sn, &valid,
                            NULL) != 0 ||
            !valid)
            w->failures++;
        if (rp_kvhsm_sign(w->h, w->eref, "ES256", dg, 32, sig, sizeof(sig), &sn, NULL) != 0 ||
            rp_kvhsm_verify(w->h, w->eref, "ES256", dg, 32, sig, sn, &valid, NULL) != 0 || !valid)
            w->failures++;
        if (rp_kvhsm_wrap_key(w->h, w->rref, "RSA-OAEP-256", pt, 32, ct, sizeof(ct), &cn, NULL) !=
                0 ||
            rp_kvhsm_unwrap_key(w->h, w->rref, "RSA-OAEP-256", ct, cn, out, sizeof(out), &on,
                                NULL) != 0 ||
            on != 32 || memcmp(out, pt, 32) != 0)
            w->failures++;
    }
    return NULL;
}

static void test_concurrency(void **state)
{
    rp_kvhsm *h;
    char rref[RP_KVHSM_REF_MAX], eref[RP_KVHSM_REF_MAX];
    pthread_t t[4];
    worker w[4];

    NEED_HSM();
    h = open_hsm();
    assert_int_equal(rp_kvhsm_generate_rsa(h, 2048, 0, "threads/rsa", rref, NULL), 0);
    assert_int_equal(rp_kvhsm_generate_ec(h, "P-256", "threads/ec", eref, NULL), 0);
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){h, rref, eref, 0};
        assert_int_equal(pthread_create(&t[i], NULL, sign_worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(rp_kvhsm_destroy(h, rref), 0);
    assert_int_equal(rp_kvhsm_destroy(h, eref), 0);
    rp_kvhsm_close(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_errors), cmocka_unit_test(test_generate_limits),
        cmocka_unit_test(test_rsa),         cmocka_unit_test(test_ec),
        cmocka_unit_test(test_import),      cmocka_unit_test(test_destroy),
        cmocka_unit_test(test_persistence), cmocka_unit_test(test_concurrency),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
