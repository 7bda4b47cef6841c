/*
 * kvreq_test.c - Key Vault request bodies and names: a table of good and bad bodies for every
 * parser (malformed JSON, duplicate members, wrong types, missing members), the limits at and
 * one past the edge (secret value 25600/25601 bytes, 15/16 tags, tag and contentType lengths in
 * characters, decoded KeyOperation and restore sizes), what the structs carry (tri-state
 * enabled, null nbf/exp, defaults of CreateKey, lenient base64url), and ImportKey building a key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"
#include "vault/kvreq.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SET_SECRET, UPDATE_SECRET, CREATE_KEY, IMPORT_KEY, UPDATE_KEY, KEY_OP, KEY_VERIFY, RESTORE };

/* Runs parser p on body; returns its code and the message in *msg. */
static int run(rp_arena *a, int p, const char *body, size_t len, const char **msg)
{
    union {
        rp_kvreq_set_secret ss;
        rp_kvreq_update_secret us;
        rp_kvreq_create_key ck;
        rp_kvreq_import_key ik;
        rp_kvreq_update_key uk;
        rp_kvreq_key_op op;
        rp_kvreq_key_verify kv;
        rp_kvreq_restore rs;
    } u;

    switch (p) {
    case SET_SECRET: return rp_kvreq_parse_set_secret(a, body, len, &u.ss, msg);
    case UPDATE_SECRET: return rp_kvreq_parse_update_secret(a, body, len, &u.us, msg);
    case CREATE_KEY: return rp_kvreq_parse_create_key(a, body, len, &u.ck, msg);
    case IMPORT_KEY: return rp_kvreq_parse_import_key(a, body, len, &u.ik, msg);
    case UPDATE_KEY: return rp_kvreq_parse_update_key(a, body, len, &u.uk, msg);
    case KEY_OP: return rp_kvreq_parse_key_op(a, body, len, &u.op, msg);
    case KEY_VERIFY: return rp_kvreq_parse_key_verify(a, body, len, &u.kv, msg);
    default: return rp_kvreq_parse_restore(a, body, len, &u.rs, msg);
    }
}

