/*
 * keyprov_test.c - the root key providers against real files under $RP_TEST_TMP and a real
 * SoftHSM2 token the test creates in its scratch directory: wrap/unwrap round trips, wrong AAD,
 * altered bytes, wrong generation, refusal of loose permissions and symlinks, the sealed file's
 * format and parameters, a wrong passphrase and a wrong PIN, and that the token's key object is
 * sensitive and cannot be extracted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "base/err.h"
#include "crypto/keyprov.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <p11-kit/pkcs11.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SOFTHSM "/usr/lib/softhsm/libsofthsm2.so"

static char scratch[512];
static int have_hsm;

static const unsigned char KEY[32] = "0123456789abcdef0123456789abcde";

static void path_in(const char *name, char *out, size_t cap)
{
    assert_true((size_t)snprintf(out, cap, "%s/%s", scratch, name) < cap);
}

/* A SoftHSM2 configuration and one initialised token "T" (user PIN 1234) in the scratch dir. */
static int hsm_setup(void)
{
    char conf[600], tokens[600], cmd[1400];
    FILE *f;

    if (access(SOFTHSM, R_OK) != 0)
        return 0;
    path_in("softhsm2.conf", conf, sizeof(conf));
    path_in("tokens", tokens, sizeof(tokens));
    rp_test_mkdir_p(tokens);
    f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens);
    fclose(f);
    assert_int_equal(setenv("SOFTHSM2_CONF", conf, 1), 0);
    snprintf(cmd, sizeof(cmd),
             "softhsm2-util --init-token --free --label T --pin 1234 --so-pin 5678 >/dev/null");
    assert_int_equal(system(cmd), 0);
    return 1;
}

static int setup(void **state)
{
    (void)state;
    rp_test_scratch("keyprov", scratch, sizeof(scratch));
    have_hsm = hsm_setup();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rp_test_rmtree(scratch);
    return 0;
}

static rp_keyring_opts file_opts(void)
{
    rp_keyring_opts o = {0};
    o.keys_dir = scratch;
    o.provider = RP_ROOT_FILE;
    return o;
}

static rp_keyring_opts pass_opts(const char *pass)
{
    rp_keyring_opts o = {0};
    o.keys_dir = scratch;
    o.provider = RP_ROOT_PASSPHRASE;
    o.passphrase = pass;
    o.passphrase_len = strlen(pass);
    return o;
}

static rp_keyring_opts hsm_opts(const char *pin)
{
    rp_keyring_opts o = {0};
    o.keys_dir = scratch;
    o.provider = RP_ROOT_PKCS11;
    o.pkcs11_module = SOFTHSM;
    o.pkcs11_token = "T";
    o.pkcs11_pin = pin;
    return o;
}

/* wrap, unwrap, and the failures every provider must show */
static void roundtrip(rp_keyprov *p, uint32_t gen)
{
    unsigned char out[32];
    rp_buf w;

    rp_buf_init(&w, 256);
    assert_int_equal(rp_keyprov_wrap(p, gen, KEY, "aad", 3, &w), 0);
    assert_int_equal(w.len, RP_KEYPROV_WRAP_LEN);
    assert_int_equal(rp_keyprov_unwrap(p, gen, w.data, w.len, "aad", 3, out), 0);
    assert_memory_equal(out, KEY, 32);
    /* another AAD */
    assert_int_equal(rp_keyprov_unwrap(p, gen, w.data, w.len, "aae", 3, out), RP_ECRYPTO);
    assert_int_equal(rp_keyprov_unwrap(p, gen, w.data, w.len, NULL, 0, out), RP_ECRYPTO);
    /* every byte after the magic altered in turn */
    for (size_t i = 4; i < w.len; i++) {
        w.data[i] ^= 0x01;
        assert_int_equal(rp_keyprov_unwrap(p, gen, w.data, w.len, "aad", 3, out), RP_ECRYPTO);
        w.data[i] ^= 0x01;
    }
    w.data[0] ^= 0x01;
    assert_int_equal(rp_keyprov_unwrap(p, gen, w.data, w.len, "aad", 3, out), RP_EPARSE);
    w.data[0] ^= 0x01;
    assert_int_equal(rp_keyprov_unwrap(p, gen, w.data, w.len - 1, "aad", 3, out), RP_EPARSE);
    /* a generation that is not loaded */
    assert_int_equal(rp_keyprov_unwrap(p, gen + 100, w.data, w.len, "aad", 3, out), RP_ENOENT);
    assert_int_equal(rp_keyprov_wrap(p, gen + 100, KEY, "aad", 3, &w), RP_ENOENT);
    rp_buf_free(&w);
}

