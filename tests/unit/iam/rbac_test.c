/*
 * rbac_test.c - unit tests for src/iam/rbac.c and the built-in table in roles_builtin.c.
 *
 * Tables for the pure functions (action patterns, scope syntax, ancestry), then decisions on
 * small sets built for each test: notActions, the control/data split, scope inheritance and
 * its boundaries, case, unions, time bounds, malformed questions, Key Vault Data Access
 * Administrator's condition. Custom roles: one invalid field per case, each expected to name
 * the field; duplicates; the JSON round trip. Every built-in role is checked by Azure's id.
 * Allocation failure is injected at every step of the builders. A rough timing loop prints
 * ns per check (informational; nothing asserts on time).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/err.h"
#include "iam/rbac.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define P     "11111111-aaaa-4bbb-8ccc-000000000001" /* a principal */
#define Q     "11111111-aaaa-4bbb-8ccc-000000000002" /* another */
#define NOW   1700000000
#define RA_W  "Microsoft.Authorization/roleAssignments/write"
#define GET_S "Microsoft.KeyVault/vaults/secrets/getSecret/action"
#define SET_S "Microsoft.KeyVault/vaults/secrets/setSecret/action"

#define ID_OWNER       "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
#define ID_KV_SEC_USER "4633458b-17de-408a-b874-0445c86b69e6"
#define ID_KV_DAA      "8b54135c-b56d-4d72-a534-26097cfdc8d8"

static rp_rbac *new_set(void)
{
    rp_rbac *r = NULL;

    assert_int_equal(rp_rbac_create(&r), 0);
    assert_non_null(r);
    return r;
}

static void assign(rp_rbac *r, const char *id, const char *who, const char *role, const char *scope)
{
    assert_int_equal(rp_rbac_add_assignment(r, id, who, role, scope, 0, 0), 0);
}

static int ctl(const rp_rbac *r, const char *who, const char *action, const char *scope)
{
    return rp_rbac_check(r, who, action, 0, scope, NOW, NULL);
}

static int dat(const rp_rbac *r, const char *who, const char *action, const char *scope)
{
    return rp_rbac_check(r, who, action, 1, scope, NOW, NULL);
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);

    if (j == NULL)
        fail_msg("bad test JSON: %s: %s", e.text, text);
    return j;
}

/* ---- action patterns ---- */

typedef struct match_case {
    const char *pattern;
    const char *action;
    int want;
} match_case;

static const match_case match_cases[] = {
    /* "*" matches everything, the empty action included */
    {"*", "Microsoft.KeyVault/vaults/read", 1},
    {"*", "", 1},
    {"**", "x", 1},
    /* exact, and case-insensitive both ways */
    {GET_S, GET_S, 1},
    {"microsoft.keyvault/VAULTS/secrets/getsecret/ACTION", GET_S, 1},
    {GET_S, "MICROSOFT.KEYVAULT/vaults/SECRETS/getSecret/action", 1},
    /* a pattern longer or shorter than the action */
    {GET_S "/more", GET_S, 0},
    {"Microsoft.KeyVault/vaults/secrets/getSecret", GET_S, 0},
    {"", "x", 0},
    {"x", "", 0},
    /* prefix '*' */
    {"Microsoft.KeyVault/*", "Microsoft.KeyVault/vaults/read", 1},
    {"Microsoft.KeyVault/*", "Microsoft.KeyVaultX/vaults/read", 0},
    {"Microsoft.KeyVault/*", "Microsoft.KeyVault", 0},
    {"Microsoft.KeyVault/*", "Microsoft.KeyVault/", 1},
    {"Microsoft.KeyVault/vaults/secrets/*", "Microsoft.KeyVault/vaults/secretsX/get", 0},
    {"Microsoft.Web/sites/*", "Microsoft.Web/sites", 0},
    {"Microsoft.Web/sites/*", "Microsoft.Web/sitesextra/read", 0},
    /* suffix '*' */
    {"*/read", "Microsoft.KeyVault/vaults/read", 1},
    {"*/read", "Microsoft.KeyVault/vaults/readMetadata/action", 0},
    {"*/read", "Microsoft.KeyVault/vaults/write", 0},
    {"*/read", "read", 0},
    {"*/read", "/read", 1},
    /* middle '*': any run, '/' included */
    {"Microsoft.Authorization/*/read", "Microsoft.Authorization/roleAssignments/read", 1},
    {"Microsoft.Authorization/*/read", "Microsoft.Authorization/policy/exemptions/read", 1},
    {"Microsoft.Authorization/*/Write", "microsoft.authorization/roleAssignments/write", 1},
    {"Microsoft.Authorization/*/read", "Microsoft.Authorization/roleAssignments/write", 0},
    {"Microsoft.Authorization/*/read", "Microsoft.AuthorizationX/roleAssignments/read", 0},
    /* a whole-segment '*' may also match no segment (Azure: Key Vault Reader reads its vault) */
    {"Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/read", 1},
    {"Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/read", 1},
    {"Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/a/b/read", 1},
    {"Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaultsread", 0},
    {"Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/xread", 0},
    {"Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/readMetadata/action", 0},
    {"Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
     "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action", 1},
    {"a/*/*/b", "a/b", 1},
    {"a/*/*/b", "a/x/y/b", 1},
    {"a/*/*/b", "a/xb", 0},
    {"a/*/b", "a//b", 1},
    {"a/*b", "a/b", 1}, /* not a whole segment: an ordinary star */
    {"a*/b", "a/b", 1},
    {"a/*b", "ab", 0},
    /* several '*' */
    {"a*b*c", "abc", 1},
    {"a*b*c", "aXbYc", 1},
    {"a*b*c", "aXbY", 0},
    {"a*b*c", "acb", 0},
    {"*a*", "bab", 1},
    {"a**b", "ab", 1},
    {"*.*/*/read", "Microsoft.Web/sites/read", 1},
    {"*.*/*/read", "MicrosoftWeb/sites/read", 0},
    /* backtracking past a partial match */
    {"*ab", "aab", 1},
    {"*aab", "aaab", 1},
    {"a*aab", "aaaab", 1},
    {"a*aab", "aaaba", 0},
};

static void test_action_match(void **state)
{
    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        const match_case *c = &match_cases[i];
        if (rp_rbac_action_match(c->pattern, c->action) != c->want)
            fail_msg("case %zu: \"%s\" vs \"%s\": want %d", i, c->pattern, c->action, c->want);
    }
    assert_int_equal(rp_rbac_action_match(NULL, "x"), 0);
    assert_int_equal(rp_rbac_action_match("*", NULL), 0);
}

/* ---- scopes ---- */

typedef struct scope_case {
    const char *scope;
    int want;
} scope_case;

static const scope_case scope_cases[] = {
    {"/", 1},
    {"/vaults/v", 1},
    {"/vaults/v/secrets/s", 1},
    {"/vaults/v/keys/k", 1},
    {"/apps/a", 1},
    {"/apps/a/functions/f", 1},
    {"/topics/t", 1},
    {"/storageAccounts/s", 1},
    {"/storageAccounts/s/containers/c", 1},
    {"/workflows/w", 1},
    {"/identities/i", 1},
    {"/principals/p", 1},
    {"/Vaults/My-Vault", 1},
    {"/vaults/a.b_c~d-e", 1},
    {"/vaults/...", 1},
    {"/vaults/.x", 1},
    {"/vaults/x..", 1},
    {"/v1/x", 1},
    {"/vaults/0", 1},
    {"", 0},
    {"//", 0},
    {"///", 0},
    {"vaults/v", 0},
    {"/vaults", 0},
    {"/vaults/", 0},
    {"/vaults/v/", 0},
    {"/vaults/v/secrets", 0},
    {"/vaults/v/secrets/", 0},
    {"/vaults//v", 0},
    {"/vaults/..", 0},
    {"/vaults/.", 0},
    {"/vaults/v/./s", 0},
    {"/vaults/v/../s", 0},
    {"/vaults/a b", 0},
    {"/vaults/a%20b", 0},
    {"/vaults/%2e%2e", 0},
    {"/vaults\\v", 0},
    {"/vaults/a\\b", 0},
    {"/vaults/v?x=1", 0},
    {"/vaults/v#x", 0},
    {"/vaults/*", 0},
    {"/vaults/v\n", 0},
    {"/vaults/\xc3\xa9", 0},
    {"/1vaults/v", 0},
    {"/va-ults/v", 0},
    {"/va.ults/v", 0},
    {"/ /v", 0},
    {" /vaults/v", 0},
};

