/*
 * fnconfig_fuzz.c - libFuzzer driver for src/functions/fnconfig.c: host.json and function.json
 * as an app owner (or an attacker with deploy rights) writes them.
 *
 * Input: one selector byte, then the file text. Selector bit 0: 0 = host.json, 1 =
 * function.json; bits 1-3 pick the function's folder name from names[] (valid ones, a reserved
 * route, invalid ones); bit 7 makes the Nth allocation fail, N = bits 4-6 times 3 (0-21), to
 * walk the out-of-memory paths under LeakSanitizer.
 *
 * Invariants checked with abort():
 *   - a parse returns 0 with a result and err "", or RP_EPARSE / RP_ETOOBIG / RP_ENOMEM with
 *     no result and one printable ASCII line naming the file ("host.json: ",
 *     "NAME/function.json: " or "function.json: "); RP_ENOMEM only when allocations fail;
 *   - host.json results are within their documented domains: timeout 1..RP_FN_TIMEOUT_MAX;
 *     route prefix of pchar segments without '/' at the ends, empty, "." or ".." segments, or an
 *     admin / runtime first segment; request bounds -1 or 1..RP_FN_REQUESTS_MAX; custom headers
 *     HTTP tokens, unique ignoring case, none framing, values without CR, LF or NUL; handler
 *     paths relative, without "..", '\', '%' or control characters, exe not empty; argument
 *     counts and lengths within limits; legacy implies forward and not proxy;
 *   - function.json results: the name as given, 1..16 bindings, exactly one trigger at
 *     f->trigger, at most one http output at f->http_out and only with an httpTrigger, binding
 *     names Azure-valid and unique ignoring case, "$return" only on the output, each type's
 *     fields set and the others NULL / 0, routes never starting with admin / runtime;
 *   - a result written back as JSON parses again to the same result (normalisation is stable
 *     and everything accepted is expressible).
 * Corpus: tests/fuzz/corpus/fnconfig/ (selector byte + realistic files, valid and invalid).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "base/alloc.h"
#include "base/err.h"
#include "functions/fnconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static const char *const names[] = {"HttpTrigger", "fn",   "order-2_x", "adminTools",
                                    "1bad",        "host", "a.b",       NULL};

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #x, __LINE__);                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static int has_ctl(const char *s, int tab_ok)
{
    for (; *s != '\0'; s++)
        if (((unsigned char)*s < 0x20 && !(tab_ok && *s == '\t')) || *s == 0x7f)
            return 1;
    return 0;
}

static int seg_eq(const char *p, size_t n, const char *lit)
{
    return n == strlen(lit) && strncasecmp(p, lit, n) == 0;
}

/* A normalised relative path: no '/' at either end, no empty, "." or ".." segment. */
static void check_path(const char *p, int may_be_empty)
{
    size_t n = strlen(p);

    CHECK(n <= RP_FN_PATH_MAX);
    CHECK(may_be_empty || n > 0);
    CHECK(!has_ctl(p, 0) && strchr(p, '\\') == NULL && strchr(p, '%') == NULL);
    if (n == 0)
        return;
    CHECK(p[0] != '/' && p[n - 1] != '/');
    for (size_t i = 0; i < n;) {
        size_t k = i;
        while (k < n && p[k] != '/')
            k++;
        CHECK(k > i && !seg_eq(p + i, k - i, ".") && !seg_eq(p + i, k - i, ".."));
        i = k + 1;
    }
}

static void check_strv(char **v, size_t n)
{
    CHECK(n <= RP_FN_ARGS_MAX);
    CHECK(n == 0 || v != NULL);
    for (size_t i = 0; i < n; i++)
        CHECK(v[i] != NULL && strlen(v[i]) <= RP_FN_ARG_MAX);
}

