/*
 * cmd_iam_test.c - unit tests for cli/cmd_iam: each command run against the scripted local
 * server, checking the request it builds (method, percent-encoded path, JSON body), what it
 * prints (tables, fields, the one-time secret warning) and its exit code (0, 2 before any
 * request, 5 server error, 6 for 401/403). Output is captured by pointing fds 1 and 2 at files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "cli/testserver.h"

#include "base/err.h"
#include "cli/cmd_common.h"
#include "cli/cmd_iam.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[1024];
static ts_server srv;
static char url[64], home_env[1200];
static char out_text[65536], err_text[65536];

static int setup(void **state)
{
    (void)state;
    ts_fixture_start(&srv, "cmd_iam_test", tmpdir, sizeof(tmpdir));
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

typedef int (*cmd_fn)(int argc, char **argv, char **envp);

/*
 * Runs fn with argv (NULL-terminated) plus --url/--ca/--token (unless bare), capturing
 * stdout and stderr into out_text / err_text. Returns the exit code.
 */
static int run_argv(cmd_fn fn, int bare, const char *const *args)
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
    rc = fn(argc, argv, envp);
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

/* run(fn, bare, "arg", ..., NULL): the arguments as a NULL-terminated array. */
#define run(fn, bare, ...) run_argv((fn), (bare), (const char *const[]){__VA_ARGS__})

static const ts_req *last_req(void)
{
    return ts_req_at(&srv, ts_nreqs(&srv) - 1);
}

/* ---------------------------------------------------------------- users */

static void test_users(void **state)
{
    (void)state;
    ts_reset(&srv);
    ts_route_add(&srv, "POST", "/api/users", 201,
                 "{\"id\":\"0b6c\",\"appId\":\"9f1e\",\"name\":\"alice\",\"type\":\"user\","
                 "\"createdAt\":\"2026-11-29T05:00:00Z\",\"credentials\":[],"
                 "\"secret\":\"S3CRET-value\",\"secretExpiresAt\":\"2027-05-28T05:00:00Z\"}");
    ts_route_add(&srv, "GET", "/api/users", 200,
                 "{\"value\":[{\"id\":\"0b6c\",\"name\":\"alice\",\"createdAt\":"
                 "\"2026-11-29T05:00:00Z\"},{\"id\":\"77aa\",\"name\":\"bob\"}]}");
    ts_route_add(&srv, "DELETE", "/api/users/alice", 204, NULL);

    assert_int_equal(run(rp_cmd_user, 0, "create", "alice", NULL), RP_EXIT_OK);
    assert_string_equal(last_req()->body, "{\"name\":\"alice\"}");
    assert_non_null(strstr(out_text, "Created user alice"));
    assert_non_null(strstr(out_text, "S3CRET-value"));
    assert_non_null(strstr(out_text, "2027-05-28T05:00:00Z"));
    assert_non_null(strstr(out_text, "rampart login --user alice"));
    assert_non_null(strstr(err_text, "cannot be shown again"));

    assert_int_equal(run(rp_cmd_user, 0, "create", "alice", "--output", "json", NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "\"secret\": \"S3CRET-value\""));
    assert_non_null(strstr(err_text, "cannot be shown again"));

    assert_int_equal(run(rp_cmd_user, 0, "list", NULL), RP_EXIT_OK);
    assert_string_equal(out_text, "NAME   OBJECT ID  CREATED\n"
                                  "alice  0b6c       2026-11-29T05:00:00Z\n"
                                  "bob    77aa       -\n");
    assert_int_equal(run(rp_cmd_user, 0, "list", "--output", "json", NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "\"value\""));

    assert_int_equal(run(rp_cmd_user, 0, "delete", "alice", NULL), RP_EXIT_OK);
    assert_string_equal(last_req()->method, "DELETE");
    assert_string_equal(out_text, "Deleted user alice\n");
    assert_int_equal(run(rp_cmd_user, 0, "delete", "bob", NULL), RP_EXIT_SERVER);
    assert_non_null(strstr(err_text, "HTTP 404"));

    /* usage errors come before any request, even with no server configured */
    {
        int n = ts_nreqs(&srv);
        assert_int_equal(run(rp_cmd_user, 1, "create", NULL), RP_EXIT_USAGE);
        assert_non_null(strstr(err_text, "usage: rampart user create NAME"));
        assert_int_equal(run(rp_cmd_user, 1, "create", "a", "b", NULL), RP_EXIT_USAGE);
        assert_int_equal(run(rp_cmd_user, 1, "frob", NULL), RP_EXIT_USAGE);
        assert_int_equal(run(rp_cmd_user, 1, NULL), RP_EXIT_USAGE);
        assert_int_equal(run(rp_cmd_user, 0, "delete", "..", NULL), RP_EXIT_USAGE);
        assert_int_equal(run(rp_cmd_user, 0, "list", "--output", "xml", NULL), RP_EXIT_USAGE);
        assert_int_equal(ts_nreqs(&srv), n);
        /* no URL anywhere: exit 3 at the first request */
        assert_int_equal(run(rp_cmd_user, 1, "list", NULL), RP_EXIT_CONFIG);
    }
}

