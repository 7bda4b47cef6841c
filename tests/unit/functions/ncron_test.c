/*
 * ncron_test.c - timer schedules (src/functions/ncron.c): every field syntax NCrontab accepts
 * and what each means, every refusal with its reason, the TimeSpan form, the day-of-month AND
 * day-of-week rule, and next occurrences across minute, hour, day, month and year boundaries,
 * leap years and month ends, impossible dates and the search horizon. The expected instants
 * come from NCrontab's own test cases (NCrontab.Tests/CrontabScheduleTests.cs, converted to
 * six fields) and from `date -u`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/time.h"
#include "functions/ncron.h"

#include <string.h>
#include <time.h>

#define BIT(v) ((uint64_t)1 << (v))

static rp_ncron parse_ok(const char *s)
{
    rp_ncron c;
    char why[256] = "x";
    int rc = rp_ncron_parse(s, strlen(s), &c, why, sizeof(why));

    if (rc != 0)
        fail_msg("'%s' refused: %s", s, why);
    assert_string_equal(why, "");
    return c;
}

/* Refused with a reason containing `part`, and *out left zeroed. */
static void refused(const char *s, size_t n, const char *part)
{
    rp_ncron c, zero;
    char why[256] = "";

    memset(&c, 0xa5, sizeof(c));
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(rp_ncron_parse(s, n, &c, why, sizeof(why)), RP_EPARSE);
    if (strstr(why, part) == NULL)
        fail_msg("'%s': reason '%s' lacks '%s'", s, why, part);
    assert_memory_equal(&c, &zero, sizeof(c));
}

static void refused_str(const char *s, const char *part)
{
    refused(s, strlen(s), part);
}

/* "YYYY-MM-DDTHH:MM:SSZ" as Unix seconds, through libc's timegm (UTC, any year): an
 * implementation independent of the module's own date arithmetic. */
static int64_t at(const char *iso)
{
    struct tm tm;
    int v[6], pos[6] = {0, 5, 8, 11, 14, 17}, len[6] = {4, 2, 2, 2, 2, 2};

    assert_int_equal(strlen(iso), 20);
    for (int i = 0; i < 6; i++) {
        v[i] = 0;
        for (int j = 0; j < len[i]; j++) {
            assert_true(iso[pos[i] + j] >= '0' && iso[pos[i] + j] <= '9');
            v[i] = v[i] * 10 + iso[pos[i] + j] - '0';
        }
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = v[0] - 1900;
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    tm.tm_hour = v[3];
    tm.tm_min = v[4];
    tm.tm_sec = v[5];
    return (int64_t)timegm(&tm);
}

/* next(schedule, after) must be `want` (an ISO time). */
static void next_is(const char *sched, const char *after, const char *want)
{
    rp_ncron c = parse_ok(sched);
    int64_t t = 0;
    char got[21];

    assert_int_equal(rp_ncron_next(&c, at(after), &t), 0);
    rp_iso_time(t, got);
    if (strcmp(got, want) != 0)
        fail_msg("'%s' after %s: %s, expected %s", sched, after, got, want);
}

/* Follows next() from `after` through every expected instant in turn. */
static void sequence(const char *sched, const char *after, const char *const *want, size_t n)
{
    rp_ncron c = parse_ok(sched);
    int64_t t = at(after);
    char got[21];

    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rp_ncron_next(&c, t, &t), 0);
        rp_iso_time(t, got);
        if (strcmp(got, want[i]) != 0)
            fail_msg("'%s' step %zu: %s, expected %s", sched, i, got, want[i]);
    }
}

