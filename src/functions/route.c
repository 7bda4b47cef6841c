/*
 * route.c - Azure Functions route templates: the compiler, the matcher, the constraint checks,
 * the conflict and reserved-route tests.
 *
 * Workload (see route.h): compiled once per function when an app is indexed, matched on every
 * request. So the compiler does all the work that can be done once (braces decoded, constraint
 * arguments parsed, defaults checked) and a match only walks the path once, comparing bytes and
 * running the constraint checks, without allocating. A compiled route is one fixed-size
 * allocation (a few KiB): the segments, the parameters, and a pool holding the decoded literals
 * and defaults, which can never be longer than the template.
 *
 * What was verified, and where (dotnet/aspnetcore, src/Http/Routing/src; Azure/azure-functions-
 * host at 89dc438, 2024-10):
 *   - Patterns/RoutePatternParser.cs: one leading '/' (or "~/") is trimmed; consecutive '/' are
 *     an error, a trailing '/' is not; "{{" / "}}" escape braces in literals and parameters; a
 *     '?' in a literal is an error; "{}" is an error; a catch-all must be the last part of the
 *     last segment and cannot be optional; an optional parameter cannot have a default; names
 *     are unique ignoring case (a HashSet with StringComparer.OrdinalIgnoreCase). It does not
 *     restrict where optional parameters stand, and it takes complex segments.
 *   - Patterns/RouteParameterParser.cs: "**" or "*" first means catch-all, a '?' last means
 *     optional, the name runs to the first ':' or '=' after its first character, then
 *     ":name(args)" constraints, then "=default" to the end.
 *   - RouteBase.cs: a Route (what the host's WebJobsRouteBuilder builds) runs
 *     TemplateMatcher.TryMatch (Template/TemplateMatcher.cs, which delegates to
 *     RoutePatternMatcher) and then every constraint against the values, defaults included.
 *   - Patterns/RoutePatternMatcher.cs and PathTokenizer.cs: an empty path segment fails the
 *     match; one trailing '/' is not a segment; literals compare with OrdinalIgnoreCase; a
 *     catch-all takes Buffer.Substring(offset), i.e. the rest of the path including a trailing
 *     '/'; missing trailing parameters need a default or '?'; an empty catch-all gets its
 *     default (null if none).
 *   - RouteOptions.cs: the constraint map is a Dictionary with OrdinalIgnoreCase, so names
 *     ignore case. In Constraints/: int/long/min/max/range use TryParse with
 *     NumberStyles.Integer; decimal NumberStyles.Number; double/float Float|AllowThousands
 *     (and overflow parses as infinity, successfully, since .NET Core 3.0: dotnet/runtime
 *     #30712, dotnet/docs #14350); bool bool.TryParse; datetime DateTime.TryParse with
 *     InvariantCulture; guid Guid.TryParse (the N, D, B, P and X forms); alpha the regex
 *     ^[A-Za-z]*$; lengths compare string.Length; length/minlength/maxlength refuse negative
 *     arguments and min > max; range refuses min > max. Optional parameters' constraints only
 *     run when a value is present (OptionalRouteConstraint).
 *   - Microsoft.Azure.WebJobs.Extensions.Http's WebJobsRouteBuilder.cs: the template is
 *     routePrefix + '/' + route; Build() sorts the routes with RouteComparison (List.Sort).
 *   - azure-functions-host src/WebJobs.Script/Host/ScriptHost.cs: ValidateHttpFunction refuses
 *     Route.Trim('/').ToLowerInvariant().StartsWith("admin" or "runtime"); HttpRoutesConflict
 *     compares Route.Trim('/') texts with OrdinalIgnoreCase (then the methods).
 * Where we are stricter, route.h says so; the checks below implement route.h's definitions.
 */
#include "functions/route.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum {
    C_INT,
    C_LONG,
    C_BOOL,
    C_DATETIME,
    C_DECIMAL,
    C_DOUBLE,
    C_FLOAT,
    C_GUID,
    C_ALPHA,
    C_MINLENGTH,
    C_MAXLENGTH,
    C_LENGTH,
    C_MIN,
    C_MAX,
    C_RANGE
};

enum { ARG_NONE, ARG_LEN, ARG_LONG }; /* what a constraint's arguments are */

static const struct {
    const char *name;
    int type;
    int args;     /* ARG_* */
    int min, max; /* number of arguments */
} ctable[] = {
    {"int", C_INT, ARG_NONE, 0, 0},
    {"long", C_LONG, ARG_NONE, 0, 0},
    {"bool", C_BOOL, ARG_NONE, 0, 0},
    {"datetime", C_DATETIME, ARG_NONE, 0, 0},
    {"decimal", C_DECIMAL, ARG_NONE, 0, 0},
    {"double", C_DOUBLE, ARG_NONE, 0, 0},
    {"float", C_FLOAT, ARG_NONE, 0, 0},
    {"guid", C_GUID, ARG_NONE, 0, 0},
    {"alpha", C_ALPHA, ARG_NONE, 0, 0},
    {"minlength", C_MINLENGTH, ARG_LEN, 1, 1},
    {"maxlength", C_MAXLENGTH, ARG_LEN, 1, 1},
    {"length", C_LENGTH, ARG_LEN, 1, 2},
    {"min", C_MIN, ARG_LONG, 1, 1},
    {"max", C_MAX, ARG_LONG, 1, 1},
    {"range", C_RANGE, ARG_LONG, 2, 2},
};

