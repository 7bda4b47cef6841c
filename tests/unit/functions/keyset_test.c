/*
 * keyset_test.c - unit tests for src/functions/keyset.c: the keys document's checks, the keys
 * that apply to one function's calls with the digests made when the set is parsed, and the
 * edits (new set, defaults, set, regenerate, delete) and the digests of the sets they lead to.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "functions/keyset.h"

#define V1 "value-one-0123456789"
#define V2 "value-two-0123456789"

static json_t *J(const char *s)
{
    json_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    return j;
}

static int parse(const char *s, rp_fn_keyset **k, char *err, size_t cap)
{
    json_t *j = J(s);
    int rc = rp_fn_keyset_parse(j, k, err, cap);
    json_decref(j);
    return rc;
}

/* Every key fn's calls see carries the digest of its current value. Returns how many. */
static size_t check_digests(const rp_fn_keyset *k, const char *fn)
{
    rp_fn_key keys[RP_FN_KEYS_FOR_CALL];
    unsigned char d[RP_FN_KEY_DIGEST_LEN];
    size_t n = 0;

    assert_int_equal(rp_fn_keyset_for(k, fn, keys, RP_FN_KEYS_FOR_CALL, &n), 0);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(keys[i].digest);
        assert_int_equal(rp_fn_key_digest(keys[i].value, keys[i].value_len, d), 0);
        assert_memory_equal(keys[i].digest, d, sizeof(d));
    }
    return n;
}

/* The level value grants on a call of fn (NULL: host level) in k; *name gets the key's name. */
static rp_fn_level level(const rp_fn_keyset *k, const char *fn, const char *value,
                         const char **name)
{
    rp_fn_key keys[RP_FN_KEYS_FOR_CALL];
    size_t n = 0;

    assert_int_equal(rp_fn_keyset_for(k, fn, keys, RP_FN_KEYS_FOR_CALL, &n), 0);
    return rp_fn_key_level(keys, n, value, value != NULL ? strlen(value) : 0, name);
}

