/*
 * settings.c - app settings, connection strings and Key Vault reference syntax (settings.h).
 */
#include "sites/settings.h"

#include "base/err.h"
#include "base/str.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* What the platform sets in every app's environment: a setting may not replace them. */
static const char *const reserved[] = {"PORT",
                                       "HOME",
                                       "PATH",
                                       "IDENTITY_ENDPOINT",
                                       "IDENTITY_HEADER",
                                       "WEBSITE_SITE_NAME",
                                       "WEBSITE_HOSTNAME",
                                       "WEBSITE_INSTANCE_ID",
                                       "WEBSITE_AUTH_ENCRYPTION_KEY",
                                       "FUNCTIONS_CUSTOMHANDLER_PORT"};

static const struct {
    const char *type, *prefix;
} conn_types[] = {
    {"SQLServer", "SQLCONNSTR_"},         {"SQLAzure", "SQLAZURECONNSTR_"},
    {"MySql", "MYSQLCONNSTR_"},           {"PostgreSQL", "POSTGRESQLCONNSTR_"},
    {"Custom", "CUSTOMCONNSTR_"},         {"NotificationHub", "NOTIFICATIONHUBCONNSTR_"},
    {"ServiceBus", "SERVICEBUSCONNSTR_"}, {"EventHub", "EVENTHUBCONNSTR_"},
    {"DocDb", "DOCDBCONNSTR_"},           {"RedisCache", "REDISCACHECONNSTR_"},
};

int rp_settings_env_name(const char *name, char *out, size_t cap)
{
    size_t o = 0;

    for (const char *p = name; *p; p++) {
        const char *put = *p == '.' ? "_" : *p == ':' ? "__" : NULL;
        size_t k = put ? strlen(put) : 1;
        if (o + k >= cap)
            return RP_ETOOBIG;
        if (put)
            memcpy(out + o, put, k);
        else
            out[o] = *p;
        o += k;
    }
    if (cap == 0)
        return RP_ETOOBIG;
    out[o] = '\0';
    return 0;
}

const char *rp_settings_conn_prefix(const char *type)
{
    for (size_t i = 0; i < sizeof(conn_types) / sizeof(conn_types[0]); i++)
        if (strcmp(type, conn_types[i].type) == 0)
            return conn_types[i].prefix;
    return NULL;
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

static int name_ok(const char *name, char *err, size_t errlen, const char *what)
{
    size_t n = strlen(name);

    if (n == 0 || n > RP_SETTINGS_NAME_MAX) {
        snprintf(err, errlen, "%s names are 1 to %d characters", what, RP_SETTINGS_NAME_MAX);
        return 0;
    }
    if (name[0] >= '0' && name[0] <= '9') {
        snprintf(err, errlen, "%s '%.64s': a name may not start with a digit", what, name);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-')) {
            snprintf(err, errlen,
                     "%s '%.64s': names may contain only letters, digits, '_', '.', ':' and '-'",
                     what, printable(name) ? name : "(not printable)");
            return 0;
        }
    }
    return 1;
}

/* The value's bytes are stored and passed as they are, except NUL (an environment string ends
 * at the first NUL, so the app would see something other than what was set). */
static int value_ok(const char *name, const json_t *v, size_t *n, char *err, size_t errlen,
                    const char *what)
{
    if (!json_is_string(v)) {
        snprintf(err, errlen, "%s '%.64s': the value must be a string", what, name);
        return 0;
    }
    *n = json_string_length(v);
    if (*n > RP_SETTINGS_VALUE_MAX) {
        snprintf(err, errlen, "%s '%.64s': values are at most %u bytes", what, name,
                 RP_SETTINGS_VALUE_MAX);
        return 0;
    }
    if (memchr(json_string_value(v), '\0', *n) != NULL) {
        snprintf(err, errlen, "%s '%.64s': the value contains a NUL character", what, name);
        return 0;
    }
    return 1;
}

