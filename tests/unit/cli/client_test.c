/*
 * client_test.c - unit tests for cli/client: flags > environment > client file, https-only
 * URLs, the permission rule for a file holding a token, expired logins, the client file
 * writer (login/logout), messages that never carry the token, rp_client_get failing cleanly
 * against a closed port, and rp_client_request / rp_client_post_form against a scripted local
 * HTTPS server (method, headers, body, status). Files are real, under $RP_TEST_TMP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"
#include "cli/testserver.h"

#include "base/buf.h"
#include "base/err.h"
#include "cli/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TOKEN "rpt_s3cr3t-T0ken.value"

static char tmpdir[1024];
static char ca_a[1200], ca_b[1200];
static ts_server srv;

static void make_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static int setup_tmp(void **state)
{
    (void)state;
    rp_test_scratch("client_test", tmpdir, sizeof(tmpdir));
    snprintf(ca_a, sizeof(ca_a), "%s/a.pem", tmpdir);
    snprintf(ca_b, sizeof(ca_b), "%s/b.pem", tmpdir);
    make_file(ca_a, "not really a PEM\n", 0644);
    make_file(ca_b, "not really a PEM\n", 0644);
    /* rp_client_get must reach 127.0.0.1 directly, whatever the test host's proxy is. */
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    ts_start(&srv, tmpdir);
    return 0;
}

static int teardown_tmp(void **state)
{
    (void)state;
    ts_stop(&srv);
    rp_test_rmtree(tmpdir);
    return 0;
}

static const char *client_file(const char *text, mode_t mode)
{
    static char path[1200];

    snprintf(path, sizeof(path), "%s/client.json", tmpdir);
    make_file(path, text, mode);
    return path;
}

static void test_precedence(void **state)
{
    rp_client_settings s;
    char err[512] = "", text[3000], env_ca[1300];
    const char *path;
    char *envp[] = {"RAMPART_URL=https://env.example:9443/", env_ca, NULL};
    char *empty_env[] = {"RAMPART_URL=", NULL};

    (void)state;
    snprintf(text, sizeof(text),
             "{\"url\": \"https://file.example:8443\", \"ca\": \"%s\", \"token\": \"" TOKEN "\"}",
             ca_a);
    path = client_file(text, 0600);
    snprintf(env_ca, sizeof(env_ca), "RAMPART_CA=%s", ca_b);

    /* file only */
    assert_int_equal(rp_client_settings_load(&s, path, NULL, NULL, NULL, NULL, err, sizeof(err)),
                     0);
    assert_string_equal(s.url, "https://file.example:8443");
    assert_string_equal(s.ca_file, ca_a);
    assert_string_equal(s.token, TOKEN);
    assert_int_equal(s.json_output, 0);
    rp_client_settings_free(&s);
    assert_null(s.token);

    /* env over file; empty variables count as unset */
    assert_int_equal(rp_client_settings_load(&s, path, envp, NULL, NULL, NULL, err, sizeof(err)),
                     0);
    assert_string_equal(s.url, "https://env.example:9443"); /* trailing '/' dropped */
    assert_string_equal(s.ca_file, ca_b);
    assert_string_equal(s.token, TOKEN);
    rp_client_settings_free(&s);
    assert_int_equal(
        rp_client_settings_load(&s, path, empty_env, NULL, NULL, NULL, err, sizeof(err)), 0);
    assert_string_equal(s.url, "https://file.example:8443");
    rp_client_settings_free(&s);

    /* flags over env */
    assert_int_equal(rp_client_settings_load(&s, path, envp, "https://flag.example", ca_a,
                                             "flag-token", err, sizeof(err)),
                     0);
    assert_string_equal(s.url, "https://flag.example");
    assert_string_equal(s.ca_file, ca_a);
    assert_string_equal(s.token, "flag-token");
    rp_client_settings_free(&s);
    unlink(path);
    rp_client_settings_free(NULL);
}