static void test_scope_valid(void **state)
{
    char buf[RP_RBAC_SCOPE_MAX + 8];
    size_t n;

    for (size_t i = 0; i < sizeof(scope_cases) / sizeof(scope_cases[0]); i++) {
        const scope_case *c = &scope_cases[i];
        if (rp_rbac_scope_valid(c->scope, strlen(c->scope)) != c->want)
            fail_msg("case %zu: \"%s\": want %d", i, c->scope, c->want);
    }
    /* NUL inside the length is refused; the length, not the NUL, bounds the scope */
    assert_int_equal(rp_rbac_scope_valid("/vaults/v\0x", 11), 0);
    assert_int_equal(rp_rbac_scope_valid("/vaults/v\0", 10), 0);
    assert_int_equal(rp_rbac_scope_valid("/vaults/v\0x", 9), 1);
    assert_int_equal(rp_rbac_scope_valid("/vaults/vx", 9), 1);
    assert_int_equal(rp_rbac_scope_valid(NULL, 0), 0);
    assert_int_equal(rp_rbac_scope_valid("/", 0), 0);

    /* segment limits: type 64, name 127 */
    memset(buf, 0, sizeof(buf));
    buf[0] = '/';
    memset(buf + 1, 't', 64);
    memcpy(buf + 65, "/n", 3);
    assert_int_equal(rp_rbac_scope_valid(buf, strlen(buf)), 1);
    memset(buf + 1, 't', 65);
    memcpy(buf + 66, "/n", 3);
    assert_int_equal(rp_rbac_scope_valid(buf, strlen(buf)), 0);
    memcpy(buf, "/t/", 3);
    memset(buf + 3, 'n', 127);
    buf[130] = '\0';
    assert_int_equal(rp_rbac_scope_valid(buf, strlen(buf)), 1);
    memset(buf + 3, 'n', 128);
    buf[131] = '\0';
    assert_int_equal(rp_rbac_scope_valid(buf, strlen(buf)), 0);

    /* total length: exactly RP_RBAC_SCOPE_MAX passes, one more byte fails */
    n = 0;
    while (n + 4 <= RP_RBAC_SCOPE_MAX) {
        memcpy(buf + n, "/t/n", 4);
        n += 4;
    }
    assert_int_equal(n, RP_RBAC_SCOPE_MAX);
    buf[n] = '\0';
    assert_int_equal(rp_rbac_scope_valid(buf, n), 1);
    buf[n - 1] = '\0';
    memcpy(buf + n - 1, "nn", 3);
    assert_int_equal(rp_rbac_scope_valid(buf, n + 1), 0);
}

typedef struct anc_case {
    const char *a;
    const char *s;
    int want;
} anc_case;

static const anc_case anc_cases[] = {
    {"/", "/", 1},
    {"/", "/vaults/v", 1},
    {"/", "/vaults/v/secrets/s", 1},
    {"/vaults/v", "/vaults/v", 1},
    {"/vaults/v", "/vaults/v/secrets/s", 1},
    {"/vaults/v", "/vaults/v2", 0},
    {"/vaults/v", "/vaults/vx/secrets/s", 0},
    {"/vaults/v", "/", 0},
    {"/vaults/v", "/apps/v", 0},
    {"/vaults/v/secrets/s", "/vaults/v", 0},
    {"/vaults/v/secrets/s", "/vaults/v/secrets/s2", 0},
    {"/vaults/V", "/VAULTS/v/secrets/S", 1},
    {"/Vaults/MyVault", "/vaults/myvault", 1},
};

static void test_scope_ancestor(void **state)
{
    for (size_t i = 0; i < sizeof(anc_cases) / sizeof(anc_cases[0]); i++) {
        const anc_case *c = &anc_cases[i];
        if (rp_rbac_scope_is_ancestor(c->a, c->s) != c->want)
            fail_msg("case %zu: \"%s\" over \"%s\": want %d", i, c->a, c->s, c->want);
    }
    assert_int_equal(rp_rbac_scope_is_ancestor(NULL, "/"), 0);
    assert_int_equal(rp_rbac_scope_is_ancestor("/", NULL), 0);
}

/* ---- built-in roles ---- */

static const struct {
    const char *name;
    const char *id;
} builtin_ids[] = {
    {"Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"},
    {"Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"},
    {"Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"},
    {"User Access Administrator", "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"},
    {"Role Based Access Control Administrator", "f58310d9-a9f6-439a-9e8d-f62e7b41a168"},
    {"Key Vault Administrator", "00482a5a-887f-4fb3-b363-3b7fe8e74483"},
    {"Key Vault Certificate User", "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba"},
    {"Key Vault Certificates Officer", "a4417e6f-fecd-4de8-b567-7b0420556985"},
    {"Key Vault Contributor", "f25e0fa2-a7c8-4377-a976-54943a77a395"},
    {"Key Vault Crypto Officer", "14b46e9e-c2b7-41b4-b07b-48a6ebf60603"},
    {"Key Vault Crypto Service Encryption User", "e147488a-f6f5-4113-8e2d-b22465e65bf6"},
    {"Key Vault Crypto Service Release User", "08bbd89e-9f13-488c-ac41-acfcb10c90ab"},
    {"Key Vault Crypto User", "12338af0-0e69-4776-bea7-57ae8d297424"},
    {"Key Vault Data Access Administrator", "8b54135c-b56d-4d72-a534-26097cfdc8d8"},
    {"Key Vault Reader", "21090545-7ca7-4776-b22c-e363652d74d2"},
    {"Key Vault Secrets Officer", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"},
    {"Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6"},
    {"EventGrid Contributor", "1e241071-0855-49ea-94dc-649edcd759de"},
    {"EventGrid Data Sender", "d5a91429-5739-47e2-a06b-3470a27159e7"},
    {"EventGrid EventSubscription Contributor", "428e0ff0-5e57-4d9c-a221-2c70d0e0a443"},
    {"EventGrid EventSubscription Reader", "2414bbcf-6497-4faf-8c65-045460748405"},
    {"Logic App Contributor", "87a39d53-fc1b-424a-814c-f7e04687dc9e"},
    {"Logic App Operator", "515c2055-d9d4-4321-b1b9-bd0c9a0f79fe"},
    {"Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe"},
    {"Storage Blob Data Owner", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"},
    {"Storage Blob Data Reader", "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"},
    {"Storage Blob Delegator", "db58b8e5-c6ad-4a2a-8342-4190687cbf4a"},
    {"Website Contributor", "de139f84-1756-47ae-9be6-808fbbe84772"},
    {"Managed Identity Contributor", "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59"},
    {"Managed Identity Operator", "f1a07417-d97a-45cb-824c-7a7467783830"},
};

static void test_builtins(void **state)
{
    size_t n = sizeof(builtin_ids) / sizeof(builtin_ids[0]);
    rp_rbac *r = new_set();

    assert_int_equal(rp_rbac_role_count(r), n);
    assert_int_equal(rp__rbac_nbuiltins, n);
    for (size_t i = 0; i < n; i++) {
        const rp_rbac_role *role = rp_rbac_role_find(r, builtin_ids[i].name);
        json_t *j;

        if (role == NULL)
            fail_msg("built-in role \"%s\" missing", builtin_ids[i].name);
        assert_string_equal(rp_rbac_role_id(role), builtin_ids[i].id);
        assert_string_equal(rp_rbac_role_name(role), builtin_ids[i].name);
        assert_ptr_equal(rp_rbac_role_find(r, builtin_ids[i].id), role);
        assert_int_equal(rp_rbac_role_builtin(role), 1);
        assert_int_equal(rp_rbac_role_max_activation_s(role), 8 * 3600);
        assert_int_equal(rp_rbac_role_scope_assignable(role, "/"), 1);
        assert_int_equal(rp_rbac_role_scope_assignable(role, "/vaults/v/secrets/s"), 1);
        j = rp_rbac_role_to_json(role);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "id")), builtin_ids[i].id);
        assert_string_equal(json_string_value(json_object_get(j, "name")), builtin_ids[i].id);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(j, "properties"), "type")),
            "BuiltInRole");
        assert_string_equal(json_string_value(json_object_get(j, "maxActivationDuration")), "PT8H");
        json_decref(j);
    }
    rp_rbac_free(r);
}

