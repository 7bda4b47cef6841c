/*
 * appcfg.c - one app's settings (appcfg.h): merge, validate, parse once; answer the per-request
 * questions (client certificate, access restrictions) from the parsed form.
 *
 * Workload: built on start-up and on every settings change (rare); read on every request and
 * handshake of the app, from any loop thread, through a reference taken under the registry's
 * lock. Nothing in here changes after build, so readers need no lock of their own.
 */
#include "sites/appcfg.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_EXCLUSIONS 32
#define MAX_ORIGINS    100

struct rp_appcfg {
    atomic_uint refs;
    json_t *stored;
    int min_tls;
    rp_cert_mode cert_mode;
    char *paths[MAX_EXCLUSIONS]; /* exclusion prefixes, lower case */
    size_t npaths;
    X509_STORE *cas;
    STACK_OF(X509) * ca_list; /* for the view */
    rp_access *access, *scm_access;
    int scm_use_main;
    char *origins[MAX_ORIGINS]; /* CORS: lower case, scheme://host[:port] */
    size_t norigins;
    const char *command;                   /* appCommandLine (in stored), or NULL */
    int cors_any;                          /* "*" */
    int cors_credentials;                  /* supportCredentials */
    int tier;                              /* sandbox.tier: RP_PROC_SHARED | RP_PROC_ISOLATED */
    uint32_t memory_mb, pids, cpu_percent; /* sandbox limits, defaults filled in */
    const char *health_path;               /* healthCheckPath (in stored), or NULL */
};

static const char *const known[] = {"minTlsVersion",
                                    "clientCertEnabled",
                                    "clientCertMode",
                                    "clientCertExclusionPaths",
                                    "clientCertTrustedCAs",
                                    "ipSecurityRestrictions",
                                    "ipSecurityRestrictionsDefaultAction",
                                    "scmIpSecurityRestrictions",
                                    "scmIpSecurityRestrictionsDefaultAction",
                                    "scmIpSecurityRestrictionsUseMain",
                                    "cors",
                                    "appCommandLine",
                                    "sandbox",
                                    "healthCheckPath"};

static int is_known(const char *k)
{
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(k, known[i]) == 0)
            return 1;
    return 0;
}

static void free_cfg(rp_appcfg *c)
{
    json_decref(c->stored);
    for (size_t i = 0; i < c->npaths; i++)
        rp_free(c->paths[i]);
    for (size_t i = 0; i < c->norigins; i++)
        rp_free(c->origins[i]);
    X509_STORE_free(c->cas);
    sk_X509_pop_free(c->ca_list, X509_free);
    rp_access_free(c->access);
    rp_access_free(c->scm_access);
    rp_free(c);
}

rp_appcfg *rp_appcfg_ref(rp_appcfg *c)
{
    if (c != NULL)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

void rp_appcfg_unref(rp_appcfg *c)
{
    if (c != NULL && atomic_fetch_sub(&c->refs, 1) == 1)
        free_cfg(c);
}

static int parse_paths(rp_appcfg *c, const char *s, char *err, size_t errlen)
{
    size_t n = strlen(s);

    if (n > RP_APPCFG_PATHS_MAX)
        return rp_errf(err, errlen, RP_EINVAL, "%s is too long", "clientCertExclusionPaths");
    for (const char *p = s; *p;) {
        size_t len = strcspn(p, ",;");
        rp_str t = rp_str_trim((rp_str){p, len});
        if (t.n > 0) {
            char *x;
            if (t.p[0] != '/')
                return rp_errf(err, errlen, RP_EINVAL, "%s: every path starts with '/'",
                               "clientCertExclusionPaths");
            if (c->npaths == MAX_EXCLUSIONS)
                return rp_errf(err, errlen, RP_EINVAL, "%s: at most 32 paths",
                               "clientCertExclusionPaths");
            x = rp_malloc(t.n + 1);
            if (x == NULL)
                return RP_ENOMEM;
            for (size_t i = 0; i < t.n; i++) {
                unsigned char ch = (unsigned char)t.p[i];
                if (ch <= 0x20 || ch >= 0x7f) {
                    rp_free(x);
                    return rp_errf(err, errlen, RP_EINVAL,
                                   "%s: paths are printable ASCII without spaces",
                                   "clientCertExclusionPaths");
                }
                x[i] = rp_lower(t.p[i]);
            }
            x[t.n] = '\0';
            c->paths[c->npaths++] = x;
        }
        p += len;
        if (*p)
            p++;
    }
    return 0;
}

static int parse_cas(rp_appcfg *c, const char *pem, char *err, size_t errlen)
{
    size_t n = strlen(pem);
    BIO *b;
    X509 *x;
    int rc = 0;

    if (n > RP_APPCFG_CA_MAX)
        return rp_errf(err, errlen, RP_EINVAL, "%s is too large", "clientCertTrustedCAs");
    c->cas = X509_STORE_new();
    c->ca_list = sk_X509_new_null();
    b = BIO_new_mem_buf(pem, (int)n);
    if (c->cas == NULL || c->ca_list == NULL || b == NULL) {
        BIO_free(b);
        return RP_ENOMEM;
    }
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(c->cas, x) != 1 || sk_X509_push(c->ca_list, x) <= 0) {
            X509_free(x);
            rc = RP_ENOMEM;
            break;
        }
    }
    ERR_clear_error(); /* the end of the PEM stream reads as an error */
    BIO_free(b);
    if (rc != 0)
        return rc;
    if (sk_X509_num(c->ca_list) == 0)
        return rp_errf(err, errlen, RP_EINVAL, "%s holds no PEM certificate",
                       "clientCertTrustedCAs");
    return 0;
}

