/*
 * invoke.h - the functions host's client for a custom handler's invocation requests: one HTTP/1.1
 * POST of a JSON payload to the worker (POST http://127.0.0.1:PORT/FUNCTION with the invocation
 * envelope, shared/specs/azure-platform-controls.md §1.11), on the caller's libuv loop, and the
 * whole answer collected (status, a few headers, a bounded body) for the host to parse.
 *
 * One connection per invocation, closed after the answer (the worker's answers are small JSON
 * documents; forwarded HTTP requests go through sites/proxy instead, with its connection pool).
 * The request carries Host: 127.0.0.1:PORT, Content-Type: application/json, Content-Length,
 * Connection: close, User-Agent: rampart-functions-host, and the caller's extra headers
 * (X-Azure-Functions-InvocationId ...). The answer is read with llhttp (response mode) until its
 * framing ends (Content-Length, chunked, or the connection's close); anything after it is
 * ignored.
 *
 * Bounds and errors: the connection must be accepted within connect_ms and the whole answer
 * arrive within timeout_ms of the call (else RP_ETIMEDOUT); a response head over
 * RP_INVOKE_HEAD_MAX bytes or a body over max_body bytes is RP_ETOOBIG; a refused or reset
 * connection, or one closed before the answer's framing ended, is RP_EIO; a malformed answer is
 * RP_EPARSE; RP_ENOMEM when the answer could not be stored. Interim (1xx) answers are skipped
 * (their heads count towards RP_INVOKE_HEAD_MAX); chunked trailers are read, up to as many
 * bytes, but not kept. The callback runs exactly once, on the loop, never from inside
 * rp_invoke_start; after rp_invoke_cancel it never runs.
 *
 * Threads: everything on the loop thread that started the call. The process must ignore SIGPIPE
 * (the server does): a worker that closes early must not kill the host through a write.
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
 * Starts one invocation on loop. 0 and *out (a handle for rp_invoke_cancel, valid until the
 * callback has run or cancel returned; out may be NULL when the caller never cancels), or
 * RP_EINVAL (loop, o or cb NULL, or o breaks a rule above) / RP_ENOMEM with nothing started
 * (the callback will not run). A connection that cannot even be attempted is reported through
 * the callback (RP_EIO), like one that fails.
 */
int rp_invoke_start(uv_loop_t *loop, const rp_invoke_opts *o, rp_invoke_cb cb, void *arg,
                    rp_invoke **out);

/* Abandons an invocation whose callback has not run yet, at any stage (connecting, writing,
 * waiting for or reading the answer): the connection is closed, the memory released once libuv
 * is done with the handles (the loop must run for that), and cb never runs. Accepts NULL; from
 * inside the callback it is a no-op. */
void rp_invoke_cancel(rp_invoke *inv);

#endif
