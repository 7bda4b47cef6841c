/*
 * schema.c - the migrations, in order, as SQL text.
 *
 * Workload: runs once per process start (and per `rampart` CLI call that opens the store), so
 * clarity beats speed. A migration is plain SQL executed with sqlite3_exec inside a transaction
 * that also sets PRAGMA user_version; SQLite's DDL is transactional, so a failed migration
 * leaves no half-created tables behind.
 */
#include "store/schema.h"
#include "store/store.h"
#include "base/err.h"
#include "base/log.h"

#include <stdio.h>

/* Append only. Index i holds the migration that produces user_version i+1. */
static const char *const migrations[] = {
    /* 1: bootstrap - key/value metadata and the administrator credentials. */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE admin_credentials (id TEXT PRIMARY KEY, hash BLOB NOT NULL,"
    " created_at INTEGER NOT NULL);",
    /* 2: identity and access (docs/iam.md). Times are Unix seconds; 0 means "none". */
    "CREATE TABLE principals (id TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN"
    " ('user', 'servicePrincipal', 'managedIdentity')), name TEXT NOT NULL COLLATE NOCASE,"
    " client_id TEXT NOT NULL UNIQUE, scope TEXT, created_by TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, UNIQUE (kind, name));"
    "CREATE TABLE credentials (id TEXT PRIMARY KEY, principal_id TEXT NOT NULL"
    " REFERENCES principals(id) ON DELETE CASCADE, type TEXT NOT NULL CHECK (type IN"
    " ('secret', 'certificate')), hash BLOB, hint TEXT, thumbprint TEXT, cert BLOB,"
    " created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);"
    "CREATE TABLE signing_keys (kid TEXT PRIMARY KEY, created_at INTEGER NOT NULL,"
    " retired_at INTEGER NOT NULL DEFAULT 0, sealed BLOB NOT NULL);"
    "CREATE TABLE role_definitions (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE"
    " COLLATE NOCASE, body TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE role_assignments (id TEXT PRIMARY KEY, principal_id TEXT NOT NULL,"
    " role_id TEXT NOT NULL, scope TEXT NOT NULL COLLATE NOCASE, not_before INTEGER NOT NULL"
    " DEFAULT 0, expires_at INTEGER NOT NULL DEFAULT 0, activation_id TEXT,"
    " created_by TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE INDEX role_assignments_principal ON role_assignments (principal_id);"
    "CREATE TABLE role_eligibilities (id TEXT PRIMARY KEY, principal_id TEXT NOT NULL,"
    " role_id TEXT NOT NULL, scope TEXT NOT NULL COLLATE NOCASE, max_duration INTEGER NOT NULL,"
    " approvers TEXT NOT NULL DEFAULT '[]', expires_at INTEGER NOT NULL DEFAULT 0,"
    " created_by TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE role_activations (id TEXT PRIMARY KEY, eligibility_id TEXT NOT NULL,"
    " principal_id TEXT NOT NULL, role_id TEXT NOT NULL, scope TEXT NOT NULL COLLATE NOCASE,"
    " justification TEXT NOT NULL, duration INTEGER NOT NULL, status TEXT NOT NULL,"
    " requested_at INTEGER NOT NULL, decided_by TEXT, decided_at INTEGER NOT NULL DEFAULT 0,"
    " expires_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE identity_sessions (id TEXT PRIMARY KEY, hash BLOB NOT NULL UNIQUE,"
    " principals TEXT NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL);",
    /* 3: Key Vault (docs/vault.md). kind: 1 secret, 2 key. A version's ciphertext is the
     * row obj.blobs(id = vault "/" version) of the ciphertext store; wdek is its DEK wrapped
     * by the vault's KEK (crypto/keyring.h). Names compare case-insensitively, as in Azure. */
    "CREATE TABLE vaults (name TEXT PRIMARY KEY COLLATE NOCASE, id TEXT NOT NULL UNIQUE,"
    " purge_protection INTEGER NOT NULL DEFAULT 0, retention_days INTEGER NOT NULL DEFAULT 90,"
    " cmk TEXT NOT NULL DEFAULT '', created_by TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE kv_objects (vault TEXT NOT NULL COLLATE NOCASE, kind INTEGER NOT NULL,"
    " name TEXT NOT NULL COLLATE NOCASE, deleted_at INTEGER NOT NULL DEFAULT 0,"
    " purge_at INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (vault, kind, name));"
    "CREATE TABLE kv_versions (vault TEXT NOT NULL COLLATE NOCASE, kind INTEGER NOT NULL,"
    " name TEXT NOT NULL COLLATE NOCASE, version TEXT NOT NULL, seq INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, enabled INTEGER NOT NULL,"
    " nbf INTEGER NOT NULL DEFAULT 0, exp INTEGER NOT NULL DEFAULT 0, content_type TEXT,"
    " tags TEXT, meta TEXT, wdek BLOB NOT NULL, PRIMARY KEY (vault, kind, name, version),"
    " FOREIGN KEY (vault, kind, name) REFERENCES kv_objects (vault, kind, name)"
    " ON DELETE CASCADE);"
    "CREATE INDEX kv_versions_seq ON kv_versions (vault, kind, name, seq);",
    /* 4: App Service (docs/sites.md). release is the live release (0: nothing deployed);
     * a release's files are DATA/apps/NAME/releases/SEQ, and only a row here makes them one. */
    "CREATE TABLE apps (name TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    " release INTEGER NOT NULL DEFAULT 0, next_release INTEGER NOT NULL DEFAULT 1,"
    " config TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL);"
    "CREATE TABLE app_releases (app TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,"
    " seq INTEGER NOT NULL, created_at INTEGER NOT NULL, files INTEGER NOT NULL,"
    " bytes INTEGER NOT NULL, skipped INTEGER NOT NULL, principal TEXT NOT NULL,"
    " PRIMARY KEY (app, seq));",
    /* 5: App Service isolation, settings and authentication. uid: the app's own user id
     * (RP_SITES_UID_BASE upwards, never reused while the app exists); auth: its
     * authsettingsV2 (no secrets: a client secret is named by an app setting); app_secrets:
     * its app settings and connection strings, one JSON object sealed under a DEK wrapped by
     * the app's KEK (the ciphertext lives in obj.blobs as "apps/NAME/settings"). */
    "ALTER TABLE apps ADD COLUMN uid INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE apps ADD COLUMN auth TEXT NOT NULL DEFAULT '{}';"
    "UPDATE apps SET uid = 1879048192 + rowid;"
    "CREATE UNIQUE INDEX apps_uid ON apps (uid);"
    "CREATE TABLE app_secrets (app TEXT PRIMARY KEY REFERENCES apps (name) ON DELETE CASCADE,"
    " wdek BLOB NOT NULL, updated_at INTEGER NOT NULL);",
    /* 6: deployment slots. A slot is an app named PARENT-SLOT with parent and slot set; sticky
     * holds the production app's slotConfigNames (the settings that stay with a slot). */
    "ALTER TABLE apps ADD COLUMN parent TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE apps ADD COLUMN slot TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE apps ADD COLUMN sticky TEXT NOT NULL DEFAULT '{}';"
    /* rdir names the release directory the app owns (its releases/.owner): a swap exchanges
     * the directories and these two values in one transaction. */
    "ALTER TABLE apps ADD COLUMN rdir TEXT NOT NULL DEFAULT '';"
    "UPDATE apps SET rdir = id;"
    "CREATE INDEX apps_parent ON apps (parent);",
    /* 7: function apps' keys (docs/functions.md "Keys"): one JSON document per app (master,
     * system, host and function keys), sealed under a DEK wrapped by the app's KEK, the
     * ciphertext in obj.blobs as "apps/NAME/fnkeys". */
    "CREATE TABLE app_fnkeys (app TEXT PRIMARY KEY REFERENCES apps (name) ON DELETE CASCADE,"
    " wdek BLOB NOT NULL, updated_at INTEGER NOT NULL);",
    /* 8: whether a release's deploy allowed anonymous HTTP functions (allowAnonymous=true),
     * checked again whenever it goes live by another way (a rollback, a start-up). Releases
     * deployed before the rule keep serving as they did. */
    "ALTER TABLE app_releases ADD COLUMN allow_anon INTEGER NOT NULL DEFAULT 1;",
};

#define RP_SCHEMA_COUNT ((int)(sizeof(migrations) / sizeof(migrations[0])))

int rp_schema_objects(sqlite3 *db)
{
    return rp_store_exec(db, "CREATE TABLE IF NOT EXISTS obj.blobs (id TEXT PRIMARY KEY,"
                             " ct BLOB NOT NULL)");
}

int rp_schema_version(void)
{
    return RP_SCHEMA_COUNT;
}

int rp_schema_current(sqlite3 *db, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = RP_EDB;

    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(st) != SQLITE_ROW)
        goto out;
    *out = sqlite3_column_int(st, 0);
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : RP_EDB;
}

