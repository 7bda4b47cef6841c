/*
 * config.c - the server configuration: one table of keys, two ways in (strings and JSON).
 *
 * Each key is a row in keys[] with a kind and, for integers, a range. Flags and environment
 * variables arrive as strings (rp_config_set); the file arrives as JSON values. Both paths end
 * in the same per-kind checks, so a key has one rule whatever its source, and every message is
 * "<source>: <key>: <reason>". Values quoted back in messages are escaped and cut short: they
 * come from operators, but a log viewer should never be fed raw control bytes.
 */
#include "server/config.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/str.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum {
    K_PATH,            /* non-empty path; JSON null unsets it when nullable */
    K_DOMAIN,          /* DNS name, lower-cased */
    K_HOSTPORT,        /* HOST:PORT */
    K_HTTP_LISTEN,     /* HOST:PORT, or "" / "off" / false to disable */
    K_IDENTITY_LISTEN, /* loopback HOST:PORT, or "" / "off" / false to disable */
    K_CLIENT_CERTS,    /* "off" or "optional" */
    K_INT,             /* decimal integer in [min, max], stored by width */
    K_TLS_VERSION,     /* "1.2" | "1.3" */
    K_CERTS,           /* array of {"cert","key"} */
    K_ACCESS_LOG,      /* "off" | "stderr" | "stdout" | path */
    K_ERROR_LOG,       /* "stderr" | path */
    K_LOG_LEVEL,       /* debug | info | warn | error */
    K_USER             /* a user name or a numeric uid, never root */
} key_kind;

typedef enum { W_INT, W_UNSIGNED, W_SIZE } int_width;

typedef struct key_def {
    const char *name;
    key_kind kind;
    size_t off; /* offset of the field in rp_config */
    int_width width;
    uint64_t min, max;
    int nullable; /* JSON null resets the field to NULL */
} key_def;

#define F(field)    offsetof(rp_config, field)
#define TIMEOUT_MIN 1000
#define TIMEOUT_MAX 3600000
#define BODY_MAX    ((uint64_t)1 << 34)

