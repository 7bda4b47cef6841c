/*
 * tlsload.c - a small TLS client for bench/static-vs-nginx. Two jobs that wrk cannot do:
 *
 *   tlsload handshake HOST PORT [options]
 *       Full-handshake load: every request is a new TCP connection with a full TLS handshake
 *       (no session is ever offered back, so the server cannot resume), one GET with
 *       "Connection: close", the whole response read, then close_notify and close.
 *       wrk -H 'Connection: close' is not this: wrk keeps its SSL_SESSION across reconnects
 *       (ssl_close -> SSL_clear) and resumes with the server's ticket, so it measures PSK
 *       handshakes. Prints one JSON object with rate, latency percentiles and errors.
 *
 *   tlsload resume HOST PORT N [options]
 *       N sequential connections that reconnect the way wrk does (SSL_shutdown, SSL_clear and
 *       SSL_connect again on the same SSL object, which offers the last session's ticket).
 *       Prints {"mode":"resume","connections":N,"resumed":R,...}: how often the server let a
 *       client that uses each TLS 1.3 ticket once (as wrk and browsers do) resume.
 *
 *   tlsload hold HOST PORT N [options]
 *       Opens N TLS connections (handshake done, one keep-alive GET answered) and keeps them
 *       open and idle. Prints {"event":"holding",...} once all are open (or have failed), then
 *       answers each line on stdin with {"event":"status","open":...}; exits on EOF or SIGTERM.
 *
 * Options: --path P (default /file.bin), --host-header H (default HOST), --sni NAME (default
 * none), --conns C (handshake: concurrent connections, default 64; hold: handshakes in flight,
 * default 64), --threads T (handshake only, default 2), --duration S (default 10),
 * --tls12 (offer only TLS 1.2; default: client default, i.e. TLS 1.3).
 *
 * Build: cc -O2 -o tlsload tlsload.c -lssl -lcrypto -lpthread
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ST_CONNECT, ST_HANDSHAKE, ST_WRITE, ST_READ, ST_IDLE, ST_DONE };

typedef struct conn {
    int fd;
    int state;
    SSL *ssl;
    char buf[4096];
    size_t len;
    long need; /* bytes of the response still expected once the head is parsed, -1 unknown */
    size_t req_off;
    uint64_t t0;
    struct conn *next_free;
} conn;

typedef struct worker {
    int ep;
    int nconns;
    uint64_t deadline;
    /* results */
    uint64_t done, errors, resumed, connect_errors, bad_status;
    uint32_t *lat; /* microseconds */
    size_t nlat, caplat;
    char proto[32], cipher[64];
    pthread_t th;
} worker;

static struct sockaddr_in g_addr;
static const char *g_path = "/file.bin";
static const char *g_host_header;
static const char *g_sni;
static int g_tls12;
static SSL_CTX *g_ctx;
static char g_req[1024];
static size_t g_req_len;
static int g_mode_hold;
static volatile sig_atomic_t g_stop;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void die(const char *msg)
{
    fprintf(stderr, "tlsload: %s\n", msg);
    exit(2);
}

static int ev_set(int ep, conn *c, uint32_t ev, int add)
{
    struct epoll_event e;
    e.events = ev;
    e.data.ptr = c;
    return epoll_ctl(ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &e);
}

static void conn_reset(int ep, conn *c, int graceful)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        if (c->ssl != NULL && graceful)
            SSL_shutdown(c->ssl);
    }
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->len = 0;
    c->need = -1;
    c->req_off = 0;
    ERR_clear_error();
}

