/*
 * query.h - query-string and application/x-www-form-urlencoded parser.
 *
 * Splits "a=1&b=2" at '&' and the first '=' of each pair and percent-decodes names and values
 * (Key Vault clients send "api%2Dversion=7.4"). The parameters and their strings live in the
 * caller's arena (normally the request arena) and die with it. The number of pairs is capped
 * at RP_QUERY_MAX_PARAMS so a hostile query cannot make lookups expensive.
 */
#ifndef RP_HTTP_QUERY_H
#define RP_HTTP_QUERY_H

#include <stddef.h>

#include "base/arena.h"

/* One decoded pair. name and value are NUL-terminated (never NULL); the lengths exclude the NUL.
   A decoded string cannot contain NUL, so the lengths and strlen() agree. */
typedef struct rp_query_param {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} rp_query_param;

#define RP_QUERY_MAX_PARAMS 64

/*
 * Parses a query string (the part after '?', without the '?'). Decodes percent-escapes in names
 * AND values. '+' stays '+' unless form is non-zero (then it is a space, for
 * application/x-www-form-urlencoded bodies). Empty pairs ("a=1&&b=2") are skipped; a name
 * without '=' has an empty value; "=v" is a pair with an empty name. Only '&' separates pairs.
 * Pairs keep their order and duplicates are kept (rp_query_find returns the first).
 *
 * On success *out points to *count parameters in a (NULL when *count is 0). Strings are
 * NUL-terminated copies in a. q may be NULL only when n is 0.
 * Returns 0, RP_EPARSE (bad escape, decoded or raw NUL), RP_ETOOBIG (more than
 * RP_QUERY_MAX_PARAMS pairs) or RP_ENOMEM; on failure *out is NULL and *count 0 (what was
 * already allocated stays in the arena until it resets).
 */
int rp_query_parse(rp_arena *a, const char *q, size_t n, int form, rp_query_param **out,
                   size_t *count);

/*
 * Percent-encodes the NUL-terminated s into out[cap] (NUL-terminated): every byte but the RFC 3986
 * unreserved ones (A-Z a-z 0-9 - . _ ~) becomes %XX, so the result is safe as a query value or a
 * path segment. 0, or RP_ETOOBIG when it does not fit (out is then unspecified).
 */
int rp_query_encode(const char *s, char *out, size_t cap);

/* First parameter whose decoded name equals name (case-sensitive), or NULL. p may be NULL when
   count is 0. */
const rp_query_param *rp_query_find(const rp_query_param *p, size_t count, const char *name);

#endif
