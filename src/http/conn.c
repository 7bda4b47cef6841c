/*
 * conn.c - one HTTP/1.1 connection: TLS (or plain) transport, request framing, dispatch,
 * response writing, timeouts and lingering close.
 *
 * Workload: thousands of mostly idle keep-alive connections per loop, each serving small
 * requests. An idle connection keeps only this struct and its SSL (whose record buffers are
 * released): the codec and the request arena go back to per-loop pools between requests,
 * and the output buffer is freed once flushed. Reads go into one per-loop buffer; only bytes
 * that arrive ahead of their turn (pipelining, split heads) are copied into the connection.
 *
 * The socket is driven with uv_poll (not uv_tcp) so that OpenSSL reads and writes the file
 * descriptor itself: one read(2) and one write(2) per request, as in nginx.
 *
 * conn_run() is the only place that does I/O. Everything else changes state and calls it;
 * re-entrant calls (a handler answering synchronously from inside dispatch) only set a flag.
 */
#include "http/conn.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/rand.h"
#include "base/time.h"
#include "http/path.h"
#include "http/query.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RP_CONN_READ_BUF      65536
#define RP_CONN_READS_PER_RUN 4 /* reads of one connection before the loop serves others */
#define RP_CONN_IN_MAX        (RP_HTTP_MAX_HEAD + 65536) /* unparsed input kept per connection */
#define RP_CONN_OUT_MAX       (16u << 20)                /* a response built in memory */
#define RP_CONN_OUT_HIGH      (256u << 10)               /* stop reading above this */
#define RP_CONN_OUT_LOW       (64u << 10) /* a streamed response's writer resumes below this */
#define RP_CONN_FILE_CHUNK    (64u << 10)
#define RP_CONN_DISCARD_MAX   (64u << 10) /* body bytes skipped after an early answer */
#define RP_CONN_LINGER_MS     2000
#define RP_CONN_POOL          64
#define RP_ARENA_BLOCK        4096

typedef enum { CS_HANDSHAKE, CS_OPEN, CS_LINGER, CS_CLOSED } cstate;
typedef enum { TO_NONE, TO_HEADER, TO_BODY, TO_IDLE, TO_WRITE, TO_LINGER } tokind;
typedef enum { BODY_DISCARD, BODY_BUFFER, BODY_STREAM } bodymode;

typedef struct resp_header {
    struct resp_header *next;
    const char *name;
    const char *value;
} resp_header;

typedef struct rp_conn {
    rp_http_ctx *ctx;
    struct rp_conn *prev, *next;
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;
    int fd;
    SSL *ssl;
    rp_conn_kind kind;
    cstate state;
    int poll_events;
    int in_event;         /* in on_poll for an event nothing may be read for: drop the interest */
    int write_blocked;    /* last write would block */
    int read_wants_write; /* SSL_read needs the socket writable */
    int in_run, rerun;
    int close_after;
    int eof; /* peer finished sending */
    rp_codec *codec;
    rp_buf in;
    rp_buf out;
    int file_fd;
    off_t file_off, file_left;
    tokind to;
    uint64_t deadline, timer_at;
    char ip[INET6_ADDRSTRLEN];
    /* the current request */
    rp_arena *arena;
    rp_req *req;
    resp_header *rh;
    const char *reason;            /* rp_resp_reason's phrase for this response, or NULL */
    int streaming;                 /* rp_resp_start ... rp_resp_end */
    int chunked;                   /* the streamed body goes out in chunks */
    int stream_bodyless;           /* HEAD, 204, 304: writes are dropped */
    void (*drain_cb)(rp_req *req); /* one-shot: out fell below RP_CONN_OUT_LOW */
    int body_paused;               /* rp_req_pause_body */
    int resp_started, resp_done, end_seen, sent_continue;
    bodymode body_mode;
    int body_cb_done;
    uint64_t body_seen;
    uint64_t body_max;
    rp_body_done_fn body_done;
    rp_body_data_fn body_data;
    int status;
    uint64_t bytes_out;
    uint64_t start_us;
} rp_conn;

struct rp_http_ctx {
    uv_loop_t *loop;
    const rp_router *router;
    const rp_router *local_router;
    rp_tls *tls;
    rp_http_limits limits;
    int https_port;
    rp_conn *conns;
    size_t nconns;
    int draining;
    rp_http_conn_closed_fn on_closed;
    void *on_closed_arg;
    rp_http_stats stats;
    time_t date_sec;
    char date[30];
    rp_codec *codecs[RP_CONN_POOL];
    size_t ncodecs;
    rp_arena *arenas[RP_CONN_POOL];
    size_t narenas;
    uint64_t id_counter;
    unsigned char id_prefix[8];
    char rbuf[RP_CONN_READ_BUF];
};

static void conn_run(rp_conn *c);
static void conn_close(rp_conn *c);

void rp_http_ctx_set_local_router(rp_http_ctx *ctx, const rp_router *router)
{
    ctx->local_router = router;
}

int rp_req_tls_version(const rp_req *req)
{
    const rp_conn *c = req->conn;
    int v = c->ssl ? SSL_version(c->ssl) : 0;

    return v == TLS1_3_VERSION ? 13 : v == TLS1_2_VERSION ? 12 : v != 0 ? 11 : 0;
}

X509 *rp_req_peer_cert(const rp_req *req)
{
    const rp_conn *c = req->conn;

    return c->ssl ? SSL_get0_peer_certificate(c->ssl) : NULL;
}
static int body_undecided(const rp_conn *c);
static int body_streaming_in(const rp_conn *c);

/* ---------------------------------------------------------------- context */

int rp_http_ctx_create(uv_loop_t *loop, const rp_router *router, rp_tls *tls,
                       const rp_http_limits *limits, int https_port, rp_http_ctx **out)
{
    rp_http_ctx *ctx = rp_calloc(1, sizeof(*ctx));

    if (ctx == NULL)
        return RP_ENOMEM;
    ctx->loop = loop;
    ctx->router = router;
    ctx->tls = tls;
    ctx->limits = *limits;
    ctx->https_port = https_port;
    if (rp_random_bytes(ctx->id_prefix, sizeof(ctx->id_prefix)) != 0) {
        rp_free(ctx);
        return RP_ECRYPTO;
    }
    *out = ctx;
    return 0;
}

