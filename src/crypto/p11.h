/*
 * p11.h - the process's PKCS#11 modules: one dlopen + C_Initialize per module path, shared and
 * reference-counted by every user in the process (crypto/keyprov.c's root key provider and
 * vault/kvhsm.c's HSM key store), and the open-a-logged-in-session sequence they share.
 *
 * Why one list: C_Initialize and C_Finalize are per process, not per caller. With a list per
 * user, two users of one module would each believe they own its initialisation, and whichever
 * finalised first would pull the library out from under the other's sessions. Here the module
 * is finalised only when the last reference is put, and only if this process initialised it
 * (a module some other code initialised first, CKR_CRYPTOKI_ALREADY_INITIALIZED, is left
 * initialised). The library itself stays mapped: modules such as SoftHSM2 register exit
 * handlers.
 *
 * Threads: get and put may be called from any thread (one process-wide mutex). A module's
 * function list is immutable; what a caller does with its sessions is the caller's to
 * serialise.
 */
#ifndef RP_CRYPTO_P11_H
#define RP_CRYPTO_P11_H

#include <p11-kit/pkcs11.h>

#include <stddef.h>

typedef struct rp__p11_module rp__p11_module;

/*
 * Takes a reference to the module at path, loading and initialising it (CKF_OS_LOCKING_OK) if
 * no one in the process holds it. 0 and *out (release with rp__p11_module_put), or RP_ENOENT
 * (no such file), RP_EIO (not loadable, not a PKCS#11 module, C_Initialize failed), RP_ENOMEM,
 * with a sentence in err[errlen].
 */
int rp__p11_module_get(const char *path, rp__p11_module **out, char *err, size_t errlen);

/* Drops a reference; the last one finalises the module (file comment). Accepts NULL. */
void rp__p11_module_put(rp__p11_module *m);

/* m's function list (valid while the caller holds its reference). */
CK_FUNCTION_LIST_PTR rp__p11_functions(const rp__p11_module *m);

/*
 * Finds the slot whose initialised token is labelled token, opens a read/write session there
 * and logs the user in with pin (a login this process already holds is reused). 0 and *sess
 * (close it with C_CloseSession), or on failure no session and:
 *   RP_ENOENT  no token has that label
 *   RP_ECRYPTO the PIN is wrong
 *   RP_EPERM   the user PIN is locked
 *   RP_EIO     a PKCS#11 call failed
 *   RP_ENOMEM
 * with a sentence in err[errlen] that never contains the PIN.
 */
int rp__p11_session_open(const rp__p11_module *m, const char *token, const char *pin,
                         CK_SESSION_HANDLE *sess, char *err, size_t errlen);

/* snprintf into err[errlen] when err is not NULL and errlen > 0: the callers' error sentences. */
void rp__p11_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