static void test_builtin_json_shape(void **state)
{
    rp_rbac *r = new_set();
    json_t *j = rp_rbac_role_to_json(rp_rbac_role_find(r, "Owner"));
    json_t *want = parse(
        "{\"id\":\"8e3af657-a8ff-443c-a75c-2fe8c4bcb635\","
        "\"name\":\"8e3af657-a8ff-443c-a75c-2fe8c4bcb635\","
        "\"type\":\"Microsoft.Authorization/roleDefinitions\","
        "\"properties\":{\"roleName\":\"Owner\",\"description\":\"Grants full access to manage all "
        "resources, including the ability to assign roles in Azure "
        "RBAC.\",\"type\":\"BuiltInRole\","
        "\"permissions\":[{\"actions\":[\"*\"],\"notActions\":[],\"dataActions\":[],"
        "\"notDataActions\":[]}],\"assignableScopes\":[\"/\"]},"
        "\"maxActivationDuration\":\"PT8H\"}");

    assert_true(json_equal(j, want));
    json_decref(j);
    json_decref(want);
    /* Contributor keeps Azure's spelling of its notActions */
    j = rp_rbac_role_to_json(rp_rbac_role_find(r, "contributor"));
    assert_string_equal(
        json_string_value(json_array_get(
            json_object_get(
                json_array_get(json_object_get(json_object_get(j, "properties"), "permissions"), 0),
                "notActions"),
            0)),
        "Microsoft.Authorization/*/Delete");
    json_decref(j);
    /* the conditioned role carries Azure's condition, naming each role it may assign */
    j = rp_rbac_role_to_json(rp_rbac_role_find(r, ID_KV_DAA));
    {
        json_t *perm =
            json_array_get(json_object_get(json_object_get(j, "properties"), "permissions"), 0);
        const char *cond = json_string_value(json_object_get(perm, "condition"));
        assert_non_null(cond);
        assert_string_equal(json_string_value(json_object_get(perm, "conditionVersion")), "2.0");
        assert_non_null(strstr(cond, "ActionMatches{'Microsoft.Authorization/roleAssignments/"
                                     "write'}"));
        assert_non_null(strstr(cond, ID_KV_SEC_USER "}))"));
        assert_null(strstr(cond, ID_OWNER));
    }
    json_decref(j);
    rp_rbac_free(r);
}

static void test_role_find(void **state)
{
    rp_rbac *r = new_set();
    const rp_rbac_role *owner = rp_rbac_role_find(r, "Owner");

    assert_non_null(owner);
    assert_ptr_equal(rp_rbac_role_find(r, "owner"), owner);
    assert_ptr_equal(rp_rbac_role_find(r, "OWNER"), owner);
    assert_ptr_equal(rp_rbac_role_find(r, "8E3AF657-A8FF-443C-A75C-2FE8C4BCB635"), owner);
    assert_ptr_equal(
        rp_rbac_role_find(r, "/providers/Microsoft.Authorization/roleDefinitions/" ID_OWNER),
        owner);
    assert_null(rp_rbac_role_find(r, "Owner "));
    assert_null(rp_rbac_role_find(r, "Own"));
    assert_null(rp_rbac_role_find(r, ""));
    assert_null(rp_rbac_role_find(r, NULL));
    assert_null(rp_rbac_role_find(NULL, "Owner"));
    assert_ptr_equal(rp_rbac_role_at(r, 0), owner);
    assert_null(rp_rbac_role_at(r, rp_rbac_role_count(r)));
    assert_null(rp_rbac_role_id(NULL));
    assert_null(rp_rbac_role_name(NULL));
    assert_int_equal(rp_rbac_role_builtin(NULL), 0);
    assert_int_equal(rp_rbac_role_scope_assignable(NULL, "/"), 0);
    assert_int_equal(rp_rbac_role_scope_assignable(owner, "/vaults/"), 0);
    assert_null(rp_rbac_role_to_json(NULL));
    rp_rbac_free(r);
}

/* ---- decisions ---- */

static void test_not_actions(void **state)
{
    rp_rbac *r = new_set();

    assign(r, "a1", P, "Contributor", "/");
    assert_int_equal(ctl(r, P, "Microsoft.KeyVault/vaults/write", "/vaults/v"), 1);
    assert_int_equal(ctl(r, P, "Microsoft.KeyVault/vaults/delete", "/"), 1);
    assert_int_equal(ctl(r, P, RA_W, "/vaults/v"), 0);
    assert_int_equal(ctl(r, P, "microsoft.authorization/ROLEASSIGNMENTS/write", "/vaults/v"), 0);
    assert_int_equal(ctl(r, P, "Microsoft.Authorization/roleAssignments/delete", "/"), 0);
    assert_int_equal(ctl(r, P, "Microsoft.Authorization/roleDefinitions/write", "/"), 0);
    assert_int_equal(ctl(r, P, "Microsoft.Authorization/elevateAccess/Action", "/"), 0);
    assert_int_equal(ctl(r, P, "Microsoft.Subscription/cancel/action", "/"), 0);
    /* not in notActions: reading assignments is fine */
    assert_int_equal(ctl(r, P, "Microsoft.Authorization/roleAssignments/read", "/"), 1);
    /* the User Access Administrator has what Contributor lacks */
    assign(r, "a2", Q, "User Access Administrator", "/");
    assert_int_equal(ctl(r, Q, RA_W, "/vaults/v"), 1);
    assert_int_equal(ctl(r, Q, "Microsoft.KeyVault/vaults/write", "/vaults/v"), 0);
    assert_int_equal(ctl(r, Q, "Microsoft.KeyVault/vaults/read", "/vaults/v"), 1);
    rp_rbac_free(r);
}

static void test_control_vs_data(void **state)
{
    rp_rbac *r = new_set();

    assign(r, "o", P, "Owner", "/");
    /* Owner's "*" is control plane only */
    assert_int_equal(ctl(r, P, GET_S, "/vaults/v"), 1);
    assert_int_equal(dat(r, P, GET_S, "/vaults/v"), 0);
    assert_int_equal(dat(r, P,
                         "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
                         "/storageAccounts/s"),
                     0);

    assign(r, "u", Q, "Key Vault Secrets User", "/vaults/v");
    assert_int_equal(dat(r, Q, GET_S, "/vaults/v"), 1);
    assert_int_equal(
        dat(r, Q, "Microsoft.KeyVault/vaults/secrets/readMetadata/action", "/vaults/v"), 1);
    assert_int_equal(dat(r, Q, SET_S, "/vaults/v"), 0);
    assert_int_equal(dat(r, Q, "Microsoft.KeyVault/vaults/keys/read", "/vaults/v"), 0);
    /* the same string asked as a control action is not granted by dataActions */
    assert_int_equal(ctl(r, Q, GET_S, "/vaults/v"), 0);
    assert_int_equal(ctl(r, Q, "Microsoft.KeyVault/vaults/read", "/vaults/v"), 0);
    rp_rbac_free(r);
}

static void test_key_vault_roles(void **state)
{
    rp_rbac *r = new_set();

    assign(r, "1", P, "Key Vault Reader", "/vaults/v");
    /* "vaults/" "*" "/read" reads the vault itself and everything under it */
    assert_int_equal(ctl(r, P, "Microsoft.KeyVault/vaults/read", "/vaults/v"), 1);
    assert_int_equal(ctl(r, P, "Microsoft.KeyVault/vaults/write", "/vaults/v"), 0);
    assert_int_equal(
        dat(r, P, "Microsoft.KeyVault/vaults/secrets/readMetadata/action", "/vaults/v/secrets/s"),
        1);
    assert_int_equal(dat(r, P, "Microsoft.KeyVault/vaults/keys/read", "/vaults/v/keys/k"), 1);
    assert_int_equal(dat(r, P, GET_S, "/vaults/v/secrets/s"), 0);

    assign(r, "2", Q, "Key Vault Secrets Officer", "/vaults/v");
    assert_int_equal(dat(r, Q, SET_S, "/vaults/v"), 1);
    assert_int_equal(dat(r, Q, "Microsoft.KeyVault/vaults/secrets/delete", "/vaults/v"), 1);
    assert_int_equal(dat(r, Q, "Microsoft.KeyVault/vaults/keys/encrypt/action", "/vaults/v"), 0);

    assign(r, "3", "crypto", "Key Vault Crypto Service Encryption User", "/vaults/v/keys/k");
    assert_int_equal(
        dat(r, "crypto", "Microsoft.KeyVault/vaults/keys/wrap/action", "/vaults/v/keys/k"), 1);
    assert_int_equal(
        dat(r, "crypto", "Microsoft.KeyVault/vaults/keys/decrypt/action", "/vaults/v/keys/k"), 0);
    assert_int_equal(
        dat(r, "crypto", "Microsoft.KeyVault/vaults/keys/wrap/action", "/vaults/v/keys/k2"), 0);

    assign(r, "4", "mi", "Managed Identity Operator", "/identities/i");
    assert_int_equal(ctl(r, "mi", "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
                         "/identities/i"),
                     1);
    assert_int_equal(
        ctl(r, "mi", "Microsoft.ManagedIdentity/userAssignedIdentities/write", "/identities/i"), 0);

    assign(r, "5", "eg", "EventGrid Data Sender", "/topics/t");
    assert_int_equal(dat(r, "eg", "Microsoft.EventGrid/events/send/action", "/topics/t"), 1);
    assert_int_equal(ctl(r, "eg", "Microsoft.EventGrid/topics/read", "/topics/t"), 1);
    assert_int_equal(ctl(r, "eg", "Microsoft.EventGrid/topics/write", "/topics/t"), 0);

    assign(r, "6", "la", "Logic App Operator", "/workflows/w");
    assert_int_equal(ctl(r, "la", "Microsoft.Logic/workflows/enable/action", "/workflows/w"), 1);
    assert_int_equal(ctl(r, "la", "Microsoft.Logic/workflows/runs/read", "/workflows/w"), 1);
    assert_int_equal(ctl(r, "la", "Microsoft.Logic/workflows/triggers/run/action", "/workflows/w"),
                     0);
    assert_int_equal(ctl(r, "la", "Microsoft.Logic/workflows/write", "/workflows/w"), 0);
    rp_rbac_free(r);
}

