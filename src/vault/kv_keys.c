/*
 * kv_keys.c - the keys collection of a vault (docs/vault.md "Keys"): create (RSA 2048/3072/4096,
 * EC P-256/P-384/P-521/P-256K), import, get, list, versions, update, rotate, soft delete,
 * recover, purge, backup, restore, and the cryptographic operations encrypt, decrypt, wrapKey,
 * unwrapKey, sign and verify (shared/specs/azure-data-planes.md §2.4).
 *
 * A version's private key is stored as PKCS#8 sealed under its own DEK (kv_common.c); its public
 * half and settings are in the version's meta: {"kty","ops","exportable","jwk":{n,e|crv,x,y},
 * "release_policy"?}. Reads of the key answer from meta and never open the private key; an
 * operation opens it once per loop thread and keeps the parsed key (rp__kv_key_cached).
 * key_ops, enabled, nbf and exp are enforced: after exp a key still decrypts, unwraps and
 * verifies (old data stays readable) but no longer encrypts, wraps or signs.
 */
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/str.h"
#include "vault/kvhsm.h"
#include "vault/kvkey.h"
#include "vault/kvreq.h"
#include "vault/vault_int.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#define ACT_READ    "Microsoft.KeyVault/vaults/keys/read"
#define ACT_CREATE  "Microsoft.KeyVault/vaults/keys/create/action"
#define ACT_IMPORT  "Microsoft.KeyVault/vaults/keys/import/action"
#define ACT_UPDATE  "Microsoft.KeyVault/vaults/keys/update/action"
#define ACT_DELETE  "Microsoft.KeyVault/vaults/keys/delete"
#define ACT_RECOVER "Microsoft.KeyVault/vaults/keys/recover/action"
#define ACT_PURGE   "Microsoft.KeyVault/vaults/keys/purge/action"
#define ACT_BACKUP  "Microsoft.KeyVault/vaults/keys/backup/action"
#define ACT_RESTORE "Microsoft.KeyVault/vaults/keys/restore/action"
#define ACT_ROTATE  "Microsoft.KeyVault/vaults/keys/rotate/action"

/* ---------------------------------------------------------------- the bundle */

/* The meta of a version, parsed (NULL members when absent). */
typedef struct key_meta {
    json_t *root; /* owns the rest */
    const char *kty;
    unsigned ops;
    int exportable;
    int hsm;     /* the material is a PKCS#11 reference (kvhsm), not a PKCS#8 key */
    json_t *jwk; /* public members without kid / key_ops */
    json_t *release_policy;
} key_meta;

static int meta_parse(const char *text, key_meta *m)
{
    memset(m, 0, sizeof(*m));
    m->root = text ? json_loads(text, 0, NULL) : NULL;
    if (m->root == NULL)
        return RP_EPARSE;
    m->kty = json_string_value(json_object_get(m->root, "kty"));
    m->ops = (unsigned)json_integer_value(json_object_get(m->root, "ops"));
    m->exportable = json_is_true(json_object_get(m->root, "exportable"));
    m->hsm = json_is_true(json_object_get(m->root, "hsm"));
    m->jwk = json_object_get(m->root, "jwk");
    m->release_policy = json_object_get(m->root, "release_policy");
    return m->kty != NULL && json_is_object(m->jwk) ? 0 : RP_EPARSE;
}

static json_t *bundle(rp__kv_call *c, const rp__kv_row *r, int item, int deleted)
{
    const char *kid = rp__kv_id(c, "keys", r->name, item == 1 ? NULL : r->version);
    json_t *o = NULL, *attrs;
    key_meta m;

    if (kid == NULL || meta_parse(r->meta, &m) != 0) {
        if (kid != NULL)
            json_decref(m.root);
        return NULL;
    }
    attrs = rp__kv_attributes(&c->vault, r);
    if (attrs != NULL)
        json_object_set_new(attrs, "exportable", json_boolean(m.exportable));
    if (item) {
        o = json_pack("{s:s,s:o}", "kid", kid, "attributes", attrs);
    } else {
        json_t *key = json_deep_copy(m.jwk);
        if (key != NULL) {
            json_object_set_new(key, "kid", json_string(kid));
            json_object_set_new(key, "kty", json_string(m.kty));
            json_object_set_new(key, "key_ops", rp_kvkey_ops_json(m.ops));
        }
        o = key ? json_pack("{s:o,s:o}", "key", key, "attributes", attrs) : NULL;
        if (o != NULL && m.release_policy != NULL)
            json_object_set(o, "release_policy", m.release_policy);
    }
    if (o != NULL && r->tags != NULL) {
        json_t *t = rp__kv_tags(r->tags);
        if (t != NULL)
            json_object_set_new(o, "tags", t);
    }
    if (o != NULL && deleted) {
        const char *rid = rp__kv_id(c, "deletedkeys", r->name, NULL);
        if (rid == NULL) {
            json_decref(o);
            o = NULL;
        } else {
            json_object_set_new(o, "recoveryId", json_string(rid));
            json_object_set_new(o, "deletedDate", json_integer(r->deleted_at));
            json_object_set_new(o, "scheduledPurgeDate", json_integer(r->purge_at));
        }
    }
    json_decref(m.root);
    return o;
}

