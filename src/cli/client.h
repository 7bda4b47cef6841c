/*
 * client.h - what client commands (`rampart status`, `rampart user ...`) need to reach a server:
 * its URL, the CA file to verify it, and an API token; HTTPS request helpers built on libcurl
 * (JSON for the management API, a form POST for the token service); and the writer of the
 * client file that `rampart login` / `rampart logout` use.
 *
 * Settings come from command-line flags, the environment (RAMPART_URL, RAMPART_CA,
 * RAMPART_TOKEN) and a client file (JSON: optional "url", "ca", "token", "expiresAt"), in that
 * order of precedence. The token is a secret: it is wiped on free, never appears in a message,
 * and a client file holding one must not be accessible by group or others (the ssh rule). A
 * file token whose "expiresAt" (Unix seconds) has passed is not used: token_expired says so,
 * and commands tell the operator to log in again.
 *
 * Only https:// URLs are accepted: the server's plain-HTTP listener only redirects, and a token
 * must never travel in clear. Redirects are not followed, so the token goes only where the
 * operator pointed it.
 *
 * The struct is public so callers can embed it; fields are read-only for them except
 * json_output, which the caller sets from its own --output flag.
 */
#ifndef RP_CLI_CLIENT_H
#define RP_CLI_CLIENT_H

#include "base/buf.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define RP_CLIENT_FILE_MAX          (64 * 1024)   /* a larger client file is refused */
#define RP_CLIENT_TOKEN_MAX         4096          /* bytes in a token */
#define RP_CLIENT_BODY_MAX          (1024 * 1024) /* response bodies larger than this are refused */
#define RP_CLIENT_TIMEOUT_MS        10000         /* whole-request deadline */
#define RP_CLIENT_UPLOAD_TIMEOUT_MS (30 * 60 * 1000) /* an upload's whole deadline */

typedef struct rp_client_settings {
    char *url;     /* "https://host[:port][/base]" without a trailing '/'; NULL = not configured */
    char *ca_file; /* PEM bundle to verify the server; NULL = the system store */
    char *token;   /* API token or NULL; wiped by rp_client_settings_free */
    int64_t token_expires_at; /* Unix seconds from the client file's "expiresAt"; 0 = unknown */
    int token_expired;        /* 1: the file's token had expired and was dropped (token is NULL) */
    int json_output;          /* set by the caller; load leaves it 0 */
} rp_client_settings;

/*
 * Fills s (previous contents are overwritten, not freed) from, highest precedence first:
 * flag_url/flag_ca/flag_token (NULL = flag not given), the RAMPART_URL/RAMPART_CA/RAMPART_TOKEN
 * entries of envp (a NULL-terminated "NAME=value" array; NULL = empty; empty values count as
 * unset), and the client file. file NULL means $HOME/.config/rampart/client.json ($HOME taken
 * from envp), skipped silently if it does not exist; an explicitly named file that does not
 * exist is RP_ENOENT. A token taken from the file whose "expiresAt" is not in the future is
 * dropped (token NULL, token_expired 1); flag and environment tokens carry no expiry.
 * Returns 0; RP_EPERM if the file holds a token and is accessible by group or others;
 * RP_EINVAL for a bad value (non-https URL, unreadable CA file, token with control bytes...);
 * RP_EPARSE for bad JSON or unknown members; RP_EIO; RP_ETOOBIG; RP_ENOMEM. On failure s is
 * left empty (nothing to free) and err[errlen] names the source and the problem, never the
 * token.
 */
int rp_client_settings_load(rp_client_settings *s, const char *file, char **envp,
                            const char *flag_url, const char *flag_ca, const char *flag_token,
                            char *err, size_t errlen);

/* Frees the strings after wiping the token, then zeroes s. Accepts NULL. */
void rp_client_settings_free(rp_client_settings *s);

