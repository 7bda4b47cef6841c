/*
 * kv_secrets.c - the secrets collection of a vault (docs/vault.md "Secrets"): set, get, list,
 * versions, update, soft delete, deleted list/get, recover, purge, backup and restore, with the
 * paths, bodies, success codes and errors of shared/specs/azure-data-planes.md §2.3. What keys
 * share with secrets is in kv_common.c; this file has the secret bundle, set, get and update.
 *
 * Reading a value is audited durably before the answer (rp__kv_send_audited).
 */
#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"
#include "vault/kvreq.h"
#include "vault/vault_int.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#define ACT_GET     "Microsoft.KeyVault/vaults/secrets/getSecret/action"
#define ACT_SET     "Microsoft.KeyVault/vaults/secrets/setSecret/action"
#define ACT_META    "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
#define ACT_UPDATE  "Microsoft.KeyVault/vaults/secrets/update/action"
#define ACT_DELETE  "Microsoft.KeyVault/vaults/secrets/delete"
#define ACT_RECOVER "Microsoft.KeyVault/vaults/secrets/recover/action"
#define ACT_PURGE   "Microsoft.KeyVault/vaults/secrets/purge/action"
#define ACT_BACKUP  "Microsoft.KeyVault/vaults/secrets/backup/action"
#define ACT_RESTORE "Microsoft.KeyVault/vaults/secrets/restore/action"

/* The bundle's members other than value. */
static json_t *bundle(rp__kv_call *c, const rp__kv_row *r, int item, int deleted)
{
    const char *id = rp__kv_id(c, "secrets", r->name, item == 1 ? NULL : r->version);
    json_t *o =
        id ? json_pack("{s:s,s:o}", "id", id, "attributes", rp__kv_attributes(&c->vault, r)) : NULL;

    if (o == NULL)
        return NULL;
    if (r->content_type != NULL)
        json_object_set_new(o, "contentType", json_string(r->content_type));
    if (r->tags != NULL) {
        json_t *t = rp__kv_tags(r->tags);
        if (t != NULL)
            json_object_set_new(o, "tags", t);
    }
    if (deleted) {
        const char *rid = rp__kv_id(c, "deletedsecrets", r->name, NULL);
        if (rid == NULL) {
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, "recoveryId", json_string(rid));
        json_object_set_new(o, "deletedDate", json_integer(r->deleted_at));
        json_object_set_new(o, "scheduledPurgeDate", json_integer(r->purge_at));
    }
    return o;
}

const rp__kv_coll rp__kv_secret_coll = {
    RP__KV_SECRET, "secrets", "deletedsecrets", "secret",    "SecretNotFound", ACT_META, ACT_DELETE,
    ACT_RECOVER,   ACT_PURGE, ACT_BACKUP,       ACT_RESTORE, bundle,           NULL,     NULL,
};

/* ---------------------------------------------------------------- set */

static void secret_set(rp__kv_call *c, const char *name)
{
    const char *scope = rp__kv_scope(c, "secrets", name);
    rp_kvreq_set_secret in;
    rp__kv_version_in v = {0};
    rp__kv_row r = {0};
    char version[RP__KV_VERSION_LEN + 1];
    const char *err = NULL;
    json_t *reply;

    if (!rp__kv_allow(c, ACT_SET, scope))
        return;
    if (rp_kvreq_parse_set_secret(c->req->arena, c->body, c->body_len, &in, &err) != 0) {
        rp__kv_error(c->req, 400, "BadParameter", NULL, "%s", err ? err : "Invalid body.");
        return;
    }
    rp__kv_version_new(version);
    v.version = version;
    v.now = rp__kv_now();
    v.enabled = in.attrs.enabled != 0;
    v.nbf = in.attrs.nbf;
    v.exp = in.attrs.exp;
    v.content_type = in.content_type;
    v.tags = in.tags.json;
    r.name = name;
    r.version = version;
    r.created = r.updated = v.now;
    r.enabled = v.enabled;
    r.nbf = v.nbf;
    r.exp = v.exp;
    r.content_type = v.content_type;
    r.tags = v.tags;
    /* The value is echoed back, as Azure does: the caller sent it. */
    reply = bundle(c, &r, 0, 0);
    if (reply != NULL)
        json_object_set_new(reply, "value", json_stringn(in.value, in.value_len));
    rp__kv_new_version(c, &rp__kv_secret_coll, ACT_SET, scope, name, &v, in.value, in.value_len,
                       reply);
}

