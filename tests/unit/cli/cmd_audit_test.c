/*
 * cmd_audit_test.c - unit tests for cli/cmd_audit: the table row of a record (padding,
 * control characters), `audit tail` against the scripted local server (paging from the last
 * seq, JSON lines, checkpoints left out of the table, usage errors), and `audit verify` on a
 * real log written by monitor/audit (exit 0), after one byte is changed (exit 1, naming the
 * line), and without a log or key (exit 1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "cli/testserver.h"

#include "base/err.h"
#include "cli/cmd_audit.h"
#include "cli/cmd_common.h"
#include "crypto/rootkey.h"
#include "monitor/audit.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[1024];
static ts_server srv;
static char url[64], home_env[1200];
static char out_text[65536], err_text[16384];

static int setup(void **state)
{
    (void)state;
    ts_fixture_start(&srv, "cmd_audit_test", tmpdir, sizeof(tmpdir));
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.port);
    snprintf(home_env, sizeof(home_env), "HOME=%s", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ts_fixture_stop(&srv, tmpdir);
    return 0;
}

/* Runs `audit ARGS...` (NULL-terminated), capturing stdout and stderr. */
static int run_argv(int with_conn, const char *const *args)
{
    char *argv[32], o[1200], e[1200];
    char *envp[] = {home_env, NULL};
    int argc = 0, rc, s1, s2, fd1, fd2;
    for (; args[argc] != NULL; argc++)
        argv[argc] = (char *)args[argc];
    if (with_conn) {
        argv[argc++] = "--url";
        argv[argc++] = url;
        argv[argc++] = "--ca";
        argv[argc++] = srv.ca_path;
        argv[argc++] = "--token";
        argv[argc++] = "tok";
    }
    argv[argc] = NULL;
    snprintf(o, sizeof(o), "%s/out.txt", tmpdir);
    snprintf(e, sizeof(e), "%s/err.txt", tmpdir);
    fflush(stdout);
    fflush(stderr);
    s1 = dup(1);
    s2 = dup(2);
    fd1 = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    fd2 = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd1, 1);
    dup2(fd2, 2);
    rc = rp_cmd_audit(argc, argv, envp);
    fflush(stdout);
    fflush(stderr);
    dup2(s1, 1);
    dup2(s2, 2);
    close(s1);
    close(s2);
    close(fd1);
    close(fd2);
    ts_slurp(o, out_text, sizeof(out_text));
    ts_slurp(e, err_text, sizeof(err_text));
    return rc;
}

/* run(with_conn, "arg", ..., NULL): the arguments as a NULL-terminated array. */
#define run(with_conn, ...) run_argv((with_conn), (const char *const[]){__VA_ARGS__})

static void test_row(void **state)
{
    json_t *rec = json_loads("{\"seq\":7,\"time\":\"2026-11-29T05:31:02.123Z\",\"principal\":"
                             "\"0b6c\",\"kind\":\"authz\",\"action\":\"Microsoft.Authorization/"
                             "users/read\",\"scope\":\"/\",\"result\":\"allowed\"}",
                             0, NULL);
    json_t *evil =
        json_loads("{\"time\":\"t\",\"principal\":\"\\u001b[2J\",\"kind\":\"x\"}", 0, NULL);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    (void)state;
    rp_cmd_audit_row(f, rec);
    rp_cmd_audit_row(f, evil);
    fclose(f);
    assert_string_equal(text, "2026-11-29T05:31:02.123Z  0b6c                                  "
                              "authz   Microsoft.Authorization/users/read        /           "
                              "          allowed\n"
                              "t                         ?[2J                                  "
                              "x       -                                         -           "
                              "          -\n");
    free(text);
    json_decref(rec);
    json_decref(evil);
}

#define REC(n, action)                                                                             \
    "{\"seq\":" #n ",\"time\":\"2026-11-29T05:31:0" #n ".000Z\",\"principal\":\"admin\","          \
    "\"kind\":\"change\",\"action\":\"" action "\",\"scope\":\"/\",\"result\":\"success\"}"

