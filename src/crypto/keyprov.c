/*
 * keyprov.c - the three root key providers behind one handle (see keyprov.h).
 *
 * Workload: a handful of calls per process lifetime - open, load the current generation, unwrap
 * the system key, then one unwrap per resource KEK on its first use, and a burst of unwrap/wrap
 * pairs during a root rotation. Nothing here is on a request's hot path, so every call takes the
 * provider's one mutex, which also serialises the HSM session (a PKCS#11 session must not be
 * used by two threads at once).
 *
 * File and passphrase generations are held as a wrapping key HKDF-derived from the root key
 * ("rampart/v1/root-wrap"), so the raw root bytes are only ever HKDF input (a legacy root.key is
 * also the system key's bytes: using it directly as an AES key too would mix two uses of one
 * key). Those wrapping keys and the passphrase live in one locked, non-dumpable mapping.
 *
 * PKCS#11 modules are process-wide (C_Initialize may run once per process), so loaded modules are
 * shared and reference-counted with every other user in the process (crypto/p11.c); each
 * provider has its own session.
 */
#include "crypto/keyprov.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/file.h"
#include "base/rand.h"
#include "base/str.h"
#include "crypto/aead.h"
#include "crypto/p11.h"
#include "crypto/rootkey.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <p11-kit/pkcs11.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLOTS           4 /* generations loaded at once: current, next, and room to spare */
#define WRAP_LABEL      "rampart/v1/root-wrap"
#define SEALED_AAD      "rampart/v1/root-sealed"
#define HSM_MAGIC       "RPH1"
#define HSM_IV_LEN      12
#define HSM_TAG_LEN     16
#define HSM_ID_LEN      16
#define SECMEM_LEN      4096
#define SECMEM_PASS     1024 /* offset of the passphrase in the locked mapping */
#define SEALED_FILE_MAX 4096

typedef struct gen_slot {
    uint32_t gen; /* 0: free */
    CK_OBJECT_HANDLE obj;
} gen_slot;

struct rp_keyprov {
    rp_root_provider type;
    pthread_mutex_t mu;
    char *dir;
    /* locked mapping: SLOTS wrapping keys of 32 bytes at 0, then the passphrase at SECMEM_PASS */
    unsigned char *sec;
    size_t passlen;
    gen_slot slots[SLOTS];
    rp__p11_module *mod;
    CK_SESSION_HANDLE sess;
    int has_sess;
};

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static unsigned char *slot_key(rp_keyprov *p, int i)
{
    return p->sec + (size_t)i * RP_KEYRING_KEY_LEN;
}

static int slot_find(const rp_keyprov *p, uint32_t gen)
{
    for (int i = 0; i < SLOTS; i++)
        if (gen != 0 && p->slots[i].gen == gen)
            return i;
    return -1;
}

static int slot_free(const rp_keyprov *p)
{
    for (int i = 0; i < SLOTS; i++)
        if (p->slots[i].gen == 0)
            return i;
    return -1;
}

static void slot_clear(rp_keyprov *p, int i)
{
    OPENSSL_cleanse(slot_key(p, i), RP_KEYRING_KEY_LEN);
    p->slots[i].gen = 0;
    p->slots[i].obj = CK_INVALID_HANDLE;
}

/* A file reference is a plain name inside keys_dir. */
static int ref_path(const rp_keyprov *p, const char *ref, char *path, size_t cap)
{
    int n;

    if (ref == NULL || ref[0] == '\0' || ref[0] == '.' || strchr(ref, '/') != NULL)
        return RP_EINVAL;
    n = snprintf(path, cap, "%s/%s", p->dir, ref);
    return n < 0 || (size_t)n >= cap ? RP_ETOOBIG : 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return RP_EIO;
    if (fsync(fd) != 0)
        rc = RP_EIO;
    close(fd);
    return rc;
}

