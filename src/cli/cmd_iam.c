/*
 * cmd_iam.c - `rampart user|sp|identity|role|pim ...`: thin clients of the management API
 * (docs/iam.md). Each subcommand parses its options, builds one request (two for
 * `pim activate --role`), and prints the answer as a table, as fields, or as the server's
 * JSON. The server decides everything else (names, permissions, limits); the client only
 * refuses what it can tell is wrong before sending (missing arguments, bad durations, a PEM
 * file holding a private key).
 *
 * Secrets (client secrets from `user create` and `sp credential add`) are printed once, on
 * stdout, with the warning on stderr so it shows even when stdout is captured.
 */
#include "cli/cmd_iam.h"
#include "base/err.h"
#include "base/file.h"
#include "base/str.h"
#include "cli/cmd_common.h"
#include "cli/cmd_exec.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PATH_CAP 2048
#define NOPTS(a) (sizeof(a) / sizeof((a)[0]))

typedef int (*sub_fn)(int argc, char **argv, char **envp);

typedef struct sub {
    const char *name;
    sub_fn fn;
} sub;

/* Runs the subcommand argv[0] of group from table. */
static int dispatch(const char *group, const sub *table, size_t n, const char *names, int argc,
                    char **argv, char **envp)
{
    if (argc < 1)
        return rp_cli_usage_error("%s needs a subcommand: %s", group, names);
    for (size_t i = 0; i < n; i++)
        if (strcmp(argv[0], table[i].name) == 0)
            return table[i].fn(argc - 1, argv + 1, envp);
    return rp_cli_usage_error("unknown %s subcommand '%.60s' (expected %s)", group, argv[0], names);
}

/* Builds a path; a name that cannot be a path segment is a usage error. */
#define BUILD_PATH(rcvar, buf, ...)                                                                \
    do {                                                                                           \
        if (rp_cli_path((buf), sizeof(buf), __VA_ARGS__) != 0)                                     \
            (rcvar) = rp_cli_usage_error("invalid or too long name or id in the request path");    \
    } while (0)

const char *rp_cmd_id_tail(const char *id)
{
    const char *slash;

    if (id == NULL)
        return NULL;
    slash = strrchr(id, '/');
    return slash != NULL && slash[1] != '\0' ? slash + 1 : id;
}

/* Prints "Deleted <what> <name>" or its JSON form. */
static void print_deleted(int json, const char *what, const char *name)
{
    if (json) {
        rp_cli_print_json(json_pack("{s:s,s:s}", "deleted", what, "name", name));
        return;
    }
    printf("Deleted %s ", what);
    rp_cli_put_safe(stdout, name);
    putchar('\n');
}

/* On stderr, so it is seen even when stdout goes to a file or a pipe. */
static void warn_secret(void)
{
    fflush(stdout);
    fputs("rampart: the secret is shown only now and cannot be shown again: store it in a secret "
          "manager.\n",
          stderr);
}

/* Prints a secret from answer (member "secret") with the one-time warning on stderr. */
static void print_secret(const json_t *answer, const char *login_hint)
{
    json_t *secret = json_object_get(answer, "secret");
    json_t *exp = rp_cli_json_path(answer, "expiresAt|secretExpiresAt|credential.expiresAt");
    char when[64];

    if (!json_is_string(secret))
        return;
    fputs("\n  secret      ", stdout);
    rp_cli_put_safe(stdout, json_string_value(secret));
    putchar('\n');
    if (exp != NULL) {
        rp_col c = {"expires", "expiresAt|secretExpiresAt|credential.expiresAt", RP_COL_TIME};
        rp_cli_cell(answer, &c, when, sizeof(when));
        printf("  expires     %s\n", when);
    }
    if (login_hint != NULL)
        printf("\n%s\n", login_hint);
    fflush(stdout);
    fputc('\n', stderr);
    warn_secret();
}

/* ---------------------------------------------------------------- principals */

static const rp_col principal_fields[] = {
    {"name", "name|displayName", RP_COL_TEXT},
    {"kind", "kind|type", RP_COL_TEXT},
    {"object id", "objectId|oid|principalId|id", RP_COL_TEXT},
    {"client id", "appId|clientId|appid", RP_COL_TEXT},
    {"created", "createdAt|created", RP_COL_TIME},
};

/* POST /api/<collection> {"name"} and print the principal (and a secret if one came back). */
static int create_named(int argc, char **argv, char **envp, const char *collection,
                        const char *what, const char *usage)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *body = NULL, *answer = NULL;
    char path[PATH_CAP];
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1, usage, envp);

    if (rc != RP_EXIT_OK)
        return rc;
    BUILD_PATH(rc, path, collection);
    if (rc != RP_EXIT_OK)
        goto out;
    body = json_pack("{s:s}", "name", c.args.pos[0]);
    if (body == NULL) {
        rc = rp_cli_usage_error("the name must be UTF-8 text");
        goto out;
    }
    rc = rp_cli_request(&c, "POST", path, body, &answer, NULL);
    if (rc != RP_EXIT_OK)
        goto out;
    if (c.json) {
        rp_cli_print_json(json_incref(answer));
        if (json_is_string(json_object_get(answer, "secret")))
            warn_secret();
        goto out;
    }
    printf("Created %s ", what);
    rp_cli_put_safe(stdout, c.args.pos[0]);
    fputs("\n\n", stdout);
    rp_cli_fields(stdout, principal_fields, NOPTS(principal_fields), answer);
    if (strcmp(what, "user") == 0) {
        char hint[200];
        snprintf(hint, sizeof(hint), "Sign in with: rampart login --user %.64s", c.args.pos[0]);
        print_secret(answer, hint);
    } else if (strcmp(what, "service principal") == 0) {
        if (json_is_string(json_object_get(answer, "secret")))
            print_secret(answer, NULL);
        else
            printf("\nAdd a credential with: rampart sp credential add %.64s\n", c.args.pos[0]);
    }
out:
    json_decref(answer);
    json_decref(body);
    rp_cli_end(&c);
    return rc;
}

/* GET path and print rows as a table (or the answer as JSON). */
static int list_table(int argc, char **argv, char **envp, const char *path, const rp_col *cols,
                      size_t ncols, const char *empty, const char *usage)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *answer = NULL;
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 0, 0, usage, envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rc = rp_cli_request(&c, "GET", path, NULL, &answer, NULL);
    if (rc == RP_EXIT_OK) {
        if (c.json)
            rp_cli_print_json(json_incref(answer));
        else if (rp_cli_rows(answer) == NULL)
            rc = rp_cli_fail(RP_EXIT_SERVER, "GET %s: the answer is not a list", path);
        else
            rp_cli_table(stdout, cols, ncols, rp_cli_rows(answer), empty);
    }
    json_decref(answer);
    rp_cli_end(&c);
    return rc;
}

