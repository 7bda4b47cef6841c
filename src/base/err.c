/* err.c - names for the RP_E* codes. */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *rp_strerror(int err)
{
    switch (err) {
    case RP_OK: return "ok";
    case RP_ENOMEM: return "out of memory";
    case RP_EINVAL: return "invalid argument";
    case RP_EIO: return "input/output error";
    case RP_ENOENT: return "not found";
    case RP_EEXIST: return "already exists";
    case RP_ETOOBIG: return "over a limit";
    case RP_EAGAIN: return "try again";
    case RP_EPERM: return "not permitted";
    case RP_ECRYPTO: return "cryptographic failure";
    case RP_EPARSE: return "malformed input";
    case RP_ECONFLICT: return "conflict";
    case RP_EDB: return "database error";
    case RP_ECLOSED: return "closed";
    case RP_ETIMEDOUT: return "timed out";
    case RP_EUNSUPPORTED: return "not supported";
    default: return "unknown error";
    }
}

int rp_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}
