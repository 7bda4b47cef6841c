/*
 * helper_test.c - the privileged helper (src/sandbox/helper.c).
 *
 * The request check on requests built by hand (each refusal checked for its own reason) and
 * rp_helper_below on path tricks; then a live helper, forked for each test, whose launcher is a
 * stand-in /bin/sh script in the scratch directory: it prints its arguments, environment size,
 * blob and descriptors and exits 7, or execs a long sleep when the app is named "sleep" (the
 * app name is in the leaf= argument the helper builds). Against it: a start's descriptors and
 * exit, the isolated tier's run directory, signals, refusals over the wire (a release through a
 * symbolic link starts nothing), run directory removal that never follows a link, cgroup
 * removal, and that stopping the helper ends what it started. Effects that need root (the uid
 * check, the run directory's owner) are asserted when the test runs as root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "base/err.h"
#include "sandbox/helper.h"
#include "sandbox/sandbox.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAGIC    0x72706831u /* "rph1", as helper.c writes it */
#define APPS     "/d/apps"
#define UID_MIN  1879048192u
#define UID_MAX  (UID_MIN + 65535u)
#define TEST_UID 1879048200u
#define WAIT_MS  10000

/* ---------------------------------------------------------------- the request check */

static char why[RP_HELPER_WHY_MAX];

static rp_helper_policy policy(int root)
{
    return (rp_helper_policy){APPS, UID_MIN, UID_MAX, root, RP_SANDBOX_UID | RP_SANDBOX_BWRAP};
}

static void set(char *field, size_t cap, const char *s)
{
    assert_true(strlen(s) < cap);
    memset(field, 0, cap);
    memcpy(field, s, strlen(s));
}

static void req_spawn(rp_helper_req *r)
{
    memset(r, 0, sizeof(*r));
    r->magic = MAGIC;
    r->op = RP_HELPER_OP_SPAWN;
    r->uid = TEST_UID;
    r->memory_mb = 96;
    r->pids = 64;
    r->cpu_percent = 50;
    r->layers = RP_SANDBOX_UID | RP_SANDBOX_BWRAP;
    r->require = RP_SANDBOX_PIDS; /* a layer the policy lacks: the launcher's to refuse */
    r->isolated = 1;
    set(r->name, sizeof(r->name), "x");
    set(r->release, sizeof(r->release), APPS "/x/releases/1");
    set(r->run, sizeof(r->run), APPS "/x/run");
}

static void req_op(rp_helper_req *r, uint32_t op)
{
    memset(r, 0, sizeof(*r));
    r->magic = MAGIC;
    r->op = op;
}

/* rp_helper_check on n bytes of r; why gets the reason. An accepted request comes out equal. */
static int check_n(const rp_helper_policy *p, const rp_helper_req *r, size_t n)
{
    rp_helper_req out;
    int rc;

    memset(why, 0, sizeof(why));
    memset(&out, 0x5a, sizeof(out));
    rc = rp_helper_check(p, r, n, &out, why, sizeof(why));
    if (rc == 0) {
        assert_memory_equal(&out, r, sizeof(*r));
        assert_string_equal(why, "");
    } else {
        assert_true(why[0] != '\0');
    }
    return rc;
}

static int check(const rp_helper_policy *p, const rp_helper_req *r)
{
    return check_n(p, r, sizeof(*r));
}

static void test_below(void **state)
{
    static const char *const good[] = {
        APPS "/x",     APPS "/x/releases/1", APPS "/x/run.3", APPS "/.x",
        APPS "/x/...", APPS "/a-b/c..d/e.",  APPS "/x/run/y", APPS "/x..",
    };
    static const char *const bad[] = {
        "",
        "/",
        "/d",
        "/d/app",
        APPS,
        APPS "/",
        APPS "x",
        "/d/appsx/a",
        "/d/apps-x/a",
        "d/apps/x",
        "//d/apps/x",
        "/etc/passwd",
        APPS "/x/",
        APPS "/x/releases/1/",
        APPS "//x",
        APPS "/x//y",
        APPS "/.",
        APPS "/./x",
        APPS "/x/.",
        APPS "/x/./y",
        APPS "/..",
        APPS "/../x",
        APPS "/x/..",
        APPS "/x/../../etc",
        APPS "/x/../y",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        print_message("below: %s\n", good[i]);
        assert_int_equal(rp_helper_below(APPS, good[i]), 1);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        print_message("not below: %s\n", bad[i]);
        assert_int_equal(rp_helper_below(APPS, bad[i]), 0);
    }
    /* The apps directory must be absolute and named. */
    assert_int_equal(rp_helper_below("", "/x"), 0);
    assert_int_equal(rp_helper_below("d/apps", "d/apps/x"), 0);
    assert_int_equal(rp_helper_below("/d/apps/x", APPS "/x/run"), 1);
    assert_int_equal(rp_helper_below("/d/apps/x", APPS "/y/run"), 0);
}