static void test_scope_inheritance(void **state)
{
    rp_rbac *r = new_set();

    assign(r, "a", P, "Key Vault Secrets User", "/vaults/v");
    assert_int_equal(dat(r, P, GET_S, "/vaults/v"), 1);
    assert_int_equal(dat(r, P, GET_S, "/vaults/v/secrets/s"), 1);
    assert_int_equal(dat(r, P, GET_S, "/vaults/v2"), 0);
    assert_int_equal(dat(r, P, GET_S, "/vaults/vx"), 0);
    assert_int_equal(dat(r, P, GET_S, "/vaults/vx/secrets/s"), 0);
    assert_int_equal(dat(r, P, GET_S, "/"), 0);
    assert_int_equal(dat(r, P, GET_S, "/apps/v"), 0);

    /* an assignment on one secret grants nothing on its vault or its siblings */
    assign(r, "b", Q, "Key Vault Secrets User", "/vaults/v/secrets/s");
    assert_int_equal(dat(r, Q, GET_S, "/vaults/v/secrets/s"), 1);
    assert_int_equal(dat(r, Q, GET_S, "/vaults/v/secrets/s2"), 0);
    assert_int_equal(dat(r, Q, GET_S, "/vaults/v"), 0);
    rp_rbac_free(r);
}

static void test_case_insensitive(void **state)
{
    rp_rbac *r = new_set();

    assign(r, "a", P, "key vault secrets user", "/Vaults/MyVault");
    assert_int_equal(dat(r, P, GET_S, "/vaults/myvault/secrets/S"), 1);
    assert_int_equal(dat(r, P, GET_S, "/VAULTS/MYVAULT"), 1);
    assert_int_equal(
        dat(r, P, "microsoft.keyvault/VAULTS/secrets/getsecret/ACTION", "/vaults/myvault"), 1);
    assert_int_equal(dat(r, P, GET_S, "/vaults/myvault2"), 0);
    /* principal ids are exact */
    assert_int_equal(dat(r, "11111111-AAAA-4BBB-8CCC-000000000001", GET_S, "/vaults/myvault"), 0);
    rp_rbac_free(r);
}

static void test_union(void **state)
{
    rp_rbac *r = new_set();
    rp_rbac_decision why;

    assign(r, "kv", P, "Key Vault Secrets User", "/vaults/a");
    assign(r, "blob", P, "Storage Blob Data Reader", "/storageAccounts/s");
    assign(r, "rd", P, "Reader", "/apps/x");
    assert_int_equal(dat(r, P, GET_S, "/vaults/a"), 1);
    assert_int_equal(dat(r, P,
                         "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
                         "/storageAccounts/s/containers/c"),
                     1);
    assert_int_equal(ctl(r, P, "Microsoft.Web/sites/read", "/apps/x"), 1);
    /* each grant stays at its own scope */
    assert_int_equal(dat(r, P, GET_S, "/storageAccounts/s"), 0);
    assert_int_equal(ctl(r, P, "Microsoft.Web/sites/read", "/vaults/a"), 0);
    assert_int_equal(dat(r, P,
                         "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
                         "/storageAccounts/s"),
                     0);

    /* notActions of one role do not deny what another grants */
    assign(r, "c", Q, "Contributor", "/");
    assign(r, "u", Q, "User Access Administrator", "/vaults/v");
    assert_int_equal(rp_rbac_check(r, Q, RA_W, 0, "/vaults/v/secrets/s", NOW, &why), 1);
    assert_string_equal(why.assignment_id, "u");
    assert_string_equal(why.role_name, "User Access Administrator");
    assert_string_equal(why.assignment_scope, "/vaults/v");
    assert_int_equal(ctl(r, Q, RA_W, "/apps/a"), 0);

    /* the decision names the first granting assignment in the order they were added */
    assign(r, "r1", "z", "Reader", "/");
    assign(r, "o1", "z", "Owner", "/vaults/v");
    assert_int_equal(
        rp_rbac_check(r, "z", "Microsoft.KeyVault/vaults/read", 0, "/vaults/v", NOW, &why), 1);
    assert_int_equal(why.allowed, 1);
    assert_string_equal(why.assignment_id, "r1");
    assert_string_equal(why.assignment_scope, "/");
    assert_string_equal(why.role_name, "Reader");
    assert_int_equal(
        rp_rbac_check(r, "z", "Microsoft.KeyVault/vaults/write", 0, "/vaults/v", NOW, &why), 1);
    assert_string_equal(why.assignment_id, "o1");
    rp_rbac_free(r);
}

static void test_permission_blocks(void **state)
{
    /* Each permission block subtracts its own notActions only. */
    rp_rbac *r = new_set();
    json_t *def = parse(
        "{\"id\":\"00000000-0000-0000-0000-0000000000b1\",\"properties\":{\"roleName\":\"Blocks\","
        "\"permissions\":[{\"actions\":[\"Microsoft.Web/sites/*\"],"
        "\"notActions\":[\"Microsoft.Web/sites/delete\",\"Microsoft.Web/sites/config/*\"]},"
        "{\"actions\":[\"Microsoft.Web/sites/delete\"]}]}}");
    char err[256];

    assert_int_equal(rp_rbac_add_role_json(r, def, 0, err, sizeof(err)), 0);
    assign(r, "a", P, "Blocks", "/apps/a");
    assert_int_equal(ctl(r, P, "Microsoft.Web/sites/write", "/apps/a"), 1);
    assert_int_equal(ctl(r, P, "Microsoft.Web/sites/delete", "/apps/a"), 1);
    assert_int_equal(ctl(r, P, "Microsoft.Web/sites/config/write", "/apps/a"), 0);
    json_decref(def);
    rp_rbac_free(r);
}

static void test_time_bounds(void **state)
{
    rp_rbac *r = new_set();

    /* active when not_before <= now < expires_at */
    assert_int_equal(rp_rbac_add_assignment(r, "t", P, "Reader", "/", 1000, 2000), 0);
    assert_int_equal(rp_rbac_check(r, P, "Microsoft.Web/sites/read", 0, "/", 999, NULL), 0);
    assert_int_equal(rp_rbac_check(r, P, "Microsoft.Web/sites/read", 0, "/", 1000, NULL), 1);
    assert_int_equal(rp_rbac_check(r, P, "Microsoft.Web/sites/read", 0, "/", 1999, NULL), 1);
    assert_int_equal(rp_rbac_check(r, P, "Microsoft.Web/sites/read", 0, "/", 2000, NULL), 0);
    assert_int_equal(rp_rbac_check(r, P, "Microsoft.Web/sites/read", 0, "/", 5000, NULL), 0);
    /* 0 leaves that end open */
    assert_int_equal(rp_rbac_add_assignment(r, "e", Q, "Reader", "/", 0, 2000), 0);
    assert_int_equal(rp_rbac_check(r, Q, "Microsoft.Web/sites/read", 0, "/", 0, NULL), 1);
    assert_int_equal(rp_rbac_check(r, Q, "Microsoft.Web/sites/read", 0, "/", 2000, NULL), 0);
    assert_int_equal(rp_rbac_add_assignment(r, "n", "z", "Reader", "/", 1000, 0), 0);
    assert_int_equal(rp_rbac_check(r, "z", "Microsoft.Web/sites/read", 0, "/", 999, NULL), 0);
    assert_int_equal(
        rp_rbac_check(r, "z", "Microsoft.Web/sites/read", 0, "/", INT64_C(1) << 40, NULL), 1);
    /* an expired assignment does not hide a live one after it */
    assert_int_equal(rp_rbac_add_assignment(r, "t2", P, "Reader", "/", 0, 0), 0);
    assert_int_equal(rp_rbac_check(r, P, "Microsoft.Web/sites/read", 0, "/", 5000, NULL), 1);
    rp_rbac_free(r);
}

