/*
 * kv_common.c - what the secrets and keys collections share: new versions, lists with paging,
 * soft delete / recover / purge, deleted objects, backup and restore (docs/vault.md).
 *
 * A version's material (a secret value, a private key in PKCS#8) is sealed under its own DEK by
 * the keyring with AAD "COLLECTION/NAME/VERSION" (NAME lower-cased: names are case-insensitive),
 * so a ciphertext copied onto another version, object or vault does not open. The ciphertext
 * goes to the ciphertext store (obj.blobs, id "kv/VAULT/VERSION"), everything else to the content
 * database, in one write.
 */
#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"
#include "crypto/aead.h"
#include "vault/kvreq.h"
#include "vault/vault_int.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#define BACKUP_LABEL "rampart/v1/kv-backup"
#define BACKUP_MAX   RP_KVREQ_RESTORE_MAX

const char *rp__kv_object_id(rp_arena *a, const rp__kv_coll *k, const char *name,
                             const char *version)
{
    size_t lead = strlen(k->live) + 1;
    size_t n = lead + strlen(name) + strlen(version) + 2;
    char *p = rp_arena_alloc(a, n);

    if (p == NULL)
        return NULL;
    snprintf(p, n, "%s/%s/%s", k->live, name, version);
    for (char *q = p + lead; *q && *q != '/'; q++)
        *q = rp_lower(*q);
    return p;
}

void rp__kv_not_found(rp__kv_call *c, const rp__kv_coll *k, const char *name, int deleted)
{
    if (deleted)
        rp__kv_error(c->req, 404, k->not_found, NULL, "Deleted %s not found: %s",
                     k->kind == RP__KV_SECRET ? "Secret" : "Key", name);
    else
        rp__kv_error(c->req, 404, k->not_found, NULL,
                     "A %s with (name/id) %s was not found in this key vault. If you recently "
                     "deleted this %s you may be able to recover it using the correct recovery "
                     "command.",
                     k->noun, name, k->noun);
}

int rp__kv_open(rp__kv_call *c, const rp__kv_coll *k, const rp__kv_row *r, rp_buf *pt,
                const char **reason)
{
    const char *obj = rp__kv_object_id(c->req->arena, k, r->name, r->version);

    if (obj == NULL)
        return RP_ENOMEM;
    return rp_keyring_open_object(c->v->kr, c->vault.resource, obj, r->wdek, r->wdek_len, r->ct,
                                  r->ct_len, pt, reason);
}

json_t *rp__kv_tags(const char *text)
{
    return text ? json_loads(text, 0, NULL) : NULL;
}

/* ---------------------------------------------------------------- writes */

