/*
 * aead.c - the RPE1 envelope over OpenSSL's AES-256-GCM (EVP).
 *
 * Workload: every secret read and write and every blob chunk passes through here, so the calls
 * do one allocation at most (the output reservation) and no copies beyond the cipher's own.
 */
#include "crypto/aead.h"
#include "base/err.h"
#include "base/rand.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <pthread.h>
#include <string.h>

/*
 * Fetched once: EVP_aes_256_gcm() makes every init look the cipher up in the provider store
 * again (a lock and a hash lookup, a few microseconds a call on the secret read path).
 */
static EVP_CIPHER *gcm_fetched;
static pthread_once_t gcm_once = PTHREAD_ONCE_INIT;

static void gcm_fetch(void)
{
    gcm_fetched = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_CIPHER *gcm(void)
{
    if (pthread_once(&gcm_once, gcm_fetch) != 0 || gcm_fetched == NULL)
        return EVP_aes_256_gcm();
    return gcm_fetched;
}

int rp_aead_seal(const unsigned char key[32], const void *aad, size_t aadlen, const void *pt,
                 size_t ptlen, rp_buf *out)
{
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *p;
    size_t base, total;
    int outl, rc;

    if (key == NULL || out == NULL || (aad == NULL && aadlen > 0) || (pt == NULL && ptlen > 0))
        return RP_EINVAL;
    if (ptlen > RP_AEAD_MAX_PLAINTEXT || aadlen > RP_AEAD_MAX_AAD)
        return RP_ETOOBIG;
    total = ptlen + RP_AEAD_OVERHEAD;
    rc = rp_buf_reserve(out, total);
    if (rc != 0)
        return rc;
    base = out->len;
    p = (unsigned char *)out->data + base;
    memcpy(p, RP_AEAD_MAGIC, RP_AEAD_MAGIC_LEN);
    rc = rp_random_bytes(p + RP_AEAD_MAGIC_LEN, RP_AEAD_NONCE_LEN);
    if (rc != 0)
        goto out;
    rc = RP_ECRYPTO;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        goto out;
    /* GCM's default IV length is 12 bytes, the nonce length of the envelope. */
    if (EVP_EncryptInit_ex(ctx, gcm(), NULL, key, p + RP_AEAD_MAGIC_LEN) != 1)
        goto out;
    if (aadlen > 0 && EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)aadlen) != 1)
        goto out;
    p += RP_AEAD_MAGIC_LEN + RP_AEAD_NONCE_LEN;
    if (ptlen > 0) {
        if (EVP_EncryptUpdate(ctx, p, &outl, pt, (int)ptlen) != 1 || (size_t)outl != ptlen)
            goto out;
    }
    if (EVP_EncryptFinal_ex(ctx, p + ptlen, &outl) != 1 || outl != 0)
        goto out;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, RP_AEAD_TAG_LEN, p + ptlen) != 1)
        goto out;
    out->len = base + total;
    out->data[out->len] = '\0';
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (rc != 0)
        out->data[base] = '\0';
    return rc;
}

int rp_aead_open(const unsigned char key[32], const void *aad, size_t aadlen, const void *env,
                 size_t envlen, rp_buf *out)
{
    const unsigned char *e = env;
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *p;
    unsigned char tag[RP_AEAD_TAG_LEN];
    size_t base, ctlen;
    int outl, rc;

    if (key == NULL || out == NULL || (aad == NULL && aadlen > 0) || (env == NULL && envlen > 0))
        return RP_EINVAL;
    if (aadlen > RP_AEAD_MAX_AAD)
        return RP_ETOOBIG;
    if (envlen < RP_AEAD_OVERHEAD || memcmp(e, RP_AEAD_MAGIC, RP_AEAD_MAGIC_LEN) != 0)
        return RP_EPARSE;
    ctlen = envlen - RP_AEAD_OVERHEAD;
    if (ctlen > RP_AEAD_MAX_PLAINTEXT)
        return RP_ETOOBIG;
    rc = rp_buf_reserve(out, ctlen);
    if (rc != 0)
        return rc;
    base = out->len;
    p = (unsigned char *)out->data + base;
    /* The tag is copied because EVP's SET_TAG takes a non-const pointer. */
    memcpy(tag, e + envlen - RP_AEAD_TAG_LEN, RP_AEAD_TAG_LEN);
    rc = RP_ECRYPTO;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        goto out;
    if (EVP_DecryptInit_ex(ctx, gcm(), NULL, key, e + RP_AEAD_MAGIC_LEN) != 1)
        goto out;
    if (aadlen > 0 && EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int)aadlen) != 1)
        goto out;
    if (ctlen > 0) {
        if (EVP_DecryptUpdate(ctx, p, &outl, e + RP_AEAD_MAGIC_LEN + RP_AEAD_NONCE_LEN,
                              (int)ctlen) != 1 ||
            (size_t)outl != ctlen)
            goto out;
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, RP_AEAD_TAG_LEN, tag) != 1)
        goto out;
    /* Final checks the tag; until it succeeds the bytes in p are unauthenticated. */
    if (EVP_DecryptFinal_ex(ctx, p + ctlen, &outl) != 1)
        goto out;
    out->len = base + ctlen;
    out->data[out->len] = '\0';
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (rc != 0) {
        OPENSSL_cleanse(p, ctlen);
        out->data[base] = '\0';
    }
    return rc;
}
