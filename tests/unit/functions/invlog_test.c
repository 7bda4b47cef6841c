/*
 * invlog_test.c - unit tests for src/functions/invlog.c: records in order with sequence
 * numbers, pages (after, limit, one function), the ring forgetting the oldest, counters per
 * outcome, the handler's Logs bounded (count, bytes, characters), and one JSON line per record
 * in the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "functions/invlog.h"
#include "testutil.h"

static void add(rp_fn_invlog *l, const char *fn, rp_fn_outcome o, int status, uint64_t us,
                const json_t *logs)
{
    rp_fn_inv inv = {.id = "00000000-0000-4000-8000-000000000001",
                     .function = fn,
                     .trigger = "httpTrigger",
                     .start_ms = 1796000000123,
                     .duration_us = us,
                     .status = status,
                     .outcome = o,
                     .cold = 0,
                     .logs = logs};
    rp_fn_invlog_add(l, &inv);
}

static void test_pages(void **state)
{
    rp_fn_invlog *l;
    json_t *p, *v;

    (void)state;
    assert_int_equal(rp_fn_invlog_new(NULL, &l), 0);
    p = rp_fn_invlog_page(l, 0, 10, NULL);
    assert_int_equal(json_array_size(json_object_get(p, "value")), 0);
    assert_int_equal(json_integer_value(json_object_get(p, "next")), 0);
    json_decref(p);
    for (int i = 0; i < 5; i++)
        add(l, i % 2 ? "b" : "a", RP_FN_SUCCEEDED, 200, 1500, NULL);
    p = rp_fn_invlog_page(l, 0, 2, NULL);
    v = json_object_get(p, "value");
    assert_int_equal(json_array_size(v), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(v, 0), "seq")), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "start")),
                        "2026-11-30T00:53:20.123Z");
    assert_true(json_real_value(json_object_get(json_array_get(v, 0), "durationMs")) == 1.5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "outcome")),
                        "Succeeded");
    assert_int_equal(json_integer_value(json_object_get(p, "next")), 2);
    json_decref(p);
    /* Only b's, after the first two. */
    p = rp_fn_invlog_page(l, 2, 10, "b");
    v = json_object_get(p, "value");
    assert_int_equal(json_array_size(v), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(v, 0), "seq")), 4);
    assert_int_equal(json_integer_value(json_object_get(p, "next")), 5);
    json_decref(p);
    /* After the newest: nothing, and next stays. A client ahead of the log (a restart of the
     * server) starts again from the oldest. */
    p = rp_fn_invlog_page(l, 5, 10, NULL);
    assert_int_equal(json_array_size(json_object_get(p, "value")), 0);
    assert_int_equal(json_integer_value(json_object_get(p, "next")), 5);
    json_decref(p);
    p = rp_fn_invlog_page(l, 900, 10, NULL);
    assert_int_equal(json_array_size(json_object_get(p, "value")), 5);
    assert_int_equal(json_integer_value(json_object_get(p, "next")), 5);
    json_decref(p);
    rp_fn_invlog_unref(l);
}

static void test_ring_and_metrics(void **state)
{
    rp_fn_invlog *l;
    json_t *p, *m, *a;

    (void)state;
    assert_int_equal(rp_fn_invlog_new(NULL, &l), 0);
    for (int i = 0; i < RP_FN_INVLOG_KEEP + 10; i++)
        add(l, "a", (rp_fn_outcome)(i % RP_FN_OUTCOMES), i % 2 ? 200 : 0, (uint64_t)i * 1000, NULL);
    p = rp_fn_invlog_page(l, 0, RP_FN_INVLOG_PAGE_MAX, NULL);
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(json_object_get(p, "value"), 0), "seq")),
        11);
    assert_int_equal(json_array_size(json_object_get(p, "value")), RP_FN_INVLOG_PAGE_MAX);
    json_decref(p);
    m = rp_fn_invlog_metrics(l);
    a = json_object_get(json_object_get(m, "functions"), "a");
    assert_int_equal(json_integer_value(json_object_get(a, "invocations")), RP_FN_INVLOG_KEEP + 10);
    /* 522 records over six outcomes in turn: 87 each. */
    assert_int_equal(json_integer_value(json_object_get(a, "succeeded")), 87);
    assert_int_equal(json_integer_value(json_object_get(a, "throttled")), 87);
    assert_int_equal(json_integer_value(json_object_get(a, "skipped")), 87);
    assert_true(json_real_value(json_object_get(a, "durationMsMax")) == RP_FN_INVLOG_KEEP + 9);
    json_decref(m);
    rp_fn_invlog_unref(l);
}

