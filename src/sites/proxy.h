/*
 * proxy.h - the reverse proxy from the front door to an app process (docs/sites.md "App
 * processes").
 *
 * HTTP/1.1 with keep-alive to the app, on 127.0.0.1:PORT or a unix stream socket. Each loop
 * thread keeps its own pool of idle upstream connections per target (at most
 * RP_PROXY_IDLE_PER_TARGET per target and RP_PROXY_IDLE_MAX in all, closed after
 * RP_PROXY_IDLE_MS unused, newest reused first). A connection goes back to the pool only when
 * the request went out whole and the answer ended by its own framing (Content-Length, chunked
 * end, or no body: HEAD, 1xx, 204, 304) without "Connection: close" and with nothing after it;
 * anything else closes it. Idle connections are still read: an app that closes one (idle
 * timeout, restart) or sends anything on it gets it dropped. A request that finds its reused
 * connection dead before any byte of an answer came back is sent once more on a new
 * connection, as long as none of its body went out on the dead one (else 502); a request with
 * a body only takes a connection used within the last 2 s, which the app's own keep-alive
 * timeout is not about to close.
 *
 * Bodies stream both ways with flow control: a slow app pauses reading the client's body, a
 * slow client pauses reading the app's answer; at most a few hundred KiB are buffered per
 * request in either direction. An answer complete within one read from the app (up to 16 KiB
 * of body) goes to the client whole, in one write.
 *
 * Hop-by-hop headers are removed both ways; the app gets Host as the client sent it and
 * X-Forwarded-For (the chain with the client appended), X-Forwarded-Proto: https and
 * X-Forwarded-Host; client-sent X-MS-CLIENT-PRINCIPAL*, X-MS-TOKEN-*, X-ARR-ClientCert and
 * X-ARR-SSL never reach it, nor any client header named like one of the target's extra headers,
 * and X-ARR-ClientCert carries the verified client certificate (base64 DER) when there is one.
 * The app's own HSTS, X-Content-Type-Options and Date are replaced by the front door's.
 *
 * Errors: the app not answering on its port or socket within RP_PROXY_CONNECT_MS (it may be
 * starting) is 502 BadGateway; no response head within RP_PROXY_RESPONSE_MS is 504
 * GatewayTimeout (Azure's front end waits 230 s); an app that breaks off mid-answer gets the
 * client a 502 if nothing of the answer went out yet, else a closed connection, so the answer
 * cannot pass for complete.
 */
#ifndef RP_SITES_PROXY_H
#define RP_SITES_PROXY_H

#include "http/request.h"

#include <stddef.h>
#include <stdint.h>

#define RP_PROXY_CONNECT_MS      10000
#define RP_PROXY_RESPONSE_MS     230000
#define RP_PROXY_HEAD_MAX        (64u << 10) /* the app's response head */
#define RP_PROXY_EXTRA_MAX       (64u << 10) /* the target's extra headers, all together */
#define RP_PROXY_IDLE_PER_TARGET 32          /* idle upstream connections per target and loop */
#define RP_PROXY_IDLE_MAX        256         /* ... and per loop in all */
#define RP_PROXY_IDLE_MS         30000       /* an idle upstream connection is closed after */

typedef struct rp_proxy_hdr {
    const char *name;
    const char *value;
} rp_proxy_hdr;

/* Where a request goes and what the front door adds to it. All strings are borrowed for the
 * duration of rp_proxy_forward only. */
typedef struct rp_proxy_target {
    int port;                  /* 127.0.0.1:port, when unix_path is NULL */
    const char *unix_path;     /* a unix stream socket (apps in their own network namespace) */
    const char *client_cert;   /* the X-ARR-ClientCert value, or NULL */
    const rp_proxy_hdr *extra; /* added after the client's are stripped (Easy Auth's
                                  X-MS-CLIENT-PRINCIPAL*), may be NULL */
    size_t nextra;
    uint64_t response_ms;    /* no response head (or a quiet answer) this long: 504; 0 =
                             RP_PROXY_RESPONSE_MS (a function's functionTimeout sets it) */
    const char *target;      /* the request-target to send (path and query), or NULL for the
                                 client's own (the functions host sends the path it matched) */
    const char *const *drop; /* more client headers never to pass on (names, any case) */
    size_t ndrop;
} rp_proxy_target;

/* Forwards req to t and answers it from there (always answers: 502/504 on failure, 500 when
 * an extra header has a bad name or value, or names a header the proxy sets itself). Call from
 * the request's handler, before its body is read. */
void rp_proxy_forward(rp_req *req, const rp_proxy_target *t);

/* Closes this loop thread's idle upstream connections and the pool's timer (their memory goes
 * with the close callbacks, on the loop's next run). Call once from the loop thread when it
 * stops serving; connections still in use are closed as their requests end. */
void rp_proxy_loop_stop(void);

#endif