static void check_host(const rp_fn_host *h)
{
    static const char *const framing[] = {"content-length", "transfer-encoding", "connection",
                                          "keep-alive",     "upgrade",           "te",
                                          "trailer",        "proxy-connection"};
    const char *p = h->route_prefix;
    size_t n = strlen(p);

    CHECK(h->timeout_s >= 1 && h->timeout_s <= RP_FN_TIMEOUT_MAX);
    CHECK(n <= RP_FN_PREFIX_MAX);
    if (n > 0) {
        CHECK(p[0] != '/' && p[n - 1] != '/');
        for (size_t i = 0; i < n;) {
            size_t k = i;
            while (k < n && p[k] != '/') {
                CHECK(strchr("%{}?#\\ ", p[k]) == NULL && (unsigned char)p[k] > 0x20 &&
                      (unsigned char)p[k] < 0x7f);
                k++;
            }
            CHECK(k > i && !seg_eq(p + i, k - i, ".") && !seg_eq(p + i, k - i, ".."));
            CHECK(i > 0 || (!seg_eq(p, k, "admin") && !seg_eq(p, k, "runtime")));
            i = k + 1;
        }
    }
    CHECK(h->max_outstanding == RP_FN_UNBOUNDED ||
          (h->max_outstanding >= 1 && h->max_outstanding <= RP_FN_REQUESTS_MAX));
    CHECK(h->max_concurrent == RP_FN_UNBOUNDED ||
          (h->max_concurrent >= 1 && h->max_concurrent <= RP_FN_REQUESTS_MAX));
    CHECK(h->nheaders <= RP_FN_HEADERS_MAX);
    for (size_t i = 0; i < h->nheaders; i++) {
        const char *k = h->headers[i].name, *v = h->headers[i].value;
        CHECK(k != NULL && v != NULL);
        CHECK(strlen(k) >= 1 && strlen(k) <= RP_FN_HEADER_NAME_MAX);
        CHECK(strlen(v) <= RP_FN_HEADER_VALUE_MAX && !has_ctl(v, 1));
        for (const char *c = k; *c; c++)
            CHECK((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || strchr("!#$%&'*+-.^_`|~", *c) != NULL);
        for (size_t f = 0; f < sizeof(framing) / sizeof(framing[0]); f++)
            CHECK(strcasecmp(k, framing[f]) != 0);
        for (size_t j = 0; j < i; j++)
            CHECK(strcasecmp(k, h->headers[j].name) != 0);
    }
    if (h->handler != NULL) {
        const rp_fn_handler *hd = h->handler;
        check_path(hd->exe, 0);
        CHECK(hd->exe_in_app == 0 || hd->exe_in_app == 1);
        CHECK(hd->workdir != NULL);
        check_path(hd->workdir, 1);
        if (hd->worker_path != NULL)
            check_path(hd->worker_path, 0);
        check_strv(hd->args, hd->nargs);
        check_strv(hd->worker_args, hd->nworker_args);
        CHECK(hd->forward == 0 || hd->forward == 1);
        CHECK(hd->proxy == 0 || hd->proxy == 1);
        CHECK(hd->legacy == 0 || hd->legacy == 1);
        CHECK(!hd->legacy || (hd->forward && !hd->proxy));
        CHECK(!hd->proxy || hd->forward);
    }
}

static int binding_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (strcmp(s, "$return") == 0)
        return 1;
    if (n == 0 || n > RP_FN_BINDING_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int alpha = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z');
        if (!alpha && (i == 0 || !(s[i] >= '0' && s[i] <= '9')))
            return 0;
    }
    return 1;
}

static int reserved(const char *r)
{
    while (*r == '/')
        r++;
    return strncasecmp(r, "admin", 5) == 0 || strncasecmp(r, "runtime", 7) == 0;
}

