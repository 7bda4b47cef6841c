/*
 * oidc.c - external OpenID Connect issuers' signing keys: fetch thread, per-issuer key sets,
 * discovery and JWK Set parsers, token verification.
 *
 * Design notes (the contract is in oidc.h):
 *   - One table of at most RP_OIDC_MAX_ISSUERS entries under one mutex. Verify finds its
 *     issuer with a linear scan (a few dozen strcmp at most), takes a reference on the current
 *     key set and unlocks; the signature check, the slow part, runs unlocked on the caller's
 *     thread. Entries never move while the fetch thread works on one (busy), so the thread may
 *     keep a pointer to it across its unlocked fetch.
 *   - The fetch thread sleeps on a CLOCK_MONOTONIC condition variable until the earliest due
 *     entry; watch and on-demand refreshes move an entry's due time to now and signal it. It
 *     fetches one issuer at a time with one libcurl easy handle (connection reuse between the
 *     discovery document and the JWK Set, which usually share a host). Shutdown sets an atomic
 *     flag that the transfer's progress callback checks, so close never waits out a slow peer.
 *   - A JWK becomes an rp_jwt_key through SubjectPublicKeyInfo DER, so that crypto/jwt.c's
 *     loader applies its one set of key rules (RSA size and exponent, named P-256 only, point
 *     on the curve) to fetched keys as to every other key.
 *   - Failure reasons are built from our own words and libcurl's error text, never from the
 *     fetched documents, which are only as trustworthy as the issuer's TLS certificate.
 */
#include "iam/oidc.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/str.h"
#include "base/time.h"

#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define CA_PATH_MAX 4096
#define RSA_MAX_N   1024 /* modulus bytes (8192 bits); rp_jwt_key_from_der enforces >= 2048 */
#define RSA_MAX_E   8    /* exponent bytes: 65537 in practice; a huge e only costs time */
#define P256_COORD  32
#define BACKOFF_MAX 6 /* RP_OIDC_RETRY_S << 6 > RP_OIDC_REFRESH_S: the cap applies first */
#define WELL_KNOWN  "/.well-known/openid-configuration"
#define MS_PER_S    1000u

/* SubjectPublicKeyInfo of an EC P-256 key up to the point: SEQUENCE { SEQUENCE { id-ecPublicKey,
 * prime256v1 }, BIT STRING { 0 unused bits, 04 || x || y } }. */
static const unsigned char p256_spki_prefix[] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
    0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04};

/* ---------------------------------------------------------------- key sets */

typedef struct oidc_key {
    rp_jwt_key *key;
    unsigned algs; /* rp_jwt_alg bits this key may verify: by kty, narrowed by the JWK's alg */
} oidc_key;

struct rp_oidc_keys {
    atomic_int refs;
    size_t n;
    oidc_key k[]; /* n used */
};

size_t rp_oidc_keys_count(const rp_oidc_keys *ks)
{
    return ks != NULL ? ks->n : 0;
}

static const oidc_key *keys_find(const rp_oidc_keys *ks, const char *kid)
{
    if (ks == NULL || kid == NULL)
        return NULL;
    for (size_t i = 0; i < ks->n; i++)
        if (strcmp(rp_jwt_key_kid(ks->k[i].key), kid) == 0)
            return &ks->k[i];
    return NULL;
}

const rp_jwt_key *rp_oidc_keys_find(const rp_oidc_keys *ks, const char *kid)
{
    const oidc_key *k = keys_find(ks, kid);

    return k != NULL ? k->key : NULL;
}

rp_oidc_keys *rp_oidc_keys_ref(rp_oidc_keys *ks)
{
    if (ks != NULL)
        atomic_fetch_add_explicit(&ks->refs, 1, memory_order_relaxed);
    return ks;
}

void rp_oidc_keys_free(rp_oidc_keys *ks)
{
    if (ks == NULL)
        return;
    /* acq_rel: the thread that frees sees every other owner's last use of the set. */
    if (atomic_fetch_sub_explicit(&ks->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < ks->n; i++)
        rp_jwt_key_free(ks->k[i].key);
    rp_free(ks);
}

/* ---------------------------------------------------------------- parsing helpers */

/* 1 if v is a JSON string equal to lit (embedded NULs make it differ). */
static int str_is(const json_t *v, const char *lit)
{
    size_t n = strlen(lit);

    return json_is_string(v) && json_string_length(v) == n &&
           memcmp(json_string_value(v), lit, n) == 0;
}

/*
 * An https URL we are willing to hand to libcurl: "https://" (any case), a non-empty host
 * without userinfo, then only printable ASCII other than space, backslash and '#'. A query is
 * allowed only when query is set (jwks_uri may carry one; an issuer may not).
 */
static int https_url_ok(const char *s, size_t len, int query)
{
    size_t host;

    if (len <= 8 || strncasecmp(s, "https://", 8) != 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '#' || (c == '?' && !query))
            return 0;
    }
    host = strcspn(s + 8, "/?");
    if (host > len - 8)
        host = len - 8;
    if (host == 0 || memchr(s + 8, '@', host) != NULL)
        return 0;
    return 1;
}

