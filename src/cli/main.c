/*
 * main.c - the `rampart` command line: help, version, init, serve, status.
 *
 * Exit codes (stable; scripts rely on them, docs/operations.md lists them):
 *   0 success, 1 failure at run time, 2 usage error, 3 invalid configuration,
 *   4 init refused (the directory holds something else), 5 server unreachable or answered
 *   an error, 6 not authorized.
 * Every command that reports something accepts --output json.
 */
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/str.h"
#include "cli/client.h"
#include "server/config.h"
#include "server/datadir.h"
#include "server/server.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,
    EXIT_USAGE = 2,
    EXIT_CONFIG = 3,
    EXIT_CONFLICT = 4,
    EXIT_SERVER = 5,
    EXIT_UNAUTHORIZED = 6
};

#define MAX_OPTS 32

typedef struct opt {
    const char *name; /* without "--" */
    int takes_value;
    const char *value; /* NULL if not given; "1" for flags */
} opt;

static const char usage_text[] =
    "rampart - a self-hosted, secure-by-default platform for web apps and serverless code\n"
    "\n"
    "Usage:\n"
    "  rampart init   --data DIR [--domain D] [--output json]\n"
    "  rampart serve  --data DIR [--listen HOST:PORT] [--http-listen HOST:PORT|off]\n"
    "                 [--static DIR] [--workers N] [--domain D] [--config FILE]\n"
    "                 [--check-config]\n"
    "                 [--output json]\n"
    "  rampart status [--url URL] [--ca FILE] [--token TOKEN] [--output json]\n"
    "  rampart version [--output json]\n"
    "  rampart help\n"
    "\n"
    "Environment: RAMPART_DATA (default for --data), RAMPART_URL, RAMPART_CA, RAMPART_TOKEN\n"
    "(client commands), RAMPART_<KEY> for any configuration key (docs/operations.md).\n"
    "Exit codes: 0 ok, 1 failure, 2 usage, 3 configuration, 4 init refused,\n"
    "            5 server error or unreachable, 6 not authorized.\n";

static int usage_error(const char *msg)
{
    fprintf(stderr, "rampart: %s\n(run 'rampart help' for usage)\n", msg);
    return EXIT_USAGE;
}

/* Parses --name value / --name=value / --flag against opts. 0 or an exit code. */
static int parse_opts(int argc, char **argv, opt *opts, size_t nopts)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *eq;
        size_t nlen;
        opt *o = NULL;
        char msg[160];

        if (a[0] != '-' || a[1] != '-') {
            snprintf(msg, sizeof(msg), "unexpected argument '%.60s'", a);
            return usage_error(msg);
        }
        a += 2;
        eq = strchr(a, '=');
        nlen = eq ? (size_t)(eq - a) : strlen(a);
        for (size_t k = 0; k < nopts; k++)
            if (strlen(opts[k].name) == nlen && memcmp(opts[k].name, a, nlen) == 0)
                o = &opts[k];
        if (o == NULL) {
            snprintf(msg, sizeof(msg), "unknown option '--%.*s'", (int)(nlen > 60 ? 60 : nlen), a);
            return usage_error(msg);
        }
        if (!o->takes_value) {
            if (eq != NULL) {
                snprintf(msg, sizeof(msg), "option '--%s' takes no value", o->name);
                return usage_error(msg);
            }
            o->value = "1";
        } else if (eq != NULL) {
            o->value = eq + 1;
        } else if (i + 1 < argc) {
            o->value = argv[++i];
        } else {
            snprintf(msg, sizeof(msg), "option '--%s' needs a value", o->name);
            return usage_error(msg);
        }
    }
    return 0;
}

static const char *optv(const opt *opts, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(opts[i].name, name) == 0)
            return opts[i].value;
    return NULL;
}

static int want_json(const char *output, int *json)
{
    *json = 0;
    if (output == NULL || strcmp(output, "text") == 0)
        return 0;
    if (strcmp(output, "json") == 0) {
        *json = 1;
        return 0;
    }
    return usage_error("--output must be 'text' or 'json'");
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_INDENT(2));

    if (s != NULL) {
        puts(s);
        free(s);
    }
    json_decref(o);
}

static const char *data_dir_default(const char *flag)
{
    const char *env = getenv("RAMPART_DATA");

    if (flag != NULL)
        return flag;
    return env != NULL && env[0] != '\0' ? env : NULL;
}

/* ---------------------------------------------------------------- version / help */

