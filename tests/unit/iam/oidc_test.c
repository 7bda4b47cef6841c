/*
 * oidc_test.c - external OpenID Connect issuer keys: the discovery and JWK Set parsers on good
 * and hostile documents, token verification against a set built from freshly generated keys
 * (every refusal asserts its status and reason), the cache (watch rules, injected keys, the
 * unknown-kid refresh and its rate limit, the table limit), and one real fetch over TLS from
 * `openssl s_server -WWW` on loopback: a trusted CA works end to end (discovery -> JWKS ->
 * verify, then a key rollover picked up on an unknown kid), a wrong CA and a discovery
 * document naming another issuer fail with a reason. The fetch test is skipped when the
 * openssl command is missing. Verifying threads racing key-set swaps close the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"
#include "crypto/jwt.h"
#include "iam/oidc.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOW ((int64_t)1700000000)
#define ISS "https://login.example.test/3f1c2a9e-5b7d-4c1e-9a2b-7d6e5f4a3b2c/v2.0"

static rp_jwt_key *rsa, *ec, *rsa_other, *ec_as_rsa, *rsa_as_ec, *nokid, *rsa_unknown;
static char tmpdir[512];

/* ---------------------------------------------------------------- helpers */

static int setup(void **state)
{
    (void)state;
    assert_int_equal(rp_jwt_key_generate_rsa(2048, "k-rsa", &rsa), 0);
    assert_int_equal(rp_jwt_key_generate_p256("k-ec", &ec), 0);
    /* same kid as rsa, another key: a forgery attempt */
    assert_int_equal(rp_jwt_key_generate_rsa(2048, "k-rsa", &rsa_other), 0);
    /* kids that name a key of the other type */
    assert_int_equal(rp_jwt_key_generate_p256("k-rsa", &ec_as_rsa), 0);
    assert_int_equal(rp_jwt_key_generate_rsa(2048, "k-ec", &rsa_as_ec), 0);
    assert_int_equal(rp_jwt_key_generate_p256(NULL, &nokid), 0);
    assert_int_equal(rp_jwt_key_generate_rsa(2048, "k-new", &rsa_unknown), 0);
    rp_test_scratch("oidc_test", tmpdir, sizeof(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rp_jwt_key_free(rsa);
    rp_jwt_key_free(ec);
    rp_jwt_key_free(rsa_other);
    rp_jwt_key_free(ec_as_rsa);
    rp_jwt_key_free(rsa_as_ec);
    rp_jwt_key_free(nokid);
    rp_jwt_key_free(rsa_unknown);
    rp_test_rmtree(tmpdir);
    return 0;
}

/* The public JWK of k; drop_alg removes its "alg" (Entra ID's keys carry none). */
static json_t *jwk_of(const rp_jwt_key *k, int drop_alg)
{
    json_t *j = NULL;

    assert_int_equal(rp_jwt_key_public_jwk(k, &j), 0);
    if (drop_alg)
        json_object_del(j, "alg");
    return j;
}

/* {"keys": [...]} of the given JWKs (references stolen) as text; caller free()s. */
static char *jwks_text(json_t *a, json_t *b, json_t *c)
{
    json_t *keys = json_array(), *root;
    char *s;

    if (a != NULL)
        json_array_append_new(keys, a);
    if (b != NULL)
        json_array_append_new(keys, b);
    if (c != NULL)
        json_array_append_new(keys, c);
    root = json_pack("{s:o}", "keys", keys);
    s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    assert_non_null(s);
    return s;
}

/* The usual set: rsa (no alg, so RS256 and PS256) and ec. */
static rp_oidc_keys *std_set(void)
{
    char *doc = jwks_text(jwk_of(rsa, 1), jwk_of(ec, 0), NULL);
    rp_oidc_keys *ks = NULL;
    char err[256];

    if (rp_oidc_parse_jwks(doc, strlen(doc), &ks, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    free(doc);
    assert_int_equal(rp_oidc_keys_count(ks), 2);
    return ks;
}

/* Parses a JWK Set text: the rc, and the set when 0 (caller frees). */
static int parse_jwks(const char *doc, rp_oidc_keys **ks, char *err, size_t errlen)
{
    *ks = NULL;
    return rp_oidc_parse_jwks(doc, strlen(doc), ks, err, errlen);
}

/* Signs claims {iss, sub, aud, exp, nbf, iat} (exp / nbf left out when 0). */
static char *token(const rp_jwt_key *k, rp_jwt_alg alg, const char *iss, int64_t exp, int64_t nbf)
{
    json_t *c = json_pack("{s:s, s:s, s:s, s:I}", "iss", iss, "sub", "user-1", "aud", "api://app",
                          "iat", (json_int_t)NOW - 5);
    char *tok = NULL;
    size_t n = 0;

    if (exp != 0)
        json_object_set_new(c, "exp", json_integer(exp));
    if (nbf != 0)
        json_object_set_new(c, "nbf", json_integer(nbf));
    assert_int_equal(rp_jwt_sign(k, alg, NULL, c, &tok, &n), 0);
    json_decref(c);
    return tok;
}

/* Verifies tok against ks at NOW and checks the status and reason. */
static void expect(const rp_oidc_keys *ks, const char *tok, rp_oidc_status want,
                   const char *want_why)
{
    json_t *claims = (json_t *)1;
    const char *why = NULL;
    rp_oidc_status st = rp_oidc_verify_keys(ks, ISS, tok, strlen(tok), NOW, &claims, &why);

    if (st != want || why == NULL || strcmp(why, want_why) != 0)
        fail_msg("status %d (%s), wanted %d (%s)", st, why ? why : "(null)", want, want_why);
    if (st == RP_OIDC_OK) {
        assert_non_null(claims);
        assert_string_equal(json_string_value(json_object_get(claims, "sub")), "user-1");
        json_decref(claims);
    } else {
        assert_null(claims);
    }
}

/* base64url of a JSON text, for hand-made tokens. */
static void b64(const char *s, char *out, size_t cap)
{
    assert_int_equal(rp_b64url_encode((const unsigned char *)s, strlen(s), out, cap), 0);
}

/* ---------------------------------------------------------------- discovery */

static void test_discovery(void **state)
{
    static const char good[] =
        "{\"token_endpoint\":\"https://login.example.test/3f1c2a9e-5b7d-4c1e-9a2b-7d6e5f4a3b2c/"
        "oauth2/v2.0/token\",\"jwks_uri\":\"https://login.example.test/"
        "3f1c2a9e-5b7d-4c1e-9a2b-7d6e5f4a3b2c/discovery/v2.0/keys\",\"response_modes_supported\":"
        "[\"query\",\"fragment\",\"form_post\"],\"id_token_signing_alg_values_supported\":"
        "[\"RS256\"],\"issuer\":\"" ISS "\",\"request_uri_parameter_supported\":false}";
    static const struct {
        const char *doc;
        int rc;
    } bad[] = {
        /* the issuer must be exactly the one asked for */
        {"{\"issuer\":\"" ISS "/\",\"jwks_uri\":\"https://a.test/k\"}", RP_EINVAL},
        {"{\"issuer\":\"https://LOGIN.example.test/3f1c2a9e-5b7d-4c1e-9a2b-7d6e5f4a3b2c/v2.0\","
         "\"jwks_uri\":\"https://a.test/k\"}",
         RP_EINVAL},
        {"{\"issuer\":\"https://login.example.test/{tenantid}/v2.0\",\"jwks_uri\":\"https://a.test/"
         "k\"}",
         RP_EINVAL},
        {"{\"issuer\":\"https://evil.test/\",\"jwks_uri\":\"https://a.test/k\"}", RP_EINVAL},
        /* jwks_uri must be https, with a host and nothing a URL parser could read two ways */
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"http://login.example.test/keys\"}", RP_EINVAL},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"file:///etc/passwd\"}", RP_EINVAL},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"https://\"}", RP_EINVAL},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"https:///keys\"}", RP_EINVAL},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"https://user@a.test/keys\"}", RP_EINVAL},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"https://a.test/k#frag\"}", RP_EINVAL},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"https://a.test/k ey\"}", RP_EINVAL},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"https://a.test\\\\@b.test/k\"}", RP_EINVAL},
        /* jansson refuses \u0000 outright */
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"https://a.test/k\\u0000x\"}", RP_EPARSE},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"https://a.test/\\u00e9\"}", RP_EINVAL},
        /* missing or mistyped members, not an object, not JSON, duplicates */
        {"{\"jwks_uri\":\"https://a.test/k\"}", RP_EPARSE},
        {"{\"issuer\":\"" ISS "\"}", RP_EPARSE},
        {"{\"issuer\":[\"" ISS "\"],\"jwks_uri\":\"https://a.test/k\"}", RP_EPARSE},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":null}", RP_EPARSE},
        {"[\"" ISS "\"]", RP_EPARSE},
        {"", RP_EPARSE},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"https://a.test/k\"", RP_EPARSE},
        {"{\"issuer\":\"" ISS "\",\"jwks_uri\":\"https://a.test/k\"} x", RP_EPARSE},
        {"{\"issuer\":\"" ISS "\",\"issuer\":\"" ISS "\",\"jwks_uri\":\"https://a.test/k\"}",
         RP_EPARSE},
    };
    char uri[RP_OIDC_URL_MAX + 1], err[256];
    char *big;
    size_t n;

    (void)state;
    assert_int_equal(
        rp_oidc_parse_discovery(good, strlen(good), ISS, uri, sizeof(uri), err, sizeof(err)), 0);
    assert_string_equal(uri, "https://login.example.test/3f1c2a9e-5b7d-4c1e-9a2b-7d6e5f4a3b2c/"
                             "discovery/v2.0/keys");
    assert_string_equal(err, "");
    /* a query is fine in jwks_uri (Entra ID adds ?appid= for some apps) */
    {
        static const char q[] = "{\"issuer\":\"" ISS "\",\"jwks_uri\":\"HTTPS://a.test:8443/k?"
                                "appid=42\"}";
        assert_int_equal(
            rp_oidc_parse_discovery(q, strlen(q), ISS, uri, sizeof(uri), err, sizeof(err)), 0);
        assert_string_equal(uri, "HTTPS://a.test:8443/k?appid=42");
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rp_strlcpy(uri, "untouched", sizeof(uri));
        err[0] = '\0';
        int rc = rp_oidc_parse_discovery(bad[i].doc, strlen(bad[i].doc), ISS, uri, sizeof(uri), err,
                                         sizeof(err));
        if (rc != bad[i].rc || err[0] == '\0' || strcmp(uri, "untouched") != 0)
            fail_msg("case %zu: rc %d (wanted %d), err \"%s\"", i, rc, bad[i].rc, err);
        /* reasons never quote the document */
        assert_null(strstr(err, "a.test"));
        assert_null(strstr(err, "evil"));
    }
    /* oversize: the document, and a jwks_uri longer than the limit or the buffer */
    n = RP_OIDC_DOC_MAX + 1;
    big = malloc(n + 1);
    memset(big, ' ', n);
    memcpy(big, good, strlen(good));
    big[n] = '\0';
    assert_int_equal(rp_oidc_parse_discovery(big, n, ISS, uri, sizeof(uri), err, sizeof(err)),
                     RP_ETOOBIG);
    /* the same document one byte shorter passes (trailing whitespace is JSON) */
    assert_int_equal(rp_oidc_parse_discovery(big, n - 1, ISS, uri, sizeof(uri), err, sizeof(err)),
                     0);
    n = (size_t)snprintf(big, RP_OIDC_DOC_MAX, "{\"issuer\":\"%s\",\"jwks_uri\":\"https://a.test/",
                         ISS);
    memset(big + n, 'k', RP_OIDC_URL_MAX);
    memcpy(big + n + RP_OIDC_URL_MAX, "\"}", 3);
    assert_int_equal(
        rp_oidc_parse_discovery(big, strlen(big), ISS, uri, sizeof(uri), err, sizeof(err)),
        RP_ETOOBIG);
    assert_int_equal(rp_oidc_parse_discovery(good, strlen(good), ISS, uri, 20, err, sizeof(err)),
                     RP_ETOOBIG);
    free(big);
    assert_int_equal(rp_oidc_parse_discovery(NULL, 0, ISS, uri, sizeof(uri), err, sizeof(err)),
                     RP_EPARSE);
    assert_int_equal(rp_oidc_parse_discovery(good, strlen(good), NULL, uri, sizeof(uri), NULL, 0),
                     RP_EINVAL);
}

