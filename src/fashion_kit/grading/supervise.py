"""Run one command under watch, then leave nothing of it running.

The command runs in a session of its own and dies with us. Every ``POLL_SECONDS`` the supervisor
looks at the command's process tree and at the folder it writes to, and stops the run when it goes
too far: too much memory, too many processes, too much on disk, too long, or cancelled from another
thread. Whether it stopped or finished, the sandbox's own clean-up runs (``on_stop``) and then the
whole tree is killed, so a notebook that floods its output, forks or daemonizes costs no one else.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import psutil

from ..contract import dying_with
from ..statuses import Stop

# Of a run's output, the head and the tail are kept (where the errors are); the middle of a flood is
# counted and dropped, so a notebook printing gigabytes can fill neither memory nor the disk.
LOG_HEAD_BYTES = LOG_TAIL_BYTES = 256 * 1024
# How often the supervisor samples the process tree. Filling pages runs at a few GB/s, so a memory
# bomb overshoots the limit by about a gigabyte at most before it is killed.
POLL_SECONDS = 0.2
# A watched folder with more entries than this counts as over its limit, whatever their size: each
# poll walks the folder, and a million empty files cost inodes and time though they cost no bytes.
MAX_FOLDER_FILES = 100_000
# The assignment writes a few files at most two folders deep; the Keras cache sits four deep. A walk
# holds a descriptor per level, so this bounds them too.
MAX_FOLDER_DEPTH = 64


@dataclass
class Supervised:
    """How a supervised run ended.

    ``stopped`` is None when the command exited by itself, else why the supervisor stopped it: a
    :class:`~fashion_kit.statuses.Stop` (its time, memory, process or disk limit, or a cancel). ``log`` is the head and tail of its output (stdout and stderr together).
    """

    stopped: Stop | None
    returncode: int | None
    peak_rss_bytes: int
    log: str
    seconds: float


def seconds_since_start() -> float:
    """How long this process has existed (its start-up before the caller's first line included), to
    a clock tick; 0 where /proc does not say. psutil's create_time adds the boot time, which Linux
    gives in whole seconds: too coarse for a start-up of a few tenths."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()  # the command's name may hold anything
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: ticks from boot to the start
    except (OSError, IndexError, ValueError):
        return 0.0
    return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)


def run(
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str] | None,
    timeout: float | None,
    memory_limit_mb: float | None,
    max_processes: int | None = None,
    watch_folder: Path | None = None,
    max_folder_mb: float | None = None,
    cancel: threading.Event | None = None,
    on_stop: Callable[[], None] | None = None,
    held_memory: Callable[[list[psutil.Process]], float] | None = None,
    preexec_fn=None,
    poll_seconds: float = POLL_SECONDS,
) -> Supervised:
    """Run ``command`` and supervise it until it exits or is stopped; never raises for what it does.

    ``memory_limit_mb`` bounds the resident memory of the whole process tree plus what
    ``held_memory(tree)`` says the sandbox holds outside it (its tmpfs files); ``max_processes`` the
    tasks in it (threads count, as they do for RLIMIT_NPROC); ``max_folder_mb`` the bytes on disk
    under ``watch_folder``. ``on_stop`` (the sandbox's ``kill_all``) runs when the command ends, by
    itself or stopped, before the tree is killed. The tree is looked at every ``poll_seconds``.
    """
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    memory_limit = None if memory_limit_mb is None else memory_limit_mb * 2**20
    folder_limit = None if watch_folder is None or max_folder_mb is None else max_folder_mb * 2**20
    proc = subprocess.Popen(
        dying_with(os.getpid(), list(command), sys.executable),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group and session, apart from ours
        preexec_fn=preexec_fn,
    )
    log = CappedLog(proc.stdout)
    stopped, peak = None, 0
    try:
        stopped, peak = _watch(proc, deadline, memory_limit, max_processes, watch_folder, folder_limit, cancel,
                               held_memory, poll_seconds)
    finally:
        try:
            if on_stop is not None:
                on_stop()
        finally:
            _kill_tree(proc)
            log.join()
    return Supervised(stopped, proc.returncode, peak, log.text(), time.monotonic() - started)