/* The wrapping key of a file/passphrase generation, from the root key bytes. */
static int derive_wrap_key(const unsigned char root[RP_ROOTKEY_LEN], unsigned char out[32])
{
    rp_rootkey *k = NULL;
    int rc = rp_rootkey_from_bytes(root, &k);

    if (rc != 0)
        return rc;
    rc = rp_rootkey_derive(k, WRAP_LABEL, out, 32);
    rp_rootkey_free(k);
    return rc;
}

/* ------------------------------------------------------------ passphrase-sealed files */

int rp_keyprov_sealed_parse(const void *data, size_t n, rp_keyprov_sealed *out)
{
    const unsigned char *d = data;
    rp_keyprov_sealed s;

    if (data == NULL || out == NULL || n != RP_KEYPROV_SEALED_LEN ||
        memcmp(d, RP_KEYPROV_SEALED_MAGIC, 4) != 0)
        return RP_EPARSE;
    s.gen = get_u32(d + 4);
    s.t_cost = get_u32(d + 8);
    s.m_kib = get_u32(d + 12);
    s.lanes = get_u32(d + 16);
    s.hdr = d;
    s.salt = d + 20;
    s.env = d + RP_KEYPROV_SEALED_HDR_LEN;
    if (s.gen == 0 || s.t_cost < 1 || s.t_cost > 16 || s.lanes < 1 || s.lanes > 16 ||
        s.m_kib < 8 * s.lanes || s.m_kib > 1024 * 1024)
        return RP_EPARSE;
    if (memcmp(s.env, RP_AEAD_MAGIC, RP_AEAD_MAGIC_LEN) != 0)
        return RP_EPARSE;
    *out = s;
    return 0;
}

static size_t sealed_aad(const unsigned char *hdr, unsigned char *aad)
{
    size_t l = sizeof(SEALED_AAD); /* with its NUL */

    memcpy(aad, SEALED_AAD, l);
    memcpy(aad + l, hdr, RP_KEYPROV_SEALED_HDR_LEN);
    return l + RP_KEYPROV_SEALED_HDR_LEN;
}

int rp_keyprov_sealed_open(const rp_keyprov_sealed *s, const unsigned char kek[32],
                           unsigned char key[RP_KEYRING_KEY_LEN])
{
    unsigned char aad[sizeof(SEALED_AAD) + RP_KEYPROV_SEALED_HDR_LEN];
    size_t aadlen;
    rp_buf b;
    int rc;

    if (s == NULL || kek == NULL || key == NULL)
        return RP_EPARSE;
    aadlen = sealed_aad(s->hdr, aad);
    rp_buf_init(&b, 64);
    rc = rp_aead_open(kek, aad, aadlen, s->env, 64, &b);
    if (rc == 0 && b.len != RP_KEYRING_KEY_LEN)
        rc = RP_EPARSE;
    if (rc == 0)
        memcpy(key, b.data, RP_KEYRING_KEY_LEN);
    else
        OPENSSL_cleanse(key, RP_KEYRING_KEY_LEN);
    rp_buf_free_secret(&b);
    return rc;
}

static int argon2_kek(const rp_keyprov *p, uint32_t t, uint32_t m, uint32_t lanes,
                      const unsigned char *salt, unsigned char kek[32])
{
    int r = argon2id_hash_raw(t, m, lanes, p->sec + SECMEM_PASS, p->passlen, salt,
                              RP_KEYPROV_SALT_LEN, kek, 32);

    if (r == ARGON2_OK)
        return 0;
    OPENSSL_cleanse(kek, 32);
    return r == ARGON2_MEMORY_ALLOCATION_ERROR ? RP_ENOMEM : RP_ECRYPTO;
}

