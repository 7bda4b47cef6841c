/*
 * kvhsm.c - Key Vault -HSM keys in a PKCS#11 token (see kvhsm.h for the contract, the threading
 * model and what runs where).
 *
 * Layout: module loading (shared, reference-counted, as in crypto/keyprov.c), the handle and its
 * per-reference cache, key creation (generate / import / destroy), then the operations. Each
 * operation looks the reference up under the handle's mutex (cache, else C_FindObjects by
 * CKA_ID and a read of the public attributes), checks the algorithm against the key with the
 * same tables and reasons as kvkey.c, and then either runs one single-part PKCS#11 operation
 * while still holding the mutex or takes a reference to the cached public EVP_PKEY and runs
 * OpenSSL outside it. A cached object handle that the token no longer knows (the key was
 * destroyed through another handle or process) is dropped and looked up once more.
 */
#include "vault/kvhsm.h"

#include "base/alloc.h"
#include "base/err.h"
#include "base/rand.h"
#include "base/str.h"
#include "vault/kvkey.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define RSA_MAX_BYTES  512                        /* RSA-4096 */
#define EC_MAX_WIDTH   66                         /* P-521 */
#define EC_POINT_MAX   (3 + 1 + 2 * EC_MAX_WIDTH) /* DER OCTET STRING of an uncompressed point */
#define ATTR_MAX       600
#define ID_LEN         16
#define REF_PREFIX     "kvhsm:"
#define REF_PREFIX_LEN 6
#define REF_LEN        (REF_PREFIX_LEN + 2 * ID_LEN)
#define MAX_SLOTS      4096
#define DI_LEN         19 /* DigestInfo prefix of SHA-256/384/512 */

static const char R_KEYTYPE[] = "the key type does not support this algorithm";
static const char R_UNKNOWN_ALG[] = "unknown algorithm";
static const char R_NOT_ENC[] = "the algorithm is not an encryption algorithm";
static const char R_NOT_SIG[] = "the algorithm is not a signature algorithm";
static const char R_DIGEST_LEN[] = "the digest length does not match the algorithm";
static const char R_CT_LEN[] = "the ciphertext length does not match the key size";
static const char R_PT_LEN[] = "the plaintext is too long for the key and algorithm";
static const char R_DECRYPT[] = "decryption failed";
static const char R_CRYPTO[] = "the cryptographic operation failed";
static const char R_NOMEM[] = "out of memory";
static const char R_ARG[] = "invalid argument";
static const char R_OUTCAP[] = "the output buffer is too small";
static const char R_RSA15[] = "RSA1_5 decryption is not offered for HSM-protected keys";
static const char R_NOKEY[] = "the key was not found in the HSM";
static const char R_HSM[] = "the HSM failed";
static const char R_REF[] = "the HSM key reference is malformed";
static const char R_LABEL[] = "the HSM key label must be 1 to 128 bytes";
static const char R_BITS[] = "RSA keys must be 2048, 3072 or 4096 bits";
static const char R_EXP[] = "the RSA public exponent must be odd and between 3 and 2^32-1";
static const char R_CURVE[] = "the curve is not supported (P-256, P-384, P-521, P-256K)";
static const char R_HSM_CURVE[] = "the HSM does not support this curve";

/* ---------------------------------------------------------------- tables */

static const unsigned char OID_P256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char OID_P384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
static const unsigned char OID_P521[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23};
static const unsigned char OID_K256[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a};

typedef struct curve_info {
    const char *crv;          /* Key Vault name */
    const char *group;        /* OpenSSL group name */
    const unsigned char *oid; /* CKA_EC_PARAMS: the DER namedCurve OID */
    size_t oidlen;
    int bits;
    size_t width; /* coordinate / scalar bytes */
} curve_info;

static const curve_info curves[] = {
    {"P-256", "prime256v1", OID_P256, sizeof(OID_P256), 256, 32},
    {"P-384", "secp384r1", OID_P384, sizeof(OID_P384), 384, 48},
    {"P-521", "secp521r1", OID_P521, sizeof(OID_P521), 521, 66},
    {"P-256K", "secp256k1", OID_K256, sizeof(OID_K256), 256, 32},
};
#define NCURVES (sizeof(curves) / sizeof(curves[0]))

static const unsigned char DI_SHA256[DI_LEN] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                                0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                                0x01, 0x05, 0x00, 0x04, 0x20};
static const unsigned char DI_SHA384[DI_LEN] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                                0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                                0x02, 0x05, 0x00, 0x04, 0x30};
static const unsigned char DI_SHA512[DI_LEN] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                                0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                                0x03, 0x05, 0x00, 0x04, 0x40};

typedef enum { K_ENC = 1, K_SIG = 2 } alg_kind;
typedef enum { P_OAEP, P_PKCS1, P_PSS, P_ECDSA } alg_pad;

typedef struct alg_info {
    const char *name;
    alg_kind kind;
    int ec; /* 1: EC keys, 0: RSA keys */
    alg_pad pad;
    const char *md; /* OpenSSL digest name */
    size_t dlen;    /* digest length */
    int curve;      /* ES*: required curve index */
    CK_MECHANISM_TYPE hash;
    CK_RSA_PKCS_MGF_TYPE mgf;
    const unsigned char *prefix; /* RS*: DigestInfo prefix */
} alg_info;

static const alg_info algs[] = {
    {"RSA-OAEP", K_ENC, 0, P_OAEP, "SHA1", 20, -1, CKM_SHA_1, CKG_MGF1_SHA1, NULL},
    {"RSA-OAEP-256", K_ENC, 0, P_OAEP, "SHA256", 32, -1, CKM_SHA256, CKG_MGF1_SHA256, NULL},
    {"RSA1_5", K_ENC, 0, P_PKCS1, NULL, 0, -1, 0, 0, NULL},
    {"RS256", K_SIG, 0, P_PKCS1, "SHA256", 32, -1, CKM_SHA256, 0, DI_SHA256},
    {"RS384", K_SIG, 0, P_PKCS1, "SHA384", 48, -1, CKM_SHA384, 0, DI_SHA384},
    {"RS512", K_SIG, 0, P_PKCS1, "SHA512", 64, -1, CKM_SHA512, 0, DI_SHA512},
    {"PS256", K_SIG, 0, P_PSS, "SHA256", 32, -1, CKM_SHA256, CKG_MGF1_SHA256, NULL},
    {"PS384", K_SIG, 0, P_PSS, "SHA384", 48, -1, CKM_SHA384, CKG_MGF1_SHA384, NULL},
    {"PS512", K_SIG, 0, P_PSS, "SHA512", 64, -1, CKM_SHA512, CKG_MGF1_SHA512, NULL},
    {"ES256", K_SIG, 1, P_ECDSA, "SHA256", 32, 0, 0, 0, NULL},
    {"ES384", K_SIG, 1, P_ECDSA, "SHA384", 48, 1, 0, 0, NULL},
    {"ES512", K_SIG, 1, P_ECDSA, "SHA512", 64, 2, 0, 0, NULL},
    {"ES256K", K_SIG, 1, P_ECDSA, "SHA256", 32, 3, 0, 0, NULL},
};
#define NALGS (sizeof(algs) / sizeof(algs[0]))

/* Key Vault algorithms for keys this module never holds (oct): a "wrong key type". */
static const char *const other_algs[] = {
    "A128KW",
    "A192KW",
    "A256KW",
    "A128GCM",
    "A192GCM",
    "A256GCM",
    "A128CBC",
    "A192CBC",
    "A256CBC",
    "A128CBCPAD",
    "A192CBCPAD",
    "A256CBCPAD",
    "CKM_AES_KEY_WRAP",
    "CKM_AES_KEY_WRAP_PAD",
    "HS256",
    "HS384",
    "HS512",
    "EdDSA",
};

/* ---------------------------------------------------------------- state */

typedef struct p11_module {
    struct p11_module *next;
    char *path;
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    unsigned refs;
    int finalize; /* we initialised it, so we finalise it with the last reference */
} p11_module;

