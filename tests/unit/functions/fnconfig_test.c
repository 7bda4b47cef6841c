/*
 * fnconfig_test.c - host.json and function.json (src/functions/fnconfig.c): realistic Node and
 * C custom handler apps, defaults (no file, {}, a bare version), functionTimeout forms, route
 * prefix, request bounds and custom headers, handler paths and arguments, customHandler over
 * the legacy httpWorker, every binding type, authLevel and methods, routes that hit the host's
 * own, one trigger exactly, unique names, the size limits on both sides of each bound, each
 * refusal with its exact message, hostile values quoted safely, and allocation failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/err.h"
#include "functions/fnconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------------ */

static rp_fn_host *host_ok(const char *json)
{
    rp_fn_host *h = NULL;
    char err[512] = "x";
    int rc = rp_fn_host_parse(json, json ? strlen(json) : 0, &h, err, sizeof(err));

    if (rc != 0)
        fprintf(stderr, "host.json refused: %s\n%s\n", err, json);
    assert_int_equal(rc, 0);
    assert_non_null(h);
    assert_string_equal(err, "");
    return h;
}

static void host_bad(const char *json, int want, const char *msg)
{
    rp_fn_host *h = (rp_fn_host *)1;
    char err[512] = "";
    int rc = rp_fn_host_parse(json, strlen(json), &h, err, sizeof(err));

    if (rc != want || strcmp(err, msg) != 0)
        fprintf(stderr, "%s\n  rc %d err: %s\n  want %d: %s\n", json, rc, err, want, msg);
    assert_int_equal(rc, want);
    assert_null(h);
    assert_string_equal(err, msg);
}

static rp_fn_function *fn_ok(const char *name, const char *json)
{
    rp_fn_function *f = NULL;
    char err[512] = "x";
    int rc = rp_fn_function_parse(name, json, strlen(json), &f, err, sizeof(err));

    if (rc != 0)
        fprintf(stderr, "function.json refused: %s\n%s\n", err, json);
    assert_int_equal(rc, 0);
    assert_non_null(f);
    assert_string_equal(err, "");
    assert_string_equal(f->name, name);
    return f;
}

static void fn_bad(const char *name, const char *json, const char *msg)
{
    rp_fn_function *f = (rp_fn_function *)1;
    char err[512] = "";
    int rc = rp_fn_function_parse(name, json, json ? strlen(json) : 0, &f, err, sizeof(err));

    if (rc != RP_EPARSE || strcmp(err, msg) != 0)
        fprintf(stderr, "%s\n  rc %d err: %s\n  want: %s\n", json ? json : "(null)", rc, err, msg);
    assert_int_equal(rc, RP_EPARSE);
    assert_null(f);
    assert_string_equal(err, msg);
}

/* host.json with one customHandler.description member set to the JSON text d. */
static void host_desc_bad(const char *d, const char *msg)
{
    char json[4096];

    assert_true((size_t)snprintf(json, sizeof(json),
                                 "{\"version\":\"2.0\",\"customHandler\":{\"description\":{%s}}}",
                                 d) < sizeof(json));
    host_bad(json, RP_EPARSE, msg);
}

static rp_fn_host *host_desc_ok(const char *d)
{
    char json[4096];

    assert_true((size_t)snprintf(json, sizeof(json),
                                 "{\"version\":\"2.0\",\"customHandler\":{\"description\":{%s}}}",
                                 d) < sizeof(json));
    return host_ok(json);
}

/* host.json with extensions.http = {h}. */
static void http_bad(const char *h, const char *msg)
{
    char json[8192];

    assert_true((size_t)snprintf(json, sizeof(json),
                                 "{\"version\":\"2.0\",\"extensions\":{\"http\":{%s}}}",
                                 h) < sizeof(json));
    host_bad(json, RP_EPARSE, msg);
}

static rp_fn_host *http_ok(const char *h)
{
    char json[8192];

    assert_true((size_t)snprintf(json, sizeof(json),
                                 "{\"version\":\"2.0\",\"extensions\":{\"http\":{%s}}}",
                                 h) < sizeof(json));
    return host_ok(json);
}

static unsigned timeout_of(const char *v)
{
    char json[256];
    rp_fn_host *h;
    unsigned t;

    assert_true((size_t)snprintf(json, sizeof(json), "{\"version\":\"2.0\",\"functionTimeout\":%s}",
                                 v) < sizeof(json));
    h = host_ok(json);
    t = h->timeout_s;
    rp_fn_host_free(h);
    return t;
}

/* function.json whose bindings are [b]. */
static rp_fn_function *bind_ok(const char *b)
{
    char json[8192];

    assert_true((size_t)snprintf(json, sizeof(json), "{\"bindings\":[%s]}", b) < sizeof(json));
    return fn_ok("fn", json);
}

static void bind_bad(const char *b, const char *msg)
{
    char json[8192];

    assert_true((size_t)snprintf(json, sizeof(json), "{\"bindings\":[%s]}", b) < sizeof(json));
    fn_bad("fn", json, msg);
}

#define HTTP_IN  "{\"type\":\"httpTrigger\",\"direction\":\"in\",\"name\":\"req\""
#define HTTP_OUT "{\"type\":\"http\",\"direction\":\"out\",\"name\":\"res\"}"

/* ---- host.json ---------------------------------------------------------------------------- */

static void test_node_host(void **state)
{
    /* What a Node.js app written for Azure's docs ships. */
    static const char json[] =
        "{\n"
        "  \"version\": \"2.0\",\n"
        "  \"logging\": {\"applicationInsights\": {\"samplingSettings\": {\"isEnabled\": true,\n"
        "               \"excludedTypes\": \"Request\"}}, \"logLevel\": {\"default\": "
        "\"Information\"}},\n"
        "  \"extensionBundle\": {\"id\": \"Microsoft.Azure.Functions.ExtensionBundle\",\n"
        "                      \"version\": \"[4.*, 5.0.0)\"},\n"
        "  \"functionTimeout\": \"00:10:00\",\n"
        "  \"extensions\": {\"http\": {\"routePrefix\": \"\", \"maxOutstandingRequests\": 50,\n"
        "      \"maxConcurrentRequests\": -1, \"dynamicThrottlesEnabled\": true,\n"
        "      \"hsts\": {\"isEnabled\": true},\n"
        "      \"customHeaders\": {\"X-Content-Type-Options\": \"nosniff\",\n"
        "                          \"Content-Security-Policy\": \"default-src 'self'\"}}},\n"
        "  \"customHandler\": {\n"
        "    \"description\": {\"defaultExecutablePath\": \"node\", \"workingDirectory\": \"\",\n"
        "                    \"arguments\": [\"server.js\", "
        "\"--port=%FUNCTIONS_CUSTOMHANDLER_PORT%\"]},\n"
        "    \"enableForwardingHttpRequest\": true\n"
        "  }\n"
        "}\n";
    rp_fn_host *h = host_ok(json);

    (void)state;
    assert_int_equal(h->timeout_s, 600);
    assert_string_equal(h->route_prefix, "");
    assert_int_equal(h->max_outstanding, 50);
    assert_int_equal(h->max_concurrent, RP_FN_UNBOUNDED);
    assert_int_equal(h->nheaders, 2);
    assert_string_equal(h->headers[0].name, "X-Content-Type-Options");
    assert_string_equal(h->headers[0].value, "nosniff");
    assert_string_equal(h->headers[1].name, "Content-Security-Policy");
    assert_string_equal(h->headers[1].value, "default-src 'self'");
    assert_non_null(h->handler);
    assert_string_equal(h->handler->exe, "node");
    assert_int_equal(h->handler->exe_in_app, 0);
    assert_string_equal(h->handler->workdir, "");
    assert_null(h->handler->worker_path);
    assert_int_equal(h->handler->nargs, 2);
    assert_string_equal(h->handler->args[0], "server.js");
    /* Setting tokens are kept for the process module to expand. */
    assert_string_equal(h->handler->args[1], "--port=%FUNCTIONS_CUSTOMHANDLER_PORT%");
    assert_int_equal(h->handler->nworker_args, 0);
    assert_int_equal(h->handler->forward, 1);
    assert_int_equal(h->handler->proxy, 0);
    assert_int_equal(h->handler->legacy, 0);
    rp_fn_host_free(h);
}

static void test_c_host(void **state)
{
    /* A compiled handler in the app, run from its own directory; member names in other case
     * (Azure's configuration ignores it), and a UTF-8 byte order mark from a Windows editor. */
    static const char json[] =
        "\xef\xbb\xbf{\"Version\":\"2.0\",\"FunctionTimeout\":\"1.00:00:00\","
        "\"customHandler\":{\"Description\":{\"defaultExecutablePath\":\"./bin/handler\","
        "\"workingDirectory\":\"bin/\",\"arguments\":[\"--threads\",\"4\",\"\"],"
        "\"defaultWorkerPath\":\"\"},\"enableForwardingHttpRequest\":false}}";
    rp_fn_host *h = host_ok(json);

    (void)state;
    assert_int_equal(h->timeout_s, 86400);
    assert_string_equal(h->route_prefix, "api");
    assert_int_equal(h->max_outstanding, RP_FN_OUTSTANDING_DEF);
    assert_int_equal(h->max_concurrent, RP_FN_CONCURRENT_DEF);
    assert_int_equal(h->nheaders, 0);
    assert_string_equal(h->handler->exe, "bin/handler");
    assert_int_equal(h->handler->exe_in_app, 1);
    assert_string_equal(h->handler->workdir, "bin");
    assert_null(h->handler->worker_path);
    assert_int_equal(h->handler->nargs, 3);
    assert_string_equal(h->handler->args[0], "--threads");
    assert_string_equal(h->handler->args[1], "4");
    assert_string_equal(h->handler->args[2], "");
    assert_int_equal(h->handler->forward, 0);
    rp_fn_host_free(h);
}

