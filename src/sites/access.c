/*
 * access.c - App Service access restrictions: the rule parser, the per-request decision, the
 * GET view, and the CIDR helpers they share.
 *
 * Workload (see access.h): parsed rarely, checked on every request of an app, from every loop
 * thread at once. So the parser does all the work that can be done once (every address and
 * CIDR is turned into bytes, every host pattern lowercased, the rules sorted) and the check
 * only compares bytes, on the stack, without locks or allocation. A rule is a fixed-size
 * struct (a few KiB with its header filters); at most RP_ACCESS_MAX_RULES of them live in one
 * array owned by the rp_access.
 *
 * Addresses: IPv4 is stored as IPv4-mapped IPv6 so one 16-byte compare serves both families;
 * the v4 flag keeps the families apart (an IPv6 range never matches an IPv4 client, and an
 * IPv4-mapped client "::ffff:1.2.3.4", which is what a dual-stack listener reports, is an IPv4
 * client). inet_pton does the parsing; we add what it leaves to the platform: no embedded NUL,
 * no leading zeros in dotted quads, a strict prefix.
 *
 * Everything in a rule set is the app owner's own input, and so is everything in a request
 * header; the client address is the only thing the client cannot choose. Header filters are
 * therefore conditions an honest proxy satisfies, not proof of anything, and a check has to
 * survive any header bytes (garbage X-Forwarded-For entries are skipped, never fatal).
 */
#include "sites/access.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The header filters, in the order to_json prints them. */
enum { H_XFH, H_XFF, H_FDID, H_PROBE, H_COUNT };

static const char *const hdr_names[H_COUNT] = {"x-forwarded-host", "x-forwarded-for",
                                               "x-azure-fdid", "x-fd-healthprobe"};

enum { TAG_NONE, TAG_DEFAULT, TAG_XFFPROXY };

typedef struct hfilter {
    int present; /* the key was given (to_json prints it back, even as an empty list) */
    unsigned n;
    char val[RP_ACCESS_MAX_HEADER_VALUES][RP_ACCESS_HEADER_VALUE_MAX + 1]; /* not for XFF */
    rp_cidr cidr[RP_ACCESS_MAX_HEADER_VALUES];                             /* XFF only */
} hfilter;

typedef struct rule {
    uint32_t priority;
    size_t index; /* position in the caller's list: equal priorities keep it */
    int allow;
    int any;
    int tag;
    unsigned nsrc;
    rp_cidr src[RP_ACCESS_MAX_SOURCES];
    int has_name, has_desc, has_headers;
    char name[RP_ACCESS_NAME_MAX + 1];
    char desc[RP_ACCESS_DESC_MAX + 1];
    hfilter h[H_COUNT];
} rule;

struct rp_access {
    size_t n;
    rule *rules; /* n of them, in decision order */
    int default_allow;
};

/* ---- addresses ---------------------------------------------------------------------------- */

static const unsigned char mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* 1 unless a number in the dotted quad s[0..n) has a leading zero (octal to some parsers). */
static int dotted_ok(const char *s, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '0' && (i == 0 || s[i - 1] == '.') && s[i + 1] >= '0' && s[i + 1] <= '9')
            return 0;
    return 1;
}

/*
 * Parses one address (no prefix) into addr (IPv4 mapped), *v4 when it is or maps IPv4, and
 * *text6 when it was written in IPv6 notation. 0 or RP_EPARSE.
 */