static void test_check_spawn(void **state)
{
    rp_helper_policy p = policy(1), nonroot = policy(0);
    rp_helper_req r;
    static const char *const names[] = {"X", "a_b", "a.b", "a/b", "a b", "", "\xc3\xa9", "x\n"};
    static const char *const runs[] = {
        APPS "/x/run.0",
        APPS "/x/run.10",
        APPS "/x/run-", /* a function worker's: 8 lowercase hex digits exactly */
        APPS "/x/run-1234567",
        APPS "/x/run-123456789",
        APPS "/x/run-1234567G",
        APPS "/x/run-ABCDEF01",
        APPS "/x/run-12345678.0",
        APPS "/x/run-12345678.",
        APPS "/x/run-12345678x",
        APPS "/x/run-../run",
        APPS "/x/runx",
        APPS "/x/run.",
        APPS "/x/run.a",
        APPS "/x/Run",
        APPS "/x/xrun",
        APPS "/x/run/",
        APPS "/x/../run",
        APPS "/run",              /* an app named run: its whole directory */
        APPS "/x/releases/1/run", /* deeper than an app's own */
        "/elsewhere/x/run",
        "/d/appsx/run",
        APPS,
        "run",
        "",
    };

    (void)state;
    req_spawn(&r);
    assert_int_equal(check(&p, &r), 0);
    r.isolated = 0;
    r.layers = 0;
    r.require = 0;
    assert_int_equal(check(&p, &r), 0);
    req_spawn(&r); /* the longest name, run.1 to run.9 */
    memset(r.name, 'a', RP_HELPER_NAME_MAX);
    set(r.run, sizeof(r.run), APPS "/x/run.1");
    assert_int_equal(check(&p, &r), 0);
    set(r.run, sizeof(r.run), APPS "/x/run.9");
    assert_int_equal(check(&p, &r), 0);
    set(r.run, sizeof(r.run), APPS "/x/run-0123abcd"); /* a function's own worker */
    assert_int_equal(check(&p, &r), 0);
    set(r.run, sizeof(r.run), APPS "/x/run-ffffffff.9");
    assert_int_equal(check(&p, &r), 0);

    /* Malformed: the size, the magic, a field without its NUL. */
    req_spawn(&r);
    assert_int_equal(check_n(&p, &r, sizeof(r) - 1), RP_EPARSE);
    assert_non_null(strstr(why, "bytes"));
    assert_int_equal(check_n(&p, &r, 0), RP_EPARSE);
    assert_int_equal(check_n(&p, &r, 1), RP_EPARSE);
    {
        char big[sizeof(r) + 1];
        memcpy(big, &r, sizeof(r));
        big[sizeof(r)] = '\0';
        assert_int_equal(check_n(&p, (const rp_helper_req *)big, sizeof(big)), RP_EPARSE);
        assert_non_null(strstr(why, "bytes"));
    }
    r.magic = MAGIC ^ 1;
    assert_int_equal(check(&p, &r), RP_EPARSE);
    assert_non_null(strstr(why, "malformed"));
    req_spawn(&r);
    memset(r.name, 'a', sizeof(r.name));
    assert_int_equal(check(&p, &r), RP_EPARSE);
    assert_non_null(strstr(why, "malformed"));
    req_spawn(&r);
    memset(r.release, 'a', sizeof(r.release));
    assert_int_equal(check(&p, &r), RP_EPARSE);
    assert_non_null(strstr(why, "malformed"));
    req_spawn(&r);
    memset(r.run, 'a', sizeof(r.run));
    assert_int_equal(check(&p, &r), RP_EPARSE);
    assert_non_null(strstr(why, "malformed"));

    /* App names. */
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        req_spawn(&r);
        set(r.name, sizeof(r.name), names[i]);
        print_message("name: \"%s\"\n", names[i]);
        assert_int_equal(check(&p, &r), RP_EPERM);
        assert_non_null(strstr(why, "not an app name"));
    }

    /* The release below the apps directory. */
    {
        static const char *const rels[] = {
            "/etc", "/d/appsx/a", APPS, APPS "/", APPS "/x/../../etc", "x/releases/1", ""};
        for (size_t i = 0; i < sizeof(rels) / sizeof(rels[0]); i++) {
            req_spawn(&r);
            set(r.release, sizeof(r.release), rels[i]);
            print_message("release: \"%s\"\n", rels[i]);
            assert_int_equal(check(&p, &r), RP_EPERM);
            assert_non_null(strstr(why, "release is not below"));
        }
    }

    /* The run directory: run or run.N (N 1-9) below the apps directory. */
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        req_spawn(&r);
        set(r.run, sizeof(r.run), runs[i]);
        print_message("run: \"%s\"\n", runs[i]);
        assert_int_equal(check(&p, &r), RP_EPERM);
        assert_non_null(strstr(why, "not a run directory"));
    }

    /* Uids: an app's when the helper is root, anything when it is not (the launcher keeps its
     * own check, and cannot switch anyway). */
    {
        static const uint32_t uids[] = {0, UID_MIN - 1, UID_MAX + 1, 65534, UINT32_MAX};
        for (size_t i = 0; i < sizeof(uids) / sizeof(uids[0]); i++) {
            req_spawn(&r);
            r.uid = uids[i];
            print_message("uid: %u\n", uids[i]);
            assert_int_equal(check(&p, &r), RP_EPERM);
            assert_non_null(strstr(why, "is not an app's"));
            assert_int_equal(check(&nonroot, &r), 0);
        }
        req_spawn(&r);
        r.uid = UID_MIN;
        assert_int_equal(check(&p, &r), 0);
        r.uid = UID_MAX;
        assert_int_equal(check(&p, &r), 0);
    }

    /* Layers the policy lacks, require bits beyond the known ones, isolated beyond 1. */
    req_spawn(&r);
    r.layers |= RP_SANDBOX_SECCOMP;
    assert_int_equal(check(&p, &r), RP_EPERM);
    assert_non_null(strstr(why, "layers"));
    req_spawn(&r);
    r.layers = 1u << 6;
    assert_int_equal(check(&p, &r), RP_EPERM);
    assert_non_null(strstr(why, "layers"));
    req_spawn(&r);
    r.require = RP_SANDBOX_ALL + 1;
    assert_int_equal(check(&p, &r), RP_EPERM);
    assert_non_null(strstr(why, "layers"));
    req_spawn(&r);
    r.require = RP_SANDBOX_ALL;
    assert_int_equal(check(&p, &r), 0);
    r.isolated = 2;
    assert_int_equal(check(&p, &r), RP_EPERM);
    assert_non_null(strstr(why, "layers"));
    r.isolated = UINT32_MAX;
    assert_int_equal(check(&p, &r), RP_EPERM);
}

