/*
 * cmd_keys_test.c - unit tests for cli/cmd_keys:
 *   - `rampart keys status|rotate-root` against the scripted HTTPS server (testserver.h);
 *   - `rampart unseal` against a tiny plain-HTTP responder started here on 127.0.0.1 (a thread
 *     answering each request with a canned status and body, recording what it received), so
 *     the exit codes for 200/403/409/5xx/unreachable are checked without a sealed server; the
 *     refusal of non-loopback URLs and of passphrase files open to group or others;
 *   - init's key provider options (rp_cmd_init_keys_load): sources, lengths, PKCS#11 needs.
 * Every test also checks that no passphrase or PIN shows up in what the command printed.
 * Output is captured by pointing fds 1 and 2 at files; stdin comes from a file (or /dev/null),
 * so nothing ever waits on a terminal.
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
#include "cli/cmd_keys.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PASS "correct horse battery staple"

static char tmpdir[1024];
static ts_server srv;
static char url[64], home_env[1200];
static char out_text[65536], err_text[65536];
static char *extra_env[4];     /* more "NAME=value" entries for the command's envp */
static const char *stdin_path; /* NULL: /dev/null */

/* ---------------------------------------------------------------- a plain HTTP responder */

typedef struct ph_server {
    int lfd, port;
    pthread_t thread;
    pthread_mutex_t mu;
    volatile int stop;
    int status;     /* what to answer */
    char body[512]; /* and with which body */
    int nreqs;
    char method[16], target[256], head[4096], req_body[8192]; /* the last request */
} ph_server;

static ph_server ph;

/* Reads one request (head and Content-Length body) from fd into p. 0 or -1. */
static int ph_read(int fd, ph_server *p)
{
    static char buf[16384];
    size_t n = 0, head_len = 0, want = 0;
    char *end = NULL, *cl, *sp, *sp2;

    for (;;) {
        ssize_t got;
        if (n >= sizeof(buf) - 1)
            return -1;
        got = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (got <= 0)
            return -1;
        n += (size_t)got;
        buf[n] = '\0';
        if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
            head_len = (size_t)(end - buf) + 4;
            cl = strcasestr(buf, "\r\ncontent-length:");
            if (cl != NULL && cl < end)
                want = (size_t)strtoul(cl + 17, NULL, 10);
        }
        if (end != NULL && n >= head_len + want)
            break;
    }
    if ((sp = strchr(buf, ' ')) == NULL || (sp2 = strchr(sp + 1, ' ')) == NULL ||
        want >= sizeof(p->req_body))
        return -1;
    snprintf(p->method, sizeof(p->method), "%.*s", (int)(sp - buf), buf);
    snprintf(p->target, sizeof(p->target), "%.*s", (int)(sp2 - sp - 1), sp + 1);
    snprintf(p->head, sizeof(p->head), "%.*s", (int)head_len, buf);
    memcpy(p->req_body, buf + head_len, want);
    p->req_body[want] = '\0';
    memset(buf, 0, sizeof(buf));
    return 0;
}

static void *ph_main(void *arg)
{
    ph_server *p = arg;

    while (!p->stop) {
        struct pollfd pf = {p->lfd, POLLIN, 0};
        char head[256];
        int fd;

        if (poll(&pf, 1, 50) <= 0)
            continue;
        fd = accept(p->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&p->mu);
        if (ph_read(fd, p) == 0) {
            p->nreqs++;
            snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     p->status, strlen(p->body));
            if (write(fd, head, strlen(head)) < 0 || write(fd, p->body, strlen(p->body)) < 0)
                p->nreqs += 1000; /* makes the test fail */
        }
        pthread_mutex_unlock(&p->mu);
        close(fd);
    }
    return NULL;
}

static void ph_start(ph_server *p)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int one = 1;

    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(p->lfd >= 0);
    setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(p->lfd, 8), 0);
    assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&sa, &len), 0);
    p->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&p->thread, NULL, ph_main, p), 0);
}

