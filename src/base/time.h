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

#endif