void rp_http_ctx_free(rp_http_ctx *ctx)
{
    if (ctx == NULL)
        return;
    for (size_t i = 0; i < ctx->ncodecs; i++)
        rp_codec_free(ctx->codecs[i]);
    for (size_t i = 0; i < ctx->narenas; i++)
        rp_arena_destroy(ctx->arenas[i]);
    rp_free(ctx);
}

void rp_http_ctx_on_closed(rp_http_ctx *ctx, rp_http_conn_closed_fn fn, void *arg)
{
    ctx->on_closed = fn;
    ctx->on_closed_arg = arg;
}

size_t rp_http_ctx_conns(const rp_http_ctx *ctx)
{
    return ctx->nconns;
}

const rp_http_stats *rp_http_ctx_stats(const rp_http_ctx *ctx)
{
    return &ctx->stats;
}

static const char *date_now(rp_http_ctx *ctx)
{
    time_t now = time(NULL);

    if (now != ctx->date_sec) {
        ctx->date_sec = now;
        rp_http_date(now, ctx->date);
    }
    return ctx->date;
}

/* Request ids: a random per-loop prefix and a counter, in UUID shape (no syscall per request). */
static void make_request_id(rp_http_ctx *ctx, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    uint64_t n = ++ctx->id_counter;
    size_t o = 0;

    memcpy(b, ctx->id_prefix, 8);
    for (int i = 0; i < 8; i++)
        b[8 + i] = (unsigned char)(n >> (56 - 8 * i));
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

/* ---------------------------------------------------------------- timers */

static void on_timer(uv_timer_t *t);

static void set_timeout(rp_conn *c, tokind kind, unsigned ms)
{
    uint64_t now = uv_now(c->ctx->loop);

    c->to = kind;
    if (kind == TO_NONE)
        return;
    c->deadline = now + ms;
    /* The timer is only re-armed when the deadline moves earlier; later moves are lazy. */
    if (c->timer_at == 0 || c->deadline < c->timer_at) {
        c->timer_at = c->deadline;
        uv_timer_start(&c->timer, on_timer, ms, 0);
    }
}

static void send_raw_error(rp_conn *c, int status, const char *code, const char *msg);

static void on_timer(uv_timer_t *t)
{
    rp_conn *c = t->data;
    uint64_t now = uv_now(c->ctx->loop);

    c->timer_at = 0;
    if (c->to == TO_NONE || c->state == CS_CLOSED)
        return;
    if (now < c->deadline) {
        c->timer_at = c->deadline;
        uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
        return;
    }
    c->ctx->stats.timeouts++;
    switch (c->to) {
    case TO_HEADER:
        if (c->state == CS_OPEN && c->codec != NULL && rp_codec_in_request(c->codec) &&
            c->req == NULL) {
            send_raw_error(c, 408, "RequestTimeout", "request head not received in time");
            conn_run(c);
            return;
        }
        conn_close(c);
        return;
    case TO_BODY:
        if (!c->resp_started) {
            send_raw_error(c, 408, "RequestTimeout", "request body not received in time");
            conn_run(c);
            return;
        }
        conn_close(c);
        return;
    default: conn_close(c); return;
    }
}

/* ---------------------------------------------------------------- transport */

/* > 0 bytes, 0 would block, < 0 closed or failed. */
static ssize_t t_read(rp_conn *c, char *buf, size_t n)
{
    if (c->ssl == NULL) {
        ssize_t r;
        do {
            r = read(c->fd, buf, n);
        } while (r < 0 && errno == EINTR);
        if (r > 0)
            return r;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return -1;
    }
    {
        int r = SSL_read(c->ssl, buf, (int)n);
        if (r > 0) {
            c->read_wants_write = 0;
            return r;
        }
        switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_READ: c->read_wants_write = 0; return 0;
        case SSL_ERROR_WANT_WRITE: c->read_wants_write = 1; return 0;
        default: ERR_clear_error(); return -1;
        }
    }
}

static ssize_t t_write(rp_conn *c, const char *buf, size_t n)
{
    if (c->ssl == NULL) {
        ssize_t w;
        do {
            w = write(c->fd, buf, n);
        } while (w < 0 && errno == EINTR);
        if (w >= 0)
            return w;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return -1;
    }
    {
        int w = SSL_write(c->ssl, buf, (int)(n > 0x7fffffff ? 0x7fffffff : n));
        if (w > 0)
            return w;
        switch (SSL_get_error(c->ssl, w)) {
        case SSL_ERROR_WANT_WRITE:
        case SSL_ERROR_WANT_READ: return 0;
        default: ERR_clear_error(); return -1;
        }
    }
}

/* ---------------------------------------------------------------- pools */

static rp_codec *codec_get(rp_http_ctx *ctx)
{
    if (ctx->ncodecs > 0)
        return ctx->codecs[--ctx->ncodecs];
    return rp_codec_create();
}

static void codec_put(rp_http_ctx *ctx, rp_codec *c)
{
    if (c == NULL)
        return;
    if (ctx->ncodecs < RP_CONN_POOL && rp_codec_idle(c)) {
        rp_codec_reset(c);
        ctx->codecs[ctx->ncodecs++] = c;
    } else
        rp_codec_free(c);
}

static rp_arena *arena_get(rp_http_ctx *ctx)
{
    if (ctx->narenas > 0)
        return ctx->arenas[--ctx->narenas];
    return rp_arena_create(RP_ARENA_BLOCK);
}

static void arena_put(rp_http_ctx *ctx, rp_arena *a)
{
    if (a == NULL)
        return;
    rp_arena_reset(a);
    if (ctx->narenas < RP_CONN_POOL)
        ctx->arenas[ctx->narenas++] = a;
    else
        rp_arena_destroy(a);
}

/* ---------------------------------------------------------------- responses */

const char *rp_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static int valid_client_request_id(rp_str v)
{
    if (v.p == NULL || v.n == 0 || v.n > 64)
        return 0;
    for (size_t i = 0; i < v.n; i++) {
        char ch = v.p[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              ch == '-'))
            return 0;
    }
    return 1;
}

/*
 * Formats status line and headers into c->out. body_len is the Content-Length to announce.
 * Returns 0 or an RP_E* code (then the connection must be closed).
 */
