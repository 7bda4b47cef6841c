/*
 * authn_test.c - bearer token authentication against a real identity service: fresh and
 * cached tokens, and the refusals that must hold for cached tokens too (expiry, audience,
 * deleted principal), tokens from a key the server never had, and tokens after key rotation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/err.h"
#include "crypto/rootkey.h"
#include "iam/authn.h"
#include "iam/iam_int.h"
#include "store/store.h"
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#define SP_ID "11111111-1111-4111-8111-111111111111"

typedef struct fx {
    char dir[512];
    rp_rootkey *rk;
    rp_store *st;
    rp_iam *iam;
    uv_loop_t loop;
} fx;

static int exec_write(sqlite3 *db, void *arg)
{
    return rp_store_exec(db, arg);
}

static void sql(fx *f, const char *s)
{
    assert_int_equal(rp_store_write_sync(f->st, exec_write, (void *)s), 0);
    assert_int_equal(rp__iam_reload(f->iam), 0);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    char path[600], err[256];
    rp_iam_opts o = {0};

    rp_test_scratch("authn", f->dir, sizeof(f->dir));
    snprintf(path, sizeof(path), "%s/root.key", f->dir);
    assert_int_equal(rp_rootkey_file_create(path), 0);
    assert_int_equal(rp_rootkey_file_load(path, &f->rk), 0);
    snprintf(path, sizeof(path), "%s/rampart.db", f->dir);
    assert_int_equal(rp_store_open(path, &f->st), 0);
    snprintf(path, sizeof(path), "%s/audit.log", f->dir);
    o.domain = "rampart.test";
    o.https_port = 443;
    o.rootkey = f->rk;
    o.store = f->st;
    o.audit_path = path;
    assert_int_equal(rp_iam_open(&o, NULL, &f->iam, err, sizeof(err)), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(rp_iam_loop_start(f->iam, &f->loop), 0);
    sql(f, "INSERT INTO principals VALUES ('" SP_ID "', 'servicePrincipal', 'ci',"
           " '22222222-2222-4222-8222-222222222222', NULL, 'admin', 1);");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;

    rp_iam_loop_stop(f->iam);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    rp_iam_close(f->iam);
    rp_store_close(f->st);
    rp_rootkey_free(f->rk);
    rp_test_rmtree(f->dir);
    free(f);
    return 0;
}

static char *mint(fx *f, const char *resource, int64_t at)
{
    rp__snap *s = rp__iam_snap(f->iam);
    const rp__principal *p = rp__iam_principal(s, SP_ID);
    char *tok = NULL;
    int64_t exp;

    assert_non_null(p);
    assert_int_equal(rp__iam_mint(f->iam, s, p, resource, at, &tok, &exp), 0);
    return tok;
}

static void test_fresh_then_cached(void **state)
{
    fx *f = *state;
    char *tok = mint(f, "https://management.rampart.test", rp__now());
    rp_authn_stats a, b;
    rp_identity who;

    rp_authn_stats_get(&a);
    assert_int_equal(rp_authn_bearer(f->iam, tok, strlen(tok), "management", &who), RP_AUTHN_OK);
    assert_string_equal(who.id, SP_ID);
    assert_int_equal(who.kind, RP_PRINCIPAL_SP);
    assert_string_equal(who.via, "bearer");
    for (int i = 0; i < 100; i++)
        assert_int_equal(rp_authn_bearer(f->iam, tok, strlen(tok), "management", &who),
                         RP_AUTHN_OK);
    rp_authn_stats_get(&b);
    assert_int_equal(b.verified - a.verified, 1); /* one RSA verification, 100 cache hits */
    assert_int_equal(b.hits - a.hits, 100);
    /* The cached token is for management only. */
    assert_int_equal(rp_authn_bearer(f->iam, tok, strlen(tok), "vault", &who), RP_AUTHN_AUDIENCE);
    /* A copy differing in the last byte of the signature is not the cached token. */
    tok[strlen(tok) - 2] = tok[strlen(tok) - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(rp_authn_bearer(f->iam, tok, strlen(tok), "management", &who),
                     RP_AUTHN_INVALID);
    rp_free(tok);
}

