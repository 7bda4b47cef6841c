/*
 * cmd_fn.c - `rampart fn keys ...` (see cmd_fn.h). A thin client of the sites management API:
 * POST .../host/default/listkeys, POST .../functions/F/listkeys, and PUT / DELETE on
 * .../host/default/{functionKeys|systemKeys}/NAME and .../functions/F/keys/NAME; and
 * `rampart fn logs` / `rampart fn metrics`: GET .../invocations?after=SEQ (followed once a
 * second with --follow, as `audit tail`) and GET .../metrics.
 */
#include "cli/cmd_fn.h"
#include "cli/cmd_app.h"
#include "cli/cmd_common.h"

#include "base/str.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Text from the server, printable only: C0 and C1 controls (U+0080-U+009F as UTF-8) and DEL
 * become '?', so nothing in a record can drive the terminal. */
static void put_clean(const char *s, int width)
{
    int n = 0;

    for (; s != NULL && *s; s++, n++) {
        unsigned char c = (unsigned char)*s;
        if (c == 0xc2 && (unsigned char)s[1] >= 0x80 && (unsigned char)s[1] <= 0x9f) {
            putchar('?');
            s++;
        } else {
            putchar(c < 0x20 || c == 0x7f ? '?' : (int)c);
        }
    }
    for (; n < width; n++)
        putchar(' ');
}

static const char *str_of(const json_t *r, const char *key)
{
    const char *v = json_string_value(json_object_get(r, key));
    return v != NULL ? v : "";
}

/* One invocation as a line, and the handler's Logs lines under it. */
static void inv_row(const json_t *r)
{
    const json_t *v;
    size_t i;

    put_clean(str_of(r, "start"), 24);
    fputs("  ", stdout);
    put_clean(str_of(r, "function"), 24);
    fputs("  ", stdout);
    put_clean(str_of(r, "trigger"), 12);
    fputs("  ", stdout);
    put_clean(str_of(r, "outcome"), 9);
    printf("  %3d  %9.1f ms  %-4s  ", (int)json_integer_value(json_object_get(r, "status")),
           json_number_value(json_object_get(r, "durationMs")),
           json_is_true(json_object_get(r, "cold")) ? "cold" : "warm");
    put_clean(str_of(r, "id"), 0);
    putchar('\n');
    json_array_foreach(json_object_get(r, "logs"), i, v)
    {
        fputs("    | ", stdout);
        put_clean(json_string_value(v), 0);
        putchar('\n');
    }
}

static int fn_logs(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN, RP_OPT("follow", RP_OPT_FLAG), RP_OPT("function", RP_OPT_VALUE),
                     RP_OPT("limit", RP_OPT_VALUE)};
    const char *fn, *lim;
    uint64_t after = 0, limit = 100;
    char base[PATH_CAP];
    rp_cli_cmd c;
    int rc, follow, header_done = 0, any = 0;

    rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1,
                      "rampart fn logs APP [--function F] [--limit N] [--follow]", envp);
    if (rc != RP_EXIT_OK)
        return rc;
    fn = rp_opt_get(opts, NOPTS(opts), "function");
    lim = rp_opt_get(opts, NOPTS(opts), "limit");
    follow = rp_opt_get(opts, NOPTS(opts), "follow") != NULL;
    if (!rp_cmd_app_name_valid(c.args.pos[0])) {
        rc = rp_cli_usage_error("'%.60s' is not an app name", c.args.pos[0]);
        goto out;
    }
    if (lim != NULL && (rp_parse_u64(lim, strlen(lim), 500, &limit) != 0 || limit == 0)) {
        rc = rp_cli_usage_error("--limit must be a whole number from 1 to 500");
        goto out;
    }
    if ((fn != NULL
             ? rp_cli_path(base, sizeof(base), "/api/apps/%s/invocations?function=%s&",
                           c.args.pos[0], fn)
             : rp_cli_path(base, sizeof(base), "/api/apps/%s/invocations?", c.args.pos[0])) != 0) {
        rc = rp_cli_usage_error("the name is too long");
        goto out;
    }
    if (follow)
        rp_cli_follow_begin();
    while (!rp_cli_follow_stopped()) {
        char path[PATH_CAP + 64];
        json_t *ans = NULL, *rows, *r, *next;
        size_t i, n;

        snprintf(path, sizeof(path), "%safter=%" PRIu64 "&limit=%" PRIu64, base, after, limit);
        rc = rp_cli_request(&c, "GET", path, NULL, &ans, NULL);
        if (rc != RP_EXIT_OK)
            break;
        rows = rp_cli_rows(ans);
        next = json_object_get(ans, "next");
        if (rows == NULL || !json_is_integer(next) || json_integer_value(next) < 0) {
            json_decref(ans);
            rc = rp_cli_fail(RP_EXIT_SERVER, "GET %s: not an invocation page", base);
            break;
        }
        n = json_array_size(rows);
        json_array_foreach(rows, i, r)
        {
            any = 1;
            if (c.json) {
                char *line = json_dumps(r, JSON_COMPACT);
                if (line != NULL)
                    puts(line);
                free(line);
                continue;
            }
            if (!header_done) {
                printf("%-24s  %-24s  %-12s  %-9s  %3s  %12s  %-4s  %s\n", "START", "FUNCTION",
                       "TRIGGER", "OUTCOME", "ST", "DURATION", "", "INVOCATION ID");
                header_done = 1;
            }
            inv_row(r);
        }
        /* After a restart of the server the log starts again: next is then below after. */
        after = (uint64_t)json_integer_value(next);
        json_decref(ans);
        fflush(stdout);
        if (!follow)
            break;
        if (n >= limit)
            continue;
        rp_cli_follow_pause(1000);
    }
    if (follow) {
        rp_cli_follow_end();
        if (rp_cli_follow_stopped())
            rc = RP_EXIT_OK;
    }
    if (!c.json && !any && rc == RP_EXIT_OK && !follow)
        puts("no invocations");
