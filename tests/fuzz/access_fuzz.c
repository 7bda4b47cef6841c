/*
 * access_fuzz.c - libFuzzer driver for src/sites/access.c (App Service access restrictions):
 * rp_access_parse, rp_access_check and rp_access_to_json on hostile rule lists and requests,
 * and rp_cidr_parse / rp_ip_parse / rp_cidr_format on raw bytes.
 *
 * Input: a JSON rules text, a NUL byte, then a request description of lines:
 *   line 1: the defaultAction ("-" for none, anything else is passed as it is)
 *   line 2: the client address (passed as it is; "-" for NULL)
 *   then up to MAX_HDR header lines "name: value" (a line without ':' is skipped).
 * Without a NUL the whole input is the rules text and the request is 10.0.0.1 with no headers
 * and no defaultAction. Corpus: tests/fuzz/corpus/access/.
 *
 * Invariants checked with abort():
 *   - parse returns 0 with a set and err "", or one of the documented codes with no set and a
 *     non-empty err of printable ASCII; a defaultAction other than Allow/Deny always fails;
 *   - a check gives allowed 0 or 1, matched in -1..count-1 and a NUL-terminated rule; with no
 *     rules, allowed is 1 unless the defaultAction is Deny; a matched rule is the one the GET
 *     view lists at that index (same action and name), and a default decision follows the view's
 *     synthetic last rule (or refuses an unparseable client when there are rules);
 *   - the GET view has count + 1 rules, the last one the synthetic "Allow all"/"Deny all";
 *     without it, it parses again (same defaultAction) into a set that decides the request the
 *     same way and whose view is equal;
 *   - whatever rp_cidr_parse accepts (the raw input, the client line, each header value and each
 *     comma-separated piece of them) formats within RP_CIDR_STRLEN and parses back equal, has
 *     no host bits, a prefix within its family's limit and contains its own address;
 *     rp_ip_parse agrees with rp_cidr_parse on a bare address.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "sites/access.h"

#define MAX_IN  65536
#define MAX_HDR 16

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void check_cidr(const char *s, size_t n)
{
    rp_cidr c, c2, host;
    unsigned char a[16];
    char out[RP_CIDR_STRLEN];
    int v4, rc_ip;

    rc_ip = rp_ip_parse(s, n, a, &v4);
    if (rp_cidr_parse(s, n, &c) != 0) {
        if (rc_ip == 0) /* an address is also a CIDR */
            abort();
        return;
    }
    if (c.v4 != 0 && c.v4 != 1)
        abort();
    if (c.bits > (c.v4 ? 32u : 128u))
        abort();
    if (c.v4 && memcmp(c.addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) != 0)
        abort();
    if (!rp_cidr_contains(&c, c.addr, c.v4) || rp_cidr_contains(&c, c.addr, !c.v4))
        abort();
    if (rp_cidr_format(&c, out, sizeof(out)) != 0)
        abort();
    if (rp_cidr_parse(out, strlen(out), &c2) != 0 || memcmp(&c, &c2, sizeof(c)) != 0)
        abort();
    /* No host bits: the network address re-parsed as a single host is inside c. */
    host = c;
    host.bits = c.v4 ? 32 : 128;
    if (rp_cidr_contains(&host, c.addr, c.v4) != 1)
        abort();
    if (rc_ip == 0) {
        if (v4 != c.v4 || c.bits != (v4 ? 32u : 128u) || memcmp(a, c.addr, 16) != 0)
            abort();
    } else if (memchr(s, '/', n) == NULL) {
        abort(); /* a CIDR without a prefix is an address */
    }
}

/* check_cidr on s and, if it is a list, on each comma-separated piece of it. */
static void check_cidrs(const char *s, size_t n)
{
    size_t start = 0;

    check_cidr(s, n);
    if (memchr(s, ',', n) == NULL)
        return;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ',')
            continue;
        check_cidr(s + start, i - start);
        start = i + 1;
    }
}

static int printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static int same(const rp_access_result *x, const rp_access_result *y)
{
    return x->allowed == y->allowed && x->matched == y->matched && strcmp(x->rule, y->rule) == 0;
}

