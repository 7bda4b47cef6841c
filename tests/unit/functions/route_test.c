/*
 * route_test.c - unit tests for src/functions/route.c, Azure Functions route templates: every
 * accepted syntax form (checked through the introspection calls), every refusal with its exact
 * message and code, matching (literals and their case, parameters, optional parameters,
 * defaults, catch-alls, empty segments and trailing slashes), each constraint at the edges of
 * what it accepts, the match API's error returns, the conflict and reserved-route tests, and
 * allocation failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "functions/route.h"
/* The functions host includes both: their names must not clash (http/router.h owns rp_route). */
#include "http/request.h"
#include "http/router.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static rp_route_tmpl *compile(const char *t)
{
    rp_route_tmpl *r = NULL;
    char why[256] = "x";
    int rc = rp_route_compile(t, strlen(t), &r, why, sizeof(why));

    if (rc != 0)
        print_message("unexpected refusal of '%s': %s\n", t, why);
    assert_int_equal(rc, 0);
    assert_string_equal(why, "");
    assert_non_null(r);
    return r;
}

/* Compiling t (n bytes) fails with exactly rc and message msg. */
static void refuse_n(const char *t, size_t n, int rc, const char *msg)
{
    rp_route_tmpl *r = (rp_route_tmpl *)1;
    char why[256] = "";

    assert_int_equal(rp_route_compile(t, n, &r, why, sizeof(why)), rc);
    assert_null(r);
    assert_string_equal(why, msg);
}

static void refuse(const char *t, int rc, const char *msg)
{
    refuse_n(t, strlen(t), rc, msg);
}

#define END ((const char *)NULL)

/*
 * Matches path against r and checks the result: expected "name=value" strings in template
 * order (terminated by END) for a match. Returns the values for further checks.
 */
static size_t expect_match(const rp_route_tmpl *r, const char *path, ...)
{
    static rp_route_param got[RP_ROUTE_MAX_PARAMS];
    size_t n = 99, k = 0;
    const char *e;
    va_list ap;
    int rc = rp_route_match(r, path, strlen(path), got, RP_ROUTE_MAX_PARAMS, &n);

    if (rc != 1)
        print_message("'%s' did not match\n", path);
    assert_int_equal(rc, 1);
    va_start(ap, path);
    while ((e = va_arg(ap, const char *)) != NULL) {
        const char *eq = strchr(e, '=');

        assert_non_null(eq);
        assert_true(k < n);
        assert_int_equal(strlen(got[k].name), (size_t)(eq - e));
        assert_memory_equal(got[k].name, e, (size_t)(eq - e));
        if (got[k].value_len != strlen(eq + 1) ||
            memcmp(got[k].value, eq + 1, got[k].value_len) != 0)
            print_message("%s: got '%.*s'\n", e, (int)got[k].value_len, got[k].value);
        assert_int_equal(got[k].value_len, strlen(eq + 1));
        assert_memory_equal(got[k].value, eq + 1, got[k].value_len);
        k++;
    }
    va_end(ap);
    assert_int_equal(n, k);
    return n;
}

static void expect_no_match(const rp_route_tmpl *r, const char *path)
{
    rp_route_param got[RP_ROUTE_MAX_PARAMS];
    size_t n = 99;
    int rc = rp_route_match(r, path, strlen(path), got, RP_ROUTE_MAX_PARAMS, &n);

    if (rc != 0)
        print_message("'%s' matched\n", path);
    assert_int_equal(rc, 0);
    assert_int_equal(n, 0);
}

/* Compiles "{v:<cons>}" and checks that each of the ok values matches and each bad one not. */
static void check_constraint(const char *cons, const char *const *ok, const char *const *bad)
{
    char t[128];
    rp_route_tmpl *r;

    assert_true((size_t)snprintf(t, sizeof(t), "{v:%s}", cons) < sizeof(t));
    r = compile(t);
    for (; *ok != NULL; ok++) {
        if (rp_route_param_check(r, 0, *ok, strlen(*ok)) != 1)
            print_message("%s refused '%s'\n", cons, *ok);
        assert_int_equal(rp_route_param_check(r, 0, *ok, strlen(*ok)), 1);
        if (strchr(*ok, '/') == NULL) {
            char p[160];
            assert_true((size_t)snprintf(p, sizeof(p), "v=%s", *ok) < sizeof(p));
            expect_match(r, *ok, p, END);
        }
    }
    for (; *bad != NULL; bad++) {
        if (rp_route_param_check(r, 0, *bad, strlen(*bad)) != 0)
            print_message("%s accepted '%s'\n", cons, *bad);
        assert_int_equal(rp_route_param_check(r, 0, *bad, strlen(*bad)), 0);
        if (strchr(*bad, '/') == NULL && (*bad)[0] != '\0')
            expect_no_match(r, *bad);
    }
    rp_route_free(r);
}

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- syntax that compiles ----------------------------------------------------------------- */

static void expect_param(const rp_route_tmpl *r, size_t i, const char *name, rp_route_kind kind,
                         const char *def, size_t ncons)
{
    rp_route_param_info info;

    assert_int_equal(rp_route_param_get(r, i, &info), 0);
    assert_string_equal(info.name, name);
    assert_int_equal(info.kind, kind);
    if (def == NULL) {
        assert_null(info.def);
    } else {
        assert_non_null(info.def);
        assert_int_equal(info.def_len, strlen(def));
        assert_memory_equal(info.def, def, info.def_len);
    }
    assert_int_equal(info.nconstraints, ncons);
}

