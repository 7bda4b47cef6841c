/*
 * cmd_exec.c - `rampart identity exec`: a workload session around one child process.
 *
 * Order of events: parse, connect, create the session, install the signal forwarders, spawn
 * (posix_spawnp: PATH is searched as a shell would), wait, end the session, exit with the
 * child's status. The session is ended even when the command could not be started. Signals:
 * SIGINT and SIGTERM sent to rampart are passed to the child; a ^C typed at the terminal
 * reaches the child by itself (same process group), so those (si_code SI_KERNEL) are not sent
 * a second time. A signal that arrives while the child is being started is delivered to it
 * once it exists. A signal that was ignored when rampart started stays ignored, and the child
 * inherits that, as it would from a shell. The child is waited for without being reaped
 * first (waitid WNOWAIT), so a forwarded signal can never hit a recycled process id.
 */
#include "cli/cmd_exec.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PATH_CAP 2048

int rp_exec_parse(int argc, char **argv, rp_exec_args *out, char *err, size_t errlen)
{
    rp_opt opts[] = {RP_OPT("identity", RP_OPT_LIST), RP_OPT("ttl", RP_OPT_VALUE),
                     RP_OPT("url", RP_OPT_VALUE), RP_OPT("ca", RP_OPT_VALUE),
                     RP_OPT("token", RP_OPT_VALUE)};
    rp_args a;
    const char *ttl;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = rp_args_parse(argc, argv, opts, sizeof(opts) / sizeof(opts[0]), 0, 1, &a, err, errlen);
    if (rc != 0) {
        if (a.npos == 0 && strstr(err, "unexpected argument") != NULL)
            snprintf(err + strlen(err), errlen - strlen(err),
                     "; put the command after --: rampart identity exec --identity NAME -- CMD");
        return rc;
    }
    if (opts[0].nvalues == 0) {
        snprintf(err, errlen, "identity exec needs --identity NAME");
        return RP_EINVAL;
    }
    if (a.rest == NULL || a.nrest == 0) {
        snprintf(err, errlen, "identity exec needs a command after --");
        return RP_EINVAL;
    }
    for (size_t i = 0; i < opts[0].nvalues; i++) {
        if (opts[0].values[i][0] == '\0') {
            snprintf(err, errlen, "--identity needs a name");
            return RP_EINVAL;
        }
        out->identities[i] = opts[0].values[i];
    }
    out->nidentities = opts[0].nvalues;
    ttl = opts[1].value;
    if (ttl != NULL) {
        uint64_t n;
        if (rp_parse_u64(ttl, strlen(ttl), (uint64_t)RP_CLI_DURATION_MAX, &n) == 0)
            out->ttl_s = (int64_t)n;
        else if (rp_cli_parse_duration(ttl, &out->ttl_s) != 0)
            out->ttl_s = 0;
        if (out->ttl_s <= 0) {
            snprintf(err, errlen, "--ttl must be a positive number of seconds or a duration");
            return RP_EINVAL;
        }
    }
    out->url = opts[2].value;
    out->ca = opts[3].value;
    out->token = opts[4].value;
    out->cmd = a.rest;
    out->ncmd = a.nrest;
    return 0;
}

/* "NAME=value" in a new heap string. */
static char *env_entry(const char *name, const char *value)
{
    size_t n;
    char *s;

    if (rp_size_add(strlen(name), strlen(value), &n) != 0 || rp_size_add(n, 2, &n) != 0)
        return NULL;
    s = rp_malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s=%s", name, value);
    return s;
}

