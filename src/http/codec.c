/*
 * codec.c - strict HTTP/1.1 request framing over llhttp.
 *
 * Workload: one codec per active connection, reused for every request on it. The head is
 * copied into a bounded buffer (it must survive across reads and llhttp wants it contiguous);
 * body bytes are never copied: body events point into the caller's input.
 *
 * Structure: scan_head() validates head bytes one at a time and records line boundaries; when
 * the blank line arrives, parse_head() splits the request line and fields, llhttp parses the
 * same head, and check_semantics() applies the rules on framing, Host and versions. Body bytes
 * go through scan_body() (our framing) and then llhttp (its framing); both must agree.
 */
#include "http/codec.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"

#include <llhttp.h>
#include <string.h>

typedef enum {
    PH_HEAD = 0,   /* reading the request head */
    PH_BODY_LEN,   /* Content-Length body */
    PH_CHUNK_SIZE, /* chunk-size hex digits */
    PH_CHUNK_EXT,  /* after ';' */
    PH_CHUNK_SIZE_LF,
    PH_CHUNK_DATA,
    PH_CHUNK_DATA_CR,
    PH_CHUNK_DATA_LF,
    PH_TRAILER, /* trailer section after the last chunk */
    PH_END,     /* message complete, END not yet reported */
    PH_DONE,    /* END reported; the head stays readable until the next message starts */
    PH_ERROR
} phase;

struct rp_codec {
    llhttp_t parser;
    llhttp_settings_t settings;
    phase ph;
    rp_buf head;       /* the raw head bytes */
    size_t line_start; /* offset in head of the current line */
    size_t lines;      /* complete non-empty lines so far (request line included) */
    size_t leading_crlf;
    int in_cr;     /* previous byte was CR */
    int saw_colon; /* current header line: colon seen */
    int name_ws;   /* current header line: whitespace seen in the name part */
    size_t line_offs[RP_HTTP_MAX_HEADERS + 1]; /* start of each line; [0] = request line */
    size_t line_lens[RP_HTTP_MAX_HEADERS + 1]; /* length without CRLF */
    uint64_t remaining; /* body bytes left in this Content-Length body or chunk */
    unsigned chunk_digits;
    size_t chunk_ext;
    size_t trailer_bytes; /* current trailer line */
    size_t trailer_total; /* whole trailer section */
    size_t trailer_lines;
    int llhttp_complete; /* llhttp reported on_message_complete for this message */
    int llhttp_headers;  /* llhttp reported on_headers_complete */
    rp_http_head h;
    rp_codec_event err;
};

static void next_message(rp_codec *c);

static const char *const method_names[] = {"",    "GET",    "HEAD",  "POST",
                                           "PUT", "DELETE", "PATCH", "OPTIONS"};

const char *rp_method_name(rp_method m)
{
    if ((int)m < 1 || (int)m > RP_METHOD_OPTIONS)
        return "";
    return method_names[m];
}

static int on_headers_complete(llhttp_t *p)
{
    rp_codec *c = p->data;

    c->llhttp_headers = 1;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    rp_codec *c = p->data;

    c->llhttp_complete = 1;
    /* Stop right here so a pipelined request is not parsed before this one is answered. */
    return HPE_PAUSED;
}

rp_codec *rp_codec_create(void)
{
    rp_codec *c = rp_calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    llhttp_settings_init(&c->settings);
    c->settings.on_headers_complete = on_headers_complete;
    c->settings.on_message_complete = on_message_complete;
    llhttp_init(&c->parser, HTTP_REQUEST, &c->settings);
    c->parser.data = c;
    rp_buf_init(&c->head, RP_HTTP_MAX_HEAD);
    return c;
}

void rp_codec_free(rp_codec *c)
{
    if (c == NULL)
        return;
    rp_buf_free(&c->head);
    rp_free(c);
}

int rp_codec_idle(const rp_codec *c)
{
    return (c->ph == PH_HEAD && c->head.len == 0) || c->ph == PH_DONE;
}

void rp_codec_reset(rp_codec *c)
{
    /* Always: an "idle" codec may still remember a lone CR or empty lines before a request
     * line, which must not leak into the next connection that takes it from the pool. */
    next_message(c);
}

