/*
 * cmd_login_test.c - unit tests for cli/cmd_login: the token endpoint and scope derived from
 * the management URL, and whole logins against the scripted local server (the tenant from
 * /health or --tenant, the form sent to login.localhost, the secret from RAMPART_PASSWORD,
 * --password or stdin, the client file written 0600 with the token and its expiry), refused
 * logins (exit 6), and logout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "cli/testserver.h"

#include "base/err.h"
#include "cli/client.h"
#include "cli/cmd_common.h"
#include "cli/cmd_login.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[1024];
static ts_server srv;
static char url[64], home[1100], home_env[1200];

#define TENANT "3c9d1f0e-1111-4222-8333-944445555666"
#define JWT    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"

static int setup(void **state)
{
    (void)state;
    ts_fixture_start(&srv, "cmd_login_test", tmpdir, sizeof(tmpdir));
    snprintf(url, sizeof(url), "https://localhost:%d", srv.port);
    snprintf(home, sizeof(home), "%s/home", tmpdir);
    snprintf(home_env, sizeof(home_env), "HOME=%s", home);
    rp_test_mkdir_p(home);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ts_fixture_stop(&srv, tmpdir);
    return 0;
}

static void test_endpoints(void **state)
{
    char t[256], s[256];

    (void)state;
    assert_int_equal(
        rp_login_endpoints("https://rampart.localhost:8443", TENANT, t, sizeof(t), s, sizeof(s)),
        0);
    assert_string_equal(t, "https://login.rampart.localhost:8443/" TENANT "/oauth2/v2.0/token");
    assert_string_equal(s, "https://management.rampart.localhost/.default");
    assert_int_equal(
        rp_login_endpoints("https://example.org/base", "t1", t, sizeof(t), s, sizeof(s)), 0);
    assert_string_equal(t, "https://login.example.org/t1/oauth2/v2.0/token");
    assert_string_equal(s, "https://management.example.org/.default");
    /* an IP literal has no login.<host> */
    assert_int_equal(rp_login_endpoints("https://127.0.0.1:8443", "t", t, sizeof(t), s, sizeof(s)),
                     RP_EINVAL);
    assert_int_equal(rp_login_endpoints("https://[::1]:8443", "t", t, sizeof(t), s, sizeof(s)),
                     RP_EINVAL);
    /* the tenant becomes a path segment: letters, digits and '-' only */
    assert_int_equal(rp_login_endpoints("https://d.example", "../x", t, sizeof(t), s, sizeof(s)),
                     RP_EINVAL);
    assert_int_equal(rp_login_endpoints("https://d.example", "", t, sizeof(t), s, sizeof(s)),
                     RP_EINVAL);
    assert_int_equal(rp_login_endpoints("https://d.example", "common", t, 10, s, sizeof(s)),
                     RP_ETOOBIG);
}

static char out_text[16384], err_text[16384];

/* Runs login or logout with argv and envp, stdin from stdin_text (NULL: /dev/null). */
static int run(int (*fn)(int, char **, char **), char **argv, char **envp, const char *stdin_text)
{
    char o[1200], e[1200];
    int argc = 0, rc, s0, s1, s2, fd0, fd1, fd2, p[2];

    while (argv[argc] != NULL)
        argc++;
    snprintf(o, sizeof(o), "%s/out.txt", tmpdir);
    snprintf(e, sizeof(e), "%s/err.txt", tmpdir);
    fflush(stdout);
    fflush(stderr);
    s0 = dup(0);
    s1 = dup(1);
    s2 = dup(2);
    if (stdin_text != NULL) {
        assert_int_equal(pipe(p), 0);
        assert_int_equal(write(p[1], stdin_text, strlen(stdin_text)), (ssize_t)strlen(stdin_text));
        close(p[1]);
        fd0 = p[0];
    } else {
        fd0 = open("/dev/null", O_RDONLY);
    }
    fd1 = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    fd2 = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd0, 0);
    dup2(fd1, 1);
    dup2(fd2, 2);
    rc = fn(argc, argv, envp);
    fflush(stdout);
    fflush(stderr);
    dup2(s0, 0);
    dup2(s1, 1);
    dup2(s2, 2);
    close(s0);
    close(s1);
    close(s2);
    close(fd0);
    close(fd1);
    close(fd2);
    ts_slurp(o, out_text, sizeof(out_text));
    ts_slurp(e, err_text, sizeof(err_text));
    return rc;
}