static void test_default_file(void **state)
{
    rp_client_settings s;
    char err[512] = "", home[1200], env_home[1300], dir[1300], path[1400];
    char *envp[] = {env_home, NULL};

    (void)state;
    snprintf(home, sizeof(home), "%s/home", tmpdir);
    snprintf(env_home, sizeof(env_home), "HOME=%s", home);
    mkdir(home, 0700);

    /* Missing default file: fine, nothing configured. */
    assert_int_equal(rp_client_settings_load(&s, NULL, envp, NULL, NULL, NULL, err, sizeof(err)),
                     0);
    assert_null(s.url);
    assert_null(s.ca_file);
    assert_null(s.token);
    rp_client_settings_free(&s);
    /* No HOME at all: fine too. */
    assert_int_equal(rp_client_settings_load(&s, NULL, NULL, NULL, NULL, NULL, err, sizeof(err)),
                     0);
    rp_client_settings_free(&s);

    /* Present default file is read. */
    snprintf(dir, sizeof(dir), "%s/.config", home);
    mkdir(dir, 0700);
    snprintf(dir, sizeof(dir), "%s/.config/rampart", home);
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/client.json", dir);
    make_file(path, "{\"url\": \"https://home.example\", \"token\": null}", 0600);
    assert_int_equal(rp_client_settings_load(&s, NULL, envp, NULL, NULL, NULL, err, sizeof(err)),
                     0);
    assert_string_equal(s.url, "https://home.example");
    assert_null(s.token);
    rp_client_settings_free(&s);
    unlink(path);
    rmdir(dir);
    snprintf(dir, sizeof(dir), "%s/.config", home);
    rmdir(dir);
    rmdir(home);

    /* An explicitly named file that does not exist is an error. */
    snprintf(path, sizeof(path), "%s/missing.json", tmpdir);
    assert_int_equal(rp_client_settings_load(&s, path, NULL, NULL, NULL, NULL, err, sizeof(err)),
                     RP_ENOENT);
    assert_non_null(strstr(err, "missing.json"));
}

typedef struct url_case {
    const char *url;
    const char *want;
} url_case;

static void test_https_only(void **state)
{
    static const url_case bad[] = {
        {"http://127.0.0.1:8080", "http:// is refused"},
        {"HTTP://127.0.0.1:8080", "http:// is refused"},
        {"ftp://example.com", "must be an https:// URL"},
        {"127.0.0.1:8443", "not a valid URL"},
        {"example.com", "not a valid URL"},
        {"https://", "not a valid URL"},
        {"", "not a valid URL"},
        {"https://user:pw@example.com", "must not hold user or password"},
        {"https://example.com/?x=1", "must not have a query"},
        {"https://exa mple.com", "not a valid URL"},
    };
    rp_client_settings s;
    char err[512];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc;
        err[0] = '\0';
        rc = rp_client_settings_load(&s, NULL, NULL, bad[i].url, NULL, NULL, err, sizeof(err));
        if (rc != RP_EINVAL || strstr(err, bad[i].want) == NULL || strncmp(err, "--url: ", 7) != 0)
            fail_msg("%s: rc %d, err \"%s\"", bad[i].url, rc, err);
        assert_null(s.url);
    }
    assert_int_equal(rp_client_settings_load(&s, NULL, NULL, "HTTPS://[::1]:8443/base//", NULL,
                                             NULL, err, sizeof(err)),
                     0);
    assert_string_equal(s.url, "HTTPS://[::1]:8443/base");
    rp_client_settings_free(&s);

    /* The source is named whatever it is. */
    {
        char *envp[] = {"RAMPART_URL=http://x.example", NULL};
        assert_int_equal(
            rp_client_settings_load(&s, NULL, envp, NULL, NULL, NULL, err, sizeof(err)), RP_EINVAL);
        assert_non_null(strstr(err, "RAMPART_URL: http:// is refused"));
    }
}

