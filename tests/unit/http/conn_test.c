/*
 * conn_test.c - the body API of http/conn, end to end over real TLS on loopback: whole bodies
 * (rp_req_read_body), streamed bodies (rp_req_stream_body), 100-continue, 413 over a route's
 * max_body (declared or chunked), early answers that leave a body to discard, answers from a
 * timer, pipelining after a body, and the body timeout. No server route reads a body yet, so
 * this test registers its own routes.
 *
 * Each test runs a fresh libuv loop on the test thread: a listening socket on 127.0.0.1 port 0,
 * a uv_poll that accept4()s and hands sockets to rp_http_conn_start (as server.c does), and an
 * rp_http_ctx with short limits. A client thread speaks raw HTTP/1.1 over blocking OpenSSL
 * (trusting a CA made in memory, no SNI, Host: rampart.localhost) and records what it got;
 * it never asserts, because cmocka's longjmp belongs to the test thread. When the client is
 * done it wakes the loop with a uv_async, the loop closes every connection and handle, and the
 * test thread asserts on the recording. uv_loop_close must return 0, so ASan sees no leak.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "base/buf.h"
#include "base/err.h"
#include "crypto/pki.h"
#include "http/conn.h"
#include "http/request.h"
#include "http/router.h"
#include "net/listen.h"
#include "net/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define HOST          "rampart.localhost"
#define ECHO_MAX      65536
#define STREAM_MAX    (1u << 20)
#define EARLY_MAX     65536
#define LATE_MS       50
#define IO_TIMEOUT_MS 5000
#define MAX_RESP      8
#define LIMIT_MS      2000 /* header, body, idle and write timeouts of most tests */

/* ---------------------------------------------------------------- shared fixture */

static char g_dir[512], g_cert[600], g_key[600];
static X509 *g_ca;
static rp_tls *g_tls;
static rp_router *g_router;
static SSL_CTX *g_cctx;

/* The server side of the running test (test thread only). */
static struct {
    uv_loop_t loop;
    uv_poll_t lpoll;
    uv_async_t done;
    uv_timer_t late;
    int lfd;
    int port;
    rp_http_ctx *ctx;
    int start_failures;
    size_t conns_after_close;
    rp_http_stats stats;
} S;

/* A handler that answers (or reads its body) from a timer LATE_MS after it was called. */
typedef enum { LATE_ANSWER, LATE_READ } late_mode;
static struct {
    rp_req *req;
    late_mode mode;
    char id[37];
    char path[32];
    char xtest[64];
    size_t xpad;
    int fired;
    int invalid; /* firings that found req changed since the handler ran */
} g_late;

/* State of the one streamed body in flight (rp_req has no slot for a handler's state). */
static struct {
    rp_req *req;
    uint64_t n, sum;
    unsigned spans;
    int abort;
    int done;
} g_stream;

/* What the client saw. */
typedef struct resp {
    int status;
    char *head; /* status line and fields, without the final CRLFCRLF */
    char *body;
    size_t body_len;
    uint64_t ms; /* since the client's mark */
} resp;

static struct {
    resp r[MAX_RESP];
    int n;
    int closed;    /* the server closed after the last response (when the client checked) */
    int quiet;     /* nothing arrived during the quiet window (when the client checked) */
    char err[512]; /* the client's first failure; empty if none */
} R;

/* ---------------------------------------------------------------- helpers */

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Deterministic bytes covering every value (NUL, CR, LF included). */
static void pattern(char *p, size_t n, uint32_t seed)
{
    uint32_t x = seed ? seed : 1;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (char)(x >> 11);
    }
}

