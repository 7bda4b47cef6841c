/*
 * query.c - query-string parser (see query.h for the contract).
 *
 * Workload: a handful of short parameters per request (api-version, maxresults, $skiptoken...).
 * Two passes over the input: the first counts non-empty pairs so the limit is enforced before
 * anything is allocated and the parameter array is allocated once; the second decodes each pair
 * into a single arena allocation holding "name\0value\0" (decoding never lengthens a string).
 */
#include "http/query.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"

#include <string.h>

/* Decodes s[0..n) into dst (room for n bytes), writing the decoded length to *dlen.
   0 or RP_EPARSE. */
static int decode(const char *s, size_t n, int form, char *dst, size_t *dlen)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];

        if (c == '%') {
            int hi, lo;

            if (n - i < 3 || (hi = rp_hex_value(p[i + 1])) < 0 || (lo = rp_hex_value(p[i + 2])) < 0)
                return RP_EPARSE;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && form) {
            c = ' ';
        }
        if (c == 0) /* would silently truncate the NUL-terminated copy */
            return RP_EPARSE;
        dst[o++] = (char)c;
    }
    *dlen = o;
    return 0;
}

int rp_query_parse(rp_arena *a, const char *q, size_t n, int form, rp_query_param **out,
                   size_t *count)
{
    rp_query_param *params = NULL;
    size_t pairs = 0, k = 0, start = 0;
    int rc = 0;

    *out = NULL;
    *count = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || q[i] == '&') {
            if (i > start && ++pairs > RP_QUERY_MAX_PARAMS)
                return RP_ETOOBIG;
            start = i + 1;
        }
    }
    if (pairs == 0)
        return 0;
    params = rp_arena_alloc(a, pairs * sizeof(*params)); /* pairs <= 64: cannot overflow */
    if (params == NULL)
        return RP_ENOMEM;

    start = 0;
    for (size_t i = 0; i <= n; i++) {
        const char *pair, *eq;
        size_t len, nlen, room;
        char *buf;

        if (i < n && q[i] != '&')
            continue;
        pair = q + start;
        len = i - start;
        start = i + 1;
        if (len == 0)
            continue;
        if (rp_size_add(len, 2, &room) != 0)
            return RP_ETOOBIG;
        buf = rp_arena_alloc(a, room);
        if (buf == NULL)
            return RP_ENOMEM;
        eq = memchr(pair, '=', len);
        nlen = eq != NULL ? (size_t)(eq - pair) : len;
        rc = decode(pair, nlen, form, buf, &params[k].name_len);
        if (rc != 0)
            return rc;
        buf[params[k].name_len] = '\0';
        params[k].name = buf;
        buf += params[k].name_len + 1;
        params[k].value_len = 0;
        if (eq != NULL) {
            rc = decode(eq + 1, len - nlen - 1, form, buf, &params[k].value_len);
            if (rc != 0)
                return rc;
        }
        buf[params[k].value_len] = '\0';
        params[k].value = buf;
        k++;
    }
    *out = params;
    *count = k;
    return 0;
}

const rp_query_param *rp_query_find(const rp_query_param *p, size_t count, const char *name)
{
    size_t len;

    if (name == NULL)
        return NULL;
    len = strlen(name);
    for (size_t i = 0; i < count; i++)
        if (p[i].name_len == len && memcmp(p[i].name, name, len) == 0)
            return &p[i];
    return NULL;
}

int rp_query_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            if (o + 1 >= cap)
                return RP_ETOOBIG;
            out[o++] = (char)ch;
        } else {
            if (o + 3 >= cap)
                return RP_ETOOBIG;
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    if (o >= cap)
        return RP_ETOOBIG;
    out[o] = '\0';
    return 0;
}