/* Starts a new connection; 0 or -1 (counted as a connect error by the caller). */
static int conn_start(int ep, conn *c)
{
    int one = 1, r;

    c->t0 = now_us();
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    r = connect(c->fd, (struct sockaddr *)&g_addr, sizeof(g_addr));
    if (r < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->ssl = SSL_new(g_ctx);
    if (c->ssl == NULL)
        die("SSL_new failed");
    SSL_set_fd(c->ssl, c->fd);
    if (g_sni != NULL)
        SSL_set_tlsext_host_name(c->ssl, g_sni);
    SSL_set_connect_state(c->ssl);
    c->state = ST_CONNECT;
    c->len = 0;
    c->need = -1;
    c->req_off = 0;
    if (ev_set(ep, c, EPOLLOUT, 1) != 0)
        die("epoll_ctl");
    return 0;
}

/* Parses the response head in c->buf; 1 when complete response present, 0 more, -1 bad. */
static int response_complete(conn *c, int *status)
{
    if (c->need < 0) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        char *p;
        long clen = -1;
        if (end == NULL)
            return c->len >= sizeof(c->buf) ? -1 : 0;
        if (c->len < 12 || memcmp(c->buf, "HTTP/1.", 7) != 0)
            return -1;
        *status = atoi(c->buf + 9);
        for (p = c->buf; p < end; p++) {
            if ((p == c->buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
                clen = strtol(p + 15, NULL, 10);
                break;
            }
        }
        if (clen < 0)
            return -1;
        /* what is left to read after the bytes already buffered past the head */
        c->need = clen - (long)(c->buf + c->len - (end + 4));
        c->len = 0; /* the body is not kept */
    }
    return c->need <= 0 ? 1 : 0;
}

/* Drives one connection; returns 1 when a request finished, 0 otherwise, -1 on error. */
static int conn_step(worker *w, conn *c, uint32_t events)
{
    int r, status = 0;

    (void)events;
    for (;;) {
        switch (c->state) {
        case ST_CONNECT: {
            int err = 0;
            socklen_t el = sizeof(err);
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err != 0) {
                w->connect_errors++;
                return -1;
            }
            c->state = ST_HANDSHAKE;
            continue;
        }
        case ST_HANDSHAKE:
            r = SSL_do_handshake(c->ssl);
            if (r == 1) {
                if (SSL_session_reused(c->ssl))
                    w->resumed++;
                if (w->proto[0] == '\0') {
                    snprintf(w->proto, sizeof(w->proto), "%s", SSL_get_version(c->ssl));
                    snprintf(w->cipher, sizeof(w->cipher), "%s", SSL_get_cipher_name(c->ssl));
                }
                c->state = ST_WRITE;
                continue;
            }
            switch (SSL_get_error(c->ssl, r)) {
            case SSL_ERROR_WANT_READ:
                ev_set(w->ep, c, EPOLLIN, 0);
                return 0;
            case SSL_ERROR_WANT_WRITE:
                ev_set(w->ep, c, EPOLLOUT, 0);
                return 0;
            default:
                return -1;
            }
        case ST_WRITE:
            r = SSL_write(c->ssl, g_req + c->req_off, (int)(g_req_len - c->req_off));
            if (r > 0) {
                c->req_off += (size_t)r;
                if (c->req_off == g_req_len)
                    c->state = ST_READ;
                continue;
            }
            switch (SSL_get_error(c->ssl, r)) {
            case SSL_ERROR_WANT_READ:
                ev_set(w->ep, c, EPOLLIN, 0);
                return 0;
            case SSL_ERROR_WANT_WRITE:
                ev_set(w->ep, c, EPOLLOUT, 0);
                return 0;
            default:
                return -1;
            }
        case ST_READ:
            if (c->need >= 0) {
                char sink[16384];
                r = SSL_read(c->ssl, sink, (int)sizeof(sink));
                if (r > 0)
                    c->need -= r;
            } else {
                r = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
                if (r > 0)
                    c->len += (size_t)r;
            }
            if (r > 0) {
                int k = response_complete(c, &status);
                if (k < 0)
                    return -1;
                if (k == 1) {
                    if (c->need < 0 || status != 200)
                        w->bad_status++;
                    if (w->nlat == w->caplat) {
                        w->caplat = w->caplat ? w->caplat * 2 : 65536;
                        w->lat = realloc(w->lat, w->caplat * sizeof(*w->lat));
                        if (w->lat == NULL)
                            die("out of memory");
                    }
                    w->lat[w->nlat++] = (uint32_t)(now_us() - c->t0);
                    w->done++;
                    c->state = g_mode_hold ? ST_IDLE : ST_DONE;
                    if (g_mode_hold)
                        ev_set(w->ep, c, EPOLLIN, 0);
                    return 1;
                }
                continue;
            }
            switch (SSL_get_error(c->ssl, r)) {
            case SSL_ERROR_WANT_READ:
                ev_set(w->ep, c, EPOLLIN, 0);
                return 0;
            case SSL_ERROR_WANT_WRITE:
                ev_set(w->ep, c, EPOLLOUT, 0);
                return 0;
            default:
                return -1;
            }
        case ST_IDLE: {
            char sink[4096];
            r = SSL_read(c->ssl, sink, sizeof(sink));
            if (r > 0)
                return 0; /* unexpected data; ignore */
            if (SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ)
                return 0;
            return -1; /* closed by the server */
        }
        default:
            return 0;
        }
    }
}

