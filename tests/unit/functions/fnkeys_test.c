/*
 * fnkeys_test.c - function keys (src/functions/fnkeys.c): generated values, names and values
 * set by hand, which level a presented key grants (master, system, host and function keys,
 * the order among them when one value is set twice) whether the stored keys' digests come made
 * or are computed on the call, and the authorization rule of the Functions host (admin
 * satisfies all, otherwise the levels must be equal).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "functions/fnkeys.h"

#include <string.h>

static void test_generate(void **state)
{
    char a[RP_FN_KEY_LEN + 1], b[RP_FN_KEY_LEN + 1];

    (void)state;
    assert_int_equal(rp_fn_key_generate(a), 0);
    assert_int_equal(rp_fn_key_generate(b), 0);
    assert_int_equal(strlen(a), RP_FN_KEY_LEN);
    assert_string_not_equal(a, b);
    assert_int_equal(a[RP_FN_KEY_LEN - 1], '=');
    assert_int_equal(a[RP_FN_KEY_LEN - 2], '=');
    assert_int_not_equal(a[RP_FN_KEY_LEN - 3], '=');
    /* What it makes, it accepts as a value set by hand. */
    assert_true(rp_fn_key_value_ok(a, strlen(a)));
    for (size_t i = 0; i < RP_FN_KEY_LEN - 2; i++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", a[i]));
}

