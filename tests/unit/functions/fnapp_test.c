/*
 * fnapp_test.c - a function app's index (src/functions/fnapp.c) on real release directories: a
 * good app with several functions under the default, a custom and an empty route prefix; the
 * route order (literal before parameter, more constraints first, ties in name order); method
 * filtering; disabled functions listed but never routed; every refusal with its exact message
 * (no host.json, no customHandler, the handler's files missing, not executable or reached through
 * a link, function.json or a function folder that is a link, a FIFO, bad function.json, a route
 * that does not compile, conflicting routes, names equal ignoring case, too many functions,
 * files over the size limit, a command line over its limit); the command line's quoting and
 * %SETTING% expansion; and allocation failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../testutil.h"
#include "base/alloc.h"
#include "base/err.h"
#include "functions/fnapp.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------------ */

#define HOST_EXE(exe)                                                                              \
    "{\"version\":\"2.0\",\"customHandler\":{\"description\":{\"defaultExecutablePath\":\"" exe    \
    "\"}}}"
#define HOST_PLAIN HOST_EXE("handler")

/* A scratch release directory, removed by the test's teardown. */
static int setup(void **state)
{
    char *dir = malloc(512);

    assert_non_null(dir);
    rp_test_scratch("fnapp", dir, 512);
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    rp_test_rmtree(*state);
    free(*state);
    return 0;
}

/* Writes dir/rel (creating its folders) with the given mode. */
static void put_mode(const char *dir, const char *rel, const char *text, size_t n, mode_t mode)
{
    char path[1024];
    int fd;

    assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", dir, rel) < sizeof(path));
    *strrchr(path, '/') = '\0';
    rp_test_mkdir_p(path);
    path[strlen(path)] = '/';
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void put(const char *dir, const char *rel, const char *text)
{
    put_mode(dir, rel, text, strlen(text), 0644);
}

static void mkdir_in(const char *dir, const char *rel)
{
    char path[1024];

    assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", dir, rel) < sizeof(path));
    rp_test_mkdir_p(path);
}

static void link_in(const char *dir, const char *rel, const char *target)
{
    char path[1024];

    assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", dir, rel) < sizeof(path));
    assert_int_equal(symlink(target, path), 0);
}

/* host.json and an executable "handler" in the root. */
static void put_app(const char *dir, const char *host)
{
    put(dir, "host.json", host);
    put_mode(dir, "handler", "#!/bin/sh\n", 10, 0755);
}

/* NAME/function.json with an httpTrigger: methods is a JSON array or NULL (all), route NULL
 * for the default. */
static void put_http(const char *dir, const char *name, const char *methods, const char *route,
                     int disabled)
{
    char rel[256], json[1024];

    snprintf(rel, sizeof(rel), "%s/function.json", name);
    snprintf(json, sizeof(json),
             "{\"disabled\":%s,\"bindings\":[{\"type\":\"httpTrigger\",\"direction\":\"in\","
             "\"name\":\"req\",\"authLevel\":\"anonymous\"%s%s%s%s%s},"
             "{\"type\":\"http\",\"direction\":\"out\",\"name\":\"res\"}]}",
             disabled ? "true" : "false", methods ? ",\"methods\":" : "", methods ? methods : "",
             route ? ",\"route\":\"" : "", route ? route : "", route ? "\"" : "");
    put(dir, rel, json);
}

static void put_timer(const char *dir, const char *name)
{
    char rel[256];

    snprintf(rel, sizeof(rel), "%s/function.json", name);
    put(dir, rel,
        "{\"bindings\":[{\"type\":\"timerTrigger\",\"name\":\"t\",\"schedule\":\"0 */5 * * * "
        "*\"}]}");
}

static int load(const char *dir, rp_fn_app **a, char *err, size_t cap)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc;

    assert_true(fd >= 0);
    rc = rp_fn_app_load(fd, a, err, cap);
    /* the descriptor is still the caller's and still open */
    assert_int_equal(fcntl(fd, F_GETFD), FD_CLOEXEC);
    close(fd);
    return rc;
}

static rp_fn_app *load_ok(const char *dir)
{
    rp_fn_app *a = (rp_fn_app *)1;
    char err[512] = "x";
    int rc = load(dir, &a, err, sizeof(err));

    if (rc != 0)
        fprintf(stderr, "load refused: %d %s\n", rc, err);
    assert_int_equal(rc, 0);
    assert_non_null(a);
    assert_string_equal(err, "");
    return a;
}

static void load_bad(const char *dir, int want, const char *msg)
{
    rp_fn_app *a = (rp_fn_app *)1;
    char err[512] = "";
    int rc = load(dir, &a, err, sizeof(err));

    if (rc != want || strcmp(err, msg) != 0)
        fprintf(stderr, "  rc %d err: %s\n  want %d: %s\n", rc, err, want, msg);
    assert_int_equal(rc, want);
    assert_null(a);
    assert_string_equal(err, msg);
}

