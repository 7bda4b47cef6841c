/*
 * tls.c - TLS policy, SNI certificate selection, ticket key rotation and reload.
 *
 * Workload: every accepted connection calls rp_tls_ssl_new and, when the client sends SNI,
 * the servername callback; both take a mutex for a few instructions. Ticket callbacks take
 * a read lock. Reloads and rotations are rare (SIGHUP, once an hour).
 */
#include "net/tls.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"
#include "crypto/pki.h"
#include "crypto/rootkey.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

/* TLS 1.2: ECDHE key exchange and AEAD only; TLS 1.3 suites are all AEAD. */
#define RP_TLS12_CIPHERS                                                                           \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"                                 \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"
#define RP_TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define RP_TLS_GROUPS   "X25519:P-256:P-384"
#define RP_TLS_SIGALGS                                                                             \
    "ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512:ed25519:rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:"      \
    "rsa_pss_rsae_sha512:rsa_pss_pss_sha256:rsa_pss_pss_sha384:rsa_pss_pss_sha512:"                \
    "RSA+SHA256:RSA+SHA384:RSA+SHA512"
#define RP_TICKET_KEYS 3
#define RP_MAX_NAMES   64

typedef struct ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
} ticket_key;

typedef struct cert_entry {
    SSL_CTX *ctx;
    char *names[RP_MAX_NAMES]; /* lowercase DNS names from the SAN, "*.x" wildcards */
    size_t nnames;
} cert_entry;

typedef struct certset {
    cert_entry *certs;
    size_t ncerts;
    int refs; /* guarded by rp_tls.lock */
} certset;

struct rp_tls {
    pthread_mutex_t lock;
    certset *cur;
    unsigned long generation;
    pthread_rwlock_t tlock;
    ticket_key keys[RP_TICKET_KEYS]; /* [0] is current */
    int nkeys;
    unsigned ticket_lifetime;
    rp_tls_policy_fn policy; /* per-host settings (sites); set before serving */
    void *policy_arg;
};

static int ex_index = -1;  /* SSL_CTX -> rp_tls */
static int sni_index = -1; /* SSL -> the name this ClientHello asked for (OPENSSL_strdup) */
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;

static void free_sni(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    OPENSSL_free(ptr);
}

static void ex_init(void)
{
    ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    sni_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_sni);
}

static void set_err(char *err, size_t errlen, const char *what, const char *detail)
{
    unsigned long e = ERR_get_error();
    char ebuf[160] = "";

    if (e != 0)
        ERR_error_string_n(e, ebuf, sizeof(ebuf));
    ERR_clear_error();
    snprintf(err, errlen, "%s%s%s%s%s", what, detail ? " " : "", detail ? detail : "",
             ebuf[0] ? ": " : "", ebuf);
}

static void certset_free(certset *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->ncerts; i++) {
        SSL_CTX_free(s->certs[i].ctx);
        for (size_t j = 0; j < s->certs[i].nnames; j++)
            rp_free(s->certs[i].names[j]);
    }
    rp_free(s->certs);
    rp_free(s);
}

static void certset_release(rp_tls *t, certset *s)
{
    int last;

    pthread_mutex_lock(&t->lock);
    last = --s->refs == 0;
    pthread_mutex_unlock(&t->lock);
    if (last)
        certset_free(s);
}

static certset *certset_acquire(rp_tls *t)
{
    certset *s;

    pthread_mutex_lock(&t->lock);
    s = t->cur;
    s->refs++;
    pthread_mutex_unlock(&t->lock);
    return s;
}

static int name_matches(const char *pattern, const char *host)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        /* A wildcard covers exactly one label. */
        const char *dot = strchr(host, '.');
        return dot != NULL && dot != host && strcasecmp(dot + 1, pattern + 2) == 0;
    }
    return strcasecmp(pattern, host) == 0;
}

static void host_policy(SSL *ssl, const char *host, rp_tls_host_policy *out)
{
    rp_tls *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index);

    memset(out, 0, sizeof(*out));
    if (t != NULL && t->policy != NULL && host != NULL)
        t->policy(t->policy_arg, host, out);
}