static void test_file_permissions(void **state)
{
    rp_client_settings s;
    char err[512] = "";
    const char *path;

    (void)state;
    path = client_file("{\"url\": \"https://x.example\", \"token\": \"" TOKEN "\"}", 0644);
    assert_int_equal(rp_client_settings_load(&s, path, NULL, NULL, NULL, NULL, err, sizeof(err)),
                     RP_EPERM);
    assert_non_null(strstr(err, "chmod 600"));
    assert_non_null(strstr(err, "0644"));
    assert_null(strstr(err, TOKEN));
    assert_null(s.url);
    /* Overriding the token does not make the file safe. */
    assert_int_equal(rp_client_settings_load(&s, path, NULL, NULL, NULL, "other", err, sizeof(err)),
                     RP_EPERM);

    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(rp_client_settings_load(&s, path, NULL, NULL, NULL, NULL, err, sizeof(err)),
                     RP_EPERM);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(rp_client_settings_load(&s, path, NULL, NULL, NULL, NULL, err, sizeof(err)),
                     0);
    rp_client_settings_free(&s);

    /* Without a token the file may be world-readable. */
    path = client_file("{\"url\": \"https://x.example\"}", 0644);
    assert_int_equal(rp_client_settings_load(&s, path, NULL, NULL, NULL, NULL, err, sizeof(err)),
                     0);
    assert_string_equal(s.url, "https://x.example");
    rp_client_settings_free(&s);
    unlink(path);
}

typedef struct file_case {
    const char *json;
    int rc;
    const char *want;
} file_case;

static void test_bad_input(void **state)
{
    static const file_case cases[] = {
        {"{\"url\": \"https://x\", \"tokn\": \"a\"}", RP_EPARSE, "unknown key"},
        {"{\"token\": " TOKEN "}", RP_EPARSE, "invalid JSON at line 1"},
        {"{\"token\": \"" TOKEN "\"", RP_EPARSE, "invalid JSON"},
        {"[\"" TOKEN "\"]", RP_EPARSE, "must hold a JSON object"},
        {"{\"url\": 5}", RP_EINVAL, "url: must be a string"},
        {"{\"token\": \"has space\"}", RP_EINVAL, "token: token must be printable ASCII"},
        {"{\"ca\": \"\"}", RP_EINVAL, "ca: must be a non-empty path"},
        {"{\"ca\": \"/nonexistent/ca.pem\"}", RP_EINVAL, "No such file"},
    };
    rp_client_settings s;
    char err[512];
    char *envp[] = {"RAMPART_TOKEN=" TOKEN "\nX-Injected: 1", NULL};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = client_file(cases[i].json, 0600);
        int rc;

        err[0] = '\0';
        rc = rp_client_settings_load(&s, path, NULL, NULL, NULL, NULL, err, sizeof(err));
        if (rc != cases[i].rc || strstr(err, cases[i].want) == NULL || strstr(err, TOKEN) != NULL ||
            strncmp(err, path, strlen(path)) != 0)
            fail_msg("%s: rc %d, err \"%s\"", cases[i].json, rc, err);
        unlink(path);
    }
    assert_int_equal(rp_client_settings_load(&s, NULL, envp, NULL, NULL, NULL, err, sizeof(err)),
                     RP_EINVAL);
    assert_non_null(strstr(err, "RAMPART_TOKEN"));
    assert_null(strstr(err, TOKEN));
    assert_int_equal(rp_client_settings_load(&s, NULL, NULL, NULL, "", NULL, err, sizeof(err)),
                     RP_EINVAL);
    assert_non_null(strstr(err, "--ca"));
}

