/*
 * easyauth_test.c - built-in authentication (src/sites/easyauth.c): defaults, every accepted
 * property shown back and round-tripped through the view, every refusal naming its property,
 * merge-patch semantics, each branch of the decision (issuer, audience via app audience /
 * clientId / allowedAudiences, client application and identity lists, unauthenticated actions,
 * xhr, excluded paths as whole segments), the redirect Location, the principal headers decoded
 * back (flattened claims, long claim types, ID and NAME fallbacks, header injection, the 16 KiB
 * cap), /.auth/me, and allocation failure during build and principal construction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/err.h"
#include "sites/easyauth.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUD "https://app.d"
#define ISS "https://login.d/t1/v2.0"

static json_t *J(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);

    if (j == NULL)
        fprintf(stderr, "bad test JSON: %s: %s\n", je.text, text);
    assert_non_null(j);
    return j;
}

static rp_easyauth *build(const char *base, const char *patch, int want, const char *msg)
{
    json_t *b = base ? J(base) : NULL, *p = patch ? J(patch) : NULL;
    rp_easyauth *c = NULL;
    char err[300] = "x";
    int rc = rp_easyauth_build(b, p, AUD, ISS, &c, err, sizeof(err));

    json_decref(b);
    json_decref(p);
    if (rc != want || (msg != NULL && strstr(err, msg) == NULL))
        fprintf(stderr, "base %s patch %s: rc %d err '%s' (want %d '%s')\n", base ? base : "-",
                patch ? patch : "-", rc, err, want, msg ? msg : "");
    assert_int_equal(rc, want);
    if (msg != NULL)
        assert_non_null(strstr(err, msg));
    if (want == 0) {
        assert_non_null(c);
        assert_string_equal(err, "");
    } else {
        assert_null(c);
    }
    return c;
}

/* The decision on path with claims given as JSON text (NULL = none). */
static rp_easyauth_verdict decide(const rp_easyauth *c, const char *path, const char *claims,
                                  rp_easyauth_decision *d)
{
    json_t *j = claims ? J(claims) : NULL;
    rp_easyauth_verdict v = rp_easyauth_decide(c, path, NULL, j, NULL, 0, d);

    json_decref(j);
    assert_int_equal(v, d->verdict);
    return v;
}

static void assert_json(const json_t *got, const char *want)
{
    json_t *w = J(want);

    if (!json_equal(got, w)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(stderr, "got  %s\nwant %s\n", g, want);
        free(g);
    }
    assert_true(json_equal(got, w));
    json_decref(w);
}

#define ON "{\"platform\":{\"enabled\":true}"

/* ---- settings ---- */

static void test_defaults(void **state)
{
    rp_easyauth *c = build(NULL, NULL, 0, NULL);
    rp_easyauth_decision d;
    json_t *v;

    (void)state;
    assert_int_equal(rp_easyauth_enabled(c), 0);
    assert_string_equal(rp_easyauth_api_prefix(c), "/.auth");
    assert_null(rp_easyauth_secret_setting(c));
    assert_int_equal(rp_easyauth_token_store(c), 0);
    assert_int_equal(rp_easyauth_cookie_seconds(c), 8 * 3600);
    assert_int_equal(decide(c, "/", NULL, &d), RP_EA_ANON);
    assert_string_equal(d.reason, "authentication disabled");
    assert_int_equal(rp_easyauth_is_auth_path(c, "/.auth/me"), 0); /* the app's own path */
    assert_json(rp_easyauth_stored(c), "{}");
    v = rp_easyauth_view(c);
    assert_json(
        v, "{\"platform\":{\"enabled\":false},\"globalValidation\":{\"requireAuthentication\":"
           "true,\"unauthenticatedClientAction\":\"Return401\",\"excludedPaths\":[]},"
           "\"httpSettings\":{\"requireHttps\":true,\"routes\":{\"apiPrefix\":\"/.auth\"}},"
           "\"identityProviders\":{\"azureActiveDirectory\":{\"enabled\":true,\"registration\":{},"
           "\"validation\":{\"allowedAudiences\":[],"
           "\"jwtClaimChecks\":{\"allowedClientApplications\":[]},\"defaultAuthorizationPolicy\":"
           "{\"allowedApplications\":[],\"allowedPrincipals\":{\"identities\":[]}}}}},"
           "\"login\":{\"tokenStore\":{\"enabled\":false},\"cookieExpiration\":{\"convention\":"
           "\"FixedTime\",\"timeToExpiration\":\"08:00:00\"}}}");
    json_decref(v);
    rp_easyauth_unref(c);

    /* NULL reads as the defaults. */
    assert_int_equal(rp_easyauth_enabled(NULL), 0);
    assert_string_equal(rp_easyauth_api_prefix(NULL), "/.auth");
    assert_int_equal(rp_easyauth_excluded(NULL, "/"), 0);
    assert_int_equal(rp_easyauth_is_auth_path(NULL, "/.auth"), 0);
    assert_int_equal(rp_easyauth_decide(NULL, "/", "/", NULL, NULL, 0, &d), RP_EA_ANON);
    rp_easyauth_unref(NULL);
    assert_null(rp_easyauth_ref(NULL));

    /* Enabled with nothing else: authentication required, 401. */
    c = build(ON "}", NULL, 0, NULL);
    assert_int_equal(rp_easyauth_enabled(c), 1);
    assert_int_equal(decide(c, "/", NULL, &d), RP_EA_401);
    assert_string_equal(d.reason, "no valid token (missing)");
    assert_string_equal(d.location, "");
    assert_int_equal(rp_easyauth_is_auth_path(c, "/.auth"), 1);
    assert_int_equal(rp_easyauth_is_auth_path(c, "/.auth/me"), 1);
    assert_int_equal(rp_easyauth_is_auth_path(c, "/.AUTH/login/aad"), 1);
    assert_int_equal(rp_easyauth_is_auth_path(c, "/.authx"), 0);
    assert_int_equal(rp_easyauth_is_auth_path(c, "/x/.auth"), 0);
    assert_ptr_equal(rp_easyauth_ref(c), c);
    rp_easyauth_unref(c);
    rp_easyauth_unref(c);
}

static const char full[] =
    "{\"platform\":{\"enabled\":true},"
    "\"globalValidation\":{\"requireAuthentication\":true,\"unauthenticatedClientAction\":"
    "\"redirecttologinpage\",\"redirectToProvider\":\"AAD\",\"excludedPaths\":[\"/health\","
    "\"/Public/\"]},"
    "\"httpSettings\":{\"requireHttps\":true,\"routes\":{\"apiPrefix\":\"/_auth/v1\"}},"
    "\"identityProviders\":{\"azureActiveDirectory\":{\"enabled\":true,\"registration\":{"
    "\"openIdIssuer\":\"https://login.d/t2/v2.0\",\"clientId\":\"cid-1\","
    "\"clientSecretSettingName\":\"MICROSOFT_PROVIDER_AUTHENTICATION_SECRET\"},\"validation\":{"
    "\"allowedAudiences\":[\"api://one\",\"api://two\"],\"jwtClaimChecks\":{"
    "\"allowedClientApplications\":[\"app-a\",\"app-b\"]},\"defaultAuthorizationPolicy\":{"
    "\"allowedApplications\":[\"app-a\"],\"allowedPrincipals\":{\"identities\":[\"oid-1\"]}}}}},"
    "\"login\":{\"tokenStore\":{\"enabled\":true},\"cookieExpiration\":{\"convention\":"
    "\"FixedTime\",\"timeToExpiration\":\"1.02:03:04\"}}}";

