/*
 * appenv.h - what an app process is started with besides its code (docs/sites.md "App
 * settings", "Managed identity"): its app settings and connection strings, opened from their
 * sealed form, Key Vault references resolved with the app's system-assigned managed identity,
 * and IDENTITY_ENDPOINT / IDENTITY_HEADER of a workload session for that identity.
 *
 * Building one blocks (identity and session writes, store reads, secret reads with their durable
 * audit records), so it happens on one service thread of its own, fed by a queue: the sites
 * service asks for a build when an app is created, its settings change or the server starts,
 * and gets the result through a callback on that thread. The same thread ends sessions, deletes
 * the identity and destroys the settings' KEK when an app is deleted, in queue order, so a
 * delete and a re-create of one name cannot interleave. Versionless references are built again
 * every RP_APPENV_REFRESH_S.
 *
 * Storage of the settings: app_secrets.wdek (the DEK wrapped by the app's KEK) and obj.blobs
 * "apps/NAME/settings" (the sealed JSON, settings.h's shape).
 *
 * An app's identity and KEK belong to this app, not to its name: their resource is
 * "/apps/NAME/instance/ID" (rp_appenv_resource, ID the app's object id), so an app created
 * again under a deleted one's name never inherits the old identity, role assignments, sessions
 * or key, even when the deleted one's clean-up was cut short (rp_appenvs_sweep removes such
 * leftovers at start-up).
 */
#ifndef RP_SITES_APPENV_H
#define RP_SITES_APPENV_H

#include "base/buf.h"
#include "crypto/keyring.h"
#include "iam/iam.h"
#include "store/store.h"
#include "vault/vault.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>

#define RP_APPENV_REFRESH_S   86400 /* versionless Key Vault references, as Azure */
#define RP_APPENV_RETRY_S     300   /* references that did not resolve */
#define RP_APPENV_FAILED_S    60    /* an environment that could not be built at all */
#define RP_APPENV_RES_MAX     320   /* "/apps/NAME/instance/ID/functions/FUNCTION" */
#define RP_APPENV_FN_MAX      64    /* functions of one app with an identity of their own */
#define RP_APPENV_FN_NAME_MAX 128

/* "/apps/NAME/instance/ID": the keyring resource and system identity resource of one app. */
int rp_appenv_resource(const char *app, const char *id, char *out, size_t cap);

/* One app's built environment: immutable, reference-counted, wiped when the last goes. */
typedef struct rp_appenv rp_appenv;

rp_appenv *rp_appenv_ref(rp_appenv *e);
void rp_appenv_unref(rp_appenv *e); /* accepts NULL */
/* "NAME=value" strings for the process (borrowed; *n of them). */
const char *const *rp_appenv_vars(const rp_appenv *e, size_t *n);
/* 1 when a and b give a process the same variables (NULL is no variables). */
int rp_appenv_same(const rp_appenv *a, const rp_appenv *b);
/* The status of each reference: {"appSettings": {NAME: {...}}, "connectionStrings": {...}}
 * in Azure's ApiKVReference shape (borrowed). */
const json_t *rp_appenv_refs(const rp_appenv *e);
/* The app's system-assigned identity: object id and client id ("" if none). */
const char *rp_appenv_principal(const rp_appenv *e);
const char *rp_appenv_client(const rp_appenv *e);

/*
 * Beyond Azure, functions of a function app with an identity of their own (function.json
 * identity SystemAssigned): resource "/apps/NAME/instance/ID/functions/F", each with its own
 * workload session. rp_appenv_fn_count / rp_appenv_fn_name list them (in the order the owner
 * gave); rp_appenv_fn_vars gives the variables of F's worker: the app's settings without the
 * app's IDENTITY_* and with F's own (NULL when F has none, *n 0); principal and client as above
 * ("" when F has none). All borrowed from e.
 */
size_t rp_appenv_fn_count(const rp_appenv *e);
const char *rp_appenv_fn_name(const rp_appenv *e, size_t i);
const char *const *rp_appenv_fn_vars(const rp_appenv *e, const char *fn, size_t *n);
const char *rp_appenv_fn_principal(const rp_appenv *e, const char *fn);
const char *rp_appenv_fn_client(const rp_appenv *e, const char *fn);

