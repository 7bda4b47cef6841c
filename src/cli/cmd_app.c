/*
 * cmd_app.c - `rampart app ...` (cmd_app.h): thin clients of /api/apps, plus the deploy
 * upload. A directory is zipped into a private temporary file first (sites/unzip.h's zipper
 * leaves out .git, .svn, .hg, .env and symlinks, as the server would), then streamed to the
 * app's scm host with a progress bar on a terminal; the file is removed whatever happens.
 */
#include "cli/cmd_app.h"
#include "base/err.h"
#include "base/rand.h"
#include "base/file.h"
#include "base/str.h"
#include "cli/client.h"
#include "cli/cmd_common.h"
#include "sites/unzip.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_CAP 256
#define NOPTS(a) (sizeof(a) / sizeof((a)[0]))
#define NAME_MIN 2
#define NAME_MAX 60

typedef int (*sub_fn)(int argc, char **argv, char **envp);

typedef struct sub {
    const char *name;
    sub_fn fn;
} sub;

static const rp_col app_fields[] = {
    {"name", "name", RP_COL_TEXT},
    {"url", "properties.url", RP_COL_TEXT},
    {"deploy", "properties.scmUri", RP_COL_TEXT},
    {"state", "properties.state", RP_COL_TEXT},
    {"live release", "properties.release", RP_COL_TEXT},
    {"https only", "properties.httpsOnly", RP_COL_TEXT},
    {"min TLS", "properties.minTlsVersion", RP_COL_TEXT},
    {"client certificates", "properties.clientCertMode", RP_COL_TEXT},
    {"client cert enabled", "properties.clientCertEnabled", RP_COL_TEXT},
    {"client cert exclusions", "properties.clientCertExclusionPaths", RP_COL_TEXT},
    {"command", "properties.appCommandLine", RP_COL_TEXT},
    {"created", "properties.createdAt", RP_COL_TIME},
    {"updated", "properties.updatedAt", RP_COL_TIME},
};

static const rp_col app_cols[] = {
    {"NAME", "name", RP_COL_TEXT},
    {"URL", "properties.url", RP_COL_TEXT},
    {"STATE", "properties.state", RP_COL_TEXT},
    {"RELEASE", "properties.release", RP_COL_TEXT},
};

static const rp_col release_cols[] = {
    {"RELEASE", "id", RP_COL_TEXT},
    {"LIVE", "active", RP_COL_TEXT},
    {"CREATED", "received_time", RP_COL_TEXT},
    {"FILES", "files", RP_COL_TEXT},
    {"BYTES", "bytes", RP_COL_TEXT},
    {"BY", "author", RP_COL_TEXT},
};

