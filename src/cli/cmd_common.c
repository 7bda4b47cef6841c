/*
 * cmd_common.c - shared pieces of the client subcommands: option parsing, the management API
 * call with its exit-code mapping, tables, percent-encoded paths, durations and times.
 *
 * Every function here runs a few times per CLI invocation; clarity beats speed. Nothing keeps
 * state between calls. Server text is untrusted: it is sanitised before it reaches a terminal,
 * and cut to bounded buffers.
 */
#include "cli/cmd_common.h"
#include "base/err.h"
#include "base/str.h"
#include "base/time.h"

#include <stdio.h>
#include <openssl/crypto.h>
#include <errno.h>
#include <unistd.h>
#include <signal.h>
#include <termios.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- options */

static int args_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int args_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return RP_EINVAL;
}

int rp_args_parse(int argc, char **argv, rp_opt *opts, size_t nopts, size_t max_pos, int allow_rest,
                  rp_args *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *eq;
        size_t nlen;
        rp_opt *o = NULL;

        if (strcmp(a, "--") == 0) {
            if (!allow_rest)
                return args_fail(err, errlen, "unexpected argument '--'");
            out->rest = argv + i + 1;
            out->nrest = argc - i - 1;
            return 0;
        }
        if (a[0] != '-' || a[1] != '-') {
            if (a[0] == '-' && a[1] != '\0')
                return args_fail(err, errlen, "unknown option '%.60s' (options start with --)", a);
            if (out->npos >= max_pos || out->npos >= RP_ARGS_MAX_POS)
                return args_fail(err, errlen, "unexpected argument '%.60s'", a);
            out->pos[out->npos++] = a;
            continue;
        }
        a += 2;
        eq = strchr(a, '=');
        nlen = eq ? (size_t)(eq - a) : strlen(a);
        for (size_t k = 0; k < nopts; k++)
            if (strlen(opts[k].name) == nlen && memcmp(opts[k].name, a, nlen) == 0)
                o = &opts[k];
        if (o == NULL)
            return args_fail(err, errlen, "unknown option '--%.*s'", (int)(nlen > 60 ? 60 : nlen),
                             a);
        if (o->kind == RP_OPT_FLAG) {
            if (eq != NULL)
                return args_fail(err, errlen, "option '--%s' takes no value", o->name);
            o->value = "1";
            continue;
        }
        if (o->kind == RP_OPT_VALUE && o->value != NULL)
            return args_fail(err, errlen, "option '--%s' given twice", o->name);
        if (eq != NULL)
            o->value = eq + 1;
        else if (i + 1 < argc)
            o->value = argv[++i];
        else
            return args_fail(err, errlen, "option '--%s' needs a value", o->name);
        if (o->kind == RP_OPT_LIST) {
            if (o->nvalues >= RP_OPT_MAX_VALUES)
                return args_fail(err, errlen, "option '--%s' given more than %d times", o->name,
                                 RP_OPT_MAX_VALUES);
            o->values[o->nvalues++] = o->value;
        }
    }
    return 0;
}

const rp_opt *rp_opt_find(const rp_opt *opts, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    return NULL;
}

const char *rp_opt_get(const rp_opt *opts, size_t n, const char *name)
{
    const rp_opt *o = rp_opt_find(opts, n, name);

    return o != NULL ? o->value : NULL;
}

int rp_cli_usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("rampart: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(run 'rampart help' for usage)\n", stderr);
    return RP_EXIT_USAGE;
}

