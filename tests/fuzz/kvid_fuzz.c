/*
 * kvid_fuzz.c - libFuzzer driver for the vault's own parsers of untrusted names: vault names,
 * object names and versions (from the request path), and customer-managed key ids (from the
 * management API's body) in both spellings.
 *
 * Besides memory safety, the driver checks with abort():
 *   - rp__kv_cmk_normalize, when it accepts, writes a short form that rp__kv_cmk_parse accepts,
 *     that normalizes to itself, and whose vault, name and version are each valid on their own;
 *   - rp_vault_name_valid agrees with a naive reference of Azure's rule;
 *   - rp__kv_name_valid and rp__kv_version_valid agree with naive references.
 * Corpus: tests/fuzz/corpus/kvid/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "vault/vault_int.h"

#define MAX_IN 1024

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static int ref_vault_name(const char *s)
{
    size_t n = strlen(s);

    if (n < 3 || n > 24 || !(s[0] >= 'a' && s[0] <= 'z') || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        int ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-';
        if (!ok || (s[i] == '-' && s[i + 1] == '-'))
            return 0;
    }
    return 1;
}

static int ref_name(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > 127)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

static int ref_version(const char *s)
{
    if (strlen(s) != 32)
        return 0;
    for (size_t i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    char in[MAX_IN + 1], out[512], again[512];
    char vault[RP_VAULT_NAME_MAX + 1], name[RP__KV_NAME_MAX + 1], ver[RP__KV_VERSION_LEN + 1];

    if (n > MAX_IN)
        return 0;
    memcpy(in, d, n);
    in[n] = '\0';
    if (rp_vault_name_valid(in) != ref_vault_name(in))
        abort();
    if (rp__kv_name_valid(in) != ref_name(in))
        abort();
    if (rp__kv_version_valid(in) != ref_version(in))
        abort();
    if (rp__kv_cmk_normalize(in, "rampart.localhost", out, sizeof(out)) == 0) {
        if (rp__kv_cmk_parse(out, vault, name, ver) != 0)
            abort();
        if (!ref_vault_name(vault) || !ref_name(name) || (ver[0] && !ref_version(ver)))
            abort();
        if (rp__kv_cmk_normalize(out, "rampart.localhost", again, sizeof(again)) != 0 ||
            strcmp(out, again) != 0)
            abort();
    }
    return 0;
}