static int object_state(sqlite3 *db, rp__kv_op *op, int *exists, int64_t *deleted_at)
{
    sqlite3_stmt *st = NULL;
    int rc;

    *exists = 0;
    *deleted_at = 0;
    if ((st = rp_store_stmt(db, "SELECT deleted_at, name FROM kv_objects WHERE vault = ?1 AND"
                                " kind = ?2 AND name = ?3")) == NULL)
        return RP_EDB;
    sqlite3_bind_text(st, 1, op->vault.name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, op->kind);
    sqlite3_bind_text(st, 3, op->name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *exists = 1;
        *deleted_at = sqlite3_column_int64(st, 0);
        /* Keep the name's first spelling, as Azure does. */
        rp_strlcpy(op->name, (const char *)sqlite3_column_text(st, 1), sizeof(op->name));
    }
    rp_store_stmt_done(db, st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : RP_EDB;
}

/* Runs sql with ?1 vault, ?2 kind, ?3 name bound from op. */
static int exec_op(sqlite3 *db, const char *sql, rp__kv_op *op, int *changes)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((st = rp_store_stmt(db, sql)) == NULL)
        return RP_EDB;
    sqlite3_bind_text(st, 1, op->vault.name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, op->kind);
    sqlite3_bind_text(st, 3, op->name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    rp_store_stmt_done(db, st);
    if (changes != NULL)
        *changes = sqlite3_changes(db);
    return rc == SQLITE_DONE ? 0 : RP_EDB;
}

/* Inserts one version (the object row is created if missing). */
static int insert_version(sqlite3 *db, rp__kv_op *op, const rp__kv_version_in *d)
{
    sqlite3_stmt *st = NULL;
    char blob_id[8 + RP_VAULT_NAME_MAX + RP__KV_VERSION_LEN];
    int rc;

    if (exec_op(db,
                "INSERT INTO kv_objects (vault, kind, name) VALUES (?1, ?2, ?3)"
                " ON CONFLICT DO NOTHING",
                op, NULL) != 0)
        return RP_EDB;
    if ((st = rp_store_stmt(db,
                            "INSERT INTO kv_versions (vault, kind, name, version, seq, created_at,"
                            " updated_at, enabled, nbf, exp, content_type, tags, meta, wdek)"
                            " VALUES (?1, ?2, ?3, ?4, (SELECT COALESCE(MAX(seq), 0) + 1 FROM"
                            " kv_versions WHERE vault = ?1 AND kind = ?2 AND name = ?3), ?5, ?6,"
                            " ?7, ?8, ?9, ?10, ?11, ?12, ?13)")) == NULL)
        return RP_EDB;
    sqlite3_bind_text(st, 1, op->vault.name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, op->kind);
    sqlite3_bind_text(st, 3, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, d->version, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, d->now);
    sqlite3_bind_int64(st, 6, d->now);
    sqlite3_bind_int(st, 7, d->enabled);
    sqlite3_bind_int64(st, 8, d->nbf);
    sqlite3_bind_int64(st, 9, d->exp);
    if (d->content_type)
        sqlite3_bind_text(st, 10, d->content_type, -1, SQLITE_STATIC);
    if (d->tags)
        sqlite3_bind_text(st, 11, d->tags, -1, SQLITE_STATIC);
    if (d->meta)
        sqlite3_bind_text(st, 12, d->meta, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 13, d->wdek.data, (int)d->wdek.len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    rp_store_stmt_done(db, st);
    if (rc != SQLITE_DONE)
        return rc == SQLITE_CONSTRAINT ? RP_EEXIST : RP_EDB;
    st = NULL;
    snprintf(blob_id, sizeof(blob_id), "kv/%s/%s", op->vault.name, d->version);
    if ((st = rp_store_stmt(db, "INSERT INTO obj.blobs (id, ct) VALUES (?1, ?2)")) == NULL)
        return RP_EDB;
    sqlite3_bind_text(st, 1, blob_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, d->ct.data, (int)d->ct.len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    rp_store_stmt_done(db, st);
    return rc == SQLITE_DONE ? 0 : RP_EDB;
}

static int vault_exists(sqlite3 *db, rp__kv_op *op)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((st = rp_store_stmt(db, "SELECT 1 FROM vaults WHERE name = ?1")) == NULL)
        return RP_EDB;
    sqlite3_bind_text(st, 1, op->vault.name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    rp_store_stmt_done(db, st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc != SQLITE_DONE)
        return RP_EDB;
    op->reason = "The vault was deleted.";
    return RP_EPERM;
}

void rp__kv_patch_apply(const rp__kv_patch *p, rp__kv_row *r)
{
    if (p->attrs.enabled >= 0)
        r->enabled = p->attrs.enabled;
    if (p->attrs.has_nbf)
        r->nbf = p->attrs.nbf;
    if (p->attrs.has_exp)
        r->exp = p->attrs.exp;
    if (p->has_content_type)
        r->content_type = p->content_type;
    if (p->tags.present)
        r->tags = p->tags.json;
    if (p->meta != NULL)
        r->meta = p->meta;
    r->updated = rp__kv_now();
}

int rp__kv_patch_write(sqlite3 *db, rp__kv_op *op)
{
    const rp__kv_patch *p = op->data;
    sqlite3_stmt *st;
    int rc;

    st = rp_store_stmt(
        db, "UPDATE kv_versions SET updated_at = ?5,"
            " enabled = CASE WHEN ?6 THEN ?7 ELSE enabled END,"
            " nbf = CASE WHEN ?8 THEN ?9 ELSE nbf END, exp = CASE WHEN ?10 THEN ?11 ELSE exp END,"
            " content_type = CASE WHEN ?12 THEN ?13 ELSE content_type END,"
            " tags = CASE WHEN ?14 THEN ?15 ELSE tags END, meta = COALESCE(?16, meta)"
            " WHERE vault = ?1 AND kind = ?2 AND name = ?3 AND version = ?4 AND EXISTS (SELECT 1"
            " FROM kv_objects o WHERE o.vault = ?1 AND o.kind = ?2 AND o.name = ?3 AND"
            " o.deleted_at = 0)");
    if (st == NULL)
        return RP_EDB;
    sqlite3_bind_text(st, 1, op->vault.name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, op->kind);
    sqlite3_bind_text(st, 3, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, op->version, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, rp__kv_now());
    sqlite3_bind_int(st, 6, p->attrs.enabled >= 0);
    sqlite3_bind_int(st, 7, p->attrs.enabled > 0);
    sqlite3_bind_int(st, 8, p->attrs.has_nbf);
    sqlite3_bind_int64(st, 9, p->attrs.nbf);
    sqlite3_bind_int(st, 10, p->attrs.has_exp);
    sqlite3_bind_int64(st, 11, p->attrs.exp);
    sqlite3_bind_int(st, 12, p->has_content_type);
    if (p->content_type)
        sqlite3_bind_text(st, 13, p->content_type, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 14, p->tags.present);
    if (p->tags.json)
        sqlite3_bind_text(st, 15, p->tags.json, -1, SQLITE_STATIC);
    if (p->meta)
        sqlite3_bind_text(st, 16, p->meta, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    rp_store_stmt_done(db, st);
    if (rc != SQLITE_DONE)
        return RP_EDB;
    return sqlite3_changes(db) == 1 ? 0 : RP_ENOENT;
}

typedef struct versions_data {
    size_t n;
    rp__kv_version_in *v; /* oldest first */
    int restore;          /* 1: the name must not exist at all */
} versions_data;

static int versions_write(sqlite3 *db, rp__kv_op *op)
{
    versions_data *d = op->data;
    int exists, rc;
    int64_t deleted_at;

    /* The vault may have been deleted while this write waited: never resurrect its objects. */
    rc = vault_exists(db, op);
    if (rc != 0)
        return rc;
    rc = object_state(db, op, &exists, &deleted_at);
    if (rc != 0)
        return rc;
    if (exists && deleted_at != 0)
        return RP_ECONFLICT;
    if (exists && d->restore)
        return RP_EEXIST;
    for (size_t i = 0; i < d->n && rc == 0; i++)
        rc = insert_version(db, op, &d->v[i]);
    return rc;
}

static void versions_done(rp__kv_op *op, int status)
{
    versions_data *d = op->data;

    (void)status;
    for (size_t i = 0; i < d->n; i++) {
        rp_buf_free(&d->v[i].wdek);
        rp_buf_free(&d->v[i].ct);
    }
    d->n = 0;
}

/* Copies v's strings into the op's arena and seals pt into v's buffers. */
static int version_prepare(rp__kv_call *c, const rp__kv_coll *k, rp__kv_op *op,
                           rp__kv_version_in *dst, const rp__kv_version_in *src, const void *pt,
                           size_t n, const char **reason)
{
    const char *obj;

    *dst = *src;
#define DUP(f) (dst->f = src->f ? rp_arena_strndup(op->arena, src->f, strlen(src->f)) : NULL)
    if (DUP(version) == NULL || (src->content_type && DUP(content_type) == NULL) ||
        (src->tags && DUP(tags) == NULL) || (src->meta && DUP(meta) == NULL))
        return RP_ENOMEM;
#undef DUP
    rp_buf_init(&dst->wdek, RP_KEYRING_WDEK_LEN + 16);
    rp_buf_init(&dst->ct, n + RP_AEAD_OVERHEAD + 16);
    obj = rp__kv_object_id(op->arena, k, op->name, dst->version);
    if (obj == NULL)
        return RP_ENOMEM;
    return rp_keyring_seal(c->v->kr, c->vault.resource, obj, pt, n, &dst->wdek, &dst->ct, reason);
}

void rp__kv_new_version(rp__kv_call *c, const rp__kv_coll *k, const char *action, const char *scope,
                        const char *name, rp__kv_version_in *v, const void *pt, size_t n,
                        json_t *reply)
{
    rp__kv_op *op = rp__kv_op_new(c, action, scope, k->kind, name);
    versions_data *d = op ? rp_arena_calloc(op->arena, sizeof(*d)) : NULL;
    const char *reason = NULL;
    int rc = RP_ENOMEM;

    if (d == NULL || reply == NULL)
        goto fail;
    d->v = rp_arena_calloc(op->arena, sizeof(*d->v));
    if (d->v == NULL)
        goto fail;
    op->data = d;
    op->done = versions_done;
    d->n = 1;
    rc = version_prepare(c, k, op, &d->v[0], v, pt, n, &reason);
    if (rc != 0)
        goto fail;
    rp_strlcpy(op->version, v->version, sizeof(op->version));
    op->write = versions_write;
    op->reply = reply;
    op->audit_durable = 1;
    rp__kv_op_submit(op);
    return;
fail:
    json_decref(reply);
    if (op != NULL && op->data != NULL)
        versions_done(op, rc);
    rp__kv_op_free(op);
    rp__kv_fail(c->req, rc, reason);
}

/* ---------------------------------------------------------------- lists */

void rp__kv_list(rp__kv_call *c, const rp__kv_coll *k, const char *name, int deleted)
{
    int page = rp__kv_page_size(c);
    const char *skip = rp_req_query(c->req, "$skiptoken");
    sqlite3_stmt *st;
    json_t *arr, *out;
    const char *last = NULL;
    int n = 0, rc;
    int64_t last_seq = 0;

    if (page < 0)
        return;
    if (name != NULL)
        st = rp__kv_stmt(5, "SELECT " RP__KV_ROW_COLUMNS ", v.seq" RP__KV_ROW_JOIN
                            " WHERE v.vault = ?1 AND v.kind = ?2 AND v.name = ?3 AND"
                            " o.deleted_at = 0 AND v.seq < ?4 ORDER BY v.seq DESC LIMIT ?5");
    else
        st = rp__kv_stmt(deleted ? 7 : 6,
                         deleted ? "SELECT " RP__KV_ROW_COLUMNS ", v.seq" RP__KV_ROW_JOIN
                                   " WHERE v.vault = ?1 AND v.kind = ?2 AND o.deleted_at != 0"
                                   " AND v.name > ?3 AND v.seq = (SELECT MAX(x.seq) FROM"
                                   " kv_versions x WHERE x.vault = v.vault AND x.kind = v.kind"
                                   " AND x.name = v.name) ORDER BY v.name LIMIT ?5"
                                 : "SELECT " RP__KV_ROW_COLUMNS ", v.seq" RP__KV_ROW_JOIN
                                   " WHERE v.vault = ?1 AND v.kind = ?2 AND o.deleted_at = 0"
                                   " AND v.name > ?3 AND v.seq = (SELECT MAX(x.seq) FROM"
                                   " kv_versions x WHERE x.vault = v.vault AND x.kind = v.kind"
                                   " AND x.name = v.name) ORDER BY v.name LIMIT ?5");
    arr = json_array();
    if (st == NULL || arr == NULL) {
        json_decref(arr);
        rp__kv_fail(c->req, st == NULL ? RP_EDB : RP_ENOMEM, NULL);
        return;
    }
    sqlite3_bind_text(st, 1, c->vault.name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, k->kind);
    if (name != NULL) {
        uint64_t seq = INT64_MAX;
        sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
        if (skip != NULL && rp_parse_u64(skip, strlen(skip), INT64_MAX, &seq) != 0)
            seq = 0;
        sqlite3_bind_int64(st, 4, (int64_t)seq);
    } else {
        sqlite3_bind_text(st, 3, skip ? skip : "", -1, SQLITE_TRANSIENT);
    }
    /* One more than a page tells whether a next page exists. */
    sqlite3_bind_int(st, 5, page + 1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rp__kv_row r;
        json_t *item;
        if (n == page)
            break;
        rp__kv_row_read(c->req->arena, st, &r);
        if (r.name == NULL || r.version == NULL)
            break;
        item = k->bundle(c, &r, name == NULL ? 1 : 2, deleted);
        if (item == NULL || json_array_append_new(arr, item) != 0)
            break;
        last = r.name;
        last_seq = sqlite3_column_int64(st, 14);
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        json_decref(arr);
        rp__kv_fail(c->req, RP_EDB, NULL);
        return;
    }
    out = json_pack("{s:o}", "value", arr);
    if (out != NULL && rc == SQLITE_ROW && n == page) {
        char link[1024];
        if (name != NULL)
            snprintf(link, sizeof(link),
                     "%s/%s/%s/versions?api-version=2025-07-01&maxresults=%d&$skiptoken=%lld",
                     c->base, k->live, name, page, (long long)last_seq);
        else
            snprintf(link, sizeof(link), "%s/%s?api-version=2025-07-01&maxresults=%d&$skiptoken=%s",
                     c->base, deleted ? k->deleted : k->live, page, last ? last : "");
        json_object_set_new(out, "nextLink", json_string(link));
    } else if (out != NULL) {
        json_object_set_new(out, "nextLink", json_null());
    }
    if (out == NULL) {
        rp__kv_oom(c->req);
        return;
    }
    rp_resp_json(c->req, 200, out);
}

/* ---------------------------------------------------------------- delete / recover / purge */

typedef struct del_data {
    int64_t now, purge_at;
    int mode; /* 0 delete, 1 recover, 2 purge */
} del_data;

static int delete_write(sqlite3 *db, rp__kv_op *op)
{
    del_data *d = op->data;
    sqlite3_stmt *st = NULL;
    int changes = 0, rc;

    if (d->mode == 2) {
        rc = exec_op(db,
                     "DELETE FROM obj.blobs WHERE id IN (SELECT 'kv/' || v.vault || '/' ||"
                     " v.version FROM kv_versions v JOIN kv_objects o ON o.vault = v.vault AND"
                     " o.kind = v.kind AND o.name = v.name WHERE v.vault = ?1 AND v.kind = ?2"
                     " AND v.name = ?3 AND o.deleted_at != 0)",
                     op, NULL);
        if (rc == 0)
            rc = exec_op(db,
                         "DELETE FROM kv_objects WHERE vault = ?1 AND kind = ?2 AND name = ?3"
                         " AND deleted_at != 0",
                         op, &changes);
        return rc != 0 ? rc : changes == 1 ? 0 : RP_ENOENT;
    }
    if (sqlite3_prepare_v2(db,
                           d->mode == 0
                               ? "UPDATE kv_objects SET deleted_at = ?4, purge_at = ?5 WHERE"
                                 " vault = ?1 AND kind = ?2 AND name = ?3 AND deleted_at = 0"
                               : "UPDATE kv_objects SET deleted_at = 0, purge_at = 0 WHERE"
                                 " vault = ?1 AND kind = ?2 AND name = ?3 AND deleted_at != 0",
                           -1, &st, NULL) != SQLITE_OK)
        return RP_EDB;
    sqlite3_bind_text(st, 1, op->vault.name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, op->kind);
    sqlite3_bind_text(st, 3, op->name, -1, SQLITE_STATIC);
    if (d->mode == 0) {
        sqlite3_bind_int64(st, 4, d->now);
        sqlite3_bind_int64(st, 5, d->purge_at);
    }
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return RP_EDB;
    return sqlite3_changes(db) == 1 ? 0 : RP_ENOENT;
}

void rp__kv_delete(rp__kv_call *c, const rp__kv_coll *k, const char *name, int mode)
{
    const char *act = mode == 0 ? k->act_delete : mode == 1 ? k->act_recover : k->act_purge;
    const char *scope = rp__kv_scope(c, k->live, name);
    rp__kv_row r;
    rp__kv_op *op;
    del_data *d;
    int rc;

    if (!rp__kv_allow(c, act, scope))
        return;
    rc = rp__kv_get(c, k->kind, name, NULL, &r);
    if (rc == RP_ENOENT || (rc == 0 && (mode == 0) != (r.deleted_at == 0))) {
        rp__kv_not_found(c, k, name, mode != 0);
        return;
    }
    if (rc != 0) {
        rp__kv_fail(c->req, rc, NULL);
        return;
    }
    if (mode == 2 && c->vault.purge_protection) {
        rp__kv_error(c->req, 403, "Forbidden", "PurgeProtectionEnabled",
                     "Operation \"purge\" is not allowed because purge protection is enabled for "
                     "this vault. Key Vault service will automatically purge it after the "
                     "retention period has passed.");
        return;
    }
    op = rp__kv_op_new(c, act, scope, k->kind, r.name);
    d = op ? rp_arena_calloc(op->arena, sizeof(*d)) : NULL;
    if (d == NULL) {
        rp__kv_op_free(op);
        rp__kv_oom(c->req);
        return;
    }
    d->mode = mode;
    d->now = rp__kv_now();
    d->purge_at = d->now + (int64_t)c->vault.retention_days * 86400;
    if (mode == 0) {
        r.deleted_at = d->now;
        r.purge_at = d->purge_at;
        op->reply = k->bundle(c, &r, 0, 1);
    } else if (mode == 1) {
        op->reply = k->bundle(c, &r, 0, 0);
    } else {
        op->status = 204;
    }
    if (mode != 2 && op->reply == NULL) {
        rp__kv_op_free(op);
        rp__kv_oom(c->req);
        return;
    }
    if (mode == 2 && k->purge_prepare != NULL) {
        rc = k->purge_prepare(c, r.name, op);
        if (rc != 0) {
            rp__kv_op_free(op);
            rp__kv_fail(c->req, rc, NULL);
            return;
        }
        op->done = k->purged;
    }
    op->data = d;
    op->write = delete_write;
    op->audit_durable = 1;
    rp__kv_op_submit(op);
}

void rp__kv_deleted_get(rp__kv_call *c, const rp__kv_coll *k, const char *name)
{
    rp__kv_row r;
    json_t *o;
    int rc;

    if (!rp__kv_allow(c, k->act_meta, rp__kv_scope(c, k->live, name)))
        return;
    rc = rp__kv_get(c, k->kind, name, NULL, &r);
    if (rc == RP_ENOENT || (rc == 0 && r.deleted_at == 0)) {
        rp__kv_not_found(c, k, name, 1);
        return;
    }
    if (rc != 0) {
        rp__kv_fail(c->req, rc, NULL);
        return;
    }
    o = k->bundle(c, &r, 0, 1);
    if (o == NULL) {
        rp__kv_oom(c->req);
        return;
    }
    rp_resp_json(c->req, 200, o);
}

/* ---------------------------------------------------------------- backup / restore */

/*
 * A backup is an RPE1 envelope (base64url) under a key derived from the install's system key,
 * AAD naming the collection, of {"format":1,"kind":"secret"|"key","name":N,"versions":[{version,
 * created, updated, enabled, nbf, exp, contentType, tags, meta, material (base64url)}]}: it
 * restores into any vault of the same install, never elsewhere, and is useless without it.
 */
static void backup_aad(const rp__kv_coll *k, char *out, size_t cap)
{
    snprintf(out, cap, "rampart kv backup: %s", k->noun);
}

void rp__kv_backup(rp__kv_call *c, const rp__kv_coll *k, const char *name)
{
    const char *scope = rp__kv_scope(c, k->live, name);
    sqlite3_stmt *st;
    json_t *doc = NULL, *vers = NULL;
    rp_buf env, pt;
    unsigned char key[32];
    char aad[64], *text = NULL, *b64 = NULL, *mat = NULL;
    const char *stored = NULL, *reason = NULL;
    size_t b64cap;
    int rc = RP_ENOMEM, step;

    if (!rp__kv_allow(c, k->act_backup, scope))
        return;
    rp_buf_init(&env, BACKUP_MAX);
    rp_buf_init(&pt, 1u << 20);
    st = rp__kv_stmt(8, "SELECT " RP__KV_ROW_COLUMNS RP__KV_ROW_JOIN
                        " WHERE v.vault = ?1 AND v.kind = ?2 AND v.name = ?3 AND"
                        " o.deleted_at = 0 ORDER BY v.seq");
    vers = json_array();
    if (st == NULL || vers == NULL) {
        rc = st == NULL ? RP_EDB : RP_ENOMEM;
        goto fail;
    }
    sqlite3_bind_text(st, 1, c->vault.name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, k->kind);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        rp__kv_row r;
        json_t *v;
        size_t mcap;
        rp__kv_row_read(c->req->arena, st, &r);
        rc = RP_ENOMEM;
        if (r.name == NULL || r.version == NULL) {
            sqlite3_reset(st);
            goto fail;
        }
        stored = r.name;
        rp_buf_reset(&pt);
        rc = rp__kv_open(c, k, &r, &pt, &reason);
        if (rc != 0) {
            sqlite3_reset(st);
            goto fail;
        }
        mcap = pt.len * 4 / 3 + 8;
        mat = rp_malloc(mcap);
        rc = RP_ENOMEM;
        if (mat == NULL ||
            rp_b64url_encode((const unsigned char *)pt.data, pt.len, mat, mcap) < 0) {
            sqlite3_reset(st);
            goto fail;
        }
        v = json_pack("{s:s,s:I,s:I,s:b,s:I,s:I,s:s?,s:o?,s:s?,s:s}", "version", r.version,
                      "created", (json_int_t)r.created, "updated", (json_int_t)r.updated, "enabled",
                      r.enabled, "nbf", (json_int_t)r.nbf, "exp", (json_int_t)r.exp, "contentType",
                      r.content_type, "tags", rp__kv_tags(r.tags), "meta", r.meta, "material", mat);
        OPENSSL_cleanse(mat, strlen(mat));
        rp_free(mat);
        mat = NULL;
        if (v == NULL || json_array_append_new(vers, v) != 0) {
            sqlite3_reset(st);
            goto fail;
        }
    }
    sqlite3_reset(st);
    if (step != SQLITE_DONE) {
        rc = RP_EDB;
        goto fail;
    }
    if (stored == NULL) {
        json_decref(vers);
        rp_buf_free_secret(&pt);
        rp_buf_free(&env);
        rp__kv_not_found(c, k, name, 0);
        return;
    }
    doc = json_pack("{s:i,s:s,s:s,s:o}", "format", 1, "kind", k->noun, "name", stored, "versions",
                    vers);
    vers = NULL;
    text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    rc = RP_ENOMEM;
    if (text == NULL)
        goto fail;
    backup_aad(k, aad, sizeof(aad));
    rc = rp_rootkey_derive(rp_keyring_system(c->v->kr), BACKUP_LABEL, key, sizeof(key));
    if (rc == 0)
        rc = rp_aead_seal(key, aad, strlen(aad), text, strlen(text), &env);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc == RP_ETOOBIG) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
        json_decref(doc);
        rp_buf_free_secret(&pt);
        rp_buf_free(&env);
        rp__kv_error(c->req, 400, "BadParameter", NULL,
                     "The %s has too many versions to fit in one backup blob.", k->noun);
        return;
    }
    if (rc != 0)
        goto fail;
    rc = RP_ENOMEM;
    b64cap = env.len * 4 / 3 + 8;
    b64 = rp_malloc(b64cap);
    if (b64 == NULL || rp_b64url_encode((const unsigned char *)env.data, env.len, b64, b64cap) < 0)
        goto fail;
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    json_decref(doc);
    rp_buf_free_secret(&pt);
    rp_buf_free(&env);
    rp__kv_send_audited(c, k->act_backup, scope, stored, json_pack("{s:s}", "value", b64));
    rp_free(b64);
    return;
fail:
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    rp_free(mat);
    rp_free(b64);
    json_decref(doc);
    json_decref(vers);
    rp_buf_free_secret(&pt);
    rp_buf_free(&env);
    rp__kv_fail(c->req, rc, reason);
}

void rp__kv_restore(rp__kv_call *c, const rp__kv_coll *k)
{
    rp__kv_row r; /* the answer's version (function scope: cppcheck follows reply into it) */
    const char *reason = NULL, *name, *msg = NULL;
    unsigned char key[32];
    rp_kvreq_restore in;
    size_t i;
    char aad[64];
    rp_buf pt;
    json_t *doc = NULL, *vers, *x, *reply = NULL;
    rp__kv_op *op = NULL;
    versions_data *d;
    int rc = RP_EPARSE;

    if (rp_kvreq_parse_restore(c->req->arena, c->body, c->body_len, &in, &msg) != 0) {
        rp__kv_error(c->req, 400, "BadParameter", NULL, "%s", msg ? msg : "Invalid body.");
        return;
    }
    rp_buf_init(&pt, in.value.n + 1);
    backup_aad(k, aad, sizeof(aad));
    if (rp_rootkey_derive(rp_keyring_system(c->v->kr), BACKUP_LABEL, key, sizeof(key)) == 0) {
        if (rp_aead_open(key, aad, strlen(aad), in.value.p, in.value.n, &pt) == 0)
            doc = json_loadb(pt.data, pt.len, JSON_REJECT_DUPLICATES, NULL);
        OPENSSL_cleanse(key, sizeof(key));
    }
    rp_buf_free_secret(&pt);
    name = json_string_value(json_object_get(doc, "name"));
    vers = json_object_get(doc, "versions");
    if (doc == NULL || name == NULL || !rp__kv_name_valid(name) || !json_is_array(vers) ||
        json_array_size(vers) == 0 || json_array_size(vers) > 10000 ||
        json_integer_value(json_object_get(doc, "format")) != 1 ||
        !json_is_string(json_object_get(doc, "kind")) ||
        strcmp(json_string_value(json_object_get(doc, "kind")), k->noun) != 0) {
        json_decref(doc);
        rp__kv_error(c->req, 400, "BadParameter", NULL,
                     "The backup blob is invalid, was altered, or was not made by this "
                     "installation.");
        return;
    }
    if (!rp__kv_allow(c, k->act_restore, rp__kv_scope(c, k->live, name))) {
        json_decref(doc);
        return;
    }
    op = rp__kv_op_new(c, k->act_restore, rp__kv_scope(c, k->live, name), k->kind, name);
    d = op ? rp_arena_calloc(op->arena, sizeof(*d)) : NULL;
    if (d != NULL)
        d->v = rp_arena_calloc(op->arena, json_array_size(vers) * sizeof(*d->v));
    if (d == NULL || d->v == NULL) {
        rc = RP_ENOMEM;
        goto fail;
    }
    op->data = d;
    op->done = versions_done;
    d->restore = 1;
    json_array_foreach(vers, i, x)
    {
        rp__kv_version_in vin = {0};
        json_t *tags = json_object_get(x, "tags");
        const char *mat = json_string_value(json_object_get(x, "material"));
        char *tags_text = NULL;
        unsigned char *m;
        size_t mlen = 0, mcap;
        rc = RP_EPARSE;
        vin.version = json_string_value(json_object_get(x, "version"));
        if (vin.version == NULL || !rp__kv_version_valid(vin.version) || mat == NULL)
            goto fail;
        vin.now = json_integer_value(json_object_get(x, "created"));
        vin.enabled = json_is_true(json_object_get(x, "enabled"));
        vin.nbf = json_integer_value(json_object_get(x, "nbf"));
        vin.exp = json_integer_value(json_object_get(x, "exp"));
        vin.content_type = json_string_value(json_object_get(x, "contentType"));
        vin.meta = json_string_value(json_object_get(x, "meta"));
        /* A token reference must never get a second owner (see kv_keys.c key_backup). */
        if (vin.meta != NULL && strstr(vin.meta, "\"hsm\":true") != NULL)
            goto fail;
        if (json_is_object(tags)) {
            tags_text = json_dumps(tags, JSON_COMPACT);
            if (tags_text == NULL) {
                rc = RP_ENOMEM;
                goto fail;
            }
            vin.tags = tags_text;
        }
        mcap = strlen(mat) * 3 / 4 + 3;
        m = rp_malloc(mcap);
        if (m == NULL) {
            free(tags_text);
            rc = RP_ENOMEM;
            goto fail;
        }
        rc = rp_b64url_decode(mat, strlen(mat), m, mcap, &mlen) == 0 ? 0 : RP_EPARSE;
        if (rc == 0) {
            d->n = i + 1;
            rc = version_prepare(c, k, op, &d->v[i], &vin, m, mlen, &reason);
        }
        OPENSSL_cleanse(m, mcap);
        rp_free(m);
        free(tags_text);
        if (rc != 0)
            goto fail;
    }
    {
        const rp__kv_version_in *last = &d->v[d->n - 1];
        memset(&r, 0, sizeof(r));
        r.name = op->name;
        r.version = last->version;
        r.created = r.updated = last->now;
        r.enabled = last->enabled;
        r.nbf = last->nbf;
        r.exp = last->exp;
        r.content_type = last->content_type;
        r.tags = last->tags;
        r.meta = last->meta;
        reply = k->bundle(c, &r, 0, 0);
        rp_strlcpy(op->version, last->version, sizeof(op->version));
    }
    /* The parsed document held the material in plaintext. */
    json_array_foreach(vers, i, x)
    {
        json_t *m = json_object_get(x, "material");
        if (json_is_string(m))
            OPENSSL_cleanse((void *)json_string_value(m), json_string_length(m));
    }
    json_decref(doc);
    if (reply == NULL) {
        rc = RP_ENOMEM;
        doc = NULL;
        goto fail;
    }
    op->reply = reply;
    op->write = versions_write;
    op->audit_durable = 1;
    rp__kv_op_submit(op);
    return;
fail:
    json_decref(doc);
    if (op != NULL && op->data != NULL)
        versions_done(op, rc);
    rp__kv_op_free(op);
    if (rc == RP_EPARSE)
        rp__kv_error(c->req, 400, "BadParameter", NULL, "The backup blob is malformed.");
    else
        rp__kv_fail(c->req, rc, reason);
}

/* ---------------------------------------------------------------- routing */

void rp__kv_dispatch(rp__kv_call *c, const rp__kv_coll *k, const rp__kv_handlers *h)
{
    rp_method m = c->req->method;
    int deleted = strcmp(c->seg[0], k->deleted) == 0;
    const char *name = c->nseg > 1 ? c->seg[1] : NULL;
    const char *third = c->nseg > 2 ? c->seg[2] : NULL;

    if (name != NULL && name[0] == '\0' && c->nseg == 2)
        name = NULL; /* "/secrets/" is the collection */
    if (name == NULL) {
        if (m == RP_METHOD_GET && c->nseg <= 2) {
            if (rp__kv_allow(c, k->act_meta, rp__kv_scope(c, k->live, NULL)))
                rp__kv_list(c, k, NULL, deleted);
            return;
        }
        goto bad;
    }
    if (!deleted && strcmp(name, "restore") == 0 && c->nseg == 2 && m == RP_METHOD_POST) {
        rp__kv_restore(c, k);
        return;
    }
    if (!rp__kv_name_valid(name)) {
        rp__kv_error(c->req, 400, "BadParameter", NULL,
                     "The %s name '%.140s' is invalid: use 1-127 of 0-9, a-z, A-Z and '-'.",
                     k->noun, name);
        return;
    }
    if (deleted) {
        if (c->nseg == 2 && m == RP_METHOD_GET)
            rp__kv_deleted_get(c, k, name);
        else if (c->nseg == 2 && m == RP_METHOD_DELETE)
            rp__kv_delete(c, k, name, 2);
        else if (c->nseg == 3 && strcmp(third, "recover") == 0 && m == RP_METHOD_POST)
            rp__kv_delete(c, k, name, 1);
        else
            goto bad;
        return;
    }
    if (h->extra != NULL && h->extra(c, name))
        return;
    if (c->nseg == 2) {
        if (m == RP_METHOD_PUT)
            h->put(c, name);
        else if (m == RP_METHOD_DELETE)
            rp__kv_delete(c, k, name, 0);
        else if (m == RP_METHOD_GET)
            h->get(c, name, "");
        else if (m == RP_METHOD_PATCH)
            h->patch(c, name, "");
        else
            goto bad;
        return;
    }
    if (c->nseg == 3) {
        if (strcmp(third, "versions") == 0 && m == RP_METHOD_GET) {
            if (rp__kv_allow(c, k->act_meta, rp__kv_scope(c, k->live, name)))
                rp__kv_list(c, k, name, 0);
            return;
        }
        if (strcmp(third, "backup") == 0 && m == RP_METHOD_POST) {
            h->backup(c, name);
            return;
        }
        if (m == RP_METHOD_GET) {
            h->get(c, name, third);
            return;
        }
        if (m == RP_METHOD_PATCH) {
            h->patch(c, name, third);
            return;
        }
    }
bad:
    rp__kv_error(c->req, 405, "BadParameter", NULL, "The operation is not supported on this path.");
}