static void test_auth_errors(void **state)
{
    (void)state;
    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/api/users", 401,
                 "{\"error\":{\"code\":\"ExpiredAuthenticationToken\",\"message\":\"the access "
                 "token has expired\"}}");
    ts_route_add(&srv, "GET", "/api/servicePrincipals", 403,
                 "{\"error\":{\"code\":\"AuthorizationFailed\",\"message\":\"caller lacks "
                 "Microsoft.Authorization/servicePrincipals/read\"}}");
    ts_route_add(&srv, "GET", "/api/identities", 500,
                 "{\"error\":{\"code\":\"InternalError\","
                 "\"message\":\"\\u001b[2Jboom\"}}");
    assert_int_equal(run(rp_cmd_user, 0, "list", NULL), RP_EXIT_UNAUTHORIZED);
    assert_non_null(strstr(err_text, "ExpiredAuthenticationToken: the access token has expired"));
    assert_null(strstr(err_text, "tok-S3cr3t"));
    assert_int_equal(run(rp_cmd_sp, 0, "list", NULL), RP_EXIT_UNAUTHORIZED);
    assert_non_null(strstr(err_text, "not authorized: AuthorizationFailed: caller lacks"));
    assert_int_equal(run(rp_cmd_identity, 0, "list", NULL), RP_EXIT_SERVER);
    assert_non_null(strstr(err_text, "HTTP 500: InternalError: ?[2Jboom"));
    assert_null(strchr(err_text, '\x1b'));
}

/* ---------------------------------------------------------------- service principals */