static void check_function(const rp_fn_function *f, const char *name)
{
    size_t ntrig = 0, nout = 0;

    CHECK(strcmp(f->name, name) == 0);
    CHECK(f->disabled == 0 || f->disabled == 1);
    CHECK(f->nbindings >= 1 && f->nbindings <= RP_FN_BINDINGS_MAX);
    CHECK(f->trigger < f->nbindings);
    CHECK(f->http_out <= f->nbindings);
    for (size_t i = 0; i < f->nbindings; i++) {
        const rp_fn_binding *b = &f->bindings[i];
        int is_http = b->type == RP_FN_HTTP_TRIGGER, is_timer = b->type == RP_FN_TIMER_TRIGGER,
            is_blob = b->type == RP_FN_BLOB_TRIGGER;

        CHECK(b->type >= RP_FN_HTTP_TRIGGER && b->type <= RP_FN_HTTP_OUT);
        CHECK(b->name != NULL && binding_name_ok(b->name));
        CHECK(strcmp(b->name, "$return") != 0 || b->type == RP_FN_HTTP_OUT);
        for (size_t j = 0; j < i; j++)
            CHECK(strcasecmp(b->name, f->bindings[j].name) != 0);
        if (b->type == RP_FN_HTTP_OUT) {
            nout++;
            CHECK(f->http_out == i);
        } else {
            ntrig++;
            CHECK(f->trigger == i);
        }
        CHECK(is_http == (b->route != NULL));
        if (is_http) {
            CHECK(b->auth_level >= RP_FN_AUTH_ANONYMOUS && b->auth_level <= RP_FN_AUTH_ADMIN);
            CHECK(b->methods != 0 && (b->methods & ~(unsigned)RP_FN_ALL_METHODS) == 0);
            CHECK(strlen(b->route) >= 1 && strlen(b->route) <= RP_FN_ROUTE_MAX);
            CHECK(!has_ctl(b->route, 0) && !reserved(b->route));
        } else {
            CHECK(b->auth_level == 0 && b->methods == 0);
        }
        CHECK(is_timer == (b->schedule != NULL));
        if (is_timer) {
            CHECK(strlen(b->schedule) >= 1 && strlen(b->schedule) <= RP_FN_SCHEDULE_MAX);
            CHECK(!has_ctl(b->schedule, 0));
            CHECK(b->run_on_startup == 0 || b->run_on_startup == 1);
            CHECK(b->use_monitor >= -1 && b->use_monitor <= 1);
        } else {
            CHECK(b->run_on_startup == 0 && b->use_monitor == 0);
        }
        CHECK(is_blob == (b->path != NULL));
        if (is_blob) {
            CHECK(strlen(b->path) >= 1 && strlen(b->path) <= RP_FN_BLOB_PATH_MAX);
            CHECK(!has_ctl(b->path, 0));
            CHECK(b->connection == NULL ||
                  (strlen(b->connection) >= 1 && strlen(b->connection) <= RP_FN_CONNECTION_MAX));
            CHECK(b->source == RP_FN_BLOB_SCAN || b->source == RP_FN_BLOB_EVENTGRID);
        } else {
            CHECK(b->connection == NULL && b->source == RP_FN_BLOB_SCAN);
        }
    }
    CHECK(ntrig == 1 && nout <= 1);
    CHECK((nout == 0) == (f->http_out == f->nbindings));
    CHECK(nout == 0 || f->bindings[f->trigger].type == RP_FN_HTTP_TRIGGER);
}

static void check_error(int rc, const char *err, const char *file, int failing)
{
    CHECK(rc == RP_EPARSE || rc == RP_ETOOBIG || (rc == RP_ENOMEM && failing));
    CHECK(printable(err));
    CHECK(strncmp(err, file, strlen(file)) == 0 || strncmp(err, "function.json: ", 15) == 0);
}

/* ---- write back --------------------------------------------------------------------------- */

