/*
 * pki.c - local CA, server certificates and sealed private key files (OpenSSL 3 EVP/X509).
 *
 * Workload: a few certificates per install lifetime (init, renewal), so every call builds its
 * objects from scratch and frees them; correctness and clear failure paths matter, speed does not.
 *
 * SANs are built as GENERAL_NAME objects, not from a config string, so a name can never inject
 * extra entries (a comma in "DNS:a,IP:..." would).
 */
#include "crypto/pki.h"
#include "base/err.h"
#include "base/file.h"
#include "base/rand.h"
#include "crypto/aead.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PKI_MAX_CN        64 /* ub-common-name (RFC 5280) */
#define PKI_BACKDATE_SECS 300

/* ---- certificate building ---- */

static int set_random_serial(X509 *x)
{
    unsigned char b[16];
    BIGNUM *bn = NULL;
    int rc = RP_ECRYPTO;

    if (rp_random_bytes(b, sizeof(b)) != 0)
        return RP_ECRYPTO;
    /* DER INTEGER serials must be positive and non-zero; 127 random bits remain. */
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(b, sizeof(b), NULL);
    if (bn == NULL)
        goto out;
    if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
        goto out;
    rc = 0;
out:
    BN_free(bn);
    return rc;
}

static int set_cn(X509_NAME *name, const char *cn)
{
    size_t n = cn ? strlen(cn) : 0;

    if (n == 0 || n > PKI_MAX_CN)
        return RP_EINVAL;
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, (int)n, -1,
                                   0) != 1)
        return RP_ECRYPTO;
    return 0;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    int ok;

    if (ext == NULL)
        return RP_ECRYPTO;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : RP_ECRYPTO;
}

