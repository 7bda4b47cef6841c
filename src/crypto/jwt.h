/*
 * jwt.h - signed JSON Web Tokens (compact JWS, RFC 7515/7519) for the token service and the
 * authentication middleware.
 *
 * Two workloads use this module:
 *   - the token service signs access tokens with its own RSA key (RS256) and publishes the
 *     public half as a JWK; it checks client assertions (private_key_jwt, RFC 7523) signed by
 *     registered client certificates (RS256 or PS256);
 *   - the authentication middleware verifies a bearer token on its first sighting (later
 *     sightings hit a cache), so decode + verify is on the request path: decode parses once and
 *     keeps the signing input and the signature bytes, verify does one EVP verification and no
 *     parsing or allocation of ours (RS256-2048 costs the RSA public operation plus a few
 *     microseconds of EVP context set-up; decode is two jansson parses and one rp_malloc).
 *
 * Trust model: a token is attacker-controlled text until rp_jwt_verify says otherwise. The
 * decoder is deliberately narrower than the RFCs: only RS256, PS256 and ES256 ever verify
 * ("none" and every HMAC algorithm are refused by name, so a public key can never be used as an
 * HMAC secret); the key always comes from the caller, never from the token (jwk, jku, x5u, x5c
 * and crit headers are refused outright); base64url and JSON are parsed strictly so one token
 * has exactly one meaning (no padding, no stray characters, no duplicate members, no trailing
 * data). Choosing the key (by kid, by certificate thumbprint) is the caller's job.
 *
 * Use: rp_jwt_decode -> choose a key (rp_jwt_kid / rp_jwt_header_str) -> rp_jwt_verify ->
 * rp_jwt_check_claims -> read claims -> rp_jwt_free. Each step returns an rp_jwt_status; only
 * RP_JWT_OK from all three means the claims can be trusted.
 *
 * Keys (rp_jwt_key) hold an OpenSSL EVP_PKEY and a kid. They are immutable after creation and
 * reference-counted: share them across threads read-only, rp_jwt_key_ref for each extra owner,
 * rp_jwt_key_free once per reference. Verification and signing use a fresh EVP context per call,
 * so concurrent use of one key is safe. Accepted keys: RSA 2048..8192 bits with an odd public
 * exponent >= 3, and EC P-256; anything else (RSA-1024, P-384, Ed25519, RSA-PSS-restricted
 * keys, DSA) is refused when the key is loaded.
 *
 * A decoded token (rp_jwt) is owned by the caller and used by one thread at a time.
 *
 * Allocation: rampart's own allocations go through rp_malloc; an allocation failure comes back
 * as RP_ENOMEM (key and sign functions) or RP_JWT_NOMEM (decode, verify). jansson and OpenSSL
 * allocate through their own allocators; their failures are reported the same way where they
 * can be told apart, and as a refusal otherwise. Nothing here aborts.
 */
#ifndef RP_CRYPTO_JWT_H
#define RP_CRYPTO_JWT_H

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

/* Longer compact tokens are refused (RP_JWT_TOO_BIG) before any decoding; rp_jwt_sign never
 * produces a longer one (RP_ETOOBIG). */
#define RP_JWT_MAX_LEN 8192
/* Largest clock skew callers may allow (rp_jwt_expect.skew_s). */
#define RP_JWT_MAX_SKEW_S 300
/* Longest kid, in bytes (printable ASCII only, 0x20..0x7e). */
#define RP_JWT_MAX_KID 128
/* Time claims (exp, nbf, iat) must be integers in 0..RP_JWT_MAX_TIME (about the year 36800). */
#define RP_JWT_MAX_TIME ((int64_t)1 << 40)
/* Largest DER / PEM input accepted by the key loaders (RP_ETOOBIG beyond). */
#define RP_JWT_MAX_KEY_INPUT (64 * 1024)

/* Signature algorithms; values are bits so that a set of allowed algorithms is a mask. */
typedef enum { RP_JWT_RS256 = 1, RP_JWT_PS256 = 2, RP_JWT_ES256 = 4 } rp_jwt_alg;
#define RP_JWT_ALL_ALGS (RP_JWT_RS256 | RP_JWT_PS256 | RP_JWT_ES256)