/* Parses doc[0..n) as one JSON object, refusing duplicates. Messages give a position only: the
 * parser's own text can quote the document. 0, RP_EPARSE, RP_ENOMEM, RP_ETOOBIG. */
static int load_object(const char *doc, size_t n, json_t **out, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root;

    if (n > RP_OIDC_DOC_MAX)
        return rp_errf(err, errlen, RP_ETOOBIG, "document larger than %d bytes", RP_OIDC_DOC_MAX);
    root = json_loadb(doc != NULL ? doc : "", n, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        if (json_error_code(&je) == json_error_out_of_memory)
            return rp_errf(err, errlen, RP_ENOMEM, "out of memory");
        return rp_errf(err, errlen, RP_EPARSE, "not valid JSON (line %d, column %d)", je.line,
                       je.column);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return rp_errf(err, errlen, RP_EPARSE, "not a JSON object");
    }
    *out = root;
    return 0;
}

/* ---------------------------------------------------------------- discovery */

int rp_oidc_parse_discovery(const char *doc, size_t n, const char *issuer, char *jwks_uri,
                            size_t cap, char *err, size_t errlen)
{
    json_t *root = NULL, *v;
    const char *s;
    size_t len;
    int rc;

    if ((doc == NULL && n > 0) || issuer == NULL || jwks_uri == NULL || cap == 0)
        return rp_errf(err, errlen, RP_EINVAL, "bad arguments");
    rc = load_object(doc, n, &root, err, errlen);
    if (rc != 0)
        return rc;
    v = json_object_get(root, "issuer");
    if (!json_is_string(v)) {
        rc = rp_errf(err, errlen, RP_EPARSE, "\"issuer\" missing or not a string");
        goto out;
    }
    /* OpenID Connect Discovery 1.0, 4.3: exactly the URL the document was fetched for. */
    if (!str_is(v, issuer)) {
        rc = rp_errf(err, errlen, RP_EINVAL, "\"issuer\" is not the issuer asked for");
        goto out;
    }
    v = json_object_get(root, "jwks_uri");
    if (!json_is_string(v)) {
        rc = rp_errf(err, errlen, RP_EPARSE, "\"jwks_uri\" missing or not a string");
        goto out;
    }
    s = json_string_value(v);
    len = json_string_length(v);
    if (len > RP_OIDC_URL_MAX || len >= cap) {
        rc = rp_errf(err, errlen, RP_ETOOBIG, "\"jwks_uri\" longer than %zu bytes",
                     cap - 1 < RP_OIDC_URL_MAX ? cap - 1 : (size_t)RP_OIDC_URL_MAX);
        goto out;
    }
    if (!https_url_ok(s, len, 1)) {
        rc = rp_errf(err, errlen, RP_EINVAL, "\"jwks_uri\" is not an https URL");
        goto out;
    }
    memcpy(jwks_uri, s, len);
    jwks_uri[len] = '\0';
    if (err != NULL && errlen > 0)
        err[0] = '\0';
out:
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------- JWK Set */

/* Decodes a base64url member of jwk into out[cap]. 0 and *n, or -1 (absent, not a string, bad
 * base64url, too long). */
static int b64_member(const json_t *jwk, const char *name, unsigned char *out, size_t cap,
                      size_t *n)
{
    const json_t *v = json_object_get(jwk, name);

    if (!json_is_string(v))
        return -1;
    return rp_b64url_decode(json_string_value(v), json_string_length(v), out, cap, n) == 0 ? 0 : -1;
}

/* The SPKI DER of the RSA key (n, e) in *der (OpenSSL-allocated, OPENSSL_free) and *len.
 * 0, RP_ECRYPTO (OpenSSL refused the numbers) or RP_ENOMEM. */
static int rsa_spki(const unsigned char *nb, size_t nn, const unsigned char *eb, size_t en,
                    unsigned char **der, int *len)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *n = BN_bin2bn(nb, (int)nn, NULL), *e = BN_bin2bn(eb, (int)en, NULL);
    int rc = RP_ENOMEM;

    if (bld == NULL || n == NULL || e == NULL)
        goto out;
    if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto out;
    rc = RP_ECRYPTO;
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto out;
    *der = NULL;
    *len = i2d_PUBKEY(pkey, der);
    if (*len <= 0)
        goto out;
    rc = 0;
out:
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    ERR_clear_error();
    return rc;
}

/*
 * Turns one JWK into *slot. 0 (usable), RP_ENOMEM, or RP_ENOENT with *why saying why the key
 * was left out (a static string).
 */
