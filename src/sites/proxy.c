/*
 * proxy.c - reverse proxy to an app process (proxy.h).
 *
 * Two objects. A px is one proxied request; an up is one upstream connection (TCP to loopback
 * or a unix socket). An up is attached to exactly one px (u->p, p->u), idle in this thread's
 * pool, "parked" (the answer is complete but a write is still in flight: it joins the pool when
 * the write completes), or closing. Nothing else refers to it.
 *
 * Lifetime: a px lives from rp_proxy_forward until its timer handle is closed; px_close closes
 * the up it still holds (an up is only given back to the pool by finish(), which detaches it
 * first). px->req is cleared by the request's arena cleanup when the client goes away; from
 * then on px only closes itself. An up lives until its handle is closed. Both are freed in
 * close callbacks, never synchronously: the request side can call back into px_close from
 * inside the parser's callbacks.
 *
 * The pool is per loop thread (tl_pool): one loop per thread, so no locks. Targets are keyed by
 * port or unix path; each keeps its idle ups newest first (reused first, so a burst's extra
 * connections age out), and the pool keeps all idle ups oldest first for the idle timer and
 * for evicting when RP_PROXY_IDLE_MAX is reached. An empty target is freed at once, so the
 * list stays as short as the set of apps with idle connections.
 */
#include "sites/proxy.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/file.h"
#include "base/str.h"

#include <llhttp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <uv.h>

#define UP_PAUSE         (1u << 20) /* queued bytes towards the app that pause the client's body */
#define UP_RESUME        (256u << 10) /* ... and resume it */
#define MAX_RESP_HEADERS 100
#define RETRY_MS         100         /* between connection attempts while the app starts */
#define HOLD_MAX         (16u << 10) /* body bytes held back to send a small answer whole */
#define BODY_REUSE_MS    2000        /* a request with a body reuses connections idle for less */

typedef struct px px;
typedef struct up up;
typedef struct target target;
typedef struct pool pool;

struct up {
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } io;
    uv_connect_t connect;
    px *p; /* the request using it, or NULL */
    int port;
    char *path; /* the unix socket, or NULL for TCP */
    int closing;
    int reading;
    int writes; /* writes in flight */
    int parked; /* join the pool when the last write completes */
    uint64_t idle_since;
    target *t;           /* while idle */
    up *tnext, *tprev;   /* the target's idle list, newest first */
    up *older, *younger; /* the pool's idle list */
};

struct target {
    pool *pl;
    int port;
    char *path;
    up *idle; /* newest first */
    size_t nidle;
    target *next;
};

struct pool {
    uv_loop_t *loop;
    uv_timer_t timer;
    target *targets;
    up *oldest, *youngest;
    size_t nidle;
};

struct px {
    rp_req *req;
    px **slot;
    up *u;
    uv_timer_t timer;
    uv_loop_t *loop;
    int closing;
    uint64_t response_ms; /* the target's, or RP_PROXY_RESPONSE_MS */
    int port;
    char *path;
    char *head; /* the request head for the app, built once (a retry sends it again) */
    size_t head_len;
    uint64_t started; /* ms, this connection attempt window's start */
    int reused;       /* u came from the pool */
    int retried;      /* a dead reused connection was replaced once already */
    int got_bytes;    /* something of the answer arrived on u */
    int body_asked;   /* rp_req_stream_body was called */
    int body_sent;    /* body bytes went out: the request can no longer be sent again */
    int req_done;     /* the client's whole body has been passed on */
    int chunked_up;   /* the body goes to the app in chunks */
    int body_paused;  /* the client's body is paused for us */
    int read_paused;  /* stopped reading u until the client drains */
    int started_resp;
    int done;
    int got_head;
    int head_only; /* answering HEAD: no body follows the head */
    int pending;   /* the head is parsed, not yet passed on (see on_headers_complete) */
    const char *ctype;
    int64_t resp_len; /* the app's Content-Length, or -1 */
    rp_buf early;     /* the body held back meanwhile */
    llhttp_t parser;
    int status;
    rp_buf hb;    /* the app's header fields: "name\0value\0" each, at name[i] and value[i] */
    int in_field; /* a name is being received */
    uint32_t name[MAX_RESP_HEADERS], value[MAX_RESP_HEADERS];
    size_t nh;
    size_t head_bytes;
};

typedef struct wreq {
    uv_write_t w;
    up *u;
    size_t len;
    char data[];
} wreq;

static __thread pool *tl_pool;

static void px_close(px *p);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);

/* ---------------------------------------------------------------- upstream connections */

static void on_up_closed(uv_handle_t *h)
{
    up *u = h->data;

    rp_free(u->path);
    rp_free(u);
}

/* A new, unconnected up for port or path (copied). NULL when out of memory or handles. */
static up *up_new(uv_loop_t *loop, int port, const char *path)
{
    up *u = rp_calloc(1, sizeof(*u));

    if (u == NULL)
        return NULL;
    if (path != NULL && (u->path = rp_strdup(path)) == NULL)
        goto fail;
    if ((path != NULL ? uv_pipe_init(loop, &u->io.pipe, 0) : uv_tcp_init(loop, &u->io.tcp)) != 0)
        goto fail;
    u->io.h.data = u;
    u->connect.data = u;
    u->port = port;
    return u;
fail:
    rp_free(u->path);
    rp_free(u);
    return NULL;
}