/* DELETE <fmt with one %s> and print what was deleted. */
static int delete_named(int argc, char **argv, char **envp, const char *fmt, const char *what,
                        const char *usage)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    char path[PATH_CAP];
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1, usage, envp);

    if (rc != RP_EXIT_OK)
        return rc;
    BUILD_PATH(rc, path, fmt, c.args.pos[0]);
    if (rc == RP_EXIT_OK)
        rc = rp_cli_request(&c, "DELETE", path, NULL, NULL, NULL);
    if (rc == RP_EXIT_OK)
        print_deleted(c.json, what, c.args.pos[0]);
    rp_cli_end(&c);
    return rc;
}

/* ---- users ---- */

static const rp_col user_cols[] = {
    {"NAME", "name|displayName", RP_COL_TEXT},
    {"OBJECT ID", "objectId|oid|id", RP_COL_TEXT},
    {"CREATED", "createdAt|created", RP_COL_TIME},
};

static int user_create(int argc, char **argv, char **envp)
{
    return create_named(argc, argv, envp, "/api/users", "user", "rampart user create NAME");
}

static int user_list(int argc, char **argv, char **envp)
{
    return list_table(argc, argv, envp, "/api/users", user_cols, NOPTS(user_cols), "no users",
                      "rampart user list");
}

static int user_delete(int argc, char **argv, char **envp)
{
    return delete_named(argc, argv, envp, "/api/users/%s", "user", "rampart user delete NAME");
}

int rp_cmd_user(int argc, char **argv, char **envp)
{
    static const sub t[] = {{"create", user_create}, {"list", user_list}, {"delete", user_delete}};

    return dispatch("user", t, NOPTS(t), "create, list, delete", argc, argv, envp);
}

/* ---- service principals ---- */

static const rp_col sp_cols[] = {
    {"NAME", "name|displayName", RP_COL_TEXT},
    {"APP ID", "appId|clientId|appid", RP_COL_TEXT},
    {"OBJECT ID", "objectId|oid|id", RP_COL_TEXT},
    {"CREDENTIALS", "credentials", RP_COL_COUNT},
};

static const rp_col cred_cols[] = {
    {"KEY ID", "keyId|id", RP_COL_TEXT},
    {"TYPE", "type", RP_COL_TEXT},
    {"EXPIRES", "expiresAt|endDateTime", RP_COL_TIME},
    {"EXPIRED", "expired", RP_COL_TEXT},
    {"THUMBPRINT", "thumbprint", RP_COL_TEXT},
};

static int sp_create(int argc, char **argv, char **envp)
{
    return create_named(argc, argv, envp, "/api/servicePrincipals", "service principal",
                        "rampart sp create NAME");
}

static int sp_list(int argc, char **argv, char **envp)
{
    return list_table(argc, argv, envp, "/api/servicePrincipals", sp_cols, NOPTS(sp_cols),
                      "no service principals", "rampart sp list");
}

static int sp_show(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *answer = NULL, *creds;
    char path[PATH_CAP];
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1, "rampart sp show NAME", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    BUILD_PATH(rc, path, "/api/servicePrincipals/%s", c.args.pos[0]);
    if (rc == RP_EXIT_OK)
        rc = rp_cli_request(&c, "GET", path, NULL, &answer, NULL);
    if (rc == RP_EXIT_OK && c.json) {
        rp_cli_print_json(json_incref(answer));
    } else if (rc == RP_EXIT_OK) {
        rp_cli_fields(stdout, principal_fields, NOPTS(principal_fields), answer);
        creds = json_object_get(answer, "credentials");
        if (json_is_array(creds)) {
            putchar('\n');
            rp_cli_table(stdout, cred_cols, NOPTS(cred_cols), creds, "no credentials");
        }
    }
    json_decref(answer);
    rp_cli_end(&c);
    return rc;
}

static int sp_delete(int argc, char **argv, char **envp)
{
    return delete_named(argc, argv, envp, "/api/servicePrincipals/%s", "service principal",
                        "rampart sp delete NAME");
}

/* Reads a certificate PEM file for upload; refuses one that holds a private key. */
static int read_cert(const char *file, rp_buf *pem)
{
    int rc = rp_file_read(file, pem);

    if (rc != 0)
        return rp_cli_fail(rc == RP_ENOENT ? RP_EXIT_USAGE : RP_EXIT_FAIL, "%s: %s", file,
                           rc == RP_ENOENT    ? "no such file"
                           : rc == RP_ETOOBIG ? "larger than 64 KiB"
                                              : rp_strerror(rc));
    if (pem->len == 0 || memchr(pem->data, '\0', pem->len) != NULL ||
        strstr(pem->data, "-----BEGIN CERTIFICATE-----") == NULL)
        return rp_cli_fail(RP_EXIT_USAGE, "%s: not a PEM certificate", file);
    /* Only the public half goes to the server: a private key in the file is a mistake. */
    if (strstr(pem->data, "PRIVATE KEY-----") != NULL)
        return rp_cli_fail(RP_EXIT_USAGE,
                           "%s: holds a private key; upload only the certificate "
                           "(openssl x509 -in %s -out cert.pem)",
                           file, file);
    return RP_EXIT_OK;
}

/* A positive whole number up to max from an option value. */
static int option_count(const char *name, const char *v, uint64_t max, uint64_t *out)
{
    if (rp_parse_u64(v, strlen(v), max, out) != 0 || *out == 0)
        return rp_cli_usage_error("--%s must be a whole number from 1 to %llu", name,
                                  (unsigned long long)max);
    return RP_EXIT_OK;
}