int rp_cli_fail(int code, const char *fmt, ...)
{
    va_list ap;

    fputs("rampart: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int rp_cli_output(const char *value, int *json)
{
    *json = 0;
    if (value == NULL || strcmp(value, "text") == 0 || strcmp(value, "table") == 0)
        return RP_EXIT_OK;
    if (strcmp(value, "json") == 0) {
        *json = 1;
        return RP_EXIT_OK;
    }
    return rp_cli_usage_error("--output must be 'text', 'table' or 'json'");
}

void rp_cli_print_json(json_t *o)
{
    char *s;

    if (o == NULL)
        return;
    s = json_dumps(o, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (s != NULL) {
        puts(s);
        free(s);
    }
    json_decref(o);
}

/* Copies s into out[cap] replacing control characters; cuts at a character boundary. */
static void safe_copy(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;

    if (cap == 0)
        return;
    while (*p != '\0' && o + 1 < cap) {
        if (*p < 0x20 || *p == 0x7f) {
            out[o++] = '?';
            p++;
        } else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            out[o++] = '?'; /* a C1 control character in UTF-8 */
            p += 2;
        } else {
            size_t n = 1;
            if (*p >= 0xc0)
                while (p[n] >= 0x80 && p[n] < 0xc0 && n < 4)
                    n++;
            if (o + n >= cap)
                break;
            memcpy(out + o, p, n);
            o += n;
            p += n;
        }
    }
    out[o] = '\0';
}

void rp_cli_put_safe(FILE *f, const char *s)
{
    if (s == NULL) {
        fputc('-', f);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            fputc('?', f);
        } else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            fputc('?', f); /* a C1 control character in UTF-8 */
            p++;
        } else {
            fputc(*p, f);
        }
    }
}

/* ---------------------------------------------------------------- the management API */

int rp_cli_connect(rp_client_settings *cs, const rp_opt *opts, size_t nopts, char **envp,
                   int need_token)
{
    char err[1024] = "";
    int rc = rp_client_settings_load(cs, NULL, envp, rp_opt_get(opts, nopts, "url"),
                                     rp_opt_get(opts, nopts, "ca"),
                                     rp_opt_get(opts, nopts, "token"), err, sizeof(err));

    if (rc != 0)
        return rp_cli_fail(RP_EXIT_CONFIG, "%s", err);
    if (cs->url == NULL) {
        rp_client_settings_free(cs);
        return rp_cli_fail(RP_EXIT_CONFIG, "no server URL: pass --url, set RAMPART_URL or put "
                                           "\"url\" in the client file");
    }
    if (need_token && cs->token == NULL && cs->token_expired) {
        rp_client_settings_free(cs);
        return rp_cli_fail(RP_EXIT_UNAUTHORIZED, "login expired: run rampart login");
    }
    return RP_EXIT_OK;
}

int rp_cli_begin(rp_cli_cmd *c, int argc, char **argv, rp_opt *opts, size_t nopts, size_t min_pos,
                 size_t max_pos, const char *usage, char **envp)
{
    char err[256];

    memset(c, 0, sizeof(*c));
    c->opts = opts;
    c->nopts = nopts;
    c->envp = envp;
    if (rp_args_parse(argc, argv, opts, nopts, max_pos, 0, &c->args, err, sizeof(err)) != 0)
        return rp_cli_usage_error("%s\nusage: %s", err, usage);
    if (c->args.npos < min_pos)
        return rp_cli_usage_error("missing argument\nusage: %s", usage);
    return rp_cli_output(rp_opt_get(opts, nopts, "output"), &c->json);
}

void rp_cli_end(rp_cli_cmd *c)
{
    if (c != NULL && c->connected)
        rp_client_settings_free(&c->cs);
}

int rp_cli_request(rp_cli_cmd *c, const char *method, const char *path, const json_t *body,
                   json_t **answer, long *status)
{
    if (answer != NULL)
        *answer = NULL;
    if (!c->connected) {
        int rc = rp_cli_connect(&c->cs, c->opts, c->nopts, c->envp, 1);
        if (rc != RP_EXIT_OK)
            return rc;
        c->connected = 1;
        c->cs.json_output = c->json;
    }
    return rp_cli_call(&c->cs, method, path, body, answer, status);
}

void rp_cli_error_text(const char *body, size_t len, char *out, size_t cap)
{
    json_t *j, *e;
    const char *code = NULL, *msg = NULL;
    char line[1024];

    if (cap == 0)
        return;
    out[0] = '\0';
    if (body == NULL || len == 0)
        return;
    j = json_loadb(body, len, 0, NULL);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        return;
    }
    e = json_object_get(j, "error");
    if (json_is_object(e)) {
        code = json_string_value(json_object_get(e, "code"));
        msg = json_string_value(json_object_get(e, "message"));
    } else if (json_is_string(e)) {
        code = json_string_value(e);
        msg = json_string_value(json_object_get(j, "error_description"));
    } else {
        msg = json_string_value(json_object_get(j, "message"));
    }
    if (code != NULL && msg != NULL)
        snprintf(line, sizeof(line), "%s: %s", code, msg);
    else if (code != NULL || msg != NULL)
        snprintf(line, sizeof(line), "%s", code != NULL ? code : msg);
    else
        line[0] = '\0';
    safe_copy(line, out, cap);
    json_decref(j);
}