/* Outcome of decode / verify / claim checks. Only RP_JWT_OK is success. */
typedef enum {
    RP_JWT_OK = 0,
    RP_JWT_MALFORMED,     /* not a strict compact JWS, or a refused header */
    RP_JWT_ALG,           /* alg not allowed, or alg does not suit the key */
    RP_JWT_KID,           /* no key (rp_jwt_verify with a NULL key; callers use it for lookups) */
    RP_JWT_SIGNATURE,     /* signature does not verify */
    RP_JWT_EXPIRED,       /* exp has passed (beyond the skew) */
    RP_JWT_NOT_YET_VALID, /* nbf or iat in the future (beyond the skew) */
    RP_JWT_ISSUER,        /* iss missing or not the expected one */
    RP_JWT_AUDIENCE,      /* aud missing or none of the expected ones */
    RP_JWT_CLAIMS,        /* a registered claim has the wrong type or range; exp missing when
                             required; lifetime over the limit */
    RP_JWT_TOO_BIG,       /* longer than RP_JWT_MAX_LEN */
    RP_JWT_NOMEM          /* an allocation failed: the token was neither accepted nor judged */
} rp_jwt_status;

/* Static lower-case name of a status for logs and error descriptions ("malformed", "expired",
 * "not_yet_valid", ...); "unknown" for values outside the enum. Never NULL. */
const char *rp_jwt_status_name(rp_jwt_status s);

/* ---------------------------------------------------------------- keys */

typedef struct rp_jwt_key rp_jwt_key;

/*
 * kid arguments below: NULL or "" for no kid, otherwise 1..RP_JWT_MAX_KID printable ASCII
 * characters (RP_EINVAL otherwise). Every constructor returns 0 and a new key with one reference
 * in *out, or an error with *out untouched: RP_EINVAL (bad argument), RP_EPARSE (input is not a
 * key of the expected form), RP_EUNSUPPORTED (a well-formed key this module refuses: see the
 * file comment), RP_ETOOBIG (input over RP_JWT_MAX_KEY_INPUT), RP_ENOMEM, RP_ECRYPTO.
 */

/* Generates an RSA private key of bits (2048..4096) with public exponent 65537. */
int rp_jwt_key_generate_rsa(int bits, const char *kid, rp_jwt_key **out);

/* Generates an EC P-256 private key (for ES256). */
int rp_jwt_key_generate_p256(const char *kid, rp_jwt_key **out);

/*
 * Loads a private key (PKCS#8 PrivateKeyInfo DER, unencrypted) or a public key
 * (SubjectPublicKeyInfo DER). The whole input must be one DER structure: trailing bytes are
 * RP_EPARSE. Private key bytes the function copied are wiped; der itself is the caller's.
 */
int rp_jwt_key_from_der(const unsigned char *der, size_t n, const char *kid, rp_jwt_key **out);

/*
 * Loads the first PEM block of pem[0..n) (no NUL needed; text before the block is skipped):
 * "PRIVATE KEY" (PKCS#8), "RSA PRIVATE KEY" / "EC PRIVATE KEY" (traditional, unencrypted),
 * "PUBLIC KEY" (SPKI) or "CERTIFICATE" (X.509: its public key; the certificate itself is not
 * checked - validity and trust are the caller's business). Encrypted keys are RP_EUNSUPPORTED.
 */
int rp_jwt_key_from_pem(const char *pem, size_t n, const char *kid, rp_jwt_key **out);

/*
 * The private key as PKCS#8 DER in *der (rp_malloc'ed, *n bytes). The caller wipes it
 * (OPENSSL_cleanse) and rp_free's it. 0, RP_EINVAL (NULL argument, or a public-only key),
 * RP_ENOMEM, RP_ECRYPTO; *der and *n untouched on failure.
 */
int rp_jwt_key_private_der(const rp_jwt_key *k, unsigned char **der, size_t *n);

/* The public key as SubjectPublicKeyInfo DER in *der (rp_malloc'ed, caller rp_free's).
 * 0, RP_EINVAL, RP_ENOMEM, RP_ECRYPTO; *der and *n untouched on failure. */
int rp_jwt_key_public_der(const rp_jwt_key *k, unsigned char **der, size_t *n);

/*
 * The public key as a JWK (RFC 7517/7518) in *out (new reference, caller json_decref's):
 *   RSA:   {"kty":"RSA","use":"sig","kid":..,"n":..,"e":..,"alg":"RS256"}
 *   P-256: {"kty":"EC","use":"sig","kid":..,"crv":"P-256","x":..,"y":..,"alg":"ES256"}
 * n, e, x, y are unpadded base64url of the big-endian values: n and e without leading zero
 * bytes, x and y exactly 32 bytes. "kid" is left out when the key has none. Never contains
 * private members. 0, RP_EINVAL, RP_ENOMEM, RP_ECRYPTO; *out untouched on failure.
 */
int rp_jwt_key_public_jwk(const rp_jwt_key *k, json_t **out);

/* The key's kid; "" when it has none, never NULL. Valid while the key is. */
const char *rp_jwt_key_kid(const rp_jwt_key *k);