typedef struct rp_appenvs rp_appenvs;

typedef struct rp_appenvs_opts {
    const char *domain;
    rp_iam *iam;
    rp_vault *vault; /* NULL: references resolve to OtherReasons */
    rp_keyring *kr;
    rp_store *store;
    /* Called on the service thread with a new reference to app's environment (the callee owns
     * it), or NULL when it could not be built (already logged; it is tried again later). */
    void (*ready)(void *arg, const char *app, const char *id, rp_appenv *env);
    /* rp_appenvs_sweep's question: does this app instance resource still exist? (Also asked
     * for a function's "/apps/NAME/instance/ID/functions/F": does the instance exist.) */
    int (*exists)(void *arg, const char *resource);
    /* The functions of app (object id id) that want an identity of their own now: writes up
     * to cap names of at most RP_APPENV_FN_NAME_MAX bytes into names, returns how many. NULL:
     * none. Called on the service thread at each build. */
    size_t (*fn_identities)(void *arg, const char *app, const char *id,
                            char names[][RP_APPENV_FN_NAME_MAX + 1], size_t cap);
    void *arg;
} rp_appenvs_opts;

int rp_appenvs_open(const rp_appenvs_opts *o, rp_appenvs **out);
/* Finishes the job in hand, drops the rest of the queue, joins the thread. Accepts NULL. */
void rp_appenvs_close(rp_appenvs *q);

/*
 * Queues a build of the environment of app (object id id). session 0 when its process must not
 * get an identity session (no process, or an isolated one that cannot reach the endpoint): a
 * running session is ended. A session, once started, is kept across builds (the process keeps
 * its IDENTITY_HEADER, so a build that changes nothing else restarts nothing) unless rotate is
 * set: new code or a new command gets a new header, and the old one stops working. The
 * functions that opts.fn_identities names get their identities and sessions the same way; the
 * identities of functions it no longer names are deleted, with their role assignments.
 * Thread-safe, never blocks.
 */
void rp_appenvs_build(rp_appenvs *q, const char *app, const char *id, int session, int rotate);
/* Queues the clean-up of a deleted app: its sessions, identity and settings KEK. Queued
 * clean-ups still run when the service closes. */
void rp_appenvs_forget(rp_appenvs *q, const char *app, const char *id);
/* Queues the removal of identities (and their sessions) of app instances that no longer exist
 * (opts.exists): what a crash between a delete and its clean-up left; and ends every session an
 * earlier run of the server started for the others (none of their processes runs any more). */
void rp_appenvs_sweep(rp_appenvs *q);

/*
 * Reads and opens app's sealed settings through db (a reader), into *out (NULL: none set).
 * Thread-safe; no I/O beyond db once the KEK is in memory. 0, RP_EDB, RP_EPERM (+reason: the
 * KEK's customer key cannot be used), RP_ECRYPTO, RP_EPARSE, RP_ENOMEM.
 */
int rp_appenv_settings_read(sqlite3 *db, rp_keyring *kr, const char *app, const char *id,
                            json_t **out, const char **reason);
/*
 * Seals settings (the whole object) for app: makes sure the app has a KEK (blocking: thread
 * pool), then a fresh DEK. Appends the wrapped DEK to wdek and the ciphertext to ct.
 */
int rp_appenv_settings_seal(rp_keyring *kr, const char *app, const char *id, const json_t *settings,
                            rp_buf *wdek, rp_buf *ct, const char **reason);

/*
 * The same for another sealed document of the app: object "settings" (table app_secrets, blob
 * "apps/NAME/settings") or "fnkeys" (app_fnkeys, "apps/NAME/fnkeys", a function app's keys).
 * The object's name is also the label its DEK is bound to. RP_EINVAL for another object.
 */
int rp_appenv_sealed_read(sqlite3 *db, rp_keyring *kr, const char *app, const char *id,
                          const char *object, json_t **out, const char **reason);
int rp_appenv_sealed_seal(rp_keyring *kr, const char *app, const char *id, const char *object,
                          const json_t *doc, rp_buf *wdek, rp_buf *ct, const char **reason);

#endif