/* scheme://host[:port] with scheme http or https, no path, no userinfo: a serialised origin. */
static int origin_ok(const char *o)
{
    const char *h;
    size_t n = strlen(o);

    if (strncmp(o, "https://", 8) == 0)
        h = o + 8;
    else if (strncmp(o, "http://", 7) == 0)
        h = o + 7;
    else
        return 0;
    if (*h == '\0' || n > 253 + 16)
        return 0;
    for (const char *p = h; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == ':' || ch == '[' || ch == ']'))
            return 0;
    }
    return 1;
}

static int parse_cors(rp_appcfg *c, const json_t *x, char *err, size_t errlen)
{
    const json_t *list = json_object_get(x, "allowedOrigins"),
                 *cred = json_object_get(x, "supportCredentials");
    const char *key;
    json_t *val;
    size_t i;

    if (!json_is_object(x))
        return rp_errf(err, errlen, RP_EINVAL,
                       "%s must be {\"allowedOrigins\": [...], \"supportCredentials\": b}", "cors");
    json_object_foreach((json_t *)x, key, val)
    {
        (void)val;
        if (strcmp(key, "allowedOrigins") != 0 && strcmp(key, "supportCredentials") != 0)
            return rp_errf(err, errlen, RP_EINVAL, "cors: unknown member '%.40s'", key);
    }
    if (cred != NULL && !json_is_boolean(cred))
        return rp_errf(err, errlen, RP_EINVAL, "%s must be true or false",
                       "cors.supportCredentials");
    c->cors_credentials = json_is_true(cred);
    if (list != NULL && !json_is_array(list))
        return rp_errf(err, errlen, RP_EINVAL, "%s must be an array of origins",
                       "cors.allowedOrigins");
    if (json_array_size(list) > MAX_ORIGINS)
        return rp_errf(err, errlen, RP_EINVAL, "%s: at most %d origins", "cors.allowedOrigins",
                       MAX_ORIGINS);
    json_array_foreach(list, i, val)
    {
        const char *o = json_string_value(val);
        char *x2;
        if (o != NULL && strcmp(o, "*") == 0) {
            c->cors_any = 1;
            continue;
        }
        if (o == NULL || !origin_ok(o))
            return rp_errf(
                err, errlen, RP_EINVAL,
                "cors.allowedOrigins[%zu]: an origin is https://host[:port] (or http://), "
                "without a path, or \"*\"",
                i);
        x2 = rp_malloc(strlen(o) + 1);
        if (x2 == NULL)
            return RP_ENOMEM;
        for (size_t k = 0; o[k]; k++)
            x2[k] = rp_lower(o[k]);
        x2[strlen(o)] = '\0';
        c->origins[c->norigins++] = x2;
    }
    /* Any origin with the caller's cookies would let every site act as the user. */
    if (c->cors_any && c->cors_credentials)
        return rp_errf(err, errlen, RP_EINVAL,
                       "%s: \"*\" cannot be combined with supportCredentials",
                       "cors.allowedOrigins");
    return 0;
}

/* The CPU a sandbox may ask for: all of this machine's cores. */
static uint32_t cpu_max(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return 100u * (uint32_t)(n > 0 && n < 4096 ? n : 1);
}

