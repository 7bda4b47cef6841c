/*
 * helper.c - the privileged helper and its client (see helper.h).
 *
 * Wire: SOCK_SEQPACKET, one message per request, reply or exit. Requests are rp_helper_req
 * (fixed size) with the descriptors of a start in SCM_RIGHTS; replies are struct reply; exits
 * travel on their own pair so that a reply never has to be told apart from an exit.
 */
#include "sandbox/helper.h"

#include "base/alloc.h"
#include "base/err.h"
#include "base/str.h"
#include "sandbox/cgroup.h"
#include "sandbox/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#define MAGIC       0x72706831u /* "rph1" */
#define CHILDREN    1024        /* live processes the helper has started, at most */
#define RMRUN_DEPTH 32

typedef struct reply {
    int32_t rc, pid;
    uint32_t layers;
    char why[RP_HELPER_WHY_MAX];
} reply;

typedef struct exit_msg {
    int32_t pid, sig;
    int64_t status;
} exit_msg;

typedef struct hello {
    uint32_t layers;
    char missing[RP_HELPER_MISSING_MAX];
} hello;

struct rp_helper {
    int rq, ev; /* the server's ends */
    int pid;
    unsigned layers;
    char missing[RP_HELPER_MISSING_MAX];
    uv_mutex_t mu; /* one request at a time on rq */
};

/* ---------------------------------------------------------------- the request check */

int rp_helper_below(const char *apps_dir, const char *path)
{
    size_t n = strlen(apps_dir);
    const char *p;

    if (n == 0 || apps_dir[0] != '/' || strncmp(path, apps_dir, n) != 0 || path[n] != '/')
        return 0;
    p = path + n + 1;
    if (*p == '\0')
        return 0;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        if (slash == NULL)
            return 1;
        p = slash + 1;
    }
}

