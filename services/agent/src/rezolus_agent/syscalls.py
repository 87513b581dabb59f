"""Syscall numbers and the families (``op`` label values) they are counted under.

Families follow the original Rezolus: other, read, write, poll, lock, time,
sleep, socket, yield, filesystem, memory, process, query, ipc, timer, event.
The number → name table is per architecture, read from a data file on demand.
"""

from __future__ import annotations

import platform
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from rezolus_agent.sampler import SamplerUnavailable

if TYPE_CHECKING:
    from numpy.typing import NDArray

FAMILIES = (
    "other",
    "read",
    "write",
    "poll",
    "lock",
    "time",
    "sleep",
    "socket",
    "yield",
    "filesystem",
    "memory",
    "process",
    "query",
    "ipc",
    "timer",
    "event",
)
MAX_SYSCALL = 1024

_MEMBERS = {
    "read": "read readv pread64 preadv preadv2",
    "write": "write writev pwrite64 pwritev pwritev2",
    "poll": "poll ppoll select pselect6 epoll_wait epoll_pwait epoll_pwait2 epoll_ctl epoll_create epoll_create1",
    "lock": "futex futex_waitv futex_wake futex_wait futex_requeue flock set_robust_list get_robust_list",
    "time": "clock_gettime clock_getres clock_settime clock_adjtime gettimeofday settimeofday time adjtimex",
    "sleep": "nanosleep clock_nanosleep pause",
    "socket": "socket socketpair bind listen accept accept4 connect getsockname getpeername "
    "sendto recvfrom sendmsg recvmsg sendmmsg recvmmsg shutdown setsockopt getsockopt sendfile",
    "yield": "sched_yield",
    "filesystem": "open openat openat2 close close_range creat stat fstat lstat newfstatat statx "
    "statfs fstatfs access faccessat faccessat2 lseek fsync fdatasync sync syncfs sync_file_range "
    "truncate ftruncate fallocate rename renameat renameat2 mkdir mkdirat rmdir link linkat "
    "unlink unlinkat symlink symlinkat readlink readlinkat chmod fchmod fchmodat fchmodat2 chown "
    "fchown lchown fchownat utime utimes utimensat futimesat getdents getdents64 dup dup2 dup3 "
    "fcntl ioctl chdir fchdir getcwd chroot mount umount2 pivot_root setxattr lsetxattr "
    "fsetxattr getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr removexattr "
    "lremovexattr fremovexattr setxattrat getxattrat listxattrat removexattrat name_to_handle_at "
    "open_by_handle_at copy_file_range splice tee vmsplice io_setup io_destroy io_submit "
    "io_cancel io_getevents io_pgetevents io_uring_setup io_uring_enter io_uring_register "
    "mknod mknodat umask readahead open_tree open_tree_attr move_mount fsopen fsconfig fsmount "
    "fspick mount_setattr statmount listmount quotactl quotactl_fd cachestat",
    "memory": "mmap munmap mprotect pkey_mprotect brk madvise process_madvise mremap msync "
    "mlock mlock2 munlock mlockall munlockall mincore membarrier mbind set_mempolicy "
    "get_mempolicy migrate_pages move_pages memfd_create memfd_secret userfaultfd "
    "remap_file_pages map_shadow_stack mseal process_mrelease set_mempolicy_home_node "
    "pkey_alloc pkey_free",
    "process": "clone clone3 fork vfork execve execveat exit exit_group wait4 waitid kill tkill "
    "tgkill rt_sigaction rt_sigprocmask rt_sigreturn rt_sigpending rt_sigtimedwait "
    "rt_sigqueueinfo rt_tgsigqueueinfo rt_sigsuspend sigaltstack setpgid setsid setuid setgid "
    "setreuid setregid setresuid setresgid setfsuid setfsgid setgroups capset prctl "
    "arch_prctl set_tid_address unshare setns pidfd_open pidfd_send_signal pidfd_getfd "
    "sched_setaffinity sched_setscheduler sched_setparam sched_setattr setpriority "
    "setrlimit prlimit64 seccomp ptrace personality",
    "query": "getpid getppid gettid getuid geteuid getgid getegid getresuid getresgid getpgid "
    "getpgrp getsid getgroups capget uname sysinfo getrusage times getrlimit getpriority "
    "sched_getaffinity sched_getscheduler sched_getparam sched_getattr "
    "sched_get_priority_max sched_get_priority_min sched_rr_get_interval getcpu getrandom "
    "lsm_get_self_attr lsm_list_modules kcmp",
    "ipc": "pipe pipe2 msgget msgsnd msgrcv msgctl semget semop semtimedop semctl shmget shmat "
    "shmdt shmctl mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify mq_getsetattr "
    "process_vm_readv process_vm_writev",
    "timer": "alarm getitimer setitimer timer_create timer_settime timer_gettime "
    "timer_getoverrun timer_delete timerfd_create timerfd_settime timerfd_gettime",
    "event": "eventfd eventfd2 signalfd signalfd4 inotify_init inotify_init1 inotify_add_watch "
    "inotify_rm_watch fanotify_init fanotify_mark",
}


def family_of() -> dict[str, int]:
    """Syscall name → family index."""
    table: dict[str, int] = {}
    for family, names in _MEMBERS.items():
        index = FAMILIES.index(family)
        for name in names.split():
            table[name] = index
    return table


def numbers(machine: str | None = None) -> dict[int, str]:
    """Syscall number → name for an architecture (the running one by default)."""
    arch = machine or platform.machine()
    resource = resources.files("rezolus_agent") / "data" / f"syscalls_{arch}.txt"
    if not resource.is_file():
        raise FileNotFoundError(f"no syscall table for architecture {arch}")
    table: dict[int, str] = {}
    for line in resource.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            number, name = line.split()
            table[int(number)] = name
    return table


def family_table(machine: str | None = None) -> list[int]:
    """Family index for every syscall number below MAX_SYSCALL (0, ``other``, if unknown)."""
    families = family_of()
    out = [0] * MAX_SYSCALL
    for number, name in numbers(machine).items():
        if number < MAX_SYSCALL:
            out[number] = families.get(name, 0)
    return out


def fill_family_table(table: NDArray[np.uint64]) -> None:
    """Write ``family_table()`` into a BPF map view; SamplerUnavailable when this architecture has none."""
    try:
        families = np.asarray(family_table(), dtype=np.uint64)
    except FileNotFoundError as exc:
        raise SamplerUnavailable(str(exc)) from exc
    table[: families.size] = families
