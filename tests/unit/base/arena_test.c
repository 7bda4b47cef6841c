/* arena_test.c - alignment, growth past a block, cleanups order, reset reuse, secrets, OOM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/arena.h"

static int order[8];
static int norder;

static void record(void *arg)
{
    order[norder++] = (int)(intptr_t)arg;
}

static void test_alignment_and_growth(void **state)
{
    rp_arena *a = rp_arena_create(1024);
    char *big;

    assert_non_null(a);
    for (int i = 1; i < 200; i++) {
        void *p = rp_arena_alloc(a, (size_t)i);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xab, (size_t)i);
    }
    big = rp_arena_alloc(a, 100000); /* larger than a block: gets its own */
    assert_non_null(big);
    memset(big, 1, 100000);
    assert_true(rp_arena_used(a) >= 100000);
    rp_arena_reset(a);
    assert_int_equal(rp_arena_used(a), 0);
    assert_non_null(rp_arena_alloc(a, 10));
    rp_arena_destroy(a);
    rp_arena_destroy(NULL);
}

static void test_cleanups_newest_first(void **state)
{
    rp_arena *a = rp_arena_create(0);

    norder = 0;
    assert_int_equal(rp_arena_add_cleanup(a, record, (void *)1), 0);
    assert_int_equal(rp_arena_add_cleanup(a, record, (void *)2), 0);
    assert_int_equal(rp_arena_add_cleanup(a, record, (void *)3), 0);
    rp_arena_reset(a);
    assert_int_equal(norder, 3);
    assert_int_equal(order[0], 3);
    assert_int_equal(order[2], 1);
    rp_arena_reset(a); /* cleanups run once */
    assert_int_equal(norder, 3);
    assert_int_equal(rp_arena_add_cleanup(a, record, (void *)4), 0);
    rp_arena_destroy(a);
    assert_int_equal(norder, 4);
}

static void test_strndup_calloc_secret(void **state)
{
    rp_arena *a = rp_arena_create(0);
    char *s = rp_arena_strndup(a, "hello world", 5);
    unsigned char *z = rp_arena_calloc(a, 64);
    unsigned char *k = rp_arena_alloc_secret(a, 32);

    assert_string_equal(s, "hello");
    for (int i = 0; i < 64; i++)
        assert_int_equal(z[i], 0);
    assert_non_null(k);
    memset(k, 0x5a, 32);
    rp_arena_reset(a);
    /* the first block is kept across reset, so the wiped bytes are still readable here */
    for (int i = 0; i < 32; i++)
        assert_int_equal(k[i], 0);
    rp_arena_destroy(a);
}

static void test_overflow_and_oom(void **state)
{
    rp_arena *a = rp_arena_create(0);

    assert_null(rp_arena_alloc(a, SIZE_MAX));
    assert_null(rp_arena_alloc(a, SIZE_MAX - 8));
    rp_alloc_fail_after(0);
    assert_null(rp_arena_alloc(a, 1 << 20));
    assert_null(rp_arena_create(0));
    rp_alloc_fail_after(-1);
    rp_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment_and_growth),
        cmocka_unit_test(test_cleanups_newest_first),
        cmocka_unit_test(test_strndup_calloc_secret),
        cmocka_unit_test(test_overflow_and_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
