/*
 * vault.c - the Key Vault service: open/close, per-loop state, the data plane's front half
 * (challenge, authentication, vault lookup, body, dispatch), asynchronous ops, and the
 * management collection /api/vaults.
 *
 * Workload: secret reads dominate (≥ 20,000/s is the target on two cores), so a read is one
 * prepared statement on this loop's own reader connection, two AES-GCM opens (DEK, value) with
 * the KEK already in memory, and one durable audit record whose fsync is shared with every other
 * request of the same group. Writes go through the store's writer (group commit).
 *
 * The first request of an SDK client carries no Authorization header and no body; it gets the
 * 401 challenge before anything else is looked at (shared/specs/azure-data-planes.md §2.2).
 */
#include "vault/vault_int.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/rand.h"
#include "base/str.h"
#include "monitor/audit.h"
#include "vault/kvhsm.h"
#include "vault/kvkey.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KV_STMTS 24
/* Parsed private keys kept per loop (about 3 KB each for RSA-2048). */
#define KV_KEY_CACHE 64
/* Rows read per loop (metadata, wrapped DEK, ciphertext - never plaintext), direct-mapped, and
 * vaults. Both are dropped whenever anything in the vault store changes (kv_data_gen). */
#define KV_ROW_CACHE   256
#define KV_VAULT_CACHE 16
/* How often each loop looks for soft-deleted objects whose retention has ended. */
#define KV_SWEEP_MS (60 * 1000)
/* Largest request body: a restore blob of a key or a secret with all its versions. */
#define KV_MAX_BODY (512 * 1024)

typedef struct kv_loop {
    rp_vault *v;
    uv_loop_t *loop;
    rp_store_port *sport;
    sqlite3 *db;
    sqlite3_stmt *st[KV_STMTS];
    rp__kv_op ops; /* list head of ops in flight */
    uv_timer_t sweep;
    struct {
        char id[RP_VAULT_NAME_MAX + RP__KV_VERSION_LEN + 2]; /* "vault/version" */
        rp_kvkey *key;
        uint64_t epoch; /* kv_key_epoch when cached */
    } keys[KV_KEY_CACHE];
    unsigned next_key; /* round-robin replacement */
    struct {
        uint64_t gen;
        char *key; /* "vault\1kind\1lower-case name\1version" (one block with the row) */
        rp__kv_row row;
    } rows[KV_ROW_CACHE];
    struct {
        uint64_t gen;
        rp__kv_vault vault;
    } vaults[KV_VAULT_CACHE];
    unsigned next_vault;
} kv_loop;

static __thread kv_loop *tl;

/*
 * Bumped whenever a key that protects a vault (a customer-managed key) changes: every loop's
 * parsed-key cache is then stale, because the keys it holds may belong to a vault whose KEK just
 * became unusable, and a cache hit never goes back through the keyring.
 */
static atomic_uint_fast64_t kv_key_epoch;

/*
 * Bumped after every committed change to vaults, secrets or keys (and every purge sweep): the
 * loops' row and vault caches hold only what was read at the current value, so a reader never
 * sees a row older than a write whose answer was already sent (the bump precedes the answer).
 * Starts at 1 so that a zeroed cache slot is never current.
 */
static atomic_uint_fast64_t kv_data_gen = 1;

int64_t rp__kv_now(void)
{
    return (int64_t)time(NULL);
}

/* ---------------------------------------------------------------- names */

int rp_vault_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n < RP_VAULT_NAME_MIN || n > RP_VAULT_NAME_MAX)
        return 0;
    if (!(s[0] >= 'a' && s[0] <= 'z'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return 0;
        if (ch == '-' && i > 0 && s[i - 1] == '-')
            return 0;
    }
    return s[n - 1] != '-';
}

int rp__kv_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > RP__KV_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-'))
            return 0;
    }
    return 1;
}

int rp__kv_version_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n != RP__KV_VERSION_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

void rp__kv_version_new(char out[RP__KV_VERSION_LEN + 1])
{
    unsigned char r[RP__KV_VERSION_LEN / 2];

    /* The random generator failing is fatal elsewhere too; a zero version would collide. */
    if (rp_random_bytes(r, sizeof(r)) != 0)
        abort();
    rp_hex_encode(r, sizeof(r), out);
    out[RP__KV_VERSION_LEN] = '\0';
}

/* ---------------------------------------------------------------- errors */

void rp__kv_error(rp_req *req, int status, const char *code, const char *inner, const char *fmt,
                  ...)
{
    char msg[512];
    va_list ap;
    json_t *e;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    e = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
    if (e != NULL && inner != NULL)
        json_object_set_new(json_object_get(e, "error"), "innererror",
                            json_pack("{s:s}", "code", inner));
    if (e == NULL) {
        rp_resp_send(req, 500, "application/json; charset=utf-8", "{}", 2);
        return;
    }
    rp_resp_json(req, status, e);
}

void rp__kv_oom(rp_req *req)
{
    rp__kv_error(req, 500, "InternalError", NULL, "out of memory");
}

void rp__kv_fail(rp_req *req, int rc, const char *reason)
{
    switch (rc) {
    case RP_EPERM:
        /* The vault's KEK is wrapped by a customer-managed key that cannot be used now. */
        rp__kv_error(req, 403, "Forbidden", "KeyVaultEncryptionKeyUnavailable",
                     "The vault's customer-managed key cannot be used: %s.",
                     reason ? reason : "access to the key was revoked");
        return;
    case RP_ECLOSED:
        rp__kv_error(req, 503, "ServiceUnavailable", NULL, "The service is shutting down.");
        return;
    case RP_ENOMEM: rp__kv_oom(req); return;
    default:
        rp__kv_error(req, 500, "InternalError", NULL, "The operation failed (%s).",
                     rp_strerror(rc));
    }
}

/* ---------------------------------------------------------------- per loop */

sqlite3 *rp__kv_db(void)
{
    return tl ? tl->db : NULL;
}

