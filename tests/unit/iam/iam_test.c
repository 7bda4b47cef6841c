/*
 * iam_test.c - the identity service's state against a real store, root key and audit log:
 * tenant creation, sealed signing keys and rotation, snapshot lookups, minted tokens that
 * verify (and only under the right key), secrets, assertion replay and resource names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/err.h"
#include "crypto/rootkey.h"
#include "iam/iam_int.h"
#include "store/store.h"
#include "testutil.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

typedef struct fx {
    char dir[512];
    rp_rootkey *rk;
    rp_store *st;
    rp_iam *iam;
} fx;

static void fx_open_iam(fx *f)
{
    char audit[600], err[256];
    rp_iam_opts o = {0};

    snprintf(audit, sizeof(audit), "%s/audit.log", f->dir);
    o.domain = "rampart.test";
    o.https_port = 8443;
    o.rootkey = f->rk;
    o.store = f->st;
    o.audit_path = audit;
    o.identity_endpoint = "http://127.0.0.1:8459/msi/token";
    assert_int_equal(rp_iam_open(&o, NULL, &f->iam, err, sizeof(err)), 0);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    char path[600];

    rp_test_scratch("iam", f->dir, sizeof(f->dir));
    snprintf(path, sizeof(path), "%s/root.key", f->dir);
    assert_int_equal(rp_rootkey_file_create(path), 0);
    assert_int_equal(rp_rootkey_file_load(path, &f->rk), 0);
    snprintf(path, sizeof(path), "%s/rampart.db", f->dir);
    assert_int_equal(rp_store_open(path, &f->st), 0);
    fx_open_iam(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;

    rp_iam_close(f->iam);
    rp_store_close(f->st);
    rp_rootkey_free(f->rk);
    rp_test_rmtree(f->dir);
    free(f);
    return 0;
}

static int exec_write(sqlite3 *db, void *arg)
{
    return rp_store_exec(db, arg);
}

static void sql(fx *f, const char *s)
{
    assert_int_equal(rp_store_write_sync(f->st, exec_write, (void *)s), 0);
    assert_int_equal(rp__iam_reload(f->iam), 0);
}

static void test_tenant_is_stable(void **state)
{
    fx *f = *state;
    char tenant[37];

    assert_int_equal(strlen(rp_iam_tenant(f->iam)), 36);
    memcpy(tenant, rp_iam_tenant(f->iam), sizeof(tenant));
    assert_non_null(strstr(rp_iam_issuer(f->iam), tenant));
    assert_string_equal(f->iam->token_url + strlen(f->iam->token_url) - 18, "/oauth2/v2.0/token");
    rp_iam_close(f->iam);
    fx_open_iam(f);
    assert_string_equal(rp_iam_tenant(f->iam), tenant); /* same tenant after a restart */
}

static void test_signing_key_sealed_and_rotated(void **state)
{
    fx *f = *state;
    rp__snap *s = rp__iam_snap(f->iam);
    char kid0[64];
    sqlite3 *db;
    sqlite3_stmt *q;

    assert_int_equal(s->nkeys, 1);
    rp_strlcpy(kid0, rp_jwt_key_kid(s->keys[0].key), sizeof(kid0));
    rp__iam_snap_put(s);
    /* Not due: no new key. */
    assert_int_equal(rp_iam_rotate_keys(f->iam, 0), 0);
    s = rp__iam_snap(f->iam);
    assert_int_equal(s->nkeys, 1);
    rp__iam_snap_put(s);
    /* Forced: a new signing key, the old one kept for verification. */
    assert_int_equal(rp_iam_rotate_keys(f->iam, 1), 0);
    s = rp__iam_snap(f->iam);
    assert_int_equal(s->nkeys, 2);
    assert_string_not_equal(rp_jwt_key_kid(s->keys[0].key), kid0);
    assert_string_equal(rp_jwt_key_kid(s->keys[1].key), kid0);
    assert_non_null(rp__iam_verify_key(s, kid0));
    rp__iam_snap_put(s);
    /* What is stored is an envelope, never a DER private key. */
    assert_int_equal(rp_store_reader_open(f->st, &db), 0);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT sealed FROM signing_keys", -1, &q, NULL),
                     SQLITE_OK);
    while (sqlite3_step(q) == SQLITE_ROW) {
        const unsigned char *b = sqlite3_column_blob(q, 0);
        assert_memory_equal(b, "RPE1", 4);
        assert_true(b[4] != 0x30 || b[5] != 0x82); /* not a DER SEQUENCE */
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
}

