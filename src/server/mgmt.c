/*
 * mgmt.c - management API handlers.
 *
 * The credential set is read on every /api/ request from several loop threads and replaced
 * rarely (SIGHUP): readers share a read lock for the few microseconds of a check, a reload
 * swaps the set under the write lock and frees the old one.
 */
#include "server/mgmt.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"

#include <pthread.h>
#include <string.h>

struct rp_mgmt {
    pthread_rwlock_t lock;
    rp_admin_creds *creds;
    char *domain;
    size_t max_body;
};

int rp_mgmt_create(rp_admin_creds *creds, const char *domain, rp_mgmt **out)
{
    rp_mgmt *m = rp_calloc(1, sizeof(*m));

    if (m == NULL)
        return RP_ENOMEM;
    m->domain = rp_strdup(domain);
    if (m->domain == NULL) {
        rp_free(m);
        return RP_ENOMEM;
    }
    m->creds = creds;
    if (pthread_rwlock_init(&m->lock, NULL) != 0) {
        rp_free(m->domain);
        rp_free(m);
        return RP_ENOMEM;
    }
    *out = m;
    return 0;
}

int rp_mgmt_set_creds(rp_mgmt *m, rp_admin_creds *creds)
{
    rp_admin_creds *old;

    pthread_rwlock_wrlock(&m->lock);
    old = m->creds;
    m->creds = creds;
    pthread_rwlock_unlock(&m->lock);
    rp_admin_creds_free(old);
    return 0;
}

void rp_mgmt_free(rp_mgmt *m)
{
    if (m == NULL)
        return;
    rp_admin_creds_free(m->creds);
    pthread_rwlock_destroy(&m->lock);
    rp_free(m->domain);
    rp_free(m);
}

int rp_mgmt_authenticate(rp_mgmt *m, rp_req *req)
{
    rp_str auth = rp_req_header(req, "authorization");
    int rc;

    if (auth.p == NULL || auth.n < 7 || !rp_str_eq_nocase((rp_str){auth.p, 7}, "bearer ")) {
        rp_resp_header(req, "WWW-Authenticate", "Bearer realm=\"rampart\"");
        rp_resp_error(req, 401, "Unauthorized", "a bearer token is required");
        return RP_EPERM;
    }
    auth = rp_str_trim((rp_str){auth.p + 7, auth.n - 7});
    pthread_rwlock_rdlock(&m->lock);
    rc = rp_admin_creds_check(m->creds, auth.p, auth.n);
    pthread_rwlock_unlock(&m->lock);
    if (rc != 0) {
        rp_resp_header(req, "WWW-Authenticate",
                       "Bearer realm=\"rampart\", error=\"invalid_token\"");
        rp_resp_error(req, 401, "InvalidToken", "the bearer token is not valid");
        return RP_EPERM;
    }
    return 0;
}

static void health(rp_req *req)
{
    static const char body[] = "{\"status\":\"ok\"}";

    rp_resp_header(req, "Cache-Control", "no-store");
    rp_resp_send(req, 200, "application/json; charset=utf-8", body, sizeof(body) - 1);
}

static void api(rp_req *req)
{
    rp_mgmt *m = req->route_data;

    if (rp_mgmt_authenticate(m, req) != 0)
        return;
    rp_resp_header(req, "Cache-Control", "no-store");
    if (strcmp(req->path, "/api/version") == 0) {
        if (req->method != RP_METHOD_GET && req->method != RP_METHOD_HEAD) {
            rp_resp_header(req, "Allow", "GET, HEAD");
            rp_resp_error(req, 405, "MethodNotAllowed", "method not allowed for this resource");
            return;
        }
        rp_resp_json(req, 200,
                     json_pack("{s:s,s:s,s:s}", "name", "rampart", "version", RP_VERSION, "domain",
                               m->domain));
        return;
    }
    rp_resp_error(req, 404, "NotFound", "no such resource");
}

int rp_mgmt_register(rp_mgmt *m, rp_router *r, size_t max_body)
{
    rp_route_opts h = {RP_M_READ, 0, m};
    /* Every method reaches the API handler so that authentication comes before 405/404. */
    rp_route_opts a = {RP_M_ANY, max_body, m};
    int rc = rp_router_add(r, "@", "/health", health, &h);

    if (rc == 0)
        rc = rp_router_add(r, "@", "/api", api, &a);
    return rc;
}
