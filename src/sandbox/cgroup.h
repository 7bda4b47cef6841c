/*
 * cgroup.h - resource limits of app sandboxes through control groups, v2 (the unified
 * hierarchy, /sys/fs/cgroup/cgroup.controllers) or v1 (one hierarchy per controller,
 * /sys/fs/cgroup/{memory,pids,cpu}), whichever the machine has, detected on every call.
 *
 * Each app gets ROOT/rampart/LEAF (v2) or ROOT/CONTROLLER/rampart/LEAF (v1), LEAF being unique
 * per app and installation (rp_cgroup_leaf). The launcher (sandbox.c) writes the limits and
 * moves itself in before it executes bubblewrap, so nothing the app starts is ever outside:
 *   memory  v2 memory.max, memory.swap.max 0, memory.oom.group 1 (an out-of-memory kill ends
 *           the whole app, which the supervisor restarts); v1 memory.limit_in_bytes and
 *           memory.memsw.limit_in_bytes (no swap) where swap accounting exists
 *   pids    pids.max (tasks: processes and threads, bubblewrap's own two included)
 *   cpu     v2 cpu.max "QUOTA 100000"; v1 cpu.cfs_quota_us / cpu.cfs_period_us
 * Used by one process at a time per app (the launcher, then the supervisor to remove the
 * group); runs as root. ROOT is "/sys/fs/cgroup" except in tests.
 */
#ifndef RP_SANDBOX_CGROUP_H
#define RP_SANDBOX_CGROUP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RP_CGROUP_ROOT     "/sys/fs/cgroup"
#define RP_CGROUP_LEAF_MAX 96

enum { RP_CGROUP_NONE = 0, RP_CGROUP_V1 = 1, RP_CGROUP_V2 = 2 };
/* Controller bits. */
enum { RP_CGROUP_MEMORY = 1u << 0, RP_CGROUP_PIDS = 1u << 1, RP_CGROUP_CPU = 1u << 2 };
#define RP_CGROUP_ALL (RP_CGROUP_MEMORY | RP_CGROUP_PIDS | RP_CGROUP_CPU)

typedef struct rp_cgroup_limits {
    uint32_t memory_mb;   /* 0: no memory limit */
    uint32_t pids;        /* 0: no task limit */
    uint32_t cpu_percent; /* of one core; 0: no CPU limit */
} rp_cgroup_limits;

/*
 * The layout under root (RP_CGROUP_V2, RP_CGROUP_V1 or RP_CGROUP_NONE) and in *controllers the
 * controllers it offers (v2: those listed in cgroup.controllers; v1: those mounted).
 */
int rp_cgroup_probe(const char *root, unsigned *controllers);

/*
 * The leaf name for app name whose private directory is key (any string unique per app and
 * installation, e.g. its run directory): "app-NAME-" and 16 hex digits, so two installations on
 * one machine never share a group. 0 or RP_EINVAL (name too long).
 */
int rp_cgroup_leaf(const char *name, const char *key, char *out, size_t cap);

/*
 * Creates (or reuses) the group leaf, ends what is left in it of an earlier run, writes lim and
 * moves pid in. *done gets the controllers whose limits are in force. Returns 0 when every
 * controller in want was applied, RP_EUNSUPPORTED (no cgroups), RP_EIO (some failed: err says
 * which). The process is moved into whatever groups could be made even then.
 */
int rp_cgroup_enter(const char *root, const char *leaf, const rp_cgroup_limits *lim, unsigned want,
                    pid_t pid, unsigned *done, char *err, size_t errlen);

/* Removes the group leaf: 0 (gone, or never there), RP_EAGAIN (tasks are still in it: the
 * kernel is still ending them; try again shortly). */
int rp_cgroup_remove(const char *root, const char *leaf);

#endif
