"""The wall around phase 1: where the student's notebook runs, and how all of it is killed after.

Phase 1 runs Otter and the notebook's kernel with no power over anything that grades it: it may
write only its work folder, it sees the Python environment read-only and nothing of the grader's
home, it has no network, and when phase 1 is over nothing it started survives. Three sandboxes:

* :class:`Bubblewrap` (local grading): ``bwrap`` puts phase 1 in new namespaces (user, PID, network,
  IPC, UTS, cgroup) with a private view of the file system. No root is needed; as root the sandbox
  gets a user namespace too, so it has no real root.
* :class:`UnprivilegedUser` (Gradescope: root in a Docker container, no user namespaces): phase 1
  runs as the unprivileged account ``SANDBOX_USER`` with no capabilities and resource limits.
* :class:`NoSandbox` (``--no-sandbox``, explicit): phase 1 runs as is; recorded as such.

In both real sandboxes every command runs behind the seccomp filter of :mod:`seccomp` (no socket but
``AF_UNIX``, no memfd or SysV shared memory, no ptrace, mounts or namespaces): on Gradescope it is the
wall that namespaces cannot be there; in bubblewrap, a second one. ``held_memory`` tells the
supervisor what the sandbox holds in memory no process's resident size shows (files in its tmpfs).

``kill_all`` kills everything the object started (for :class:`UnprivilegedUser`, everything its
account runs), so gradings that run at the same time each need an object of their own: ``choose``
is cheap after its first call.
"""

from __future__ import annotations

import functools
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Callable, Iterable

import psutil

from ..errors import KitError, NotDone
from ..settings import Settings
from . import layout, seccomp, supervise

SANDBOX_USER = "fashion-kit-student"
# Where any account may write (with every world-writable mount point): the user sandbox's account's
# files anywhere below them are removed after each phase, and those in memory (tmpfs) are counted.
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock", "/dev/mqueue")
# File systems whose files are memory; mqueue holds POSIX message queues (one file per queue).
MEMORY_FILESYSTEMS = ("tmpfs", "ramfs", "mqueue")
# Inside the bubblewrap sandbox phase 1 runs as this ordinary uid/gid, whoever grades.
SANDBOX_UID = SANDBOX_GID = 1000
# tmpfs memory belongs to no process, so the supervisor's memory limit cannot see it: each tmpfs
# inside the sandbox is capped on its own.
TMP_MB, SHM_MB = 256, 64
# kill_all repeats its sweep until nothing is left, this many times at most.
KILL_ROUNDS = 100
REAP_SECONDS = 5.0  # how long kill_all waits for the killed processes to be reaped



class SandboxUnavailable(KitError, RuntimeError):
    """The sandbox asked for cannot run here; the message says what is missing and what to do."""


class SandboxBreach(NotDone):
    """Processes of the sandbox survived kill_all: nothing it left can be trusted to stay still, so
    no grade is decided from it."""


# Set by adopt_orphans() in a process that grades without a sandbox (the grading core's own process).
_reaping = False
# The accounts whose lock this process holds (UnprivilegedUser._hold_the_account), by name.
_accounts_held: dict[str, int] = {}


def adopt_orphans() -> None:
    """Make this process the parent of every orphan below it (Linux's child subreaper), so that
    NoSandbox.kill_all also finds what a notebook double-forked away from its process tree."""
    global _reaping
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(seccomp.PR_SET_CHILD_SUBREAPER, 1)
        _reaping = True


_NO_SANDBOX_HINT = (
    "Alternatives: grade on a Linux machine with bubblewrap, or on Gradescope. "
    "`--no-sandbox` grades without isolation (the student's code can read and change everything "
    "you can); a grading done so is recorded as such in the gradebook and the report."
)


def _bwrap_missing_message() -> str:
    if sys.platform == "darwin" or sys.platform.startswith("win"):
        system = "macOS" if sys.platform == "darwin" else "Windows"
        return (
            f"Grading needs bubblewrap (bwrap) to run the student's notebook in a sandbox, and bwrap "
            f"does not exist on {system}: it is built on Linux namespaces. " + _NO_SANDBOX_HINT
        )
    return (
        "Grading needs bubblewrap (bwrap) to run the student's notebook in a sandbox, and bwrap is not "
        "installed. Install it: Debian/Ubuntu `sudo apt-get install bubblewrap`; Fedora `sudo dnf "
        "install bubblewrap`. " + _NO_SANDBOX_HINT
    )


