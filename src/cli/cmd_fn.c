/*
 * cmd_fn.c - `rampart fn keys ...` (see cmd_fn.h). A thin client of the sites management API:
 * POST .../host/default/listkeys, POST .../functions/F/listkeys, and PUT / DELETE on
 * .../host/default/{functionKeys|systemKeys}/NAME and .../functions/F/keys/NAME.
 */
#include "cli/cmd_fn.h"
#include "cli/cmd_app.h"
#include "cli/cmd_common.h"

#include <stdio.h>
#include <string.h>

#define PATH_CAP 1024
#define NOPTS(a) (sizeof(a) / sizeof((a)[0]))

static const rp_col key_cols[] = {{"NAME", "name", RP_COL_TEXT}, {"VALUE", "value", RP_COL_TEXT}};

/* The key's address: /api/apps/APP/{functions/F/keys|host/default/functionKeys|systemKeys}/NAME. */
static int key_path(const rp_opt *opts, size_t n, const char *app, const char *key, char *out,
                    size_t cap)
{
    const char *fn = rp_opt_get(opts, n, "function");
    int sys = rp_opt_get(opts, n, "system") != NULL, rc;

    if (fn != NULL && sys)
        return rp_cli_usage_error("--function and --system do not go together");
    if (fn != NULL)
        rc = rp_cli_path(out, cap, "/api/apps/%s/functions/%s/keys/%s", app, fn, key);
    else
        rc = rp_cli_path(out, cap,
                         sys ? "/api/apps/%s/host/default/systemKeys/%s"
                             : "/api/apps/%s/host/default/functionKeys/%s",
                         app, key);
    return rc == 0 ? RP_EXIT_OK : rp_cli_usage_error("a name is too long");
}

static int keys_list(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN, RP_OPT("function", RP_OPT_VALUE)};
    const char *fn;
    char path[PATH_CAP];
    rp_cli_cmd c;
    json_t *ans = NULL, *rows = NULL;
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1,
                          "rampart fn keys list APP [--function F]", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    fn = rp_opt_get(opts, NOPTS(opts), "function");
    if (!rp_cmd_app_name_valid(c.args.pos[0])) {
        rc = rp_cli_usage_error("'%.60s' is not an app name", c.args.pos[0]);
        goto out;
    }
    if ((fn != NULL ? rp_cli_path(path, sizeof(path), "/api/apps/%s/functions/%s/listkeys",
                                  c.args.pos[0], fn)
                    : rp_cli_path(path, sizeof(path), "/api/apps/%s/host/default/listkeys",
                                  c.args.pos[0])) != 0) {
        rc = rp_cli_usage_error("the name is too long");
        goto out;
    }
    rc = rp_cli_request(&c, "POST", path, NULL, &ans, NULL);
    if (rc != RP_EXIT_OK)
        goto out;
    if (c.json) {
        rp_cli_print_json(json_incref(ans));
        goto out;
    }
    rows = json_array();
    if (fn == NULL) {
        const char *k;
        json_t *v;
        json_array_append_new(rows, json_pack("{s:s,s:O}", "name", "_master (master key)", "value",
                                              json_object_get(ans, "masterKey")));
        json_object_foreach(json_object_get(ans, "functionKeys"), k, v)
        {
            char n[200];
            snprintf(n, sizeof(n), "%s (host)", k);
            json_array_append_new(rows, json_pack("{s:s,s:O}", "name", n, "value", v));
        }
        json_object_foreach(json_object_get(ans, "systemKeys"), k, v)
        {
            char n[200];
            snprintf(n, sizeof(n), "%s (system)", k);
            json_array_append_new(rows, json_pack("{s:s,s:O}", "name", n, "value", v));
        }
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(ans, k, v)
        {
            json_array_append_new(rows, json_pack("{s:s,s:O}", "name", k, "value", v));
        }
    }
    rp_cli_table(stdout, key_cols, NOPTS(key_cols), rows, "no keys");
out:
    json_decref(ans);
    json_decref(rows);
    rp_cli_end(&c);
    return rc;
}

/* set (value given), rotate (value NULL: the server makes one) and delete. */
static int keys_change(int argc, char **argv, char **envp, const char *verb)
{
    rp_opt opts[] = {RP_OPTS_CONN, RP_OPT("function", RP_OPT_VALUE), RP_OPT("system", RP_OPT_FLAG)};
    int set = strcmp(verb, "set") == 0, del = strcmp(verb, "delete") == 0;
    char usage[160], path[PATH_CAP];
    rp_cli_cmd c;
    json_t *body = NULL, *ans = NULL;
    int rc;

    snprintf(usage, sizeof(usage), "rampart fn keys %s APP NAME%s [--function F | --system]", verb,
             set ? " VALUE" : "");
    rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), set ? 3 : 2, set ? 3 : 2, usage, envp);
    if (rc != RP_EXIT_OK)
        return rc;
    if (!rp_cmd_app_name_valid(c.args.pos[0])) {
        rc = rp_cli_usage_error("'%.60s' is not an app name", c.args.pos[0]);
        goto out;
    }
    if ((rc = key_path(opts, NOPTS(opts), c.args.pos[0], c.args.pos[1], path, sizeof(path))) !=
        RP_EXIT_OK)
        goto out;
    if (!del)
        body = set ? json_pack("{s:{s:s}}", "properties", "value", c.args.pos[2])
                   : json_pack("{s:{}}", "properties");
    rc = rp_cli_request(&c, del ? "DELETE" : "PUT", path, body, &ans, NULL);
    if (rc == RP_EXIT_OK) {
        if (c.json && ans != NULL)
            rp_cli_print_json(json_incref(ans));
        else if (del)
            printf("Deleted key %s\n", c.args.pos[1]);
        else
            rp_cli_fields(stdout, key_cols, NOPTS(key_cols), ans);
    }
out:
    json_decref(body);
    json_decref(ans);
    rp_cli_end(&c);
    return rc;
}

int rp_cmd_fn(int argc, char **argv, char **envp)
{
    if (argc >= 2 && strcmp(argv[0], "keys") == 0) {
        if (strcmp(argv[1], "list") == 0)
            return keys_list(argc - 2, argv + 2, envp);
        if (strcmp(argv[1], "set") == 0 || strcmp(argv[1], "rotate") == 0 ||
            strcmp(argv[1], "delete") == 0)
            return keys_change(argc - 2, argv + 2, envp, argv[1]);
    }
    return rp_cli_usage_error("rampart fn keys list|set|rotate|delete APP ...");
}
