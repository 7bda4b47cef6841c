/*
 * kv_ref.c - secrets read for App Service Key Vault references (docs/sites.md "App settings").
 *
 * The platform resolves a reference with the app's managed identity, so the read must be
 * exactly what a GET of the secret by that identity would be: authorized by RBAC at the
 * secret's scope (audited), refused for a disabled, expired or not yet valid version, and
 * recorded durably before the value leaves the vault. It runs off the serving loops (the sites
 * service calls it from the thread pool when it builds an app's environment), so it reads
 * through its own reader connection and writes its audit records synchronously.
 */
#include "base/err.h"
#include "base/str.h"
#include "monitor/audit.h"
#include "vault/vault_int.h"

#include <stdio.h>
#include <string.h>

#define ACT_GET "Microsoft.KeyVault/vaults/secrets/getSecret/action"

const char *rp_vault_ref_status_name(rp_vault_ref_status s)
{
    switch (s) {
    case RP_VAULT_REF_RESOLVED: return "Resolved";
    case RP_VAULT_REF_VAULT_NOT_FOUND: return "VaultNotFound";
    case RP_VAULT_REF_SECRET_NOT_FOUND: return "SecretNotFound";
    case RP_VAULT_REF_VERSION_NOT_FOUND: return "SecretVersionNotFound";
    case RP_VAULT_REF_DENIED: return "AccessToKeyVaultDenied";
    case RP_VAULT_REF_OTHER: break;
    }
    return "OtherReasons";
}

static int vault_known(sqlite3 *db, const char *vault, int *known)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(db, "SELECT 1 FROM vaults WHERE name = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        sqlite3_finalize(st);
        return RP_EDB;
    }
    sqlite3_bind_text(st, 1, vault, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return RP_EDB;
    *known = rc == SQLITE_ROW;
    return 0;
}

