/* router_test.c - host patterns, longest prefix, methods, labels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "base/err.h"
#include "http/router.h"

static void h_api(rp_req *r)
{
    (void)r;
}
static void h_health(rp_req *r)
{
    (void)r;
}
static void h_static(rp_req *r)
{
    (void)r;
}
static void h_login(rp_req *r)
{
    (void)r;
}
static void h_vault(rp_req *r)
{
    (void)r;
}
static void h_app(rp_req *r)
{
    (void)r;
}
static void h_keys(rp_req *r)
{
    (void)r;
}

static rp_router *build(void)
{
    rp_router *r = NULL;
    rp_route_opts any = {RP_M_ANY, 1024, NULL};
    rp_route_opts rd = {0, 0, NULL};
    rp_route_opts post = {RP_M(RP_METHOD_POST), 1024, NULL};

    assert_int_equal(rp_router_create("rampart.localhost", &r), 0);
    assert_int_equal(rp_router_add(r, "@", "/api", h_api, &any), 0);
    assert_int_equal(rp_router_add(r, "@", "/health", h_health, &rd), 0);
    assert_int_equal(rp_router_add(r, "@", "/", h_static, &rd), 0);
    assert_int_equal(rp_router_add(r, "login", "/", h_login, &any), 0);
    assert_int_equal(rp_router_add(r, "*.vault", "/", h_vault, &any), 0);
    assert_int_equal(rp_router_add(r, "*.vault", "/keys/", h_keys, &post), 0);
    assert_int_equal(rp_router_add(r, "*", "/", h_app, &any), 0);
    return r;
}

typedef struct rcase {
    const char *host;
    const char *path;
    rp_method m;
    rp_route_result want;
    rp_handler_fn fn;
    const char *label;
} rcase;

static void test_table(void **state)
{
    static const rcase cases[] = {
        {"rampart.localhost", "/api/version", RP_METHOD_GET, RP_ROUTE_FOUND, h_api, ""},
        {"rampart.localhost", "/api", RP_METHOD_DELETE, RP_ROUTE_FOUND, h_api, ""},
        {"rampart.localhost", "/apix", RP_METHOD_GET, RP_ROUTE_FOUND, h_static, ""},
        {"rampart.localhost", "/health", RP_METHOD_GET, RP_ROUTE_FOUND, h_health, ""},
        {"rampart.localhost", "/health", RP_METHOD_HEAD, RP_ROUTE_FOUND, h_health, ""},
        {"rampart.localhost", "/health", RP_METHOD_POST, RP_ROUTE_NO_METHOD, NULL, ""},
        {"rampart.localhost", "/healthz", RP_METHOD_GET, RP_ROUTE_FOUND, h_static, ""},
        {"rampart.localhost", "/index.html", RP_METHOD_GET, RP_ROUTE_FOUND, h_static, ""},
        {"127.0.0.1", "/health", RP_METHOD_GET, RP_ROUTE_FOUND, h_health, ""},
        {"localhost", "/health", RP_METHOD_GET, RP_ROUTE_FOUND, h_health, ""},
        {"[::1]", "/health", RP_METHOD_GET, RP_ROUTE_FOUND, h_health, ""},
        {"login.rampart.localhost", "/t/oauth2/v2.0/token", RP_METHOD_POST, RP_ROUTE_FOUND, h_login,
         ""},
        {"myvault.vault.rampart.localhost", "/secrets/x", RP_METHOD_GET, RP_ROUTE_FOUND, h_vault,
         "myvault"},
        {"myvault.vault.rampart.localhost", "/keys/k//decrypt", RP_METHOD_POST, RP_ROUTE_FOUND,
         h_keys, "myvault"},
        {"myvault.vault.rampart.localhost", "/keys/k", RP_METHOD_GET, RP_ROUTE_NO_METHOD, NULL, ""},
        {"myvault.vault.rampart.localhost", "/keysx", RP_METHOD_GET, RP_ROUTE_FOUND, h_vault,
         "myvault"},
        {"myvault.vault.rampart.localhost", "/keys", RP_METHOD_GET, RP_ROUTE_FOUND, h_vault,
         "myvault"},
        {"myvault.vault.rampart.localhost", "/keys/k/", RP_METHOD_GET, RP_ROUTE_NO_METHOD, NULL,
         ""},
        {"a.b.vault.rampart.localhost", "/", RP_METHOD_GET, RP_ROUTE_NO_HOST, NULL, ""},
        {"vault.rampart.localhost", "/", RP_METHOD_GET, RP_ROUTE_FOUND, h_app, "vault"},
        {"shop.rampart.localhost", "/cart", RP_METHOD_PUT, RP_ROUTE_FOUND, h_app, "shop"},
        {"shop-staging.rampart.localhost", "/", RP_METHOD_GET, RP_ROUTE_FOUND, h_app,
         "shop-staging"},
        {"shop.scm.rampart.localhost", "/", RP_METHOD_GET, RP_ROUTE_NO_HOST, NULL, ""},
        {"evil.com", "/", RP_METHOD_GET, RP_ROUTE_NO_HOST, NULL, ""},
        {"rampart.localhost.evil.com", "/", RP_METHOD_GET, RP_ROUTE_NO_HOST, NULL, ""},
        {"xrampart.localhost", "/", RP_METHOD_GET, RP_ROUTE_NO_HOST, NULL, ""},
        {".rampart.localhost", "/", RP_METHOD_GET, RP_ROUTE_NO_HOST, NULL, ""},
    };
    rp_router *r = build();

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const rcase *c = &cases[i];
        const rp_route *rt = NULL;
        rp_str label;
        unsigned allowed = 0;
        rp_str host = {c->host, strlen(c->host)};
        rp_route_result got =
            rp_router_match(r, host, c->path, strlen(c->path), c->m, &rt, &label, &allowed);
        if (got != c->want)
            fail_msg("case %zu (%s %s): got %d want %d", i, c->host, c->path, got, c->want);
        if (c->want == RP_ROUTE_FOUND) {
            assert_non_null(rt);
            assert_ptr_equal(rt->fn, c->fn);
            assert_int_equal(label.n, strlen(c->label));
            assert_memory_equal(label.p, c->label, label.n);
        } else {
            assert_null(rt);
        }
        if (c->want == RP_ROUTE_NO_METHOD)
            assert_int_not_equal(allowed, 0);
    }
    rp_router_free(r);
}

static void test_allow_header(void **state)
{
    char buf[64];

    rp_router_allow(RP_M_READ, buf, sizeof(buf));
    assert_string_equal(buf, "GET, HEAD");
    rp_router_allow(RP_M(RP_METHOD_POST) | RP_M(RP_METHOD_DELETE), buf, sizeof(buf));
    assert_string_equal(buf, "POST, DELETE");
    rp_router_allow(RP_M_ANY, buf, 8);
    assert_true(strlen(buf) < 8);
}

static void test_bad_patterns(void **state)
{
    rp_router *r = NULL;
    rp_route_opts o = {0, 0, NULL};

    assert_int_equal(rp_router_create("d.test", &r), 0);
    assert_int_equal(rp_router_add(r, "Bad!", "/", h_app, &o), RP_EINVAL);
    assert_int_equal(rp_router_add(r, "@", "noslash", h_app, &o), RP_EINVAL);
    assert_int_equal(rp_router_add(r, "@", "/", NULL, &o), RP_EINVAL);
    assert_int_equal(rp_router_add(r, "*.", "/", h_app, &o), RP_EINVAL);
    rp_router_free(r);
}

static void test_oom(void **state)
{
    rp_router *r = NULL;

    rp_alloc_fail_after(0);
    assert_int_equal(rp_router_create("d.test", &r), RP_ENOMEM);
    rp_alloc_fail_after(1);
    assert_int_equal(rp_router_create("d.test", &r), RP_ENOMEM);
    rp_alloc_fail_after(-1);
    assert_int_equal(rp_router_create("d.test", &r), 0);
    rp_alloc_fail_after(0);
    assert_int_equal(rp_router_add(r, "@", "/", h_app, NULL), RP_ENOMEM);
    rp_alloc_fail_after(-1);
    assert_int_equal(rp_router_add(r, "@", "/", h_app, NULL), 0);
    rp_router_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_allow_header),
        cmocka_unit_test(test_bad_patterns),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