/* The next answer, and forget the last request. */
static void ph_answer(ph_server *p, int status, const char *body)
{
    pthread_mutex_lock(&p->mu);
    p->status = status;
    snprintf(p->body, sizeof(p->body), "%s", body);
    p->nreqs = 0;
    p->method[0] = p->target[0] = p->head[0] = p->req_body[0] = '\0';
    pthread_mutex_unlock(&p->mu);
}

static int ph_nreqs(ph_server *p)
{
    int n;

    pthread_mutex_lock(&p->mu);
    n = p->nreqs;
    pthread_mutex_unlock(&p->mu);
    return n;
}

static void ph_stop(ph_server *p)
{
    p->stop = 1;
    pthread_join(p->thread, NULL);
    close(p->lfd);
    pthread_mutex_destroy(&p->mu);
}

/* ---------------------------------------------------------------- running commands */

static int setup(void **state)
{
    (void)state;
    ts_fixture_start(&srv, "cmd_keys_test", tmpdir, sizeof(tmpdir));
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", srv.port);
    snprintf(home_env, sizeof(home_env), "HOME=%s", tmpdir); /* no client file there */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    ph_start(&ph);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ph_stop(&ph);
    ts_fixture_stop(&srv, tmpdir);
    return 0;
}

typedef int (*cmd_fn)(int argc, char **argv, char **envp);

static int save_fd[3], cap_fd[3];