static int purge_prepare(rp__kv_call *c, const char *name, rp__kv_op *op);
static void purged(rp__kv_op *op, int status);

const rp__kv_coll rp__kv_key_coll = {
    RP__KV_KEY,  "keys",    "deletedkeys", "key",       "KeyNotFound", ACT_READ,      ACT_DELETE,
    ACT_RECOVER, ACT_PURGE, ACT_BACKUP,    ACT_RESTORE, bundle,        purge_prepare, purged,
};

/* ---------------------------------------------------------------- new versions */

/* meta text: public JWK parts (from the software key k, or the HSM key ref), kty, ops,
 * exportable, hsm, release policy. */
static char *meta_text(const rp_kvkey *k, rp_kvhsm *h, const char *ref, const char *kty,
                       unsigned ops, int exportable, const char *release_policy)
{
    json_t *jwk = NULL, *m = NULL;
    char *text = NULL;
    int rc;

    /* The JWK is built with a placeholder kid, which is dropped: ids are made per request. */
    rc = k != NULL ? rp_kvkey_public_jwk(k, "-", kty, ops, &jwk)
                   : rp_kvhsm_public_jwk(h, ref, "-", kty, ops, &jwk);
    if (rc != 0)
        return NULL;
    json_object_del(jwk, "kid");
    json_object_del(jwk, "key_ops");
    json_object_del(jwk, "kty");
    m = json_pack("{s:s,s:I,s:b,s:b,s:o}", "kty", kty, "ops", (json_int_t)ops, "exportable",
                  exportable, "hsm", k == NULL, "jwk", jwk);
    if (m != NULL && release_policy != NULL) {
        json_t *rp = json_loads(release_policy, 0, NULL);
        if (rp != NULL)
            json_object_set_new(m, "release_policy", rp);
    }
    text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    return text;
}

/* Stores a new version of name - the software key k (its PKCS#8 sealed), or the HSM key ref
 * (the reference sealed) - and answers with its bundle. */
static void store_key(rp__kv_call *c, const char *action, const char *name, rp_kvkey *k,
                      const char *ref, const char *kty, unsigned ops, const rp_kvreq_attrs *attrs,
                      const char *tags, const char *release_policy)
{
    const char *scope = rp__kv_scope(c, "keys", name);
    char version[RP__KV_VERSION_LEN + 1];
    rp__kv_version_in v = {0};
    rp__kv_row r = {0};
    unsigned char *der = NULL;
    size_t dern = 0;
    char *meta;
    json_t *reply;

    meta = meta_text(k, c->v->hsm, ref, kty, ops, attrs && attrs->exportable > 0, release_policy);
    if (meta == NULL || (k != NULL && rp_kvkey_to_der(k, &der, &dern) != 0)) {
        free(meta);
        rp__kv_oom(c->req);
        return;
    }
    rp__kv_version_new(version);
    v.version = version;
    v.now = rp__kv_now();
    v.enabled = attrs == NULL || attrs->enabled != 0;
    v.nbf = attrs ? attrs->nbf : 0;
    v.exp = attrs ? attrs->exp : 0;
    v.tags = tags;
    v.meta = meta;
    r.name = name;
    r.version = version;
    r.created = r.updated = v.now;
    r.enabled = v.enabled;
    r.nbf = v.nbf;
    r.exp = v.exp;
    r.tags = tags;
    r.meta = meta;
    reply = bundle(c, &r, 0, 0);
    if (k != NULL)
        rp__kv_new_version(c, &rp__kv_key_coll, action, scope, name, &v, der, dern, reply);
    else
        rp__kv_new_version(c, &rp__kv_key_coll, action, scope, name, &v, ref, strlen(ref), reply);
    rp_kvkey_der_free(der, dern);
    free(meta);
}

/* The HSM key label: what an operator sees in the token (no secret in it). */
static void hsm_label(rp__kv_call *c, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "rampart-kv/%s/%s", c->vault.name, name);
}