/* One limit of "sandbox": absent is the default; else an integer in lo..hi. */
static int parse_limit(const json_t *x, const char *key, uint32_t lo, uint32_t hi, uint32_t deflt,
                       uint32_t *out, char *err, size_t errlen)
{
    const json_t *v = json_object_get(x, key);
    json_int_t n;

    *out = deflt;
    if (v == NULL || json_is_null(v))
        return 0;
    n = json_is_integer(v) ? json_integer_value(v) : -1;
    if (n < (json_int_t)lo || n > (json_int_t)hi)
        return rp_errf(err, errlen, RP_EINVAL, "sandbox.%s must be an integer from %u to %u", key,
                       lo, hi);
    *out = (uint32_t)n;
    return 0;
}

static int parse_sandbox(rp_appcfg *c, const json_t *x, char *err, size_t errlen)
{
    const json_t *tier = json_object_get(x, "tier");
    const char *key;
    json_t *val;
    int rc;

    c->tier = RP_PROC_SHARED;
    c->memory_mb = RP_PROC_MEMORY_MB_DEFAULT;
    c->pids = RP_PROC_PIDS_DEFAULT;
    c->cpu_percent = RP_PROC_CPU_DEFAULT;
    if (x == NULL)
        return 0;
    if (!json_is_object(x))
        return rp_errf(err, errlen, RP_EINVAL,
                       "%s must be {\"tier\": \"shared\"|\"isolated\", \"memoryMB\": n, "
                       "\"pids\": n, \"cpuPercent\": n}",
                       "sandbox");
    json_object_foreach((json_t *)x, key, val)
    {
        (void)val;
        if (strcmp(key, "tier") != 0 && strcmp(key, "memoryMB") != 0 && strcmp(key, "pids") != 0 &&
            strcmp(key, "cpuPercent") != 0)
            return rp_errf(err, errlen, RP_EINVAL,
                           "sandbox: unknown member '%.40s' (tier, memoryMB, pids, cpuPercent)",
                           key);
    }
    if (tier != NULL && !json_is_null(tier)) {
        const char *t = json_string_value(tier);
        if (t != NULL && strcmp(t, "isolated") == 0)
            c->tier = RP_PROC_ISOLATED;
        else if (t == NULL || strcmp(t, "shared") != 0)
            return rp_errf(err, errlen, RP_EINVAL, "%s must be \"shared\" or \"isolated\"",
                           "sandbox.tier");
    }
    if ((rc = parse_limit(x, "memoryMB", RP_APPCFG_MEMORY_MIN, RP_APPCFG_MEMORY_MAX,
                          RP_PROC_MEMORY_MB_DEFAULT, &c->memory_mb, err, errlen)) != 0 ||
        (rc = parse_limit(x, "pids", RP_APPCFG_PIDS_MIN, RP_APPCFG_PIDS_MAX, RP_PROC_PIDS_DEFAULT,
                          &c->pids, err, errlen)) != 0 ||
        (rc = parse_limit(x, "cpuPercent", 1, cpu_max(), RP_PROC_CPU_DEFAULT, &c->cpu_percent, err,
                          errlen)) != 0)
        return rc;
    return 0;
}

/* healthCheckPath: "" (none) or a path the supervisor can put in a request line as it is. */
static int parse_health(rp_appcfg *c, const json_t *x, char *err, size_t errlen)
{
    const char *path = json_string_value(x);
    size_t n = path ? strlen(path) : 0;

    if (path == NULL || n > RP_PROC_HEALTH_PATH_MAX || (n > 0 && path[0] != '/'))
        return rp_errf(err, errlen, RP_EINVAL,
                       "%s must be \"\" or a path starting with '/' of at most %d characters",
                       "healthCheckPath", RP_PROC_HEALTH_PATH_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)path[i] <= 0x20 || (unsigned char)path[i] >= 0x7f || path[i] == '#')
            return rp_errf(err, errlen, RP_EINVAL,
                           "%s must be printable ASCII without spaces or '#'", "healthCheckPath");
    c->health_path = n > 0 ? path : NULL;
    return 0;
}