static const struct {
    int parser;
    const char *body;
    int rc;
    const char *msg; /* substring of the message, or NULL */
} table[] = {
    /* SetSecret */
    {SET_SECRET, "{\"value\":\"hunter2\"}", 0, NULL},
    {SET_SECRET, "{\"value\":\"\"}", 0, NULL},
    {SET_SECRET,
     "{\"value\":\"v\",\"tags\":{\"a\":\"b\"},\"contentType\":\"text/plain\","
     "\"attributes\":{\"enabled\":true,\"nbf\":1700000000,\"exp\":1900000000}}",
     0, NULL},
    {SET_SECRET, "{\"value\":\"v\",\"attributes\":{}}", 0, NULL},
    {SET_SECRET,
     "{\"value\":\"v\",\"attributes\":{\"created\":\"x\",\"updated\":[],\"recoveryLevel\":1,"
     "\"recoverableDays\":\"90\",\"whatever\":{}}}",
     0, NULL},
    {SET_SECRET, "{\"value\":\"v\",\"unknown\":[1,2,{\"x\":null}],\"id\":7}", 0, NULL},
    {SET_SECRET, "{\"value\":\"v\",\"contentType\":null,\"tags\":null,\"attributes\":null}", 0,
     NULL},
    {SET_SECRET, "{\"value\":\"\\u00e9\\ud83d\\ude00\"}", 0, NULL},
    {SET_SECRET, "", RP_EINVAL, "empty"},
    {SET_SECRET, "   ", RP_EINVAL, "JSON"},
    {SET_SECRET, "{", RP_EINVAL, "JSON"},
    {SET_SECRET, "{\"value\":\"a\"} x", RP_EINVAL, "JSON"},
    {SET_SECRET, "{\"value\":\"a\",}", RP_EINVAL, "JSON"},
    {SET_SECRET, "[\"value\"]", RP_EINVAL, "object"},
    {SET_SECRET, "\"value\"", RP_EINVAL, NULL},
    {SET_SECRET, "null", RP_EINVAL, NULL},
    {SET_SECRET, "{}", RP_EINVAL, "'value' is required"},
    {SET_SECRET, "{\"value\":null}", RP_EINVAL, "'value' is required"},
    {SET_SECRET, "{\"value\":\"a\",\"value\":\"b\"}", RP_EINVAL, "JSON"},
    {SET_SECRET, "{\"value\":\"a\",\"tags\":{\"t\":\"1\",\"t\":\"2\"}}", RP_EINVAL, "JSON"},
    {SET_SECRET, "{\"value\":1}", RP_EINVAL, "'value' must be a string"},
    {SET_SECRET, "{\"value\":true}", RP_EINVAL, "'value'"},
    {SET_SECRET, "{\"value\":{\"a\":1}}", RP_EINVAL, "'value'"},
    {SET_SECRET, "{\"value\":\"a\\u0000b\"}", RP_EINVAL, "JSON"},
    {SET_SECRET, "{\"value\":\"\xff\"}", RP_EINVAL, "JSON"},
    {SET_SECRET, "{\"value\":\"\\ud800\"}", RP_EINVAL, "JSON"},
    {SET_SECRET, "{\"value\":\"v\",\"contentType\":5}", RP_EINVAL, "contentType"},
    {SET_SECRET, "{\"value\":\"v\",\"tags\":[]}", RP_EINVAL, "'tags'"},
    {SET_SECRET, "{\"value\":\"v\",\"tags\":\"a=b\"}", RP_EINVAL, "'tags'"},
    {SET_SECRET, "{\"value\":\"v\",\"tags\":{\"a\":1}}", RP_EINVAL, "'tags'"},
    {SET_SECRET, "{\"value\":\"v\",\"tags\":{\"a\":null}}", RP_EINVAL, "'tags'"},
    {SET_SECRET, "{\"value\":\"v\",\"tags\":{\"\":\"x\"}}", RP_EINVAL, "tag name"},
    {SET_SECRET, "{\"value\":\"v\",\"attributes\":[]}", RP_EINVAL, "'attributes'"},
    {SET_SECRET, "{\"value\":\"v\",\"attributes\":{\"enabled\":\"true\"}}", RP_EINVAL, "enabled"},
    {SET_SECRET, "{\"value\":\"v\",\"attributes\":{\"enabled\":1}}", RP_EINVAL, "enabled"},
    {SET_SECRET, "{\"value\":\"v\",\"attributes\":{\"nbf\":\"1700000000\"}}", RP_EINVAL, "nbf"},
    {SET_SECRET, "{\"value\":\"v\",\"attributes\":{\"nbf\":1.7e9}}", RP_EINVAL, "nbf"},
    {SET_SECRET, "{\"value\":\"v\",\"attributes\":{\"exp\":1.0}}", RP_EINVAL, "exp"},
    {SET_SECRET, "{\"value\":\"v\",\"attributes\":{\"exp\":-1}}", RP_EINVAL, "exp"},
    {SET_SECRET, "{\"value\":\"v\",\"attributes\":{\"exp\":253402300800}}", RP_EINVAL, "exp"},
    {SET_SECRET, "{\"value\":\"v\",\"attributes\":{\"exp\":99999999999999999999999}}", RP_EINVAL,
     "JSON"},
    /* UpdateSecret */
    {UPDATE_SECRET, "{}", 0, NULL},
    {UPDATE_SECRET, "{\"contentType\":null,\"tags\":null,\"attributes\":{\"exp\":null}}", 0, NULL},
    {UPDATE_SECRET, "{\"value\":\"ignored\",\"attributes\":{\"enabled\":false,\"exp\":1893456000}}",
     0, NULL},
    {UPDATE_SECRET, "", RP_EINVAL, "empty"},
    {UPDATE_SECRET, "[]", RP_EINVAL, "object"},
    {UPDATE_SECRET, "{\"contentType\":[]}", RP_EINVAL, "contentType"},
    {UPDATE_SECRET, "{\"attributes\":{\"enabled\":null,\"enabled\":true}}", RP_EINVAL, "JSON"},
    {UPDATE_SECRET, "{\"tags\":{\"a\":{}}}", RP_EINVAL, "'tags'"},
    /* CreateKey */
    {CREATE_KEY, "{\"kty\":\"RSA\"}", 0, NULL},
    {CREATE_KEY, "{\"kty\":\"RSA-HSM\",\"key_size\":4096,\"public_exponent\":3}", 0, NULL},
    {CREATE_KEY, "{\"kty\":\"EC\",\"crv\":\"P-521\"}", 0, NULL},
    {CREATE_KEY, "{\"kty\":\"EC-HSM\",\"key_size\":256}", 0, NULL},
    {CREATE_KEY, "{\"kty\":\"oct-HSM\",\"key_size\":128}", 0, NULL},
    {CREATE_KEY,
     "{\"kty\":\"RSA\",\"key_size\":2048,\"key_ops\":[\"wrapKey\",\"unwrapKey\"],"
     "\"attributes\":{\"enabled\":true,\"exportable\":false},\"tags\":{\"k\":\"v\"},"
     "\"release_policy\":{\"contentType\":\"application/json; charset=utf-8\",\"data\":\"e30\","
     "\"immutable\":false}}",
     0, NULL},
    {CREATE_KEY, "{}", RP_EINVAL, "'kty' is required"},
    {CREATE_KEY, "{\"kty\":\"rsa\"}", RP_EINVAL, "'kty'"},
    {CREATE_KEY, "{\"kty\":\"OKP\"}", RP_EINVAL, "'kty'"},
    {CREATE_KEY, "{\"kty\":7}", RP_EINVAL, "'kty'"},
    {CREATE_KEY, "{\"kty\":\"RSA\",\"key_size\":1024}", RP_EINVAL, "key_size"},
    {CREATE_KEY, "{\"kty\":\"RSA\",\"key_size\":\"2048\"}", RP_EINVAL, "key_size"},
    {CREATE_KEY, "{\"kty\":\"RSA\",\"key_size\":2048.0}", RP_EINVAL, "key_size"},
    {CREATE_KEY, "{\"kty\":\"oct\",\"key_size\":512}", RP_EINVAL, "key_size"},
    {CREATE_KEY, "{\"kty\":\"RSA\",\"public_exponent\":65536}", RP_EINVAL, "public_exponent"},
    {CREATE_KEY, "{\"kty\":\"RSA\",\"public_exponent\":1}", RP_EINVAL, "public_exponent"},
    {CREATE_KEY, "{\"kty\":\"RSA\",\"public_exponent\":4294967297}", RP_EINVAL, "public_exponent"},
    {CREATE_KEY, "{\"kty\":\"EC\",\"crv\":\"P-192\"}", RP_EINVAL, "'crv'"},
    {CREATE_KEY, "{\"kty\":\"EC\",\"crv\":256}", RP_EINVAL, "'crv'"},
    {CREATE_KEY, "{\"kty\":\"RSA\",\"key_ops\":\"sign\"}", RP_EINVAL, "key_ops"},
    {CREATE_KEY, "{\"kty\":\"RSA\",\"key_ops\":[\"Sign\"]}", RP_EINVAL, "key_ops"},
    {CREATE_KEY, "{\"kty\":\"RSA\",\"attributes\":{\"exportable\":\"no\"}}", RP_EINVAL,
     "exportable"},
    {CREATE_KEY, "{\"kty\":\"RSA\",\"release_policy\":\"x\"}", RP_EINVAL, "release_policy"},
    /* ImportKey: bodies that fail before any key material is looked at */
    {IMPORT_KEY, "{}", RP_EINVAL, "'key' is required"},
    {IMPORT_KEY, "{\"key\":\"x\"}", RP_EINVAL, "'key'"},
    {IMPORT_KEY, "{\"key\":{}}", RP_EINVAL, "kty"},
    {IMPORT_KEY, "{\"key\":{\"kty\":\"RSA\"},\"Hsm\":\"yes\"}", RP_EINVAL, "Hsm"},
    {IMPORT_KEY, "{\"key\":{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}}", RP_EINVAL,
     "public-only"},
    {IMPORT_KEY, "{\"key\":{\"kty\":\"oct\",\"k\":\"AAAA\"}}", RP_EUNSUPPORTED, "oct"},
    {IMPORT_KEY, "{\"key\":{\"kty\":\"EC\",\"key_ops\":[\"bogus\"]}}", RP_EINVAL, "key_ops"},
    /* UpdateKey */
    {UPDATE_KEY, "{}", 0, NULL},
    {UPDATE_KEY,
     "{\"key_ops\":[],\"attributes\":{\"enabled\":false},\"tags\":{},"
     "\"release_policy\":null}",
     0, NULL},
    {UPDATE_KEY,
     "{\"key_ops\":[\"encrypt\",\"decrypt\",\"sign\",\"verify\",\"wrapKey\","
     "\"unwrapKey\",\"import\",\"export\"]}",
     0, NULL},
    {UPDATE_KEY, "{\"key_ops\":[\"encrypt\",null]}", RP_EINVAL, "key_ops"},
    {UPDATE_KEY, "{\"tags\":5}", RP_EINVAL, "'tags'"},
    /* KeyOperation */
    {KEY_OP, "{\"alg\":\"RSA-OAEP\",\"value\":\"AQAB\"}", 0, NULL},
    {KEY_OP, "{\"alg\":\"RSA-OAEP\",\"value\":\"\"}", 0, NULL},
    {KEY_OP,
     "{\"alg\":\"A256GCM\",\"value\":\"AQAB\",\"iv\":\"AAAAAAAAAAAAAAAA\","
     "\"aad\":\"YWFk\",\"tag\":\"AAAAAAAAAAAAAAAAAAAAAA\"}",
     0, NULL},
    {KEY_OP, "{\"alg\":\"RS256\",\"value\":\"+/8=\"}", 0, NULL},
    {KEY_OP, "{\"alg\":\"RS256\",\"value\":\"-_8\"}", 0, NULL},
    {KEY_OP, "{\"value\":\"AQAB\"}", RP_EINVAL, "'alg' is required"},
    {KEY_OP, "{\"alg\":\"\",\"value\":\"AQAB\"}", RP_EINVAL, "'alg'"},
    {KEY_OP, "{\"alg\":[\"RS256\"],\"value\":\"AQAB\"}", RP_EINVAL, "'alg'"},
    {KEY_OP, "{\"alg\":\"RS256AAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"value\":\"AQAB\"}", RP_EINVAL,
     "'alg'"},
    {KEY_OP, "{\"alg\":\"RS256\"}", RP_EINVAL, "'value' is required"},
    {KEY_OP, "{\"alg\":\"RS256\",\"value\":null}", RP_EINVAL, "'value' is required"},
    {KEY_OP, "{\"alg\":\"RS256\",\"value\":42}", RP_EINVAL, "'value'"},
    {KEY_OP, "{\"alg\":\"RS256\",\"value\":\"A\"}", RP_EINVAL, "base64url"},
    {KEY_OP, "{\"alg\":\"RS256\",\"value\":\"AQ AB\"}", RP_EINVAL, "base64url"},
    {KEY_OP, "{\"alg\":\"RS256\",\"value\":\"AQAB\\n\"}", RP_EINVAL, "base64url"},
    {KEY_OP, "{\"alg\":\"RS256\",\"value\":\"AQ*B\"}", RP_EINVAL, "base64url"},
    {KEY_OP, "{\"alg\":\"RS256\",\"value\":\"A===\"}", RP_EINVAL, "base64url"},
    {KEY_OP, "{\"alg\":\"RS256\",\"value\":\"AQAB\",\"iv\":1}", RP_EINVAL, "'iv'"},
    {KEY_OP, "{\"alg\":\"RS256\",\"value\":\"AQAB\",\"tag\":\"%%\"}", RP_EINVAL, "'tag'"},
    {KEY_OP, "{\"alg\":\"RS256\",\"value\":\"AQAB\",\"aad\":{}}", RP_EINVAL, "'aad'"},
    /* KeyVerify */
    {KEY_VERIFY, "{\"alg\":\"ES256\",\"digest\":\"AQAB\",\"value\":\"AQAB\"}", 0, NULL},
    {KEY_VERIFY, "{\"alg\":\"ES256\",\"value\":\"AQAB\"}", RP_EINVAL, "'digest' is required"},
    {KEY_VERIFY, "{\"alg\":\"ES256\",\"digest\":\"AQAB\"}", RP_EINVAL, "'value' is required"},
    {KEY_VERIFY, "{\"digest\":\"AQAB\",\"value\":\"AQAB\"}", RP_EINVAL, "'alg' is required"},
    {KEY_VERIFY, "{\"alg\":\"ES256\",\"digest\":true,\"value\":\"AQAB\"}", RP_EINVAL, "'digest'"},
    /* Restore */
    {RESTORE, "{\"value\":\"AQAB\"}", 0, NULL},
    {RESTORE, "{}", RP_EINVAL, "'value' is required"},
    {RESTORE, "{\"value\":\"A\"}", RP_EINVAL, "base64url"},
    {RESTORE, "{\"value\":\"AQAB\",\"value\":\"AQAB\"}", RP_EINVAL, "JSON"},
};

