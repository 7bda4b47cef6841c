/*
 * cgroup_test.c - app resource limits through cgroups (src/sandbox/cgroup.c), on fake v1 and v2
 * trees made of plain files: the layout detected, the limit files written as the kernel wants
 * them (memory in bytes, "QUOTA PERIOD", v1's memsw after the limit), the pid moved in, a task
 * left from an earlier run ended, a missing controller reported, and leaf names unique per
 * installation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

#include "base/err.h"
#include "sandbox/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[256];
static char me[32]; /* our pid: what is moved in (and never ended as a leftover) */

static void touch(const char *rel, const char *content)
{
    char p[1024];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void expect(const char *rel, const char *want)
{
    char p[1024], got[256] = "";
    FILE *f;
    size_t n;

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    f = fopen(p, "r");
    assert_non_null(f);
    n = fread(got, 1, sizeof(got) - 1, f);
    got[n] = '\0';
    fclose(f);
    assert_string_equal(got, want);
}

static void dir(const char *rel)
{
    char p[1024];

    snprintf(p, sizeof(p), "%s/%s", root, rel);
    rp_test_mkdir_p(p);
}

/* A child that waits to be killed, its pid written into rel (a task left in the group). */
static pid_t leftover(const char *rel)
{
    char v[32];
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        pause();
        _exit(0);
    }
    snprintf(v, sizeof(v), "%d\n", (int)pid);
    touch(rel, v);
    return pid;
}

static void killed(pid_t pid)
{
    int st;

    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
}

static void test_v2(void **state)
{
    static const char *const files[] = {"memory.max", "memory.swap.max", "memory.oom.group",
                                        "pids.max", "cpu.max"};
    rp_cgroup_limits lim = {96, 64, 150};
    unsigned have, done;
    char err[512], leaf[RP_CGROUP_LEAF_MAX], rel[256];
    pid_t old;

    (void)state;
    snprintf(me, sizeof(me), "%d", (int)getpid());
    rp_test_scratch("cgroup-v2", root, sizeof(root));
    touch("cgroup.controllers", "cpuset cpu io memory pids\n");
    touch("cgroup.subtree_control", "");
    assert_int_equal(rp_cgroup_probe(root, &have), RP_CGROUP_V2);
    assert_int_equal(have, RP_CGROUP_ALL);
    assert_int_equal(rp_cgroup_leaf("shop", "/data/apps/shop/run", leaf, sizeof(leaf)), 0);
    snprintf(rel, sizeof(rel), "rampart/%s", leaf);
    dir(rel);
    touch("rampart/cgroup.subtree_control", "");
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char f[300];
        snprintf(f, sizeof(f), "%s/%s", rel, files[i]);
        touch(f, "");
    }
    {
        char f[300];
        snprintf(f, sizeof(f), "%s/cgroup.procs", rel);
        old = leftover(f); /* no cgroup.kill in the fake: ended one by one */
    }
    assert_int_equal(
        rp_cgroup_enter(root, leaf, &lim, RP_CGROUP_ALL, getpid(), &done, err, sizeof(err)), 0);
    assert_int_equal(done, RP_CGROUP_ALL);
    killed(old);
    {
        char f[300];
#define EXPECT(file, v)                                                                            \
    snprintf(f, sizeof(f), "%s/%s", rel, file);                                                    \
    expect(f, v)
        EXPECT("memory.max", "100663296");
        EXPECT("memory.swap.max", "0");
        EXPECT("memory.oom.group", "1");
        EXPECT("pids.max", "64");
        EXPECT("cpu.max", "150000 100000");
        EXPECT("cgroup.procs", me);
#undef EXPECT
    }
    expect("rampart/cgroup.subtree_control", "+cpu"); /* the last one written */
    /* A controller the machine lacks: reported, the others applied. */
    touch("cgroup.controllers", "memory pids\n");
    assert_int_equal(
        rp_cgroup_enter(root, leaf, &lim, RP_CGROUP_ALL, getpid(), &done, err, sizeof(err)),
        RP_EIO);
    assert_int_equal(done, RP_CGROUP_MEMORY | RP_CGROUP_PIDS);
    assert_non_null(strstr(err, "cpu"));
    rp_test_rmtree(root);
}