static void pool_remove(up *u)
{
    target *t = u->t;
    pool *pl = t->pl;

    if (u->tprev != NULL)
        u->tprev->tnext = u->tnext;
    else
        t->idle = u->tnext;
    if (u->tnext != NULL)
        u->tnext->tprev = u->tprev;
    if (u->younger != NULL)
        u->younger->older = u->older;
    else
        pl->youngest = u->older;
    if (u->older != NULL)
        u->older->younger = u->younger;
    else
        pl->oldest = u->younger;
    u->tnext = u->tprev = u->older = u->younger = NULL;
    u->t = NULL;
    t->nidle--;
    pl->nidle--;
    if (t->nidle == 0) {
        for (target **tp = &pl->targets; *tp != NULL; tp = &(*tp)->next) {
            if (*tp == t) {
                *tp = t->next;
                break;
            }
        }
        rp_free(t->path);
        rp_free(t);
    }
}

/* Closes u for good, whatever state it is in (a no-op the second time). */
static void up_close(up *u)
{
    if (u == NULL || u->closing)
        return;
    u->closing = 1;
    if (u->t != NULL)
        pool_remove(u);
    u->p = NULL;
    uv_close(&u->io.h, on_up_closed);
}

static int same_target(int port, const char *path, int tport, const char *tpath)
{
    if (path != NULL || tpath != NULL)
        return path != NULL && tpath != NULL && strcmp(path, tpath) == 0;
    return port == tport;
}

static void on_pool_timer(uv_timer_t *tm)
{
    pool *pl = tm->data;
    uint64_t now = uv_now(pl->loop);

    while (pl->oldest != NULL && now - pl->oldest->idle_since >= RP_PROXY_IDLE_MS)
        up_close(pl->oldest);
    if (pl->oldest != NULL)
        uv_timer_start(&pl->timer, on_pool_timer, RP_PROXY_IDLE_MS - (now - pl->oldest->idle_since),
                       0);
}

/* This thread's pool for loop, made on first use; NULL when there is none to be had. */
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
    pl->loop = loop;
    pl->timer.data = pl;
    tl_pool = pl;
    return pl;
}

/* The newest idle connection to the target if it has been idle for less than max_ms, taken out
 * of the pool, or NULL. */
static up *pool_take(uv_loop_t *loop, int port, const char *path, uint64_t max_ms)
{
    pool *pl = pool_for(loop);
    up *u;

    if (pl == NULL)
        return NULL;
    for (target *t = pl->targets; t != NULL; t = t->next) {
        if (same_target(port, path, t->port, t->path)) {
            u = t->idle;
            if (uv_now(loop) - u->idle_since >= max_ms)
                return NULL;
            pool_remove(u);
            return u;
        }
    }
    return NULL;
}

static target *target_of(pool *pl, const up *u)
{
    target *t;

    for (t = pl->targets; t != NULL; t = t->next)
        if (same_target(u->port, u->path, t->port, t->path))
            break;
    return t;
}

/* Gives u (detached from any px, no writes in flight) to the pool, or closes it. */
static void pool_put(up *u)
{
    pool *pl = tl_pool;
    target *t = NULL;

    if (pl == NULL || pl->loop != u->io.h.loop)
        goto fail;
    if ((t = target_of(pl, u)) != NULL && t->nidle >= RP_PROXY_IDLE_PER_TARGET)
        goto fail;
    /* Still reading: an idle connection's EOF or stray bytes make the pool drop it. */
    if (!u->reading) {
        if (uv_read_start(&u->io.s, on_alloc, on_read) != 0)
            goto fail;
        u->reading = 1;
    }
    if (pl->nidle >= RP_PROXY_IDLE_MAX) {
        up_close(pl->oldest);
        t = target_of(pl, u); /* that may have been t's last one, and t is gone */
    }
    if (t == NULL) {
        t = rp_calloc(1, sizeof(*t));
        if (t == NULL || (u->path != NULL && (t->path = rp_strdup(u->path)) == NULL)) {
            rp_free(t);
            goto fail;
        }
        t->pl = pl;
        t->port = u->port;
        t->next = pl->targets;
        pl->targets = t;
    }
    u->t = t;
    u->tnext = t->idle;
    if (t->idle != NULL)
        t->idle->tprev = u;
    t->idle = u;
    t->nidle++;
    u->older = pl->youngest;
    if (pl->youngest != NULL)
        pl->youngest->younger = u;
    else
        pl->oldest = u;
    pl->youngest = u;
    pl->nidle++;
    u->idle_since = uv_now(pl->loop);
    if (!uv_is_active((uv_handle_t *)&pl->timer))
        uv_timer_start(&pl->timer, on_pool_timer, RP_PROXY_IDLE_MS, 0);
    return;
fail:
    up_close(u);
}