/* Creates path exclusively with mode 0600 and writes data; on failure nothing is left. */
static int write_new_0600(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600), rc;

    if (fd < 0)
        return errno == EEXIST ? RP_EEXIST : errno == ENOENT ? RP_ENOENT : RP_EIO;
    rc = fchmod(fd, 0600) == 0 ? 0 : RP_EIO;
    if (rc == 0)
        rc = rp_file_write_all(fd, data, n);
    if (rc == 0 && fsync(fd) != 0)
        rc = RP_EIO;
    if (close(fd) != 0 && rc == 0)
        rc = RP_EIO;
    if (rc != 0)
        unlink(path);
    return rc;
}

static int sealed_generate(rp_keyprov *p, uint32_t gen, const char *path)
{
    unsigned char file[RP_KEYPROV_SEALED_LEN], root[RP_ROOTKEY_LEN], kek[32];
    unsigned char aad[sizeof(SEALED_AAD) + RP_KEYPROV_SEALED_HDR_LEN];
    size_t aadlen;
    rp_buf env;
    int rc;

    rp_buf_init(&env, 64);
    memcpy(file, RP_KEYPROV_SEALED_MAGIC, 4);
    put_u32(file + 4, gen);
    put_u32(file + 8, RP_KEYPROV_ARGON2_T);
    put_u32(file + 12, RP_KEYPROV_ARGON2_M_KIB);
    put_u32(file + 16, RP_KEYPROV_ARGON2_P);
    rc = rp_random_bytes(file + 20, RP_KEYPROV_SALT_LEN);
    if (rc == 0)
        rc = rp_random_bytes(root, sizeof(root));
    if (rc != 0)
        goto out;
    rc = argon2_kek(p, RP_KEYPROV_ARGON2_T, RP_KEYPROV_ARGON2_M_KIB, RP_KEYPROV_ARGON2_P, file + 20,
                    kek);
    if (rc != 0)
        goto out;
    aadlen = sealed_aad(file, aad);
    rc = rp_aead_seal(kek, aad, aadlen, root, sizeof(root), &env);
    if (rc != 0)
        goto out;
    if (env.len != 64) {
        rc = RP_ECRYPTO;
        goto out;
    }
    memcpy(file + RP_KEYPROV_SEALED_HDR_LEN, env.data, 64);
    rc = write_new_0600(path, file, sizeof(file));
out:
    OPENSSL_cleanse(root, sizeof(root));
    OPENSSL_cleanse(kek, sizeof(kek));
    rp_buf_free(&env);
    return rc;
}

