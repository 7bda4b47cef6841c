/*
 * proc.h - the supervisor of app processes (docs/sites.md "App processes"): one thread with
 * its own libuv loop starts each app's command in its sandbox, keeps its stdout/stderr as the
 * app's log, waits until a new process is ready before it sends it requests, checks its health,
 * and restarts it with back-off when it exits or stays unhealthy. Loop threads ask it where an
 * app answers (a lock, a lookup).
 *
 * Zero-downtime replacement: a new spec for a running app (a deploy, a rollback, changed
 * settings, a slot swap) starts the new process alongside the old one, on its own port (or
 * socket), in its own cgroup; only once it is ready do rp_procs_target and rp_procs_port name
 * it, and the old one is stopped RP_PROC_DRAIN_MS later (SIGTERM, SIGKILL after
 * RP_PROC_GRACE_MS). Ready: a connection is accepted, or with a health check path a GET of it
 * answers 200-399. A new process that exits first or is not ready within the start time limit
 * is stopped, the reason goes to the app's log, the old one keeps serving and the start is
 * retried with back-off. With a health check path, the serving process is asked every
 * RP_PROC_HEALTH_INTERVAL_MS; after the app's limit of consecutive failures a new process
 * replaces it the same way.
 *
 * The sandbox (src/sandbox/, docs/security-model.md "App sandbox"): every start goes through
 * the privileged launcher (rampart's own binary re-executed, sandbox/sandbox.h), which puts the
 * process into its cgroup with its limits and runs bubblewrap; the app's command runs
 * under the app's own uid and gid, with no capabilities (effective, permitted, inheritable,
 * ambient and bounding sets empty), no_new_privs, a seccomp filter, new mount, pid, ipc, uts
 * and cgroup namespaces, /usr and a few /etc files read-only, its release read-only at
 * /home/site/wwwroot, a private /tmp (memory, at most its memory limit), its own /proc and a
 * minimal /dev: nothing of the data directory, no other app. Tiers:
 * A function app's functions with an identity of their own each run a worker of their own: an
 * entry named "APP~FUNCTION" with site APP and the run directory APPS/APP/run-HHHHHHHH.
 *   RP_PROC_SHARED    the host's network: the app listens on 127.0.0.1:PORT
 *   RP_PROC_ISOLATED  a network namespace of its own (only its loopback: no egress, no host or
 *                     other apps' ports); it listens on the unix socket PORT =
 *                     /home/site/run/app.sock, which is RUN_DIR/app.sock on the host for the
 *                     first process and RUN_DIR.N/app.sock (N 1-9) for one started beside it
 * The environment is PORT, HOME=/tmp, PATH, WEBSITE_SITE_NAME, WEBSITE_HOSTNAME and the
 * caller's extra variables, handed over in a sealed memfd: never on a command line, never in a
 * root process's environment. Two of the extra variables (app settings, as in Azure) tune the
 * supervisor: WEBSITES_CONTAINER_START_TIME_LIMIT (seconds a start may take to be ready,
 * 1-1800, default 230) and WEBSITE_HEALTHCHECK_MAXPINGFAILURES (failed health checks before a
 * restart, 2-10, default RP_PROC_HEALTH_FAILS).
 */
#ifndef RP_SITES_PROC_H
#define RP_SITES_PROC_H

#include "sandbox/helper.h"

#include <stddef.h>
#include <stdint.h>

#define RP_PROC_COMMAND_MAX     1024
#define RP_PROC_LOG_MAX         (10u << 20)  /* app.log rotates to app.log.1 past this */
#define RP_PROC_BACKOFF_MAX     30000        /* ms between restarts of a crashing app, at most */
#define RP_PROC_ENV_MAX         (256u << 10) /* bytes of extra "K=V" variables, all together */
#define RP_PROC_SOCKET_MAX      107          /* bytes of an isolated app's host socket path */
#define RP_PROC_HEALTH_PATH_MAX 256          /* bytes of a health check path */
#define RP_PROC_REASON_MAX      256          /* bytes of rp_proc_state.last_failure */

/* Readiness and health (docs/sites.md "App processes"). */
#define RP_PROC_READY_MS           230000 /* a start's time to be ready (Azure's default) */
#define RP_PROC_READY_MS_MAX       1800000
#define RP_PROC_HEALTH_INTERVAL_MS 10000 /* between health checks of the serving process */
#define RP_PROC_HEALTH_TIMEOUT_MS  5000  /* a check (or a readiness probe) without an answer */
#define RP_PROC_HEALTH_FAILS       3     /* consecutive failed checks that restart it */
#define RP_PROC_DRAIN_MS           2000  /* a replaced process's time for requests it has */
#define RP_PROC_GRACE_MS           5000  /* SIGTERM to SIGKILL */

/* Tiers (appcfg "sandbox.tier"). */
#define RP_PROC_SHARED   0
#define RP_PROC_ISOLATED 1

/* Default limits (appcfg "sandbox"): memory in MiB, tasks (processes and threads), CPU in
 * percent of one core. */
#define RP_PROC_MEMORY_MB_DEFAULT 512
#define RP_PROC_PIDS_DEFAULT      256
#define RP_PROC_CPU_DEFAULT       100

/* Sandbox layers a machine may lack (rp_procs_layers): the RP_SANDBOX_* bits of
 * sandbox/sandbox.h, repeated here for callers of this header. */