static int sp_credential_add(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN, RP_OPT("years", RP_OPT_VALUE), RP_OPT("days", RP_OPT_VALUE),
                     RP_OPT("cert", RP_OPT_VALUE)};
    const char *years, *days, *cert;
    rp_cli_cmd c;
    json_t *body = NULL, *answer = NULL;
    char path[PATH_CAP];
    rp_buf pem;
    uint64_t n = 0;
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1,
                          "rampart sp credential add NAME [--years N | --days N | --cert FILE.pem]",
                          envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rp_buf_init(&pem, 64 * 1024);
    years = rp_opt_get(opts, NOPTS(opts), "years");
    days = rp_opt_get(opts, NOPTS(opts), "days");
    cert = rp_opt_get(opts, NOPTS(opts), "cert");
    if ((years != NULL) + (days != NULL) + (cert != NULL) > 1) {
        rc = rp_cli_usage_error("--years, --days and --cert exclude each other");
        goto out;
    }
    BUILD_PATH(rc, path, "/api/servicePrincipals/%s/credentials", c.args.pos[0]);
    if (rc != RP_EXIT_OK)
        goto out;
    if (cert != NULL) {
        if ((rc = read_cert(cert, &pem)) != RP_EXIT_OK)
            goto out;
        body = json_pack("{s:s,s:s}", "type", "certificate", "certificate", pem.data);
        if (body == NULL) {
            rc = rp_cli_fail(RP_EXIT_USAGE, "%s: not a PEM certificate (not text)", cert);
            goto out;
        }
    } else {
        if (years != NULL && (rc = option_count("years", years, 100, &n)) != RP_EXIT_OK)
            goto out;
        if (years != NULL)
            n *= 365;
        if (days != NULL && (rc = option_count("days", days, 36500, &n)) != RP_EXIT_OK)
            goto out;
        body = n > 0 ? json_pack("{s:s,s:I}", "type", "secret", "expiresInDays", (json_int_t)n)
                     : json_pack("{s:s}", "type", "secret");
    }
    rc = rp_cli_request(&c, "POST", path, body, &answer, NULL);
    if (rc != RP_EXIT_OK)
        goto out;
    if (c.json) {
        rp_cli_print_json(json_incref(answer));
        if (json_is_string(json_object_get(answer, "secret")))
            warn_secret();
        goto out;
    }
    printf("Added a %s credential to ", cert != NULL ? "certificate" : "secret");
    rp_cli_put_safe(stdout, c.args.pos[0]);
    fputs("\n\n  key id      ", stdout);
    rp_cli_put_safe(stdout, json_string_value(rp_cli_json_path(answer, "keyId|id")));
    putchar('\n');
    if (cert != NULL) {
        rp_col exp = {"expires", "expiresAt", RP_COL_TIME};
        char when[64];

        fputs("  thumbprint  ", stdout);
        rp_cli_put_safe(stdout, json_string_value(json_object_get(answer, "thumbprint")));
        rp_cli_cell(answer, &exp, when, sizeof(when));
        printf("\n  expires     %s\n", when);
    } else {
        print_secret(answer, NULL);
    }
out:
    rp_buf_free(&pem);
    json_decref(answer);
    json_decref(body);
    rp_cli_end(&c);
    return rc;
}

static int sp_credential_delete(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    char path[PATH_CAP];
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 2, 2,
                          "rampart sp credential delete NAME KEYID", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    BUILD_PATH(rc, path, "/api/servicePrincipals/%s/credentials/%s", c.args.pos[0], c.args.pos[1]);
    if (rc == RP_EXIT_OK)
        rc = rp_cli_request(&c, "DELETE", path, NULL, NULL, NULL);
    if (rc == RP_EXIT_OK)
        print_deleted(c.json, "credential", c.args.pos[1]);
    rp_cli_end(&c);
    return rc;
}

static int sp_credential(int argc, char **argv, char **envp)
{
    static const sub t[] = {{"add", sp_credential_add}, {"delete", sp_credential_delete}};

    return dispatch("sp credential", t, NOPTS(t), "add, delete", argc, argv, envp);
}

int rp_cmd_sp(int argc, char **argv, char **envp)
{
    static const sub t[] = {{"create", sp_create},
                            {"list", sp_list},
                            {"show", sp_show},
                            {"delete", sp_delete},
                            {"credential", sp_credential}};

    return dispatch("sp", t, NOPTS(t), "create, list, show, delete, credential", argc, argv, envp);
}

/* ---- managed identities ---- */

static const rp_col identity_cols[] = {
    {"NAME", "name", RP_COL_TEXT},
    {"CLIENT ID", "clientId|properties.clientId|appId", RP_COL_TEXT},
    {"OBJECT ID", "principalId|properties.principalId|objectId|id", RP_COL_TEXT},
    {"CREATED", "createdAt|created", RP_COL_TIME},
};

static int identity_create(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *body = NULL, *answer = NULL;
    int rc =
        rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1, "rampart identity create NAME", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    body = json_pack("{s:s}", "name", c.args.pos[0]);
    rc = body != NULL ? rp_cli_request(&c, "POST", "/api/identities", body, &answer, NULL)
                      : rp_cli_usage_error("the name must be UTF-8 text");
    if (rc == RP_EXIT_OK && c.json) {
        rp_cli_print_json(json_incref(answer));
    } else if (rc == RP_EXIT_OK) {
        static const rp_col f[] = {
            {"name", "name", RP_COL_TEXT},
            {"client id", "clientId|properties.clientId|appId", RP_COL_TEXT},
            {"object id", "principalId|properties.principalId|objectId|id", RP_COL_TEXT},
            {"scope", "scope", RP_COL_TEXT},
        };
        char scope[128];

        /* An identity is a resource of its own: its scope is what roles are assigned at. */
        snprintf(scope, sizeof(scope), "/identities/%.64s", c.args.pos[0]);
        if (json_is_object(answer) && json_object_get(answer, "scope") == NULL)
            json_object_set_new(answer, "scope", json_string(scope));
        fputs("Created managed identity ", stdout);
        rp_cli_put_safe(stdout, c.args.pos[0]);
        fputs("\n\n", stdout);
        rp_cli_fields(stdout, f, NOPTS(f), answer);
        printf("\nRun a workload with it: rampart identity exec --identity %.64s -- CMD ARGS...\n",
               c.args.pos[0]);
    }
    json_decref(answer);
    json_decref(body);
    rp_cli_end(&c);
    return rc;
}

static int identity_list(int argc, char **argv, char **envp)
{
    return list_table(argc, argv, envp, "/api/identities", identity_cols, NOPTS(identity_cols),
                      "no managed identities", "rampart identity list");
}

static int identity_delete(int argc, char **argv, char **envp)
{
    return delete_named(argc, argv, envp, "/api/identities/%s", "managed identity",
                        "rampart identity delete NAME");
}

int rp_cmd_identity(int argc, char **argv, char **envp)
{
    static const sub t[] = {{"create", identity_create},
                            {"list", identity_list},
                            {"delete", identity_delete},
                            {"exec", rp_cmd_identity_exec}};

    return dispatch("identity", t, NOPTS(t), "create, list, delete, exec", argc, argv, envp);
}

