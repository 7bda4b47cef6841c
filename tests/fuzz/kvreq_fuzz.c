/*
 * kvreq_fuzz.c - every Key Vault body parser and the name / version checks on arbitrary bytes.
 *
 * Each input goes to all eight parsers (one arena, reset in between) and to the name and
 * version checks. Properties checked (abort() on violation, so the fuzzer reports it):
 *   - no crash, no read outside the input (libFuzzer's buffer is exactly size bytes, so ASan
 *     sees an over-read), no leak (the arena and jansson trees are released every run);
 *   - every failure carries a message, and the code is one of the documented ones;
 *   - what a parser accepts respects the limits: secret value <= 25600 bytes and NUL-terminated,
 *     at most 15 tags whose JSON text parses back to an object of that many members, attributes
 *     in range, decoded binary fields within their maxima, CreateKey's kty/size/crv consistent;
 *   - the name check agrees with a direct reading of ^[0-9a-zA-Z-]{1,127}$.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/err.h"
#include "vault/kvreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fail(int rc, const char *msg)
{
    if (msg == NULL || msg[0] == '\0')
        abort();
    if (rc != RP_EINVAL && rc != RP_ETOOBIG && rc != RP_ENOMEM && rc != RP_EUNSUPPORTED &&
        rc != RP_ECRYPTO)
        abort();
}

static void check_attrs(const rp_kvreq_attrs *at)
{
    if (at->enabled < -1 || at->enabled > 1 || at->exportable < -1 || at->exportable > 1)
        abort();
    if (at->nbf < 0 || at->nbf > RP_KVREQ_TIME_MAX || at->exp < 0 || at->exp > RP_KVREQ_TIME_MAX)
        abort();
    if ((!at->has_nbf && at->nbf != 0) || (!at->has_exp && at->exp != 0))
        abort();
}

static void check_tags(const rp_kvreq_tags *t)
{
    json_t *o;

    if (t->json == NULL) {
        if (t->count != 0)
            abort();
        return;
    }
    if (!t->present || t->count > RP_KVREQ_TAGS_MAX)
        abort();
    o = json_loads(t->json, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(o) || json_object_size(o) != t->count)
        abort();
    json_decref(o);
}

static void check_bytes(const rp_kvreq_bytes *b, size_t max)
{
    if (b->present ? (b->p == NULL || b->n > max) : (b->p != NULL || b->n != 0))
        abort();
}

static int name_ref(const uint8_t *s, size_t n)
{
    if (n == 0 || n > 127)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!(s[i] == '-' || (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z')))
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rp_arena *a;
    const char *body = (const char *)data;
    const char *msg;
    int rc;

    if (a == NULL && (a = rp_arena_create(16384)) == NULL)
        abort();

    if (rp_kvreq_name_valid(body, size) != name_ref(data, size))
        abort();
    if (rp_kvreq_version_valid(body, size) && size != RP_KVREQ_VERSION_LEN)
        abort();

    {
        rp_kvreq_set_secret s;
        msg = NULL;
        rc = rp_kvreq_parse_set_secret(a, body, size, &s, &msg);
        if (rc != 0) {
            check_fail(rc, msg);
        } else {
            if (s.value == NULL || s.value_len > RP_KVREQ_SECRET_MAX || s.value[s.value_len] != 0)
                abort();
            if (s.content_type != NULL && strlen(s.content_type) > 4 * RP_KVREQ_CONTENT_TYPE_MAX)
                abort();
            check_tags(&s.tags);
            check_attrs(&s.attrs);
        }
        rp_arena_reset(a);
    }
    {
        rp_kvreq_update_secret u;
        msg = NULL;
        rc = rp_kvreq_parse_update_secret(a, body, size, &u, &msg);
        if (rc != 0) {
            check_fail(rc, msg);
        } else {
            if (u.content_type != NULL && !u.has_content_type)
                abort();
            check_tags(&u.tags);
            check_attrs(&u.attrs);
        }
        rp_arena_reset(a);
    }
    {
        rp_kvreq_create_key c;
        msg = NULL;
        rc = rp_kvreq_parse_create_key(a, body, size, &c, &msg);
        if (rc != 0) {
            check_fail(rc, msg);
        } else {
            if (c.kty == NULL)
                abort();
            if (c.type == RP_KVKEY_RSA &&
                (c.crv != NULL || (c.key_size != 2048 && c.key_size != 3072 && c.key_size != 4096)))
                abort();
            if (c.type == RP_KVKEY_EC && (c.crv == NULL || c.key_size != 0))
                abort();
            if (c.type == 0 && c.key_size != 128 && c.key_size != 192 && c.key_size != 256)
                abort();
            if (c.public_exponent != 0 && (c.public_exponent % 2 == 0 || c.public_exponent < 3))
                abort();
            if (!c.has_key_ops && c.key_ops != 0)
                abort();
            check_tags(&c.tags);
            check_attrs(&c.attrs);
        }
        rp_arena_reset(a);
    }
    {
        rp_kvreq_import_key ik;
        msg = NULL;
        rc = rp_kvreq_parse_import_key(a, body, size, &ik, &msg);
        if (rc != 0) {
            check_fail(rc, msg);
        } else {
            if (ik.key == NULL || ik.kty == NULL)
                abort();
            check_tags(&ik.tags);
            check_attrs(&ik.attrs);
        }
        rp_arena_reset(a);
    }
    {
        rp_kvreq_update_key u;
        msg = NULL;
        rc = rp_kvreq_parse_update_key(a, body, size, &u, &msg);
        if (rc != 0) {
            check_fail(rc, msg);
        } else {
            if (u.release_policy != NULL && !u.has_release_policy)
                abort();
            check_tags(&u.tags);
            check_attrs(&u.attrs);
        }
        rp_arena_reset(a);
    }
    {
        rp_kvreq_key_op op;
        msg = NULL;
        rc = rp_kvreq_parse_key_op(a, body, size, &op, &msg);
        if (rc != 0) {
            check_fail(rc, msg);
        } else {
            if (op.alg == NULL || strlen(op.alg) == 0 || strlen(op.alg) > RP_KVREQ_ALG_MAX ||
                !op.value.present)
                abort();
            check_bytes(&op.value, RP_KVREQ_OP_VALUE_MAX);
            check_bytes(&op.iv, RP_KVREQ_OP_VALUE_MAX);
            check_bytes(&op.aad, RP_KVREQ_OP_VALUE_MAX);
            check_bytes(&op.tag, RP_KVREQ_OP_VALUE_MAX);
        }
        rp_arena_reset(a);
    }
    {
        rp_kvreq_key_verify kv;
        msg = NULL;
        rc = rp_kvreq_parse_key_verify(a, body, size, &kv, &msg);
        if (rc != 0) {
            check_fail(rc, msg);
        } else {
            if (kv.alg == NULL || !kv.digest.present || !kv.value.present)
                abort();
            check_bytes(&kv.digest, RP_KVREQ_OP_VALUE_MAX);
            check_bytes(&kv.value, RP_KVREQ_OP_VALUE_MAX);
        }
        rp_arena_reset(a);
    }
    {
        rp_kvreq_restore rs;
        msg = NULL;
        rc = rp_kvreq_parse_restore(a, body, size, &rs, &msg);
        if (rc != 0) {
            check_fail(rc, msg);
        } else {
            if (!rs.value.present)
                abort();
            check_bytes(&rs.value, RP_KVREQ_RESTORE_MAX);
        }
        rp_arena_reset(a);
    }
    return 0;
}
