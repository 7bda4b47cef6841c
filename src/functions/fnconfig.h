/*
 * fnconfig.h - a function app's configuration files: host.json (one per app) and function.json
 * (one per function folder), parsed into self-contained structs for the functions service
 * (shared/specs/azure-platform-controls.md §1.8-1.11; issue 6, custom handlers).
 *
 * The caller reads the files (at most RP_FN_FILE_MAX bytes each) and hands over their text; this
 * module does no I/O and keeps no state. Results own every string they hold (nothing points into
 * the JSON after return) and are freed with rp_fn_host_free / rp_fn_function_free. They are
 * built once per deployment or restart, so clarity wins over speed here.
 *
 * Errors: RP_ETOOBIG (file over RP_FN_FILE_MAX), RP_EPARSE (not JSON, or a member with a wrong
 * type or value), RP_ENOMEM. err always receives one line the caller shows the app owner as it is:
 * the file, the JSON path and the rule, e.g.
 *   hello/function.json: bindings[1].authLevel: "superuser" is not anonymous, function or admin
 * A value the file gave is quoted with at most 64 of its bytes, printable ASCII only (other bytes
 * as \xHH), so a message never carries control characters or a whole hostile value.
 *
 * As Azure does (azure-functions-host, snapshot 2024-10: HostJsonFileConfigurationSource,
 * ScriptJobHostOptionsSetup, HttpWorkerOptionsSetup, HttpWorkerDescription, Utility,
 * FunctionDescriptorProvider, ScriptHost.ValidateHttpFunction; and the Functions docs):
 *  - member names match ignoring ASCII case (host.json goes through .NET configuration;
 *    bindings are read case-insensitively); members this module does not read are ignored;
 *    null counts as absent;
 *  - host.json "version" must be the string "2.0"; a file that is exactly {} counts as
 *    {"version": "2.0"} (Azure rewrites an empty file that way); json NULL (no file) gives the
 *    defaults; a UTF-8 byte order mark is skipped;
 *  - customHandler wins over the legacy httpWorker, which is then not read at all; with
 *    httpWorker Azure forwards HTTP requests whatever its flags say;
 *  - function names: a letter, then letters, digits, '_' and '-', at most 128, not "host";
 *    binding names: a letter then letters and digits, at most 128, or "$return" (outputs only),
 *    unique ignoring case; exactly one trigger; direction "in" when absent;
 *  - authLevel defaults to function; a route that, without '/'s at its ends, starts with
 *    "admin" or "runtime" (a string prefix, ignoring case) is refused, also when it is the
 *    function name by default.
 * Where rampart is stricter or chooses (Azure would accept or default otherwise):
 *  - a member given twice, exactly or in another case, is refused (Azure keeps the last); a
 *    known member of the wrong JSON type is refused (Azure converts "200" to 200);
 *  - functionTimeout: "-1" (unbounded in Azure's Dedicated plan) means RP_FN_TIMEOUT_MAX (24 h),
 *    above which values are refused; a bare number other than -1 is refused ("300" is 300 days
 *    in .NET TimeSpan syntax, never what was meant); the default is 30 min (Azure's Dedicated
 *    and Premium default; Consumption's is 5 min);
 *  - maxOutstandingRequests / maxConcurrentRequests default to 200 / 100, Azure's Consumption
 *    values (Dedicated: -1, unbounded), since rampart hosts many tenants; -1 is accepted;
 *  - routePrefix is checked as a path (below) and may not start with an admin / runtime segment;
 *  - customHeaders may not hold framing or hop-by-hop headers, CR, LF or other control bytes;
 *  - handler paths stay inside the app: no absolute path, "..", '\' or '%' (Azure expands
 *    %VARIABLE% in them, which could move them anywhere after this check);
 *  - authLevel "system" and "user" (in Azure's enum) are refused, as are an empty methods list,
 *    webHookType (Functions 1.x), binding types rampart does not have, a second http output and
 *    an http output without an httpTrigger; counts and lengths are bounded (RP_FN_*_MAX).
 *
 * host.json members read (paths as Azure spells them):
 *   version                                  "2.0"
 *   functionTimeout                          "[d.]hh:mm[:ss[.fffffff]]" (.NET TimeSpan; hours
 *                                            0-23, spaces around allowed), or "-1"; 1 s ..
 *                                            RP_FN_TIMEOUT_MAX; fractions round up
 *   extensions.http.routePrefix              default "api"; "" = none; '/'-separated segments
 *                                            of RFC 3986 pchar without '%' (so no route
 *                                            parameters), no '/' at either end, no empty, "." or
 *                                            ".." segment
 *   extensions.http.maxOutstandingRequests   -1 (no per-app bound) or 1..RP_FN_REQUESTS_MAX
 *   extensions.http.maxConcurrentRequests    likewise
 *   extensions.http.customHeaders            {name: value}: name an HTTP token, value without
 *                                            control characters but HTAB; never Content-Length,
 *                                            Transfer-Encoding, Connection, Keep-Alive, Upgrade,
 *                                            TE, Trailer or Proxy-Connection
 *   customHandler.description                required in the section ("Missing worker
 *                                            Description" in Azure)
 *     .defaultExecutablePath                 required; see rp_fn_handler.exe
 *     .workingDirectory                      optional relative directory; "" = the app root
 *     .defaultWorkerPath, .arguments,        optional; Azure's command line is exe, arguments,
 *     .workerArguments                       worker path, worker arguments
 *   customHandler.enableForwardingHttpRequest bool, default false
 *   customHandler.enableProxyingHttpRequest   bool, default false (newer hosts: the same
 *                                            forwarding, streamed)
 *   httpWorker                               the legacy section, same shape
 *
 * function.json members read: disabled (bool, default false; Azure also disables with the app
 * setting AzureWebJobs.NAME.Disabled, which the caller combines), bindings (1 to
 * RP_FN_BINDINGS_MAX objects of type, direction, name and the type's members):
 *   httpTrigger       in:  authLevel (anonymous | function | admin, case ignored), methods (get
 *                          post put delete patch head options trace, case ignored, no repeats;
 *                          absent = all), route (kept as written for the route module; absent,
 *                          empty or blank = the function name), webHookType refused
 *   timerTrigger      in:  schedule (required, kept as written: NCRONTAB, TimeSpan or
 *                          %Setting%), runOnStartup (default false), useMonitor (default: Azure
 *                          decides from the period)
 *   eventGridTrigger  in:  nothing else
 *   blobTrigger       in:  path (required), connection (an app setting name or prefix),
 *                          source (LogsAndContainerScan (default) | EventGrid, case ignored)
 *   http              out: the HTTP response
 * and, beyond Azure, identity ({"type": "SystemAssigned" | "None"}, case ignored; default None):
 * the function's own managed identity, for a worker process of its own.
  *
 * Not guaranteed here: that no function route reaches the host's own /admin and /runtime paths.
 * Routes and route prefixes starting with them are refused, but with routePrefix "" a template
 * such as "{*rest}" matches them too: the service dispatches those paths first.
 */