static int hsm_missing(rp__kv_call *c, const char *kty)
{
    if (c->v->hsm != NULL)
        return 0;
    rp__kv_error(c->req, 400, "BadParameter", "HsmNotConfigured",
                 "HSM-protected keys (%s) need a PKCS#11 module configured for this "
                 "installation (keys.pkcs11_module, keys.pkcs11_token).",
                 kty);
    return 1;
}

static void key_create(rp__kv_call *c, const char *name)
{
    rp_kvreq_create_key in;
    char ref[RP_KVHSM_REF_MAX], label[RP_KVHSM_LABEL_MAX];
    const char *msg = NULL, *reason = NULL;
    rp_kvkey *k = NULL;
    int rc;

    if (!rp__kv_allow(c, ACT_CREATE, rp__kv_scope(c, "keys", name)))
        return;
    if (rp_kvreq_parse_create_key(c->req->arena, c->body, c->body_len, &in, &msg) != 0) {
        rp__kv_error(c->req, 400, "BadParameter", NULL, "%s", msg ? msg : "Invalid body.");
        return;
    }
    if (in.type == 0) {
        rp__kv_error(c->req, 400, "BadParameter", NULL,
                     "Symmetric (oct) keys are not supported in a vault; use RSA or EC.");
        return;
    }
    /* -HSM: generated inside the token, stored as its reference; else in software. */
    if (in.hsm) {
        if (hsm_missing(c, in.kty))
            return;
        hsm_label(c, name, label, sizeof(label));
        rc = in.type == RP_KVKEY_RSA
                 ? rp_kvhsm_generate_rsa(c->v->hsm, in.key_size, in.public_exponent, label, ref,
                                         &reason)
                 : rp_kvhsm_generate_ec(c->v->hsm, in.crv, label, ref, &reason);
    } else {
        rc = in.type == RP_KVKEY_RSA
                 ? rp_kvkey_generate_rsa(in.key_size, in.public_exponent, &k, &reason)
                 : rp_kvkey_generate_ec(in.crv, &k, &reason);
    }
    if (rc != 0) {
        if (rc == RP_EINVAL || rc == RP_EUNSUPPORTED)
            rp__kv_error(c->req, 400, "BadParameter", NULL, "%s",
                         reason ? reason : "The key parameters are not supported.");
        else
            rp__kv_fail(c->req, rc, NULL);
        return;
    }
    store_key(c, ACT_CREATE, name, k, in.hsm ? ref : NULL, in.kty,
              in.has_key_ops ? in.key_ops
                             : (in.type == RP_KVKEY_RSA ? RP_KVOP_RSA_ALL : RP_KVOP_EC_ALL),
              &in.attrs, in.tags.json, in.release_policy);
    rp_kvkey_free(k);
}

static void key_import(rp__kv_call *c, const char *name)
{
    rp_kvreq_import_key in;
    const char *msg = NULL;
    int rc;

    if (!rp__kv_allow(c, ACT_IMPORT, rp__kv_scope(c, "keys", name)))
        return;
    rc = rp_kvreq_parse_import_key(c->req->arena, c->body, c->body_len, &in, &msg);
    if (rc != 0) {
        if (rc == RP_ECRYPTO || rc == RP_ENOMEM)
            rp__kv_fail(c->req, rc, NULL);
        else
            rp__kv_error(c->req, 400, "BadParameter", NULL, "%s", msg ? msg : "Invalid key.");
        return;
    }
    if (in.hsm) {
        char ref[RP_KVHSM_REF_MAX], label[RP_KVHSM_LABEL_MAX];
        const char *reason = NULL;
        /* "Hsm": true with a plain JWK: the stored type says where the key lives. */
        const char *kty = rp_kvkey_type_of(in.key) == RP_KVKEY_RSA ? "RSA-HSM" : "EC-HSM";
        if (hsm_missing(c, kty))
            return;
        hsm_label(c, name, label, sizeof(label));
        rc = rp_kvhsm_import(c->v->hsm, in.key, label, ref, &reason);
        if (rc != 0) {
            rp__kv_fail(c->req, rc, reason);
            return;
        }
        store_key(c, ACT_IMPORT, name, NULL, ref, kty,
                  in.has_key_ops ? in.key_ops
                                 : (rp_kvkey_type_of(in.key) == RP_KVKEY_RSA ? RP_KVOP_RSA_ALL
                                                                             : RP_KVOP_EC_ALL),
                  &in.attrs, in.tags.json, in.release_policy);
        return;
    }
    store_key(c, ACT_IMPORT, name, in.key, NULL, in.kty,
              in.has_key_ops
                  ? in.key_ops
                  : (rp_kvkey_type_of(in.key) == RP_KVKEY_RSA ? RP_KVOP_RSA_ALL : RP_KVOP_EC_ALL),
              &in.attrs, in.tags.json, in.release_policy);
}