static json_t *strv_json(char **v, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *host_json(const rp_fn_host *h)
{
    json_t *hdrs = json_object(), *j;
    char ts[32];

    snprintf(ts, sizeof(ts), "%u.%02u:%02u:%02u", h->timeout_s / 86400, h->timeout_s / 3600 % 24,
             h->timeout_s / 60 % 60, h->timeout_s % 60);
    for (size_t i = 0; hdrs != NULL && i < h->nheaders; i++)
        json_object_set_new(hdrs, h->headers[i].name, json_string(h->headers[i].value));
    j = json_pack("{s:s, s:s, s:{s:{s:s, s:I, s:I, s:o}}}", "version", "2.0", "functionTimeout", ts,
                  "extensions", "http", "routePrefix", h->route_prefix, "maxOutstandingRequests",
                  (json_int_t)h->max_outstanding, "maxConcurrentRequests",
                  (json_int_t)h->max_concurrent, "customHeaders", hdrs);
    if (j != NULL && h->handler != NULL) {
        const rp_fn_handler *hd = h->handler;
        char exe[RP_FN_PATH_MAX + 3];
        json_t *desc;

        snprintf(exe, sizeof(exe), "%s%s", hd->exe_in_app && !strchr(hd->exe, '/') ? "./" : "",
                 hd->exe);
        desc = json_pack("{s:s, s:s, s:o, s:o}", "defaultExecutablePath", exe, "workingDirectory",
                         hd->workdir, "arguments", strv_json(hd->args, hd->nargs),
                         "workerArguments", strv_json(hd->worker_args, hd->nworker_args));
        if (desc != NULL && hd->worker_path != NULL)
            json_object_set_new(desc, "defaultWorkerPath", json_string(hd->worker_path));
        json_object_set_new(j, hd->legacy ? "httpWorker" : "customHandler",
                            json_pack("{s:o, s:b, s:b}", "description", desc,
                                      "enableForwardingHttpRequest", hd->forward && !hd->proxy,
                                      "enableProxyingHttpRequest", hd->proxy));
    }
    return j;
}

static json_t *function_json(const rp_fn_function *f)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < f->nbindings; i++) {
        const rp_fn_binding *b = &f->bindings[i];
        json_t *o =
            json_pack("{s:s, s:s, s:s}", "type", rp_fn_binding_type_name(b->type), "direction",
                      b->type == RP_FN_HTTP_OUT ? "out" : "in", "name", b->name);
        if (o == NULL)
            continue;
        if (b->type == RP_FN_HTTP_TRIGGER) {
            json_t *m = json_array();
            for (unsigned bit = 1; m != NULL && bit <= RP_FN_TRACE; bit <<= 1)
                if (b->methods & bit)
                    json_array_append_new(m, json_string(rp_fn_method_name(bit)));
            json_object_set_new(o, "authLevel", json_string(rp_fn_auth_name(b->auth_level)));
            json_object_set_new(o, "methods", m);
            json_object_set_new(o, "route", json_string(b->route));
        } else if (b->type == RP_FN_TIMER_TRIGGER) {
            json_object_set_new(o, "schedule", json_string(b->schedule));
            json_object_set_new(o, "runOnStartup", json_boolean(b->run_on_startup));
            if (b->use_monitor >= 0)
                json_object_set_new(o, "useMonitor", json_boolean(b->use_monitor));
        } else if (b->type == RP_FN_BLOB_TRIGGER) {
            json_object_set_new(o, "path", json_string(b->path));
            if (b->connection != NULL)
                json_object_set_new(o, "connection", json_string(b->connection));
            json_object_set_new(o, "source",
                                json_string(b->source == RP_FN_BLOB_EVENTGRID
                                                ? "EventGrid"
                                                : "LogsAndContainerScan"));
        }
        json_array_append_new(a, o);
    }
    return json_pack("{s:o, s:b}", "bindings", a, "disabled", f->disabled);
}

