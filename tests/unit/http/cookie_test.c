/*
 * cookie_test.c - unit tests for src/http/cookie.c: one cookie out of the Cookie headers,
 * and the duplicate count built-in authentication relies on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/err.h"
#include "http/cookie.h"

static rp_str S(const char *s)
{
    return (rp_str){s, strlen(s)};
}

/* The value of name in the single header v, as a C string in out; the count as the result. */
static size_t scan(const char *v, const char *name, char *out, size_t cap)
{
    rp_str val = {NULL, 0};
    size_t count = 0;

    rp_cookie_scan(S(v), name, &val, &count);
    out[0] = '\0';
    if (count > 0) {
        assert_true(val.n < cap);
        memcpy(out, val.p, val.n);
        out[val.n] = '\0';
    }
    return count;
}

static void test_scan_finds_one(void **state)
{
    char v[64];
    (void)state;

    assert_int_equal(scan("a=1; b=2; c=3", "b", v, sizeof(v)), 1);
    assert_string_equal(v, "2");
    assert_int_equal(scan("a=1;b=2", "a", v, sizeof(v)), 1);
    assert_string_equal(v, "1");
    /* Whitespace around names, '=' and values; an empty value; a quoted value. */
    assert_int_equal(scan("  x = y ;\tz=", "x", v, sizeof(v)), 1);
    assert_string_equal(v, "y");
    assert_int_equal(scan("x=1; z=", "z", v, sizeof(v)), 1);
    assert_string_equal(v, "");
    assert_int_equal(scan("q=\"quoted\"", "q", v, sizeof(v)), 1);
    assert_string_equal(v, "quoted");
    /* The value keeps its own '=' (base64 padding). */
    assert_int_equal(scan("k=abc==; l=2", "k", v, sizeof(v)), 1);
    assert_string_equal(v, "abc==");
}

static void test_scan_exact_names(void **state)
{
    char v[64];
    (void)state;

    /* Case-sensitive, whole names only, and a pair without '=' names nothing. */
    assert_int_equal(scan("Session=1; session2=2; xsession=3", "session", v, sizeof(v)), 0);
    assert_int_equal(scan("session; other=1", "session", v, sizeof(v)), 0);
    assert_int_equal(scan("", "a", v, sizeof(v)), 0);
    assert_int_equal(scan(";;; ;", "a", v, sizeof(v)), 0);
    assert_int_equal(scan("=v", "", v, sizeof(v)), 1);
}

static void test_scan_counts_duplicates(void **state)
{
    char v[64];
    (void)state;

    /* A planted copy rides along with the real one: the count shows it, the first wins. */
    assert_int_equal(scan("s=first; t=0; s=second", "s", v, sizeof(v)), 2);
    assert_string_equal(v, "first");
}

static void test_get_over_headers(void **state)
{
    rp_http_head h;
    rp_str val;
    (void)state;

    memset(&h, 0, sizeof(h));
    h.headers[0] = (rp_header){S("Host"), S("x")};
    h.headers[1] = (rp_header){S("Cookie"), S("a=1; b=2")};
    h.headers[2] = (rp_header){S("cookie"), S("c=3")}; /* HTTP/2 crumbs */
    h.nheaders = 3;
    assert_int_equal(rp_cookie_get(&h, "c", &val), 0);
    assert_int_equal(val.n, 1);
    assert_memory_equal(val.p, "3", 1);
    assert_int_equal(rp_cookie_get(&h, "a", &val), 0);
    assert_int_equal(rp_cookie_get(&h, "x", &val), RP_ENOENT);
    assert_null(val.p);
    h.headers[2].value = S("a=again");
    assert_int_equal(rp_cookie_get(&h, "a", &val), RP_EEXIST);
    assert_memory_equal(val.p, "1", 1);
    /* A header named like Cookie is not one. */
    h.headers[2] = (rp_header){S("Cookie2"), S("z=1")};
    assert_int_equal(rp_cookie_get(&h, "z", &val), RP_ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_finds_one),
        cmocka_unit_test(test_scan_exact_names),
        cmocka_unit_test(test_scan_counts_duplicates),
        cmocka_unit_test(test_get_over_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