/* Opens (or finds in this loop's cache) the private key of version r. */
static int load_key(rp__kv_call *c, const rp__kv_row *r, rp_kvkey **out, const char **reason)
{
    rp_buf pt;
    int rc;

    *out = rp__kv_key_cached(c->vault.name, r->version);
    if (*out != NULL)
        return 0;
    rp_buf_init(&pt, RP_KVKEY_MAX_DER + 1);
    rc = rp__kv_open(c, &rp__kv_key_coll, r, &pt, reason);
    if (rc == 0)
        rc = rp_kvkey_from_der((const unsigned char *)pt.data, pt.len, out, reason);
    rp_buf_free_secret(&pt);
    if (rc == 0)
        rp__kv_key_cache(c->vault.name, r->version, *out);
    return rc;
}

/* The HSM reference of version r (sealed like any material) into ref. */
static int load_ref(rp__kv_call *c, const rp__kv_row *r, char ref[RP_KVHSM_REF_MAX],
                    const char **reason)
{
    rp_buf pt;
    int rc;

    rp_buf_init(&pt, RP_KVHSM_REF_MAX);
    rc = rp__kv_open(c, &rp__kv_key_coll, r, &pt, reason);
    if (rc == 0 && (pt.len == 0 || pt.len >= RP_KVHSM_REF_MAX))
        rc = RP_EPARSE;
    if (rc == 0) {
        memcpy(ref, pt.data, pt.len);
        ref[pt.len] = '\0';
    }
    rp_buf_free_secret(&pt);
    return rc;
}

/* The latest live version of name, or an answer (404 / error) and non-zero. */
static int live_row(rp__kv_call *c, const char *name, const char *version, rp__kv_row *r)
{
    int rc;

    if (version[0] && !rp__kv_version_valid(version)) {
        rp__kv_not_found(c, &rp__kv_key_coll, name, 0);
        return RP_ENOENT;
    }
    rc = rp__kv_get(c, RP__KV_KEY, name, version, r);
    if (rc == RP_ENOENT || (rc == 0 && r->deleted_at != 0)) {
        rp__kv_not_found(c, &rp__kv_key_coll, name, 0);
        return RP_ENOENT;
    }
    if (rc != 0)
        rp__kv_fail(c->req, rc, NULL);
    return rc;
}

static void key_rotate(rp__kv_call *c, const char *name)
{
    rp__kv_row r;
    rp_kvkey *old = NULL, *k = NULL;
    rp_kvreq_attrs attrs = {-1, 0, 0, 0, 0, -1};
    const char *reason = NULL;
    key_meta m;
    int rc;

    if (!rp__kv_allow(c, ACT_ROTATE, rp__kv_scope(c, "keys", name)))
        return;
    if (live_row(c, name, "", &r) != 0)
        return;
    if (meta_parse(r.meta, &m) != 0) {
        json_decref(m.root);
        rp__kv_fail(c->req, RP_EPARSE, NULL);
        return;
    }
    if (m.hsm) {
        char ref[RP_KVHSM_REF_MAX], nref[RP_KVHSM_REF_MAX], label[RP_KVHSM_LABEL_MAX];
        int is_ec = 0, bits = 0;
        const char *crv = NULL;
        if (hsm_missing(c, m.kty)) {
            json_decref(m.root);
            return;
        }
        hsm_label(c, r.name, label, sizeof(label));
        rc = load_ref(c, &r, ref, &reason);
        if (rc == 0)
            rc = rp_kvhsm_describe(c->v->hsm, ref, &is_ec, &bits, &crv);
        if (rc == 0 && is_ec)
            rc = rp_kvhsm_generate_ec(c->v->hsm, crv, label, nref, &reason);
        else if (rc == 0)
            rc = rp_kvhsm_generate_rsa(c->v->hsm, bits, 0, label, nref, &reason);
        if (rc != 0) {
            json_decref(m.root);
            rp__kv_fail(c->req, rc, reason);
            return;
        }
        attrs.exportable = m.exportable;
        {
            char *rpol = m.release_policy ? json_dumps(m.release_policy, JSON_COMPACT) : NULL;
            store_key(c, ACT_ROTATE, r.name, NULL, nref, m.kty, m.ops, &attrs, r.tags, rpol);
            free(rpol);
        }
        json_decref(m.root);
        return;
    }
    rc = load_key(c, &r, &old, &reason);
    if (rc == 0)
        rc = rp_kvkey_type_of(old) == RP_KVKEY_RSA
                 ? rp_kvkey_generate_rsa(rp_kvkey_bits(old), 0, &k, &reason)
                 : rp_kvkey_generate_ec(rp_kvkey_crv(old), &k, &reason);
    if (rc != 0) {
        json_decref(m.root);
        rp_kvkey_free(old);
        rp__kv_fail(c->req, rc, reason);
        return;
    }
    /* The new version keeps the key's settings; times restart. */
    attrs.exportable = m.exportable;
    {
        char *rp = m.release_policy ? json_dumps(m.release_policy, JSON_COMPACT) : NULL;
        store_key(c, ACT_ROTATE, r.name, k, NULL, m.kty, m.ops, &attrs, r.tags, rp);
        free(rp);
    }
    json_decref(m.root);
    rp_kvkey_free(old);
    rp_kvkey_free(k);
}