static void on_pool_closed(uv_handle_t *h)
{
    rp_free(h->data);
}

void rp_proxy_loop_stop(void)
{
    pool *pl = tl_pool;

    if (pl == NULL)
        return;
    tl_pool = NULL;
    while (pl->oldest != NULL)
        up_close(pl->oldest);
    uv_close((uv_handle_t *)&pl->timer, on_pool_closed);
}

/* ---------------------------------------------------------------- the request's lifetime */

static void on_px_closed(uv_handle_t *h)
{
    px *p = h->data;

    rp_buf_free(&p->hb);
    rp_buf_free(&p->early);
    rp_free(p->head);
    rp_free(p->path);
    rp_free(p);
}

static up *detach(px *p)
{
    up *u = p->u;

    if (u != NULL)
        u->p = NULL;
    p->u = NULL;
    return u;
}

static void px_close(px *p)
{
    if (p->closing)
        return;
    p->closing = 1;
    if (p->req != NULL && p->body_paused)
        rp_req_pause_body(p->req, 0);
    if (p->slot != NULL)
        *p->slot = NULL;
    p->req = NULL;
    up_close(detach(p));
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_px_closed);
}

static void on_cancel(void *arg)
{
    px **slot = arg;

    if (*slot != NULL) {
        (*slot)->slot = NULL;
        (*slot)->req = NULL;
        px_close(*slot);
    }
}

/* Answers the client (if nothing went out yet) or cuts the answer short; then closes. */
static void px_fail(px *p, int status, const char *code, const char *msg)
{
    if (p->req != NULL) {
        if (p->started_resp)
            rp_resp_end(p->req, 0);
        else
            rp_resp_error(p->req, status, code, msg);
    }
    px_close(p);
}

static void connect_new(px *p);

/*
 * p's connection failed. One that came from the pool may simply have been closed by the app
 * while idle (its idle timeout, a restart) just as p took it: then, if the app has seen none of
 * p's answer and none of its body, p is sent once more on a new connection.
 */
static void up_lost(px *p, const char *msg)
{
    if (p->closing)
        return;
    if (!p->reused || p->retried || p->got_bytes || p->body_sent || p->req == NULL) {
        px_fail(p, 502, "BadGateway", msg);
        return;
    }
    p->retried = 1;
    p->reused = 0;
    up_close(detach(p));
    uv_timer_stop(&p->timer);
    /* No body may come while there is no connection to take it. */
    if (p->body_asked && !p->body_paused) {
        p->body_paused = 1;
        rp_req_pause_body(p->req, 1);
    }
    p->started = uv_now(p->loop);
    connect_new(p);
}

/* ---------------------------------------------------------------- towards the app */

static void on_written(uv_write_t *w, int status)
{
    wreq *r = (wreq *)w;
    up *u = r->u;
    px *p = u->p;

    rp_free(r);
    u->writes--;
    if (u->closing)
        return;
    if (p == NULL) { /* parked: the answer is complete, this was the request's tail */
        if (status < 0)
            up_close(u);
        else if (u->writes == 0 && u->parked) {
            u->parked = 0;
            pool_put(u);
        }
        return;
    }
    if (status < 0) {
        up_lost(p, "the app closed the connection");
        return;
    }
    if (p->body_paused && p->req != NULL && u->io.s.write_queue_size < UP_RESUME) {
        p->body_paused = 0;
        rp_req_pause_body(p->req, 0);
    }
}

/*
 * Writes a, b and c (b and c may be empty) to the app: straight to the socket when nothing is
 * queued (the usual case: no copy, no write request), the rest copied and queued. 0,
 * RP_ECLOSED when the connection is broken, RP_ENOMEM or RP_EIO.
 */
static int up_write(up *u, const void *a, size_t an, const void *b, size_t bn, const void *c,
                    size_t cn)
{
    uv_buf_t in[3] = {uv_buf_init((char *)a, (unsigned)an), uv_buf_init((char *)b, (unsigned)bn),
                      uv_buf_init((char *)c, (unsigned)cn)};
    size_t skip = 0, left = an + bn + cn, off = 0;
    int n = uv_try_write(&u->io.s, in, 3);
    wreq *r;
    uv_buf_t buf;

    if (n == UV_EPIPE || n == UV_ECONNRESET)
        return RP_ECLOSED;
    if (n < 0 && n != UV_EAGAIN)
        return RP_EIO;
    if (n > 0) {
        skip = (size_t)n;
        left -= skip;
    }
    if (left == 0)
        return 0;
    r = rp_malloc(sizeof(*r) + left);
    if (r == NULL)
        return RP_ENOMEM;
    r->u = u;
    r->len = left;
    for (int i = 0; i < 3; i++) {
        size_t take = in[i].len;
        if (skip >= take) {
            skip -= take;
            continue;
        }
        memcpy(r->data + off, in[i].base + skip, take - skip);
        off += take - skip;
        skip = 0;
    }
    buf = uv_buf_init(r->data, (unsigned)r->len);
    if (uv_write(&r->w, &u->io.s, &buf, 1, on_written) != 0) {
        rp_free(r);
        return RP_EIO;
    }
    u->writes++;
    return 0;
}