static void add_sp(fx *f)
{
    unsigned char h[32];
    char hex[65], buf[1024];

    assert_int_equal(rp__iam_sha256("s3cret-value", 12, h), 0);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    snprintf(buf, sizeof(buf),
             "INSERT INTO principals VALUES ('11111111-1111-4111-8111-111111111111',"
             " 'servicePrincipal', 'ci', '22222222-2222-4222-8222-222222222222', NULL, 'admin', 1);"
             "INSERT INTO credentials (id, principal_id, type, hash, created_at, expires_at) VALUES"
             " ('k1', '11111111-1111-4111-8111-111111111111', 'secret', x'%s', 1, 4102444800);"
             "INSERT INTO credentials (id, principal_id, type, hash, created_at, expires_at) VALUES"
             " ('k2', '11111111-1111-4111-8111-111111111111', 'secret', x'%s', 1, 2);",
             hex, "00000000000000000000000000000000000000000000000000000000000000aa");
    sql(f, buf);
}

static void test_lookups_and_secrets(void **state)
{
    fx *f = *state;
    const rp__principal *p;
    rp__snap *s;

    add_sp(f);
    s = rp__iam_snap(f->iam);
    p = rp__iam_principal(s, "11111111-1111-4111-8111-111111111111");
    assert_non_null(p);
    assert_ptr_equal(rp__iam_principal_by_client(s, "22222222-2222-4222-8222-222222222222"), p);
    assert_ptr_equal(rp__iam_principal_ref(s, "sp:ci"), p);
    assert_ptr_equal(rp__iam_principal_ref(s, "sp:CI"), p);
    assert_null(rp__iam_principal_ref(s, "user:ci"));
    assert_null(rp__iam_principal_ref(s, "nobody"));
    assert_int_equal(p->ncreds, 2);
    assert_int_equal(rp__iam_check_secret(p, "s3cret-value", 12, 100), 0);
    assert_int_equal(rp__iam_check_secret(p, "s3cret-valuf", 12, 100), RP_EPERM);
    assert_int_equal(rp__iam_check_secret(p, "s3cret-value", 11, 100), RP_EPERM);
    assert_int_equal(rp__iam_check_secret(p, "", 0, 100), RP_EPERM);
    /* After the secret's expiry it no longer signs in, and says why. */
    assert_int_equal(rp__iam_check_secret(p, "s3cret-value", 12, 4102444800), RP_ETIMEDOUT);
    rp__iam_snap_put(s);
}

/* Interactive sign-in codes (authorize.c): single use, bound to client, redirect_uri, PKCE
 * verifier and a live user, short-lived, and a bounded table. */
static void issue(fx *f, const char *verifier, const char *principal, int64_t now, char *code)
{
    unsigned char h[32];
    char ch[48];

    assert_int_equal(rp__iam_sha256(verifier, strlen(verifier), h), 0);
    assert_int_equal(rp_b64url_encode(h, sizeof(h), ch, sizeof(ch)), 0);
    assert_int_equal(rp__iam_code_issue(f->iam, "https://app.rampart.test",
                                        "https://app.rampart.test:8443/.auth/login/aad/callback",
                                        ch, "n0nce", principal, "alice", now, code),
                     0);
}