/* The function that method + path reach, or NULL. */
static const char *route_to(const rp_fn_app *a, unsigned method, const char *path)
{
    rp_fn_match m;

    memset(&m, 0xa5, sizeof(m));
    if (rp_fn_app_match(a, method, path, strlen(path), &m) != 1) {
        assert_null(m.fn);
        assert_int_equal(m.nparams, 0);
        return NULL;
    }
    assert_non_null(m.fn);
    assert_ptr_equal(m.trigger, &m.fn->bindings[m.fn->trigger]);
    assert_int_equal(m.trigger->type, RP_FN_HTTP_TRIGGER);
    assert_true((m.trigger->methods & method) != 0);
    return m.fn->name;
}

static void expect_route(const rp_fn_app *a, unsigned method, const char *path, const char *fn)
{
    const char *got = route_to(a, method, path);

    if (fn == NULL) {
        if (got != NULL)
            fprintf(stderr, "%s: want no match, got %s\n", path, got);
        assert_null(got);
        return;
    }
    if (got == NULL || strcmp(got, fn) != 0)
        fprintf(stderr, "%s: want %s, got %s\n", path, fn, got ? got : "(none)");
    assert_non_null(got);
    assert_string_equal(got, fn);
}

/* ---- a good app --------------------------------------------------------------------------- */

static void test_good_app(void **state)
{
    const char *dir = *state;
    const char path[] = "/api/Products/42/reviews/x/y";
    rp_fn_app *a;
    rp_fn_match m;

    put_app(dir, HOST_PLAIN);
    put_http(dir, "products", "[\"get\"]", "products/{id:int}/reviews/{*rest}", 0);
    put_http(dir, "productsList", "[\"get\"]", "products", 0);
    put_http(dir, "create", "[\"post\"]", "products", 0);
    put_http(dir, "hello", NULL, NULL, 0); /* all methods, the route is the name */
    put_timer(dir, "cleanup");
    put_http(dir, "off", NULL, NULL, 1);
    /* not functions: a folder without function.json (whatever its name), files */
    mkdir_in(dir, "node_modules/x");
    mkdir_in(dir, ".git");
    mkdir_in(dir, "not a name!");
    put(dir, "README.md", "hi");
    put(dir, "lib/function.js", "x");

    a = load_ok(dir);
    assert_int_equal(rp_fn_app_count(a), 6);
    assert_string_equal(rp_fn_app_function(a, 0)->name, "cleanup");
    assert_string_equal(rp_fn_app_function(a, 1)->name, "create");
    assert_string_equal(rp_fn_app_function(a, 2)->name, "hello");
    assert_string_equal(rp_fn_app_function(a, 3)->name, "off");
    assert_string_equal(rp_fn_app_function(a, 4)->name, "products");
    assert_string_equal(rp_fn_app_function(a, 5)->name, "productsList");
    assert_null(rp_fn_app_function(a, 6));
    assert_string_equal(rp_fn_app_host(a)->route_prefix, "api");
    assert_string_equal(rp_fn_app_host(a)->handler->exe, "handler");
    assert_string_equal(rp_fn_app_workdir(a), "");

    /* found by name ignoring case, disabled ones too */
    assert_ptr_equal(rp_fn_app_find(a, "PRODUCTS"), rp_fn_app_function(a, 4));
    assert_ptr_equal(rp_fn_app_find(a, "productslist"), rp_fn_app_function(a, 5));
    assert_ptr_equal(rp_fn_app_find(a, "Off"), rp_fn_app_function(a, 3));
    assert_null(rp_fn_app_find(a, "product"));
    assert_null(rp_fn_app_find(a, "products "));

    expect_route(a, RP_FN_GET, "/api/products", "productsList");
    expect_route(a, RP_FN_POST, "/api/products", "create");
    expect_route(a, RP_FN_PUT, "/api/products", NULL);
    expect_route(a, RP_FN_GET, "/API/Products/", "productsList");
    expect_route(a, RP_FN_GET, "/api/products/7/reviews", "products");
    expect_route(a, RP_FN_GET, "/api/products/x/reviews", NULL);
    expect_route(a, RP_FN_DELETE, "/api/hello", "hello");
    expect_route(a, RP_FN_OPTIONS, "/api/HELLO", "hello");
    expect_route(a, RP_FN_GET, "/api/off", NULL); /* disabled: never routed */
    expect_route(a, RP_FN_GET, "/api/cleanup", NULL);
    expect_route(a, RP_FN_GET, "/hello", NULL);      /* outside the prefix */
    expect_route(a, RP_FN_GET, "/apix/hello", NULL); /* the prefix is a whole segment */
    expect_route(a, RP_FN_GET, "/api", NULL);
    expect_route(a, RP_FN_GET, "/", NULL);
    expect_route(a, RP_FN_GET, "", NULL);
    expect_route(a, 0, "/api/hello", NULL);

    /* params: names from the route, values pointing into the caller's path */
    assert_int_equal(rp_fn_app_match(a, RP_FN_GET, path, strlen(path), &m), 1);
    assert_string_equal(m.fn->name, "products");
    assert_int_equal(m.nparams, 2);
    assert_string_equal(m.params[0].name, "id");
    assert_ptr_equal(m.params[0].value, path + 14);
    assert_int_equal(m.params[0].value_len, 2);
    assert_string_equal(m.params[1].name, "rest");
    assert_int_equal(m.params[1].value_len, 3);
    assert_memory_equal(m.params[1].value, "x/y", 3);
    /* only n bytes of the path count */
    assert_int_equal(rp_fn_app_match(a, RP_FN_GET, "/api/products/42", 13, &m), 1);
    assert_string_equal(m.fn->name, "productsList");
    assert_int_equal(m.nparams, 0);
    rp_fn_app_free(a);
    rp_fn_app_free(NULL);
}

