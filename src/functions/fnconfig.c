/*
 * fnconfig.c - host.json and function.json of a function app (fnconfig.h).
 *
 * Both files are the app owner's input: every value that reaches a process command line, a
 * route table or a response header is checked here, and everything else a file may hold is
 * ignored the way Azure ignores it. Parsing is one pass over the jansson tree; the results copy
 * what they keep, so the tree is dropped before returning. Errors stop at the first problem and
 * name it by its JSON path; values are quoted through quote() so a message stays short and
 * printable whatever the file holds.
 *
 * Member lookup ignores ASCII case and refuses two members that match the same name: the .NET
 * configuration Azure reads host.json with ignores case, and a file that says a thing twice is
 * more likely a mistake than an intent. Lookups walk the object, which is fine for files of at
 * most 64 KiB read once per deployment.
 */
#include "functions/fnconfig.h"

#include "http/codec.h"
#include "base/alloc.h"
#include "base/err.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define QUOTE_MAX 64 /* bytes of a value a message shows */
#define PATH_CAP  160

/* Where a message goes and which file it names. */
typedef struct ctx {
    char file[RP_FN_NAME_MAX + 32];
    char *err;
    size_t cap;
} ctx;

/* A quoted value: '"' + up to QUOTE_MAX bytes as \xHH + '"' + "..." + NUL. */
typedef struct qbuf {
    char s[QUOTE_MAX * 4 + 8];
} qbuf;

static int failf(const ctx *c, int rc, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int failf(const ctx *c, int rc, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->err != NULL && c->cap > 0) {
        if (path != NULL && path[0] != '\0')
            snprintf(c->err, c->cap, "%s: %s: %s", c->file, path, msg);
        else
            snprintf(c->err, c->cap, "%s: %s", c->file, msg);
    }
    return rc;
}

static int oom(const ctx *c)
{
    return failf(c, RP_ENOMEM, NULL, "out of memory");
}

/* s[0..n) as a message shows it: quoted, printable ASCII, at most QUOTE_MAX bytes of it. */
static const char *quote(const char *s, size_t n, qbuf *q)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    q->s[o++] = '"';
    for (size_t i = 0; i < n && i < QUOTE_MAX; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            q->s[o++] = '\\';
            q->s[o++] = (char)ch;
        } else if (ch >= 0x20 && ch < 0x7f) {
            q->s[o++] = (char)ch;
        } else {
            q->s[o++] = '\\';
            q->s[o++] = 'x';
            q->s[o++] = hex[ch >> 4];
            q->s[o++] = hex[ch & 15];
        }
    }
    q->s[o++] = '"';
    if (n > QUOTE_MAX) {
        memcpy(q->s + o, "...", 3);
        o += 3;
    }
    q->s[o] = '\0';
    return q->s;
}

static const char *quote_json(const json_t *v, qbuf *q)
{
    return quote(json_string_value(v), json_string_length(v), q);
}

/* out[PATH_CAP] = parent.key. Paths here are fixed chains of member names and indexes, far
 * shorter than PATH_CAP; one that did not fit would end in "..." rather than mislead. */
static void join(char *out, const char *parent, const char *key)
{
    int k = parent == NULL || parent[0] == '\0' ? snprintf(out, PATH_CAP, "%s", key)
                                                : snprintf(out, PATH_CAP, "%s.%s", parent, key);

    if (k < 0 || k >= PATH_CAP)
        memcpy(out + PATH_CAP - 4, "...", 4);
}

/* ---- member access ------------------------------------------------------------------------ */

/*
 * The member of o named key, ignoring ASCII case: 0 with *v (NULL when absent or null), or
 * RP_EPARSE when two members have that name.
 */
static int member(const ctx *c, const json_t *o, const char *parent, const char *key, json_t **v)
{
    const char *k;
    json_t *x, *found = NULL;
    char path[PATH_CAP];

    *v = NULL;
    json_object_foreach((json_t *)o, k, x)
    {
        if (strcasecmp(k, key) != 0)
            continue;
        if (found != NULL) {
            join(path, parent, key);
            return failf(c, RP_EPARSE, path,
                         "given twice (member names match ignoring case; keep one)");
        }
        found = x;
    }
    *v = json_is_null(found) ? NULL : found;
    return 0;
}

/* An optional member that must be an object (*v NULL when absent). */
static int get_obj(const ctx *c, const json_t *o, const char *parent, const char *key, json_t **v)
{
    char path[PATH_CAP];
    int rc = member(c, o, parent, key, v);

    if (rc != 0 || *v == NULL || json_is_object(*v))
        return rc;
    join(path, parent, key);
    return failf(c, RP_EPARSE, path, "must be an object");
}

/* An optional member that must be a string (*v NULL when absent). */
static int get_str(const ctx *c, const json_t *o, const char *parent, const char *key, json_t **v)
{
    char path[PATH_CAP];
    int rc = member(c, o, parent, key, v);

    if (rc != 0 || *v == NULL || json_is_string(*v))
        return rc;
    join(path, parent, key);
    return failf(c, RP_EPARSE, path, "must be a string");
}

static int get_bool(const ctx *c, const json_t *o, const char *parent, const char *key, int def,
                    int *out)
{
    char path[PATH_CAP];
    json_t *v;
    int rc = member(c, o, parent, key, &v);

    *out = def;
    if (rc != 0 || v == NULL)
        return rc;
    if (!json_is_boolean(v)) {
        join(path, parent, key);
        return failf(c, RP_EPARSE, path, "must be true or false");
    }
    *out = json_is_true(v);
    return 0;
}

/* 1 if s[0..n) has a control character (C0, DEL) other than, when tab_ok, HTAB. */
static int has_ctl(const char *s, size_t n, int tab_ok)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && !(tab_ok && ch == '\t')) || ch == 0x7f)
            return 1;
    }
    return 0;
}

/* A copy of a checked string value; NULL on allocation failure. */
static char *dup_json(const json_t *v)
{
    return rp_strndup(json_string_value(v), json_string_length(v));
}

/*
 * A string of 1..max bytes without control characters, copied into *out (NULL when absent
 * and not required).
 */
