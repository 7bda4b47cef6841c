/* buf_test.c - bounded growth, appendf in place and with growth, consume, secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"

static void test_append_and_max(void **state)
{
    rp_buf b;

    rp_buf_init(&b, 10);
    assert_int_equal(rp_buf_append(&b, "hello", 5), 0);
    assert_int_equal(rp_buf_append(&b, "world", 5), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    assert_int_equal(rp_buf_append(&b, "!", 1), RP_ETOOBIG);
    assert_int_equal(b.len, 10); /* unchanged */
    assert_int_equal(rp_buf_appendf(&b, "%d", 1), RP_ETOOBIG);
    assert_string_equal(b.data, "helloworld");
    rp_buf_free(&b);
    rp_buf_free(NULL);
}

static void test_appendf(void **state)
{
    rp_buf b;
    char big[3000];

    rp_buf_init(&b, 1 << 20);
    assert_int_equal(rp_buf_appendf(&b, "%s-%d", "a", 42), 0);
    assert_string_equal(b.data, "a-42");
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    /* does not fit the spare capacity: must measure, grow and format again */
    assert_int_equal(rp_buf_appendf(&b, "[%s]", big), 0);
    assert_int_equal(b.len, 4 + 2 + 2999);
    assert_int_equal(b.data[4], '[');
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    rp_buf_free(&b);

    rp_buf_init(&b, 8);
    assert_int_equal(rp_buf_reserve(&b, 4), 0);
    /* fits the capacity but not the max */
    assert_int_equal(rp_buf_appendf(&b, "%s", "123456789"), RP_ETOOBIG);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    rp_buf_free(&b);
}

static void test_consume_reset(void **state)
{
    rp_buf b;

    rp_buf_init(&b, 100);
    rp_buf_append_str(&b, "abcdef");
    rp_buf_consume(&b, 2);
    assert_string_equal(b.data, "cdef");
    rp_buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    rp_buf_append_str(&b, "x");
    rp_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    rp_buf_free_secret(&b);
    assert_null(b.data);
}

static void test_oom(void **state)
{
    rp_buf b;

    rp_buf_init(&b, 100);
    rp_alloc_fail_after(0);
    assert_int_equal(rp_buf_append(&b, "x", 1), RP_ENOMEM);
    rp_alloc_fail_after(-1);
    assert_int_equal(rp_buf_append(&b, "x", 1), 0);
    rp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_max),
        cmocka_unit_test(test_appendf),
        cmocka_unit_test(test_consume_reset),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