static int parse_rules(const json_t *o, const char *rules, const char *deflt, rp_access **out,
                       char *err, size_t errlen)
{
    const json_t *r = json_object_get(o, rules), *d = json_object_get(o, deflt);
    char msg[256];
    int rc;

    if (r != NULL && !json_is_array(r) && !json_is_null(r))
        return rp_errf(err, errlen, RP_EINVAL, "%s must be an array of rules", rules);
    if (d != NULL && !json_is_null(d) &&
        (!json_is_string(d) ||
         (strcmp(json_string_value(d), "Allow") != 0 && strcmp(json_string_value(d), "Deny") != 0)))
        return rp_errf(err, errlen, RP_EINVAL, "%s must be \"Allow\" or \"Deny\"", deflt);
    msg[0] = '\0';
    rc = rp_access_parse(json_is_array(r) ? r : NULL,
                         json_is_string(d) ? json_string_value(d) : NULL, out, msg, sizeof(msg));
    if (rc == RP_EINVAL && err != NULL)
        snprintf(err, errlen, "%s: %s", rules, msg[0] ? msg : "invalid rule");
    return rc;
}

int rp_appcfg_build(const json_t *base, const json_t *patch, rp_appcfg **out, char *err,
                    size_t errlen)
{
    rp_appcfg *c = rp_calloc(1, sizeof(*c));
    const char *key, *mode = NULL;
    json_t *val, *x;
    int rc = RP_EINVAL, enabled = -1;

    if (c == NULL)
        return RP_ENOMEM;
    atomic_init(&c->refs, 1);
    c->stored = base != NULL ? json_deep_copy(base) : json_object();
    if (c->stored == NULL || !json_is_object(c->stored)) {
        rc = c->stored == NULL
                 ? RP_ENOMEM
                 : rp_errf(err, errlen, RP_EINVAL, "%s", "settings must be an object");
        goto fail;
    }
    if (patch != NULL) {
        if (!json_is_object(patch)) {
            rc = rp_errf(err, errlen, RP_EINVAL, "%s", "properties must be an object");
            goto fail;
        }
        json_object_foreach((json_t *)patch, key, val)
        {
            if (!is_known(key)) {
                rc = rp_errf(err, errlen, RP_EINVAL,
                             "unknown property '%.60s' (app settings, slots and authentication are "
                             "not available yet)",
                             key);
                goto fail;
            }
            if (json_object_set(c->stored, key, val) != 0) {
                rc = RP_ENOMEM;
                goto fail;
            }
        }
    }
    /* Null means "the default": drop it so the stored form stays minimal. */
    json_object_foreach_safe(c->stored, x, key, val)
    {
        (void)x;
        if (json_is_null(val))
            json_object_del(c->stored, key);
    }
    c->min_tls = 12;
    x = json_object_get(c->stored, "minTlsVersion");
    if (x != NULL) {
        if (json_is_string(x) && strcmp(json_string_value(x), "1.3") == 0)
            c->min_tls = 13;
        else if (!json_is_string(x) || strcmp(json_string_value(x), "1.2") != 0) {
            rc = rp_errf(err, errlen, RP_EINVAL,
                         "%s must be \"1.2\" or \"1.3\" (older versions are never allowed)",
                         "minTlsVersion");
            goto fail;
        }
    }
    x = json_object_get(c->stored, "clientCertEnabled");
    if (x != NULL) {
        if (!json_is_boolean(x)) {
            rc = rp_errf(err, errlen, RP_EINVAL, "%s must be true or false", "clientCertEnabled");
            goto fail;
        }
        enabled = json_is_true(x);
    }
    x = json_object_get(c->stored, "clientCertMode");
    if (x != NULL) {
        if (!json_is_string(x)) {
            rc = rp_errf(err, errlen, RP_EINVAL, "%s must be a string", "clientCertMode");
            goto fail;
        }
        mode = json_string_value(x);
    }
    if (enabled == 0 || (enabled == -1 && mode == NULL))
        c->cert_mode = RP_CERT_OFF;
    else if (mode == NULL || strcmp(mode, "Required") == 0)
        c->cert_mode = RP_CERT_REQUIRED;
    else if (strcmp(mode, "Optional") == 0)
        c->cert_mode = RP_CERT_OPTIONAL;
    else if (strcmp(mode, "OptionalInteractiveUser") == 0)
        c->cert_mode = RP_CERT_OPTIONAL_INTERACTIVE;
    else {
        rc = rp_errf(err, errlen, RP_EINVAL,
                     "%s must be Required, Optional or OptionalInteractiveUser", "clientCertMode");
        goto fail;
    }
    x = json_object_get(c->stored, "clientCertExclusionPaths");
    if (x != NULL) {
        if (!json_is_string(x)) {
            rc = rp_errf(err, errlen, RP_EINVAL, "%s must be a string", "clientCertExclusionPaths");
            goto fail;
        }
        if ((rc = parse_paths(c, json_string_value(x), err, errlen)) != 0)
            goto fail;
    }
    x = json_object_get(c->stored, "clientCertTrustedCAs");
    if (x != NULL) {
        if (!json_is_string(x)) {
            rc = rp_errf(err, errlen, RP_EINVAL, "%s must be a string of PEM certificates",
                         "clientCertTrustedCAs");
            goto fail;
        }
        if ((rc = parse_cas(c, json_string_value(x), err, errlen)) != 0)
            goto fail;
    }
    if (c->cert_mode != RP_CERT_OFF && c->cas == NULL) {
        rc = rp_errf(err, errlen, RP_EINVAL,
                     "%s: client certificates are checked against the app's trusted CAs; set "
                     "clientCertTrustedCAs too",
                     "clientCertMode");
        goto fail;
    }
    x = json_object_get(c->stored, "scmIpSecurityRestrictionsUseMain");
    if (x != NULL && !json_is_boolean(x)) {
        rc = rp_errf(err, errlen, RP_EINVAL, "%s must be true or false",
                     "scmIpSecurityRestrictionsUseMain");
        goto fail;
    }
    c->scm_use_main = json_is_true(x);
    x = json_object_get(c->stored, "cors");
    if (x != NULL && (rc = parse_cors(c, x, err, errlen)) != 0)
        goto fail;
    if ((rc = parse_sandbox(c, json_object_get(c->stored, "sandbox"), err, errlen)) != 0)
        goto fail;
    x = json_object_get(c->stored, "appCommandLine");
    if (x != NULL) {
        const char *cmd = json_string_value(x);
        size_t n = cmd ? strlen(cmd) : 0;
        if (cmd == NULL || n > 1024) {
            rc = rp_errf(err, errlen, RP_EINVAL, "%s must be a command of at most 1024 characters",
                         "appCommandLine");
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)cmd[i] < 0x20 || cmd[i] == 0x7f) {
                rc = rp_errf(err, errlen, RP_EINVAL, "%s must not hold control characters",
                             "appCommandLine");
                goto fail;
            }
        }
        c->command = n > 0 ? cmd : NULL;
    }
    x = json_object_get(c->stored, "healthCheckPath");
    if (x != NULL && (rc = parse_health(c, x, err, errlen)) != 0)
        goto fail;
    rc = parse_rules(c->stored, "ipSecurityRestrictions", "ipSecurityRestrictionsDefaultAction",
                     &c->access, err, errlen);
    if (rc == 0)
        rc = parse_rules(c->stored, "scmIpSecurityRestrictions",
                         "scmIpSecurityRestrictionsDefaultAction", &c->scm_access, err, errlen);
    if (rc != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    free_cfg(c);
    return rc;
}

