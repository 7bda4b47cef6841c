/*
 * route_fuzz.c - libFuzzer driver for src/functions/route.c (Azure Functions route templates):
 * rp_route_compile on hostile templates, rp_route_match of derived and arbitrary paths against
 * what compiled and against a few fixed templates, rp_route_conflict and rp_route_reserved.
 *
 * Input: a template line, then any number of path lines ('\n' separates; no '\n' means the
 * whole input is the template and also the one path). Corpus: tests/fuzz/corpus/route/.
 *
 * Invariants checked with abort():
 *   - compile returns 0 with a route and why "", or RP_EPARSE / RP_ETOOBIG with no route and a
 *     non-empty why of printable ASCII; compiling twice gives the same answer, and the two
 *     routes conflict with each other (and each with itself);
 *   - a compiled route has at most RP_ROUTE_MAX_PARAMS parameters, each with a valid name
 *     unique ignoring case, at most RP_ROUTE_MAX_CONSTRAINTS constraints, and a default (if
 *     any) that is non-empty and satisfies them;
 *   - a path built from the template by putting a value in place of every parameter matches
 *     whenever every value satisfies its parameter's constraints, and gives back exactly those
 *     values in order;
 *   - every match (of any path, against any route) returns parameters of that route in template
 *     order, every required parameter and every one with a default, non-empty values that lie in
 *     the path or are the parameter's own default, with no '/' unless it is a catch-all (whose
 *     value then ends the path), and that satisfy the constraints; matching again gives the same
 *     result, and one slot too few gives RP_ETOOBIG with the same count;
 *   - for the fixed templates, values also pass independent checks of the constraints (letters
 *     only, an int32, a long, a range, a bool, a bounded length);
 *   - rp_route_conflict is symmetric and rp_route_order antisymmetric, each against the fixed
 *     templates; a route conflicts with itself and is tied with itself;
 *   - rp_route_reserved agrees with a direct reading of its definition.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/str.h"
#include "functions/route.h"

#define MAX_IN   4096
#define MAX_PATH 4096

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static const char *const fixed_src[] = {
    "products/{category:alpha}/{id:int?}",
    "files/{*path:maxlength(20)}",
    "v/{g:guid}/{d:datetime}/{b:bool}",
    "n/{l:long}/{m:decimal}/{f:double}/{r:range(-5,5)}/{x=def}",
    "{a}/{b?}",
};
#define NFIXED (sizeof(fixed_src) / sizeof(fixed_src[0]))

static rp_route_tmpl *fixed[NFIXED];

/* Values tried in place of parameters: some satisfy each constraint, most do not. */
static const char *const candidates[] = {
    "1",          "abc",      "-5", "true", "cd2c1638-1638-72d5-1638-deadbeef1638",
    "2024-01-31", "x.y",      "0",  "1e99", "Zz",
    "2147483648", "\xc3\xa9",
};
#define NCAND (sizeof(candidates) / sizeof(candidates[0]))

static int printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > RP_ROUTE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f || strchr("/{}?*:=", s[i]) != NULL)
            return 0;
    return 1;
}

/* -?[0-9]+ read with strtoll into *v; 0 when the syntax is wrong or it overflows. */
static int oracle_ll(const char *s, size_t n, long long *v)
{
    char buf[64];
    char *end;
    size_t i = (n > 0 && s[0] == '-') ? 1 : 0;

    if (n == i)
        return 0;
    for (size_t k = i; k < n; k++)
        if (s[k] < '0' || s[k] > '9')
            return 0;
    /* Leading zeros do not change the value (and may be many). */
    buf[0] = '-';
    while (n - i > 1 && s[i] == '0')
        i++;
    if (n - i + 1 >= sizeof(buf))
        return 0;
    memcpy(buf + 1, s + i, n - i);
    buf[n - i + 1] = '\0';
    errno = 0;
    *v = strtoll(s[0] == '-' ? buf : buf + 1, &end, 10);
    return errno == 0 && *end == '\0';
}