static void test_tail(void **state)
{
    (void)state;
    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/api/audit?after=0&limit=2", 200,
                 "{\"value\":[" REC(1, "a.one") "," REC(2, "a.two") "],\"next\":2}");
    ts_route_add(&srv, "GET", "/api/audit?after=2&limit=2", 200,
                 "{\"value\":[" REC(3, "a.three") ",{\"seq\":4,\"time\":\"x\",\"kind\":"
                                                  "\"checkpoint\",\"count\":3}],\"next\":4}");
    ts_route_add(&srv, "GET", "/api/audit?after=4&limit=2", 200, "{\"value\":[],\"next\":4}");
    ts_route_add(&srv, "GET", "/api/audit?after=3&limit=100", 200,
                 "{\"value\":[{\"seq\":4,\"kind\":\"checkpoint\"}],\"next\":4}");

    /* at most --limit records, one request */
    assert_int_equal(run(1, "tail", "--limit", "2", NULL), RP_EXIT_OK);
    assert_int_equal(ts_nreqs(&srv), 1);
    assert_non_null(strstr(out_text, "TIME "));
    assert_non_null(strstr(out_text, "a.one"));
    assert_non_null(strstr(out_text, "a.two"));
    assert_null(strstr(out_text, "a.three"));
    assert_ptr_equal(strstr(out_text, "TIME"), out_text); /* one header, first */
    assert_null(strstr(out_text + 1, "TIME "));

    /* JSON: one record per line, checkpoints too; the table leaves them out */
    assert_int_equal(run(1, "tail", "--limit", "2", "--after", "2", "--output", "json", NULL),
                     RP_EXIT_OK);
    assert_non_null(strstr(out_text, "{\"seq\":3,"));
    assert_non_null(strstr(out_text, "\"kind\":\"checkpoint\""));
    {
        int lines = 0;
        for (const char *p = out_text; *p; p++)
            lines += *p == '\n';
        assert_int_equal(lines, 2);
    }
    assert_int_equal(run(1, "tail", "--limit", "2", "--after", "2", NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "a.three"));
    assert_null(strstr(out_text, "checkpoint"));

    assert_int_equal(run(1, "tail", "--after", "3", NULL), RP_EXIT_OK);
    assert_string_equal(out_text, "no audit records\n");

    assert_int_equal(run(1, "tail", "--limit", "0", NULL), RP_EXIT_USAGE);
    assert_int_equal(run(1, "tail", "--limit", "1001", NULL), RP_EXIT_USAGE);
    assert_int_equal(run(1, "tail", "--after", "-1", NULL), RP_EXIT_USAGE);
    assert_int_equal(run(1, "frob", NULL), RP_EXIT_USAGE);
    assert_int_equal(run(0, NULL), RP_EXIT_USAGE);

    /* records that never advance the seq would loop: refused */
    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/api/audit?after=0&limit=1", 200,
                 "{\"value\":[{\"time\":\"x\"}],\"next\":0}");
    assert_int_equal(run(1, "tail", "--limit", "1", NULL), RP_EXIT_SERVER);
    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/api/audit", 403,
                 "{\"error\":{\"code\":\"AuthorizationFailed\",\"message\":\"no\"}}");
    assert_int_equal(run(1, "tail", NULL), RP_EXIT_UNAUTHORIZED);
}

static void test_follow(void **state)
{
    pid_t helper;
    int st;

    (void)state;
    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/api/audit?after=0&limit=2", 200,
                 "{\"value\":[" REC(1, "a.one") "," REC(2, "a.two") "],\"next\":2}");
    ts_route_add(&srv, "GET", "/api/audit?after=2&limit=2", 200,
                 "{\"value\":[" REC(3, "a.three") "],\"next\":3}");
    ts_route_add(&srv, "GET", "/api/audit?after=3&limit=2", 200, "{\"value\":[],\"next\":3}");
    /* SIGINT from another process ends --follow with exit 0 */
    helper = fork();
    assert_true(helper >= 0);
    if (helper == 0) {
        struct timespec ts = {1, 500 * 1000000L};
        nanosleep(&ts, NULL);
        kill(getppid(), SIGINT);
        _exit(0);
    }
    assert_int_equal(run(1, "tail", "--limit", "2", "--follow", NULL), RP_EXIT_OK);
    assert_int_equal(waitpid(helper, &st, 0), helper);
    assert_non_null(strstr(out_text, "a.one"));
    assert_non_null(strstr(out_text, "a.three"));
    /* full page at once, short page, then polls from seq 3 about once a second */
    assert_string_equal(ts_req_at(&srv, 1)->target, "/api/audit?after=2&limit=2");
    assert_true(ts_nreqs(&srv) >= 3 && ts_nreqs(&srv) <= 5);
    assert_string_equal(ts_req_at(&srv, 2)->target, "/api/audit?after=3&limit=2");
}

