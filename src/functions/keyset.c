/*
 * keyset.c - a function app's keys document (see keyset.h for the contract).
 *
 * Workload: parsed when an app's keys change or the server starts (a few dozen keys), read on
 * every keyed call. A set is one array of entries, each with its own copies; lookups scan it.
 * Each entry keeps its value's SHA-256, made here once, so that a call digests only the key it
 * was given (fnkeys.h rp_fn_key_level).
 */
#include "functions/keyset.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"
#include "functions/fnconfig.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct entry {
    rp_fn_key_kind kind;
    char *fn; /* RP_FN_KEY_FUNCTION only */
    char *name;
    char *value;
    size_t value_len;
    unsigned char digest[RP_FN_KEY_DIGEST_LEN]; /* of value; wiped with it */
} entry;

struct rp_fn_keyset {
    entry *e;
    size_t n;
};

static void entry_wipe(entry *e)
{
    if (e->value != NULL) {
        OPENSSL_cleanse(e->value, e->value_len);
        rp_free(e->value);
    }
    OPENSSL_cleanse(e->digest, sizeof(e->digest));
    rp_free(e->fn);
    rp_free(e->name);
}

void rp_fn_keyset_free(rp_fn_keyset *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->n; i++)
        entry_wipe(&k->e[i]);
    rp_free(k->e);
    rp_free(k);
}

static int fn_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > RP_FN_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9' && i > 0) || ((s[i] == '_' || s[i] == '-') && i > 0)))
            return 0;
    return 1;
}

static int add(rp_fn_keyset *k, rp_fn_key_kind kind, const char *fn, const char *name,
               const json_t *v, const char *where, char *err, size_t cap)
{
    const char *s = json_string_value(v);
    entry *e;

    if (s == NULL || !rp_fn_key_value_ok(s, json_string_length(v)) ||
        strlen(s) != json_string_length(v))
        return rp_errf(err, cap, RP_EPARSE, "%s.%s: not a valid key value", where,
                       rp_fn_key_name_ok(name) ? name : "?");
    if (kind != RP_FN_KEY_MASTER && (!rp_fn_key_name_ok(name) || strcmp(name, "_master") == 0))
        return rp_errf(err, cap, RP_EPARSE, "%s: '%s' is not a valid key name", where,
                       rp_fn_key_name_ok(name) ? name : "?");
    e = &k->e[k->n];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->name = rp_strdup(name);
    e->value = rp_strdup(s);
    e->fn = fn != NULL ? rp_strdup(fn) : NULL;
    e->value_len = strlen(s);
    k->n++;
    if (e->name == NULL || e->value == NULL || (fn != NULL && e->fn == NULL))
        return RP_ENOMEM;
    return rp_fn_key_digest(e->value, e->value_len, e->digest);
}

static int scope_obj(rp_fn_keyset *k, const json_t *o, rp_fn_key_kind kind, const char *fn,
                     const char *where, char *err, size_t cap)
{
    const char *name;
    const json_t *v;
    int rc;

    if (o == NULL)
        return 0;
    if (!json_is_object(o))
        return rp_errf(err, cap, RP_EPARSE, "%s: must be an object", where);
    if (json_object_size(o) > RP_FN_KEYS_PER_SCOPE)
        return rp_errf(err, cap, RP_ETOOBIG, "%s: more than %d keys", where, RP_FN_KEYS_PER_SCOPE);
    json_object_foreach((json_t *)o, name, v)
    {
        if ((rc = add(k, kind, fn, name, v, where, err, cap)) != 0)
            return rc;
    }
    return 0;
}