static int nul_in(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > RP_HELPER_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

/*
 * APPS/X/run, or APPS/X/run-HHHHHHHH (8 lowercase hex digits: a function worker's), each
 * optionally with .N (N one digit, 1-9): exactly two components below APPS.
 */
static int run_ok(const char *apps_dir, const char *run)
{
    const char *last = strrchr(run, '/');
    const char *first = run + strlen(apps_dir) + 1;

    if (!rp_helper_below(apps_dir, run) || last == NULL || strchr(first, '/') != last)
        return 0;
    last++;
    if (strncmp(last, "run", 3) != 0)
        return 0;
    last += 3;
    if (*last == '-') {
        for (int i = 1; i <= 8; i++)
            if (!((last[i] >= '0' && last[i] <= '9') || (last[i] >= 'a' && last[i] <= 'f')))
                return 0;
        last += 9;
    }
    return *last == '\0' || (last[0] == '.' && last[1] >= '1' && last[1] <= '9' && last[2] == '\0');
}

#define REFUSE(...)                                                                                \
    do {                                                                                           \
        snprintf(why, cap, __VA_ARGS__);                                                           \
        return RP_EPERM;                                                                           \
    } while (0)

int rp_helper_check(const rp_helper_policy *p, const void *buf, size_t n, rp_helper_req *out,
                    char *why, size_t cap)
{
    rp_helper_req *r = out;

    if (n != sizeof(*r)) {
        snprintf(why, cap, "a request of %zu bytes", n);
        return RP_EPARSE;
    }
    memcpy(r, buf, sizeof(*r));
    if (r->magic != MAGIC || !nul_in(r->name, sizeof(r->name)) ||
        !nul_in(r->release, sizeof(r->release)) || !nul_in(r->run, sizeof(r->run))) {
        snprintf(why, cap, "a malformed request");
        return RP_EPARSE;
    }
    switch (r->op) {
    case RP_HELPER_OP_SPAWN:
        if (!name_ok(r->name))
            REFUSE("not an app name");
        if (!rp_helper_below(p->apps_dir, r->release))
            REFUSE("the release is not below the apps directory");
        if (!run_ok(p->apps_dir, r->run))
            REFUSE("not a run directory below the apps directory");
        if (p->root && (r->uid < p->uid_min || r->uid > p->uid_max))
            REFUSE("uid %u is not an app's", r->uid);
        if (r->isolated > 1 || (r->layers & ~p->layers) != 0 || (r->require & ~RP_SANDBOX_ALL))
            REFUSE("layers this machine does not offer");
        return 0;
    case RP_HELPER_OP_KILL:
        if (r->pid <= 0 || (r->sig != SIGTERM && r->sig != SIGKILL))
            REFUSE("only SIGTERM or SIGKILL, to a process of the helper's");
        return 0;
    case RP_HELPER_OP_UNCGROUP:
        if (!name_ok(r->name) || !run_ok(p->apps_dir, r->run))
            REFUSE("not an app's cgroup");
        return 0;
    case RP_HELPER_OP_RMRUN:
        if (!run_ok(p->apps_dir, r->run))
            REFUSE("not a run directory below the apps directory");
        return 0;
    default: snprintf(why, cap, "an unknown request"); return RP_EPARSE;
    }
}

#undef REFUSE

/* ---------------------------------------------------------------- the helper process */

typedef struct helper {
    rp_helper_policy pol;
    char apps[RP_HELPER_PATH_MAX];
    char bwrap[RP_HELPER_PATH_MAX];
    char exe[RP_HELPER_PATH_MAX];
    uint32_t group;
    int apps_fd; /* DATA/apps, opened by the server as root before it dropped it; or -1 */
    int rq, ev;
    pid_t kids[CHILDREN];
    size_t nkids;
    exit_msg pending[CHILDREN]; /* exits not sent yet: the server reads them later */
    size_t npending;
} helper;

static int kid_find(const helper *h, pid_t pid)
{
    for (size_t i = 0; i < h->nkids; i++)
        if (h->kids[i] == pid)
            return (int)i;
    return -1;
}

/*
 * Opens path (below the apps directory) one component at a time, never following a link: the
 * directories are the service user's, who could otherwise point root anywhere. parent: open
 * the directory above the last component instead, and leave the last in *last.
 */
static int open_below(const helper *h, const char *path, int parent, const char **last)
{
    char buf[RP_HELPER_PATH_MAX];
    char *p, *next;
    /* From the apps directory opened at the fork: renaming DATA or a directory above it later
     * changes nothing here. */
    int fd = h->apps_fd >= 0 ? openat(h->apps_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                             : open(h->apps, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0)
        return -1;
    rp_strlcpy(buf, path + strlen(h->apps) + 1, sizeof(buf));
    for (p = buf;; p = next) {
        int nfd;
        next = strchr(p, '/');
        if (next != NULL)
            *next++ = '\0';
        if (next == NULL && parent) {
            *last = path + strlen(h->apps) + 1 + (size_t)(p - buf);
            return fd;
        }
        nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        if (nfd < 0)
            return -1;
        fd = nfd;
        if (next == NULL)
            return fd;
    }
}

/* The isolated tier's socket directory: the app's, with the server's group to reach the
 * socket (the app's umask leaves it group-writable). */
static int prepare_run(const helper *h, const rp_helper_req *r, char *why, size_t cap)
{
    const char *last = NULL;
    int pfd = open_below(h, r->run, 1, &last), fd;
    struct stat st;

    if (pfd < 0) {
        snprintf(why, cap, "cannot open the app's directory: %s", strerror(errno));
        return -1;
    }
    if (mkdirat(pfd, last, 0700) != 0 && errno != EEXIST) {
        snprintf(why, cap, "cannot create the run directory: %s", strerror(errno));
        close(pfd);
        return -1;
    }
    fd = openat(pfd, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(pfd);
    if (fd < 0 || fstat(fd, &st) != 0 ||
        (h->pol.root &&
         (fchown(fd, (uid_t)r->uid, (gid_t)h->group) != 0 || fchmod(fd, S_ISGID | 0750) != 0))) {
        snprintf(why, cap, "cannot prepare the run directory: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* A socket left by the last run would make the app's bind fail. The directory is the
     * app's: whatever is there is a name only, and unlinkat never follows it. */
    (void)unlinkat(fd, "app.sock", 0);
    return fd;
}

/*
 * The descriptors a start hands to the launcher, which runs as root with them: the blob must be
 * a sealed memfd (nothing else to read as root), the log ends write-only pipes (never a
 * directory, a file or an O_PATH descriptor that would open the host to the app).
 */
static int fds_ok(const int *fds, char *why, size_t cap)
{
    struct stat st;
    int seals = fcntl(fds[0], F_GET_SEALS);
    const int want = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;

    if (seals < 0 || (seals & want) != want || fstat(fds[0], &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, cap, "the environment is not a sealed memfd");
        return 0;
    }
    for (int k = 1; k < 3; k++) {
        int fl = fcntl(fds[k], F_GETFL);
        if (fl < 0 || (fl & O_PATH) || (fl & O_ACCMODE) != O_WRONLY || fstat(fds[k], &st) != 0 ||
            !S_ISFIFO(st.st_mode)) {
            snprintf(why, cap, "the log descriptors are not write-only pipes");
            return 0;
        }
    }
    return 1;
}

static int spawn(helper *h, const rp_helper_req *r, const int *fds, size_t nfds, reply *out)
{
    char argbuf[2 * RP_HELPER_PATH_MAX + 1024], *args[RP_SANDBOX_ARGV_MAX];
    char leaf[RP_CGROUP_LEAF_MAX];
    static char *const noenv[] = {NULL};
    rp_sandbox_spec ss;
    int rel = -1, run = -1, null = -1;
    pid_t pid;

    if (nfds != 3) {
        snprintf(out->why, sizeof(out->why), "a start needs 3 descriptors, not %zu", nfds);
        return RP_EPERM;
    }
    if (!fds_ok(fds, out->why, sizeof(out->why)))
        return RP_EPERM;
    if (h->nkids + h->npending >= CHILDREN) {
        snprintf(out->why, sizeof(out->why), "too many processes");
        return RP_EIO;
    }
    if (rp_cgroup_leaf(r->name, r->run, leaf, sizeof(leaf)) != 0) {
        snprintf(out->why, sizeof(out->why), "bad cgroup leaf");
        return RP_EPERM;
    }
    memset(&ss, 0, sizeof(ss));
    ss.bwrap = h->bwrap;
    ss.leaf = leaf;
    ss.uid = r->uid;
    ss.lim = (rp_cgroup_limits){r->memory_mb, r->pids, r->cpu_percent};
    /* Every layer the machine offers, whatever the request says: a root helper never starts
     * a process without its own uid (uid 0 with a descriptor to / is root) or its filter. */
    ss.layers = h->pol.root ? h->pol.layers : r->layers & h->pol.layers;
    ss.require = r->require;
    ss.isolated = (int)r->isolated;
    if (rp_sandbox_argv(&ss, argbuf, sizeof(argbuf), args, RP_SANDBOX_ARGV_MAX) != 0) {
        snprintf(out->why, sizeof(out->why), "bad launcher arguments");
        return RP_EPERM;
    }
    rel = open_below(h, r->release, 0, NULL);
    if (rel < 0) {
        snprintf(out->why, sizeof(out->why), "cannot open the release: %s", strerror(errno));
        return RP_EIO;
    }
    if (r->isolated && (run = prepare_run(h, r, out->why, sizeof(out->why))) < 0) {
        close(rel);
        return RP_EIO;
    }
    null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0) {
        snprintf(out->why, sizeof(out->why), "cannot open /dev/null");
        close(rel);
        if (run >= 0)
            close(run);
        return RP_EIO;
    }
    pid = fork();
    if (pid == 0) {
        /* The child: 0 /dev/null, 1 and 2 the app's log, 3 the blob, 4 the release, 5 the run
         * directory. Moved above 5 first so that no dup2 overwrites a source. */
        int src[6] = {null, fds[1], fds[2], fds[0], rel, run};
        int hi[6];
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* Ignored signals stay ignored across execve: the app gets every default back. */
        for (int sig = 1; sig < NSIG; sig++)
            (void)signal(sig, SIG_DFL);
        for (int i = 0; i < 6; i++)
            hi[i] = src[i] >= 0 ? fcntl(src[i], F_DUPFD_CLOEXEC, 16) : -1;
        for (int i = 0; i < 6; i++)
            if (hi[i] >= 0 && dup2(hi[i], i) != i)
                _exit(126);
        if (close_range(run >= 0 ? 6 : 5, ~0u, 0) != 0)
            _exit(126);
        execve(h->exe, args, noenv);
        _exit(127);
    }
    close(null);
    close(rel);
    if (run >= 0)
        close(run);
    if (pid < 0) {
        snprintf(out->why, sizeof(out->why), "fork: %s", strerror(errno));
        return RP_EIO;
    }
    h->kids[h->nkids++] = pid;
    out->pid = pid;
    return 0;
}

/*
 * Empties the open directory dir (depth levels below the run directory top), never following
 * a link. A directory RMRUN_DEPTH levels down is moved up to top instead (the app decides how
 * deep its tree is; the recursion does not): *moved counts those, and the caller goes again.
 * 0, or -1 when something could not be removed.
 */
static int empty_dir(int top, int dir, unsigned depth, unsigned *moved)
{
    /* A description of its own: a dup would share (and leave at the end) dir's position. */
    int dup_fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
    struct dirent *de;
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;

    if (d == NULL) {
        if (dup_fd >= 0)
            close(dup_fd);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        int sub;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fstatat(dir, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT)
                rc = -1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (unlinkat(dir, de->d_name, 0) != 0 && errno != ENOENT)
                rc = -1;
            continue;
        }
        if (depth >= RMRUN_DEPTH) {
            char up[48];
            int r = -1;
            for (unsigned k = 0; k < 1000 && r != 0; k++) {
                snprintf(up, sizeof(up), ".rp-deep-%u-%u", *moved, k);
                r = renameat2(dir, de->d_name, top, up, RENAME_NOREPLACE);
                if (r != 0 && errno != EEXIST)
                    break;
            }
            if (r == 0)
                (*moved)++;
            else
                rc = -1;
            continue;
        }
        sub = openat(dir, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
            rc = -1;
            continue;
        }
        if (empty_dir(top, sub, depth + 1, moved) != 0)
            rc = -1;
        close(sub);
        if (unlinkat(dir, de->d_name, AT_REMOVEDIR) != 0 && errno != ENOENT)
            rc = -1;
    }
    closedir(d);
    return rc;
}

static int rmrun(const helper *h, const rp_helper_req *r, reply *out)
{
    const char *last = NULL;
    int pfd = open_below(h, r->run, 1, &last), fd, rc = 0;

    if (pfd < 0)
        return errno == ENOENT ? 0 : RP_EIO;
    fd = openat(pfd, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        /* Nothing there, or not a directory (a link or a file in its place: the name goes). */
        if (errno != ENOENT && unlinkat(pfd, last, 0) != 0 && errno != ENOENT)
            rc = -1;
        close(pfd);
        goto done;
    }
    for (unsigned pass = 0; pass < 100000; pass++) {
        unsigned moved = 0;
        rc = empty_dir(fd, fd, 1, &moved);
        if (rc != 0 || moved == 0)
            break;
    }
    close(fd);
    if (rc == 0 && unlinkat(pfd, last, AT_REMOVEDIR) != 0 && errno != ENOENT)
        rc = -1;
    close(pfd);
done:
    if (rc != 0) {
        snprintf(out->why, sizeof(out->why), "cannot remove it all");
        return RP_EIO;
    }
    return 0;
}

static void handle(helper *h, const void *buf, size_t n, const int *fds, size_t nfds)
{
    rp_helper_req r;
    reply out;
    int k;

    memset(&out, 0, sizeof(out));
    out.rc = rp_helper_check(&h->pol, buf, n, &r, out.why, sizeof(out.why));
    if (out.rc == 0) {
        if (r.op != RP_HELPER_OP_SPAWN && nfds != 0) {
            out.rc = RP_EPERM;
            snprintf(out.why, sizeof(out.why), "descriptors with a request that takes none");
        } else {
            switch (r.op) {
            case RP_HELPER_OP_SPAWN: out.rc = spawn(h, &r, fds, nfds, &out); break;
            case RP_HELPER_OP_KILL:
                k = kid_find(h, (pid_t)r.pid);
                if (k < 0)
                    out.rc = RP_ENOENT;
                else if (kill((pid_t)r.pid, r.sig) != 0)
                    out.rc = RP_EIO;
                break;
            case RP_HELPER_OP_UNCGROUP: {
                char leaf[RP_CGROUP_LEAF_MAX];
                if (!h->pol.root)
                    out.rc = 0;
                else if (rp_cgroup_leaf(r.name, r.run, leaf, sizeof(leaf)) != 0)
                    out.rc = RP_EPERM;
                else
                    out.rc = rp_cgroup_remove(RP_CGROUP_ROOT, leaf);
                break;
            }
            case RP_HELPER_OP_RMRUN: out.rc = rmrun(h, &r, &out); break;
            }
        }
    }
    for (size_t i = 0; i < nfds; i++)
        close(fds[i]);
    (void)send(h->rq, &out, sizeof(out), MSG_NOSIGNAL);
}

/* Sends the exits not sent yet, never blocking: a server that has not read its exit channel
 * for a while must not stop the helper from answering its requests. */
static void flush_exits(helper *h)
{
    size_t sent = 0;

    while (sent < h->npending) {
        ssize_t n =
            send(h->ev, &h->pending[sent], sizeof(h->pending[sent]), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        sent++; /* sent, or the server is gone (its socket closes the loop) */
    }
    memmove(h->pending, h->pending + sent, (h->npending - sent) * sizeof(h->pending[0]));
    h->npending -= sent;
}

static void reap_kids(helper *h)
{
    int st;
    pid_t pid;

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        exit_msg m = {pid, 0, 0};
        int k = kid_find(h, pid);
        if (k < 0)
            continue;
        h->kids[k] = h->kids[--h->nkids];
        if (WIFEXITED(st))
            m.status = WEXITSTATUS(st);
        else if (WIFSIGNALED(st))
            m.sig = WTERMSIG(st);
        /* Room always: a start needs room for its exit (kids + pending <= CHILDREN). */
        if (h->npending < CHILDREN)
            h->pending[h->npending++] = m;
    }
    flush_exits(h);
}

static void helper_main(helper *h)
{
    sigset_t chld;
    int sfd;
    struct pollfd pf[3];
    char buf[sizeof(rp_helper_req) + 1];

    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        _exit(1);
    pf[0] = (struct pollfd){h->rq, POLLIN, 0};
    pf[1] = (struct pollfd){sfd, POLLIN, 0};
    pf[2] = (struct pollfd){h->ev, POLLOUT, 0};
    for (;;) {
        if (poll(pf, h->npending > 0 ? 3 : 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) > 0) {
            }
            reap_kids(h);
        }
        if (h->npending > 0 && pf[2].revents)
            flush_exits(h);
        if (pf[0].revents) {
            union {
                char b[CMSG_SPACE(4 * sizeof(int))];
                struct cmsghdr align;
            } c;
            struct iovec iov = {buf, sizeof(buf)};
            struct msghdr mh = {0};
            int fds[4];
            size_t nfds = 0;
            ssize_t n;
            mh.msg_iov = &iov;
            mh.msg_iovlen = 1;
            mh.msg_control = c.b;
            mh.msg_controllen = sizeof(c.b);
            n = recvmsg(h->rq, &mh, MSG_CMSG_CLOEXEC);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break; /* the server is gone */
            for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                    continue;
                for (size_t k = 0; k < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int), sizeof(int));
                    if (nfds < 4)
                        fds[nfds++] = fd;
                    else
                        close(fd);
                }
            }
            if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
                reply out;
                memset(&out, 0, sizeof(out));
                out.rc = RP_EPARSE;
                snprintf(out.why, sizeof(out.why), "a truncated request");
                for (size_t k = 0; k < nfds; k++)
                    close(fds[k]);
                (void)send(h->rq, &out, sizeof(out), MSG_NOSIGNAL);
                continue;
            }
            handle(h, buf, (size_t)n, fds, nfds);
        }
    }
    /* The server has gone: nothing it started outlives it. */
    for (size_t i = 0; i < h->nkids; i++)
        (void)kill(h->kids[i], SIGKILL);
    while (h->nkids > 0) {
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        int k;
        if (pid < 0)
            break;
        k = kid_find(h, pid);
        if (k >= 0)
            h->kids[k] = h->kids[--h->nkids];
    }
    _exit(0);
}

