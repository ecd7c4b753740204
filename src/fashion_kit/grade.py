"""Grade a whole class: every submission in its own supervised process, several at once, and
nothing lost.

Each finished submission is recorded at once in ``<out>/<id>/``: ``record.json`` (status, message,
scores), Otter's ``results.json`` and a capped ``grading.log``. ``record.json`` is written last and
atomically, so it is the proof that a submission is done: a re-run skips recorded submissions whose
notebook has not changed, and a run that was interrupted (Ctrl-C, a kill) carries on where it
stopped. ``gradebook.csv`` is rebuilt from the records after every submission, also atomically, so
it never holds a half-written or duplicated row.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import uuid
import zipfile
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from . import paths, run
from .submissions import Submission, discover, natural_key

RECORD = "record.json"
GRADEBOOK = "gradebook.csv"
REPORT = "report.html"
# Measured on the 2-core reference machine (docs/grading-a-class.md): one grading keeps less than one
# core busy on average (0.4-0.7), so one grading per core fills the machine; more only queue for the
# same cores, each with another 2+ GB of memory.
DEFAULT_JOBS = max(1, min(os.cpu_count() or 1, 2))
# Statuses a re-run with --retry-failed grades again: they may pass with more time, memory or luck.
RETRYABLE = {"timeout", "memory", "error"}
# Why run_otter.py stopped a grading (run.Outcome.stopped) -> the gradebook's status.
STOPPED_STATUS = {"timeout": "timeout", "memory": "error", "error": "error"}
# Every process of a batch's gradings inherits this variable; the watchdog finds them by it.
BATCH_ENV = "FASHION_KIT_BATCH"


@dataclass
class Limits:
    timeout_seconds: float
    memory_limit_mb: float
    max_notebook_mb: float

    @classmethod
    def from_config(cls, config: Path | None = None) -> "Limits":
        """The defaults, from the ``fashion_kit`` section of otter_config.json (the one place)."""
        section = json.loads(Path(config or paths.OTTER_CONFIG).read_text(encoding="utf-8"))["fashion_kit"]
        return cls(
            float(section["timeout_seconds"]),
            float(section["memory_limit_mb"]),
            float(section["max_notebook_mb"]),
        )


@dataclass
class Record:
    """One gradebook row, as kept in ``<out>/<id>/record.json``."""

    submission: str
    status: str
    message: str = ""
    scores: dict[str, list[float]] = field(default_factory=dict)  # question -> [score, possible]
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    source: str = ""
    submitters: str = ""
    digest: str = ""

    @property
    def total(self) -> float:
        return sum(s for s, _ in self.scores.values())

    @property
    def possible(self) -> float:
        return sum(p for _, p in self.scores.values())


@dataclass
class BatchResult:
    records: list[Record]
    questions: list[str]
    skipped: int = 0
    interrupted: bool = False

    @property
    def all_graded(self) -> bool:
        return not self.interrupted and all(r.status == "graded" for r in self.records)


class BatchError(RuntimeError):
    """The batch could not start; the message says why."""


def questions_in(autograder_zip: Path) -> list[str]:
    """The graded questions, in natural order: the test files the autograder carries."""
    with zipfile.ZipFile(autograder_zip) as zf:
        names = [PurePosixPath(n).stem for n in zf.namelist() if n.startswith("tests/") and n.endswith(".py")]
    return sorted((n for n in names if n != "__init__"), key=natural_key)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` so that ``path`` holds either the old or the new content, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_record(folder: Path) -> Record | None:
    try:
        return Record(**json.loads((folder / RECORD).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None  # missing, or left by another version: grade again


def gradebook_csv(records: list[Record], questions: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["submission", "submitters", *questions, "total", "possible", "status", "message", "seconds"])
    for r in records:
        # A run stopped part-way has the scores of the questions checked before: shown, as on Gradescope.
        scored = bool(r.scores)
        writer.writerow([
            r.submission, r.submitters,
            *[f"{r.scores[q][0]:g}" if q in r.scores else "" for q in questions],
            f"{r.total:g}" if scored else "", f"{r.possible:g}" if scored else "",
            r.status, r.message, f"{r.seconds:.1f}",
        ])
    return buffer.getvalue()


class _Lock:
    """Only one batch writes to an output folder at a time."""

    def __init__(self, out: Path):
        self._file = open(out / ".lock", "w")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise BatchError(f"Another `fashion-kit grade` is writing to {out}; wait for it or use another --output.")

    def release(self):
        self._file.close()


def grade_class(
    source: Path | str,
    out: Path | str,
    autograder_zip: Path | str | None = None,
    *,
    jobs: int = DEFAULT_JOBS,
    limits: Limits | None = None,
    force: bool = False,
    retry_failed: bool = False,
    on_start=None,
    on_done=None,
) -> BatchResult:
    """Grade every submission in ``source`` into ``out``.

    ``on_start(total_to_grade, skipped)`` and ``on_done(record)`` let a caller show progress.
    A KeyboardInterrupt stops the gradings in flight (they are graded again on the next run) and
    returns what was recorded, with ``interrupted`` set.
    """
    out, autograder_zip = Path(out), Path(autograder_zip or paths.AUTOGRADER_ZIP)
    limits = limits or Limits.from_config()
    if not autograder_zip.is_file():
        raise BatchError(f"No autograder at {autograder_zip}. Build it first: fashion-kit assign")
    if jobs < 1:
        raise BatchError(f"--jobs must be at least 1; found {jobs}.")
    out.mkdir(parents=True, exist_ok=True)
    questions = questions_in(autograder_zip)
    lock = _Lock(out)
    try:
        with tempfile.TemporaryDirectory(prefix="fashion-kit-class-") as work:
            subs = discover(source, work, int(limits.max_notebook_mb * 2**20))
            return _grade_all(subs, out, autograder_zip, questions, jobs, limits, force, retry_failed,
                              on_start or (lambda *_: None), on_done or (lambda _: None))
    finally:
        lock.release()


def _grade_all(subs, out, autograder_zip, questions, jobs, limits, force, retry_failed, on_start, on_done):
    done: dict[str, Record] = {}
    todo: list[Submission] = []
    for sub in subs:
        old = read_record(out / sub.id)
        fresh = old is not None and old.digest == sub.digest
        if fresh and not force and not (retry_failed and old.status in RETRYABLE):
            done[sub.id] = old
        else:
            todo.append(sub)
    skipped = len(done)
    order = {sub.id: i for i, sub in enumerate(subs)}

    def publish():
        atomic_write(out / GRADEBOOK, gradebook_csv(sorted(done.values(), key=lambda r: order[r.submission]), questions))

    def finish(record: Record):
        folder = out / record.submission
        folder.mkdir(exist_ok=True)
        atomic_write(folder / RECORD, json.dumps(asdict(record), indent=2, ensure_ascii=False) + "\n")
        done[record.submission] = record
        publish()
        on_done(record)

    publish()
    on_start(len(todo), skipped)
    for sub in todo:
        # Until its new record lands, a submission graded again counts as not graded, and nothing
        # of its previous grading may be taken for part of the new one.
        for name in (RECORD, "results.json", "grading.log"):
            (out / sub.id / name).unlink(missing_ok=True)
    # Bad input needs no process: record it first, so the count of what is left is honest.
    queue = []
    for sub in todo:
        problem = sub.problem or _unreadable(sub.notebook)
        if problem:
            finish(Record(sub.id, "invalid", problem, source=sub.source, submitters=sub.submitters, digest=sub.digest))
        else:
            queue.append(sub)
    if not queue:
        publish()
        return BatchResult(sorted(done.values(), key=lambda r: order[r.submission]), questions, skipped)

    cancel = threading.Event()
    interrupted = False
    watchdog = _Watchdog()
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade")
    try:
        pending = {pool.submit(_grade_one, sub, out, autograder_zip, limits, cancel, watchdog.token): sub
                   for sub in queue}
        while pending:
            finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in finished:
                pending.pop(future)
                record = future.result()
                if record is not None:
                    finish(record)
    except KeyboardInterrupt:
        interrupted = True
        cancel.set()
    finally:
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        watchdog.close()
    publish()
    records = sorted(done.values(), key=lambda r: order[r.submission])
    return BatchResult(records, questions, skipped, interrupted)


def _unreadable(notebook: Path) -> str:
    try:
        run.load_submission(notebook)
    except run.SubmissionError as e:
        return str(e)
    return ""


def _grade_one(sub: Submission, out: Path, autograder_zip: Path, limits: Limits, cancel, token) -> Record | None:
    if cancel.is_set():
        return None
    folder = out / sub.id
    try:
        outcome = run.grade(
            sub.notebook, autograder_zip, folder, timeout=limits.timeout_seconds,
            memory_limit_mb=limits.memory_limit_mb, cancel=cancel, env={BATCH_ENV: token},
        )
    except Exception as e:  # whatever went wrong, it is this submission's row, not the whole batch
        return Record(sub.id, "error", f"Grading failed: {type(e).__name__}: {e}", source=sub.source,
                      submitters=sub.submitters, digest=sub.digest)
    if outcome.status == "interrupted":
        return None
    folder.mkdir(parents=True, exist_ok=True)
    # Results cut short by the zip's own limits count as a failure to grade here, scores kept.
    status = STOPPED_STATUS.get(outcome.stopped, outcome.status)
    if outcome.log:
        atomic_write(folder / "grading.log", outcome.log)
    return Record(
        sub.id, status, outcome.message,
        {q: [s, p] for q, (s, p) in outcome.scores.items()},
        round(outcome.seconds, 1), round(outcome.peak_memory_mb), sub.source, sub.submitters, sub.digest,
    )


class _Watchdog:
    """A process apart from the batch that kills the batch's gradings once the batch is gone.

    Each grading dies with the batch when it is stopped in an orderly way, and its first process also
    when the batch is killed outright (SIGKILL). But Otter and the notebook's kernel run in sessions of
    their own, further down; without this they would run on, unseen, beside the resumed batch.
    """

    def __init__(self):
        self.token = uuid.uuid4().hex
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "fashion_kit.grade", "--watch", self.token],
            stdin=subprocess.PIPE, start_new_session=True,  # Ctrl-C in the terminal must not stop it
        )

    def close(self):
        self._proc.stdin.close()  # the same end-of-file it sees when the batch dies
        self._proc.wait()


def sweep(token: str) -> int:
    """Kill every process whose environment carries this batch's token; returns how many."""
    import psutil

    killed = 0
    for p in psutil.process_iter():
        try:
            if p.pid != os.getpid() and p.environ().get(BATCH_ENV) == token:
                p.kill()
                killed += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return killed


if __name__ == "__main__" and sys.argv[1:2] == ["--watch"]:
    sys.stdin.buffer.read()  # returns when the batch closes the pipe or dies
    for _ in range(3):  # a process forked during a sweep is caught by the next
        if not sweep(sys.argv[2]):
            break