static void test_host_defaults(void **state)
{
    static const char *const same[] = {NULL, "{}", "{\"version\":\"2.0\"}",
                                       " {\"version\" :\"2.0\"} ",
                                       "{\"version\":\"2.0\",\"functionTimeout\":null,"
                                       "\"extensions\":null,\"customHandler\":null}"};
    rp_fn_host *h;

    (void)state;
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        h = host_ok(same[i]);
        assert_int_equal(h->timeout_s, 1800);
        assert_string_equal(h->route_prefix, "api");
        assert_int_equal(h->max_outstanding, 200);
        assert_int_equal(h->max_concurrent, 100);
        assert_int_equal(h->nheaders, 0);
        assert_null(h->headers);
        assert_null(h->handler);
        rp_fn_host_free(h);
    }
    /* Unknown members at every level are ignored, as Azure does. */
    h = host_ok("{\"version\":\"2.0\",\"extensions\":{\"queues\":{\"batchSize\":16},\"http\":{"
                "\"hsts\":7}},\"whatever\":[1,2],\"customHandler\":{\"description\":{"
                "\"defaultExecutablePath\":\"h\",\"x\":{}},\"y\":1}}");
    assert_string_equal(h->handler->exe, "h");
    rp_fn_host_free(h);
    /* err may be NULL with cap 0. */
    assert_int_equal(rp_fn_host_parse("{}", 2, &h, NULL, 0), 0);
    rp_fn_host_free(h);
    assert_int_equal(rp_fn_host_parse("[]", 2, &h, NULL, 0), RP_EPARSE);
    assert_null(h);
    rp_fn_host_free(NULL);
    rp_fn_function_free(NULL);
}

static void test_host_version(void **state)
{
    (void)state;
    host_bad("{\"functionTimeout\":\"00:01:00\"}", RP_EPARSE,
             "host.json: version: missing; host.json must say \"version\": \"2.0\"");
    host_bad("{\"version\":null,\"x\":1}", RP_EPARSE,
             "host.json: version: missing; host.json must say \"version\": \"2.0\"");
    host_bad("{\"version\":\"1.0\"}", RP_EPARSE,
             "host.json: version: \"1.0\" is not \"2.0\", the only host.json schema version (it "
             "is not the Functions runtime version)");
    host_bad("{\"version\":\"3.0\"}", RP_EPARSE,
             "host.json: version: \"3.0\" is not \"2.0\", the only host.json schema version (it "
             "is not the Functions runtime version)");
    host_bad("{\"version\":\"2.0 \"}", RP_EPARSE,
             "host.json: version: \"2.0 \" is not \"2.0\", the only host.json schema version (it "
             "is not the Functions runtime version)");
    host_bad("{\"version\":2.0}", RP_EPARSE, "host.json: version: must be the string \"2.0\"");
    host_bad("{\"version\":\"2.0\",\"VERSION\":\"2.0\"}", RP_EPARSE,
             "host.json: version: given twice (member names match ignoring case; keep one)");
}

static void test_host_json_errors(void **state)
{
    char *big;

    (void)state;
    host_bad("", RP_EPARSE,
             "host.json: not valid JSON: line 1, column 0: '[' or '{' expected near end of file");
    host_bad("{\"version\":\"2.0\",}", RP_EPARSE,
             "host.json: not valid JSON: line 1, column 18: string or '}' expected near '}'");
    host_bad("{\"version\":\"2.0\",\"version\":\"2.0\"}", RP_EPARSE,
             "host.json: not valid JSON: line 1, column 26: duplicate object key near "
             "'\"version\"'");
    host_bad("[\"version\"]", RP_EPARSE, "host.json: the top level must be an object");
    host_bad("{\"version\":\"\\u0000\"}", RP_EPARSE,
             "host.json: not valid JSON: line 1, column 19: a string holds \\u0000 (NUL)");
    host_bad("{\"version\":\"2.0\",\"a\\u0000b\":1}", RP_EPARSE,
             "host.json: not valid JSON: line 1, column 27: a string holds \\u0000 (NUL)");
    host_bad("{\"version\":\"2.0\",\"a\":\"\xff\"}", RP_EPARSE,
             "host.json: not valid JSON: line 1, column 22: unable to decode byte 0xff near "
             "'\"'");
    /* The file limit: 64 KiB exactly passes, one byte more is refused before parsing. */
    big = malloc(RP_FN_FILE_MAX + 2);
    assert_non_null(big);
    memset(big, ' ', RP_FN_FILE_MAX + 1);
    memcpy(big, "{\"version\":\"2.0\"}", 17);
    big[RP_FN_FILE_MAX + 1] = '\0';
    {
        rp_fn_host *h = NULL;
        char err[256];
        assert_int_equal(rp_fn_host_parse(big, RP_FN_FILE_MAX, &h, err, sizeof(err)), 0);
        rp_fn_host_free(h);
    }
    host_bad(big, RP_ETOOBIG, "host.json: the file is 65537 bytes; at most 65536");
    free(big);
}

static void test_timeout(void **state)
{
    (void)state;
    assert_int_equal(timeout_of("\"00:05:00\""), 300);
    assert_int_equal(timeout_of("\"0:5:0\""), 300);
    assert_int_equal(timeout_of("\"00:05\""), 300); /* hh:mm */
    assert_int_equal(timeout_of("\"23:59:59\""), 86399);
    assert_int_equal(timeout_of("\"1.00:00:00\""), 86400); /* the cap itself */
    assert_int_equal(timeout_of("\"00:00:01\""), 1);       /* Azure's minimum */
    assert_int_equal(timeout_of("\"00:00:00.1\""), 1);     /* fractions round up */
    assert_int_equal(timeout_of("\"00:01:30.0000000\""), 90);
    assert_int_equal(timeout_of("\"  00:02:00 \""), 120);
    assert_int_equal(timeout_of("\"-1\""), RP_FN_TIMEOUT_MAX); /* Azure's "unbounded" */
    assert_int_equal(timeout_of("\"-1.00:00:00\""), RP_FN_TIMEOUT_MAX);
    assert_int_equal(timeout_of("null"), RP_FN_TIMEOUT_DEFAULT);

    host_bad("{\"version\":\"2.0\",\"functionTimeout\":300}", RP_EPARSE,
             "host.json: functionTimeout: must be a string \"hh:mm:ss\" (e.g. \"00:10:00\")");
    host_bad("{\"version\":\"2.0\",\"functionTimeout\":\"300\"}", RP_EPARSE,
             "host.json: functionTimeout: \"300\" is a number of days in TimeSpan syntax; write "
             "\"hh:mm:ss\" (e.g. \"00:10:00\")");
    host_bad("{\"version\":\"2.0\",\"functionTimeout\":\"-00:05:00\"}", RP_EPARSE,
             "host.json: functionTimeout: \"-00:05:00\" is negative; \"-1\" asks for rampart's "
             "maximum (86400 seconds)");
    host_bad("{\"version\":\"2.0\",\"functionTimeout\":\"00:00:00\"}", RP_EPARSE,
             "host.json: functionTimeout: \"00:00:00\" is under the minimum of 1 second");
    host_bad("{\"version\":\"2.0\",\"functionTimeout\":\"1.00:00:01\"}", RP_EPARSE,
             "host.json: functionTimeout: \"1.00:00:01\" is over rampart's maximum of 86400 "
             "seconds (24 hours)");
    host_bad("{\"version\":\"2.0\",\"functionTimeout\":\"24:00:00\"}", RP_EPARSE,
             "host.json: functionTimeout: \"24:00:00\" is not a TimeSpan \"[d.]hh:mm:ss\"");
    host_bad("{\"version\":\"2.0\",\"functionTimeout\":\"00:60:00\"}", RP_EPARSE,
             "host.json: functionTimeout: \"00:60:00\" is not a TimeSpan \"[d.]hh:mm:ss\"");
    host_bad("{\"version\":\"2.0\",\"functionTimeout\":\"00:05:00x\"}", RP_EPARSE,
             "host.json: functionTimeout: \"00:05:00x\" is not a TimeSpan \"[d.]hh:mm:ss\"");
    host_bad("{\"version\":\"2.0\",\"functionTimeout\":\"00:00:00.12345678\"}", RP_EPARSE,
             "host.json: functionTimeout: \"00:00:00.12345678\" is not a TimeSpan "
             "\"[d.]hh:mm:ss\"");
    host_bad("{\"version\":\"2.0\",\"functionTimeout\":\"5 min\"}", RP_EPARSE,
             "host.json: functionTimeout: \"5 min\" is not a TimeSpan \"[d.]hh:mm:ss\"");
    host_bad("{\"version\":\"2.0\",\"functionTimeout\":\"\"}", RP_EPARSE,
             "host.json: functionTimeout: \"\" is not a TimeSpan \"[d.]hh:mm:ss\"");
}