static void test_check_other_ops(void **state)
{
    rp_helper_policy p = policy(1);
    rp_helper_req r;

    (void)state;
    /* Kill: SIGTERM or SIGKILL, to a positive pid (never a group, never everyone). */
    req_op(&r, RP_HELPER_OP_KILL);
    r.pid = 1234;
    r.sig = SIGTERM;
    assert_int_equal(check(&p, &r), 0);
    r.sig = SIGKILL;
    assert_int_equal(check(&p, &r), 0);
    {
        static const int sigs[] = {SIGHUP, 0, SIGSTOP, SIGINT, SIGUSR1, -SIGTERM, 1000};
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
            r.sig = sigs[i];
            print_message("sig: %d\n", sigs[i]);
            assert_int_equal(check(&p, &r), RP_EPERM);
            assert_non_null(strstr(why, "only SIGTERM or SIGKILL"));
        }
    }
    r.sig = SIGKILL;
    {
        static const int32_t pids[] = {0, -1, -1234, INT32_MIN};
        for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++) {
            r.pid = pids[i];
            print_message("pid: %d\n", pids[i]);
            assert_int_equal(check(&p, &r), RP_EPERM);
            assert_non_null(strstr(why, "only SIGTERM or SIGKILL"));
        }
    }
    /* Every request's strings must be terminated, whatever its op reads. */
    req_op(&r, RP_HELPER_OP_KILL);
    r.pid = 1234;
    r.sig = SIGTERM;
    memset(r.release, 'a', sizeof(r.release));
    assert_int_equal(check(&p, &r), RP_EPARSE);

    /* Uncgroup: an app name and a run directory. */
    req_op(&r, RP_HELPER_OP_UNCGROUP);
    set(r.name, sizeof(r.name), "x");
    set(r.run, sizeof(r.run), APPS "/x/run.2");
    assert_int_equal(check(&p, &r), 0);
    set(r.name, sizeof(r.name), "../x");
    assert_int_equal(check(&p, &r), RP_EPERM);
    assert_non_null(strstr(why, "not an app's cgroup"));
    set(r.name, sizeof(r.name), "x");
    set(r.run, sizeof(r.run), APPS "/x/data");
    assert_int_equal(check(&p, &r), RP_EPERM);
    assert_non_null(strstr(why, "not an app's cgroup"));
    set(r.run, sizeof(r.run), "/d/appsx/x/run");
    assert_int_equal(check(&p, &r), RP_EPERM);

    /* Rmrun: a run directory below the apps directory, nothing else. */
    req_op(&r, RP_HELPER_OP_RMRUN);
    set(r.run, sizeof(r.run), APPS "/x/run");
    assert_int_equal(check(&p, &r), 0);
    set(r.run, sizeof(r.run), APPS "/x/run.4");
    assert_int_equal(check(&p, &r), 0);
    {
        static const char *const runs[] = {APPS "/x",       APPS "/x/releases", APPS "/x/run.0",
                                           APPS "/x/run/.", APPS "/x/run/..",   APPS "/x/../run",
                                           "/run",          "/d/appsx/run",     ""};
        for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
            set(r.run, sizeof(r.run), runs[i]);
            print_message("rmrun: \"%s\"\n", runs[i]);
            assert_int_equal(check(&p, &r), RP_EPERM);
            assert_non_null(strstr(why, "not a run directory"));
        }
    }

    /* Ops the helper does not know. */
    {
        static const uint32_t ops[] = {0, RP_HELPER_OP_RMRUN + 1, 0x100, UINT32_MAX};
        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
            req_spawn(&r);
            r.op = ops[i];
            print_message("op: %u\n", ops[i]);
            assert_int_equal(check(&p, &r), RP_EPARSE);
            assert_non_null(strstr(why, "unknown request"));
        }
    }
}

static void test_start_refusals(void **state)
{
    rp_helper_opts o = {"/d/apps", NULL, NULL, UID_MIN, UID_MAX, 0, -1};
    rp_helper *h = NULL;

    (void)state;
    assert_int_equal(rp_helper_start(NULL, &h), RP_EINVAL);
    o.apps_dir = NULL;
    assert_int_equal(rp_helper_start(&o, &h), RP_EINVAL);
    o.apps_dir = "d/apps";
    assert_int_equal(rp_helper_start(&o, &h), RP_EINVAL);
    o.apps_dir = "/d/apps";
    o.bwrap = "bwrap";
    assert_int_equal(rp_helper_start(&o, &h), RP_EINVAL);
    o.bwrap = NULL;
    o.exe = "rampart";
    assert_int_equal(rp_helper_start(&o, &h), RP_EINVAL);
    assert_null(h);
    rp_helper_stop(NULL);
}

/* ---------------------------------------------------------------- a live helper */

/* The stand-in launcher. The shell's own descriptors are read through /proc/$$ (a command
 * substitution's pipe would take the lowest free numbers while it runs); the environment is the
 * one it was executed with. */
static const char script[] = "#!/bin/sh\n"
                             "case \"$*\" in *leaf=app-sleep-*) exec /bin/sleep 30 ;; esac\n"
                             "[ -e /proc/$$/fd/5 ] && run=yes\n"
                             "[ -e /proc/$$/fd/6 ] && echo fd6:open\n"
                             "echo \"args:$*\"\n"
                             "echo \"env:$(/usr/bin/wc -c </proc/$$/environ)\"\n"
                             "echo \"stdin:$(/bin/readlink /proc/$$/fd/0)\"\n"
                             "echo \"blob:$(/usr/bin/tr '\\000' '|' </proc/$$/fd/3)\"\n"
                             "echo \"rel:$(/bin/readlink /proc/$$/fd/4)\"\n"
                             "[ -n \"$run\" ] && echo \"run:$(/bin/readlink /proc/$$/fd/5)\"\n"
                             "/bin/grep SigIgn /proc/$$/status\n"
                             "echo to-err >&2\n"
                             "exit 7\n";

static struct {
    char dir[512];       /* the scratch directory */
    char apps[640];      /* dir/apps */
    char real[PATH_MAX]; /* apps as the kernel names it (readlink of a descriptor) */
    char exe[640];
    rp_helper *h;
} L;