static void test_table(void **state)
{
    rp_arena *a = rp_arena_create(4096);

    (void)state;
    assert_non_null(a);
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        const char *msg = NULL;
        int rc = run(a, table[i].parser, table[i].body, strlen(table[i].body), &msg);
        if (rc != table[i].rc ||
            (table[i].msg != NULL && (msg == NULL || strstr(msg, table[i].msg) == NULL)))
            fail_msg("case %zu (%s): rc %d msg '%s', want %d '%s'", i, table[i].body, rc,
                     msg ? msg : "(null)", table[i].rc, table[i].msg ? table[i].msg : "");
        if (rc != 0)
            assert_non_null(msg);
        rp_arena_reset(a);
    }
    /* every parser refuses an empty, NULL and oversized body */
    for (int p = SET_SECRET; p <= RESTORE; p++) {
        const char *msg = NULL;
        assert_int_equal(run(a, p, NULL, 0, &msg), RP_EINVAL);
        assert_int_equal(run(a, p, "{}", 0, &msg), RP_EINVAL);
        assert_int_equal(run(a, p, "{}", RP_KVREQ_MAX_BODY + 1, &msg), RP_ETOOBIG);
        assert_int_equal(run(a, p, "[]", 2, &msg), RP_EINVAL);
        assert_int_equal(run(a, p, "{\"a\":1,\"a\":2}", 13, &msg), RP_EINVAL);
    }
    rp_arena_destroy(a);
}