static void test_custom_prefix(void **state)
{
    const char *dir = *state;
    rp_fn_app *a;
    rp_fn_match m;

    put_app(dir, "{\"version\":\"2.0\",\"extensions\":{\"http\":{\"routePrefix\":\"v1/api\"}},"
                 "\"customHandler\":{\"description\":{\"defaultExecutablePath\":\"handler\"}}}");
    put_http(dir, "items", "[\"get\"]", "items/{id?}", 0);
    put_http(dir, "rest", "[\"get\"]", "{*all}", 0);
    a = load_ok(dir);
    assert_string_equal(rp_fn_app_host(a)->route_prefix, "v1/api");
    expect_route(a, RP_FN_GET, "/v1/api/items", "items");
    expect_route(a, RP_FN_GET, "/V1/Api/items/3", "items");
    expect_route(a, RP_FN_GET, "/v1/api/other/x", "rest");
    expect_route(a, RP_FN_GET, "/v1/api/", "rest");
    expect_route(a, RP_FN_GET, "/v1/api", "rest");
    expect_route(a, RP_FN_GET, "/v1/items", NULL);
    expect_route(a, RP_FN_GET, "/v1/apix/items", NULL);
    expect_route(a, RP_FN_GET, "/v1x/api/items", NULL);
    expect_route(a, RP_FN_GET, "/v1", NULL);
    expect_route(a, RP_FN_GET, "/api/items", NULL);
    expect_route(a, RP_FN_POST, "/v1/api/items", NULL);
    assert_int_equal(rp_fn_app_match(a, RP_FN_GET, "/v1/api/items/9", 15, &m), 1);
    assert_int_equal(m.nparams, 1);
    assert_string_equal(m.params[0].name, "id");
    assert_int_equal(m.params[0].value_len, 1);
    assert_memory_equal(m.params[0].value, "9", 1);
    rp_fn_app_free(a);
}

static void test_empty_prefix(void **state)
{
    const char *dir = *state;
    rp_fn_app *a;

    put_app(dir, "{\"version\":\"2.0\",\"extensions\":{\"http\":{\"routePrefix\":\"\"}},"
                 "\"customHandler\":{\"description\":{\"defaultExecutablePath\":\"handler\"}}}");
    put_http(dir, "hello", NULL, NULL, 0);
    put_http(dir, "root", "[\"get\"]", "/", 0);
    a = load_ok(dir);
    assert_string_equal(rp_fn_app_host(a)->route_prefix, "");
    expect_route(a, RP_FN_GET, "/hello", "hello");
    expect_route(a, RP_FN_GET, "/api/hello", NULL);
    expect_route(a, RP_FN_GET, "/", "root");
    expect_route(a, RP_FN_GET, "", "root");
    rp_fn_app_free(a);
}

/* ---- the route order ---------------------------------------------------------------------- */

static void test_route_order(void **state)
{
    const char *dir = *state;
    rp_fn_app *a;

    put_app(dir, HOST_PLAIN);
    /* names sort the other way round from the route order */
    put_http(dir, "aParam", "[\"get\"]", "items/{id}", 0);
    put_http(dir, "bInt", "[\"get\"]", "items/{id:int}", 0);
    put_http(dir, "cIntMin", "[\"get\"]", "items/{id:int:min(1)}", 0);
    put_http(dir, "dLiteral", "[\"get\"]", "items/new", 0);
    put_http(dir, "eLonger", "[\"get\"]", "items/{id}/x", 0);
    /* ties (one constraint each, both match "5"): name order decides, either way round */
    put_http(dir, "s1", "[\"get\"]", "s/{a:long}", 0);
    put_http(dir, "s2", "[\"get\"]", "s/{b:int}", 0);
    put_http(dir, "t1", "[\"get\"]", "t/{a:int}", 0);
    put_http(dir, "t2", "[\"get\"]", "t/{b:long}", 0);
    a = load_ok(dir);
    expect_route(a, RP_FN_GET, "/api/items/new", "dLiteral");
    expect_route(a, RP_FN_GET, "/api/items/5", "cIntMin");
    expect_route(a, RP_FN_GET, "/api/items/0", "bInt");
    expect_route(a, RP_FN_GET, "/api/items/abc", "aParam");
    expect_route(a, RP_FN_GET, "/api/items/new/x", "eLonger");
    expect_route(a, RP_FN_GET, "/api/s/5", "s1");
    expect_route(a, RP_FN_GET, "/api/t/5", "t1");
    expect_route(a, RP_FN_GET, "/api/t/5000000000", "t2");
    rp_fn_app_free(a);
}

