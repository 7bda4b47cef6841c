/* str_test.c - number parsing, views, hex, base64url, constant-time equality, dates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/str.h"
#include "base/time.h"

static void test_parse_u64(void **state)
{
    uint64_t v;

    assert_int_equal(rp_parse_u64("0", 1, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(rp_parse_u64("18446744073709551615", 20, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(rp_parse_u64("18446744073709551616", 20, UINT64_MAX, &v), RP_ETOOBIG);
    assert_int_equal(rp_parse_u64("11", 2, 10, &v), RP_ETOOBIG);
    assert_int_equal(rp_parse_u64("5", 1, 0, &v), RP_ETOOBIG);
    assert_int_equal(rp_parse_u64("", 0, 10, &v), RP_EPARSE);
    assert_int_equal(rp_parse_u64("+5", 2, 10, &v), RP_EPARSE);
    assert_int_equal(rp_parse_u64("-5", 2, 10, &v), RP_EPARSE);
    assert_int_equal(rp_parse_u64(" 5", 2, 10, &v), RP_EPARSE);
    assert_int_equal(rp_parse_u64("5x", 2, 10, &v), RP_EPARSE);
    assert_int_equal(rp_parse_u64("0x5", 3, 10, &v), RP_EPARSE);
}

static void test_views(void **state)
{
    rp_str s = RP_STR("  Hello\t ");

    assert_true(rp_str_eq(rp_str_trim(s), "Hello"));
    assert_true(rp_str_eq_nocase(rp_str_trim(s), "hELLO"));
    assert_false(rp_str_eq_nocase(rp_str_trim(s), "hell"));
    assert_true(rp_str_has_prefix(RP_STR("/api/x"), "/api"));
    assert_false(rp_str_has_prefix(RP_STR("/a"), "/api"));
    assert_true(rp_str_has_suffix_nocase(RP_STR("a.VAULT.d"), ".vault.d"));
    assert_int_equal(rp_str_trim(RP_STR(" \t ")).n, 0);
}

static void test_strlcpy_hex(void **state)
{
    char d[4];
    char hex[9];
    unsigned char in[4] = {0x00, 0xab, 0x10, 0xff};

    assert_int_equal(rp_strlcpy(d, "abc", sizeof(d)), 0);
    assert_string_equal(d, "abc");
    assert_int_equal(rp_strlcpy(d, "abcd", sizeof(d)), RP_ETOOBIG);
    assert_string_equal(d, "abc");
    rp_hex_encode(in, 4, hex);
    assert_string_equal(hex, "00ab10ff");
}

static void test_b64url(void **state)
{
    const char *vec[][2] = {
        {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
    char enc[32];
    unsigned char dec[32];
    size_t n;
    unsigned char bin[3] = {0xfb, 0xff, 0xbf};

    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(
            rp_b64url_encode((const unsigned char *)vec[i][0], strlen(vec[i][0]), enc, sizeof(enc)),
            0);
        assert_string_equal(enc, vec[i][1]);
        assert_int_equal(rp_b64url_decode(enc, strlen(enc), dec, sizeof(dec), &n), 0);
        assert_int_equal(n, strlen(vec[i][0]));
        assert_memory_equal(dec, vec[i][0], n);
    }
    assert_int_equal(rp_b64url_encode(bin, 3, enc, sizeof(enc)), 0);
    assert_string_equal(enc, "-_-_");
    assert_int_equal(rp_b64url_decode("Zm9v+", 5, dec, sizeof(dec), &n), RP_EPARSE);
    assert_int_equal(rp_b64url_decode("Z", 1, dec, sizeof(dec), &n), RP_EPARSE);
    assert_int_equal(rp_b64url_decode("Zh", 2, dec, sizeof(dec), &n),
                     RP_EPARSE); /* non-zero pad bits */
    assert_int_equal(rp_b64url_decode("Zm9vYmFy", 8, dec, 3, &n), RP_ETOOBIG);
    assert_int_equal(rp_b64url_encode(bin, 3, enc, 4), RP_ETOOBIG);
}

static void test_ct_equal(void **state)
{
    assert_true(rp_ct_equal("abc", 3, "abc", 3));
    assert_false(rp_ct_equal("abc", 3, "abd", 3));
    assert_false(rp_ct_equal("abc", 3, "abcd", 4));
    assert_true(rp_ct_equal("", 0, "", 0));
}

static void test_http_date(void **state)
{
    char out[30];
    time_t t;

    rp_http_date(784111777, out);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(rp_http_date_parse(out, strlen(out), &t), 0);
    assert_int_equal(t, 784111777);
    assert_int_equal(rp_http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", 30, &t), RP_EPARSE);
    assert_int_equal(rp_http_date_parse("Sun, 06 Nov 1994 08:49:37 UTC", 29, &t), RP_EPARSE);
    assert_int_equal(rp_http_date_parse("Sun, 06 Xyz 1994 08:49:37 GMT", 29, &t), RP_EPARSE);
    assert_int_equal(rp_http_date_parse("Sun, 00 Nov 1994 08:49:37 GMT", 29, &t), RP_EPARSE);
    assert_int_equal(rp_http_date_parse("Sun, 06 Nov 1994 24:49:37 GMT", 29, &t), RP_EPARSE);
    assert_true(rp_mono_ms() > 0);
    assert_true(rp_mono_us() >= rp_mono_ms());
}

/* Quoting refused input: printable ASCII only, cut at RP_QUOTE_MAX with "...". */
static void test_quote(void **state)
{
    char buf[RP_QUOTE_MAX + 4], in[RP_QUOTE_MAX + 1];

    (void)state;
    assert_string_equal(rp_quote("a\x01"
                                 "b\xc3\xa9\n",
                                 6, buf),
                        "a?b???");
    assert_string_equal(rp_quote("", 0, buf), "");
    memset(in, 'x', sizeof(in));
    assert_int_equal(strlen(rp_quote(in, RP_QUOTE_MAX, buf)), RP_QUOTE_MAX);
    rp_quote(in, sizeof(in), buf);
    assert_int_equal(strlen(buf), RP_QUOTE_MAX + 3);
    assert_string_equal(buf + RP_QUOTE_MAX, "...");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_u64),   cmocka_unit_test(test_views),
        cmocka_unit_test(test_strlcpy_hex), cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_ct_equal),    cmocka_unit_test(test_http_date),
        cmocka_unit_test(test_quote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