#define NCTABLE (sizeof(ctable) / sizeof(ctable[0]))

typedef struct constraint {
    int type;  /* C_* */
    int64_t a; /* the argument, or the lower bound */
    int64_t b; /* the upper bound (length(n): a = b = n) */
} constraint;

typedef struct param {
    char name[RP_ROUTE_NAME_MAX + 1];
    rp_route_kind kind;
    const char *def; /* into the pool, or NULL */
    size_t def_len;
    size_t ncons;
    constraint cons[RP_ROUTE_MAX_CONSTRAINTS];
} param;

typedef struct segment {
    int is_param;
    size_t param;    /* index into params, for a parameter */
    const char *lit; /* decoded literal in the pool, for a literal */
    size_t lit_len;
} segment;

struct rp_route_tmpl {
    size_t nseg;
    segment seg[RP_ROUTE_MAX_SEGMENTS];
    size_t nparam;
    param params[RP_ROUTE_MAX_PARAMS];
    size_t pool_len;
    char pool[RP_ROUTE_MAX_LEN]; /* decoded text is never longer than the template */
};

/* ---- value checks ------------------------------------------------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* -?[0-9]+ within int64: 0 and *out, or -1. */
static int parse_i64(const char *s, size_t n, int64_t *out)
{
    uint64_t v = 0, limit;
    size_t i = 0;
    int neg = 0;

    if (n > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == n)
        return -1;
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        unsigned d;

        if (!is_digit(s[i]))
            return -1;
        d = (unsigned)(s[i] - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    /* Unsigned arithmetic: -(INT64_MIN) does not fit an int64. */
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* Digits then optionally '.' and digits, or '.' and digits; *end past them. 1 if any digit. */
static int scan_decimal(const char *s, size_t n, size_t *i, size_t *int_digits)
{
    size_t start = *i, digits = 0;

    while (*i < n && is_digit(s[*i]))
        (*i)++;
    *int_digits = *i - start;
    digits = *int_digits;
    if (*i < n && s[*i] == '.') {
        size_t f = ++(*i);
        while (*i < n && is_digit(s[*i]))
            (*i)++;
        digits += *i - f;
    }
    return digits > 0;
}

/* decimal: |value| < 2^96 - 1 means at most 79228162514264337593543950335 before the point. */
static int is_decimal(const char *s, size_t n)
{
    static const char dmax[] = "79228162514264337593543950335";
    size_t i = 0, ndig, lead;

    if (n > 0 && s[0] == '-')
        i = 1;
    lead = i;
    if (!scan_decimal(s, n, &i, &ndig) || i != n)
        return 0;
    while (ndig > 0 && s[lead] == '0') {
        lead++;
        ndig--;
    }
    if (ndig < sizeof(dmax) - 1)
        return 1;
    return ndig == sizeof(dmax) - 1 && memcmp(s + lead, dmax, ndig) <= 0;
}

static int is_double(const char *s, size_t n)
{
    size_t i = 0, ndig;

    if (n > 0 && s[0] == '-')
        i = 1;
    if (!scan_decimal(s, n, &i, &ndig))
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t e;

        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        e = i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == e)
            return 0;
    }
    return i == n;
}

/* Value of the k decimal digits at s, or -1 if one is not a digit. */
static int digits_at(const char *s, size_t k)
{
    int v = 0;

    for (size_t i = 0; i < k; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int days_in_month(int y, int m)
{
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        return 29;
    return d[m - 1];
}

/* The ISO 8601 subset route.h lists. */
static int is_datetime(const char *s, size_t n)
{
    int y, mo, d, h, mi;
    size_t p;

    if (n < 10 || s[4] != '-' || s[7] != '-')
        return 0;
    y = digits_at(s, 4);
    mo = digits_at(s + 5, 2);
    d = digits_at(s + 8, 2);
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return 0;
    if (n == 10)
        return 1;
    if (n < 16 || s[10] != 'T' || s[13] != ':')
        return 0;
    h = digits_at(s + 11, 2);
    mi = digits_at(s + 14, 2);
    if (h < 0 || h > 23 || mi < 0 || mi > 59)
        return 0;
    p = 16;
    if (p < n && s[p] == ':') {
        int sec;

        if (n - p < 3 || (sec = digits_at(s + p + 1, 2)) < 0 || sec > 59)
            return 0;
        p += 3;
        if (p < n && s[p] == '.') {
            size_t f = ++p;
            while (p < n && is_digit(s[p]))
                p++;
            if (p == f || p - f > 7)
                return 0;
        }
    }
    if (p == n)
        return 1;
    if (s[p] == 'Z')
        return p + 1 == n;
    if (s[p] == '+' || s[p] == '-') {
        int oh, om;

        if (n - p != 6 || s[p + 3] != ':')
            return 0;
        oh = digits_at(s + p + 1, 2);
        om = digits_at(s + p + 4, 2);
        return oh >= 0 && om >= 0 && om <= 59 && (oh < 14 || (oh == 14 && om == 0));
    }
    return 0;
}

static int all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rp_hex_value((unsigned char)s[i]) < 0)
            return 0;
    return 1;
}