int rp_cmd_app_name_valid(const char *name)
{
    static const char *const reserved[] = {"login",  "management", "vault",    "scm",
                                           "events", "blob",       "storage",  "api",
                                           "www",    "admin",      "localhost"};
    size_t n = name != NULL ? strlen(name) : 0;

    if (n < NAME_MIN || n > NAME_MAX || name[0] == '-' || name[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return 0;
    }
    for (size_t i = 0; i < NOPTS(reserved); i++)
        if (strcmp(name, reserved[i]) == 0)
            return 0;
    return 1;
}

static int dispatch(const sub *table, size_t n, const char *names, int argc, char **argv,
                    char **envp)
{
    if (argc < 1)
        return rp_cli_usage_error("app needs a subcommand: %s", names);
    for (size_t i = 0; i < n; i++)
        if (strcmp(argv[0], table[i].name) == 0)
            return table[i].fn(argc - 1, argv + 1, envp);
    return rp_cli_usage_error("unknown app subcommand '%.60s' (expected %s)", argv[0], names);
}

static int app_path(const char *name, const char *suffix, char path[PATH_CAP])
{
    if (!rp_cmd_app_name_valid(name) || rp_cli_path(path, PATH_CAP, "/api/apps/%s", name) != 0 ||
        rp_strlcpy(path + strlen(path), suffix, PATH_CAP - strlen(path)) != 0)
        return rp_cli_usage_error("invalid app name '%.40s': 2-60 characters of a-z, 0-9 and '-', "
                                  "starting and ending with a letter or digit, and not a name the "
                                  "platform uses (login, vault, scm, ...)",
                                  name);
    return RP_EXIT_OK;
}

static int app_request(rp_cli_cmd *c, const char *method, const char *path, const json_t *body,
                       json_t **answer, long *status)
{
    long st = 0;
    int rc = rp_cli_request(c, method, path, body, answer, &st);

    if (status != NULL)
        *status = st;
    return rc == RP_EXIT_SERVER && st == 409 ? RP_EXIT_CONFLICT : rc;
}

/* ---------------------------------------------------------------- deploy */

typedef struct bar {
    int tty;
    int last; /* last percentage drawn */
} bar;

static void draw(uint64_t sent, uint64_t total, void *arg)
{
    bar *b = arg;
    int pct = total > 0 ? (int)(sent * 100 / total) : 100, fill;
    char line[80];

    if (!b->tty || pct == b->last)
        return;
    b->last = pct;
    fill = pct * 30 / 100;
    memset(line, '#', (size_t)fill);
    memset(line + fill, '.', (size_t)(30 - fill));
    line[30] = '\0';
    fprintf(stderr, "\r  uploading [%s] %3d%% %" PRIu64 " KiB", line, pct, sent / 1024);
    fflush(stderr);
}

/* Zips dir into a new private file under TMPDIR (or /tmp); its name goes to out. */
static int zip_to_temp(const char *dir, char *out, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    char id[37], err[256];
    rp_unzip_limits lim;
    rp_unzip_result res;
    int rc;

    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    if (rp_random_uuid(id) != 0)
        return rp_cli_fail(RP_EXIT_FAIL, "no randomness for a temporary file name");
    if ((size_t)snprintf(out, cap, "%s/rampart-deploy-%s.zip", tmp, id) >= cap)
        return rp_cli_fail(RP_EXIT_FAIL, "TMPDIR is too long");
    rp_unzip_limits_default(&lim);
    err[0] = '\0';
    rc = rp_zip_dir(dir, out, NULL, &lim, &res, err, sizeof(err));
    if (rc != 0) {
        unlink(out);
        return rp_cli_fail(RP_EXIT_FAIL, "cannot zip %.200s: %s", dir,
                           err[0] ? err : rp_strerror(rc));
    }
    if (res.skipped > 0)
        fprintf(stderr, "  left out %" PRIu32 " entries (.git, .env, symlinks, ...)\n",
                res.skipped);
    return RP_EXIT_OK;
}

/* Deploys src (a directory or a zip file) to the app; prints the result. */
static int deploy(rp_cli_cmd *c, const char *name, const char *src, int allow_anon)
{
    char path[PATH_CAP], url[700], tmpzip[4200], err[512], msg[600];
    const char *scm, *file = src;
    json_t *app = NULL, *answer = NULL;
    struct stat st;
    rp_buf out;
    long status = 0;
    bar b = {isatty(2), -1};
    int fd = -1, rc;

    tmpzip[0] = '\0';
    rp_buf_init(&out, RP_CLIENT_BODY_MAX);
    if (stat(src, &st) != 0) {
        rc = rp_cli_fail(RP_EXIT_USAGE, "%.200s: %s", src, strerror(errno));
        goto out;
    }
    /* Where the app's deployment endpoint is: the server says (scmUri). */
    if ((rc = app_path(name, "", path)) != RP_EXIT_OK ||
        (rc = app_request(c, "GET", path, NULL, &app, NULL)) != RP_EXIT_OK)
        goto out;
    scm = json_string_value(rp_cli_json_path(app, "properties.scmUri"));
    if (scm == NULL || (size_t)snprintf(url, sizeof(url), "%sapi/zipdeploy%s", scm,
                                        allow_anon ? "?allowAnonymous=true" : "") >= sizeof(url)) {
        rc = rp_cli_fail(RP_EXIT_SERVER, "the server did not name the app's deployment endpoint");
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = zip_to_temp(src, tmpzip, sizeof(tmpzip));
        if (rc != RP_EXIT_OK)
            goto out;
        file = tmpzip;
    }
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = rp_cli_fail(RP_EXIT_USAGE, "%.200s: not a readable zip file or directory", src);
        goto out;
    }
    err[0] = '\0';
    rc = rp_client_upload(&c->cs, url, fd, (uint64_t)st.st_size, "application/zip", draw, &b,
                          &status, &out, err, sizeof(err));
    if (b.tty)
        fputc('\n', stderr);
    if (rc != 0) {
        rc = rp_cli_fail(RP_EXIT_SERVER, "%s", err[0] ? err : rp_strerror(rc));
        goto out;
    }
    rp_cli_error_text(out.data, out.len, msg, sizeof(msg));
    if (status == 401 || status == 403) {
        rc = rp_cli_fail(RP_EXIT_UNAUTHORIZED, "not authorized: %s",
                         msg[0] ? msg : "the server refused the deploy");
        goto out;
    }
    if (status == 409) {
        rc = rp_cli_fail(RP_EXIT_CONFLICT, "%s", msg[0] ? msg : "a deploy is running");
        goto out;
    }
    if (status < 200 || status > 299) {
        rc = rp_cli_fail(RP_EXIT_SERVER, "deploy refused (HTTP %ld): %s", status,
                         msg[0] ? msg : "no reason given");
        goto out;
    }
    answer = out.len ? json_loadb(out.data, out.len, 0, NULL) : NULL;
    if (c->json) {
        rp_cli_print_json(answer ? json_incref(answer) : json_object());
    } else {
        json_t *j;
        const char *id = json_string_value(json_object_get(answer, "id"));
        const char *live = json_string_value(rp_cli_json_path(app, "properties.url"));
        printf("Deployed release %s to %s: %" JSON_INTEGER_FORMAT " files, %" JSON_INTEGER_FORMAT
               " bytes",
               id ? id : "?", name, json_integer_value(json_object_get(answer, "files")),
               json_integer_value(json_object_get(answer, "bytes")));
        j = json_object_get(answer, "skipped");
        if (json_integer_value(j) > 0)
            printf(" (%" JSON_INTEGER_FORMAT " left out)", json_integer_value(j));
        printf("\n%s\n", live ? live : "");
    }
    rc = RP_EXIT_OK;
out:
    if (fd >= 0)
        close(fd);
    if (tmpzip[0])
        unlink(tmpzip);
    rp_buf_free(&out);
    json_decref(answer);
    json_decref(app);
    return rc;
}

