/*
 * cmd_exec_test.c - unit tests for cli/cmd_exec (`rampart identity exec`): argument parsing
 * around "--", the child's environment (two variables added or replaced, nothing else
 * touched), exit codes from wait statuses, and whole runs against the scripted local server:
 * the session request, the variables the child sees, its exit status passed through, signals
 * forwarded, and the session ended even when the command cannot start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "cli/testserver.h"

#include "base/err.h"
#include "cli/cmd_exec.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[1024];
static ts_server srv;

static int setup(void **state)
{
    (void)state;
    ts_fixture_start(&srv, "cmd_exec_test", tmpdir, sizeof(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ts_fixture_stop(&srv, tmpdir);
    return 0;
}

static void test_parse(void **state)
{
    char *argv[] = {"--identity", "api", "--identity=second", "--ttl", "15m", "--url", "https://x",
                    "--",         "env", "--identity",        "-x",    NULL};
    rp_exec_args a;
    char err[256];

    (void)state;
    assert_int_equal(rp_exec_parse(11, argv, &a, err, sizeof(err)), 0);
    assert_int_equal(a.nidentities, 2);
    assert_string_equal(a.identities[0], "api");
    assert_string_equal(a.identities[1], "second");
    assert_int_equal(a.ttl_s, 900);
    assert_string_equal(a.url, "https://x");
    assert_null(a.ca);
    assert_int_equal(a.ncmd, 3);
    assert_string_equal(a.cmd[0], "env");
    assert_string_equal(a.cmd[1], "--identity"); /* the command's own argument */
    assert_string_equal(a.cmd[2], "-x");
    assert_null(a.cmd[3]); /* argv's terminator ends the command's argv */

    {
        char *v[] = {"--identity", "a", "--ttl", "600", "--", "true", NULL};
        assert_int_equal(rp_exec_parse(6, v, &a, err, sizeof(err)), 0);
        assert_int_equal(a.ttl_s, 600);
    }
}

typedef struct bad_case {
    int argc;
    char *argv[6];
    const char *want;
} bad_case;

static void test_parse_errors(void **state)
{
    static const bad_case cases[] = {
        {3, {"--identity", "a", "true"}, "put the command after --"},
        {2, {"--identity", "a"}, "needs a command after --"},
        {3, {"--identity", "a", "--"}, "needs a command after --"},
        {2, {"--", "true"}, "needs --identity"},
        {4, {"--identity", "", "--", "true"}, "--identity needs a name"},
        {6, {"--identity", "a", "--ttl", "0", "--", "true"}, "--ttl must be"},
        {6, {"--identity", "a", "--ttl", "soon", "--", "true"}, "--ttl must be"},
        {4, {"--identity", "a", "--output", "json"}, "unknown option '--output'"},
        {4, {"--identity", "a", "-v", "--"}, "unknown option '-v'"},
    };
    rp_exec_args a;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[7] = {NULL};
        memcpy(argv, cases[i].argv, sizeof(cases[i].argv));
        err[0] = '\0';
        if (rp_exec_parse(cases[i].argc, argv, &a, err, sizeof(err)) != RP_EINVAL ||
            strstr(err, cases[i].want) == NULL)
            fail_msg("case %zu: err \"%s\"", i, err);
    }
}

static void test_env(void **state)
{
    char *envp[] = {"PATH=/bin",
                    "IDENTITY_HEADER=old",
                    "KEEP=1",
                    "IDENTITY_ENDPOINTX=keep",
                    "IDENTITY_ENDPOINT=old",
                    NULL};
    rp_exec_env e;

    (void)state;
    assert_int_equal(rp_exec_env_build(envp, "http://127.0.0.1:8459/msi/token", "h3ad3r", &e), 0);
    assert_string_equal(e.envp[0], "PATH=/bin");
    assert_string_equal(e.envp[1], "KEEP=1");
    assert_string_equal(e.envp[2], "IDENTITY_ENDPOINTX=keep");
    assert_string_equal(e.envp[3], "IDENTITY_ENDPOINT=http://127.0.0.1:8459/msi/token");
    assert_string_equal(e.envp[4], "IDENTITY_HEADER=h3ad3r");
    assert_null(e.envp[5]);
    assert_ptr_equal(e.envp[0], envp[0]); /* the rest is borrowed, unchanged */
    rp_exec_env_free(&e);
    assert_null(e.envp);
    rp_exec_env_free(&e);
    rp_exec_env_free(NULL);

    assert_int_equal(rp_exec_env_build(NULL, "e", "h", &e), 0);
    assert_string_equal(e.envp[0], "IDENTITY_ENDPOINT=e");
    assert_string_equal(e.envp[1], "IDENTITY_HEADER=h");
    assert_null(e.envp[2]);
    rp_exec_env_free(&e);
}

