/*
 * proxy.c - reverse proxy to an app process (proxy.h).
 *
 * Lifetime: a px lives from rp_proxy_forward until its three handles (tcp, timer) are closed,
 * whichever of the request and the upstream ends first. px->req is cleared by the request's
 * arena cleanup when the client goes away; from then on px only closes itself.
 */
#include "sites/proxy.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"

#include <llhttp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define UP_PAUSE         (1u << 20) /* queued bytes towards the app that pause the client's body */
#define UP_RESUME        (256u << 10) /* ... and resume it */
#define MAX_RESP_HEADERS 100

typedef struct px {
    rp_req *req;
    struct px **slot;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect;
    int handles;
    int closing;
    int retrying; /* the tcp handle is closing for another connect attempt */
    int port;
    uv_loop_t *loop;
    uint64_t started;
    char *cert;      /* X-ARR-ClientCert value, copied */
    int chunked_up;  /* the body goes to the app in chunks */
    int body_paused; /* the client's body is paused for us */
    int reading;     /* reading from the app */
    int read_paused; /* stopped until the client drains */
    int started_resp;
    int done;
    int got_head;
    int head_only; /* answering HEAD: no body follows the head */
    llhttp_t parser;
    llhttp_settings_t settings;
    int status;
    rp_buf field, value;
    int in_value;
    char *names[MAX_RESP_HEADERS], *values[MAX_RESP_HEADERS];
    size_t nh;
    size_t head_bytes;
} px;

typedef struct wreq {
    uv_write_t w;
    px *p;
    size_t len;
    char data[];
} wreq;

static void px_close(px *p);