static void pathf(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void pathf(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < cap);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

static int exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

static int live_setup(void **state)
{
    char rel[800];
    rp_helper_opts o;

    rp_test_scratch("helper", L.dir, sizeof(L.dir));
    pathf(L.apps, sizeof(L.apps), "%s/apps", L.dir);
    pathf(rel, sizeof(rel), "%s/x/releases/1", L.apps);
    rp_test_mkdir_p(rel);
    assert_non_null(realpath(L.apps, L.real));
    pathf(L.exe, sizeof(L.exe), "%s/launcher.sh", L.dir);
    write_file(L.exe, script, 0755);
    memset(&o, 0, sizeof(o));
    o.apps_dir = L.apps;
    o.bwrap = "/nonexistent/bwrap";
    o.exe = L.exe;
    o.uid_min = UID_MIN;
    o.uid_max = UID_MAX;
    o.group = (uint32_t)getegid();
    /* As the server does: the apps directory travels as a descriptor opened without links. */
    o.apps_fd = open(L.apps, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    assert_true(o.apps_fd >= 0);
    L.h = NULL;
    assert_int_equal(rp_helper_start(&o, &L.h), 0);
    close(o.apps_fd);
    assert_non_null(L.h);
    return 0;
}

static int live_teardown(void **state)
{
    rp_helper_stop(L.h);
    L.h = NULL;
    rp_test_rmtree(L.dir);
    return 0;
}

/* A start of app name with release and run below the apps directory (or, starting with '/',
 * as they are); *out and *err get the read ends of its stdout and stderr (ours to close). */
static int start(const char *name, const char *release, const char *run, int isolated, uint32_t uid,
                 int *pid, int *out, int *err)
{
    static const char *const env[] = {"PORT=8080", "K=V"};
    char rel[1024], rn[1024];
    rp_helper_spawn s;
    int po[2], pe[2], blob = -1, rc;

    if (release[0] == '/')
        pathf(rel, sizeof(rel), "%s", release);
    else
        pathf(rel, sizeof(rel), "%s/%s", L.apps, release);
    if (run[0] == '/')
        pathf(rn, sizeof(rn), "%s", run);
    else
        pathf(rn, sizeof(rn), "%s/%s", L.apps, run);
    memset(&s, 0, sizeof(s));
    s.name = name;
    s.release = rel;
    s.run = rn;
    s.isolated = isolated;
    s.uid = uid;
    s.memory_mb = 96;
    s.pids = 64;
    s.cpu_percent = 50;
    assert_int_equal(rp_sandbox_blob("node server.js", env, 2, &blob), 0);
    assert_int_equal(pipe2(po, O_CLOEXEC), 0);
    assert_int_equal(pipe2(pe, O_CLOEXEC), 0);
    *pid = -1;
    memset(why, 0, sizeof(why));
    rc = rp_helper_spawn_process(L.h, &s, blob, po[1], pe[1], pid, why, sizeof(why));
    /* The descriptors stay ours: closing them leaves the child's copies only. */
    close(blob);
    close(po[1]);
    close(pe[1]);
    *out = po[0];
    *err = pe[0];
    return rc;
}

/* A start with the given descriptors (not ours to close): the helper's answer. */
static int start_fds(int blob, int out, int err)
{
    char rel[1024], rn[1024];
    rp_helper_spawn s;
    int pid = -1, rc;

    pathf(rel, sizeof(rel), "%s/x/releases/1", L.apps);
    pathf(rn, sizeof(rn), "%s/x/run", L.apps);
    memset(&s, 0, sizeof(s));
    s.name = "x";
    s.release = rel;
    s.run = rn;
    s.uid = TEST_UID;
    memset(why, 0, sizeof(why));
    rc = rp_helper_spawn_process(L.h, &s, blob, out, err, &pid, why, sizeof(why));
    assert_int_equal(pid, -1);
    return rc;
}

/* Reads fd to its end (within WAIT_MS) into buf, NUL-terminated, and closes it. */
static void slurp(int fd, char *buf, size_t cap)
{
    size_t used = 0;

    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        ssize_t n;
        assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
        n = read(fd, buf + used, cap - 1 - used);
        assert_true(n >= 0);
        if (n == 0)
            break;
        used += (size_t)n;
        assert_true(used < cap - 1);
    }
    buf[used] = '\0';
    close(fd);
}

/* Waits for pid's exit; the exits of other processes are skipped. */
static void wait_exit(int pid, int64_t *status, int *sig)
{
    for (int waited = 0; waited < WAIT_MS; waited += 50) {
        struct pollfd pf = {rp_helper_event_fd(L.h), POLLIN, 0};
        int p, rc;
        (void)poll(&pf, 1, 50);
        while ((rc = rp_helper_next_exit(L.h, &p, status, sig)) == 0)
            if (p == pid)
                return;
        assert_int_equal(rc, RP_EAGAIN);
    }
    fail_msg("no exit of %d", pid);
}

/* No exit arrives within ms. */
static void no_exit(int ms)
{
    struct pollfd pf = {rp_helper_event_fd(L.h), POLLIN, 0};
    int64_t status;
    int p, sig;

    assert_int_equal(poll(&pf, 1, ms), 0);
    assert_int_equal(rp_helper_next_exit(L.h, &p, &status, &sig), RP_EAGAIN);
}

static void expect_line(const char *text, const char *line)
{
    char want[PATH_MAX + 64];

    pathf(want, sizeof(want), "%s\n", line);
    if (strstr(text, want) == NULL)
        fail_msg("no line \"%s\" in:\n%s", line, text);
}

static void test_spawn(void **state)
{
    char out[8192], err[1024], line[PATH_MAX + 64], run[800];
    int pid, po, pe, sig;
    int64_t status;

    (void)state;
    assert_true(rp_helper_pid(L.h) > 0);
    assert_true(rp_helper_pid(L.h) != getpid());
    assert_int_equal(kill(rp_helper_pid(L.h), 0), 0);

    assert_int_equal(start("x", "x/releases/1", "x/run", 0, TEST_UID, &pid, &po, &pe), 0);
    assert_true(pid > 0);
    assert_true(pid != rp_helper_pid(L.h));
    slurp(po, out, sizeof(out));
    slurp(pe, err, sizeof(err));
    print_message("%s", out);
    /* The helper's own argv (the spec's values), nothing else: no environment, /dev/null in,
     * the blob on 3, the release on 4, and no descriptor 5 or above for the shared tier. */
    assert_non_null(strstr(out, "args:__sandbox launch bwrap=/nonexistent/bwrap leaf=app-x-"));
    /* The request asked for no layer: a root helper uses every one the machine has anyway. */
    pathf(line, sizeof(line), " uid=%u mem=96 pids=64 cpu=50 layers=%u require=0\n", TEST_UID,
          geteuid() == 0 ? rp_helper_layers(L.h, NULL, 0) : 0u);
    assert_non_null(strstr(out, line));
    assert_null(strstr(out, "isolated=1"));
    expect_line(out, "env:0");
    expect_line(out, "stdin:/dev/null");
    expect_line(out, "blob:node server.js|PORT=8080|K=V|");
    pathf(line, sizeof(line), "rel:%s/x/releases/1", L.real);
    expect_line(out, line);
    assert_null(strstr(out, "run:"));
    assert_null(strstr(out, "fd6:"));
    /* The helper ignores SIGPIPE and more; its children get every default back. */
    {
        /* Signals 1-31, that is: glibc keeps 32 and 33 for itself and refuses to touch them, so
         * whatever started the test (ctest ignores them) decides those. */
        const char *ign = strstr(out, "SigIgn:\t");
        assert_non_null(ign);
        assert_int_equal(strtoull(ign + 8, NULL, 16) & 0x7fffffffull, 0);
    }
    assert_string_equal(err, "to-err\n");
    wait_exit(pid, &status, &sig);
    assert_int_equal(status, 7);
    assert_int_equal(sig, 0);
    no_exit(0);
    /* The shared tier makes no run directory. */
    pathf(run, sizeof(run), "%s/x/run", L.apps);
    assert_false(exists(run));
}

static void test_spawn_isolated(void **state)
{
    char out[8192], err[1024], line[PATH_MAX + 64], run[800], sock[900];
    struct stat st;
    int pid, po, pe, sig;
    int64_t status;

    (void)state;
    /* A socket left by the last run goes; the directory is made (or kept) and handed over. */
    pathf(run, sizeof(run), "%s/x/run.2", L.apps);
    assert_int_equal(mkdir(run, 0777), 0);
    pathf(sock, sizeof(sock), "%s/app.sock", run);
    write_file(sock, "stale", 0600);
    assert_int_equal(start("x", "x/releases/1", "x/run.2", 1, TEST_UID, &pid, &po, &pe), 0);
    slurp(po, out, sizeof(out));
    slurp(pe, err, sizeof(err));
    print_message("%s", out);
    assert_non_null(strstr(out, "args:__sandbox launch bwrap=/nonexistent/bwrap isolated=1 "));
    pathf(line, sizeof(line), "run:%s/x/run.2", L.real);
    expect_line(out, line);
    assert_null(strstr(out, "fd6:"));
    wait_exit(pid, &status, &sig);
    assert_int_equal(status, 7);
    assert_int_equal(sig, 0);
    assert_false(exists(sock));
    assert_int_equal(lstat(run, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    if (geteuid() == 0) {
        assert_int_equal(st.st_uid, TEST_UID);
        assert_int_equal(st.st_gid, getegid());
        assert_int_equal(st.st_mode & 07777, 02750);
    }

    /* A run directory that is not there yet is made. */
    pathf(run, sizeof(run), "%s/x/run", L.apps);
    assert_false(exists(run));
    assert_int_equal(start("x", "x/releases/1", "x/run", 1, TEST_UID, &pid, &po, &pe), 0);
    slurp(po, out, sizeof(out));
    close(pe);
    pathf(line, sizeof(line), "run:%s/x/run", L.real);
    expect_line(out, line);
    wait_exit(pid, &status, &sig);
    assert_int_equal(status, 7);
    assert_int_equal(lstat(run, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    if (geteuid() == 0) {
        assert_int_equal(st.st_uid, TEST_UID);
        assert_int_equal(st.st_gid, getegid());
        assert_int_equal(st.st_mode & 07777, 02750);
    } else {
        assert_int_equal(st.st_uid, geteuid());
    }
}

static void test_kill(void **state)
{
    int pid, po, pe, sig;
    int64_t status;

    (void)state;
    assert_int_equal(start("sleep", "x/releases/1", "x/run", 0, TEST_UID, &pid, &po, &pe), 0);
    close(po);
    close(pe);
    assert_int_equal(kill(pid, 0), 0);
    /* Not a signal it sends, not a process it started, not a group. */
    assert_int_equal(rp_helper_kill(L.h, pid, SIGHUP), RP_EPERM);
    assert_int_equal(rp_helper_kill(L.h, pid, SIGSTOP), RP_EPERM);
    assert_int_equal(rp_helper_kill(L.h, getpid(), SIGTERM), RP_ENOENT);
    assert_int_equal(rp_helper_kill(L.h, rp_helper_pid(L.h), SIGKILL), RP_ENOENT);
    assert_int_equal(rp_helper_kill(L.h, 0, SIGTERM), RP_EPERM);
    assert_int_equal(rp_helper_kill(L.h, -pid, SIGTERM), RP_EPERM);
    assert_int_equal(rp_helper_kill(L.h, -1, SIGKILL), RP_EPERM);
    no_exit(200);
    assert_int_equal(kill(pid, 0), 0);
    assert_int_equal(kill(rp_helper_pid(L.h), 0), 0);
    /* Its own child: ended, reported, and no longer a target. */
    assert_int_equal(rp_helper_kill(L.h, pid, SIGTERM), 0);
    wait_exit(pid, &status, &sig);
    assert_int_equal(sig, SIGTERM);
    assert_int_equal(status, 0);
    assert_int_equal(rp_helper_kill(L.h, pid, SIGKILL), RP_ENOENT);

    assert_int_equal(start("sleep", "x/releases/1", "x/run", 0, TEST_UID, &pid, &po, &pe), 0);
    close(po);
    close(pe);
    assert_int_equal(rp_helper_kill(L.h, pid, SIGKILL), 0);
    wait_exit(pid, &status, &sig);
    assert_int_equal(sig, SIGKILL);
}

/* A refused start starts nothing: no exit comes and the output pipes are closed at once. */
static void refused(int rc, int want, int po, int pe)
{
    char buf[1024];

    print_message("refused: %s\n", why);
    assert_int_equal(rc, want);
    assert_true(why[0] != '\0');
    slurp(po, buf, sizeof(buf));
    assert_string_equal(buf, "");
    slurp(pe, buf, sizeof(buf));
    assert_string_equal(buf, "");
    no_exit(100);
}

static void test_refusals(void **state)
{
    char path[800], target[800];
    struct stat st;
    int pid = -1, po, pe, rc;

    (void)state;
    if (geteuid() == 0) {
        rc = start("x", "x/releases/1", "x/run", 0, 0, &pid, &po, &pe);
        refused(rc, RP_EPERM, po, pe);
        assert_non_null(strstr(why, "uid 0"));
        rc = start("x", "x/releases/1", "x/run", 0, UID_MAX + 1, &pid, &po, &pe);
        refused(rc, RP_EPERM, po, pe);
        assert_non_null(strstr(why, "is not an app's"));
    }
    assert_int_equal(pid, -1);

    /* Paths outside the apps directory, an app name that is not one. */
    pathf(path, sizeof(path), "%s/elsewhere/releases/1", L.dir);
    rp_test_mkdir_p(path);
    rc = start("x", path, "x/run", 0, TEST_UID, &pid, &po, &pe);
    refused(rc, RP_EPERM, po, pe);
    assert_non_null(strstr(why, "release is not below"));
    rc = start("x", "x/releases/1/../../../../elsewhere/releases/1", "x/run", 0, TEST_UID, &pid,
               &po, &pe);
    refused(rc, RP_EPERM, po, pe);
    pathf(path, sizeof(path), "%s/elsewhere/run", L.dir);
    rc = start("x", "x/releases/1", path, 1, TEST_UID, &pid, &po, &pe);
    refused(rc, RP_EPERM, po, pe);
    assert_non_null(strstr(why, "not a run directory"));
    assert_false(exists(path));
    rc = start("X", "x/releases/1", "x/run", 0, TEST_UID, &pid, &po, &pe);
    refused(rc, RP_EPERM, po, pe);
    assert_non_null(strstr(why, "not an app name"));

    /* A release through a link (the apps directory is the service user's): refused by the
     * helper's own opening, component by component. */
    pathf(target, sizeof(target), "%s/elsewhere", L.dir);
    pathf(path, sizeof(path), "%s/y", L.apps);
    assert_int_equal(symlink(target, path), 0);
    rc = start("y", "y/releases/1", "x/run", 0, TEST_UID, &pid, &po, &pe);
    refused(rc, RP_EIO, po, pe);
    assert_non_null(strstr(why, "cannot open the release"));
    /* ... or a link as its last component, or not a directory. */
    pathf(path, sizeof(path), "%s/x/releases/2", L.apps);
    assert_int_equal(symlink("1", path), 0);
    rc = start("x", "x/releases/2", "x/run", 0, TEST_UID, &pid, &po, &pe);
    refused(rc, RP_EIO, po, pe);
    assert_non_null(strstr(why, "cannot open the release"));
    pathf(path, sizeof(path), "%s/x/releases/3", L.apps);
    write_file(path, "not a directory", 0644);
    rc = start("x", "x/releases/3", "x/run", 0, TEST_UID, &pid, &po, &pe);
    refused(rc, RP_EIO, po, pe);
    rc = start("x", "x/releases/4", "x/run", 0, TEST_UID, &pid, &po, &pe);
    refused(rc, RP_EIO, po, pe);

    /* An isolated run directory through a link: nothing made or handed over at its target. */
    rc = start("y", "x/releases/1", "y/run", 1, TEST_UID, &pid, &po, &pe);
    refused(rc, RP_EIO, po, pe);
    assert_non_null(strstr(why, "app's directory"));
    pathf(path, sizeof(path), "%s/elsewhere/run", L.dir);
    assert_false(exists(path));
    pathf(path, sizeof(path), "%s/x/run.3", L.apps);
    pathf(target, sizeof(target), "%s/elsewhere/releases", L.dir);
    assert_int_equal(symlink(target, path), 0);
    rc = start("x", "x/releases/1", "x/run.3", 1, TEST_UID, &pid, &po, &pe);
    refused(rc, RP_EIO, po, pe);
    assert_non_null(strstr(why, "run directory"));
    assert_int_equal(stat(target, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(st.st_uid, geteuid());
    assert_int_equal(pid, -1);

    /* After all that, a good start still works. */
    assert_int_equal(start("x", "x/releases/1", "x/run", 0, TEST_UID, &pid, &po, &pe), 0);
    {
        char buf[8192];
        int64_t status;
        int sig;
        slurp(po, buf, sizeof(buf));
        slurp(pe, buf, sizeof(buf));
        wait_exit(pid, &status, &sig);
        assert_int_equal(status, 7);
    }
}

/* What the launcher gets as root is checked: a sealed memfd, write-only pipes, nothing else. */
static void test_descriptors(void **state)
{
    static const char *const env[] = {"K=V"};
    int blob = -1, p[2], dir, file, plain;

    (void)state;
    assert_int_equal(rp_sandbox_blob("true", env, 1, &blob), 0);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    file = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
    plain = memfd_create("plain", MFD_CLOEXEC);
    assert_true(dir >= 0 && file >= 0 && plain >= 0);
    /* A directory or a file as stdout (the app would write, or walk, as root's descriptor). */
    assert_int_equal(start_fds(blob, dir, p[1]), RP_EPERM);
    assert_non_null(strstr(why, "write-only pipes"));
    assert_int_equal(start_fds(blob, p[1], file), RP_EPERM);
    /* The read end of a pipe. */
    assert_int_equal(start_fds(blob, p[0], p[1]), RP_EPERM);
    /* An unsealed memfd, a directory as the environment. */
    assert_int_equal(start_fds(plain, p[1], p[1]), RP_EPERM);
    assert_non_null(strstr(why, "sealed memfd"));
    assert_int_equal(start_fds(dir, p[1], p[1]), RP_EPERM);
    no_exit(0);
    close(blob);
    close(p[0]);
    close(p[1]);
    close(dir);
    close(file);
    close(plain);
}

static void test_rmrun(void **state)
{
    char run[800], path[900], victim[800], vdir[800], target[800];

    (void)state;
    /* A run directory with a subdirectory, and links out to a file and a directory. */
    pathf(victim, sizeof(victim), "%s/victim", L.dir);
    write_file(victim, "keep", 0600);
    pathf(vdir, sizeof(vdir), "%s/victimdir", L.dir);
    assert_int_equal(mkdir(vdir, 0700), 0);
    pathf(path, sizeof(path), "%s/file", vdir);
    write_file(path, "keep", 0600);
    pathf(run, sizeof(run), "%s/z/run", L.apps);
    pathf(path, sizeof(path), "%s/sub/deeper", run);
    rp_test_mkdir_p(path);
    pathf(path, sizeof(path), "%s/sub/file", run);
    write_file(path, "gone", 0600);
    pathf(path, sizeof(path), "%s/link", run);
    assert_int_equal(symlink(victim, path), 0);
    pathf(path, sizeof(path), "%s/sub/dirlink", run);
    assert_int_equal(symlink(vdir, path), 0);
    if (geteuid() == 0) { /* the app's, and closed to others */
        pathf(path, sizeof(path), "%s/sub", run);
        assert_int_equal(chown(path, TEST_UID, TEST_UID), 0);
        assert_int_equal(chmod(path, 0700), 0);
        assert_int_equal(chown(run, TEST_UID, TEST_UID), 0);
        assert_int_equal(chmod(run, 02750), 0);
    }
    assert_int_equal(rp_helper_rmrun(L.h, run), 0);
    assert_false(exists(run));
    pathf(path, sizeof(path), "%s/z", L.apps);
    assert_true(exists(path));
    assert_true(exists(victim));
    pathf(path, sizeof(path), "%s/file", vdir);
    assert_true(exists(path));
    /* Gone already, or never there. */
    assert_int_equal(rp_helper_rmrun(L.h, run), 0);
    pathf(path, sizeof(path), "%s/never/run.5", L.apps);
    assert_int_equal(rp_helper_rmrun(L.h, path), 0);

    /* However deep the app made it (past the recursion's limit), it goes. */
    pathf(run, sizeof(run), "%s/z/run", L.apps);
    assert_int_equal(mkdir(run, 0700), 0);
    {
        int fd = open(run, O_RDONLY | O_DIRECTORY);
        assert_true(fd >= 0);
        for (int k = 0; k < 200; k++) {
            int next;
            assert_int_equal(mkdirat(fd, "d", 0700), 0);
            next = openat(fd, "d", O_RDONLY | O_DIRECTORY);
            assert_true(next >= 0);
            if (k % 50 == 0)
                assert_int_equal(symlinkat(victim, next, "ln"), 0);
            close(fd);
            fd = next;
        }
        close(fd);
    }
    assert_int_equal(rp_helper_rmrun(L.h, run), 0);
    assert_false(exists(run));
    assert_true(exists(victim));

    /* A run.N directory goes the same way; its siblings stay. */
    pathf(run, sizeof(run), "%s/z/run.1", L.apps);
    pathf(path, sizeof(path), "%s/z/run.2", L.apps);
    assert_int_equal(mkdir(run, 0700), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(rp_helper_rmrun(L.h, run), 0);
    assert_false(exists(run));
    assert_true(exists(path));

    /* Through a linked component: the link's target keeps its run directory. */
    pathf(target, sizeof(target), "%s/target/run", L.dir);
    rp_test_mkdir_p(target);
    pathf(path, sizeof(path), "%s/keep", target);
    write_file(path, "keep", 0600);
    pathf(target, sizeof(target), "%s/target", L.dir);
    pathf(path, sizeof(path), "%s/w", L.apps);
    assert_int_equal(symlink(target, path), 0);
    pathf(run, sizeof(run), "%s/w/run", L.apps);
    assert_int_equal(rp_helper_rmrun(L.h, run), RP_EIO);
    pathf(path, sizeof(path), "%s/target/run/keep", L.dir);
    assert_true(exists(path));

    /* A run directory that is itself a link: the link goes, not what it points to. */
    pathf(path, sizeof(path), "%s/u", L.apps);
    assert_int_equal(mkdir(path, 0700), 0);
    pathf(run, sizeof(run), "%s/u/run", L.apps);
    pathf(target, sizeof(target), "%s/target/run", L.dir);
    assert_int_equal(symlink(target, run), 0);
    assert_int_equal(rp_helper_rmrun(L.h, run), 0);
    assert_false(exists(run));
    pathf(path, sizeof(path), "%s/target/run/keep", L.dir);
    assert_true(exists(path));

    /* Not a run directory: refused, and left alone. */
    pathf(path, sizeof(path), "%s/z", L.apps);
    assert_int_equal(rp_helper_rmrun(L.h, path), RP_EPERM);
    assert_true(exists(path));
    pathf(path, sizeof(path), "%s/x/releases", L.apps);
    assert_int_equal(rp_helper_rmrun(L.h, path), RP_EPERM);
    assert_true(exists(path));
    pathf(path, sizeof(path), "%s/target/run", L.dir);
    assert_int_equal(rp_helper_rmrun(L.h, path), RP_EPERM);
    assert_true(exists(path));
    pathf(path, sizeof(path), "%s/z/../../target/run", L.apps);
    assert_int_equal(rp_helper_rmrun(L.h, path), RP_EPERM);
    pathf(path, sizeof(path), "%s/target/run/keep", L.dir);
    assert_true(exists(path));

    /* The apps directory renamed and a link put in its place (its owner can do that): the
     * helper works in the directory it was given, never through the link. */
    {
        char moved[800], link[800];
        pathf(moved, sizeof(moved), "%s/apps.moved", L.dir);
        pathf(link, sizeof(link), "%s/target/x/run", L.dir);
        rp_test_mkdir_p(link);
        pathf(link, sizeof(link), "%s/target/x/run/keep", L.dir);
        write_file(link, "keep", 0600);
        pathf(run, sizeof(run), "%s/x/run", L.apps);
        rp_test_mkdir_p(run);
        assert_int_equal(rename(L.apps, moved), 0);
        pathf(target, sizeof(target), "%s/target", L.dir);
        assert_int_equal(symlink(target, L.apps), 0);
        assert_int_equal(rp_helper_rmrun(L.h, run), 0);
        assert_true(exists(link));
        pathf(path, sizeof(path), "%s/x/run", moved);
        assert_false(exists(path));
        assert_int_equal(unlink(L.apps), 0);
        assert_int_equal(rename(moved, L.apps), 0);
    }
}

static void test_uncgroup(void **state)
{
    char run[800];

    (void)state;
    /* A leaf never made (its key is this scratch directory): nothing to remove. */
    pathf(run, sizeof(run), "%s/never/run", L.apps);
    assert_int_equal(rp_helper_uncgroup(L.h, "never", run), 0);
    assert_int_equal(rp_helper_uncgroup(L.h, "Never", run), RP_EPERM);
    pathf(run, sizeof(run), "%s/never/data", L.apps);
    assert_int_equal(rp_helper_uncgroup(L.h, "never", run), RP_EPERM);
    assert_int_equal(rp_helper_uncgroup(L.h, "never", "/sys/fs/cgroup/run"), RP_EPERM);
}

static void test_layers(void **state)
{
    char missing[RP_HELPER_MISSING_MAX], want[RP_HELPER_MISSING_MAX], small[8];
    unsigned layers, expected;
    int mode;

    (void)state;
    memset(missing, 'x', sizeof(missing));
    layers = rp_helper_layers(L.h, missing, sizeof(missing));
    expected = rp_sandbox_probe("/nonexistent/bwrap", &mode, want, sizeof(want));
    assert_int_equal(layers, expected);
    assert_string_equal(missing, want);
    assert_false(layers & RP_SANDBOX_BWRAP);
    assert_non_null(strstr(missing, "bubblewrap"));
    if (geteuid() == 0)
        assert_true(layers & RP_SANDBOX_UID);
    else
        assert_non_null(strstr(missing, "not root"));
    assert_int_equal(rp_helper_layers(L.h, small, sizeof(small)), expected);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_memory_equal(small, want, sizeof(small) - 1);
}

/* Stopping the helper (the server's end closing) ends what it started. */
static void test_stop(void **state)
{
    struct timespec t0, t1;
    int pid, pid2, po, pe, hp = rp_helper_pid(L.h);

    (void)state;
    assert_int_equal(start("sleep", "x/releases/1", "x/run", 0, TEST_UID, &pid, &po, &pe), 0);
    close(po);
    close(pe);
    assert_int_equal(start("sleep", "x/releases/1", "x/run.1", 1, TEST_UID, &pid2, &po, &pe), 0);
    close(po);
    close(pe);
    assert_int_equal(kill(pid, 0), 0);
    assert_int_equal(kill(pid2, 0), 0);
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &t0), 0);
    rp_helper_stop(L.h);
    L.h = NULL;
    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &t1), 0);
    assert_true(t1.tv_sec - t0.tv_sec < 10); /* killed, not waited out (they sleep 30 s) */
    errno = 0;
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    assert_int_equal(kill(pid2, 0), -1);
    assert_int_equal(errno, ESRCH);
    assert_int_equal(kill(hp, 0), -1); /* waited for */
}

/* A helper that dies: its exits end, and requests fail instead of hanging. */
static void test_helper_gone(void **state)
{
    struct pollfd pf = {rp_helper_event_fd(L.h), POLLIN, 0};
    int pid = -1, po, pe, sig;
    int64_t status;

    (void)state;
    assert_int_equal(kill(rp_helper_pid(L.h), SIGKILL), 0);
    assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
    assert_int_equal(rp_helper_next_exit(L.h, &pid, &status, &sig), RP_ECLOSED);
    assert_int_equal(start("x", "x/releases/1", "x/run", 0, TEST_UID, &pid, &po, &pe), RP_EIO);
    assert_non_null(strstr(why, "gone"));
    close(po);
    close(pe);
    assert_int_equal(rp_helper_kill(L.h, 1234, SIGTERM), RP_EIO);
    assert_int_equal(rp_helper_rmrun(L.h, "/d/apps/x/run"), RP_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_below),
        cmocka_unit_test(test_check_spawn),
        cmocka_unit_test(test_check_other_ops),
        cmocka_unit_test(test_start_refusals),
        cmocka_unit_test_setup_teardown(test_spawn, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_spawn_isolated, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_kill, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_descriptors, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_rmrun, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_uncgroup, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_layers, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_stop, live_setup, live_teardown),
        cmocka_unit_test_setup_teardown(test_helper_gone, live_setup, live_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
