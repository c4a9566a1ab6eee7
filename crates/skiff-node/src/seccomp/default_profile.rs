//! skiff's `RuntimeDefault` profile, in the same terms as a Docker-format profile (rules with
//! capability and architecture conditions) so that one conversion serves both. The policy is the
//! one container runtimes share: every call refused with EPERM unless allowed below; allowed is
//! what ordinary programs use, and what reaches beyond the container (mounts, namespaces, kernel
//! modules, the clock, the kernel keyring, accounting, reboot...) only with the capability that
//! would permit it anyway.

use super::{ArchMap, Conditions, Profile, Rule};
use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};

/// Allowed to every container, by subject (names absent on an architecture or unknown to the
/// installed libseccomp are skipped by the runtime).
#[rustfmt::skip]
const ALLOWED: &[&[&str]] = &[
    // Files and directories.
    &[
        "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range", "creat",
        "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fchdir",
        "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync",
        "flock", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
        "futimesat", "getcwd", "getdents", "getdents64", "lchown", "lchown32", "link", "linkat", "_llseek",
        "lseek", "lstat", "lstat64", "mkdir", "mkdirat", "mknod", "mknodat", "name_to_handle_at", "newfstatat",
        "open", "openat", "openat2", "pipe", "pipe2", "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read",
        "readahead", "readlink", "readlinkat", "readv", "rename", "renameat", "renameat2", "rmdir", "sendfile",
        "sendfile64", "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
        "sync_file_range", "syncfs", "tee", "truncate", "truncate64", "umask", "unlink", "unlinkat", "utime",
        "utimensat", "utimensat_time64", "utimes", "vmsplice", "write", "writev",
    ],
    // Extended attributes.
    &[
        "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "getxattrat", "lgetxattr",
        "listxattr", "listxattrat", "llistxattr", "lremovexattr", "lsetxattr", "removexattr", "removexattrat",
        "setxattr", "setxattrat",
    ],
    // Waiting on descriptors, events and notifications.
    &[
        "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2",
        "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark", "inotify_add_watch",
        "inotify_init", "inotify_init1", "inotify_rm_watch", "_newselect", "pause", "poll", "ppoll",
        "ppoll_time64", "pselect6", "pselect6_time64", "select", "signalfd", "signalfd4", "timerfd_create",
        "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64",
    ],
    // Asynchronous I/O (io_uring stays out, as with other runtimes: a large attack surface).
    &["io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit"],
    // Memory.
    &[
        "brk", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mlock", "mlock2", "mlockall",
        "mmap", "mmap2", "mprotect", "mremap", "mseal", "msync", "munlock", "munlockall", "munmap", "pkey_alloc",
        "pkey_free", "pkey_mprotect", "remap_file_pages", "map_shadow_stack",
    ],
    // Processes, threads and their identity.
    &[
        "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "getcpu", "getegid", "getegid32",
        "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getpgid", "getpgrp", "getpid",
        "getppid", "getpriority", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
        "get_robust_list", "getrusage", "getsid", "get_thread_area", "gettid", "getuid", "getuid32",
        "ioprio_get", "ioprio_set", "pidfd_open", "pidfd_send_signal", "prctl", "prlimit64", "process_mrelease",
        "restart_syscall", "rseq", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32",
        "setgroups", "setgroups32", "setpgid", "setpriority", "setregid", "setregid32", "setresgid",
        "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list",
        "setsid", "set_thread_area", "set_tid_address", "setuid", "setuid32", "ugetrlimit", "vfork", "wait4",
        "waitid", "waitpid",
        // Since Linux 4.8 seccomp is checked again after a tracer changes a call, so tracing a
        // process of one's own container cannot get around the filter.
        "ptrace", "process_vm_readv", "process_vm_writev",
        // A filter of its own on top of this one (it can only narrow what is allowed).
        "seccomp",
        // Unprivileged sandboxing of one's own processes.
        "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
    ],
    // Scheduling.
    &[
        "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
        "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
        "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
    ],
    // Signals.
    &[
        "kill", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
        "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sigaltstack",
        "sigprocmask", "sigreturn", "tgkill", "tkill",
    ],
    // Time and timers (reading the clocks; setting them needs CAP_SYS_TIME, and the kernel checks
    // it again for adjtimex and clock_adjtime, which also read).
    &[
        "adjtimex", "alarm", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
        "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "getitimer",
        "gettimeofday", "nanosleep", "setitimer", "time", "timer_create", "timer_delete", "timer_getoverrun",
        "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "times",
    ],
    // Futexes.
    &["futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake"],
    // Sockets (`socket` itself has a rule of its own).
    &[
        "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen", "recv",
        "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg", "sendto",
        "setsockopt", "shutdown", "socketcall", "socketpair",
    ],
    // System V and POSIX IPC (in the pod's IPC namespace).
    &[
        "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
        "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd", "semctl",
        "semget", "semop", "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
    ],
    // The rest: terminals and devices, randomness, system information.
    &["getrandom", "ioctl", "sysinfo", "uname", "cachestat"],
];