int rp_codec_in_request(const rp_codec *c)
{
    return !rp_codec_idle(c);
}

static rp_codec_kind fail(rp_codec *c, rp_codec_event *ev, int status, const char *code,
                          const char *msg)
{
    c->ph = PH_ERROR;
    c->err.kind = RP_CODEC_ERROR;
    c->err.status = status;
    c->err.code = code;
    c->err.message = msg;
    *ev = c->err;
    return RP_CODEC_ERROR;
}

int rp_http_tchar(unsigned char ch)
{
    /* One bit per byte value 0-127: ALPHA, DIGIT and !#$%&'*+-.^_`|~ */
    static const uint32_t bits[4] = {0x00000000u, 0x03ff6cfau, 0xc7fffffeu, 0x57ffffffu};

    return ch < 128 && (bits[ch >> 5] >> (ch & 31) & 1u);
}

/*
 * Line-level checks shared by the head and the trailer section. is_request_line selects the
 * request-line rules. Returns 0 if the byte is acceptable; otherwise fills ev.
 */
typedef struct line_state {
    int *in_cr;
    int *saw_colon;
    int *name_ws;
    size_t line_len; /* bytes in the line before this byte */
} line_state;

static rp_codec_kind check_line_byte(rp_codec *c, unsigned char ch, int is_request_line,
                                     line_state *ls, rp_codec_event *ev)
{
    if (*ls->in_cr && ch != '\n')
        return fail(c, ev, 400, "BareCarriageReturn", "CR not followed by LF");
    if (ch == '\r' || ch == '\n')
        return RP_CODEC_NEED_MORE; /* handled by the caller */
    if (ch == 0)
        return fail(c, ev, 400, "NulByte", "NUL byte in request head");
    if (is_request_line) {
        if (ch < 0x21 && ch != ' ')
            return fail(c, ev, 400, "ControlCharacter", "control character in request line");
        if (ch >= 0x7f)
            return fail(c, ev, 400, "InvalidRequestLine", "non-ASCII byte in request line");
        if (ls->line_len == 0 && ch == ' ')
            return fail(c, ev, 400, "InvalidRequestLine", "request line starts with a space");
        return RP_CODEC_NEED_MORE;
    }
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
        return fail(c, ev, 400, "ControlCharacter", "control character in header field");
    if (ls->line_len == 0 && (ch == ' ' || ch == '\t'))
        return fail(c, ev, 400, "ObsoleteLineFolding", "obsolete line folding is not accepted");
    if (!*ls->saw_colon) {
        if (ch == ':') {
            if (ls->line_len == 0)
                return fail(c, ev, 400, "InvalidHeaderName", "empty header field name");
            if (*ls->name_ws)
                return fail(c, ev, 400, "WhitespaceBeforeColon",
                            "whitespace between header field name and colon");
            *ls->saw_colon = 1;
        } else if (ch == ' ' || ch == '\t') {
            *ls->name_ws = 1;
        } else if (*ls->name_ws || !rp_http_tchar(ch)) {
            return fail(c, ev, 400, "InvalidHeaderName", "invalid character in header field name");
        }
    }
    return RP_CODEC_NEED_MORE;
}

/*
 * Bytes that check_line_byte() accepts without changing any state: in a field value (after the
 * colon) VCHAR, SP, HTAB and obs-text; in the request line VCHAR and SP (not at its start, which
 * the caller ensures). Runs of them are copied at once, the rest goes byte by byte.
 */
static int plain_value(unsigned char ch)
{
    return (ch >= 0x20 && ch != 0x7f) || ch == '\t';
}

static int plain_reqline(unsigned char ch)
{
    return ch >= 0x20 && ch < 0x7f;
}

/* Length of the run of plain bytes at data (at most max); 0 when the byte path must decide. */
static size_t plain_run(const rp_codec *c, const char *data, size_t max)
{
    size_t line_len = c->head.len - c->line_start, n = 0;

    if (c->in_cr || line_len == 0)
        return 0;
    if (c->lines == 0) {
        if (line_len >= RP_HTTP_MAX_REQUEST_LINE)
            return 0;
        if (max > RP_HTTP_MAX_REQUEST_LINE - line_len)
            max = RP_HTTP_MAX_REQUEST_LINE - line_len;
        while (n < max && plain_reqline((unsigned char)data[n]))
            n++;
        return n;
    }
    if (!c->saw_colon)
        return 0;
    while (n < max && plain_value((unsigned char)data[n]))
        n++;
    return n;
}

