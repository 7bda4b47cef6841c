/*
 * config_test.c - unit tests for server/config: defaults, the precedence of file, environment
 * and flags, one bad value per rule (each must name its key and source), host:port parsing,
 * cross-field validation and the JSON round trip. Config files are real files under
 * $RP_TEST_TMP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "base/alloc.h"
#include "base/err.h"
#include "server/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[1024];

static int setup_tmp(void **state)
{
    (void)state;
    rp_test_scratch("config_test", tmpdir, sizeof(tmpdir));
    return 0;
}

static int teardown_tmp(void **state)
{
    (void)state;
    rp_test_rmtree(tmpdir);
    return 0;
}

/* Writes text to $tmpdir/name and returns the path in a static buffer. */
static const char *write_file(const char *name, const char *text)
{
    static char path[1200];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

static void test_defaults(void **state)
{
    rp_config c;
    char err[256] = "";

    (void)state;
    rp_config_defaults(&c);
    assert_null(c.data_dir);
    assert_null(c.domain);
    assert_string_equal(c.listen.host, "127.0.0.1");
    assert_int_equal(c.listen.port, 8443);
    assert_string_equal(c.http_listen.host, "127.0.0.1");
    assert_int_equal(c.http_listen.port, 8080);
    assert_int_equal(c.http_enabled, 1);
    assert_null(c.static_root);
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.tls_min_version, 12);
    assert_int_equal(c.ticket_rotate_s, 3600);
    assert_null(c.certs);
    assert_int_equal(c.ncerts, 0);
    assert_int_equal(c.max_connections, 10000);
    assert_int_equal(c.max_body_bytes, 1048576);
    assert_int_equal(c.header_timeout_ms, 10000);
    assert_int_equal(c.body_timeout_ms, 15000);
    assert_int_equal(c.idle_timeout_ms, 30000);
    assert_int_equal(c.write_timeout_ms, 30000);
    assert_int_equal(c.drain_timeout_ms, 10000);
    assert_string_equal(c.access_log, "stderr");
    assert_string_equal(c.error_log, "stderr");
    assert_string_equal(c.log_level, "info");
    assert_null(c.outbound_ca); /* the system's CA store */
    assert_int_equal(rp_config_validate(&c, err, sizeof(err)), 0);
    rp_config_free(&c);
    assert_null(c.access_log);
    rp_config_free(&c); /* a zeroed struct is fine */
    rp_config_free(NULL);
}

static void test_precedence(void **state)
{
    rp_config c;
    char err[256] = "";
    const char *path;
    char *envp[] = {
        "PATH=/usr/bin",
        "RAMPART_WORKERS=8",
        "RAMPART_LISTEN=[::1]:9443",
        "RAMPART_LIMITS_IDLE_TIMEOUT_MS=45000",
        "RAMPART_OUTBOUND_CA=/etc/rampart/outbound-ca.pem",
        /* client/CLI settings and unknown names are not the server's business */
        "RAMPART_DATA=/should/not/apply",
        "RAMPART_URL=not-a-config-value",
        "RAMPART_TOKEN=secret",
        "RAMPART_CA=/x",
        "RAMPART_NO_SUCH_KEY=1",
        "RAMPART_LIMITS=1",
        NULL,
    };

    (void)state;
    path = write_file("prec.json", "{\"workers\": 4, \"listen\": \"10.0.0.1:1\",\n"
                                   " \"data\": \"/srv/rampart\",\n"
                                   " \"limits\": {\"max_connections\": 500,"
                                   " \"idle_timeout_ms\": 20000},\n"
                                   " \"log\": {\"level\": \"debug\"},\n"
                                   " \"tls.min_version\": \"1.3\"}\n");
    rp_config_defaults(&c);
    assert_int_equal(rp_config_load_file(&c, path, err, sizeof(err)), 0);
    assert_int_equal(c.workers, 4);
    assert_string_equal(c.listen.host, "10.0.0.1");
    assert_int_equal(c.listen.port, 1);
    assert_int_equal(c.max_connections, 500);
    assert_int_equal(c.idle_timeout_ms, 20000);
    assert_int_equal(c.tls_min_version, 13); /* flat dotted member works too */
    assert_string_equal(c.log_level, "debug");

    assert_int_equal(rp_config_load_env(&c, envp, err, sizeof(err)), 0);
    assert_int_equal(c.workers, 8);
    assert_string_equal(c.listen.host, "::1");
    assert_int_equal(c.listen.port, 9443);
    assert_int_equal(c.idle_timeout_ms, 45000);
    assert_string_equal(c.data_dir, "/srv/rampart"); /* RAMPART_DATA skipped */
    assert_string_equal(c.outbound_ca, "/etc/rampart/outbound-ca.pem");

    assert_int_equal(rp_config_set(&c, "workers", "16", "--workers", err, sizeof(err)), 0);
    assert_int_equal(c.workers, 16);
    assert_int_equal(c.max_connections, 500); /* untouched by env and flags */
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(rp_config_validate(&c, err, sizeof(err)), 0);
    rp_config_free(&c);
    unlink(path);

    assert_int_equal(rp_config_load_env(&c, NULL, err, sizeof(err)), 0);
}