static void test_route_prefix(void **state)
{
    static const char *const good[] = {"api", "", "v1/api", "a-b.c_d~e", "x:y@z!$&'()*+,;="};
    char h[256];

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        rp_fn_host *x;
        snprintf(h, sizeof(h), "\"routePrefix\":\"%s\"", good[i]);
        x = http_ok(h);
        assert_string_equal(x->route_prefix, good[i]);
        rp_fn_host_free(x);
    }
    http_bad("\"routePrefix\":\"/api\"",
             "host.json: extensions.http.routePrefix: \"/api\": no '/' at the start or the end "
             "(\"api\", \"v1/api\")");
    http_bad("\"routePrefix\":\"api/\"",
             "host.json: extensions.http.routePrefix: \"api/\": no '/' at the start or the end "
             "(\"api\", \"v1/api\")");
    http_bad("\"routePrefix\":\"a//b\"",
             "host.json: extensions.http.routePrefix: \"a//b\" has an empty, \".\" or \"..\" "
             "segment");
    http_bad("\"routePrefix\":\"a/../b\"",
             "host.json: extensions.http.routePrefix: \"a/../b\" has an empty, \".\" or \"..\" "
             "segment");
    http_bad("\"routePrefix\":\"{tenant}\"",
             "host.json: extensions.http.routePrefix: \"{tenant}\": a prefix holds letters, "
             "digits and -._~!$&'()*+,;=:@ between '/'s (no route parameters, no "
             "percent-escapes)");
    http_bad("\"routePrefix\":\"a%2fb\"",
             "host.json: extensions.http.routePrefix: \"a%2fb\": a prefix holds letters, digits "
             "and -._~!$&'()*+,;=:@ between '/'s (no route parameters, no percent-escapes)");
    http_bad("\"routePrefix\":\"Admin/x\"",
             "host.json: extensions.http.routePrefix: \"Admin/x\" would put functions under the "
             "host's built-in routes (admin, runtime)");
    http_bad("\"routePrefix\":\"runtime\"",
             "host.json: extensions.http.routePrefix: \"runtime\" would put functions under the "
             "host's built-in routes (admin, runtime)");
    http_bad("\"routePrefix\":1", "host.json: extensions.http.routePrefix: must be a string");
    {
        /* Whole segments only: "administration" is fine. */
        rp_fn_host *x = http_ok("\"routePrefix\":\"administration/runtimes\"");
        rp_fn_host_free(x);
    }
    {
        char p[RP_FN_PREFIX_MAX + 64];
        rp_fn_host *x;
        memset(p, 'a', sizeof(p));
        memcpy(p, "\"routePrefix\":\"", 15);
        memcpy(p + 15 + RP_FN_PREFIX_MAX, "\"", 2);
        x = http_ok(p);
        assert_int_equal(strlen(x->route_prefix), RP_FN_PREFIX_MAX);
        rp_fn_host_free(x);
        memcpy(p + 15 + RP_FN_PREFIX_MAX, "a\"", 3);
        http_bad(p, "host.json: extensions.http.routePrefix: "
                    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"... is "
                    "over 128 bytes");
    }
}

static void test_request_bounds(void **state)
{
    rp_fn_host *h;

    (void)state;
    h = http_ok("\"maxOutstandingRequests\":1,\"maxConcurrentRequests\":1000000");
    assert_int_equal(h->max_outstanding, 1);
    assert_int_equal(h->max_concurrent, RP_FN_REQUESTS_MAX);
    rp_fn_host_free(h);
    h = http_ok("\"maxOutstandingRequests\":-1,\"MAXCONCURRENTREQUESTS\":-1");
    assert_int_equal(h->max_outstanding, -1);
    assert_int_equal(h->max_concurrent, -1);
    rp_fn_host_free(h);
    http_bad("\"maxOutstandingRequests\":0",
             "host.json: extensions.http.maxOutstandingRequests: 0 is not -1 (no bound) or 1 to "
             "1000000");
    http_bad("\"maxConcurrentRequests\":-2",
             "host.json: extensions.http.maxConcurrentRequests: -2 is not -1 (no bound) or 1 to "
             "1000000");
    http_bad("\"maxConcurrentRequests\":1000001",
             "host.json: extensions.http.maxConcurrentRequests: 1000001 is not -1 (no bound) or "
             "1 to 1000000");
    http_bad("\"maxConcurrentRequests\":\"100\"",
             "host.json: extensions.http.maxConcurrentRequests: must be a whole number: -1 (no "
             "bound) or 1 to 1000000");
    http_bad("\"maxConcurrentRequests\":10.5",
             "host.json: extensions.http.maxConcurrentRequests: must be a whole number: -1 (no "
             "bound) or 1 to 1000000");
    host_bad("{\"version\":\"2.0\",\"extensions\":[]}", RP_EPARSE,
             "host.json: extensions: must be an object");
    host_bad("{\"version\":\"2.0\",\"extensions\":{\"http\":true}}", RP_EPARSE,
             "host.json: extensions.http: must be an object");
}

static void test_custom_headers(void **state)
{
    char h[8192];
    size_t o;
    rp_fn_host *x;

    (void)state;
    x = http_ok("\"customHeaders\":{\"X-Frame-Options\":\"DENY\",\"x-a\":\"\",\"X-Tab\":\"a\\tb\","
                "\"X-Utf8\":\"\xc3\xa9\"}");
    assert_int_equal(x->nheaders, 4);
    assert_string_equal(x->headers[1].name, "x-a");
    assert_string_equal(x->headers[1].value, "");
    assert_string_equal(x->headers[2].value, "a\tb");
    assert_string_equal(x->headers[3].value, "\xc3\xa9");
    rp_fn_host_free(x);
    http_bad("\"customHeaders\":{\"X-A\":\"1\\r\\nSet-Cookie: a=b\"}",
             "host.json: extensions.http.customHeaders: \"X-A\": the value has a control "
             "character");
    http_bad("\"customHeaders\":{\"X-A\":\"\\n\"}",
             "host.json: extensions.http.customHeaders: \"X-A\": the value has a control "
             "character");
    http_bad("\"customHeaders\":{\"X A\":\"1\"}",
             "host.json: extensions.http.customHeaders: \"X A\" is not a header name (an HTTP "
             "token)");
    http_bad("\"customHeaders\":{\"X:A\":\"1\"}",
             "host.json: extensions.http.customHeaders: \"X:A\" is not a header name (an HTTP "
             "token)");
    http_bad("\"customHeaders\":{\"X\\u0001\":\"1\"}",
             "host.json: extensions.http.customHeaders: \"X\\x01\" is not a header name (an HTTP "
             "token)");
    http_bad("\"customHeaders\":{\"\":\"1\"}",
             "host.json: extensions.http.customHeaders: header names are 1 to 128 bytes");
    http_bad("\"customHeaders\":{\"X-A\":\"1\",\"x-a\":\"2\"}",
             "host.json: extensions.http.customHeaders: \"x-a\" is given twice (header names "
             "ignore case)");
    http_bad("\"customHeaders\":{\"Transfer-Encoding\":\"chunked\"}",
             "host.json: extensions.http.customHeaders: \"Transfer-Encoding\" frames the response "
             "or the connection; it cannot be added");
    http_bad("\"customHeaders\":{\"content-length\":\"0\"}",
             "host.json: extensions.http.customHeaders: \"content-length\" frames the response "
             "or the connection; it cannot be added");
    http_bad("\"customHeaders\":{\"X-A\":1}",
             "host.json: extensions.http.customHeaders: \"X-A\": the value must be a string");
    http_bad("\"customHeaders\":[\"X-A\"]",
             "host.json: extensions.http.customHeaders: must be an object");
    /* Count: 32 pass, 33 do not. */
    o = (size_t)snprintf(h, sizeof(h), "\"customHeaders\":{");
    for (int i = 0; i < RP_FN_HEADERS_MAX; i++)
        o += (size_t)snprintf(h + o, sizeof(h) - o, "%s\"X-%d\":\"v\"", i ? "," : "", i);
    snprintf(h + o, sizeof(h) - o, "}");
    x = http_ok(h);
    assert_int_equal(x->nheaders, RP_FN_HEADERS_MAX);
    rp_fn_host_free(x);
    snprintf(h + o, sizeof(h) - o, ",\"X-last\":\"v\"}");
    http_bad(h, "host.json: extensions.http.customHeaders: 33 headers; at most 32");
    /* Lengths: a 128-byte name and a 4096-byte value pass, one more byte does not. */
    {
        char *big = malloc(RP_FN_HEADER_VALUE_MAX + 256);
        assert_non_null(big);
        o = (size_t)snprintf(big, 64, "\"customHeaders\":{\"X\":\"");
        memset(big + o, 'v', RP_FN_HEADER_VALUE_MAX);
        memcpy(big + o + RP_FN_HEADER_VALUE_MAX, "\"}", 3);
        x = http_ok(big);
        assert_int_equal(strlen(x->headers[0].value), RP_FN_HEADER_VALUE_MAX);
        rp_fn_host_free(x);
        memcpy(big + o + RP_FN_HEADER_VALUE_MAX, "v\"}", 4);
        http_bad(big, "host.json: extensions.http.customHeaders: \"X\": the value is over 4096 "
                      "bytes");
        o = (size_t)snprintf(big, 64, "\"customHeaders\":{\"");
        memset(big + o, 'n', RP_FN_HEADER_NAME_MAX);
        memcpy(big + o + RP_FN_HEADER_NAME_MAX, "\":\"v\"}", 7);
        x = http_ok(big);
        assert_int_equal(strlen(x->headers[0].name), RP_FN_HEADER_NAME_MAX);
        rp_fn_host_free(x);
        memcpy(big + o + RP_FN_HEADER_NAME_MAX, "n\":\"v\"}", 8);
        http_bad(big, "host.json: extensions.http.customHeaders: header names are 1 to 128 bytes");
        free(big);
    }
}

