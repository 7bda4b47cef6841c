/*
 * alloc.h - the one allocation wrapper, and overflow-checked size arithmetic.
 *
 * Every heap allocation in rampart goes through rp_malloc/rp_calloc/rp_realloc so that a test
 * build can make the Nth allocation fail (rp_alloc_fail_after) and prove that the caller
 * propagates RP_ENOMEM instead of crashing. Paths that abort on OOM instead are listed in
 * docs/architecture.md ("Allocation failure").
 */
#ifndef RP_BASE_ALLOC_H
#define RP_BASE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *rp_malloc(size_t n);
void *rp_calloc(size_t count, size_t size);
void *rp_realloc(void *p, size_t n);
void rp_free(void *p); /* accepts NULL */

/* Copies len bytes of s into a new NUL-terminated heap string; NULL on allocation failure. */
char *rp_strndup(const char *s, size_t len);
char *rp_strdup(const char *s);

/*
 * Test hook: after n more successful allocations, every allocation fails until reset with
 * rp_alloc_fail_after(-1). Not thread-safe; only unit tests call it.
 */
void rp_alloc_fail_after(long n);

/* Overflow-checked arithmetic: 0 and *out set, or RP_ETOOBIG. */
static inline int rp_size_add(size_t a, size_t b, size_t *out)
{
    if (a > SIZE_MAX - b)
        return -6;
    *out = a + b;
    return 0;
}

static inline int rp_size_mul(size_t a, size_t b, size_t *out)
{
    if (b != 0 && a > SIZE_MAX / b)
        return -6;
    *out = a * b;
    return 0;
}

#endif
