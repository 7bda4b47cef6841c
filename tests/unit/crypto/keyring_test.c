/*
 * keyring_test.c - the key hierarchy against real files under $RP_TEST_TMP (and a SoftHSM2 token
 * the test creates): create/open, seal/open of objects and every way an object must fail to open,
 * the legacy keys/root.key upgrade (derived keys unchanged), root rotation and its crash
 * recovery, crypto-shredding with kek_drop, customer-managed keys through fake vault callbacks
 * that re-enter the keyring, and a concurrency smoke test of seal/open during rotations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "base/err.h"
#include "base/rand.h"
#include "crypto/aead.h"
#include "crypto/keyprov.h"
#include "crypto/keyring.h"
#include "crypto/rootkey.h"

#include <fcntl.h>
#include <p11-kit/pkcs11.h>
#include <dlfcn.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SOFTHSM "/usr/lib/softhsm/libsofthsm2.so"

static char base[512];
static char dir[600];
static int have_hsm;
static int seq;

static void path_in(const char *name, char *out, size_t cap)
{
    assert_true((size_t)snprintf(out, cap, "%s/%s", dir, name) < cap);
}

static int file_exists(const char *name)
{
    char p[700];
    struct stat st;

    path_in(name, p, sizeof(p));
    return lstat(p, &st) == 0;
}

static int hsm_setup(void)
{
    char conf[600], tokens[600];
    FILE *f;

    if (access(SOFTHSM, R_OK) != 0)
        return 0;
    assert_true((size_t)snprintf(conf, sizeof(conf), "%s/softhsm2.conf", base) < sizeof(conf));
    assert_true((size_t)snprintf(tokens, sizeof(tokens), "%s/tokens", base) < sizeof(tokens));
    rp_test_mkdir_p(tokens);
    f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens);
    fclose(f);
    assert_int_equal(setenv("SOFTHSM2_CONF", conf, 1), 0);
    assert_int_equal(system("softhsm2-util --init-token --free --label KR --pin 1234 "
                            "--so-pin 5678 >/dev/null"),
                     0);
    return 1;
}

static int group_setup(void **state)
{
    (void)state;
    rp_test_scratch("keyring", base, sizeof(base));
    have_hsm = hsm_setup();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    rp_test_rmtree(base);
    return 0;
}

/* Every test gets a fresh keys directory (not created: rp_keyring_create makes it). */
static int setup(void **state)
{
    (void)state;
    assert_true((size_t)snprintf(dir, sizeof(dir), "%s/keys%d", base, ++seq) < sizeof(dir));
    return 0;
}

static rp_keyring_opts fopts(void)
{
    rp_keyring_opts o = {0};
    o.keys_dir = dir;
    o.provider = RP_ROOT_FILE;
    return o;
}

static rp_keyring *make(const rp_keyring_opts *o)
{
    char err[256] = "";
    rp_keyring *kr = NULL;
    int rc = rp_keyring_create(o, err, sizeof(err));

    if (rc != 0)
        fail_msg("create: %s: %s", rp_strerror(rc), err);
    rc = rp_keyring_open(o, &kr, err, sizeof(err));
    if (rc != 0)
        fail_msg("open: %s: %s", rp_strerror(rc), err);
    return kr;
}

static rp_keyring *reopen(rp_keyring *kr, const rp_keyring_opts *o)
{
    char err[256] = "";
    int rc;

    rp_keyring_close(kr);
    kr = NULL;
    rc = rp_keyring_open(o, &kr, err, sizeof(err));
    if (rc != 0)
        fail_msg("reopen: %s: %s", rp_strerror(rc), err);
    return kr;
}

typedef struct sealed {
    rp_buf wdek, ct;
} sealed;

static void seal(rp_keyring *kr, const char *res, const char *obj, const char *text, sealed *s)
{
    const char *reason = NULL;

    rp_buf_init(&s->wdek, 256);
    rp_buf_init(&s->ct, 1 << 20);
    assert_int_equal(rp_keyring_seal(kr, res, obj, text, strlen(text), &s->wdek, &s->ct, &reason),
                     0);
    assert_int_equal(s->wdek.len, RP_KEYRING_WDEK_LEN);
    assert_int_equal(s->ct.len, strlen(text) + RP_AEAD_OVERHEAD);
}

static int open_obj(rp_keyring *kr, const char *res, const char *obj, const sealed *s,
                    const char *expect, const char **reason)
{
    rp_buf pt;
    int rc;

    rp_buf_init(&pt, 1 << 20);
    rc = rp_keyring_open_object(kr, res, obj, s->wdek.data, s->wdek.len, s->ct.data, s->ct.len, &pt,
                                reason);
    if (rc == 0 && expect != NULL) {
        assert_int_equal(pt.len, strlen(expect));
        assert_memory_equal(pt.data, expect, pt.len);
    }
    if (rc != 0)
        assert_int_equal(pt.len, 0);
    rp_buf_free_secret(&pt);
    return rc;
}

static void sealed_free(sealed *s)
{
    rp_buf_free(&s->wdek);
    rp_buf_free(&s->ct);
}

/* ---- tests ---- */

