/* log_test.c - lines are valid JSON, escaped, truncated safely, and level-filtered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "base/log.h"

static json_t *read_line(int fd)
{
    char buf[8192];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);

    assert_true(n > 0);
    buf[n] = '\0';
    assert_int_equal(buf[n - 1], '\n');
    assert_null(memchr(buf, '\n', (size_t)n - 1)); /* exactly one line */
    return json_loads(buf, 0, NULL);
}

static void test_escaping_and_fields(void **state)
{
    int p[2];
    json_t *j;
    rp_logline l;

    assert_int_equal(pipe(p), 0);
    rp_log_configure(p[1], RP_LOG_INFO, p[1]);
    rp_logline_begin(&l, RP_LOG_WARN, "test.event");
    rp_logline_str(&l, "quote", "a\"b\\c\n\x01\xff");
    rp_logline_int(&l, "n", -42);
    rp_logline_str(&l, "nul", NULL);
    rp_logline_end(&l);
    j = read_line(p[0]);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(j, "event")), "test.event");
    assert_string_equal(json_string_value(json_object_get(j, "quote")), "a\"b\\c\n\x01\\xff");
    assert_int_equal(json_integer_value(json_object_get(j, "n")), -42);
    assert_true(json_is_null(json_object_get(j, "nul")));
    assert_non_null(json_object_get(j, "time"));
    json_decref(j);

    rp_logline_begin_access(&l);
    rp_logline_str(&l, "path", "/x");
    rp_logline_end(&l);
    j = read_line(p[0]);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "access");
    json_decref(j);
    close(p[0]);
    close(p[1]);
    rp_log_configure(2, RP_LOG_INFO, -1);
}

static void test_truncation_keeps_json(void **state)
{
    int p[2];
    char big[5000];
    json_t *j;
    rp_logline l;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(pipe(p), 0);
    rp_log_configure(p[1], RP_LOG_DEBUG, -1);
    rp_logline_begin(&l, RP_LOG_ERROR, "big");
    rp_logline_str(&l, "a", big);
    rp_logline_str(&l, "b", "after");
    rp_logline_end(&l);
    j = read_line(p[0]);
    assert_non_null(j);
    assert_true(strlen(json_string_value(json_object_get(j, "a"))) < 2048);
    json_decref(j);
    close(p[0]);
    close(p[1]);
    rp_log_configure(2, RP_LOG_INFO, -1);
}

static void test_levels_and_off(void **state)
{
    int p[2];
    rp_logline l;
    rp_log_level lv;
    char c;

    assert_int_equal(pipe(p), 0);
    rp_log_configure(p[1], RP_LOG_WARN, -1);
    rp_log_msg(RP_LOG_INFO, "quiet", "below threshold");
    assert_false(rp_log_access_enabled());
    rp_logline_begin_access(&l);
    rp_logline_end(&l);
    rp_log_msg(RP_LOG_ERROR, "loud", "x");
    assert_int_equal(read(p[0], &c, 1), 1);
    assert_int_equal(c, '{');
    assert_int_equal(rp_log_level_parse("debug", &lv), 0);
    assert_int_equal(lv, RP_LOG_DEBUG);
    assert_int_not_equal(rp_log_level_parse("verbose", &lv), 0);
    close(p[0]);
    close(p[1]);
    rp_log_configure(2, RP_LOG_INFO, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escaping_and_fields),
        cmocka_unit_test(test_truncation_keeps_json),
        cmocka_unit_test(test_levels_and_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