static void routes(int token_status, const char *token_body)
{
    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/health", 200, "{\"status\":\"ok\",\"tenant\":\"" TENANT "\"}");
    ts_route_add(&srv, "POST", "/" TENANT "/oauth2/v2.0/token", token_status, token_body);
}

static void read_client_file(char *out, size_t cap, struct stat *st)
{
    char path[1300];

    snprintf(path, sizeof(path), "%s/.config/rampart/client.json", home);
    assert_int_equal(stat(path, st), 0);
    ts_slurp(path, out, cap);
}

static void test_login_sp(void **state)
{
    char env_pw[] = "RAMPART_PASSWORD=from-env";
    char *envp[] = {home_env, env_pw, NULL};
    char *argv[] = {"--service-principal", "--username", "6f1c-app", "--url", url, "--ca",
                    srv.ca_path,           NULL};
    char text[4096];
    struct stat st;
    const ts_req *r;
    long long now = (long long)time(NULL);
    json_t *file;

    (void)state;
    routes(200, "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"ext_expires_in\":3599,"
                "\"access_token\":\"" JWT "\"}");
    assert_int_equal(run(rp_cmd_login, argv, envp, NULL), RP_EXIT_OK);
    assert_int_equal(ts_nreqs(&srv), 2);
    assert_string_equal(ts_req_at(&srv, 0)->target, "/health");
    r = ts_req_at(&srv, 1);
    assert_string_equal(r->target, "/" TENANT "/oauth2/v2.0/token");
    assert_non_null(strcasestr(r->head, "\r\nHost: login.localhost:"));
    assert_string_equal(r->body, "grant_type=client_credentials&client_id=6f1c-app&client_secret="
                                 "from-env&scope=https%3A%2F%2Fmanagement.localhost%2F.default");
    assert_non_null(strstr(out_text, "Logged in to https://localhost:"));
    assert_null(strstr(out_text, JWT)); /* the token is never printed */
    assert_null(strstr(err_text, JWT));

    read_client_file(text, sizeof(text), &st);
    assert_int_equal(st.st_mode & 0777, 0600);
    file = json_loads(text, 0, NULL);
    assert_non_null(file);
    assert_string_equal(json_string_value(json_object_get(file, "token")), JWT);
    assert_string_equal(json_string_value(json_object_get(file, "url")), url);
    assert_non_null(json_string_value(json_object_get(file, "ca")));
    assert_true(json_integer_value(json_object_get(file, "expiresAt")) >= now + 3599 &&
                json_integer_value(json_object_get(file, "expiresAt")) <= now + 3599 + 60);
    json_decref(file);

    /* the saved login is used by later commands */
    {
        rp_client_settings s;
        char err[256];
        assert_int_equal(
            rp_client_settings_load(&s, NULL, envp, NULL, NULL, NULL, err, sizeof(err)), 0);
        assert_string_equal(s.token, JWT);
        assert_string_equal(s.url, url);
        rp_client_settings_free(&s);
    }

    /* --password and --tenant: no /health request */
    {
        char *envp2[] = {home_env, NULL};
        char *argv2[] = {"--service-principal",
                         "--username",
                         "sp:ci",
                         "--password",
                         "pw",
                         "--tenant",
                         TENANT,
                         "--url",
                         url,
                         "--ca",
                         srv.ca_path,
                         "--output",
                         "json",
                         NULL};
        routes(200, "{\"access_token\":\"" JWT "\",\"expires_in\":60}");
        assert_int_equal(run(rp_cmd_login, argv2, envp2, NULL), RP_EXIT_OK);
        assert_int_equal(ts_nreqs(&srv), 1);
        assert_non_null(strstr(ts_req_at(&srv, 0)->body, "client_id=sp%3Aci&client_secret=pw&"));
        assert_non_null(strstr(out_text, "\"tenant\": \"" TENANT "\""));
    }
}

static void test_login_user(void **state)
{
    char *envp[] = {home_env, "RAMPART_TOKEN=old", NULL};
    char *argv[] = {"--user", "alice", "--url", url, "--ca", srv.ca_path, NULL};

    (void)state;
    routes(200, "{\"access_token\":\"" JWT "\",\"expires_in\":3599}");
    /* the secret is one line of stdin (no terminal here, so no prompt) */
    assert_int_equal(run(rp_cmd_login, argv, envp, "pipe-secret\r\nextra\n"), RP_EXIT_OK);
    assert_non_null(
        strstr(ts_req_at(&srv, 1)->body, "client_id=user%3Aalice&client_secret=pipe-secret&"));
    assert_non_null(strstr(err_text, "RAMPART_TOKEN is set"));

    /* a user's secret is never taken from argv */
    {
        char *bad[] = {"--user", "alice", "--password", "x", "--url", url, NULL};
        assert_int_equal(run(rp_cmd_login, bad, envp, NULL), RP_EXIT_USAGE);
    }
    /* no secret at all */
    assert_int_equal(run(rp_cmd_login, argv, envp, NULL), RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "no secret"));
}