static void test_create_seal_open(void **state)
{
    char err[256], p[700];
    struct stat st;
    rp_keyring_opts o = fopts();
    rp_keyring *kr, *kr2 = NULL;
    rp_root_provider prov;
    rp_keyring_status status;
    const char *reason = NULL;
    sealed s;
    rp_buf w, c;

    assert_int_equal(rp_keyring_provider_of(dir, &prov), RP_ENOENT);
    assert_int_equal(rp_keyring_open(&o, &kr2, err, sizeof(err)), RP_ENOENT);
    kr = make(&o);
    assert_int_equal(rp_keyring_create(&o, err, sizeof(err)), RP_EEXIST);
    assert_int_equal(rp_keyring_provider_of(dir, &prov), 0);
    assert_int_equal(prov, RP_ROOT_FILE);
    assert_true(file_exists("root-1.key"));
    path_in("keystore.db", p, sizeof(p));
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_non_null(rp_keyring_system(kr));

    /* no KEK yet */
    rp_buf_init(&w, 256);
    rp_buf_init(&c, 256);
    assert_int_equal(rp_keyring_seal(kr, "/vaults/a", "s/1", "x", 1, &w, &c, &reason), RP_ENOENT);
    assert_int_equal(w.len, 0);
    assert_int_equal(c.len, 0);
    assert_int_equal(rp_keyring_kek_ensure(kr, "vaults/a"), RP_EINVAL);
    assert_int_equal(rp_keyring_kek_ensure(kr, "/vaults/a"), 0);
    assert_int_equal(rp_keyring_kek_ensure(kr, "/vaults/a"), 0);
    assert_int_equal(rp_keyring_kek_ensure(kr, "/vaults/b"), 0);

    seal(kr, "/vaults/a", "secrets/one/1", "hello, world", &s);
    assert_memory_equal(s.wdek.data, "RPK1\0\0\0\1RPE1", 12);
    assert_memory_equal(s.ct.data, "RPE1", 4);
    assert_int_equal(open_obj(kr, "/vaults/a", "secrets/one/1", &s, "hello, world", &reason), 0);
    /* another object, another resource, a resource that has a KEK but another one */
    assert_int_equal(open_obj(kr, "/vaults/a", "secrets/one/2", &s, NULL, &reason), RP_ECRYPTO);
    assert_int_equal(open_obj(kr, "/vaults/b", "secrets/one/1", &s, NULL, &reason), RP_ECRYPTO);
    assert_int_equal(open_obj(kr, "/vaults/c", "secrets/one/1", &s, NULL, &reason), RP_ENOENT);
    /* every byte of both parts altered */
    for (size_t i = 0; i < s.wdek.len; i++) {
        int rc;
        s.wdek.data[i] ^= 0x20;
        rc = open_obj(kr, "/vaults/a", "secrets/one/1", &s, NULL, &reason);
        if (i < 4 || (i >= 8 && i < 12))
            assert_int_equal(rc, RP_EPARSE);
        else if (i < 8)
            assert_true(rc == RP_ENOENT); /* another KEK version */
        else
            assert_int_equal(rc, RP_ECRYPTO);
        s.wdek.data[i] ^= 0x20;
    }
    for (size_t i = 4; i < s.ct.len; i++) {
        s.ct.data[i] ^= 0x01;
        assert_int_equal(open_obj(kr, "/vaults/a", "secrets/one/1", &s, NULL, &reason), RP_ECRYPTO);
        s.ct.data[i] ^= 0x01;
    }
    {
        sealed t = s;
        t.wdek.len--;
        assert_int_equal(open_obj(kr, "/vaults/a", "secrets/one/1", &t, NULL, &reason), RP_EPARSE);
        t = s;
        t.ct.len = 10;
        assert_int_equal(open_obj(kr, "/vaults/a", "secrets/one/1", &t, NULL, &reason), RP_EPARSE);
    }
    /* the DEK envelope cannot be swapped in as the object and vice versa (domain separation) */
    {
        unsigned char kek[32] = {1}, dek[32] = {2}, out[32];
        rp_buf a, b;
        rp_buf_init(&a, 256);
        rp_buf_init(&b, 256);
        assert_int_equal(rp_keyring_wdek_seal(kek, 1, "/r", "o", dek, &a), 0);
        assert_int_equal(rp_keyring_wdek_open(kek, "/r", "o", a.data, a.len, out), 0);
        assert_memory_equal(out, dek, 32);
        assert_int_equal(rp_keyring_obj_open(kek, "/r", "o", a.data + 8, a.len - 8, &b),
                         RP_ECRYPTO);
        /* resource/object boundaries are part of the AAD */
        assert_int_equal(rp_keyring_wdek_open(kek, "/r", "o", a.data, a.len, out), 0);
        rp_buf_reset(&a);
        assert_int_equal(rp_keyring_wdek_seal(kek, 1, "/ra", "b", dek, &a), 0);
        assert_int_equal(rp_keyring_wdek_open(kek, "/r", "ab", a.data, a.len, out), RP_ECRYPTO);
        rp_buf_free(&a);
        rp_buf_free(&b);
    }

    /* after a reopen (KEKs unwrapped lazily) */
    kr = reopen(kr, &o);
    assert_int_equal(open_obj(kr, "/vaults/a", "secrets/one/1", &s, "hello, world", &reason), 0);
    rp_keyring_get_status(kr, &status);
    assert_int_equal(status.provider, RP_ROOT_FILE);
    assert_int_equal(status.generation, 1);
    assert_int_equal(status.keks, 2);
    assert_int_equal(status.cmk_keks, 0);

    /* another provider than the install's */
    {
        rp_keyring_opts po = o;
        po.provider = RP_ROOT_PASSPHRASE;
        po.passphrase = "x";
        po.passphrase_len = 1;
        assert_int_equal(rp_keyring_open(&po, &kr2, err, sizeof(err)), RP_EUNSUPPORTED);
    }
    /* empty plaintext */
    {
        sealed e;
        seal(kr, "/vaults/b", "", "", &e);
        assert_int_equal(open_obj(kr, "/vaults/b", "", &e, "", &reason), 0);
        sealed_free(&e);
    }
    rp_buf_free(&w);
    rp_buf_free(&c);
    sealed_free(&s);
    rp_keyring_close(kr);
    rp_keyring_close(NULL);
}