/* One cached reference. pkey == NULL marks a free slot. */
typedef struct key_entry {
    unsigned char id[ID_LEN];
    CK_OBJECT_HANDLE priv, pub;
    int ec;
    int curve; /* index into curves[], -1 for RSA */
    int bits;
    size_t size;    /* RSA: modulus bytes; EC: coordinate width */
    EVP_PKEY *pkey; /* the public half */
} key_entry;

/* What a public operation needs, copied out of the cache (pkey is a reference of its own). */
typedef struct key_view {
    int ec;
    int curve;
    int bits;
    size_t size;
    EVP_PKEY *pkey;
} key_view;

struct rp_kvhsm {
    pthread_mutex_t mu; /* the session and the cache */
    p11_module *mod;
    CK_SESSION_HANDLE sess;
    int has_sess;
    int oaep256_raw;  /* the token refused CKM_RSA_PKCS_OAEP with SHA-256 once */
    key_entry *cache; /* RP_KVHSM_CACHE_MAX entries */
    size_t victim;    /* next entry to evict when the cache is full */
};

static pthread_mutex_t modules_mu = PTHREAD_MUTEX_INITIALIZER;
static p11_module *modules;

static void set_reason(const char **reason, const char *r)
{
    if (reason != NULL)
        *reason = r;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The token, the session or the library failed (as opposed to the key or the input). */
static int rv_is_io(CK_RV rv)
{
    switch (rv) {
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_REMOVED:
    case CKR_DEVICE_MEMORY:
    case CKR_HOST_MEMORY:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
    case CKR_OPERATION_ACTIVE: return 1;
    default: return 0;
    }
}

static int rv_is_gone(CK_RV rv)
{
    return rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID;
}

/* ---------------------------------------------------------------- modules */

static void module_put(p11_module *m)
{
    p11_module **pp;

    if (m == NULL)
        return;
    pthread_mutex_lock(&modules_mu);
    if (--m->refs > 0) {
        pthread_mutex_unlock(&modules_mu);
        return;
    }
    for (pp = &modules; *pp != NULL; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    if (m->finalize)
        (void)m->f->C_Finalize(NULL);
    pthread_mutex_unlock(&modules_mu);
    /* The library stays mapped: modules such as SoftHSM2 register exit handlers. */
    rp_free(m->path);
    rp_free(m);
}

static int module_get(const char *path, p11_module **out, char *err, size_t errlen)
{
    CK_C_INITIALIZE_ARGS args;
    CK_C_GetFunctionList get;
    p11_module *m;
    CK_RV rv;
    int rc;

    pthread_mutex_lock(&modules_mu);
    for (m = modules; m != NULL; m = m->next)
        if (strcmp(m->path, path) == 0) {
            m->refs++;
            *out = m;
            pthread_mutex_unlock(&modules_mu);
            return 0;
        }
    m = rp_calloc(1, sizeof(*m));
    if (m == NULL || (m->path = rp_strdup(path)) == NULL) {
        seterr(err, errlen, "out of memory");
        rc = RP_ENOMEM;
        goto fail;
    }
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (m->dl == NULL) {
        seterr(err, errlen, "cannot load the PKCS#11 module %s", path);
        rc = access(path, F_OK) == 0 ? RP_EIO : RP_ENOENT;
        goto fail;
    }
    *(void **)&get = dlsym(m->dl, "C_GetFunctionList");
    if (get == NULL || get(&m->f) != CKR_OK || m->f == NULL) {
        seterr(err, errlen, "%s is not a PKCS#11 module", path);
        rc = RP_EIO;
        goto fail;
    }
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    rv = m->f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        seterr(err, errlen, "C_Initialize failed (CKR 0x%lx)", (unsigned long)rv);
        rc = RP_EIO;
        goto fail;
    }
    m->finalize = rv == CKR_OK;
    m->refs = 1;
    m->next = modules;
    modules = m;
    pthread_mutex_unlock(&modules_mu);
    *out = m;
    return 0;
fail:
    pthread_mutex_unlock(&modules_mu);
    if (m != NULL) {
        rp_free(m->path);
        rp_free(m);
    }
    return rc;
}

static int label_matches(const CK_UTF8CHAR *field, size_t width, const char *label)
{
    size_t n = strlen(label), end = width;

    while (end > 0 && field[end - 1] == ' ')
        end--;
    return n == end && memcmp(field, label, n) == 0;
}

/* Finds the slot holding the token labelled token. */
static int find_slot(CK_FUNCTION_LIST_PTR f, const char *token, CK_SLOT_ID *slot, char *err,
                     size_t errlen)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG nslots = 0;
    CK_TOKEN_INFO ti;
    CK_RV rv;
    int rc = RP_ENOENT;

    rv = f->C_GetSlotList(CK_TRUE, NULL, &nslots);
    if (rv != CKR_OK || nslots > MAX_SLOTS) {
        seterr(err, errlen, "C_GetSlotList failed (CKR 0x%lx)", (unsigned long)rv);
        return RP_EIO;
    }
    if (nslots > 0) {
        slots = rp_calloc(nslots, sizeof(*slots));
        if (slots == NULL) {
            seterr(err, errlen, "out of memory");
            return RP_ENOMEM;
        }
        rv = f->C_GetSlotList(CK_TRUE, slots, &nslots);
        if (rv != CKR_OK) {
            seterr(err, errlen, "C_GetSlotList failed (CKR 0x%lx)", (unsigned long)rv);
            rc = RP_EIO;
            goto out;
        }
    }
    for (CK_ULONG i = 0; i < nslots; i++) {
        if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        if (label_matches(ti.label, sizeof(ti.label), token)) {
            *slot = slots[i];
            rc = 0;
            goto out;
        }
    }
    seterr(err, errlen, "no PKCS#11 token labelled \"%s\"", token);
out:
    rp_free(slots);
    return rc;
}

/* ---------------------------------------------------------------- references and the cache */

static void ref_write(const unsigned char id[ID_LEN], char ref[RP_KVHSM_REF_MAX])
{
    memcpy(ref, REF_PREFIX, REF_PREFIX_LEN);
    rp_hex_encode(id, ID_LEN, ref + REF_PREFIX_LEN);
}

static int ref_parse(const char *ref, unsigned char id[ID_LEN])
{
    if (ref == NULL || strlen(ref) != REF_LEN || memcmp(ref, REF_PREFIX, REF_PREFIX_LEN) != 0)
        return RP_EINVAL;
    for (size_t i = 0; i < ID_LEN; i++) {
        int hi = rp_hex_value((unsigned char)ref[REF_PREFIX_LEN + 2 * i]);
        int lo = rp_hex_value((unsigned char)ref[REF_PREFIX_LEN + 2 * i + 1]);
        if (hi < 0 || lo < 0)
            return RP_EINVAL;
        id[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static void entry_clear(key_entry *e)
{
    EVP_PKEY_free(e->pkey);
    memset(e, 0, sizeof(*e));
}

static key_entry *cache_find(rp_kvhsm *h, const unsigned char id[ID_LEN])
{
    for (size_t i = 0; i < RP_KVHSM_CACHE_MAX; i++)
        if (h->cache[i].pkey != NULL && memcmp(h->cache[i].id, id, ID_LEN) == 0)
            return &h->cache[i];
    return NULL;
}

static void cache_drop(rp_kvhsm *h, const unsigned char id[ID_LEN])
{
    key_entry *e = cache_find(h, id);

    if (e != NULL)
        entry_clear(e);
}

/* Up to cap objects of class cls with CKA_ID id. Caller holds h->mu. */
static CK_RV find_objs(rp_kvhsm *h, CK_OBJECT_CLASS cls, const unsigned char id[ID_LEN],
                       CK_OBJECT_HANDLE *objs, CK_ULONG cap, CK_ULONG *n)
{
    CK_FUNCTION_LIST_PTR f = h->mod->f;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_ID, (void *)id, ID_LEN},
    };
    CK_RV rv, rv2;

    *n = 0;
    rv = f->C_FindObjectsInit(h->sess, t, 2);
    if (rv != CKR_OK)
        return rv;
    rv = f->C_FindObjects(h->sess, objs, cap, n);
    rv2 = f->C_FindObjectsFinal(h->sess);
    return rv != CKR_OK ? rv : rv2;
}

/* Reads one attribute of at most cap bytes. Caller holds h->mu. */
static CK_RV get_attr(rp_kvhsm *h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, void *buf,
                      size_t cap, size_t *len)
{
    CK_ATTRIBUTE a = {type, buf, cap};
    CK_RV rv = h->mod->f->C_GetAttributeValue(h->sess, obj, &a, 1);

    if (rv != CKR_OK)
        return rv;
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > cap)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    *len = a.ulValueLen;
    return CKR_OK;
}

