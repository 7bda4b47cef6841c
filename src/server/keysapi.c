/*
 * keysapi.c - GET /api/keys and POST /api/keys/rotate-root (keysapi.h).
 */
#include "server/keysapi.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "iam/authn.h"
#include "monitor/audit.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#define ACT_READ   "Microsoft.Rampart/keys/read"
#define ACT_ROTATE "Microsoft.Rampart/keys/rotate/action"

typedef struct rotation {
    uv_work_t work;
    rp_keysapi *api;
    rp_req *req; /* NULL once the request is gone */
    rp_identity who;
    uint32_t before, gen;
    size_t keks;
    int rc;
    char err[256];
} rotation;

static const char *provider_name(rp_root_provider p)
{
    return p == RP_ROOT_PASSPHRASE ? "passphrase" : p == RP_ROOT_PKCS11 ? "pkcs11" : "file";
}

static void cancel(void *arg)
{
    rotation **slot = arg;

    if (*slot != NULL)
        (*slot)->req = NULL;
}

static void rotate_work(uv_work_t *w)
{
    rotation *r = w->data;

    r->rc = rp_keyring_rotate_root(r->api->kr, &r->gen, r->err, sizeof(r->err));
}

static void answer(rotation *r, int ok)
{
    if (r->req != NULL) {
        rotation **slot = r->req->handler_data;
        if (slot != NULL)
            *slot = NULL;
        if (ok)
            rp_resp_json(r->req, 200,
                         json_pack("{s:I,s:I,s:I}", "generation", (json_int_t)r->gen, "previous",
                                   (json_int_t)r->before, "keks", (json_int_t)r->keks));
        else if (r->rc != 0)
            rp_resp_error(r->req, 500, "RotationFailed",
                          "the root key was not rotated; the previous generation stays in force");
        else
            rp_resp_error(r->req, 500, "InternalError",
                          "the root key was rotated but the audit record could not be written");
    }
    rp_free(r);
}

static void audited(int status, void *arg)
{
    answer(arg, status == 0);
}

static void rotate_done(uv_work_t *w, int status)
{
    rotation *r = w->data;
    rp_keyring_status st;
    json_t *detail;
    int rc;

    if (status != 0 && r->rc == 0)
        r->rc = RP_EIO;
    rp_keyring_get_status(r->api->kr, &st);
    r->keks = st.keks;
    detail = r->rc == 0 ? json_pack("{s:I,s:I}", "generation", (json_int_t)r->gen, "previous",
                                    (json_int_t)r->before)
                        : json_pack("{s:s}", "error", r->err);
    if (r->rc != 0)
        rp_log_msg(RP_LOG_ERROR, "keys.rotate", r->err);
    rc = rp_iam_audit(r->api->iam, r->req, &r->who, "change", ACT_ROTATE, "/",
                      r->rc == 0 ? "success" : "failure", detail, r->rc == 0 ? RP_AUDIT_DURABLE : 0,
                      r->rc == 0 ? audited : NULL, r);
    json_decref(detail);
    if (r->rc == 0 && rc == 0)
        return; /* audited answers */
    answer(r, 0);
}

static void handle(rp_req *req)
{
    rp_keysapi *api = req->route_data;
    rp_authn_policy pol = {RP_AUTHN_ADMIN | RP_AUTHN_BEARER | RP_AUTHN_CLIENT_CERT, "management"};
    rp_identity who;
    rp_authn_status st = rp_authn(api->iam, req, &pol, &who);

    if (st != RP_AUTHN_OK) {
        rp_authn_reply(req, st);
        return;
    }
    if (strcmp(req->path, "/api/keys") == 0) {
        rp_keyring_status ks;
        if (req->method != RP_METHOD_GET && req->method != RP_METHOD_HEAD) {
            rp_resp_header(req, "Allow", "GET, HEAD");
            rp_resp_error(req, 405, "MethodNotAllowed", "use GET");
            return;
        }
        if (!rp_authz(api->iam, req, &who, ACT_READ, 0, "/")) {
            rp_authz_reply(req, &who, ACT_READ, "/");
            return;
        }
        rp_keyring_get_status(api->kr, &ks);
        rp_resp_json(req, 200,
                     json_pack("{s:s,s:I,s:I,s:I}", "provider", provider_name(ks.provider),
                               "generation", (json_int_t)ks.generation, "keks", (json_int_t)ks.keks,
                               "cmkKeks", (json_int_t)ks.cmk_keks));
        return;
    }
    if (strcmp(req->path, "/api/keys/rotate-root") == 0) {
        rp_keyring_status ks;
        rotation *r;
        rotation **slot;
        if (req->method != RP_METHOD_POST) {
            rp_resp_header(req, "Allow", "POST");
            rp_resp_error(req, 405, "MethodNotAllowed", "use POST");
            return;
        }
        if (!rp_authz(api->iam, req, &who, ACT_ROTATE, 0, "/")) {
            rp_authz_reply(req, &who, ACT_ROTATE, "/");
            return;
        }
        r = rp_calloc(1, sizeof(*r));
        slot = rp_arena_alloc(req->arena, sizeof(*slot));
        if (r == NULL || slot == NULL || rp_arena_add_cleanup(req->arena, cancel, slot) != 0) {
            rp_free(r);
            rp_resp_error(req, 500, "InternalError", "out of memory");
            return;
        }
        rp_keyring_get_status(api->kr, &ks);
        r->api = api;
        r->req = req;
        r->who = who;
        r->before = ks.generation;
        r->work.data = r;
        *slot = r;
        req->handler_data = slot;
        if (uv_queue_work(rp_req_loop(req), &r->work, rotate_work, rotate_done) != 0) {
            *slot = NULL;
            rp_free(r);
            rp_resp_error(req, 500, "InternalError", "cannot start the rotation");
        }
        return;
    }
    rp_resp_error(req, 404, "NotFound", "no such path");
}

int rp_keysapi_register(rp_keysapi *api, rp_router *r)
{
    rp_route_opts o = {RP_M_READ | RP_M(RP_METHOD_POST), 0, api};

    return rp_router_add(r, "@", "/api/keys", handle, &o);
}