/* 8-4-4-4-12 hex digits (36 bytes). */
static int is_guid_d(const char *s)
{
    return all_hex(s, 8) && s[8] == '-' && all_hex(s + 9, 4) && s[13] == '-' &&
           all_hex(s + 14, 4) && s[18] == '-' && all_hex(s + 19, 4) && s[23] == '-' &&
           all_hex(s + 24, 12);
}

static int is_guid(const char *s, size_t n)
{
    if (n == 32)
        return all_hex(s, 32);
    if (n == 36)
        return is_guid_d(s);
    if (n == 38 && ((s[0] == '{' && s[37] == '}') || (s[0] == '(' && s[37] == ')')))
        return is_guid_d(s + 1);
    return 0;
}

static int is_bool(const char *s, size_t n)
{
    rp_str v = {s, n};

    return rp_str_eq_nocase(v, "true") || rp_str_eq_nocase(v, "false");
}

/* Length as .NET's string.Length counts it (UTF-16 code units), or -1 for invalid UTF-8. */
static int64_t utf16_len(const char *s, size_t n)
{
    int64_t len = 0;

    if (!rp_utf8_valid(s, n, 0))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80 || c >= 0xc0) /* one per lead byte ... */
            len++;
        if (c >= 0xf0) /* ... and a surrogate pair above U+FFFF */
            len++;
    }
    return len;
}

static int check_one(const constraint *c, const char *s, size_t n)
{
    int64_t v;

    switch (c->type) {
    case C_INT: return parse_i64(s, n, &v) == 0 && v >= INT32_MIN && v <= INT32_MAX;
    case C_LONG: return parse_i64(s, n, &v) == 0;
    case C_BOOL: return is_bool(s, n);
    case C_DATETIME: return is_datetime(s, n);
    case C_DECIMAL: return is_decimal(s, n);
    case C_DOUBLE:
    case C_FLOAT: return is_double(s, n);
    case C_GUID: return is_guid(s, n);
    case C_ALPHA:
        for (size_t i = 0; i < n; i++)
            if (!is_alpha(s[i]))
                return 0;
        return 1;
    case C_MINLENGTH: return (v = utf16_len(s, n)) >= 0 && v >= c->a;
    case C_MAXLENGTH: return (v = utf16_len(s, n)) >= 0 && v <= c->a;
    case C_LENGTH: return (v = utf16_len(s, n)) >= 0 && v >= c->a && v <= c->b;
    case C_MIN: return parse_i64(s, n, &v) == 0 && v >= c->a;
    case C_MAX: return parse_i64(s, n, &v) == 0 && v <= c->a;
    case C_RANGE: return parse_i64(s, n, &v) == 0 && v >= c->a && v <= c->b;
    default: return 0;
    }
}

/* Index of the first constraint of p that s fails, or -1 when all hold. */
static int first_failing(const param *p, const char *s, size_t n)
{
    for (size_t i = 0; i < p->ncons; i++)
        if (!check_one(&p->cons[i], s, n))
            return (int)i;
    return -1;
}

/* ---- compiling ---------------------------------------------------------------------------- */

typedef struct cctx {
    rp_route_tmpl *r;
    const char *tmpl;
    size_t n;
    char *why;
    size_t cap;
    size_t segno;     /* 1-based number of the segment being parsed */
    size_t seg_start; /* its bytes in tmpl */
    size_t seg_end;
} cctx;

/* Writes "segment N ('text'): <fmt>" into why and returns rc. */
__attribute__((format(printf, 3, 4))) static int seg_err(const cctx *c, int rc, const char *fmt,
                                                         ...)
{
    char msg[256], q[RP_QUOTE_MAX + 4];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return rp_errf(c->why, c->cap, rc, "segment %zu ('%s'): %s", c->segno,
                   rp_quote(c->tmpl + c->seg_start, c->seg_end - c->seg_start, q), msg);
}

