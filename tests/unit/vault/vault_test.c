/*
 * vault_test.c - the vault service's pure parts: vault names (Azure's rule), object names and
 * versions, customer-managed key ids in both spellings, the recovery level for each retention
 * and purge-protection setting. The HTTP surface is tested end to end (tests/e2e/vault-*.mjs)
 * against the real binary with the Azure SDKs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "vault/vault_int.h"

#include <string.h>

static void test_vault_names(void **state)
{
    static const char *const good[] = {"abc", "a-b-c", "kv1", "a23456789012345678901234"};
    static const char *const bad[] = {"ab",  "Abc",  "1abc", "a--b", "abc-",
                                      "a_b", "a.bc", "",     "a b",  "a234567890123456789012345"};

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(rp_vault_name_valid(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(rp_vault_name_valid(bad[i]));
    assert_false(rp_vault_name_valid(NULL));
}

static void test_object_names_and_versions(void **state)
{
    char n127[128], n128[129];

    (void)state;
    memset(n127, 'a', 127);
    n127[127] = '\0';
    memset(n128, 'a', 128);
    n128[128] = '\0';
    assert_true(rp__kv_name_valid("Db-Pass-1"));
    assert_true(rp__kv_name_valid(n127));
    assert_false(rp__kv_name_valid(n128));
    assert_false(rp__kv_name_valid(""));
    assert_false(rp__kv_name_valid("a_b"));
    assert_false(rp__kv_name_valid("a/b"));
    assert_false(rp__kv_name_valid("\xc3\xa9"));
    assert_true(rp__kv_version_valid("0123456789abcdef0123456789abcdef"));
    assert_false(rp__kv_version_valid("0123456789ABCDEF0123456789abcdef"));
    assert_false(rp__kv_version_valid("0123456789abcdef0123456789abcde"));
    assert_false(rp__kv_version_valid(""));
    {
        char v1[33], v2[33];
        rp__kv_version_new(v1);
        rp__kv_version_new(v2);
        assert_true(rp__kv_version_valid(v1));
        assert_string_not_equal(v1, v2);
    }
}

static void test_cmk_ids(void **state)
{
    char vault[RP_VAULT_NAME_MAX + 1], name[RP__KV_NAME_MAX + 1], ver[RP__KV_VERSION_LEN + 1];
    char out[512];

    (void)state;
    assert_int_equal(rp__kv_cmk_parse("keys1/keys/k", vault, name, ver), 0);
    assert_string_equal(vault, "keys1");
    assert_string_equal(name, "k");
    assert_string_equal(ver, "");
    assert_int_equal(
        rp__kv_cmk_parse("keys1/keys/k/0123456789abcdef0123456789abcdef", vault, name, ver), 0);
    assert_string_equal(ver, "0123456789abcdef0123456789abcdef");
    assert_int_equal(rp__kv_cmk_parse("keys1/secrets/k", vault, name, ver), RP_EINVAL);
    assert_int_equal(rp__kv_cmk_parse("keys1/keys/", vault, name, ver), RP_EINVAL);
    assert_int_equal(rp__kv_cmk_parse("keys1/keys/k/notaversion", vault, name, ver), RP_EINVAL);
    assert_int_equal(rp__kv_cmk_parse("Keys1/keys/k", vault, name, ver), RP_EINVAL);
    assert_int_equal(rp__kv_cmk_parse("keys1", vault, name, ver), RP_EINVAL);
    assert_int_equal(rp__kv_cmk_parse(NULL, vault, name, ver), RP_EINVAL);

    assert_int_equal(rp__kv_cmk_normalize("https://keys1.vault.rampart.localhost:8443/keys/k",
                                          "rampart.localhost", out, sizeof(out)),
                     0);
    assert_string_equal(out, "keys1/keys/k");
    assert_int_equal(rp__kv_cmk_normalize("https://KEYS1.vault.rampart.localhost/keys/k/"
                                          "0123456789abcdef0123456789abcdef",
                                          "rampart.localhost", out, sizeof(out)),
                     0);
    assert_string_equal(out, "keys1/keys/k/0123456789abcdef0123456789abcdef");
    assert_int_equal(rp__kv_cmk_normalize("keys1/keys/k", "rampart.localhost", out, sizeof(out)),
                     0);
    assert_string_equal(out, "keys1/keys/k");
    /* Another domain, another service, no path, a bare host. */
    assert_int_equal(rp__kv_cmk_normalize("https://keys1.vault.evil.example/keys/k",
                                          "rampart.localhost", out, sizeof(out)),
                     RP_EINVAL);
    assert_int_equal(rp__kv_cmk_normalize("https://keys1.blob.rampart.localhost/keys/k",
                                          "rampart.localhost", out, sizeof(out)),
                     RP_EINVAL);
    assert_int_equal(rp__kv_cmk_normalize("https://keys1.vault.rampart.localhost",
                                          "rampart.localhost", out, sizeof(out)),
                     RP_EINVAL);
    assert_int_equal(rp__kv_cmk_normalize("https://.vault.rampart.localhost/keys/k",
                                          "rampart.localhost", out, sizeof(out)),
                     RP_EINVAL);
}

static void test_recovery_level(void **state)
{
    rp__kv_vault v = {0};

    (void)state;
    v.retention_days = 90;
    assert_string_equal(rp__kv_recovery_level(&v), "Recoverable+Purgeable");
    v.purge_protection = 1;
    assert_string_equal(rp__kv_recovery_level(&v), "Recoverable");
    v.retention_days = 7;
    assert_string_equal(rp__kv_recovery_level(&v), "CustomizedRecoverable");
    v.purge_protection = 0;
    assert_string_equal(rp__kv_recovery_level(&v), "CustomizedRecoverable+Purgeable");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vault_names),
        cmocka_unit_test(test_object_names_and_versions),
        cmocka_unit_test(test_cmk_ids),
        cmocka_unit_test(test_recovery_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
