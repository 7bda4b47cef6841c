/*
 * access_test.c - unit tests for src/sites/access.c, App Service access restrictions: the CIDR
 * helpers (tables of good and bad input, containment at the edges of a prefix), every refusal
 * of the rule parser with its exact message, the decision matrix (priorities and ties, first
 * match, the implicit and explicit defaults, multi-source rules, IPv4-mapped peers, IPv6, every
 * header filter), the GET view and its round trip, and allocation failure in both the parser
 * (rp_alloc_fail_after) and the GET view (a failing jansson allocator).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "sites/access.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static json_t *load(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);

    if (j == NULL)
        print_message("bad test JSON: %s: %s\n", je.text, text);
    assert_non_null(j);
    return j;
}

static rp_access *build(const char *rules, const char *def)
{
    json_t *j = rules != NULL ? load(rules) : NULL;
    rp_access *a = NULL;
    char err[256] = "x";
    int rc = rp_access_parse(j, def, &a, err, sizeof(err));

    if (rc != 0)
        print_message("unexpected refusal: %s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(err, "");
    assert_non_null(a);
    json_decref(j);
    return a;
}

/* Parsing rules (with default def) fails with exactly rc and message msg. */
static void refuse(const char *rules, const char *def, int rc, const char *msg)
{
    json_t *j = rules != NULL ? load(rules) : NULL;
    rp_access *a = (rp_access *)1;
    char err[256];

    assert_int_equal(rp_access_parse(j, def, &a, err, sizeof(err)), rc);
    assert_null(a);
    assert_string_equal(err, msg);
    json_decref(j);
}

/* A one-rule list around members (the inside of an object without braces). */
static void refuse_rule(const char *members, int rc, const char *msg)
{
    char text[2048];

    assert_true((size_t)snprintf(text, sizeof(text), "[{%s}]", members) < sizeof(text));
    refuse(text, NULL, rc, msg);
}

/* The end of check()'s header list (a plain NULL may be an int in a variadic call). */
#define END ((const char *)NULL)

/* Checks a request from ip with header name/value pairs (terminated by END). */
static rp_access_result check(const rp_access *a, const char *ip, ...)
{
    rp_header h[16];
    rp_access_req r = {ip, h, 0};
    rp_access_result res;
    const char *name;
    va_list ap;

    va_start(ap, ip);
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        assert_true(r.nheaders < 16);
        h[r.nheaders].name = (rp_str){name, strlen(name)};
        h[r.nheaders].value = (rp_str){value, strlen(value)};
        r.nheaders++;
    }
    va_end(ap);
    memset(&res, 0x55, sizeof(res));
    rp_access_check(a, &r, &res);
    assert_true(res.allowed == 0 || res.allowed == 1);
    assert_non_null(memchr(res.rule, '\0', sizeof(res.rule)));
    return res;
}

static void expect(rp_access_result res, int allowed, int matched, const char *rule)
{
    assert_int_equal(res.allowed, allowed);
    assert_int_equal(res.matched, matched);
    assert_string_equal(res.rule, rule);
}

/* ---- CIDR helpers ------------------------------------------------------------------------- */

static void test_cidr_good(void **state)
{
    static const struct {
        const char *in, *out;
        int v4;
        unsigned bits;
    } t[] = {
        {"1.2.3.4", "1.2.3.4/32", 1, 32},
        {"1.2.3.4/32", "1.2.3.4/32", 1, 32},
        {"0.0.0.0/0", "0.0.0.0/0", 1, 0},
        {"255.255.255.255/0", "0.0.0.0/0", 1, 0},
        {"10.1.2.3/8", "10.0.0.0/8", 1, 8},
        {"192.168.1.129/25", "192.168.1.128/25", 1, 25},
        {"172.31.255.255/12", "172.16.0.0/12", 1, 12},
        {"255.255.255.255/31", "255.255.255.254/31", 1, 31},
        {"::1", "::1/128", 0, 128},
        {"::/0", "::/0", 0, 0},
        {"2001:db8::1/64", "2001:db8::/64", 0, 64},
        {"2001:DB8:0000::/32", "2001:db8::/32", 0, 32},
        {"fe80::1/10", "fe80::/10", 0, 10},
        {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 0, 128},
        {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127",
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127", 0, 127},
        {"::ffff:1.2.3.4", "1.2.3.4/32", 1, 32},
        {"::FFFF:1.2.3.4/128", "1.2.3.4/32", 1, 32},
        {"::ffff:1.2.3.4/120", "1.2.3.0/24", 1, 24},
        {"::ffff:0:0/96", "0.0.0.0/0", 1, 0},
        {"::ffff:1.2.3.4/95", "::fffe:0:0/95", 0, 95},
        {"::ffff:1.2.3.4/64", "::/64", 0, 64},
        {"::1.2.3.4", "::1.2.3.4/128", 0, 128},
        {"0:0:0:0:0:ffff:0102:0304/112", "1.2.0.0/16", 1, 16},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        rp_cidr c, c2;
        char s[RP_CIDR_STRLEN];

        if (rp_cidr_parse(t[i].in, strlen(t[i].in), &c) != 0)
            fail_msg("refused %s", t[i].in);
        assert_int_equal(c.v4, t[i].v4);
        assert_int_equal(c.bits, t[i].bits);
        assert_int_equal(rp_cidr_format(&c, s, sizeof(s)), 0);
        assert_string_equal(s, t[i].out);
        assert_int_equal(rp_cidr_parse(s, strlen(s), &c2), 0);
        assert_memory_equal(&c, &c2, sizeof(c));
        assert_true(rp_cidr_contains(&c, c.addr, c.v4));
    }
}

static void test_cidr_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "1.2.3",
        "1.2.3.4.5",
        "01.2.3.4",
        "1.2.3.04",
        "1.2.3.00",
        "0x7f.0.0.1",
        "127.1",
        "256.0.0.0",
        "1.2.3.-4",
        "1.2.3.4/33",
        "1.2.3.4/",
        "/24",
        "/",
        "1.2.3.4/024",
        "1.2.3.4/00",
        "1.2.3.4/-1",
        "1.2.3.4/+8",
        "1.2.3.4/ 8",
        "1.2.3.4/8 ",
        " 1.2.3.4",
        "1.2.3.4 ",
        "1.2.3.4/1000",
        "1.2.3.4/32/1",
        "1.2.3.4/3a",
        "1.2.3.4:80",
        "::1/129",
        "::1/0128",
        "::1/200",
        "fe80::1%eth0",
        "[::1]",
        "[::1]/128",
        "1::2::3",
        "1:2:3:4:5:6:7:8:9",
        "::ffff:01.2.3.4",
        "::ffff:1.2.3.4/33x",
        "Any",
        "localhost",
        "2001:db8::g",
        "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255:1",
    };
    rp_cidr c;

    (void)state;
    memset(&c, 0x77, sizeof(c));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rp_cidr_parse(bad[i], strlen(bad[i]), &c) != RP_EPARSE)
            fail_msg("accepted '%s'", bad[i]);
    assert_int_equal(c.bits, 0x77777777u); /* untouched */
    assert_int_equal(rp_cidr_parse(NULL, 0, &c), RP_EPARSE);
    /* An embedded NUL must not cut the string short. */
    assert_int_equal(rp_cidr_parse("1.2.3.4\0/8", 10, &c), RP_EPARSE);
    assert_int_equal(rp_cidr_parse("1.2.3.4/8\0", 10, &c), RP_EPARSE);
    /* The length is honoured: a prefix of a longer buffer is parsed alone. */
    assert_int_equal(rp_cidr_parse("10.0.0.0/8junk", 10, &c), 0);
    assert_int_equal(c.bits, 8);
}

