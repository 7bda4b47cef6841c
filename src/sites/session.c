/*
 * session.c - sealed cookies and session revocation (see session.h for the contract).
 *
 * Workload: one open per request of a signed-in browser (an AES-GCM open of ~300 bytes and a
 * small JSON parse: a few microseconds), one seal per sign-in, a revocation per sign-out. The
 * revocation list is scanned linearly under the mutex; it only holds sessions signed out before
 * their expiry, which stays small on any real site, and is capped.
 */
#include "sites/session.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/rand.h"
#include "base/str.h"
#include "crypto/aead.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <string.h>

#define AAD_PREFIX "rampart-cookie-v1"

typedef struct revoked {
    char sid[RP_SESSION_ID_LEN + 1];
    int64_t exp;
} revoked;

struct rp_session_box {
    unsigned char key[RP_AEAD_KEY_LEN];
    pthread_mutex_t lock;
    revoked *list; /* guarded by lock */
    size_t n, cap;
    uint64_t gen; /* sessions of older generations are revoked */
};

int rp_session_box_new(rp_session_box **out)
{
    rp_session_box *b = rp_calloc(1, sizeof(*b));

    *out = NULL;
    if (b == NULL)
        return RP_ENOMEM;
    if (rp_random_bytes(b->key, sizeof(b->key)) != 0) {
        rp_free(b);
        return RP_ECRYPTO;
    }
    if (pthread_mutex_init(&b->lock, NULL) != 0) {
        OPENSSL_cleanse(b->key, sizeof(b->key));
        rp_free(b);
        return RP_ENOMEM;
    }
    *out = b;
    return 0;
}

void rp_session_box_free(rp_session_box *b)
{
    if (b == NULL)
        return;
    OPENSSL_cleanse(b->key, sizeof(b->key));
    pthread_mutex_destroy(&b->lock);
    rp_free(b->list);
    rp_free(b);
}

/* "rampart-cookie-v1" NUL purpose NUL app: no two (purpose, app) pairs give the same bytes. */
static int aad(const char *app, const char *purpose, char *out, size_t cap, size_t *len)
{
    size_t a = strlen(AAD_PREFIX) + 1, p = strlen(purpose) + 1, n = strlen(app);

    if (a + p + n > cap)
        return RP_ETOOBIG;
    memcpy(out, AAD_PREFIX, a);
    memcpy(out + a, purpose, p);
    memcpy(out + a + p, app, n);
    *len = a + p + n;
    return 0;
}

int rp_session_seal(const rp_session_box *b, const char *app, const char *purpose,
                    const json_t *payload, char *out, size_t cap)
{
    char ad[256], *js = NULL;
    size_t adn, jn;
    rp_buf env;
    int rc;

    if (cap > RP_SESSION_VALUE_MAX)
        cap = RP_SESSION_VALUE_MAX;
    if ((rc = aad(app, purpose, ad, sizeof(ad), &adn)) != 0)
        return rc;
    if (!json_is_object(payload) ||
        (js = json_dumps(payload, JSON_COMPACT | JSON_ENSURE_ASCII)) == NULL)
        return RP_ENOMEM;
    jn = strlen(js);
    rp_buf_init(&env, cap);
    rc = rp_aead_seal(b->key, ad, adn, js, jn, &env);
    if (rc == 0 && (env.len + 2) / 3 * 4 + 1 > cap)
        rc = RP_ETOOBIG;
    if (rc == 0)
        rc = rp_b64url_encode((const unsigned char *)env.data, env.len, out, cap) == 0 ? 0
                                                                                       : RP_ETOOBIG;
    OPENSSL_cleanse(js, jn);
    free(js); /* jansson's allocator */
    rp_buf_free(&env);
    return rc;
}