/* ---------------------------------------------------------------- subcommands */

static int app_create(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN, RP_OPT("static", RP_OPT_VALUE), RP_OPT("command", RP_OPT_VALUE)};
    rp_cli_cmd c;
    json_t *body = NULL, *answer = NULL;
    char path[PATH_CAP];
    const char *dir;
    long status = 0;
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1,
                          "rampart app create NAME [--static DIR|ZIP] [--command \"...\"]", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    if ((rc = app_path(c.args.pos[0], "", path)) != RP_EXIT_OK)
        goto out;
    body = rp_opt_get(opts, NOPTS(opts), "command") != NULL
               ? json_pack("{s:{s:s}}", "properties", "appCommandLine",
                           rp_opt_get(opts, NOPTS(opts), "command"))
               : json_object();
    if (body == NULL) {
        rc = rp_cli_fail(RP_EXIT_FAIL, "out of memory");
        goto out;
    }
    rc = app_request(&c, "PUT", path, body, &answer, &status);
    if (rc != RP_EXIT_OK)
        goto out;
    dir = rp_opt_get(opts, NOPTS(opts), "static");
    if (dir != NULL) {
        if (!c.json) {
            fputs(status == 201 ? "Created app " : "App exists: ", stdout);
            rp_cli_put_safe(stdout, c.args.pos[0]);
            putchar('\n');
        }
        rc = deploy(&c, c.args.pos[0], dir, 0);
        goto out;
    }
    if (c.json) {
        rp_cli_print_json(json_incref(answer));
        goto out;
    }
    fputs(status == 201 ? "Created app " : "App exists: ", stdout);
    rp_cli_put_safe(stdout, c.args.pos[0]);
    fputs("\n\n", stdout);
    rp_cli_fields(stdout, app_fields, NOPTS(app_fields), answer);
out:
    json_decref(answer);
    json_decref(body);
    rp_cli_end(&c);
    return rc;
}

static int app_deploy(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN, RP_OPT("allow-anonymous", RP_OPT_FLAG)};
    rp_cli_cmd c;
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 2, 2,
                          "rampart app deploy NAME DIR|ZIP [--allow-anonymous]", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    if (!rp_cmd_app_name_valid(c.args.pos[0])) {
        char path[PATH_CAP];
        rc = app_path(c.args.pos[0], "", path);
    } else if (!c.connected &&
               (rc = rp_cli_connect(&c.cs, c.opts, c.nopts, c.envp, 1)) == RP_EXIT_OK) {
        c.connected = 1;
        c.cs.json_output = c.json;
        rc = deploy(&c, c.args.pos[0], c.args.pos[1],
                    rp_opt_get(opts, NOPTS(opts), "allow-anonymous") != NULL);
    }
    rp_cli_end(&c);
    return rc;
}

/* Reads a JSON file (rules) for an option; NULL after printing why. */
static json_t *json_file(const char *opt, const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);

    if (j == NULL)
        rp_cli_usage_error("--%s %.200s: not JSON (line %d: %.100s)", opt, path, je.line, je.text);
    return j;
}

static json_t *text_file(const char *opt, const char *path)
{
    rp_buf b;
    json_t *j = NULL;

    rp_buf_init(&b, 256 * 1024);
    if (rp_file_read(path, &b) != 0)
        rp_cli_usage_error("--%s %.200s: cannot read it (at most 256 KiB)", opt, path);
    else
        j = json_stringn(b.data, b.len);
    rp_buf_free(&b);
    return j;
}