static int cmd_version(int argc, char **argv)
{
    opt opts[] = {{"output", 1, NULL}};
    int rc = parse_opts(argc, argv, opts, 1), json;

    if (rc != 0)
        return rc;
    if ((rc = want_json(opts[0].value, &json)) != 0)
        return rc;
    if (json)
        print_json(json_pack("{s:s,s:s}", "name", "rampart", "version", RP_VERSION));
    else
        printf("rampart %s\n", RP_VERSION);
    return EXIT_OK;
}

/* ---------------------------------------------------------------- init */

static int cmd_init(int argc, char **argv)
{
    opt opts[] = {{"data", 1, NULL}, {"domain", 1, NULL}, {"output", 1, NULL}};
    rp_init_opts io;
    rp_init_result r;
    rp_config cfg;
    char err[1024] = "";
    int rc = parse_opts(argc, argv, opts, 3), json;
    const char *dir;
    int port;
    char base[512], login[512];

    if (rc != 0)
        return rc;
    if ((rc = want_json(opts[2].value, &json)) != 0)
        return rc;
    dir = data_dir_default(opts[0].value);
    if (dir == NULL)
        return usage_error("init needs --data DIR (or RAMPART_DATA)");
    /* The URLs printed use the listener that serve will use by default. */
    rp_config_defaults(&cfg);
    if (rp_config_load_env(&cfg, environ, err, sizeof(err)) != 0) {
        fprintf(stderr, "rampart: %s\n", err);
        rp_config_free(&cfg);
        return EXIT_CONFIG;
    }
    port = cfg.listen.port;
    rp_config_free(&cfg);
    io.data_dir = dir;
    io.domain = opts[1].value;
    memset(&r, 0, sizeof(r));
    rc = rp_datadir_init(&io, &r, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "rampart: init: %s\n", err[0] ? err : rp_strerror(rc));
        return rc == RP_ECONFLICT ? EXIT_CONFLICT : (rc == RP_EINVAL ? EXIT_USAGE : EXIT_FAIL);
    }
    if (port == 443) {
        snprintf(base, sizeof(base), "https://%s/", r.domain);
        snprintf(login, sizeof(login), "https://login.%s/", r.domain);
    } else {
        snprintf(base, sizeof(base), "https://%s:%d/", r.domain, port);
        snprintf(login, sizeof(login), "https://login.%s:%d/", r.domain, port);
    }
    if (json) {
        char hosts[600];
        json_t *o;

        snprintf(hosts, sizeof(hosts), "127.0.0.1 %s login.%s", r.domain, r.domain);
        o = json_pack("{s:b,s:s,s:s,s:s,s:s,s:{s:s,s:s},s:[s]}", "created", r.created, "data", dir,
                      "domain", r.domain, "install_id", r.install_id, "ca_cert", r.ca_cert_path,
                      "urls", "management", base, "login", login, "hosts", hosts);
        /* The token exists only in this output: init never shows it again. */
        if (o != NULL && r.created)
            json_object_set_new(o, "admin_token", json_string(r.admin_token));
        print_json(o);
    } else {
        if (r.created)
            printf("Initialised %s for %s\n\n", dir, r.domain);
        else
            printf("%s is already initialised for %s; nothing changed\n\n", dir, r.domain);
        printf("  management API  %s\n  token service   %s\n  CA certificate  %s\n", base, login,
               r.ca_cert_path);
        if (r.created)
            printf("\nAdministrator token (shown once, stored only as a hash):\n\n  %s\n",
                   r.admin_token);
        printf("\nHost names must resolve to this machine; add to /etc/hosts:\n\n"
               "  127.0.0.1 %s login.%s\n",
               r.domain, r.domain);
    }
    OPENSSL_cleanse(r.admin_token, sizeof(r.admin_token));
    return EXIT_OK;
}

/* ---------------------------------------------------------------- serve */

