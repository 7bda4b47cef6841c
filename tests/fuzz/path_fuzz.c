/*
 * path_fuzz.c - libFuzzer driver for src/http/path.c (rp_path_normalize).
 *
 * The input is a raw request path. Besides memory safety, the driver checks with abort():
 *   - acceptance and output agree with a deliberately naive reference (decode everything,
 *     validate UTF-8 by computing code points, then resolve segments on a stack);
 *   - an accepted result starts with '/', is no longer than the input, holds no NUL, '\\' or
 *     control byte, and has no "." or ".." segment;
 *   - percent-encoding every byte of the result and normalising that gives the result back;
 *   - a smaller output buffer yields the same result or RP_PATH_TOO_LONG, nothing else.
 * Corpus: tests/fuzz/corpus/path/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "http/path.h"

#define MAX_IN 8192

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static int hexv(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

/* Whole-string UTF-8 check by decoding code points (independent of path.c's state machine). */
static int ref_utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint32_t cp;
        size_t len;
        uint32_t min;

        if (s[i] < 0x80) {
            i++;
            continue;
        } else if ((s[i] & 0xE0) == 0xC0) {
            len = 2, min = 0x80, cp = s[i] & 0x1F;
        } else if ((s[i] & 0xF0) == 0xE0) {
            len = 3, min = 0x800, cp = s[i] & 0x0F;
        } else if ((s[i] & 0xF8) == 0xF0) {
            len = 4, min = 0x10000, cp = s[i] & 0x07;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* Naive reference: returns the result length, or -1 if the path must be refused. */
static long ref_normalize(const uint8_t *s, size_t n, uint8_t *out)
{
    static uint8_t dec[MAX_IN];
    static size_t seg_start[MAX_IN], seg_len[MAX_IN];
    size_t dn = 0, nseg = 0, depth = 0, o = 0;
    int trailing = 0;

    if (n == 0 || s[0] != '/')
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];

        if (c == '%') {
            if (i + 2 >= n || hexv(s[i + 1]) < 0 || hexv(s[i + 2]) < 0)
                return -1;
            c = (uint8_t)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
            if (c == '/')
                return -1;
            i += 2;
        }
        if (c == '\\' || c < 0x20 || c == 0x7F)
            return -1;
        dec[dn++] = c;
    }
    if (!ref_utf8_ok(dec, dn))
        return -1;
    /* segments of dec, each after a '/' */
    for (size_t i = 0; i < dn; i++) {
        if (dec[i] == '/') {
            seg_start[nseg] = i + 1;
            seg_len[nseg] = 0;
            nseg++;
        } else {
            seg_len[nseg - 1]++;
        }
    }
    /* resolve on a stack of segment indexes, reusing seg_* (depth <= current index) */
    for (size_t k = 0; k < nseg; k++) {
        const uint8_t *p = dec + seg_start[k];
        size_t l = seg_len[k];

        trailing = 0;
        if (l == 1 && p[0] == '.') {
            trailing = 1;
        } else if (l == 2 && p[0] == '.' && p[1] == '.') {
            if (depth == 0)
                return -1;
            depth--;
            trailing = 1;
        } else {
            seg_start[depth] = seg_start[k];
            seg_len[depth] = l;
            depth++;
        }
    }
    for (size_t k = 0; k < depth; k++) {
        out[o++] = '/';
        memcpy(out + o, dec + seg_start[k], seg_len[k]);
        o += seg_len[k];
    }
    if (trailing || o == 0)
        out[o++] = '/';
    return (long)o;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static char out[MAX_IN + 1], out2[MAX_IN + 1], enc[3 * MAX_IN + 1], again[3 * MAX_IN + 1];
    static uint8_t ref[MAX_IN + 1];
    static const char hex[] = "0123456789ABCDEF";
    size_t len = 0, len2 = 0, elen = 0, small;
    rp_path_status why, why2;
    long rlen;
    int rc;

    if (n > MAX_IN)
        return 0;
    rc = rp_path_normalize((const char *)d, n, out, n + 1, &len, &why);
    rlen = ref_normalize(d, n, ref);
    if ((rc == 0) != (rlen >= 0))
        abort();
    if (rc != 0) {
        if (rc != RP_EINVAL || why == RP_PATH_OK || why == RP_PATH_TOO_LONG ||
            why > RP_PATH_TOO_LONG || len != 0 || out[0] != '\0')
            abort();
    } else {
        if (why != RP_PATH_OK || len == 0 || len > n || out[0] != '/' || out[len] != '\0' ||
            (size_t)rlen != len || memcmp(out, ref, len) != 0)
            abort();
        for (size_t i = 0; i < len; i++) {
            uint8_t c = (uint8_t)out[i];
            if (c == '\0' || c == '\\' || c < 0x20 || c == 0x7F)
                abort();
            if (c == '.' && out[i - 1] == '/' &&
                (i + 1 == len || out[i + 1] == '/' ||
                 (out[i + 1] == '.' && (i + 2 == len || out[i + 2] == '/'))))
                abort();
        }
        if (!rp_path_has_dot_segment(out, len) && memmem(out, len, "/.", 2) != NULL)
            abort();
        /* encode every byte except '/', then decode again: must round-trip exactly */
        for (size_t i = 0; i < len; i++) {
            uint8_t c = (uint8_t)out[i];
            if (c == '/') {
                enc[elen++] = '/';
            } else {
                enc[elen++] = '%';
                enc[elen++] = hex[c >> 4];
                enc[elen++] = hex[c & 15];
            }
        }
        if (rp_path_normalize(enc, elen, again, elen + 1, &len2, &why2) != 0 || len2 != len ||
            memcmp(again, out, len) != 0)
            abort();
    }

    /* a smaller buffer: the same answer, or TOO_LONG */
    small = n > 0 ? d[0] % (n + 1) : 0;
    rc = rp_path_normalize((const char *)d, n, out2, small, &len2, &why2);
    if (rc == 0) {
        if (why != RP_PATH_OK || len2 != len || memcmp(out2, out, len + 1) != 0)
            abort();
    } else if (why2 != RP_PATH_TOO_LONG && why2 != why) {
        abort();
    }
    return 0;
}
