/*
 * sandbox.c - the privileged launcher and the sandbox's init step (sandbox.h).
 *
 * Both run in short-lived processes that end in execve: the launcher as root on the host, the
 * init step as uid 0 inside the new namespaces with three capabilities. Neither allocates
 * through rp_malloc nor touches anything of the server (no loop, no store, no logging set-up):
 * they print to stderr, which is the app's log, and exit 126 when a start must not go on.
 */
#include "sandbox/sandbox.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/file.h"
#include "base/str.h"
#include "sandbox/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define INIT_PATH  "/run/rampart/init" /* rampart's binary, inside the sandbox */
#define BWRAP_ARGS 128

static void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void complain(const char *fmt, ...)
{
    static const char prefix[] = "rampart sandbox: ";
    char line[1024];
    va_list ap;
    int n;

    memcpy(line, prefix, sizeof(prefix) - 1);
    va_start(ap, fmt);
    n = vsnprintf(line + sizeof(prefix) - 1, sizeof(line) - sizeof(prefix), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    n += (int)sizeof(prefix) - 1;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* One write: the supervisor reads the app's stderr in pieces. */
    if (write(2, line, (size_t)n) < 0)
        return;
}

/* ---------------------------------------------------------------- probe */

unsigned rp_sandbox_probe(const char *bwrap, int *cgroup_mode, char *missing, size_t cap)
{
    unsigned layers = 0, ctrl = 0;
    size_t used = 0;

    *cgroup_mode = RP_CGROUP_NONE;
    if (geteuid() == 0) {
        layers |= RP_SANDBOX_UID;
        *cgroup_mode = rp_cgroup_probe(RP_CGROUP_ROOT, &ctrl);
        if (ctrl & RP_CGROUP_MEMORY)
            layers |= RP_SANDBOX_MEMORY;
        if (ctrl & RP_CGROUP_PIDS)
            layers |= RP_SANDBOX_PIDS;
        if (ctrl & RP_CGROUP_CPU)
            layers |= RP_SANDBOX_CPU;
    }
    if (rp_seccomp_available())
        layers |= RP_SANDBOX_SECCOMP;
    if (bwrap != NULL && access(bwrap, X_OK) == 0)
        layers |= RP_SANDBOX_BWRAP;
    if (cap > 0)
        missing[0] = '\0';
    {
        static const struct {
            unsigned bit;
            const char *what;
        } names[] = {
            {RP_SANDBOX_UID, "per-app uid and cgroups (rampart is not root)"},
            {RP_SANDBOX_MEMORY, "memory limit (no cgroup memory controller)"},
            {RP_SANDBOX_PIDS, "task limit by cgroup (no pids controller; RLIMIT_NPROC still)"},
            {RP_SANDBOX_CPU, "CPU limit (no cgroup cpu controller)"},
            {RP_SANDBOX_SECCOMP, "system call filter (no seccomp)"},
            {RP_SANDBOX_BWRAP, "bubblewrap (not installed: apps cannot start)"},
        };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            int n;
            if (layers & names[i].bit)
                continue;
            if (!(layers & RP_SANDBOX_UID) && names[i].bit >= RP_SANDBOX_MEMORY &&
                names[i].bit <= RP_SANDBOX_CPU)
                continue; /* said once with the uid */
            n = used < cap
                    ? snprintf(missing + used, cap - used, "%s%s", used ? "; " : "", names[i].what)
                    : 0;
            if (n > 0)
                used += (size_t)n < cap - used ? (size_t)n : cap - used - 1;
        }
    }
    return layers;
}

/* ---------------------------------------------------------------- the launcher's argv */