static const key_def keys[] = {
    {"data", K_PATH, F(data_dir), W_INT, 0, 0, 1},
    {"domain", K_DOMAIN, F(domain), W_INT, 0, 0, 1},
    {"listen", K_HOSTPORT, F(listen), W_INT, 0, 0, 0},
    {"http_listen", K_HTTP_LISTEN, F(http_listen), W_INT, 0, 0, 0},
    {"identity_listen", K_IDENTITY_LISTEN, F(identity_listen), W_INT, 0, 0, 0},
    {"static", K_PATH, F(static_root), W_INT, 0, 0, 1},
    {"workers", K_INT, F(workers), W_INT, 0, 256, 0},
    {"tls.min_version", K_TLS_VERSION, F(tls_min_version), W_INT, 0, 0, 0},
    {"tls.client_certificates", K_CLIENT_CERTS, F(client_certs), W_INT, 0, 0, 0},
    {"tls.ticket_rotation_s", K_INT, F(ticket_rotate_s), W_INT, 60, 86400, 0},
    {"tls.certificates", K_CERTS, F(certs), W_INT, 0, 0, 0},
    {"limits.max_connections", K_INT, F(max_connections), W_SIZE, 1, 1000000, 0},
    {"limits.max_body_bytes", K_INT, F(max_body_bytes), W_SIZE, 0, BODY_MAX, 0},
    {"limits.header_timeout_ms", K_INT, F(header_timeout_ms), W_UNSIGNED, TIMEOUT_MIN, TIMEOUT_MAX,
     0},
    {"limits.body_timeout_ms", K_INT, F(body_timeout_ms), W_UNSIGNED, TIMEOUT_MIN, TIMEOUT_MAX, 0},
    {"limits.idle_timeout_ms", K_INT, F(idle_timeout_ms), W_UNSIGNED, TIMEOUT_MIN, TIMEOUT_MAX, 0},
    {"limits.write_timeout_ms", K_INT, F(write_timeout_ms), W_UNSIGNED, TIMEOUT_MIN, TIMEOUT_MAX,
     0},
    /* 0 is allowed: close at once instead of draining. */
    {"limits.drain_timeout_ms", K_INT, F(drain_timeout_ms), W_UNSIGNED, 0, TIMEOUT_MAX, 0},
    {"log.access", K_ACCESS_LOG, F(access_log), W_INT, 0, 0, 0},
    {"log.error", K_ERROR_LOG, F(error_log), W_INT, 0, 0, 0},
    {"log.level", K_LOG_LEVEL, F(log_level), W_INT, 0, 0, 0},
    {"keys.pkcs11_module", K_PATH, F(pkcs11_module), W_INT, 0, 0, 1},
    {"keys.pkcs11_token", K_PATH, F(pkcs11_token), W_INT, 0, 0, 1},
    {"keys.pkcs11_pin_file", K_PATH, F(pkcs11_pin_file), W_INT, 0, 0, 1},
    {"keys.passphrase_file", K_PATH, F(passphrase_file), W_INT, 0, 0, 1},
    {"outbound_ca", K_PATH, F(outbound_ca), W_INT, 0, 0, 1},
    {"user", K_USER, F(user), W_INT, 0, 0, 1},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Environment names that belong to the CLI and client, not to the server configuration. */
static const char *const env_skip[] = {
    "RAMPART_DATA",       "RAMPART_URL",        "RAMPART_CA",          "RAMPART_TOKEN",
    "RAMPART_PASSPHRASE", "RAMPART_PKCS11_PIN", "RAMPART_KEY_PROVIDER"};

/* ---- messages ---- */

static int fail(char *err, size_t errlen, int rc, const char *source, const char *key,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int fail(char *err, size_t errlen, int rc, const char *source, const char *key,
                const char *fmt, ...)
{
    va_list ap;
    int n;

    if (err == NULL || errlen == 0)
        return rc;
    if (key != NULL)
        n = snprintf(err, errlen, "%s: %s: ", source, key);
    else
        n = snprintf(err, errlen, "%s: ", source);
    if (n < 0 || (size_t)n >= errlen)
        return rc;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return rc;
}

#define QUOTE_MAX 64
#define QUOTE_CAP (QUOTE_MAX * 4 + 8)

/* Writes at most QUOTE_MAX bytes of s into out[cap] with control bytes escaped as \xNN and
 * "..." when cut. quoted adds surrounding double quotes and escapes '"' and '\\' too. */
static void escape(const char *s, int quoted, char *out, size_t cap)
{
    size_t o = 0, i;

    if (cap < 8)
        return;
    if (quoted)
        out[o++] = '"';
    for (i = 0; i < QUOTE_MAX && s[i] != '\0' && o + 8 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f || (quoted && (ch == '"' || ch == '\\'))) {
            snprintf(out + o, cap - o, "\\x%02x", ch);
            o += 4;
        } else {
            out[o++] = (char)ch;
        }
    }
    if (s[i] != '\0') {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    if (quoted)
        out[o++] = '"';
    out[o] = '\0';
}

static void quote(const char *s, char *out, size_t cap)
{
    escape(s, 1, out, cap);
}

/* A short rendering of a JSON value for messages: strings quoted, others as compact JSON. */
static void describe_json(const json_t *v, char *out, size_t cap)
{
    char *s;

    if (json_is_string(v)) {
        quote(json_string_value(v), out, cap);
        return;
    }
    s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL) {
        rp_strlcpy(out, "a JSON value", cap);
        return;
    }
    escape(s, 0, out, cap);
    free(s); /* allocated by jansson's allocator, which is libc's */
}

/* ---- value checks shared by both sources ---- */

static const key_def *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* True if some key lives under "prefix." (so a JSON object named prefix is a section). */
static int is_section(const char *prefix)
{
    size_t n = strlen(prefix);

    for (size_t i = 0; i < NKEYS; i++)
        if (strncmp(keys[i].name, prefix, n) == 0 && keys[i].name[n] == '.')
            return 1;
    return 0;
}

static int valid_label_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-';
}

/* A DNS name: dot-separated labels of letters, digits and inner hyphens, at most 253 bytes,
 * and not something that looks like a (broken) IPv4 address. */
static int valid_dns_name(const char *s)
{
    size_t n = strlen(s), label = 0;
    int all_numeric = 1;

    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i <= n; i++) {
        char ch = s[i];
        if (ch == '.' || ch == '\0') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!valid_label_char(ch))
            return 0;
        if (label == 0 && ch == '-')
            return 0;
        if (ch < '0' || ch > '9')
            all_numeric = 0;
        label++;
    }
    return !all_numeric;
}

