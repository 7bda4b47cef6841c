/*
 * cmd_vault.c - `rampart vault create|list|show|delete`: thin clients of /api/vaults
 * (cmd_vault.h). Each subcommand checks the vault name and the options it can judge without the
 * server (a bad name is a usage error, never a request path), sends one request through
 * rp_cli_request, and prints a table, "label  value" lines or the server's JSON.
 *
 * The only addition to rp_cli_call's mapping of answers to exit codes is HTTP 409: for vaults
 * it means the request contradicts settings that cannot change (retention, purge protection)
 * or a purge-protected vault that still holds objects, which scripts must tell apart from a
 * server failure, so it is exit 4 (RP_EXIT_CONFLICT); rp_cli_call has already printed the
 * server's reason.
 */
#include "cli/cmd_vault.h"
#include "base/str.h"
#include "cli/cmd_common.h"

#include <stdio.h>
#include <string.h>

#define PATH_CAP 256
#define NOPTS(a) (sizeof(a) / sizeof((a)[0]))

#define VAULT_NAME_MIN 3
#define VAULT_NAME_MAX 24

typedef int (*sub_fn)(int argc, char **argv, char **envp);

typedef struct sub {
    const char *name;
    sub_fn fn;
} sub;

static const rp_col vault_fields[] = {
    {"name", "name", RP_COL_TEXT},
    {"uri", "properties.vaultUri", RP_COL_TEXT},
    {"purge protection", "properties.enablePurgeProtection", RP_COL_TEXT},
    {"retention days", "properties.softDeleteRetentionInDays", RP_COL_TEXT},
    {"customer key", "properties.encryption.keyId", RP_COL_TEXT},
    {"created", "properties.createdAt", RP_COL_TIME},
};

static const rp_col vault_cols[] = {
    {"NAME", "name", RP_COL_TEXT},
    {"URI", "properties.vaultUri", RP_COL_TEXT},
    {"PURGE PROTECTION", "properties.enablePurgeProtection", RP_COL_TEXT},
    {"RETENTION", "properties.softDeleteRetentionInDays", RP_COL_TEXT},
};

int rp_cmd_vault_name_valid(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;

    if (n < VAULT_NAME_MIN || n > VAULT_NAME_MAX || !(name[0] >= 'a' && name[0] <= 'z'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return 0;
        if (ch == '-' && name[i - 1] == '-')
            return 0;
    }
    return name[n - 1] != '-';
}

/* Runs the subcommand argv[0] from table. */
static int dispatch(const sub *table, size_t n, const char *names, int argc, char **argv,
                    char **envp)
{
    if (argc < 1)
        return rp_cli_usage_error("vault needs a subcommand: %s", names);
    for (size_t i = 0; i < n; i++)
        if (strcmp(argv[0], table[i].name) == 0)
            return table[i].fn(argc - 1, argv + 1, envp);
    return rp_cli_usage_error("unknown vault subcommand '%.60s' (expected %s)", argv[0], names);
}

/* Checks the vault name and builds /api/vaults/NAME into path[PATH_CAP]; a usage error if not. */
static int vault_path(const char *name, char path[PATH_CAP])
{
    if (!rp_cmd_vault_name_valid(name) || rp_cli_path(path, PATH_CAP, "/api/vaults/%s", name) != 0)
        return rp_cli_usage_error("invalid vault name '%.40s': 3-24 characters of a-z, 0-9 and "
                                  "'-', starting with a letter, ending with a letter or digit, "
                                  "without '--'",
                                  name);
    return RP_EXIT_OK;
}

/* rp_cli_request, with HTTP 409 as RP_EXIT_CONFLICT (see the file comment). */
static int vault_request(rp_cli_cmd *c, const char *method, const char *path, const json_t *body,
                         json_t **answer, long *status)
{
    long st = 0;
    int rc = rp_cli_request(c, method, path, body, answer, &st);

    if (status != NULL)
        *status = st;
    return rc == RP_EXIT_SERVER && st == 409 ? RP_EXIT_CONFLICT : rc;
}

static int vault_create(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN, RP_OPT("purge-protection", RP_OPT_FLAG),
                     RP_OPT("retention-days", RP_OPT_VALUE), RP_OPT("cmk", RP_OPT_VALUE)};
    const char *days, *cmk;
    rp_cli_cmd c;
    json_t *body = NULL, *answer = NULL;
    char path[PATH_CAP];
    uint64_t n = 0;
    long status = 0;
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1,
                          "rampart vault create NAME [--purge-protection] [--retention-days N] "
                          "[--cmk KEYID|none]",
                          envp);

    if (rc != RP_EXIT_OK)
        return rc;
    if ((rc = vault_path(c.args.pos[0], path)) != RP_EXIT_OK)
        goto out;
    days = rp_opt_get(opts, NOPTS(opts), "retention-days");
    if (days != NULL && (rp_parse_u64(days, strlen(days), RP_CMD_VAULT_RETENTION_MAX, &n) != 0 ||
                         n < RP_CMD_VAULT_RETENTION_MIN)) {
        rc = rp_cli_usage_error("--retention-days must be a whole number from %d to %d",
                                RP_CMD_VAULT_RETENTION_MIN, RP_CMD_VAULT_RETENTION_MAX);
        goto out;
    }
    /* Only what was asked for: on an existing vault, what is left out stays as it is. */
    body = rp_opt_get(opts, NOPTS(opts), "purge-protection") != NULL
               ? json_pack("{s:b}", "purgeProtection", 1)
               : json_object();
    /* --cmk: a key id puts the vault's KEK under that key; "none" goes back to the root key. */
    cmk = rp_opt_get(opts, NOPTS(opts), "cmk");
    if (body != NULL && cmk != NULL &&
        json_object_set_new(body, "customerManagedKey",
                            strcmp(cmk, "none") == 0 ? json_null() : json_string(cmk)) != 0) {
        rc = rp_cli_fail(RP_EXIT_FAIL, "out of memory");
        goto out;
    }
    if (body == NULL || (days != NULL && json_object_set_new(body, "retentionDays",
                                                             json_integer((json_int_t)n)) != 0)) {
        rc = rp_cli_fail(RP_EXIT_FAIL, "out of memory");
        goto out;
    }
    rc = vault_request(&c, "PUT", path, body, &answer, &status);
    if (rc != RP_EXIT_OK)
        goto out;
    if (c.json) {
        rp_cli_print_json(json_incref(answer));
        goto out;
    }
    fputs(status == 201 ? "Created vault " : "Updated vault ", stdout);
    rp_cli_put_safe(stdout, c.args.pos[0]);
    fputs("\n\n", stdout);
    rp_cli_fields(stdout, vault_fields, NOPTS(vault_fields), answer);