static void test_logs_bounded(void **state)
{
    rp_fn_invlog *l;
    json_t *logs = json_array(), *p, *got;
    char big[RP_FN_INVLOG_LINE_MAX + 100];

    (void)state;
    assert_int_equal(rp_fn_invlog_new(NULL, &l), 0);
    /* A line cut inside a 2-byte character keeps whole characters only. */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[RP_FN_INVLOG_LINE_MAX - 1] = (char)0xc3;
    big[RP_FN_INVLOG_LINE_MAX] = (char)0xa9;
    assert_int_equal(json_array_append_new(logs, json_string(big)), 0);
    assert_int_equal(json_array_append_new(logs, json_integer(7)), 0); /* not a line: skipped */
    for (int i = 0; i < 40; i++)
        assert_int_equal(json_array_append_new(logs, json_string("line")), 0);
    add(l, "a", RP_FN_SUCCEEDED, 200, 10, logs);
    p = rp_fn_invlog_page(l, 0, 1, NULL);
    got = json_object_get(json_array_get(json_object_get(p, "value"), 0), "logs");
    assert_int_equal(json_array_size(got), RP_FN_INVLOG_LINES);
    assert_int_equal(json_string_length(json_array_get(got, 0)), RP_FN_INVLOG_LINE_MAX - 1);
    assert_string_equal(json_string_value(json_array_get(got, 1)), "line");
    json_decref(p);
    /* Many long lines: RP_FN_INVLOG_LOGS_MAX bytes at most in all. */
    json_array_clear(logs);
    for (int i = 0; i < 10; i++)
        assert_int_equal(json_array_append_new(logs, json_stringn(big, 900)), 0);
    add(l, "a", RP_FN_SUCCEEDED, 200, 10, logs);
    p = rp_fn_invlog_page(l, 1, 1, NULL);
    got = json_object_get(json_array_get(json_object_get(p, "value"), 0), "logs");
    {
        size_t total = 0, i;
        json_t *v;
        json_array_foreach(got, i, v) total += json_string_length(v);
        assert_int_equal(total, RP_FN_INVLOG_LOGS_MAX);
    }
    json_decref(p);
    json_decref(logs);
    rp_fn_invlog_unref(l);
}

static void test_file(void **state)
{
    char dir[256], path[300], line[4096];
    rp_fn_invlog *l;
    FILE *f;
    int n = 0;

    (void)state;
    rp_test_scratch("invlog", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/invocations.log", dir);
    assert_int_equal(rp_fn_invlog_new(path, &l), 0);
    add(l, "a", RP_FN_SUCCEEDED, 200, 10, NULL);
    add(l, "b", RP_FN_TIMEDOUT, 504, 10, NULL);
    rp_fn_invlog_unref(l);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_integer_value(json_object_get(j, "seq")), n + 1);
        if (n == 1)
            assert_string_equal(json_string_value(json_object_get(j, "outcome")), "TimedOut");
        json_decref(j);
        n++;
    }
    fclose(f);
    assert_int_equal(n, 2);
    /* A file that cannot be opened: the records stay in memory. */
    snprintf(path, sizeof(path), "%s/no/such/dir/invocations.log", dir);
    assert_int_equal(rp_fn_invlog_new(path, &l), 0);
    add(l, "a", RP_FN_SUCCEEDED, 200, 10, NULL);
    {
        json_t *p = rp_fn_invlog_page(l, 0, 10, NULL);
        assert_int_equal(json_array_size(json_object_get(p, "value")), 1);
        json_decref(p);
    }
    rp_fn_invlog_unref(l);
    rp_test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pages),
        cmocka_unit_test(test_ring_and_metrics),
        cmocka_unit_test(test_logs_bounded),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