static void test_ip_parse(void **state)
{
    unsigned char a[16], b[16];
    int v4 = -1;

    (void)state;
    assert_int_equal(rp_ip_parse("127.0.0.1", 9, a, &v4), 0);
    assert_int_equal(v4, 1);
    assert_int_equal(rp_ip_parse("::ffff:127.0.0.1", 16, b, &v4), 0);
    assert_int_equal(v4, 1);
    assert_memory_equal(a, b, 16);
    assert_int_equal(rp_ip_parse("::1", 3, a, &v4), 0);
    assert_int_equal(v4, 0);
    assert_int_equal(a[15], 1);
    assert_int_equal(rp_ip_parse("2001:db8::1", 11, a, &v4), 0);
    assert_int_equal(v4, 0);
    assert_int_equal(rp_ip_parse("1.2.3.4/32", 10, a, &v4), RP_EPARSE);
    assert_int_equal(rp_ip_parse("", 0, a, &v4), RP_EPARSE);
    assert_int_equal(rp_ip_parse(NULL, 0, a, &v4), RP_EPARSE);
    assert_int_equal(rp_ip_parse("[::1]", 5, a, &v4), RP_EPARSE);
    assert_int_equal(rp_ip_parse("1.2.3.4:80", 10, a, &v4), RP_EPARSE);
    assert_int_equal(rp_ip_parse("01.2.3.4", 8, a, &v4), RP_EPARSE);
}

static int in(const char *cidr, const char *ip)
{
    rp_cidr c;
    unsigned char a[16];
    int v4;

    assert_int_equal(rp_cidr_parse(cidr, strlen(cidr), &c), 0);
    assert_int_equal(rp_ip_parse(ip, strlen(ip), a, &v4), 0);
    return rp_cidr_contains(&c, a, v4);
}

static void test_cidr_contains(void **state)
{
    rp_cidr c;
    unsigned char a[16];
    int v4;

    (void)state;
    assert_true(in("10.0.0.0/8", "10.0.0.0"));
    assert_true(in("10.0.0.0/8", "10.255.255.255"));
    assert_false(in("10.0.0.0/8", "11.0.0.0"));
    assert_false(in("10.0.0.0/8", "9.255.255.255"));
    assert_true(in("1.2.3.0/25", "1.2.3.127"));
    assert_false(in("1.2.3.0/25", "1.2.3.128"));
    assert_true(in("172.16.0.0/13", "172.23.255.255"));
    assert_false(in("172.16.0.0/13", "172.24.0.0"));
    assert_true(in("1.2.3.4", "1.2.3.4"));
    assert_false(in("1.2.3.4/32", "1.2.3.5"));
    assert_true(in("0.0.0.0/0", "255.255.255.255"));
    assert_true(in("0.0.0.0/0", "::ffff:8.8.8.8"));
    assert_false(in("0.0.0.0/0", "::1"));
    assert_false(in("0.0.0.0/0", "::"));
    /* IPv6 ranges never hold IPv4 clients, mapped or not. */
    assert_true(in("::/0", "::1"));
    assert_false(in("::/0", "1.2.3.4"));
    assert_false(in("::/0", "::ffff:1.2.3.4"));
    assert_false(in("::ffff:0:0/95", "::ffff:1.2.3.4"));
    assert_true(in("::ffff:0:0/96", "1.2.3.4"));
    assert_true(in("::ffff:10.0.0.0/104", "::ffff:10.9.9.9"));
    assert_true(in("10.0.0.0/8", "::ffff:10.1.2.3"));
    assert_true(in("2001:db8::/64", "2001:db8::ffff:ffff:ffff:ffff"));
    assert_false(in("2001:db8::/64", "2001:db8:0:1::"));
    assert_true(in("2001:db8::/127", "2001:db8::1"));
    assert_false(in("2001:db8::/127", "2001:db8::2"));
    assert_true(in("::1/128", "::1"));
    assert_false(in("::1/128", "::2"));
    assert_false(in("::1.2.3.4", "1.2.3.4"));
    /* A hand-made struct with an impossible prefix contains nothing. */
    assert_int_equal(rp_cidr_parse("0.0.0.0/0", 9, &c), 0);
    c.bits = 33;
    assert_int_equal(rp_ip_parse("1.2.3.4", 7, a, &v4), 0);
    assert_false(rp_cidr_contains(&c, a, v4));
}

static void test_cidr_format_small(void **state)
{
    rp_cidr c;
    char s[RP_CIDR_STRLEN];
    const char *longest = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124";

    (void)state;
    assert_int_equal(rp_cidr_parse(longest, strlen(longest), &c), 0);
    assert_int_equal(rp_cidr_format(&c, s, sizeof(s)), 0);
    assert_string_equal(s, longest);
    assert_int_equal(rp_cidr_format(&c, s, strlen(longest)), RP_ETOOBIG);
    assert_string_equal(s, "");
    assert_int_equal(rp_cidr_format(&c, s, 0), RP_ETOOBIG);
}

/* ---- parser ------------------------------------------------------------------------------- */

#define AP "\"action\":\"Allow\",\"priority\":100"

static void test_parse_list_errors(void **state)
{
    char *big;
    size_t len = 0, last = 0, cap = 513 * 64 + 16;

    (void)state;
    refuse("{}", NULL, RP_EINVAL, "ipSecurityRestrictions: must be an array");
    refuse("\"1.2.3.4\"", NULL, RP_EINVAL, "ipSecurityRestrictions: must be an array");
    refuse("[]", "Maybe", RP_EINVAL, "defaultAction: must be Allow or Deny");
    refuse(NULL, "", RP_EINVAL, "defaultAction: must be Allow or Deny");
    refuse("[1]", NULL, RP_EINVAL, "rule 0: rule: must be an object");
    refuse("[{\"ipAddress\":\"Any\"," AP "}, null]", NULL, RP_EINVAL,
           "rule 1: rule: must be an object");

    big = malloc(cap);
    assert_non_null(big);
    big[len++] = '[';
    for (int i = 0; i < 513; i++) {
        if (i == 512)
            last = len;
        len += (size_t)snprintf(big + len, cap - len, "%s{\"ipAddress\":\"Any\"," AP "}",
                                i ? "," : "");
    }
    memcpy(big + len, "]", 2);
    refuse(big, NULL, RP_ETOOBIG, "ipSecurityRestrictions: more than 512 rules");
    /* Exactly 512 is fine. */
    memcpy(big + last, "]", 2);
    {
        rp_access *a = build(big, NULL);
        assert_int_equal(rp_access_count(a), 512);
        rp_access_free(a);
    }
    free(big);
}