static void test_accepts_everything(void **state)
{
    rp_easyauth *c = build(full, NULL, 0, NULL), *c2;
    json_t *v, *v2;
    char err[200];

    (void)state;
    assert_int_equal(rp_easyauth_enabled(c), 1);
    assert_string_equal(rp_easyauth_api_prefix(c), "/_auth/v1");
    assert_string_equal(rp_easyauth_secret_setting(c), "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET");
    assert_int_equal(rp_easyauth_token_store(c), 1);
    assert_int_equal(rp_easyauth_cookie_seconds(c), 86400 + 2 * 3600 + 3 * 60 + 4);
    assert_int_equal(rp_easyauth_is_auth_path(c, "/_auth/v1/me"), 1);
    assert_int_equal(rp_easyauth_is_auth_path(c, "/.auth/me"), 0);
    v = rp_easyauth_view(c);
    assert_json(
        v, "{\"platform\":{\"enabled\":true},\"globalValidation\":{\"requireAuthentication\":true,"
           "\"unauthenticatedClientAction\":\"RedirectToLoginPage\",\"redirectToProvider\":"
           "\"azureactivedirectory\",\"excludedPaths\":[\"/health\",\"/Public/\"]},"
           "\"httpSettings\":{\"requireHttps\":true,\"routes\":{\"apiPrefix\":\"/_auth/v1\"}},"
           "\"identityProviders\":{\"azureActiveDirectory\":{\"enabled\":true,\"registration\":{"
           "\"openIdIssuer\":\"https://login.d/t2/v2.0\",\"clientId\":\"cid-1\","
           "\"clientSecretSettingName\":\"MICROSOFT_PROVIDER_AUTHENTICATION_SECRET\"},"
           "\"validation\":{\"allowedAudiences\":[\"api://one\",\"api://two\"],"
           "\"jwtClaimChecks\":{\"allowedClientApplications\":[\"app-a\",\"app-b\"]},"
           "\"defaultAuthorizationPolicy\":{\"allowedApplications\":[\"app-a\"],"
           "\"allowedPrincipals\":{\"identities\":[\"oid-1\"]}}}}},"
           "\"login\":{\"tokenStore\":{\"enabled\":true},\"cookieExpiration\":{\"convention\":"
           "\"FixedTime\",\"timeToExpiration\":\"1.02:03:04\"}}}");
    /* The view builds into the same settings. */
    assert_int_equal(rp_easyauth_build(v, NULL, AUD, ISS, &c2, err, sizeof(err)), 0);
    v2 = rp_easyauth_view(c2);
    assert_true(json_equal(v, v2));
    json_decref(v2);
    rp_easyauth_unref(c2);
    json_decref(v);
    rp_easyauth_unref(c);

    /* The defaults' view builds too, and so does a view of explicit nulls. */
    c = build(NULL, NULL, 0, NULL);
    v = rp_easyauth_view(c);
    assert_int_equal(rp_easyauth_build(v, NULL, AUD, ISS, &c2, err, sizeof(err)), 0);
    assert_int_equal(rp_easyauth_enabled(c2), 0);
    rp_easyauth_unref(c2);
    json_decref(v);
    rp_easyauth_unref(c);
    c = build("{\"platform\":null,\"login\":{\"tokenStore\":null}}", NULL, 0, NULL);
    assert_json(rp_easyauth_stored(c), "{\"login\":{}}");
    rp_easyauth_unref(c);

    /* Other accepted spellings and edge values. */
    rp_easyauth_unref(build(ON ",\"globalValidation\":{\"unauthenticatedClientAction\":"
                               "\"allowanonymous\",\"redirectToProvider\":\"azureActiveDirectory\","
                               "\"excludedPaths\":[]}}",
                            NULL, 0, NULL));
    rp_easyauth_unref(build(ON ",\"httpSettings\":{\"routes\":{\"apiPrefix\":\"/a.b_c~d-e/f\"}}}",
                            NULL, 0, NULL));
    rp_easyauth_unref(build(ON ",\"identityProviders\":{\"azureActiveDirectory\":{\"registration\":"
                               "{\"openIdIssuer\":\"https://sts.windows.net/tenant-guid/\"}}}}",
                            NULL, 0, NULL));
    rp_easyauth_unref(build(ON ",\"identityProviders\":{}}", NULL, 0, NULL));
    rp_easyauth_unref(build(ON ",\"login\":{}}", NULL, 0, NULL));
}

typedef struct refusal {
    const char *json;
    const char *msg;
} refusal;

#define AADV "{\"identityProviders\":{\"azureActiveDirectory\":{\"validation\":"
#define AADR "{\"identityProviders\":{\"azureActiveDirectory\":{\"registration\":"