/* Appends s[0..n) to the pool with "{{" and "}}" decoded; *out points at the copy. */
static void pool_add_decoded(rp_route_tmpl *r, const char *s, size_t n, const char **out,
                             size_t *outlen)
{
    char *dst = r->pool + r->pool_len;
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        dst[k++] = s[i];
        if ((s[i] == '{' || s[i] == '}') && i + 1 < n && s[i + 1] == s[i])
            i++;
    }
    r->pool_len += k;
    *out = dst;
    *outlen = k;
}

/* ASP.NET refuses only '/', '{', '}', '?' and '*' in a name (RoutePatternParser's
 * InvalidParameterNameChars; ':' and '=' end it): "{user-id}", "{file.name}" work in Azure. */
static int name_char(char c)
{
    return c > 0x20 && c < 0x7f && c != '/' && c != '{' && c != '}' && c != '?' && c != '*' &&
           c != ':' && c != '=';
}

/* Formats constraint c as written canonically ("range(1,5)") into buf[64]. */
static const char *cons_str(const constraint *c, char *buf)
{
    const char *name = "?";

    for (size_t i = 0; i < NCTABLE; i++)
        if (ctable[i].type == c->type)
            name = ctable[i].name;
    switch (c->type) {
    case C_MINLENGTH:
    case C_MAXLENGTH:
    case C_MIN:
    case C_MAX: snprintf(buf, 64, "%s(%lld)", name, (long long)c->a); break;
    case C_LENGTH:
    case C_RANGE: snprintf(buf, 64, "%s(%lld,%lld)", name, (long long)c->a, (long long)c->b); break;
    default: snprintf(buf, 64, "%s", name); break;
    }
    return buf;
}

/* Parses the arguments args[0..n) of constraint table entry e into *c. */
static int parse_args(const cctx *cx, size_t e, const char *args, size_t n, constraint *c)
{
    char q[RP_QUOTE_MAX + 4];
    int64_t v[2] = {0, 0};
    size_t nv = 1, k = 0, start = 0;

    for (size_t i = 0; i < n; i++)
        nv += args[i] == ',';
    if ((int)nv < ctable[e].min || (int)nv > ctable[e].max) {
        if (ctable[e].min == ctable[e].max)
            return seg_err(cx, RP_EPARSE, "constraint '%s' takes %d argument%s, not %zu",
                           ctable[e].name, ctable[e].min, ctable[e].min == 1 ? "" : "s", nv);
        return seg_err(cx, RP_EPARSE, "constraint '%s' takes %d or %d arguments, not %zu",
                       ctable[e].name, ctable[e].min, ctable[e].max, nv);
    }
    for (size_t i = 0; i <= n; i++) {
        if (i < n && args[i] != ',')
            continue;
        if (parse_i64(args + start, i - start, &v[k]) != 0 ||
            (ctable[e].args == ARG_LEN && (v[k] < 0 || v[k] > INT32_MAX)))
            return seg_err(cx, RP_EPARSE, "constraint '%s': '%s' is not %s", ctable[e].name,
                           rp_quote(args + start, i - start, q),
                           ctable[e].args == ARG_LEN ? "a length (0..2147483647)"
                                                     : "an integer (-?[0-9]+, 64 bits)");
        k++;
        start = i + 1;
    }
    c->a = v[0];
    c->b = nv == 2 ? v[1] : v[0];
    if (c->a > c->b)
        return seg_err(cx, RP_EPARSE, "constraint '%s': %lld is greater than %lld", ctable[e].name,
                       (long long)c->a, (long long)c->b);
    return 0;
}

/* Parses constraints t[*j..end) (at a ':' or the end) into p; *j stops at '=' or end. */
static int parse_constraints(const cctx *cx, const char *t, size_t end, size_t *j, param *p)
{
    char q[RP_QUOTE_MAX + 4];

    while (*j < end && t[*j] == ':') {
        size_t cs = ++(*j), e;
        constraint *c;
        rp_str cname;

        while (*j < end && t[*j] != ':' && t[*j] != '(' && t[*j] != '=')
            (*j)++;
        cname = (rp_str){t + cs, *j - cs};
        if (cname.n == 0)
            return seg_err(cx, RP_EPARSE, "empty constraint name after ':'");
        /* Refused before its argument is looked at: a regex may contain anything. */
        if (rp_str_eq_nocase(cname, "regex"))
            return seg_err(cx, RP_EPARSE, "regex constraints are not supported");
        for (e = 0; e < NCTABLE; e++)
            if (rp_str_eq_nocase(cname, ctable[e].name))
                break;
        if (e == NCTABLE)
            return seg_err(cx, RP_EPARSE, "unknown constraint '%s'", rp_quote(cname.p, cname.n, q));
        if (p->ncons == RP_ROUTE_MAX_CONSTRAINTS)
            return seg_err(cx, RP_ETOOBIG, "more than %d constraints on '%s'",
                           RP_ROUTE_MAX_CONSTRAINTS, p->name);
        c = &p->cons[p->ncons];
        c->type = ctable[e].type;
        c->a = c->b = 0;
        if (*j < end && t[*j] == '(') {
            const char *close = memchr(t + *j + 1, ')', end - *j - 1);
            size_t as = *j + 1;
            int rc;

            if (close == NULL)
                return seg_err(cx, RP_EPARSE, "constraint '%s': missing ')'", ctable[e].name);
            if (ctable[e].max == 0)
                return seg_err(cx, RP_EPARSE, "constraint '%s' takes no arguments", ctable[e].name);
            *j = (size_t)(close - t) + 1;
            if ((rc = parse_args(cx, e, t + as, *j - 1 - as, c)) != 0)
                return rc;
            if (*j < end && t[*j] != ':' && t[*j] != '=')
                return seg_err(cx, RP_EPARSE, "unexpected '%s' after constraint '%s(...)'",
                               rp_quote(t + *j, end - *j, q), ctable[e].name);
        } else if (ctable[e].min > 0) {
            return seg_err(cx, RP_EPARSE, "constraint '%s' needs an argument: '%s(n)'",
                           ctable[e].name, ctable[e].name);
        }
        p->ncons++;
    }
    return 0;
}

