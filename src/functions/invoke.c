/*
 * invoke.c - invocation requests to a custom handler (invoke.h).
 *
 * Workload: a warm function app answers thousands of invocations a second on each loop, each a
 * small JSON envelope (the payload is the caller's, already bounded by the trigger that made
 * it) answered by a small JSON document. Connection set-up and tear-down used to be most of the
 * cost (a connect, a close and a TIME_WAIT socket per call), so connections are kept alive in a
 * per-loop-thread pool; the request is built once into one buffer and written with one
 * uv_try_write (uv_write only for what the socket does not take at once), and the answer is
 * collected whole (bounded) rather than streamed.
 *
 * Objects: an rp_invoke is one call; a conn is one TCP connection to a worker. A conn is
 * attached to exactly one rp_invoke (c->inv, inv->conn), idle in this thread's pool, or closing;
 * nothing else refers to it, and it is freed in its handle's close callback. The pool is
 * thread-local (tl_pool; one loop per thread, so no locks), like sites/proxy's: ports keep their
 * idle conns newest first (reused first, so a burst's extra connections age out), and the pool
 * keeps all of them oldest first for the idle timer and for evicting at RP_INVOKE_IDLE_MAX. An
 * empty port entry is freed at once. Idle conns go on reading (an EOF or stray bytes close
 * them) but are unreferenced, so a cache of connections never keeps a loop alive on its own.
 *
 * Lifetime of an rp_invoke: from rp_invoke_start until its timer handle is closed and no write
 * of its request is in flight on any conn (inv->writes: a conn closed mid-write still holds the
 * request buffer until libuv reports the write cancelled). The timer does three jobs in turn:
 * the connect deadline (connect_ms, or what is left of timeout_ms if that is shorter), then the
 * rest of the overall deadline, and at start a zero timeout that reports a failure that happened
 * synchronously (so the callback never runs inside rp_invoke_start). Once the callback has run or
 * the call was cancelled, `closing` is set and every libuv callback that still arrives for it
 * (a connect or write cancelled by uv_close) returns at once.
 *
 * Retry: a conn taken from the pool may have been closed by the worker just as it was taken
 * (the EOF not read yet). If it fails before any byte of the answer (EOF, ECONNRESET, EPIPE),
 * the request is sent once more on a new connection; the request buffer is kept until that can
 * no longer happen, then wiped (the payload may carry a secret) and freed (a large payload need
 * not wait for the answer).
 *
 * Answer head size: bytes are counted until the final head ends. To know exactly where it ends
 * in a read, on_headers_complete pauses the parser; llhttp_get_error_pos then points at the first
 * byte after the head, and parsing resumes from there. Interim (1xx) heads count towards the
 * same limit, so a stream of them cannot keep the call going on memory it never accounts for.
 * The end of the answer pauses the parser too, which tells whether anything followed it.
 */
#include "functions/invoke.h"
#include "http/codec.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"

#include <limits.h>
#include <llhttp.h>
#include <openssl/crypto.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_CONNECT_MS 10000
#define DEFAULT_TIMEOUT_MS 230000
#define DEFAULT_MAX_BODY   (4u << 20)
#define FIXED_HEAD_MAX     256 /* the request line and our own headers, less path and numbers */

typedef struct conn conn;
typedef struct portq portq;
typedef struct pool pool;

struct conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    rp_invoke *inv;  /* the invocation using it, or NULL (idle or closing) */
    rp_invoke *winv; /* whose request the write in flight sends, or NULL */
    int port;
    int closing;
    int reading;
    uint64_t idle_since;
    portq *q;            /* while idle */
    conn *qnext, *qprev; /* the port's idle list, newest first */
    conn *older, *younger;
};

struct portq {
    pool *pl;
    int port;
    conn *idle; /* newest first */
    size_t nidle;
    portq *next;
};

struct pool {
    uv_loop_t *loop;
    uv_timer_t timer;
    portq *ports;
    conn *oldest, *youngest;
    size_t nidle;
};

