/*
 * datadir_test.c - `rampart init` end to end on real directories under $RP_TEST_TMP: the layout
 * and its modes, install.json, the certificate chain and sealed keys, the administrator token
 * through the real store, idempotence (nothing touched the second time), and every refusal:
 * other domain, foreign or half-created directory, bad domains, loosened root key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "base/alloc.h"
#include "base/err.h"
#include "crypto/keyring.h"
#include "crypto/pki.h"
#include "crypto/rootkey.h"
#include "server/admin.h"
#include "server/datadir.h"
#include "crypto/keyring.h"

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[512];

static const char *const layout[] = {
    RP_DATADIR_INSTALL,     RP_DATADIR_ROOT_KEY,   RP_DATADIR_CA_CERT, RP_DATADIR_CA_KEY,
    RP_DATADIR_SERVER_CERT, RP_DATADIR_SERVER_KEY, RP_DATADIR_DB,
};
#define NLAYOUT (sizeof(layout) / sizeof(layout[0]))

/* ---- helpers ---- */

static int setup(void **state)
{
    rp_test_scratch("datadir", scratch, sizeof(scratch));
    return 0;
}

static int teardown(void **state)
{
    rp_test_rmtree(scratch);
    return 0;
}

static void sub(const char *dir, const char *rel, char *out, size_t cap)
{
    assert_int_equal(rp_datadir_path(dir, rel, out, cap), 0);
}

static mode_t mode_of(const char *dir, const char *rel)
{
    char path[4096];
    struct stat st;

    sub(dir, rel, path, sizeof(path));
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

static int exists(const char *dir, const char *rel)
{
    char path[4096];
    struct stat st;

    sub(dir, rel, path, sizeof(path));
    return lstat(path, &st) == 0;
}

static int run_init(const char *dir, const char *domain, rp_init_result *r, char *err,
                    size_t errlen)
{
    rp_init_opts o = {dir, domain, NULL};

    return rp_datadir_init(&o, r, err, errlen);
}

/* One file's identity for the idempotence check: content and modification time. */
typedef struct snap {
    struct timespec mtime;
    off_t size;
    unsigned char data[8192];
} snap;

static void take_snap(const char *dir, const char *rel, snap *s)
{
    char path[4096];
    struct stat st;
    FILE *f;

    sub(dir, rel, path, sizeof(path));
    assert_int_equal(stat(path, &st), 0);
    s->mtime = st.st_mtim;
    s->size = st.st_size;
    memset(s->data, 0, sizeof(s->data));
    f = fopen(path, "rb");
    assert_non_null(f);
    (void)fread(s->data, 1, sizeof(s->data), f);
    fclose(f);
}

static X509 *read_cert(FILE *f)
{
    return PEM_read_X509(f, NULL, NULL, NULL);
}

static rp_admin_creds *load_creds(const char *dir)
{
    char path[4096];
    rp_admin_creds *c = NULL;
    sqlite3 *db = NULL;

    sub(dir, RP_DATADIR_DB, path, sizeof(path));
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(rp_admin_creds_load(db, &c), 0);
    sqlite3_close(db);
    return c;
}

/* ---- tests ---- */

static void test_fresh_init(void **state)
{
    char dir[600], path[4096], err[512];
    rp_init_result r;
    json_t *j;
    json_error_t jerr;

    snprintf(dir, sizeof(dir), "%s/data", scratch);
    /* A permissive umask must not loosen anything. */
    mode_t old = umask(0);
    assert_int_equal(run_init(dir, "example.test", &r, err, sizeof(err)), 0);
    umask(old);
    assert_int_equal(r.created, 1);
    assert_string_equal(r.domain, "example.test");
    assert_int_equal(strlen(r.install_id), 36);
    assert_int_equal(r.ca_cert_path[0], '/');
    assert_non_null(strstr(r.ca_cert_path, "/data/tls/ca.crt"));
    assert_int_equal(strlen(r.admin_token), RP_ADMIN_TOKEN_LEN);

    for (size_t i = 0; i < NLAYOUT; i++)
        assert_true(exists(dir, layout[i]));
    assert_int_equal(mode_of(dir, "."), 0700);
    assert_int_equal(mode_of(dir, "keys"), 0700);
    assert_int_equal(mode_of(dir, RP_DATADIR_ROOT_KEY), 0600);
    assert_int_equal(mode_of(dir, RP_DATADIR_CA_KEY), 0600);
    assert_int_equal(mode_of(dir, RP_DATADIR_SERVER_KEY), 0600);
    assert_int_equal(mode_of(dir, RP_DATADIR_DB), 0600);
    assert_int_equal(mode_of(dir, RP_DATADIR_CA_CERT), 0644);
    assert_int_equal(mode_of(dir, RP_DATADIR_SERVER_CERT), 0644);
    assert_false(exists(dir, "install.json.tmp"));

    sub(dir, RP_DATADIR_INSTALL, path, sizeof(path));
    j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "format")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "install_id")), r.install_id);
    assert_string_equal(json_string_value(json_object_get(j, "domain")), "example.test");
    assert_true(json_is_integer(json_object_get(j, "created_at")));
    assert_true(json_integer_value(json_object_get(j, "created_at")) > 1700000000);
    assert_int_equal(json_object_size(j), 4);
    json_decref(j);

    {
        char dom[256], id[37];
        assert_int_equal(rp_datadir_read(dir, dom, sizeof(dom), id), 0);
        assert_string_equal(dom, "example.test");
        assert_string_equal(id, r.install_id);
        assert_int_equal(rp_datadir_read(dir, dom, 5, id), RP_ETOOBIG);
    }
    OPENSSL_cleanse(r.admin_token, sizeof(r.admin_token));
}

