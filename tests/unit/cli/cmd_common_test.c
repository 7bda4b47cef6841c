/*
 * cmd_common_test.c - unit tests for cli/cmd_common: option parsing (values, flags, lists,
 * positional limits, "--"), durations and ISO 8601 times (valid and invalid), expiry from now,
 * percent-encoded request paths, error texts from the three error shapes, table and field
 * output (alignment, times, arrays, missing values, control characters), and rp_cli_call's
 * mapping of HTTP answers to exit codes against the scripted local server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "cli/testserver.h"

#include "base/err.h"
#include "cli/cmd_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmpdir[1024];
static ts_server srv;

static int setup(void **state)
{
    (void)state;
    ts_fixture_start(&srv, "cmd_common_test", tmpdir, sizeof(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ts_fixture_stop(&srv, tmpdir);
    return 0;
}

/* ---------------------------------------------------------------- options */

static void test_args(void **state)
{
    rp_opt opts[] = {RP_OPT("output", RP_OPT_VALUE), RP_OPT("all", RP_OPT_FLAG),
                     RP_OPT("approver", RP_OPT_LIST)};
    char *argv[] = {"alice", "--output=json", "--all", "--approver", "a", "--approver=b", "bob"};
    rp_args a;
    char err[256];

    (void)state;
    assert_int_equal(rp_args_parse(7, argv, opts, 3, 2, 0, &a, err, sizeof(err)), 0);
    assert_string_equal(rp_opt_get(opts, 3, "output"), "json");
    assert_string_equal(rp_opt_get(opts, 3, "all"), "1");
    assert_int_equal(opts[2].nvalues, 2);
    assert_string_equal(opts[2].values[0], "a");
    assert_string_equal(opts[2].values[1], "b");
    assert_int_equal(a.npos, 2);
    assert_string_equal(a.pos[0], "alice");
    assert_string_equal(a.pos[1], "bob");
    assert_null(a.rest);
    assert_null(rp_opt_get(opts, 3, "nope"));
    assert_null(rp_opt_find(opts, 3, "nope"));
}

typedef struct bad_args {
    int argc;
    char *argv[4];
    const char *want;
} bad_args;

static void test_args_errors(void **state)
{
    static const bad_args cases[] = {
        {1, {"--bogus"}, "unknown option '--bogus'"},
        {1, {"-o"}, "unknown option '-o'"},
        {2, {"--all=1"}, "takes no value"},
        {1, {"--output"}, "needs a value"},
        {4, {"--output", "json", "--output", "text"}, "given twice"},
        {2, {"one", "two"}, "unexpected argument 'two'"},
        {2, {"--", "x"}, "unexpected argument '--'"},
    };
    char err[256];
    rp_args a;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rp_opt opts[] = {RP_OPT("output", RP_OPT_VALUE), RP_OPT("all", RP_OPT_FLAG)};
        err[0] = '\0';
        if (rp_args_parse(cases[i].argc, (char **)cases[i].argv, opts, 2, 1, 0, &a, err,
                          sizeof(err)) != RP_EINVAL ||
            strstr(err, cases[i].want) == NULL)
            fail_msg("case %zu: err \"%s\"", i, err);
    }
    /* A lone "-" is a positional argument (stdin, by convention). */
    {
        rp_opt opts[] = {RP_OPT("output", RP_OPT_VALUE)};
        char *argv[] = {"-"};
        assert_int_equal(rp_args_parse(1, argv, opts, 1, 1, 0, &a, err, sizeof(err)), 0);
        assert_string_equal(a.pos[0], "-");
    }
    /* A list option has a bound. */
    {
        rp_opt opts[] = {RP_OPT("x", RP_OPT_LIST)};
        char *argv[2 * (RP_OPT_MAX_VALUES + 1)];
        for (int i = 0; i < RP_OPT_MAX_VALUES + 1; i++) {
            argv[2 * i] = "--x";
            argv[2 * i + 1] = "v";
        }
        assert_int_equal(
            rp_args_parse(2 * RP_OPT_MAX_VALUES, argv, opts, 1, 0, 0, &a, err, sizeof(err)), 0);
        opts[0] = (rp_opt)RP_OPT("x", RP_OPT_LIST);
        assert_int_equal(
            rp_args_parse(2 * (RP_OPT_MAX_VALUES + 1), argv, opts, 1, 0, 0, &a, err, sizeof(err)),
            RP_EINVAL);
    }
}