/* 1 if the key holds private material (can sign), 0 if public only or k is NULL. */
int rp_jwt_key_is_private(const rp_jwt_key *k);

/* Adds a reference (thread-safe) and returns k; NULL for NULL. */
rp_jwt_key *rp_jwt_key_ref(rp_jwt_key *k);

/* Drops one reference (thread-safe); the last one frees the key. Accepts NULL. */
void rp_jwt_key_free(rp_jwt_key *k);

/*
 * Thumbprints of a DER X.509 certificate, for matching client certificates: x5t (SHA-1,
 * base64url, 27 chars), x5t#S256 (SHA-256, base64url, 43 chars) and the SHA-256 as upper-case
 * hex (64 chars), each NUL-terminated; any output may be NULL to skip it. The digests are over
 * the bytes given, which must parse as exactly one certificate (RP_EPARSE otherwise).
 * 0, RP_EINVAL, RP_EPARSE, RP_ETOOBIG, RP_ECRYPTO; outputs untouched on failure.
 */
int rp_jwt_cert_thumbprints(const unsigned char *der, size_t n, char x5t[28], char x5t_s256[44],
                            char hex_s256[65]);

/* ---------------------------------------------------------------- signing */

/*
 * Signs claims (a JSON object) with k, a private key suited to alg (RS256 / PS256: RSA; ES256:
 * P-256). Header: {"alg":..,"typ":"JWT","kid":..} (kid only if the key has one), followed by the
 * members of extra_header when it is non-NULL (an object, e.g. {"x5t#S256":..} for client
 * assertions); extra_header may not set alg, typ or kid, nor a member the decoder refuses (jwk,
 * jku, x5u, x5c, crit): RP_EINVAL. JSON is serialised compactly in insertion order. PS256 uses
 * MGF1-SHA-256 and a 32-byte salt; ES256 signatures are raw r||s, 64 bytes (RFC 7518 3.4).
 * 0 and *out (rp_malloc'ed NUL-terminated compact JWS; the caller frees it, wiping it first when
 * it is a bearer credential) and *outlen (its strlen); RP_EINVAL, RP_ETOOBIG (the token would be
 * longer than RP_JWT_MAX_LEN), RP_ENOMEM, RP_ECRYPTO; *out and *outlen untouched on failure.
 */
int rp_jwt_sign(const rp_jwt_key *k, rp_jwt_alg alg, const json_t *extra_header,
                const json_t *claims, char **out, size_t *outlen);

/* ---------------------------------------------------------------- verifying */

/* A decoded, not yet trusted token. */
typedef struct rp_jwt rp_jwt;

/*
 * Strictly decodes the compact form tok[0..len) (no NUL needed; the text is copied, so tok may
 * be released afterwards). Checks, in this order, returning the first failure:
 *   len > RP_JWT_MAX_LEN                                            -> RP_JWT_TOO_BIG
 *   not exactly three segments; empty header or payload segment     -> RP_JWT_MALFORMED
 *   header: unpadded base64url (no '=', no whitespace, canonical trailing bits) of a JSON
 *     object (valid UTF-8, no duplicate members, nothing after the value but JSON whitespace,
 *     no \u0000 in strings)                                         -> RP_JWT_MALFORMED
 *   header "alg" missing or not a string                            -> RP_JWT_MALFORMED
 *   header "alg" not one of allowed_algs (case-sensitive: "none", "None", "HS256", "RS512" ...
 *     are never allowed)                                            -> RP_JWT_ALG
 *   "typ" present and not the string "JWT" (any case); any of "jwk", "jku", "x5u", "x5c",
 *     "crit" present; "kid" present and not 1..RP_JWT_MAX_KID printable ASCII characters
 *                                                                   -> RP_JWT_MALFORMED
 *   payload: as the header, a JSON object                           -> RP_JWT_MALFORMED
 *   signature segment empty or not unpadded base64url               -> RP_JWT_MALFORMED
 * RP_JWT_NOMEM on allocation failure. RP_JWT_OK and *out (caller frees with rp_jwt_free), or a
 * status with *out untouched. Claims are not checked here (rp_jwt_check_claims).
 */
rp_jwt_status rp_jwt_decode(const char *tok, size_t len, unsigned allowed_algs, rp_jwt **out);

/* The token's alg (one of the allowed ones it was decoded with). */
rp_jwt_alg rp_jwt_alg_of(const rp_jwt *j);

/* The header's kid, or NULL if absent. Valid until rp_jwt_free. */
const char *rp_jwt_kid(const rp_jwt *j);

