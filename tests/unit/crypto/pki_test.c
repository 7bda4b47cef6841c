/*
 * pki_test.c - the local CA and server certificates checked with OpenSSL's own verifier
 * (X509_verify_cert with the SSL-server purpose), each SAN, KU/EKU and the key identifiers;
 * PEM files; sealed key files that round-trip and fail under another root key or label.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "base/err.h"
#include "crypto/pki.h"
#include "crypto/rootkey.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char scratch[512];

static const char *const dns[] = {"rampart.localhost",
                                  "*.rampart.localhost",
                                  "*.vault.rampart.localhost",
                                  "*.scm.rampart.localhost",
                                  "*.events.rampart.localhost",
                                  "*.blob.rampart.localhost",
                                  "localhost"};
static const char *const ips[] = {"127.0.0.1", "::1"};
#define NDNS (sizeof(dns) / sizeof(dns[0]))
#define NIPS (sizeof(ips) / sizeof(ips[0]))

/* One CA and server certificate shared by the tests that only inspect them. */
static EVP_PKEY *ca_key, *srv_key;
static X509 *ca_cert, *srv_cert;

/* ---- helpers ---- */

static int group_setup(void **state)
{
    rp_test_scratch("pki", scratch, sizeof(scratch));
    assert_int_equal(rp_pki_create_ca("rampart test CA", 3650, &ca_key, &ca_cert), 0);
    assert_int_equal(rp_pki_issue_server(ca_key, ca_cert, "rampart.localhost", dns, NDNS, ips, NIPS,
                                         397, &srv_key, &srv_cert),
                     0);
    return 0;
}

static int group_teardown(void **state)
{
    X509_free(srv_cert);
    EVP_PKEY_free(srv_key);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    rp_test_rmtree(scratch);
    return 0;
}

static void path_in(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", scratch, name);
}

/* X509_verify_cert of leaf against a store holding only ca, for the SSL server purpose
 * (purpose 0: chain and signatures only). */
static int verify_purpose(X509 *ca, X509 *leaf, int purpose, int *err)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok;

    assert_non_null(store);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    if (purpose != 0)
        assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
    ok = X509_verify_cert(ctx);
    *err = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

static int verify(X509 *ca, X509 *leaf, int *err)
{
    return verify_purpose(ca, leaf, X509_PURPOSE_SSL_SERVER, err);
}

static int ext_critical(X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);

    assert_true(i >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

static void check_p256(X509 *x)
{
    EVP_PKEY *k = X509_get0_pubkey(x);
    char group[32];
    size_t n;

    assert_non_null(k);
    assert_int_equal(EVP_PKEY_get_base_id(k), EVP_PKEY_EC);
    assert_int_equal(EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &n), 1);
    assert_string_equal(group, "prime256v1");
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_get_version(x), X509_VERSION_3);
}

static void check_serial(X509 *x)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);

    assert_non_null(bn);
    assert_false(BN_is_negative(bn));
    /* 128 random bits with the top bit cleared and the next set: always 127 bits long. */
    assert_int_equal(BN_num_bits(bn), 127);
    BN_free(bn);
}