static void test_denied_inputs(void **state)
{
    rp_rbac *r = new_set();
    rp_rbac_decision why = {1, "x", "y", "z"};
    char longact[RP_RBAC_ACTION_MAX + 2];

    /* no assignment at all */
    assert_int_equal(rp_rbac_check(r, P, "Microsoft.Web/sites/read", 0, "/", NOW, &why), 0);
    assert_int_equal(why.allowed, 0);
    assert_null(why.role_name);
    assert_null(why.assignment_id);
    assert_null(why.assignment_scope);

    assign(r, "o", P, "Owner", "/");
    assert_int_equal(ctl(r, P, "Microsoft.Web/sites/read", "/apps/a"), 1);
    assert_int_equal(ctl(r, Q, "Microsoft.Web/sites/read", "/apps/a"), 0); /* unknown principal */
    assert_int_equal(ctl(r, "", "Microsoft.Web/sites/read", "/apps/a"), 0);
    assert_int_equal(ctl(r, NULL, "Microsoft.Web/sites/read", "/apps/a"), 0);
    assert_int_equal(ctl(r, P, NULL, "/apps/a"), 0);
    assert_int_equal(ctl(r, P, "Microsoft.Web/sites/read", NULL), 0);
    assert_int_equal(rp_rbac_check(NULL, P, "Microsoft.Web/sites/read", 0, "/", NOW, NULL), 0);
    /* malformed actions are denied even to Owner's "*" */
    assert_int_equal(ctl(r, P, "", "/apps/a"), 0);
    assert_int_equal(ctl(r, P, "Microsoft.Web/sites /read", "/apps/a"), 0);
    assert_int_equal(ctl(r, P, "Microsoft.Web/*", "/apps/a"), 0);
    assert_int_equal(ctl(r, P, "Microsoft.Web/sites/read\n", "/apps/a"), 0);
    memset(longact, 'a', sizeof(longact) - 1);
    longact[sizeof(longact) - 1] = '\0';
    assert_int_equal(ctl(r, P, longact, "/apps/a"), 0);
    longact[RP_RBAC_ACTION_MAX] = '\0';
    assert_int_equal(ctl(r, P, longact, "/apps/a"), 1);
    /* malformed scopes are denied even to Owner at "/" */
    assert_int_equal(rp_rbac_check(r, P, "Microsoft.Web/sites/read", 0, "/apps/a/", NOW, &why), 0);
    assert_int_equal(why.allowed, 0);
    assert_null(why.role_name);
    assert_int_equal(ctl(r, P, "Microsoft.Web/sites/read", ""), 0);
    assert_int_equal(ctl(r, P, "Microsoft.Web/sites/read", "/apps"), 0);
    assert_int_equal(ctl(r, P, "Microsoft.Web/sites/read", "/apps/.."), 0);
    assert_int_equal(ctl(r, P, "Microsoft.Web/sites/read", "apps/a"), 0);
    rp_rbac_free(r);
}

static void test_delegation_condition(void **state)
{
    rp_rbac *r = new_set();
    rp_rbac_decision why;

    assign(r, "d", P, ID_KV_DAA, "/vaults/v");
    /* without the role being assigned, the conditioned write is never granted */
    assert_int_equal(ctl(r, P, RA_W, "/vaults/v"), 0);
    assert_int_equal(rp_rbac_check_assignment(r, P, RA_W, "/vaults/v", ID_KV_SEC_USER, NOW, &why),
                     1);
    assert_string_equal(why.assignment_id, "d");
    assert_int_equal(rp_rbac_check_assignment(r, P, RA_W, "/vaults/v/secrets/s",
                                              "Key Vault Secrets User", NOW, NULL),
                     1);
    assert_int_equal(rp_rbac_check_assignment(r, P,
                                              "Microsoft.Authorization/roleAssignments/delete",
                                              "/vaults/v", "Key Vault Reader", NOW, NULL),
                     1);
    /* not a Key Vault data role, not at its scope, not a role at all */
    assert_int_equal(rp_rbac_check_assignment(r, P, RA_W, "/vaults/v", ID_OWNER, NOW, NULL), 0);
    assert_int_equal(
        rp_rbac_check_assignment(r, P, RA_W, "/vaults/v", "Key Vault Certificate User", NOW, NULL),
        0);
    assert_int_equal(rp_rbac_check_assignment(r, P, RA_W, "/vaults/w", ID_KV_SEC_USER, NOW, NULL),
                     0);
    assert_int_equal(rp_rbac_check_assignment(r, P, RA_W, "/vaults/v", "nope", NOW, NULL), 0);
    assert_int_equal(rp_rbac_check_assignment(r, P, RA_W, "/vaults/v", NULL, NOW, &why), 0);
    assert_null(why.assignment_id);
    /* the rest of the role is unconditioned */
    assert_int_equal(ctl(r, P, "Microsoft.Authorization/roleAssignments/read", "/vaults/v"), 1);
    assert_int_equal(ctl(r, P, "Microsoft.KeyVault/vaults/read", "/vaults/v"), 1);
    /* unconditioned roles grant the write whatever role is named */
    assign(r, "o", Q, "Owner", "/");
    assert_int_equal(rp_rbac_check_assignment(r, Q, RA_W, "/vaults/v", ID_OWNER, NOW, NULL), 1);
    assert_int_equal(ctl(r, Q, RA_W, "/vaults/v"), 1);
    rp_rbac_free(r);
}

/* ---- custom roles ---- */

#define CUSTOM_ID "7f3a4c1e-0b5d-4e2a-9c8f-1d2e3f4a5b6c"

static const char custom_role[] =
    "{\"id\":\"" CUSTOM_ID "\",\"name\":\"" CUSTOM_ID "\","
    "\"type\":\"Microsoft.Authorization/roleDefinitions\","
    "\"properties\":{\"roleName\":\"Secret Rotator\",\"description\":\"Rotates secrets.\","
    "\"type\":\"CustomRole\",\"permissions\":[{\"actions\":[\"Microsoft.KeyVault/vaults/read\"],"
    "\"notActions\":[],\"dataActions\":[\"Microsoft.KeyVault/vaults/secrets/*\"],"
    "\"notDataActions\":[\"Microsoft.KeyVault/vaults/secrets/delete\","
    "\"Microsoft.KeyVault/vaults/secrets/purge/action\"]}],"
    "\"assignableScopes\":[\"/vaults/prod\",\"/vaults/staging\"]},"
    "\"maxActivationDuration\":\"PT2H\"}";

static void test_custom_role(void **state)
{
    rp_rbac *r = new_set(), *r2 = new_set();
    json_t *def = parse(custom_role), *out, *out2;
    const rp_rbac_role *role;
    char err[256];

    assert_int_equal(rp_rbac_add_role_json(r, def, 0, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    role = rp_rbac_role_find(r, "secret rotator");
    assert_non_null(role);
    assert_ptr_equal(rp_rbac_role_at(r, rp_rbac_role_count(r) - 1), role);
    assert_string_equal(rp_rbac_role_id(role), CUSTOM_ID);
    assert_int_equal(rp_rbac_role_builtin(role), 0);
    assert_int_equal(rp_rbac_role_max_activation_s(role), 7200);
    assert_int_equal(rp_rbac_role_scope_assignable(role, "/vaults/prod/secrets/s"), 1);
    assert_int_equal(rp_rbac_role_scope_assignable(role, "/vaults/Staging"), 1);
    assert_int_equal(rp_rbac_role_scope_assignable(role, "/vaults/dev"), 0);
    assert_int_equal(rp_rbac_role_scope_assignable(role, "/"), 0);

    /* assignable scopes are enforced when assigning */
    assert_int_equal(rp_rbac_add_assignment(r, "x", P, CUSTOM_ID, "/", 0, 0), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, "x", P, CUSTOM_ID, "/vaults/dev", 0, 0), RP_EINVAL);
    assign(r, "x", P, CUSTOM_ID, "/vaults/prod");
    assert_int_equal(dat(r, P, SET_S, "/vaults/prod/secrets/s"), 1);
    assert_int_equal(dat(r, P, "Microsoft.KeyVault/vaults/secrets/delete", "/vaults/prod"), 0);
    assert_int_equal(ctl(r, P, "Microsoft.KeyVault/vaults/read", "/vaults/prod"), 1);
    assert_int_equal(ctl(r, P, "Microsoft.KeyVault/vaults/write", "/vaults/prod"), 0);

    /* the JSON round-trips through another set unchanged */
    out = rp_rbac_role_to_json(role);
    assert_non_null(out);
    assert_true(json_equal(out, def));
    assert_int_equal(rp_rbac_add_role_json(r2, out, 0, err, sizeof(err)), 0);
    out2 = rp_rbac_role_to_json(rp_rbac_role_find(r2, CUSTOM_ID));
    assert_true(json_equal(out, out2));
    json_decref(out);
    json_decref(out2);
    json_decref(def);

    /* minimal: only what is required; defaults filled in */
    def =
        parse("{\"id\":\"/providers/Microsoft.Authorization/roleDefinitions/"
              "7F3A4C1E-0B5D-4E2A-9C8F-1D2E3F4A5B6D\",\"properties\":{\"roleName\":\"Minimal\","
              "\"permissions\":[{\"dataActions\":[\"Microsoft.EventGrid/events/send/action\"]}]}}");
    assert_int_equal(rp_rbac_add_role_json(r2, def, 0, NULL, 0), 0);
    json_decref(def);
    role = rp_rbac_role_find(r2, "minimal");
    assert_string_equal(rp_rbac_role_id(role), "7f3a4c1e-0b5d-4e2a-9c8f-1d2e3f4a5b6d");
    assert_int_equal(rp_rbac_role_max_activation_s(role), 8 * 3600);
    assert_int_equal(rp_rbac_role_scope_assignable(role, "/topics/t"), 1);
    out = rp_rbac_role_to_json(role);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(out, "properties"), "description")), "");
    assert_string_equal(
        json_string_value(json_array_get(
            json_object_get(json_object_get(out, "properties"), "assignableScopes"), 0)),
        "/");
    json_decref(out);
    rp_rbac_free(r);
    rp_rbac_free(r2);
}