static int get_text(const ctx *c, const json_t *o, const char *parent, const char *key,
                    int required, size_t max, char **out)
{
    char path[PATH_CAP];
    json_t *v;
    qbuf q;
    int rc = get_str(c, o, parent, key, &v);

    *out = NULL;
    if (rc != 0)
        return rc;
    join(path, parent, key);
    if (v == NULL)
        return required ? failf(c, RP_EPARSE, path, "missing") : 0;
    if (json_string_length(v) == 0)
        return failf(c, RP_EPARSE, path, "empty");
    if (json_string_length(v) > max)
        return failf(c, RP_EPARSE, path, "%s is over %zu bytes", quote_json(v, &q), max);
    if (has_ctl(json_string_value(v), json_string_length(v), 0))
        return failf(c, RP_EPARSE, path, "%s has a control character", quote_json(v, &q));
    *out = dup_json(v);
    return *out == NULL ? oom(c) : 0;
}

/* Parses JSON text into an object, skipping a UTF-8 byte order mark (editors on Windows write
 * one and Azure's reader accepts it). */
static int load(const ctx *c, const char *text, size_t n, json_t **out)
{
    json_error_t je;
    json_t *root;
    char why[96];
    size_t k = 0;

    *out = NULL;
    if (n > RP_FN_FILE_MAX)
        return failf(c, RP_ETOOBIG, NULL, "the file is %zu bytes; at most %u", n, RP_FN_FILE_MAX);
    if (n >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        text += 3;
        n -= 3;
    }
    root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        if (json_error_code(&je) == json_error_out_of_memory)
            return oom(c);
        /* jansson's wording names its own flag; say what is wrong instead. */
        if (json_error_code(&je) == json_error_null_character ||
            json_error_code(&je) == json_error_null_byte_in_key)
            return failf(c, RP_EPARSE, NULL,
                         "not valid JSON: line %d, column %d: a string holds \\u0000 (NUL)",
                         je.line, je.column);
        /* jansson's text may quote the input: keep it short and printable. */
        for (const char *p = je.text; *p != '\0' && k < 80; p++)
            why[k++] = (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f ? *p : '?';
        why[k] = '\0';
        return failf(c, RP_EPARSE, NULL, "not valid JSON: line %d, column %d: %s", je.line,
                     je.column, why);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return failf(c, RP_EPARSE, NULL, "the top level must be an object");
    }
    *out = root;
    return 0;
}

/* ---- host.json ---------------------------------------------------------------------------- */

enum { TS_OK, TS_UNBOUNDED, TS_BAD, TS_DAYS, TS_NEGATIVE };

/* Reads 1..maxd digits at s[*i]; 0 when there are none or more than maxd. */
static int digits(const char *s, size_t n, size_t *i, int maxd, uint64_t *v)
{
    int k = 0;

    *v = 0;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
        if (++k > maxd)
            return 0;
        *v = *v * 10 + (uint64_t)(s[*i] - '0');
        (*i)++;
    }
    return k > 0;
}

/*
 * A .NET TimeSpan as Azure reads functionTimeout: [-]d, or [-][d.]hh:mm[:ss[.fffffff]] with
 * hours 0-23 and minutes and seconds 0-59; spaces around are allowed. TS_OK with *secs
 * (fractions rounded up), TS_UNBOUNDED for -1 day (Azure's "no timeout"), TS_DAYS for a bare
 * number of days, TS_NEGATIVE, or TS_BAD.
 */
static int timespan(const char *s, size_t n, uint64_t *secs)
{
    uint64_t d = 0, h, m, sec = 0, frac = 0, first;
    size_t i = 0;
    int neg = 0;

    while (n > 0 && s[n - 1] == ' ')
        n--;
    while (i < n && s[i] == ' ')
        i++;
    if (i < n && s[i] == '-') {
        neg = 1;
        i++;
    }
    if (!digits(s, n, &i, 8, &first))
        return TS_BAD;
    if (i == n) {
        if (neg && first == 1)
            return TS_UNBOUNDED;
        return neg ? TS_NEGATIVE : TS_DAYS;
    }
    if (s[i] == '.') {
        d = first;
        i++;
        if (!digits(s, n, &i, 2, &h))
            return TS_BAD;
    } else {
        h = first;
        if (first > 99)
            return TS_BAD;
    }
    if (i == n || s[i++] != ':' || !digits(s, n, &i, 2, &m))
        return TS_BAD;
    if (i < n && s[i] == ':') {
        i++;
        if (!digits(s, n, &i, 2, &sec))
            return TS_BAD;
        if (i < n && s[i] == '.') {
            i++;
            if (!digits(s, n, &i, 7, &frac))
                return TS_BAD;
        }
    }
    if (i != n || h > 23 || m > 59 || sec > 59)
        return TS_BAD;
    *secs = d * 86400 + h * 3600 + m * 60 + sec + (frac != 0);
    if (neg) {
        if (*secs == 86400 && frac == 0)
            return TS_UNBOUNDED;
        return *secs == 0 ? TS_OK : TS_NEGATIVE;
    }
    return TS_OK;
}

static int parse_timeout(const ctx *c, const json_t *root, unsigned *out)
{
    static const char path[] = "functionTimeout";
    json_t *v;
    uint64_t secs = 0;
    qbuf q;
    int rc = member(c, root, NULL, path, &v);

    *out = RP_FN_TIMEOUT_DEFAULT;
    if (rc != 0 || v == NULL)
        return rc;
    if (!json_is_string(v))
        return failf(c, RP_EPARSE, path, "must be a string \"hh:mm:ss\" (e.g. \"00:10:00\")");
    switch (timespan(json_string_value(v), json_string_length(v), &secs)) {
    case TS_UNBOUNDED: *out = RP_FN_TIMEOUT_MAX; return 0;
    case TS_DAYS:
        return failf(c, RP_EPARSE, path,
                     "%s is a number of days in TimeSpan syntax; write \"hh:mm:ss\" "
                     "(e.g. \"00:10:00\")",
                     quote_json(v, &q));
    case TS_NEGATIVE:
        return failf(c, RP_EPARSE, path,
                     "%s is negative; \"-1\" asks for rampart's maximum (%u seconds)",
                     quote_json(v, &q), RP_FN_TIMEOUT_MAX);
    case TS_BAD:
        return failf(c, RP_EPARSE, path, "%s is not a TimeSpan \"[d.]hh:mm:ss\"",
                     quote_json(v, &q));
    default: break;
    }
    if (secs < 1)
        return failf(c, RP_EPARSE, path, "%s is under the minimum of 1 second", quote_json(v, &q));
    if (secs > RP_FN_TIMEOUT_MAX)
        return failf(c, RP_EPARSE, path, "%s is over rampart's maximum of %u seconds (24 hours)",
                     quote_json(v, &q), RP_FN_TIMEOUT_MAX);
    *out = (unsigned)secs;
    return 0;
}