/* Scans head bytes; returns NEED_MORE (all consumed), HEAD (head complete; *used set), ERROR. */
static rp_codec_kind scan_head(rp_codec *c, const char *data, size_t len, size_t *used,
                               rp_codec_event *ev)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)data[i];
        size_t line_len = c->head.len - c->line_start;
        int reqline = c->lines == 0;
        line_state ls = {&c->in_cr, &c->saw_colon, &c->name_ws, line_len};
        rp_codec_kind k;
        size_t run = plain_run(c, data + i, len - i);

        /* A run that does not fit goes byte by byte below, for the exact error. */
        if (run > 0 && rp_buf_append(&c->head, data + i, run) == 0) {
            i += run - 1;
            continue;
        }

        /* Empty lines before a request line are tolerated (RFC 9112 2.2), a few of them. */
        if (reqline && line_len == 0 && !c->in_cr && c->head.len == 0 && ch == '\r') {
            c->in_cr = 1;
            continue;
        }
        if (reqline && line_len == 0 && c->in_cr && c->head.len == 0 && ch == '\n') {
            c->in_cr = 0;
            if (++c->leading_crlf > RP_HTTP_MAX_LEADING_CRLF)
                return fail(c, ev, 400, "InvalidRequestLine", "too many empty lines");
            continue;
        }
        k = check_line_byte(c, ch, reqline, &ls, ev);
        if (k == RP_CODEC_ERROR)
            return k;
        if (reqline && line_len >= RP_HTTP_MAX_REQUEST_LINE)
            return fail(c, ev, 414, "UriTooLong", "request line too long");
        if (rp_buf_push(&c->head, (char)ch) != 0) {
            if (reqline)
                return fail(c, ev, 414, "UriTooLong", "request line too long");
            return fail(c, ev, 431, "HeadersTooLarge", "request header section too large");
        }
        if (ch == '\r') {
            c->in_cr = 1;
            continue;
        }
        if (ch == '\n') {
            if (!c->in_cr)
                return fail(c, ev, 400, "BareLineFeed", "LF not preceded by CR");
            c->in_cr = 0;
            line_len -= 1; /* the CR */
            if (line_len == 0) {
                if (reqline)
                    return fail(c, ev, 400, "InvalidRequestLine", "empty request line");
                *used = i + 1;
                return RP_CODEC_HEAD;
            }
            if (!reqline && !c->saw_colon)
                return fail(c, ev, 400, "InvalidHeader", "header field without a colon");
            if (c->lines > RP_HTTP_MAX_HEADERS)
                return fail(c, ev, 431, "TooManyHeaders", "too many header fields");
            c->line_offs[c->lines] = c->line_start;
            c->line_lens[c->lines] = line_len;
            c->lines++;
            c->line_start = c->head.len;
            c->saw_colon = 0;
            c->name_ws = 0;
        }
    }
    *used = len;
    return RP_CODEC_NEED_MORE;
}

static int find_method(rp_str m, rp_method *out)
{
    for (int i = 1; i <= RP_METHOD_OPTIONS; i++) {
        if (rp_str_eq(m, method_names[i])) {
            *out = (rp_method)i;
            return 0;
        }
    }
    return -1;
}