int rp_cli_fetch(const rp_client_settings *cs, const char *path, json_t **answer)
{
    rp_buf out;
    long st = 0;
    int rc;

    *answer = NULL;
    rp_buf_init(&out, RP_CLIENT_BODY_MAX);
    rc = rp_client_request(cs, "GET", path, NULL, &st, &out, NULL, 0);
    if (rc == 0 && st >= 200 && st < 300)
        *answer = json_loadb(out.data ? out.data : "", out.len, JSON_REJECT_DUPLICATES, NULL);
    rp_buf_free(&out);
    return *answer != NULL ? 0 : -1;
}

int rp_cli_call(const rp_client_settings *cs, const char *method, const char *path,
                const json_t *body, json_t **answer, long *status)
{
    rp_buf out;
    char err[1024] = "", msg[600];
    long st = 0;
    int rc, exitc = RP_EXIT_OK;
    size_t shown = strcspn(path, "?");

    if (answer != NULL)
        *answer = NULL;
    rp_buf_init(&out, RP_CLIENT_BODY_MAX);
    rc = rp_client_request(cs, method, path, body, &st, &out, err, sizeof(err));
    if (status != NULL)
        *status = rc == 0 ? st : 0;
    if (rc != 0) {
        exitc = rp_cli_fail(RP_EXIT_SERVER, "%s", err);
        goto out;
    }
    if (st >= 200 && st < 300) {
        if (answer != NULL && out.len > 0) {
            *answer = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, NULL);
            if (*answer == NULL)
                exitc = rp_cli_fail(RP_EXIT_SERVER, "%s %.*s: the answer is not JSON", method,
                                    (int)shown, path);
        }
        goto out;
    }
    rp_cli_error_text(out.data, out.len, msg, sizeof(msg));
    if (st == 401) {
        const char *hint = "";

        if (cs->token == NULL)
            hint = cs->token_expired ? " (login expired: run rampart login)"
                                     : " (no token: run rampart login, or set RAMPART_TOKEN)";
        exitc = rp_cli_fail(RP_EXIT_UNAUTHORIZED, "%s%s",
                            msg[0] ? msg : "the server refused the credentials (HTTP 401)", hint);
    } else if (st == 403) {
        exitc = rp_cli_fail(RP_EXIT_UNAUTHORIZED, "not authorized: %s",
                            msg[0] ? msg : "the server refused the request (HTTP 403)");
    } else {
        exitc = rp_cli_fail(RP_EXIT_SERVER, "%s %.*s: HTTP %ld%s%s", method, (int)shown, path, st,
                            msg[0] ? ": " : "", msg);
    }
out:
    rp_buf_free(&out);
    return exitc;
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int rp_cli_path(char *out, size_t cap, const char *fmt, ...)
{
    static const char hex[] = "0123456789ABCDEF";
    va_list ap;
    size_t o = 0;
    int rc = 0;

    if (cap == 0)
        return RP_ETOOBIG;
    va_start(ap, fmt);
    for (const char *f = fmt; *f != '\0' && rc == 0; f++) {
        if (f[0] == '%' && f[1] == 's') {
            const unsigned char *a = va_arg(ap, const unsigned char *);
            f++;
            if (a == NULL || a[0] == '\0' || strcmp((const char *)a, ".") == 0 ||
                strcmp((const char *)a, "..") == 0) {
                rc = RP_EINVAL;
                break;
            }
            for (; *a != '\0'; a++) {
                if (o + 4 > cap) {
                    rc = RP_ETOOBIG;
                    break;
                }
                if (unreserved(*a)) {
                    out[o++] = (char)*a;
                } else {
                    out[o++] = '%';
                    out[o++] = hex[*a >> 4];
                    out[o++] = hex[*a & 15];
                }
            }
        } else {
            if (o + 2 > cap) {
                rc = RP_ETOOBIG;
                break;
            }
            out[o++] = *f;
        }
    }
    va_end(ap);
    out[rc == 0 ? o : 0] = '\0';
    return rc;
}

