/*
 * codec_fuzz.c - libFuzzer driver for src/http/codec.c (the HTTP/1.1 request codec) and, for
 * every request head it produces, src/http/path.c (rp_path_normalize on the head's path).
 *
 * The input is the raw byte stream of one connection, so a seed is just a request or a
 * pipeline (corpus: tests/fuzz/corpus/codec/). The first bytes also choose the feed sizes: byte
 * i of the first SCHED bytes gives the size of feed i (1 + b % 61), cycling, so a seed stays a
 * plain request while the fuzzer still controls how it is cut. The stream runs three times:
 * in those feeds, in one feed and (if short) one byte per feed; all three must produce the same
 * events (bodies compared as byte streams, whatever the cuts).
 *
 * Invariants checked with abort() on every call of rp_codec_execute:
 *   - used <= len; ev->kind is the return value;
 *   - progress: NEED_MORE consumed everything it was given, HEAD and BODY consumed something,
 *     END comes only inside a request (so a zero-progress END cannot repeat);
 *   - events come in order: HEAD (BODY)* END, and HEAD only between requests; after END the
 *     codec is idle;
 *   - HEAD: path starts with '/', lies inside the target, method/version/host are sane;
 *   - BODY: non-empty, points inside the bytes consumed by this call; the bytes of one request
 *     never exceed its Content-Length, equal it at END, and all bodies together never exceed
 *     what was fed;
 *   - ERROR: a status from the documented set with a code and message; every later call
 *     returns the same error, consumes nothing, and no other event ever follows.
 * Each feed is a fresh heap block of exactly its size, so ASan sees any read past it.
 *
 * Build with -DCODEC_FUZZ_VIEWS_AT_END to also read the head's views at END, which codec.h
 * promises are still valid then (they are not yet: see the BUG in codec_test.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/str.h"
#include "http/codec.h"
#include "http/path.h"

#define SCHED        4
#define BYTEWISE_MAX 2048
#define IN_MAX       (1u << 16)

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

typedef struct run_state {
    uint64_t hash; /* FNV-1a over the normalised event stream */
    int in_request;
    int in_body;
    int dead;
    int status;
    const rp_http_head *head; /* the current request's head (valid until after END) */
    int has_length;
    uint64_t content_length;
    uint64_t body;       /* body bytes of the current request */
    uint64_t body_total; /* body bytes of all requests */
    uint64_t fed;        /* bytes given to the codec so far */
} run_state;

static void mix(run_state *r, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        r->hash ^= b[i];
        r->hash *= 1099511628211u;
    }
}

static void mix_str(run_state *r, rp_str s)
{
    mix(r, &s.n, sizeof(s.n));
    mix(r, s.p, s.n);
}

static void mix_int(run_state *r, uint64_t v)
{
    mix(r, &v, sizeof(v));
}

static int status_ok(int s)
{
    return s == 400 || s == 411 || s == 413 || s == 414 || s == 417 || s == 431 || s == 501 ||
           s == 505;
}

static void check_path(rp_str path)
{
    char *out = malloc(path.n + 1);
    size_t outlen = 12345;
    rp_path_status why = RP_PATH_OK;
    int rc;

    if (out == NULL)
        abort();
    rc = rp_path_normalize(path.p, path.n, out, path.n + 1, &outlen, &why);
    if (rc == 0) {
        if (why != RP_PATH_OK || outlen == 0 || outlen > path.n || out[0] != '/' ||
            out[outlen] != '\0')
            abort();
    } else if (why == RP_PATH_OK || outlen != 0 || out[0] != '\0') {
        abort();
    }
    free(out);
}

static void on_head(run_state *r, const rp_http_head *h)
{
    if (h == NULL || r->in_request)
        abort();
    if (h->target.n == 0 || h->path.n == 0 || h->path.p[0] != '/' || h->path.p < h->target.p ||
        h->path.p + h->path.n > h->target.p + h->target.n)
        abort();
    if (h->has_query && (h->query.p != h->path.p + h->path.n + 1 ||
                         h->query.p + h->query.n > h->target.p + h->target.n))
        abort();
    if ((int)h->method < RP_METHOD_GET || (int)h->method > RP_METHOD_OPTIONS ||
        !rp_str_eq(h->method_str, rp_method_name(h->method)))
        abort();
    if ((h->version != 10 && h->version != 11) || h->nheaders > RP_HTTP_MAX_HEADERS ||
        h->host.n == 0 || h->port < 0 || h->port > 65535 || rp_http_header_find(h, "host") == NULL)
        abort();
    if ((h->chunked && h->has_length) || (h->chunked && h->version == 10) ||
        (h->keep_alive != 0 && h->keep_alive != 1))
        abort();
    if (h->has_length && h->content_length > RP_HTTP_MAX_CONTENT_LENGTH)
        abort();
    for (size_t i = 0; i < h->host.n; i++)
        if (h->host.p[i] >= 'A' && h->host.p[i] <= 'Z')
            abort();
    check_path(h->path);

    mix(r, "H", 1);
    mix_int(r, (uint64_t)h->method);
    mix_str(r, h->target);
    mix_str(r, h->path);
    mix_int(r, (uint64_t)h->has_query);
    mix_str(r, h->query);
    mix_str(r, h->host);
    mix_int(r, (uint64_t)h->port);
    mix_int(r, (uint64_t)h->version);
    mix_int(r, (uint64_t)h->nheaders);
    mix_int(r, (uint64_t)h->chunked);
    mix_int(r, (uint64_t)h->has_length);
    mix_int(r, h->content_length);
    mix_int(r, (uint64_t)h->keep_alive);
    mix_int(r, (uint64_t)h->expect_continue);
    r->in_request = 1;
    r->in_body = 0;
    r->head = h;
    r->has_length = h->has_length;
    r->content_length = h->content_length;
    r->body = 0;
}