/* Checks one match result of route r on path[0..n). */
static void check_match(const rp_route_tmpl *r, const char *path, size_t n, const rp_route_param *p,
                        size_t count)
{
    rp_route_param again[RP_ROUTE_MAX_PARAMS];
    size_t np = rp_route_nparams(r), k = 0, count2 = 99;

    if (count > np)
        abort();
    for (size_t i = 0; i < np; i++) {
        rp_route_param_info info;
        const rp_route_param *v;

        if (rp_route_param_get(r, i, &info) != 0)
            abort();
        if (k == count || p[k].name != info.name) {
            /* Absent: only an optional parameter or a catch-all without default may be. */
            if (info.def != NULL || info.kind == RP_ROUTE_REQUIRED)
                abort();
            continue;
        }
        v = &p[k++];
        if (v->value == NULL || v->value_len == 0)
            abort();
        if (v->value == info.def) {
            if (v->value_len != info.def_len)
                abort();
        } else if ((uintptr_t)v->value < (uintptr_t)path || v->value_len > n ||
                   (uintptr_t)v->value - (uintptr_t)path > n - v->value_len) {
            abort();
        } else if (info.kind == RP_ROUTE_CATCHALL && v->value + v->value_len != path + n) {
            abort();
        }
        if (info.kind != RP_ROUTE_CATCHALL && memchr(v->value, '/', v->value_len) != NULL)
            abort();
        if (rp_route_param_check(r, i, v->value, v->value_len) != 1)
            abort();
    }
    if (k != count) /* a name out of order, repeated, or not the route's */
        abort();
    if (rp_route_match(r, path, n, again, RP_ROUTE_MAX_PARAMS, &count2) != 1 || count2 != count ||
        memcmp(again, p, count * sizeof(p[0])) != 0)
        abort();
    if (count > 0 &&
        (rp_route_match(r, path, n, again, count - 1, &count2) != RP_ETOOBIG || count2 != count))
        abort();
}

/* Matches path against r; checks the invariants; returns the result and the values. */
static int match(const rp_route_tmpl *r, const char *path, size_t n, rp_route_param *p,
                 size_t *count)
{
    int rc = rp_route_match(r, path, n, p, RP_ROUTE_MAX_PARAMS, count);

    if (rc == 1)
        check_match(r, path, n, p, *count);
    else if (rc != 0 || *count != 0)
        abort();
    return rc;
}

static const rp_route_param *find(const rp_route_param *p, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(p[i].name, name) == 0)
            return &p[i];
    return NULL;
}

/* The literal first segment of each fixed template ("" for none). */
static const char *const fixed_lit[] = {"products", "files", "v", "n", ""};

/* Independent checks of what the fixed templates' literals and constraints promise. */
static void check_fixed(size_t t, const char *path, size_t n, const rp_route_param *p, size_t count)
{
    const rp_route_param *v;
    size_t ln = strlen(fixed_lit[t]), i = (n > 0 && path[0] == '/') ? 1 : 0;
    long long x;

    if (ln > 0 && (n - i < ln || !rp_str_eq_nocase((rp_str){path + i, ln}, fixed_lit[t]) ||
                   (n - i > ln && path[i + ln] != '/')))
        abort();
    switch (t) {
    case 0:
        v = find(p, count, "category");
        for (size_t i = 0; i < v->value_len; i++)
            if (!((v->value[i] >= 'a' && v->value[i] <= 'z') ||
                  (v->value[i] >= 'A' && v->value[i] <= 'Z')))
                abort();
        v = find(p, count, "id");
        if (v != NULL && (!oracle_ll(v->value, v->value_len, &x) || x < INT32_MIN || x > INT32_MAX))
            abort();
        break;
    case 1:
        v = find(p, count, "path");
        /* A UTF-16 unit takes at most 3 bytes of UTF-8 (4 bytes make 2 units). */
        if (v != NULL && (v->value_len > 60 || !rp_utf8_valid(v->value, v->value_len, 0)))
            abort();
        break;
    case 2:
        v = find(p, count, "b");
        if (!rp_str_eq_nocase((rp_str){v->value, v->value_len}, "true") &&
            !rp_str_eq_nocase((rp_str){v->value, v->value_len}, "false"))
            abort();
        v = find(p, count, "g");
        if (v->value_len != 32 && v->value_len != 36 && v->value_len != 38)
            abort();
        v = find(p, count, "d");
        if (v->value_len < 10 || v->value_len > 33 || v->value[4] != '-')
            abort();
        break;
    case 3:
        v = find(p, count, "l");
        if (!oracle_ll(v->value, v->value_len, &x))
            abort();
        v = find(p, count, "r");
        if (!oracle_ll(v->value, v->value_len, &x) || x < -5 || x > 5)
            abort();
        v = find(p, count, "x");
        if (v == NULL)
            abort();
        break;
    default: break;
    }
}