static void test_signin_codes(void **state)
{
    fx *f = *state;
    const char *uid = "33333333-3333-4333-8333-333333333333", *cid = "https://app.rampart.test";
    const char *cb = "https://app.rampart.test:8443/.auth/login/aad/callback";
    const char *ver = "verifier-verifier-verifier-verifier-verifier-0123";
    char code[RP__CODE_LEN + 1];
    rp_iam_signin out;
    int64_t now = rp__now();

    sql(f, "INSERT INTO principals VALUES ('33333333-3333-4333-8333-333333333333', 'user', "
           "'alice', '44444444-4444-4444-8444-444444444444', NULL, 'admin', 1);");
    issue(f, ver, uid, now, code);
    assert_int_equal(strlen(code), RP__CODE_LEN);
    assert_int_equal(rp_iam_signin_redeem(f->iam, code, cid, cb, ver, &out), 0);
    assert_string_equal(out.principal_id, uid);
    assert_string_equal(out.name, "alice");
    assert_string_equal(out.nonce, "n0nce");
    assert_int_equal(out.auth_time, now);
    /* Single use. */
    assert_int_equal(rp_iam_signin_redeem(f->iam, code, cid, cb, ver, &out), RP_ENOENT);
    assert_string_equal(out.principal_id, "");

    /* A wrong verifier, client or redirect_uri uses the code up as well. */
    issue(f, ver, uid, now, code);
    assert_int_equal(rp_iam_signin_redeem(f->iam, code, cid, cb,
                                          "verifier-verifier-verifier-verifier-verifier-0124",
                                          &out),
                     RP_EPERM);
    assert_int_equal(rp_iam_signin_redeem(f->iam, code, cid, cb, ver, &out), RP_ENOENT);
    issue(f, ver, uid, now, code);
    assert_int_equal(
        rp_iam_signin_redeem(f->iam, code, "https://other.rampart.test", cb, ver, &out), RP_EPERM);
    issue(f, ver, uid, now, code);
    assert_int_equal(
        rp_iam_signin_redeem(f->iam, code, cid, "https://app.rampart.test:8443/x", ver, &out),
        RP_EPERM);
    /* Expired (issued two minutes ago), malformed, or for a user who is gone. */
    issue(f, ver, uid, now - 2 * RP__CODE_TTL_S, code);
    assert_int_equal(rp_iam_signin_redeem(f->iam, code, cid, cb, ver, &out), RP_EPERM);
    assert_int_equal(rp_iam_signin_redeem(f->iam, "short", cid, cb, ver, &out), RP_EINVAL);
    issue(f, ver, uid, now, code);
    assert_int_equal(rp_iam_signin_redeem(f->iam, code, cid, cb, "too-short", &out), RP_EINVAL);
    issue(f, ver, "55555555-5555-4555-8555-555555555555", now, code);
    assert_int_equal(rp_iam_signin_redeem(f->iam, code, cid, cb, ver, &out), RP_EPERM);

    /* One user holds at most RP__CODES_PER_USER waiting codes (expired ones do not count). */
    {
        unsigned char h[32];
        char ch[48], pid[37];
        int rc = 0, issued = 0;
        assert_int_equal(rp__iam_sha256(ver, strlen(ver), h), 0);
        assert_int_equal(rp_b64url_encode(h, sizeof(h), ch, sizeof(ch)), 0);
        issue(f, ver, uid, now - 2 * RP__CODE_TTL_S, code); /* expired: does not count */
        while (rc == 0 && issued < 100) {
            rc = rp__iam_code_issue(f->iam, cid, cb, ch, NULL, uid, "alice", now, code);
            issued += rc == 0;
        }
        assert_int_equal(rc, RP_ETOOBIG);
        assert_true(issued <= RP__CODES_PER_USER);
        assert_true(issued >= RP__CODES_PER_USER - 2); /* the earlier waiting ones count */
        /* Others still get codes; the whole table holds RP__CODES_MAX. */
        issued = 0;
        rc = 0;
        for (int i = 0; rc == 0 && i < RP__CODES_MAX + 10; i++) {
            snprintf(pid, sizeof(pid), "p-%d", i);
            rc = rp__iam_code_issue(f->iam, cid, cb, ch, NULL, pid, "x", now, code);
            issued += rc == 0;
        }
        assert_int_equal(rc, RP_ETOOBIG);
        assert_true(issued > RP__CODES_MAX - 2 * RP__CODES_PER_USER);
        /* Too long a field is refused as such, not as a full table. */
        assert_int_equal(rp__iam_code_issue(f->iam, cid, cb, ch, NULL,
                                            "33333333-3333-4333-8333-"
                                            "333333333333-and-more",
                                            "x", now, code),
                         RP_EINVAL);
    }
}