static void test_permissions(void **state)
{
    char err[256], p[700];
    rp_keyring_opts o = fopts();
    rp_keyring *kr = make(&o), *kr2 = NULL;

    rp_keyring_close(kr);
    path_in("root-1.key", p, sizeof(p));
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(rp_keyring_open(&o, &kr2, err, sizeof(err)), RP_EPERM);
    assert_non_null(strstr(err, "0600"));
    assert_int_equal(chmod(p, 0600), 0);
    path_in("keystore.db", p, sizeof(p));
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(rp_keyring_open(&o, &kr2, err, sizeof(err)), RP_EPERM);
    assert_int_equal(chmod(p, 0600), 0);
    assert_int_equal(rp_keyring_open(&o, &kr2, err, sizeof(err)), 0);
    rp_keyring_close(kr2);
}

static void write_key(const char *path, const unsigned char *k)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, k, 32), 32);
    close(fd);
}

static void test_legacy_upgrade(void **state)
{
    unsigned char key[32], before[32], after[32], again[32];
    char p[700], err[256];
    rp_keyring_opts o = fopts();
    rp_rootkey *rk = NULL;
    rp_keyring *kr = NULL;
    rp_root_provider prov;
    uint32_t gen = 0;

    rp_test_mkdir_p(dir);
    assert_int_equal(rp_random_bytes(key, sizeof(key)), 0);
    path_in("root.key", p, sizeof(p));
    write_key(p, key);
    assert_int_equal(rp_rootkey_file_load(p, &rk), 0);
    assert_int_equal(rp_rootkey_derive(rk, "rampart/v1/keyfile", before, 32), 0);
    rp_rootkey_free(rk);

    assert_int_equal(rp_keyring_provider_of(dir, &prov), 0);
    assert_int_equal(prov, RP_ROOT_FILE);
    assert_int_equal(rp_keyring_create(&o, err, sizeof(err)), RP_EEXIST);
    assert_int_equal(rp_keyring_open(&o, &kr, err, sizeof(err)), 0);
    assert_true(file_exists("keystore.db"));
    assert_int_equal(rp_rootkey_derive(rp_keyring_system(kr), "rampart/v1/keyfile", after, 32), 0);
    assert_memory_equal(before, after, 32);

    /* reopened from the store, and after the root key itself rotated away */
    kr = reopen(kr, &o);
    assert_int_equal(rp_rootkey_derive(rp_keyring_system(kr), "rampart/v1/keyfile", again, 32), 0);
    assert_memory_equal(before, again, 32);
    assert_int_equal(rp_keyring_rotate_root(kr, &gen, err, sizeof(err)), 0);
    assert_int_equal(gen, 2);
    assert_false(file_exists("root.key"));
    assert_true(file_exists("root-2.key"));
    kr = reopen(kr, &o);
    assert_int_equal(rp_rootkey_derive(rp_keyring_system(kr), "rampart/v1/keyfile", again, 32), 0);
    assert_memory_equal(before, again, 32);
    rp_keyring_close(kr);
}

static void test_legacy_loose_perms(void **state)
{
    unsigned char key[32] = {7};
    char p[700], err[256];
    rp_keyring_opts o = fopts();
    rp_keyring *kr = NULL;

    rp_test_mkdir_p(dir);
    path_in("root.key", p, sizeof(p));
    write_key(p, key);
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(rp_keyring_open(&o, &kr, err, sizeof(err)), RP_EPERM);
    assert_false(file_exists("keystore.db"));
    assert_false(file_exists("keystore.db.new"));
}

#define NRES 5