/* ---------------------------------------------------------------- JWK Set */

/* rsa's JWK with one member replaced (NULL value: removed). */
static json_t *rsa_jwk_with(const char *member, json_t *value)
{
    json_t *j = jwk_of(rsa, 1);

    if (value == NULL)
        json_object_del(j, member);
    else
        json_object_set_new(j, member, value);
    return j;
}

static json_t *ec_jwk_with(const char *member, json_t *value)
{
    json_t *j = jwk_of(ec, 0);

    if (value == NULL)
        json_object_del(j, member);
    else
        json_object_set_new(j, member, value);
    return j;
}

/* A base64url value of len bytes taken from the front of an existing member's value. */
static json_t *truncated_b64(const json_t *jwk, const char *member, size_t len)
{
    unsigned char raw[1100];
    char out[1600];
    size_t n = 0;
    const char *s = json_string_value(json_object_get(jwk, member));

    assert_int_equal(rp_b64url_decode(s, strlen(s), raw, sizeof(raw), &n), 0);
    assert_true(len <= n);
    assert_int_equal(rp_b64url_encode(raw, len, out, sizeof(out)), 0);
    return json_string(out);
}

/* One-key sets that must yield no usable key, each with the reason fragment expected. */
static void check_unusable(json_t *jwk, const char *why)
{
    char *doc = jwks_text(jwk, NULL, NULL);
    rp_oidc_keys *ks = (rp_oidc_keys *)1;
    char err[256] = "";
    int rc = rp_oidc_parse_jwks(doc, strlen(doc), &ks, err, sizeof(err));

    if (rc != RP_ENOENT || ks != (rp_oidc_keys *)1 || strstr(err, why) == NULL)
        fail_msg("%s: rc %d, err \"%s\"", doc, rc, err);
    free(doc);
}

