/*
 * codec_test.c - unit tests for src/http/codec.c, the HTTP/1.1 request codec of the front door.
 *
 * Almost everything is one table: raw request bytes and the expected outcome written as a
 * trace, a compact text rendering of the events the codec emits (see trace_head below):
 *
 *     "H POST /up?x=1 example.com:8443 cl=5 ka1;" a head: method, path[?query], host[:port],
 *                                               then flags (v10, cl=N, chunked, 100c), ka0|ka1
 *     "Bhello;"                                 body bytes of one request, all BODY events merged,
 *                                               non-printable bytes as \xHH
 *     "E;"                                      end of the request
 *     "!400;"                                   error with its status (the last event)
 *
 * Every case runs three ways: (a) in one feed, (b) one byte per feed, (c) split at every offset
 * into two feeds. All three must give exactly the expected trace. Each feed is a fresh heap copy
 * of exactly its bytes, so ASan catches a codec that reads past what it was given or keeps a
 * pointer into an old feed. The driver also checks the execute() contract on every call (used
 * <= len, NEED_MORE consumes everything, errors are sticky, body events point into the feed).
 *
 * Bugs these tests found, now fixed, stay as regression cases in bug_cases (run by
 * test_known_bugs) and test_known_bug_views_at_end_{small,big}.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "http/codec.h"

#define TRACE_MAX (1u << 20)

typedef struct codec_case {
    const char *name;
    const char *in; /* raw bytes (may hold NUL); NULL when gen builds the case */
    size_t len;
    const char *want; /* expected trace */
    void (*gen)(rp_buf *in, rp_buf *want);
} codec_case;

/* sizeof keeps embedded NUL bytes and drops the literal's terminator. */
#define C(name, lit, want)                                                                         \
    {                                                                                              \
        name, lit, sizeof(lit) - 1, want, NULL                                                     \
    }
#define G(name, fn)                                                                                \
    {                                                                                              \
        name, NULL, 0, NULL, fn                                                                    \
    }

#define HOST  "Host: a\r\n"
#define GET11 "GET / HTTP/1.1\r\n"

/* ---- generated inputs (too large to write as literals) ---- */

static void fill(rp_buf *b, char ch, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rp_buf_append(b, &ch, 1), 0);
}

/* "GET /aaa...a HTTP/1.1" with exactly n bytes before the CRLF. */
static void gen_reqline(rp_buf *in, rp_buf *want, size_t n, int ok)
{
    size_t fixed = strlen("GET / HTTP/1.1");

    rp_buf_append_str(in, "GET /");
    fill(in, 'a', n - fixed);
    rp_buf_append_str(in, " HTTP/1.1\r\n" HOST "\r\n");
    if (ok) {
        rp_buf_append_str(want, "H GET /");
        fill(want, 'a', n - fixed);
        rp_buf_append_str(want, " a ka1;E;");
    } else {
        rp_buf_append_str(want, "!414;");
    }
}

/* A request line plus CRLF of 8192 bytes is the largest accepted (the CRLF counts). */
static void gen_reqline_8190(rp_buf *in, rp_buf *want)
{
    gen_reqline(in, want, 8190, 1);
}

static void gen_reqline_8191(rp_buf *in, rp_buf *want)
{
    gen_reqline(in, want, 8191, 0);
}

static void gen_reqline_9000(rp_buf *in, rp_buf *want)
{
    gen_reqline(in, want, 9000, 0);
}

/* A head of exactly total bytes (final CRLF CRLF included) built around one long field. */
static void gen_head(rp_buf *in, size_t total)
{
    rp_buf_append_str(in, GET11 HOST "X: ");
    fill(in, 'v', total - in->len - 4);
    rp_buf_append_str(in, "\r\n\r\n");
    assert_int_equal(in->len, total);
}

static void gen_head_16384(rp_buf *in, rp_buf *want)
{
    gen_head(in, RP_HTTP_MAX_HEAD);
    rp_buf_append_str(want, "H GET / a ka1;E;");
}

static void gen_head_16385(rp_buf *in, rp_buf *want)
{
    gen_head(in, RP_HTTP_MAX_HEAD + 1);
    rp_buf_append_str(want, "!431;");
}

/* A large head (the head buffer grows past 4 KiB) followed by a small pipelined request. */
static void gen_big_then_small(rp_buf *in, rp_buf *want)
{
    gen_head(in, 12000);
    rp_buf_append_str(in, "GET /2 HTTP/1.1\r\n" HOST "\r\n");
    rp_buf_append_str(want, "H GET / a ka1;E;H GET /2 a ka1;E;");
}

/* Host plus nfields-1 other fields. */
static void gen_fields(rp_buf *in, size_t nfields)
{
    rp_buf_append_str(in, GET11 HOST);
    for (size_t i = 1; i < nfields; i++)
        rp_buf_appendf(in, "X-F%zu: %zu\r\n", i, i);
    rp_buf_append_str(in, "\r\n");
}

static void gen_fields_100(rp_buf *in, rp_buf *want)
{
    gen_fields(in, RP_HTTP_MAX_HEADERS);
    rp_buf_append_str(want, "H GET / a ka1;E;");
}

static void gen_fields_101(rp_buf *in, rp_buf *want)
{
    gen_fields(in, RP_HTTP_MAX_HEADERS + 1);
    rp_buf_append_str(want, "!431;");
}

static void gen_chunk_ext(rp_buf *in, rp_buf *want, size_t n, int ok)
{
    rp_buf_append_str(in, "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n2;");
    fill(in, 'e', n); /* n extension bytes after the ';' */
    rp_buf_append_str(in, "\r\nhi\r\n0\r\n\r\n");
    rp_buf_append_str(want, "H POST / a chunked ka1;");
    rp_buf_append_str(want, ok ? "Bhi;E;" : "!400;");
}

static void gen_chunk_ext_256(rp_buf *in, rp_buf *want)
{
    gen_chunk_ext(in, want, RP_HTTP_MAX_CHUNK_EXT, 1);
}

static void gen_chunk_ext_257(rp_buf *in, rp_buf *want)
{
    gen_chunk_ext(in, want, RP_HTTP_MAX_CHUNK_EXT + 1, 0);
}

/* One trailer field line of n bytes (without CRLF). */
static void gen_trailer(rp_buf *in, rp_buf *want, size_t n, int ok)
{
    rp_buf_append_str(in, "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
                          "1\r\nx\r\n0\r\nT: ");
    fill(in, 't', n - 3);
    rp_buf_append_str(in, "\r\n\r\n");
    rp_buf_append_str(want, "H POST / a chunked ka1;Bx;");
    rp_buf_append_str(want, ok ? "E;" : "!431;");
}

static void gen_trailer_4096(rp_buf *in, rp_buf *want)
{
    gen_trailer(in, want, RP_HTTP_MAX_TRAILER, 1);
}