static void test_methods(void **state)
{
    const char *dir = *state;
    rp_fn_app *a;

    put_app(dir, HOST_PLAIN);
    /* the same route with disjoint methods is no conflict */
    put_http(dir, "reader", "[\"GET\",\"head\"]", "doc/{id}", 0);
    put_http(dir, "writer", "[\"put\",\"patch\",\"delete\"]", "doc/{key}", 0);
    put_http(dir, "poster", "[\"post\"]", "doc/{x:int}", 0);
    a = load_ok(dir);
    expect_route(a, RP_FN_GET, "/api/doc/1", "reader");
    expect_route(a, RP_FN_HEAD, "/api/doc/1", "reader");
    expect_route(a, RP_FN_PUT, "/api/doc/1", "writer");
    expect_route(a, RP_FN_DELETE, "/api/doc/a", "writer");
    expect_route(a, RP_FN_POST, "/api/doc/1", "poster");
    expect_route(a, RP_FN_POST, "/api/doc/a", NULL);
    expect_route(a, RP_FN_OPTIONS, "/api/doc/1", NULL);
    expect_route(a, RP_FN_TRACE, "/api/doc/1", NULL);
    rp_fn_app_free(a);
}

static void test_disabled(void **state)
{
    const char *dir = *state;
    rp_fn_app *a;

    put_app(dir, HOST_PLAIN);
    /* a disabled function neither routes nor conflicts (the same route as "live") */
    put_http(dir, "dead", "[\"get\"]", "thing/{id}", 1);
    put_http(dir, "live", "[\"get\"]", "thing/{id}", 0);
    put_http(dir, "zombie", NULL, "{*any}", 1);
    a = load_ok(dir);
    assert_int_equal(rp_fn_app_count(a), 3);
    assert_int_equal(rp_fn_app_find(a, "dead")->disabled, 1);
    expect_route(a, RP_FN_GET, "/api/thing/1", "live");
    expect_route(a, RP_FN_GET, "/api/other", NULL);
    rp_fn_app_free(a);
}

/* ---- host.json and the handler ------------------------------------------------------------ */

static void test_host_json(void **state)
{
    const char *dir = *state;
    char big[RP_FN_FILE_MAX + 2];
    size_t n = strlen(HOST_PLAIN);
    rp_fn_app *a;

    load_bad(dir, RP_ENOENT, "host.json: not found: a function app needs one");
    put(dir, "host.json", "{\"version\":\"2.0\"}");
    load_bad(dir, RP_EPARSE,
             "host.json: customHandler: required (rampart runs custom handlers only)");
    /* an empty object is version 2.0 with no handler either */
    put(dir, "host.json", "{}");
    load_bad(dir, RP_EPARSE,
             "host.json: customHandler: required (rampart runs custom handlers only)");
    put(dir, "host.json", "{\"version\":\"3.0\"}");
    load_bad(dir, RP_EPARSE,
             "host.json: version: \"3.0\" is not \"2.0\", the only host.json schema version (it "
             "is not the Functions runtime version)");

    /* exactly at the limit, then one byte over */
    put_mode(dir, "handler", "#!/bin/sh\n", 10, 0755);
    memset(big, ' ', sizeof(big));
    memcpy(big, HOST_PLAIN, n);
    put_mode(dir, "host.json", big, RP_FN_FILE_MAX, 0644);
    a = load_ok(dir);
    rp_fn_app_free(a);
    put_mode(dir, "host.json", big, RP_FN_FILE_MAX + 1, 0644);
    load_bad(dir, RP_ETOOBIG, "host.json: the file is 65537 bytes; at most 65536");

    /* a link is refused, whatever it points to; so is a directory */
    {
        char p[1024];
        snprintf(p, sizeof(p), "%s/host.json", dir);
        assert_int_equal(unlink(p), 0);
        put(dir, "real.json", HOST_PLAIN);
        link_in(dir, "host.json", "real.json");
        load_bad(dir, RP_EPARSE, "host.json: not a regular file");
        assert_int_equal(unlink(p), 0);
        mkdir_in(dir, "host.json");
        load_bad(dir, RP_EPARSE, "host.json: not a regular file");
        assert_int_equal(rmdir(p), 0);
        assert_int_equal(mkfifo(p, 0600), 0);
        load_bad(dir, RP_EPARSE, "host.json: not a regular file"); /* and does not block */
    }
}

#define EXE_MSG(path, why)                                                                         \
    "host.json: customHandler.description.defaultExecutablePath: '" path                           \
    "' is not an executable file in the app (" why ")"

