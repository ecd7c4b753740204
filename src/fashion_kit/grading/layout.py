"""Folders of one grading: Gradescope's layout, the untrusted work folder, and safe copies out of it.

Gradescope grades in ``/autograder``: ``source/`` (the unzipped autograder), ``submission/`` (what the
student uploaded) and ``results/`` (where ``results.json`` goes). Phase 1 never sees that folder.
It gets a *work folder* holding a copy of what it may see, laid out the same way, with a private
home; it is the only place phase 1 can write. Whatever phase 1 leaves there is copied out by
:func:`copy_untrusted`, which follows no link and reads no more than a limit.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from .. import contract as c
from .. import data

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
    cache = work / c.WORK_HOME / ".keras" / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    for name in data.FILES:
        shutil.copyfile(source / "data" / "fashion-mnist" / name, cache / name)
    (work / c.WORK_HOME / "tmp").mkdir()


def remove_tree(path: Path) -> None:
    """Remove what phase 1 may have left, however it is shaped: shutil.rmtree recurses (a chain of
    folders thousands deep exhausts Python's stack), so ``rm -rf`` (which does not) finishes the job."""
    import subprocess

    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except (OSError, RecursionError):
        subprocess.run(["rm", "-rf", "--", str(path)], check=False, stdin=subprocess.DEVNULL)


def phase1_env(work: Path, python: Path) -> dict[str, str]:
    """The whole environment of phase 1: nothing of ours (no tokens, no home) is passed on."""
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
