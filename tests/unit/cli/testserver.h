/*
 * testserver.h - a scripted HTTPS server on 127.0.0.1 for the CLI unit tests: it answers
 * requests from a route table and records what it received (method, target, headers, body),
 * so a test can check both what the client sent and how it judged the answer.
 *
 * One thread accepts connections one at a time and answers each request with
 * "Connection: close". The certificate comes from a fresh local CA (crypto/pki) and covers
 * localhost, login.localhost and 127.0.0.1 (libcurl resolves *.localhost to loopback itself);
 * the CA is written to <dir>/ca.pem for the client's --ca. Include after <cmocka.h>; link with
 * rpcore (OpenSSL, pthreads).
 */
#ifndef RP_TESTS_CLI_TESTSERVER_H
#define RP_TESTS_CLI_TESTSERVER_H

#include "crypto/pki.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TS_MAX_ROUTES 16
#define TS_MAX_REQS   32
#define TS_BODY_MAX   (256 * 1024)

typedef struct ts_route {
    char method[16];
    char path[512]; /* the target without its query, exactly ("*" at the end: a prefix); with a
                       '?', the whole target exactly */
    int status;
    char *body; /* heap copy; NULL = empty */
    int hits;
} ts_route;

typedef struct ts_req {
    char method[16];
    char target[2048]; /* path and query as sent */
    char head[8192];   /* the header lines, lower-cased names as sent */
    char *body;        /* heap, NUL-terminated */
    size_t body_len;
} ts_req;

typedef struct ts_server {
    SSL_CTX *ctx;
    int lfd;
    int port;
    pthread_t thread;
    pthread_mutex_t mu;
    volatile int stop;
    char ca_path[1024];
    ts_route routes[TS_MAX_ROUTES];
    int nroutes;
    ts_req reqs[TS_MAX_REQS];
    int nreqs;
} ts_server;

/* Reads one request (head and Content-Length body) from ssl into r. 0 or -1. */
static inline int ts_read_request(SSL *ssl, ts_req *r)
{
    static char buf[TS_BODY_MAX + 16384];
    size_t n = 0, head_len = 0, want = 0;
    char *end = NULL, *cl, *sp;

    memset(r, 0, sizeof(*r));
    for (;;) {
        int got;
        if (n >= sizeof(buf) - 1)
            return -1;
        got = SSL_read(ssl, buf + n, (int)(sizeof(buf) - 1 - n));
        if (got <= 0)
            return -1;
        n += (size_t)got;
        buf[n] = '\0';
        if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
            head_len = (size_t)(end - buf) + 4;
            cl = strcasestr(buf, "\r\ncontent-length:");
            if (cl != NULL && cl < end) {
                unsigned long v = strtoul(cl + 17, NULL, 10);
                want = (size_t)v;
            }
        }
        if (end != NULL && n >= head_len + want)
            break;
    }
    sp = strchr(buf, ' ');
    if (sp == NULL)
        return -1;
    snprintf(r->method, sizeof(r->method), "%.*s", (int)(sp - buf), buf);
    {
        char *sp2 = strchr(sp + 1, ' ');
        if (sp2 == NULL)
            return -1;
        snprintf(r->target, sizeof(r->target), "%.*s", (int)(sp2 - sp - 1), sp + 1);
    }
    snprintf(r->head, sizeof(r->head), "%.*s", (int)head_len, buf);
    r->body = malloc(want + 1);
    if (r->body == NULL)
        return -1;
    memcpy(r->body, buf + head_len, want);
    r->body[want] = '\0';
    r->body_len = want;
    return 0;
}

static inline ts_route *ts_match(ts_server *s, const ts_req *r)
{
    size_t plen = strcspn(r->target, "?");

    for (int i = 0; i < s->nroutes; i++) {
        ts_route *rt = &s->routes[i];
        size_t n = strlen(rt->path);
        if (strcmp(rt->method, r->method) != 0)
            continue;
        if (strchr(rt->path, '?') != NULL) { /* a route with a query matches it exactly */
            if (strcmp(rt->path, r->target) == 0)
                return rt;
        } else if (n > 0 && rt->path[n - 1] == '*') {
            if (plen >= n - 1 && strncmp(r->target, rt->path, n - 1) == 0)
                return rt;
        } else if (plen == n && strncmp(r->target, rt->path, n) == 0) {
            return rt;
        }
    }
    return NULL;
}

