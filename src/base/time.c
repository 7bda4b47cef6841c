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