static int same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int same_strv(char **a, size_t an, char **b, size_t bn)
{
    if (an != bn)
        return 0;
    for (size_t i = 0; i < an; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return 1;
}

static void check_host_again(const rp_fn_host *h)
{
    json_t *j = host_json(h);
    char *text, err[600];
    rp_fn_host *h2 = NULL;
    int rc;

    if (j == NULL)
        return; /* jansson out of memory: nothing to compare */
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (text == NULL)
        return;
    rc = rp_fn_host_parse(text, strlen(text), &h2, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "written back: %s\nrefused: %s\n", text, err);
    CHECK(rc == 0);
    free(text);
    CHECK(h2->timeout_s == h->timeout_s && strcmp(h2->route_prefix, h->route_prefix) == 0);
    CHECK(h2->max_outstanding == h->max_outstanding && h2->max_concurrent == h->max_concurrent);
    CHECK(h2->nheaders == h->nheaders);
    for (size_t i = 0; i < h->nheaders; i++)
        CHECK(strcmp(h2->headers[i].name, h->headers[i].name) == 0 &&
              strcmp(h2->headers[i].value, h->headers[i].value) == 0);
    CHECK((h2->handler == NULL) == (h->handler == NULL));
    if (h->handler != NULL) {
        const rp_fn_handler *a = h->handler, *b = h2->handler;
        CHECK(strcmp(a->exe, b->exe) == 0 && a->exe_in_app == b->exe_in_app);
        CHECK(strcmp(a->workdir, b->workdir) == 0 && same_str(a->worker_path, b->worker_path));
        CHECK(same_strv(a->args, a->nargs, b->args, b->nargs));
        CHECK(same_strv(a->worker_args, a->nworker_args, b->worker_args, b->nworker_args));
        CHECK(a->forward == b->forward && a->proxy == b->proxy && a->legacy == b->legacy);
    }
    rp_fn_host_free(h2);
}

static void check_function_again(const rp_fn_function *f)
{
    json_t *j = function_json(f);
    char *text, err[600];
    rp_fn_function *f2 = NULL;
    int rc;

    if (j == NULL)
        return;
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (text == NULL)
        return;
    rc = rp_fn_function_parse(f->name, text, strlen(text), &f2, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "written back: %s\nrefused: %s\n", text, err);
    CHECK(rc == 0);
    free(text);
    CHECK(f2->disabled == f->disabled && f2->nbindings == f->nbindings);
    CHECK(f2->trigger == f->trigger && f2->http_out == f->http_out);
    for (size_t i = 0; i < f->nbindings; i++) {
        const rp_fn_binding *a = &f->bindings[i], *b = &f2->bindings[i];
        CHECK(a->type == b->type && strcmp(a->name, b->name) == 0);
        CHECK(a->auth_level == b->auth_level && a->methods == b->methods);
        CHECK(same_str(a->route, b->route) && same_str(a->schedule, b->schedule));
        CHECK(a->run_on_startup == b->run_on_startup && a->use_monitor == b->use_monitor);
        CHECK(same_str(a->path, b->path) && same_str(a->connection, b->connection));
        CHECK(a->source == b->source);
    }
    rp_fn_function_free(f2);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    const char *text;
    char err[600], file[RP_FN_NAME_MAX + 32];
    int failing, rc;

    if (n < 1)
        return 0;
    failing = (d[0] & 0x80) != 0;
    text = (const char *)d + 1;
    n--;
    memset(err, 'x', sizeof(err));
    if (failing)
        rp_alloc_fail_after((long)((d[0] >> 4) & 7) * 3);
    if ((d[0] & 1) == 0) {
        rp_fn_host *h = NULL;
        rc = rp_fn_host_parse(text, n, &h, err, sizeof(err));
        rp_alloc_fail_after(-1);
        CHECK(memchr(err, '\0', sizeof(err)) != NULL);
        if (rc == 0) {
            CHECK(h != NULL && err[0] == '\0');
            check_host(h);
            if (!failing)
                check_host_again(h);
            rp_fn_host_free(h);
        } else {
            CHECK(h == NULL);
            check_error(rc, err, "host.json: ", failing);
        }
        return 0;
    }
    {
        const char *name = names[(d[0] >> 1) & 7];
        rp_fn_function *f = NULL;

        rc = rp_fn_function_parse(name, text, n, &f, err, sizeof(err));
        rp_alloc_fail_after(-1);
        CHECK(memchr(err, '\0', sizeof(err)) != NULL);
        snprintf(file, sizeof(file), "%s/function.json: ", name ? name : "");
        if (rc == 0) {
            CHECK(f != NULL && err[0] == '\0');
            check_function(f, name);
            if (!failing)
                check_function_again(f);
            rp_fn_function_free(f);
        } else {
            CHECK(f == NULL);
            check_error(rc, err, file, failing);
        }
    }
    return 0;
}