static int is_var(const char *entry, const char *name)
{
    size_t n = strlen(name);

    return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

int rp_exec_env_build(char **envp, const char *endpoint, const char *header, rp_exec_env *out)
{
    size_t n = 0, k = 0, bytes;

    memset(out, 0, sizeof(*out));
    for (char **e = envp; e != NULL && *e != NULL; e++)
        n++;
    if (rp_size_add(n, 3, &n) != 0 || rp_size_mul(n, sizeof(char *), &bytes) != 0)
        return RP_ETOOBIG;
    out->envp = rp_malloc(bytes);
    out->endpoint_var = env_entry("IDENTITY_ENDPOINT", endpoint);
    out->header_var = env_entry("IDENTITY_HEADER", header);
    if (out->envp == NULL || out->endpoint_var == NULL || out->header_var == NULL) {
        rp_exec_env_free(out);
        return RP_ENOMEM;
    }
    for (char **e = envp; e != NULL && *e != NULL; e++)
        if (!is_var(*e, "IDENTITY_ENDPOINT") && !is_var(*e, "IDENTITY_HEADER"))
            out->envp[k++] = *e;
    out->envp[k++] = out->endpoint_var;
    out->envp[k++] = out->header_var;
    out->envp[k] = NULL;
    return 0;
}

void rp_exec_env_free(rp_exec_env *e)
{
    if (e == NULL)
        return;
    if (e->header_var != NULL)
        OPENSSL_cleanse(e->header_var, strlen(e->header_var));
    rp_free(e->header_var);
    rp_free(e->endpoint_var);
    rp_free(e->envp);
    memset(e, 0, sizeof(*e));
}

int rp_exec_status_code(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return RP_EXIT_FAIL;
}

/* ---------------------------------------------------------------- signals */

static volatile sig_atomic_t child_pid;   /* > 0 while the child may be signalled */
static volatile sig_atomic_t pending_sig; /* arrived before the child existed */

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;

    (void)uc;
    if (child_pid > 0) {
        /* From the terminal (SI_KERNEL) it reached the child's process group already. */
        if (si == NULL || si->si_code != SI_KERNEL)
            kill((pid_t)child_pid, sig);
    } else {
        pending_sig = sig;
    }
    errno = saved;
}

/* Installs the forwarder for sig unless sig was ignored at start; *installed says which. */
static void forward(int sig, struct sigaction *old, int *installed)
{
    struct sigaction sa;

    *installed = 0;
    if (sigaction(sig, NULL, old) != 0 || old->sa_handler == SIG_IGN)
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    *installed = sigaction(sig, &sa, NULL) == 0;
}

/*
 * Starts cmd with env, forwards signals, waits. Returns the exit code that reports the child
 * (or 126/127 when it could not start, with a message).
 */
static int run_child(char **cmd, char **env)
{
    static const int sigs[2] = {SIGINT, SIGTERM};
    struct sigaction old[2];
    int installed[2];
    posix_spawnattr_t attr;
    sigset_t none, block, saved;
    pid_t pid = 0;
    siginfo_t info;
    int rc, status = 0, code;

    sigemptyset(&none);
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    child_pid = 0;
    pending_sig = 0;
    for (int i = 0; i < 2; i++)
        forward(sigs[i], &old[i], &installed[i]);
    fflush(stdout);
    fflush(stderr);
    /* The child starts with an empty signal mask whatever ours is. */
    rc = posix_spawnattr_init(&attr);
    if (rc == 0) {
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
        rc = posix_spawnp(&pid, cmd[0], NULL, &attr, cmd, env);
        posix_spawnattr_destroy(&attr);
    }
    if (rc != 0) {
        code = rc == ENOENT ? 127 : 126;
        rp_cli_fail(code, "%.200s: %s", cmd[0], rc == ENOENT ? "command not found" : strerror(rc));
        goto out;
    }
    child_pid = (sig_atomic_t)pid;
    if (pending_sig != 0)
        kill(pid, (int)pending_sig);
    /* Wait for the end without reaping, so the pid stays ours while signals may be sent. */
    for (;;) {
        memset(&info, 0, sizeof(info));
        if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) == 0)
            break;
        if (errno != EINTR)
            break;
    }
    sigprocmask(SIG_BLOCK, &block, &saved);
    child_pid = 0;
    sigprocmask(SIG_SETMASK, &saved, NULL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    code = rp_exec_status_code(status);
out:
    for (int i = 0; i < 2; i++)
        if (installed[i])
            sigaction(sigs[i], &old[i], NULL);
    return code;
}

/* ---------------------------------------------------------------- the command */

