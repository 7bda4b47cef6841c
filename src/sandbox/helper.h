/*
 * helper.h - the privileged helper (privilege separation; docs/security-model.md "Privilege
 * separation"): the one process of `rampart serve` that keeps root after start-up.
 *
 * rampart serve forks it first, before any thread, key or connection exists, then drops to
 * the service user. The helper holds no secret and no socket to the network: only two
 * SOCK_SEQPACKET pairs to the server, one for requests and one for the exits of the
 * processes it started. It does four things, each checked against its own policy (fixed at
 * the fork) rather than anything the server says:
 *   - start an app process: it builds the launcher's argv itself (sandbox.h) from a spec
 *     whose uid must be an app's (never root or the service user), whose paths must lie below
 *     the apps directory, and with its own bubblewrap path, launcher binary and layers;
 *   - signal a process it started and has not reaped yet (SIGTERM or SIGKILL only: no pid
 *     reuse, no other target);
 *   - remove an app's cgroup leaf;
 *   - remove an app's run directory (owned by the app's uid), never following a link.
 * When the server closes its end (it exits, or crashes), the helper kills every process it
 * started and exits.
 */
#ifndef RP_SANDBOX_HELPER_H
#define RP_SANDBOX_HELPER_H

#include <stddef.h>
#include <stdint.h>

#define RP_HELPER_PATH_MAX    4096
#define RP_HELPER_NAME_MAX    64
#define RP_HELPER_WHY_MAX     256
#define RP_HELPER_MISSING_MAX 512

typedef struct rp_helper rp_helper;

typedef struct rp_helper_opts {
    const char *apps_dir;      /* absolute, no trailing '/': every path a request names is below */
    const char *bwrap;         /* NULL: /usr/bin/bwrap */
    const char *exe;           /* the launcher binary; NULL: /proc/self/exe (rampart itself) */
    uint32_t uid_min, uid_max; /* app uids (when the helper is root) */
    uint32_t group;            /* the server's gid: isolated apps' socket directories' group */
    int apps_fd; /* apps_dir, opened without following links (the helper keeps a copy and works
                    from it: a later rename of a directory above changes nothing); -1: opened
                    by path at each request (tests) */
} rp_helper_opts;

/* One app process, as the supervisor asks for it. */
typedef struct rp_helper_spawn {
    const char *name;    /* the app: 1-64 of [a-z0-9-] */
    const char *release; /* read-only in the sandbox */
    const char *run;     /* the instance's run directory: APPS/X/run or APPS/X/run.N; it keys
                            the cgroup leaf, and the isolated tier binds it for its socket */
    int isolated;
    uint32_t uid, memory_mb, pids, cpu_percent;
    unsigned layers, require; /* RP_SANDBOX_* */
} rp_helper_spawn;

/*
 * Forks the helper. Call before any thread exists. 0 and *out, RP_EINVAL (bad opts), RP_EIO.
 * The layers the helper found on this machine are asked for once here (rp_helper_layers).
 */
int rp_helper_start(const rp_helper_opts *o, rp_helper **out);

/* Closes the server's ends: the helper kills what it started, and is waited for. NULL is fine. */
void rp_helper_stop(rp_helper *h);

/* What the machine offers (rp_sandbox_probe, run by the helper), and the absent layers in words. */
unsigned rp_helper_layers(const rp_helper *h, char *missing, size_t cap);

/* The helper's pid (for tests and the log). */
int rp_helper_pid(const rp_helper *h);

/*
 * Starts a process: the launcher with blob on RP_SANDBOX_BLOB_FD, stdout on out and stderr on
 * err (all three stay the caller's to close). 0 and *pid; RP_EPERM (the helper refused it:
 * why says what), RP_EIO (it failed, or the helper is gone), RP_ETOOBIG (a string over its
 * field). Thread-safe, as every request below.
 */
int rp_helper_spawn_process(rp_helper *h, const rp_helper_spawn *s, int blob, int out, int err,
                            int *pid, char *why, size_t cap);

/* SIGTERM or SIGKILL to a process it started: 0, RP_ENOENT (reaped already), RP_EPERM, RP_EIO. */
int rp_helper_kill(rp_helper *h, int pid, int sig);

/* Removes the cgroup leaf of (name, run): 0 (gone or never there), RP_EAGAIN (tasks left),
 * RP_EPERM, RP_ETOOBIG, RP_EIO. */
int rp_helper_uncgroup(rp_helper *h, const char *name, const char *run);

/* Removes a run directory (APPS/X/run or run.N) and all in it, as root, never following a
 * link, however deep the app made it: 0 (gone or never there), RP_EPERM (not such a path),
 * RP_ETOOBIG, RP_EIO. */
int rp_helper_rmrun(rp_helper *h, const char *run);

/* The descriptor that turns readable when a process has ended (poll it; never read it). */
int rp_helper_event_fd(const rp_helper *h);

/*
 * The next ended process: 0 with *pid, *status (exit code) and *sig (the signal that ended
 * it, or 0); RP_EAGAIN (none now); RP_ECLOSED (the helper is gone).
 */
int rp_helper_next_exit(rp_helper *h, int *pid, int64_t *status, int *sig);

/* ---- the request check, exposed for the unit tests and the fuzzer ---- */

enum { RP_HELPER_OP_SPAWN = 1, RP_HELPER_OP_KILL, RP_HELPER_OP_UNCGROUP, RP_HELPER_OP_RMRUN };

/* A request as it travels (fixed size; every string NUL-terminated within its field). */
typedef struct rp_helper_req {
    uint32_t magic;
    uint32_t op;
    int32_t pid, sig;
    uint32_t uid, memory_mb, pids, cpu_percent, layers, require, isolated;
    char name[RP_HELPER_NAME_MAX + 1];
    char release[RP_HELPER_PATH_MAX];
    char run[RP_HELPER_PATH_MAX];
} rp_helper_req;

typedef struct rp_helper_policy {
    const char *apps_dir;
    uint32_t uid_min, uid_max;
    int root;        /* the helper is root: uids are checked (else the launcher keeps its own) */
    unsigned layers; /* what the machine offers */
} rp_helper_policy;

/*
 * Checks n bytes that arrived as a request: 0 and *out, or RP_EPARSE / RP_EPERM with a reason
 * in why. Pids are checked against the live children by the caller.
 */
int rp_helper_check(const rp_helper_policy *p, const void *buf, size_t n, rp_helper_req *out,
                    char *why, size_t cap);

/* path is APPS/<one or more clean components>: no "", ".", ".." component, no "//". */
int rp_helper_below(const char *apps_dir, const char *path);

#endif
