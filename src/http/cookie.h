/*
 * cookie.h - finding one cookie in a request's Cookie headers (RFC 6265 §5.4 cookie-string).
 *
 * Built-in authentication keeps its sign-in state and session in cookies, so the lookup must
 * not be fooled by a second cookie of the same name (one a sibling host planted with a Domain
 * attribute rides along with the real one): the caller learns how many there were and refuses
 * anything but exactly one.
 *
 * A Cookie header is "name=value" pairs separated by ';' and optional whitespace. HTTP/2
 * clients may split it over several headers; every one is read. Pairs without '=' are skipped
 * (browsers send them for nameless cookies); a value wrapped in double quotes loses the quotes.
 * Nothing is decoded or copied: the value points into the header.
 */
#ifndef RP_HTTP_COOKIE_H
#define RP_HTTP_COOKIE_H

#include "base/str.h"
#include "http/codec.h"

#include <stddef.h>

/* Cookie names are compared byte for byte (case-sensitive, as browsers do). */

/*
 * Looks for name in one Cookie header value v. Adds the number of pairs named name to *count
 * and, for the first of them when *count was 0, points *val into v. Never fails.
 */
void rp_cookie_scan(rp_str v, const char *name, rp_str *val, size_t *count);

/*
 * The value of the cookie name across all of h's Cookie headers: 0 and *val when it appears
 * exactly once; RP_ENOENT when it is absent; RP_EEXIST when it appears more than once (*val is
 * then the first, for callers that only need to clear it).
 */
int rp_cookie_get(const rp_http_head *h, const char *name, rp_str *val);

#endif
