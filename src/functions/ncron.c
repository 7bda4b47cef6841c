/*
 * ncron.c - NCRONTAB and TimeSpan timer schedules (ncron.h).
 *
 * The parser follows NCrontab's own structure, verified against atifaziz/NCrontab (tags v3.3.3
 * and v3.4.0; the parsing code is unchanged between them):
 * - CrontabSchedule.TryParse: Split(' ', RemoveEmptyEntries), then exactly 6 tokens when
 *   IncludingSeconds (Azure's CronSchedule sets it unless there are exactly 5 tokens).
 * - CrontabFieldImpl.InternalParse: a ',' after the first character makes a list, split
 *   keeping empty items; then the first '/' after the first character splits off a step read
 *   with int.Parse; then a lone '*'; then the first '-' after the first character makes a
 *   range; else one value, and "value/step" means value..max. ParseValue: a leading digit
 *   means int.Parse, otherwise a name that the input is a case-insensitive prefix of
 *   (CompareInfo.IsPrefix), the first in the names array winning.
 * - CrontabField.Accumulate: a single value is range-checked; a range is swapped when
 *   reversed, then both ends are range-checked; an interval below 1 becomes 1.
 * - CrontabSchedule.TryGetNextOccurrence: walks second, minute, hour, day and month, retries
 *   when the day does not exist in the month, and when the day of the week does not match
 *   starts again from 23:59:59 of that day: day-of-month and day-of-week are ANDed. Years
 *   past 9999 have no occurrence. NCrontab's own tests ("45 16 1 * Mon", "0 0 29 Feb Mon")
 *   check the AND.
 * rp_ncron_next does not copy that walk: it searches forward field by field from after + 1,
 * which gives the same instant (the first second after `after` that every field matches).
 *
 * Dates use a proleptic Gregorian days-from-civil conversion of our own, so nothing depends
 * on TZ, the locale or the width of time_t.
 */
#include "functions/ncron.h"

#include "base/err.h"
#include "base/time.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DAY_S 86400

static const char *const month_names[] = {"January",   "February", "March",    "April",
                                          "May",       "June",     "July",     "August",
                                          "September", "October",  "November", "December"};
static const char *const wday_names[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                         "Thursday", "Friday", "Saturday"};

static const struct field_def {
    const char *name;
    int min, max;
    const char *const *names; /* names[v - min], or NULL for numbers only */
    const char *hint;         /* how names are written, for reasons */
} fields[6] = {
    {"second", 0, 59, NULL, NULL},
    {"minute", 0, 59, NULL, NULL},
    {"hour", 0, 23, NULL, NULL},
    {"day", 1, 31, NULL, NULL},
    {"month", 1, 12, month_names, "a month name (JAN-DEC)"},
    {"day-of-week", 0, 6, wday_names, "a day name (SUN-SAT)"},
};

/* One field being parsed: where reasons go and the bits collected so far. */
typedef struct field_ctx {
    const struct field_def *def;
    int index; /* 1-based, as users count fields */
    uint64_t bits;
    char *why;
    size_t cap;
} field_ctx;

/* The whitespace .NET's number and TimeSpan parsers skip (space, \t, \n, \v, \f, \r). */
static int dotnet_ws(unsigned char c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0d);
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* A printable copy of p[0..n) for a reason: at most 24 bytes, control characters as '?'. */
static void show(char *dst, size_t cap, const char *p, size_t n)
{
    size_t k = n > 24 ? 24 : n, o = 0;

    for (size_t i = 0; i < k && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)p[i];
        dst[o++] = (c < 0x20 || c > 0x7e) ? '?' : (char)c;
    }
    if (k < n && o + 4 < cap) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
}