static void test_handler_paths(void **state)
{
    rp_fn_host *h;

    (void)state;
    h = host_desc_ok("\"defaultExecutablePath\":\"handler\"");
    assert_string_equal(h->handler->exe, "handler");
    assert_int_equal(h->handler->exe_in_app, 0);
    assert_string_equal(h->handler->workdir, "");
    assert_int_equal(h->handler->nargs, 0);
    rp_fn_host_free(h);
    h = host_desc_ok("\"defaultExecutablePath\":\"./handler\",\"workingDirectory\":\"./app/./x\","
                     "\"defaultWorkerPath\":\"lib//server.js\",\"workerArguments\":[\"-v\"]");
    assert_string_equal(h->handler->exe, "handler");
    assert_int_equal(h->handler->exe_in_app, 1);
    assert_string_equal(h->handler->workdir, "app/x");
    assert_string_equal(h->handler->worker_path, "lib/server.js");
    assert_int_equal(h->handler->nworker_args, 1);
    assert_string_equal(h->handler->worker_args[0], "-v");
    rp_fn_host_free(h);
    h = host_desc_ok("\"defaultExecutablePath\":\"bin/h\",\"workingDirectory\":\".\"");
    assert_string_equal(h->handler->workdir, "");
    rp_fn_host_free(h);
    /* A name with dots is a name, not a "." segment. */
    h = host_desc_ok("\"defaultExecutablePath\":\"..handler.exe\"");
    assert_string_equal(h->handler->exe, "..handler.exe");
    rp_fn_host_free(h);

    host_desc_bad("\"defaultExecutablePath\":\"/usr/bin/node\"",
                  "host.json: customHandler.description.defaultExecutablePath: \"/usr/bin/node\" "
                  "is absolute; give a path inside the app (or a program name)");
    host_desc_bad("\"defaultExecutablePath\":\"../handler\"",
                  "host.json: customHandler.description.defaultExecutablePath: \"../handler\" "
                  "leaves the app (\"..\")");
    host_desc_bad("\"defaultExecutablePath\":\"bin/../../x\"",
                  "host.json: customHandler.description.defaultExecutablePath: \"bin/../../x\" "
                  "leaves the app (\"..\")");
    host_desc_bad("\"defaultExecutablePath\":\"bin\\\\handler.exe\"",
                  "host.json: customHandler.description.defaultExecutablePath: "
                  "\"bin\\\\handler.exe\" has a '\\'; separate directories with '/'");
    host_desc_bad("\"defaultExecutablePath\":\"%HOME%/h\"",
                  "host.json: customHandler.description.defaultExecutablePath: \"%HOME%/h\" has a "
                  "'%': paths are not expanded (pass settings as arguments)");
    host_desc_bad("\"defaultExecutablePath\":\"h\\n\"",
                  "host.json: customHandler.description.defaultExecutablePath: \"h\\x0a\" has a "
                  "control character");
    host_desc_bad("\"defaultExecutablePath\":\"./.\"",
                  "host.json: customHandler.description.defaultExecutablePath: \"./.\" names no "
                  "file");
    host_desc_bad("\"defaultExecutablePath\":\"bin/\"",
                  "host.json: customHandler.description.defaultExecutablePath: \"bin/\" ends in "
                  "'/'; name a file");
    host_desc_bad("\"defaultExecutablePath\":\"node\",\"defaultWorkerPath\":\"lib/\"",
                  "host.json: customHandler.description.defaultWorkerPath: \"lib/\" ends in '/'; "
                  "name a file");
    host_desc_bad("\"defaultExecutablePath\":\"\"",
                  "host.json: customHandler.description.defaultExecutablePath: missing; name the "
                  "handler: a file in the app (\"handler\", \"bin/handler\") or a program "
                  "(\"node\")");
    host_desc_bad("\"workingDirectory\":\"x\"",
                  "host.json: customHandler.description.defaultExecutablePath: missing; name the "
                  "handler: a file in the app (\"handler\", \"bin/handler\") or a program "
                  "(\"node\")");
    host_desc_bad("\"defaultExecutablePath\":[\"node\"]",
                  "host.json: customHandler.description.defaultExecutablePath: must be a string");
    host_desc_bad("\"defaultExecutablePath\":\"h\",\"workingDirectory\":\"/srv\"",
                  "host.json: customHandler.description.workingDirectory: \"/srv\" is absolute; "
                  "give a path inside the app (or a program name)");
    host_desc_bad("\"defaultExecutablePath\":\"h\",\"workingDirectory\":\"..\"",
                  "host.json: customHandler.description.workingDirectory: \"..\" leaves the app "
                  "(\"..\")");
    host_desc_bad("\"defaultExecutablePath\":\"h\",\"workingDirectory\":false",
                  "host.json: customHandler.description.workingDirectory: must be a string");
    host_desc_bad("\"defaultExecutablePath\":\"node\",\"defaultWorkerPath\":\"../s.js\"",
                  "host.json: customHandler.description.defaultWorkerPath: \"../s.js\" leaves the "
                  "app (\"..\")");
    host_desc_bad("\"defaultExecutablePath\":\"node\",\"defaultWorkerPath\":\".\"",
                  "host.json: customHandler.description.defaultWorkerPath: \".\" names no file");
    host_bad("{\"version\":\"2.0\",\"customHandler\":{}}", RP_EPARSE,
             "host.json: customHandler.description: missing; it says how to start the handler "
             "(defaultExecutablePath)");
    host_bad("{\"version\":\"2.0\",\"customHandler\":\"handler\"}", RP_EPARSE,
             "host.json: customHandler: must be an object");
    host_bad("{\"version\":\"2.0\",\"customHandler\":{\"description\":\"h\"}}", RP_EPARSE,
             "host.json: customHandler.description: must be an object");
    host_bad("{\"version\":\"2.0\",\"customHandler\":{\"description\":{\"defaultExecutablePath\":"
             "\"h\"},\"enableForwardingHttpRequest\":\"true\"}}",
             RP_EPARSE,
             "host.json: customHandler.enableForwardingHttpRequest: must be true or false");
    /* Path length: 1024 bytes pass, 1025 do not. */
    {
        char d[RP_FN_PATH_MAX + 64];
        size_t o = (size_t)snprintf(d, 64, "\"defaultExecutablePath\":\"");
        memset(d + o, 'p', RP_FN_PATH_MAX);
        memcpy(d + o + RP_FN_PATH_MAX, "\"", 2);
        h = host_desc_ok(d);
        assert_int_equal(strlen(h->handler->exe), RP_FN_PATH_MAX);
        rp_fn_host_free(h);
        memcpy(d + o + RP_FN_PATH_MAX, "p\"", 3);
        host_desc_bad(d, "host.json: customHandler.description.defaultExecutablePath: "
                         "\"pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp\"... "
                         "is over 1024 bytes");
    }
}

static void test_handler_args(void **state)
{
    char d[4096], big[RP_FN_ARG_MAX + 128];
    size_t o;
    rp_fn_host *h;

    (void)state;
    /* Count: 64 arguments pass, 65 do not. */
    o = (size_t)snprintf(d, sizeof(d), "\"defaultExecutablePath\":\"h\",\"arguments\":[");
    for (int i = 0; i < RP_FN_ARGS_MAX; i++)
        o += (size_t)snprintf(d + o, sizeof(d) - o, "%s\"a%d\"", i ? "," : "", i);
    snprintf(d + o, sizeof(d) - o, "]");
    h = host_desc_ok(d);
    assert_int_equal(h->handler->nargs, RP_FN_ARGS_MAX);
    assert_string_equal(h->handler->args[63], "a63");
    rp_fn_host_free(h);
    snprintf(d + o, sizeof(d) - o, ",\"x\"]");
    host_desc_bad(d, "host.json: customHandler.description.arguments: 65 entries; at most 64");
    /* Length: 1024 bytes pass, 1025 do not. */
    o = (size_t)snprintf(big, sizeof(big), "\"defaultExecutablePath\":\"h\",\"arguments\":[\"");
    memset(big + o, 'a', RP_FN_ARG_MAX);
    memcpy(big + o + RP_FN_ARG_MAX, "\"]", 3);
    h = host_desc_ok(big);
    assert_int_equal(strlen(h->handler->args[0]), RP_FN_ARG_MAX);
    rp_fn_host_free(h);
    memcpy(big + o + RP_FN_ARG_MAX, "a\"]", 4);
    host_desc_bad(big, "host.json: customHandler.description.arguments[0]: "
                       "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"... is "
                       "over 1024 bytes");
    host_desc_bad("\"defaultExecutablePath\":\"h\",\"arguments\":\"--a --b\"",
                  "host.json: customHandler.description.arguments: must be an array of strings");
    host_desc_bad("\"defaultExecutablePath\":\"h\",\"arguments\":[\"a\",7]",
                  "host.json: customHandler.description.arguments[1]: must be a string");
    host_desc_bad("\"defaultExecutablePath\":\"h\",\"workerArguments\":[null]",
                  "host.json: customHandler.description.workerArguments[0]: must be a string");
}