int rp_hostport_parse(const char *s, rp_hostport *out)
{
    const char *colon, *host, *port_s;
    size_t hostlen;
    char host_buf[sizeof(out->host)];
    unsigned char addr[16];
    uint64_t port;

    if (s == NULL)
        return RP_EINVAL;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return RP_EINVAL;
        host = s + 1;
        hostlen = (size_t)(close - host);
        port_s = close + 2;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return RP_EINVAL;
        host = s;
        hostlen = (size_t)(colon - s);
        port_s = colon + 1;
        /* An unbracketed IPv6 address would make the port ambiguous. */
        if (memchr(host, ':', hostlen) != NULL)
            return RP_EINVAL;
    }
    if (hostlen == 0 || hostlen >= sizeof(host_buf))
        return RP_EINVAL;
    if (rp_parse_u64(port_s, strlen(port_s), 65535, &port) != 0)
        return RP_EINVAL;
    memcpy(host_buf, host, hostlen);
    host_buf[hostlen] = '\0';
    if (s[0] == '[') {
        if (inet_pton(AF_INET6, host_buf, addr) != 1)
            return RP_EINVAL;
    } else if (inet_pton(AF_INET, host_buf, addr) != 1 && !valid_dns_name(host_buf)) {
        return RP_EINVAL;
    }
    memcpy(out->host, host_buf, hostlen + 1);
    out->port = (int)port;
    return 0;
}

/* Every stored string must survive rp_config_to_json, and jansson only holds UTF-8. */
static int valid_utf8(const char *s)
{
    json_t *j = json_string(s);

    json_decref(j);
    return j != NULL;
}

static int set_string(char **field, const char *value)
{
    char *copy = rp_strdup(value);

    if (copy == NULL)
        return RP_ENOMEM;
    rp_free(*field);
    *field = copy;
    return 0;
}

static void free_certs(rp_certpair *certs, size_t n)
{
    if (certs == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        rp_free(certs[i].cert);
        rp_free(certs[i].key);
    }
    rp_free(certs);
}

/* A path-like string: non-empty and bounded. Returns 0 or fills err. */
static int check_path(const key_def *k, const char *v, const char *source, char *err, size_t errlen)
{
    if (v[0] == '\0')
        return fail(err, errlen, RP_EINVAL, source, k->name, "must be a non-empty path");
    if (strlen(v) > RP_CONFIG_PATH_MAX)
        return fail(err, errlen, RP_EINVAL, source, k->name, "path longer than %d bytes",
                    RP_CONFIG_PATH_MAX);
    return 0;
}

/* Applies a string value to a key of any kind but K_INT and K_CERTS. */
static int apply_string(rp_config *c, const key_def *k, const char *v, const char *source,
                        char *err, size_t errlen)
{
    char *field_base = (char *)c + k->off;
    char q[QUOTE_CAP];
    int rc;

    quote(v, q, sizeof(q));
    if (!valid_utf8(v))
        return fail(err, errlen, RP_EINVAL, source, k->name, "%s is not valid UTF-8", q);
    switch (k->kind) {
    case K_PATH:
        rc = check_path(k, v, source, err, errlen);
        if (rc != 0)
            return rc;
        break;
    case K_DOMAIN: {
        char *copy;
        if (!valid_dns_name(v))
            return fail(err, errlen, RP_EINVAL, source, k->name, "%s is not a DNS name", q);
        copy = rp_strdup(v);
        if (copy == NULL)
            return RP_ENOMEM;
        for (char *p = copy; *p; p++)
            *p = rp_lower(*p);
        rp_free(c->domain);
        c->domain = copy;
        return 0;
    }
    case K_HTTP_LISTEN:
        if (v[0] == '\0' || strcmp(v, "off") == 0) {
            c->http_enabled = 0;
            return 0;
        }
        if (rp_hostport_parse(v, &c->http_listen) != 0)
            return fail(err, errlen, RP_EINVAL, source, k->name, "%s is not HOST:PORT (or \"off\")",
                        q);
        c->http_enabled = 1;
        return 0;
    case K_IDENTITY_LISTEN:
        if (v[0] == '\0' || strcmp(v, "off") == 0) {
            c->identity_enabled = 0;
            return 0;
        }
        if (rp_hostport_parse(v, &c->identity_listen) != 0)
            return fail(err, errlen, RP_EINVAL, source, k->name, "%s is not HOST:PORT (or \"off\")",
                        q);
        /* Workloads authenticate with a header only: the endpoint must not leave the host. */
        if (strcmp(c->identity_listen.host, "127.0.0.1") != 0 &&
            strcmp(c->identity_listen.host, "::1") != 0 &&
            strcmp(c->identity_listen.host, "localhost") != 0)
            return fail(err, errlen, RP_EINVAL, source, k->name,
                        "%s is not a loopback address (127.0.0.1 or ::1)", q);
        c->identity_enabled = 1;
        return 0;
    case K_CLIENT_CERTS:
        if (strcmp(v, "off") == 0)
            c->client_certs = 0;
        else if (strcmp(v, "optional") == 0)
            c->client_certs = 1;
        else
            return fail(err, errlen, RP_EINVAL, source, k->name,
                        "%s is not \"off\" or \"optional\"", q);
        return 0;
    case K_HOSTPORT:
        if (rp_hostport_parse(v, (rp_hostport *)field_base) != 0)
            return fail(err, errlen, RP_EINVAL, source, k->name, "%s is not HOST:PORT", q);
        return 0;
    case K_TLS_VERSION:
        if (strcmp(v, "1.2") == 0)
            c->tls_min_version = 12;
        else if (strcmp(v, "1.3") == 0)
            c->tls_min_version = 13;
        else
            return fail(err, errlen, RP_EINVAL, source, k->name,
                        "must be \"1.2\" or \"1.3\", not %s", q);
        return 0;
    case K_ACCESS_LOG:
        rc = check_path(k, v, source, err, errlen);
        if (rc != 0)
            return fail(err, errlen, RP_EINVAL, source, k->name,
                        "must be \"off\", \"stderr\", \"stdout\" or a file path");
        break;
    case K_ERROR_LOG:
        /* A file called "off" or "stdout" in the working directory is never what was meant. */
        if (strcmp(v, "off") == 0 || strcmp(v, "stdout") == 0)
            return fail(err, errlen, RP_EINVAL, source, k->name,
                        "must be \"stderr\" or a file path, not %s", q);
        rc = check_path(k, v, source, err, errlen);
        if (rc != 0)
            return fail(err, errlen, RP_EINVAL, source, k->name,
                        "must be \"stderr\" or a file path");
        break;
    case K_LOG_LEVEL: {
        rp_log_level lvl;
        if (rp_log_level_parse(v, &lvl) != 0)
            return fail(err, errlen, RP_EINVAL, source, k->name,
                        "must be debug, info, warn or error, not %s", q);
        break;
    }
    case K_USER: {
        size_t n = strlen(v);
        int ok = n > 0 && n <= 32 && strcmp(v, "root") != 0 && strcmp(v, "0") != 0;
        for (size_t i = 0; i < n && ok; i++)
            ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '_' ||
                 (v[i] == '-' && i > 0);
        if (!ok)
            return fail(err, errlen, RP_EINVAL, source, k->name,
                        "must be a user name or uid other than root, not %s", q);
        break;
    }
    case K_INT:
    case K_CERTS: return RP_EINVAL; /* not reached: callers route these elsewhere */
    }
    rc = set_string((char **)field_base, v);
    return rc;
}

