/* isotime_fuzz.c - ISO 8601 times and durations from management API bodies: never crash, and
 * every accepted time formats back to a string that parses to the same value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t t, t2, d;
    char buf[21];

    if (rp_iso_time_parse((const char *)data, size, &t) == 0) {
        if (t < 0 || t > 253402300799LL)
            abort();
        rp_iso_time(t, buf);
        if (rp_iso_time_parse(buf, strlen(buf), &t2) != 0 || t2 != t)
            abort();
    }
    if (rp_iso_duration_parse((const char *)data, size, &d) == 0 && (d <= 0 || d > 1000000000))
        abort();
    return 0;
}