static int on_req_data(rp_req *req, const char *data, size_t len)
{
    px **slot = req->handler_data;
    px *p = slot ? *slot : NULL;
    char size[24];
    int rc;

    if (p == NULL || p->closing)
        return -1;
    if (len == 0)
        return 0;
    if (p->u == NULL) { /* the body is paused while reconnecting: cannot happen */
        px_fail(p, 502, "BadGateway", "the request could not be passed on");
        return -1;
    }
    p->body_sent = 1;
    if (p->chunked_up) {
        int n = snprintf(size, sizeof(size), "%zx\r\n", len);
        rc = up_write(p->u, size, (size_t)n, data, len, "\r\n", 2);
    } else {
        rc = up_write(p->u, data, len, NULL, 0, NULL, 0);
    }
    if (rc != 0) {
        px_fail(p, 502, "BadGateway", "the request could not be passed on");
        return -1;
    }
    if (!p->body_paused && p->u->io.s.write_queue_size > UP_PAUSE) {
        p->body_paused = 1;
        rp_req_pause_body(req, 1);
    }
    return 0;
}

static void on_req_done(rp_req *req)
{
    px **slot = req->handler_data;
    px *p = slot ? *slot : NULL;

    if (p == NULL || p->closing)
        return;
    p->req_done = 1;
    /* Without a connection (reconnecting) the retry sends the end with the head. */
    if (p->u != NULL && p->chunked_up && up_write(p->u, "0\r\n\r\n", 5, NULL, 0, NULL, 0) != 0)
        px_fail(p, 502, "BadGateway", "the request could not be passed on");
}

/* Headers that end at this hop (RFC 9110 7.6.1), and those only the front door may set. */
static int dropped_up(rp_str name, rp_str connection)
{
    static const char *const never[] = {"connection",
                                        "keep-alive",
                                        "proxy-connection",
                                        "te",
                                        "trailer",
                                        "transfer-encoding",
                                        "upgrade",
                                        "host",
                                        "content-length",
                                        "expect",
                                        "x-forwarded-proto",
                                        "x-forwarded-host",
                                        "x-arr-clientcert",
                                        "x-arr-ssl",
                                        "forwarded",
                                        "x-client-ip",
                                        "x-original-url",
                                        "disguised-host",
                                        "x-waws-unencoded-url",
                                        "x-real-ip",
                                        "x-site-deployment-id",
                                        "client-ip"};
    size_t i;

    for (i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        if (rp_str_eq_nocase(name, never[i]))
            return 1;
    /* CGI-style stacks read X_MS_CLIENT_PRINCIPAL as X-MS-CLIENT-PRINCIPAL: no '_' names at all
     * (nginx's default too). */
    if (memchr(name.p, '_', name.n) != NULL)
        return 1;
    if (name.n >= 20 && strncasecmp(name.p, "x-ms-client-principal", 21) == 0)
        return 1;
    if (name.n >= 10 && strncasecmp(name.p, "x-ms-token", 10) == 0)
        return 1;
    /* Names listed in Connection are hop-by-hop too. */
    for (const char *s = connection.p, *end = connection.p + connection.n; s != NULL && s < end;) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        rp_str tok = rp_str_trim((rp_str){s, (size_t)((comma ? comma : end) - s)});
        if (tok.n == name.n && strncasecmp(tok.p, name.p, name.n) == 0)
            return 1;
        s = comma ? comma + 1 : NULL;
    }
    return 0;
}

/* An extra header the caller adds: a token name that is none of the proxy's own or hop-by-hop
 * headers (it would be sent twice, or change the framing), a value without control bytes (no
 * header splitting whatever the caller was given). */