static void test_refusals(void **state)
{
    static const refusal bad[] = {
        {"[]", "auth settings must be an object"},
        {"{\"plat\":{}}", "unknown property 'plat'"},
        {"{\"platform\":true}", "platform must be an object"},
        {"{\"platform\":{\"enabled\":1}}", "platform.enabled must be true or false"},
        {"{\"platform\":{\"runtimeVersion\":\"~1\"}}", "platform: unknown member 'runtimeVersion'"},
        {"{\"globalValidation\":[]}", "globalValidation must be an object"},
        {"{\"globalValidation\":{\"requireAuthentication\":\"yes\"}}",
         "globalValidation.requireAuthentication must be true or false"},
        {"{\"globalValidation\":{\"unauthenticatedClientAction\":\"Return404\"}}",
         "globalValidation.unauthenticatedClientAction must be"},
        {"{\"globalValidation\":{\"unauthenticatedClientAction\":1}}",
         "globalValidation.unauthenticatedClientAction must be"},
        {"{\"globalValidation\":{\"redirectToProvider\":\"google\"}}",
         "globalValidation.redirectToProvider must be"},
        {"{\"globalValidation\":{\"excludedPaths\":\"/health\"}}",
         "globalValidation.excludedPaths must be an array"},
        {"{\"globalValidation\":{\"excludedPaths\":[\"health\"]}}",
         "globalValidation.excludedPaths[0]: a path starts with '/'"},
        {"{\"globalValidation\":{\"excludedPaths\":[\"/a\",5]}}",
         "globalValidation.excludedPaths[1]: a path starts with '/'"},
        {"{\"globalValidation\":{\"excludedPaths\":[\"/a?b=1\"]}}", "excludedPaths[0]: a path"},
        {"{\"globalValidation\":{\"excludedPaths\":[\"/a\\nb\"]}}", "excludedPaths[0]: a path"},
        {"{\"globalValidation\":{\"excludedPaths\":[\"/a%20b\"]}}", "matched decoded"},
        {"{\"globalValidation\":{\"excludedPaths\":[\"/a/../b\"]}}", "matched decoded"},
        {"{\"globalValidation\":{\"unknown\":1}}", "globalValidation: unknown member 'unknown'"},
        {"{\"httpSettings\":{\"requireHttps\":false}}",
         "httpSettings.requireHttps must be true: rampart serves apps over HTTPS only"},
        {"{\"httpSettings\":{\"requireHttps\":\"true\"}}",
         "httpSettings.requireHttps must be true or false"},
        {"{\"httpSettings\":{\"forwardProxy\":{}}}", "httpSettings: unknown member 'forwardProxy'"},
        {"{\"httpSettings\":{\"routes\":[]}}", "httpSettings.routes must be an object"},
        {"{\"httpSettings\":{\"routes\":{\"x\":1}}}", "httpSettings.routes: unknown member 'x'"},
        {"{\"httpSettings\":{\"routes\":{\"apiPrefix\":\"/\"}}}", "httpSettings.routes.apiPrefix"},
        {"{\"httpSettings\":{\"routes\":{\"apiPrefix\":\"auth\"}}}",
         "httpSettings.routes.apiPrefix"},
        {"{\"httpSettings\":{\"routes\":{\"apiPrefix\":\"/a b\"}}}",
         "httpSettings.routes.apiPrefix"},
        {"{\"httpSettings\":{\"routes\":{\"apiPrefix\":\"/auth/\"}}}",
         "httpSettings.routes.apiPrefix"},
        {"{\"httpSettings\":{\"routes\":{\"apiPrefix\":\"/a//b\"}}}",
         "httpSettings.routes.apiPrefix"},
        {"{\"httpSettings\":{\"routes\":{\"apiPrefix\":\"/a/../b\"}}}",
         "httpSettings.routes.apiPrefix"},
        {"{\"httpSettings\":{\"routes\":{\"apiPrefix\":\"/%61\"}}}",
         "httpSettings.routes.apiPrefix"},
        {"{\"httpSettings\":{\"routes\":{\"apiPrefix\":7}}}", "httpSettings.routes.apiPrefix"},
        {"{\"httpSettings\":{\"routes\":{\"apiPrefix\":\"/"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}}}",
         "httpSettings.routes.apiPrefix"},
        {"{\"identityProviders\":[]}", "identityProviders must be an object"},
        {"{\"identityProviders\":{\"google\":{}}}",
         "identityProviders: unknown member 'google' (azureActiveDirectory"},
        {"{\"identityProviders\":{\"azureActiveDirectory\":{},\"github\":{}}}",
         "identityProviders: unknown member 'github'"},
        {"{\"identityProviders\":{\"azureActiveDirectory\":{\"enabled\":\"no\"}}}",
         "identityProviders.azureActiveDirectory.enabled must be true or false"},
        {"{\"identityProviders\":{\"azureActiveDirectory\":{\"login\":{}}}}",
         "identityProviders.azureActiveDirectory: unknown member 'login'"},
        {AADR "{\"clientSecret\":\"hunter2\"}}}}",
         "identityProviders.azureActiveDirectory.registration.clientSecret: secret values are "
         "never stored in auth settings; use clientSecretSettingName"},
        {AADR "{\"clientSecretSettingName\":\"MY-SECRET\"}}}}",
         "registration.clientSecretSettingName must be an app setting name"},
        {AADR "{\"clientSecretSettingName\":\"\"}}}}",
         "registration.clientSecretSettingName must be 1 to 128 bytes"},
        {AADR "{\"clientId\":5}}}}", "registration.clientId must be a string"},
        {AADR "{\"clientId\":\"a\\u0001\"}}}}",
         "registration.clientId must not hold control characters"},
        {AADR "{\"openIdIssuer\":\"http://login.d/t\"}}}}",
         "registration.openIdIssuer must be an https:// URL"},
        {AADR "{\"openIdIssuer\":\"https://\"}}}}", "registration.openIdIssuer must be"},
        {AADR "{\"openIdIssuer\":\"https://a.d/t?x=1\"}}}}", "registration.openIdIssuer must be"},
        {AADR "{\"openIdIssuer\":\"https://login.microsoftonline.com/common/v2.0\"}}}}",
         "registration.openIdIssuer: a multi-tenant issuer (/common)"},
        {AADR "{\"openIdIssuer\":\"https://login.microsoftonline.com/Organizations\"}}}}",
         "multi-tenant issuer (/organizations)"},
        {AADR "{\"clientSecretCertificateThumbprint\":\"AB\"}}}}",
         "registration: unknown member 'clientSecretCertificateThumbprint'"},
        {AADR "[]}}}", "identityProviders.azureActiveDirectory.registration must be an object"},
        {AADV "{\"allowedAudiences\":\"api://x\"}}}}",
         "identityProviders.azureActiveDirectory.validation.allowedAudiences must be an array"},
        {AADV "{\"allowedAudiences\":[\"api://x\",1]}}}}",
         "identityProviders.azureActiveDirectory.validation.allowedAudiences[1] must be a string"},
        {AADV "{\"allowedAudiences\":[\"\"]}}}}", "validation.allowedAudiences[0] must be 1 to"},
        {AADV "{\"jwtClaimChecks\":{\"allowedGroups\":[]}}}}}",
         "validation.jwtClaimChecks.allowedGroups: group checks are not available"},
        {AADV "{\"jwtClaimChecks\":{\"x\":[]}}}}}",
         "validation.jwtClaimChecks: unknown member 'x'"},
        {AADV "{\"jwtClaimChecks\":{\"allowedClientApplications\":[true]}}}}}",
         "validation.jwtClaimChecks.allowedClientApplications[0] must be a string"},
        {AADV "{\"defaultAuthorizationPolicy\":{\"allowedApplications\":{}}}}}}",
         "validation.defaultAuthorizationPolicy.allowedApplications must be an array"},
        {AADV "{\"defaultAuthorizationPolicy\":{\"allowedPrincipals\":{\"groups\":[\"g\"]}}}}}}",
         "validation.defaultAuthorizationPolicy.allowedPrincipals.groups: group checks"},
        {AADV "{\"defaultAuthorizationPolicy\":{\"allowedPrincipals\":{\"identities\":[null]}}}}}}",
         "defaultAuthorizationPolicy.allowedPrincipals.identities[0] must be a string"},
        {AADV "{\"defaultAuthorizationPolicy\":{\"allowedPrincipals\":[]}}}}}",
         "defaultAuthorizationPolicy.allowedPrincipals must be an object"},
        {AADV "{\"other\":1}}}}", "validation: unknown member 'other'"},
        {"{\"login\":{\"tokenStore\":{\"enabled\":1}}}", "login.tokenStore.enabled must be true"},
        {"{\"login\":{\"tokenStore\":{\"tokenRefreshExtensionHours\":72}}}",
         "login.tokenStore: unknown member 'tokenRefreshExtensionHours'"},
        {"{\"login\":{\"nonce\":{}}}", "login: unknown member 'nonce'"},
        {"{\"login\":{\"cookieExpiration\":{\"convention\":\"IdentityDerived\"}}}",
         "convention must be \"FixedTime\""},
        {"{\"login\":{\"cookieExpiration\":{\"timeToExpiration\":\"00:04:59\"}}}",
         "between 00:05:00 and 7.00:00:00"},
        {"{\"login\":{\"cookieExpiration\":{\"timeToExpiration\":\"7.00:00:01\"}}}",
         "between 00:05:00 and 7.00:00:00"},
        {"{\"login\":{\"cookieExpiration\":{\"timeToExpiration\":\"8h\"}}}",
         "timeToExpiration must be"},
        {"{\"login\":{\"cookieExpiration\":{\"timeToExpiration\":\"1:00:00\"}}}",
         "timeToExpiration must be"},
        {"{\"login\":{\"cookieExpiration\":{\"timeToExpiration\":\"00:60:00\"}}}",
         "timeToExpiration must be"},
        {"{\"login\":{\"cookieExpiration\":{\"timeToExpiration\":\".01:00:00\"}}}",
         "timeToExpiration must be"},
        {"{\"login\":{\"cookieExpiration\":{\"timeToExpiration\":\"01:00:00:00\"}}}",
         "timeToExpiration must be"},
        {"{\"login\":{\"cookieExpiration\":{\"timeToExpiration\":3600}}}",
         "timeToExpiration must be a string"},
        {"{\"login\":{\"cookieExpiration\":{\"sliding\":true}}}",
         "login.cookieExpiration: unknown member 'sliding'"},
        {"{\"\\u0001bad\":1}", "unknown property '?bad'"},
    };
    char big[8192];
    size_t o;
    int i;

    (void)state;
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
        build(bad[k].json, NULL, RP_EINVAL, bad[k].msg);
    build(NULL, "[1]", RP_EINVAL, "auth settings must be an object");

    /* 65 excluded paths; one of 257 bytes. */
    o = (size_t)snprintf(big, sizeof(big), "{\"globalValidation\":{\"excludedPaths\":[");
    for (i = 0; i < RP_EASYAUTH_PATHS_MAX + 1; i++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, "%s\"/p%d\"", i ? "," : "", i);
    snprintf(big + o, sizeof(big) - o, "]}}");
    build(big, NULL, RP_EINVAL, "globalValidation.excludedPaths: at most 64 paths");
    o = (size_t)snprintf(big, sizeof(big), "{\"globalValidation\":{\"excludedPaths\":[\"/");
    memset(big + o, 'a', RP_EASYAUTH_PATH_LEN_MAX);
    o += RP_EASYAUTH_PATH_LEN_MAX;
    snprintf(big + o, sizeof(big) - o, "\"]}}");
    build(big, NULL, RP_EINVAL, "globalValidation.excludedPaths[0]: at most 256 bytes");
    big[o - 1] = '"';
    big[o] = ']';
    big[o + 1] = '}';
    big[o + 2] = '}';
    big[o + 3] = '\0';
    rp_easyauth_unref(build(big, NULL, 0, NULL)); /* exactly 256 */

    /* allowedAudiences: 501 characters in all, then exactly 500. */
    o = (size_t)snprintf(big, sizeof(big), AADV "{\"allowedAudiences\":[");
    for (i = 0; i < 5; i++) {
        o += (size_t)snprintf(big + o, sizeof(big) - o, "%s\"", i ? "," : "");
        memset(big + o, 'a' + i, 100);
        o += 100;
        big[o++] = '"';
    }
    snprintf(big + o, sizeof(big) - o, ",\"z\"]}}}}");
    build(big, NULL, RP_EINVAL,
          "identityProviders.azureActiveDirectory.validation.allowedAudiences: at most 500 "
          "characters in all (501 given)");
    snprintf(big + o, sizeof(big) - o, "]}}}}");
    rp_easyauth_unref(build(big, NULL, 0, NULL));

    /* 65 identities; one id of 129 bytes. */
    o = (size_t)snprintf(big, sizeof(big),
                         AADV "{\"defaultAuthorizationPolicy\":{\"allowedPrincipals\":{"
                              "\"identities\":[");
    for (i = 0; i < RP_EASYAUTH_LIST_MAX + 1; i++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, "%s\"id%d\"", i ? "," : "", i);
    snprintf(big + o, sizeof(big) - o, "]}}}}}}");
    build(big, NULL, RP_EINVAL, "allowedPrincipals.identities: at most 64 entries");
    o = (size_t)snprintf(big, sizeof(big),
                         AADV "{\"jwtClaimChecks\":{\"allowedClientApplications\":[\"");
    memset(big + o, 'c', RP_EASYAUTH_ID_MAX + 1);
    o += RP_EASYAUTH_ID_MAX + 1;
    snprintf(big + o, sizeof(big) - o, "\"]}}}}}");
    build(big, NULL, RP_EINVAL, "allowedClientApplications[0] must be 1 to 128 bytes");

    /* A string with an embedded NUL is refused, not cut. */
    {
        json_t *j = J(AADR "{\"clientId\":\"x\"}}}}");
        rp_easyauth *c = NULL;
        char err[200];

        json_object_set_new(json_object_get(json_object_get(json_object_get(j, "identityProviders"),
                                                            "azureActiveDirectory"),
                                            "registration"),
                            "clientId", json_stringn("a\0b", 3));
        assert_int_equal(rp_easyauth_build(j, NULL, AUD, ISS, &c, err, sizeof(err)), RP_EINVAL);
        assert_null(c);
        assert_non_null(strstr(err, "registration.clientId must not hold control characters"));
        json_decref(j);
    }
}

