/*
 * mgmt.h - the management API on the bare domain: health, version, and (later) every
 * resource's control plane.
 *
 * Requests under /api/ are authenticated with the administrator credential as a bearer token
 * before anything else is looked at, so an unauthenticated caller learns nothing about which
 * endpoints exist. /health answers without authentication and says only "ok".
 * This is the seam the identity service (issue 3) replaces: rp_mgmt_authenticate is the one
 * place that decides who the caller is.
 */
#ifndef RP_SERVER_MGMT_H
#define RP_SERVER_MGMT_H

#include "http/router.h"
#include "server/admin.h"

typedef struct rp_mgmt rp_mgmt;

int rp_mgmt_create(rp_admin_creds *creds, const char *domain, rp_mgmt **out);
/* Replaces the credential set (after SIGHUP) and frees the old one. Takes ownership. */
int rp_mgmt_set_creds(rp_mgmt *m, rp_admin_creds *creds);
void rp_mgmt_free(rp_mgmt *m);
/* Registers /health and /api on the bare domain; API request bodies are limited to max_body. */
int rp_mgmt_register(rp_mgmt *m, rp_router *r, size_t max_body);
/* 0 if the request carries a valid administrator bearer token; otherwise answers 401 itself. */
int rp_mgmt_authenticate(rp_mgmt *m, rp_req *req);

#endif
