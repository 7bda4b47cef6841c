/*
 * cgroup.c - app resource limits through cgroup v2 or v1 (cgroup.h).
 *
 * Small synchronous file writes, once per process start (in the launcher, before bubblewrap)
 * and once per stop (rmdir, in the supervisor). Every path is built with a bound and checked;
 * every file is opened O_NOFOLLOW.
 */
#include "sandbox/cgroup.h"
#include "base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH_CAP 512

static const struct {
    unsigned bit;
    const char *name;
} ctrls[] = {{RP_CGROUP_MEMORY, "memory"}, {RP_CGROUP_PIDS, "pids"}, {RP_CGROUP_CPU, "cpu"}};

static int path(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int path(char *out, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, PATH_CAP, fmt, ap);
    va_end(ap);
    return n > 0 && n < PATH_CAP ? 0 : RP_ETOOBIG;
}

/* Writes value to dir/file: 0 or -errno. */
static int put(const char *dir, const char *file, const char *value)
{
    char p[PATH_CAP];
    size_t n = strlen(value);
    ssize_t w;
    int fd, e;

    if (path(p, "%s/%s", dir, file) != 0)
        return -ENAMETOOLONG;
    fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    w = write(fd, value, n);
    e = w == (ssize_t)n ? 0 : (w < 0 ? -errno : -EIO);
    close(fd);
    return e;
}

/* Reads dir/file into buf (NUL-terminated, truncated to cap - 1). Bytes read, or -errno. */
static ssize_t get(const char *dir, const char *file, char *buf, size_t cap)
{
    char p[PATH_CAP];
    ssize_t n, total = 0;
    int fd;

    if (path(p, "%s/%s", dir, file) != 0)
        return -ENAMETOOLONG;
    fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    while ((size_t)total < cap - 1 && (n = read(fd, buf + total, cap - 1 - (size_t)total)) > 0)
        total += n;
    close(fd);
    buf[total] = '\0';
    return total;
}

static int has_word(const char *list, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ' ' || p[-1] == '\n') &&
            (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
            return 1;
    return 0;
}

int rp_cgroup_probe(const char *root, unsigned *controllers)
{
    char p[PATH_CAP], list[512];

    *controllers = 0;
    if (get(root, "cgroup.controllers", list, sizeof(list)) >= 0) {
        for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++)
            if (has_word(list, ctrls[i].name))
                *controllers |= ctrls[i].bit;
        return RP_CGROUP_V2;
    }
    for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++)
        if (path(p, "%s/%s/cgroup.procs", root, ctrls[i].name) == 0 && access(p, F_OK) == 0)
            *controllers |= ctrls[i].bit;
    return *controllers != 0 ? RP_CGROUP_V1 : RP_CGROUP_NONE;
}

int rp_cgroup_leaf(const char *name, const char *key, char *out, size_t cap)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a: collisions only, no adversary */
    int n;

    for (const unsigned char *s = (const unsigned char *)key; *s; s++)
        h = (h ^ *s) * 1099511628211ull;
    n = snprintf(out, cap, "app-%s-%016llx", name, (unsigned long long)h);
    return n > 0 && (size_t)n < cap && strchr(name, '/') == NULL && name[0] != '.' ? 0 : RP_EINVAL;
}

/* Ends every task left in dir (an earlier run of the same app, orphaned). */
static void end_leftovers(const char *dir, int v2)
{
    char list[4096];
    char *p, *end;

    if (get(dir, "cgroup.procs", list, sizeof(list)) <= 0)
        return;
    if (v2 && put(dir, "cgroup.kill", "1") == 0)
        return;
    for (p = list; *p; p = end) {
        long pid = strtol(p, &end, 10);
        if (end == p)
            break;
        if (pid > 1 && pid != (long)getpid())
            (void)kill((pid_t)pid, SIGKILL);
        while (*end == '\n')
            end++;
    }
}

static void say(char *err, size_t errlen, const char *what, const char *file, int e)
{
    size_t used = strlen(err);

    if (used + 1 < errlen)
        snprintf(err + used, errlen - used, "%s%s: %s (%s)", used ? "; " : "", what, file,
                 strerror(-e));
}

