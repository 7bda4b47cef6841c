/*
 * kv_cmk.c - customer-managed keys: a vault's RSA key wrapping another resource's KEK
 * (docs/encryption.md "Customer-managed keys", shared/specs/azure-platform-controls.md §8.4).
 *
 * The keyring calls these callbacks to wrap a KEK when a resource is put under a customer key,
 * and to unwrap it when the KEK is needed and not in memory. Both read the key through their
 * own reader connection (they run on loop threads, the writer thread or the main thread), check
 * that it may be used (exists, not deleted, enabled, within nbf/exp, RSA, key_ops allow
 * wrapKey/unwrapKey) and do RSA-OAEP-256 with its private key. Anything else is RP_EPERM with a
 * reason the resource's users see: disabling or deleting the key makes the data unreadable, with
 * that reason, until the key is usable again.
 *
 * Key ids: "VAULT/keys/NAME[/VERSION]". A key may not protect a vault that is itself protected
 * by a customer key (no chains, hence no cycles), and its vault must have purge protection (as
 * Azure requires), so a key cannot be purged from under the data it protects.
 */
#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"
#include "vault/kvkey.h"
#include "vault/vault_int.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#define CMK_ALG "RSA-OAEP-256"

int rp__kv_cmk_parse(const char *kid, char vault[RP_VAULT_NAME_MAX + 1],
                     char name[RP__KV_NAME_MAX + 1], char version[RP__KV_VERSION_LEN + 1])
{
    const char *p = kid, *s;
    size_t n;

    vault[0] = name[0] = version[0] = '\0';
    if (kid == NULL)
        return RP_EINVAL;
    s = strchr(p, '/');
    if (s == NULL || (size_t)(s - p) > RP_VAULT_NAME_MAX)
        return RP_EINVAL;
    memcpy(vault, p, (size_t)(s - p));
    vault[s - p] = '\0';
    if (!rp_vault_name_valid(vault) || strncmp(s, "/keys/", 6) != 0)
        return RP_EINVAL;
    p = s + 6;
    s = strchr(p, '/');
    n = s ? (size_t)(s - p) : strlen(p);
    if (n == 0 || n > RP__KV_NAME_MAX)
        return RP_EINVAL;
    memcpy(name, p, n);
    name[n] = '\0';
    if (!rp__kv_name_valid(name))
        return RP_EINVAL;
    if (s != NULL) {
        if (!rp__kv_version_valid(s + 1))
            return RP_EINVAL;
        rp_strlcpy(version, s + 1, RP__KV_VERSION_LEN + 1);
    }
    return 0;
}

/* Key names are case-insensitive: ids are kept in lower case so that they compare as strings
 * (the keyring matches a changed key against the ids it holds byte for byte). */
static void lower(char *s)
{
    for (; *s; s++)
        *s = rp_lower(*s);
}

int rp__kv_cmk_normalize(const char *in, const char *domain, char *out, size_t cap)
{
    char vault[RP_VAULT_NAME_MAX + 1], name[RP__KV_NAME_MAX + 1], ver[RP__KV_VERSION_LEN + 1];
    char suffix[300];
    const char *host, *path, *colon;
    size_t hl;

    if (strncmp(in, "https://", 8) != 0) {
        if (rp__kv_cmk_parse(in, vault, name, ver) != 0)
            return RP_EINVAL;
        snprintf(out, cap, "%s/keys/%s%s%s", vault, name, ver[0] ? "/" : "", ver);
        lower(out);
        return 0;
    }
    /* https://VAULT.vault.D[:port]/keys/NAME[/VERSION] */
    host = in + 8;
    path = strchr(host, '/');
    if (path == NULL)
        return RP_EINVAL;
    colon = memchr(host, ':', (size_t)(path - host));
    hl = (size_t)((colon ? colon : path) - host);
    snprintf(suffix, sizeof(suffix), ".vault.%s", domain);
    if (hl <= strlen(suffix) || hl - strlen(suffix) > RP_VAULT_NAME_MAX ||
        strncasecmp(host + hl - strlen(suffix), suffix, strlen(suffix)) != 0)
        return RP_EINVAL;
    memcpy(vault, host, hl - strlen(suffix));
    vault[hl - strlen(suffix)] = '\0';
    for (char *q = vault; *q; q++)
        *q = rp_lower(*q);
    if ((size_t)snprintf(out, cap, "%s%s", vault, path) >= cap)
        return RP_ETOOBIG;
    lower(out);
    return rp__kv_cmk_parse(out, vault, name, ver);
}

