/*
 * easyauth.c - an app's built-in authentication (easyauth.h): merge, validate and parse the
 * authsettingsV2 subset once; decide each request from the parsed form; build the principal
 * headers and the /.auth/me answer from verified claims.
 *
 * Workload: built on start-up and on every settings change (rare); read on every request of the
 * app from any loop thread through a reference. Every string the decision compares is parsed
 * once: ids and audiences point into the stored JSON (owned here and never changed after
 * build), excluded paths are kept lower-cased. A decision walks a few short lists and writes
 * into the caller's struct; it allocates nothing.
 *
 * Trust: settings are the app owner's input and are checked strictly (unknown members are
 * refused at every level so a typo never silently weakens a policy). Claims come from a token
 * the identity service verified, but their values are still whatever a principal could get into
 * a token (a display name), so everything that goes into a header is bounded and stripped of
 * control bytes, and nothing from a claim reaches a reason string.
 */
#include "sites/easyauth.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"
#include "base/time.h"
#include "http/query.h"

#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NAME_TYP "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
#define ROLE_TYP "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
#define IDP      "aad"

#define P_GV  "globalValidation"
#define P_HS  "httpSettings"
#define P_AAD "identityProviders.azureActiveDirectory"
#define P_REG P_AAD ".registration"
#define P_VAL P_AAD ".validation"
#define P_DAP P_VAL ".defaultAuthorizationPolicy"

/* JSON of the principal before base64: 4 output bytes per 3 input bytes. */
#define PRINCIPAL_JSON_MAX (RP_EASYAUTH_HEADER_MAX / 4 * 3)
/* The principal document without claims: the claim list's budget starts here. */
#define PRINCIPAL_FRAME                                                                            \
    (sizeof("{\"auth_typ\":\"" IDP "\",\"claims\":[],\"name_typ\":\"" NAME_TYP                     \
            "\",\"role_typ\":\"" ROLE_TYP "\"}") -                                                 \
     1)
/* Elements of an aud array looked at; tokens carry one or two. */
#define AUD_MAX 16

enum { ACT_REDIRECT, ACT_401, ACT_403, ACT_ANON };
static const char *const actions[] = {"RedirectToLoginPage", "Return401", "Return403",
                                      "AllowAnonymous"};

typedef struct idlist {
    const char *v[RP_EASYAUTH_LIST_MAX]; /* into stored */
    size_t n;
} idlist;

struct rp_easyauth {
    atomic_uint refs;
    json_t *stored;
    int enabled, require_auth, action, aad, token_store;
    int64_t cookie_s;              /* login.cookieExpiration.timeToExpiration */
    const char *prefix;            /* into stored, or the default */
    const char *redirect_provider; /* into stored, or NULL */
    const char *client_id, *secret_setting, *openid_issuer; /* into stored, or NULL */
    char *issuer;                                           /* rampart's, own copy, or NULL */
    char *app_audience;                                     /* own copy, or NULL */
    char *paths[RP_EASYAUTH_PATHS_MAX];                     /* excluded paths, lower case */
    size_t npaths;
    idlist audiences, client_apps, apps, identities;
};

/* ---- settings ----------------------------------------------------------------------------- */

static void free_cfg(rp_easyauth *c)
{
    if (c == NULL)
        return;
    json_decref(c->stored);
    for (size_t i = 0; i < c->npaths; i++)
        rp_free(c->paths[i]);
    rp_free(c->issuer);
    rp_free(c->app_audience);
    rp_free(c);
}