/* Points fds 0 (stdin_path or /dev/null), 1 and 2 (files) away until capture_end. */
static void capture_begin(void)
{
    char o[1200], e[1200];

    snprintf(o, sizeof(o), "%s/out.txt", tmpdir);
    snprintf(e, sizeof(e), "%s/err.txt", tmpdir);
    fflush(stdout);
    fflush(stderr);
    for (int i = 0; i < 3; i++)
        save_fd[i] = dup(i);
    cap_fd[0] = open(stdin_path != NULL ? stdin_path : "/dev/null", O_RDONLY);
    cap_fd[1] = open(o, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cap_fd[2] = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    for (int i = 0; i < 3; i++) {
        assert_true(save_fd[i] >= 0 && cap_fd[i] >= 0);
        dup2(cap_fd[i], i);
    }
}

/* Restores the fds and reads what was printed into out_text / err_text. */
static void capture_end(void)
{
    char o[1200], e[1200];

    fflush(stdout);
    fflush(stderr);
    for (int i = 0; i < 3; i++) {
        dup2(save_fd[i], i);
        close(save_fd[i]);
        close(cap_fd[i]);
    }
    snprintf(o, sizeof(o), "%s/out.txt", tmpdir);
    snprintf(e, sizeof(e), "%s/err.txt", tmpdir);
    ts_slurp(o, out_text, sizeof(out_text));
    ts_slurp(e, err_text, sizeof(err_text));
}

/* Runs fn with args plus --url/--ca/--token (unless bare) and envp HOME + extra_env. */
static int run_argv(cmd_fn fn, int bare, const char *const *args)
{
    char *argv[40], *envp[8];
    int argc = 0, n = 0, rc;

    for (; args[argc] != NULL; argc++)
        argv[argc] = (char *)args[argc];
    if (!bare) {
        argv[argc++] = "--url";
        argv[argc++] = url;
        argv[argc++] = "--ca";
        argv[argc++] = srv.ca_path;
        argv[argc++] = "--token";
        argv[argc++] = "tok-S3cr3t";
    }
    argv[argc] = NULL;
    envp[n++] = home_env;
    for (int i = 0; i < 4 && extra_env[i] != NULL; i++)
        envp[n++] = extra_env[i];
    envp[n] = NULL;
    capture_begin();
    rc = fn(argc, argv, envp);
    capture_end();
    return rc;
}

#define run(fn, bare, ...) run_argv((fn), (bare), (const char *const[]){__VA_ARGS__})

/* Writes text to tmpdir/name with mode; the path into out[cap]. */
static void write_file(const char *name, const char *text, mode_t mode, char *out, size_t cap)
{
    int fd;

    assert_true((size_t)snprintf(out, cap, "%s/%s", tmpdir, name) < cap);
    unlink(out);
    fd = open(out, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(chmod(out, mode), 0);
}

static void assert_no_secret(const char *secret)
{
    assert_null(strstr(out_text, secret));
    assert_null(strstr(err_text, secret));
}

/* ---------------------------------------------------------------- keys */

static void test_keys(void **state)
{
    (void)state;
    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/api/keys", 200,
                 "{\"provider\":\"passphrase\",\"generation\":3,\"keks\":12,\"cmkKeks\":2}");
    ts_route_add(&srv, "POST", "/api/keys/rotate-root", 200,
                 "{\"generation\":4,\"previous\":3,\"keks\":12}");

    assert_int_equal(run(rp_cmd_keys, 0, "status", NULL), RP_EXIT_OK);
    assert_string_equal(ts_req_at(&srv, ts_nreqs(&srv) - 1)->target, "/api/keys");
    assert_string_equal(out_text, "  root key provider  passphrase\n"
                                  "  generation         3\n"
                                  "  resource keys      12\n"
                                  "  customer-managed   2\n");
    assert_int_equal(run(rp_cmd_keys, 0, "status", "--output", "json", NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "\"provider\": \"passphrase\""));
    assert_non_null(strstr(out_text, "\"cmkKeks\": 2"));

    assert_int_equal(run(rp_cmd_keys, 0, "rotate-root", NULL), RP_EXIT_OK);
    {
        const ts_req *r = ts_req_at(&srv, ts_nreqs(&srv) - 1);
        assert_string_equal(r->method, "POST");
        assert_string_equal(r->target, "/api/keys/rotate-root");
        assert_int_equal(r->body_len, 0);
    }
    assert_string_equal(out_text, "root key rotated: generation 4 (12 keys re-wrapped)\n");
    assert_int_equal(run(rp_cmd_keys, 0, "rotate-root", "--output", "json", NULL), RP_EXIT_OK);
    assert_non_null(strstr(out_text, "\"previous\": 3"));

    /* The common answer mapping: 401/403 exit 6, 5xx exit 5. */
    ts_reset(&srv);
    ts_route_add(&srv, "GET", "/api/keys", 401,
                 "{\"error\":{\"code\":\"Unauthorized\",\"message\":\"invalid token\"}}");
    ts_route_add(&srv, "POST", "/api/keys/rotate-root", 403,
                 "{\"error\":{\"code\":\"Forbidden\",\"message\":\"no "
                 "Microsoft.Rampart/keys/rotate/action at /\"}}");
    assert_int_equal(run(rp_cmd_keys, 0, "status", NULL), RP_EXIT_UNAUTHORIZED);
    assert_non_null(strstr(err_text, "invalid token"));
    assert_int_equal(run(rp_cmd_keys, 0, "rotate-root", NULL), RP_EXIT_UNAUTHORIZED);
    assert_non_null(strstr(err_text, "not authorized: Forbidden"));
    assert_string_equal(out_text, "");
    ts_reset(&srv);
    ts_route_add(&srv, "POST", "/api/keys/rotate-root", 500,
                 "{\"error\":{\"code\":\"RotationFailed\",\"message\":\"re-wrap failed\"}}");
    assert_int_equal(run(rp_cmd_keys, 0, "rotate-root", NULL), RP_EXIT_SERVER);
    assert_non_null(strstr(err_text, "RotationFailed: re-wrap failed"));

    /* usage, before any request */
    ts_reset(&srv);
    assert_int_equal(run(rp_cmd_keys, 1, NULL), RP_EXIT_USAGE);
    assert_int_equal(run(rp_cmd_keys, 1, "rotate", NULL), RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "unknown keys subcommand 'rotate'"));
    assert_int_equal(run(rp_cmd_keys, 1, "status", "extra", NULL), RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "usage: rampart keys status"));
    assert_int_equal(run(rp_cmd_keys, 1, "status", NULL), RP_EXIT_CONFIG);
    assert_int_equal(ts_nreqs(&srv), 0);
}

/* ---------------------------------------------------------------- unseal */