static int jwk_key(const json_t *jwk, oidc_key *slot, const char **why)
{
    unsigned char a[RSA_MAX_N + 1], b[P256_COORD + 1], der[sizeof(p256_spki_prefix) + 64];
    unsigned char *rsa_der = NULL;
    const json_t *kty, *kid, *use, *alg, *ops;
    const unsigned char *spki;
    size_t na = 0, nb = 0, spki_len, kidlen;
    unsigned algs;
    int rsa_len = 0, rc;

    if (!json_is_object(jwk)) {
        *why = "an entry is not an object";
        return RP_ENOENT;
    }
    kty = json_object_get(jwk, "kty");
    kid = json_object_get(jwk, "kid");
    use = json_object_get(jwk, "use");
    alg = json_object_get(jwk, "alg");
    ops = json_object_get(jwk, "key_ops");
    if (use != NULL && !str_is(use, "sig")) {
        *why = "a key not for signatures (use)";
        return RP_ENOENT;
    }
    if (ops != NULL) {
        size_t i;
        const json_t *op;
        int verify = 0;
        if (!json_is_array(ops)) {
            *why = "a key with malformed key_ops";
            return RP_ENOENT;
        }
        json_array_foreach(ops, i, op) verify |= str_is(op, "verify");
        if (!verify) {
            *why = "a key not for verification (key_ops)";
            return RP_ENOENT;
        }
    }
    kidlen = json_is_string(kid) ? json_string_length(kid) : 0;
    if (kidlen == 0 || kidlen > RP_JWT_MAX_KID) {
        *why = "a key without a kid of 1..128 characters";
        return RP_ENOENT;
    }
    for (size_t i = 0; i < kidlen; i++) {
        unsigned char c = (unsigned char)json_string_value(kid)[i];
        if (c < 0x20 || c > 0x7e) {
            *why = "a key whose kid is not printable ASCII";
            return RP_ENOENT;
        }
    }
    if (str_is(kty, "RSA")) {
        algs = RP_JWT_RS256 | RP_JWT_PS256;
    } else if (str_is(kty, "EC")) {
        if (!str_is(json_object_get(jwk, "crv"), "P-256")) {
            *why = "an EC key on a curve other than P-256";
            return RP_ENOENT;
        }
        algs = RP_JWT_ES256;
    } else {
        *why = "a key of an unsupported kty";
        return RP_ENOENT;
    }
    if (alg != NULL) {
        unsigned want = str_is(alg, "RS256")   ? RP_JWT_RS256
                        : str_is(alg, "PS256") ? RP_JWT_PS256
                        : str_is(alg, "ES256") ? RP_JWT_ES256
                                               : 0;
        if ((want & algs) == 0) {
            *why = "a key for an alg we do not verify";
            return RP_ENOENT;
        }
        algs = want;
    }
    if (algs == RP_JWT_ES256) {
        if (b64_member(jwk, "x", a, sizeof(a), &na) != 0 || na != P256_COORD ||
            b64_member(jwk, "y", b, sizeof(b), &nb) != 0 || nb != P256_COORD) {
            *why = "an EC key without 32-byte x and y";
            return RP_ENOENT;
        }
        memcpy(der, p256_spki_prefix, sizeof(p256_spki_prefix));
        memcpy(der + sizeof(p256_spki_prefix), a, P256_COORD);
        memcpy(der + sizeof(p256_spki_prefix) + P256_COORD, b, P256_COORD);
        spki = der;
        spki_len = sizeof(p256_spki_prefix) + 2 * P256_COORD;
    } else {
        if (b64_member(jwk, "n", a, sizeof(a), &na) != 0 || na == 0 ||
            b64_member(jwk, "e", b, sizeof(b), &nb) != 0 || nb == 0 || nb > RSA_MAX_E) {
            *why = "an RSA key with a malformed or oversized n or e";
            return RP_ENOENT;
        }
        rc = rsa_spki(a, na, b, nb, &rsa_der, &rsa_len);
        if (rc == RP_ENOMEM)
            return rc;
        if (rc != 0) {
            *why = "an RSA key OpenSSL refused";
            return RP_ENOENT;
        }
        spki = rsa_der;
        spki_len = (size_t)rsa_len;
    }
    rc = rp_jwt_key_from_der(spki, spki_len, json_string_value(kid), &slot->key);
    OPENSSL_free(rsa_der);
    if (rc == RP_ENOMEM)
        return rc;
    if (rc != 0) {
        *why = algs == RP_JWT_ES256 ? "an EC key whose point is not on P-256"
                                    : "an RSA key under 2048 bits or with a bad exponent";
        return RP_ENOENT;
    }
    slot->algs = algs;
    return 0;
}