static int parse_addr(const char *s, size_t n, unsigned char addr[16], int *v4, int *text6)
{
    char buf[INET6_ADDRSTRLEN];
    const char *colon;

    if (n == 0 || n >= sizeof(buf) || memchr(s, '\0', n) != NULL)
        return RP_EPARSE;
    memcpy(buf, s, n);
    buf[n] = '\0';
    colon = strrchr(buf, ':');
    if (colon != NULL) {
        const char *tail = colon + 1;
        if (strchr(tail, '.') != NULL && !dotted_ok(tail, strlen(tail)))
            return RP_EPARSE;
        if (inet_pton(AF_INET6, buf, addr) != 1)
            return RP_EPARSE;
        *v4 = memcmp(addr, mapped_prefix, sizeof(mapped_prefix)) == 0;
        *text6 = 1;
        return 0;
    }
    if (!dotted_ok(buf, n))
        return RP_EPARSE;
    memcpy(addr, mapped_prefix, sizeof(mapped_prefix));
    if (inet_pton(AF_INET, buf, addr + 12) != 1)
        return RP_EPARSE;
    *v4 = 1;
    *text6 = 0;
    return 0;
}

int rp_ip_parse(const char *s, size_t n, unsigned char addr[16], int *v4)
{
    unsigned char a[16];
    int is4, text6;

    if (s == NULL || parse_addr(s, n, a, &is4, &text6) != 0)
        return RP_EPARSE;
    memcpy(addr, a, sizeof(a));
    *v4 = is4;
    return 0;
}

/* Bits of the 16-byte form that a range of c->bits covers. */
static unsigned total_bits(const rp_cidr *c)
{
    return c->v4 ? 96 + c->bits : c->bits;
}

static void mask_host_bits(rp_cidr *c)
{
    unsigned total = total_bits(c);

    for (unsigned i = 0; i < 16; i++) {
        if (total >= 8 * (i + 1))
            continue;
        if (total <= 8 * i)
            c->addr[i] = 0;
        else
            c->addr[i] &= (unsigned char)(0xff << (8 - (total - 8 * i)));
    }
}

int rp_cidr_parse(const char *s, size_t n, rp_cidr *out)
{
    const char *slash;
    size_t alen;
    int text6;
    rp_cidr c;

    if (s == NULL || n == 0)
        return RP_EPARSE;
    slash = memchr(s, '/', n);
    alen = slash != NULL ? (size_t)(slash - s) : n;
    memset(&c, 0, sizeof(c));
    if (parse_addr(s, alen, c.addr, &c.v4, &text6) != 0)
        return RP_EPARSE;
    if (slash == NULL) {
        c.bits = c.v4 ? 32 : 128;
    } else {
        const char *p = slash + 1;
        size_t plen = n - alen - 1;
        uint64_t v;

        if (plen == 0 || plen > 3 || (plen > 1 && p[0] == '0') ||
            rp_parse_u64(p, plen, text6 ? 128 : 32, &v) != 0)
            return RP_EPARSE;
        c.bits = (unsigned)v;
        if (text6 && c.v4) {
            /* An IPv4-mapped range is the IPv4 range it maps, if it stays inside ::ffff:0:0/96. */
            if (c.bits >= 96)
                c.bits -= 96;
            else
                c.v4 = 0;
        }
    }
    mask_host_bits(&c);
    *out = c;
    return 0;
}

int rp_cidr_format(const rp_cidr *c, char *out, size_t cap)
{
    char a[INET6_ADDRSTRLEN];
    int n;

    if (cap == 0)
        return RP_ETOOBIG;
    out[0] = '\0';
    if (c->v4)
        inet_ntop(AF_INET, c->addr + 12, a, sizeof(a));
    else
        inet_ntop(AF_INET6, c->addr, a, sizeof(a));
    n = snprintf(out, cap, "%s/%u", a, c->bits);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return RP_ETOOBIG;
    }
    return 0;
}

int rp_cidr_contains(const rp_cidr *c, const unsigned char addr[16], int v4)
{
    unsigned total, full, rem;

    if (!c->v4 != !v4 || c->bits > (c->v4 ? 32u : 128u))
        return 0;
    total = total_bits(c);
    full = total / 8;
    rem = total % 8;
    if (memcmp(c->addr, addr, full) != 0)
        return 0;
    if (rem != 0 && ((c->addr[full] ^ addr[full]) & (0xff << (8 - rem)) & 0xff) != 0)
        return 0;
    return 1;
}

/* ---- parsing ------------------------------------------------------------------------------ */