/* Reads a key file of at most SEALED_FILE_MAX bytes: regular, not a symlink, mode 0600. */
static int read_private_file(const char *path, unsigned char *buf, size_t cap, size_t *n)
{
    struct stat st;
    size_t got = 0;
    int fd, rc;

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
    for (;;) {
        ssize_t r;
        if (got == cap) {
            rc = RP_EPARSE; /* too long to be a key file */
            goto out;
        }
        r = read(fd, buf + got, cap - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = RP_EIO;
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    *n = got;
    rc = 0;
out:
    close(fd);
    return rc;
}

static int sealed_load(rp_keyprov *p, uint32_t gen, const char *path, unsigned char wrap[32])
{
    unsigned char file[SEALED_FILE_MAX], root[RP_ROOTKEY_LEN], kek[32];
    rp_keyprov_sealed s;
    size_t n = 0;
    int rc;

    rc = read_private_file(path, file, sizeof(file), &n);
    if (rc != 0)
        return rc;
    rc = rp_keyprov_sealed_parse(file, n, &s);
    if (rc == 0 && s.gen != gen)
        rc = RP_EPARSE; /* another generation's file put in this one's place */
    if (rc != 0)
        goto out;
    rc = argon2_kek(p, s.t_cost, s.m_kib, s.lanes, s.salt, kek);
    if (rc != 0)
        goto out;
    rc = rp_keyprov_sealed_open(&s, kek, root);
    if (rc != 0)
        goto out;
    rc = derive_wrap_key(root, wrap);
out:
    OPENSSL_cleanse(root, sizeof(root));
    OPENSSL_cleanse(kek, sizeof(kek));
    return rc;
}

/* ------------------------------------------------------------ PKCS#11 */

/* Loads the module and opens the provider's session (p11.h). */
static int p11_open(rp_keyprov *p, const rp_keyring_opts *o, char *err, size_t errlen)
{
    int rc;

    if (o->pkcs11_module == NULL || o->pkcs11_token == NULL || o->pkcs11_pin == NULL) {
        rp__p11_seterr(err, errlen, "the pkcs11 provider needs a module, a token label and a PIN");
        return RP_EINVAL;
    }
    rc = rp__p11_module_get(o->pkcs11_module, &p->mod, err, errlen);
    if (rc != 0)
        return rc;
    rc = rp__p11_session_open(p->mod, o->pkcs11_token, o->pkcs11_pin, &p->sess, err, errlen);
    if (rc == 0)
        p->has_sess = 1;
    /* keyprov.h promises no RP_EPERM from open: a locked PIN stays an RP_EIO here */
    return rc == RP_EPERM ? RP_EIO : rc;
}

/* Splits "label#hexid" into its label and CKA_ID. */
static int p11_ref(const char *ref, char *label, size_t lcap, unsigned char id[HSM_ID_LEN])
{
    const char *hash = ref == NULL ? NULL : strchr(ref, '#');
    size_t ln;

    if (hash == NULL || strlen(hash + 1) != 2 * HSM_ID_LEN)
        return RP_EINVAL;
    ln = (size_t)(hash - ref);
    if (ln == 0 || ln >= lcap)
        return RP_EINVAL;
    memcpy(label, ref, ln);
    label[ln] = '\0';
    for (size_t i = 0; i < HSM_ID_LEN; i++) {
        int hi = rp_hex_value((unsigned char)hash[1 + 2 * i]);
        int lo = rp_hex_value((unsigned char)hash[2 + 2 * i]);
        if (hi < 0 || lo < 0)
            return RP_EINVAL;
        id[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* Finds up to cap secret key objects with ref's label and id. */
static int p11_find(rp_keyprov *p, const char *ref, CK_OBJECT_HANDLE *objs, CK_ULONG cap,
                    CK_ULONG *n)
{
    CK_FUNCTION_LIST_PTR f = rp__p11_functions(p->mod);
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    char label[RP_KEYPROV_REF_MAX];
    unsigned char id[HSM_ID_LEN];
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_LABEL, label, 0},
        {CKA_ID, id, sizeof(id)},
    };
    CK_RV rv;
    int rc = p11_ref(ref, label, sizeof(label), id);

    if (rc != 0)
        return rc;
    tmpl[2].ulValueLen = strlen(label);
    rv = f->C_FindObjectsInit(p->sess, tmpl, sizeof(tmpl) / sizeof(tmpl[0]));
    if (rv != CKR_OK)
        return RP_EIO;
    rv = f->C_FindObjects(p->sess, objs, cap, n);
    if (f->C_FindObjectsFinal(p->sess) != CKR_OK || rv != CKR_OK)
        return RP_EIO;
    return 0;
}

static int p11_generate(rp_keyprov *p, const char *ref)
{
    CK_FUNCTION_LIST_PTR f = rp__p11_functions(p->mod);
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ULONG len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    char label[RP_KEYPROV_REF_MAX];
    unsigned char id[HSM_ID_LEN];
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE, found[1];
    CK_ULONG nfound = 0;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},     {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},   {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)}, {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)},   {CKA_WRAP, &no, sizeof(no)},
        {CKA_UNWRAP, &no, sizeof(no)},      {CKA_LABEL, label, 0},
        {CKA_ID, id, sizeof(id)},
    };
    CK_RV rv;
    int rc = p11_ref(ref, label, sizeof(label), id);

    if (rc != 0)
        return rc;
    tmpl[11].ulValueLen = strlen(label);
    rc = p11_find(p, ref, found, 1, &nfound);
    if (rc != 0)
        return rc;
    if (nfound != 0)
        return RP_EEXIST;
    rv = f->C_GenerateKey(p->sess, &mech, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &obj);
    return rv == CKR_OK ? 0 : RP_EIO;
}