/* ---------------------------------------------------------------- names */

static void test_names(void **state)
{
    char buf[200];

    (void)state;
    assert_true(rp_kvreq_name_valid("db-pass", 7));
    assert_true(rp_kvreq_name_valid("A", 1));
    assert_true(rp_kvreq_name_valid("-", 1));
    assert_true(rp_kvreq_name_valid("0-Z-z-9", 7));
    assert_false(rp_kvreq_name_valid("a_b", 3));
    assert_false(rp_kvreq_name_valid("a.b", 3));
    assert_false(rp_kvreq_name_valid("a b", 3));
    assert_false(rp_kvreq_name_valid("a/b", 3));
    assert_false(rp_kvreq_name_valid("", 0));
    assert_false(rp_kvreq_name_valid(NULL, 0));
    assert_false(rp_kvreq_name_valid("s\xc3\xa9"
                                     "cret",
                                     7));
    assert_false(rp_kvreq_name_valid("ab\0c", 4));
    assert_false(rp_kvreq_name_valid("%41", 3));
    memset(buf, 'a', sizeof(buf));
    assert_true(rp_kvreq_name_valid(buf, 127));
    assert_false(rp_kvreq_name_valid(buf, 128));

    assert_true(rp_kvreq_version_valid("ea48fa61046af85c3bf3859df79408a3", 32));
    assert_false(rp_kvreq_version_valid("EA48FA61046AF85C3BF3859DF79408A3", 32));
    assert_false(rp_kvreq_version_valid("ea48fa61046af85c3bf3859df79408a", 31));
    assert_false(rp_kvreq_version_valid("ea48fa61046af85c3bf3859df79408a3a", 33));
    assert_false(rp_kvreq_version_valid("ga48fa61046af85c3bf3859df79408a3", 32));
    assert_false(rp_kvreq_version_valid("", 0));
}