out:
    rp_cli_end(&c);
    return rc;
}

static const rp_col metric_cols[] = {
    {"FUNCTION", "function", RP_COL_TEXT},   {"INVOCATIONS", "invocations", RP_COL_TEXT},
    {"SUCCEEDED", "succeeded", RP_COL_TEXT}, {"FAILED", "failed", RP_COL_TEXT},
    {"TIMED OUT", "timedOut", RP_COL_TEXT},  {"THROTTLED", "throttled", RP_COL_TEXT},
    {"COLD", "cold", RP_COL_TEXT},           {"AVG MS", "avgMs", RP_COL_TEXT},
    {"MAX MS", "durationMsMax", RP_COL_TEXT}};

static int fn_metrics(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    char path[PATH_CAP];
    rp_cli_cmd c;
    json_t *ans = NULL, *rows = NULL, *v;
    const char *k;
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1, "rampart fn metrics APP", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    if (!rp_cmd_app_name_valid(c.args.pos[0])) {
        rc = rp_cli_usage_error("'%.60s' is not an app name", c.args.pos[0]);
        goto out;
    }
    if (rp_cli_path(path, sizeof(path), "/api/apps/%s/metrics", c.args.pos[0]) != 0) {
        rc = rp_cli_usage_error("the name is too long");
        goto out;
    }
    rc = rp_cli_request(&c, "GET", path, NULL, &ans, NULL);
    if (rc != RP_EXIT_OK)
        goto out;
    if (c.json) {
        rp_cli_print_json(json_incref(ans));
        goto out;
    }
    if ((rows = json_array()) == NULL) {
        rc = rp_cli_fail(RP_EXIT_SERVER, "out of memory");
        goto out;
    }
    json_object_foreach(json_object_get(ans, "functions"), k, v)
    {
        json_int_t n = json_integer_value(json_object_get(v, "invocations"));
        char avg[32], max[32];
        json_t *row = json_deep_copy(v);
        snprintf(avg, sizeof(avg), "%.1f",
                 n > 0 ? json_number_value(json_object_get(v, "durationMsTotal")) / (double)n
                       : 0.0);
        snprintf(max, sizeof(max), "%.1f", json_number_value(json_object_get(v, "durationMsMax")));
        if (row == NULL || json_object_set_new(row, "function", json_string(k)) != 0 ||
            json_object_set_new(row, "avgMs", json_string(avg)) != 0 ||
            json_object_set_new(row, "durationMsMax", json_string(max)) != 0 ||
            json_array_append_new(rows, row) != 0) {
            rc = rp_cli_fail(RP_EXIT_SERVER, "out of memory");
            goto out;
        }
    }
    rp_cli_table(stdout, metric_cols, NOPTS(metric_cols), rows, "no invocations yet");
    printf("running now: %" JSON_INTEGER_FORMAT ", waiting: %" JSON_INTEGER_FORMAT "\n",
           json_integer_value(json_object_get(ans, "running")),
           json_integer_value(json_object_get(ans, "waiting")));
out:
    json_decref(ans);
    json_decref(rows);
    rp_cli_end(&c);
    return rc;
}

int rp_cmd_fn(int argc, char **argv, char **envp)
{
    if (argc >= 1 && strcmp(argv[0], "logs") == 0)
        return fn_logs(argc - 1, argv + 1, envp);
    if (argc >= 1 && strcmp(argv[0], "metrics") == 0)
        return fn_metrics(argc - 1, argv + 1, envp);
    if (argc >= 2 && strcmp(argv[0], "keys") == 0) {
        if (strcmp(argv[1], "list") == 0)
            return keys_list(argc - 2, argv + 2, envp);
        if (strcmp(argv[1], "set") == 0 || strcmp(argv[1], "rotate") == 0 ||
            strcmp(argv[1], "delete") == 0)
            return keys_change(argc - 2, argv + 2, envp, argv[1]);
    }
    return rp_cli_usage_error("rampart fn keys list|set|rotate|delete APP ... | fn logs APP | "
                              "fn metrics APP");
}
