/*
 * path.c - request-path normaliser (see path.h for the contract).
 *
 * Workload: runs once per request on a target of at most a few KiB, so it is a single pass with
 * no allocation. Each segment (the raw bytes between two '/') is decoded straight into out and
 * validated byte by byte; only then is it compared with "." and "..", which is why an encoded
 * dot segment is caught. Decoding cannot create a separator (%2F is refused), so raw '/' bytes
 * are exactly the segment boundaries.
 *
 * Resolution happens in place in out: a "." segment is dropped by rewinding to its start, a
 * ".." segment by rewinding past the previous segment. Every rewound byte was written once and
 * is rewound at most once, so the whole thing is O(n).
 */
#include "http/path.h"
#include "base/err.h"
#include "base/str.h"

/* UTF-8 decoder state: continuation bytes still expected and the range the next one must be in.
   The narrowed ranges after E0, ED, F0 and F4 are what reject overlong forms, surrogates and
   code points above U+10FFFF (RFC 3629 section 4). */
typedef struct utf8_state {
    unsigned need;
    unsigned char lo;
    unsigned char hi;
} utf8_state;

/* Feeds one byte; 0 if the stream is still valid UTF-8, -1 if not. */
static int utf8_feed(utf8_state *u, unsigned char c)
{
    if (u->need > 0) {
        if (c < u->lo || c > u->hi)
            return -1;
        u->need--;
        u->lo = 0x80;
        u->hi = 0xBF;
        return 0;
    }
    u->lo = 0x80;
    u->hi = 0xBF;
    if (c < 0x80)
        return 0;
    if (c >= 0xC2 && c <= 0xDF) {
        u->need = 1;
    } else if (c == 0xE0) {
        u->need = 2;
        u->lo = 0xA0;
    } else if (c == 0xED) {
        u->need = 2;
        u->hi = 0x9F;
    } else if (c >= 0xE1 && c <= 0xEF) {
        u->need = 2;
    } else if (c == 0xF0) {
        u->need = 3;
        u->lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
        u->need = 3;
    } else if (c == 0xF4) {
        u->need = 3;
        u->hi = 0x8F;
    } else {
        return -1; /* stray continuation byte, C0/C1 (always overlong) or F5..FF */
    }
    return 0;
}

/* Refusals that apply to a byte whether it arrived raw or percent-encoded. */
static rp_path_status check_byte(unsigned char c)
{
    if (c == 0)
        return RP_PATH_NUL;
    if (c == '\\')
        return RP_PATH_BACKSLASH;
    if (c < 0x20 || c == 0x7F)
        return RP_PATH_CTL;
    return RP_PATH_OK;
}

int rp_path_normalize(const char *raw, size_t n, char *out, size_t cap, size_t *outlen,
                      rp_path_status *why)
{
    const unsigned char *s = (const unsigned char *)raw;
    utf8_state u = {0, 0x80, 0xBF};
    rp_path_status st;
    size_t i = 1; /* next raw byte; always just after a '/' at the top of the segment loop */
    size_t o = 1; /* next output byte */

    *outlen = 0;
    if (cap > 0)
        out[0] = '\0';
    if (n == 0 || s[0] != '/') {
        st = RP_PATH_NOT_ABSOLUTE;
        goto fail;
    }
    if (cap < 2) {
        st = RP_PATH_TOO_LONG;
        goto fail;
    }
    out[0] = '/';

    for (;;) {
        size_t seg = o; /* start of this segment in out; out[seg - 1] is '/' */
        int dot, dotdot;

        while (i < n && s[i] != '/') {
            unsigned char c = s[i];

            if (c == '%') {
                int hi, lo;

                if (n - i < 3 || (hi = rp_hex_value(s[i + 1])) < 0 ||
                    (lo = rp_hex_value(s[i + 2])) < 0) {
                    st = RP_PATH_BAD_ESCAPE;
                    goto fail;
                }
                c = (unsigned char)(hi << 4 | lo);
                if (c == '/') {
                    st = RP_PATH_ENCODED_SLASH;
                    goto fail;
                }
                i += 3;
            } else {
                i++;
            }
            st = check_byte(c);
            if (st != RP_PATH_OK)
                goto fail;
            if (utf8_feed(&u, c) != 0) {
                st = RP_PATH_BAD_UTF8;
                goto fail;
            }
            if (o >= cap - 1) {
                st = RP_PATH_TOO_LONG;
                goto fail;
            }
            out[o++] = (char)c;
        }
        if (u.need > 0) { /* a sequence cut short by '/' or by the end */
            st = RP_PATH_BAD_UTF8;
            goto fail;
        }

        dot = o - seg == 1 && out[seg] == '.';
        dotdot = o - seg == 2 && out[seg] == '.' && out[seg + 1] == '.';
        if (dot) {
            o = seg;
        } else if (dotdot) {
            if (seg == 1) {
                st = RP_PATH_ABOVE_ROOT;
                goto fail;
            }
            /* Drop the previous segment (possibly empty) with its trailing '/'; out[0] == '/'
               stops the scan. */
            o = seg - 1;
            while (out[o - 1] != '/')
                o--;
        }

        if (i >= n)
            break;
        i++; /* the '/' ending this segment; after a dot segment out already ends in '/' */
        if (!dot && !dotdot) {
            if (o >= cap - 1) {
                st = RP_PATH_TOO_LONG;
                goto fail;
            }
            out[o++] = '/';
        }
    }

    out[o] = '\0';
    *outlen = o;
    *why = RP_PATH_OK;
    return 0;

fail:
    if (cap > 0)
        out[0] = '\0';
    *why = st;
    return RP_EINVAL;
}

const char *rp_path_status_str(rp_path_status s)
{
    switch (s) {
    case RP_PATH_OK: return "ok";
    case RP_PATH_NOT_ABSOLUTE: return "path does not start with '/'";
    case RP_PATH_BAD_ESCAPE: return "malformed percent-escape in path";
    case RP_PATH_ENCODED_SLASH: return "encoded '/' in path";
    case RP_PATH_BACKSLASH: return "backslash in path";
    case RP_PATH_NUL: return "NUL byte in path";
    case RP_PATH_CTL: return "control character in path";
    case RP_PATH_BAD_UTF8: return "path is not valid UTF-8";
    case RP_PATH_ABOVE_ROOT: return "path climbs above root";
    case RP_PATH_TOO_LONG: return "path too long";
    }
    return "unknown path error";
}

int rp_path_has_dot_segment(const char *norm, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (norm[i] == '.' && (i == 0 || norm[i - 1] == '/'))
            return 1;
    return 0;
}