static void test_certs_and_keys(void **state)
{
    char dir[600], path[4096], err[512];
    rp_init_result r;
    rp_keyring *kr = NULL;
    const rp_rootkey *rk = NULL;
    rp_keyring_opts ko = {0};
    char keys_dir[4096], kerr[256];
    EVP_PKEY *srv_key = NULL, *ca_key = NULL;
    X509 *ca, *leaf, *chain_ca;
    X509_STORE *store;
    X509_STORE_CTX *ctx;
    FILE *f;

    snprintf(dir, sizeof(dir), "%s/data", scratch);
    assert_int_equal(run_init(dir, NULL, &r, err, sizeof(err)), 0);
    assert_string_equal(r.domain, "rampart.localhost");

    f = fopen(r.ca_cert_path, "r");
    assert_non_null(f);
    ca = read_cert(f);
    assert_non_null(ca);
    assert_null(read_cert(f));
    fclose(f);
    ERR_clear_error();

    /* server.crt is the chain: the leaf, then the CA. */
    sub(dir, RP_DATADIR_SERVER_CERT, path, sizeof(path));
    f = fopen(path, "r");
    assert_non_null(f);
    leaf = read_cert(f);
    chain_ca = read_cert(f);
    assert_non_null(leaf);
    assert_non_null(chain_ca);
    assert_null(read_cert(f));
    fclose(f);
    ERR_clear_error();
    assert_int_equal(X509_cmp(chain_ca, ca), 0);

    store = X509_STORE_new();
    ctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    assert_int_equal(X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER), 1);
    assert_int_equal(X509_verify_cert(ctx), 1);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);

    {
        static const char *const hosts[] = {"rampart.localhost",
                                            "app.rampart.localhost",
                                            "kv.vault.rampart.localhost",
                                            "app.scm.rampart.localhost",
                                            "t.events.rampart.localhost",
                                            "acct.blob.rampart.localhost",
                                            "localhost"};
        char cn[128];
        for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
            assert_int_equal(X509_check_host(leaf, hosts[i], 0, 0, NULL), 1);
        assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
        assert_int_equal(X509_check_ip_asc(leaf, "::1", 0), 1);
        X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn));
        assert_string_equal(cn, "rampart.localhost");
        assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER);
        assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
    }

    /* The sealed keys open with the install's root key and match their certificates. */
    sub(dir, RP_DATADIR_KEYS, keys_dir, sizeof(keys_dir));
    ko.keys_dir = keys_dir;
    ko.provider = RP_ROOT_FILE;
    assert_int_equal(rp_keyring_open(&ko, &kr, kerr, sizeof(kerr)), 0);
    rk = rp_keyring_system(kr);
    sub(dir, RP_DATADIR_SERVER_KEY, path, sizeof(path));
    assert_int_equal(rp_pki_key_unseal(rk, RP_DATADIR_SERVER_KEY_LABEL, path, &srv_key), 0);
    assert_int_equal(X509_check_private_key(leaf, srv_key), 1);
    assert_int_equal(rp_pki_key_unseal(rk, RP_DATADIR_CA_KEY_LABEL, path, &ca_key), RP_ECRYPTO);
    sub(dir, RP_DATADIR_CA_KEY, path, sizeof(path));
    assert_int_equal(rp_pki_key_unseal(rk, RP_DATADIR_CA_KEY_LABEL, path, &ca_key), 0);
    assert_int_equal(X509_check_private_key(ca, ca_key), 1);

    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
    rp_keyring_close(kr);
    X509_free(ca);
    X509_free(leaf);
    X509_free(chain_ca);
    OPENSSL_cleanse(r.admin_token, sizeof(r.admin_token));
}