static int field_fail(field_ctx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "field 3 (hour): <message>" into the caller's why; returns RP_EPARSE. */
static int field_fail(field_ctx *f, const char *fmt, ...)
{
    char msg[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return rp_errf(f->why, f->cap, RP_EPARSE, "field %d (%s): %s", f->index, f->def->name, msg);
}

/* Digits p[0..n) (all digits, n > 0) as a value up to max: 1, or 0 when they overflow it. */
static int digits_value(const char *p, size_t n, int64_t max, int64_t *out)
{
    int64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (p[i] - '0');
        if (v > max)
            return 0;
    }
    *out = v;
    return 1;
}

/*
 * One value (ParseValue): digits with optional trailing .NET whitespace, or a name. The
 * range check is the caller's (Accumulate does it after swapping a range).
 */
static int parse_value(field_ctx *f, const char *item, size_t itemn, const char *p, size_t n,
                       int64_t *out)
{
    char txt[32];
    size_t k = 0;

    show(txt, sizeof(txt), p, n);
    if (n == 0) {
        char it[32];
        show(it, sizeof(it), item, itemn);
        return field_fail(f, "'%s' is missing a value", it);
    }
    if (is_digit((unsigned char)p[0])) {
        while (k < n && is_digit((unsigned char)p[k]))
            k++;
        for (size_t i = k; i < n; i++)
            if (!dotnet_ws((unsigned char)p[i]))
                return field_fail(f, "'%s' is not a number", txt);
        if (!digits_value(p, k, INT32_MAX, out))
            return field_fail(f, "%s is out of range %d-%d", txt, f->def->min, f->def->max);
        return 0;
    }
    if (f->def->names == NULL)
        return field_fail(f, "'%s' is not a number (%d-%d)", txt, f->def->min, f->def->max);
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z')))
            return field_fail(f, "'%s' is not a number or %s", txt, f->def->hint);
    for (int v = 0; v <= f->def->max - f->def->min; v++) {
        const char *name = f->def->names[v];
        size_t i = 0;
        if (n > strlen(name))
            continue;
        while (i < n && ascii_lower(p[i]) == ascii_lower(name[i]))
            i++;
        if (i == n) {
            *out = v + f->def->min;
            return 0;
        }
    }
    return field_fail(f, "'%s' is not a number or %s", txt, f->def->hint);
}

/* A step as .NET int.Parse reads it: [ws][+|-]digits[ws]. Below 1 is kept (it means 1). */
static int parse_step(field_ctx *f, const char *p, size_t n, int64_t *out)
{
    char txt[32];
    size_t i = 0, d0;
    int neg = 0;

    show(txt, sizeof(txt), p, n);
    while (i < n && dotnet_ws((unsigned char)p[i]))
        i++;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        neg = p[i++] == '-';
    d0 = i;
    while (i < n && is_digit((unsigned char)p[i]))
        i++;
    if (i == d0) {
        if (n == 0)
            return field_fail(f, "a '/' is not followed by a step");
        return field_fail(f, "step '%s' is not a number", txt);
    }
    for (size_t j = i; j < n; j++)
        if (!dotnet_ws((unsigned char)p[j]))
            return field_fail(f, "step '%s' is not a number", txt);
    /* An int32, as int.Parse reads it: -2147483648 fits, 2147483648 does not. */
    if (!digits_value(p + d0, i - d0, (int64_t)INT32_MAX + neg, out))
        return field_fail(f, "step '%s' is out of range", txt);
    if (neg)
        *out = -*out;
    return 0;
}

/* CrontabField.Accumulate: start..end every step into f->bits. */
static int accumulate(field_ctx *f, int64_t start, int64_t end, int64_t step)
{
    int min = f->def->min, max = f->def->max;

    if (start > end) {
        int64_t t = start;
        start = end;
        end = t;
    }
    if (start < min || start > max)
        return field_fail(f, "%lld is out of range %d-%d", (long long)start, min, max);
    if (end > max)
        return field_fail(f, "%lld is out of range %d-%d", (long long)end, min, max);
    if (step < 1)
        step = 1;
    for (int64_t v = start; v <= end; v += step)
        f->bits |= (uint64_t)1 << v;
    return 0;
}

/* One list item: "*", "v", "a-b", each optionally followed by "/step". */
static int parse_item(field_ctx *f, const char *p, size_t n)
{
    const char *slash, *dash;
    size_t rn = n;
    int64_t step = 1, a, b;
    int has_step = 0, rc;
    char txt[32];

    if (n == 0)
        return field_fail(f, "a list has an empty item");
    show(txt, sizeof(txt), p, n);
    slash = memchr(p, '/', n);
    if (slash == p)
        return field_fail(f, "'%s': a step must follow '*', a value or a range", txt);
    if (slash != NULL) {
        rc = parse_step(f, slash + 1, n - (size_t)(slash - p) - 1, &step);
        if (rc != 0)
            return rc;
        has_step = 1;
        rn = (size_t)(slash - p);
    }
    if (rn == 1 && p[0] == '*')
        return accumulate(f, f->def->min, f->def->max, step);
    dash = memchr(p, '-', rn);
    if (dash == p)
        return field_fail(f, "'%s' is not a number or range", txt);
    if (dash != NULL) {
        size_t an = (size_t)(dash - p);
        if ((rc = parse_value(f, p, n, p, an, &a)) != 0 ||
            (rc = parse_value(f, p, n, dash + 1, rn - an - 1, &b)) != 0)
            return rc;
        return accumulate(f, a, b, step);
    }
    if ((rc = parse_value(f, p, n, p, rn, &a)) != 0)
        return rc;
    return has_step ? accumulate(f, a, f->def->max, step) : accumulate(f, a, a, 1);
}

/* One field: comma-separated items, empty ones refused (NCrontab splits keeping them, and
 * a field starting with ',' fails as a value). */
static int parse_field(field_ctx *f, const char *p, size_t n)
{
    int rc;

    for (;;) {
        const char *end = memchr(p, ',', n);
        size_t k = end ? (size_t)(end - p) : n;
        if ((rc = parse_item(f, p, k)) != 0)
            return rc;
        if (end == NULL)
            return 0;
        p += k + 1;
        n -= k + 1;
    }
}

/* Digits p[*i..) into *v (saturating well above any limit checked later); 0 if none. */
static int ts_number(const char *p, size_t n, size_t *i, int64_t *v)
{
    size_t s = *i;

    *v = 0;
    while (*i < n && is_digit((unsigned char)p[*i])) {
        if (*v < ((int64_t)1 << 40))
            *v = *v * 10 + (p[*i] - '0');
        (*i)++;
    }
    return *i > s;
}

/* "hh:mm:ss" or "d.hh:mm:ss", whitespace around it already trimmed. */
static int parse_timespan(const char *p, size_t n, rp_ncron *out, char *why, size_t cap)
{
    int64_t v[4], d = 0, h, m, s, total;
    size_t i = 0;
    int k = 0;
    char txt[32];

    show(txt, sizeof(txt), p, n);
    if (n > 0 && p[0] == '-')
        return rp_errf(why, cap, RP_EPARSE, "TimeSpan '%s': the period must be positive", txt);
    for (;;) {
        if (k == 4 || !ts_number(p, n, &i, &v[k]))
            goto form;
        k++;
        if (i == n)
            break;
        /* Only the first separator of four numbers may be '.', all others ':'. */
        if (p[i] == '.' && k == 1)
            d = -1;
        else if (p[i] != ':')
            goto form;
        i++;
    }
    if (d == -1 && k == 4) {
        d = v[0], h = v[1], m = v[2], s = v[3];
    } else if (d == 0 && k == 3) {
        h = v[0], m = v[1], s = v[2];
    } else {
        goto form;
    }
    if (d > 10675199)
        return rp_errf(why, cap, RP_EPARSE, "TimeSpan '%s': days are at most 10675199", txt);
    if (h > 23)
        return rp_errf(why, cap, RP_EPARSE,
                       "TimeSpan '%s': hours are 0-23 (write a day or more as d.hh:mm:ss)", txt);
    if (m > 59)
        return rp_errf(why, cap, RP_EPARSE, "TimeSpan '%s': minutes are 0-59", txt);
    if (s > 59)
        return rp_errf(why, cap, RP_EPARSE, "TimeSpan '%s': seconds are 0-59", txt);
    total = ((d * 24 + h) * 60 + m) * 60 + s;
    if (total == 0)
        return rp_errf(why, cap, RP_EPARSE, "TimeSpan '%s': the period must be longer than zero",
                       txt);
    if (total > RP_NCRON_PERIOD_MAX)
        return rp_errf(why, cap, RP_EPARSE, "TimeSpan '%s': longer than a .NET TimeSpan", txt);
    out->period_s = total;
    return 0;
form:
    return rp_errf(why, cap, RP_EPARSE,
                   "TimeSpan '%s': only hh:mm:ss and d.hh:mm:ss are accepted (hh 0-23)", txt);
}

int rp_ncron_parse(const char *s, size_t n, rp_ncron *out, char *why, size_t cap)
{
    const char *tok[6];
    size_t tokn[6], ntok = 0;
    int rc, sep_hint = 0, skip;
    rp_ncron c;

    if (why != NULL && cap > 0)
        why[0] = '\0';
    if (out == NULL)
        return rp_errf(why, cap, RP_EINVAL, "no schedule");
    memset(out, 0, sizeof(*out));
    if (s == NULL && n > 0)
        return rp_errf(why, cap, RP_EINVAL, "no schedule");
    memset(&c, 0, sizeof(c));
    if (n > RP_NCRON_MAX_LEN)
        return rp_errf(why, cap, RP_EPARSE, "the schedule is longer than %d bytes",
                       RP_NCRON_MAX_LEN);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == 0 || ch >= 0x7f)
            return rp_errf(why, cap, RP_EPARSE,
                           "the schedule has a NUL, DEL or non-ASCII byte (0x%02x at offset %zu)",
                           ch, i);
        if (ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f')
            sep_hint = 1;
    }
    /* Tokens split on ' ' only, empty ones dropped (Split(' ', RemoveEmptyEntries)). */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        if (s[i] == ' ') {
            i++;
            continue;
        }
        while (j < n && s[j] != ' ')
            j++;
        if (ntok < 6) {
            tok[ntok] = s + i;
            tokn[ntok] = j - i;
        }
        ntok++;
        i = j;
    }
    if (ntok == 0)
        return rp_errf(why, cap, RP_EPARSE, "the schedule is empty");
    if (ntok == 1 && memchr(tok[0], ':', tokn[0]) != NULL) {
        /* TimeSpan.TryParse trims whitespace (all of it ASCII here) before parsing. */
        const char *p = tok[0];
        size_t k = tokn[0];
        while (k > 0 && dotnet_ws((unsigned char)p[0]))
            p++, k--;
        while (k > 0 && dotnet_ws((unsigned char)p[k - 1]))
            k--;
        if ((rc = parse_timespan(p, k, &c, why, cap)) != 0)
            return rc;
        *out = c;
        return 0;
    }
    if (ntok != 6 && ntok != 5)
        return rp_errf(why, cap, RP_EPARSE,
                       "%zu field%s: a timer schedule has 6 ({second} {minute} {hour} {day} "
                       "{month} {day-of-week}), 5 (the same without seconds) or is a TimeSpan "
                       "(hh:mm:ss, d.hh:mm:ss)%s",
                       ntok, ntok == 1 ? "" : "s", sep_hint ? "; only spaces separate fields" : "");
    /* Five tokens: classic cron, the seconds fixed at 0 (the WebJobs extension's reading). */
    skip = ntok == 5 ? 1 : 0;
    if (skip)
        c.second = 1; /* second 0 */
    for (int i = skip; i < 6; i++) {
        field_ctx f = {&fields[i], i + 1 - skip, 0, why, cap};
        if ((rc = parse_field(&f, tok[i - skip], tokn[i - skip])) != 0)
            return rc;
        switch (i) {
        case 0: c.second = f.bits; break;
        case 1: c.minute = f.bits; break;
        case 2: c.hour = (uint32_t)f.bits; break;
        case 3: c.day = (uint32_t)f.bits; break;
        case 4: c.month = (uint16_t)f.bits; break;
        default: c.wday = (uint8_t)f.bits; break;
        }
    }
    *out = c;
    return 0;
}