typedef struct bad_case {
    const char *key;
    const char *value;
} bad_case;

static void test_bad_values(void **state)
{
    static const bad_case cases[] = {
        {"workers", "257"},
        {"workers", "-1"},
        {"workers", "12abc"},
        {"workers", " 4"},
        {"workers", "4 "},
        {"workers", "+4"},
        {"workers", ""},
        {"workers", "0x10"},
        {"workers", "99999999999999999999999999"},
        {"limits.max_connections", "0"},
        {"limits.max_connections", "1000001"},
        {"limits.max_body_bytes", "17179869185"},
        {"limits.header_timeout_ms", "999"},
        {"limits.body_timeout_ms", "3600001"},
        {"limits.idle_timeout_ms", "1e4"},
        {"limits.write_timeout_ms", "-30000"},
        {"limits.drain_timeout_ms", "3600001"},
        {"tls.ticket_rotation_s", "59"},
        {"tls.ticket_rotation_s", "86401"},
        {"tls.min_version", "1.1"},
        {"tls.min_version", "1.4"},
        {"tls.min_version", "TLSv1.2"},
        {"tls.min_version", "12"},
        {"tls.certificates", "not json"},
        {"tls.certificates", "{}"},
        {"tls.certificates", "[1]"},
        {"tls.certificates", "[{\"cert\": \"/a.pem\"}]"},
        {"tls.certificates", "[{\"cert\": \"/a.pem\", \"key\": \"\"}]"},
        {"tls.certificates", "[{\"cert\": \"/a.pem\", \"key\": \"/k\", \"chain\": \"/c\"}]"},
        {"listen", "foo"},
        {"listen", "::1:8443"},
        {"listen", "127.0.0.1:65536"},
        {"listen", "127.0.0.1:"},
        {"listen", ":8443"},
        {"listen", "127.0.0.1:-1"},
        {"listen", "127.0.0.1:84 43"},
        {"listen", "[::1]8443"},
        {"listen", "[::1"},
        {"listen", "[zz::1]:80"},
        {"listen", "[127.0.0.1]:80"},
        {"listen", "1.2.3.256:80"},
        {"listen", "bad_host:80"},
        {"listen", "-bad.example:80"},
        {"listen", ""},
        {"http_listen", "on"},
        {"http_listen", "8080"},
        {"domain", ""},
        {"domain", "exa mple.com"},
        {"domain", "example..com"},
        {"domain", "-x.example.com"},
        {"static", ""},
        {"data", ""},
        {"outbound_ca", ""},
        {"log.level", "verbose"},
        {"log.level", "INFO"},
        {"log.error", "off"},
        {"log.error", ""},
        {"log.access", ""},
        {"log.access", "\xff\xfe"},
    };
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rp_config c;
        int rc;

        rp_config_defaults(&c);
        err[0] = '\0';
        rc = rp_config_set(&c, cases[i].key, cases[i].value, "--flag", err, sizeof(err));
        if (rc != RP_EINVAL || strstr(err, cases[i].key) == NULL ||
            strncmp(err, "--flag: ", 8) != 0)
            fail_msg("%s=%s: rc %d, err \"%s\"", cases[i].key, cases[i].value, rc, err);
        /* A refused value leaves the setting as it was. */
        assert_int_equal(c.workers, 0);
        assert_int_equal(c.listen.port, 8443);
        assert_int_equal(c.http_enabled, 1);
        assert_int_equal(c.ncerts, 0);
        rp_config_free(&c);
    }
}