static inline void *ts_main(void *arg)
{
    ts_server *s = arg;

    while (!s->stop) {
        struct pollfd p = {s->lfd, POLLIN, 0};
        int fd;
        SSL *ssl;
        ts_req r;
        ts_route *rt;
        char head[512];
        const char *body;
        int status;

        if (poll(&p, 1, 50) <= 0)
            continue;
        fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1 && ts_read_request(ssl, &r) == 0) {
            pthread_mutex_lock(&s->mu);
            rt = ts_match(s, &r);
            status = rt ? rt->status : 404;
            body = rt && rt->body ? rt->body
                                  : (rt ? ""
                                        : "{\"error\":{\"code\":\"NotFound\","
                                          "\"message\":\"no route\"}}");
            if (rt != NULL)
                rt->hits++;
            if (s->nreqs < TS_MAX_REQS)
                s->reqs[s->nreqs++] = r;
            else
                free(r.body);
            pthread_mutex_unlock(&s->mu);
            snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, strlen(body));
            SSL_write(ssl, head, (int)strlen(head));
            if (body[0] != '\0')
                SSL_write(ssl, body, (int)strlen(body));
            SSL_shutdown(ssl);
        }
        SSL_free(ssl);
        close(fd);
    }
    return NULL;
}

/* Starts the server; the CA goes to dir/ca.pem (s->ca_path). */
static inline void ts_start(ts_server *s, const char *dir)
{
    static const char *const dns[] = {"localhost", "login.localhost"};
    static const char *const ips[] = {"127.0.0.1"};
    EVP_PKEY *ca_key = NULL, *key = NULL;
    X509 *ca = NULL, *cert = NULL;
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int one = 1;

    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    /* A client that gives up early (a refused certificate, a body over its limit) must not
     * kill the test with SIGPIPE when the server writes its answer. */
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(rp_pki_create_ca("cli test CA", 2, &ca_key, &ca), 0);
    assert_int_equal(rp_pki_issue_server(ca_key, ca, "localhost", dns, 2, ips, 1, 2, &key, &cert),
                     0);
    assert_true((size_t)snprintf(s->ca_path, sizeof(s->ca_path), "%.1000s/ca.pem", dir) <
                sizeof(s->ca_path));
    assert_int_equal(rp_pki_write_cert(s->ca_path, ca), 0);
    s->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(s->ctx);
    assert_int_equal(SSL_CTX_use_certificate(s->ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, key), 1);
    X509_free(cert);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &len), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, ts_main, s), 0);
}

/* Adds a route answering method path with status and body (NULL = empty). */
static inline void ts_route_add(ts_server *s, const char *method, const char *path, int status,
                                const char *body)
{
    ts_route *rt;

    pthread_mutex_lock(&s->mu);
    assert_true(s->nroutes < TS_MAX_ROUTES);
    rt = &s->routes[s->nroutes++];
    snprintf(rt->method, sizeof(rt->method), "%s", method);
    snprintf(rt->path, sizeof(rt->path), "%s", path);
    rt->status = status;
    rt->body = body ? strdup(body) : NULL;
    rt->hits = 0;
    pthread_mutex_unlock(&s->mu);
}

/* Forgets routes and recorded requests. */
static inline void ts_reset(ts_server *s)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nroutes; i++)
        free(s->routes[i].body);
    for (int i = 0; i < s->nreqs; i++)
        free(s->reqs[i].body);
    s->nroutes = 0;
    s->nreqs = 0;
    pthread_mutex_unlock(&s->mu);
}

/* The i-th recorded request (the server thread has finished with it once the client has its
 * answer). */
static inline const ts_req *ts_req_at(ts_server *s, int i)
{
    const ts_req *r;

    pthread_mutex_lock(&s->mu);
    r = i < s->nreqs ? &s->reqs[i] : NULL;
    pthread_mutex_unlock(&s->mu);
    return r;
}

static inline int ts_nreqs(ts_server *s)
{
    int n;

    pthread_mutex_lock(&s->mu);
    n = s->nreqs;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static inline void ts_stop(ts_server *s)
{
    s->stop = 1;
    pthread_join(s->thread, NULL);
    close(s->lfd);
    ts_reset(s);
    SSL_CTX_free(s->ctx);
    pthread_mutex_destroy(&s->mu);
}

/*
 * The fixture every CLI command test starts from: a scratch directory named after the test,
 * no proxy variables (the client must talk to the test server directly), the server running
 * with its CA in dir/ca.pem. ts_fixture_stop undoes it.
 */
static inline void ts_fixture_start(ts_server *s, const char *name, char *dir, size_t cap)
{
    rp_test_scratch(name, dir, cap);
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    ts_start(s, dir);
}

static inline void ts_fixture_stop(ts_server *s, const char *dir)
{
    ts_stop(s);
    rp_test_rmtree(dir);
}

/* Reads a whole (small) file into out, NUL-terminated. */
static inline void ts_slurp(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    assert_non_null(f);
    n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

#endif
