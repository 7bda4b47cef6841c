/*
 * route.h - Azure Functions HTTP trigger route templates (the `route` of an httpTrigger binding
 * in function.json): compile a template once, then match request paths against it.
 *
 * Azure hands `route` to ASP.NET Core routing (the host's WebJobsRouteBuilder turns it into a
 * Microsoft.AspNetCore.Routing.Route whose template is "<routePrefix>/<route>"). This module
 * implements the part of that language a function app uses, with the same matching rules, and
 * refuses the rest with a reason instead of guessing. What was checked, and where, is listed in
 * route.c; the differences from ASP.NET Core are all listed below ("Deviations").
 *
 * Workload: a function app has from one to a few hundred HTTP functions. Templates are compiled
 * when the app's functions are indexed; every request to the app is matched against them, on
 * every loop thread, until one matches. A match allocates nothing and is linear in the path
 * length plus the template's segments.
 *
 * Threads and ownership: an rp_route_tmpl is immutable once rp_route_compile returned it; any
 * number of threads may match against it at once. Whoever compiled it owns it and frees it with
 * rp_route_free after every reader is done. (The type is not called rp_route because the HTTP
 * router's http/router.h already defines struct rp_route, and the functions host includes both.)
 *
 * Template syntax (ASP.NET Core's RoutePatternParser grammar, restricted):
 *   - Segments are separated by '/'. One leading '/' and one trailing '/' are ignored; an empty
 *     segment ("a//b") is refused. The empty template has no segments and matches only the
 *     empty path ("" or "/"). A template starting with '~' is refused.
 *   - A segment is either a literal or exactly one parameter. Literals match ignoring ASCII case
 *     (bytes >= 0x80 must be equal). "{{" and "}}" stand for literal braces; a lone '}' and any
 *     '?' in a literal are refused.
 *   - A parameter is {name}, {name?} (optional), {name=default}, {*name} or {**name} (catch-all,
 *     which takes the rest of the path; ** differs in ASP.NET only when generating URLs), each
 *     with constraints after the name: {id:int}, {id:int?}, {n:int:min(1)=5}. Inside a
 *     parameter "{{" and "}}" are braces too.
 *   - Names are 1-64 printable ASCII characters other than / { } ? * (as ASP.NET refuses; ':'
 *     and '=' end the name), e.g. {user-id}, {file.name}, and are unique ignoring ASCII case.
 *   - A catch-all must be the last segment and cannot be optional. An optional parameter cannot
 *     have a default. Once a segment is optional (an optional parameter, a parameter with a
 *     default, or a catch-all) every later segment must be one too: "{a?}/b" is refused.
 *   - A default must be non-empty, satisfy the parameter's constraints, and contain no '/'
 *     unless the parameter is a catch-all.
 *   - Constraint names ignore ASCII case. Each parameter has at most RP_ROUTE_MAX_CONSTRAINTS;
 *     all must hold (checked on the raw string):
 *       int, long         -?[0-9]+ within int32 / int64
 *       bool              "true" or "false", any ASCII case
 *       decimal           -?(D+(.D*)?|.D+) with at most 29 integer digits: |value| below 2^96
 *       double, float     decimal as above plus an optional exponent [eE][+-]?D+; any
 *                         magnitude (.NET parses overflow as infinity, successfully)
 *       datetime          YYYY-MM-DD, optionally followed by THH:MM, THH:MM:SS or
 *                         THH:MM:SS.F (1 to 7 fraction digits), then optionally Z or +HH:MM /
 *                         -HH:MM (at most 14:00) when a time is present; real calendar dates,
 *                         years 0001-9999, hours 00-23, seconds 00-59 (no leap second)
 *       guid              32 hex digits, or 8-4-4-4-12 hex digits bare, in {} or in ()
 *       alpha             ASCII letters only
 *       minlength(n), maxlength(n), length(n), length(a,b)
 *                         length in UTF-16 code units, as .NET counts string.Length: one per
 *                         code point below U+10000, two above. A value that is not valid UTF-8
 *                         fails every length constraint. n, a, b are 0..2147483647, a <= b.
 *       min(n), max(n), range(a,b)
 *                         the value is a long (as above) within the bounds; arguments are longs
 *                         -?[0-9]+, a <= b
 *     regex(...) is refused ("regex constraints are not supported"), as is any other name.
 *   - Limits: RP_ROUTE_MAX_LEN bytes, RP_ROUTE_MAX_SEGMENTS segments, RP_ROUTE_MAX_PARAMS
 *     parameters. The template must be valid UTF-8 without control characters.
 *
 * Deviations from ASP.NET Core as Azure uses it. One accepts more: a route starting with '/' is
 * taken here (the '/' is ignored) but works in Azure only with an empty routePrefix, because the
 * host builds "api" + "/" + route and "api//x" does not parse. The others refuse more:
 *   - complex segments ("{a}.{b}", "file{n}", "{a}-x") are refused, not matched;
 *   - regex constraints are refused; unknown constraint names fail at compile time, as in
 *     ASP.NET, but so do empty ones ("{x:}", which ASP.NET ignores) and an empty default;
 *   - the optional-ordering rule above, a default with '/', a default that fails its own
 *     constraints, and a template starting with "~/" are refused (ASP.NET accepts them, and the
 *     first three can only surprise);
 *   - number constraints take no '+' sign, no white space, no thousands separators, no
 *     "NaN"/"Infinity" and no culture-specific forms; datetime takes only the ISO 8601 forms
 *     above (.NET's DateTime.TryParse also takes "12/31/2016 7:32pm"); guid does not take the
 *     "X" form "{0x...,{0x..}}" nor surrounding white space; bool takes no surrounding white
 *     space. A request these refuse is a 404 here where ASP.NET would have matched it;
 *   - parameter names are printable ASCII only (ASP.NET also takes spaces and non-ASCII
 *     letters);
 *   - literals fold ASCII case only (.NET's OrdinalIgnoreCase also folds e.g. 'É' and 'é'), so
 *     a request spelling a non-ASCII literal in another case is a 404 here.
 */
