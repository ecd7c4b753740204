"""The system calls phase 1 and the evaluator never need, refused by a seccomp filter.

``python -I -m fashion_kit.grading.seccomp PROGRAM ARGS...`` installs the filter (with
``PR_SET_NO_NEW_PRIVS``, so no set-uid program can shed it) and then becomes ``PROGRAM``; the filter
holds for it and everything it starts. ``PROGRAM`` is also made the child subreaper of what it starts
(kept across exec): a process the notebook double-forks away stays in the supervised tree, where its
memory and tasks are counted. The sandboxes put this trampoline in front of every command
they run: in the user sandbox (Gradescope's container has no namespaces) it is the wall against the
network and shared memory; inside bubblewrap it is a second wall.

A refused call fails with ``EPERM`` (``ENOSYS`` for ``clone3``, see below) rather than killing the
process, so Python raises a plain ``PermissionError`` the student can read. Refused:

* sockets of every family but ``AF_UNIX`` (no network, not even the loopback; Jupyter's channels run
  over Unix sockets, ``transport="ipc"``), and ``io_uring``, which can make sockets without ``socket()``;
* memory no process's resident size shows: ``memfd_create``, ``memfd_secret``, SysV shared memory,
  message queues and semaphores, POSIX message queues;
* reaching into other processes: ``ptrace``, ``process_vm_readv``/``writev``, ``pidfd_getfd``, ``kcmp``;
* new namespaces (``unshare``, ``setns``, ``clone`` with a ``CLONE_NEW*`` flag) and mounts, and the
  kernel's administrative and debugging interfaces (keys, BPF, perf, userfaultfd, modules, kexec...);
* set-user-id and set-group-id bits, in every call that gives a file its mode (the ``chmod`` family,
  ``open``/``creat``, ``mkdir``, ``mknod``): in bubblewrap the sandbox's uid is the grader's own
  outside, so a set-uid copy of a shell in the work folder would run as the grader for any local
  account that reached it. ``openat2`` passes its mode in memory, so it answers ``ENOSYS`` (the C
  library and Python use ``openat``).

``clone3`` passes its flags in memory a filter cannot read, so it answers ``ENOSYS``: the C library
then falls back to ``clone``, whose flags are checked (what Docker's and systemd's filters do).
"""

from __future__ import annotations

import errno
import os
import sys

AF_UNIX, AF_NETLINK = 1, 16
PR_SET_CHILD_SUBREAPER = 36
# Address families are below this (46 on Linux 6.x); every family at or above it is refused too.
FAMILIES = 64
# clone()'s namespace flags; its low byte is the exit signal, so CLONE_NEWTIME (0x80) cannot be told
# apart there (it exists only for clone3 and unshare, both refused whole).
CLONE_NEW_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)

S_ISUID, S_ISGID = 0o4000, 0o2000
# Where each call that sets a file's mode takes it (the argument's index).
MODE_ARGUMENT = {"chmod": 1, "fchmod": 1, "fchmodat": 2, "fchmodat2": 2, "open": 2, "openat": 3, "creat": 1,
                 "mkdir": 1, "mkdirat": 2, "mknod": 1, "mknodat": 2}

REFUSED = (
    # memory outside every process
    "memfd_create", "memfd_secret",
    "shmget", "shmat", "shmctl", "shmdt", "msgget", "msgsnd", "msgrcv", "msgctl",
    "semget", "semop", "semtimedop", "semctl",
    "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
    # other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd", "kcmp",
    # namespaces and mounts
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "mount_setattr",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
    # the kernel's own interfaces
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "fanotify_init",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog", "vhangup",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname",
    "iopl", "ioperm", "modify_ldt", "uselib", "lookup_dcookie", "name_to_handle_at", "open_by_handle_at",
    "migrate_pages", "move_pages",
)


class FilterUnavailable(RuntimeError):
    """The filter cannot be built or installed here; the message says what is missing."""


# pyseccomp finds its libraries with ctypes.util.find_library, which runs ldconfig: a fork that fails
# when the account is at its process limit, and slow. The Linux sonames are loaded directly instead.
SONAMES = {"seccomp": "libseccomp.so.2", "c": "libc.so.6"}


