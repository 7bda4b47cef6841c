/* time.c - monotonic clocks and HTTP dates. */
#include "base/time.h"
#include "base/err.h"
#include "base/str.h"

#include <stdio.h>
#include <string.h>

uint64_t rp_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t rp_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const char wday[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char mon[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void rp_http_date(time_t t, char out[30])
{
    struct tm tm;
    char tmp[64];

    gmtime_r(&t, &tm);
    /* Years past 9999 do not fit the format; the copy truncates rather than overflows. */
    snprintf(tmp, sizeof(tmp), "%s, %02d %s %04d %02d:%02d:%02d GMT", wday[tm.tm_wday], tm.tm_mday,
             mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    rp_strlcpy(out, tmp, 30);
}

static int num(const char *s, size_t n, uint64_t max, int *out)
{
    uint64_t v;

    if (rp_parse_u64(s, n, max, &v) != 0)
        return RP_EPARSE;
    *out = (int)v;
    return 0;
}

int rp_http_date_parse(const char *s, size_t n, time_t *out)
{
    /* "Sun, 06 Nov 1994 08:49:37 GMT" is exactly 29 bytes. */
    struct tm tm;
    int m = -1;

    if (n != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || s[25] != ' ' || memcmp(s + 26, "GMT", 3) != 0)
        return RP_EPARSE;
    memset(&tm, 0, sizeof(tm));
    for (int i = 0; i < 12; i++)
        if (memcmp(s + 8, mon[i], 3) == 0)
            m = i;
    if (m < 0)
        return RP_EPARSE;
    tm.tm_mon = m;
    if (num(s + 5, 2, 31, &tm.tm_mday) || num(s + 12, 4, 9999, &tm.tm_year) ||
        num(s + 17, 2, 23, &tm.tm_hour) || num(s + 20, 2, 59, &tm.tm_min) ||
        num(s + 23, 2, 60, &tm.tm_sec))
        return RP_EPARSE;
    if (tm.tm_mday < 1 || tm.tm_year < 1970)
        return RP_EPARSE;
    tm.tm_year -= 1900;
    *out = timegm(&tm);
    return 0;
}

static int digits(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return RP_EPARSE;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int64_t rp_days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2; /* count years from March so that Feb 29 is the year's last day */
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void rp_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int rp_iso_time_parse(const char *s, size_t n, int64_t *out)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t y, mo, d, h, mi, se, oh, om, off = 0, t;
    size_t i = 19;

    if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':' || digits(s, 4, &y) || digits(s + 5, 2, &mo) ||
        digits(s + 8, 2, &d) || digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) ||
        digits(s + 17, 2, &se))
        return RP_EPARSE;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59)
        return RP_EPARSE;
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return RP_EPARSE;
    if (s[i] == '.') {
        size_t f = ++i;
        while (i < n && i - f < 9 && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f)
            return RP_EPARSE;
    }
    if (n - i == 1 && (s[i] == 'Z' || s[i] == 'z')) {
        off = 0;
    } else if (n - i == 6 && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':' &&
               digits(s + i + 1, 2, &oh) == 0 && digits(s + i + 4, 2, &om) == 0 && oh <= 23 &&
               om <= 59) {
        off = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
    } else {
        return RP_EPARSE; /* no zone: the meaning would depend on the local one */
    }
    t = rp_days_from_civil(y, (int)mo, (int)d) * 86400 + h * 3600 + mi * 60 + se - off;
    if (t < 0)
        return RP_EPARSE;
    *out = t;
    return 0;
}

void rp_iso_time(int64_t t, char out[21])
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL || strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        memcpy(out, "1970-01-01T00:00:00Z", 21);
}

int rp_iso_duration_parse(const char *s, size_t n, int64_t *out)
{
    int64_t total = 0, num = -1;
    int in_time = 0, last = 0; /* rank of the last unit: W=1 D=2 H=3 M=4 S=5, strictly increasing */

    if (n < 3 || (s[0] != 'P' && s[0] != 'p'))
        return RP_EPARSE;
    for (size_t i = 1; i < n; i++) {
        char c = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 32) : s[i];
        int rank;
        int64_t mul;

        if (c >= '0' && c <= '9') {
            num = (num < 0 ? 0 : num) * 10 + (c - '0');
            if (num > 1000000000)
                return RP_EPARSE;
            continue;
        }
        if (c == 'T') {
            if (in_time || num >= 0 || i + 1 == n)
                return RP_EPARSE;
            in_time = 1;
            continue;
        }
        if (num < 0)
            return RP_EPARSE;
        if (c == 'W' && !in_time) {
            rank = 1;
            mul = 7 * 86400;
        } else if (c == 'D' && !in_time) {
            rank = 2;
            mul = 86400;
        } else if (c == 'H' && in_time) {
            rank = 3;
            mul = 3600;
        } else if (c == 'M' && in_time) {
            rank = 4;
            mul = 60;
        } else if (c == 'S' && in_time) {
            rank = 5;
            mul = 1;
        } else {
            return RP_EPARSE;
        }
        if (rank <= last || num > 1000000000 / mul)
            return RP_EPARSE;
        last = rank;
        total += num * mul;
        if (total > 1000000000)
            return RP_EPARSE;
        num = -1;
    }
    if (num >= 0 || total <= 0)
        return RP_EPARSE;
    *out = total;
    return 0;
}
