/*
 * server.c - start-up, loop threads, signals, reload and graceful drain.
 *
 * Start-up order: data directory, root key, store, credentials, TLS, router, logs, then the
 * listeners (all bound before the ready line), then the loop threads. Anything that fails
 * before the ready line aborts start-up with a message naming what and why.
 *
 * Drain (SIGTERM/SIGINT): every worker closes its listeners at once (the kernel refuses new
 * connections), closes idle connections, lets busy ones finish their current response with
 * "Connection: close", and exits when it has none left. After limits.drain_timeout_ms the
 * stragglers are closed. The process exits 0.
 */
#include "server/server.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/buf.h"
#include "base/file.h"
#include "base/str.h"
#include "crypto/keyring.h"
#include "crypto/rootkey.h"
#include "http/conn.h"
#include "http/router.h"
#include "http/static.h"
#include "net/listen.h"
#include "net/tls.h"
#include "server/admin.h"
#include "server/datadir.h"
#include "iam/iam.h"
#include "server/keysapi.h"
#include "server/unseal.h"
#include "store/store.h"
#include "iam/oidc.h"
#include "sandbox/helper.h"
#include "sites/sites.h"
#include "vault/vault.h"

#include <openssl/crypto.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define RP_LISTEN_BACKLOG 4096
/* Few accepts per wake-up: new handshakes must not starve the connections already open
 * (64 doubled p99 latency under reconnect load; nginx accepts one). */
#define RP_ACCEPT_BATCH 4
#define RP_PATH_MAX     4096

enum { CMD_NONE = 0, CMD_DRAIN = 1, CMD_STOP = 2 };

typedef struct server server;

typedef struct listener {
    uv_poll_t poll;
    int fd;
    rp_conn_kind kind;
    int active;
    int open;
    struct worker *w;
} listener;

typedef struct worker {
    server *srv;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t cmd_async;
    uv_timer_t backoff; /* accept paused after EMFILE */
    listener ls[3];
    size_t nls;
    rp_http_ctx *http;
    size_t max_conns;
    atomic_int cmd;
    int exited; /* loop closed: no more async sends (guarded by server.exit_lock) */
    int draining;
    int closing;
    int started;
} worker;

struct server {
    const rp_config *cfg;
    char domain[256];
    char paths[5][RP_PATH_MAX];
    const rp_rootkey *rk; /* the keyring's system key (borrowed from kr) */
    rp_keyring *kr;
    rp_store *store;
    rp_iam *iam;
    rp_vault *vault;
    rp_sites *sites;
    rp_oidc *oidc;              /* external OpenID issuers' keys, for Easy Auth */
    rp_helper *helper;          /* the privileged helper (sandbox/helper.h): outlives sites */
    char data_abs[RP_PATH_MAX]; /* the data directory, absolute (the helper's paths are) */
    rp_keysapi keysapi;
    rp_router *local_router;
    uv_timer_t key_timer;
    rp_tls *tls;
    rp_tls_cert_source *srcs;
    size_t nsrcs;
    rp_tls_opts tls_opts;
    rp_router *router;
    rp_static *stat;
    worker *workers;
    int nworkers;
    int https_port, http_port, identity_port;
    uv_loop_t loop;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t ticket_timer, drain_timer;
    uv_async_t exited_async;
    atomic_int alive;
    uv_mutex_t exit_lock;
    int exit_lock_init;
    int draining;
    int access_fd, error_fd;
};

/* ---------------------------------------------------------------- logging */

