/*
 * kvhsm.c - Key Vault -HSM keys in a PKCS#11 token (see kvhsm.h for the contract, the threading
 * model and what runs where).
 *
 * Layout: the handle (its module comes from crypto/p11.c, shared and reference-counted with
 * crypto/keyprov.c) and its per-reference cache, key creation (generate / import / destroy), then
 * the operations. Each operation looks the reference up under the handle's mutex (cache, else
 * C_FindObjects by CKA_ID and a read of the public attributes), checks the algorithm against the
 * key with kvkey.c's tables and reasons (vault/kvalg.c), and then either runs one single-part
 * PKCS#11 operation while still holding the mutex or takes a reference to the cached public
 * EVP_PKEY and runs OpenSSL outside it. A cached object handle that the token no longer knows
 * (the key was destroyed through another handle or process) is dropped and looked up once more.
 */
#include "vault/kvhsm.h"

#include "base/alloc.h"
#include "base/err.h"
#include "base/rand.h"
#include "base/str.h"
#include "crypto/p11.h"
#include "vault/kvalg.h"
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

#include <pthread.h>
#include <string.h>

#define RSA_MAX_BYTES  512                        /* RSA-4096 */
#define EC_MAX_WIDTH   66                         /* P-521 */
#define EC_POINT_MAX   (3 + 1 + 2 * EC_MAX_WIDTH) /* DER OCTET STRING of an uncompressed point */
#define ATTR_MAX       600
#define ID_LEN         16
#define REF_PREFIX     "kvhsm:"
#define REF_PREFIX_LEN 6
#define REF_LEN        (REF_PREFIX_LEN + 2 * ID_LEN)

static const char R_RSA15[] = "RSA1_5 decryption is not offered for HSM-protected keys";
static const char R_NOKEY[] = "the key was not found in the HSM";
static const char R_HSM[] = "the HSM failed";
static const char R_REF[] = "the HSM key reference is malformed";
static const char R_LABEL[] = "the HSM key label must be 1 to 128 bytes";
static const char R_HSM_CURVE[] = "the HSM does not support this curve";

/* ---------------------------------------------------------------- state */

/* One cached reference. pkey == NULL marks a free slot. */
typedef struct key_entry {
    unsigned char id[ID_LEN];
    CK_OBJECT_HANDLE priv, pub;
    int ec;
    int curve; /* kvalg curve index, -1 for RSA */
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
    rp__p11_module *mod;
    CK_SESSION_HANDLE sess;
    int has_sess;
    int oaep256_raw;  /* the token refused CKM_RSA_PKCS_OAEP with SHA-256 once */
    key_entry *cache; /* RP_KVHSM_CACHE_MAX entries */
    size_t victim;    /* next entry to evict when the cache is full */
};