struct rp_invoke {
    uv_timer_t timer;
    uv_loop_t *loop;
    conn *conn; /* the connection in use, or NULL */
    rp_invoke_cb cb;
    void *arg;
    int port;
    int timer_open; /* the timer handle is not closed yet */
    int writes;     /* writes of req in flight, on any conn */
    int closing;    /* the callback has run or the call was cancelled */
    int deferred;   /* a failure for the timer to report, or 0 */
    int reused;     /* conn came from the pool: if it is found dead, one new one replaces it */
    int retried;    /* ... which happened already */
    int sent;       /* req went out whole on conn */
    int got_bytes;  /* something of the answer arrived on conn */
    uint64_t started;
    uint64_t connect_ms;
    uint64_t timeout_ms;
    char *req; /* the request, head and body; freed once it cannot be sent again */
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

static __thread pool *tl_pool;
/* RP_INVOKE_IDLE_MS, a variable so that the unit test can wait less than 30 s for it. */
static uint64_t idle_ms = RP_INVOKE_IDLE_MS;

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

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
                            "User-Agent: rampart-functions-host\r\n",
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

/* ---------------------------------------------------------------- connections and the pool */

static void on_conn_closed(uv_handle_t *h)
{
    rp_free(h->data);
}

static void pool_remove(conn *c)
{
    portq *q = c->q;
    pool *pl = q->pl;

    if (c->qprev != NULL)
        c->qprev->qnext = c->qnext;
    else
        q->idle = c->qnext;
    if (c->qnext != NULL)
        c->qnext->qprev = c->qprev;
    if (c->younger != NULL)
        c->younger->older = c->older;
    else
        pl->youngest = c->older;
    if (c->older != NULL)
        c->older->younger = c->younger;
    else
        pl->oldest = c->younger;
    c->qnext = c->qprev = c->older = c->younger = NULL;
    c->q = NULL;
    q->nidle--;
    pl->nidle--;
    if (q->nidle == 0) {
        for (portq **qp = &pl->ports; *qp != NULL; qp = &(*qp)->next) {
            if (*qp == q) {
                *qp = q->next;
                break;
            }
        }
        rp_free(q);
    }
}

/* Closes c for good, whatever state it is in (a no-op for NULL and the second time). A connect
 * or write still in flight is cancelled: its callback sees `closing`. */
static void conn_close(conn *c)
{
    if (c == NULL || c->closing)
        return;
    c->closing = 1;
    if (c->q != NULL)
        pool_remove(c);
    c->inv = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_pool_timer(uv_timer_t *tm)
{
    pool *pl = tm->data;
    uint64_t now = uv_now(pl->loop);

    while (pl->oldest != NULL && now - pl->oldest->idle_since >= idle_ms)
        conn_close(pl->oldest);
    if (pl->oldest != NULL)
        uv_timer_start(&pl->timer, on_pool_timer, idle_ms - (now - pl->oldest->idle_since), 0);
}

/* This thread's pool for loop, made on first use; NULL when there is none to be had (out of
 * memory, or the thread's pool belongs to another loop): then connections are not kept. */
static pool *pool_for(uv_loop_t *loop)
{
    pool *pl = tl_pool;

    if (pl != NULL)
        return pl->loop == loop ? pl : NULL;
    pl = rp_calloc(1, sizeof(*pl));
    if (pl == NULL)
        return NULL;
    if (uv_timer_init(loop, &pl->timer) != 0) {
        rp_free(pl);
        return NULL;
    }
    uv_unref((uv_handle_t *)&pl->timer); /* idle connections alone are no work to wait for */
    pl->loop = loop;
    pl->timer.data = pl;
    tl_pool = pl;
    return pl;
}

/* The newest idle connection to port, taken out of the pool and referenced again, or NULL. */
static conn *pool_take(uv_loop_t *loop, int port)
{
    pool *pl = pool_for(loop);
    conn *c;

    if (pl == NULL)
        return NULL;
    for (portq *q = pl->ports; q != NULL; q = q->next) {
        if (q->port != port)
            continue;
        c = q->idle;
        if (uv_now(loop) - c->idle_since >= idle_ms) {
            /* The timer is late (a busy loop): this one, the newest, is due, and so are the
             * others. */
            conn_close(c);
            return NULL;
        }
        pool_remove(c);
        uv_ref((uv_handle_t *)&c->tcp);
        return c;
    }
    return NULL;
}

static portq *portq_of(pool *pl, int port)
{
    portq *q;

    for (q = pl->ports; q != NULL; q = q->next)
        if (q->port == port)
            break;
    return q;
}

/* Gives c (detached, reading, no write in flight) to this thread's pool, or closes it. */
static void pool_put(conn *c)
{
    pool *pl = tl_pool;
    portq *q;

    if (c == NULL)
        return;
    /* No pool (rp_invoke_loop_stop ran since the call started), or another loop's. */
    if (pl == NULL || pl->loop != c->tcp.loop || !c->reading)
        goto fail;
    if ((q = portq_of(pl, c->port)) != NULL && q->nidle >= RP_INVOKE_IDLE_PER_PORT)
        goto fail;
    if (pl->nidle >= RP_INVOKE_IDLE_MAX) {
        conn_close(pl->oldest);
        q = portq_of(pl, c->port); /* that may have been q's last one, and q is gone */
    }
    if (q == NULL) {
        if ((q = rp_calloc(1, sizeof(*q))) == NULL)
            goto fail;
        q->pl = pl;
        q->port = c->port;
        q->next = pl->ports;
        pl->ports = q;
    }
    c->q = q;
    c->qnext = q->idle;
    if (q->idle != NULL)
        q->idle->qprev = c;
    q->idle = c;
    q->nidle++;
    c->older = pl->youngest;
    if (pl->youngest != NULL)
        pl->youngest->younger = c;
    else
        pl->oldest = c;
    pl->youngest = c;
    pl->nidle++;
    c->idle_since = uv_now(pl->loop);
    uv_unref((uv_handle_t *)&c->tcp);
    if (!uv_is_active((uv_handle_t *)&pl->timer))
        uv_timer_start(&pl->timer, on_pool_timer, idle_ms, 0);
    return;
fail:
    conn_close(c);
}

static void on_pool_closed(uv_handle_t *h)
{
    rp_free(h->data);
}

void rp_invoke_loop_stop(void)
{
    pool *pl = tl_pool;

    if (pl == NULL)
        return;
    tl_pool = NULL;
    while (pl->oldest != NULL)
        conn_close(pl->oldest);
    uv_close((uv_handle_t *)&pl->timer, on_pool_closed);
}

/* ---------------------------------------------------------------- lifetime */

/* Wipes and frees the request: its body may carry a secret (fnhost wipes its own copy too). */
static void req_free(rp_invoke *inv)
{
    if (inv->req == NULL)
        return;
    OPENSSL_cleanse(inv->req, inv->req_len);
    rp_free(inv->req);
    inv->req = NULL;
}

/* Frees inv once nothing refers to it any more: its timer is closed and no conn is still
 * writing its request. */
static void inv_release(rp_invoke *inv)
{
    if (inv->timer_open || inv->writes > 0)
        return;
    req_free(inv);
    rp_buf_free(&inv->hb);
    rp_buf_free(&inv->body);
    rp_free(inv);
}

static void on_timer_closed(uv_handle_t *h)
{
    rp_invoke *inv = h->data;

    inv->timer_open = 0;
    inv_release(inv);
}

/* 1 if inv's conn came from the pool and may be replaced once, having failed with err (a libuv
 * code) before any byte of the answer. */
static int may_retry(const rp_invoke *inv, int err)
{
    return inv->reused && !inv->retried && !inv->got_bytes &&
           (err == UV_EOF || err == UV_ECONNRESET || err == UV_EPIPE);
}

/* Frees the request as soon as it can no longer be sent again: it went out whole on the conn
 * whose answer counts (or the answer has started), and no write of it is in flight. */
static void req_done(rp_invoke *inv)
{
    if (inv->req == NULL || inv->writes > 0)
        return;
    if (!inv->closing && !inv->got_bytes && (!inv->sent || inv->reused))
        return;
    req_free(inv);
}

static conn *detach(rp_invoke *inv)
{
    conn *c = inv->conn;

    if (c != NULL)
        c->inv = NULL;
    inv->conn = NULL;
    return c;
}

/* Closes the timer and the conn still attached (a no-op the second time). */
static void inv_close(rp_invoke *inv)
{
    if (inv->closing)
        return;
    inv->closing = 1;
    conn_close(detach(inv));
    uv_timer_stop(&inv->timer);
    uv_close((uv_handle_t *)&inv->timer, on_timer_closed);
}

/* Ends the call with rc and runs the callback once. keep: the conn is in step for another
 * request and goes to the pool (first: the callback may start the next call on it). The result
 * points into inv, which lives until its timer's close callback, so past the callback's
 * return. */
static void deliver(rp_invoke *inv, int rc, int keep)
{
    rp_invoke_result res;

    if (inv->closing)
        return;
    if (keep)
        pool_put(detach(inv));
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
    req_done(inv);
    inv->cb(rc, &res, inv->arg);
}

void rp_invoke_cancel(rp_invoke *inv)
{
    if (inv != NULL) {
        inv_close(inv);
        req_done(inv);
    }
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
        /* 101 would switch protocols on a connection that only speaks request and answer. */
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
    /* Anything after the answer is ignored; pausing tells on_read where the answer ended (and
     * keeps llhttp's flags for llhttp_should_keep_alive). */
    return HPE_PAUSED;
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

static void retry(rp_invoke *inv);

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn *c = s->data;
    rp_invoke *inv = c->inv;
    int rc;

    if (c->closing || n == 0)
        return;
    if (inv == NULL) { /* idle: the worker closed it, or sent what nobody asked for */
        conn_close(c);
        return;
    }
    if (n < 0 && may_retry(inv, (int)n)) {
        retry(inv);
        return;
    }
    if (n == UV_EOF) {
        /* An answer framed by the close ends here (llhttp_finish runs on_message_complete); any
         * other answer is cut short. Either way the connection is done. */
        (void)llhttp_finish(&inv->parser);
        deliver(inv, inv->done ? 0 : RP_EIO, 0);
        return;
    }
    if (n < 0) {
        deliver(inv, RP_EIO, 0);
        return;
    }
    inv->got_bytes = 1;
    req_done(inv); /* the worker has it: it will not be sent again */
    rc = feed(inv, buf->base, (size_t)n);
    if (rc == RP_EAGAIN)
        return;
    /* In step for another request only if the answer ended by its own framing, the worker did
     * not ask to close, nothing followed it, and the whole request went out. */
    deliver(inv, rc,
            rc == 0 && llhttp_get_error_pos(&inv->parser) == buf->base + n &&
                llhttp_should_keep_alive(&inv->parser) && c->winv == NULL && inv->sent);
}

/* ---------------------------------------------------------------- the request */

static void on_timer(uv_timer_t *t)
{
    rp_invoke *inv = t->data;

    deliver(inv, inv->deferred != 0 ? inv->deferred : RP_ETIMEDOUT, 0);
}

static void on_written(uv_write_t *w, int status)
{
    conn *c = w->data;
    rp_invoke *inv = c->winv;

    c->winv = NULL;
    inv->writes--;
    if (inv->closing || c->inv != inv) {
        /* The call ended, or moved to a new connection: c is closed, and how its write went
         * no longer matters. */
        req_done(inv);
        inv_release(inv);
        return;
    }
    if (status == 0) {
        inv->sent = 1;
        req_done(inv);
        return;
    }
    /* A worker may answer (say 413) and close without reading all of the body: once its answer
     * has started, the read side decides. */
    if (inv->got_bytes)
        return;
    if (may_retry(inv, status))
        retry(inv);
    else
        deliver(inv, RP_EIO, 0);
}

/*
 * Sends inv's request on inv->conn (connected) and reads its answer. Straight to the socket
 * when it takes it all (the usual case: no write request, and the request is known to be out
 * whole before any answer can arrive), else the rest through uv_write. 0 or RP_EIO.
 */
static int send_request(rp_invoke *inv)
{
    conn *c = inv->conn;
    uv_buf_t buf = uv_buf_init(inv->req, (unsigned)inv->req_len);
    int n;

    /* Reading from the start: a worker that answers before reading the body is still heard. */
    if (!c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
            return RP_EIO;
        c->reading = 1;
    }
    n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    if (n == UV_EAGAIN)
        n = 0;
    if (n < 0)
        return RP_EIO;
    if ((size_t)n == inv->req_len) {
        inv->sent = 1;
        req_done(inv);
        return 0;
    }
    buf = uv_buf_init(inv->req + n, (unsigned)(inv->req_len - (size_t)n));
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0)
        return RP_EIO;
    c->winv = inv;
    inv->writes++;
    return 0;
}

static void on_connect(uv_connect_t *req, int status)
{
    conn *c = req->data;
    rp_invoke *inv = c->inv;
    uint64_t elapsed;

    if (c->closing) /* cancelled: status is UV_ECANCELED */
        return;
    if (status < 0) {
        deliver(inv, RP_EIO, 0);
        return;
    }
    elapsed = uv_now(inv->loop) - inv->started;
    if (elapsed >= inv->timeout_ms) {
        deliver(inv, RP_ETIMEDOUT, 0);
        return;
    }
    uv_timer_start(&inv->timer, on_timer, inv->timeout_ms - elapsed, 0);
    /* A request's last segment must not wait for the ACK of the one before. */
    (void)uv_tcp_nodelay(&c->tcp, 1);
    if (send_request(inv) != 0)
        deliver(inv, RP_EIO, 0);
}

/* Attaches c (zeroed memory, rp_calloc'd) to inv as a new connection and starts connecting it.
 * 0, or RP_EIO when that failed at once (c is freed, or stays attached for inv_close). */
static int connect_new(rp_invoke *inv, conn *c)
{
    struct sockaddr_in addr;

    inv->reused = 0;
    inv->sent = 0;
    if (uv_tcp_init(inv->loop, &c->tcp) != 0) {
        rp_free(c);
        return RP_EIO;
    }
    c->tcp.data = c;
    c->connect.data = c;
    c->write.data = c;
    c->port = inv->port;
    c->inv = inv;
    inv->conn = c;
    uv_ip4_addr("127.0.0.1", inv->port, &addr);
    if (uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&addr, on_connect) != 0)
        return RP_EIO; /* no socket, say */
    return 0;
}