def _tool(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        raise SandboxUnavailable(
            f"The sandbox needs `{name}`, which is not installed; it comes with the `{package}` package "
            f"(Debian/Ubuntu: `sudo apt-get install {package}`). " + _NO_SANDBOX_HINT
        )
    return found


def _check_env(env: dict[str, str]) -> list[tuple[str, str]]:
    pairs = []
    for key, value in env.items():
        if not key or "=" in key or "\0" in key or "\0" in str(value):
            raise ValueError(f"not a valid environment variable: {key!r}")
        pairs.append((key, str(value)))
    return pairs


def _limits(settings: Settings) -> list[str]:
    """prlimit options every sandboxed run gets: no core dumps, no file above the folder's limit."""
    return ["--core=0", f"--fsize={int(settings.max_work_folder_mb * 2**20)}"]


class Sandbox:
    """Where phase 1 runs. Subclasses set ``name`` (recorded in results and the gradebook)."""

    name: str = ""
    # The mode of the grader's folders above a work folder: the grader's alone. Nothing in them may be
    # reachable by another local account, a set-id file least of all (the filter refuses to make one).
    folder_mode: int = 0o700

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        # The sizes of the thread pools the caller was given (its share of the cores): the only part
        # of its environment that every command run in the sandbox gets.
        self.threads = layout.threads_of(os.environ)

    def _environment(self, env: dict[str, str]) -> list[tuple[str, str]]:
        """The (name, value) pairs a command gets: ``env`` and the caller's thread variables."""
        return _check_env({**self.threads, **env})

    def prepare(self, work: Path) -> None:
        """Make ``work`` (filled by the caller) writable by the sandboxed identity; nothing else."""

    def command(self, argv: list[str], *, work: Path, env: dict[str, str],
                readable: Iterable[Path] = ()) -> list[str]:
        """The command line that runs ``argv`` in the sandbox, with exactly ``env`` and ``threads`` as
        environment, ``work`` as current and only writable folder, ``readable`` visible read-only."""
        raise NotImplementedError

    def preexec(self) -> Callable[[], None] | None:
        """A ``preexec_fn`` for the command, if it needs one (none does: limits and identity are set
        by prlimit and setpriv on the command line, as a preexec_fn is unsafe with threads)."""
        return None

    def kill_all(self) -> None:
        """Leave no process alive that was started in this sandbox; safe to call again."""
        raise NotImplementedError

    def held_memory(self, members: list[psutil.Process]) -> float:
        """Bytes of memory the sandbox holds beyond the resident memory of ``members`` (the supervised
        process tree): the supervisor counts them against the same memory limit."""
        return 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} sandbox>"


# ---- bubblewrap ----------------------------------------------------------------------------------


def _kit_folder() -> Path:
    """The installed fashion_kit package (in an editable install: the folder in the checkout)."""
    return Path(__file__).resolve().parent.parent


def _covered(path: Path, by: Iterable[Path]) -> bool:
    return any(path == b or b in path.parents for b in by)


def _world_readable(mode: int) -> bool:
    if stat.S_ISDIR(mode):
        return mode & 0o005 == 0o005
    return not stat.S_ISREG(mode) or bool(mode & stat.S_IROTH)