static void test_merge(void **state)
{
    rp_easyauth *c;
    rp_easyauth_decision d;

    (void)state;
    /* A nested member replaces only itself; siblings stay. */
    c = build(ON ",\"globalValidation\":{\"excludedPaths\":[\"/health\"],"
                 "\"unauthenticatedClientAction\":\"Return401\"}}",
              "{\"globalValidation\":{\"unauthenticatedClientAction\":\"Return403\"}}", 0, NULL);
    assert_json(rp_easyauth_stored(c),
                "{\"platform\":{\"enabled\":true},\"globalValidation\":{\"excludedPaths\":["
                "\"/health\"],\"unauthenticatedClientAction\":\"Return403\"}}");
    assert_int_equal(decide(c, "/x", NULL, &d), RP_EA_403);
    assert_int_equal(decide(c, "/health", NULL, &d), RP_EA_ANON);
    rp_easyauth_unref(c);

    /* null removes a member: its default is back. */
    c = build(ON ",\"globalValidation\":{\"excludedPaths\":[\"/health\"],"
                 "\"unauthenticatedClientAction\":\"Return403\"}}",
              "{\"globalValidation\":{\"unauthenticatedClientAction\":null,\"excludedPaths\":null},"
              "\"login\":null}",
              0, NULL);
    assert_json(rp_easyauth_stored(c), "{\"platform\":{\"enabled\":true},\"globalValidation\":{}}");
    assert_int_equal(decide(c, "/health", NULL, &d), RP_EA_401);
    rp_easyauth_unref(c);

    /* Arrays and scalars replace; a new object is copied without its nulls. */
    c = build("{\"globalValidation\":{\"excludedPaths\":[\"/a\",\"/b\"]}}",
              "{\"globalValidation\":{\"excludedPaths\":[\"/c\"]},\"platform\":{\"enabled\":true,"
              "\"x\":null},\"login\":{\"tokenStore\":{\"enabled\":true}}}",
              0, NULL);
    assert_json(rp_easyauth_stored(c),
                "{\"globalValidation\":{\"excludedPaths\":[\"/c\"]},\"platform\":{\"enabled\":"
                "true},\"login\":{\"tokenStore\":{\"enabled\":true}}}");
    assert_int_equal(rp_easyauth_excluded(c, "/a"), 0);
    assert_int_equal(rp_easyauth_excluded(c, "/c"), 1);
    rp_easyauth_unref(c);

    /* An object replaces a scalar and the other way round; then the type is checked. */
    build("{\"platform\":{\"enabled\":true}}", "{\"platform\":false}", RP_EINVAL,
          "platform must be an object");
    c = build("{\"platform\":false}", "{\"platform\":{\"enabled\":true}}", 0, NULL);
    assert_int_equal(rp_easyauth_enabled(c), 1);
    rp_easyauth_unref(c);

    /* Unknown members in the patch are refused after the merge, wherever they are. */
    build(ON "}", "{\"globalValidation\":{\"excludedPath\":[]}}", RP_EINVAL,
          "globalValidation: unknown member 'excludedPath'");
    build(ON "}", "{\"globalValidation\":[]}", RP_EINVAL, "globalValidation must be an object");

    /* The caller's base is not changed. */
    {
        json_t *b = J(ON ",\"login\":{\"tokenStore\":{\"enabled\":false}}}"),
               *p = J("{\"login\":{\"tokenStore\":{\"enabled\":true}}}");
        char err[100];

        assert_int_equal(rp_easyauth_build(b, p, AUD, ISS, &c, err, sizeof(err)), 0);
        assert_int_equal(rp_easyauth_token_store(c), 1);
        assert_json(b, ON ",\"login\":{\"tokenStore\":{\"enabled\":false}}}");
        rp_easyauth_unref(c);
        json_decref(b);
        json_decref(p);
    }
}