static void test_activation_duration(void **state)
{
    static const struct {
        const char *text;
        int64_t want; /* 0: refused */
        const char *canon;
    } cases[] = {
        {"PT8H", 28800, "PT8H"},
        {"PT2H", 7200, "PT2H"},
        {"PT1H30M", 5400, "PT1H30M"},
        {"PT90M", 5400, "PT1H30M"},
        {"P1D", 86400, "PT24H"},
        {"PT24H", 86400, "PT24H"},
        {"PT5M", 300, "PT5M"},
        {"PT1H0M30S", 3630, "PT1H30S"},
        {"PT25H", 0, NULL},
        {"P1DT1S", 0, NULL},
        {"PT4M", 0, NULL},
        {"PT299S", 0, NULL},
        {"8H", 0, NULL},
        {"PT", 0, NULL},
        {"P", 0, NULL},
        {"PT8h", 0, NULL},
        {"pt8H", 0, NULL},
        {"P1M", 0, NULL},
        {"PT-1H", 0, NULL},
        {"PT1H1H", 0, NULL},
        {"PT1M1H", 0, NULL},
        {"PT1.5H", 0, NULL},
        {"PT1000000S", 0, NULL},
        {"P1DT", 0, NULL},
        {"PTT1H", 0, NULL},
        {"PT1H ", 0, NULL},
        {"", 0, NULL},
    };
    char text[512], err[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rp_rbac *r = new_set();
        json_t *def, *out;
        int rc;

        snprintf(text, sizeof(text),
                 "{\"id\":\"" CUSTOM_ID "\",\"properties\":{\"roleName\":\"D\",\"permissions\":"
                 "[{\"actions\":[\"a/read\"]}]},\"maxActivationDuration\":\"%s\"}",
                 cases[i].text);
        def = parse(text);
        rc = rp_rbac_add_role_json(r, def, 0, err, sizeof(err));
        if (cases[i].want == 0) {
            if (rc != RP_EINVAL || strstr(err, "maxActivationDuration") == NULL)
                fail_msg("\"%s\" accepted or wrong message: %d %s", cases[i].text, rc, err);
        } else {
            const rp_rbac_role *role = rp_rbac_role_find(r, CUSTOM_ID);
            if (rc != 0)
                fail_msg("\"%s\" refused: %s", cases[i].text, err);
            assert_int_equal(rp_rbac_role_max_activation_s(role), cases[i].want);
            out = rp_rbac_role_to_json(role);
            assert_string_equal(json_string_value(json_object_get(out, "maxActivationDuration")),
                                cases[i].canon);
            json_decref(out);
        }
        json_decref(def);
        rp_rbac_free(r);
    }
}

#define J_ID          "\"id\":\"" CUSTOM_ID "\""
#define J_PERMS       "\"permissions\":[{\"actions\":[\"Microsoft.Web/sites/read\"]}]"
#define J_ROLE(props) "{" J_ID ",\"properties\":{\"roleName\":\"R\"," props "}}"
#define J_ACTS(list)  J_ROLE("\"permissions\":[{\"actions\":" list "}]")

typedef struct bad_case {
    const char *json;
    const char *field; /* the error message must contain it */
} bad_case;

static const bad_case bad_cases[] = {
    {"[]", "definition"},
    {"\"x\"", "definition"},
    {"{\"properties\":{\"roleName\":\"R\"," J_PERMS "}}", "id"},
    {"{\"id\":\"abc\",\"properties\":{\"roleName\":\"R\"," J_PERMS "}}", "id"},
    {"{\"id\":5,\"properties\":{\"roleName\":\"R\"," J_PERMS "}}", "id"},
    {"{\"id\":\"{7f3a4c1e-0b5d-4e2a-9c8f-1d2e3f4a5b6c}\",\"properties\":{\"roleName\":"
     "\"R\"," J_PERMS "}}",
     "id"},
    {"{\"id\":\"7f3a4c1e-0b5d-4e2a-9c8f-1d2e3f4a5b6g\",\"properties\":{\"roleName\":\"R\"," J_PERMS
     "}}",
     "id"},
    {"{\"id\":\"7f3a4c1e0b5d-4e2a-9c8f-1d2e3f4a5b6c0\",\"properties\":{\"roleName\":\"R\"," J_PERMS
     "}}",
     "id"},
    {"{" J_ID ",\"name\":\"00000000-0000-0000-0000-000000000000\",\"properties\":{\"roleName\":"
     "\"R\"," J_PERMS "}}",
     "name"},
    {"{" J_ID ",\"type\":\"CustomRole\",\"properties\":{\"roleName\":\"R\"," J_PERMS "}}", "type"},
    {"{" J_ID ",\"roleName\":\"R\"," J_PERMS "}", "roleName: unknown field"},
    {"{" J_ID "}", "properties"},
    {"{" J_ID ",\"properties\":[]}", "properties"},
    {J_ROLE(J_PERMS ",\"assignablescopes\":[\"/\"]"), "properties.assignablescopes: unknown"},
    {"{" J_ID ",\"properties\":{" J_PERMS "}}", "properties.roleName"},
    {"{" J_ID ",\"properties\":{\"roleName\":\"\"," J_PERMS "}}", "properties.roleName"},
    {"{" J_ID ",\"properties\":{\"roleName\":\" R\"," J_PERMS "}}", "properties.roleName"},
    {"{" J_ID ",\"properties\":{\"roleName\":\"R \"," J_PERMS "}}", "properties.roleName"},
    {"{" J_ID ",\"properties\":{\"roleName\":\"a\\tb\"," J_PERMS "}}", "properties.roleName"},
    {"{" J_ID ",\"properties\":{\"roleName\":\"R\\u00f4le\"," J_PERMS "}}", "properties.roleName"},
    {"{" J_ID ",\"properties\":{\"roleName\":5," J_PERMS "}}", "properties.roleName"},
    {"{" J_ID ",\"properties\":{\"roleName\":\"" ID_OWNER "\"," J_PERMS "}}",
     "properties.roleName"},
    {J_ROLE(J_PERMS ",\"description\":5"), "properties.description"},
    {J_ROLE(J_PERMS ",\"description\":\"a\\nb\""), "properties.description"},
    {J_ROLE(J_PERMS ",\"type\":\"BuiltInRole\""), "properties.type"},
    {J_ROLE(J_PERMS ",\"type\":\"Other\""), "properties.type"},
    {J_ROLE("\"description\":\"no permissions\""), "properties.permissions"},
    {J_ROLE("\"permissions\":[]"), "properties.permissions"},
    {J_ROLE("\"permissions\":{}"), "properties.permissions"},
    {J_ROLE("\"permissions\":[1]"), "properties.permissions[0]"},
    {J_ROLE("\"permissions\":[{}]"), "properties.permissions: the role needs"},
    {J_ROLE("\"permissions\":[{\"notActions\":[\"a/b\"],\"notDataActions\":[\"c/d\"]}]"),
     "properties.permissions: the role needs"},
    {J_ROLE("\"permissions\":[{\"actions\":[\"a/b\"],\"notactions\":[\"a/b\"]}]"),
     "properties.permissions[0].notactions: unknown field"},
    {J_ROLE("\"permissions\":[{\"actions\":[\"a/b\"],\"condition\":\"true\"}]"),
     "properties.permissions[0].condition"},
    {J_ROLE("\"permissions\":[{\"actions\":\"a/b\"}]"), "properties.permissions[0].actions"},
    {J_ACTS("[\"\"]"), "properties.permissions[0].actions[0]"},
    {J_ACTS("[\"a/b\",\"Microsoft.Web/sites /read\"]"), "properties.permissions[0].actions[1]"},
    {J_ACTS("[\"a\\tb\"]"), "properties.permissions[0].actions[0]"},
    {J_ACTS("[\"Microsoft.Web/sites?x\"]"), "properties.permissions[0].actions[0]"},
    {J_ACTS("[\"Microsoft.Web\\\\sites\"]"), "properties.permissions[0].actions[0]"},
    {J_ACTS("[\"Microsoft.Web/sit\\u00e9s\"]"), "properties.permissions[0].actions[0]"},
    {J_ACTS("[5]"), "properties.permissions[0].actions[0]"},
    {J_ACTS("[null]"), "properties.permissions[0].actions[0]"},
    {J_ROLE("\"permissions\":[{\"actions\":[\"a/b\"],\"dataActions\":[\"x y\"]}]"),
     "properties.permissions[0].dataActions[0]"},
    {J_ROLE("\"permissions\":[{\"actions\":[\"a/b\"]},{\"actions\":[\"a/b\"],\"notDataActions\":"
            "[\"%\"]}]"),
     "properties.permissions[1].notDataActions[0]"},
    {J_ROLE(J_PERMS ",\"assignableScopes\":[]"), "properties.assignableScopes"},
    {J_ROLE(J_PERMS ",\"assignableScopes\":\"/\""), "properties.assignableScopes"},
    {J_ROLE(J_PERMS ",\"assignableScopes\":[\"/vaults/\"]"), "properties.assignableScopes[0]"},
    {J_ROLE(J_PERMS ",\"assignableScopes\":[\"/\",5]"), "properties.assignableScopes[1]"},
    {"{" J_ID ",\"properties\":{\"roleName\":\"R\"," J_PERMS "},\"maxActivationDuration\":8}",
     "maxActivationDuration"},
};