static void test_syntax_forms(void **state)
{
    rp_route_tmpl *r;
    rp_route_param_info info;

    (void)state;
    r = compile("products/{category:alpha}/{id:int?}");
    assert_int_equal(rp_route_nparams(r), 2);
    expect_param(r, 0, "category", RP_ROUTE_REQUIRED, NULL, 1);
    expect_param(r, 1, "id", RP_ROUTE_OPTIONAL, NULL, 1);
    assert_int_equal(rp_route_param_get(r, 2, &info), RP_ENOENT);
    rp_route_free(r);

    r = compile("{controller=Home}/{action=Index}/{id?}");
    expect_param(r, 0, "controller", RP_ROUTE_REQUIRED, "Home", 0);
    expect_param(r, 1, "action", RP_ROUTE_REQUIRED, "Index", 0);
    expect_param(r, 2, "id", RP_ROUTE_OPTIONAL, NULL, 0);
    rp_route_free(r);

    r = compile("files/{*path}");
    expect_param(r, 0, "path", RP_ROUTE_CATCHALL, NULL, 0);
    rp_route_free(r);
    r = compile("files/{**path=index.html}");
    expect_param(r, 0, "path", RP_ROUTE_CATCHALL, "index.html", 0);
    rp_route_free(r);

    /* Chained constraints, names in any case, a default after them, '?' after constraints. */
    r = compile("{n:INT:Min(1):max(10)=5}/{m:long?}");
    expect_param(r, 0, "n", RP_ROUTE_REQUIRED, "5", 3);
    expect_param(r, 1, "m", RP_ROUTE_OPTIONAL, NULL, 1);
    rp_route_free(r);

    /* Every constraint name the table knows compiles. */
    r = compile("{a:int}/{b:long}/{c:bool}/{d:datetime}/{e:decimal}/{f:double}/{g:float}/"
                "{h:guid}/{i:alpha}/{j:minlength(1)}/{k:maxlength(2)}/{l:length(3)}/"
                "{m:length(1,4)}/{n:min(-1)}/{o:max(9)}/{p:range(-9223372036854775808,"
                "9223372036854775807)}");
    assert_int_equal(rp_route_nparams(r), 16);
    expect_param(r, 15, "p", RP_ROUTE_REQUIRED, NULL, 1);
    rp_route_free(r);

    /* Escaped braces in a default: "{{" and "}}" stand for single braces. */
    r = compile("{x=a{{b}}c}");
    expect_param(r, 0, "x", RP_ROUTE_REQUIRED, "a{b}c", 0);
    rp_route_free(r);

    /* Names: '_' and digits after the first character, 64 bytes at most. */
    r = compile("{_a1}/{"
                "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd}");
    expect_param(r, 1, "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd",
                 RP_ROUTE_REQUIRED, NULL, 0);
    rp_route_free(r);

    /* Optional parameters may be followed by other optional ones and a catch-all. */
    r = compile("{a?}/{b=1}/{*c}");
    assert_int_equal(rp_route_nparams(r), 3);
    rp_route_free(r);

    /* Non-ASCII literals and defaults are kept as they are. */
    r = compile("caf\xc3\xa9/{x=\xc3\xa9t\xc3\xa9}");
    expect_param(r, 0, "x", RP_ROUTE_REQUIRED, "\xc3\xa9t\xc3\xa9", 0);
    rp_route_free(r);

    /* NULL why and a short why are fine. */
    r = NULL;
    assert_int_equal(rp_route_compile("a", 1, &r, NULL, 0), 0);
    assert_non_null(r);
    rp_route_free(r);
    assert_int_equal(rp_route_nparams(NULL), 0);
    rp_route_free(NULL);
}

static void test_syntax_limits(void **state)
{
    char t[RP_ROUTE_MAX_LEN + 8];
    rp_route_tmpl *r;
    size_t k = 0;

    (void)state;
    /* Exactly RP_ROUTE_MAX_LEN bytes compiles; one more does not. */
    memset(t, 'a', RP_ROUTE_MAX_LEN + 1);
    r = NULL;
    assert_int_equal(rp_route_compile(t, RP_ROUTE_MAX_LEN, &r, NULL, 0), 0);
    rp_route_free(r);
    refuse_n(t, RP_ROUTE_MAX_LEN + 1, RP_ETOOBIG, "template: longer than 512 bytes");

    /* 32 segments, then 33. */
    for (int i = 0; i < RP_ROUTE_MAX_SEGMENTS; i++)
        k += (size_t)snprintf(t + k, sizeof(t) - k, "%sa", i ? "/" : "");
    r = compile(t);
    rp_route_free(r);
    assert_true(k + 2 < sizeof(t));
    memcpy(t + k, "/a", 3);
    refuse(t, RP_ETOOBIG, "template: more than 32 segments");

    /* 16 parameters, then 17. */
    k = 0;
    for (int i = 0; i < RP_ROUTE_MAX_PARAMS; i++)
        k += (size_t)snprintf(t + k, sizeof(t) - k, "%s{p%d}", i ? "/" : "", i);
    r = compile(t);
    assert_int_equal(rp_route_nparams(r), 16);
    rp_route_free(r);
    memcpy(t + k, "/{p99}", 7);
    refuse(t, RP_ETOOBIG, "template: more than 16 parameters");

    /* 8 constraints on one parameter, then 9. */
    r = compile("{x:int:int:int:int:int:int:int:int}");
    expect_param(r, 0, "x", RP_ROUTE_REQUIRED, NULL, 8);
    rp_route_free(r);
    refuse("{x:int:int:int:int:int:int:int:int:int}", RP_ETOOBIG,
           "segment 1 ('{x:int:int:int:int:int:int:int:int:int}'): more than 8 constraints on "
           "'x'");
}