static void test_handler_exe(void **state)
{
    const char *dir = *state;
    char out[256];
    rp_fn_app *a;

    put(dir, "host.json", HOST_EXE("bin/handler"));
    load_bad(dir, RP_EPARSE, EXE_MSG("bin/handler", "not found"));
    put_mode(dir, "bin/handler", "x", 1, 0644);
    load_bad(dir, RP_EPARSE, EXE_MSG("bin/handler", "no execute permission"));
    put_mode(dir, "bin/handler", "x", 1, 0744);
    a = load_ok(dir);
    assert_int_equal(rp_fn_app_command(a, NULL, 0, out, sizeof(out)), 0);
    assert_string_equal(out, "'./bin/handler'");
    rp_fn_app_free(a);
    /* "./" in host.json: normalised by fnconfig, still a file in the app */
    put(dir, "host.json", HOST_EXE("./bin//handler"));
    a = load_ok(dir);
    assert_int_equal(rp_fn_app_command(a, NULL, 0, out, sizeof(out)), 0);
    assert_string_equal(out, "'./bin/handler'");
    rp_fn_app_free(a);

    /* a link at the end, or on the way, is refused */
    put_mode(dir, "real/handler", "x", 1, 0755);
    link_in(dir, "bin/link", "../real/handler");
    put(dir, "host.json", HOST_EXE("bin/link"));
    load_bad(dir, RP_EPARSE, EXE_MSG("bin/link", "a symbolic link"));
    link_in(dir, "lbin", "real");
    put(dir, "host.json", HOST_EXE("lbin/handler"));
    load_bad(dir, RP_EPARSE, EXE_MSG("lbin/handler", "'lbin' is a symbolic link"));
    put(dir, "host.json", HOST_EXE("bin/handler/x"));
    load_bad(dir, RP_EPARSE, EXE_MSG("bin/handler/x", "'handler' is not a directory"));
    put(dir, "host.json", HOST_EXE("real/"));
    load_bad(dir, RP_EPARSE,
             "host.json: customHandler.description.defaultExecutablePath: \"real/\" ends in '/'; "
             "name a file");
    mkdir_in(dir, "adir/sub");
    put(dir, "host.json", HOST_EXE("adir/sub"));
    load_bad(dir, RP_EPARSE, EXE_MSG("adir/sub", "not a regular file"));
    /* the legacy section is named as such */
    put(dir, "host.json",
        "{\"version\":\"2.0\",\"httpWorker\":{\"description\":{\"defaultExecutablePath\":"
        "\"bin/nope\"}}}");
    load_bad(dir, RP_EPARSE,
             "host.json: httpWorker.description.defaultExecutablePath: 'bin/nope' is not an "
             "executable file in the app (not found)");
}

static void test_handler_bare_name(void **state)
{
    const char *dir = *state;
    char out[256];
    rp_fn_app *a;

    put_app(dir, HOST_EXE("node")); /* no file "node" in the app: PATH */
    a = load_ok(dir);
    assert_int_equal(rp_fn_app_command(a, NULL, 0, out, sizeof(out)), 0);
    assert_string_equal(out, "'node'");
    rp_fn_app_free(a);
    /* a directory of that name is not a file either (Azure's File.Exists) */
    mkdir_in(dir, "node");
    a = load_ok(dir);
    assert_int_equal(rp_fn_app_command(a, NULL, 0, out, sizeof(out)), 0);
    assert_string_equal(out, "'node'");
    rp_fn_app_free(a);
    /* a file in the root is the one meant: it must be executable */
    put(dir, "host.json", HOST_PLAIN);
    a = load_ok(dir);
    assert_int_equal(rp_fn_app_command(a, NULL, 0, out, sizeof(out)), 0);
    assert_string_equal(out, "'./handler'");
    rp_fn_app_free(a);
    put_mode(dir, "handler", "x", 1, 0600);
    load_bad(dir, RP_EPARSE, EXE_MSG("handler", "no execute permission"));
    /* a link of that name is refused, not passed over to PATH */
    put_mode(dir, "bin/handler", "x", 1, 0755);
    link_in(dir, "h2", "bin/handler");
    put(dir, "host.json", HOST_EXE("h2"));
    load_bad(dir, RP_EPARSE, EXE_MSG("h2", "a symbolic link"));
}

static void test_handler_dirs(void **state)
{
    const char *dir = *state;
    char out[256];
    rp_fn_app *a;

    put_mode(dir, "handler", "x", 1, 0755);
    put(dir, "host.json",
        "{\"version\":\"2.0\",\"customHandler\":{\"description\":{\"defaultExecutablePath\":"
        "\"handler\",\"workingDirectory\":\"src/app\"}}}");
    load_bad(dir, RP_EPARSE,
             "host.json: customHandler.description.workingDirectory: 'src/app' is not a "
             "directory in the app (not found)");
    put(dir, "src/app", "a file");
    load_bad(dir, RP_EPARSE,
             "host.json: customHandler.description.workingDirectory: 'src/app' is not a "
             "directory in the app (not a directory)");
    mkdir_in(dir, "elsewhere");
    {
        char p[1024];
        snprintf(p, sizeof(p), "%s/src/app", dir);
        assert_int_equal(unlink(p), 0);
    }
    link_in(dir, "src/app", "../elsewhere");
    load_bad(dir, RP_EPARSE,
             "host.json: customHandler.description.workingDirectory: 'src/app' is not a "
             "directory in the app (a symbolic link)");
    mkdir_in(dir, "work/dir");
    put(dir, "host.json",
        "{\"version\":\"2.0\",\"customHandler\":{\"description\":{\"defaultExecutablePath\":"
        "\"handler\",\"workingDirectory\":\"work/dir/\",\"defaultWorkerPath\":\"lib/w.js\"}}}");
    load_bad(dir, RP_EPARSE,
             "host.json: customHandler.description.defaultWorkerPath: 'lib/w.js' is not a "
             "regular file in the app (not found)");
    put(dir, "lib/w.js", "js");
    a = load_ok(dir);
    assert_string_equal(rp_fn_app_workdir(a), "work/dir");
    /* exe and worker path are relative to the root; the command runs in work/dir */
    assert_int_equal(rp_fn_app_command(a, NULL, 0, out, sizeof(out)), 0);
    assert_string_equal(out, "'../../handler' '../../lib/w.js'");
    rp_fn_app_free(a);
}