static void test_legacy_http_worker(void **state)
{
    rp_fn_host *h;

    (void)state;
    /* httpWorker alone: Azure forwards whatever the flag says. */
    h = host_ok("{\"version\":\"2.0\",\"httpWorker\":{\"description\":{\"defaultExecutablePath\":"
                "\"node\",\"defaultWorkerPath\":\"server.js\",\"arguments\":[\"--a\"]},"
                "\"enableForwardingHttpRequest\":false}}");
    assert_int_equal(h->handler->legacy, 1);
    assert_int_equal(h->handler->forward, 1);
    assert_int_equal(h->handler->proxy, 0);
    assert_string_equal(h->handler->exe, "node");
    assert_string_equal(h->handler->worker_path, "server.js");
    rp_fn_host_free(h);
    /* Both: customHandler wins and httpWorker is not read, even when it is broken. */
    h = host_ok("{\"version\":\"2.0\",\"httpWorker\":{\"description\":{\"defaultExecutablePath\":"
                "\"/abs/legacy\"},\"enableForwardingHttpRequest\":1},\"customHandler\":{"
                "\"description\":{\"defaultExecutablePath\":\"new\"}}}");
    assert_int_equal(h->handler->legacy, 0);
    assert_int_equal(h->handler->forward, 0);
    assert_string_equal(h->handler->exe, "new");
    rp_fn_host_free(h);
    /* customHandler: null counts as absent, so httpWorker applies. */
    h = host_ok("{\"version\":\"2.0\",\"customHandler\":null,\"HttpWorker\":{\"description\":{"
                "\"defaultExecutablePath\":\"old\"}}}");
    assert_int_equal(h->handler->legacy, 1);
    assert_string_equal(h->handler->exe, "old");
    rp_fn_host_free(h);
    /* The newer proxying flag forwards too, and says so. */
    h = host_ok("{\"version\":\"2.0\",\"customHandler\":{\"description\":{"
                "\"defaultExecutablePath\":\"h\"},\"enableProxyingHttpRequest\":true}}");
    assert_int_equal(h->handler->forward, 1);
    assert_int_equal(h->handler->proxy, 1);
    rp_fn_host_free(h);
    host_bad("{\"version\":\"2.0\",\"httpWorker\":{\"description\":{}}}", RP_EPARSE,
             "host.json: httpWorker.description.defaultExecutablePath: missing; name the handler: "
             "a file in the app (\"handler\", \"bin/handler\") or a program (\"node\")");
    host_bad("{\"version\":\"2.0\",\"customHandler\":{\"description\":{\"defaultExecutablePath\":"
             "\"h\",\"DefaultExecutablePath\":\"g\"}}}",
             RP_EPARSE,
             "host.json: customHandler.description.defaultExecutablePath: given twice (member "
             "names match ignoring case; keep one)");
}

/* ---- function.json ------------------------------------------------------------------------ */

static void test_http_function(void **state)
{
    /* The docs' custom handler example, with a route template and other members Azure has. */
    static const char json[] =
        "{\n"
        "  \"scriptFile\": \"../handler\",\n"
        "  \"bindings\": [\n"
        "    {\"authLevel\": \"function\", \"type\": \"httpTrigger\", \"direction\": \"in\",\n"
        "     \"name\": \"req\", \"methods\": [\"get\", \"post\"],\n"
        "     \"route\": \"products/{category:alpha}/{id:int?}\"},\n"
        "    {\"type\": \"http\", \"direction\": \"out\", \"name\": \"res\"}\n"
        "  ],\n"
        "  \"disabled\": false\n"
        "}\n";
    rp_fn_function *f = fn_ok("order", json);

    (void)state;
    assert_int_equal(f->disabled, 0);
    assert_int_equal(f->nbindings, 2);
    assert_int_equal(f->trigger, 0);
    assert_int_equal(f->http_out, 1);
    assert_int_equal(f->bindings[0].type, RP_FN_HTTP_TRIGGER);
    assert_string_equal(f->bindings[0].name, "req");
    assert_int_equal(f->bindings[0].auth_level, RP_FN_AUTH_FUNCTION);
    assert_int_equal(f->bindings[0].methods, RP_FN_GET | RP_FN_POST);
    assert_string_equal(f->bindings[0].route, "products/{category:alpha}/{id:int?}");
    assert_null(f->bindings[0].schedule);
    assert_int_equal(f->bindings[1].type, RP_FN_HTTP_OUT);
    assert_string_equal(f->bindings[1].name, "res");
    assert_null(f->bindings[1].route);
    rp_fn_function_free(f);

    /* Defaults: authLevel function, all methods, the route is the function name; the output
     * may come first, be $return, and be missing. */
    f = fn_ok("Hello_World-2", "{\"bindings\":[{\"type\":\"http\",\"direction\":\"out\",\"name\":"
                               "\"$return\"},{\"type\":\"httpTrigger\",\"name\":\"req\"}],"
                               "\"disabled\":true}");
    assert_int_equal(f->disabled, 1);
    assert_int_equal(f->trigger, 1);
    assert_int_equal(f->http_out, 0);
    assert_string_equal(f->bindings[0].name, "$return");
    assert_int_equal(f->bindings[1].auth_level, RP_FN_AUTH_FUNCTION);
    assert_int_equal(f->bindings[1].methods, RP_FN_ALL_METHODS);
    assert_string_equal(f->bindings[1].route, "Hello_World-2");
    rp_fn_function_free(f);
    f = bind_ok(HTTP_IN "}");
    assert_int_equal(f->http_out, 1);
    assert_string_equal(f->bindings[0].route, "fn");
    rp_fn_function_free(f);
    /* An empty or blank route is the function name too (Azure: IsNullOrWhiteSpace). */
    f = bind_ok(HTTP_IN ",\"route\":\"  \"}");
    assert_string_equal(f->bindings[0].route, "fn");
    rp_fn_function_free(f);
    f = bind_ok(HTTP_IN ",\"route\":\"\"}");
    assert_string_equal(f->bindings[0].route, "fn");
    rp_fn_function_free(f);
    /* Type, direction and member names ignore case. */
    f = bind_ok("{\"TYPE\":\"HTTPTRIGGER\",\"Direction\":\"IN\",\"NAME\":\"req\",\"AuthLevel\":"
                "\"anonymous\",\"ROUTE\":\"{*path}\"},{\"type\":\"Http\",\"direction\":\"Out\","
                "\"name\":\"res\"}");
    assert_int_equal(f->bindings[0].auth_level, RP_FN_AUTH_ANONYMOUS);
    assert_string_equal(f->bindings[0].route, "{*path}");
    assert_int_equal(f->bindings[1].type, RP_FN_HTTP_OUT);
    rp_fn_function_free(f);
}

static void test_auth_level(void **state)
{
    static const struct {
        const char *v;
        rp_fn_auth want;
    } good[] = {{"anonymous", RP_FN_AUTH_ANONYMOUS},
                {"ANONYMOUS", RP_FN_AUTH_ANONYMOUS},
                {"Function", RP_FN_AUTH_FUNCTION},
                {"admin", RP_FN_AUTH_ADMIN},
                {"aDmIn", RP_FN_AUTH_ADMIN}};
    char b[256];

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        rp_fn_function *f;
        snprintf(b, sizeof(b), HTTP_IN ",\"authLevel\":\"%s\"}", good[i].v);
        f = bind_ok(b);
        assert_int_equal(f->bindings[0].auth_level, good[i].want);
        rp_fn_function_free(f);
    }
    bind_bad(HTTP_IN ",\"authLevel\":\"superuser\"}",
             "fn/function.json: bindings[0].authLevel: \"superuser\" is not anonymous, function or "
             "admin");
    /* Azure's enum has System and User; neither can be set in function.json. */
    bind_bad(HTTP_IN ",\"authLevel\":\"system\"}",
             "fn/function.json: bindings[0].authLevel: \"system\" is not anonymous, function or "
             "admin");
    bind_bad(HTTP_IN ",\"authLevel\":\"user\"}",
             "fn/function.json: bindings[0].authLevel: \"user\" is not anonymous, function or "
             "admin");
    bind_bad(HTTP_IN ",\"authLevel\":\"admin \"}",
             "fn/function.json: bindings[0].authLevel: \"admin \" is not anonymous, function or "
             "admin");
    bind_bad(HTTP_IN ",\"authLevel\":4}",
             "fn/function.json: bindings[0].authLevel: must be a string: anonymous, function or "
             "admin");
    assert_string_equal(rp_fn_auth_name(RP_FN_AUTH_ADMIN), "admin");
    assert_string_equal(rp_fn_auth_name(RP_FN_AUTH_ANONYMOUS), "anonymous");
    assert_null(rp_fn_auth_name((rp_fn_auth)3));
}