/* A public EVP_PKEY of type ("RSA" / "EC") from params, or NULL. */
static EVP_PKEY *pub_from_params(const char *type, const OSSL_PARAM *params)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pk = NULL;

    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, (OSSL_PARAM *)params) <= 0)
        pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    return pk;
}

/*
 * The uncompressed point inside CKA_EC_POINT, which PKCS#11 says is a DER OCTET STRING (some
 * tokens return the bare point instead; the lengths cannot be confused). 0 or RP_EIO.
 */
static int ec_point_unwrap(const unsigned char *a, size_t n, size_t w, const unsigned char **pt)
{
    size_t plen = 1 + 2 * w;

    if (n == plen && a[0] == 0x04) {
        *pt = a;
        return 0;
    }
    if (plen < 128 && n == 2 + plen && a[0] == 0x04 && a[1] == plen && a[2] == 0x04) {
        *pt = a + 2;
        return 0;
    }
    if (plen >= 128 && plen < 256 && n == 3 + plen && a[0] == 0x04 && a[1] == 0x81 &&
        a[2] == plen && a[3] == 0x04) {
        *pt = a + 3;
        return 0;
    }
    return RP_EIO;
}

/* The DER OCTET STRING of pt[0..n) into out (EC_POINT_MAX). Its length. */
static size_t ec_point_wrap(const unsigned char *pt, size_t n, unsigned char *out)
{
    size_t h = 0;

    out[h++] = 0x04;
    if (n >= 128)
        out[h++] = 0x81;
    out[h++] = (unsigned char)n;
    memcpy(out + h, pt, n);
    return h + n;
}

/* Builds e's public key from the public object's attributes. Caller holds h->mu. */
static int load_public(rp_kvhsm *h, key_entry *e, CK_KEY_TYPE kt, const char **reason)
{
    unsigned char a1[ATTR_MAX], a2[ATTR_MAX];
    const unsigned char *pt = NULL;
    size_t l1 = 0, l2 = 0;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    BIGNUM *n = NULL, *ex = NULL;
    int rc = RP_EIO;

    set_reason(reason, R_HSM);
    if (kt == CKK_RSA) {
        if (get_attr(h, e->pub, CKA_MODULUS, a1, sizeof(a1), &l1) != CKR_OK ||
            get_attr(h, e->pub, CKA_PUBLIC_EXPONENT, a2, sizeof(a2), &l2) != CKR_OK)
            goto out;
        n = BN_bin2bn(a1, (int)l1, NULL);
        ex = BN_bin2bn(a2, (int)l2, NULL);
        if (n == NULL || ex == NULL) {
            rc = RP_ENOMEM;
            set_reason(reason, R_NOMEM);
            goto out;
        }
        e->ec = 0;
        e->curve = -1;
        e->bits = BN_num_bits(n);
        e->size = (size_t)BN_num_bytes(n);
        if (e->bits != 2048 && e->bits != 3072 && e->bits != 4096) {
            rc = RP_EUNSUPPORTED;
            set_reason(reason, R_BITS);
            goto out;
        }
        bld = OSSL_PARAM_BLD_new();
        if (bld == NULL || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, ex) != 1 ||
            (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
            rc = RP_ENOMEM;
            set_reason(reason, R_NOMEM);
            goto out;
        }
        e->pkey = pub_from_params("RSA", params);
    } else if (kt == CKK_EC) {
        if (get_attr(h, e->pub, CKA_EC_PARAMS, a1, sizeof(a1), &l1) != CKR_OK ||
            get_attr(h, e->pub, CKA_EC_POINT, a2, sizeof(a2), &l2) != CKR_OK)
            goto out;
        e->ec = 1;
        e->curve = -1;
        for (size_t i = 0; i < NCURVES; i++)
            if (l1 == curves[i].oidlen && memcmp(a1, curves[i].oid, l1) == 0)
                e->curve = (int)i;
        if (e->curve < 0) {
            rc = RP_EUNSUPPORTED;
            set_reason(reason, R_CURVE);
            goto out;
        }
        e->size = curves[e->curve].width;
        e->bits = curves[e->curve].bits;
        if (ec_point_unwrap(a2, l2, e->size, &pt) != 0)
            goto out;
        bld = OSSL_PARAM_BLD_new();
        if (bld == NULL ||
            OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curves[e->curve].group,
                                            0) != 1 ||
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * e->size) !=
                1 ||
            (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
            rc = RP_ENOMEM;
            set_reason(reason, R_NOMEM);
            goto out;
        }
        e->pkey = pub_from_params("EC", params);
    } else {
        rc = RP_EUNSUPPORTED;
        set_reason(reason, "the key type is not supported");
        goto out;
    }
    if (e->pkey == NULL) {
        rc = RP_ECRYPTO;
        set_reason(reason, R_CRYPTO);
        goto out;
    }
    rc = 0;
out:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(ex);
    ERR_clear_error();
    return rc;
}

/*
 * The cache entry of id, looking the key up in the token on a miss. Caller holds h->mu. 0 and
 * *out, or RP_ENOENT, RP_EIO, RP_ENOMEM, RP_EUNSUPPORTED, RP_ECRYPTO with a reason.
 */
static int lookup(rp_kvhsm *h, const unsigned char id[ID_LEN], key_entry **out, const char **reason)
{
    CK_OBJECT_HANDLE priv[2], pub[2];
    CK_ULONG np = 0, nq = 0;
    CK_KEY_TYPE kt = 0, kt2 = 0;
    size_t l = 0;
    key_entry e, *slot = NULL;
    CK_RV rv;
    int rc;

    *out = cache_find(h, id);
    if (*out != NULL)
        return 0;
    memset(&e, 0, sizeof(e));
    memcpy(e.id, id, ID_LEN);
    rv = find_objs(h, CKO_PRIVATE_KEY, id, priv, 2, &np);
    if (rv == CKR_OK)
        rv = find_objs(h, CKO_PUBLIC_KEY, id, pub, 2, &nq);
    if (rv != CKR_OK) {
        set_reason(reason, R_HSM);
        return RP_EIO;
    }
    if (np == 0) {
        set_reason(reason, R_NOKEY);
        return RP_ENOENT;
    }
    /* two objects with one random id, or a private half without its public half: not ours */
    if (np != 1 || nq != 1) {
        set_reason(reason, R_HSM);
        return RP_EIO;
    }
    e.priv = priv[0];
    e.pub = pub[0];
    if (get_attr(h, e.priv, CKA_KEY_TYPE, &kt, sizeof(kt), &l) != CKR_OK || l != sizeof(kt) ||
        get_attr(h, e.pub, CKA_KEY_TYPE, &kt2, sizeof(kt2), &l) != CKR_OK || l != sizeof(kt2) ||
        kt != kt2) {
        set_reason(reason, R_HSM);
        return RP_EIO;
    }
    rc = load_public(h, &e, kt, reason);
    if (rc != 0) {
        entry_clear(&e);
        return rc;
    }
    for (size_t i = 0; i < RP_KVHSM_CACHE_MAX && slot == NULL; i++)
        if (h->cache[i].pkey == NULL)
            slot = &h->cache[i];
    if (slot == NULL) {
        slot = &h->cache[h->victim];
        h->victim = (h->victim + 1) % RP_KVHSM_CACHE_MAX;
        entry_clear(slot);
    }
    *slot = e;
    *out = slot;
    return 0;
}