static void check_validity(X509 *x, int days)
{
    time_t now = time(NULL);
    time_t before = now - 240, after = now + (time_t)days * 86400 - 60;
    time_t later = now + (time_t)days * 86400 + 60;

    /* Not-before is about 5 minutes in the past; not-after days from now. */
    assert_true(X509_cmp_time(X509_get0_notBefore(x), &before) < 0);
    assert_true(X509_cmp_time(X509_get0_notAfter(x), &after) > 0);
    assert_true(X509_cmp_time(X509_get0_notAfter(x), &later) < 0);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static size_t read_bytes(const char *path, unsigned char *p, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    assert_non_null(f);
    n = fread(p, 1, cap, f);
    fclose(f);
    return n;
}

static void new_rootkey(const char *name, rp_rootkey **out)
{
    char path[600];

    path_in(name, path, sizeof(path));
    assert_int_equal(rp_rootkey_file_create(path), 0);
    assert_int_equal(rp_rootkey_file_load(path, out), 0);
}

/* Nothing but the named files: temp files of atomic writes must not linger. */
static int count_tmp_files(void)
{
    DIR *d = opendir(scratch);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp.") != NULL)
            n++;
    closedir(d);
    return n;
}

/* ---- tests ---- */

static void test_ca(void **state)
{
    const ASN1_OCTET_STRING *ski, *aki;
    char cn[64];
    int err;

    check_p256(ca_cert);
    check_serial(ca_cert);
    check_validity(ca_cert, 3650);
    assert_int_equal(X509_check_ca(ca_cert), 1);
    assert_int_equal(X509_get_pathlen(ca_cert), 0);
    assert_int_equal(ext_critical(ca_cert, NID_basic_constraints), 1);
    assert_int_equal(ext_critical(ca_cert, NID_key_usage), 1);
    assert_int_equal(X509_get_key_usage(ca_cert), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    ski = X509_get0_subject_key_id(ca_cert);
    aki = X509_get0_authority_key_id(ca_cert);
    assert_non_null(ski);
    assert_non_null(aki);
    assert_int_equal(ASN1_OCTET_STRING_cmp(ski, aki), 0);
    assert_int_equal(
        X509_NAME_get_text_by_NID(X509_get_subject_name(ca_cert), NID_commonName, cn, sizeof(cn)),
        (int)strlen("rampart test CA"));
    assert_string_equal(cn, "rampart test CA");
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(ca_cert), X509_get_issuer_name(ca_cert)),
                     0);
    assert_int_equal(X509_verify(ca_cert, ca_key), 1);
    assert_int_equal(X509_check_private_key(ca_cert, ca_key), 1);
    /* A self-signed CA verifies against itself, but is no server certificate. */
    assert_int_equal(verify_purpose(ca_cert, ca_cert, 0, &err), 1);
    assert_int_equal(verify(ca_cert, ca_cert, &err), 0);
    ERR_clear_error();
}

static void test_server_verifies(void **state)
{
    EVP_PKEY *other_key = NULL;
    X509 *other_ca = NULL;
    int err;

    assert_int_equal(verify(ca_cert, srv_cert, &err), 1);
    assert_int_equal(err, X509_V_OK);
    assert_int_equal(X509_check_private_key(srv_cert, srv_key), 1);
    /* Another CA does not vouch for it. */
    assert_int_equal(rp_pki_create_ca("other CA", 30, &other_key, &other_ca), 0);
    assert_int_equal(verify(other_ca, srv_cert, &err), 0);
    assert_int_not_equal(err, X509_V_OK);
    X509_free(other_ca);
    EVP_PKEY_free(other_key);
    ERR_clear_error();
}

static void test_server_fields(void **state)
{
    const ASN1_OCTET_STRING *aki;
    char cn[256];

    check_p256(srv_cert);
    check_serial(srv_cert);
    check_validity(srv_cert, 397);
    assert_int_equal(X509_check_ca(srv_cert), 0);
    assert_int_equal(ext_critical(srv_cert, NID_basic_constraints), 1);
    assert_int_equal(ext_critical(srv_cert, NID_key_usage), 1);
    assert_int_equal(X509_get_key_usage(srv_cert), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(srv_cert), XKU_SSL_SERVER);
    assert_int_equal(X509_check_purpose(srv_cert, X509_PURPOSE_SSL_SERVER, 0), 1);
    assert_int_equal(X509_check_purpose(srv_cert, X509_PURPOSE_SSL_CLIENT, 0), 0);
    assert_non_null(X509_get0_subject_key_id(srv_cert));
    assert_int_not_equal(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(srv_cert),
                                               X509_get0_subject_key_id(ca_cert)),
                         0);
    aki = X509_get0_authority_key_id(srv_cert);
    assert_non_null(aki);
    assert_int_equal(ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(ca_cert)), 0);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(srv_cert), X509_get_subject_name(ca_cert)),
                     0);
    X509_NAME_get_text_by_NID(X509_get_subject_name(srv_cert), NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "rampart.localhost");
    assert_int_not_equal(
        ASN1_INTEGER_cmp(X509_get0_serialNumber(srv_cert), X509_get0_serialNumber(ca_cert)), 0);
}