int rp_oidc_parse_jwks(const char *doc, size_t n, rp_oidc_keys **out, char *err, size_t errlen)
{
    json_t *root = NULL, *list;
    rp_oidc_keys *ks = NULL;
    const char *why = NULL;
    unsigned char dup[RP_OIDC_MAX_JWKS];
    size_t count, kept;
    int rc;

    if ((doc == NULL && n > 0) || out == NULL)
        return rp_errf(err, errlen, RP_EINVAL, "bad arguments");
    rc = load_object(doc, n, &root, err, errlen);
    if (rc != 0)
        return rc;
    list = json_object_get(root, "keys");
    if (!json_is_array(list)) {
        rc = rp_errf(err, errlen, RP_EPARSE, "\"keys\" missing or not an array");
        goto out;
    }
    count = json_array_size(list);
    if (count > RP_OIDC_MAX_JWKS) {
        rc = rp_errf(err, errlen, RP_ETOOBIG, "more than %d keys", RP_OIDC_MAX_JWKS);
        goto out;
    }
    /* count <= RP_OIDC_MAX_JWKS: no overflow. */
    ks = rp_calloc(1, sizeof(*ks) + count * sizeof(ks->k[0]));
    if (ks == NULL) {
        rc = rp_errf(err, errlen, RP_ENOMEM, "out of memory");
        goto out;
    }
    atomic_init(&ks->refs, 1);
    for (size_t i = 0; i < count; i++) {
        rc = jwk_key(json_array_get(list, i), &ks->k[ks->n], &why);
        if (rc == RP_ENOMEM) {
            rc = rp_errf(err, errlen, RP_ENOMEM, "out of memory");
            goto out;
        }
        if (rc == 0)
            ks->n++;
    }
    rc = 0;
    /* A kid names one key: when several usable keys share one, none of them is used. Flags
     * first, then packing, so that no comparison reads a slot already overwritten. */
    for (size_t i = 0; i < ks->n; i++) {
        dup[i] = 0;
        for (size_t j = 0; j < ks->n && !dup[i]; j++)
            dup[i] =
                j != i && strcmp(rp_jwt_key_kid(ks->k[i].key), rp_jwt_key_kid(ks->k[j].key)) == 0;
    }
    kept = 0;
    for (size_t i = 0; i < ks->n; i++) {
        if (dup[i]) {
            why = "keys sharing one kid";
            rp_jwt_key_free(ks->k[i].key);
        } else {
            ks->k[kept++] = ks->k[i];
        }
    }
    ks->n = kept;
    if (kept == 0) {
        rc = rp_errf(err, errlen, RP_ENOENT, "no usable signing key (left out: %s)",
                     why != NULL ? why : "the set is empty");
        goto out;
    }
    *out = ks;
    ks = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
out:
    rp_oidc_keys_free(ks);
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------- verification */

/* As rp_oidc_verify_keys; *miss is set when the kid is not in ks and the token (unverified)
 * names this issuer, i.e. when a refresh might help. */
static rp_oidc_status verify_set(const rp_oidc_keys *ks, const char *issuer, const char *tok,
                                 size_t n, int64_t now, json_t **claims, const char **why,
                                 int *miss)
{
    rp_oidc_status rs = RP_OIDC_INVALID;
    const char *reason = "malformed";
    const oidc_key *k;
    const char *kid, *iss;
    rp_jwt *j = NULL;
    rp_jwt_status st;

    if (claims != NULL)
        *claims = NULL;
    if (ks == NULL) {
        rs = RP_OIDC_NO_KEYS;
        reason = "no keys";
        goto out;
    }
    if (issuer == NULL || tok == NULL)
        goto out;
    if (n > RP_JWT_MAX_LEN) {
        reason = "token too long";
        goto out;
    }
    st = rp_jwt_decode(tok, n, RP_JWT_ALL_ALGS, &j);
    if (st != RP_JWT_OK) {
        reason = st == RP_JWT_ALG       ? "alg not allowed"
                 : st == RP_JWT_NOMEM   ? "out of memory"
                 : st == RP_JWT_TOO_BIG ? "token too long"
                                        : "malformed";
        goto out;
    }
    kid = rp_jwt_kid(j);
    if (kid == NULL) {
        reason = "no kid";
        goto out;
    }
    k = keys_find(ks, kid);
    if (k == NULL) {
        iss = rp_jwt_claim_str(j, "iss");
        if (miss != NULL && iss != NULL && strcmp(iss, issuer) == 0)
            *miss = 1;
        reason = "unknown kid";
        goto out;
    }
    if ((k->algs & (unsigned)rp_jwt_alg_of(j)) == 0) {
        reason = "alg does not suit the key";
        goto out;
    }
    st = rp_jwt_verify(j, k->key);
    if (st != RP_JWT_OK) {
        reason = st == RP_JWT_ALG     ? "alg does not suit the key"
                 : st == RP_JWT_NOMEM ? "out of memory"
                                      : "bad signature";
        goto out;
    }
    {
        rp_jwt_expect ex = {issuer, NULL, now, RP_OIDC_SKEW_S, 1, 0};
        st = rp_jwt_check_claims(j, &ex);
    }
    switch (st) {
    case RP_JWT_OK: break;
    case RP_JWT_EXPIRED:
        rs = RP_OIDC_EXPIRED;
        reason = "expired";
        goto out;
    case RP_JWT_NOT_YET_VALID:
        rs = RP_OIDC_EXPIRED;
        reason = "not yet valid";
        goto out;
    case RP_JWT_ISSUER: reason = "wrong issuer"; goto out;
    default: reason = "bad claims"; goto out;
    }
    if (claims != NULL)
        *claims = json_incref((json_t *)rp_jwt_claims(j));
    rs = RP_OIDC_OK;
    reason = "ok";
out:
    rp_jwt_free(j);
    if (why != NULL)
        *why = reason;
    return rs;
}

rp_oidc_status rp_oidc_verify_keys(const rp_oidc_keys *ks, const char *issuer, const char *tok,
                                   size_t n, int64_t now, json_t **claims, const char **why)
{
    return verify_set(ks, issuer, tok, n, now, claims, why, NULL);
}

/* ---------------------------------------------------------------- the cache */

enum { S_PENDING, S_OK, S_FAILED };

typedef struct issuer {
    char url[RP_OIDC_ISSUER_MAX + 1];
    rp_oidc_keys *keys; /* current set or NULL; replaced under the mutex */
    uint64_t keys_ms;   /* monotonic time keys was fetched */
    int64_t fetched_at; /* the same in Unix seconds */
    int state;          /* S_* of the last fetch */
    char reason[RP_OIDC_REASON_MAX];
    uint64_t due_ms;   /* next fetch, monotonic */
    uint64_t asked_ms; /* last on-demand refresh (valid when asked) */
    uint64_t used_ms;  /* last watch or verify */
    unsigned fails;    /* consecutive failed fetches: the back-off */
    int asked;
    int busy;  /* the fetch thread is working on it: not evicted, pointer kept */
    int again; /* a refresh was asked for while busy: fetch again at once */
} issuer;

struct rp_oidc {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC: new work, or stop */
    pthread_t thread;
    int stop;            /* under mu */
    atomic_int abort_io; /* the transfer's progress callback reads it */
    char *ca_file;       /* NULL: the system store */
    size_t n;            /* entries in iss */
    issuer *iss[RP_OIDC_MAX_ISSUERS];
};

static issuer *find_locked(rp_oidc *o, const char *url)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->iss[i]->url, url) == 0)
            return o->iss[i];
    return NULL;
}