/*
 * Parses the decoded inside of a parameter t[0..tn) (RouteParameterParser's grammar) into a new
 * parameter of r and returns its index through *idx.
 */
static int parse_param(const cctx *cx, const char *t, size_t tn, size_t *idx)
{
    rp_route_tmpl *r = cx->r;
    char q[RP_QUOTE_MAX + 4], cq[64];
    size_t i = 0, j, end = tn;
    int optional = 0, rc, bad;
    param *p;

    if (r->nparam == RP_ROUTE_MAX_PARAMS)
        return rp_errf(cx->why, cx->cap, RP_ETOOBIG, "template: more than %d parameters",
                       RP_ROUTE_MAX_PARAMS);
    p = &r->params[r->nparam];
    memset(p, 0, sizeof(*p));
    p->kind = RP_ROUTE_REQUIRED;
    if (tn >= 2 && t[0] == '*' && t[1] == '*')
        i = 2;
    else if (tn >= 1 && t[0] == '*')
        i = 1;
    if (i > 0)
        p->kind = RP_ROUTE_CATCHALL;
    if (end > i && t[end - 1] == '?') {
        optional = 1;
        end--;
    }
    /* A ':' or '=' in the first position belongs to the name (which is then refused). */
    for (j = i; j < end; j++)
        if ((t[j] == ':' || t[j] == '=') && j != i)
            break;
    if (j == i)
        return seg_err(cx, RP_EPARSE, "missing parameter name");
    for (size_t k = i; k < j; k++)
        if (!name_char(t[k]))
            return seg_err(cx, RP_EPARSE,
                           "invalid parameter name '%s': no space, control or non-ASCII "
                           "character, nor any of / { } ? * : =",
                           rp_quote(t + i, j - i, q));
    if (j - i > RP_ROUTE_NAME_MAX)
        return seg_err(cx, RP_EPARSE, "parameter name longer than %d bytes", RP_ROUTE_NAME_MAX);
    memcpy(p->name, t + i, j - i);
    p->name[j - i] = '\0';
    if (optional && p->kind == RP_ROUTE_CATCHALL)
        return seg_err(cx, RP_EPARSE, "a catch-all parameter cannot be optional");
    if (optional)
        p->kind = RP_ROUTE_OPTIONAL;
    for (size_t k = 0; k < r->nparam; k++)
        if (rp_str_eq_nocase((rp_str){p->name, j - i}, r->params[k].name))
            return seg_err(cx, RP_EPARSE, "parameter name '%s' is used twice", p->name);
    if ((rc = parse_constraints(cx, t, end, &j, p)) != 0)
        return rc;
    if (j < end) { /* t[j] is '=': a default runs to the end */
        const char *d = t + j + 1;
        size_t dn = end - j - 1;

        if (optional)
            return seg_err(cx, RP_EPARSE, "an optional parameter cannot have a default value");
        if (dn == 0)
            return seg_err(cx, RP_EPARSE, "empty default value for '%s'", p->name);
        if (p->kind != RP_ROUTE_CATCHALL && memchr(d, '/', dn) != NULL)
            return seg_err(cx, RP_EPARSE, "the default value of '%s' contains '/'", p->name);
        if ((bad = first_failing(p, d, dn)) >= 0)
            return seg_err(cx, RP_EPARSE, "default value '%s' does not satisfy constraint '%s'",
                           rp_quote(d, dn, q), cons_str(&p->cons[bad], cq));
        /* t is already decoded: copy as it is. */
        memcpy(r->pool + r->pool_len, d, dn);
        p->def = r->pool + r->pool_len;
        p->def_len = dn;
        r->pool_len += dn;
    }
    *idx = r->nparam++;
    return 0;
}