static void test_expired_and_future(void **state)
{
    fx *f = *state;
    char *old = mint(f, "https://management.rampart.test", rp__now() - 2 * 3600);
    char *future = mint(f, "https://management.rampart.test", rp__now() + 600);
    rp_identity who;

    assert_int_equal(rp_authn_bearer(f->iam, old, strlen(old), "management", &who),
                     RP_AUTHN_EXPIRED);
    assert_int_equal(rp_authn_bearer(f->iam, future, strlen(future), "management", &who),
                     RP_AUTHN_EXPIRED);
    rp_free(old);
    rp_free(future);
}

static void test_deleted_principal_revokes_cached(void **state)
{
    fx *f = *state;
    char *tok = mint(f, "https://management.rampart.test", rp__now());
    rp_identity who;

    assert_int_equal(rp_authn_bearer(f->iam, tok, strlen(tok), "management", &who), RP_AUTHN_OK);
    sql(f, "DELETE FROM principals WHERE id = '" SP_ID "'");
    assert_int_equal(rp_authn_bearer(f->iam, tok, strlen(tok), "management", &who),
                     RP_AUTHN_REVOKED);
    rp_free(tok);
}

static void test_foreign_key_and_rotation(void **state)
{
    fx *f = *state;
    char *tok = mint(f, "https://management.rampart.test", rp__now());
    rp_jwt_key *other = NULL;
    rp_jwt *j = NULL;
    char *forged = NULL;
    size_t n;
    rp_identity who;
    rp__snap *s = rp__iam_snap(f->iam);

    /* Same claims and kid, signed by a key the server never had. */
    assert_int_equal(rp_jwt_decode(tok, strlen(tok), RP_JWT_ES256, &j), RP_JWT_OK);
    assert_int_equal(rp_jwt_key_generate_p256(rp_jwt_key_kid(s->keys[0].key), &other), 0);
    assert_int_equal(rp_jwt_sign(other, RP_JWT_ES256, NULL, rp_jwt_claims(j), &forged, &n), 0);
    assert_int_equal(rp_authn_bearer(f->iam, forged, n, "management", &who), RP_AUTHN_INVALID);
    rp_free(forged);
    rp_jwt_key_free(other);
    /* An RSA key under the server's kid, and RS256: the algorithm does not fit the key. */
    assert_int_equal(rp_jwt_key_generate_rsa(2048, rp_jwt_key_kid(s->keys[0].key), &other), 0);
    assert_int_equal(rp_jwt_sign(other, RP_JWT_RS256, NULL, rp_jwt_claims(j), &forged, &n), 0);
    assert_int_equal(rp_authn_bearer(f->iam, forged, n, "management", &who), RP_AUTHN_INVALID);
    /* Rotation: the old key still verifies until its tokens have expired. */
    assert_int_equal(rp_iam_rotate_keys(f->iam, 1), 0);
    assert_int_equal(rp_authn_bearer(f->iam, tok, strlen(tok), "management", &who), RP_AUTHN_OK);
    /* Garbage of every kind is refused, never accepted. */
    assert_int_equal(rp_authn_bearer(f->iam, "", 0, "management", &who), RP_AUTHN_INVALID);
    assert_int_equal(rp_authn_bearer(f->iam, "a.b.c", 5, "management", &who), RP_AUTHN_INVALID);
    assert_int_equal(rp_authn_bearer(f->iam, tok, strlen(tok), "nonesuch", &who), RP_AUTHN_INVALID);
    rp_jwt_free(j);
    rp_jwt_key_free(other);
    rp_free(forged);
    rp_free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_then_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_and_future, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_principal_revokes_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_key_and_rotation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