static int issuer_ok(const char *s)
{
    size_t len;

    if (s == NULL)
        return 0;
    len = strnlen(s, RP_OIDC_ISSUER_MAX + 1);
    return len <= RP_OIDC_ISSUER_MAX && https_url_ok(s, len, 0);
}

/* Finds or adds url (checked) with a first fetch at due_ms. *evicted gets an idle entry's key
 * set for the caller to free after unlocking. 0, RP_ETOOBIG, RP_ENOMEM. */
static int add_locked(rp_oidc *o, const char *url, uint64_t now, uint64_t due_ms, issuer **out,
                      rp_oidc_keys **evicted)
{
    issuer *is = find_locked(o, url);
    size_t victim = o->n;

    if (is != NULL) {
        is->used_ms = now;
        *out = is;
        return 0;
    }
    if (o->n == RP_OIDC_MAX_ISSUERS) {
        for (size_t i = 0; i < o->n; i++)
            if (!o->iss[i]->busy &&
                (victim == o->n || o->iss[i]->used_ms < o->iss[victim]->used_ms))
                victim = i;
        if (victim == o->n || now - o->iss[victim]->used_ms <= (uint64_t)RP_OIDC_IDLE_S * MS_PER_S)
            return RP_ETOOBIG;
    }
    is = rp_calloc(1, sizeof(*is));
    if (is == NULL)
        return RP_ENOMEM;
    rp_strlcpy(is->url, url, sizeof(is->url));
    is->state = S_PENDING;
    is->due_ms = due_ms;
    is->used_ms = now;
    if (victim < o->n) {
        *evicted = o->iss[victim]->keys;
        rp_free(o->iss[victim]);
        o->iss[victim] = is;
    } else {
        o->iss[o->n++] = is;
    }
    *out = is;
    return 0;
}

int rp_oidc_watch(rp_oidc *o, const char *issuer_url)
{
    rp_oidc_keys *evicted = NULL;
    issuer *is;
    uint64_t now = rp_mono_ms();
    int rc;

    if (o == NULL || !issuer_ok(issuer_url))
        return RP_EINVAL;
    pthread_mutex_lock(&o->mu);
    rc = add_locked(o, issuer_url, now, now, &is, &evicted);
    if (rc == 0)
        pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    rp_oidc_keys_free(evicted);
    return rc;
}