static int open_log(const char *spec, int *fd, char *err, size_t errlen)
{
    if (strcmp(spec, "off") == 0) {
        *fd = -1;
    } else if (strcmp(spec, "stderr") == 0) {
        *fd = 2;
    } else if (strcmp(spec, "stdout") == 0) {
        *fd = 1;
    } else {
        *fd = open(spec, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (*fd < 0) {
            snprintf(err, errlen, "log: cannot open %s: %s", spec, strerror(errno));
            return RP_EIO;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- worker */

static void listener_close_cb(uv_handle_t *h)
{
    listener *l = h->data;

    close(l->fd);
    l->fd = -1;
}

static void handle_close_noop(uv_handle_t *h)
{
    (void)h;
}

static void worker_shutdown(worker *w)
{
    if (w->closing)
        return;
    w->closing = 1;
    for (size_t i = 0; i < w->nls; i++) {
        if (w->ls[i].open) {
            w->ls[i].open = 0;
            uv_close((uv_handle_t *)&w->ls[i].poll, listener_close_cb);
        }
    }
    uv_close((uv_handle_t *)&w->cmd_async, handle_close_noop);
    uv_close((uv_handle_t *)&w->backoff, handle_close_noop);
    /* Its completion ports keep the loop alive until closed (a no-op off the loop thread). */
    rp_sites_loop_stop(w->srv->sites);
    rp_vault_loop_stop(w->srv->vault);
    rp_iam_loop_stop(w->srv->iam);
}

static void on_accept(uv_poll_t *p, int status, int events);

static void set_accepting(worker *w, int on)
{
    for (size_t i = 0; i < w->nls; i++) {
        listener *l = &w->ls[i];
        if (!l->open || l->active == on)
            continue;
        l->active = on;
        if (on)
            uv_poll_start(&l->poll, UV_READABLE, on_accept);
        else
            uv_poll_stop(&l->poll);
    }
}

static void on_backoff(uv_timer_t *t)
{
    worker *w = t->data;

    if (!w->draining && rp_http_ctx_conns(w->http) < w->max_conns)
        set_accepting(w, 1);
}

static void on_accept(uv_poll_t *p, int status, int events)
{
    listener *l = p->data;
    worker *w = l->w;

    (void)events;
    if (status < 0 || w->draining)
        return;
    for (int i = 0; i < RP_ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int one = 1, fd;

        if (rp_http_ctx_conns(w->http) >= w->max_conns) {
            /* Back-pressure: leave further connections in the kernel's backlog. */
            set_accepting(w, 0);
            return;
        }
        fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                rp_log_msg(RP_LOG_WARN, "accept.paused", "out of descriptors or memory");
                set_accepting(w, 0);
                uv_timer_start(&w->backoff, on_backoff, 100, 0);
            }
            return; /* EAGAIN, or a connection that died in the backlog */
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        rp_http_conn_start(w->http, fd, &peer, l->kind);
    }
}

static void on_conn_closed(rp_http_ctx *ctx, void *arg)
{
    worker *w = arg;

    if (w->draining) {
        if (rp_http_ctx_conns(ctx) == 0)
            worker_shutdown(w);
        return;
    }
    if (rp_http_ctx_conns(ctx) < w->max_conns)
        set_accepting(w, 1);
}

static void stop_listening(worker *w)
{
    for (size_t i = 0; i < w->nls; i++) {
        if (w->ls[i].open) {
            w->ls[i].open = 0;
            w->ls[i].active = 0;
            uv_close((uv_handle_t *)&w->ls[i].poll, listener_close_cb);
        }
    }
}

static void on_cmd(uv_async_t *a)
{
    worker *w = a->data;
    int cmd = atomic_load(&w->cmd);

    if (cmd == CMD_DRAIN && !w->draining) {
        w->draining = 1;
        stop_listening(w);
        rp_http_ctx_drain(w->http);
        if (rp_http_ctx_conns(w->http) == 0)
            worker_shutdown(w);
    } else if (cmd == CMD_STOP) {
        w->draining = 1;
        stop_listening(w);
        rp_http_ctx_close_all(w->http);
        worker_shutdown(w);
    }
}

static void worker_main(void *arg)
{
    worker *w = arg;
    server *s = w->srv;
    int rc = rp_iam_loop_start(s->iam, &w->loop);

    if (rc != 0)
        rp_log_err("worker.start", "identity ports not available; changes will fail", rc);
    rc = rp_vault_loop_start(s->vault, &w->loop);
    if (rc != 0)
        rp_log_err("worker.start", "vault ports not available; vault requests will fail", rc);
    rc = rp_sites_loop_start(s->sites, &w->loop);
    if (rc != 0)
        rp_log_err("worker.start", "sites ports not available; deploys will fail", rc);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* Everything is closed; let close callbacks finish, then release. */
    uv_run(&w->loop, UV_RUN_DEFAULT);
    rp_http_ctx_free(w->http);
    w->http = NULL;
    uv_mutex_lock(&s->exit_lock);
    w->exited = 1;
    uv_mutex_unlock(&s->exit_lock);
    if (uv_loop_close(&w->loop) != 0)
        rp_log_msg(RP_LOG_WARN, "worker.exit", "loop closed with handles still open");
    atomic_fetch_sub(&s->alive, 1);
    uv_async_send(&s->exited_async);
}

static int worker_init(server *s, worker *w, int https_fd, int http_fd, int id_fd, char *err,
                       size_t errlen)
{
    const rp_config *cfg = s->cfg;
    rp_http_limits limits = {cfg->header_timeout_ms, cfg->body_timeout_ms, cfg->idle_timeout_ms,
                             cfg->write_timeout_ms};
    int fds[3] = {https_fd, http_fd, id_fd};
    rp_conn_kind kinds[3] = {RP_CONN_HTTPS, RP_CONN_REDIRECT, RP_CONN_LOCAL};

    w->srv = s;
    if (uv_loop_init(&w->loop) != 0) {
        snprintf(err, errlen, "worker: cannot create loop");
        return RP_EIO;
    }
    if (rp_http_ctx_create(&w->loop, s->router, s->tls, &limits, s->https_port, &w->http) != 0) {
        snprintf(err, errlen, "worker: out of memory");
        uv_loop_close(&w->loop);
        return RP_ENOMEM;
    }
    rp_http_ctx_on_closed(w->http, on_conn_closed, w);
    rp_http_ctx_set_local_router(w->http, s->local_router);
    if (uv_async_init(&w->loop, &w->cmd_async, on_cmd) != 0 ||
        uv_timer_init(&w->loop, &w->backoff) != 0) {
        /* Only fails on a broken kernel or fd exhaustion: nothing is serving yet. */
        snprintf(err, errlen, "worker: cannot create loop handles");
        rp_http_ctx_free(w->http);
        return RP_EIO;
    }
    w->cmd_async.data = w;
    w->backoff.data = w;
    for (int i = 0; i < 3; i++) {
        listener *l;
        if (fds[i] < 0)
            continue;
        l = &w->ls[w->nls++];
        l->fd = fds[i];
        l->kind = kinds[i];
        l->w = w;
        if (uv_poll_init(&w->loop, &l->poll, l->fd) != 0) {
            snprintf(err, errlen, "worker: cannot watch the listening socket");
            w->nls--;
            worker_shutdown(w);
            uv_run(&w->loop, UV_RUN_DEFAULT);
            rp_http_ctx_free(w->http);
            uv_loop_close(&w->loop);
            return RP_EIO;
        }
        l->poll.data = l;
        l->open = 1;
        l->active = 1;
        uv_poll_start(&l->poll, UV_READABLE, on_accept);
    }
    return 0;
}

/* ---------------------------------------------------------------- main loop */

static int load_creds(server *s, rp_admin_creds **out)
{
    sqlite3 *db = NULL;
    int rc = rp_store_reader_open(s->store, &db);

    if (rc == 0)
        rc = rp_admin_creds_load(db, out);
    sqlite3_close(db);
    return rc;
}

static void on_hup(uv_signal_t *h, int sig)
{
    server *s = h->data;
    char err[512];
    rp_admin_creds *creds = NULL;
    int rc;

    (void)sig;
    rc = rp_tls_reload(s->tls, &s->tls_opts, err, sizeof(err));
    if (rc != 0)
        rp_log_msg(RP_LOG_ERROR, "reload.tls", err);
    else
        rp_log_msg(RP_LOG_INFO, "reload.tls", "certificates reloaded");
    if (load_creds(s, &creds) == 0)
        rp_iam_set_admin(s->iam, creds);
    else
        rp_log_msg(RP_LOG_ERROR, "reload.credentials", "cannot reload administrator credentials");
}

static void on_key_timer(uv_timer_t *t)
{
    server *s = t->data;
    int rc = rp_iam_rotate_keys(s->iam, 0);

    if (rc != 0)
        rp_log_err("iam.signing_key", "cannot rotate the token signing key", rc);
}

static void on_ticket_timer(uv_timer_t *t)
{
    server *s = t->data;

    rp_tls_rotate_tickets(s->tls);
}

static void broadcast(server *s, int cmd)
{
    uv_mutex_lock(&s->exit_lock);
    for (int i = 0; i < s->nworkers; i++) {
        /* A worker that already drained has closed its loop: its async handle is gone. */
        if (s->workers[i].exited)
            continue;
        atomic_store(&s->workers[i].cmd, cmd);
        uv_async_send(&s->workers[i].cmd_async);
    }
    uv_mutex_unlock(&s->exit_lock);
}

static void main_close_all(server *s)
{
    uv_close((uv_handle_t *)&s->sig_term, NULL);
    uv_close((uv_handle_t *)&s->sig_int, NULL);
    uv_close((uv_handle_t *)&s->sig_hup, NULL);
    uv_close((uv_handle_t *)&s->ticket_timer, NULL);
    uv_close((uv_handle_t *)&s->key_timer, NULL);
    uv_close((uv_handle_t *)&s->drain_timer, NULL);
    uv_close((uv_handle_t *)&s->exited_async, NULL);
}

static void on_drain_timeout(uv_timer_t *t)
{
    server *s = t->data;

    rp_log_msg(RP_LOG_WARN, "drain.timeout", "closing connections still open");
    broadcast(s, CMD_STOP);
}

static void on_worker_exited(uv_async_t *a)
{
    server *s = a->data;

    if (atomic_load(&s->alive) == 0)
        main_close_all(s);
}

static void on_term(uv_signal_t *h, int sig)
{
    server *s = h->data;

    (void)sig;
    if (s->draining)
        return;
    s->draining = 1;
    rp_log_msg(RP_LOG_INFO, "drain.start", "draining connections");
    uv_timer_stop(&s->ticket_timer);
    uv_timer_stop(&s->key_timer);
    if (s->cfg->drain_timeout_ms == 0)
        broadcast(s, CMD_STOP);
    else {
        broadcast(s, CMD_DRAIN);
        uv_timer_start(&s->drain_timer, on_drain_timeout, s->cfg->drain_timeout_ms, 0);
    }
}

/* ---------------------------------------------------------------- start-up */

static void harden_process(void)
{
    struct rlimit rl;
    struct sigaction sa;

    /* No core dumps and no ptrace by other users: key material lives in this process. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    rl.rlim_cur = rl.rlim_max = 0;
    setrlimit(RLIMIT_CORE, &rl);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

static void server_free(server *s)
{
    if (s->exit_lock_init)
        uv_mutex_destroy(&s->exit_lock);
    rp_static_close(s->stat);
    rp_router_free(s->router);
    rp_router_free(s->local_router);
    rp_tls_free(s->tls);
    rp_sites_close(s->sites);
    rp_oidc_close(s->oidc); /* after the sites: their requests verify with it */
    rp_vault_close(s->vault);
    rp_iam_close(s->iam);
    rp_store_close(s->store);
    rp_keyring_close(s->kr);
    rp_free(s->srcs);
    rp_free(s->workers);
    rp_helper_stop(s->helper); /* after the sites: their processes are the helper's children */
    s->helper = NULL;
    if (s->access_fd > 2)
        close(s->access_fd);
    if (s->error_fd > 2)
        close(s->error_fd);
}

/* Reads a small secret file (PIN, passphrase) that must be private to rampart. */
static int read_secret_file(const char *path, char *out, size_t cap, size_t *n)
{
    rp_buf b;
    int rc;

    rp_buf_init(&b, cap);
    rc = rp_file_read_private(path, &b);
    if (rc == 0) {
        size_t len = b.len;
        while (len > 0 && (b.data[len - 1] == '\n' || b.data[len - 1] == '\r'))
            len--;
        if (len == 0 || len >= cap)
            rc = RP_EINVAL;
        else {
            memcpy(out, b.data, len);
            out[len] = '\0';
            *n = len;
        }
    }
    rp_buf_free_secret(&b);
    return rc;
}

/* The PKCS#11 user PIN: keys.pkcs11_pin_file (0600), else RAMPART_PKCS11_PIN. */
static int read_pin(const rp_config *cfg, char *pin, size_t cap, char *err, size_t errlen)
{
    const char *env = getenv("RAMPART_PKCS11_PIN");
    size_t n = 0;
    int rc;

    if (cfg->pkcs11_pin_file != NULL) {
        rc = read_secret_file(cfg->pkcs11_pin_file, pin, cap, &n);
        if (rc != 0)
            snprintf(err, errlen,
                     "cannot read the PIN file %s: %s (it must be a regular file "
                     "readable only by its owner)",
                     cfg->pkcs11_pin_file, rp_strerror(rc));
        return rc;
    }
    if (env != NULL && env[0] != '\0' && strlen(env) < cap) {
        rp_strlcpy(pin, env, cap);
        return 0;
    }
    snprintf(err, errlen,
             "a PKCS#11 token is configured: set keys.pkcs11_pin_file or "
             "RAMPART_PKCS11_PIN");
    return RP_EINVAL;
}

/*
 * Fills the keyring options for this install: its provider (fixed by init) and what that
 * provider needs from the configuration or environment. pin and pass are the caller's buffers
 * (wiped by the caller). *sealed = 1 when the passphrase is not available here.
 */
static int keyring_opts(const rp_config *cfg, const char *keys_dir, rp_keyring_opts *ko, char *pin,
                        size_t pincap, char *pass, size_t passcap, int *sealed, char *err,
                        size_t errlen)
{
    rp_root_provider prov;
    size_t n = 0;
    int rc = rp_keyring_provider_of(keys_dir, &prov);

    *sealed = 0;
    memset(ko, 0, sizeof(*ko));
    if (rc != 0) {
        snprintf(err, errlen, "cannot read the key store in %s: %s", keys_dir, rp_strerror(rc));
        return rc;
    }
    ko->keys_dir = keys_dir;
    ko->provider = prov;
    if (prov == RP_ROOT_PKCS11) {
        if (cfg->pkcs11_module == NULL || cfg->pkcs11_token == NULL) {
            snprintf(err, errlen,
                     "the root key is in a PKCS#11 token: set keys.pkcs11_module and "
                     "keys.pkcs11_token");
            return RP_EINVAL;
        }
        rc = read_pin(cfg, pin, pincap, err, errlen);
        if (rc != 0)
            return rc;
        ko->pkcs11_module = cfg->pkcs11_module;
        ko->pkcs11_token = cfg->pkcs11_token;
        ko->pkcs11_pin = pin;
    } else if (prov == RP_ROOT_PASSPHRASE) {
        if (cfg->passphrase_file == NULL) {
            *sealed = 1;
            return 0;
        }
        rc = read_secret_file(cfg->passphrase_file, pass, passcap, &n);
        if (rc != 0) {
            snprintf(err, errlen,
                     "cannot read the passphrase file %s: %s (it must be a regular "
                     "file readable only by its owner)",
                     cfg->passphrase_file, rp_strerror(rc));
            return rc;
        }
        ko->passphrase = pass;
        ko->passphrase_len = n;
    }
    return 0;
}

/* What serve prepares before it loads anything (as root, when started as root). */
typedef struct prepared {
    rp_helper *helper;         /* moves into the server (freed with it) */
    const char *data_abs;      /* the data directory, absolute */
    const rp_keyring_opts *ko; /* the root key's options, files read; NULL: read in server_load */
    const char *hsm_pin;       /* the PKCS#11 PIN for -HSM keys; NULL: read in server_load */
} prepared;

/* Everything up to (not including) binding: shared by serve and --check-config. kr, when not
 * NULL, is a keyring already opened by the sealed state (ownership passes to s). */
static int server_load(server *s, const rp_config *cfg, rp_keyring *kr, const prepared *pre,
                       char *err, size_t errlen)
{
    char install_id[37];
    rp_admin_creds *creds = NULL;
    int rc;

    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    s->kr = kr;
    s->helper = pre->helper;
    rp_strlcpy(s->data_abs, pre->data_abs, sizeof(s->data_abs));
    s->access_fd = s->error_fd = -1;
    if (cfg->data_dir == NULL) {
        snprintf(err, errlen, "no data directory: pass --data DIR or set RAMPART_DATA");
        return RP_EINVAL;
    }
    rc = rp_datadir_read(cfg->data_dir, s->domain, sizeof(s->domain), install_id);
    if (rc != 0) {
        snprintf(err, errlen, "%s is not an initialised data directory (run rampart init): %s",
                 cfg->data_dir, rp_strerror(rc));
        return rc;
    }
    if (cfg->domain != NULL)
        rp_strlcpy(s->domain, cfg->domain, sizeof(s->domain));
    if (rp_datadir_path(cfg->data_dir, RP_DATADIR_KEYS, s->paths[0], RP_PATH_MAX) != 0 ||
        rp_datadir_path(cfg->data_dir, RP_DATADIR_DB, s->paths[1], RP_PATH_MAX) != 0 ||
        rp_datadir_path(cfg->data_dir, RP_DATADIR_SERVER_CERT, s->paths[2], RP_PATH_MAX) != 0 ||
        rp_datadir_path(cfg->data_dir, RP_DATADIR_SERVER_KEY, s->paths[3], RP_PATH_MAX) != 0 ||
        rp_datadir_path(cfg->data_dir, RP_DATADIR_AUDIT_LOG, s->paths[4], RP_PATH_MAX) != 0) {
        snprintf(err, errlen, "data directory path too long");
        return RP_ETOOBIG;
    }
    if (s->kr == NULL) {
        rp_keyring_opts ko;
        char pin[256], pass[RP_UNSEAL_PASSPHRASE_MAX + 1];
        int sealed = 0;
        if (pre->ko != NULL)
            ko = *pre->ko, rc = 0;
        else
            rc = keyring_opts(cfg, s->paths[0], &ko, pin, sizeof(pin), pass, sizeof(pass), &sealed,
                              err, errlen);
        if (rc == 0 && sealed) {
            snprintf(err, errlen, "the root key is sealed by a passphrase (rampart unseal)");
            rc = RP_EPERM;
        }
        if (rc == 0)
            rc = rp_keyring_open(&ko, &s->kr, err, errlen);
        OPENSSL_cleanse(pin, sizeof(pin));
        OPENSSL_cleanse(pass, sizeof(pass));
        if (rc != 0)
            return rc;
    }
    s->rk = rp_keyring_system(s->kr);
    {
        char objects[RP_PATH_MAX];
        if (rp_datadir_path(cfg->data_dir, RP_DATADIR_OBJECTS, objects, sizeof(objects)) != 0) {
            snprintf(err, errlen, "data directory path too long");
            return RP_ETOOBIG;
        }
        rc = rp_store_open_ex(s->paths[1], objects, &s->store);
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot open the store %s: %s", s->paths[1], rp_strerror(rc));
        return rc;
    }
    rc = load_creds(s, &creds);
    if (rc != 0) {
        snprintf(err, errlen, "cannot load administrator credentials: %s", rp_strerror(rc));
        return rc;
    }
    {
        char idep[320];
        rp_iam_opts io = {0};
        /* The audit directory is created on first start (installs made before it existed). */
        char dir[RP_PATH_MAX];
        char *slash;
        rp_strlcpy(dir, s->paths[4], sizeof(dir));
        slash = strrchr(dir, '/');
        if (slash != NULL) {
            *slash = '\0';
            if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
                rp_admin_creds_free(creds);
                snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
                return RP_EIO;
            }
        }
        snprintf(idep, sizeof(idep),
                 strchr(cfg->identity_listen.host, ':') ? "http://[%s]:%d/msi/token"
                                                        : "http://%s:%d/msi/token",
                 cfg->identity_listen.host, cfg->identity_listen.port);
        io.domain = s->domain;
        io.https_port = cfg->listen.port;
        io.rootkey = s->rk;
        io.store = s->store;
        io.audit_path = s->paths[4];
        io.identity_endpoint = cfg->identity_enabled ? idep : NULL;
        rc = rp_iam_open(&io, creds, &s->iam, err, errlen);
        if (rc != 0)
            return rc;
    }
    {
        /* -HSM vault keys live in the configured PKCS#11 token (the root key's, if any). */
        rp_vault_opts vo = {s->domain, cfg->listen.port, s->store, s->iam, s->kr, NULL, NULL, NULL};
        char pin[256] = "";
        if (cfg->pkcs11_module != NULL) {
            if (cfg->pkcs11_token == NULL) {
                snprintf(err, errlen, "keys.pkcs11_module is set: set keys.pkcs11_token too");
                return RP_EINVAL;
            }
            if (pre->hsm_pin != NULL)
                rc = rp_strlcpy(pin, pre->hsm_pin, sizeof(pin));
            else
                rc = read_pin(cfg, pin, sizeof(pin), err, errlen);
            if (rc != 0)
                return rc;
            vo.hsm_module = cfg->pkcs11_module;
            vo.hsm_token = cfg->pkcs11_token;
            vo.hsm_pin = pin;
        }
        rc = rp_vault_open(&vo, &s->vault, err, errlen);
        OPENSSL_cleanse(pin, sizeof(pin));
        if (rc != 0)
            return rc;
    }
    {
        rp_sites_opts so = {s->domain, cfg->listen.port, s->data_abs, s->store, s->iam,
                            s->kr,     s->vault,         NULL,        s->helper};
        /* Outbound TLS to OpenID issuers (Easy Auth) trusts outbound_ca, else the system's. */
        rc = rp_oidc_open(cfg->outbound_ca, &s->oidc);
        if (rc != 0) {
            snprintf(err, errlen, "the outbound CA bundle %.200s cannot be read",
                     cfg->outbound_ca ? cfg->outbound_ca : "(system)");
            return rc;
        }
        so.oidc = s->oidc;
        rc = rp_sites_open(&so, &s->sites, err, errlen);
        if (rc != 0)
            return rc;
    }
    /* Operator certificates replace the built-in one; the first is the default. */
    s->nsrcs = cfg->ncerts ? cfg->ncerts : 1;
    s->srcs = rp_calloc(s->nsrcs, sizeof(*s->srcs));
    if (s->srcs == NULL)
        return RP_ENOMEM;
    if (cfg->ncerts == 0) {
        s->srcs[0].cert_file = s->paths[2];
        s->srcs[0].sealed_key_file = s->paths[3];
    } else {
        for (size_t i = 0; i < cfg->ncerts; i++) {
            s->srcs[i].cert_file = cfg->certs[i].cert;
            s->srcs[i].key_file = cfg->certs[i].key;
        }
    }
    s->tls_opts.min_version = cfg->tls_min_version;
    s->tls_opts.client_certs = cfg->client_certs;
    s->tls_opts.ticket_rotate_s = (unsigned)cfg->ticket_rotate_s;
    s->tls_opts.certs = s->srcs;
    s->tls_opts.ncerts = s->nsrcs;
    s->tls_opts.rootkey = s->rk;
    rc = rp_tls_create(&s->tls_opts, &s->tls, err, errlen);
    if (rc != 0)
        return rc;
    /* Apps' own transport settings (minimum TLS version, client certificates) per host name. */
    rp_tls_set_policy(s->tls, rp_sites_tls_policy, s->sites);
    rc = rp_router_create(s->domain, &s->router);
    if (rc == 0)
        rc = rp_iam_register(s->iam, s->router, cfg->max_body_bytes);
    if (rc == 0)
        rc = rp_vault_register(s->vault, s->router);
    if (rc == 0)
        rc = rp_sites_register(s->sites, s->router);
    if (rc == 0) {
        s->keysapi.iam = s->iam;
        s->keysapi.kr = s->kr;
        rc = rp_keysapi_register(&s->keysapi, s->router);
    }
    if (rc == 0)
        rc = rp_router_create(s->domain, &s->local_router);
    if (rc == 0)
        rc = rp_iam_register_local(s->iam, s->local_router);
    if (rc != 0) {
        snprintf(err, errlen, "cannot build the router: %s", rp_strerror(rc));
        return rc;
    }
    if (cfg->static_root != NULL) {
        rp_route_opts o = {RP_M_READ, 0, NULL};
        rc = rp_static_open(cfg->static_root, &s->stat);
        if (rc != 0) {
            snprintf(err, errlen, "static: %s is not a readable directory", cfg->static_root);
            return rc;
        }
        o.data = s->stat;
        rc = rp_router_add(s->router, "@", "/", rp_static_handle, &o);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------- privilege separation */

/*
 * The service user's ids must be its own: not root's, not an app's (an app that escaped its
 * sandbox would own the data directory), and a group nobody else is in (it is the group of
 * isolated apps' socket directories and sockets).
 */
static int service_ids_ok(const char *name, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    struct group gr, *res = NULL;
    char buf[8192];

    if (uid == 0 || gid == 0) {
        snprintf(err, errlen, "user: %s is root (uid or gid 0)", name);
        return RP_EINVAL;
    }
    if ((uid >= RP_SITES_UID_BASE && uid <= RP_SITES_UID_BASE + 0xFFFFFF) ||
        (gid >= RP_SITES_UID_BASE && gid <= RP_SITES_UID_BASE + 0xFFFFFF)) {
        snprintf(err, errlen, "user: %s has an app's uid or gid (from %u up)", name,
                 RP_SITES_UID_BASE);
        return RP_EINVAL;
    }
    if (getgrgid_r(gid, &gr, buf, sizeof(buf), &res) == 0 && res != NULL && res->gr_mem != NULL &&
        res->gr_mem[0] != NULL) {
        snprintf(err, errlen,
                 "user: %s's group %s has other members (%s ...): give it a group of its own", name,
                 res->gr_name, res->gr_mem[0]);
        return RP_EINVAL;
    }
    return 0;
}

/* Who serve runs as after start-up: cfg->user, else "rampart", else RP_SERVICE_UID. */
static int service_user(const rp_config *cfg, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
    const char *name = cfg->user != NULL ? cfg->user : "rampart";
    struct passwd pw, *res = NULL;
    char buf[4096];
    uint64_t n;

    if (rp_parse_u64(name, strlen(name), UINT32_MAX - 1, &n) == 0) {
        *uid = (uid_t)n;
        *gid = (gid_t)n;
        if (getpwuid_r((uid_t)n, &pw, buf, sizeof(buf), &res) == 0 && res != NULL)
            *gid = res->pw_gid;
    } else if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) == 0 && res != NULL) {
        *uid = res->pw_uid;
        *gid = res->pw_gid;
    } else if (cfg->user != NULL) {
        snprintf(err, errlen, "user: no account named %s", name);
        return RP_EINVAL;
    } else {
        *uid = *gid = RP_SERVICE_UID;
    }
    return service_ids_ok(name, *uid, *gid, err, errlen);
}

/* An app's run directories (apps/NAME/run, run.N) are its own uid's: left as they are. */
static int is_run_dir(const char *name)
{
    return strcmp(name, "run") == 0 ||
           (strncmp(name, "run.", 4) == 0 && name[4] >= '1' && name[4] <= '9' && name[5] == '\0');
}

/*
 * Gives name in dir, and everything below it, to uid:gid, never following a link. level counts
 * from the data directory (0) so that apps/NAME/run* (level 2) is skipped. Only what differs is
 * changed: a restart walks the tree and changes nothing. Root does this in a tree the service
 * user (a compromised one, say) may have changed, so only directories and regular files with
 * one link, on the data directory's file system, change hands: a hard link to a file outside
 * (/etc/shadow where protected_hardlinks is off), a device, a mount point are left alone.
 */
static int own_tree(int dir, const char *name, uid_t uid, gid_t gid, int level, dev_t dev)
{
    struct stat st;
    struct dirent *de;
    DIR *d;
    int fd, rc = 0;

    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : RP_EIO;
    if (st.st_dev != dev || !(S_ISDIR(st.st_mode) || (S_ISREG(st.st_mode) && st.st_nlink == 1)))
        return 0;
    if ((st.st_uid != uid || st.st_gid != gid) &&
        fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
        return RP_EIO;
    if (!S_ISDIR(st.st_mode) || level > 64)
        return 0; /* nothing of rampart's is that deep */
    fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return RP_EIO;
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return RP_EIO;
    }
    while ((de = readdir(d)) != NULL && rc == 0) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (level == 0 && strcmp(de->d_name, "apps") == 0)
            rc = own_tree(dirfd(d), de->d_name, uid, gid, 1, dev);
        else if (level == 1)
            rc = own_tree(dirfd(d), de->d_name, uid, gid, 2, dev);
        else if (level == 2 && is_run_dir(de->d_name))
            continue;
        else
            rc = own_tree(dirfd(d), de->d_name, uid, gid, level >= 3 ? level + 1 : 3, dev);
    }
    closedir(d);
    return rc;
}

/*
 * No directory above DATA may be the service user's to change: root resolves DATA's path at
 * every start, and a directory the service user could swap for a link would point root's walk
 * (own_tree) and the helper anywhere. A sticky directory (/tmp) is fine: only DATA's own entry
 * is the service user's there, and DATA is opened without following a link.
 */
static int ancestors_safe(const char *abs, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    char p[RP_PATH_MAX];

    if (rp_strlcpy(p, abs, sizeof(p)) != 0)
        return RP_ETOOBIG;
    for (char *slash = strrchr(p, '/'); slash != NULL; slash = strrchr(p, '/')) {
        struct stat st;
        if (slash == p)
            slash[1] = '\0';
        else
            *slash = '\0';
        if (lstat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "cannot check %s: %s", p, strerror(errno));
            return RP_EIO;
        }
        if (st.st_uid == uid || ((st.st_mode & S_IWGRP) && st.st_gid == gid) ||
            ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))) {
            snprintf(err, errlen,
                     "%s, above the data directory, can be changed by the service user (uid "
                     "%u): keep the data directory below directories only root can change",
                     p, (unsigned)uid);
            return RP_EPERM;
        }
        if (slash == p)
            break;
    }
    return 0;
}

