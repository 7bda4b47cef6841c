/*
 * keyset_test.c - unit tests for src/functions/keyset.c: the keys document's checks, the keys
 * that apply to one function's calls, and the edits (new set, defaults, set, regenerate,
 * delete).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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
    /* Host-level calls see no function's keys. */
    assert_int_equal(rp_fn_keyset_for(k, NULL, keys, RP_FN_KEYS_FOR_CALL, &n), 0);
    assert_int_equal(n, 3);
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
    (void)state;

    assert_int_equal(rp_fn_keyset_new(fns, 2, &doc), 0);
    assert_int_equal(rp_fn_keyset_parse(doc, &k, err, sizeof(err)), 0);
    assert_int_equal(strlen(rp_fn_keyset_get(k, "master", "_master")), RP_FN_KEY_LEN);
    assert_int_equal(strlen(rp_fn_keyset_get(k, "host", "default")), RP_FN_KEY_LEN);
    assert_non_null(rp_fn_keyset_get(k, "functions/orders", "default"));
    assert_string_not_equal(rp_fn_keyset_get(k, "functions/orders", "default"),
                            rp_fn_keyset_get(k, "functions/list", "default"));
    memcpy(master, rp_fn_keyset_get(k, "master", "_master"), sizeof(master));
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
    rp_fn_keyset_free(k);
    assert_int_equal(rp_fn_keyset_delete(doc, "functions/list", "ci"), 0);
    assert_int_equal(rp_fn_keyset_delete(doc, "functions/list", "ci"), RP_ENOENT);
    assert_int_equal(rp_fn_keyset_delete(doc, "master", "_master"), RP_EINVAL);
    assert_int_equal(rp_fn_keyset_delete(doc, "bogus", "x"), RP_EINVAL);
    assert_int_equal(rp_fn_keyset_parse(doc, &k, err, sizeof(err)), 0);
    assert_null(rp_fn_keyset_get(k, "functions/list", "ci"));
    rp_fn_keyset_free(k);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_lookup),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_too_many),
        cmocka_unit_test(test_new_defaults_and_edits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
