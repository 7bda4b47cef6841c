/* rand.h - cryptographically secure random bytes (OpenSSL's DRBG). The only randomness source. */
#ifndef RP_BASE_RAND_H
#define RP_BASE_RAND_H

#include <stddef.h>

/* Fills buf with n random bytes. 0 or RP_ECRYPTO. */
int rp_random_bytes(void *buf, size_t n);
/* Writes a random version-4 UUID (36 chars + NUL) into out[37]. 0 or RP_ECRYPTO. */
int rp_random_uuid(char out[37]);

#endif
