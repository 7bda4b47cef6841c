/* range_fuzz.c - the Range header parser: whatever it accepts lies inside the file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/static.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const off_t sizes[] = {0, 1, 2, 1023, 1024, 1 << 20, (off_t)1 << 40};
    char *copy = malloc(size ? size : 1);

    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        off_t start = -1, len = -1;
        int r = rp_static_parse_range((rp_str){copy, size}, sizes[i], &start, &len);
        if (r < -1 || r > 1)
            abort();
        if (r == 1 && (start < 0 || len <= 0 || start >= sizes[i] || len > sizes[i] - start))
            abort();
    }
    free(copy);
    return 0;
}
