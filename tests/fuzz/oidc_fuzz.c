/*
 * oidc_fuzz.c - libFuzzer driver for the pure parts of src/iam/oidc.c: the discovery document
 * parser, the JWK Set parser and token verification against a key set.
 *
 * Input: a document (tried both as a discovery document and as a JWK Set), optionally followed
 * by a NUL and a compact token. Without a NUL the whole input is also tried as a token.
 * Corpus: tests/fuzz/corpus/oidc/ (Entra ID-like discovery documents and key sets with made-up
 * values, some followed by a token signed with one of the set's keys).
 *
 * Invariants checked with abort():
 *   - discovery: 0 only for a JSON object whose "issuer" is exactly ISS, with a jwks_uri that
 *     starts with https:// (any case), has a host, fits RP_OIDC_URL_MAX and holds no space,
 *     control byte, non-ASCII byte, backslash or '#'; on failure the output buffer is untouched
 *     and the reason is non-empty printable text;
 *   - JWK Set: 0 with 1..RP_OIDC_MAX_JWKS public keys, each found by its own kid, no two with
 *     one kid, every kid the kid of some entry of the document; on failure *out is untouched;
 *   - the fixed keys below are generated at start-up, so no fuzzed set can verify a token they
 *     signed, and no fuzzed token verifies under them (a forgery);
 *   - a token that verifies under a fuzzed set carries iss == ISS and an integer exp after
 *     NOW - RP_OIDC_SKEW_S; every other outcome leaves claims NULL with a static reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/err.h"
#include "crypto/jwt.h"
#include "iam/oidc.h"

#define ISS "https://login.example.test/3f1c2a9e-5b7d-4c1e-9a2b-7d6e5f4a3b2c/v2.0"
#define NOW ((int64_t)1700000000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rp_jwt_key *rsa, *ec;
static rp_oidc_keys *fixed;
static char *good_rs, *good_es; /* tokens signed by the fixed keys */

static char *sign(const rp_jwt_key *k, rp_jwt_alg alg)
{
    json_t *c =
        json_pack("{s:s, s:s, s:I}", "iss", ISS, "sub", "fuzz", "exp", (json_int_t)NOW + 3600);
    char *tok = NULL;
    size_t n = 0;

    if (c == NULL || rp_jwt_sign(k, alg, NULL, c, &tok, &n) != 0)
        abort();
    json_decref(c);
    return tok;
}

static void setup(void)
{
    json_t *a = NULL, *b = NULL, *set;
    char *doc;

    if (rp_jwt_key_generate_rsa(2048, "fuzz-rsa", &rsa) != 0 ||
        rp_jwt_key_generate_p256("fuzz-ec", &ec) != 0 || rp_jwt_key_public_jwk(rsa, &a) != 0 ||
        rp_jwt_key_public_jwk(ec, &b) != 0)
        abort();
    set = json_pack("{s:[o,o]}", "keys", a, b);
    doc = set != NULL ? json_dumps(set, 0) : NULL;
    if (doc == NULL || rp_oidc_parse_jwks(doc, strlen(doc), &fixed, NULL, 0) != 0 ||
        rp_oidc_keys_count(fixed) != 2)
        abort();
    free(doc);
    json_decref(set);
    good_rs = sign(rsa, RP_JWT_RS256);
    good_es = sign(ec, RP_JWT_ES256);
}

static int printable(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

static void check_discovery(const char *doc, size_t n)
{
    char uri[RP_OIDC_URL_MAX + 1], err[256];
    json_t *root;
    size_t len, host;
    int rc;

    memcpy(uri, "untouched", 10);
    err[0] = '\0';
    rc = rp_oidc_parse_discovery(doc, n, ISS, uri, sizeof(uri), err, sizeof(err));
    if (rc != 0) {
        if ((rc != RP_EPARSE && rc != RP_EINVAL && rc != RP_ETOOBIG && rc != RP_ENOMEM) ||
            strcmp(uri, "untouched") != 0 || !printable(err))
            abort();
        return;
    }
    len = strlen(uri);
    if (err[0] != '\0' || len <= 8 || len > RP_OIDC_URL_MAX || strncasecmp(uri, "https://", 8))
        abort();
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)uri[i] <= 0x20 || (unsigned char)uri[i] >= 0x7f || uri[i] == '\\' ||
            uri[i] == '#')
            abort();
    host = strcspn(uri + 8, "/?");
    if (host == 0 || memchr(uri + 8, '@', host) != NULL)
        abort();
    /* an independent reading agrees on the issuer and the URI */
    root = json_loadb(doc, n, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL || strcmp(json_string_value(json_object_get(root, "issuer")), ISS) != 0 ||
        strcmp(json_string_value(json_object_get(root, "jwks_uri")), uri) != 0)
        abort();
    json_decref(root);
}

