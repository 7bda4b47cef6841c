/*
 * seccomp_test.c - the app sandbox's system call filter (src/sandbox/seccomp.c), installed for
 * real in a child process: the denied calls fail with EPERM (namespaces, mounts, keyrings,
 * ptrace, io_uring), clone with a namespace flag fails and clone3 is ENOSYS, personality only
 * answers queries, and what ordinary programs do (fork, exec, files) still works.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "sandbox/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Each check sets one bit of the child's exit status when it fails. */
static int checks(void)
{
    int bad = 0, fd;
    pid_t pid;
    long r;

    errno = 0;
    if (unshare(CLONE_NEWUSER) != -1 || errno != EPERM)
        bad |= 1 << 0;
    errno = 0;
    if (mount("none", "/tmp", "tmpfs", 0, NULL) != -1 || errno != EPERM)
        bad |= 1 << 1;
    errno = 0;
    r = syscall(SYS_clone, (long)(CLONE_NEWNET | SIGCHLD), 0L, 0L, 0L, 0L);
    if (r == 0)
        _exit(0); /* the filter let it through: a child in a new namespace */
    if (r != -1 || errno != EPERM)
        bad |= 1 << 2;
#ifdef SYS_clone3
    errno = 0;
    if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
        bad |= 1 << 3;
#endif
    errno = 0;
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != -1 || errno != EPERM)
        bad |= 1 << 4;
    errno = 0;
    if (syscall(SYS_keyctl, 0, 0, 0, 0, 0) != -1 || errno != EPERM)
        bad |= 1 << 5;
    if (personality(0xffffffff) < 0)
        bad |= 1 << 6;
    errno = 0;
    if (personality(ADDR_NO_RANDOMIZE) != -1 || errno != EPERM)
        bad |= 1 << 7;
#ifdef SYS_io_uring_setup
    errno = 0;
    if (syscall(SYS_io_uring_setup, 1, NULL) != -1 || errno != EPERM)
        bad |= 1 << 8;
#endif
    /* Ordinary work goes on: fork (clone without namespace flags), exec, files. */
    pid = fork();
    if (pid == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(9);
    }
    {
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad |= 1 << 9;
    }
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || getpid() <= 0)
        bad |= 1 << 10;
    if (fd >= 0)
        close(fd);
    return bad;
}

static void test_filter_installed(void **state)
{
    struct sock_filter prog[RP_SECCOMP_MAX];
    size_t n = 0;
    int status, fds[2], bad = -1;
    pid_t pid;

    (void)state;
    if (!rp_seccomp_available())
        skip();
    assert_int_equal(rp_seccomp_build(prog, RP_SECCOMP_MAX, &n), 0);
    assert_true(n > 20 && n < RP_SECCOMP_MAX);
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sock_fprog fp = {(unsigned short)n, prog};
        int r = -2;
        close(fds[0]);
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp, 0, 0) == 0)
            r = checks();
        if (write(fds[1], &r, sizeof(r)) != sizeof(r))
            _exit(1);
        _exit(0);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], &bad, sizeof(bad)), sizeof(bad));
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(bad, 0); /* a bit per failed check (checks()), -2: not installed */
}

static void test_too_small(void **state)
{
    struct sock_filter prog[8];
    size_t n = 1;

    (void)state;
    assert_int_equal(rp_seccomp_build(prog, 8, &n), RP_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_installed),
        cmocka_unit_test(test_too_small),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