/* ---------------------------------------------------------------- get */

static int usable(rp__kv_call *c, const rp__kv_row *r)
{
    int64_t now = rp__kv_now();

    if (!r->enabled) {
        rp__kv_error(c->req, 403, "Forbidden", "SecretDisabled",
                     "Operation get is not allowed on a disabled secret.");
        return 0;
    }
    if (r->nbf > 0 && now < r->nbf) {
        rp__kv_error(c->req, 403, "Forbidden", "SecretNotYetValid",
                     "Operation get is not allowed on a secret that is not yet valid.");
        return 0;
    }
    if (r->exp > 0 && now >= r->exp) {
        rp__kv_error(c->req, 403, "Forbidden", "SecretExpired",
                     "Operation get is not allowed on an expired secret.");
        return 0;
    }
    return 1;
}

/* Everything after the authorization; 1 when the value went to its durable record. */
static int secret_read(rp__kv_call *c, const char *name, const char *version, const char *scope,
                       const rp_authz_grant *grant)
{
    rp__kv_row r;
    rp_buf pt;
    const char *reason = NULL;
    json_t *o;
    int rc;

    if (version[0] && !rp__kv_version_valid(version)) {
        rp__kv_not_found(c, &rp__kv_secret_coll, name, 0);
        return 0;
    }
    rc = rp__kv_get(c, RP__KV_SECRET, name, version, &r);
    if (rc == RP_ENOENT || (rc == 0 && r.deleted_at != 0)) {
        rp__kv_not_found(c, &rp__kv_secret_coll, name, 0);
        return 0;
    }
    if (rc != 0) {
        rp__kv_fail(c->req, rc, NULL);
        return 0;
    }
    if (!usable(c, &r))
        return 0;
    rp_buf_init(&pt, r.ct_len + 1);
    rc = rp__kv_open(c, &rp__kv_secret_coll, &r, &pt, &reason);
    if (rc != 0) {
        rp_buf_free_secret(&pt);
        rp__kv_fail(c->req, rc, reason);
        return 0;
    }
    o = bundle(c, &r, 0, 0);
    if (o != NULL)
        json_object_set_new(o, "value", json_stringn(pt.data, pt.len));
    rp_buf_free_secret(&pt);
    if (o == NULL) {
        rp__kv_oom(c->req);
        return 0;
    }
    rp__kv_send_audited_grant(c, ACT_GET, scope, r.name, o, grant);
    return 1;
}

static void secret_get(rp__kv_call *c, const char *name, const char *version)
{
    const char *scope = rp__kv_scope(c, "secrets", name);
    rp_authz_grant grant;

    /* The durable read record is also the authorization decision's record; an answer without
     * the value (404, 403 disabled, ...) records the allowance on its own. */
    if (!rp__kv_allow_deferred(c, ACT_GET, scope, &grant))
        return;
    if (!secret_read(c, name, version, scope, &grant)) {
        json_t *d = json_pack("{s:s,s:s,s:s}", "role", grant.role, "at", grant.at, "via",
                              c->who.via ? c->who.via : "");
        (void)rp_iam_audit(c->v->iam, c->req, &c->who, "authz", ACT_GET, scope, "allowed", d, 0,
                           NULL, NULL);
        json_decref(d);
    }
}

/* ---------------------------------------------------------------- update (PATCH) */