static void test_field_forms(void **state)
{
    rp_ncron c;

    (void)state;
    c = parse_ok("* * * * * *");
    assert_true(c.second == BIT(60) - 1 && c.minute == BIT(60) - 1);
    assert_int_equal(c.hour, BIT(24) - 1);
    assert_int_equal(c.day, (BIT(32) - 1) & ~BIT(0));
    assert_int_equal(c.month, 0x1ffe);
    assert_int_equal(c.wday, 0x7f);
    assert_int_equal(c.period_s, 0);

    c = parse_ok("5,8,10 0 9-17 1 1 0");
    assert_true(c.second == (BIT(5) | BIT(8) | BIT(10)));
    assert_true(c.minute == BIT(0));
    assert_int_equal(c.hour, (BIT(18) - 1) & ~(BIT(9) - 1));
    assert_int_equal(c.day, BIT(1));
    assert_int_equal(c.month, BIT(1));
    assert_int_equal(c.wday, BIT(0));

    /* Steps: star, a range, and a single value (which runs to the field's maximum). */
    c = parse_ok("*/15 10-40/15 9-17/2 5/10 */5 2/2");
    assert_true(c.second == (BIT(0) | BIT(15) | BIT(30) | BIT(45)));
    assert_true(c.minute == (BIT(10) | BIT(25) | BIT(40)));
    assert_int_equal(c.hour, BIT(9) | BIT(11) | BIT(13) | BIT(15) | BIT(17));
    assert_int_equal(c.day, BIT(5) | BIT(15) | BIT(25));
    assert_int_equal(c.month, BIT(1) | BIT(6) | BIT(11));
    assert_int_equal(c.wday, BIT(2) | BIT(4) | BIT(6));
    /* A step larger than the range keeps only its start. */
    c = parse_ok("*/100 7/60 * * * *");
    assert_true(c.second == BIT(0) && c.minute == BIT(7));

    /* Lists mix every form. */
    c = parse_ok("1,2-4,*/20,50/5 * * * * *");
    assert_true(c.second == (BIT(0) | BIT(1) | BIT(2) | BIT(3) | BIT(4) | BIT(20) | BIT(40) |
                             BIT(50) | BIT(55)));

    /* Field ends are inclusive. */
    c = parse_ok("59 59 23 31 12 6");
    assert_true(c.second == BIT(59) && c.minute == BIT(59));
    assert_int_equal(c.hour, BIT(23));
    assert_int_equal(c.day, BIT(31));
    assert_int_equal(c.month, BIT(12));
    assert_int_equal(c.wday, BIT(6));
    c = parse_ok("0 0 0 1 1 0");
    assert_true(c.second == BIT(0) && c.minute == BIT(0) && c.hour == BIT(0));
    /* Leading zeros are only digits. */
    c = parse_ok("007 0010 * * * *");
    assert_true(c.second == BIT(7) && c.minute == BIT(10));
}

static void test_reversed_ranges_and_odd_steps(void **state)
{
    rp_ncron a, b;

    (void)state;
    /* NCrontab swaps a reversed range: 17-9 is 9-17, not a wrap past midnight. */
    a = parse_ok("0 0 17-9 * * *");
    b = parse_ok("0 0 9-17 * * *");
    assert_int_equal(a.hour, b.hour);
    a = parse_ok("0 0 0 * DEC-JAN FRI-MON");
    assert_int_equal(a.month, 0x1ffe);
    assert_int_equal(a.wday, BIT(1) | BIT(2) | BIT(3) | BIT(4) | BIT(5));
    /* A step of 0 or below means 1. */
    a = parse_ok("*/0 10-12/0 */-3 * * *");
    assert_true(a.second == BIT(60) - 1);
    assert_true(a.minute == (BIT(10) | BIT(11) | BIT(12)));
    assert_int_equal(a.hour, BIT(24) - 1);
    /* The step is read by int.Parse: a sign and tabs around it are allowed. */
    a = parse_ok("*/+20 */\t30\t * * * *");
    assert_true(a.second == (BIT(0) | BIT(20) | BIT(40)));
    assert_true(a.minute == (BIT(0) | BIT(30)));
    a = parse_ok("*/-2147483648 * * * * *");
    assert_true(a.second == BIT(60) - 1);
}

