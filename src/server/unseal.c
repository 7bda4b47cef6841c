/*
 * unseal.c - the sealed state: one loop, one loopback listener, two routes (unseal.h).
 *
 * Workload: a handful of requests in the life of a process. The Argon2id run of an attempt
 * blocks this loop for a fraction of a second, which is the point: attempts are serialised.
 */
#include "server/unseal.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/str.h"
#include "http/conn.h"
#include "http/router.h"
#include "net/listen.h"

#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

typedef struct sealed {
    uv_loop_t loop;
    uv_poll_t poll;
    uv_signal_t sig_term, sig_int;
    int fd;
    rp_http_ctx *http;
    const rp_keyring_opts *ko;
    rp_keyring *kr;
    int stopping;
    int result;
} sealed;

static void stop(sealed *s, int result)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    s->result = result;
    uv_poll_stop(&s->poll);
    uv_signal_stop(&s->sig_term);
    uv_signal_stop(&s->sig_int);
    rp_http_ctx_drain(s->http);
}

static void on_closed(rp_http_ctx *ctx, void *arg)
{
    sealed *s = arg;

    if (s->stopping && rp_http_ctx_conns(ctx) == 0) {
        uv_close((uv_handle_t *)&s->poll, NULL);
        uv_close((uv_handle_t *)&s->sig_term, NULL);
        uv_close((uv_handle_t *)&s->sig_int, NULL);
    }
}

static void health(rp_req *req)
{
    static const char body[] = "{\"status\":\"sealed\"}";

    rp_resp_send(req, 200, "application/json; charset=utf-8", body, sizeof(body) - 1);
}

static void unseal_body(rp_req *req)
{
    sealed *s = req->route_data;
    rp_keyring_opts ko = *s->ko;
    json_t *body = NULL;
    const char *pass;
    char err[256];
    int rc;

    if (s->kr != NULL || s->stopping) {
        rp_resp_error(req, 409, "Conflict", "already unsealed");
        return;
    }
    if (req->body.len > 0)
        body = json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES, NULL);
    pass = json_string_value(json_object_get(body, "passphrase"));
    if (pass == NULL || json_string_length(json_object_get(body, "passphrase")) == 0) {
        pass = NULL;
        rp_resp_error(req, 400, "InvalidRequest", "the body must be {\"passphrase\":\"...\"}");
        goto wipe;
    }
    ko.passphrase = pass;
    ko.passphrase_len = json_string_length(json_object_get(body, "passphrase"));
    rc = rp_keyring_open(&ko, &s->kr, err, sizeof(err));
    if (rc != 0) {
        s->kr = NULL;
        rp_log_err("unseal.failed", err, rc);
        /* Slows guessing beyond what Argon2id already costs. */
        uv_sleep(1000);
        rp_resp_error(req, 403, "Forbidden", "the passphrase does not open the root key");
    } else {
        static const char ok[] = "{\"status\":\"unsealed\"}";
        rp_log_msg(RP_LOG_INFO, "unseal.ok", "root key unsealed");
        rp_resp_close(req);
        rp_resp_send(req, 200, "application/json; charset=utf-8", ok, sizeof(ok) - 1);
        stop(s, 0);
    }
wipe:
    /* The body buffer and the parsed copy both held the passphrase. */
    if (pass != NULL)
        OPENSSL_cleanse((void *)pass, json_string_length(json_object_get(body, "passphrase")));
    OPENSSL_cleanse(req->body.data, req->body.len);
    json_decref(body);
}

static void unseal(rp_req *req)
{
    rp_req_read_body(req, unseal_body);
}