/* RFC 3986 pchar without '%': what a route prefix segment may hold. */
static int pchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != 0 && strchr("-._~!$&'()*+,;=:@", ch) != NULL);
}

static int seg_is(const char *p, size_t n, const char *lit)
{
    return n == strlen(lit) && strncasecmp(p, lit, n) == 0;
}

static int parse_prefix(const ctx *c, const json_t *http, char **out)
{
    static const char path[] = "extensions.http.routePrefix";
    const char *s;
    size_t n;
    json_t *v;
    qbuf q;
    int rc = get_str(c, http, "extensions.http", "routePrefix", &v);

    if (rc != 0 || v == NULL)
        return rc;
    s = json_string_value(v);
    n = json_string_length(v);
    if (n > RP_FN_PREFIX_MAX)
        return failf(c, RP_EPARSE, path, "%s is over %d bytes", quote_json(v, &q),
                     RP_FN_PREFIX_MAX);
    if (n > 0 && (s[0] == '/' || s[n - 1] == '/'))
        return failf(c, RP_EPARSE, path, "%s: no '/' at the start or the end (\"api\", \"v1/api\")",
                     quote_json(v, &q));
    for (size_t i = 0; i < n;) {
        size_t k = i;
        while (k < n && s[k] != '/') {
            if (!pchar((unsigned char)s[k]))
                return failf(c, RP_EPARSE, path,
                             "%s: a prefix holds letters, digits and -._~!$&'()*+,;=:@ "
                             "between '/'s (no route parameters, no percent-escapes)",
                             quote_json(v, &q));
            k++;
        }
        if (k == i || seg_is(s + i, k - i, ".") || seg_is(s + i, k - i, ".."))
            return failf(c, RP_EPARSE, path, "%s has an empty, \".\" or \"..\" segment",
                         quote_json(v, &q));
        /* Function URLs would land on the host's own /admin and /runtime routes. */
        if (i == 0 && (seg_is(s, k, "admin") || seg_is(s, k, "runtime")))
            return failf(c, RP_EPARSE, path,
                         "%s would put functions under the host's built-in "
                         "routes (admin, runtime)",
                         quote_json(v, &q));
        i = k + 1;
    }
    rp_free(*out);
    *out = dup_json(v);
    return *out == NULL ? oom(c) : 0;
}

static int parse_count(const ctx *c, const json_t *http, const char *key, long def, long *out)
{
    char path[PATH_CAP];
    json_t *v;
    json_int_t x;
    int rc = member(c, http, "extensions.http", key, &v);

    *out = def;
    if (rc != 0 || v == NULL)
        return rc;
    join(path, "extensions.http", key);
    if (!json_is_integer(v))
        return failf(c, RP_EPARSE, path, "must be a whole number: -1 (no bound) or 1 to %ld",
                     RP_FN_REQUESTS_MAX);
    x = json_integer_value(v);
    if (x != RP_FN_UNBOUNDED && (x < 1 || x > RP_FN_REQUESTS_MAX))
        return failf(c, RP_EPARSE, path, "%lld is not -1 (no bound) or 1 to %ld", (long long)x,
                     RP_FN_REQUESTS_MAX);
    *out = (long)x;
    return 0;
}

/* Headers that frame a message or concern one connection: never added from host.json. */
static const char *const framing[] = {"content-length", "transfer-encoding", "connection",
                                      "keep-alive",     "upgrade",           "te",
                                      "trailer",        "proxy-connection"};

static int parse_headers(const ctx *c, rp_fn_host *h, const json_t *http)
{
    static const char path[] = "extensions.http.customHeaders";
    const char *k;
    json_t *o, *v;
    qbuf q;
    int rc = get_obj(c, http, "extensions.http", "customHeaders", &o);

    if (rc != 0 || o == NULL)
        return rc;
    if (json_object_size(o) > RP_FN_HEADERS_MAX)
        return failf(c, RP_EPARSE, path, "%zu headers; at most %d", json_object_size(o),
                     RP_FN_HEADERS_MAX);
    h->headers = rp_calloc(json_object_size(o), sizeof(*h->headers));
    if (h->headers == NULL)
        return oom(c);
    json_object_foreach(o, k, v)
    {
        size_t kn = strlen(k), vn;
        rp_fn_header *e;

        if (kn == 0 || kn > RP_FN_HEADER_NAME_MAX)
            return failf(c, RP_EPARSE, path, "header names are 1 to %d bytes",
                         RP_FN_HEADER_NAME_MAX);
        for (size_t i = 0; i < kn; i++)
            if (!rp_http_tchar((unsigned char)k[i]))
                return failf(c, RP_EPARSE, path, "%s is not a header name (an HTTP token)",
                             quote(k, kn, &q));
        for (size_t i = 0; i < sizeof(framing) / sizeof(framing[0]); i++)
            if (strcasecmp(k, framing[i]) == 0)
                return failf(c, RP_EPARSE, path,
                             "%s frames the response or the connection; it cannot be added",
                             quote(k, kn, &q));
        for (size_t i = 0; i < h->nheaders; i++)
            if (strcasecmp(k, h->headers[i].name) == 0)
                return failf(c, RP_EPARSE, path, "%s is given twice (header names ignore case)",
                             quote(k, kn, &q));
        if (!json_is_string(v))
            return failf(c, RP_EPARSE, path, "%s: the value must be a string", quote(k, kn, &q));
        vn = json_string_length(v);
        if (vn > RP_FN_HEADER_VALUE_MAX)
            return failf(c, RP_EPARSE, path, "%s: the value is over %d bytes", quote(k, kn, &q),
                         RP_FN_HEADER_VALUE_MAX);
        /* CR and LF would start a new header line; NUL ends C strings early. */
        if (has_ctl(json_string_value(v), vn, 1))
            return failf(c, RP_EPARSE, path, "%s: the value has a control character",
                         quote(k, kn, &q));
        e = &h->headers[h->nheaders];
        e->name = rp_strndup(k, kn);
        e->value = dup_json(v);
        h->nheaders++; /* counted at once so rp_fn_host_free frees what was made */
        if (e->name == NULL || e->value == NULL)
            return oom(c);
    }
    return 0;
}

