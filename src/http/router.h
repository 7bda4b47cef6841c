/*
 * router.h - which handler answers a request: by host, then by path prefix, then by method.
 *
 * Host patterns are relative to the platform domain D (ARCHITECTURE "Names and origins"):
 *   "@"        the bare domain D and the loopback names (localhost, 127.0.0.1, ::1)
 *   "login"    one exact sub-name: login.D
 *   "*.vault"  any single label under a service: {name}.vault.D (the label is captured)
 *   "*"        any single label under D: {app}.D (the label is captured)
 * Exact names win over wildcards. Within a host, the longest matching path prefix wins; a
 * prefix ending in '/' matches everything below it, any other prefix matches itself and
 * everything below "prefix/". Routing sees the normalised path only (http/path.h), so there
 * is exactly one spelling of every path.
 *
 * A router is built at start-up and read-only afterwards: loop threads share it without locks.
 */
#ifndef RP_HTTP_ROUTER_H
#define RP_HTTP_ROUTER_H

#include "http/request.h"

#define RP_M(m)   (1u << (m))
#define RP_M_READ (RP_M(RP_METHOD_GET) | RP_M(RP_METHOD_HEAD))
#define RP_M_ANY  0xffu

typedef struct rp_route_opts {
    unsigned methods; /* RP_M(...) mask; 0 means GET and HEAD */
    size_t max_body;  /* request body limit in bytes; 0 means no body allowed */
    void *data;       /* handed to the handler as req->route_data */
} rp_route_opts;

struct rp_route {
    char *host;
    char *prefix;
    size_t prefix_len;
    rp_handler_fn fn;
    rp_route_opts opts;
};

typedef struct rp_router rp_router;

typedef enum {
    RP_ROUTE_FOUND = 0,
    RP_ROUTE_NO_HOST,  /* no route for this host -> 404 */
    RP_ROUTE_NO_PATH,  /* host known, path not -> 404 */
    RP_ROUTE_NO_METHOD /* path known, method not allowed -> 405 with Allow */
} rp_route_result;

int rp_router_create(const char *domain, rp_router **out);
void rp_router_free(rp_router *r);
/* Registers a route. 0, RP_EINVAL (bad pattern) or RP_ENOMEM. */
int rp_router_add(rp_router *r, const char *host, const char *prefix, rp_handler_fn fn,
                  const rp_route_opts *opts);
/*
 * Finds the route. On RP_ROUTE_FOUND *route is set and *label holds the wildcard label (empty
 * if none). On RP_ROUTE_NO_METHOD *allowed holds the methods of the matched path.
 */
rp_route_result rp_router_match(const rp_router *r, rp_str host, const char *path, size_t n,
                                rp_method m, const rp_route **route, rp_str *label,
                                unsigned *allowed);
/* Writes an Allow header value ("GET, HEAD") for a method mask into out[cap]. */
void rp_router_allow(unsigned methods, char *out, size_t cap);
const char *rp_router_domain(const rp_router *r);

#endif