/// Allowed with a capability: what the capability would let a process do anyway.
#[rustfmt::skip]
const WITH_CAPABILITY: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
            "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl",
            "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
        ],
    ),
    ("CAP_BPF", &["bpf"]),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    ("CAP_PERFMON", &["perf_event_open"]),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_MODULE", &["delete_module", "finit_module", "init_module"]),
    ("CAP_SYS_NICE", &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_SYS_PTRACE", &["kcmp", "pidfd_getfd", "process_madvise"]),
    ("CAP_SYS_RAWIO", &["ioperm", "iopl"]),
    ("CAP_SYS_TIME", &["clock_settime", "clock_settime64", "settimeofday", "stime"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    ("CAP_SYSLOG", &["syslog"]),
];

/// Calls that exist only on some architectures (`includes.arches`, Go's names as in Docker profiles).
#[rustfmt::skip]
const BY_ARCH: &[(&[&str], &[&str])] = &[
    (&["amd64", "x32", "386"], &["arch_prctl", "modify_ldt"]),
    (
        &["arm64", "arm"],
        &["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"],
    ),
];

/// The namespace flags of clone(2): CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET.
pub const CLONE_NAMESPACE_FLAGS: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

/// `personality(2)` values allowed: PER_LINUX, PER_LINUX32, UNAME26, both, and the query.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

const AF_VSOCK: u64 = 40;
const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn arg(index: usize, op: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> LinuxSeccompArg {
    super::seccomp_arg(index, op, value, value_two)
}

fn allow(list: &[&str]) -> Rule {
    Rule { names: names(list), ..Rule::default() }
}

/// The profile, before capabilities and architecture select its rules.
pub fn profile() -> Profile {
    let mut rules: Vec<Rule> = ALLOWED.iter().map(|group| allow(group)).collect();
    // Sockets of every family but vsock, which reaches the hypervisor's host rather than the pod's network.
    rules.push(Rule { args: vec![arg(0, LinuxSeccompOperator::ScmpCmpNe, AF_VSOCK, None)], ..allow(&["socket"]) });
    for p in PERSONALITIES {
        rules.push(Rule { args: vec![arg(0, LinuxSeccompOperator::ScmpCmpEq, *p, None)], ..allow(&["personality"]) });
    }
    for (arches, list) in BY_ARCH {
        rules.push(Rule { includes: Conditions { arches: names(arches), ..Default::default() }, ..allow(list) });
    }
    for (cap, list) in WITH_CAPABILITY {
        rules.push(Rule { includes: Conditions { caps: vec![cap.to_string()], ..Default::default() }, ..allow(list) });
    }
    let without_sys_admin = Conditions { caps: vec!["CAP_SYS_ADMIN".into()], ..Default::default() };
    // Without CAP_SYS_ADMIN: new processes and threads, but no new namespaces.
    rules.push(Rule {
        args: vec![arg(0, LinuxSeccompOperator::ScmpCmpMaskedEq, CLONE_NAMESPACE_FLAGS, Some(0))],
        excludes: without_sys_admin.clone(),
        ..allow(&["clone"])
    });
    // clone3 takes its flags in memory a filter cannot read: ENOSYS makes libc fall back to clone.
    rules.push(Rule {
        action: LinuxSeccompAction::ScmpActErrno,
        errno_ret: Some(ENOSYS),
        excludes: without_sys_admin,
        ..allow(&["clone3"])
    });
    let arch_map = vec![
        ArchMap { architecture: Arch::ScmpArchX86_64, sub_architectures: vec![Arch::ScmpArchX86, Arch::ScmpArchX32] },
        ArchMap { architecture: Arch::ScmpArchAarch64, sub_architectures: vec![Arch::ScmpArchArm] },
    ];
    Profile {
        default_action: LinuxSeccompAction::ScmpActErrno,
        default_errno_ret: Some(EPERM),
        arch_map,
        syscalls: rules,
        ..Profile::default()
    }
}
