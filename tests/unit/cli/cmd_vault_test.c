/*
 * cmd_vault_test.c - unit tests for cli/cmd_vault: `rampart vault create|list|show|delete`
 * run against the scripted local server (testserver.h) answering with the shapes the real
 * /api/vaults handler produces (vault/vault.c vault_json), checking the request each command
 * builds, what it prints and its exit code: 0, 2 for an invalid name or retention (before any
 * request), 4 for HTTP 409, 5 for other errors, 6 for 401/403. The client's name rule is
 * checked against the server's (rp_vault_name_valid) so the two cannot drift apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "cli/testserver.h"

#include "cli/cmd_common.h"
#include "cli/cmd_vault.h"
#include "vault/vault.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[1024];
static ts_server srv;
static char url[64], home_env[1200];
static char out_text[65536], err_text[65536];

/* What PUT/GET /api/vaults/kv1 answers (vault_json with port 8443, domain localhost). */
#define KV1                                                                                        \
    "{\"name\":\"kv1\",\"id\":\"/vaults/kv1\",\"properties\":{\"vaultUri\":"                       \
    "\"https://kv1.vault.localhost:8443/\",\"enableSoftDelete\":true,"                             \
    "\"enableRbacAuthorization\":true,\"enablePurgeProtection\":true,"                             \
    "\"softDeleteRetentionInDays\":30,\"createdAt\":1795928400,"                                   \
    "\"encryption\":{\"keySource\":\"Microsoft.Rampart\"}}}"
#define KV2                                                                                        \
    "{\"name\":\"team-a-2\",\"id\":\"/vaults/team-a-2\",\"properties\":{\"vaultUri\":"             \
    "\"https://team-a-2.vault.localhost:8443/\",\"enableSoftDelete\":true,"                        \
    "\"enableRbacAuthorization\":true,\"enablePurgeProtection\":false,"                            \
    "\"softDeleteRetentionInDays\":90,\"createdAt\":1795928400,"                                   \
    "\"encryption\":{\"keySource\":\"Microsoft.Rampart\"}}}"

static int setup(void **state)
{
    (void)state;
    ts_fixture_start(&srv, "cmd_vault_test", tmpdir, sizeof(tmpdir));
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.port);
    snprintf(home_env, sizeof(home_env), "HOME=%s", tmpdir); /* no client file there */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ts_fixture_stop(&srv, tmpdir);
    return 0;
}

/*
 * Runs rp_cmd_vault with args (NULL-terminated) plus --url/--ca/--token (unless bare),
 * capturing stdout and stderr into out_text / err_text. Returns the exit code.
 */
static int run_argv(int bare, const char *const *args)
{
    char *argv[40], o[1200], e[1200];
    char *envp[] = {home_env, NULL};
    int argc = 0, rc, save1, save2, fd1, fd2;

    for (; args[argc] != NULL; argc++)
        argv[argc] = (char *)args[argc];
    if (!bare) {
        argv[argc++] = "--url";
        argv[argc++] = url;
        argv[argc++] = "--ca";
        argv[argc++] = srv.ca_path;
        argv[argc++] = "--token";
        argv[argc++] = "tok-S3cr3t";
    }
    argv[argc] = NULL;
    snprintf(o, sizeof(o), "%s/out.txt", tmpdir);
    snprintf(e, sizeof(e), "%s/err.txt", tmpdir);
    fflush(stdout);
    fflush(stderr);
    save1 = dup(1);
    save2 = dup(2);
    fd1 = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    fd2 = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(save1 >= 0 && save2 >= 0 && fd1 >= 0 && fd2 >= 0);
    dup2(fd1, 1);
    dup2(fd2, 2);
    rc = rp_cmd_vault(argc, argv, envp);
    fflush(stdout);
    fflush(stderr);
    dup2(save1, 1);
    dup2(save2, 2);
    close(save1);
    close(save2);
    close(fd1);
    close(fd2);
    ts_slurp(o, out_text, sizeof(out_text));
    ts_slurp(e, err_text, sizeof(err_text));
    return rc;
}

#define run(bare, ...) run_argv((bare), (const char *const[]){__VA_ARGS__})

static const ts_req *last_req(void)
{
    return ts_req_at(&srv, ts_nreqs(&srv) - 1);
}