static void test_unseal_endpoint(void **state)
{
    static const char *const good[][2] = {
        {"http://127.0.0.1:8459", "http://127.0.0.1:8459/unseal"},
        {"http://127.0.0.1:8459/", "http://127.0.0.1:8459/unseal"},
        {"http://127.0.0.1:8459/unseal", "http://127.0.0.1:8459/unseal"},
        {"http://127.0.0.1", "http://127.0.0.1/unseal"},
        {"http://[::1]:8459", "http://[::1]:8459/unseal"},
        {"http://localhost:8459", "http://localhost:8459/unseal"},
        {"HTTP://LocalHost:9", "http://localhost:9/unseal"},
    };
    static const char *const bad[] = {
        "https://127.0.0.1:8459",
        "http://10.0.0.1:8459",
        "http://example.com:8459",
        "http://127.0.0.1.nip.io",
        "http://localhost.example.com",
        "http://127.0.0.2:8459",
        "http://0.0.0.0:8459",
        "http://[::]:8459",
        "http://[::1%25lo]:8459",
        "ftp://127.0.0.1",
        "127.0.0.1:8459",
        "http://u:p@127.0.0.1:8459",
        "http://127.0.0.1:8459/x",
        "http://127.0.0.1:8459/unseal?a",
        "http://127.0.0.1:8459/#f",
        "",
        "http://",
        "file:///etc/passwd",
    };
    char out[RP_CMD_UNSEAL_URL_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(rp_cmd_unseal_endpoint(good[i][0], out, sizeof(out)), 0);
        assert_string_equal(out, good[i][1]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_not_equal(rp_cmd_unseal_endpoint(bad[i], out, sizeof(out)), 0);
        assert_string_equal(out, "");
    }
    assert_int_equal(rp_cmd_unseal_endpoint(NULL, out, sizeof(out)), RP_EINVAL);
    assert_int_equal(rp_cmd_unseal_endpoint("http://127.0.0.1:8459", out, 20), RP_ETOOBIG);
}

static void test_unseal(void **state)
{
    char phurl[64], file[1200], env_pass[64], env_url[96];
    json_t *j;

    (void)state;
    snprintf(phurl, sizeof(phurl), "http://127.0.0.1:%d", ph.port);
    write_file("pass", PASS "\n", 0600, file, sizeof(file));

    /* From a 0600 file (its line end dropped). */
    ph_answer(&ph, 200, "{\"status\":\"unsealed\"}");
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", file, NULL),
                     RP_EXIT_OK);
    assert_string_equal(out_text, "unsealed\n");
    assert_string_equal(err_text, "");
    assert_int_equal(ph_nreqs(&ph), 1);
    assert_string_equal(ph.method, "POST");
    assert_string_equal(ph.target, "/unseal");
    assert_non_null(strcasestr(ph.head, "\r\ncontent-type: application/json\r\n"));
    assert_null(strcasestr(ph.head, "authorization"));
    assert_string_equal(ph.req_body, "{\"passphrase\":\"" PASS "\"}");
    assert_no_secret(PASS);

    /* --output json; the URL as the server prints it. */
    ph_answer(&ph, 200, "{\"status\":\"unsealed\"}");
    snprintf(env_url, sizeof(env_url), "%s/unseal", phurl);
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", env_url, "--passphrase-file", file, "--output",
                         "json", NULL),
                     RP_EXIT_OK);
    assert_non_null(strstr(out_text, "\"status\": \"unsealed\""));

    /* RAMPART_PASSPHRASE and RAMPART_UNSEAL_URL; JSON escaping of the passphrase. */
    ph_answer(&ph, 200, "{\"status\":\"unsealed\"}");
    snprintf(env_pass, sizeof(env_pass), "RAMPART_PASSPHRASE=q\"uo\\te \xc3\xa9t\xc3\xa9");
    snprintf(env_url, sizeof(env_url), "RAMPART_UNSEAL_URL=%s", phurl);
    extra_env[0] = env_pass;
    extra_env[1] = env_url;
    assert_int_equal(run(rp_cmd_unseal, 1, NULL), RP_EXIT_OK);
    extra_env[0] = extra_env[1] = NULL;
    assert_int_equal(ph_nreqs(&ph), 1);
    j = json_loads(ph.req_body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "passphrase")),
                        "q\"uo\\te \xc3\xa9t\xc3\xa9");
    json_decref(j);

    /* The file wins over the environment. */
    ph_answer(&ph, 200, "{\"status\":\"unsealed\"}");
    extra_env[0] = env_pass;
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", file, NULL),
                     RP_EXIT_OK);
    extra_env[0] = NULL;
    assert_string_equal(ph.req_body, "{\"passphrase\":\"" PASS "\"}");

    /* One line of stdin when it is not a terminal (CRLF tolerated). */
    ph_answer(&ph, 200, "{\"status\":\"unsealed\"}");
    write_file("stdin", "from stdin 123\r\nsecond line\n", 0600, file, sizeof(file));
    stdin_path = file;
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, NULL), RP_EXIT_OK);
    stdin_path = NULL;
    assert_string_equal(ph.req_body, "{\"passphrase\":\"from stdin 123\"}");
    assert_no_secret("from stdin");

    /* Nothing on stdin: usage error, no request. */
    ph_answer(&ph, 200, "{\"status\":\"unsealed\"}");
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, NULL), RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "no passphrase given"));
    assert_int_equal(ph_nreqs(&ph), 0);

    /* A proxy in the environment is not used: the passphrase goes straight to loopback. */
    write_file("pass", PASS "\n", 0600, file, sizeof(file));
    ph_answer(&ph, 200, "{\"status\":\"unsealed\"}");
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    setenv("HTTP_PROXY", "http://127.0.0.1:1", 1);
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", file, NULL),
                     RP_EXIT_OK);
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    assert_int_equal(ph_nreqs(&ph), 1);
}

