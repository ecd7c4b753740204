"""What runs on a Dask worker: the grading kit, installed once per worker, and one submission graded
in a folder of its own.

The kit (the autograder zip, the settings, the sandbox kind and the grade function) travels once per
worker as a Dask worker plugin; on arrival the worker writes the zip into its local directory and
recomputes the batch's grading digest from what it wrote, so it grades with exactly what the
client's records say, or refuses. With the sandbox on, a worker without bubblewrap refuses too.
Each submission arrives as bytes with its own task and is written into a fresh temporary folder
that is removed when its grading ends: a worker never sees another submission's files. What goes
back is JSON text of the shape :data:`ANSWER_SCHEMA`, which the batch checks before using any of it.

A worker killed mid-grading (SIGKILL, a lost node) is noticed by the scheduler, which gives the
task to another worker. Each start of a task is noted in the scheduler's metadata, so the next
attempt knows it is one and says so in its row, and a submission that already stopped
:data:`MAX_WORKERS_LOST` workers is not tried again, whatever the scheduler's ``allowed-failures``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from distributed import get_client, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from .. import contract
from ..statuses import Status, Stop

# The workers and the scheduler import this module to unpickle the kit: seconds saved on each.
contract.skip_slow_optional_modules()

from .. import run  # noqa: E402
from ..autograder_zip import kit_fingerprint  # noqa: E402
from ..grading import layout  # noqa: E402
from . import resources, store, watchdog  # noqa: E402

# A submission whose grading stopped this many workers is marked failed instead of tried again.
MAX_WORKERS_LOST = 2
METADATA_ROOT = "fashion-kit"


class KitRefused(RuntimeError):
    """This worker cannot grade for the batch (no sandbox, a zip that arrived damaged)."""


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
        # The batch's own kit: a worker that runs other code would grade the same zip its own way.
        self.kit_fingerprint = kit_fingerprint()

    def setup(self, worker) -> None:
        found = kit_fingerprint()
        if found != self.kit_fingerprint:
            raise KitRefused(
                f"the worker {worker.address} runs another version of fashion-kit (code {found[:12]}, the batch's "
                f"{self.kit_fingerprint[:12]}): install the wheel of the instructor's kit on it (`make wheel`; see "
                "docs/grading-on-a-cluster.md, Installing a worker).")
        if self.sandbox != "none":  # refused before the zip is even written
            from ..grading import sandbox as sandboxes

            try:
                sandboxes.choose("auto", settings=self.settings)
            except sandboxes.SandboxUnavailable as e:
                raise KitRefused(f"the worker {worker.address} cannot grade in a sandbox: {e}") from None
        folder = Path(tempfile.mkdtemp(prefix="fashion-kit-", dir=worker.local_directory))
        folder.chmod(0o700)
        zip_path = folder / contract.AUTOGRADER_ZIP_NAME
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


# What a worker sends back for one submission: JSON text, checked against this schema by the batch
# before any of it is used (see cluster.read_answer). Plain data only: a worker can at worst lie
# about the submission it was given, in the shape of a valid outcome, never hand the batch an
# object of its choosing. The statuses and stops are the kit's own words (statuses.py).
_WORKER = {"type": "string", "pattern": "^[a-z0-9+]+://[^\\s]+$", "maxLength": 300}
_TEXT = {"type": "string", "maxLength": 20_000}
ANSWER_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "a worker's answer for one submission",
    "oneOf": [
        {"type": "object", "additionalProperties": False, "required": ["refused"],
         "properties": {"refused": _TEXT}},  # this worker cannot grade for the batch: why
        {"type": "object", "additionalProperties": False, "required": ["worker", "lost_workers", "outcome", "results"],
         "properties": {
             "worker": _WORKER,  # the worker that answers
             # The workers that stopped while grading it before this attempt.
             "lost_workers": {"type": "array", "items": _WORKER, "maxItems": MAX_WORKERS_LOST},
             # null: not graded, it already stopped MAX_WORKERS_LOST workers.
             "outcome": {"oneOf": [{"type": "null"}, {
                 "type": "object", "additionalProperties": False,
                 "required": ["status", "message", "message_zh", "scores", "seconds", "peak_memory_mb", "stopped",
                              "sandbox", "log"],
                 "properties": {
                     # IGNORED is the intake's word for what is not a submission, never a grading's.
                     "status": {"enum": [s.value for s in Status if s is not Status.IGNORED]},
                     "message": _TEXT, "message_zh": _TEXT,
                     "scores": {"type": "object", "maxProperties": 100,
                                "propertyNames": {"pattern": "^[^\\u0000-\\u001f\\u007f]{1,200}$"},  # no control characters
                                "additionalProperties": {"type": "array", "prefixItems": [
                                    {"type": "number", "minimum": 0}, {"type": "number", "minimum": 0}],
                                    "minItems": 2, "maxItems": 2}},
                     "seconds": {"type": "number", "minimum": 0},
                     "peak_memory_mb": {"type": "number", "minimum": 0},
                     "stopped": {"enum": ["", *(s.value for s in Stop)]},
                     "sandbox": {"type": "string", "pattern": "^[a-z]{0,20}$"},
                     "log": {"type": "string"},
                 }}]},
             # results.json as the grader wrote it (Gradescope's format), or null when it wrote none.
             "results": {"oneOf": [{"type": "null"}, {
                 "type": "object",
                 "properties": {"tests": {"type": "array", "items": {"type": "object"}}}}]},
         }},
    ],
}


def answer(worker: str, lost_workers: list[str], outcome=None, results: dict | None = None) -> str:
    """The JSON text of a worker's answer; ``outcome`` is a :class:`~fashion_kit.run.Outcome`."""
    plain = None
    if outcome is not None:
        plain = {
            "status": str(outcome.status), "message": outcome.message,
            "message_zh": getattr(outcome, "message_zh", ""),
            "scores": {q: [float(s), float(p)] for q, (s, p) in outcome.scores.items()},
            "seconds": float(outcome.seconds), "peak_memory_mb": float(outcome.peak_memory_mb),
            "stopped": str(outcome.stopped), "sandbox": outcome.sandbox, "log": outcome.log,
        }
    return json.dumps({"worker": worker, "lost_workers": lost_workers, "outcome": plain, "results": results},
                      allow_nan=False, ensure_ascii=False)