/* Feeds p[0..n) (an exact heap copy) until the codec wants more or fails. */
static void feed(rp_codec *c, run_state *r, const uint8_t *p, size_t n)
{
    char *buf = malloc(n > 0 ? n : 1);
    size_t off = 0;

    if (buf == NULL)
        abort();
    memcpy(buf, p, n);
    r->fed += n;
    for (;;) {
        rp_codec_event ev;
        size_t used = (size_t)-1;
        size_t left = n - off;
        rp_codec_kind k = rp_codec_execute(c, buf + off, left, &used, &ev);

        if (used > left || ev.kind != k)
            abort();
        if (r->dead) {
            /* after ERROR: the same error, nothing consumed, no other event */
            if (k != RP_CODEC_ERROR || used != 0 || ev.status != r->status)
                abort();
            break;
        }
        switch (k) {
        case RP_CODEC_NEED_MORE:
            if (used != left)
                abort();
            free(buf);
            return;
        case RP_CODEC_HEAD:
            if (used == 0)
                abort();
            on_head(r, ev.head);
            break;
        case RP_CODEC_BODY:
            if (!r->in_request || used == 0 || ev.len == 0 || ev.len > used ||
                ev.data < buf + off || ev.data + ev.len > buf + off + used)
                abort();
            /* the head's views must still be readable while the body streams */
            if (r->head->path.p[0] != '/')
                abort();
            r->body += ev.len;
            r->body_total += ev.len;
            if (r->body_total > r->fed || (r->has_length && r->body > r->content_length))
                abort();
            if (!r->in_body)
                mix(r, "B", 1);
            mix(r, ev.data, ev.len);
            r->in_body = 1;
            break;
        case RP_CODEC_END:
            if (!r->in_request || (r->has_length && r->body != r->content_length) ||
                !rp_codec_idle(c))
                abort();
#ifdef CODEC_FUZZ_VIEWS_AT_END
            if (r->head->path.p[0] != '/')
                abort();
#endif
            mix(r, "E", 1);
            r->in_request = 0;
            r->in_body = 0;
            r->head = NULL;
            break;
        case RP_CODEC_ERROR:
            if (!status_ok(ev.status) || ev.code == NULL || ev.message == NULL)
                abort();
            mix(r, "!", 1);
            mix_int(r, (uint64_t)ev.status);
            r->dead = 1;
            r->status = ev.status;
            break;
        default: abort();
        }
        off += used;
    }
    free(buf);
}

/* Runs the stream through a fresh codec in feeds of the given sizes; 0 in sizes = the rest. */
static uint64_t run(const uint8_t *d, size_t n, const size_t *sizes, size_t nsizes)
{
    rp_codec *c = rp_codec_create();
    run_state r;
    size_t off = 0, i = 0;

    if (c == NULL)
        abort();
    memset(&r, 0, sizeof(r));
    r.hash = 14695981039346656037u;
    while (off < n && !r.dead) {
        size_t sz = sizes[i++ % nsizes];
        if (sz == 0 || sz > n - off)
            sz = n - off;
        feed(c, &r, d + off, sz);
        off += sz;
        if (!r.dead)
            feed(c, &r, d + off, 0); /* an empty feed changes nothing */
    }
    if (r.dead) /* one more call: still the same error */
        feed(c, &r, d, 0);
    rp_codec_free(c);
    return r.hash;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    size_t sched[SCHED], whole = 0, one = 1;
    size_t ns = n < SCHED ? n : SCHED;
    uint64_t a, b;

    if (n == 0 || n > IN_MAX)
        return 0;
    for (size_t i = 0; i < ns; i++)
        sched[i] = 1 + d[i] % 61;
    a = run(d, n, sched, ns);
    b = run(d, n, &whole, 1);
    if (a != b)
        abort();
    if (n <= BYTEWISE_MAX && run(d, n, &one, 1) != a)
        abort();
    return 0;
}
