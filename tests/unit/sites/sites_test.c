/*
 * sites_test.c - App Service's parts that need no server: the name rule, and what
 * rp_sites_open does with a data directory left by a crash (a real SQLite store and real
 * directories under $RP_TEST_TMP): committed releases stay, uncommitted ones and the
 * directories of apps that no longer exist go, an app whose live release is missing still
 * loads. The HTTP side is tests/e2e/sites.test.mjs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "sites/sites.h"
#include "store/store.h"

#include <fcntl.h>
#include <unistd.h>

static void test_names(void **state)
{
    static const char *const good[] = {
        "ab",   "a1",    "my-app",
        "0day", "x-y-z", "a23456789012345678901234567890123456789012345678901234567890"};
    static const char *const bad[] = {
        "",      "a",         "-ab",
        "ab-",   "My-app",    "a_b",
        "a.b",   "a b",       "login",
        "scm",   "vault",     "events",
        "blob",  "api",       "www",
        "admin", "localhost", "a234567890123456789012345678901234567890123456789012345678901"};

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(rp_sites_name_valid(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(rp_sites_name_valid(bad[i]));
    assert_false(rp_sites_name_valid(NULL));
}

static int seed(sqlite3 *db, void *arg)
{
    (void)arg;
    return rp_store_exec(db, "INSERT INTO apps (name, id, release, next_release, created_at,"
                             " updated_at, uid) VALUES ('a', 'id-a', 1, 3, 1, 1, 1879048192),"
                             " ('b', 'id-b', 4, 5, 1, 1, 1879048193);"
                             "INSERT INTO app_releases VALUES ('a', 1, 1, 1, 5, 0, 'p', 1),"
                             " ('b', 4, 1, 1, 5, 0, 'p', 1);");
}

static void touch(const char *dir, const char *rel, const char *text)
{
    char path[1024];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static int exists(const char *dir, const char *rel)
{
    char path[1024];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return lstat(path, &st) == 0;
}

static void test_open_sweeps_crash_leftovers(void **state)
{
    char dir[512], db[600], p[700];
    rp_store *store = NULL;
    rp_sites *s = NULL;
    char err[256] = "";

    (void)state;
    rp_test_scratch("sites", dir, sizeof(dir));
    snprintf(db, sizeof(db), "%s/rampart.db", dir);
    assert_int_equal(rp_store_open(db, &store), 0);
    assert_int_equal(rp_store_write_sync(store, seed, NULL), 0);
    /* a: release 1 committed and live, 2 unpacked but never committed (a crash). */
    snprintf(p, sizeof(p), "%s/apps/a/releases/1", dir);
    rp_test_mkdir_p(p);
    touch(dir, "apps/a/releases/1/index.html", "one");
    snprintf(p, sizeof(p), "%s/apps/a/releases/2/sub", dir);
    rp_test_mkdir_p(p);
    touch(dir, "apps/a/releases/2/sub/x", "half");
    /* b: its live release 4 is missing from disk. ghost: an app that was deleted. */
    snprintf(p, sizeof(p), "%s/apps/b/releases", dir);
    rp_test_mkdir_p(p);
    snprintf(p, sizeof(p), "%s/apps/ghost/releases/1", dir);
    rp_test_mkdir_p(p);
    snprintf(p, sizeof(p), "%s/apps/.gone-1234", dir);
    rp_test_mkdir_p(p);
    /* A symlink in a stray release must be removed, never followed. */
    touch(dir, "victim", "keep me");
    snprintf(p, sizeof(p), "%s/apps/a/releases/2/link", dir);
    {
        char target[600];
        snprintf(target, sizeof(target), "%s/victim", dir);
        assert_int_equal(symlink(target, p), 0);
    }

    /* The ghost's run directory holds what its app left (the helper removes it). */
    snprintf(p, sizeof(p), "%s/apps/ghost/run/deep", dir);
    rp_test_mkdir_p(p);
    touch(dir, "apps/ghost/run/deep/file", "x");

    char apps[600];
    rp_helper *helper = NULL;
    snprintf(apps, sizeof(apps), "%s/apps", dir);
    rp_helper_opts ho = {apps, NULL, NULL, 1879048193u, 1879048193u + 0xFFFFFF, 0, -1};
    assert_int_equal(rp_helper_start(&ho, &helper), 0);
    rp_sites_opts o = {"rampart.localhost", 8443, dir, store, NULL, NULL, NULL, NULL, helper};
    assert_int_equal(rp_sites_open(&o, &s, err, sizeof(err)), 0);
    assert_true(exists(dir, "apps/a/releases/1/index.html"));
    assert_false(exists(dir, "apps/a/releases/2"));
    assert_true(exists(dir, "apps/b/releases"));
    assert_false(exists(dir, "apps/ghost"));
    assert_false(exists(dir, "apps/.gone-1234"));
    assert_true(exists(dir, "victim"));
    rp_sites_close(s);

    /* Opening again changes nothing more. */
    assert_int_equal(rp_sites_open(&o, &s, err, sizeof(err)), 0);
    assert_true(exists(dir, "apps/a/releases/1/index.html"));
    rp_sites_close(s);
    rp_helper_stop(helper);
    rp_store_close(store);
    rp_test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_open_sweeps_crash_leftovers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