/* ---------------------------------------------------------------- names */

static void test_names(void **state)
{
    static const char *const good[] = {"abc", "a-b-c", "kv1", "team-a-2",
                                       "a23456789012345678901234"};
    static const char *const bad[] = {"ab",   "Abc",   "1abc", "a--b", "abc-",
                                      "a_b",  "a.bc",  "",     "a b",  "-abc",
                                      "../x", "a%2fb", "kv/1", "é-kv", "a234567890123456789012345"};

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(rp_cmd_vault_name_valid(good[i]));
        assert_true(rp_vault_name_valid(good[i])); /* the server agrees */
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(rp_cmd_vault_name_valid(bad[i]));
        assert_false(rp_vault_name_valid(bad[i]));
    }
    assert_false(rp_cmd_vault_name_valid(NULL));
}

/* ---------------------------------------------------------------- create */

static void test_create(void **state)
{
    (void)state;
    ts_reset(&srv);
    ts_route_add(&srv, "PUT", "/api/vaults/kv1", 201, KV1);

    assert_int_equal(run(0, "create", "kv1", "--purge-protection", "--retention-days", "30", NULL),
                     RP_EXIT_OK);
    assert_string_equal(last_req()->method, "PUT");
    assert_string_equal(last_req()->target, "/api/vaults/kv1");
    assert_string_equal(last_req()->body, "{\"purgeProtection\":true,\"retentionDays\":30}");
    assert_non_null(strstr(last_req()->head, "Bearer tok-S3cr3t"));
    assert_string_equal(out_text, "Created vault kv1\n\n"
                                  "  name              kv1\n"
                                  "  uri               https://kv1.vault.localhost:8443/\n"
                                  "  purge protection  true\n"
                                  "  retention days    30\n"
                                  "  created           2026-11-29T05:00:00Z\n");
    assert_string_equal(err_text, "");

    /* No flags: nothing named, the server keeps (or defaults) every setting. */
    assert_int_equal(run(0, "create", "kv1", NULL), RP_EXIT_OK);
    assert_string_equal(last_req()->body, "{}");

    /* --cmk names a key; "none" goes back to the root key. */
    assert_int_equal(run(0, "create", "kv1", "--cmk", "keys1/keys/k", NULL), RP_EXIT_OK);
    assert_string_equal(last_req()->body, "{\"customerManagedKey\":\"keys1/keys/k\"}");
    assert_int_equal(run(0, "create", "kv1", "--cmk", "none", NULL), RP_EXIT_OK);
    assert_string_equal(last_req()->body, "{\"customerManagedKey\":null}");

    assert_int_equal(run(0, "create", "kv1", "--retention-days=7", "--output", "json", NULL),
                     RP_EXIT_OK);
    assert_string_equal(last_req()->body, "{\"retentionDays\":7}");
    assert_non_null(strstr(out_text, "\"vaultUri\": \"https://kv1.vault.localhost:8443/\""));
    assert_null(strstr(out_text, "Created"));

    /* 200: the vault existed and was updated (purge protection turned on). */
    ts_reset(&srv);
    ts_route_add(&srv, "PUT", "/api/vaults/kv1", 200, KV1);
    assert_int_equal(run(0, "create", "kv1", "--purge-protection", "--retention-days", "30", NULL),
                     RP_EXIT_OK);
    assert_non_null(strstr(out_text, "Updated vault kv1\n"));

    /* A duplicate with another retention period: 409, exit 4, the server's reason shown. */
    ts_reset(&srv);
    ts_route_add(&srv, "PUT", "/api/vaults/kv1", 409,
                 "{\"error\":{\"code\":\"Conflict\",\"message\":\"softDeleteRetentionInDays is "
                 "set at creation and cannot change\"}}");
    assert_int_equal(run(0, "create", "kv1", "--retention-days", "60", NULL), RP_EXIT_CONFLICT);
    assert_non_null(strstr(err_text, "HTTP 409"));
    assert_non_null(strstr(err_text, "Conflict: softDeleteRetentionInDays is set at creation"));
    assert_string_equal(out_text, "");
    assert_int_equal(ts_nreqs(&srv), 1);

    /* A server failure stays exit 5. */
    ts_reset(&srv);
    ts_route_add(&srv, "PUT", "/api/vaults/kv1", 500,
                 "{\"error\":{\"code\":\"InternalError\",\"message\":\"boom\"}}");
    assert_int_equal(run(0, "create", "kv1", NULL), RP_EXIT_SERVER);
    assert_non_null(strstr(err_text, "InternalError: boom"));
}