static void test_names(void **state)
{
    rp_ncron c;

    (void)state;
    c = parse_ok("0 0 0 * JAN,feb,Mar SUN,mon,Sat");
    assert_int_equal(c.month, BIT(1) | BIT(2) | BIT(3));
    assert_int_equal(c.wday, BIT(0) | BIT(1) | BIT(6));
    /* Full names and any prefix, case-insensitive. */
    c = parse_ok("0 0 0 * September,DECEMBER,augu Wednesday,THURS");
    assert_int_equal(c.month, BIT(9) | BIT(12) | BIT(8));
    assert_int_equal(c.wday, BIT(3) | BIT(4));
    /* The first name in calendar order wins an ambiguous prefix. */
    c = parse_ok("0 0 0 * Ju S");
    assert_int_equal(c.month, BIT(6));
    assert_int_equal(c.wday, BIT(0));
    c = parse_ok("0 0 0 * Ma T");
    assert_int_equal(c.month, BIT(3));
    assert_int_equal(c.wday, BIT(2));
    c = parse_ok("0 0 0 * Jul,A m");
    assert_int_equal(c.month, BIT(7) | BIT(4));
    assert_int_equal(c.wday, BIT(1));
    /* Names in ranges and steps. */
    c = parse_ok("0 30 9 * Mar-May/2 MON-FRI");
    assert_int_equal(c.month, BIT(3) | BIT(5));
    assert_int_equal(c.wday, 0x3e);
    c = parse_ok("0 0 0 * jun/3 tue/2");
    assert_int_equal(c.month, BIT(6) | BIT(9) | BIT(12));
    assert_int_equal(c.wday, BIT(2) | BIT(4) | BIT(6));
    /* NCrontab's own mixed case list. */
    c = parse_ok("0 20 * * january,FeB,Mar,april,May,JuNE,July,Augu,SEPT-October,Nov,DECEM *");
    assert_int_equal(c.month, 0x1ffe);
}

static void test_whitespace(void **state)
{
    rp_ncron a, b;
    const char *s = "0  */5\t\t* * * *";

    (void)state;
    b = parse_ok("0 */5 * * * *");
    a = parse_ok("   0   */5 *  * * *   ");
    assert_memory_equal(&a, &b, sizeof(a));
    /* A tab does not separate fields: "*\/5\t\t*" is one token, so this is 5 fields (classic
     * cron: minute, hour, ...) and that token is no hour. */
    refused_str(s, "field 2 (hour)");
    refused_str("0\t*/5\t*\t*\t*\t*", "only spaces separate fields");
    /* int.Parse allows whitespace after a number, so "5\t" is 5 ... */
    a = parse_ok("0 0 0 * * 5\t");
    assert_int_equal(a.wday, BIT(5));
    a = parse_ok("0 0 9\n-17\r * * *");
    assert_int_equal(a.hour, (BIT(18) - 1) & ~(BIT(9) - 1));
    /* ... but not before it, nor after '*' or a name. */
    refused_str("0 0 \t9 * * *", "field 3 (hour): '?9' is not a number");
    refused_str("0 0 0 * * *\t", "field 6 (day-of-week): '*?' is not a number");
    refused_str("0 0 0 * * MON\t", "field 6 (day-of-week): 'MON?' is not a number or a day");
}

/* Five tokens are classic cron with the seconds at 0, as the WebJobs extension reads them. */
static void test_five_fields(void **state)
{
    rp_ncron a, b;
    int64_t t = 0;

    (void)state;
    a = parse_ok("*/5 * * * *");
    b = parse_ok("0 */5 * * * *");
    assert_memory_equal(&a, &b, sizeof(a));
    a = parse_ok("30 9 * * 1-5");
    b = parse_ok("0 30 9 * * 1-5");
    assert_memory_equal(&a, &b, sizeof(a));
    assert_int_equal(rp_ncron_next(&a, at("2024-01-05T09:30:00Z"), &t), 0); /* a Friday */
    assert_int_equal(t, at("2024-01-08T09:30:00Z"));                        /* Monday */
    /* Errors count the fields the user wrote. */
    refused_str("60 * * * *", "field 1 (minute): 60 is out of range 0-59");
    refused_str("0 0 * * 7", "field 5 (day-of-week)");
}