#ifndef RP_FUNCTIONS_ROUTE_H
#define RP_FUNCTIONS_ROUTE_H

#include <stddef.h>

#define RP_ROUTE_MAX_LEN         512 /* bytes of a template */
#define RP_ROUTE_MAX_SEGMENTS    32
#define RP_ROUTE_MAX_PARAMS      16
#define RP_ROUTE_NAME_MAX        64 /* bytes of a parameter name */
#define RP_ROUTE_MAX_CONSTRAINTS 8  /* per parameter */

typedef struct rp_route_tmpl rp_route_tmpl;

/*
 * Compiles the template tmpl[0..n) (not NUL-terminated; the route prefix such as "api" is not
 * part of it) into a new rp_route_tmpl in *out. Nothing points into tmpl afterwards.
 *
 * why (NULL, or cap bytes) receives one line saying what is wrong, naming the segment (counted
 * from 1, after the leading '/' is dropped) and quoting it, e.g.
 *   "segment 2 ('{id:foo}'): unknown constraint 'foo'"
 * or, for problems of the whole template, "template: ...". Quotes are sanitised to printable
 * ASCII and cut at 48 bytes, so the line is safe to show to the app's owner. On success why is
 * "" (when cap > 0).
 *
 * Returns 0; RP_EPARSE (the template is malformed or uses something refused above);
 * RP_ETOOBIG (longer than RP_ROUTE_MAX_LEN, more than RP_ROUTE_MAX_SEGMENTS segments,
 * RP_ROUTE_MAX_PARAMS parameters or RP_ROUTE_MAX_CONSTRAINTS constraints on one parameter);
 * RP_EINVAL (out is NULL, or tmpl is NULL with n > 0); RP_ENOMEM. On failure *out is NULL.
 */
int rp_route_compile(const char *tmpl, size_t n, rp_route_tmpl **out, char *why, size_t cap);

/* Frees r; accepts NULL. */
void rp_route_free(rp_route_tmpl *r);

/* One value a match produced. name and a default value belong to the route; a value taken
 * from the path points into the caller's path (not NUL-terminated: use value_len). */
typedef struct rp_route_param {
    const char *name;
    const char *value;
    size_t value_len;
} rp_route_param;

/*
 * Matches path[0..n) against r. The path is what follows the route prefix: for the request
 * "/api/products/5" with routePrefix "api" it is "/products/5" (a leading '/' is optional; ""
 * and "/" are the empty path). The caller must first:
 *   - cut the query string and fragment;
 *   - percent-decode the path exactly once while leaving "%2F" encoded (or refusing it), so
 *     that every '/' in path is a separator, and resolve "." and ".." segments:
 *     rp_path_normalize (http/path.h) does both, and also guarantees valid UTF-8;
 *   - strip the route prefix as whole segments, compared ignoring ASCII case as ASP.NET does.
 *
 * Path rules (ASP.NET's PathTokenizer and RoutePatternMatcher): one trailing '/' is ignored;
 * an empty segment anywhere before a catch-all means no match; a catch-all takes the rest of
 * the path verbatim from the start of its first segment, with inner '/', empty segments and the
 * trailing '/' ("x//y/"). When the path ends before an optional parameter, the parameter has no
 * value and is left out of params; a parameter with a default gets the default; a catch-all
 * gets its default or is left out, except that a catch-all with constraints and no default
 * then does not match (ASP.NET checks its constraints against a null value, which fails).
 *
 * On a match, params[0..*nparams) receives the values in template order (never more than
 * RP_ROUTE_MAX_PARAMS, so an array that size always suffices). params may be NULL when cap is 0.
 *
 * Returns 1 (match), 0 (no match, *nparams = 0), RP_ETOOBIG (a match, but cap is below
 * *nparams, which says how many are needed; params is untouched), or RP_EINVAL (r or nparams
 * NULL, path NULL with n > 0, params NULL with cap > 0).
 */