/* ---------------------------------------------------------------- next occurrence */

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 ? 28 + leap : dim[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The smallest v in [from, max] whose bit is set, or -1. */
static int next_bit(uint64_t set, int from, int max)
{
    uint64_t rest;

    if (from > max)
        return -1;
    rest = set >> from;
    if (rest == 0)
        return -1;
    from += __builtin_ctzll(rest);
    return from <= max ? from : -1;
}

/* Where the search stands: a civil date, its day number, and a time of day. */
typedef struct cursor {
    int64_t y, day;
    int m, d, hh, mi, ss;
} cursor;

static void to_month(cursor *k, int64_t y, int m)
{
    k->y = y;
    k->m = m;
    k->d = 1;
    k->day = rp_days_from_civil(y, m, 1);
    k->hh = k->mi = k->ss = 0;
}

static void to_next_day(cursor *k)
{
    if (k->d < days_in_month(k->y, k->m)) {
        k->d++;
        k->day++;
        k->hh = k->mi = k->ss = 0;
    } else if (k->m < 12) {
        to_month(k, k->y, k->m + 1);
    } else {
        to_month(k, k->y + 1, 1);
    }
}

static int valid_sets(const rp_ncron *c)
{
    return c->second != 0 && (c->second >> 60) == 0 && c->minute != 0 && (c->minute >> 60) == 0 &&
           c->hour != 0 && (c->hour >> 24) == 0 && (c->day & ~(uint32_t)0xfffffffe) == 0 &&
           c->day != 0 && (c->month & ~(uint16_t)0x1ffe) == 0 && c->month != 0 &&
           (c->wday & ~(uint8_t)0x7f) == 0 && c->wday != 0;
}

int rp_ncron_next(const rp_ncron *c, int64_t after, int64_t *next)
{
    int64_t limit, t, last_day, sod;
    cursor k;

    if (c == NULL || next == NULL || after < RP_NCRON_TIME_MIN || after > RP_NCRON_TIME_MAX ||
        c->period_s < 0 || c->period_s > RP_NCRON_PERIOD_MAX)
        return RP_EINVAL;
    if (c->period_s > 0) {
        if (after > RP_NCRON_TIME_MAX - c->period_s)
            return RP_ENOENT;
        *next = after + c->period_s;
        return 0;
    }
    if (!valid_sets(c))
        return RP_EINVAL;
    limit = after > RP_NCRON_TIME_MAX - RP_NCRON_HORIZON_S ? RP_NCRON_TIME_MAX
                                                           : after + RP_NCRON_HORIZON_S;
    if (after == RP_NCRON_TIME_MAX)
        return RP_ENOENT;
    t = after + 1;
    k.day = floor_div(t, DAY_S);
    sod = t - k.day * DAY_S;
    rp_civil_from_days(k.day, &k.y, &k.m, &k.d);
    k.hh = (int)(sod / 3600);
    k.mi = (int)(sod / 60 % 60);
    k.ss = (int)(sod % 60);
    last_day = floor_div(limit, DAY_S);
    /* Each pass either returns or moves the cursor forward to the next time that could
     * match the coarser fields, so the loop ends within a few passes per day searched. */
    while (k.day <= last_day) {
        int v;
        if (!((c->month >> k.m) & 1)) {
            v = next_bit(c->month, k.m + 1, 12);
            if (v < 0)
                to_month(&k, k.y + 1, next_bit(c->month, 1, 12));
            else
                to_month(&k, k.y, v);
            continue;
        }
        if (!((c->day >> k.d) & 1)) {
            v = next_bit(c->day, k.d + 1, days_in_month(k.y, k.m));
            if (v < 0) {
                k.d = days_in_month(k.y, k.m);
                to_next_day(&k);
            } else {
                k.day += v - k.d;
                k.d = v;
                k.hh = k.mi = k.ss = 0;
            }
            continue;
        }
        /* 1970-01-01 was a Thursday (4). */
        if (!((c->wday >> (int)(((k.day % 7) + 11) % 7)) & 1)) {
            to_next_day(&k);
            continue;
        }
        v = next_bit(c->hour, k.hh, 23);
        if (v < 0) {
            to_next_day(&k);
            continue;
        }
        if (v > k.hh) {
            k.hh = v;
            k.mi = k.ss = 0;
        }
        v = next_bit(c->minute, k.mi, 59);
        if (v < 0) {
            k.hh++; /* 24 finds no hour: the next pass moves to the next day */
            k.mi = k.ss = 0;
            continue;
        }
        if (v > k.mi) {
            k.mi = v;
            k.ss = 0;
        }
        v = next_bit(c->second, k.ss, 59);
        if (v < 0) {
            k.mi++; /* 60 finds no minute: the next pass moves to the next hour */
            k.ss = 0;
            continue;
        }
        t = k.day * DAY_S + k.hh * 3600 + k.mi * 60 + v;
        if (t > limit)
            return RP_ENOENT;
        *next = t;
        return 0;
    }
    return RP_ENOENT;
}