rp_easyauth *rp_easyauth_ref(rp_easyauth *c)
{
    if (c != NULL)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

void rp_easyauth_unref(rp_easyauth *c)
{
    if (c != NULL && atomic_fetch_sub(&c->refs, 1) == 1)
        free_cfg(c);
}

/* A caller's member name made fit for a message: at most 40 bytes of printable ASCII. */
static void clean(const char *s, char out[48])
{
    size_t i = 0;

    for (const char *p = s; *p != '\0' && i < 40; p++)
        out[i++] = (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f ? *p : '?';
    out[i] = '\0';
}

/* Drops null members of o and of every object below it (nulls mean "the default"). */
static void strip_nulls(json_t *o)
{
    const char *key;
    json_t *val, *tmp;

    json_object_foreach_safe(o, tmp, key, val)
    {
        if (json_is_null(val))
            json_object_del(o, key);
        else if (json_is_object(val))
            strip_nulls(val);
    }
}

/* RFC 7396 merge of patch (an object) into target (an object). 0 or RP_ENOMEM. */
static int merge(json_t *target, const json_t *patch)
{
    const char *key;
    json_t *val;

    json_object_foreach((json_t *)patch, key, val)
    {
        json_t *cur = json_object_get(target, key), *copy;

        if (json_is_null(val)) {
            json_object_del(target, key);
            continue;
        }
        if (json_is_object(val) && json_is_object(cur)) {
            if (merge(cur, val) != 0)
                return RP_ENOMEM;
            continue;
        }
        copy = json_deep_copy(val);
        if (copy == NULL)
            return RP_ENOMEM;
        if (json_is_object(copy))
            strip_nulls(copy);
        if (json_object_set_new(target, key, copy) != 0)
            return RP_ENOMEM;
    }
    return 0;
}

/* Refuses o unless it is an object whose members are all in names (NULL-terminated). */
static int members(const json_t *o, const char *prop, const char *const *names, char *err,
                   size_t errlen)
{
    const char *key;
    json_t *val;

    if (!json_is_object(o))
        return rp_errf(err, errlen, RP_EINVAL, "%s must be an object", prop);
    json_object_foreach((json_t *)o, key, val)
    {
        size_t i = 0;
        char k[48];

        while (names[i] != NULL && strcmp(key, names[i]) != 0)
            i++;
        if (names[i] != NULL)
            continue;
        clean(key, k);
        return rp_errf(err, errlen, RP_EINVAL, "%s: unknown member '%s'", prop, k);
    }
    return 0;
}

static int get_bool(const json_t *o, const char *k, const char *prop, int def, int *out, char *err,
                    size_t errlen)
{
    const json_t *x = json_object_get(o, k);

    *out = def;
    if (x == NULL)
        return 0;
    if (!json_is_boolean(x))
        return rp_errf(err, errlen, RP_EINVAL, "%s.%s must be true or false", prop, k);
    *out = json_is_true(x);
    return 0;
}

/* 1 if s[0..n) has no control byte and no NUL. */
static int no_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* A string of 1..max bytes without control characters; *out points into x. */
static int str_ok(const json_t *x, const char *what, size_t max, const char **out, char *err,
                  size_t errlen)
{
    const char *s = json_string_value(x);
    size_t n = json_string_length(x);

    if (s == NULL)
        return rp_errf(err, errlen, RP_EINVAL, "%s must be a string", what);
    if (n == 0 || n > max)
        return rp_errf(err, errlen, RP_EINVAL, "%s must be 1 to %zu bytes", what, max);
    if (!no_ctl(s, n))
        return rp_errf(err, errlen, RP_EINVAL, "%s must not hold control characters", what);
    *out = s;
    return 0;
}

static int get_str(const json_t *o, const char *k, const char *prop, size_t max, const char **out,
                   char *err, size_t errlen)
{
    const json_t *x = json_object_get(o, k);
    char what[160];

    *out = NULL;
    if (x == NULL)
        return 0;
    snprintf(what, sizeof(what), "%s.%s", prop, k);
    return str_ok(x, what, max, out, err, errlen);
}

/* An array of at most RP_EASYAUTH_LIST_MAX strings of 1..max bytes each. */
static int get_list(const json_t *o, const char *k, const char *prop, size_t max, idlist *l,
                    char *err, size_t errlen)
{
    const json_t *x = json_object_get(o, k), *v;
    char what[200];
    size_t i;

    l->n = 0;
    if (x == NULL)
        return 0;
    if (!json_is_array(x))
        return rp_errf(err, errlen, RP_EINVAL, "%s.%s must be an array of strings", prop, k);
    if (json_array_size(x) > RP_EASYAUTH_LIST_MAX)
        return rp_errf(err, errlen, RP_EINVAL, "%s.%s: at most %d entries", prop, k,
                       RP_EASYAUTH_LIST_MAX);
    json_array_foreach(x, i, v)
    {
        int rc;

        snprintf(what, sizeof(what), "%s.%s[%zu]", prop, k, i);
        if ((rc = str_ok(v, what, max, &l->v[l->n], err, errlen)) != 0)
            return rc;
        l->n++;
    }
    return 0;
}

/* 1 if seg[0..n) is "." or "..". */
static int dot_seg(const char *seg, size_t n)
{
    return (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.');
}

/* 1 if the path p has a "." or ".." segment (a normalised path never has one). */
static int has_dot_seg(const char *p)
{
    while (*p == '/') {
        size_t n = strcspn(p + 1, "/");
        if (dot_seg(p + 1, n))
            return 1;
        p += 1 + n;
    }
    return 0;
}

static int parse_paths(rp_easyauth *c, const json_t *x, char *err, size_t errlen)
{
    static const char prop[] = P_GV ".excludedPaths";
    const json_t *v;
    size_t i;

    if (!json_is_array(x))
        return rp_errf(err, errlen, RP_EINVAL, "%s must be an array of paths", prop);
    if (json_array_size(x) > RP_EASYAUTH_PATHS_MAX)
        return rp_errf(err, errlen, RP_EINVAL, "%s: at most %d paths", prop, RP_EASYAUTH_PATHS_MAX);
    json_array_foreach(x, i, v)
    {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        char *low;

        if (s == NULL || n == 0 || s[0] != '/')
            return rp_errf(err, errlen, RP_EINVAL, "%s[%zu]: a path starts with '/'", prop, i);
        if (n > RP_EASYAUTH_PATH_LEN_MAX)
            return rp_errf(err, errlen, RP_EINVAL, "%s[%zu]: at most %d bytes", prop, i,
                           RP_EASYAUTH_PATH_LEN_MAX);
        if (!no_ctl(s, n) || strpbrk(s, "?#\\") != NULL)
            return rp_errf(err, errlen, RP_EINVAL,
                           "%s[%zu]: a path without query, fragment, '\\' or control characters",
                           prop, i);
        /* Paths are matched against the decoded, normalised path. */
        if (strchr(s, '%') != NULL || has_dot_seg(s))
            return rp_errf(err, errlen, RP_EINVAL,
                           "%s[%zu]: paths are matched decoded and normalised: no "
                           "percent-escapes, no '.' or '..' segments",
                           prop, i);
        low = rp_malloc(n + 1);
        if (low == NULL)
            return RP_ENOMEM;
        for (size_t k = 0; k <= n; k++)
            low[k] = k < n ? rp_lower(s[k]) : '\0';
        c->paths[c->npaths++] = low;
    }
    return 0;
}

static int parse_global(rp_easyauth *c, const json_t *gv, char *err, size_t errlen)
{
    static const char *const names[] = {"requireAuthentication", "unauthenticatedClientAction",
                                        "redirectToProvider", "excludedPaths", NULL};
    const json_t *x;
    int rc;

    c->require_auth = 1;
    c->action = ACT_401;
    if (gv == NULL)
        return 0;
    if ((rc = members(gv, P_GV, names, err, errlen)) != 0 ||
        (rc = get_bool(gv, "requireAuthentication", P_GV, 1, &c->require_auth, err, errlen)) != 0)
        return rc;
    x = json_object_get(gv, "unauthenticatedClientAction");
    if (x != NULL) {
        const char *s = json_string_value(x);
        int a = 0;

        while (s != NULL && a < 4 && strcasecmp(s, actions[a]) != 0)
            a++;
        if (s == NULL || a == 4 || strlen(s) != json_string_length(x))
            return rp_errf(err, errlen, RP_EINVAL,
                           "%s.unauthenticatedClientAction must be RedirectToLoginPage, Return401, "
                           "Return403 or AllowAnonymous",
                           P_GV);
        c->action = a;
    }
    x = json_object_get(gv, "redirectToProvider");
    if (x != NULL) {
        const char *s = json_string_value(x);

        if (s == NULL || strlen(s) != json_string_length(x) ||
            (strcasecmp(s, "azureactivedirectory") != 0 && strcasecmp(s, "aad") != 0))
            return rp_errf(err, errlen, RP_EINVAL,
                           "%s.redirectToProvider must be \"azureactivedirectory\" (the only "
                           "provider)",
                           P_GV);
        c->redirect_provider = s;
    }
    x = json_object_get(gv, "excludedPaths");
    return x != NULL ? parse_paths(c, x, err, errlen) : 0;
}

static int prefix_ok(const char *s, size_t n)
{
    if (n < 2 || n > RP_EASYAUTH_PREFIX_MAX || s[0] != '/' || s[n - 1] == '/' ||
        strstr(s, "//") != NULL || strlen(s) != n || has_dot_seg(s))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '~' || ch == '/' || ch == '-'))
            return 0;
    }
    return 1;
}

