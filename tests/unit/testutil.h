/*
 * testutil.h - scratch directories for unit tests that touch real files.
 *
 * Each test group makes its own directory under $RP_TEST_TMP (CMake sets it to build/tmp; the
 * fallback is /tmp/rampart-test) and removes it, with everything inside, when it is done.
 * Include after <cmocka.h>.
 */
#ifndef RP_TESTS_TESTUTIL_H
#define RP_TESTS_TESTUTIL_H

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static inline void rp_test_mkdir_p(const char *dir)
{
    char buf[512];
    size_t n = strlen(dir);

    assert_true(n < sizeof(buf));
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0700) != 0)
                assert_int_equal(errno, EEXIST);
            buf[i] = c;
        }
    }
}

/* Creates $RP_TEST_TMP/<prefix>.XXXXXX into out[cap]. */
static inline void rp_test_scratch(const char *prefix, char *out, size_t cap)
{
    const char *tmp = getenv("RP_TEST_TMP");

    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp/rampart-test";
    rp_test_mkdir_p(tmp);
    assert_true((size_t)snprintf(out, cap, "%s/%s.XXXXXX", tmp, prefix) < cap);
    assert_non_null(mkdtemp(out));
}

static inline int rp_test_rm_entry(const char *path, const struct stat *st, int flag,
                                   struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes dir and everything below it (symlinks are removed, never followed). */
static inline void rp_test_rmtree(const char *dir)
{
    nftw(dir, rp_test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