/* Root gives way to uid:gid for good: no groups, no capabilities, no way back. */
static int drop_root(uid_t uid, gid_t gid, char *err, size_t errlen)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;

    if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) {
        snprintf(err, errlen, "cannot switch to uid %u: %s", (unsigned)uid, strerror(errno));
        return RP_EPERM;
    }
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != uid || eu != uid ||
        su != uid || rg != gid || eg != gid || sg != gid || getgroups(0, NULL) != 0 ||
        setresuid(0, 0, 0) == 0) {
        snprintf(err, errlen, "the switch to uid %u did not hold", (unsigned)uid);
        return RP_EPERM;
    }
    /* A uid change resets these; the keys are loaded after this point. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    return 0;
}

/* The data directory, absolute: the helper only acts on paths below DATA/apps. */
static int data_absolute(const rp_config *cfg, char *out, size_t cap, char *err, size_t errlen)
{
    char buf[PATH_MAX];

    if (cfg->data_dir == NULL) {
        snprintf(err, errlen, "no data directory: pass --data DIR or set RAMPART_DATA");
        return RP_EINVAL;
    }
    if (realpath(cfg->data_dir, buf) == NULL) {
        snprintf(err, errlen, "%s is not an initialised data directory (run rampart init): %s",
                 cfg->data_dir, strerror(errno));
        return RP_ENOENT;
    }
    if (rp_strlcpy(out, buf, cap) != 0 || strlen(buf) + 16 >= cap) {
        snprintf(err, errlen, "data directory path too long");
        return RP_ETOOBIG;
    }
    return 0;
}