/* Looks ref up and copies what a public operation needs; v->pkey is the caller's to free. */
static int view_of(rp_kvhsm *h, const char *ref, key_view *v, const char **reason)
{
    unsigned char id[ID_LEN];
    key_entry *e = NULL;
    int rc;

    if (ref_parse(ref, id) != 0) {
        set_reason(reason, R_REF);
        return RP_EINVAL;
    }
    pthread_mutex_lock(&h->mu);
    rc = lookup(h, id, &e, reason);
    if (rc == 0) {
        if (EVP_PKEY_up_ref(e->pkey) != 1) {
            rc = RP_ECRYPTO;
            set_reason(reason, R_CRYPTO);
        } else {
            v->ec = e->ec;
            v->curve = e->curve;
            v->bits = e->bits;
            v->size = e->size;
            v->pkey = e->pkey;
        }
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

/*
 * Finds alg and checks it against the key and the operation kind (kvkey.c's alg_for). NULL with
 * *rc and *reason set if it does not fit.
 */
static const alg_info *alg_for(int ec, int curve, const char *alg, alg_kind kind, int *rc,
                               const char **reason)
{
    const alg_info *a = NULL;

    *rc = RP_EINVAL;
    for (size_t i = 0; i < NALGS; i++) {
        if (strcmp(algs[i].name, alg) == 0) {
            a = &algs[i];
            break;
        }
    }
    if (a == NULL) {
        for (size_t i = 0; i < sizeof(other_algs) / sizeof(other_algs[0]); i++) {
            if (strcmp(other_algs[i], alg) == 0) {
                set_reason(reason, R_KEYTYPE);
                return NULL;
            }
        }
        set_reason(reason, R_UNKNOWN_ALG);
        return NULL;
    }
    if (a->ec != ec || (a->curve >= 0 && a->curve != curve)) {
        set_reason(reason, R_KEYTYPE);
        return NULL;
    }
    if (a->kind != kind) {
        set_reason(reason, kind == K_ENC ? R_NOT_ENC : R_NOT_SIG);
        return NULL;
    }
    *rc = 0;
    return a;
}

/* ---------------------------------------------------------------- the handle */

int rp_kvhsm_open(const char *module, const char *token, const char *pin, rp_kvhsm **out, char *err,
                  size_t errlen)
{
    rp_kvhsm *h = NULL;
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot = 0;
    CK_RV rv;
    int rc;

    if (module == NULL || module[0] == '\0' || token == NULL || token[0] == '\0' || pin == NULL ||
        pin[0] == '\0' || out == NULL) {
        seterr(err, errlen, "the HSM key store needs a PKCS#11 module, a token label and a PIN");
        return RP_EINVAL;
    }
    h = rp_calloc(1, sizeof(*h));
    if (h == NULL) {
        seterr(err, errlen, "out of memory");
        return RP_ENOMEM;
    }
    if (pthread_mutex_init(&h->mu, NULL) != 0) {
        rp_free(h);
        seterr(err, errlen, "out of memory");
        return RP_ENOMEM;
    }
    h->cache = rp_calloc(RP_KVHSM_CACHE_MAX, sizeof(*h->cache));
    if (h->cache == NULL) {
        seterr(err, errlen, "out of memory");
        rc = RP_ENOMEM;
        goto fail;
    }
    rc = module_get(module, &h->mod, err, errlen);
    if (rc != 0)
        goto fail;
    f = h->mod->f;
    rc = find_slot(f, token, &slot, err, errlen);
    if (rc != 0)
        goto fail;
    rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h->sess);
    if (rv != CKR_OK) {
        seterr(err, errlen, "C_OpenSession failed (CKR 0x%lx)", (unsigned long)rv);
        rc = RP_EIO;
        goto fail;
    }
    h->has_sess = 1;
    rv = f->C_Login(h->sess, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE) {
        seterr(err, errlen, "wrong PIN for PKCS#11 token \"%s\"", token);
        rc = RP_ECRYPTO;
        goto fail;
    }
    if (rv == CKR_PIN_LOCKED) {
        seterr(err, errlen, "the user PIN of PKCS#11 token \"%s\" is locked", token);
        rc = RP_EPERM;
        goto fail;
    }
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        seterr(err, errlen, "C_Login failed (CKR 0x%lx)", (unsigned long)rv);
        rc = RP_EIO;
        goto fail;
    }
    *out = h;
    return 0;
fail:
    rp_kvhsm_close(h);
    return rc;
}

void rp_kvhsm_close(rp_kvhsm *h)
{
    if (h == NULL)
        return;
    if (h->cache != NULL)
        for (size_t i = 0; i < RP_KVHSM_CACHE_MAX; i++)
            entry_clear(&h->cache[i]);
    if (h->has_sess)
        (void)h->mod->f->C_CloseSession(h->sess);
    module_put(h->mod);
    rp_free(h->cache);
    pthread_mutex_destroy(&h->mu);
    rp_free(h);
}

/* ---------------------------------------------------------------- creating keys */

static int label_ok(const char *label)
{
    size_t n = label == NULL ? 0 : strlen(label);

    return n > 0 && n <= RP_KVHSM_LABEL_MAX;
}

/* The status of a failed C_GenerateKeyPair / C_CreateObject. */
static int create_rc(CK_RV rv, int ec, const char **reason)
{
    if (rv == CKR_HOST_MEMORY) {
        set_reason(reason, R_NOMEM);
        return RP_ENOMEM;
    }
    if (rv_is_io(rv)) {
        set_reason(reason, R_HSM);
        return RP_EIO;
    }
    if (ec && (rv == CKR_CURVE_NOT_SUPPORTED || rv == CKR_DOMAIN_PARAMS_INVALID ||
               rv == CKR_MECHANISM_INVALID)) {
        set_reason(reason, R_HSM_CURVE);
        return RP_EUNSUPPORTED;
    }
    set_reason(reason, R_CRYPTO);
    return RP_ECRYPTO;
}