int rp_fn_keyset_parse(const json_t *doc, rp_fn_keyset **out, char *err, size_t cap)
{
    const json_t *fns = json_object_get(doc, "functions"), *v;
    rp_fn_keyset *k = NULL;
    const char *key;
    size_t total = 1;
    int rc;

    *out = NULL;
    if (err != NULL && cap > 0)
        err[0] = '\0';
    if (!json_is_object(doc))
        return rp_errf(err, cap, RP_EPARSE, "keys: must be an object");
    json_object_foreach((json_t *)doc, key, v)
    {
        if (strcmp(key, "master") != 0 && strcmp(key, "system") != 0 && strcmp(key, "host") != 0 &&
            strcmp(key, "functions") != 0)
            return rp_errf(err, cap, RP_EPARSE, "keys: unknown member '%s'",
                           rp_fn_key_name_ok(key) ? key : "?");
    }
    if (fns != NULL && !json_is_object(fns))
        return rp_errf(err, cap, RP_EPARSE, "functions: must be an object");
    if (json_object_size(fns) > RP_FN_FUNCTIONS_KEYED_MAX)
        return rp_errf(err, cap, RP_ETOOBIG, "functions: too many functions");
    /* Bound the entries before allocating: each scope is checked again as it is read. */
    total += json_object_size(json_object_get(doc, "system")) +
             json_object_size(json_object_get(doc, "host"));
    json_object_foreach((json_t *)fns, key, v) total += json_object_size(v);
    if (total > 1 + (2 + RP_FN_FUNCTIONS_KEYED_MAX) * RP_FN_KEYS_PER_SCOPE)
        return rp_errf(err, cap, RP_ETOOBIG, "keys: too many keys");
    if ((k = rp_calloc(1, sizeof(*k))) == NULL ||
        (k->e = rp_calloc(total, sizeof(entry))) == NULL) {
        rc = RP_ENOMEM;
        goto fail;
    }
    if (json_object_get(doc, "master") == NULL) {
        rc = rp_errf(err, cap, RP_EPARSE, "master: required");
        goto fail;
    }
    if ((rc = add(k, RP_FN_KEY_MASTER, NULL, RP_FN_MASTER_NAME, json_object_get(doc, "master"),
                  "keys", err, cap)) != 0 ||
        (rc = scope_obj(k, json_object_get(doc, "system"), RP_FN_KEY_SYSTEM, NULL, "system", err,
                        cap)) != 0 ||
        (rc = scope_obj(k, json_object_get(doc, "host"), RP_FN_KEY_HOST, NULL, "host", err, cap)) !=
            0)
        goto fail;
    json_object_foreach((json_t *)fns, key, v)
    {
        char where[32 + RP_FN_NAME_MAX];
        if (!fn_name_ok(key)) {
            rc = rp_errf(err, cap, RP_EPARSE, "functions: a function name is not valid");
            goto fail;
        }
        snprintf(where, sizeof(where), "functions.%s", key);
        if ((rc = scope_obj(k, v, RP_FN_KEY_FUNCTION, key, where, err, cap)) != 0)
            goto fail;
    }
    *out = k;
    return 0;
fail:
    rp_fn_keyset_free(k);
    return rc;
}

json_t *rp_fn_keyset_json(const rp_fn_keyset *k)
{
    json_t *doc = json_pack("{s:{},s:{},s:{}}", "system", "host", "functions"), *o;
    int bad = doc == NULL;

    for (size_t i = 0; !bad && i < k->n; i++) {
        const entry *e = &k->e[i];
        json_t *v = json_stringn(e->value, e->value_len);
        switch (e->kind) {
        case RP_FN_KEY_MASTER: bad = json_object_set_new(doc, "master", v) != 0; break;
        case RP_FN_KEY_SYSTEM:
            bad = json_object_set_new(json_object_get(doc, "system"), e->name, v) != 0;
            break;
        case RP_FN_KEY_HOST:
            bad = json_object_set_new(json_object_get(doc, "host"), e->name, v) != 0;
            break;
        case RP_FN_KEY_FUNCTION:
            o = json_object_get(json_object_get(doc, "functions"), e->fn);
            if (o == NULL) {
                o = json_object();
                bad = o == NULL ||
                      json_object_set_new(json_object_get(doc, "functions"), e->fn, o) != 0;
            }
            bad = bad || json_object_set_new(o, e->name, v) != 0;
            break;
        }
    }
    if (bad) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

int rp_fn_keyset_for(const rp_fn_keyset *k, const char *fn, rp_fn_key *keys, size_t cap, size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < k->n; i++) {
        const entry *e = &k->e[i];
        if (e->kind == RP_FN_KEY_FUNCTION && (fn == NULL || strcasecmp(e->fn, fn) != 0))
            continue;
        if (*n >= cap)
            return RP_ETOOBIG;
        keys[*n] = (rp_fn_key){e->kind, e->name, e->value, e->value_len, e->digest};
        (*n)++;
    }
    return 0;
}

const char *rp_fn_keyset_get(const rp_fn_keyset *k, const char *scope, const char *name)
{
    for (size_t i = 0; i < k->n; i++) {
        const entry *e = &k->e[i];
        int match = 0;
        switch (e->kind) {
        case RP_FN_KEY_MASTER: match = strcmp(scope, "master") == 0; break;
        case RP_FN_KEY_SYSTEM: match = strcmp(scope, "system") == 0; break;
        case RP_FN_KEY_HOST: match = strcmp(scope, "host") == 0; break;
        case RP_FN_KEY_FUNCTION:
            match = strncmp(scope, "functions/", 10) == 0 && strcasecmp(scope + 10, e->fn) == 0;
            break;
        }
        if (match && strcmp(e->name, name) == 0)
            return e->value;
    }
    return NULL;
}

/* ---- editing ------------------------------------------------------------------------------- */

