/* time.h - clocks and time formats used across modules. */
#ifndef RP_BASE_TIME_H
#define RP_BASE_TIME_H

#include <stdint.h>
#include <time.h>

/* Milliseconds from a monotonic clock (for deadlines and durations). */
uint64_t rp_mono_ms(void);
/* Microseconds from a monotonic clock. */
uint64_t rp_mono_us(void);
/* Formats t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into out[30]. */
void rp_http_date(time_t t, char out[30]);
/* Parses an IMF-fixdate; 0 and *out, or RP_EPARSE. Obsolete formats are not accepted. */
int rp_http_date_parse(const char *s, size_t n, time_t *out);

/*
 * Parses an ISO 8601 / RFC 3339 time "YYYY-MM-DDTHH:MM:SS" ('t' or a space also separate date
 * and time) with an optional fraction (".123", up to 9 digits, ignored) and a zone that must be
 * there: "Z" or "+HH:MM"/"-HH:MM"; converted to Unix seconds (>= 0, years up to 9999).
 * 0 and *out, or RP_EPARSE. s[0..n) need not be NUL-terminated. The one parser the server and
 * the CLI share.
 */
int rp_iso_time_parse(const char *s, size_t n, int64_t *out);
/*
 * Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1-12, d 1-31), and back: exact
 * for any year, negative ones too (400-year eras of 146097 days).
 */
int64_t rp_days_from_civil(int64_t y, int m, int d);
void rp_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* Formats Unix seconds t as "YYYY-MM-DDTHH:MM:SSZ" into out[21]. */
void rp_iso_time(int64_t t, char out[21]);
/*
 * Parses an ISO 8601 duration of weeks, days, hours, minutes and seconds ("PT8H", "P1DT30M",
 * "P1W"; designators in that order, each at most once, either case; no years or months: their
 * length varies): 0 and *out (seconds, 1..10^9), or RP_EPARSE.
 */
int rp_iso_duration_parse(const char *s, size_t n, int64_t *out);

#endif
