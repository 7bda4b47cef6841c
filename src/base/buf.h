/*
 * buf.h - growable byte buffer with a hard maximum set at init (the curl model).
 *
 * The struct is public so it can be embedded; read data/len, never write the fields directly.
 * A buffer never grows past max: appends that would return RP_ETOOBIG and leave it unchanged.
 * The data is always NUL-terminated (not counted in len) so it can be logged or parsed as text.
 */
#ifndef RP_BASE_BUF_H
#define RP_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct rp_buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;
    size_t max;
} rp_buf;

void rp_buf_init(rp_buf *b, size_t max);
/* Makes room for n more bytes. 0, RP_ENOMEM or RP_ETOOBIG. */
int rp_buf_reserve(rp_buf *b, size_t n);
int rp_buf_append(rp_buf *b, const void *p, size_t n);
int rp_buf_append_str(rp_buf *b, const char *s);
/* Appends one byte: rp_buf_append's fast path for byte-at-a-time writers (the codec's head
 * scanner), without a call when there is room. Same results as rp_buf_append(b, &ch, 1). */
static inline int rp_buf_push(rp_buf *b, char ch)
{
    if (b->len + 2 <= b->cap && b->len < b->max) {
        b->data[b->len++] = ch;
        b->data[b->len] = '\0';
        return 0;
    }
    return rp_buf_append(b, &ch, 1);
}
int rp_buf_appendf(rp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int rp_buf_vappendf(rp_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Drops the first n bytes (n <= len). */
void rp_buf_consume(rp_buf *b, size_t n);
/* Empties the buffer but keeps its memory. */
void rp_buf_reset(rp_buf *b);
/* Frees the memory; the buffer can be reused after rp_buf_init. Accepts NULL. */
void rp_buf_free(rp_buf *b);
/* Wipes the whole capacity, then frees: for secrets. Accepts NULL. */
void rp_buf_free_secret(rp_buf *b);

#endif