static int accept_any_cert(int preverify_ok, X509_STORE_CTX *x)
{
    (void)preverify_ok;
    (void)x;
    return 1;
}

static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    rp_tls *t = arg;
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    certset *s;
    int found = 0;

    (void)alert;

    if (host == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    s = certset_acquire(t);
    /* Exact names win over wildcards, the first certificate wins ties. */
    for (int pass = 0; pass < 2 && !found; pass++) {
        for (size_t i = 0; i < s->ncerts && !found; i++) {
            for (size_t j = 0; j < s->certs[i].nnames; j++) {
                const char *n = s->certs[i].names[j];
                if ((pass == 0) == (n[0] == '*'))
                    continue;
                if (name_matches(n, host)) {
                    if (SSL_get_SSL_CTX(ssl) != s->certs[i].ctx)
                        SSL_set_SSL_CTX(ssl, s->certs[i].ctx);
                    found = 1;
                    break;
                }
            }
        }
    }
    certset_release(t, s);
    /* After any context switch (which resets the verify mode): a host that wants client
     * certificates asks for one; the host checks it against its own trusted CAs per request. */
    {
        rp_tls_host_policy pol;
        host_policy(ssl, rp_tls_sni(ssl), &pol);
        if (pol.client_cert)
            SSL_set_verify(ssl, SSL_VERIFY_PEER, accept_any_cert);
    }
    /* An unknown name still gets the default certificate: the client decides whether to trust. */
    return SSL_TLSEXT_ERR_OK;
}

int rp_tls_parse_sni(const unsigned char *p, size_t n, char *out, size_t cap)
{
    size_t list;

    /* ServerNameList: u16 length, then entries of u8 type, u16 length, name (RFC 6066 3). */
    if (n < 2)
        return RP_EPARSE;
    list = (size_t)p[0] << 8 | p[1];
    if (list != n - 2)
        return RP_EPARSE;
    p += 2;
    n -= 2;
    while (n > 0) {
        size_t len;
        unsigned type;
        if (n < 3)
            return RP_EPARSE;
        type = p[0];
        len = (size_t)p[1] << 8 | p[2];
        if (len > n - 3)
            return RP_EPARSE;
        if (type == TLSEXT_NAMETYPE_host_name) {
            if (len == 0 || len >= cap)
                return RP_EPARSE;
            for (size_t i = 0; i < len; i++) {
                unsigned char ch = p[3 + i];
                if (ch <= 0x20 || ch >= 0x7f)
                    return RP_EPARSE;
                out[i] = rp_lower((char)ch);
            }
            out[len] = '\0';
            return 0;
        }
        p += 3 + len;
        n -= 3 + len;
    }
    return RP_ENOENT;
}

/*
 * Records the name this ClientHello asks for. After a TLS 1.2 resumption SSL_get_servername
 * reports the name stored in the old session, which must not decide which host this
 * connection may reach; and a session made for one name must not be resumed for another
 * (RFC 6066 3), which ticket_decrypt_cb enforces with this value.
 */