static void write_file(const char *name, const char *text, char *path, size_t cap)
{
    FILE *f;

    snprintf(path, cap, "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_sp(void **state)
{
    char cert[1200], keyfile[1200];
    const char *pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    int n;

    (void)state;
    ts_reset(&srv);
    ts_route_add(&srv, "POST", "/api/servicePrincipals", 201,
                 "{\"id\":\"o1\",\"appId\":\"a1\",\"name\":\"ci\",\"type\":\"servicePrincipal\","
                 "\"credentials\":[]}");
    ts_route_add(&srv, "POST", "/api/servicePrincipals/ci/credentials", 201,
                 "{\"keyId\":\"k1\",\"type\":\"secret\",\"secret\":\"SP-SECRET\","
                 "\"expiresAt\":\"2028-01-01T00:00:00Z\"}");
    ts_route_add(&srv, "DELETE", "/api/servicePrincipals/ci/credentials/k1", 204, NULL);
    ts_route_add(&srv, "GET", "/api/servicePrincipals/ci", 200,
                 "{\"id\":\"o1\",\"appId\":\"a1\",\"name\":\"ci\",\"type\":\"servicePrincipal\","
                 "\"credentials\":[{\"keyId\":\"k1\",\"type\":\"secret\",\"expiresAt\":"
                 "\"2028-01-01T00:00:00Z\",\"expired\":false},{\"keyId\":\"k2\",\"type\":"
                 "\"certificate\",\"thumbprint\":\"AB12\",\"expiresAt\":\"2027-01-01T00:00:00Z\","
                 "\"expired\":false}]}");

    assert_int_equal(run(rp_cmd_sp, 0, "create", "ci", NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "client id  a1"));
    assert_non_null(strstr(out_text, "rampart sp credential add ci"));
    assert_string_equal(err_text, "");

    assert_int_equal(run(rp_cmd_sp, 0, "credential", "add", "ci", "--years", "2", NULL),
                     RP_EXIT_OK);
    assert_string_equal(last_req()->body, "{\"type\":\"secret\",\"expiresInDays\":730}");
    assert_non_null(strstr(out_text, "SP-SECRET"));
    assert_non_null(strstr(out_text, "key id      k1"));
    assert_non_null(strstr(err_text, "cannot be shown again"));
    assert_int_equal(run(rp_cmd_sp, 0, "credential", "add", "ci", "--days", "30", NULL),
                     RP_EXIT_OK);
    assert_string_equal(last_req()->body, "{\"type\":\"secret\",\"expiresInDays\":30}");
    assert_int_equal(run(rp_cmd_sp, 0, "credential", "add", "ci", NULL), RP_EXIT_OK);
    assert_string_equal(last_req()->body, "{\"type\":\"secret\"}");

    write_file("cert.pem", pem, cert, sizeof(cert));
    assert_int_equal(run(rp_cmd_sp, 0, "credential", "add", "ci", "--cert", cert, NULL),
                     RP_EXIT_OK);
    assert_non_null(strstr(last_req()->body, "\"type\":\"certificate\""));
    assert_non_null(strstr(last_req()->body, "-----BEGIN CERTIFICATE-----\\nMIIB"));

    n = ts_nreqs(&srv);
    write_file("both.pem",
               "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
               "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
               keyfile, sizeof(keyfile));
    assert_int_equal(run(rp_cmd_sp, 0, "credential", "add", "ci", "--cert", keyfile, NULL),
                     RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "holds a private key"));
    assert_int_equal(
        run(rp_cmd_sp, 0, "credential", "add", "ci", "--cert", "/nonexistent.pem", NULL),
        RP_EXIT_USAGE);
    assert_int_equal(
        run(rp_cmd_sp, 0, "credential", "add", "ci", "--years", "1", "--days", "3", NULL),
        RP_EXIT_USAGE);
    assert_int_equal(run(rp_cmd_sp, 0, "credential", "add", "ci", "--days", "0", NULL),
                     RP_EXIT_USAGE);
    assert_int_equal(run(rp_cmd_sp, 0, "credential", "add", "ci", "--years", "x", NULL),
                     RP_EXIT_USAGE);
    assert_int_equal(ts_nreqs(&srv), n); /* nothing was sent */

    assert_int_equal(run(rp_cmd_sp, 0, "credential", "delete", "ci", "k1", NULL), RP_EXIT_OK);
    assert_string_equal(last_req()->target, "/api/servicePrincipals/ci/credentials/k1");
    assert_int_equal(run(rp_cmd_sp, 0, "credential", "delete", "ci", NULL), RP_EXIT_USAGE);

    assert_int_equal(run(rp_cmd_sp, 0, "show", "ci", NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "  name       ci\n"));
    assert_non_null(strstr(out_text, "KEY ID  TYPE         EXPIRES               EXPIRED  "
                                     "THUMBPRINT\n"));
    assert_non_null(strstr(out_text, "k2      certificate  2027-01-01T00:00:00Z  false    AB12\n"));
}

/* ---------------------------------------------------------------- identities */

static void test_identity(void **state)
{
    (void)state;
    ts_reset(&srv);
    ts_route_add(&srv, "POST", "/api/identities", 201,
                 "{\"id\":\"o9\",\"clientId\":\"c9\",\"name\":\"api-reader\"}");
    ts_route_add(&srv, "GET", "/api/identities", 200,
                 "{\"value\":[{\"id\":\"o9\",\"clientId\":\"c9\",\"name\":\"api-reader\"}]}");
    ts_route_add(&srv, "DELETE", "/api/identities/api-reader", 204, NULL);
    assert_int_equal(run(rp_cmd_identity, 0, "create", "api-reader", NULL), RP_EXIT_OK);
    assert_string_equal(last_req()->body, "{\"name\":\"api-reader\"}");
    assert_non_null(strstr(out_text, "client id  c9"));
    assert_non_null(strstr(out_text, "/identities/api-reader"));
    assert_int_equal(run(rp_cmd_identity, 0, "list", NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "NAME        CLIENT ID  OBJECT ID  CREATED\n"
                                     "api-reader  c9         o9         -\n"));
    assert_int_equal(run(rp_cmd_identity, 0, "delete", "api-reader", NULL), RP_EXIT_OK);
    assert_int_equal(run(rp_cmd_identity, 0, "exec", NULL), RP_EXIT_USAGE);
}

/* ---------------------------------------------------------------- roles */

#define ROLEDEFS                                                                                   \
    "{\"value\":[{\"id\":\"8e3af657-a8ff-443c-a75c-2fe8c4bcb635\",\"name\":"                       \
    "\"8e3af657-a8ff-443c-a75c-2fe8c4bcb635\",\"type\":"                                           \
    "\"Microsoft.Authorization/roleDefinitions\",\"properties\":{\"roleName\":\"Owner\","          \
    "\"type\":\"BuiltInRole\",\"description\":\"Full access\",\"permissions\":[{\"actions\":"      \
    "[\"*\"],\"notActions\":[]}],\"assignableScopes\":[\"/\"]}}]}"

static void test_roles(void **state)
{
    char file[1200];
    int64_t now = (int64_t)time(NULL), t;
    json_t *body;

    (void)state;
    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/api/roleDefinitions", 200, ROLEDEFS);
    ts_route_add(&srv, "GET", "/api/roleDefinitions/Key%20Vault%20Reader", 200,
                 "{\"id\":\"21090545\",\"name\":\"21090545\",\"properties\":{\"roleName\":"
                 "\"Key Vault Reader\",\"type\":\"BuiltInRole\",\"permissions\":[{\"actions\":[],"
                 "\"dataActions\":[\"Microsoft.KeyVault/vaults/secrets/readMetadata/action\"]}],"
                 "\"assignableScopes\":[\"/\"]}}");
    ts_route_add(&srv, "POST", "/api/roleDefinitions", 201,
                 "{\"id\":\"new\",\"name\":\"new\",\"properties\":{\"roleName\":\"Mine\"}}");
    ts_route_add(&srv, "DELETE", "/api/roleDefinitions/abc", 204, NULL);
    ts_route_add(&srv, "POST", "/api/roleAssignments", 201,
                 "{\"id\":\"ra1\",\"principalId\":\"p1\",\"roleDefinitionId\":"
                 "\"8e3af657-a8ff-443c-a75c-2fe8c4bcb635\",\"roleName\":\"Owner\",\"scope\":"
                 "\"/vaults/v\",\"expiresAt\":\"2026-11-29T09:00:00Z\"}");
    ts_route_add(&srv, "GET", "/api/roleAssignments", 200,
                 "{\"value\":[{\"id\":\"ra1\",\"principalId\":\"p1\",\"roleDefinitionId\":"
                 "\"8e3af657-a8ff-443c-a75c-2fe8c4bcb635\",\"scope\":\"/vaults/v\"}]}");
    ts_route_add(&srv, "DELETE", "/api/roleAssignments/ra1", 204, NULL);

    assert_int_equal(run(rp_cmd_role, 0, "definition", "list", NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "NAME   ID                                    TYPE         "
                                     "DESCRIPTION\n"
                                     "Owner  8e3af657-a8ff-443c-a75c-2fe8c4bcb635  BuiltInRole  "
                                     "Full access\n"));
    assert_int_equal(run(rp_cmd_role, 0, "definition", "show", "Key Vault Reader", NULL),
                     RP_EXIT_OK);
    assert_non_null(strstr(out_text, "  name         Key Vault Reader\n"));
    assert_non_null(strstr(out_text, "dataActions:\n    Microsoft.KeyVault/vaults/secrets"));

    write_file("role.json", "{\"properties\":{\"roleName\":\"Mine\"}}", file, sizeof(file));
    assert_int_equal(run(rp_cmd_role, 0, "definition", "create", "--file", file, NULL), RP_EXIT_OK);
    assert_string_equal(last_req()->body, "{\"properties\":{\"roleName\":\"Mine\"}}");
    write_file("bad.json", "{\"a\":1,\"a\":2}", file, sizeof(file));
    assert_int_equal(run(rp_cmd_role, 0, "definition", "create", "--file", file, NULL),
                     RP_EXIT_USAGE);
    assert_int_equal(run(rp_cmd_role, 0, "definition", "create", NULL), RP_EXIT_USAGE);
    assert_int_equal(run(rp_cmd_role, 0, "definition", "delete",
                         "/providers/Microsoft.Authorization/roleDefinitions/abc", NULL),
                     RP_EXIT_OK);
    assert_string_equal(last_req()->target, "/api/roleDefinitions/abc");

    assert_int_equal(run(rp_cmd_role, 0, "assign", "--principal", "user:alice", "--role", "Owner",
                         "--scope", "/vaults/v", "--expires", "2h", NULL),
                     RP_EXIT_OK);
    body = json_loads(last_req()->body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "principal")), "user:alice");
    assert_string_equal(json_string_value(json_object_get(body, "role")), "Owner");
    assert_string_equal(json_string_value(json_object_get(body, "scope")), "/vaults/v");
    assert_int_equal(rp_cli_parse_time(json_string_value(json_object_get(body, "expiresAt")), &t),
                     0);
    assert_true(t >= now + 7200 && t <= now + 7200 + 60);
    json_decref(body);
    assert_non_null(strstr(out_text, "  role       Owner\n"));
    assert_non_null(strstr(out_text, "  expires    2026-11-29T09:00:00Z\n"));

    assert_int_equal(run(rp_cmd_role, 0, "assign", "--principal", "p", "--role", "r", "--scope",
                         "/", "--expires", "2020-01-01T00:00:00Z", NULL),
                     RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "--expires"));
    assert_int_equal(run(rp_cmd_role, 0, "assign", "--principal", "p", "--scope", "/", NULL),
                     RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "needs --role"));

    assert_int_equal(
        run(rp_cmd_role, 0, "list", "--scope", "/vaults/v", "--principal", "user:alice", NULL),
        RP_EXIT_OK);
    /* the role name comes from the definitions (a second request) */
    assert_string_equal(ts_req_at(&srv, ts_nreqs(&srv) - 2)->target,
                        "/api/roleAssignments?scope=%2Fvaults%2Fv&principal=user%3Aalice");
    assert_string_equal(out_text, "ID   PRINCIPAL  ROLE   SCOPE      EXPIRES  VIA\n"
                                  "ra1  p1         Owner  /vaults/v  -        -\n");
    assert_int_equal(run(rp_cmd_role, 0, "remove", "ra1", NULL), RP_EXIT_OK);
    assert_string_equal(last_req()->method, "DELETE");
}