static int p11_crypt(rp_keyprov *p, CK_OBJECT_HANDLE key, int enc, unsigned char *iv,
                     const void *aad, size_t aadlen, const unsigned char *in, size_t inlen,
                     unsigned char *out, size_t outcap, size_t *outlen)
{
    CK_FUNCTION_LIST_PTR f = rp__p11_functions(p->mod);
    CK_GCM_PARAMS gcm;
    CK_MECHANISM mech;
    CK_ULONG n = outcap;
    CK_RV rv;

    memset(&gcm, 0, sizeof(gcm));
    gcm.pIv = iv;
    gcm.ulIvLen = HSM_IV_LEN;
    gcm.ulIvBits = HSM_IV_LEN * 8;
    gcm.pAAD = (CK_BYTE_PTR)aad;
    gcm.ulAADLen = aadlen;
    gcm.ulTagBits = HSM_TAG_LEN * 8;
    mech.mechanism = CKM_AES_GCM;
    mech.pParameter = &gcm;
    mech.ulParameterLen = sizeof(gcm);
    if (enc) {
        rv = f->C_EncryptInit(p->sess, &mech, key);
        if (rv != CKR_OK)
            return RP_EIO;
        rv = f->C_Encrypt(p->sess, (CK_BYTE_PTR)in, inlen, out, &n);
    } else {
        rv = f->C_DecryptInit(p->sess, &mech, key);
        if (rv != CKR_OK)
            return RP_EIO;
        rv = f->C_Decrypt(p->sess, (CK_BYTE_PTR)in, inlen, out, &n);
    }
    if (rv != CKR_OK) {
        OPENSSL_cleanse(out, outcap);
        if (rv == CKR_BUFFER_TOO_SMALL) {
            /* the operation is still active after this one result: end it */
            unsigned char scratch[64];
            CK_ULONG sn = sizeof(scratch);
            if (enc)
                (void)f->C_Encrypt(p->sess, (CK_BYTE_PTR)in, inlen, scratch, &sn);
            else
                (void)f->C_Decrypt(p->sess, (CK_BYTE_PTR)in, inlen, scratch, &sn);
            OPENSSL_cleanse(scratch, sizeof(scratch));
        }
        if (enc || rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
            rv == CKR_DEVICE_ERROR || rv == CKR_DEVICE_REMOVED || rv == CKR_DEVICE_MEMORY ||
            rv == CKR_HOST_MEMORY || rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_USER_NOT_LOGGED_IN)
            return RP_EIO;
        return RP_ECRYPTO; /* the tag did not verify: altered, or another AAD or key */
    }
    if (n > outcap)
        return RP_EIO;
    *outlen = n;
    return 0;
}

/* ------------------------------------------------------------ the provider */