static void test_parse_and_lookup(void **state)
{
    rp_fn_keyset *k = NULL;
    rp_fn_key keys[RP_FN_KEYS_FOR_CALL];
    char err[200];
    size_t n;
    const char *which = NULL;
    (void)state;

    assert_int_equal(parse("{\"master\":\"master-key-0123456789\",\"system\":{\"eventgrid_"
                           "extension\":\"" V1 "\"},\"host\":{\"default\":\"" V2 "\"},"
                           "\"functions\":{\"Orders\":{\"default\":\"fn-orders-0123456789\"},"
                           "\"list\":{\"a\":\"fn-list-a-0123456789\"}}}",
                           &k, err, sizeof(err)),
                     0);
    assert_string_equal(err, "");
    /* orders (any case): master, system, host, its own; not list's. */
    assert_int_equal(rp_fn_keyset_for(k, "ORDERS", keys, RP_FN_KEYS_FOR_CALL, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(rp_fn_key_level(keys, n, "fn-orders-0123456789", 20, &which),
                     RP_FN_LEVEL_FUNCTION);
    assert_string_equal(which, "default");
    assert_int_equal(rp_fn_key_level(keys, n, "fn-list-a-0123456789", 20, NULL), RP_FN_LEVEL_NONE);
    assert_int_equal(rp_fn_key_level(keys, n, "master-key-0123456789", 21, NULL),
                     RP_FN_LEVEL_ADMIN);
    assert_int_equal(rp_fn_key_level(keys, n, V1, strlen(V1), NULL), RP_FN_LEVEL_SYSTEM);
    assert_int_equal(rp_fn_key_level(keys, n, V2, strlen(V2), NULL), RP_FN_LEVEL_FUNCTION);
    assert_int_equal(check_digests(k, "orders"), 4);
    /* Host-level calls see no function's keys. */
    assert_int_equal(rp_fn_keyset_for(k, NULL, keys, RP_FN_KEYS_FOR_CALL, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(check_digests(k, NULL), 3);
    assert_int_equal(rp_fn_keyset_for(k, "orders", keys, 2, &n), RP_ETOOBIG);
    assert_string_equal(rp_fn_keyset_get(k, "functions/orders", "default"), "fn-orders-0123456789");
    assert_string_equal(rp_fn_keyset_get(k, "master", "_master"), "master-key-0123456789");
    assert_null(rp_fn_keyset_get(k, "host", "nope"));
    /* Round trip through the document. */
    {
        json_t *doc = rp_fn_keyset_json(k);
        rp_fn_keyset *k2 = NULL;
        assert_non_null(doc);
        assert_int_equal(rp_fn_keyset_parse(doc, &k2, err, sizeof(err)), 0);
        assert_string_equal(rp_fn_keyset_get(k2, "functions/list", "a"), "fn-list-a-0123456789");
        rp_fn_keyset_free(k2);
        json_decref(doc);
    }
    rp_fn_keyset_free(k);
}

static void test_levels_from_set(void **state)
{
    rp_fn_keyset *k = NULL;
    char err[200], big[RP_FN_KEY_VALUE_MAX + 2], doc[2 * RP_FN_KEY_VALUE_MAX];
    const char *name = NULL;
    (void)state;

    /* The longest value a set takes, as a host key. */
    memset(big, 'h', sizeof(big) - 1);
    big[RP_FN_KEY_VALUE_MAX] = '\0';
    snprintf(doc, sizeof(doc),
             "{\"master\":\"master-key-0123456789\",\"system\":{\"eventgrid_extension\":\"" V1
             "\"},\"host\":{\"default\":\"" V2 "\",\"big\":\"%s\"},\"functions\":{\"orders\":"
             "{\"default\":\"fn-orders-0123456789\",\"dup\":\"" V2 "\"}}}",
             big);
    assert_int_equal(parse(doc, &k, err, sizeof(err)), 0);
    assert_int_equal(check_digests(k, "orders"), 6);
    assert_int_equal(level(k, "orders", "master-key-0123456789", &name), RP_FN_LEVEL_ADMIN);
    assert_string_equal(name, RP_FN_MASTER_NAME);
    assert_int_equal(level(k, NULL, V1, &name), RP_FN_LEVEL_SYSTEM);
    assert_string_equal(name, "eventgrid_extension");
    /* V2 is a host key and one of orders': the host key is checked first. */
    assert_int_equal(level(k, "orders", V2, &name), RP_FN_LEVEL_FUNCTION);
    assert_string_equal(name, "default");
    assert_int_equal(level(k, "Orders", "fn-orders-0123456789", &name), RP_FN_LEVEL_FUNCTION);
    assert_string_equal(name, "default");
    assert_int_equal(level(k, NULL, "fn-orders-0123456789", &name), RP_FN_LEVEL_NONE);
    assert_null(name);
    assert_int_equal(level(k, "orders", big, &name), RP_FN_LEVEL_FUNCTION);
    assert_string_equal(name, "big");
    /* Wrong, a prefix, empty, nothing, one byte too long. */
    assert_int_equal(level(k, "orders", "master-key-012345678", NULL), RP_FN_LEVEL_NONE);
    assert_int_equal(level(k, "orders", "master-key-01234567890", NULL), RP_FN_LEVEL_NONE);
    assert_int_equal(level(k, "orders", "", NULL), RP_FN_LEVEL_NONE);
    assert_int_equal(level(k, "orders", NULL, NULL), RP_FN_LEVEL_NONE);
    big[RP_FN_KEY_VALUE_MAX] = 'h';
    big[RP_FN_KEY_VALUE_MAX + 1] = '\0';
    assert_int_equal(level(k, "orders", big, NULL), RP_FN_LEVEL_NONE);
    rp_fn_keyset_free(k);
}

static void test_refusals(void **state)
{
    static const struct {
        const char *doc;
        int rc;
        const char *msg;
    } bad[] = {
        {"[]", RP_EPARSE, "must be an object"},
        {"{}", RP_EPARSE, "master: required"},
        {"{\"master\":\"short\"}", RP_EPARSE, "not a valid key value"},
        {"{\"master\":7}", RP_EPARSE, "not a valid key value"},
        {"{\"master\":\"" V1 "\",\"extra\":{}}", RP_EPARSE, "unknown member 'extra'"},
        {"{\"master\":\"" V1 "\",\"host\":[]}", RP_EPARSE, "host: must be an object"},
        {"{\"master\":\"" V1 "\",\"host\":{\"bad name\":\"" V2 "\"}}", RP_EPARSE,
         "not a valid key name"},
        {"{\"master\":\"" V1 "\",\"host\":{\"_master\":\"" V2 "\"}}", RP_EPARSE,
         "not a valid key name"},
        {"{\"master\":\"" V1 "\",\"host\":{\"k\":\"has space 0123456789\"}}", RP_EPARSE,
         "host.k: not a valid key value"},
        {"{\"master\":\"" V1 "\",\"functions\":{\"1bad\":{}}}", RP_EPARSE,
         "function name is not valid"},
        {"{\"master\":\"" V1 "\",\"functions\":[]}", RP_EPARSE, "functions: must be an object"},
    };
    rp_fn_keyset *k = (rp_fn_keyset *)1;
    char err[200];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse(bad[i].doc, &k, err, sizeof(err));
        if (rc != bad[i].rc || strstr(err, bad[i].msg) == NULL)
            fail_msg("%s -> %d '%s'", bad[i].doc, rc, err);
        assert_null(k);
    }
}

static void test_too_many(void **state)
{
    json_t *doc = J("{\"master\":\"" V1 "\",\"host\":{}}");
    rp_fn_keyset *k = NULL;
    char name[16], err[200];
    (void)state;

    for (int i = 0; i < RP_FN_KEYS_PER_SCOPE; i++) {
        snprintf(name, sizeof(name), "k%d", i);
        assert_int_equal(rp_fn_keyset_set(doc, "host", name, NULL), 0);
    }
    assert_int_equal(rp_fn_keyset_set(doc, "host", "one-more", NULL), RP_ETOOBIG);
    /* Replacing one is fine when full. */
    assert_int_equal(rp_fn_keyset_set(doc, "host", "k3", V2), 0);
    assert_int_equal(rp_fn_keyset_parse(doc, &k, err, sizeof(err)), 0);
    assert_string_equal(rp_fn_keyset_get(k, "host", "k3"), V2);
    rp_fn_keyset_free(k);
    json_object_set_new(json_object_get(doc, "host"), "k99", json_string(V2));
    assert_int_equal(rp_fn_keyset_parse(doc, &k, err, sizeof(err)), RP_ETOOBIG);
    json_decref(doc);
}

static void test_new_defaults_and_edits(void **state)
{
    const char *fns[] = {"orders", "list"}, *more[] = {"ORDERS", "new1"};
    json_t *doc = NULL;
    rp_fn_keyset *k = NULL;
    char err[200], master[RP_FN_KEY_LEN + 1];
    const char *which = NULL;
    (void)state;

    assert_int_equal(rp_fn_keyset_new(fns, 2, &doc), 0);
    assert_int_equal(rp_fn_keyset_parse(doc, &k, err, sizeof(err)), 0);
    assert_int_equal(strlen(rp_fn_keyset_get(k, "master", "_master")), RP_FN_KEY_LEN);
    assert_int_equal(strlen(rp_fn_keyset_get(k, "host", "default")), RP_FN_KEY_LEN);
    assert_non_null(rp_fn_keyset_get(k, "functions/orders", "default"));
    assert_string_not_equal(rp_fn_keyset_get(k, "functions/orders", "default"),
                            rp_fn_keyset_get(k, "functions/list", "default"));
    memcpy(master, rp_fn_keyset_get(k, "master", "_master"), sizeof(master));
    assert_int_equal(check_digests(k, "orders"), 3);
    assert_int_equal(level(k, NULL, master, NULL), RP_FN_LEVEL_ADMIN);
    rp_fn_keyset_free(k);
    /* Defaults only for functions without keys (names ignore case). */
    assert_int_equal(rp_fn_keyset_add_defaults(doc, more, 2), 1);
    /* Regenerate the master key; set and delete a named key. */
    assert_int_equal(rp_fn_keyset_set(doc, "master", "_master", NULL), 0);
    assert_int_equal(rp_fn_keyset_set(doc, "master", "other", NULL), RP_EINVAL);
    assert_int_equal(rp_fn_keyset_set(doc, "functions/list", "ci", V1), 0);
    assert_int_equal(rp_fn_keyset_set(doc, "functions/list", "ci", "short"), RP_EINVAL);
    assert_int_equal(rp_fn_keyset_set(doc, "functions/1x", "ci", V1), RP_EINVAL);
    assert_int_equal(rp_fn_keyset_set(doc, "nowhere", "ci", V1), RP_EINVAL);
    assert_int_equal(rp_fn_keyset_set(doc, "host", "_master", V1), RP_EINVAL);
    assert_int_equal(rp_fn_keyset_parse(doc, &k, err, sizeof(err)), 0);
    assert_string_not_equal(rp_fn_keyset_get(k, "master", "_master"), master);
    assert_string_equal(rp_fn_keyset_get(k, "functions/LIST", "ci"), V1);
    assert_non_null(rp_fn_keyset_get(k, "functions/new1", "default"));
    /* The new set's digests are the new values': the old master key grants nothing, the
     * regenerated one admin, the key set by hand function. */
    assert_int_equal(check_digests(k, "list"), 4);
    assert_int_equal(check_digests(k, "new1"), 3);
    assert_int_equal(level(k, NULL, master, NULL), RP_FN_LEVEL_NONE);
    assert_int_equal(level(k, NULL, rp_fn_keyset_get(k, "master", "_master"), NULL),
                     RP_FN_LEVEL_ADMIN);
    assert_int_equal(level(k, "list", V1, &which), RP_FN_LEVEL_FUNCTION);
    assert_string_equal(which, "ci");
    assert_int_equal(level(k, "new1", rp_fn_keyset_get(k, "functions/new1", "default"), NULL),
                     RP_FN_LEVEL_FUNCTION);
    rp_fn_keyset_free(k);
    /* Setting a new value for an existing key: the old one stops working. */
    assert_int_equal(rp_fn_keyset_set(doc, "functions/list", "ci", V2), 0);
    assert_int_equal(rp_fn_keyset_parse(doc, &k, err, sizeof(err)), 0);
    assert_int_equal(check_digests(k, "list"), 4);
    assert_int_equal(level(k, "list", V1, NULL), RP_FN_LEVEL_NONE);
    assert_int_equal(level(k, "list", V2, &which), RP_FN_LEVEL_FUNCTION);
    assert_string_equal(which, "ci");
    rp_fn_keyset_free(k);
    assert_int_equal(rp_fn_keyset_delete(doc, "functions/list", "ci"), 0);
    assert_int_equal(rp_fn_keyset_delete(doc, "functions/list", "ci"), RP_ENOENT);
    assert_int_equal(rp_fn_keyset_delete(doc, "master", "_master"), RP_EINVAL);
    assert_int_equal(rp_fn_keyset_delete(doc, "bogus", "x"), RP_EINVAL);
    assert_int_equal(rp_fn_keyset_parse(doc, &k, err, sizeof(err)), 0);
    assert_null(rp_fn_keyset_get(k, "functions/list", "ci"));
    assert_int_equal(check_digests(k, "list"), 3);
    assert_int_equal(level(k, "list", V2, NULL), RP_FN_LEVEL_NONE);
    rp_fn_keyset_free(k);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_lookup),
        cmocka_unit_test(test_levels_from_set),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_too_many),
        cmocka_unit_test(test_new_defaults_and_edits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
