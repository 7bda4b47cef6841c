/*
 * router.c - host + path-prefix + method routing.
 *
 * Workload: a handful of routes per host pattern, matched once per request; a linear scan
 * over an array beats any tree at this size and keeps the code obvious.
 */
#include "http/router.h"
#include "base/alloc.h"
#include "base/err.h"

#include <stdio.h>
#include <string.h>

#define RP_ROUTER_MAX 256

struct rp_router {
    char *domain;
    size_t domain_len;
    rp_route routes[RP_ROUTER_MAX];
    size_t n;
};

int rp_router_create(const char *domain, rp_router **out)
{
    rp_router *r = rp_calloc(1, sizeof(*r));

    if (r == NULL)
        return RP_ENOMEM;
    r->domain = rp_strdup(domain);
    if (r->domain == NULL) {
        rp_free(r);
        return RP_ENOMEM;
    }
    r->domain_len = strlen(domain);
    *out = r;
    return 0;
}

void rp_router_free(rp_router *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        rp_free(r->routes[i].host);
        rp_free(r->routes[i].prefix);
    }
    rp_free(r->domain);
    rp_free(r);
}

const char *rp_router_domain(const rp_router *r)
{
    return r->domain;
}

static int valid_host_pattern(const char *h)
{
    if (strcmp(h, "@") == 0 || strcmp(h, "*") == 0)
        return 1;
    if (h[0] == '*' && h[1] == '.')
        h += 2;
    if (*h == '\0')
        return 0;
    for (; *h; h++)
        if (!((*h >= 'a' && *h <= 'z') || (*h >= '0' && *h <= '9') || *h == '-' || *h == '.'))
            return 0;
    return 1;
}

int rp_router_add(rp_router *r, const char *host, const char *prefix, rp_handler_fn fn,
                  const rp_route_opts *opts)
{
    rp_route *rt;

    if (r->n >= RP_ROUTER_MAX || fn == NULL || prefix[0] != '/' || !valid_host_pattern(host))
        return RP_EINVAL;
    rt = &r->routes[r->n];
    memset(rt, 0, sizeof(*rt));
    rt->host = rp_strdup(host);
    rt->prefix = rp_strdup(prefix);
    if (rt->host == NULL || rt->prefix == NULL) {
        rp_free(rt->host);
        rp_free(rt->prefix);
        return RP_ENOMEM;
    }
    rt->prefix_len = strlen(prefix);
    rt->fn = fn;
    if (opts != NULL)
        rt->opts = *opts;
    if (rt->opts.methods == 0)
        rt->opts.methods = RP_M_READ;
    r->n++;
    return 0;
}

static int is_loopback_name(rp_str host)
{
    return rp_str_eq(host, "localhost") || rp_str_eq(host, "127.0.0.1") || rp_str_eq(host, "[::1]");
}

/*
 * Classifies host against the domain: 0 = bare domain, 1 = sub-name (sub set to the part
 * before ".D"), -1 = not ours.
 */
static int classify(const rp_router *r, rp_str host, rp_str *sub)
{
    if (rp_str_eq(host, r->domain) || is_loopback_name(host))
        return 0;
    if (host.n > r->domain_len + 1 && host.p[host.n - r->domain_len - 1] == '.' &&
        memcmp(host.p + host.n - r->domain_len, r->domain, r->domain_len) == 0) {
        sub->p = host.p;
        sub->n = host.n - r->domain_len - 1;
        return 1;
    }
    return -1;
}

/* 2 = exact match, 1 = wildcard match (label set), 0 = no match. */
static int host_matches(const char *pat, int kind, rp_str sub, rp_str *label)
{
    if (kind == 0)
        return strcmp(pat, "@") == 0 ? 2 : 0;
    if (strcmp(pat, "@") == 0)
        return 0;
    if (pat[0] == '*') {
        const char *rest = pat[1] == '.' ? pat + 2 : NULL;
        const char *dot = memchr(sub.p, '.', sub.n);
        size_t first = dot ? (size_t)(dot - sub.p) : sub.n;
        if (first == 0)
            return 0;
        if (rest == NULL) {
            if (dot != NULL)
                return 0;
        } else if (dot == NULL || !rp_str_eq((rp_str){dot + 1, sub.n - first - 1}, rest)) {
            return 0;
        }
        label->p = sub.p;
        label->n = first;
        return 1;
    }
    return rp_str_eq(sub, pat) ? 2 : 0;
}

static int prefix_matches(const rp_route *rt, const char *path, size_t n)
{
    size_t pl = rt->prefix_len;

    if (n < pl || memcmp(path, rt->prefix, pl) != 0)
        return 0;
    if (rt->prefix[pl - 1] == '/' || n == pl)
        return 1;
    return path[pl] == '/';
}

rp_route_result rp_router_match(const rp_router *r, rp_str host, const char *path, size_t n,
                                rp_method m, const rp_route **route, rp_str *label,
                                unsigned *allowed)
{
    rp_str sub = {NULL, 0}, lab = {NULL, 0};
    int kind = classify(r, host, &sub);
    int best_host = 0;
    const rp_route *best = NULL;

    *route = NULL;
    *allowed = 0;
    label->p = "";
    label->n = 0;
    if (kind < 0)
        return RP_ROUTE_NO_HOST;
    /* First pick the most specific host pattern that has any route at all. */
    for (size_t i = 0; i < r->n; i++) {
        int hm = host_matches(r->routes[i].host, kind, sub, &lab);
        if (hm > best_host)
            best_host = hm;
    }
    if (best_host == 0)
        return RP_ROUTE_NO_HOST;
    for (size_t i = 0; i < r->n; i++) {
        const rp_route *rt = &r->routes[i];
        rp_str l = {NULL, 0};
        if (host_matches(rt->host, kind, sub, &l) != best_host || !prefix_matches(rt, path, n))
            continue;
        if (best == NULL || rt->prefix_len > best->prefix_len) {
            best = rt;
            if (l.p != NULL)
                lab = l;
        }
    }
    if (best == NULL)
        return RP_ROUTE_NO_PATH;
    if ((best->opts.methods & RP_M(m)) == 0) {
        *allowed = best->opts.methods;
        return RP_ROUTE_NO_METHOD;
    }
    *route = best;
    if (best_host == 1)
        *label = lab;
    return RP_ROUTE_FOUND;
}

void rp_router_allow(unsigned methods, char *out, size_t cap)
{
    size_t len = 0;

    if (cap == 0)
        return;
    out[0] = '\0';
    for (int m = RP_METHOD_GET; m <= RP_METHOD_OPTIONS; m++) {
        if (methods & RP_M(m)) {
            int w = snprintf(out + len, cap - len, "%s%s", len ? ", " : "",
                             rp_method_name((rp_method)m));
            if (w < 0 || (size_t)w >= cap - len)
                return;
            len += (size_t)w;
        }
    }
}