static void test_args_rest(void **state)
{
    rp_opt opts[] = {RP_OPT("identity", RP_OPT_LIST)};
    char *argv[] = {"--identity", "a", "--", "sh", "-c", "--identity", "--", NULL};
    rp_args a;
    char err[256];

    (void)state;
    assert_int_equal(rp_args_parse(7, argv, opts, 1, 0, 1, &a, err, sizeof(err)), 0);
    assert_int_equal(opts[0].nvalues, 1);
    assert_int_equal(a.nrest, 4);
    assert_string_equal(a.rest[0], "sh");
    assert_string_equal(a.rest[2], "--identity"); /* after "--" nothing is an option */
    assert_string_equal(a.rest[3], "--");
    assert_null(a.rest[4]);
    /* "--" at the end: an empty rest */
    opts[0] = (rp_opt)RP_OPT("identity", RP_OPT_LIST);
    assert_int_equal(rp_args_parse(3, argv, opts, 1, 0, 1, &a, err, sizeof(err)), 0);
    assert_non_null(a.rest);
    assert_int_equal(a.nrest, 0);
}

static void test_output(void **state)
{
    int json = -1;

    (void)state;
    assert_int_equal(rp_cli_output(NULL, &json), RP_EXIT_OK);
    assert_int_equal(json, 0);
    assert_int_equal(rp_cli_output("table", &json), RP_EXIT_OK);
    assert_int_equal(json, 0);
    assert_int_equal(rp_cli_output("text", &json), RP_EXIT_OK);
    assert_int_equal(rp_cli_output("json", &json), RP_EXIT_OK);
    assert_int_equal(json, 1);
    assert_int_equal(rp_cli_output("xml", &json), RP_EXIT_USAGE);
}

/* ---------------------------------------------------------------- durations and times */

typedef struct dur_case {
    const char *in;
    int64_t secs;
} dur_case;

static void test_durations(void **state)
{
    static const dur_case good[] = {
        {"2h", 7200},        {"30m", 1800},   {"7d", 604800},      {"45s", 45},
        {"1w", 604800},      {"1h30m", 5400}, {"2H", 7200},        {"PT2H", 7200},
        {"PT8H", 28800},     {"P7D", 604800}, {"P1DT12H", 129600}, {"pt15m", 900},
        {"PT1H30M5S", 5405}, {"P1W", 604800}, {"PT90S", 90},       {"1d2h3m4s", 93784},
    };
    static const char *const bad[] = {
        "",       "2",      "h",   "2x",  "-2h", "+2h",  "2h ",    " 2h",
        "0h",     "0s0m",   "PT",  "P",   "P1M", "P1Y",  "PT1H2H", "PT2M1H",
        "P1DT",   "PT1.5H", "P1H", "T1H", "2h-", "1e3s", "0x10s",  "99999999999999999999d",
        "36601d", /* over RP_CLI_DURATION_MAX */
    };
    int64_t v;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        v = -1;
        if (rp_cli_parse_duration(good[i].in, &v) != 0 || v != good[i].secs)
            fail_msg("%s: got %lld", good[i].in, (long long)v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rp_cli_parse_duration(bad[i], &v) != RP_EINVAL)
            fail_msg("%s: accepted as %lld", bad[i], (long long)v);
    assert_int_equal(rp_cli_parse_duration(NULL, &v), RP_EINVAL);
}

typedef struct time_case {
    const char *in;
    int64_t t;
} time_case;