int rp_keyprov_open(const rp_keyring_opts *o, rp_keyprov **out, char *err, size_t errlen)
{
    rp_keyprov *p = NULL;
    int rc;

    if (o == NULL || out == NULL || o->keys_dir == NULL || o->keys_dir[0] == '\0') {
        rp__p11_seterr(err, errlen, "no keys directory");
        return RP_EINVAL;
    }
    if (o->provider != RP_ROOT_FILE && o->provider != RP_ROOT_PASSPHRASE &&
        o->provider != RP_ROOT_PKCS11) {
        rp__p11_seterr(err, errlen, "unknown root key provider");
        return RP_EINVAL;
    }
    if (o->provider == RP_ROOT_PASSPHRASE) {
        if (o->passphrase == NULL || o->passphrase_len == 0) {
            rp__p11_seterr(err, errlen, "the passphrase provider needs a passphrase");
            return RP_EINVAL;
        }
        if (o->passphrase_len > RP_KEYPROV_PASSPHRASE_MAX) {
            rp__p11_seterr(err, errlen, "the passphrase is longer than %d bytes",
                           RP_KEYPROV_PASSPHRASE_MAX);
            return RP_ETOOBIG;
        }
    }
    p = rp_calloc(1, sizeof(*p));
    if (p == NULL)
        return RP_ENOMEM;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        rp_free(p);
        return RP_ENOMEM;
    }
    p->type = o->provider;
    p->dir = rp_strdup(o->keys_dir);
    p->sec = rp__secmem_alloc(SECMEM_LEN);
    if (p->dir == NULL || p->sec == NULL) {
        rc = RP_ENOMEM;
        goto fail;
    }
    for (int i = 0; i < SLOTS; i++)
        p->slots[i].obj = CK_INVALID_HANDLE;
    if (o->provider == RP_ROOT_PASSPHRASE) {
        memcpy(p->sec + SECMEM_PASS, o->passphrase, o->passphrase_len);
        p->passlen = o->passphrase_len;
    }
    if (o->provider == RP_ROOT_PKCS11) {
        rc = p11_open(p, o, err, errlen);
        if (rc != 0)
            goto fail;
    }
    *out = p;
    return 0;
fail:
    rp_keyprov_close(p);
    return rc;
}

void rp_keyprov_close(rp_keyprov *p)
{
    if (p == NULL)
        return;
    if (p->has_sess)
        (void)rp__p11_functions(p->mod)->C_CloseSession(p->sess);
    rp__p11_module_put(p->mod);
    rp__secmem_free(p->sec, SECMEM_LEN);
    rp_free(p->dir);
    pthread_mutex_destroy(&p->mu);
    rp_free(p);
}

rp_root_provider rp_keyprov_type(const rp_keyprov *p)
{
    return p->type;
}

int rp_keyprov_new_ref(rp_keyprov *p, uint32_t gen, char *ref, size_t cap)
{
    unsigned char id[HSM_ID_LEN];
    char hex[2 * HSM_ID_LEN + 1];
    int n, rc;

    if (p == NULL || ref == NULL || gen == 0)
        return RP_EINVAL;
    switch (p->type) {
    case RP_ROOT_FILE: n = snprintf(ref, cap, "root-%u.key", (unsigned)gen); break;
    case RP_ROOT_PASSPHRASE: n = snprintf(ref, cap, "root-%u.sealed", (unsigned)gen); break;
    case RP_ROOT_PKCS11:
        /* The random id keeps two installs sharing a token from ever touching each other's
         * keys, and an object orphaned by a crash from being mistaken for a live one. */
        rc = rp_random_bytes(id, sizeof(id));
        if (rc != 0)
            return rc;
        rp_hex_encode(id, sizeof(id), hex);
        n = snprintf(ref, cap, "rampart-root-%u#%s", (unsigned)gen, hex);
        break;
    default: return RP_EINVAL;
    }
    return n < 0 || (size_t)n >= cap ? RP_ETOOBIG : 0;
}

