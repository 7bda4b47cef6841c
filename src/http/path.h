/*
 * path.h - request-path normaliser: the traversal defence of the static file server.
 *
 * A request target's path is percent-decoded exactly once and its "." and ".." segments are
 * resolved, so every later consumer (router, static files, Key Vault) sees one canonical form
 * and never decodes again. Anything that could smuggle a separator or confuse a file system
 * (encoded '/', any '\', NUL, control bytes, invalid or overlong UTF-8, a climb above the root)
 * is refused rather than repaired. Empty segments and a trailing slash are kept as sent:
 * Key Vault clients depend on "/keys/n//decrypt" reaching the router unchanged.
 *
 * Nothing here allocates; the caller supplies the output buffer (cap >= n + 1 always suffices,
 * because the result is never longer than the input).
 */
#ifndef RP_HTTP_PATH_H
#define RP_HTTP_PATH_H

#include <stddef.h>

typedef enum {
    RP_PATH_OK = 0,
    RP_PATH_NOT_ABSOLUTE,  /* does not start with '/' */
    RP_PATH_BAD_ESCAPE,    /* '%' not followed by two hex digits */
    RP_PATH_ENCODED_SLASH, /* %2F or %2f */
    RP_PATH_BACKSLASH,     /* '\' raw or %5C */
    RP_PATH_NUL,           /* %00 (or a raw NUL byte) */
    RP_PATH_CTL,           /* raw or decoded control byte (0x01-0x1F, 0x7F) */
    RP_PATH_BAD_UTF8,      /* decoded bytes are not valid UTF-8 (overlong forms, surrogates,
                              > U+10FFFF, truncated) */
    RP_PATH_ABOVE_ROOT,    /* '..' would climb above '/' */
    RP_PATH_TOO_LONG       /* result does not fit */
} rp_path_status;

/*
 * Normalises the path part of a request target (no query, no fragment: the caller splits at
 * '?'). Percent-decodes exactly once ("%252e" becomes the literal "%2e"), then resolves "." and
 * ".." segments, which are recognised only after decoding ("/%2e%2e/" is ".."). '+' is not a
 * space. Raw bytes >= 0x80 are passed through but must form valid UTF-8 together with the
 * decoded ones.
 *
 * Writes a NUL-terminated result into out[cap] and its length to *outlen. The result always
 * starts with '/' and is never longer than n, so cap >= n + 1 suffices. With a smaller cap the
 * call may fail with RP_PATH_TOO_LONG even if the final result would fit, because segments are
 * resolved in place in out ("/abc/.." needs room for "/abc" on the way to "/").
 * raw may be NULL only when n is 0; out may be NULL only when cap is 0; why must not be NULL.
 *
 * Returns 0 with *why = RP_PATH_OK, or RP_EINVAL with *why set to the first problem found,
 * *outlen = 0 and (if cap > 0) out holding the empty string. Runs in O(n).
 */
int rp_path_normalize(const char *raw, size_t n, char *out, size_t cap, size_t *outlen,
                      rp_path_status *why);

/* Short English reason for s ("ok", "path climbs above root", ...): a static string, never NULL. */
const char *rp_path_status_str(rp_path_status s);

/*
 * True (1) if any segment of the normalised path norm[0..n) starts with '.': dotfiles and
 * dot-folders such as ".git", ".env" or ".well-known". The static file server refuses these
 * unless a route allows them explicitly. 0 otherwise.
 */
int rp_path_has_dot_segment(const char *norm, size_t n);

#endif