/* The version of key kid (latest when unversioned) that may be used for op, parsed. */
static int cmk_key(rp_vault *v, const char *kid, int wrap, rp_kvkey **out, char *used, size_t cap,
                   const char **reason)
{
    char vault[RP_VAULT_NAME_MAX + 1], name[RP__KV_NAME_MAX + 1], ver[RP__KV_VERSION_LEN + 1];
    char resource[8 + RP_VAULT_NAME_MAX + 1], obj[RP__KV_NAME_MAX + RP__KV_VERSION_LEN + 8];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    rp_arena *a = NULL;
    rp__kv_row r;
    rp_buf pt;
    int64_t now = rp__kv_now();
    int rc;

    *out = NULL;
    rp_buf_init(&pt, RP_KVKEY_MAX_DER + 1);
    if (rp__kv_cmk_parse(kid, vault, name, ver) != 0) {
        *reason = "the customer-managed key id is not valid";
        return RP_EPERM;
    }
    a = rp_arena_create(4096);
    rc = a ? rp_store_reader_open(v->store, &db) : RP_ENOMEM;
    if (rc != 0)
        goto out;
    rc = RP_EDB;
    if (sqlite3_prepare_v2(db,
                           ver[0] ? "SELECT " RP__KV_ROW_COLUMNS RP__KV_ROW_JOIN
                                    " WHERE v.vault = ?1 AND v.kind = 2 AND v.name = ?2 AND"
                                    " v.version = ?3"
                                  : "SELECT " RP__KV_ROW_COLUMNS RP__KV_ROW_JOIN
                                    " WHERE v.vault = ?1 AND v.kind = 2 AND v.name = ?2"
                                    " ORDER BY v.seq DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (ver[0])
        sqlite3_bind_text(st, 3, ver, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        *reason = "the customer-managed key does not exist (it was purged or never created)";
        rc = rc == SQLITE_DONE ? RP_EPERM : RP_EDB;
        goto out;
    }
    rp__kv_row_read(a, st, &r);
    rc = RP_EPERM;
    if (r.name == NULL || r.version == NULL || r.wdek == NULL || r.ct == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    if (r.deleted_at != 0) {
        *reason = "the customer-managed key is deleted";
        goto out;
    }
    if (!r.enabled) {
        *reason = "the customer-managed key is disabled";
        goto out;
    }
    if (r.nbf > 0 && now < r.nbf) {
        *reason = "the customer-managed key is not yet valid";
        goto out;
    }
    /* An expired key still unwraps (the data stays readable) but wraps nothing new. */
    if (wrap && r.exp > 0 && now >= r.exp) {
        *reason = "the customer-managed key has expired";
        goto out;
    }
    if (r.meta == NULL || strstr(r.meta, "\"kty\":\"RSA") == NULL) {
        *reason = "the customer-managed key is not an RSA key";
        goto out;
    }
    if (strstr(r.meta, "\"hsm\":true") != NULL) {
        *reason = "HSM-protected keys cannot be customer-managed keys (yet)";
        goto out;
    }
    {
        json_t *m = json_loads(r.meta, 0, NULL);
        unsigned ops = (unsigned)json_integer_value(json_object_get(m, "ops"));
        json_decref(m);
        if (!rp_kvkey_op_allowed(ops, wrap ? RP_KVOP_WRAP_KEY : RP_KVOP_UNWRAP_KEY)) {
            *reason = "the customer-managed key's key_ops do not allow wrapKey and unwrapKey";
            goto out;
        }
    }
    snprintf(resource, sizeof(resource), "/vaults/%s", vault);
    snprintf(obj, sizeof(obj), "keys/%s/%s", r.name, r.version);
    for (char *q = obj + 5; *q && *q != '/'; q++)
        *q = rp_lower(*q);
    rc = rp_keyring_open_object(v->kr, resource, obj, r.wdek, r.wdek_len, r.ct, r.ct_len, &pt,
                                reason);
    if (rc == 0)
        rc = rp_kvkey_from_der((const unsigned char *)pt.data, pt.len, out, reason);
    if (rc == 0 && (size_t)snprintf(used, cap, "%s/keys/%s/%s", vault, name, r.version) >= cap)
        rc = RP_ETOOBIG;
    if (rc == 0)
        lower(used);
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    rp_arena_destroy(a);
    rp_buf_free_secret(&pt);
    if (rc != 0) {
        rp_kvkey_free(*out);
        *out = NULL;
    }
    return rc;
}

static int cmk_wrap(void *arg, const char *kid, const unsigned char kek[RP_KEYRING_KEY_LEN],
                    rp_buf *out, char *used_kid, size_t cap, const char **reason)
{
    unsigned char w[RP_KVKEY_MAX_OUT];
    size_t wn = 0;
    rp_kvkey *k;
    int rc = cmk_key(arg, kid, 1, &k, used_kid, cap, reason);

    if (rc != 0)
        return rc;
    rc = rp_kvkey_wrap_key(k, CMK_ALG, kek, RP_KEYRING_KEY_LEN, w, sizeof(w), &wn, reason);
    rp_kvkey_free(k);
    if (rc == 0)
        rc = rp_buf_append(out, w, wn);
    return rc;
}

static int cmk_unwrap(void *arg, const char *used_kid, const void *w, size_t n,
                      unsigned char kek[RP_KEYRING_KEY_LEN], const char **reason)
{
    unsigned char pt[RP_KVKEY_MAX_OUT];
    char used[RP_KEYRING_KID_MAX];
    size_t ptn = 0;
    rp_kvkey *k;
    int rc = cmk_key(arg, used_kid, 0, &k, used, sizeof(used), reason);

    if (rc != 0)
        return rc;
    rc = rp_kvkey_unwrap_key(k, CMK_ALG, w, n, pt, sizeof(pt), &ptn, reason);
    rp_kvkey_free(k);
    if (rc == 0 && ptn != RP_KEYRING_KEY_LEN) {
        *reason = "the wrapped key does not unwrap to a key";
        rc = RP_ECRYPTO;
    }
    if (rc == 0)
        memcpy(kek, pt, RP_KEYRING_KEY_LEN);
    OPENSSL_cleanse(pt, sizeof(pt));
    return rc;
}

void rp__kv_cmk_register(rp_vault *v)
{
    rp_keyring_cmk_ops ops = {cmk_wrap, cmk_unwrap, v};

    rp_keyring_set_cmk_ops(v->kr, &ops);
}