/* The version asked for (latest when version is ""), or *found 0. */
static int read_row(sqlite3 *db, rp_arena *a, const char *vault, const char *name,
                    const char *version, rp__kv_row *r, int *found)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(db,
                           version[0] ? "SELECT " RP__KV_ROW_COLUMNS RP__KV_ROW_JOIN
                                        " WHERE v.vault = ?1 AND v.kind = 1 AND v.name = ?2 AND"
                                        " v.version = ?3"
                                      : "SELECT " RP__KV_ROW_COLUMNS RP__KV_ROW_JOIN
                                        " WHERE v.vault = ?1 AND v.kind = 1 AND v.name = ?2"
                                        " ORDER BY v.seq DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return RP_EDB;
    }
    sqlite3_bind_text(st, 1, vault, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (version[0])
        sqlite3_bind_text(st, 3, version, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        rp__kv_row_read(a, st, r);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return RP_EDB;
    if (*found && (r->name == NULL || r->version == NULL || r->wdek == NULL || r->ct == NULL))
        return RP_ENOMEM;
    return 0;
}

/* Would a GET of the secret name (whose latest version is *found) be found? 0 if the object is
 * deleted or has no version: the caller distinguishes a missing version from a missing secret. */
static int secret_known(sqlite3 *db, rp_arena *a, const char *vault, const char *name)
{
    rp__kv_row r;
    int found = 0;

    if (read_row(db, a, vault, name, "", &r, &found) != 0)
        return 0;
    return found && r.deleted_at == 0;
}

int rp_vault_secret_for(rp_vault *v, const char *principal_id, const char *vault, const char *name,
                        const char *version, rp_buf *value, char used_version[33],
                        rp_vault_ref_status *status, const char **detail)
{
    char vname[RP_VAULT_NAME_MAX + 1], scope[32 + RP_VAULT_NAME_MAX + RP__KV_NAME_MAX];
    char resource[8 + RP_VAULT_NAME_MAX + 1], obj[16 + RP__KV_NAME_MAX + RP__KV_VERSION_LEN];
    const char *ver = version ? version : "";
    rp_identity who;
    sqlite3 *db = NULL;
    rp_arena *a = NULL;
    rp__kv_row r;
    int rc, known = 0, found = 0;
    int64_t now = rp__kv_now();

    *status = RP_VAULT_REF_OTHER;
    *detail = "the secret could not be read";
    used_version[0] = '\0';
    if (vault == NULL || strlen(vault) > RP_VAULT_NAME_MAX) {
        *status = RP_VAULT_REF_VAULT_NOT_FOUND;
        *detail = "no vault has that name";
        return RP_ENOENT;
    }
    for (size_t i = 0; i <= strlen(vault); i++)
        vname[i] = rp_lower(vault[i]);
    if (!rp_vault_name_valid(vname)) {
        *status = RP_VAULT_REF_VAULT_NOT_FOUND;
        *detail = "no vault has that name";
        return RP_ENOENT;
    }
    if (name == NULL || !rp__kv_name_valid(name)) {
        *status = RP_VAULT_REF_SECRET_NOT_FOUND;
        *detail = "the secret name is not valid";
        return RP_ENOENT;
    }
    if (ver[0] && !rp__kv_version_valid(ver)) {
        *status = RP_VAULT_REF_VERSION_NOT_FOUND;
        *detail = "the secret version is not valid";
        return RP_ENOENT;
    }
    if (rp_iam_identity_of(v->iam, principal_id, &who) != 0) {
        *status = RP_VAULT_REF_DENIED;
        *detail = "the app's managed identity does not exist";
        return RP_EPERM;
    }
    snprintf(resource, sizeof(resource), "/vaults/%s", vname);
    /* A cut scope would authorize a prefix of the name: refuse rather than truncate. */
    if ((size_t)snprintf(scope, sizeof(scope), "%s/secrets/%s", resource, name) >= sizeof(scope)) {
        *status = RP_VAULT_REF_SECRET_NOT_FOUND;
        *detail = "the secret name is not valid";
        return RP_ENOENT;
    }
    for (char *q = scope + strlen(resource) + 9; *q; q++)
        *q = rp_lower(*q);
    a = rp_arena_create(4096);
    rc = a ? rp_store_reader_open(v->store, &db) : RP_ENOMEM;
    if (rc != 0)
        goto out;
    rc = vault_known(db, vname, &known);
    if (rc != 0)
        goto out;
    if (!known) {
        *status = RP_VAULT_REF_VAULT_NOT_FOUND;
        *detail = "no vault has that name";
        rc = RP_ENOENT;
        goto out;
    }
    /* Authorized (and audited) before anything about the secret is looked at, as a GET. */
    if (!rp_authz(v->iam, NULL, &who, ACT_GET, 1, scope)) {
        *status = RP_VAULT_REF_DENIED;
        *detail = "the app's managed identity has no role that allows reading this secret "
                  "(Key Vault Secrets User grants it)";
        rc = RP_EPERM;
        goto out;
    }
    rc = read_row(db, a, vname, name, ver, &r, &found);
    if (rc != 0)
        goto out;
    if (!found || r.deleted_at != 0) {
        int secret = ver[0] && secret_known(db, a, vname, name);
        *status = secret ? RP_VAULT_REF_VERSION_NOT_FOUND : RP_VAULT_REF_SECRET_NOT_FOUND;
        *detail = secret ? "the secret has no such version" : "the vault has no such secret";
        rc = RP_ENOENT;
        goto out;
    }
    rc = RP_EPERM;
    if (!r.enabled) {
        *detail = "the secret is disabled";
        goto out;
    }
    if (r.nbf > 0 && now < r.nbf) {
        *detail = "the secret is not yet valid";
        goto out;
    }
    if (r.exp > 0 && now >= r.exp) {
        *detail = "the secret has expired";
        goto out;
    }
    snprintf(obj, sizeof(obj), "secrets/%s/%s", r.name, r.version);
    for (char *q = obj + 8; *q && *q != '/'; q++)
        *q = rp_lower(*q);
    {
        const char *reason = NULL;
        rc = rp_keyring_open_object(v->kr, resource, obj, r.wdek, r.wdek_len, r.ct, r.ct_len, value,
                                    &reason);
        if (rc != 0) {
            *detail = reason ? reason : "the secret cannot be decrypted";
            rc = RP_EPERM;
            goto out;
        }
    }
    /* The read of secret material is on disk before the value is used (as for a GET). */
    {
        json_t *d = json_pack("{s:s,s:s}", "version", r.version, "via", "keyVaultReference");
        rc = d ? rp_iam_audit_sync(v->iam, &who, "read", ACT_GET, scope, "success", d,
                                   RP_AUDIT_DURABLE)
               : RP_ENOMEM;
        json_decref(d);
    }
    if (rc != 0) {
        rp_buf_free_secret(value);
        *detail = "the read could not be audited";
        rc = RP_EIO;
        goto out;
    }
    rp_strlcpy(used_version, r.version, 33);
    *status = RP_VAULT_REF_RESOLVED;
    *detail = "";
out:
    if (db != NULL)
        sqlite3_close(db);
    rp_arena_destroy(a);
    return rc;
}