/* ---------------------------------------------------------------- roles */

static const rp_col roledef_cols[] = {
    {"NAME", "properties.roleName|roleName", RP_COL_TEXT},
    {"ID", "name|roleDefinitionId|id", RP_COL_TEXT},
    {"TYPE", "properties.type|roleType", RP_COL_TEXT},
    {"DESCRIPTION", "properties.description|description", RP_COL_TEXT},
};

static int roledef_list(int argc, char **argv, char **envp)
{
    return list_table(argc, argv, envp, "/api/roleDefinitions", roledef_cols, NOPTS(roledef_cols),
                      "no role definitions", "rampart role definition list");
}

/* Prints a role definition (Azure shape, or flat) as fields and permission lists. */
static void print_roledef(const json_t *d)
{
    static const rp_col f[] = {
        {"name", "properties.roleName|roleName", RP_COL_TEXT},
        {"id", "name|roleDefinitionId", RP_COL_TEXT},
        {"resource id", "id", RP_COL_TEXT},
        {"type", "properties.type|roleType", RP_COL_TEXT},
        {"description", "properties.description|description", RP_COL_TEXT},
        {"scopes", "properties.assignableScopes|assignableScopes", RP_COL_TEXT},
    };
    static const char *const lists[] = {"actions", "notActions", "dataActions", "notDataActions"};
    json_t *perms = rp_cli_json_path(d, "properties.permissions|permissions"), *p;
    size_t i;

    rp_cli_fields(stdout, f, NOPTS(f), d);
    if (!json_is_array(perms))
        return;
    json_array_foreach(perms, i, p)
    {
        for (size_t k = 0; k < NOPTS(lists); k++) {
            json_t *a = json_object_get(p, lists[k]), *e;
            size_t j;

            if (!json_is_array(a) || json_array_size(a) == 0)
                continue;
            printf("\n  %s:\n", lists[k]);
            json_array_foreach(a, j, e)
            {
                fputs("    ", stdout);
                rp_cli_put_safe(stdout, json_string_value(e));
                putchar('\n');
            }
        }
    }
}

static int roledef_show(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *answer = NULL;
    char path[PATH_CAP];
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1,
                          "rampart role definition show NAME|ID", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    BUILD_PATH(rc, path, "/api/roleDefinitions/%s", rp_cmd_id_tail(c.args.pos[0]));
    if (rc == RP_EXIT_OK)
        rc = rp_cli_request(&c, "GET", path, NULL, &answer, NULL);
    if (rc == RP_EXIT_OK) {
        if (c.json)
            rp_cli_print_json(json_incref(answer));
        else
            print_roledef(answer);
    }
    json_decref(answer);
    rp_cli_end(&c);
    return rc;
}

static int roledef_create(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN, RP_OPT("file", RP_OPT_VALUE)};
    rp_cli_cmd c;
    json_t *body = NULL, *answer = NULL;
    json_error_t jerr;
    const char *file;
    rp_buf text;
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 0, 0,
                          "rampart role definition create --file ROLE.json", envp),
        frc;

    if (rc != RP_EXIT_OK)
        return rc;
    rp_buf_init(&text, RP_CLIENT_BODY_MAX);
    file = rp_opt_get(opts, NOPTS(opts), "file");
    if (file == NULL) {
        rc = rp_cli_usage_error("role definition create needs --file ROLE.json");
        goto out;
    }
    frc = rp_file_read(file, &text);
    if (frc != 0) {
        rc = rp_cli_fail(frc == RP_ENOENT ? RP_EXIT_USAGE : RP_EXIT_FAIL, "%s: %s", file,
                         frc == RP_ENOENT ? "no such file" : rp_strerror(frc));
        goto out;
    }
    body = json_loadb(text.data ? text.data : "", text.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(body)) {
        rc = rp_cli_fail(RP_EXIT_USAGE, "%s: %s at line %d column %d", file,
                         body == NULL ? "invalid JSON" : "must hold a JSON object", jerr.line,
                         jerr.column);
        goto out;
    }
    rc = rp_cli_request(&c, "POST", "/api/roleDefinitions", body, &answer, NULL);
    if (rc == RP_EXIT_OK && c.json) {
        rp_cli_print_json(json_incref(answer));
    } else if (rc == RP_EXIT_OK) {
        fputs("Created role definition\n\n", stdout);
        print_roledef(answer);
    }
out:
    json_decref(answer);
    json_decref(body);
    rp_buf_free(&text);
    rp_cli_end(&c);
    return rc;
}

static int roledef_delete(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    char path[PATH_CAP];
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1,
                          "rampart role definition delete ID", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    BUILD_PATH(rc, path, "/api/roleDefinitions/%s", rp_cmd_id_tail(c.args.pos[0]));
    if (rc == RP_EXIT_OK)
        rc = rp_cli_request(&c, "DELETE", path, NULL, NULL, NULL);
    if (rc == RP_EXIT_OK)
        print_deleted(c.json, "role definition", c.args.pos[0]);
    rp_cli_end(&c);
    return rc;
}

static int role_definition(int argc, char **argv, char **envp)
{
    static const sub t[] = {{"list", roledef_list},
                            {"show", roledef_show},
                            {"create", roledef_create},
                            {"delete", roledef_delete}};

    return dispatch("role definition", t, NOPTS(t), "list, show, create, delete", argc, argv, envp);
}

static const rp_col assignment_cols[] = {
    {"ID", "id|name", RP_COL_TEXT},
    {"PRINCIPAL", "principalName|principalId|properties.principalId|principal", RP_COL_TEXT},
    {"ROLE", "roleName|roleDefinitionId|properties.roleDefinitionId|role", RP_COL_TEXT},
    {"SCOPE", "scope|properties.scope", RP_COL_TEXT},
    {"EXPIRES", "expiresAt|properties.expiresAt", RP_COL_TIME},
    {"VIA", "activationId", RP_COL_TEXT},
};

/*
 * Adds "roleName" to rows that only carry a roleDefinitionId, from GET /api/roleDefinitions
 * when the caller may read it (best effort: the table shows the id otherwise).
 */
