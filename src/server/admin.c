/*
 * admin.c - administrator bearer tokens: creation, loading of their hashes, verification.
 *
 * Workload: check runs on every management API request; the set holds a handful of entries,
 * so a linear scan over all of them (no early exit) costs less than one TLS record and keeps the
 * timing independent of which entry, if any, matched.
 */
#include "server/admin.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/rand.h"
#include "base/str.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <string.h>
#include <time.h>

#define ADMIN_ID_LEN     11 /* base64url of 8 bytes */
#define ADMIN_SECRET_LEN 43 /* base64url of 32 bytes */
#define ADMIN_PREFIX_LEN 4
#define ADMIN_HASH_LEN   32

typedef struct admin_cred {
    char id[ADMIN_ID_LEN + 1];
    unsigned char hash[ADMIN_HASH_LEN];
} admin_cred;

struct rp_admin_creds {
    size_t n;
    admin_cred *items;
};

static int token_hash(const char *token, size_t n, unsigned char out[ADMIN_HASH_LEN])
{
    unsigned int len = 0;

    if (EVP_Digest(token, n, out, &len, EVP_sha256(), NULL) != 1 || len != ADMIN_HASH_LEN)
        return RP_ECRYPTO;
    return 0;
}

static int is_b64url(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

int rp_admin_token_create(sqlite3 *db, char *token_out, size_t cap)
{
    unsigned char id[RP_ADMIN_ID_BYTES], secret[RP_ADMIN_SECRET_BYTES], hash[ADMIN_HASH_LEN];
    sqlite3_stmt *st = NULL;
    char *p;
    int rc;

    if (db == NULL || token_out == NULL)
        return RP_EINVAL;
    if (cap <= RP_ADMIN_TOKEN_LEN)
        return RP_ETOOBIG;
    rc = rp_random_bytes(id, sizeof(id));
    if (rc == 0)
        rc = rp_random_bytes(secret, sizeof(secret));
    if (rc != 0)
        goto out;
    memcpy(token_out, RP_ADMIN_TOKEN_PREFIX, ADMIN_PREFIX_LEN);
    p = token_out + ADMIN_PREFIX_LEN;
    rc = rp_b64url_encode(id, sizeof(id), p, cap - ADMIN_PREFIX_LEN);
    if (rc != 0)
        goto out;
    p[ADMIN_ID_LEN] = '.';
    rc = rp_b64url_encode(secret, sizeof(secret), p + ADMIN_ID_LEN + 1,
                          cap - ADMIN_PREFIX_LEN - ADMIN_ID_LEN - 1);
    if (rc != 0)
        goto out;
    rc = token_hash(token_out, RP_ADMIN_TOKEN_LEN, hash);
    if (rc != 0)
        goto out;
    rc = RP_EDB;
    if (sqlite3_prepare_v2(
            db, "INSERT INTO admin_credentials (id, hash, created_at) VALUES (?1, ?2, ?3)", -1, &st,
            NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_bind_text(st, 1, p, ADMIN_ID_LEN, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_blob(st, 2, hash, sizeof(hash), SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL)) != SQLITE_OK)
        goto out;
    if (sqlite3_step(st) != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    sqlite3_finalize(st);
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(hash, sizeof(hash));
    if (rc != 0)
        OPENSSL_cleanse(token_out, cap);
    return rc;
}

void rp_admin_creds_free(rp_admin_creds *c)
{
    if (c == NULL)
        return;
    rp_free(c->items);
    rp_free(c);
}

int rp_admin_creds_load(sqlite3 *db, rp_admin_creds **out)
{
    rp_admin_creds *c = NULL;
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    int rc, step;

    if (db == NULL || out == NULL)
        return RP_EINVAL;
    c = rp_calloc(1, sizeof(*c));
    if (c == NULL)
        return RP_ENOMEM;
    rc = RP_EDB;
    if (sqlite3_prepare_v2(db, "SELECT id, hash FROM admin_credentials", -1, &st, NULL) !=
        SQLITE_OK)
        goto out;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *id = sqlite3_column_text(st, 0);
        int idlen = sqlite3_column_bytes(st, 0);
        const void *hash = sqlite3_column_blob(st, 1);
        int hashlen = sqlite3_column_bytes(st, 1);
        if (id == NULL || idlen != ADMIN_ID_LEN || !is_b64url((const char *)id, ADMIN_ID_LEN) ||
            hash == NULL || hashlen != ADMIN_HASH_LEN) {
            rc = RP_EPARSE;
            goto out;
        }
        if (c->n == cap) {
            size_t ncap = cap ? cap * 2 : 4, bytes;
            admin_cred *items;
            if (cap >= RP_ADMIN_MAX_CREDS) {
                rc = RP_ETOOBIG;
                goto out;
            }
            if (rp_size_mul(ncap, sizeof(*items), &bytes) != 0) {
                rc = RP_ETOOBIG;
                goto out;
            }
            items = rp_realloc(c->items, bytes);
            if (items == NULL) {
                rc = RP_ENOMEM;
                goto out;
            }
            c->items = items;
            cap = ncap;
        }
        memcpy(c->items[c->n].id, id, ADMIN_ID_LEN);
        c->items[c->n].id[ADMIN_ID_LEN] = '\0';
        memcpy(c->items[c->n].hash, hash, ADMIN_HASH_LEN);
        c->n++;
    }
    if (step != SQLITE_DONE)
        goto out;
    *out = c;
    c = NULL;
    rc = 0;
out:
    sqlite3_finalize(st);
    rp_admin_creds_free(c);
    return rc;
}

int rp_admin_creds_check(const rp_admin_creds *c, const char *token, size_t n)
{
    unsigned char hash[ADMIN_HASH_LEN];
    const char *id;
    int match = 0;

    if (c == NULL || token == NULL || n != RP_ADMIN_TOKEN_LEN)
        return RP_EPERM;
    id = token + ADMIN_PREFIX_LEN;
    /* The shape is public (length, prefix, alphabet): checking it early leaks nothing. */
    if (memcmp(token, RP_ADMIN_TOKEN_PREFIX, ADMIN_PREFIX_LEN) != 0 ||
        !is_b64url(id, ADMIN_ID_LEN) || id[ADMIN_ID_LEN] != '.' ||
        !is_b64url(id + ADMIN_ID_LEN + 1, ADMIN_SECRET_LEN))
        return RP_EPERM;
    if (token_hash(token, n, hash) != 0)
        return RP_EPERM;
    for (size_t i = 0; i < c->n; i++) {
        /* Ids are not secret; the hash comparison is the one that must not leak timing. */
        int id_eq = memcmp(c->items[i].id, id, ADMIN_ID_LEN) == 0;
        int hash_eq = CRYPTO_memcmp(c->items[i].hash, hash, ADMIN_HASH_LEN) == 0;
        match |= id_eq & hash_eq;
    }
    OPENSSL_cleanse(hash, sizeof(hash));
    return match ? 0 : RP_EPERM;
}
