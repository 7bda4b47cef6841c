/*
 * appcfg_test.c - an app's settings (src/sites/appcfg.c): defaults, merging a patch over the
 * stored form (null restores a default), every refusal naming its property, the client
 * certificate decision (modes, exclusion paths, a certificate from the trusted CA, from another
 * CA, none) with certificates made here by OpenSSL, and the access rules wired to the site
 * and scm hosts (scmIpSecurityRestrictionsUseMain), the app process's sandbox (tier, limits
 * and their bounds, and which changes restart the process) and its health check path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "sites/appcfg.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

static json_t *J(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);

    assert_non_null(j);
    return j;
}

static rp_appcfg *build(const char *base, const char *patch, int want, const char *msg)
{
    json_t *b = base ? J(base) : NULL, *p = patch ? J(patch) : NULL;
    rp_appcfg *c = NULL;
    char err[300] = "";
    int rc = rp_appcfg_build(b, p, &c, err, sizeof(err));

    json_decref(b);
    json_decref(p);
    assert_int_equal(rc, want);
    if (msg != NULL)
        assert_non_null(strstr(err, msg));
    return c;
}

/* ---- certificates ---- */

typedef struct pki {
    EVP_PKEY *key;
    X509 *crt;
} pki;

static pki make_cert(const char *cn, const pki *issuer, int ca)
{
    pki p = {EVP_EC_gen("P-256"), X509_new()};
    X509_NAME *name;
    X509V3_CTX v3;
    X509_EXTENSION *ext;

    assert_non_null(p.key);
    assert_non_null(p.crt);
    X509_set_version(p.crt, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(p.crt), ca ? 1 : 2);
    X509_gmtime_adj(X509_getm_notBefore(p.crt), -60);
    X509_gmtime_adj(X509_getm_notAfter(p.crt), 3600);
    X509_set_pubkey(p.crt, p.key);
    name = X509_get_subject_name(p.crt);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(p.crt, issuer ? X509_get_subject_name(issuer->crt) : name);
    X509V3_set_ctx(&v3, issuer ? issuer->crt : p.crt, p.crt, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                              ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    X509_add_ext(p.crt, ext, -1);
    X509_EXTENSION_free(ext);
    if (!ca) {
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_ext_key_usage, "clientAuth");
        X509_add_ext(p.crt, ext, -1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(p.crt, issuer ? issuer->key : p.key, EVP_sha256()) > 0);
    return p;
}

static void pki_free(pki *p)
{
    EVP_PKEY_free(p->key);
    X509_free(p->crt);
}

static char *pem_of(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;

    assert_non_null(b);
    assert_int_equal(PEM_write_bio_X509(b, x), 1);
    n = BIO_get_mem_data(b, &data);
    out = malloc((size_t)n + 1);
    assert_non_null(out);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(b);
    return out;
}

/* ---- tests ---- */

static void test_defaults_and_merge(void **state)
{
    rp_appcfg *c = build(NULL, NULL, 0, NULL), *d;
    json_t *v;

    (void)state;
    assert_int_equal(rp_appcfg_min_tls(c), 12);
    assert_int_equal(rp_appcfg_cert_mode(c), RP_CERT_OFF);
    assert_int_equal(json_object_size(rp_appcfg_stored(c)), 0);
    v = rp_appcfg_view(c);
    assert_string_equal(json_string_value(json_object_get(v, "minTlsVersion")), "1.2");
    assert_true(json_is_false(json_object_get(v, "clientCertEnabled")));
    /* The synthetic rule only: Allow all. */
    assert_int_equal(json_array_size(json_object_get(v, "ipSecurityRestrictions")), 1);
    json_decref(v);
    rp_appcfg_unref(c);

    c = build("{\"minTlsVersion\":\"1.3\"}", "{\"scmIpSecurityRestrictionsUseMain\":true}", 0,
              NULL);
    assert_int_equal(rp_appcfg_min_tls(c), 13);
    assert_int_equal(json_object_size(rp_appcfg_stored(c)), 2);
    /* null restores the default and leaves the stored form minimal */
    d = build("{\"minTlsVersion\":\"1.3\"}", "{\"minTlsVersion\":null}", 0, NULL);
    assert_int_equal(rp_appcfg_min_tls(d), 12);
    assert_int_equal(json_object_size(rp_appcfg_stored(d)), 0);
    rp_appcfg_unref(d);
    assert_ptr_equal(rp_appcfg_ref(c), c);
    rp_appcfg_unref(c);
    rp_appcfg_unref(c);
    rp_appcfg_unref(NULL);
}

static void test_refusals(void **state)
{
    static const struct {
        const char *patch, *named;
    } bad[] = {
        {"{\"minTlsVersion\":\"1.1\"}", "minTlsVersion"},
        {"{\"minTlsVersion\":1.3}", "minTlsVersion"},
        {"{\"clientCertEnabled\":\"yes\"}", "clientCertEnabled"},
        {"{\"clientCertMode\":\"Always\"}", "clientCertMode"},
        {"{\"clientCertMode\":\"Required\"}", "clientCertTrustedCAs"},
        {"{\"clientCertEnabled\":true}", "clientCertTrustedCAs"},
        {"{\"clientCertTrustedCAs\":\"-----BEGIN NOTHING-----\"}", "clientCertTrustedCAs"},
        {"{\"clientCertTrustedCAs\":5}", "clientCertTrustedCAs"},
        {"{\"clientCertExclusionPaths\":\"health\"}", "clientCertExclusionPaths"},
        {"{\"clientCertExclusionPaths\":\"/a b\"}", "clientCertExclusionPaths"},
        {"{\"ipSecurityRestrictions\":{}}", "ipSecurityRestrictions"},
        {"{\"ipSecurityRestrictions\":[{\"ipAddress\":\"1.2.3.4/40\",\"action\":\"Allow\","
         "\"priority\":1}]}",
         "ipSecurityRestrictions"},
        {"{\"ipSecurityRestrictionsDefaultAction\":\"allow\"}", "ipSecurityRestrictionsDefault"},
        {"{\"scmIpSecurityRestrictions\":[{\"action\":\"Allow\",\"priority\":1}]}",
         "scmIpSecurityRestrictions"},
        {"{\"scmIpSecurityRestrictionsDefaultAction\":1}", "scmIpSecurityRestrictionsDefault"},
        {"{\"scmIpSecurityRestrictionsUseMain\":1}", "scmIpSecurityRestrictionsUseMain"},
        {"{\"appSettings\":{}}", "unknown property 'appSettings'"},
    };
    char paths[40 * 4 + 1] = "";

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_null(build(NULL, bad[i].patch, RP_EINVAL, bad[i].named));
    assert_null(build(NULL, "[1]", RP_EINVAL, "properties"));
    for (int i = 0; i < 33; i++)
        memcpy(paths + 3 * i, "/x;", 4);
    {
        char patch[256];
        snprintf(patch, sizeof(patch), "{\"clientCertExclusionPaths\":\"%s\"}", paths);
        assert_null(build(NULL, patch, RP_EINVAL, "at most 32"));
    }
}

static void test_client_certificates(void **state)
{
    pki ca = make_cert("trusted", NULL, 1), other = make_cert("other", NULL, 1);
    pki alice = make_cert("alice", &ca, 0), mallory = make_cert("mallory", &other, 0);
    char *pem = pem_of(ca.crt);
    json_t *p =
        json_pack("{s:b,s:s,s:s,s:s}", "clientCertEnabled", 1, "clientCertMode", "Required",
                  "clientCertExclusionPaths", " /Health ; /public,", "clientCertTrustedCAs", pem);
    rp_appcfg *c = NULL;
    char err[300];
    int trusted;

    (void)state;
    assert_int_equal(rp_appcfg_build(NULL, p, &c, err, sizeof(err)), 0);
    assert_int_equal(rp_appcfg_cert_mode(c), RP_CERT_REQUIRED);
    assert_int_equal(rp_appcfg_cert_check(c, "/", alice.crt, &trusted), 1);
    assert_int_equal(trusted, 1);
    assert_int_equal(rp_appcfg_cert_check(c, "/", mallory.crt, &trusted), 0);
    assert_int_equal(trusted, 0);
    assert_int_equal(rp_appcfg_cert_check(c, "/", ca.crt, &trusted), 0); /* a CA is no client */
    assert_int_equal(rp_appcfg_cert_check(c, "/", NULL, &trusted), 0);
    assert_int_equal(rp_appcfg_cert_check(c, "/health", NULL, &trusted), 1);
    assert_int_equal(rp_appcfg_cert_check(c, "/HEALTH/deep", NULL, &trusted), 1);
    assert_int_equal(rp_appcfg_cert_check(c, "/public/x", mallory.crt, &trusted), 1);
    assert_int_equal(trusted, 0);
    assert_int_equal(rp_appcfg_cert_check(c, "/healthz", NULL, &trusted), 0); /* a segment */
    assert_int_equal(rp_appcfg_cert_check(c, "/publi", NULL, &trusted), 0);
    rp_appcfg_unref(c);
    json_object_set_new(p, "clientCertMode", json_string("OptionalInteractiveUser"));
    assert_int_equal(rp_appcfg_build(NULL, p, &c, err, sizeof(err)), 0);
    assert_int_equal(rp_appcfg_cert_mode(c), RP_CERT_OPTIONAL_INTERACTIVE);
    assert_int_equal(rp_appcfg_cert_check(c, "/", NULL, &trusted), 1);
    assert_int_equal(rp_appcfg_cert_check(c, "/", mallory.crt, &trusted), 1);
    assert_int_equal(trusted, 0);
    assert_int_equal(rp_appcfg_cert_check(c, "/", alice.crt, &trusted), 1);
    assert_int_equal(trusted, 1);
    rp_appcfg_unref(c);
    json_decref(p);
    free(pem);
    pki_free(&ca);
    pki_free(&other);
    pki_free(&alice);
    pki_free(&mallory);
}

static void test_access_hosts(void **state)
{
    rp_appcfg *c = build(NULL,
                         "{\"ipSecurityRestrictions\":[{\"ipAddress\":\"10.0.0.0/8\",\"action\":"
                         "\"Allow\",\"priority\":1}],\"scmIpSecurityRestrictions\":[{"
                         "\"ipAddress\":\"127.0.0.1\",\"action\":\"Deny\",\"priority\":1}],"
                         "\"scmIpSecurityRestrictionsDefaultAction\":\"Allow\"}",
                         0, NULL),
              *m;
    rp_req req;
    rp_access_result res;

    (void)state;
    memset(&req, 0, sizeof(req));
    req.client_ip = "10.1.2.3";
    assert_int_equal(rp_appcfg_access(c, 0, &req, &res), 1);
    assert_int_equal(rp_appcfg_access(c, 1, &req, &res), 1); /* scm: default Allow */
    req.client_ip = "127.0.0.1";
    assert_int_equal(rp_appcfg_access(c, 0, &req, &res), 0); /* implicit deny */
    assert_string_equal(res.rule, "Deny all");
    assert_int_equal(rp_appcfg_access(c, 1, &req, &res), 0);
    m = build(NULL,
              "{\"ipSecurityRestrictions\":[{\"ipAddress\":\"127.0.0.0/8\",\"action\":\"Allow\","
              "\"priority\":1}],\"scmIpSecurityRestrictions\":[{\"ipAddress\":\"127.0.0.1\","
              "\"action\":\"Deny\",\"priority\":1}],\"scmIpSecurityRestrictionsUseMain\":true}",
              0, NULL);
    assert_int_equal(rp_appcfg_access(m, 1, &req, &res), 1); /* the main rules decide */
    rp_appcfg_unref(m);
    rp_appcfg_unref(c);
}

static void test_sandbox(void **state)
{
    static const struct {
        const char *patch, *named;
    } bad[] = {
        {"{\"sandbox\":\"isolated\"}", "sandbox must be"},
        {"{\"sandbox\":{\"tier\":\"private\"}}", "sandbox.tier"},
        {"{\"sandbox\":{\"tier\":1}}", "sandbox.tier"},
        {"{\"sandbox\":{\"memoryMB\":8}}", "sandbox.memoryMB must be an integer from 16 to 65536"},
        {"{\"sandbox\":{\"memoryMB\":65537}}", "sandbox.memoryMB"},
        {"{\"sandbox\":{\"memoryMB\":\"512\"}}", "sandbox.memoryMB"},
        {"{\"sandbox\":{\"memoryMB\":100.5}}", "sandbox.memoryMB"},
        {"{\"sandbox\":{\"pids\":7}}", "sandbox.pids must be an integer from 8 to 65536"},
        {"{\"sandbox\":{\"cpuPercent\":0}}", "sandbox.cpuPercent"},
        {"{\"sandbox\":{\"cpuPercent\":-5}}", "sandbox.cpuPercent"},
        {"{\"sandbox\":{\"cpuPercent\":1000000}}", "sandbox.cpuPercent"},
        {"{\"sandbox\":{\"network\":\"none\"}}", "sandbox: unknown member 'network'"},
    };
    rp_appcfg *c = build(NULL, NULL, 0, NULL), *d, *e;
    json_t *v, *sb;

    (void)state;
    /* Defaults: the shared tier, 512 MB, 256 tasks, one core; shown in the view. */
    assert_int_equal(rp_appcfg_tier(c), RP_PROC_SHARED);
    assert_int_equal(rp_appcfg_memory_mb(c), RP_PROC_MEMORY_MB_DEFAULT);
    assert_int_equal(rp_appcfg_pids(c), RP_PROC_PIDS_DEFAULT);
    assert_int_equal(rp_appcfg_cpu_percent(c), RP_PROC_CPU_DEFAULT);
    v = rp_appcfg_view(c);
    sb = json_object_get(v, "sandbox");
    assert_string_equal(json_string_value(json_object_get(sb, "tier")), "shared");
    assert_int_equal(json_integer_value(json_object_get(sb, "memoryMB")), 512);
    assert_int_equal(json_integer_value(json_object_get(sb, "pids")), 256);
    assert_int_equal(json_integer_value(json_object_get(sb, "cpuPercent")), 100);
    json_decref(v);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_null(build(NULL, bad[i].patch, RP_EINVAL, bad[i].named));
    d = build("{\"appCommandLine\":\"node a.js\"}",
              "{\"sandbox\":{\"tier\":\"isolated\",\"memoryMB\":16,\"pids\":65536,"
              "\"cpuPercent\":1}}",
              0, NULL);
    assert_int_equal(rp_appcfg_tier(d), RP_PROC_ISOLATED);
    assert_int_equal(rp_appcfg_memory_mb(d), 16);
    assert_int_equal(rp_appcfg_pids(d), 65536);
    assert_int_equal(rp_appcfg_cpu_percent(d), 1);
    v = rp_appcfg_view(d);
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "sandbox"), "tier")),
                        "isolated");
    json_decref(v);
    /* A patch replaces the object whole: members it leaves out are defaults again. */
    e = build("{\"appCommandLine\":\"node a.js\",\"sandbox\":{\"tier\":\"isolated\","
              "\"pids\":64}}",
              "{\"sandbox\":{\"pids\":64}}", 0, NULL);
    assert_int_equal(rp_appcfg_tier(e), RP_PROC_SHARED);
    assert_int_equal(rp_appcfg_pids(e), 64);
    /* Whether a change restarts the process: command, tier and limits count, nothing else. */
    assert_int_equal(rp_appcfg_process_equal(d, d), 1);
    assert_int_equal(rp_appcfg_process_equal(d, e), 0);
    rp_appcfg_unref(e);
    e = build("{\"appCommandLine\":\"node a.js\",\"minTlsVersion\":\"1.3\","
              "\"sandbox\":{\"tier\":\"isolated\",\"memoryMB\":16,\"pids\":65536,"
              "\"cpuPercent\":1}}",
              NULL, 0, NULL);
    assert_int_equal(rp_appcfg_process_equal(d, e), 1);
    rp_appcfg_unref(e);
    e = build("{\"appCommandLine\":\"node b.js\",\"sandbox\":{\"tier\":\"isolated\","
              "\"memoryMB\":16,\"pids\":65536,\"cpuPercent\":1}}",
              NULL, 0, NULL);
    assert_int_equal(rp_appcfg_process_equal(d, e), 0);
    assert_int_equal(rp_appcfg_process_equal(c, c), 1);
    assert_int_equal(rp_appcfg_process_equal(c, e), 0);
    rp_appcfg_unref(e);
    rp_appcfg_unref(d);
    rp_appcfg_unref(c);
}