def _watch(proc, deadline, memory_limit, max_processes, watch_folder, folder_limit, cancel,
           held_memory, poll_seconds) -> tuple[Stop | None, int]:
    """Poll until ``proc`` exits or goes too far; returns why it was stopped (None: it exited) and
    the peak memory of its tree (resident, plus what the sandbox holds for it)."""
    peak = 0
    while True:
        try:
            proc.wait(timeout=poll_seconds)
            return None, peak
        except subprocess.TimeoutExpired:
            pass
        members = tree(proc.pid)
        rss = resident(members) + (held_memory(members) if held_memory is not None else 0)
        peak = max(peak, rss)
        if memory_limit is not None and rss > memory_limit:
            return Stop.MEMORY_LIMIT, peak
        if max_processes is not None and _tasks(members) > max_processes:
            return Stop.PROCESSES, peak
        if folder_limit is not None and folder_over(watch_folder, folder_limit):
            return Stop.DISK, peak
        if deadline is not None and time.monotonic() > deadline:
            return Stop.TIMEOUT, peak
        if cancel is not None and cancel.is_set():
            return Stop.INTERRUPTED, peak


def tree(pid: int) -> list[psutil.Process]:
    """``pid`` and all its descendants (none if it is gone): what the supervisor counts."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def resident(processes: list[psutil.Process]) -> int:
    """Resident memory of ``processes``, in bytes."""
    total = 0
    for p in processes:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def _tasks(processes: list[psutil.Process]) -> int:
    """Processes and their threads: what the kernel counts against RLIMIT_NPROC."""
    total = 0
    for p in processes:
        try:
            total += p.num_threads()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            total += 1
    return total


# The work folder is measured, not capped by its file system: phase 2 reads it once phase 1 is gone,
# so a tmpfs in the sandbox's own mount namespace (what caps its /tmp and /dev/shm) would go with the
# sandbox, and would hold the folder in memory; a loop-mounted image or a disk quota needs privileges
# neither layout has (Gradescope's container cannot mount, an instructor grades as no root). So
# RLIMIT_FSIZE caps each file, and this walk, every poll, the whole.
def folder_over(folder: Path, limit_bytes: float) -> bool:
    """Whether ``folder`` holds more than ``limit_bytes`` on disk, more than MAX_FOLDER_FILES
    entries, folders nested deeper than MAX_FOLDER_DEPTH (a chain thousands deep defeats recursive
    clean-up), or anything the walk cannot see (a folder its owner made unreadable, say): what cannot
    be measured is taken for too much. Counts allocated blocks (a sparse file costs what it occupies)
    and stops as soon as a limit is passed, so a flooded folder is cheap to judge."""
    used = 0
    try:
        with contextlib.closing(walk(folder, lambda st: True, max_entries=MAX_FOLDER_FILES)) as entries:
            for _, _, st in entries:
                used += st.st_blocks * 512
                if used > limit_bytes:
                    return True
    except Unseen:
        return True
    return False


# A walk opens each folder relative to its parent's descriptor, never by path: no name is too long to
# follow (past PATH_MAX a path cannot be opened, and a path walk misses all that is below), a link is
# never followed, and a folder renamed while it is walked cannot send the walk elsewhere. It holds one
# descriptor per level, so its depth limit bounds them.
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# An entry that went away between the listing and the look (a temporary file, a folder replaced by a
# file) holds nothing any more: it costs nothing.
_GONE = (FileNotFoundError, NotADirectoryError)


class Unseen(OSError):
    """A walk met what it could not see: a folder it cannot open or list, an entry it cannot look at,
    folders deeper than it may go, or more entries than it may count. A limit takes it for exceeded."""


def walk(top: str | Path, descend: Callable[[os.stat_result], bool], *, max_depth: int = MAX_FOLDER_DEPTH,
         max_entries: int | None = None, strict: bool = True,
         skip: Callable[[os.stat_result], bool] = lambda st: False) -> Iterator[tuple[int, str, os.stat_result]]:
    """Every entry below ``top`` as (its folder's descriptor, its name, its lstat), going into the
    folders for which ``descend(lstat)`` is true, ``max_depth`` levels at most, leaving out the
    entries for which ``skip(lstat)`` is true and all below them; the descriptor is
    valid until the next entry is asked for. No recursion, no paths, no link followed. A missing
    ``top`` holds nothing. What cannot be seen (see :class:`Unseen`) raises Unseen when ``strict``;
    else that part is left out (a clean-up takes what it can reach)."""
    def unseen(error: OSError | None, what: str, name) -> None:
        if strict:
            raise Unseen(getattr(error, "errno", 0), what + (f": {error.strerror}" if error else ""), str(name))

    def opened(fd: int | None, name) -> tuple[int, list[str]] | None:
        """The folder ``name`` (in ``fd``; a path if None) open, with its names; None if gone or unseen."""
        try:
            child = os.open(name, DIR_FLAGS) if fd is None else os.open(name, DIR_FLAGS, dir_fd=fd)
        except _GONE:
            return None
        except OSError as e:
            return unseen(e, "cannot open the folder", name)
        try:
            with os.scandir(child) as it:  # a listing longer than the entries left to count is cut
                names = it if max_entries is None else itertools.islice(it, max_entries - count + 1)
                return child, [entry.name for entry in names]
        except OSError as e:
            os.close(child)
            return unseen(e, "cannot list the folder", name)

    stack, count = [], 0
    try:
        if (root := opened(None, top)) is not None:
            stack.append(root)
        while stack:
            fd, pending = stack[-1]
            if not pending:
                os.close(fd)
                stack.pop()
                continue
            name = pending.pop()
            count += 1
            if max_entries is not None and count > max_entries:
                unseen(None, f"more than {max_entries} entries", top)
                return
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except _GONE:
                continue
            except OSError as e:
                unseen(e, "cannot look at an entry", name)
                continue
            if skip(st):
                continue
            yield fd, name, st
            if not (stat.S_ISDIR(st.st_mode) and descend(st)):
                continue
            if len(stack) > max_depth:
                unseen(None, f"folders nested deeper than {max_depth}", name)
            elif (child := opened(fd, name)) is not None:
                stack.append(child)
    finally:
        for fd, _ in stack:
            os.close(fd)


def kill_tree(pid: int) -> None:
    """Kill ``pid``, everything under it, and the process groups they lead or belong to. A Jupyter
    kernel runs in a session of its own, so killing one process group alone would leave it running."""
    for _ in range(2):  # a second pass catches what was started while the first one ran
        members = tree(pid)
        groups = {pid}
        for p in members:
            try:
                groups.add(os.getpgid(p.pid))
                p.kill()
            except (psutil.NoSuchProcess, ProcessLookupError, PermissionError):
                pass
        groups.discard(os.getpgrp())
        for group in groups:
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the supervised command's tree and reap the command."""
    kill_tree(proc.pid)
    proc.wait()


class CappedLog:
    """Reads a child's output on a thread, keeping only its head and tail."""

    def __init__(self, stream):
        self._stream, self._head, self._tail = stream, bytearray(), deque()
        self._tail_size = self._dropped = 0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while chunk := self._stream.read1(65536):
            room = LOG_HEAD_BYTES - len(self._head)
            if room > 0:
                self._head += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self._tail.append(chunk)
                self._tail_size += len(chunk)
                while self._tail_size - len(self._tail[0]) >= LOG_TAIL_BYTES:
                    self._tail_size -= len(self._tail[0])
                    self._dropped += len(self._tail.popleft())
        self._stream.close()

    def join(self):
        # A process that escaped the kill (a daemon re-parented to init) may still hold the pipe.
        self._thread.join(timeout=5)

    def text(self) -> str:
        middle = f"\n[... {self._dropped:,} bytes of output dropped ...]\n".encode() if self._dropped else b""
        return (bytes(self._head) + middle + b"".join(self._tail)).decode("utf-8", errors="replace")