static void test_methods(void **state)
{
    rp_fn_function *f;

    (void)state;
    f = bind_ok(HTTP_IN ",\"methods\":[\"GET\",\"Post\",\"put\",\"delete\",\"PATCH\",\"head\","
                        "\"options\",\"trace\"]}");
    assert_int_equal(f->bindings[0].methods, RP_FN_ALL_METHODS);
    rp_fn_function_free(f);
    f = bind_ok(HTTP_IN ",\"methods\":[\"options\"]}");
    assert_int_equal(f->bindings[0].methods, RP_FN_OPTIONS);
    rp_fn_function_free(f);
    f = bind_ok(HTTP_IN ",\"methods\":null}");
    assert_int_equal(f->bindings[0].methods, RP_FN_ALL_METHODS);
    rp_fn_function_free(f);
    bind_bad(HTTP_IN ",\"methods\":[\"get\",\"GET\"]}",
             "fn/function.json: bindings[0].methods[1]: \"GET\" is listed twice");
    bind_bad(HTTP_IN ",\"methods\":[\"get\",\"fetch\"]}",
             "fn/function.json: bindings[0].methods[1]: \"fetch\" is not get, post, put, delete, "
             "patch, head, options or trace");
    bind_bad(HTTP_IN ",\"methods\":[]}",
             "fn/function.json: bindings[0].methods: empty; list at least one method, or leave "
             "methods out to allow all");
    bind_bad(HTTP_IN ",\"methods\":\"get\"}",
             "fn/function.json: bindings[0].methods: must be an array of method names");
    bind_bad(HTTP_IN ",\"methods\":[\"get\",true]}",
             "fn/function.json: bindings[0].methods[1]: must be a string");
    assert_string_equal(rp_fn_method_name(RP_FN_GET), "GET");
    assert_string_equal(rp_fn_method_name(RP_FN_TRACE), "TRACE");
    assert_null(rp_fn_method_name(RP_FN_GET | RP_FN_POST));
    assert_null(rp_fn_method_name(0));
}

static void test_routes(void **state)
{
    char b[RP_FN_ROUTE_MAX + 256];
    rp_fn_function *f;
    size_t o;

    (void)state;
    bind_bad(HTTP_IN ",\"route\":\"admin/keys\"}",
             "fn/function.json: bindings[0].route: \"admin/keys\" conflicts with the host's "
             "built-in routes (a route may not start with \"admin\" or \"runtime\")");
    bind_bad(
        HTTP_IN ",\"route\":\"//Runtime/webhooks\"}",
        "fn/function.json: bindings[0].route: \"//Runtime/webhooks\" conflicts with the host's "
        "built-in routes (a route may not start with \"admin\" or \"runtime\")");
    /* Azure compares a string prefix, not a segment. */
    bind_bad(HTTP_IN ",\"route\":\"administrators\"}",
             "fn/function.json: bindings[0].route: \"administrators\" conflicts with the host's "
             "built-in routes (a route may not start with \"admin\" or \"runtime\")");
    fn_bad("adminPanel", "{\"bindings\":[" HTTP_IN "}]}",
           "adminPanel/function.json: bindings[0].route: absent, so the route is the function name "
           "\"adminPanel\", which conflicts with the host's built-in routes (\"admin...\", "
           "\"runtime...\"); set a route");
    f = fn_ok("adminPanel", "{\"bindings\":[" HTTP_IN ",\"route\":\"panel/admin\"}]}");
    assert_string_equal(f->bindings[0].route, "panel/admin");
    rp_fn_function_free(f);
    bind_bad(HTTP_IN ",\"route\":\"a\\tb\"}",
             "fn/function.json: bindings[0].route: \"a\\x09b\" has a control character");
    bind_bad(HTTP_IN ",\"route\":[\"a\"]}",
             "fn/function.json: bindings[0].route: must be a string");
    bind_bad(HTTP_IN ",\"webHookType\":\"github\"}",
             "fn/function.json: bindings[0].webHookType: webhook types are a Functions 1.x "
             "feature; use authLevel and read the payload in the handler");
    /* Length: 512 bytes (the route module's limit) pass, 513 do not. */
    o = (size_t)snprintf(b, sizeof(b), HTTP_IN ",\"route\":\"");
    memset(b + o, 'r', RP_FN_ROUTE_MAX);
    memcpy(b + o + RP_FN_ROUTE_MAX, "\"}", 3);
    f = bind_ok(b);
    assert_int_equal(strlen(f->bindings[0].route), RP_FN_ROUTE_MAX);
    rp_fn_function_free(f);
    memcpy(b + o + RP_FN_ROUTE_MAX, "r\"}", 4);
    bind_bad(b, "fn/function.json: bindings[0].route: "
                "\"rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr\"... is over "
                "512 bytes");
    /* A template the route module refuses is reported here, with the file and the path. */
    bind_bad(HTTP_IN ",\"route\":\"items/{id:regex(^\\\\d+$)}\"}",
             "fn/function.json: bindings[0].route: segment 2 ('{id:regex(^\\d+$)}'): regex "
             "constraints are not supported");
    bind_bad(HTTP_IN ",\"route\":\"a/{x}.{y}\"}",
             "fn/function.json: bindings[0].route: segment 2 ('{x}.{y}'): a segment must be "
             "one literal or one parameter; complex segments such as '{a}.{b}' or 'file{n}' are "
             "not supported");
}

static void test_timer_function(void **state)
{
    rp_fn_function *f;

    (void)state;
    f = bind_ok("{\"name\":\"myTimer\",\"type\":\"timerTrigger\",\"direction\":\"in\",\"schedule\":"
                "\"0 */5 * * * *\",\"runOnStartup\":true,\"useMonitor\":false}");
    assert_int_equal(f->bindings[0].type, RP_FN_TIMER_TRIGGER);
    assert_string_equal(f->bindings[0].schedule, "0 */5 * * * *");
    assert_int_equal(f->bindings[0].run_on_startup, 1);
    assert_int_equal(f->bindings[0].use_monitor, 0);
    assert_null(f->bindings[0].route);
    assert_int_equal(f->http_out, 1);
    rp_fn_function_free(f);
    f = bind_ok("{\"name\":\"t\",\"type\":\"timerTrigger\",\"schedule\":\"%TIMER_SCHEDULE%\"}");
    assert_string_equal(f->bindings[0].schedule, "%TIMER_SCHEDULE%");
    assert_int_equal(f->bindings[0].run_on_startup, 0);
    assert_int_equal(f->bindings[0].use_monitor, -1);
    rp_fn_function_free(f);
    f = bind_ok("{\"name\":\"t\",\"type\":\"timerTrigger\",\"schedule\":\"01:00:00\","
                "\"useMonitor\":true}");
    assert_string_equal(f->bindings[0].schedule, "01:00:00");
    assert_int_equal(f->bindings[0].use_monitor, 1);
    rp_fn_function_free(f);
    bind_bad("{\"name\":\"t\",\"type\":\"timerTrigger\"}",
             "fn/function.json: bindings[0].schedule: missing");
    bind_bad("{\"name\":\"t\",\"type\":\"timerTrigger\",\"schedule\":\"\"}",
             "fn/function.json: bindings[0].schedule: empty");
    bind_bad("{\"name\":\"t\",\"type\":\"timerTrigger\",\"schedule\":5}",
             "fn/function.json: bindings[0].schedule: must be a string");
    bind_bad("{\"name\":\"t\",\"type\":\"timerTrigger\",\"schedule\":\"0 * * * * *\","
             "\"runOnStartup\":\"true\"}",
             "fn/function.json: bindings[0].runOnStartup: must be true or false");
    bind_bad("{\"name\":\"t\",\"type\":\"timerTrigger\",\"schedule\":\"0 * * * * *\","
             "\"useMonitor\":0}",
             "fn/function.json: bindings[0].useMonitor: must be true or false");
}

static void test_eventgrid_and_blob(void **state)
{
    rp_fn_function *f;

    (void)state;
    f = bind_ok("{\"type\":\"eventGridTrigger\",\"name\":\"eventGridEvent\",\"direction\":\"in\"}");
    assert_int_equal(f->bindings[0].type, RP_FN_EVENTGRID_TRIGGER);
    assert_string_equal(f->bindings[0].name, "eventGridEvent");
    rp_fn_function_free(f);
    f = bind_ok("{\"name\":\"myBlob\",\"type\":\"blobTrigger\",\"direction\":\"in\",\"path\":"
                "\"samples-workitems/{name}.{ext}\",\"connection\":\"MyStorage\",\"source\":"
                "\"EventGrid\"}");
    assert_int_equal(f->bindings[0].type, RP_FN_BLOB_TRIGGER);
    assert_string_equal(f->bindings[0].path, "samples-workitems/{name}.{ext}");
    assert_string_equal(f->bindings[0].connection, "MyStorage");
    assert_int_equal(f->bindings[0].source, RP_FN_BLOB_EVENTGRID);
    rp_fn_function_free(f);
    f = bind_ok("{\"name\":\"b\",\"type\":\"blobTrigger\",\"path\":\"c/{name}\",\"source\":"
                "\"logsandcontainerscan\"}");
    assert_null(f->bindings[0].connection);
    assert_int_equal(f->bindings[0].source, RP_FN_BLOB_SCAN);
    rp_fn_function_free(f);
    f = bind_ok("{\"name\":\"b\",\"type\":\"blobTrigger\",\"path\":\"c/{name}\"}");
    assert_int_equal(f->bindings[0].source, RP_FN_BLOB_SCAN);
    rp_fn_function_free(f);
    bind_bad("{\"name\":\"b\",\"type\":\"blobTrigger\"}",
             "fn/function.json: bindings[0].path: missing");
    bind_bad("{\"name\":\"b\",\"type\":\"blobTrigger\",\"path\":\"c/x\",\"source\":\"Polling\"}",
             "fn/function.json: bindings[0].source: \"Polling\" is not LogsAndContainerScan or "
             "EventGrid");
    bind_bad("{\"name\":\"b\",\"type\":\"blobTrigger\",\"path\":\"c/x\",\"connection\":\"a b\"}",
             "fn/function.json: bindings[0].connection: \"a b\" is not an app setting name "
             "(letters, digits, '_', '.', ':', '-')");
    bind_bad("{\"name\":\"b\",\"type\":\"blobTrigger\",\"path\":\"c/x\",\"connection\":\"\"}",
             "fn/function.json: bindings[0].connection: empty");
    assert_string_equal(rp_fn_binding_type_name(RP_FN_BLOB_TRIGGER), "blobTrigger");
    assert_string_equal(rp_fn_binding_type_name(RP_FN_HTTP_OUT), "http");
    assert_null(rp_fn_binding_type_name((rp_fn_binding_type)0));
}