const json_t *rp_appcfg_stored(const rp_appcfg *c)
{
    return c->stored;
}

const char *rp_appcfg_command(const rp_appcfg *c)
{
    return c->command;
}

int rp_appcfg_min_tls(const rp_appcfg *c)
{
    return c->min_tls;
}

rp_cert_mode rp_appcfg_cert_mode(const rp_appcfg *c)
{
    return c->cert_mode;
}

int rp_appcfg_tier(const rp_appcfg *c)
{
    return c->tier;
}

uint32_t rp_appcfg_memory_mb(const rp_appcfg *c)
{
    return c->memory_mb;
}

uint32_t rp_appcfg_pids(const rp_appcfg *c)
{
    return c->pids;
}

uint32_t rp_appcfg_cpu_percent(const rp_appcfg *c)
{
    return c->cpu_percent;
}

const char *rp_appcfg_health_path(const rp_appcfg *c)
{
    return c->health_path;
}

static int same_str(const char *x, const char *y)
{
    return (x == NULL && y == NULL) || (x != NULL && y != NULL && strcmp(x, y) == 0);
}

int rp_appcfg_process_equal(const rp_appcfg *a, const rp_appcfg *b)
{
    return same_str(a->command, b->command) && a->tier == b->tier && a->memory_mb == b->memory_mb &&
           a->pids == b->pids && a->cpu_percent == b->cpu_percent &&
           same_str(a->health_path, b->health_path);
}