/* ---------------------------------------------------------------- limits */

/* {"value":"<n x 'x'>"} in a new buffer. */
static char *value_body(const char *pre, size_t n, const char *fill_with, const char *post)
{
    size_t fl = strlen(fill_with), len = strlen(pre) + n * fl + strlen(post) + 1;
    char *b = malloc(len), *p = b;

    assert_non_null(b);
    memcpy(p, pre, strlen(pre));
    p += strlen(pre);
    for (size_t i = 0; i < n; i++, p += fl)
        memcpy(p, fill_with, fl);
    memcpy(p, post, strlen(post) + 1);
    return b;
}

static void test_secret_limits(void **state)
{
    rp_arena *a = rp_arena_create(4096);
    rp_kvreq_set_secret s;
    const char *msg = NULL;
    char *b;

    (void)state;
    b = value_body("{\"value\":\"", 25600, "x", "\"}");
    assert_int_equal(rp_kvreq_parse_set_secret(a, b, strlen(b), &s, &msg), 0);
    assert_int_equal(s.value_len, 25600);
    assert_int_equal(s.value[25600], '\0');
    free(b);
    b = value_body("{\"value\":\"", 25601, "x", "\"}");
    assert_int_equal(rp_kvreq_parse_set_secret(a, b, strlen(b), &s, &msg), RP_ETOOBIG);
    assert_non_null(strstr(msg, "25600"));
    assert_null(strstr(msg, "xxx")); /* never the value */
    free(b);
    /* bytes, not characters: 12800 two-byte characters fit, 12801 do not */
    b = value_body("{\"value\":\"", 12800, "\xc3\xa9", "\"}");
    assert_int_equal(rp_kvreq_parse_set_secret(a, b, strlen(b), &s, &msg), 0);
    free(b);
    b = value_body("{\"value\":\"", 12801, "\\u00e9", "\"}");
    assert_int_equal(rp_kvreq_parse_set_secret(a, b, strlen(b), &s, &msg), RP_ETOOBIG);
    free(b);

    /* contentType: 255 characters (multi-byte) fit, 256 do not */
    b = value_body("{\"value\":\"v\",\"contentType\":\"", 255, "\xc3\xa9", "\"}");
    assert_int_equal(rp_kvreq_parse_set_secret(a, b, strlen(b), &s, &msg), 0);
    assert_int_equal(strlen(s.content_type), 510);
    free(b);
    b = value_body("{\"value\":\"v\",\"contentType\":\"", 256, "c", "\"}");
    assert_int_equal(rp_kvreq_parse_set_secret(a, b, strlen(b), &s, &msg), RP_EINVAL);
    free(b);

    /* tag name and value: 512 characters fit, 513 do not */
    b = value_body("{\"value\":\"v\",\"tags\":{\"", 512, "\xe2\x82\xac", "\":\"x\"}}");
    assert_int_equal(rp_kvreq_parse_set_secret(a, b, strlen(b), &s, &msg), 0);
    free(b);
    b = value_body("{\"value\":\"v\",\"tags\":{\"", 513, "n", "\":\"x\"}}");
    assert_int_equal(rp_kvreq_parse_set_secret(a, b, strlen(b), &s, &msg), RP_EINVAL);
    assert_non_null(strstr(msg, "tag name"));
    free(b);
    b = value_body("{\"value\":\"v\",\"tags\":{\"n\":\"", 512, "v", "\"}}");
    assert_int_equal(rp_kvreq_parse_set_secret(a, b, strlen(b), &s, &msg), 0);
    free(b);
    b = value_body("{\"value\":\"v\",\"tags\":{\"n\":\"", 513, "v", "\"}}");
    assert_int_equal(rp_kvreq_parse_set_secret(a, b, strlen(b), &s, &msg), RP_EINVAL);
    assert_non_null(strstr(msg, "tag value"));
    free(b);

    /* 15 tags fit, 16 do not */
    {
        char body[1024];
        size_t n;
        for (int count = 15; count <= 16; count++) {
            n = (size_t)snprintf(body, sizeof(body), "{\"value\":\"v\",\"tags\":{");
            for (int i = 0; i < count; i++)
                n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"t%d\":\"%d\"", i ? "," : "",
                                      i, i);
            n += (size_t)snprintf(body + n, sizeof(body) - n, "}}");
            assert_int_equal(rp_kvreq_parse_set_secret(a, body, n, &s, &msg),
                             count == 15 ? 0 : RP_EINVAL);
            if (count == 15) {
                assert_int_equal(s.tags.count, 15);
                assert_true(s.tags.present);
                assert_non_null(strstr(s.tags.json, "\"t14\":\"14\""));
            } else {
                assert_non_null(strstr(msg, "15"));
            }
        }
    }
    rp_arena_destroy(a);
}