/* Queues a fetch of is now unless one was asked for within RP_OIDC_MISS_S. 0 or RP_EAGAIN. */
static int ask_locked(rp_oidc *o, issuer *is, uint64_t now)
{
    if (is->asked && now - is->asked_ms < (uint64_t)RP_OIDC_MISS_S * MS_PER_S)
        return RP_EAGAIN;
    is->asked = 1;
    is->asked_ms = now;
    is->due_ms = now;
    if (is->busy)
        is->again = 1;
    pthread_cond_signal(&o->cv);
    return 0;
}

int rp_oidc_refresh(rp_oidc *o, const char *issuer_url)
{
    issuer *is;
    int rc;

    if (o == NULL || issuer_url == NULL)
        return RP_EINVAL;
    pthread_mutex_lock(&o->mu);
    is = find_locked(o, issuer_url);
    rc = is != NULL ? ask_locked(o, is, rp_mono_ms()) : RP_ENOENT;
    pthread_mutex_unlock(&o->mu);
    return rc;
}

rp_oidc_status rp_oidc_verify(rp_oidc *o, const char *issuer_url, const char *tok, size_t n,
                              int64_t now, json_t **claims, const char **why)
{
    rp_oidc_keys *ks = NULL;
    const char *reason = "issuer not watched";
    rp_oidc_status rs;
    uint64_t mono = rp_mono_ms();
    issuer *is;
    int miss = 0;

    if (claims != NULL)
        *claims = NULL;
    if (o == NULL || issuer_url == NULL) {
        if (why != NULL)
            *why = reason;
        return RP_OIDC_NO_KEYS;
    }
    pthread_mutex_lock(&o->mu);
    is = find_locked(o, issuer_url);
    if (is != NULL) {
        is->used_ms = mono;
        if (is->keys != NULL && mono - is->keys_ms <= (uint64_t)RP_OIDC_STALE_S * MS_PER_S)
            ks = rp_oidc_keys_ref(is->keys);
        else if (is->keys != NULL)
            reason = "keys are stale: refreshing them has failed for a day";
        else if (is->state == S_PENDING)
            reason = "keys not fetched yet";
        else
            reason = "fetching the keys failed";
    }
    pthread_mutex_unlock(&o->mu);
    if (ks == NULL) {
        if (why != NULL)
            *why = reason;
        return RP_OIDC_NO_KEYS;
    }
    rs = verify_set(ks, issuer_url, tok, n, now, claims, why, &miss);
    rp_oidc_keys_free(ks);
    if (miss) {
        pthread_mutex_lock(&o->mu);
        is = find_locked(o, issuer_url); /* it may have been evicted meanwhile */
        if (is != NULL)
            (void)ask_locked(o, is, mono);
        pthread_mutex_unlock(&o->mu);
    }
    return rs;
}

int rp_oidc_state(rp_oidc *o, const char *issuer_url, size_t *nkeys, int64_t *fetched_at,
                  char *reason, size_t cap)
{
    issuer *is;
    int rc;

    if (nkeys != NULL)
        *nkeys = 0;
    if (fetched_at != NULL)
        *fetched_at = 0;
    if (reason != NULL && cap > 0)
        reason[0] = '\0';
    if (o == NULL || issuer_url == NULL)
        return RP_EINVAL;
    pthread_mutex_lock(&o->mu);
    is = find_locked(o, issuer_url);
    if (is == NULL) {
        rc = RP_ENOENT;
    } else {
        if (nkeys != NULL)
            *nkeys = rp_oidc_keys_count(is->keys);
        if (fetched_at != NULL && is->keys != NULL)
            *fetched_at = is->fetched_at;
        rc = is->state == S_OK ? 0 : is->state == S_PENDING ? RP_EAGAIN : RP_EIO;
        if (rc == RP_EIO && reason != NULL && cap > 0)
            rp_strlcpy(reason, is->reason, cap);
    }
    pthread_mutex_unlock(&o->mu);
    return rc;
}

/* Installs ks (owned by this call) as is's set. Returns the old set for freeing unlocked. */
static rp_oidc_keys *install_locked(issuer *is, rp_oidc_keys *ks, uint64_t now)
{
    rp_oidc_keys *old = is->keys;

    is->keys = ks;
    is->keys_ms = now;
    is->fetched_at = (int64_t)time(NULL);
    is->state = S_OK;
    is->reason[0] = '\0';
    is->fails = 0;
    is->due_ms = now + (uint64_t)RP_OIDC_REFRESH_S * MS_PER_S;
    return old;
}

