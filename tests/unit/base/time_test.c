/*
 * time_test.c - ISO 8601 times and durations (untrusted input from management API bodies):
 * exact values, every rejected shape, and round trips through the formatter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/time.h"

#include <string.h>

static int64_t t_ok(const char *s)
{
    int64_t v = -1;

    assert_int_equal(rp_iso_time_parse(s, strlen(s), &v), 0);
    return v;
}

static void t_bad(const char *s)
{
    int64_t v = 12345;

    assert_int_equal(rp_iso_time_parse(s, strlen(s), &v), RP_EPARSE);
    assert_int_equal(v, 12345);
}

static void test_iso_time(void **state)
{
    char buf[21];

    (void)state;
    assert_int_equal(t_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(t_ok("2026-11-29T07:00:00Z"), 1795935600);
    assert_int_equal(t_ok("2026-11-29T07:00:00+00:00"), 1795935600);
    assert_int_equal(t_ok("2026-11-29T07:00:00.123Z"), 1795935600);
    assert_int_equal(t_ok("2024-02-29T00:00:00Z"), 1709164800);
    assert_int_equal(t_ok("2000-02-29T12:00:00Z"), 951825600);
    assert_int_equal(t_ok("9999-12-31T23:59:59Z"), 253402300799);
    assert_int_equal(t_ok("2026-11-29T09:00:00+02:00"), 1795935600);
    assert_int_equal(t_ok("2026-11-29T01:30:00-05:30"), 1795935600);
    assert_int_equal(t_ok("2026-11-29t07:00:00z"), 1795935600);
    assert_int_equal(t_ok("2026-11-29 07:00:00Z"), 1795935600);
    t_bad("");
    t_bad("2026-11-29");
    t_bad("2026-11-29T07:00:00"); /* no zone */
    t_bad("2026-11-29T07:00:00+2:00");
    t_bad("2026-11-29T07:00:00+24:00");
    t_bad("2026-11-29T07:00:00+01:60");
    t_bad("1970-01-01T00:00:00+00:01"); /* before 1970 in UTC */
    t_bad("2026-11-29_07:00:00Z");
    t_bad("2026-13-01T00:00:00Z");
    t_bad("2026-00-01T00:00:00Z");
    t_bad("2026-04-31T00:00:00Z");
    t_bad("2023-02-29T00:00:00Z");
    t_bad("1900-02-29T00:00:00Z");
    t_bad("1969-12-31T23:59:59Z");
    t_bad("2026-11-29T24:00:00Z");
    t_bad("2026-11-29T23:60:00Z");
    t_bad("2026-11-29T23:59:60Z");
    t_bad("2026-11-29T07:00:00.Z");
    t_bad("2026-11-29T07:00:00.1234567890Z");
    t_bad("2026-11-29T07:00:00ZZ");
    t_bad("+2026-11-29T07:00:00Z");
    t_bad("2026-1-29T07:00:00Z");
    t_bad("2026-11-29T07:00:00 Z");
    t_bad("２026-11-29T07:00:00Z");
    /* n bounds the input: a valid prefix followed by more bytes is still bad. */
    {
        int64_t v;
        assert_int_equal(rp_iso_time_parse("2026-11-29T07:00:00Zx", 21, &v), RP_EPARSE);
        assert_int_equal(rp_iso_time_parse("2026-11-29T07:00:00Zx", 20, &v), 0);
    }
    rp_iso_time(1795935600, buf);
    assert_string_equal(buf, "2026-11-29T07:00:00Z");
    assert_int_equal(t_ok(buf), 1795935600);
}

static void d_is(const char *s, int64_t want)
{
    int64_t v = -1;

    assert_int_equal(rp_iso_duration_parse(s, strlen(s), &v), 0);
    assert_int_equal(v, want);
}

static void d_bad(const char *s)
{
    int64_t v = 7;

    assert_int_equal(rp_iso_duration_parse(s, strlen(s), &v), RP_EPARSE);
    assert_int_equal(v, 7);
}

static void test_iso_duration(void **state)
{
    (void)state;
    d_is("PT8H", 8 * 3600);
    d_is("PT5M", 300);
    d_is("PT90S", 90);
    d_is("P1D", 86400);
    d_is("P1DT2H3M4S", 86400 + 7200 + 180 + 4);
    d_is("PT1H30M", 5400);
    d_is("P1W", 604800);
    d_is("P1W1D", 691200);
    d_is("pt15m", 900);
    d_bad("");
    d_bad("P");
    d_bad("PT");
    d_bad("P1DT");
    d_bad("PT0S"); /* zero length */
    d_bad("8H");
    d_bad("p");
    d_bad("PT8");
    d_bad("P8H");    /* hours need T */
    d_bad("PT1D");   /* days must not follow T */
    d_bad("PT1M1H"); /* out of order */
    d_bad("PT1H1H");
    d_bad("P1Y");
    d_bad("P1D1W");
    d_bad("P1M");
    d_bad("PT-1H");
    d_bad("PT1.5H");
    d_bad("PT 1H");
    d_bad("PT99999999999S");
    d_bad("P20000D");
}

/* Calendar days: known dates, and a round trip over 800 years across year 0 (negative years
 * use floor division, which a plain '/' would get wrong). */
static void test_civil_days(void **state)
{
    int64_t y;
    int m, d;

    (void)state;
    assert_int_equal(rp_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(rp_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(rp_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(rp_days_from_civil(2024, 2, 29) + 1, rp_days_from_civil(2024, 3, 1));
    assert_int_equal(rp_days_from_civil(2100, 2, 28) + 1, rp_days_from_civil(2100, 3, 1));
    rp_civil_from_days(rp_days_from_civil(-1, 12, 31), &y, &m, &d);
    assert_true(y == -1 && m == 12 && d == 31);
    for (int64_t day = rp_days_from_civil(-400, 1, 1); day < rp_days_from_civil(400, 1, 1);
         day += 7) {
        rp_civil_from_days(day, &y, &m, &d);
        assert_int_equal(rp_days_from_civil(y, m, d), day);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso_time),
        cmocka_unit_test(test_iso_duration),
        cmocka_unit_test(test_civil_days),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
