/*
 * proxy_test.c - src/sites/proxy.c end to end on one loop: the target's unix socket and extra
 * headers (client look-alikes stripped, the extra ones sent once, bad ones refused before
 * anything reaches the app), keep-alive to the app, the one retry on a pooled connection the
 * app closed without answering, no replay once a body went out, an idle connection's EOF, and
 * rp_proxy_loop_stop leaving nothing open (uv_loop_close returns 0; ASan checks the rest).
 *
 * The test thread runs a libuv loop with the front door (an rp_http_ctx taking plain HTTP
 * connections of kind RP_CONN_LOCAL, one route calling rp_proxy_forward) and a fake app: a
 * uv_pipe server on a unix socket that records every request head and answers
 * "conn=ID req=K len=BODY" with Content-Length, keeping the connection. A client thread speaks
 * raw HTTP/1.1 over one blocking TCP connection and records the answers; it never asserts
 * (cmocka's longjmp belongs to the test thread), the test thread does once the loop is done.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "base/buf.h"
#include "http/conn.h"
#include "http/request.h"
#include "http/router.h"
#include "net/listen.h"
#include "sites/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define MAX_REQ  16
#define MAX_CONN 16
#define IO_MS    5000

static char g_dir[512], g_sock[600];
static rp_router *g_router;

typedef struct appc {
    uv_pipe_t h;
    int id;
    int nreq;
    int doom;       /* close, unanswered, when the next request arrives */
    int close_next; /* close after this answer is written */
    int open;
    rp_buf in;
} appc;

typedef struct awrite {
    uv_write_t w;
    appc *c;
    int close_after;
    char data[256];
} awrite;

static struct {
    uv_loop_t loop;
    uv_poll_t lpoll;
    uv_async_t done;
    uv_pipe_t app;
    int lfd;
    int port;
    rp_http_ctx *ctx;
    appc *conns[MAX_CONN];
    int nconns;
    char *heads[MAX_REQ]; /* what the app received, in order */
    int nheads;
    int dropped; /* requests the app closed on without answering */
} S;

typedef struct creq {
    const char *raw;
    int pause_ms; /* before sending */
} creq;

static struct {
    const creq *reqs;
    int n;
    int status[MAX_REQ];
    char body[MAX_REQ][256];
    int got;
    char err[256];
} C;

/* ---------------------------------------------------------------- the fake app */

static void on_app_closed(uv_handle_t *h)
{
    appc *c = h->data;

    rp_buf_free(&c->in); /* c itself stays in S.conns until the case ends */
}

static void app_close(appc *c)
{
    if (!c->open)
        return;
    c->open = 0;
    uv_close((uv_handle_t *)&c->h, on_app_closed);
}

static void on_app_written(uv_write_t *w, int status)
{
    awrite *a = (awrite *)w;

    (void)status;
    if (a->close_after)
        app_close(a->c);
    free(a);
}

static void app_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char chunk[65536];

    (void)h;
    (void)hint;
    *buf = uv_buf_init(chunk, sizeof(chunk));
}

/* Answers every complete request in c->in. */
static void app_serve(appc *c)
{
    for (;;) {
        char *end = c->in.data ? strstr(c->in.data, "\r\n\r\n") : NULL;
        const char *cl;
        size_t head, body = 0;
        awrite *a;
        uv_buf_t b;
        char body_text[64];
        int n, m;

        if (end == NULL)
            return;
        head = (size_t)(end - c->in.data) + 4;
        cl = strcasestr(c->in.data, "\r\ncontent-length:");
        if (cl != NULL && cl < end)
            body = strtoul(cl + 17, NULL, 10);
        if (c->in.len < head + body)
            return;
        if (c->doom) {
            S.dropped++;
            app_close(c);
            return;
        }
        if (S.nheads < MAX_REQ)
            S.heads[S.nheads++] = strndup(c->in.data, head);
        c->nreq++;
        if (strncmp(c->in.data, "GET /doom ", 10) == 0)
            c->doom = 1;
        a = calloc(1, sizeof(*a));
        assert_non_null(a);
        a->c = c;
        a->close_after = strncmp(c->in.data, "GET /close-after ", 17) == 0;
        m = snprintf(body_text, sizeof(body_text), "conn=%d req=%d len=%zu", c->id, c->nreq, body);
        n = snprintf(a->data, sizeof(a->data), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", m,
                     body_text);
        b = uv_buf_init(a->data, (unsigned)n);
        assert_int_equal(uv_write(&a->w, (uv_stream_t *)&c->h, &b, 1, on_app_written), 0);
        rp_buf_consume(&c->in, head + body);
    }
}