/* A loopback port with nothing listening: bind, read the port, close. */
static int closed_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_get_closed_port(void **state)
{
    rp_client_settings s;
    char err[512] = "", url[64];
    long status = -1;
    rp_buf body;
    int rc;

    (void)state;
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", closed_port());
    assert_int_equal(rp_client_settings_load(&s, NULL, NULL, url, ca_a, TOKEN, err, sizeof(err)),
                     0);
    rp_buf_init(&body, 1 << 20);
    rc = rp_client_get(&s, "/v1/status?probe=1", &status, &body, err, sizeof(err));
    assert_int_equal(rc, RP_EIO);
    assert_int_equal(status, -1);
    assert_int_equal(body.len, 0);
    assert_non_null(strstr(err, url));
    assert_non_null(strstr(err, "/v1/status"));
    assert_null(strstr(err, "probe=1"));
    assert_null(strstr(err, TOKEN));

    /* Bad paths are refused before any I/O. */
    assert_int_equal(rp_client_get(&s, "v1/status", &status, &body, err, sizeof(err)), RP_EINVAL);
    assert_int_equal(rp_client_get(&s, "/a\r\nX: y", &status, &body, err, sizeof(err)), RP_EINVAL);
    rp_client_settings_free(&s);

    /* No URL configured. */
    memset(&s, 0, sizeof(s));
    assert_int_equal(rp_client_get(&s, "/v1/status", &status, &body, err, sizeof(err)), RP_EINVAL);
    assert_non_null(strstr(err, "--url"));
    rp_buf_free(&body);
}

static void test_expiry(void **state)
{
    rp_client_settings s;
    char err[512] = "", text[512];
    char *envp[] = {"RAMPART_TOKEN=env-token", NULL};
    const char *path;
    long long now = (long long)time(NULL);

    (void)state;
    /* A login that is still valid is used, and its expiry reported. */
    snprintf(text, sizeof(text),
             "{\"url\":\"https://x.example\",\"token\":\"" TOKEN "\",\"expiresAt\":%lld}",
             now + 3600);
    path = client_file(text, 0600);
    assert_int_equal(rp_client_settings_load(&s, path, NULL, NULL, NULL, NULL, err, sizeof(err)),
                     0);
    assert_string_equal(s.token, TOKEN);
    assert_int_equal(s.token_expires_at, now + 3600);
    assert_int_equal(s.token_expired, 0);
    rp_client_settings_free(&s);

    /* An expired one is dropped, and said so. */
    snprintf(text, sizeof(text),
             "{\"url\":\"https://x.example\",\"token\":\"" TOKEN "\",\"expiresAt\":%lld}", now - 1);
    path = client_file(text, 0600);
    assert_int_equal(rp_client_settings_load(&s, path, NULL, NULL, NULL, NULL, err, sizeof(err)),
                     0);
    assert_null(s.token);
    assert_int_equal(s.token_expired, 1);
    assert_string_equal(s.url, "https://x.example");
    rp_client_settings_free(&s);

    /* A token from the environment or a flag does not expire with the file's. */
    assert_int_equal(rp_client_settings_load(&s, path, envp, NULL, NULL, NULL, err, sizeof(err)),
                     0);
    assert_string_equal(s.token, "env-token");
    assert_int_equal(s.token_expired, 0);
    rp_client_settings_free(&s);
    assert_int_equal(rp_client_settings_load(&s, path, NULL, NULL, NULL, "flag", err, sizeof(err)),
                     0);
    assert_string_equal(s.token, "flag");
    rp_client_settings_free(&s);

    /* expiresAt must be Unix seconds; null or absent means no expiry. */
    path = client_file("{\"token\":\"" TOKEN "\",\"expiresAt\":\"2026-01-01T00:00:00Z\"}", 0600);
    assert_int_equal(rp_client_settings_load(&s, path, NULL, NULL, NULL, NULL, err, sizeof(err)),
                     RP_EINVAL);
    assert_non_null(strstr(err, "expiresAt"));
    assert_null(strstr(err, TOKEN));
    path = client_file("{\"token\":\"" TOKEN "\",\"expiresAt\":null}", 0600);
    assert_int_equal(rp_client_settings_load(&s, path, NULL, NULL, NULL, NULL, err, sizeof(err)),
                     0);
    assert_string_equal(s.token, TOKEN);
    assert_int_equal(s.token_expires_at, 0);
    rp_client_settings_free(&s);
    unlink(path);
}