int rp_session_open(const rp_session_box *b, const char *app, const char *purpose, const char *v,
                    size_t n, json_t **payload)
{
    unsigned char raw[RP_SESSION_VALUE_MAX];
    char ad[256];
    size_t adn, rn = 0;
    rp_buf pt;
    json_t *j;
    int rc;

    *payload = NULL;
    if (n == 0 || n >= RP_SESSION_VALUE_MAX || rp_b64url_decode(v, n, raw, sizeof(raw), &rn) != 0)
        return RP_EPARSE;
    if ((rc = aad(app, purpose, ad, sizeof(ad), &adn)) != 0)
        return RP_ECRYPTO; /* nothing was ever sealed for such a name */
    rp_buf_init(&pt, RP_SESSION_VALUE_MAX);
    rc = rp_aead_open(b->key, ad, adn, raw, rn, &pt);
    if (rc == 0) {
        j = json_loadb(pt.data, pt.len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(j)) {
            json_decref(j);
            rc = RP_EPARSE;
        } else {
            *payload = j;
        }
    } else if (rc != RP_ENOMEM && rc != RP_ECRYPTO) {
        rc = RP_EPARSE;
    }
    rp_buf_free_secret(&pt);
    OPENSSL_cleanse(raw, rn);
    return rc;
}

int rp_session_id(char out[RP_SESSION_ID_LEN + 1])
{
    unsigned char r[16];
    char tmp[32];

    if (rp_random_bytes(r, sizeof(r)) != 0 || rp_b64url_encode(r, sizeof(r), tmp, sizeof(tmp)) != 0)
        return RP_ECRYPTO;
    return rp_strlcpy(out, tmp, RP_SESSION_ID_LEN + 1) == 0 ? 0 : RP_ECRYPTO;
}

uint64_t rp_session_generation(rp_session_box *b)
{
    uint64_t g;

    pthread_mutex_lock(&b->lock);
    g = b->gen;
    pthread_mutex_unlock(&b->lock);
    return g;
}

int rp_session_revoke(rp_session_box *b, const char *sid, uint64_t gen, int64_t exp, int64_t now)
{
    size_t w = 0;
    int rc = 0;

    if (exp <= now)
        return 0; /* it has ended on its own */
    pthread_mutex_lock(&b->lock);
    if (gen < b->gen)
        goto out; /* revoked already */
    for (size_t i = 0; i < b->n; i++)
        if (b->list[i].exp > now && strcmp(b->list[i].sid, sid) == 0)
            goto out;                 /* listed already: a replayed sign-out adds nothing */
    for (size_t i = 0; i < b->n; i++) /* drop the ones that expired on their own */
        if (b->list[i].exp > now)
            b->list[w++] = b->list[i];
    b->n = w;
    if (b->n == b->cap) {
        size_t nc = b->cap == 0 ? 64 : b->cap * 2;
        revoked *nl = nc <= RP_SESSION_REVOKED_MAX ? rp_realloc(b->list, nc * sizeof(*nl)) : NULL;
        if (nl == NULL) {
            /* Full (or no memory): end every session issued until now rather than forget one. */
            b->gen++;
            b->n = 0;
            rc = nc <= RP_SESSION_REVOKED_MAX ? RP_ENOMEM : 0;
            goto out;
        }
        b->list = nl;
        b->cap = nc;
    }
    rp_strlcpy(b->list[b->n].sid, sid, sizeof(b->list[b->n].sid));
    b->list[b->n++].exp = exp;
out:
    pthread_mutex_unlock(&b->lock);
    return rc;
}

int rp_session_revoked(rp_session_box *b, const char *sid, uint64_t gen, int64_t now)
{
    int r = 0;

    pthread_mutex_lock(&b->lock);
    if (gen < b->gen)
        r = 1;
    for (size_t i = 0; !r && i < b->n; i++)
        if (b->list[i].exp > now && strcmp(b->list[i].sid, sid) == 0)
            r = 1;
    pthread_mutex_unlock(&b->lock);
    return r;
}