/* Generates a key pair with mechanism mech; pubt / privt get the common attributes added. */
static int generate(rp_kvhsm *h, CK_MECHANISM_TYPE mech, int ec, const CK_ATTRIBUTE *pubx,
                    CK_ULONG npubx, const CK_ATTRIBUTE *privx, CK_ULONG nprivx, const char *label,
                    char ref[RP_KVHSM_REF_MAX], const char **reason)
{
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    unsigned char id[ID_LEN];
    CK_MECHANISM m = {mech, NULL, 0};
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    CK_ATTRIBUTE pubt[12], privt[16];
    CK_ULONG np = 0, nq = 0;
    CK_RV rv;
    int rc;

    rc = rp_random_bytes(id, sizeof(id));
    if (rc != 0) {
        set_reason(reason, R_CRYPTO);
        return rc;
    }
    pubt[np++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    pubt[np++] = (CK_ATTRIBUTE){CKA_PRIVATE, &yes, sizeof(yes)};
    pubt[np++] = (CK_ATTRIBUTE){CKA_VERIFY, &yes, sizeof(yes)};
    pubt[np++] = (CK_ATTRIBUTE){CKA_WRAP, &no, sizeof(no)};
    pubt[np++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    pubt[np++] = (CK_ATTRIBUTE){CKA_ID, id, sizeof(id)};
    for (CK_ULONG i = 0; i < npubx; i++)
        pubt[np++] = pubx[i];
    privt[nq++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_PRIVATE, &yes, sizeof(yes)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_SENSITIVE, &yes, sizeof(yes)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &no, sizeof(no)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_SIGN, &yes, sizeof(yes)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_UNWRAP, &no, sizeof(no)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_DERIVE, &no, sizeof(no)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_ID, id, sizeof(id)};
    for (CK_ULONG i = 0; i < nprivx; i++)
        privt[nq++] = privx[i];
    pthread_mutex_lock(&h->mu);
    rv = h->mod->f->C_GenerateKeyPair(h->sess, &m, pubt, np, privt, nq, &pub, &priv);
    pthread_mutex_unlock(&h->mu);
    if (rv != CKR_OK)
        return create_rc(rv, ec, reason);
    ref_write(id, ref);
    return 0;
}

int rp_kvhsm_generate_rsa(rp_kvhsm *h, int bits, uint64_t e, const char *label,
                          char ref[RP_KVHSM_REF_MAX], const char **reason)
{
    CK_BBOOL yes = CK_TRUE;
    CK_ULONG mbits = (CK_ULONG)bits;
    unsigned char ebytes[8];
    size_t elen = 0;

    if (h == NULL || ref == NULL) {
        set_reason(reason, R_ARG);
        return RP_EINVAL;
    }
    if (!label_ok(label)) {
        set_reason(reason, R_LABEL);
        return RP_EINVAL;
    }
    if (bits != 2048 && bits != 3072 && bits != 4096) {
        set_reason(reason, R_BITS);
        return RP_EINVAL;
    }
    if (e == 0)
        e = RP_KVKEY_RSA_E_DEFAULT;
    if (e < 3 || e > RP_KVKEY_RSA_E_MAX || (e & 1) == 0) {
        set_reason(reason, R_EXP);
        return RP_EINVAL;
    }
    for (int shift = 24; shift >= 0; shift -= 8)
        if ((e >> shift) != 0 || elen > 0)
            ebytes[elen++] = (unsigned char)(e >> shift);
    {
        CK_ATTRIBUTE pubx[] = {
            {CKA_MODULUS_BITS, &mbits, sizeof(mbits)},
            {CKA_PUBLIC_EXPONENT, ebytes, elen},
            {CKA_ENCRYPT, &yes, sizeof(yes)},
        };
        CK_ATTRIBUTE privx[] = {
            {CKA_DECRYPT, &yes, sizeof(yes)},
        };
        return generate(h, CKM_RSA_PKCS_KEY_PAIR_GEN, 0, pubx, 3, privx, 1, label, ref, reason);
    }
}

static int curve_index(const char *crv)
{
    for (size_t i = 0; crv != NULL && i < NCURVES; i++)
        if (strcmp(curves[i].crv, crv) == 0)
            return (int)i;
    return -1;
}

int rp_kvhsm_generate_ec(rp_kvhsm *h, const char *crv, const char *label,
                         char ref[RP_KVHSM_REF_MAX], const char **reason)
{
    CK_BBOOL no = CK_FALSE;
    int c;

    if (h == NULL || ref == NULL || crv == NULL) {
        set_reason(reason, R_ARG);
        return RP_EINVAL;
    }
    if (!label_ok(label)) {
        set_reason(reason, R_LABEL);
        return RP_EINVAL;
    }
    c = curve_index(crv);
    if (c < 0) {
        set_reason(reason, R_CURVE);
        return RP_EUNSUPPORTED;
    }
    {
        CK_ATTRIBUTE pubx[] = {
            {CKA_EC_PARAMS, (void *)curves[c].oid, curves[c].oidlen},
            {CKA_DERIVE, &no, sizeof(no)},
        };
        CK_ATTRIBUTE privx[] = {
            {CKA_DECRYPT, &no, sizeof(no)},
        };
        return generate(h, CKM_EC_KEY_PAIR_GEN, 1, pubx, 2, privx, 1, label, ref, reason);
    }
}

/* The big-endian bytes of BIGNUM parameter name of pk into buf (width > 0: padded to it). */
static int bn_bytes(const EVP_PKEY *pk, const char *name, unsigned char *buf, size_t cap,
                    size_t width, CK_ULONG *len)
{
    BIGNUM *bn = NULL;
    int n = -1;

    if (EVP_PKEY_get_bn_param(pk, name, &bn) != 1)
        return RP_ECRYPTO;
    if (width > 0 && width <= cap)
        n = BN_bn2binpad(bn, buf, (int)width);
    else if (width == 0 && (size_t)BN_num_bytes(bn) <= cap)
        n = BN_bn2bin(bn, buf);
    BN_clear_free(bn);
    if (n <= 0)
        return RP_ECRYPTO;
    *len = (CK_ULONG)n;
    return 0;
}

/* Creates the two objects of an imported key. Caller holds h->mu. */
static CK_RV create_pair(rp_kvhsm *h, CK_ATTRIBUTE *privt, CK_ULONG nq, CK_ATTRIBUTE *pubt,
                         CK_ULONG np)
{
    CK_FUNCTION_LIST_PTR f = h->mod->f;
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE, pub = CK_INVALID_HANDLE;
    CK_RV rv;

    rv = f->C_CreateObject(h->sess, privt, nq, &priv);
    if (rv != CKR_OK)
        return rv;
    rv = f->C_CreateObject(h->sess, pubt, np, &pub);
    if (rv != CKR_OK)
        (void)f->C_DestroyObject(h->sess, priv);
    return rv;
}

int rp_kvhsm_import(rp_kvhsm *h, const struct rp_kvkey *k, const char *label,
                    char ref[RP_KVHSM_REF_MAX], const char **reason)
{
    static const char *const rsa_names[] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
    };
    static const CK_ATTRIBUTE_TYPE rsa_attrs[] = {
        CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
        CKA_PRIME_2, CKA_EXPONENT_1,      CKA_EXPONENT_2,       CKA_COEFFICIENT,
    };
    CK_OBJECT_CLASS cpriv = CKO_PRIVATE_KEY, cpub = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    unsigned char id[ID_LEN];
    unsigned char comp[8][RSA_MAX_BYTES]; /* RSA components, or d for EC in comp[0] */
    unsigned char point[1 + 2 * EC_MAX_WIDTH], wrapped[EC_POINT_MAX];
    CK_ULONG clen[8] = {0}, xl = 0, yl = 0;
    CK_ATTRIBUTE privt[24], pubt[14];
    CK_ULONG nq = 0, np = 0;
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t dern = 0, w = 0;
    EVP_PKEY *pk = NULL;
    int ec, c = -1, rc;
    CK_RV rv;

    if (h == NULL || k == NULL || ref == NULL) {
        set_reason(reason, R_ARG);
        return RP_EINVAL;
    }
    if (!label_ok(label)) {
        set_reason(reason, R_LABEL);
        return RP_EINVAL;
    }
    ec = rp_kvkey_type_of(k) == RP_KVKEY_EC;
    if (ec) {
        c = curve_index(rp_kvkey_crv(k));
        if (c < 0) {
            set_reason(reason, R_CURVE);
            return RP_EUNSUPPORTED;
        }
        w = curves[c].width;
    }
    rc = rp_random_bytes(id, sizeof(id));
    if (rc != 0) {
        set_reason(reason, R_CRYPTO);
        return rc;
    }
    rc = rp_kvkey_to_der(k, &der, &dern);
    if (rc != 0) {
        set_reason(reason, rc == RP_ENOMEM ? R_NOMEM : R_CRYPTO);
        return rc;
    }
    rc = RP_ECRYPTO;
    set_reason(reason, R_CRYPTO);
    p = der;
    if (dern > (size_t)RP_KVKEY_MAX_DER ||
        (pk = d2i_AutoPrivateKey(NULL, &p, (long)dern)) == NULL ||
        EVP_PKEY_is_a(pk, ec ? "EC" : "RSA") != 1)
        goto out;
    kt = ec ? CKK_EC : CKK_RSA;
    privt[nq++] = (CK_ATTRIBUTE){CKA_CLASS, &cpriv, sizeof(cpriv)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &kt, sizeof(kt)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_PRIVATE, &yes, sizeof(yes)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_SENSITIVE, &yes, sizeof(yes)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &no, sizeof(no)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_SIGN, &yes, sizeof(yes)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_DECRYPT, ec ? &no : &yes, sizeof(yes)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_UNWRAP, &no, sizeof(no)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_DERIVE, &no, sizeof(no)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_ID, id, sizeof(id)};
    pubt[np++] = (CK_ATTRIBUTE){CKA_CLASS, &cpub, sizeof(cpub)};
    pubt[np++] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &kt, sizeof(kt)};
    pubt[np++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
    pubt[np++] = (CK_ATTRIBUTE){CKA_PRIVATE, &yes, sizeof(yes)};
    pubt[np++] = (CK_ATTRIBUTE){CKA_VERIFY, &yes, sizeof(yes)};
    pubt[np++] = (CK_ATTRIBUTE){CKA_ENCRYPT, ec ? &no : &yes, sizeof(yes)};
    pubt[np++] = (CK_ATTRIBUTE){CKA_WRAP, &no, sizeof(no)};
    pubt[np++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    pubt[np++] = (CK_ATTRIBUTE){CKA_ID, id, sizeof(id)};
    if (!ec) {
        for (size_t i = 0; i < 8; i++) {
            if (bn_bytes(pk, rsa_names[i], comp[i], RSA_MAX_BYTES, 0, &clen[i]) != 0)
                goto out;
            privt[nq++] = (CK_ATTRIBUTE){rsa_attrs[i], comp[i], clen[i]};
        }
        pubt[np++] = (CK_ATTRIBUTE){CKA_MODULUS, comp[0], clen[0]};
        pubt[np++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, comp[1], clen[1]};
    } else {
        if (bn_bytes(pk, OSSL_PKEY_PARAM_PRIV_KEY, comp[0], RSA_MAX_BYTES, w, &clen[0]) != 0 ||
            bn_bytes(pk, OSSL_PKEY_PARAM_EC_PUB_X, point + 1, w, w, &xl) != 0 ||
            bn_bytes(pk, OSSL_PKEY_PARAM_EC_PUB_Y, point + 1 + w, w, w, &yl) != 0)
            goto out;
        point[0] = 0x04;
        privt[nq++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)curves[c].oid, curves[c].oidlen};
        privt[nq++] = (CK_ATTRIBUTE){CKA_VALUE, comp[0], clen[0]};
        pubt[np++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)curves[c].oid, curves[c].oidlen};
        pubt[np++] =
            (CK_ATTRIBUTE){CKA_EC_POINT, wrapped, ec_point_wrap(point, 1 + 2 * w, wrapped)};
    }
    pthread_mutex_lock(&h->mu);
    rv = create_pair(h, privt, nq, pubt, np);
    pthread_mutex_unlock(&h->mu);
    if (rv != CKR_OK) {
        rc = create_rc(rv, ec, reason);
        goto out;
    }
    ref_write(id, ref);
    rc = 0;
out:
    OPENSSL_cleanse(comp, sizeof(comp));
    rp_kvkey_der_free(der, dern);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return rc;
}