static void read_text(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;

    assert_non_null(f);
    n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

static void test_file_store(void **state)
{
    char home[1200], env_home[1300], path[1400], dir[1400], text[4096], err[512] = "";
    char *envp[] = {env_home, NULL};
    rp_client_settings s;
    struct stat st;
    long long now = (long long)time(NULL);

    (void)state;
    snprintf(home, sizeof(home), "%s/storehome", tmpdir);
    snprintf(env_home, sizeof(env_home), "HOME=%s", home);
    mkdir(home, 0755);
    assert_int_equal(rp_client_file_path(NULL, envp, path, sizeof(path)), 0);
    snprintf(dir, sizeof(dir), "%s/.config/rampart/client.json", home);
    assert_string_equal(path, dir);

    /* login on a fresh account: directories 0700, file 0600, readable by the loader */
    assert_int_equal(rp_client_file_store(NULL, envp, "https://login.example:8443", ca_a, TOKEN,
                                          now + 600, err, sizeof(err)),
                     0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(dir, sizeof(dir), "%s/.config/rampart", home);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(rp_client_settings_load(&s, NULL, envp, NULL, NULL, NULL, err, sizeof(err)),
                     0);
    assert_string_equal(s.url, "https://login.example:8443");
    assert_string_equal(s.ca_file, ca_a);
    assert_string_equal(s.token, TOKEN);
    assert_int_equal(s.token_expires_at, now + 600);
    rp_client_settings_free(&s);

    /* a second login keeps url and ca when not given, replaces the token */
    assert_int_equal(
        rp_client_file_store(NULL, envp, NULL, NULL, "second-token", 0, err, sizeof(err)), 0);
    read_text(path, text, sizeof(text));
    assert_non_null(strstr(text, "https://login.example:8443"));
    assert_non_null(strstr(text, "second-token"));
    assert_null(strstr(text, TOKEN));
    assert_null(strstr(text, "expiresAt")); /* 0: no expiry recorded */

    /* logout removes the token and its expiry, keeps the rest */
    assert_int_equal(rp_client_file_store(NULL, envp, NULL, NULL, TOKEN, now + 5, err, sizeof(err)),
                     0);
    assert_int_equal(rp_client_file_store(NULL, envp, NULL, NULL, NULL, 0, err, sizeof(err)), 0);
    read_text(path, text, sizeof(text));
    assert_null(strstr(text, "token"));
    assert_null(strstr(text, "expiresAt"));
    assert_non_null(strstr(text, "\"url\""));
    assert_non_null(strstr(text, "\"ca\""));

    /* a loose file is rewritten 0600 (it is being replaced) */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(rp_client_file_store(NULL, envp, NULL, NULL, TOKEN, 0, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* a file that is not a client file is left alone */
    make_file(path, "{\"url\": \"https://x\", \"other\": 1}", 0600);
    assert_int_equal(rp_client_file_store(NULL, envp, NULL, NULL, TOKEN, 0, err, sizeof(err)),
                     RP_EPARSE);
    read_text(path, text, sizeof(text));
    assert_non_null(strstr(text, "other"));

    /* a token the loader would refuse is refused here too, without being quoted */
    assert_int_equal(
        rp_client_file_store(NULL, envp, NULL, NULL, "bad token\n", 0, err, sizeof(err)),
        RP_EINVAL);
    assert_null(strstr(err, "bad token"));
    /* no HOME */
    assert_int_equal(rp_client_file_store(NULL, NULL, NULL, NULL, TOKEN, 0, err, sizeof(err)),
                     RP_EINVAL);
    rp_test_rmtree(home);
}

static void settings_for_srv(rp_client_settings *s, const char *token)
{
    char url[64], err[512] = "";

    snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.port);
    assert_int_equal(
        rp_client_settings_load(s, NULL, NULL, url, srv.ca_path, token, err, sizeof(err)), 0);
}

static void test_request(void **state)
{
    rp_client_settings s;
    rp_buf out;
    char err[512] = "";
    long status = 0;
    const ts_req *r;
    json_t *body;

    (void)state;
    ts_reset(&srv);
    ts_route_add(&srv, "POST", "/api/users", 201, "{\"id\":\"u1\",\"secret\":\"s\"}");
    ts_route_add(&srv, "DELETE", "/api/users/alice", 204, NULL);
    ts_route_add(&srv, "GET", "/api/denied", 403,
                 "{\"error\":{\"code\":\"AuthorizationFailed\",\"message\":\"no\"}}");
    ts_route_add(&srv, "POST", "/api/empty", 200, "{}");
    settings_for_srv(&s, TOKEN);
    rp_buf_init(&out, 1 << 20);

    /* POST with a JSON body */
    body = json_pack("{s:s}", "name", "alice");
    assert_int_equal(
        rp_client_request(&s, "POST", "/api/users", body, &status, &out, err, sizeof(err)), 0);
    json_decref(body);
    assert_int_equal(status, 201);
    assert_string_equal(out.data, "{\"id\":\"u1\",\"secret\":\"s\"}");
    r = ts_req_at(&srv, 0);
    assert_non_null(r);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->target, "/api/users");
    assert_string_equal(r->body, "{\"name\":\"alice\"}");
    assert_non_null(strcasestr(r->head, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strcasestr(r->head, "\r\nAccept: application/json\r\n"));
    assert_non_null(strcasestr(r->head, "\r\nAuthorization: Bearer " TOKEN "\r\n"));
    assert_null(strcasestr(r->head, "\r\nExpect:"));

    /* DELETE without a body: no content type, the status comes back as is */
    rp_buf_reset(&out);
    assert_int_equal(
        rp_client_request(&s, "DELETE", "/api/users/alice", NULL, &status, &out, err, sizeof(err)),
        0);
    assert_int_equal(status, 204);
    assert_int_equal(out.len, 0);
    r = ts_req_at(&srv, 1);
    assert_string_equal(r->method, "DELETE");
    assert_int_equal(r->body_len, 0);
    assert_null(strcasestr(r->head, "content-type"));

    /* errors are statuses, not failures: the caller judges */
    rp_buf_reset(&out);
    assert_int_equal(
        rp_client_request(&s, "GET", "/api/denied?x=1", NULL, &status, &out, err, sizeof(err)), 0);
    assert_int_equal(status, 403);
    assert_non_null(strstr(out.data, "AuthorizationFailed"));
    assert_string_equal(ts_req_at(&srv, 2)->target, "/api/denied?x=1");

    /* POST without a body sends an empty one */
    rp_buf_reset(&out);
    assert_int_equal(
        rp_client_request(&s, "POST", "/api/empty", NULL, &status, &out, err, sizeof(err)), 0);
    assert_int_equal(status, 200);
    r = ts_req_at(&srv, 3);
    assert_non_null(strcasestr(r->head, "\r\nContent-Length: 0\r\n"));
    assert_null(strcasestr(r->head, "content-type")); /* not labelled as a form */

    /* a body bigger than out->max is refused */
    {
        rp_buf small;
        rp_buf_init(&small, 8);
        assert_int_equal(
            rp_client_request(&s, "POST", "/api/users", NULL, &status, &small, err, sizeof(err)),
            RP_ETOOBIG);
        assert_non_null(strstr(err, "larger than 8 bytes"));
        rp_buf_free(&small);
    }

    /* bad methods and paths are refused before any I/O */
    assert_int_equal(rp_client_request(&s, "get", "/x", NULL, &status, &out, err, sizeof(err)),
                     RP_EINVAL);
    assert_int_equal(rp_client_request(&s, "GET\r\nX", "/x", NULL, &status, &out, err, sizeof(err)),
                     RP_EINVAL);
    assert_int_equal(rp_client_request(&s, "GET", "x", NULL, &status, &out, err, sizeof(err)),
                     RP_EINVAL);
    rp_client_settings_free(&s);

    /* without a token: no Authorization header */
    settings_for_srv(&s, NULL);
    rp_buf_reset(&out);
    assert_int_equal(
        rp_client_request(&s, "DELETE", "/api/users/alice", NULL, &status, &out, err, sizeof(err)),
        0);
    r = ts_req_at(&srv, ts_nreqs(&srv) - 1);
    assert_null(strcasestr(r->head, "authorization"));
    rp_client_settings_free(&s);

    /* the wrong CA: a TLS failure, named, without the token */
    {
        char url[64];
        snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.port);
        assert_int_equal(
            rp_client_settings_load(&s, NULL, NULL, url, ca_a, TOKEN, err, sizeof(err)), 0);
        assert_int_equal(
            rp_client_request(&s, "GET", "/api/denied", NULL, &status, &out, err, sizeof(err)),
            RP_ECRYPTO);
        assert_null(strstr(err, TOKEN));
        rp_client_settings_free(&s);
    }
    rp_buf_free(&out);
}

static void test_post_form(void **state)
{
    rp_client_settings s;
    rp_buf out;
    char err[512] = "", url[128];
    long status = 0;
    const ts_req *r;
    const char *form[] = {"grant_type",    "client_credentials", "client_id", "user:alice",
                          "client_secret", "a+b/c=d&e f",        NULL};
    const char *bad_form[] = {"grant_type", NULL};

    (void)state;
    ts_reset(&srv);
    ts_route_add(&srv, "POST", "/tenant-1/oauth2/v2.0/token", 200,
                 "{\"access_token\":\"x\",\"expires_in\":3599}");
    settings_for_srv(&s, TOKEN);
    rp_buf_init(&out, 1 << 20);
    snprintf(url, sizeof(url), "https://login.localhost:%d/tenant-1/oauth2/v2.0/token", srv.port);
    assert_int_equal(rp_client_post_form(&s, url, form, &status, &out, err, sizeof(err)), 0);
    assert_int_equal(status, 200);
    assert_non_null(strstr(out.data, "access_token"));
    r = ts_req_at(&srv, 0);
    assert_string_equal(r->method, "POST");
    assert_string_equal(
        r->body,
        "grant_type=client_credentials&client_id=user%3Aalice&client_secret=a%2Bb%2Fc%3Dd%26e%20f");
    assert_non_null(strcasestr(r->head, "\r\nContent-Type: application/x-www-form-urlencoded\r\n"));
    /* the form carries the credentials: the stored token never goes to the token service */
    assert_null(strcasestr(r->head, "authorization"));
    assert_null(strstr(r->head, TOKEN));

    assert_int_equal(
        rp_client_post_form(&s, "http://login.localhost/x", form, &status, &out, err, sizeof(err)),
        RP_EINVAL);
    assert_int_equal(rp_client_post_form(&s, url, bad_form, &status, &out, err, sizeof(err)),
                     RP_EINVAL);
    rp_client_settings_free(&s);
    rp_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precedence), cmocka_unit_test(test_default_file),
        cmocka_unit_test(test_https_only), cmocka_unit_test(test_file_permissions),
        cmocka_unit_test(test_bad_input),  cmocka_unit_test(test_get_closed_port),
        cmocka_unit_test(test_expiry),     cmocka_unit_test(test_file_store),
        cmocka_unit_test(test_request),    cmocka_unit_test(test_post_form),
    };

    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