#ifndef RP_FUNCTIONS_FNCONFIG_H
#define RP_FUNCTIONS_FNCONFIG_H

#include "functions/route.h"

#include <stddef.h>

#define RP_FN_FILE_MAX          (64u << 10) /* bytes of host.json or function.json */
#define RP_FN_TIMEOUT_DEFAULT   1800u       /* seconds: Azure's Dedicated / Premium default */
#define RP_FN_TIMEOUT_MAX       86400u      /* seconds: rampart's cap, also what "-1" means */
#define RP_FN_UNBOUNDED         (-1L)       /* maxOutstandingRequests / maxConcurrentRequests */
#define RP_FN_REQUESTS_MAX      1000000L    /* largest bound either may set */
#define RP_FN_OUTSTANDING_DEF   200L
#define RP_FN_CONCURRENT_DEF    100L
#define RP_FN_PREFIX_MAX        128  /* bytes of routePrefix */
#define RP_FN_HEADERS_MAX       32   /* customHeaders entries */
#define RP_FN_HEADER_NAME_MAX   128  /* bytes of a custom header name */
#define RP_FN_HEADER_VALUE_MAX  4096 /* bytes of a custom header value */
#define RP_FN_PATH_MAX          1024 /* bytes of an executable, worker or working directory path */
#define RP_FN_ARGS_MAX          64   /* entries of arguments, and of workerArguments */
#define RP_FN_ARG_MAX           1024 /* bytes of one argument */
#define RP_FN_NAME_MAX          128  /* bytes of a function name (Azure) */
#define RP_FN_IDENTITY_NAME_MAX 127  /* ... of one with its own identity (an RBAC scope segment) */
#define RP_FN_BINDING_NAME_MAX  128  /* bytes of a binding name (Azure) */
#define RP_FN_BINDINGS_MAX      16   /* bindings of one function */
#define RP_FN_ROUTE_MAX         RP_ROUTE_MAX_LEN /* bytes of a route template (route.h's) */
#define RP_FN_SCHEDULE_MAX      256              /* bytes of a timer schedule */
#define RP_FN_BLOB_PATH_MAX     1024             /* bytes of a blob trigger path */
#define RP_FN_CONNECTION_MAX    256              /* bytes of a connection setting name */

