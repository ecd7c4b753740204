"""Folders of one grading: Gradescope's layout, the untrusted work folder, and safe copies out of it.

Gradescope grades in ``/autograder``: ``source/`` (the unzipped autograder), ``submission/`` (what the
student uploaded) and ``results/`` (where ``results.json`` goes). Phase 1 never sees that folder.
It gets a *work folder* holding a copy of what it may see, laid out the same way, with a private
home; it is the only place phase 1 can write. Whatever phase 1 leaves there is copied out by
:func:`copy_untrusted`, which follows no link and reads no more than a limit.
"""

from __future__ import annotations

import itertools
import os
import shutil
import stat
import sys
import time
from pathlib import Path

from .. import contract as c
from .. import data
from .supervise import DIR_FLAGS

# The lesson's model file is about 1.2 MB with Adam's state, the challenge's a few MB; the notebook's
# own test images are 31 MB as float32.
MAX_MODEL_BYTES = 64 * 2**20
MAX_IMAGES_BYTES = 10000 * 28 * 28 * 8 + 4096
MAX_JSON_BYTES = 2 * 2**20


def make_gradescope_folder(folder: Path, autograder_zip: Path, notebook, extra_files=()) -> Path:
    """Lay out ``folder`` as Gradescope does before it runs ``run_autograder``: the zip unpacked in
    ``source/``, the notebook (an nbformat node) and the files the assignment knows beside it in
    ``submission/``, an empty ``results/``. Local grading and the tests grade exactly this."""
    import zipfile

    from .. import notebooks

    for name in (c.WORK_SOURCE, c.WORK_SUBMISSION, c.RESULTS_DIR):
        (folder / name).mkdir(parents=True)
    (folder / "submission_metadata.json").write_text("{}", encoding="utf-8")
    with zipfile.ZipFile(autograder_zip) as zf:
        zf.extractall(folder / c.WORK_SOURCE)
    notebooks.write(notebook, folder / c.WORK_SUBMISSION / c.NOTEBOOK)
    for extra in map(Path, extra_files):
        if extra.name in c.SUBMITTED_FILES and extra.name != c.NOTEBOOK and extra.is_file():
            shutil.copyfile(extra, folder / c.WORK_SUBMISSION / extra.name)
    return folder


def make_work_folder(work: Path, source: Path, submission: Path) -> None:
    """Fill ``work`` with what phase 1 may see: the submission's files, the evidence folder, a home
    with the data set in its Keras cache. Nothing else of the autograder's: no test (phase 2 decides
    every question, and the notebook's own checks do nothing while grading) and no settings (phase 1
    gets the seed and the assignment's name on its command line)."""
    # The submission's files, never a link: a link could point phase 1 at anything of ours.
    shutil.copytree(submission, work / c.WORK_SUBMISSION, symlinks=True,
                    ignore=lambda folder, names: [n for n in names if os.path.islink(os.path.join(folder, n))])
    (work / c.EVIDENCE_DIR).mkdir()
    cache = work / c.WORK_HOME / ".keras" / data.KERAS_DATASET_DIR
    cache.mkdir(parents=True)
    for name in data.FILES:
        shutil.copyfile(source / c.DATA_DIR / name, cache / name)
    (work / c.WORK_HOME / "tmp").mkdir()


# The remover holds this many folder descriptors at most, however deep the tree: deeper, it closes
# the outermost ones and comes back up through ".." (checked to be the folder it left).
REMOVE_OPEN_FOLDERS = 32


def remove_tree(path: Path, quarantine: Path | None = None) -> list[str]:
    """Remove ``path`` (a file, a link or a folder, however it is shaped); never raises. Returns what
    is left: [] when it is gone. What cannot be removed (a folder of another account's, say) is moved
    whole into a new folder in ``quarantine`` if one is given, so the name is free for the next run;
    either way it is reported on stderr, where the instructor sees it."""
    path = Path(path)
    try:
        parent = os.open(path.parent, DIR_FLAGS)
    except FileNotFoundError:
        return []
    except OSError as e:
        return _left(path, f"its folder cannot be opened ({e.strerror})")
    try:
        if remove_at(parent, path.name):
            return []
        if quarantine is None:
            return _left(path, "some of it could not be removed")
        try:
            target = _quarantine_name(quarantine, path.name)
            os.rename(path.name, target, src_dir_fd=parent)
        except OSError as e:
            return _left(path, f"some of it could not be removed, nor moved into {quarantine} ({e.strerror})")
        return _left(Path(target), f"some of {path} could not be removed; it was moved here, to delete by hand")
    finally:
        os.close(parent)


def _quarantine_name(quarantine: Path, name: str) -> str:
    """A new, unused path in ``quarantine`` (created, the grader's alone) for something called ``name``."""
    quarantine.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in itertools.count():
        target = quarantine / f"{stamp}-{n}-{name}"
        if not os.path.lexists(target):
            return str(target)


def _left(path: Path, why: str) -> list[str]:
    print(f"fashion-kit: warning: {path} is left on disk: {why}.", file=sys.stderr)
    return [str(path)]