/* ---- refusals ----------------------------------------------------------------------------- */

static void test_refuse_structure(void **state)
{
    rp_route_tmpl *r = (rp_route_tmpl *)1;

    (void)state;
    refuse("a//b", RP_EPARSE, "segment 2 (''): empty segment ('//')");
    refuse("//", RP_EPARSE, "segment 1 (''): empty segment ('//')");
    refuse("~/a", RP_EPARSE, "template: cannot start with '~'");
    refuse("{}", RP_EPARSE, "segment 1 ('{}'): empty parameter '{}'");
    refuse("a/{id", RP_EPARSE, "segment 2 ('{id'): unmatched '{'");
    refuse("a/{id/b", RP_EPARSE, "segment 2 ('{id/b'): unmatched '{'");
    refuse("a}/b", RP_EPARSE, "segment 1 ('a}'): unmatched '}' (write '}}' for a literal brace)");
    refuse("{a{b}", RP_EPARSE,
           "segment 1 ('{a{b}'): a '{' inside a parameter must be written '{{'");
    refuse("a?b", RP_EPARSE, "segment 1 ('a?b'): '?' is not allowed in a literal");
    refuse("x/{a}.{b}", RP_EPARSE,
           "segment 2 ('{a}.{b}'): a segment must be one literal or one parameter; complex "
           "segments such as '{a}.{b}' or 'file{n}' are not supported");
    refuse("file{n}", RP_EPARSE,
           "segment 1 ('file{n}'): a segment must be one literal or one parameter; complex "
           "segments such as '{a}.{b}' or 'file{n}' are not supported");
    refuse("{a}{b}", RP_EPARSE,
           "segment 1 ('{a}{b}'): a segment must be one literal or one parameter; complex "
           "segments such as '{a}.{b}' or 'file{n}' are not supported");
    refuse("{*rest}/a", RP_EPARSE,
           "segment 1 ('{*rest}'): a catch-all parameter must be the last segment");
    refuse("{a?}/b", RP_EPARSE,
           "segment 2 ('b'): follows the optional parameter 'a': only optional parameters, "
           "parameters with a default or a catch-all may follow it");
    refuse("x/{a=1}/{b}", RP_EPARSE,
           "segment 3 ('{b}'): follows the optional parameter 'a': only optional parameters, "
           "parameters with a default or a catch-all may follow it");
    refuse("a\tb", RP_EPARSE, "template: control character at byte 1");
    refuse_n("a\0b", 3, RP_EPARSE, "template: control character at byte 1");
    refuse("a/\xff", RP_EPARSE, "template: not valid UTF-8");
    refuse("a/\xc2\x80", RP_EPARSE, "template: C1 control character (U+0080-U+009F)");
    refuse("a/\xc0\xaf", RP_EPARSE, "template: not valid UTF-8"); /* overlong '/' */

    /* Long segments are quoted cut at 48 bytes. */
    refuse("{aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:x}", RP_EPARSE,
           "segment 1 ('{aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'): unknown constraint "
           "'x'");

    /* A short why is cut, NUL-terminated. */
    {
        char small[8] = "zzzzzzz";
        assert_int_equal(rp_route_compile("{}", 2, &r, small, sizeof(small)), RP_EPARSE);
        assert_string_equal(small, "segment");
    }

    /* Arguments. */
    assert_int_equal(rp_route_compile("a", 1, NULL, NULL, 0), RP_EINVAL);
    assert_int_equal(rp_route_compile(NULL, 1, &r, NULL, 0), RP_EINVAL);
    assert_null(r);
    r = (rp_route_tmpl *)1;
    assert_int_equal(rp_route_compile(NULL, 0, &r, NULL, 0), 0); /* the empty template */
    assert_non_null(r);
    rp_route_free(r);
}

