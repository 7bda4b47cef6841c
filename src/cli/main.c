/*
 * main.c - the `rampart` command line: help, version, init, serve, status, and the dispatch to
 * the client commands in cli/cmd_*.c (login/logout, user, sp, identity, role, pim, audit,
 * vault, keys, unseal).
 *
 * Exit codes (stable; scripts rely on them, docs/operations.md lists them; RP_EXIT_* in
 * cli/cmd_common.h):
 *   0 success, 1 failure at run time, 2 usage error, 3 invalid configuration,
 *   4 init refused (the directory holds something else), 5 server unreachable or answered
 *   an error, 6 not authenticated or not authorized.
 * Every command that reports something accepts --output json.
 */
#include "base/buf.h"
#include "base/err.h"
#include "base/jsonmem.h"
#include "base/log.h"
#include "base/str.h"
#include "cli/client.h"
#include "cli/cmd_audit.h"
#include "cli/cmd_common.h"
#include "cli/cmd_iam.h"
#include "cli/cmd_keys.h"
#include "cli/cmd_login.h"
#include "cli/cmd_app.h"
#include "cli/cmd_fn.h"
#include "cli/cmd_vault.h"
#include "sandbox/sandbox.h"
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

static const char usage_text[] =
    "rampart - a self-hosted, secure-by-default platform for web apps and serverless code\n"
    "\n"
    "Usage:\n"
    "  rampart init   --data DIR [--domain D] [--output json]\n"
    "                 [--key-provider file|passphrase|pkcs11] [--passphrase-file FILE]\n"
    "                 [--pkcs11-module PATH] [--pkcs11-token LABEL] [--pkcs11-pin-file FILE]\n"
    "  rampart serve  --data DIR [--listen HOST:PORT] [--http-listen HOST:PORT|off]\n"
    "                 [--static DIR] [--workers N] [--domain D] [--config FILE]\n"
    "                 [--check-config]\n"
    "                 [--output json]\n"
    "  rampart status [--url URL] [--ca FILE] [--token TOKEN] [--output json]\n"
    "  rampart version [--output json]\n"
    "  rampart help\n"
    "\n"
    "Sign in (the token is kept in ~/.config/rampart/client.json, mode 0600):\n"
    "  rampart login  --service-principal --username APPID [--password SECRET] [--tenant T]\n"
    "  rampart login  --user NAME [--tenant T]      (secret from RAMPART_PASSWORD or stdin)\n"
    "  rampart logout\n"
    "\n"
    "Identity and access (each also takes --url URL --ca FILE --token TOKEN and\n"
    "--output json|table, except that identity exec has no --output and audit verify\n"
    "reads DIR locally; lists print tables, single objects text):\n"
    "  rampart user create NAME | user list | user delete NAME\n"
    "  rampart sp create NAME | sp list | sp show NAME | sp delete NAME\n"
    "  rampart sp credential add NAME [--years N | --days N | --cert FILE.pem]\n"
    "  rampart sp credential delete NAME KEYID\n"
    "  rampart identity create NAME | identity list | identity delete NAME\n"
    "  rampart identity exec --identity NAME [--identity NAME2 ...] [--ttl SECONDS]\n"
    "                        -- CMD [ARGS...]\n"
    "  rampart role definition list | show NAME|ID | create --file ROLE.json | delete ID\n"
    "  rampart role assign --principal P --role ROLE --scope SCOPE [--expires WHEN]\n"
    "  rampart role list [--scope SCOPE] [--principal P] | role remove ID\n"
    "  rampart pim eligible --principal P --role ROLE --scope SCOPE [--max-duration 8h]\n"
    "                       [--approver P ...] [--expires WHEN]\n"
    "  rampart pim list [--all]\n"
    "  rampart pim activate (--eligibility ID | --role ROLE --scope SCOPE)\n"
    "                       --justification TEXT [--duration 2h]\n"
    "  rampart pim approve ID [--justification TEXT] | pim deny ID [--justification TEXT]\n"
    "  rampart pim deactivate ID | pim remove ELIGIBILITY_ID\n"
    "  rampart audit tail [--after SEQ] [--limit N] [--follow]\n"
    "  rampart audit verify [--data DIR] [--pub FILE] [--output json]\n"
    "\n"
    "Keys and vaults (keys and vault also take --url URL --ca FILE --token TOKEN and\n"
    "--output json|table):\n"
    "  rampart vault create NAME [--purge-protection] [--retention-days 7..90]\n"
    "                     [--cmk VAULT/keys/KEY[/VERSION]|none]\n"
    "  rampart vault list | vault show NAME | vault delete NAME\n"
    "  rampart keys status | keys rotate-root\n"
    "  rampart unseal [--url http://127.0.0.1:8459] [--passphrase-file FILE]\n"
    "                 (loopback only: the sealed server's own listener)\n"
    "Vault names: 3-24 of a-z 0-9 '-', a letter first, a letter or digit last, no '--'.\n"
    "A passphrase (init: 12 characters or more) comes from --passphrase-file (mode 0600),\n"
    "RAMPART_PASSPHRASE or the terminal; a PKCS#11 PIN from --pkcs11-pin-file or\n"
    "RAMPART_PKCS11_PIN.\n"
    "\n"
    "Apps (App Service; also --url/--ca/--token/--output):\n"
    "  rampart app create NAME [--static DIR|ZIP] [--command CMD]   https://NAME.D/\n"
    "  rampart app deploy NAME DIR|ZIP [--allow-anonymous]   a new release (zip deploy); the flag\n"
    "                                               lets anonymous HTTP functions in\n"
    "  rampart app list | app show NAME | app delete NAME\n"
    "  rampart app releases NAME | app rollback NAME [--to RELEASE]\n"
    "  rampart app config NAME [--min-tls 1.2|1.3] [--client-cert off|required|optional|\n"
    "                  optional-interactive] [--client-cert-exclude '/a;/b'] [--client-ca PEM]\n"
    "                  [--access-rules JSON] [--access-default allow|deny]\n"
    "                  [--scm-access-rules JSON] [--scm-access-default allow|deny]\n"
    "                  [--scm-use-main true|false] [--command CMD]\n"
    "                  [--tier shared|isolated] [--memory-mb N] [--pids N] [--cpu-percent N]\n"
    "  rampart app slot create|delete NAME SLOT | app slot list NAME   NAME-SLOT.D\n"
    "  rampart app swap NAME SLOT                   swap a slot into production\n"
    "  rampart app logs NAME [--follow]             what the app's process printed\n"
    "  rampart app settings list NAME               app settings, Key Vault reference states\n"
    "  rampart app settings set NAME K=V... | app settings delete NAME K...\n"
    "App names: 2-60 of a-z 0-9 '-', a letter or digit first and last.\n"
    "\n"
    "Function apps (an app without a command whose release has host.json):\n"
    "  rampart fn keys list APP [--function F]      the master, host and system keys, or F's\n"
    "  rampart fn keys set APP NAME VALUE [--function F | --system]\n"
    "  rampart fn keys rotate APP NAME [--function F | --system]   (_master --system: the master "
    "key)\n"
    "  rampart fn keys delete APP NAME [--function F | --system]\n"
    "  rampart fn logs APP [--function F] [--limit N] [--follow]   the invocation log\n"
    "  rampart fn metrics APP                       counters per function, calls running now\n"
    "\n"
    "P is an object id, a client id or kind:name (user:alice, sp:ci, identity:api).\n"
    "WHEN is a duration from now (2h, 30m, 7d, PT2H) or a time (2026-11-29T07:00:00Z).\n"
    "\n"
    "Environment: RAMPART_DATA (default for --data), RAMPART_URL, RAMPART_CA, RAMPART_TOKEN,\n"
    "RAMPART_TENANT, RAMPART_PASSWORD (client commands), RAMPART_PASSPHRASE,\n"
    "RAMPART_PKCS11_PIN, RAMPART_UNSEAL_URL, RAMPART_<KEY> for any configuration key\n"
    "(docs/operations.md).\n"
    "Exit codes: 0 ok, 1 failure, 2 usage, 3 configuration, 4 init refused or conflict,\n"
    "            5 server error or unreachable, 6 not authenticated or not authorized.\n";

