/*
 * arena.c - bump allocator over a chain of blocks.
 *
 * Workload: a request allocates a few dozen small objects (header views, decoded path, query
 * parameters) and dies; keeping the first block across rp_arena_reset means a keep-alive
 * connection costs one malloc for its lifetime in the common case.
 */
#include "base/arena.h"
#include "base/alloc.h"

#include <openssl/crypto.h>
#include <stdint.h>
#include <string.h>

#define RP_ARENA_ALIGN 16

typedef struct block {
    struct block *next;
    size_t size; /* usable bytes after the header */
    size_t used;
} block;

typedef struct cleanup {
    struct cleanup *next;
    rp_cleanup_fn fn;
    void *arg;
} cleanup;

typedef struct secret {
    void *p;
    size_t n;
} secret;

struct rp_arena {
    block *head; /* current block; the first block is last in the chain */
    block *first;
    cleanup *cleanups;
    size_t block_size;
    size_t used;
};

#define BLOCK_HDR ((sizeof(block) + RP_ARENA_ALIGN - 1) & ~(size_t)(RP_ARENA_ALIGN - 1))

static block *block_new(size_t usable)
{
    size_t total;
    block *b;

    if (rp_size_add(usable, BLOCK_HDR, &total) != 0)
        return NULL;
    b = rp_malloc(total);
    if (b == NULL)
        return NULL;
    b->next = NULL;
    b->size = usable;
    b->used = 0;
    return b;
}

rp_arena *rp_arena_create(size_t block_size)
{
    rp_arena *a = rp_calloc(1, sizeof(*a));

    if (a == NULL)
        return NULL;
    if (block_size < 1024)
        block_size = 1024;
    a->block_size = (block_size + 1023) & ~(size_t)1023;
    a->first = block_new(a->block_size);
    if (a->first == NULL) {
        rp_free(a);
        return NULL;
    }
    a->head = a->first;
    return a;
}

static void run_cleanups(rp_arena *a)
{
    /* Cleanups live inside the arena, so read next before running fn. */
    cleanup *c = a->cleanups;

    while (c != NULL) {
        cleanup *next = c->next;
        c->fn(c->arg);
        c = next;
    }
    a->cleanups = NULL;
}

void rp_arena_reset(rp_arena *a)
{
    block *b;

    if (a == NULL)
        return;
    run_cleanups(a);
    b = a->head;
    while (b != a->first) {
        block *next = b->next;
        rp_free(b);
        b = next;
    }
    a->head = a->first;
    a->first->used = 0;
    a->used = 0;
}

void rp_arena_destroy(rp_arena *a)
{
    if (a == NULL)
        return;
    rp_arena_reset(a);
    rp_free(a->first);
    rp_free(a);
}

void *rp_arena_alloc(rp_arena *a, size_t n)
{
    size_t need;
    block *b;
    char *p;

    if (rp_size_add(n, RP_ARENA_ALIGN - 1, &need) != 0)
        return NULL;
    need &= ~(size_t)(RP_ARENA_ALIGN - 1);
    if (need == 0)
        need = RP_ARENA_ALIGN;
    b = a->head;
    if (b->size - b->used < need) {
        b = block_new(need > a->block_size ? need : a->block_size);
        if (b == NULL)
            return NULL;
        b->next = a->head;
        a->head = b;
    }
    p = (char *)b + BLOCK_HDR + b->used;
    b->used += need;
    a->used += need;
    return p;
}

void *rp_arena_calloc(rp_arena *a, size_t n)
{
    void *p = rp_arena_alloc(a, n);

    if (p != NULL)
        memset(p, 0, n);
    return p;
}

static void wipe(void *arg)
{
    secret *s = arg;

    OPENSSL_cleanse(s->p, s->n);
}

void *rp_arena_alloc_secret(rp_arena *a, size_t n)
{
    secret *s = rp_arena_alloc(a, sizeof(*s));
    void *p;

    if (s == NULL)
        return NULL;
    p = rp_arena_calloc(a, n);
    if (p == NULL)
        return NULL;
    s->p = p;
    s->n = n;
    if (rp_arena_add_cleanup(a, wipe, s) != 0)
        return NULL;
    return p;
}

char *rp_arena_strndup(rp_arena *a, const char *s, size_t len)
{
    size_t n;
    char *d;

    if (rp_size_add(len, 1, &n) != 0)
        return NULL;
    d = rp_arena_alloc(a, n);
    if (d == NULL)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

int rp_arena_add_cleanup(rp_arena *a, rp_cleanup_fn fn, void *arg)
{
    cleanup *c = rp_arena_alloc(a, sizeof(*c));

    if (c == NULL)
        return -1;
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
    return 0;
}

size_t rp_arena_used(const rp_arena *a)
{
    return a->used;
}