/* Refuses a name that would replace a platform variable or another setting's variable. */
static int env_clash(const char *name, const char *prefix, json_t *seen, char *err, size_t errlen,
                     const char *what)
{
    char env[2 * RP_SETTINGS_NAME_MAX + 64], key[sizeof(env)];
    size_t pl = strlen(prefix);

    memcpy(env, prefix, pl);
    if (rp_settings_env_name(name, env + pl, sizeof(env) - pl) != 0) {
        snprintf(err, errlen, "%s '%.64s': the name is too long", what, name);
        return 1;
    }
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strcasecmp(env, reserved[i]) == 0 || strncasecmp(env, "MSI_", 4) == 0) {
            snprintf(err, errlen, "%s '%.64s': the platform sets %s itself", what, name, env);
            return 1;
        }
    }
    for (size_t i = 0; env[i]; i++)
        key[i] = rp_lower(env[i]), key[i + 1] = '\0';
    if (json_object_get(seen, key) != NULL) {
        snprintf(err, errlen, "%s '%.64s': another setting already becomes the variable %s", what,
                 name, env);
        return 1;
    }
    return json_object_set_new(seen, key, json_true()) != 0;
}

int rp_settings_check_app(const json_t *props, json_t **out, char *err, size_t errlen)
{
    json_t *res = NULL, *seen = NULL;
    const char *k;
    json_t *v;
    size_t total = 0, n;

    *out = NULL;
    err[0] = '\0';
    if (!json_is_object(props)) {
        snprintf(err, errlen, "properties must be an object of setting names and values");
        return RP_EINVAL;
    }
    if (json_object_size(props) > RP_SETTINGS_COUNT_MAX) {
        snprintf(err, errlen, "an app has at most %d settings", RP_SETTINGS_COUNT_MAX);
        return RP_EINVAL;
    }
    res = json_object();
    seen = json_object();
    if (res == NULL || seen == NULL)
        goto oom;
    json_object_foreach((json_t *)props, k, v)
    {
        if (!name_ok(k, err, errlen, "app setting") ||
            !value_ok(k, v, &n, err, errlen, "app setting") ||
            env_clash(k, "", seen, err, errlen, "app setting"))
            goto bad;
        total += strlen(k) + n;
        if (total > RP_SETTINGS_TOTAL_MAX) {
            snprintf(err, errlen, "an app's settings are at most %u bytes together",
                     RP_SETTINGS_TOTAL_MAX);
            goto bad;
        }
        if (json_object_set(res, k, v) != 0)
            goto oom;
    }
    json_decref(seen);
    *out = res;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    json_decref(res);
    json_decref(seen);
    return RP_ENOMEM;
bad:
    json_decref(res);
    json_decref(seen);
    return RP_EINVAL;
}

int rp_settings_check_conn(const json_t *props, json_t **out, char *err, size_t errlen)
{
    json_t *res = NULL, *seen = NULL;
    const char *k;
    json_t *v;
    size_t total = 0, n;

    *out = NULL;
    err[0] = '\0';
    if (!json_is_object(props)) {
        snprintf(err, errlen,
                 "properties must be an object of connection string names and "
                 "{\"value\", \"type\"} objects");
        return RP_EINVAL;
    }
    if (json_object_size(props) > RP_SETTINGS_COUNT_MAX) {
        snprintf(err, errlen, "an app has at most %d connection strings", RP_SETTINGS_COUNT_MAX);
        return RP_EINVAL;
    }
    res = json_object();
    seen = json_object();
    if (res == NULL || seen == NULL)
        goto oom;
    json_object_foreach((json_t *)props, k, v)
    {
        const json_t *val = json_object_get(v, "value"), *type = json_object_get(v, "type");
        const char *canon = NULL, *prefix = NULL, *mk;
        json_t *mv;
        if (!name_ok(k, err, errlen, "connection string"))
            goto bad;
        if (!json_is_object(v)) {
            snprintf(err, errlen, "connection string '%.64s': must be {\"value\", \"type\"}", k);
            goto bad;
        }
        json_object_foreach((json_t *)v, mk, mv)
        {
            if (strcmp(mk, "value") != 0 && strcmp(mk, "type") != 0) {
                snprintf(err, errlen, "connection string '%.64s': unknown member '%.32s'", k,
                         printable(mk) ? mk : "?");
                goto bad;
            }
        }
        if (!value_ok(k, val, &n, err, errlen, "connection string"))
            goto bad;
        if (!json_is_string(type)) {
            snprintf(err, errlen,
                     "connection string '%.64s': type is required (SQLAzure, "
                     "SQLServer, MySql, PostgreSQL, Custom, ...)",
                     k);
            goto bad;
        }
        for (size_t i = 0; i < sizeof(conn_types) / sizeof(conn_types[0]); i++) {
            if (strcasecmp(json_string_value(type), conn_types[i].type) == 0) {
                canon = conn_types[i].type;
                prefix = conn_types[i].prefix;
            }
        }
        if (canon == NULL) {
            snprintf(err, errlen,
                     "connection string '%.64s': type must be one of SQLServer, SQLAzure, MySql, "
                     "PostgreSQL, Custom, NotificationHub, ServiceBus, EventHub, DocDb, "
                     "RedisCache",
                     k);
            goto bad;
        }
        if (env_clash(k, prefix, seen, err, errlen, "connection string"))
            goto bad;
        total += strlen(k) + n;
        if (total > RP_SETTINGS_TOTAL_MAX) {
            snprintf(err, errlen, "an app's connection strings are at most %u bytes together",
                     RP_SETTINGS_TOTAL_MAX);
            goto bad;
        }
        if (json_object_set_new(res, k, json_pack("{s:O,s:s}", "value", val, "type", canon)) != 0)
            goto oom;
    }
    json_decref(seen);
    *out = res;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    json_decref(res);
    json_decref(seen);
    return RP_ENOMEM;
bad:
    json_decref(res);
    json_decref(seen);
    return RP_EINVAL;
}