/* ---------------------------------------------------------------- handshake mode */

static void *handshake_thread(void *arg)
{
    worker *w = arg;
    conn *cs = calloc((size_t)w->nconns, sizeof(conn));
    struct epoll_event evs[256];

    if (cs == NULL)
        die("out of memory");
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < w->nconns; i++) {
        cs[i].fd = -1;
        while (conn_start(w->ep, &cs[i]) != 0) {
            w->connect_errors++;
            usleep(1000);
        }
    }
    while (now_us() < w->deadline) {
        int n = epoll_wait(w->ep, evs, 256, 50);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            int r = conn_step(w, c, evs[i].events);
            if (r == 0)
                continue;
            if (r < 0)
                w->errors++;
            conn_reset(w->ep, c, r > 0);
            if (now_us() >= w->deadline)
                continue;
            while (conn_start(w->ep, c) != 0) {
                w->connect_errors++;
                usleep(1000);
            }
        }
    }
    for (int i = 0; i < w->nconns; i++)
        conn_reset(w->ep, &cs[i], 0);
    close(w->ep);
    free(cs);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint32_t *v, size_t n, double p)
{
    size_t i;
    if (n == 0)
        return 0;
    i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i] / 1000.0;
}

static int run_handshake(int conns, int threads, double duration)
{
    worker *ws = calloc((size_t)threads, sizeof(worker));
    uint64_t t0, t1, done = 0, errors = 0, resumed = 0, cerr = 0, bad = 0;
    uint32_t *all;
    size_t nall = 0;

    if (ws == NULL)
        die("out of memory");
    t0 = now_us();
    for (int i = 0; i < threads; i++) {
        ws[i].nconns = conns / threads + (i < conns % threads ? 1 : 0);
        ws[i].deadline = t0 + (uint64_t)(duration * 1e6);
        if (pthread_create(&ws[i].th, NULL, handshake_thread, &ws[i]) != 0)
            die("pthread_create");
    }
    for (int i = 0; i < threads; i++)
        pthread_join(ws[i].th, NULL);
    t1 = now_us();
    for (int i = 0; i < threads; i++) {
        done += ws[i].done;
        errors += ws[i].errors;
        resumed += ws[i].resumed;
        cerr += ws[i].connect_errors;
        bad += ws[i].bad_status;
        nall += ws[i].nlat;
    }
    all = malloc((nall ? nall : 1) * sizeof(*all));
    if (all == NULL)
        die("out of memory");
    nall = 0;
    for (int i = 0; i < threads; i++) {
        memcpy(all + nall, ws[i].lat, ws[i].nlat * sizeof(*all));
        nall += ws[i].nlat;
    }
    qsort(all, nall, sizeof(*all), cmp_u32);
    printf("{\"mode\":\"handshake\",\"connections\":%llu,\"seconds\":%.3f,\"rate\":%.1f,"
           "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"errors\":%llu,"
           "\"connect_errors\":%llu,\"bad_status\":%llu,\"resumed\":%llu,\"protocol\":\"%s\","
           "\"cipher\":\"%s\"}\n",
           (unsigned long long)done, (t1 - t0) / 1e6, done / ((t1 - t0) / 1e6),
           pct(all, nall, 0.50), pct(all, nall, 0.90), pct(all, nall, 0.99),
           nall ? all[nall - 1] / 1000.0 : 0.0, (unsigned long long)errors,
           (unsigned long long)cerr, (unsigned long long)bad, (unsigned long long)resumed,
           ws[0].proto, ws[0].cipher);
    fflush(stdout);
    return 0;
}

