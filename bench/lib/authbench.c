/*
 * authbench.c - in-process cost of authentication, measured side by side in one run:
 *   cached    rp_authn_bearer on a token this thread has verified before (the common case)
 *   first     rp_authn_bearer on tokens never seen (decode + RS256 verify + claims)
 *   rs256/es256  bare signing and verification with each algorithm, side by side: the
 *             measurement behind the choice of ES256 for access tokens (docs/benchmarks.md)
 *   mint      minting new access tokens (claims + signature; issuance without HTTP)
 * Prints one JSON object. Usage: authbench [SECONDS_PER_CASE]
 */
#include "base/alloc.h"
#include "base/time.h"
#include "crypto/jwt.h"
#include "crypto/rootkey.h"
#include "iam/authn.h"
#include "iam/iam_int.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SP_ID "11111111-1111-4111-8111-111111111111"

static int exec_write(sqlite3 *db, void *arg)
{
    return rp_store_exec(db, arg);
}

static void die(const char *what)
{
    fprintf(stderr, "authbench: %s\n", what);
    exit(1);
}

static double now_s(void)
{
    return (double)rp_mono_us() / 1e6;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? strtod(argv[1], NULL) : 2.0;
    char dir[] = "/tmp/rp-authbench-XXXXXX", path[256], err[256];
    rp_rootkey *rk = NULL;
    rp_store *st = NULL;
    rp_iam *iam = NULL;
    rp_iam_opts o = {0};
    uv_loop_t loop;
    rp__snap *s;
    const rp__principal *p;
    char *tok = NULL, **toks;
    int64_t exp;
    rp_identity who;
    double t0, t;
    long n, first_n = 3000;
    double cached_ns, first_us, mint_per_s, rs_per_s, es_per_s, rs_sign_per_s, es_sign_per_s;

    if (mkdtemp(dir) == NULL)
        die("mkdtemp");
    snprintf(path, sizeof(path), "%s/root.key", dir);
    if (rp_rootkey_file_create(path) != 0 || rp_rootkey_file_load(path, &rk) != 0)
        die("root key");
    snprintf(path, sizeof(path), "%s/rampart.db", dir);
    if (rp_store_open(path, &st) != 0)
        die("store");
    snprintf(path, sizeof(path), "%s/audit.log", dir);
    o.domain = "rampart.bench";
    o.https_port = 443;
    o.rootkey = rk;
    o.store = st;
    o.audit_path = path;
    if (rp_iam_open(&o, NULL, &iam, err, sizeof(err)) != 0)
        die(err);
    if (uv_loop_init(&loop) != 0 || rp_iam_loop_start(iam, &loop) != 0)
        die("loop");
    if (rp_store_write_sync(st, exec_write,
                            "INSERT INTO principals VALUES ('" SP_ID "', 'servicePrincipal', 'b',"
                            " '22222222-2222-4222-8222-222222222222', NULL, 'admin', 1)") != 0 ||
        rp__iam_reload(iam) != 0)
        die("principal");
    s = rp__iam_snap(iam);
    p = rp__iam_principal(s, SP_ID);

    /* mint */
    n = 0;
    t0 = now_s();
    do {
        if (rp__iam_mint(iam, s, p, "https://management.rampart.bench", rp__now(), &tok, &exp))
            die("mint");
        rp_free(tok);
        n++;
    } while ((t = now_s() - t0) < secs);
    mint_per_s = (double)n / t;

    /* first-seen: distinct tokens, each verified once */
    toks = calloc((size_t)first_n, sizeof(*toks));
    for (long i = 0; i < first_n; i++)
        if (rp__iam_mint(iam, s, p, "https://management.rampart.bench", rp__now(), &toks[i], &exp))
            die("mint");
    t0 = now_s();
    for (long i = 0; i < first_n; i++)
        if (rp_authn_bearer(iam, toks[i], strlen(toks[i]), "management", &who) != RP_AUTHN_OK)
            die("first-seen verify");
    first_us = (now_s() - t0) * 1e6 / (double)first_n;

    /* cached: the same token again and again */
    tok = toks[0];
    n = 0;
    t0 = now_s();
    do {
        for (int i = 0; i < 10000; i++)
            if (rp_authn_bearer(iam, tok, strlen(tok), "management", &who) != RP_AUTHN_OK)
                die("cached verify");
        n += 10000;
    } while ((t = now_s() - t0) < secs);
    cached_ns = t * 1e9 / (double)n;

    /* bare RS256 vs ES256 verification */
    {
        rp_jwt_key *rsa = NULL, *ec = NULL;
        json_t *claims = json_pack("{s:s,s:i}", "sub", "bench", "exp", 2000000000);
        char *a = NULL, *b = NULL;
        size_t an, bn;
        rp_jwt *ja = NULL, *jb = NULL;

        if (rp_jwt_key_generate_rsa(2048, "r", &rsa) || rp_jwt_key_generate_p256("e", &ec) ||
            rp_jwt_sign(rsa, RP_JWT_RS256, NULL, claims, &a, &an) ||
            rp_jwt_sign(ec, RP_JWT_ES256, NULL, claims, &b, &bn) ||
            rp_jwt_decode(a, an, RP_JWT_RS256, &ja) || rp_jwt_decode(b, bn, RP_JWT_ES256, &jb))
            die("keys");
        n = 0;
        t0 = now_s();
        do {
            char *x = NULL;
            if (rp_jwt_sign(rsa, RP_JWT_RS256, NULL, claims, &x, &an) != 0)
                die("rs256 sign");
            rp_free(x);
            n++;
        } while ((t = now_s() - t0) < secs);
        rs_sign_per_s = (double)n / t;
        n = 0;
        t0 = now_s();
        do {
            char *x = NULL;
            if (rp_jwt_sign(ec, RP_JWT_ES256, NULL, claims, &x, &bn) != 0)
                die("es256 sign");
            rp_free(x);
            n++;
        } while ((t = now_s() - t0) < secs);
        es_sign_per_s = (double)n / t;
        n = 0;
        t0 = now_s();
        do {
            if (rp_jwt_verify(ja, rsa) != RP_JWT_OK)
                die("rs256");
            n++;
        } while ((t = now_s() - t0) < secs);
        rs_per_s = (double)n / t;
        n = 0;
        t0 = now_s();
        do {
            if (rp_jwt_verify(jb, ec) != RP_JWT_OK)
                die("es256");
            n++;
        } while ((t = now_s() - t0) < secs);
        es_per_s = (double)n / t;
        rp_jwt_free(ja);
        rp_jwt_free(jb);
        rp_free(a);
        rp_free(b);
        json_decref(claims);
        rp_jwt_key_free(rsa);
        rp_jwt_key_free(ec);
    }

    printf("{\"cached_ns\":%.0f,\"first_seen_us\":%.1f,\"mint_per_s\":%.0f,"
           "\"rs256_sign_per_s\":%.0f,\"es256_sign_per_s\":%.0f,"
           "\"rs256_verify_per_s\":%.0f,\"es256_verify_per_s\":%.0f,"
           "\"es256_over_rs256_sign\":%.2f,\"rs256_over_es256_verify\":%.2f}\n",
           cached_ns, first_us, mint_per_s, rs_sign_per_s, es_sign_per_s, rs_per_s, es_per_s,
           es_sign_per_s / rs_sign_per_s, rs_per_s / es_per_s);
    for (long i = 0; i < first_n; i++)
        rp_free(toks[i]);
    free(toks);
    rp_iam_loop_stop(iam);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    rp_iam_close(iam);
    rp_store_close(st);
    rp_rootkey_free(rk);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    if (system(path) != 0)
        return 1;
    return 0;
}
