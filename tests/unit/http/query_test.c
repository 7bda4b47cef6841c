/*
 * query_test.c - unit tests for src/http/query.c, the query-string parser.
 *
 * Every test parses into a fresh arena created by the group fixture; allocation failure is
 * driven through rp_alloc_fail_after.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/err.h"
#include "http/query.h"

static int setup(void **state)
{
    *state = rp_arena_create(4096);
    return *state == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    rp_arena_destroy(*state);
    return 0;
}

static int parse(void **state, const char *q, int form, rp_query_param **p, size_t *n)
{
    return rp_query_parse(*state, q, strlen(q), form, p, n);
}

static void assert_param(const rp_query_param *p, const char *name, const char *value)
{
    assert_int_equal(p->name_len, strlen(name));
    assert_string_equal(p->name, name);
    assert_int_equal(p->value_len, strlen(value));
    assert_string_equal(p->value, value);
}

static void test_basic(void **state)
{
    rp_query_param *p;
    size_t n;

    assert_int_equal(parse(state, "api-version=7.4&maxresults=25", 0, &p, &n), 0);
    assert_int_equal(n, 2);
    assert_param(&p[0], "api-version", "7.4");
    assert_param(&p[1], "maxresults", "25");
}

static void test_empty(void **state)
{
    rp_query_param *p = (rp_query_param *)1;
    size_t n = 99;

    assert_int_equal(rp_query_parse(*state, NULL, 0, 0, &p, &n), 0);
    assert_null(p);
    assert_int_equal(n, 0);
    assert_int_equal(parse(state, "&&&", 0, &p, &n), 0);
    assert_null(p);
    assert_int_equal(n, 0);
    assert_null(rp_query_find(p, n, "a"));
}

static void test_encoded_name(void **state)
{
    rp_query_param *p;
    size_t n;

    assert_int_equal(parse(state, "api%2Dversion=7.4", 0, &p, &n), 0);
    assert_int_equal(n, 1);
    assert_param(&p[0], "api-version", "7.4");
    assert_non_null(rp_query_find(p, n, "api-version"));
    assert_null(rp_query_find(p, n, "api%2Dversion"));
}

static void test_decoding(void **state)
{
    rp_query_param *p;
    size_t n;

    assert_int_equal(parse(state, "a=%41%62%2f%2F%3D%26&%7e=x%25y", 0, &p, &n), 0);
    assert_int_equal(n, 2);
    assert_param(&p[0], "a", "Ab//=&");
    assert_param(&p[1], "~", "x%y");
    /* decoded once only */
    assert_int_equal(parse(state, "a=%2541", 0, &p, &n), 0);
    assert_param(&p[0], "a", "%41");
    /* UTF-8 passes through as bytes */
    assert_int_equal(parse(state, "n=caf%C3%A9", 0, &p, &n), 0);
    assert_param(&p[0], "n", "caf\xC3\xA9");
}

static void test_plus(void **state)
{
    rp_query_param *p;
    size_t n;

    assert_int_equal(parse(state, "a+b=c+d&e=%2B", 0, &p, &n), 0);
    assert_param(&p[0], "a+b", "c+d");
    assert_param(&p[1], "e", "+");
    assert_int_equal(parse(state, "a+b=c+d&e=%2B", 1, &p, &n), 0);
    assert_param(&p[0], "a b", "c d");
    assert_param(&p[1], "e", "+"); /* an encoded '+' stays '+' in forms */
}

static void test_shapes(void **state)
{
    rp_query_param *p;
    size_t n;

    assert_int_equal(parse(state, "a=1&&b=2&", 0, &p, &n), 0);
    assert_int_equal(n, 2);
    assert_param(&p[0], "a", "1");
    assert_param(&p[1], "b", "2");

    assert_int_equal(parse(state, "flag&x=&=v&=&y=a=b", 0, &p, &n), 0);
    assert_int_equal(n, 5);
    assert_param(&p[0], "flag", "");
    assert_param(&p[1], "x", "");
    assert_param(&p[2], "", "v");
    assert_param(&p[3], "", "");
    assert_param(&p[4], "y", "a=b"); /* split at the first '=' only */

    assert_int_equal(parse(state, "a;b=1", 0, &p, &n), 0); /* ';' is not a separator */
    assert_int_equal(n, 1);
    assert_param(&p[0], "a;b", "1");
}