int rp_sandbox_argv(const rp_sandbox_spec *s, char *buf, size_t cap, char **argv, size_t nargv)
{
    size_t used = 0, k = 0;

#define ARG(...)                                                                                   \
    do {                                                                                           \
        int n_ = snprintf(buf + used, cap - used, __VA_ARGS__);                                    \
        if (n_ < 0 || (size_t)n_ >= cap - used || k + 2 > nargv)                                   \
            return RP_ETOOBIG;                                                                     \
        argv[k++] = buf + used;                                                                    \
        used += (size_t)n_ + 1;                                                                    \
    } while (0)

    if (s->bwrap[0] != '/' || s->leaf[0] == '\0' || strchr(s->leaf, '/') != NULL)
        return RP_EINVAL;
    ARG("rampart");
    ARG(RP_SANDBOX_VERB);
    ARG("launch");
    ARG("bwrap=%s", s->bwrap);
    if (s->isolated)
        ARG("isolated=1");
    ARG("leaf=%s", s->leaf);
    ARG("uid=%u", s->uid);
    ARG("mem=%u", s->lim.memory_mb);
    ARG("pids=%u", s->lim.pids);
    ARG("cpu=%u", s->lim.cpu_percent);
    ARG("layers=%u", s->layers);
    ARG("require=%u", s->require);
    argv[k] = NULL;
#undef ARG
    return 0;
}

int rp_sandbox_blob(const char *command, const char *const *env, size_t n, int *out)
{
    size_t total = strlen(command) + 1;
    int fd;

    for (size_t i = 0; i < n; i++)
        if (rp_size_add(total, strlen(env[i]) + 1, &total) != 0)
            return RP_ETOOBIG;
    if (total > RP_SANDBOX_BLOB_MAX)
        return RP_ETOOBIG;
    fd = memfd_create("rampart-app", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return RP_EIO;
    if (rp_file_write_all(fd, command, strlen(command) + 1) != 0)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (rp_file_write_all(fd, env[i], strlen(env[i]) + 1) != 0)
            goto fail;
    /* Nobody changes it after this, the app included (it can read it until init closes it). */
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
        goto fail;
    *out = fd;
    return 0;
fail:
    close(fd);
    return RP_EIO;
}

/* ---------------------------------------------------------------- the launcher */

typedef struct launch {
    const char *bwrap, *leaf;
    uint64_t isolated, uid, mem, pids, cpu, layers, require;
} launch;

static int parse_launch(int argc, char **argv, launch *l)
{
    memset(l, 0, sizeof(*l));
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        rp_str k;
        uint64_t *num = NULL, max = UINT32_MAX;
        if (eq == NULL)
            return RP_EINVAL;
        k = (rp_str){a, (size_t)(eq - a)};
        if (rp_str_eq(k, "bwrap"))
            l->bwrap = eq + 1;
        else if (rp_str_eq(k, "isolated"))
            num = &l->isolated;
        else if (rp_str_eq(k, "leaf"))
            l->leaf = eq + 1;
        else if (rp_str_eq(k, "uid"))
            num = &l->uid;
        else if (rp_str_eq(k, "mem"))
            num = &l->mem;
        else if (rp_str_eq(k, "pids"))
            num = &l->pids;
        else if (rp_str_eq(k, "cpu"))
            num = &l->cpu;
        else if (rp_str_eq(k, "layers"))
            num = &l->layers;
        else if (rp_str_eq(k, "require"))
            num = &l->require;
        else
            return RP_EINVAL;
        if (num != NULL && rp_parse_u64(eq + 1, strlen(eq + 1), max, num) != 0)
            return RP_EINVAL;
    }
    if (l->bwrap == NULL || l->leaf == NULL || l->bwrap[0] != '/' || l->uid == 0 || l->isolated > 1)
        return RP_EINVAL;
    return 0;
}

/* Refuses the start when a required layer is missing; otherwise says what is. */
static int layer_failed(const launch *l, unsigned bit, const char *what)
{
    if (l->require & bit) {
        complain("%s: required, not starting", what);
        return 1;
    }
    complain("%s (starting without it)", what);
    return 0;
}