typedef struct pctx {
    char *err;
    size_t errlen;
    size_t index;
    int named;
    char name[RP_QUOTE_MAX + 4]; /* quoted, when named */
} pctx;

static int rule_err(const pctx *p, int rc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes "rule I (NAME): FIELD: reason" into the caller's err and returns rc. */
static int rule_err(const pctx *p, int rc, const char *field, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->err == NULL || p->errlen == 0)
        return rc;
    if (p->named)
        n = snprintf(p->err, p->errlen, "rule %zu (%s): %s: ", p->index, p->name, field);
    else
        n = snprintf(p->err, p->errlen, "rule %zu: %s: ", p->index, field);
    if (n < 0 || (size_t)n >= p->errlen)
        return rc;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return rc;
}

/* A JSON string without NUL bytes into *s / *n, or an error naming field. */
static int get_string(const pctx *p, const char *field, const json_t *v, const char **s, size_t *n)
{
    if (!json_is_string(v))
        return rule_err(p, RP_EINVAL, field, "must be a string");
    *s = json_string_value(v);
    *n = json_string_length(v);
    if (memchr(*s, '\0', *n) != NULL)
        return rule_err(p, RP_EINVAL, field, "must not contain a NUL character");
    return 0;
}

/* name and description: UTF-8 text of at most max bytes without control characters. */
static int get_text(const pctx *p, const char *field, const json_t *v, size_t max, char *dst)
{
    const char *s;
    size_t n;
    int rc;

    if ((rc = get_string(p, field, v, &s, &n)) != 0)
        return rc;
    if (n > max)
        return rule_err(p, RP_ETOOBIG, field, "longer than %zu bytes", max);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return rule_err(p, RP_EINVAL, field, "must not contain control characters");
    if (!rp_utf8_valid(s, n, 0))
        return rule_err(p, RP_EINVAL, field, "is not valid UTF-8");
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

static int parse_sources(const pctx *p, rule *r, const char *s, size_t n)
{
    char q[RP_QUOTE_MAX + 4];
    rp_str all = rp_str_trim((rp_str){s, n});
    size_t start = 0;

    if (rp_str_eq_nocase(all, "Any")) {
        r->any = 1;
        return 0;
    }
    if (all.n == 0)
        return rule_err(p, RP_EINVAL, "ipAddress", "must not be empty");
    for (size_t i = 0; i <= n; i++) {
        rp_str e;

        if (i < n && s[i] != ',')
            continue;
        e = rp_str_trim((rp_str){s + start, i - start});
        start = i + 1;
        if (e.n == 0)
            return rule_err(p, RP_EINVAL, "ipAddress", "empty entry in the list");
        if (r->nsrc == RP_ACCESS_MAX_SOURCES)
            return rule_err(p, RP_ETOOBIG, "ipAddress", "more than %d addresses",
                            RP_ACCESS_MAX_SOURCES);
        if (rp_str_eq_nocase(e, "Any"))
            return rule_err(p, RP_EINVAL, "ipAddress", "'Any' cannot be combined with addresses");
        if (rp_cidr_parse(e.p, e.n, &r->src[r->nsrc]) != 0)
            return rule_err(p, RP_EINVAL, "ipAddress", "'%s' is not an IPv4 or IPv6 CIDR",
                            rp_quote(e.p, e.n, q));
        r->nsrc++;
    }
    return 0;
}

/* "host.name" or "*.host.name": letters, digits, '-' and '_' in non-empty labels. */
static int host_pattern_ok(const char *s, size_t n)
{
    size_t i = 0, label = 0;

    if (n >= 2 && s[0] == '*' && s[1] == '.')
        i = 2;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
        label++;
    }
    return label > 0;
}