static void test_file(void **state)
{
    char ref[RP_KEYPROV_REF_MAX], path[600], err[256];
    unsigned char out[32];
    struct stat st;
    rp_keyprov *p = NULL;
    rp_buf w;
    rp_keyring_opts o = file_opts();

    rp_buf_init(&w, 256);
    assert_int_equal(rp_keyprov_open(&o, &p, err, sizeof(err)), 0);
    assert_int_equal(rp_keyprov_type(p), RP_ROOT_FILE);
    assert_int_equal(rp_keyprov_new_ref(p, 7, ref, sizeof(ref)), 0);
    assert_string_equal(ref, "root-7.key");
    assert_int_equal(rp_keyprov_load(p, 7, ref), RP_ENOENT);
    assert_int_equal(rp_keyprov_generate(p, 7, ref), 0);
    assert_int_equal(rp_keyprov_generate(p, 7, ref), RP_EEXIST);
    path_in(ref, path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, 32);
    assert_int_equal(rp_keyprov_load(p, 7, ref), 0);
    assert_int_equal(rp_keyprov_load(p, 7, ref), 0);
    roundtrip(p, 7);

    /* a second generation wraps differently; the first one's wrapping does not open under it */
    assert_int_equal(rp_keyprov_new_ref(p, 8, ref, sizeof(ref)), 0);
    assert_int_equal(rp_keyprov_generate(p, 8, ref), 0);
    assert_int_equal(rp_keyprov_load(p, 8, ref), 0);
    assert_int_equal(rp_keyprov_wrap(p, 7, KEY, "a", 1, &w), 0);
    assert_int_equal(rp_keyprov_unwrap(p, 8, w.data, w.len, "a", 1, out), RP_ECRYPTO);

    /* loose permissions and symlinks are refused */
    rp_keyprov_unload(p, 7);
    assert_int_equal(chmod(path, 0644), 0); /* path is root-7.key */
    assert_int_equal(rp_keyprov_load(p, 7, "root-7.key"), RP_EPERM);
    assert_int_equal(chmod(path, 0600), 0);
    {
        char link[600];
        path_in("link.key", link, sizeof(link));
        assert_int_equal(symlink(path, link), 0);
        assert_int_equal(rp_keyprov_load(p, 9, "link.key"), RP_EPERM);
        /* destroying a symlink reference removes the link, never the file it points to */
        assert_int_equal(rp_keyprov_destroy(p, 9, "link.key"), 0);
        assert_int_equal(lstat(link, &st), -1);
        assert_int_equal(stat(path, &st), 0);
    }
    /* references cannot leave the keys directory */
    assert_int_equal(rp_keyprov_load(p, 9, "../x.key"), RP_EINVAL);
    assert_int_equal(rp_keyprov_load(p, 9, ".hidden"), RP_EINVAL);

    /* destroy wipes and removes; destroying again is fine */
    assert_int_equal(rp_keyprov_destroy(p, 7, "root-7.key"), 0);
    assert_int_equal(stat(path, &st), -1);
    assert_int_equal(rp_keyprov_destroy(p, 7, "root-7.key"), 0);
    assert_int_equal(rp_keyprov_unwrap(p, 7, w.data, w.len, "a", 1, out), RP_ENOENT);
    assert_int_equal(rp_keyprov_destroy(p, 8, "root-8.key"), 0);
    rp_keyprov_close(p);
    rp_keyprov_close(NULL);
    rp_buf_free(&w);
}

