/*
 * cmd_login.c - `rampart login` / `rampart logout` (see cmd_login.h).
 *
 * The client secret is the one secret this file handles: it lives in a stack buffer that is
 * wiped on every path, is never echoed (the terminal's echo is turned off while it is typed
 * and restored even if the user presses ^C), and only travels in the form body to the token
 * service. The access token that comes back goes straight into the client file; it is not
 * printed.
 */
#include "cli/cmd_login.h"
#include "base/alloc.h"
#include "base/err.h"
#include "cli/client.h"
#include "cli/cmd_common.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SECRET_MAX 1024
#define TENANT_MAX 64
#define URL_CAP    1024

static int valid_tenant(const char *t)
{
    size_t n = strlen(t);

    if (n == 0 || n > TENANT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* An IPv4 literal (digits and dots only) or an IPv6 one (has ':' or '['). */
static int is_ip_literal(const char *host)
{
    if (strchr(host, ':') != NULL || host[0] == '[')
        return 1;
    return strspn(host, "0123456789.") == strlen(host);
}

int rp_login_endpoints(const char *url, const char *tenant, char *token_url, size_t tcap,
                       char *scope, size_t scap)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    int rc = 0, n;

    if (u == NULL)
        return RP_ENOMEM;
    if (url == NULL || tenant == NULL || !valid_tenant(tenant) ||
        curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0' ||
        is_ip_literal(host)) {
        rc = RP_EINVAL;
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
        port = NULL; /* none given: 443 */
    n = snprintf(token_url, tcap, "https://login.%s%s%s/%s/oauth2/v2.0/token", host,
                 port ? ":" : "", port ? port : "", tenant);
    if (n < 0 || (size_t)n >= tcap) {
        rc = RP_ETOOBIG;
        goto out;
    }
    n = snprintf(scope, scap, "https://management.%s/.default", host);
    if (n < 0 || (size_t)n >= scap)
        rc = RP_ETOOBIG;
out:
    curl_free(port);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static const char *env_value(char **envp, const char *name)
{
    size_t n = strlen(name);

    for (char **e = envp; e != NULL && *e != NULL; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=' && (*e)[n + 1] != '\0')
            return *e + n + 1;
    return NULL;
}

/* ---------------------------------------------------------------- login */

/* The tenant from GET {url}/health ("tenant"). Exit code. */
static int discover_tenant(const rp_client_settings *cs, char *out, size_t cap)
{
    json_t *health = NULL;
    const char *t;
    int rc = rp_cli_call(cs, "GET", "/health", NULL, &health, NULL);

    if (rc != RP_EXIT_OK)
        return rc;
    t = json_string_value(json_object_get(health, "tenant"));
    if (t == NULL || !valid_tenant(t))
        rc = rp_cli_fail(RP_EXIT_SERVER,
                         "the server's /health does not name its tenant; pass --tenant ID (or "
                         "set RAMPART_TENANT)");
    else
        snprintf(out, cap, "%s", t);
    json_decref(health);
    return rc;
}

/* Judges the token service's answer; on success *token and *expires_in. Exit code. */
static int token_answer(long status, const rp_buf *body, json_t **answer, const char **token,
                        json_int_t *expires_in)
{
    char msg[600];
    const char *error;
    json_t *j;

    if (status == 200) {
        j = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
        *answer = j;
        *token = json_string_value(json_object_get(j, "access_token"));
        *expires_in = json_integer_value(json_object_get(j, "expires_in"));
        if (*token == NULL || *expires_in <= 0)
            return rp_cli_fail(RP_EXIT_SERVER, "the token service answered without a token");
        return RP_EXIT_OK;
    }
    rp_cli_error_text(body->data, body->len, msg, sizeof(msg));
    j = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
    error = json_string_value(json_object_get(j, "error"));
    /* Wrong, expired or unknown credentials are "not authorized"; the rest is a failure. */
    if (status == 401 || (error != NULL && (strcmp(error, "invalid_client") == 0 ||
                                            strcmp(error, "unauthorized_client") == 0))) {
        json_decref(j);
        return rp_cli_fail(RP_EXIT_UNAUTHORIZED, "login refused: %s",
                           msg[0] ? msg : "the token service refused the credentials");
    }
    json_decref(j);
    return rp_cli_fail(RP_EXIT_SERVER, "the token service answered HTTP %ld%s%s", status,
                       msg[0] ? ": " : "", msg);
}

int rp_cmd_login(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN,
                     RP_OPT("service-principal", RP_OPT_FLAG),
                     RP_OPT("username", RP_OPT_VALUE),
                     RP_OPT("password", RP_OPT_VALUE),
                     RP_OPT("user", RP_OPT_VALUE),
                     RP_OPT("tenant", RP_OPT_VALUE)};
    size_t nopts = sizeof(opts) / sizeof(opts[0]);
    const char *sp, *username, *password, *user, *tenant, *token = NULL;
    char err[1024] = "", secret[SECRET_MAX + 1], client_id[256], tenant_buf[TENANT_MAX + 1];
    char token_url[URL_CAP], scope[URL_CAP], ca_abs[PATH_MAX], when[21], file[4096];
    rp_client_settings cs;
    rp_args args;
    rp_buf body;
    json_t *answer = NULL;
    json_int_t expires_in = 0;
    long status = 0;
    int64_t expires_at;
    int rc, json;

    memset(&cs, 0, sizeof(cs));
    secret[0] = '\0';
    rp_buf_init(&body, RP_CLIENT_BODY_MAX);
    if (rp_args_parse(argc, argv, opts, nopts, 0, 0, &args, err, sizeof(err)) != 0) {
        rc = rp_cli_usage_error("%s", err);
        goto out;
    }
    if ((rc = rp_cli_output(rp_opt_get(opts, nopts, "output"), &json)) != RP_EXIT_OK)
        goto out;
    sp = rp_opt_get(opts, nopts, "service-principal");
    username = rp_opt_get(opts, nopts, "username");
    password = rp_opt_get(opts, nopts, "password");
    user = rp_opt_get(opts, nopts, "user");
    if (rp_opt_get(opts, nopts, "token") != NULL) {
        rc = rp_cli_usage_error("login gets a token; it does not take --token");
        goto out;
    }
    if ((sp != NULL) == (user != NULL)) {
        rc = rp_cli_usage_error("login needs --service-principal --username APPID, or --user "
                                "NAME");
        goto out;
    }
    if (sp != NULL && (username == NULL || username[0] == '\0')) {
        rc = rp_cli_usage_error("login --service-principal needs --username APPID");
        goto out;
    }
    if (user != NULL && (username != NULL || password != NULL)) {
        /* A user's secret on the command line would be visible in the process list. */
        rc = rp_cli_usage_error("login --user takes its secret from RAMPART_PASSWORD or stdin, "
                                "not --password (and no --username)");
        goto out;
    }
    if (user != NULL)
        snprintf(client_id, sizeof(client_id), "user:%.200s", user);
    else
        snprintf(client_id, sizeof(client_id), "%.250s", username);

    rc = rp_cli_connect(&cs, opts, nopts, envp, 0);
    if (rc != RP_EXIT_OK)
        goto out;
    if (cs.token != NULL) { /* the old login is not needed, and not sent anywhere */
        OPENSSL_cleanse(cs.token, strlen(cs.token));
        rp_free(cs.token);
        cs.token = NULL;
    }
    tenant = rp_opt_get(opts, nopts, "tenant");
    if (tenant == NULL)
        tenant = env_value(envp, "RAMPART_TENANT");
    if (tenant == NULL) {
        if ((rc = discover_tenant(&cs, tenant_buf, sizeof(tenant_buf))) != RP_EXIT_OK)
            goto out;
        tenant = tenant_buf;
    }
    if (!valid_tenant(tenant)) {
        rc = rp_cli_usage_error("tenant '%.60s': a tenant id is letters, digits and '-'", tenant);
        goto out;
    }
    if (rp_login_endpoints(cs.url, tenant, token_url, sizeof(token_url), scope, sizeof(scope)) !=
        0) {
        rc = rp_cli_fail(RP_EXIT_CONFIG,
                         "%s: login needs the platform's domain name in the URL "
                         "(https://D[:port]), not an IP address",
                         cs.url);
        goto out;
    }
    if (password != NULL)
        snprintf(secret, sizeof(secret), "%s", password);
    else if (env_value(envp, "RAMPART_PASSWORD") != NULL)
        snprintf(secret, sizeof(secret), "%s", env_value(envp, "RAMPART_PASSWORD"));
    else if ((rc = rp_cli_read_secret("Secret: ", "secret", secret, sizeof(secret), NULL)) !=
             RP_EXIT_OK)
        goto out;
    {
        const char *form[] = {"grant_type",
                              "client_credentials",
                              "client_id",
                              client_id,
                              "client_secret",
                              secret,
                              "scope",
                              scope,
                              NULL};
        rc = rp_client_post_form(&cs, token_url, form, &status, &body, err, sizeof(err));
    }
    OPENSSL_cleanse(secret, sizeof(secret));
    if (rc != 0) {
        rc = rp_cli_fail(RP_EXIT_SERVER, "%s", err);
        goto out;
    }
    if ((rc = token_answer(status, &body, &answer, &token, &expires_in)) != RP_EXIT_OK)
        goto out;
    expires_at = (int64_t)time(NULL) + (int64_t)expires_in;
    if (cs.ca_file != NULL && realpath(cs.ca_file, ca_abs) == NULL)
        snprintf(ca_abs, sizeof(ca_abs), "%s", cs.ca_file);
    rc = rp_client_file_store(NULL, envp, cs.url, cs.ca_file != NULL ? ca_abs : NULL, token,
                              expires_at, err, sizeof(err));
    if (rc != 0) {
        rc = rp_cli_fail(rc == RP_EINVAL || rc == RP_EPARSE ? RP_EXIT_CONFIG : RP_EXIT_FAIL, "%s",
                         err);
        goto out;
    }
    rp_client_file_path(NULL, envp, file, sizeof(file));
    rp_cli_format_time(expires_at, when);
    if (json) {
        rp_cli_print_json(json_pack("{s:s,s:s,s:s,s:s,s:s}", "url", cs.url, "tenant", tenant,
                                    "clientId", client_id, "expiresAt", when, "file", file));
    } else {
        printf("Logged in to %s as ", cs.url);
        rp_cli_put_safe(stdout, client_id);
        printf(" (tenant %s)\nThe login is valid until %s; it is saved in %s\n", tenant, when,
               file);
    }
    if (env_value(envp, "RAMPART_TOKEN") != NULL)
        fprintf(stderr, "rampart: warning: RAMPART_TOKEN is set and takes precedence over this "
                        "login; unset it to use the login\n");
    rc = RP_EXIT_OK;
out:
    OPENSSL_cleanse(secret, sizeof(secret));
    if (answer != NULL) {
        json_t *t = json_object_get(answer, "access_token");
        if (json_is_string(t))
            OPENSSL_cleanse((char *)json_string_value(t), json_string_length(t));
        json_decref(answer);
    }
    rp_buf_free_secret(&body);
    rp_client_settings_free(&cs);
    return rc;
}

int rp_cmd_logout(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPT("output", RP_OPT_VALUE)};
    char err[1024] = "", file[4096];
    struct stat st;
    rp_args args;
    int rc, json;

    if (rp_args_parse(argc, argv, opts, 1, 0, 0, &args, err, sizeof(err)) != 0)
        return rp_cli_usage_error("%s", err);
    if ((rc = rp_cli_output(opts[0].value, &json)) != RP_EXIT_OK)
        return rc;
    if (rp_client_file_path(NULL, envp, file, sizeof(file)) != 0)
        return rp_cli_fail(RP_EXIT_CONFIG, "no client file: HOME is not set");
    if (lstat(file, &st) != 0) {
        if (json)
            rp_cli_print_json(json_pack("{s:b}", "loggedOut", 0));
        else
            printf("Not logged in (no %s)\n", file);
        return RP_EXIT_OK;
    }
    rc = rp_client_file_store(NULL, envp, NULL, NULL, NULL, 0, err, sizeof(err));
    if (rc != 0)
        return rp_cli_fail(rc == RP_EPARSE || rc == RP_EINVAL ? RP_EXIT_CONFIG : RP_EXIT_FAIL, "%s",
                           err);
    if (json)
        rp_cli_print_json(json_pack("{s:b}", "loggedOut", 1));
    else
        printf("Logged out: the token was removed from %s\n", file);
    return RP_EXIT_OK;
}