#define RP_PROC_LAYER_UID     (1u << 0)
#define RP_PROC_LAYER_MEMORY  (1u << 1)
#define RP_PROC_LAYER_PIDS    (1u << 2)
#define RP_PROC_LAYER_CPU     (1u << 3)
#define RP_PROC_LAYER_SECCOMP (1u << 4)
#define RP_PROC_LAYER_BWRAP   (1u << 5)

typedef struct rp_procs rp_procs;

/* One app's process, as rp_procs_set wants it. Every pointer is borrowed for the call only. */
typedef struct rp_proc_spec {
    const char *name;    /* the app, or "APP~FUNCTION" for a function worker of app APP */
    const char *site;    /* NULL: name; else the app name (WEBSITE_SITE_NAME, the sandbox's) */
    const char *command; /* by /bin/sh -c; at most RP_PROC_COMMAND_MAX bytes */
    const char *dir;     /* the release directory, absolute */
    const char *log_dir; /* for app.log, absolute (created 0700) */
    const char *run_dir; /* isolated tier: DATA/apps/NAME/run, absolute (the launcher makes it,
                            0700, owned by uid); may be NULL for the shared tier */
    const char *host;    /* NAME.D, for WEBSITE_HOSTNAME */
    uint32_t uid;        /* the app's uid = gid (RP_SITES_UID_BASE + n); never 0 */
    int tier;            /* RP_PROC_SHARED | RP_PROC_ISOLATED */
    uint32_t memory_mb, pids, cpu_percent; /* limits; 0 = the default */
    const char *const *env; /* nenv extra "K=V" (app settings, IDENTITY_*): copied, wiped when
                               dropped; one that names a built-in variable is ignored */
    size_t nenv;
    const char *health_path; /* NULL or "": no health check; else '/' and printable ASCII
                                without space or '#', at most RP_PROC_HEALTH_PATH_MAX bytes */
} rp_proc_spec;

/* What the API can show of an app's process (rp_procs_state). */
typedef struct rp_proc_state {
    int running;       /* a process exists: serving, or starting while none serves */
    int ready;         /* requests go to a process that passed its readiness check */
    int healthy;       /* ready, and its last health check passed (always, without a path) */
    unsigned restarts; /* starts nobody asked for: after a crash, failed health checks, or a
                          start that did not become ready (a deploy or settings change is not
                          one); 0 again when the app is stopped */
    char last_failure[RP_PROC_REASON_MAX]; /* the latest of those reasons, "" when none */
} rp_proc_state;

/* Starts the supervisor thread, which has helper (borrowed: it must outlive the supervisor)
 * start, signal and clean up after every process. Logs the sandbox layers the helper found
 * missing (a warning). 0, RP_EINVAL (no helper), RP_ENOMEM, RP_EIO. */
int rp_procs_open(rp_helper *helper, rp_procs **out);
/* Stops every process (SIGTERM, SIGKILL after 3 s) and the thread. Accepts NULL. */
void rp_procs_close(rp_procs *p);

/*
 * The layers this machine offers (RP_PROC_LAYER_* bits); missing[cap] gets the absent ones in
 * words ("" when none). Thread-safe.
 */
unsigned rp_procs_layers(rp_procs *p, char *missing, size_t cap);
/*
 * Layers without which no app may start (RP_PROC_LAYER_* bits; default none: an app starts
 * without a missing layer, which rp_procs_open logged). A start then fails, with the reason in
 * the app's log, and is retried with back-off. Call before the first rp_procs_set.
 */
void rp_procs_require(rp_procs *p, unsigned layers);

/*
 * Runs spec->command for app spec->name in its sandbox. An app that runs already gets a new
 * process with the new spec (a deploy, a rollback, changed settings), which takes over once it
 * is ready; the old one is stopped then. 0, RP_EINVAL (bad name, command, path, uid, tier,
 * variable or health check path), RP_ETOOBIG (the variables are over RP_PROC_ENV_MAX, or the
 * longest socket path, RUN_DIR.9/app.sock, over RP_PROC_SOCKET_MAX), RP_ENOMEM.
 */
int rp_procs_set(rp_procs *p, const rp_proc_spec *spec);
/* Stops app name's process for good (the app was deleted or has no command any more). */
void rp_procs_stop(rp_procs *p, const char *name);
/*
 * Where app name's process answers: a shared-tier app on 127.0.0.1:*port (*unix_path ""), an
 * isolated one on the unix socket unix_path[cap] (*port 0; cap >= RP_PROC_SOCKET_MAX + 1).
 * *running is 0 until a process there is ready (it waits to be started, or to listen). 0, or
 * RP_ENOENT when the app has no process (then *port is 0 and unix_path "").
 */
int rp_procs_target(rp_procs *p, const char *name, int *port, char *unix_path, size_t cap,
                    int *running);
/* The loopback port of a shared-tier app (0: no process, or an isolated app); *running as
 * above. */
int rp_procs_port(rp_procs *p, const char *name, int *running);
/*
 * App name's process state into *out (a copy: thread-safe, cheap). 0, or RP_ENOENT when the
 * supervisor has never had a process for it (then *out is all zero).
 */
int rp_procs_state(rp_procs *p, const char *name, rp_proc_state *out);

#endif
