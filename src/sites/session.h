/*
 * session.h - the sealed cookies of built-in authentication: the sign-in state a browser carries
 * to the login page and back, and the session it gets afterwards (docs/sites.md "Interactive
 * sign-in").
 *
 * A cookie value is base64url(AES-256-GCM envelope of a small JSON object). The key is random,
 * made when the server starts and held only in memory (wiped when the box is freed): nothing
 * about sessions is ever written to disk, and a restart ends every session (browsers sign in
 * again, which takes one redirect while the user's sign-in at the token service is fresh). The
 * AAD names the purpose and the app, so a value sealed for one app or purpose never opens as
 * another.
 *
 * Sign-out revokes a session id until the session would have expired (once: revoking an id that
 * is listed already adds nothing, so replaying one cookie cannot fill the list). The list is
 * bounded: when it is full, every session issued so far is revoked at once rather than one
 * revocation forgotten. Sessions carry the box's generation when they are issued; filling the
 * list moves to the next generation, and every session of an older one is revoked.
 *
 * Thread-safe: seal and open are stateless; revocation takes a mutex.
 */
#ifndef RP_SITES_SESSION_H
#define RP_SITES_SESSION_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define RP_SESSION_VALUE_MAX   3072 /* bytes of a sealed cookie value, NUL included */
#define RP_SESSION_REVOKED_MAX 65536
#define RP_SESSION_ID_LEN      22 /* base64url of 16 random bytes */

typedef struct rp_session_box rp_session_box;

/* A box with a fresh random key. 0, RP_ENOMEM or RP_ECRYPTO (no randomness). */
int rp_session_box_new(rp_session_box **out);
/* Wipes the key. Accepts NULL. */
void rp_session_box_free(rp_session_box *b);

/*
 * Seals the JSON object payload for app (a host label) and purpose ("session", "login") into
 * out[cap] as a NUL-terminated cookie value. 0; RP_ETOOBIG when it does not fit (or cap >
 * RP_SESSION_VALUE_MAX is not enough); RP_ENOMEM; RP_ECRYPTO.
 */
int rp_session_seal(const rp_session_box *b, const char *app, const char *purpose,
                    const json_t *payload, char *out, size_t cap);

/*
 * Opens a cookie value sealed by rp_session_seal with the same box, app and purpose. 0 and
 * *payload (a JSON object, the caller's reference); RP_EPARSE (not base64url, not an envelope,
 * not a JSON object, too long), RP_ECRYPTO (another key, app or purpose, or altered), RP_ENOMEM.
 */
int rp_session_open(const rp_session_box *b, const char *app, const char *purpose, const char *v,
                    size_t n, json_t **payload);

/* A fresh session id (RP_SESSION_ID_LEN characters + NUL). 0 or RP_ECRYPTO. */
int rp_session_id(char out[RP_SESSION_ID_LEN + 1]);

/* The generation a session issued now carries. */
uint64_t rp_session_generation(rp_session_box *b);

/*
 * Revokes session id sid of generation gen until exp. 0 or RP_ENOMEM (then nothing issued up to
 * now is valid any more either: see the file comment).
 */
int rp_session_revoke(rp_session_box *b, const char *sid, uint64_t gen, int64_t exp, int64_t now);

/* 1 when the session sid of generation gen is revoked (by id, or by a newer generation). */
int rp_session_revoked(rp_session_box *b, const char *sid, uint64_t gen, int64_t now);

#endif