/* Warns about inherited variables that make the Azure SDKs pick another managed identity
 * protocol than the App Service one rampart speaks. */
static void warn_conflicts(char **envp)
{
    static const char *const names[] = {"IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT"};

    for (char **e = envp; e != NULL && *e != NULL; e++)
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (is_var(*e, names[i]))
                fprintf(stderr,
                        "rampart: warning: %s is set in the environment; Azure SDKs may then "
                        "use another managed identity protocol\n",
                        names[i]);
}

int rp_cmd_identity_exec(int argc, char **argv, char **envp)
{
    rp_exec_args a;
    rp_opt conn[3] = {RP_OPT("url", RP_OPT_VALUE), RP_OPT("ca", RP_OPT_VALUE),
                      RP_OPT("token", RP_OPT_VALUE)};
    rp_client_settings cs;
    rp_exec_env env;
    json_t *body = NULL, *extra = NULL, *answer = NULL, *hdr;
    const char *id, *endpoint, *header;
    char err[512] = "", path[PATH_CAP];
    int rc, code;

    if (rp_exec_parse(argc, argv, &a, err, sizeof(err)) != 0)
        return rp_cli_usage_error("%s\nusage: rampart identity exec --identity NAME "
                                  "[--identity NAME2 ...] [--ttl SECONDS] -- CMD [ARGS...]",
                                  err);
    conn[0].value = a.url;
    conn[1].value = a.ca;
    conn[2].value = a.token;
    rc = rp_cli_connect(&cs, conn, 3, envp, 1);
    if (rc != RP_EXIT_OK)
        return rc;
    memset(&env, 0, sizeof(env));
    if (rp_cli_path(path, sizeof(path), "/api/identities/%s/sessions", a.identities[0]) != 0) {
        rc = rp_cli_usage_error("--identity: '%.60s' cannot be an identity name", a.identities[0]);
        goto out;
    }
    extra = json_array();
    for (size_t i = 1; extra != NULL && i < a.nidentities; i++)
        json_array_append_new(extra, json_string(a.identities[i]));
    body = json_pack("{s:O}", "identities", extra);
    if (body != NULL && a.ttl_s > 0)
        json_object_set_new(body, "ttlSeconds", json_integer(a.ttl_s));
    if (body == NULL || json_array_size(extra) + 1 != a.nidentities) {
        rc = rp_cli_fail(RP_EXIT_USAGE, "--identity names must be UTF-8 text");
        goto out;
    }
    rc = rp_cli_call(&cs, "POST", path, body, &answer, NULL);
    if (rc != RP_EXIT_OK)
        goto out;
    id = json_string_value(json_object_get(answer, "id"));
    endpoint = json_string_value(json_object_get(answer, "endpoint"));
    hdr = json_object_get(answer, "header");
    header = json_string_value(hdr);
    if (id == NULL || endpoint == NULL || header == NULL || header[0] == '\0') {
        rc = rp_cli_fail(RP_EXIT_SERVER, "POST %s: the answer lacks id, endpoint or header", path);
        goto out;
    }
    if (rp_exec_env_build(envp, endpoint, header, &env) != 0) {
        rc = rp_cli_fail(RP_EXIT_FAIL, "out of memory");
        goto out;
    }
    OPENSSL_cleanse((char *)header, json_string_length(hdr)); /* env holds the only copy now */
    warn_conflicts(envp);
    code = run_child(a.cmd, env.envp);
    rp_exec_env_free(&env);
    /* The session ends with the command; if this fails it still expires on its own. */
    if (rp_cli_path(path, sizeof(path), "/api/identities/sessions/%s", id) != 0 ||
        rp_cli_call(&cs, "DELETE", path, NULL, NULL, NULL) != RP_EXIT_OK)
        fprintf(stderr, "rampart: warning: could not end the workload session; it expires at "
                        "its TTL\n");
    rc = code;
out:
    rp_exec_env_free(&env);
    json_decref(answer);
    json_decref(body);
    json_decref(extra);
    rp_client_settings_free(&cs);
    return rc;
}