static void test_refusals(void **state)
{
    char big[RP_NCRON_MAX_LEN + 2];
    rp_ncron c;

    (void)state;
    refused_str("", "empty");
    refused_str("     ", "empty");
    refused_str("0 0 */5 * * * *", "7 fields: a timer schedule has 6");
    refused_str("0 */5 * *", "4 fields: a timer schedule has 6");
    refused_str("*", "1 field: a timer schedule has 6");
    refused_str("@daily", "1 field:");
    /* Ranges of every field. */
    refused_str("60 * * * * *", "field 1 (second): 60 is out of range 0-59");
    refused_str("0 60 * * * *", "field 2 (minute): 60 is out of range 0-59");
    refused_str("0 0 25 * * *", "field 3 (hour): 25 is out of range 0-23");
    refused_str("0 0 24 * * *", "field 3 (hour): 24 is out of range 0-23");
    refused_str("0 0 0 0 * *", "field 4 (day): 0 is out of range 1-31");
    refused_str("0 0 0 32 * *", "field 4 (day): 32 is out of range 1-31");
    refused_str("0 0 0 * 0 *", "field 5 (month): 0 is out of range 1-12");
    refused_str("0 0 0 * 13 *", "field 5 (month): 13 is out of range 1-12");
    /* 7 is not Sunday in NCrontab. */
    refused_str("0 0 0 * * 7", "field 6 (day-of-week): 7 is out of range 0-6");
    refused_str("0 0 0 * * 1-7", "field 6 (day-of-week): 7 is out of range 0-6");
    /* Range ends and stepped starts are checked, in either order. */
    refused_str("0 0 20-25 * * *", "field 3 (hour): 25 is out of range 0-23");
    refused_str("0 0 25-20 * * *", "field 3 (hour): 25 is out of range 0-23");
    refused_str("0 0 0 0-5 * *", "field 4 (day): 0 is out of range 1-31");
    refused_str("0 0 0 0/5 * *", "field 4 (day): 0 is out of range 1-31");
    refused_str("0 0 30/2 * * *", "field 3 (hour): 30 is out of range 0-23");
    refused_str("1,2,3,456,7 * * * * *", "field 1 (second): 456 is out of range 0-59");
    refused_str("99999999999 * * * * *", "field 1 (second): 99999999999 is out of range 0-59");
    /* Lists. */
    refused_str("1,,2 * * * * *", "field 1 (second): a list has an empty item");
    refused_str("1,2, * * * * *", "field 1 (second): a list has an empty item");
    refused_str(",1 * * * * *", "field 1 (second): a list has an empty item");
    refused_str("0 0 0 * * mon,bad,wed", "field 6 (day-of-week): 'bad' is not a number or a day");
    /* Ranges and steps. */
    refused_str("0 5- * * * *", "field 2 (minute): '5-' is missing a value");
    refused_str("0 -5 * * * *", "field 2 (minute): '-5' is not a number or range");
    refused_str("0 1-5-7 * * * *", "field 2 (minute): '5-7' is not a number");
    refused_str("0 3-l2 * * * *", "field 2 (minute): 'l2' is not a number (0-59)");
    refused_str("0 */ * * * *", "field 2 (minute): a '/' is not followed by a step");
    refused_str("0 /5 * * * *", "field 2 (minute): '/5': a step must follow");
    refused_str("0 1/Z * * * *", "field 2 (minute): step 'Z' is not a number");
    refused_str("0 */5/2 * * * *", "field 2 (minute): step '5/2' is not a number");
    refused_str("0 */2147483648 * * * *", "field 2 (minute): step '2147483648' is out of range");
    refused_str("0 */-2147483649 * * * *", "step '-2147483649' is out of range");
    refused_str("0 */5x * * * *", "step '5x' is not a number");
    refused_str("0 *-5 * * * *", "field 2 (minute): '*' is not a number");
    refused_str("0 ** * * * *", "field 2 (minute): '**' is not a number");
    refused_str("0 ? * * * *", "field 2 (minute): '?' is not a number");
    /* Names only where they belong, and only prefixes of the real ones. */
    refused_str("0 0 MON * * *", "field 3 (hour): 'MON' is not a number (0-23)");
    refused_str("0 0 0 * Septemberx *", "field 5 (month): 'Septemberx' is not a number or a month");
    refused_str("0 0 0 * * Mo1", "field 6 (day-of-week): 'Mo1' is not a number or a day");
    refused_str("0 0 0 * * Sun7", "'Sun7' is not a number or a day name (SUN-SAT)");
    refused_str("0 0 0 L * *", "field 4 (day): 'L' is not a number (1-31)");
    refused_str("0 0 0 * * 5#3", "field 6 (day-of-week): '5#3' is not a number");
    /* Bytes: NUL, non-ASCII, length. */
    refused("0 0 0 * * *\0", 12, "NUL");
    refused_str("0 0 0 * * Lun\xc3\xa9", "non-ASCII byte (0xc3 at offset 13)");
    memset(big, ' ', sizeof(big));
    memcpy(big, "0 0 0 * * *", 11);
    refused(big, RP_NCRON_MAX_LEN + 1, "longer than 256 bytes");
    assert_int_equal(rp_ncron_parse(big, RP_NCRON_MAX_LEN, &c, NULL, 0), 0);
    /* A short reason buffer is still terminated; NULL arguments are refused. */
    {
        char why[8];
        assert_int_equal(rp_ncron_parse("x", 1, &c, why, sizeof(why)), RP_EPARSE);
        assert_int_equal(strlen(why), 7);
    }
    assert_int_equal(rp_ncron_parse("0 0 0 * * *", 11, NULL, NULL, 0), RP_EINVAL);
    assert_int_equal(rp_ncron_parse(NULL, 3, &c, NULL, 0), RP_EINVAL);
    /* Only the first n bytes count. */
    assert_int_equal(rp_ncron_parse("0 0 0 * * *garbage", 11, &c, NULL, 0), 0);
}