/*
 * A path inside the app (fnconfig.h, rp_fn_handler.exe) normalised into *out: "." and empty
 * segments dropped. *out may be "" (the app root); *slash says whether s had a '/'. A file's
 * path (file = 1) may not end in '/'.
 */
static int rel_path(const ctx *c, const char *path, const json_t *v, int file, char **out,
                    int *slash)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v), o = 0;
    char *r;
    qbuf q;

    *out = NULL;
    if (n > RP_FN_PATH_MAX)
        return failf(c, RP_EPARSE, path, "%s is over %d bytes", quote_json(v, &q), RP_FN_PATH_MAX);
    if (has_ctl(s, n, 0))
        return failf(c, RP_EPARSE, path, "%s has a control character", quote_json(v, &q));
    if (memchr(s, '\\', n) != NULL)
        return failf(c, RP_EPARSE, path, "%s has a '\\'; separate directories with '/'",
                     quote_json(v, &q));
    /* Azure expands %VARIABLE% here; a path settled only at start-up could leave the app. */
    if (memchr(s, '%', n) != NULL)
        return failf(c, RP_EPARSE, path,
                     "%s has a '%%': paths are not expanded (pass settings as arguments)",
                     quote_json(v, &q));
    if (n > 0 && s[0] == '/')
        return failf(c, RP_EPARSE, path,
                     "%s is absolute; give a path inside the app (or a program name)",
                     quote_json(v, &q));
    if (file && n > 0 && s[n - 1] == '/')
        return failf(c, RP_EPARSE, path, "%s ends in '/'; name a file", quote_json(v, &q));
    *slash = memchr(s, '/', n) != NULL;
    r = rp_malloc(n + 1);
    if (r == NULL)
        return oom(c);
    for (size_t i = 0; i < n;) {
        size_t k = i;
        while (k < n && s[k] != '/')
            k++;
        if (seg_is(s + i, k - i, "..")) {
            rp_free(r);
            return failf(c, RP_EPARSE, path, "%s leaves the app (\"..\")", quote_json(v, &q));
        }
        if (k > i && !seg_is(s + i, k - i, ".")) {
            if (o > 0)
                r[o++] = '/';
            memcpy(r + o, s + i, k - i);
            o += k - i;
        }
        i = k + 1;
    }
    r[o] = '\0';
    *out = r;
    return 0;
}