static void gen_trailer_4097(rp_buf *in, rp_buf *want)
{
    gen_trailer(in, want, RP_HTTP_MAX_TRAILER + 1, 0);
}

/* Two trailer fields of 3000 bytes each: each line is under RP_HTTP_MAX_TRAILER, the section
 * is not. */
static void gen_trailer_section_6000(rp_buf *in, rp_buf *want)
{
    rp_buf_append_str(in, "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
                          "1\r\nx\r\n0\r\nT1: ");
    fill(in, 't', 2996);
    rp_buf_append_str(in, "\r\nT2: ");
    fill(in, 't', 2996);
    rp_buf_append_str(in, "\r\n\r\n");
    rp_buf_append_str(want, "H POST / a chunked ka1;Bx;!431;");
}

/* ---- the table ---- */

static const codec_case cases[] = {
    /* valid shapes */
    C("get", GET11 HOST "\r\n", "H GET / a ka1;E;"),
    C("get-query", "GET /p/q?x=1&y=%20 HTTP/1.1\r\n" HOST "\r\n", "H GET /p/q?x=1&y=%20 a ka1;E;"),
    C("get-empty-query", "GET /p? HTTP/1.1\r\n" HOST "\r\n", "H GET /p? a ka1;E;"),
    C("head", "HEAD /x HTTP/1.1\r\n" HOST "\r\n", "H HEAD /x a ka1;E;"),
    C("delete", "DELETE /k/1 HTTP/1.1\r\n" HOST "\r\n", "H DELETE /k/1 a ka1;E;"),
    C("options", "OPTIONS /x HTTP/1.1\r\n" HOST "\r\n", "H OPTIONS /x a ka1;E;"),
    C("post-cl", "POST /up HTTP/1.1\r\n" HOST "Content-Length: 5\r\n\r\nhello",
      "H POST /up a cl=5 ka1;Bhello;E;"),
    C("put-cl", "PUT /k HTTP/1.1\r\n" HOST "Content-Length: 3\r\n\r\n\x00\xff\n",
      "H PUT /k a cl=3 ka1;B\\x00\\xff\\x0a;E;"),
    C("patch-cl", "PATCH /k HTTP/1.1\r\n" HOST "Content-Length: 2\r\n\r\n{}",
      "H PATCH /k a cl=2 ka1;B{};E;"),
    C("post-cl-0", "POST / HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n",
      "H POST / a cl=0 ka1;E;"),
    C("post-cl-leading-zeros", "POST / HTTP/1.1\r\n" HOST "Content-Length: 002\r\n\r\nok",
      "H POST / a cl=2 ka1;Bok;E;"),
    C("post-cl-ows", "POST / HTTP/1.1\r\n" HOST "Content-Length: \t2 \r\n\r\nok",
      "H POST / a cl=2 ka1;Bok;E;"),
    /* the codec does not enforce body limits; the server does (only the body start is fed) */
    C("cl-large-accepted", "PUT / HTTP/1.1\r\n" HOST "Content-Length: 10737418240\r\n\r\nabc",
      "H PUT / a cl=10737418240 ka1;Babc;"),
    C("cl-max-accepted", "PUT / HTTP/1.1\r\n" HOST "Content-Length: 1125899906842624\r\n\r\n",
      "H PUT / a cl=1125899906842624 ka1;"),
    /* past RP_HTTP_MAX_CONTENT_LENGTH (2^50) the codec answers 413 */
    C("cl-over-max", "PUT / HTTP/1.1\r\n" HOST "Content-Length: 1125899906842625\r\n\r\n", "!413;"),
    C("chunked",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
      "H POST / a chunked ka1;Bhello world;E;"),
    C("chunked-hex-sizes",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "A\r\n0123456789\r\n0a\r\nabcdefghij\r\n000\r\n\r\n",
      "H POST / a chunked ka1;B0123456789abcdefghij;E;"),
    C("chunked-empty-body",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "H POST / a chunked ka1;E;"),
    C("chunked-te-case",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: Chunked\r\n\r\n"
      "1\r\nx\r\n0\r\n\r\n",
      "H POST / a chunked ka1;Bx;E;"),
    C("chunked-ext",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "5;name=value\r\nhello\r\n3;a;b=\"q;x\"\r\nabc\r\n0;last\r\n\r\n",
      "H POST / a chunked ka1;Bhelloabc;E;"),
    C("chunked-trailers",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other:\t2 \r\n\r\n",
      "H POST / a chunked ka1;Babc;E;"),
    C("chunked-get", "GET / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "H GET / a chunked ka1;E;"),
    C("leading-crlf", "\r\n\r\n" GET11 HOST "\r\n", "H GET / a ka1;E;"),
    C("leading-crlf-8", "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n" GET11 HOST "\r\n", "H GET / a ka1;E;"),
    C("http10", "GET / HTTP/1.0\r\n" HOST "\r\n", "H GET / a v10 ka0;E;"),
    C("http10-keep-alive", "GET / HTTP/1.0\r\n" HOST "Connection: keep-alive\r\n\r\n",
      "H GET / a v10 ka1;E;"),
    C("http10-keep-alive-list", "GET / HTTP/1.0\r\n" HOST "Connection: foo, Keep-Alive\r\n\r\n",
      "H GET / a v10 ka1;E;"),
    C("http10-post", "POST / HTTP/1.0\r\n" HOST "Content-Length: 1\r\n\r\nz",
      "H POST / a v10 cl=1 ka0;Bz;E;"),
    C("http11-close", GET11 HOST "Connection: close\r\n\r\n", "H GET / a ka0;E;"),
    C("http11-close-list", GET11 HOST "Connection: keep-alive, CLOSE\r\n\r\n", "H GET / a ka0;E;"),
    C("http11-keep-alive", GET11 HOST "Connection: keep-alive\r\n\r\n", "H GET / a ka1;E;"),
    C("host-case-port", GET11 "Host: EXAMPLE.com:8443\r\n\r\n", "H GET / example.com:8443 ka1;E;"),
    C("host-ipv6", GET11 "Host: [::1]:8080\r\n\r\n", "H GET / [::1]:8080 ka1;E;"),
    C("host-ipv4", GET11 "Host: 10.0.0.1\r\n\r\n", "H GET / 10.0.0.1 ka1;E;"),
    C("host-trailing-dot", GET11 "Host: Example.COM.\r\n\r\n", "H GET / example.com ka1;E;"),
    C("host-ows", GET11 "Host: \t a.b \t\r\n\r\n", "H GET / a.b ka1;E;"),
    C("host-name-case", GET11 "hOST: a\r\n\r\n", "H GET / a ka1;E;"),
    C("absolute-https", "GET https://example.com/path?q HTTP/1.1\r\nHost: example.com\r\n\r\n",
      "H GET /path?q example.com ka1;E;"),
    C("absolute-http-port", "GET http://H.example:8080/x HTTP/1.1\r\nHost: h.example:8080\r\n\r\n",
      "H GET /x h.example:8080 ka1;E;"),
    C("upgrade-get", GET11 HOST "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
      "H GET / a ka1;E;"),
    C("upgrade-only-get", GET11 HOST "Upgrade: h2c\r\n\r\n", "H GET / a ka1;E;"),
    C("expect-continue",
      "PUT / HTTP/1.1\r\n" HOST "Expect: 100-Continue\r\nContent-Length: 2\r\n\r\nok",
      "H PUT / a cl=2 100c ka1;Bok;E;"),
    C("header-obs-text", GET11 HOST "X-Name: caf\xc3\xa9\r\n\r\n", "H GET / a ka1;E;"),
    C("header-tab-value", GET11 HOST "X-T:\ta\tb\t\r\n\r\n", "H GET / a ka1;E;"),
    C("header-empty-value", GET11 HOST "X-E:\r\n\r\n", "H GET / a ka1;E;"),
    C("header-tchar-name", GET11 HOST "!#$%&'*+-.^_`|~0:x\r\n\r\n", "H GET / a ka1;E;"),
    C("path-double-slash", "GET //evil.example/x HTTP/1.1\r\n" HOST "\r\n",
      "H GET //evil.example/x a ka1;E;"),

    /* pipelining */
    C("pipeline-3",
      GET11 HOST "\r\n"
                 "POST /b HTTP/1.1\r\n" HOST "Content-Length: 3\r\n\r\nxyz"
                 "PUT /c HTTP/1.1\r\n" HOST
                 "Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
      "H GET / a ka1;E;H POST /b a cl=3 ka1;Bxyz;E;H PUT /c a chunked ka1;Bhi;E;"),
    C("pipeline-crlf-between",
      "POST / HTTP/1.1\r\n" HOST "Content-Length: 1\r\n\r\nx\r\n" GET11 HOST "\r\n",
      "H POST / a cl=1 ka1;Bx;E;H GET / a ka1;E;"),
    C("pipeline-partial-second", GET11 HOST "\r\nGET /2 HTTP/1.1\r\nHo", "H GET / a ka1;E;"),
    C("pipeline-then-error", GET11 HOST "\r\nGET /2 HTTP/1.1\r\n\r\n", "H GET / a ka1;E;!400;"),
    C("pipeline-http10",
      "GET /1 HTTP/1.0\r\n" HOST "Connection: keep-alive\r\n\r\n"
      "GET /2 HTTP/1.0\r\n" HOST "\r\n",
      "H GET /1 a v10 ka1;E;H GET /2 a v10 ka0;E;"),
    /* each message gets a fresh parser: keep-alive is the connection's decision (it stops
     * feeding after a ka0 request), so the codec itself parses whatever follows */
    C("pipeline-after-http10", "GET /1 HTTP/1.0\r\n" HOST "\r\nGET /2 HTTP/1.0\r\n" HOST "\r\n",
      "H GET /1 a v10 ka0;E;H GET /2 a v10 ka0;E;"),
    C("pipeline-after-close", GET11 HOST "Connection: close\r\n\r\n" GET11 HOST "\r\n",
      "H GET / a ka0;E;H GET / a ka1;E;"),

    /* line endings */
    C("bare-lf-reqline", "GET / HTTP/1.1\n" HOST "\r\n", "!400;"),
    C("bare-lf-header", GET11 "Host: a\n\r\n", "!400;"),
    C("bare-lf-end", GET11 HOST "\n", "!400;"),
    C("bare-lf-all", "GET / HTTP/1.1\nHost: a\n\n", "!400;"),
    C("bare-lf-leading", "\n" GET11 HOST "\r\n", "!400;"),
    C("bare-cr-reqline", "GET / HTTP/1.1\r" HOST "\r\n", "!400;"),
    C("bare-cr-header", GET11 "Host: a\rX: b\r\n\r\n", "!400;"),
    C("bare-cr-in-value", GET11 HOST "X: a\rb\r\n\r\n", "!400;"),
    C("bare-cr-end", GET11 HOST "\r\r\n", "!400;"),
    C("bare-cr-leading", "\r" GET11 HOST "\r\n", "!400;"),
    C("leading-crlf-9", "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n" GET11 HOST "\r\n", "!400;"),
    C("reqline-leading-space", " GET / HTTP/1.1\r\n" HOST "\r\n", "!400;"),

    /* obs-fold, whitespace before colon, field syntax */
    C("obs-fold-space", GET11 HOST "X: a\r\n b\r\n\r\n", "!400;"),
    C("obs-fold-tab", GET11 HOST "X: a\r\n\tb\r\n\r\n", "!400;"),
    C("obs-fold-first", GET11 " Host: a\r\n\r\n", "!400;"),
    C("ws-before-colon", GET11 "Host : a\r\n\r\n", "!400;"),
    C("tab-before-colon", GET11 HOST "X\t: a\r\n\r\n", "!400;"),
    C("space-in-name", GET11 HOST "X Y: a\r\n\r\n", "!400;"),
    C("empty-name", GET11 HOST ": a\r\n\r\n", "!400;"),
    C("no-colon", GET11 HOST "Xyz\r\n\r\n", "!400;"),
    C("bad-name-char", GET11 HOST "X(y): a\r\n\r\n", "!400;"),
    C("non-ascii-name", GET11 HOST "X\xc3\xa9: a\r\n\r\n", "!400;"),

    /* NUL and control bytes */
    C("nul-reqline", "GET /\x00 HTTP/1.1\r\n" HOST "\r\n", "!400;"),
    C("nul-value", GET11 HOST "X: a\x00b\r\n\r\n", "!400;"),
    C("nul-name", GET11 HOST "X\x00: a\r\n\r\n", "!400;"),
    C("nul-leading", "\x00" GET11 HOST "\r\n", "!400;"),
    C("ctl-value", GET11 HOST "X: a\x01\r\n\r\n", "!400;"),
    C("vt-value",
      GET11 HOST "X: \x0b"
                 "a\r\n\r\n",
      "!400;"),
    C("del-value", GET11 HOST "X: a\x7f\r\n\r\n", "!400;"),
    C("esc-reqline", "GET /\x1b HTTP/1.1\r\n" HOST "\r\n", "!400;"),
    C("tab-reqline", "GET\t/ HTTP/1.1\r\n" HOST "\r\n", "!400;"),
    C("del-reqline", "GET /\x7f HTTP/1.1\r\n" HOST "\r\n", "!400;"),

    /* raw non-ASCII in the request line */
    C("utf8-path", "GET /caf\xc3\xa9 HTTP/1.1\r\n" HOST "\r\n", "!400;"),
    C("high-byte-query", "GET /?q=\xff HTTP/1.1\r\n" HOST "\r\n", "!400;"),
    C("high-byte-method", "G\x80T / HTTP/1.1\r\n" HOST "\r\n", "!400;"),
    C("high-byte-version", "GET / HTTP/1.1\xa0\r\n" HOST "\r\n", "!400;"),

    /* request line shape */
    C("reqline-double-space", "GET  / HTTP/1.1\r\n" HOST "\r\n", "!400;"),
    C("reqline-trailing-space", "GET / HTTP/1.1 \r\n" HOST "\r\n", "!400;"),
    C("reqline-no-version", "GET /\r\n" HOST "\r\n", "!400;"),
    C("reqline-bad-version", "GET / HTTP/1.1x\r\n" HOST "\r\n", "!400;"),
    C("reqline-https-version", "GET / HTTPS/1.1\r\n" HOST "\r\n", "!400;"),
    C("reqline-lowercase-version", "GET / http/1.1\r\n" HOST "\r\n", "!400;"),
    C("target-fragment", "GET /a#frag HTTP/1.1\r\n" HOST "\r\n", "!400;"),
    C("target-relative", "GET a/b HTTP/1.1\r\n" HOST "\r\n", "!400;"),
    C("target-asterisk", "OPTIONS * HTTP/1.1\r\n" HOST "\r\n", "!400;"),
    C("target-abs-no-path", "GET http://a HTTP/1.1\r\n" HOST "\r\n", "!400;"),
    C("target-abs-userinfo", "GET http://u@a/ HTTP/1.1\r\n" HOST "\r\n", "!400;"),
    C("target-abs-ftp", "GET ftp://a/ HTTP/1.1\r\n" HOST "\r\n", "!400;"),

    /* methods -> 501, versions -> 505 */
    C("method-trace", "TRACE / HTTP/1.1\r\n" HOST "\r\n", "!501;"),
    C("method-connect", "CONNECT a:443 HTTP/1.1\r\n" HOST "\r\n", "!501;"),
    C("method-unknown", "FOO / HTTP/1.1\r\n" HOST "\r\n", "!501;"),
    C("method-lowercase", "get / HTTP/1.1\r\n" HOST "\r\n", "!501;"),
    C("method-propfind", "PROPFIND / HTTP/1.1\r\n" HOST "\r\n", "!501;"),
    C("method-bad-char", "GE(T / HTTP/1.1\r\n" HOST "\r\n", "!400;"),
    C("version-2", "GET / HTTP/2.0\r\n" HOST "\r\n", "!505;"),
    C("version-1.2", "GET / HTTP/1.2\r\n" HOST "\r\n", "!505;"),
    C("version-0.9", "GET / HTTP/0.9\r\n" HOST "\r\n", "!505;"),
    C("version-3", "GET / HTTP/3.0\r\n" HOST "\r\n", "!505;"),
    C("h2-preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "!505;"),

    /* Host */
    C("host-missing", GET11 "\r\n", "!400;"),
    C("host-missing-10", "GET / HTTP/1.0\r\n\r\n", "!400;"),
    C("host-duplicate", GET11 HOST HOST "\r\n", "!400;"),
    C("host-duplicate-differ", GET11 HOST "Host: b\r\n\r\n", "!400;"),
    C("host-empty", GET11 "Host:\r\n\r\n", "!400;"),
    C("host-space", GET11 "Host: a b\r\n\r\n", "!400;"),
    C("host-slash", GET11 "Host: a/b\r\n\r\n", "!400;"),
    C("host-userinfo", GET11 "Host: u@a\r\n\r\n", "!400;"),
    C("host-list", GET11 "Host: a, b\r\n\r\n", "!400;"),
    C("host-port-empty", GET11 "Host: a:\r\n\r\n", "!400;"),
    C("host-port-big", GET11 "Host: a:65536\r\n\r\n", "!400;"),
    C("host-port-alpha", GET11 "Host: a:8x\r\n\r\n", "!400;"),
    C("host-two-ports", GET11 "Host: a:1:2\r\n\r\n", "!400;"),
    C("host-ipv6-unclosed", GET11 "Host: [::1\r\n\r\n", "!400;"),
    C("host-ipv6-junk", GET11 "Host: [::g]\r\n\r\n", "!400;"),
    C("host-ipv6-after", GET11 "Host: [::1]x\r\n\r\n", "!400;"),
    C("abs-host-mismatch", "GET http://evil.example/ HTTP/1.1\r\nHost: good.example\r\n\r\n",
      "!400;"),
    C("abs-port-mismatch", "GET https://a:8443/ HTTP/1.1\r\nHost: a:443\r\n\r\n", "!400;"),
    C("abs-port-missing", "GET https://a:8443/ HTTP/1.1\r\n" HOST "\r\n", "!400;"),

    /* Content-Length */
    C("cl-duplicate-same",
      "POST / HTTP/1.1\r\n" HOST "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", "!400;"),
    C("cl-duplicate-differ",
      "POST / HTTP/1.1\r\n" HOST "Content-Length: 1\r\nContent-Length: 2\r\n\r\nxy", "!400;"),
    C("cl-list", "POST / HTTP/1.1\r\n" HOST "Content-Length: 1, 1\r\n\r\nx", "!400;"),
    C("cl-alpha", "POST / HTTP/1.1\r\n" HOST "Content-Length: abc\r\n\r\n", "!400;"),
    C("cl-negative", "POST / HTTP/1.1\r\n" HOST "Content-Length: -1\r\n\r\n", "!400;"),
    C("cl-plus", "POST / HTTP/1.1\r\n" HOST "Content-Length: +1\r\n\r\nx", "!400;"),
    C("cl-hex", "POST / HTTP/1.1\r\n" HOST "Content-Length: 0x1\r\n\r\nx", "!400;"),
    C("cl-inner-space", "POST / HTTP/1.1\r\n" HOST "Content-Length: 1 1\r\n\r\nx", "!400;"),
    C("cl-empty", "POST / HTTP/1.1\r\n" HOST "Content-Length:\r\n\r\n", "!400;"),
    C("cl-u64-overflow",
      "POST / HTTP/1.1\r\n" HOST "Content-Length: 99999999999999999999999\r\n\r\n", "!400;"),

    /* Transfer-Encoding */
    C("cl-te",
      "POST / HTTP/1.1\r\n" HOST "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n",
      "!400;"),
    C("te-cl",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
      "0\r\n\r\n",
      "!400;"),
    /* CL.TE smuggling: the front end would read 13 bytes, the back end "0\r\n\r\n" */
    C("smuggle-cl-te",
      "POST / HTTP/1.1\r\n" HOST "Content-Length: 13\r\n"
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED",
      "!400;"),
    C("te-gzip-chunked",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip, chunked\r\n\r\n"
      "0\r\n\r\n",
      "!501;"),
    C("te-http10", "POST / HTTP/1.0\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "!400;"),
    C("te-duplicate",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n"
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "!400;"),
    C("te-ws-before-colon",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding : chunked\r\n\r\n"
      "0\r\n\r\n",
      "!400;"),
    C("te-obs-fold", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
      "!400;"),
    C("te-vt",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding:\x0b"
      "chunked\r\n\r\n0\r\n\r\n",
      "!400;"),

    /* chunked framing */
    C("chunk-data-no-crlf",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "5\r\nhelloXX0\r\n\r\n",
      "H POST / a chunked ka1;Bhello;!400;"),
    C("chunk-data-lf-only",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\n0\r\n\r\n",
      "H POST / a chunked ka1;Bhello;!400;"),
    C("chunk-data-cr-only",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r0\r\n\r\n",
      "H POST / a chunked ka1;Bhello;!400;"),
    C("chunk-data-too-long",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "3\r\nhello\r\n0\r\n\r\n",
      "H POST / a chunked ka1;Bhel;!400;"),
    C("chunk-size-garbage",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "zz\r\nhello\r\n0\r\n\r\n",
      "H POST / a chunked ka1;!400;"),
    C("chunk-size-empty",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "\r\nhello\r\n0\r\n\r\n",
      "H POST / a chunked ka1;!400;"),
    C("chunk-size-negative",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "-1\r\nx\r\n0\r\n\r\n",
      "H POST / a chunked ka1;!400;"),
    C("chunk-size-0x",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "0x5\r\nhello\r\n0\r\n\r\n",
      "H POST / a chunked ka1;!400;"),
    C("chunk-size-space",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "5 \r\nhello\r\n0\r\n\r\n",
      "H POST / a chunked ka1;!400;"),
    C("chunk-size-overflow",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "10000000000000001\r\nx\r\n0\r\n\r\n",
      "H POST / a chunked ka1;!400;"),
    C("chunk-size-16-f",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "ffffffffffffffff\r\nx\r\n0\r\n\r\n",
      "H POST / a chunked ka1;!400;"),
    C("chunk-size-bare-lf",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "5\nhello\r\n0\r\n\r\n",
      "H POST / a chunked ka1;!400;"),
    C("chunk-size-bare-cr",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "5\rhello\r\n0\r\n\r\n",
      "H POST / a chunked ka1;!400;"),
    C("chunk-ext-lf",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "5;a\nhello\r\n0\r\n\r\n",
      "H POST / a chunked ka1;!400;"),
    C("chunk-ext-nul",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "5;a\x00\r\nhello\r\n0\r\n\r\n",
      "H POST / a chunked ka1;!400;"),
    C("last-chunk-no-final-crlf",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "0\r\nX",
      "H POST / a chunked ka1;"),
    C("trailer-bare-lf",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "0\r\nX: 1\n\r\n",
      "H POST / a chunked ka1;!400;"),
    C("trailer-end-bare-lf",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "0\r\n\n",
      "H POST / a chunked ka1;!400;"),
    C("trailer-obs-fold",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "0\r\nX: 1\r\n 2\r\n\r\n",
      "H POST / a chunked ka1;!400;"),
    C("trailer-no-colon",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "0\r\nXyz\r\n\r\n",
      "H POST / a chunked ka1;!400;"),
    C("trailer-ws-before-colon",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "0\r\nX : 1\r\n\r\n",
      "H POST / a chunked ka1;!400;"),
    C("trailer-nul",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "0\r\nX: \x00\r\n\r\n",
      "H POST / a chunked ka1;!400;"),
    /* TE.CL smuggling: a front end honouring CL would see "0\r\n\r\n" as the next request */
    C("smuggle-te-cl-pipeline",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n" HOST "\r\n",
      "H POST / a chunked ka1;Babc;E;H GET /admin a ka1;E;"),

    /* length required, expectations */
    C("post-no-length", "POST / HTTP/1.1\r\n" HOST "\r\n", "!411;"),
    C("put-no-length", "PUT / HTTP/1.1\r\n" HOST "\r\n", "!411;"),
    C("patch-no-length", "PATCH / HTTP/1.1\r\n" HOST "\r\n", "!411;"),
    C("post-no-length-10", "POST / HTTP/1.0\r\n" HOST "\r\n", "!411;"),
    C("expect-other", GET11 HOST "Expect: foo\r\n\r\n", "!417;"),
    C("expect-102", "PUT / HTTP/1.1\r\n" HOST "Expect: 102-processing\r\nContent-Length: 0\r\n\r\n",
      "!417;"),
    C("expect-duplicate",
      "PUT / HTTP/1.1\r\n" HOST "Expect: 100-continue\r\n"
      "Expect: 100-continue\r\nContent-Length: 0\r\n\r\n",
      "!400;"),

    /* sizes */
    G("reqline-8190-ok", gen_reqline_8190),
    G("reqline-8191-414", gen_reqline_8191),
    G("reqline-9000-414", gen_reqline_9000),
    G("head-16384-ok", gen_head_16384),
    G("head-16385-431", gen_head_16385),
    G("big-head-then-small", gen_big_then_small),
    G("fields-100-ok", gen_fields_100),
    G("fields-101-431", gen_fields_101),
    G("chunk-ext-256-ok", gen_chunk_ext_256),
    G("chunk-ext-257-400", gen_chunk_ext_257),
    G("trailer-line-4096-ok", gen_trailer_4096),
    G("trailer-line-4097-431", gen_trailer_4097),
};

/*
 * Regression cases: each documents a rule codec.c once got wrong (found by this suite).
 * Move a case into cases[] when codec.c is fixed.
 */
static const codec_case bug_cases[] = {
    /* Regression (fixed): a Transfer-Encoding without chunked as the final coding must be answered 501 (the
     * codec's own check), but llhttp runs first and rejects it with HPE_INVALID_TRANSFER_ENCODING,
     * which codec.c maps to 400 "MalformedRequest". */
    C("te-gzip", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: gzip\r\n\r\n", "!501;"),
    C("te-identity", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: identity\r\n\r\n", "!501;"),
    C("te-chunked-chunked",
      "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked, chunked\r\n\r\n"
      "0\r\n\r\n",
      "!501;"),
    C("te-chunked-gzip", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked, gzip\r\n\r\n",
      "!501;"),
    C("te-xchunked", "POST / HTTP/1.1\r\n" HOST "Transfer-Encoding: xchunked\r\n\r\n", "!501;"),
    /* Regression (fixed): Connection is a list that may be split over several field lines (RFC 9110 5.3);
     * check_semantics() only looks at the last Connection field, so "close" in an earlier one
     * is ignored and the connection is kept alive. */
    C("connection-close-two-fields", GET11 HOST "Connection: close\r\nConnection: te\r\n\r\n",
      "H GET / a ka0;E;"),
    C("connection-keep-alive-two-fields-10",
      "GET / HTTP/1.0\r\n" HOST "Connection: keep-alive\r\nConnection: x\r\n\r\n",
      "H GET / a v10 ka1;E;"),
    /* Regression (fixed): after a GET with "Upgrade" + "Connection: Upgrade" that the server answers normally
     * (no 101), the next pipelined request on the connection must still parse; llhttp stays in
     * its upgrade state and the codec fails the second request with 400. */
    /* Regression (fixed): RFC 9110 10.1.1: "A server that receives a 100-continue expectation in an HTTP/1.0
     * request MUST ignore that expectation"; the codec sets expect_continue for HTTP/1.0 too, so
     * the server would send an interim 100 response to a 1.0 client. */
    C("expect-continue-http10",
      "PUT / HTTP/1.0\r\n" HOST "Expect: 100-continue\r\n"
      "Content-Length: 2\r\n\r\nok",
      "H PUT / a v10 cl=2 ka0;Bok;E;"),
    /* Regression (fixed): "close" in Connection must end the connection whatever else is listed; for HTTP/1.0
     * the codec only looks for "keep-alive" and keeps the connection open. */
    C("connection-keep-alive-close-10",
      "GET / HTTP/1.0\r\n" HOST "Connection: keep-alive, close\r\n\r\n", "H GET / a v10 ka0;E;"),
    /* Regression (fixed): RP_HTTP_MAX_TRAILER is documented as the limit of the trailer section ("trailer
     * section of a chunked body, bytes -> 431"), but scan_chunked() resets trailer_bytes at
     * every line, so it limits each trailer line and a section of 100 lines of 4 KiB passes. */
    G("trailer-section-6000-431", gen_trailer_section_6000),
    C("upgrade-then-pipeline",
      GET11 HOST "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                 "GET /2 HTTP/1.1\r\n" HOST "\r\n",
      "H GET / a ka1;E;H GET /2 a ka1;E;"),
};

/* ---- the driver ---- */

typedef struct tracer {
    rp_buf out;
    int in_body;    /* the last thing traced was body bytes (merge the next BODY) */
    int dead;       /* ERROR seen */
    int status;     /* its status */
    int in_request; /* HEAD seen, END not yet */
} tracer;

static void trace_head(rp_buf *t, const rp_http_head *h)
{
    assert_non_null(h);
    assert_true(h->path.n > 0 && h->path.p[0] == '/');
    assert_true(h->path.p >= h->target.p && h->path.p + h->path.n <= h->target.p + h->target.n);
    assert_true(rp_str_eq(h->method_str, rp_method_name(h->method)));
    rp_buf_appendf(t, "H %.*s %.*s", (int)h->method_str.n, h->method_str.p, (int)h->path.n,
                   h->path.p);
    if (h->has_query)
        rp_buf_appendf(t, "?%.*s", (int)h->query.n, h->query.p);
    rp_buf_appendf(t, " %.*s", (int)h->host.n, h->host.p);
    if (h->port != 0)
        rp_buf_appendf(t, ":%d", h->port);
    if (h->version == 10)
        rp_buf_append_str(t, " v10");
    else
        assert_int_equal(h->version, 11);
    if (h->has_length)
        rp_buf_appendf(t, " cl=%llu", (unsigned long long)h->content_length);
    if (h->chunked)
        rp_buf_append_str(t, " chunked");
    if (h->expect_continue)
        rp_buf_append_str(t, " 100c");
    rp_buf_appendf(t, " ka%d;", h->keep_alive);
}

static void trace_body(tracer *t, const char *p, size_t n)
{
    if (!t->in_body)
        rp_buf_append_str(&t->out, "B");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != ';')
            rp_buf_append(&t->out, &ch, 1);
        else
            rp_buf_appendf(&t->out, "\\x%02x", ch);
    }
    t->in_body = 1;
}

static void end_body(tracer *t)
{
    if (t->in_body)
        rp_buf_append_str(&t->out, ";");
    t->in_body = 0;
}

/* Feeds one segment as its own exact-size heap copy and traces every event. */
static void feed(rp_codec *c, tracer *t, const char *p, size_t n)
{
    char *copy = malloc(n > 0 ? n : 1);
    size_t off = 0;

    assert_non_null(copy);
    memcpy(copy, p, n);
    while (!t->dead) {
        rp_codec_event ev;
        size_t used = (size_t)-1;
        rp_codec_kind k = rp_codec_execute(c, copy + off, n - off, &used, &ev);

        assert_int_equal(ev.kind, k);
        assert_true(used <= n - off);
        if (k == RP_CODEC_NEED_MORE) {
            assert_int_equal(used, n - off); /* NEED_MORE means everything was consumed */
            break;
        }
        switch (k) {
        case RP_CODEC_HEAD:
            assert_false(t->in_request);
            end_body(t);
            trace_head(&t->out, ev.head);
            t->in_request = 1;
            break;
        case RP_CODEC_BODY:
            assert_true(t->in_request);
            assert_true(ev.len > 0);
            assert_true(ev.data >= copy + off && ev.data + ev.len <= copy + off + used);
            trace_body(t, ev.data, ev.len);
            break;
        case RP_CODEC_END:
            assert_true(t->in_request);
            assert_true(rp_codec_idle(c));
            end_body(t);
            rp_buf_append_str(&t->out, "E;");
            t->in_request = 0;
            break;
        case RP_CODEC_ERROR:
            assert_non_null(ev.code);
            assert_non_null(ev.message);
            end_body(t);
            rp_buf_appendf(&t->out, "!%d;", ev.status);
            t->dead = 1;
            t->status = ev.status;
            break;
        default: fail_msg("unknown event kind %d", (int)k);
        }
        off += used;
    }
    if (t->dead) {
        /* errors are sticky: any further call returns the same error and consumes nothing */
        rp_codec_event ev;
        size_t used = (size_t)-1;
        assert_int_equal(rp_codec_execute(c, copy + off, n - off, &used, &ev), RP_CODEC_ERROR);
        assert_int_equal(used, 0);
        assert_int_equal(ev.status, t->status);
    }
    free(copy);
}

/* Runs in over the cut points cuts[0..ncuts) (each a segment end) and returns the trace. */
static char *run(const char *in, size_t n, const size_t *cuts, size_t ncuts)
{
    rp_codec *c = rp_codec_create();
    tracer t = {0};
    size_t start = 0;
    char *res;

    assert_non_null(c);
    rp_buf_init(&t.out, TRACE_MAX);
    assert_true(rp_codec_idle(c));
    for (size_t i = 0; i < ncuts; i++) {
        feed(c, &t, in + start, cuts[i] - start);
        start = cuts[i];
    }
    end_body(&t);
    rp_codec_free(c);
    res = strdup(t.out.data != NULL ? t.out.data : "");
    rp_buf_free(&t.out);
    assert_non_null(res);
    return res;
}

/*
 * Which offsets mode (c) tries. Inputs up to SPLIT_ALL bytes: all of them. The few generated
 * inputs above that (8-16 KiB heads, quadratic cost: about a minute under ASan) are split at
 * every offset near their structure (start, end, every CR/LF, the size limits) and every 61st
 * offset in the long runs of filler between; RP_CODEC_EXHAUSTIVE=1 tries every offset there too.
 */
#define SPLIT_ALL  4096
#define SPLIT_NEAR 8

static int near(size_t s, size_t mark)
{
    return s + SPLIT_NEAR >= mark && s <= mark + SPLIT_NEAR;
}

static int split_here(const char *in, size_t n, size_t s)
{
    if (n <= SPLIT_ALL || getenv("RP_CODEC_EXHAUSTIVE") != NULL)
        return 1;
    if (s < 128 || s + 128 > n || s % 61 == 0 || near(s, RP_HTTP_MAX_REQUEST_LINE) ||
        near(s, RP_HTTP_MAX_HEAD))
        return 1;
    for (size_t i = s > SPLIT_NEAR ? s - SPLIT_NEAR : 0; i < n && i <= s + SPLIT_NEAR; i++)
        if (in[i] == '\r' || in[i] == '\n')
            return 1;
    return 0;
}

/* Runs one case three ways; returns the number of mismatches (each printed). */
static int check_case(const codec_case *k)
{
    rp_buf inb, wantb;
    const char *in, *want;
    size_t n, *cuts;
    int bad = 0;
    char *got;

    rp_buf_init(&inb, 1 << 20);
    rp_buf_init(&wantb, TRACE_MAX);
    if (k->gen != NULL) {
        k->gen(&inb, &wantb);
        in = inb.data;
        n = inb.len;
        want = wantb.data;
    } else {
        in = k->in;
        n = k->len;
        want = k->want;
    }
    cuts = malloc((n + 1) * sizeof(*cuts));
    assert_non_null(cuts);

    /* (a) one feed */
    cuts[0] = n;
    got = run(in, n, cuts, 1);
    if (strcmp(got, want) != 0) {
        print_error("%s (one feed):\n  want %.300s\n  got  %.300s\n", k->name, want, got);
        bad++;
    }
    free(got);

    /* (b) one byte per feed */
    for (size_t i = 0; i < n; i++)
        cuts[i] = i + 1;
    got = run(in, n, cuts, n);
    if (strcmp(got, want) != 0) {
        print_error("%s (bytewise):\n  want %.300s\n  got  %.300s\n", k->name, want, got);
        bad++;
    }
    free(got);

    /* (c) two feeds split at every offset, including empty first and last feeds */
    for (size_t s = 0; s <= n; s++) {
        if (!split_here(in, n, s))
            continue;
        cuts[0] = s;
        cuts[1] = n;
        got = run(in, n, cuts, 2);
        if (strcmp(got, want) != 0) {
            print_error("%s (split at %zu):\n  want %.300s\n  got  %.300s\n", k->name, s, want,
                        got);
            bad++;
            free(got);
            break;
        }
        free(got);
    }
    free(cuts);
    rp_buf_free(&inb);
    rp_buf_free(&wantb);
    return bad;
}

static void test_table(void **state)
{
    int bad = 0;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        bad += check_case(&cases[i]);
    assert_int_equal(bad, 0);
}

/* Every rule of the module comment must have at least one case; keep the table large. */
static void test_table_size(void **state)
{
    assert_true(sizeof(cases) / sizeof(cases[0]) >= 70);
}

static void test_known_bugs(void **state)
{
    int bad = 0;

    for (size_t i = 0; i < sizeof(bug_cases) / sizeof(bug_cases[0]); i++)
        bad += check_case(&bug_cases[i]);
    assert_int_equal(bad, 0);
}

/* Feeds in whole; returns the head seen at HEAD, and checks it is still readable at BODY. */
static const rp_http_head *feed_until(rp_codec *c, const char *in, size_t n, size_t *off,
                                      rp_codec_kind until)
{
    const rp_http_head *h = NULL;

    for (;;) {
        rp_codec_event ev;
        size_t used;
        rp_codec_kind k = rp_codec_execute(c, in + *off, n - *off, &used, &ev);

        *off += used;
        assert_int_not_equal(k, RP_CODEC_ERROR);
        assert_int_not_equal(k, RP_CODEC_NEED_MORE);
        if (k == RP_CODEC_HEAD)
            h = ev.head;
        if (k == until)
            return h;
    }
}

/* Regression: a pooled codec must forget a lone CR (or empty lines) seen on its last
 * connection, or the next connection's first request fails with 400. */
static void test_reset_forgets_prefix(void **state)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    rp_codec *c = rp_codec_create();
    rp_codec_event ev;
    size_t used;

    (void)state;
    assert_non_null(c);
    assert_int_equal(rp_codec_execute(c, "\r", 1, &used, &ev), RP_CODEC_NEED_MORE);
    assert_true(rp_codec_idle(c));
    rp_codec_reset(c);
    assert_int_equal(rp_codec_execute(c, req, sizeof(req) - 1, &used, &ev), RP_CODEC_HEAD);
    rp_codec_free(c);
}

static void test_api(void **state)
{
    static const char in[] = "PUT /k?v=1 HTTP/1.1\r\nhost: A\r\nX-Dup: 1\r\nx-dup:  2 \r\n"
                             "Content-Length: 4\r\n\r\nabcd";
    rp_codec *c = rp_codec_create();
    const rp_http_head *h;
    const rp_header *x;
    rp_codec_event ev;
    size_t used, off = 0;

    rp_codec_free(NULL);
    assert_string_equal(rp_method_name(RP_METHOD_GET), "GET");
    assert_string_equal(rp_method_name(RP_METHOD_OPTIONS), "OPTIONS");
    assert_string_equal(rp_method_name((rp_method)0), "");
    assert_string_equal(rp_method_name((rp_method)99), "");

    assert_non_null(c);
    assert_true(rp_codec_idle(c));
    assert_false(rp_codec_in_request(c));
    assert_int_equal(rp_codec_execute(c, in, 2, &used, &ev), RP_CODEC_NEED_MORE);
    assert_int_equal(used, 2);
    assert_false(rp_codec_idle(c));
    assert_true(rp_codec_in_request(c));
    off = 2;
    h = feed_until(c, in, sizeof(in) - 1 - 2, &off, RP_CODEC_HEAD);
    assert_non_null(h);
    assert_int_equal(h->method, RP_METHOD_PUT);
    assert_true(rp_str_eq(h->target, "/k?v=1"));
    assert_int_equal(h->nheaders, 4);
    assert_true(rp_str_eq(h->headers[0].name, "host")); /* case as sent */
    assert_true(rp_str_eq(h->host, "a"));
    x = rp_http_header_find(h, "x-DUP");
    assert_non_null(x);
    assert_true(rp_str_eq(x->value, "1"));            /* the first one */
    assert_true(rp_str_eq(h->headers[2].value, "2")); /* OWS trimmed */
    assert_null(rp_http_header_find(h, "X-Du"));
    assert_null(rp_http_header_find(h, "Transfer-Encoding"));
    assert_true(rp_codec_in_request(c));

    /* views stay valid while the body is being delivered */
    assert_int_equal(rp_codec_execute(c, in + off, 2, &used, &ev), RP_CODEC_BODY);
    assert_int_equal(ev.len, 2);
    off += used;
    assert_true(rp_str_eq(h->path, "/k") && rp_str_eq(h->query, "v=1"));
    assert_int_equal(rp_codec_execute(c, in + off, 2, &used, &ev), RP_CODEC_BODY);
    off += used;
    assert_int_equal(off, sizeof(in) - 1);
    assert_int_equal(rp_codec_execute(c, in + off, 0, &used, &ev), RP_CODEC_END);
    assert_true(rp_codec_idle(c));
    assert_int_equal(rp_codec_execute(c, in + off, 0, &used, &ev), RP_CODEC_NEED_MORE);
    rp_codec_free(c);
}

/* The head is copied in runs of plain bytes: every byte value, inside a long field value and
 * inside the request target, must still be judged exactly as the byte-by-byte rules say. */
static rp_codec_kind one_head(const char *in, size_t n, const char **code)
{
    rp_codec *c = rp_codec_create();
    rp_codec_event ev;
    size_t used;
    rp_codec_kind k;

    assert_non_null(c);
    k = rp_codec_execute(c, in, n, &used, &ev);
    *code = k == RP_CODEC_ERROR ? ev.code : "";
    rp_codec_free(c);
    return k;
}

static void test_every_byte_in_runs(void **state)
{
    (void)state;
    for (int ch = 0; ch < 256; ch++) {
        char in[256];
        const char *code;
        int n;
        rp_codec_kind k;

        if (ch == '\r' || ch == '\n')
            continue;
        n = snprintf(in, sizeof(in),
                     "GET / HTTP/1.1\r\nHost: a\r\nX-Long: abcdefgh%cijklmnop\r\n\r\n",
                     ch == 0 ? '@' : ch);
        assert_true(n > 0 && (size_t)n < sizeof(in));
        if (ch == 0)
            in[strchr(in, '@') - in] = '\0';
        k = one_head(in, (size_t)n, &code);
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            assert_int_equal(k, RP_CODEC_ERROR);
            assert_string_equal(code, ch == 0 ? "NulByte" : "ControlCharacter");
        } else {
            assert_int_equal(k, RP_CODEC_HEAD);
        }

        n = snprintf(in, sizeof(in), "GET /abcdefgh%cijklmnop HTTP/1.1\r\nHost: a\r\n\r\n",
                     ch == 0 ? '@' : ch);
        if (ch == 0)
            in[strchr(in, '@') - in] = '\0';
        k = one_head(in, (size_t)n, &code);
        if (ch == 0)
            assert_string_equal(code, "NulByte");
        else if (ch < 0x20)
            assert_string_equal(code, "ControlCharacter");
        else if (ch >= 0x7f)
            assert_string_equal(code, "InvalidRequestLine");
        if (ch < 0x20 || ch >= 0x7f)
            assert_int_equal(k, RP_CODEC_ERROR);
    }
}

/* An error is sticky whatever is fed afterwards, and the codec frees cleanly in that state. */
static void test_error_sticky(void **state)
{
    static const char bad[] = "GET / HTTP/1.1\nHost: a\r\n\r\n";
    static const char good[] = GET11 HOST "\r\n";
    rp_codec *c = rp_codec_create();
    rp_codec_event ev;
    size_t used;

    assert_non_null(c);
    assert_int_equal(rp_codec_execute(c, bad, sizeof(bad) - 1, &used, &ev), RP_CODEC_ERROR);
    assert_int_equal(ev.status, 400);
    assert_string_equal(ev.code, "BareLineFeed");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rp_codec_execute(c, good, sizeof(good) - 1, &used, &ev), RP_CODEC_ERROR);
        assert_int_equal(used, 0);
        assert_int_equal(ev.status, 400);
        assert_string_equal(ev.code, "BareLineFeed");
    }
    assert_true(rp_codec_in_request(c));
    rp_codec_free(c);
}

