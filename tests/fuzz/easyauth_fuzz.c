/*
 * easyauth_fuzz.c - libFuzzer driver for src/sites/easyauth.c (built-in authentication):
 * rp_easyauth_build on hostile settings and patches, the view round trip, rp_easyauth_decide
 * on fixed paths and claim sets, and the principal headers and /.auth/me on hostile claims.
 *
 * Input: settings JSON text, optionally followed by a NUL and a patch JSON text, optionally
 * followed by another NUL and a claims JSON text (tried as token claims and as principal
 * input). Corpus: tests/fuzz/corpus/easyauth/.
 *
 * Invariants checked with abort():
 *   - build returns 0 with a config and err "", or RP_EINVAL (with a non-empty err) or
 *     RP_ENOMEM with no config and err printable ASCII;
 *   - the view builds again into a config with an equal view that decides every probe alike;
 *   - a decision is one of the verdicts with a non-empty printable reason; location is empty
 *     except for REDIRECT, where it is prefix + "/login/aad?post_login_redirect_uri=" and then
 *     only unreserved characters and %XX, shorter than RP_EASYAUTH_LOCATION_MAX; disabled and
 *     excluded paths are ANON; a PASS needs claims; xhr never gives REDIRECT;
 *   - a principal is padded standard base64 of at most RP_EASYAUTH_HEADER_MAX bytes that
 *     decodes to {"auth_typ":"aad","claims":[...],...} with at most RP_EASYAUTH_CLAIMS_MAX
 *     entries; id and name have no control bytes and are at most RP_EASYAUTH_NAME_MAX bytes;
 *     a failed build leaves everything NULL; /.auth/me is a one-element array when it exists.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "base/err.h"
#include "sites/easyauth.h"

#define MAX_IN 65536
#define AUD    "https://app.d"
#define ISS    "https://login.d/t1/v2.0"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static const char *const paths[] = {"/",      "/health", "/health/x", "/healthz", "/.auth/me",
                                    "/a/b/c", "/API/",   "//x",       ""};
static const char *const targets[] = {"/",         "/a?b=c&d=%20", "//evil.example",
                                      "http://x/", NULL,           "/\xc3\xa9?\r\n"};

static int printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

/* No control bytes (what a header value must not hold); other bytes are the claim's UTF-8. */
static int no_ctl(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static void check_decision(const rp_easyauth *c, const char *path, const json_t *claims, int xhr,
                           const rp_easyauth_decision *dec, rp_easyauth_verdict v)
{
    const char *prefix = rp_easyauth_api_prefix(c);
    char head[RP_EASYAUTH_PREFIX_MAX + 64];
    size_t hn;

    if (v != dec->verdict || (int)v < RP_EA_PASS || v > RP_EA_REDIRECT)
        abort();
    if (memchr(dec->reason, '\0', sizeof(dec->reason)) == NULL || dec->reason[0] == '\0' ||
        !printable(dec->reason))
        abort();
    if (memchr(dec->location, '\0', sizeof(dec->location)) == NULL)
        abort();
    if (!rp_easyauth_enabled(c) || rp_easyauth_excluded(c, path)) {
        if (v != RP_EA_ANON)
            abort();
    }
    if (v == RP_EA_PASS && claims == NULL)
        abort();
    if (xhr && v == RP_EA_REDIRECT)
        abort();
    if (v != RP_EA_REDIRECT) {
        if (dec->location[0] != '\0')
            abort();
        return;
    }
    hn = (size_t)snprintf(head, sizeof(head), "%s/login/aad?post_login_redirect_uri=", prefix);
    if (strncmp(dec->location, head, hn) != 0 || strlen(dec->location) <= hn)
        abort();
    for (const char *p = dec->location + hn; *p != '\0'; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '%') {
            if (!((p[1] >= '0' && p[1] <= '9') || (p[1] >= 'A' && p[1] <= 'F')) ||
                !((p[2] >= '0' && p[2] <= '9') || (p[2] >= 'A' && p[2] <= 'F')))
                abort();
            p += 2;
        } else if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
                     ch == '~')) {
            abort();
        }
    }
    /* The login page never sends the user elsewhere: the target is a local path. */
    if (strncmp(dec->location + hn, "%2F", 3) != 0 || strncmp(dec->location + hn, "%2F%2F", 6) == 0)
        abort();
}