/* ---------------------------------------------------------------- resume mode */

/* Blocking helpers for the sequential resume mode. */
static int read_response_blocking(SSL *ssl)
{
    conn c;
    int status = 0;

    memset(&c, 0, sizeof(c));
    c.need = -1;
    for (;;) {
        int r;
        if (c.need >= 0) {
            char sink[16384];
            r = SSL_read(ssl, sink, (int)sizeof(sink));
            if (r > 0)
                c.need -= r;
        } else {
            r = SSL_read(ssl, c.buf + c.len, (int)(sizeof(c.buf) - c.len));
            if (r > 0)
                c.len += (size_t)r;
        }
        if (r <= 0)
            return -1;
        r = response_complete(&c, &status);
        if (r < 0)
            return -1;
        if (r == 1)
            return status == 200 ? 0 : -1;
    }
}

static int run_resume(int n)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl;
    int resumed = 0, errors = 0;

    if (ctx == NULL)
        die("SSL_CTX_new");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT); /* what wrk sets */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (g_tls12)
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    ssl = SSL_new(ctx);
    if (ssl == NULL)
        die("SSL_new");
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
        if (fd < 0 || connect(fd, (struct sockaddr *)&g_addr, sizeof(g_addr)) != 0) {
            if (fd >= 0)
                close(fd);
            errors++;
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        SSL_set_fd(ssl, fd);
        if (g_sni != NULL)
            SSL_set_tlsext_host_name(ssl, g_sni);
        if (SSL_connect(ssl) != 1 || SSL_write(ssl, g_req, (int)g_req_len) != (int)g_req_len ||
            read_response_blocking(ssl) != 0) {
            errors++;
        } else if (SSL_session_reused(ssl)) {
            resumed++;
        }
        /* exactly wrk's ssl_close(): the session stays on the SSL for the next connect */
        SSL_shutdown(ssl);
        SSL_clear(ssl);
        close(fd);
        ERR_clear_error();
    }
    printf("{\"mode\":\"resume\",\"connections\":%d,\"resumed\":%d,\"errors\":%d}\n", n,
           resumed, errors);
    fflush(stdout);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return 0;
}

/* ---------------------------------------------------------------- hold mode */