int rp_kvhsm_destroy(rp_kvhsm *h, const char *ref)
{
    CK_OBJECT_HANDLE objs[8];
    CK_ULONG n = 0, total = 0;
    unsigned char id[ID_LEN];
    static const CK_OBJECT_CLASS classes[] = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
    CK_RV rv = CKR_OK;
    int rc = 0;

    if (h == NULL || ref_parse(ref, id) != 0)
        return RP_EINVAL;
    pthread_mutex_lock(&h->mu);
    cache_drop(h, id);
    for (size_t c = 0; c < 2 && rc == 0; c++) {
        rv = find_objs(h, classes[c], id, objs, 8, &n);
        if (rv != CKR_OK) {
            rc = RP_EIO;
            break;
        }
        for (CK_ULONG i = 0; i < n; i++) {
            rv = h->mod->f->C_DestroyObject(h->sess, objs[i]);
            if (rv != CKR_OK && !rv_is_gone(rv)) {
                rc = RP_EIO;
                break;
            }
        }
        total += n;
    }
    pthread_mutex_unlock(&h->mu);
    if (rc == 0 && total == 0)
        rc = RP_ENOENT;
    return rc;
}

/* ---------------------------------------------------------------- describing */

/* Unpadded base64url of the big-endian bytes of parameter param (width 0: minimal) into obj. */
static int put_param(json_t *obj, const char *name, const EVP_PKEY *pkey, const char *param,
                     int width)
{
    unsigned char bytes[RSA_MAX_BYTES];
    char text[RSA_MAX_BYTES / 3 * 4 + 8];
    BIGNUM *bn = NULL;
    int len, rc = RP_ECRYPTO;

    if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
        goto out;
    if (width > 0)
        len = BN_bn2binpad(bn, bytes, width);
    else if (BN_num_bytes(bn) <= (int)sizeof(bytes))
        len = BN_bn2bin(bn, bytes);
    else
        len = -1;
    if (len <= 0 || rp_b64url_encode(bytes, (size_t)len, text, sizeof(text)) != 0)
        goto out;
    rc = json_object_set_new(obj, name, json_string(text)) == 0 ? 0 : RP_ENOMEM;
out:
    BN_free(bn);
    return rc;
}

int rp_kvhsm_public_jwk(rp_kvhsm *h, const char *ref, const char *kid, const char *kty,
                        unsigned ops, json_t **out)
{
    key_view v = {0};
    json_t *j = NULL, *a = NULL;
    int rc;

    if (h == NULL || kid == NULL || kid[0] == '\0' || kty == NULL || out == NULL)
        return RP_EINVAL;
    rc = view_of(h, ref, &v, NULL);
    if (rc != 0)
        return rc;
    rc = RP_EINVAL;
    if (!v.ec ? strcmp(kty, "RSA") != 0 && strcmp(kty, "RSA-HSM") != 0
              : strcmp(kty, "EC") != 0 && strcmp(kty, "EC-HSM") != 0)
        goto out;
    rc = RP_ENOMEM;
    j = json_object();
    a = rp_kvkey_ops_json(ops);
    if (j == NULL || a == NULL || json_object_set_new(j, "kid", json_string(kid)) != 0 ||
        json_object_set_new(j, "kty", json_string(kty)) != 0 ||
        json_object_set(j, "key_ops", a) != 0)
        goto out;
    if (!v.ec) {
        rc = put_param(j, "n", v.pkey, OSSL_PKEY_PARAM_RSA_N, 0);
        if (rc == 0)
            rc = put_param(j, "e", v.pkey, OSSL_PKEY_PARAM_RSA_E, 0);
    } else {
        rc = json_object_set_new(j, "crv", json_string(curves[v.curve].crv)) == 0 ? 0 : RP_ENOMEM;
        if (rc == 0)
            rc = put_param(j, "x", v.pkey, OSSL_PKEY_PARAM_EC_PUB_X, (int)v.size);
        if (rc == 0)
            rc = put_param(j, "y", v.pkey, OSSL_PKEY_PARAM_EC_PUB_Y, (int)v.size);
    }
    if (rc != 0)
        goto out;
    *out = j;
    j = NULL;
out:
    json_decref(a);
    json_decref(j);
    EVP_PKEY_free(v.pkey);
    ERR_clear_error();
    return rc;
}

int rp_kvhsm_describe(rp_kvhsm *h, const char *ref, int *is_ec, int *bits, const char **crv)
{
    key_view v = {0};
    int rc;

    if (h == NULL)
        return RP_EINVAL;
    rc = view_of(h, ref, &v, NULL);
    if (rc != 0)
        return rc;
    if (is_ec != NULL)
        *is_ec = v.ec;
    if (bits != NULL)
        *bits = v.bits;
    if (crv != NULL)
        *crv = v.ec ? curves[v.curve].crv : NULL;
    EVP_PKEY_free(v.pkey);
    return 0;
}