/* Validates a Host value (reg-name, IPv4 or [IPv6], optional port); lowercases in place. */
static int parse_host(char *p, size_t n, rp_str *host, int *port)
{
    size_t hn = n, i;

    if (n == 0)
        return -1;
    if (p[0] == '[') {
        char *close = memchr(p, ']', n);
        if (close == NULL)
            return -1;
        hn = (size_t)(close - p) + 1;
        for (i = 1; i + 1 < hn; i++) {
            unsigned char ch = (unsigned char)p[i];
            if (!(rp_hex_value(ch) >= 0 || ch == ':' || ch == '.'))
                return -1;
            p[i] = rp_lower(p[i]);
        }
        if (hn < 4)
            return -1;
    } else {
        char *colon = memchr(p, ':', n);
        if (colon != NULL)
            hn = (size_t)(colon - p);
        if (hn == 0 || hn > 253)
            return -1;
        for (i = 0; i < hn; i++) {
            unsigned char ch = (unsigned char)p[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_'))
                return -1;
            p[i] = rp_lower(p[i]);
        }
    }
    *port = 0;
    if (hn < n) {
        uint64_t v;
        if (p[hn] != ':' || rp_parse_u64(p + hn + 1, n - hn - 1, 65535, &v) != 0)
            return -1;
        *port = (int)v;
    }
    /* A trailing dot names the same host; drop it so routing sees one spelling. */
    if (hn > 1 && p[hn - 1] == '.' && p[0] != '[')
        hn--;
    host->p = p;
    host->n = hn;
    return 0;
}

static rp_codec_kind parse_request_line(rp_codec *c, rp_codec_event *ev)
{
    char *line = c->head.data + c->line_offs[0];
    size_t n = c->line_lens[0];
    char *sp1 = memchr(line, ' ', n), *sp2;
    rp_http_head *h = &c->h;
    rp_str ver;

    if (sp1 == NULL)
        return fail(c, ev, 400, "InvalidRequestLine", "malformed request line");
    sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - line));
    if (sp2 == NULL || memchr(sp2 + 1, ' ', n - (size_t)(sp2 + 1 - line)) != NULL)
        return fail(c, ev, 400, "InvalidRequestLine", "malformed request line");
    h->method_str = (rp_str){line, (size_t)(sp1 - line)};
    h->target = (rp_str){sp1 + 1, (size_t)(sp2 - sp1 - 1)};
    ver = (rp_str){sp2 + 1, n - (size_t)(sp2 + 1 - line)};
    if (h->method_str.n == 0 || h->target.n == 0)
        return fail(c, ev, 400, "InvalidRequestLine", "malformed request line");
    for (size_t i = 0; i < h->method_str.n; i++)
        if (!rp_http_tchar((unsigned char)h->method_str.p[i]))
            return fail(c, ev, 400, "InvalidMethod", "invalid method");
    if (ver.n == 8 && memcmp(ver.p, "HTTP/", 5) == 0 && ver.p[6] == '.' && ver.p[5] >= '0' &&
        ver.p[5] <= '9' && ver.p[7] >= '0' && ver.p[7] <= '9') {
        if (ver.p[5] != '1' || (ver.p[7] != '0' && ver.p[7] != '1'))
            return fail(c, ev, 505, "HttpVersionNotSupported", "only HTTP/1.0 and HTTP/1.1");
        h->version = ver.p[7] == '1' ? 11 : 10;
    } else {
        return fail(c, ev, 400, "InvalidRequestLine", "malformed HTTP version");
    }
    if (find_method(h->method_str, &h->method) != 0)
        return fail(c, ev, 501, "MethodNotImplemented", "method not implemented");
    return RP_CODEC_NEED_MORE;
}

/* Splits the target into path and query, accepting origin-form and absolute-form. */
static rp_codec_kind parse_target(rp_codec *c, rp_str *abs_authority, rp_codec_event *ev)
{
    rp_http_head *h = &c->h;
    rp_str t = h->target;
    const char *q;

    abs_authority->p = NULL;
    abs_authority->n = 0;
    if (t.p[0] != '/') {
        size_t skip;
        const char *slash;
        if (t.n > 8 && memcmp(t.p, "https://", 8) == 0)
            skip = 8;
        else if (t.n > 7 && memcmp(t.p, "http://", 7) == 0)
            skip = 7;
        else
            return fail(c, ev, 400, "InvalidTarget", "unsupported request-target form");
        slash = memchr(t.p + skip, '/', t.n - skip);
        q = memchr(t.p + skip, '?', t.n - skip);
        if (q != NULL && (slash == NULL || q < slash))
            slash = NULL; /* "http://h?x": empty path */
        abs_authority->p = t.p + skip;
        abs_authority->n = (size_t)((slash ? slash : (q ? q : t.p + t.n)) - abs_authority->p);
        if (abs_authority->n == 0 || memchr(abs_authority->p, '@', abs_authority->n) != NULL)
            return fail(c, ev, 400, "InvalidTarget", "invalid authority in request-target");
        if (slash == NULL)
            return fail(c, ev, 400, "InvalidTarget", "absolute-form without a path");
        t.n -= (size_t)(slash - t.p);
        t.p = slash;
    }
    q = memchr(t.p, '?', t.n);
    if (q != NULL) {
        h->path = (rp_str){t.p, (size_t)(q - t.p)};
        h->query = (rp_str){q + 1, t.n - h->path.n - 1};
        h->has_query = 1;
    } else {
        h->path = t;
        h->query = (rp_str){t.p + t.n, 0};
        h->has_query = 0;
    }
    if (memchr(h->target.p, '#', h->target.n) != NULL)
        return fail(c, ev, 400, "InvalidTarget", "fragment in request-target");
    return RP_CODEC_NEED_MORE;
}