static void test_times(void **state)
{
    static const time_case good[] = {
        {"2026-11-29T07:00:00Z", 1795935600},
        {"2026-11-29t07:00:00z", 1795935600},
        {"2026-11-29 07:00:00Z", 1795935600},
        {"2026-11-29T07:00:00.123456Z", 1795935600},
        {"2026-11-29T09:00:00+02:00", 1795935600},
        {"2026-11-29T01:30:00-05:30", 1795935600},
        {"2024-02-29T23:59:59Z", 1709251199},
        {"2000-03-01T00:00:00Z", 951868800},
        {"1970-01-01T00:00:00Z", 0},
        {"9999-12-31T23:59:59Z", 253402300799},
    };
    static const char *const bad[] = {
        "2026-11-29T07:00:00", /* no offset: would depend on the local zone */
        "2026-11-29",
        "2026-11-29T07:00Z",
        "2025-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-10T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-11-29T24:00:00Z",
        "2026-11-29T07:60:00Z",
        "2026-11-29T07:00:60Z",
        "1969-12-31T23:59:59Z",
        "2026-11-29T07:00:00+2:00",
        "2026-11-29T07:00:00+24:00",
        "2026-11-29T07:00:00.Z",
        "2026-11-29T07:00:00Zjunk",
        "26-11-29T07:00:00Z",
        "2026/11/29T07:00:00Z",
        "",
        "1970-01-01T00:00:00+00:01", /* before 1970 in UTC */
    };
    int64_t t;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        t = -1;
        if (rp_cli_parse_time(good[i].in, &t) != 0 || t != good[i].t)
            fail_msg("%s: got %lld", good[i].in, (long long)t);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rp_cli_parse_time(bad[i], &t) != RP_EINVAL)
            fail_msg("%s: accepted as %lld", bad[i], (long long)t);
}

