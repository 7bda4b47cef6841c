/*
 * fnhost.h - the functions host's HTTP side for one function app: what happens to a request to
 * https://APP.D/ once the front door, access restrictions, TLS settings and built-in
 * authentication have let it through (docs/functions.md "Function apps").
 *
 *   /admin/...    the host's keys API (master key only, and only in the x-functions-key header:
 *                 a master key in a URL would end up in logs and browser histories)
 *   /runtime/...  404 (the extension webhooks come with the services that use them)
 *   otherwise     the HTTP function whose route matches (fnapp), after its authLevel check:
 *                 anonymous; function (a host or that function's key, or the master key); admin
 *                 (the master key). The key comes from x-functions-key, else ?code=; a failed
 *                 check is 401 with an empty body, as Azure answers. No match, or a disabled
 *                 function, is 404 with an empty body.
 *
 * A matched call goes to the app's custom handler on 127.0.0.1:port:
 *   - forwarded (host.json enableForwardingHttpRequest / enableProxyingHttpRequest, for a
 *     function whose only bindings are its httpTrigger and an http output): the request as it
 *     came, through sites/proxy (streamed, pooled connections), with the front door's headers;
 *   - otherwise as an invocation: POST /FUNCTION with {"Data": {TRIGGER: {Url, Method, Query,
 *     Headers, Params, Identities, Body}}, "Metadata": {...}} (functions/invoke), and the answer's
 *     Outputs[HTTP OUTPUT] (or ReturnValue for "$return") becomes the response: statusCode,
 *     headers, body. A handler answering non-2xx, or an answer without the output, is 500.
 * functionTimeout bounds each call: 504 when it passes (the worker keeps running; only this call
 * ends). A body over RP_FNHOST_BODY_MAX is 413 in invocation mode.
 *
 * Throttle (functions/gate): a call that passed its key check takes a slot of the app's gate
 * (maxConcurrentRequests); one over maxOutstandingRequests is 429 "Too Busy" with Retry-After: 1
 * and an empty body, one under it waits in line (its body is read meanwhile in invocation mode;
 * a forwarded one goes to the proxy when its turn comes). Every call from there on becomes one
 * record of the app's invocation log (functions/invlog) when its request ends: Succeeded when
 * the handler answered, Failed when it did not (or the host answered 5xx for it), TimedOut,
 * Throttled, or Cancelled when the client went away first.
 *
 * Threads: rp_fnhost_serve runs on the request's loop thread; everything it is given is
 * borrowed for the call only (it copies what outlives it).
 */
#ifndef RP_FUNCTIONS_FNHOST_H
#define RP_FUNCTIONS_FNHOST_H

#include "functions/fnapp.h"
#include "functions/gate.h"
#include "functions/invlog.h"
#include "functions/keyset.h"
#include "http/request.h"
#include "sites/proxy.h"

#define RP_FNHOST_BODY_MAX   (4u << 20) /* request body of an invocation (not forwarded) */
#define RP_FNHOST_ANSWER_MAX (8u << 20) /* the handler's invocation answer */
#define RP_FNHOST_START_MS   30000      /* a call waits this long for its handler to start */

/*
 * A change to the app's keys the admin API asks for: scope "host", "system", "master" or
 * "functions/NAME"; value NULL generates one; del deletes. The owner stores it (sealed) and
 * answers req itself: 200/201 {"name","value","links":[]} for a set, 204 for a delete, 404 for
 * a missing key, 400 for a refused name or value.
 */
typedef void (*rp_fnhost_keys_fn)(void *arg, rp_req *req, const char *scope, const char *name,
                                  const char *value, int del);

typedef struct rp_fnhost_target {
    const rp_fn_app *app;
    const rp_fn_keyset *keys;  /* NULL: none yet (only anonymous functions can be called) */
    int port;                  /* the handler's loopback port; 0: not running (503) */
    const char *origin;        /* "https://APP.D[:port]", for the invocation's Url */
    const char *client_cert;   /* as rp_proxy_target's */
    const rp_proxy_hdr *extra; /* Easy Auth's principal headers, as rp_proxy_target's */
    size_t nextra;
    /* Where function fn answers when its call is let through: the port of the app's handler or,
     * own set, of fn's own worker (beyond Azure: a function with its own identity); 0 while it
     * is starting (the call waits, up to RP_FNHOST_START_MS, and is recorded as cold); < 0 when
     * nothing runs it (503). *slot: the instance it chose (its calls in flight are counted
     * until release), or -1. NULL: port, as given. Called on the loop thread, also after
     * rp_fnhost_serve returned (app_name is copied). */
    int (*resolve)(void *arg, const char *app, const char *fn, int own, int *slot);
    /* The call that resolve placed on instance slot (*slot >= 0) has ended. */
    void (*release)(void *arg, const char *app, int slot);
    void *resolve_arg;
    const char *app_name;
    rp_fn_gate *gate;              /* the app's throttle, or NULL (borrowed: the host refs it) */
    rp_fn_invlog *log;             /* the app's invocation log, or NULL (likewise) */
    rp_fnhost_keys_fn keys_change; /* NULL: the admin API only reads */
    void *keys_arg;
} rp_fnhost_target;

/* Answers req (always). */
void rp_fnhost_serve(rp_req *req, const rp_fnhost_target *t);

#endif