static void test_parse_required(void **state)
{
    (void)state;
    refuse_rule(AP, RP_EINVAL, "rule 0: ipAddress: required");
    refuse_rule("\"name\":\"web\"," AP, RP_EINVAL, "rule 0 (web): ipAddress: required");
    refuse_rule("\"ipAddress\":null," AP, RP_EINVAL, "rule 0: ipAddress: required");
    refuse_rule("\"ipAddress\":\"Any\",\"priority\":1", RP_EINVAL, "rule 0: action: required");
    refuse_rule("\"ipAddress\":\"Any\",\"action\":null,\"priority\":1", RP_EINVAL,
                "rule 0: action: required");
    refuse_rule("\"name\":\"n\",\"ipAddress\":\"Any\",\"action\":\"Deny\"", RP_EINVAL,
                "rule 0 (n): priority: required");
    refuse_rule("\"ipAddress\":\"Any\",\"action\":\"Deny\",\"priority\":null", RP_EINVAL,
                "rule 0: priority: required");
}

static void test_parse_ip_errors(void **state)
{
    (void)state;
    refuse("[{\"ipAddress\":\"Any\"," AP "},{\"name\":\"b\",\"ipAddress\":\"10.0.0.1/33\"," AP "}]",
           NULL, RP_EINVAL, "rule 1 (b): ipAddress: '10.0.0.1/33' is not an IPv4 or IPv6 CIDR");
    refuse_rule("\"ipAddress\":5," AP, RP_EINVAL, "rule 0: ipAddress: must be a string");
    refuse_rule("\"ipAddress\":\"\"," AP, RP_EINVAL, "rule 0: ipAddress: must not be empty");
    refuse_rule("\"ipAddress\":\"  \"," AP, RP_EINVAL, "rule 0: ipAddress: must not be empty");
    refuse_rule("\"ipAddress\":\"1.2.3.4,,5.6.7.8\"," AP, RP_EINVAL,
                "rule 0: ipAddress: empty entry in the list");
    refuse_rule("\"ipAddress\":\"1.2.3.4,\"," AP, RP_EINVAL,
                "rule 0: ipAddress: empty entry in the list");
    refuse_rule("\"ipAddress\":\"1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5,6.6.6.6,7.7.7.7,"
                "8.8.8.8,9.9.9.9\"," AP,
                RP_ETOOBIG, "rule 0: ipAddress: more than 8 addresses");
    refuse_rule("\"ipAddress\":\"Any,1.2.3.4\"," AP, RP_EINVAL,
                "rule 0: ipAddress: 'Any' cannot be combined with addresses");
    refuse_rule("\"ipAddress\":\"1.2.3.4, any\"," AP, RP_EINVAL,
                "rule 0: ipAddress: 'Any' cannot be combined with addresses");
    refuse_rule("\"ipAddress\":\"1.2.3.4\\n\"," AP, RP_EINVAL,
                "rule 0: ipAddress: '1.2.3.4?' is not an IPv4 or IPv6 CIDR");
    refuse_rule("\"ipAddress\":\"1.2.3.4\\u0000/8\"," AP, RP_EINVAL,
                "rule 0: ipAddress: must not contain a NUL character");
    refuse_rule(
        "\"ipAddress\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"," AP,
        RP_EINVAL,
        "rule 0: ipAddress: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' is not an "
        "IPv4 or IPv6 CIDR");
    refuse_rule("\"ipAddress\":\"1.2.3.4/24 5.6.7.8\"," AP, RP_EINVAL,
                "rule 0: ipAddress: '1.2.3.4/24 5.6.7.8' is not an IPv4 or IPv6 CIDR");
}

static void test_parse_member_errors(void **state)
{
    (void)state;
    refuse_rule("\"ipAddress\":\"Any\",\"action\":\"Permit\",\"priority\":1", RP_EINVAL,
                "rule 0: action: must be Allow or Deny");
    refuse_rule("\"ipAddress\":\"Any\",\"action\":1,\"priority\":1", RP_EINVAL,
                "rule 0: action: must be a string");
    refuse_rule("\"ipAddress\":\"Any\",\"action\":\"Allow\",\"priority\":0", RP_EINVAL,
                "rule 0: priority: must be between 1 and 2147483647");
    refuse_rule("\"ipAddress\":\"Any\",\"action\":\"Allow\",\"priority\":-5", RP_EINVAL,
                "rule 0: priority: must be between 1 and 2147483647");
    refuse_rule("\"ipAddress\":\"Any\",\"action\":\"Allow\",\"priority\":2147483648", RP_EINVAL,
                "rule 0: priority: must be between 1 and 2147483647");
    refuse_rule("\"ipAddress\":\"Any\",\"action\":\"Allow\",\"priority\":1.5", RP_EINVAL,
                "rule 0: priority: must be an integer");
    refuse_rule("\"ipAddress\":\"Any\",\"action\":\"Allow\",\"priority\":\"1\"", RP_EINVAL,
                "rule 0: priority: must be an integer");
    refuse_rule("\"name\":\"12345678901234567890123456789012345678901234567890123456789012345\","
                "\"ipAddress\":\"Any\"," AP,
                RP_ETOOBIG, "rule 0: name: longer than 64 bytes");
    refuse_rule("\"name\":\"a\\tb\",\"ipAddress\":\"Any\"," AP, RP_EINVAL,
                "rule 0: name: must not contain control characters");
    refuse_rule("\"name\":\"a\\u007fb\",\"ipAddress\":\"Any\"," AP, RP_EINVAL,
                "rule 0: name: must not contain control characters");
    refuse_rule("\"name\":\"a\\u0000b\",\"ipAddress\":\"Any\"," AP, RP_EINVAL,
                "rule 0: name: must not contain a NUL character");
    refuse_rule("\"name\":7,\"ipAddress\":\"Any\"," AP, RP_EINVAL,
                "rule 0: name: must be a string");
    refuse_rule(
        "\"name\":\"caf\\u00e9\",\"description\":\"line\\nbreak\",\"ipAddress\":\"Any\"," AP,
        RP_EINVAL, "rule 0 (caf?\?): description: must not contain control characters");
    {
        char m[600];
        int n = snprintf(m, sizeof(m), "\"description\":\"");
        memset(m + n, 'd', 257);
        snprintf(m + n + 257, sizeof(m) - (size_t)n - 257, "\",\"ipAddress\":\"Any\"," AP);
        refuse_rule(m, RP_ETOOBIG, "rule 0: description: longer than 256 bytes");
    }
    refuse_rule("\"name\":\"st\",\"ipAddress\":\"Any\",\"tag\":\"ServiceTag\"," AP, RP_EUNSUPPORTED,
                "rule 0 (st): tag: service tags are not supported");
    refuse_rule("\"ipAddress\":\"Any\",\"tag\":\"Bogus\"," AP, RP_EINVAL,
                "rule 0: tag: must be Default or XffProxy");
    refuse_rule("\"ipAddress\":\"Any\",\"tag\":[]," AP, RP_EINVAL, "rule 0: tag: must be a string");
    refuse_rule("\"ipAddress\":\"Any\",\"vnetSubnetResourceId\":\"/subscriptions/x\"," AP,
                RP_EUNSUPPORTED,
                "rule 0: vnetSubnetResourceId: virtual network rules are not supported");
    refuse_rule("\"ipAddress\":\"Any\",\"subnetMask\":\"255.255.255.0\"," AP, RP_EUNSUPPORTED,
                "rule 0: subnetMask: virtual network rules are not supported");
    refuse_rule("\"ipAddress\":\"Any\",\"vnetTrafficTag\":1," AP, RP_EUNSUPPORTED,
                "rule 0: vnetTrafficTag: virtual network rules are not supported");
    refuse_rule("\"ipAddress\":\"Any\",\"subnetTrafficTag\":0," AP, RP_EUNSUPPORTED,
                "rule 0: subnetTrafficTag: virtual network rules are not supported");
    refuse_rule("\"name\":\"u\",\"ipAddress\":\"Any\",\"foo\":1," AP, RP_EINVAL,
                "rule 0 (u): foo: unknown member");
    refuse_rule("\"ipaddress\":\"Any\"," AP, RP_EINVAL, "rule 0: ipaddress: unknown member");
    {
        /* The decoder refuses NUL in keys; a caller building JSON by hand can make one. */
        json_t *j = load("[{\"ipAddress\":\"Any\"," AP "}]");
        rp_access *a = (rp_access *)1;
        char err[128];

        assert_int_equal(json_object_setn_new(json_array_get(j, 0), "name\0x", 6, json_string("n")),
                         0);
        assert_int_equal(rp_access_parse(j, NULL, &a, err, sizeof(err)), RP_EINVAL);
        assert_null(a);
        assert_string_equal(err, "rule 0: name?x: unknown member");
        json_decref(j);
    }
}