static void check_principal(const json_t *claims)
{
    rp_easyauth_principal pr;
    int rc = rp_easyauth_principal_build(claims, &pr);
    json_t *me = rp_easyauth_me(claims, "tok");

    if (me != NULL && (!json_is_array(me) || json_array_size(me) != 1))
        abort();
    json_decref(me);
    if (pr.idp == NULL || strcmp(pr.idp, "aad") != 0)
        abort();
    if (rc != 0) {
        if ((rc != RP_EINVAL && rc != RP_ETOOBIG && rc != RP_ENOMEM) || pr.principal != NULL ||
            pr.id != NULL || pr.name != NULL)
            abort();
        if (!json_is_object(claims) && rc != RP_EINVAL)
            abort();
        return;
    }
    {
        size_t len = strlen(pr.principal), pad = 0;
        unsigned char *raw;
        json_t *doc;
        int dn;

        if (len == 0 || len > RP_EASYAUTH_HEADER_MAX || len % 4 != 0)
            abort();
        for (size_t i = 0; i < len; i++) {
            char ch = pr.principal[i];
            if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '+' || ch == '/' ||
                  (ch == '=' && i >= len - 2)))
                abort();
        }
        pad = (pr.principal[len - 1] == '=') + (pr.principal[len - 2] == '=');
        raw = malloc(len);
        if (raw == NULL)
            abort();
        dn = EVP_DecodeBlock(raw, (const unsigned char *)pr.principal, (int)len);
        if (dn < 0 || (size_t)dn < pad)
            abort();
        doc = json_loadb((const char *)raw, (size_t)dn - pad, JSON_ALLOW_NUL, NULL);
        free(raw);
        if (doc == NULL || !json_is_string(json_object_get(doc, "auth_typ")) ||
            strcmp(json_string_value(json_object_get(doc, "auth_typ")), "aad") != 0 ||
            !json_is_array(json_object_get(doc, "claims")) ||
            json_array_size(json_object_get(doc, "claims")) > RP_EASYAUTH_CLAIMS_MAX)
            abort();
        json_decref(doc);
    }
    if (pr.id != NULL && (strlen(pr.id) > RP_EASYAUTH_NAME_MAX || !no_ctl(pr.id)))
        abort();
    if (pr.name != NULL && (strlen(pr.name) > RP_EASYAUTH_NAME_MAX || !no_ctl(pr.name)))
        abort();
    rp_easyauth_principal_free(&pr);
}

/* A claims set built to pass issuer and audience, with the first listed ids where there are
 * lists; the lists' checks then decide. */
static json_t *good_claims(const json_t *view)
{
    const json_t *aad =
        json_object_get(json_object_get(view, "identityProviders"), "azureActiveDirectory");
    const json_t *reg = json_object_get(aad, "registration"),
                 *val = json_object_get(aad, "validation");
    const json_t *iss = json_object_get(reg, "openIdIssuer");
    const json_t *app = json_array_get(
        json_object_get(json_object_get(val, "jwtClaimChecks"), "allowedClientApplications"), 0);
    const json_t *oid = json_array_get(
        json_object_get(json_object_get(json_object_get(val, "defaultAuthorizationPolicy"),
                                        "allowedPrincipals"),
                        "identities"),
        0);

    /* No openIdIssuer in the view: rampart's issuer is the one. */
    return json_pack("{s:s,s:s,s:O*,s:O*,s:s,s:[s,s]}", "iss",
                     json_is_string(iss) ? json_string_value(iss) : ISS, "aud", AUD, "appid", app,
                     "oid", oid, "name", "n", "roles", "r1", "r2");
}

