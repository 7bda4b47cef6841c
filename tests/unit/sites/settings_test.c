/*
 * settings_test.c - app settings, connection strings and Key Vault reference syntax
 * (src/sites/settings.c): accepted and refused names and values, the names the platform keeps
 * for itself, two names that would become one variable, Linux variable names, connection
 * string types and prefixes, and every form of reference, valid or not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "sites/settings.h"

#include <stdlib.h>
#include <string.h>

#define D "rampart.localhost"

static int check_app(const char *text, char *err, size_t cap)
{
    json_t *in = json_loads(text, JSON_ALLOW_NUL, NULL), *out = NULL;
    int rc;

    assert_non_null(in);
    rc = rp_settings_check_app(in, &out, err, cap);
    if (rc == 0) {
        assert_non_null(out);
        assert_true(json_equal(in, out));
    } else {
        assert_null(out);
        assert_true(err[0] != '\0');
    }
    json_decref(out);
    json_decref(in);
    return rc;
}

static void test_app_settings(void **state)
{
    char err[300];
    char *big;

    (void)state;
    assert_int_equal(check_app("{}", err, sizeof(err)), 0);
    assert_int_equal(
        check_app("{\"GREETING\":\"hi\",\"a.b:c-d_e\":\"x\",\"EMPTY\":\"\"}", err, sizeof(err)), 0);
    assert_int_equal(check_app("[]", err, sizeof(err)), RP_EINVAL);
    assert_int_equal(check_app("{\"N\":1}", err, sizeof(err)), RP_EINVAL);
    assert_non_null(strstr(err, "string"));
    assert_int_equal(check_app("{\"1ABC\":\"x\"}", err, sizeof(err)), RP_EINVAL);
    assert_int_equal(check_app("{\"A B\":\"x\"}", err, sizeof(err)), RP_EINVAL);
    assert_int_equal(check_app("{\"A=B\":\"x\"}", err, sizeof(err)), RP_EINVAL);
    assert_int_equal(check_app("{\"\":\"x\"}", err, sizeof(err)), RP_EINVAL);
    assert_int_equal(check_app("{\"V\":\"a\\u0000b\"}", err, sizeof(err)), RP_EINVAL);
    assert_non_null(strstr(err, "NUL"));
    /* The platform's own variables, in any case. */
    assert_int_equal(check_app("{\"PORT\":\"1\"}", err, sizeof(err)), RP_EINVAL);
    assert_non_null(strstr(err, "platform"));
    assert_int_equal(check_app("{\"identity_header\":\"x\"}", err, sizeof(err)), RP_EINVAL);
    assert_int_equal(check_app("{\"MSI_SECRET\":\"x\"}", err, sizeof(err)), RP_EINVAL);
    assert_int_equal(check_app("{\"WEBSITE.SITE.NAME\":\"x\"}", err, sizeof(err)), RP_EINVAL);
    /* "a.b" and "a_b" are the same variable on Linux. */
    assert_int_equal(check_app("{\"a.b\":\"1\",\"a_b\":\"2\"}", err, sizeof(err)), RP_EINVAL);
    assert_non_null(strstr(err, "already"));
    assert_int_equal(check_app("{\"X\":\"1\",\"x\":\"2\"}", err, sizeof(err)), RP_EINVAL);
    /* Sizes. */
    big = malloc(RP_SETTINGS_VALUE_MAX + 64);
    assert_non_null(big);
    memcpy(big, "{\"V\":\"", 6);
    memset(big + 6, 'a', RP_SETTINGS_VALUE_MAX + 1);
    memcpy(big + 6 + RP_SETTINGS_VALUE_MAX + 1, "\"}", 3);
    assert_int_equal(check_app(big, err, sizeof(err)), RP_EINVAL);
    memcpy(big + 6 + RP_SETTINGS_VALUE_MAX, "\"}", 3);
    assert_int_equal(check_app(big, err, sizeof(err)), 0);
    free(big);
}

static void test_env_names(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(rp_settings_env_name("a.b:c", out, sizeof(out)), 0);
    assert_string_equal(out, "a_b__c");
    assert_int_equal(rp_settings_env_name("abc", out, 4), 0);
    assert_int_equal(rp_settings_env_name("a:b", out, 4), RP_ETOOBIG);
    assert_string_equal(rp_settings_conn_prefix("SQLAzure"), "SQLAZURECONNSTR_");
    assert_string_equal(rp_settings_conn_prefix("Custom"), "CUSTOMCONNSTR_");
    assert_null(rp_settings_conn_prefix("custom"));
    assert_null(rp_settings_conn_prefix("ApiHub"));
}