static int app_config(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN,
                     RP_OPT("min-tls", RP_OPT_VALUE),
                     RP_OPT("client-cert", RP_OPT_VALUE),
                     RP_OPT("client-cert-exclude", RP_OPT_VALUE),
                     RP_OPT("client-ca", RP_OPT_VALUE),
                     RP_OPT("access-rules", RP_OPT_VALUE),
                     RP_OPT("access-default", RP_OPT_VALUE),
                     RP_OPT("scm-access-rules", RP_OPT_VALUE),
                     RP_OPT("scm-access-default", RP_OPT_VALUE),
                     RP_OPT("scm-use-main", RP_OPT_VALUE),
                     RP_OPT("command", RP_OPT_VALUE),
                     RP_OPT("tier", RP_OPT_VALUE),
                     RP_OPT("memory-mb", RP_OPT_VALUE),
                     RP_OPT("pids", RP_OPT_VALUE),
                     RP_OPT("cpu-percent", RP_OPT_VALUE)};
    static const char *const limits[][2] = {
        {"memory-mb", "memoryMB"}, {"pids", "pids"}, {"cpu-percent", "cpuPercent"}};
    static const char *const modes[][2] = {{"off", NULL},
                                           {"required", "Required"},
                                           {"optional", "Optional"},
                                           {"optional-interactive", "OptionalInteractiveUser"}};
    rp_cli_cmd c;
    json_t *props = json_object(), *body = NULL, *answer = NULL, *v;
    char path[PATH_CAP];
    const char *x;
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1,
                          "rampart app config NAME [--min-tls 1.2|1.3] [--client-cert "
                          "off|required|optional|optional-interactive] [--client-cert-exclude "
                          "'/a;/b'] [--client-ca PEMFILE] [--access-rules JSONFILE] "
                          "[--access-default allow|deny] [--scm-access-rules JSONFILE] "
                          "[--scm-access-default allow|deny] [--scm-use-main true|false] "
                          "[--command CMD] [--tier shared|isolated] [--memory-mb N] [--pids N] "
                          "[--cpu-percent N]",
                          envp);

    if (rc != RP_EXIT_OK) {
        json_decref(props);
        return rc;
    }
    if (props == NULL) {
        rc = rp_cli_fail(RP_EXIT_FAIL, "out of memory");
        goto out;
    }
    if ((rc = app_path(c.args.pos[0], "", path)) != RP_EXIT_OK)
        goto out;
    rc = RP_EXIT_USAGE;
    if ((x = rp_opt_get(opts, NOPTS(opts), "min-tls")) != NULL)
        json_object_set_new(props, "minTlsVersion", json_string(x));
    if ((x = rp_opt_get(opts, NOPTS(opts), "client-cert")) != NULL) {
        size_t i;
        for (i = 0; i < NOPTS(modes) && strcmp(x, modes[i][0]) != 0; i++)
            ;
        if (i == NOPTS(modes)) {
            rc = rp_cli_usage_error("--client-cert is off, required, optional or "
                                    "optional-interactive");
            goto out;
        }
        json_object_set_new(props, "clientCertEnabled", json_boolean(i != 0));
        json_object_set_new(props, "clientCertMode", i ? json_string(modes[i][1]) : json_null());
    }
    if ((x = rp_opt_get(opts, NOPTS(opts), "client-cert-exclude")) != NULL)
        json_object_set_new(props, "clientCertExclusionPaths", json_string(x));
    if ((x = rp_opt_get(opts, NOPTS(opts), "client-ca")) != NULL) {
        if ((v = text_file("client-ca", x)) == NULL)
            goto out;
        json_object_set_new(props, "clientCertTrustedCAs", v);
    }
    if ((x = rp_opt_get(opts, NOPTS(opts), "access-rules")) != NULL) {
        if ((v = json_file("access-rules", x)) == NULL)
            goto out;
        json_object_set_new(props, "ipSecurityRestrictions", v);
    }
    if ((x = rp_opt_get(opts, NOPTS(opts), "scm-access-rules")) != NULL) {
        if ((v = json_file("scm-access-rules", x)) == NULL)
            goto out;
        json_object_set_new(props, "scmIpSecurityRestrictions", v);
    }
    if ((x = rp_opt_get(opts, NOPTS(opts), "access-default")) != NULL)
        json_object_set_new(props, "ipSecurityRestrictionsDefaultAction",
                            json_string(strcmp(x, "allow") == 0  ? "Allow"
                                        : strcmp(x, "deny") == 0 ? "Deny"
                                                                 : x));
    if ((x = rp_opt_get(opts, NOPTS(opts), "scm-access-default")) != NULL)
        json_object_set_new(props, "scmIpSecurityRestrictionsDefaultAction",
                            json_string(strcmp(x, "allow") == 0  ? "Allow"
                                        : strcmp(x, "deny") == 0 ? "Deny"
                                                                 : x));
    if ((x = rp_opt_get(opts, NOPTS(opts), "scm-use-main")) != NULL) {
        if (strcmp(x, "true") != 0 && strcmp(x, "false") != 0) {
            rc = rp_cli_usage_error("--scm-use-main is true or false");
            goto out;
        }
        json_object_set_new(props, "scmIpSecurityRestrictionsUseMain",
                            json_boolean(strcmp(x, "true") == 0));
    }
    if ((x = rp_opt_get(opts, NOPTS(opts), "command")) != NULL)
        json_object_set_new(props, "appCommandLine", json_string(x));
    {
        /* sandbox is replaced whole by a PUT: start from what the app has. */
        const char *tier = rp_opt_get(opts, NOPTS(opts), "tier");
        int any = tier != NULL;
        for (size_t i = 0; i < NOPTS(limits); i++)
            any |= rp_opt_get(opts, NOPTS(opts), limits[i][0]) != NULL;
        if (any) {
            json_t *cur = NULL, *sb;
            rc = app_request(&c, "GET", path, NULL, &cur, NULL);
            if (rc != RP_EXIT_OK)
                goto out;
            sb = json_deep_copy(rp_cli_json_path(cur, "properties.sandbox"));
            json_decref(cur);
            if (!json_is_object(sb)) {
                json_decref(sb);
                sb = json_object();
            }
            rc = RP_EXIT_USAGE;
            if (tier != NULL) {
                if (strcmp(tier, "shared") != 0 && strcmp(tier, "isolated") != 0) {
                    json_decref(sb);
                    rc = rp_cli_usage_error("--tier is shared or isolated");
                    goto out;
                }
                json_object_set_new(sb, "tier", json_string(tier));
            }
            for (size_t i = 0; i < NOPTS(limits); i++) {
                uint64_t n = 0;
                x = rp_opt_get(opts, NOPTS(opts), limits[i][0]);
                if (x == NULL)
                    continue;
                if (rp_parse_u64(x, strlen(x), 1u << 20, &n) != 0) {
                    json_decref(sb);
                    rc = rp_cli_usage_error("--%s must be a number", limits[i][0]);
                    goto out;
                }
                json_object_set_new(sb, limits[i][1], json_integer((json_int_t)n));
            }
            json_object_set_new(props, "sandbox", sb);
        }
    }
    body = json_pack("{s:O}", "properties", props);
    if (body == NULL) {
        rc = rp_cli_fail(RP_EXIT_FAIL, "out of memory");
        goto out;
    }
    rc = app_request(&c, "PUT", path, body, &answer, NULL);
    if (rc != RP_EXIT_OK)
        goto out;
    if (c.json)
        rp_cli_print_json(json_incref(answer));
    else
        rp_cli_fields(stdout, app_fields, NOPTS(app_fields), answer);
