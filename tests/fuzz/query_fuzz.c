/*
 * query_fuzz.c - libFuzzer driver for src/http/query.c (rp_query_parse, rp_query_find).
 *
 * The input is a query string, parsed once as a query and once as a form body. Besides memory
 * safety and leaks, the driver checks with abort():
 *   - failure leaves *out NULL and *count 0 and is one of the documented codes;
 *   - success gives at most RP_QUERY_MAX_PARAMS pairs, never more than there are '&'-separated
 *     pieces, NUL-terminated strings whose lengths match and are no longer than the input;
 *   - rp_query_find returns the first pair with a given name;
 *   - percent-encoding every byte of every pair and parsing that (non-form) gives the same pairs.
 * Corpus: tests/fuzz/corpus/query/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/err.h"
#include "http/query.h"

#define MAX_IN 8192

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static size_t encode(const char *s, size_t n, char *dst)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        dst[o++] = '%';
        dst[o++] = hex[c >> 4];
        dst[o++] = hex[c & 15];
    }
    return o;
}

/* Parses q[0..n) in one mode and checks the invariants listed at the top. */
static void check(const char *q, size_t n, int form)
{
    static char enc[3 * MAX_IN + 2 * RP_QUERY_MAX_PARAMS];
    rp_arena *a;
    rp_query_param *p, *p2;
    size_t count, count2, pieces = 1, elen = 0;
    int rc;

    a = rp_arena_create(4096);
    if (a == NULL)
        abort();
    rc = rp_query_parse(a, q, n, form, &p, &count);
    if (rc != 0) {
        if ((rc != RP_EPARSE && rc != RP_ETOOBIG) || p != NULL || count != 0)
            abort();
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        pieces += q[i] == '&';
    if (count > RP_QUERY_MAX_PARAMS || count > pieces || (count == 0) != (p == NULL))
        abort();
    for (size_t i = 0; i < count; i++) {
        const rp_query_param *f;

        if (p[i].name == NULL || p[i].value == NULL || strlen(p[i].name) != p[i].name_len ||
            strlen(p[i].value) != p[i].value_len || p[i].name_len + p[i].value_len > n)
            abort();
        if (!form && memchr(p[i].name, ' ', p[i].name_len) != NULL &&
            memmem(q, n, "%20", 3) == NULL && memchr(q, ' ', n) == NULL)
            abort(); /* without form mode a space only comes from ' ' or %20 */
        f = rp_query_find(p, count, p[i].name);
        if (f == NULL || f > &p[i] || f->name_len != p[i].name_len ||
            memcmp(f->name, p[i].name, p[i].name_len) != 0)
            abort();
        for (const rp_query_param *g = p; g < f; g++)
            if (g->name_len == f->name_len && memcmp(g->name, f->name, f->name_len) == 0)
                abort();
        if (i > 0)
            enc[elen++] = '&';
        elen += encode(p[i].name, p[i].name_len, enc + elen);
        enc[elen++] = '=';
        elen += encode(p[i].value, p[i].value_len, enc + elen);
    }
    rc = rp_query_parse(a, enc, elen, 0, &p2, &count2);
    if (rc != 0 || count2 != count)
        abort();
    for (size_t i = 0; i < count; i++)
        if (p2[i].name_len != p[i].name_len || p2[i].value_len != p[i].value_len ||
            memcmp(p2[i].name, p[i].name, p[i].name_len) != 0 ||
            memcmp(p2[i].value, p[i].value, p[i].value_len) != 0)
            abort();
out:
    rp_arena_destroy(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n > MAX_IN)
        return 0;
    check((const char *)d, n, 0);
    check((const char *)d, n, 1);
    return 0;
}