static int seccomp_fd(void)
{
    struct sock_filter prog[RP_SECCOMP_MAX];
    size_t n;
    int fd;

    if (rp_seccomp_build(prog, RP_SECCOMP_MAX, &n) != 0)
        return -1;
    fd = memfd_create("rampart-seccomp", 0); /* inherited by bubblewrap, which reads it */
    if (fd < 0)
        return -1;
    if (write(fd, prog, n * sizeof(prog[0])) != (ssize_t)(n * sizeof(prog[0])) ||
        lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int run_launch(int argc, char **argv)
{
    static char *const noenv[] = {NULL};
    const char *args[BWRAP_ARGS];
    char sfd[16], efd[16], rfd[16], runfd[16], tmpsize[32], uidarg[32];
    struct rlimit core = {0, 0};
    launch l;
    int n = 0, scfd = -1, exefd, root = geteuid() == 0;

    if (parse_launch(argc, argv, &l) != 0) {
        complain("bad launcher arguments");
        return 2;
    }
    if (!root && (l.layers & RP_SANDBOX_UID)) {
        complain("the launcher is not root");
        return 126;
    }
    if (root && !(l.layers & RP_SANDBOX_UID)) {
        /* An app with uid 0 owns every root file it can reach: never. */
        complain("a root launcher always gives the app its own uid");
        return 126;
    }
    (void)setrlimit(RLIMIT_CORE, &core);
    /* bubblewrap makes the sandbox's directories (/etc, /home/site, ...) with this umask: they
     * must be traversable by the app's uid, whatever rampart was started with. */
    umask(022);
    if ((l.layers & RP_SANDBOX_UID) && l.pids > 0) {
        /* Per uid, so per app: a fork bomb stops here even where cgroups are missing. */
        struct rlimit np = {(rlim_t)l.pids, (rlim_t)l.pids};
        (void)setrlimit(RLIMIT_NPROC, &np);
    }
    if (l.layers & RP_SANDBOX_UID) {
        rp_cgroup_limits lim = {(uint32_t)l.mem, (uint32_t)l.pids, (uint32_t)l.cpu};
        unsigned want = 0, done = 0;
        char err[512];
        if (l.layers & RP_SANDBOX_MEMORY)
            want |= RP_CGROUP_MEMORY;
        if (l.layers & RP_SANDBOX_PIDS)
            want |= RP_CGROUP_PIDS;
        if (l.layers & RP_SANDBOX_CPU)
            want |= RP_CGROUP_CPU;
        if (want != 0 && rp_cgroup_enter(RP_CGROUP_ROOT, l.leaf, &lim, want, getpid(), &done, err,
                                         sizeof(err)) != 0) {
            unsigned lost = 0;
            if ((want & RP_CGROUP_MEMORY) && !(done & RP_CGROUP_MEMORY))
                lost |= RP_SANDBOX_MEMORY;
            if ((want & RP_CGROUP_PIDS) && !(done & RP_CGROUP_PIDS))
                lost |= RP_SANDBOX_PIDS;
            if ((want & RP_CGROUP_CPU) && !(done & RP_CGROUP_CPU))
                lost |= RP_SANDBOX_CPU;
            if (layer_failed(&l, lost, err))
                return 126;
        }
    }
    {
        /* The helper opened them (never through a link); bubblewrap binds them by descriptor. */
        struct stat st;
        if (fstat(RP_SANDBOX_RELEASE_FD, &st) != 0 || !S_ISDIR(st.st_mode) ||
            (l.isolated && (fstat(RP_SANDBOX_RUN_FD, &st) != 0 || !S_ISDIR(st.st_mode)))) {
            complain("the release or run directory was not handed over");
            return 126;
        }
    }
    if (l.layers & RP_SANDBOX_SECCOMP) {
        scfd = seccomp_fd();
        if (scfd < 0 && layer_failed(&l, RP_SANDBOX_SECCOMP, "cannot build the seccomp filter"))
            return 126;
    }
    /* The init step is this very binary; by descriptor, so an upgrade that replaces the file
     * meanwhile cannot mix versions. */
    exefd = open("/proc/self/exe", O_PATH);
    if (exefd < 0) {
        complain("cannot open /proc/self/exe: %s", strerror(errno));
        return 126;
    }
    snprintf(sfd, sizeof(sfd), "%d", scfd);
    snprintf(efd, sizeof(efd), "%d", exefd);
    snprintf(rfd, sizeof(rfd), "%d", RP_SANDBOX_RELEASE_FD);
    snprintf(runfd, sizeof(runfd), "%d", RP_SANDBOX_RUN_FD);
    /* /tmp is memory: no larger than the app may use (it is charged to its cgroup too). */
    snprintf(tmpsize, sizeof(tmpsize), "%llu", (unsigned long long)(l.mem ? l.mem : 512) << 20);
    if (l.layers & RP_SANDBOX_UID)
        snprintf(uidarg, sizeof(uidarg), "uid=%llu", (unsigned long long)l.uid);
    else
        snprintf(uidarg, sizeof(uidarg), "uid=-");
#define A(x) args[n++] = (x)
    A(l.bwrap);
    A("--die-with-parent");
    A("--new-session");
    A("--unshare-pid");
    A("--unshare-ipc");
    A("--unshare-uts");
    A("--unshare-cgroup-try");
    if (l.isolated)
        A("--unshare-net"); /* only its own loopback: no egress, no host ports */
    A("--cap-drop");
    A("ALL");
    if (l.layers & RP_SANDBOX_UID) {
        /* For the init step's switch to the app's uid only; it drops them before the app. */
        A("--cap-add");
        A("CAP_SETUID");
        A("--cap-add");
        A("CAP_SETGID");
        A("--cap-add");
        A("CAP_SETPCAP");
    }
    if (scfd >= 0) {
        A("--seccomp");
        A(sfd);
    }
    /* Made explicitly: bubblewrap makes missing parents 0700, which the app's uid could not
     * enter. */
    A("--perms");
    A("0755");
    A("--dir");
    A("/etc");
    A("--perms");
    A("0755");
    A("--dir");
    A("/home/site");
    A("--perms");
    A("0755");
    A("--dir");
    A("/run/rampart");
    A("--ro-bind");
    A("/usr");
    A("/usr");
    A("--symlink");
    A("usr/bin");
    A("/bin");
    A("--symlink");
    A("usr/sbin");
    A("/sbin");
    A("--symlink");
    A("usr/lib");
    A("/lib");
    A("--symlink");
    A("usr/lib64");
    A("/lib64");
    A("--ro-bind-try");
    A("/etc/ssl");
    A("/etc/ssl");
    A("--ro-bind-try");
    A("/etc/ca-certificates");
    A("/etc/ca-certificates");
    A("--ro-bind-try");
    A("/etc/hosts");
    A("/etc/hosts");
    A("--ro-bind-try");
    A("/etc/resolv.conf");
    A("/etc/resolv.conf");
    /* Account names (no hashes: those are in /etc/shadow, which stays out). */
    A("--ro-bind-try");
    A("/etc/passwd");
    A("/etc/passwd");
    A("--ro-bind-try");
    A("/etc/group");
    A("/etc/group");
    A("--ro-bind-try");
    A("/etc/nsswitch.conf");
    A("/etc/nsswitch.conf");
    A("--ro-bind-fd");
    A(rfd);
    A("/home/site/wwwroot");
    if (l.isolated) {
        A("--bind-fd");
        A(runfd);
        A("/home/site/run");
    }
    A("--perms");
    A("1777");
    A("--size");
    A(tmpsize);
    A("--tmpfs");
    A("/tmp");
    A("--proc");
    A("/proc");
    A("--dev");
    A("/dev");
    A("--ro-bind-fd");
    A(efd);
    A(INIT_PATH);
    A("--chdir");
    A("/home/site/wwwroot");
    A("--");
    A(INIT_PATH);
    A(RP_SANDBOX_VERB);
    A("init");
    A(uidarg);
    args[n] = NULL;
#undef A
    execve(l.bwrap, (char *const *)args, noenv);
    complain("cannot run %s: %s", l.bwrap, strerror(errno));
    return 126;
}

/* ---------------------------------------------------------------- init, inside the sandbox */

static int caps_clear(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];

    memset(d, 0, sizeof(d));
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
        return -1;
    if (syscall(SYS_capset, &h, d) != 0)
        return -1;
    if (syscall(SYS_capget, &h, d) != 0)
        return -1;
    for (int i = 0; i < 2; i++)
        if (d[i].effective || d[i].permitted || d[i].inheritable)
            return -1;
    return 0;
}

/* The bounding set, emptied (needs CAP_SETPCAP) and checked. */
static int bounding_clear(void)
{
    for (int c = 0; c < 64; c++) {
        if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) < 0)
            break; /* past the kernel's last capability */
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 || prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 0)
            return -1;
    }
    return 0;
}