out:
    json_decref(answer);
    json_decref(body);
    json_decref(props);
    rp_cli_end(&c);
    return rc;
}

static int app_logs(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN, RP_OPT("follow", RP_OPT_FLAG)};
    rp_cli_cmd c;
    json_t *answer = NULL;
    char path[PATH_CAP + 32], base[PATH_CAP];
    int follow, rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1,
                                  "rampart app logs NAME [--follow]", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    follow = rp_opt_get(opts, NOPTS(opts), "follow") != NULL;
    if ((rc = app_path(c.args.pos[0], "/logs", base)) != RP_EXIT_OK)
        goto out;
    rp_strlcpy(path, base, sizeof(path));
    for (;;) {
        const char *text;
        json_int_t next;
        rc = app_request(&c, "GET", path, NULL, &answer, NULL);
        if (rc != RP_EXIT_OK)
            goto out;
        text = json_string_value(json_object_get(answer, "text"));
        next = json_integer_value(json_object_get(answer, "offset"));
        if (text != NULL)
            fputs(text, stdout);
        fflush(stdout);
        json_decref(answer);
        answer = NULL;
        if (!follow)
            break;
        snprintf(path, sizeof(path), "%s?offset=%" JSON_INTEGER_FORMAT, base, next);
        sleep(1);
    }
out:
    json_decref(answer);
    rp_cli_end(&c);
    return rc;
}

static int app_list(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *answer = NULL;
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 0, 0, "rampart app list", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rc = app_request(&c, "GET", "/api/apps", NULL, &answer, NULL);
    if (rc == RP_EXIT_OK) {
        if (c.json)
            rp_cli_print_json(json_incref(answer));
        else if (rp_cli_rows(answer) == NULL)
            rc = rp_cli_fail(RP_EXIT_SERVER, "GET /api/apps: the answer is not a list");
        else
            rp_cli_table(stdout, app_cols, NOPTS(app_cols), rp_cli_rows(answer), "no apps");
    }
    json_decref(answer);
    rp_cli_end(&c);
    return rc;
}