static void test_parse_header_errors(void **state)
{
    (void)state;
    refuse_rule("\"ipAddress\":\"Any\",\"headers\":[]," AP, RP_EINVAL,
                "rule 0: headers: must be an object");
    refuse_rule("\"ipAddress\":\"Any\",\"headers\":{\"X-Forwarded-Host\":[]}," AP, RP_EINVAL,
                "rule 0: headers: 'X-Forwarded-Host' is not supported (x-forwarded-host, "
                "x-forwarded-for, x-azure-fdid and x-fd-healthprobe are, in lowercase)");
    refuse_rule("\"ipAddress\":\"Any\",\"headers\":{\"x-real-ip\":[]}," AP, RP_EINVAL,
                "rule 0: headers: 'x-real-ip' is not supported (x-forwarded-host, "
                "x-forwarded-for, x-azure-fdid and x-fd-healthprobe are, in lowercase)");
    refuse_rule("\"ipAddress\":\"Any\",\"headers\":{\"x-forwarded-for\":\"1.2.3.4\"}," AP,
                RP_EINVAL, "rule 0: headers.x-forwarded-for: must be an array of strings");
    refuse_rule("\"ipAddress\":\"Any\",\"headers\":{\"x-azure-fdid\":"
                "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}," AP,
                RP_ETOOBIG, "rule 0: headers.x-azure-fdid: more than 8 values");
    refuse_rule("\"ipAddress\":\"Any\",\"headers\":{\"x-azure-fdid\":[\"a\",2]}," AP, RP_EINVAL,
                "rule 0: headers.x-azure-fdid[1]: must be a string");
    refuse_rule("\"ipAddress\":\"Any\",\"headers\":{\"x-fd-healthprobe\":"
                "[\"12345678901234567890123456789012345678901234567890123456789012345\"]}," AP,
                RP_ETOOBIG, "rule 0: headers.x-fd-healthprobe[0]: longer than 64 bytes");
    refuse_rule("\"ipAddress\":\"Any\",\"headers\":{\"x-fd-healthprobe\":[\"\"]}," AP, RP_EINVAL,
                "rule 0: headers.x-fd-healthprobe[0]: must not be empty");
    refuse_rule("\"ipAddress\":\"Any\",\"headers\":{\"x-azure-fdid\":[\"a b\"]}," AP, RP_EINVAL,
                "rule 0: headers.x-azure-fdid[0]: must be printable ASCII without spaces");
    refuse_rule("\"ipAddress\":\"Any\",\"headers\":{\"x-azure-fdid\":[\"caf\\u00e9\"]}," AP,
                RP_EINVAL,
                "rule 0: headers.x-azure-fdid[0]: must be printable ASCII without spaces");
    refuse_rule("\"ipAddress\":\"Any\",\"headers\":{\"x-forwarded-for\":[\"10.0.0.0/8\","
                "\"1.2.3.4/40\"]}," AP,
                RP_EINVAL,
                "rule 0: headers.x-forwarded-for[1]: '1.2.3.4/40' is not an IPv4 or IPv6 CIDR");
    refuse_rule("\"ipAddress\":\"Any\",\"headers\":{\"x-forwarded-for\":[\" 1.2.3.4\"]}," AP,
                RP_EINVAL,
                "rule 0: headers.x-forwarded-for[0]: ' 1.2.3.4' is not an IPv4 or IPv6 CIDR");

    static const char *const hosts[] = {"a..com",  "*.",     "*",      "a.*.com", "*.*.com",
                                        "host:80", "a.com.", ".a.com", "a b.com", "[::1]",
                                        "**.com",  "*a.com", "ä.com",  "a.com/x"};
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        char m[256], msg[256];
        snprintf(m, sizeof(m),
                 "\"ipAddress\":\"Any\",\"headers\":{\"x-forwarded-host\":[\"%s\"]}," AP, hosts[i]);
        snprintf(msg, sizeof(msg),
                 "rule 0: headers.x-forwarded-host[0]: '%s' is not a host name "
                 "or a '*.' wildcard host name",
                 hosts[i]);
        if (strcmp(hosts[i], "ä.com") == 0)
            snprintf(msg, sizeof(msg),
                     "rule 0: headers.x-forwarded-host[0]: '??.com' is not a "
                     "host name or a '*.' wildcard host name");
        refuse_rule(m, RP_EINVAL, msg);
    }
}

static void test_parse_accepts(void **state)
{
    rp_access *a;
    char err[8];

    (void)state;
    /* Azure's GET prints nulls for what is not set; they read as absent. */
    a = build("[{\"ipAddress\":\"1.2.3.4/32\",\"action\":\"allow\",\"priority\":2147483647,"
              "\"name\":null,\"description\":null,\"tag\":null,\"headers\":null,"
              "\"vnetSubnetResourceId\":null,\"subnetMask\":null,\"vnetTrafficTag\":null,"
              "\"subnetTrafficTag\":null},"
              "{\"ipAddress\":\"1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5,6.6.6.6,7.7.7.7,"
              "2001:db8::/32\",\"action\":\"DENY\",\"priority\":1,\"tag\":\"xffproxy\","
              "\"name\":\"1234567890123456789012345678901234567890123456789012345678901234\","
              "\"headers\":{\"x-forwarded-host\":[],\"x-forwarded-for\":[],"
              "\"x-azure-fdid\":[],\"x-fd-healthprobe\":[]}}]",
              "deny");
    assert_int_equal(rp_access_count(a), 2);
    rp_access_free(a);
    rp_access_free(NULL);
    assert_int_equal(rp_access_count(NULL), 0);

    /* No err buffer, or a tiny one, is fine. */
    {
        json_t *j = load("[1]");
        a = (rp_access *)1;
        assert_int_equal(rp_access_parse(j, NULL, &a, NULL, 0), RP_EINVAL);
        assert_null(a);
        assert_int_equal(rp_access_parse(j, "x", &a, NULL, 0), RP_EINVAL);
        assert_int_equal(rp_access_parse(j, NULL, &a, err, sizeof(err)), RP_EINVAL);
        assert_string_equal(err, "rule 0:");
        json_decref(j);
    }
    /* JSON null is no rules. */
    {
        json_t *j = json_null();
        assert_int_equal(rp_access_parse(j, NULL, &a, err, sizeof(err)), 0);
        assert_int_equal(rp_access_count(a), 0);
        rp_access_free(a);
        json_decref(j);
    }
}