/* base64url of n bytes of value 0xab, in a body. */
static char *b64_body(const char *pre, size_t n, const char *post)
{
    unsigned char *raw = malloc(n + 1);
    char *enc = malloc(n / 3 * 4 + 8), *b;

    assert_non_null(raw);
    assert_non_null(enc);
    memset(raw, 0xab, n);
    assert_int_equal(rp_b64url_encode(raw, n, enc, n / 3 * 4 + 8), 0);
    b = value_body(pre, 1, enc, post);
    free(raw);
    free(enc);
    return b;
}

static void test_binary_limits(void **state)
{
    rp_arena *a = rp_arena_create(4096);
    rp_kvreq_key_op op;
    rp_kvreq_restore rs;
    const char *msg = NULL;
    char *b;

    (void)state;
    for (size_t n = 16382; n <= 16386; n++) {
        b = b64_body("{\"alg\":\"RSA-OAEP\",\"value\":\"", n, "\"}");
        assert_int_equal(rp_kvreq_parse_key_op(a, b, strlen(b), &op, &msg),
                         n <= 16384 ? 0 : RP_ETOOBIG);
        if (n <= 16384) {
            assert_int_equal(op.value.n, n);
            assert_int_equal(op.value.p[n - 1], 0xab);
        }
        free(b);
        rp_arena_reset(a);
    }
    b = b64_body("{\"alg\":\"A256GCM\",\"value\":\"AA\",\"aad\":\"", 16385, "\"}");
    assert_int_equal(rp_kvreq_parse_key_op(a, b, strlen(b), &op, &msg), RP_ETOOBIG);
    assert_non_null(strstr(msg, "'aad'"));
    free(b);
    for (size_t n = 262143; n <= 262145; n++) {
        b = b64_body("{\"value\":\"", n, "\"}");
        assert_int_equal(rp_kvreq_parse_restore(a, b, strlen(b), &rs, &msg),
                         n <= 262144 ? 0 : RP_ETOOBIG);
        if (n <= 262144)
            assert_int_equal(rs.value.n, n);
        free(b);
        rp_arena_reset(a);
    }
    /* far over the limit: refused before decoding */
    b = value_body("{\"alg\":\"RS256\",\"value\":\"", 100000, "AAAA", "\"}");
    assert_int_equal(rp_kvreq_parse_key_op(a, b, strlen(b), &op, &msg), RP_ETOOBIG);
    free(b);
    rp_arena_destroy(a);
}

/* ---------------------------------------------------------------- struct contents */