/*
 * Regression (fixed): codec.h promises that head views "stay valid until the next call to rp_codec_execute
 * after the request's RP_CODEC_END", but the call that returns END already runs next_message():
 * rp_buf_reset() writes a NUL over head byte 0 (the first byte of the method), and for a head
 * that grew the buffer past 4 KiB rp_buf_free() frees it, so every view dangles at END.
 */
static void check_views_at_end(const char *in, size_t n)
{
    rp_codec *c = rp_codec_create();
    const rp_http_head *h;
    size_t off = 0;

    assert_non_null(c);
    h = feed_until(c, in, n, &off, RP_CODEC_HEAD);
    assert_non_null(h);
    assert_true(rp_str_eq(h->method_str, "POST"));
    feed_until(c, in, n, &off, RP_CODEC_END);
    assert_true(rp_str_eq(h->method_str, "POST")); /* small head: method is "\0OST" */
    assert_true(rp_str_eq(h->path, "/p"));         /* large head: heap-use-after-free */
    rp_codec_free(c);
}

static void test_known_bug_views_at_end_small(void **state)
{
    static const char small[] = "POST /p HTTP/1.1\r\n" HOST "Content-Length: 1\r\n\r\nx";

    check_views_at_end(small, sizeof(small) - 1);
}

/* Under ASan this one aborts the whole run with the use-after-free report; it runs last. */
static void test_known_bug_views_at_end_big(void **state)
{
    rp_buf big;

    rp_buf_init(&big, 1 << 16);
    rp_buf_append_str(&big, "POST /p HTTP/1.1\r\n" HOST "Transfer-Encoding: chunked\r\nX: ");
    fill(&big, 'v', 5000);
    rp_buf_append_str(&big, "\r\n\r\n1\r\nx\r\n0\r\n\r\n");
    check_views_at_end(big.data, big.len);
    rp_buf_free(&big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_every_byte_in_runs),
        cmocka_unit_test(test_table_size),
        cmocka_unit_test(test_api),
        cmocka_unit_test(test_reset_forgets_prefix),
        cmocka_unit_test(test_error_sticky),
        cmocka_unit_test(test_known_bugs),
        cmocka_unit_test(test_known_bug_views_at_end_small),
        cmocka_unit_test(test_known_bug_views_at_end_big),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