static void test_binding_types_and_directions(void **state)
{
    (void)state;
    bind_bad(HTTP_IN "},{\"type\":\"queue\",\"direction\":\"out\",\"name\":\"msg\"}",
             "fn/function.json: bindings[1].type: unknown binding type \"queue\"; rampart has "
             "httpTrigger, timerTrigger, eventGridTrigger, blobTrigger and http");
    bind_bad("{\"type\":\"serviceBusTrigger\",\"name\":\"m\"}",
             "fn/function.json: bindings[0].type: unknown binding type \"serviceBusTrigger\"; "
             "rampart has httpTrigger, timerTrigger, eventGridTrigger, blobTrigger and http");
    bind_bad("{\"name\":\"m\"}", "fn/function.json: bindings[0].type: missing; every binding has a "
                                 "type");
    bind_bad("{\"type\":7,\"name\":\"m\"}", "fn/function.json: bindings[0].type: must be a string");
    bind_bad("{\"type\":\"eventGridTrigger\",\"direction\":\"out\",\"name\":\"e\"}",
             "fn/function.json: bindings[0].direction: \"out\": a trigger's direction is \"in\"");
    bind_bad("{\"type\":\"eventGridTrigger\",\"direction\":\"inout\",\"name\":\"e\"}",
             "fn/function.json: bindings[0].direction: \"inout\": a trigger's direction is \"in\"");
    bind_bad("{\"type\":\"eventGridTrigger\",\"direction\":\"sideways\",\"name\":\"e\"}",
             "fn/function.json: bindings[0].direction: \"sideways\" is not in or out");
    bind_bad(HTTP_IN "},{\"type\":\"http\",\"name\":\"res\"}",
             "fn/function.json: bindings[1].direction: an http binding is the function's "
             "response: direction must be \"out\"");
    bind_bad(HTTP_IN "},{\"type\":\"http\",\"direction\":\"in\",\"name\":\"res\"}",
             "fn/function.json: bindings[1].direction: an http binding is the function's "
             "response: direction must be \"out\"");
    bind_bad("[\"httpTrigger\"]", "fn/function.json: bindings[0]: must be an object");
    bind_bad("{\"type\":\"http\",\"type\":\"http\"}",
             "fn/function.json: not valid JSON: line 1, column 34: duplicate object key near "
             "'\"type\"'");
    bind_bad("{\"type\":\"httpTrigger\",\"Type\":\"timerTrigger\",\"name\":\"x\"}",
             "fn/function.json: bindings[0].type: given twice (member names match ignoring "
             "case; keep one)");
}

static void test_binding_names(void **state)
{
    char b[512];
    size_t o;
    rp_fn_function *f;

    (void)state;
    bind_bad("{\"type\":\"httpTrigger\",\"name\":\"my_req\"}",
             "fn/function.json: bindings[0].name: \"my_req\" is not a binding name: a letter, then "
             "letters and digits (at most 128), or \"$return\"");
    bind_bad("{\"type\":\"httpTrigger\",\"name\":\"1req\"}",
             "fn/function.json: bindings[0].name: \"1req\" is not a binding name: a letter, then "
             "letters and digits (at most 128), or \"$return\"");
    bind_bad("{\"type\":\"httpTrigger\",\"name\":\"\"}",
             "fn/function.json: bindings[0].name: \"\" is not a binding name: a letter, then "
             "letters and digits (at most 128), or \"$return\"");
    bind_bad("{\"type\":\"httpTrigger\",\"name\":\"$Return\"}",
             "fn/function.json: bindings[0].name: \"$Return\" is not a binding name: a letter, "
             "then letters and digits (at most 128), or \"$return\"");
    bind_bad("{\"type\":\"httpTrigger\",\"name\":\"$return\"}",
             "fn/function.json: bindings[0].name: \"$return\" names an output: direction must be "
             "\"out\"");
    bind_bad("{\"type\":\"httpTrigger\"}",
             "fn/function.json: bindings[0].name: missing; every binding has a name");
    bind_bad("{\"type\":\"httpTrigger\",\"name\":null}",
             "fn/function.json: bindings[0].name: missing; every binding has a name");
    /* Unique ignoring case. */
    bind_bad(HTTP_IN "},{\"type\":\"http\",\"direction\":\"out\",\"name\":\"REQ\"}",
             "fn/function.json: bindings[1].name: \"REQ\" is also the name of bindings[0]; "
             "binding names are unique (ignoring case)");
    /* Length: 128 pass, 129 do not. */
    o = (size_t)snprintf(b, sizeof(b), "{\"type\":\"eventGridTrigger\",\"name\":\"");
    memset(b + o, 'n', RP_FN_BINDING_NAME_MAX);
    memcpy(b + o + RP_FN_BINDING_NAME_MAX, "\"}", 3);
    f = bind_ok(b);
    assert_int_equal(strlen(f->bindings[0].name), RP_FN_BINDING_NAME_MAX);
    rp_fn_function_free(f);
    memcpy(b + o + RP_FN_BINDING_NAME_MAX, "n\"}", 4);
    bind_bad(b, "fn/function.json: bindings[0].name: "
                "\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\"... is not a "
                "binding name: a letter, then letters and digits (at most 128), or \"$return\"");
}

static void test_one_trigger(void **state)
{
    char b[4096];
    size_t o = 0;

    (void)state;
    bind_bad(HTTP_OUT, "fn/function.json: bindings: no trigger; a function has exactly one "
                       "(httpTrigger, timerTrigger, eventGridTrigger or blobTrigger)");
    bind_bad(HTTP_IN "},{\"type\":\"timerTrigger\",\"name\":\"t\",\"schedule\":\"0 * * * * *\"}",
             "fn/function.json: bindings[1]: a second trigger (bindings[0] is one); a function "
             "has exactly one");
    bind_bad(HTTP_IN "}," HTTP_OUT ",{\"type\":\"http\",\"direction\":\"out\",\"name\":\"res2\"}",
             "fn/function.json: bindings[2]: a second http output; a function has one response");
    bind_bad("{\"type\":\"timerTrigger\",\"name\":\"t\",\"schedule\":\"0 * * * * *\"}," HTTP_OUT,
             "fn/function.json: bindings[1]: an http output needs an httpTrigger");
    fn_bad("fn", "{\"bindings\":[]}",
           "fn/function.json: bindings: empty; at least one binding must be declared");
    fn_bad("fn", "{\"disabled\":false}",
           "fn/function.json: bindings: missing; at least one binding must be declared");
    fn_bad("fn", "{\"bindings\":{}}",
           "fn/function.json: bindings: must be an array of binding "
           "objects");
    /* Count: 16 bindings are read (the second trigger is the problem), 17 are not. */
    for (int i = 0; i < RP_FN_BINDINGS_MAX; i++)
        o += (size_t)snprintf(b + o, sizeof(b) - o,
                              "%s{\"type\":\"eventGridTrigger\",\"name\":"
                              "\"e%d\"}",
                              i ? "," : "", i);
    bind_bad(b, "fn/function.json: bindings[1]: a second trigger (bindings[0] is one); a function "
                "has exactly one");
    snprintf(b + o, sizeof(b) - o, ",{}");
    bind_bad(b, "fn/function.json: bindings: 17 bindings; at most 16");
}

static void test_identity(void **state)
{
    rp_fn_function *f;

    (void)state;
    f = fn_ok("fn", "{\"bindings\":[" HTTP_IN "}]}");
    assert_int_equal(f->own_identity, 0);
    rp_fn_function_free(f);
    f = fn_ok("fn", "{\"Identity\":{\"TYPE\":\"systemassigned\"},\"bindings\":[" HTTP_IN "}]}");
    assert_int_equal(f->own_identity, 1);
    rp_fn_function_free(f);
    f = fn_ok("fn", "{\"identity\":{\"type\":\"None\"},\"bindings\":[" HTTP_IN "}]}");
    assert_int_equal(f->own_identity, 0);
    rp_fn_function_free(f);
    fn_bad("fn", "{\"identity\":\"SystemAssigned\",\"bindings\":[" HTTP_IN "}]}",
           "fn/function.json: identity: must be an object");
    fn_bad("fn", "{\"identity\":{},\"bindings\":[" HTTP_IN "}]}",
           "fn/function.json: identity.type: must be \"SystemAssigned\" (a managed identity of "
           "the function's own) or \"None\"");
    fn_bad("fn", "{\"identity\":{\"type\":\"UserAssigned\"},\"bindings\":[" HTTP_IN "}]}",
           "fn/function.json: identity.type: must be \"SystemAssigned\" (a managed identity of "
           "the function's own) or \"None\"");
    fn_bad("fn", "{\"identity\":{\"type\":1},\"bindings\":[" HTTP_IN "}]}",
           "fn/function.json: identity.type: must be a string");
    {
        /* A name of 128 bytes is a function's, but too long for its own identity's scope. */
        char name[RP_FN_NAME_MAX + 1], want[400];
        memset(name, 'a', RP_FN_NAME_MAX);
        name[RP_FN_NAME_MAX] = '\0';
        snprintf(want, sizeof(want),
                 "%s/function.json: identity.type: a function with its own identity has a name "
                 "of at most 127 bytes (its identity's scope segment)",
                 name);
        fn_bad(name, "{\"identity\":{\"type\":\"SystemAssigned\"},\"bindings\":[" HTTP_IN "}]}",
               want);
        name[RP_FN_NAME_MAX - 1] = '\0';
        f = fn_ok(name, "{\"identity\":{\"type\":\"SystemAssigned\"},\"bindings\":[" HTTP_IN "}]}");
        assert_int_equal(f->own_identity, 1);
        rp_fn_function_free(f);
    }
}