static void test_v1(void **state)
{
    rp_cgroup_limits lim = {512, 256, 100};
    unsigned have, done;
    char err[512], leaf[RP_CGROUP_LEAF_MAX], rel[300];
    const char *ctl[] = {"memory", "pids", "cpu"};
    pid_t old;

    (void)state;
    snprintf(me, sizeof(me), "%d", (int)getpid());
    rp_test_scratch("cgroup-v1", root, sizeof(root));
    assert_int_equal(rp_cgroup_probe(root, &have), RP_CGROUP_NONE);
    assert_int_equal(rp_cgroup_leaf("shop", "/data/apps/shop/run", leaf, sizeof(leaf)), 0);
    for (int i = 0; i < 3; i++) {
        snprintf(rel, sizeof(rel), "%s/rampart/%s", ctl[i], leaf);
        dir(rel);
        snprintf(rel, sizeof(rel), "%s/cgroup.procs", ctl[i]);
        touch(rel, "");
    }
    assert_int_equal(rp_cgroup_probe(root, &have), RP_CGROUP_V1);
    assert_int_equal(have, RP_CGROUP_ALL);
#define T(c, f, v)                                                                                 \
    snprintf(rel, sizeof(rel), "%s/rampart/%s/%s", c, leaf, f);                                    \
    touch(rel, v)
    T("memory", "memory.limit_in_bytes", "");
    T("memory", "memory.memsw.limit_in_bytes", "");
    T("memory", "cgroup.procs", "");
    T("pids", "pids.max", "");
    T("cpu", "cpu.cfs_period_us", "");
    T("cpu", "cpu.cfs_quota_us", "");
    T("cpu", "cgroup.procs", "");
#undef T
    snprintf(rel, sizeof(rel), "memory/rampart/%s/cgroup.procs", leaf);
    old = leftover(rel);
    assert_int_equal(
        rp_cgroup_enter(root, leaf, &lim, RP_CGROUP_ALL, getpid(), &done, err, sizeof(err)),
        RP_EIO); /* pids has no cgroup.procs in this fake: reported */
    assert_int_equal(done, RP_CGROUP_MEMORY | RP_CGROUP_CPU);
    assert_non_null(strstr(err, "pids"));
    killed(old);
#define E(c, f, v)                                                                                 \
    snprintf(rel, sizeof(rel), "%s/rampart/%s/%s", c, leaf, f);                                    \
    expect(rel, v)
    E("memory", "memory.limit_in_bytes", "536870912");
    E("memory", "memory.memsw.limit_in_bytes", "536870912");
    E("memory", "cgroup.procs", me);
    E("pids", "pids.max", "256");
    E("cpu", "cpu.cfs_period_us", "100000");
    E("cpu", "cpu.cfs_quota_us", "100000");
    E("cpu", "cgroup.procs", me);
#undef E
    rp_test_rmtree(root);
}

static void test_leaf(void **state)
{
    char a[RP_CGROUP_LEAF_MAX], b[RP_CGROUP_LEAF_MAX], c[RP_CGROUP_LEAF_MAX];

    (void)state;
    assert_int_equal(rp_cgroup_leaf("shop", "/srv/one/apps/shop/run", a, sizeof(a)), 0);
    assert_int_equal(rp_cgroup_leaf("shop", "/srv/one/apps/shop/run", b, sizeof(b)), 0);
    assert_int_equal(rp_cgroup_leaf("shop", "/srv/two/apps/shop/run", c, sizeof(c)), 0);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strncmp(a, "app-shop-", 9), 0);
    assert_int_equal(strlen(a), 9 + 16);
    assert_int_equal(rp_cgroup_leaf("../x", "k", a, sizeof(a)), RP_EINVAL);
    assert_int_equal(rp_cgroup_leaf("shop", "k", a, 10), RP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2),
        cmocka_unit_test(test_v1),
        cmocka_unit_test(test_leaf),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