static void add_role_names(const rp_client_settings *cs, json_t *rows)
{
    json_t *defs = NULL, *row, *d;
    size_t i, k;

    if (rp_cli_fetch(cs, "/api/roleDefinitions", &defs) != 0 || rp_cli_rows(defs) == NULL) {
        json_decref(defs);
        return;
    }
    json_array_foreach(rows, i, row)
    {
        const char *rid = json_string_value(json_object_get(row, "roleDefinitionId"));

        if (rid == NULL || json_object_get(row, "roleName") != NULL)
            continue;
        json_array_foreach(rp_cli_rows(defs), k, d)
        {
            const char *id = json_string_value(rp_cli_json_path(d, "name|id"));
            json_t *name = rp_cli_json_path(d, "properties.roleName|roleName");
            if (id != NULL && json_is_string(name) &&
                strcasecmp(rp_cmd_id_tail(id), rp_cmd_id_tail(rid)) == 0) {
                json_object_set(row, "roleName", name);
                break;
            }
        }
    }
    json_decref(defs);
}

/* Adds "expiresAt" (ISO 8601 UTC) from an --expires value to body. Exit code. */
static int add_expiry(json_t *body, const char *expires)
{
    int64_t t;
    char when[21];

    if (expires == NULL)
        return RP_EXIT_OK;
    if (rp_cli_parse_expiry(expires, (int64_t)time(NULL), &t) != 0)
        return rp_cli_usage_error("--expires: '%.60s' is neither a duration (2h, 30m, 7d, PT2H) "
                                  "nor a future ISO 8601 time (2026-11-29T07:00:00Z)",
                                  expires);
    rp_cli_format_time(t, when);
    return json_object_set_new(body, "expiresAt", json_string(when)) == 0 ? RP_EXIT_OK
                                                                          : RP_EXIT_FAIL;
}

/* Checks that the named value options are all given. Exit code. */
static int require(const rp_opt *opts, size_t n, const char *what, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++)
        if (rp_opt_get(opts, n, names[i]) == NULL)
            return rp_cli_usage_error("%s needs --%s", what, names[i]);
    return RP_EXIT_OK;
}

static int role_assign(int argc, char **argv, char **envp)
{
    static const char *const needed[] = {"principal", "role", "scope", NULL};
    rp_opt opts[] = {RP_OPTS_CONN, RP_OPT("principal", RP_OPT_VALUE), RP_OPT("role", RP_OPT_VALUE),
                     RP_OPT("scope", RP_OPT_VALUE), RP_OPT("expires", RP_OPT_VALUE)};
    rp_cli_cmd c;
    json_t *body = NULL, *answer = NULL;
    int rc = rp_cli_begin(
        &c, argc, argv, opts, NOPTS(opts), 0, 0,
        "rampart role assign --principal P --role ROLE --scope SCOPE [--expires WHEN]", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    if ((rc = require(opts, NOPTS(opts), "role assign", needed)) != RP_EXIT_OK)
        goto out;
    body = json_pack("{s:s,s:s,s:s}", "principal", rp_opt_get(opts, NOPTS(opts), "principal"),
                     "role", rp_opt_get(opts, NOPTS(opts), "role"), "scope",
                     rp_opt_get(opts, NOPTS(opts), "scope"));
    if (body == NULL) {
        rc = rp_cli_fail(RP_EXIT_USAGE, "--principal, --role and --scope must be UTF-8 text");
        goto out;
    }
    if ((rc = add_expiry(body, rp_opt_get(opts, NOPTS(opts), "expires"))) != RP_EXIT_OK)
        goto out;
    rc = rp_cli_request(&c, "POST", "/api/roleAssignments", body, &answer, NULL);
    if (rc == RP_EXIT_OK && c.json) {
        rp_cli_print_json(json_incref(answer));
    } else if (rc == RP_EXIT_OK) {
        static const rp_col f[] = {
            {"id", "id|name", RP_COL_TEXT},
            {"principal", "principalId|properties.principalId|principal", RP_COL_TEXT},
            {"role", "roleName|roleDefinitionId|properties.roleDefinitionId|role", RP_COL_TEXT},
            {"role id", "roleDefinitionId|properties.roleDefinitionId", RP_COL_TEXT},
            {"scope", "scope|properties.scope", RP_COL_TEXT},
            {"expires", "expiresAt|properties.expiresAt", RP_COL_TIME},
        };
        fputs("Assigned\n\n", stdout);
        rp_cli_fields(stdout, f, NOPTS(f), answer);
    }
out:
    json_decref(answer);
    json_decref(body);
    rp_cli_end(&c);
    return rc;
}

static int role_list(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN, RP_OPT("scope", RP_OPT_VALUE),
                     RP_OPT("principal", RP_OPT_VALUE)};
    const char *scope, *principal;
    rp_cli_cmd c;
    json_t *answer = NULL;
    char path[PATH_CAP];
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 0, 0,
                          "rampart role list [--scope SCOPE] [--principal P]", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    scope = rp_opt_get(opts, NOPTS(opts), "scope");
    principal = rp_opt_get(opts, NOPTS(opts), "principal");
    if (scope != NULL && principal != NULL)
        BUILD_PATH(rc, path, "/api/roleAssignments?scope=%s&principal=%s", scope, principal);
    else if (scope != NULL)
        BUILD_PATH(rc, path, "/api/roleAssignments?scope=%s", scope);
    else if (principal != NULL)
        BUILD_PATH(rc, path, "/api/roleAssignments?principal=%s", principal);
    else
        BUILD_PATH(rc, path, "/api/roleAssignments");
    if (rc == RP_EXIT_OK)
        rc = rp_cli_request(&c, "GET", path, NULL, &answer, NULL);
    if (rc == RP_EXIT_OK) {
        if (c.json)
            rp_cli_print_json(json_incref(answer));
        else if (rp_cli_rows(answer) == NULL)
            rc = rp_cli_fail(RP_EXIT_SERVER, "GET /api/roleAssignments: the answer is not a list");
        else {
            add_role_names(&c.cs, rp_cli_rows(answer));
            rp_cli_table(stdout, assignment_cols, NOPTS(assignment_cols), rp_cli_rows(answer),
                         "no role assignments");
        }
    }
    json_decref(answer);
    rp_cli_end(&c);
    return rc;
}

static int role_remove(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    char path[PATH_CAP];
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1, "rampart role remove ID", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    BUILD_PATH(rc, path, "/api/roleAssignments/%s", rp_cmd_id_tail(c.args.pos[0]));
    if (rc == RP_EXIT_OK)
        rc = rp_cli_request(&c, "DELETE", path, NULL, NULL, NULL);
    if (rc == RP_EXIT_OK)
        print_deleted(c.json, "role assignment", c.args.pos[0]);
    rp_cli_end(&c);
    return rc;
}

