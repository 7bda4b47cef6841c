/*
 * invoke.c - one invocation request to a custom handler (invoke.h).
 *
 * Workload: one short-lived loopback connection per function invocation; the request is a small
 * JSON envelope (the payload is the caller's, already bounded by the trigger that made it) and
 * the answer a small JSON document. So the request is built once into one buffer and written
 * with one uv_write, and the answer is collected whole (bounded) rather than streamed.
 *
 * Lifetime: an rp_invoke lives from rp_invoke_start until the close callback of the last of its
 * two handles (the TCP handle and one timer). The timer does three jobs in turn: the connect
 * deadline (connect_ms, or timeout_ms if that is shorter), then the rest of the overall deadline,
 * and at start a zero timeout that reports a failure uv_tcp_connect returned synchronously (so
 * the callback never runs inside rp_invoke_start). Once the callback has run or the call was
 * cancelled, `closing` is set and every libuv callback that still arrives (a connect or write
 * request cancelled by uv_close) returns at once; memory is freed only in the last close
 * callback, which libuv runs after those request callbacks.
 *
 * Answer head size: bytes are counted until the final head ends. To know exactly where it ends
 * in a read, on_headers_complete pauses the parser; llhttp_get_error_pos then points at the first
 * byte after the head, and parsing resumes from there. Interim (1xx) heads count towards the
 * same limit, so a stream of them cannot keep the call going on memory it never accounts for.
 */
#include "functions/invoke.h"
#include "http/codec.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"

#include <limits.h>
#include <llhttp.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_CONNECT_MS 10000
#define DEFAULT_TIMEOUT_MS 230000
#define DEFAULT_MAX_BODY   (4u << 20)
#define FIXED_HEAD_MAX     256 /* the request line and our own headers, less path and numbers */

struct rp_invoke {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    uv_write_t write;
    uv_loop_t *loop;
    rp_invoke_cb cb;
    void *arg;
    int nopen;    /* handles not closed yet: the last close callback frees */
    int tcp_open; /* tcp was initialised (and must be closed) */
    int closing;  /* the callback has run or the call was cancelled */
    int deferred; /* a failure for the timer to report, or 0 */
    int writing;  /* the request's write is in flight */
    int got_bytes;
    uint64_t started;
    uint64_t timeout_ms;
    char *req; /* the request, head and body; freed once written */
    size_t req_len;

    llhttp_t parser;
    int err;        /* what a parser callback failed with, or 0 */
    int got_head;   /* the final (non-1xx) head is complete */
    int head_pause; /* on_headers_complete paused the parser */
    int done;       /* the answer is complete */
    int status;
    size_t head_bytes;    /* bytes of answer heads so far */
    size_t trailer_bytes; /* bytes of chunked trailers, which are not kept */
    rp_buf hb;            /* kept headers: "name\0value\0" each, at name[i] and value[i] */
    int in_field;         /* a header name is being received */
    int keep;             /* ... and it is kept (one of the first RP_INVOKE_HEADERS) */
    uint32_t name[RP_INVOKE_HEADERS], value[RP_INVOKE_HEADERS];
    size_t nh;
    rp_buf body;
};

/* ---------------------------------------------------------------- validation */

/* Names this module sends itself, and hop-by-hop ones: a second copy from the caller would make
 * the framing ambiguous to the worker (two Content-Lengths) or change the connection's fate. */
static int reserved_name(const char *name)
{
    static const char *const own[] = {
        "host",       "content-type", "content-length", "transfer-encoding",
        "connection", "user-agent",   "keep-alive",     "proxy-connection",
        "te",         "trailer",      "upgrade",        "expect"};

    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (strcasecmp(name, own[i]) == 0)
            return 1;
    return 0;
}

