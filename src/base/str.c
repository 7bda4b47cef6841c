/* str.c - string views and the replacements for banned libc calls. */
#include "base/str.h"
#include "base/err.h"

#include <openssl/crypto.h>
#include <string.h>

int rp_str_eq(rp_str a, const char *lit)
{
    size_t n = strlen(lit);

    return a.n == n && memcmp(a.p, lit, n) == 0;
}

int rp_str_eq_nocase(rp_str a, const char *lit)
{
    size_t n = strlen(lit);

    if (a.n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (rp_lower(a.p[i]) != rp_lower(lit[i]))
            return 0;
    return 1;
}

int rp_str_has_prefix(rp_str a, const char *lit)
{
    size_t n = strlen(lit);

    return a.n >= n && memcmp(a.p, lit, n) == 0;
}

int rp_str_has_suffix_nocase(rp_str a, const char *lit)
{
    size_t n = strlen(lit);

    if (a.n < n)
        return 0;
    return rp_str_eq_nocase((rp_str){a.p + a.n - n, n}, lit);
}

rp_str rp_str_trim(rp_str a)
{
    while (a.n > 0 && (a.p[0] == ' ' || a.p[0] == '\t')) {
        a.p++;
        a.n--;
    }
    while (a.n > 0 && (a.p[a.n - 1] == ' ' || a.p[a.n - 1] == '\t'))
        a.n--;
    return a;
}

int rp_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0)
        return RP_EPARSE;
    for (size_t i = 0; i < n; i++) {
        unsigned d;
        if (s[i] < '0' || s[i] > '9')
            return RP_EPARSE;
        d = (unsigned)(s[i] - '0');
        if (d > max || v > (max - d) / 10)
            return RP_ETOOBIG;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int rp_strlcpy(char *dst, const char *src, size_t cap)
{
    size_t n = strlen(src);

    if (cap == 0)
        return RP_ETOOBIG;
    if (n >= cap) {
        memcpy(dst, src, cap - 1);
        dst[cap - 1] = '\0';
        return RP_ETOOBIG;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

void rp_hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int rp_ct_equal(const void *a, size_t an, const void *b, size_t bn)
{
    /* The length difference is not secret (lengths are public formats); the content is. */
    if (an != bn)
        return 0;
    return CRYPTO_memcmp(a, b, an) == 0;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int rp_b64url_encode(const unsigned char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0, i = 0;

    if (cap < (n / 3) * 4 + 4)
        return RP_ETOOBIG;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
    }
    out[o] = '\0';
    return 0;
}

static int b64url_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int rp_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen)
{
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;

    if (n % 4 == 1)
        return RP_EPARSE;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_val(in[i]);
        if (v < 0)
            return RP_EPARSE;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return RP_ETOOBIG;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits must be zero, or two encodings would decode to the same bytes. */
    if ((acc & ((1u << bits) - 1)) != 0)
        return RP_EPARSE;
    *outlen = o;
    return 0;
}

int rp_utf8_valid(const void *p, size_t n, int no_c1)
{
    const unsigned char *s = p;
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp, min;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (no_c1 && cp <= 0x9f))
            return 0;
        i += len;
    }
    return 1;
}

const char *rp_quote(const char *s, size_t n, char buf[RP_QUOTE_MAX + 4])
{
    size_t k = n > RP_QUOTE_MAX ? RP_QUOTE_MAX : n;

    for (size_t i = 0; i < k; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (k < n) {
        memcpy(buf + k, "...", 4);
        return buf;
    }
    buf[k] = '\0';
    return buf;
}
