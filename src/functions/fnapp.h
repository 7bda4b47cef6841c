/*
 * fnapp.h - a function app's index: everything the functions host needs from one release
 * directory, read once when the release is deployed (or at start-up) and then shared read-only
 * by every loop thread (docs/functions.md "Function apps").
 *
 * Loading reads DIR/host.json and every DIR/NAME/function.json (NAME a direct subdirectory of
 * the release root; subdirectories without a function.json are not functions and are skipped,
 * as Azure skips them), parses them with fnconfig, compiles each enabled HTTP trigger's route
 * with the route module, refuses two enabled functions whose routes conflict (rp_route_conflict)
 * while their methods overlap, and sorts the routes as the host does (rp_route_order, stable:
 * ties keep function-name order). Files are opened relative to the release's directory
 * descriptor one component at a time with O_NOFOLLOW: a symbolic link where a file or folder is
 * expected is refused ("NAME/function.json: not a regular file"), so nothing outside the release
 * is ever read. Each file is read whole, at most RP_FN_FILE_MAX bytes.
 *
 * Errors go to err as one line for the app's owner, naming the file and the field, e.g.
 *   host.json: customHandler: required (rampart runs custom handlers only)
 *   host.json: customHandler.description.defaultExecutablePath: 'bin/handler' is not an
 *       executable file in the app (no execute permission)
 *   orders/function.json: bindings[0].route: segment 2 ('{id:foo}'): unknown constraint 'foo'
 *   orders/function.json: bindings[0].route: conflicts with the route of function 'list'
 * fnconfig's and route's own lines are passed on as they are (fnconfig's already name the file).
 *
 * Threads and ownership: an rp_fn_app is immutable after rp_fn_app_load; any number of threads
 * may read it at once. The loader's caller owns it and frees it with rp_fn_app_free once no
 * reader is left.
 */
#ifndef RP_FUNCTIONS_FNAPP_H
#define RP_FUNCTIONS_FNAPP_H

#include "functions/fnconfig.h"
#include "functions/route.h"

#include <stddef.h>

#define RP_FN_FUNCTIONS_MAX 256 /* function folders in one app */
#define RP_FN_COMMAND_MAX   8192

typedef struct rp_fn_app rp_fn_app;

/*
 * Indexes the release whose root directory is open as dirfd (not closed, not moved: every open
 * is relative to it). Requirements beyond fnconfig's:
 *   - host.json exists (else RP_ENOENT with "host.json: not found: a function app needs one")
 *     and has a customHandler or httpWorker section (RP_EPARSE otherwise);
 *   - when the handler's exe_in_app is 1, exe names a regular file in the release (O_NOFOLLOW per
 *     component) with an execute bit set; when it is 0 and a regular file of that name is in the
 *     root, the same; a bare name with no such file (nothing, or a directory) is left to PATH,
 *     as Azure does, but a symbolic link of that name in the root is refused;
 *   - workdir, when not "", is a directory in the release; worker_path, when set, a regular file;
 *   - the command line rp_fn_app_command builds with no settings fits in RP_FN_COMMAND_MAX bytes
 *     (RP_ETOOBIG);
 *   - no symbolic link directly in the release root (RP_EPARSE): a function folder that is a
 *     link (to a folder inside or outside the release) is refused, not skipped, so that the
 *     owner learns why the function is missing; links are never followed to find out what they
 *     point to, so a link to a file is refused too (the deployment's unzip never makes one);
 *   - at most RP_FN_FUNCTIONS_MAX functions (RP_ETOOBIG), folder names as fnconfig allows them
 *     (a subdirectory whose name fnconfig refuses but that has no function.json is skipped),
 *     and no two that differ only in ASCII case (RP_EPARSE: rp_fn_app_find would be ambiguous);
 *   - route conflicts as above. A disabled function is indexed (listed, found by name) but never
 *     routed and never conflicts.
 * Returns 0 and *out; RP_ENOENT, RP_EPARSE, RP_ETOOBIG, RP_EIO (a read failed) or RP_ENOMEM with
 * *out NULL. err[cap] always receives a NUL-terminated line ("" on success).
 */
int rp_fn_app_load(int dirfd, rp_fn_app **out, char *err, size_t cap);
void rp_fn_app_free(rp_fn_app *a); /* accepts NULL */

/* host.json as parsed; never NULL for a loaded app. */
const rp_fn_host *rp_fn_app_host(const rp_fn_app *a);

/* The functions, sorted by name (byte order of the folder names): count, and the i-th (NULL
 * when i is out of range). */
size_t rp_fn_app_count(const rp_fn_app *a);
const rp_fn_function *rp_fn_app_function(const rp_fn_app *a, size_t i);
/* The function named name, ignoring ASCII case as Azure does, or NULL. */
const rp_fn_function *rp_fn_app_find(const rp_fn_app *a, const char *name);

/* What a request matched. params point into the route (names, defaults) and into the path the
 * caller passed (values): valid while both live. */
typedef struct rp_fn_match {
    const rp_fn_function *fn;
    const rp_fn_binding *trigger; /* fn's httpTrigger */
    rp_route_param params[RP_ROUTE_MAX_PARAMS];
    size_t nparams;
} rp_fn_match;

/*
 * Finds the function for a request: path is the normalised request path (http/path.h: decoded
 * once, "%2F" kept, no "." or ".." segments, no query), e.g. "/api/products/5"; method one of the
 * RP_FN_GET.. bits. The route prefix's segments are stripped first, compared ignoring ASCII case
 * (a path outside the prefix matches nothing); then the enabled HTTP routes are tried in host
 * order and the first whose template matches and whose methods include method wins.
 * Returns 1 and *m, or 0 (no function: the host answers 404).
 */
int rp_fn_app_match(const rp_fn_app *a, unsigned method, const char *path, size_t n,
                    rp_fn_match *m);

/*
 * The custom handler's command line, for /bin/sh -c in the handler's working directory (the
 * release root joined with workdir): exe (when it is a file in the app, as a path from the
 * working directory: "./bin/handler" from the root, "../bin/handler" when workdir is "src",
 * since exe is relative to the root; else the bare name for PATH), then arguments, then
 * worker_path (a path from the working directory likewise) and workerArguments, as Azure
 * builds it.
 * Every word is single-quoted for the shell, so nothing in host.json is ever interpreted by it.
 * %NAME% in arguments is replaced by the value of setting NAME from env (an array of "NAME=value"
 * strings, nenv entries; names compared exactly, the first entry wins); an unknown %NAME% is
 * left as written, as Azure leaves it (.NET's ExpandEnvironmentVariables: "%A%B%" with only B
 * set gives "%A" followed by B's value). 0 with out NUL-terminated, or RP_ETOOBIG when it does
 * not fit in cap (out is then ""). cap >= RP_FN_COMMAND_MAX + 1 is enough for any app this
 * module loads when no setting is used or the settings are no longer than their %NAME%s: the
 * caller passes what it has.
 */
int rp_fn_app_command(const rp_fn_app *a, const char *const *env, size_t nenv, char *out,
                      size_t cap);

/*
 * Appends s as one single-quoted sh word (a quote inside written as '\'') to out[cap] at
 * *len, keeping out NUL-terminated: the quoting rp_fn_app_command uses, for callers that build
 * more of the line (the working directory's cd). 0, or RP_ETOOBIG (out and *len unchanged).
 */
int rp_fn_sh_word(const char *s, char *out, size_t cap, size_t *len);

/* The handler's working directory relative to the release root ("" for the root itself). */
const char *rp_fn_app_workdir(const rp_fn_app *a);

#endif