/* ---------------------------------------------------------------- public operations */

/* A fresh context for pkey, initialised by init; NULL on failure. */
static EVP_PKEY_CTX *op_ctx(EVP_PKEY *pkey, int (*init)(EVP_PKEY_CTX *))
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

    if (ctx != NULL && init(ctx) <= 0) {
        EVP_PKEY_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

static int set_enc_padding(EVP_PKEY_CTX *ctx, const alg_info *a)
{
    if (a->pad == P_PKCS1)
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING);
    if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, a->md, NULL) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, a->md, NULL) <= 0)
        return 0;
    return 1;
}

static int set_sig_params(EVP_PKEY_CTX *ctx, const alg_info *a)
{
    if (EVP_PKEY_CTX_set_signature_md(ctx, EVP_get_digestbyname(a->md)) <= 0)
        return 0;
    if (a->pad == P_PKCS1)
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING);
    if (a->pad == P_PSS)
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 &&
               EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, a->md, NULL) > 0 &&
               EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) > 0;
    return 1;
}

static int do_encrypt(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *in,
                      size_t n, unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    const alg_info *a;
    key_view v = {0};
    EVP_PKEY_CTX *ctx = NULL;
    size_t len, overhead;
    int rc;

    if (h == NULL || alg == NULL || (in == NULL && n > 0) || out == NULL || outlen == NULL) {
        set_reason(reason, R_ARG);
        return RP_EINVAL;
    }
    rc = view_of(h, ref, &v, reason);
    if (rc != 0)
        return rc;
    a = alg_for(v.ec, v.curve, alg, K_ENC, &rc, reason);
    if (a == NULL)
        goto out;
    rc = RP_EINVAL;
    if (cap < v.size) {
        set_reason(reason, R_OUTCAP);
        goto out;
    }
    overhead = a->pad == P_PKCS1 ? 11 : 2 * a->dlen + 2;
    if (n > v.size - overhead) {
        set_reason(reason, R_PT_LEN);
        goto out;
    }
    rc = RP_ECRYPTO;
    set_reason(reason, R_CRYPTO);
    ctx = op_ctx(v.pkey, EVP_PKEY_encrypt_init);
    len = cap;
    if (ctx == NULL || set_enc_padding(ctx, a) <= 0 ||
        EVP_PKEY_encrypt(ctx, out, &len, n > 0 ? in : (const unsigned char *)"", n) <= 0 ||
        len != v.size)
        goto out;
    *outlen = len;
    rc = 0;
out:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(v.pkey);
    ERR_clear_error();
    return rc;
}

int rp_kvhsm_verify(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *digest,
                    size_t dn, const unsigned char *sig, size_t sn, int *valid, const char **reason)
{
    const alg_info *a;
    key_view v = {0};
    EVP_PKEY_CTX *ctx = NULL;
    ECDSA_SIG *es = NULL;
    BIGNUM *r = NULL, *s = NULL;
    unsigned char *der = NULL;
    int derlen, rc, ok = 0;

    if (h == NULL || alg == NULL || digest == NULL) {
        set_reason(reason, R_ARG);
        return RP_EINVAL;
    }
    rc = view_of(h, ref, &v, reason);
    if (rc != 0)
        return rc;
    a = alg_for(v.ec, v.curve, alg, K_SIG, &rc, reason);
    if (a == NULL)
        goto out;
    rc = RP_EINVAL;
    if (dn != a->dlen) {
        set_reason(reason, R_DIGEST_LEN);
        goto out;
    }
    if (valid == NULL || (sig == NULL && sn > 0)) {
        set_reason(reason, R_ARG);
        goto out;
    }
    rc = RP_ECRYPTO;
    set_reason(reason, R_CRYPTO);
    ctx = op_ctx(v.pkey, EVP_PKEY_verify_init);
    if (ctx == NULL || set_sig_params(ctx, a) <= 0)
        goto out;
    if (!v.ec) {
        ok = sn == v.size && EVP_PKEY_verify(ctx, sig, sn, digest, dn) == 1;
    } else if (sn == 2 * v.size) {
        es = ECDSA_SIG_new();
        r = BN_bin2bn(sig, (int)v.size, NULL);
        s = BN_bin2bn(sig + v.size, (int)v.size, NULL);
        if (es == NULL || r == NULL || s == NULL) {
            rc = RP_ENOMEM;
            set_reason(reason, R_NOMEM);
            goto out;
        }
        if (ECDSA_SIG_set0(es, r, s) != 1)
            goto out;
        r = s = NULL;
        derlen = i2d_ECDSA_SIG(es, &der);
        if (derlen <= 0)
            goto out;
        ok = EVP_PKEY_verify(ctx, der, (size_t)derlen, digest, dn) == 1;
    }
    *valid = ok;
    rc = 0;
out:
    OPENSSL_free(der);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(v.pkey);
    ERR_clear_error();
    return rc;
}

/* ---------------------------------------------------------------- private operations */

/*
 * One single-part C_Decrypt or C_Sign with mechanism m on key. *at_init tells whether the
 * token refused already at C_*Init (the mechanism or its parameters). Caller holds h->mu.
 */
static CK_RV p11_single(rp_kvhsm *h, int sign, CK_MECHANISM *m, CK_OBJECT_HANDLE key,
                        const unsigned char *in, size_t n, unsigned char *out, size_t cap,
                        size_t *outlen, int *at_init)
{
    CK_FUNCTION_LIST_PTR f = h->mod->f;
    CK_ULONG len = cap;
    CK_RV rv;

    *at_init = 1;
    rv = sign ? f->C_SignInit(h->sess, m, key) : f->C_DecryptInit(h->sess, m, key);
    if (rv != CKR_OK)
        return rv;
    *at_init = 0;
    rv = sign ? f->C_Sign(h->sess, (CK_BYTE_PTR)in, n, out, &len)
              : f->C_Decrypt(h->sess, (CK_BYTE_PTR)in, n, out, &len);
    if (rv == CKR_BUFFER_TOO_SMALL) {
        /* cap is the largest result of any key we hold, so this is a broken token; the
         * operation is still active and PKCS#11 2.40 has no portable way to end it but this */
        (void)(sign ? f->C_SignInit(h->sess, NULL, key) : f->C_DecryptInit(h->sess, NULL, key));
        return CKR_DEVICE_ERROR;
    }
    if (rv == CKR_OK && len > cap)
        return CKR_DEVICE_ERROR;
    if (rv == CKR_OK)
        *outlen = len;
    return rv;
}

/*
 * RSA-OAEP decryption as the raw RSA operation in the token and OpenSSL's constant-time OAEP
 * decoding here (for tokens without OAEP-SHA-256). buf receives the message.
 */
static CK_RV oaep_raw(rp_kvhsm *h, const key_entry *e, const alg_info *a, const unsigned char *in,
                      size_t n, unsigned char *buf, size_t *len, int *bad)
{
    CK_MECHANISM m = {CKM_RSA_X_509, NULL, 0};
    unsigned char em[RSA_MAX_BYTES], blk[RSA_MAX_BYTES];
    const EVP_MD *md = EVP_get_digestbyname(a->md);
    size_t emlen = 0;
    int at_init, mlen;
    CK_RV rv;

    *bad = 0;
    rv = p11_single(h, 0, &m, e->priv, in, n, em, sizeof(em), &emlen, &at_init);
    if (rv != CKR_OK)
        goto out;
    if (md == NULL || emlen > e->size) {
        rv = CKR_FUNCTION_FAILED;
        goto out;
    }
    /* some tokens strip leading zero bytes of the raw result */
    memset(blk, 0, e->size - emlen);
    memcpy(blk + (e->size - emlen), em, emlen);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    /* deprecated in 3.0 but the only OAEP decoder OpenSSL offers apart from its RSA operation */
    mlen = RSA_padding_check_PKCS1_OAEP_mgf1(buf, (int)e->size, blk, (int)e->size, (int)e->size,
                                             NULL, 0, md, md);
#pragma GCC diagnostic pop
    if (mlen < 0)
        *bad = 1;
    else
        *len = (size_t)mlen;
out:
    OPENSSL_cleanse(em, sizeof(em));
    OPENSSL_cleanse(blk, sizeof(blk));
    return rv;
}