static void test_verify(void **state)
{
    char data[1100], dir[1200], key[1200], log[1300], env_data[1300];
    rp_rootkey *rk = NULL;
    rp_audit *a = NULL;
    FILE *f;
    long pos;

    (void)state;
    snprintf(data, sizeof(data), "%s/data", tmpdir);
    snprintf(dir, sizeof(dir), "%s/audit", data);
    rp_test_mkdir_p(dir);
    snprintf(key, sizeof(key), "%s/root.key", data);
    snprintf(log, sizeof(log), "%s/audit.log", dir);
    assert_int_equal(rp_rootkey_file_create(key), 0);
    assert_int_equal(rp_rootkey_file_load(key, &rk), 0);
    assert_int_equal(rp_audit_open(log, rk, &a), 0);
    for (int i = 0; i < 5; i++) {
        rp_audit_rec rec = {"admin",   "change", "users/write", "/",
                            "success", "req",    "127.0.0.1",   NULL};
        assert_int_equal(rp_audit_log_sync(a, &rec, 0), 0);
    }
    rp_audit_close(a);
    rp_rootkey_free(rk);

    assert_int_equal(run(0, "verify", "--data", data, NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "verified"));
    assert_non_null(strstr(out_text, "last checkpoint"));
    assert_int_equal(run(0, "verify", "--data", data, "--output", "json", NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "\"ok\": true"));
    assert_non_null(strstr(out_text, "\"records\": 5"));
    /* RAMPART_DATA as the default */
    snprintf(env_data, sizeof(env_data), "RAMPART_DATA=%s", data);
    {
        char *envp[] = {env_data, NULL};
        char *argv[] = {"verify", NULL};
        int s1 = dup(1), fd = open("/dev/null", O_WRONLY);
        fflush(stdout);
        dup2(fd, 1);
        assert_int_equal(rp_cmd_audit(1, argv, envp), RP_EXIT_OK);
        fflush(stdout);
        dup2(s1, 1);
        close(s1);
        close(fd);
    }

    /* change one byte of the second record: the chain breaks at the third line */
    f = fopen(log, "r+");
    assert_non_null(f);
    {
        int c, line = 1;
        while (line < 2 && (c = fgetc(f)) != EOF)
            if (c == '\n')
                line++;
    }
    pos = ftell(f);
    {
        char buf[64];
        assert_non_null(fgets(buf, sizeof(buf), f));
        /* {"seq":2,"time":"... -> alter a digit of the time */
        assert_int_equal(fseek(f, pos + 20, SEEK_SET), 0);
        fputc(buf[20] == '1' ? '2' : '1', f);
    }
    fclose(f);
    assert_int_equal(run(0, "verify", "--data", data, NULL), RP_EXIT_FAIL);
    assert_non_null(strstr(out_text, "does NOT verify"));
    assert_non_null(strstr(out_text, "first bad line"));
    assert_non_null(strstr(out_text, "record           {\"seq\":"));
    assert_int_equal(run(0, "verify", "--data", data, "--output", "json", NULL), RP_EXIT_FAIL);
    assert_non_null(strstr(out_text, "\"ok\": false"));
    assert_non_null(strstr(out_text, "\"badLine\""));
    assert_non_null(strstr(out_text, "\"reason\""));

    /* no log, bad key, no --data */
    {
        char other[1200], pub[1300];
        snprintf(other, sizeof(other), "%s/empty", tmpdir);
        rp_test_mkdir_p(other);
        assert_int_equal(run(0, "verify", "--data", other, NULL), RP_EXIT_FAIL);
        assert_non_null(strstr(err_text, "no such file"));
        snprintf(pub, sizeof(pub), "%s/bad.pub", tmpdir);
        f = fopen(pub, "w");
        fputs("not a key\n", f);
        fclose(f);
        assert_int_equal(run(0, "verify", "--data", data, "--pub", pub, NULL), RP_EXIT_FAIL);
        assert_non_null(strstr(err_text, "not an audit public key"));
    }
    assert_int_equal(run(0, "verify", NULL), RP_EXIT_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row),
        cmocka_unit_test(test_tail),
        cmocka_unit_test(test_follow),
        cmocka_unit_test(test_verify),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
