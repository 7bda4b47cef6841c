/*
 * cookie.c - Cookie header lookup (see cookie.h for the contract).
 *
 * Workload: one or two lookups per request of an app with built-in authentication, over a
 * header of a few hundred bytes; a single pass, no allocation.
 */
#include "http/cookie.h"
#include "base/err.h"

#include <string.h>

static int ows(char c)
{
    return c == ' ' || c == '\t';
}

void rp_cookie_scan(rp_str v, const char *name, rp_str *val, size_t *count)
{
    size_t nlen = strlen(name), i = 0;

    while (i < v.n) {
        size_t start, end, eq;

        while (i < v.n && (ows(v.p[i]) || v.p[i] == ';'))
            i++;
        start = i;
        while (i < v.n && v.p[i] != ';')
            i++;
        end = i;
        while (end > start && ows(v.p[end - 1]))
            end--;
        for (eq = start; eq < end && v.p[eq] != '='; eq++)
            ;
        if (eq == end)
            continue; /* no '=': not a named cookie */
        {
            size_t ne = eq, vs = eq + 1;
            while (ne > start && ows(v.p[ne - 1]))
                ne--;
            while (vs < end && ows(v.p[vs]))
                vs++;
            if (ne - start != nlen || memcmp(v.p + start, name, nlen) != 0)
                continue;
            if (*count == 0) {
                val->p = v.p + vs;
                val->n = end - vs;
                if (val->n >= 2 && val->p[0] == '"' && val->p[val->n - 1] == '"') {
                    val->p++;
                    val->n -= 2;
                }
            }
            (*count)++;
        }
    }
}

int rp_cookie_get(const rp_http_head *h, const char *name, rp_str *val)
{
    size_t count = 0;

    val->p = NULL;
    val->n = 0;
    for (size_t i = 0; i < h->nheaders; i++)
        if (rp_str_eq_nocase(h->headers[i].name, "cookie"))
            rp_cookie_scan(h->headers[i].value, name, val, &count);
    if (count == 0)
        return RP_ENOENT;
    return count == 1 ? 0 : RP_EEXIST;
}