def _readable_view(tree: str) -> list[str]:
    """bwrap options that show of ``tree`` exactly what an ordinary user could read.

    As root, bubblewrap maps the sandbox's user to root outside, so inside it the owner's permission
    bits of every root-owned file apply (/etc/shadow, private keys). So the tree is read afresh for
    every sandbox, and a folder that holds something others could not read becomes a tmpfs into which
    only the readable entries are bound, each with ``--ro-bind-try``. What vanishes after the reading
    (a lock file of useradd's) is skipped; what appears after it in such a folder is absent (in a
    folder that held no secret, bound whole, it is there). Covering an entry in
    place instead would make bwrap create a vanished entry in a read-only tree, and fail."""
    entries: dict[str, list[tuple[str, int]]] = {}
    for top, dirs, files in os.walk(tree):
        listed = []
        for name in dirs + files:
            try:
                listed.append((name, os.lstat(os.path.join(top, name)).st_mode))
            except OSError:
                continue  # gone while being read
        entries[top] = listed
        dirs[:] = [d for d, mode in listed if d in dirs and stat.S_ISDIR(mode) and _world_readable(mode)]
    hiding = set()
    for top, listed in entries.items():
        if not all(_world_readable(mode) for _, mode in listed):
            hiding.update([top, *map(str, Path(top).parents)])

    def view(folder: str) -> list[str]:
        if folder not in hiding:
            return ["--ro-bind-try", folder, folder]
        args = ["--tmpfs", folder]
        for name, mode in entries[folder]:
            path = os.path.join(folder, name)
            if not _world_readable(mode):
                continue
            if stat.S_ISLNK(mode):
                try:
                    args += ["--symlink", os.readlink(path), path]
                except OSError:
                    continue
            else:
                args += view(path)
        return [*args, "--remount-ro", folder]

    return view(tree)


@functools.lru_cache(maxsize=None)
def _bwrap_options(bwrap: str) -> frozenset[str]:
    """The options this bwrap knows: --size and --disable-userns are younger than some distributions'
    bwrap (Ubuntu 22.04 has 0.6), which then runs without them."""
    proc = subprocess.run([bwrap, "--help"], capture_output=True, text=True)
    return frozenset(word for word in (proc.stdout + proc.stderr).split() if word.startswith("--"))


