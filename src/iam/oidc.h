/*
 * oidc.h - signing keys of external OpenID Connect issuers, for App Service Easy Auth.
 *
 * An app's Easy Auth may name an openIdIssuer (https://login.example.com/TENANT/v2.0). Bearer
 * tokens from that issuer are verified with the keys it publishes: its discovery document
 * ({issuer}/.well-known/openid-configuration) names a jwks_uri, which serves a JWK Set. This
 * module fetches both over verified TLS, keeps the keys per issuer and verifies tokens against
 * them.
 *
 * Workload: verification runs on the libuv loop threads, on every first sighting of a token
 * (the caller caches verified tokens), for a handful of issuers; fetching is rare (hourly per
 * issuer, plus on a key rollover). So the two never meet on one thread:
 *   - one fetch thread, started by rp_oidc_open, does all network I/O with libcurl (https only,
 *     no redirects, TLS 1.2+, peer and host name verified against ca_file or the system store,
 *     10 s timeouts, responses capped at RP_OIDC_DOC_MAX bytes);
 *   - each issuer's keys are an immutable, reference-counted rp_oidc_keys set; the fetch thread
 *     builds a new set and swaps it in under a mutex. rp_oidc_verify holds that mutex only to
 *     find the issuer and take a reference, then verifies without any lock, network or disk.
 *
 * Trust: the discovery document must name exactly the issuer that was asked for (OpenID
 * Connect Discovery 1.0 section 4.3); jwks_uri must be https. Keys: RSA (n, e; 2048..8192
 * bits) and EC P-256 (x, y), "use" absent or "sig", a kid (1..RP_JWT_MAX_KID printable ASCII)
 * required. Keys of other types, curves or uses, too small RSA moduli, keys whose "alg" is not
 * one we verify, and every key of a kid that appears more than once are left out; a set with
 * no usable key is refused (the previous set stays in use). Tokens: RS256, PS256 or ES256 only
 * (never none or HS*), the header's kid selects the key, whose type must suit the alg (and
 * whose "alg", when the JWK names one, must equal it); iss must equal the issuer exactly; exp
 * is required; exp, nbf and iat are checked with RP_OIDC_SKEW_S of skew. The audience is NOT
 * checked here: that is the caller's policy (the app's client id / allowed audiences).
 *
 * Freshness: a set is refreshed every RP_OIDC_REFRESH_S; a failed fetch keeps the previous set
 * (keys roll over with overlap) and is retried after RP_OIDC_RETRY_S, doubling up to
 * RP_OIDC_REFRESH_S; a set that could not be refreshed for RP_OIDC_STALE_S is no longer used.
 * A token with an unknown kid fails at once and schedules a refresh, at most once per
 * RP_OIDC_MISS_S per issuer, so a flood of made-up kids costs the issuer one request a minute.
 *
 * Ownership and threads: rp_oidc is created and closed by one thread (start-up / shutdown);
 * rp_oidc_watch, rp_oidc_refresh, rp_oidc_verify and rp_oidc_state are thread-safe and never
 * block on I/O. rp_oidc_keys sets are immutable and shared: rp_oidc_keys_ref per extra owner,
 * rp_oidc_keys_free per reference. Allocation failure propagates as RP_ENOMEM (or as a failed
 * fetch with reason "out of memory" on the fetch thread); nothing here aborts.
 */
#ifndef RP_IAM_OIDC_H
#define RP_IAM_OIDC_H