/* ---- decision ---- */

#define CL(extra)                                                                                  \
    "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"oid\":\"oid-1\",\"sub\":\"oid-1\",\"appid\":"      \
    "\"app-a\",\"azp\":\"app-a\"" extra "}"

static void test_decide_claims(void **state)
{
    rp_easyauth *c = build(ON "}", NULL, 0, NULL);
    rp_easyauth_decision d;
    json_t *j;

    (void)state;
    assert_int_equal(decide(c, "/", CL(""), &d), RP_EA_PASS);
    assert_string_equal(d.reason, "authenticated");
    /* Issuer: exactly rampart's (a trailing '/' aside). */
    assert_int_equal(decide(c, "/", "{\"iss\":\"https://evil.d/t1/v2.0\",\"aud\":\"" AUD "\"}", &d),
                     RP_EA_401);
    assert_string_equal(d.reason, "token issuer not accepted");
    assert_int_equal(decide(c, "/", "{\"aud\":\"" AUD "\"}", &d), RP_EA_401);
    assert_int_equal(decide(c, "/", "{\"iss\":5,\"aud\":\"" AUD "\"}", &d), RP_EA_401);
    assert_int_equal(decide(c, "/", "{\"iss\":\"" ISS "/\",\"aud\":\"" AUD "\"}", &d), RP_EA_PASS);
    assert_int_equal(decide(c, "/", "{\"iss\":\"https://login.d/t1/v2.\",\"aud\":\"" AUD "\"}", &d),
                     RP_EA_401);
    /* Audience: the app's own, with or without '/', as a string or in an array. */
    assert_int_equal(decide(c, "/", "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "/\"}", &d), RP_EA_PASS);
    assert_int_equal(decide(c, "/", "{\"iss\":\"" ISS "\",\"aud\":[\"x\",\"" AUD "\"]}", &d),
                     RP_EA_PASS);
    assert_int_equal(decide(c, "/", "{\"iss\":\"" ISS "\",\"aud\":\"https://other.d\"}", &d),
                     RP_EA_401);
    assert_string_equal(d.reason, "token audience not accepted");
    assert_int_equal(decide(c, "/", "{\"iss\":\"" ISS "\",\"aud\":[\"x\",1]}", &d), RP_EA_401);
    assert_int_equal(decide(c, "/", "{\"iss\":\"" ISS "\"}", &d), RP_EA_401);
    assert_int_equal(decide(c, "/", "{\"iss\":\"" ISS "\",\"aud\":\"\"}", &d), RP_EA_401);
    assert_int_equal(decide(c, "/", "{\"iss\":\"" ISS "\",\"aud\":\"HTTPS://APP.D\"}", &d),
                     RP_EA_401);
    /* Claims that are not an object count as none. */
    j = json_string("x");
    assert_int_equal(rp_easyauth_decide(c, "/", "/", j, "invalid", 0, &d), RP_EA_401);
    assert_string_equal(d.reason, "no valid token (invalid)");
    json_decref(j);
    rp_easyauth_unref(c);

    /* openIdIssuer replaces rampart's issuer; clientId and allowedAudiences are audiences. */
    c = build(ON ",\"identityProviders\":{\"azureActiveDirectory\":{\"registration\":{"
                 "\"openIdIssuer\":\"https://login.d/t2/v2.0\",\"clientId\":\"cid-1\"},"
                 "\"validation\":{\"allowedAudiences\":[\"api://one\"]}}}}",
              NULL, 0, NULL);
    assert_int_equal(decide(c, "/", CL(""), &d), RP_EA_401); /* rampart's issuer: not this one */
    assert_int_equal(
        decide(c, "/", "{\"iss\":\"https://login.d/t2/v2.0\",\"aud\":\"" AUD "\"}", &d),
        RP_EA_PASS);
    assert_int_equal(decide(c, "/", "{\"iss\":\"https://login.d/t2/v2.0\",\"aud\":\"cid-1\"}", &d),
                     RP_EA_PASS);
    assert_int_equal(
        decide(c, "/", "{\"iss\":\"https://login.d/t2/v2.0\",\"aud\":\"api://one\"}", &d),
        RP_EA_PASS);
    assert_int_equal(
        decide(c, "/", "{\"iss\":\"https://login.d/t2/v2.0\",\"aud\":\"api://two\"}", &d),
        RP_EA_401);
    rp_easyauth_unref(c);

    /* No issuer known at all: nothing passes. */
    {
        json_t *b = J(ON "}"), *cl = J(CL(""));
        char err[100];

        assert_int_equal(rp_easyauth_build(b, NULL, NULL, NULL, &c, err, sizeof(err)), 0);
        assert_int_equal(rp_easyauth_decide(c, "/", NULL, cl, NULL, 0, &d), RP_EA_401);
        assert_string_equal(d.reason, "token issuer not accepted");
        rp_easyauth_unref(c);
        json_decref(b);
        json_decref(cl);
    }

    /* Client application lists and identities: 403, ids compared ignoring case. */
    c = build(ON ",\"identityProviders\":{\"azureActiveDirectory\":{\"validation\":{"
                 "\"jwtClaimChecks\":{\"allowedClientApplications\":[\"APP-A\",\"app-b\"]}}}}}",
              NULL, 0, NULL);
    assert_int_equal(decide(c, "/", CL(""), &d), RP_EA_PASS);
    assert_int_equal(decide(c, "/",
                            "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"appid\":\"app-c\","
                            "\"azp\":\"app-a\"}",
                            &d),
                     RP_EA_403); /* appid first */
    assert_string_equal(d.reason, "client application not allowed");
    assert_int_equal(
        decide(c, "/", "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"azp\":\"app-b\"}", &d),
        RP_EA_PASS); /* azp when there is no appid */
    assert_int_equal(decide(c, "/", "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"}", &d), RP_EA_403);
    rp_easyauth_unref(c);

    c = build(ON ",\"identityProviders\":{\"azureActiveDirectory\":{\"validation\":{"
                 "\"defaultAuthorizationPolicy\":{\"allowedApplications\":[\"app-b\"]}}}}}",
              NULL, 0, NULL);
    assert_int_equal(decide(c, "/", CL(""), &d), RP_EA_403);
    assert_string_equal(d.reason, "application not allowed");
    assert_int_equal(
        decide(c, "/", "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"azp\":\"app-b\"}", &d),
        RP_EA_PASS);
    rp_easyauth_unref(c);

    c = build(ON ",\"identityProviders\":{\"azureActiveDirectory\":{\"validation\":{"
                 "\"defaultAuthorizationPolicy\":{\"allowedApplications\":[\"app-a\"],"
                 "\"allowedPrincipals\":{\"identities\":[\"OID-2\"]}}}}}}",
              NULL, 0, NULL);
    assert_int_equal(decide(c, "/", CL(""), &d), RP_EA_403); /* both policies must pass */
    assert_string_equal(d.reason, "principal not allowed");
    assert_int_equal(decide(c, "/",
                            "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"oid\":\"oid-2\","
                            "\"appid\":\"app-a\"}",
                            &d),
                     RP_EA_PASS);
    assert_int_equal(decide(c, "/",
                            "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"oid\":\"oid-2\","
                            "\"appid\":\"app-b\"}",
                            &d),
                     RP_EA_403);
    assert_int_equal(
        decide(c, "/", "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"appid\":\"app-a\"}", &d),
        RP_EA_403);
    /* A token that fails the audience is unauthenticated (401), not forbidden. */
    assert_int_equal(decide(c, "/", "{\"iss\":\"" ISS "\",\"aud\":\"x\",\"oid\":\"oid-9\"}", &d),
                     RP_EA_401);
    rp_easyauth_unref(c);

    /* Provider switched off: every token is ignored. */
    c = build(ON ",\"identityProviders\":{\"azureActiveDirectory\":{\"enabled\":false}}}", NULL, 0,
              NULL);
    assert_int_equal(decide(c, "/", CL(""), &d), RP_EA_401);
    assert_string_equal(d.reason, "identity provider disabled");
    rp_easyauth_unref(c);
}

static void test_decide_unauthenticated(void **state)
{
    rp_easyauth *c;
    rp_easyauth_decision d;

    (void)state;
    c = build(ON ",\"globalValidation\":{\"unauthenticatedClientAction\":\"AllowAnonymous\"}}",
              NULL, 0, NULL);
    assert_int_equal(decide(c, "/", NULL, &d), RP_EA_ANON);
    assert_string_equal(d.reason, "anonymous allowed: no valid token (missing)");
    assert_int_equal(decide(c, "/", "{\"iss\":\"x\"}", &d), RP_EA_ANON);
    assert_string_equal(d.reason, "anonymous allowed: token issuer not accepted");
    assert_int_equal(decide(c, "/", CL(""), &d), RP_EA_PASS);
    rp_easyauth_unref(c);

    c = build(ON ",\"globalValidation\":{\"requireAuthentication\":false,"
                 "\"unauthenticatedClientAction\":\"Return403\"}}",
              NULL, 0, NULL);
    assert_int_equal(decide(c, "/", NULL, &d), RP_EA_ANON);
    assert_int_equal(decide(c, "/", CL(""), &d), RP_EA_PASS);
    rp_easyauth_unref(c);

    c = build(ON ",\"globalValidation\":{\"unauthenticatedClientAction\":\"Return403\"}}", NULL, 0,
              NULL);
    assert_int_equal(rp_easyauth_decide(c, "/", "/", NULL, "expired", 0, &d), RP_EA_403);
    assert_string_equal(d.reason, "no valid token (expired)");
    assert_int_equal(rp_easyauth_decide(c, "/", "/", NULL, "bad\r\nwhy", 1, &d), RP_EA_403);
    assert_string_equal(d.reason, "no valid token (bad??why)");
    rp_easyauth_unref(c);

    c = build(ON ",\"globalValidation\":{\"unauthenticatedClientAction\":\"RedirectToLoginPage\"}}",
              NULL, 0, NULL);
    assert_int_equal(rp_easyauth_decide(c, "/a/b", "/a/b?x=1&y=a b", NULL, NULL, 0, &d),
                     RP_EA_REDIRECT);
    assert_string_equal(d.location,
                        "/.auth/login/aad?post_login_redirect_uri=%2Fa%2Fb%3Fx%3D1%26y%3Da%20b");
    assert_string_equal(d.reason, "no valid token (missing)");
    /* An XMLHttpRequest gets 401 instead. */
    assert_int_equal(rp_easyauth_decide(c, "/a/b", "/a/b?x=1", NULL, NULL, 1, &d), RP_EA_401);
    assert_string_equal(d.location, "");
    /* Valid tokens pass either way. */
    {
        json_t *cl = J(CL(""));
        assert_int_equal(rp_easyauth_decide(c, "/", "/", cl, NULL, 1, &d), RP_EA_PASS);
        json_decref(cl);
    }
    rp_easyauth_unref(c);
}

static void test_redirect_location(void **state)
{
    rp_easyauth *c = build(ON ",\"globalValidation\":{\"unauthenticatedClientAction\":"
                              "\"RedirectToLoginPage\"},\"httpSettings\":{\"routes\":{"
                              "\"apiPrefix\":\"/_a\"}}}",
                           NULL, 0, NULL);
    rp_easyauth_decision d;
    char *longt = malloc(4000);

    (void)state;
    assert_int_equal(
        rp_easyauth_decide(c, "/caf\xc3\xa9", "/caf%C3%A9/~x-y_z.w", NULL, NULL, 0, &d),
        RP_EA_REDIRECT);
    assert_string_equal(d.location,
                        "/_a/login/aad?post_login_redirect_uri=%2Fcaf%25C3%25A9%2F~x-y_z.w");
    /* The target defaults to the path. */
    assert_int_equal(rp_easyauth_decide(c, "/p q", NULL, NULL, NULL, 0, &d), RP_EA_REDIRECT);
    assert_string_equal(d.location, "/_a/login/aad?post_login_redirect_uri=%2Fp%20q");
    /* Never back to another site: "//host", "/\host" and absolute URLs become "/". */
    rp_easyauth_decide(c, "/", "//evil.example/x", NULL, NULL, 0, &d);
    assert_string_equal(d.location, "/_a/login/aad?post_login_redirect_uri=%2F");
    rp_easyauth_decide(c, "/", "/\\evil.example", NULL, NULL, 0, &d);
    assert_string_equal(d.location, "/_a/login/aad?post_login_redirect_uri=%2F");
    rp_easyauth_decide(c, "/", "https://evil.example/", NULL, NULL, 0, &d);
    assert_string_equal(d.location, "/_a/login/aad?post_login_redirect_uri=%2F");
    rp_easyauth_decide(c, "/", "", NULL, NULL, 0, &d);
    assert_string_equal(d.location, "/_a/login/aad?post_login_redirect_uri=%2F");
    /* A target whose encoding would not fit goes to "/" too; one that just fits is kept. */
    assert_non_null(longt);
    longt[0] = '/';
    memset(longt + 1, 'a', 3998);
    longt[3999] = '\0';
    assert_int_equal(rp_easyauth_decide(c, "/", longt, NULL, NULL, 0, &d), RP_EA_REDIRECT);
    assert_string_equal(d.location, "/_a/login/aad?post_login_redirect_uri=%2F");
    {
        size_t head = strlen("/_a/login/aad?post_login_redirect_uri=%2F");
        size_t fit = RP_EASYAUTH_LOCATION_MAX - 1 - head; /* 'a's after the '/' */
        longt[1 + fit] = '\0';
        rp_easyauth_decide(c, "/", longt, NULL, NULL, 0, &d);
        assert_int_equal(strlen(d.location), RP_EASYAUTH_LOCATION_MAX - 1);
        longt[1 + fit] = 'a';
        longt[2 + fit] = '\0';
        rp_easyauth_decide(c, "/", longt, NULL, NULL, 0, &d);
        assert_string_equal(d.location, "/_a/login/aad?post_login_redirect_uri=%2F");
    }
    free(longt);
    rp_easyauth_unref(c);
}

static void test_excluded_paths(void **state)
{
    rp_easyauth *c = build(ON ",\"globalValidation\":{\"excludedPaths\":[\"/health\","
                              "\"/Public/\",\"/a/b\"]}}",
                           NULL, 0, NULL);
    rp_easyauth_decision d;

    (void)state;
    assert_int_equal(rp_easyauth_excluded(c, "/health"), 1);
    assert_int_equal(rp_easyauth_excluded(c, "/health/x"), 1);
    assert_int_equal(rp_easyauth_excluded(c, "/HEALTH/x/y"), 1);
    assert_int_equal(rp_easyauth_excluded(c, "/health/"), 1);
    assert_int_equal(rp_easyauth_excluded(c, "/healthz"), 0);
    assert_int_equal(rp_easyauth_excluded(c, "/healt"), 0);
    assert_int_equal(rp_easyauth_excluded(c, "/x/health"), 0);
    assert_int_equal(rp_easyauth_excluded(c, "/public/x"), 1);
    assert_int_equal(rp_easyauth_excluded(c, "/public/"), 1);
    assert_int_equal(rp_easyauth_excluded(c, "/public"), 0); /* "/Public/" needs the slash */
    assert_int_equal(rp_easyauth_excluded(c, "/publicity"), 0);
    assert_int_equal(rp_easyauth_excluded(c, "/a/b/c"), 1);
    assert_int_equal(rp_easyauth_excluded(c, "/a"), 0);
    assert_int_equal(rp_easyauth_excluded(c, "/a/bc"), 0);
    assert_int_equal(rp_easyauth_excluded(c, NULL), 0);
    assert_int_equal(decide(c, "/health/live", NULL, &d), RP_EA_ANON);
    assert_string_equal(d.reason, "excluded path");
    assert_int_equal(decide(c, "/health/live", CL(""), &d), RP_EA_ANON); /* no principal */
    assert_int_equal(decide(c, "/healthz", NULL, &d), RP_EA_401);
    rp_easyauth_unref(c);

    /* Disabled: excluded paths are still reported, the decision is anonymous anyway. */
    c = build("{\"globalValidation\":{\"excludedPaths\":[\"/health\"]}}", NULL, 0, NULL);
    assert_int_equal(rp_easyauth_excluded(c, "/health"), 1);
    assert_int_equal(decide(c, "/x", NULL, &d), RP_EA_ANON);
    rp_easyauth_unref(c);

    assert_string_equal(rp_easyauth_verdict_name(RP_EA_PASS), "pass");
    assert_string_equal(rp_easyauth_verdict_name(RP_EA_ANON), "anonymous");
    assert_string_equal(rp_easyauth_verdict_name(RP_EA_401), "401");
    assert_string_equal(rp_easyauth_verdict_name(RP_EA_403), "403");
    assert_string_equal(rp_easyauth_verdict_name(RP_EA_REDIRECT), "redirect");
    assert_string_equal(rp_easyauth_verdict_name((rp_easyauth_verdict)99), "?");
}

/* ---- principal ---- */

/* Decodes X-MS-CLIENT-PRINCIPAL back to JSON. */
static json_t *decode_principal(const char *b64)
{
    size_t n = strlen(b64), pad = 0;
    unsigned char *raw = malloc(n + 1);
    int len;
    json_t *j;

    assert_non_null(raw);
    assert_int_equal(n % 4, 0);
    for (size_t i = 0; i < n; i++) /* the standard alphabet, padded */
        assert_true((b64[i] >= 'A' && b64[i] <= 'Z') || (b64[i] >= 'a' && b64[i] <= 'z') ||
                    (b64[i] >= '0' && b64[i] <= '9') || b64[i] == '+' || b64[i] == '/' ||
                    (b64[i] == '=' && i >= n - 2));
    if (n > 0 && b64[n - 1] == '=')
        pad++;
    if (n > 1 && b64[n - 2] == '=')
        pad++;
    len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
    assert_true(len >= 0);
    j = json_loadb((const char *)raw, (size_t)len - pad, 0, NULL);
    assert_non_null(j);
    free(raw);
    return j;
}

static void test_principal(void **state)
{
    json_t *cl = J("{\"aud\":\"https://app.d\",\"iss\":\"" ISS "\",\"exp\":1700000000,"
                   "\"oid\":\"oid-1\",\"sub\":\"sub-1\",\"tid\":\"t1\",\"upn\":\"a@d\","
                   "\"name\":\"Alice\",\"roles\":[\"Reader\",\"Writer\"],\"groups\":[],"
                   "\"ver\":\"2.0\",\"ok\":true,\"amt\":1.5,\"nothing\":null,"
                   "\"cnf\":{\"x\":[1]},\"mixed\":[1,\"two\",[3],null]}"),
           *p;
    rp_easyauth_principal pr;

    (void)state;
    assert_int_equal(rp_easyauth_principal_build(cl, &pr), 0);
    assert_string_equal(pr.idp, "aad");
    assert_string_equal(pr.id, "oid-1");
    assert_string_equal(pr.name, "Alice");
    assert_true(strlen(pr.principal) <= RP_EASYAUTH_HEADER_MAX);
    p = decode_principal(pr.principal);
    assert_json(
        p, "{\"auth_typ\":\"aad\",\"claims\":["
           "{\"typ\":\"aud\",\"val\":\"https://app.d\"},{\"typ\":\"iss\",\"val\":\"" ISS "\"},"
           "{\"typ\":\"exp\",\"val\":\"1700000000\"},"
           "{\"typ\":\"http://schemas.microsoft.com/identity/claims/objectidentifier\","
           "\"val\":\"oid-1\"},{\"typ\":\"sub\",\"val\":\"sub-1\"},"
           "{\"typ\":\"http://schemas.microsoft.com/identity/claims/tenantid\",\"val\":\"t1\"},"
           "{\"typ\":\"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn\","
           "\"val\":\"a@d\"},{\"typ\":\"name\",\"val\":\"Alice\"},"
           "{\"typ\":\"roles\",\"val\":\"Reader\"},{\"typ\":\"roles\",\"val\":\"Writer\"},"
           "{\"typ\":\"ver\",\"val\":\"2.0\"},{\"typ\":\"ok\",\"val\":\"true\"},"
           "{\"typ\":\"amt\",\"val\":\"1.5\"},{\"typ\":\"cnf\",\"val\":\"{\\\"x\\\":[1]}\"},"
           "{\"typ\":\"mixed\",\"val\":\"1\"},{\"typ\":\"mixed\",\"val\":\"two\"},"
           "{\"typ\":\"mixed\",\"val\":\"[3]\"}],"
           "\"name_typ\":\"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name\","
           "\"role_typ\":\"http://schemas.microsoft.com/ws/2008/06/identity/claims/role\"}");
    json_decref(p);
    rp_easyauth_principal_free(&pr);
    assert_null(pr.principal);
    rp_easyauth_principal_free(&pr); /* twice is fine */
    rp_easyauth_principal_free(NULL);
    json_decref(cl);

    /* ID: oid, else sub. NAME: name, preferred_username, upn, appid, azp. */
    {
        static const struct {
            const char *claims, *id, *name;
        } fb[] = {
            {"{\"sub\":\"s\",\"preferred_username\":\"pu\",\"upn\":\"u\"}", "s", "pu"},
            {"{\"oid\":\"o\",\"sub\":\"s\",\"upn\":\"u\",\"appid\":\"a\"}", "o", "u"},
            {"{\"oid\":\"o\",\"appid\":\"a\",\"azp\":\"z\"}", "o", "a"},
            {"{\"azp\":\"z\",\"name\":\"\"}", NULL, "z"},
            {"{\"oid\":5,\"name\":[\"x\"]}", NULL, NULL},
            {"{}", NULL, NULL},
        };
        for (size_t i = 0; i < sizeof(fb) / sizeof(fb[0]); i++) {
            cl = J(fb[i].claims);
            assert_int_equal(rp_easyauth_principal_build(cl, &pr), 0);
            if (fb[i].id)
                assert_string_equal(pr.id, fb[i].id);
            else
                assert_null(pr.id);
            if (fb[i].name)
                assert_string_equal(pr.name, fb[i].name);
            else
                assert_null(pr.name);
            assert_non_null(pr.principal);
            rp_easyauth_principal_free(&pr);
            json_decref(cl);
        }
    }

    /* No header injection through a display name; the principal keeps the value exactly. */
    cl = J("{\"oid\":\"o\\r\\nX-Evil: 1\",\"name\":\"Eve\\r\\nSet-Cookie: a=b\\u007f\"}");
    assert_int_equal(rp_easyauth_principal_build(cl, &pr), 0);
    assert_string_equal(pr.id, "o??X-Evil: 1");
    assert_string_equal(pr.name, "Eve??Set-Cookie: a=b?");
    p = decode_principal(pr.principal);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(p, "claims"), 1), "val")),
        "Eve\r\nSet-Cookie: a=b\x7f");
    json_decref(p);
    rp_easyauth_principal_free(&pr);
    json_decref(cl);

    /* Not an object. */
    cl = json_array();
    assert_int_equal(rp_easyauth_principal_build(cl, &pr), RP_EINVAL);
    assert_null(pr.principal);
    assert_null(rp_easyauth_me(cl, "t"));
    json_decref(cl);
    assert_int_equal(rp_easyauth_principal_build(NULL, &pr), RP_EINVAL);
}