sqlite3_stmt *rp__kv_stmt(int i, const char *sql)
{
    sqlite3_stmt **st;

    if (tl == NULL || i < 0 || i >= KV_STMTS)
        return NULL;
    st = &tl->st[i];
    if (*st == NULL) {
        if (sqlite3_prepare_v3(tl->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
            rp_log_msg(RP_LOG_ERROR, "vault.prepare", sqlite3_errmsg(tl->db));
            sqlite3_finalize(*st);
            *st = NULL;
            return NULL;
        }
    } else {
        sqlite3_reset(*st);
        sqlite3_clear_bindings(*st);
    }
    return *st;
}

/* Soft-deleted objects whose retention ended are purged: versions, blobs and the object. */
static int sweep_write(sqlite3 *db, void *arg)
{
    int64_t now = rp__kv_now();
    sqlite3_stmt *st = NULL;
    int rc = RP_EDB;

    (void)arg;
    if (sqlite3_prepare_v2(db,
                           "DELETE FROM obj.blobs WHERE id IN (SELECT 'kv/' || v.vault || '/' ||"
                           " v.version FROM kv_versions v JOIN kv_objects o ON o.vault = v.vault"
                           " AND o.kind = v.kind AND o.name = v.name WHERE o.deleted_at != 0 AND"
                           " o.purge_at <= ?1)",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(st, 1, now) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
        goto out;
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "DELETE FROM kv_objects WHERE deleted_at != 0 AND purge_at <= ?1",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(st, 1, now) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

static void sweep_done(int status, void *arg)
{
    (void)arg;
    if (status == 0)
        atomic_fetch_add(&kv_data_gen, 1);
}

static void on_sweep(uv_timer_t *t)
{
    kv_loop *l = t->data;

    /* Nothing waits for it; a failure is retried at the next tick. */
    if (rp_store_submit(l->sport, sweep_write, NULL, sweep_done) != 0)
        rp_log_msg(RP_LOG_WARN, "vault.sweep", "could not queue the purge of expired objects");
}

static void sweep_closed(uv_handle_t *h)
{
    rp_free(h->data);
}

int rp_vault_loop_start(rp_vault *v, uv_loop_t *loop)
{
    kv_loop *l;
    int rc;

    if (tl != NULL)
        return RP_EINVAL;
    l = rp_calloc(1, sizeof(*l));
    if (l == NULL)
        return RP_ENOMEM;
    l->v = v;
    l->loop = loop;
    l->ops.prev = l->ops.next = &l->ops;
    rc = rp_store_port_open(v->store, loop, &l->sport);
    if (rc == 0)
        rc = rp_store_reader_open(v->store, &l->db);
    if (rc == 0 && uv_timer_init(loop, &l->sweep) != 0)
        rc = RP_EIO;
    if (rc != 0) {
        rp_store_port_close(l->sport);
        sqlite3_close(l->db);
        rp_free(l);
        return rc;
    }
    l->sweep.data = l;
    uv_timer_start(&l->sweep, on_sweep, KV_SWEEP_MS, KV_SWEEP_MS);
    tl = l;
    return 0;
}

static int barrier(sqlite3 *db, void *arg)
{
    (void)db;
    (void)arg;
    return 0;
}

void rp_vault_loop_stop(rp_vault *v)
{
    kv_loop *l = tl;
    int waited = 0;

    if (l == NULL || l->v != v)
        return;
    rp_store_port_close(l->sport);
    /* Completions can no longer arrive. An op whose write the writer may still run must not be
     * freed under it: the writer is FIFO, so once a write queued now has run, no older one can
     * still be touching an op. */
    while (l->ops.next != &l->ops) {
        rp__kv_op *op = l->ops.next;
        if (op->in_store && !waited) {
            (void)rp_store_write_sync(v->store, barrier, NULL);
            waited = 1;
        }
        rp__kv_op_free(op);
    }
    for (int i = 0; i < KV_STMTS; i++)
        sqlite3_finalize(l->st[i]);
    for (int i = 0; i < KV_KEY_CACHE; i++)
        rp_kvkey_free(l->keys[i].key);
    for (int i = 0; i < KV_ROW_CACHE; i++)
        rp_free(l->rows[i].key);
    sqlite3_close(l->db);
    uv_timer_stop(&l->sweep);
    l->sweep.data = l;
    uv_close((uv_handle_t *)&l->sweep, sweep_closed);
    tl = NULL;
}

/* ---------------------------------------------------------------- key cache */

rp_kvkey *rp__kv_key_cached(const char *vault, const char *version)
{
    char id[sizeof(tl->keys[0].id)];

    if (tl == NULL)
        return NULL;
    snprintf(id, sizeof(id), "%s/%s", vault, version);
    for (int i = 0; i < KV_KEY_CACHE; i++) {
        if (tl->keys[i].key == NULL || strcmp(tl->keys[i].id, id) != 0)
            continue;
        if (tl->keys[i].epoch != atomic_load(&kv_key_epoch)) {
            rp_kvkey_free(tl->keys[i].key);
            tl->keys[i].key = NULL;
            return NULL;
        }
        return rp_kvkey_ref(tl->keys[i].key);
    }
    return NULL;
}

void rp__kv_key_cache(const char *vault, const char *version, rp_kvkey *k)
{
    unsigned i;

    if (tl == NULL || k == NULL)
        return;
    i = tl->next_key++ % KV_KEY_CACHE;
    rp_kvkey_free(tl->keys[i].key);
    snprintf(tl->keys[i].id, sizeof(tl->keys[i].id), "%s/%s", vault, version);
    tl->keys[i].key = rp_kvkey_ref(k);
    tl->keys[i].epoch = atomic_load(&kv_key_epoch);
}

/* ---------------------------------------------------------------- ops */

void rp__kv_op_free(rp__kv_op *op)
{
    if (op == NULL)
        return;
    if (op->prev != NULL) {
        op->prev->next = op->next;
        op->next->prev = op->prev;
    }
    if (op->req != NULL) {
        rp__kv_op **slot = op->req->handler_data;
        if (slot != NULL && *slot == op)
            *slot = NULL;
    }
    json_decref(op->reply);
    rp_arena_destroy(op->arena); /* wipes nothing by itself: secret fields use alloc_secret */
    rp_free(op);
}

static void op_cancel(void *arg)
{
    rp__kv_op **slot = arg;

    if (*slot != NULL)
        (*slot)->req = NULL;
}

rp__kv_op *rp__kv_op_new(rp__kv_call *c, const char *action, const char *scope, int kind,
                         const char *name)
{
    rp__kv_op *op;
    rp__kv_op **slot;

    if (tl == NULL)
        return NULL;
    slot = rp_arena_alloc(c->req->arena, sizeof(*slot));
    op = rp_calloc(1, sizeof(*op));
    if (slot == NULL || op == NULL) {
        rp_free(op);
        return NULL;
    }
    op->arena = rp_arena_create(4096);
    if (op->arena == NULL || rp_arena_add_cleanup(c->req->arena, op_cancel, slot) != 0) {
        rp_arena_destroy(op->arena);
        rp_free(op);
        return NULL;
    }
    *slot = op;
    c->req->handler_data = slot;
    op->v = c->v;
    op->req = c->req;
    op->status = 200;
    op->who = c->who;
    op->vault = c->vault;
    op->kind = kind;
    rp_strlcpy(op->action, action, sizeof(op->action));
    rp_strlcpy(op->scope, scope, sizeof(op->scope));
    if (name != NULL)
        rp_strlcpy(op->name, name, sizeof(op->name));
    snprintf(op->audit_kind, sizeof(op->audit_kind), "change");
    /* Linked at once so that loop stop releases it whatever state it is in. */
    op->prev = &tl->ops;
    op->next = tl->ops.next;
    tl->ops.next->prev = op;
    tl->ops.next = op;
    return op;
}

static void op_answer(rp__kv_op *op, int status)
{
    rp_req *req = op->req;

    if (req != NULL) {
        if (status == 0 && op->reply != NULL) {
            rp_resp_json(req, op->status, op->reply);
            op->reply = NULL;
        } else if (status == 0) {
            rp_resp_send(req, op->status, NULL, NULL, 0);
        } else if (op->kind == 0) {
            /* The management API's own error format. */
            if (status == RP_ENOENT)
                rp_resp_error(req, 404, "NotFound", "no such vault");
            else if (status == RP_EEXIST || status == RP_ECONFLICT)
                rp_resp_error(req, 409, "Conflict",
                              op->reason ? op->reason : "the vault exists already");
            else if (status == RP_EPERM)
                rp_resp_error(req, 403, "Forbidden", op->reason ? op->reason : "not permitted");
            else
                rp_resp_error(req, 500, "InternalError",
                              "the change could not be stored or audited");
        } else if (status == RP_ENOENT) {
            int secret = op->kind == RP__KV_SECRET;
            rp__kv_error(req, 404, secret ? "SecretNotFound" : "KeyNotFound", NULL,
                         "A %s with (name/id) %s was not found in this key vault.",
                         secret ? "secret" : "key", op->name);
        } else if (status == RP_ECONFLICT) {
            rp__kv_error(req, 409, "Conflict",
                         op->reason ? op->reason : "ObjectIsDeletedButRecoverable",
                         "%s %s is currently in a deleted but recoverable state, and its name "
                         "cannot be reused; in this state, the %s can only be recovered or "
                         "purged.",
                         op->kind == RP__KV_SECRET ? "Secret" : "Key", op->name,
                         op->kind == RP__KV_SECRET ? "secret" : "key");
        } else if (status == RP_EEXIST) {
            rp__kv_error(req, 409, "Conflict", NULL, "%s %s already exists in this key vault.",
                         op->kind == RP__KV_SECRET ? "Secret" : "Key", op->name);
        } else if (status == RP_EPERM && op->reason != NULL) {
            rp__kv_error(req, 403, "Forbidden", NULL, "%s", op->reason);
        } else {
            rp__kv_fail(req, status, op->reason);
        }
    }
    rp__kv_op_free(op);
}

static void op_audited(int status, void *arg)
{
    /* Fail closed: nothing is reported done (or shown) unless its record is on disk. */
    op_answer(arg, status == 0 ? 0 : RP_EIO);
}

static void op_audit(rp__kv_op *op, int status)
{
    json_t *detail =
        json_pack("{s:s,s:s?}", "vault", op->vault.name, "name", op->name[0] ? op->name : NULL);
    int durable = status == 0 && op->audit_durable;
    int rc;

    if (detail != NULL && op->version[0])
        json_object_set_new(detail, "version", json_string(op->version));
    if (detail != NULL && status != 0)
        json_object_set_new(detail, "error", json_string(rp_strerror(status)));
    if (detail != NULL && op->has_grant) {
        json_object_set_new(detail, "authorization", json_string("allowed"));
        json_object_set_new(detail, "role", json_string(op->grant.role));
        json_object_set_new(detail, "at", json_string(op->grant.at));
        json_object_set_new(detail, "via", json_string(op->who.via ? op->who.via : ""));
    }
    rc = rp_iam_audit(op->v->iam, op->req, &op->who, op->audit_kind, op->action, op->scope,
                      status == 0 ? "success" : "failure", detail, durable ? RP_AUDIT_DURABLE : 0,
                      durable ? op_audited : NULL, op);
    json_decref(detail);
    if (durable) {
        if (rc != 0)
            op_answer(op, RP_EIO);
        return; /* op_audited answers */
    }
    op_answer(op, status);
}

static int op_write(sqlite3 *db, void *arg)
{
    rp__kv_op *op = arg;
    int rc = op->write(db, op);

    if (rc != 0 && op->err == 0)
        op->err = rc;
    return rc;
}

/*
 * A key changed (disabled, deleted, recovered, purged, rotated ...). If it protects a vault (a
 * customer-managed key), the keyring forgets the KEKs it unwrapped and every loop drops its
 * parsed keys, so revoking the key takes effect at once. Key ids are compared in lower case:
 * names are case-insensitive.
 */
static void key_changed(rp__kv_op *op)
{
    char base[RP_VAULT_NAME_MAX + RP__KV_NAME_MAX + 8];
    sqlite3_stmt *st;
    size_t n;
    int used = 1;

    n = (size_t)snprintf(base, sizeof(base), "%s/keys/%s", op->vault.name, op->name);
    for (char *p = base; *p; p++)
        *p = rp_lower(*p);
    st = rp__kv_stmt(11, "SELECT 1 FROM vaults WHERE cmk = ?1 OR (substr(cmk, 1, ?2) = ?1 AND"
                         " substr(cmk, ?2 + 1, 1) = '/') LIMIT 1");
    if (st != NULL) {
        sqlite3_bind_text(st, 1, base, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, (int)n);
        used = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_reset(st);
    }
    /* Unknown (no statement): assume it is used; forgetting too much only costs time. */
    if (!used)
        return;
    rp_keyring_cmk_changed(op->v->kr, base);
    atomic_fetch_add(&kv_key_epoch, 1);
}

static void op_written(int status, void *arg)
{
    rp__kv_op *op = arg;

    op->in_store = 0;
    if (status != 0 && op->err != 0)
        status = op->err;
    /* Only a write changes what the caches hold; a read's audit record (no write) must not
     * throw every loop's cache away. */
    if (status == 0 && op->write != NULL) {
        atomic_fetch_add(&kv_data_gen, 1);
        if (op->kind == RP__KV_KEY && op->name[0])
            key_changed(op);
    }
    if (op->done != NULL)
        op->done(op, status);
    if (status == 0 && op->reply == NULL && op->status != 204) {
        op_answer(op, RP_ENOMEM);
        return;
    }
    op_audit(op, status);
}

void rp__kv_op_submit(rp__kv_op *op)
{
    int rc;

    if (op->write == NULL) {
        op_written(0, op);
        return;
    }
    op->in_store = 1;
    rc = rp_store_submit(tl->sport, op_write, op, op_written);
    if (rc != 0) {
        op->in_store = 0;
        op_answer(op, rc == RP_ECLOSED ? RP_ECLOSED : rc);
    }
}

void rp__kv_send_audited(rp__kv_call *c, const char *action, const char *scope, const char *name,
                         json_t *reply)
{
    rp__kv_send_audited_grant(c, action, scope, name, reply, NULL);
}

void rp__kv_send_audited_grant(rp__kv_call *c, const char *action, const char *scope,
                               const char *name, json_t *reply, const rp_authz_grant *grant)
{
    rp__kv_op *op = scope ? rp__kv_op_new(c, action, scope, RP__KV_SECRET, name) : NULL;

    if (op == NULL) {
        json_decref(reply);
        rp__kv_oom(c->req);
        return;
    }
    op->reply = reply;
    op->audit_durable = 1;
    if (grant != NULL) {
        op->has_grant = 1;
        op->grant = *grant;
    }
    snprintf(op->audit_kind, sizeof(op->audit_kind), "read");
    rp__kv_op_submit(op);
}

/* ---------------------------------------------------------------- reads */

void rp__kv_row_read(rp_arena *a, sqlite3_stmt *st, rp__kv_row *r)
{
#define TXT(i)                                                                                     \
    (sqlite3_column_type(st, i) == SQLITE_NULL                                                     \
         ? NULL                                                                                    \
         : rp_arena_strndup(a, (const char *)sqlite3_column_text(st, i),                           \
                            (size_t)sqlite3_column_bytes(st, i)))
    memset(r, 0, sizeof(*r));
    r->name = TXT(0);
    r->version = TXT(1);
    r->created = sqlite3_column_int64(st, 2);
    r->updated = sqlite3_column_int64(st, 3);
    r->nbf = sqlite3_column_int64(st, 4);
    r->exp = sqlite3_column_int64(st, 5);
    r->enabled = sqlite3_column_int(st, 6);
    r->content_type = TXT(7);
    r->tags = TXT(8);
    r->meta = TXT(9);
    r->wdek_len = (size_t)sqlite3_column_bytes(st, 10);
    r->wdek = rp_arena_alloc(a, r->wdek_len + 1);
    if (r->wdek != NULL && r->wdek_len > 0)
        memcpy((void *)r->wdek, sqlite3_column_blob(st, 10), r->wdek_len);
    r->ct_len = (size_t)sqlite3_column_bytes(st, 11);
    r->ct = rp_arena_alloc(a, r->ct_len + 1);
    if (r->ct != NULL && r->ct_len > 0)
        memcpy((void *)r->ct, sqlite3_column_blob(st, 11), r->ct_len);
    r->deleted_at = sqlite3_column_int64(st, 12);
    r->purge_at = sqlite3_column_int64(st, 13);
#undef TXT
}

/* Deep copy of a row's strings and blobs, after key, into one block (cache) or an arena. */
static size_t row_size(const rp__kv_row *r)
{
#define SZ(s) ((s) ? strlen(s) + 1 : 0)
    return SZ(r->name) + SZ(r->version) + SZ(r->content_type) + SZ(r->tags) + SZ(r->meta) +
           r->wdek_len + r->ct_len + 2;
#undef SZ
}

static void row_copy(const rp__kv_row *src, rp__kv_row *dst, char *p)
{
#define CP(f)                                                                                      \
    do {                                                                                           \
        if (src->f) {                                                                              \
            size_t n_ = strlen(src->f) + 1;                                                        \
            memcpy(p, src->f, n_);                                                                 \
            dst->f = p;                                                                            \
            p += n_;                                                                               \
        } else {                                                                                   \
            dst->f = NULL;                                                                         \
        }                                                                                          \
    } while (0)
    *dst = *src;
    CP(name);
    CP(version);
    CP(content_type);
    CP(tags);
    CP(meta);
#undef CP
    memcpy(p, src->wdek, src->wdek_len);
    dst->wdek = p;
    p += src->wdek_len + 1;
    memcpy(p, src->ct, src->ct_len);
    dst->ct = p;
}

static unsigned row_slot(const char *key, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
    return (unsigned)(h % KV_ROW_CACHE);
}

int rp__kv_get(rp__kv_call *c, int kind, const char *name, const char *version, rp__kv_row *row)
{
    sqlite3_stmt *st;
    int latest = version == NULL || version[0] == '\0';
    char key[RP_VAULT_NAME_MAX + RP__KV_NAME_MAX + RP__KV_VERSION_LEN + 16];
    uint64_t gen = atomic_load(&kv_data_gen);
    size_t kn;
    unsigned slot;
    int rc;

    kn = (size_t)snprintf(key, sizeof(key), "%s\1%d\1%s\1%s", c->vault.name, kind, name,
                          latest ? "" : version);
    for (char *p = key + strlen(c->vault.name) + 3; *p && *p != '\1'; p++)
        *p = rp_lower(*p);
    slot = row_slot(key, kn);
    if (tl != NULL && kn < sizeof(key) && tl->rows[slot].gen == gen && tl->rows[slot].key &&
        strcmp(tl->rows[slot].key, key) == 0) {
        const rp__kv_row *hit = &tl->rows[slot].row;
        char *p = rp_arena_alloc(c->req->arena, row_size(hit));
        if (p == NULL)
            return RP_ENOMEM;
        row_copy(hit, row, p);
        return 0;
    }

    st = latest ? rp__kv_stmt(0, "SELECT " RP__KV_ROW_COLUMNS RP__KV_ROW_JOIN
                                 " WHERE v.vault = ?1 AND v.kind = ?2 AND v.name = ?3"
                                 " ORDER BY v.seq DESC LIMIT 1")
                : rp__kv_stmt(1, "SELECT " RP__KV_ROW_COLUMNS RP__KV_ROW_JOIN
                                 " WHERE v.vault = ?1 AND v.kind = ?2 AND v.name = ?3"
                                 " AND v.version = ?4");
    if (st == NULL)
        return RP_EDB;
    sqlite3_bind_text(st, 1, c->vault.name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, kind);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    if (!latest)
        sqlite3_bind_text(st, 4, version, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return RP_ENOENT;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return RP_EDB;
    }
    rp__kv_row_read(c->req->arena, st, row);
    sqlite3_reset(st);
    if (row->name == NULL || row->version == NULL || row->wdek == NULL || row->ct == NULL)
        return RP_ENOMEM;
    /* Keep it for the next reader of this loop (a failed allocation only skips the cache). */
    if (tl != NULL && kn < sizeof(key)) {
        char *blk = rp_malloc(kn + 1 + row_size(row));
        if (blk != NULL) {
            rp_free(tl->rows[slot].key);
            memcpy(blk, key, kn + 1);
            row_copy(row, &tl->rows[slot].row, blk + kn + 1);
            tl->rows[slot].key = blk;
            tl->rows[slot].gen = gen;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- JSON helpers */

const char *rp__kv_id(rp__kv_call *c, const char *collection, const char *name, const char *version)
{
    size_t n =
        strlen(c->base) + strlen(collection) + strlen(name) + (version ? strlen(version) : 0) + 4;
    char *p = rp_arena_alloc(c->req->arena, n);

    if (p == NULL)
        return NULL;
    if (version != NULL && version[0])
        snprintf(p, n, "%s/%s/%s/%s", c->base, collection, name, version);
    else
        snprintf(p, n, "%s/%s/%s", c->base, collection, name);
    return p;
}

const char *rp__kv_recovery_level(const rp__kv_vault *v)
{
    if (v->retention_days < RP_VAULT_RETENTION_DEFAULT)
        return v->purge_protection ? "CustomizedRecoverable" : "CustomizedRecoverable+Purgeable";
    return v->purge_protection ? "Recoverable" : "Recoverable+Purgeable";
}

json_t *rp__kv_attributes(const rp__kv_vault *v, const rp__kv_row *r)
{
    json_t *a =
        json_pack("{s:b,s:I,s:I,s:s,s:i}", "enabled", r->enabled, "created", (json_int_t)r->created,
                  "updated", (json_int_t)r->updated, "recoveryLevel", rp__kv_recovery_level(v),
                  "recoverableDays", v->retention_days);

    if (a == NULL)
        return NULL;
    if (r->nbf > 0)
        json_object_set_new(a, "nbf", json_integer(r->nbf));
    if (r->exp > 0)
        json_object_set_new(a, "exp", json_integer(r->exp));
    return a;
}

int rp__kv_page_size(rp__kv_call *c)
{
    const char *m = rp_req_query(c->req, "maxresults");
    uint64_t n;

    if (m == NULL)
        return RP__KV_PAGE_DEFAULT;
    if (rp_parse_u64(m, strlen(m), RP__KV_PAGE_MAX, &n) != 0 || n == 0) {
        rp__kv_error(c->req, 400, "BadParameter", NULL,
                     "maxresults must be an integer between 1 and %d.", RP__KV_PAGE_MAX);
        return -1;
    }
    return (int)n;
}

/* ---------------------------------------------------------------- authorization */

const char *rp__kv_scope(rp__kv_call *c, const char *collection, const char *name)
{
    size_t n = strlen(c->vault.resource) + strlen(collection) + (name ? strlen(name) : 0) + 3;
    char *p = rp_arena_alloc(c->req->arena, n);
    size_t i;

    if (p == NULL)
        return NULL;
    if (name != NULL)
        snprintf(p, n, "%s/%s/%s", c->vault.resource, collection, name);
    else
        snprintf(p, n, "%s", c->vault.resource);
    /* Object names are case-insensitive: so are their scopes. */
    for (i = strlen(c->vault.resource); p[i]; i++)
        p[i] = rp_lower(p[i]);
    return p;
}

int rp__kv_allow_deferred(rp__kv_call *c, const char *action, const char *scope,
                          rp_authz_grant *grant)
{
    if (scope == NULL) {
        rp__kv_oom(c->req);
        return 0;
    }
    if (rp_authz_deferred(c->v->iam, c->req, &c->who, action, 1, scope, grant))
        return 1;
    rp__kv_error(c->req, 403, "Forbidden", "ForbiddenByRbac",
                 "Caller is not authorized to perform action on resource. Caller: %s; Action: "
                 "'%s'; Resource: '%s'",
                 c->who.id, action, scope);
    return 0;
}

int rp__kv_allow(rp__kv_call *c, const char *action, const char *scope)
{
    if (scope == NULL) {
        rp__kv_oom(c->req);
        return 0;
    }
    if (rp_authz(c->v->iam, c->req, &c->who, action, 1, scope))
        return 1;
    rp__kv_error(c->req, 403, "Forbidden", "ForbiddenByRbac",
                 "Caller is not authorized to perform action on resource. Caller: %s; Action: "
                 "'%s'; Resource: '%s'",
                 c->who.id, action, scope);
    return 0;
}

/* ---------------------------------------------------------------- data plane */

static void challenge(rp_vault *v, rp_req *req, const char *error)
{
    char h[1024];

    /* Space-separated parameters, values without spaces, authorization = exactly one path
     * segment (the tenant): the SDK's parser depends on all three. */
    snprintf(h, sizeof(h), "Bearer authorization=\"%s/%s\", resource=\"https://vault.%s\"%s%s%s",
             rp_iam_login(v->iam), rp_iam_tenant(v->iam), v->domain, error ? ", error=\"" : "",
             error ? error : "", error ? "\"" : "");
    rp_resp_header(req, "WWW-Authenticate", h);
}

static int vault_lookup(rp__kv_call *c, const char *name)
{
    sqlite3_stmt *st;
    uint64_t gen = atomic_load(&kv_data_gen);
    int rc;

    for (int i = 0; tl != NULL && i < KV_VAULT_CACHE; i++) {
        if (tl->vaults[i].gen == gen && strcmp(tl->vaults[i].vault.name, name) == 0) {
            c->vault = tl->vaults[i].vault;
            return 0;
        }
    }
    st = rp__kv_stmt(2, "SELECT name, purge_protection, retention_days FROM vaults WHERE"
                        " name = ?1");
    if (st == NULL)
        return RP_EDB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? RP_ENOENT : RP_EDB;
    }
    rp_strlcpy(c->vault.name, (const char *)sqlite3_column_text(st, 0), sizeof(c->vault.name));
    c->vault.purge_protection = sqlite3_column_int(st, 1);
    c->vault.retention_days = sqlite3_column_int(st, 2);
    snprintf(c->vault.resource, sizeof(c->vault.resource), "/vaults/%s", c->vault.name);
    sqlite3_reset(st);
    if (tl != NULL) {
        unsigned i = tl->next_vault++ % KV_VAULT_CACHE;
        tl->vaults[i].vault = c->vault;
        tl->vaults[i].gen = gen;
    }
    return 0;
}

static void dispatch(rp__kv_call *c)
{
    const char *col = c->seg[0];

    if (strcmp(col, "secrets") == 0 || strcmp(col, "deletedsecrets") == 0)
        rp__kv_secrets(c);
    else if (strcmp(col, "keys") == 0 || strcmp(col, "deletedkeys") == 0)
        rp__kv_keys(c);
    else
        rp__kv_error(c->req, 404, "NotFound", NULL, "The requested path does not exist.");
}

static void on_body(rp_req *req)
{
    rp__kv_call *c = req->handler_data;

    req->handler_data = NULL;
    c->body = req->body.data != NULL ? req->body.data : "";
    c->body_len = req->body.len;
    dispatch(c);
    /* Handlers parse synchronously into their arenas; the raw bytes may hold a secret value or
     * key material and are not needed any more. */
    if (req->body.data != NULL)
        OPENSSL_cleanse(req->body.data, req->body.len);
}

static void data_plane(rp_req *req)
{
    rp_vault *v = req->route_data;
    rp__kv_call *c;
    rp_authn_status st;
    rp_authn_policy pol = {RP_AUTHN_BEARER | RP_AUTHN_ADMIN, "vault"};
    char name[RP_VAULT_NAME_MAX + 1];
    char *path, *p;
    int rc;

    if (rp_req_header(req, "authorization").p == NULL) {
        challenge(v, req, NULL);
        rp__kv_error(req, 401, "Unauthorized", NULL,
                     "AKV10000: Request is missing a Bearer or PoP token.");
        return;
    }
    c = rp_arena_calloc(req->arena, sizeof(*c));
    if (c == NULL) {
        rp__kv_oom(req);
        return;
    }
    c->v = v;
    c->req = req;
    st = rp_authn(v->iam, req, &pol, &c->who);
    if (st != RP_AUTHN_OK) {
        challenge(v, req, "invalid_token");
        rp__kv_error(req, 401, "Unauthorized", NULL, "AKV10022: Invalid audience or token (%s).",
                     rp_authn_status_name(st));
        return;
    }
    if (req->host_label.n == 0 || req->host_label.n > RP_VAULT_NAME_MAX) {
        rp__kv_error(req, 404, "VaultNotFound", NULL, "No such vault.");
        return;
    }
    memcpy(name, req->host_label.p, req->host_label.n);
    name[req->host_label.n] = '\0';
    rc = vault_lookup(c, name);
    if (rc != 0) {
        if (rc == RP_ENOENT)
            rp__kv_error(req, 404, "VaultNotFound", NULL, "The vault %s does not exist.", name);
        else
            rp__kv_fail(req, rc, NULL);
        return;
    }
    {
        size_t n = strlen(v->domain) + strlen(name) + 40;
        char *b = rp_arena_alloc(req->arena, n);
        if (b == NULL) {
            rp__kv_oom(req);
            return;
        }
        if (v->port == 443 || v->port == 0)
            snprintf(b, n, "https://%s.vault.%s", name, v->domain);
        else
            snprintf(b, n, "https://%s.vault.%s:%d", name, v->domain, v->port);
        c->base = b;
    }
    /* Segments after the leading '/', empty ones kept ("/keys/k//decrypt"). */
    path = rp_arena_strndup(req->arena, req->path + 1, req->path_len ? req->path_len - 1 : 0);
    if (path == NULL) {
        rp__kv_oom(req);
        return;
    }
    for (p = path;;) {
        char *slash = strchr(p, '/');
        if (c->nseg == (int)(sizeof(c->seg) / sizeof(c->seg[0]))) {
            rp__kv_error(req, 404, "NotFound", NULL, "The requested path does not exist.");
            return;
        }
        c->seg[c->nseg++] = p;
        if (slash == NULL)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    if (req->method == RP_METHOD_PUT || req->method == RP_METHOD_POST ||
        req->method == RP_METHOD_PATCH) {
        req->handler_data = c;
        rp_req_read_body(req, on_body);
        return;
    }
    dispatch(c);
}

/* ---------------------------------------------------------------- management: /api/vaults */

typedef struct vault_new {
    int purge_protection, retention_days;
    int update;           /* 1: the vault existed */
    int has_pp, has_days; /* the body named them */
    int set_cmk; /* 1: change the customer-managed key to cmk ("" = back to the root key) */
    char cmk[RP_KEYRING_KID_MAX];
    char id[37];
    int64_t now;
} vault_new;

static json_t *vault_json(rp_vault *v, const char *name, int pp, int days, int64_t created,
                          const char *cmk)
{
    char uri[400], id[64];
    json_t *o;

    if (v->port == 443 || v->port == 0)
        snprintf(uri, sizeof(uri), "https://%s.vault.%s/", name, v->domain);
    else
        snprintf(uri, sizeof(uri), "https://%s.vault.%s:%d/", name, v->domain, v->port);
    snprintf(id, sizeof(id), "/vaults/%s", name);
    o = json_pack("{s:s,s:s,s:{s:s,s:b,s:b,s:b,s:i,s:I,s:{s:s}}}", "name", name, "id", id,
                  "properties", "vaultUri", uri, "enableSoftDelete", 1, "enableRbacAuthorization",
                  1, "enablePurgeProtection", pp, "softDeleteRetentionInDays", days, "createdAt",
                  (json_int_t)created, "encryption", "keySource",
                  cmk && cmk[0] ? "Microsoft.Keyvault" : "Microsoft.Rampart");
    if (o != NULL && cmk && cmk[0])
        json_object_set_new(json_object_get(json_object_get(o, "properties"), "encryption"),
                            "keyId", json_string(cmk));
    return o;
}

/*
 * Puts the vault's KEK under the customer key n->cmk (or back under the root key): the keyring
 * re-wraps the KEK, nothing else changes. Refused when another vault's key material is
 * protected by a key in this vault (no chains: a key's vault is never itself CMK-protected).
 * Runs inside the vault write, after the row exists.
 */
static int cmk_apply(sqlite3 *db, rp__kv_op *op, vault_new *n)
{
    sqlite3_stmt *st = NULL;
    char prefix[RP__KV_NAME_MAX + 8];
    int rc, users = 0;

    if (!n->set_cmk)
        return 0;
    if (n->cmk[0]) {
        /* Re-checked here, serialised with every other vault write: the key's vault must not
         * have become customer-key protected since the request was checked. */
        char kvault[RP_VAULT_NAME_MAX + 1], kname[RP__KV_NAME_MAX + 1],
            kver[RP__KV_VERSION_LEN + 1];
        int chained = 0;
        if (rp__kv_cmk_parse(n->cmk, kvault, kname, kver) != 0)
            return RP_EINVAL;
        if (sqlite3_prepare_v2(db, "SELECT cmk != '' FROM vaults WHERE name = ?1", -1, &st, NULL) !=
            SQLITE_OK)
            return RP_EDB;
        sqlite3_bind_text(st, 1, kvault, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            chained = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        st = NULL;
        if (chained) {
            op->reason = "the key's vault is itself protected by a customer-managed key; "
                         "customer-managed keys do not chain";
            return RP_ECONFLICT;
        }
        snprintf(prefix, sizeof(prefix), "%s/keys/", op->name);
        if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM vaults WHERE substr(cmk, 1, ?2) = ?1", -1,
                               &st, NULL) != SQLITE_OK)
            return RP_EDB;
        sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, (int)strlen(prefix));
        if (sqlite3_step(st) == SQLITE_ROW)
            users = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        st = NULL;
        if (users > 0) {
            op->reason = "a key in this vault protects another vault; customer-managed keys do "
                         "not chain";
            return RP_ECONFLICT;
        }
    }
    rc = rp_keyring_set_cmk(op->v->kr, op->vault.resource, n->cmk[0] ? n->cmk : NULL, &op->reason);
    if (rc != 0)
        return rc;
    if (sqlite3_prepare_v2(db, "UPDATE vaults SET cmk = ?2 WHERE name = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return RP_EDB;
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, n->cmk, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : RP_EDB;
    sqlite3_finalize(st);
    return rc;
}

static int vault_create_write(sqlite3 *db, rp__kv_op *op)
{
    vault_new *n = op->data;
    sqlite3_stmt *st = NULL;
    int rc = RP_EDB, step;

    if (sqlite3_prepare_v2(db,
                           "SELECT purge_protection, retention_days, created_at, cmk FROM"
                           " vaults WHERE name = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return RP_EDB;
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        int pp = sqlite3_column_int(st, 0), days = sqlite3_column_int(st, 1);
        /* Members left out keep their values; the answer shows the vault as it now is. */
        n->now = sqlite3_column_int64(st, 2);
        if (!n->set_cmk)
            rp_strlcpy(n->cmk, (const char *)sqlite3_column_text(st, 3), sizeof(n->cmk));
        sqlite3_finalize(st);
        st = NULL;
        if (n->has_days && days != n->retention_days) {
            op->reason = "softDeleteRetentionInDays is set at creation and cannot change";
            return RP_ECONFLICT;
        }
        if (n->has_pp && pp && !n->purge_protection) {
            op->reason = "purge protection cannot be disabled once enabled";
            return RP_ECONFLICT;
        }
        n->retention_days = days;
        if (!n->has_pp)
            n->purge_protection = pp;
        n->update = 1;
        if (pp != n->purge_protection) {
            if (sqlite3_prepare_v2(db, "UPDATE vaults SET purge_protection = 1 WHERE name = ?1", -1,
                                   &st, NULL) != SQLITE_OK)
                return RP_EDB;
            sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
            rc = sqlite3_step(st) == SQLITE_DONE ? 0 : RP_EDB;
            sqlite3_finalize(st);
            if (rc != 0)
                return rc;
        }
        return cmk_apply(db, op, n);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (step != SQLITE_DONE)
        return RP_EDB;
    /* The KEK first: a vault row without one could not store anything. An orphan KEK left
     * by a failing insert is harmless (it wraps nothing). */
    /* A KEK left by a vault of the same name (a crash between its deletion and the shredding)
     * must never open anything again: a new vault always gets a new KEK. */
    rc = rp_keyring_kek_drop(op->v->kr, op->vault.resource);
    if (rc != 0 && rc != RP_ENOENT)
        return rc;
    rc = rp_keyring_kek_ensure(op->v->kr, op->vault.resource);
    if (rc != 0)
        return rc;
    rc = RP_EDB;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO vaults (name, id, purge_protection, retention_days,"
                           " created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &st, NULL) != SQLITE_OK)
        return RP_EDB;
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, n->id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, n->purge_protection);
    sqlite3_bind_int(st, 4, n->retention_days);
    sqlite3_bind_text(st, 5, op->who.id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, n->now);
    if (sqlite3_step(st) == SQLITE_DONE)
        rc = 0;
    sqlite3_finalize(st);
    return rc == 0 ? cmk_apply(db, op, n) : rc;
}

static void vault_create_done(rp__kv_op *op, int status)
{
    vault_new *n = op->data;

    if (status != 0)
        return;
    op->status = n->update ? 200 : 201;
    op->reply = vault_json(op->v, op->name, n->purge_protection, n->retention_days, n->now, n->cmk);
}

static int vault_delete_write(sqlite3 *db, rp__kv_op *op)
{
    static const char *const sql[] = {
        "DELETE FROM obj.blobs WHERE id >= 'kv/' || ?1 || '/' AND id < 'kv/' || ?1 || '0'",
        "DELETE FROM kv_objects WHERE vault = ?1",
        "DELETE FROM vaults WHERE name = ?1",
    };
    sqlite3_stmt *st = NULL;
    int rc, pp = 0, objects = 0, found = 0;

    if (sqlite3_prepare_v2(db,
                           "SELECT purge_protection, (SELECT COUNT(*) FROM kv_objects WHERE"
                           " vault = ?1) FROM vaults WHERE name = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return RP_EDB;
    sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        found = 1;
        pp = sqlite3_column_int(st, 0);
        objects = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    if (!found)
        return RP_ENOENT;
    if (pp && objects > 0) {
        op->reason = "the vault has purge protection and still holds secrets or keys";
        return RP_ECONFLICT;
    }
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        st = NULL;
        if (sqlite3_prepare_v2(db, sql[i], -1, &st, NULL) != SQLITE_OK)
            return RP_EDB;
        sqlite3_bind_text(st, 1, op->name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return RP_EDB;
    }
    return 0;
}

/* After the commit: crypto-shred, so whatever a lost copy of the database still holds becomes
 * unreadable. (Before the commit, a failed transaction would leave a vault without its KEK.) */
static void vault_delete_done(rp__kv_op *op, int status)
{
    int rc;

    if (status != 0)
        return;
    rc = rp_keyring_kek_drop(op->v->kr, op->vault.resource);
    if (rc != 0 && rc != RP_ENOENT)
        rp_log_err("vault.delete", "the deleted vault's KEK could not be destroyed", rc);
}

static void mgmt_list(rp__kv_call *c)
{
    sqlite3_stmt *st = rp__kv_stmt(3, "SELECT name, id, purge_protection, retention_days,"
                                      " created_at, cmk FROM vaults ORDER BY name");
    json_t *arr = json_array();
    int rc;

    if (st == NULL || arr == NULL) {
        json_decref(arr);
        rp__kv_fail(c->req, st == NULL ? RP_EDB : RP_ENOMEM, NULL);
        return;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        char scope[64];
        snprintf(scope, sizeof(scope), "/vaults/%s", name);
        /* Only what the caller may read (each decision is audited like any other). */
        if (!rp_authz(c->v->iam, c->req, &c->who, "Microsoft.KeyVault/vaults/read", 0, scope))
            continue;
        json_array_append_new(
            arr, vault_json(c->v, name, sqlite3_column_int(st, 2), sqlite3_column_int(st, 3),
                            sqlite3_column_int64(st, 4), (const char *)sqlite3_column_text(st, 5)));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        rp__kv_fail(c->req, RP_EDB, NULL);
        return;
    }
    rp_resp_json(c->req, 200, json_pack("{s:o}", "value", arr));
}

static void mgmt_body(rp_req *req);

static void mgmt(rp_req *req)
{
    rp_vault *v = req->route_data;
    rp_authn_policy pol = {RP_AUTHN_ADMIN | RP_AUTHN_BEARER | RP_AUTHN_CLIENT_CERT, "management"};
    rp__kv_call *c = rp_arena_calloc(req->arena, sizeof(*c));
    const char *name;
    rp_authn_status st;

    if (c == NULL) {
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    c->v = v;
    c->req = req;
    st = rp_authn(v->iam, req, &pol, &c->who);
    if (st != RP_AUTHN_OK) {
        rp_authn_reply(req, st);
        return;
    }
    if (strcmp(req->path, "/api/vaults") == 0 || strcmp(req->path, "/api/vaults/") == 0) {
        if (req->method != RP_METHOD_GET && req->method != RP_METHOD_HEAD) {
            rp_resp_header(req, "Allow", "GET, HEAD");
            rp_resp_error(req, 405, "MethodNotAllowed", "use GET on the collection");
            return;
        }
        mgmt_list(c);
        return;
    }
    name = req->path + strlen("/api/vaults/");
    if (!rp_vault_name_valid(name)) {
        rp_resp_error(req, 400, "InvalidName",
                      "a vault name is 3-24 characters of a-z, 0-9 and '-', starts with a "
                      "letter, ends with a letter or digit and has no '--'");
        return;
    }
    rp_strlcpy(c->vault.name, name, sizeof(c->vault.name));
    snprintf(c->vault.resource, sizeof(c->vault.resource), "/vaults/%s", name);
    if (req->method == RP_METHOD_GET || req->method == RP_METHOD_HEAD) {
        sqlite3_stmt *q;
        if (!rp_authz(v->iam, req, &c->who, "Microsoft.KeyVault/vaults/read", 0,
                      c->vault.resource)) {
            rp_authz_reply(req, &c->who, "Microsoft.KeyVault/vaults/read", c->vault.resource);
            return;
        }
        q = rp__kv_stmt(4, "SELECT name, id, purge_protection, retention_days, created_at, cmk"
                           " FROM vaults WHERE name = ?1");
        if (q == NULL) {
            rp_resp_error(req, 500, "InternalError", "the store cannot be read");
            return;
        }
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_ROW) {
            sqlite3_reset(q);
            rp_resp_error(req, 404, "NotFound", "no such vault");
            return;
        }
        rp_resp_json(req, 200,
                     vault_json(v, name, sqlite3_column_int(q, 2), sqlite3_column_int(q, 3),
                                sqlite3_column_int64(q, 4),
                                (const char *)sqlite3_column_text(q, 5)));
        sqlite3_reset(q);
        return;
    }
    if (req->method == RP_METHOD_PUT) {
        if (!rp_authz(v->iam, req, &c->who, "Microsoft.KeyVault/vaults/write", 0,
                      c->vault.resource)) {
            rp_authz_reply(req, &c->who, "Microsoft.KeyVault/vaults/write", c->vault.resource);
            return;
        }
        req->handler_data = c;
        rp_req_read_body(req, mgmt_body);
        return;
    }
    if (req->method == RP_METHOD_DELETE) {
        rp__kv_op *op;
        if (!rp_authz(v->iam, req, &c->who, "Microsoft.KeyVault/vaults/delete", 0,
                      c->vault.resource)) {
            rp_authz_reply(req, &c->who, "Microsoft.KeyVault/vaults/delete", c->vault.resource);
            return;
        }
        op = rp__kv_op_new(c, "Microsoft.KeyVault/vaults/delete", c->vault.resource, 0, name);
        if (op == NULL) {
            rp_resp_error(req, 500, "InternalError", "out of memory");
            return;
        }
        op->write = vault_delete_write;
        op->done = vault_delete_done;
        op->status = 204;
        op->audit_durable = 1;
        rp__kv_op_submit(op);
        return;
    }
    rp_resp_header(req, "Allow", "GET, HEAD, PUT, DELETE");
    rp_resp_error(req, 405, "MethodNotAllowed", "use GET, PUT or DELETE");
}

/*
 * Validates "customerManagedKey" (a key id or null) on the loop: the key's vault exists, has
 * purge protection and is not itself CMK-protected, is another vault, and the caller may wrap
 * and unwrap with the key. Answers and returns 0 when refused.
 */
static int cmk_check(rp__kv_call *c, json_t *x, vault_new *n)
{
    char vault[RP_VAULT_NAME_MAX + 1], name[RP__KV_NAME_MAX + 1], ver[RP__KV_VERSION_LEN + 1];
    char res[8 + RP_VAULT_NAME_MAX + 1], scope[400], other[RP_KEYRING_KID_MAX];
    sqlite3_stmt *q;
    int pp = -1;

    n->set_cmk = 1;
    if (json_is_null(x)) {
        n->cmk[0] = '\0';
        return 1;
    }
    if (!json_is_string(x) ||
        rp__kv_cmk_normalize(json_string_value(x), c->v->domain, n->cmk, sizeof(n->cmk)) != 0 ||
        rp__kv_cmk_parse(n->cmk, vault, name, ver) != 0) {
        rp_resp_error(c->req, 400, "InvalidParameter",
                      "customerManagedKey must be a key id: https://VAULT.vault.D/keys/NAME[/"
                      "VERSION] or VAULT/keys/NAME[/VERSION], or null");
        return 0;
    }
    if (strcmp(vault, c->vault.name) == 0) {
        rp_resp_error(c->req, 400, "InvalidParameter",
                      "a vault cannot be protected by one of its own keys");
        return 0;
    }
    q = rp__kv_stmt(9, "SELECT purge_protection FROM vaults WHERE name = ?1");
    if (q == NULL) {
        rp_resp_error(c->req, 500, "InternalError", "the store cannot be read");
        return 0;
    }
    sqlite3_bind_text(q, 1, vault, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW)
        pp = sqlite3_column_int(q, 0);
    sqlite3_reset(q);
    if (pp < 0) {
        rp_resp_error(c->req, 400, "InvalidParameter", "the key's vault does not exist");
        return 0;
    }
    if (pp == 0) {
        rp_resp_error(c->req, 400, "InvalidParameter",
                      "the key's vault must have purge protection (a purged key would destroy "
                      "the data it protects)");
        return 0;
    }
    snprintf(res, sizeof(res), "/vaults/%s", vault);
    if (rp_keyring_cmk_of(c->v->kr, res, other, sizeof(other)) == 0 && other[0]) {
        rp_resp_error(c->req, 400, "InvalidParameter",
                      "the key's vault is itself protected by a customer-managed key; "
                      "customer-managed keys do not chain");
        return 0;
    }
    snprintf(scope, sizeof(scope), "/vaults/%s/keys/%s", vault, name);
    for (char *p = scope; *p; p++)
        *p = rp_lower(*p);
    if (!rp_authz(c->v->iam, c->req, &c->who, "Microsoft.KeyVault/vaults/keys/wrap/action", 1,
                  scope) ||
        !rp_authz(c->v->iam, c->req, &c->who, "Microsoft.KeyVault/vaults/keys/unwrap/action", 1,
                  scope)) {
        rp_authz_reply(c->req, &c->who, "Microsoft.KeyVault/vaults/keys/unwrap/action", scope);
        return 0;
    }
    return 1;
}

static void mgmt_body(rp_req *req)
{
    rp__kv_call *c = req->handler_data;
    json_t *body = NULL, *x;
    json_error_t je;
    vault_new *n;
    rp__kv_op *op;

    req->handler_data = NULL;
    if (req->body.len > 0) {
        body = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(body)) {
            json_decref(body);
            rp_resp_error(req, 400, "InvalidJson", "the body is not a JSON object");
            return;
        }
    }
    op = rp__kv_op_new(c, "Microsoft.KeyVault/vaults/write", c->vault.resource, 0, c->vault.name);
    n = op ? rp_arena_calloc(op->arena, sizeof(*n)) : NULL;
    if (n == NULL) {
        rp__kv_op_free(op);
        json_decref(body);
        rp_resp_error(req, 500, "InternalError", "out of memory");
        return;
    }
    n->retention_days = RP_VAULT_RETENTION_DEFAULT;
    x = json_object_get(body, "purgeProtection");
    if (x != NULL && !json_is_boolean(x))
        goto bad;
    n->has_pp = x != NULL;
    n->purge_protection = json_is_true(x);
    x = json_object_get(body, "retentionDays");
    n->has_days = x != NULL;
    if (x != NULL) {
        if (!json_is_integer(x) || json_integer_value(x) < RP_VAULT_RETENTION_MIN ||
            json_integer_value(x) > RP_VAULT_RETENTION_MAX)
            goto bad;
        n->retention_days = (int)json_integer_value(x);
    }
    x = json_object_get(body, "customerManagedKey");
    if (x != NULL) {
        if (!cmk_check(c, x, n)) {
            json_decref(body);
            rp__kv_op_free(op);
            return;
        }
    }
    json_decref(body);
    if (rp_random_uuid(n->id) != 0) {
        rp__kv_op_free(op);
        rp_resp_error(req, 500, "InternalError", "no randomness");
        return;
    }
    n->now = rp__kv_now();
    op->data = n;
    op->write = vault_create_write;
    op->done = vault_create_done;
    op->audit_durable = 1;
    rp__kv_op_submit(op);
    return;
bad:
    json_decref(body);
    rp__kv_op_free(op);
    rp_resp_error(req, 400, "InvalidParameter",
                  "purgeProtection must be a boolean and retentionDays an integer from 7 to 90");
}

/* ---------------------------------------------------------------- service */

int rp_vault_register(rp_vault *v, rp_router *r)
{
    rp_route_opts data = {RP_M_ANY, KV_MAX_BODY, v};
    rp_route_opts m = {RP_M_READ | RP_M(RP_METHOD_PUT) | RP_M(RP_METHOD_DELETE), 4096, v};
    int rc = rp_router_add(r, "*.vault", "/", data_plane, &data);

    if (rc == 0)
        rc = rp_router_add(r, "@", "/api/vaults", mgmt, &m);
    return rc;
}

void rp_vault_set_port(rp_vault *v, int https_port)
{
    v->port = https_port;
}

/*
 * A crash inside a two-file commit can leave a version without its ciphertext or the other way
 * round (store.h); neither was ever acknowledged, so both are dropped. That window holds at most
 * one group of writes. Many more orphans mean something else - objects.db missing, replaced or
 * restored older than rampart.db - and deleting them would destroy the wrapped DEKs for good:
 * start-up refuses instead, unless the operator says so (RAMPART_VAULT_REPAIR=1).
 */
typedef struct repair {
    int force;
    int64_t orphans, blobs;
} repair;

static int64_t count(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t n = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static int repair_write(sqlite3 *db, void *arg)
{
    repair *r = arg;

    r->orphans = count(db, "SELECT COUNT(*) FROM kv_versions WHERE NOT EXISTS (SELECT 1 FROM"
                           " obj.blobs b WHERE b.id = 'kv/' || kv_versions.vault || '/' ||"
                           " kv_versions.version)");
    r->blobs = count(db, "SELECT COUNT(*) FROM obj.blobs WHERE id >= 'kv/' AND id < 'kv0'");
    if (r->orphans < 0 || r->blobs < 0)
        return RP_EDB;
    if (r->orphans > 0 && !r->force && (r->blobs == 0 || r->orphans > RP_STORE_BATCH_MAX))
        return RP_ECONFLICT;
    return rp_store_exec(db, "DELETE FROM kv_versions WHERE NOT EXISTS (SELECT 1 FROM obj.blobs"
                             " b WHERE b.id = 'kv/' || kv_versions.vault || '/' ||"
                             " kv_versions.version);"
                             "DELETE FROM obj.blobs WHERE id LIKE 'kv/%' AND NOT EXISTS (SELECT"
                             " 1 FROM kv_versions v WHERE 'kv/' || v.vault || '/' || v.version"
                             " = obj.blobs.id);"
                             "DELETE FROM kv_objects WHERE NOT EXISTS (SELECT 1 FROM kv_versions"
                             " v WHERE v.vault = kv_objects.vault AND v.kind = kv_objects.kind"
                             " AND v.name = kv_objects.name);");
}

int rp_vault_open(const rp_vault_opts *o, rp_vault **out, char *err, size_t errlen)
{
    rp_vault *v;
    int rc;

    *out = NULL;
    v = rp_calloc(1, sizeof(*v));
    if (v == NULL) {
        snprintf(err, errlen, "out of memory");
        return RP_ENOMEM;
    }
    rp_strlcpy(v->domain, o->domain, sizeof(v->domain));
    v->port = o->https_port;
    v->store = o->store;
    v->iam = o->iam;
    v->kr = o->keyring;
    if (o->hsm_module != NULL) {
        char herr[256];
        rc = rp_kvhsm_open(o->hsm_module, o->hsm_token ? o->hsm_token : "",
                           o->hsm_pin ? o->hsm_pin : "", &v->hsm, herr, sizeof(herr));
        if (rc != 0) {
            snprintf(err, errlen, "vault: HSM keys: %s", herr);
            rp_free(v);
            return rc;
        }
    }
    rp__kv_cmk_register(v);
    {
        const char *force = getenv("RAMPART_VAULT_REPAIR");
        repair rep = {force != NULL && strcmp(force, "1") == 0, 0, 0};
        rc = rp_store_write_sync(v->store, repair_write, &rep);
        if (rc == RP_ECONFLICT)
            snprintf(err, errlen,
                     "vault: %lld secret/key versions have no ciphertext in objects.db (%lld "
                     "blobs there): the ciphertext store is missing, replaced or older than "
                     "rampart.db. Nothing was changed. Restore objects.db, or start once with "
                     "RAMPART_VAULT_REPAIR=1 to drop those versions for good",
                     (long long)rep.orphans, (long long)rep.blobs);
        else if (rc == 0 && rep.orphans > 0)
            rp_log_msg(RP_LOG_WARN, "vault.repair",
                       "dropped versions half-written by a crash (never acknowledged)");
    }
    if (rc != 0) {
        rp_keyring_cmk_ops none = {NULL, NULL, NULL};
        if (rc != RP_ECONFLICT)
            snprintf(err, errlen, "vault: cannot check the stored objects: %s", rp_strerror(rc));
        rp_keyring_set_cmk_ops(v->kr, &none);
        rp_kvhsm_close(v->hsm);
        rp_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

void rp_vault_close(rp_vault *v)
{
    rp_keyring_cmk_ops none = {NULL, NULL, NULL};

    if (v == NULL)
        return;
    rp_keyring_set_cmk_ops(v->kr, &none);
    rp_kvhsm_close(v->hsm);
    rp_free(v);
}
