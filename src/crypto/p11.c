/*
 * p11.c - the process-wide list of loaded PKCS#11 modules and the session set-up its users
 * share (see p11.h). Workload: a few calls per process lifetime (a provider or key store being
 * opened or closed), so one mutex over a linked list is all it needs.
 */
#include "crypto/p11.h"

#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAX_SLOTS 4096

struct rp__p11_module {
    struct rp__p11_module *next;
    char *path;
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    unsigned refs;
    int finalize; /* we initialised it, so we finalise it with the last reference */
};

static pthread_mutex_t modules_mu = PTHREAD_MUTEX_INITIALIZER;
static rp__p11_module *modules;

void rp__p11_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

CK_FUNCTION_LIST_PTR rp__p11_functions(const rp__p11_module *m)
{
    return m->f;
}

void rp__p11_module_put(rp__p11_module *m)
{
    rp__p11_module **pp;

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
    /* under the mutex, so a concurrent get of this path cannot initialise it in between */
    if (m->finalize)
        (void)m->f->C_Finalize(NULL);
    pthread_mutex_unlock(&modules_mu);
    rp_free(m->path);
    rp_free(m);
}

int rp__p11_module_get(const char *path, rp__p11_module **out, char *err, size_t errlen)
{
    CK_C_INITIALIZE_ARGS args;
    CK_C_GetFunctionList get;
    rp__p11_module *m;
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
        rp__p11_seterr(err, errlen, "out of memory");
        rc = RP_ENOMEM;
        goto fail;
    }
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (m->dl == NULL) {
        rp__p11_seterr(err, errlen, "cannot load the PKCS#11 module %s", path);
        rc = access(path, F_OK) == 0 ? RP_EIO : RP_ENOENT;
        goto fail;
    }
    *(void **)&get = dlsym(m->dl, "C_GetFunctionList");
    if (get == NULL || get(&m->f) != CKR_OK || m->f == NULL) {
        rp__p11_seterr(err, errlen, "%s is not a PKCS#11 module", path);
        rc = RP_EIO;
        goto fail;
    }
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    rv = m->f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        rp__p11_seterr(err, errlen, "C_Initialize failed (CKR 0x%lx)", (unsigned long)rv);
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
        rp__p11_seterr(err, errlen, "C_GetSlotList failed (CKR 0x%lx)", (unsigned long)rv);
        return RP_EIO;
    }
    if (nslots > 0) {
        slots = rp_calloc(nslots, sizeof(*slots));
        if (slots == NULL) {
            rp__p11_seterr(err, errlen, "out of memory");
            return RP_ENOMEM;
        }
        rv = f->C_GetSlotList(CK_TRUE, slots, &nslots);
        if (rv != CKR_OK) {
            rp__p11_seterr(err, errlen, "C_GetSlotList failed (CKR 0x%lx)", (unsigned long)rv);
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
    rp__p11_seterr(err, errlen, "no PKCS#11 token labelled \"%s\"", token);
out:
    rp_free(slots);
    return rc;
}

int rp__p11_session_open(const rp__p11_module *m, const char *token, const char *pin,
                         CK_SESSION_HANDLE *sess, char *err, size_t errlen)
{
    CK_FUNCTION_LIST_PTR f = m->f;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
    CK_SLOT_ID slot = 0;
    CK_RV rv;
    int rc;

    rc = find_slot(f, token, &slot, err, errlen);
    if (rc != 0)
        return rc;
    rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        rp__p11_seterr(err, errlen, "C_OpenSession failed (CKR 0x%lx)", (unsigned long)rv);
        return RP_EIO;
    }
    rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE) {
        rp__p11_seterr(err, errlen, "wrong PIN for PKCS#11 token \"%s\"", token);
        rc = RP_ECRYPTO;
        goto fail;
    }
    if (rv == CKR_PIN_LOCKED) {
        rp__p11_seterr(err, errlen, "the user PIN of PKCS#11 token \"%s\" is locked", token);
        rc = RP_EPERM;
        goto fail;
    }
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        rp__p11_seterr(err, errlen, "C_Login failed (CKR 0x%lx)", (unsigned long)rv);
        rc = RP_EIO;
        goto fail;
    }
    *sess = s;
    return 0;
fail:
    (void)f->C_CloseSession(s);
    return rc;
}