static int client_hello_cb(SSL *ssl, int *alert, void *arg)
{
    const unsigned char *p;
    size_t n;
    char name[256];
    char *copy;
    rp_tls_host_policy pol;

    (void)arg;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &n) != 1)
        return SSL_CLIENT_HELLO_SUCCESS;
    if (rp_tls_parse_sni(p, n, name, sizeof(name)) != 0) {
        *alert = SSL_AD_DECODE_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    copy = OPENSSL_strdup(name);
    /* A HelloRetryRequest brings a second ClientHello: replace, do not leak, the first name. */
    OPENSSL_free(SSL_get_ex_data(ssl, sni_index));
    SSL_set_ex_data(ssl, sni_index, NULL);
    if (copy == NULL || SSL_set_ex_data(ssl, sni_index, copy) != 1) {
        OPENSSL_free(copy);
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    /* The version is chosen after this callback: a host that wants TLS 1.3 only gets it here. */
    host_policy(ssl, name, &pol);
    if (pol.min_version == 13 && SSL_set_min_proto_version(ssl, TLS1_3_VERSION) != 1) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

static SSL_TICKET_RETURN ticket_decrypt_cb(SSL *ssl, SSL_SESSION *ss, const unsigned char *keyname,
                                           size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
    const char *now, *then;

    (void)keyname;
    (void)keyname_len;
    (void)arg;
    if (status == SSL_TICKET_FATAL_ERR_MALLOC || status == SSL_TICKET_FATAL_ERR_OTHER)
        return SSL_TICKET_RETURN_ABORT;
    if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
        return SSL_TICKET_RETURN_IGNORE_RENEW; /* none, empty or undecryptable: full handshake */
    /* ss is only set once a ticket decrypted */
    now = SSL_get_ex_data(ssl, sni_index);
    then = SSL_SESSION_get0_hostname(ss);
    if ((now == NULL) != (then == NULL) || (now != NULL && strcasecmp(now, then) != 0))
        return SSL_TICKET_RETURN_IGNORE_RENEW; /* full handshake for the new name */
    return status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_USE_RENEW : SSL_TICKET_RETURN_USE;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    /* http/1.1 only for now; h2 slots in here when the HTTP/2 codec lands. */
    static const unsigned char protos[] = "\x08http/1.1";
    unsigned char *sel = NULL;

    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&sel, outlen, protos, sizeof(protos) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    rp_tls *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index);
    OSSL_PARAM params[2];
    int rc = 0, idx = -1;

    if (t == NULL)
        return -1;
    pthread_rwlock_rdlock(&t->tlock);
    if (enc) {
        idx = 0;
        memcpy(key_name, t->keys[0].name, 16);
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1)
            goto out;
    } else {
        for (int i = 0; i < t->nkeys; i++) {
            if (CRYPTO_memcmp(key_name, t->keys[i].name, 16) == 0) {
                idx = i;
                break;
            }
        }
        if (idx < 0) {
            rc = 0; /* unknown key: full handshake */
            goto out;
        }
    }
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, t->keys[idx].hmac, 32);
    params[1] = OSSL_PARAM_construct_end();
    {
        char digest[] = "SHA256";
        OSSL_PARAM dp[3];
        dp[0] = params[0];
        dp[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
        dp[2] = OSSL_PARAM_construct_end();
        if (EVP_MAC_CTX_set_params(hctx, dp) != 1) {
            rc = -1;
            goto out;
        }
    }
    /* AES-256-CBC is what OpenSSL's ticket format expects; the HMAC above authenticates it. */
    if ((enc ? EVP_EncryptInit_ex : EVP_DecryptInit_ex)(cctx, EVP_aes_256_cbc(), NULL,
                                                        t->keys[idx].aes, iv) != 1) {
        rc = -1;
        goto out;
    }
    /* 2 = valid, but send a fresh ticket: when the key is old, and always for TLS 1.3, whose
     * clients (browsers, wrk) use each ticket once and would otherwise resume only every
     * other connection. */
    if (enc)
        rc = 1;
    else
        rc = idx == 0 && SSL_version(ssl) < TLS1_3_VERSION ? 1 : 2;
out:
    pthread_rwlock_unlock(&t->tlock);
    return rc;
}

static int collect_names(cert_entry *e, X509 *x)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int n = sans ? sk_GENERAL_NAME_num(sans) : 0;

    for (int i = 0; i < n && e->nnames < RP_MAX_NAMES; i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS) {
            const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
            int len = ASN1_STRING_length(g->d.dNSName);
            char *s = rp_strndup((const char *)d, (size_t)len);
            if (s == NULL) {
                GENERAL_NAMES_free(sans);
                return RP_ENOMEM;
            }
            for (char *p = s; *p; p++)
                *p = rp_lower(*p);
            e->names[e->nnames++] = s;
        }
    }
    GENERAL_NAMES_free(sans);
    return 0;
}