static int write_head(rp_conn *c, int status, const char *ctype, uint64_t body_len, int no_length)
{
    rp_buf *o = &c->out;
    rp_req *req = c->req;
    int rc;

    /* One allocation that fits the head and a small body; freed again once flushed. */
    if (o->cap == 0 && rp_buf_reserve(o, 2048) != 0)
        return RP_ENOMEM;
    if (c->ctx->draining)
        c->close_after = 1;
    if (req != NULL && req->head != NULL && !req->head->keep_alive)
        c->close_after = 1;
    /* A final answer to "Expect: 100-continue" before the body was asked for: the client may
     * never send the body, so the connection cannot be reused; say so (RFC 9110 10.1.1). */
    if (req != NULL && req->head != NULL && req->head->expect_continue && !c->sent_continue &&
        !c->end_seen)
        c->close_after = 1;
    rc = rp_buf_appendf(o, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
                        c->reason ? c->reason : rp_http_reason(status), date_now(c->ctx));
    if (rc == 0 && c->kind == RP_CONN_HTTPS)
        rc = rp_buf_append_str(o, "Strict-Transport-Security: max-age=31536000; "
                                  "includeSubDomains\r\n");
    if (rc == 0)
        rc = rp_buf_append_str(o, "X-Content-Type-Options: nosniff\r\n");
    if (rc == 0 && req != NULL) {
        rc = rp_buf_appendf(o, "x-ms-request-id: %s\r\n", req->id);
        if (rc == 0 && req->head != NULL) {
            rp_str cid = rp_req_header(req, "x-ms-client-request-id");
            if (valid_client_request_id(cid))
                rc = rp_buf_appendf(o, "x-ms-client-request-id: %.*s\r\n", (int)cid.n, cid.p);
        }
    }
    for (resp_header *h = c->rh; h != NULL && rc == 0; h = h->next)
        rc = rp_buf_appendf(o, "%s: %s\r\n", h->name, h->value);
    if (rc == 0 && ctype != NULL)
        rc = rp_buf_appendf(o, "Content-Type: %s\r\n", ctype);
    if (rc == 0 && !no_length)
        rc = rp_buf_appendf(o, "Content-Length: %llu\r\n", (unsigned long long)body_len);
    if (rc == 0 && c->close_after)
        rc = rp_buf_append_str(o, "Connection: close\r\n");
    else if (rc == 0 && req != NULL && req->head != NULL && req->head->version == 10)
        rc = rp_buf_append_str(o, "Connection: keep-alive\r\n");
    if (rc == 0)
        rc = rp_buf_append(o, "\r\n", 2);
    c->status = status;
    if (req != NULL)
        req->status = status;
    c->resp_started = 1;
    return rc;
}

/* An answer from the front door itself, outside any handler: always closes. */
static void send_raw_error(rp_conn *c, int status, const char *code, const char *msg)
{
    char body[256];
    int n;

    if (c->resp_started) {
        c->close_after = 1;
        return;
    }
    c->close_after = 1;
    n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = 0;
    c->rh = NULL;
    c->reason = NULL;
    if (write_head(c, status, "application/json; charset=utf-8", (uint64_t)n, 0) != 0 ||
        rp_buf_append(&c->out, body, (size_t)n) != 0) {
        conn_close(c);
        return;
    }
    c->bytes_out += (uint64_t)n;
    c->resp_done = 1;
}

static int is_head_req(const rp_req *req)
{
    return req->method == RP_METHOD_HEAD;
}

static void response_finished(rp_conn *c)
{
    c->resp_done = 1;
    /* A client that sent Expect: 100-continue and got a final answer may never send the body. */
    if (c->req != NULL && c->req->head != NULL && c->req->head->expect_continue &&
        !c->sent_continue && !c->end_seen)
        c->close_after = 1;
    if (!c->in_run)
        conn_run(c);
}

int rp_resp_header(rp_req *req, const char *name, const char *value)
{
    rp_conn *c = req->conn;
    resp_header *h = rp_arena_alloc(req->arena, sizeof(*h));

    if (h == NULL)
        return RP_ENOMEM;
    /* CR or LF in a header would split the response: refuse them outright. */
    if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
        return RP_EINVAL;
    h->name = rp_arena_strndup(req->arena, name, strlen(name));
    h->value = rp_arena_strndup(req->arena, value, strlen(value));
    if (h->name == NULL || h->value == NULL)
        return RP_ENOMEM;
    h->next = c->rh;
    c->rh = h;
    return 0;
}

int rp_resp_start(rp_req *req, int status, const char *content_type, int64_t len)
{
    rp_conn *c = req->conn;
    int no_content = status == 204 || status == 304;
    int rc;

    if (c->resp_started || c->state == CS_CLOSED)
        return RP_ECLOSED;
    c->stream_bodyless = is_head_req(req) || no_content;
    /* HTTP/1.0 has no chunks: an unknown length ends with the connection. */
    if (len < 0 && !c->stream_bodyless) {
        if (req->head != NULL && req->head->version == 10)
            c->close_after = 1;
        else if ((rc = rp_resp_header(req, "Transfer-Encoding", "chunked")) != 0)
            return rc;
        else
            c->chunked = 1;
    }
    if (write_head(c, status, no_content ? NULL : content_type, len >= 0 ? (uint64_t)len : 0,
                   len < 0 || no_content) != 0) {
        c->close_after = 1;
        c->resp_done = 1;
        response_finished(c);
        return RP_ENOMEM;
    }
    c->streaming = 1;
    if (!c->in_run)
        conn_run(c);
    return 0;
}

int rp_resp_write(rp_req *req, const void *data, size_t n)
{
    rp_conn *c = req->conn;
    int rc = 0;

    if (!c->streaming || c->state == CS_CLOSED)
        return RP_ECLOSED;
    if (c->stream_bodyless || n == 0)
        return 0;
    if (c->chunked)
        rc = rp_buf_appendf(&c->out, "%zx\r\n", n);
    if (rc == 0)
        rc = rp_buf_append(&c->out, data, n);
    if (rc == 0 && c->chunked)
        rc = rp_buf_append(&c->out, "\r\n", 2);
    if (rc != 0)
        return rc; /* the writer ignored RP_EAGAIN: over RP_CONN_OUT_MAX */
    c->bytes_out += n;
    if (!c->in_run)
        conn_run(c);
    return c->out.len >= RP_CONN_OUT_HIGH ? RP_EAGAIN : 0;
}

void rp_resp_on_drain(rp_req *req, void (*cb)(rp_req *req))
{
    req->conn->drain_cb = cb;
}

