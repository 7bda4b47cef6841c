/*
 * seccomp.h - the system call filter of app sandboxes (docs/security-model.md "App sandbox"):
 * a classic BPF program, built here without libseccomp, that bubblewrap installs (--seccomp FD)
 * just before it executes the sandbox's first process.
 *
 * It is a deny list on top of what an unprivileged uid may do anyway: the calls that only
 * widen the kernel's attack surface for a process that has no capabilities (namespaces and
 * user namespaces above all, mounts, keyrings, BPF, perf, io_uring, module and kexec loading,
 * ptrace, userfaultfd, file handles) fail with EPERM; clone() with a namespace flag fails with
 * EPERM and clone3() with ENOSYS (its flags are out of a filter's reach; C libraries fall back
 * to clone); personality() is limited to the harmless personas. A call from another
 * architecture than the native one (i386 or x32 on x86-64) kills the process: nothing in a
 * sandbox needs them, and a filter written for one table of numbers is bypassed by another.
 */
#ifndef RP_SANDBOX_SECCOMP_H
#define RP_SANDBOX_SECCOMP_H

#include <linux/filter.h>
#include <stddef.h>

#define RP_SECCOMP_MAX 256 /* instructions */

/*
 * Writes the filter into prog[cap] and its length into *n. 0, RP_ETOOBIG (cap too small),
 * RP_EUNSUPPORTED (an architecture this filter does not know: the sandbox then has no seccomp
 * layer).
 */
int rp_seccomp_build(struct sock_filter *prog, size_t cap, size_t *n);

/* 1 when this machine's kernel can install the filter (seccomp filters are compiled in). */
int rp_seccomp_available(void);

#endif
