/* alloc.c - allocation wrapper with failure injection for tests. */
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

static long fail_after = -1;

static int should_fail(void)
{
    if (fail_after < 0)
        return 0;
    if (fail_after == 0)
        return 1;
    fail_after--;
    return 0;
}

void rp_alloc_fail_after(long n)
{
    fail_after = n;
}

void *rp_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *rp_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *rp_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void rp_free(void *p)
{
    free(p);
}

char *rp_strndup(const char *s, size_t len)
{
    size_t n;
    char *d;

    if (rp_size_add(len, 1, &n) != 0)
        return NULL;
    d = rp_malloc(n);
    if (d == NULL)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *rp_strdup(const char *s)
{
    return rp_strndup(s, strlen(s));
}