/*
 * Parses the segment starting at c->tmpl[*pos] (not a '/') up to the next '/' outside braces,
 * following RoutePatternParser's brace rules, into a new segment of r.
 */
static int parse_segment(cctx *c, size_t *pos)
{
    const char *s = c->tmpl;
    size_t n = c->n, i = *pos, nparams = 0, lit_bytes = 0, pstart = 0, pend = 0;
    char dec[RP_ROUTE_MAX_LEN];
    segment *sg;
    int rc;

    c->seg_start = i;
    /* First find the segment's extent, so errors can quote all of it. */
    while (i < n && s[i] != '/') {
        if (s[i] == '{' && !(i + 1 < n && s[i + 1] == '{')) {
            size_t k = i + 1;

            for (;;) {
                if (k >= n) {
                    c->seg_end = n;
                    return seg_err(c, RP_EPARSE, "unmatched '{'");
                }
                if (s[k] == '{') {
                    if (k + 1 < n && s[k + 1] == '{') {
                        k += 2;
                        continue;
                    }
                    c->seg_end = n;
                    return seg_err(c, RP_EPARSE, "a '{' inside a parameter must be written '{{'");
                }
                if (s[k] == '}') {
                    if (k + 1 < n && s[k + 1] == '}') {
                        k += 2;
                        continue;
                    }
                    break;
                }
                k++;
            }
            nparams++;
            pstart = i + 1;
            pend = k;
            i = k + 1;
        } else if (s[i] == '{' || s[i] == '}') {
            if (s[i] == '}' && !(i + 1 < n && s[i + 1] == '}')) {
                const char *slash = memchr(s + i, '/', n - i);

                c->seg_end = slash != NULL ? (size_t)(slash - s) : n;
                return seg_err(c, RP_EPARSE, "unmatched '}' (write '}}' for a literal brace)");
            }
            lit_bytes += 2;
            i += 2;
        } else {
            lit_bytes++;
            i++;
        }
    }
    c->seg_end = i;
    *pos = i;
    if (c->r->nseg == RP_ROUTE_MAX_SEGMENTS)
        return rp_errf(c->why, c->cap, RP_ETOOBIG, "template: more than %d segments",
                       RP_ROUTE_MAX_SEGMENTS);
    if (nparams > 1 || (nparams == 1 && lit_bytes > 0))
        return seg_err(c, RP_EPARSE,
                       "a segment must be one literal or one parameter; complex segments such as "
                       "'{a}.{b}' or 'file{n}' are not supported");
    sg = &c->r->seg[c->r->nseg];
    if (nparams == 1) {
        const char *t;
        size_t tn;

        /* Decode the braces first, as RoutePatternParser does, into a scratch buffer. */
        {
            size_t k = 0;
            for (size_t m = pstart; m < pend; m++) {
                dec[k++] = s[m];
                if ((s[m] == '{' || s[m] == '}') && m + 1 < pend && s[m + 1] == s[m])
                    m++;
            }
            t = dec;
            tn = k;
        }
        if (tn == 0)
            return seg_err(c, RP_EPARSE, "empty parameter '{}'");
        if ((rc = parse_param(c, t, tn, &sg->param)) != 0)
            return rc;
        sg->is_param = 1;
    } else {
        if (memchr(s + c->seg_start, '?', i - c->seg_start) != NULL)
            return seg_err(c, RP_EPARSE, "'?' is not allowed in a literal");
        pool_add_decoded(c->r, s + c->seg_start, i - c->seg_start, &sg->lit, &sg->lit_len);
        sg->is_param = 0;
    }
    c->r->nseg++;
    return 0;
}

/* The rules that span segments: catch-all last, nothing required after something optional. */
static int check_order(cctx *c, const size_t *starts, const size_t *ends)
{
    const rp_route_tmpl *r = c->r;
    const char *first_opt = NULL;

    for (size_t i = 0; i < r->nseg; i++) {
        const segment *sg = &r->seg[i];
        const param *p = sg->is_param ? &r->params[sg->param] : NULL;
        int opt = p != NULL && (p->kind != RP_ROUTE_REQUIRED || p->def != NULL);

        c->segno = i + 1;
        c->seg_start = starts[i];
        c->seg_end = ends[i];
        if (p != NULL && p->kind == RP_ROUTE_CATCHALL && i + 1 != r->nseg)
            return seg_err(c, RP_EPARSE, "a catch-all parameter must be the last segment");
        if (first_opt != NULL && !opt)
            return seg_err(c, RP_EPARSE,
                           "follows the optional parameter '%s': only optional parameters, "
                           "parameters with a default or a catch-all may follow it",
                           first_opt);
        if (opt && first_opt == NULL)
            first_opt = p->name;
    }
    return 0;
}