static void test_unseal_answers(void **state)
{
    char phurl[64], file[1200], dead[64];
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd;

    (void)state;
    snprintf(phurl, sizeof(phurl), "http://127.0.0.1:%d", ph.port);
    write_file("pass", PASS, 0600, file, sizeof(file));

    ph_answer(&ph, 403,
              "{\"error\":{\"code\":\"Forbidden\",\"message\":\"the passphrase does not open "
              "the root key\"}}");
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", file, NULL),
                     RP_EXIT_UNAUTHORIZED);
    assert_string_equal(err_text, "rampart: unseal: the passphrase does not open the root key\n");
    assert_string_equal(out_text, "");
    assert_int_equal(ph_nreqs(&ph), 1);

    ph_answer(&ph, 409, "{\"error\":{\"code\":\"Conflict\",\"message\":\"already unsealed\"}}");
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", file, NULL),
                     RP_EXIT_CONFLICT);
    assert_non_null(strstr(err_text, "already unsealed"));

    /* An unsealed server's identity listener on the same port: no /unseal there. */
    ph_answer(&ph, 404, "{\"error\":{\"code\":\"NotFound\",\"message\":\"no such resource\"}}");
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", file, NULL),
                     RP_EXIT_CONFLICT);
    assert_non_null(strstr(err_text, "nothing is sealed at http://127.0.0.1:"));

    ph_answer(&ph, 400,
              "{\"error\":{\"code\":\"InvalidRequest\",\"message\":\"the body must be x\"}}");
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", file, NULL),
                     RP_EXIT_SERVER);
    assert_non_null(strstr(err_text, "HTTP 400: InvalidRequest: the body must be x"));

    /* 200 from something that is not a sealed rampart (an unsealed server's 404 page...). */
    ph_answer(&ph, 200, "{\"status\":\"ok\"}");
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", file, NULL),
                     RP_EXIT_SERVER);
    assert_non_null(strstr(err_text, "without {\"status\":\"unsealed\"}"));
    assert_string_equal(out_text, "");
    assert_no_secret(PASS);

    /* Nobody listening: exit 5. */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    close(fd);
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", dead, "--passphrase-file", file, NULL),
                     RP_EXIT_SERVER);
    assert_non_null(strstr(err_text, "cannot reach the sealed server"));
    assert_no_secret(PASS);
}

