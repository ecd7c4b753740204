"""What runs on a Dask worker: the grading kit, installed once per worker, and one submission graded
in a folder of its own.

The kit (the autograder zip, the settings, the sandbox kind and the grade function) travels once per
worker as a Dask worker plugin; on arrival the worker writes the zip into its local directory and
recomputes the batch's grading digest from what it wrote, so it grades with exactly what the
client's records say, or refuses. With the sandbox on, a worker without bubblewrap refuses too.
Each submission arrives as bytes with its own task and is written into a fresh temporary folder
that is removed when its grading ends: a worker never sees another submission's files.

A worker killed mid-grading (SIGKILL, a lost node) is noticed by the scheduler, which gives the
task to another worker. Each start of a task is noted in the scheduler's metadata, so the next
attempt knows it is one and says so in its row, and a submission that already stopped
:data:`MAX_WORKERS_LOST` workers is not tried again, whatever the scheduler's ``allowed-failures``.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from distributed import get_client, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from .. import contract

# The workers and the scheduler import this module to unpickle the kit: seconds saved on each.
contract.skip_slow_optional_modules()

from . import store, watchdog  # noqa: E402

# A submission whose grading stopped this many workers is marked failed instead of tried again.
MAX_WORKERS_LOST = 2
METADATA_ROOT = "fashion-kit"
ZIP_NAME = "autograder.zip"


class KitRefused(RuntimeError):
    """This worker cannot grade for the batch (no sandbox, a zip that arrived damaged, no kit)."""


@dataclass
class _Kit:
    folder: Path
    zip_path: Path
    settings: object
    sandbox: str
    grade_fn: object
    guard: watchdog.Watchdog | watchdog.NoWatchdog
    cancels: dict[str, threading.Event] = field(default_factory=dict)
    previous_tempdir: str | None = None


# Kit name -> the kit installed on this worker process.
_kits: dict[str, _Kit] = {}


class GradingKit(WorkerPlugin):
    """The autograder zip, the settings and the grade function of one batch, for every worker."""

    def __init__(self, name: str, zip_bytes: bytes, settings, sandbox: str, grading: str, grade_fn=None,
                 use_watchdog: bool = True):
        self.name = name  # Dask's plugin name: one per batch, so two batches never replace each other's
        self.zip_bytes, self.settings, self.sandbox, self.grading = zip_bytes, settings, sandbox, grading
        self.zip_sha256 = hashlib.sha256(zip_bytes).hexdigest()
        self.grade_fn, self.use_watchdog = grade_fn, use_watchdog

    def setup(self, worker) -> None:
        if self.sandbox != "none":  # refused before the zip is even written
            from ..grading import sandbox as sandboxes

            try:
                sandboxes.choose("auto", settings=self.settings)
            except sandboxes.SandboxUnavailable as e:
                raise KitRefused(f"the worker {worker.address} cannot grade in a sandbox: {e}") from None
        folder = Path(tempfile.mkdtemp(prefix="fashion-kit-", dir=worker.local_directory))
        folder.chmod(0o700)
        zip_path = folder / ZIP_NAME
        zip_path.write_bytes(self.zip_bytes)
        found = store.grader_digest(zip_path, self.settings.fingerprint(), self.sandbox)
        if hashlib.sha256(zip_path.read_bytes()).hexdigest() != self.zip_sha256 or found != self.grading:
            shutil.rmtree(folder, ignore_errors=True)
            raise KitRefused(f"the autograder zip arrived changed on the worker {worker.address} "
                             f"(grading digest {found[:12]}, expected {self.grading[:12]}).")
        grade_fn = self.grade_fn
        if grade_fn is None:
            from .grader import grade_function

            grade_fn = grade_function()
        scratch = folder / "tmp"
        scratch.mkdir()
        kit = _Kit(folder, zip_path, self.settings, self.sandbox, grade_fn,
                   watchdog.Watchdog() if self.use_watchdog else watchdog.NoWatchdog(),
                   previous_tempdir=tempfile.tempdir)
        # The gradings' own temporary folders (the unzipped autograder, hidden tests included) go
        # under the kit's folder, removed with it, as the local batch keeps them in its output folder.
        tempfile.tempdir = str(scratch)
        _kits[self.name] = kit

    def teardown(self, worker) -> None:
        kit = _kits.pop(self.name, None)
        if kit is None:
            return
        for cancel in list(kit.cancels.values()):
            cancel.set()
        kit.guard.close()  # and whatever a grading left running is killed
        if tempfile.tempdir == str(kit.folder / "tmp"):
            tempfile.tempdir = kit.previous_tempdir
        shutil.rmtree(kit.folder, ignore_errors=True)


@dataclass
class Graded:
    """What a worker sends back for one submission."""

    outcome: object | None  # run.Outcome; None when the submission was not graded (see lost_workers)
    results: bytes | None  # results.json as the grader wrote it
    worker: str
    lost_workers: list[str]  # the workers that stopped while grading it before this attempt


def grade(kit_name: str, attempt_key: str, notebook: bytes, extra_files: dict[str, bytes]) -> Graded:
    """Grade one submission on this worker with the batch's kit (the Dask task)."""
    kit = _kits.get(kit_name)
    worker = get_worker()
    if kit is None:
        raise KitRefused(f"the worker {worker.address} has no grading kit {kit_name!r}; it refused it at start "
                         "(see its log).")
    client = get_client()
    where = [METADATA_ROOT, kit_name, attempt_key]
    lost = list(client.get_metadata(where, default=[]))
    if len(lost) >= MAX_WORKERS_LOST:
        return Graded(None, None, worker.address, lost)
    client.set_metadata(where, lost + [worker.address])

    cancel = threading.Event()
    kit.cancels[attempt_key] = cancel
    try:
        with tempfile.TemporaryDirectory(prefix="submission-", dir=kit.folder) as tmp:
            tmp = Path(tmp)
            inbox = tmp / "submission"
            inbox.mkdir()
            path = inbox / contract.NOTEBOOK
            path.write_bytes(notebook)
            extras = []
            for name, data in extra_files.items():
                if name in contract.SUBMITTED_FILES and name != contract.NOTEBOOK:  # a name, never a path
                    (inbox / name).write_bytes(data)
                    extras.append(inbox / name)
            out = tmp / "out"
            out.mkdir()
            outcome = kit.grade_fn(path, kit.zip_path, out, settings=kit.settings, sandbox=kit.sandbox,
                                   extra_files=extras, env={watchdog.BATCH_ENV: kit.guard.token}, cancel=cancel)
            results = out / store.RESULTS
            return Graded(outcome, results.read_bytes() if results.is_file() else None, worker.address, lost)
    finally:
        kit.cancels.pop(attempt_key, None)


def cancel_all(kit_name: str) -> int:
    """Ask every grading of this kit on this worker to stop (run on each worker when the batch stops)."""
    kit = _kits.get(kit_name)
    if kit is None:
        return 0
    for cancel in list(kit.cancels.values()):
        cancel.set()
    return len(kit.cancels)


def set_allowed_failures(allowed: int, dask_scheduler=None) -> None:
    """Run on the scheduler: how many workers may die running a task before it is given up."""
    dask_scheduler.allowed_failures = allowed