static int parse_http(rp_easyauth *c, const json_t *hs, char *err, size_t errlen)
{
    static const char *const names[] = {"requireHttps", "routes", NULL};
    static const char *const rnames[] = {"apiPrefix", NULL};
    const json_t *routes, *x;
    int https, rc;

    c->prefix = "/.auth";
    if (hs == NULL)
        return 0;
    if ((rc = members(hs, P_HS, names, err, errlen)) != 0 ||
        (rc = get_bool(hs, "requireHttps", P_HS, 1, &https, err, errlen)) != 0)
        return rc;
    if (!https)
        return rp_errf(err, errlen, RP_EINVAL,
                       "%s.requireHttps must be true: rampart serves apps over HTTPS only", P_HS);
    routes = json_object_get(hs, "routes");
    if (routes == NULL)
        return 0;
    if ((rc = members(routes, P_HS ".routes", rnames, err, errlen)) != 0)
        return rc;
    x = json_object_get(routes, "apiPrefix");
    if (x != NULL) {
        if (!json_is_string(x) || !prefix_ok(json_string_value(x), json_string_length(x)))
            return rp_errf(err, errlen, RP_EINVAL,
                           "%s.routes.apiPrefix must be a path of at most %d bytes other than "
                           "\"/\": '/' and then letters, digits, '.', '_', '~', '-' and '/' "
                           "between segments",
                           P_HS, RP_EASYAUTH_PREFIX_MAX);
        c->prefix = json_string_value(x);
    }
    return 0;
}

/* An https URL without spaces, query or fragment, naming one tenant. */
static int parse_issuer(rp_easyauth *c, const json_t *reg, char *err, size_t errlen)
{
    static const char *const multi[] = {"common", "organizations", "consumers"};
    const char *s, *host, *seg;
    size_t seglen;
    int rc;

    if ((rc = get_str(reg, "openIdIssuer", P_REG, RP_EASYAUTH_ISSUER_MAX, &s, err, errlen)) != 0)
        return rc;
    if (s == NULL)
        return 0;
    host = strncasecmp(s, "https://", 8) == 0 ? s + 8 : NULL;
    if (host == NULL || host[0] == '\0' || host[0] == '/' || strpbrk(s, " ?#\\") != NULL ||
        strlen(s) != json_string_length(json_object_get(reg, "openIdIssuer")))
        return rp_errf(err, errlen, RP_EINVAL,
                       "%s.openIdIssuer must be an https:// URL without query or fragment", P_REG);
    seg = strchr(host, '/');
    if (seg != NULL) {
        seg++;
        seglen = strcspn(seg, "/");
        for (size_t i = 0; i < sizeof(multi) / sizeof(multi[0]); i++)
            if (seglen == strlen(multi[i]) && strncasecmp(seg, multi[i], seglen) == 0)
                return rp_errf(err, errlen, RP_EINVAL,
                               "%s.openIdIssuer: a multi-tenant issuer (/%s) would skip issuer "
                               "validation; name one tenant's issuer",
                               P_REG, multi[i]);
    }
    c->openid_issuer = s;
    return 0;
}