/* ---- the command line --------------------------------------------------------------------- */

static void test_command(void **state)
{
    const char *dir = *state;
    static const char want[] =
        "'./handler' '--port' '8080' 'it'\\''s' '%UNKNOWN%' 'a%%b' '%A'\\''b'\\''' "
        "'x=%FUNCTIONS_CUSTOMHANDLER_PORT' '%%' '%' '' './server.js' '--name=my app' "
        "'%port%'";
    const char *env[] = {"PATH=/usr/bin", "FUNCTIONS_CUSTOMHANDLER_PORT=8080",
                         "B='b'",         "FUNCTIONS_CUSTOMHANDLER_PORT=9999",
                         "NAME=my app",   "=empty"};
    char out[512];
    rp_fn_app *a;

    put_app(dir, "{\"version\":\"2.0\",\"customHandler\":{\"description\":{"
                 "\"defaultExecutablePath\":\"handler\",\"defaultWorkerPath\":\"server.js\","
                 "\"arguments\":[\"--port\",\"%FUNCTIONS_CUSTOMHANDLER_PORT%\",\"it's\","
                 "\"%UNKNOWN%\",\"a%%b\",\"%A%B%\",\"x=%FUNCTIONS_CUSTOMHANDLER_PORT\",\"%%\","
                 "\"%\",\"\"],"
                 "\"workerArguments\":[\"--name=%NAME%\",\"%port%\"]}}}");
    put(dir, "server.js", "js");
    a = load_ok(dir);
    assert_int_equal(rp_fn_app_command(a, env, 6, out, sizeof(out)), 0);
    assert_string_equal(out, want);
    /* exactly enough room, then one byte short */
    memset(out, 'x', sizeof(out));
    assert_int_equal(rp_fn_app_command(a, env, 6, out, sizeof(want)), 0);
    assert_string_equal(out, want);
    memset(out, 'x', sizeof(out));
    assert_int_equal(rp_fn_app_command(a, env, 6, out, sizeof(want) - 1), RP_ETOOBIG);
    assert_string_equal(out, "");
    assert_int_equal(rp_fn_app_command(a, env, 6, out, 0), RP_ETOOBIG);
    /* without settings every %NAME% stays as written */
    assert_int_equal(rp_fn_app_command(a, NULL, 0, out, sizeof(out)), 0);
    assert_string_equal(out, "'./handler' '--port' '%FUNCTIONS_CUSTOMHANDLER_PORT%' 'it'\\''s' "
                             "'%UNKNOWN%' 'a%%b' '%A%B%' 'x=%FUNCTIONS_CUSTOMHANDLER_PORT' '%%' "
                             "'%' '' './server.js' '--name=%NAME%' '%port%'");
    rp_fn_app_free(a);
}

static void test_sh_word(void **state)
{
    char out[32];
    size_t n = 0;
    (void)state;

    assert_int_equal(rp_fn_sh_word("a b", out, sizeof(out), &n), 0);
    assert_string_equal(out, "'a b'");
    out[n++] = ' ';
    assert_int_equal(rp_fn_sh_word("it's $HOME", out, sizeof(out), &n), 0);
    assert_string_equal(out, "'a b' 'it'\\''s $HOME'");
    assert_int_equal(n, strlen(out));
    /* Too long: nothing appended, still NUL-terminated where it was. */
    assert_int_equal(rp_fn_sh_word("0123456789abcdef0123456789", out, sizeof(out), &n), RP_ETOOBIG);
    assert_int_equal(n, strlen(out));
    assert_string_equal(out, "'a b' 'it'\\''s $HOME'");
    n = sizeof(out);
    assert_int_equal(rp_fn_sh_word("x", out, sizeof(out), &n), RP_ETOOBIG);
}