static void check_bad(rp_rbac *r, json_t *def, const char *field, const char *what)
{
    char err[256];
    int rc;

    snprintf(err, sizeof(err), "unchanged");
    rc = rp_rbac_add_role_json(r, def, 0, err, sizeof(err));
    if (rc != RP_EINVAL || strstr(err, field) == NULL)
        fail_msg("%s: want RP_EINVAL naming \"%s\", got %d \"%s\"", what, field, rc, err);
}

static void test_custom_role_invalid(void **state)
{
    rp_rbac *r = new_set();
    size_t before = rp_rbac_role_count(r);
    char name[RP_RBAC_ROLE_NAME_MAX + 2], pattern[RP_RBAC_PATTERN_MAX + 2];
    json_t *def, *arr;

    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        char what[32];
        def = parse(bad_cases[i].json);
        snprintf(what, sizeof(what), "case %zu", i);
        check_bad(r, def, bad_cases[i].field, what);
        json_decref(def);
    }

    /* the limits, one past each */
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    def = parse(J_ROLE(J_PERMS));
    json_object_set_new(json_object_get(def, "properties"), "roleName", json_string(name));
    check_bad(r, def, "properties.roleName", "long roleName");
    json_decref(def);

    memset(pattern, 'p', sizeof(pattern) - 1);
    pattern[sizeof(pattern) - 1] = '\0';
    def = parse(J_ACTS("[]"));
    arr = json_object_get(
        json_array_get(json_object_get(json_object_get(def, "properties"), "permissions"), 0),
        "actions");
    json_array_append_new(arr, json_string(pattern));
    check_bad(r, def, "properties.permissions[0].actions[0]", "long pattern");
    json_array_clear(arr);
    for (int i = 0; i <= RP_RBAC_PATTERNS_MAX; i++)
        json_array_append_new(arr, json_string("a/read"));
    check_bad(r, def, "properties.permissions[0].actions: at most", "too many patterns");
    json_decref(def);

    def = parse(J_ROLE("\"permissions\":[]"));
    arr = json_object_get(json_object_get(def, "properties"), "permissions");
    for (int i = 0; i <= RP_RBAC_BLOCKS_MAX; i++)
        json_array_append_new(arr, json_pack("{s:[s]}", "actions", "a/read"));
    check_bad(r, def, "properties.permissions", "too many blocks");
    json_decref(def);

    def = parse(J_ROLE(J_PERMS));
    {
        char desc[RP_RBAC_DESCRIPTION_MAX + 2];
        memset(desc, 'd', sizeof(desc) - 1);
        desc[sizeof(desc) - 1] = '\0';
        json_object_set_new(json_object_get(def, "properties"), "description", json_string(desc));
        check_bad(r, def, "properties.description", "long description");
    }
    /* a NUL inside a string is refused, not truncated */
    json_object_set_new(json_object_get(def, "properties"), "description", json_string("ok"));
    json_object_set_new(json_object_get(def, "properties"), "roleName", json_stringn("R\0x", 3));
    check_bad(r, def, "properties.roleName", "NUL in roleName");
    json_decref(def);

    assert_int_equal(rp_rbac_add_role_json(r, NULL, 0, NULL, 0), RP_EINVAL);
    assert_int_equal(rp_rbac_add_role_json(NULL, NULL, 0, NULL, 0), RP_EINVAL);
    /* nothing was added by any of these */
    assert_int_equal(rp_rbac_role_count(r), before);
    rp_rbac_free(r);
}

static void test_duplicates(void **state)
{
    rp_rbac *r = new_set();
    json_t *def = parse(custom_role);
    char err[256];

    assert_int_equal(rp_rbac_add_role_json(r, def, 0, err, sizeof(err)), 0);
    assert_int_equal(rp_rbac_add_role_json(r, def, 0, err, sizeof(err)), RP_EEXIST);
    assert_non_null(strstr(err, "id"));
    json_decref(def);

    /* same name in another case, another id */
    def = parse("{\"id\":\"00000000-0000-0000-0000-000000000001\",\"properties\":{"
                "\"roleName\":\"SECRET ROTATOR\"," J_PERMS "}}");
    assert_int_equal(rp_rbac_add_role_json(r, def, 0, err, sizeof(err)), RP_EEXIST);
    assert_non_null(strstr(err, "roleName"));
    json_decref(def);

    /* built-ins can be neither shadowed by name nor replaced by id, built-in flag or not */
    def = parse("{\"id\":\"00000000-0000-0000-0000-000000000002\",\"properties\":{"
                "\"roleName\":\"owner\"," J_PERMS "}}");
    assert_int_equal(rp_rbac_add_role_json(r, def, 0, err, sizeof(err)), RP_EEXIST);
    assert_int_equal(rp_rbac_add_role_json(r, def, 1, err, sizeof(err)), RP_EEXIST);
    json_decref(def);
    def = parse("{\"id\":\"" ID_OWNER "\",\"properties\":{\"roleName\":\"Owner2\"," J_PERMS "}}");
    assert_int_equal(rp_rbac_add_role_json(r, def, 0, err, sizeof(err)), RP_EEXIST);
    assert_int_equal(rp_rbac_add_role_json(r, def, 1, err, sizeof(err)), RP_EEXIST);
    json_decref(def);
    assert_string_equal(rp_rbac_role_name(rp_rbac_role_find(r, ID_OWNER)), "Owner");

    /* a role added as built-in */
    def = parse("{\"id\":\"00000000-0000-0000-0000-000000000003\",\"properties\":{"
                "\"roleName\":\"Platform\",\"type\":\"BuiltInRole\"," J_PERMS "}}");
    assert_int_equal(rp_rbac_add_role_json(r, def, 1, err, sizeof(err)), 0);
    assert_int_equal(rp_rbac_role_builtin(rp_rbac_role_find(r, "Platform")), 1);
    json_decref(def);

    /* assignment ids are unique too */
    assign(r, "a1", P, "Reader", "/");
    assert_int_equal(rp_rbac_add_assignment(r, "a1", Q, "Owner", "/", 0, 0), RP_EEXIST);
    assert_int_equal(ctl(r, Q, "Microsoft.Web/sites/write", "/"), 0);
    rp_rbac_free(r);
}