static void read_all(const char *path, unsigned char *buf, size_t cap, size_t *n)
{
    int fd = open(path, O_RDONLY);
    ssize_t r;

    assert_true(fd >= 0);
    r = read(fd, buf, cap);
    assert_true(r >= 0);
    *n = (size_t)r;
    close(fd);
}

static void write_all(const char *path, const unsigned char *buf, size_t n)
{
    int fd = open(path, O_WRONLY | O_TRUNC);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
    close(fd);
}

static void test_passphrase(void **state)
{
    char ref[RP_KEYPROV_REF_MAX], path[600], path2[600], err[256];
    unsigned char file[512], orig[512];
    size_t n = 0;
    struct stat st;
    rp_keyprov_sealed s;
    rp_keyprov *p = NULL, *bad = NULL;
    rp_keyring_opts o = pass_opts("correct horse battery staple");
    rp_keyring_opts wrong = pass_opts("correct horse battery stapler");
    rp_keyring_opts none = pass_opts("");

    assert_int_equal(rp_keyprov_open(&none, &p, err, sizeof(err)), RP_EINVAL);
    assert_int_equal(rp_keyprov_open(&o, &p, err, sizeof(err)), 0);
    assert_int_equal(rp_keyprov_new_ref(p, 3, ref, sizeof(ref)), 0);
    assert_string_equal(ref, "root-3.sealed");
    assert_int_equal(rp_keyprov_generate(p, 3, ref), 0);
    path_in(ref, path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    /* the documented format */
    read_all(path, file, sizeof(file), &n);
    assert_int_equal(n, RP_KEYPROV_SEALED_LEN);
    assert_memory_equal(file, "RPS1", 4);
    assert_int_equal(rp_keyprov_sealed_parse(file, n, &s), 0);
    assert_int_equal(s.gen, 3);
    assert_int_equal(s.t_cost, 3);
    assert_int_equal(s.m_kib, 65536);
    assert_int_equal(s.lanes, 1);
    assert_memory_equal(file + RP_KEYPROV_SEALED_HDR_LEN, "RPE1", 4);
    assert_int_equal(rp_keyprov_sealed_parse(file, n - 1, &s), RP_EPARSE);
    memcpy(orig, file, n);

    assert_int_equal(rp_keyprov_load(p, 3, ref), 0);
    roundtrip(p, 3);

    /* a wrong passphrase is a crypto failure, not a parse error */
    assert_int_equal(rp_keyprov_open(&wrong, &bad, err, sizeof(err)), 0);
    assert_int_equal(rp_keyprov_load(bad, 3, ref), RP_ECRYPTO);

    /* the header is authenticated: a changed cost parameter or salt does not open */
    file[11] = 2; /* t = 2 */
    write_all(path, file, n);
    rp_keyprov_unload(p, 3);
    assert_int_equal(rp_keyprov_load(p, 3, ref), RP_ECRYPTO);
    memcpy(file, orig, n);
    file[8 + 4 * 3] ^= 1; /* the first salt byte */
    write_all(path, file, n);
    assert_int_equal(rp_keyprov_load(p, 3, ref), RP_ECRYPTO);
    memcpy(file, orig, n);
    file[n - 1] ^= 1; /* the tag */
    write_all(path, file, n);
    assert_int_equal(rp_keyprov_load(p, 3, ref), RP_ECRYPTO);
    /* out-of-range parameters are refused before Argon2id runs */
    memcpy(file, orig, n);
    file[12] = 0x7f; /* m far above 1 GiB */
    write_all(path, file, n);
    assert_int_equal(rp_keyprov_load(p, 3, ref), RP_EPARSE);
    memcpy(file, orig, n);
    file[11] = 0; /* t = 0 */
    write_all(path, file, n);
    assert_int_equal(rp_keyprov_load(p, 3, ref), RP_EPARSE);
    write_all(path, orig, n);

    /* another generation's file moved into this one's place */
    path_in("root-4.sealed", path2, sizeof(path2));
    assert_int_equal(link(path, path2), 0);
    assert_int_equal(rp_keyprov_load(p, 4, "root-4.sealed"), RP_EPARSE);
    assert_int_equal(unlink(path2), 0);

    /* loose permissions */
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(rp_keyprov_load(p, 3, ref), RP_EPERM);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(rp_keyprov_load(p, 3, ref), 0);

    assert_int_equal(rp_keyprov_destroy(p, 3, ref), 0);
    assert_int_equal(stat(path, &st), -1);
    rp_keyprov_close(bad);
    rp_keyprov_close(p);
}

static void test_sealed_parse(void **state)
{
    unsigned char f[RP_KEYPROV_SEALED_LEN] = {0};
    unsigned char kek[32] = {0}, key[32];
    rp_keyprov_sealed s;

    memcpy(f, "RPS1", 4);
    f[7] = 1;  /* gen 1 */
    f[11] = 3; /* t */
    f[14] = 1; /* m = 256 KiB */
    f[19] = 1; /* p */
    memcpy(f + RP_KEYPROV_SEALED_HDR_LEN, "RPE1", 4);
    assert_int_equal(rp_keyprov_sealed_parse(f, sizeof(f), &s), 0);
    assert_int_equal(s.m_kib, 256);
    assert_int_equal(rp_keyprov_sealed_open(&s, kek, key), RP_ECRYPTO);
    f[7] = 0;
    assert_int_equal(rp_keyprov_sealed_parse(f, sizeof(f), &s), RP_EPARSE);
    f[7] = 1;
    f[19] = 17; /* p */
    assert_int_equal(rp_keyprov_sealed_parse(f, sizeof(f), &s), RP_EPARSE);
    f[19] = 1;
    f[14] = 0;
    f[15] = 7; /* m < 8 * p */
    assert_int_equal(rp_keyprov_sealed_parse(f, sizeof(f), &s), RP_EPARSE);
    assert_int_equal(rp_keyprov_sealed_parse(NULL, 0, &s), RP_EPARSE);
}

/* ---- PKCS#11 ---- */

static CK_FUNCTION_LIST_PTR hsm_funcs(void)
{
    void *dl = dlopen(SOFTHSM, RTLD_NOW | RTLD_LOCAL);
    CK_C_GetFunctionList get;
    CK_FUNCTION_LIST_PTR f = NULL;

    assert_non_null(dl);
    *(void **)&get = dlsym(dl, "C_GetFunctionList");
    assert_non_null(get);
    assert_int_equal(get(&f), CKR_OK);
    return f;
}

/* Opens our own logged-in session on token T (the provider must hold the module initialised). */
static CK_SESSION_HANDLE hsm_session(CK_FUNCTION_LIST_PTR f)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    CK_TOKEN_INFO ti;
    CK_SESSION_HANDLE s;
    CK_RV rv;

    assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    for (CK_ULONG i = 0; i < n; i++) {
        assert_int_equal(f->C_GetTokenInfo(slots[i], &ti), CKR_OK);
        if (ti.label[0] == 'T' && ti.label[1] == ' ') {
            assert_int_equal(
                f->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
                CKR_OK);
            rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4);
            assert_true(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN);
            return s;
        }
    }
    fail_msg("token T not found");
    return 0;
}