/* Forks the privileged helper (before any thread exists). */
static int helper_start(const char *data_abs, gid_t group, int apps_fd, rp_helper **out, char *err,
                        size_t errlen)
{
    char apps[RP_PATH_MAX + 8];
    rp_helper_opts ho;
    int rc;

    memset(&ho, 0, sizeof(ho));
    snprintf(apps, sizeof(apps), "%s/apps", data_abs);
    ho.apps_dir = apps;
    ho.uid_min = RP_SITES_UID_BASE;
    ho.uid_max = RP_SITES_UID_BASE + 0xFFFFFF;
    ho.group = (uint32_t)group;
    ho.apps_fd = apps_fd;
    rc = rp_helper_start(&ho, out);
    if (rc != 0)
        snprintf(err, errlen, "cannot start the privileged helper: %s", rp_strerror(rc));
    return rc;
}

int rp_server_check(const rp_config *cfg, char *err, size_t errlen)
{
    server s;
    prepared pre = {0};
    char data_abs[RP_PATH_MAX];
    int rc = data_absolute(cfg, data_abs, sizeof(data_abs), err, errlen);

    memset(&s, 0, sizeof(s));
    if (rc != 0)
        return rc;
    rc = helper_start(data_abs, getegid(), -1, &pre.helper, err, errlen);
    if (rc != 0)
        return rc;
    pre.data_abs = data_abs;
    rc = server_load(&s, cfg, NULL, &pre, err, errlen);
    server_free(&s);
    return rc;
}