static void test_duplicates(void **state)
{
    rp_query_param *p;
    size_t n;
    const rp_query_param *f;

    assert_int_equal(parse(state, "a=1&A=2&a=3", 0, &p, &n), 0);
    assert_int_equal(n, 3);
    assert_param(&p[2], "a", "3");
    f = rp_query_find(p, n, "a");
    assert_ptr_equal(f, &p[0]);
    f = rp_query_find(p, n, "A"); /* case-sensitive */
    assert_ptr_equal(f, &p[1]);
    assert_null(rp_query_find(p, n, "b"));
    assert_null(rp_query_find(p, n, ""));
    assert_null(rp_query_find(p, n, NULL));
    assert_int_equal(parse(state, "=x&b", 0, &p, &n), 0);
    assert_ptr_equal(rp_query_find(p, n, ""), &p[0]);
    assert_null(rp_query_find(p, n, "bb"));
}

static void test_bad_escape(void **state)
{
    static const char *bad[] = {"a=%",      "a=%4", "a=%zz",  "%=1",  "a%g1=1",
                                "a=1&b=%0", "a=%%", "a=% 41", "a=%-1"};
    rp_query_param *p = (rp_query_param *)1;
    size_t n = 99;

    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        assert_int_equal(parse(state, bad[k], 0, &p, &n), RP_EPARSE);
        assert_null(p);
        assert_int_equal(n, 0);
    }
}

static void test_nul(void **state)
{
    static const char raw[] = {'a', '=', 'x', '\0', 'y'};
    rp_query_param *p;
    size_t n;

    assert_int_equal(parse(state, "a=%00", 0, &p, &n), RP_EPARSE);
    assert_int_equal(parse(state, "%00=1", 1, &p, &n), RP_EPARSE);
    assert_int_equal(rp_query_parse(*state, raw, sizeof(raw), 0, &p, &n), RP_EPARSE);
    /* other control bytes are the caller's business */
    assert_int_equal(parse(state, "a=%0A", 0, &p, &n), 0);
    assert_int_equal(p[0].value[0], '\n');
}

static void test_length_bounded(void **state)
{
    rp_query_param *p;
    size_t n;

    /* only n bytes are read: the '%' at the end of the view is incomplete */
    assert_int_equal(rp_query_parse(*state, "a=1&b=%41", 7, 0, &p, &n), RP_EPARSE);
    assert_int_equal(rp_query_parse(*state, "a=1&b=2", 5, 0, &p, &n), 0);
    assert_int_equal(n, 2);
    assert_param(&p[1], "b", "");
}

static void test_limit(void **state)
{
    char q[1024];
    size_t len = 0;
    rp_query_param *p;
    size_t n;

    for (int i = 0; i < RP_QUERY_MAX_PARAMS; i++) {
        q[len++] = (char)('a' + i % 26);
        q[len++] = '&';
    }
    q[len] = '\0';
    assert_int_equal(parse(state, q, 0, &p, &n), 0);
    assert_int_equal(n, RP_QUERY_MAX_PARAMS);
    /* empty pairs do not count towards the limit */
    memcpy(q + len, "&&&", 4);
    assert_int_equal(parse(state, q, 0, &p, &n), 0);
    assert_int_equal(n, RP_QUERY_MAX_PARAMS);
    memcpy(q + len, "z", 2);
    p = (rp_query_param *)1;
    assert_int_equal(parse(state, q, 0, &p, &n), RP_ETOOBIG);
    assert_null(p);
    assert_int_equal(n, 0);
}

static void test_enomem(void **state)
{
    rp_query_param *p;
    size_t n;
    char big[6000];
    int rc;

    /* values large enough that the arena needs new blocks from the allocator */
    memset(big, 'v', sizeof(big));
    memcpy(big, "a=", 2);
    big[3000] = '&';
    big[3001] = 'b';
    big[3002] = '=';
    big[sizeof(big) - 1] = '\0';
    for (long fail = 0; fail < 4; fail++) {
        rp_arena_reset(*state);
        rp_alloc_fail_after(fail);
        rc = parse(state, big, 0, &p, &n);
        rp_alloc_fail_after(-1);
        if (rc == 0) {
            assert_int_equal(n, 2);
            assert_int_equal(p[1].value_len, sizeof(big) - 1 - 3003);
            return;
        }
        assert_int_equal(rc, RP_ENOMEM);
        assert_null(p);
        assert_int_equal(n, 0);
    }
    fail_msg("parse never succeeded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encoded_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decoding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plus, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul, setup, teardown),
        cmocka_unit_test_setup_teardown(test_length_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enomem, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