static void test_server_sans(void **state)
{
    static const unsigned char v4[4] = {127, 0, 0, 1};
    static const unsigned char v6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    GENERAL_NAMES *gens = X509_get_ext_d2i(srv_cert, NID_subject_alt_name, NULL, NULL);
    int seen_dns[NDNS] = {0}, seen_v4 = 0, seen_v6 = 0;

    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), (int)(NDNS + NIPS));
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        int type;
        void *v = GENERAL_NAME_get0_value(g, &type);
        if (type == GEN_DNS) {
            const ASN1_IA5STRING *s = v;
            size_t j;
            for (j = 0; j < NDNS; j++) {
                if ((size_t)ASN1_STRING_length(s) == strlen(dns[j]) &&
                    memcmp(ASN1_STRING_get0_data(s), dns[j], strlen(dns[j])) == 0) {
                    seen_dns[j]++;
                    break;
                }
            }
            assert_true(j < NDNS);
        } else {
            const ASN1_OCTET_STRING *ip = v;
            assert_int_equal(type, GEN_IPADD);
            if (ASN1_STRING_length(ip) == 4 && memcmp(ASN1_STRING_get0_data(ip), v4, 4) == 0)
                seen_v4++;
            else if (ASN1_STRING_length(ip) == 16 && memcmp(ASN1_STRING_get0_data(ip), v6, 16) == 0)
                seen_v6++;
            else
                fail_msg("unexpected IP SAN");
        }
    }
    for (size_t j = 0; j < NDNS; j++)
        assert_int_equal(seen_dns[j], 1);
    assert_int_equal(seen_v4, 1);
    assert_int_equal(seen_v6, 1);
    GENERAL_NAMES_free(gens);

    /* What a TLS client would match. */
    assert_int_equal(X509_check_host(srv_cert, "rampart.localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(srv_cert, "myapp.rampart.localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(srv_cert, "myapp.scm.rampart.localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(srv_cert, "kv1.vault.rampart.localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(srv_cert, "t1.events.rampart.localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(srv_cert, "acct.blob.rampart.localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(srv_cert, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(srv_cert, "a.b.vault.rampart.localhost", 0, 0, NULL), 0);
    assert_int_equal(X509_check_host(srv_cert, "rampart.example", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(srv_cert, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv_cert, "::1", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv_cert, "127.0.0.2", 0), 0);
}

static void test_issue_rejects(void **state)
{
    static const char *const bad_dns[] = {"",  "a,IP:1.2.3.4", "a b",  "a..b", ".a", "a.",
                                          "*", "a.*.b",        "**.a", "a\n"};
    static const char *const bad_ip[] = {"1.2.3", "::g", "localhost", ""};
    EVP_PKEY *k = NULL, *other_key = NULL;
    X509 *x = NULL, *other_ca = NULL;

    for (size_t i = 0; i < sizeof(bad_dns) / sizeof(bad_dns[0]); i++)
        assert_int_equal(
            rp_pki_issue_server(ca_key, ca_cert, "x", &bad_dns[i], 1, NULL, 0, 30, &k, &x),
            RP_EINVAL);
    for (size_t i = 0; i < sizeof(bad_ip) / sizeof(bad_ip[0]); i++)
        assert_int_equal(
            rp_pki_issue_server(ca_key, ca_cert, "x", NULL, 0, &bad_ip[i], 1, 30, &k, &x),
            RP_EINVAL);
    /* No SAN at all, bad validity, a CN over 64 characters. */
    assert_int_equal(rp_pki_issue_server(ca_key, ca_cert, "x", NULL, 0, NULL, 0, 30, &k, &x),
                     RP_EINVAL);
    assert_int_equal(rp_pki_issue_server(ca_key, ca_cert, "x", dns, 1, NULL, 0, 0, &k, &x),
                     RP_EINVAL);
    assert_int_equal(rp_pki_issue_server(ca_key, ca_cert, "x", dns, 1, NULL, 0, -1, &k, &x),
                     RP_EINVAL);
    assert_int_equal(
        rp_pki_issue_server(ca_key, ca_cert,
                            "a123456789b123456789c123456789d123456789e123456789f123456789g1234",
                            dns, 1, NULL, 0, 30, &k, &x),
        RP_EINVAL);
    /* A CA key that does not match the CA certificate, and a leaf used as a CA. */
    assert_int_equal(rp_pki_create_ca("other", 30, &other_key, &other_ca), 0);
    assert_int_equal(rp_pki_issue_server(other_key, ca_cert, "x", dns, 1, NULL, 0, 30, &k, &x),
                     RP_EINVAL);
    assert_int_equal(rp_pki_issue_server(srv_key, srv_cert, "x", dns, 1, NULL, 0, 30, &k, &x),
                     RP_EINVAL);
    assert_null(k);
    assert_null(x);
    assert_int_equal(rp_pki_create_ca("", 30, &k, &x), RP_EINVAL);
    assert_int_equal(rp_pki_create_ca("x", 0, &k, &x), RP_EINVAL);
    assert_int_equal(rp_pki_create_ca("x", RP_PKI_MAX_DAYS + 1, &k, &x), RP_EINVAL);
    assert_null(k);
    assert_null(x);
    X509_free(other_ca);
    EVP_PKEY_free(other_key);
    ERR_clear_error();
}

static void test_write_cert_and_chain(void **state)
{
    X509 *chain[2] = {srv_cert, ca_cert};
    char path[600];
    struct stat st;
    X509 *x;
    FILE *f;
    int err;

    path_in("ca.crt", path, sizeof(path));
    assert_int_equal(rp_pki_write_cert(path, ca_cert), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    f = fopen(path, "r");
    assert_non_null(f);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    assert_non_null(x);
    assert_int_equal(X509_cmp(x, ca_cert), 0);
    assert_null(PEM_read_X509(f, NULL, NULL, NULL));
    fclose(f);
    X509_free(x);

    /* Overwriting is atomic and allowed for certificates. */
    path_in("server.crt", path, sizeof(path));
    assert_int_equal(rp_pki_write_cert(path, ca_cert), 0);
    assert_int_equal(rp_pki_write_chain(path, chain, 2), 0);
    f = fopen(path, "r");
    assert_non_null(f);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    assert_int_equal(X509_cmp(x, srv_cert), 0);
    X509_free(x);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    assert_int_equal(X509_cmp(x, ca_cert), 0);
    X509_free(x);
    assert_null(PEM_read_X509(f, NULL, NULL, NULL));
    fclose(f);
    ERR_clear_error();
    assert_int_equal(verify(ca_cert, srv_cert, &err), 1);
    assert_int_equal(count_tmp_files(), 0);

    path_in("nodir/x.crt", path, sizeof(path));
    assert_int_not_equal(rp_pki_write_cert(path, ca_cert), 0);
    assert_int_equal(rp_pki_write_chain(path, chain, 0), RP_EINVAL);
}

static void test_key_seal_roundtrip(void **state)
{
    unsigned char file[4096], priv[32];
    BIGNUM *d = NULL;
    rp_rootkey *rk = NULL, *rk2 = NULL;
    EVP_PKEY *k = NULL;
    char path[600];
    struct stat st;
    size_t n;

    new_rootkey("root.key", &rk);
    new_rootkey("root2.key", &rk2);
    path_in("server.key.sealed", path, sizeof(path));
    assert_int_equal(rp_pki_key_seal(rk, "server", srv_key, path), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(count_tmp_files(), 0);

    /* The file is an envelope, and the private scalar is nowhere in it. */
    n = read_bytes(path, file, sizeof(file));
    assert_memory_equal(file, "RPE1", 4);
    assert_int_equal(EVP_PKEY_get_bn_param(srv_key, "priv", &d), 1);
    assert_int_equal(BN_bn2binpad(d, priv, sizeof(priv)), 32);
    BN_clear_free(d);
    assert_null(memmem(file, n, priv, sizeof(priv)));

    assert_int_equal(rp_pki_key_unseal(rk, "server", path, &k), 0);
    assert_int_equal(EVP_PKEY_eq(k, srv_key), 1);
    assert_int_equal(X509_check_private_key(srv_cert, k), 1);
    EVP_PKEY_free(k);
    k = NULL;

    /* Another root key, another label, a tampered file: all refused. */
    assert_int_equal(rp_pki_key_unseal(rk2, "server", path, &k), RP_ECRYPTO);
    assert_int_equal(rp_pki_key_unseal(rk, "ca", path, &k), RP_ECRYPTO);
    path_in("tampered.sealed", path, sizeof(path));
    file[n / 2] ^= 1;
    write_bytes(path, file, n);
    assert_int_equal(rp_pki_key_unseal(rk, "server", path, &k), RP_ECRYPTO);
    path_in("garbage.sealed", path, sizeof(path));
    write_bytes(path, "-----BEGIN PRIVATE KEY-----\n", 28);
    assert_int_equal(rp_pki_key_unseal(rk, "server", path, &k), RP_EPARSE);
    path_in("missing.sealed", path, sizeof(path));
    assert_int_equal(rp_pki_key_unseal(rk, "server", path, &k), RP_ENOENT);
    assert_null(k);

    /* Sealing again replaces the file; the CA key round-trips too. */
    path_in("ca.key.sealed", path, sizeof(path));
    assert_int_equal(rp_pki_key_seal(rk, "ca", srv_key, path), 0);
    assert_int_equal(rp_pki_key_seal(rk, "ca", ca_key, path), 0);
    assert_int_equal(rp_pki_key_unseal(rk, "ca", path, &k), 0);
    assert_int_equal(EVP_PKEY_eq(k, ca_key), 1);
    assert_int_equal(X509_check_private_key(ca_cert, k), 1);
    EVP_PKEY_free(k);

    assert_int_equal(rp_pki_key_seal(rk, "", ca_key, path), RP_EINVAL);
    assert_int_equal(rp_pki_key_seal(NULL, "ca", ca_key, path), RP_EINVAL);
    rp_rootkey_free(rk);
    rp_rootkey_free(rk2);
    ERR_clear_error();
}

/* A TLS 1.3 handshake over a BIO pair: the client trusts only the CA and checks the host name. */
static int handshake(const char *host)
{
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *srv, *cli;
    BIO *sb, *cb;
    int ok = 0;

    assert_non_null(sctx);
    assert_non_null(cctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION), 1);
    assert_int_equal(SSL_CTX_use_certificate(sctx, srv_cert), 1);
    assert_int_equal(SSL_CTX_add1_chain_cert(sctx, ca_cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(sctx, srv_key), 1);
    assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), ca_cert), 1);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    srv = SSL_new(sctx);
    cli = SSL_new(cctx);
    assert_int_equal(SSL_set1_host(cli, host), 1);
    assert_int_equal(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
    SSL_set_bio(srv, sb, sb);
    SSL_set_bio(cli, cb, cb);
    SSL_set_accept_state(srv);
    SSL_set_connect_state(cli);
    for (int i = 0; i < 10; i++) {
        int c = SSL_do_handshake(cli);
        int s = SSL_do_handshake(srv);
        if (c == 1 && s == 1) {
            ok = 1;
            break;
        }
        if ((c <= 0 && SSL_get_error(cli, c) != SSL_ERROR_WANT_READ) ||
            (s <= 0 && SSL_get_error(srv, s) != SSL_ERROR_WANT_READ))
            break;
    }
    if (ok)
        assert_int_equal(SSL_get_verify_result(cli), X509_V_OK);
    SSL_free(cli);
    SSL_free(srv);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    ERR_clear_error();
    return ok;
}

static void test_tls_handshake(void **state)
{
    assert_int_equal(handshake("kv1.vault.rampart.localhost"), 1);
    assert_int_equal(handshake("rampart.localhost"), 1);
    assert_int_equal(handshake("localhost"), 1);
    assert_int_equal(handshake("127.0.0.1"), 1);
    assert_int_equal(handshake("evil.example"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ca),
        cmocka_unit_test(test_server_verifies),
        cmocka_unit_test(test_server_fields),
        cmocka_unit_test(test_server_sans),
        cmocka_unit_test(test_issue_rejects),
        cmocka_unit_test(test_write_cert_and_chain),
        cmocka_unit_test(test_key_seal_roundtrip),
        cmocka_unit_test(test_tls_handshake),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
