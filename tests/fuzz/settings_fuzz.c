/*
 * settings_fuzz.c - libFuzzer driver for src/sites/settings.c: the app settings and connection
 * string bodies the management API receives, and Key Vault references in every value.
 *
 * Input: bytes. First, as a reference (rp_kvref_parse on the raw bytes); then, when they parse
 * as JSON, as an appsettings and as a connectionstrings "properties" object.
 * Invariants checked with abort():
 *   - a reference parse returns -1, 0 or 1; 1 gives a vault of 3-24 [a-z0-9-], a secret of
 *     1-127 [A-Za-z0-9-] and a version "" or 32 lower-case hex; -1 gives a reason; 0 only for
 *     values that do not start with the reference prefix;
 *   - a check returns 0 with an object (and err "") or RP_EINVAL / RP_ENOMEM with no object and
 *     a non-empty err; an accepted app settings object equals its input; every accepted name's
 *     variable fits and differs from every other's (case-insensitively).
 * Corpus: tests/fuzz/corpus/settings/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "sites/settings.h"

#define MAX_IN 65536

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void check_ref(const char *v, size_t n)
{
    rp_kvref r;
    const char *why = NULL;
    int k = rp_kvref_parse(v, n, "rampart.localhost", &r, &why);
    size_t l;

    if (why == NULL)
        abort();
    if (k == 0) {
        if (n >= 20 && strncasecmp(v, "@Microsoft.KeyVault(", 20) == 0)
            abort();
        return;
    }
    if (k < 0) {
        if (why[0] == '\0')
            abort();
        return;
    }
    if (k != 1)
        abort();
    l = strlen(r.vault);
    if (l < 3 || l > 24)
        abort();
    for (size_t i = 0; i < l; i++)
        if (!((r.vault[i] >= 'a' && r.vault[i] <= 'z') ||
              (r.vault[i] >= '0' && r.vault[i] <= '9') || r.vault[i] == '-'))
            abort();
    l = strlen(r.secret);
    if (l < 1 || l > 127)
        abort();
    l = strlen(r.version);
    if (l != 0 && l != 32)
        abort();
    for (size_t i = 0; i < l; i++)
        if (!((r.version[i] >= 'a' && r.version[i] <= 'f') ||
              (r.version[i] >= '0' && r.version[i] <= '9')))
            abort();
}

static void check_set(const json_t *props, int conn)
{
    json_t *out = NULL;
    char err[300] = "";
    int rc = conn ? rp_settings_check_conn(props, &out, err, sizeof(err))
                  : rp_settings_check_app(props, &out, err, sizeof(err));

    if (rc == 0) {
        const char *k, *k2;
        json_t *v, *v2;
        if (out == NULL || err[0] != '\0')
            abort();
        if (!conn && !json_equal(out, props))
            abort();
        json_object_foreach(out, k, v)
        {
            char a[1024], b[1024];
            if (rp_settings_env_name(k, a, sizeof(a)) != 0)
                abort();
            json_object_foreach(out, k2, v2)
            {
                if (k2 == k)
                    continue;
                if (rp_settings_env_name(k2, b, sizeof(b)) != 0)
                    abort();
                if (!conn && strcasecmp(a, b) == 0)
                    abort();
            }
            if (!conn)
                check_ref(json_string_value(v), json_string_length(v));
        }
        json_decref(out);
        return;
    }
    if (out != NULL || err[0] == '\0' || (rc != RP_EINVAL && rc != RP_ENOMEM))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    json_t *j, *props;

    if (n > MAX_IN)
        return 0;
    check_ref((const char *)d, n);
    j = json_loadb((const char *)d, n, JSON_REJECT_DUPLICATES, NULL);
    if (j == NULL)
        return 0;
    props = json_is_object(json_object_get(j, "properties")) ? json_object_get(j, "properties") : j;
    check_set(props, 0);
    check_set(props, 1);
    json_decref(j);
    return 0;
}