/* The limits of one controller in dir. 0 or -errno, *file naming what failed. */
static int limit(const char *dir, unsigned bit, const rp_cgroup_limits *lim, int v2,
                 const char **file)
{
    char v[64];
    int e = 0;

    if (bit == RP_CGROUP_MEMORY) {
        unsigned long long bytes = (unsigned long long)lim->memory_mb << 20;
        if (lim->memory_mb == 0)
            snprintf(v, sizeof(v), v2 ? "max" : "-1");
        else
            snprintf(v, sizeof(v), "%llu", bytes);
        if (v2) {
            *file = "memory.max";
            e = put(dir, *file, v);
            if (e == 0) {
                (void)put(dir, "memory.swap.max", lim->memory_mb ? "0" : "max");
                (void)put(dir, "memory.oom.group", "1");
            }
        } else {
            /* memsw (memory + swap) may never be below the memory limit: open it first. */
            (void)put(dir, "memory.memsw.limit_in_bytes", "-1");
            *file = "memory.limit_in_bytes";
            e = put(dir, *file, v);
            if (e == 0)
                (void)put(dir, "memory.memsw.limit_in_bytes", v);
        }
    } else if (bit == RP_CGROUP_PIDS) {
        if (lim->pids == 0)
            snprintf(v, sizeof(v), "max");
        else
            snprintf(v, sizeof(v), "%u", lim->pids);
        *file = "pids.max";
        e = put(dir, *file, v);
    } else if (v2) {
        if (lim->cpu_percent == 0)
            snprintf(v, sizeof(v), "max 100000");
        else
            snprintf(v, sizeof(v), "%llu 100000", (unsigned long long)lim->cpu_percent * 1000);
        *file = "cpu.max";
        e = put(dir, *file, v);
    } else {
        *file = "cpu.cfs_period_us";
        e = put(dir, *file, "100000");
        if (e == 0) {
            if (lim->cpu_percent == 0)
                snprintf(v, sizeof(v), "-1");
            else
                snprintf(v, sizeof(v), "%llu", (unsigned long long)lim->cpu_percent * 1000);
            *file = "cpu.cfs_quota_us";
            e = put(dir, *file, v);
        }
    }
    return e;
}

static int make_dir(const char *p)
{
    return mkdir(p, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

int rp_cgroup_enter(const char *root, const char *leaf, const rp_cgroup_limits *lim, unsigned want,
                    pid_t pid, unsigned *done, char *err, size_t errlen)
{
    char base[PATH_CAP], dir[PATH_CAP], pidv[32];
    const char *file;
    unsigned have;
    int mode = rp_cgroup_probe(root, &have), e;

    *done = 0;
    if (errlen > 0)
        err[0] = '\0';
    if (mode == RP_CGROUP_NONE) {
        say(err, errlen, "cgroups", root, -ENOENT);
        return RP_EUNSUPPORTED;
    }
    snprintf(pidv, sizeof(pidv), "%ld", (long)pid);
    for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++)
        if ((want & ctrls[i].bit) && !(have & ctrls[i].bit))
            say(err, errlen, ctrls[i].name, "controller not available", -ENOENT);
    want &= have;
    if (mode == RP_CGROUP_V2) {
        if (path(base, "%s/rampart", root) != 0 || path(dir, "%s/rampart/%s", root, leaf) != 0)
            return RP_EINVAL;
        if ((e = make_dir(base)) != 0) {
            say(err, errlen, "cgroups", base, e);
            return RP_EIO;
        }
        for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++) {
            char plus[16];
            if (!(want & ctrls[i].bit))
                continue;
            snprintf(plus, sizeof(plus), "+%s", ctrls[i].name);
            (void)put(root, "cgroup.subtree_control", plus); /* systemd has done it, mostly */
            (void)put(base, "cgroup.subtree_control", plus);
        }
        if ((e = make_dir(dir)) != 0) {
            say(err, errlen, "cgroups", dir, e);
            return RP_EIO;
        }
        end_leftovers(dir, 1);
        for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++) {
            if (!(want & ctrls[i].bit))
                continue;
            if ((e = limit(dir, ctrls[i].bit, lim, 1, &file)) != 0)
                say(err, errlen, ctrls[i].name, file, e);
            else
                *done |= ctrls[i].bit;
        }
        if ((e = put(dir, "cgroup.procs", pidv)) != 0) {
            say(err, errlen, "cgroups", "cgroup.procs", e);
            *done = 0;
        }
    } else {
        int ended = 0;
        for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++) {
            if (!(want & ctrls[i].bit))
                continue;
            if (path(base, "%s/%s/rampart", root, ctrls[i].name) != 0 ||
                path(dir, "%s/%s/rampart/%s", root, ctrls[i].name, leaf) != 0)
                return RP_EINVAL;
            if ((e = make_dir(base)) != 0 || (e = make_dir(dir)) != 0) {
                say(err, errlen, ctrls[i].name, dir, e);
                continue;
            }
            if (!ended)
                end_leftovers(dir, 0);
            ended = 1;
            if ((e = limit(dir, ctrls[i].bit, lim, 0, &file)) != 0 ||
                (e = put(dir, file = "cgroup.procs", pidv)) != 0)
                say(err, errlen, ctrls[i].name, file, e);
            else
                *done |= ctrls[i].bit;
        }
    }
    return *done == want && err[0] == '\0' ? 0 : RP_EIO;
}

int rp_cgroup_remove(const char *root, const char *leaf)
{
    char dir[PATH_CAP];
    unsigned have;
    int mode = rp_cgroup_probe(root, &have), busy = 0;

    if (mode == RP_CGROUP_V2 && path(dir, "%s/rampart/%s", root, leaf) == 0)
        busy |= rmdir(dir) != 0 && errno != ENOENT;
    for (size_t i = 0; mode == RP_CGROUP_V1 && i < sizeof(ctrls) / sizeof(ctrls[0]); i++)
        if ((have & ctrls[i].bit) && path(dir, "%s/%s/rampart/%s", root, ctrls[i].name, leaf) == 0)
            busy |= rmdir(dir) != 0 && errno != ENOENT;
    return busy ? RP_EAGAIN : 0;
}