/* An array of at most RP_FN_ARGS_MAX strings of at most RP_FN_ARG_MAX bytes, copied. */
static int parse_args(const ctx *c, const json_t *desc, const char *parent, const char *key,
                      char ***out, size_t *nout)
{
    char path[PATH_CAP], ipath[PATH_CAP + 24];
    json_t *a, *v;
    size_t i;
    qbuf q;
    int rc = member(c, desc, parent, key, &a);

    if (rc != 0 || a == NULL)
        return rc;
    join(path, parent, key);
    if (!json_is_array(a))
        return failf(c, RP_EPARSE, path, "must be an array of strings");
    if (json_array_size(a) > RP_FN_ARGS_MAX)
        return failf(c, RP_EPARSE, path, "%zu entries; at most %d", json_array_size(a),
                     RP_FN_ARGS_MAX);
    *out = rp_calloc(json_array_size(a), sizeof(**out));
    if (*out == NULL)
        return oom(c);
    json_array_foreach(a, i, v)
    {
        snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        if (!json_is_string(v))
            return failf(c, RP_EPARSE, ipath, "must be a string");
        if (json_string_length(v) > RP_FN_ARG_MAX)
            return failf(c, RP_EPARSE, ipath, "%s is over %d bytes", quote_json(v, &q),
                         RP_FN_ARG_MAX);
        /* A process argument ends at its first NUL. */
        if (memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
            return failf(c, RP_EPARSE, ipath, "has a NUL character");
        (*out)[*nout] = dup_json(v);
        if ((*out)[*nout] == NULL)
            return oom(c);
        (*nout)++;
    }
    return 0;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rp_free(v[i]);
    rp_free(v);
}

static void handler_free(rp_fn_handler *hd)
{
    if (hd == NULL)
        return;
    rp_free(hd->exe);
    rp_free(hd->workdir);
    rp_free(hd->worker_path);
    strv_free(hd->args, hd->nargs);
    strv_free(hd->worker_args, hd->nworker_args);
    rp_free(hd);
}

static int parse_description(const ctx *c, const json_t *sec, const char *sname, rp_fn_handler *hd)
{
    char dpath[PATH_CAP], path[PATH_CAP];
    json_t *desc, *v;
    int rc, slash = 0;

    if ((rc = get_obj(c, sec, sname, "description", &desc)) != 0)
        return rc;
    join(dpath, sname, "description");
    if (desc == NULL)
        return failf(c, RP_EPARSE, dpath,
                     "missing; it says how to start the handler (defaultExecutablePath)");
    join(path, dpath, "defaultExecutablePath");
    if ((rc = get_str(c, desc, dpath, "defaultExecutablePath", &v)) != 0)
        return rc;
    if (v == NULL || json_string_length(v) == 0)
        return failf(c, RP_EPARSE, path,
                     "missing; name the handler: a file in the app (\"handler\", "
                     "\"bin/handler\") or a program (\"node\")");
    if ((rc = rel_path(c, path, v, 1, &hd->exe, &slash)) != 0)
        return rc;
    if (hd->exe[0] == '\0') {
        qbuf q;
        return failf(c, RP_EPARSE, path, "%s names no file", quote_json(v, &q));
    }
    hd->exe_in_app = slash;

    join(path, dpath, "workingDirectory");
    if ((rc = get_str(c, desc, dpath, "workingDirectory", &v)) != 0)
        return rc;
    if (v != NULL)
        rc = rel_path(c, path, v, 0, &hd->workdir, &slash);
    else if ((hd->workdir = rp_strdup("")) == NULL)
        rc = oom(c);
    if (rc != 0)
        return rc;

    join(path, dpath, "defaultWorkerPath");
    if ((rc = get_str(c, desc, dpath, "defaultWorkerPath", &v)) != 0)
        return rc;
    /* Azure appends the worker path only when it is not empty. */
    if (v != NULL && json_string_length(v) > 0) {
        if ((rc = rel_path(c, path, v, 1, &hd->worker_path, &slash)) != 0)
            return rc;
        if (hd->worker_path[0] == '\0') {
            qbuf q;
            return failf(c, RP_EPARSE, path, "%s names no file", quote_json(v, &q));
        }
    }
    if ((rc = parse_args(c, desc, dpath, "arguments", &hd->args, &hd->nargs)) != 0)
        return rc;
    return parse_args(c, desc, dpath, "workerArguments", &hd->worker_args, &hd->nworker_args);
}

/* customHandler, or the legacy httpWorker section (legacy = 1). */
static int parse_handler(const ctx *c, const json_t *sec, const char *sname, int legacy,
                         rp_fn_handler **out)
{
    rp_fn_handler *hd = rp_calloc(1, sizeof(*hd));
    int fwd, proxy, rc;

    if (hd == NULL)
        return oom(c);
    if ((rc = parse_description(c, sec, sname, hd)) != 0 ||
        (rc = get_bool(c, sec, sname, "enableForwardingHttpRequest", 0, &fwd)) != 0 ||
        (rc = get_bool(c, sec, sname, "enableProxyingHttpRequest", 0, &proxy)) != 0) {
        handler_free(hd);
        return rc;
    }
    /* Azure forwards for httpWorker whatever the flags say (its type None). */
    hd->forward = legacy ? 1 : fwd || proxy;
    hd->proxy = legacy ? 0 : proxy;
    hd->legacy = legacy;
    *out = hd;
    return 0;
}

static int parse_host(const ctx *c, const json_t *root, rp_fn_host *h)
{
    json_t *v, *ext, *http, *sec;
    qbuf q;
    int rc;

    /* Azure writes {"version": "2.0"} over a host.json without members. */
    if (json_object_size(root) == 0)
        return 0;
    if ((rc = member(c, root, NULL, "version", &v)) != 0)
        return rc;
    if (v == NULL)
        return failf(c, RP_EPARSE, "version", "missing; host.json must say \"version\": \"2.0\"");
    if (!json_is_string(v))
        return failf(c, RP_EPARSE, "version", "must be the string \"2.0\"");
    if (json_string_length(v) != 3 || strcmp(json_string_value(v), "2.0") != 0)
        return failf(c, RP_EPARSE, "version",
                     "%s is not \"2.0\", the only host.json schema version (it is not the "
                     "Functions runtime version)",
                     quote_json(v, &q));
    if ((rc = parse_timeout(c, root, &h->timeout_s)) != 0 ||
        (rc = get_obj(c, root, NULL, "extensions", &ext)) != 0)
        return rc;
    http = NULL;
    if (ext != NULL && (rc = get_obj(c, ext, "extensions", "http", &http)) != 0)
        return rc;
    if (http != NULL) {
        if ((rc = parse_prefix(c, http, &h->route_prefix)) != 0 ||
            (rc = parse_count(c, http, "maxOutstandingRequests", RP_FN_OUTSTANDING_DEF,
                              &h->max_outstanding)) != 0 ||
            (rc = parse_count(c, http, "maxConcurrentRequests", RP_FN_CONCURRENT_DEF,
                              &h->max_concurrent)) != 0 ||
            (rc = parse_headers(c, h, http)) != 0)
            return rc;
    }
    /* customHandler wins; Azure then does not read httpWorker at all. */
    if ((rc = get_obj(c, root, NULL, "customHandler", &sec)) != 0)
        return rc;
    if (sec != NULL)
        return parse_handler(c, sec, "customHandler", 0, &h->handler);
    if ((rc = get_obj(c, root, NULL, "httpWorker", &sec)) != 0)
        return rc;
    return sec != NULL ? parse_handler(c, sec, "httpWorker", 1, &h->handler) : 0;
}

int rp_fn_host_parse(const char *json, size_t n, rp_fn_host **out, char *err, size_t cap)
{
    ctx c = {"host.json", err, cap};
    json_t *root = NULL;
    rp_fn_host *h;
    int rc;

    *out = NULL;
    if (err != NULL && cap > 0)
        err[0] = '\0';
    h = rp_calloc(1, sizeof(*h));
    if (h == NULL)
        return oom(&c);
    h->timeout_s = RP_FN_TIMEOUT_DEFAULT;
    h->max_outstanding = RP_FN_OUTSTANDING_DEF;
    h->max_concurrent = RP_FN_CONCURRENT_DEF;
    h->route_prefix = rp_strdup("api");
    if (h->route_prefix == NULL) {
        rc = oom(&c);
        goto fail;
    }
    if (json != NULL) {
        if ((rc = load(&c, json, n, &root)) != 0 || (rc = parse_host(&c, root, h)) != 0)
            goto fail;
        json_decref(root);
    }
    *out = h;
    return 0;
fail:
    json_decref(root);
    rp_fn_host_free(h);
    return rc;
}

void rp_fn_host_free(rp_fn_host *h)
{
    if (h == NULL)
        return;
    rp_free(h->route_prefix);
    for (size_t i = 0; i < h->nheaders; i++) {
        rp_free(h->headers[i].name);
        rp_free(h->headers[i].value);
    }
    rp_free(h->headers);
    handler_free(h->handler);
    rp_free(h);
}

/* ---- function.json ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    rp_fn_binding_type type;
} btypes[] = {{"httpTrigger", RP_FN_HTTP_TRIGGER},
              {"timerTrigger", RP_FN_TIMER_TRIGGER},
              {"eventGridTrigger", RP_FN_EVENTGRID_TRIGGER},
              {"blobTrigger", RP_FN_BLOB_TRIGGER},
              {"http", RP_FN_HTTP_OUT}};

static const char *const auths[] = {"anonymous", "function", "admin"};
static const char *const methods[] = {"GET",   "POST", "PUT",     "DELETE",
                                      "PATCH", "HEAD", "OPTIONS", "TRACE"};

const char *rp_fn_auth_name(rp_fn_auth a)
{
    return (unsigned)a < sizeof(auths) / sizeof(auths[0]) ? auths[a] : NULL;
}

const char *rp_fn_binding_type_name(rp_fn_binding_type t)
{
    for (size_t i = 0; i < sizeof(btypes) / sizeof(btypes[0]); i++)
        if (btypes[i].type == t)
            return btypes[i].name;
    return NULL;
}

const char *rp_fn_method_name(unsigned bit)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (bit == 1u << i)
            return methods[i];
    return NULL;
}

/* Azure's function name rule: ^[a-z][a-z0-9_\-]{0,127}$ ignoring case, and not "host". */
static int fn_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > RP_FN_NAME_MAX || strcasecmp(s, "host") == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        int alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
        if (!alpha && (i == 0 || !((ch >= '0' && ch <= '9') || ch == '_' || ch == '-')))
            return 0;
    }
    return 1;
}