static void test_command_too_long(void **state)
{
    const char *dir = *state;
    char host[16384], arg[1100];
    size_t o;
    rp_fn_app *a;

    /* arguments of 1000 bytes, 1003 quoted, after "'./handler'": 8 fit in 8192, 9 do not */
    memset(arg, 'a', 1000);
    arg[1000] = '\0';
    for (int nargs = 8; nargs <= 9; nargs++) {
        o = (size_t)snprintf(host, sizeof(host),
                             "{\"version\":\"2.0\",\"customHandler\":{\"description\":{"
                             "\"defaultExecutablePath\":\"handler\",\"arguments\":[");
        for (int i = 0; i < nargs; i++)
            o += (size_t)snprintf(host + o, sizeof(host) - o, "%s\"%s\"", i ? "," : "", arg);
        snprintf(host + o, sizeof(host) - o, "]}}}");
        put_app(dir, host);
        if (nargs == 8) {
            a = load_ok(dir);
            rp_fn_app_free(a);
        } else {
            load_bad(dir, RP_ETOOBIG,
                     "host.json: customHandler.description: the handler's command line is over "
                     "8192 bytes");
        }
    }
}

/* ---- function folders --------------------------------------------------------------------- */

static void test_function_json_link(void **state)
{
    const char *dir = *state;
    char p[1024];

    put_app(dir, HOST_PLAIN);
    put_http(dir, "good", NULL, NULL, 0);
    put(dir, "shared/other.json",
        "{\"bindings\":[{\"type\":\"timerTrigger\",\"name\":\"t\",\"schedule\":\"0 * * * * *\"}]}");
    mkdir_in(dir, "linked");
    link_in(dir, "linked/function.json", "../shared/other.json");
    load_bad(dir, RP_EPARSE, "linked/function.json: not a regular file");
    /* dangling: still a link, not a missing file */
    snprintf(p, sizeof(p), "%s/linked/function.json", dir);
    assert_int_equal(unlink(p), 0);
    link_in(dir, "linked/function.json", "/nonexistent/function.json");
    load_bad(dir, RP_EPARSE, "linked/function.json: not a regular file");
    assert_int_equal(unlink(p), 0);
    mkdir_in(dir, "linked/function.json");
    load_bad(dir, RP_EPARSE, "linked/function.json: not a regular file");
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(mkfifo(p, 0600), 0);
    load_bad(dir, RP_EPARSE, "linked/function.json: not a regular file");
    assert_int_equal(unlink(p), 0);
    /* without it the folder is no function */
    rp_fn_app_free(load_ok(dir));
}

static void test_function_folder_link(void **state)
{
    const char *dir = *state;
    char outside[512], p[1024];
    rp_fn_app *a;

    /* a folder outside the release, with a valid function in it */
    rp_test_scratch("fnapp-outside", outside, sizeof(outside));
    put_http(outside, "evil", NULL, NULL, 0);
    snprintf(p, sizeof(p), "%s/evil", outside);
    put_app(dir, HOST_PLAIN);
    put_http(dir, "good", NULL, NULL, 0);
    link_in(dir, "evil", p);
    load_bad(dir, RP_EPARSE,
             "evil: a symbolic link in the app root; links are not followed (a function folder "
             "must be a real folder)");
    /* the message does not depend on the order readdir returns the links in */
    link_in(dir, "aaa", p);
    link_in(dir, "zzz", "good");
    load_bad(dir, RP_EPARSE,
             "aaa: a symbolic link in the app root; links are not followed (a function folder "
             "must be a real folder)");
    /* links below a function folder are not the loader's business */
    snprintf(p, sizeof(p), "%s/evil", dir);
    assert_int_equal(unlink(p), 0);
    snprintf(p, sizeof(p), "%s/aaa", dir);
    assert_int_equal(unlink(p), 0);
    snprintf(p, sizeof(p), "%s/zzz", dir);
    assert_int_equal(unlink(p), 0);
    link_in(dir, "good/data", "/etc");
    a = load_ok(dir);
    assert_int_equal(rp_fn_app_count(a), 1);
    rp_fn_app_free(a);
    rp_test_rmtree(outside);
}

static void test_function_errors(void **state)
{
    const char *dir = *state;
    char p[1024];

    put_app(dir, HOST_PLAIN);
    put_http(dir, "good", NULL, NULL, 0);
    put(dir, "orders/function.json", "{\"bindings\":[}");
    load_bad(dir, RP_EPARSE,
             "orders/function.json: not valid JSON: line 1, column 14: unexpected token near "
             "'}'");
    put(dir, "orders/function.json", "{\"bindings\":[]}");
    load_bad(dir, RP_EPARSE,
             "orders/function.json: bindings: empty; at least one binding must be declared");
    snprintf(p, sizeof(p), "%s/orders", dir);
    rp_test_rmtree(p);
    /* a folder name fnconfig refuses, once it has a function.json */
    put(dir, "1abc/function.json", "{}");
    load_bad(dir, RP_EPARSE,
             "function.json: the folder name \"1abc\" is not a function name: a letter, then "
             "letters, digits, '_' and '-' (at most 128), and not \"host\"");
    snprintf(p, sizeof(p), "%s/1abc", dir);
    rp_test_rmtree(p);
    /* the first problem in name order is the one reported */
    put_http(dir, "bad2", "[\"get\"]", "x/{id:foo}", 0);
    put_http(dir, "bad1", "[\"get\"]", "{a}/{a}", 0);
    load_bad(dir, RP_EPARSE,
             "bad1/function.json: bindings[0].route: segment 2 ('{a}'): parameter name 'a' is "
             "used twice");
    snprintf(p, sizeof(p), "%s/bad1", dir);
    rp_test_rmtree(p);
    load_bad(dir, RP_EPARSE,
             "bad2/function.json: bindings[0].route: segment 2 ('{id:foo}'): unknown constraint "
             "'foo'");
    snprintf(p, sizeof(p), "%s/bad2", dir);
    rp_test_rmtree(p);
    /* an oversized function.json */
    {
        char *big = malloc(RP_FN_FILE_MAX + 1);
        assert_non_null(big);
        memset(big, ' ', RP_FN_FILE_MAX + 1);
        put_mode(dir, "big/function.json", big, RP_FN_FILE_MAX + 1, 0644);
        free(big);
    }
    load_bad(dir, RP_ETOOBIG, "big/function.json: the file is 65537 bytes; at most 65536");
}