int rp_cmd_role(int argc, char **argv, char **envp)
{
    static const sub t[] = {{"definition", role_definition},
                            {"assign", role_assign},
                            {"list", role_list},
                            {"remove", role_remove}};

    return dispatch("role", t, NOPTS(t), "definition, assign, list, remove", argc, argv, envp);
}

/* ---------------------------------------------------------------- PIM */

static const rp_col eligibility_cols[] = {
    {"ID", "id|name", RP_COL_TEXT},
    {"PRINCIPAL", "principalName|principalId|principal", RP_COL_TEXT},
    {"ROLE", "roleName|roleDefinitionId|role", RP_COL_TEXT},
    {"SCOPE", "scope", RP_COL_TEXT},
    {"MAX", "maxDurationSeconds|maxDuration", RP_COL_SECONDS},
    {"APPROVERS", "approvers", RP_COL_TEXT},
    {"EXPIRES", "expiresAt", RP_COL_TIME},
};

static const rp_col eligibility_fields[] = {
    {"id", "id|name", RP_COL_TEXT},
    {"principal", "principalName|principalId|principal", RP_COL_TEXT},
    {"role", "roleName|roleDefinitionId|role", RP_COL_TEXT},
    {"scope", "scope", RP_COL_TEXT},
    {"max duration", "maxDurationSeconds|maxDuration", RP_COL_SECONDS},
    {"approvers", "approvers", RP_COL_TEXT},
    {"expires", "expiresAt", RP_COL_TIME},
};

static const rp_col activation_cols[] = {
    {"ID", "id|name", RP_COL_TEXT},
    {"STATUS", "status", RP_COL_TEXT},
    {"PRINCIPAL", "principalName|principalId|principal", RP_COL_TEXT},
    {"ROLE", "roleName|roleDefinitionId|role", RP_COL_TEXT},
    {"SCOPE", "scope", RP_COL_TEXT},
    {"DURATION", "durationSeconds|duration", RP_COL_SECONDS},
    {"EXPIRES", "expiresAt", RP_COL_TIME},
    {"JUSTIFICATION", "justification", RP_COL_TEXT},
};

/* A duration option as ISO 8601 into out[cap]. Exit code. */
static int iso_duration_opt(const char *name, const char *v, char *out, size_t cap)
{
    int64_t secs;

    if (rp_cli_parse_duration(v, &secs) != 0)
        return rp_cli_usage_error("--%s: '%.60s' is not a duration (8h, 90m, PT8H)", name, v);
    rp_cli_format_duration(secs, out, cap);
    return RP_EXIT_OK;
}

static int pim_eligible(int argc, char **argv, char **envp)
{
    static const char *const needed[] = {"principal", "role", "scope", NULL};
    rp_opt opts[] = {RP_OPTS_CONN,
                     RP_OPT("principal", RP_OPT_VALUE),
                     RP_OPT("role", RP_OPT_VALUE),
                     RP_OPT("scope", RP_OPT_VALUE),
                     RP_OPT("max-duration", RP_OPT_VALUE),
                     RP_OPT("approver", RP_OPT_LIST),
                     RP_OPT("expires", RP_OPT_VALUE)};
    const rp_opt *approvers = &opts[NOPTS(opts) - 2];
    const char *maxd;
    rp_cli_cmd c;
    json_t *body = NULL, *answer = NULL, *list = NULL;
    char iso[32];
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 0, 0,
                          "rampart pim eligible --principal P --role ROLE --scope SCOPE "
                          "[--max-duration 8h] [--approver P ...] [--expires WHEN]",
                          envp);

    if (rc != RP_EXIT_OK)
        return rc;
    if ((rc = require(opts, NOPTS(opts), "pim eligible", needed)) != RP_EXIT_OK)
        goto out;
    body = json_pack("{s:s,s:s,s:s}", "principal", rp_opt_get(opts, NOPTS(opts), "principal"),
                     "role", rp_opt_get(opts, NOPTS(opts), "role"), "scope",
                     rp_opt_get(opts, NOPTS(opts), "scope"));
    if (body == NULL) {
        rc = rp_cli_fail(RP_EXIT_USAGE, "--principal, --role and --scope must be UTF-8 text");
        goto out;
    }
    maxd = rp_opt_get(opts, NOPTS(opts), "max-duration");
    if (maxd != NULL) {
        if ((rc = iso_duration_opt("max-duration", maxd, iso, sizeof(iso))) != RP_EXIT_OK)
            goto out;
        json_object_set_new(body, "maxDuration", json_string(iso));
    }
    if (approvers->nvalues > 0) {
        list = json_array();
        for (size_t i = 0; i < approvers->nvalues; i++)
            json_array_append_new(list, json_string(approvers->values[i]));
        json_object_set(body, "approvers", list);
    }
    if ((rc = add_expiry(body, rp_opt_get(opts, NOPTS(opts), "expires"))) != RP_EXIT_OK)
        goto out;
    rc = rp_cli_request(&c, "POST", "/api/roleEligibilities", body, &answer, NULL);
    if (rc == RP_EXIT_OK && c.json) {
        rp_cli_print_json(json_incref(answer));
    } else if (rc == RP_EXIT_OK) {
        fputs("Eligibility created\n\n", stdout);
        rp_cli_fields(stdout, eligibility_fields, NOPTS(eligibility_fields), answer);
    }
out:
    json_decref(list);
    json_decref(answer);
    json_decref(body);
    rp_cli_end(&c);
    return rc;
}

/* Is me in the eligibility's approvers? */
static int approves(const json_t *elig, const char *me)
{
    json_t *v;
    size_t i;

    json_array_foreach(json_object_get(elig, "approvers"), i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), me) == 0)
            return 1;
    }
    return 0;
}

/* The eligibility with this id in eligs, or NULL. */
static const json_t *eligibility_by_id(const json_t *eligs, const char *id)
{
    json_t *e;
    size_t i;

    json_array_foreach(eligs, i, e)
    {
        const char *eid = json_string_value(json_object_get(e, "id"));
        if (id != NULL && eid != NULL && strcmp(eid, id) == 0)
            return e;
    }
    return NULL;
}

static int str_is(const json_t *o, const char *member, const char *want)
{
    const char *v = json_string_value(json_object_get(o, member));

    return v != NULL && strcmp(v, want) == 0;
}