class Bubblewrap(Sandbox):
    """Local grading: phase 1 in new namespaces with a read-only view of what it needs."""

    name = "bubblewrap"

    def __init__(self, settings: Settings | None = None):
        super().__init__(settings)
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailable(_bwrap_missing_message())
        self.bwrap = bwrap
        self.prlimit = _tool("prlimit", "util-linux")
        self._works: set[str] = set()

    def command(self, argv, *, work, env, readable=()):
        work = Path(work).resolve()
        self._works.add(str(work))
        args = [
            self.prlimit, *_limits(self.settings), "--",
            self.bwrap,
            "--unshare-all", "--unshare-user", *self._if_known("--disable-userns"), "--cap-drop", "ALL",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID), "--hostname", "sandbox",
            "--die-with-parent", "--new-session",
            "--ro-bind", "/usr", "/usr",
        ]
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = Path("/", name)
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), str(host)]
            elif host.is_dir():
                args += ["--ro-bind", str(host), str(host)]
        args += _readable_view("/etc") if os.geteuid() == 0 else ["--ro-bind", "/etc", "/etc"]
        args += ["--proc", "/proc", "--dev", "/dev",
                 *self._if_known("--size", str(SHM_MB * 2**20)), "--tmpfs", "/dev/shm",
                 *self._if_known("--size", str(TMP_MB * 2**20)), "--tmpfs", "/tmp"]
        bound = [Path("/usr"), Path("/etc")]
        extra = [Path(p) for p in readable]
        for path in extra:
            if not path.exists():
                raise FileNotFoundError(f"{path} does not exist; it was to be readable in the sandbox.")
        for path in [Path(sys.base_prefix), Path(sys.prefix), _kit_folder(), *extra]:
            real = path.resolve()
            for target in dict.fromkeys([real, path.absolute()]):  # a symlinked path keeps its name too
                if not real.exists() or _covered(target, bound):
                    continue
                args += ["--ro-bind", str(real), str(target)]
                bound.append(target)
        # bwrap's own root is a tmpfs: writable and counted in no process's memory unless made read-only.
        args += ["--bind", str(work), str(work), "--remount-ro", "/", "--chdir", str(work), "--clearenv"]
        for key, value in self._environment(env):
            args += ["--setenv", key, value]
        return [*args, "--", *seccomp.command(argv)]

    def _if_known(self, option: str, *values: str) -> list[str]:
        return [option, *values] if option in _bwrap_options(self.bwrap) else []

    def held_memory(self, members):
        # The sandbox's /tmp and /dev/shm are tmpfs mounts of its own mount namespace, seen from here
        # through /proc/PID/root of any of its processes; a file there is memory, held or unlinked.
        own = _namespace("self", "mnt")
        for p in members:
            if _namespace(p.pid, "mnt") in (own, None):
                continue
            try:
                return sum(_used_bytes(f"/proc/{p.pid}/root{mount}") for mount in ("/tmp", "/dev/shm"))
            except OSError:
                if not _alive(p):
                    continue  # it ended (a zombie has no root to look through): ask another member
                return (TMP_MB + SHM_MB) * 2**20  # unseen: as much as they can hold
        return 0

    def kill_all(self):
        # Every process of the sandbox lives in its PID namespace, whose init is bwrap's child; when
        # that init dies the kernel kills everything else in the namespace. Both bwrap processes keep
        # the command line they were started with, so they are found by their work folder.
        own, namespaces = _namespace("self"), set()
        for _ in range(KILL_ROUNDS):
            processes = _processes()
            launched = [p for p in processes if self._launched(p)]
            namespaces |= {_namespace(p.pid) for p in launched} - {own, None}
            inside = [p for p in processes if namespaces and _namespace(p.pid) in namespaces]
            alive = [p for p in launched + inside if _alive(p)]
            if not alive:
                return
            for p in alive:
                _kill(p.pid)
            time.sleep(0.02)
        raise SandboxBreach(f"bubblewrap sandbox: processes survived kill_all: {[p.pid for p in alive]}")

    def _launched(self, p: psutil.Process) -> bool:
        try:
            cmdline = p.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False
        if not cmdline or os.path.basename(cmdline[0]) != "bwrap":
            return False
        return any(cmdline[i] == "--chdir" and cmdline[i + 1] in self._works for i in range(len(cmdline) - 1))

    def probe(self) -> None:
        """Run ``true`` in this sandbox; raise SandboxUnavailable, saying why, if bwrap cannot."""
        with tempfile.TemporaryDirectory(prefix="fashion-kit-probe-") as work:
            true = shutil.which("true") or "/bin/true"
            try:
                proc = subprocess.run(self.command([true], work=Path(work), env={}), capture_output=True,
                                      text=True, timeout=60, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                proc = None
            finally:
                self.kill_all()
                self._works.discard(str(Path(work).resolve()))
        if proc is None or proc.returncode != 0:
            if proc is None:
                why = "it did not finish in 60 s"
            else:
                why = proc.stderr.strip() or f"exit code {proc.returncode}"
            raise SandboxUnavailable(
                f"bubblewrap is installed but cannot make a sandbox here: {why}. It needs user namespaces: "
                "check `sysctl kernel.unprivileged_userns_clone` (must be 1) and, on Ubuntu 24.04 and later, "
                "that AppArmor allows bwrap (`kernel.apparmor_restrict_unprivileged_userns`); inside a "
                "container, user namespaces are often forbidden. " + _NO_SANDBOX_HINT
            )


def _processes() -> list[psutil.Process]:
    return list(psutil.process_iter())


def _namespace(pid, kind: str = "pid") -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def _used_bytes(folder: str) -> int:
    """Bytes in use on the file system of ``folder``."""
    st = os.statvfs(folder)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ---- an unprivileged account -----------------------------------------------------------------------


def ensure_user(name: str = SANDBOX_USER) -> tuple[int, int]:
    """The (uid, gid) of account ``name``; as root, the account is created if it is missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if os.geteuid() != 0:
            raise SandboxUnavailable(
                f"The account {name} does not exist, and only root can create it: "
                f"`sudo useradd --system --no-create-home --shell /usr/sbin/nologin {name}`."
            ) from None
        useradd = _tool("useradd", "passwd")
        subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def _user_can(uid: int, gid: int, test: str, path: Path) -> bool:
    """Whether the account can ``test -<test>`` ``path`` (every folder on the way must let it pass)."""
    proc = subprocess.run([_tool("test", "coreutils"), f"-{test}", str(path)], user=uid, group=gid,
                          extra_groups=[], env={}, cwd="/", stdin=subprocess.DEVNULL)
    return proc.returncode == 0


def grant_traverse(path: Path, user: str = SANDBOX_USER) -> list[Path]:
    """Let ``user`` pass through every folder above ``path`` that stops it, with an ACL entry that
    allows traversal only (``x``: no listing, no reading). Returns the folders changed, so a caller can
    undo it with ``setfacl -x u:USER FOLDER``. Needs root and ``setfacl`` (the ``acl`` package)."""
    uid, gid = ensure_user(user)
    setfacl = _tool("setfacl", "acl")
    changed = []
    for folder in reversed(Path(path).parents):
        if not _user_can(uid, gid, "x", folder):
            subprocess.run([setfacl, "-m", f"u:{user}:x", str(folder)], check=True, capture_output=True)
            changed.append(folder)
    return changed


@functools.lru_cache(maxsize=None)
def _setpriv_has_pdeathsig(setpriv: str) -> bool:
    help_text = subprocess.run([setpriv, "--help"], capture_output=True, text=True).stdout
    return "--pdeathsig" in help_text


def shared_writable() -> list[str]:
    """The folders where any account may write: SHARED_WRITABLE and every world-writable mount point,
    each once (``/var/lock`` is usually a link to ``/run/lock``)."""
    found = dict.fromkeys(os.path.realpath(p) for p in SHARED_WRITABLE)
    for point, _ in _mounts():
        found.setdefault(os.path.realpath(point))
    return [p for p in found if _world_writable(p)]


def _mounts() -> list[tuple[str, str]]:
    """(mount point, file system type) of every mount this process sees."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []

    # Spaces and other odd characters in a mount point are written as octal escapes (\040).
    def unescape(text: str) -> str:
        return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)

    return [(unescape(fields[1]), fields[2]) for fields in map(str.split, lines) if len(fields) > 2]


