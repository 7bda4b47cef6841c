/*
 * cookie_fuzz.c - libFuzzer driver for the cookie handling of built-in authentication:
 * src/http/cookie.c (rp_cookie_scan, rp_cookie_get), src/sites/session.c (rp_session_open of
 * hostile cookie values) and rp_signin_local_path (src/sites/signin.c).
 *
 * Input: a Cookie header value; the same bytes are also split at NUL bytes into several Cookie
 * headers, opened as a sealed value and checked as a redirect target. Corpus:
 * tests/fuzz/corpus/cookie/.
 *
 * Invariants checked with abort():
 *   - a found value lies inside the header, has no leading/trailing space or tab (unless it was
 *     quoted), never contains ';', and the count never exceeds the number of '=' in the header;
 *   - rp_cookie_get agrees with rp_cookie_scan summed over the headers (0 / RP_ENOENT /
 *     RP_EEXIST);
 *   - opening arbitrary bytes never succeeds (the key is random and never seen by the input),
 *     fails only with RP_EPARSE or RP_ECRYPTO, and leaves *payload NULL; a value sealed here
 *     opens to what was sealed;
 *   - a path rp_signin_local_path accepts starts with '/', has no second '/' or '\' after it,
 *     is printable ASCII without '\' and at most RP_SIGNIN_TARGET_MAX bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "http/cookie.h"
#include "sites/session.h"
#include "sites/signin.h"

#define MAX_IN 8192

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static rp_session_box *box;

static const char *const names[] = {"__Host-AppServiceAuthSession", "a", "", "x y", "=", ";"};

static void check_scan(const char *s, size_t n)
{
    size_t eqs = 0;

    for (size_t i = 0; i < n; i++)
        eqs += s[i] == '=';
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        rp_str val = {NULL, 0};
        size_t count = 0;
        rp_cookie_scan((rp_str){s, n}, names[k], &val, &count);
        if (count > eqs)
            abort();
        if (count == 0)
            continue;
        if (val.p < s || val.p + val.n > s + n || memchr(val.p, ';', val.n) != NULL)
            abort();
        if (val.n > 0 && (val.p == s || val.p[-1] != '"') &&
            (val.p[0] == ' ' || val.p[0] == '\t' || val.p[val.n - 1] == ' ' ||
             val.p[val.n - 1] == '\t'))
            abort();
    }
}

static void check_get(const char *s, size_t n)
{
    rp_http_head h;
    size_t start = 0, sum = 0;
    rp_str val, v2 = {NULL, 0};
    int rc;

    memset(&h, 0, sizeof(h));
    for (size_t i = 0; i <= n && h.nheaders < RP_HTTP_MAX_HEADERS; i++) {
        if (i < n && s[i] != '\0')
            continue;
        h.headers[h.nheaders].name = (rp_str){h.nheaders % 2 ? "cookie" : "Cookie", 6};
        h.headers[h.nheaders].value = (rp_str){s + start, i - start};
        rp_cookie_scan(h.headers[h.nheaders].value, "a", &v2, &sum);
        h.nheaders++;
        start = i + 1;
    }
    rc = rp_cookie_get(&h, "a", &val);
    if ((sum == 0 && (rc != RP_ENOENT || val.p != NULL)) || (sum == 1 && rc != 0) ||
        (sum > 1 && rc != RP_EEXIST))
        abort();
    if (sum > 0 && (val.p != v2.p || val.n != v2.n))
        abort();
}

static void check_open(const char *s, size_t n)
{
    json_t *p = (json_t *)1;
    int rc = rp_session_open(box, "app", "session", s, n, &p);

    if (rc == 0 || (rc != RP_EPARSE && rc != RP_ECRYPTO) || p != NULL)
        abort();
}

static void check_path(const char *s, size_t n)
{
    char buf[MAX_IN + 1];

    memcpy(buf, s, n);
    buf[n] = '\0';
    if (!rp_signin_local_path(buf))
        return;
    if (buf[0] != '/' || buf[1] == '/' || strlen(buf) > RP_SIGNIN_TARGET_MAX ||
        strchr(buf, '\\') != NULL)
        abort();
    for (size_t i = 0; buf[i] != '\0'; i++)
        if ((unsigned char)buf[i] < 0x21 || (unsigned char)buf[i] > 0x7e)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    const char *s = (const char *)d;

    if (n > MAX_IN)
        return 0;
    if (box == NULL) {
        json_t *j = json_pack("{s:s}", "sid", "x"), *back = NULL;
        char v[RP_SESSION_VALUE_MAX];
        if (rp_session_box_new(&box) != 0 || j == NULL ||
            rp_session_seal(box, "app", "session", j, v, sizeof(v)) != 0 ||
            rp_session_open(box, "app", "session", v, strlen(v), &back) != 0 ||
            !json_equal(j, back))
            abort();
        json_decref(j);
        json_decref(back);
    }
    check_scan(s, n);
    check_get(s, n);
    check_open(s, n);
    check_path(s, n);
    return 0;
}