static void test_names_and_values(void **state)
{
    char long_name[RP_FN_KEY_NAME_MAX + 2];
    static const char *const good[] = {"default", "k1", "ci.deploy", "A_b-c"};
    static const char *const bad[] = {"", "_master", "a b", "a/b", "k\xc3\xa9", "a\n"};

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(rp_fn_key_name_ok(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(rp_fn_key_name_ok(bad[i]));
    assert_false(rp_fn_key_name_ok(NULL));
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[RP_FN_KEY_NAME_MAX] = '\0';
    assert_true(rp_fn_key_name_ok(long_name));
    long_name[RP_FN_KEY_NAME_MAX] = 'a';
    long_name[RP_FN_KEY_NAME_MAX + 1] = '\0';
    assert_false(rp_fn_key_name_ok(long_name));

    assert_true(rp_fn_key_value_ok("0123456789abcdef", 16));
    assert_false(rp_fn_key_value_ok("0123456789abcde", 15));   /* too short */
    assert_false(rp_fn_key_value_ok("0123456789abcde f", 17)); /* a space */
    assert_false(rp_fn_key_value_ok("0123456789abcde\t", 16));
    assert_false(rp_fn_key_value_ok("0123456789abcde\xc3\xa9", 17));
    assert_false(rp_fn_key_value_ok("0123456789ab\0def", 16));
    /* Keys Azure's older hosts generated: standard base64, '/' and '+' included. */
    assert_true(rp_fn_key_value_ok("abcdefghijklmnop/qrstuv+wxyz0123456789ABCDEFGHIJKLMN==", 54));
    assert_false(rp_fn_key_value_ok(NULL, 0));
}

static rp_fn_key key(rp_fn_key_kind kind, const char *name, const char *value)
{
    rp_fn_key k = {kind, name, value, strlen(value), NULL};
    return k;
}

#define NKEYS 6

/* digests: 0 none made (computed per call), 1 all made, 2 every other one made. */
static void check_levels(int digests)
{
    rp_fn_key keys[NKEYS] = {
        key(RP_FN_KEY_FUNCTION, "default", "function-key-value-0001"),
        key(RP_FN_KEY_HOST, "default", "host-key-value-0000001"),
        key(RP_FN_KEY_SYSTEM, "eventgrid_extension", "system-key-value-00001"),
        key(RP_FN_KEY_MASTER, "master", "master-key-value-00001"),
        key(RP_FN_KEY_FUNCTION, "shared", "same-value-twice-00001"),
        key(RP_FN_KEY_HOST, "shared-host", "same-value-twice-00001"),
    };
    unsigned char d[NKEYS][RP_FN_KEY_DIGEST_LEN];
    size_t n = NKEYS;
    const char *name = "unset";
    char longer[RP_FN_KEY_VALUE_MAX + 2];

    for (size_t i = 0; i < n; i++) {
        if (digests == 0 || (digests == 2 && i % 2 == 1))
            continue;
        assert_int_equal(rp_fn_key_digest(keys[i].value, keys[i].value_len, d[i]), 0);
        keys[i].digest = d[i];
    }
    assert_int_equal(rp_fn_key_level(keys, n, "master-key-value-00001", 22, &name),
                     RP_FN_LEVEL_ADMIN);
    assert_string_equal(name, RP_FN_MASTER_NAME);
    assert_int_equal(rp_fn_key_level(keys, n, "system-key-value-00001", 22, &name),
                     RP_FN_LEVEL_SYSTEM);
    assert_string_equal(name, "eventgrid_extension");
    assert_int_equal(rp_fn_key_level(keys, n, "host-key-value-0000001", 22, &name),
                     RP_FN_LEVEL_FUNCTION);
    assert_string_equal(name, "default");
    assert_int_equal(rp_fn_key_level(keys, n, "function-key-value-0001", 23, &name),
                     RP_FN_LEVEL_FUNCTION);
    /* One value set as a host and a function key: the host key is checked first. */
    assert_int_equal(rp_fn_key_level(keys, n, "same-value-twice-00001", 22, &name),
                     RP_FN_LEVEL_FUNCTION);
    assert_string_equal(name, "shared-host");
    /* A prefix, an extension, another case, nothing at all: no match. */
    assert_int_equal(rp_fn_key_level(keys, n, "master-key-value-0000", 21, &name),
                     RP_FN_LEVEL_NONE);
    assert_null(name);
    assert_int_equal(rp_fn_key_level(keys, n, "master-key-value-000011", 23, NULL),
                     RP_FN_LEVEL_NONE);
    assert_int_equal(rp_fn_key_level(keys, n, "MASTER-KEY-VALUE-00001", 22, NULL),
                     RP_FN_LEVEL_NONE);
    assert_int_equal(rp_fn_key_level(keys, n, "", 0, NULL), RP_FN_LEVEL_NONE);
    assert_int_equal(rp_fn_key_level(keys, n, NULL, 0, NULL), RP_FN_LEVEL_NONE);
    assert_int_equal(rp_fn_key_level(NULL, 0, "master-key-value-00001", 22, NULL),
                     RP_FN_LEVEL_NONE);
    /* The longest value there can be matches; one byte more matches nothing, even itself. */
    memset(longer, 'k', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    keys[0].value = longer;
    keys[0].value_len = RP_FN_KEY_VALUE_MAX;
    if (keys[0].digest != NULL)
        assert_int_equal(rp_fn_key_digest(longer, RP_FN_KEY_VALUE_MAX, d[0]), 0);
    assert_int_equal(rp_fn_key_level(keys, n, longer, RP_FN_KEY_VALUE_MAX, &name),
                     RP_FN_LEVEL_FUNCTION);
    assert_string_equal(name, "default");
    keys[0].value_len = RP_FN_KEY_VALUE_MAX + 1;
    if (keys[0].digest != NULL)
        assert_int_equal(rp_fn_key_digest(longer, RP_FN_KEY_VALUE_MAX + 1, d[0]), 0);
    assert_int_equal(rp_fn_key_level(keys, n, longer, RP_FN_KEY_VALUE_MAX + 1, &name),
                     RP_FN_LEVEL_NONE);
    assert_null(name);
    /* An empty stored key never matches anything, made digest or not. */
    {
        rp_fn_key empty = {RP_FN_KEY_MASTER, "master", "", 0, NULL};
        unsigned char de[RP_FN_KEY_DIGEST_LEN];
        assert_int_equal(rp_fn_key_level(&empty, 1, "x", 1, NULL), RP_FN_LEVEL_NONE);
        assert_int_equal(rp_fn_key_digest("x", 1, de), 0);
        empty.digest = de;
        assert_int_equal(rp_fn_key_level(&empty, 1, "x", 1, NULL), RP_FN_LEVEL_NONE);
    }
}

static void test_level(void **state)
{
    (void)state;
    check_levels(0);
}

static void test_level_digests_made(void **state)
{
    (void)state;
    check_levels(1);
    check_levels(2);
}

static void test_digest(void **state)
{
    /* FIPS 180-2 example: SHA-256("abc"). */
    static const unsigned char abc[RP_FN_KEY_DIGEST_LEN] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
        0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
        0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    unsigned char d[RP_FN_KEY_DIGEST_LEN], other[RP_FN_KEY_DIGEST_LEN];
    rp_fn_key k = key(RP_FN_KEY_HOST, "h", "stored-value-00001");

    (void)state;
    assert_int_equal(rp_fn_key_digest("abc", 3, d), 0);
    assert_memory_equal(d, abc, sizeof(abc));
    /* A made digest is what is compared: the stored value is not digested again. */
    assert_int_equal(rp_fn_key_digest("digest-of-this-0001", 19, other), 0);
    k.digest = other;
    assert_int_equal(rp_fn_key_level(&k, 1, "digest-of-this-0001", 19, NULL), RP_FN_LEVEL_FUNCTION);
    assert_int_equal(rp_fn_key_level(&k, 1, "stored-value-00001", 18, NULL), RP_FN_LEVEL_NONE);
}

static void test_authorized(void **state)
{
    static const rp_fn_level all[] = {RP_FN_LEVEL_NONE, RP_FN_LEVEL_ANONYMOUS, RP_FN_LEVEL_FUNCTION,
                                      RP_FN_LEVEL_SYSTEM, RP_FN_LEVEL_ADMIN};
    rp_fn_level l;

    (void)state;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        /* Anonymous needs nothing; admin satisfies everything that needs something. */
        assert_true(rp_fn_authorized(RP_FN_LEVEL_ANONYMOUS, all[i]));
        if (all[i] != RP_FN_LEVEL_NONE)
            assert_true(rp_fn_authorized(all[i], RP_FN_LEVEL_ADMIN));
        /* Nothing presented satisfies nothing but anonymous. */
        if (all[i] != RP_FN_LEVEL_ANONYMOUS)
            assert_false(rp_fn_authorized(all[i], RP_FN_LEVEL_NONE));
    }
    assert_true(rp_fn_authorized(RP_FN_LEVEL_FUNCTION, RP_FN_LEVEL_FUNCTION));
    assert_false(rp_fn_authorized(RP_FN_LEVEL_FUNCTION, RP_FN_LEVEL_SYSTEM));
    assert_false(rp_fn_authorized(RP_FN_LEVEL_ADMIN, RP_FN_LEVEL_FUNCTION));
    assert_false(rp_fn_authorized(RP_FN_LEVEL_ADMIN, RP_FN_LEVEL_SYSTEM));
    assert_true(rp_fn_authorized(RP_FN_LEVEL_SYSTEM, RP_FN_LEVEL_SYSTEM));
    assert_false(rp_fn_authorized(RP_FN_LEVEL_SYSTEM, RP_FN_LEVEL_FUNCTION));
    assert_false(rp_fn_authorized(RP_FN_LEVEL_FUNCTION, RP_FN_LEVEL_ANONYMOUS));
    assert_false(rp_fn_authorized(RP_FN_LEVEL_NONE, RP_FN_LEVEL_ADMIN));

    assert_int_equal(rp_fn_level_parse("Function", &l), 0);
    assert_int_equal(l, RP_FN_LEVEL_FUNCTION);
    assert_int_equal(rp_fn_level_parse("ANONYMOUS", &l), 0);
    assert_int_equal(l, RP_FN_LEVEL_ANONYMOUS);
    assert_int_equal(rp_fn_level_parse("admin", &l), 0);
    assert_int_equal(l, RP_FN_LEVEL_ADMIN);
    assert_int_equal(rp_fn_level_parse("system", &l), RP_EPARSE); /* not settable */
    assert_int_equal(rp_fn_level_parse("", &l), RP_EPARSE);
    assert_int_equal(rp_fn_level_parse(NULL, &l), RP_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate), cmocka_unit_test(test_names_and_values),
        cmocka_unit_test(test_level),    cmocka_unit_test(test_level_digests_made),
        cmocka_unit_test(test_digest),   cmocka_unit_test(test_authorized),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