/*
 * Applies the next migration if one is due. *done is set when the database is current.
 * The version is read inside the write transaction so two processes migrating the same file
 * at once cannot both apply the same step.
 */
static int migrate_step(sqlite3 *db, int *done)
{
    char sql[64];
    int v, rc;

    if (exec(db, "BEGIN IMMEDIATE") != 0)
        return RP_EDB;
    rc = rp_schema_current(db, &v);
    if (rc != 0)
        goto fail;
    if (v < 0 || v > RP_SCHEMA_COUNT) {
        rc = RP_EUNSUPPORTED;
        goto fail;
    }
    if (v == RP_SCHEMA_COUNT) {
        *done = 1;
        exec(db, "ROLLBACK"); /* nothing was written */
        return 0;
    }
    rc = RP_EDB;
    if (exec(db, migrations[v]) != 0) {
        rp_log_msg(RP_LOG_ERROR, "store.migrate", sqlite3_errmsg(db));
        goto fail;
    }
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
    if (exec(db, sql) != 0 || exec(db, "COMMIT") != 0)
        goto fail;
    return 0;
fail:
    if (!sqlite3_get_autocommit(db))
        exec(db, "ROLLBACK");
    return rc;
}

int rp_schema_migrate(sqlite3 *db)
{
    int done = 0;

    while (!done) {
        int rc = migrate_step(db, &done);

        if (rc != 0)
            return rc;
    }
    return 0;
}