static void test_timespan(void **state)
{
    rp_ncron c;
    int64_t t = 0;

    (void)state;
    c = parse_ok("01:00:00");
    assert_int_equal(c.period_s, 3600);
    assert_true(c.second == 0 && c.hour == 0);
    assert_int_equal(parse_ok("00:00:30").period_s, 30);
    assert_int_equal(parse_ok("1:2:3").period_s, 3723);
    assert_int_equal(parse_ok("23:59:59").period_s, 86399);
    assert_int_equal(parse_ok("1.00:00:00").period_s, 86400);
    assert_int_equal(parse_ok("2.12:30:05").period_s, 2 * 86400 + 12 * 3600 + 30 * 60 + 5);
    assert_int_equal(parse_ok("  \t00:05:00\r\n ").period_s, 300);
    assert_int_equal(parse_ok("0001:002:0003").period_s, 3723);
    assert_int_equal(parse_ok("10675199.02:48:05").period_s, RP_NCRON_PERIOD_MAX);

    refused_str("00:00:00", "the period must be longer than zero");
    refused_str("0.00:00:00", "the period must be longer than zero");
    refused_str("-01:00:00", "the period must be positive");
    refused_str("24:00:00", "hours are 0-23");
    refused_str("00:60:00", "minutes are 0-59");
    refused_str("00:00:60", "seconds are 0-59");
    refused_str("10675200.00:00:00", "days are at most 10675199");
    refused_str("10675199.02:48:06", "longer than a .NET TimeSpan");
    refused_str("01:00", "only hh:mm:ss and d.hh:mm:ss");
    refused_str("1.01:00", "only hh:mm:ss and d.hh:mm:ss");
    refused_str("01:00:00.5", "only hh:mm:ss and d.hh:mm:ss");
    refused_str("1:01:00:00", "only hh:mm:ss and d.hh:mm:ss");
    refused_str("+01:00:00", "only hh:mm:ss and d.hh:mm:ss");
    refused_str("01::00", "only hh:mm:ss and d.hh:mm:ss");
    refused_str("1.2.03:00:00", "only hh:mm:ss and d.hh:mm:ss");
    refused_str("01:00:00 x", "2 fields");
    /* "1" is a day for TimeSpan.Parse, but not a form accepted here. */
    refused_str("1", "1 field");

    c = parse_ok("00:05:00");
    assert_int_equal(rp_ncron_next(&c, 1000, &t), 0);
    assert_int_equal(t, 1300);
    assert_int_equal(rp_ncron_next(&c, -1000, &t), 0);
    assert_int_equal(t, -700);
    assert_int_equal(rp_ncron_next(&c, RP_NCRON_TIME_MAX - 300, &t), 0);
    assert_int_equal(t, RP_NCRON_TIME_MAX);
    assert_int_equal(rp_ncron_next(&c, RP_NCRON_TIME_MAX - 299, &t), RP_ENOENT);
}