static void test_expiry_and_format(void **state)
{
    int64_t now = 1795935600, t;
    char out[32];

    (void)state;
    assert_int_equal(rp_cli_parse_expiry("2h", now, &t), 0);
    assert_int_equal(t, now + 7200);
    assert_int_equal(rp_cli_parse_expiry("PT30M", now, &t), 0);
    assert_int_equal(t, now + 1800);
    assert_int_equal(rp_cli_parse_expiry("2026-11-30T00:00:00Z", now, &t), 0);
    assert_int_equal(t, 1795996800);
    /* a time that is not in the future is refused */
    assert_int_equal(rp_cli_parse_expiry("2026-11-29T07:00:00Z", now, &t), RP_EINVAL);
    assert_int_equal(rp_cli_parse_expiry("2020-01-01T00:00:00Z", now, &t), RP_EINVAL);
    assert_int_equal(rp_cli_parse_expiry("soon", now, &t), RP_EINVAL);
    assert_int_equal(rp_cli_parse_expiry(NULL, now, &t), RP_EINVAL);

    rp_cli_format_time(1795935600, out);
    assert_string_equal(out, "2026-11-29T07:00:00Z");
    rp_cli_format_time(1709251199, out);
    assert_string_equal(out, "2024-02-29T23:59:59Z");
    rp_cli_format_time(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    rp_cli_format_time(-5, out);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    rp_cli_format_time(253402300799, out);
    assert_string_equal(out, "9999-12-31T23:59:59Z");
    /* round trip over a spread of times */
    for (int64_t x = 0; x < 253402300799; x += 7777777) {
        rp_cli_format_time(x, out);
        assert_int_equal(rp_cli_parse_time(out, &t), 0);
        assert_int_equal(t, x);
    }

    rp_cli_format_duration(7200, out, sizeof(out));
    assert_string_equal(out, "PT2H");
    rp_cli_format_duration(5400, out, sizeof(out));
    assert_string_equal(out, "PT1H30M");
    rp_cli_format_duration(45, out, sizeof(out));
    assert_string_equal(out, "PT45S");
    rp_cli_format_duration(604800, out, sizeof(out));
    assert_string_equal(out, "PT168H");
    rp_cli_format_duration(3661, out, sizeof(out));
    assert_string_equal(out, "PT1H1M1S");
    assert_int_equal(rp_cli_parse_duration("PT1H1M1S", &t), 0);
    assert_int_equal(t, 3661);
}

/* ---------------------------------------------------------------- paths and errors */

static void test_paths(void **state)
{
    char out[128];

    (void)state;
    assert_int_equal(rp_cli_path(out, sizeof(out), "/api/users/%s", "alice"), 0);
    assert_string_equal(out, "/api/users/alice");
    assert_int_equal(rp_cli_path(out, sizeof(out), "/api/roleDefinitions/%s", "Key Vault Reader"),
                     0);
    assert_string_equal(out, "/api/roleDefinitions/Key%20Vault%20Reader");
    assert_int_equal(rp_cli_path(out, sizeof(out), "/a/%s/b/%s", "x/../y", "q?r#s&t=%"), 0);
    assert_string_equal(out, "/a/x%2F..%2Fy/b/q%3Fr%23s%26t%3D%25");
    assert_int_equal(
        rp_cli_path(out, sizeof(out), "/x?scope=%s&principal=%s", "/vaults/v", "user:alice"), 0);
    assert_string_equal(out, "/x?scope=%2Fvaults%2Fv&principal=user%3Aalice");
    assert_int_equal(rp_cli_path(out, sizeof(out), "/u/%s", "\xc3\xa9\r\n"), 0);
    assert_string_equal(out, "/u/%C3%A9%0D%0A");
    assert_int_equal(rp_cli_path(out, sizeof(out), "/api/users"), 0);
    assert_string_equal(out, "/api/users");
    /* segments that would change the path are refused */
    assert_int_equal(rp_cli_path(out, sizeof(out), "/api/users/%s", ".."), RP_EINVAL);
    assert_int_equal(rp_cli_path(out, sizeof(out), "/api/users/%s", "."), RP_EINVAL);
    assert_int_equal(rp_cli_path(out, sizeof(out), "/api/users/%s", ""), RP_EINVAL);
    assert_int_equal(rp_cli_path(out, sizeof(out), "/api/users/%s", (const char *)NULL), RP_EINVAL);
    assert_string_equal(out, "");
    assert_int_equal(rp_cli_path(out, 12, "/api/users/%s", "alice"), RP_ETOOBIG);
    assert_string_equal(out, "");
}

static void test_error_text(void **state)
{
    char out[256];
    const char *mgmt = "{\"error\":{\"code\":\"AuthorizationFailed\",\"message\":\"no access\"}}";
    const char *aad = "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: "
                      "Invalid client secret provided.\",\"error_codes\":[7000215]}";
    const char *msi = "{\"statusCode\":400,\"message\":\"bad resource\"}";
    const char *evil = "{\"error\":{\"code\":\"X\",\"message\":\"a\\u001b[31mred\\u0007\"}}";

    (void)state;
    rp_cli_error_text(mgmt, strlen(mgmt), out, sizeof(out));
    assert_string_equal(out, "AuthorizationFailed: no access");
    rp_cli_error_text(aad, strlen(aad), out, sizeof(out));
    assert_string_equal(out, "invalid_client: AADSTS7000215: Invalid client secret provided.");
    rp_cli_error_text(msi, strlen(msi), out, sizeof(out));
    assert_string_equal(out, "bad resource");
    rp_cli_error_text(evil, strlen(evil), out, sizeof(out));
    assert_string_equal(out, "X: a?[31mred?");
    rp_cli_error_text("not json", 8, out, sizeof(out));
    assert_string_equal(out, "");
    rp_cli_error_text(NULL, 0, out, sizeof(out));
    assert_string_equal(out, "");
    rp_cli_error_text(mgmt, strlen(mgmt), out, 10);
    assert_string_equal(out, "Authoriza");
}

/* ---------------------------------------------------------------- tables */

/* Runs fn(f) into a memory stream and returns the text (caller frees). */
static char *capture_table(const rp_col *cols, size_t ncols, const json_t *rows, const char *empty)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_non_null(f);
    rp_cli_table(f, cols, ncols, rows, empty);
    fclose(f);
    return text;
}

