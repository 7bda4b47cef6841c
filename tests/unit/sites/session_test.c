/*
 * session_test.c - unit tests for src/sites/session.c: sealed cookie values are bound to their
 * box (server run), app and purpose and cannot be altered; revocation lasts until expiry and
 * its bound revokes everything rather than forgetting one; sign-in redirect paths stay local.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "sites/session.h"
#include "sites/signin.h"

static int setup(void **state)
{
    rp_session_box *b = NULL;

    if (rp_session_box_new(&b) != 0)
        return -1;
    *state = b;
    return 0;
}

static int teardown(void **state)
{
    rp_session_box_free(*state);
    return 0;
}

static void test_round_trip(void **state)
{
    rp_session_box *b = *state;
    char v[RP_SESSION_VALUE_MAX];
    json_t *in = json_pack("{s:s,s:I}", "oid", "u-1", "exp", (json_int_t)1234), *out = NULL;

    assert_int_equal(rp_session_seal(b, "app", "session", in, v, sizeof(v)), 0);
    /* A cookie value: base64url only, and nothing of the payload readable. */
    assert_int_equal(strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     strlen(v));
    assert_null(strstr(v, "u-1"));
    assert_int_equal(rp_session_open(b, "app", "session", v, strlen(v), &out), 0);
    assert_true(json_equal(in, out));
    json_decref(out);
    json_decref(in);
}

static void test_bound_to_app_purpose_and_box(void **state)
{
    rp_session_box *b = *state, *other = NULL;
    char v[RP_SESSION_VALUE_MAX];
    json_t *in = json_pack("{s:s}", "sid", "x"), *out = NULL;

    assert_int_equal(rp_session_seal(b, "app", "session", in, v, sizeof(v)), 0);
    assert_int_equal(rp_session_open(b, "app2", "session", v, strlen(v), &out), RP_ECRYPTO);
    assert_int_equal(rp_session_open(b, "ap", "psession", v, strlen(v), &out), RP_ECRYPTO);
    assert_int_equal(rp_session_open(b, "app", "login", v, strlen(v), &out), RP_ECRYPTO);
    /* Another server run (a new box) cannot open it. */
    assert_int_equal(rp_session_box_new(&other), 0);
    assert_int_equal(rp_session_open(other, "app", "session", v, strlen(v), &out), RP_ECRYPTO);
    rp_session_box_free(other);
    assert_null(out);
    json_decref(in);
}

static void test_altered_or_malformed(void **state)
{
    rp_session_box *b = *state;
    char v[RP_SESSION_VALUE_MAX], big[RP_SESSION_VALUE_MAX + 8];
    json_t *in = json_pack("{s:s}", "sid", "x"), *out = NULL;
    size_t n;

    assert_int_equal(rp_session_seal(b, "app", "session", in, v, sizeof(v)), 0);
    n = strlen(v);
    for (size_t i = 0; i < n; i += 7) { /* flip a character at many positions */
        char saved = v[i];
        v[i] = v[i] == 'A' ? 'B' : 'A';
        assert_int_not_equal(rp_session_open(b, "app", "session", v, n, &out), 0);
        v[i] = saved;
    }
    assert_int_not_equal(rp_session_open(b, "app", "session", v, n - 1, &out), 0);
    assert_int_equal(rp_session_open(b, "app", "session", "", 0, &out), RP_EPARSE);
    assert_int_equal(rp_session_open(b, "app", "session", "not*b64", 7, &out), RP_EPARSE);
    assert_int_equal(rp_session_open(b, "app", "session", "QUJD", 4, &out), RP_EPARSE);
    memset(big, 'A', sizeof(big));
    assert_int_equal(rp_session_open(b, "app", "session", big, sizeof(big), &out), RP_EPARSE);
    assert_null(out);
    json_decref(in);
}

static void test_seal_limits(void **state)
{
    rp_session_box *b = *state;
    char v[RP_SESSION_VALUE_MAX], small[40], *longs = rp_malloc(4000);
    json_t *in = json_pack("{s:s}", "sid", "x"), *big;

    assert_non_null(longs);
    assert_int_equal(rp_session_seal(b, "app", "session", in, small, sizeof(small)), RP_ETOOBIG);
    memset(longs, 'x', 3999);
    longs[3999] = '\0';
    big = json_pack("{s:s}", "v", longs);
    assert_int_equal(rp_session_seal(b, "app", "session", big, v, sizeof(v)), RP_ETOOBIG);
    json_decref(big);
    big = json_string("not an object");
    assert_int_not_equal(rp_session_seal(b, "app", "session", big, v, sizeof(v)), 0);
    json_decref(big);
    json_decref(in);
    rp_free(longs);
}