/* jansson checks the UTF-8 it decodes, but not what a caller builds with _nocheck. */
static void test_parse_utf8(void **state)
{
    static const struct {
        const char *name;
        int ok;
    } t[] = {
        {"caf\xc3\xa9", 1},
        {"\xe2\x82\xac uro", 1},
        {"\xf0\x9f\x94\x92 lock", 1},
        {"\xf4\x8f\xbf\xbf", 1},
        {"\xc3", 0},
        {"\xc0\xaf", 0},
        {"\xe0\x80\xaf", 0},
        {"\xed\xa0\x80", 0},
        {"\xf4\x90\x80\x80", 0},
        {"\xf8\x88\x80\x80\x80", 0},
        {"\x80", 0},
        {"a\xe2\x82", 0},
        {"\xe2\x28\xa1", 0},
        {"\xf0\x9f\x94", 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        json_t *j = load("[{\"ipAddress\":\"Any\"," AP "}]");
        rp_access *a = NULL;
        char err[128];
        int rc;

        assert_int_equal(json_object_set_new(json_array_get(j, 0), "description",
                                             json_string_nocheck(t[i].name)),
                         0);
        rc = rp_access_parse(j, NULL, &a, err, sizeof(err));
        if (t[i].ok) {
            assert_int_equal(rc, 0);
            rp_access_free(a);
        } else {
            assert_int_equal(rc, RP_EINVAL);
            assert_string_equal(err, "rule 0: description: is not valid UTF-8");
        }
        json_decref(j);
    }
}

static void test_parse_oom(void **state)
{
    json_t *j = load("[{\"ipAddress\":\"Any\"," AP "}]");
    rp_access *a = (rp_access *)1;
    char err[64];

    (void)state;
    for (long n = 0; n < 2; n++) {
        rp_alloc_fail_after(n);
        assert_int_equal(rp_access_parse(j, NULL, &a, err, sizeof(err)), RP_ENOMEM);
        rp_alloc_fail_after(-1);
        assert_null(a);
        assert_string_equal(err, "out of memory");
    }
    rp_alloc_fail_after(2);
    assert_int_equal(rp_access_parse(j, NULL, &a, err, sizeof(err)), 0);
    rp_alloc_fail_after(-1);
    rp_access_free(a);
    json_decref(j);
}

/* ---- decisions ---------------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    rp_access *a;

    (void)state;
    a = build(NULL, NULL);
    expect(check(a, "1.2.3.4", END), 1, -1, "Allow all");
    expect(check(a, "::1", END), 1, -1, "Allow all");
    rp_access_free(a);

    a = build("[]", NULL);
    expect(check(a, "1.2.3.4", END), 1, -1, "Allow all");
    rp_access_free(a);

    a = build("[]", "Deny");
    expect(check(a, "1.2.3.4", END), 0, -1, "Deny all");
    rp_access_free(a);

    a = build(NULL, "Allow");
    expect(check(a, "1.2.3.4", END), 1, -1, "Allow all");
    rp_access_free(a);

    /* One Allow rule turns the default into an implicit Deny. */
    a = build("[{\"ipAddress\":\"10.0.0.0/8\",\"action\":\"Allow\",\"priority\":100,"
              "\"name\":\"office\"}]",
              NULL);
    expect(check(a, "10.9.8.7", END), 1, 0, "office");
    expect(check(a, "11.0.0.1", END), 0, -1, "Deny all");
    expect(check(a, "::1", END), 0, -1, "Deny all");
    rp_access_free(a);

    /* A deny list with an explicit Allow default. */
    a = build("[{\"ipAddress\":\"203.0.113.0/24\",\"action\":\"Deny\",\"priority\":100,"
              "\"name\":\"bad\"}]",
              "Allow");
    expect(check(a, "203.0.113.9", END), 0, 0, "bad");
    expect(check(a, "198.51.100.1", END), 1, -1, "Allow all");
    rp_access_free(a);

    /* A NULL set is no restrictions. */
    expect(check(NULL, "1.2.3.4", END), 1, -1, "Allow all");
}