static void test_contents(void **state)
{
    rp_arena *a = rp_arena_create(4096);
    const char *msg = NULL;
    const char *body;

    (void)state;
    {
        rp_kvreq_set_secret s;
        body = "{\"value\":\"hunter2\",\"contentType\":\"text/plain\",\"tags\":{\"b\":\"2\","
               "\"a\":\"1\"},\"attributes\":{\"enabled\":false,\"nbf\":1700000000,\"exp\":null}}";
        assert_int_equal(rp_kvreq_parse_set_secret(a, body, strlen(body), &s, &msg), 0);
        assert_string_equal(s.value, "hunter2");
        assert_int_equal(s.value_len, 7);
        assert_string_equal(s.content_type, "text/plain");
        assert_string_equal(s.tags.json, "{\"b\":\"2\",\"a\":\"1\"}");
        assert_int_equal(s.tags.count, 2);
        assert_int_equal(s.attrs.enabled, 0);
        assert_true(s.attrs.has_nbf);
        assert_int_equal(s.attrs.nbf, 1700000000);
        assert_true(s.attrs.has_exp);
        assert_int_equal(s.attrs.exp, 0);
        assert_int_equal(s.attrs.exportable, -1);

        body = "{\"value\":\"v\"}";
        assert_int_equal(rp_kvreq_parse_set_secret(a, body, strlen(body), &s, &msg), 0);
        assert_null(s.content_type);
        assert_false(s.tags.present);
        assert_null(s.tags.json);
        assert_int_equal(s.attrs.enabled, -1);
        assert_false(s.attrs.has_nbf);
        assert_false(s.attrs.has_exp);
    }
    {
        rp_kvreq_update_secret u;
        body = "{\"contentType\":null,\"tags\":null,\"attributes\":{\"enabled\":true,"
               "\"exp\":1893456000}}";
        assert_int_equal(rp_kvreq_parse_update_secret(a, body, strlen(body), &u, &msg), 0);
        assert_true(u.has_content_type);
        assert_null(u.content_type);
        assert_true(u.tags.present);
        assert_null(u.tags.json);
        assert_int_equal(u.attrs.enabled, 1);
        assert_false(u.attrs.has_nbf);
        assert_int_equal(u.attrs.exp, 1893456000);
        body = "{\"attributes\":{\"enabled\":null}}";
        assert_int_equal(rp_kvreq_parse_update_secret(a, body, strlen(body), &u, &msg), 0);
        assert_false(u.has_content_type);
        assert_false(u.tags.present);
        assert_int_equal(u.attrs.enabled, -1);
    }
    {
        rp_kvreq_create_key c;
        body = "{\"kty\":\"RSA\"}";
        assert_int_equal(rp_kvreq_parse_create_key(a, body, strlen(body), &c, &msg), 0);
        assert_string_equal(c.kty, "RSA");
        assert_int_equal(c.type, RP_KVKEY_RSA);
        assert_int_equal(c.key_size, 2048);
        assert_int_equal(c.public_exponent, 0);
        assert_null(c.crv);
        assert_false(c.hsm);
        assert_false(c.has_key_ops);
        assert_null(c.release_policy);
        body = "{\"kty\":\"EC-HSM\",\"key_ops\":[\"sign\"],\"release_policy\":{\"data\":\"e30\"}}";
        assert_int_equal(rp_kvreq_parse_create_key(a, body, strlen(body), &c, &msg), 0);
        assert_int_equal(c.type, RP_KVKEY_EC);
        assert_true(c.hsm);
        assert_string_equal(c.crv, "P-256");
        assert_int_equal(c.key_size, 0);
        assert_true(c.has_key_ops);
        assert_int_equal(c.key_ops, RP_KVOP_SIGN);
        assert_string_equal(c.release_policy, "{\"data\":\"e30\"}");
        body = "{\"kty\":\"RSA\",\"key_size\":3072,\"public_exponent\":3,\"crv\":\"P-384\"}";
        assert_int_equal(rp_kvreq_parse_create_key(a, body, strlen(body), &c, &msg), 0);
        assert_int_equal(c.key_size, 3072);
        assert_int_equal(c.public_exponent, 3);
        assert_null(c.crv); /* crv is for EC keys only */
        body = "{\"kty\":\"oct\"}";
        assert_int_equal(rp_kvreq_parse_create_key(a, body, strlen(body), &c, &msg), 0);
        assert_int_equal(c.type, 0);
        assert_int_equal(c.key_size, 256);
    }
    {
        rp_kvreq_update_key u;
        body = "{\"release_policy\":null,\"key_ops\":[\"verify\"]}";
        assert_int_equal(rp_kvreq_parse_update_key(a, body, strlen(body), &u, &msg), 0);
        assert_true(u.has_release_policy);
        assert_null(u.release_policy);
        assert_true(u.has_key_ops);
        assert_int_equal(u.key_ops, RP_KVOP_VERIFY);
        assert_false(u.tags.present);
    }
    {
        rp_kvreq_key_op op;
        rp_kvreq_key_verify kv;
        /* the same bytes in base64url, padded, and standard alphabet */
        static const char *const forms[] = {"-_-_", "+/+/", "-/+_"};
        for (size_t i = 0; i < 3; i++) {
            char buf[128];
            snprintf(buf, sizeof(buf), "{\"alg\":\"RSA-OAEP\",\"value\":\"%s\"}", forms[i]);
            assert_int_equal(rp_kvreq_parse_key_op(a, buf, strlen(buf), &op, &msg), 0);
            assert_int_equal(op.value.n, 3);
            assert_memory_equal(op.value.p, "\xfb\xff\xbf", 3);
            assert_false(op.iv.present);
        }
        body = "{\"alg\":\"RSA1_5\",\"value\":\"QQ==\",\"iv\":\"\"}";
        assert_int_equal(rp_kvreq_parse_key_op(a, body, strlen(body), &op, &msg), 0);
        assert_string_equal(op.alg, "RSA1_5");
        assert_int_equal(op.value.n, 1);
        assert_int_equal(op.value.p[0], 'A');
        assert_true(op.iv.present);
        assert_int_equal(op.iv.n, 0);
        assert_non_null(op.iv.p);
        body = "{\"alg\":\"ES256\",\"digest\":\"AAEC\",\"value\":\"BAUG\"}";
        assert_int_equal(rp_kvreq_parse_key_verify(a, body, strlen(body), &kv, &msg), 0);
        assert_memory_equal(kv.digest.p, "\x00\x01\x02", 3);
        assert_memory_equal(kv.value.p, "\x04\x05\x06", 3);
    }
    rp_arena_destroy(a);
}

/* ---------------------------------------------------------------- ImportKey */

static void b64_param(EVP_PKEY *pk, const char *param, int width, char *out, size_t cap)
{
    BIGNUM *bn = NULL;
    unsigned char buf[600];
    int len;

    assert_int_equal(EVP_PKEY_get_bn_param(pk, param, &bn), 1);
    len = width ? BN_bn2binpad(bn, buf, width) : BN_bn2bin(bn, buf);
    assert_int_equal(rp_b64url_encode(buf, (size_t)len, out, cap), 0);
    BN_clear_free(bn);
}