static int app_show(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *answer = NULL;
    char path[PATH_CAP];
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1, "rampart app show NAME", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rc = app_path(c.args.pos[0], "", path);
    if (rc == RP_EXIT_OK)
        rc = app_request(&c, "GET", path, NULL, &answer, NULL);
    if (rc == RP_EXIT_OK) {
        if (c.json)
            rp_cli_print_json(json_incref(answer));
        else
            rp_cli_fields(stdout, app_fields, NOPTS(app_fields), answer);
    }
    json_decref(answer);
    rp_cli_end(&c);
    return rc;
}

static int app_delete(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    char path[PATH_CAP];
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1, "rampart app delete NAME", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rc = app_path(c.args.pos[0], "", path);
    if (rc == RP_EXIT_OK)
        rc = app_request(&c, "DELETE", path, NULL, NULL, NULL);
    if (rc == RP_EXIT_OK && c.json) {
        rp_cli_print_json(json_pack("{s:s,s:s}", "deleted", "app", "name", c.args.pos[0]));
    } else if (rc == RP_EXIT_OK) {
        fputs("Deleted app ", stdout);
        rp_cli_put_safe(stdout, c.args.pos[0]);
        putchar('\n');
    }
    rp_cli_end(&c);
    return rc;
}

static int app_releases(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *answer = NULL;
    char path[PATH_CAP];
    int rc =
        rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1, "rampart app releases NAME", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rc = app_path(c.args.pos[0], "/releases", path);
    if (rc == RP_EXIT_OK)
        rc = app_request(&c, "GET", path, NULL, &answer, NULL);
    if (rc == RP_EXIT_OK) {
        if (c.json)
            rp_cli_print_json(json_incref(answer));
        else if (rp_cli_rows(answer) == NULL)
            rc = rp_cli_fail(RP_EXIT_SERVER, "the answer is not a list");
        else
            rp_cli_table(stdout, release_cols, NOPTS(release_cols), rp_cli_rows(answer),
                         "no releases");
    }
    json_decref(answer);
    rp_cli_end(&c);
    return rc;
}

static int app_rollback(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN, RP_OPT("to", RP_OPT_VALUE)};
    rp_cli_cmd c;
    json_t *body = NULL, *answer = NULL;
    char path[PATH_CAP];
    const char *to;
    uint64_t n = 0;
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1,
                          "rampart app rollback NAME [--to RELEASE]", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    if ((rc = app_path(c.args.pos[0], "/rollback", path)) != RP_EXIT_OK)
        goto out;
    to = rp_opt_get(opts, NOPTS(opts), "to");
    if (to != NULL && (rp_parse_u64(to, strlen(to), INT64_MAX, &n) != 0 || n == 0)) {
        rc = rp_cli_usage_error("--to must be a release number (see rampart app releases)");
        goto out;
    }
    body = to != NULL ? json_pack("{s:I}", "release", (json_int_t)n) : json_object();
    if (body == NULL) {
        rc = rp_cli_fail(RP_EXIT_FAIL, "out of memory");
        goto out;
    }
    rc = app_request(&c, "POST", path, body, &answer, NULL);
    if (rc != RP_EXIT_OK)
        goto out;
    if (c.json) {
        rp_cli_print_json(json_incref(answer));
        goto out;
    }
    printf("Rolled back %s: release %" JSON_INTEGER_FORMAT " is live\n", c.args.pos[0],
           json_integer_value(rp_cli_json_path(answer, "properties.release")));
out:
    json_decref(answer);
    json_decref(body);
    rp_cli_end(&c);
    return rc;
}

/* ---------------------------------------------------------------- settings */

static const rp_col setting_cols[] = {
    {"NAME", "name", RP_COL_TEXT},
    {"VALUE", "value", RP_COL_TEXT},
    {"REFERENCE", "status", RP_COL_TEXT},
    {"DETAILS", "details", RP_COL_TEXT},
};