/* One extensions.http.customHeaders entry, as written. */
typedef struct rp_fn_header {
    char *name;
    char *value;
} rp_fn_header;

/* How to start the custom handler process. */
typedef struct rp_fn_handler {
    /* defaultExecutablePath without "." and empty segments: never NULL or empty. As written it
     * had no '\', '%' (Azure would expand it, after this check), control character or ".."
     * segment, did not start or end with '/': it stays inside the app. Relative to the app
     * root, not to workdir (Azure resolves it against the root). */
    char *exe;
    /* 1 when the path as written had a '/' ("./handler", "bin/handler"): a file in the app.
     * 0 for a bare name ("handler", "node"): as in Azure, a file of that name in the app root
     * if there is one, else a program found on PATH. */
    int exe_in_app;
    char *workdir;     /* workingDirectory, same rules but may end in '/'; "" = app root */
    char *worker_path; /* defaultWorkerPath, same rules as exe; NULL when absent or "" */
    char **args;       /* arguments as written (%SETTING% expanded later), nargs entries */
    size_t nargs;
    char **worker_args; /* workerArguments, likewise */
    size_t nworker_args;
    /* 1: HTTP requests of functions with just an httpTrigger and an http output go to the
     * handler as they came (enableForwardingHttpRequest, or enableProxyingHttpRequest, or the
     * legacy section); 0: they go as the invocation payload like other triggers. */
    int forward;
    int proxy;  /* enableProxyingHttpRequest was true (streaming forwarding) */
    int legacy; /* from httpWorker: Azure forwards to /{function name}, not the original path */
} rp_fn_handler;

/* host.json. Every field is set (defaults filled in). */
typedef struct rp_fn_host {
    unsigned timeout_s;    /* 1..RP_FN_TIMEOUT_MAX */
    char *route_prefix;    /* never NULL; "" = no prefix */
    long max_outstanding;  /* RP_FN_UNBOUNDED or 1..RP_FN_REQUESTS_MAX */
    long max_concurrent;   /* likewise */
    rp_fn_header *headers; /* nheaders entries, names unique ignoring case */
    size_t nheaders;
    rp_fn_handler *handler; /* NULL when host.json has neither customHandler nor httpWorker */
} rp_fn_host;

typedef enum {
    RP_FN_HTTP_TRIGGER = 1,
    RP_FN_TIMER_TRIGGER,
    RP_FN_EVENTGRID_TRIGGER,
    RP_FN_BLOB_TRIGGER,
    RP_FN_HTTP_OUT
} rp_fn_binding_type;