static void test_bad_client(void **state)
{
    rp_access *a;

    (void)state;
    a = build(NULL, NULL);
    expect(check(a, NULL, END), 1, -1, "Allow all");
    expect(check(a, "garbage", END), 1, -1, "Allow all");
    rp_access_free(a);
    a = build(NULL, "Deny");
    expect(check(a, "garbage", END), 0, -1, "Deny all");
    rp_access_free(a);
    /* Even an Allow-Any rule or an Allow default does not admit an unknown peer. */
    a = build("[{\"ipAddress\":\"Any\",\"action\":\"Allow\",\"priority\":1,\"name\":\"all\"}]",
              "Allow");
    expect(check(a, NULL, END), 0, -1, "Invalid client address");
    expect(check(a, "", END), 0, -1, "Invalid client address");
    expect(check(a, "1.2.3.4:80", END), 0, -1, "Invalid client address");
    expect(check(a, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128", END), 0, -1,
           "Invalid client address");
    expect(check(a, "1.2.3.4", END), 1, 0, "all");
    rp_access_free(a);
}

static void test_priority_order(void **state)
{
    rp_access *a;

    (void)state;
    /* Listed out of order: the lower priority number decides first. */
    a = build("[{\"ipAddress\":\"10.0.0.0/8\",\"action\":\"Deny\",\"priority\":200,"
              "\"name\":\"deny-10\"},"
              "{\"ipAddress\":\"10.1.0.0/16\",\"action\":\"Allow\",\"priority\":100,"
              "\"name\":\"allow-10-1\"},"
              "{\"ipAddress\":\"Any\",\"action\":\"Allow\",\"priority\":300,\"name\":\"rest\"}]",
              NULL);
    expect(check(a, "10.1.2.3", END), 1, 0, "allow-10-1");
    expect(check(a, "10.2.0.1", END), 0, 1, "deny-10");
    expect(check(a, "192.0.2.1", END), 1, 2, "rest");
    expect(check(a, "2001:db8::1", END), 1, 2, "rest");
    rp_access_free(a);

    /* First match wins even when a later rule is more specific. */
    a = build("[{\"ipAddress\":\"10.0.0.0/8\",\"action\":\"Deny\",\"priority\":1,\"name\":\"a\"},"
              "{\"ipAddress\":\"10.0.0.1\",\"action\":\"Allow\",\"priority\":2,\"name\":\"b\"}]",
              NULL);
    expect(check(a, "10.0.0.1", END), 0, 0, "a");
    rp_access_free(a);

    /* Equal priorities keep the listed order, both ways round. */
    a = build("[{\"ipAddress\":\"10.0.0.0/8\",\"action\":\"Allow\",\"priority\":5,"
              "\"name\":\"first\"},"
              "{\"ipAddress\":\"10.0.0.0/8\",\"action\":\"Deny\",\"priority\":5,"
              "\"name\":\"second\"},"
              "{\"ipAddress\":\"10.0.0.0/8\",\"action\":\"Deny\",\"priority\":4}]",
              NULL);
    expect(check(a, "10.0.0.1", END), 0, 0, "");
    rp_access_free(a);
    a = build("[{\"ipAddress\":\"10.0.0.0/8\",\"action\":\"Allow\",\"priority\":5,"
              "\"name\":\"first\"},"
              "{\"ipAddress\":\"10.0.0.0/8\",\"action\":\"Deny\",\"priority\":5,"
              "\"name\":\"second\"}]",
              NULL);
    expect(check(a, "10.0.0.1", END), 1, 0, "first");
    rp_access_free(a);
    a = build("[{\"ipAddress\":\"10.0.0.0/8\",\"action\":\"Deny\",\"priority\":5,"
              "\"name\":\"second\"},"
              "{\"ipAddress\":\"10.0.0.0/8\",\"action\":\"Allow\",\"priority\":5,"
              "\"name\":\"first\"}]",
              NULL);
    expect(check(a, "10.0.0.1", END), 0, 0, "second");
    rp_access_free(a);

    /* Many equal priorities: the order of the list survives sorting. */
    {
        char text[8192];
        size_t len = 0;

        len += (size_t)snprintf(text + len, sizeof(text) - len, "[");
        for (int i = 0; i < 40; i++)
            len += (size_t)snprintf(text + len, sizeof(text) - len,
                                    "%s{\"ipAddress\":\"10.0.0.%d\",\"action\":\"Allow\","
                                    "\"priority\":%d,\"name\":\"r%d\"}",
                                    i ? "," : "", i % 4, 7 - (i % 2), i);
        snprintf(text + len, sizeof(text) - len, "]");
        a = build(text, NULL);
        /* Priority 6 holds the odd i in list order: 1, 3, 5...; 10.0.0.1 is first r1. */
        expect(check(a, "10.0.0.1", END), 1, 0, "r1");
        expect(check(a, "10.0.0.3", END), 1, 1, "r3");
        expect(check(a, "10.0.0.0", END), 1, 20, "r0");
        expect(check(a, "10.0.0.2", END), 1, 21, "r2");
        rp_access_free(a);
    }
}

static void test_sources(void **state)
{
    rp_access *a;

    (void)state;
    a = build("[{\"ipAddress\":\"192.0.2.1/32, 198.51.100.0/24 ,2001:db8::/32\","
              "\"action\":\"Allow\",\"priority\":10,\"name\":\"multi\"},"
              "{\"ipAddress\":\"::/0\",\"action\":\"Deny\",\"priority\":20,\"name\":\"v6\"},"
              "{\"ipAddress\":\"0.0.0.0/0\",\"action\":\"Allow\",\"priority\":30,"
              "\"name\":\"v4\"}]",
              "Deny");
    expect(check(a, "192.0.2.1", END), 1, 0, "multi");
    expect(check(a, "192.0.2.2", END), 1, 2, "v4");
    expect(check(a, "198.51.100.200", END), 1, 0, "multi");
    expect(check(a, "2001:db8:ffff::1", END), 1, 0, "multi");
    expect(check(a, "2001:db9::1", END), 0, 1, "v6");
    expect(check(a, "::1", END), 0, 1, "v6");
    /* A dual-stack listener reports IPv4 clients mapped: they are IPv4 clients. */
    expect(check(a, "::ffff:192.0.2.1", END), 1, 0, "multi");
    expect(check(a, "::ffff:8.8.8.8", END), 1, 2, "v4");
    rp_access_free(a);

    a = build("[{\"ipAddress\":\"Any\",\"action\":\"Deny\",\"priority\":1}]", "Allow");
    expect(check(a, "1.2.3.4", END), 0, 0, "");
    expect(check(a, "fe80::1", END), 0, 0, "");
    rp_access_free(a);

    /* Host bits in a rule are cleared, not refused; mapped rules are IPv4 rules. */
    a = build("[{\"ipAddress\":\"10.1.2.3/16\",\"action\":\"Allow\",\"priority\":1},"
              "{\"ipAddress\":\"::ffff:172.16.0.0/108\",\"action\":\"Allow\",\"priority\":2}]",
              NULL);
    expect(check(a, "10.1.200.1", END), 1, 0, "");
    expect(check(a, "10.2.0.1", END), 0, -1, "Deny all");
    expect(check(a, "172.16.5.5", END), 1, 1, "");
    expect(check(a, "172.32.0.1", END), 0, -1, "Deny all");
    rp_access_free(a);
}

#define XFH_RULE                                                                                   \
    "[{\"ipAddress\":\"Any\",\"action\":\"Allow\",\"priority\":1,\"name\":\"fd\",\"headers\":"     \
    "{\"x-forwarded-host\":[\"contoso.com\",\"*.Fabrikam.net\"]}}]"

static void test_header_xfh(void **state)
{
    static const struct {
        const char *value;
        int allowed;
    } t[] = {
        {"contoso.com", 1},        {"CONTOSO.COM", 1},           {"contoso.com:443", 1},
        {"contoso.com:", 1},       {" contoso.com ", 1},         {"contoso.com:abc", 0},
        {"contoso.com:443:1", 0},  {"www.contoso.com", 0},       {"contoso.comx", 0},
        {"xcontoso.com", 0},       {"a.fabrikam.net", 1},        {"A.Fabrikam.NET:8080", 1},
        {"a-b_c.fabrikam.net", 1}, {"a.b.fabrikam.net", 0},      {"fabrikam.net", 0},
        {".fabrikam.net", 0},      {"xfabrikam.net", 0},         {"a.fabrikam.net.", 0},
        {"[::1]:443", 0},          {"contoso.com, evil.com", 0}, {"", 0},
    };
    rp_access *a = build(XFH_RULE, NULL);

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        rp_access_result r = check(a, "1.2.3.4", "X-Forwarded-Host", t[i].value, END);
        if (r.allowed != t[i].allowed)
            fail_msg("x-forwarded-host '%s': allowed %d", t[i].value, r.allowed);
    }
    expect(check(a, "1.2.3.4", END), 0, -1, "Deny all");
    expect(check(a, "1.2.3.4", "x-forwarded-for", "contoso.com", END), 0, -1, "Deny all");
    /* Any occurrence may match. */
    expect(
        check(a, "1.2.3.4", "x-forwarded-host", "evil.com", "x-forwarded-host", "contoso.com", END),
        1, 0, "fd");
    rp_access_free(a);
}

#define XFF_RULE                                                                                   \
    "[{\"ipAddress\":\"Any\",\"action\":\"Allow\",\"priority\":1,\"name\":\"xff\",\"headers\":"    \
    "{\"x-forwarded-for\":[\"10.0.0.0/8\",\"2001:db8::/32\"]}}]"