/* ---------------------------------------------------------------- get / update */

static void key_get(rp__kv_call *c, const char *name, const char *version)
{
    rp__kv_row r;
    json_t *o;

    if (!rp__kv_allow(c, ACT_READ, rp__kv_scope(c, "keys", name)))
        return;
    if (live_row(c, name, version, &r) != 0)
        return;
    o = bundle(c, &r, 0, 0);
    if (o == NULL) {
        rp__kv_oom(c->req);
        return;
    }
    rp_resp_json(c->req, 200, o);
}

static void key_update(rp__kv_call *c, const char *name, const char *version)
{
    const char *scope = rp__kv_scope(c, "keys", name);
    rp__kv_row r;
    rp__kv_op *op;
    rp_kvreq_update_key in;
    rp__kv_patch *d;
    const char *msg = NULL;
    key_meta m;

    if (!rp__kv_allow(c, ACT_UPDATE, scope))
        return;
    if (live_row(c, name, version, &r) != 0)
        return;
    op = rp__kv_op_new(c, ACT_UPDATE, scope, RP__KV_KEY, r.name);
    d = op ? rp_arena_calloc(op->arena, sizeof(*d)) : NULL;
    if (d == NULL) {
        rp__kv_op_free(op);
        rp__kv_oom(c->req);
        return;
    }
    if (rp_kvreq_parse_update_key(op->arena, c->body, c->body_len, &in, &msg) != 0) {
        rp__kv_op_free(op);
        rp__kv_error(c->req, 400, "BadParameter", NULL, "%s", msg ? msg : "Invalid body.");
        return;
    }
    d->attrs = in.attrs;
    d->tags = in.tags;
    if (in.has_key_ops || in.has_release_policy) {
        char *text;
        if (meta_parse(r.meta, &m) != 0) {
            json_decref(m.root);
            rp__kv_op_free(op);
            rp__kv_fail(c->req, RP_EPARSE, NULL);
            return;
        }
        if (in.has_key_ops)
            json_object_set_new(m.root, "ops", json_integer(in.key_ops));
        if (in.has_release_policy) {
            json_t *rp = in.release_policy ? json_loads(in.release_policy, 0, NULL) : NULL;
            if (rp != NULL)
                json_object_set_new(m.root, "release_policy", rp);
            else
                json_object_del(m.root, "release_policy");
        }
        text = json_dumps(m.root, JSON_COMPACT);
        json_decref(m.root);
        d->meta = text ? rp_arena_strndup(op->arena, text, strlen(text)) : NULL;
        free(text);
        if (d->meta == NULL) {
            rp__kv_op_free(op);
            rp__kv_oom(c->req);
            return;
        }
    }
    rp_strlcpy(op->version, r.version, sizeof(op->version));
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

/* ---------------------------------------------------------------- operations */

typedef enum { OP_ENCRYPT, OP_DECRYPT, OP_WRAP, OP_UNWRAP, OP_SIGN, OP_VERIFY } key_op;

static const struct {
    const char *path;   /* the path segment */
    const char *name;   /* the operation's name in messages and key_ops */
    const char *action; /* the data action */
    unsigned bit;       /* RP_KVOP_* */
    int after_expiry;   /* allowed after exp (reading old data) */
} ops[] = {
    {"encrypt", "encrypt", "Microsoft.KeyVault/vaults/keys/encrypt/action", RP_KVOP_ENCRYPT, 0},
    {"decrypt", "decrypt", "Microsoft.KeyVault/vaults/keys/decrypt/action", RP_KVOP_DECRYPT, 1},
    {"wrapkey", "wrapKey", "Microsoft.KeyVault/vaults/keys/wrap/action", RP_KVOP_WRAP_KEY, 0},
    {"unwrapkey", "unwrapKey", "Microsoft.KeyVault/vaults/keys/unwrap/action", RP_KVOP_UNWRAP_KEY,
     1},
    {"sign", "sign", "Microsoft.KeyVault/vaults/keys/sign/action", RP_KVOP_SIGN, 0},
    {"verify", "verify", "Microsoft.KeyVault/vaults/keys/verify/action", RP_KVOP_VERIFY, 1},
};

static int op_of(const char *seg)
{
    for (int i = 0; i < (int)(sizeof(ops) / sizeof(ops[0])); i++)
        if (strcmp(seg, ops[i].path) == 0)
            return i;
    return -1;
}

/* enabled / nbf / exp / key_ops; answers 403 and returns 0 when the key may not do op. */
static int op_allowed(rp__kv_call *c, const rp__kv_row *r, unsigned key_ops, int op)
{
    int64_t now = rp__kv_now();

    if (!r->enabled) {
        rp__kv_error(c->req, 403, "Forbidden", "KeyDisabled",
                     "Operation %s is not allowed on a disabled key.", ops[op].name);
        return 0;
    }
    if (r->nbf > 0 && now < r->nbf) {
        rp__kv_error(c->req, 403, "Forbidden", "KeyNotYetValid",
                     "Operation %s is not allowed on a key that is not yet valid.", ops[op].name);
        return 0;
    }
    if (r->exp > 0 && now >= r->exp && !ops[op].after_expiry) {
        rp__kv_error(c->req, 403, "Forbidden", "KeyExpired",
                     "Operation %s is not allowed on an expired key.", ops[op].name);
        return 0;
    }
    if (!rp_kvkey_op_allowed(key_ops, ops[op].bit)) {
        rp__kv_error(c->req, 403, "Forbidden", "KeyOperationForbidden",
                     "Operation %s is not permitted on this key (key_ops).", ops[op].name);
        return 0;
    }
    return 1;
}

/* Answers an operation's result the same way for both backends (reply is stolen). */
static void op_answer(rp__kv_call *c, int op, int rc, const char *reason, json_t *reply)
{
    if (rc == RP_EINVAL || rc == RP_EUNSUPPORTED) {
        json_decref(reply);
        rp__kv_error(c->req, 400, "BadParameter", NULL, "%s",
                     reason ? reason : "The algorithm or input is not valid for this key.");
        return;
    }
    if (rc == RP_ECRYPTO && (op == OP_DECRYPT || op == OP_UNWRAP)) {
        json_decref(reply);
        rp__kv_error(c->req, 400, "BadParameter", NULL, "%s",
                     reason ? reason : "The ciphertext could not be decrypted.");
        return;
    }
    if (rc != 0 || reply == NULL) {
        json_decref(reply);
        rp__kv_fail(c->req, rc != 0 ? rc : RP_ENOMEM, reason);
        return;
    }
    /* decrypt and unwrapKey answer with plaintext: like a secret's value, only once the read is
     * on record durably. */
    if (op == OP_DECRYPT || op == OP_UNWRAP) {
        const char *name = c->seg[1];
        rp__kv_send_audited(c, ops[op].action, rp__kv_scope(c, "keys", name), name, reply);
        return;
    }
    rp_resp_json(c->req, 200, reply);
}

/* An operation on a key held in the PKCS#11 token. */
static void hsm_operation(rp__kv_call *c, const rp__kv_row *r, int op)
{
    unsigned char out[RP_KVKEY_MAX_OUT];
    char ref[RP_KVHSM_REF_MAX];
    const char *reason = NULL, *msg = NULL;
    const char *kid = rp__kv_id(c, "keys", r->name, r->version);
    rp_kvhsm *h = c->v->hsm;
    json_t *reply = NULL;
    size_t outlen = 0;
    int rc, valid = 0;

    if (op == OP_VERIFY) {
        rp_kvreq_key_verify in;
        if (rp_kvreq_parse_key_verify(c->req->arena, c->body, c->body_len, &in, &msg) != 0) {
            rp__kv_error(c->req, 400, "BadParameter", NULL, "%s", msg ? msg : "Invalid body.");
            return;
        }
        rc = load_ref(c, r, ref, &reason);
        if (rc == 0)
            rc = rp_kvhsm_verify(h, ref, in.alg, in.digest.p, in.digest.n, in.value.p, in.value.n,
                                 &valid, &reason);
        if (rc == 0)
            reply = json_pack("{s:b}", "value", valid);
    } else {
        rp_kvreq_key_op in;
        if (rp_kvreq_parse_key_op(c->req->arena, c->body, c->body_len, &in, &msg) != 0) {
            rp__kv_error(c->req, 400, "BadParameter", NULL, "%s", msg ? msg : "Invalid body.");
            return;
        }
        rc = load_ref(c, r, ref, &reason);
        if (rc == 0) {
            switch (op) {
            case OP_ENCRYPT:
                rc = rp_kvhsm_encrypt(h, ref, in.alg, in.value.p, in.value.n, out, sizeof(out),
                                      &outlen, &reason);
                break;
            case OP_DECRYPT:
                rc = rp_kvhsm_decrypt(h, ref, in.alg, in.value.p, in.value.n, out, sizeof(out),
                                      &outlen, &reason);
                break;
            case OP_WRAP:
                rc = rp_kvhsm_wrap_key(h, ref, in.alg, in.value.p, in.value.n, out, sizeof(out),
                                       &outlen, &reason);
                break;
            case OP_UNWRAP:
                rc = rp_kvhsm_unwrap_key(h, ref, in.alg, in.value.p, in.value.n, out, sizeof(out),
                                         &outlen, &reason);
                break;
            default:
                rc = rp_kvhsm_sign(h, ref, in.alg, in.value.p, in.value.n, out, sizeof(out),
                                   &outlen, &reason);
                break;
            }
        }
        if (rc == 0) {
            size_t cap = outlen * 4 / 3 + 8;
            char *b64 = rp_arena_alloc_secret(c->req->arena, cap);
            if (b64 == NULL || kid == NULL || rp_b64url_encode(out, outlen, b64, cap) < 0)
                rc = RP_ENOMEM;
            else
                reply = json_pack("{s:s,s:s}", "kid", kid, "value", b64);
        }
        OPENSSL_cleanse(out, sizeof(out));
    }
    OPENSSL_cleanse(ref, sizeof(ref));
    op_answer(c, op, rc, reason, reply);
}

/* Purging a key destroys its HSM objects once the purge committed. */
typedef struct purge_refs {
    size_t n;
    char (*ref)[RP_KVHSM_REF_MAX];
} purge_refs;

static int purge_prepare(rp__kv_call *c, const char *name, rp__kv_op *op)
{
    sqlite3_stmt *st = rp__kv_stmt(10, "SELECT " RP__KV_ROW_COLUMNS RP__KV_ROW_JOIN
                                       " WHERE v.vault = ?1 AND v.kind = 2 AND v.name = ?2");
    purge_refs *p = rp_arena_calloc(op->arena, sizeof(*p));
    size_t cap = 0;
    int rc;

    if (st == NULL || p == NULL)
        return st == NULL ? RP_EDB : RP_ENOMEM;
    sqlite3_bind_text(st, 1, c->vault.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rp__kv_row r;
        key_meta m;
        const char *reason = NULL;
        rp__kv_row_read(c->req->arena, st, &r);
        if (r.meta == NULL || meta_parse(r.meta, &m) != 0 || !m.hsm) {
            if (r.meta != NULL)
                json_decref(m.root);
            continue;
        }
        json_decref(m.root);
        if (p->n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            void *nr = rp_arena_alloc(op->arena, ncap * sizeof(*p->ref));
            if (nr == NULL) {
                sqlite3_reset(st);
                return RP_ENOMEM;
            }
            if (p->n)
                memcpy(nr, p->ref, p->n * sizeof(*p->ref));
            p->ref = nr;
            cap = ncap;
        }
        if (load_ref(c, &r, p->ref[p->n], &reason) == 0)
            p->n++;
    }
    sqlite3_reset(st);
    op->extra = p;
    return rc == SQLITE_DONE ? 0 : RP_EDB;
}

static void purged(rp__kv_op *op, int status)
{
    purge_refs *p = op->extra;

    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++) {
        if (status == 0 && op->v->hsm != NULL) {
            int rc = rp_kvhsm_destroy(op->v->hsm, p->ref[i]);
            if (rc != 0 && rc != RP_ENOENT)
                rp_log_err("vault.purge", "an HSM key object could not be destroyed", rc);
        }
        OPENSSL_cleanse(p->ref[i], sizeof(p->ref[i]));
    }
}

