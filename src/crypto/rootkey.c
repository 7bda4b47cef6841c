/*
 * rootkey.c - the root key file format, the key handle (also the keyring's system key), HKDF
 * derivation, and the locked-memory helper the key hierarchy shares.
 *
 * Workload: the key is loaded once at start-up and derive is called a handful of times (one
 * per purpose), so clarity beats speed here: the KDF is fetched on every call.
 *
 * The key lives in its own anonymous page (mmap, rp__secmem_alloc) rather than the heap so it can
 * be marked MADV_DONTDUMP and mlock'ed; both are best effort (an unprivileged process may be
 * over its RLIMIT_MEMLOCK), the wipe on free is not.
 */
#include "crypto/rootkey.h"
#include "base/err.h"
#include "base/file.h"
#include "base/rand.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { ROOTKEY_FILE = 1, ROOTKEY_BYTES = 2 };

struct rp_rootkey {
    int provider; /* where the bytes came from: a key file, or the key hierarchy */
    unsigned char key[RP_ROOTKEY_LEN];
};

void *rp__secmem_alloc(size_t n)
{
    void *p;

    if (n == 0)
        return NULL;
    /* A fresh anonymous mapping is zero-filled, and mmap rounds n up to whole pages. */
    p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    (void)madvise(p, n, MADV_DONTDUMP);
    (void)mlock(p, n);
    return p;
}

void rp__secmem_free(void *p, size_t n)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, n);
    (void)munlock(p, n);
    munmap(p, n);
}

static rp_rootkey *rootkey_alloc(void)
{
    return rp__secmem_alloc(sizeof(rp_rootkey));
}

void rp_rootkey_free(rp_rootkey *k)
{
    rp__secmem_free(k, sizeof(*k));
}

int rp_rootkey_from_bytes(const unsigned char key[RP_ROOTKEY_LEN], rp_rootkey **out)
{
    rp_rootkey *k;

    if (key == NULL || out == NULL)
        return RP_EINVAL;
    k = rootkey_alloc();
    if (k == NULL)
        return RP_ENOMEM;
    k->provider = ROOTKEY_BYTES;
    memcpy(k->key, key, RP_ROOTKEY_LEN);
    *out = k;
    return 0;
}

const unsigned char *rp__rootkey_bytes(const rp_rootkey *k)
{
    return k->key;
}

int rp_rootkey_file_create(const char *path)
{
    unsigned char key[RP_ROOTKEY_LEN];
    int fd, rc;

    if (path == NULL || path[0] == '\0')
        return RP_EINVAL;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return errno == EEXIST ? RP_EEXIST : errno == ENOENT ? RP_ENOENT : RP_EIO;
    /* umask may have removed bits; the mode must be exactly 0600 whatever it is. */
    if (fchmod(fd, 0600) != 0) {
        rc = RP_EIO;
        goto fail;
    }
    rc = rp_random_bytes(key, sizeof(key));
    if (rc != 0)
        goto fail;
    rc = rp_file_write_all(fd, key, sizeof(key));
    if (rc != 0)
        goto fail;
    if (fsync(fd) != 0) {
        rc = RP_EIO;
        goto fail;
    }
    OPENSSL_cleanse(key, sizeof(key));
    if (close(fd) != 0) {
        unlink(path);
        return RP_EIO;
    }
    return 0;
fail:
    OPENSSL_cleanse(key, sizeof(key));
    close(fd);
    unlink(path);
    return rc;
}

int rp_rootkey_file_load(const char *path, rp_rootkey **out)
{
    rp_rootkey *k = NULL;
    struct stat st;
    size_t got = 0;
    int fd, rc;

    if (path == NULL || out == NULL)
        return RP_EINVAL;
    /* O_NOFOLLOW: a symlink could point at a key someone else controls. O_NONBLOCK: a FIFO
     * planted at the path must fail the S_ISREG check below, not hang start-up. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return RP_ENOENT;
        return errno == ELOOP || errno == EACCES ? RP_EPERM : RP_EIO;
    }
    if (fstat(fd, &st) != 0) {
        rc = RP_EIO;
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        rc = RP_EPERM;
        goto out;
    }
    if (st.st_size != RP_ROOTKEY_LEN) {
        rc = RP_EPARSE;
        goto out;
    }
    k = rootkey_alloc();
    if (k == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    k->provider = ROOTKEY_FILE;
    /* Read one byte more than expected: a file that grew since fstat is not a key either. */
    for (;;) {
        unsigned char extra;
        ssize_t r;
        if (got < RP_ROOTKEY_LEN)
            r = read(fd, k->key + got, RP_ROOTKEY_LEN - got);
        else
            r = read(fd, &extra, 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = RP_EIO;
            goto out;
        }
        if (r == 0)
            break;
        if (got >= RP_ROOTKEY_LEN) {
            rc = RP_EPARSE;
            goto out;
        }
        got += (size_t)r;
    }
    if (got != RP_ROOTKEY_LEN) {
        rc = RP_EPARSE;
        goto out;
    }
    *out = k;
    k = NULL;
    rc = 0;
out:
    rp_rootkey_free(k);
    close(fd);
    return rc;
}

int rp_rootkey_derive(const rp_rootkey *k, const char *label, unsigned char *out, size_t n)
{
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *ctx = NULL;
    OSSL_PARAM params[4];
    int rc = RP_ECRYPTO;

    if (k == NULL || label == NULL || label[0] == '\0' || out == NULL || n == 0 ||
        n > RP_ROOTKEY_DERIVE_MAX)
        return RP_EINVAL;
    kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
    if (kdf == NULL)
        goto out;
    ctx = EVP_KDF_CTX_new(kdf);
    if (ctx == NULL)
        goto out;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)k->key, sizeof(k->key));
    params[2] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)label, strlen(label));
    params[3] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(ctx, out, n, params) != 1)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        OPENSSL_cleanse(out, n);
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return rc;
}
