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

static void secret_update(rp__kv_call *c, const char *name, const char *version)
{
    const char *scope = rp__kv_scope(c, "secrets", name);
    rp_kvreq_update_secret in;
    rp__kv_patch *d;
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
    if (rp_kvreq_parse_update_secret(op->arena, c->body, c->body_len, &in, &err) != 0) {
        rp__kv_op_free(op);
        rp__kv_error(c->req, 400, "BadParameter", NULL, "%s", err ? err : "Invalid body.");
        return;
    }
    d->attrs = in.attrs;
    d->has_content_type = in.has_content_type;
    d->content_type = in.content_type;
    d->tags = in.tags;
    rp_strlcpy(op->version, r.version, sizeof(op->version));
    /* The answer is the version as it will be once the update commits. */
    rp__kv_patch_apply(d, &r);
    op->reply = bundle(c, &r, 0, 0);
    if (op->reply == NULL) {
        rp__kv_op_free(op);
        rp__kv_oom(c->req);
        return;
    }
    op->data = d;
    op->write = rp__kv_patch_write;
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