/* Runs every probe on c; when other is given, it must decide each one the same way. */
static void probe(const rp_easyauth *c, const rp_easyauth *other, json_t *const *claims,
                  size_t nclaims)
{
    static rp_easyauth_decision dec, dec2;

    for (size_t p = 0; p < sizeof(paths) / sizeof(paths[0]); p++) {
        for (size_t k = 0; k <= nclaims; k++) {
            const json_t *cl = k < nclaims ? claims[k] : NULL;
            const char *target = targets[(p + k) % (sizeof(targets) / sizeof(targets[0]))];

            for (int xhr = 0; xhr < 2; xhr++) {
                rp_easyauth_verdict v = rp_easyauth_decide(
                    c, paths[p], target, cl, k == nclaims ? "expired" : NULL, xhr, &dec);

                check_decision(c, paths[p], cl, xhr, &dec, v);
                if (other == NULL)
                    continue;
                if (rp_easyauth_decide(other, paths[p], target, cl, NULL, xhr, &dec2) != v ||
                    strcmp(dec.location, dec2.location) != 0)
                    abort();
            }
        }
        if (other != NULL &&
            (rp_easyauth_excluded(c, paths[p]) != rp_easyauth_excluded(other, paths[p]) ||
             rp_easyauth_is_auth_path(c, paths[p]) != rp_easyauth_is_auth_path(other, paths[p])))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static char buf[MAX_IN + 1];
    const char *part[3] = {NULL, NULL, NULL};
    size_t len[3] = {0, 0, 0}, k = 0, start = 0;
    json_t *base = NULL, *patch = NULL, *cl = NULL, *view = NULL, *view2 = NULL;
    json_t *claims[4] = {NULL, NULL, NULL, NULL};
    rp_easyauth *c = (rp_easyauth *)1, *c2 = NULL;
    char err[256];
    size_t nclaims = 0;
    int rc;

    if (n > MAX_IN)
        return 0;
    memcpy(buf, d, n);
    buf[n] = '\0';
    for (size_t i = 0; i <= n && k < 3; i++) {
        if (i < n && buf[i] != '\0')
            continue;
        part[k] = buf + start;
        len[k++] = i - start;
        start = i + 1;
    }
    base = json_loadb(part[0], len[0], JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (part[1] != NULL)
        patch = json_loadb(part[1], len[1], JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (part[2] != NULL)
        cl = json_loadb(part[2], len[2], JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

    if (cl != NULL)
        check_principal(cl);
    if (base != NULL)
        check_principal(base); /* settings text is as good a hostile claims set as any */

    err[0] = 'x';
    err[1] = '\0';
    rc = rp_easyauth_build(base, patch, AUD, ISS, &c, err, sizeof(err));
    if (rc != 0) {
        if ((rc != RP_EINVAL && rc != RP_ENOMEM) || c != (rp_easyauth *)1 || !printable(err) ||
            (rc == RP_EINVAL && err[0] == '\0'))
            abort();
        goto out;
    }
    if (c == NULL || c == (rp_easyauth *)1 || err[0] != '\0')
        abort();
    view = rp_easyauth_view(c);
    if (view == NULL)
        abort();
    claims[nclaims++] = good_claims(view);
    claims[nclaims++] = json_pack("{s:s,s:s}", "iss", ISS, "aud", AUD);
    claims[nclaims++] = json_pack("{s:s,s:[s,s],s:s}", "iss", ISS, "aud", "x", "cid", "appid", "a");
    if (cl != NULL)
        claims[nclaims++] = json_incref(cl);
    for (size_t i = 0; i < nclaims; i++)
        if (claims[i] == NULL)
            abort();
    probe(c, NULL, claims, nclaims);

    /* The view builds into the same behaviour and shows itself again. */
    if (rp_easyauth_build(view, NULL, AUD, ISS, &c2, err, sizeof(err)) != 0)
        abort();
    view2 = rp_easyauth_view(c2);
    if (view2 == NULL || !json_equal(view, view2))
        abort();
    probe(c, c2, claims, nclaims);
    if (strcmp(rp_easyauth_api_prefix(c), rp_easyauth_api_prefix(c2)) != 0 ||
        rp_easyauth_enabled(c) != rp_easyauth_enabled(c2) ||
        rp_easyauth_token_store(c) != rp_easyauth_token_store(c2))
        abort();
    for (size_t i = 0; i < nclaims; i++)
        check_principal(claims[i]);
out:
    for (size_t i = 0; i < nclaims; i++)
        json_decref(claims[i]);
    json_decref(view2);
    json_decref(view);
    rp_easyauth_unref(c2);
    if (c != (rp_easyauth *)1)
        rp_easyauth_unref(c);
    json_decref(cl);
    json_decref(patch);
    json_decref(base);
    return 0;
}