def memory_devices() -> set[int]:
    """The devices of the mounted file systems whose files are memory."""
    return {d for point, kind in _mounts() if kind in MEMORY_FILESYSTEMS and (d := _device(point)) is not None}


def _device(path: str) -> int | None:
    try:
        return os.stat(path).st_dev
    except OSError:
        return None


def _world_writable(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and bool(st.st_mode & stat.S_IWOTH)


def _owned_in(roots: Iterable[str], uid: int, skip: set[str], *, into_owned: bool, strict: bool,
              max_entries: int | None = None):
    """(folder descriptor, name, lstat) of each entry below ``roots`` that ``uid`` owns, at any depth
    the walk may go (:func:`supervise.walk`: by descriptors, no name too long, no link followed): it
    goes down the world-writable folders (only there can the account have made anything in a folder
    not its own) and, with ``into_owned``, into its own folders too. The folders in ``skip`` (paths)
    are left alone. ``strict`` and ``max_entries`` (for each root) are the walk's."""
    skipped = set()
    for path in skip:
        try:
            st = os.stat(path, follow_symlinks=False)
            skipped.add((st.st_dev, st.st_ino))
        except OSError:
            pass

    def descend(st: os.stat_result) -> bool:
        owned = st.st_uid == uid
        return (owned and into_owned) or (not owned and bool(st.st_mode & stat.S_IWOTH))

    for root in roots:
        for fd, name, st in supervise.walk(root, descend, strict=strict, max_entries=max_entries,
                                           skip=lambda st: (st.st_dev, st.st_ino) in skipped):
            if st.st_uid == uid:
                yield fd, name, st


# /proc/sysvipc/<kind> lists the SysV IPC objects of this IPC namespace, with the call that removes one.
_SYSV_REMOVE = {"shm": "shmctl", "msg": "msgctl", "sem": "semctl"}
IPC_RMID = 0


def sysv_ipc_of(uid: int) -> list[tuple[str, int]]:
    """(kind, id) of every SysV shared-memory segment, message queue and semaphore set ``uid`` owns
    or created."""
    found = []
    for kind in _SYSV_REMOVE:
        try:
            header, *rows = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except (OSError, ValueError):
            continue
        columns = header.split()
        for row in rows:
            values = dict(zip(columns, row.split()))
            if str(uid) in (values.get("uid"), values.get("cuid")):
                found.append((kind, int(values[{"shm": "shmid", "msg": "msqid", "sem": "semid"}[kind]])))
    return found


def remove_sysv_ipc(uid: int) -> None:
    """Remove the SysV IPC objects of ``uid`` (a segment goes once no process has it attached: by
    now, none)."""
    import ctypes

    found = sysv_ipc_of(uid)
    if not found:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for kind, ident in found:
        call = getattr(libc, _SYSV_REMOVE[kind])
        if kind == "sem":
            call(ident, 0, IPC_RMID)
        else:
            call(ident, IPC_RMID, None)


class UnprivilegedUser(Sandbox):
    """Gradescope: we are root in a container without user namespaces, so phase 1 runs as the
    account ``SANDBOX_USER``: no capabilities, no new privileges, no supplementary groups, and
    rlimits on processes, core dumps and file size, behind the seccomp filter (no network: no
    socket but ``AF_UNIX``). It can write only what it owns (``work``) and what every user may write
    (/tmp, /var/tmp, /dev/shm...: each file there is capped by RLIMIT_FSIZE; what is in memory there
    counts against the memory limit, and all of it is removed after each phase). ``readable`` is only
    checked, not enforced: the account sees what any user sees. The process limit and ``kill_all``
    work by uid, so an account serves one grading at a time (Gradescope grades one per container)."""

    name = "user"
    folder_mode = 0o711  # the account passes through to its work folder; it cannot list ours

    def __init__(self, settings: Settings | None = None, user: str = SANDBOX_USER):
        super().__init__(settings)
        if os.geteuid() != 0:
            raise SandboxUnavailable(
                "The unprivileged-user sandbox (for Gradescope's container) needs root, to run the "
                f"notebook as the account {user}. " + _NO_SANDBOX_HINT
            )
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            raise SandboxUnavailable(
                f"The account {user} does not exist. Gradescope's setup.sh creates it; elsewhere: "
                f"`useradd --system --no-create-home --shell /usr/sbin/nologin {user}`."
            ) from None
        if entry.pw_uid == 0:
            raise SandboxUnavailable(f"The account {user} is root; it must be an unprivileged account.")
        self.user, self.uid, self.gid = user, entry.pw_uid, entry.pw_gid
        self.prlimit = _tool("prlimit", "util-linux")
        self.setpriv = _tool("setpriv", "util-linux")
        self.env = _tool("env", "coreutils")
        self._pdeathsig = _setpriv_has_pdeathsig(self.setpriv)
        self._prepared: set[str] = set()  # the account's own folders of this grading: never leftovers
        self._memory_roots: tuple[list[str], set[int]] | None = None

    def _hold_the_account(self) -> None:
        """One grading at a time per account: kill_all kills every process of the account, so two
        gradings sharing it would kill each other. The lock lives where only root can write (next to
        the Python environment); the first process that prepares a work folder for the account (the
        grading core) takes it, and holds it until it ends. A process holds it once, however many
        sandbox objects it makes: a second lock of its own would wait for the first for ever."""
        import fcntl

        if self.user in _accounts_held:
            return
        path = Path(sys.prefix) / f".fashion-kit-{self.user}.lock"
        lock = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)
        _accounts_held[self.user] = lock

    def prepare(self, work):
        self._hold_the_account()
        work = Path(work)
        self._prepared.add(os.path.realpath(work))
        os.chown(work, self.uid, self.gid)
        for top, dirs, files in os.walk(work):
            for name in dirs + files:
                os.chown(os.path.join(top, name), self.uid, self.gid, follow_symlinks=False)

    def command(self, argv, *, work, env, readable=()):
        pairs = self._environment(env)
        program = argv[0] if os.sep in argv[0] else shutil.which(argv[0], path=env.get("PATH", os.defpath))
        if program is not None:
            program = str(Path(work, program))  # a relative path runs from the work folder
        for shown in (sys.executable, program or argv[0]):  # the filter's trampoline, then the program
            if os.path.isabs(shown) and _user_can(self.uid, self.gid, "x", Path(shown)):
                continue
            raise SandboxUnavailable(
                f"The account {self.user} cannot run {shown}: a folder on its way (or the program) is closed "
                f"to other users (Python installed under /root, mode 0700, is the usual case). On Gradescope, "
                f"setup.sh installs Python under /opt for this reason. Elsewhere, let the account through "
                f"without letting it read: `setfacl -m u:{self.user}:x FOLDER` for each closed folder "
                f"above {Path(shown).resolve()}, or install Python outside /root."
            )
        for test, path, what in [("x", work, "enter"), ("w", work, "write to"),
                                 *[("r", Path(p), "read") for p in readable]]:
            if not _user_can(self.uid, self.gid, test, Path(path)):
                raise SandboxUnavailable(
                    f"The account {self.user} cannot {what} {path}; `prepare()` gives it the work folder, "
                    f"but every folder above must let other users pass (mode o+x)."
                )
        nproc = self.settings.max_processes
        return [
            self.prlimit, *_limits(self.settings), f"--nproc={nproc}", "--",
            self.setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
            # Changing uid clears the parent-death signal; set it again for the new identity.
            *(["--pdeathsig=SIGKILL"] if self._pdeathsig else []),
            "--",
            self.env, "-i", *[f"{k}={v}" for k, v in pairs], *seccomp.command(argv),
        ]

    def kill_all(self):
        # By uid, not by process group: a daemon can leave its group and session, not its uid. A
        # child of ours takes the account's uid and sends SIGKILL to -1, which reaches every process
        # that uid may signal: all of the account's. Repeat until none is left (a fork can race).
        for _ in range(KILL_ROUNDS):
            self._kill_as_user()
            alive = self.processes()
            if not alive:
                self._wait_reaped()
                self._remove_leftovers()
                return
            time.sleep(0.02)
        raise SandboxBreach(f"user sandbox: processes of {self.user} survived kill_all: {[p.pid for p in alive]}")

    def _wait_reaped(self) -> None:
        """Until whoever adopted the killed processes has reaped them (bounded: an init that never
        reaps must not hang the grader). A zombie holds no memory, but it counts against the
        account's process limit, so the next run would start with fewer processes than it may have
        (a killed fork bomb leaves dozens)."""
        def adopted(p):  # our own children are ours to reap, when their Popen is waited for
            try:
                return p.ppid() != os.getpid()
            except psutil.NoSuchProcess:
                return False

        deadline = time.monotonic() + REAP_SECONDS
        while time.monotonic() < deadline and any(adopted(p) for p in self._owned_tasks()):
            time.sleep(0.02)

    def _owned_tasks(self):
        for p in psutil.process_iter():
            try:
                if self.uid in p.uids():
                    yield p
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass

    def _remove_leftovers(self) -> None:
        """Everything the account owns where every user may write, at any depth (files, folders, POSIX
        message queues), and its SysV IPC objects: they would fill the container's disk or memory (and
        any grading after it) while outside the work folder's limit. Runs when none of its processes
        is left, so nothing changes under the walk."""
        from .layout import remove_at

        for fd, name, _ in _owned_in(shared_writable(), self.uid, self._prepared, into_owned=False, strict=False):
            if not remove_at(fd, name):
                print(f"fashion-kit: warning: a file or folder {self.user} left in a shared folder ({name[:80]}) "
                      "could not be removed.", file=sys.stderr)
        remove_sysv_ipc(self.uid)

    def held_memory(self, members):
        """The account's files in memory file systems where every user may write, and unlinked files
        of those file systems that ``members`` keep open. (Its processes are all in ``members``: the
        filter's trampoline makes phase 1 the subreaper of whatever the notebook orphans.)"""
        if self._memory_roots is None:  # the account cannot mount: what is mounted stays so
            devices = memory_devices()
            self._memory_roots = [r for r in shared_writable() if _device(r) in devices], devices
        roots, devices = self._memory_roots
        total, seen = 0, set()
        try:
            # A million empty files are inodes in memory all the same: past MAX_FOLDER_FILES entries, or
            # where the walk cannot see (a folder too deep, unreadable), what is held counts as too much.
            for _, _, st in _owned_in(roots, self.uid, self._prepared, into_owned=True, strict=True,
                                      max_entries=supervise.MAX_FOLDER_FILES):
                if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
        except supervise.Unseen:
            return float("inf")
        for p in members:
            try:
                fds = os.listdir(f"/proc/{p.pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    st = os.stat(f"/proc/{p.pid}/fd/{fd}")
                except OSError:
                    continue
                if st.st_dev in devices and st.st_nlink == 0 and (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
        return total

    def processes(self) -> list[psutil.Process]:
        """The account's processes that are still running (zombies hold no resources)."""
        found = []
        for p in self._owned_tasks():
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return found

    def _kill_as_user(self) -> None:
        # Only async-signal-safe system calls between fork and _exit: this process has threads.
        uid, gid, groups, everyone, sigkill = self.uid, self.gid, [], -1, signal.SIGKILL
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups(groups)
                os.setgid(gid)
                os.setuid(uid)
                os.kill(everyone, sigkill)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)


# ---- no sandbox ----------------------------------------------------------------------------------


class NoSandbox(Sandbox):
    """``--no-sandbox``: phase 1 runs as the grader runs, with only its environment replaced."""

    name = "none"

    def __init__(self, settings: Settings | None = None):
        super().__init__(settings)
        self.env = shutil.which("env") or "/usr/bin/env"
        self._pid_files: list[Path] = []
        self._folder: Path | None = None

    def command(self, argv, *, work, env, readable=()):
        # The first program writes its pid where kill_all finds it, then becomes the command. The pid
        # files live in a folder of this object's own, removed with the object.
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="fashion-kit-no-sandbox-"))
            weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        pid_file = self._folder / f"{len(self._pid_files)}.pid"
        self._pid_files.append(pid_file)
        pairs = [f"{k}={v}" for k, v in self._environment(env)]
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(pid_file), self.env, "-i", *pairs, *argv]

    def kill_all(self):
        for pid_file in self._pid_files:
            try:
                text, written = pid_file.read_text().strip(), pid_file.stat().st_mtime
            except OSError:
                continue  # not started (yet), or already dealt with
            if text.isdigit():
                try:
                    # A pid is reused once its process is gone; ours was running when it wrote the file.
                    if psutil.Process(int(text)).create_time() <= written + 1:
                        supervise.kill_tree(int(text))
                except psutil.NoSuchProcess:
                    pass
                pid_file.unlink(missing_ok=True)
        if _reaping:  # a double-forked daemon was adopted by this process: it is one of our children
            for _ in range(KILL_ROUNDS):
                children = psutil.Process().children(recursive=True)
                if not children:
                    break
                for child in children:
                    _kill(child.pid)
                time.sleep(0.02)