/* Azure's binding name rule: ^([a-zA-Z][a-zA-Z0-9]{0,127}|\$return)$. */
static int binding_name_ok(const char *s, size_t n)
{
    if (n == 7 && memcmp(s, "$return", 7) == 0)
        return 1;
    if (n == 0 || n > RP_FN_BINDING_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        int alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
        if (!alpha && (i == 0 || !(ch >= '0' && ch <= '9')))
            return 0;
    }
    return 1;
}

/* An app setting name (or prefix) as rampart's settings allow them. */
static int setting_name_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == ':' || ch == '-'))
            return 0;
    }
    return n > 0;
}

static int parse_auth(const ctx *c, const json_t *b, const char *bp, rp_fn_binding *out)
{
    char path[PATH_CAP];
    json_t *v;
    qbuf q;
    int rc = member(c, b, bp, "authLevel", &v);

    out->auth_level = RP_FN_AUTH_FUNCTION;
    if (rc != 0 || v == NULL)
        return rc;
    join(path, bp, "authLevel");
    if (!json_is_string(v))
        return failf(c, RP_EPARSE, path, "must be a string: anonymous, function or admin");
    for (size_t i = 0; i < sizeof(auths) / sizeof(auths[0]); i++) {
        if (json_string_length(v) == strlen(auths[i]) &&
            strcasecmp(json_string_value(v), auths[i]) == 0) {
            out->auth_level = (rp_fn_auth)i;
            return 0;
        }
    }
    return failf(c, RP_EPARSE, path, "%s is not anonymous, function or admin", quote_json(v, &q));
}

static int parse_methods(const ctx *c, const json_t *b, const char *bp, rp_fn_binding *out)
{
    char path[PATH_CAP], ipath[PATH_CAP + 24];
    json_t *a, *v;
    size_t i;
    qbuf q;
    int rc = member(c, b, bp, "methods", &a);

    out->methods = RP_FN_ALL_METHODS;
    if (rc != 0 || a == NULL)
        return rc;
    join(path, bp, "methods");
    if (!json_is_array(a))
        return failf(c, RP_EPARSE, path, "must be an array of method names");
    if (json_array_size(a) == 0)
        return failf(c, RP_EPARSE, path,
                     "empty; list at least one method, or leave methods out to allow all");
    out->methods = 0;
    json_array_foreach(a, i, v)
    {
        unsigned bit = 0;

        snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
        if (!json_is_string(v))
            return failf(c, RP_EPARSE, ipath, "must be a string");
        for (size_t k = 0; k < sizeof(methods) / sizeof(methods[0]); k++)
            if (json_string_length(v) == strlen(methods[k]) &&
                strcasecmp(json_string_value(v), methods[k]) == 0)
                bit = 1u << k;
        if (bit == 0)
            return failf(c, RP_EPARSE, ipath,
                         "%s is not get, post, put, delete, patch, head, options or trace",
                         quote_json(v, &q));
        if (out->methods & bit)
            return failf(c, RP_EPARSE, ipath, "%s is listed twice", quote_json(v, &q));
        out->methods |= bit;
    }
    return 0;
}

/* Azure's check (ScriptHost.ValidateHttpFunction): the route without '/'s at its ends,
 * lower-cased, may not start with "admin" or "runtime". */
static int reserved_route(const char *s)
{
    while (*s == '/')
        s++;
    return strncasecmp(s, "admin", 5) == 0 || strncasecmp(s, "runtime", 7) == 0;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ')
            return 0;
    return 1;
}