out:
    json_decref(answer);
    json_decref(body);
    rp_cli_end(&c);
    return rc;
}

static int vault_list(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *answer = NULL;
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 0, 0, "rampart vault list", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rc = vault_request(&c, "GET", "/api/vaults", NULL, &answer, NULL);
    if (rc == RP_EXIT_OK) {
        if (c.json)
            rp_cli_print_json(json_incref(answer));
        else if (rp_cli_rows(answer) == NULL)
            rc = rp_cli_fail(RP_EXIT_SERVER, "GET /api/vaults: the answer is not a list");
        else
            rp_cli_table(stdout, vault_cols, NOPTS(vault_cols), rp_cli_rows(answer), "no vaults");
    }
    json_decref(answer);
    rp_cli_end(&c);
    return rc;
}

static int vault_show(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *answer = NULL;
    char path[PATH_CAP];
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1, "rampart vault show NAME", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rc = vault_path(c.args.pos[0], path);
    if (rc == RP_EXIT_OK)
        rc = vault_request(&c, "GET", path, NULL, &answer, NULL);
    if (rc == RP_EXIT_OK) {
        if (c.json)
            rp_cli_print_json(json_incref(answer));
        else
            rp_cli_fields(stdout, vault_fields, NOPTS(vault_fields), answer);
    }
    json_decref(answer);
    rp_cli_end(&c);
    return rc;
}

static int vault_delete(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    char path[PATH_CAP];
    int rc =
        rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1, "rampart vault delete NAME", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rc = vault_path(c.args.pos[0], path);
    if (rc == RP_EXIT_OK)
        rc = vault_request(&c, "DELETE", path, NULL, NULL, NULL);
    if (rc == RP_EXIT_OK && c.json) {
        rp_cli_print_json(json_pack("{s:s,s:s}", "deleted", "vault", "name", c.args.pos[0]));
    } else if (rc == RP_EXIT_OK) {
        fputs("Deleted vault ", stdout);
        rp_cli_put_safe(stdout, c.args.pos[0]);
        putchar('\n');
    }
    rp_cli_end(&c);
    return rc;
}

int rp_cmd_vault(int argc, char **argv, char **envp)
{
    static const sub t[] = {{"create", vault_create},
                            {"list", vault_list},
                            {"show", vault_show},
                            {"delete", vault_delete}};

    return dispatch(t, NOPTS(t), "create, list, show, delete", argc, argv, envp);
}
