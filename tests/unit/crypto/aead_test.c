/*
 * aead_test.c - the RPE1 envelope: round trips of several sizes, the layout, fresh nonces, and
 * every way an envelope must fail to open (wrong key or AAD, any flipped bit, truncation, bad
 * magic), with the output wiped and left at its previous length on failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/err.h"
#include "crypto/aead.h"

#include <string.h>

static const unsigned char key1[32] = "0123456789abcdef0123456789abcde";
static const unsigned char key2[32] = "0123456789abcdef0123456789abcdX";
static const char aad[] = "vault/kv1/secrets/db-password/v3";

static void seal(const void *pt, size_t n, rp_buf *env)
{
    rp_buf_init(env, n + RP_AEAD_OVERHEAD);
    assert_int_equal(rp_aead_seal(key1, aad, strlen(aad), pt, n, env), 0);
    assert_int_equal(env->len, n + RP_AEAD_OVERHEAD);
}

/* Opening must fail with want, leave out empty and leave no plaintext behind. */
static void open_fails(const unsigned char *key, const char *a, const void *env, size_t n, int want)
{
    rp_buf out;

    rp_buf_init(&out, 1 << 20);
    assert_int_equal(rp_aead_open(key, a, a ? strlen(a) : 0, env, n, &out), want);
    assert_int_equal(out.len, 0);
    if (out.data != NULL) {
        for (size_t i = 0; i + RP_AEAD_OVERHEAD < n; i++)
            assert_int_equal(out.data[i], 0);
    }
    rp_buf_free(&out);
}

static void test_roundtrip(void **state)
{
    static const size_t sizes[] = {0, 1, 15, 16, 17, 1000, 100000};
    unsigned char *pt = rp_malloc(100000);

    assert_non_null(pt);
    for (size_t i = 0; i < 100000; i++)
        pt[i] = (unsigned char)(i * 7 + 3);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        rp_buf env, out;
        seal(pt, sizes[s], &env);
        assert_memory_equal(env.data, "RPE1", 4);
        if (sizes[s] >= 16)
            assert_memory_not_equal(env.data + 16, pt, 16);
        rp_buf_init(&out, sizes[s]);
        assert_int_equal(rp_aead_open(key1, aad, strlen(aad), env.data, env.len, &out), 0);
        assert_int_equal(out.len, sizes[s]);
        if (sizes[s] > 0)
            assert_memory_equal(out.data, pt, sizes[s]);
        rp_buf_free_secret(&out);
        rp_buf_free(&env);
    }
    rp_free(pt);
}

static void test_empty_plaintext_and_no_aad(void **state)
{
    rp_buf env, out;

    rp_buf_init(&env, 64);
    rp_buf_init(&out, 64);
    assert_int_equal(rp_aead_seal(key1, NULL, 0, NULL, 0, &env), 0);
    assert_int_equal(env.len, RP_AEAD_OVERHEAD);
    assert_int_equal(rp_aead_open(key1, NULL, 0, env.data, env.len, &out), 0);
    assert_int_equal(out.len, 0);
    /* An empty plaintext is still authenticated: another key or an AAD fails. */
    open_fails(key2, NULL, env.data, env.len, RP_ECRYPTO);
    open_fails(key1, "x", env.data, env.len, RP_ECRYPTO);
    rp_buf_free(&env);
    rp_buf_free(&out);
}

static void test_nonces_differ(void **state)
{
    rp_buf a, b;

    seal("same", 4, &a);
    seal("same", 4, &b);
    assert_memory_not_equal(a.data + 4, b.data + 4, RP_AEAD_NONCE_LEN);
    assert_memory_not_equal(a.data + 16, b.data + 16, 4 + RP_AEAD_TAG_LEN);
    rp_buf_free(&a);
    rp_buf_free(&b);
}

static void test_wrong_key_and_aad(void **state)
{
    rp_buf env;

    seal("attack at dawn", 14, &env);
    open_fails(key2, aad, env.data, env.len, RP_ECRYPTO);
    open_fails(key1, "vault/kv1/secrets/db-password/v4", env.data, env.len, RP_ECRYPTO);
    open_fails(key1, NULL, env.data, env.len, RP_ECRYPTO);
    open_fails(key1, "vault/kv1/secrets/db-password/v3 ", env.data, env.len, RP_ECRYPTO);
    rp_buf_free(&env);
}

static void test_every_bit_flip_fails(void **state)
{
    rp_buf env;

    seal("0123456789", 10, &env);
    for (size_t i = 0; i < env.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            env.data[i] ^= (char)(1 << bit);
            /* Magic bytes are a parse error, nonce/ciphertext/tag an authentication error. */
            open_fails(key1, aad, env.data, env.len,
                       i < RP_AEAD_MAGIC_LEN ? RP_EPARSE : RP_ECRYPTO);
            env.data[i] ^= (char)(1 << bit);
        }
    }
    rp_buf_free(&env);
}