/*
 * Sends METHOD s->url + path (path must start with '/', already percent-encoded) with libcurl:
 * TLS 1.2 minimum, peer and host name verified against s->ca_file or the system store,
 * "Authorization: Bearer" when s->token is set, "Accept: application/json", redirects not
 * followed, RP_CLIENT_TIMEOUT_MS overall. method is an upper-case token ("GET", "POST",
 * "DELETE"...). body, when not NULL, is sent compact as "Content-Type: application/json"
 * (its serialised copy is wiped after the request); a POST without body sends an empty one.
 * The answer's body is appended to out, which the caller has initialised (rp_buf_init) and
 * frees; at most RP_CLIENT_BODY_MAX bytes (or out->max if smaller) are accepted.
 * Returns 0 and the HTTP status in *status (any status, 4xx/5xx included: the caller judges);
 * RP_EINVAL (no URL configured, bad path or method); RP_EIO (cannot connect, connection broke);
 * RP_ECRYPTO (TLS handshake or verification failed); RP_ETIMEDOUT; RP_ETOOBIG (body too big);
 * RP_ENOMEM. err[errlen] then says what failed and where (without the query string), never
 * with the token.
 * libcurl is initialised on first use (curl_global_init), so call this first from one thread.
 */
int rp_client_request(const rp_client_settings *s, const char *method, const char *path,
                      const json_t *body, long *status, rp_buf *out, char *err, size_t errlen);

/* rp_client_request(s, "GET", path, NULL, ...). */
int rp_client_get(const rp_client_settings *s, const char *path, long *status, rp_buf *out,
                  char *err, size_t errlen);

/*
 * POSTs an application/x-www-form-urlencoded body to url, a full https:// URL (the token
 * service lives on another host than the management API), with the TLS settings of s
 * (ca_file) but never its token: the form carries the credentials. form is a NULL-terminated
 * list of name, value pairs (every value non-NULL; names and values are percent-encoded here);
 * the encoded body is wiped after the request, since it holds a client secret. Answers and
 * errors as rp_client_request; RP_EINVAL also for a URL that is not https://.
 */
int rp_client_post_form(const rp_client_settings *s, const char *url, const char *const *form,
                        long *status, rp_buf *out, char *err, size_t errlen);

/* Upload progress: bytes sent so far of total. */
typedef void (*rp_client_progress_fn)(uint64_t sent, uint64_t total, void *arg);

/*
 * POSTs len bytes read from fd (from its current offset) to url, a full https:// URL on one of
 * the platform's host names (https://NAME.scm.D/api/zipdeploy), as content_type, with the
 * token and TLS rules of rp_client_request. The connection goes to the host and port of s->url
 * whatever host url names (TLS still verifies url's host name), so the platform's host names
 * need no DNS entry on the client. progress (may be NULL) is called as the body goes out.
 * Deadline RP_CLIENT_UPLOAD_TIMEOUT_MS, and a transfer stalled for two minutes fails. Answers
 * and errors as rp_client_request.
 */
int rp_client_upload(const rp_client_settings *s, const char *url, int fd, uint64_t len,
                     const char *content_type, rp_client_progress_fn progress, void *arg,
                     long *status, rp_buf *out, char *err, size_t errlen);

/*
 * Rewrites the client file (file NULL = $HOME/.config/rampart/client.json, HOME from envp;
 * its missing directories are created 0700) atomically with mode 0600. url and ca replace the
 * file's values when not NULL and are kept otherwise; token non-NULL stores token and
 * expires_at (Unix seconds, 0 = none), token NULL removes both (logout). An existing file must
 * parse as a client file (its mode is not checked: it is being replaced by a 0600 one).
 * Returns 0; RP_EINVAL (no HOME, bad token); RP_EPARSE (the existing file is not a client
 * file: it is left alone); RP_EIO; RP_ENOMEM. err names the file, never the token.
 */
int rp_client_file_store(const char *file, char **envp, const char *url, const char *ca,
                         const char *token, int64_t expires_at, char *err, size_t errlen);

/* Writes the client file path that rp_client_file_store(file, envp, ...) would use into out. */
int rp_client_file_path(const char *file, char **envp, char *out, size_t cap);

#endif