static void test_connection_strings(void **state)
{
    json_t *in, *out = NULL;
    char err[300];

    (void)state;
    in = json_loads("{\"db\":{\"value\":\"Server=x\",\"type\":\"sqlazure\"},"
                    "\"q\":{\"value\":\"amqp://\",\"type\":\"ServiceBus\"}}",
                    0, NULL);
    assert_int_equal(rp_settings_check_conn(in, &out, err, sizeof(err)), 0);
    /* The type is stored as Azure spells it. */
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "db"), "type")),
                        "SQLAzure");
    json_decref(out);
    json_decref(in);
    static const char *const bad[] = {
        "{\"db\":\"Server=x\"}",
        "{\"db\":{\"value\":\"x\"}}",
        "{\"db\":{\"value\":\"x\",\"type\":\"Oracle\"}}",
        "{\"db\":{\"value\":1,\"type\":\"Custom\"}}",
        "{\"db\":{\"value\":\"x\",\"type\":\"Custom\",\"slotSetting\":true}}",
        "{\"a.b\":{\"value\":\"x\",\"type\":\"Custom\"},\"a_b\":{\"value\":\"y\",\"type\":"
        "\"Custom\"}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        in = json_loads(bad[i], 0, NULL);
        assert_non_null(in);
        err[0] = '\0';
        assert_int_equal(rp_settings_check_conn(in, &out, err, sizeof(err)), RP_EINVAL);
        assert_null(out);
        assert_true(err[0] != '\0');
        json_decref(in);
    }
}

static int ref(const char *v, rp_kvref *r)
{
    const char *why = NULL;
    int k = rp_kvref_parse(v, strlen(v), D, r, &why);

    assert_non_null(why);
    if (k < 0)
        assert_true(why[0] != '\0');
    return k;
}

static void test_references(void **state)
{
    rp_kvref r;

    (void)state;
    assert_int_equal(ref("plain value", &r), 0);
    assert_int_equal(ref("@Microsoft.KeyVaul", &r), 0);
    assert_int_equal(
        ref("@Microsoft.KeyVault(SecretUri=https://kv1.vault." D "/secrets/db-pass/)", &r), 1);
    assert_string_equal(r.vault, "kv1");
    assert_string_equal(r.secret, "db-pass");
    assert_string_equal(r.version, "");
    assert_int_equal(ref("@Microsoft.KeyVault(SecretUri=https://KV1.vault." D
                         ":8443/secrets/Db/0123456789abcdef0123456789ABCDEF)",
                         &r),
                     1);
    assert_string_equal(r.vault, "kv1");
    assert_string_equal(r.secret, "Db");
    assert_string_equal(r.version, "0123456789abcdef0123456789abcdef");
    assert_int_equal(ref("@Microsoft.KeyVault(SecretUri=https://kv1.vault." D "/secrets/db)", &r),
                     1);
    assert_int_equal(ref("@Microsoft.KeyVault(VaultName=kv1;SecretName=db)", &r), 1);
    assert_string_equal(r.version, "");
    assert_int_equal(ref("@microsoft.keyvault(vaultname=kv1;secretname=db;secretversion="
                         "0123456789abcdef0123456789abcdef)",
                         &r),
                     1);
    assert_string_equal(r.version, "0123456789abcdef0123456789abcdef");
    /* Invalid: each is a reference the app would otherwise get literally, with a reason. */
    static const char *const bad[] = {
        "@Microsoft.KeyVault(SecretUri=https://kv1.vault." D "/secrets/db",
        "@Microsoft.KeyVault(SecretUri=http://kv1.vault." D "/secrets/db)",
        "@Microsoft.KeyVault(SecretUri=https://kv1.vault.azure.net/secrets/db)",
        "@Microsoft.KeyVault(SecretUri=https://kv1.evil." D "/secrets/db)",
        "@Microsoft.KeyVault(SecretUri=https://x.vault." D "/secrets/db)",
        "@Microsoft.KeyVault(SecretUri=https://kv1.vault." D "/keys/db)",
        "@Microsoft.KeyVault(SecretUri=https://kv1.vault." D "/secrets/db/123)",
        "@Microsoft.KeyVault(SecretUri=https://kv1.vault." D "/secrets/db/"
        "0123456789abcdef0123456789abcdef/x)",
        "@Microsoft.KeyVault(SecretUri=https://kv1.vault." D ":80a/secrets/db)",
        "@Microsoft.KeyVault(SecretUri=https://kv1.vault." D "/secrets/d_b)",
        "@Microsoft.KeyVault(SecretUri=https://kv1.vault." D ")",
        "@Microsoft.KeyVault(VaultName=kv1)",
        "@Microsoft.KeyVault(SecretName=db)",
        "@Microsoft.KeyVault(VaultName=kv1;SecretName=db;Other=1)",
        "@Microsoft.KeyVault(VaultName=kv1;VaultName=kv2;SecretName=db)",
        "@Microsoft.KeyVault(VaultName=kv1;SecretName=db;SecretVersion=zz)",
        "@Microsoft.KeyVault(VaultName=k;SecretName=db)",
        "@Microsoft.KeyVault(VaultName;SecretName=db)",
        "@Microsoft.KeyVault()",
        "@Microsoft.KeyVault(VaultName=kv1;SecretName=db) trailing",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ref(bad[i], &r), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_settings),
        cmocka_unit_test(test_env_names),
        cmocka_unit_test(test_connection_strings),
        cmocka_unit_test(test_references),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