static int wait_of(const char *script)
{
    pid_t pid = fork();
    int st = 0;

    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(99);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

static void test_status_code(void **state)
{
    (void)state;
    assert_int_equal(rp_exec_status_code(wait_of("exit 0")), 0);
    assert_int_equal(rp_exec_status_code(wait_of("exit 3")), 3);
    assert_int_equal(rp_exec_status_code(wait_of("exit 255")), 255);
    assert_int_equal(rp_exec_status_code(wait_of("kill -TERM $$")), 128 + SIGTERM);
    assert_int_equal(rp_exec_status_code(wait_of("kill -KILL $$")), 128 + SIGKILL);
}

/* ---------------------------------------------------------------- whole runs */

static char url[64], home_env[1200];

static void routes(void)
{
    ts_reset(&srv);
    ts_route_add(&srv, "POST", "/api/identities/api-reader/sessions", 201,
                 "{\"id\":\"sess-1\",\"endpoint\":\"http://127.0.0.1:8459/msi/token\","
                 "\"header\":\"hdr-s3cret\",\"expiresAt\":\"2026-11-29T08:00:00Z\"}");
    ts_route_add(&srv, "DELETE", "/api/identities/sessions/sess-1", 204, NULL);
}

/* Runs `identity exec` with the given command after "--" and returns its exit code. */
static int run_exec(const char *ttl, const char *second, char **cmd, int ncmd)
{
    char *argv[32];
    int argc = 0;
    char *envp[] = {home_env, "PATH=/usr/bin:/bin", "KEEP=yes", "IDENTITY_HEADER=stale", NULL};

    argv[argc++] = "--identity";
    argv[argc++] = "api-reader";
    if (second != NULL) {
        argv[argc++] = "--identity";
        argv[argc++] = (char *)second;
    }
    if (ttl != NULL) {
        argv[argc++] = "--ttl";
        argv[argc++] = (char *)ttl;
    }
    argv[argc++] = "--url";
    argv[argc++] = url;
    argv[argc++] = "--ca";
    argv[argc++] = srv.ca_path;
    argv[argc++] = "--token";
    argv[argc++] = "tok";
    argv[argc++] = "--";
    for (int i = 0; i < ncmd; i++)
        argv[argc++] = cmd[i];
    argv[argc] = NULL;
    return rp_cmd_identity_exec(argc, argv, envp);
}

static void test_run(void **state)
{
    char *check[] = {"/bin/sh", "-c",
                     "test \"$IDENTITY_HEADER\" = hdr-s3cret || exit 1;"
                     "test \"$IDENTITY_ENDPOINT\" = http://127.0.0.1:8459/msi/token || exit 2;"
                     "test -z \"$IDENTITY_SERVER_THUMBPRINT\" || exit 3;"
                     "test \"$KEEP\" = yes || exit 4;"
                     "test \"$1\" = \"--arg\" || exit 5;"
                     "exit 7",
                     "sh", "--arg"};
    const ts_req *r;

    (void)state;
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.port);
    snprintf(home_env, sizeof(home_env), "HOME=%s", tmpdir);
    routes();
    assert_int_equal(run_exec("600", "second", check, 5), 7);
    assert_int_equal(ts_nreqs(&srv), 2);
    r = ts_req_at(&srv, 0);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->target, "/api/identities/api-reader/sessions");
    assert_string_equal(r->body, "{\"identities\":[\"second\"],\"ttlSeconds\":600}");
    r = ts_req_at(&srv, 1);
    assert_string_equal(r->method, "DELETE");
    assert_string_equal(r->target, "/api/identities/sessions/sess-1");

    /* no TTL, one identity: an empty list, the server's default TTL */
    routes();
    {
        char *t[] = {"/bin/sh", "-c", "exit 0"};
        assert_int_equal(run_exec(NULL, NULL, t, 3), 0);
        assert_string_equal(ts_req_at(&srv, 0)->body, "{\"identities\":[]}");
    }

    /* killed by a signal: 128 + N; the session still ends */
    routes();
    {
        char *t[] = {"/bin/sh", "-c", "kill -TERM $$"};
        assert_int_equal(run_exec(NULL, NULL, t, 3), 128 + SIGTERM);
        assert_int_equal(ts_nreqs(&srv), 2);
    }

    /* a command that does not exist: 127, and the session ends */
    routes();
    {
        char *t[] = {"/nonexistent/command"};
        assert_int_equal(run_exec(NULL, NULL, t, 1), 127);
        assert_int_equal(ts_nreqs(&srv), 2);
        assert_string_equal(ts_req_at(&srv, 1)->method, "DELETE");
    }

    /* the server refuses: no command runs, exit 6 / 5 */
    ts_reset(&srv);
    ts_route_add(&srv, "POST", "/api/identities/api-reader/sessions", 403,
                 "{\"error\":{\"code\":\"AuthorizationFailed\",\"message\":\"no\"}}");
    {
        char *t[] = {"/bin/sh", "-c", "exit 9"};
        assert_int_equal(run_exec(NULL, NULL, t, 3), 6);
        assert_int_equal(ts_nreqs(&srv), 1);
    }
    ts_reset(&srv);
    ts_route_add(&srv, "POST", "/api/identities/api-reader/sessions", 201, "{\"id\":\"x\"}");
    {
        char *t[] = {"/bin/sh", "-c", "exit 9"};
        assert_int_equal(run_exec(NULL, NULL, t, 3), 5); /* no header in the answer */
    }
}

static void test_signal_forwarding(void **state)
{
    char *t[] = {"/bin/sh", "-c",
                 "trap 'exit 42' TERM; i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); "
                 "done; exit 1"};
    pid_t helper;
    int st;

    (void)state;
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.port);
    snprintf(home_env, sizeof(home_env), "HOME=%s", tmpdir);
    routes();
    /* A separate process sends SIGTERM to this one while the child runs. */
    helper = fork();
    assert_true(helper >= 0);
    if (helper == 0) {
        struct timespec ts = {0, 700 * 1000000L};
        nanosleep(&ts, NULL);
        kill(getppid(), SIGTERM);
        _exit(0);
    }
    assert_int_equal(run_exec(NULL, NULL, t, 3), 42);
    assert_int_equal(waitpid(helper, &st, 0), helper);
    assert_int_equal(ts_nreqs(&srv), 2);
    /* The default disposition is back: this process was not killed, and the handler is gone. */
    {
        struct sigaction sa;
        assert_int_equal(sigaction(SIGTERM, NULL, &sa), 0);
        assert_ptr_equal(sa.sa_handler, SIG_DFL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse), cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_env),   cmocka_unit_test(test_status_code),
        cmocka_unit_test(test_run),   cmocka_unit_test(test_signal_forwarding),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