static int extra_ok(const rp_proxy_hdr *x)
{
    static const char *const own[] = {"host",
                                      "connection",
                                      "keep-alive",
                                      "proxy-connection",
                                      "te",
                                      "trailer",
                                      "transfer-encoding",
                                      "upgrade",
                                      "expect",
                                      "content-length",
                                      "x-forwarded-for",
                                      "x-forwarded-proto",
                                      "x-forwarded-host",
                                      "x-arr-clientcert"};
    const char *s;

    if (x->name == NULL || x->value == NULL || x->name[0] == '\0')
        return 0;
    for (s = x->name; *s; s++)
        if (!rp_http_tchar((unsigned char)*s))
            return 0;
    for (s = x->value; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return 0;
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (strcasecmp(x->name, own[i]) == 0)
            return 0;
    return 1;
}

static int is_extra(rp_str name, const rp_proxy_target *t)
{
    for (size_t i = 0; i < t->nextra; i++)
        if (rp_str_eq_nocase(name, t->extra[i].name))
            return 1;
    return 0;
}

static int put_field(rp_buf *b, const char *name, size_t nn, const char *value, size_t vn)
{
    int rc = rp_buf_append(b, name, nn);

    if (rc == 0)
        rc = rp_buf_append(b, ": ", 2);
    if (rc == 0)
        rc = rp_buf_append(b, value, vn);
    return rc == 0 ? rp_buf_append(b, "\r\n", 2) : rc;
}

/* Builds p->head: the request line and headers the app gets. */
static int build_head(px *p, rp_req *req, const rp_proxy_target *t)
{
    const rp_http_head *h = req->head;
    rp_str conn = rp_req_header(req, "connection"), xff = rp_req_header(req, "x-forwarded-for");
    rp_buf b;
    int rc;

    rp_buf_init(&b, RP_HTTP_MAX_HEAD + 16384 + RP_PROXY_EXTRA_MAX);
    rc = rp_buf_reserve(&b, 2048); /* most heads fit: one allocation */
    if (rc == 0)
        rc = rp_buf_appendf(&b, "%.*s %.*s HTTP/1.1\r\nHost: %.*s\r\n", (int)h->method_str.n,
                            h->method_str.p, t->target ? (int)strlen(t->target) : (int)h->target.n,
                            t->target ? t->target : h->target.p, (int)h->host.n, h->host.p);
    for (size_t i = 0; rc == 0 && i < h->nheaders; i++) {
        const rp_header *x = &h->headers[i];
        int drop = 0;
        for (size_t k = 0; k < t->ndrop && !drop; k++)
            drop = rp_str_eq_nocase(x->name, t->drop[k]);
        if (drop || dropped_up(x->name, conn) || rp_str_eq_nocase(x->name, "x-forwarded-for") ||
            is_extra(x->name, t))
            continue;
        rc = put_field(&b, x->name.p, x->name.n, x->value.p, x->value.n);
    }
    /* No Connection header: HTTP/1.1 keeps the connection by default. */
    if (rc == 0)
        rc = rp_buf_appendf(&b,
                            "X-Forwarded-For: %.*s%s%s\r\nX-Forwarded-Proto: %s\r\n"
                            "X-Forwarded-Host: %.*s\r\n",
                            (int)xff.n, xff.p ? xff.p : "", xff.n ? ", " : "",
                            req->client_ip ? req->client_ip : "", req->secure ? "https" : "http",
                            (int)h->host.n, h->host.p);
    if (rc == 0 && t->client_cert != NULL)
        rc = rp_buf_appendf(&b, "X-ARR-ClientCert: %s\r\n", t->client_cert);
    for (size_t i = 0; rc == 0 && i < t->nextra; i++)
        rc = put_field(&b, t->extra[i].name, strlen(t->extra[i].name), t->extra[i].value,
                       strlen(t->extra[i].value));
    if (rc == 0 && h->chunked) {
        p->chunked_up = 1;
        rc = rp_buf_append_str(&b, "Transfer-Encoding: chunked\r\n");
    } else if (rc == 0 && h->has_length) {
        rc = rp_buf_appendf(&b, "Content-Length: %llu\r\n", (unsigned long long)h->content_length);
    }
    if (rc == 0)
        rc = rp_buf_append(&b, "\r\n", 2);
    if (rc != 0) {
        rp_buf_free(&b);
        return rc;
    }
    p->head = b.data; /* the buffer's memory, now p's */
    p->head_len = b.len;
    return 0;
}

/* ---------------------------------------------------------------- from the app */

static px *of(llhttp_t *l)
{
    return l->data;
}

static int on_hfield(llhttp_t *l, const char *at, size_t n)
{
    px *p = of(l);

    if (!p->in_field) {
        if (p->nh == MAX_RESP_HEADERS)
            return -1;
        p->in_field = 1;
        p->name[p->nh] = (uint32_t)p->hb.len;
    }
    p->head_bytes += n;
    return p->head_bytes > RP_PROXY_HEAD_MAX || rp_buf_append(&p->hb, at, n) != 0 ? -1 : 0;
}

static int on_hfield_done(llhttp_t *l)
{
    px *p = of(l);

    if (!p->in_field || rp_buf_push(&p->hb, '\0') != 0)
        return -1;
    p->in_field = 0;
    p->value[p->nh] = (uint32_t)p->hb.len;
    return 0;
}

static int on_hvalue(llhttp_t *l, const char *at, size_t n)
{
    px *p = of(l);

    p->head_bytes += n;
    return p->head_bytes > RP_PROXY_HEAD_MAX || rp_buf_append(&p->hb, at, n) != 0 ? -1 : 0;
}

static int on_hvalue_done(llhttp_t *l)
{
    px *p = of(l);

    if (rp_buf_push(&p->hb, '\0') != 0)
        return -1;
    p->nh++;
    return 0;
}

static const char *hname(const px *p, size_t i)
{
    return p->hb.data + p->name[i];
}

static const char *hvalue(const px *p, size_t i)
{
    return p->hb.data + p->value[i];
}

static int dropped_down(const char *name)
{
    static const char *const never[] = {"connection",
                                        "keep-alive",
                                        "proxy-connection",
                                        "te",
                                        "trailer",
                                        "transfer-encoding",
                                        "upgrade",
                                        "content-length",
                                        "content-type",
                                        "date",
                                        "strict-transport-security",
                                        "x-content-type-options",
                                        "server"};

    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        if (strcasecmp(name, never[i]) == 0)
            return 1;
    return 0;
}

static void on_idle(uv_timer_t *t);

static void on_drain(rp_req *req);

/* The app's headers, less those that end here or that the front door sets itself. Only when the
 * answer is sent: an error answer instead must not carry them. */
static void add_headers(px *p)
{
    for (size_t i = 0; i < p->nh; i++)
        if (!dropped_down(hname(p, i)))
            (void)rp_resp_header(p->req, hname(p, i), hvalue(p, i));
}

/* Writes body bytes to the client; 0 or -1 (the client is gone, or over its buffer). */
static int client_write(px *p, const char *at, size_t n)
{
    int rc = rp_resp_write(p->req, at, n);

    if (rc == RP_EAGAIN) {
        p->read_paused = 1; /* stop reading after this chunk, until the client drains */
        rp_resp_on_drain(p->req, on_drain);
        return 0;
    }
    return rc == 0 ? 0 : -1;
}

/* Starts streaming the answer: the head, then what was held back. 0 or -1. */
static int start_answer(px *p)
{
    int rc = 0;

    p->pending = 0;
    add_headers(p);
    if (rp_resp_start(p->req, p->status, p->ctype, p->resp_len) != 0)
        return -1;
    p->started_resp = 1;
    if (p->early.len > 0 && p->req != NULL)
        rc = client_write(p, p->early.data, p->early.len);
    rp_buf_free(&p->early);
    return rc;
}

static int on_headers_complete(llhttp_t *l)
{
    px *p = of(l);

    p->status = l->status_code;
    if (p->status < 200) { /* an interim answer: wait for the final one */
        rp_buf_reset(&p->hb);
        p->nh = 0;
        p->head_bytes = 0;
        return 0;
    }
    p->got_head = 1;
    uv_timer_stop(&p->timer);
    if (p->req == NULL)
        return -1;
    /* The answer to HEAD has no body whatever its head says (llhttp cannot know). */
    p->head_only = p->req->method == RP_METHOD_HEAD;
    for (size_t i = 0; i < p->nh; i++)
        if (strcasecmp(hname(p, i), "content-type") == 0)
            p->ctype = hvalue(p, i);
    p->resp_len = -1;
    if (!(l->flags & F_CHUNKED) && (l->flags & F_CONTENT_LENGTH))
        p->resp_len = (int64_t)l->content_length;
    /* An answer that goes quiet for this long is given up (the client is not pinned for ever). */
    uv_timer_start(&p->timer, on_idle, p->response_ms, 0);
    if (p->head_only || p->status == 204 || p->status == 304) {
        if (start_answer(p) != 0)
            return -1;
        return p->head_only ? 1 : 0;
    }
    /* Held back until the end of this read: a small answer that is complete by then goes to
     * the client whole, in one write (one TLS record) instead of a head and a body. */
    p->pending = 1;
    rp_buf_init(&p->early, HOLD_MAX);
    return 0;
}

static int on_rbody(llhttp_t *l, const char *at, size_t n)
{
    px *p = of(l);

    if (p->req == NULL || p->status < 200)
        return 0;
    uv_timer_again(&p->timer);
    if (p->pending) {
        if (p->early.len + n <= HOLD_MAX)
            return rp_buf_append(&p->early, at, n) == 0 ? 0 : -1;
        if (start_answer(p) != 0 || p->req == NULL)
            return -1;
    }
    return client_write(p, at, n);
}

/* The answer is complete: on_read decides what becomes of the connection, then ends it. */
static int on_rcomplete(llhttp_t *l)
{
    px *p = of(l);

    if (p->status < 200)
        return 0;
    p->done = 1;
    return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
    .on_header_field = on_hfield,
    .on_header_value = on_hvalue,
    .on_header_field_complete = on_hfield_done,
    .on_header_value_complete = on_hvalue_done,
    .on_headers_complete = on_headers_complete,
    .on_body = on_rbody,
    .on_message_complete = on_rcomplete,
};

/*
 * The answer is complete. The connection goes back to the pool only if it is in step for the
 * next request: the whole request went out (the client's body ended, and the last write
 * completes before it is reused: parked until then), the app did not ask to close, and no byte
 * followed the answer (keep: the caller's verdict on the last two). Detached first: ending the
 * answer can end the request, which closes whatever px still holds.
 */
static void finish(px *p, int keep)
{
    up *u = detach(p);

    if (u != NULL && keep && p->req_done && p->req != NULL) {
        if (u->writes > 0)
            u->parked = 1;
        else
            pool_put(u);
    } else {
        up_close(u);
    }
    if (p->req != NULL && p->pending) {
        p->pending = 0;
        add_headers(p);
        rp_resp_send(p->req, p->status, p->ctype, p->early.data, p->early.len);
    } else if (p->req != NULL) {
        rp_resp_end(p->req, 1);
    }
    px_close(p);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static __thread char chunk[65536];

    (void)h;
    (void)hint;
    buf->base = chunk;
    buf->len = sizeof(chunk);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    up *u = s->data;
    px *p = u->p;
    llhttp_errno_t e;

    if (u->closing || n == 0)
        return;
    if (p == NULL) { /* idle or parked: the app closed it, or sent what nobody asked for */
        up_close(u);
        return;
    }
    if (p->closing)
        return;
    if (n == UV_EOF) {
        e = llhttp_finish(&p->parser);
        if (p->done || e == HPE_PAUSED) { /* an answer that ends with the connection */
            finish(p, 0);
            return;
        }
        if (p->got_bytes)
            px_fail(p, 502, "BadGateway", "the app closed the connection before it answered");
        else
            up_lost(p, "the app closed the connection before it answered");
        return;
    }
    if (n < 0) {
        if (p->got_bytes)
            px_fail(p, 502, "BadGateway", "the connection to the app failed");
        else
            up_lost(p, "the connection to the app failed");
        return;
    }
    p->got_bytes = 1;
    e = llhttp_execute(&p->parser, buf->base, (size_t)n);
    if (p->done) {
        finish(p, e == HPE_PAUSED && llhttp_get_error_pos(&p->parser) == buf->base + n &&
                      llhttp_should_keep_alive(&p->parser));
        return;
    }
    if (e != HPE_OK) {
        px_fail(p, 502, "BadGateway", "the app's answer is not valid HTTP/1.1");
        return;
    }
    /* The answer continues in later reads: stream it from here on. */
    if (p->pending && p->req != NULL && start_answer(p) != 0) {
        px_fail(p, 502, "BadGateway", "the answer could not be passed on");
        return;
    }
    if (p->read_paused && u->reading && !p->closing) {
        uv_read_stop(&u->io.s);
        u->reading = 0;
    }
}

static void on_drain(rp_req *req)
{
    px **slot = req->handler_data;
    px *p = slot ? *slot : NULL;

    if (p == NULL || p->closing || !p->read_paused)
        return;
    p->read_paused = 0;
    if (p->u != NULL && !p->u->reading && uv_read_start(&p->u->io.s, on_alloc, on_read) == 0)
        p->u->reading = 1;
}

/* ---------------------------------------------------------------- connecting */

static void on_idle(uv_timer_t *t)
{
    px *p = t->data;

    px_fail(p, 504, "GatewayTimeout", "the app stopped sending its answer");
}

static void on_timeout(uv_timer_t *t)
{
    px *p = t->data;

    if (p->got_head)
        return;
    px_fail(p, 504, "GatewayTimeout", "the app did not answer in time");
}

/* p->u is connected (new or from the pool): send the request and start on the answer. */
static void start_exchange(px *p)
{
    up *u = p->u;
    int rc = up_write(u, p->head, p->head_len, NULL, 0, NULL, 0);

    if (rc == 0 && p->req_done && p->chunked_up)
        rc = up_write(u, "0\r\n\r\n", 5, NULL, 0, NULL, 0);
    if (rc == RP_ECLOSED) {
        up_lost(p, "the app closed the connection");
        return;
    }
    if (rc != 0) {
        px_fail(p, 502, "BadGateway", "the request could not be passed on");
        return;
    }
    uv_timer_start(&p->timer, on_timeout, p->response_ms, 0);
    if (!u->reading) {
        if (uv_read_start(&u->io.s, on_alloc, on_read) != 0) {
            px_fail(p, 502, "BadGateway", "the connection to the app failed");
            return;
        }
        u->reading = 1;
    }
    if (!p->body_asked) {
        p->body_asked = 1;
        rp_req_stream_body(p->req, on_req_data, on_req_done);
    } else if (p->body_paused) { /* paused while reconnecting */
        p->body_paused = 0;
        rp_req_pause_body(p->req, 0);
    }
}

static void on_retry(uv_timer_t *t)
{
    connect_new(t->data);
}

static void on_connect_timeout(uv_timer_t *t)
{
    px_fail(t->data, 502, "BadGateway", "the app is not answering on its port");
}

static void on_connect(uv_connect_t *c, int status)
{
    up *u = c->data;
    px *p = u->p;

    if (u->closing || p == NULL)
        return;
    uv_timer_stop(&p->timer);
    /* Not listening yet (after a deploy or a crash; a unix socket not even created yet, or its
     * backlog full): try again shortly, on a new handle (a failed one cannot connect again). */
    if ((status == UV_ECONNREFUSED || status == UV_ENOENT || status == UV_EAGAIN) &&
        uv_now(p->loop) - p->started < RP_PROXY_CONNECT_MS) {
        up_close(detach(p));
        uv_timer_start(&p->timer, on_retry, RETRY_MS, 0);
        return;
    }
    if (status < 0) {
        px_fail(p, 502, "BadGateway", "the app is not answering on its port");
        return;
    }
    if (p->req == NULL) {
        px_close(p);
        return;
    }
    if (u->path != NULL) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&u->io.pipe, &fd) != 0 ||
            rp_file_socket_peer_ok(fd, u->path) != 0) {
            px_fail(p, 502, "BadGateway", "the app's socket is not the app's");
            return;
        }
    }
    if (u->path == NULL)
        (void)uv_tcp_nodelay(&u->io.tcp, 1); /* a head and a body write must not wait for ACKs */
    start_exchange(p);
}