static int has_token(rp_str v, const char *tok)
{
    /* Comma-separated list membership, case-insensitive (Connection, Expect). */
    size_t i = 0;

    while (i <= v.n) {
        size_t j = i;
        while (j < v.n && v.p[j] != ',')
            j++;
        if (rp_str_eq_nocase(rp_str_trim((rp_str){v.p + i, j - i}), tok))
            return 1;
        i = j + 1;
    }
    return 0;
}

static rp_codec_kind check_semantics(rp_codec *c, rp_codec_event *ev)
{
    rp_http_head *h = &c->h;
    const rp_header *host = NULL, *te = NULL, *cl = NULL, *expect = NULL;
    int conn_close = 0, conn_keep = 0;
    rp_str authority;
    rp_codec_kind k;

    k = parse_target(c, &authority, ev);
    if (k == RP_CODEC_ERROR)
        return k;
    for (size_t i = 0; i < h->nheaders; i++) {
        const rp_header *x = &h->headers[i];
        const rp_header **slot = NULL;
        if (rp_str_eq_nocase(x->name, "host"))
            slot = &host;
        else if (rp_str_eq_nocase(x->name, "transfer-encoding"))
            slot = &te;
        else if (rp_str_eq_nocase(x->name, "content-length"))
            slot = &cl;
        else if (rp_str_eq_nocase(x->name, "connection")) {
            /* Every Connection field counts: options may be split across fields. */
            conn_close |= has_token(x->value, "close");
            conn_keep |= has_token(x->value, "keep-alive");
        } else if (rp_str_eq_nocase(x->name, "expect"))
            slot = &expect;
        if (slot != NULL) {
            if (*slot != NULL)
                return fail(c, ev, 400, "DuplicateHeader",
                            slot == &host ? "duplicate Host header"
                            : slot == &cl ? "duplicate Content-Length header"
                            : slot == &te ? "duplicate Transfer-Encoding header"
                                          : "duplicate Expect header");
            *slot = x;
        }
    }
    if (host == NULL)
        return fail(c, ev, 400, "MissingHost", "missing Host header");
    if (parse_host((char *)host->value.p, host->value.n, &h->host, &h->port) != 0)
        return fail(c, ev, 400, "InvalidHost", "invalid Host header");
    if (authority.p != NULL) {
        rp_str ah;
        int aport;
        char tmp[300];
        if (authority.n >= sizeof(tmp))
            return fail(c, ev, 400, "InvalidTarget", "authority too long");
        memcpy(tmp, authority.p, authority.n);
        if (parse_host(tmp, authority.n, &ah, &aport) != 0 || ah.n != h->host.n ||
            memcmp(ah.p, h->host.p, ah.n) != 0 || aport != h->port)
            return fail(c, ev, 400, "HostMismatch",
                        "absolute-form authority does not match the Host header");
    }
    if (te != NULL) {
        if (h->version == 10)
            return fail(c, ev, 400, "InvalidTransferEncoding",
                        "Transfer-Encoding in an HTTP/1.0 request");
        if (cl != NULL)
            return fail(c, ev, 400, "ConflictingFraming",
                        "both Content-Length and Transfer-Encoding");
        if (!rp_str_eq_nocase(te->value, "chunked"))
            return fail(c, ev, 501, "UnsupportedTransferEncoding",
                        "only the chunked transfer coding is supported");
        h->chunked = 1;
    } else if (cl != NULL) {
        if (rp_parse_u64(cl->value.p, cl->value.n, UINT64_MAX, &h->content_length) != 0)
            return fail(c, ev, 400, "InvalidContentLength", "invalid Content-Length");
        if (h->content_length > RP_HTTP_MAX_CONTENT_LENGTH)
            return fail(c, ev, 413, "RequestBodyTooLarge", "Content-Length over the limit");
        h->has_length = 1;
    } else if (h->method == RP_METHOD_POST || h->method == RP_METHOD_PUT ||
               h->method == RP_METHOD_PATCH) {
        return fail(c, ev, 411, "LengthRequired", "Content-Length or chunked body required");
    }
    if (expect != NULL) {
        if (!rp_str_eq_nocase(expect->value, "100-continue"))
            return fail(c, ev, 417, "ExpectationFailed", "unsupported expectation");
        /* RFC 9110 10.1.1: an HTTP/1.0 client cannot understand 100 Continue. */
        h->expect_continue = h->version == 11;
    }
    if (h->version == 11)
        h->keep_alive = !conn_close;
    else
        h->keep_alive = conn_keep && !conn_close;
    return RP_CODEC_NEED_MORE;
}

