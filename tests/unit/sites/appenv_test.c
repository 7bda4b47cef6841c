/*
 * appenv_test.c - an app's sealed settings (src/sites/appenv.c) with a real keyring (file root
 * key) and a real store: sealed and read back equal, nothing set reads as none, a set sealed for
 * one app does not open as another's (the AAD names the app), altered ciphertext is refused,
 * and destroying the app's KEK makes its settings unreadable (crypto-shredding on delete).
 * The rest of appenv (references, identity sessions) runs against the real server in
 * tests/e2e/sites-settings.test.mjs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../testutil.h"
#include "base/err.h"
#include "sites/appenv.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

static char dir[512];

#define A_ID  "00000000-0000-4000-8000-00000000000a"
#define A2_ID "00000000-0000-4000-8000-0000000000a2"
#define B_ID  "00000000-0000-4000-8000-00000000000b"

typedef struct put {
    const char *app;
    rp_buf *wdek, *ct;
} put;

static int seed(sqlite3 *db, void *arg)
{
    (void)arg;
    return rp_store_exec(db, "INSERT INTO apps (name, id, created_at, updated_at, uid) VALUES"
                             " ('a', '" A_ID "', 1, 1, 1879048192), ('b', '" B_ID
                             "', 1, 1, 1879048193)");
}

static int put_write(sqlite3 *db, void *arg)
{
    put *p = arg;
    char id[64];
    sqlite3_stmt *st = NULL;
    int rc = RP_EDB;

    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO app_secrets VALUES (?1, ?2, 1)", -1, &st,
                           NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, p->app, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, p->wdek->data, (int)p->wdek->len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto out;
    sqlite3_finalize(st);
    snprintf(id, sizeof(id), "apps/%s/settings", p->app);
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO obj.blobs VALUES (?1, ?2)", -1, &st, NULL) !=
        SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, p->ct->data, (int)p->ct->len, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : RP_EDB;
out:
    sqlite3_finalize(st);
    return rc;
}

static void test_seal_read_shred(void **state)
{
    char keys[600], dbp[600], objp[600], err[256] = "";
    rp_keyring_opts ko = {0};
    rp_keyring *kr = NULL;
    rp_store *store = NULL;
    sqlite3 *r = NULL;
    rp_buf wdek, ct;
    json_t *set, *got = NULL;
    const char *reason = NULL;
    put p;

    (void)state;
    rp_test_scratch("appenv", dir, sizeof(dir));
    snprintf(keys, sizeof(keys), "%s/keys", dir);
    snprintf(dbp, sizeof(dbp), "%s/rampart.db", dir);
    snprintf(objp, sizeof(objp), "%s/objects.db", dir);
    ko.keys_dir = keys;
    ko.provider = RP_ROOT_FILE;
    assert_int_equal(rp_keyring_create(&ko, err, sizeof(err)), 0);
    assert_int_equal(rp_keyring_open(&ko, &kr, err, sizeof(err)), 0);
    assert_int_equal(rp_store_open_ex(dbp, objp, &store), 0);
    assert_int_equal(rp_store_write_sync(store, seed, NULL), 0);
    assert_int_equal(rp_store_reader_open(store, &r), 0);

    /* Nothing set: none, not an error. */
    assert_int_equal(rp_appenv_settings_read(r, kr, "a", A_ID, &got, &reason), 0);
    assert_null(got);

    set =
        json_loads("{\"appSettings\":{\"GREETING\":\"hi\",\"DB\":\"p@ss\"},"
                   "\"connectionStrings\":{\"main\":{\"value\":\"Server=x\",\"type\":\"Custom\"}}}",
                   0, NULL);
    assert_non_null(set);
    rp_buf_init(&wdek, 4096);
    rp_buf_init(&ct, 1 << 20);
    assert_int_equal(rp_appenv_settings_seal(kr, "a", A_ID, set, &wdek, &ct, &reason), 0);
    /* The ciphertext does not hold the value. */
    assert_null(memmem(ct.data, ct.len, "p@ss", 4));
    p = (put){"a", &wdek, &ct};
    assert_int_equal(rp_store_write_sync(store, put_write, &p), 0);
    assert_int_equal(rp_appenv_settings_read(r, kr, "a", A_ID, &got, &reason), 0);
    assert_non_null(got);
    assert_true(json_equal(got, set));
    json_decref(got);
    got = NULL;

    /* The same bytes stored as app b's do not open: the object's identity is in the AAD. */
    assert_int_equal(rp_keyring_kek_ensure(kr, "/apps/b/instance/" B_ID), 0);
    p.app = "b";
    assert_int_equal(rp_store_write_sync(store, put_write, &p), 0);
    assert_int_not_equal(rp_appenv_settings_read(r, kr, "b", B_ID, &got, &reason), 0);
    assert_null(got);

    /* An altered byte is refused. */
    ((unsigned char *)ct.data)[ct.len - 1] ^= 1;
    p.app = "a";
    assert_int_equal(rp_store_write_sync(store, put_write, &p), 0);
    assert_int_equal(rp_appenv_settings_read(r, kr, "a", A_ID, &got, &reason), RP_ECRYPTO);
    ((unsigned char *)ct.data)[ct.len - 1] ^= 1;
    assert_int_equal(rp_store_write_sync(store, put_write, &p), 0);
    assert_int_equal(rp_appenv_settings_read(r, kr, "a", A_ID, &got, &reason), 0);
    json_decref(got);
    got = NULL;

    /* An app created again under the name (another object id) has another KEK: the old set
     * is not its own. */
    assert_int_equal(rp_keyring_kek_ensure(kr, "/apps/a/instance/" A2_ID), 0);
    assert_int_not_equal(rp_appenv_settings_read(r, kr, "a", A2_ID, &got, &reason), 0);
    assert_null(got);
    {
        char res[RP_APPENV_RES_MAX];
        assert_int_equal(rp_appenv_resource("a", "../x", res, sizeof(res)), RP_EINVAL);
        assert_int_equal(rp_appenv_resource("a", A_ID, res, sizeof(res)), 0);
        assert_string_equal(res, "/apps/a/instance/" A_ID);
    }

    /* Deleting the app destroys its KEK: the settings never open again. */
    assert_int_equal(rp_keyring_kek_drop(kr, "/apps/a/instance/" A_ID), 0);
    assert_int_not_equal(rp_appenv_settings_read(r, kr, "a", A_ID, &got, &reason), 0);
    assert_null(got);

    json_decref(set);
    rp_buf_free(&wdek);
    rp_buf_free(&ct);
    sqlite3_close(r);
    rp_store_close(store);
    rp_keyring_close(kr);
    rp_test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_read_shred),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