static int str_eq_member(const json_t *obj, const char *name, const char *s)
{
    const json_t *v = json_object_get(obj, name);

    return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

/* 1 if kid is the "kid" of some entry of the document's "keys". */
static int kid_in_doc(const json_t *keys, const char *kid)
{
    size_t i;
    const json_t *e;

    json_array_foreach(keys, i, e) if (str_eq_member(e, "kid", kid)) return 1;
    return 0;
}

/* Verifies tok against ks and checks the outcome's invariants. */
static rp_oidc_status check_verify(const rp_oidc_keys *ks, const char *tok, size_t n)
{
    json_t *claims = (json_t *)1;
    const char *why = NULL;
    rp_oidc_status st = rp_oidc_verify_keys(ks, ISS, tok, n, NOW, &claims, &why);

    if (!printable(why))
        abort();
    if (st != RP_OIDC_OK) {
        if (claims != NULL ||
            (st != RP_OIDC_INVALID && st != RP_OIDC_EXPIRED && st != RP_OIDC_NO_KEYS))
            abort();
        return st;
    }
    {
        const json_t *iss = json_object_get(claims, "iss"), *exp = json_object_get(claims, "exp");
        if (!json_is_object(claims) || !json_is_string(iss) ||
            strcmp(json_string_value(iss), ISS) != 0 || !json_is_integer(exp) ||
            json_integer_value(exp) <= NOW - RP_OIDC_SKEW_S)
            abort();
    }
    json_decref(claims);
    return st;
}

static void check_jwks(const char *doc, size_t n, const char *tok, size_t tn)
{
    rp_oidc_keys *ks = (rp_oidc_keys *)1;
    json_t *root, *keys;
    size_t i, count, found = 0;
    const json_t *e;
    int rc = rp_oidc_parse_jwks(doc, n, &ks, NULL, 0);

    if (rc != 0) {
        if (ks != (rp_oidc_keys *)1)
            abort();
        return;
    }
    count = rp_oidc_keys_count(ks);
    root = json_loadb(doc, n, JSON_REJECT_DUPLICATES, NULL);
    keys = json_object_get(root, "keys");
    if (count == 0 || count > RP_OIDC_MAX_JWKS || !json_is_array(keys) ||
        count > json_array_size(keys))
        abort();
    /* every usable key is reachable by its kid and is public only */
    json_array_foreach(keys, i, e)
    {
        const json_t *kid = json_object_get(e, "kid");
        const rp_jwt_key *k;
        if (!json_is_string(kid))
            continue;
        k = rp_oidc_keys_find(ks, json_string_value(kid));
        if (k == NULL)
            continue;
        if (strcmp(rp_jwt_key_kid(k), json_string_value(kid)) != 0 || rp_jwt_key_is_private(k) ||
            !kid_in_doc(keys, rp_jwt_key_kid(k)))
            abort();
    }
    /* distinct kids: count them through find over the document's distinct kids */
    json_array_foreach(keys, i, e)
    {
        const json_t *kid = json_object_get(e, "kid");
        size_t j;
        const json_t *f;
        int first = 1;
        if (!json_is_string(kid) || rp_oidc_keys_find(ks, json_string_value(kid)) == NULL)
            continue;
        json_array_foreach(keys, j, f)
        {
            if (j >= i)
                break;
            if (str_eq_member(f, "kid", json_string_value(kid)))
                first = 0;
        }
        found += first;
    }
    if (found != count)
        abort();
    /* keys nobody but this process has seen never verify under a fuzzed set */
    if (check_verify(ks, good_rs, strlen(good_rs)) == RP_OIDC_OK ||
        check_verify(ks, good_es, strlen(good_es)) == RP_OIDC_OK)
        abort();
    if (tok != NULL)
        (void)check_verify(ks, tok, tn);
    json_decref(root);
    rp_oidc_keys_free(ks);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *doc = (const char *)data, *nul = memchr(data, 0, size);
    size_t dn = nul != NULL ? (size_t)(nul - doc) : size;
    const char *tok = nul != NULL ? nul + 1 : doc;
    size_t tn = nul != NULL ? size - dn - 1 : size;

    if (fixed == NULL)
        setup();
    check_discovery(doc, dn);
    check_jwks(doc, dn, nul != NULL ? tok : NULL, tn);
    /* no fuzzed token is a forgery under the fixed keys */
    if (check_verify(fixed, tok, tn) == RP_OIDC_OK)
        abort();
    return 0;
}
