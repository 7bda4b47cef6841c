/* buf.c - bounded growable buffer. */
#include "base/buf.h"
#include "base/alloc.h"
#include "base/err.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

void rp_buf_init(rp_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

int rp_buf_reserve(rp_buf *b, size_t n)
{
    size_t need, cap;
    char *p;

    if (rp_size_add(b->len, n, &need) != 0 || need > b->max)
        return RP_ETOOBIG;
    if (need + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need + 1)
        cap = cap > SIZE_MAX / 2 ? need + 1 : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    p = rp_realloc(b->data, cap);
    if (p == NULL)
        return RP_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int rp_buf_append(rp_buf *b, const void *p, size_t n)
{
    int rc = rp_buf_reserve(b, n);

    if (rc != 0)
        return rc;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int rp_buf_append_str(rp_buf *b, const char *s)
{
    return rp_buf_append(b, s, strlen(s));
}

int rp_buf_vappendf(rp_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n, rc;

    /* Format straight into the spare capacity; measure and grow only when it does not fit. */
    if (b->cap > b->len + 1) {
        size_t room = b->cap - b->len;
        va_copy(ap2, ap);
        n = vsnprintf(b->data + b->len, room, fmt, ap2);
        va_end(ap2);
        if (n < 0)
            return RP_EINVAL;
        if ((size_t)n < room) {
            if (b->len + (size_t)n > b->max) {
                b->data[b->len] = '\0';
                return RP_ETOOBIG;
            }
            b->len += (size_t)n;
            return 0;
        }
        b->data[b->len] = '\0';
    } else {
        va_copy(ap2, ap);
        n = vsnprintf(NULL, 0, fmt, ap2);
        va_end(ap2);
        if (n < 0)
            return RP_EINVAL;
    }
    rc = rp_buf_reserve(b, (size_t)n);
    if (rc != 0)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int rp_buf_appendf(rp_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = rp_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void rp_buf_consume(rp_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data != NULL)
        b->data[b->len] = '\0';
}

void rp_buf_reset(rp_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void rp_buf_free(rp_buf *b)
{
    if (b == NULL)
        return;
    rp_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void rp_buf_free_secret(rp_buf *b)
{
    if (b == NULL)
        return;
    if (b->data != NULL)
        OPENSSL_cleanse(b->data, b->cap);
    rp_buf_free(b);
}
