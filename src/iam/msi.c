/*
 * msi.c - the managed identity endpoint (App Service protocol, api-version 2019-08-01) on
 * the loopback-only listener (shared/specs/azure-data-planes.md §1.2).
 *
 * A workload proves which session it belongs to with X-IDENTITY-HEADER (32 random bytes,
 * only the SHA-256 is stored); the session names the identities it may use, the first being
 * the default. Every error is 400 with App Service's body: the SDK retries 404 for 25 s but
 * gives up on 400 at once.
 */
#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"
#include "http/router.h"
#include "iam/iam_int.h"

#include <openssl/crypto.h>
#include <string.h>

static void msi_error(rp_req *req, const char *msg)
{
    rp_resp_header(req, "Cache-Control", "no-store");
    rp_resp_json(
        req, 400,
        json_pack("{s:i,s:s,s:s}", "statusCode", 400, "message", msg, "correlationId", req->id));
}

static int session_allows(const rp__session *x, const char *id)
{
    for (size_t i = 0; i < x->nprincipals; i++)
        if (strcmp(x->principals[i], id) == 0)
            return 1;
    return 0;
}

static void msi_token(rp_req *req)
{
    rp_iam *iam = req->route_data;
    rp_str hdr = rp_req_header(req, "x-identity-header");
    const char *ver = rp_req_query(req, "api-version");
    const char *res = rp_req_query(req, "resource");
    const char *cid = rp_req_query(req, "client_id");
    const char *oid = rp_req_query(req, "object_id");
    const char *mirid = rp_req_query(req, "mi_res_id");
    const char *resource;
    const rp__session *x;
    const rp__principal *p = NULL;
    unsigned char h[32];
    rp__snap *s;
    char *jwt = NULL;
    int64_t exp = 0, now = rp__now();

    if (hdr.p == NULL || hdr.n == 0 || hdr.n > 256) {
        rp__iam_audit(iam, req, NULL, "authn", "msi.token", "/", "failure",
                      json_pack("{s:s}", "reason", "no X-IDENTITY-HEADER"));
        msi_error(req, "The X-IDENTITY-HEADER header is missing or not valid.");
        return;
    }
    if (ver == NULL || strcmp(ver, "2019-08-01") != 0) {
        msi_error(req, "api-version must be 2019-08-01.");
        return;
    }
    if (res == NULL) {
        msi_error(req, "The resource parameter is required.");
        return;
    }
    resource = rp__iam_resource_match(iam, res, strlen(res));
    if (resource == NULL) {
        msi_error(req, "The resource is not one this platform issues tokens for.");
        return;
    }
    if ((cid != NULL) + (oid != NULL) + (mirid != NULL) > 1) {
        msi_error(req, "Give at most one of client_id, object_id and mi_res_id.");
        return;
    }
    if (rp__iam_sha256(hdr.p, hdr.n, h) != 0) {
        msi_error(req, "internal error");
        return;
    }
    s = rp__iam_snap(iam);
    x = rp__iam_session(s, h);
    OPENSSL_cleanse(h, sizeof(h));
    if (x == NULL || x->expires_at <= now) {
        rp__iam_audit(iam, req, NULL, "authn", "msi.token", "/", "failure",
                      json_pack("{s:s}", "reason", "unknown or expired session"));
        msi_error(req, "The X-IDENTITY-HEADER does not name a current workload session.");
        goto out;
    }
    if (cid != NULL) {
        p = rp__iam_principal_by_client(s, cid);
    } else if (oid != NULL) {
        p = rp__iam_principal(s, oid);
    } else if (mirid != NULL) {
        const char *name = strncmp(mirid, "/identities/", 12) == 0 ? mirid + 12 : NULL;
        p = name ? rp__iam_principal_by_name(s, RP_PRINCIPAL_MI, name) : NULL;
    } else {
        p = rp__iam_principal(s, x->principals[0]);
    }
    if (p == NULL || p->kind != RP_PRINCIPAL_MI || !session_allows(x, p->id)) {
        rp__iam_audit(iam, req, x->principals[0], "authn", "msi.token", "/", "failure",
                      json_pack("{s:s,s:s?}", "reason", "identity not assigned to the workload",
                                "client_id", cid));
        msi_error(req, "No managed identity with that id is assigned to this workload.");
        goto out;
    }
    if (rp__iam_mint(iam, s, p, resource, now, &jwt, &exp) != 0) {
        msi_error(req, "The token could not be issued.");
        goto out;
    }
    rp__iam_audit(iam, req, p->id, "authn", "msi.token", p->scope ? p->scope : "/", "success",
                  json_pack("{s:s,s:s}", "resource", resource, "session", x->id));
    rp_resp_header(req, "Cache-Control", "no-store");
    rp_resp_json(req, 200,
                 json_pack("{s:s,s:I,s:s,s:s,s:s}", "access_token", jwt, "expires_on",
                           (json_int_t)exp, "resource", resource, "token_type", "Bearer",
                           "client_id", p->client_id));
    OPENSSL_cleanse(jwt, strlen(jwt));
    rp_free(jwt);
out:
    rp__iam_snap_done(iam, s);
}

int rp_iam_register_local(rp_iam *iam, rp_router *r)
{
    rp_route_opts o = {RP_M_READ, 0, iam};

    return rp_router_add(r, "@", "/msi/token", msi_token, &o);
}
