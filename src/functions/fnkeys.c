/*
 * fnkeys.c - function keys: generation, checks and the level a key grants (fnkeys.h).
 *
 * Workload: rp_fn_key_level runs on every keyed call a function app takes, against up to
 * RP_FN_KEYS_FOR_CALL keys. The stored keys' digests are made once, when their set is built
 * (keyset.c), so a call digests only what it was given, with an EVP_MD fetched once.
 */
#include "functions/fnkeys.h"

#include "base/err.h"
#include "base/rand.h"
#include "base/str.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <pthread.h>
#include <string.h>
#include <strings.h>

#define RAW_LEN 40 /* random bytes in a generated key, as the Functions host makes them */

int rp_fn_key_generate(char out[RP_FN_KEY_LEN + 1])
{
    unsigned char raw[RAW_LEN];
    int rc = rp_random_bytes(raw, sizeof(raw));

    /* 40 bytes are 54 base64url characters; Azure's keys keep the padding ("=="), and so do
     * these, so that they look like what clients have seen. */
    if (rc == 0 && rp_b64url_encode(raw, sizeof(raw), out, RP_FN_KEY_LEN + 1) == 0 &&
        strlen(out) == RP_FN_KEY_LEN - 2) {
        out[RP_FN_KEY_LEN - 2] = '=';
        out[RP_FN_KEY_LEN - 1] = '=';
        out[RP_FN_KEY_LEN] = '\0';
    } else {
        rc = RP_EIO;
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    return rc;
}

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

int rp_fn_key_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    if (n == 0 || n > RP_FN_KEY_NAME_MAX || strcmp(name, RP_FN_MASTER_NAME) == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char(name[i]))
            return 0;
    return 1;
}

int rp_fn_key_value_ok(const char *value, size_t n)
{
    if (value == NULL || n < RP_FN_KEY_VALUE_MIN || n > RP_FN_KEY_VALUE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (value[i] <= 0x20 || value[i] >= 0x7f)
            return 0;
    return 1;
}

/*
 * Fetched once and kept for the life of the process: EVP_sha256() looks the digest up in the
 * provider store again on every use (a lock and a hash lookup; about 0.85 us a digest against
 * 0.35 us with this one).
 */
static EVP_MD *sha256_fetched;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256(void)
{
    if (pthread_once(&sha256_once, sha256_fetch) != 0 || sha256_fetched == NULL)
        return EVP_sha256();
    return sha256_fetched;
}

/* Digests, not values, are compared: that takes the same time whatever the lengths. */
int rp_fn_key_digest(const char *value, size_t n, unsigned char out[RP_FN_KEY_DIGEST_LEN])
{
    unsigned int len = 0;

    if (EVP_Digest(value, n, out, &len, sha256(), NULL) == 1 && len == RP_FN_KEY_DIGEST_LEN)
        return 0;
    OPENSSL_cleanse(out, RP_FN_KEY_DIGEST_LEN);
    return RP_ENOMEM;
}

static rp_fn_level level_of(rp_fn_key_kind k)
{
    switch (k) {
    case RP_FN_KEY_MASTER: return RP_FN_LEVEL_ADMIN;
    case RP_FN_KEY_SYSTEM: return RP_FN_LEVEL_SYSTEM;
    case RP_FN_KEY_HOST:
    case RP_FN_KEY_FUNCTION: return RP_FN_LEVEL_FUNCTION;
    }
    return RP_FN_LEVEL_NONE;
}

rp_fn_level rp_fn_key_level(const rp_fn_key *keys, size_t n, const char *presented, size_t len,
                            const char **name)
{
    /* The host checks master, then system, then host, then function keys: the first kind in
     * that order wins. Every key is compared all the same (no early exit), and which one wins
     * is chosen with masks rather than branches on the comparisons. */
    unsigned char want[RP_FN_KEY_DIGEST_LEN], have[RP_FN_KEY_DIGEST_LEN];
    size_t best = n;
    unsigned int best_rank = 4;

    if (name != NULL)
        *name = NULL;
    if (presented == NULL || len == 0 || len > RP_FN_KEY_VALUE_MAX ||
        rp_fn_key_digest(presented, len, have) != 0)
        return RP_FN_LEVEL_NONE;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *d = keys[i].digest;
        /* Whether a key can match at all says nothing about the presented one. */
        unsigned int usable = keys[i].value != NULL && keys[i].value_len > 0;
        unsigned int rank = (unsigned int)keys[i].kind, take;
        size_t mask;

        if (d == NULL) {
            usable &= rp_fn_key_digest(keys[i].value, keys[i].value_len, want) == 0;
            d = want;
        }
        /* rank is 0..3 and best_rank 0..4: rank - best_rank wraps round to a value with the top
         * bit set exactly when rank is the smaller. */
        take = usable & (unsigned int)(CRYPTO_memcmp(d, have, sizeof(have)) == 0) &
               ((rank - best_rank) >> (sizeof(unsigned int) * 8 - 1));
        mask = (size_t)0 - (size_t)take;
        best = (best & ~mask) | (i & mask);
        best_rank = (best_rank & ~(unsigned int)mask) | (rank & (unsigned int)mask);
    }
    OPENSSL_cleanse(want, sizeof(want));
    OPENSSL_cleanse(have, sizeof(have));
    if (best == n)
        return RP_FN_LEVEL_NONE;
    if (name != NULL)
        *name = keys[best].kind == RP_FN_KEY_MASTER ? RP_FN_MASTER_NAME : keys[best].name;
    return level_of(keys[best].kind);
}

int rp_fn_authorized(rp_fn_level need, rp_fn_level have)
{
    if (need == RP_FN_LEVEL_ANONYMOUS)
        return 1;
    if (need == RP_FN_LEVEL_NONE || have == RP_FN_LEVEL_NONE || have == RP_FN_LEVEL_ANONYMOUS)
        return 0;
    return have == RP_FN_LEVEL_ADMIN || have == need;
}

int rp_fn_level_parse(const char *s, rp_fn_level *out)
{
    if (s == NULL)
        return RP_EPARSE;
    if (strcasecmp(s, "anonymous") == 0)
        *out = RP_FN_LEVEL_ANONYMOUS;
    else if (strcasecmp(s, "function") == 0)
        *out = RP_FN_LEVEL_FUNCTION;
    else if (strcasecmp(s, "admin") == 0)
        *out = RP_FN_LEVEL_ADMIN;
    else
        return RP_EPARSE;
    return 0;
}