static void test_principal_caps(void **state)
{
    json_t *cl = json_object(), *roles = json_array();
    rp_easyauth_principal pr;
    char role[64];
    int i, ok = 0;

    (void)state;
    /* Roles of 40 bytes until the header would pass 16 KiB: every size up to there builds,
     * the first one over is refused. */
    json_object_set_new(cl, "oid", json_string("o"));
    json_object_set(cl, "roles", roles);
    for (i = 0; i < 1000; i++) {
        int rc;

        snprintf(role, sizeof(role), "role-%034d", i);
        json_array_append_new(roles, json_string(role));
        rc = rp_easyauth_principal_build(cl, &pr);
        if (rc == RP_ETOOBIG) {
            assert_null(pr.principal);
            assert_null(pr.id);
            break;
        }
        assert_int_equal(rc, 0);
        assert_true(strlen(pr.principal) <= RP_EASYAUTH_HEADER_MAX);
        ok = i + 1;
        rp_easyauth_principal_free(&pr);
    }
    assert_true(i < 1000);
    assert_true(ok > 150); /* 16 KiB holds nearly two hundred such roles */
    assert_null(rp_easyauth_me(cl, "t"));
    json_decref(roles);
    json_decref(cl);

    /* More than RP_EASYAUTH_CLAIMS_MAX tiny entries. */
    cl = json_object();
    roles = json_array();
    for (i = 0; i < RP_EASYAUTH_CLAIMS_MAX + 1; i++)
        json_array_append_new(roles, json_integer(i % 10));
    json_object_set_new(cl, "r", roles);
    assert_int_equal(rp_easyauth_principal_build(cl, &pr), RP_ETOOBIG);
    json_decref(cl);

    /* One value of 1 MB is refused before it is copied into the document. */
    {
        char *big = malloc(1 << 20);
        assert_non_null(big);
        memset(big, 'v', (1 << 20) - 1);
        big[(1 << 20) - 1] = '\0';
        cl = json_object();
        json_object_set_new(cl, "x", json_string(big));
        assert_int_equal(rp_easyauth_principal_build(cl, &pr), RP_ETOOBIG);
        json_decref(cl);
        /* A name over RP_EASYAUTH_NAME_MAX. */
        big[RP_EASYAUTH_NAME_MAX + 1] = '\0';
        cl = json_object();
        json_object_set_new(cl, "name", json_string(big));
        assert_int_equal(rp_easyauth_principal_build(cl, &pr), RP_ETOOBIG);
        assert_null(pr.principal);
        big[RP_EASYAUTH_NAME_MAX] = '\0';
        json_object_set_new(cl, "name", json_string(big));
        assert_int_equal(rp_easyauth_principal_build(cl, &pr), 0);
        assert_int_equal(strlen(pr.name), RP_EASYAUTH_NAME_MAX);
        rp_easyauth_principal_free(&pr);
        json_decref(cl);
        free(big);
    }
}