int rp__oidc_set_keys(rp_oidc *o, const char *issuer_url, rp_oidc_keys *ks)
{
    rp_oidc_keys *evicted = NULL, *old = NULL;
    uint64_t now = rp_mono_ms();
    issuer *is;
    int rc;

    if (o == NULL || ks == NULL || !issuer_ok(issuer_url))
        return RP_EINVAL;
    pthread_mutex_lock(&o->mu);
    rc =
        add_locked(o, issuer_url, now, now + (uint64_t)RP_OIDC_REFRESH_S * MS_PER_S, &is, &evicted);
    if (rc == 0)
        old = install_locked(is, rp_oidc_keys_ref(ks), now);
    pthread_mutex_unlock(&o->mu);
    rp_oidc_keys_free(old);
    rp_oidc_keys_free(evicted);
    return rc;
}

/* ---------------------------------------------------------------- fetching */

typedef struct sink {
    rp_buf *b;
    int rc; /* RP_ETOOBIG / RP_ENOMEM when the body did not fit */
} sink;

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    sink *s = arg;
    size_t n = size * nmemb; /* libcurl documents size as always 1 */
    int rc = rp_buf_append(s->b, p, n);

    if (rc != 0) {
        s->rc = rc;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    rp_oidc *o = arg;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return atomic_load_explicit(&o->abort_io, memory_order_relaxed) ? 1 : 0;
}

/* GETs url into b (emptied first) with the outbound TLS rules. 0 or an RP_E* with a reason. */
static int get(rp_oidc *o, CURL *h, const char *url, rp_buf *b, char *err, size_t errlen)
{
    char ebuf[CURL_ERROR_SIZE];
    struct curl_slist *hdrs = NULL;
    sink s = {b, 0};
    long status = 0;
    CURLcode cc;
    int rc = 0;

    rp_buf_reset(b);
    ebuf[0] = '\0';
    if (h == NULL)
        return rp_errf(err, errlen, RP_EIO, "libcurl could not be initialised");
    curl_easy_reset(h);
    hdrs = curl_slist_append(NULL, "Accept: application/json");
    if (hdrs == NULL)
        return rp_errf(err, errlen, RP_ENOMEM, "out of memory");
    if (curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https") != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
        /* An operator bundle replaces the system store rather than adding to it. */
        (o->ca_file != NULL && (curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file) != CURLE_OK ||
                                curl_easy_setopt(h, CURLOPT_CAPATH, NULL) != CURLE_OK)) ||
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_USERAGENT, "rampart/" RP_VERSION) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)RP_OIDC_TIMEOUT_MS) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)RP_OIDC_TIMEOUT_MS) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)RP_OIDC_DOC_MAX) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &s) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, o) != CURLE_OK ||
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf) != CURLE_OK) {
        rc = rp_errf(err, errlen, RP_EIO, "libcurl lacks a required option");
        goto out;
    }
    cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        if (s.rc == RP_ETOOBIG || cc == CURLE_FILESIZE_EXCEEDED)
            rc = rp_errf(err, errlen, RP_ETOOBIG, "response larger than %d bytes", RP_OIDC_DOC_MAX);
        else if (s.rc == RP_ENOMEM)
            rc = rp_errf(err, errlen, RP_ENOMEM, "out of memory");
        else if (cc == CURLE_ABORTED_BY_CALLBACK)
            rc = rp_errf(err, errlen, RP_ECLOSED, "shutting down");
        else
            rc = rp_errf(err, errlen, cc == CURLE_OPERATION_TIMEDOUT ? RP_ETIMEDOUT : RP_EIO, "%s",
                         ebuf[0] != '\0' ? ebuf : curl_easy_strerror(cc));
        goto out;
    }
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 200) {
        rc = rp_errf(err, errlen, RP_EIO, "HTTP status %ld", status);
        goto out;
    }
out:
    /* The handle keeps pointers to ebuf, s and hdrs: detach them before they go. */
    curl_easy_reset(h);
    curl_slist_free_all(hdrs);
    return rc;
}

/* Discovery, then the JWK Set: 0 and *out, or an RP_E* with reason[cap]. */
static int fetch(rp_oidc *o, CURL *h, const char *issuer_url, rp_oidc_keys **out, char *reason,
                 size_t cap)
{
    char url[RP_OIDC_ISSUER_MAX + sizeof(WELL_KNOWN)], jwks[RP_OIDC_URL_MAX + 1];
    char err[RP_OIDC_REASON_MAX];
    size_t len = strlen(issuer_url);
    rp_buf body;
    int rc;

    rp_buf_init(&body, RP_OIDC_DOC_MAX);
    /* Discovery 4.1: a terminating '/' of the issuer is removed before appending. */
    if (len > 0 && issuer_url[len - 1] == '/')
        len--;
    snprintf(url, sizeof(url), "%.*s%s", (int)len, issuer_url, WELL_KNOWN);
    rc = get(o, h, url, &body, err, sizeof(err));
    if (rc == 0)
        rc = rp_oidc_parse_discovery(body.data, body.len, issuer_url, jwks, sizeof(jwks), err,
                                     sizeof(err));
    if (rc != 0) {
        rp_errf(reason, cap, rc, "discovery: %s", err);
        goto out;
    }
    rc = get(o, h, jwks, &body, err, sizeof(err));
    if (rc == 0)
        rc = rp_oidc_parse_jwks(body.data, body.len, out, err, sizeof(err));
    if (rc != 0)
        rp_errf(reason, cap, rc, "jwks_uri: %s", err);
out:
    rp_buf_free(&body);
    return rc;
}

