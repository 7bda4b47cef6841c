/*
 * proc_test.c - the supervisor's pure parts (src/sites/proc.c; the .c is included to reach its
 * statics): the status line a readiness or health probe reads (whole, cut anywhere, not HTTP),
 * the health check path rp_procs_set accepts, the supervisor settings read from the app's
 * settings (WEBSITES_CONTAINER_START_TIME_LIMIT, WEBSITE_HEALTHCHECK_MAXPINGFAILURES), the
 * back-off and the slots' run directories. Processes, readiness and health checks themselves
 * are exercised end to end (tests/e2e/sites-health.test.mjs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/sites/proc.c"

static void test_status_line(void **state)
{
    static const struct {
        const char *text;
        int rc, status;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\n", 1, 200},
        {"HTTP/1.0 302 Found\r\n", 1, 302},
        {"HTTP/1.1 500 Internal Server Error\r\n", 1, 500},
        {"HTTP/1.1 204\r\n", 1, 204}, /* no reason phrase */
        {"HTTP/1.1 404\n", 1, 404},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1, 200},
        {"HTTP/2.0 200 OK\r\n", -1, 0},
        {"HTTP/1.1 20 OK\r\n", -1, 0},
        {"HTTP/1.1 2000 OK\r\n", -1, 0},
        {"HTTP/1.1  200 OK\r\n", -1, 0},
        {"http/1.1 200 OK\r\n", -1, 0},
        {"SSH-2.0-OpenSSH_9.6\r\n", -1, 0},
        {"HTTP/1.x 200 OK\r\n", -1, 0},
        {"\r\nHTTP/1.1 200 OK\r\n", -1, 0},
    };
    const char *full = "HTTP/1.1 503 Service Unavailable\r\n";
    int status;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        status = 0;
        assert_int_equal(status_line(cases[i].text, strlen(cases[i].text), &status), cases[i].rc);
        if (cases[i].rc == 1)
            assert_int_equal(status, cases[i].status);
    }
    /* Cut anywhere before the status's end: more is needed, nothing is decided. */
    for (size_t n = 0; n < 13; n++)
        assert_int_equal(status_line(full, n, &status), 0);
    assert_int_equal(status_line(full, 13, &status), 1);
    assert_int_equal(status, 503);
    /* A wrong byte is refused as soon as it is seen. */
    assert_int_equal(status_line("HTTX", 4, &status), -1);
    assert_int_equal(status_line("HTTP/1.1 2x", 11, &status), -1);
}

static void test_health_path(void **state)
{
    char path[RP_PROC_HEALTH_PATH_MAX + 2];

    (void)state;
    assert_int_equal(health_path_ok("/"), 1);
    assert_int_equal(health_path_ok("/api/health?deep=1"), 1);
    assert_int_equal(health_path_ok(""), 0);
    assert_int_equal(health_path_ok("health"), 0);
    assert_int_equal(health_path_ok("/a b"), 0);
    assert_int_equal(health_path_ok("/a#b"), 0);
    assert_int_equal(health_path_ok("/a\r\nHost: x"), 0);
    assert_int_equal(health_path_ok("/\x7f"), 0);
    assert_int_equal(health_path_ok("/\xc3\xa9"), 0);
    memset(path, 'a', sizeof(path));
    path[0] = '/';
    path[RP_PROC_HEALTH_PATH_MAX] = '\0';
    assert_int_equal(health_path_ok(path), 1);
    path[RP_PROC_HEALTH_PATH_MAX] = 'a';
    path[RP_PROC_HEALTH_PATH_MAX + 1] = '\0';
    assert_int_equal(health_path_ok(path), 0);
}

static void test_settings_from_env(void **state)
{
    static const char env[] = "A=1\0WEBSITES_CONTAINER_START_TIME_LIMIT=45\0"
                              "WEBSITE_HEALTHCHECK_MAXPINGFAILURES=11\0"
                              "WEBSITES_CONTAINER_START_TIME_LIMITX=9\0EMPTY=\0";
    pspec s;
    int bad = 0;

    (void)state;
    memset(&s, 0, sizeof(s));
    s.env = (char *)env;
    s.env_len = sizeof(env) - 1;
    s.nenv = 5;
    assert_string_equal(env_value(&s, "A"), "1");
    assert_string_equal(env_value(&s, "EMPTY"), "");
    assert_null(env_value(&s, "B"));
    assert_null(env_value(&s, "WEBSITES_CONTAINER"));
    assert_int_equal(env_number(&s, "WEBSITES_CONTAINER_START_TIME_LIMIT", 1, 1800, 230, &bad), 45);
    assert_int_equal(bad, 0);
    /* Out of range or not a number: the default, and a note. */
    assert_int_equal(env_number(&s, "WEBSITE_HEALTHCHECK_MAXPINGFAILURES", 2, 10, 3, &bad), 3);
    assert_int_equal(bad, 1);
    bad = 0;
    assert_int_equal(env_number(&s, "EMPTY", 1, 10, 7, &bad), 7);
    assert_int_equal(bad, 1);
    bad = 0;
    assert_int_equal(env_number(&s, "NONE", 1, 10, 7, &bad), 7);
    assert_int_equal(bad, 0);
    assert_int_equal(env_number(&s, "A", 2, 10, 7, &bad), 7);
    assert_int_equal(bad, 1);
}

static void test_backoff_and_slots(void **state)
{
    entry e;
    char run[PATH_CAP];

    (void)state;
    assert_int_equal(backoff_ms(1), 500);
    assert_int_equal(backoff_ms(2), 1000);
    assert_int_equal(backoff_ms(7), RP_PROC_BACKOFF_MAX);
    assert_int_equal(backoff_ms(1000), RP_PROC_BACKOFF_MAX);
    memset(&e, 0, sizeof(e));
    rp_strlcpy(e.s.run_dir, "/d/apps/x/run", sizeof(e.s.run_dir));
    assert_int_equal(slot_run(&e, 0, run, sizeof(run)), 0);
    assert_string_equal(run, "/d/apps/x/run");
    assert_int_equal(slot_run(&e, 9, run, sizeof(run)), 0);
    assert_string_equal(run, "/d/apps/x/run.9");
    assert_int_equal(slot_run(&e, 9, run, 15), RP_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_line),
        cmocka_unit_test(test_health_path),
        cmocka_unit_test(test_settings_from_env),
        cmocka_unit_test(test_backoff_and_slots),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
