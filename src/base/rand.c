/* rand.c - random bytes and UUIDs from OpenSSL's DRBG. */
#include "base/rand.h"
#include "base/err.h"

#include <openssl/rand.h>
#include <stdio.h>

int rp_random_bytes(void *buf, size_t n)
{
    if (n > (size_t)0x7fffffff || RAND_bytes(buf, (int)n) != 1)
        return RP_ECRYPTO;
    return 0;
}

int rp_random_uuid(char out[37])
{
    unsigned char b[16];

    if (rp_random_bytes(b, sizeof(b)) != 0)
        return RP_ECRYPTO;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}