static void test_mint_verifies(void **state)
{
    fx *f = *state;
    const char *aud = "https://vault.rampart.test";
    const char *auds[2] = {aud, NULL};
    rp_jwt_expect ex = {NULL, auds, 0, 60, 1, 0};
    rp__snap *s;
    char *tok = NULL;
    int64_t exp = 0, now = rp__now();
    rp_jwt *j = NULL;
    const rp__principal *p;

    add_sp(f);
    s = rp__iam_snap(f->iam);
    p = rp__iam_principal_ref(s, "sp:ci");
    assert_int_equal(rp__iam_mint(f->iam, s, p, aud, now, &tok, &exp), 0);
    assert_int_equal(exp, now + RP_IAM_TOKEN_LIFETIME_S);
    assert_int_equal(rp_jwt_decode(tok, strlen(tok), RP_JWT_RS256, &j), RP_JWT_ALG);
    assert_int_equal(rp_jwt_decode(tok, strlen(tok), RP_JWT_ES256, &j), RP_JWT_OK);
    assert_int_equal(rp_jwt_alg_of(j), RP_JWT_ES256);
    assert_string_equal(rp_jwt_kid(j), rp_jwt_key_kid(s->keys[0].key));
    assert_int_equal(rp_jwt_verify(j, rp__iam_verify_key(s, rp_jwt_kid(j))), RP_JWT_OK);
    ex.issuer = rp_iam_issuer(f->iam);
    ex.now = now;
    assert_int_equal(rp_jwt_check_claims(j, &ex), RP_JWT_OK);
    assert_string_equal(rp_jwt_claim_str(j, "oid"), p->id);
    assert_string_equal(rp_jwt_claim_str(j, "appid"), p->client_id);
    assert_string_equal(rp_jwt_claim_str(j, "tid"), rp_iam_tenant(f->iam));
    assert_string_equal(rp_jwt_claim_str(j, "idtyp"), "app");
    rp_jwt_free(j);
    rp__iam_snap_put(s);
    /* After a rotation the old token still verifies under the retired key... */
    assert_int_equal(rp_iam_rotate_keys(f->iam, 1), 0);
    s = rp__iam_snap(f->iam);
    assert_int_equal(rp_jwt_decode(tok, strlen(tok), RP_JWT_ES256, &j), RP_JWT_OK);
    assert_int_equal(rp_jwt_verify(j, rp__iam_verify_key(s, rp_jwt_kid(j))), RP_JWT_OK);
    /* ...but never under the new one. */
    assert_int_equal(rp_jwt_verify(j, s->keys[0].key), RP_JWT_SIGNATURE);
    rp_jwt_free(j);
    rp__iam_snap_put(s);
    rp_free(tok);
}

static void test_resources(void **state)
{
    fx *f = *state;

    assert_string_equal(rp__iam_resource_match(f->iam, "https://vault.rampart.test/.default", 35),
                        "https://vault.rampart.test");
    assert_non_null(rp__iam_resource_match(f->iam, "https://VAULT.rampart.test/", 27));
    assert_non_null(rp__iam_resource_match(f->iam, "https://management.rampart.test", 31));
    assert_null(rp__iam_resource_match(f->iam, "https://vault.azure.net/.default", 32));
    assert_null(rp__iam_resource_match(f->iam, "https://vault.rampart.test.evil/.default", 40));
    assert_null(rp__iam_resource_match(f->iam, "", 0));
    assert_string_equal(rp__iam_resource(f->iam, "storage"), "https://storage.rampart.test");
    assert_null(rp__iam_resource(f->iam, "stor"));
}

static void test_jti_replay(void **state)
{
    fx *f = *state;

    char jti[32];

    assert_int_equal(rp__iam_jti_seen(f->iam, "c1", "a", 1000, 900), 0);
    assert_int_equal(rp__iam_jti_seen(f->iam, "c1", "a", 1000, 950), RP_EEXIST);
    assert_int_equal(rp__iam_jti_seen(f->iam, "c1", "b", 1000, 950), 0);
    /* Ids are per client: another client may use the same one. */
    assert_int_equal(rp__iam_jti_seen(f->iam, "c2", "a", 1000, 950), 0);
    /* Forgotten only once the assertion could no longer be accepted anyway. */
    assert_int_equal(rp__iam_jti_seen(f->iam, "c1", "a", 5000, 1000 + RP_IAM_SKEW_S + 1), 0);
    /* One client cannot fill the table for everyone: its quota runs out, others go on. */
    for (int i = 0; i < RP__JTI_PER_CLIENT - 1; i++) {
        snprintf(jti, sizeof(jti), "q%d", i);
        assert_int_equal(rp__iam_jti_seen(f->iam, "c1", jti, 9000, 2000), 0);
    }
    assert_int_equal(rp__iam_jti_seen(f->iam, "c1", "one-more", 9000, 2000), RP_ETOOBIG);
    assert_int_equal(rp__iam_jti_seen(f->iam, "c3", "x", 9000, 2000), 0);
}