static int parse_http_trigger(const ctx *c, const char *fname, const json_t *b, const char *bp,
                              rp_fn_binding *out)
{
    char path[PATH_CAP];
    json_t *v;
    qbuf q;
    int rc;

    if ((rc = member(c, b, bp, "webHookType", &v)) != 0)
        return rc;
    if (v != NULL) {
        join(path, bp, "webHookType");
        return failf(c, RP_EPARSE, path,
                     "webhook types are a Functions 1.x feature; use authLevel and read the "
                     "payload in the handler");
    }
    if ((rc = parse_auth(c, b, bp, out)) != 0 || (rc = parse_methods(c, b, bp, out)) != 0 ||
        (rc = get_str(c, b, bp, "route", &v)) != 0)
        return rc;
    join(path, bp, "route");
    if (v != NULL && !blank(json_string_value(v), json_string_length(v))) {
        if (json_string_length(v) > RP_FN_ROUTE_MAX)
            return failf(c, RP_EPARSE, path, "%s is over %d bytes", quote_json(v, &q),
                         RP_FN_ROUTE_MAX);
        if (has_ctl(json_string_value(v), json_string_length(v), 0))
            return failf(c, RP_EPARSE, path, "%s has a control character", quote_json(v, &q));
        if (reserved_route(json_string_value(v)))
            return failf(c, RP_EPARSE, path,
                         "%s conflicts with the host's built-in routes (a route may not start "
                         "with \"admin\" or \"runtime\")",
                         quote_json(v, &q));
        {
            /* The template itself, so that a bad one is reported here, naming the file. */
            rp_route_tmpl *t = NULL;
            char why[256];
            rc =
                rp_route_compile(json_string_value(v), json_string_length(v), &t, why, sizeof(why));
            rp_route_free(t);
            if (rc == RP_ENOMEM)
                return oom(c);
            if (rc != 0)
                return failf(c, RP_EPARSE, path, "%s", why);
        }
        out->route = dup_json(v);
    } else {
        if (reserved_route(fname))
            return failf(c, RP_EPARSE, path,
                         "absent, so the route is the function name %s, which conflicts with "
                         "the host's built-in routes (\"admin...\", \"runtime...\"); set a route",
                         quote(fname, strlen(fname), &q));
        out->route = rp_strdup(fname);
    }
    return out->route == NULL ? oom(c) : 0;
}

static int parse_timer_trigger(const ctx *c, const json_t *b, const char *bp, rp_fn_binding *out)
{
    int rc;

    if ((rc = get_text(c, b, bp, "schedule", 1, RP_FN_SCHEDULE_MAX, &out->schedule)) != 0 ||
        (rc = get_bool(c, b, bp, "runOnStartup", 0, &out->run_on_startup)) != 0)
        return rc;
    return get_bool(c, b, bp, "useMonitor", -1, &out->use_monitor);
}

static int parse_blob_trigger(const ctx *c, const json_t *b, const char *bp, rp_fn_binding *out)
{
    char path[PATH_CAP];
    json_t *v;
    qbuf q;
    int rc;

    if ((rc = get_text(c, b, bp, "path", 1, RP_FN_BLOB_PATH_MAX, &out->path)) != 0 ||
        (rc = get_text(c, b, bp, "connection", 0, RP_FN_CONNECTION_MAX, &out->connection)) != 0)
        return rc;
    if (out->connection != NULL && !setting_name_ok(out->connection, strlen(out->connection))) {
        join(path, bp, "connection");
        return failf(c, RP_EPARSE, path,
                     "%s is not an app setting name (letters, digits, '_', '.', ':', '-')",
                     quote(out->connection, strlen(out->connection), &q));
    }
    if ((rc = get_str(c, b, bp, "source", &v)) != 0 || v == NULL)
        return rc;
    if (json_string_length(v) == 20 &&
        strcasecmp(json_string_value(v), "LogsAndContainerScan") == 0)
        out->source = RP_FN_BLOB_SCAN;
    else if (json_string_length(v) == 9 && strcasecmp(json_string_value(v), "EventGrid") == 0)
        out->source = RP_FN_BLOB_EVENTGRID;
    else {
        join(path, bp, "source");
        return failf(c, RP_EPARSE, path, "%s is not LogsAndContainerScan or EventGrid",
                     quote_json(v, &q));
    }
    return 0;
}

static int parse_binding(const ctx *c, const char *fname, const json_t *b, size_t idx,
                         rp_fn_binding *out)
{
    char bp[PATH_CAP], path[PATH_CAP];
    json_t *v;
    const char *s;
    size_t n, t;
    int rc, dir_out = 0, trigger;
    qbuf q;

    snprintf(bp, sizeof(bp), "bindings[%zu]", idx);
    if (!json_is_object(b))
        return failf(c, RP_EPARSE, bp, "must be an object");

    join(path, bp, "type");
    if ((rc = get_str(c, b, bp, "type", &v)) != 0)
        return rc;
    if (v == NULL)
        return failf(c, RP_EPARSE, path, "missing; every binding has a type");
    for (t = 0; t < sizeof(btypes) / sizeof(btypes[0]); t++)
        if (json_string_length(v) == strlen(btypes[t].name) &&
            strcasecmp(json_string_value(v), btypes[t].name) == 0)
            break;
    if (t == sizeof(btypes) / sizeof(btypes[0]))
        return failf(c, RP_EPARSE, path,
                     "unknown binding type %s; rampart has httpTrigger, timerTrigger, "
                     "eventGridTrigger, blobTrigger and http",
                     quote_json(v, &q));
    out->type = btypes[t].type;
    trigger = out->type != RP_FN_HTTP_OUT;

    join(path, bp, "direction");
    if ((rc = get_str(c, b, bp, "direction", &v)) != 0)
        return rc;
    if (v != NULL) {
        s = json_string_value(v);
        n = json_string_length(v);
        if (n == 3 && strcasecmp(s, "out") == 0)
            dir_out = 1;
        else if (!(n == 2 && strcasecmp(s, "in") == 0) && !(n == 5 && strcasecmp(s, "inout") == 0))
            return failf(c, RP_EPARSE, path, "%s is not in or out", quote_json(v, &q));
        if (trigger && (dir_out || n == 5))
            return failf(c, RP_EPARSE, path, "%s: a trigger's direction is \"in\"",
                         quote_json(v, &q));
    }
    if (!trigger && !dir_out)
        return failf(c, RP_EPARSE, path,
                     "an http binding is the function's response: direction must be \"out\"");

    join(path, bp, "name");
    if ((rc = get_str(c, b, bp, "name", &v)) != 0)
        return rc;
    if (v == NULL)
        return failf(c, RP_EPARSE, path, "missing; every binding has a name");
    s = json_string_value(v);
    n = json_string_length(v);
    if (!binding_name_ok(s, n))
        return failf(c, RP_EPARSE, path,
                     "%s is not a binding name: a letter, then letters and digits (at most %d), "
                     "or \"$return\"",
                     quote_json(v, &q), RP_FN_BINDING_NAME_MAX);
    if (n == 7 && memcmp(s, "$return", 7) == 0 && !dir_out)
        return failf(c, RP_EPARSE, path, "\"$return\" names an output: direction must be \"out\"");
    out->name = dup_json(v);
    if (out->name == NULL)
        return oom(c);

    switch (out->type) {
    case RP_FN_HTTP_TRIGGER: return parse_http_trigger(c, fname, b, bp, out);
    case RP_FN_TIMER_TRIGGER: return parse_timer_trigger(c, b, bp, out);
    case RP_FN_BLOB_TRIGGER: return parse_blob_trigger(c, b, bp, out);
    default: return 0;
    }
}