static void test_messages(void **state)
{
    rp_config c;
    char err[512];
    char *envp[] = {"RAMPART_LISTEN=foo", NULL};
    char *envp2[] = {"RAMPART_LIMITS_IDLE_TIMEOUT_MS=12abc", NULL};

    (void)state;
    rp_config_defaults(&c);
    assert_int_equal(rp_config_load_env(&c, envp, err, sizeof(err)), RP_EINVAL);
    assert_string_equal(err, "RAMPART_LISTEN: listen: \"foo\" is not HOST:PORT");
    assert_int_equal(rp_config_load_env(&c, envp2, err, sizeof(err)), RP_EINVAL);
    assert_string_equal(err, "RAMPART_LIMITS_IDLE_TIMEOUT_MS: limits.idle_timeout_ms: must be an "
                             "integer from 1000 to 3600000 (got \"12abc\")");
    assert_int_equal(rp_config_set(&c, "limits.max_conections", "5", "--x", err, sizeof(err)),
                     RP_ENOENT);
    assert_string_equal(err, "--x: limits.max_conections: unknown setting");
    /* Control bytes are escaped and long values cut in messages. */
    assert_int_equal(rp_config_set(&c, "listen", "a\nb", "--listen", err, sizeof(err)), RP_EINVAL);
    assert_string_equal(err, "--listen: listen: \"a\\x0ab\" is not HOST:PORT");
    assert_int_equal(
        rp_config_set(&c, "listen",
                      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                      "--listen", err, sizeof(err)),
        RP_EINVAL);
    assert_non_null(strstr(err, "...\" is not HOST:PORT"));
    /* A tiny or absent error buffer is not overrun. */
    assert_int_equal(rp_config_set(&c, "workers", "x", "--workers", err, 4), RP_EINVAL);
    assert_string_equal(err, "--w");
    assert_int_equal(rp_config_set(&c, "workers", "x", "--workers", NULL, 0), RP_EINVAL);
    rp_config_free(&c);
}

typedef struct file_case {
    const char *json;
    int rc;
    const char *want; /* substring of the message after "<path>: " */
} file_case;

