/*
 * admin_test.c - administrator tokens against a real SQLite database (in memory, with the real
 * schema from store/schema.c): format, what is stored (the hash, never the token), checks that
 * must pass and the many that must fail, immutability of a loaded set, bad rows and OOM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/err.h"
#include "server/admin.h"
#include "store/schema.h"

#include <openssl/evp.h>

#include <string.h>

static sqlite3 *open_db(void)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(rp_schema_migrate(db), 0);
    return db;
}

static int count_rows(sqlite3 *db)
{
    sqlite3_stmt *st;
    int n;

    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT count(*) FROM admin_credentials", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int check(const rp_admin_creds *c, const char *t)
{
    return rp_admin_creds_check(c, t, strlen(t));
}

static void test_format_and_storage(void **state)
{
    sqlite3 *db = open_db();
    char tok[RP_ADMIN_TOKEN_LEN + 1];
    unsigned char want[32];
    unsigned int wl;
    sqlite3_stmt *st;
    int rows = 0;

    assert_int_equal(rp_admin_token_create(db, tok, sizeof(tok)), 0);
    assert_int_equal(strlen(tok), RP_ADMIN_TOKEN_LEN);
    assert_memory_equal(tok, "rpa_", 4);
    assert_int_equal(tok[15], '.');
    for (size_t i = 4; i < RP_ADMIN_TOKEN_LEN; i++)
        if (i != 15)
            assert_non_null(
                strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", tok[i]));

    /* The row holds the id and SHA-256 of the whole token, nothing of the secret itself. */
    assert_int_equal(EVP_Digest(tok, strlen(tok), want, &wl, EVP_sha256(), NULL), 1);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT id, hash, created_at FROM admin_credentials", -1, &st, NULL),
        SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        rows++;
        assert_int_equal(sqlite3_column_bytes(st, 0), 11);
        assert_memory_equal(sqlite3_column_text(st, 0), tok + 4, 11);
        assert_int_equal(sqlite3_column_bytes(st, 1), 32);
        assert_memory_equal(sqlite3_column_blob(st, 1), want, 32);
        assert_true(sqlite3_column_int64(st, 2) > 1700000000);
    }
    sqlite3_finalize(st);
    assert_int_equal(rows, 1);
    sqlite3_close(db);
}

static void test_check(void **state)
{
    sqlite3 *db = open_db();
    char tok[128], t2[128], bad[128];
    rp_admin_creds *c = NULL;

    assert_int_equal(rp_admin_token_create(db, tok, sizeof(tok)), 0);
    assert_int_equal(rp_admin_creds_load(db, &c), 0);
    assert_int_equal(check(c, tok), 0);

    /* Any changed character of the secret part. */
    for (size_t i = 16; i < RP_ADMIN_TOKEN_LEN; i++) {
        memcpy(bad, tok, sizeof(tok));
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        assert_int_equal(check(c, bad), RP_EPERM);
    }
    /* The right secret under another id. */
    for (size_t i = 4; i < 15; i++) {
        memcpy(bad, tok, sizeof(tok));
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        assert_int_equal(check(c, bad), RP_EPERM);
    }
    /* Shape: prefix, separator, length, alphabet. */
    memcpy(bad, tok, sizeof(tok));
    bad[0] = 'R';
    assert_int_equal(check(c, bad), RP_EPERM);
    memcpy(bad, tok, sizeof(tok));
    bad[15] = '_';
    assert_int_equal(check(c, bad), RP_EPERM);
    memcpy(bad, tok, sizeof(tok));
    bad[30] = '=';
    assert_int_equal(check(c, bad), RP_EPERM);
    assert_int_equal(rp_admin_creds_check(c, tok, RP_ADMIN_TOKEN_LEN - 1), RP_EPERM);
    memcpy(bad, tok, sizeof(tok));
    bad[RP_ADMIN_TOKEN_LEN] = 'A';
    bad[RP_ADMIN_TOKEN_LEN + 1] = '\0';
    assert_int_equal(check(c, bad), RP_EPERM);
    assert_int_equal(check(c, ""), RP_EPERM);
    assert_int_equal(check(c, "garbage"), RP_EPERM);
    assert_int_equal(check(c, "Bearer rpa_"), RP_EPERM);
    assert_int_equal(rp_admin_creds_check(c, NULL, 0), RP_EPERM);
    assert_int_equal(rp_admin_creds_check(NULL, tok, strlen(tok)), RP_EPERM);

    /* A second credential: a set loaded earlier does not see it (immutable), a new one sees both. */
    assert_int_equal(rp_admin_token_create(db, t2, sizeof(t2)), 0);
    assert_string_not_equal(tok, t2);
    assert_int_equal(check(c, t2), RP_EPERM);
    rp_admin_creds_free(c);
    assert_int_equal(rp_admin_creds_load(db, &c), 0);
    assert_int_equal(check(c, tok), 0);
    assert_int_equal(check(c, t2), 0);
    /* Secret of one with the id of the other. */
    memcpy(bad, t2, sizeof(t2));
    memcpy(bad + 4, tok + 4, 11);
    assert_int_equal(check(c, bad), RP_EPERM);
    rp_admin_creds_free(c);
    rp_admin_creds_free(NULL);
    sqlite3_close(db);
}

static void test_empty_and_bad_rows(void **state)
{
    sqlite3 *db = open_db();
    rp_admin_creds *c = NULL;
    char tok[128];

    assert_int_equal(rp_admin_creds_load(db, &c), 0);
    assert_int_equal(check(c, "rpa_AAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                     RP_EPERM);
    rp_admin_creds_free(c);
    c = NULL;

    assert_int_equal(rp_admin_token_create(db, tok, sizeof(tok)), 0);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO admin_credentials VALUES ('short', x'00', 1)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(rp_admin_creds_load(db, &c), RP_EPARSE);
    assert_null(c);
    sqlite3_close(db);

    /* No table: a database error, not a crash. */
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(rp_admin_creds_load(db, &c), RP_EDB);
    assert_int_equal(rp_admin_token_create(db, tok, sizeof(tok)), RP_EDB);
    for (size_t i = 0; i < sizeof(tok); i++)
        assert_int_equal(tok[i], 0);
    sqlite3_close(db);
}

static void test_create_limits(void **state)
{
    sqlite3 *db = open_db();
    char tok[RP_ADMIN_TOKEN_LEN];

    assert_int_equal(rp_admin_token_create(db, tok, sizeof(tok)), RP_ETOOBIG);
    assert_int_equal(rp_admin_token_create(NULL, tok, sizeof(tok)), RP_EINVAL);
    assert_int_equal(count_rows(db), 0);
    sqlite3_close(db);
}

static void test_load_oom(void **state)
{
    sqlite3 *db = open_db();
    rp_admin_creds *c = NULL;
    char tok[128];
    int rc = RP_ENOMEM;

    for (int i = 0; i < 6; i++)
        assert_int_equal(rp_admin_token_create(db, tok, sizeof(tok)), 0);
    /* Fail each allocation in turn until load gets through: never a leak or a crash. */
    for (long n = 0; rc == RP_ENOMEM; n++) {
        rp_alloc_fail_after(n);
        rc = rp_admin_creds_load(db, &c);
        rp_alloc_fail_after(-1);
        if (rc == RP_ENOMEM)
            assert_null(c);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(check(c, tok), 0);
    rp_admin_creds_free(c);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_storage), cmocka_unit_test(test_check),
        cmocka_unit_test(test_empty_and_bad_rows), cmocka_unit_test(test_create_limits),
        cmocka_unit_test(test_load_oom),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