static int parse_function(const ctx *c, const char *fname, const json_t *root, rp_fn_function *f)
{
    char path[PATH_CAP];
    json_t *a, *b;
    size_t i, ntrig = 0;
    int rc;

    if ((rc = get_bool(c, root, NULL, "disabled", 0, &f->disabled)) != 0 ||
        (rc = get_obj(c, root, NULL, "identity", &b)) != 0 ||
        (rc = member(c, root, NULL, "bindings", &a)) != 0)
        return rc;
    if (b != NULL) { /* beyond Azure: the function's own managed identity */
        json_t *t;
        if ((rc = get_str(c, b, "identity", "type", &t)) != 0)
            return rc;
        if (t != NULL && strcasecmp(json_string_value(t), "SystemAssigned") == 0 &&
            strlen(fname) > RP_FN_IDENTITY_NAME_MAX)
            return failf(c, RP_EPARSE, "identity.type",
                         "a function with its own identity has a name of at most %d bytes (its "
                         "identity's scope segment)",
                         RP_FN_IDENTITY_NAME_MAX);
        if (t != NULL && strcasecmp(json_string_value(t), "SystemAssigned") == 0)
            f->own_identity = 1;
        else if (t == NULL || strcasecmp(json_string_value(t), "None") != 0)
            return failf(c, RP_EPARSE, "identity.type",
                         "must be \"SystemAssigned\" (a managed identity of the function's "
                         "own) or \"None\"");
    }
    if (a == NULL)
        return failf(c, RP_EPARSE, "bindings", "missing; at least one binding must be declared");
    if (!json_is_array(a))
        return failf(c, RP_EPARSE, "bindings", "must be an array of binding objects");
    if (json_array_size(a) == 0)
        return failf(c, RP_EPARSE, "bindings", "empty; at least one binding must be declared");
    if (json_array_size(a) > RP_FN_BINDINGS_MAX)
        return failf(c, RP_EPARSE, "bindings", "%zu bindings; at most %d", json_array_size(a),
                     RP_FN_BINDINGS_MAX);
    f->bindings = rp_calloc(json_array_size(a), sizeof(*f->bindings));
    if (f->bindings == NULL)
        return oom(c);
    f->http_out = json_array_size(a);
    json_array_foreach(a, i, b)
    {
        rp_fn_binding *x = &f->bindings[i];

        f->nbindings = i + 1; /* so rp_fn_function_free frees what this one made */
        if ((rc = parse_binding(c, fname, b, i, x)) != 0)
            return rc;
        snprintf(path, sizeof(path), "bindings[%zu].name", i);
        for (size_t k = 0; k < i; k++)
            if (strcasecmp(f->bindings[k].name, x->name) == 0)
                return failf(c, RP_EPARSE, path,
                             "\"%s\" is also the name of bindings[%zu]; binding names are "
                             "unique (ignoring case)",
                             x->name, k);
        snprintf(path, sizeof(path), "bindings[%zu]", i);
        if (x->type == RP_FN_HTTP_OUT) {
            if (f->http_out != json_array_size(a))
                return failf(c, RP_EPARSE, path,
                             "a second http output; a function has one "
                             "response");
            f->http_out = i;
        } else {
            if (ntrig++ > 0)
                return failf(c, RP_EPARSE, path,
                             "a second trigger (bindings[%zu] is one); a function has exactly "
                             "one",
                             f->trigger);
            f->trigger = i;
        }
    }
    if (ntrig == 0)
        return failf(c, RP_EPARSE, "bindings",
                     "no trigger; a function has exactly one (httpTrigger, timerTrigger, "
                     "eventGridTrigger or blobTrigger)");
    if (f->http_out != f->nbindings && f->bindings[f->trigger].type != RP_FN_HTTP_TRIGGER) {
        snprintf(path, sizeof(path), "bindings[%zu]", f->http_out);
        return failf(c, RP_EPARSE, path, "an http output needs an httpTrigger");
    }
    return 0;
}

int rp_fn_function_parse(const char *name, const char *json, size_t n, rp_fn_function **out,
                         char *err, size_t cap)
{
    ctx c = {"function.json", err, cap};
    json_t *root = NULL;
    rp_fn_function *f = NULL;
    qbuf q;
    int rc;

    *out = NULL;
    if (err != NULL && cap > 0)
        err[0] = '\0';
    if (name == NULL || !fn_name_ok(name))
        return failf(&c, RP_EPARSE, NULL,
                     "the folder name %s is not a function name: a letter, then letters, "
                     "digits, '_' and '-' (at most %d), and not \"host\"",
                     name == NULL ? "(none)" : quote(name, strlen(name), &q), RP_FN_NAME_MAX);
    snprintf(c.file, sizeof(c.file), "%s/function.json", name);
    if (json == NULL)
        return failf(&c, RP_EPARSE, NULL, "missing");
    f = rp_calloc(1, sizeof(*f));
    if (f == NULL)
        return oom(&c);
    f->name = rp_strdup(name);
    if (f->name == NULL) {
        rc = oom(&c);
        goto fail;
    }
    if ((rc = load(&c, json, n, &root)) != 0 || (rc = parse_function(&c, name, root, f)) != 0)
        goto fail;
    json_decref(root);
    *out = f;
    return 0;
fail:
    json_decref(root);
    rp_fn_function_free(f);
    return rc;
}

void rp_fn_function_free(rp_fn_function *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->nbindings; i++) {
        rp_fn_binding *b = &f->bindings[i];
        rp_free(b->name);
        rp_free(b->route);
        rp_free(b->schedule);
        rp_free(b->path);
        rp_free(b->connection);
    }
    rp_free(f->bindings);
    rp_free(f->name);
    rp_free(f);
}