static void test_admin_token(void **state)
{
    char dir[600], err[512], bad[128];
    rp_init_result r;
    rp_admin_creds *c;
    const char *tok;

    snprintf(dir, sizeof(dir), "%s/data", scratch);
    assert_int_equal(run_init(dir, "rampart.localhost", &r, err, sizeof(err)), 0);
    tok = r.admin_token;
    c = load_creds(dir);
    assert_int_equal(rp_admin_creds_check(c, tok, strlen(tok)), 0);

    memcpy(bad, tok, strlen(tok) + 1);
    bad[40] = bad[40] == 'x' ? 'y' : 'x';
    assert_int_equal(rp_admin_creds_check(c, bad, strlen(bad)), RP_EPERM);
    memcpy(bad, tok, strlen(tok) + 1);
    bad[6] = bad[6] == 'x' ? 'y' : 'x';
    assert_int_equal(rp_admin_creds_check(c, bad, strlen(bad)), RP_EPERM);
    assert_int_equal(rp_admin_creds_check(c, "rpa_garbage", 11), RP_EPERM);
    assert_int_equal(rp_admin_creds_check(c, tok, strlen(tok) - 1), RP_EPERM);
    rp_admin_creds_free(c);

    /* A second init hands out no new token and stores none. */
    assert_int_equal(run_init(dir, "rampart.localhost", &r, err, sizeof(err)), 0);
    assert_int_equal(r.created, 0);
    assert_int_equal(r.admin_token[0], '\0');
    OPENSSL_cleanse(bad, sizeof(bad));
}

static void test_idempotent(void **state)
{
    char dir[600], err[512], id[37], ca_path[4096];
    static snap before[NLAYOUT], after;
    rp_init_result r;

    snprintf(dir, sizeof(dir), "%s/data", scratch);
    assert_int_equal(run_init(dir, "rampart.localhost", &r, err, sizeof(err)), 0);
    assert_int_equal(r.created, 1);
    memcpy(id, r.install_id, sizeof(id));
    memcpy(ca_path, r.ca_cert_path, sizeof(ca_path));
    for (size_t i = 0; i < NLAYOUT; i++)
        take_snap(dir, layout[i], &before[i]);
    /* Let a rewrite, if any, show in the mtimes. */
    usleep(20000);

    for (int round = 0; round < 2; round++) {
        memset(&r, 0x55, sizeof(r));
        assert_int_equal(run_init(dir, "rampart.localhost", &r, err, sizeof(err)), 0);
        assert_int_equal(r.created, 0);
        assert_string_equal(r.install_id, id);
        assert_string_equal(r.domain, "rampart.localhost");
        assert_string_equal(r.ca_cert_path, ca_path);
        assert_int_equal(r.admin_token[0], '\0');
    }
    for (size_t i = 0; i < NLAYOUT; i++) {
        take_snap(dir, layout[i], &after);
        assert_int_equal(after.size, before[i].size);
        assert_memory_equal(after.data, before[i].data, sizeof(after.data));
        assert_int_equal(after.mtime.tv_sec, before[i].mtime.tv_sec);
        assert_int_equal(after.mtime.tv_nsec, before[i].mtime.tv_nsec);
    }
    /* Default domain and an explicit one are the same install. */
    assert_int_equal(run_init(dir, NULL, &r, err, sizeof(err)), 0);
    assert_int_equal(r.created, 0);
    /* A relative path to the same directory is the same install too. */
    {
        char cwd[4096];
        assert_non_null(getcwd(cwd, sizeof(cwd)));
        assert_int_equal(chdir(scratch), 0);
        assert_int_equal(run_init("data", NULL, &r, err, sizeof(err)), 0);
        assert_int_equal(r.created, 0);
        assert_string_equal(r.ca_cert_path, ca_path);
        assert_int_equal(chdir(cwd), 0);
    }
}