static void set_reason(const char **reason, const char *r)
{
    if (reason != NULL)
        *reason = r;
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

/* ref_parse with the reason of a malformed reference. */
static int ref_id(const char *ref, unsigned char id[ID_LEN], const char **reason)
{
    if (ref_parse(ref, id) != 0) {
        set_reason(reason, R_REF);
        return RP_EINVAL;
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
    CK_FUNCTION_LIST_PTR f = rp__p11_functions(h->mod);
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
    CK_RV rv = rp__p11_functions(h->mod)->C_GetAttributeValue(h->sess, obj, &a, 1);

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
            set_reason(reason, RP_KVR_NOMEM);
            goto out;
        }
        e->ec = 0;
        e->curve = -1;
        e->bits = BN_num_bits(n);
        e->size = (size_t)BN_num_bytes(n);
        if (e->bits != 2048 && e->bits != 3072 && e->bits != 4096) {
            rc = RP_EUNSUPPORTED;
            set_reason(reason, RP_KVR_BITS);
            goto out;
        }
        bld = OSSL_PARAM_BLD_new();
        if (bld == NULL || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, ex) != 1 ||
            (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
            rc = RP_ENOMEM;
            set_reason(reason, RP_KVR_NOMEM);
            goto out;
        }
        e->pkey = pub_from_params("RSA", params);
    } else if (kt == CKK_EC) {
        if (get_attr(h, e->pub, CKA_EC_PARAMS, a1, sizeof(a1), &l1) != CKR_OK ||
            get_attr(h, e->pub, CKA_EC_POINT, a2, sizeof(a2), &l2) != CKR_OK)
            goto out;
        e->ec = 1;
        e->curve = rp__kvalg_curve_by_oid(a1, l1);
        if (e->curve < 0) {
            rc = RP_EUNSUPPORTED;
            set_reason(reason, RP_KVR_CURVE);
            goto out;
        }
        e->size = rp__kvalg_curve_at(e->curve)->width;
        e->bits = rp__kvalg_curve_at(e->curve)->bits;
        if (ec_point_unwrap(a2, l2, e->size, &pt) != 0)
            goto out;
        bld = OSSL_PARAM_BLD_new();
        if (bld == NULL ||
            OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                            rp__kvalg_curve_at(e->curve)->group, 0) != 1 ||
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * e->size) !=
                1 ||
            (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
            rc = RP_ENOMEM;
            set_reason(reason, RP_KVR_NOMEM);
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
        set_reason(reason, RP_KVR_CRYPTO);
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

    rc = ref_id(ref, id, reason);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&h->mu);
    rc = lookup(h, id, &e, reason);
    if (rc == 0) {
        if (EVP_PKEY_up_ref(e->pkey) != 1) {
            rc = RP_ECRYPTO;
            set_reason(reason, RP_KVR_CRYPTO);
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

/* The key's algorithm check: rp__kvalg_sig (with the digest length dn) or rp__kvalg_for. */
static const rp__kvalg *alg_check(int ec, int curve, const char *alg, rp__kvalg_kind kind,
                                  size_t dn, int *rc, const char **reason)
{
    if (kind == RP__KVALG_SIG)
        return rp__kvalg_sig(ec, curve, alg, dn, rc, reason);
    return rp__kvalg_for(ec, curve, alg, kind, rc, reason);
}

/*
 * view_of and alg_check for a public operation. 0 with *v (v->pkey the caller's to free) and *a,
 * or a status with a reason and nothing to free.
 */
static int view_alg(rp_kvhsm *h, const char *ref, const char *alg, rp__kvalg_kind kind, size_t dn,
                    key_view *v, const rp__kvalg **a, const char **reason)
{
    int rc = view_of(h, ref, v, reason);

    if (rc != 0)
        return rc;
    *a = alg_check(v->ec, v->curve, alg, kind, dn, &rc, reason);
    if (*a == NULL) {
        EVP_PKEY_free(v->pkey);
        v->pkey = NULL;
    }
    return rc;
}

/* ---------------------------------------------------------------- the handle */

int rp_kvhsm_open(const char *module, const char *token, const char *pin, rp_kvhsm **out, char *err,
                  size_t errlen)
{
    rp_kvhsm *h = NULL;
    int rc;

    if (module == NULL || module[0] == '\0' || token == NULL || token[0] == '\0' || pin == NULL ||
        pin[0] == '\0' || out == NULL) {
        rp__p11_seterr(err, errlen,
                       "the HSM key store needs a PKCS#11 module, a token label and a PIN");
        return RP_EINVAL;
    }
    h = rp_calloc(1, sizeof(*h));
    if (h == NULL) {
        rp__p11_seterr(err, errlen, "out of memory");
        return RP_ENOMEM;
    }
    if (pthread_mutex_init(&h->mu, NULL) != 0) {
        rp_free(h);
        rp__p11_seterr(err, errlen, "out of memory");
        return RP_ENOMEM;
    }
    h->cache = rp_calloc(RP_KVHSM_CACHE_MAX, sizeof(*h->cache));
    if (h->cache == NULL) {
        rp__p11_seterr(err, errlen, "out of memory");
        rc = RP_ENOMEM;
        goto fail;
    }
    rc = rp__p11_module_get(module, &h->mod, err, errlen);
    if (rc == 0)
        rc = rp__p11_session_open(h->mod, token, pin, &h->sess, err, errlen);
    if (rc != 0)
        goto fail;
    h->has_sess = 1;
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
        (void)rp__p11_functions(h->mod)->C_CloseSession(h->sess);
    rp__p11_module_put(h->mod);
    rp_free(h->cache);
    pthread_mutex_destroy(&h->mu);
    rp_free(h);
}

/* ---------------------------------------------------------------- creating keys */

/* 0, or RP_EINVAL with a reason for a label that is NULL, empty or too long. */
static int label_check(const char *label, const char **reason)
{
    size_t n = label == NULL ? 0 : strlen(label);

    if (n > 0 && n <= RP_KVHSM_LABEL_MAX)
        return 0;
    set_reason(reason, R_LABEL);
    return RP_EINVAL;
}

/* The kvalg index of curve crv in *c, or RP_EUNSUPPORTED with a reason. */
static int curve_check(const char *crv, int *c, const char **reason)
{
    *c = rp__kvalg_curve_by_crv(crv);
    if (*c >= 0)
        return 0;
    set_reason(reason, RP_KVR_CURVE);
    return RP_EUNSUPPORTED;
}

static const CK_BBOOL ck_yes = CK_TRUE, ck_no = CK_FALSE;

/*
 * Appends to t[n..] what every key object of ours carries: on the token, private, label and
 * id; the private half sensitive, never extractable, able to sign, never to unwrap or derive;
 * the public half able to verify, never to wrap. The new count. The token only reads the
 * values (templates are input), so the shared constants are safe to point at.
 */
static CK_ULONG common_attrs(CK_ATTRIBUTE *t, CK_ULONG n, int priv, const char *label,
                             unsigned char id[ID_LEN])
{
    void *yes = (void *)&ck_yes, *no = (void *)&ck_no;

    t[n++] = (CK_ATTRIBUTE){CKA_TOKEN, yes, sizeof(ck_yes)};
    t[n++] = (CK_ATTRIBUTE){CKA_PRIVATE, yes, sizeof(ck_yes)};
    if (priv) {
        t[n++] = (CK_ATTRIBUTE){CKA_SENSITIVE, yes, sizeof(ck_yes)};
        t[n++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, no, sizeof(ck_no)};
        t[n++] = (CK_ATTRIBUTE){CKA_SIGN, yes, sizeof(ck_yes)};
        t[n++] = (CK_ATTRIBUTE){CKA_UNWRAP, no, sizeof(ck_no)};
        t[n++] = (CK_ATTRIBUTE){CKA_DERIVE, no, sizeof(ck_no)};
    } else {
        t[n++] = (CK_ATTRIBUTE){CKA_VERIFY, yes, sizeof(ck_yes)};
        t[n++] = (CK_ATTRIBUTE){CKA_WRAP, no, sizeof(ck_no)};
    }
    t[n++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
    t[n++] = (CK_ATTRIBUTE){CKA_ID, id, ID_LEN};
    return n;
}

/* The status of a failure of the host or the token (not the key or the input), else 0. */
static int rv_host_rc(CK_RV rv, const char **reason)
{
    if (rv == CKR_HOST_MEMORY) {
        set_reason(reason, RP_KVR_NOMEM);
        return RP_ENOMEM;
    }
    if (rv_is_io(rv)) {
        set_reason(reason, R_HSM);
        return RP_EIO;
    }
    return 0;
}

/* The status of a failed C_GenerateKeyPair / C_CreateObject. */
static int create_rc(CK_RV rv, int ec, const char **reason)
{
    int rc = rv_host_rc(rv, reason);

    if (rc != 0)
        return rc;
    if (ec && (rv == CKR_CURVE_NOT_SUPPORTED || rv == CKR_DOMAIN_PARAMS_INVALID ||
               rv == CKR_MECHANISM_INVALID)) {
        set_reason(reason, R_HSM_CURVE);
        return RP_EUNSUPPORTED;
    }
    set_reason(reason, RP_KVR_CRYPTO);
    return RP_ECRYPTO;
}

/* Generates a key pair with mechanism mech; pubt / privt get the common attributes added. */
static int generate(rp_kvhsm *h, CK_MECHANISM_TYPE mech, int ec, const CK_ATTRIBUTE *pubx,
                    CK_ULONG npubx, const CK_ATTRIBUTE *privx, CK_ULONG nprivx, const char *label,
                    char ref[RP_KVHSM_REF_MAX], const char **reason)
{
    unsigned char id[ID_LEN];
    CK_MECHANISM m = {mech, NULL, 0};
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    CK_ATTRIBUTE pubt[12], privt[16];
    CK_ULONG np = 0, nq = 0;
    CK_RV rv;
    int rc;

    rc = rp_random_bytes(id, sizeof(id));
    if (rc != 0) {
        set_reason(reason, RP_KVR_CRYPTO);
        return rc;
    }
    np = common_attrs(pubt, np, 0, label, id);
    for (CK_ULONG i = 0; i < npubx; i++)
        pubt[np++] = pubx[i];
    nq = common_attrs(privt, nq, 1, label, id);
    for (CK_ULONG i = 0; i < nprivx; i++)
        privt[nq++] = privx[i];
    pthread_mutex_lock(&h->mu);
    rv =
        rp__p11_functions(h->mod)->C_GenerateKeyPair(h->sess, &m, pubt, np, privt, nq, &pub, &priv);
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
        set_reason(reason, RP_KVR_ARG);
        return RP_EINVAL;
    }
    if (label_check(label, reason) != 0 || rp__kvalg_rsa_params(bits, &e, reason) != 0)
        return RP_EINVAL;
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

int rp_kvhsm_generate_ec(rp_kvhsm *h, const char *crv, const char *label,
                         char ref[RP_KVHSM_REF_MAX], const char **reason)
{
    CK_BBOOL no = CK_FALSE;
    int c = -1, rc;

    if (h == NULL || ref == NULL || crv == NULL) {
        set_reason(reason, RP_KVR_ARG);
        return RP_EINVAL;
    }
    rc = label_check(label, reason);
    if (rc == 0)
        rc = curve_check(crv, &c, reason);
    if (rc != 0)
        return rc;
    {
        CK_ATTRIBUTE pubx[] = {
            {CKA_EC_PARAMS, (void *)rp__kvalg_curve_at(c)->oid, rp__kvalg_curve_at(c)->oidlen},
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
    CK_FUNCTION_LIST_PTR f = rp__p11_functions(h->mod);
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
        set_reason(reason, RP_KVR_ARG);
        return RP_EINVAL;
    }
    rc = label_check(label, reason);
    if (rc != 0)
        return rc;
    ec = rp_kvkey_type_of(k) == RP_KVKEY_EC;
    if (ec) {
        rc = curve_check(rp_kvkey_crv(k), &c, reason);
        if (rc != 0)
            return rc;
        w = rp__kvalg_curve_at(c)->width;
    }
    rc = rp_random_bytes(id, sizeof(id));
    if (rc != 0) {
        set_reason(reason, RP_KVR_CRYPTO);
        return rc;
    }
    rc = rp_kvkey_to_der(k, &der, &dern);
    if (rc != 0) {
        set_reason(reason, rc == RP_ENOMEM ? RP_KVR_NOMEM : RP_KVR_CRYPTO);
        return rc;
    }
    rc = RP_ECRYPTO;
    set_reason(reason, RP_KVR_CRYPTO);
    p = der;
    if (dern > (size_t)RP_KVKEY_MAX_DER ||
        (pk = d2i_AutoPrivateKey(NULL, &p, (long)dern)) == NULL ||
        EVP_PKEY_is_a(pk, ec ? "EC" : "RSA") != 1)
        goto out;
    kt = ec ? CKK_EC : CKK_RSA;
    privt[nq++] = (CK_ATTRIBUTE){CKA_CLASS, &cpriv, sizeof(cpriv)};
    privt[nq++] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &kt, sizeof(kt)};
    nq = common_attrs(privt, nq, 1, label, id);
    privt[nq++] = (CK_ATTRIBUTE){CKA_DECRYPT, ec ? &no : &yes, sizeof(yes)};
    pubt[np++] = (CK_ATTRIBUTE){CKA_CLASS, &cpub, sizeof(cpub)};
    pubt[np++] = (CK_ATTRIBUTE){CKA_KEY_TYPE, &kt, sizeof(kt)};
    np = common_attrs(pubt, np, 0, label, id);
    pubt[np++] = (CK_ATTRIBUTE){CKA_ENCRYPT, ec ? &no : &yes, sizeof(yes)};
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
        privt[nq++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)rp__kvalg_curve_at(c)->oid,
                                     rp__kvalg_curve_at(c)->oidlen};
        privt[nq++] = (CK_ATTRIBUTE){CKA_VALUE, comp[0], clen[0]};
        pubt[np++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)rp__kvalg_curve_at(c)->oid,
                                    rp__kvalg_curve_at(c)->oidlen};
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
            rv = rp__p11_functions(h->mod)->C_DestroyObject(h->sess, objs[i]);
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

int rp_kvhsm_public_jwk(rp_kvhsm *h, const char *ref, const char *kid, const char *kty,
                        unsigned ops, json_t **out)
{
    key_view v = {0};
    int rc;

    if (h == NULL || kid == NULL || kid[0] == '\0' || kty == NULL || out == NULL)
        return RP_EINVAL;
    rc = view_of(h, ref, &v, NULL);
    if (rc != 0)
        return rc;
    rc = rp__kvalg_public_jwk(v.pkey, v.ec, v.curve, v.size, kid, kty, ops, out);
    EVP_PKEY_free(v.pkey);
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
        *crv = v.ec ? rp__kvalg_curve_at(v.curve)->crv : NULL;
    EVP_PKEY_free(v.pkey);
    return 0;
}

/* ---------------------------------------------------------------- public operations */

static int do_encrypt(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *in,
                      size_t n, unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    const rp__kvalg *a = NULL;
    key_view v = {0};
    int rc;

    if (h == NULL || alg == NULL || (in == NULL && n > 0) || out == NULL || outlen == NULL) {
        set_reason(reason, RP_KVR_ARG);
        return RP_EINVAL;
    }
    rc = view_alg(h, ref, alg, RP__KVALG_ENC, 0, &v, &a, reason);
    if (rc != 0)
        return rc;
    rc = rp__kvalg_encrypt(v.pkey, v.size, a, in, n, out, cap, outlen, reason);
    EVP_PKEY_free(v.pkey);
    return rc;
}

int rp_kvhsm_verify(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *digest,
                    size_t dn, const unsigned char *sig, size_t sn, int *valid, const char **reason)
{
    const rp__kvalg *a = NULL;
    key_view v = {0};
    int rc;

    if (h == NULL || alg == NULL || digest == NULL) {
        set_reason(reason, RP_KVR_ARG);
        return RP_EINVAL;
    }
    rc = view_alg(h, ref, alg, RP__KVALG_SIG, dn, &v, &a, reason);
    if (rc != 0)
        return rc;
    rc = rp__kvalg_verify(v.pkey, v.ec, v.size, a, digest, dn, sig, sn, valid, reason);
    EVP_PKEY_free(v.pkey);
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
    CK_FUNCTION_LIST_PTR f = rp__p11_functions(h->mod);
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
static CK_RV oaep_raw(rp_kvhsm *h, const key_entry *e, const rp__kvalg *a, const unsigned char *in,
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
    int rc;

    if (rv_is_gone(rv)) {
        set_reason(reason, R_NOKEY);
        return RP_ENOENT;
    }
    rc = rv_host_rc(rv, reason);
    if (rc != 0)
        return rc;
    set_reason(reason, decrypt ? RP_KVR_DECRYPT : RP_KVR_CRYPTO);
    return RP_ECRYPTO;
}

/*
 * Decrypts with e's private key (caller holds h->mu and has checked alg and lengths). buf
 * (RSA_MAX_BYTES) receives the plaintext. CKR_OK with *len, *bad = 1 for an undecodable OAEP
 * block, or the token's status.
 */
static CK_RV decrypt_locked(rp_kvhsm *h, const key_entry *e, const rp__kvalg *a,
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

/* Signs with e's private key (caller holds h->mu and has checked alg and lengths). */
static CK_RV sign_locked(rp_kvhsm *h, const key_entry *e, const rp__kvalg *a,
                         const unsigned char *digest, size_t n, unsigned char *buf, size_t *len)
{
    CK_RSA_PKCS_PSS_PARAMS pss;
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    unsigned char di[RP_KVALG_DI_LEN + 64];
    const unsigned char *in = digest;
    int at_init;

    if (a->pad == RP__KVALG_PKCS1) {
        memcpy(di, a->prefix, RP_KVALG_DI_LEN);
        memcpy(di + RP_KVALG_DI_LEN, digest, n);
        in = di;
        n += RP_KVALG_DI_LEN;
        m.mechanism = CKM_RSA_PKCS;
    } else if (a->pad == RP__KVALG_PSS) {
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

/* decrypt's checks of e, a and the lengths before the token is asked. 0 or a status. */
static int decrypt_check(const key_entry *e, const rp__kvalg *a, size_t n, size_t cap,
                         const char **reason)
{
    if (a->pad == RP__KVALG_PKCS1) {
        set_reason(reason, R_RSA15);
        return RP_EUNSUPPORTED;
    }
    if (cap < e->size) {
        set_reason(reason, RP_KVR_OUTCAP);
        return RP_EINVAL;
    }
    if (n != e->size) {
        set_reason(reason, RP_KVR_CT_LEN);
        return RP_EINVAL;
    }
    return 0;
}

/* sign's check of the output buffer (raw r||s for EC); *need is the signature's length. */
static int sign_check(const key_entry *e, const unsigned char *out, size_t cap,
                      const size_t *outlen, size_t *need, const char **reason)
{
    *need = e->ec ? 2 * e->size : e->size;
    if (out == NULL || outlen == NULL || cap < *need) {
        set_reason(reason, out == NULL || outlen == NULL ? RP_KVR_ARG : RP_KVR_OUTCAP);
        return RP_EINVAL;
    }
    return 0;
}

/*
 * A private operation (sign, else decrypt) on ref's key with alg; the caller has checked h,
 * alg and in. Runs under h->mu; a cached object the token no longer knows (destroyed behind
 * our back) is looked up once more.
 */
static int private_op(rp_kvhsm *h, int sign, const char *ref, const char *alg,
                      const unsigned char *in, size_t n, unsigned char *out, size_t cap,
                      size_t *outlen, const char **reason)
{
    const rp__kvalg *a;
    unsigned char id[ID_LEN], buf[RSA_MAX_BYTES];
    key_entry *e = NULL;
    size_t len = 0, need = 0;
    int rc, bad = 0;
    CK_RV rv = CKR_OK;

    rc = ref_id(ref, id, reason);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&h->mu);
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = lookup(h, id, &e, reason);
        if (rc != 0)
            goto out;
        a = alg_check(e->ec, e->curve, alg, sign ? RP__KVALG_SIG : RP__KVALG_ENC, n, &rc, reason);
        if (a == NULL)
            goto out;
        rc = sign ? sign_check(e, out, cap, outlen, &need, reason)
                  : decrypt_check(e, a, n, cap, reason);
        if (rc != 0)
            goto out;
        rv = sign ? sign_locked(h, e, a, in, n, buf, &len)
                  : decrypt_locked(h, e, a, in, n, buf, &len, &bad);
        if (!rv_is_gone(rv))
            break;
        cache_drop(h, id);
    }
    if (rv != CKR_OK) {
        rc = op_rc(rv, !sign, reason);
        goto out;
    }
    if (sign ? len != need : bad || len > e->size) {
        rc = RP_ECRYPTO;
        set_reason(reason, sign ? RP_KVR_CRYPTO : RP_KVR_DECRYPT);
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

static int do_decrypt(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *in,
                      size_t n, unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    if (h == NULL || alg == NULL || in == NULL || out == NULL || outlen == NULL) {
        set_reason(reason, RP_KVR_ARG);
        return RP_EINVAL;
    }
    return private_op(h, 0, ref, alg, in, n, out, cap, outlen, reason);
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

int rp_kvhsm_sign(rp_kvhsm *h, const char *ref, const char *alg, const unsigned char *digest,
                  size_t n, unsigned char *out, size_t cap, size_t *outlen, const char **reason)
{
    if (h == NULL || alg == NULL || digest == NULL) {
        set_reason(reason, RP_KVR_ARG);
        return RP_EINVAL;
    }
    return private_op(h, 1, ref, alg, digest, n, out, cap, outlen, reason);
}