static void test_jwks(void **state)
{
    rp_oidc_keys *ks = NULL;
    char err[256];
    char *doc;
    json_t *j;
    unsigned char *d1 = NULL, *d2 = NULL;
    size_t n1 = 0, n2 = 0;

    (void)state;
    /* RSA and EC keys round-trip: the found key is the same public key */
    ks = std_set();
    assert_int_equal(rp_jwt_key_public_der(rp_oidc_keys_find(ks, "k-rsa"), &d1, &n1), 0);
    assert_int_equal(rp_jwt_key_public_der(rsa, &d2, &n2), 0);
    assert_memory_equal(d1, d2, n1);
    assert_int_equal(n1, n2);
    rp_free(d1);
    rp_free(d2);
    assert_int_equal(rp_jwt_key_public_der(rp_oidc_keys_find(ks, "k-ec"), &d1, &n1), 0);
    assert_int_equal(rp_jwt_key_public_der(ec, &d2, &n2), 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(d1, d2, n1);
    rp_free(d1);
    rp_free(d2);
    assert_false(rp_jwt_key_is_private(rp_oidc_keys_find(ks, "k-rsa")));
    assert_null(rp_oidc_keys_find(ks, "k-none"));
    assert_null(rp_oidc_keys_find(ks, NULL));
    assert_ptr_equal(rp_oidc_keys_ref(ks), ks);
    rp_oidc_keys_free(ks);
    rp_oidc_keys_free(ks);
    rp_oidc_keys_free(NULL);
    assert_null(rp_oidc_keys_ref(NULL));
    assert_int_equal(rp_oidc_keys_count(NULL), 0);

    /* Entra ID-like extra members (x5t, x5c, issuer) are ignored; use "sig" or absent */
    j = rsa_jwk_with("x5c", json_pack("[s]", "MIIC/made/up/certificate=="));
    json_object_set_new(j, "x5t", json_string("bm9uc2Vuc2U"));
    json_object_set_new(j, "issuer", json_string(ISS));
    json_object_del(j, "use");
    doc = jwks_text(j, NULL, NULL);
    assert_int_equal(parse_jwks(doc, &ks, err, sizeof(err)), 0);
    assert_int_equal(rp_oidc_keys_count(ks), 1);
    assert_string_equal(err, "");
    rp_oidc_keys_free(ks);
    free(doc);

    /* unusable keys are left out, the rest kept (use=enc, unknown kty, missing kid) */
    doc = jwks_text(rsa_jwk_with("use", json_string("enc")), jwk_of(ec, 0),
                    json_pack("{s:s, s:s, s:s}", "kty", "oct", "kid", "k-oct", "k", "c2VjcmV0"));
    assert_int_equal(parse_jwks(doc, &ks, err, sizeof(err)), 0);
    assert_int_equal(rp_oidc_keys_count(ks), 1);
    assert_null(rp_oidc_keys_find(ks, "k-rsa"));
    assert_non_null(rp_oidc_keys_find(ks, "k-ec"));
    rp_oidc_keys_free(ks);
    free(doc);
    doc = jwks_text(rsa_jwk_with("kid", NULL), jwk_of(ec, 0), NULL);
    assert_int_equal(parse_jwks(doc, &ks, err, sizeof(err)), 0);
    assert_int_equal(rp_oidc_keys_count(ks), 1);
    rp_oidc_keys_free(ks);
    free(doc);

    /* duplicate kids: every key of that kid is dropped, others kept */
    j = jwk_of(ec_as_rsa, 0); /* an EC key named "k-rsa" */
    doc = jwks_text(jwk_of(rsa, 1), jwk_of(ec, 0), j);
    assert_int_equal(parse_jwks(doc, &ks, err, sizeof(err)), 0);
    assert_int_equal(rp_oidc_keys_count(ks), 1);
    assert_null(rp_oidc_keys_find(ks, "k-rsa"));
    assert_non_null(rp_oidc_keys_find(ks, "k-ec"));
    rp_oidc_keys_free(ks);
    free(doc);
    doc = jwks_text(jwk_of(rsa, 1), jwk_of(rsa, 0), NULL);
    ks = (rp_oidc_keys *)1;
    assert_int_equal(rp_oidc_parse_jwks(doc, strlen(doc), &ks, err, sizeof(err)), RP_ENOENT);
    assert_non_null(strstr(err, "sharing one kid"));
    assert_ptr_equal(ks, (rp_oidc_keys *)1);
    free(doc);
    /* a duplicate that is unusable anyway (use=enc) does not count */
    doc = jwks_text(jwk_of(rsa, 1), ec_jwk_with("kid", json_string("k-rsa")), NULL);
    json_t *root = json_loads(doc, 0, NULL);
    free(doc);
    json_object_set_new(json_array_get(json_object_get(root, "keys"), 1), "use",
                        json_string("enc"));
    doc = json_dumps(root, 0);
    json_decref(root);
    assert_int_equal(parse_jwks(doc, &ks, err, sizeof(err)), 0);
    assert_int_equal(rp_oidc_keys_count(ks), 1);
    rp_oidc_keys_free(ks);
    free(doc);

    /* one-key sets that leave nothing usable, each for its own reason */
    j = jwk_of(rsa, 1);
    check_unusable(rsa_jwk_with("n", truncated_b64(j, "n", 128)), "under 2048 bits");
    check_unusable(rsa_jwk_with("n", truncated_b64(j, "n", 255)), "under 2048 bits");
    json_decref(j);
    check_unusable(rsa_jwk_with("e", json_string("Ag")), "bad exponent");        /* e = 2 */
    check_unusable(rsa_jwk_with("e", json_string("AQ")), "bad exponent");        /* e = 1 */
    check_unusable(rsa_jwk_with("e", json_string("AQABAQABAQAB")), "oversized"); /* 9 bytes */
    check_unusable(rsa_jwk_with("n", NULL), "malformed");
    check_unusable(rsa_jwk_with("n", json_string("not base64!")), "malformed");
    check_unusable(rsa_jwk_with("n", json_integer(65537)), "malformed");
    check_unusable(rsa_jwk_with("use", json_string("enc")), "not for signatures");
    check_unusable(rsa_jwk_with("use", json_string("SIG")), "not for signatures");
    check_unusable(rsa_jwk_with("key_ops", json_pack("[s]", "encrypt")), "key_ops");
    check_unusable(rsa_jwk_with("key_ops", json_string("verify")), "key_ops");
    check_unusable(rsa_jwk_with("kid", NULL), "kid");
    check_unusable(rsa_jwk_with("kid", json_string("")), "kid");
    check_unusable(rsa_jwk_with("kid", json_integer(7)), "kid");
    check_unusable(rsa_jwk_with("kid", json_string("tab\tkid")), "printable");
    check_unusable(rsa_jwk_with("kty", json_string("rsa")), "kty");
    check_unusable(rsa_jwk_with("kty", NULL), "kty");
    check_unusable(rsa_jwk_with("kty", json_string("OKP")), "kty");
    check_unusable(rsa_jwk_with("alg", json_string("RS512")), "alg");
    check_unusable(rsa_jwk_with("alg", json_string("ES256")), "alg");
    check_unusable(rsa_jwk_with("alg", json_string("none")), "alg");
    check_unusable(rsa_jwk_with("alg", json_string("HS256")), "alg");
    check_unusable(ec_jwk_with("crv", json_string("P-384")), "P-256");
    check_unusable(ec_jwk_with("alg", json_string("RS256")), "alg");
    j = jwk_of(ec, 0);
    check_unusable(ec_jwk_with("x", truncated_b64(j, "x", 31)), "32-byte");
    json_decref(j);
    {
        /* a point off the curve: y + 1 */
        unsigned char y[40];
        char out[64];
        size_t n = 0;
        j = jwk_of(ec, 0);
        const char *s = json_string_value(json_object_get(j, "y"));
        assert_int_equal(rp_b64url_decode(s, strlen(s), y, sizeof(y), &n), 0);
        y[31] ^= 1;
        assert_int_equal(rp_b64url_encode(y, n, out, sizeof(out)), 0);
        json_decref(j);
        check_unusable(ec_jwk_with("y", json_string(out)), "not on P-256");
    }
    check_unusable(json_string("not an object"), "not an object");

    /* the restriction of alg: RS256 key is not a PS256 key */
    doc = jwks_text(rsa_jwk_with("alg", json_string("PS256")), NULL, NULL);
    assert_int_equal(parse_jwks(doc, &ks, err, sizeof(err)), 0);
    free(doc);
    {
        char *t1 = token(rsa, RP_JWT_PS256, ISS, NOW + 600, 0);
        char *t2 = token(rsa, RP_JWT_RS256, ISS, NOW + 600, 0);
        expect(ks, t1, RP_OIDC_OK, "ok");
        expect(ks, t2, RP_OIDC_INVALID, "alg does not suit the key");
        rp_free(t1);
        rp_free(t2);
    }
    rp_oidc_keys_free(ks);

    /* set-level failures */
    static const struct {
        const char *doc;
        int rc;
    } bad[] = {
        {"{\"keys\":[]}", RP_ENOENT},
        {"{}", RP_EPARSE},
        {"{\"keys\":{}}", RP_EPARSE},
        {"{\"keys\":null}", RP_EPARSE},
        {"[]", RP_EPARSE},
        {"", RP_EPARSE},
        {"{\"keys\":[],\"keys\":[]}", RP_EPARSE},
        {"{\"keys\":[{\"kty\":\"RSA\"}]", RP_EPARSE},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ks = (rp_oidc_keys *)1;
        err[0] = '\0';
        int rc = rp_oidc_parse_jwks(bad[i].doc, strlen(bad[i].doc), &ks, err, sizeof(err));
        if (rc != bad[i].rc || err[0] == '\0' || ks != (rp_oidc_keys *)1)
            fail_msg("case %zu: rc %d, err \"%s\"", i, rc, err);
    }
    /* too many entries, and too many bytes */
    {
        json_t *keys = json_array();
        for (int i = 0; i <= RP_OIDC_MAX_JWKS; i++)
            json_array_append_new(keys, json_object());
        json_t *r = json_pack("{s:o}", "keys", keys);
        doc = json_dumps(r, 0);
        json_decref(r);
        ks = NULL;
        assert_int_equal(parse_jwks(doc, &ks, err, sizeof(err)), RP_ETOOBIG);
        assert_null(ks);
        free(doc);
        doc = malloc(RP_OIDC_DOC_MAX + 2);
        memset(doc, ' ', RP_OIDC_DOC_MAX + 1);
        memcpy(doc, "{\"keys\":[]}", 11);
        doc[RP_OIDC_DOC_MAX + 1] = '\0';
        assert_int_equal(parse_jwks(doc, &ks, err, sizeof(err)), RP_ETOOBIG);
        free(doc);
    }
    assert_int_equal(rp_oidc_parse_jwks("{}", 2, NULL, err, sizeof(err)), RP_EINVAL);
}

/* Allocation failure anywhere in the JWKS parser is RP_ENOMEM, never a crash or a leak. */
static void test_jwks_oom(void **state)
{
    char *doc = jwks_text(jwk_of(rsa, 1), jwk_of(ec, 0), jwk_of(rsa_unknown, 0));
    rp_oidc_keys *ks;
    char err[256];
    int ok = 0;

    (void)state;
    for (long n = 0; n < 40 && !ok; n++) {
        ks = NULL;
        rp_alloc_fail_after(n);
        int rc = rp_oidc_parse_jwks(doc, strlen(doc), &ks, err, sizeof(err));
        rp_alloc_fail_after(-1);
        if (rc == 0) {
            ok = 1;
            assert_int_equal(rp_oidc_keys_count(ks), 3);
        } else if (rc != RP_ENOMEM) {
            fail_msg("n %ld: rc %d (%s)", n, rc, err);
        } else {
            assert_null(ks);
        }
        rp_oidc_keys_free(ks);
    }
    free(doc);
    assert_true(ok);
}

/* ---------------------------------------------------------------- verify */

static void test_verify(void **state)
{
    rp_oidc_keys *ks = std_set();
    char *t;
    char hdr[256], pay[512], tok[1024];
    const char *why = NULL;
    json_t *claims = (json_t *)1;

    (void)state;
    /* good tokens with each algorithm */
    t = token(rsa, RP_JWT_RS256, ISS, NOW + 600, NOW - 10);
    expect(ks, t, RP_OIDC_OK, "ok");
    /* tampered payload: another payload under the same signature */
    {
        char *t2 = token(rsa, RP_JWT_RS256, ISS, NOW + 7200, NOW - 10);
        char *p1 = strchr(t, '.'), *p2 = strchr(t2, '.');
        char *s1 = strchr(p1 + 1, '.'), *s2 = strchr(p2 + 1, '.');
        snprintf(tok, sizeof(tok), "%.*s%.*s%s", (int)(p1 - t), t, (int)(s2 - p2), p2, s1);
        expect(ks, tok, RP_OIDC_INVALID, "bad signature");
        rp_free(t2);
    }
    rp_free(t);
    t = token(rsa, RP_JWT_PS256, ISS, NOW + 600, 0);
    expect(ks, t, RP_OIDC_OK, "ok");
    rp_free(t);
    t = token(ec, RP_JWT_ES256, ISS, NOW + 600, 0);
    expect(ks, t, RP_OIDC_OK, "ok");
    /* claims come back as a new reference that outlives the token */
    assert_int_equal(rp_oidc_verify_keys(ks, ISS, t, strlen(t), NOW, &claims, &why), RP_OIDC_OK);
    rp_free(t);
    assert_string_equal(json_string_value(json_object_get(claims, "iss")), ISS);
    json_decref(claims);
    /* NULL outputs are fine */
    t = token(ec, RP_JWT_ES256, ISS, NOW + 600, 0);
    assert_int_equal(rp_oidc_verify_keys(ks, ISS, t, strlen(t), NOW, NULL, NULL), RP_OIDC_OK);
    rp_free(t);

    /* kid: unknown, absent, naming a key of the other type */
    t = token(rsa_unknown, RP_JWT_RS256, ISS, NOW + 600, 0);
    expect(ks, t, RP_OIDC_INVALID, "unknown kid");
    rp_free(t);
    t = token(nokid, RP_JWT_ES256, ISS, NOW + 600, 0);
    expect(ks, t, RP_OIDC_INVALID, "no kid");
    rp_free(t);
    t = token(ec_as_rsa, RP_JWT_ES256, ISS, NOW + 600, 0);
    expect(ks, t, RP_OIDC_INVALID, "alg does not suit the key");
    rp_free(t);
    t = token(rsa_as_ec, RP_JWT_RS256, ISS, NOW + 600, 0);
    expect(ks, t, RP_OIDC_INVALID, "alg does not suit the key");
    rp_free(t);
    t = token(rsa_as_ec, RP_JWT_PS256, ISS, NOW + 600, 0);
    expect(ks, t, RP_OIDC_INVALID, "alg does not suit the key");
    rp_free(t);
    /* the right kid, another key: a forgery */
    t = token(rsa_other, RP_JWT_RS256, ISS, NOW + 600, 0);
    expect(ks, t, RP_OIDC_INVALID, "bad signature");
    rp_free(t);

    /* alg none and HS256, with a kid of the set */
    snprintf(pay, sizeof(pay), "{\"iss\":\"%s\",\"sub\":\"user-1\",\"exp\":%lld}", ISS,
             (long long)NOW + 600);
    {
        char p64[700], h64[300];
        b64(pay, p64, sizeof(p64));
        b64("{\"alg\":\"none\",\"kid\":\"k-rsa\"}", h64, sizeof(h64));
        snprintf(tok, sizeof(tok), "%s.%s.", h64, p64);
        expect(ks, tok, RP_OIDC_INVALID, "alg not allowed");
        snprintf(tok, sizeof(tok), "%s.%s.AAAA", h64, p64);
        expect(ks, tok, RP_OIDC_INVALID, "alg not allowed");
        b64("{\"alg\":\"HS256\",\"kid\":\"k-rsa\",\"typ\":\"JWT\"}", h64, sizeof(h64));
        snprintf(tok, sizeof(tok), "%s.%s.c2lnbmF0dXJl", h64, p64);
        expect(ks, tok, RP_OIDC_INVALID, "alg not allowed");
        /* a token carrying its own key is refused by the decoder */
        b64("{\"alg\":\"RS256\",\"kid\":\"k-rsa\",\"jku\":\"https://evil.test/k\"}", hdr,
            sizeof(hdr));
        snprintf(tok, sizeof(tok), "%s.%s.c2lnbmF0dXJl", hdr, p64);
        expect(ks, tok, RP_OIDC_INVALID, "malformed");
    }
    expect(ks, "not.a.token", RP_OIDC_INVALID, "malformed");
    expect(ks, "", RP_OIDC_INVALID, "malformed");

    /* iss: another issuer, a near miss, absent */
    t = token(rsa, RP_JWT_RS256, "https://evil.test/v2.0", NOW + 600, 0);
    expect(ks, t, RP_OIDC_INVALID, "wrong issuer");
    rp_free(t);
    t = token(rsa, RP_JWT_RS256, ISS "/", NOW + 600, 0);
    expect(ks, t, RP_OIDC_INVALID, "wrong issuer");
    rp_free(t);

    /* time: expired (beyond and within the skew), nbf in the future, exp missing */
    t = token(rsa, RP_JWT_RS256, ISS, NOW - RP_OIDC_SKEW_S - 1, 0);
    expect(ks, t, RP_OIDC_EXPIRED, "expired");
    rp_free(t);
    t = token(rsa, RP_JWT_RS256, ISS, NOW - RP_OIDC_SKEW_S + 5, 0);
    expect(ks, t, RP_OIDC_OK, "ok");
    rp_free(t);
    t = token(ec, RP_JWT_ES256, ISS, NOW + 600, NOW + RP_OIDC_SKEW_S + 60);
    expect(ks, t, RP_OIDC_EXPIRED, "not yet valid");
    rp_free(t);
    t = token(ec, RP_JWT_ES256, ISS, NOW + 600, NOW + RP_OIDC_SKEW_S - 5);
    expect(ks, t, RP_OIDC_OK, "ok");
    rp_free(t);
    t = token(ec, RP_JWT_ES256, ISS, 0, 0);
    expect(ks, t, RP_OIDC_INVALID, "bad claims");
    rp_free(t);

    /* too long: refused before decoding */
    {
        size_t n = RP_JWT_MAX_LEN + 1;
        char *longtok = malloc(n + 1);
        t = token(rsa, RP_JWT_RS256, ISS, NOW + 600, 0);
        memset(longtok, 'A', n);
        memcpy(longtok, t, strlen(t));
        longtok[n] = '\0';
        expect(ks, longtok, RP_OIDC_INVALID, "token too long");
        rp_free(t);
        free(longtok);
    }
    /* no set, no issuer */
    t = token(rsa, RP_JWT_RS256, ISS, NOW + 600, 0);
    expect(NULL, t, RP_OIDC_NO_KEYS, "no keys");
    assert_int_equal(rp_oidc_verify_keys(ks, NULL, t, strlen(t), NOW, &claims, &why),
                     RP_OIDC_INVALID);
    assert_null(claims);
    rp_free(t);
    rp_oidc_keys_free(ks);
}

/* ---------------------------------------------------------------- the cache */

/* Waits up to ms for issuer's state to leave RP_EAGAIN (or to differ from `from`). */
static int wait_state(rp_oidc *o, const char *iss, int from, int ms, char *reason, size_t cap)
{
    int rc = from;

    for (int i = 0; i < ms / 20 && rc == from; i++) {
        rc = rp_oidc_state(o, iss, NULL, NULL, reason, cap);
        if (rc == from)
            usleep(20000);
    }
    return rc;
}

static void test_cache(void **state)
{
    /* port 1 on loopback: connection refused at once, so fetches fail fast and offline */
    static const char a[] = "https://127.0.0.1:1/tenant-a/v2.0";
    static const char b[] = "https://127.0.0.1:1/tenant-b/v2.0";
    static const char *const bad[] = {
        "http://login.example.test/t/v2.0",
        "https://",
        "https:///t",
        "https://login.example.test/t/v2.0?x=1",
        "https://login.example.test/t/v2.0#f",
        "https://user@login.example.test/t",
        "https://login.example.test/t v2.0",
        "https://login.example.test/t\\v2.0",
        "login.example.test",
        "",
    };
    rp_oidc *o = NULL;
    rp_oidc_keys *ks = std_set();
    char reason[RP_OIDC_REASON_MAX], longiss[RP_OIDC_ISSUER_MAX + 2];
    const char *why = NULL;
    json_t *claims = NULL;
    size_t nkeys = 9;
    int64_t at = -1, now = (int64_t)time(NULL);
    char *t;

    (void)state;
    assert_int_equal(rp_oidc_open(NULL, NULL), RP_EINVAL);
    assert_int_equal(rp_oidc_open("", &o), RP_EINVAL);
    assert_int_equal(rp_oidc_open("/nonexistent/ca.pem", &o), RP_ENOENT);
    assert_null(o);
    rp_oidc_close(NULL);
    assert_int_equal(rp_oidc_open(NULL, &o), 0);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rp_oidc_watch(o, bad[i]) != RP_EINVAL)
            fail_msg("watch accepted %s", bad[i]);
    memcpy(longiss, "https://a.test/", 15);
    memset(longiss + 15, 'x', sizeof(longiss) - 16);
    longiss[sizeof(longiss) - 1] = '\0';
    assert_int_equal(rp_oidc_watch(o, longiss), RP_EINVAL);
    longiss[RP_OIDC_ISSUER_MAX] = '\0';
    assert_int_equal(rp__oidc_set_keys(o, longiss, ks), 0); /* exactly the limit is fine */
    assert_int_equal(rp_oidc_watch(NULL, a), RP_EINVAL);

    /* unknown issuer */
    assert_int_equal(rp_oidc_state(o, a, &nkeys, &at, reason, sizeof(reason)), RP_ENOENT);
    t = token(rsa, RP_JWT_RS256, a, now + 600, 0);
    assert_int_equal(rp_oidc_verify(o, a, t, strlen(t), now, &claims, &why), RP_OIDC_NO_KEYS);
    assert_string_equal(why, "issuer not watched");
    assert_int_equal(rp_oidc_refresh(o, a), RP_ENOENT);

    /* injected keys verify; state reports them */
    assert_int_equal(rp__oidc_set_keys(o, a, ks), 0);
    assert_int_equal(rp_oidc_state(o, a, &nkeys, &at, reason, sizeof(reason)), 0);
    assert_int_equal(nkeys, 2);
    assert_true(at >= now && at <= now + 5);
    assert_string_equal(reason, "");
    assert_int_equal(rp_oidc_verify(o, a, t, strlen(t), now, &claims, &why), RP_OIDC_OK);
    assert_string_equal(why, "ok");
    json_decref(claims);
    assert_int_equal(rp_oidc_watch(o, a), 0); /* idempotent: no fetch queued */
    usleep(100000);
    assert_int_equal(rp_oidc_state(o, a, &nkeys, NULL, NULL, 0), 0);
    /* another issuer's token against a's keys: wrong issuer */
    rp_free(t);
    t = token(rsa, RP_JWT_RS256, b, now + 600, 0);
    assert_int_equal(rp_oidc_verify(o, a, t, strlen(t), now, &claims, &why), RP_OIDC_INVALID);
    assert_string_equal(why, "wrong issuer");
    assert_null(claims);
    rp_free(t);

    /* b: an unknown kid in a token naming another issuer schedules nothing */
    assert_int_equal(rp__oidc_set_keys(o, b, ks), 0);
    t = token(rsa_unknown, RP_JWT_RS256, a, now + 600, 0);
    assert_int_equal(rp_oidc_verify(o, b, t, strlen(t), now, NULL, &why), RP_OIDC_INVALID);
    assert_string_equal(why, "unknown kid");
    rp_free(t);
    usleep(100000);
    assert_int_equal(rp_oidc_state(o, b, NULL, NULL, NULL, 0), 0);

    /* a: an unknown kid of this issuer fails at once and schedules one refresh, which fails
     * here (nothing listens) with a reason while the old keys stay in use */
    t = token(rsa_unknown, RP_JWT_RS256, a, now + 600, 0);
    assert_int_equal(rp_oidc_verify(o, a, t, strlen(t), now, &claims, &why), RP_OIDC_INVALID);
    assert_string_equal(why, "unknown kid");
    assert_null(claims);
    assert_int_equal(wait_state(o, a, 0, 15000, reason, sizeof(reason)), RP_EIO);
    assert_non_null(strstr(reason, "discovery: "));
    assert_int_equal(rp_oidc_state(o, a, &nkeys, &at, NULL, 0), RP_EIO);
    assert_int_equal(nkeys, 2);
    assert_true(at >= now);
    /* rate limit: the next miss and an explicit refresh within a minute queue nothing */
    assert_int_equal(rp_oidc_verify(o, a, t, strlen(t), now, NULL, &why), RP_OIDC_INVALID);
    assert_int_equal(rp_oidc_refresh(o, a), RP_EAGAIN);
    rp_free(t);
    t = token(ec, RP_JWT_ES256, a, now + 600, 0);
    assert_int_equal(rp_oidc_verify(o, a, t, strlen(t), now, NULL, &why), RP_OIDC_OK);
    rp_free(t);
    /* b was never asked: its refresh goes through */
    assert_int_equal(rp_oidc_refresh(o, b), 0);
    assert_int_equal(rp_oidc_refresh(o, b), RP_EAGAIN);

    /* a new issuer: pending, then failed with a reason; verify says why there are no keys */
    {
        static const char c[] = "https://127.0.0.1:1/tenant-c/v2.0/";
        assert_int_equal(rp_oidc_watch(o, c), 0);
        int rc = rp_oidc_state(o, c, &nkeys, &at, reason, sizeof(reason));
        assert_true(rc == RP_EAGAIN || rc == RP_EIO);
        t = token(rsa, RP_JWT_RS256, c, now + 600, 0);
        assert_int_equal(rp_oidc_verify(o, c, t, strlen(t), now, &claims, &why), RP_OIDC_NO_KEYS);
        assert_true(strcmp(why, "keys not fetched yet") == 0 ||
                    strcmp(why, "fetching the keys failed") == 0);
        assert_int_equal(wait_state(o, c, RP_EAGAIN, 15000, reason, sizeof(reason)), RP_EIO);
        assert_non_null(strstr(reason, "discovery: "));
        assert_int_equal(rp_oidc_state(o, c, &nkeys, &at, NULL, 0), RP_EIO);
        assert_int_equal(nkeys, 0);
        assert_int_equal(at, 0);
        assert_int_equal(rp_oidc_verify(o, c, t, strlen(t), now, &claims, &why), RP_OIDC_NO_KEYS);
        assert_string_equal(why, "fetching the keys failed");
        rp_free(t);
    }

    /* the table is bounded: 4 watched so far (a, b, c, longiss) */
    for (int i = 0; i < RP_OIDC_MAX_ISSUERS - 4; i++) {
        char iss[64];
        snprintf(iss, sizeof(iss), "https://127.0.0.1:1/t%d", i);
        assert_int_equal(rp_oidc_watch(o, iss), 0);
    }
    assert_int_equal(rp_oidc_watch(o, "https://127.0.0.1:1/one-too-many"), RP_ETOOBIG);
    assert_int_equal(rp_oidc_watch(o, a), 0); /* watched ones still are */
    rp_oidc_keys_free(ks);
    rp_oidc_close(o); /* with fetches in flight or queued */
}