static void test_other_domain_conflicts(void **state)
{
    char dir[600], err[512];
    rp_init_result r;
    snap before, after;

    snprintf(dir, sizeof(dir), "%s/data", scratch);
    assert_int_equal(run_init(dir, "one.test", &r, err, sizeof(err)), 0);
    OPENSSL_cleanse(r.admin_token, sizeof(r.admin_token));
    take_snap(dir, RP_DATADIR_INSTALL, &before);
    err[0] = '\0';
    assert_int_equal(run_init(dir, "two.test", &r, err, sizeof(err)), RP_ECONFLICT);
    assert_non_null(strstr(err, "one.test"));
    assert_int_equal(r.created, 0);
    assert_int_equal(r.admin_token[0], '\0');
    take_snap(dir, RP_DATADIR_INSTALL, &after);
    assert_memory_equal(before.data, after.data, sizeof(before.data));
    assert_int_equal(run_init(dir, NULL, &r, err, sizeof(err)), RP_ECONFLICT);
}

static void test_foreign_dir_conflicts(void **state)
{
    char dir[600], path[4096], err[512];
    rp_init_result r;
    FILE *f;

    snprintf(dir, sizeof(dir), "%s/foreign", scratch);
    assert_int_equal(mkdir(dir, 0755), 0);
    sub(dir, "notes.txt", path, sizeof(path));
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("mine\n", f);
    fclose(f);

    err[0] = '\0';
    assert_int_equal(run_init(dir, NULL, &r, err, sizeof(err)), RP_ECONFLICT);
    assert_non_null(strstr(err, "not empty"));
    /* Untouched: no files added, mode unchanged. */
    assert_false(exists(dir, "keys"));
    assert_false(exists(dir, RP_DATADIR_INSTALL));
    assert_int_equal(mode_of(dir, "."), 0755);
    assert_true(exists(dir, "notes.txt"));

    /* Another init holding the directory's lock. */
    {
        char d2[600];
        int fd;
        snprintf(d2, sizeof(d2), "%s/locked", scratch);
        assert_int_equal(mkdir(d2, 0700), 0);
        fd = open(d2, O_RDONLY | O_DIRECTORY);
        assert_true(fd >= 0);
        assert_int_equal(flock(fd, LOCK_EX), 0);
        assert_int_equal(run_init(d2, NULL, &r, err, sizeof(err)), RP_ECONFLICT);
        assert_non_null(strstr(err, "another"));
        assert_false(exists(d2, "keys"));
        close(fd);
    }
    /* A regular file is no directory. */
    assert_int_equal(run_init(path, NULL, &r, err, sizeof(err)), RP_EINVAL);
    /* A missing parent is not created. */
    snprintf(dir, sizeof(dir), "%s/no/such", scratch);
    assert_int_equal(run_init(dir, NULL, &r, err, sizeof(err)), RP_ENOENT);
}

static void test_half_created_refused(void **state)
{
    char dir[600], err[512];
    rp_init_result r;

    /* What a crash before install.json leaves: everything else. */
    snprintf(dir, sizeof(dir), "%s/data", scratch);
    assert_int_equal(run_init(dir, NULL, &r, err, sizeof(err)), 0);
    OPENSSL_cleanse(r.admin_token, sizeof(r.admin_token));
    sub(dir, RP_DATADIR_INSTALL, err, sizeof(err));
    assert_int_equal(unlink(err), 0);
    err[0] = '\0';
    assert_int_equal(run_init(dir, NULL, &r, err, sizeof(err)), RP_ECONFLICT);
    assert_non_null(strstr(err, "remove"));
    assert_true(exists(dir, RP_DATADIR_ROOT_KEY));

    /* Or a crash right after the first directory. */
    snprintf(dir, sizeof(dir), "%s/early", scratch);
    assert_int_equal(mkdir(dir, 0700), 0);
    sub(dir, "keys", err, sizeof(err));
    assert_int_equal(mkdir(err, 0700), 0);
    err[0] = '\0';
    assert_int_equal(run_init(dir, NULL, &r, err, sizeof(err)), RP_ECONFLICT);
    assert_non_null(strstr(err, "remove"));
}

