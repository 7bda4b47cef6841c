/*
 * ncron_fuzz.c - libFuzzer driver for src/functions/ncron.c: timer schedules as a function's
 * function.json (or an app setting it names) can carry them.
 *
 * Input: bytes, parsed as a schedule. Invariants checked with abort():
 *   - parse returns 0 or RP_EPARSE; a refusal leaves a reason and a zeroed struct; success
 *     leaves no reason and either a TimeSpan period in 1..RP_NCRON_PERIOD_MAX with empty sets,
 *     or non-empty sets holding only in-range values; parsing again gives the same struct;
 *   - for three `after` values (two derived from the input, one near the end of year 9999):
 *     next() matches a brute-force search - every day from after to the horizon, its date
 *     from libc's gmtime_r, then its seconds in order (skipping only hours and minutes whose
 *     bit is off) - both in what it finds and in finding nothing (RP_ENOENT); when it finds t,
 *     t > after and next(t - 1) == t; a TimeSpan gives after + period.
 * Corpus: tests/fuzz/corpus/ncron/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "functions/ncron.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int date_matches(const rp_ncron *c, int64_t day)
{
    time_t tt = (time_t)(day * 86400);
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL)
        abort();
    return ((c->month >> (tm.tm_mon + 1)) & 1) && ((c->day >> tm.tm_mday) & 1) &&
           ((c->wday >> tm.tm_wday) & 1);
}

/* The first t in (after, limit] that every field matches into *out: 1, or 0 if none. */
static int brute(const rp_ncron *c, int64_t after, int64_t limit, int64_t *out)
{
    for (int64_t day = floor_div(after + 1, 86400); day <= floor_div(limit, 86400); day++) {
        int64_t t = day * 86400, end = t + 86399;
        if (!date_matches(c, day))
            continue;
        if (t <= after)
            t = after + 1;
        if (end > limit)
            end = limit;
        for (; t <= end; t++) {
            int64_t sod = t - day * 86400;
            if (!((c->hour >> (sod / 3600)) & 1))
                t = day * 86400 + (sod / 3600) * 3600 + 3599; /* skip the rest of the hour */
            else if (!((c->minute >> (sod / 60 % 60)) & 1))
                t = day * 86400 + (sod / 60) * 60 + 59; /* and of the minute */
            else if ((c->second >> (sod % 60)) & 1) {
                *out = t;
                return 1;
            }
        }
    }
    return 0;
}

static void check_next(const rp_ncron *c, int64_t after)
{
    int64_t t = 0, t2 = 0, limit, want;
    int rc = rp_ncron_next(c, after, &t);

    if (c->period_s > 0) {
        if (after + c->period_s <= RP_NCRON_TIME_MAX ? (rc != 0 || t != after + c->period_s)
                                                     : rc != RP_ENOENT)
            abort();
        return;
    }
    limit = after + RP_NCRON_HORIZON_S;
    if (limit > RP_NCRON_TIME_MAX)
        limit = RP_NCRON_TIME_MAX;
    if (!brute(c, after, limit, &want)) {
        if (rc != RP_ENOENT)
            abort();
        return;
    }
    if (rc != 0 || t != want || t <= after)
        abort();
    if (rp_ncron_next(c, t - 1, &t2) != 0 || t2 != t)
        abort();
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    rp_ncron c, again, zero;
    char why[256];
    uint64_t h = 0xcbf29ce484222325ULL;
    int rc;

    memset(&zero, 0, sizeof(zero));
    memset(why, 'x', sizeof(why));
    rc = rp_ncron_parse((const char *)d, n, &c, why, sizeof(why));
    if (rc != 0) {
        if (rc != RP_EPARSE || why[0] == '\0' || memchr(why, '\0', sizeof(why)) == NULL ||
            memcmp(&c, &zero, sizeof(c)) != 0)
            abort();
        return 0;
    }
    if (why[0] != '\0')
        abort();
    if (rp_ncron_parse((const char *)d, n, &again, NULL, 0) != 0 ||
        memcmp(&c, &again, sizeof(c)) != 0)
        abort();
    if (c.period_s != 0) {
        if (c.period_s < 1 || c.period_s > RP_NCRON_PERIOD_MAX || c.second || c.minute || c.hour ||
            c.day || c.month || c.wday)
            abort();
    } else if (c.second == 0 || (c.second >> 60) != 0 || c.minute == 0 || (c.minute >> 60) != 0 ||
               c.hour == 0 || (c.hour >> 24) != 0 || c.day == 0 || (c.day & 1) != 0 ||
               c.month == 0 || (c.month & 0xe001) != 0 || c.wday == 0 || (c.wday & 0x80) != 0) {
        abort();
    }
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 0x100000001b3ULL;
    /* Two instants anywhere in 0001..9999, and one where the year-9999 end cuts the search. */
    for (int i = 0; i < 2; i++) {
        h = mix(h);
        check_next(&c, RP_NCRON_TIME_MIN +
                           (int64_t)(h % (uint64_t)(RP_NCRON_TIME_MAX - RP_NCRON_TIME_MIN + 1)));
    }
    check_next(&c, RP_NCRON_TIME_MAX - (int64_t)(mix(h) % (3 * 366 * 86400)));
    return 0;
}
