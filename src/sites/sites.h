/*
 * sites.h - App Service: web apps as resources, each served at https://NAME.D/ from its live
 * release, deployed over HTTPS only at https://NAME.scm.D/api/zipdeploy (docs/sites.md).
 *
 * An app's content lives in releases: every deploy unpacks into a new directory
 * DATA/apps/NAME/releases/N (through sites/unzip.h, which refuses unsafe archives), and only
 * when that worked does one store write make N the live release; requests then switch to it at
 * once. Nothing is ever changed in place, so a failed or malicious deploy leaves the live
 * release exactly as it was. The newest RP_SITES_KEEP_RELEASES releases are kept for rollback.
 *
 * Management: /api/apps (list), /api/apps/NAME (PUT create, GET, DELETE),
 * /api/apps/NAME/releases (GET), /api/apps/NAME/rollback (POST {"release":N}), all behind
 * the identity service's authentication and RBAC (Microsoft.Web/sites/... actions at scope
 * /apps/NAME) and audited durably.
 *
 * Threads: open/close on the main thread; rp_sites_loop_start/stop on every loop thread that
 * serves requests (after rp_iam_loop_start), like the vault. Unpacking runs on libuv's thread
 * pool so that a deploy never stalls the loop that received it.
 */
#ifndef RP_SITES_SITES_H
#define RP_SITES_SITES_H

#include "http/router.h"
#include "iam/iam.h"
#include "net/tls.h"
#include "sandbox/helper.h"
#include "store/store.h"
#include "vault/vault.h"

#include <uv.h>

#define RP_SITES_NAME_MIN      2
#define RP_SITES_NAME_MAX      60
#define RP_SITES_KEEP_RELEASES 5
/* Deployment slots: NAME-SLOT.D, slot names 1-19 of [a-z0-9-] (Azure's limit), at most this
 * many per app (Azure's Standard tier: 5). */
#define RP_SITES_SLOT_MAX  19
#define RP_SITES_SLOTS_MAX 5
/* App processes run as uid = gid = RP_SITES_UID_BASE + n, one per app (no passwd entry): past
 * the ranges Debian and systemd hand out (subordinate ids, containers up to 0x6FFFFFFF). */
#define RP_SITES_UID_BASE 1879048192u
/* Largest zip a deploy accepts (Azure's zip deploy limit is 2,048 MB). */
#define RP_SITES_ZIP_MAX (1024ull * 1024 * 1024)
/* Largest request body an app process receives (Azure's front end limit is similar). */
#define RP_SITES_BODY_MAX (100u * 1024 * 1024)

typedef struct rp_sites rp_sites;

typedef struct rp_sites_opts {
    const char *domain;   /* D */
    int https_port;       /* for URLs (omitted when 443); rp_sites_set_port once bound */
    const char *data_dir; /* the install's data directory: apps live in DATA/apps */
    rp_store *store;      /* borrowed; must outlive the service */
    rp_iam *iam;          /* borrowed */
    rp_keyring *keyring;  /* borrowed: seals app settings under each app's KEK */
    rp_vault *vault;      /* borrowed, may be NULL: resolves Key Vault references */
    struct rp_oidc *oidc; /* borrowed, may be NULL: keys of external OpenID issuers (Easy Auth) */
    rp_helper *helper;    /* borrowed: starts app processes (sandbox/helper.h); outlives sites */
} rp_sites_opts;

/*
 * Opens the service: loads every app, opens its live release, and removes release directories
 * that no committed release owns (a deploy cut short by a crash). err names the cause.
 */
int rp_sites_open(const rp_sites_opts *o, rp_sites **out, char *err, size_t errlen);
/* All loops must have stopped. Accepts NULL. */
void rp_sites_close(rp_sites *s);

void rp_sites_set_port(rp_sites *s, int https_port);

/*
 * Starts every app's process, once the identity endpoint is known (rp_iam_set_endpoints): each
 * app's environment is built on the service thread first (settings, Key Vault references, its
 * managed identity session), then its process starts with it. Main thread, once.
 */
void rp_sites_start(rp_sites *s);

/* Per loop thread, after rp_iam_loop_start / before rp_iam_loop_stop. */
int rp_sites_loop_start(rp_sites *s, uv_loop_t *loop);
void rp_sites_loop_stop(rp_sites *s);

/* Registers "*" (the apps), "*.scm" (deployment) and /api/apps on D. */
int rp_sites_register(rp_sites *s, rp_router *r);

/*
 * The per-host TLS policy (rp_tls_set_policy's hook, arg = the rp_sites): an app's
 * minTlsVersion for NAME.D and NAME.scm.D, and a client-certificate request for NAME.D when its
 * clientCertMode is not off. Thread-safe.
 */
void rp_sites_tls_policy(void *arg, const char *host, rp_tls_host_policy *out);

/*
 * Valid app name: 2-60 of [a-z0-9-], starting and ending with a letter or digit, and not a
 * name the platform uses for its own hosts (login, vault, scm, events, blob, ...).
 */
int rp_sites_name_valid(const char *name);

#endif