/* A header member as a string (e.g. "x5t#S256"), or NULL if absent or not a string. Valid until
 * rp_jwt_free. Untrusted until rp_jwt_verify returns RP_JWT_OK. */
const char *rp_jwt_header_str(const rp_jwt *j, const char *name);

/* The payload object (borrowed, valid until rp_jwt_free; do not modify). Untrusted until
 * rp_jwt_verify and rp_jwt_check_claims both return RP_JWT_OK. */
const json_t *rp_jwt_claims(const rp_jwt *j);

/* A claim as a string, or NULL if absent or not a string. Valid until rp_jwt_free. Strings never
 * contain NUL (the decoder refuses \u0000), so strcmp on them is exact. */
const char *rp_jwt_claim_str(const rp_jwt *j, const char *name);

/*
 * Verifies the signature of j with k (public or private key). The key must suit the token's alg:
 * RS256 / PS256 need an RSA key of at least 2048 bits, ES256 a P-256 key - anything else is
 * RP_JWT_ALG (an RSA key never verifies ES256 and an EC key never RS256; there is no HMAC).
 *   RS256: RSASSA-PKCS1-v1_5 with SHA-256; the signature must be exactly the modulus size.
 *   PS256: RSASSA-PSS, SHA-256, MGF1-SHA-256, salt length exactly 32 (RFC 7518 3.5; what
 *          jsonwebtoken's jwa >= 1.4.1 - hence MSAL for Node - and PyJWT produce). Signatures
 *          with another salt length are RP_JWT_SIGNATURE: raw Node crypto.sign with
 *          RSA_PKCS1_PSS_PADDING and no saltLength uses the maximum (222 for RSA-2048), as did
 *          jwa 1.2.0..1.4.0.
 *   ES256: exactly 64 bytes r||s with r and s in [1, n-1] (r = 0 or s = 0 - "psychic
 *          signatures" - and r or s >= n are refused before OpenSSL sees them).
 *          ECDSA is malleable: (r, n - s) verifies as well, so neither a signature nor a whole
 *          token is an identifier for replay checks (use jti).
 * The kid is not compared with the key's: choosing the key is the caller's job.
 * RP_JWT_OK, RP_JWT_SIGNATURE, RP_JWT_ALG, RP_JWT_KID (k is NULL), RP_JWT_MALFORMED (j is
 * NULL) or RP_JWT_NOMEM (OpenSSL could not allocate a context). Thread-safe for distinct j.
 */
rp_jwt_status rp_jwt_verify(const rp_jwt *j, const rp_jwt_key *k);

/* What rp_jwt_check_claims expects. */
typedef struct rp_jwt_expect {
    const char *issuer;           /* required exact match if non-NULL */
    const char *const *audiences; /* NULL-terminated list; the token's aud (string, or array of
                                     strings: any match) must equal one; NULL = don't check */
    int64_t now;                  /* Unix seconds, 0..RP_JWT_MAX_TIME */
    int skew_s;                   /* 0..RP_JWT_MAX_SKEW_S; clamped into that range */
    int require_exp;              /* exp required (always for access tokens) */
    int64_t max_lifetime_s;       /* if > 0: exp is required and exp - (nbf, else iat, else now)
                                     must not exceed it (client assertions: 600 s or so) */
} rp_jwt_expect;

/*
 * Checks the registered claims of j against e, in this order:
 *   types: exp, nbf, iat, when present, JSON integers in 0..RP_JWT_MAX_TIME (reals are refused
 *     even when integral: every issuer we meet writes integers, and one token has one reading);
 *     iss, sub, jti strings; aud a string or an array of strings; e->now out of range
 *                                                                   -> RP_JWT_CLAIMS
 *   exp missing while e->require_exp or e->max_lifetime_s > 0       -> RP_JWT_CLAIMS
 *   exp <= now - skew                                               -> RP_JWT_EXPIRED
 *   nbf > now + skew, or iat > now + skew                           -> RP_JWT_NOT_YET_VALID
 *   exp - (nbf, else iat, else now) > max_lifetime_s (when > 0)     -> RP_JWT_CLAIMS
 *   e->issuer set and iss missing or different                      -> RP_JWT_ISSUER
 *   e->audiences set and aud missing or matching none of them       -> RP_JWT_AUDIENCE
 * Returns RP_JWT_OK or the first failure (RP_JWT_MALFORMED / RP_JWT_CLAIMS for NULL j / e). Does
 * not look at the signature: call rp_jwt_verify as well.
 */
rp_jwt_status rp_jwt_check_claims(const rp_jwt *j, const rp_jwt_expect *e);

/* Frees a decoded token. Accepts NULL. */
void rp_jwt_free(rp_jwt *j);

#endif