/* ---------------------------------------------------------------- tables and fields */

json_t *rp_cli_json_path(const json_t *o, const char *paths)
{
    const char *p = paths;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '|');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        const json_t *v = o;
        const char *seg = p;

        while (v != NULL && seg < p + n) {
            const char *dot = memchr(seg, '.', (size_t)(p + n - seg));
            size_t sn = dot != NULL ? (size_t)(dot - seg) : (size_t)(p + n - seg);
            char name[128];

            if (!json_is_object(v) || sn >= sizeof(name)) {
                v = NULL;
                break;
            }
            memcpy(name, seg, sn);
            name[sn] = '\0';
            v = json_object_get(v, name);
            seg += sn + (dot != NULL ? 1 : 0);
            if (dot == NULL)
                break;
        }
        if (v != NULL && !json_is_null(v))
            return (json_t *)v;
        p = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

/* Appends text to out[cap] at *o, cutting at cap. */
static void cell_append(char *out, size_t cap, size_t *o, const char *text)
{
    size_t n = strlen(text);

    if (*o + 1 >= cap)
        return;
    if (n > cap - 1 - *o)
        n = cap - 1 - *o;
    memcpy(out + *o, text, n);
    *o += n;
    out[*o] = '\0';
}

/* A scalar (or an object's name/id) as text into out[cap]; "" for what has no short form. */
static void scalar_text(const json_t *v, rp_col_kind kind, char *out, size_t cap)
{
    out[0] = '\0';
    if (json_is_string(v)) {
        snprintf(out, cap, "%s", json_string_value(v));
    } else if (json_is_integer(v)) {
        if (kind == RP_COL_TIME && json_integer_value(v) >= 0 &&
            json_integer_value(v) < (json_int_t)253402300800) {
            char t[21];
            rp_cli_format_time((int64_t)json_integer_value(v), t);
            snprintf(out, cap, "%s", t);
        } else if (kind == RP_COL_SECONDS && json_integer_value(v) > 0 &&
                   json_integer_value(v) <= (json_int_t)RP_CLI_DURATION_MAX) {
            char d[32];
            rp_cli_format_duration((int64_t)json_integer_value(v), d, sizeof(d));
            snprintf(out, cap, "%s", d);
        } else {
            snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        }
    } else if (json_is_real(v)) {
        snprintf(out, cap, "%g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(out, cap, "%s", json_is_true(v) ? "true" : "false");
    } else if (json_is_object(v)) {
        json_t *n = rp_cli_json_path(v, "name|displayName|id");
        if (json_is_string(n))
            snprintf(out, cap, "%s", json_string_value(n));
    }
}

void rp_cli_cell(const json_t *o, const rp_col *c, char *out, size_t cap)
{
    json_t *v = rp_cli_json_path(o, c->paths);
    char raw[1024];
    size_t n = 0;

    if (cap == 0)
        return;
    out[0] = '\0';
    raw[0] = '\0';
    if (v == NULL) {
        safe_copy("-", out, cap);
        return;
    }
    if (c->kind == RP_COL_SECRET) {
        safe_copy("(hidden)", out, cap);
        return;
    }
    if (c->kind == RP_COL_COUNT) {
        snprintf(raw, sizeof(raw), "%zu", json_is_array(v) ? json_array_size(v) : (size_t)1);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            char one[512];
            scalar_text(e, c->kind, one, sizeof(one));
            if (i > 0)
                cell_append(raw, sizeof(raw), &n, ", ");
            cell_append(raw, sizeof(raw), &n, one);
        }
        if (json_array_size(v) == 0)
            snprintf(raw, sizeof(raw), "-");
    } else {
        scalar_text(v, c->kind, raw, sizeof(raw));
        if (raw[0] == '\0' && json_is_object(v)) {
            char *dump = json_dumps(v, JSON_COMPACT);
            if (dump != NULL)
                snprintf(raw, sizeof(raw), "%s", dump);
            free(dump);
        }
    }
    safe_copy(raw[0] ? raw : "-", out, cap);
}

json_t *rp_cli_rows(const json_t *answer)
{
    json_t *v;

    if (json_is_array(answer))
        return (json_t *)answer;
    v = json_object_get(answer, "value");
    return json_is_array(v) ? v : NULL;
}

