/*
 * settings.h - an app's app settings and connection strings (docs/sites.md "App settings"):
 * validation of what the API receives, Key Vault reference syntax, and the environment an app
 * process is started with (shared/specs/azure-platform-controls.md §5.1-5.3).
 *
 * The set is one JSON object, sealed as a whole under the app's KEK by the sites service:
 *   {"appSettings": {"NAME": "value", ...},
 *    "connectionStrings": {"NAME": {"value": "...", "type": "SQLAzure"}, ...}}
 * A value may be a Key Vault reference - the whole value, nothing around it:
 *   @Microsoft.KeyVault(SecretUri=https://VAULT.vault.D[:port]/secrets/NAME[/VERSION][/])
 *   @Microsoft.KeyVault(VaultName=VAULT;SecretName=NAME[;SecretVersion=VERSION])
 * which the platform resolves with the app's managed identity when the process starts.
 *
 * Pure functions: no I/O, no state; the caller owns what they return.
 */
#ifndef RP_SITES_SETTINGS_H
#define RP_SITES_SETTINGS_H

#include <jansson.h>
#include <stddef.h>

#define RP_SETTINGS_NAME_MAX  256          /* bytes in a setting or connection string name */
#define RP_SETTINGS_VALUE_MAX (64u << 10)  /* bytes in one value */
#define RP_SETTINGS_COUNT_MAX 512          /* settings, and connection strings, per app */
#define RP_SETTINGS_TOTAL_MAX (128u << 10) /* bytes of names and values, per set */

/*
 * Checks an appsettings body's "properties" object (NAME -> string) and returns a normalised
 * copy in *out. Names: 1..RP_SETTINGS_NAME_MAX of [A-Za-z0-9_.:-], not starting with a digit,
 * and none of the names the platform sets itself (PORT, HOME, PATH, IDENTITY_ENDPOINT,
 * IDENTITY_HEADER, WEBSITE_SITE_NAME, WEBSITE_HOSTNAME, MSI_*, ...); two names that become the
 * same variable are refused. 0, RP_EINVAL (err names the setting and the rule), RP_ENOMEM.
 */
int rp_settings_check_app(const json_t *props, json_t **out, char *err, size_t errlen);

/* The same for a connectionstrings body: NAME -> {"value": string, "type": one of Azure's
 * ConnStringInfo types (any case; stored as Azure spells it)}. */
int rp_settings_check_conn(const json_t *props, json_t **out, char *err, size_t errlen);

/*
 * Checks a whole stored set {"appSettings": {...}, "connectionStrings": {...}} (each half
 * already checked): no two members of either half become the same variable (an app setting
 * named like a connection string's PREFIX_NAME, or two names merged by a swap). 0 or RP_EINVAL
 * with err naming both.
 */
int rp_settings_check_all(const json_t *all, char *err, size_t errlen);

/* The environment variable a setting becomes on Linux: '.' -> '_', ':' -> "__". */
int rp_settings_env_name(const char *name, char *out, size_t cap);
/* The prefix of a connection string type's variables ("SQLAZURECONNSTR_"), NULL if unknown. */
const char *rp_settings_conn_prefix(const char *type);

/* A parsed Key Vault reference. */
typedef struct rp_kvref {
    char vault[64];
    char secret[128];
    char version[33]; /* "" for the latest */
} rp_kvref;

/*
 * Is value a Key Vault reference, and is it valid? 0: not a reference (an ordinary value).
 * 1: a valid reference, parsed into *ref. -1: it starts as one but is not valid
 * (InvalidSyntax; *why says what is wrong). domain (D) is what a SecretUri's host must end in
 * (".vault." D, any port).
 */
int rp_kvref_parse(const char *value, size_t n, const char *domain, rp_kvref *ref,
                   const char **why);

#endif