/* Checks one decision against the set's GET view. */
static void check_result(const rp_access_result *res, size_t count, const json_t *view,
                         const char *def, int client_ok)
{
    const json_t *last = json_array_get(view, json_array_size(view) - 1);
    int default_allow = strcmp(json_string_value(json_object_get(last, "action")), "Allow") == 0;

    if (res->allowed != 0 && res->allowed != 1)
        abort();
    if (memchr(res->rule, '\0', sizeof(res->rule)) == NULL)
        abort();
    if (res->matched < -1 || (res->matched >= 0 && (size_t)res->matched >= count))
        abort();
    if (count == 0 && res->allowed != !(def != NULL && strcmp(def, "Deny") == 0))
        abort(); /* def is as normalised by the caller: "Allow", "Deny" or NULL */
    if (res->matched >= 0) {
        const json_t *r = json_array_get(view, (size_t)res->matched);
        const json_t *name = json_object_get(r, "name");
        int allow = strcmp(json_string_value(json_object_get(r, "action")), "Allow") == 0;

        if (!client_ok || allow != res->allowed)
            abort();
        if (strcmp(res->rule, name != NULL ? json_string_value(name) : "") != 0)
            abort();
        return;
    }
    if (!client_ok && count > 0) {
        if (res->allowed != 0 || strcmp(res->rule, "Invalid client address") != 0)
            abort();
        return;
    }
    if (res->allowed != default_allow ||
        strcmp(res->rule, default_allow ? "Allow all" : "Deny all") != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static char buf[MAX_IN + 1];
    rp_header h[MAX_HDR];
    rp_access_req req = {"10.0.0.1", h, 0};
    rp_access_result res, res2;
    const char *def = NULL, *norm_def = NULL, *sep;
    rp_access *a = NULL, *b = NULL;
    json_t *rules = NULL, *view = NULL, *view2 = NULL;
    json_error_t je;
    char err[256];
    size_t jn, count;
    unsigned char ip[16];
    int rc, client_ok, ipv4;

    if (n > MAX_IN)
        return 0;
    memcpy(buf, d, n);
    buf[n] = '\0';
    check_cidrs(buf, n);

    sep = memchr(buf, '\0', n);
    jn = sep != NULL ? (size_t)(sep - buf) : n;
    if (sep != NULL) {
        char *p = buf + jn + 1, *end = buf + n, *line = p;
        int k = 0;

        /* Split the request part into NUL-terminated lines in place. */
        for (; p <= end; p++) {
            char *colon;

            if (p < end && *p != '\n')
                continue;
            *p = '\0';
            if (k == 0) {
                def = strcmp(line, "-") == 0 ? NULL : line;
            } else if (k == 1) {
                req.client_ip = strcmp(line, "-") == 0 ? NULL : line;
                if (req.client_ip != NULL)
                    check_cidrs(line, strlen(line));
            } else if (req.nheaders < MAX_HDR && (colon = strchr(line, ':')) != NULL) {
                const char *v = colon + 1;

                while (*v == ' ')
                    v++;
                h[req.nheaders].name = (rp_str){line, (size_t)(colon - line)};
                h[req.nheaders].value = (rp_str){v, strlen(v)};
                check_cidrs(v, strlen(v));
                req.nheaders++;
            }
            k++;
            line = p + 1;
        }
    }
    client_ok =
        req.client_ip != NULL && rp_ip_parse(req.client_ip, strlen(req.client_ip), ip, &ipv4) == 0;

    rules = json_loadb(buf, jn, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    err[0] = 'x';
    err[1] = '\0';
    rc = rp_access_parse(rules, def, &a, err, sizeof(err));
    if (def != NULL) {
        rp_str ds = {def, strlen(def)};
        norm_def = rp_str_eq_nocase(ds, "Allow")  ? "Allow"
                   : rp_str_eq_nocase(ds, "Deny") ? "Deny"
                                                  : NULL;
        if (norm_def == NULL && rc != RP_EINVAL)
            abort();
    }
    if (rc != 0) {
        if ((rc != RP_EINVAL && rc != RP_ETOOBIG && rc != RP_EUNSUPPORTED && rc != RP_ENOMEM) ||
            a != NULL || err[0] == '\0' || !printable(err))
            abort();
        goto out;
    }
    if (a == NULL || err[0] != '\0')
        abort();
    count = rp_access_count(a);
    if (count > RP_ACCESS_MAX_RULES)
        abort();

    view = rp_access_to_json(a);
    if (view == NULL || json_array_size(view) != count + 1)
        abort();
    {
        const json_t *last = json_array_get(view, count);
        const char *action = json_string_value(json_object_get(last, "action"));
        const char *name = json_string_value(json_object_get(last, "name"));

        if (action == NULL || name == NULL ||
            json_integer_value(json_object_get(last, "priority")) != RP_ACCESS_PRIORITY_MAX ||
            strcmp(json_string_value(json_object_get(last, "ipAddress")), "Any") != 0)
            abort();
        if (!((strcmp(action, "Allow") == 0 && strcmp(name, "Allow all") == 0) ||
              (strcmp(action, "Deny") == 0 && strcmp(name, "Deny all") == 0)))
            abort();
    }

    memset(&res, 0x5a, sizeof(res));
    rp_access_check(a, &req, &res);
    check_result(&res, count, view, norm_def, client_ok);

    /* Round trip through the GET view without its synthetic rule. */
    if (json_array_remove(view, count) != 0)
        abort();
    if (rp_access_parse(view, def, &b, err, sizeof(err)) != 0 || rp_access_count(b) != count)
        abort();
    memset(&res2, 0x33, sizeof(res2));
    rp_access_check(b, &req, &res2);
    if (!same(&res, &res2))
        abort();
    view2 = rp_access_to_json(b);
    if (view2 == NULL || json_array_remove(view2, count) != 0 || !json_equal(view, view2))
        abort();
out:
    json_decref(view2);
    json_decref(view);
    rp_access_free(b);
    rp_access_free(a);
    json_decref(rules);
    return 0;
}
