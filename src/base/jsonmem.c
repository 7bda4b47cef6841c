/*
 * jsonmem.c - a wiping allocator for jansson (jsonmem.h).
 *
 * Blocks are plain malloc blocks (code that frees json_dumps output with free() stays correct);
 * the wipe covers malloc_usable_size bytes, at least what was asked for.
 */
#include "base/jsonmem.h"

#include <jansson.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <stdlib.h>

static void *jm_malloc(size_t n)
{
    return malloc(n);
}

static void jm_free(void *p)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, malloc_usable_size(p));
    free(p);
}

void rp_jsonmem_install(void)
{
    json_set_alloc_funcs(jm_malloc, jm_free);
}