static void test_create_usage(void **state)
{
    static const char *const days[] = {"6", "91", "0", "-7", "abc", "30d", "", "007x"};

    (void)state;
    ts_reset(&srv);
    ts_route_add(&srv, "PUT", "/api/vaults/*", 201, KV1);
    for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++) {
        assert_int_equal(run(0, "create", "kv1", "--retention-days", days[i], NULL), RP_EXIT_USAGE);
        assert_non_null(strstr(err_text, "--retention-days must be a whole number from 7 to 90"));
    }
    assert_int_equal(run(0, "create", "kv1", "--retention-days", "90", NULL), RP_EXIT_OK);
    assert_int_equal(ts_nreqs(&srv), 1);
    assert_int_equal(run(1, "create", NULL), RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "usage: rampart vault create NAME"));
    assert_int_equal(run(1, "create", "kv1", "kv2", NULL), RP_EXIT_USAGE);
    assert_int_equal(run(1, "create", "kv1", "--purge-protection=yes", NULL), RP_EXIT_USAGE);
    assert_int_equal(run(1, "create", "kv1", "--output", "yaml", NULL), RP_EXIT_USAGE);
    assert_int_equal(ts_nreqs(&srv), 1);
}

/* Invalid names are usage errors for every subcommand and never reach the server. */
static void test_invalid_names(void **state)
{
    static const char *const bad[] = {
        "ab",     "KV1",         "a--b",    "kv-",
        "../api", "kv1/secrets", "kv1?x=1", "a234567890123456789012345"};
    static const char *const subs[] = {"create", "show", "delete"};

    (void)state;
    ts_reset(&srv);
    ts_route_add(&srv, "PUT", "/api/*", 201, KV1);
    ts_route_add(&srv, "GET", "/api/*", 200, KV1);
    ts_route_add(&srv, "DELETE", "/api/*", 204, NULL);
    for (size_t s = 0; s < sizeof(subs) / sizeof(subs[0]); s++)
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            assert_int_equal(run(0, subs[s], bad[i], NULL), RP_EXIT_USAGE);
            assert_non_null(strstr(err_text, "invalid vault name"));
            assert_non_null(strstr(err_text, "3-24 characters"));
            assert_string_equal(out_text, "");
        }
    assert_int_equal(ts_nreqs(&srv), 0);
    /* also without any server configured: the name is judged first */
    assert_int_equal(run(1, "show", "A", NULL), RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "invalid vault name"));
}

/* ---------------------------------------------------------------- list, show, delete */

