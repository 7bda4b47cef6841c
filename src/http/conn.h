/*
 * conn.h - HTTP/1.1 connections over TLS or plain TCP, driven by one libuv loop.
 *
 * rp_http_ctx is the per-loop state that every connection on that loop shares: the read
 * buffer, a pool of codecs, the cached Date header, the limits and the list of connections
 * (for draining). A connection belongs to exactly one loop for its whole life.
 *
 * Two kinds of connection exist: RP_CONN_HTTPS (TLS, routed to handlers) and RP_CONN_REDIRECT
 * (plain HTTP that only answers 301 to the same host and path over HTTPS).
 */
#ifndef RP_HTTP_CONN_H
#define RP_HTTP_CONN_H

#include "http/codec.h"
#include "http/router.h"
#include "net/tls.h"

#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

typedef struct rp_http_limits {
    unsigned header_timeout_ms; /* handshake + request head, from its first byte */
    unsigned body_timeout_ms;   /* longest silence while a body is being received */
    unsigned idle_timeout_ms;   /* keep-alive between requests */
    unsigned write_timeout_ms;  /* longest stall while the client does not read */
} rp_http_limits;

typedef struct rp_http_stats {
    uint64_t accepted;
    uint64_t requests;
    uint64_t rejected; /* codec errors */
    uint64_t timeouts;
} rp_http_stats;

typedef struct rp_http_ctx rp_http_ctx;
typedef void (*rp_http_conn_closed_fn)(rp_http_ctx *ctx, void *arg);

/*
 * RP_CONN_LOCAL: plain HTTP on a loopback-only listener, routed through the local router
 * (rp_http_ctx_set_local_router): the managed identity endpoint workloads call.
 */
typedef enum { RP_CONN_HTTPS = 1, RP_CONN_REDIRECT = 2, RP_CONN_LOCAL = 3 } rp_conn_kind;

/* Creates the per-loop context. router and tls are shared and must outlive it. */
int rp_http_ctx_create(uv_loop_t *loop, const rp_router *router, rp_tls *tls,
                       const rp_http_limits *limits, int https_port, rp_http_ctx **out);
/* Router for RP_CONN_LOCAL connections (shared, must outlive ctx). Without one they get 404. */
void rp_http_ctx_set_local_router(rp_http_ctx *ctx, const rp_router *router);
/* Frees the context; every connection must be closed first (rp_http_ctx_conns() == 0). */
void rp_http_ctx_free(rp_http_ctx *ctx);
/* Called (on the loop) each time a connection has been closed and freed. */
void rp_http_ctx_on_closed(rp_http_ctx *ctx, rp_http_conn_closed_fn fn, void *arg);
size_t rp_http_ctx_conns(const rp_http_ctx *ctx);
const rp_http_stats *rp_http_ctx_stats(const rp_http_ctx *ctx);

/* Takes an accepted, non-blocking socket. On failure the socket is closed. */
int rp_http_conn_start(rp_http_ctx *ctx, int fd, const struct sockaddr_storage *peer,
                       rp_conn_kind kind);
/*
 * Graceful drain: idle connections close now, busy ones close after their current response.
 * Connections that are still open when the caller's deadline passes are closed by
 * rp_http_ctx_close_all.
 */
void rp_http_ctx_drain(rp_http_ctx *ctx);
void rp_http_ctx_close_all(rp_http_ctx *ctx);

#endif