def _library():
    import ctypes.util

    find_library = ctypes.util.find_library
    ctypes.util.find_library = lambda name: SONAMES.get(name) or find_library(name)
    try:
        import pyseccomp
    except (ImportError, RuntimeError, OSError) as e:  # pyseccomp raises RuntimeError without libseccomp
        raise FilterUnavailable(
            f"The sandbox's seccomp filter needs libseccomp2 (and the pyseccomp package): {e}. "
            "Install it: Debian/Ubuntu `sudo apt-get install libseccomp2`; Fedora `sudo dnf install libseccomp`."
        ) from None
    finally:
        ctypes.util.find_library = find_library
    return pyseccomp


def build():
    """The filter, ready to load: everything allowed except what this module refuses."""
    sc = _library()
    refuse = sc.ERRNO(errno.EPERM)
    f = sc.SyscallFilter(sc.ALLOW)
    f.set_attr(sc.Attr.CTL_NNP, 1)  # PR_SET_NO_NEW_PRIVS as the filter is loaded
    # Kernels before 5.16 turn on the speculative-store-bypass mitigation for every filtered process
    # (a slower CPU for the whole training); it guards a process's memory from its own code, which
    # the notebook may read anyway. crun, and runc since 1.1.5, opt out the same way by default.
    # libseccomp before 2.5 cannot: the filter is then loaded without it.
    try:
        f.set_attr(sc.Attr.CTL_SSB, 1)
    except (OSError, RuntimeError, ValueError):
        pass
    for name in REFUSED:
        # A name this libseccomp does not know is a call this kernel's ABI lacks: nothing to refuse.
        if sc.resolve_syscall(sc.Arch.NATIVE, name) >= 0:
            f.add_rule(refuse, name)
    # socket()'s family is an int: compared on its low 32 bits, so high bits cannot smuggle one past.
    # A refused netlink socket says EOPNOTSUPP: getifaddrs() fails with it, and libzmq (which asks
    # for the interfaces before binding any TCP address) then fails that bind cleanly, where EPERM
    # makes it abort the whole kernel (ipykernel binds one for forked processes' output).
    for family in range(FAMILIES):
        if family == AF_NETLINK:
            f.add_rule(sc.ERRNO(errno.EOPNOTSUPP), "socket", sc.Arg(0, sc.EQ, family))
        elif family != AF_UNIX:
            f.add_rule(refuse, "socket", sc.Arg(0, sc.MASKED_EQ, 0xFFFFFFFF, family))
    f.add_rule(refuse, "socket", sc.Arg(0, sc.GE, FAMILIES))
    f.add_rule(refuse, "socketpair", sc.Arg(0, sc.NE, AF_UNIX))
    for flag in CLONE_NEW_FLAGS:
        f.add_rule(refuse, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for name, index in MODE_ARGUMENT.items():
        if sc.resolve_syscall(sc.Arch.NATIVE, name) >= 0:
            for bit in (S_ISUID, S_ISGID):
                f.add_rule(refuse, name, sc.Arg(index, sc.MASKED_EQ, bit, bit))
    if sc.resolve_syscall(sc.Arch.NATIVE, "openat2") >= 0:
        f.add_rule(sc.ERRNO(errno.ENOSYS), "openat2")
    return f


def install() -> None:
    """Load the filter into this process (and so into everything it starts from now on)."""
    try:
        build().load()
    except OSError as e:
        raise FilterUnavailable(f"The kernel refused the sandbox's seccomp filter: {e}") from None


def command(argv: list[str], python: str = sys.executable) -> list[str]:
    """``argv``, run behind the filter."""
    return [python, "-I", "-m", __name__, *argv]


def _environment_given() -> dict[bytes, bytes]:
    """The environment this process was started with. Python changes its own at start-up (in the C
    locale it sets LC_CTYPE), and the program is to get exactly what the sandbox gave."""
    with open("/proc/self/environ", "rb") as f:
        return dict(pair.split(b"=", 1) for pair in f.read().split(b"\0") if b"=" in pair)


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -I -m fashion_kit.grading.seccomp PROGRAM [ARGS...]")
    try:
        install()
    except FilterUnavailable as e:  # never run the program unprotected
        sys.exit(f"fashion-kit: {e}")
    import ctypes

    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1)
    os.execve(argv[0], argv, _environment_given())


if __name__ == "__main__":
    main(sys.argv[1:])