static void test_header_xff(void **state)
{
    static const struct {
        const char *value;
        int allowed;
    } t[] = {
        {"10.1.2.3", 1},
        {"10.1.2.3:5678", 1},
        {"203.0.113.9, 10.1.2.3", 1},
        {"10.1.2.3,203.0.113.9", 1},
        {"  10.1.2.3  ", 1},
        {"[2001:db8::1]:443", 1},
        {"[2001:db8::1]", 1},
        {"2001:db8::1", 1},
        {"::ffff:10.0.0.1", 1},
        {"[::ffff:10.0.0.1]:1", 1},
        {"garbage, , 1.2.3.4:99999, [::1, ]:80, 10.1.2.3", 1},
        {"203.0.113.9", 0},
        {"11.0.0.1, 2001:db9::1", 0},
        {"10.1.2.3:", 0},
        {"10.1.2.3:99999", 0},
        {"10.1.2.3:80x", 0},
        {"[10.1.2.3]:80", 0},
        {"[2001:db8::1]x", 0},
        {"[2001:db8::1]:", 0},
        {"[2001:db8::1", 0},
        {"2001:db8::1]:80", 0},
        {"10.1.2.3/8", 0},
        {"010.1.2.3", 0},
        {"unknown", 0},
        {",,,,", 0},
        {"", 0},
        {"10.1.2.3 10.1.2.4", 0},
    };
    rp_access *a = build(XFF_RULE, NULL);

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        rp_access_result r = check(a, "1.2.3.4", "X-Forwarded-For", t[i].value, END);
        if (r.allowed != t[i].allowed)
            fail_msg("x-forwarded-for '%s': allowed %d", t[i].value, r.allowed);
    }
    expect(check(a, "10.1.2.3", END), 0, -1, "Deny all"); /* the peer is not the header */
    expect(check(a, "1.2.3.4", "x-forwarded-for", "1.1.1.1", "x-forwarded-for", "10.0.0.1", END), 1,
           0, "xff");
    rp_access_free(a);
}

static void test_header_xff_cap(void **state)
{
    char chain[2048];
    size_t len = 0;
    rp_access *a = build(XFF_RULE, NULL);

    (void)state;
    /* Garbage entries do not count against the cap... */
    for (int i = 0; i < 100; i++)
        len += (size_t)snprintf(chain + len, sizeof(chain) - len, "x,");
    snprintf(chain + len, sizeof(chain) - len, "10.0.0.1");
    expect(check(a, "1.2.3.4", "x-forwarded-for", chain, END), 1, 0, "xff");
    /* ...addresses do: the 65th is not looked at. */
    len = 0;
    for (int i = 0; i < RP_ACCESS_XFF_MAX; i++)
        len += (size_t)snprintf(chain + len, sizeof(chain) - len, "192.0.2.%d,", i);
    snprintf(chain + len, sizeof(chain) - len, "10.0.0.1");
    expect(check(a, "1.2.3.4", "x-forwarded-for", chain, END), 0, -1, "Deny all");
    rp_access_free(a);
}

static void test_header_fd(void **state)
{
    rp_access *a;

    (void)state;
    a = build("[{\"ipAddress\":\"Any\",\"action\":\"Allow\",\"priority\":1,\"name\":\"fd\","
              "\"headers\":{\"x-azure-fdid\":[\"8a1b2c3d-0000-4000-8000-00000000abcd\"]}},"
              "{\"ipAddress\":\"Any\",\"action\":\"Allow\",\"priority\":2,\"name\":\"probe\","
              "\"headers\":{\"x-fd-healthprobe\":[\"1\",\"Yes\"]}}]",
              NULL);
    expect(check(a, "1.2.3.4", "X-Azure-FDID", "8a1b2c3d-0000-4000-8000-00000000abcd", END), 1, 0,
           "fd");
    expect(check(a, "1.2.3.4", "x-azure-fdid", "8A1B2C3D-0000-4000-8000-00000000ABCD", END), 1, 0,
           "fd");
    expect(check(a, "1.2.3.4", "x-azure-fdid", "\t8a1b2c3d-0000-4000-8000-00000000abcd ", END), 1,
           0, "fd");
    expect(check(a, "1.2.3.4", "x-azure-fdid", "8a1b2c3d-0000-4000-8000-00000000abce", END), 0, -1,
           "Deny all");
    expect(check(a, "1.2.3.4", "x-azure-fdid", "8a1b2c3d-0000-4000-8000-00000000abc", END), 0, -1,
           "Deny all");
    expect(check(a, "1.2.3.4", "x-azure-fdid", "", END), 0, -1, "Deny all");
    expect(check(a, "1.2.3.4", "x-azure-fdid", "x", "x-azure-fdid",
                 "8a1b2c3d-0000-4000-8000-00000000abcd", END),
           1, 0, "fd");
    expect(check(a, "1.2.3.4", "X-FD-HealthProbe", "1", END), 1, 1, "probe");
    expect(check(a, "1.2.3.4", "x-fd-healthprobe", "Yes", END), 1, 1, "probe");
    expect(check(a, "1.2.3.4", "x-fd-healthprobe", "yes", END), 0, -1, "Deny all");
    expect(check(a, "1.2.3.4", "x-fd-healthprobe", "0", END), 0, -1, "Deny all");
    expect(check(a, "1.2.3.4", END), 0, -1, "Deny all");
    rp_access_free(a);
}

static void test_header_and(void **state)
{
    rp_access *a;

    (void)state;
    /* Source AND every non-empty filter; an empty list accepts anything, even no header. */
    a = build("[{\"ipAddress\":\"10.0.0.0/8\",\"action\":\"Allow\",\"priority\":1,\"name\":\"r\","
              "\"headers\":{\"x-forwarded-host\":[\"app.contoso.com\"],"
              "\"x-azure-fdid\":[\"id1\"],\"x-fd-healthprobe\":[],\"x-forwarded-for\":[]}}]",
              NULL);
    expect(check(a, "10.0.0.1", "x-forwarded-host", "app.contoso.com", "x-azure-fdid", "id1", END),
           1, 0, "r");
    expect(check(a, "10.0.0.1", "x-forwarded-host", "app.contoso.com", "x-azure-fdid", "id1",
                 "x-fd-healthprobe", "whatever", "x-forwarded-for", "junk", END),
           1, 0, "r");
    expect(check(a, "11.0.0.1", "x-forwarded-host", "app.contoso.com", "x-azure-fdid", "id1", END),
           0, -1, "Deny all");
    expect(check(a, "10.0.0.1", "x-forwarded-host", "app.contoso.com", END), 0, -1, "Deny all");
    expect(check(a, "10.0.0.1", "x-azure-fdid", "id1", END), 0, -1, "Deny all");
    expect(check(a, "10.0.0.1", "x-forwarded-host", "other.com", "x-azure-fdid", "id1", END), 0, -1,
           "Deny all");
    rp_access_free(a);

    /* Only empty lists: the rule is its source alone. */
    a = build("[{\"ipAddress\":\"Any\",\"action\":\"Deny\",\"priority\":1,\"name\":\"e\","
              "\"headers\":{\"x-azure-fdid\":[]}}]",
              "Allow");
    expect(check(a, "10.0.0.1", END), 0, 0, "e");
    expect(check(a, "10.0.0.1", "x-azure-fdid", "anything", END), 0, 0, "e");
    rp_access_free(a);
}