static void connect_new(px *p)
{
    uint64_t waited = uv_now(p->loop) - p->started;
    struct sockaddr_in a;
    up *u;

    if (p->req == NULL) {
        px_close(p);
        return;
    }
    u = up_new(p->loop, p->port, p->path);
    if (u == NULL) {
        px_fail(p, 502, "BadGateway", "the app is not answering on its port");
        return;
    }
    p->u = u;
    u->p = p;
    /* A connection that neither completes nor fails (a full backlog drops SYNs) ends with the
     * window for the app to come up. */
    uv_timer_start(&p->timer, on_connect_timeout,
                   waited < RP_PROXY_CONNECT_MS ? RP_PROXY_CONNECT_MS - waited : 1, 0);
    if (p->path != NULL) {
        /* The app owns the socket's directory: never follow what it may have put there in the
         * socket's place; and on_connect checks that the app's uid is who listens. */
        char via[40];
        int fd = -1;
        if (rp_file_socket_ref(p->path, &fd, via, sizeof(via)) == RP_EPERM) {
            px_fail(p, 502, "BadGateway", "the app's socket is not a socket");
            return;
        }
        uv_pipe_connect(&u->connect, &u->io.pipe, via, on_connect);
        if (fd >= 0)
            close(fd); /* connect(2) has happened: the callback only reports it */
        return;
    }
    uv_ip4_addr("127.0.0.1", p->port, &a);
    if (uv_tcp_connect(&u->connect, &u->io.tcp, (const struct sockaddr *)&a, on_connect) != 0)
        px_fail(p, 502, "BadGateway", "the app is not answering on its port");
}

