/*
 * handler.c - an Azure Functions custom handler in C: a small HTTP/1.1 server on
 * 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT that answers the host's invocations.
 *
 * The host (rampart, or Azure's Functions host) calls POST /FUNCTION with the invocation
 * envelope {"Data": {BINDING: ...}, "Metadata": {...}} and reads back
 * {"Outputs": {BINDING: ...}, "Logs": [...], "ReturnValue": ...} (docs/functions.md,
 * "Invocation"). This app's functions, one folder each with its function.json:
 *   hello  HTTP, function key, GET/POST: greets ?name= or {"name": ...} in the body, via `res`
 *   items  HTTP items/{id:int}, anonymous: the route parameter, via `res`
 *   ping   HTTP, anonymous: "pong" via `$return`
 *   tick   timer, every 2 s: counts its runs in memory
 *   ticks  HTTP, anonymous: that count, so one can watch the timer fire
 *
 * The server: a thread per connection, because the host opens one connection per invocation and
 * a slow function must not hold up the others; at most MAX_CONNS at once, because threads count
 * towards the sandbox's pids limit. Keep-alive and pipelining for clients that want them (the
 * host itself sends "Connection: close"). Bodies are framed by Content-Length only, which the
 * host always sends: Transfer-Encoding is answered 501 and the connection closed, since where
 * the body ends is then unknown. A request is read whole into one buffer of at most
 * HEAD_MAX + BODY_MAX bytes; anything larger is refused before it is read.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX   (16u * 1024) /* request line and headers (431 beyond) */
#define TARGET_MAX 1024u        /* the request target; invocations are "/FUNCTION" (414 beyond) */
#define BODY_MAX   (8u << 20)   /* the host caps a client's body at 4 MiB, but its envelope */
                                /* around it (base64, JSON escapes, headers) is larger (413) */
#define MAX_CONNS    64         /* connections served at once (503 beyond) */
#define IO_TIMEOUT_S 60         /* an idle keep-alive or stalled peer is dropped after this */

/* What the server keeps of a request: copies, so the read buffer may move while the body comes. */
struct request {
    char method[16];
    char target[TARGET_MAX + 1];
    char invocation_id[64]; /* X-Azure-Functions-InvocationId, "" when absent or too long */
    size_t content_length;
    int keep_alive;
    int conn_close, conn_keep; /* the Connection header's tokens, whatever order they came in */
};

struct buf {
    char *p;
    size_t len, cap;
};

static atomic_int conns; /* connections being served */

/* The timer's record, read by the ticks function from another connection's thread. */
static pthread_mutex_t ticks_mu = PTHREAD_MUTEX_INITIALIZER;
static long tick_runs;
static char tick_last[64]; /* the host's UtcNow of the last run */

/* ------------------------------------------------------------------ functions */

/* An http output binding's value. The body goes as a string of JSON: a string is what Azure's
 * host reads as an HTTP body everywhere. Steals doc and hdrs (hdrs may be NULL). */
static json_t *http_json(int status, json_t *doc, json_t *hdrs)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_t *out = NULL;

    json_decref(doc);
    if (hdrs == NULL)
        hdrs = json_object();
    if (text != NULL && hdrs != NULL &&
        json_object_set_new(hdrs, "Content-Type", json_string("application/json")) == 0) {
        out = json_pack("{s:i,s:O,s:s}", "statusCode", status, "headers", hdrs, "body", text);
    }
    json_decref(hdrs);
    free(text);
    return out;
}

/* The answer to the host: `out` under the output binding (NULL: as the ReturnValue) and one
 * log line. Steals out and log; NULL when either is NULL (out of memory). */
static json_t *answer(const char *binding, json_t *out, json_t *log)
{
    if (out == NULL || log == NULL) {
        json_decref(out);
        json_decref(log);
        return NULL;
    }
    if (binding == NULL)
        return json_pack("{s:{},s:[o],s:o}", "Outputs", "Logs", log, "ReturnValue", out);
    return json_pack("{s:{s:o},s:[o],s:n}", "Outputs", binding, out, "Logs", log, "ReturnValue");
}

static json_t *trigger_req(json_t *inv)
{
    return json_object_get(json_object_get(inv, "Data"), "req");
}