static void test_assignment_errors(void **state)
{
    rp_rbac *r = new_set();
    char longid[RP_RBAC_ID_MAX + 2];

    assert_int_equal(rp_rbac_add_assignment(r, "a", P, "No Such Role", "/", 0, 0), RP_ENOENT);
    assert_int_equal(
        rp_rbac_add_assignment(r, "a", P, "00000000-0000-0000-0000-000000000000", "/", 0, 0),
        RP_ENOENT);
    assert_int_equal(rp_rbac_add_assignment(r, "a", P, "Reader", "/vaults/", 0, 0), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, "a", P, "Reader", "", 0, 0), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, "a", P, "Reader", "/vaults/a b", 0, 0), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, "", P, "Reader", "/", 0, 0), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, "a b", P, "Reader", "/", 0, 0), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, "a", "", "Reader", "/", 0, 0), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, "a", "p q", "Reader", "/", 0, 0), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, "a", "p\x80", "Reader", "/", 0, 0), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, "a", P, "Reader", "/", -1, 0), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, "a", P, "Reader", "/", 0, -1), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, "a", P, "Reader", "/", 2000, 2000), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, "a", P, "Reader", "/", 2000, 1000), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, NULL, P, "Reader", "/", 0, 0), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, "a", NULL, "Reader", "/", 0, 0), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, "a", P, NULL, "/", 0, 0), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, "a", P, "Reader", NULL, 0, 0), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(NULL, "a", P, "Reader", "/", 0, 0), RP_EINVAL);
    memset(longid, 'i', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_int_equal(rp_rbac_add_assignment(r, longid, P, "Reader", "/", 0, 0), RP_EINVAL);
    assert_int_equal(rp_rbac_add_assignment(r, "a", longid, "Reader", "/", 0, 0), RP_EINVAL);
    longid[RP_RBAC_ID_MAX] = '\0';
    assert_int_equal(rp_rbac_add_assignment(r, longid, longid, "Reader", "/", 0, 0), 0);
    /* none of the refused ones was added */
    assert_int_equal(ctl(r, P, "Microsoft.Web/sites/read", "/"), 0);
    assert_int_equal(ctl(r, longid, "Microsoft.Web/sites/read", "/"), 1);
    rp_rbac_free(r);
}

static void test_many_principals(void **state)
{
    /* Enough principals and assignments to grow and rebuild both hash tables several times. */
    rp_rbac *r = new_set();
    char id[64], who[64], scope[64];
    rp_rbac_decision why;

    for (int i = 0; i < 3000; i++) {
        snprintf(who, sizeof(who), "principal-%d", i);
        snprintf(scope, sizeof(scope), "/vaults/v%d", i);
        snprintf(id, sizeof(id), "r-%d", i);
        assign(r, id, who, "Reader", scope);
        snprintf(id, sizeof(id), "s-%d", i);
        assign(r, id, who, "Key Vault Secrets User", scope);
        if (i % 3 == 0) {
            snprintf(id, sizeof(id), "o-%d", i);
            assign(r, id, who, "Owner", scope);
        }
    }
    for (int i = 0; i < 3000; i++) {
        snprintf(who, sizeof(who), "principal-%d", i);
        snprintf(scope, sizeof(scope), "/vaults/v%d/secrets/s", i);
        assert_int_equal(
            rp_rbac_check(r, who, "Microsoft.KeyVault/vaults/read", 0, scope, NOW, &why), 1);
        snprintf(id, sizeof(id), "r-%d", i);
        assert_string_equal(why.assignment_id, id);
        assert_int_equal(dat(r, who, GET_S, scope), 1);
        assert_int_equal(ctl(r, who, "Microsoft.KeyVault/vaults/write", scope), i % 3 == 0);
        snprintf(scope, sizeof(scope), "/vaults/v%d", i + 1);
        assert_int_equal(dat(r, who, GET_S, scope), 0);
    }
    assert_int_equal(ctl(r, "principal-3000", "Microsoft.KeyVault/vaults/read", "/vaults/v1"), 0);
    rp_rbac_free(r);
}

static void test_alloc_failure(void **state)
{
    rp_rbac *r = NULL;
    json_t *def = parse(custom_role);
    int rc = RP_ENOMEM;
    long n;

    for (n = 0; rc == RP_ENOMEM; n++) {
        rp_alloc_fail_after(n);
        rc = rp_rbac_create(&r);
        rp_alloc_fail_after(-1);
        if (rc == RP_ENOMEM)
            assert_null(r);
    }
    assert_int_equal(rc, 0);
    assert_true(n > 1);

    /* each failed add leaves the set as it was; the retry succeeds once */
    rc = RP_ENOMEM;
    for (n = 0; rc == RP_ENOMEM; n++) {
        rp_alloc_fail_after(n);
        rc = rp_rbac_add_role_json(r, def, 0, NULL, 0);
        rp_alloc_fail_after(-1);
        if (rc == RP_ENOMEM)
            assert_null(rp_rbac_role_find(r, CUSTOM_ID));
    }
    assert_int_equal(rc, 0);
    assert_non_null(rp_rbac_role_find(r, CUSTOM_ID));

    for (int i = 0; i < 200; i++) {
        char id[32], who[32];
        snprintf(id, sizeof(id), "a%d", i);
        snprintf(who, sizeof(who), "p%d", i % 37);
        rc = RP_ENOMEM;
        for (n = 0; rc == RP_ENOMEM; n++) {
            rp_alloc_fail_after(n);
            rc = rp_rbac_add_assignment(r, id, who, i % 2 ? "Reader" : "Owner", "/apps/a", 0, 0);
            rp_alloc_fail_after(-1);
        }
        assert_int_equal(rc, 0);
    }
    for (int i = 0; i < 37; i++) {
        char who[32];
        snprintf(who, sizeof(who), "p%d", i);
        assert_int_equal(ctl(r, who, "Microsoft.Web/sites/write", "/apps/a/functions/f"), 1);
    }
    assert_int_equal(rp_rbac_add_assignment(r, "a0", "p0", "Owner", "/", 0, 0), RP_EEXIST);

    /* to_json allocates only through jansson; it is checked for NULL throughout */
    json_decref(def);
    rp_rbac_free(r);
    rp_rbac_free(NULL);
    assert_int_equal(rp_rbac_create(NULL), RP_EINVAL);
}

static void test_perf(void **state)
{
    /* Informational: a principal with ten assignments, asking at a deep scope; the granting
     * assignment is the last one, so every assignment is looked at. */
    static const char *const roles[] = {
        "Reader",
        "Key Vault Reader",
        "Key Vault Secrets Officer",
        "EventGrid Data Sender",
        "Storage Blob Data Reader",
        "Logic App Operator",
        "Website Contributor",
        "Key Vault Crypto User",
        "Managed Identity Operator",
        "Key Vault Secrets User",
    };
    static const char *const scopes[] = {
        "/apps/a",      "/vaults/other", "/vaults/other2", "/topics/t",     "/storageAccounts/s",
        "/workflows/w", "/apps/b",       "/vaults/v3",     "/identities/i", "/vaults/v",
    };
    rp_rbac *r = new_set();
    struct timespec t0, t1;
    int allowed = 0, iters = 1000000;
    char id[32], who[32];
    double ns;

    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "perf-%d", i);
        assign(r, id, P, roles[i], scopes[i]);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "bg-%d", i);
        snprintf(who, sizeof(who), "bg-principal-%d", i);
        assign(r, id, who, "Reader", "/");
    }
    assert_int_equal(dat(r, P, GET_S, "/vaults/v/secrets/s"), 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < iters; i++)
        allowed += rp_rbac_check(r, P, GET_S, 1, "/vaults/v/secrets/s", NOW, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(allowed, iters);
    ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / iters;
    print_message("rbac perf: %.0f ns/check (10 assignments, granted by the last)\n", ns);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < iters; i++)
        allowed += rp_rbac_check(r, P, SET_S, 1, "/vaults/v/secrets/s", NOW, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / iters;
    print_message("rbac perf: %.0f ns/check (10 assignments, denied)\n", ns);
    rp_rbac_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_action_match),        cmocka_unit_test(test_scope_valid),
        cmocka_unit_test(test_scope_ancestor),      cmocka_unit_test(test_builtins),
        cmocka_unit_test(test_builtin_json_shape),  cmocka_unit_test(test_role_find),
        cmocka_unit_test(test_not_actions),         cmocka_unit_test(test_control_vs_data),
        cmocka_unit_test(test_key_vault_roles),     cmocka_unit_test(test_scope_inheritance),
        cmocka_unit_test(test_case_insensitive),    cmocka_unit_test(test_union),
        cmocka_unit_test(test_permission_blocks),   cmocka_unit_test(test_time_bounds),
        cmocka_unit_test(test_denied_inputs),       cmocka_unit_test(test_delegation_condition),
        cmocka_unit_test(test_custom_role),         cmocka_unit_test(test_activation_duration),
        cmocka_unit_test(test_custom_role_invalid), cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_assignment_errors),   cmocka_unit_test(test_many_principals),
        cmocka_unit_test(test_alloc_failure),       cmocka_unit_test(test_perf),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
