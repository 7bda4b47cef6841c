/*
 * seccomp.c - the app sandbox's system call filter (seccomp.h).
 *
 * The program: check the architecture (kill on any other), refuse x32 numbers on x86-64, then
 * one comparison per denied call (EPERM), clone's flags and personality's argument checked in
 * place, everything else allowed. Built once per process start; ~100 instructions.
 */
#include "sandbox/seccomp.h"
#include "base/err.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#endif

#ifdef SECCOMP_RET_KILL_PROCESS
#define RET_KILL SECCOMP_RET_KILL_PROCESS
#else
#define RET_KILL SECCOMP_RET_KILL
#endif

/* Every namespace flag clone() knows (CLONE_NEWTIME shares its bit with the exit signal there). */
#define NS_FLAGS                                                                                   \
    (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |     \
     CLONE_NEWCGROUP)

#define ARG0_LO (offsetof(struct seccomp_data, args[0])) /* little-endian: the low word first */

#ifdef ARCH
static const int denied[] = {
    __NR_mount,
    __NR_umount2,
    __NR_pivot_root,
    __NR_chroot,
    __NR_unshare,
    __NR_setns,
    __NR_keyctl,
    __NR_add_key,
    __NR_request_key,
    __NR_bpf,
    __NR_perf_event_open,
    __NR_kexec_load,
    __NR_init_module,
    __NR_finit_module,
    __NR_delete_module,
    __NR_ptrace,
    __NR_process_vm_readv,
    __NR_process_vm_writev,
    __NR_userfaultfd,
    __NR_acct,
    __NR_swapon,
    __NR_swapoff,
    __NR_reboot,
    __NR_syslog,
    __NR_quotactl,
    __NR_open_by_handle_at,
    __NR_name_to_handle_at,
    __NR_lookup_dcookie,
    __NR_settimeofday,
    __NR_clock_settime,
    __NR_clock_adjtime,
    __NR_adjtimex,
    __NR_vhangup,
#ifdef __NR_kexec_file_load
    __NR_kexec_file_load,
#endif
#ifdef __NR_io_uring_setup
    __NR_io_uring_setup,
    __NR_io_uring_enter,
    __NR_io_uring_register,
#endif
#ifdef __NR_fsopen
    __NR_fsopen,
    __NR_fsconfig,
    __NR_fsmount,
    __NR_fspick,
    __NR_move_mount,
    __NR_open_tree,
#endif
#ifdef __NR_mount_setattr
    __NR_mount_setattr,
#endif
#ifdef __NR_quotactl_fd
    __NR_quotactl_fd,
#endif
#ifdef __NR_iopl
    __NR_iopl,
    __NR_ioperm,
#endif
#ifdef __NR_uselib
    __NR_uselib,
#endif
#ifdef __NR_nfsservctl
    __NR_nfsservctl,
#endif
};
#endif

int rp_seccomp_build(struct sock_filter *prog, size_t cap, size_t *n)
{
#ifndef ARCH
    (void)prog;
    (void)cap;
    *n = 0;
    return RP_EUNSUPPORTED;
#else
    size_t k = 0;
    const uint32_t eperm = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);

#define EMIT(x)                                                                                    \
    do {                                                                                           \
        if (k == cap)                                                                              \
            return RP_ETOOBIG;                                                                     \
        prog[k++] = (struct sock_filter)x;                                                         \
    } while (0)
#define LD(off)       EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (off)))
#define JEQ(v, t, f)  EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (v), (t), (f)))
#define JGE(v, t, f)  EMIT(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (v), (t), (f)))
#define JSET(v, t, f) EMIT(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, (v), (t), (f)))
#define RET(v)        EMIT(BPF_STMT(BPF_RET | BPF_K, (v)))

    *n = 0;
    LD(offsetof(struct seccomp_data, arch));
    JEQ(ARCH, 1, 0);
    RET(RET_KILL);
    LD(offsetof(struct seccomp_data, nr));
#ifdef __x86_64__
    /* x32 numbers (bit 30) name the same calls through another table. */
    JGE(0x40000000u, 0, 1);
    RET(RET_KILL);
#endif
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
        JEQ((uint32_t)denied[i], 0, 1);
        RET(eperm);
    }
    /* clone(flags, ...): no new namespaces (user namespaces are where an unprivileged process
     * gets capabilities back). */
    JEQ(__NR_clone, 0, 4);
    LD(ARG0_LO);
    JSET(NS_FLAGS, 0, 1);
    RET(eperm);
    RET(SECCOMP_RET_ALLOW);
#ifdef __NR_clone3
    JEQ(__NR_clone3, 0, 1);
    RET(SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));
#endif
    /* personality(): the query and plain Linux (32-bit) only, as Docker's profile allows. */
    JEQ(__NR_personality, 0, 6);
    LD(ARG0_LO);
    JEQ(0xffffffffu, 3, 0);
    JEQ(0x0u, 2, 0);
    JEQ(0x8u, 1, 0);
    RET(eperm);
    RET(SECCOMP_RET_ALLOW);
    RET(SECCOMP_RET_ALLOW);
#undef EMIT
#undef LD
#undef JEQ
#undef JGE
#undef JSET
#undef RET
    *n = k;
    return 0;
#endif
}

int rp_seccomp_available(void)
{
#ifndef ARCH
    return 0;
#else
    /* EINVAL without CONFIG_SECCOMP; EFAULT (the NULL filter) when filters are compiled in. */
    errno = 0;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL, 0, 0) == -1 && errno == EFAULT;
#endif
}