/* Loop threads verify while the key set is swapped under them: every verify succeeds, and
 * each set is freed exactly once (ASan / TSan builds watch the references). */
typedef struct verifier {
    rp_oidc *o;
    const char *iss;
    const char *tok;
    int64_t now;
    int failures;
} verifier;

static void *verify_loop(void *arg)
{
    verifier *v = arg;

    for (int i = 0; i < 300; i++)
        if (rp_oidc_verify(v->o, v->iss, v->tok, strlen(v->tok), v->now, NULL, NULL) != RP_OIDC_OK)
            v->failures++;
    return NULL;
}

static void test_concurrent(void **state)
{
    static const char iss[] = "https://127.0.0.1:1/tenant-x/v2.0";
    rp_oidc *o = NULL;
    rp_oidc_keys *sets[2];
    char *doc, err[256], *t;
    verifier v[3];
    pthread_t th[3];
    int64_t now = (int64_t)time(NULL);

    (void)state;
    sets[0] = std_set();
    doc = jwks_text(jwk_of(ec, 0), jwk_of(rsa_unknown, 1), NULL);
    assert_int_equal(rp_oidc_parse_jwks(doc, strlen(doc), &sets[1], err, sizeof(err)), 0);
    free(doc);
    assert_int_equal(rp_oidc_open(NULL, &o), 0);
    assert_int_equal(rp__oidc_set_keys(o, iss, sets[0]), 0);
    t = token(ec, RP_JWT_ES256, iss, now + 600, 0);
    for (int i = 0; i < 3; i++) {
        v[i] = (verifier){o, iss, t, now, 0};
        assert_int_equal(pthread_create(&th[i], NULL, verify_loop, &v[i]), 0);
    }
    for (int i = 0; i < 300; i++)
        assert_int_equal(rp__oidc_set_keys(o, iss, sets[i % 2]), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(v[i].failures, 0);
    }
    rp_free(t);
    rp_oidc_close(o);
    rp_oidc_keys_free(sets[0]);
    rp_oidc_keys_free(sets[1]);
}