/* Display width of UTF-8 text: one per code point (wide characters are rare here). */
static size_t text_width(const char *s)
{
    size_t w = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if ((*p & 0xc0) != 0x80)
            w++;
    return w;
}

#define CELL_MAX 512

void rp_cli_table(FILE *f, const rp_col *cols, size_t ncols, const json_t *rows, const char *empty)
{
    size_t width[16] = {0}, i;
    json_t *row;
    char cell[CELL_MAX];

    if (ncols > 16)
        ncols = 16;
    if (!json_is_array(rows) || json_array_size(rows) == 0) {
        if (empty != NULL)
            fprintf(f, "%s\n", empty);
        return;
    }
    for (size_t c = 0; c < ncols; c++)
        width[c] = text_width(cols[c].header);
    json_array_foreach(rows, i, row)
    {
        for (size_t c = 0; c < ncols; c++) {
            size_t w;
            rp_cli_cell(row, &cols[c], cell, sizeof(cell));
            w = text_width(cell);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (size_t c = 0; c < ncols; c++)
        fprintf(f, "%s%-*s", c ? "  " : "", c + 1 < ncols ? (int)width[c] : 0, cols[c].header);
    fputc('\n', f);
    json_array_foreach(rows, i, row)
    {
        for (size_t c = 0; c < ncols; c++) {
            rp_cli_cell(row, &cols[c], cell, sizeof(cell));
            fprintf(f, "%s%s", c ? "  " : "", cell);
            if (c + 1 < ncols)
                for (size_t w = text_width(cell); w < width[c]; w++)
                    fputc(' ', f);
        }
        fputc('\n', f);
    }
}

void rp_cli_fields(FILE *f, const rp_col *cols, size_t ncols, const json_t *o)
{
    size_t width = 0;
    char cell[CELL_MAX];

    for (size_t c = 0; c < ncols; c++)
        if (rp_cli_json_path(o, cols[c].paths) != NULL && strlen(cols[c].header) > width)
            width = strlen(cols[c].header);
    for (size_t c = 0; c < ncols; c++) {
        if (rp_cli_json_path(o, cols[c].paths) == NULL)
            continue;
        rp_cli_cell(o, &cols[c], cell, sizeof(cell));
        fprintf(f, "  %-*s  %s\n", (int)width, cols[c].header, cell);
    }
}

/* ---------------------------------------------------------------- durations and times */

/* Reads 1-18 digits at *p into *v. 0, or RP_EINVAL (no digit, too many). */
static int read_number(const char **p, int64_t *v)
{
    int64_t n = 0;
    int digits = 0;

    while (**p >= '0' && **p <= '9') {
        if (++digits > 18)
            return RP_EINVAL;
        n = n * 10 + (**p - '0');
        (*p)++;
    }
    if (digits == 0)
        return RP_EINVAL;
    *v = n;
    return 0;
}

/* Adds n units of unit seconds to *total, bounded by RP_CLI_DURATION_MAX. */
static int add_units(int64_t *total, int64_t n, int64_t unit)
{
    if (n > RP_CLI_DURATION_MAX / unit || *total > RP_CLI_DURATION_MAX - n * unit)
        return RP_EINVAL;
    *total += n * unit;
    return 0;
}

static int64_t unit_seconds(char u)
{
    switch (rp_lower(u)) {
    case 's': return 1;
    case 'm': return 60;
    case 'h': return 3600;
    case 'd': return 86400;
    case 'w': return 7 * 86400;
    default: return 0;
    }
}

int rp_cli_parse_duration(const char *s, int64_t *secs)
{
    const char *p = s;
    int64_t total = 0, n, unit;

    if (s == NULL || *s == '\0')
        return RP_EINVAL;
    if (*s == 'P' || *s == 'p')
        return rp_iso_duration_parse(s, strlen(s), secs) == 0 ? 0 : RP_EINVAL;
    while (*p != '\0') {
        if (read_number(&p, &n) != 0 || (unit = unit_seconds(*p)) == 0)
            return RP_EINVAL;
        if (add_units(&total, n, unit) != 0)
            return RP_EINVAL;
        p++;
    }
    if (total <= 0)
        return RP_EINVAL;
    *secs = total;
    return 0;
}

int rp_cli_parse_time(const char *s, int64_t *t)
{
    if (s == NULL)
        return RP_EINVAL;
    return rp_iso_time_parse(s, strlen(s), t) == 0 ? 0 : RP_EINVAL;
}

int rp_cli_parse_expiry(const char *s, int64_t now, int64_t *t)
{
    int64_t v;

    if (s == NULL)
        return RP_EINVAL;
    /* A time starts with a four-digit year and a '-'; a duration never has a '-'. */
    if (strlen(s) > 4 && s[4] == '-') {
        if (rp_cli_parse_time(s, &v) != 0 || v <= now)
            return RP_EINVAL;
    } else {
        if (rp_cli_parse_duration(s, &v) != 0)
            return RP_EINVAL;
        v += now;
    }
    *t = v;
    return 0;
}

void rp_cli_format_time(int64_t t, char out[21])
{
    if (t < 0)
        t = 0;
    if (t > (int64_t)253402300799) /* 9999-12-31T23:59:59Z */
        t = (int64_t)253402300799;
    rp_iso_time(t, out);
}

void rp_cli_format_duration(int64_t secs, char *out, size_t cap)
{
    int64_t h = secs / 3600, m = secs / 60 % 60, s = secs % 60;
    size_t o;

    o = (size_t)snprintf(out, cap, "PT");
    if (h > 0 && o < cap)
        o += (size_t)snprintf(out + o, cap - o, "%" PRId64 "H", h);
    if (m > 0 && o < cap)
        o += (size_t)snprintf(out + o, cap - o, "%" PRId64 "M", m);
    if ((s > 0 || secs <= 0) && o < cap)
        snprintf(out + o, cap - o, "%" PRId64 "S", s);
}

/* ---------------------------------------------------------------- secrets from the terminal */

static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

static void restore_tty_and_die(int sig)
{
    if (tty_changed)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

int rp_cli_read_secret(const char *prompt, const char *what, char *out, size_t cap, size_t *len)
{
    struct sigaction sa, old_int, old_term;
    struct termios t;
    size_t n = 0;
    int tty = isatty(STDIN_FILENO), exitc = RP_EXIT_OK;

    if (tty) {
        fputs(prompt, stderr);
        fflush(stderr);
        if (tcgetattr(STDIN_FILENO, &saved_tty) == 0) {
            memset(&sa, 0, sizeof(sa));
            sa.sa_handler = restore_tty_and_die;
            sigemptyset(&sa.sa_mask);
            sigaction(SIGINT, &sa, &old_int);
            sigaction(SIGTERM, &sa, &old_term);
            t = saved_tty;
            t.c_lflag &= ~(tcflag_t)ECHO;
            t.c_lflag |= ECHONL;
            if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0)
                tty_changed = 1;
        }
    }
    for (;;) {
        char c;
        ssize_t r = read(STDIN_FILENO, &c, 1);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == '\n')
            break;
        if (n + 1 >= cap) {
            exitc = rp_cli_fail(RP_EXIT_USAGE, "the %s is longer than %zu bytes", what, cap - 1);
            break;
        }
        out[n++] = c;
    }
    if (n > 0 && out[n - 1] == '\r')
        n--;
    out[n] = '\0';
    if (tty_changed) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
        tty_changed = 0;
    }
    if (tty) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    if (exitc == RP_EXIT_OK && n == 0)
        exitc = rp_cli_usage_error("no %s given", what);
    if (exitc != RP_EXIT_OK)
        OPENSSL_cleanse(out, cap);
    if (len != NULL)
        *len = exitc == RP_EXIT_OK ? n : 0;
    return exitc;
}

/* ---------------------------------------------------------------- --follow */

static volatile sig_atomic_t follow_stop;
static struct sigaction follow_old_int, follow_old_term;

static void on_follow_stop(int sig)
{
    (void)sig;
    follow_stop = 1;
}

void rp_cli_follow_begin(void)
{
    struct sigaction sa;

    follow_stop = 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_follow_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &follow_old_int);
    sigaction(SIGTERM, &sa, &follow_old_term);
}

int rp_cli_follow_stopped(void)
{
    return follow_stop != 0;
}

void rp_cli_follow_pause(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (!follow_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void rp_cli_follow_end(void)
{
    sigaction(SIGINT, &follow_old_int, NULL);
    sigaction(SIGTERM, &follow_old_term, NULL);
}