void rp_proxy_forward(rp_req *req, const rp_proxy_target *to)
{
    rp_proxy_target tg, *t = &tg;
    px *p = NULL;
    px **slot = NULL;
    size_t extra = 0;
    int has_body;
    up *u;

    if (to == NULL) {
        rp_resp_error(req, 502, "BadGateway", "the app's address is not valid");
        return;
    }
    tg = *to;
    if (tg.extra == NULL)
        tg.nextra = 0;
    for (size_t i = 0; i < t->nextra; i++) {
        if (!extra_ok(&t->extra[i]) ||
            rp_size_add(extra, strlen(t->extra[i].name) + strlen(t->extra[i].value) + 4, &extra) !=
                0 ||
            extra > RP_PROXY_EXTRA_MAX) {
            rp_resp_error(req, 500, "InternalError", "a header for the app is not valid");
            return;
        }
    }
    /* libuv would cut a long socket path short and connect to another one. */
    if ((t->unix_path == NULL && (t->port <= 0 || t->port > 65535)) ||
        (t->unix_path != NULL &&
         strlen(t->unix_path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))) {
        rp_resp_error(req, 502, "BadGateway", "the app's address is not valid");
        return;
    }
    p = rp_calloc(1, sizeof(*p));
    slot = rp_arena_calloc(req->arena, sizeof(*slot));
    if (p == NULL || slot == NULL || rp_arena_add_cleanup(req->arena, on_cancel, slot) != 0 ||
        (t->unix_path != NULL && (p->path = rp_strdup(t->unix_path)) == NULL))
        goto fail;
    if (build_head(p, req, t) != 0) {
        rp_free(p->path);
        rp_free(p);
        *slot = NULL;
        rp_resp_error(req, 502, "BadGateway", "the request could not be passed on");
        return;
    }
    p->loop = rp_req_loop(req);
    if (uv_timer_init(p->loop, &p->timer) != 0) {
        rp_free(p->head);
        goto fail;
    }
    *slot = p;
    req->handler_data = slot;
    p->req = req;
    p->slot = slot;
    p->port = t->port;
    p->response_ms = t->response_ms > 0 ? t->response_ms : RP_PROXY_RESPONSE_MS;
    p->started = uv_now(p->loop);
    p->timer.data = p;
    rp_buf_init(&p->hb, RP_PROXY_HEAD_MAX + 2 * MAX_RESP_HEADERS);
    llhttp_init(&p->parser, HTTP_RESPONSE, &parser_settings);
    p->parser.data = p;
    /* A body cannot be sent again if the connection turns out dead: such a request takes only a
     * connection used moments ago, which the app's own keep-alive timeout (Node's is 5 s)
     * cannot be closing just now. */
    has_body = req->head->chunked || (req->head->has_length && req->head->content_length > 0);
    u = pool_take(p->loop, p->port, p->path, has_body ? BODY_REUSE_MS : RP_PROXY_IDLE_MS);
    if (u == NULL) {
        connect_new(p);
        return;
    }
    p->u = u;
    u->p = p;
    p->reused = 1;
    start_exchange(p);
    return;
fail:
    if (p != NULL) {
        rp_free(p->path);
        rp_free(p);
    }
    rp_resp_error(req, 500, "InternalError", "out of memory");
}