/* The connect deadline: connect_ms, or what is left of the whole call if that is less. */
static uint64_t connect_deadline(const rp_invoke *inv)
{
    uint64_t elapsed = uv_now(inv->loop) - inv->started;
    uint64_t left = elapsed < inv->timeout_ms ? inv->timeout_ms - elapsed : 0;

    return inv->connect_ms < left ? inv->connect_ms : left;
}

/*
 * inv's conn came from the pool and turned out dead before any byte of the answer: the worker
 * closed it (its keep-alive timeout, a restart) as it was taken. The request is whole in memory
 * and the worker has answered none of it, so it goes once more on a new connection.
 */
static void retry(rp_invoke *inv)
{
    conn *c = rp_calloc(1, sizeof(*c));

    inv->retried = 1;
    conn_close(detach(inv));
    if (c == NULL) {
        deliver(inv, RP_ENOMEM, 0);
        return;
    }
    if (connect_new(inv, c) != 0) {
        deliver(inv, RP_EIO, 0);
        return;
    }
    uv_timer_start(&inv->timer, on_timer, connect_deadline(inv), 0);
}

int rp_invoke_start(uv_loop_t *loop, const rp_invoke_opts *o, rp_invoke_cb cb, void *arg,
                    rp_invoke **out)
{
    rp_invoke *inv = NULL;
    conn *c;
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
    inv->port = o->port;
    inv->timeout_ms = o->timeout_ms != 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    inv->connect_ms = o->connect_ms != 0 ? o->connect_ms : DEFAULT_CONNECT_MS;
    rp_buf_init(&inv->hb, RP_INVOKE_HEAD_MAX + 2 * RP_INVOKE_HEADERS);
    rp_buf_init(&inv->body, o->max_body != 0 ? o->max_body : DEFAULT_MAX_BODY);
    llhttp_init(&inv->parser, HTTP_RESPONSE, &parser_settings);
    inv->parser.data = inv;
    /* The last step that can fail synchronously: from here on failures reach the callback. */
    if (uv_timer_init(loop, &inv->timer) != 0) {
        rc = RP_ENOMEM;
        goto fail;
    }
    inv->timer.data = inv;
    inv->timer_open = 1;
    inv->started = uv_now(loop);
    if ((c = pool_take(loop, o->port)) != NULL) {
        c->inv = inv;
        inv->conn = c;
        inv->reused = 1;
        if (send_request(inv) == 0) {
            uv_timer_start(&inv->timer, on_timer, inv->timeout_ms, 0);
            goto out;
        }
        conn_close(detach(inv)); /* nothing went out on it: a new one, as if it was not there */
    }
    if ((c = rp_calloc(1, sizeof(*c))) == NULL) {
        /* Nothing started after all; the timer's close callback frees inv. */
        inv->closing = 1;
        uv_close((uv_handle_t *)&inv->timer, on_timer_closed);
        return RP_ENOMEM;
    }
    if (connect_new(inv, c) != 0)
        inv->deferred = RP_EIO; /* reported from the loop */
    uv_timer_start(&inv->timer, on_timer, inv->deferred != 0 ? 0 : connect_deadline(inv), 0);
out:
    if (out != NULL)
        *out = inv;
    return 0;
fail:
    req_free(inv);
    rp_free(inv);
    return rc;
}
