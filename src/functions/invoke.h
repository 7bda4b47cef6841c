/*
 * invoke.h - the functions host's client for a custom handler's invocation requests: one HTTP/1.1
 * POST of a JSON payload to the worker (POST http://127.0.0.1:PORT/FUNCTION with the invocation
 * envelope, shared/specs/azure-platform-controls.md §1.11), on the caller's libuv loop, and the
 * whole answer collected (status, a few headers, a bounded body) for the host to parse.
 *
 * Connections are kept alive: each loop thread keeps its own pool of idle connections per port
 * (at most RP_INVOKE_IDLE_PER_PORT per port and RP_INVOKE_IDLE_MAX in all, closed after
 * RP_INVOKE_IDLE_MS unused, newest reused first), like sites/proxy's for forwarded requests. A
 * connection goes back to the pool only when the request went out whole and the answer ended by
 * its own framing (Content-Length, chunked end, or none: 204, 304) without "Connection: close"
 * (nor HTTP/1.0 without keep-alive) and with nothing after it; after anything else (an answer
 * framed by the close, a timeout, a cancel, an error) it is closed. Idle connections are still
 * read: a worker that closes one (its idle timeout, a restart) or sends anything on it gets it
 * dropped. An invocation sent on a reused connection that then fails before any byte of the
 * answer arrived (EOF, ECONNRESET, EPIPE: the worker closed it just as it was taken) is sent
 * once more on a new connection (the envelope is a whole in-memory body, so sending it again
 * is safe); never more than once, and a new connection's failure is never retried. Idle
 * connections and the pool's timer do not keep the loop alive (uv_unref), but they are open
 * handles until rp_invoke_loop_stop.
 *
 * The request carries Host: 127.0.0.1:PORT, Content-Type: application/json, Content-Length,
 * User-Agent: rampart-functions-host, and the caller's extra headers
 * (X-Azure-Functions-InvocationId ...); no Connection header (HTTP/1.1 keeps the connection).
 * The answer is read with llhttp (response mode) until its framing ends (Content-Length,
 * chunked, or the connection's close); anything after it is ignored (and the connection not
 * reused).
 *
 * Bounds and errors: a new connection must be accepted within connect_ms and the whole answer
 * arrive within timeout_ms of the call, a retry included (else RP_ETIMEDOUT); a response head
 * over RP_INVOKE_HEAD_MAX bytes or a body over max_body bytes is RP_ETOOBIG; a refused or reset
 * connection, or one closed before the answer's framing ended, is RP_EIO (after the one retry
 * above, where it applies); a malformed answer is RP_EPARSE; RP_ENOMEM when the answer could
 * not be stored (or memory for the retry's connection was lacking). Interim (1xx) answers are skipped (their heads count towards
 * RP_INVOKE_HEAD_MAX); chunked trailers are read, up to as many bytes, but not kept. The callback
 * runs exactly once, on the loop, never from inside rp_invoke_start; after rp_invoke_cancel it
 * never runs.
 *
 * Threads: everything on the loop thread that started the call; the pool belongs to that thread
 * (thread-local: one loop per thread, as the server's workers and the timers' thread have), so
 * no locks. A thread that runs two loops at once gets a pool for the first only (the other's
 * connections are closed after each call). Every loop thread that starts invocations calls
 * rp_invoke_loop_stop when it stops. The process must ignore SIGPIPE (the server does): a
 * worker that closes early must not kill the host through a write.
 */
#ifndef RP_FUNCTIONS_INVOKE_H
#define RP_FUNCTIONS_INVOKE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define RP_INVOKE_HEAD_MAX  (16u << 10)
#define RP_INVOKE_HEADERS   16 /* answer headers kept (the rest are dropped) */
#define RP_INVOKE_EXTRA_MAX 8  /* extra request headers */
#define RP_INVOKE_PATH_MAX  512

#define RP_INVOKE_IDLE_PER_PORT 16    /* idle connections per port and loop thread */
#define RP_INVOKE_IDLE_MAX      128   /* ... and per loop thread in all */
#define RP_INVOKE_IDLE_MS       30000 /* an idle connection is closed after */

typedef struct rp_invoke rp_invoke;

typedef struct rp_invoke_header {
    const char *name;
    const char *value;
} rp_invoke_header;

/* The answer, valid during the callback only. */
typedef struct rp_invoke_result {
    int status;       /* the HTTP status, 0 when rc != 0 */
    const char *body; /* body bytes (not NUL-terminated), NULL when empty */
    size_t body_len;
    rp_invoke_header headers[RP_INVOKE_HEADERS]; /* names lower-cased, NUL-terminated */
    size_t nheaders;
} rp_invoke_result;

/* rc: 0 (an answer arrived, any status) or a negative RP_E* code as above. */
typedef void (*rp_invoke_cb)(int rc, const rp_invoke_result *res, void *arg);

typedef struct rp_invoke_opts {
    int port; /* 127.0.0.1:port, 1..65535 */
    /* "/NAME": starts with '/', visible ASCII only (no CR, LF, space or other control bytes),
     * strlen < RP_INVOKE_PATH_MAX. */
    const char *path;
    const char *body; /* the JSON payload (copied), body_len bytes; may be NULL if 0 */
    size_t body_len;
    /* At most RP_INVOKE_EXTRA_MAX, copied. Names are HTTP tokens and none of the headers set
     * above nor a hop-by-hop one (Host, Content-Type, Content-Length, Connection, User-Agent,
     * Transfer-Encoding, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, Expect: a second
     * copy would blur the framing); values have no control bytes but HTAB, so no CR, LF or NUL.
     * Else RP_EINVAL. */
    const rp_invoke_header *extra;
    size_t nextra;
    uint64_t connect_ms; /* 0: 10000 */
    uint64_t timeout_ms; /* whole call; 0: 230000 */
    size_t max_body;     /* 0: 4 MiB */
} rp_invoke_opts;

/*
 * Starts one invocation on loop: on an idle connection from this thread's pool when there is
 * one for o->port, else on a new one. 0 and *out (a handle for rp_invoke_cancel, valid until the
 * callback has run or cancel returned; out may be NULL when the caller never cancels), or
 * RP_EINVAL (loop, o or cb NULL, or o breaks a rule above) / RP_ENOMEM with nothing started
 * (the callback will not run; a little memory may wait for the loop's next run to be freed). A
 * connection that cannot even be attempted is reported through the callback (RP_EIO), like one
 * that fails.
 */
int rp_invoke_start(uv_loop_t *loop, const rp_invoke_opts *o, rp_invoke_cb cb, void *arg,
                    rp_invoke **out);

/* Abandons an invocation whose callback has not run yet, at any stage (connecting, writing,
 * waiting for or reading the answer): the connection is closed (never pooled: its state is
 * unknown), the memory released once libuv is done with the handles (the loop must run for
 * that), and cb never runs. Accepts NULL; from inside the callback it is a no-op. */
void rp_invoke_cancel(rp_invoke *inv);

/* Closes this loop thread's idle connections and the pool's timer (their memory goes with the
 * close callbacks, on the loop's next run, so the loop must run once more before
 * uv_loop_close). Call once from the loop thread when it stops starting invocations;
 * connections still in use are closed, not pooled, as their invocations end. A later
 * rp_invoke_start on the thread makes a new pool. A no-op when the thread has none. */
void rp_invoke_loop_stop(void);

#endif