static int update_write(sqlite3 *db, rp__kv_op *op)
{
    rp_kvreq_update_secret *d = op->data;
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(
            db,
            "UPDATE kv_versions SET updated_at = ?5,"
            " enabled = CASE WHEN ?6 THEN ?7 ELSE enabled END,"
            " nbf = CASE WHEN ?8 THEN ?9 ELSE nbf END, exp = CASE WHEN ?10 THEN ?11 ELSE exp END,"
            " content_type = CASE WHEN ?12 THEN ?13 ELSE content_type END,"
            " tags = CASE WHEN ?14 THEN ?15 ELSE tags END"
            " WHERE vault = ?1 AND kind = ?2 AND name = ?3 AND version = ?4 AND EXISTS (SELECT 1"
            " FROM kv_objects o WHERE o.vault = ?1 AND o.kind = ?2 AND o.name = ?3 AND"
            " o.deleted_at = 0)",
            -1, &st, NULL) != SQLITE_OK)
        return RP_EDB;
    sqlite3_bind_text(st, 1, op->vault.name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, op->kind);
    sqlite3_bind_text(st, 3, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, op->version, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, rp__kv_now());
    sqlite3_bind_int(st, 6, d->attrs.enabled >= 0);
    sqlite3_bind_int(st, 7, d->attrs.enabled > 0);
    sqlite3_bind_int(st, 8, d->attrs.has_nbf);
    sqlite3_bind_int64(st, 9, d->attrs.nbf);
    sqlite3_bind_int(st, 10, d->attrs.has_exp);
    sqlite3_bind_int64(st, 11, d->attrs.exp);
    sqlite3_bind_int(st, 12, d->has_content_type);
    if (d->content_type)
        sqlite3_bind_text(st, 13, d->content_type, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 14, d->tags.present);
    if (d->tags.json)
        sqlite3_bind_text(st, 15, d->tags.json, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return RP_EDB;
    return sqlite3_changes(db) == 1 ? 0 : RP_ENOENT;
}

static void secret_update(rp__kv_call *c, const char *name, const char *version)
{
    const char *scope = rp__kv_scope(c, "secrets", name);
    rp_kvreq_update_secret *d;
    rp__kv_row r;
    rp__kv_op *op;
    const char *err = NULL;
    int rc;

    if (!rp__kv_allow(c, ACT_UPDATE, scope))
        return;
    if (version[0] && !rp__kv_version_valid(version)) {
        rp__kv_not_found(c, &rp__kv_secret_coll, name, 0);
        return;
    }
    rc = rp__kv_get(c, RP__KV_SECRET, name, version, &r);
    if (rc == RP_ENOENT || (rc == 0 && r.deleted_at != 0)) {
        rp__kv_not_found(c, &rp__kv_secret_coll, name, 0);
        return;
    }
    if (rc != 0) {
        rp__kv_fail(c->req, rc, NULL);
        return;
    }
    op = rp__kv_op_new(c, ACT_UPDATE, scope, RP__KV_SECRET, r.name);
    d = op ? rp_arena_calloc(op->arena, sizeof(*d)) : NULL;
    if (d == NULL) {
        rp__kv_op_free(op);
        rp__kv_oom(c->req);
        return;
    }
    /* Parsed into the op's arena: the write may run after the request is gone. */
    if (rp_kvreq_parse_update_secret(op->arena, c->body, c->body_len, d, &err) != 0) {
        rp__kv_op_free(op);
        rp__kv_error(c->req, 400, "BadParameter", NULL, "%s", err ? err : "Invalid body.");
        return;
    }
    rp_strlcpy(op->version, r.version, sizeof(op->version));
    /* The answer is the version as it will be once the update commits. */
    if (d->attrs.enabled >= 0)
        r.enabled = d->attrs.enabled;
    if (d->attrs.has_nbf)
        r.nbf = d->attrs.nbf;
    if (d->attrs.has_exp)
        r.exp = d->attrs.exp;
    if (d->has_content_type)
        r.content_type = d->content_type;
    if (d->tags.present)
        r.tags = d->tags.json;
    r.updated = rp__kv_now();
    op->reply = bundle(c, &r, 0, 0);
    if (op->reply == NULL) {
        rp__kv_op_free(op);
        rp__kv_oom(c->req);
        return;
    }
    op->data = d;
    op->write = update_write;
    op->audit_durable = 1;
    rp__kv_op_submit(op);
}

/* ---------------------------------------------------------------- dispatch */

static void secret_backup(rp__kv_call *c, const char *name)
{
    rp__kv_backup(c, &rp__kv_secret_coll, name);
}

void rp__kv_secrets(rp__kv_call *c)
{
    static const rp__kv_handlers h = {secret_set, secret_get, secret_update, secret_backup, NULL};

    rp__kv_dispatch(c, &rp__kv_secret_coll, &h);
}