static void test_day_rule(void **state)
{
    static const char *const fri13[] = {"2024-09-13T00:00:00Z", "2024-12-13T00:00:00Z",
                                        "2025-06-13T00:00:00Z"};

    (void)state;
    /* Both restricted: AND (Vixie cron's OR would give Friday 2024-01-05 first). */
    sequence("0 0 0 13 * 5", "2024-01-01T00:00:00Z", fri13, 3);
    sequence("0 0 0 13 * FRI", "2024-01-01T00:00:00Z", fri13, 3);
    /* NCrontab's test: the 1st of a month that is a Monday. */
    next_is("0 45 16 1 * Mon", "2003-01-01T12:00:00Z", "2003-09-01T16:45:00Z");
    next_is("0 45 16 1 * Mon", "2003-09-01T23:45:00Z", "2003-12-01T16:45:00Z");
    /* Only one restricted: that one decides. */
    next_is("0 0 0 * * MON", "2025-03-07T10:00:00Z", "2025-03-10T00:00:00Z");
    next_is("0 0 0 10 * *", "2025-03-07T10:00:00Z", "2025-03-10T00:00:00Z");
    next_is("0 0 0 8 * *", "2025-03-07T10:00:00Z", "2025-03-08T00:00:00Z");
    /* Feb 29 that is a Friday: the next is in 2036, 12 years on (within the horizon). */
    next_is("0 0 0 29 2 5", "2024-01-01T00:00:00Z", "2036-02-29T00:00:00Z");
    /* Feb 29 that is a Thursday: 2024. */
    next_is("0 0 0 29 2 4", "2021-01-01T00:00:00Z", "2024-02-29T00:00:00Z");
}