static void test_file_errors(void **state)
{
    static const file_case cases[] = {
        {"{\"workers\": \"4\"}", RP_EINVAL,
         "workers: must be an integer from 0 to 256 (got \"4\")"},
        {"{\"workers\": 4.5}", RP_EINVAL, "workers: must be an integer from 0 to 256 (got 4.5)"},
        {"{\"workers\": 4.0}", RP_EINVAL, "workers: must be an integer"},
        {"{\"workers\": -1}", RP_EINVAL, "workers: must be an integer from 0 to 256 (got -1)"},
        {"{\"workers\": true}", RP_EINVAL, "workers: must be an integer"},
        {"{\"workers\": null}", RP_EINVAL, "workers: must be an integer"},
        {"{\"limits\": {\"idle_timeout_ms\": 999}}", RP_EINVAL,
         "limits.idle_timeout_ms: must be an integer from 1000 to 3600000 (got 999)"},
        {"{\"limits\": {\"max_body_bytes\": 17179869185}}", RP_EINVAL,
         "limits.max_body_bytes: must be an integer from 0 to 17179869184"},
        {"{\"limits\": {\"max_connections\": 99999999999999999999999}}", RP_EINVAL,
         "limits.max_connections: must be an integer from 1 to 1000000 (got a number too large)"},
        {"{\"workers\": -99999999999999999999999}", RP_EINVAL,
         "workers: must be an integer from 0 to 256"},
        {"{\"limits\": {\"max_connectionz\": 5}}", RP_EINVAL,
         "unknown key \"limits.max_connectionz\""},
        {"{\"worker\": 5}", RP_EINVAL, "unknown key \"worker\""},
        {"{\"limits\": 5}", RP_EINVAL, "limits: must be an object"},
        {"{\"tls\": {\"min_version\": 1.3}}", RP_EINVAL,
         "tls.min_version: must be a string (got 1.3)"},
        {"{\"tls\": {\"min_version\": \"1.1\"}}", RP_EINVAL,
         "tls.min_version: must be \"1.2\" or \"1.3\", not \"1.1\""},
        {"{\"tls\": {\"certificates\": [{\"cert\": \"/c\", \"key\": 5}]}}", RP_EINVAL,
         "tls.certificates[0]: \"key\" must be the path of a PEM file"},
        {"{\"tls\": {\"certificates\": {\"cert\": \"/c\"}}}", RP_EINVAL,
         "tls.certificates: must be an array"},
        {"{\"listen\": 8443}", RP_EINVAL, "listen: must be a string (got 8443)"},
        {"{\"listen\": \"foo\"}", RP_EINVAL, "listen: \"foo\" is not HOST:PORT"},
        {"{\"listen\": null}", RP_EINVAL, "listen: must be a string"},
        {"{\"static\": \"a\\u0000b\"}", RP_EPARSE, "\\u0000"},
        {"{\"log\": {\"level\": \"loud\"}}", RP_EINVAL, "log.level: must be debug, info"},
        {"{\"workers\": 1, \"workers\": 2}", RP_EPARSE, "duplicate"},
        {"[1, 2]", RP_EPARSE, "must hold a JSON object"},
        {"{\"workers\": 1", RP_EPARSE, "line"},
        {"", RP_EPARSE, "line"},
        {"{\"\": 1}", RP_EINVAL, "unknown key \"\""},
    };
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = write_file("bad.json", cases[i].json);
        char want[1400];
        rp_config c;
        int rc;

        snprintf(want, sizeof(want), "%s: ", path);
        rp_config_defaults(&c);
        err[0] = '\0';
        rc = rp_config_load_file(&c, path, err, sizeof(err));
        if (rc != cases[i].rc || strncmp(err, want, strlen(want)) != 0 ||
            strstr(err, cases[i].want) == NULL)
            fail_msg("%s: rc %d, err \"%s\"", cases[i].json, rc, err);
        rp_config_free(&c);
        unlink(path);
    }
}

static void test_missing_file(void **state)
{
    rp_config c;
    char err[512], path[1200];

    (void)state;
    snprintf(path, sizeof(path), "%s/does-not-exist.json", tmpdir);
    rp_config_defaults(&c);
    assert_int_equal(rp_config_load_file(&c, path, err, sizeof(err)), RP_ENOENT);
    assert_non_null(strstr(err, "does-not-exist.json"));
    /* A directory is not a config file. */
    assert_int_equal(rp_config_load_file(&c, tmpdir, err, sizeof(err)), RP_EIO);
    rp_config_free(&c);
}

static void test_hostport(void **state)
{
    rp_hostport hp;

    (void)state;
    assert_int_equal(rp_hostport_parse("[::1]:0", &hp), 0);
    assert_string_equal(hp.host, "::1");
    assert_int_equal(hp.port, 0);
    assert_int_equal(rp_hostport_parse("127.0.0.1:8443", &hp), 0);
    assert_string_equal(hp.host, "127.0.0.1");
    assert_int_equal(hp.port, 8443);
    assert_int_equal(rp_hostport_parse("localhost:0", &hp), 0);
    assert_string_equal(hp.host, "localhost");
    assert_int_equal(rp_hostport_parse("0.0.0.0:65535", &hp), 0);
    assert_int_equal(hp.port, 65535);
    assert_int_equal(rp_hostport_parse("[2001:db8::1]:443", &hp), 0);
    assert_string_equal(hp.host, "2001:db8::1");
    assert_int_equal(rp_hostport_parse("rampart.example.com:443", &hp), 0);
    assert_string_equal(hp.host, "rampart.example.com");
    /* Failures leave out untouched. */
    assert_int_equal(rp_hostport_parse("::1:443", &hp), RP_EINVAL);
    assert_int_equal(rp_hostport_parse("host", &hp), RP_EINVAL);
    assert_int_equal(rp_hostport_parse("host:99999", &hp), RP_EINVAL);
    assert_int_equal(rp_hostport_parse("[]:1", &hp), RP_EINVAL);
    assert_int_equal(rp_hostport_parse(NULL, &hp), RP_EINVAL);
    assert_string_equal(hp.host, "rampart.example.com");
    assert_int_equal(hp.port, 443);
}

