/*
 * kvreq.c - Key Vault request bodies and names (see kvreq.h for the contract).
 *
 * Each body has a _json parser over a jansson object and a bytes wrapper that parses strictly
 * (body_load) and releases the tree afterwards. Members are read with small typed getters that
 * share one convention: absent -> nothing set, null -> "absent" (or "clear" where the struct
 * has a has_ flag), wrong type -> RP_EINVAL with a message naming the member.
 */
#include "vault/kvreq.h"

#include "base/err.h"

#include <openssl/crypto.h>

#include <stdlib.h>
#include <string.h>

static const char M_NOMEM[] = "out of memory";

/* ---------------------------------------------------------------- names */

int rp_kvreq_name_valid(const char *s, size_t n)
{
    if (s == NULL || n == 0 || n > RP_KVREQ_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-'))
            return 0;
    }
    return 1;
}

int rp_kvreq_version_valid(const char *s, size_t n)
{
    if (s == NULL || n != RP_KVREQ_VERSION_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- helpers */

/* Code points in the valid UTF-8 s[0..n) (jansson guarantees validity). */
static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;

    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

/* A jansson string with no embedded NUL (trees parsed with JSON_ALLOW_NUL may have one). */
static int plain_string(const json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

static int fail(const char **msg, const char *m, int rc)
{
    *msg = m;
    return rc;
}

/* Copies a JSON string into the arena. */
static int dup_str(rp_arena *a, const json_t *v, const char **out, const char **msg)
{
    char *s = rp_arena_strndup(a, json_string_value(v), json_string_length(v));

    if (s == NULL)
        return fail(msg, M_NOMEM, RP_ENOMEM);
    *out = s;
    return 0;
}

/* Compact JSON text of an object into the arena. */
static int dump_obj(rp_arena *a, const json_t *v, const char **out, const char **msg)
{
    char *s = json_dumps(v, JSON_COMPACT);
    int rc = 0;

    if (s == NULL)
        return fail(msg, M_NOMEM, RP_ENOMEM);
    *out = rp_arena_strndup(a, s, strlen(s));
    if (*out == NULL)
        rc = fail(msg, M_NOMEM, RP_ENOMEM);
    free(s);
    return rc;
}

/* An integer in 0..RP_KVREQ_TIME_MAX, or null (-> 0). */
static int get_time(const json_t *v, int64_t *out)
{
    if (json_is_null(v)) {
        *out = 0;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > RP_KVREQ_TIME_MAX)
        return -1;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* A tri-state boolean: -1 for null. */
static int get_tristate(const json_t *v, int *out)
{
    if (json_is_null(v)) {
        *out = -1;
        return 0;
    }
    if (!json_is_boolean(v))
        return -1;
    *out = json_is_true(v);
    return 0;
}

static int parse_attrs(const json_t *root, rp_kvreq_attrs *at, const char **msg)
{
    const json_t *o = json_object_get(root, "attributes"), *v;

    at->enabled = -1;
    at->exportable = -1;
    at->has_nbf = at->has_exp = 0;
    at->nbf = at->exp = 0;
    if (o == NULL || json_is_null(o))
        return 0;
    if (!json_is_object(o))
        return fail(msg, "'attributes' must be an object", RP_EINVAL);
    v = json_object_get(o, "enabled");
    if (v != NULL && get_tristate(v, &at->enabled) != 0)
        return fail(msg, "'attributes.enabled' must be a boolean", RP_EINVAL);
    v = json_object_get(o, "exportable");
    if (v != NULL && get_tristate(v, &at->exportable) != 0)
        return fail(msg, "'attributes.exportable' must be a boolean", RP_EINVAL);
    v = json_object_get(o, "nbf");
    if (v != NULL) {
        if (get_time(v, &at->nbf) != 0)
            return fail(msg, "'attributes.nbf' must be an integer number of seconds since 1970",
                        RP_EINVAL);
        at->has_nbf = 1;
    }
    v = json_object_get(o, "exp");
    if (v != NULL) {
        if (get_time(v, &at->exp) != 0)
            return fail(msg, "'attributes.exp' must be an integer number of seconds since 1970",
                        RP_EINVAL);
        at->has_exp = 1;
    }
    return 0;
}

static int parse_tags(rp_arena *a, const json_t *root, rp_kvreq_tags *t, const char **msg)
{
    const json_t *o = json_object_get(root, "tags"), *v;
    const char *name;

    t->present = o != NULL;
    t->json = NULL;
    t->count = 0;
    if (o == NULL || json_is_null(o))
        return 0;
    if (!json_is_object(o))
        return fail(msg, "'tags' must be an object of string values", RP_EINVAL);
    if (json_object_size(o) > RP_KVREQ_TAGS_MAX)
        return fail(msg, "too many tags (at most 15)", RP_EINVAL);
    json_object_foreach((json_t *)o, name, v)
    {
        size_t nl = strlen(name);
        if (nl == 0 || utf8_chars(name, nl) > RP_KVREQ_TAG_NAME_MAX)
            return fail(msg, "a tag name must be 1 to 512 characters", RP_EINVAL);
        if (!plain_string(v))
            return fail(msg, "'tags' must be an object of string values", RP_EINVAL);
        if (utf8_chars(json_string_value(v), json_string_length(v)) > RP_KVREQ_TAG_VALUE_MAX)
            return fail(msg, "a tag value must be at most 512 characters", RP_EINVAL);
    }
    t->count = json_object_size(o);
    return dump_obj(a, o, &t->json, msg);
}

/* "release_policy": object or null. has (may be NULL) tells whether the member was present. */
static int parse_policy(rp_arena *a, const json_t *root, int *has, const char **out,
                        const char **msg)
{
    const json_t *o = json_object_get(root, "release_policy");

    *out = NULL;
    if (has != NULL)
        *has = o != NULL;
    if (o == NULL || json_is_null(o))
        return 0;
    if (!json_is_object(o))
        return fail(msg, "'release_policy' must be an object", RP_EINVAL);
    return dump_obj(a, o, out, msg);
}

static int parse_key_ops(const json_t *root, int *has, unsigned *ops, const char **msg)
{
    const json_t *v = json_object_get(root, "key_ops");
    const char *why = NULL;

    *has = 0;
    *ops = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (rp_kvkey_ops_parse(v, ops, &why) != 0)
        return fail(msg, why, RP_EINVAL);
    *has = 1;
    return 0;
}

/*
 * A required or optional base64url member decoded into arena memory (secret memory when
 * secret) of at most max bytes.
 */
static int get_bytes(rp_arena *a, const json_t *root, const char *name, int required, size_t max,
                     int secret, rp_kvreq_bytes *b, const char **msg, const char *m_missing,
                     const char *m_type, const char *m_big)
{
    const json_t *v = json_object_get(root, name);
    size_t n, cap, got = 0;
    unsigned char *p;
    int rc;

    b->present = 0;
    b->p = NULL;
    b->n = 0;
    if (v == NULL || json_is_null(v))
        return required ? fail(msg, m_missing, RP_EINVAL) : 0;
    if (!json_is_string(v))
        return fail(msg, m_type, RP_EINVAL);
    n = json_string_length(v);
    cap = rp_kvkey_b64_max(n);
    if (cap > max) {
        /* padding or a partial group can make the bound overshoot by a few bytes */
        if (n / 4 * 3 > max + 3)
            return fail(msg, m_big, RP_ETOOBIG);
        cap = max;
    }
    p = secret ? rp_arena_alloc_secret(a, cap + 1) : rp_arena_alloc(a, cap + 1);
    if (p == NULL)
        return fail(msg, M_NOMEM, RP_ENOMEM);
    rc = rp_kvkey_b64_decode(json_string_value(v), n, p, cap, &got);
    if (rc == RP_ETOOBIG)
        return fail(msg, m_big, RP_ETOOBIG);
    if (rc != 0)
        return fail(msg, m_type, RP_EINVAL);
    b->present = 1;
    b->p = p;
    b->n = got;
    return 0;
}

static int get_alg(rp_arena *a, const json_t *root, const char **alg, const char **msg)
{
    const json_t *v = json_object_get(root, "alg");

    if (v == NULL || json_is_null(v))
        return fail(msg, "'alg' is required", RP_EINVAL);
    if (!plain_string(v) || json_string_length(v) == 0 || json_string_length(v) > RP_KVREQ_ALG_MAX)
        return fail(msg, "'alg' must be an algorithm name", RP_EINVAL);
    return dup_str(a, v, alg, msg);
}

static int check_root(const rp_arena *a, const json_t *root, const void *out, const char **msg)
{
    if (msg == NULL)
        return RP_EINVAL;
    if (a == NULL || out == NULL)
        return fail(msg, "invalid argument", RP_EINVAL);
    if (!json_is_object(root))
        return fail(msg, "the request body must be a JSON object", RP_EINVAL);
    return 0;
}

/* Parses body strictly into *root (an object). */
static int body_load(const char *body, size_t len, json_t **root, const char **msg)
{
    json_error_t je;

    if (msg == NULL)
        return RP_EINVAL;
    if (body == NULL || len == 0)
        return fail(msg, "the request body is empty", RP_EINVAL);
    if (len > RP_KVREQ_MAX_BODY)
        return fail(msg, "the request body is too large", RP_ETOOBIG);
    *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (*root == NULL) {
        /* jansson reports its own allocation failures as "out of memory" */
        if (strstr(je.text, "out of memory") != NULL)
            return fail(msg, M_NOMEM, RP_ENOMEM);
        return fail(msg, "the request body is not valid JSON", RP_EINVAL);
    }
    if (!json_is_object(*root)) {
        json_decref(*root);
        *root = NULL;
        return fail(msg, "the request body must be a JSON object", RP_EINVAL);
    }
    return 0;
}

/* Wipes the bytes of string member name of o, if it is one (jansson frees without wiping).
 * name NULL: nothing to wipe. */
static void wipe_member(json_t *o, const char *name)
{
    json_t *v = name ? json_object_get(o, name) : NULL;

    if (json_is_string(v))
        OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

/* ---------------------------------------------------------------- secrets */

int rp_kvreq_set_secret_json(rp_arena *a, const json_t *root, rp_kvreq_set_secret *out,
                             const char **msg)
{
    const json_t *v;
    char *val;
    size_t n;
    int rc = check_root(a, root, out, msg);

    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    v = json_object_get(root, "value");
    if (v == NULL || json_is_null(v))
        return fail(msg, "'value' is required", RP_EINVAL);
    if (!json_is_string(v))
        return fail(msg, "'value' must be a string", RP_EINVAL);
    n = json_string_length(v);
    if (n > RP_KVREQ_SECRET_MAX)
        return fail(msg, "'value' is longer than 25600 bytes", RP_ETOOBIG);
    val = rp_arena_alloc_secret(a, n + 1);
    if (val == NULL)
        return fail(msg, M_NOMEM, RP_ENOMEM);
    memcpy(val, json_string_value(v), n);
    val[n] = '\0';
    out->value = val;
    out->value_len = n;
    v = json_object_get(root, "contentType");
    if (v != NULL && !json_is_null(v)) {
        if (!plain_string(v) ||
            utf8_chars(json_string_value(v), json_string_length(v)) > RP_KVREQ_CONTENT_TYPE_MAX)
            return fail(msg, "'contentType' must be a string of at most 255 characters", RP_EINVAL);
        rc = dup_str(a, v, &out->content_type, msg);
        if (rc != 0)
            return rc;
    }
    rc = parse_tags(a, root, &out->tags, msg);
    if (rc == 0)
        rc = parse_attrs(root, &out->attrs, msg);
    return rc;
}

int rp_kvreq_update_secret_json(rp_arena *a, const json_t *root, rp_kvreq_update_secret *out,
                                const char **msg)
{
    const json_t *v;
    int rc = check_root(a, root, out, msg);

    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    v = json_object_get(root, "contentType");
    if (v != NULL) {
        out->has_content_type = 1;
        if (!json_is_null(v)) {
            if (!plain_string(v) ||
                utf8_chars(json_string_value(v), json_string_length(v)) > RP_KVREQ_CONTENT_TYPE_MAX)
                return fail(msg, "'contentType' must be a string of at most 255 characters",
                            RP_EINVAL);
            rc = dup_str(a, v, &out->content_type, msg);
            if (rc != 0)
                return rc;
        }
    }
    rc = parse_tags(a, root, &out->tags, msg);
    if (rc == 0)
        rc = parse_attrs(root, &out->attrs, msg);
    return rc;
}

/* ---------------------------------------------------------------- keys */

static const struct {
    const char *name;
    rp_kvkey_type type;
    int hsm;
} ktys[] = {
    {"RSA", RP_KVKEY_RSA, 0},
    {"RSA-HSM", RP_KVKEY_RSA, 1},
    {"EC", RP_KVKEY_EC, 0},
    {"EC-HSM", RP_KVKEY_EC, 1},
    {"oct", 0, 0},
    {"oct-HSM", 0, 1},
};

static const char *const crvs[] = {"P-256", "P-384", "P-521", "P-256K"};

int rp_kvreq_create_key_json(rp_arena *a, const json_t *root, rp_kvreq_create_key *out,
                             const char **msg)
{
    const json_t *v;
    size_t i;
    int rc = check_root(a, root, out, msg);

    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    v = json_object_get(root, "kty");
    if (v == NULL || json_is_null(v))
        return fail(msg, "'kty' is required", RP_EINVAL);
    for (i = 0; i < sizeof(ktys) / sizeof(ktys[0]); i++) {
        if (plain_string(v) && strcmp(json_string_value(v), ktys[i].name) == 0)
            break;
    }
    if (i == sizeof(ktys) / sizeof(ktys[0]))
        return fail(msg, "'kty' must be one of RSA, RSA-HSM, EC, EC-HSM, oct, oct-HSM", RP_EINVAL);
    out->kty = ktys[i].name;
    out->type = ktys[i].type;
    out->hsm = ktys[i].hsm;

    v = json_object_get(root, "key_size");
    if (v != NULL && !json_is_null(v)) {
        json_int_t ks;
        if (!json_is_integer(v))
            return fail(msg, "'key_size' must be an integer", RP_EINVAL);
        ks = json_integer_value(v);
        if (out->type == RP_KVKEY_RSA) {
            if (ks != 2048 && ks != 3072 && ks != 4096)
                return fail(msg, "'key_size' must be 2048, 3072 or 4096 for RSA keys", RP_EINVAL);
            out->key_size = (int)ks;
        } else if (out->type == 0) {
            if (ks != 128 && ks != 192 && ks != 256)
                return fail(msg, "'key_size' must be 128, 192 or 256 for oct keys", RP_EINVAL);
            out->key_size = (int)ks;
        }
    }
    if (out->key_size == 0 && out->type != RP_KVKEY_EC)
        out->key_size = out->type == RP_KVKEY_RSA ? 2048 : 256;

    v = json_object_get(root, "public_exponent");
    if (v != NULL && !json_is_null(v)) {
        json_int_t e;
        if (!json_is_integer(v))
            return fail(msg, "'public_exponent' must be an integer", RP_EINVAL);
        e = json_integer_value(v);
        if (e < 3 || (uint64_t)e > RP_KVKEY_RSA_E_MAX || (e & 1) == 0)
            return fail(msg, "'public_exponent' must be odd and between 3 and 4294967295",
                        RP_EINVAL);
        if (out->type == RP_KVKEY_RSA)
            out->public_exponent = (uint64_t)e;
    }

    v = json_object_get(root, "crv");
    if (v != NULL && !json_is_null(v)) {
        if (!plain_string(v))
            return fail(msg, "'crv' must be a string", RP_EINVAL);
        for (i = 0; i < sizeof(crvs) / sizeof(crvs[0]); i++) {
            if (strcmp(json_string_value(v), crvs[i]) == 0)
                break;
        }
        if (i == sizeof(crvs) / sizeof(crvs[0]))
            return fail(msg, "'crv' must be one of P-256, P-384, P-521, P-256K", RP_EINVAL);
        if (out->type == RP_KVKEY_EC)
            out->crv = crvs[i];
    }
    if (out->type == RP_KVKEY_EC && out->crv == NULL)
        out->crv = crvs[0];

    rc = parse_key_ops(root, &out->has_key_ops, &out->key_ops, msg);
    if (rc == 0)
        rc = parse_attrs(root, &out->attrs, msg);
    if (rc == 0)
        rc = parse_tags(a, root, &out->tags, msg);
    if (rc == 0)
        rc = parse_policy(a, root, NULL, &out->release_policy, msg);
    return rc;
}

static void key_cleanup(void *k)
{
    rp_kvkey_free(k);
}

int rp_kvreq_import_key_json(rp_arena *a, json_t *root, rp_kvreq_import_key *out, const char **msg)
{
    static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi", "k"};
    json_t *jwk, *v;
    const char *kty, *why = NULL;
    rp_kvkey *key = NULL;
    size_t i;
    int rc = check_root(a, root, out, msg);

    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    jwk = json_object_get(root, "key");
    if (jwk == NULL || json_is_null(jwk)) {
        rc = fail(msg, "'key' is required", RP_EINVAL);
        goto out;
    }
    if (!json_is_object(jwk)) {
        rc = fail(msg, "'key' must be a JSON Web Key object", RP_EINVAL);
        goto out;
    }
    v = json_object_get(root, "Hsm");
    if (v != NULL && !json_is_null(v) && !json_is_boolean(v)) {
        rc = fail(msg, "'Hsm' must be a boolean", RP_EINVAL);
        goto out;
    }
    out->hsm = json_is_true(v);
    v = json_object_get(jwk, "kty");
    kty = plain_string(v) ? json_string_value(v) : NULL;
    for (i = 0; kty != NULL && i < sizeof(ktys) / sizeof(ktys[0]); i++) {
        if (strcmp(kty, ktys[i].name) == 0)
            break;
    }
    if (kty == NULL || i == sizeof(ktys) / sizeof(ktys[0])) {
        rc =
            fail(msg, "'key.kty' must be one of RSA, RSA-HSM, EC, EC-HSM, oct, oct-HSM", RP_EINVAL);
        goto out;
    }
    out->kty = ktys[i].name;
    out->hsm |= ktys[i].hsm;
    rc = parse_key_ops(jwk, &out->has_key_ops, &out->key_ops, msg);
    if (rc != 0)
        goto out;
    rc = parse_attrs(root, &out->attrs, msg);
    if (rc == 0)
        rc = parse_tags(a, root, &out->tags, msg);
    if (rc == 0)
        rc = parse_policy(a, root, NULL, &out->release_policy, msg);
    if (rc != 0)
        goto out;
    rc = rp_kvkey_from_jwk(jwk, &key, &why);
    if (rc != 0) {
        rc = fail(msg, why != NULL ? why : "the key is not valid", rc);
        goto out;
    }
    if (rp_arena_add_cleanup(a, key_cleanup, key) != 0) {
        rp_kvkey_free(key);
        rc = fail(msg, M_NOMEM, RP_ENOMEM);
        goto out;
    }
    out->key = key;
out:
    if (json_is_object(jwk)) {
        for (i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
            wipe_member(jwk, priv[i]);
    }
    return rc;
}

int rp_kvreq_update_key_json(rp_arena *a, const json_t *root, rp_kvreq_update_key *out,
                             const char **msg)
{
    int rc = check_root(a, root, out, msg);

    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    rc = parse_key_ops(root, &out->has_key_ops, &out->key_ops, msg);
    if (rc == 0)
        rc = parse_attrs(root, &out->attrs, msg);
    if (rc == 0)
        rc = parse_tags(a, root, &out->tags, msg);
    if (rc == 0)
        rc = parse_policy(a, root, &out->has_release_policy, &out->release_policy, msg);
    return rc;
}

/* ---------------------------------------------------------------- key operations */

int rp_kvreq_key_op_json(rp_arena *a, const json_t *root, rp_kvreq_key_op *out, const char **msg)
{
    int rc = check_root(a, root, out, msg);

    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    rc = get_alg(a, root, &out->alg, msg);
    if (rc == 0)
        rc = get_bytes(a, root, "value", 1, RP_KVREQ_OP_VALUE_MAX, 1, &out->value, msg,
                       "'value' is required", "'value' must be a base64url string",
                       "'value' is longer than 16384 bytes");
    if (rc == 0)
        rc = get_bytes(a, root, "iv", 0, RP_KVREQ_OP_VALUE_MAX, 1, &out->iv, msg, NULL,
                       "'iv' must be a base64url string", "'iv' is longer than 16384 bytes");
    if (rc == 0)
        rc = get_bytes(a, root, "aad", 0, RP_KVREQ_OP_VALUE_MAX, 1, &out->aad, msg, NULL,
                       "'aad' must be a base64url string", "'aad' is longer than 16384 bytes");
    if (rc == 0)
        rc = get_bytes(a, root, "tag", 0, RP_KVREQ_OP_VALUE_MAX, 1, &out->tag, msg, NULL,
                       "'tag' must be a base64url string", "'tag' is longer than 16384 bytes");
    return rc;
}

int rp_kvreq_key_verify_json(rp_arena *a, const json_t *root, rp_kvreq_key_verify *out,
                             const char **msg)
{
    int rc = check_root(a, root, out, msg);

    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    rc = get_alg(a, root, &out->alg, msg);
    if (rc == 0)
        rc = get_bytes(a, root, "digest", 1, RP_KVREQ_OP_VALUE_MAX, 1, &out->digest, msg,
                       "'digest' is required", "'digest' must be a base64url string",
                       "'digest' is longer than 16384 bytes");
    if (rc == 0)
        rc = get_bytes(a, root, "value", 1, RP_KVREQ_OP_VALUE_MAX, 0, &out->value, msg,
                       "'value' is required", "'value' must be a base64url string",
                       "'value' is longer than 16384 bytes");
    return rc;
}

int rp_kvreq_restore_json(rp_arena *a, const json_t *root, rp_kvreq_restore *out, const char **msg)
{
    int rc = check_root(a, root, out, msg);

    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    return get_bytes(a, root, "value", 1, RP_KVREQ_RESTORE_MAX, 0, &out->value, msg,
                     "'value' is required", "'value' must be a base64url string",
                     "'value' is longer than 262144 bytes");
}

/* ---------------------------------------------------------------- bytes wrappers */

/*
 * The byte-body parsers: load the body strictly, run the parser over it, wipe the member that
 * held secret bytes in jansson's copy (wipe: its name, or NULL), free the tree.
 */
#define KVREQ_PARSER(name, type, wipe)                                                             \
    int rp_kvreq_parse_##name(rp_arena *a, const char *body, size_t len, type *out,                \
                              const char **msg)                                                    \
    {                                                                                              \
        json_t *root = NULL;                                                                       \
        int rc = body_load(body, len, &root, msg);                                                 \
                                                                                                   \
        if (rc != 0)                                                                               \
            return rc;                                                                             \
        rc = rp_kvreq_##name##_json(a, root, out, msg);                                            \
        wipe_member(root, wipe);                                                                   \
        json_decref(root);                                                                         \
        return rc;                                                                                 \
    }

KVREQ_PARSER(set_secret, rp_kvreq_set_secret, "value")
KVREQ_PARSER(update_secret, rp_kvreq_update_secret, NULL)
KVREQ_PARSER(create_key, rp_kvreq_create_key, NULL)
KVREQ_PARSER(import_key, rp_kvreq_import_key, NULL)
KVREQ_PARSER(update_key, rp_kvreq_update_key, NULL)
KVREQ_PARSER(key_op, rp_kvreq_key_op, "value")
KVREQ_PARSER(key_verify, rp_kvreq_key_verify, NULL)
KVREQ_PARSER(restore, rp_kvreq_restore, NULL)