/* ---------------------------------------------------------------- the client */

int rp_helper_start(const rp_helper_opts *o, rp_helper **out)
{
    int rq[2] = {-1, -1}, ev[2] = {-1, -1};
    rp_helper *c;
    hello hel;
    ssize_t n;
    pid_t pid;

    if (o == NULL || o->apps_dir == NULL || o->apps_dir[0] != '/' ||
        strlen(o->apps_dir) >= RP_HELPER_PATH_MAX / 2 ||
        (o->bwrap != NULL && (o->bwrap[0] != '/' || strlen(o->bwrap) >= RP_HELPER_PATH_MAX)) ||
        (o->exe != NULL && (o->exe[0] != '/' || strlen(o->exe) >= RP_HELPER_PATH_MAX)))
        return RP_EINVAL;
    c = rp_calloc(1, sizeof(*c));
    if (c == NULL)
        return RP_ENOMEM;
    if (uv_mutex_init(&c->mu) != 0) {
        rp_free(c);
        return RP_ENOMEM;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rq) != 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ev) != 0)
        goto fail;
    pid = fork();
    if (pid < 0)
        goto fail;
    if (pid == 0) {
        static helper h; /* static: too large for a stack */
        hello me;
        int keep[2];
        size_t len = strlen(o->apps_dir);
        memset(&h, 0, sizeof(h));
        rp_strlcpy(h.apps, o->apps_dir, sizeof(h.apps));
        while (len > 1 && h.apps[len - 1] == '/')
            h.apps[--len] = '\0';
        rp_strlcpy(h.bwrap, o->bwrap ? o->bwrap : "/usr/bin/bwrap", sizeof(h.bwrap));
        rp_strlcpy(h.exe, o->exe ? o->exe : "/proc/self/exe", sizeof(h.exe));
        h.group = o->group;
        h.apps_fd = o->apps_fd >= 0 ? fcntl(o->apps_fd, F_DUPFD_CLOEXEC, 64) : -1;
        if (o->apps_fd >= 0 && h.apps_fd < 0)
            _exit(1);
        /* Nothing of the server's environment (a PIN, a passphrase) stays in a root process. */
        (void)clearenv();
        h.pol.apps_dir = h.apps;
        h.pol.uid_min = o->uid_min;
        h.pol.uid_max = o->uid_max;
        h.pol.root = geteuid() == 0;
        /* Its own copies of the two ends, above anything the server had open, and nothing
         * else: no listener, no store, no terminal output. */
        keep[0] = fcntl(rq[1], F_DUPFD_CLOEXEC, 64);
        keep[1] = fcntl(ev[1], F_DUPFD_CLOEXEC, 64);
        if (keep[0] < 0 || keep[1] < 0)
            _exit(1);
        {
            /* Every descriptor from 3 up goes but these (ascending, -1 for none). */
            int ks[3] = {keep[0], keep[1], h.apps_fd};
            unsigned from = 3;
            for (int i = 0; i < 3; i++)
                for (int j = i + 1; j < 3; j++)
                    if (ks[j] < ks[i]) {
                        int t = ks[i];
                        ks[i] = ks[j];
                        ks[j] = t;
                    }
            for (int i = 0; i < 3; i++) {
                if (ks[i] < 0)
                    continue;
                if ((unsigned)ks[i] > from)
                    (void)close_range(from, (unsigned)ks[i] - 1, 0);
                from = (unsigned)ks[i] + 1;
            }
            (void)close_range(from, ~0u, 0);
        }
        h.rq = keep[0];
        h.ev = keep[1];
        {
            int null = open("/dev/null", O_RDWR | O_CLOEXEC);
            if (null >= 0) {
                (void)dup2(null, 0);
                (void)dup2(null, 1);
                if (null > 2)
                    close(null);
            }
        }
        signal(SIGINT, SIG_IGN); /* a terminal's ^C is the server's to handle */
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        {
            int mode;
            memset(&me, 0, sizeof(me));
            h.pol.layers = rp_sandbox_probe(h.bwrap, &mode, me.missing, sizeof(me.missing));
            me.layers = h.pol.layers;
        }
        if (send(h.rq, &me, sizeof(me), MSG_NOSIGNAL) != (ssize_t)sizeof(me))
            _exit(1);
        helper_main(&h);
        _exit(0);
    }
    close(rq[1]);
    close(ev[1]);
    c->rq = rq[0];
    c->ev = ev[0];
    c->pid = pid;
    if (fcntl(c->ev, F_SETFL, O_NONBLOCK) != 0)
        goto fail_started;
    do
        n = recv(c->rq, &hel, sizeof(hel), 0);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(hel))
        goto fail_started;
    c->layers = hel.layers;
    hel.missing[sizeof(hel.missing) - 1] = '\0';
    rp_strlcpy(c->missing, hel.missing, sizeof(c->missing));
    *out = c;
    return 0;