static void test_rotate(void **state)
{
    char res[NRES][32], err[256];
    unsigned char d1[32], d2[32];
    rp_keyring_opts o = fopts();
    rp_keyring *kr = make(&o);
    sealed s[NRES];
    uint32_t gen = 0;
    const char *reason;
    rp_keyring_status st;

    assert_int_equal(rp_rootkey_derive(rp_keyring_system(kr), "rampart/v1/test", d1, 32), 0);
    for (int i = 0; i < NRES; i++) {
        snprintf(res[i], sizeof(res[i]), "/vaults/v%d", i);
        assert_int_equal(rp_keyring_kek_ensure(kr, res[i]), 0);
        seal(kr, res[i], "obj", res[i], &s[i]);
    }
    /* resources 0 and 1 not yet unwrapped in the reopened keyring: rotation uses the store */
    kr = reopen(kr, &o);
    assert_int_equal(open_obj(kr, res[2], "obj", &s[2], res[2], &reason), 0);
    assert_int_equal(rp_keyring_rotate_root(kr, &gen, err, sizeof(err)), 0);
    assert_int_equal(gen, 2);
    assert_false(file_exists("root-1.key"));
    assert_true(file_exists("root-2.key"));
    assert_int_equal(rp_keyring_rotate_root(kr, &gen, err, sizeof(err)), 0);
    assert_int_equal(gen, 3);
    assert_false(file_exists("root-2.key"));
    for (int i = 0; i < NRES; i++)
        assert_int_equal(open_obj(kr, res[i], "obj", &s[i], res[i], &reason), 0);
    assert_int_equal(rp_rootkey_derive(rp_keyring_system(kr), "rampart/v1/test", d2, 32), 0);
    assert_memory_equal(d1, d2, 32);
    kr = reopen(kr, &o);
    rp_keyring_get_status(kr, &st);
    assert_int_equal(st.generation, 3);
    assert_int_equal(st.keks, NRES);
    for (int i = 0; i < NRES; i++)
        assert_int_equal(open_obj(kr, res[i], "obj", &s[i], res[i], &reason), 0);
    assert_int_equal(rp_rootkey_derive(rp_keyring_system(kr), "rampart/v1/test", d2, 32), 0);
    assert_memory_equal(d1, d2, 32);
    /* new KEKs after a rotation are wrapped by the new generation */
    assert_int_equal(rp_keyring_kek_ensure(kr, "/new"), 0);
    kr = reopen(kr, &o);
    {
        sealed n;
        seal(kr, "/new", "o", "fresh", &n);
        assert_int_equal(open_obj(kr, "/new", "o", &n, "fresh", &reason), 0);
        sealed_free(&n);
    }
    for (int i = 0; i < NRES; i++)
        sealed_free(&s[i]);
    rp_keyring_close(kr);
}

static void sql(const char *stmt)
{
    char p[700];
    sqlite3 *db = NULL;

    path_in("keystore.db", p, sizeof(p));
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    if (sqlite3_exec(db, stmt, NULL, NULL, NULL) != SQLITE_OK)
        fail_msg("%s: %s", stmt, sqlite3_errmsg(db));
    sqlite3_close(db);
}

static void test_crash_recovery(void **state)
{
    char p[700], err[256];
    rp_keyring_opts o = fopts();
    rp_keyring *kr = make(&o);
    const char *reason;
    uint32_t gen = 0;
    rp_keyring_status st;
    sealed s;

    assert_int_equal(rp_keyring_kek_ensure(kr, "/r"), 0);
    seal(kr, "/r", "o", "survives", &s);
    rp_keyring_close(kr);

    /* a crash after the 'next' generation was recorded and created, before the flip */
    sql("INSERT INTO root(gen, provider, ref, state, created) VALUES (2, 1, 'root-2.key', 'next', "
        "0)");
    path_in("root-2.key", p, sizeof(p));
    assert_int_equal(rp_rootkey_file_create(p), 0);
    assert_int_equal(rp_keyring_open(&o, &kr, err, sizeof(err)), 0);
    assert_false(file_exists("root-2.key"));
    assert_true(file_exists("root-1.key"));
    rp_keyring_get_status(kr, &st);
    assert_int_equal(st.generation, 1);
    assert_int_equal(open_obj(kr, "/r", "o", &s, "survives", &reason), 0);
    /* ... and before the file was even created */
    rp_keyring_close(kr);
    sql("INSERT INTO root(gen, provider, ref, state, created) VALUES (2, 1, 'root-2.key', 'next', "
        "0)");
    assert_int_equal(rp_keyring_open(&o, &kr, err, sizeof(err)), 0);
    /* the rotation after recovery reuses generation 2 cleanly */
    assert_int_equal(rp_keyring_rotate_root(kr, &gen, err, sizeof(err)), 0);
    assert_int_equal(gen, 2);
    rp_keyring_close(kr);

    /* a crash after the flip, before the old generation was destroyed */
    sql("INSERT INTO root(gen, provider, ref, state, created) VALUES (1, 1, 'root-1.key', "
        "'retired', 0)");
    path_in("root-1.key", p, sizeof(p));
    assert_int_equal(rp_rootkey_file_create(p), 0);
    assert_int_equal(rp_keyring_open(&o, &kr, err, sizeof(err)), 0);
    assert_false(file_exists("root-1.key"));
    assert_true(file_exists("root-2.key"));
    assert_int_equal(open_obj(kr, "/r", "o", &s, "survives", &reason), 0);
    kr = reopen(kr, &o);
    assert_int_equal(open_obj(kr, "/r", "o", &s, "survives", &reason), 0);
    sealed_free(&s);
    rp_keyring_close(kr);
}

static void test_kek_drop(void **state)
{
    rp_keyring_opts o = fopts();
    rp_keyring *kr = make(&o);
    const char *reason;
    sealed s, t;

    assert_int_equal(rp_keyring_kek_ensure(kr, "/vaults/gone"), 0);
    assert_int_equal(rp_keyring_kek_ensure(kr, "/vaults/kept"), 0);
    seal(kr, "/vaults/gone", "o", "shred me", &s);
    seal(kr, "/vaults/kept", "o", "keep me", &t);
    assert_int_equal(open_obj(kr, "/vaults/gone", "o", &s, "shred me", &reason), 0);
    assert_int_equal(rp_keyring_kek_drop(kr, "/vaults/gone"), 0);
    assert_int_equal(rp_keyring_kek_drop(kr, "/vaults/gone"), RP_ENOENT);
    assert_int_equal(rp_keyring_kek_drop(kr, RP_KEYRING_SYSTEM), RP_EINVAL);
    assert_int_equal(open_obj(kr, "/vaults/gone", "o", &s, NULL, &reason), RP_ENOENT);
    /* a new KEK for the same name does not bring the old data back */
    assert_int_equal(rp_keyring_kek_ensure(kr, "/vaults/gone"), 0);
    assert_int_equal(open_obj(kr, "/vaults/gone", "o", &s, NULL, &reason), RP_ECRYPTO);
    kr = reopen(kr, &o);
    assert_int_equal(open_obj(kr, "/vaults/gone", "o", &s, NULL, &reason), RP_ECRYPTO);
    assert_int_equal(open_obj(kr, "/vaults/kept", "o", &t, "keep me", &reason), 0);
    sealed_free(&s);
    sealed_free(&t);
    rp_keyring_close(kr);
}