int rp_keyprov_generate(rp_keyprov *p, uint32_t gen, const char *ref)
{
    char path[PATH_MAX];
    int rc;

    if (p == NULL || ref == NULL || gen == 0)
        return RP_EINVAL;
    pthread_mutex_lock(&p->mu);
    if (p->type == RP_ROOT_PKCS11) {
        rc = p11_generate(p, ref);
        goto out;
    }
    rc = ref_path(p, ref, path, sizeof(path));
    if (rc != 0)
        goto out;
    if (p->type == RP_ROOT_FILE)
        rc = rp_rootkey_file_create(path);
    else
        rc = sealed_generate(p, gen, path);
    if (rc == 0) {
        rc = fsync_dir(p->dir);
        if (rc != 0)
            unlink(path);
    }
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int rp_keyprov_load(rp_keyprov *p, uint32_t gen, const char *ref)
{
    char path[PATH_MAX];
    rp_rootkey *rk = NULL;
    CK_OBJECT_HANDLE objs[2];
    CK_ULONG n = 0;
    int i, rc;

    if (p == NULL || ref == NULL || gen == 0)
        return RP_EINVAL;
    pthread_mutex_lock(&p->mu);
    if (slot_find(p, gen) >= 0) {
        rc = 0;
        goto out;
    }
    i = slot_free(p);
    if (i < 0) {
        rc = RP_ETOOBIG;
        goto out;
    }
    if (p->type == RP_ROOT_PKCS11) {
        rc = p11_find(p, ref, objs, 2, &n);
        if (rc != 0)
            goto out;
        if (n != 1) {
            rc = n == 0 ? RP_ENOENT : RP_EPARSE;
            goto out;
        }
        p->slots[i].obj = objs[0];
        p->slots[i].gen = gen;
        goto out;
    }
    rc = ref_path(p, ref, path, sizeof(path));
    if (rc != 0)
        goto out;
    if (p->type == RP_ROOT_FILE) {
        rc = rp_rootkey_file_load(path, &rk);
        if (rc == 0)
            rc = rp_rootkey_derive(rk, WRAP_LABEL, slot_key(p, i), RP_KEYRING_KEY_LEN);
    } else {
        rc = sealed_load(p, gen, path, slot_key(p, i));
    }
    if (rc != 0) {
        slot_clear(p, i);
        goto out;
    }
    p->slots[i].gen = gen;
out:
    rp_rootkey_free(rk);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void rp_keyprov_unload(rp_keyprov *p, uint32_t gen)
{
    int i;

    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    i = slot_find(p, gen);
    if (i >= 0)
        slot_clear(p, i);
    pthread_mutex_unlock(&p->mu);
}

/* Overwrites a key file with zeros before unlinking it, so its bytes do not linger in the file's
 * old blocks (best effort on copy-on-write file systems and SSDs: see docs/encryption.md). */
static int wipe_unlink(const char *dir, const char *path)
{
    unsigned char zeros[512];
    struct stat st;
    off_t left;
    int fd, rc = 0;

    fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno != ELOOP)
            return RP_EIO;
    } else {
        if (fstat(fd, &st) != 0) {
            close(fd);
            return RP_EIO;
        }
        if (S_ISREG(st.st_mode)) {
            memset(zeros, 0, sizeof(zeros));
            left = st.st_size > SEALED_FILE_MAX ? SEALED_FILE_MAX : st.st_size;
            while (rc == 0 && left > 0) {
                size_t w = (size_t)left < sizeof(zeros) ? (size_t)left : sizeof(zeros);
                rc = rp_file_write_all(fd, zeros, w);
                left -= (off_t)w;
            }
            if (rc == 0 && fsync(fd) != 0)
                rc = RP_EIO;
        }
        if (close(fd) != 0 && rc == 0)
            rc = RP_EIO;
        if (rc != 0)
            return rc;
    }
    if (unlink(path) != 0 && errno != ENOENT)
        return RP_EIO;
    return fsync_dir(dir);
}