static void test_function_names_and_file(void **state)
{
    char name[RP_FN_NAME_MAX + 2];
    rp_fn_function *f;
    char *big;

    (void)state;
    fn_bad("1abc", "{}",
           "function.json: the folder name \"1abc\" is not a function name: a letter, then "
           "letters, digits, '_' and '-' (at most 128), and not \"host\"");
    fn_bad("HOST", "{}",
           "function.json: the folder name \"HOST\" is not a function name: a letter, then "
           "letters, digits, '_' and '-' (at most 128), and not \"host\"");
    fn_bad("a.b", "{}",
           "function.json: the folder name \"a.b\" is not a function name: a letter, then "
           "letters, digits, '_' and '-' (at most 128), and not \"host\"");
    fn_bad("", "{}",
           "function.json: the folder name \"\" is not a function name: a letter, then letters, "
           "digits, '_' and '-' (at most 128), and not \"host\"");
    fn_bad(NULL, "{}",
           "function.json: the folder name (none) is not a function name: a letter, then "
           "letters, digits, '_' and '-' (at most 128), and not \"host\"");
    fn_bad("fn", NULL, "fn/function.json: missing");
    f = fn_ok("hosts", "{\"bindings\":[{\"type\":\"eventGridTrigger\",\"name\":\"e\"}]}");
    rp_fn_function_free(f);
    memset(name, 'f', sizeof(name));
    name[RP_FN_NAME_MAX] = '\0';
    f = fn_ok(name, "{\"bindings\":[{\"type\":\"eventGridTrigger\",\"name\":\"e\"}]}");
    rp_fn_function_free(f);
    name[RP_FN_NAME_MAX] = 'f';
    name[RP_FN_NAME_MAX + 1] = '\0';
    fn_bad(name, "{}",
           "function.json: the folder name "
           "\"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\"... is not a "
           "function name: a letter, then letters, digits, '_' and '-' (at most 128), and not "
           "\"host\"");
    fn_bad("fn", "{\"disabled\":\"yes\",\"bindings\":[]}",
           "fn/function.json: disabled: must be true or false");
    fn_bad("fn", "[]", "fn/function.json: the top level must be an object");
    fn_bad("fn", "{\"bindings\":[}",
           "fn/function.json: not valid JSON: line 1, column 14: unexpected token near '}'");
    /* The file limit. */
    big = malloc(RP_FN_FILE_MAX + 2);
    assert_non_null(big);
    memset(big, ' ', RP_FN_FILE_MAX + 1);
    memcpy(big, "{\"bindings\":[{\"type\":\"eventGridTrigger\",\"name\":\"e\"}]}", 53);
    big[RP_FN_FILE_MAX + 1] = '\0';
    assert_int_equal(rp_fn_function_parse("fn", big, RP_FN_FILE_MAX, &f, NULL, 0), 0);
    rp_fn_function_free(f);
    {
        char err[256];
        f = (rp_fn_function *)1;
        assert_int_equal(rp_fn_function_parse("fn", big, RP_FN_FILE_MAX + 1, &f, err, sizeof(err)),
                         RP_ETOOBIG);
        assert_null(f);
        assert_string_equal(err, "fn/function.json: the file is 65537 bytes; at most 65536");
    }
    free(big);
}

static void test_hostile_values(void **state)
{
    char err[512];
    rp_fn_function *f = NULL;
    /* Control characters, quotes, backslashes and UTF-8 come back escaped, and only the first
     * 64 bytes of a long value. */
    static const char json[] =
        "{\"bindings\":[{\"type\":\"httpTrigger\",\"name\":\"req\",\"authLevel\":"
        "\"\\u001b[31m\\\"x\\\\\xc3\xa9\\r\\nSet-Cookie: a=b "
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        "AAAAAAAAAAAAAAAAAAAA\"}]}";

    (void)state;
    fn_bad("fn", json,
           "fn/function.json: bindings[0].authLevel: \"\\x1b[31m\\\"x\\\\\\xc3\\xa9\\x0d\\x0aSet-"
           "Cookie: a=b AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"... is not anonymous, function or "
           "admin");
    /* 64 bytes are shown whole, 65 are cut with "...". */
    bind_bad(
        HTTP_IN
        ",\"authLevel\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\"}",
        "fn/function.json: bindings[0].authLevel: "
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\" is not anonymous, "
        "function or admin");
    bind_bad(
        HTTP_IN
        ",\"authLevel\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\"}",
        "fn/function.json: bindings[0].authLevel: "
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"... is not "
        "anonymous, function or admin");
    /* A small err buffer is cut, still terminated. */
    assert_int_equal(rp_fn_function_parse("fn", json, sizeof(json) - 1, &f, err, 8), RP_EPARSE);
    assert_string_equal(err, "fn/func");
    for (const char *p = err; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
}

/* Every allocation failing in turn: RP_ENOMEM and nothing leaks (ASan), until it passes. */
static void test_allocation_failure(void **state)
{
    static const char host[] =
        "{\"version\":\"2.0\",\"extensions\":{\"http\":{\"routePrefix\":\"x\",\"customHeaders\":{"
        "\"A\":\"1\",\"B\":\"2\"}}},\"customHandler\":{\"description\":{\"defaultExecutablePath\":"
        "\"bin/h\",\"workingDirectory\":\"w\",\"defaultWorkerPath\":\"s\",\"arguments\":[\"a\","
        "\"b\"],\"workerArguments\":[\"c\"]}}}";
    static const char fn[] = "{\"bindings\":[" HTTP_IN ",\"route\":\"r\"}," HTTP_OUT "]}";
    static const char timer[] = "{\"bindings\":[{\"type\":\"timerTrigger\",\"name\":\"t\","
                                "\"schedule\":\"x\"}]}";
    static const char blob[] = "{\"bindings\":[{\"type\":\"blobTrigger\",\"name\":\"b\",\"path\":"
                               "\"p\",\"connection\":\"c\"}]}";
    static const char *const fns[] = {fn, timer, blob};
    char err[256];
    int rc = RP_ENOMEM;
    long n;

    (void)state;
    for (n = 0; rc != 0; n++) {
        rp_fn_host *h = (rp_fn_host *)1;
        rp_alloc_fail_after(n);
        rc = rp_fn_host_parse(host, sizeof(host) - 1, &h, err, sizeof(err));
        rp_alloc_fail_after(-1);
        if (rc != 0) {
            assert_int_equal(rc, RP_ENOMEM);
            assert_null(h);
            assert_string_equal(err, "host.json: out of memory");
        } else {
            assert_int_equal(h->handler->nargs, 2);
            rp_fn_host_free(h);
        }
    }
    assert_true(n > 10);
    for (size_t k = 0; k < sizeof(fns) / sizeof(fns[0]); k++) {
        rc = RP_ENOMEM;
        for (n = 0; rc != 0; n++) {
            rp_fn_function *f = (rp_fn_function *)1;
            rp_alloc_fail_after(n);
            rc = rp_fn_function_parse("fn", fns[k], strlen(fns[k]), &f, err, sizeof(err));
            rp_alloc_fail_after(-1);
            if (rc != 0) {
                assert_int_equal(rc, RP_ENOMEM);
                assert_null(f);
                assert_string_equal(err, "fn/function.json: out of memory");
            } else {
                rp_fn_function_free(f);
            }
        }
        assert_true(n > 3);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_host),
        cmocka_unit_test(test_c_host),
        cmocka_unit_test(test_host_defaults),
        cmocka_unit_test(test_host_version),
        cmocka_unit_test(test_host_json_errors),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_route_prefix),
        cmocka_unit_test(test_request_bounds),
        cmocka_unit_test(test_custom_headers),
        cmocka_unit_test(test_handler_paths),
        cmocka_unit_test(test_handler_args),
        cmocka_unit_test(test_legacy_http_worker),
        cmocka_unit_test(test_http_function),
        cmocka_unit_test(test_auth_level),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_timer_function),
        cmocka_unit_test(test_eventgrid_and_blob),
        cmocka_unit_test(test_binding_types_and_directions),
        cmocka_unit_test(test_binding_names),
        cmocka_unit_test(test_one_trigger),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_function_names_and_file),
        cmocka_unit_test(test_hostile_values),
        cmocka_unit_test(test_allocation_failure),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
