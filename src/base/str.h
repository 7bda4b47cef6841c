/*
 * str.h - small string helpers that replace the banned libc calls (STYLE rule 8).
 *
 * Everything works on (pointer, length) views; nothing here allocates.
 */
#ifndef RP_BASE_STR_H
#define RP_BASE_STR_H

#include <stddef.h>
#include <stdint.h>

/* A non-owning view of bytes. */
typedef struct rp_str {
    const char *p;
    size_t n;
} rp_str;

#define RP_STR(lit) ((rp_str){(lit), sizeof(lit) - 1})

int rp_str_eq(rp_str a, const char *lit);
int rp_str_eq_nocase(rp_str a, const char *lit);
int rp_str_has_prefix(rp_str a, const char *lit);
int rp_str_has_suffix_nocase(rp_str a, const char *lit);
/* Strips leading and trailing space and horizontal tab. */
rp_str rp_str_trim(rp_str a);
static inline char rp_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/*
 * Parses a decimal unsigned integer made only of digits (no sign, no space), at most max.
 * 0 and *out, or RP_EPARSE (empty / non-digit) or RP_ETOOBIG (> max).
 */
int rp_parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out);

/* Copies src into dst[cap] always NUL-terminating; returns RP_ETOOBIG if it had to truncate. */
int rp_strlcpy(char *dst, const char *src, size_t cap);
/* 1 if s[0..n) is well-formed UTF-8: no overlong forms, surrogates, code points past U+10FFFF
 * or truncated sequences; with no_c1 also no C1 control characters (U+0080-U+009F). */
int rp_utf8_valid(const void *s, size_t n, int no_c1);

/* Value of one hex digit (either case), or -1. */
static inline int rp_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Writes 2*n lowercase hex digits and a NUL into out (cap >= 2n+1). */
void rp_hex_encode(const unsigned char *in, size_t n, char *out);

#define RP_QUOTE_MAX 48 /* bytes of untrusted input an error message quotes */

/*
 * For error messages that quote what they refuse: copies at most RP_QUOTE_MAX bytes of s[0..n)
 * into buf as printable ASCII ('?' for anything else), with "..." when cut. Returns buf.
 */
const char *rp_quote(const char *s, size_t n, char buf[RP_QUOTE_MAX + 4]);

/* Constant-time equality of two byte strings of possibly different lengths. */
int rp_ct_equal(const void *a, size_t an, const void *b, size_t bn);

/*
 * base64url without padding. Encode writes a NUL-terminated string into out (cap >= 4n/3+2).
 * Decode returns 0 and *outlen, RP_EPARSE on bad input, RP_ETOOBIG if out is too small.
 */
int rp_b64url_encode(const unsigned char *in, size_t n, char *out, size_t cap);
int rp_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen);

#endif