static void test_conflicts(void **state)
{
    const char *dir = *state;
    char p[1024];

    put_app(dir, HOST_PLAIN);
    put_http(dir, "list", "[\"get\"]", "items/{id}", 0);
    put_http(dir, "orders", "[\"post\",\"get\"]", "Items/{name}/", 0);
    load_bad(dir, RP_EPARSE,
             "orders/function.json: bindings[0].route: conflicts with the route of function "
             "'list'");
    /* the default route (the name) against an explicit one */
    put_http(dir, "orders", "[\"post\"]", "items/{name}", 0);
    put_http(dir, "hello", NULL, NULL, 0);
    put_http(dir, "zed", "[\"trace\"]", "HELLO", 0);
    load_bad(dir, RP_EPARSE,
             "zed/function.json: bindings[0].route: conflicts with the route of function "
             "'hello'");
    snprintf(p, sizeof(p), "%s/zed", dir);
    rp_test_rmtree(p);
    rp_fn_app_free(load_ok(dir));
    /* two folders that differ only in case */
    put_timer(dir, "Hello");
    load_bad(dir, RP_EPARSE,
             "hello/function.json: function 'Hello' has the same name ignoring case (function "
             "names ignore case)");
}

static void test_too_many(void **state)
{
    const char *dir = *state;
    char name[32];
    rp_fn_app *a;

    put_app(dir, HOST_PLAIN);
    for (int i = 0; i < RP_FN_FUNCTIONS_MAX; i++) {
        snprintf(name, sizeof(name), "f%03d", i);
        if (i % 2)
            put_timer(dir, name);
        else
            put_http(dir, name, NULL, NULL, 0);
    }
    /* folders without function.json do not count */
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "empty%d", i);
        mkdir_in(dir, name);
    }
    a = load_ok(dir);
    assert_int_equal(rp_fn_app_count(a), RP_FN_FUNCTIONS_MAX);
    assert_string_equal(rp_fn_app_function(a, 255)->name, "f255");
    expect_route(a, RP_FN_GET, "/api/f254", "f254");
    expect_route(a, RP_FN_GET, "/api/f255", NULL);
    rp_fn_app_free(a);
    put_timer(dir, "f256");
    load_bad(dir, RP_ETOOBIG,
             "the app has 257 function folders (with a function.json); at most 256");
}

static void test_allocation_failure(void **state)
{
    const char *dir = *state;
    char err[512], out[256];
    int rc = RP_ENOMEM, n;

    put_app(dir, "{\"version\":\"2.0\",\"customHandler\":{\"description\":{"
                 "\"defaultExecutablePath\":\"handler\",\"arguments\":[\"%X%\"]}}}");
    put_http(dir, "a", NULL, "x/{id:int}", 0);
    put_http(dir, "b", "[\"get\"]", "x/new", 0);
    put_timer(dir, "c");
    for (n = 0; rc != 0; n++) {
        rp_fn_app *a = (rp_fn_app *)1;
        rp_alloc_fail_after(n);
        rc = load(dir, &a, err, sizeof(err));
        rp_alloc_fail_after(-1);
        if (rc != 0) {
            assert_int_equal(rc, RP_ENOMEM);
            assert_null(a);
            assert_non_null(strstr(err, "out of memory"));
        } else {
            /* nothing the index does after loading allocates */
            const char *env[] = {"X=1"};
            rp_alloc_fail_after(0);
            assert_int_equal(rp_fn_app_command(a, env, 1, out, sizeof(out)), 0);
            expect_route(a, RP_FN_GET, "/api/x/new", "b");
            expect_route(a, RP_FN_GET, "/api/x/1", "a");
            rp_alloc_fail_after(-1);
            assert_string_equal(out, "'./handler' '1'");
            rp_fn_app_free(a);
        }
    }
    assert_true(n > 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_app, setup, teardown),
        cmocka_unit_test_setup_teardown(test_custom_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_exe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_bare_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_dirs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_function_json_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_function_folder_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_function_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allocation_failure, setup, teardown),
        cmocka_unit_test(test_sh_word),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