static void test_http_listen_off(void **state)
{
    rp_config c;
    char err[256];
    const char *path;
    json_t *j;

    (void)state;
    rp_config_defaults(&c);
    assert_int_equal(rp_config_set(&c, "http_listen", "off", "--http-listen", err, sizeof(err)), 0);
    assert_int_equal(c.http_enabled, 0);
    j = rp_config_to_json(&c);
    assert_string_equal(json_string_value(json_object_get(j, "http_listen")), "off");
    json_decref(j);
    assert_int_equal(
        rp_config_set(&c, "http_listen", "[::]:8080", "--http-listen", err, sizeof(err)), 0);
    assert_int_equal(c.http_enabled, 1);
    assert_string_equal(c.http_listen.host, "::");
    assert_int_equal(rp_config_set(&c, "http_listen", "", "--http-listen", err, sizeof(err)), 0);
    assert_int_equal(c.http_enabled, 0);
    rp_config_free(&c);

    path = write_file("off.json", "{\"http_listen\": false}");
    rp_config_defaults(&c);
    assert_int_equal(rp_config_load_file(&c, path, err, sizeof(err)), 0);
    assert_int_equal(c.http_enabled, 0);
    rp_config_free(&c);
    unlink(path);
}

static void test_validate(void **state)
{
    rp_config c;
    char err[256];

    (void)state;
    rp_config_defaults(&c);
    assert_int_equal(rp_config_set(&c, "http_listen", "127.0.0.1:8443", "--h", err, sizeof(err)),
                     0);
    assert_int_equal(rp_config_validate(&c, err, sizeof(err)), RP_EINVAL);
    assert_non_null(strstr(err, "http_listen"));
    assert_non_null(strstr(err, "8443"));
    /* A wildcard overlaps every address on the same port. */
    assert_int_equal(rp_config_set(&c, "listen", "0.0.0.0:8443", "--l", err, sizeof(err)), 0);
    assert_int_equal(rp_config_validate(&c, err, sizeof(err)), RP_EINVAL);
    /* Disabled redirect listener: no conflict. */
    assert_int_equal(rp_config_set(&c, "http_listen", "off", "--h", err, sizeof(err)), 0);
    assert_int_equal(rp_config_validate(&c, err, sizeof(err)), 0);
    /* Port 0 twice means two different free ports. */
    assert_int_equal(rp_config_set(&c, "listen", "127.0.0.1:0", "--l", err, sizeof(err)), 0);
    assert_int_equal(rp_config_set(&c, "http_listen", "127.0.0.1:0", "--h", err, sizeof(err)), 0);
    assert_int_equal(rp_config_validate(&c, err, sizeof(err)), 0);
    /* Same port, different specific hosts: fine. */
    assert_int_equal(rp_config_set(&c, "listen", "127.0.0.1:9000", "--l", err, sizeof(err)), 0);
    assert_int_equal(rp_config_set(&c, "http_listen", "127.0.0.2:9000", "--h", err, sizeof(err)),
                     0);
    assert_int_equal(rp_config_validate(&c, err, sizeof(err)), 0);
    rp_config_free(&c);
}