/* Parses options only (no positional arguments); prints a usage error. 0 or RP_EXIT_USAGE. */
static int parse_opts(int argc, char **argv, rp_opt *opts, size_t nopts)
{
    rp_args a;
    char err[256];

    if (rp_args_parse(argc, argv, opts, nopts, 0, 0, &a, err, sizeof(err)) != 0)
        return rp_cli_usage_error("%s", err);
    return 0;
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
    rp_opt opts[] = {RP_OPT("output", RP_OPT_VALUE)};
    int rc = parse_opts(argc, argv, opts, 1), json;

    if (rc != 0)
        return rc;
    if ((rc = rp_cli_output(opts[0].value, &json)) != 0)
        return rc;
    if (json)
        rp_cli_print_json(json_pack("{s:s,s:s}", "name", "rampart", "version", RP_VERSION));
    else
        printf("rampart %s\n", RP_VERSION);
    return RP_EXIT_OK;
}

/* ---------------------------------------------------------------- init */

static int cmd_init(int argc, char **argv)
{
    rp_opt opts[] = {RP_OPT("data", RP_OPT_VALUE), RP_OPT("domain", RP_OPT_VALUE),
                     RP_OPT("output", RP_OPT_VALUE), RP_OPTS_INIT_KEYS};
    rp_init_opts io;
    rp_init_result r;
    rp_cmd_init_keys keys;
    rp_config cfg;
    char err[1024] = "";
    int rc = parse_opts(argc, argv, opts, sizeof(opts) / sizeof(opts[0])), json;
    const char *dir;
    int port;
    char base[512], login[512];

    if (rc != 0)
        return rc;
    if ((rc = rp_cli_output(opts[2].value, &json)) != 0)
        return rc;
    dir = data_dir_default(opts[0].value);
    if (dir == NULL)
        return rp_cli_usage_error("init needs --data DIR (or RAMPART_DATA)");
    /* The URLs printed use the listener that serve will use by default. */
    rp_config_defaults(&cfg);
    if (rp_config_load_env(&cfg, environ, err, sizeof(err)) != 0) {
        fprintf(stderr, "rampart: %s\n", err);
        rp_config_free(&cfg);
        return RP_EXIT_CONFIG;
    }
    port = cfg.listen.port;
    rp_config_free(&cfg);
    /* The passphrase or PIN lives in keys only for the call to rp_datadir_init. */
    rc = rp_cmd_init_keys_load(&keys, opts, sizeof(opts) / sizeof(opts[0]), environ);
    if (rc != RP_EXIT_OK) {
        rp_cmd_init_keys_wipe(&keys);
        return rc;
    }
    io.data_dir = dir;
    io.domain = opts[1].value;
    io.keys = &keys.ko;
    memset(&r, 0, sizeof(r));
    rc = rp_datadir_init(&io, &r, err, sizeof(err));
    rp_cmd_init_keys_wipe(&keys);
    if (rc != 0) {
        fprintf(stderr, "rampart: init: %s\n", err[0] ? err : rp_strerror(rc));
        return rc == RP_ECONFLICT ? RP_EXIT_CONFLICT
                                  : (rc == RP_EINVAL ? RP_EXIT_USAGE : RP_EXIT_FAIL);
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
        rp_cli_print_json(o);
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
    return RP_EXIT_OK;
}

/* ---------------------------------------------------------------- serve */

static int cmd_serve(int argc, char **argv)
{
    rp_opt opts[] = {RP_OPT("data", RP_OPT_VALUE),        RP_OPT("listen", RP_OPT_VALUE),
                     RP_OPT("http-listen", RP_OPT_VALUE), RP_OPT("static", RP_OPT_VALUE),
                     RP_OPT("workers", RP_OPT_VALUE),     RP_OPT("config", RP_OPT_VALUE),
                     RP_OPT("domain", RP_OPT_VALUE),      RP_OPT("check-config", RP_OPT_FLAG),
                     RP_OPT("output", RP_OPT_VALUE)};
    static const char *const keys[] = {"data",    "listen", "http_listen", "static",
                                       "workers", NULL,     "domain"};
    size_t nopts = sizeof(opts) / sizeof(opts[0]);
    rp_config cfg;
    char err[1024] = "", path[4096];
    const char *dir, *file;
    int rc = parse_opts(argc, argv, opts, nopts), json;

    if (rc != 0)
        return rc;
    if ((rc = rp_cli_output(rp_opt_get(opts, nopts, "output"), &json)) != 0)
        return rc;
    dir = data_dir_default(opts[0].value);
    if (dir == NULL)
        return rp_cli_usage_error("serve needs --data DIR (or RAMPART_DATA)");
    rp_config_defaults(&cfg);
    /* Precedence: defaults < config file < environment < flags. */
    file = rp_opt_get(opts, nopts, "config");
    if (file == NULL && snprintf(path, sizeof(path), "%s/config.json", dir) < (int)sizeof(path))
        file = path;
    rc = rp_config_load_file(&cfg, file, err, sizeof(err));
    if (rc == RP_ENOENT && rp_opt_get(opts, nopts, "config") == NULL)
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
        return RP_EXIT_CONFIG;
    }
    if (rp_opt_get(opts, nopts, "check-config") != NULL) {
        rc = rp_server_check(&cfg, err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "rampart: %s\n", err);
            rp_config_free(&cfg);
            return RP_EXIT_CONFIG;
        }
        if (json)
            rp_cli_print_json(
                json_pack("{s:b,s:o}", "valid", 1, "config", rp_config_to_json(&cfg)));
        else
            printf("configuration is valid\n");
        rp_config_free(&cfg);
        return RP_EXIT_OK;
    }
    rc = rp_server_run(&cfg, err, sizeof(err));
    rp_config_free(&cfg);
    if (rc != 0) {
        fprintf(stderr, "rampart: serve: %s\n", err[0] ? err : rp_strerror(rc));
        return RP_EXIT_FAIL;
    }
    return RP_EXIT_OK;
}