static void test_table(void **state)
{
    static const rp_col cols[] = {
        {"NAME", "properties.roleName|name", RP_COL_TEXT},
        {"EXPIRES", "expiresAt", RP_COL_TIME},
        {"N", "creds", RP_COL_COUNT},
        {"LIST", "approvers", RP_COL_TEXT},
        {"MAX", "maxDurationSeconds", RP_COL_SECONDS},
    };
    json_t *rows = json_loads(
        "[{\"properties\":{\"roleName\":\"Owner\"},\"expiresAt\":1795935600,\"creds\":[1,2],"
        "\"approvers\":[\"a\",\"b\"],\"maxDurationSeconds\":28800},"
        "{\"name\":\"x\\u001b]0;pwned\\u0007\",\"expiresAt\":\"2026-01-01T00:00:00Z\","
        "\"approvers\":[]},"
        "{\"name\":\"caf\\u00e9\",\"expiresAt\":null}]",
        0, NULL);
    char *text;

    (void)state;
    assert_non_null(rows);
    text = capture_table(cols, 5, rows, "none");
    assert_string_equal(text, "NAME         EXPIRES               N  LIST  MAX\n"
                              "Owner        2026-11-29T07:00:00Z  2  a, b  PT8H\n"
                              "x?]0;pwned?  2026-01-01T00:00:00Z  -  -     -\n"
                              "caf\xc3\xa9         -                     -  -     -\n");
    free(text);
    text = capture_table(cols, 5, json_array_get(rows, 99), "none");
    assert_string_equal(text, "none\n");
    free(text);
    {
        json_t *empty = json_array();
        text = capture_table(cols, 5, empty, NULL);
        assert_string_equal(text, "");
        free(text);
        json_decref(empty);
    }
    json_decref(rows);
}

static void test_fields_and_paths(void **state)
{
    static const rp_col f[] = {
        {"name", "name", RP_COL_TEXT},       {"object id", "objectId|id", RP_COL_TEXT},
        {"secret", "secret", RP_COL_SECRET}, {"missing", "nothing", RP_COL_TEXT},
        {"nested", "a.b.c", RP_COL_TEXT},
    };
    json_t *o = json_loads("{\"name\":\"alice\",\"id\":\"42\",\"secret\":\"s3cr3t\","
                           "\"a\":{\"b\":{\"c\":true}},\"objectId\":null}",
                           0, NULL);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    json_t *list;

    (void)state;
    rp_cli_fields(m, f, 5, o);
    fclose(m);
    assert_string_equal(text, "  name       alice\n"
                              "  object id  42\n"
                              "  secret     (hidden)\n"
                              "  nested     true\n");
    free(text);
    assert_null(rp_cli_json_path(o, "a.b.c.d"));
    assert_null(rp_cli_json_path(o, "name.x"));
    assert_true(json_is_true(rp_cli_json_path(o, "zz|a.b.c")));
    list = json_loads("{\"value\":[1]}", 0, NULL);
    assert_ptr_equal(rp_cli_rows(list), json_object_get(list, "value"));
    assert_ptr_equal(rp_cli_rows(json_object_get(list, "value")), json_object_get(list, "value"));
    assert_null(rp_cli_rows(o));
    json_decref(list);
    json_decref(o);
}

/* ---------------------------------------------------------------- rp_cli_call */

static void settings(rp_client_settings *s, const char *token)
{
    char url[64], err[256];

    snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.port);
    assert_int_equal(
        rp_client_settings_load(s, NULL, NULL, url, srv.ca_path, token, err, sizeof(err)), 0);
}