static void test_sessions(void **state)
{
    fx *f = *state;
    unsigned char h[32];
    char hex[65], buf[1024];
    rp__snap *s;
    const rp__session *x;

    assert_int_equal(rp__iam_sha256("hdr", 3, h), 0);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    snprintf(buf, sizeof(buf),
             "INSERT INTO identity_sessions VALUES ('s1', x'%s', '[\"a\",\"b\"]', 'admin', 1,"
             " 4102444800);"
             "INSERT INTO identity_sessions VALUES ('s2', x'%064d', '[\"c\"]', 'admin', 1, 2);",
             hex, 0);
    sql(f, buf);
    s = rp__iam_snap(f->iam);
    x = rp__iam_session(s, h);
    assert_non_null(x);
    assert_string_equal(x->id, "s1");
    assert_int_equal(x->nprincipals, 2);
    assert_string_equal(x->principals[0], "a");
    h[0] ^= 1;
    assert_null(rp__iam_session(s, h));
    assert_int_equal(s->nsessions, 1); /* the ended one is not loaded */
    rp__iam_snap_put(s);
}

static void test_system_identity_and_workload_session(void **state)
{
    fx *f = *state;
    char id[37], again[37], other[37], header[64], sid[37];
    const char *ep = NULL;
    const char *ids[2];
    unsigned char h[32];
    rp__snap *s;
    const rp__principal *p;
    const rp__session *x;

    assert_int_equal(rp_iam_system_identity(f->iam, "/apps/shop", id), 0);
    assert_int_equal(rp_iam_system_identity(f->iam, "/apps/shop", again), 0);
    assert_string_equal(id, again); /* one per resource */
    assert_int_equal(rp_iam_system_identity(f->iam, "/apps/shop/functions/pay", other), 0);
    assert_string_not_equal(id, other); /* and, beyond Azure, one per function */
    assert_int_equal(rp_iam_system_identity(f->iam, "/", other), RP_EINVAL);
    assert_int_equal(rp_iam_system_identity(f->iam, "/apps", other), RP_EINVAL);
    s = rp__iam_snap(f->iam);
    p = rp__iam_principal(s, id);
    assert_non_null(p);
    assert_int_equal(p->kind, RP_PRINCIPAL_MI);
    assert_string_equal(p->scope, "/apps/shop");
    /* Not a user-assigned identity: invisible to lookups by name. */
    assert_null(rp__iam_principal_by_name(s, RP_PRINCIPAL_MI, "/apps/shop"));
    rp__iam_snap_put(s);

    ids[0] = id;
    ids[1] = other;
    assert_int_equal(rp_iam_workload_session(f->iam, ids, 2, 600, header, sid, &ep), 0);
    assert_string_equal(ep, "http://127.0.0.1:8459/msi/token");
    assert_int_equal(strlen(header), 43);
    assert_int_equal(rp__iam_sha256(header, strlen(header), h), 0);
    s = rp__iam_snap(f->iam);
    x = rp__iam_session(s, h);
    assert_non_null(x);
    assert_string_equal(x->id, sid);
    assert_int_equal(x->nprincipals, 2);
    assert_string_equal(x->principals[0], id);
    rp__iam_snap_put(s);
    /* Only managed identities, a bounded lifetime, at least one identity. */
    ids[1] = "11111111-1111-4111-8111-111111111111";
    assert_int_equal(rp_iam_workload_session(f->iam, ids, 2, 600, header, sid, &ep), RP_EINVAL);
    assert_int_equal(rp_iam_workload_session(f->iam, ids, 1, 30, header, sid, &ep), RP_EINVAL);
    assert_int_equal(rp_iam_workload_session(f->iam, ids, 0, 600, header, sid, &ep), RP_EINVAL);

    assert_int_equal(rp_iam_system_identity_delete(f->iam, "/apps/shop"), 0);
    s = rp__iam_snap(f->iam);
    assert_null(rp__iam_principal(s, id));
    rp__iam_snap_put(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tenant_is_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signing_key_sealed_and_rotated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookups_and_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mint_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jti_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signin_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_system_identity_and_workload_session, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