static void test_refuse_params(void **state)
{
    (void)state;
    refuse("{*rest?}", RP_EPARSE,
           "segment 1 ('{*rest?}'): a catch-all parameter cannot be optional");
    refuse("{*}", RP_EPARSE, "segment 1 ('{*}'): missing parameter name");
    refuse("{?}", RP_EPARSE, "segment 1 ('{?}'): missing parameter name");
    refuse("{id=5?}", RP_EPARSE,
           "segment 1 ('{id=5?}'): an optional parameter cannot have a default value");
    refuse("{id}/{ID}", RP_EPARSE, "segment 2 ('{ID}'): parameter name 'ID' is used twice");
    /* Names as ASP.NET takes them: "{user-id}", "{file.name}", "{1a}" work in Azure. */
    {
        rp_route_tmpl *r = NULL;
        rp_route_param ps[4];
        size_t np = 0;
        char why[256];
        assert_int_equal(rp_route_compile("u/{user-id}/{file.name}/{1a}", 28, &r, why, sizeof(why)),
                         0);
        assert_int_equal(rp_route_match(r, "u/7/x.txt/z", 11, ps, 4, &np), 1);
        assert_int_equal(np, 3);
        assert_string_equal(ps[0].name, "user-id");
        assert_string_equal(ps[1].name, "file.name");
        assert_string_equal(ps[2].name, "1a");
        rp_route_free(r);
    }
    refuse("{:int}", RP_EPARSE,
           "segment 1 ('{:int}'): invalid parameter name ':int': no space, control or non-ASCII "
           "character, nor any of / { } ? * : =");
    refuse("{a b}", RP_EPARSE,
           "segment 1 ('{a b}'): invalid parameter name 'a b': no space, control or non-ASCII "
           "character, nor any of / { } ? * : =");
    refuse("{id?:int}", RP_EPARSE,
           "segment 1 ('{id?:int}'): invalid parameter name 'id?': no space, control or "
           "non-ASCII character, nor any of / { } ? * : =");
    refuse("{abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcde}", RP_EPARSE,
           "segment 1 ('{abcdefghijabcdefghijabcdefghijabcdefghijabcdefg...'): parameter name "
           "longer than 64 bytes");
    refuse("{x=}", RP_EPARSE, "segment 1 ('{x=}'): empty default value for 'x'");
    refuse("{x=a/b}", RP_EPARSE, "segment 1 ('{x=a/b}'): the default value of 'x' contains '/'");
    refuse("{x:int=abc}", RP_EPARSE,
           "segment 1 ('{x:int=abc}'): default value 'abc' does not satisfy constraint 'int'");
    refuse("{x:range(1,5)=9}", RP_EPARSE,
           "segment 1 ('{x:range(1,5)=9}'): default value '9' does not satisfy constraint "
           "'range(1,5)'");
    refuse("{x:alpha:maxlength(2)=abc}", RP_EPARSE,
           "segment 1 ('{x:alpha:maxlength(2)=abc}'): default value 'abc' does not satisfy "
           "constraint 'maxlength(2)'");
}

static void test_refuse_constraints(void **state)
{
    (void)state;
    refuse("{x:regex(^a$)}", RP_EPARSE,
           "segment 1 ('{x:regex(^a$)}'): regex constraints are not supported");
    refuse("{x:int:REGEX(a:b)}", RP_EPARSE,
           "segment 1 ('{x:int:REGEX(a:b)}'): regex constraints are not supported");
    refuse("{x:foo}", RP_EPARSE, "segment 1 ('{x:foo}'): unknown constraint 'foo'");
    refuse("{x:int:nonfile}", RP_EPARSE,
           "segment 1 ('{x:int:nonfile}'): unknown constraint 'nonfile'");
    refuse("{x:}", RP_EPARSE, "segment 1 ('{x:}'): empty constraint name after ':'");
    refuse("{x::int}", RP_EPARSE, "segment 1 ('{x::int}'): empty constraint name after ':'");
    refuse("{x:int()}", RP_EPARSE, "segment 1 ('{x:int()}'): constraint 'int' takes no arguments");
    refuse("{x:min}", RP_EPARSE,
           "segment 1 ('{x:min}'): constraint 'min' needs an argument: 'min(n)'");
    refuse("{x:min(a)}", RP_EPARSE,
           "segment 1 ('{x:min(a)}'): constraint 'min': 'a' is not an integer (-?[0-9]+, 64 "
           "bits)");
    refuse("{x:min()}", RP_EPARSE,
           "segment 1 ('{x:min()}'): constraint 'min': '' is not an integer (-?[0-9]+, 64 bits)");
    refuse("{x:min(+1)}", RP_EPARSE,
           "segment 1 ('{x:min(+1)}'): constraint 'min': '+1' is not an integer (-?[0-9]+, 64 "
           "bits)");
    refuse("{x:max(9223372036854775808)}", RP_EPARSE,
           "segment 1 ('{x:max(9223372036854775808)}'): constraint 'max': '9223372036854775808' "
           "is not an integer (-?[0-9]+, 64 bits)");
    refuse("{x:min(1,2)}", RP_EPARSE,
           "segment 1 ('{x:min(1,2)}'): constraint 'min' takes 1 argument, not 2");
    refuse("{x:range(1)}", RP_EPARSE,
           "segment 1 ('{x:range(1)}'): constraint 'range' takes 2 arguments, not 1");
    refuse("{x:range(5,1)}", RP_EPARSE,
           "segment 1 ('{x:range(5,1)}'): constraint 'range': 5 is greater than 1");
    refuse("{x:length(3,1)}", RP_EPARSE,
           "segment 1 ('{x:length(3,1)}'): constraint 'length': 3 is greater than 1");
    refuse("{x:length(1,2,3)}", RP_EPARSE,
           "segment 1 ('{x:length(1,2,3)}'): constraint 'length' takes 1 or 2 arguments, not 3");
    refuse("{x:max(1,2,3)}", RP_EPARSE,
           "segment 1 ('{x:max(1,2,3)}'): constraint 'max' takes 1 argument, not 3");
    refuse("{x:length(1,)}", RP_EPARSE,
           "segment 1 ('{x:length(1,)}'): constraint 'length': '' is not a length "
           "(0..2147483647)");
    refuse("{x:minlength(-1)}", RP_EPARSE,
           "segment 1 ('{x:minlength(-1)}'): constraint 'minlength': '-1' is not a length "
           "(0..2147483647)");
    refuse("{x:maxlength(2147483648)}", RP_EPARSE,
           "segment 1 ('{x:maxlength(2147483648)}'): constraint 'maxlength': '2147483648' is not "
           "a length (0..2147483647)");
    refuse("{x:min(1}", RP_EPARSE, "segment 1 ('{x:min(1}'): constraint 'min': missing ')'");
    refuse("{x:min(1)y}", RP_EPARSE,
           "segment 1 ('{x:min(1)y}'): unexpected 'y' after constraint 'min(...)'");
    /* The limits themselves are accepted. */
    rp_route_free(compile("{x:maxlength(2147483647)}/{y:length(0,0)}"));
}