/* ---------------------------------------------------------------- real fetch */

static int have_openssl(void)
{
    return system("openssl version >/dev/null 2>&1") == 0;
}

static void run(const char *cmd)
{
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

/* Writes text to dir/rel, creating the directories on the way. */
static void put(const char *dir, const char *rel, const char *text)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    for (char *p = path + strlen(dir) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            rp_test_mkdir_p(path);
            *p = '/';
        }
    }
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Starts openssl s_server -WWW in www with cert/key; returns its pid and port. */
static pid_t start_server(const char *www, const char *cert, const char *key, const char *out,
                          int *port)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600), null = open("/dev/null", O_RDWR);
        if (fd < 0 || null < 0 || chdir(www) != 0)
            _exit(127);
        dup2(null, 0);
        dup2(fd, 1);
        dup2(null, 2);
        execlp("openssl", "openssl", "s_server", "-WWW", "-accept", "127.0.0.1:0", "-cert", cert,
               "-key", key, (char *)NULL);
        _exit(127);
    }
    *port = 0;
    for (int i = 0; i < 500 && *port == 0; i++) {
        char buf[512] = "";
        FILE *f = fopen(out, "r");
        if (f != NULL) {
            size_t n = fread(buf, 1, sizeof(buf) - 1, f);
            buf[n] = '\0';
            fclose(f);
        }
        char *p = strstr(buf, "ACCEPT");
        char *nl = p != NULL ? strchr(p, '\n') : NULL;
        if (nl != NULL) {
            char *colon = nl;
            while (colon > p && *colon != ':')
                colon--;
            *port = (int)strtol(colon + 1, NULL, 10);
        } else {
            usleep(10000);
        }
    }
    if (*port <= 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        fail_msg("s_server did not start");
    }
    return pid;
}