static int parse_header_value(const pctx *p, const char *field, int h, hfilter *f, const char *s,
                              size_t n)
{
    char q[RP_QUOTE_MAX + 4];

    if (n == 0)
        return rule_err(p, RP_EINVAL, field, "must not be empty");
    if (n > RP_ACCESS_HEADER_VALUE_MAX)
        return rule_err(p, RP_ETOOBIG, field, "longer than %d bytes", RP_ACCESS_HEADER_VALUE_MAX);
    switch (h) {
    case H_XFF:
        if (rp_cidr_parse(s, n, &f->cidr[f->n]) != 0)
            return rule_err(p, RP_EINVAL, field, "'%s' is not an IPv4 or IPv6 CIDR",
                            rp_quote(s, n, q));
        break;
    case H_XFH:
        if (!host_pattern_ok(s, n))
            return rule_err(p, RP_EINVAL, field,
                            "'%s' is not a host name or a '*.' wildcard host name",
                            rp_quote(s, n, q));
        for (size_t i = 0; i < n; i++)
            f->val[f->n][i] = rp_lower(s[i]);
        f->val[f->n][n] = '\0';
        break;
    default:
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
                return rule_err(p, RP_EINVAL, field, "must be printable ASCII without spaces");
        memcpy(f->val[f->n], s, n);
        f->val[f->n][n] = '\0';
        break;
    }
    f->n++;
    return 0;
}

static int parse_headers(const pctx *p, rule *r, json_t *v)
{
    char q[RP_QUOTE_MAX + 4];
    const char *key;
    size_t klen;
    json_t *list;

    if (!json_is_object(v))
        return rule_err(p, RP_EINVAL, "headers", "must be an object");
    json_object_keylen_foreach(v, key, klen, list)
    {
        char field[64];
        size_t i;
        json_t *e;
        hfilter *f;
        int h = -1, rc;

        for (int k = 0; k < H_COUNT; k++)
            if (klen == strlen(hdr_names[k]) && memcmp(key, hdr_names[k], klen) == 0)
                h = k;
        if (h < 0)
            return rule_err(p, RP_EINVAL, "headers",
                            "'%s' is not supported (x-forwarded-host, x-forwarded-for,"
                            " x-azure-fdid and x-fd-healthprobe are, in lowercase)",
                            rp_quote(key, klen, q));
        snprintf(field, sizeof(field), "headers.%s", hdr_names[h]);
        f = &r->h[h];
        if (!json_is_array(list))
            return rule_err(p, RP_EINVAL, field, "must be an array of strings");
        if (json_array_size(list) > RP_ACCESS_MAX_HEADER_VALUES)
            return rule_err(p, RP_ETOOBIG, field, "more than %d values",
                            RP_ACCESS_MAX_HEADER_VALUES);
        f->present = 1;
        json_array_foreach(list, i, e)
        {
            const char *s;
            size_t n;

            snprintf(field, sizeof(field), "headers.%s[%zu]", hdr_names[h], i);
            if ((rc = get_string(p, field, e, &s, &n)) != 0)
                return rc;
            if ((rc = parse_header_value(p, field, h, f, s, n)) != 0)
                return rc;
        }
    }
    r->has_headers = 1;
    return 0;
}

/* Members a rule may have, in the order of the "seen" bits. */
enum {
    M_IP,
    M_ACTION,
    M_PRIORITY,
    M_NAME,
    M_DESC,
    M_TAG,
    M_HEADERS,
    M_VNET,
    M_MASK,
    M_VNETTAG,
    M_SUBNETTAG,
    M_COUNT
};

static const char *const member_names[M_COUNT] = {"ipAddress",       "action",
                                                  "priority",        "name",
                                                  "description",     "tag",
                                                  "headers",         "vnetSubnetResourceId",
                                                  "subnetMask",      "vnetTrafficTag",
                                                  "subnetTrafficTag"};