/*
 * Without --all, pim list shows what concerns the caller (me): its eligibilities and those it
 * approves, its activations, and requests it decided or may decide. A caller with read access
 * to everything gets everything from the server; this narrows it back.
 */
static void keep_mine(json_t *eligs, json_t *acts, const char *me)
{
    size_t i = 0;

    while (i < json_array_size(acts)) {
        json_t *a = json_array_get(acts, i);
        const json_t *e =
            eligibility_by_id(eligs, json_string_value(json_object_get(a, "eligibilityId")));

        if (str_is(a, "principalId", me) || str_is(a, "decidedBy", me) ||
            (e != NULL && approves(e, me)))
            i++;
        else
            json_array_remove(acts, i);
    }
    i = 0;
    while (i < json_array_size(eligs)) {
        json_t *e = json_array_get(eligs, i);

        if (str_is(e, "principalId", me) || approves(e, me))
            i++;
        else
            json_array_remove(eligs, i);
    }
}

static int pim_list(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN, RP_OPT("all", RP_OPT_FLAG)};
    rp_cli_cmd c;
    json_t *elig = NULL, *act = NULL, *who = NULL;
    const char *me;
    int rc =
        rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 0, 0, "rampart pim list [--all]", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rc = rp_cli_request(&c, "GET", "/api/roleEligibilities", NULL, &elig, NULL);
    if (rc == RP_EXIT_OK)
        rc = rp_cli_request(&c, "GET", "/api/roleActivations", NULL, &act, NULL);
    if (rc != RP_EXIT_OK)
        goto out;
    if (rp_cli_rows(elig) == NULL || rp_cli_rows(act) == NULL) {
        rc = rp_cli_fail(RP_EXIT_SERVER, "PIM lists: the answer is not a list");
        goto out;
    }
    if (rp_opt_get(opts, NOPTS(opts), "all") == NULL &&
        rp_cli_fetch(&c.cs, "/api/whoami", &who) == 0 &&
        (me = json_string_value(rp_cli_json_path(who, "id|objectId|oid"))) != NULL)
        keep_mine(rp_cli_rows(elig), rp_cli_rows(act), me);
    if (c.json) {
        rp_cli_print_json(json_pack("{s:O,s:O}", "eligibilities", rp_cli_rows(elig), "activations",
                                    rp_cli_rows(act)));
        goto out;
    }
    add_role_names(&c.cs, rp_cli_rows(act));
    fputs("Eligible roles\n\n", stdout);
    rp_cli_table(stdout, eligibility_cols, NOPTS(eligibility_cols), rp_cli_rows(elig), "  (none)");
    fputs("\nActivations\n\n", stdout);
    rp_cli_table(stdout, activation_cols, NOPTS(activation_cols), rp_cli_rows(act), "  (none)");
out:
    json_decref(who);
    json_decref(elig);
    json_decref(act);
    rp_cli_end(&c);
    return rc;
}

/* Does any candidate of paths in o hold want (or an id whose last segment is want)? */
static int field_matches(const json_t *o, const char *paths, const char *want)
{
    char one[128];
    const char *p = paths;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '|');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        json_t *v;

        if (n < sizeof(one)) {
            memcpy(one, p, n);
            one[n] = '\0';
            v = rp_cli_json_path(o, one);
            if (json_is_object(v))
                v = rp_cli_json_path(v, "id|name");
            if (json_is_string(v) &&
                (strcasecmp(json_string_value(v), want) == 0 ||
                 strcasecmp(rp_cmd_id_tail(json_string_value(v)), rp_cmd_id_tail(want)) == 0))
                return 1;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

json_t *rp_cmd_pim_find_eligibility(const json_t *rows, const char *role, const char *scope,
                                    const char *principal_id, size_t *nmatch)
{
    json_t *e, *found = NULL, *mine = NULL;
    size_t i, n = 0, nmine = 0;

    json_array_foreach(rows, i, e)
    {
        json_t *s = rp_cli_json_path(e, "scope|properties.scope");

        if (!json_is_string(s) || strcmp(json_string_value(s), scope) != 0 ||
            !field_matches(e, "role|roleName|roleDefinitionId|properties.roleDefinitionId", role))
            continue;
        n++;
        found = e;
        if (principal_id != NULL &&
            field_matches(e, "principalId|principal|properties.principalId", principal_id)) {
            nmine++;
            mine = e;
        }
    }
    if (n == 1) {
        *nmatch = 1;
        return found;
    }
    if (n > 1 && nmine == 1) {
        *nmatch = 1;
        return mine;
    }
    *nmatch = n > 1 && principal_id != NULL && nmine > 1 ? nmine : n;
    return NULL;
}

/* Finds the caller's eligibility for role at scope (pim activate --role --scope). */
static int find_eligibility(rp_cli_cmd *c, const char *role, const char *scope, char *id,
                            size_t cap)
{
    json_t *list = NULL, *me = NULL, *hit;
    const char *my_id = NULL, *hit_id;
    size_t n = 0;
    int rc = rp_cli_request(c, "GET", "/api/roleEligibilities", NULL, &list, NULL);

    if (rc != RP_EXIT_OK)
        goto out;
    if (rp_cli_rows(list) == NULL) {
        rc = rp_cli_fail(RP_EXIT_SERVER, "GET /api/roleEligibilities: the answer is not a list");
        goto out;
    }
    hit = rp_cmd_pim_find_eligibility(rp_cli_rows(list), role, scope, NULL, &n);
    if (hit == NULL && n > 1) {
        /* Several principals are eligible for it: keep the caller's. */
        if (rp_cli_fetch(&c->cs, "/api/whoami", &me) == 0)
            my_id = json_string_value(rp_cli_json_path(me, "objectId|oid|id|principalId"));
        hit = rp_cmd_pim_find_eligibility(rp_cli_rows(list), role, scope, my_id, &n);
    }
    if (hit == NULL) {
        rc = rp_cli_fail(RP_EXIT_USAGE,
                         n == 0 ? "no eligibility for role '%.80s' at scope '%.200s' "
                                  "(see: rampart pim list)"
                                : "several eligibilities for role '%.80s' at scope '%.200s': "
                                  "pass --eligibility ID (see: rampart pim list)",
                         role, scope);
        goto out;
    }
    hit_id = json_string_value(rp_cli_json_path(hit, "id|name"));
    if (hit_id == NULL || hit_id[0] == '\0' || rp_strlcpy(id, hit_id, cap) != 0)
        rc =
            rp_cli_fail(RP_EXIT_SERVER, "GET /api/roleEligibilities: an entry without a usable id");
out:
    json_decref(me);
    json_decref(list);
    return rc;
}

static int pim_activate(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN,
                     RP_OPT("eligibility", RP_OPT_VALUE),
                     RP_OPT("role", RP_OPT_VALUE),
                     RP_OPT("scope", RP_OPT_VALUE),
                     RP_OPT("justification", RP_OPT_VALUE),
                     RP_OPT("duration", RP_OPT_VALUE)};
    const char *elig, *role, *scope, *why, *dur;
    rp_cli_cmd c;
    json_t *body = NULL, *answer = NULL;
    char id[256], iso[32];
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 0, 0,
                          "rampart pim activate (--eligibility ID | --role ROLE --scope SCOPE) "
                          "--justification TEXT [--duration 2h]",
                          envp);

    if (rc != RP_EXIT_OK)
        return rc;
    elig = rp_opt_get(opts, NOPTS(opts), "eligibility");
    role = rp_opt_get(opts, NOPTS(opts), "role");
    scope = rp_opt_get(opts, NOPTS(opts), "scope");
    why = rp_opt_get(opts, NOPTS(opts), "justification");
    dur = rp_opt_get(opts, NOPTS(opts), "duration");
    if ((elig != NULL) == (role != NULL || scope != NULL) ||
        (elig == NULL && (role == NULL || scope == NULL))) {
        rc = rp_cli_usage_error("pim activate needs either --eligibility ID or --role and "
                                "--scope");
        goto out;
    }
    if (why == NULL || why[0] == '\0') {
        rc = rp_cli_usage_error("pim activate needs --justification TEXT");
        goto out;
    }
    if (dur != NULL && (rc = iso_duration_opt("duration", dur, iso, sizeof(iso))) != RP_EXIT_OK)
        goto out;
    if (elig == NULL) {
        if ((rc = find_eligibility(&c, role, scope, id, sizeof(id))) != RP_EXIT_OK)
            goto out;
        elig = id;
    }
    body = json_pack("{s:s,s:s}", "eligibility", elig, "justification", why);
    if (body == NULL) {
        rc = rp_cli_fail(RP_EXIT_USAGE, "--justification must be UTF-8 text");
        goto out;
    }
    if (dur != NULL)
        json_object_set_new(body, "duration", json_string(iso));
    rc = rp_cli_request(&c, "POST", "/api/roleActivations", body, &answer, NULL);
    if (rc == RP_EXIT_OK && c.json) {
        rp_cli_print_json(json_incref(answer));
    } else if (rc == RP_EXIT_OK) {
        const char *status = json_string_value(json_object_get(answer, "status"));
        rp_col idc = {"id", "id|name", RP_COL_TEXT}, exp = {"expires", "expiresAt", RP_COL_TIME};
        char idtext[128], when[64];

        rp_cli_cell(answer, &idc, idtext, sizeof(idtext));
        rp_cli_cell(answer, &exp, when, sizeof(when));
        if (status != NULL && strcmp(status, "PendingApproval") == 0)
            printf("Activation %s is pending approval (an approver runs: rampart pim approve "
                   "%s)\n",
                   idtext, idtext);
        else if (status != NULL && strcmp(status, "Active") == 0)
            printf("Activation %s is active until %s\n", idtext, when);
        else {
            printf("Activation %s: ", idtext);
            rp_cli_put_safe(stdout, status);
            putchar('\n');
        }
    }