/* The object holding scope's keys in doc (created when create is 1), or NULL. A function's is
 * found ignoring case. */
static json_t *scope_get(json_t *doc, const char *scope, int create)
{
    json_t *o, *fns, *v;
    const char *key;

    if (strcmp(scope, "system") == 0 || strcmp(scope, "host") == 0) {
        o = json_object_get(doc, scope);
        if (o == NULL && create && (o = json_object()) != NULL &&
            json_object_set_new(doc, scope, o) != 0)
            return NULL;
        return o;
    }
    if (strncmp(scope, "functions/", 10) != 0 || !fn_name_ok(scope + 10))
        return NULL;
    fns = json_object_get(doc, "functions");
    if (fns == NULL && create && (fns = json_object()) != NULL &&
        json_object_set_new(doc, "functions", fns) != 0)
        return NULL;
    json_object_foreach(fns, key, v) if (strcasecmp(key, scope + 10) == 0) return v;
    if (!create || json_object_size(fns) >= RP_FN_FUNCTIONS_KEYED_MAX)
        return NULL;
    o = json_object();
    if (o == NULL || json_object_set_new(fns, scope + 10, o) != 0)
        return NULL;
    return o;
}

int rp_fn_keyset_set(json_t *doc, const char *scope, const char *name, const char *value)
{
    char gen[RP_FN_KEY_LEN + 1];
    json_t *o;
    int rc = 0;

    if (value != NULL && !rp_fn_key_value_ok(value, strlen(value)))
        return RP_EINVAL;
    if (value == NULL) {
        if (rp_fn_key_generate(gen) != 0)
            return RP_EIO;
        value = gen;
    }
    if (strcmp(scope, "master") == 0) {
        if (strcmp(name, RP_FN_MASTER_NAME) != 0)
            rc = RP_EINVAL;
        else if (json_object_set_new(doc, "master", json_string(value)) != 0)
            rc = RP_ENOMEM;
        goto out;
    }
    if (!rp_fn_key_name_ok(name) || strcmp(name, RP_FN_MASTER_NAME) == 0) {
        rc = RP_EINVAL;
        goto out;
    }
    o = scope_get(doc, scope, 1);
    if (o == NULL)
        rc = strncmp(scope, "functions/", 10) == 0 && fn_name_ok(scope + 10) ? RP_ETOOBIG
                                                                             : RP_EINVAL;
    else if (json_object_get(o, name) == NULL && json_object_size(o) >= RP_FN_KEYS_PER_SCOPE)
        rc = RP_ETOOBIG;
    else if (json_object_set_new(o, name, json_string(value)) != 0)
        rc = RP_ENOMEM;
out:
    OPENSSL_cleanse(gen, sizeof(gen));
    return rc;
}

int rp_fn_keyset_delete(json_t *doc, const char *scope, const char *name)
{
    json_t *o;

    if (strcmp(scope, "master") == 0)
        return RP_EINVAL;
    o = scope_get(doc, scope, 0);
    if (o == NULL && strcmp(scope, "system") != 0 && strcmp(scope, "host") != 0 &&
        strncmp(scope, "functions/", 10) != 0)
        return RP_EINVAL;
    if (o == NULL || json_object_get(o, name) == NULL)
        return RP_ENOENT;
    return json_object_del(o, name) == 0 ? 0 : RP_ENOMEM;
}

int rp_fn_keyset_new(const char *const *fns, size_t nfn, json_t **out)
{
    json_t *doc = json_pack("{s:s,s:{},s:{},s:{}}", "master", "x", "system", "host", "functions");
    int rc;

    *out = NULL;
    if (doc == NULL)
        return RP_ENOMEM;
    if ((rc = rp_fn_keyset_set(doc, "master", RP_FN_MASTER_NAME, NULL)) != 0 ||
        (rc = rp_fn_keyset_set(doc, "host", RP_FN_DEFAULT_KEY, NULL)) != 0 ||
        (rc = rp_fn_keyset_add_defaults(doc, fns, nfn)) < 0) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

int rp_fn_keyset_add_defaults(json_t *doc, const char *const *fns, size_t nfn)
{
    char scope[16 + RP_FN_NAME_MAX];
    int added = 0, rc;

    for (size_t i = 0; i < nfn; i++) {
        json_t *o;
        if ((size_t)snprintf(scope, sizeof(scope), "functions/%s", fns[i]) >= sizeof(scope))
            return RP_EINVAL;
        o = scope_get(doc, scope, 0);
        if (o != NULL && json_object_size(o) > 0)
            continue;
        if ((rc = rp_fn_keyset_set(doc, scope, RP_FN_DEFAULT_KEY, NULL)) != 0)
            return rc;
        added++;
    }
    return added;
}
