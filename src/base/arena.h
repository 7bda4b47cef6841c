/*
 * arena.h - region allocator: one per request, per connection or per invocation.
 *
 * Allocation is a pointer bump inside a block; nothing is freed one object at a time. The whole
 * arena dies with its owner (rp_arena_destroy) or is emptied for reuse (rp_arena_reset, which
 * keeps the first block so a keep-alive connection does not hit malloc per request).
 * Cleanup callbacks run, newest first, at reset and destroy: use them for file descriptors and
 * to wipe key material (rp_arena_alloc_secret does that for you).
 * An arena is owned by one thread at a time.
 */
#ifndef RP_BASE_ARENA_H
#define RP_BASE_ARENA_H

#include <stddef.h>

typedef struct rp_arena rp_arena;
typedef void (*rp_cleanup_fn)(void *arg);

/* Creates an arena whose blocks are block_size bytes (rounded up to 1 KiB). NULL on OOM. */
rp_arena *rp_arena_create(size_t block_size);
/* Runs cleanups and frees every block. Accepts NULL. */
void rp_arena_destroy(rp_arena *a);
/* Runs cleanups and forgets all allocations, keeping the first block for reuse. */
void rp_arena_reset(rp_arena *a);

/* Returns n bytes aligned to 16, or NULL on OOM / overflow. Memory is not zeroed. */
void *rp_arena_alloc(rp_arena *a, size_t n);
/* Like rp_arena_alloc but zeroed. */
void *rp_arena_calloc(rp_arena *a, size_t n);
/* Allocates n bytes that are wiped with OPENSSL_cleanse when the arena resets or dies. */
void *rp_arena_alloc_secret(rp_arena *a, size_t n);
/* NUL-terminated copy of s[0..len). NULL on OOM. */
char *rp_arena_strndup(rp_arena *a, const char *s, size_t len);
/* Registers fn(arg) to run at reset/destroy. Returns 0 or RP_ENOMEM (then fn is not run). */
int rp_arena_add_cleanup(rp_arena *a, rp_cleanup_fn fn, void *arg);
/* Bytes handed out since creation or the last reset (for limits and tests). */
size_t rp_arena_used(const rp_arena *a);

#endif