int rp_keyprov_destroy(rp_keyprov *p, uint32_t gen, const char *ref)
{
    char path[PATH_MAX];
    CK_OBJECT_HANDLE objs[8];
    CK_ULONG n = 0;
    int i, rc;

    if (p == NULL || ref == NULL)
        return RP_EINVAL;
    pthread_mutex_lock(&p->mu);
    i = slot_find(p, gen);
    if (i >= 0)
        slot_clear(p, i);
    if (p->type == RP_ROOT_PKCS11) {
        rc = p11_find(p, ref, objs, 8, &n);
        for (CK_ULONG k = 0; rc == 0 && k < n; k++)
            if (rp__p11_functions(p->mod)->C_DestroyObject(p->sess, objs[k]) != CKR_OK)
                rc = RP_EIO;
        goto out;
    }
    rc = ref_path(p, ref, path, sizeof(path));
    if (rc == 0)
        rc = wipe_unlink(p->dir, path);
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int rp_keyprov_wrap(rp_keyprov *p, uint32_t gen, const unsigned char key[RP_KEYRING_KEY_LEN],
                    const void *aad, size_t aadlen, rp_buf *out)
{
    unsigned char blob[RP_KEYPROV_WRAP_LEN];
    size_t n = 0;
    int i, rc;

    if (p == NULL || key == NULL || out == NULL || (aad == NULL && aadlen > 0))
        return RP_EINVAL;
    pthread_mutex_lock(&p->mu);
    i = slot_find(p, gen);
    if (i < 0) {
        rc = RP_ENOENT;
        goto out;
    }
    if (p->type != RP_ROOT_PKCS11) {
        rc = rp_aead_seal(slot_key(p, i), aad, aadlen, key, RP_KEYRING_KEY_LEN, out);
        goto out;
    }
    memcpy(blob, HSM_MAGIC, 4);
    rc = rp_random_bytes(blob + 4, HSM_IV_LEN);
    if (rc != 0)
        goto out;
    rc = p11_crypt(p, p->slots[i].obj, 1, blob + 4, aad, aadlen, key, RP_KEYRING_KEY_LEN,
                   blob + 4 + HSM_IV_LEN, RP_KEYRING_KEY_LEN + HSM_TAG_LEN, &n);
    if (rc == 0 && n != RP_KEYRING_KEY_LEN + HSM_TAG_LEN)
        rc = RP_EIO;
    if (rc == 0)
        rc = rp_buf_append(out, blob, sizeof(blob));
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int rp_keyprov_unwrap(rp_keyprov *p, uint32_t gen, const void *w, size_t n, const void *aad,
                      size_t aadlen, unsigned char key[RP_KEYRING_KEY_LEN])
{
    const unsigned char *b = w;
    unsigned char iv[HSM_IV_LEN], pt[RP_KEYRING_KEY_LEN + HSM_TAG_LEN];
    size_t ptlen = 0;
    rp_buf tmp;
    int i, rc;

    if (p == NULL || key == NULL || (w == NULL && n > 0) || (aad == NULL && aadlen > 0))
        return RP_EINVAL;
    rp_buf_init(&tmp, RP_KEYRING_KEY_LEN);
    pthread_mutex_lock(&p->mu);
    i = slot_find(p, gen);
    if (i < 0) {
        rc = RP_ENOENT;
        goto out;
    }
    if (n != RP_KEYPROV_WRAP_LEN) {
        rc = RP_EPARSE;
        goto out;
    }
    if (p->type != RP_ROOT_PKCS11) {
        rc = rp_aead_open(slot_key(p, i), aad, aadlen, w, n, &tmp);
        if (rc == 0 && tmp.len != RP_KEYRING_KEY_LEN)
            rc = RP_EPARSE;
        if (rc == 0)
            memcpy(key, tmp.data, RP_KEYRING_KEY_LEN);
        goto out;
    }
    if (memcmp(b, HSM_MAGIC, 4) != 0) {
        rc = RP_EPARSE;
        goto out;
    }
    memcpy(iv, b + 4, HSM_IV_LEN);
    rc = p11_crypt(p, p->slots[i].obj, 0, iv, aad, aadlen, b + 4 + HSM_IV_LEN,
                   RP_KEYRING_KEY_LEN + HSM_TAG_LEN, pt, sizeof(pt), &ptlen);
    if (rc == 0 && ptlen != RP_KEYRING_KEY_LEN)
        rc = RP_ECRYPTO;
    if (rc == 0)
        memcpy(key, pt, RP_KEYRING_KEY_LEN);
out:
    pthread_mutex_unlock(&p->mu);
    OPENSSL_cleanse(pt, sizeof(pt));
    rp_buf_free_secret(&tmp);
    if (rc != 0 && key != NULL)
        OPENSSL_cleanse(key, RP_KEYRING_KEY_LEN);
    return rc;
}