static void *worker(void *arg)
{
    rp_oidc *o = arg;
    CURL *h = curl_easy_init(); /* NULL: every fetch fails with a reason */
    char url[RP_OIDC_ISSUER_MAX + 1], reason[RP_OIDC_REASON_MAX];

    pthread_mutex_lock(&o->mu);
    while (!o->stop) {
        uint64_t now = rp_mono_ms();
        rp_oidc_keys *ks = NULL, *old = NULL;
        issuer *next = NULL;
        int rc;

        for (size_t i = 0; i < o->n; i++)
            if (next == NULL || o->iss[i]->due_ms < next->due_ms)
                next = o->iss[i];
        if (next == NULL) {
            pthread_cond_wait(&o->cv, &o->mu);
            continue;
        }
        if (next->due_ms > now) {
            struct timespec ts = {(time_t)(next->due_ms / MS_PER_S),
                                  (long)(next->due_ms % MS_PER_S) * 1000000L};
            pthread_cond_timedwait(&o->cv, &o->mu, &ts);
            continue;
        }
        next->busy = 1;
        next->again = 0;
        memcpy(url, next->url, sizeof(url));
        pthread_mutex_unlock(&o->mu);

        reason[0] = '\0';
        rc = fetch(o, h, url, &ks, reason, sizeof(reason));

        pthread_mutex_lock(&o->mu);
        now = rp_mono_ms();
        next->busy = 0;
        if (rc == 0) {
            old = install_locked(next, ks, now);
        } else {
            unsigned shift = next->fails < BACKOFF_MAX ? next->fails : BACKOFF_MAX;
            uint64_t wait_s = (uint64_t)RP_OIDC_RETRY_S << shift;
            if (wait_s > RP_OIDC_REFRESH_S)
                wait_s = RP_OIDC_REFRESH_S;
            next->fails++;
            next->state = S_FAILED;
            rp_strlcpy(next->reason, reason[0] != '\0' ? reason : rp_strerror(rc),
                       sizeof(next->reason));
            next->due_ms = now + wait_s * MS_PER_S;
        }
        if (next->again)
            next->due_ms = now;
        if (old != NULL) {
            pthread_mutex_unlock(&o->mu);
            rp_oidc_keys_free(old); /* may free many keys: not under the lock */
            pthread_mutex_lock(&o->mu);
        }
    }
    pthread_mutex_unlock(&o->mu);
    curl_easy_cleanup(h);
    return NULL;
}

int rp_oidc_open(const char *ca_file, rp_oidc **out)
{
    pthread_condattr_t ca;
    sigset_t all, saved;
    rp_oidc *o;
    int fd, rc;

    if (out == NULL)
        return RP_EINVAL;
    if (ca_file != NULL) {
        size_t len = strnlen(ca_file, CA_PATH_MAX + 1);
        if (len == 0 || len > CA_PATH_MAX)
            return RP_EINVAL;
        /* Fail at start-up, not at the first fetch, when the bundle is not there. */
        fd = open(ca_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return errno == ENOENT ? RP_ENOENT : RP_EIO;
        close(fd);
    }
    o = rp_calloc(1, sizeof(*o));
    if (o == NULL)
        return RP_ENOMEM;
    if (ca_file != NULL && (o->ca_file = rp_strdup(ca_file)) == NULL) {
        rp_free(o);
        return RP_ENOMEM;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rp_free(o->ca_file);
        rp_free(o);
        return RP_EIO;
    }
    atomic_init(&o->abort_io, 0);
    pthread_mutex_init(&o->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->cv, &ca);
    pthread_condattr_destroy(&ca);
    /* The thread inherits a fully blocked mask: signals go to the loops that handle them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    rc = pthread_create(&o->thread, NULL, worker, o);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&o->cv);
        pthread_mutex_destroy(&o->mu);
        curl_global_cleanup();
        rp_free(o->ca_file);
        rp_free(o);
        return rc == EAGAIN ? RP_EAGAIN : RP_EIO;
    }
    *out = o;
    return 0;
}

void rp_oidc_close(rp_oidc *o)
{
    if (o == NULL)
        return;
    pthread_mutex_lock(&o->mu);
    o->stop = 1;
    atomic_store(&o->abort_io, 1);
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    pthread_join(o->thread, NULL);
    for (size_t i = 0; i < o->n; i++) {
        rp_oidc_keys_free(o->iss[i]->keys);
        rp_free(o->iss[i]);
    }
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    curl_global_cleanup();
    rp_free(o->ca_file);
    rp_free(o);
}