#include "crypto/jwt.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define RP_OIDC_MAX_ISSUERS 64           /* issuers watched at once */
#define RP_OIDC_ISSUER_MAX  256          /* bytes of an issuer URL */
#define RP_OIDC_URL_MAX     2048         /* bytes of a jwks_uri */
#define RP_OIDC_DOC_MAX     (256 * 1024) /* bytes of a discovery document or a JWK Set */
#define RP_OIDC_MAX_JWKS    100          /* entries in a JWK Set's "keys" (usable or not) */
#define RP_OIDC_REASON_MAX  256          /* bytes of a failure reason, NUL included */
#define RP_OIDC_TIMEOUT_MS  10000        /* connect and whole-transfer timeout per request */
#define RP_OIDC_REFRESH_S   3600         /* refresh period of a good set */
#define RP_OIDC_RETRY_S     60           /* first retry after a failed fetch (then doubling) */
#define RP_OIDC_MISS_S      60           /* at most one unknown-kid refresh per issuer per this */
#define RP_OIDC_STALE_S     86400        /* a set older than this is not used */
#define RP_OIDC_IDLE_S      86400        /* an issuer unused this long may be evicted when full */
#define RP_OIDC_SKEW_S      60           /* clock skew allowed on exp / nbf / iat */

typedef struct rp_oidc rp_oidc;
typedef struct rp_oidc_keys rp_oidc_keys;

typedef enum {
    RP_OIDC_OK = 0,
    RP_OIDC_NO_KEYS, /* issuer not watched, keys not fetched yet, fetch failed or set stale */
    RP_OIDC_INVALID, /* malformed, alg not allowed, unknown kid, alg/key mismatch, bad
                        signature, wrong iss, bad claim types, exp missing */
    RP_OIDC_EXPIRED  /* exp passed, or nbf / iat in the future (beyond RP_OIDC_SKEW_S) */
} rp_oidc_status;

/* ---------------------------------------------------------------- the cache */

/*
 * Starts the fetch thread. ca_file: PEM bundle of the CAs trusted for outbound TLS, which then
 * replaces the system's store (not added to it), or NULL for the system's store. The bundle is
 * re-read for each connection, so replacing the file takes effect on the next fetch. Also
 * initialises libcurl (curl_global_init, thread-safe in the libcurl we require).
 * 0 and *out; RP_EINVAL (out NULL, ca_file empty or longer than 4096 bytes), RP_ENOENT /
 * RP_EIO (ca_file cannot be opened for reading), RP_ENOMEM, RP_EIO (no thread or libcurl).
 */
int rp_oidc_open(const char *ca_file, rp_oidc **out);

/* Stops the fetch thread (an ongoing transfer is aborted within about a second), joins it and
 * frees everything; key sets still referenced elsewhere live on until released. Accepts NULL.
 * No other rp_oidc call may run concurrently or follow. */
void rp_oidc_close(rp_oidc *o);

/*
 * Keeps issuer's keys from now on: the first fetch is queued at once (on the fetch thread; this
 * call does not wait for it). issuer must be an https:// URL of at most RP_OIDC_ISSUER_MAX
 * bytes with a host, no userinfo, query, fragment, backslash, space or control byte.
 * Idempotent: watching a watched issuer only marks it used. When RP_OIDC_MAX_ISSUERS are
 * watched, the one unused (by watch or verify) for longest, if over RP_OIDC_IDLE_S, is dropped
 * to make room. 0; RP_EINVAL (bad issuer); RP_ETOOBIG (table full); RP_ENOMEM.
 */
int rp_oidc_watch(rp_oidc *o, const char *issuer);

/*
 * Asks for a fetch of a watched issuer now (after a settings change, or from the API), unless
 * one was asked for within RP_OIDC_MISS_S. Never waits. 0; RP_ENOENT (not watched); RP_EAGAIN
 * (rate-limited: nothing queued); RP_EINVAL.
 */
int rp_oidc_refresh(rp_oidc *o, const char *issuer);

/*
 * Verifies tok[0..n) (a compact JWS; no NUL needed) against issuer's current keys (see the file
 * comment for every check), with now in Unix seconds. Never blocks: a token whose kid is not in
 * the set fails with RP_OIDC_INVALID and schedules a refresh (rate-limited as rp_oidc_refresh).
 * RP_OIDC_OK and *claims = a new reference to the payload object (caller json_decref's);
 * otherwise *claims is NULL. *why (if why is non-NULL) is a static reason for logs and
 * error descriptions, never holding token text ("ok" on success). issuer is compared byte for
 * byte with the watched one and with the token's iss.
 */