static rp_codec_kind parse_head(rp_codec *c, rp_codec_event *ev)
{
    rp_http_head *h = &c->h;
    rp_codec_kind k;
    llhttp_errno_t e;

    memset(h, 0, sizeof(*h));
    k = parse_request_line(c, ev);
    if (k == RP_CODEC_ERROR)
        return k;
    for (size_t i = 1; i < c->lines; i++) {
        char *line = c->head.data + c->line_offs[i];
        size_t n = c->line_lens[i];
        char *colon = memchr(line, ':', n);
        rp_header *x = &h->headers[h->nheaders++];
        x->name = (rp_str){line, (size_t)(colon - line)};
        x->value = rp_str_trim((rp_str){colon + 1, n - (size_t)(colon + 1 - line)});
    }
    /* Our rules first, so their precise statuses (501, 505, 411...) win over llhttp's 400. */
    k = check_semantics(c, ev);
    if (k == RP_CODEC_ERROR)
        return k;
    /* llhttp sees the same bytes; it must accept them and agree that a head ended here. */
    c->llhttp_headers = 0;
    c->llhttp_complete = 0;
    e = llhttp_execute(&c->parser, c->head.data, c->head.len);
    if (e != HPE_OK && e != HPE_PAUSED && e != HPE_PAUSED_UPGRADE)
        return fail(c, ev, 400, "MalformedRequest", llhttp_errno_name(e));
    if (!c->llhttp_headers)
        return fail(c, ev, 400, "MalformedRequest", "incomplete request head");
    if (e != HPE_OK && llhttp_get_error_pos(&c->parser) != c->head.data + c->head.len)
        return fail(c, ev, 400, "MalformedRequest", "ambiguous message framing");
    if (h->chunked) {
        c->ph = PH_CHUNK_SIZE;
        c->chunk_digits = 0;
        c->remaining = 0;
        c->trailer_bytes = 0;
        c->trailer_total = 0;
        c->trailer_lines = 0;
    } else if (h->has_length && h->content_length > 0) {
        c->ph = PH_BODY_LEN;
        c->remaining = h->content_length;
    } else {
        c->ph = PH_END;
    }
    if ((c->ph == PH_END) != (c->llhttp_complete != 0))
        return fail(c, ev, 400, "MalformedRequest", "ambiguous message framing");
    ev->kind = RP_CODEC_HEAD;
    ev->head = h;
    return RP_CODEC_HEAD;
}

/* Feeds body bytes to llhttp and checks it agrees about the end of the message. */
static rp_codec_kind llhttp_body(rp_codec *c, const char *p, size_t n, int should_end,
                                 rp_codec_event *ev)
{
    llhttp_errno_t e;

    if (n == 0)
        return RP_CODEC_NEED_MORE;
    e = llhttp_execute(&c->parser, p, n);
    if (e != HPE_OK && e != HPE_PAUSED)
        return fail(c, ev, 400, "MalformedBody", llhttp_errno_name(e));
    if (c->llhttp_complete != should_end)
        return fail(c, ev, 400, "MalformedBody", "ambiguous message framing");
    if (e == HPE_PAUSED && llhttp_get_error_pos(&c->parser) != p + n)
        return fail(c, ev, 400, "MalformedBody", "ambiguous message framing");
    return RP_CODEC_NEED_MORE;
}