/* Waits until verify of tok at o/iss gives want (up to ms). */
static rp_oidc_status wait_verify(rp_oidc *o, const char *iss, const char *tok, rp_oidc_status want,
                                  int ms, const char **why)
{
    rp_oidc_status st = RP_OIDC_NO_KEYS;

    for (int i = 0; i < ms / 50; i++) {
        st = rp_oidc_verify(o, iss, tok, strlen(tok), (int64_t)time(NULL), NULL, why);
        if (st == want)
            break;
        usleep(50000);
    }
    return st;
}

static void test_fetch(void **state)
{
    char dir[600], www[700], cert[700], key[700], other[700], okey[700], out[700], cmd[4000];
    char iss[256], bad_iss[256], http_iss[256], doc[2048], reason[RP_OIDC_REASON_MAX];
    char *jwks, *t;
    rp_oidc *o = NULL, *wrong = NULL, *sys = NULL;
    const char *why = NULL;
    int port = 0, rc;
    size_t nkeys = 0;
    int64_t at = 0, now = (int64_t)time(NULL);
    pid_t pid;

    (void)state;
    if (!have_openssl()) {
        skip();
        return;
    }
    snprintf(dir, sizeof(dir), "%s/fetch", tmpdir);
    snprintf(www, sizeof(www), "%s/www", dir);
    rp_test_mkdir_p(www);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(other, sizeof(other), "%s/other.pem", dir);
    snprintf(okey, sizeof(okey), "%s/other.key", dir);
    snprintf(out, sizeof(out), "%s/server.out", dir);
    /* the server's own self-signed certificate is the trusted CA; another one is not */
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
             "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
             "-keyout %s -out %s >/dev/null 2>&1 && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
             "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
             "-keyout %s -out %s >/dev/null 2>&1",
             key, cert, okey, other);
    run(cmd);
    pid = start_server(www, cert, key, out, &port);

    snprintf(iss, sizeof(iss), "https://localhost:%d/tenant/v2.0", port);
    snprintf(bad_iss, sizeof(bad_iss), "https://localhost:%d/other/v2.0", port);
    snprintf(http_iss, sizeof(http_iss), "https://localhost:%d/plain/v2.0", port);
    snprintf(doc, sizeof(doc),
             "{\"issuer\":\"%s\",\"jwks_uri\":\"https://localhost:%d/tenant/discovery/v2.0/"
             "keys\",\"id_token_signing_alg_values_supported\":[\"RS256\"]}",
             iss, port);
    put(www, "tenant/v2.0/.well-known/openid-configuration", doc);
    /* another path serving the same document: its issuer is not the one asked for */
    put(www, "other/v2.0/.well-known/openid-configuration", doc);
    snprintf(doc, sizeof(doc),
             "{\"issuer\":\"%s\",\"jwks_uri\":\"http://localhost:%d/tenant/discovery/v2.0/keys\"}",
             http_iss, port);
    put(www, "plain/v2.0/.well-known/openid-configuration", doc);
    jwks = jwks_text(jwk_of(rsa, 1), jwk_of(ec, 0), NULL);
    put(www, "tenant/discovery/v2.0/keys", jwks);
    free(jwks);

    assert_int_equal(rp_oidc_open(cert, &o), 0);
    assert_int_equal(rp_oidc_open(other, &wrong), 0);
    assert_int_equal(rp_oidc_open(NULL, &sys), 0);
    assert_int_equal(rp_oidc_watch(o, iss), 0);
    assert_int_equal(rp_oidc_watch(o, bad_iss), 0);
    assert_int_equal(rp_oidc_watch(o, http_iss), 0);
    assert_int_equal(rp_oidc_watch(wrong, iss), 0);
    assert_int_equal(rp_oidc_watch(sys, iss), 0);

    /* trusted CA: discovery -> JWKS -> verify */
    rc = wait_state(o, iss, RP_EAGAIN, 20000, reason, sizeof(reason));
    if (rc != 0)
        fail_msg("fetch: rc %d, %s", rc, reason);
    assert_int_equal(rp_oidc_state(o, iss, &nkeys, &at, reason, sizeof(reason)), 0);
    assert_int_equal(nkeys, 2);
    assert_true(at >= now);
    t = token(rsa, RP_JWT_RS256, iss, now + 600, 0);
    assert_int_equal(rp_oidc_verify(o, iss, t, strlen(t), now, NULL, &why), RP_OIDC_OK);
    rp_free(t);
    t = token(ec, RP_JWT_ES256, iss, now + 600, 0);
    assert_int_equal(rp_oidc_verify(o, iss, t, strlen(t), now, NULL, &why), RP_OIDC_OK);
    rp_free(t);

    /* issuer mismatch and an http jwks_uri fail with reasons */
    assert_int_equal(wait_state(o, bad_iss, RP_EAGAIN, 20000, reason, sizeof(reason)), RP_EIO);
    if (strstr(reason, "discovery: ") == NULL || strstr(reason, "issuer") == NULL)
        fail_msg("mismatch reason: %s", reason);
    assert_int_equal(wait_state(o, http_iss, RP_EAGAIN, 20000, reason, sizeof(reason)), RP_EIO);
    if (strstr(reason, "https URL") == NULL)
        fail_msg("http jwks_uri reason: %s", reason);

    /* a CA that did not issue the server's certificate, and the system store: TLS refused */
    assert_int_equal(wait_state(wrong, iss, RP_EAGAIN, 20000, reason, sizeof(reason)), RP_EIO);
    if (strstr(reason, "discovery: ") == NULL || strstr(reason, "certificate") == NULL)
        fail_msg("wrong CA reason: %s", reason);
    assert_int_equal(wait_state(sys, iss, RP_EAGAIN, 20000, reason, sizeof(reason)), RP_EIO);
    if (strstr(reason, "certificate") == NULL)
        fail_msg("system store reason: %s", reason);
    t = token(rsa, RP_JWT_RS256, iss, now + 600, 0);
    assert_int_equal(rp_oidc_verify(wrong, iss, t, strlen(t), now, NULL, &why), RP_OIDC_NO_KEYS);
    rp_free(t);

    /* key rollover: the issuer publishes a new key; its first token triggers the refresh */
    jwks = jwks_text(jwk_of(rsa_unknown, 1), jwk_of(ec, 0), NULL);
    put(www, "tenant/discovery/v2.0/keys", jwks);
    free(jwks);
    t = token(rsa_unknown, RP_JWT_RS256, iss, now + 600, 0);
    assert_int_equal(rp_oidc_verify(o, iss, t, strlen(t), now, NULL, &why), RP_OIDC_INVALID);
    assert_string_equal(why, "unknown kid");
    assert_int_equal(wait_verify(o, iss, t, RP_OIDC_OK, 20000, &why), RP_OIDC_OK);
    rp_free(t);
    /* the retired key is gone */
    t = token(rsa, RP_JWT_RS256, iss, now + 600, 0);
    assert_int_equal(rp_oidc_verify(o, iss, t, strlen(t), now, NULL, &why), RP_OIDC_INVALID);
    assert_string_equal(why, "unknown kid");
    rp_free(t);

    rp_oidc_close(o);
    rp_oidc_close(wrong);
    rp_oidc_close(sys);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discovery), cmocka_unit_test(test_jwks),
        cmocka_unit_test(test_jwks_oom),  cmocka_unit_test(test_verify),
        cmocka_unit_test(test_cache),     cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_fetch),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