static int extra_ok(const rp_invoke_header *x)
{
    if (x->name == NULL || x->value == NULL || x->name[0] == '\0')
        return 0;
    for (const char *s = x->name; *s; s++)
        if (!rp_http_tchar((unsigned char)*s))
            return 0;
    /* RFC 9110 field-value: no control bytes but HTAB (CR or LF would split the header). */
    for (const char *s = x->value; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return 0;
    return !reserved_name(x->name);
}

/* 0 if o describes a request that can be sent as it is, else RP_EINVAL. */
static int opts_ok(const rp_invoke_opts *o)
{
    size_t n;

    if (o->port < 1 || o->port > 65535 || o->path == NULL || o->path[0] != '/')
        return RP_EINVAL;
    /* Visible ASCII only: anything else would end or corrupt the request line. */
    for (n = 0; o->path[n] != '\0'; n++) {
        if (n + 1 >= RP_INVOKE_PATH_MAX)
            return RP_EINVAL;
        if ((unsigned char)o->path[n] < 0x21 || (unsigned char)o->path[n] > 0x7e)
            return RP_EINVAL;
    }
    if (o->body == NULL && o->body_len > 0)
        return RP_EINVAL;
    if (o->nextra > RP_INVOKE_EXTRA_MAX || (o->nextra > 0 && o->extra == NULL))
        return RP_EINVAL;
    for (size_t i = 0; i < o->nextra; i++)
        if (!extra_ok(&o->extra[i]))
            return RP_EINVAL;
    return 0;
}

/* Builds inv->req. 0, RP_ENOMEM, or RP_EINVAL when it would not fit one uv_buf_t. */
static int build_request(rp_invoke *inv, const rp_invoke_opts *o)
{
    size_t max = FIXED_HEAD_MAX + strlen(o->path);
    rp_buf b;
    int rc;

    for (size_t i = 0; i < o->nextra; i++) {
        /* Each header is "name: value\r\n". */
        if (rp_size_add(max, strlen(o->extra[i].name), &max) != 0 ||
            rp_size_add(max, strlen(o->extra[i].value) + 4, &max) != 0)
            return RP_EINVAL;
    }
    if (rp_size_add(max, o->body_len, &max) != 0 || max > UINT_MAX)
        return RP_EINVAL;
    rp_buf_init(&b, max);
    rc = rp_buf_reserve(&b, max); /* the bound is close to the size: one allocation */
    if (rc == 0)
        rc = rp_buf_appendf(&b,
                            "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                            "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                            "Connection: close\r\nUser-Agent: rampart-functions-host\r\n",
                            o->path, o->port, o->body_len);
    for (size_t i = 0; rc == 0 && i < o->nextra; i++)
        rc = rp_buf_appendf(&b, "%s: %s\r\n", o->extra[i].name, o->extra[i].value);
    if (rc == 0)
        rc = rp_buf_append(&b, "\r\n", 2);
    if (rc == 0 && o->body_len > 0)
        rc = rp_buf_append(&b, o->body, o->body_len);
    if (rc != 0) {
        rp_buf_free(&b);
        return rc == RP_ENOMEM ? RP_ENOMEM : RP_EINVAL;
    }
    inv->req = b.data; /* the buffer's memory, now inv's */
    inv->req_len = b.len;
    return 0;
}

/* ---------------------------------------------------------------- lifetime */

static void on_closed(uv_handle_t *h)
{
    rp_invoke *inv = h->data;

    if (--inv->nopen > 0)
        return;
    rp_free(inv->req);
    rp_buf_free(&inv->hb);
    rp_buf_free(&inv->body);
    rp_free(inv);
}

/* Closes both handles (a no-op the second time); cancels what libuv still has in flight. */
static void inv_close(rp_invoke *inv)
{
    if (inv->closing)
        return;
    inv->closing = 1;
    uv_timer_stop(&inv->timer);
    uv_close((uv_handle_t *)&inv->timer, on_closed);
    if (inv->tcp_open)
        uv_close((uv_handle_t *)&inv->tcp, on_closed);
}

/* Ends the call with rc and runs the callback once. The result points into inv, which lives
 * until the close callbacks, so past the callback's return. */
static void deliver(rp_invoke *inv, int rc)
{
    rp_invoke_result res;

    if (inv->closing)
        return;
    memset(&res, 0, sizeof(res));
    if (rc == 0) {
        res.status = inv->status;
        if (inv->body.len > 0) {
            res.body = inv->body.data;
            res.body_len = inv->body.len;
        }
        for (size_t i = 0; i < inv->nh; i++) {
            res.headers[i].name = inv->hb.data + inv->name[i];
            res.headers[i].value = inv->hb.data + inv->value[i];
        }
        res.nheaders = inv->nh;
    }
    inv_close(inv);
    inv->cb(rc, &res, inv->arg);
}

void rp_invoke_cancel(rp_invoke *inv)
{
    if (inv != NULL)
        inv_close(inv);
}

/* ---------------------------------------------------------------- the answer */

static int fail_cb(rp_invoke *inv, int rc)
{
    inv->err = rc;
    return -1;
}

/* Trailer fields (after a chunked body) are parsed but not kept; they are bounded like a head. */
static int trailer(rp_invoke *inv, size_t n)
{
    inv->trailer_bytes += n;
    return inv->trailer_bytes > RP_INVOKE_HEAD_MAX ? fail_cb(inv, RP_ETOOBIG) : 0;
}

static int on_hfield(llhttp_t *l, const char *at, size_t n)
{
    rp_invoke *inv = l->data;
    int rc = 0;

    if (inv->got_head)
        return trailer(inv, n);
    if (!inv->in_field) {
        inv->in_field = 1;
        inv->keep = inv->nh < RP_INVOKE_HEADERS;
        if (inv->keep)
            inv->name[inv->nh] = (uint32_t)inv->hb.len;
    }
    for (size_t i = 0; rc == 0 && inv->keep && i < n; i++)
        rc = rp_buf_push(&inv->hb, rp_lower(at[i]));
    return rc == 0 ? 0 : fail_cb(inv, rc);
}

static int on_hfield_done(llhttp_t *l)
{
    rp_invoke *inv = l->data;
    int rc;

    if (inv->got_head || !inv->in_field)
        return 0;
    inv->in_field = 0;
    if (!inv->keep)
        return 0;
    if ((rc = rp_buf_push(&inv->hb, '\0')) != 0)
        return fail_cb(inv, rc);
    inv->value[inv->nh] = (uint32_t)inv->hb.len;
    return 0;
}

static int on_hvalue(llhttp_t *l, const char *at, size_t n)
{
    rp_invoke *inv = l->data;
    int rc;

    if (inv->got_head)
        return trailer(inv, n);
    if (!inv->keep || (rc = rp_buf_append(&inv->hb, at, n)) == 0)
        return 0;
    return fail_cb(inv, rc);
}

static int on_hvalue_done(llhttp_t *l)
{
    rp_invoke *inv = l->data;
    int rc;

    if (inv->got_head || !inv->keep)
        return 0;
    inv->keep = 0;
    if ((rc = rp_buf_push(&inv->hb, '\0')) != 0)
        return fail_cb(inv, rc);
    inv->nh++;
    return 0;
}

static int on_headers_complete(llhttp_t *l)
{
    rp_invoke *inv = l->data;
    int rc;

    if (l->status_code < 200) {
        /* 101 would switch protocols on a connection that only speaks this one request. */
        if (l->status_code == 101)
            return fail_cb(inv, RP_EPARSE);
        /* An interim answer: its headers are not the answer's. */
        rp_buf_reset(&inv->hb);
        inv->nh = 0;
        inv->in_field = inv->keep = 0;
        return 0;
    }
    inv->status = l->status_code;
    inv->got_head = 1;
    if ((l->flags & F_CONTENT_LENGTH) && !(l->flags & F_CHUNKED) && l->content_length > 0) {
        /* Refused before a byte of it arrives; otherwise room for all of it, once. */
        if (l->content_length > inv->body.max)
            return fail_cb(inv, RP_ETOOBIG);
        if ((rc = rp_buf_reserve(&inv->body, (size_t)l->content_length)) != 0)
            return fail_cb(inv, rc);
    }
    inv->head_pause = 1; /* feed() measures the head, then resumes */
    return HPE_PAUSED;
}

static int on_body(llhttp_t *l, const char *at, size_t n)
{
    rp_invoke *inv = l->data;
    int rc = rp_buf_append(&inv->body, at, n);

    return rc == 0 ? 0 : fail_cb(inv, rc);
}

static int on_message_complete(llhttp_t *l)
{
    rp_invoke *inv = l->data;

    if (!inv->got_head) /* the end of an interim answer: the final one follows */
        return 0;
    inv->done = 1;
    return HPE_PAUSED; /* anything after the answer is ignored */
}

static const llhttp_settings_t parser_settings = {
    .on_header_field = on_hfield,
    .on_header_value = on_hvalue,
    .on_header_field_complete = on_hfield_done,
    .on_header_value_complete = on_hvalue_done,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Parses len bytes of the answer: 0 (the answer is complete), RP_EAGAIN (more is needed), or
 * the error that ends the call. */
static int feed(rp_invoke *inv, const char *data, size_t len)
{
    int had_head = inv->got_head;
    llhttp_errno_t e = llhttp_execute(&inv->parser, data, len);

    if (!had_head && inv->head_pause && e == HPE_PAUSED) {
        const char *pos = llhttp_get_error_pos(&inv->parser);

        inv->head_pause = 0;
        inv->head_bytes += (size_t)(pos - data);
        if (inv->head_bytes > RP_INVOKE_HEAD_MAX)
            return RP_ETOOBIG;
        llhttp_resume(&inv->parser);
        /* Even with no bytes left: a body-less answer completes on this call. */
        e = llhttp_execute(&inv->parser, pos, (size_t)(data + len - pos));
    } else if (!had_head && e == HPE_OK) {
        inv->head_bytes += len; /* all of it head, which continues */
        if (inv->head_bytes > RP_INVOKE_HEAD_MAX)
            return RP_ETOOBIG;
    }
    if (inv->done)
        return 0;
    if (inv->err != 0)
        return inv->err;
    return e == HPE_OK ? RP_EAGAIN : RP_EPARSE;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    /* Everything read is parsed (and what is kept, copied) before the next read. */
    static __thread char chunk[65536];

    (void)h;
    (void)hint;
    *buf = uv_buf_init(chunk, sizeof(chunk));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    rp_invoke *inv = s->data;
    int rc;

    if (inv->closing || n == 0)
        return;
    if (n == UV_EOF) {
        /* An answer framed by the close ends here (llhttp_finish runs on_message_complete); any
         * other answer is cut short. */
        (void)llhttp_finish(&inv->parser);
        deliver(inv, inv->done ? 0 : RP_EIO);
        return;
    }
    if (n < 0) {
        deliver(inv, RP_EIO);
        return;
    }
    inv->got_bytes = 1;
    rc = feed(inv, buf->base, (size_t)n);
    if (rc != RP_EAGAIN)
        deliver(inv, rc);
}

/* ---------------------------------------------------------------- the request */

static void on_timer(uv_timer_t *t)
{
    rp_invoke *inv = t->data;

    deliver(inv, inv->deferred != 0 ? inv->deferred : RP_ETIMEDOUT);
}

static void on_written(uv_write_t *w, int status)
{
    rp_invoke *inv = w->data;

    inv->writing = 0;
    rp_free(inv->req); /* libuv is done with it; a large payload need not wait for the answer */
    inv->req = NULL;
    if (inv->closing)
        return;
    /* A worker may answer (say 413) and close without reading all of the body: once its answer
     * has started, the read side decides. */
    if (status < 0 && !inv->got_bytes)
        deliver(inv, RP_EIO);
}

static void on_connect(uv_connect_t *c, int status)
{
    rp_invoke *inv = c->data;
    uint64_t elapsed;
    uv_buf_t buf;

    if (inv->closing) /* cancelled: status is UV_ECANCELED */
        return;
    if (status < 0) {
        deliver(inv, RP_EIO);
        return;
    }
    elapsed = uv_now(inv->loop) - inv->started;
    if (elapsed >= inv->timeout_ms) {
        deliver(inv, RP_ETIMEDOUT);
        return;
    }
    uv_timer_start(&inv->timer, on_timer, inv->timeout_ms - elapsed, 0);
    /* Reading from the start: a worker that answers before reading the body is still heard. */
    if (uv_read_start((uv_stream_t *)&inv->tcp, on_alloc, on_read) != 0) {
        deliver(inv, RP_EIO);
        return;
    }
    buf = uv_buf_init(inv->req, (unsigned)inv->req_len);
    if (uv_write(&inv->write, (uv_stream_t *)&inv->tcp, &buf, 1, on_written) != 0) {
        deliver(inv, RP_EIO);
        return;
    }
    inv->writing = 1;
}

int rp_invoke_start(uv_loop_t *loop, const rp_invoke_opts *o, rp_invoke_cb cb, void *arg,
                    rp_invoke **out)
{
    rp_invoke *inv = NULL;
    uint64_t connect_ms;
    struct sockaddr_in addr;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (loop == NULL || o == NULL || cb == NULL || opts_ok(o) != 0)
        return RP_EINVAL;
    inv = rp_calloc(1, sizeof(*inv));
    if (inv == NULL)
        return RP_ENOMEM;
    if ((rc = build_request(inv, o)) != 0)
        goto fail;
    inv->loop = loop;
    inv->cb = cb;
    inv->arg = arg;
    inv->timeout_ms = o->timeout_ms != 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    connect_ms = o->connect_ms != 0 ? o->connect_ms : DEFAULT_CONNECT_MS;
    rp_buf_init(&inv->hb, RP_INVOKE_HEAD_MAX + 2 * RP_INVOKE_HEADERS);
    rp_buf_init(&inv->body, o->max_body != 0 ? o->max_body : DEFAULT_MAX_BODY);
    llhttp_init(&inv->parser, HTTP_RESPONSE, &parser_settings);
    inv->parser.data = inv;
    inv->connect.data = inv;
    inv->write.data = inv;
    /* The last step that can fail synchronously: from here on failures reach the callback. */
    if (uv_timer_init(loop, &inv->timer) != 0) {
        rc = RP_ENOMEM;
        goto fail;
    }
    inv->timer.data = inv;
    inv->nopen = 1;
    inv->started = uv_now(loop);
    if (uv_tcp_init(loop, &inv->tcp) == 0) {
        inv->tcp.data = inv;
        inv->tcp_open = 1;
        inv->nopen++;
        uv_ip4_addr("127.0.0.1", o->port, &addr);
        if (uv_tcp_connect(&inv->connect, &inv->tcp, (const struct sockaddr *)&addr, on_connect) !=
            0)
            inv->deferred = RP_EIO; /* no socket, say: reported from the loop */
    } else {
        inv->deferred = RP_EIO;
    }
    uv_timer_start(
        &inv->timer, on_timer,
        inv->deferred != 0 ? 0 : (connect_ms < inv->timeout_ms ? connect_ms : inv->timeout_ms), 0);
    if (out != NULL)
        *out = inv;
    return 0;
fail:
    rp_free(inv->req);
    rp_free(inv);
    return rc;
}