static void on_term(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int run_hold(int n, int inflight)
{
    worker w;
    conn *cs = calloc((size_t)n, sizeof(conn));
    struct epoll_event evs[256], se;
    int started = 0, finished = 0, open = 0, failed = 0, announced = 0;
    uint64_t t0 = now_us();
    static conn stdin_marker;

    if (cs == NULL)
        die("out of memory");
    memset(&w, 0, sizeof(w));
    w.ep = epoll_create1(EPOLL_CLOEXEC);
    se.events = EPOLLIN;
    se.data.ptr = &stdin_marker;
    epoll_ctl(w.ep, EPOLL_CTL_ADD, 0, &se);
    for (int i = 0; i < n; i++)
        cs[i].fd = -1;
    while (!g_stop) {
        int k;
        while (started < n && started - finished < inflight) {
            if (conn_start(w.ep, &cs[started]) != 0) {
                failed++;
                finished++;
            }
            started++;
        }
        if (!announced && finished == n) {
            printf("{\"event\":\"holding\",\"open\":%d,\"failed\":%d,\"seconds\":%.3f,"
                   "\"protocol\":\"%s\",\"cipher\":\"%s\"}\n",
                   open, failed, (now_us() - t0) / 1e6, w.proto, w.cipher);
            fflush(stdout);
            announced = 1;
        }
        k = epoll_wait(w.ep, evs, 256, 1000);
        for (int i = 0; i < k; i++) {
            conn *c = evs[i].data.ptr;
            int r, was_idle;
            if (c == &stdin_marker) {
                char line[256];
                ssize_t rd = read(0, line, sizeof(line));
                if (rd <= 0) {
                    g_stop = 1;
                    break;
                }
                printf("{\"event\":\"status\",\"open\":%d,\"failed\":%d}\n", open, failed);
                fflush(stdout);
                continue;
            }
            was_idle = c->state == ST_IDLE;
            r = conn_step(&w, c, evs[i].events);
            if (r > 0) {
                open++;
                finished++;
            } else if (r < 0) {
                conn_reset(w.ep, c, 0);
                c->state = ST_DONE;
                if (was_idle)
                    open--;
                else
                    finished++;
                failed++;
            }
        }
    }
    for (int i = 0; i < n; i++)
        conn_reset(w.ep, &cs[i], 0);
    free(cs);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode, *host;
    int port, n = 0, conns = 64, threads = 2;
    double duration = 10;
    int i;

    if (argc < 4)
        die("usage: tlsload handshake|hold HOST PORT [N] [options]");
    mode = argv[1];
    host = argv[2];
    port = atoi(argv[3]);
    i = 4;
    if (strcmp(mode, "hold") == 0 || strcmp(mode, "resume") == 0) {
        if (argc < 5)
            die("hold and resume need N");
        n = atoi(argv[4]);
        g_mode_hold = mode[0] == 'h';
        i = 5;
    } else if (strcmp(mode, "handshake") != 0) {
        die("mode must be handshake, resume or hold");
    }
    for (; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL && strcmp(a, "--tls12") != 0)
            die("option needs a value");
        if (strcmp(a, "--path") == 0)
            g_path = v, i++;
        else if (strcmp(a, "--host-header") == 0)
            g_host_header = v, i++;
        else if (strcmp(a, "--sni") == 0)
            g_sni = v, i++;
        else if (strcmp(a, "--conns") == 0)
            conns = atoi(v), i++;
        else if (strcmp(a, "--threads") == 0)
            threads = atoi(v), i++;
        else if (strcmp(a, "--duration") == 0)
            duration = atof(v), i++;
        else if (strcmp(a, "--tls12") == 0)
            g_tls12 = 1;
        else
            die("unknown option");
    }
    if (conns < 1 || threads < 1 || threads > conns)
        die("bad --conns/--threads");
    memset(&g_addr, 0, sizeof(g_addr));
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &g_addr.sin_addr) != 1)
        die("HOST must be an IPv4 address");
    if (g_host_header == NULL)
        g_host_header = host;
    g_req_len = (size_t)snprintf(g_req, sizeof(g_req),
                                 "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", g_path, g_host_header,
                                 g_mode_hold ? "" : "Connection: close\r\n");
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    if (strcmp(mode, "resume") == 0)
        return run_resume(n);
    g_ctx = SSL_CTX_new(TLS_client_method());
    if (g_ctx == NULL)
        die("SSL_CTX_new");
    SSL_CTX_set_verify(g_ctx, SSL_VERIFY_NONE, NULL);
    /* Never keep or offer a session: every handshake is a full one. */
    SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(g_ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(g_ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_min_proto_version(g_ctx, TLS1_2_VERSION);
    if (g_tls12)
        SSL_CTX_set_max_proto_version(g_ctx, TLS1_2_VERSION);
    if (g_mode_hold)
        return run_hold(n, conns);
    return run_handshake(conns, threads, duration);
}
