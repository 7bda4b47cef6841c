/*
 * path_test.c - unit tests for src/http/path.c, the request-path normaliser.
 *
 * Most cases live in one table (input, expected output or expected refusal) so a new traversal
 * trick is one line to add. Separate tests cover the output-buffer contract, embedded NUL bytes
 * (which a C string literal cannot carry) and the dot-segment predicate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "http/path.h"

typedef struct path_case {
    const char *in;
    const char *want; /* expected result when why is RP_PATH_OK */
    rp_path_status why;
} path_case;

static const path_case cases[] = {
    /* plain paths pass unchanged */
    {"/", "/", RP_PATH_OK},
    {"/index.html", "/index.html", RP_PATH_OK},
    {"/a/b/c", "/a/b/c", RP_PATH_OK},
    {"/a+b", "/a+b", RP_PATH_OK}, /* '+' is not a space in paths */
    {"/a b", "/a b", RP_PATH_OK},
    {"/~user/x;y=1,z", "/~user/x;y=1,z", RP_PATH_OK},
    /* empty segments and trailing slashes are kept */
    {"//", "//", RP_PATH_OK},
    {"///", "///", RP_PATH_OK},
    {"/keys/n//decrypt", "/keys/n//decrypt", RP_PATH_OK},
    {"/secrets/n/", "/secrets/n/", RP_PATH_OK},
    {"/a//", "/a//", RP_PATH_OK},
    /* dot segments */
    {"/.", "/", RP_PATH_OK},
    {"/./", "/", RP_PATH_OK},
    {"/a/./b", "/a/b", RP_PATH_OK},
    {"/a/.", "/a/", RP_PATH_OK},
    {"/a/b/..", "/a/", RP_PATH_OK},
    {"/a/..", "/", RP_PATH_OK},
    {"/a/../", "/", RP_PATH_OK},
    {"/a/b/../c", "/a/c", RP_PATH_OK},
    {"/a/b/../../c", "/c", RP_PATH_OK},
    {"/a/./././b/", "/a/b/", RP_PATH_OK},
    {"/a//../b", "/a/b", RP_PATH_OK}, /* '..' removes the empty segment */
    {"//..", "/", RP_PATH_OK},
    {"/a/b/c/../../..", "/", RP_PATH_OK},
    {"/a/.b", "/a/.b", RP_PATH_OK},
    {"/a/...", "/a/...", RP_PATH_OK}, /* "..." is an ordinary name */
    {"/a/..b", "/a/..b", RP_PATH_OK},
    {"/a/b..", "/a/b..", RP_PATH_OK},
    {"/a./b", "/a./b", RP_PATH_OK},
    /* climbing above root is refused, never clamped */
    {"/..", NULL, RP_PATH_ABOVE_ROOT},
    {"/../", NULL, RP_PATH_ABOVE_ROOT},
    {"/../a", NULL, RP_PATH_ABOVE_ROOT},
    {"/a/../../b", NULL, RP_PATH_ABOVE_ROOT},
    {"/a/../..", NULL, RP_PATH_ABOVE_ROOT},
    {"/./..", NULL, RP_PATH_ABOVE_ROOT},
    {"//../..", NULL, RP_PATH_ABOVE_ROOT},
    /* dot segments are recognised after decoding, in any case mix */
    {"/%2e", "/", RP_PATH_OK},
    {"/%2e%2e/", NULL, RP_PATH_ABOVE_ROOT},
    {"/%2E%2E/etc/passwd", NULL, RP_PATH_ABOVE_ROOT},
    {"/a/%2e%2E", "/", RP_PATH_OK},
    {"/a/.%2e/b", "/b", RP_PATH_OK},
    {"/a/%2e./b", "/b", RP_PATH_OK},
    {"/a/%2e/b", "/a/b", RP_PATH_OK},
    {"/static/%2e%2e/%2e%2e/etc/passwd", NULL, RP_PATH_ABOVE_ROOT},
    /* decode exactly once */
    {"/%252e%252e/x", "/%2e%2e/x", RP_PATH_OK},
    {"/%252e%252e", "/%2e%2e", RP_PATH_OK},
    {"/a/%252F", "/a/%2F", RP_PATH_OK},
    {"/%25", "/%", RP_PATH_OK},
    {"/%41%62%63", "/Abc", RP_PATH_OK},
    {"/a%20b", "/a b", RP_PATH_OK},
    {"/%2B", "/+", RP_PATH_OK},
    {"/%3F", "/?", RP_PATH_OK},
    /* valid UTF-8, encoded, raw and mixed */
    {"/caf%C3%A9", "/caf\xC3\xA9", RP_PATH_OK},
    {"/caf%c3%a9", "/caf\xC3\xA9", RP_PATH_OK},
    {"/caf\xC3\xA9", "/caf\xC3\xA9", RP_PATH_OK},
    {"/caf\xC3%A9", "/caf\xC3\xA9", RP_PATH_OK},
    {"/%E2%82%AC", "/\xE2\x82\xAC", RP_PATH_OK},        /* U+20AC */
    {"/%F0%9F%98%80", "/\xF0\x9F\x98\x80", RP_PATH_OK}, /* U+1F600 */
    {"/%F4%8F%BF%BF", "/\xF4\x8F\xBF\xBF", RP_PATH_OK}, /* U+10FFFF */
    {"/%ED%9F%BF", "/\xED\x9F\xBF", RP_PATH_OK},        /* U+D7FF */
    {"/%EE%80%80", "/\xEE\x80\x80", RP_PATH_OK},        /* U+E000 */
    {"/%C2%80", "/\xC2\x80", RP_PATH_OK},               /* U+0080 */
    /* invalid UTF-8: overlong, surrogates, out of range, truncated, stray */
    {"/%C0%AE%C0%AE/", NULL, RP_PATH_BAD_UTF8},
    {"/%C0%AF", NULL, RP_PATH_BAD_UTF8},
    {"/%C1%9C", NULL, RP_PATH_BAD_UTF8},
    {"/%E0%80%AE", NULL, RP_PATH_BAD_UTF8},
    {"/%E0%9F%BF", NULL, RP_PATH_BAD_UTF8},
    {"/%F0%80%80%AE", NULL, RP_PATH_BAD_UTF8},
    {"/%F0%8F%BF%BF", NULL, RP_PATH_BAD_UTF8},
    {"/%ED%A0%80", NULL, RP_PATH_BAD_UTF8},    /* U+D800 */
    {"/%ED%BF%BF", NULL, RP_PATH_BAD_UTF8},    /* U+DFFF */
    {"/%F4%90%80%80", NULL, RP_PATH_BAD_UTF8}, /* U+110000 */
    {"/%F5%80%80%80", NULL, RP_PATH_BAD_UTF8},
    {"/%FF", NULL, RP_PATH_BAD_UTF8},
    {"/%80", NULL, RP_PATH_BAD_UTF8},
    {"/a%C3", NULL, RP_PATH_BAD_UTF8},
    {"/a%C3/%A9", NULL, RP_PATH_BAD_UTF8}, /* sequence split by '/' */
    {"/%E2%82", NULL, RP_PATH_BAD_UTF8},
    {"/%C3%28", NULL, RP_PATH_BAD_UTF8},
    {"/\xC0\xAE\xC0\xAE/", NULL, RP_PATH_BAD_UTF8}, /* raw overlong dots */
    {"/\xFE", NULL, RP_PATH_BAD_UTF8},
    /* separators and NUL smuggled through escapes */
    {"/a%2Fb", NULL, RP_PATH_ENCODED_SLASH},
    {"/a%2fb", NULL, RP_PATH_ENCODED_SLASH},
    {"/..%2f..%2fetc", NULL, RP_PATH_ENCODED_SLASH},
    {"/a\\b", NULL, RP_PATH_BACKSLASH},
    {"/..\\..\\x", NULL, RP_PATH_BACKSLASH},
    {"/a%5Cb", NULL, RP_PATH_BACKSLASH},
    {"/a%5cb", NULL, RP_PATH_BACKSLASH},
    {"/a%00b", NULL, RP_PATH_NUL},
    {"/a.txt%00.png", NULL, RP_PATH_NUL},
    /* control bytes, raw and decoded */
    {"/a\tb", NULL, RP_PATH_CTL},
    {"/a\x01", NULL, RP_PATH_CTL},
    {"/a\x7F", NULL, RP_PATH_CTL},
    {"/a%0D%0ASet-Cookie:x", NULL, RP_PATH_CTL},
    {"/a%1f", NULL, RP_PATH_CTL},
    {"/a%7F", NULL, RP_PATH_CTL},
    {"/a%09", NULL, RP_PATH_CTL},
    /* malformed escapes */
    {"/%", NULL, RP_PATH_BAD_ESCAPE},
    {"/%4", NULL, RP_PATH_BAD_ESCAPE},
    {"/a%zz", NULL, RP_PATH_BAD_ESCAPE},
    {"/a%g0", NULL, RP_PATH_BAD_ESCAPE},
    {"/a%0g", NULL, RP_PATH_BAD_ESCAPE},
    {"/%%41", NULL, RP_PATH_BAD_ESCAPE},
    {"/a%-1", NULL, RP_PATH_BAD_ESCAPE},
    {"/a% 1", NULL, RP_PATH_BAD_ESCAPE},
    /* not absolute */
    {"", NULL, RP_PATH_NOT_ABSOLUTE},
    {"a/b", NULL, RP_PATH_NOT_ABSOLUTE},
    {"*", NULL, RP_PATH_NOT_ABSOLUTE},
    {"%2Fa", NULL, RP_PATH_NOT_ABSOLUTE},
    {"\\a", NULL, RP_PATH_NOT_ABSOLUTE},
    {"http://h/a", NULL, RP_PATH_NOT_ABSOLUTE},
    {"../a", NULL, RP_PATH_NOT_ABSOLUTE},
    /* the first problem found wins */
    {"/../%zz", NULL, RP_PATH_ABOVE_ROOT},
    {"/%zz/..", NULL, RP_PATH_BAD_ESCAPE},
};