int rp_route_match(const rp_route_tmpl *r, const char *path, size_t n, rp_route_param *params,
                   size_t cap, size_t *nparams);

/*
 * 1 if the template tmpl[0..n) is in the host's reserved route space, else 0; works on any
 * bytes, compiled or not. Azure's ScriptHost.ValidateHttpFunction trims every leading and
 * trailing '/', lowercases, and refuses the function ("The specified route conflicts with one
 * or more built in routes.") when the result starts with "admin" or "runtime" as a string, not
 * as a segment: "administration/x" and "runtimes" are reserved too. So here: skip every leading
 * '/', then "admin" or "runtime" as a prefix ignoring ASCII case. (.NET's culture-aware
 * StartsWith could also see "admin" in some non-ASCII spellings, which cannot collide with the
 * host's ASCII routes here, since literals fold ASCII case only.)
 */
int rp_route_reserved(const char *tmpl, size_t n);

/*
 * 1 if a and b accept exactly the same paths because they have the same shape: as many
 * segments, literals equal ignoring ASCII case, and parameters in the same places with the same
 * kind (required; optional or with a default; catch-all) and the same set of constraints.
 * Parameter names, default values, the order of constraints and '*' versus '**' do not
 * matter. 0 otherwise, including when either is NULL.
 *
 * Meant for the check between two functions whose HTTP methods overlap (Azure refuses such a
 * pair at indexing: "The route specified conflicts with the route defined by function ...").
 * Azure's own check (ScriptHost.HttpRoutesConflict) compares the template texts ignoring case,
 * so every pair it refuses is refused here too (non-ASCII literals aside), and also "{id}"
 * versus "{name}", which it lets through although only one of them can ever be reached.
 * Templates that only overlap ("{id:int}" and "{id}"), or that accept the same paths with a
 * different spelling ("{id:int}" and "{id:range(-2147483648,2147483647)}"), give 0:
 * constraints are there to tell routes apart, and the first route in rp_route_order that
 * matches wins.
 */
int rp_route_conflict(const rp_route_tmpl *a, const rp_route_tmpl *b);

/*
 * The order in which the host tries routes: negative if a goes before b, positive if after, 0
 * if neither. It is Azure's RouteComparison (WebJobsRouteBuilder.Build sorts the function
 * routes with it, then the first route that matches takes the request): segment by segment, a
 * literal goes before a parameter, of two parameters the one with more constraints (as written,
 * repeats counted) goes first, of two literals the lower one ignoring case; when one template
 * is a prefix of the other in these terms, the longer goes first. Literals compare as .NET's
 * OrdinalIgnoreCase does for ASCII: both upper-cased, then byte by byte ("aa" before "a_").
 * Azure sorts with an unstable sort, so it leaves ties in no defined order; sort stably (ties
 * in the order the functions were indexed) to be deterministic.
 */
int rp_route_order(const rp_route_tmpl *a, const rp_route_tmpl *b);

/* ---- introspection (for the host's binding expressions, tests and the fuzzer) ------------- */

typedef enum {
    RP_ROUTE_REQUIRED = 0, /* {name} or {name=default} */
    RP_ROUTE_OPTIONAL,     /* {name?} */
    RP_ROUTE_CATCHALL      /* {*name} or {**name}, possibly with a default */
} rp_route_kind;

typedef struct rp_route_param_info {
    const char *name; /* NUL-terminated, owned by the route */
    rp_route_kind kind;
    const char *def; /* the default value (owned by the route), or NULL */
    size_t def_len;
    size_t nconstraints;
} rp_route_param_info;

/* Number of parameters of r (0 for NULL). */
size_t rp_route_nparams(const rp_route_tmpl *r);

/* Fills *info for parameter i (template order); 0, or RP_ENOENT when i is out of range. */
int rp_route_param_get(const rp_route_tmpl *r, size_t i, rp_route_param_info *info);

/* 1 if v[0..n) satisfies every constraint of parameter i (1 when it has none), else 0 (also
 * for an index out of range). */
int rp_route_param_check(const rp_route_tmpl *r, size_t i, const char *v, size_t n);

#endif
