/*
 * request.h - what a handler sees of a request, and how it answers.
 *
 * A handler is called once per request, after the head has been parsed, checked, normalised
 * and routed, and before the body is read. It answers synchronously or later (from a callback
 * on the same loop); either way it calls exactly one of the rp_resp_send* functions, or
 * rp_resp_begin + rp_resp_file. Everything a request allocates lives in req->arena and dies
 * when the response is finished.
 *
 * Bodies: call rp_req_read_body to get the whole body (bounded by the route's max_body) or
 * rp_req_stream_body to receive it in spans as it arrives, at once or later (the body waits
 * unread until the handler asks). A handler that answers without reading the body lets the
 * connection discard it (within the route limit); more than that closes the connection. The
 * front door answers 413 by itself when a body is over the limit.
 *
 * Asynchronous handlers: if the connection goes away before the answer (server stop, a
 * fatal error), the request is freed and req->arena's cleanups run. A handler with pending
 * work registers a cleanup (rp_arena_add_cleanup) that cancels it, and never touches req
 * after that cleanup has run.
 */
#ifndef RP_HTTP_REQUEST_H
#define RP_HTTP_REQUEST_H

#include "base/arena.h"
#include "base/buf.h"
#include "base/str.h"
#include "http/codec.h"
#include "http/query.h"

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct rp_req rp_req;
typedef struct rp_route rp_route;
typedef void (*rp_handler_fn)(rp_req *req);
typedef void (*rp_body_done_fn)(rp_req *req);
typedef int (*rp_body_data_fn)(rp_req *req, const char *data, size_t len);

struct rp_conn;

/* Public fields are read-only for handlers. */
struct rp_req {
    rp_arena *arena;
    const rp_http_head *head;
    rp_method method;
    const char *path; /* normalised (see http/path.h), NUL-terminated */
    size_t path_len;
    rp_query_param *query;
    size_t nquery;
    rp_str host;       /* lowercased, no port */
    rp_str host_label; /* the label a wildcard route matched ("myvault" in myvault.vault.D) */
    const char *client_ip;
    int secure;  /* arrived over TLS */
    char id[37]; /* request id, also sent as x-ms-request-id */
    const rp_route *route;
    void *route_data;     /* rp_route_opts.data of the matched route */
    rp_buf body;          /* filled by rp_req_read_body */
    void *handler_data;   /* free for the handler's per-request state (allocate in arena) */
    int status;           /* the status answered, once its head went out (0 before: also in
                             an arena cleanup of a request whose client went away first) */
    struct rp_conn *conn; /* private */
};

/* Receives the whole body into req->body (at most the route's max_body), then calls done. */
void rp_req_read_body(rp_req *req, rp_body_done_fn done);
/* Receives the body in spans; on_data returning non-zero aborts the request (500, close). */
void rp_req_stream_body(rp_req *req, rp_body_data_fn on_data, rp_body_done_fn done);
/* The loop the request is served on (for uv_queue_work and timers of async handlers). */
struct uv_loop_s;
struct uv_loop_s *rp_req_loop(const rp_req *req);
/* Value of the first header named name, or an empty view with p == NULL. */
rp_str rp_req_header(const rp_req *req, const char *name);
/* How many headers named name the request carries. */
size_t rp_req_header_count(const rp_req *req, const char *name);
/* First query parameter named name (decoded), or NULL. */
const char *rp_req_query(const rp_req *req, const char *name);

/* The connection's TLS version: 13, 12, 11 (older), or 0 over plain HTTP. */
int rp_req_tls_version(const rp_req *req);
/* The verified TLS client certificate, if the client sent one (borrowed), else NULL. */
struct x509_st;
struct x509_st *rp_req_peer_cert(const rp_req *req);

/* Adds a response header (before rp_resp_send/rp_resp_begin). The strings are copied. */
int rp_resp_header(rp_req *req, const char *name, const char *value);
/* Sends a complete response. body may be NULL when len is 0. HEAD requests get no body. */
void rp_resp_send(rp_req *req, int status, const char *content_type, const void *body, size_t len);
/* Sends obj as application/json; steals the reference. */
void rp_resp_json(rp_req *req, int status, json_t *obj);
/* Sends {"error":{"code":code,"message":message}} with status. */
void rp_resp_error(rp_req *req, int status, const char *code, const char *message);
/*
 * Sends status and headers with a body of len bytes read from fd at offset. Takes ownership of
 * fd (closed when done or on error). content_type may be NULL.
 */
void rp_resp_file(rp_req *req, int status, const char *content_type, int fd, off_t offset,
                  off_t len);
/*
 * A streamed response (a reverse proxy's): rp_resp_start sends the status and headers (len >= 0:
 * Content-Length len; len < 0: chunked, or until close for HTTP/1.0 clients), rp_resp_write
 * queues body bytes, rp_resp_end finishes (complete 0: the body was cut short, and the
 * connection closes so the client cannot take it for whole). HEAD, 204 and 304 answers drop
 * the body. rp_resp_write returns 0, RP_EAGAIN when the client is slower than the writer (the
 * bytes were queued; write no more until the rp_resp_on_drain callback, one-shot, runs), or
 * RP_ECLOSED / RP_ENOMEM.
 */
int rp_resp_start(rp_req *req, int status, const char *content_type, int64_t len);
int rp_resp_write(rp_req *req, const void *data, size_t n);
void rp_resp_on_drain(rp_req *req, void (*cb)(rp_req *req));
void rp_resp_end(rp_req *req, int complete);
/* Stops (1) or resumes (0) delivering a streamed request body: flow control towards a slow
 * consumer. While paused nothing more is read from the client. */
void rp_req_pause_body(rp_req *req, int paused);

/* Replaces the reason phrase of this response's status line ("Ip Forbidden"). Copied.
 * 0, RP_EINVAL (control or non-ASCII bytes) or RP_ENOMEM. */
int rp_resp_reason(rp_req *req, const char *reason);
/* Marks the connection to close after this response. */
void rp_resp_close(rp_req *req);

const char *rp_http_reason(int status);

#endif