/* ---- customer-managed keys: a fake vault ---- */

#define VAULT "/vaults/kv"

typedef struct fake_vault {
    rp_keyring *kr;
    int latest;     /* versions 1..latest exist */
    int enabled[8]; /* per version */
    sealed mat[8];  /* each version's AES key, sealed through the keyring under VAULT */
    int wraps, unwraps;
    int race; /* the next unwrap sees the key change while it runs */
} fake_vault;

static fake_vault fv;

/* "kv/k1" (latest) or "kv/k1/v<N>" -> N, or 0 */
static int fv_version(const char *kid)
{
    if (strcmp(kid, "kv/k1") == 0)
        return fv.latest;
    if (strncmp(kid, "kv/k1/v", 7) == 0 && kid[7] >= '1' && kid[7] <= '7' && kid[8] == '\0' &&
        kid[7] - '0' <= fv.latest)
        return kid[7] - '0';
    return 0;
}

/* The version's key material, read back through the keyring (re-entering it). */
static int fv_material(int v, unsigned char key[32])
{
    char obj[32];
    rp_buf pt;
    const char *reason;
    int rc;

    snprintf(obj, sizeof(obj), "keys/k1/v%d", v);
    rp_buf_init(&pt, 64);
    rc = rp_keyring_open_object(fv.kr, VAULT, obj, fv.mat[v].wdek.data, fv.mat[v].wdek.len,
                                fv.mat[v].ct.data, fv.mat[v].ct.len, &pt, &reason);
    if (rc == 0 && pt.len == 32)
        memcpy(key, pt.data, 32);
    rp_buf_free_secret(&pt);
    return rc == 0 ? 0 : RP_EIO;
}

static int fv_wrap(void *arg, const char *kid, const unsigned char kek[RP_KEYRING_KEY_LEN],
                   rp_buf *out, char *used_kid, size_t cap, const char **reason)
{
    unsigned char key[32];
    int v = fv_version(kid), rc;

    (void)arg;
    fv.wraps++;
    if (v == 0) {
        *reason = "key not found";
        return RP_EPERM;
    }
    if (!fv.enabled[v]) {
        *reason = "key disabled";
        return RP_EPERM;
    }
    snprintf(used_kid, cap, "kv/k1/v%d", v);
    rc = fv_material(v, key);
    if (rc == 0)
        rc = rp_aead_seal(key, used_kid, strlen(used_kid), kek, 32, out);
    memset(key, 0, sizeof(key));
    return rc;
}

static int fv_unwrap(void *arg, const char *used_kid, const void *w, size_t n,
                     unsigned char kek[RP_KEYRING_KEY_LEN], const char **reason)
{
    unsigned char key[32];
    int v = fv_version(used_kid), rc;
    rp_buf pt;

    (void)arg;
    fv.unwraps++;
    if (fv.race) {
        fv.race = 0;
        rp_keyring_cmk_changed(fv.kr, "kv/k1");
    }
    if (v == 0 || strcmp(used_kid, "kv/k1") == 0) {
        *reason = "key not found";
        return RP_EPERM;
    }
    if (!fv.enabled[v]) {
        *reason = "key disabled";
        return RP_EPERM;
    }
    rc = fv_material(v, key);
    rp_buf_init(&pt, 64);
    if (rc == 0)
        rc = rp_aead_open(key, used_kid, strlen(used_kid), w, n, &pt);
    if (rc == 0)
        memcpy(kek, pt.data, 32);
    rp_buf_free_secret(&pt);
    memset(key, 0, sizeof(key));
    return rc;
}

static void fv_add_version(void)
{
    unsigned char key[32];
    char obj[32];
    const char *reason;
    int v = ++fv.latest;

    assert_int_equal(rp_random_bytes(key, 32), 0);
    snprintf(obj, sizeof(obj), "keys/k1/v%d", v);
    rp_buf_init(&fv.mat[v].wdek, 256);
    rp_buf_init(&fv.mat[v].ct, 256);
    assert_int_equal(
        rp_keyring_seal(fv.kr, VAULT, obj, key, 32, &fv.mat[v].wdek, &fv.mat[v].ct, &reason), 0);
    fv.enabled[v] = 1;
}