static void on_app_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    appc *c = s->data;

    if (n < 0) {
        app_close(c);
        return;
    }
    if (n > 0 && c->open) {
        assert_int_equal(rp_buf_append(&c->in, buf->base, (size_t)n), 0);
        app_serve(c);
    }
}

static void on_app_conn(uv_stream_t *server, int status)
{
    appc *c = calloc(1, sizeof(*c));

    assert_int_equal(status, 0);
    assert_non_null(c);
    assert_true(S.nconns < MAX_CONN);
    rp_buf_init(&c->in, 1 << 20);
    assert_int_equal(uv_pipe_init(&S.loop, &c->h, 0), 0);
    c->h.data = c;
    c->id = S.nconns + 1;
    c->open = 1;
    S.conns[S.nconns++] = c;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&c->h), 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&c->h, app_alloc, on_app_read), 0);
}

/* ---------------------------------------------------------------- the front door */

static void h_proxy(rp_req *req)
{
    char name[64] = "X-MS-CLIENT-PRINCIPAL-NAME", value[64] = "alice", cert[16] = "CERT";
    char longpath[300];
    /* One name no built-in rule strips: only the target's own list keeps the client's out. */
    rp_proxy_hdr extra[3] = {
        {name, value}, {"X-MS-CLIENT-PRINCIPAL-ID", "42"}, {"X-Test-User", "bob"}};
    rp_proxy_target t = {.unix_path = g_sock, .client_cert = cert, .extra = extra, .nextra = 3};

    if (strcmp(req->path, "/bad-value") == 0)
        snprintf(value, sizeof(value), "a\r\nX-Evil: 1");
    else if (strcmp(req->path, "/bad-name") == 0)
        snprintf(name, sizeof(name), "X-A:B");
    else if (strcmp(req->path, "/own-name") == 0)
        snprintf(name, sizeof(name), "x-forwarded-for");
    if (strcmp(req->path, "/long-path") == 0) {
        memset(longpath, 'a', sizeof(longpath) - 1);
        longpath[sizeof(longpath) - 1] = '\0';
        t.unix_path = longpath;
    }
    rp_proxy_forward(req, &t);
    /* Borrowed for the call only: the proxy must have copied what it keeps. */
    memset(name, 'Z', sizeof(name) - 1);
    memset(value, 'Z', sizeof(value) - 1);
    memset(cert, 'Z', sizeof(cert) - 1);
}

static void on_accept(uv_poll_t *p, int status, int events)
{
    (void)p;
    (void)events;
    if (status < 0)
        return;
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(S.lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0)
            return;
        assert_int_equal(rp_http_conn_start(S.ctx, fd, &peer, RP_CONN_LOCAL), 0);
    }
}

static void on_client_done(uv_async_t *a)
{
    (void)a;
    rp_http_ctx_close_all(S.ctx);
    rp_proxy_loop_stop();
    for (int i = 0; i < S.nconns; i++)
        app_close(S.conns[i]);
    uv_close((uv_handle_t *)&S.app, NULL);
    uv_close((uv_handle_t *)&S.lpoll, NULL);
    uv_close((uv_handle_t *)&S.done, NULL);
}

/* ---------------------------------------------------------------- the client */

static void cfail(const char *what)
{
    if (C.err[0] == '\0')
        snprintf(C.err, sizeof(C.err), "request %d: %s (%s)", C.got + 1, what, strerror(errno));
}

/* Reads one response with Content-Length into C: 0, or -1. */
static int read_resp(int fd)
{
    char buf[8192];
    size_t len = 0, head, blen;
    char *end, *cl;
    ssize_t r;

    for (;;) {
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            head = (size_t)(end - buf) + 4;
            cl = strcasestr(buf, "\r\ncontent-length:");
            if (cl == NULL || cl > end || strncmp(buf, "HTTP/1.1 ", 9) != 0) {
                cfail("no Content-Length");
                return -1;
            }
            blen = strtoul(cl + 17, NULL, 10);
            if (len >= head + blen)
                break;
        }
        if (len + 1 >= sizeof(buf)) {
            cfail("response too long");
            return -1;
        }
        r = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0) {
            cfail(r == 0 ? "closed" : "read");
            return -1;
        }
        len += (size_t)r;
    }
    C.status[C.got] = (int)strtol(buf + 9, NULL, 10);
    snprintf(C.body[C.got], sizeof(C.body[0]), "%.*s", (int)blen, buf + head);
    C.got++;
    return 0;
}