int rp_route_compile(const char *tmpl, size_t n, rp_route_tmpl **out, char *why, size_t cap)
{
    size_t starts[RP_ROUTE_MAX_SEGMENTS], ends[RP_ROUTE_MAX_SEGMENTS];
    rp_route_tmpl *r = NULL;
    cctx c;
    size_t pos = 0;
    int rc;

    if (why != NULL && cap > 0)
        why[0] = '\0';
    if (out == NULL)
        return rp_errf(why, cap, RP_EINVAL, "template: no output");
    *out = NULL;
    if (tmpl == NULL && n > 0)
        return rp_errf(why, cap, RP_EINVAL, "template: NULL");
    if (n > RP_ROUTE_MAX_LEN)
        return rp_errf(why, cap, RP_ETOOBIG, "template: longer than %d bytes", RP_ROUTE_MAX_LEN);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)tmpl[i] < 0x20 || tmpl[i] == 0x7f)
            return rp_errf(why, cap, RP_EPARSE, "template: control character at byte %zu", i);
    if (!rp_utf8_valid(tmpl, n, 0))
        return rp_errf(why, cap, RP_EPARSE, "template: not valid UTF-8");
    if (!rp_utf8_valid(tmpl, n, 1))
        return rp_errf(why, cap, RP_EPARSE, "template: C1 control character (U+0080-U+009F)");
    if (n > 0 && tmpl[0] == '~')
        return rp_errf(why, cap, RP_EPARSE, "template: cannot start with '~'");

    r = rp_calloc(1, sizeof(*r));
    if (r == NULL)
        return rp_errf(why, cap, RP_ENOMEM, "template: out of memory");
    c = (cctx){r, tmpl, n, why, cap, 0, 0, 0};
    if (n > 0 && tmpl[0] == '/')
        pos = 1;
    while (pos < n) {
        c.segno = r->nseg + 1;
        if (tmpl[pos] == '/') {
            c.seg_start = c.seg_end = pos;
            rc = seg_err(&c, RP_EPARSE, "empty segment ('//')");
            goto fail;
        }
        if (r->nseg < RP_ROUTE_MAX_SEGMENTS)
            starts[r->nseg] = pos;
        if ((rc = parse_segment(&c, &pos)) != 0)
            goto fail;
        ends[r->nseg - 1] = pos;
        if (pos < n) /* at the '/': a '/' at the very end is the trailing one */
            pos++;
    }
    if ((rc = check_order(&c, starts, ends)) != 0)
        goto fail;
    *out = r;
    if (why != NULL && cap > 0)
        why[0] = '\0';
    return 0;
fail:
    rp_free(r);
    return rc;
}

void rp_route_free(rp_route_tmpl *r)
{
    rp_free(r);
}

/* ---- matching ----------------------------------------------------------------------------- */

static int eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rp_lower(a[i]) != rp_lower(b[i]))
            return 0;
    return 1;
}

int rp_route_match(const rp_route_tmpl *r, const char *path, size_t n, rp_route_param *params,
                   size_t cap, size_t *nparams)
{
    rp_route_param got[RP_ROUTE_MAX_PARAMS];
    size_t count = 0, pos = 0;

    if (nparams != NULL)
        *nparams = 0;
    if (r == NULL || nparams == NULL || (path == NULL && n > 0) || (params == NULL && cap > 0))
        return RP_EINVAL;
    /* PathTokenizer: skip the leading '/'; every later '/' ends a segment, and what follows the
     * last '/' is a segment only when it is not empty (so one trailing '/' is ignored). */
    if (n > 0 && path[0] == '/')
        pos = 1;
    for (size_t i = 0; i < r->nseg; i++) {
        const segment *sg = &r->seg[i];
        const param *p = sg->is_param ? &r->params[sg->param] : NULL;
        const char *v = NULL, *slash;
        size_t vn = 0, next = n;
        int have = pos < n;

        if (have) {
            slash = memchr(path + pos, '/', n - pos);
            vn = slash != NULL ? (size_t)(slash - path) - pos : n - pos;
            next = slash != NULL ? (size_t)(slash - path) + 1 : n;
            v = path + pos;
            if (vn == 0)
                return 0;
        }
        if (p == NULL) {
            if (!have || vn != sg->lit_len || !eq_nocase(v, sg->lit, vn))
                return 0;
            pos = next;
            continue;
        }
        if (p->kind == RP_ROUTE_CATCHALL && have) {
            vn = n - pos;
            next = n;
        }
        if (!have) {
            if (p->def != NULL) {
                v = p->def;
                vn = p->def_len;
            } else if (p->kind == RP_ROUTE_REQUIRED) {
                return 0;
            } else if (p->kind == RP_ROUTE_CATCHALL && p->ncons > 0) {
                return 0; /* ASP.NET checks the constraints against null, which fails */
            }
        }
        if (v != NULL) {
            /* Defaults were checked at compile time. */
            if (have && first_failing(p, v, vn) >= 0)
                return 0;
            got[count++] = (rp_route_param){p->name, v, vn};
        }
        pos = next;
    }
    if (pos < n) /* the path has more segments than the template */
        return 0;
    *nparams = count;
    if (count > cap)
        return RP_ETOOBIG;
    if (count > 0)
        memcpy(params, got, count * sizeof(got[0]));
    return 1;
}