static void test_cmk(void **state)
{
    char kid[RP_KEYRING_KID_MAX + 1], err[256];
    rp_keyring_opts o = fopts();
    rp_keyring_cmk_ops ops = {fv_wrap, fv_unwrap, NULL};
    const char *reason = NULL;
    rp_keyring_status st;
    uint32_t gen;
    sealed s, s2;
    rp_buf w, c;

    memset(&fv, 0, sizeof(fv));
    fv.kr = make(&o);
    rp_buf_init(&w, 256);
    rp_buf_init(&c, 256);
    assert_int_equal(rp_keyring_kek_ensure(fv.kr, VAULT), 0);
    assert_int_equal(rp_keyring_kek_ensure(fv.kr, "/storage/acct"), 0);
    fv_add_version();
    seal(fv.kr, "/storage/acct", "c/blob", "customer data", &s);

    /* without callbacks a CMK cannot be configured */
    assert_int_equal(rp_keyring_set_cmk(fv.kr, "/storage/acct", "kv/k1", &reason), RP_EPERM);
    assert_non_null(reason);
    rp_keyring_set_cmk_ops(fv.kr, &ops);
    assert_int_equal(rp_keyring_set_cmk(fv.kr, "/storage/nope", "kv/k1", &reason), RP_ENOENT);
    reason = NULL;
    assert_int_equal(rp_keyring_set_cmk(fv.kr, "/storage/acct", "kv/k9", &reason), RP_EPERM);
    assert_string_equal(reason, "key not found");
    assert_int_equal(rp_keyring_set_cmk(fv.kr, "/storage/acct", "kv/k1", &reason), 0);
    assert_int_equal(rp_keyring_cmk_of(fv.kr, "/storage/acct", kid, sizeof(kid)), 0);
    assert_string_equal(kid, "kv/k1");
    assert_int_equal(rp_keyring_cmk_of(fv.kr, VAULT, kid, sizeof(kid)), 0);
    assert_string_equal(kid, "");
    assert_int_equal(rp_keyring_cmk_of(fv.kr, "/none", kid, sizeof(kid)), RP_ENOENT);
    rp_keyring_get_status(fv.kr, &st);
    assert_int_equal(st.keks, 2);
    assert_int_equal(st.cmk_keks, 1);
    /* same KEK: the data sealed before is still readable, from memory */
    assert_int_equal(open_obj(fv.kr, "/storage/acct", "c/blob", &s, "customer data", &reason), 0);

    /* disable: unreadable at once, with the callback's reason */
    fv.unwraps = 0;
    fv.enabled[1] = 0;
    rp_keyring_cmk_changed(fv.kr, "kv/k1");
    reason = NULL;
    assert_int_equal(open_obj(fv.kr, "/storage/acct", "c/blob", &s, NULL, &reason), RP_EPERM);
    assert_string_equal(reason, "key disabled");
    reason = NULL;
    assert_int_equal(rp_keyring_seal(fv.kr, "/storage/acct", "c/x", "x", 1, &w, &c, &reason),
                     RP_EPERM);
    assert_string_equal(reason, "key disabled");
    assert_int_equal(w.len, 0);
    assert_int_equal(c.len, 0);
    assert_true(fv.unwraps >= 2);
    /* a resource the key does not wrap is not affected */
    {
        sealed v;
        seal(fv.kr, VAULT, "other", "vault data", &v);
        assert_int_equal(open_obj(fv.kr, VAULT, "other", &v, "vault data", &reason), 0);
        sealed_free(&v);
    }
    /* an unrelated key's change does not evict */
    fv.enabled[1] = 1;
    rp_keyring_cmk_changed(fv.kr, "kv/k10");
    rp_keyring_cmk_changed(fv.kr, "kv/k");
    /* re-enable: readable again */
    rp_keyring_cmk_changed(fv.kr, "kv/k1");
    fv.unwraps = 0;
    assert_int_equal(open_obj(fv.kr, "/storage/acct", "c/blob", &s, "customer data", &reason), 0);
    assert_int_equal(open_obj(fv.kr, "/storage/acct", "c/blob", &s, "customer data", &reason), 0);
    assert_int_equal(fv.unwraps, 1); /* then cached */
    /* a change racing an unwrap: the result serves that call but is not kept */
    rp_keyring_cmk_changed(fv.kr, "kv/k1");
    fv.race = 1;
    fv.unwraps = 0;
    assert_int_equal(open_obj(fv.kr, "/storage/acct", "c/blob", &s, "customer data", &reason), 0);
    assert_int_equal(open_obj(fv.kr, "/storage/acct", "c/blob", &s, "customer data", &reason), 0);
    assert_int_equal(fv.unwraps, 2);

    /* the key rotates: the next unwrap re-wraps with v2, after which v1 is not needed */
    fv_add_version();
    rp_keyring_cmk_changed(fv.kr, "kv/k1");
    assert_int_equal(open_obj(fv.kr, "/storage/acct", "c/blob", &s, "customer data", &reason), 0);
    fv.enabled[1] = 0;
    rp_keyring_cmk_changed(fv.kr, "kv/k1");
    assert_int_equal(open_obj(fv.kr, "/storage/acct", "c/blob", &s, "customer data", &reason), 0);

    /* a root rotation does not touch CMK-wrapped KEKs; reopen needs the callbacks again */
    assert_int_equal(rp_keyring_rotate_root(fv.kr, &gen, err, sizeof(err)), 0);
    fv.kr = reopen(fv.kr, &o);
    reason = NULL;
    assert_int_equal(open_obj(fv.kr, "/storage/acct", "c/blob", &s, NULL, &reason), RP_EPERM);
    assert_non_null(reason);
    rp_keyring_set_cmk_ops(fv.kr, &ops);
    assert_int_equal(open_obj(fv.kr, "/storage/acct", "c/blob", &s, "customer data", &reason), 0);
    seal(fv.kr, "/storage/acct", "c/two", "more", &s2);

    /* a versioned configuration stays on its version */
    assert_int_equal(rp_keyring_set_cmk(fv.kr, "/storage/acct", "kv/k1/v2", &reason), 0);
    assert_int_equal(rp_keyring_cmk_of(fv.kr, "/storage/acct", kid, sizeof(kid)), 0);
    assert_string_equal(kid, "kv/k1/v2");
    fv.enabled[2] = 0;
    rp_keyring_cmk_changed(fv.kr, "kv/k1");
    assert_int_equal(open_obj(fv.kr, "/storage/acct", "c/two", &s2, NULL, &reason), RP_EPERM);
    /* while the key is disabled it cannot be replaced either (the KEK is needed) */
    assert_int_equal(rp_keyring_set_cmk(fv.kr, "/storage/acct", NULL, &reason), RP_EPERM);
    fv.enabled[2] = 1;
    rp_keyring_cmk_changed(fv.kr, "kv/k1");

    /* back to the root key: the customer key no longer matters */
    assert_int_equal(rp_keyring_set_cmk(fv.kr, "/storage/acct", NULL, &reason), 0);
    assert_int_equal(rp_keyring_cmk_of(fv.kr, "/storage/acct", kid, sizeof(kid)), 0);
    assert_string_equal(kid, "");
    fv.enabled[2] = 0;
    rp_keyring_cmk_changed(fv.kr, "kv/k1");
    fv.kr = reopen(fv.kr, &o);
    assert_int_equal(open_obj(fv.kr, "/storage/acct", "c/blob", &s, "customer data", &reason), 0);
    assert_int_equal(open_obj(fv.kr, "/storage/acct", "c/two", &s2, "more", &reason), 0);
    rp_keyring_get_status(fv.kr, &st);
    assert_int_equal(st.cmk_keks, 0);

    for (int v = 1; v <= fv.latest; v++)
        sealed_free(&fv.mat[v]);
    sealed_free(&s);
    sealed_free(&s2);
    rp_buf_free(&w);
    rp_buf_free(&c);
    rp_keyring_close(fv.kr);
}