static void client_main(void *arg)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    struct timeval tv = {.tv_sec = IO_MS / 1000};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    (void)arg;
    a.sin_port = htons((uint16_t)S.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        cfail("connect");
    } else {
        for (int i = 0; i < C.n; i++) {
            size_t n = strlen(C.reqs[i].raw);
            if (C.reqs[i].pause_ms)
                usleep((useconds_t)C.reqs[i].pause_ms * 1000u);
            /* One write: head and body reach the front door together. */
            if (write(fd, C.reqs[i].raw, n) != (ssize_t)n) {
                cfail("write");
                break;
            }
            if (read_resp(fd) != 0)
                break;
        }
    }
    if (fd >= 0)
        close(fd);
    uv_async_send(&S.done);
}

static void run_case(const creq *reqs, int n)
{
    rp_http_limits lim = {IO_MS, IO_MS, IO_MS, IO_MS};
    char err[256] = "";
    uv_thread_t th;

    memset(&S, 0, sizeof(S));
    memset(&C, 0, sizeof(C));
    C.reqs = reqs;
    C.n = n;
    assert_int_equal(uv_loop_init(&S.loop), 0);
    S.lfd = rp_listen_tcp("127.0.0.1", &S.port, 64, err, sizeof(err));
    if (S.lfd < 0)
        fail_msg("rp_listen_tcp: %s", err);
    assert_int_equal(rp_http_ctx_create(&S.loop, g_router, NULL, &lim, S.port, &S.ctx), 0);
    rp_http_ctx_set_local_router(S.ctx, g_router);
    unlink(g_sock);
    assert_int_equal(uv_pipe_init(&S.loop, &S.app, 0), 0);
    assert_int_equal(uv_pipe_bind(&S.app, g_sock), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&S.app, 16, on_app_conn), 0);
    assert_int_equal(uv_poll_init(&S.loop, &S.lpoll, S.lfd), 0);
    assert_int_equal(uv_poll_start(&S.lpoll, UV_READABLE, on_accept), 0);
    assert_int_equal(uv_async_init(&S.loop, &S.done, on_client_done), 0);
    assert_int_equal(uv_thread_create(&th, client_main, NULL), 0);
    uv_run(&S.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_thread_join(&th), 0);
    /* Nothing left open: the pool's connections and timer went with rp_proxy_loop_stop. */
    assert_int_equal(uv_loop_close(&S.loop), 0);
    for (int i = 0; i < S.nconns; i++)
        free(S.conns[i]);
    rp_http_ctx_free(S.ctx);
    close(S.lfd);
    if (C.err[0] != '\0')
        fail_msg("client: %s", C.err);
}