/* ---- matching ----------------------------------------------------------------------------- */

static void test_match_literals(void **state)
{
    rp_route_tmpl *r;

    (void)state;
    r = compile("Products/List");
    expect_match(r, "/products/list", END);
    expect_match(r, "/PRODUCTS/LIST/", END);
    expect_match(r, "products/list", END); /* the leading '/' is optional */
    expect_no_match(r, "/products");
    expect_no_match(r, "/products/lis");
    expect_no_match(r, "/products/listx");
    expect_no_match(r, "/products/list/x");
    expect_no_match(r, "/products//list");
    expect_no_match(r, "/products/list//");
    expect_no_match(r, "//products/list");
    expect_no_match(r, "");
    rp_route_free(r);

    /* ASCII case only: 'é' (c3 a9) and 'É' (c3 89) differ. */
    r = compile("caf\xc3\xa9");
    expect_match(r, "/CAF\xc3\xa9", END);
    expect_no_match(r, "/CAF\xc3\x89");
    rp_route_free(r);

    /* Escaped braces; a leading and a trailing '/' in the template are ignored. */
    r = compile("/a{{b}}/");
    expect_match(r, "/a{b}", END);
    expect_no_match(r, "/a{{b}}");
    rp_route_free(r);

    /* The empty template takes the empty path only. */
    r = compile("");
    expect_match(r, "", END);
    expect_match(r, "/", END);
    expect_no_match(r, "//");
    expect_no_match(r, "/a");
    rp_route_free(r);
}

static void test_match_params(void **state)
{
    rp_route_param got[4];
    const char *path = "/products/shoes/42";
    rp_route_tmpl *r;
    size_t n;

    (void)state;
    r = compile("products/{category}/{id}");
    expect_match(r, path, "category=shoes", "id=42", END);
    expect_match(r, "/PRODUCTS/a%20b/-/", "category=a%20b", "id=-", END);
    expect_no_match(r, "/products/shoes");
    expect_no_match(r, "/products//42");
    expect_no_match(r, "/products/shoes/42/x");
    /* Values point into the caller's path. */
    assert_int_equal(rp_route_match(r, path, strlen(path), got, 4, &n), 1);
    assert_ptr_equal(got[0].value, path + 10);
    assert_ptr_equal(got[1].value, path + 16);
    rp_route_free(r);
}

static void test_match_optional_default(void **state)
{
    rp_route_param got[4];
    rp_route_param_info info;
    rp_route_tmpl *r;
    size_t n;

    (void)state;
    r = compile("products/{category}/{id?}");
    expect_match(r, "/products/x", "category=x", END);
    expect_match(r, "/products/x/", "category=x", END);
    expect_match(r, "/products/x/5", "category=x", "id=5", END);
    expect_no_match(r, "/products/x//");
    expect_no_match(r, "/products/x/5/6");
    expect_no_match(r, "/products");
    rp_route_free(r);

    r = compile("{controller=Home}/{action=Index}/{id?}");
    expect_match(r, "", "controller=Home", "action=Index", END);
    expect_match(r, "/", "controller=Home", "action=Index", END);
    expect_match(r, "/shop", "controller=shop", "action=Index", END);
    expect_match(r, "/shop/buy/7", "controller=shop", "action=buy", "id=7", END);
    /* A default value belongs to the route. */
    assert_int_equal(rp_route_match(r, "", 0, got, 4, &n), 1);
    assert_int_equal(rp_route_param_get(r, 0, &info), 0);
    assert_ptr_equal(got[0].value, info.def);
    rp_route_free(r);

    /* Constraints of an absent optional parameter do not run; present ones do. */
    r = compile("a/{id:int?}");
    expect_match(r, "/a", END);
    expect_match(r, "/a/-3", "id=-3", END);
    expect_no_match(r, "/a/x");
    rp_route_free(r);
}