static int parse_member(const pctx *p, rule *r, int m, json_t *v)
{
    const char *s;
    size_t n;
    int rc;

    if (json_is_null(v) && m != M_IP && m != M_ACTION && m != M_PRIORITY)
        return 0;
    switch (m) {
    case M_IP:
        if (json_is_null(v))
            return rule_err(p, RP_EINVAL, "ipAddress", "required");
        if ((rc = get_string(p, "ipAddress", v, &s, &n)) != 0)
            return rc;
        return parse_sources(p, r, s, n);
    case M_ACTION:
        if (json_is_null(v))
            return rule_err(p, RP_EINVAL, "action", "required");
        if ((rc = get_string(p, "action", v, &s, &n)) != 0)
            return rc;
        if (rp_str_eq_nocase((rp_str){s, n}, "Allow"))
            r->allow = 1;
        else if (!rp_str_eq_nocase((rp_str){s, n}, "Deny"))
            return rule_err(p, RP_EINVAL, "action", "must be Allow or Deny");
        return 0;
    case M_PRIORITY: {
        json_int_t pr;

        if (json_is_null(v))
            return rule_err(p, RP_EINVAL, "priority", "required");
        if (!json_is_integer(v))
            return rule_err(p, RP_EINVAL, "priority", "must be an integer");
        pr = json_integer_value(v);
        if (pr < 1 || pr > RP_ACCESS_PRIORITY_MAX)
            return rule_err(p, RP_EINVAL, "priority", "must be between 1 and %d",
                            RP_ACCESS_PRIORITY_MAX);
        r->priority = (uint32_t)pr;
        return 0;
    }
    case M_NAME: r->has_name = 1; return get_text(p, "name", v, RP_ACCESS_NAME_MAX, r->name);
    case M_DESC: r->has_desc = 1; return get_text(p, "description", v, RP_ACCESS_DESC_MAX, r->desc);
    case M_TAG:
        if ((rc = get_string(p, "tag", v, &s, &n)) != 0)
            return rc;
        if (rp_str_eq_nocase((rp_str){s, n}, "Default"))
            r->tag = TAG_DEFAULT;
        else if (rp_str_eq_nocase((rp_str){s, n}, "XffProxy"))
            r->tag = TAG_XFFPROXY;
        else if (rp_str_eq_nocase((rp_str){s, n}, "ServiceTag"))
            return rule_err(p, RP_EUNSUPPORTED, "tag", "service tags are not supported");
        else
            return rule_err(p, RP_EINVAL, "tag", "must be Default or XffProxy");
        return 0;
    case M_HEADERS: return parse_headers(p, r, v);
    default:
        return rule_err(p, RP_EUNSUPPORTED, member_names[m],
                        "virtual network rules are not supported");
    }
}

static int parse_rule(pctx *p, rule *r, json_t *obj)
{
    char q[RP_QUOTE_MAX + 4];
    unsigned seen = 0;
    const char *key;
    size_t klen;
    json_t *v, *name;
    int rc;

    if (!json_is_object(obj)) {
        p->named = 0;
        return rule_err(p, RP_EINVAL, "rule", "must be an object");
    }
    /* The name first, so that every other message can say which rule it is about. */
    name = json_object_get(obj, "name");
    if (name != NULL && !json_is_null(name)) {
        if ((rc = parse_member(p, r, M_NAME, name)) != 0)
            return rc;
        rp_quote(r->name, strlen(r->name), p->name);
        p->named = 1;
    }
    json_object_keylen_foreach(obj, key, klen, v)
    {
        int m = -1;

        for (int k = 0; k < M_COUNT; k++)
            if (klen == strlen(member_names[k]) && memcmp(key, member_names[k], klen) == 0)
                m = k;
        if (m < 0)
            return rule_err(p, RP_EINVAL, rp_quote(key, klen, q), "unknown member");
        seen |= 1u << m;
        if (m != M_NAME && (rc = parse_member(p, r, m, v)) != 0)
            return rc;
    }
    for (int m = M_IP; m <= M_PRIORITY; m++)
        if (!(seen & (1u << m)))
            return rule_err(p, RP_EINVAL, member_names[m], "required");
    return 0;
}

