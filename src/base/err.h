/*
 * err.h - the error vocabulary shared by every module.
 *
 * Fallible functions return 0 on success or one of the negative RP_E* codes below and write
 * their results through out-parameters. Services map these codes to their own wire format in
 * exactly one place each; nothing else turns an RP_E* into text except rp_strerror().
 */
#ifndef RP_BASE_ERR_H
#define RP_BASE_ERR_H

#include <stddef.h>

enum {
    RP_OK = 0,
    RP_ENOMEM = -1,       /* allocation failed */
    RP_EINVAL = -2,       /* invalid argument or input */
    RP_EIO = -3,          /* I/O error from the operating system */
    RP_ENOENT = -4,       /* no such object */
    RP_EEXIST = -5,       /* object exists already */
    RP_ETOOBIG = -6,      /* input or result over a limit */
    RP_EAGAIN = -7,       /* not ready yet: call again */
    RP_EPERM = -8,        /* not permitted */
    RP_ECRYPTO = -9,      /* a cryptographic operation failed (bad tag, bad key...) */
    RP_EPARSE = -10,      /* malformed input */
    RP_ECONFLICT = -11,   /* state conflicts with the request */
    RP_EDB = -12,         /* the database reported an error */
    RP_ECLOSED = -13,     /* the peer or the object is closed */
    RP_ETIMEDOUT = -14,   /* a deadline passed */
    RP_EUNSUPPORTED = -15 /* valid but not supported */
};

/* Returns a static, human-readable name for an RP_E* code (never NULL). */
const char *rp_strerror(int err);

/*
 * Writes a formatted reason into err[errlen] (nothing when err is NULL or errlen 0) and returns
 * rc: the one helper for functions that report "code + message" through out-parameters.
 */
int rp_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