static void key_operation(rp__kv_call *c, const char *name, const char *version, int op)
{
    unsigned char out[RP_KVKEY_MAX_OUT];
    char *b64 = NULL;
    size_t outlen = 0;
    const char *reason = NULL, *msg = NULL, *kid;
    rp__kv_row r;
    rp_kvkey *k = NULL;
    key_meta m;
    json_t *reply = NULL;
    int rc, valid = 0;

    if (!rp__kv_allow(c, ops[op].action, rp__kv_scope(c, "keys", name)))
        return;
    if (live_row(c, name, version, &r) != 0)
        return;
    if (meta_parse(r.meta, &m) != 0) {
        json_decref(m.root);
        rp__kv_fail(c->req, RP_EPARSE, NULL);
        return;
    }
    json_decref(m.root);
    if (!op_allowed(c, &r, m.ops, op))
        return;
    if (m.hsm) {
        if (!hsm_missing(c, "RSA-HSM"))
            hsm_operation(c, &r, op);
        return;
    }
    kid = rp__kv_id(c, "keys", r.name, r.version);
    if (op == OP_VERIFY) {
        rp_kvreq_key_verify in;
        if (rp_kvreq_parse_key_verify(c->req->arena, c->body, c->body_len, &in, &msg) != 0) {
            rp__kv_error(c->req, 400, "BadParameter", NULL, "%s", msg ? msg : "Invalid body.");
            return;
        }
        rc = load_key(c, &r, &k, &reason);
        if (rc == 0)
            rc = rp_kvkey_verify(k, in.alg, in.digest.p, in.digest.n, in.value.p, in.value.n,
                                 &valid, &reason);
        if (rc == 0)
            reply = json_pack("{s:b}", "value", valid);
    } else {
        rp_kvreq_key_op in;
        if (rp_kvreq_parse_key_op(c->req->arena, c->body, c->body_len, &in, &msg) != 0) {
            rp__kv_error(c->req, 400, "BadParameter", NULL, "%s", msg ? msg : "Invalid body.");
            return;
        }
        rc = load_key(c, &r, &k, &reason);
        if (rc == 0) {
            switch (op) {
            case OP_ENCRYPT:
                rc = rp_kvkey_encrypt(k, in.alg, in.value.p, in.value.n, out, sizeof(out), &outlen,
                                      &reason);
                break;
            case OP_DECRYPT:
                rc = rp_kvkey_decrypt(k, in.alg, in.value.p, in.value.n, out, sizeof(out), &outlen,
                                      &reason);
                break;
            case OP_WRAP:
                rc = rp_kvkey_wrap_key(k, in.alg, in.value.p, in.value.n, out, sizeof(out), &outlen,
                                       &reason);
                break;
            case OP_UNWRAP:
                rc = rp_kvkey_unwrap_key(k, in.alg, in.value.p, in.value.n, out, sizeof(out),
                                         &outlen, &reason);
                break;
            default:
                rc = rp_kvkey_sign(k, in.alg, in.value.p, in.value.n, out, sizeof(out), &outlen,
                                   &reason);
                break;
            }
        }
        if (rc == 0) {
            size_t cap = outlen * 4 / 3 + 8;
            b64 = rp_arena_alloc_secret(c->req->arena, cap);
            if (b64 == NULL || rp_b64url_encode(out, outlen, b64, cap) < 0)
                rc = RP_ENOMEM;
            else
                reply = json_pack("{s:s,s:s}", "kid", kid, "value", b64);
        }
        OPENSSL_cleanse(out, sizeof(out));
    }
    rp_kvkey_free(k);
    op_answer(c, op, rc, reason, reply);
}

