/* sni_fuzz.c - the ClientHello server_name parser must never read out of bounds, and what it
 * accepts must be a printable, lowercase, NUL-terminated name that fits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "net/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[256];
    unsigned char *copy = malloc(size ? size : 1);
    int rc;

    if (copy == NULL)
        return 0;
    memcpy(copy, data, size); /* exact-size copy so ASan sees any over-read */
    rc = rp_tls_parse_sni(copy, size, out, sizeof(out));
    if (rc == 0) {
        size_t n = strlen(out);
        if (n == 0 || n >= sizeof(out))
            abort();
        for (size_t i = 0; i < n; i++)
            if (out[i] <= 0x20 || out[i] >= 0x7f || (out[i] >= 'A' && out[i] <= 'Z'))
                abort();
    } else if (rc != RP_EPARSE && rc != RP_ENOENT) {
        abort();
    }
    free(copy);
    return 0;
}