static void store_int(rp_config *c, const key_def *k, uint64_t v)
{
    char *p = (char *)c + k->off;

    switch (k->width) {
    case W_INT: *(int *)p = (int)v; break;
    case W_UNSIGNED: *(unsigned *)p = (unsigned)v; break;
    case W_SIZE: *(size_t *)p = (size_t)v; break;
    }
}

static uint64_t key_max(const key_def *k)
{
    /* max_body_bytes cannot exceed what size_t holds on a 32-bit build. */
    if (k->width == W_SIZE && (uint64_t)SIZE_MAX < k->max)
        return (uint64_t)SIZE_MAX;
    return k->max;
}

static int int_range_fail(const key_def *k, const char *got, const char *source, char *err,
                          size_t errlen)
{
    return fail(err, errlen, RP_EINVAL, source, k->name,
                "must be an integer from %llu to %llu (got %s)", (unsigned long long)k->min,
                (unsigned long long)key_max(k), got);
}

static int apply_int_string(rp_config *c, const key_def *k, const char *v, const char *source,
                            char *err, size_t errlen)
{
    uint64_t n;
    char q[QUOTE_CAP];

    if (rp_parse_u64(v, strlen(v), key_max(k), &n) != 0 || n < k->min) {
        quote(v, q, sizeof(q));
        return int_range_fail(k, q, source, err, errlen);
    }
    store_int(c, k, n);
    return 0;
}

/* Largest double below which every integer is exact. */
#define EXACT_DOUBLE_MAX 9007199254740992.0

/* reals: the file was re-read with integers as reals (see rp_config_load_file), so an integral
 * real stands for the integer it came from. */
static int apply_int_json(rp_config *c, const key_def *k, json_t *v, int reals, const char *source,
                          char *err, size_t errlen)
{
    char got[QUOTE_CAP];
    uint64_t n;
    int ok = 0;

    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        n = (uint64_t)json_integer_value(v);
        ok = 1;
    } else if (reals && json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= 0 && d <= EXACT_DOUBLE_MAX && (double)(uint64_t)d == d) {
            n = (uint64_t)d;
            ok = 1;
        }
    }
    if (ok && n >= k->min && n <= key_max(k)) {
        store_int(c, k, n);
        return 0;
    }
    if (reals && json_is_real(v) &&
        !(json_real_value(v) > -EXACT_DOUBLE_MAX && json_real_value(v) < EXACT_DOUBLE_MAX))
        rp_strlcpy(got, "a number too large", sizeof(got)); /* its digits were lost anyway */
    else
        describe_json(v, got, sizeof(got));
    return int_range_fail(k, got, source, err, errlen);
}