static int cmd_serve(int argc, char **argv)
{
    opt opts[] = {{"data", 1, NULL},   {"listen", 1, NULL},       {"http-listen", 1, NULL},
                  {"static", 1, NULL}, {"workers", 1, NULL},      {"config", 1, NULL},
                  {"domain", 1, NULL}, {"check-config", 0, NULL}, {"output", 1, NULL}};
    static const char *const keys[] = {"data",    "listen", "http_listen", "static",
                                       "workers", NULL,     "domain"};
    size_t nopts = sizeof(opts) / sizeof(opts[0]);
    rp_config cfg;
    char err[1024] = "", path[4096];
    const char *dir, *file;
    int rc = parse_opts(argc, argv, opts, nopts), json;

    if (rc != 0)
        return rc;
    if ((rc = want_json(optv(opts, nopts, "output"), &json)) != 0)
        return rc;
    dir = data_dir_default(opts[0].value);
    if (dir == NULL)
        return usage_error("serve needs --data DIR (or RAMPART_DATA)");
    rp_config_defaults(&cfg);
    /* Precedence: defaults < config file < environment < flags. */
    file = optv(opts, nopts, "config");
    if (file == NULL && snprintf(path, sizeof(path), "%s/config.json", dir) < (int)sizeof(path))
        file = path;
    rc = rp_config_load_file(&cfg, file, err, sizeof(err));
    if (rc == RP_ENOENT && optv(opts, nopts, "config") == NULL)
        rc = 0;
    if (rc == 0)
        rc = rp_config_load_env(&cfg, environ, err, sizeof(err));
    if (rc == 0)
        rc = rp_config_set(&cfg, "data", dir, "--data", err, sizeof(err));
    for (size_t i = 1; rc == 0 && i < 7; i++)
        if (keys[i] != NULL && opts[i].value != NULL) {
            char src[64];
            snprintf(src, sizeof(src), "--%s", opts[i].name);
            rc = rp_config_set(&cfg, keys[i], opts[i].value, src, err, sizeof(err));
        }
    if (rc == 0)
        rc = rp_config_validate(&cfg, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "rampart: %s\n", err[0] ? err : rp_strerror(rc));
        rp_config_free(&cfg);
        return EXIT_CONFIG;
    }
    if (optv(opts, nopts, "check-config") != NULL) {
        rc = rp_server_check(&cfg, err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "rampart: %s\n", err);
            rp_config_free(&cfg);
            return EXIT_CONFIG;
        }
        if (json)
            print_json(json_pack("{s:b,s:o}", "valid", 1, "config", rp_config_to_json(&cfg)));
        else
            printf("configuration is valid\n");
        rp_config_free(&cfg);
        return EXIT_OK;
    }
    rc = rp_server_run(&cfg, err, sizeof(err));
    rp_config_free(&cfg);
    if (rc != 0) {
        fprintf(stderr, "rampart: serve: %s\n", err[0] ? err : rp_strerror(rc));
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

/* ---------------------------------------------------------------- status */

static int cmd_status(int argc, char **argv)
{
    opt opts[] = {{"url", 1, NULL}, {"ca", 1, NULL}, {"token", 1, NULL}, {"output", 1, NULL}};
    rp_client_settings cs;
    char err[1024] = "";
    rp_buf health, version;
    long st1 = 0, st2 = 0;
    int rc = parse_opts(argc, argv, opts, 4), json, exitc = EXIT_OK;
    json_t *v = NULL;

    if (rc != 0)
        return rc;
    if ((rc = want_json(opts[3].value, &json)) != 0)
        return rc;
    rc = rp_client_settings_load(&cs, NULL, environ, opts[0].value, opts[1].value, opts[2].value,
                                 err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "rampart: %s\n", err);
        return EXIT_CONFIG;
    }
    if (cs.url == NULL) {
        fprintf(stderr, "rampart: no server URL: pass --url, set RAMPART_URL or put \"url\" in "
                        "the client file\n");
        rp_client_settings_free(&cs);
        return EXIT_CONFIG;
    }
    rp_buf_init(&health, 1u << 16);
    rp_buf_init(&version, 1u << 16);
    rc = rp_client_get(&cs, "/health", &st1, &health, err, sizeof(err));
    if (rc == 0)
        rc = rp_client_get(&cs, "/api/version", &st2, &version, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "rampart: %s\n", err);
        exitc = EXIT_SERVER;
    } else if (st2 == 401 || st2 == 403) {
        fprintf(stderr, "rampart: the server refused the token (HTTP %ld)\n", st2);
        exitc = EXIT_UNAUTHORIZED;
    } else if (st1 != 200 || st2 != 200) {
        fprintf(stderr, "rampart: the server answered HTTP %ld/%ld\n", st1, st2);
        exitc = EXIT_SERVER;
    } else {
        v = json_loadb(version.data, version.len, JSON_REJECT_DUPLICATES, NULL);
        if (json) {
            print_json(json_pack("{s:s,s:s,s:O*}", "url", cs.url, "health", "ok", "server", v));
        } else {
            json_t *ver = v ? json_object_get(v, "version") : NULL;
            printf("%s: healthy, rampart %s\n", cs.url,
                   json_is_string(ver) ? json_string_value(ver) : "(unknown)");
        }
        json_decref(v);
    }
    rp_buf_free(&health);
    rp_buf_free(&version);
    rp_client_settings_free(&cs);
    return exitc;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "help";

    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return cmd_version(argc - 2, argv + 2);
    if (strcmp(cmd, "init") == 0)
        return cmd_init(argc - 2, argv + 2);
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(argc - 2, argv + 2);
    fprintf(stderr, "rampart: unknown command '%.60s'\n", cmd);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}