/* Client certificates are accepted whoever issued them: what makes one count is that its
 * thumbprint is registered to a principal (iam/authn.c), and the handshake has proved the
 * client holds its key. An unregistered certificate authenticates nobody. */
static SSL_CTX *make_ctx(rp_tls *t, int min_version, int client_certs, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    uint64_t opts =
        SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE;
    static const unsigned char sid_ctx[] = "rampart";

    if (ctx == NULL) {
        set_err(err, errlen, "tls: cannot create context", NULL);
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION) !=
            1 ||
        SSL_CTX_set_cipher_list(ctx, RP_TLS12_CIPHERS) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, RP_TLS13_SUITES) != 1 ||
        SSL_CTX_set1_groups_list(ctx, RP_TLS_GROUPS) != 1 ||
        SSL_CTX_set1_sigalgs_list(ctx, RP_TLS_SIGALGS) != 1 ||
        SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
        set_err(err, errlen, "tls: cannot apply the policy", NULL);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, opts);
    /* Idle connections give their 2 x 16 KiB record buffers back: the per-connection budget. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Stateless resumption only: tickets under rotating keys, no server-side cache. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* Read whole records in one read(2) (not header then body); conn.c checks SSL_has_pending
     * before it waits on the socket again. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_num_tickets(ctx, 1);
    /* A ticket stays decryptable for two more rotations after its key stops being current. */
    SSL_CTX_set_timeout(ctx, (long)t->ticket_lifetime * 2);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
    SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, NULL);
    SSL_CTX_set_session_ticket_cb(ctx, NULL, ticket_decrypt_cb, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, t);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    SSL_CTX_set_ex_data(ctx, ex_index, t);
    if (client_certs)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_cert);
    return ctx;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int load_one(rp_tls *t, const rp_tls_opts *o, const rp_tls_cert_source *src, cert_entry *e,
                    char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;
    int rc = RP_EINVAL;

    e->ctx = make_ctx(t, o->min_version, o->client_certs, err, errlen);
    if (e->ctx == NULL)
        return RP_ECRYPTO;
    if (SSL_CTX_use_certificate_chain_file(e->ctx, src->cert_file) != 1) {
        set_err(err, errlen, "tls: cannot load certificate", src->cert_file);
        goto out;
    }
    if (src->sealed_key_file != NULL) {
        if (o->rootkey == NULL ||
            rp_pki_key_unseal(o->rootkey, "server", src->sealed_key_file, &key) != 0) {
            set_err(err, errlen, "tls: cannot unseal private key", src->sealed_key_file);
            goto out;
        }
    } else {
        FILE *f = fopen(src->key_file, "r");
        if (f == NULL) {
            /* Read as the service user (rampart serve drops root before it loads anything). */
            snprintf(err, errlen, "tls: cannot open private key %s: %s (read as uid %u)",
                     src->key_file, strerror(errno), (unsigned)geteuid());
            goto out;
        }
        /* No passphrase callback prompt: an encrypted key must fail, not block on a tty. */
        key = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
        fclose(f);
        if (key == NULL) {
            set_err(err, errlen, "tls: cannot read private key", src->key_file);
            goto out;
        }
    }
    if (SSL_CTX_use_PrivateKey(e->ctx, key) != 1 || SSL_CTX_check_private_key(e->ctx) != 1) {
        set_err(err, errlen, "tls: private key does not match certificate", src->cert_file);
        goto out;
    }
    rc = collect_names(e, SSL_CTX_get0_certificate(e->ctx));
    if (rc != 0)
        snprintf(err, errlen, "tls: out of memory");
out:
    EVP_PKEY_free(key);
    return rc;
}