/*
 * Scans chunked framing until a data run is found, the message ends, or input runs out.
 * On a data run, data and dlen are set and used stops right after it.
 */
static rp_codec_kind scan_chunked(rp_codec *c, const char *p, size_t n, size_t *used,
                                  const char **data, size_t *dlen, rp_codec_event *ev)
{
    size_t i = 0;

    *data = NULL;
    *dlen = 0;
    while (i < n) {
        unsigned char ch = (unsigned char)p[i];
        switch (c->ph) {
        case PH_CHUNK_SIZE: {
            int v = rp_hex_value(ch);
            if (v >= 0) {
                if (++c->chunk_digits > 15)
                    return fail(c, ev, 400, "InvalidChunkSize", "chunk size too large");
                c->remaining = c->remaining * 16 + (uint64_t)v;
            } else if (c->chunk_digits == 0) {
                return fail(c, ev, 400, "InvalidChunkSize", "invalid chunk size");
            } else if (ch == ';') {
                c->ph = PH_CHUNK_EXT;
                c->chunk_ext = 0;
            } else if (ch == '\r') {
                c->ph = PH_CHUNK_SIZE_LF;
            } else {
                return fail(c, ev, 400, "InvalidChunkSize", "invalid character after chunk size");
            }
            i++;
            break;
        }
        case PH_CHUNK_EXT:
            if (ch == '\r') {
                c->ph = PH_CHUNK_SIZE_LF;
            } else if (ch == '\n' || (ch < 0x20 && ch != '\t') || ch == 0x7f) {
                return fail(c, ev, 400, "InvalidChunkExtension", "invalid chunk extension");
            } else if (++c->chunk_ext > RP_HTTP_MAX_CHUNK_EXT) {
                return fail(c, ev, 400, "InvalidChunkExtension", "chunk extension too long");
            }
            i++;
            break;
        case PH_CHUNK_SIZE_LF:
            if (ch != '\n')
                return fail(c, ev, 400, "BareCarriageReturn", "CR not followed by LF");
            i++;
            if (c->remaining == 0) {
                c->ph = PH_TRAILER;
                c->line_start = c->head.len;
                c->in_cr = 0;
                c->saw_colon = 0;
                c->name_ws = 0;
            } else {
                c->ph = PH_CHUNK_DATA;
            }
            break;
        case PH_CHUNK_DATA: {
            size_t take = n - i;
            if ((uint64_t)take > c->remaining)
                take = (size_t)c->remaining;
            *data = p + i;
            *dlen = take;
            c->remaining -= take;
            if (c->remaining == 0)
                c->ph = PH_CHUNK_DATA_CR;
            *used = i + take;
            return RP_CODEC_BODY;
        }
        case PH_CHUNK_DATA_CR:
            if (ch != '\r')
                return fail(c, ev, 400, "InvalidChunk", "chunk data not followed by CRLF");
            c->ph = PH_CHUNK_DATA_LF;
            i++;
            break;
        case PH_CHUNK_DATA_LF:
            if (ch != '\n')
                return fail(c, ev, 400, "InvalidChunk", "chunk data not followed by CRLF");
            c->ph = PH_CHUNK_SIZE;
            c->chunk_digits = 0;
            c->remaining = 0;
            i++;
            break;
        case PH_TRAILER: {
            /* The trailer section uses the header-line rules; fields are checked, then dropped. */
            line_state ls = {&c->in_cr, &c->saw_colon, &c->name_ws, c->trailer_bytes};
            if (check_line_byte(c, ch, 0, &ls, ev) == RP_CODEC_ERROR)
                return RP_CODEC_ERROR;
            i++;
            if (ch == '\r') {
                c->in_cr = 1;
                break;
            }
            if (ch == '\n') {
                if (!c->in_cr)
                    return fail(c, ev, 400, "BareLineFeed", "LF not preceded by CR");
                c->in_cr = 0;
                if (c->trailer_bytes == 0) {
                    c->ph = PH_END;
                    *used = i;
                    return RP_CODEC_END;
                }
                if (!c->saw_colon)
                    return fail(c, ev, 400, "InvalidHeader", "trailer field without a colon");
                if (++c->trailer_lines > RP_HTTP_MAX_HEADERS)
                    return fail(c, ev, 431, "TooManyHeaders", "too many trailer fields");
                c->trailer_bytes = 0;
                c->saw_colon = 0;
                c->name_ws = 0;
                break;
            }
            c->trailer_bytes++;
            if (++c->trailer_total > RP_HTTP_MAX_TRAILER)
                return fail(c, ev, 431, "HeadersTooLarge", "trailer section too large");
            break;
        }
        default: return fail(c, ev, 500, "InternalError", "codec state");
        }
    }
    *used = n;
    return RP_CODEC_NEED_MORE;
}