/* ---- concurrency ---- */

typedef struct worker {
    rp_keyring *kr;
    int id, errors, done;
} worker;

static void *work(void *arg)
{
    worker *wk = arg;
    char res[32], obj[32], text[64];
    const char *reason;

    for (int i = 0; i < 300; i++) {
        sealed s;
        rp_buf pt;
        snprintf(res, sizeof(res), "/c/%d", (wk->id + i) % 4);
        snprintf(obj, sizeof(obj), "o%d", i);
        snprintf(text, sizeof(text), "worker %d item %d", wk->id, i);
        rp_buf_init(&s.wdek, 128);
        rp_buf_init(&s.ct, 256);
        rp_buf_init(&pt, 256);
        if (rp_keyring_seal(wk->kr, res, obj, text, strlen(text), &s.wdek, &s.ct, &reason) != 0 ||
            rp_keyring_open_object(wk->kr, res, obj, s.wdek.data, s.wdek.len, s.ct.data, s.ct.len,
                                   &pt, &reason) != 0 ||
            pt.len != strlen(text) || memcmp(pt.data, text, pt.len) != 0)
            wk->errors++;
        rp_buf_free_secret(&pt);
        sealed_free(&s);
    }
    wk->done = 1;
    return NULL;
}

static void test_concurrency(void **state)
{
    char err[256];
    rp_keyring_opts o = fopts();
    rp_keyring *kr = make(&o);
    pthread_t th[4];
    worker wk[4];
    uint32_t gen = 0;

    for (int i = 0; i < 4; i++) {
        char res[32];
        snprintf(res, sizeof(res), "/c/%d", i);
        assert_int_equal(rp_keyring_kek_ensure(kr, res), 0);
    }
    /* start from a reopened keyring so the workers race the lazy unwraps too */
    kr = reopen(kr, &o);
    for (int i = 0; i < 4; i++) {
        wk[i] = (worker){kr, i, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, work, &wk[i]), 0);
    }
    for (int r = 0; r < 3; r++) {
        assert_int_equal(rp_keyring_rotate_root(kr, &gen, err, sizeof(err)), 0);
        rp_keyring_cmk_changed(kr, "nothing");
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(wk[i].errors, 0);
    }
    assert_int_equal(gen, 4);
    rp_keyring_close(kr);
}

/* ---- other providers ---- */

static void test_passphrase(void **state)
{
    char err[256] = "";
    rp_keyring_opts o = fopts(), bad;
    rp_keyring *kr, *kr2 = NULL;
    rp_root_provider prov;
    const char *reason;
    uint32_t gen;
    sealed s;

    o.provider = RP_ROOT_PASSPHRASE;
    o.passphrase = "open sesame";
    o.passphrase_len = strlen(o.passphrase);
    bad = o;
    bad.passphrase = "open sesam";
    bad.passphrase_len = strlen(bad.passphrase);
    kr = make(&o);
    assert_true(file_exists("root-1.sealed"));
    assert_int_equal(rp_keyring_provider_of(dir, &prov), 0);
    assert_int_equal(prov, RP_ROOT_PASSPHRASE);
    assert_int_equal(rp_keyring_kek_ensure(kr, "/p"), 0);
    seal(kr, "/p", "o", "sealed by a passphrase", &s);
    rp_keyring_close(kr);
    assert_int_equal(rp_keyring_open(&bad, &kr2, err, sizeof(err)), RP_ECRYPTO);
    assert_non_null(strstr(err, "passphrase"));
    assert_null(strstr(err, "open sesam"));
    kr = NULL;
    kr = reopen(kr, &o);
    assert_int_equal(open_obj(kr, "/p", "o", &s, "sealed by a passphrase", &reason), 0);
    assert_int_equal(rp_keyring_rotate_root(kr, &gen, err, sizeof(err)), 0);
    assert_false(file_exists("root-1.sealed"));
    assert_true(file_exists("root-2.sealed"));
    kr = reopen(kr, &o);
    assert_int_equal(open_obj(kr, "/p", "o", &s, "sealed by a passphrase", &reason), 0);
    rp_keyring_close(kr);
    assert_int_equal(rp_keyring_open(&bad, &kr2, err, sizeof(err)), RP_ECRYPTO);
    sealed_free(&s);
}