static int certset_load(rp_tls *t, const rp_tls_opts *o, certset **out, char *err, size_t errlen)
{
    certset *s;
    int rc;

    if (o->ncerts == 0) {
        snprintf(err, errlen, "tls: no certificate configured");
        return RP_EINVAL;
    }
    s = rp_calloc(1, sizeof(*s));
    if (s == NULL)
        return RP_ENOMEM;
    s->certs = rp_calloc(o->ncerts, sizeof(*s->certs));
    if (s->certs == NULL) {
        rp_free(s);
        return RP_ENOMEM;
    }
    s->ncerts = o->ncerts;
    s->refs = 1;
    for (size_t i = 0; i < o->ncerts; i++) {
        rc = load_one(t, o, &o->certs[i], &s->certs[i], err, errlen);
        if (rc != 0) {
            certset_free(s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

static int new_ticket_key(ticket_key *k)
{
    if (RAND_bytes((unsigned char *)k, sizeof(*k)) != 1)
        return RP_ECRYPTO;
    return 0;
}

int rp_tls_create(const rp_tls_opts *o, rp_tls **out, char *err, size_t errlen)
{
    rp_tls *t;
    int rc;

    pthread_once(&ex_once, ex_init);
    if (ex_index < 0 || sni_index < 0) {
        snprintf(err, errlen, "tls: cannot allocate ex_data index");
        return RP_ECRYPTO;
    }
    t = rp_calloc(1, sizeof(*t));
    if (t == NULL)
        return RP_ENOMEM;
    pthread_mutex_init(&t->lock, NULL);
    pthread_rwlock_init(&t->tlock, NULL);
    t->ticket_lifetime = o->ticket_rotate_s ? o->ticket_rotate_s : 3600;
    if (new_ticket_key(&t->keys[0]) != 0) {
        rp_tls_free(t);
        snprintf(err, errlen, "tls: no randomness for ticket keys");
        return RP_ECRYPTO;
    }
    t->nkeys = 1;
    rc = certset_load(t, o, &t->cur, err, errlen);
    if (rc != 0) {
        rp_tls_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int rp_tls_reload(rp_tls *t, const rp_tls_opts *o, char *err, size_t errlen)
{
    certset *s, *old;
    int rc = certset_load(t, o, &s, err, errlen);

    if (rc != 0)
        return rc;
    pthread_mutex_lock(&t->lock);
    old = t->cur;
    t->cur = s;
    t->generation++;
    pthread_mutex_unlock(&t->lock);
    certset_release(t, old);
    return 0;
}

void rp_tls_rotate_tickets(rp_tls *t)
{
    ticket_key k;

    if (new_ticket_key(&k) != 0)
        return; /* keep the old key rather than run without one */
    pthread_rwlock_wrlock(&t->tlock);
    OPENSSL_cleanse(&t->keys[RP_TICKET_KEYS - 1], sizeof(ticket_key));
    memmove(&t->keys[1], &t->keys[0], sizeof(ticket_key) * (RP_TICKET_KEYS - 1));
    t->keys[0] = k;
    if (t->nkeys < RP_TICKET_KEYS)
        t->nkeys++;
    pthread_rwlock_unlock(&t->tlock);
    OPENSSL_cleanse(&k, sizeof(k));
}

SSL *rp_tls_ssl_new(rp_tls *t)
{
    SSL *ssl;

    pthread_mutex_lock(&t->lock);
    ssl = SSL_new(t->cur->certs[0].ctx);
    pthread_mutex_unlock(&t->lock);
    return ssl;
}

void rp_tls_free(rp_tls *t)
{
    if (t == NULL)
        return;
    if (t->cur != NULL)
        certset_release(t, t->cur);
    OPENSSL_cleanse(t->keys, sizeof(t->keys));
    pthread_rwlock_destroy(&t->tlock);
    pthread_mutex_destroy(&t->lock);
    rp_free(t);
}

void rp_tls_set_policy(rp_tls *t, rp_tls_policy_fn fn, void *arg)
{
    t->policy = fn;
    t->policy_arg = arg;
}

const char *rp_tls_sni(SSL *ssl)
{
    return SSL_get_ex_data(ssl, sni_index);
}

unsigned long rp_tls_generation(rp_tls *t)
{
    unsigned long g;

    pthread_mutex_lock(&t->lock);
    g = t->generation;
    pthread_mutex_unlock(&t->lock);
    return g;
}