/* Reads one certificate pair member: a non-empty path string. */
static int cert_member(json_t *obj, const char *member, const char *name, const char *source,
                       char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, member);
    const char *s;

    if (!json_is_string(v) || json_string_length(v) == 0)
        return fail(err, errlen, RP_EINVAL, source, name, "\"%s\" must be the path of a PEM file",
                    member);
    s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return fail(err, errlen, RP_EINVAL, source, name, "\"%s\" must not contain NUL", member);
    if (json_string_length(v) > RP_CONFIG_PATH_MAX)
        return fail(err, errlen, RP_EINVAL, source, name, "\"%s\" longer than %d bytes", member,
                    RP_CONFIG_PATH_MAX);
    *out = rp_strdup(s);
    return *out == NULL ? RP_ENOMEM : 0;
}

/* tls.certificates from JSON: builds the whole new list, then swaps it in. */
static int apply_certs_json(rp_config *c, const key_def *k, json_t *v, const char *source,
                            char *err, size_t errlen)
{
    rp_certpair *list = NULL;
    size_t n, i;
    int rc = 0;

    if (!json_is_array(v))
        return fail(err, errlen, RP_EINVAL, source, k->name,
                    "must be an array of {\"cert\": path, \"key\": path}");
    n = json_array_size(v);
    if (n > RP_CONFIG_MAX_CERTS)
        return fail(err, errlen, RP_EINVAL, source, k->name, "more than %d certificates",
                    RP_CONFIG_MAX_CERTS);
    if (n > 0) {
        list = rp_calloc(n, sizeof(*list));
        if (list == NULL)
            return RP_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        const char *member;
        json_t *mv;
        char name[64];

        snprintf(name, sizeof(name), "%s[%zu]", k->name, i);
        if (!json_is_object(e)) {
            rc = fail(err, errlen, RP_EINVAL, source, name,
                      "must be an object {\"cert\": path, \"key\": path}");
            goto out;
        }
        json_object_foreach(e, member, mv)
        {
            if (strcmp(member, "cert") != 0 && strcmp(member, "key") != 0) {
                char q[QUOTE_CAP];
                quote(member, q, sizeof(q));
                rc = fail(err, errlen, RP_EINVAL, source, name,
                          "unknown member %s (expected \"cert\" and \"key\")", q);
                goto out;
            }
        }
        rc = cert_member(e, "cert", name, source, &list[i].cert, err, errlen);
        if (rc != 0)
            goto out;
        rc = cert_member(e, "key", name, source, &list[i].key, err, errlen);
        if (rc != 0)
            goto out;
    }
    free_certs(c->certs, c->ncerts);
    c->certs = list;
    c->ncerts = n;
    list = NULL;
out:
    free_certs(list, n);
    return rc;
}

/* Applies a JSON value to key k (the file path). */
static int apply_json(rp_config *c, const key_def *k, json_t *v, int reals, const char *source,
                      char *err, size_t errlen)
{
    char got[QUOTE_CAP];
    const char *s;

    switch (k->kind) {
    case K_INT: return apply_int_json(c, k, v, reals, source, err, errlen);
    case K_CERTS: return apply_certs_json(c, k, v, source, err, errlen);
    case K_HTTP_LISTEN:
        if (json_is_false(v)) {
            c->http_enabled = 0;
            return 0;
        }
        break;
    case K_IDENTITY_LISTEN:
        if (json_is_false(v)) {
            c->identity_enabled = 0;
            return 0;
        }
        break;
    case K_PATH:
    case K_DOMAIN:
    case K_USER:
        if (json_is_null(v) && k->nullable) {
            char **field = (char **)((char *)c + k->off);
            rp_free(*field);
            *field = NULL;
            return 0;
        }
        break;
    default: break;
    }
    if (!json_is_string(v)) {
        describe_json(v, got, sizeof(got));
        return fail(err, errlen, RP_EINVAL, source, k->name, "must be a string (got %s)", got);
    }
    s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return fail(err, errlen, RP_EINVAL, source, k->name, "must not contain NUL");
    return apply_string(c, k, s, source, err, errlen);
}

/* ---- public API ---- */