/* The app's settings (POST .../list), and with status the references' states, as rows. */
static int settings_rows(rp_cli_cmd *c, const char *name, json_t **rows)
{
    char path[PATH_CAP], refs[PATH_CAP];
    json_t *vals = NULL, *st = NULL, *props, *v;
    const char *k;
    int rc;

    *rows = NULL;
    if ((rc = app_path(name, "/config/appsettings/list", path)) != RP_EXIT_OK ||
        (rc = app_path(name, "/config/configreferences/appsettings", refs)) != RP_EXIT_OK)
        return rc;
    rc = app_request(c, "POST", path, NULL, &vals, NULL);
    if (rc == RP_EXIT_OK)
        rc = app_request(c, "GET", refs, NULL, &st, NULL);
    if (rc != RP_EXIT_OK)
        goto out;
    props = json_object_get(vals, "properties");
    *rows = json_array();
    if (*rows == NULL) {
        rc = rp_cli_fail(RP_EXIT_FAIL, "out of memory");
        goto out;
    }
    json_object_foreach(props, k, v)
    {
        json_t *row = json_pack("{s:s,s:O}", "name", k, "value", v), *ref;
        size_t i;
        json_array_foreach(rp_cli_rows(st), i, ref)
        {
            if (json_equal(json_object_get(ref, "name"), json_object_get(row, "name"))) {
                json_t *p = json_object_get(ref, "properties");
                json_object_set(row, "status", json_object_get(p, "status"));
                json_object_set(row, "details", json_object_get(p, "details"));
            }
        }
        json_array_append_new(*rows, row);
    }
out:
    json_decref(vals);
    json_decref(st);
    return rc;
}

static int settings_put(rp_cli_cmd *c, const char *name, json_t *props)
{
    char path[PATH_CAP];
    json_t *body;
    int rc = app_path(name, "/config/appsettings", path);

    if (rc != RP_EXIT_OK)
        return rc;
    body = json_pack("{s:O}", "properties", props);
    if (body == NULL)
        return rp_cli_fail(RP_EXIT_FAIL, "out of memory");
    rc = app_request(c, "PUT", path, body, NULL, NULL);
    json_decref(body);
    return rc;
}

static int settings_list(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *rows = NULL;
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1, "rampart app settings list NAME",
                          envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rc = settings_rows(&c, c.args.pos[0], &rows);
    if (rc == RP_EXIT_OK) {
        if (c.json)
            rp_cli_print_json(json_incref(rows));
        else
            rp_cli_table(stdout, setting_cols, NOPTS(setting_cols), rows, "no settings");
    }
    json_decref(rows);
    rp_cli_end(&c);
    return rc;
}

/* set NAME K=V... and delete NAME K...: read the set, change it, write it whole (PUT replaces). */
static int settings_change(int argc, char **argv, char **envp, int del)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *rows = NULL, *props = NULL, *row;
    size_t i;
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 2, 256,
                          del ? "rampart app settings delete NAME SETTING..."
                              : "rampart app settings set NAME SETTING=VALUE...",
                          envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rc = settings_rows(&c, c.args.pos[0], &rows);
    if (rc != RP_EXIT_OK)
        goto out;
    props = json_object();
    if (props == NULL) {
        rc = rp_cli_fail(RP_EXIT_FAIL, "out of memory");
        goto out;
    }
    json_array_foreach(rows, i, row)
    {
        json_object_set(props, json_string_value(json_object_get(row, "name")),
                        json_object_get(row, "value"));
    }
    for (size_t k = 1; k < c.args.npos; k++) {
        const char *a = c.args.pos[k], *eq = strchr(a, '=');
        char key[300];
        if (del) {
            if (json_object_del(props, a) != 0) {
                rc = rp_cli_fail(RP_EXIT_FAIL, "the app has no setting '%.200s'", a);
                goto out;
            }
            continue;
        }
        if (eq == NULL || eq == a || (size_t)(eq - a) >= sizeof(key)) {
            rc = rp_cli_usage_error("'%.60s' is not SETTING=VALUE", a);
            goto out;
        }
        memcpy(key, a, (size_t)(eq - a));
        key[eq - a] = '\0';
        json_object_set_new(props, key, json_string(eq + 1));
    }
    rc = settings_put(&c, c.args.pos[0], props);
    if (rc == RP_EXIT_OK && !c.json) {
        fputs(del ? "Deleted settings of " : "Set settings of ", stdout);
        rp_cli_put_safe(stdout, c.args.pos[0]);
        puts(" (the app restarts with them)");
    } else if (rc == RP_EXIT_OK) {
        rp_cli_print_json(json_pack("{s:s,s:s}", "updated", "settings", "app", c.args.pos[0]));
    }
out:
    json_decref(rows);
    json_decref(props);
    rp_cli_end(&c);
    return rc;
}

static int settings_set(int argc, char **argv, char **envp)
{
    return settings_change(argc, argv, envp, 0);
}

static int settings_delete(int argc, char **argv, char **envp)
{
    return settings_change(argc, argv, envp, 1);
}

/* ---------------------------------------------------------------- slots */

