"""What the class-grading tests share: a fake autograder zip, a fake grader, notebooks, and a
snapshot of a folder tree to prove nothing outside the output folder changed."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace

import nbformat

from fashion_kit import run
from fashion_kit.statuses import NOT_FAILED

QUESTIONS = ["q1", "q2", "q3"]


def fake_autograder(path: Path, questions=QUESTIONS, **config) -> Path:
    """A zip with what the batch reads from an autograder: its settings and its test files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("otter_config.json", json.dumps({"fashion_kit": config}))
        for q in questions:
            zf.writestr(f"tests/{q}.py", f'name = "{q}"\npoints = 1\n')
    return path


def notebook_text(*cells: str) -> str:
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]))


def write_notebook(path: Path, *cells: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(notebook_text(*cells), encoding="utf-8")
    return path


def v3_notebook_text(*cells: str) -> str:
    return json.dumps({
        "nbformat": 3, "nbformat_minor": 0, "metadata": {"name": ""},
        "worksheets": [{"cells": [{"cell_type": "code", "input": c, "language": "python", "outputs": [],
                                   "metadata": {}} for c in cells], "metadata": {}}],
    })


class FakeGrader:
    """Grades by counting code cells: the first n questions get their point. Records each call, takes
    exactly the keyword arguments the real grader takes, and gives up when ``cancel`` is set."""

    def __init__(self, status: str = "graded"):
        self.calls: list[dict] = []
        self.status = status
        self._lock = threading.Lock()

    def __call__(self, notebook, autograder_zip, output_folder, *, settings, sandbox, extra_files, env, cancel):
        import tempfile

        with self._lock:
            self.calls.append({
                "notebook": Path(notebook), "output": Path(output_folder), "sandbox": sandbox,
                "extra": {Path(p).name: Path(p).read_bytes() for p in extra_files}, "env": dict(env),
                "tempdir": tempfile.gettempdir(), "settings": settings,
                "zip": hashlib.sha256(Path(autograder_zip).read_bytes()).hexdigest(),
            })
        cells = len(json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"])
        scores = {q: (1.0 if i < cells else 0.0, 1.0) for i, q in enumerate(QUESTIONS)}
        return run.Outcome(str(notebook), self.status, scores=scores,
                           sandbox="none" if sandbox == "none" else "bubblewrap")

    @property
    def graded(self) -> list[str]:
        return sorted(call["output"].name for call in self.calls)


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple]:
    """Every file, folder and link under ``root`` (except ``skip``): kind, size and content hash."""
    found = {}
    for folder, dirs, files in os.walk(root):
        if skip is not None and Path(folder) == skip:
            dirs[:] = []
            continue
        for name in dirs + files:
            path = Path(folder) / name
            if skip is not None and path == skip:
                continue
            rel = os.fsencode(path.relative_to(root))
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                found[rel] = ("dir",)
            else:
                found[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
    return found


def zip_bytes(entries: dict[str, bytes | str], compression: int = zipfile.ZIP_STORED) -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


DAMAGE = ("bad_crc", "smaller_size", "larger_size", "encrypted", "unknown_compression", "truncated",
          "bad_central_header", "bad_local_header")


def damage(raw: bytes, kind: str) -> bytes:
    """``raw`` (a zip of one member, stored) damaged in one of the ways a zip can be."""
    import struct

    data = bytearray(raw)
    central = data.find(b"PK\x01\x02")
    if kind == "bad_crc":
        data[14] ^= 0xFF
        data[central + 16] ^= 0xFF
    elif kind == "smaller_size":  # the headers say the member is smaller than it is
        for offset in (22, central + 24):
            struct.pack_into("<I", data, offset, 10)
    elif kind == "larger_size":  # ... or far larger
        for offset in (22, central + 24):
            struct.pack_into("<I", data, offset, 2**31)
    elif kind == "encrypted":
        data[6] |= 1
        data[central + 8] |= 1
    elif kind == "unknown_compression":
        struct.pack_into("<H", data, 8, 99)
        struct.pack_into("<H", data, central + 10, 99)
    elif kind == "truncated":
        data = data[: len(data) // 2]
    elif kind == "bad_central_header":
        data[central:central + 4] = b"PK\x09\x09"
    elif kind == "bad_local_header":
        data[0:4] = b"XX\x03\x04"
    else:
        raise ValueError(kind)
    return bytes(data)


# A notebook holding this line makes RecordingGrader kill the process grading it (a Dask worker).
KILL_THE_WORKER = "# kill the worker"


class RecordingGrader(FakeGrader):
    """A FakeGrader for other processes (Dask workers), which cannot hand back ``calls``: each call
    leaves a JSON file in ``log_dir`` (the process, the files it was given, the zip's hash), may take
    ``delay`` seconds, and kills its own process for a notebook that holds :data:`KILL_THE_WORKER`."""

    def __init__(self, log_dir: Path, delay: float = 0.0):
        super().__init__()
        self.log_dir, self.delay = Path(log_dir), delay

    def __getstate__(self):  # the lock stays behind; each process makes its own
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state):
        self.__dict__.update(state, _lock=threading.Lock())

    def __call__(self, notebook, autograder_zip, output_folder, **kwargs):
        import uuid

        text = Path(notebook).read_text(encoding="utf-8")
        entry = {
            "notebook": str(notebook), "cells": [c["source"] for c in json.loads(text)["cells"]],
            "folder": sorted(os.listdir(Path(notebook).parent)), "pid": os.getpid(),
            "zip": str(autograder_zip), "zip_sha256": hashlib.sha256(Path(autograder_zip).read_bytes()).hexdigest(),
            "extra": {Path(p).name: Path(p).read_text(encoding="utf-8", errors="replace") for p in kwargs["extra_files"]},
            "sandbox": kwargs["sandbox"], "env": kwargs["env"], "settings": kwargs["settings"].to_dict(),
            "slurm_job": os.environ.get("SLURM_JOB_ID", ""),  # set when a Slurm job runs the grading
        }
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # Written under another name, then renamed: log() may read from another process at any moment.
        partial = self.log_dir / f"{uuid.uuid4().hex}.partial"
        partial.write_text(json.dumps(entry), encoding="utf-8")
        partial.rename(partial.with_suffix(".json"))
        if KILL_THE_WORKER in text:
            os.kill(os.getpid(), 9)
        if kwargs["cancel"].wait(self.delay):
            return run.Outcome(str(notebook), "interrupted")
        return super().__call__(notebook, autograder_zip, output_folder, **kwargs)

    def log(self) -> list[dict]:
        return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(self.log_dir.glob("*.json"))]


class Rec(SimpleNamespace):
    """A batch record with the fields and properties the outputs read (store.Record's, and the
    attributes a test adds, such as a language)."""

    def __init__(self, id, status="graded", scores=None, submitters=(), **extra):
        defaults = dict(original_name=f"{id}.ipynb", gradescope_id="", message="", message_zh="", counted=True,
                        duplicate_of="", sandbox="bubblewrap", seconds=1.0)
        super().__init__(id=id, status=status, scores=scores or {}, submitters=list(submitters),
                         **{**defaults, **extra})

    @property
    def total(self):
        return sum(s for s, _ in self.scores.values())

    @property
    def possible(self):
        return sum(p for _, p in self.scores.values())

    @property
    def failed(self):
        return self.status not in NOT_FAILED