static void test_set_all_kinds(void **state)
{
    rp_config c;
    char err[256];

    (void)state;
    rp_config_defaults(&c);
    assert_int_equal(rp_config_set(&c, "domain", "Rampart.Example.COM", "--d", err, sizeof(err)),
                     0);
    assert_string_equal(c.domain, "rampart.example.com");
    assert_int_equal(
        rp_config_set(&c, "limits.max_body_bytes", "17179869184", "--b", err, sizeof(err)), 0);
    assert_int_equal(c.max_body_bytes, (size_t)1 << 34);
    assert_int_equal(rp_config_set(&c, "limits.max_body_bytes", "0", "--b", err, sizeof(err)), 0);
    assert_int_equal(c.max_body_bytes, 0);
    assert_int_equal(rp_config_set(&c, "limits.drain_timeout_ms", "0", "--d", err, sizeof(err)), 0);
    assert_int_equal(c.drain_timeout_ms, 0);
    assert_int_equal(rp_config_set(&c, "workers", "256", "--w", err, sizeof(err)), 0);
    assert_int_equal(c.workers, 256);
    assert_int_equal(rp_config_set(&c, "tls.min_version", "1.3", "--t", err, sizeof(err)), 0);
    assert_int_equal(c.tls_min_version, 13);
    assert_int_equal(rp_config_set(&c, "log.access", "off", "--a", err, sizeof(err)), 0);
    assert_string_equal(c.access_log, "off");
    assert_int_equal(
        rp_config_set(&c, "log.access", "/var/log/rampart/access.log", "--a", err, sizeof(err)), 0);
    assert_int_equal(
        rp_config_set(&c, "log.error", "/var/log/rampart/error.log", "--e", err, sizeof(err)), 0);
    assert_int_equal(rp_config_set(&c, "log.level", "warn", "--l", err, sizeof(err)), 0);
    assert_string_equal(c.log_level, "warn");
    assert_int_equal(rp_config_set(&c, "tls.certificates",
                                   "[{\"cert\":\"/a.pem\",\"key\":\"/a.key\"},"
                                   "{\"cert\":\"/b.pem\",\"key\":\"/b.key\"}]",
                                   "--certs", err, sizeof(err)),
                     0);
    assert_int_equal(c.ncerts, 2);
    assert_string_equal(c.certs[1].key, "/b.key");
    /* A bad list leaves the old one in place; an empty one clears it. */
    assert_int_equal(rp_config_set(&c, "tls.certificates", "[{\"cert\":\"/c.pem\"}]", "--certs",
                                   err, sizeof(err)),
                     RP_EINVAL);
    assert_int_equal(c.ncerts, 2);
    assert_int_equal(rp_config_set(&c, "tls.certificates", "[]", "--certs", err, sizeof(err)), 0);
    assert_int_equal(c.ncerts, 0);
    assert_null(c.certs);
    assert_int_equal(rp_config_set(&c, "static", "/srv/www", "--s", err, sizeof(err)), 0);
    assert_int_equal(rp_config_set(&c, "static", "/srv/www2", "--s", err, sizeof(err)), 0);
    assert_string_equal(c.static_root, "/srv/www2");
    assert_int_equal(rp_config_set(&c, "workers", NULL, "--w", err, sizeof(err)), RP_EINVAL);
    rp_config_free(&c);
}