void rp_resp_end(rp_req *req, int complete)
{
    rp_conn *c = req->conn;

    if (!c->streaming)
        return;
    c->streaming = 0;
    c->drain_cb = NULL;
    if (!complete)
        c->close_after = 1; /* the client sees a short body, never a complete-looking one */
    else if (c->chunked && rp_buf_append(&c->out, "0\r\n\r\n", 5) != 0)
        c->close_after = 1;
    response_finished(c);
}

void rp_req_pause_body(rp_req *req, int paused)
{
    rp_conn *c = req->conn;

    c->body_paused = paused;
    if (!paused && !c->in_run && c->state != CS_CLOSED)
        conn_run(c);
}

int rp_resp_reason(rp_req *req, const char *reason)
{
    rp_conn *c = req->conn;

    /* Token characters and spaces only: a phrase must not end the status line early. */
    for (const char *p = reason; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            return RP_EINVAL;
    c->reason = rp_arena_strndup(req->arena, reason, strlen(reason));
    return c->reason != NULL ? 0 : RP_ENOMEM;
}

void rp_resp_close(rp_req *req)
{
    req->conn->close_after = 1;
}

void rp_resp_send(rp_req *req, int status, const char *content_type, const void *body, size_t len)
{
    rp_conn *c = req->conn;
    int no_content = status == 204 || status == 304;
    /* HEAD announces what GET would send; 204 and 304 have no body to describe. */
    int bodyless = is_head_req(req) || no_content;

    if (c->resp_started || c->state == CS_CLOSED)
        return;
    if (write_head(c, status, no_content ? NULL : content_type, no_content ? 0 : len, no_content) !=
            0 ||
        (!bodyless && len > 0 && rp_buf_append(&c->out, body, len) != 0)) {
        rp_log_msg(RP_LOG_ERROR, "http.response", "response too large for the output buffer");
        c->close_after = 1;
        rp_buf_reset(&c->out);
        c->resp_started = 0;
        send_raw_error(c, 500, "InternalError", "response could not be built");
        response_finished(c);
        return;
    }
    if (!bodyless)
        c->bytes_out += len;
    response_finished(c);
}

void rp_resp_json(rp_req *req, int status, json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    size_t n;

    json_decref(obj);
    if (s == NULL) {
        rp_resp_error(req, 500, "InternalError", "response could not be encoded");
        return;
    }
    n = strlen(s);
    rp_resp_send(req, status, "application/json; charset=utf-8", s, n);
    /* Answers carry secret values (Key Vault): the text is copied into the output buffer, and
     * this copy is wiped before it goes back to the heap. */
    OPENSSL_cleanse(s, n);
    free(s); /* jansson's allocator */
}

void rp_resp_error(rp_req *req, int status, const char *code, const char *message)
{
    json_t *o = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);

    if (o == NULL) {
        send_raw_error(req->conn, 500, "InternalError", "out of memory");
        response_finished(req->conn);
        return;
    }
    rp_resp_json(req, status, o);
}

void rp_resp_file(rp_req *req, int status, const char *content_type, int fd, off_t offset,
                  off_t len)
{
    rp_conn *c = req->conn;

    if (c->resp_started || c->state == CS_CLOSED) {
        close(fd);
        return;
    }
    if (write_head(c, status, content_type, (uint64_t)len, 0) != 0) {
        close(fd);
        c->close_after = 1;
        response_finished(c);
        return;
    }
    if (is_head_req(req) || len == 0) {
        close(fd);
    } else {
        c->file_fd = fd;
        c->file_off = offset;
        c->file_left = len;
        c->bytes_out += (uint64_t)len;
    }
    response_finished(c);
}

/* ---------------------------------------------------------------- requests */

uv_loop_t *rp_req_loop(const rp_req *req)
{
    return req->conn->ctx->loop;
}

rp_str rp_req_header(const rp_req *req, const char *name)
{
    const rp_header *h = req->head ? rp_http_header_find(req->head, name) : NULL;

    if (h == NULL)
        return (rp_str){NULL, 0};
    return h->value;
}

size_t rp_req_header_count(const rp_req *req, const char *name)
{
    size_t n = 0;

    for (size_t i = 0; req->head != NULL && i < req->head->nheaders; i++)
        if (rp_str_eq_nocase(req->head->headers[i].name, name))
            n++;
    return n;
}

const char *rp_req_query(const rp_req *req, const char *name)
{
    const rp_query_param *p = rp_query_find(req->query, req->nquery, name);

    return p ? p->value : NULL;
}

static void maybe_continue(rp_conn *c)
{
    const rp_http_head *h = c->req->head;

    if (h->expect_continue && !c->sent_continue && !c->resp_started && !c->end_seen) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (rp_buf_append(&c->out, cont, sizeof(cont) - 1) == 0)
            c->sent_continue = 1;
    }
}

/* The handler has chosen how to take the body: start (or finish) receiving it. */
static void body_wanted(rp_req *req, bodymode mode, rp_body_data_fn on_data, rp_body_done_fn done)
{
    rp_conn *c = req->conn;

    c->body_mode = mode;
    c->body_data = on_data;
    c->body_done = done;
    maybe_continue(c);
    if (c->end_seen && !c->body_cb_done) {
        c->body_cb_done = 1;
        done(req);
        return;
    }
    set_timeout(c, TO_BODY, c->ctx->limits.body_timeout_ms);
    if (!c->in_run)
        conn_run(c);
}

void rp_req_read_body(rp_req *req, rp_body_done_fn done)
{
    rp_buf_init(&req->body, (size_t)req->conn->body_max);
    body_wanted(req, BODY_BUFFER, NULL, done);
}

void rp_req_stream_body(rp_req *req, rp_body_data_fn on_data, rp_body_done_fn done)
{
    body_wanted(req, BODY_STREAM, on_data, done);
}

static void free_req_body(void *arg)
{
    rp_buf_free(arg);
}

static void log_access(rp_conn *c)
{
    rp_logline l;
    rp_req *r = c->req;

    if (!rp_log_access_enabled())
        return;
    rp_logline_begin_access(&l);
    rp_logline_str(&l, "id", r ? r->id : NULL);
    rp_logline_str(&l, "client", c->ip);
    if (r != NULL && r->head != NULL) {
        rp_logline_strn(&l, "host", r->host.p, r->host.n);
        rp_logline_str(&l, "method", rp_method_name(r->method));
        /* The normalised path only: query strings carry keys and signatures. */
        rp_logline_str(&l, "path", r->path ? r->path : "");
    }
    rp_logline_int(&l, "status", c->status);
    rp_logline_int(&l, "bytes", (int64_t)c->bytes_out);
    rp_logline_int(&l, "us", (int64_t)(rp_mono_us() - c->start_us));
    rp_logline_str(&l, "proto", c->kind == RP_CONN_HTTPS ? "https" : "http");
    rp_logline_end(&l);
}