static void test_match_catchall(void **state)
{
    rp_route_tmpl *r;

    (void)state;
    r = compile("files/{*path}");
    expect_match(r, "/files", END);
    expect_match(r, "/files/", END);
    expect_match(r, "/files/a", "path=a", END);
    expect_match(r, "/files/a/b//c/", "path=a/b//c/", END);
    expect_match(r, "/FILES/x/", "path=x/", END);
    expect_no_match(r, "/files//a");
    expect_no_match(r, "/files//");
    expect_no_match(r, "/file/a");
    rp_route_free(r);

    r = compile("files/{**path=index.html}");
    expect_match(r, "/files", "path=index.html", END);
    expect_match(r, "/files/a/b", "path=a/b", END);
    rp_route_free(r);
    /* Only a catch-all's default may contain '/'. */
    r = compile("files/{*path=docs/index.html}");
    expect_match(r, "/files/", "path=docs/index.html", END);
    rp_route_free(r);

    /* A constrained catch-all with nothing to take and no default does not match. */
    r = compile("files/{*path:minlength(3)}");
    expect_no_match(r, "/files");
    expect_no_match(r, "/files/ab");
    expect_match(r, "/files/a/b", "path=a/b", END);
    rp_route_free(r);
    r = compile("files/{*path:maxlength(3)=abc}");
    expect_match(r, "/files", "path=abc", END);
    expect_no_match(r, "/files/abcd");
    rp_route_free(r);

    r = compile("{*all}");
    expect_match(r, "", END);
    expect_match(r, "/", END);
    expect_match(r, "/a", "all=a", END);
    expect_no_match(r, "//");
    rp_route_free(r);
}

static void test_match_api(void **state)
{
    rp_route_param got[2];
    rp_route_tmpl *r = compile("{a}/{b}/{c?}");
    size_t n = 99;

    (void)state;
    /* Too small an array: RP_ETOOBIG says how many are needed and writes nothing. */
    memset(got, 0, sizeof(got));
    assert_int_equal(rp_route_match(r, "/x/y/z", 6, got, 2, &n), RP_ETOOBIG);
    assert_int_equal(n, 3);
    assert_null(got[0].name);
    assert_int_equal(rp_route_match(r, "/x/y", 4, got, 2, &n), 1);
    assert_int_equal(n, 2);
    assert_int_equal(rp_route_match(r, "/x/y", 4, NULL, 0, &n), RP_ETOOBIG);
    assert_int_equal(n, 2);
    /* No match is 0 whatever the capacity. */
    assert_int_equal(rp_route_match(r, "/x", 2, NULL, 0, &n), 0);
    assert_int_equal(n, 0);
    /* Bad arguments. */
    assert_int_equal(rp_route_match(NULL, "/x", 2, got, 2, &n), RP_EINVAL);
    assert_int_equal(rp_route_match(r, "/x", 2, got, 2, NULL), RP_EINVAL);
    assert_int_equal(rp_route_match(r, NULL, 2, got, 2, &n), RP_EINVAL);
    assert_int_equal(rp_route_match(r, "/x", 2, NULL, 2, &n), RP_EINVAL);
    rp_route_free(r);

    /* A route without parameters needs no array; the path is taken as n bytes. */
    r = compile("ab");
    assert_int_equal(rp_route_match(r, "/abc", 3, NULL, 0, &n), 1);
    assert_int_equal(rp_route_match(r, NULL, 0, NULL, 0, &n), 0);
    rp_route_free(r);
}

/* ---- constraints -------------------------------------------------------------------------- */

static void test_constraint_numbers(void **state)
{
    (void)state;
    check_constraint("int", LIST("0", "-0", "007", "2147483647", "-2147483648"),
                     LIST("2147483648", "-2147483649", "+1", " 1", "1 ", "1.0", "-", "--1", "",
                          "1e3", "0x10", "99999999999999999999"));
    check_constraint("long", LIST("9223372036854775807", "-9223372036854775808", "2147483648"),
                     LIST("9223372036854775808", "-9223372036854775809", "+5", "5L", "-"));
    check_constraint("decimal",
                     LIST("1", "-1.5", ".5", "1.", "0.000", "79228162514264337593543950335",
                          "-79228162514264337593543950335", "0079228162514264337593543950335.99"),
                     LIST("79228162514264337593543950336", "100000000000000000000000000000", "1e5",
                          "1,000", ".", "-", "+1", "1.2.3", "", "-.", "NaN"));
    check_constraint(
        "double", LIST("1", "-1.5E-3", ".5e1", "1e308", "1e999", "1.", "-0", "5e+2"),
        LIST("e5", "1e", "1e+", "NaN", "Infinity", "1.2.3", "+1", "1,5", ".", "1f", " 1"));
    check_constraint("float", LIST("3.5", "1e39"), LIST("1e", "x"));
    check_constraint("min(-5)", LIST("-5", "0", "9223372036854775807"),
                     LIST("-6", "-9223372036854775808", "x", "1.5"));
    check_constraint("max(10)", LIST("10", "-9223372036854775808"), LIST("11", "abc"));
    check_constraint("range(-1,1)", LIST("-1", "0", "1", "-0", "001"), LIST("-2", "2", "a"));
    check_constraint("int:min(1):max(3)", LIST("1", "3"), LIST("0", "4", "x"));
}