static int run_init(int argc, char **argv)
{
    char *blob, *cmd, **envp;
    size_t len = 0, nenv = 0;
    uint64_t uid = 0;
    int switching;
    ssize_t r;

    if (argc != 1 || strncmp(argv[0], "uid=", 4) != 0) {
        complain("bad init arguments");
        return 2;
    }
    switching = strcmp(argv[0], "uid=-") != 0;
    if (!switching && getuid() == 0) {
        complain("an app never runs as root");
        return 126;
    }
    if (switching &&
        (rp_parse_u64(argv[0] + 4, strlen(argv[0] + 4), UINT32_MAX, &uid) != 0 || uid == 0)) {
        complain("bad init arguments");
        return 2;
    }
    blob = malloc(RP_SANDBOX_BLOB_MAX + 1);
    if (blob == NULL)
        return 126;
    while (len < RP_SANDBOX_BLOB_MAX &&
           (r = pread(RP_SANDBOX_BLOB_FD, blob + len, RP_SANDBOX_BLOB_MAX - len, (off_t)len)) > 0)
        len += (size_t)r;
    blob[len] = '\0';
    if (len == 0 || blob[len - 1] != '\0') {
        complain("no command");
        return 126;
    }
    /* Nothing of the host's descriptors (bubblewrap's, the blob's) reaches the app. */
    if (close_range(3, ~0u, 0) != 0)
        for (int fd = 3; fd < 1024; fd++)
            (void)close(fd);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        complain("cannot set no_new_privs: %s", strerror(errno));
        return 126;
    }
    if (switching) {
        uid_t ru, eu, su;
        gid_t rg, eg, sg;
        if (bounding_clear() != 0 || setgroups(0, NULL) != 0 ||
            setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid) != 0 ||
            setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) {
            complain("cannot switch to uid %llu: %s", (unsigned long long)uid, strerror(errno));
            return 126;
        }
        if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != uid ||
            eu != uid || su != uid || rg != uid || eg != uid || sg != uid ||
            getgroups(0, NULL) != 0) {
            complain("the switch to uid %llu did not hold", (unsigned long long)uid);
            return 126;
        }
    }
    if (caps_clear() != 0 || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
        complain("cannot drop every capability: %s", strerror(errno));
        return 126;
    }
    /* Group bits stay: the isolated tier's socket must be writable by the front door, whose
     * group owns the socket directory (the helper made it so). Nobody else is in that group or
     * the app's own. */
    umask(007);
    cmd = blob;
    for (size_t i = strlen(cmd) + 1; i < len; i += strlen(blob + i) + 1)
        nenv++;
    envp = calloc(nenv + 1, sizeof(*envp));
    if (envp == NULL)
        return 126;
    nenv = 0;
    for (size_t i = strlen(cmd) + 1; i < len; i += strlen(blob + i) + 1)
        envp[nenv++] = blob + i;
    envp[nenv] = NULL;
    {
        char *const sh[] = {"sh", "-c", cmd, NULL};
        execve("/bin/sh", sh, envp);
    }
    complain("cannot run /bin/sh: %s", strerror(errno));
    return 127;
}

int rp_sandbox_main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "launch") == 0)
        return run_launch(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "init") == 0)
        return run_init(argc - 2, argv + 2);
    complain("internal command (the app supervisor's): launch | init");
    return 2;
}