static void test_truncated_and_bad_magic(void **state)
{
    rp_buf env;

    seal("0123456789", 10, &env);
    /* Still long enough to parse: the tag no longer matches. */
    for (size_t n = RP_AEAD_OVERHEAD; n < env.len; n++)
        open_fails(key1, aad, env.data, n, RP_ECRYPTO);
    for (size_t n = 0; n < RP_AEAD_OVERHEAD; n++)
        open_fails(key1, aad, env.data, n, RP_EPARSE);
    /* An extra byte at the end shifts the tag. */
    {
        rp_buf longer;
        rp_buf_init(&longer, 100);
        assert_int_equal(rp_buf_append(&longer, env.data, env.len), 0);
        assert_int_equal(rp_buf_append(&longer, "x", 1), 0);
        open_fails(key1, aad, longer.data, longer.len, RP_ECRYPTO);
        rp_buf_free(&longer);
    }
    memcpy(env.data, "RPE2", 4);
    open_fails(key1, aad, env.data, env.len, RP_EPARSE);
    open_fails(key1, aad, NULL, 0, RP_EPARSE);
    rp_buf_free(&env);
}

static void test_appends_and_limits(void **state)
{
    rp_buf env, out;

    /* Both calls append, keeping what the buffer held. */
    rp_buf_init(&env, 100);
    assert_int_equal(rp_buf_append(&env, "hdr:", 4), 0);
    assert_int_equal(rp_aead_seal(key1, aad, strlen(aad), "abc", 3, &env), 0);
    assert_int_equal(env.len, 4 + 3 + RP_AEAD_OVERHEAD);
    rp_buf_init(&out, 100);
    assert_int_equal(rp_buf_append(&out, "pt:", 3), 0);
    assert_int_equal(rp_aead_open(key1, aad, strlen(aad), env.data + 4, env.len - 4, &out), 0);
    assert_int_equal(out.len, 6);
    assert_memory_equal(out.data, "pt:abc", 6);
    /* A failed open leaves the earlier content alone. */
    assert_int_equal(rp_aead_open(key2, aad, strlen(aad), env.data + 4, env.len - 4, &out),
                     RP_ECRYPTO);
    assert_int_equal(out.len, 6);
    assert_memory_equal(out.data, "pt:abc", 6);
    rp_buf_free(&out);

    /* The output's maximum is respected, and the buffer is left as it was. */
    rp_buf_init(&out, 2);
    assert_int_equal(rp_aead_open(key1, aad, strlen(aad), env.data + 4, env.len - 4, &out),
                     RP_ETOOBIG);
    assert_int_equal(out.len, 0);
    rp_buf_free(&out);
    rp_buf_init(&out, RP_AEAD_OVERHEAD + 2);
    assert_int_equal(rp_aead_seal(key1, NULL, 0, "abc", 3, &out), RP_ETOOBIG);
    assert_int_equal(out.len, 0);
    rp_buf_free(&out);

    rp_buf_init(&out, 100);
    assert_int_equal(rp_aead_seal(key1, NULL, 5, "abc", 3, &out), RP_EINVAL);
    assert_int_equal(rp_aead_seal(key1, aad, strlen(aad), NULL, 3, &out), RP_EINVAL);
    assert_int_equal(rp_aead_seal(NULL, aad, strlen(aad), "abc", 3, &out), RP_EINVAL);
    assert_int_equal(rp_aead_seal(key1, aad, RP_AEAD_MAX_AAD + 1, "abc", 3, &out), RP_ETOOBIG);
    assert_int_equal(out.len, 0);
    rp_buf_free(&out);
    rp_buf_free(&env);
}

static void test_alloc_failure(void **state)
{
    rp_buf env, out;

    seal("secret", 6, &env);
    rp_buf_init(&out, 100);
    rp_alloc_fail_after(0);
    assert_int_equal(rp_aead_open(key1, aad, strlen(aad), env.data, env.len, &out), RP_ENOMEM);
    rp_alloc_fail_after(-1);
    assert_int_equal(out.len, 0);
    rp_buf_free(&out);
    rp_buf_free(&env);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_empty_plaintext_and_no_aad),
        cmocka_unit_test(test_nonces_differ),
        cmocka_unit_test(test_wrong_key_and_aad),
        cmocka_unit_test(test_every_bit_flip_fails),
        cmocka_unit_test(test_truncated_and_bad_magic),
        cmocka_unit_test(test_appends_and_limits),
        cmocka_unit_test(test_alloc_failure),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
