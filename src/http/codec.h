/*
 * codec.h - HTTP/1.1 request framing: llhttp plus the strictness checks it lacks.
 *
 * The codec turns the bytes of one connection into a sequence of events: a request head, body
 * spans, the end of the request; then the next pipelined request. It does no I/O and keeps no
 * pointer to the caller's buffers between calls, so it can be fuzzed on its own
 * (tests/fuzz/codec_fuzz.c).
 *
 * Two parsers look at every byte. Our own scanner runs first and enforces what llhttp 8
 * accepts but a front door must not: bare CR or LF line ends, obs-fold, whitespace before a
 * colon, control bytes, raw non-ASCII in the request line, unknown transfer codings, HTTP/2.0
 * request lines, and the CRLF after each chunk's data (llhttp 8.1 skips any two bytes there,
 * which is a smuggling vector). It also frames the body itself, so body events are cut from
 * the scanner's view. llhttp then parses the same bytes; any error from it, or any
 * disagreement between the two about where a message ends, fails the request. A request that
 * fails here is answered with RP_CODEC_ERROR's status and the connection is closed, because
 * after a framing error nobody knows where the next request starts.
 */
#ifndef RP_HTTP_CODEC_H
#define RP_HTTP_CODEC_H

#include "base/str.h"

#include <stddef.h>
#include <stdint.h>

/* Limits (RFC 9112 leaves them to the server; these are the front door's). */
#define RP_HTTP_MAX_HEAD           16384 /* request line + header section, bytes -> 431 */
#define RP_HTTP_MAX_REQUEST_LINE   8192  /* request line, bytes -> 414 */
#define RP_HTTP_MAX_HEADERS        100   /* header fields -> 431 */
#define RP_HTTP_MAX_TRAILER        4096  /* trailer section of a chunked body, bytes -> 431 */
#define RP_HTTP_MAX_CHUNK_EXT      256   /* chunk extension bytes per chunk -> 400 */
#define RP_HTTP_MAX_LEADING_CRLF   8     /* empty lines tolerated before a request line */
#define RP_HTTP_MAX_CONTENT_LENGTH ((uint64_t)1 << 50)

typedef enum {
    RP_METHOD_GET = 1,
    RP_METHOD_HEAD,
    RP_METHOD_POST,
    RP_METHOD_PUT,
    RP_METHOD_DELETE,
    RP_METHOD_PATCH,
    RP_METHOD_OPTIONS
} rp_method;

typedef struct rp_header {
    rp_str name;  /* as sent (case preserved); compare with rp_str_eq_nocase */
    rp_str value; /* leading/trailing OWS removed */
} rp_header;

/* The parsed request head. Views point into the codec's head buffer and stay valid until the
 * first call to rp_codec_execute after the request's RP_CODEC_END, or rp_codec_reset or
 * rp_codec_free. */
typedef struct rp_http_head {
    rp_method method;
    rp_str method_str;
    rp_str target; /* raw request-target as sent */
    rp_str path;   /* raw path of the target (origin-form, or taken from absolute-form) */
    rp_str query;  /* raw query without '?', empty if none */
    int has_query;
    int version; /* 10 or 11 */
    rp_header headers[RP_HTTP_MAX_HEADERS];
    size_t nheaders;
    rp_str host;    /* Host header value, lowercased in place, port removed */
    int port;       /* port from Host, or 0 if absent */
    int chunked;    /* body uses chunked framing */
    int has_length; /* Content-Length was given */
    uint64_t content_length;
    int keep_alive; /* connection may be reused after this request */
    int expect_continue;
} rp_http_head;

typedef enum {
    RP_CODEC_NEED_MORE = 0, /* everything given was consumed; feed more bytes */
    RP_CODEC_HEAD,          /* ev.head is ready */
    RP_CODEC_BODY,          /* ev.data/ev.len: body bytes (pointer into the caller's input) */
    RP_CODEC_END,           /* the request is complete */
    RP_CODEC_ERROR          /* ev.status/ev.code/ev.message: answer and close */
} rp_codec_kind;

typedef struct rp_codec_event {
    rp_codec_kind kind;
    const rp_http_head *head;
    const char *data;
    size_t len;
    int status;          /* for RP_CODEC_ERROR: 400, 411, 413 (Content-Length over 2^50),
                            414, 417, 431, 501, 505 */
    const char *code;    /* short machine code, e.g. "BareLineFeed" (static string) */
    const char *message; /* short human text (static string); never echoes input */
} rp_codec_event;

typedef struct rp_codec rp_codec;

/* Creates a codec for one connection. NULL on OOM. */
rp_codec *rp_codec_create(void);
void rp_codec_free(rp_codec *c); /* accepts NULL */

/*
 * Consumes bytes from data[0..len) until one event is ready. *used is how many bytes were
 * consumed (the caller passes the rest on the next call). Returns the event kind, also stored
 * in ev->kind. After RP_CODEC_ERROR every further call returns the same error.
 */
rp_codec_kind rp_codec_execute(rp_codec *c, const char *data, size_t len, size_t *used,
                               rp_codec_event *ev);

/* True when the codec is between requests with no partial request buffered. */
int rp_codec_idle(const rp_codec *c);
/* Forgets a finished request (releasing its head) so the codec can be pooled; call only when
 * rp_codec_idle is true. */
void rp_codec_reset(rp_codec *c);
/* True when a request has started (bytes buffered or a request in progress). */
int rp_codec_in_request(const rp_codec *c);

/* Finds the first header named name (case-insensitive); NULL if absent. */
const rp_header *rp_http_header_find(const rp_http_head *h, const char *name);
const char *rp_method_name(rp_method m);

/* 1 when ch is an RFC 9110 tchar (ALPHA, DIGIT or one of !#$%&'*+-.^_`|~): the bytes of a
 * header name or a method. Every module that checks a header name asks this. */
int rp_http_tchar(unsigned char ch);

#endif