static void test_list_show_delete(void **state)
{
    (void)state;
    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/api/vaults", 200, "{\"value\":[" KV1 "," KV2 "]}");
    ts_route_add(&srv, "GET", "/api/vaults/kv1", 200, KV1);
    ts_route_add(&srv, "DELETE", "/api/vaults/kv1", 204, NULL);
    ts_route_add(&srv, "DELETE", "/api/vaults/team-a-2", 409,
                 "{\"error\":{\"code\":\"Conflict\",\"message\":\"the vault has purge protection "
                 "and still holds secrets or keys\"}}");
    ts_route_add(&srv, "DELETE", "/api/vaults/gone", 404,
                 "{\"error\":{\"code\":\"NotFound\",\"message\":\"no such vault\"}}");
    ts_route_add(&srv, "GET", "/api/vaults/gone", 404,
                 "{\"error\":{\"code\":\"NotFound\",\"message\":\"no such vault\"}}");

    assert_int_equal(run(0, "list", NULL), RP_EXIT_OK);
    assert_string_equal(last_req()->target, "/api/vaults");
    assert_string_equal(out_text,
                        "NAME      URI                                     PURGE PROTECTION  "
                        "RETENTION\n"
                        "kv1       https://kv1.vault.localhost:8443/       true              30\n"
                        "team-a-2  https://team-a-2.vault.localhost:8443/  false             90\n");
    assert_int_equal(run(0, "list", "--output", "json", NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "\"value\": ["));
    assert_int_equal(run(0, "list", "extra", NULL), RP_EXIT_USAGE);

    assert_int_equal(run(0, "show", "kv1", NULL), RP_EXIT_OK);
    assert_string_equal(last_req()->method, "GET");
    assert_string_equal(last_req()->target, "/api/vaults/kv1");
    assert_string_equal(out_text, "  name              kv1\n"
                                  "  uri               https://kv1.vault.localhost:8443/\n"
                                  "  purge protection  true\n"
                                  "  retention days    30\n"
                                  "  created           2026-11-29T05:00:00Z\n");
    assert_int_equal(run(0, "show", "kv1", "--output", "json", NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "\"softDeleteRetentionInDays\": 30"));
    assert_int_equal(run(0, "show", "gone", NULL), RP_EXIT_SERVER);
    assert_non_null(strstr(err_text, "HTTP 404: NotFound: no such vault"));

    assert_int_equal(run(0, "delete", "kv1", NULL), RP_EXIT_OK);
    assert_string_equal(last_req()->method, "DELETE");
    assert_string_equal(last_req()->target, "/api/vaults/kv1");
    assert_string_equal(out_text, "Deleted vault kv1\n");
    assert_int_equal(run(0, "delete", "kv1", "--output", "json", NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "\"deleted\": \"vault\""));
    assert_int_equal(run(0, "delete", "team-a-2", NULL), RP_EXIT_CONFLICT);
    assert_non_null(strstr(err_text, "purge protection and still holds"));
    assert_string_equal(out_text, "");
    assert_int_equal(run(0, "delete", "gone", NULL), RP_EXIT_SERVER);
    assert_non_null(strstr(err_text, "HTTP 404"));

    /* An empty collection, and an answer that is not a list. */
    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/api/vaults", 200, "{\"value\":[]}");
    assert_int_equal(run(0, "list", NULL), RP_EXIT_OK);
    assert_string_equal(out_text, "no vaults\n");
    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/api/vaults", 200, "{\"vaults\":1}");
    assert_int_equal(run(0, "list", NULL), RP_EXIT_SERVER);
    assert_non_null(strstr(err_text, "not a list"));

    /* Server text cannot drive the terminal. */
    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/api/vaults", 200,
                 "{\"value\":[{\"name\":\"kv\\u001b[2J\",\"properties\":{}}]}");
    assert_int_equal(run(0, "list", NULL), RP_EXIT_OK);
    assert_null(strchr(out_text, '\x1b'));
    assert_non_null(strstr(out_text, "kv?[2J"));
}

/* ---------------------------------------------------------------- errors */

static void test_auth_and_usage(void **state)
{
    (void)state;
    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/api/vaults", 401,
                 "{\"error\":{\"code\":\"Unauthorized\",\"message\":\"invalid token\"}}");
    ts_route_add(&srv, "PUT", "/api/vaults/kv1", 403,
                 "{\"error\":{\"code\":\"Forbidden\",\"message\":\"no "
                 "Microsoft.KeyVault/vaults/write at /vaults/kv1\"}}");
    assert_int_equal(run(0, "list", NULL), RP_EXIT_UNAUTHORIZED);
    assert_non_null(strstr(err_text, "invalid token"));
    assert_null(strstr(err_text, "tok-S3cr3t"));
    assert_int_equal(run(0, "create", "kv1", NULL), RP_EXIT_UNAUTHORIZED);
    assert_non_null(strstr(err_text, "not authorized: Forbidden"));

    /* No server configured: exit 3 once the command is well-formed. */
    assert_int_equal(run(1, "list", NULL), RP_EXIT_CONFIG);
    assert_non_null(strstr(err_text, "no server URL"));
    assert_int_equal(run(1, NULL), RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "vault needs a subcommand"));
    assert_int_equal(run(1, "purge", "kv1", NULL), RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "unknown vault subcommand 'purge'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_create_usage),
        cmocka_unit_test(test_invalid_names),
        cmocka_unit_test(test_list_show_delete),
        cmocka_unit_test(test_auth_and_usage),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