static int slot_path(const char *name, const char *slot, const char *suffix, char path[PATH_CAP])
{
    char tail[PATH_CAP];

    snprintf(tail, sizeof(tail), "/slots/%.40s%s", slot, suffix);
    for (const char *p = slot; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return rp_cli_usage_error("invalid slot name '%.40s': 1-19 of a-z, 0-9 and '-'", slot);
    return app_path(name, tail, path);
}

static int slot_create(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *body = json_object(), *answer = NULL;
    char path[PATH_CAP];
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 2, 2,
                          "rampart app slot create NAME SLOT", envp);

    if (rc != RP_EXIT_OK) {
        json_decref(body);
        return rc;
    }
    rc = slot_path(c.args.pos[0], c.args.pos[1], "", path);
    if (rc == RP_EXIT_OK)
        rc = app_request(&c, "PUT", path, body, &answer, NULL);
    if (rc == RP_EXIT_OK && c.json)
        rp_cli_print_json(json_incref(answer));
    else if (rc == RP_EXIT_OK)
        rp_cli_fields(stdout, app_fields, NOPTS(app_fields), answer);
    json_decref(answer);
    json_decref(body);
    rp_cli_end(&c);
    return rc;
}

static int slot_delete(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    char path[PATH_CAP];
    int rc = rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 2, 2,
                          "rampart app slot delete NAME SLOT", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rc = slot_path(c.args.pos[0], c.args.pos[1], "", path);
    if (rc == RP_EXIT_OK)
        rc = app_request(&c, "DELETE", path, NULL, NULL, NULL);
    if (rc == RP_EXIT_OK && !c.json)
        printf("Deleted slot %s of %s\n", c.args.pos[1], c.args.pos[0]);
    rp_cli_end(&c);
    return rc;
}

static int slot_list(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *answer = NULL;
    char path[PATH_CAP];
    int rc =
        rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 1, 1, "rampart app slot list NAME", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rc = app_path(c.args.pos[0], "/slots", path);
    if (rc == RP_EXIT_OK)
        rc = app_request(&c, "GET", path, NULL, &answer, NULL);
    if (rc == RP_EXIT_OK) {
        if (c.json)
            rp_cli_print_json(json_incref(answer));
        else
            rp_cli_table(stdout, app_cols, NOPTS(app_cols), rp_cli_rows(answer), "no slots");
    }
    json_decref(answer);
    rp_cli_end(&c);
    return rc;
}

static int app_slot(int argc, char **argv, char **envp)
{
    static const sub t[] = {{"create", slot_create}, {"delete", slot_delete}, {"list", slot_list}};

    return dispatch(t, NOPTS(t), "create, delete, list", argc, argv, envp);
}

static int app_swap(int argc, char **argv, char **envp)
{
    rp_opt opts[] = {RP_OPTS_CONN};
    rp_cli_cmd c;
    json_t *body = NULL, *answer = NULL;
    char path[PATH_CAP];
    int rc =
        rp_cli_begin(&c, argc, argv, opts, NOPTS(opts), 2, 2, "rampart app swap NAME SLOT", envp);

    if (rc != RP_EXIT_OK)
        return rc;
    rc = slot_path(c.args.pos[0], c.args.pos[1], "/slotsswap", path);
    body = json_pack("{s:s}", "targetSlot", "production");
    if (rc == RP_EXIT_OK && body == NULL)
        rc = rp_cli_fail(RP_EXIT_FAIL, "out of memory");
    if (rc == RP_EXIT_OK)
        rc = app_request(&c, "POST", path, body, &answer, NULL);
    if (rc == RP_EXIT_OK && c.json)
        rp_cli_print_json(json_incref(answer));
    else if (rc == RP_EXIT_OK)
        printf("Swapped slot %s into %s: release %" JSON_INTEGER_FORMAT " is live\n", c.args.pos[1],
               c.args.pos[0],
               json_integer_value(rp_cli_json_path(answer, "production.properties.release")));
    json_decref(answer);
    json_decref(body);
    rp_cli_end(&c);
    return rc;
}

static int app_settings(int argc, char **argv, char **envp)
{
    static const sub t[] = {
        {"list", settings_list}, {"set", settings_set}, {"delete", settings_delete}};

    return dispatch(t, NOPTS(t), "list, set, delete", argc, argv, envp);
}

int rp_cmd_app(int argc, char **argv, char **envp)
{
    static const sub t[] = {
        {"create", app_create},     {"deploy", app_deploy}, {"list", app_list},
        {"show", app_show},         {"delete", app_delete}, {"releases", app_releases},
        {"rollback", app_rollback}, {"config", app_config}, {"logs", app_logs},
        {"settings", app_settings}, {"slot", app_slot},     {"swap", app_swap}};

    return dispatch(t, NOPTS(t),
                    "create, deploy, list, show, delete, releases, rollback, config, logs, "
                    "settings, slot, swap",
                    argc, argv, envp);
}