typedef enum { RP_FN_AUTH_ANONYMOUS = 0, RP_FN_AUTH_FUNCTION, RP_FN_AUTH_ADMIN } rp_fn_auth;

/* httpTrigger methods, a bit mask. */
enum {
    RP_FN_GET = 1u << 0,
    RP_FN_POST = 1u << 1,
    RP_FN_PUT = 1u << 2,
    RP_FN_DELETE = 1u << 3,
    RP_FN_PATCH = 1u << 4,
    RP_FN_HEAD = 1u << 5,
    RP_FN_OPTIONS = 1u << 6,
    RP_FN_TRACE = 1u << 7,
    RP_FN_ALL_METHODS = (1u << 8) - 1
};

typedef enum { RP_FN_BLOB_SCAN = 0, RP_FN_BLOB_EVENTGRID } rp_fn_blob_source;

/* One binding. Only the fields of its type are set; the others are 0 / NULL. */
typedef struct rp_fn_binding {
    rp_fn_binding_type type;
    char *name; /* the binding name: [A-Za-z][A-Za-z0-9]*, or "$return" (outputs only) */
    /* RP_FN_HTTP_TRIGGER */
    rp_fn_auth auth_level;
    unsigned methods; /* non-empty subset of RP_FN_ALL_METHODS; absent = RP_FN_ALL_METHODS */
    char *route;      /* as written, or the function name: never NULL, no control characters */
    /* RP_FN_TIMER_TRIGGER */
    char *schedule;     /* as written, never empty */
    int run_on_startup; /* 0 or 1 */
    int use_monitor;    /* 1, 0, or -1 when absent (Azure: on when the period is over 1 min) */
    /* RP_FN_BLOB_TRIGGER */
    char *path;       /* as written, never empty */
    char *connection; /* as written, or NULL (Azure: AzureWebJobsStorage) */
    rp_fn_blob_source source;
} rp_fn_binding;

/* function.json of one function. */
typedef struct rp_fn_function {
    char *name;       /* the folder name */
    int disabled;     /* 0 or 1 */
    int own_identity; /* identity.type SystemAssigned: a managed identity and worker of its own */
    rp_fn_binding *bindings;
    size_t nbindings; /* 1..RP_FN_BINDINGS_MAX */
    size_t trigger;   /* index of the one trigger binding */
    size_t http_out;  /* index of the http output, or nbindings when there is none */
} rp_fn_function;

/*
 * Parses host.json text json[0..n) (no NUL needed). json NULL means the app has no host.json:
 * *out gets the defaults. Returns 0 and *out (the caller frees it with rp_fn_host_free), or
 * RP_ETOOBIG / RP_EPARSE / RP_ENOMEM with *out NULL; err[cap] always gets a NUL-terminated
 * line ("" on success). err may be NULL when cap is 0.
 */
int rp_fn_host_parse(const char *json, size_t n, rp_fn_host **out, char *err, size_t cap);
void rp_fn_host_free(rp_fn_host *h); /* accepts NULL */

/*
 * Parses the function.json text json[0..n) of the function in folder name (Azure's rule for
 * function names: a letter, then letters, digits, '_' and '-', at most RP_FN_NAME_MAX bytes,
 * and not "host"). Returns and reports as rp_fn_host_parse; errors name the file
 * "NAME/function.json" (just "function.json" when the name itself is refused).
 */
int rp_fn_function_parse(const char *name, const char *json, size_t n, rp_fn_function **out,
                         char *err, size_t cap);
void rp_fn_function_free(rp_fn_function *f); /* accepts NULL */

/* "anonymous", "function", "admin"; the binding type as Azure spells it; a method's name in
 * upper case for one bit ("GET"); NULL when out of range. */
const char *rp_fn_auth_name(rp_fn_auth a);
const char *rp_fn_binding_type_name(rp_fn_binding_type t);
const char *rp_fn_method_name(unsigned bit);

#endif
