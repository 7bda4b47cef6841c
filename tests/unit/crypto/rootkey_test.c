/*
 * rootkey_test.c - the root key file provider against real files under $RP_TEST_TMP: create and
 * load, O_EXCL, refusal of loose permissions, wrong sizes and symlinks, and HKDF derivation
 * checked against an independent HMAC-SHA256 computation of RFC 5869.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "base/err.h"
#include "crypto/rootkey.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[512];

/* ---- helpers ---- */

static int setup(void **state)
{
    rp_test_scratch("rootkey", scratch, sizeof(scratch));
    *state = scratch;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rp_test_rmtree(scratch);
    return 0;
}

static void path_in(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", scratch, name);
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void read_file(const char *path, unsigned char *out, size_t n)
{
    int fd = open(path, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(read(fd, out, n), (ssize_t)n);
    close(fd);
}

/* HKDF-SHA256 with an empty salt, computed with plain HMAC (RFC 5869 2.2, 2.3). */
static void hkdf_ref(const unsigned char *ikm, size_t ikmlen, const char *info, unsigned char *out,
                     size_t n)
{
    unsigned char zeros[32] = {0}, prk[32], t[32] = {0}, msg[32 + 256 + 1];
    unsigned int len;
    size_t done = 0, tlen = 0, ilen = strlen(info);
    unsigned char ctr = 1;

    assert_non_null(HMAC(EVP_sha256(), zeros, sizeof(zeros), ikm, ikmlen, prk, &len));
    while (done < n) {
        size_t m = 0;
        memcpy(msg, t, tlen);
        m += tlen;
        memcpy(msg + m, info, ilen);
        m += ilen;
        msg[m++] = ctr++;
        assert_non_null(HMAC(EVP_sha256(), prk, sizeof(prk), msg, m, t, &len));
        tlen = 32;
        memcpy(out + done, t, n - done < 32 ? n - done : 32);
        done += n - done < 32 ? n - done : 32;
    }
}

/* ---- tests ---- */

static void test_create_load(void **state)
{
    char path[600];
    struct stat st;
    rp_rootkey *k = NULL;

    path_in("root.key", path, sizeof(path));
    /* A permissive umask must not loosen the mode. */
    mode_t old = umask(0);
    assert_int_equal(rp_rootkey_file_create(path), 0);
    umask(old);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, RP_ROOTKEY_LEN);
    assert_int_equal(rp_rootkey_file_load(path, &k), 0);
    assert_non_null(k);
    rp_rootkey_free(k);
    rp_rootkey_free(NULL);
}

static void test_create_excl(void **state)
{
    char path[600];
    unsigned char before[32], after[32];

    path_in("root.key", path, sizeof(path));
    assert_int_equal(rp_rootkey_file_create(path), 0);
    read_file(path, before, sizeof(before));
    assert_int_equal(rp_rootkey_file_create(path), RP_EEXIST);
    read_file(path, after, sizeof(after));
    assert_memory_equal(before, after, sizeof(before));
    /* Two keys are different keys. */
    path_in("other.key", path, sizeof(path));
    assert_int_equal(rp_rootkey_file_create(path), 0);
    read_file(path, after, sizeof(after));
    assert_memory_not_equal(before, after, sizeof(before));
    /* Missing directory. */
    path_in("nodir/root.key", path, sizeof(path));
    assert_int_equal(rp_rootkey_file_create(path), RP_ENOENT);
    assert_int_equal(rp_rootkey_file_create(NULL), RP_EINVAL);
}

static void test_load_refuses_loose_perms(void **state)
{
    static const mode_t bad[] = {0644, 0640, 0604, 0660, 0602, 0610};
    char path[600];
    rp_rootkey *k = NULL;

    path_in("root.key", path, sizeof(path));
    assert_int_equal(rp_rootkey_file_create(path), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(chmod(path, bad[i]), 0);
        assert_int_equal(rp_rootkey_file_load(path, &k), RP_EPERM);
        assert_null(k);
    }
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(rp_rootkey_file_load(path, &k), 0);
    rp_rootkey_free(k);
}

static void test_load_refuses_wrong_size(void **state)
{
    unsigned char buf[64] = {1};
    char path[600];
    rp_rootkey *k = NULL;

    path_in("short.key", path, sizeof(path));
    write_file(path, buf, 31, 0600);
    assert_int_equal(rp_rootkey_file_load(path, &k), RP_EPARSE);
    path_in("long.key", path, sizeof(path));
    write_file(path, buf, 33, 0600);
    assert_int_equal(rp_rootkey_file_load(path, &k), RP_EPARSE);
    path_in("empty.key", path, sizeof(path));
    write_file(path, buf, 0, 0600);
    assert_int_equal(rp_rootkey_file_load(path, &k), RP_EPARSE);
    assert_null(k);
}

static void test_load_refuses_odd_files(void **state)
{
    char path[600], link[600];
    rp_rootkey *k = NULL;

    path_in("missing.key", path, sizeof(path));
    assert_int_equal(rp_rootkey_file_load(path, &k), RP_ENOENT);
    /* A symlink could point the server at a key someone else controls. */
    path_in("root.key", path, sizeof(path));
    assert_int_equal(rp_rootkey_file_create(path), 0);
    path_in("link.key", link, sizeof(link));
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(rp_rootkey_file_load(link, &k), RP_EPERM);
    /* A directory is not a key. */
    path_in("dir.key", path, sizeof(path));
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(rp_rootkey_file_load(path, &k), RP_EPERM);
    assert_null(k);
}

static void test_derive(void **state)
{
    unsigned char raw[32], a[32], b[32], c[32], ref[64], big[64];
    char path[600], path2[600];
    rp_rootkey *k = NULL, *k2 = NULL;

    path_in("root.key", path, sizeof(path));
    assert_int_equal(rp_rootkey_file_create(path), 0);
    assert_int_equal(rp_rootkey_file_load(path, &k), 0);
    read_file(path, raw, sizeof(raw));

    assert_int_equal(rp_rootkey_derive(k, "rampart/v1/keyfile", a, sizeof(a)), 0);
    assert_int_equal(rp_rootkey_derive(k, "rampart/v1/keyfile", b, sizeof(b)), 0);
    assert_memory_equal(a, b, sizeof(a));
    assert_int_equal(rp_rootkey_derive(k, "rampart/v1/other", c, sizeof(c)), 0);
    assert_memory_not_equal(a, c, sizeof(a));
    assert_memory_not_equal(a, raw, sizeof(a));

    hkdf_ref(raw, sizeof(raw), "rampart/v1/keyfile", ref, sizeof(ref));
    assert_memory_equal(a, ref, sizeof(a));
    assert_int_equal(rp_rootkey_derive(k, "rampart/v1/keyfile", big, sizeof(big)), 0);
    assert_memory_equal(big, ref, sizeof(big));

    /* The same label under another root key gives another key. */
    path_in("root2.key", path2, sizeof(path2));
    assert_int_equal(rp_rootkey_file_create(path2), 0);
    assert_int_equal(rp_rootkey_file_load(path2, &k2), 0);
    assert_int_equal(rp_rootkey_derive(k2, "rampart/v1/keyfile", c, sizeof(c)), 0);
    assert_memory_not_equal(a, c, sizeof(a));

    /* Loading again gives the same derivations. */
    rp_rootkey_free(k2);
    assert_int_equal(rp_rootkey_file_load(path, &k2), 0);
    assert_int_equal(rp_rootkey_derive(k2, "rampart/v1/keyfile", c, sizeof(c)), 0);
    assert_memory_equal(a, c, sizeof(a));

    assert_int_equal(rp_rootkey_derive(k, "", a, sizeof(a)), RP_EINVAL);
    assert_int_equal(rp_rootkey_derive(k, NULL, a, sizeof(a)), RP_EINVAL);
    assert_int_equal(rp_rootkey_derive(k, "x", a, 0), RP_EINVAL);
    assert_int_equal(rp_rootkey_derive(k, "x", big, RP_ROOTKEY_DERIVE_MAX + 1), RP_EINVAL);
    assert_int_equal(rp_rootkey_derive(NULL, "x", a, sizeof(a)), RP_EINVAL);
    rp_rootkey_free(k);
    rp_rootkey_free(k2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_excl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_refuses_loose_perms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_refuses_wrong_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_refuses_odd_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_derive, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