fail_started:
    rp_helper_stop(c);
    return RP_EIO;
fail:
    for (int i = 0; i < 2; i++) {
        if (rq[i] >= 0)
            close(rq[i]);
        if (ev[i] >= 0)
            close(ev[i]);
    }
    uv_mutex_destroy(&c->mu);
    rp_free(c);
    return RP_EIO;
}

void rp_helper_stop(rp_helper *h)
{
    int st;

    if (h == NULL)
        return;
    close(h->rq);
    close(h->ev);
    while (waitpid(h->pid, &st, 0) < 0 && errno == EINTR) {
    }
    uv_mutex_destroy(&h->mu);
    rp_free(h);
}

unsigned rp_helper_layers(const rp_helper *h, char *missing, size_t cap)
{
    if (cap > 0)
        rp_strlcpy(missing, h->missing, cap);
    return h->layers;
}

int rp_helper_pid(const rp_helper *h)
{
    return h->pid;
}

int rp_helper_event_fd(const rp_helper *h)
{
    return h->ev;
}

/* One request and its reply; fds travel with it. */
static int call(rp_helper *h, const rp_helper_req *r, const int *fds, size_t nfds, reply *out)
{
    union {
        char b[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } c;
    struct iovec iov = {(void *)r, sizeof(*r)};
    struct msghdr mh = {0};
    ssize_t n;

    memset(out, 0, sizeof(*out));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (nfds > 0) {
        struct cmsghdr *cm;
        memset(&c, 0, sizeof(c));
        mh.msg_control = c.b;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
    }
    uv_mutex_lock(&h->mu);
    do
        n = sendmsg(h->rq, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(*r)) {
        do
            n = recv(h->rq, out, sizeof(*out), 0);
        while (n < 0 && errno == EINTR);
    } else {
        n = -1;
    }
    uv_mutex_unlock(&h->mu);
    if (n != (ssize_t)sizeof(*out)) {
        snprintf(out->why, sizeof(out->why), "the privileged helper is gone");
        return RP_EIO;
    }
    out->why[sizeof(out->why) - 1] = '\0';
    return out->rc;
}

static int put(char *dst, size_t cap, const char *src)
{
    return src != NULL && rp_strlcpy(dst, src, cap) == 0 ? 0 : RP_ETOOBIG;
}

static rp_helper_req *req_new(uint32_t op)
{
    rp_helper_req *r = rp_calloc(1, sizeof(*r));

    if (r != NULL) {
        r->magic = MAGIC;
        r->op = op;
    }
    return r;
}

int rp_helper_spawn_process(rp_helper *h, const rp_helper_spawn *s, int blob, int out, int err,
                            int *pid, char *why, size_t cap)
{
    rp_helper_req *r = req_new(RP_HELPER_OP_SPAWN);
    int fds[3] = {blob, out, err};
    reply rep;
    int rc;

    if (cap > 0)
        why[0] = '\0';
    if (r == NULL)
        return RP_ENOMEM;
    if (put(r->name, sizeof(r->name), s->name) != 0 ||
        put(r->release, sizeof(r->release), s->release) != 0 ||
        put(r->run, sizeof(r->run), s->run) != 0) {
        rp_free(r);
        snprintf(why, cap, "a path too long");
        return RP_ETOOBIG;
    }
    r->uid = s->uid;
    r->memory_mb = s->memory_mb;
    r->pids = s->pids;
    r->cpu_percent = s->cpu_percent;
    r->layers = s->layers;
    r->require = s->require;
    r->isolated = s->isolated ? 1 : 0;
    rc = call(h, r, fds, 3, &rep);
    rp_free(r);
    if (rc == 0)
        *pid = rep.pid;
    else if (cap > 0)
        rp_strlcpy(why, rep.why[0] ? rep.why : rp_strerror(rc), cap);
    return rc == RP_EPARSE ? RP_EPERM : rc;
}

/* A request without descriptors: name and run may be NULL (not sent). */
static int simple_call(rp_helper *h, uint32_t op, int pid, int sig, const char *name,
                       const char *run)
{
    rp_helper_req *r = req_new(op);
    reply rep;
    int rc;

    if (r == NULL)
        return RP_ENOMEM;
    r->pid = pid;
    r->sig = sig;
    if ((name != NULL && put(r->name, sizeof(r->name), name) != 0) ||
        (run != NULL && put(r->run, sizeof(r->run), run) != 0)) {
        rp_free(r);
        return RP_ETOOBIG;
    }
    rc = call(h, r, NULL, 0, &rep);
    rp_free(r);
    return rc;
}

int rp_helper_kill(rp_helper *h, int pid, int sig)
{
    return simple_call(h, RP_HELPER_OP_KILL, pid, sig, NULL, NULL);
}

int rp_helper_uncgroup(rp_helper *h, const char *name, const char *run)
{
    return name == NULL || run == NULL ? RP_ETOOBIG
                                       : simple_call(h, RP_HELPER_OP_UNCGROUP, 0, 0, name, run);
}

int rp_helper_rmrun(rp_helper *h, const char *run)
{
    return run == NULL ? RP_ETOOBIG : simple_call(h, RP_HELPER_OP_RMRUN, 0, 0, NULL, run);
}

int rp_helper_next_exit(rp_helper *h, int *pid, int64_t *status, int *sig)
{
    exit_msg m;
    ssize_t n;

    do
        n = recv(h->ev, &m, sizeof(m), MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return RP_EAGAIN;
    if (n != (ssize_t)sizeof(m))
        return RP_ECLOSED;
    *pid = m.pid;
    *status = m.status;
    *sig = m.sig;
    return 0;
}