static void test_login_refused(void **state)
{
    char *envp[] = {home_env, "RAMPART_PASSWORD=wrong", NULL};
    char *argv[] = {"--service-principal", "--username", "app", "--url", url, "--ca",
                    srv.ca_path,           NULL};

    (void)state;
    routes(401, "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid "
                "client secret provided.\",\"error_codes\":[7000215]}");
    assert_int_equal(run(rp_cmd_login, argv, envp, NULL), RP_EXIT_UNAUTHORIZED);
    assert_non_null(strstr(err_text, "login refused: invalid_client: AADSTS7000215"));
    assert_null(strstr(err_text, "wrong"));
    routes(400, "{\"error\":\"unauthorized_client\",\"error_description\":\"AADSTS700016: "
                "unknown\"}");
    assert_int_equal(run(rp_cmd_login, argv, envp, NULL), RP_EXIT_UNAUTHORIZED);
    routes(400, "{\"error\":\"invalid_scope\",\"error_description\":\"AADSTS1002012\"}");
    assert_int_equal(run(rp_cmd_login, argv, envp, NULL), RP_EXIT_SERVER);
    routes(200, "{\"token_type\":\"Bearer\"}");
    assert_int_equal(run(rp_cmd_login, argv, envp, NULL), RP_EXIT_SERVER);

    /* no tenant in /health and none given */
    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/health", 200, "{\"status\":\"ok\"}");
    assert_int_equal(run(rp_cmd_login, argv, envp, NULL), RP_EXIT_SERVER);
    assert_non_null(strstr(err_text, "--tenant"));

    /* usage */
    {
        char *a1[] = {"--user", "a", "--service-principal", "--username", "x", NULL};
        char *a2[] = {"--service-principal", NULL};
        char *a3[] = {
            "--service-principal", "--username", "x", "--tenant", "../x", "--url", url, NULL};
        char *a4[] = {"--service-principal", "--username", "x", "--tenant", "t", "--url",
                      "https://127.0.0.1:1", NULL};
        assert_int_equal(run(rp_cmd_login, a1, envp, NULL), RP_EXIT_USAGE);
        assert_int_equal(run(rp_cmd_login, a2, envp, NULL), RP_EXIT_USAGE);
        assert_int_equal(run(rp_cmd_login, a3, envp, NULL), RP_EXIT_USAGE);
        assert_int_equal(run(rp_cmd_login, a4, envp, NULL), RP_EXIT_CONFIG);
        assert_non_null(strstr(err_text, "not an IP address"));
    }
}

static void test_logout(void **state)
{
    char *envp[] = {home_env, NULL};
    char *argv[] = {NULL};
    char text[4096];
    struct stat st;

    (void)state;
    /* a login from the earlier tests is in the file */
    read_client_file(text, sizeof(text), &st);
    assert_non_null(strstr(text, "\"token\""));
    assert_int_equal(run(rp_cmd_logout, argv, envp, NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "Logged out"));
    read_client_file(text, sizeof(text), &st);
    assert_null(strstr(text, "token"));
    assert_null(strstr(text, "expiresAt"));
    assert_non_null(strstr(text, "\"url\""));

    /* nothing to log out of */
    {
        char other[1300], env_other[1400];
        char *envp2[] = {env_other, NULL};
        snprintf(other, sizeof(other), "%s/nobody", tmpdir);
        snprintf(env_other, sizeof(env_other), "HOME=%s", other);
        assert_int_equal(run(rp_cmd_logout, argv, envp2, NULL), RP_EXIT_OK);
        assert_non_null(strstr(out_text, "Not logged in"));
        assert_int_equal(stat(other, &st), -1); /* nothing created */
    }
    {
        char *extra[] = {"now", NULL};
        assert_int_equal(run(rp_cmd_logout, extra, envp, NULL), RP_EXIT_USAGE);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints),  cmocka_unit_test(test_login_sp),
        cmocka_unit_test(test_login_user), cmocka_unit_test(test_login_refused),
        cmocka_unit_test(test_logout),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