static json_t *fn_hello(json_t *inv, const struct request *rq)
{
    json_t *req = trigger_req(inv), *body_doc = NULL, *hdrs, *ans;
    json_t *body = json_object_get(req, "Body");
    const char *name = json_string_value(json_object_get(json_object_get(req, "Query"), "name"));

    /* The query wins; else a JSON body {"name": "..."}; else the world. */
    if (name == NULL && json_string_length(body) > 0) {
        body_doc = json_loadb(json_string_value(body), json_string_length(body),
                              JSON_REJECT_DUPLICATES, NULL);
        name = json_string_value(json_object_get(body_doc, "name"));
        if (name == NULL) {
            json_decref(body_doc);
            return answer(
                "res",
                http_json(400, json_pack("{s:s}", "error", "expected {\"name\": STRING}"), NULL),
                json_string("hello: a body without a name"));
        }
    }
    if (name == NULL)
        name = "world";
    hdrs = json_pack("{s:s,s:s}", "X-Handler", "rampart-c-example", "X-Invocation-Id",
                     rq->invocation_id);
    ans = answer(
        "res",
        http_json(200, json_pack("{s:o}", "greeting", json_sprintf("Hello, %s!", name)), hdrs),
        json_sprintf("hello: greeted %s", name));
    json_decref(body_doc); /* after the last use of name, which may point into it */
    return ans;
}

/* Route parameters come in Data.req.Params and in Metadata.Params; either will do. */
static json_t *fn_items(json_t *inv, const struct request *rq)
{
    json_t *id = json_object_get(json_object_get(trigger_req(inv), "Params"), "id");
    const char *s, *from = "Data.req.Params";
    char *end;
    long long n;

    (void)rq;
    if (id == NULL) {
        id = json_object_get(json_object_get(json_object_get(inv, "Metadata"), "Params"), "id");
        from = "Metadata.Params";
    }
    s = json_string_value(id);
    /* The {id:int} constraint already held, but a handler checks its own input. */
    errno = 0;
    n = s ? strtoll(s, &end, 10) : 0;
    if (s == NULL || *s == '\0' || *end != '\0' || errno != 0)
        return answer("res", http_json(400, json_pack("{s:s}", "error", "no integer id"), NULL),
                      json_string("items: no integer id"));
    return answer("res", http_json(200, json_pack("{s:I}", "id", (json_int_t)n), NULL),
                  json_sprintf("items: id %lld from %s", n, from));
}

static json_t *fn_ping(json_t *inv, const struct request *rq)
{
    (void)inv;
    (void)rq;
    return answer(NULL,
                  json_pack("{s:i,s:{s:s},s:s}", "statusCode", 200, "headers", "Content-Type",
                            "text/plain", "body", "pong"),
                  json_string("ping: pong"));
}

static json_t *fn_tick(json_t *inv, const struct request *rq)
{
    const char *now = json_string_value(
        json_object_get(json_object_get(json_object_get(inv, "Metadata"), "sys"), "UtcNow"));
    long runs;

    (void)rq;
    if (pthread_mutex_lock(&ticks_mu) != 0)
        return NULL;
    runs = ++tick_runs;
    snprintf(tick_last, sizeof(tick_last), "%s", now ? now : "");
    pthread_mutex_unlock(&ticks_mu);
    return json_pack("{s:{},s:[o],s:n}", "Outputs", "Logs", json_sprintf("tick: run %ld", runs),
                     "ReturnValue");
}

static json_t *fn_ticks(json_t *inv, const struct request *rq)
{
    char last[sizeof(tick_last)];
    long runs;

    (void)inv;
    (void)rq;
    if (pthread_mutex_lock(&ticks_mu) != 0)
        return NULL;
    runs = tick_runs;
    memcpy(last, tick_last, sizeof(last));
    pthread_mutex_unlock(&ticks_mu);
    return answer(
        "res", http_json(200, json_pack("{s:I,s:s}", "runs", (json_int_t)runs, "last", last), NULL),
        json_sprintf("ticks: %ld runs", runs));
}

static const struct {
    const char *name;
    json_t *(*fn)(json_t *inv, const struct request *rq);
} functions[] = {
    {"hello", fn_hello}, {"items", fn_items}, {"ping", fn_ping},
    {"tick", fn_tick},   {"ticks", fn_ticks},
};