static void test_me(void **state)
{
    json_t *cl = J("{\"iss\":\"" ISS "\",\"exp\":1700000000,\"oid\":\"o1\",\"name\":\"Alice\","
                   "\"roles\":[\"R\"]}"),
           *me;

    (void)state;
    me = rp_easyauth_me(cl, "tok.en.sig");
    assert_json(me, "[{\"access_token\":\"tok.en.sig\",\"expires_on\":\"2023-11-14T22:13:20Z\","
                    "\"provider_name\":\"aad\",\"user_claims\":[{\"typ\":\"iss\",\"val\":\"" ISS
                    "\"},{\"typ\":\"exp\",\"val\":\"1700000000\"},{\"typ\":"
                    "\"http://schemas.microsoft.com/identity/claims/objectidentifier\",\"val\":"
                    "\"o1\"},{\"typ\":\"name\",\"val\":\"Alice\"},{\"typ\":\"roles\",\"val\":"
                    "\"R\"}],\"user_id\":\"Alice\"}]");
    json_decref(me);
    json_decref(cl);
    /* No name: the id; no exp: no expires_on. */
    cl = J("{\"sub\":\"s1\",\"exp\":\"soon\"}");
    me = rp_easyauth_me(cl, NULL);
    assert_json(me, "[{\"access_token\":\"\",\"provider_name\":\"aad\",\"user_claims\":[{\"typ\":"
                    "\"sub\",\"val\":\"s1\"},{\"typ\":\"exp\",\"val\":\"soon\"}],\"user_id\":"
                    "\"s1\"}]");
    json_decref(me);
    json_decref(cl);
    cl = J("{}");
    me = rp_easyauth_me(cl, "t");
    assert_json(me, "[{\"access_token\":\"t\",\"provider_name\":\"aad\",\"user_claims\":[],"
                    "\"user_id\":\"\"}]");
    json_decref(me);
    json_decref(cl);
}