static void on_accept(uv_poll_t *p, int status, int events)
{
    sealed *s = p->data;
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    int fd;

    (void)events;
    if (status < 0 || s->stopping)
        return;
    fd = accept4(s->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    rp_http_conn_start(s->http, fd, &peer, RP_CONN_LOCAL);
}

static void on_signal(uv_signal_t *h, int sig)
{
    (void)sig;
    stop(h->data, RP_ECLOSED);
}

int rp_unseal_serve(const rp_config *cfg, const rp_keyring_opts *ko, rp_keyring **out, char *err,
                    size_t errlen)
{
    rp_http_limits limits = {cfg->header_timeout_ms, cfg->body_timeout_ms, cfg->idle_timeout_ms,
                             cfg->write_timeout_ms};
    rp_route_opts ho = {RP_M_READ, 0, NULL};
    rp_router *r = NULL, *empty = NULL;
    sealed s;
    int port = cfg->identity_listen.port, rc;

    memset(&s, 0, sizeof(s));
    s.ko = ko;
    s.fd = -1;
    *out = NULL;
    if (!cfg->identity_enabled) {
        snprintf(err, errlen,
                 "the root key is sealed by a passphrase and identity_listen is off: set "
                 "keys.passphrase_file, or enable identity_listen to unseal over loopback");
        return RP_EINVAL;
    }
    rc = rp_router_create("sealed.invalid", &r);
    if (rc == 0)
        rc = rp_router_create("sealed.invalid", &empty);
    if (rc == 0)
        rc = rp_router_add(r, "@", "/health", health, &ho);
    if (rc == 0) {
        rp_route_opts uo = {RP_M(RP_METHOD_POST), RP_UNSEAL_PASSPHRASE_MAX * 2, &s};
        rc = rp_router_add(r, "@", "/unseal", unseal, &uo);
    }
    if (rc != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    s.fd = rp_listen_tcp(cfg->identity_listen.host, &port, 16, err, errlen);
    if (s.fd < 0) {
        rc = s.fd;
        goto out;
    }
    if (uv_loop_init(&s.loop) != 0) {
        rc = RP_EIO;
        snprintf(err, errlen, "cannot create the loop");
        goto out;
    }
    rc = rp_http_ctx_create(&s.loop, empty, NULL, &limits, 0, &s.http);
    if (rc != 0) {
        snprintf(err, errlen, "out of memory");
        uv_loop_close(&s.loop);
        goto out;
    }
    rp_http_ctx_set_local_router(s.http, r);
    rp_http_ctx_on_closed(s.http, on_closed, &s);
    if (uv_poll_init(&s.loop, &s.poll, s.fd) != 0 || uv_signal_init(&s.loop, &s.sig_term) != 0 ||
        uv_signal_init(&s.loop, &s.sig_int) != 0)
        abort(); /* nothing is serving yet; a half-made loop is not worth unwinding */
    s.poll.data = s.sig_term.data = s.sig_int.data = &s;
    uv_poll_start(&s.poll, UV_READABLE, on_accept);
    uv_signal_start(&s.sig_term, on_signal, SIGTERM);
    uv_signal_start(&s.sig_int, on_signal, SIGINT);
    printf("{\"event\":\"sealed\",\"unseal\":\"http://%s:%d/unseal\",\"pid\":%d}\n",
           cfg->identity_listen.host, port, (int)getpid());
    fflush(stdout);
    rp_log_msg(RP_LOG_INFO, "serve.sealed", "waiting for the passphrase (rampart unseal)");
    uv_run(&s.loop, UV_RUN_DEFAULT);
    if (rp_http_ctx_conns(s.http) == 0 && !uv_is_closing((uv_handle_t *)&s.poll)) {
        uv_close((uv_handle_t *)&s.poll, NULL);
        uv_close((uv_handle_t *)&s.sig_term, NULL);
        uv_close((uv_handle_t *)&s.sig_int, NULL);
        uv_run(&s.loop, UV_RUN_DEFAULT);
    }
    rp_http_ctx_free(s.http);
    uv_loop_close(&s.loop);
    rc = s.result;
    if (rc == 0) {
        *out = s.kr;
        s.kr = NULL;
    } else {
        snprintf(err, errlen, "stopped while sealed");
    }
out:
    rp_keyring_close(s.kr);
    if (s.fd >= 0)
        close(s.fd);
    rp_router_free(r);
    rp_router_free(empty);
    return rc;
}
