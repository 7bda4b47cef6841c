/*
 * tls.h - the front door's TLS policy, certificates and session tickets.
 *
 * One rp_tls per process, shared by every loop thread. It owns a "certificate set": one
 * SSL_CTX per certificate, each configured with the same policy (TLS 1.2+ or 1.3 only,
 * forward-secret AEAD suites, no compression, no renegotiation, server preference, ALPN
 * http/1.1). The first certificate is the default; SNI picks another whose names match.
 * rp_tls_reload builds a new set and swaps it in: new handshakes use it, connections that
 * exist keep the context they started with (an SSL holds a reference to its SSL_CTX), so a
 * reload drops nothing.
 *
 * Session tickets are encrypted with keys that rotate every ticket_rotate_s seconds; the two
 * previous keys still decrypt (and trigger a fresh ticket), and a ticket's lifetime is two
 * periods. Keys are random per process (tickets do not survive a restart) and wiped when
 * replaced.
 */
#ifndef RP_NET_TLS_H
#define RP_NET_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

typedef struct rp_tls rp_tls;

typedef struct rp_tls_cert_source {
    const char *cert_file;       /* PEM chain: leaf first */
    const char *key_file;        /* PEM private key (operator certificates) ... */
    const char *sealed_key_file; /* ... or a key sealed under the root key (built-in one) */
} rp_tls_cert_source;

struct rp_rootkey;

typedef struct rp_tls_opts {
    int min_version;  /* 12 or 13 */
    int client_certs; /* 1: ask for a client certificate (optional; any issuer) */
    unsigned ticket_rotate_s;
    const rp_tls_cert_source *certs; /* first = default */
    size_t ncerts;
    const struct rp_rootkey *rootkey; /* needed for sealed keys */
} rp_tls_opts;

/* Builds the policy and loads the certificates. 0, or an RP_E* code with a reason in err. */
int rp_tls_create(const rp_tls_opts *o, rp_tls **out, char *err, size_t errlen);
/* Loads the certificates again and swaps them in; on failure the old set stays in use. */
int rp_tls_reload(rp_tls *t, const rp_tls_opts *o, char *err, size_t errlen);
/* Rotates the session ticket keys (call every ticket_rotate_s seconds). */
void rp_tls_rotate_tickets(rp_tls *t);
/* A new server-side SSL for an accepted connection, using the current default context. */
SSL *rp_tls_ssl_new(rp_tls *t);
void rp_tls_free(rp_tls *t); /* accepts NULL; existing SSLs stay valid */

/* Settings one host name asks of the handshake (App Service's per-app transport settings). */
typedef struct rp_tls_host_policy {
    int min_version; /* 13: TLS 1.3 only; anything else: the process-wide minimum */
    int client_cert; /* 1: ask for a client certificate (any issuer; the host checks it) */
} rp_tls_host_policy;
/* Fills *out for host (the SNI name, lowercased; out is zeroed first). Runs inside handshakes on
 * every loop thread: it must be thread-safe and quick. */
typedef void (*rp_tls_policy_fn)(void *arg, const char *host, rp_tls_host_policy *out);
/* Installs the per-host policy hook (once, before serving; NULL removes it). */
void rp_tls_set_policy(rp_tls *t, rp_tls_policy_fn fn, void *arg);

/* The SNI host name the client sent in this connection's handshake (even when it resumed a
 * session made for another name), or NULL. */
const char *rp_tls_sni(SSL *ssl);
/*
 * Parses the server_name extension body of a ClientHello (RFC 6066 3) and writes the host name,
 * lowercased, into out[cap]. 0, RP_ENOENT (no host_name entry) or RP_EPARSE (malformed, empty,
 * too long, or bytes outside printable ASCII). Exposed for the fuzzer.
 */
int rp_tls_parse_sni(const unsigned char *p, size_t n, char *out, size_t cap);

/* Times the certificate set was swapped (for tests and metrics). */
unsigned long rp_tls_generation(rp_tls *t);

#endif