/* Every allocation of ours that fails comes back as RP_ENOMEM, never a crash or a leak. */
static void test_allocation_failure(void **state)
{
    json_t *b = J(full), *cl = J(CL(",\"name\":\"n\""));
    rp_easyauth *c;
    rp_easyauth_principal pr;
    char err[200];
    long n;
    int rc;

    (void)state;
    for (n = 0;; n++) {
        c = NULL;
        rp_alloc_fail_after(n);
        rc = rp_easyauth_build(b, NULL, AUD, ISS, &c, err, sizeof(err));
        rp_alloc_fail_after(-1);
        if (rc == 0)
            break;
        assert_int_equal(rc, RP_ENOMEM);
        assert_null(c);
    }
    assert_true(n > 0);
    rp_easyauth_unref(c);
    for (n = 0;; n++) {
        rp_alloc_fail_after(n);
        rc = rp_easyauth_principal_build(cl, &pr);
        rp_alloc_fail_after(-1);
        if (rc == 0)
            break;
        assert_int_equal(rc, RP_ENOMEM);
        assert_null(pr.principal);
        assert_null(pr.id);
        assert_null(pr.name);
    }
    assert_true(n > 0);
    rp_easyauth_principal_free(&pr);
    for (n = 0;; n++) {
        json_t *me;
        rp_alloc_fail_after(n);
        me = rp_easyauth_me(cl, "t");
        rp_alloc_fail_after(-1);
        if (me != NULL) {
            json_decref(me);
            break;
        }
    }
    json_decref(cl);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_accepts_everything),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_decide_claims),
        cmocka_unit_test(test_decide_unauthenticated),
        cmocka_unit_test(test_redirect_location),
        cmocka_unit_test(test_excluded_paths),
        cmocka_unit_test(test_principal),
        cmocka_unit_test(test_principal_caps),
        cmocka_unit_test(test_me),
        cmocka_unit_test(test_allocation_failure),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