/* The status of a failed private operation. */
static int op_rc(CK_RV rv, int decrypt, const char **reason)
{
    if (rv_is_gone(rv)) {
        set_reason(reason, R_NOKEY);
        return RP_ENOENT;
    }
    if (rv == CKR_HOST_MEMORY) {
        set_reason(reason, R_NOMEM);
        return RP_ENOMEM;
    }
    if (rv_is_io(rv)) {
        set_reason(reason, R_HSM);
        return RP_EIO;
    }
    set_reason(reason, decrypt ? R_DECRYPT : R_CRYPTO);
    return RP_ECRYPTO;
}

/*
 * Decrypts with e's private key (caller holds h->mu and has checked alg and lengths). buf
 * (RSA_MAX_BYTES) receives the plaintext. CKR_OK with *len, *bad = 1 for an undecodable OAEP
 * block, or the token's status.
 */
static CK_RV decrypt_locked(rp_kvhsm *h, const key_entry *e, const alg_info *a,
                            const unsigned char *in, size_t n, unsigned char *buf, size_t *len,
                            int *bad)
{
    CK_RSA_PKCS_OAEP_PARAMS op;
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
    int at_init = 0;
    CK_RV rv;

    *bad = 0;
    if (a->hash != CKM_SHA_1 && h->oaep256_raw)
        return oaep_raw(h, e, a, in, n, buf, len, bad);
    memset(&op, 0, sizeof(op));
    op.hashAlg = a->hash;
    op.mgf = a->mgf;
    op.source = CKZ_DATA_SPECIFIED;
    rv = p11_single(h, 0, &m, e->priv, in, n, buf, RSA_MAX_BYTES, len, &at_init);
    if (rv != CKR_OK && at_init && a->hash != CKM_SHA_1 &&
        (rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_ARGUMENTS_BAD ||
         rv == CKR_MECHANISM_INVALID)) {
        h->oaep256_raw = 1;
        return oaep_raw(h, e, a, in, n, buf, len, bad);
    }
    return rv;
}

static int do_decrypt(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *in,
                      size_t n, unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    const alg_info *a;
    unsigned char id[ID_LEN], buf[RSA_MAX_BYTES];
    key_entry *e = NULL;
    size_t len = 0;
    int rc, bad = 0;
    CK_RV rv = CKR_OK;

    if (h == NULL || alg == NULL || in == NULL || out == NULL || outlen == NULL) {
        set_reason(reason, R_ARG);
        return RP_EINVAL;
    }
    if (ref_parse(ref, id) != 0) {
        set_reason(reason, R_REF);
        return RP_EINVAL;
    }
    pthread_mutex_lock(&h->mu);
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = lookup(h, id, &e, reason);
        if (rc != 0)
            goto out;
        a = alg_for(e->ec, e->curve, alg, K_ENC, &rc, reason);
        if (a == NULL)
            goto out;
        rc = RP_EINVAL;
        if (a->pad == P_PKCS1) {
            rc = RP_EUNSUPPORTED;
            set_reason(reason, R_RSA15);
            goto out;
        }
        if (cap < e->size) {
            set_reason(reason, R_OUTCAP);
            goto out;
        }
        if (n != e->size) {
            set_reason(reason, R_CT_LEN);
            goto out;
        }
        rv = decrypt_locked(h, e, a, in, n, buf, &len, &bad);
        if (!rv_is_gone(rv))
            break;
        cache_drop(h, id); /* destroyed behind our back: look it up again */
    }
    if (rv != CKR_OK) {
        rc = op_rc(rv, 1, reason);
        goto out;
    }
    if (bad || len > e->size) {
        rc = RP_ECRYPTO;
        set_reason(reason, R_DECRYPT);
        goto out;
    }
    memcpy(out, buf, len);
    *outlen = len;
    rc = 0;
out:
    pthread_mutex_unlock(&h->mu);
    OPENSSL_cleanse(buf, sizeof(buf));
    ERR_clear_error();
    return rc;
}

int rp_kvhsm_encrypt(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *in,
                     size_t n, unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    return do_encrypt(h, ref, alg, in, n, out, cap, outlen, reason);
}

int rp_kvhsm_decrypt(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *in,
                     size_t n, unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    return do_decrypt(h, ref, alg, in, n, out, cap, outlen, reason);
}

int rp_kvhsm_wrap_key(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *in,
                      size_t n, unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    return do_encrypt(h, ref, alg, in, n, out, cap, outlen, reason);
}

int rp_kvhsm_unwrap_key(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *in,
                        size_t n, unsigned char *out, size_t cap, size_t *outlen,
                        const char **reason)
{
    return do_decrypt(h, ref, alg, in, n, out, cap, outlen, reason);
}

/* Signs with e's private key (caller holds h->mu and has checked alg and lengths). */
static CK_RV sign_locked(rp_kvhsm *h, const key_entry *e, const alg_info *a,
                         const unsigned char *digest, size_t n, unsigned char *buf, size_t *len)
{
    CK_RSA_PKCS_PSS_PARAMS pss;
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    unsigned char di[DI_LEN + 64];
    const unsigned char *in = digest;
    int at_init;

    if (a->pad == P_PKCS1) {
        memcpy(di, a->prefix, DI_LEN);
        memcpy(di + DI_LEN, digest, n);
        in = di;
        n += DI_LEN;
        m.mechanism = CKM_RSA_PKCS;
    } else if (a->pad == P_PSS) {
        memset(&pss, 0, sizeof(pss));
        pss.hashAlg = a->hash;
        pss.mgf = a->mgf;
        pss.sLen = a->dlen;
        m.mechanism = CKM_RSA_PKCS_PSS;
        m.pParameter = &pss;
        m.ulParameterLen = sizeof(pss);
    }
    return p11_single(h, 1, &m, e->priv, in, n, buf, RSA_MAX_BYTES, len, &at_init);
}

int rp_kvhsm_sign(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *digest,
                  size_t n, unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    const alg_info *a;
    unsigned char id[ID_LEN], buf[RSA_MAX_BYTES];
    key_entry *e = NULL;
    size_t len = 0, need = 0;
    int rc;
    CK_RV rv = CKR_OK;

    if (h == NULL || alg == NULL || digest == NULL) {
        set_reason(reason, R_ARG);
        return RP_EINVAL;
    }
    if (ref_parse(ref, id) != 0) {
        set_reason(reason, R_REF);
        return RP_EINVAL;
    }
    pthread_mutex_lock(&h->mu);
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = lookup(h, id, &e, reason);
        if (rc != 0)
            goto out;
        a = alg_for(e->ec, e->curve, alg, K_SIG, &rc, reason);
        if (a == NULL)
            goto out;
        rc = RP_EINVAL;
        if (n != a->dlen) {
            set_reason(reason, R_DIGEST_LEN);
            goto out;
        }
        need = e->ec ? 2 * e->size : e->size;
        if (out == NULL || outlen == NULL || cap < need) {
            set_reason(reason, out == NULL || outlen == NULL ? R_ARG : R_OUTCAP);
            goto out;
        }
        rv = sign_locked(h, e, a, digest, n, buf, &len);
        if (!rv_is_gone(rv))
            break;
        cache_drop(h, id);
    }
    if (rv != CKR_OK) {
        rc = op_rc(rv, 0, reason);
        goto out;
    }
    if (len != need) {
        rc = RP_ECRYPTO;
        set_reason(reason, R_CRYPTO);
        goto out;
    }
    memcpy(out, buf, len);
    *outlen = len;
    rc = 0;
out:
    pthread_mutex_unlock(&h->mu);
    ERR_clear_error();
    return rc;
}