rp_oidc_status rp_oidc_verify(rp_oidc *o, const char *issuer, const char *tok, size_t n,
                              int64_t now, json_t **claims, const char **why);

/*
 * The state of issuer's keys, for the API and tests. Outputs may be NULL. Returns:
 *   0           the last fetch succeeded: *nkeys usable keys, fetched at *fetched_at (Unix s);
 *   RP_EAGAIN   watched, first fetch not finished yet (*nkeys 0, *fetched_at 0);
 *   RP_EIO      the last fetch failed: reason[cap] says why (e.g. "discovery: SSL certificate
 *               problem: ..."); *nkeys / *fetched_at describe the set still in use (0 if none);
 *   RP_ENOENT   not watched;  RP_EINVAL  bad arguments.
 * reason is "" unless RP_EIO.
 */
int rp_oidc_state(rp_oidc *o, const char *issuer, size_t *nkeys, int64_t *fetched_at, char *reason,
                  size_t cap);

/* ---------------------------------------------------------------- pure parts */

/*
 * Parses a discovery document doc[0..n) (JSON object, duplicate members refused) and checks
 * that its "issuer" is exactly issuer. 0 and the "jwks_uri" (an https URL, with a host, without
 * space, control bytes, backslash or fragment) copied NUL-terminated into jwks_uri[cap];
 * RP_ETOOBIG (n > RP_OIDC_DOC_MAX, or the URI longer than RP_OIDC_URL_MAX or cap - 1);
 * RP_EPARSE (not a JSON object; issuer or jwks_uri missing or not a string); RP_EINVAL (issuer
 * differs; jwks_uri not an https URL; NULL arguments); RP_ENOMEM. err[errlen] gets a reason
 * that never quotes the document. jwks_uri is untouched on failure.
 */
int rp_oidc_parse_discovery(const char *doc, size_t n, const char *issuer, char *jwks_uri,
                            size_t cap, char *err, size_t errlen);

/*
 * Parses a JWK Set doc[0..n) ({"keys": [...]}, at most RP_OIDC_MAX_JWKS entries, duplicate
 * members refused) into a new key set of the usable keys (see the file comment), in document
 * order. 0 and *out (one reference); RP_ETOOBIG (n > RP_OIDC_DOC_MAX or too many entries);
 * RP_EPARSE (not a JSON object, "keys" missing or not an array); RP_ENOENT (no usable signing
 * key); RP_EINVAL (NULL arguments); RP_ENOMEM. err[errlen] gets a reason. *out untouched on
 * failure.
 */
int rp_oidc_parse_jwks(const char *doc, size_t n, rp_oidc_keys **out, char *err, size_t errlen);

/* Number of keys in ks (0 for NULL). */
size_t rp_oidc_keys_count(const rp_oidc_keys *ks);

/* The key with this kid, or NULL. Borrowed: valid while the caller holds ks. */
const rp_jwt_key *rp_oidc_keys_find(const rp_oidc_keys *ks, const char *kid);

/* Adds a reference (thread-safe) and returns ks; NULL for NULL. */
rp_oidc_keys *rp_oidc_keys_ref(rp_oidc_keys *ks);

/* Drops a reference (thread-safe); the last one frees the set and its keys. Accepts NULL. */
void rp_oidc_keys_free(rp_oidc_keys *ks);

/*
 * rp_oidc_verify's checks against an explicit set ks (NULL: RP_OIDC_NO_KEYS), without the
 * refresh on an unknown kid. For the fuzzer and unit tests; same results and outputs.
 */
rp_oidc_status rp_oidc_verify_keys(const rp_oidc_keys *ks, const char *issuer, const char *tok,
                                   size_t n, int64_t now, json_t **claims, const char **why);

/*
 * Test hook: installs ks (a new reference is taken) as issuer's current set, watching issuer
 * first if needed, as if a fetch had just succeeded; the scheduled refresh is pushed back by
 * RP_OIDC_REFRESH_S. 0 or rp_oidc_watch's errors. Not for production code.
 */
int rp__oidc_set_keys(rp_oidc *o, const char *issuer, rp_oidc_keys *ks);

#endif