static void free_heads(void)
{
    for (int i = 0; i < S.nheads; i++)
        free(S.heads[i]);
    S.nheads = 0;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strcasestr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* ---------------------------------------------------------------- tests */

#define FORGED                                                                                     \
    "Host: 127.0.0.1\r\nX-MS-CLIENT-PRINCIPAL-NAME: mallory\r\nx-ms-client-principal-id: 1\r\n"    \
    "X-MS-TOKEN-AAD-ID-TOKEN: forged\r\nX-ARR-ClientCert: forged\r\nx-test-user: mallory\r\n"      \
    "X-Custom: kept\r\n\r\n"

static void test_extra_headers_and_reuse(void **state)
{
    static const creq reqs[] = {{"GET /a HTTP/1.1\r\n" FORGED, 0},
                                {"GET /b HTTP/1.1\r\n" FORGED, 0}};

    (void)state;
    run_case(reqs, 2);
    assert_int_equal(C.got, 2);
    assert_int_equal(C.status[0], 200);
    assert_string_equal(C.body[0], "conn=1 req=1 len=0");
    /* The same upstream connection for the second request. */
    assert_string_equal(C.body[1], "conn=1 req=2 len=0");
    assert_int_equal(S.nheads, 2);
    for (int i = 0; i < 2; i++) {
        const char *h = S.heads[i];
        assert_int_equal(count(h, "\r\nX-MS-CLIENT-PRINCIPAL-NAME:"), 1);
        assert_non_null(strstr(h, "\r\nX-MS-CLIENT-PRINCIPAL-NAME: alice\r\n"));
        assert_int_equal(count(h, "\r\nX-MS-CLIENT-PRINCIPAL-ID:"), 1);
        assert_non_null(strstr(h, "\r\nX-MS-CLIENT-PRINCIPAL-ID: 42\r\n"));
        assert_int_equal(count(h, "X-ARR-ClientCert:"), 1);
        assert_non_null(strstr(h, "\r\nX-ARR-ClientCert: CERT\r\n"));
        assert_non_null(strstr(h, "\r\nX-Custom: kept\r\n"));
        assert_int_equal(count(h, "\r\nX-Test-User:"), 1);
        assert_non_null(strstr(h, "\r\nX-Test-User: bob\r\n"));
        assert_null(strcasestr(h, "mallory"));
        assert_null(strcasestr(h, "forged"));
        assert_null(strcasestr(h, "x-ms-token"));
        assert_null(strcasestr(h, "\r\nconnection:"));
    }
    free_heads();
}

static void test_bad_targets(void **state)
{
    static const creq reqs[] = {{"GET /bad-value HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0},
                                {"GET /bad-name HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0},
                                {"GET /own-name HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0},
                                {"GET /long-path HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0},
                                {"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0}};

    (void)state;
    run_case(reqs, 5);
    assert_int_equal(C.got, 5);
    assert_int_equal(C.status[0], 500);
    assert_int_equal(C.status[1], 500);
    assert_int_equal(C.status[2], 500);
    assert_int_equal(C.status[3], 502);
    assert_int_equal(C.status[4], 200);
    /* Nothing of the refused ones reached the app. */
    assert_int_equal(S.nheads, 1);
    free_heads();
}

/* A pooled connection the app closes as the next request arrives: sent again, once. */
static void test_retry_on_dead_pooled(void **state)
{
    static const creq reqs[] = {{"GET /doom HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0},
                                {"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0},
                                {"GET /y HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0}};

    (void)state;
    run_case(reqs, 3);
    assert_int_equal(C.got, 3);
    assert_string_equal(C.body[0], "conn=1 req=1 len=0");
    assert_int_equal(C.status[1], 200);
    assert_string_equal(C.body[1], "conn=2 req=1 len=0");
    assert_string_equal(C.body[2], "conn=2 req=2 len=0");
    assert_int_equal(S.dropped, 1);
    free_heads();
}

/* ... but never once part of the body went out on it: the app may have acted on it. */
static void test_no_replay_after_body(void **state)
{
    static const creq reqs[] = {
        {"GET /doom HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0},
        {"POST /p HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello", 0},
        {"GET /z HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0}};

    (void)state;
    run_case(reqs, 3);
    assert_int_equal(C.got, 3);
    assert_int_equal(C.status[1], 502);
    assert_int_equal(S.dropped, 1);
    assert_int_equal(C.status[2], 200);
    assert_string_equal(C.body[2], "conn=2 req=1 len=0");
    free_heads();
}

/* The app closes a connection after answering: the pool sees the EOF while it is idle, and a
 * later POST goes out on a new connection. */
static void test_idle_eof(void **state)
{
    static const creq reqs[] = {
        {"GET /close-after HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 0},
        {"POST /p HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\nhello", 100}};

    (void)state;
    run_case(reqs, 2);
    assert_int_equal(C.got, 2);
    assert_int_equal(C.status[1], 200);
    assert_string_equal(C.body[1], "conn=2 req=1 len=5");
    assert_int_equal(S.dropped, 0);
    free_heads();
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    rp_test_scratch("proxy", g_dir, sizeof(g_dir));
    assert_true((size_t)snprintf(g_sock, sizeof(g_sock), "%s/app.sock", g_dir) < 100);
    assert_int_equal(rp_router_create("rampart.localhost", &g_router), 0);
    assert_int_equal(rp_router_add(g_router, "@", "/", h_proxy,
                                   &(rp_route_opts){.methods = RP_M_ANY, .max_body = 1 << 20}),
                     0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rp_router_free(g_router);
    rp_test_rmtree(g_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extra_headers_and_reuse),
        cmocka_unit_test(test_bad_targets),
        cmocka_unit_test(test_retry_on_dead_pooled),
        cmocka_unit_test(test_no_replay_after_body),
        cmocka_unit_test(test_idle_eof),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