static void test_import_key(void **state)
{
    rp_arena *a = rp_arena_create(4096);
    EVP_PKEY *pk = EVP_EC_gen("P-384");
    char x[80], y[80], d[80], body[1024];
    rp_kvreq_import_key ik;
    const char *msg = NULL;
    json_t *pub = NULL;
    rp_kvkey *kept;

    (void)state;
    assert_non_null(pk);
    b64_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, 48, x, sizeof(x));
    b64_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, 48, y, sizeof(y));
    b64_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, 48, d, sizeof(d));
    snprintf(body, sizeof(body),
             "{\"Hsm\":false,\"key\":{\"kty\":\"EC-HSM\",\"crv\":\"P-384\",\"x\":\"%s\","
             "\"y\":\"%s\",\"d\":\"%s\",\"key_ops\":[\"sign\",\"verify\"]},"
             "\"attributes\":{\"enabled\":true,\"exportable\":true},\"tags\":{\"a\":\"b\"}}",
             x, y, d);
    assert_int_equal(rp_kvreq_parse_import_key(a, body, strlen(body), &ik, &msg), 0);
    assert_string_equal(ik.kty, "EC-HSM");
    assert_true(ik.hsm);
    assert_true(ik.has_key_ops);
    assert_int_equal(ik.key_ops, RP_KVOP_SIGN | RP_KVOP_VERIFY);
    assert_int_equal(ik.attrs.exportable, 1);
    assert_int_equal(ik.tags.count, 1);
    assert_non_null(ik.key);
    assert_string_equal(rp_kvkey_crv(ik.key), "P-384");
    assert_int_equal(rp_kvkey_public_jwk(ik.key, "kid", ik.kty, ik.key_ops, &pub), 0);
    assert_string_equal(json_string_value(json_object_get(pub, "x")), x);
    json_decref(pub);
    /* the arena owns the key; a reference outlives it */
    kept = rp_kvkey_ref(ik.key);
    rp_arena_reset(a);
    assert_int_equal(rp_kvkey_bits(kept), 384);
    rp_kvkey_free(kept);

    /* the _json form wipes the private member in the caller's tree */
    {
        json_t *root = json_loads(body, 0, NULL);
        const char *dv;
        assert_non_null(root);
        assert_int_equal(rp_kvreq_import_key_json(a, root, &ik, &msg), 0);
        dv = json_string_value(json_object_get(json_object_get(root, "key"), "d"));
        for (size_t i = 0; i < strlen(d); i++)
            assert_int_equal(dv[i], 0);
        json_decref(root);
    }
    /* an inconsistent key: d of another key */
    {
        EVP_PKEY *pk2 = EVP_EC_gen("P-384");
        char d2[80];
        b64_param(pk2, OSSL_PKEY_PARAM_PRIV_KEY, 48, d2, sizeof(d2));
        snprintf(body, sizeof(body),
                 "{\"key\":{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"%s\",\"y\":\"%s\","
                 "\"d\":\"%s\"}}",
                 x, y, d2);
        assert_int_equal(rp_kvreq_parse_import_key(a, body, strlen(body), &ik, &msg), RP_EINVAL);
        assert_non_null(strstr(msg, "inconsistent"));
        EVP_PKEY_free(pk2);
    }
    EVP_PKEY_free(pk);
    rp_arena_destroy(a);
}

/* Allocation failure anywhere comes back as RP_ENOMEM ("out of memory"), never a crash or a
 * leak; after enough successful allocations every parser succeeds. */
static void test_oom(void **state)
{
    static const struct {
        int parser;
        const char *body;
    } bodies[] = {
        {SET_SECRET, "{\"value\":\"v\",\"contentType\":\"c\",\"tags\":{\"a\":\"b\"}}"},
        {UPDATE_SECRET, "{\"contentType\":\"c\",\"tags\":{\"a\":\"b\"}}"},
        {CREATE_KEY, "{\"kty\":\"RSA\",\"tags\":{\"a\":\"b\"},\"release_policy\":{}}"},
        {UPDATE_KEY, "{\"tags\":{\"a\":\"b\"},\"release_policy\":{}}"},
        {KEY_OP, "{\"alg\":\"A256GCM\",\"value\":\"AQAB\",\"iv\":\"AQAB\",\"aad\":\"AQAB\"}"},
        {KEY_VERIFY, "{\"alg\":\"ES256\",\"digest\":\"AQAB\",\"value\":\"AQAB\"}"},
        {RESTORE, "{\"value\":\"AQAB\"}"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        int rc = RP_ENOMEM;
        for (long n = 0; n < 64 && rc == RP_ENOMEM; n++) {
            rp_arena *a = rp_arena_create(1024);
            const char *msg = NULL;
            assert_non_null(a);
            rp_alloc_fail_after(n);
            rc = run(a, bodies[i].parser, bodies[i].body, strlen(bodies[i].body), &msg);
            rp_alloc_fail_after(-1);
            if (rc == RP_ENOMEM)
                assert_string_equal(msg, "out of memory");
            rp_arena_destroy(a);
        }
        assert_int_equal(rc, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),         cmocka_unit_test(test_names),
        cmocka_unit_test(test_secret_limits), cmocka_unit_test(test_binary_limits),
        cmocka_unit_test(test_contents),      cmocka_unit_test(test_import_key),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