static void test_health_check_path(void **state)
{
    static const char *const bad[] = {
        "{\"healthCheckPath\":\"health\"}",
        "{\"healthCheckPath\":\"/a b\"}",
        "{\"healthCheckPath\":\"/a#b\"}",
        "{\"healthCheckPath\":\"/a\\u00e9\"}",
        "{\"healthCheckPath\":\"/a\\tb\"}",
        "{\"healthCheckPath\":\"/a\\u007f\"}",
        "{\"healthCheckPath\":1}",
        "{\"healthCheckPath\":[\"/h\"]}",
        "{\"healthCheckPath\":\"/a\\r\\nX: y\"}",
    };
    char patch[400], path[300];
    rp_appcfg *c = build(NULL, NULL, 0, NULL), *d, *e;
    json_t *v;

    (void)state;
    /* None by default, shown as "". */
    assert_null(rp_appcfg_health_path(c));
    v = rp_appcfg_view(c);
    assert_string_equal(json_string_value(json_object_get(v, "healthCheckPath")), "");
    json_decref(v);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_null(build(NULL, bad[i], RP_EINVAL, "healthCheckPath"));
    /* 256 bytes pass, 257 do not. */
    memset(path, 'a', sizeof(path));
    path[0] = '/';
    path[RP_PROC_HEALTH_PATH_MAX] = '\0';
    snprintf(patch, sizeof(patch), "{\"healthCheckPath\":\"%s\"}", path);
    d = build(NULL, patch, 0, NULL);
    assert_int_equal(strlen(rp_appcfg_health_path(d)), RP_PROC_HEALTH_PATH_MAX);
    rp_appcfg_unref(d);
    path[RP_PROC_HEALTH_PATH_MAX] = 'a';
    path[RP_PROC_HEALTH_PATH_MAX + 1] = '\0';
    snprintf(patch, sizeof(patch), "{\"healthCheckPath\":\"%s\"}", path);
    assert_null(build(NULL, patch, RP_EINVAL, "healthCheckPath must be"));
    d = build("{\"appCommandLine\":\"node a.js\"}",
              "{\"healthCheckPath\":\"/api/health?deep=1&x=%20\"}", 0, NULL);
    assert_string_equal(rp_appcfg_health_path(d), "/api/health?deep=1&x=%20");
    v = rp_appcfg_view(d);
    assert_string_equal(json_string_value(json_object_get(v, "healthCheckPath")),
                        "/api/health?deep=1&x=%20");
    json_decref(v);
    /* A change of the path restarts the process (it is part of how it is supervised). */
    e = build("{\"appCommandLine\":\"node a.js\"}", NULL, 0, NULL);
    assert_int_equal(rp_appcfg_process_equal(d, e), 0);
    assert_int_equal(rp_appcfg_process_equal(e, d), 0);
    rp_appcfg_unref(e);
    e = build("{\"appCommandLine\":\"node a.js\",\"healthCheckPath\":\"/api/health?deep=1&x=%20\"}",
              NULL, 0, NULL);
    assert_int_equal(rp_appcfg_process_equal(d, e), 1);
    rp_appcfg_unref(e);
    /* "" and null are none again; null leaves nothing stored. */
    e = build("{\"appCommandLine\":\"node a.js\",\"healthCheckPath\":\"/h\"}",
              "{\"healthCheckPath\":\"\"}", 0, NULL);
    assert_null(rp_appcfg_health_path(e));
    rp_appcfg_unref(e);
    e = build("{\"appCommandLine\":\"node a.js\",\"healthCheckPath\":\"/h\"}",
              "{\"healthCheckPath\":null}", 0, NULL);
    assert_null(rp_appcfg_health_path(e));
    assert_null(json_object_get(rp_appcfg_stored(e), "healthCheckPath"));
    rp_appcfg_unref(e);
    rp_appcfg_unref(d);
    rp_appcfg_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_merge),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_client_certificates),
        cmocka_unit_test(test_access_hosts),
        cmocka_unit_test(test_sandbox),
        cmocka_unit_test(test_health_check_path),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