static long ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : (n > 256 ? 256 : n);
}

/*
 * Everything that needs root, done before anything is loaded: the helper forked (no thread
 * yet), secret files read, the data directory given to the service user, the listeners bound
 * (ports below 1024). Then root is dropped for good, before any key, request or thread.
 */
static int prepare_root(const rp_config *cfg, server *s, prepared *pre, int nworkers, int (*lfd)[3],
                        char *keys_dir, char *pin, char *pass, char *hsm_pin, rp_keyring_opts *ko,
                        int *sealed, char *err, size_t errlen)
{
    char domain[256], install_id[37];
    uid_t uid = geteuid();
    gid_t gid = getegid();
    int root = uid == 0, rc, dfd = -1, afd;

    rc = data_absolute(cfg, s->data_abs, sizeof(s->data_abs), err, errlen);
    if (rc == 0) {
        rc = rp_datadir_read(s->data_abs, domain, sizeof(domain), install_id);
        if (rc != 0)
            snprintf(err, errlen, "%s is not an initialised data directory (run rampart init): %s",
                     cfg->data_dir, rp_strerror(rc));
    }
    if (rc == 0 && root)
        rc = service_user(cfg, &uid, &gid, err, errlen);
    if (rc == 0 && root)
        rc = ancestors_safe(s->data_abs, uid, gid, err, errlen);
    if (rc != 0)
        return rc;
    /* DATA and DATA/apps by descriptor from here on: the walk below and the helper work in
     * what was checked, whatever is renamed later. */
    dfd = open(s->data_abs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd >= 0 && mkdirat(dfd, "apps", 0711) != 0 && errno != EEXIST) {
        close(dfd);
        dfd = -1;
    }
    afd = dfd >= 0 ? openat(dfd, "apps", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (afd < 0) {
        snprintf(err, errlen, "cannot open %s/apps: %s", s->data_abs, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return RP_EIO;
    }
    rc = helper_start(s->data_abs, gid, afd, &pre->helper, err, errlen);
    close(afd);
    if (rc != 0) {
        close(dfd);
        return rc;
    }
    pre->data_abs = s->data_abs;
    /* Secret files (PIN, passphrase) are root's own, mode 0600: read now. */
    if (rp_datadir_path(s->data_abs, RP_DATADIR_KEYS, keys_dir, RP_PATH_MAX) != 0) {
        snprintf(err, errlen, "data directory path too long");
        close(dfd);
        return RP_ETOOBIG;
    }
    rc = keyring_opts(cfg, keys_dir, ko, pin, 256, pass, RP_UNSEAL_PASSPHRASE_MAX + 1, sealed, err,
                      errlen);
    if (rc == 0 && cfg->pkcs11_module != NULL && cfg->pkcs11_token != NULL) {
        rc = read_pin(cfg, hsm_pin, 256, err, errlen);
        if (rc == 0)
            pre->hsm_pin = hsm_pin;
    }
    if (rc == 0)
        pre->ko = ko;
    if (rc == 0 && root) {
        struct stat st;
        rc = fstat(dfd, &st) != 0 ? RP_EIO : own_tree(dfd, ".", uid, gid, 0, st.st_dev);
        if (rc != 0)
            snprintf(err, errlen, "cannot give %s to uid %u: %s", s->data_abs, (unsigned)uid,
                     rp_strerror(rc));
    }
    close(dfd);
    if (rc != 0)
        return rc;
    s->https_port = cfg->listen.port;
    s->http_port = cfg->http_listen.port;
    s->identity_port = cfg->identity_listen.port;
    for (int i = 0; i < nworkers; i++) {
        lfd[i][0] = rp_listen_tcp(cfg->listen.host, &s->https_port, RP_LISTEN_BACKLOG, err, errlen);
        if (lfd[i][0] < 0)
            return lfd[i][0];
        if (cfg->http_enabled) {
            lfd[i][1] =
                rp_listen_tcp(cfg->http_listen.host, &s->http_port, RP_LISTEN_BACKLOG, err, errlen);
            if (lfd[i][1] < 0)
                return lfd[i][1];
        }
        if (cfg->identity_enabled) {
            lfd[i][2] = rp_listen_tcp(cfg->identity_listen.host, &s->identity_port,
                                      RP_LISTEN_BACKLOG, err, errlen);
            if (lfd[i][2] < 0)
                return lfd[i][2];
        }
    }
    if (!root)
        return 0;
    rc = drop_root(uid, gid, err, errlen);
    if (rc == 0 && access(s->data_abs, R_OK | W_OK | X_OK) != 0) {
        snprintf(err, errlen,
                 "the service user (uid %u) cannot reach %s: %s (a directory above it is closed "
                 "to that user; keep the data directory where it can, e.g. /var/lib/rampart)",
                 (unsigned)uid, s->data_abs, strerror(errno));
        rc = RP_EPERM;
    }
    return rc;
}

static void close_listeners(int (*lfd)[3], int n)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 3; k++)
            if (lfd[i][k] >= 0) {
                close(lfd[i][k]);
                lfd[i][k] = -1;
            }
}