/*
 * Writes into out[cap] the template text with parameter j replaced by candidates[(j + shift) %
 * NCAND] and literal braces decoded; *vals receives the indexes used. Returns the length, or
 * (size_t)-1 when it does not fit. Only called on templates that compiled, so braces balance.
 */
static size_t derive(const char *t, size_t tn, size_t shift, char *out, size_t cap, size_t *vals,
                     size_t *nvals)
{
    size_t o = 0, j = 0;

    for (size_t i = 0; i < tn;) {
        if ((t[i] == '{' || t[i] == '}') && i + 1 < tn && t[i + 1] == t[i]) {
            if (o + 1 > cap)
                return (size_t)-1;
            out[o++] = t[i];
            i += 2;
        } else if (t[i] == '{') {
            size_t idx = (j + shift) % NCAND;
            const char *c = candidates[idx];
            size_t cn = strlen(c);

            /* Skip to the closing '}' that is not part of a "}}" pair. */
            i++;
            while (i < tn && !(t[i] == '}' && !(i + 1 < tn && t[i + 1] == '}')))
                i += (t[i] == '{' || t[i] == '}') ? 2 : 1;
            i++;
            if (o + cn > cap || j == RP_ROUTE_MAX_PARAMS)
                return (size_t)-1;
            memcpy(out + o, c, cn);
            o += cn;
            vals[j++] = idx;
        } else {
            if (o + 1 > cap)
                return (size_t)-1;
            out[o++] = t[i++];
        }
    }
    /* A trailing '/' of the template is ignored; one in the path would join a catch-all. */
    if (tn > 0 && t[tn - 1] == '/' && o > 0 && out[o - 1] == '/')
        o--;
    *nvals = j;
    return o;
}

static void check_compiled(const rp_route_tmpl *r, const char *t, size_t tn)
{
    static char buf[MAX_PATH];
    rp_route_param p[RP_ROUTE_MAX_PARAMS];
    size_t np = rp_route_nparams(r), count;

    if (np > RP_ROUTE_MAX_PARAMS || rp_route_conflict(r, r) != 1 || rp_route_order(r, r) != 0)
        abort();
    for (size_t i = 0; i < np; i++) {
        rp_route_param_info info;

        if (rp_route_param_get(r, i, &info) != 0 || !name_ok(info.name) ||
            info.nconstraints > RP_ROUTE_MAX_CONSTRAINTS || info.kind > RP_ROUTE_CATCHALL)
            abort();
        if (info.def != NULL &&
            (info.def_len == 0 || rp_route_param_check(r, i, info.def, info.def_len) != 1))
            abort();
        if (info.def != NULL && info.kind == RP_ROUTE_OPTIONAL)
            abort();
        for (size_t k = 0; k < i; k++) {
            rp_route_param_info other;

            if (rp_route_param_get(r, k, &other) != 0 ||
                rp_str_eq_nocase((rp_str){info.name, strlen(info.name)}, other.name))
                abort();
        }
    }
    if (rp_route_param_get(r, np, &(rp_route_param_info){0}) != RP_ENOENT)
        abort();

    for (size_t shift = 0; shift < 3; shift++) {
        size_t vals[RP_ROUTE_MAX_PARAMS], nvals = 0, len;
        int all_ok = 1, rc;

        len = derive(t, tn, shift * 5, buf, sizeof(buf), vals, &nvals);
        if (len == (size_t)-1)
            continue;
        if (nvals != np)
            abort();
        for (size_t i = 0; i < nvals; i++)
            all_ok &= rp_route_param_check(r, i, candidates[vals[i]], strlen(candidates[vals[i]]));
        rc = match(r, buf, len, p, &count);
        if (all_ok) {
            if (rc != 1 || count != np)
                abort();
            for (size_t i = 0; i < count; i++)
                if (p[i].value_len != strlen(candidates[vals[i]]) ||
                    memcmp(p[i].value, candidates[vals[i]], p[i].value_len) != 0)
                    abort();
        }
        /* The same path cut before its last '/' (what an optional tail leaves). */
        {
            const char *slash = len > 0 ? memchr(buf, '/', len) : NULL;
            const char *last = NULL;

            while (slash != NULL) {
                last = slash;
                slash = memchr(slash + 1, '/', len - (size_t)(slash + 1 - buf));
            }
            if (last != NULL)
                match(r, buf, (size_t)(last - buf), p, &count);
        }
    }
}