void rp_config_defaults(rp_config *c)
{
    memset(c, 0, sizeof(*c));
    rp_strlcpy(c->listen.host, "127.0.0.1", sizeof(c->listen.host));
    c->listen.port = 8443;
    rp_strlcpy(c->http_listen.host, "127.0.0.1", sizeof(c->http_listen.host));
    c->http_listen.port = 8080;
    c->http_enabled = 1;
    rp_strlcpy(c->identity_listen.host, "127.0.0.1", sizeof(c->identity_listen.host));
    c->identity_listen.port = 8459;
    c->identity_enabled = 1;
    c->workers = 0;
    c->tls_min_version = 12;
    c->ticket_rotate_s = 3600;
    c->max_connections = 10000;
    c->max_body_bytes = 1048576;
    c->header_timeout_ms = 10000;
    c->body_timeout_ms = 15000;
    c->idle_timeout_ms = 30000;
    c->write_timeout_ms = 30000;
    c->drain_timeout_ms = 10000;
    c->access_log = rp_strdup("stderr");
    c->error_log = rp_strdup("stderr");
    c->log_level = rp_strdup("info");
    /* Start-up only, three tiny strings: there is no sensible way to run without them. */
    if (c->access_log == NULL || c->error_log == NULL || c->log_level == NULL)
        abort();
}

void rp_config_free(rp_config *c)
{
    if (c == NULL)
        return;
    rp_free(c->data_dir);
    rp_free(c->domain);
    rp_free(c->static_root);
    rp_free(c->pkcs11_module);
    rp_free(c->pkcs11_token);
    rp_free(c->pkcs11_pin_file);
    rp_free(c->passphrase_file);
    rp_free(c->outbound_ca);
    rp_free(c->user);
    free_certs(c->certs, c->ncerts);
    rp_free(c->access_log);
    rp_free(c->error_log);
    rp_free(c->log_level);
    memset(c, 0, sizeof(*c));
}

int rp_config_set(rp_config *c, const char *key, const char *value, const char *source, char *err,
                  size_t errlen)
{
    const key_def *k = find_key(key);
    json_t *j;
    json_error_t jerr;
    int rc;

    if (source == NULL)
        source = "config";
    if (k == NULL)
        return fail(err, errlen, RP_ENOENT, source, key, "unknown setting");
    if (value == NULL)
        return fail(err, errlen, RP_EINVAL, source, key, "missing value");
    switch (k->kind) {
    case K_INT: return apply_int_string(c, k, value, source, err, errlen);
    case K_CERTS:
        /* Flags and the environment carry the list as the same JSON text as the file. */
        j = json_loads(value, JSON_REJECT_DUPLICATES, &jerr);
        if (j == NULL)
            return fail(err, errlen, RP_EINVAL, source, key,
                        "must be a JSON array of {\"cert\": path, \"key\": path}: %s", jerr.text);
        rc = apply_certs_json(c, k, j, source, err, errlen);
        json_decref(j);
        return rc;
    default: return apply_string(c, k, value, source, err, errlen);
    }
}