static void test_next_boundaries(void **state)
{
    (void)state;
    /* Seconds into minutes, hours, days, months and years. */
    next_is("* * * * * *", "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z");
    next_is("* * * * * *", "2024-12-31T23:59:59Z", "2025-01-01T00:00:00Z");
    next_is("0 * * * * *", "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z");
    next_is("0 * * * * *", "2024-01-01T00:59:30Z", "2024-01-01T01:00:00Z");
    next_is("30 * * * * *", "2024-01-01T00:00:30Z", "2024-01-01T00:01:30Z");
    next_is("0 0 * * * *", "2024-01-01T23:00:00Z", "2024-01-02T00:00:00Z");
    next_is("0 0 0 * * *", "2024-01-31T00:00:00Z", "2024-02-01T00:00:00Z");
    next_is("0 0 0 1 * *", "2024-12-01T00:00:00Z", "2025-01-01T00:00:00Z");
    next_is("0 0 0 1 1 *", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z");
    next_is("59 59 23 31 12 *", "2024-06-01T00:00:00Z", "2024-12-31T23:59:59Z");
    next_is("59 59 23 31 12 *", "2024-12-31T23:59:59Z", "2025-12-31T23:59:59Z");
    /* A later hour starts its minutes and seconds again (NCrontab issue #90). */
    next_is("* 0-1 10 * * *", "2021-02-24T09:50:35Z", "2021-02-24T10:00:00Z");
    next_is("* * 10 * * *", "2021-02-24T09:50:35Z", "2021-02-24T10:00:00Z");
    next_is("* 55 * * * *", "2021-02-24T09:50:35Z", "2021-02-24T09:55:00Z");
    next_is("* 0-1 10 * * *", "2021-02-24T10:01:59Z", "2021-02-25T10:00:00Z");
    /* NCrontab's seconds and minutes cases. */
    next_is("45-47,48,49 * * * * *", "2003-01-01T00:00:49Z", "2003-01-01T00:01:45Z");
    next_is("2/5 * * * * *", "2003-01-01T00:00:57Z", "2003-01-01T00:01:02Z");
    next_is("3 45 * * * *", "2003-01-01T00:00:30Z", "2003-01-01T00:45:03Z");
    next_is("6 45-47,48,49 * * * *", "2003-01-01T00:49:30Z", "2003-01-01T01:45:06Z");
    next_is("9 2/5 * * * *", "2003-01-01T00:57:30Z", "2003-01-01T01:02:09Z");
    next_is("10 30 12 * * Mon", "2003-01-01T00:00:00Z", "2003-01-06T12:30:10Z");
    next_is("0 10 * * 6 *", "2003-12-01T05:00:00Z", "2004-06-01T00:10:00Z");
    next_is("0 10 * * February,April-Jun *", "2002-07-01T05:00:00Z", "2003-02-01T00:10:00Z");
    next_is("0 1 2 3 * *", "2003-01-04T00:00:00Z", "2003-02-03T02:01:00Z");
    next_is("0 * 12 1 6 *", "1988-09-11T14:23:00Z", "1989-06-01T12:00:00Z");
    next_is("0 40 14/1 * * *", "2000-01-01T14:40:00Z", "2000-01-01T15:40:00Z");
}

static void test_leap_years_and_month_ends(void **state)
{
    static const char *const feb29[] = {"2000-02-29T12:01:00Z", "2004-02-29T12:01:00Z",
                                        "2008-02-29T12:01:00Z"};
    static const char *const feb28[] = {"2000-02-28T12:01:00Z", "2001-02-28T12:01:00Z",
                                        "2002-02-28T12:01:00Z"};
    static const char *const ends[] = {"2000-01-15T00:00:00Z", "2000-01-30T00:00:00Z",
                                       "2000-01-31T00:00:00Z", "2000-02-15T00:00:00Z",
                                       "2000-03-15T00:00:00Z", "2000-03-30T00:00:00Z",
                                       "2000-03-31T00:00:00Z", "2000-04-15T00:00:00Z",
                                       "2000-04-30T00:00:00Z", "2000-05-15T00:00:00Z"};
    static const char *const d31[] = {"2023-01-31T00:00:00Z", "2023-03-31T00:00:00Z",
                                      "2023-05-31T00:00:00Z", "2023-07-31T00:00:00Z",
                                      "2023-08-31T00:00:00Z", "2023-10-31T00:00:00Z"};

    (void)state;
    sequence("0 1 12 29 2 *", "2000-01-01T12:00:00Z", feb29, 3);
    sequence("0 1 12 28 2 *", "2000-01-01T12:00:00Z", feb28, 3);
    /* 2000 is a leap year (divisible by 400, above); 1900 and 2100 are not. */
    next_is("0 0 0 29 2 *", "1899-03-01T00:00:00Z", "1904-02-29T00:00:00Z");
    next_is("0 0 0 29 2 *", "2100-01-01T00:00:00Z", "2104-02-29T00:00:00Z");
    next_is("0 0 0 * * *", "1900-02-28T00:00:00Z", "1900-03-01T00:00:00Z");
    next_is("0 0 0 * * *", "2100-02-28T00:00:00Z", "2100-03-01T00:00:00Z");
    sequence("0 0 0 15,30,31 * *", "2000-01-01T00:00:00Z", ends, 10);
    sequence("0 0 0 31 * *", "2023-01-01T00:00:00Z", d31, 6);
    /* Every day of a leap February, and into March. */
    next_is("0 0 0 * * *", "2024-02-28T00:00:00Z", "2024-02-29T00:00:00Z");
    next_is("0 0 0 * * *", "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z");
    next_is("0 0 0 * * *", "2023-02-28T00:00:00Z", "2023-03-01T00:00:00Z");
    next_is("0 0 0 * 3 *", "2024-02-29T23:59:59Z", "2024-03-01T00:00:00Z");
    next_is("0 0 0 * 4 *", "2002-03-31T23:59:59Z", "2002-04-01T00:00:00Z");
}

static void test_sequences(void **state)
{
    static const char *const five[] = {"2024-12-31T23:50:00Z", "2024-12-31T23:55:00Z",
                                       "2025-01-01T00:00:00Z", "2025-01-01T00:05:00Z"};
    /* Friday 2025-03-07 to the next Tuesday: Saturday and Sunday are skipped. */
    static const char *const weekdays[] = {"2025-03-07T09:30:00Z", "2025-03-10T09:30:00Z",
                                           "2025-03-11T09:30:00Z"};
    static const char *const hours[] = {"2025-03-07T09:00:00Z", "2025-03-07T11:00:00Z",
                                        "2025-03-07T13:00:00Z", "2025-03-07T15:00:00Z",
                                        "2025-03-07T17:00:00Z", "2025-03-08T09:00:00Z"};

    (void)state;
    sequence("0 */5 * * * *", "2024-12-31T23:47:13Z", five, 4);
    sequence("0 30 9 * * 1-5", "2025-03-07T09:29:59Z", weekdays, 3);
    sequence("0 30 9 * * MON-FRI", "2025-03-07T09:29:59Z", weekdays, 3);
    sequence("0 0 9-17/2 * * *", "2025-03-07T08:00:00Z", hours, 6);
}

static void test_no_occurrence(void **state)
{
    rp_ncron c, zero;
    int64_t t = 42;

    (void)state;
    static const char *const never[] = {"0 0 0 30 2 *", "0 0 0 31 2 *", "0 0 0 31 4,6,9,11 *",
                                        "* * * 30-31 Feb *"};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        c = parse_ok(never[i]);
        assert_int_equal(rp_ncron_next(&c, at("2024-01-01T00:00:00Z"), &t), RP_ENOENT);
        assert_int_equal(t, 42);
    }
    /* Feb 29 is 8 years away across 2100 (not a leap year): found. */
    c = parse_ok("0 0 0 29 2 *");
    assert_int_equal(rp_ncron_next(&c, at("2096-03-01T00:00:00Z"), &t), 0);
    assert_int_equal(t, at("2104-02-29T00:00:00Z"));
    /* The rarest possible schedule: Feb 29 on a Monday, 2044 then 2072 (28 years), and from
     * 2072 across 2100 to 2112 (40 years): still within the horizon. */
    next_is("0 0 0 29 2 MON", "2072-03-01T00:00:00Z", "2112-02-29T00:00:00Z");
    assert_true(RP_NCRON_HORIZON_S > at("2112-02-29T00:00:00Z") - at("2072-03-01T00:00:00Z"));
    /* Nothing after the end of year 9999 (.NET DateTime's last day, as in NCrontab). */
    c = parse_ok("* * * * * *");
    assert_int_equal(rp_ncron_next(&c, RP_NCRON_TIME_MAX - 1, &t), 0);
    assert_int_equal(t, RP_NCRON_TIME_MAX);
    assert_int_equal(rp_ncron_next(&c, RP_NCRON_TIME_MAX, &t), RP_ENOENT);
    c = parse_ok("0 0 0 1 1 *");
    assert_int_equal(rp_ncron_next(&c, at("9999-06-01T00:00:00Z"), &t), RP_ENOENT);
    /* Before 1970 and at year 1. */
    next_is("0 0 12 * * *", "1969-12-31T13:00:00Z", "1970-01-01T12:00:00Z");
    assert_int_equal(rp_ncron_next(&c, RP_NCRON_TIME_MIN, &t), 0);
    assert_int_equal(t, RP_NCRON_TIME_MIN + 365 * 86400); /* 0002-01-01; year 1 is common */
    /* Times outside DateTime's range and structs that were not parsed are refused. */
    assert_int_equal(rp_ncron_next(&c, RP_NCRON_TIME_MIN - 1, &t), RP_EINVAL);
    assert_int_equal(rp_ncron_next(&c, RP_NCRON_TIME_MAX + 1, &t), RP_EINVAL);
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(rp_ncron_next(&zero, 0, &t), RP_EINVAL);
    c = parse_ok("* * * * * *");
    c.second |= BIT(60);
    assert_int_equal(rp_ncron_next(&c, 0, &t), RP_EINVAL);
    c = parse_ok("* * * * * *");
    c.day |= 1;
    assert_int_equal(rp_ncron_next(&c, 0, &t), RP_EINVAL);
    c = parse_ok("* * * * * *");
    c.period_s = -1;
    assert_int_equal(rp_ncron_next(&c, 0, &t), RP_EINVAL);
    assert_int_equal(rp_ncron_next(NULL, 0, &t), RP_EINVAL);
    assert_int_equal(rp_ncron_next(&zero, 0, NULL), RP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_forms),
        cmocka_unit_test(test_reversed_ranges_and_odd_steps),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_whitespace),
        cmocka_unit_test(test_five_fields),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_timespan),
        cmocka_unit_test(test_day_rule),
        cmocka_unit_test(test_next_boundaries),
        cmocka_unit_test(test_leap_years_and_month_ends),
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_no_occurrence),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