static void test_unseal_refusals(void **state)
{
    static const char *const urls[] = {"https://127.0.0.1:8459", "http://192.0.2.1:8459",
                                       "http://example.com", "http://127.0.0.1.nip.io:8459",
                                       "http://user@127.0.0.1:8459"};
    char phurl[64], open_file[1200], file[1200], link[1200], env_url[96];
    char big[RP_CMD_PASSPHRASE_MAX + 8];

    (void)state;
    snprintf(phurl, sizeof(phurl), "http://127.0.0.1:%d", ph.port);
    write_file("pass-open", PASS "\n", 0644, open_file, sizeof(open_file));
    ph_answer(&ph, 200, "{\"status\":\"unsealed\"}");

    /* Non-loopback URLs: usage error, before the passphrase is even read (the 0644 file
     * would be exit 3), and nothing is sent. */
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        assert_int_equal(
            run(rp_cmd_unseal, 1, "--url", urls[i], "--passphrase-file", open_file, NULL),
            RP_EXIT_USAGE);
        assert_non_null(strstr(err_text, "the passphrase must never leave this machine"));
    }
    snprintf(env_url, sizeof(env_url), "RAMPART_UNSEAL_URL=http://192.0.2.1:8459");
    extra_env[0] = env_url;
    assert_int_equal(run(rp_cmd_unseal, 1, "--passphrase-file", open_file, NULL), RP_EXIT_USAGE);
    extra_env[0] = NULL;

    /* Passphrase files: open to group or others, missing, not regular, a link, empty, two
     * lines, too long: exit 3 and no request. */
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", open_file, NULL),
                     RP_EXIT_CONFIG);
    assert_non_null(strstr(err_text, "group or others have access to it (chmod 600)"));
    assert_non_null(strstr(err_text, open_file));
    write_file("pass-group", PASS, 0640, file, sizeof(file));
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", file, NULL),
                     RP_EXIT_CONFIG);
    write_file("pass-other-w", PASS, 0602, file, sizeof(file));
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", file, NULL),
                     RP_EXIT_CONFIG);
    snprintf(file, sizeof(file), "%s/missing", tmpdir);
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", file, NULL),
                     RP_EXIT_CONFIG);
    assert_non_null(strstr(err_text, "no such file"));
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", tmpdir, NULL),
                     RP_EXIT_CONFIG);
    write_file("pass-ok", PASS, 0600, file, sizeof(file));
    snprintf(link, sizeof(link), "%s/pass-link", tmpdir);
    assert_int_equal(symlink(file, link), 0);
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", link, NULL),
                     RP_EXIT_CONFIG);
    write_file("pass-empty", "\n", 0600, file, sizeof(file));
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", file, NULL),
                     RP_EXIT_CONFIG);
    assert_non_null(strstr(err_text, "must hold the passphrase on one line"));
    write_file("pass-2", PASS "\nmore\n", 0600, file, sizeof(file));
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", file, NULL),
                     RP_EXIT_CONFIG);
    memset(big, 'x', RP_CMD_PASSPHRASE_MAX + 1);
    big[RP_CMD_PASSPHRASE_MAX + 1] = '\0';
    write_file("pass-big", big, 0600, file, sizeof(file));
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", file, NULL),
                     RP_EXIT_CONFIG);
    assert_int_equal(ph_nreqs(&ph), 0);
    assert_no_secret(PASS);

    /* The longest passphrase is accepted. */
    big[RP_CMD_PASSPHRASE_MAX] = '\n';
    write_file("pass-max", big, 0600, file, sizeof(file));
    assert_int_equal(run(rp_cmd_unseal, 1, "--url", phurl, "--passphrase-file", file, NULL),
                     RP_EXIT_OK);
    assert_int_equal(strlen(ph.req_body), RP_CMD_PASSPHRASE_MAX + strlen("{\"passphrase\":\"\"}"));

    /* Options. */
    assert_int_equal(run(rp_cmd_unseal, 1, "extra", NULL), RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "usage: rampart unseal"));
    assert_int_equal(run(rp_cmd_unseal, 1, "--token", "x", NULL), RP_EXIT_USAGE);
    assert_int_equal(run(rp_cmd_unseal, 1, "--output", "xml", NULL), RP_EXIT_USAGE);
    assert_int_equal(ph_nreqs(&ph), 1);
}

/* ---------------------------------------------------------------- init's key options */