/* Version 3, serial, validity (from now - 5 min), new P-256 key; the caller sets names. */
static int cert_start(int days, X509 **xout, EVP_PKEY **kout)
{
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    int rc = RP_ECRYPTO;

    if (days < 1 || days > RP_PKI_MAX_DAYS)
        return RP_EINVAL;
    k = EVP_EC_gen("P-256");
    if (k == NULL)
        goto out;
    x = X509_new();
    if (x == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    if (X509_set_version(x, X509_VERSION_3) != 1)
        goto out;
    rc = set_random_serial(x);
    if (rc != 0)
        goto out;
    rc = RP_ECRYPTO;
    if (X509_gmtime_adj(X509_getm_notBefore(x), -PKI_BACKDATE_SECS) == NULL)
        goto out;
    if (X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) == NULL)
        goto out;
    if (X509_set_pubkey(x, k) != 1)
        goto out;
    *xout = x;
    *kout = k;
    return 0;
out:
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

int rp_pki_create_ca(const char *common_name, int days, EVP_PKEY **key, X509 **cert)
{
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    X509V3_CTX ctx;
    int rc;

    if (key == NULL || cert == NULL)
        return RP_EINVAL;
    rc = cert_start(days, &x, &k);
    if (rc != 0)
        return rc;
    rc = set_cn(X509_get_subject_name(x), common_name);
    if (rc != 0)
        goto out;
    rc = RP_ECRYPTO;
    if (X509_set_issuer_name(x, X509_get_subject_name(x)) != 1)
        goto out;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    /* SKI before AKI: the authority key id of a self-signed cert is its own SKI. */
    if ((rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0")) != 0 ||
        (rc = add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign")) != 0 ||
        (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash")) != 0 ||
        (rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always")) != 0)
        goto out;
    rc = RP_ECRYPTO;
    if (X509_sign(x, k, EVP_sha256()) <= 0)
        goto out;
    *key = k;
    *cert = x;
    return 0;
out:
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

/* Letters, digits, '-', dot-separated labels of 1..63, optionally "*." in front. */
static int valid_dns_name(const char *s)
{
    size_t n = strlen(s), label = 0;

    if (n >= 2 && s[0] == '*' && s[1] == '.') {
        s += 2;
        n -= 2;
    }
    if (n == 0 || n > RP_PKI_MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-') {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0;
}

static int san_push(GENERAL_NAMES *gens, int type, void *value)
{
    GENERAL_NAME *g = GENERAL_NAME_new();

    if (g == NULL)
        return RP_ENOMEM;
    GENERAL_NAME_set0_value(g, type, value);
    if (sk_GENERAL_NAME_push(gens, g) <= 0) {
        GENERAL_NAME_free(g);
        return RP_ENOMEM;
    }
    return 0;
}

static int add_san(X509 *x, const char *const *dns, size_t ndns, const char *const *ips,
                   size_t nips)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    int rc = 0;

    if (gens == NULL)
        return RP_ENOMEM;
    for (size_t i = 0; i < ndns && rc == 0; i++) {
        ASN1_IA5STRING *s;
        if (dns[i] == NULL || !valid_dns_name(dns[i])) {
            rc = RP_EINVAL;
            break;
        }
        s = ASN1_IA5STRING_new();
        if (s == NULL || ASN1_STRING_set(s, dns[i], (int)strlen(dns[i])) != 1) {
            ASN1_IA5STRING_free(s);
            rc = RP_ENOMEM;
            break;
        }
        rc = san_push(gens, GEN_DNS, s);
        if (rc != 0)
            ASN1_IA5STRING_free(s);
    }
    for (size_t i = 0; i < nips && rc == 0; i++) {
        ASN1_OCTET_STRING *ip;
        if (ips[i] == NULL || strlen(ips[i]) > RP_PKI_MAX_NAME) {
            rc = RP_EINVAL;
            break;
        }
        ip = a2i_IPADDRESS(ips[i]);
        if (ip == NULL) {
            rc = RP_EINVAL;
            break;
        }
        rc = san_push(gens, GEN_IPADD, ip);
        if (rc != 0)
            ASN1_OCTET_STRING_free(ip);
    }
    if (rc == 0 && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
        rc = RP_ECRYPTO;
    GENERAL_NAMES_free(gens);
    return rc;
}

int rp_pki_issue_server(EVP_PKEY *ca_key, X509 *ca_cert, const char *cn, const char *const *dns,
                        size_t ndns, const char *const *ips, size_t nips, int days, EVP_PKEY **key,
                        X509 **cert)
{
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    X509V3_CTX ctx;
    int rc;

    if (ca_key == NULL || ca_cert == NULL || key == NULL || cert == NULL ||
        (dns == NULL && ndns > 0) || (ips == NULL && nips > 0) || ndns + nips == 0 ||
        ndns > RP_PKI_MAX_SANS || nips > RP_PKI_MAX_SANS - ndns)
        return RP_EINVAL;
    if (X509_check_private_key(ca_cert, ca_key) != 1 || X509_check_ca(ca_cert) < 1) {
        ERR_clear_error();
        return RP_EINVAL;
    }
    rc = cert_start(days, &x, &k);
    if (rc != 0)
        return rc;
    rc = set_cn(X509_get_subject_name(x), cn);
    if (rc != 0)
        goto out;
    rc = RP_ECRYPTO;
    if (X509_set_issuer_name(x, X509_get_subject_name(ca_cert)) != 1)
        goto out;
    X509V3_set_ctx(&ctx, ca_cert, x, NULL, NULL, 0);
    if ((rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE")) != 0 ||
        (rc = add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature")) != 0 ||
        (rc = add_ext(x, &ctx, NID_ext_key_usage, "serverAuth")) != 0 ||
        (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash")) != 0 ||
        (rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always")) != 0)
        goto out;
    rc = add_san(x, dns, ndns, ips, nips);
    if (rc != 0)
        goto out;
    rc = RP_ECRYPTO;
    if (X509_sign(x, ca_key, EVP_sha256()) <= 0)
        goto out;
    *key = k;
    *cert = x;
    return 0;
out:
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

int rp_pki_write_chain(const char *path, X509 *const *certs, size_t n)
{
    BIO *bio = NULL;
    char *data;
    long len;
    int rc = RP_ENOMEM;

    if (path == NULL || certs == NULL || n == 0)
        return RP_EINVAL;
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (certs[i] == NULL) {
            rc = RP_EINVAL;
            goto out;
        }
        if (PEM_write_bio_X509(bio, certs[i]) != 1)
            goto out;
    }
    len = BIO_get_mem_data(bio, &data);
    if (len <= 0)
        goto out;
    rc = rp_file_write_atomic(path, data, (size_t)len, 0644);
out:
    BIO_free(bio);
    return rc;
}

int rp_pki_write_cert(const char *path, X509 *cert)
{
    return rp_pki_write_chain(path, &cert, 1);
}

/* ---- sealed key files ---- */

int rp_pki_key_seal(const rp_rootkey *rk, const char *label, EVP_PKEY *key, const char *path)
{
    unsigned char kek[RP_AEAD_KEY_LEN];
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    rp_buf der, env;
    unsigned char *p;
    int len, rc;

    if (rk == NULL || label == NULL || label[0] == '\0' || key == NULL || path == NULL)
        return RP_EINVAL;
    rp_buf_init(&der, RP_PKI_MAX_KEYFILE);
    rp_buf_init(&env, RP_PKI_MAX_KEYFILE + RP_AEAD_OVERHEAD);
    rc = rp_rootkey_derive(rk, RP_PKI_KEYFILE_LABEL, kek, sizeof(kek));
    if (rc != 0)
        goto out;
    rc = RP_ECRYPTO;
    p8 = EVP_PKEY2PKCS8(key);
    if (p8 == NULL)
        goto out;
    len = i2d_PKCS8_PRIV_KEY_INFO(p8, NULL);
    if (len <= 0)
        goto out;
    /* Encode straight into our own buffer so the clear DER is wiped by rp_buf_free_secret. */
    rc = rp_buf_reserve(&der, (size_t)len);
    if (rc != 0)
        goto out;
    rc = RP_ECRYPTO;
    p = (unsigned char *)der.data;
    if (i2d_PKCS8_PRIV_KEY_INFO(p8, &p) != len)
        goto out;
    der.len = (size_t)len;
    rc = rp_aead_seal(kek, label, strlen(label), der.data, der.len, &env);
    if (rc != 0)
        goto out;
    rc = rp_file_write_atomic(path, env.data, env.len, 0600);
out:
    ERR_clear_error();
    OPENSSL_cleanse(kek, sizeof(kek));
    PKCS8_PRIV_KEY_INFO_free(p8);
    rp_buf_free_secret(&der);
    rp_buf_free(&env);
    return rc;
}

int rp_pki_key_unseal(const rp_rootkey *rk, const char *label, const char *path, EVP_PKEY **out)
{
    unsigned char kek[RP_AEAD_KEY_LEN];
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    EVP_PKEY *k = NULL;
    const unsigned char *p;
    rp_buf env, der;
    int rc;

    if (rk == NULL || label == NULL || label[0] == '\0' || path == NULL || out == NULL)
        return RP_EINVAL;
    rp_buf_init(&env, RP_PKI_MAX_KEYFILE + RP_AEAD_OVERHEAD);
    rp_buf_init(&der, RP_PKI_MAX_KEYFILE);
    rc = rp_file_read(path, &env);
    if (rc != 0)
        goto out;
    rc = rp_rootkey_derive(rk, RP_PKI_KEYFILE_LABEL, kek, sizeof(kek));
    if (rc != 0)
        goto out;
    rc = rp_aead_open(kek, label, strlen(label), env.data, env.len, &der);
    if (rc != 0)
        goto out;
    rc = RP_EPARSE;
    if (der.len > LONG_MAX)
        goto out;
    p = (const unsigned char *)der.data;
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)der.len);
    if (p8 == NULL || p != (const unsigned char *)der.data + der.len)
        goto out;
    k = EVP_PKCS82PKEY(p8);
    if (k == NULL)
        goto out;
    *out = k;
    rc = 0;
out:
    ERR_clear_error();
    OPENSSL_cleanse(kek, sizeof(kek));
    PKCS8_PRIV_KEY_INFO_free(p8);
    rp_buf_free_secret(&der);
    rp_buf_free(&env);
    return rc;
}