/* ---------------------------------------------------------------- status */

static int cmd_status(int argc, char **argv)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_client_settings cs;
    char err[1024] = "";
    rp_buf health, version;
    long st1 = 0, st2 = 0;
    int rc = parse_opts(argc, argv, opts, 4), json, exitc = RP_EXIT_OK;
    json_t *v = NULL;

    if (rc != 0)
        return rc;
    if ((rc = rp_cli_output(opts[3].value, &json)) != 0)
        return rc;
    rc = rp_cli_connect(&cs, opts, 4, environ, 1);
    if (rc != RP_EXIT_OK)
        return rc;
    rp_buf_init(&health, 1u << 16);
    rp_buf_init(&version, 1u << 16);
    rc = rp_client_get(&cs, "/health", &st1, &health, err, sizeof(err));
    if (rc == 0)
        rc = rp_client_get(&cs, "/api/version", &st2, &version, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "rampart: %s\n", err);
        exitc = RP_EXIT_SERVER;
    } else if (st2 == 401 || st2 == 403) {
        fprintf(stderr, "rampart: the server refused the token (HTTP %ld)\n", st2);
        exitc = RP_EXIT_UNAUTHORIZED;
    } else if (st1 != 200 || st2 != 200) {
        fprintf(stderr, "rampart: the server answered HTTP %ld/%ld\n", st1, st2);
        exitc = RP_EXIT_SERVER;
    } else {
        v = json_loadb(version.data, version.len, JSON_REJECT_DUPLICATES, NULL);
        if (json) {
            rp_cli_print_json(
                json_pack("{s:s,s:s,s:O*}", "url", cs.url, "health", "ok", "server", v));
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

/* Client commands: cli/cmd_*.c, each given the arguments after its name. */
static const struct {
    const char *name;
    int (*fn)(int argc, char **argv, char **envp);
} client_cmds[] = {
    {"login", rp_cmd_login}, {"logout", rp_cmd_logout},     {"user", rp_cmd_user},
    {"sp", rp_cmd_sp},       {"identity", rp_cmd_identity}, {"role", rp_cmd_role},
    {"pim", rp_cmd_pim},     {"audit", rp_cmd_audit},       {"vault", rp_cmd_vault},
    {"app", rp_cmd_app},     {"keys", rp_cmd_keys},         {"unseal", rp_cmd_unseal},
    {"fn", rp_cmd_fn},
};

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "help";

    /* The app sandbox's launcher and init step (sandbox/sandbox.h): before anything else runs,
     * as they execute bubblewrap or the app with nothing of the server set up. */
    if (strcmp(cmd, RP_SANDBOX_VERB) == 0)
        return rp_sandbox_main(argc - 1, argv + 1);
    /* Before jansson allocates anything: its freed blocks are wiped from here on. */
    rp_jsonmem_install();
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage_text, stdout);
        return RP_EXIT_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return cmd_version(argc - 2, argv + 2);
    if (strcmp(cmd, "init") == 0)
        return cmd_init(argc - 2, argv + 2);
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(argc - 2, argv + 2);
    for (size_t i = 0; i < sizeof(client_cmds) / sizeof(client_cmds[0]); i++)
        if (strcmp(cmd, client_cmds[i].name) == 0)
            return client_cmds[i].fn(argc - 2, argv + 2, environ);
    fprintf(stderr, "rampart: unknown command '%.60s'\n", cmd);
    fputs(usage_text, stderr);
    return RP_EXIT_USAGE;
}