/* A backup of an HSM key would carry only its token reference: restored elsewhere and purged
 * there, it would destroy the original. Such keys are not backed up. */
static void key_backup(rp__kv_call *c, const char *name)
{
    rp__kv_row r;
    key_meta m;

    if (!rp__kv_allow(c, ACT_BACKUP, rp__kv_scope(c, "keys", name)))
        return;
    if (live_row(c, name, "", &r) != 0)
        return;
    if (meta_parse(r.meta, &m) == 0 && m.hsm) {
        json_decref(m.root);
        rp__kv_error(c->req, 400, "BadParameter", NULL,
                     "HSM-protected keys cannot be backed up: the key never leaves the token.");
        return;
    }
    json_decref(m.root);
    rp__kv_backup(c, &rp__kv_key_coll, name);
}

/* ---------------------------------------------------------------- dispatch */

/* The paths only keys have: /keys/{n}/create, /keys/{n}/rotate, /keys/{n}/{v}/{op}. */
static int key_extra(rp__kv_call *c, const char *name)
{
    rp_method m = c->req->method;

    if (c->nseg == 3 && m == RP_METHOD_POST && strcmp(c->seg[2], "create") == 0) {
        key_create(c, name);
        return 1;
    }
    if (c->nseg == 3 && m == RP_METHOD_POST && strcmp(c->seg[2], "rotate") == 0) {
        key_rotate(c, name);
        return 1;
    }
    if (c->nseg == 4 && m == RP_METHOD_POST) {
        int op = op_of(c->seg[3]);
        if (op >= 0) {
            key_operation(c, name, c->seg[2], op);
            return 1;
        }
    }
    return 0;
}

void rp__kv_keys(rp__kv_call *c)
{
    static const rp__kv_handlers h = {key_import, key_get, key_update, key_backup, key_extra};

    rp__kv_dispatch(c, &rp__kv_key_coll, &h);
}