json_t *rp_appcfg_view(const rp_appcfg *c)
{
    static const char *const modes[] = {"Required", "Required", "Optional",
                                        "OptionalInteractiveUser"};
    json_t *v, *cas = json_array(), *paths = json_object_get(c->stored, "clientCertExclusionPaths");

    v = json_pack(
        "{s:s,s:b,s:s,s:s,s:o,s:o,s:o,s:b}", "minTlsVersion", c->min_tls == 13 ? "1.3" : "1.2",
        "clientCertEnabled", c->cert_mode != RP_CERT_OFF, "clientCertMode", modes[c->cert_mode],
        "clientCertExclusionPaths", json_is_string(paths) ? json_string_value(paths) : "",
        "clientCertTrustedCAs", cas ? cas : json_array(), "ipSecurityRestrictions",
        rp_access_to_json(c->access), "scmIpSecurityRestrictions", rp_access_to_json(c->scm_access),
        "scmIpSecurityRestrictionsUseMain", c->scm_use_main);
    if (v != NULL)
        json_object_set_new(v, "appCommandLine", json_string(c->command ? c->command : ""));
    if (v != NULL)
        json_object_set_new(v, "healthCheckPath",
                            json_string(c->health_path ? c->health_path : ""));
    if (v != NULL) {
        json_t *cors = json_object_get(c->stored, "cors");
        json_object_set_new(
            v, "cors",
            cors ? json_deep_copy(cors)
                 : json_pack("{s:[],s:b}", "allowedOrigins", "supportCredentials", 0));
    }
    if (v != NULL)
        json_object_set_new(v, "sandbox",
                            json_pack("{s:s,s:I,s:I,s:I}", "tier",
                                      c->tier == RP_PROC_ISOLATED ? "isolated" : "shared",
                                      "memoryMB", (json_int_t)c->memory_mb, "pids",
                                      (json_int_t)c->pids, "cpuPercent",
                                      (json_int_t)c->cpu_percent));
    for (int i = 0; v != NULL && cas != NULL && c->ca_list != NULL && i < sk_X509_num(c->ca_list);
         i++) {
        char subject[256];
        X509_NAME_oneline(X509_get_subject_name(sk_X509_value(c->ca_list, i)), subject,
                          sizeof(subject));
        json_array_append_new(cas, json_string(subject));
    }
    return v;
}

static int excluded(const rp_appcfg *c, const char *path)
{
    size_t n = strlen(path);

    for (size_t i = 0; i < c->npaths; i++) {
        size_t k = strlen(c->paths[i]);
        /* A whole segment: "/public" covers /public and /public/x, not /publicity. */
        if (k <= n && strncasecmp(path, c->paths[i], k) == 0 &&
            (path[k] == '\0' || path[k] == '/' || c->paths[i][k - 1] == '/'))
            return 1;
    }
    return 0;
}

static int chains(const rp_appcfg *c, X509 *peer)
{
    X509_STORE_CTX *ctx;
    int ok = 0;

    /* An end entity only: a CA's own certificate is no client identity, even one we trust. */
    if (X509_check_ca(peer) != 0)
        return 0;
    ctx = X509_STORE_CTX_new();

    if (ctx != NULL && X509_STORE_CTX_init(ctx, c->cas, peer, NULL) == 1 &&
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) == 1)
        ok = X509_verify_cert(ctx) == 1;
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

int rp_appcfg_cert_check(const rp_appcfg *c, const char *path, X509 *peer, int *trusted)
{
    *trusted = 0;
    if (c->cert_mode == RP_CERT_OFF)
        return 1;
    *trusted = peer != NULL && chains(c, peer);
    if (c->cert_mode != RP_CERT_REQUIRED || *trusted)
        return 1;
    return excluded(c, path);
}

int rp_appcfg_access(const rp_appcfg *c, int scm, const rp_req *req, rp_access_result *res)
{
    rp_access_req r = {req->client_ip, req->head ? req->head->headers : NULL,
                       req->head ? req->head->nheaders : 0};

    rp_access_check(scm && !c->scm_use_main ? c->scm_access : c->access, &r, res);
    return res->allowed;
}

int rp_appcfg_cors_set(const rp_appcfg *c)
{
    return c->cors_any || c->norigins > 0;
}

int rp_appcfg_cors(const rp_appcfg *c, const char *origin, size_t n, int *credentials)
{
    *credentials = c->cors_credentials;
    if (c->cors_any)
        return 1;
    for (size_t i = 0; i < c->norigins; i++)
        if (strlen(c->origins[i]) == n && strncasecmp(c->origins[i], origin, n) == 0)
            return 1;
    return 0;
}