/* ---- GET view ----------------------------------------------------------------------------- */

#define SAMPLE                                                                                     \
    "[{\"ipAddress\":\"10.1.2.3/8, 2001:DB8::1/32\",\"action\":\"deny\",\"priority\":300,"         \
    "\"name\":\"nets\",\"description\":\"two nets\"},"                                             \
    "{\"ipAddress\":\"any\",\"action\":\"Allow\",\"priority\":100,\"tag\":\"XFFPROXY\","           \
    "\"headers\":{\"x-forwarded-host\":[\"*.Contoso.COM\"],\"x-forwarded-for\":[\"::ffff:"         \
    "192.0.2.1/120\"],\"x-fd-healthprobe\":[]}},"                                                  \
    "{\"ipAddress\":\"192.0.2.7\",\"action\":\"Allow\",\"priority\":300,\"name\":\"host\","        \
    "\"tag\":\"Default\",\"headers\":{\"x-azure-fdid\":[\"ID-1\",\"id-2\"]}}]"

static void test_to_json(void **state)
{
    rp_access *a = build(SAMPLE, NULL);
    json_t *got = rp_access_to_json(a);
    json_t *want = load(
        "[{\"ipAddress\":\"Any\",\"action\":\"Allow\",\"tag\":\"XffProxy\",\"priority\":100,"
        "\"headers\":{\"x-forwarded-host\":[\"*.contoso.com\"],"
        "\"x-forwarded-for\":[\"192.0.2.0/24\"],\"x-fd-healthprobe\":[]}},"
        "{\"ipAddress\":\"10.0.0.0/8,2001:db8::/32\",\"action\":\"Deny\",\"tag\":\"Default\","
        "\"priority\":300,\"name\":\"nets\",\"description\":\"two nets\"},"
        "{\"ipAddress\":\"192.0.2.7/32\",\"action\":\"Allow\",\"tag\":\"Default\",\"priority\":300,"
        "\"name\":\"host\",\"headers\":{\"x-azure-fdid\":[\"ID-1\",\"id-2\"]}},"
        "{\"ipAddress\":\"Any\",\"action\":\"Deny\",\"tag\":\"Default\",\"priority\":2147483647,"
        "\"name\":\"Deny all\",\"description\":\"Deny all access\"}]");

    (void)state;
    assert_non_null(got);
    if (!json_equal(got, want)) {
        char *s = json_dumps(got, JSON_COMPACT);
        fail_msg("got %s", s);
    }
    json_decref(got);
    json_decref(want);
    rp_access_free(a);

    a = build(NULL, NULL);
    got = rp_access_to_json(a);
    want = load("[{\"ipAddress\":\"Any\",\"action\":\"Allow\",\"tag\":\"Default\","
                "\"priority\":2147483647,\"name\":\"Allow all\","
                "\"description\":\"Allow all access\"}]");
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    rp_access_free(a);
}

/* Parses the GET view back without its last rule and compares decisions and views. */
static void round_trip(const char *rules, const char *def)
{
    static const char *const ips[] = {"10.0.0.1",    "10.200.0.1",     "192.0.2.7", "192.0.2.8",
                                      "2001:db8::5", "2001:db9::5",    "::1",       "8.8.8.8",
                                      "garbage",     "::ffff:10.0.0.1"};
    static const char *const hdrs[][2] = {{"x", "y"},
                                          {"x-forwarded-host", "a.contoso.com"},
                                          {"x-forwarded-host", "contoso.com"},
                                          {"x-forwarded-for", "192.0.2.200:1"},
                                          {"x-azure-fdid", "id-1"},
                                          {"x-azure-fdid", "id-3"},
                                          {"x-fd-healthprobe", "1"}};
    rp_access *a = build(rules, def), *b = NULL;
    json_t *view = rp_access_to_json(a), *view2;
    char err[256];

    assert_non_null(view);
    assert_int_equal(json_array_remove(view, json_array_size(view) - 1), 0);
    assert_int_equal(rp_access_parse(view, def, &b, err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
        for (size_t k = 0; k < sizeof(hdrs) / sizeof(hdrs[0]); k++) {
            rp_access_result r1 = check(a, ips[i], hdrs[k][0], hdrs[k][1], END);
            rp_access_result r2 = check(b, ips[i], hdrs[k][0], hdrs[k][1], END);
            assert_int_equal(r1.allowed, r2.allowed);
            assert_int_equal(r1.matched, r2.matched);
            assert_string_equal(r1.rule, r2.rule);
        }
    }
    view2 = rp_access_to_json(b);
    assert_int_equal(json_array_remove(view2, json_array_size(view2) - 1), 0);
    assert_true(json_equal(view, view2));
    json_decref(view);
    json_decref(view2);
    rp_access_free(a);
    rp_access_free(b);
}

static void test_round_trip(void **state)
{
    (void)state;
    round_trip(SAMPLE, NULL);
    round_trip(SAMPLE, "Allow");
    round_trip("[]", "Deny");
    round_trip(NULL, NULL);
}

/* A jansson allocator that fails after a number of blocks (same malloc, so blocks mix). */
static long json_fail_after = -1;

static void *failing_malloc(size_t n)
{
    if (json_fail_after == 0)
        return NULL;
    if (json_fail_after > 0)
        json_fail_after--;
    return malloc(n);
}

static void test_to_json_oom(void **state)
{
    rp_access *a = build(SAMPLE, NULL);
    json_malloc_t om;
    json_free_t of;
    json_t *j = NULL;
    long n;

    (void)state;
    json_get_alloc_funcs(&om, &of);
    json_set_alloc_funcs(failing_malloc, free);
    for (n = 0; n < 1000 && j == NULL; n++) {
        json_fail_after = n;
        j = rp_access_to_json(a);
    }
    json_fail_after = -1;
    json_set_alloc_funcs(om, of);
    assert_non_null(j);
    assert_true(n > 10);
    assert_int_equal(json_array_size(j), 4);
    json_decref(j);
    rp_access_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cidr_good),
        cmocka_unit_test(test_cidr_bad),
        cmocka_unit_test(test_ip_parse),
        cmocka_unit_test(test_cidr_contains),
        cmocka_unit_test(test_cidr_format_small),
        cmocka_unit_test(test_parse_list_errors),
        cmocka_unit_test(test_parse_required),
        cmocka_unit_test(test_parse_ip_errors),
        cmocka_unit_test(test_parse_member_errors),
        cmocka_unit_test(test_parse_header_errors),
        cmocka_unit_test(test_parse_accepts),
        cmocka_unit_test(test_parse_utf8),
        cmocka_unit_test(test_parse_oom),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_bad_client),
        cmocka_unit_test(test_priority_order),
        cmocka_unit_test(test_sources),
        cmocka_unit_test(test_header_xfh),
        cmocka_unit_test(test_header_xff),
        cmocka_unit_test(test_header_xff_cap),
        cmocka_unit_test(test_header_fd),
        cmocka_unit_test(test_header_and),
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_to_json_oom),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