/* ---- reserved routes and conflicts -------------------------------------------------------- */

static int has_prefix_nocase(const char *s, size_t n, const char *lit)
{
    size_t k = strlen(lit);

    return n >= k && eq_nocase(s, lit, k);
}

int rp_route_reserved(const char *tmpl, size_t n)
{
    if (tmpl == NULL)
        return 0;
    while (n > 0 && tmpl[0] == '/') {
        tmpl++;
        n--;
    }
    return has_prefix_nocase(tmpl, n, "admin") || has_prefix_nocase(tmpl, n, "runtime");
}

static int has_constraint(const param *p, const constraint *c)
{
    for (size_t i = 0; i < p->ncons; i++)
        if (p->cons[i].type == c->type && p->cons[i].a == c->a && p->cons[i].b == c->b)
            return 1;
    return 0;
}

static int same_constraints(const param *a, const param *b)
{
    for (size_t i = 0; i < a->ncons; i++)
        if (!has_constraint(b, &a->cons[i]))
            return 0;
    for (size_t i = 0; i < b->ncons; i++)
        if (!has_constraint(a, &b->cons[i]))
            return 0;
    return 1;
}

/* What a parameter does when the path has ended before it: 0 no match, 1 match. */
static int accepts_absent(const param *p)
{
    if (p->def != NULL || p->kind == RP_ROUTE_OPTIONAL)
        return 1;
    return p->kind == RP_ROUTE_CATCHALL && p->ncons == 0;
}

int rp_route_conflict(const rp_route_tmpl *a, const rp_route_tmpl *b)
{
    if (a == NULL || b == NULL || a->nseg != b->nseg)
        return 0;
    for (size_t i = 0; i < a->nseg; i++) {
        const segment *x = &a->seg[i], *y = &b->seg[i];
        const param *p, *q;

        if (x->is_param != y->is_param)
            return 0;
        if (!x->is_param) {
            if (x->lit_len != y->lit_len || !eq_nocase(x->lit, y->lit, x->lit_len))
                return 0;
            continue;
        }
        p = &a->params[x->param];
        q = &b->params[y->param];
        if ((p->kind == RP_ROUTE_CATCHALL) != (q->kind == RP_ROUTE_CATCHALL) ||
            accepts_absent(p) != accepts_absent(q) || !same_constraints(p, q))
            return 0;
    }
    return 1;
}

/* ASCII upper-casing, as OrdinalIgnoreCase compares ('_' sorts after 'A'-'Z' then). */
static int upper(unsigned char c)
{
    return (c >= 'a' && c <= 'z') ? c - 32 : c;
}

int rp_route_order(const rp_route_tmpl *a, const rp_route_tmpl *b)
{
    if (a == NULL || b == NULL)
        return 0;
    for (size_t i = 0; i < a->nseg; i++) {
        const segment *x = &a->seg[i], *y;

        if (i >= b->nseg)
            return -1; /* a is longer */
        y = &b->seg[i];
        if (x->is_param != y->is_param)
            return x->is_param ? 1 : -1;
        if (x->is_param) {
            size_t cx = a->params[x->param].ncons, cy = b->params[y->param].ncons;

            if (cx != cy)
                return cx > cy ? -1 : 1;
            continue;
        }
        for (size_t k = 0; k < x->lit_len || k < y->lit_len; k++) {
            int ux, uy;

            if (k == x->lit_len || k == y->lit_len)
                return k == x->lit_len ? -1 : 1; /* a prefix sorts first */
            ux = upper((unsigned char)x->lit[k]);
            uy = upper((unsigned char)y->lit[k]);
            if (ux != uy)
                return ux < uy ? -1 : 1;
        }
    }
    return b->nseg > a->nseg ? 1 : 0;
}

/* ---- introspection ------------------------------------------------------------------------ */

size_t rp_route_nparams(const rp_route_tmpl *r)
{
    return r != NULL ? r->nparam : 0;
}

int rp_route_param_get(const rp_route_tmpl *r, size_t i, rp_route_param_info *info)
{
    const param *p;

    if (r == NULL || info == NULL || i >= r->nparam)
        return RP_ENOENT;
    p = &r->params[i];
    *info = (rp_route_param_info){p->name, p->kind, p->def, p->def_len, p->ncons};
    return 0;
}

int rp_route_param_check(const rp_route_tmpl *r, size_t i, const char *v, size_t n)
{
    if (r == NULL || i >= r->nparam || (v == NULL && n > 0))
        return 0;
    return first_failing(&r->params[i], v, n) < 0;
}