static void finish_request(rp_conn *c)
{
    c->ctx->stats.requests++;
    log_access(c);
    c->req = NULL;
    c->rh = NULL;
    c->reason = NULL;
    c->streaming = c->chunked = c->stream_bodyless = c->body_paused = 0;
    c->drain_cb = NULL;
    c->resp_started = c->resp_done = c->end_seen = c->sent_continue = 0;
    c->body_mode = BODY_DISCARD;
    c->body_cb_done = 0;
    c->body_seen = 0;
    c->body_done = NULL;
    c->body_data = NULL;
    c->status = 0;
    c->bytes_out = 0;
    arena_put(c->ctx, c->arena);
    c->arena = NULL;
    if (c->ctx->draining)
        c->close_after = 1;
    if (c->close_after)
        return;
    if (c->in.len > 0) {
        set_timeout(c, TO_HEADER, c->ctx->limits.header_timeout_ms);
    } else {
        codec_put(c->ctx, c->codec);
        c->codec = NULL;
        rp_buf_free(&c->in);
        set_timeout(c, TO_IDLE, c->ctx->limits.idle_timeout_ms);
    }
}

static void redirect(rp_conn *c, rp_req *req)
{
    const rp_http_head *h = req->head;
    char loc[RP_HTTP_MAX_REQUEST_LINE + 320];
    char port[8] = "";
    /* path and query are adjacent in the target, so one span covers "path?query" */
    int pq = (int)h->path.n + (h->has_query ? 1 + (int)h->query.n : 0);
    int n;

    if (c->ctx->https_port != 443)
        snprintf(port, sizeof(port), ":%d", c->ctx->https_port);
    n = snprintf(loc, sizeof(loc), "https://%.*s%s%.*s", (int)h->host.n, h->host.p, port, pq,
                 h->path.p);
    if (n < 0 || (size_t)n >= sizeof(loc)) {
        rp_resp_error(req, 414, "UriTooLong", "request target too long");
        return;
    }
    rp_resp_header(req, "Location", loc);
    rp_resp_send(req, 301, NULL, NULL, 0);
}

/* RFC 6066 forbids IP literals in SNI; clients that send one anyway (wrk) are treated like
 * clients that send none: no name was bound to the session, so there is nothing to misdirect. */