def remove_at(dir_fd: int, name: str) -> bool:
    """Remove the entry ``name`` of the folder open as ``dir_fd``, and all below it; whether it is
    gone. Follows no link, never recurses in Python (a chain of folders thousands deep is no deeper
    to it), holds REMOVE_OPEN_FOLDERS descriptors at most, and gives itself the access it needs to
    folders it owns (a folder made unreadable, ``chmod 0300``, is opened again). Removes all it can
    and never raises for what it finds."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        return _unlinked(dir_fd, name)
    top = _open_folder(dir_fd, name, st)
    if top is None:
        return False
    levels, whole = [_Level(name, st, top)], True
    try:
        while levels:
            level = levels[-1]
            if level.pending is None:
                try:
                    with os.scandir(level.fd) as it:
                        level.pending = [entry.name for entry in it]
                except OSError:
                    level.pending, whole = [], False
            if level.pending:
                entry = level.pending.pop()
                try:
                    est = os.stat(entry, dir_fd=level.fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                except OSError:
                    whole = False
                    continue
                if not stat.S_ISDIR(est.st_mode):
                    whole &= _unlinked(level.fd, entry)
                    continue
                child = _open_folder(level.fd, entry, est)
                if child is None:
                    whole = False
                    continue
                levels.append(_Level(entry, est, child))
                if len(levels) > REMOVE_OPEN_FOLDERS and (outer := levels[-REMOVE_OPEN_FOLDERS - 1]).fd is not None:
                    os.close(outer.fd)
                    outer.fd = None
                continue
            # This folder is empty (or holds what could not be removed): up one level, and remove it.
            levels.pop()
            try:
                if levels and levels[-1].fd is None:
                    levels[-1].fd = os.open("..", DIR_FLAGS, dir_fd=level.fd)
                    info = os.fstat(levels[-1].fd)
                    if (info.st_dev, info.st_ino) != levels[-1].ident:  # moved: not the way back
                        return False
            finally:
                os.close(level.fd)
            try:
                os.rmdir(level.name, dir_fd=levels[-1].fd if levels else dir_fd)
            except FileNotFoundError:
                pass
            except OSError:
                whole = False
        return whole
    except OSError:
        return False
    finally:
        for level in levels:
            if level.fd is not None:
                os.close(level.fd)


class _Level:
    """A folder on the remover's way down: its name in its parent, its identity (to check the way
    back up), its descriptor (None once closed to bound them), the names in it still to remove (None
    until listed)."""

    __slots__ = ("name", "ident", "fd", "pending")

    def __init__(self, name: str, st: os.stat_result, fd: int):
        self.name, self.ident, self.fd, self.pending = name, (st.st_dev, st.st_ino), fd, None


def _unlinked(dir_fd: int, name: str) -> bool:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def _open_folder(dir_fd: int, name: str, st: os.stat_result) -> int | None:
    """The folder ``name`` (whose lstat is ``st``) open for listing, with read, write and search
    access given back to its owner first when we are the owner and it lacks them (root needs none).
    None if it cannot be opened, or is no longer the folder that was looked at."""
    try:
        handle = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        info = os.fstat(handle)
        if (info.st_dev, info.st_ino) != (st.st_dev, st.st_ino):
            return None
        if info.st_mode & 0o700 != 0o700 and info.st_uid == os.geteuid() != 0:
            # An O_PATH descriptor cannot be fchmod-ed; its /proc link can, and names this very folder.
            os.chmod(f"/proc/self/fd/{handle}", stat.S_IMODE(info.st_mode) | 0o700)
        return os.open(".", DIR_FLAGS, dir_fd=handle)
    except OSError:
        return None
    finally:
        os.close(handle)


# The variables that size the thread pools of TensorFlow (its intra-op and inter-op pools) and of
# NumPy's BLAS. Without them each TensorFlow process starts pools of one thread per core; two
# gradings at once on two cores then keep four busy threads on two cores, and the lesson's script
# takes about 40 % more CPU time than with one thread per pool (benchmarks/README.md, "Threads per
# grading").
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS",
                    "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """The environment that gives every pool of a process ``threads`` threads."""
    return {name: str(threads) for name in THREAD_VARIABLES}


def threads_of(environ) -> dict[str, str]:
    """The thread variables of ``environ`` (the grader's caller's) that hold a positive whole number:
    the only part of it the notebook and the grader's sandboxed processes get."""
    found = {name: environ.get(name, "") for name in THREAD_VARIABLES}
    return {name: value for name, value in found.items() if value.isascii() and value.isdigit() and int(value) > 0}


def phase1_env(work: Path, python: Path) -> dict[str, str]:
    """Phase 1's environment: nothing of ours (no tokens, no home) is passed on (the sandbox adds
    only the sizes of the thread pools, :func:`threads_of`)."""
    home = work / c.WORK_HOME
    return {
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "KERAS_HOME": str(home / ".keras"),
        "MPLCONFIGDIR": str(home / ".config" / "matplotlib"),
        "MPLBACKEND": "Agg",
        "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
    }


def copy_untrusted(folder: Path, name: str, target: Path, max_bytes: int) -> str | None:
    """Copy the regular file ``folder/name`` to ``target``; None when done, else why not.

    ``folder`` and the file are opened without following links, so a link planted by phase 1 can
    make the grader read nothing but the files phase 1 itself wrote."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return "missing"
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"unreadable ({e.strerror})"
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        if info.st_size > max_bytes:
            return f"{info.st_size / 2**20:.1f} MB, more than the {max_bytes / 2**20:.0f} MB allowed"
        payload = f.read(max_bytes + 1)
    if len(payload) > max_bytes:
        return f"more than the {max_bytes / 2**20:.0f} MB allowed"
    target.write_bytes(payload)
    return None


def read_untrusted_json(folder: Path, name: str, scratch: Path):
    """The JSON value phase 1 left in ``folder/name``, or None if it is missing or malformed."""
    import json

    target = scratch / f".{name}.copy"
    if copy_untrusted(folder, name, target, MAX_JSON_BYTES) is not None:
        return None
    try:
        return json.loads(target.read_bytes().decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    finally:
        target.unlink(missing_ok=True)