/* ---------------------------------------------------------------- PIM */

#define ELIGS                                                                                      \
    "{\"value\":[{\"id\":\"e1\",\"principalId\":\"me\",\"roleDefinitionId\":\"r1\",\"roleName\":"  \
    "\"Key Vault Secrets Officer\",\"scope\":\"/vaults/v\",\"maxDurationSeconds\":28800,"          \
    "\"approvers\":[\"boss\"]},{\"id\":\"e2\",\"principalId\":\"other\",\"roleDefinitionId\":"     \
    "\"r1\",\"roleName\":\"Key Vault Secrets Officer\",\"scope\":\"/vaults/v\","                   \
    "\"maxDurationSeconds\":3600,\"approvers\":[]},{\"id\":\"e3\",\"principalId\":\"me\","         \
    "\"roleDefinitionId\":\"r2\",\"roleName\":\"Reader\",\"scope\":\"/\",\"approvers\":[]}]}"

static void test_pim(void **state)
{
    json_t *all = json_loads(ELIGS, 0, NULL), *rows, *hit;
    size_t n;

    (void)state;
    rows = json_object_get(all, "value");
    hit = rp_cmd_pim_find_eligibility(rows, "reader", "/", NULL, &n);
    assert_non_null(hit);
    assert_string_equal(json_string_value(json_object_get(hit, "id")), "e3");
    assert_null(
        rp_cmd_pim_find_eligibility(rows, "Key Vault Secrets Officer", "/vaults/v", NULL, &n));
    assert_int_equal(n, 2);
    hit = rp_cmd_pim_find_eligibility(rows, "Key Vault Secrets Officer", "/vaults/v", "me", &n);
    assert_string_equal(json_string_value(json_object_get(hit, "id")), "e1");
    hit = rp_cmd_pim_find_eligibility(rows,
                                      "/providers/Microsoft.Authorization/"
                                      "roleDefinitions/r2",
                                      "/", NULL, &n);
    assert_non_null(hit);
    assert_null(rp_cmd_pim_find_eligibility(rows, "Owner", "/", NULL, &n));
    assert_int_equal(n, 0);
    json_decref(all);

    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/api/roleEligibilities", 200, ELIGS);
    ts_route_add(&srv, "GET", "/api/whoami", 200, "{\"id\":\"me\",\"type\":\"user\"}");
    ts_route_add(&srv, "POST", "/api/roleEligibilities", 201,
                 "{\"id\":\"e9\",\"principalId\":\"me\",\"roleName\":\"Reader\",\"scope\":\"/\","
                 "\"maxDurationSeconds\":28800,\"approvers\":[\"boss\"]}");
    ts_route_add(&srv, "POST", "/api/roleActivations", 201,
                 "{\"id\":\"a1\",\"status\":\"PendingApproval\"}");
    ts_route_add(&srv, "POST", "/api/roleActivations/a1/approve", 200,
                 "{\"id\":\"a1\",\"status\":\"Active\"}");
    ts_route_add(&srv, "POST", "/api/roleActivations/a1/deny", 200,
                 "{\"id\":\"a1\",\"status\":\"Denied\"}");
    ts_route_add(&srv, "DELETE", "/api/roleActivations/a1", 204, NULL);
    ts_route_add(&srv, "DELETE", "/api/roleEligibilities/e9", 204, NULL);
    ts_route_add(&srv, "GET", "/api/roleActivations", 200,
                 "{\"value\":[{\"id\":\"a1\",\"eligibilityId\":\"e1\",\"principalId\":\"me\","
                 "\"roleDefinitionId\":\"r1\",\"scope\":\"/vaults/v\",\"status\":\"Active\","
                 "\"durationSeconds\":7200,\"expiresAt\":\"2026-11-29T09:00:00Z\","
                 "\"justification\":\"fix\"},{\"id\":\"a2\",\"eligibilityId\":\"e2\","
                 "\"principalId\":\"other\",\"status\":\"Active\"}]}");
    ts_route_add(&srv, "GET", "/api/roleDefinitions", 200,
                 "{\"value\":[{\"name\":\"r1\",\"properties\":{\"roleName\":\"Secrets\"}}]}");

    assert_int_equal(run(rp_cmd_pim, 0, "eligible", "--principal", "user:alice", "--role", "Reader",
                         "--scope", "/", "--max-duration", "8h", "--approver", "boss", "--approver",
                         "sp:ci", NULL),
                     RP_EXIT_OK);
    assert_string_equal(last_req()->body,
                        "{\"principal\":\"user:alice\",\"role\":\"Reader\",\"scope\":\"/\","
                        "\"maxDuration\":\"PT8H\",\"approvers\":[\"boss\",\"sp:ci\"]}");
    assert_non_null(strstr(out_text, "max duration  PT8H"));
    assert_int_equal(run(rp_cmd_pim, 0, "eligible", "--principal", "p", "--role", "r", "--scope",
                         "/", "--max-duration", "forever", NULL),
                     RP_EXIT_USAGE);

    /* by role and scope: the caller's own eligibility is found and sent by id */
    assert_int_equal(run(rp_cmd_pim, 0, "activate", "--role", "Key Vault Secrets Officer",
                         "--scope", "/vaults/v", "--justification", "incident 42", "--duration",
                         "90m", NULL),
                     RP_EXIT_OK);
    assert_string_equal(last_req()->body, "{\"eligibility\":\"e1\",\"justification\":\"incident "
                                          "42\",\"duration\":\"PT1H30M\"}");
    assert_non_null(strstr(out_text, "pending approval"));
    assert_int_equal(
        run(rp_cmd_pim, 0, "activate", "--eligibility", "e3", "--justification", "x", NULL),
        RP_EXIT_OK);
    assert_string_equal(last_req()->body, "{\"eligibility\":\"e3\",\"justification\":\"x\"}");
    assert_int_equal(run(rp_cmd_pim, 0, "activate", "--role", "Owner", "--scope", "/",
                         "--justification", "x", NULL),
                     RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "no eligibility"));
    assert_int_equal(run(rp_cmd_pim, 0, "activate", "--eligibility", "e3", NULL), RP_EXIT_USAGE);
    assert_int_equal(run(rp_cmd_pim, 0, "activate", "--eligibility", "e3", "--role", "r",
                         "--justification", "x", NULL),
                     RP_EXIT_USAGE);

    assert_int_equal(run(rp_cmd_pim, 0, "approve", "a1", "--justification", "ok", NULL),
                     RP_EXIT_OK);
    assert_string_equal(last_req()->target, "/api/roleActivations/a1/approve");
    assert_string_equal(last_req()->body, "{\"justification\":\"ok\"}");
    assert_string_equal(out_text, "Approved activation a1\n");
    assert_int_equal(run(rp_cmd_pim, 0, "deny", "a1", NULL), RP_EXIT_OK);
    assert_string_equal(last_req()->target, "/api/roleActivations/a1/deny");
    assert_int_equal(run(rp_cmd_pim, 0, "deactivate", "a1", NULL), RP_EXIT_OK);
    assert_string_equal(last_req()->method, "DELETE");
    assert_int_equal(run(rp_cmd_pim, 0, "remove", "e9", NULL), RP_EXIT_OK);
    assert_string_equal(last_req()->target, "/api/roleEligibilities/e9");

    /* list: only what concerns the caller, unless --all */
    assert_int_equal(run(rp_cmd_pim, 0, "list", NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "e1  "));
    assert_null(strstr(out_text, "e2  "));
    assert_non_null(strstr(out_text, "a1  Active"));
    assert_non_null(strstr(out_text, "Secrets")); /* role name looked up */
    assert_non_null(strstr(out_text, "PT2H"));
    assert_null(strstr(out_text, "a2  "));
    assert_int_equal(run(rp_cmd_pim, 0, "list", "--all", NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "e2  "));
    assert_non_null(strstr(out_text, "a2  "));
    assert_int_equal(run(rp_cmd_pim, 0, "list", "--output", "json", NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "\"eligibilities\""));
}

static void test_id_tail(void **state)
{
    (void)state;
    assert_string_equal(rp_cmd_id_tail("/providers/Microsoft.Authorization/roleAssignments/g"),
                        "g");
    assert_string_equal(rp_cmd_id_tail("plain"), "plain");
    assert_string_equal(rp_cmd_id_tail("ends/"), "ends/");
    assert_null(rp_cmd_id_tail(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_users),   cmocka_unit_test(test_auth_errors),
        cmocka_unit_test(test_sp),      cmocka_unit_test(test_identity),
        cmocka_unit_test(test_roles),   cmocka_unit_test(test_pim),
        cmocka_unit_test(test_id_tail),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