/* Runs the function the target names. Returns the HTTP status for the host; on 200, *out is the
 * answer (JSON, malloc'd). Error statuses carry no body, so a HEAD never gets one. */
static int dispatch(const struct request *rq, const char *body, size_t blen, char **out)
{
    const char *name = rq->target + 1;
    size_t n = strcspn(name, "?");
    json_t *inv, *ans = NULL;

    *out = NULL;
    for (size_t i = 0; i < sizeof(functions) / sizeof(functions[0]); i++) {
        if (strlen(functions[i].name) != n || memcmp(functions[i].name, name, n) != 0)
            continue;
        if (strcmp(rq->method, "POST") != 0)
            return 405;
        inv = json_loadb(body, blen, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
        if (!json_is_object(inv)) {
            json_decref(inv);
            return 400;
        }
        ans = functions[i].fn(inv, rq);
        json_decref(inv);
        *out = ans ? json_dumps(ans, JSON_COMPACT) : NULL;
        json_decref(ans);
        return *out ? 200 : 500;
    }
    return 404;
}

/* ------------------------------------------------------------------ HTTP */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    default: return "Internal Server Error";
    }
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL); /* a gone peer is an error, not SIGPIPE */
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One response, head and body in one send (two small sends would meet Nagle's delay). */
static int respond(int fd, int status, const char *body, size_t blen, int keep_alive)
{
    char head[256];
    char *all;
    int hn = snprintf(
        head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nConnection: %s\r\n%s%s\r\n",
        status, reason(status), blen, keep_alive ? "keep-alive" : "close",
        status == 405 ? "Allow: POST\r\n" : "", blen ? "Content-Type: application/json\r\n" : "");
    int rc;

    if (hn < 0 || (size_t)hn >= sizeof(head) || blen > SIZE_MAX - (size_t)hn)
        return -1;
    if ((all = malloc((size_t)hn + blen)) == NULL)
        return -1;
    memcpy(all, head, (size_t)hn);
    if (blen > 0)
        memcpy(all + hn, body, blen);
    rc = send_all(fd, all, (size_t)hn + blen);
    free(all);
    return rc;
}

/* Reads more bytes, first growing b to hold `want` in all (want > b->len). Returns what recv
 * did: the count, 0 at the end of the stream, -1 on an error or the I/O timeout. */
static ssize_t fill(int fd, struct buf *b, size_t want)
{
    ssize_t n;

    if (b->cap < want) {
        char *p = realloc(b->p, want);
        if (p == NULL)
            return -1;
        b->p = p;
        b->cap = want;
    }
    do
        n = recv(fd, b->p + b->len, b->cap - b->len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        b->len += (size_t)n;
    return n;
}

/* Where the head ends (just past its empty line), or 0 while it has not. */
static size_t head_end(const struct buf *b)
{
    size_t n = b->len < HEAD_MAX ? b->len : HEAD_MAX;

    for (size_t i = 3; i < n; i++)
        if (memcmp(b->p + i - 3, "\r\n\r\n", 4) == 0)
            return i + 1;
    return 0;
}

static int tchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Is tok one of the comma-separated tokens in v (ignoring case)? */
static int has_token(const char *v, const char *tok)
{
    size_t tl = strlen(tok);

    while (*v) {
        const char *s, *e;
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        for (s = v; *v && *v != ','; v++)
            ;
        for (e = v; e > s && (e[-1] == ' ' || e[-1] == '\t'); e--)
            ;
        if ((size_t)(e - s) == tl && strncasecmp(s, tok, tl) == 0)
            return 1;
    }
    return 0;
}

/* One header line (NUL-terminated, without its CRLF). Returns 0 or the status to refuse with. */
static int header(char *line, struct request *rq, int *hosts, int *have_length)
{
    char *colon = strchr(line, ':'), *v, *e;
    size_t n = 0;

    /* A name of tchars right up to the colon: no whitespace before it (RFC 9112 5.1), and no
     * obsolete line folding, which would start with whitespace. */
    if (colon == NULL || colon == line)
        return 400;
    for (char *p = line; p < colon; p++)
        if (!tchar((unsigned char)*p))
            return 400;
    *colon = '\0';
    for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
        ;
    for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
        ;
    *e = '\0';
    for (char *p = v; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return 400;

    if (strcasecmp(line, "content-length") == 0) {
        if (*v == '\0')
            return 400;
        for (char *p = v; *p; p++) {
            if (*p < '0' || *p > '9')
                return 400;    /* also "5, 5": one value only */
            if (n <= BODY_MAX) /* past it the value only needs to stay too big, not exact */
                n = n * 10 + (size_t)(*p - '0');
        }
        /* Two different lengths would let two parsers disagree on where the body ends. */
        if (*have_length && n != rq->content_length)
            return 400;
        *have_length = 1;
        rq->content_length = n;
    } else if (strcasecmp(line, "transfer-encoding") == 0) {
        return 501;
    } else if (strcasecmp(line, "connection") == 0) {
        rq->conn_close |= has_token(v, "close");
        rq->conn_keep |= has_token(v, "keep-alive");
    } else if (strcasecmp(line, "host") == 0) {
        (*hosts)++;
    } else if (strcasecmp(line, "x-azure-functions-invocationid") == 0) {
        if (strlen(v) < sizeof(rq->invocation_id))
            memcpy(rq->invocation_id, v, strlen(v) + 1);
    }
    return 0;
}

/* Parses the head, head[0..len) ending in its empty line, in place. Returns 0 or a status. */
static int parse_head(char *head, size_t len, struct request *rq)
{
    char *line = head, *eol, *sp1, *sp2;
    int hosts = 0, have_length = 0, http11, rc;

    memset(rq, 0, sizeof(*rq));
    if (memchr(head, '\0', len) != NULL)
        return 400;
    head[len - 2] = '\0'; /* every line, the last included, still ends in CRLF */

    /* The request line: METHOD SP TARGET SP VERSION. */
    eol = strstr(line, "\r\n");
    *eol = '\0';
    if (strpbrk(line, "\r\n") != NULL || (sp1 = strchr(line, ' ')) == NULL ||
        (sp2 = strchr(sp1 + 1, ' ')) == NULL || strchr(sp2 + 1, ' ') != NULL)
        return 400;
    if (sp1 == line || (size_t)(sp1 - line) >= sizeof(rq->method) || sp1[1] != '/')
        return 400;
    for (char *p = line; p < sp1; p++)
        if (!tchar((unsigned char)*p))
            return 400;
    for (char *p = sp1 + 1; p < sp2; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return 400;
    if ((size_t)(sp2 - sp1 - 1) > TARGET_MAX)
        return 414;
    if (strcmp(sp2 + 1, "HTTP/1.1") == 0)
        http11 = 1;
    else if (strcmp(sp2 + 1, "HTTP/1.0") == 0)
        http11 = 0;
    else
        return 400;
    memcpy(rq->method, line, (size_t)(sp1 - line));
    memcpy(rq->target, sp1 + 1, (size_t)(sp2 - sp1 - 1));

    for (line = eol + 2; *line != '\0'; line = eol + 2) {
        eol = strstr(line, "\r\n");
        *eol = '\0';
        if (strpbrk(line, "\r\n") != NULL) /* a bare CR or LF */
            return 400;
        if ((rc = header(line, rq, &hosts, &have_length)) != 0)
            return rc;
    }
    if (http11 && hosts != 1) /* RFC 9112 3.2: exactly one Host in HTTP/1.1 */
        return 400;
    /* HTTP/1.0 closes unless it asks for keep-alive. */
    rq->keep_alive = !rq->conn_close && (http11 || rq->conn_keep);
    return rq->content_length > BODY_MAX ? 413 : 0;
}

/* Closes after a refusal: stops sending, then reads and drops what the peer still sends for a
 * moment, so the kernel does not answer unread bytes with a reset that can destroy the refusal
 * before the peer has read it. */
static void lingering_close(int fd)
{
    struct timeval tv = {1, 0};
    char sink[4096];
    size_t dropped = 0;
    ssize_t n;

    if (shutdown(fd, SHUT_WR) == 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0) {
        while (dropped < (1u << 20) &&
               ((n = recv(fd, sink, sizeof(sink), 0)) > 0 || (n < 0 && errno == EINTR)))
            dropped += n > 0 ? (size_t)n : 0;
    }
    close(fd);
}

static void *serve_conn(void *arg)
{
    int fd = *(int *)arg, status;
    struct buf b = {NULL, 0, 0};
    struct request rq;
    size_t hlen, total;
    char *out;
    int refused = 0;

    free(arg);
    for (;;) {
        while ((hlen = head_end(&b)) == 0) {
            if (b.len >= HEAD_MAX) {
                (void)respond(fd, 431, NULL, 0, 0);
                refused = 1;
                goto out;
            }
            if (fill(fd, &b, HEAD_MAX) <= 0)
                goto out; /* closed, failed or idle: nothing to answer */
        }
        if ((status = parse_head(b.p, hlen, &rq)) != 0) {
            (void)respond(fd, status, NULL, 0, 0);
            refused = 1;
            goto out;
        }
        total = hlen + rq.content_length; /* <= HEAD_MAX + BODY_MAX: no overflow */
        while (b.len < total)
            if (fill(fd, &b, total) <= 0)
                goto out;
        status = dispatch(&rq, b.p + hlen, rq.content_length, &out);
        if (respond(fd, status, out, out ? strlen(out) : 0, rq.keep_alive) != 0) {
            free(out);
            goto out;
        }
        free(out);
        /* Pipelined bytes already read belong to the next request. */
        memmove(b.p, b.p + total, b.len - total);
        b.len -= total;
        if (!rq.keep_alive)
            goto out;
    }
out:
    free(b.p);
    if (refused)
        lingering_close(fd);
    else
        close(fd);
    atomic_fetch_sub(&conns, 1);
    return NULL;
}

/* Hands a connection to a thread of its own, or refuses it when MAX_CONNS are being served. */
static void start_conn(int fd, const pthread_attr_t *attr)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n";
    struct timeval tv = {IO_TIMEOUT_S, 0};
    pthread_t t;
    int *arg = NULL, rc = -1;

    if (atomic_fetch_add(&conns, 1) >= MAX_CONNS) {
        if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
            perror("handler: send 503");
    } else if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
               setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
               (arg = malloc(sizeof(*arg))) == NULL) {
        perror("handler: connection setup");
    } else {
        *arg = fd;
        if ((rc = pthread_create(&t, attr, serve_conn, arg)) != 0)
            fprintf(stderr, "handler: pthread_create: %s\n", strerror(rc));
    }
    if (rc != 0) { /* the thread did not start: its share is undone here */
        free(arg);
        close(fd);
        atomic_fetch_sub(&conns, 1);
    }
}

int main(void)
{
    const char *ps = getenv("FUNCTIONS_CUSTOMHANDLER_PORT");
    struct sockaddr_in sa;
    pthread_attr_t attr;
    char *end;
    long port;
    int lfd, one = 1;

    if (ps == NULL || *ps == '\0') {
        fprintf(stderr, "handler: FUNCTIONS_CUSTOMHANDLER_PORT is not set; the Functions host "
                        "sets it to the port to listen on\n");
        return 2;
    }
    errno = 0;
    port = strtol(ps, &end, 10);
    if (errno != 0 || *end != '\0' || port < 1 || port > 65535) {
        fprintf(stderr, "handler: FUNCTIONS_CUSTOMHANDLER_PORT=%s is not a port\n", ps);
        return 2;
    }
    /* Seed jansson's hash before any thread could race to do it (its documented rule). */
    json_object_seed(0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* the host calls on loopback only */
    if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 128) != 0) {
        fprintf(stderr, "handler: listen on 127.0.0.1:%ld: %s\n", port, strerror(errno));
        return 1;
    }
    if (pthread_attr_init(&attr) != 0 ||
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) != 0) {
        fprintf(stderr, "handler: pthread attributes\n");
        return 1;
    }
    printf("handler: listening on 127.0.0.1:%ld\n", port);
    fflush(stdout);

    for (;;) {
        int fd = accept(lfd, NULL, NULL);

        if (fd >= 0) {
            start_conn(fd, &attr);
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* Out of descriptors or memory: wait for connections to end rather than spin. */
            struct timespec ts = {0, 100 * 1000 * 1000};
            perror("handler: accept");
            nanosleep(&ts, NULL);
        } else if (errno != EINTR && errno != ECONNABORTED) {
            perror("handler: accept");
            return 1;
        }
    }
}