static int is_ip_literal(const char *s)
{
    unsigned char a[16];

    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static void dispatch(rp_conn *c, rp_req *req)
{
    const rp_http_head *h = req->head;
    rp_path_status why;
    size_t plen;
    char *path;
    const rp_route *route;
    unsigned allowed;
    rp_route_result rr;
    const char *sni;

    if (c->kind == RP_CONN_REDIRECT) {
        c->body_max = RP_CONN_DISCARD_MAX;
        req->path = rp_arena_strndup(req->arena, h->path.p, h->path.n); /* for the access log */
        redirect(c, req);
        return;
    }
    c->body_max = RP_CONN_DISCARD_MAX;
    path = rp_arena_alloc(req->arena, h->path.n + 1);
    if (path == NULL) {
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    if (rp_path_normalize(h->path.p, h->path.n, path, h->path.n + 1, &plen, &why) != 0) {
        rp_resp_error(req, 400, "InvalidPath", rp_path_status_str(why));
        return;
    }
    req->path = path;
    req->path_len = plen;
    if (h->has_query) {
        int rc = rp_query_parse(req->arena, h->query.p, h->query.n, 0, &req->query, &req->nquery);
        if (rc != 0) {
            rp_resp_error(req, 400, "InvalidQuery",
                          rc == RP_ETOOBIG ? "too many query parameters" : "malformed query");
            return;
        }
    }
    /* A TLS session negotiated for one name must not be used to reach another (fronting). */
    sni = c->ssl ? rp_tls_sni(c->ssl) : NULL;
    if (sni != NULL && !rp_str_eq_nocase(req->host, sni) && !is_ip_literal(sni)) {
        rp_resp_error(req, 421, "MisdirectedRequest",
                      "the Host header does not match the TLS server name");
        return;
    }
    if (c->kind == RP_CONN_LOCAL && c->ctx->local_router == NULL) {
        rp_resp_error(req, 404, "NotFound", "no such resource");
        return;
    }
    rr = rp_router_match(c->kind == RP_CONN_LOCAL ? c->ctx->local_router : c->ctx->router,
                         req->host, path, plen, req->method, &route, &req->host_label, &allowed);
    if (rr == RP_ROUTE_NO_METHOD) {
        char allow[96];
        rp_router_allow(allowed, allow, sizeof(allow));
        rp_resp_header(req, "Allow", allow);
        rp_resp_error(req, 405, "MethodNotAllowed", "method not allowed for this resource");
        return;
    }
    if (rr != RP_ROUTE_FOUND) {
        rp_resp_error(req, 404, rr == RP_ROUTE_NO_HOST ? "HostNotFound" : "NotFound",
                      rr == RP_ROUTE_NO_HOST ? "no service answers at this host name"
                                             : "no such resource");
        return;
    }
    req->route = route;
    req->route_data = route->opts.data;
    c->body_max = route->opts.max_body;
    if (h->has_length && h->content_length > c->body_max) {
        c->close_after = 1;
        rp_resp_error(req, 413, "RequestBodyTooLarge", "request body over the limit");
        return;
    }
    route->fn(req);
}

static void start_request(rp_conn *c, const rp_http_head *h)
{
    rp_req *req;

    c->arena = arena_get(c->ctx);
    req = c->arena ? rp_arena_calloc(c->arena, sizeof(*req)) : NULL;
    if (req == NULL) {
        send_raw_error(c, 500, "InternalError", "out of memory");
        return;
    }
    c->req = req;
    c->start_us = rp_mono_us();
    req->arena = c->arena;
    req->head = h;
    req->method = h->method;
    req->host = h->host;
    req->host_label = (rp_str){"", 0};
    req->client_ip = c->ip;
    req->secure = c->kind == RP_CONN_HTTPS;
    req->conn = c;
    rp_buf_init(&req->body, 0);
    if (rp_arena_add_cleanup(c->arena, free_req_body, &req->body) != 0) {
        send_raw_error(c, 500, "InternalError", "out of memory");
        return;
    }
    make_request_id(c->ctx, req->id);
    if (h->chunked || (h->has_length && h->content_length > 0))
        set_timeout(c, TO_BODY, c->ctx->limits.body_timeout_ms);
    else
        set_timeout(c, TO_NONE, 0);
    dispatch(c, req);
    /* While the handler decides (say, an asynchronous check) the client is not the one being
     * slow: the body deadline starts again when the body is asked for. */
    if (c->req == req && body_undecided(c))
        set_timeout(c, TO_NONE, 0);
}

static void on_body_bytes(rp_conn *c, const char *data, size_t len)
{
    rp_req *req = c->req;

    c->body_seen += len;
    set_timeout(c, TO_BODY, c->ctx->limits.body_timeout_ms);
    if (c->body_seen > c->body_max) {
        /* A streamed answer is under way: the handler gets no more, the client no more of it. */
        if (c->streaming && req != NULL) {
            rp_resp_end(req, 0);
            c->body_mode = BODY_DISCARD;
            c->close_after = 1;
            return;
        }
        c->close_after = 1; /* before the answer is built, so it says "Connection: close" */
        if (!c->resp_started) {
            if (req != NULL)
                rp_resp_error(req, 413, "RequestBodyTooLarge", "request body over the limit");
            else
                send_raw_error(c, 413, "RequestBodyTooLarge", "request body over the limit");
        }
        c->close_after = 1;
        return;
    }
    /* A streamed answer may start before the body has all arrived (a proxied app echoing
     * it): the body still goes to the handler. Any other answer ends the body's use. */
    if (req == NULL || (c->resp_started && !(c->streaming && c->body_mode == BODY_STREAM)))
        return;
    if (c->body_mode == BODY_BUFFER) {
        if (rp_buf_append(&req->body, data, len) != 0) {
            c->close_after = 1;
            rp_resp_error(req, 413, "RequestBodyTooLarge", "request body over the limit");
        }
    } else if (c->body_mode == BODY_STREAM) {
        if (c->body_data(req, data, len) != 0 && !c->resp_started) {
            c->close_after = 1;
            rp_resp_error(req, 500, "InternalError", "request body could not be processed");
        }
    }
}

/*
 * A request with a body whose handler has neither asked for the body nor answered yet: its
 * bytes stay unread (in the socket or c->in) until the handler decides, so a handler that first
 * checks something asynchronously still gets the whole body.
 */
static int body_undecided(const rp_conn *c)
{
    const rp_http_head *h;

    if (c->req == NULL || c->end_seen || c->resp_started || c->body_mode != BODY_DISCARD)
        return 0;
    h = c->req->head;
    return h->chunked || (h->has_length && h->content_length > 0);
}

/* Parses as much of data as the current request allows; returns bytes consumed. */
static size_t parse(rp_conn *c, const char *data, size_t n)
{
    size_t off = 0;

    while ((!c->close_after || body_streaming_in(c)) && c->state == CS_OPEN) {
        rp_codec_event ev;
        size_t used = 0;
        rp_codec_kind k;

        /* One request at a time: wait for the answer before reading the next head. */
        if (c->req != NULL && c->end_seen)
            break;
        /* The handler cannot take more body now (its upstream is slow): keep it in c->in. */
        if (c->req != NULL && c->body_paused)
            break;
        if (body_undecided(c))
            break;
        if (c->req == NULL && c->resp_started)
            break;
        if (c->codec == NULL) {
            if (off == n)
                break;
            c->codec = codec_get(c->ctx);
            if (c->codec == NULL) {
                send_raw_error(c, 500, "InternalError", "out of memory");
                break;
            }
            /* A new request after a keep-alive pause gets a fresh head deadline; the first
             * request keeps the one set at accept, which covers the handshake too. */
            if (c->to == TO_IDLE || c->to == TO_NONE)
                set_timeout(c, TO_HEADER, c->ctx->limits.header_timeout_ms);
            c->start_us = rp_mono_us();
        }
        if (c->req == NULL && rp_codec_idle(c->codec) && off < n && c->to == TO_IDLE) {
            set_timeout(c, TO_HEADER, c->ctx->limits.header_timeout_ms);
            c->start_us = rp_mono_us();
        }
        k = rp_codec_execute(c->codec, data + off, n - off, &used, &ev);
        off += used;
        switch (k) {
        case RP_CODEC_NEED_MORE: return off;
        case RP_CODEC_HEAD: start_request(c, ev.head); break;
        case RP_CODEC_BODY: on_body_bytes(c, ev.data, ev.len); break;
        case RP_CODEC_END:
            c->end_seen = 1;
            if (c->req != NULL && c->body_done != NULL && !c->body_cb_done &&
                (!c->resp_started || (c->streaming && c->body_mode == BODY_STREAM))) {
                c->body_cb_done = 1;
                c->body_done(c->req);
            }
            if (c->req != NULL && !c->resp_done)
                set_timeout(c, TO_NONE, 0);
            break;
        case RP_CODEC_ERROR:
            c->ctx->stats.rejected++;
            if (c->req != NULL && c->resp_started) {
                c->close_after = 1;
            } else {
                send_raw_error(c, ev.status, ev.code, ev.message);
            }
            return off;
        }
    }
    return off;
}

/* Feeds freshly read bytes, keeping what cannot be parsed yet. 0 or RP_ETOOBIG. */
static int feed(rp_conn *c, const char *data, size_t n)
{
    size_t used;

    if (c->in.len > 0) {
        if (rp_buf_append(&c->in, data, n) != 0)
            return RP_ETOOBIG;
        used = parse(c, c->in.data, c->in.len);
        rp_buf_consume(&c->in, used);
        return 0;
    }
    used = parse(c, data, n);
    if (used < n && !c->close_after) {
        if (c->in.max == 0)
            rp_buf_init(&c->in, RP_CONN_IN_MAX);
        if (rp_buf_append(&c->in, data + used, n - used) != 0)
            return RP_ETOOBIG;
    }
    return 0;
}

/* ---------------------------------------------------------------- I/O driver */

/*
 * A streamed answer that is already going out while the request's body still comes in (a
 * proxied app echoing it): "close after this answer" does not mean "stop reading" yet.
 */
static int body_streaming_in(const rp_conn *c)
{
    return c->req != NULL && !c->end_seen && c->streaming && c->body_mode == BODY_STREAM;
}

static int can_read(const rp_conn *c)
{
    if (c->state != CS_OPEN || (c->close_after && !body_streaming_in(c)) || c->eof)
        return 0;
    if (c->out.len >= RP_CONN_OUT_HIGH || c->file_left > 0)
        return 0;
    /* A request waiting for its answer with the body read: do not read ahead further. */
    if (c->req != NULL && c->end_seen)
        return 0;
    if (body_undecided(c))
        return 0;
    if (c->req != NULL && c->body_paused)
        return 0;
    if (c->in.len >= RP_CONN_IN_MAX / 2)
        return 0;
    return 1;
}

/* Returns 1 on progress, 0 when blocked, -1 when the connection must close. */
static int flush_out(rp_conn *c)
{
    int progress = 0;

    for (;;) {
        if (c->out.len < RP_CONN_FILE_CHUNK && c->file_left > 0) {
            size_t want = RP_CONN_FILE_CHUNK;
            ssize_t r;
            if ((off_t)want > c->file_left)
                want = (size_t)c->file_left;
            if (rp_buf_reserve(&c->out, want) != 0)
                return -1;
            do {
                r = pread(c->file_fd, c->out.data + c->out.len, want, c->file_off);
            } while (r < 0 && errno == EINTR);
            if (r <= 0)
                return -1; /* file shrank under us: the announced length cannot be kept */
            c->out.len += (size_t)r;
            c->file_off += r;
            c->file_left -= r;
            if (c->file_left == 0) {
                close(c->file_fd);
                c->file_fd = -1;
            }
        }
        if (c->out.len == 0)
            break;
        {
            ssize_t w = t_write(c, c->out.data, c->out.len);
            if (w < 0)
                return -1;
            if (w == 0) {
                c->write_blocked = 1;
                if (c->to != TO_WRITE)
                    set_timeout(c, TO_WRITE, c->ctx->limits.write_timeout_ms);
                return progress;
            }
            c->write_blocked = 0;
            rp_buf_consume(&c->out, (size_t)w);
            progress = 1;
            if (c->to == TO_WRITE)
                set_timeout(c, TO_WRITE, c->ctx->limits.write_timeout_ms);
        }
    }
    if (c->to == TO_WRITE) {
        /* Written out; a request still owed its body goes back to the body deadline, or the
         * connection would be left with no timer at all. */
        if (c->req != NULL && !c->end_seen)
            set_timeout(c, TO_BODY, c->ctx->limits.body_timeout_ms);
        else
            c->to = TO_NONE;
    }
    if (c->out.cap > 0)
        rp_buf_free(&c->out);
    return progress;
}

static void on_poll(uv_poll_t *p, int status, int events);

static void update_poll(rp_conn *c)
{
    int ev = 0;

    if (c->state == CS_CLOSED)
        return;
    if (c->state == CS_HANDSHAKE) {
        ev = c->write_blocked ? UV_WRITABLE : UV_READABLE;
    } else if (c->state == CS_LINGER) {
        ev = UV_READABLE;
    } else {
        if (can_read(c))
            ev |= c->read_wants_write ? UV_WRITABLE : UV_READABLE;
        if (c->write_blocked)
            ev |= UV_WRITABLE;
    }
    /* Waiting for an answer: the read interest stays registered (dropping and re-adding it
     * costs two epoll_ctl calls a request) until an event actually comes while nothing may be
     * read; that event (from on_poll) removes it. */
    if (ev == 0 && c->poll_events == UV_READABLE && !c->in_event && c->state == CS_OPEN &&
        c->req != NULL)
        return;
    if (ev != c->poll_events) {
        c->poll_events = ev;
        if (ev == 0)
            uv_poll_stop(&c->poll);
        else
            uv_poll_start(&c->poll, ev, on_poll);
    }
}

static void start_linger(rp_conn *c)
{
    if (c->ssl != NULL) {
        SSL_shutdown(c->ssl); /* close_notify; the reply is not awaited */
        ERR_clear_error();
    }
    shutdown(c->fd, SHUT_WR);
    c->state = CS_LINGER;
    set_timeout(c, TO_LINGER, RP_CONN_LINGER_MS);
}

static void linger_read(rp_conn *c)
{
    char *buf = c->ctx->rbuf;

    for (int i = 0; i < 16; i++) {
        ssize_t r = read(c->fd, buf, RP_CONN_READ_BUF);
        if (r > 0)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        conn_close(c);
        return;
    }
}

static int do_handshake(rp_conn *c)
{
    int r = SSL_do_handshake(c->ssl);

    if (r == 1) {
        c->state = CS_OPEN;
        c->write_blocked = 0;
        return 1;
    }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ: c->write_blocked = 0; return 0;
    case SSL_ERROR_WANT_WRITE: c->write_blocked = 1; return 0;
    default: ERR_clear_error(); return -1;
    }
}

static void conn_run(rp_conn *c)
{
    int finished = 0, reads = 0;

    if (c->in_run) {
        c->rerun = 1;
        return;
    }
    c->in_run = 1;
    do {
        c->rerun = 0;
        if (c->state == CS_HANDSHAKE) {
            int r = do_handshake(c);
            if (r < 0) {
                c->in_run = 0;
                conn_close(c);
                return;
            }
            if (r == 0)
                break;
        }
        if (c->state == CS_LINGER) {
            linger_read(c);
            if (c->state == CS_CLOSED) {
                c->in_run = 0;
                return;
            }
            break;
        }
        if (flush_out(c) < 0) {
            c->in_run = 0;
            conn_close(c);
            return;
        }
        if (c->state == CS_CLOSED)
            break;
        if (c->drain_cb != NULL && c->streaming && c->out.len < RP_CONN_OUT_LOW) {
            void (*cb)(rp_req *) = c->drain_cb;
            c->drain_cb = NULL;
            cb(c->req);
            c->rerun = 1;
            if (c->state == CS_CLOSED)
                break;
        }
        /* The answer is out and the body is in: this request is over. */
        if (c->req != NULL && c->resp_done && c->end_seen && c->file_left == 0 && c->out.len == 0) {
            finish_request(c);
            finished = 1;
        }
        if (c->req == NULL && c->resp_done && c->close_after) {
            /* A front-door error with no request object: log it once, like any answer. */
            log_access(c);
            c->resp_done = 0;
        }
        if (c->close_after && c->out.len == 0 && c->file_left == 0 &&
            (c->req == NULL || c->resp_done)) {
            if (c->req != NULL)
                finish_request(c);
            start_linger(c);
            break;
        }
        if (c->in.len > 0 && (!c->close_after || body_streaming_in(c))) {
            /* Bytes read earlier: the next pipelined request, or a body the handler has now
             * asked for (parse stops again wherever the current request must wait). */
            size_t out_before = c->out.len;
            size_t used = parse(c, c->in.data, c->in.len);
            rp_buf_consume(&c->in, used);
            /* Go round again only on progress: a blocked write with input that must wait
             * would otherwise spin here. */
            if (used > 0 || c->out.len != out_before)
                c->rerun = 1;
        }
        /* After answering, give the other connections of this loop their turn (the poll
         * reports this socket again if more arrived), unless bytes are already buffered here
         * where no poll would see them. */
        /* A fast client streaming a large body would otherwise keep this loop to itself until
         * it stops sending; after RP_CONN_READS_PER_RUN socket reads the others get their turn
         * (the poll is level-triggered, so the rest is read on the next round). Bytes already
         * inside OpenSSL are drained first: no poll would report them. */
        if (can_read(c) && (!finished || (c->ssl != NULL && SSL_has_pending(c->ssl))) &&
            (reads++ < RP_CONN_READS_PER_RUN || (c->ssl != NULL && SSL_has_pending(c->ssl)))) {
            ssize_t r = t_read(c, c->ctx->rbuf, RP_CONN_READ_BUF);
            if (r < 0) {
                c->eof = 1;
                /* A peer that half-closes after a full request still gets its answer. */
                if ((c->req == NULL || !c->end_seen) && c->out.len == 0 && c->file_left == 0) {
                    c->in_run = 0;
                    conn_close(c);
                    return;
                }
                c->close_after = 1;
                c->rerun = 1;
            } else if (r > 0) {
                if (feed(c, c->ctx->rbuf, (size_t)r) != 0)
                    send_raw_error(c, 431, "HeadersTooLarge", "too much unparsed input");
                c->rerun = 1;
            }
        }
    } while (c->rerun && c->state != CS_CLOSED);
    c->in_run = 0;
    if (c->state == CS_CLOSED)
        return;
    if (c->state == CS_OPEN && c->req == NULL && c->to == TO_NONE && !c->close_after)
        set_timeout(c, TO_IDLE, c->ctx->limits.idle_timeout_ms);
    update_poll(c);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    rp_conn *c = p->data;

    (void)events;
    if (status < 0) {
        conn_close(c);
        return;
    }
    /* An event while no read is allowed (a request waiting for its answer) is unwanted. */
    c->in_event = c->state == CS_OPEN && !can_read(c);
    conn_run(c);
    /* conn_run may have closed it: the struct lives until its handles are closed. */
    c->in_event = 0;
}

/* ---------------------------------------------------------------- lifecycle */

static void on_handle_closed(uv_handle_t *h)
{
    rp_conn *c = h->data;
    rp_http_ctx *ctx = c->ctx;

    if (--c->open_handles > 0)
        return;
    close(c->fd);
    rp_free(c);
    if (ctx->on_closed != NULL)
        ctx->on_closed(ctx, ctx->on_closed_arg);
}

static void conn_close(rp_conn *c)
{
    rp_http_ctx *ctx = c->ctx;

    if (c->state == CS_CLOSED)
        return;
    c->state = CS_CLOSED;
    if (c->req != NULL)
        finish_request(c);
    if (c->file_fd >= 0)
        close(c->file_fd);
    c->file_fd = -1;
    arena_put(ctx, c->arena);
    c->arena = NULL;
    codec_put(ctx, c->codec);
    c->codec = NULL;
    rp_buf_free(&c->in);
    rp_buf_free(&c->out);
    SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        ctx->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ctx->nconns--;
    uv_poll_stop(&c->poll);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->poll, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

int rp_http_conn_start(rp_http_ctx *ctx, int fd, const struct sockaddr_storage *peer,
                       rp_conn_kind kind)
{
    rp_conn *c = rp_calloc(1, sizeof(*c));

    if (c == NULL) {
        close(fd);
        return RP_ENOMEM;
    }
    c->ctx = ctx;
    c->fd = fd;
    c->kind = kind;
    c->file_fd = -1;
    rp_buf_init(&c->in, RP_CONN_IN_MAX);
    rp_buf_init(&c->out, RP_CONN_OUT_MAX);
    if (peer->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)peer)->sin_addr, c->ip, sizeof(c->ip));
    else if (peer->ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)peer)->sin6_addr, c->ip, sizeof(c->ip));
    if (kind == RP_CONN_HTTPS) {
        c->ssl = rp_tls_ssl_new(ctx->tls);
        if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
            SSL_free(c->ssl);
            close(fd);
            rp_free(c);
            return RP_ECRYPTO;
        }
        SSL_set_accept_state(c->ssl);
        c->state = CS_HANDSHAKE;
    } else {
        c->state = CS_OPEN;
    }
    if (uv_poll_init(ctx->loop, &c->poll, fd) != 0 || uv_timer_init(ctx->loop, &c->timer) != 0) {
        SSL_free(c->ssl);
        close(fd);
        rp_free(c);
        return RP_EIO;
    }
    c->poll.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    c->next = ctx->conns;
    if (ctx->conns)
        ctx->conns->prev = c;
    ctx->conns = c;
    ctx->nconns++;
    ctx->stats.accepted++;
    c->poll_events = UV_READABLE;
    uv_poll_start(&c->poll, UV_READABLE, on_poll);
    set_timeout(c, TO_HEADER, ctx->limits.header_timeout_ms);
    return 0;
}

void rp_http_ctx_drain(rp_http_ctx *ctx)
{
    rp_conn *c = ctx->conns;

    ctx->draining = 1;
    while (c != NULL) {
        rp_conn *next = c->next;
        int idle = c->req == NULL && (c->codec == NULL || rp_codec_idle(c->codec)) &&
                   c->out.len == 0 && c->state != CS_HANDSHAKE;
        /* Busy ones finish their request: write_head adds "Connection: close" while draining
         * and finish_request closes them. */
        if (idle || c->state == CS_LINGER)
            conn_close(c);
        c = next;
    }
}

void rp_http_ctx_close_all(rp_http_ctx *ctx)
{
    while (ctx->conns != NULL)
        conn_close(ctx->conns);
}