static void test_constraint_text(void **state)
{
    (void)state;
    check_constraint("bool", LIST("true", "FALSE", "True", "fAlSe"),
                     LIST("yes", "1", "truex", "t", " true", ""));
    check_constraint("alpha", LIST("a", "abcXYZ"), LIST("abc1", "a_b", "caf\xc3\xa9", "a b"));
    /* Lengths count UTF-16 code units: 'é' is one, U+1F600 (4 bytes) is two. */
    check_constraint("minlength(2)", LIST("ab", "abc", "\xf0\x9f\x98\x80"),
                     LIST("a", "\xc3\xa9", "\xff\xff"));
    check_constraint("maxlength(2)", LIST("ab", "\xc3\xa9\xc3\xa9", "\xf0\x9f\x98\x80"),
                     LIST("abc", "\xc3\xa9\xc3\xa9\xc3\xa9", "\xf0\x9f\x98\x80x", "\xff"));
    check_constraint("length(2)", LIST("ab", "\xe2\x82\xac\xe2\x82\xac", "\xf0\x9f\x98\x80"),
                     LIST("a", "abc", "\xc3"));
    check_constraint("length(1,3)", LIST("a", "abc"), LIST("abcd"));
    check_constraint("minlength(0)", LIST("a"), LIST("\xc0\xaf")); /* overlong '/' */
}

static void test_constraint_guid_datetime(void **state)
{
    (void)state;
    check_constraint(
        "guid",
        LIST("CD2C1638-1638-72D5-1638-DEADBEEF1638", "cd2c1638-1638-72d5-1638-deadbeef1638",
             "cd2c1638163872d51638deadbeef1638", "{cd2c1638-1638-72d5-1638-deadbeef1638}",
             "(cd2c1638-1638-72d5-1638-deadbeef1638)"),
        LIST("cd2c1638-1638-72d5-1638-deadbeef163", "cd2c1638-1638-72d5-1638-deadbeef16389",
             "gd2c1638-1638-72d5-1638-deadbeef1638", "cd2c1638_1638-72d5-1638-deadbeef1638",
             "{cd2c1638-1638-72d5-1638-deadbeef1638)", "cd2c1638163872d51638deadbeef163g",
             "{0xcd2c1638,0x1638,0x72d5,{0x16,0x38,0xde,0xad,0xbe,0xef,0x16,0x38}}",
             " cd2c1638-1638-72d5-1638-deadbeef1638"));
    check_constraint("datetime",
                     LIST("2024-01-31", "2024-02-29", "2000-02-29", "0001-01-01", "9999-12-31",
                          "2024-01-31T10:00", "2024-01-31T10:00Z", "2024-01-31T10:00:00Z",
                          "2024-01-31T23:59:59.1234567+14:00", "2024-01-31T00:00:00.5-08:30",
                          "2024-04-30T12:34:56"),
                     LIST("2023-02-29", "1900-02-29", "0000-01-01", "2024-13-01", "2024-00-10",
                          "2024-04-31", "2024-1-31", "2024-01-31 10:00", "2024-01-31T24:00",
                          "2024-01-31T10:60", "2024-01-31T10:00:60", "2024-01-31T10:00:00.",
                          "2024-01-31T10:00:00.12345678", "2024-01-31T10:00+14:01",
                          "2024-01-31T10:00+15:00", "2024-01-31T10:00+1:00", "2024-01-31Z",
                          "2024-01-31T10", "2024-01-31t10:00", "2024-01-31T10:00z", "12/31/2016",
                          "2024-01-31T10:00:00ZZ", "2024-01-31T10:00.5"));
}

/* ---- conflicts and reserved routes -------------------------------------------------------- */

static int conflict(const char *a, const char *b)
{
    rp_route_tmpl *x = compile(a), *y = compile(b);
    int c1 = rp_route_conflict(x, y), c2 = rp_route_conflict(y, x);

    assert_int_equal(c1, c2); /* symmetric */
    assert_int_equal(rp_route_conflict(x, x), 1);
    rp_route_free(x);
    rp_route_free(y);
    return c1;
}

static void test_conflict(void **state)
{
    (void)state;
    /* Azure's own rule: the same text ignoring case and outer slashes. */
    assert_int_equal(conflict("/foo/bar/baz/", "Foo/Bar/Baz"), 1);
    assert_int_equal(conflict("products/{id:INT}", "PRODUCTS/{ID:int}"), 1);
    /* Same shape, other names, defaults, constraint order, '*' versus '**'. */
    assert_int_equal(conflict("items/{id}", "items/{name}"), 1);
    assert_int_equal(conflict("a/{x?}", "a/{y=1}"), 1);
    assert_int_equal(conflict("a/{x:int:min(1)}", "a/{y:min(1):int}"), 1);
    assert_int_equal(conflict("f/{*p}", "f/{**q}"), 1);
    assert_int_equal(conflict("f/{*p:maxlength(3)=a}", "f/{*q:maxlength(3)=b}"), 1);
    assert_int_equal(conflict("a/{x:length(3)}", "a/{x:length(3,3)}"), 1);
    assert_int_equal(conflict("", "/"), 1);

    assert_int_equal(conflict("foo/bar/baz", "foo/bar"), 0);
    assert_int_equal(conflict("items/{id:int}", "items/{id}"), 0);
    assert_int_equal(conflict("items/{id:int}", "items/{id:alpha}"), 0);
    assert_int_equal(conflict("a/{x:int}", "a/{x:int:int}"), 1); /* the same set of constraints */
    assert_int_equal(conflict("a/{x:min(1)}", "a/{x:min(2)}"), 0);
    assert_int_equal(conflict("a/{x:range(1,2)}", "a/{x:range(1,3)}"), 0);
    assert_int_equal(conflict("a/{x}", "a/{x?}"), 0);
    assert_int_equal(conflict("a/{x}", "a/{*x}"), 0);
    assert_int_equal(conflict("a/{x}", "a/x"), 0);
    assert_int_equal(conflict("a/x", "a/y"), 0);
    assert_int_equal(conflict("a/x", "a/xx"), 0);
    /* A constrained catch-all without a default refuses the empty rest; with one it takes it. */
    assert_int_equal(conflict("f/{*p:minlength(1)}", "f/{*p:minlength(1)=x}"), 0);
    assert_int_equal(conflict("f/{*p}", "f/{*p=x}"), 1);

    assert_int_equal(rp_route_conflict(NULL, NULL), 0);
}