static CK_ULONG hsm_objects(const char *label)
{
    void *dl = dlopen(SOFTHSM, RTLD_NOW | RTLD_LOCAL);
    CK_C_GetFunctionList get;
    CK_FUNCTION_LIST_PTR f = NULL;
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16, found = 0;
    CK_TOKEN_INFO ti;
    CK_SESSION_HANDLE s = 0;
    CK_OBJECT_HANDLE objs[8];
    CK_ATTRIBUTE t[] = {{CKA_LABEL, (void *)label, strlen(label)}};
    CK_RV rv;

    assert_non_null(dl);
    *(void **)&get = dlsym(dl, "C_GetFunctionList");
    assert_int_equal(get(&f), CKR_OK);
    rv = f->C_Initialize(NULL);
    assert_true(rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED);
    assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    for (CK_ULONG i = 0; i < n; i++) {
        assert_int_equal(f->C_GetTokenInfo(slots[i], &ti), CKR_OK);
        if (memcmp(ti.label, "KR ", 3) == 0)
            assert_int_equal(
                f->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
                CKR_OK);
    }
    rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4);
    assert_true(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN);
    assert_int_equal(f->C_FindObjectsInit(s, t, 1), CKR_OK);
    assert_int_equal(f->C_FindObjects(s, objs, 8, &found), CKR_OK);
    assert_int_equal(f->C_FindObjectsFinal(s), CKR_OK);
    assert_int_equal(f->C_CloseSession(s), CKR_OK);
    if (rv == CKR_OK)
        (void)f->C_Finalize(NULL);
    return found;
}

static void test_pkcs11(void **state)
{
    char err[256] = "";
    rp_keyring_opts o = fopts(), bad;
    rp_keyring *kr, *kr2 = NULL;
    const char *reason;
    uint32_t gen = 0;
    unsigned char d1[32], d2[32];
    sealed s;

    if (!have_hsm) {
        print_message("SKIP: %s is not installed; the PKCS#11 provider is untested\n", SOFTHSM);
        skip();
    }
    o.provider = RP_ROOT_PKCS11;
    o.pkcs11_module = SOFTHSM;
    o.pkcs11_token = "KR";
    o.pkcs11_pin = "1234";
    bad = o;
    bad.pkcs11_pin = "9999";
    kr = make(&o);
    assert_false(file_exists("root-1.key"));
    assert_int_equal(rp_rootkey_derive(rp_keyring_system(kr), "rampart/v1/t", d1, 32), 0);
    assert_int_equal(rp_keyring_kek_ensure(kr, "/h"), 0);
    seal(kr, "/h", "o", "in the HSM", &s);
    rp_keyring_close(kr);
    assert_int_equal(hsm_objects("rampart-root-1"), 1);
    assert_int_equal(rp_keyring_open(&bad, &kr2, err, sizeof(err)), RP_ECRYPTO);
    kr = NULL;
    kr = reopen(kr, &o);
    assert_int_equal(open_obj(kr, "/h", "o", &s, "in the HSM", &reason), 0);
    assert_int_equal(rp_keyring_rotate_root(kr, &gen, err, sizeof(err)), 0);
    assert_int_equal(gen, 2);
    assert_int_equal(open_obj(kr, "/h", "o", &s, "in the HSM", &reason), 0);
    kr = reopen(kr, &o);
    assert_int_equal(open_obj(kr, "/h", "o", &s, "in the HSM", &reason), 0);
    assert_int_equal(rp_rootkey_derive(rp_keyring_system(kr), "rampart/v1/t", d2, 32), 0);
    assert_memory_equal(d1, d2, 32);
    rp_keyring_close(kr);
    assert_int_equal(hsm_objects("rampart-root-1"), 0);
    assert_int_equal(hsm_objects("rampart-root-2"), 1);
    sealed_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_create_seal_open, setup),
        cmocka_unit_test_setup(test_permissions, setup),
        cmocka_unit_test_setup(test_legacy_upgrade, setup),
        cmocka_unit_test_setup(test_legacy_loose_perms, setup),
        cmocka_unit_test_setup(test_rotate, setup),
        cmocka_unit_test_setup(test_crash_recovery, setup),
        cmocka_unit_test_setup(test_kek_drop, setup),
        cmocka_unit_test_setup(test_cmk, setup),
        cmocka_unit_test_setup(test_concurrency, setup),
        cmocka_unit_test_setup(test_passphrase, setup),
        cmocka_unit_test_setup(test_pkcs11, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