static void test_call_mapping(void **state)
{
    rp_client_settings s;
    json_t *answer = NULL, *body;
    long status;

    (void)state;
    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/ok", 200, "{\"value\":[]}");
    ts_route_add(&srv, "DELETE", "/gone", 204, NULL);
    ts_route_add(&srv, "GET", "/401", 401,
                 "{\"error\":{\"code\":\"InvalidAuthenticationToken\",\"message\":\"bad\"}}");
    ts_route_add(&srv, "GET", "/403", 403,
                 "{\"error\":{\"code\":\"AuthorizationFailed\",\"message\":\"denied\"}}");
    ts_route_add(&srv, "GET", "/404", 404, "{\"error\":{\"code\":\"NotFound\"}}");
    ts_route_add(&srv, "GET", "/500", 500, "oops");
    ts_route_add(&srv, "GET", "/notjson", 200, "<html>");
    ts_route_add(&srv, "POST", "/made", 201, "{\"id\":\"1\"}");
    settings(&s, "tok");

    assert_int_equal(rp_cli_call(&s, "GET", "/ok", NULL, &answer, &status), RP_EXIT_OK);
    assert_int_equal(status, 200);
    assert_non_null(rp_cli_rows(answer));
    json_decref(answer);
    assert_int_equal(rp_cli_call(&s, "DELETE", "/gone", NULL, &answer, &status), RP_EXIT_OK);
    assert_null(answer);
    assert_int_equal(status, 204);
    assert_int_equal(rp_cli_call(&s, "GET", "/401", NULL, &answer, &status), RP_EXIT_UNAUTHORIZED);
    assert_null(answer);
    assert_int_equal(rp_cli_call(&s, "GET", "/403", NULL, NULL, &status), RP_EXIT_UNAUTHORIZED);
    assert_int_equal(status, 403);
    assert_int_equal(rp_cli_call(&s, "GET", "/404", NULL, NULL, NULL), RP_EXIT_SERVER);
    assert_int_equal(rp_cli_call(&s, "GET", "/500", NULL, NULL, NULL), RP_EXIT_SERVER);
    assert_int_equal(rp_cli_call(&s, "GET", "/notjson", NULL, &answer, NULL), RP_EXIT_SERVER);
    assert_null(answer);
    body = json_pack("{s:s}", "name", "n");
    assert_int_equal(rp_cli_call(&s, "POST", "/made", body, &answer, &status), RP_EXIT_OK);
    assert_int_equal(status, 201);
    assert_string_equal(json_string_value(json_object_get(answer, "id")), "1");
    assert_string_equal(ts_req_at(&srv, ts_nreqs(&srv) - 1)->body, "{\"name\":\"n\"}");
    json_decref(answer);
    json_decref(body);
    rp_client_settings_free(&s);

    /* nothing listening: exit 5 */
    {
        char err[256];
        assert_int_equal(rp_client_settings_load(&s, NULL, NULL, "https://127.0.0.1:1", srv.ca_path,
                                                 NULL, err, sizeof(err)),
                         0);
        assert_int_equal(rp_cli_call(&s, "GET", "/ok", NULL, &answer, &status), RP_EXIT_SERVER);
        assert_int_equal(status, 0);
        rp_client_settings_free(&s);
    }
}

static void test_connect(void **state)
{
    rp_client_settings s;
    rp_opt none[] = {RP_OPTS_CONN};
    rp_opt bad[] = {RP_OPTS_CONN};
    char home[1200], env_home[1300], path[1400], text[512];
    char *envp[] = {env_home, NULL};
    FILE *f;

    (void)state;
    snprintf(home, sizeof(home), "%s/connect-home", tmpdir);
    snprintf(env_home, sizeof(env_home), "HOME=%s", home);
    rp_test_mkdir_p(home);
    /* nothing configured: exit 3 */
    assert_int_equal(rp_cli_connect(&s, none, 4, envp, 1), RP_EXIT_CONFIG);
    bad[0].value = "http://x";
    assert_int_equal(rp_cli_connect(&s, bad, 4, envp, 1), RP_EXIT_CONFIG);
    /* an expired login: exit 6 when a token is needed */
    snprintf(path, sizeof(path), "%s/.config/rampart", home);
    rp_test_mkdir_p(path);
    snprintf(path, sizeof(path), "%s/.config/rampart/client.json", home);
    snprintf(text, sizeof(text),
             "{\"url\":\"https://x.example\",\"token\":\"t\",\"expiresAt\":1000}");
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
    assert_int_equal(rp_cli_connect(&s, none, 4, envp, 1), RP_EXIT_UNAUTHORIZED);
    assert_int_equal(rp_cli_connect(&s, none, 4, envp, 0), RP_EXIT_OK);
    assert_null(s.token);
    assert_int_equal(s.token_expired, 1);
    rp_client_settings_free(&s);
    rp_test_rmtree(home);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_args_errors),
        cmocka_unit_test(test_args_rest),
        cmocka_unit_test(test_output),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_expiry_and_format),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_error_text),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_fields_and_paths),
        cmocka_unit_test(test_call_mapping),
        cmocka_unit_test(test_connect),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