static int order(const char *a, const char *b)
{
    rp_route_tmpl *x = compile(a), *y = compile(b);
    int o = rp_route_order(x, y), back = rp_route_order(y, x);

    assert_true((o < 0 && back > 0) || (o > 0 && back < 0) || (o == 0 && back == 0));
    assert_int_equal(rp_route_order(x, x), 0);
    rp_route_free(x);
    rp_route_free(y);
    return o < 0 ? -1 : o > 0;
}

static void test_order(void **state)
{
    (void)state;
    assert_int_equal(order("products/list", "products/{id}"), -1); /* literal first */
    assert_int_equal(order("{id}/x", "a"), 1);
    assert_int_equal(order("items/{id:int}", "items/{name}"), -1); /* more constraints first */
    assert_int_equal(order("items/{id:int:min(1)}", "items/{id:int}"), -1);
    assert_int_equal(order("a/b/c", "a/b"), -1); /* longer first */
    assert_int_equal(order("a/b", "a/b/{*rest}"), 1);
    assert_int_equal(order("a", "b"), -1); /* literals: lower first, ignoring case */
    assert_int_equal(order("B", "a"), 1);
    assert_int_equal(order("ab", "abc"), -1);
    assert_int_equal(order("aa", "a_"), -1); /* upper-cased: 'A' < '_' */
    assert_int_equal(order("a_", "aZ"), 1);
    /* Ties: the same shape, and parameters with as many constraints. */
    assert_int_equal(order("Products/{id}", "products/{x?}"), 0);
    assert_int_equal(order("{a:int}", "{b:alpha}"), 0);
    assert_int_equal(order("", ""), 0);
    assert_int_equal(order("", "a"), 1);
    assert_int_equal(rp_route_order(NULL, NULL), 0);
}

static void test_reserved(void **state)
{
    static const struct {
        const char *t;
        int want;
    } t[] = {
        {"admin", 1},
        {"Admin/x", 1},
        {"/admin", 1},
        {"//ADMIN/x/", 1},
        {"administration", 1},
        {"admin-seed", 1},
        {"runtime", 1},
        {"runtime/webhooks/x", 1},
        {"RUNTIMES", 1},
        {"{x}/admin", 0},
        {"api/admin", 0},
        {"adm", 0},
        {"", 0},
        {"/", 0},
        {"xadmin", 0},
        {" admin", 0},
        {"runtim", 0},
        {"~/admin", 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (rp_route_reserved(t[i].t, strlen(t[i].t)) != t[i].want)
            print_message("reserved('%s') != %d\n", t[i].t, t[i].want);
        assert_int_equal(rp_route_reserved(t[i].t, strlen(t[i].t)), t[i].want);
    }
    /* Only n bytes count. */
    assert_int_equal(rp_route_reserved("admin", 4), 0);
    assert_int_equal(rp_route_reserved(NULL, 0), 0);
}

/* ---- allocation failure ------------------------------------------------------------------- */

static void test_oom(void **state)
{
    const char *t = "products/{category:alpha}/{id:int?}";
    rp_route_tmpl *r = NULL;
    char why[128];
    int rc = RP_ENOMEM;
    long n;

    (void)state;
    for (n = 0; n < 10 && rc == RP_ENOMEM; n++) {
        r = (rp_route_tmpl *)1;
        rp_alloc_fail_after(n);
        rc = rp_route_compile(t, strlen(t), &r, why, sizeof(why));
        rp_alloc_fail_after(-1);
        if (rc == RP_ENOMEM) {
            assert_null(r);
            assert_string_equal(why, "template: out of memory");
        }
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, 2); /* one allocation: it failed once, then worked */
    expect_match(r, "/products/shoes/1", "category=shoes", "id=1", END);
    rp_route_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax_forms),
        cmocka_unit_test(test_syntax_limits),
        cmocka_unit_test(test_refuse_structure),
        cmocka_unit_test(test_refuse_params),
        cmocka_unit_test(test_refuse_constraints),
        cmocka_unit_test(test_match_literals),
        cmocka_unit_test(test_match_params),
        cmocka_unit_test(test_match_optional_default),
        cmocka_unit_test(test_match_catchall),
        cmocka_unit_test(test_match_api),
        cmocka_unit_test(test_constraint_numbers),
        cmocka_unit_test(test_constraint_text),
        cmocka_unit_test(test_constraint_guid_datetime),
        cmocka_unit_test(test_conflict),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_reserved),
        cmocka_unit_test(test_oom),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