static int rule_cmp(const void *a, const void *b)
{
    const rule *x = a, *y = b;

    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

int rp_access_parse(const json_t *rules, const char *default_action, rp_access **out, char *err,
                    size_t errlen)
{
    rp_access *a = NULL;
    int explicit_default = -1, rc;
    size_t n = 0;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (default_action != NULL) {
        if (rp_str_eq_nocase((rp_str){default_action, strlen(default_action)}, "Allow"))
            explicit_default = 1;
        else if (rp_str_eq_nocase((rp_str){default_action, strlen(default_action)}, "Deny"))
            explicit_default = 0;
        else
            return rp_errf(err, errlen, RP_EINVAL, "defaultAction: must be Allow or Deny");
    }
    if (rules != NULL && !json_is_null(rules)) {
        if (!json_is_array(rules))
            return rp_errf(err, errlen, RP_EINVAL, "ipSecurityRestrictions: must be an array");
        n = json_array_size(rules);
        if (n > RP_ACCESS_MAX_RULES)
            return rp_errf(err, errlen, RP_ETOOBIG, "ipSecurityRestrictions: more than %d rules",
                           RP_ACCESS_MAX_RULES);
    }
    a = rp_calloc(1, sizeof(*a));
    if (a == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    if (n > 0) {
        a->rules = rp_calloc(n, sizeof(rule));
        if (a->rules == NULL) {
            rc = RP_ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        pctx p = {err, errlen, i, 0, ""};

        a->rules[i].index = i;
        rc = parse_rule(&p, &a->rules[i], json_array_get(rules, i));
        if (rc != 0)
            goto out;
    }
    a->n = n;
    if (n > 1)
        qsort(a->rules, n, sizeof(rule), rule_cmp);
    a->default_allow = explicit_default >= 0 ? explicit_default : n == 0;
    *out = a;
    return 0;
out:
    if (rc == RP_ENOMEM && err != NULL && errlen > 0)
        rp_strlcpy(err, "out of memory", errlen);
    rp_access_free(a);
    return rc;
}

void rp_access_free(rp_access *a)
{
    if (a == NULL)
        return;
    rp_free(a->rules);
    rp_free(a);
}

size_t rp_access_count(const rp_access *a)
{
    return a != NULL ? a->n : 0;
}

/* ---- decision ----------------------------------------------------------------------------- */

/* The X-Forwarded-For addresses of one request, parsed when the first rule asks for them. */
typedef struct xff_set {
    int done;
    size_t n;
    unsigned char addr[RP_ACCESS_XFF_MAX][16];
    unsigned char v4[RP_ACCESS_XFF_MAX];
} xff_set;

/* 1 if s[0..n) is a port number: 1 to 5 digits, at most 65535. */
static int port_ok(const char *s, size_t n)
{
    uint64_t v;

    return n >= 1 && n <= 5 && rp_parse_u64(s, n, 65535, &v) == 0;
}

/* One X-Forwarded-For entry: "a.b.c.d", "a.b.c.d:port", "v6" or "[v6]" with ":port". */
static int xff_entry(rp_str e, unsigned char addr[16], int *v4)
{
    const char *colon;

    if (e.n == 0)
        return RP_EPARSE;
    if (e.p[0] == '[') {
        const char *close = memchr(e.p, ']', e.n);
        size_t alen, rest;

        if (close == NULL)
            return RP_EPARSE;
        alen = (size_t)(close - e.p) - 1;
        rest = e.n - alen - 2;
        if (memchr(e.p + 1, ':', alen) == NULL)
            return RP_EPARSE; /* brackets are for IPv6 only */
        if (rest > 0 && (close[1] != ':' || !port_ok(close + 2, rest - 1)))
            return RP_EPARSE;
        return rp_ip_parse(e.p + 1, alen, addr, v4);
    }
    colon = memchr(e.p, ':', e.n);
    if (colon != NULL && memchr(colon + 1, ':', e.n - (size_t)(colon + 1 - e.p)) == NULL) {
        size_t alen = (size_t)(colon - e.p);

        if (!port_ok(colon + 1, e.n - alen - 1))
            return RP_EPARSE;
        return rp_ip_parse(e.p, alen, addr, v4);
    }
    return rp_ip_parse(e.p, e.n, addr, v4);
}

static void xff_collect(const rp_access_req *r, xff_set *x)
{
    x->done = 1;
    for (size_t i = 0; i < r->nheaders && x->n < RP_ACCESS_XFF_MAX; i++) {
        rp_str v = r->headers[i].value;
        size_t start = 0;

        if (!rp_str_eq_nocase(r->headers[i].name, "x-forwarded-for") || v.p == NULL)
            continue;
        for (size_t k = 0; k <= v.n && x->n < RP_ACCESS_XFF_MAX; k++) {
            int v4;

            if (k < v.n && v.p[k] != ',')
                continue;
            if (xff_entry(rp_str_trim((rp_str){v.p + start, k - start}), x->addr[x->n], &v4) == 0)
                x->v4[x->n++] = (unsigned char)v4;
            start = k + 1;
        }
    }
}

/* The host of an X-Forwarded-Host value without a ":port" suffix (digits, possibly none). */
static rp_str strip_port(rp_str v)
{
    const char *colon = memchr(v.p, ':', v.n);
    size_t at;

    if (colon == NULL)
        return v;
    at = (size_t)(colon - v.p);
    for (size_t i = at + 1; i < v.n; i++)
        if (v.p[i] < '0' || v.p[i] > '9')
            return v; /* an IPv6 literal or garbage: left whole, it matches no pattern */
    return (rp_str){v.p, at};
}

/* pat is lowercase; "*.suffix" takes exactly one more label, which must not be empty. */
static int host_matches(const char *pat, rp_str host)
{
    if (pat[0] == '*') {
        const char *suffix = pat + 1; /* ".contoso.com" */
        size_t sl = strlen(suffix);

        return host.n > sl && rp_str_has_suffix_nocase(host, suffix) &&
               memchr(host.p, '.', host.n - sl) == NULL;
    }
    return rp_str_eq_nocase(host, pat);
}

/* Front Door ids are GUIDs, whose hex digits may come in either case; probes match exactly. */
static int value_matches(int h, const char *val, rp_str v)
{
    switch (h) {
    case H_XFH: return host_matches(val, v);
    case H_FDID: return rp_str_eq_nocase(v, val);
    default: return rp_str_eq(v, val);
    }
}

static int filter_matches(int h, const hfilter *f, const rp_access_req *r, xff_set *x)
{
    if (h == H_XFF) {
        if (!x->done)
            xff_collect(r, x);
        for (size_t i = 0; i < x->n; i++)
            for (unsigned k = 0; k < f->n; k++)
                if (rp_cidr_contains(&f->cidr[k], x->addr[i], x->v4[i]))
                    return 1;
        return 0;
    }
    for (size_t i = 0; i < r->nheaders; i++) {
        rp_str v;

        if (!rp_str_eq_nocase(r->headers[i].name, hdr_names[h]) || r->headers[i].value.p == NULL)
            continue;
        v = rp_str_trim(r->headers[i].value);
        if (h == H_XFH)
            v = strip_port(v);
        for (unsigned k = 0; k < f->n; k++)
            if (value_matches(h, f->val[k], v))
                return 1;
    }
    return 0;
}

static int rule_matches(const rule *ru, const unsigned char ip[16], int v4, const rp_access_req *r,
                        xff_set *x)
{
    int src = ru->any;

    for (unsigned i = 0; !src && i < ru->nsrc; i++)
        src = rp_cidr_contains(&ru->src[i], ip, v4);
    if (!src)
        return 0;
    for (int h = 0; h < H_COUNT; h++)
        if (ru->h[h].n > 0 && !filter_matches(h, &ru->h[h], r, x))
            return 0;
    return 1;
}

void rp_access_check(const rp_access *a, const rp_access_req *r, rp_access_result *res)
{
    unsigned char ip[16];
    xff_set x;
    size_t n = a != NULL ? a->n : 0;
    int default_allow = a != NULL ? a->default_allow : 1, v4 = 0;

    x.done = 0;
    x.n = 0;
    res->matched = -1;
    /* Fail closed on a peer we cannot read, unless there is nothing to restrict. */
    if (n > 0 &&
        (r->client_ip == NULL ||
         rp_ip_parse(r->client_ip, strnlen(r->client_ip, INET6_ADDRSTRLEN), ip, &v4) != 0)) {
        res->allowed = 0;
        rp_strlcpy(res->rule, "Invalid client address", sizeof(res->rule));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (rule_matches(&a->rules[i], ip, v4, r, &x)) {
            res->allowed = a->rules[i].allow;
            res->matched = (int)i;
            rp_strlcpy(res->rule, a->rules[i].name, sizeof(res->rule));
            return;
        }
    }
    res->allowed = default_allow;
    rp_strlcpy(res->rule, default_allow ? "Allow all" : "Deny all", sizeof(res->rule));
}

/* ---- GET view ----------------------------------------------------------------------------- */

static json_t *rule_json(const rule *ru)
{
    char ips[RP_ACCESS_MAX_SOURCES * RP_CIDR_STRLEN];
    json_t *o = json_object(), *hdrs = NULL;
    size_t len = 0;

    if (o == NULL)
        return NULL;
    if (ru->any) {
        memcpy(ips, "Any", 4);
    } else {
        ips[0] = '\0';
        for (unsigned i = 0; i < ru->nsrc; i++) {
            if (i > 0)
                ips[len++] = ',';
            rp_cidr_format(&ru->src[i], ips + len, sizeof(ips) - len);
            len += strlen(ips + len);
        }
    }
    if (json_object_set_new(o, "ipAddress", json_string(ips)) != 0 ||
        json_object_set_new(o, "action", json_string(ru->allow ? "Allow" : "Deny")) != 0 ||
        json_object_set_new(o, "tag",
                            json_string(ru->tag == TAG_XFFPROXY ? "XffProxy" : "Default")) != 0 ||
        json_object_set_new(o, "priority", json_integer(ru->priority)) != 0)
        goto fail;
    if (ru->has_name && json_object_set_new(o, "name", json_string(ru->name)) != 0)
        goto fail;
    if (ru->has_desc && json_object_set_new(o, "description", json_string(ru->desc)) != 0)
        goto fail;
    if (!ru->has_headers)
        return o;
    hdrs = json_object();
    if (hdrs == NULL)
        goto fail;
    for (int h = 0; h < H_COUNT; h++) {
        const hfilter *f = &ru->h[h];
        json_t *list;

        if (!f->present)
            continue;
        list = json_array();
        if (json_object_set_new(hdrs, hdr_names[h], list) != 0)
            goto fail;
        for (unsigned k = 0; k < f->n; k++) {
            char c[RP_CIDR_STRLEN];
            const char *s = f->val[k];

            if (h == H_XFF) {
                rp_cidr_format(&f->cidr[k], c, sizeof(c));
                s = c;
            }
            if (json_array_append_new(list, json_string(s)) != 0)
                goto fail;
        }
    }
    if (json_object_set_new(o, "headers", hdrs) != 0) {
        hdrs = NULL; /* taken (and released) by json_object_set_new */
        goto fail;
    }
    return o;
fail:
    json_decref(hdrs);
    json_decref(o);
    return NULL;
}

json_t *rp_access_to_json(const rp_access *a)
{
    json_t *arr = json_array(), *last;
    size_t n = a != NULL ? a->n : 0;
    int allow = a != NULL ? a->default_allow : 1;

    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(arr, rule_json(&a->rules[i])) != 0)
            goto fail;
    last = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}", "ipAddress", "Any", "action",
                     allow ? "Allow" : "Deny", "tag", "Default", "priority", RP_ACCESS_PRIORITY_MAX,
                     "name", allow ? "Allow all" : "Deny all", "description",
                     allow ? "Allow all access" : "Deny all access");
    if (json_array_append_new(arr, last) != 0)
        goto fail;
    return arr;
fail:
    json_decref(arr);
    return NULL;
}