static uint64_t fnv1a(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

/* Copies the value of field name from a response head into out; 1 if present. */
static int header_value(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = strstr(head, "\r\n");

    while (p != NULL) {
        const char *line = p + 2;
        const char *eol = strstr(line, "\r\n");
        size_t len = eol ? (size_t)(eol - line) : strlen(line);

        if (len > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            size_t vn = len - nl - 1;
            while (vn > 0 && (*v == ' ' || *v == '\t')) {
                v++;
                vn--;
            }
            while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
                vn--;
            if (vn >= cap)
                vn = cap - 1;
            memcpy(out, v, vn);
            out[vn] = '\0';
            return 1;
        }
        p = eol;
    }
    return 0;
}

/* ---------------------------------------------------------------- client (its own thread) */

typedef struct cl {
    int fd;
    SSL *ssl;
    char *buf; /* bytes read and not yet parsed */
    size_t len, cap;
    uint64_t mark;
} cl;

static void cfail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void cfail(const char *fmt, ...)
{
    va_list ap;

    if (R.err[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(R.err, sizeof(R.err), fmt, ap);
    va_end(ap);
}

static void set_rcvtimeo(int fd, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static int cl_open(cl *c)
{
    struct sockaddr_in a;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_MS / 1000};
    int one = 1;

    memset(c, 0, sizeof(*c));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)S.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        cfail("connect: %s", strerror(errno));
        return -1;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    set_rcvtimeo(c->fd, IO_TIMEOUT_MS);
    c->ssl = SSL_new(g_cctx);
    /* No SNI: the host name is only used to verify the certificate. */
    if (c->ssl == NULL || SSL_set1_host(c->ssl, HOST) != 1 || SSL_set_fd(c->ssl, c->fd) != 1 ||
        SSL_connect(c->ssl) != 1) {
        cfail("TLS handshake failed: %s", ERR_reason_error_string(ERR_peek_last_error()));
        ERR_clear_error();
        return -1;
    }
    return 0;
}

static void cl_close(cl *c)
{
    if (c->ssl != NULL) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        ERR_clear_error();
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

/* Reads more bytes: > 0 read, 0 end of stream, -1 failure, -2 timed out. */
static int cl_fill(cl *c)
{
    int r, e;

    if (c->cap - c->len < 16385) {
        size_t cap = c->cap ? c->cap * 2 : 65536;
        char *p = realloc(c->buf, cap);
        if (p == NULL)
            return -1;
        c->buf = p;
        c->cap = cap;
    }
    errno = 0;
    r = SSL_read(c->ssl, c->buf + c->len, 16384);
    if (r > 0) {
        c->len += (size_t)r;
        return r;
    }
    e = SSL_get_error(c->ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    if (e == SSL_ERROR_WANT_READ)
        return -2;
    if (e == SSL_ERROR_SYSCALL && (errno == 0 || errno == ECONNRESET))
        return 0;
    if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
        return -2;
    return -1;
}

static size_t find_end_of_head(const char *p, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++)
        if (memcmp(p + i, "\r\n\r\n", 4) == 0)
            return i;
    return SIZE_MAX;
}

/* Reads one response into R.r[R.n]: 1, or 0 closed before any byte of it, or -1 (recorded). */
static int cl_resp(cl *c)
{
    size_t end, blen = 0;
    resp *o;
    int r;

    while ((end = find_end_of_head(c->buf, c->len)) == SIZE_MAX) {
        r = cl_fill(c);
        if (r == 0 && c->len == 0)
            return 0;
        if (r <= 0) {
            cfail("response %d: %s after %zu bytes of head", R.n + 1,
                  r == 0    ? "connection closed"
                  : r == -2 ? "timed out"
                            : "read failed",
                  c->len);
            return -1;
        }
    }
    if (R.n == MAX_RESP) {
        cfail("more than %d responses", MAX_RESP);
        return -1;
    }
    o = &R.r[R.n];
    o->head = malloc(end + 1);
    if (o->head == NULL)
        return -1;
    memcpy(o->head, c->buf, end);
    o->head[end] = '\0';
    if (end < 12 || memcmp(o->head, "HTTP/1.1 ", 9) != 0 || o->head[9] < '1' || o->head[9] > '5') {
        cfail("response %d: bad status line: %.40s", R.n + 1, o->head);
        R.n++;
        return -1;
    }
    o->status = (int)strtol(o->head + 9, NULL, 10);
    if (o->status >= 200) {
        char v[32], *e;
        if (!header_value(o->head, "Content-Length", v, sizeof(v))) {
            cfail("response %d (%d) has no Content-Length", R.n + 1, o->status);
            R.n++;
            return -1;
        }
        blen = strtoull(v, &e, 10);
        if (*e != '\0') {
            cfail("response %d: bad Content-Length %s", R.n + 1, v);
            R.n++;
            return -1;
        }
    }
    while (c->len < end + 4 + blen) {
        r = cl_fill(c);
        if (r <= 0) {
            cfail("response %d (%d): body cut at %zu of %zu bytes", R.n + 1, o->status,
                  c->len - end - 4, blen);
            R.n++;
            return -1;
        }
    }
    o->body = malloc(blen + 1);
    if (o->body == NULL)
        return -1;
    memcpy(o->body, c->buf + end + 4, blen);
    o->body[blen] = '\0';
    o->body_len = blen;
    o->ms = now_ms() - c->mark;
    memmove(c->buf, c->buf + end + 4 + blen, c->len - end - 4 - blen);
    c->len -= end + 4 + blen;
    R.n++;
    return 1;
}

/* Reads n responses; a missing one is recorded. */
static int cl_expect(cl *c, int n)
{
    for (int i = 0; i < n; i++) {
        int r = cl_resp(c);
        if (r != 1) {
            if (r == 0)
                cfail("connection closed where response %d was expected", R.n + 1);
            return -1;
        }
    }
    return 0;
}

/* Waits up to ms for the server to close the connection; sets R.closed. */
static void cl_wait_close(cl *c, unsigned ms)
{
    int r;

    R.closed = 0;
    if (c->len > 0) {
        cfail("%zu unexpected bytes after the last response: %.40s", c->len, c->buf);
        return;
    }
    set_rcvtimeo(c->fd, ms);
    r = cl_fill(c);
    if (r == 0)
        R.closed = 1;
    else if (r > 0)
        cfail("%zu unexpected bytes after the last response: %.40s", c->len, c->buf);
    set_rcvtimeo(c->fd, IO_TIMEOUT_MS);
}

/* Sets R.quiet when nothing (not even a close) arrives within ms. */
static void cl_quiet(cl *c, unsigned ms)
{
    set_rcvtimeo(c->fd, ms);
    R.quiet = cl_fill(c) == -2 && c->len == 0;
    set_rcvtimeo(c->fd, IO_TIMEOUT_MS);
}

static int cl_send(cl *c, const void *p, size_t n)
{
    const char *s = p;

    while (n > 0) {
        int k = (int)(n > 16384 ? 16384 : n);
        int w = SSL_write(c->ssl, s, k);
        if (w <= 0) {
            cfail("write failed with %zu bytes left (ssl error %d)", n, SSL_get_error(c->ssl, w));
            ERR_clear_error();
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int cl_send_str(cl *c, const char *s)
{
    return cl_send(c, s, strlen(s));
}

/* One TLS record per piece of 1..maxpiece bytes, with a pause now and then so that the server
 * sees them in many separate reads. */
static int cl_send_pieces(cl *c, const char *p, size_t n, size_t maxpiece)
{
    size_t i = 0;

    for (unsigned k = 0; i < n; k++) {
        size_t piece = 1 + k % maxpiece;
        if (piece > n - i)
            piece = n - i;
        if (SSL_write(c->ssl, p + i, (int)piece) != (int)piece) {
            cfail("small write failed at byte %zu", i);
            ERR_clear_error();
            return -1;
        }
        i += piece;
        if (k % 64 == 63)
            usleep(1000);
    }
    return 0;
}

/* Appends a request head for method path with extra field lines (each ending in CRLF). */
static void req_head(rp_buf *b, const char *method, const char *path, const char *fields)
{
    rp_buf_appendf(b, "%s %s HTTP/1.1\r\nHost: " HOST "\r\n%s\r\n", method, path,
                   fields ? fields : "");
}

/* Appends data as chunks whose sizes cycle through sizes[]. */
static void chunked(rp_buf *b, const char *data, size_t n, const size_t *sizes, size_t nsizes)
{
    for (size_t off = 0, k = 0; off < n; k++) {
        size_t len = sizes[k % nsizes];
        if (len > n - off)
            len = n - off;
        rp_buf_appendf(b, "%zx\r\n", len);
        rp_buf_append(b, data + off, len);
        rp_buf_append_str(b, "\r\n");
        off += len;
    }
}

static int cl_send_buf(cl *c, const rp_buf *b)
{
    if (b->len == 0) {
        cfail("request builder overflowed");
        return -1;
    }
    return cl_send(c, b->data, b->len);
}

/* ---------------------------------------------------------------- routes (loop thread) */

static void echo_done(rp_req *req)
{
    rp_resp_send(req, 200, "application/octet-stream", req->body.data, req->body.len);
}

static void h_echo(rp_req *req)
{
    rp_req_read_body(req, echo_done);
}

static int stream_data(rp_req *req, const char *data, size_t len)
{
    if (req != g_stream.req || g_stream.abort)
        return -1;
    g_stream.n += len;
    g_stream.sum = fnv1a(g_stream.sum, data, len);
    g_stream.spans++;
    return 0;
}

static void stream_done(rp_req *req)
{
    char out[64];
    int n = snprintf(out, sizeof(out), "n=%llu sum=%016llx", (unsigned long long)g_stream.n,
                     (unsigned long long)g_stream.sum);

    g_stream.done++;
    rp_resp_send(req, 200, "text/plain", out, (size_t)n);
}

static void h_stream(rp_req *req)
{
    g_stream.req = req;
    g_stream.n = 0;
    g_stream.sum = FNV_INIT;
    g_stream.spans = 0;
    g_stream.abort = rp_req_header(req, "x-abort").p != NULL;
    rp_req_stream_body(req, stream_data, stream_done);
}

static void h_early(rp_req *req)
{
    rp_resp_header(req, "WWW-Authenticate", "Bearer");
    rp_resp_send(req, 401, "text/plain", "denied", 6);
}

static void copy_str(char *out, size_t cap, rp_str s)
{
    size_t n = s.p == NULL ? 0 : s.n < cap ? s.n : cap - 1;

    if (n > 0)
        memcpy(out, s.p, n);
    out[n] = '\0';
}

static void late_cb(uv_timer_t *t)
{
    rp_req *req = g_late.req;
    char xtest[64];
    rp_str pad;

    (void)t;
    g_late.req = NULL;
    g_late.fired++;
    /* The request must be exactly as the handler left it, head views included. */
    copy_str(xtest, sizeof(xtest), rp_req_header(req, "x-test"));
    pad = rp_req_header(req, "x-pad");
    if (req->conn == NULL || strcmp(req->id, g_late.id) != 0 || req->path == NULL ||
        strcmp(req->path, g_late.path) != 0 || strcmp(xtest, g_late.xtest) != 0 ||
        (pad.p ? pad.n : 0) != g_late.xpad)
        g_late.invalid++;
    if (g_late.mode == LATE_ANSWER)
        rp_resp_send(req, 200, "text/plain", "late", 4);
    else
        rp_req_read_body(req, echo_done);
}

static void late_start(rp_req *req, late_mode mode)
{
    rp_str pad = rp_req_header(req, "x-pad");

    if (g_late.req != NULL) {
        rp_resp_error(req, 500, "TestBusy", "one late request at a time");
        return;
    }
    g_late.req = req;
    g_late.mode = mode;
    memcpy(g_late.id, req->id, sizeof(g_late.id));
    snprintf(g_late.path, sizeof(g_late.path), "%s", req->path);
    copy_str(g_late.xtest, sizeof(g_late.xtest), rp_req_header(req, "x-test"));
    g_late.xpad = pad.p ? pad.n : 0;
    /* The loop's cached time may predate this request (it was read before a busy iteration). */
    uv_update_time(&S.loop);
    uv_timer_start(&S.late, late_cb, LATE_MS, 0);
}

static void h_async(rp_req *req)
{
    late_start(req, LATE_ANSWER);
}

static void h_lateread(rp_req *req)
{
    late_start(req, LATE_READ);
}

/* ---------------------------------------------------------------- server (test thread) */

static void on_accept(uv_poll_t *p, int status, int events)
{
    (void)p;
    (void)events;
    if (status < 0)
        return;
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int one = 1;
        int fd = accept4(S.lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0)
            return;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (rp_http_conn_start(S.ctx, fd, &peer, RP_CONN_HTTPS) != 0)
            S.start_failures++;
    }
}

static void on_client_done(uv_async_t *a)
{
    (void)a;
    rp_http_ctx_close_all(S.ctx);
    S.conns_after_close = rp_http_ctx_conns(S.ctx);
    uv_close((uv_handle_t *)&S.lpoll, NULL);
    uv_close((uv_handle_t *)&S.late, NULL);
    uv_close((uv_handle_t *)&S.done, NULL);
}

typedef void (*client_fn)(cl *c);
static client_fn g_client;

static void client_main(void *arg)
{
    cl c;

    (void)arg;
    if (cl_open(&c) == 0)
        g_client(&c);
    cl_close(&c);
    uv_async_send(&S.done);
}

/* Runs fn on a client thread against a fresh server loop; asserts the client saw no failure. */
static void run_case(client_fn fn, unsigned body_timeout_ms)
{
    rp_http_limits lim = {LIMIT_MS, body_timeout_ms, LIMIT_MS, LIMIT_MS};
    char err[256] = "";
    uv_thread_t th;

    memset(&S, 0, sizeof(S));
    memset(&g_late, 0, sizeof(g_late));
    memset(&g_stream, 0, sizeof(g_stream));
    assert_int_equal(uv_loop_init(&S.loop), 0);
    S.lfd = rp_listen_tcp("127.0.0.1", &S.port, 64, err, sizeof(err));
    if (S.lfd < 0)
        fail_msg("rp_listen_tcp: %s", err);
    assert_true(S.port > 0);
    assert_int_equal(rp_http_ctx_create(&S.loop, g_router, g_tls, &lim, S.port, &S.ctx), 0);
    assert_int_equal(uv_poll_init(&S.loop, &S.lpoll, S.lfd), 0);
    assert_int_equal(uv_poll_start(&S.lpoll, UV_READABLE, on_accept), 0);
    assert_int_equal(uv_async_init(&S.loop, &S.done, on_client_done), 0);
    assert_int_equal(uv_timer_init(&S.loop, &S.late), 0);
    g_client = fn;
    assert_int_equal(uv_thread_create(&th, client_main, NULL), 0);
    uv_run(&S.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_thread_join(&th), 0);
    S.stats = *rp_http_ctx_stats(S.ctx);
    assert_int_equal(S.conns_after_close, 0);
    assert_int_equal(rp_http_ctx_conns(S.ctx), 0);
    assert_int_equal(uv_loop_close(&S.loop), 0);
    rp_http_ctx_free(S.ctx);
    S.ctx = NULL;
    close(S.lfd);
    assert_int_equal(S.start_failures, 0);
    if (R.err[0] != '\0')
        fail_msg("client: %s", R.err);
}

/* ---------------------------------------------------------------- assertions */

static const resp *rsp(int i)
{
    if (i >= R.n)
        fail_msg("response %d missing (got %d)", i + 1, R.n);
    return &R.r[i];
}

static void assert_status(const resp *r, int status)
{
    if (r->status != status)
        fail_msg("status %d, want %d; head:\n%s\nbody: %.200s", r->status, status, r->head,
                 r->body ? r->body : "");
}

static void assert_body(const resp *r, const void *p, size_t n)
{
    assert_int_equal(r->body_len, n);
    if (n > 0)
        assert_memory_equal(r->body, p, n);
}

/* want NULL: the field must be absent. */
static void assert_header(const resp *r, const char *name, const char *want)
{
    char v[256];
    int has = header_value(r->head, name, v, sizeof(v));

    if (want == NULL) {
        if (has)
            fail_msg("unexpected %s: %s in\n%s", name, v, r->head);
        return;
    }
    if (!has)
        fail_msg("no %s field (want %s) in\n%s", name, want, r->head);
    if (strcasecmp(v, want) != 0)
        fail_msg("%s: %s, want %s", name, v, want);
}

static void assert_error_code(const resp *r, const char *code)
{
    char want[96];

    snprintf(want, sizeof(want), "\"code\":\"%s\"", code);
    if (r->body == NULL || strstr(r->body, want) == NULL)
        fail_msg("body %s lacks %s", r->body ? r->body : "(none)", want);
}

static void assert_closed(void)
{
    if (!R.closed)
        fail_msg("the server did not close the connection");
}

/* ---------------------------------------------------------------- cases */

#define CL_BODY 3000

/* A Content-Length body comes back byte for byte; an empty one too; keep-alive holds. */
static void client_cl_echo(cl *c)
{
    char body[CL_BODY];
    rp_buf b;

    pattern(body, sizeof(body), 1);
    rp_buf_init(&b, 1 << 20);
    rp_buf_appendf(&b, "POST /echo HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: %d\r\n\r\n",
                   CL_BODY);
    rp_buf_append(&b, body, sizeof(body));
    req_head(&b, "POST", "/echo", "Content-Length: 0\r\n");
    if (cl_send_buf(c, &b) == 0)
        cl_expect(c, 2);
    rp_buf_free(&b);
}

static void test_cl_echo(void **state)
{
    char body[CL_BODY];

    (void)state;
    pattern(body, sizeof(body), 1);
    run_case(client_cl_echo, LIMIT_MS);
    assert_int_equal(R.n, 2);
    assert_status(rsp(0), 200);
    assert_body(rsp(0), body, sizeof(body));
    assert_header(rsp(0), "Content-Type", "application/octet-stream");
    assert_header(rsp(0), "Connection", NULL);
    assert_status(rsp(1), 200);
    assert_body(rsp(1), NULL, 0);
    assert_int_equal(S.stats.accepted, 1);
    assert_int_equal(S.stats.requests, 2);
}

static const char alpha[] = "abcdefghijklmnopqrstuvwxyz";

/* Chunks with extensions (token, quoted, bare), upper-case hex, trailers; a pipelined GET after
 * the last chunk must parse as the next request. */
static void client_chunked_echo(cl *c)
{
    char kb[1024];
    rp_buf b;

    pattern(kb, sizeof(kb), 2);
    rp_buf_init(&b, 1 << 20);
    req_head(&b, "POST", "/echo", "Transfer-Encoding: chunked\r\n");
    rp_buf_append_str(&b, "5;name=value\r\nhello\r\n");
    rp_buf_append_str(&b, "1A;a=\"b c;d\";flag\r\n");
    rp_buf_append_str(&b, alpha);
    rp_buf_append_str(&b, "\r\n400\r\n");
    rp_buf_append(&b, kb, sizeof(kb));
    rp_buf_append_str(&b, "\r\n0;last\r\nX-Trailer: one\r\nX-Other:\t2 \r\n\r\n");
    req_head(&b, "GET", "/async", "X-Test: after-chunked\r\n");
    if (cl_send_buf(c, &b) == 0)
        cl_expect(c, 2);
    rp_buf_free(&b);
}

static void test_chunked_echo(void **state)
{
    char want[5 + 26 + 1024];

    (void)state;
    memcpy(want, "hello", 5);
    memcpy(want + 5, alpha, 26);
    pattern(want + 31, 1024, 2);
    run_case(client_chunked_echo, LIMIT_MS);
    assert_int_equal(R.n, 2);
    assert_status(rsp(0), 200);
    assert_body(rsp(0), want, sizeof(want));
    assert_header(rsp(0), "Connection", NULL);
    assert_status(rsp(1), 200);
    assert_body(rsp(1), "late", 4);
    assert_int_equal(g_late.fired, 1);
    assert_int_equal(g_late.invalid, 0);
}

#define SMALL_BODY 4000

/* Head and body dribbled in TLS records of 1..7 bytes: a Content-Length request, then a chunked
 * one on the same connection. */
static void client_small_writes(cl *c)
{
    char body[SMALL_BODY];
    static const size_t sizes[] = {1, 2, 300, 7, 1000};
    rp_buf b;

    pattern(body, sizeof(body), 3);
    rp_buf_init(&b, 1 << 20);
    rp_buf_appendf(&b, "POST /echo HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: %d\r\n\r\n",
                   SMALL_BODY);
    rp_buf_append(&b, body, sizeof(body));
    if (cl_send_pieces(c, b.data, b.len, 7) != 0 || cl_expect(c, 1) != 0)
        goto out;
    rp_buf_reset(&b);
    req_head(&b, "POST", "/echo", "Transfer-Encoding: chunked\r\n");
    chunked(&b, body, sizeof(body), sizes, 5);
    rp_buf_append_str(&b, "0\r\n\r\n");
    if (cl_send_pieces(c, b.data, b.len, 7) == 0)
        cl_expect(c, 1);
out:
    rp_buf_free(&b);
}

static void test_small_writes(void **state)
{
    char body[SMALL_BODY];

    (void)state;
    pattern(body, sizeof(body), 3);
    run_case(client_small_writes, LIMIT_MS);
    assert_int_equal(R.n, 2);
    assert_status(rsp(0), 200);
    assert_body(rsp(0), body, sizeof(body));
    assert_status(rsp(1), 200);
    assert_body(rsp(1), body, sizeof(body));
    assert_int_equal(S.stats.timeouts, 0);
}

/* Exactly max_body, declared and chunked, is accepted. */
static void client_max_exact(cl *c)
{
    static char body[ECHO_MAX];
    static const size_t sizes[] = {1000, 1, 4096, 30000};
    rp_buf b;

    pattern(body, sizeof(body), 4);
    rp_buf_init(&b, 1 << 20);
    rp_buf_appendf(&b, "POST /echo HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: %d\r\n\r\n",
                   ECHO_MAX);
    rp_buf_append(&b, body, sizeof(body));
    req_head(&b, "POST", "/echo", "Transfer-Encoding: chunked\r\n");
    chunked(&b, body, sizeof(body), sizes, 4);
    rp_buf_append_str(&b, "0\r\n\r\n");
    if (cl_send_buf(c, &b) == 0)
        cl_expect(c, 2);
    rp_buf_free(&b);
}

static void test_max_body_exact(void **state)
{
    static char body[ECHO_MAX];

    (void)state;
    pattern(body, sizeof(body), 4);
    run_case(client_max_exact, LIMIT_MS);
    assert_int_equal(R.n, 2);
    assert_status(rsp(0), 200);
    assert_body(rsp(0), body, sizeof(body));
    assert_header(rsp(0), "Connection", NULL);
    assert_status(rsp(1), 200);
    assert_body(rsp(1), body, sizeof(body));
    assert_header(rsp(1), "Connection", NULL);
}

/* A declared length of max_body + 1 is refused from the head alone: the body is never sent. */
static void client_over_cl(cl *c)
{
    rp_buf b;

    rp_buf_init(&b, 4096);
    rp_buf_appendf(&b, "POST /echo HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: %d\r\n\r\n",
                   ECHO_MAX + 1);
    if (cl_send_buf(c, &b) == 0 && cl_expect(c, 1) == 0)
        cl_wait_close(c, IO_TIMEOUT_MS);
    rp_buf_free(&b);
}

static void test_over_max_cl(void **state)
{
    (void)state;
    run_case(client_over_cl, LIMIT_MS);
    assert_int_equal(R.n, 1);
    assert_status(rsp(0), 413);
    assert_error_code(rsp(0), "RequestBodyTooLarge");
    assert_closed();
    assert_header(rsp(0), "Connection", "close");
}

/* A chunked body is refused at the byte that exceeds max_body, not before. */
static void client_over_chunked(cl *c)
{
    static char body[ECHO_MAX];
    rp_buf b;

    pattern(body, sizeof(body), 5);
    rp_buf_init(&b, 1 << 20);
    req_head(&b, "POST", "/echo", "Transfer-Encoding: chunked\r\n");
    rp_buf_appendf(&b, "%x\r\n", ECHO_MAX);
    rp_buf_append(&b, body, sizeof(body));
    if (cl_send_buf(c, &b) != 0)
        goto out;
    cl_quiet(c, 300);
    if (cl_send_str(c, "\r\n1\r\nX\r\n0\r\n\r\n") == 0 && cl_expect(c, 1) == 0)
        cl_wait_close(c, IO_TIMEOUT_MS);
out:
    rp_buf_free(&b);
}

static void test_over_max_chunked(void **state)
{
    (void)state;
    run_case(client_over_chunked, LIMIT_MS);
    if (!R.quiet)
        fail_msg("the server answered before the body went over the limit");
    assert_int_equal(R.n, 1);
    assert_status(rsp(0), 413);
    assert_error_code(rsp(0), "RequestBodyTooLarge");
    assert_closed();
    assert_header(rsp(0), "Connection", "close");
}

#define STREAM_BODY (600u * 1024u)

/* 600 KiB in chunks of varied sizes arrives in several spans, in order, counted exactly. */
static void client_stream(cl *c)
{
    static const size_t sizes[] = {1, 17, 4096, 8191, 65536, 100000, 300, 16384};
    char *body = malloc(STREAM_BODY);
    rp_buf b;

    rp_buf_init(&b, 2u << 20);
    if (body == NULL)
        return;
    pattern(body, STREAM_BODY, 6);
    req_head(&b, "POST", "/stream", "Transfer-Encoding: chunked\r\n");
    chunked(&b, body, STREAM_BODY, sizes, 8);
    rp_buf_append_str(&b, "0\r\n\r\n");
    if (cl_send_buf(c, &b) == 0)
        cl_expect(c, 1);
    rp_buf_free(&b);
    free(body);
}

static void test_stream(void **state)
{
    char *body = malloc(STREAM_BODY);
    char want[64];
    int n;

    (void)state;
    assert_non_null(body);
    pattern(body, STREAM_BODY, 6);
    n = snprintf(want, sizeof(want), "n=%u sum=%016llx", STREAM_BODY,
                 (unsigned long long)fnv1a(FNV_INIT, body, STREAM_BODY));
    free(body);
    run_case(client_stream, LIMIT_MS);
    assert_int_equal(R.n, 1);
    assert_status(rsp(0), 200);
    assert_body(rsp(0), want, (size_t)n);
    assert_int_equal(g_stream.done, 1);
    assert_true(g_stream.spans > 1);
}

/* on_data failing ends the request with 500 and closes the connection. */
static void client_stream_abort(cl *c)
{
    static char body[200000];
    static const size_t sizes[] = {16384};
    rp_buf b;

    rp_buf_init(&b, 1 << 20);
    req_head(&b, "POST", "/stream", "Transfer-Encoding: chunked\r\nX-Abort: 1\r\n");
    chunked(&b, body, sizeof(body), sizes, 1);
    rp_buf_append_str(&b, "0\r\n\r\n");
    if (cl_send_buf(c, &b) == 0 && cl_expect(c, 1) == 0)
        cl_wait_close(c, IO_TIMEOUT_MS);
    rp_buf_free(&b);
}

static void test_stream_abort(void **state)
{
    (void)state;
    run_case(client_stream_abort, LIMIT_MS);
    assert_int_equal(R.n, 1);
    assert_status(rsp(0), 500);
    assert_error_code(rsp(0), "InternalError");
    assert_int_equal(g_stream.done, 0);
    assert_closed();
    assert_header(rsp(0), "Connection", "close");
}

/* Expect: 100-continue: the interim answer comes before the client sends the body. */
static void client_continue(cl *c)
{
    rp_buf b;

    rp_buf_init(&b, 4096);
    req_head(&b, "POST", "/echo", "Content-Length: 11\r\nExpect: 100-continue\r\n");
    if (cl_send_buf(c, &b) != 0 || cl_expect(c, 1) != 0)
        goto out;
    if (cl_send_str(c, "hello world") != 0 || cl_expect(c, 1) != 0)
        goto out;
    rp_buf_reset(&b);
    req_head(&b, "GET", "/async", NULL);
    if (cl_send_buf(c, &b) == 0)
        cl_expect(c, 1);
out:
    rp_buf_free(&b);
}

static void test_expect_continue(void **state)
{
    (void)state;
    run_case(client_continue, LIMIT_MS);
    assert_int_equal(R.n, 3);
    assert_status(rsp(0), 100);
    assert_string_equal(rsp(0)->head, "HTTP/1.1 100 Continue");
    assert_status(rsp(1), 200);
    assert_body(rsp(1), "hello world", 11);
    assert_header(rsp(1), "Connection", NULL);
    assert_status(rsp(2), 200);
    assert_body(rsp(2), "late", 4);
}

/* A final answer to Expect: 100-continue without reading the body: no 100, and the server says
 * it will close (RFC 9110 10.1.1) because the client may never send the body. */
static void client_continue_early(cl *c)
{
    rp_buf b;

    rp_buf_init(&b, 4096);
    req_head(&b, "POST", "/early", "Content-Length: 5\r\nExpect: 100-continue\r\n");
    if (cl_send_buf(c, &b) == 0 && cl_expect(c, 1) == 0)
        cl_wait_close(c, IO_TIMEOUT_MS);
    rp_buf_free(&b);
}

static void test_expect_continue_early(void **state)
{
    (void)state;
    run_case(client_continue_early, LIMIT_MS);
    assert_int_equal(R.n, 1);
    assert_status(rsp(0), 401);
    assert_body(rsp(0), "denied", 6);
    assert_closed();
    assert_header(rsp(0), "Connection", "close");
}

/* Expect: 100-continue with a declared length over the limit: 413 and no 100. */
static void client_continue_over(cl *c)
{
    rp_buf b;

    rp_buf_init(&b, 4096);
    rp_buf_appendf(&b,
                   "POST /echo HTTP/1.1\r\nHost: " HOST
                   "\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
                   ECHO_MAX + 1);
    if (cl_send_buf(c, &b) == 0 && cl_expect(c, 1) == 0)
        cl_wait_close(c, IO_TIMEOUT_MS);
    rp_buf_free(&b);
}

static void test_expect_continue_over(void **state)
{
    (void)state;
    run_case(client_continue_over, LIMIT_MS);
    assert_int_equal(R.n, 1);
    assert_status(rsp(0), 413);
    assert_closed();
    assert_header(rsp(0), "Connection", "close");
}

#define EARLY_BODY 1000

/* An early 401 leaves a small body to discard; the connection stays usable. First with body and
 * the next request in one write, then with the body sent only after the 401 arrived. */
static void client_early(cl *c)
{
    char body[EARLY_BODY];
    rp_buf b;

    pattern(body, sizeof(body), 7);
    rp_buf_init(&b, 1 << 20);
    rp_buf_appendf(&b, "POST /early HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: %d\r\n\r\n",
                   EARLY_BODY);
    rp_buf_append(&b, body, sizeof(body));
    req_head(&b, "GET", "/async", "X-Test: after-early\r\n");
    if (cl_send_buf(c, &b) != 0 || cl_expect(c, 2) != 0)
        goto out;
    rp_buf_reset(&b);
    rp_buf_appendf(&b, "POST /early HTTP/1.1\r\nHost: " HOST "\r\nContent-Length: %d\r\n\r\n",
                   EARLY_BODY);
    if (cl_send_buf(c, &b) != 0 || cl_expect(c, 1) != 0)
        goto out;
    rp_buf_reset(&b);
    rp_buf_append(&b, body, sizeof(body));
    req_head(&b, "GET", "/async", "X-Test: after-late-body\r\n");
    if (cl_send_buf(c, &b) == 0)
        cl_expect(c, 1);
out:
    rp_buf_free(&b);
}

static void test_early_discard(void **state)
{
    (void)state;
    run_case(client_early, LIMIT_MS);
    assert_int_equal(R.n, 4);
    for (int i = 0; i < 4; i += 2) {
        assert_status(rsp(i), 401);
        assert_body(rsp(i), "denied", 6);
        assert_header(rsp(i), "WWW-Authenticate", "Bearer");
        assert_header(rsp(i), "Connection", NULL);
        assert_status(rsp(i + 1), 200);
        assert_body(rsp(i + 1), "late", 4);
    }
    assert_int_equal(g_late.fired, 2);
    assert_int_equal(g_late.invalid, 0);
    assert_int_equal(S.stats.requests, 4);
}

#define EARLY_BIG (100u * 1024u)

/* More than the route's limit left to discard after an early answer: 401, then close. */
static void client_early_big(cl *c)
{
    static char body[EARLY_BIG];
    static const size_t sizes[] = {16384};
    rp_buf b;

    rp_buf_init(&b, 1 << 20);
    req_head(&b, "POST", "/early", "Transfer-Encoding: chunked\r\n");
    chunked(&b, body, sizeof(body), sizes, 1);
    rp_buf_append_str(&b, "0\r\n\r\n");
    req_head(&b, "GET", "/async", NULL);
    if (cl_send_buf(c, &b) == 0 && cl_expect(c, 1) == 0)
        cl_wait_close(c, IO_TIMEOUT_MS);
    rp_buf_free(&b);
}

static void test_early_big_body(void **state)
{
    (void)state;
    run_case(client_early_big, LIMIT_MS);
    assert_int_equal(R.n, 1);
    assert_status(rsp(0), 401);
    assert_body(rsp(0), "denied", 6);
    assert_closed();
    assert_int_equal(g_late.fired, 0);
}

#define PAD 5000

/* An answer from a timer, with a big head (views must survive), and a pipelined request behind
 * it that is answered second although its handler could answer at once. */
static void client_async(cl *c)
{
    char pad[PAD + 1];
    rp_buf b;

    memset(pad, 'p', PAD);
    pad[PAD] = '\0';
    rp_buf_init(&b, 1 << 20);
    rp_buf_appendf(
        &b, "GET /async HTTP/1.1\r\nHost: " HOST "\r\nX-Test: first\r\nX-Pad: %s\r\n\r\n", pad);
    req_head(&b, "POST", "/echo", "Content-Length: 6\r\n");
    rp_buf_append_str(&b, "second");
    c->mark = now_ms();
    if (cl_send_buf(c, &b) == 0)
        cl_expect(c, 2);
    rp_buf_free(&b);
}

static void test_async_pipelined(void **state)
{
    char id0[64], id1[64];

    (void)state;
    run_case(client_async, LIMIT_MS);
    assert_int_equal(R.n, 2);
    assert_status(rsp(0), 200);
    assert_body(rsp(0), "late", 4);
    assert_true(rsp(0)->ms >= LATE_MS - 5);
    assert_status(rsp(1), 200);
    assert_body(rsp(1), "second", 6);
    assert_int_equal(g_late.fired, 1);
    assert_int_equal(g_late.invalid, 0);
    assert_int_equal(g_late.xpad, PAD);
    assert_true(header_value(rsp(0)->head, "x-ms-request-id", id0, sizeof(id0)));
    assert_true(header_value(rsp(1)->head, "x-ms-request-id", id1, sizeof(id1)));
    assert_string_equal(id0, g_late.id);
    assert_string_not_equal(id0, id1);
}

#define BODY_TIMEOUT_MS 500

/* Half a body, then silence past the body timeout: 408 (the handler never sees its body). */
static void client_body_timeout(cl *c)
{
    char body[500];
    rp_buf b;

    memset(body, 'b', sizeof(body));
    rp_buf_init(&b, 4096);
    req_head(&b, "POST", "/echo", "Content-Length: 1000\r\n");
    rp_buf_append(&b, body, sizeof(body));
    c->mark = now_ms();
    if (cl_send_buf(c, &b) == 0 && cl_expect(c, 1) == 0)
        cl_wait_close(c, IO_TIMEOUT_MS);
    rp_buf_free(&b);
}

static void test_body_timeout(void **state)
{
    (void)state;
    run_case(client_body_timeout, BODY_TIMEOUT_MS);
    assert_int_equal(R.n, 1);
    assert_status(rsp(0), 408);
    assert_error_code(rsp(0), "RequestTimeout");
    assert_header(rsp(0), "Connection", "close");
    assert_closed();
    assert_true(rsp(0)->ms >= BODY_TIMEOUT_MS - 50);
    assert_true(rsp(0)->ms < LIMIT_MS);
    assert_int_equal(S.stats.timeouts, 1);
}

/* A handler that decides later (from a timer) to read the body gets all of it, even though
 * the body arrived together with the head. */
static void client_lateread(cl *c)
{
    rp_buf b;

    rp_buf_init(&b, 4096);
    req_head(&b, "POST", "/lateread", "Content-Length: 14\r\nX-Test: deferred\r\n");
    rp_buf_append_str(&b, "hello deferred");
    if (cl_send_buf(c, &b) == 0)
        cl_expect(c, 1);
    rp_buf_free(&b);
}

static void test_deferred_read_body(void **state)
{
    (void)state;
    run_case(client_lateread, LIMIT_MS);
    assert_int_equal(g_late.fired, 1);
    assert_int_equal(g_late.invalid, 0);
    assert_int_equal(R.n, 1);
    assert_status(rsp(0), 200);
    assert_body(rsp(0), "hello deferred", 14);
}

/* ---------------------------------------------------------------- setup */

static int free_results(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_RESP; i++) {
        free(R.r[i].head);
        free(R.r[i].body);
    }
    memset(&R, 0, sizeof(R));
    return 0;
}

static int add_route(const char *prefix, rp_handler_fn fn, unsigned methods, size_t max_body)
{
    rp_route_opts o = {.methods = methods, .max_body = max_body, .data = NULL};

    return rp_router_add(g_router, "@", prefix, fn, &o);
}

static int setup(void **state)
{
    static const char *const dns[] = {HOST};
    static const char *const ips[] = {"127.0.0.1"};
    EVP_PKEY *ca_key = NULL, *key = NULL;
    X509 *cert = NULL;
    rp_tls_cert_source src = {0};
    rp_tls_opts o = {0};
    char err[256] = "";
    FILE *f;

    (void)state;
    signal(SIGPIPE, SIG_IGN);
    rp_test_scratch("conn_test", g_dir, sizeof(g_dir));
    snprintf(g_cert, sizeof(g_cert), "%s/server.pem", g_dir);
    snprintf(g_key, sizeof(g_key), "%s/server.key", g_dir);
    assert_int_equal(rp_pki_create_ca("conn_test CA", 2, &ca_key, &g_ca), 0);
    assert_int_equal(rp_pki_issue_server(ca_key, g_ca, HOST, dns, 1, ips, 1, 2, &key, &cert), 0);
    assert_int_equal(rp_pki_write_cert(g_cert, cert), 0);
    f = fopen(g_key, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(f), 0);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    X509_free(cert);

    src.cert_file = g_cert;
    src.key_file = g_key;
    o.min_version = 12;
    o.ticket_rotate_s = 3600;
    o.certs = &src;
    o.ncerts = 1;
    if (rp_tls_create(&o, &g_tls, err, sizeof(err)) != 0)
        fail_msg("rp_tls_create: %s", err);

    assert_int_equal(rp_router_create(HOST, &g_router), 0);
    assert_int_equal(add_route("/echo", h_echo, RP_M(RP_METHOD_POST), ECHO_MAX), 0);
    assert_int_equal(add_route("/stream", h_stream, RP_M(RP_METHOD_POST), STREAM_MAX), 0);
    assert_int_equal(add_route("/async", h_async, RP_M_READ, 0), 0);
    assert_int_equal(add_route("/early", h_early, RP_M(RP_METHOD_POST), EARLY_MAX), 0);
    assert_int_equal(add_route("/lateread", h_lateread, RP_M(RP_METHOD_POST), ECHO_MAX), 0);

    g_cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(g_cctx);
    SSL_CTX_set_verify(g_cctx, SSL_VERIFY_PEER, NULL);
    assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(g_cctx), g_ca), 1);
    /* A server that closes without close_notify reads as end of stream, not as an error. */
    SSL_CTX_set_options(g_cctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    SSL_CTX_free(g_cctx);
    rp_router_free(g_router);
    rp_tls_free(g_tls);
    X509_free(g_ca);
    rp_test_rmtree(g_dir);
    return 0;
}

#define T(f) cmocka_unit_test_teardown(f, free_results)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_cl_echo),
        T(test_chunked_echo),
        T(test_small_writes),
        T(test_max_body_exact),
        T(test_over_max_cl),
        T(test_over_max_chunked),
        T(test_stream),
        T(test_stream_abort),
        T(test_expect_continue),
        T(test_expect_continue_early),
        T(test_expect_continue_over),
        T(test_early_discard),
        T(test_early_big_body),
        T(test_async_pipelined),
        T(test_body_timeout),
        T(test_deferred_read_body),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