static void test_revocation(void **state)
{
    rp_session_box *b = *state;
    char id[RP_SESSION_ID_LEN + 1], id2[RP_SESSION_ID_LEN + 1];
    uint64_t g = rp_session_generation(b);

    assert_int_equal(rp_session_id(id), 0);
    assert_int_equal(rp_session_id(id2), 0);
    assert_int_equal(strlen(id), RP_SESSION_ID_LEN);
    assert_string_not_equal(id, id2);
    assert_false(rp_session_revoked(b, id, g, 100));
    assert_int_equal(rp_session_revoke(b, id, g, 200, 150), 0);
    assert_true(rp_session_revoked(b, id, g, 160));
    assert_false(rp_session_revoked(b, id2, g, 160));
    /* After its expiry the entry is not needed (the session is over anyway). */
    assert_false(rp_session_revoked(b, id, g, 200));
    /* An already expired session adds nothing. */
    assert_int_equal(rp_session_revoke(b, id2, g, 150, 150), 0);
    assert_false(rp_session_revoked(b, id2, g, 140));
}

static void test_replayed_signout_adds_nothing(void **state)
{
    rp_session_box *b = *state;
    uint64_t g = rp_session_generation(b);

    /* One cookie signed out again and again (a replay) never fills the list. */
    for (int i = 0; i < RP_SESSION_REVOKED_MAX + 5; i++)
        assert_int_equal(rp_session_revoke(b, "same", g, 5000, 1000), 0);
    assert_int_equal(rp_session_generation(b), g);
    assert_false(rp_session_revoked(b, "someone-else", g, 1000));
    assert_true(rp_session_revoked(b, "same", g, 1000));
}

static void test_revocation_overflow_revokes_all(void **state)
{
    rp_session_box *b = *state;
    char id[RP_SESSION_ID_LEN + 1];
    uint64_t g = rp_session_generation(b);

    for (int i = 0; i < RP_SESSION_REVOKED_MAX; i++) {
        snprintf(id, sizeof(id), "s%d", i);
        assert_int_equal(rp_session_revoke(b, id, g, 5000, 1000), 0);
    }
    assert_false(rp_session_revoked(b, "live-one", g, 1000));
    /* One more than the list holds: every session issued so far ends. */
    assert_int_equal(rp_session_revoke(b, "last", g, 5000, 1000), 0);
    assert_true(rp_session_revoked(b, "live-one", g, 1000));
    assert_true(rp_session_revoked(b, "s7", g, 1000));
    /* Sessions issued from now on, even in the same second, are fine. */
    assert_int_equal(rp_session_generation(b), g + 1);
    assert_false(rp_session_revoked(b, "new", g + 1, 1000));
}

static void test_local_paths(void **state)
{
    char longp[RP_SIGNIN_TARGET_MAX + 2];
    (void)state;

    assert_true(rp_signin_local_path("/"));
    assert_true(rp_signin_local_path("/a/b?c=d&e=%2F"));
    assert_false(rp_signin_local_path(NULL));
    assert_false(rp_signin_local_path(""));
    assert_false(rp_signin_local_path("https://evil.example/"));
    assert_false(rp_signin_local_path("//evil.example/"));
    assert_false(rp_signin_local_path("/\\evil.example/"));
    assert_false(rp_signin_local_path("/a\\b"));
    assert_false(rp_signin_local_path("/a b"));
    assert_false(rp_signin_local_path("/a\r\nSet-Cookie: x=1"));
    assert_false(rp_signin_local_path("relative"));
    memset(longp, 'a', sizeof(longp));
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    assert_false(rp_signin_local_path(longp));
    longp[RP_SIGNIN_TARGET_MAX] = '\0';
    assert_true(rp_signin_local_path(longp));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound_to_app_purpose_and_box, setup, teardown),
        cmocka_unit_test_setup_teardown(test_altered_or_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replayed_signout_adds_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_overflow_revokes_all, setup, teardown),
        cmocka_unit_test(test_local_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
