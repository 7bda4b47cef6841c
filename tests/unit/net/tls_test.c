/* tls_test.c - the ClientHello server_name parser (the rest of tls.c runs in tests/e2e). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "base/err.h"
#include "net/tls.h"

static size_t sni(unsigned char *buf, const char *name, int type)
{
    size_t n = strlen(name);

    buf[0] = (unsigned char)((n + 3) >> 8);
    buf[1] = (unsigned char)(n + 3);
    buf[2] = (unsigned char)type;
    buf[3] = (unsigned char)(n >> 8);
    buf[4] = (unsigned char)n;
    memcpy(buf + 5, name, n);
    return n + 5;
}

static void test_parse(void **state)
{
    unsigned char b[600];
    char out[256];
    size_t n;

    n = sni(b, "Rampart.LocalHost", 0);
    assert_int_equal(rp_tls_parse_sni(b, n, out, sizeof(out)), 0);
    assert_string_equal(out, "rampart.localhost");
    n = sni(b, "abc", 1);
    assert_int_equal(rp_tls_parse_sni(b, n, out, sizeof(out)), RP_ENOENT);
    n = sni(b, "", 0);
    assert_int_equal(rp_tls_parse_sni(b, n, out, sizeof(out)), RP_EPARSE);
    n = sni(b, "a b", 0);
    assert_int_equal(rp_tls_parse_sni(b, n, out, sizeof(out)), RP_EPARSE);
    n = sni(b, "abc", 0);
    assert_int_equal(rp_tls_parse_sni(b, n - 1, out, sizeof(out)), RP_EPARSE); /* truncated */
    assert_int_equal(rp_tls_parse_sni(b, n, out, 3), RP_EPARSE);               /* no room */
    assert_int_equal(rp_tls_parse_sni(b, 1, out, sizeof(out)), RP_EPARSE);
    b[1]++; /* list length disagrees */
    assert_int_equal(rp_tls_parse_sni(b, n, out, sizeof(out)), RP_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_parse)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