def grade(kit_name: str, attempt_key: str, notebook: bytes, extra_files: dict[str, bytes]) -> str:
    """Grade one submission on this worker with the batch's kit (the Dask task); its answer as JSON text."""
    kit = _kits.get(kit_name)
    worker = get_worker()
    if kit is None:
        return json.dumps({"refused": f"the worker {worker.address} has no grading kit {kit_name!r}; it refused it at "
                                      "start (see its log)."})
    client = get_client()
    where = [METADATA_ROOT, kit_name, attempt_key]
    lost = list(client.get_metadata(where, default=[]))
    if len(lost) >= MAX_WORKERS_LOST:
        return answer(worker.address, lost)
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
                                   extra_files=extras, cancel=cancel, env={
                                       watchdog.BATCH_ENV: kit.guard.token,
                                       **layout.thread_env(resources.threads_per_grading(gradings_at_once(worker, client)))})
            return answer(worker.address, lost, outcome, run.read_results(out / store.RESULTS))
    finally:
        kit.cancels.pop(attempt_key, None)


def gradings_at_once(worker, client) -> int:
    """How many gradings ``worker``'s machine runs at once: the threads of every worker on its host,
    as the scheduler knows them (a machine often runs several one-thread workers), at least its own."""
    try:
        on_host = sum(w.get("nthreads", 1) for w in client.scheduler_info(n_workers=-1)["workers"].values()
                      if w.get("host") == worker.ip)
    except Exception:  # the scheduler cannot say: this worker's own threads
        on_host = 0
    return max(on_host, worker.state.nthreads)


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