static void on_handle_closed(uv_handle_t *h)
{
    px *p = h->data;

    if (--p->handles > 0)
        return;
    for (size_t i = 0; i < p->nh; i++) {
        rp_free(p->names[i]);
        rp_free(p->values[i]);
    }
    rp_buf_free(&p->field);
    rp_buf_free(&p->value);
    rp_free(p->cert);
    rp_free(p);
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
    uv_timer_stop(&p->timer);
    if (!p->retrying) /* else its close callback counts it */
        uv_close((uv_handle_t *)&p->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&p->timer, on_handle_closed);
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

/* ---------------------------------------------------------------- towards the app */

static void on_written(uv_write_t *w, int status)
{
    wreq *r = (wreq *)w;
    px *p = r->p;

    rp_free(r);
    if (p->closing)
        return;
    if (status < 0) {
        px_fail(p, 502, "BadGateway", "the app closed the connection");
        return;
    }
    if (p->body_paused && p->req != NULL && p->tcp.write_queue_size < UP_RESUME) {
        p->body_paused = 0;
        rp_req_pause_body(p->req, 0);
    }
}

static int up_write(px *p, const void *a, size_t an, const void *b, size_t bn, const void *c,
                    size_t cn)
{
    wreq *r = rp_malloc(sizeof(*r) + an + bn + cn);
    uv_buf_t buf;

    if (r == NULL)
        return RP_ENOMEM;
    r->p = p;
    r->len = an + bn + cn;
    memcpy(r->data, a, an);
    if (bn)
        memcpy(r->data + an, b, bn);
    if (cn)
        memcpy(r->data + an + bn, c, cn);
    buf = uv_buf_init(r->data, (unsigned)r->len);
    if (uv_write(&r->w, (uv_stream_t *)&p->tcp, &buf, 1, on_written) != 0) {
        rp_free(r);
        return RP_EIO;
    }
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
    if (p->chunked_up) {
        int n = snprintf(size, sizeof(size), "%zx\r\n", len);
        rc = up_write(p, size, (size_t)n, data, len, "\r\n", 2);
    } else {
        rc = up_write(p, data, len, NULL, 0, NULL, 0);
    }
    if (rc != 0) {
        px_fail(p, 502, "BadGateway", "the request could not be passed on");
        return -1;
    }
    if (!p->body_paused && p->tcp.write_queue_size > UP_PAUSE) {
        p->body_paused = 1;
        rp_req_pause_body(req, 1);
    }
    return 0;
}

static void on_req_done(rp_req *req)
{
    px **slot = req->handler_data;
    px *p = slot ? *slot : NULL;

    if (p != NULL && !p->closing && p->chunked_up &&
        up_write(p, "0\r\n\r\n", 5, NULL, 0, NULL, 0) != 0)
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

static int send_head(px *p)
{
    rp_req *req = p->req;
    const rp_http_head *h = req->head;
    rp_str conn = rp_req_header(req, "connection"), xff = rp_req_header(req, "x-forwarded-for");
    rp_buf b;
    int rc;

    rp_buf_init(&b, RP_HTTP_MAX_HEAD + 16384);
    rc = rp_buf_appendf(&b, "%.*s %.*s HTTP/1.1\r\nHost: %.*s\r\n", (int)h->method_str.n,
                        h->method_str.p, (int)h->target.n, h->target.p, (int)h->host.n, h->host.p);
    for (size_t i = 0; rc == 0 && i < h->nheaders; i++) {
        const rp_header *x = &h->headers[i];
        if (dropped_up(x->name, conn) || rp_str_eq_nocase(x->name, "x-forwarded-for"))
            continue;
        rc = rp_buf_appendf(&b, "%.*s: %.*s\r\n", (int)x->name.n, x->name.p, (int)x->value.n,
                            x->value.p);
    }
    if (rc == 0)
        rc = rp_buf_appendf(&b,
                            "X-Forwarded-For: %.*s%s%s\r\nX-Forwarded-Proto: %s\r\n"
                            "X-Forwarded-Host: %.*s\r\nConnection: close\r\n",
                            (int)xff.n, xff.p ? xff.p : "", xff.n ? ", " : "",
                            req->client_ip ? req->client_ip : "", req->secure ? "https" : "http",
                            (int)h->host.n, h->host.p);
    if (rc == 0 && p->cert != NULL)
        rc = rp_buf_appendf(&b, "X-ARR-ClientCert: %s\r\n", p->cert);
    if (rc == 0 && h->chunked) {
        p->chunked_up = 1;
        rc = rp_buf_append_str(&b, "Transfer-Encoding: chunked\r\n");
    } else if (rc == 0 && h->has_length) {
        rc = rp_buf_appendf(&b, "Content-Length: %llu\r\n", (unsigned long long)h->content_length);
    }
    if (rc == 0)
        rc = rp_buf_append(&b, "\r\n", 2);
    if (rc == 0)
        rc = up_write(p, b.data, b.len, NULL, 0, NULL, 0);
    rp_buf_free(&b);
    return rc;
}

/* ---------------------------------------------------------------- from the app */

static px *of(llhttp_t *l)
{
    return l->data;
}

static int save_header(px *p)
{
    if (p->field.len == 0)
        return 0;
    if (p->nh == MAX_RESP_HEADERS)
        return -1;
    p->names[p->nh] = rp_strndup(p->field.data, p->field.len);
    p->values[p->nh] = rp_strndup(p->value.data ? p->value.data : "", p->value.len);
    if (p->names[p->nh] == NULL || p->values[p->nh] == NULL) {
        rp_free(p->names[p->nh]);
        rp_free(p->values[p->nh]);
        return -1;
    }
    p->nh++;
    rp_buf_reset(&p->field);
    rp_buf_reset(&p->value);
    return 0;
}

static int on_hfield(llhttp_t *l, const char *at, size_t n)
{
    px *p = of(l);

    if (p->in_value && save_header(p) != 0)
        return -1;
    p->in_value = 0;
    p->head_bytes += n;
    return p->head_bytes > RP_PROXY_HEAD_MAX || rp_buf_append(&p->field, at, n) != 0 ? -1 : 0;
}

static int on_hvalue(llhttp_t *l, const char *at, size_t n)
{
    px *p = of(l);

    p->in_value = 1;
    p->head_bytes += n;
    return p->head_bytes > RP_PROXY_HEAD_MAX || rp_buf_append(&p->value, at, n) != 0 ? -1 : 0;
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

static int on_headers_complete(llhttp_t *l)
{
    px *p = of(l);
    const char *ctype = NULL;
    int64_t len = -1;

    if (p->in_value && save_header(p) != 0)
        return -1;
    p->in_value = 0;
    p->status = l->status_code;
    if (p->status < 200) { /* an interim answer: wait for the final one */
        for (size_t i = 0; i < p->nh; i++) {
            rp_free(p->names[i]);
            rp_free(p->values[i]);
        }
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
    for (size_t i = 0; i < p->nh; i++) {
        if (strcasecmp(p->names[i], "content-type") == 0)
            ctype = p->values[i];
        if (!dropped_down(p->names[i]))
            (void)rp_resp_header(p->req, p->names[i], p->values[i]);
    }
    if (!(l->flags & F_CHUNKED) && (l->flags & F_CONTENT_LENGTH))
        len = (int64_t)l->content_length;
    if (rp_resp_start(p->req, p->status, ctype, len) != 0)
        return -1;
    p->started_resp = 1;
    /* An answer that goes quiet for this long is given up (the client is not pinned for ever). */
    uv_timer_start(&p->timer, on_idle, RP_PROXY_RESPONSE_MS, 0);
    return p->head_only ? 1 : 0;
}

static void on_drain(rp_req *req);

static int on_rbody(llhttp_t *l, const char *at, size_t n)
{
    px *p = of(l);
    int rc;

    if (p->req == NULL || p->status < 200)
        return 0;
    uv_timer_again(&p->timer);
    rc = rp_resp_write(p->req, at, n);
    if (rc == RP_EAGAIN) {
        p->read_paused = 1; /* stop reading after this chunk, until the client drains */
        rp_resp_on_drain(p->req, on_drain);
        return 0;
    }
    return rc == 0 ? 0 : -1;
}

static int on_rcomplete(llhttp_t *l)
{
    px *p = of(l);

    if (p->status < 200)
        return 0;
    p->done = 1;
    if (p->req != NULL)
        rp_resp_end(p->req, 1);
    return HPE_PAUSED;
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
    px *p = s->data;
    llhttp_errno_t e;

    if (p->closing)
        return;
    if (n == UV_EOF) {
        e = llhttp_finish(&p->parser);
        if (p->done || e == HPE_PAUSED) {
            px_close(p);
            return;
        }
        px_fail(p, 502, "BadGateway", "the app closed the connection before it answered");
        return;
    }
    if (n < 0) {
        px_fail(p, 502, "BadGateway", "the connection to the app failed");
        return;
    }
    e = llhttp_execute(&p->parser, buf->base, (size_t)n);
    if (p->done) {
        px_close(p);
        return;
    }
    if (e != HPE_OK) {
        px_fail(p, 502, "BadGateway", "the app's answer is not valid HTTP/1.1");
        return;
    }
    if (p->read_paused && p->reading) {
        uv_read_stop((uv_stream_t *)&p->tcp);
        p->reading = 0;
    }
}

static void on_drain(rp_req *req)
{
    px **slot = req->handler_data;
    px *p = slot ? *slot : NULL;

    if (p == NULL || p->closing || !p->read_paused)
        return;
    p->read_paused = 0;
    if (!p->reading && uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read) == 0)
        p->reading = 1;
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

static void try_connect(px *p);

static void on_retry_closed(uv_handle_t *h)
{
    px *p = h->data;

    p->retrying = 0;
    if (p->closing) {
        on_handle_closed(h);
        return;
    }
    p->handles--;
    try_connect(p);
}

static void on_retry(uv_timer_t *t)
{
    px *p = t->data;

    /* A refused connection's handle cannot connect again: close it, then start afresh. */
    p->retrying = 1;
    uv_close((uv_handle_t *)&p->tcp, on_retry_closed);
}

static void on_connect(uv_connect_t *c, int status)
{
    px *p = c->data;

    if (p->closing)
        return;
    if (status == UV_ECONNREFUSED && uv_hrtime() / 1000000u - p->started < RP_PROXY_CONNECT_MS) {
        /* The app may be starting (after a deploy or a crash): try again shortly. */
        uv_timer_start(&p->timer, on_retry, 100, 0);
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
    if (send_head(p) != 0) {
        px_fail(p, 502, "BadGateway", "the request could not be passed on");
        return;
    }
    uv_timer_start(&p->timer, on_timeout, RP_PROXY_RESPONSE_MS, 0);
    if (uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read) != 0) {
        px_fail(p, 502, "BadGateway", "the connection to the app failed");
        return;
    }
    p->reading = 1;
    rp_req_stream_body(p->req, on_req_data, on_req_done);
}

static void try_connect(px *p)
{
    struct sockaddr_in a;

    uv_tcp_init(p->loop, &p->tcp);
    p->tcp.data = p;
    p->handles++;
    uv_ip4_addr("127.0.0.1", p->port, &a);
    p->connect.data = p;
    if (uv_tcp_connect(&p->connect, &p->tcp, (const struct sockaddr *)&a, on_connect) != 0)
        px_fail(p, 502, "BadGateway", "the app is not answering on its port");
}

void rp_proxy_forward(rp_req *req, int port, const char *client_cert)
{
    px *p = rp_calloc(1, sizeof(*p));
    px **slot = rp_arena_calloc(req->arena, sizeof(*slot));

    if (p == NULL || slot == NULL || rp_arena_add_cleanup(req->arena, on_cancel, slot) != 0 ||
        (client_cert != NULL && (p->cert = rp_strndup(client_cert, strlen(client_cert))) == NULL)) {
        if (p != NULL)
            rp_free(p);
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    *slot = p;
    req->handler_data = slot;
    p->req = req;
    p->slot = slot;
    p->port = port;
    p->loop = rp_req_loop(req);
    p->started = uv_hrtime() / 1000000u;
    rp_buf_init(&p->field, 8192);
    rp_buf_init(&p->value, RP_PROXY_HEAD_MAX);
    llhttp_settings_init(&p->settings);
    p->settings.on_header_field = on_hfield;
    p->settings.on_header_value = on_hvalue;
    p->settings.on_headers_complete = on_headers_complete;
    p->settings.on_body = on_rbody;
    p->settings.on_message_complete = on_rcomplete;
    llhttp_init(&p->parser, HTTP_RESPONSE, &p->settings);
    p->parser.data = p;
    uv_timer_init(rp_req_loop(req), &p->timer);
    p->timer.data = p;
    p->handles = 1;
    try_connect(p);
}