# ---- choosing ------------------------------------------------------------------------------------

# What worked in this process: "seccomp", "bubblewrap". Only success is kept: a failure (a moment
# without the resources to start bwrap) is probed again by the next grading, not taken for good.
_probed: set[str] = set()


def _probe_filter() -> None:
    """Raise SandboxUnavailable unless the seccomp filter installs here (once it has, it is not checked
    again in this process): a sandbox never runs a notebook without it."""
    if "seccomp" in _probed:
        return
    true = shutil.which("true") or "/bin/true"
    proc = subprocess.run(seccomp.command([true]), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        why = proc.stderr.strip().removeprefix("fashion-kit: ") or f"exit code {proc.returncode}"
        raise SandboxUnavailable(
            f"The sandbox cannot install its seccomp filter, without which it does not run a notebook: {why} "
            + _NO_SANDBOX_HINT)
    _probed.add("seccomp")


def choose(kind: str = "auto", *, settings: Settings | None = None, probed: bool = False) -> Sandbox:
    """A sandbox of ``kind``: "bubblewrap", "user", "none", or "auto" (bubblewrap if it works here,
    checked until it has once in this process; else SandboxUnavailable, whose message says what to
    do). Bubblewrap and the user sandbox need the seccomp filter (:mod:`seccomp`) to install.
    ``probed``: the caller has just found ``kind`` working on this machine, so it is not checked
    again. Skipping the check weakens nothing: a sandbox that stopped working fails its command, and
    the filter's trampoline never runs a program it could not filter."""
    if probed:
        _probed.update(("seccomp", "bubblewrap") if kind in ("auto", "bubblewrap") else
                       ("seccomp",) if kind == "user" else ())
    if kind in ("auto", "bubblewrap", "user"):
        _probe_filter()
    if kind in ("auto", "bubblewrap"):
        sandbox = Bubblewrap(settings)
        if "bubblewrap" not in _probed:
            sandbox.probe()
            _probed.add("bubblewrap")
        return sandbox
    if kind == "user":
        return UnprivilegedUser(settings)
    if kind == "none":
        return NoSandbox(settings)
    raise ValueError(f"unknown sandbox {kind!r}; expected auto, bubblewrap, user or none")