static int parse_registration(rp_easyauth *c, const json_t *reg, char *err, size_t errlen)
{
    static const char *const names[] = {"openIdIssuer", "clientId", "clientSecretSettingName",
                                        NULL};
    const char *s;
    int rc;

    if (json_is_object(reg) && json_object_get(reg, "clientSecret") != NULL)
        return rp_errf(err, errlen, RP_EINVAL,
                       "%s.clientSecret: secret values are never stored in auth settings; use "
                       "clientSecretSettingName",
                       P_REG);
    if ((rc = members(reg, P_REG, names, err, errlen)) != 0 ||
        (rc = parse_issuer(c, reg, err, errlen)) != 0 ||
        (rc = get_str(reg, "clientId", P_REG, RP_EASYAUTH_ID_MAX, &c->client_id, err, errlen)) !=
            0 ||
        (rc = get_str(reg, "clientSecretSettingName", P_REG, RP_EASYAUTH_ID_MAX, &s, err,
                      errlen)) != 0)
        return rc;
    if (s != NULL) {
        for (const char *p = s; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_'))
                return rp_errf(err, errlen, RP_EINVAL,
                               "%s.clientSecretSettingName must be an app setting name (letters, "
                               "digits, '_')",
                               P_REG);
        c->secret_setting = s;
    }
    return 0;
}

static int parse_validation(rp_easyauth *c, const json_t *val, char *err, size_t errlen)
{
    static const char *const names[] = {"allowedAudiences", "jwtClaimChecks",
                                        "defaultAuthorizationPolicy", NULL};
    static const char *const jnames[] = {"allowedClientApplications", NULL};
    static const char *const dnames[] = {"allowedApplications", "allowedPrincipals", NULL};
    static const char *const pnames[] = {"identities", NULL};
    const json_t *jcc, *dap, *ap;
    size_t total = 0;
    int rc;

    if ((rc = members(val, P_VAL, names, err, errlen)) != 0 ||
        (rc = get_list(val, "allowedAudiences", P_VAL, RP_EASYAUTH_AUDIENCES_MAX, &c->audiences,
                       err, errlen)) != 0)
        return rc;
    for (size_t i = 0; i < c->audiences.n; i++)
        total += strlen(c->audiences.v[i]);
    if (total > RP_EASYAUTH_AUDIENCES_MAX)
        return rp_errf(err, errlen, RP_EINVAL,
                       "%s.allowedAudiences: at most %d characters in all (%zu given)", P_VAL,
                       RP_EASYAUTH_AUDIENCES_MAX, total);
    jcc = json_object_get(val, "jwtClaimChecks");
    if (jcc != NULL) {
        if (json_is_object(jcc) && json_object_get(jcc, "allowedGroups") != NULL)
            return rp_errf(err, errlen, RP_EINVAL,
                           "%s.jwtClaimChecks.allowedGroups: group checks are not available "
                           "(rampart tokens carry no groups claim)",
                           P_VAL);
        if ((rc = members(jcc, P_VAL ".jwtClaimChecks", jnames, err, errlen)) != 0 ||
            (rc = get_list(jcc, "allowedClientApplications", P_VAL ".jwtClaimChecks",
                           RP_EASYAUTH_ID_MAX, &c->client_apps, err, errlen)) != 0)
            return rc;
    }
    dap = json_object_get(val, "defaultAuthorizationPolicy");
    if (dap == NULL)
        return 0;
    if ((rc = members(dap, P_DAP, dnames, err, errlen)) != 0 ||
        (rc = get_list(dap, "allowedApplications", P_DAP, RP_EASYAUTH_ID_MAX, &c->apps, err,
                       errlen)) != 0)
        return rc;
    ap = json_object_get(dap, "allowedPrincipals");
    if (ap == NULL)
        return 0;
    if (json_is_object(ap) && json_object_get(ap, "groups") != NULL)
        return rp_errf(err, errlen, RP_EINVAL,
                       "%s.allowedPrincipals.groups: group checks are not available (rampart "
                       "tokens carry no groups claim)",
                       P_DAP);
    if ((rc = members(ap, P_DAP ".allowedPrincipals", pnames, err, errlen)) != 0)
        return rc;
    return get_list(ap, "identities", P_DAP ".allowedPrincipals", RP_EASYAUTH_ID_MAX,
                    &c->identities, err, errlen);
}

static int parse_providers(rp_easyauth *c, const json_t *ip, char *err, size_t errlen)
{
    static const char *const names[] = {"azureActiveDirectory", NULL};
    static const char *const anames[] = {"enabled", "registration", "validation", NULL};
    const json_t *aad, *x;
    int rc;

    c->aad = 1;
    if (ip == NULL)
        return 0;
    if (json_is_object(ip) && json_object_size(ip) > 0 &&
        json_object_get(ip, "azureActiveDirectory") == NULL) {
        const char *key;
        json_t *v;
        char k[48] = "";

        json_object_foreach((json_t *)ip, key, v)
        {
            clean(key, k);
            break;
        }
        return rp_errf(err, errlen, RP_EINVAL,
                       "identityProviders: unknown member '%s' (azureActiveDirectory, backed by "
                       "rampart's identity service, is the only provider)",
                       k);
    }
    if ((rc = members(ip, "identityProviders", names, err, errlen)) != 0)
        return rc;
    aad = json_object_get(ip, "azureActiveDirectory");
    if (aad == NULL)
        return 0;
    if ((rc = members(aad, P_AAD, anames, err, errlen)) != 0 ||
        (rc = get_bool(aad, "enabled", P_AAD, 1, &c->aad, err, errlen)) != 0)
        return rc;
    if ((x = json_object_get(aad, "registration")) != NULL &&
        (rc = parse_registration(c, x, err, errlen)) != 0)
        return rc;
    if ((x = json_object_get(aad, "validation")) != NULL &&
        (rc = parse_validation(c, x, err, errlen)) != 0)
        return rc;
    return 0;
}

/* "[d.]hh:mm:ss" (a .NET TimeSpan as Azure writes it): 0 and *out seconds, or -1. */
static int timespan(const char *s, int64_t *out)
{
    int64_t v[4] = {0, 0, 0, 0}, lim[4] = {RP_EASYAUTH_COOKIE_MAX_S / 86400, 23, 59, 59};
    int part = strchr(s, '.') != NULL ? 0 : 1, digits = 0;

    for (; *s != '\0'; s++) {
        if (*s >= '0' && *s <= '9') {
            if (++digits > 2 + (part == 0) * 3)
                return -1;
            v[part] = v[part] * 10 + (*s - '0');
        } else if ((*s == '.' && part == 0) || (*s == ':' && (part == 1 || part == 2))) {
            if (digits == 0 || (part > 0 && digits != 2))
                return -1;
            part++;
            digits = 0;
        } else {
            return -1;
        }
    }
    if (part != 3 || digits != 2)
        return -1;
    for (int i = 0; i < 4; i++)
        if (v[i] > lim[i])
            return -1;
    *out = ((v[0] * 24 + v[1]) * 60 + v[2]) * 60 + v[3];
    return 0;
}

static int parse_cookie(rp_easyauth *c, const json_t *ce, char *err, size_t errlen)
{
    static const char *const names[] = {"convention", "timeToExpiration", NULL};
    const char *conv, *tte;
    int rc;

    if ((rc = members(ce, "login.cookieExpiration", names, err, errlen)) != 0 ||
        (rc = get_str(ce, "convention", "login.cookieExpiration", 32, &conv, err, errlen)) != 0 ||
        (rc = get_str(ce, "timeToExpiration", "login.cookieExpiration", 32, &tte, err, errlen)) !=
            0)
        return rc;
    if (conv != NULL && strcmp(conv, "FixedTime") != 0)
        return rp_errf(err, errlen, RP_EINVAL,
                       "login.cookieExpiration.convention must be \"FixedTime\" (a session "
                       "never outlives the time set here)");
    if (tte != NULL &&
        (timespan(tte, &c->cookie_s) != 0 || c->cookie_s < RP_EASYAUTH_COOKIE_MIN_S ||
         c->cookie_s > RP_EASYAUTH_COOKIE_MAX_S))
        return rp_errf(err, errlen, RP_EINVAL,
                       "login.cookieExpiration.timeToExpiration must be \"hh:mm:ss\" or "
                       "\"d.hh:mm:ss\" between 00:05:00 and 7.00:00:00");
    return 0;
}

static int parse_login(rp_easyauth *c, const json_t *login, char *err, size_t errlen)
{
    static const char *const names[] = {"tokenStore", "cookieExpiration", NULL};
    static const char *const tnames[] = {"enabled", NULL};
    const json_t *ts, *ce;
    int rc;

    c->token_store = 0;
    c->cookie_s = RP_EASYAUTH_COOKIE_S;
    if (login == NULL)
        return 0;
    if ((rc = members(login, "login", names, err, errlen)) != 0)
        return rc;
    if ((ce = json_object_get(login, "cookieExpiration")) != NULL &&
        (rc = parse_cookie(c, ce, err, errlen)) != 0)
        return rc;
    ts = json_object_get(login, "tokenStore");
    if (ts == NULL)
        return 0;
    if ((rc = members(ts, "login.tokenStore", tnames, err, errlen)) != 0)
        return rc;
    return get_bool(ts, "enabled", "login.tokenStore", 0, &c->token_store, err, errlen);
}

static int parse(rp_easyauth *c, char *err, size_t errlen)
{
    static const char *const names[] = {
        "platform", "globalValidation", "httpSettings", "identityProviders", "login", NULL};
    static const char *const pnames[] = {"enabled", NULL};
    const json_t *s = c->stored, *p;
    int rc;

    {
        const char *key;
        json_t *val;
        char k[48];

        json_object_foreach((json_t *)s, key, val)
        {
            size_t i = 0;
            while (names[i] != NULL && strcmp(key, names[i]) != 0)
                i++;
            if (names[i] != NULL)
                continue;
            clean(key, k);
            return rp_errf(err, errlen, RP_EINVAL,
                           "unknown property '%s' (platform, globalValidation, httpSettings, "
                           "identityProviders and login are available)",
                           k);
        }
    }
    p = json_object_get(s, "platform");
    if (p != NULL && ((rc = members(p, "platform", pnames, err, errlen)) != 0 ||
                      (rc = get_bool(p, "enabled", "platform", 0, &c->enabled, err, errlen)) != 0))
        return rc;
    if ((rc = parse_global(c, json_object_get(s, "globalValidation"), err, errlen)) != 0 ||
        (rc = parse_http(c, json_object_get(s, "httpSettings"), err, errlen)) != 0 ||
        (rc = parse_providers(c, json_object_get(s, "identityProviders"), err, errlen)) != 0 ||
        (rc = parse_login(c, json_object_get(s, "login"), err, errlen)) != 0)
        return rc;
    return 0;
}

int rp_easyauth_build(const json_t *base, const json_t *patch, const char *app_audience,
                      const char *issuer, rp_easyauth **out, char *err, size_t errlen)
{
    rp_easyauth *c = rp_calloc(1, sizeof(*c));
    int rc = RP_ENOMEM;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (c == NULL)
        return RP_ENOMEM;
    atomic_init(&c->refs, 1);
    if ((base != NULL && !json_is_object(base)) || (patch != NULL && !json_is_object(patch))) {
        rc = rp_errf(err, errlen, RP_EINVAL, "%s", "auth settings must be an object");
        goto fail;
    }
    c->stored = base != NULL ? json_deep_copy(base) : json_object();
    if (c->stored == NULL)
        goto fail;
    strip_nulls(c->stored);
    if (patch != NULL && merge(c->stored, patch) != 0)
        goto fail;
    if ((issuer != NULL && (c->issuer = rp_strdup(issuer)) == NULL) ||
        (app_audience != NULL && (c->app_audience = rp_strdup(app_audience)) == NULL))
        goto fail;
    if ((rc = parse(c, err, errlen)) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    free_cfg(c);
    return rc;
}

const json_t *rp_easyauth_stored(const rp_easyauth *c)
{
    return c->stored;
}

int rp_easyauth_enabled(const rp_easyauth *c)
{
    return c != NULL && c->enabled;
}

const char *rp_easyauth_api_prefix(const rp_easyauth *c)
{
    return c != NULL ? c->prefix : "/.auth";
}

const char *rp_easyauth_secret_setting(const rp_easyauth *c)
{
    return c != NULL ? c->secret_setting : NULL;
}

int rp_easyauth_token_store(const rp_easyauth *c)
{
    return c != NULL && c->token_store;
}

int64_t rp_easyauth_cookie_seconds(const rp_easyauth *c)
{
    return c != NULL && c->cookie_s > 0 ? c->cookie_s : RP_EASYAUTH_COOKIE_S;
}

static json_t *list_json(const idlist *l)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < l->n; i++) {
        if (json_array_append_new(a, json_string(l->v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *rp_easyauth_view(const rp_easyauth *c)
{
    int64_t cs = rp_easyauth_cookie_seconds(c);
    char tte[32];
    const json_t *paths =
        json_object_get(json_object_get(c->stored, "globalValidation"), "excludedPaths");
    json_t *v, *gv, *reg = json_object();
    int bad = reg == NULL;

    if (cs >= 86400)
        snprintf(tte, sizeof(tte), "%lld.%02lld:%02lld:%02lld", (long long)(cs / 86400),
                 (long long)(cs / 3600 % 24), (long long)(cs / 60 % 60), (long long)(cs % 60));
    else
        snprintf(tte, sizeof(tte), "%02lld:%02lld:%02lld", (long long)(cs / 3600),
                 (long long)(cs / 60 % 60), (long long)(cs % 60));

    /* openIdIssuer only as set: showing rampart's would pin it into the next PUT. */
    if (!bad && c->openid_issuer != NULL)
        bad = json_object_set_new(reg, "openIdIssuer", json_string(c->openid_issuer)) != 0;
    if (!bad && c->client_id != NULL)
        bad = json_object_set_new(reg, "clientId", json_string(c->client_id)) != 0;
    if (!bad && c->secret_setting != NULL)
        bad = json_object_set_new(reg, "clientSecretSettingName", json_string(c->secret_setting)) !=
              0;
    gv = json_pack("{s:b,s:s,s:o}", "requireAuthentication", c->require_auth,
                   "unauthenticatedClientAction", actions[c->action], "excludedPaths",
                   paths != NULL ? json_deep_copy(paths) : json_array());
    if (gv != NULL && c->redirect_provider != NULL)
        bad |= json_object_set_new(gv, "redirectToProvider", json_string("azureactivedirectory"));
    if (bad) {
        json_decref(reg);
        json_decref(gv);
        return NULL;
    }
    /* json_pack takes the "o" references, also when it fails. */
    v = json_pack("{s:{s:b},s:o,s:{s:b,s:{s:s}},s:{s:{s:b,s:o,s:{s:o,s:{s:o},s:{s:o,s:{s:o}}}}},"
                  "s:{s:{s:b},s:{s:s,s:s}}}",
                  "platform", "enabled", c->enabled, "globalValidation", gv, "httpSettings",
                  "requireHttps", 1, "routes", "apiPrefix", c->prefix, "identityProviders",
                  "azureActiveDirectory", "enabled", c->aad, "registration", reg, "validation",
                  "allowedAudiences", list_json(&c->audiences), "jwtClaimChecks",
                  "allowedClientApplications", list_json(&c->client_apps),
                  "defaultAuthorizationPolicy", "allowedApplications", list_json(&c->apps),
                  "allowedPrincipals", "identities", list_json(&c->identities), "login",
                  "tokenStore", "enabled", c->token_store, "cookieExpiration", "convention",
                  "FixedTime", "timeToExpiration", tte);
    return v;
}

/* ---- the decision ------------------------------------------------------------------------- */

/* 1 when the normalised path is p or below it, ignoring ASCII case (p lower case or not). */
static int under(const char *path, const char *p)
{
    size_t k = strlen(p);

    return k > 0 && strncasecmp(path, p, k) == 0 &&
           (path[k] == '\0' || path[k] == '/' || p[k - 1] == '/');
}

int rp_easyauth_excluded(const rp_easyauth *c, const char *path)
{
    if (c == NULL || path == NULL)
        return 0;
    for (size_t i = 0; i < c->npaths; i++)
        if (under(path, c->paths[i]))
            return 1;
    return 0;
}

int rp_easyauth_is_auth_path(const rp_easyauth *c, const char *path)
{
    return c != NULL && c->enabled && path != NULL && under(path, c->prefix);
}

const char *rp_easyauth_verdict_name(rp_easyauth_verdict v)
{
    switch (v) {
    case RP_EA_PASS: return "pass";
    case RP_EA_ANON: return "anonymous";
    case RP_EA_401: return "401";
    case RP_EA_403: return "403";
    case RP_EA_REDIRECT: return "redirect";
    }
    return "?";
}

/* Issuers and audiences: equal, one trailing '/' on either side aside; never empty. */
static int url_eq(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);

    if (n > 0 && a[n - 1] == '/')
        n--;
    if (m > 0 && b[m - 1] == '/')
        m--;
    return n > 0 && n == m && memcmp(a, b, n) == 0;
}

static int in_list(const idlist *l, const char *s)
{
    for (size_t i = 0; s != NULL && i < l->n; i++)
        if (strcasecmp(l->v[i], s) == 0)
            return 1;
    return 0;
}

/* A claim's string value, or NULL (absent, another type, or with an embedded NUL). */
static const char *claim_str(const json_t *claims, const char *name)
{
    const json_t *x = json_object_get(claims, name);
    const char *s = json_string_value(x);

    return s != NULL && strlen(s) == json_string_length(x) ? s : NULL;
}

static int aud_one(const rp_easyauth *c, const char *a)
{
    if (a == NULL)
        return 0;
    if (c->app_audience != NULL && url_eq(a, c->app_audience))
        return 1;
    if (c->client_id != NULL && url_eq(a, c->client_id))
        return 1;
    for (size_t i = 0; i < c->audiences.n; i++)
        if (url_eq(a, c->audiences.v[i]))
            return 1;
    return 0;
}

static int aud_ok(const rp_easyauth *c, const json_t *claims)
{
    const json_t *aud = json_object_get(claims, "aud"), *x;
    size_t i;

    if (json_is_string(aud))
        return aud_one(c, claim_str(claims, "aud"));
    json_array_foreach(aud, i, x)
    {
        if (i == AUD_MAX)
            break;
        if (json_is_string(x) && strlen(json_string_value(x)) == json_string_length(x) &&
            aud_one(c, json_string_value(x)))
            return 1;
    }
    return 0;
}

static void redirect(const rp_easyauth *c, const char *target, rp_easyauth_decision *out)
{
    int n = snprintf(out->location, sizeof(out->location),
                     "%s/login/aad?post_login_redirect_uri=", c->prefix);

    /* Only a local path may come back after the login: "//host" would leave the site. */
    if (target == NULL || target[0] != '/' || target[1] == '/' || target[1] == '\\' ||
        rp_query_encode(target, out->location + n, sizeof(out->location) - (size_t)n) != 0)
        rp_query_encode("/", out->location + n, sizeof(out->location) - (size_t)n);
}

static rp_easyauth_verdict verdict(rp_easyauth_decision *out, rp_easyauth_verdict v,
                                   const char *reason)
{
    out->verdict = v;
    rp_strlcpy(out->reason, reason, sizeof(out->reason)); /* a longer reason is cut */
    return v;
}

rp_easyauth_verdict rp_easyauth_decide(const rp_easyauth *c, const char *path, const char *target,
                                       const json_t *claims, const char *why, int xhr,
                                       rp_easyauth_decision *out)
{
    const char *cause = NULL, *app;
    char whybuf[48], reason[sizeof(out->reason)];

    out->location[0] = '\0';
    if (c == NULL || !c->enabled)
        return verdict(out, RP_EA_ANON, "authentication disabled");
    if (rp_easyauth_excluded(c, path))
        return verdict(out, RP_EA_ANON, "excluded path");
    if (claims != NULL && !json_is_object(claims))
        claims = NULL;
    if (claims != NULL && !c->aad)
        cause = "identity provider disabled";
    else if (claims != NULL) {
        const char *iss = claim_str(claims, "iss");
        const char *want = c->openid_issuer != NULL ? c->openid_issuer : c->issuer;

        if (iss == NULL || want == NULL || !url_eq(iss, want))
            cause = "token issuer not accepted";
        else if (!aud_ok(c, claims))
            cause = "token audience not accepted";
    }
    if (claims != NULL && cause == NULL) {
        app = claim_str(claims, "appid");
        if (app == NULL)
            app = claim_str(claims, "azp");
        if (c->client_apps.n > 0 && !in_list(&c->client_apps, app))
            return verdict(out, RP_EA_403, "client application not allowed");
        if (c->apps.n > 0 && !in_list(&c->apps, app))
            return verdict(out, RP_EA_403, "application not allowed");
        if (c->identities.n > 0 && !in_list(&c->identities, claim_str(claims, "oid")))
            return verdict(out, RP_EA_403, "principal not allowed");
        return verdict(out, RP_EA_PASS, "authenticated");
    }
    if (cause == NULL) {
        clean(why != NULL ? why : "missing", whybuf);
        snprintf(reason, sizeof(reason), "no valid token (%s)", whybuf);
        cause = reason;
    }
    if (!c->require_auth || c->action == ACT_ANON) {
        char anon[sizeof(out->reason)];
        snprintf(anon, sizeof(anon), "anonymous allowed: %.70s", cause);
        return verdict(out, RP_EA_ANON, anon);
    }
    if (c->action == ACT_401)
        return verdict(out, RP_EA_401, cause);
    if (c->action == ACT_403)
        return verdict(out, RP_EA_403, cause);
    if (xhr)
        return verdict(out, RP_EA_401, cause);
    redirect(c, target != NULL ? target : path, out);
    return verdict(out, RP_EA_REDIRECT, cause);
}

/* ---- principal ---------------------------------------------------------------------------- */

static const char *long_typ(const char *name)
{
    if (strcmp(name, "oid") == 0)
        return "http://schemas.microsoft.com/identity/claims/objectidentifier";
    if (strcmp(name, "tid") == 0)
        return "http://schemas.microsoft.com/identity/claims/tenantid";
    if (strcmp(name, "upn") == 0)
        return "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn";
    return name;
}

/* Appends {"typ","val"} for one claim value (not an array at the top). *bytes follows the
 * principal's JSON as it grows (exact unless values need escaping: the final dump is checked
 * too), so a huge claim set is refused before it is all copied. */
static int add_claim(json_t *list, const char *typ, const json_t *v, size_t *bytes)
{
    json_t *s, *entry;
    size_t n;

    if (json_is_null(v))
        return 0;
    if (json_array_size(list) >= RP_EASYAUTH_CLAIMS_MAX)
        return RP_ETOOBIG;
    if (json_is_string(v)) {
        n = json_string_length(v);
        if (n > PRINCIPAL_JSON_MAX)
            return RP_ETOOBIG;
        s = json_stringn(json_string_value(v), n);
    } else {
        char *t;

        n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
        if (n == 0)
            return RP_ENOMEM;
        if (n > PRINCIPAL_JSON_MAX)
            return RP_ETOOBIG;
        t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (t == NULL)
            return RP_ENOMEM;
        s = json_string(t);
        free(t);
    }
    *bytes += strlen(typ) + n + 20;
    if (*bytes > PRINCIPAL_JSON_MAX) {
        json_decref(s);
        return RP_ETOOBIG;
    }
    entry = s != NULL ? json_pack("{s:s,s:o}", "typ", typ, "val", s) : NULL;
    if (entry == NULL || json_array_append_new(list, entry) != 0)
        return RP_ENOMEM;
    return 0;
}

/* The flat claim list of a principal. 0 and *out (new), RP_EINVAL, RP_ETOOBIG, RP_ENOMEM. */
static int flatten(const json_t *claims, json_t **out)
{
    json_t *list, *val;
    const char *key;
    size_t bytes = PRINCIPAL_FRAME;
    int rc = 0;

    *out = NULL;
    if (!json_is_object(claims))
        return RP_EINVAL;
    list = json_array();
    if (list == NULL)
        return RP_ENOMEM;
    json_object_foreach((json_t *)claims, key, val)
    {
        const char *typ = long_typ(key);

        if (json_is_array(val)) {
            size_t i;
            json_t *x;

            json_array_foreach(val, i, x)
            {
                if ((rc = add_claim(list, typ, x, &bytes)) != 0)
                    break;
            }
        } else {
            rc = add_claim(list, typ, val, &bytes);
        }
        if (rc != 0)
            break;
    }
    if (rc != 0) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return 0;
}

/* A header value from the first string claim in names: control bytes become '?'. 0 and *out
 * (NULL if none), RP_ETOOBIG, RP_ENOMEM. */
static int header_claim(const json_t *claims, const char *const *names, char **out)
{
    *out = NULL;
    for (; *names != NULL; names++) {
        const json_t *x = json_object_get(claims, *names);
        const char *s = json_string_value(x);
        size_t n = json_string_length(x);

        if (s == NULL || n == 0)
            continue;
        if (n > RP_EASYAUTH_NAME_MAX)
            return RP_ETOOBIG;
        *out = rp_strndup(s, n);
        if (*out == NULL)
            return RP_ENOMEM;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)(*out)[i] < 0x20 || (*out)[i] == 0x7f)
                (*out)[i] = '?';
        return 0;
    }
    return 0;
}

static const char *const id_claims[] = {"oid", "sub", NULL};
static const char *const name_claims[] = {"name", "preferred_username", "upn", "appid", "azp",
                                          NULL};

void rp_easyauth_principal_free(rp_easyauth_principal *p)
{
    if (p == NULL)
        return;
    rp_free(p->principal);
    rp_free(p->id);
    rp_free(p->name);
    p->principal = p->id = p->name = NULL;
}

int rp_easyauth_principal_build(const json_t *claims, rp_easyauth_principal *out)
{
    json_t *list = NULL, *doc = NULL;
    char *text = NULL;
    size_t n, b64;
    int rc;

    memset(out, 0, sizeof(*out));
    out->idp = IDP;
    if ((rc = flatten(claims, &list)) != 0)
        goto out;
    doc = json_pack("{s:s,s:O,s:s,s:s}", "auth_typ", IDP, "claims", list, "name_typ", NAME_TYP,
                    "role_typ", ROLE_TYP);
    if (doc == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    n = json_dumpb(doc, NULL, 0, JSON_COMPACT);
    if (n == 0) {
        rc = RP_ENOMEM;
        goto out;
    }
    if (n > PRINCIPAL_JSON_MAX) {
        rc = RP_ETOOBIG;
        goto out;
    }
    text = rp_malloc(n);
    b64 = (n + 2) / 3 * 4;
    out->principal = rp_malloc(b64 + 1);
    if (text == NULL || out->principal == NULL || json_dumpb(doc, text, n, JSON_COMPACT) != n) {
        rc = RP_ENOMEM;
        goto out;
    }
    if (EVP_EncodeBlock((unsigned char *)out->principal, (const unsigned char *)text, (int)n) !=
        (int)b64) {
        rc = RP_ENOMEM;
        goto out;
    }
    if ((rc = header_claim(claims, id_claims, &out->id)) != 0 ||
        (rc = header_claim(claims, name_claims, &out->name)) != 0)
        goto out;
out:
    if (rc != 0)
        rp_easyauth_principal_free(out);
    rp_free(text);
    json_decref(doc);
    json_decref(list);
    return rc;
}

json_t *rp_easyauth_me(const json_t *claims, const char *token)
{
    json_t *list = NULL, *entry, *answer = NULL;
    char *name = NULL, *id = NULL;
    const json_t *exp;

    if (flatten(claims, &list) != 0 || header_claim(claims, name_claims, &name) != 0 ||
        header_claim(claims, id_claims, &id) != 0)
        goto out;
    entry = json_pack("{s:s,s:s,s:O,s:s}", "access_token", token != NULL ? token : "",
                      "provider_name", IDP, "user_claims", list, "user_id",
                      name != NULL ? name
                      : id != NULL ? id
                                   : "");
    exp = json_object_get(claims, "exp");
    if (entry != NULL && json_is_integer(exp) && json_integer_value(exp) >= 0) {
        char iso[21];
        rp_iso_time((int64_t)json_integer_value(exp), iso);
        if (json_object_set_new(entry, "expires_on", json_string(iso)) != 0) {
            json_decref(entry);
            entry = NULL;
        }
    }
    if (entry != NULL)
        answer = json_pack("[o]", entry);
out:
    rp_free(name);
    rp_free(id);
    json_decref(list);
    return answer;
}