int rp_server_run(const rp_config *cfg, char *err, size_t errlen)
{
    server s;
    rp_log_level lvl = RP_LOG_INFO;
    int rc, i, nworkers = cfg->workers > 0 ? cfg->workers : (int)ncpu();
    int(*lfd)[3] = rp_calloc((size_t)nworkers, sizeof(*lfd));
    int https_port = 0, http_port = 0, identity_port = 0;

    harden_process();
    memset(&s, 0, sizeof(s));
    if (lfd == NULL) {
        snprintf(err, errlen, "out of memory");
        return RP_ENOMEM;
    }
    for (i = 0; i < nworkers; i++)
        lfd[i][0] = lfd[i][1] = lfd[i][2] = -1;
    {
        char pin[256] = "", pass[RP_UNSEAL_PASSPHRASE_MAX + 1] = "", hsm_pin[256] = "";
        char keys_dir[RP_PATH_MAX]; /* ko points here */
        rp_keyring_opts ko;
        rp_keyring *kr = NULL;
        prepared pre = {0};
        int sealed = 0;
        server tmp;
        memset(&tmp, 0, sizeof(tmp));
        rc = prepare_root(cfg, &tmp, &pre, nworkers, lfd, keys_dir, pin, pass, hsm_pin, &ko,
                          &sealed, err, errlen);
        https_port = tmp.https_port;
        http_port = tmp.http_port;
        identity_port = tmp.identity_port;
        /* A passphrase-sealed root key: serve only health and unseal until it is opened. */
        if (rc == 0 && sealed) {
            rc = rp_unseal_serve(cfg, &ko, &kr, err, errlen);
            pre.ko = NULL; /* opened: server_load takes kr */
        }
        if (rc == 0)
            rc = server_load(&s, cfg, kr, &pre, err, errlen);
        else
            rp_helper_stop(pre.helper);
        OPENSSL_cleanse(pin, sizeof(pin));
        OPENSSL_cleanse(pass, sizeof(pass));
        OPENSSL_cleanse(hsm_pin, sizeof(hsm_pin));
        OPENSSL_cleanse(&ko, sizeof(ko));
    }
    if (rc != 0)
        goto out;
    if (rp_log_level_parse(cfg->log_level, &lvl) != 0 ||
        open_log(cfg->error_log, &s.error_fd, err, errlen) != 0 ||
        open_log(cfg->access_log, &s.access_fd, err, errlen) != 0) {
        rc = RP_EINVAL;
        goto out;
    }
    rp_log_configure(s.error_fd, lvl, s.access_fd);
    if (uv_mutex_init(&s.exit_lock) != 0) {
        rc = RP_EIO;
        goto out;
    }
    s.exit_lock_init = 1;
    s.nworkers = nworkers;
    s.workers = rp_calloc((size_t)s.nworkers, sizeof(*s.workers));
    if (s.workers == NULL) {
        rc = RP_ENOMEM;
        goto out;
    }
    s.https_port = https_port;
    s.http_port = http_port;
    s.identity_port = identity_port;
    for (i = 0; i < s.nworkers; i++) {
        s.workers[i].max_conns =
            (cfg->max_connections + (size_t)s.nworkers - 1) / (size_t)s.nworkers;
        atomic_init(&s.workers[i].cmd, CMD_NONE);
        rc = worker_init(&s, &s.workers[i], lfd[i][0], lfd[i][1], lfd[i][2], err, errlen);
        if (rc != 0)
            goto out_workers;
        lfd[i][0] = lfd[i][1] = lfd[i][2] = -1; /* the worker's now */
        s.workers[i].started = 1;
    }
    if (uv_loop_init(&s.loop) != 0 || uv_signal_init(&s.loop, &s.sig_term) != 0 ||
        uv_signal_init(&s.loop, &s.sig_int) != 0 || uv_signal_init(&s.loop, &s.sig_hup) != 0 ||
        uv_timer_init(&s.loop, &s.ticket_timer) != 0 || uv_timer_init(&s.loop, &s.key_timer) != 0 ||
        uv_timer_init(&s.loop, &s.drain_timer) != 0 ||
        uv_async_init(&s.loop, &s.exited_async, on_worker_exited) != 0) {
        /* Before any thread or connection exists; a half-initialised loop is not worth unwinding. */
        snprintf(err, errlen, "cannot create the main loop's handles");
        abort();
    }
    s.sig_term.data = s.sig_int.data = s.sig_hup.data = &s;
    s.ticket_timer.data = s.drain_timer.data = s.exited_async.data = s.key_timer.data = &s;
    uv_signal_start(&s.sig_term, on_term, SIGTERM);
    uv_signal_start(&s.sig_int, on_term, SIGINT);
    uv_signal_start(&s.sig_hup, on_hup, SIGHUP);
    uv_timer_start(&s.ticket_timer, on_ticket_timer, (uint64_t)cfg->ticket_rotate_s * 1000,
                   (uint64_t)cfg->ticket_rotate_s * 1000);
    /* The signing key rotates on its own schedule; checking hourly is plenty. */
    uv_timer_start(&s.key_timer, on_key_timer, 3600 * 1000, 3600 * 1000);
    {
        char idep[320];
        snprintf(idep, sizeof(idep),
                 strchr(cfg->identity_listen.host, ':') ? "http://[%s]:%d/msi/token"
                                                        : "http://%s:%d/msi/token",
                 cfg->identity_listen.host, s.identity_port);
        /* Ephemeral ports are known only now, before any request can read these names. */
        rp_vault_set_port(s.vault, s.https_port);
        rp_sites_set_port(s.sites, s.https_port);
        rc = rp_iam_set_endpoints(s.iam, s.https_port, cfg->identity_enabled ? idep : NULL);
        if (rc != 0) {
            snprintf(err, errlen, "out of memory");
            abort();
        }
        /* Apps get IDENTITY_ENDPOINT: their processes start once it is known. */
        rp_sites_start(s.sites);
    }
    atomic_init(&s.alive, s.nworkers);
    for (i = 0; i < s.nworkers; i++) {
        if (uv_thread_create(&s.workers[i].thread, worker_main, &s.workers[i]) != 0) {
            snprintf(err, errlen, "cannot start worker threads");
            abort(); /* half a server is worse than none; nothing is listening yet */
        }
    }
    {
        char https[300], http[300] = "";
        int v6 = strchr(cfg->listen.host, ':') != NULL;
        snprintf(https, sizeof(https), v6 ? "[%s]:%d" : "%s:%d", cfg->listen.host, s.https_port);
        if (cfg->http_enabled)
            snprintf(http, sizeof(http), strchr(cfg->http_listen.host, ':') ? "[%s]:%d" : "%s:%d",
                     cfg->http_listen.host, s.http_port);
        char ident[300] = "";
        if (cfg->identity_enabled)
            snprintf(ident, sizeof(ident), "http://%s:%d/msi/token", cfg->identity_listen.host,
                     s.identity_port);
        printf("{\"event\":\"ready\",\"https\":\"%s\",\"http\":\"%s\",\"domain\":\"%s\","
               "\"identity\":\"%s\",\"tenant\":\"%s\",\"workers\":%d,\"pid\":%d}\n",
               https, http, s.domain, ident, rp_iam_tenant(s.iam), s.nworkers, (int)getpid());
        fflush(stdout);
    }
    rp_log_msg(RP_LOG_INFO, "serve.ready", "accepting connections");
    uv_run(&s.loop, UV_RUN_DEFAULT);
    for (i = 0; i < s.nworkers; i++)
        uv_thread_join(&s.workers[i].thread);
    uv_loop_close(&s.loop);
    rp_log_msg(RP_LOG_INFO, "serve.stopped", "drained");
    rc = 0;
    goto out;
out_workers:
    for (int j = 0; j < s.nworkers; j++) {
        worker *w = &s.workers[j];
        if (!w->started)
            continue;
        worker_shutdown(w);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        rp_http_ctx_free(w->http);
        uv_loop_close(&w->loop);
    }
out:
    close_listeners(lfd, nworkers);
    rp_free(lfd);
    server_free(&s);
    return rc;
}