static void next_message(rp_codec *c)
{
    rp_buf_reset(&c->head);
    /* Keep a small head buffer for the next request; give back a large one. */
    if (c->head.cap > 4096)
        rp_buf_free(&c->head);
    c->line_start = 0;
    c->lines = 0;
    c->leading_crlf = 0;
    c->in_cr = 0;
    c->saw_colon = 0;
    c->name_ws = 0;
    c->remaining = 0;
    c->llhttp_complete = 0;
    c->llhttp_headers = 0;
    c->ph = PH_HEAD;
    /* A fresh llhttp per message: no pause, upgrade or keep-alive state carries over (the
     * connection decides keep-alive from our own reading of the head). */
    llhttp_init(&c->parser, HTTP_REQUEST, &c->settings);
    c->parser.data = c;
}

rp_codec_kind rp_codec_execute(rp_codec *c, const char *data, size_t len, size_t *used,
                               rp_codec_event *ev)
{
    rp_codec_kind k;
    size_t u = 0;

    memset(ev, 0, sizeof(*ev));
    *used = 0;
    switch (c->ph) {
    case PH_ERROR: *ev = c->err; return RP_CODEC_ERROR;
    case PH_END:
        ev->kind = RP_CODEC_END;
        c->ph = PH_DONE;
        return RP_CODEC_END;
    case PH_DONE:
    case PH_HEAD:
        if (c->ph == PH_DONE)
            next_message(c); /* only now: the finished head stayed readable until here */
        k = scan_head(c, data, len, &u, ev);
        *used = u;
        if (k != RP_CODEC_HEAD)
            return k;
        return parse_head(c, ev);
    case PH_BODY_LEN: {
        size_t take = len;
        if ((uint64_t)take > c->remaining)
            take = (size_t)c->remaining;
        if (take == 0)
            return RP_CODEC_NEED_MORE;
        c->remaining -= take;
        if (c->remaining == 0)
            c->ph = PH_END;
        if (llhttp_body(c, data, take, c->ph == PH_END, ev) == RP_CODEC_ERROR)
            return RP_CODEC_ERROR;
        *used = take;
        ev->kind = RP_CODEC_BODY;
        ev->data = data;
        ev->len = take;
        return RP_CODEC_BODY;
    }
    default: {
        const char *d;
        size_t dn;
        k = scan_chunked(c, data, len, &u, &d, &dn, ev);
        if (k == RP_CODEC_ERROR)
            return k;
        if (llhttp_body(c, data, u, k == RP_CODEC_END, ev) == RP_CODEC_ERROR)
            return RP_CODEC_ERROR;
        *used = u;
        if (k == RP_CODEC_END) {
            c->ph = PH_DONE;
            ev->kind = RP_CODEC_END;
            return RP_CODEC_END;
        }
        if (k == RP_CODEC_BODY) {
            ev->kind = RP_CODEC_BODY;
            ev->data = d;
            ev->len = dn;
        }
        return k;
    }
    }
}

const rp_header *rp_http_header_find(const rp_http_head *h, const char *name)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (rp_str_eq_nocase(h->headers[i].name, name))
            return &h->headers[i];
    return NULL;
}
