/*
 * sandbox.h - the privileged launcher of app processes (docs/security-model.md "App sandbox";
 * ARCHITECTURE.md "Processes and threads"): the only code that turns root's rights into an
 * app's sandbox, and the small protocol between it and the supervisor (sites/proc.c).
 *
 * For each start the supervisor spawns rampart's own binary (/proc/self/exe) as
 *     rampart __sandbox launch key=value ...     (rp_sandbox_argv: nothing secret in it)
 * with an empty environment, stdout/stderr to the app's log, on fd RP_SANDBOX_BLOB_FD a sealed
 * memfd holding the command and the app's environment ("CMD\0K=V\0K=V\0..."), on
 * RP_SANDBOX_RELEASE_FD the release directory and (isolated tier) on RP_SANDBOX_RUN_FD the
 * socket directory, both opened by the privileged helper (helper.h) without following a link.
 * Still root, the launcher:
 *   1. moves itself into the app's cgroup with the memory, task and CPU limits written
 *      (sandbox/cgroup.h), sets RLIMIT_CORE 0 (no core dumps: secrets) and RLIMIT_NPROC (the
 *      task limit again, per uid, so a fork bomb is stopped even without cgroups);
 *   2. writes the seccomp filter (sandbox/seccomp.h) to a memfd;
 *   3. executes bubblewrap, which builds the namespaces and mounts (new mount, pid, ipc, uts and
 *      cgroup namespaces; isolated: a network namespace too) and runs, as the sandbox's first
 *      process, rampart's binary again (bound read-only at /run/rampart/init) as
 *          rampart __sandbox init uid=UID
 *      with only CAP_SETUID, CAP_SETGID and CAP_SETPCAP left and the filter installed.
 * The init step drops the capability bounding set, sets no_new_privs, switches to uid = gid =
 * UID with no supplementary groups, clears every capability set, checks that all of it holds,
 * reads the memfd, closes every other descriptor and executes /bin/sh -c CMD with exactly that
 * environment. Neither the environment (app settings are secrets) nor anything else an app's
 * owner controls is ever in a root process's environment (LD_PRELOAD and friends would be
 * honoured there) or on a command line (world-readable in /proc).
 */
#ifndef RP_SANDBOX_SANDBOX_H
#define RP_SANDBOX_SANDBOX_H

#include "sandbox/cgroup.h"

#include <stddef.h>
#include <stdint.h>

#define RP_SANDBOX_VERB       "__sandbox" /* argv[1] that main() hands to rp_sandbox_main */
#define RP_SANDBOX_BLOB_FD    3
#define RP_SANDBOX_RELEASE_FD 4            /* a directory: read-only at /home/site/wwwroot */
#define RP_SANDBOX_RUN_FD     5            /* isolated tier: a directory, at /home/site/run */
#define RP_SANDBOX_BLOB_MAX   (512u << 10) /* command and environment, bytes */
#define RP_SANDBOX_SOCKET     "/home/site/run/app.sock" /* PORT of an isolated app */
#define RP_SANDBOX_ARGV_MAX   32

/* Layers a machine may lack (rp_sandbox_probe); the rest (namespaces, no capabilities, no new
 * privileges, read-only code, a private /tmp) are bubblewrap's and always there. */
enum {
    RP_SANDBOX_UID = 1u << 0,     /* rampart is root: per-app uid, cgroups, capabilities kept
                                     for the switch only */
    RP_SANDBOX_MEMORY = 1u << 1,  /* cgroup memory controller */
    RP_SANDBOX_PIDS = 1u << 2,    /* cgroup pids controller */
    RP_SANDBOX_CPU = 1u << 3,     /* cgroup cpu controller */
    RP_SANDBOX_SECCOMP = 1u << 4, /* seccomp filters */
    RP_SANDBOX_BWRAP = 1u << 5    /* bubblewrap is installed */
};
#define RP_SANDBOX_ALL 0x3fu

/*
 * What this machine offers, as RP_SANDBOX_* bits; *cgroup_mode gets RP_CGROUP_V1/V2/NONE.
 * missing[cap] gets the absent layers in words ("" when none). Cheap; called once by the
 * supervisor at start.
 */
unsigned rp_sandbox_probe(const char *bwrap, int *cgroup_mode, char *missing, size_t cap);

/* One start, as the privileged helper asks for it (the directories travel as descriptors). */
typedef struct rp_sandbox_spec {
    const char *bwrap; /* absolute */
    int isolated;      /* its own network namespace and RP_SANDBOX_RUN_FD for its socket */
    const char *leaf;  /* the app's cgroup (rp_cgroup_leaf) */
    uint32_t uid;      /* = gid */
    rp_cgroup_limits lim;
    unsigned layers;  /* what to use: rp_sandbox_probe's answer (minus what is not wanted) */
    unsigned require; /* layers whose failure must stop the start, RP_SANDBOX_* bits */
} rp_sandbox_spec;

/*
 * The launcher's argv (argv[0] "rampart", argv[1] RP_SANDBOX_VERB, NULL-terminated) for s, its
 * strings in buf[cap]. 0, RP_ETOOBIG, RP_EINVAL (bwrap not absolute, a bad leaf).
 */
int rp_sandbox_argv(const rp_sandbox_spec *s, char *buf, size_t cap, char **argv, size_t nargv);

/*
 * The sealed memfd (close-on-exec: hand it to the launcher as fd RP_SANDBOX_BLOB_FD) holding
 * command and the n "K=V" strings of env. 0 and *fd (the caller closes it), RP_ETOOBIG (more
 * than RP_SANDBOX_BLOB_MAX), RP_EIO.
 */
int rp_sandbox_blob(const char *command, const char *const *env, size_t n, int *fd);

/*
 * Entry point of the launcher and of the init step: argv[0] is RP_SANDBOX_VERB. Does not
 * return when it succeeds (it executes bubblewrap or the app's shell); otherwise prints why
 * to stderr (the app's log) and returns the exit code (126 a start refused, 2 usage).
 */
int rp_sandbox_main(int argc, char **argv);

#endif