/* Parses args into opts (RP_OPTS_INIT_KEYS) and runs rp_cmd_init_keys_load with capture. */
static int init_keys_argv(rp_cmd_init_keys *k, rp_opt *opts, size_t nopts, const char *const *args)
{
    char *argv[16], *envp[8], err[256];
    rp_args a;
    int argc = 0, n = 0, rc;

    for (; args[argc] != NULL; argc++)
        argv[argc] = (char *)args[argc];
    argv[argc] = NULL;
    for (size_t i = 0; i < nopts; i++) {
        opts[i].value = NULL;
        opts[i].nvalues = 0;
    }
    assert_int_equal(rp_args_parse(argc, argv, opts, nopts, 0, 0, &a, err, sizeof(err)), 0);
    envp[n++] = home_env;
    for (int i = 0; i < 4 && extra_env[i] != NULL; i++)
        envp[n++] = extra_env[i];
    envp[n] = NULL;
    capture_begin();
    rc = rp_cmd_init_keys_load(k, opts, nopts, envp);
    capture_end();
    return rc;
}

#define init_keys(k, ...)                                                                          \
    init_keys_argv((k), opts, sizeof(opts) / sizeof(opts[0]), (const char *const[]){__VA_ARGS__})

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

static void test_init_keys(void **state)
{
    rp_opt opts[] = {RP_OPTS_INIT_KEYS};
    rp_cmd_init_keys k;
    char file[1200], open_file[1200], env_pass[64], env_pin[64];

    (void)state;
    /* Default and explicit file provider: nothing secret. */
    assert_int_equal(init_keys(&k, NULL), RP_EXIT_OK);
    assert_int_equal(k.ko.provider, RP_ROOT_FILE);
    assert_null(k.ko.passphrase);
    assert_null(k.ko.keys_dir);
    rp_cmd_init_keys_wipe(&k);
    assert_int_equal(init_keys(&k, "--key-provider", "file", NULL), RP_EXIT_OK);
    assert_int_equal(k.ko.provider, RP_ROOT_FILE);
    rp_cmd_init_keys_wipe(&k);
    assert_int_equal(init_keys(&k, "--key-provider", "hsm", NULL), RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "--key-provider must be file, passphrase or pkcs11"));
    rp_cmd_init_keys_wipe(&k);

    /* Passphrase from a 0600 file; the struct is all zeroes after the wipe. */
    write_file("init-pass", PASS "\n", 0600, file, sizeof(file));
    assert_int_equal(init_keys(&k, "--key-provider", "passphrase", "--passphrase-file", file, NULL),
                     RP_EXIT_OK);
    assert_int_equal(k.ko.provider, RP_ROOT_PASSPHRASE);
    assert_int_equal(k.ko.passphrase_len, strlen(PASS));
    assert_memory_equal(k.ko.passphrase, PASS, strlen(PASS));
    rp_cmd_init_keys_wipe(&k);
    assert_true(all_zero(&k, sizeof(k)));

    /* ... from RAMPART_PASSPHRASE, and from stdin when it is not a terminal. */
    snprintf(env_pass, sizeof(env_pass), "RAMPART_PASSPHRASE=twelve chars");
    extra_env[0] = env_pass;
    assert_int_equal(init_keys(&k, "--key-provider", "passphrase", NULL), RP_EXIT_OK);
    extra_env[0] = NULL;
    assert_string_equal(k.ko.passphrase, "twelve chars");
    rp_cmd_init_keys_wipe(&k);
    write_file("init-stdin", "a piped passphrase\n", 0600, file, sizeof(file));
    stdin_path = file;
    assert_int_equal(init_keys(&k, "--key-provider", "passphrase", NULL), RP_EXIT_OK);
    stdin_path = NULL;
    assert_string_equal(k.ko.passphrase, "a piped passphrase");
    assert_no_secret("a piped passphrase");
    rp_cmd_init_keys_wipe(&k);

    /* Shorter than 12 characters (code points, not bytes): usage error. */
    snprintf(env_pass, sizeof(env_pass), "RAMPART_PASSPHRASE=eleven char");
    extra_env[0] = env_pass;
    assert_int_equal(init_keys(&k, "--key-provider", "passphrase", NULL), RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "at least 12 characters"));
    assert_no_secret("eleven char");
    rp_cmd_init_keys_wipe(&k);
    snprintf(env_pass, sizeof(env_pass),
             "RAMPART_PASSPHRASE=\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"); /* 11 characters, 22 bytes */
    assert_int_equal(init_keys(&k, "--key-provider", "passphrase", NULL), RP_EXIT_USAGE);
    rp_cmd_init_keys_wipe(&k);
    extra_env[0] = NULL;
    assert_int_equal(init_keys(&k, "--key-provider", "passphrase", NULL), RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "no passphrase given"));
    rp_cmd_init_keys_wipe(&k);

    /* A passphrase file open to others: exit 3. */
    write_file("init-open", PASS, 0644, open_file, sizeof(open_file));
    assert_int_equal(
        init_keys(&k, "--key-provider", "passphrase", "--passphrase-file", open_file, NULL),
        RP_EXIT_CONFIG);
    assert_no_secret(PASS);
    rp_cmd_init_keys_wipe(&k);

    /* Options that do not go with the provider. */
    assert_int_equal(init_keys(&k, "--passphrase-file", file, NULL), RP_EXIT_USAGE);
    rp_cmd_init_keys_wipe(&k);
    assert_int_equal(init_keys(&k, "--key-provider", "passphrase", "--pkcs11-token", "t", NULL),
                     RP_EXIT_USAGE);
    rp_cmd_init_keys_wipe(&k);

    /* PKCS#11: module and token required, the PIN from a file or the environment. */
    snprintf(env_pin, sizeof(env_pin), "RAMPART_PKCS11_PIN=1234");
    extra_env[0] = env_pin;
    assert_int_equal(init_keys(&k, "--key-provider", "pkcs11", "--pkcs11-token", "rampart", NULL),
                     RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "needs --pkcs11-module PATH and --pkcs11-token LABEL"));
    rp_cmd_init_keys_wipe(&k);
    assert_int_equal(init_keys(&k, "--key-provider", "pkcs11", "--pkcs11-module", "/lib/x.so",
                               "--pkcs11-token", "rampart", NULL),
                     RP_EXIT_OK);
    assert_int_equal(k.ko.provider, RP_ROOT_PKCS11);
    assert_string_equal(k.ko.pkcs11_module, "/lib/x.so");
    assert_string_equal(k.ko.pkcs11_token, "rampart");
    assert_string_equal(k.ko.pkcs11_pin, "1234");
    assert_null(k.ko.passphrase);
    rp_cmd_init_keys_wipe(&k);
    assert_true(all_zero(&k, sizeof(k)));
    write_file("pin", "98765\n", 0600, file, sizeof(file));
    assert_int_equal(init_keys(&k, "--key-provider", "pkcs11", "--pkcs11-module", "/lib/x.so",
                               "--pkcs11-token", "rampart", "--pkcs11-pin-file", file, NULL),
                     RP_EXIT_OK);
    assert_string_equal(k.ko.pkcs11_pin, "98765"); /* the file wins */
    rp_cmd_init_keys_wipe(&k);
    extra_env[0] = NULL;
    assert_int_equal(init_keys(&k, "--key-provider", "pkcs11", "--pkcs11-module", "/lib/x.so",
                               "--pkcs11-token", "rampart", NULL),
                     RP_EXIT_USAGE);
    assert_non_null(strstr(err_text, "RAMPART_PKCS11_PIN"));
    rp_cmd_init_keys_wipe(&k);
    write_file("pin-open", "98765\n", 0644, file, sizeof(file));
    assert_int_equal(init_keys(&k, "--key-provider", "pkcs11", "--pkcs11-module", "/lib/x.so",
                               "--pkcs11-token", "rampart", "--pkcs11-pin-file", file, NULL),
                     RP_EXIT_CONFIG);
    assert_no_secret("98765");
    rp_cmd_init_keys_wipe(&k);
    rp_cmd_init_keys_wipe(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_unseal_endpoint),
        cmocka_unit_test(test_unseal),
        cmocka_unit_test(test_unseal_answers),
        cmocka_unit_test(test_unseal_refusals),
        cmocka_unit_test(test_init_keys),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