static void test_existing_empty_dir(void **state)
{
    char dir[600], err[512];
    rp_init_result r;

    snprintf(dir, sizeof(dir), "%s/empty", scratch);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(run_init(dir, "localhost", &r, err, sizeof(err)), 0);
    assert_int_equal(r.created, 1);
    assert_int_equal(mode_of(dir, "."), 0700);
    assert_string_equal(r.domain, "localhost");
    OPENSSL_cleanse(r.admin_token, sizeof(r.admin_token));
}

static void test_damaged_install_refused(void **state)
{
    char dir[600], path[4096], err[512];
    rp_init_result r;

    snprintf(dir, sizeof(dir), "%s/data", scratch);
    assert_int_equal(run_init(dir, NULL, &r, err, sizeof(err)), 0);
    OPENSSL_cleanse(r.admin_token, sizeof(r.admin_token));
    /* A root key readable by others is refused, not silently used. */
    sub(dir, RP_DATADIR_ROOT_KEY, path, sizeof(path));
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(run_init(dir, NULL, &r, err, sizeof(err)), RP_EPERM);
    assert_non_null(strstr(err, "0600"));
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(run_init(dir, NULL, &r, err, sizeof(err)), 0);
    /* A missing certificate. */
    sub(dir, RP_DATADIR_SERVER_CERT, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(run_init(dir, NULL, &r, err, sizeof(err)), RP_ECONFLICT);
    /* A malformed install.json. */
    sub(dir, RP_DATADIR_INSTALL, path, sizeof(path));
    {
        FILE *f = fopen(path, "w");
        char dom[256], id[37];
        assert_non_null(f);
        fputs("{\"format\":1,\"format\":1}", f);
        fclose(f);
        assert_int_equal(rp_datadir_read(dir, dom, sizeof(dom), id), RP_EPARSE);
        assert_int_equal(run_init(dir, NULL, &r, err, sizeof(err)), RP_EPARSE);
        f = fopen(path, "w");
        assert_non_null(f);
        fputs("{\"format\":2,\"install_id\":\"x\",\"domain\":\"a\"}", f);
        fclose(f);
        assert_int_equal(rp_datadir_read(dir, dom, sizeof(dom), id), RP_EUNSUPPORTED);
    }
}

static void test_bad_domains(void **state)
{
    static const char *const bad[] = {
        "",
        "Rampart.localhost",
        "-a.test",
        "a-.test",
        "a..test",
        ".test",
        "test.",
        "127.0.0.1",
        "10",
        "a b.test",
        "a_b.test",
        "a/b",
        "a:443",
        "caf\xc3\xa9.test",
        "a123456789b123456789c123456789d123456789e123456789f123456789g123.test",
    };
    static const char *const good[] = {"localhost", "rampart.localhost",     "a-b.c0",
                                       "x.y.z",     "xn--bcher-kva.example", "1.2.3.example"};
    char dir[600], err[512], longname[300];
    rp_init_result r;

    snprintf(dir, sizeof(dir), "%s/data", scratch);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(rp_datadir_check_domain(bad[i], err, sizeof(err)), RP_EINVAL);
        assert_true(err[0] != '\0');
        assert_int_equal(run_init(dir, bad[i], &r, err, sizeof(err)), RP_EINVAL);
        assert_true(err[0] != '\0');
        /* Nothing is created for a rejected domain. */
        assert_int_equal(access(dir, F_OK), -1);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(rp_datadir_check_domain(good[i], NULL, 0), 0);

    /* 254 characters is over the DNS limit; 250 is a name, but too long for "*.events.D". */
    memset(longname, 'a', sizeof(longname));
    for (size_t i = 60; i < 254; i += 61)
        longname[i] = '.';
    longname[254] = '\0';
    assert_int_equal(rp_datadir_check_domain(longname, err, sizeof(err)), RP_EINVAL);
    longname[250] = '\0';
    assert_int_equal(rp_datadir_check_domain(longname, err, sizeof(err)), 0);
    assert_int_equal(run_init(dir, longname, &r, err, sizeof(err)), RP_EINVAL);
    assert_non_null(strstr(err, "events"));
    assert_int_equal(access(dir, F_OK), -1);
}

static void test_long_domain_cn(void **state)
{
    char dir[600], err[512], name[100], path[4096];
    rp_init_result r;
    X509 *leaf;
    FILE *f;

    /* Over 64 characters: no CN = domain (the CN limit), but the SANs still cover it. */
    memset(name, 'a', sizeof(name));
    name[40] = '.';
    memcpy(name + 80, ".test", 6);
    snprintf(dir, sizeof(dir), "%s/data", scratch);
    assert_int_equal(run_init(dir, name, &r, err, sizeof(err)), 0);
    OPENSSL_cleanse(r.admin_token, sizeof(r.admin_token));
    sub(dir, RP_DATADIR_SERVER_CERT, path, sizeof(path));
    f = fopen(path, "r");
    assert_non_null(f);
    leaf = read_cert(f);
    fclose(f);
    assert_non_null(leaf);
    assert_int_equal(X509_check_host(leaf, name, 0, 0, NULL), 1);
    X509_free(leaf);
}

static void test_failure_cleans_up(void **state)
{
    char dir[600], err[512];
    rp_init_result r;
    int rc = RP_ENOMEM;
    long n;

    /* Fail each allocation of a fresh init in turn: every failure removes what it created. */
    snprintf(dir, sizeof(dir), "%s/data", scratch);
    for (n = 0; rc != 0 && n < 10000; n++) {
        rp_alloc_fail_after(n);
        rc = run_init(dir, NULL, &r, err, sizeof(err));
        rp_alloc_fail_after(-1);
        if (rc != 0) {
            assert_int_equal(access(dir, F_OK), -1);
            assert_int_equal(r.admin_token[0], '\0');
        }
    }
    assert_int_equal(rc, 0);
    assert_true(n > 1);
    OPENSSL_cleanse(r.admin_token, sizeof(r.admin_token));

    /* In a directory the operator made, the directory itself stays (empty). */
    snprintf(dir, sizeof(dir), "%s/mine", scratch);
    assert_int_equal(mkdir(dir, 0700), 0);
    rp_alloc_fail_after(3);
    rc = run_init(dir, NULL, &r, err, sizeof(err));
    rp_alloc_fail_after(-1);
    assert_int_equal(rc, RP_ENOMEM);
    assert_int_equal(access(dir, F_OK), 0);
    assert_false(exists(dir, "keys"));
    assert_false(exists(dir, "tls"));
    assert_false(exists(dir, RP_DATADIR_DB));
    assert_int_equal(run_init(dir, NULL, &r, err, sizeof(err)), 0);
    assert_int_equal(r.created, 1);
    OPENSSL_cleanse(r.admin_token, sizeof(r.admin_token));
}

static void test_paths(void **state)
{
    char out[64];

    assert_int_equal(rp_datadir_path("/var/lib/rampart", "tls/ca.crt", out, sizeof(out)), 0);
    assert_string_equal(out, "/var/lib/rampart/tls/ca.crt");
    assert_int_equal(rp_datadir_path("/var/lib/rampart/", "install.json", out, sizeof(out)), 0);
    assert_string_equal(out, "/var/lib/rampart/install.json");
    assert_int_equal(rp_datadir_path("/", "x", out, sizeof(out)), 0);
    assert_string_equal(out, "/x");
    assert_int_equal(rp_datadir_path("data", "x", out, sizeof(out)), 0);
    assert_string_equal(out, "data/x");
    assert_int_equal(rp_datadir_path("/d", "/etc/passwd", out, sizeof(out)), RP_EINVAL);
    assert_int_equal(rp_datadir_path("/d", "../x", out, sizeof(out)), RP_EINVAL);
    assert_int_equal(rp_datadir_path("/d", "a/../../x", out, sizeof(out)), RP_EINVAL);
    assert_int_equal(rp_datadir_path("/d", "a/..", out, sizeof(out)), RP_EINVAL);
    assert_int_equal(rp_datadir_path("/d", "", out, sizeof(out)), RP_EINVAL);
    assert_int_equal(rp_datadir_path("", "x", out, sizeof(out)), RP_EINVAL);
    assert_int_equal(rp_datadir_path("/d", "a..b", out, sizeof(out)), 0);
    /* 10 + '/' + 9 + NUL */
    assert_int_equal(rp_datadir_path("/123456789", "123456789", out, 21), 0);
    assert_int_equal(rp_datadir_path("/123456789", "123456789", out, 20), RP_ETOOBIG);
}

static void test_read_missing(void **state)
{
    char dom[256], id[37];

    assert_int_equal(rp_datadir_read(scratch, dom, sizeof(dom), id), RP_ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_init, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certs_and_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_domain_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_dir_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_created_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_empty_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_install_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_domains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_domain_cn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_cleans_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_missing, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