static void test_table(void **state)
{
    char out[256];
    int failures = 0;

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const path_case *c = &cases[k];
        size_t len = 12345;
        rp_path_status why = RP_PATH_TOO_LONG;
        int rc = rp_path_normalize(c->in, strlen(c->in), out, sizeof(out), &len, &why);
        int ok;

        if (c->why == RP_PATH_OK)
            ok =
                rc == 0 && why == RP_PATH_OK && len == strlen(c->want) && strcmp(out, c->want) == 0;
        else
            ok = rc == RP_EINVAL && why == c->why && len == 0 && out[0] == '\0';
        if (!ok) {
            print_error("case %zu \"%s\": rc=%d why=%s out=\"%s\" len=%zu; want %s \"%s\"\n", k,
                        c->in, rc, rp_path_status_str(why), out, len, rp_path_status_str(c->why),
                        c->want ? c->want : "");
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* A NUL byte inside the raw input (not expressible in the table's C strings). */
static void test_raw_nul(void **state)
{
    static const char in[] = {'/', 'a', '\0', 'b'};
    char out[16];
    size_t len;
    rp_path_status why;

    assert_int_equal(rp_path_normalize(in, sizeof(in), out, sizeof(out), &len, &why), RP_EINVAL);
    assert_int_equal(why, RP_PATH_NUL);
}

/* The input is not NUL-terminated: only n bytes are read. */
static void test_length_bounded(void **state)
{
    char out[16];
    size_t len;
    rp_path_status why;

    assert_int_equal(rp_path_normalize("/a/b%zz", 4, out, sizeof(out), &len, &why), 0);
    assert_string_equal(out, "/a/b");
    /* a '%' at the very end of the view must not read past it */
    assert_int_equal(rp_path_normalize("/a%41", 3, out, sizeof(out), &len, &why), RP_EINVAL);
    assert_int_equal(why, RP_PATH_BAD_ESCAPE);
    assert_int_equal(rp_path_normalize(NULL, 0, out, sizeof(out), &len, &why), RP_EINVAL);
    assert_int_equal(why, RP_PATH_NOT_ABSOLUTE);
}

static void test_cap(void **state)
{
    char big[4096];
    char out[64];
    size_t len;
    rp_path_status why;

    /* exactly n + 1 is enough even when nothing shrinks */
    assert_int_equal(rp_path_normalize("/abc", 4, out, 5, &len, &why), 0);
    assert_string_equal(out, "/abc");
    assert_int_equal(len, 4);
    /* one less is not */
    assert_int_equal(rp_path_normalize("/abc", 4, out, 4, &len, &why), RP_EINVAL);
    assert_int_equal(why, RP_PATH_TOO_LONG);
    assert_string_equal(out, "");
    /* the decoded length is what counts */
    assert_int_equal(rp_path_normalize("/%41%42", 7, out, 4, &len, &why), 0);
    assert_string_equal(out, "/AB");
    /* trailing slash needs its byte too */
    assert_int_equal(rp_path_normalize("/ab/", 4, out, 4, &len, &why), RP_EINVAL);
    assert_int_equal(why, RP_PATH_TOO_LONG);
    assert_int_equal(rp_path_normalize("/", 1, out, 2, &len, &why), 0);
    assert_string_equal(out, "/");
    assert_int_equal(rp_path_normalize("/", 1, out, 1, &len, &why), RP_EINVAL);
    assert_int_equal(why, RP_PATH_TOO_LONG);
    assert_string_equal(out, "");
    assert_int_equal(rp_path_normalize("/", 1, NULL, 0, &len, &why), RP_EINVAL);
    assert_int_equal(why, RP_PATH_TOO_LONG);

    /* a very long input into a small buffer */
    big[0] = '/';
    memset(big + 1, 'x', sizeof(big) - 1);
    assert_int_equal(rp_path_normalize(big, sizeof(big), out, sizeof(out), &len, &why), RP_EINVAL);
    assert_int_equal(why, RP_PATH_TOO_LONG);
    assert_string_equal(out, "");
}

/* Deep and long inputs resolve correctly with cap = n + 1. */
static void test_long_paths(void **state)
{
    static char in[8192], out[8193];
    size_t n = 0, len;
    rp_path_status why;

    for (int i = 0; i < 1000; i++) {
        memcpy(in + n, "/d", 2);
        n += 2;
    }
    for (int i = 0; i < 1000; i++) {
        memcpy(in + n, "/..", 3);
        n += 3;
    }
    assert_int_equal(rp_path_normalize(in, n, out, n + 1, &len, &why), 0);
    assert_string_equal(out, "/");
    memcpy(in + n, "/..", 3);
    assert_int_equal(rp_path_normalize(in, n + 3, out, n + 4, &len, &why), RP_EINVAL);
    assert_int_equal(why, RP_PATH_ABOVE_ROOT);

    n = 0;
    for (int i = 0; i < 2000; i++) {
        memcpy(in + n, "/%2e", 4);
        n += 4;
    }
    assert_int_equal(rp_path_normalize(in, n, out, n + 1, &len, &why), 0);
    assert_string_equal(out, "/");
}

static void test_dot_segment(void **state)
{
    static const struct {
        const char *p;
        int want;
    } t[] = {
        {"/", 0},       {"/a/b", 0},   {"/a.b/c.d", 0}, {"/.git/config", 1},
        {"/a/.env", 1}, {"/a/b/.", 1}, {"/a/.b/", 1},   {"/.well-known/x", 1},
        {"/a/b./c", 0}, {"//.x", 1},   {".", 1},        {"/%2e%2e", 0},
    };

    for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++)
        assert_int_equal(rp_path_has_dot_segment(t[k].p, strlen(t[k].p)), t[k].want);
    assert_int_equal(rp_path_has_dot_segment("/a/.git", 3), 0); /* bounded by n */
}

/* Normalised dot-free output is a fixed point: normalising it again changes nothing. */
static void test_idempotent(void **state)
{
    static const char *in[] = {"/a/./b/../c//d/", "/x/y/..", "/%41/b"};
    char once[64], twice[64];
    size_t l1, l2;
    rp_path_status why;

    for (size_t k = 0; k < sizeof(in) / sizeof(in[0]); k++) {
        assert_int_equal(rp_path_normalize(in[k], strlen(in[k]), once, sizeof(once), &l1, &why), 0);
        assert_int_equal(rp_path_normalize(once, l1, twice, sizeof(twice), &l2, &why), 0);
        assert_int_equal(l1, l2);
        assert_string_equal(once, twice);
    }
}

static void test_status_str(void **state)
{
    for (int s = RP_PATH_OK; s <= RP_PATH_TOO_LONG; s++) {
        const char *m = rp_path_status_str((rp_path_status)s);
        assert_non_null(m);
        assert_true(strlen(m) > 0);
    }
    assert_string_equal(rp_path_status_str(RP_PATH_ABOVE_ROOT), "path climbs above root");
    assert_non_null(rp_path_status_str((rp_path_status)99));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_raw_nul),
        cmocka_unit_test(test_length_bounded), cmocka_unit_test(test_cap),
        cmocka_unit_test(test_long_paths),     cmocka_unit_test(test_dot_segment),
        cmocka_unit_test(test_idempotent),     cmocka_unit_test(test_status_str),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