static CK_ULONG hsm_count(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, const char *label,
                          CK_OBJECT_HANDLE *first)
{
    CK_ATTRIBUTE t[] = {{CKA_LABEL, (void *)label, strlen(label)}};
    CK_OBJECT_HANDLE objs[8];
    CK_ULONG n = 0;

    assert_int_equal(f->C_FindObjectsInit(s, t, 1), CKR_OK);
    assert_int_equal(f->C_FindObjects(s, objs, 8, &n), CKR_OK);
    assert_int_equal(f->C_FindObjectsFinal(s), CKR_OK);
    if (first != NULL && n > 0)
        *first = objs[0];
    return n;
}

static void test_pkcs11(void **state)
{
    char ref[RP_KEYPROV_REF_MAX], err[256];
    rp_keyprov *p = NULL, *bad = NULL;
    rp_keyring_opts o = hsm_opts("1234"), wrong = hsm_opts("4321"), notoken = hsm_opts("1234");
    CK_FUNCTION_LIST_PTR f;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    CK_BBOOL sens = CK_FALSE, extr = CK_TRUE, tok = CK_FALSE;
    CK_ULONG vlen = 0;
    unsigned char value[64];

    if (!have_hsm) {
        print_message("SKIP: %s is not installed; the PKCS#11 provider is untested\n", SOFTHSM);
        skip();
    }
    assert_int_equal(rp_keyprov_open(&wrong, &bad, err, sizeof(err)), RP_ECRYPTO);
    assert_non_null(strstr(err, "wrong PIN"));
    assert_null(strstr(err, "4321"));
    notoken.pkcs11_token = "nope";
    assert_int_equal(rp_keyprov_open(&notoken, &bad, err, sizeof(err)), RP_ENOENT);
    o.pkcs11_module = "/nonexistent/module.so";
    assert_int_equal(rp_keyprov_open(&o, &bad, err, sizeof(err)), RP_ENOENT);
    o = hsm_opts("1234");

    assert_int_equal(rp_keyprov_open(&o, &p, err, sizeof(err)), 0);
    assert_int_equal(rp_keyprov_new_ref(p, 1, ref, sizeof(ref)), 0);
    assert_int_equal(strncmp(ref, "rampart-root-1#", 15), 0);
    assert_int_equal(strlen(ref), 15 + 32);
    assert_int_equal(rp_keyprov_load(p, 1, ref), RP_ENOENT);
    assert_int_equal(rp_keyprov_generate(p, 1, ref), 0);
    assert_int_equal(rp_keyprov_generate(p, 1, ref), RP_EEXIST);
    assert_int_equal(rp_keyprov_load(p, 1, ref), 0);
    roundtrip(p, 1);

    /* the key object: on the token, sensitive, never extractable, its value unreadable */
    f = hsm_funcs();
    s = hsm_session(f);
    assert_int_equal(hsm_count(f, s, "rampart-root-1", &obj), 1);
    {
        CK_ATTRIBUTE a[] = {{CKA_SENSITIVE, &sens, sizeof(sens)},
                            {CKA_EXTRACTABLE, &extr, sizeof(extr)},
                            {CKA_TOKEN, &tok, sizeof(tok)}};
        CK_ATTRIBUTE v[] = {{CKA_VALUE, value, sizeof(value)}};
        assert_int_equal(f->C_GetAttributeValue(s, obj, a, 3), CKR_OK);
        assert_int_equal(sens, CK_TRUE);
        assert_int_equal(extr, CK_FALSE);
        assert_int_equal(tok, CK_TRUE);
        assert_int_equal(f->C_GetAttributeValue(s, obj, v, 1), CKR_ATTRIBUTE_SENSITIVE);
        assert_int_equal(v[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        (void)vlen;
    }
    /* a second connection (as after a restart) finds and uses the same key */
    {
        unsigned char out[32];
        rp_buf w;
        rp_keyprov *p2 = NULL;
        rp_buf_init(&w, 128);
        assert_int_equal(rp_keyprov_wrap(p, 1, KEY, "x", 1, &w), 0);
        assert_int_equal(rp_keyprov_open(&o, &p2, err, sizeof(err)), 0);
        assert_int_equal(rp_keyprov_load(p2, 1, ref), 0);
        assert_int_equal(rp_keyprov_unwrap(p2, 1, w.data, w.len, "x", 1, out), 0);
        assert_memory_equal(out, KEY, 32);
        /* same label, other id: another install's key is not ours */
        {
            char other[RP_KEYPROV_REF_MAX];
            assert_int_equal(rp_keyprov_new_ref(p2, 1, other, sizeof(other)), 0);
            assert_int_equal(rp_keyprov_load(p2, 2, other), RP_ENOENT);
        }
        rp_keyprov_close(p2);
        rp_buf_free(&w);
    }
    assert_int_equal(rp_keyprov_destroy(p, 1, ref), 0);
    assert_int_equal(hsm_count(f, s, "rampart-root-1", NULL), 0);
    assert_int_equal(rp_keyprov_destroy(p, 1, ref), 0);
    assert_int_equal(f->C_CloseSession(s), CKR_OK);
    rp_keyprov_close(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_passphrase),
        cmocka_unit_test(test_sealed_parse),
        cmocka_unit_test(test_pkcs11),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