/* Applies the members of obj, whose dotted prefix is prefix ("" at the top). */
static int apply_object(rp_config *c, json_t *obj, const char *prefix, int reals,
                        const char *source, char *err, size_t errlen)
{
    const char *member;
    json_t *v;
    int rc;

    json_object_foreach(obj, member, v)
    {
        char name[128];
        const key_def *k;

        if (snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "." : "", member) >=
                (int)sizeof(name) ||
            strlen(member) == 0) {
            char q[QUOTE_CAP];
            quote(member, q, sizeof(q));
            return fail(err, errlen, RP_EINVAL, source, NULL, "unknown key %s", q);
        }
        k = find_key(name);
        if (k != NULL) {
            rc = apply_json(c, k, v, reals, source, err, errlen);
        } else if (is_section(name)) {
            if (!json_is_object(v))
                return fail(err, errlen, RP_EINVAL, source, name, "must be an object");
            rc = apply_object(c, v, name, reals, source, err, errlen);
        } else {
            char q[QUOTE_CAP];
            quote(name, q, sizeof(q));
            return fail(err, errlen, RP_EINVAL, source, NULL, "unknown key %s", q);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Reads at most max bytes of path into a new buffer. 0, RP_ENOENT, RP_EIO, RP_ETOOBIG, NOMEM. */
static int read_file(const char *path, size_t max, char **out, size_t *outlen, char *err,
                     size_t errlen)
{
    int fd, rc = 0;
    struct stat st;
    char *data = NULL;
    size_t len = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return fail(err, errlen, e == ENOENT ? RP_ENOENT : RP_EIO, path, NULL, "%s", strerror(e));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = fail(err, errlen, RP_EIO, path, NULL, "not a regular file");
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        rc = fail(err, errlen, RP_ETOOBIG, path, NULL, "larger than %zu bytes", max);
        goto out;
    }
    data = rp_malloc((size_t)st.st_size + 1);
    if (data == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    while (len < (size_t)st.st_size) {
        ssize_t r = read(fd, data + len, (size_t)st.st_size - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = fail(err, errlen, RP_EIO, path, NULL, "%s", strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    data[len] = '\0';
    *out = data;
    *outlen = len;
    data = NULL;
out:
    rp_free(data);
    close(fd);
    return rc;
}

/*
 * jansson refuses a file holding an integer beyond 64 bits without saying which member it was.
 * To name the key like every other bad value, re-read the file with integers as reals and apply
 * it to a scratch config: the huge value then fails its own key's check. Returns that error, or
 * 0 if (unexpectedly) nothing failed and the caller should report the parse error.
 */
static int name_huge_integer(const char *data, size_t len, const char *path, char *err,
                             size_t errlen)
{
    rp_config scratch;
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
    int rc = 0;

    if (root == NULL)
        return 0;
    rp_config_defaults(&scratch);
    if (json_is_object(root))
        rc = apply_object(&scratch, root, "", 1, path, err, errlen);
    rp_config_free(&scratch);
    json_decref(root);
    return rc;
}

int rp_config_load_file(rp_config *c, const char *path, char *err, size_t errlen)
{
    char *data = NULL;
    size_t len = 0;
    json_t *root = NULL;
    json_error_t jerr;
    int rc;

    rc = read_file(path, RP_CONFIG_FILE_MAX, &data, &len, err, errlen);
    if (rc != 0)
        return rc;
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL && json_error_code(&jerr) == json_error_numeric_overflow) {
        rc = name_huge_integer(data, len, path, err, errlen);
        if (rc != 0)
            goto out;
    }
    if (root == NULL) {
        rc = fail(err, errlen, RP_EPARSE, path, NULL, "line %d column %d: %s", jerr.line,
                  jerr.column, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        rc = fail(err, errlen, RP_EPARSE, path, NULL, "must hold a JSON object");
        goto out;
    }
    rc = apply_object(c, root, "", 0, path, err, errlen);
out:
    json_decref(root);
    rp_free(data);
    return rc;
}

/* Writes the environment name of key into out ("limits.x" -> "RAMPART_LIMITS_X"). */
static void env_name(const char *key, char *out, size_t cap)
{
    size_t o = 0;

    rp_strlcpy(out, "RAMPART_", cap);
    o = strlen(out);
    for (size_t i = 0; key[i] != '\0' && o + 1 < cap; i++) {
        char ch = key[i];
        if (ch == '.')
            ch = '_';
        else if (ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        out[o++] = ch;
    }
    out[o] = '\0';
}

int rp_config_load_env(rp_config *c, char **envp, char *err, size_t errlen)
{
    if (envp == NULL)
        return 0;
    for (char **e = envp; *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        size_t namelen;
        int skip = 0;

        if (eq == NULL || strncmp(*e, "RAMPART_", 8) != 0)
            continue;
        namelen = (size_t)(eq - *e);
        for (size_t i = 0; i < sizeof(env_skip) / sizeof(env_skip[0]); i++)
            if (strlen(env_skip[i]) == namelen && memcmp(env_skip[i], *e, namelen) == 0)
                skip = 1;
        if (skip)
            continue;
        for (size_t i = 0; i < NKEYS; i++) {
            char name[128];
            env_name(keys[i].name, name, sizeof(name));
            if (strlen(name) == namelen && memcmp(name, *e, namelen) == 0) {
                int rc = rp_config_set(c, keys[i].name, eq + 1, name, err, errlen);
                if (rc != 0)
                    return rc;
                break;
            }
        }
    }
    return 0;
}

static int is_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

int rp_config_validate(const rp_config *c, char *err, size_t errlen)
{
    if (c->http_enabled && c->listen.port != 0 && c->listen.port == c->http_listen.port &&
        (strcmp(c->listen.host, c->http_listen.host) == 0 || is_wildcard(c->listen.host) ||
         is_wildcard(c->http_listen.host)))
        return fail(err, errlen, RP_EINVAL, "config", "http_listen",
                    "port %d is already used by listen (%s:%d); choose another or \"off\"",
                    c->http_listen.port, c->listen.host, c->listen.port);
    if (c->identity_enabled && c->identity_listen.port != 0 &&
        ((c->listen.port == c->identity_listen.port &&
          (strcmp(c->listen.host, c->identity_listen.host) == 0 || is_wildcard(c->listen.host))) ||
         (c->http_enabled && c->http_listen.port == c->identity_listen.port &&
          (strcmp(c->http_listen.host, c->identity_listen.host) == 0 ||
           is_wildcard(c->http_listen.host)))))
        return fail(err, errlen, RP_EINVAL, "config", "identity_listen",
                    "port %d is already used by another listener; choose another or \"off\"",
                    c->identity_listen.port);
    return 0;
}

/* Sets obj[name] to a string, or null if s is NULL. 0 or RP_ENOMEM. */
static int put_str(json_t *obj, const char *name, const char *s)
{
    return json_object_set_new(obj, name, s ? json_string(s) : json_null()) == 0 ? 0 : RP_ENOMEM;
}

static int put_int(json_t *obj, const char *name, uint64_t v)
{
    return json_object_set_new(obj, name, json_integer((json_int_t)v)) == 0 ? 0 : RP_ENOMEM;
}

static int put_hostport(json_t *obj, const char *name, const rp_hostport *hp)
{
    char s[sizeof(hp->host) + 16];
    int v6 = strchr(hp->host, ':') != NULL;

    snprintf(s, sizeof(s), "%s%s%s:%d", v6 ? "[" : "", hp->host, v6 ? "]" : "", hp->port);
    return put_str(obj, name, s);
}

json_t *rp_config_to_json(const rp_config *c)
{
    json_t *root = json_object(), *tls = json_object(), *limits = json_object();
    json_t *log = json_object(), *certs = json_array();
    int rc = 0;

    if (root == NULL || tls == NULL || limits == NULL || log == NULL || certs == NULL)
        goto fail;
    rc |= put_str(root, "data", c->data_dir);
    rc |= put_str(root, "domain", c->domain);
    rc |= put_hostport(root, "listen", &c->listen);
    if (c->http_enabled)
        rc |= put_hostport(root, "http_listen", &c->http_listen);
    else
        rc |= put_str(root, "http_listen", "off");
    if (c->identity_enabled)
        rc |= put_hostport(root, "identity_listen", &c->identity_listen);
    else
        rc |= put_str(root, "identity_listen", "off");
    rc |= put_str(root, "static", c->static_root);
    rc |= put_str(root, "outbound_ca", c->outbound_ca);
    rc |= put_str(root, "user", c->user);
    rc |= put_int(root, "workers", (uint64_t)c->workers);
    {
        json_t *keys_obj = json_object();
        if (keys_obj == NULL || json_object_set_new(root, "keys", keys_obj) != 0)
            goto fail;
        rc |= put_str(keys_obj, "pkcs11_module", c->pkcs11_module);
        rc |= put_str(keys_obj, "pkcs11_token", c->pkcs11_token);
        rc |= put_str(keys_obj, "pkcs11_pin_file", c->pkcs11_pin_file);
        rc |= put_str(keys_obj, "passphrase_file", c->passphrase_file);
    }

    rc |= put_str(tls, "min_version", c->tls_min_version == 13 ? "1.3" : "1.2");
    rc |= put_int(tls, "ticket_rotation_s", (uint64_t)c->ticket_rotate_s);
    rc |= put_str(tls, "client_certificates", c->client_certs ? "optional" : "off");
    for (size_t i = 0; i < c->ncerts; i++) {
        json_t *pair = json_object();
        if (pair == NULL || json_array_append_new(certs, pair) != 0)
            goto fail;
        rc |= put_str(pair, "cert", c->certs[i].cert);
        rc |= put_str(pair, "key", c->certs[i].key);
    }
    rc |= json_object_set(tls, "certificates", certs) == 0 ? 0 : RP_ENOMEM;

    rc |= put_int(limits, "max_connections", c->max_connections);
    rc |= put_int(limits, "max_body_bytes", c->max_body_bytes);
    rc |= put_int(limits, "header_timeout_ms", c->header_timeout_ms);
    rc |= put_int(limits, "body_timeout_ms", c->body_timeout_ms);
    rc |= put_int(limits, "idle_timeout_ms", c->idle_timeout_ms);
    rc |= put_int(limits, "write_timeout_ms", c->write_timeout_ms);
    rc |= put_int(limits, "drain_timeout_ms", c->drain_timeout_ms);

    rc |= put_str(log, "access", c->access_log);
    rc |= put_str(log, "error", c->error_log);
    rc |= put_str(log, "level", c->log_level);

    rc |= json_object_set(root, "tls", tls) == 0 ? 0 : RP_ENOMEM;
    rc |= json_object_set(root, "limits", limits) == 0 ? 0 : RP_ENOMEM;
    rc |= json_object_set(root, "log", log) == 0 ? 0 : RP_ENOMEM;
    if (rc != 0)
        goto fail;
    json_decref(certs);
    json_decref(tls);
    json_decref(limits);
    json_decref(log);
    return root;
fail:
    json_decref(certs);
    json_decref(tls);
    json_decref(limits);
    json_decref(log);
    json_decref(root);
    return NULL;
}