out:
    json_decref(answer);
    json_decref(body);
    rp_cli_end(&c);
    return rc;
}

/* approve / deny: POST /api/roleActivations/{id}/<verb> [{"justification"}]. */
static int pim_decide(int argc, char **argv, char **envp, const char *verb, const char *usage)
{
    rp_opt opts[] = {RP_OPTS_CONN, RP_OPT("justification", RP_OPT_VALUE)};
    const char *why;
    rp_cli_cmd c;
    json_t *body = NULL, *answer = NULL;
    char path[PATH_CAP];
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1, usage, envp);

    if (rc != RP_EXIT_OK)
        return rc;
    why = rp_opt_get(opts, NOPTS(opts), "justification");
    BUILD_PATH(rc, path,
               strcmp(verb, "approve") == 0 ? "/api/roleActivations/%s/approve"
                                            : "/api/roleActivations/%s/deny",
               c.args.pos[0]);
    if (rc != RP_EXIT_OK)
        goto out;
    if (why != NULL && (body = json_pack("{s:s}", "justification", why)) == NULL) {
        rc = rp_cli_fail(RP_EXIT_USAGE, "--justification must be UTF-8 text");
        goto out;
    }
    rc = rp_cli_request(&c, "POST", path, body, &answer, NULL);
    if (rc == RP_EXIT_OK && c.json) {
        rp_cli_print_json(answer != NULL
                              ? json_incref(answer)
                              : json_pack("{s:s,s:s}", "id", c.args.pos[0], "result", verb));
    } else if (rc == RP_EXIT_OK) {
        printf("%s activation ", strcmp(verb, "approve") == 0 ? "Approved" : "Denied");
        rp_cli_put_safe(stdout, c.args.pos[0]);
        putchar('\n');
    }
out:
    json_decref(answer);
    json_decref(body);
    rp_cli_end(&c);
    return rc;
}

static int pim_approve(int argc, char **argv, char **envp)
{
    return pim_decide(argc, argv, envp, "approve", "rampart pim approve ID [--justification TEXT]");
}

static int pim_deny(int argc, char **argv, char **envp)
{
    return pim_decide(argc, argv, envp, "deny", "rampart pim deny ID [--justification TEXT]");
}

static int pim_deactivate(int argc, char **argv, char **envp)
{
    return delete_named(argc, argv, envp, "/api/roleActivations/%s", "role activation",
                        "rampart pim deactivate ID");
}

static int pim_remove(int argc, char **argv, char **envp)
{
    return delete_named(argc, argv, envp, "/api/roleEligibilities/%s", "eligibility",
                        "rampart pim remove ID");
}

int rp_cmd_pim(int argc, char **argv, char **envp)
{
    static const sub t[] = {{"eligible", pim_eligible}, {"list", pim_list},
                            {"activate", pim_activate}, {"approve", pim_approve},
                            {"deny", pim_deny},         {"deactivate", pim_deactivate},
                            {"remove", pim_remove}};

    return dispatch("pim", t, NOPTS(t),
                    "eligible, list, activate, approve, deny, deactivate, remove", argc, argv,
                    envp);
}