/* ---------------------------------------------------------------- Key Vault references */

static int vault_ok(const char *p, size_t n)
{
    if (n < 3 || n > 24)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = rp_lower(p[i]);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return 1;
}

static int secret_ok(const char *p, size_t n)
{
    if (n < 1 || n > 127)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return 0;
    }
    return 1;
}

static int version_ok(const char *p, size_t n)
{
    if (n != 32)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = rp_lower(p[i]);
        if (!((c >= 'a' && c <= 'f') || (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

static void put(char *dst, size_t cap, const char *p, size_t n, int lower)
{
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = lower ? rp_lower(p[i]) : p[i];
    dst[n] = '\0';
}

/* https://VAULT.vault.D[:port]/secrets/NAME[/VERSION][/] */
static int parse_uri(const char *p, size_t n, const char *domain, rp_kvref *ref, const char **why)
{
    const char *host, *end = p + n, *slash, *colon, *seg, *s2;
    char suffix[300];
    size_t hl, sl;

    if (n < 8 || strncasecmp(p, "https://", 8) != 0) {
        *why = "SecretUri must be an https:// URL";
        return -1;
    }
    host = p + 8;
    slash = memchr(host, '/', (size_t)(end - host));
    if (slash == NULL) {
        *why = "SecretUri has no path";
        return -1;
    }
    colon = memchr(host, ':', (size_t)(slash - host));
    hl = (size_t)((colon ? colon : slash) - host);
    if (colon != NULL) {
        if (slash - colon < 2 || slash - colon > 6) {
            *why = "SecretUri has a bad port";
            return -1;
        }
        for (const char *q = colon + 1; q < slash; q++) {
            if (*q < '0' || *q > '9') {
                *why = "SecretUri has a bad port";
                return -1;
            }
        }
    }
    sl = (size_t)snprintf(suffix, sizeof(suffix), ".vault.%s", domain);
    if (sl >= sizeof(suffix) || hl <= sl || strncasecmp(host + hl - sl, suffix, sl) != 0) {
        *why = "SecretUri must name a vault of this platform (https://VAULT.vault.DOMAIN/...)";
        return -1;
    }
    if (!vault_ok(host, hl - sl)) {
        *why = "SecretUri names an invalid vault";
        return -1;
    }
    put(ref->vault, sizeof(ref->vault), host, hl - sl, 1);
    if ((size_t)(end - slash) < 9 || strncmp(slash, "/secrets/", 9) != 0) {
        *why = "SecretUri's path must be /secrets/NAME[/VERSION]";
        return -1;
    }
    seg = slash + 9;
    s2 = memchr(seg, '/', (size_t)(end - seg));
    if (!secret_ok(seg, (size_t)((s2 ? s2 : end) - seg))) {
        *why = "SecretUri names an invalid secret";
        return -1;
    }
    put(ref->secret, sizeof(ref->secret), seg, (size_t)((s2 ? s2 : end) - seg), 0);
    if (s2 == NULL || s2 + 1 == end)
        return 1;
    seg = s2 + 1;
    s2 = memchr(seg, '/', (size_t)(end - seg));
    if (s2 != NULL && s2 + 1 != end) {
        *why = "SecretUri's path has more than /secrets/NAME/VERSION";
        return -1;
    }
    if (!version_ok(seg, (size_t)((s2 ? s2 : end) - seg))) {
        *why = "SecretUri's version must be 32 hexadecimal characters";
        return -1;
    }
    put(ref->version, sizeof(ref->version), seg, 32, 1);
    return 1;
}

int rp_kvref_parse(const char *value, size_t n, const char *domain, rp_kvref *ref, const char **why)
{
    static const char lead[] = "@Microsoft.KeyVault(";
    const size_t ll = sizeof(lead) - 1;
    const char *p, *end;
    int have_vault = 0, have_name = 0, have_ver = 0;

    memset(ref, 0, sizeof(*ref));
    *why = "";
    if (n < ll || strncasecmp(value, lead, ll) != 0)
        return 0;
    if (value[n - 1] != ')') {
        *why = "a reference must end with ')' and be the whole value";
        return -1;
    }
    p = value + ll;
    end = value + n - 1;
    if (end - p > 10 && strncasecmp(p, "SecretUri=", 10) == 0)
        return parse_uri(p + 10, (size_t)(end - p - 10), domain, ref, why);
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p)), *stop = semi ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        size_t kl, vl;
        if (eq == NULL) {
            *why = "expected SecretUri=... or VaultName=...;SecretName=...[;SecretVersion=...]";
            return -1;
        }
        kl = (size_t)(eq - p);
        vl = (size_t)(stop - eq - 1);
        if (kl == 9 && strncasecmp(p, "VaultName", 9) == 0 && !have_vault) {
            if (!vault_ok(eq + 1, vl)) {
                *why = "VaultName is not a valid vault name";
                return -1;
            }
            put(ref->vault, sizeof(ref->vault), eq + 1, vl, 1);
            have_vault = 1;
        } else if (kl == 10 && strncasecmp(p, "SecretName", 10) == 0 && !have_name) {
            if (!secret_ok(eq + 1, vl)) {
                *why = "SecretName is not a valid secret name";
                return -1;
            }
            put(ref->secret, sizeof(ref->secret), eq + 1, vl, 0);
            have_name = 1;
        } else if (kl == 13 && strncasecmp(p, "SecretVersion", 13) == 0 && !have_ver) {
            if (vl != 0 && !version_ok(eq + 1, vl)) {
                *why = "SecretVersion must be 32 hexadecimal characters";
                return -1;
            }
            put(ref->version, sizeof(ref->version), eq + 1, vl, 1);
            have_ver = 1;
        } else {
            *why = "unknown or repeated part (VaultName, SecretName, SecretVersion)";
            return -1;
        }
        p = semi ? semi + 1 : end;
    }
    if (!have_vault || !have_name) {
        *why = "VaultName and SecretName are both required";
        return -1;
    }
    return 1;
}

int rp_settings_check_all(const json_t *all, char *err, size_t errlen)
{
    json_t *seen = json_object();
    const char *k;
    json_t *v;
    int rc = 0;

    if (seen == NULL) {
        snprintf(err, errlen, "out of memory");
        return RP_ENOMEM;
    }
    json_object_foreach(json_object_get(all, "appSettings"), k, v)
    {
        if (env_clash(k, "", seen, err, errlen, "app setting")) {
            rc = RP_EINVAL;
            goto out;
        }
    }
    json_object_foreach(json_object_get(all, "connectionStrings"), k, v)
    {
        const char *prefix = rp_settings_conn_prefix(json_string_value(json_object_get(v, "type")));
        if (prefix != NULL && env_clash(k, prefix, seen, err, errlen, "connection string")) {
            rc = RP_EINVAL;
            goto out;
        }
    }
out:
    json_decref(seen);
    return rc;
}