/* rp_route_reserved, read straight from its definition. */
static int reserved_oracle(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && s[i] == '/')
        i++;
    return ((n - i >= 5 && rp_str_eq_nocase((rp_str){s + i, 5}, "admin")) ||
            (n - i >= 7 && rp_str_eq_nocase((rp_str){s + i, 7}, "runtime")));
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static int inited;
    static char buf[MAX_IN + 1];
    rp_route_param p[RP_ROUTE_MAX_PARAMS];
    rp_route_tmpl *r = NULL, *r2 = NULL;
    const char *nl, *line;
    char why[256], why2[256], *tcopy;
    size_t tn, count;
    int rc, rc2;

    if (!inited) {
        for (size_t i = 0; i < NFIXED; i++)
            if (rp_route_compile(fixed_src[i], strlen(fixed_src[i]), &fixed[i], NULL, 0) != 0)
                abort();
        inited = 1;
    }
    if (n > MAX_IN)
        return 0;
    memcpy(buf, d, n);
    buf[n] = '\0';
    nl = memchr(buf, '\n', n);
    tn = nl != NULL ? (size_t)(nl - buf) : n;
    /* The template in a buffer of exactly its size: ASan sees any read past tn. */
    tcopy = malloc(tn ? tn : 1);
    if (tcopy == NULL)
        abort();
    memcpy(tcopy, buf, tn);

    if (rp_route_reserved(tcopy, tn) != reserved_oracle(buf, tn))
        abort();

    why[0] = 'x';
    why[1] = '\0';
    rc = rp_route_compile(tcopy, tn, &r, why, sizeof(why));
    rc2 = rp_route_compile(tcopy, tn, &r2, why2, sizeof(why2));
    if (rc != rc2 || strcmp(why, why2) != 0)
        abort();
    if (rc != 0) {
        if ((rc != RP_EPARSE && rc != RP_ETOOBIG) || r != NULL || why[0] == '\0' || !printable(why))
            abort();
    } else {
        if (r == NULL || why[0] != '\0' || rp_route_conflict(r, r2) != 1)
            abort();
        check_compiled(r, buf, tn);
    }

    /* Every path line (or the whole input) against the template and the fixed ones. */
    line = nl != NULL ? nl + 1 : buf;
    for (;;) {
        const char *end = memchr(line, '\n', n - (size_t)(line - buf));
        size_t ln = end != NULL ? (size_t)(end - line) : n - (size_t)(line - buf);
        char *lc = malloc(ln ? ln : 1); /* exactly the path, as above */

        if (lc == NULL)
            abort();
        memcpy(lc, line, ln);
        if (r != NULL)
            match(r, lc, ln, p, &count);
        for (size_t t = 0; t < NFIXED; t++)
            if (match(fixed[t], lc, ln, p, &count) == 1)
                check_fixed(t, lc, ln, p, count);
        free(lc);
        if (end == NULL)
            break;
        line = end + 1;
    }
    for (size_t t = 0; t < NFIXED && r != NULL; t++) {
        int o = rp_route_order(r, fixed[t]), back = rp_route_order(fixed[t], r);

        if (rp_route_conflict(r, fixed[t]) != rp_route_conflict(fixed[t], r))
            abort();
        if ((o < 0) != (back > 0) || (o == 0) != (back == 0))
            abort();
    }

    rp_route_free(r2);
    rp_route_free(r);
    free(tcopy);
    return 0;
}