static void test_round_trip(void **state)
{
    rp_config a, b;
    char err[512];
    json_t *ja, *jb, *tls, *limits, *log;
    const char *path;
    char *text;
    static const char *const set[][2] = {
        {"data", "/var/lib/rampart"},
        {"domain", "example.org"},
        {"listen", "[::1]:0"},
        {"http_listen", "off"},
        {"static", "/srv/www"},
        {"outbound_ca", "/etc/ssl/corp-ca.pem"},
        {"workers", "3"},
        {"tls.min_version", "1.3"},
        {"tls.ticket_rotation_s", "600"},
        {"tls.certificates", "[{\"cert\":\"/a.pem\",\"key\":\"/a.key\"}]"},
        {"limits.max_connections", "42"},
        {"limits.max_body_bytes", "17179869184"},
        {"limits.header_timeout_ms", "1000"},
        {"limits.body_timeout_ms", "2000"},
        {"limits.idle_timeout_ms", "3000"},
        {"limits.write_timeout_ms", "4000"},
        {"limits.drain_timeout_ms", "0"},
        {"log.access", "stdout"},
        {"log.error", "/tmp/err.log"},
        {"log.level", "error"},
    };

    (void)state;
    rp_config_defaults(&a);
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
        if (rp_config_set(&a, set[i][0], set[i][1], "--x", err, sizeof(err)) != 0)
            fail_msg("%s", err);
    ja = rp_config_to_json(&a);
    assert_non_null(ja);
    assert_string_equal(json_string_value(json_object_get(ja, "data")), "/var/lib/rampart");
    assert_string_equal(json_string_value(json_object_get(ja, "listen")), "[::1]:0");
    assert_string_equal(json_string_value(json_object_get(ja, "http_listen")), "off");
    assert_int_equal(json_integer_value(json_object_get(ja, "workers")), 3);
    assert_string_equal(json_string_value(json_object_get(ja, "outbound_ca")),
                        "/etc/ssl/corp-ca.pem");
    tls = json_object_get(ja, "tls");
    limits = json_object_get(ja, "limits");
    log = json_object_get(ja, "log");
    assert_string_equal(json_string_value(json_object_get(tls, "min_version")), "1.3");
    assert_int_equal(json_integer_value(json_object_get(tls, "ticket_rotation_s")), 600);
    assert_int_equal(json_array_size(json_object_get(tls, "certificates")), 1);
    assert_int_equal(json_integer_value(json_object_get(limits, "max_body_bytes")),
                     (json_int_t)1 << 34);
    assert_non_null(json_object_get(limits, "max_connections"));
    assert_non_null(json_object_get(limits, "header_timeout_ms"));
    assert_non_null(json_object_get(limits, "body_timeout_ms"));
    assert_non_null(json_object_get(limits, "idle_timeout_ms"));
    assert_non_null(json_object_get(limits, "write_timeout_ms"));
    assert_non_null(json_object_get(limits, "drain_timeout_ms"));
    assert_string_equal(json_string_value(json_object_get(log, "access")), "stdout");
    assert_string_equal(json_string_value(json_object_get(log, "error")), "/tmp/err.log");
    assert_string_equal(json_string_value(json_object_get(log, "level")), "error");

    /* Saved and loaded back, the output describes the same configuration. */
    text = json_dumps(ja, JSON_INDENT(2));
    assert_non_null(text);
    path = write_file("round.json", text);
    free(text);
    rp_config_defaults(&b);
    if (rp_config_load_file(&b, path, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    jb = rp_config_to_json(&b);
    assert_true(json_equal(ja, jb));
    json_decref(ja);
    json_decref(jb);
    rp_config_free(&b);

    /* The defaults (nulls included) survive the trip too. */
    rp_config_defaults(&b);
    ja = rp_config_to_json(&b);
    assert_true(json_is_null(json_object_get(ja, "domain")));
    text = json_dumps(ja, 0);
    path = write_file("round.json", text);
    free(text);
    if (rp_config_load_file(&a, path, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    jb = rp_config_to_json(&a);
    assert_true(json_equal(ja, jb));
    json_decref(ja);
    json_decref(jb);
    rp_config_free(&a);
    rp_config_free(&b);
    unlink(path);
}

static void test_oom(void **state)
{
    rp_config c;
    char err[256];
    int rc;

    (void)state;
    rp_config_defaults(&c);
    for (long n = 0; n < 8; n++) {
        rp_alloc_fail_after(n);
        rc = rp_config_set(&c, "tls.certificates",
                           "[{\"cert\":\"/a.pem\",\"key\":\"/a.key\"},"
                           "{\"cert\":\"/b.pem\",\"key\":\"/b.key\"}]",
                           "--certs", err, sizeof(err));
        rp_alloc_fail_after(-1);
        assert_true(rc == 0 || rc == RP_ENOMEM);
        if (rc == RP_ENOMEM)
            assert_int_equal(c.ncerts, 0);
    }
    assert_int_equal(c.ncerts, 2);
    rp_alloc_fail_after(0);
    rc = rp_config_set(&c, "static", "/srv", "--s", err, sizeof(err));
    rp_alloc_fail_after(-1);
    assert_int_equal(rc, RP_ENOMEM);
    assert_null(c.static_root);
    rp_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),    cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_bad_values),  cmocka_unit_test(test_messages),
        cmocka_unit_test(test_file_errors), cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_hostport),    cmocka_unit_test(test_http_listen_off),
        cmocka_unit_test(test_validate),    cmocka_unit_test(test_set_all_kinds),
        cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_oom),
    };

    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
