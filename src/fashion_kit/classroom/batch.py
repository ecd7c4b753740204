"""Grade a whole class: every upload one row, graded in its own supervised process, several at once,
nothing lost, nothing written outside the output folder.

The output folder holds ``gradebook.csv``, ``report.html`` (written by the CLI), ``<id>/`` per
submission (see :mod:`.store`), ``.lock`` and, while a batch runs, ``.work/``: the copies of the
notebooks and every temporary folder of the gradings (removed at start and at the end, so even a
killed batch leaves nothing readable anywhere else). A record is reused only if the upload, the
autograder zip, the grading settings and the sandbox kind all match; otherwise it is graded again
and the result says how many were and why.
"""

from __future__ import annotations

import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import KitError
from .. import contract, folders, paths, settings as settings_module
from ..grading import layout
from ..questions import NoQuestions, points_in_autograder
from . import exports, ids, intake, lock, resources, schedule, store, watchdog
from ..statuses import RECORDED, RETRYABLE, STATUS_OF_STOP, Status
from .store import Record

DUPLICATE_CHOICES = ("latest", "highest", "both")
SANDBOX_CHOICES = ("auto", "none")
# Why a recorded submission is graded again, for the summary.
REASON_FORCED, REASON_STUDENT, REASON_RETRY = "--force", "--student", "--retry-failed"
REASON_GRADER = "the autograder zip, the settings or the sandbox changed"
REASON_UPLOAD = "the upload changed"


class BatchError(KitError, RuntimeError):
    """The batch could not start; the message says why."""


InputError = intake.InputError


@dataclass
class BatchResult:
    records: list[Record]
    questions: list[str]
    skipped: int = 0
    interrupted: bool = False
    regraded: dict[str, int] = field(default_factory=dict)  # why -> how many recorded ones were graded again
    sandbox: str = "auto"
    pending: list[str] = field(default_factory=list)  # ids of the uploads that have no record yet
    # What the clean-up at the start and the end could not remove (in .quarantine/, or where it was).
    left_on_disk: list[str] = field(default_factory=list)
    # Pairs of counted submissions whose answers are near-identical (similarity.Pair), for the report.
    similar: list = field(default_factory=list)

    @property
    def all_graded(self) -> bool:
        return not self.interrupted and not any(r.failed for r in self.records)

    @property
    def ignored(self) -> int:
        return sum(1 for r in self.records if r.status == Status.IGNORED)


def questions_in(autograder_zip: Path) -> list[str]:
    """The graded questions, in natural order, as the autograder's own tests declare them."""
    try:
        return list(points_in_autograder(autograder_zip))
    except NoQuestions as e:
        raise BatchError(str(e)) from None


def grade_class(
    source: Path | str,
    out: Path | str,
    autograder_zip: Path | str | None = None,
    *,
    grade_fn=None,
    settings: settings_module.Settings | None = None,
    sandbox: str = "auto",
    jobs: int | None = None,
    force: bool = False,
    retry_failed: bool = False,
    duplicates: str = "latest",
    student: str | None = None,
    stop: threading.Event | None = None,
    use_watchdog: bool = True,
    on_start=None,
    on_done=None,
    group: str | None = None,
    owners=None,
) -> BatchResult:
    """Grade every upload in ``source`` into ``out`` with ``grade_fn`` (see :mod:`.grader`).

    ``settings`` defaults to the zip's own, ``jobs`` to :func:`.resources.default_jobs`; ``stop`` (set by SIGINT/SIGTERM, see
    :class:`.schedule.Interrupts`) stops the batch at any point: the gradings in flight are cancelled
    and graded again next time, and the result has ``interrupted`` set. Without ``stop``, the batch
    installs its own signal handlers when it runs in the main thread. ``on_start(to_grade, skipped,
    ungradable, measured)`` and ``on_done(record)`` let a caller show progress (see :mod:`.progress`).
    ``owners(uploads)``, with a roster, maps an upload's id to the students it is matched to
    (:func:`.matching.owners`): two uploads of one student are duplicates whatever their files are
    called. ``out`` is made private to this account (to it and ``group``'s members, who may read); the
    gradings in flight below it are its alone.
    """
    if stop is None:
        with schedule.Interrupts() as interrupts:
            return grade_class(source, out, autograder_zip, grade_fn=grade_fn, settings=settings,
                               sandbox=sandbox, jobs=jobs, force=force, retry_failed=retry_failed,
                               duplicates=duplicates, student=student, stop=interrupts.event,
                               use_watchdog=use_watchdog, on_start=on_start, on_done=on_done, group=group,
                               owners=owners)
    out, autograder_zip = Path(out), Path(autograder_zip or paths.AUTOGRADER_ZIP)
    if not autograder_zip.is_file():
        raise BatchError(f"No autograder at {autograder_zip}. Build it first: fashion-kit assign")
    if jobs is None:  # one per core, as many as the available memory holds
        from .resources import default_jobs

        jobs = default_jobs()
    if jobs < 1:
        raise BatchError(f"--jobs must be at least 1; found {jobs}.")
    if duplicates not in DUPLICATE_CHOICES:
        raise BatchError(f"--duplicates must be one of {', '.join(DUPLICATE_CHOICES)}; found {duplicates!r}.")
    if sandbox not in SANDBOX_CHOICES:
        raise BatchError(f"the sandbox must be one of {', '.join(SANDBOX_CHOICES)}; found {sandbox!r}.")
    if student is not None and not ids.is_safe(student):
        raise BatchError(f"--student takes a submission id as gradebook.csv shows it; {ids.printable(student)!r} is none.")
    if grade_fn is None:
        from .grader import grade_function

        grade_fn = grade_function()
    try:
        settings = settings or settings_module.from_zip(autograder_zip)
    except settings_module.SettingsError as e:
        raise BatchError(str(e)) from None
    if out.exists() and not out.is_dir():
        raise BatchError(f"{out} is a file; expected a folder for the gradebook, the report and the results.")
    questions = questions_in(autograder_zip)
    try:
        folders.make_private(out, group)
    except folders.FolderError as e:
        raise BatchError(str(e)) from None
    grading = store.grader_digest(autograder_zip, settings.fingerprint(), sandbox)

    with lock.OutputLock(out):
        # A killed batch's copies, and what an earlier clean-up could not remove: what still cannot be
        # is moved aside or left where it is, and said so, but stops neither this batch nor the next.
        left = store.remove(out, store.QUARANTINE) + store.remove(out, store.WORK)
        scratch = store.folder(out, store.WORK, "tmp")
        store.inside(out, store.WORK).chmod(folders.PRIVATE)  # not even the group's: gradings in flight
        previous_tempdir = tempfile.tempdir
        # The gradings' temporary folders (the unzipped autograder, hidden tests included) go under
        # the output folder too: removed with it, never left readable in /tmp.
        tempfile.tempdir = str(scratch)
        try:
            result = _Batch(out, autograder_zip, questions, grade_fn, settings, sandbox, grading, stop,
                            duplicates, owners).run(source, jobs, force, retry_failed, student, use_watchdog,
                                                    on_start or (lambda *_: None), on_done or (lambda _: None))
        finally:
            tempfile.tempdir = previous_tempdir
            left += store.remove(out, store.WORK)
        result.left_on_disk = left
        return result


class _Batch:
    def __init__(self, out, autograder_zip, questions, grade_fn, settings, sandbox, grading, stop, duplicates,
                 owners=None):
        self.out, self.autograder_zip, self.questions = out, autograder_zip, questions
        self.grade_fn, self.settings, self.sandbox, self.grading = grade_fn, settings, sandbox, grading
        self.stop, self.duplicates, self.owners = stop, duplicates, owners
        self.records: dict[str, Record] = {}
        self.uploads: list[intake.Upload] = []
        self.env: dict[str, str] = {}  # each grading's: the watchdog's token, its share of the cores

    def run(self, source, jobs, force, retry_failed, student, use_watchdog, on_start, on_done) -> BatchResult:
        try:
            self.uploads = intake.discover(source, self.out, int(self.settings.max_notebook_mb * 2**20), self.stop)
        except intake.Interrupted:
            return BatchResult([], self.questions, interrupted=True, sandbox=self.sandbox)
        if student is not None and student.lower() not in {u.id.lower() for u in self.uploads}:
            raise BatchError(f"No submission has the id {student!r}; the ids are in the gradebook's id column.")

        todo, regraded = [], Counter()
        for up in self.uploads:
            digest = store.resume_digest(up.digest, self.grading)
            old = store.load(self.out, up.id)
            if student is not None and up.id.lower() != student.lower():
                if old is not None:
                    self.records[up.id] = old  # --student grades one; the others stay as recorded
                continue
            reason = _why_again(old, digest, self.grading, force, retry_failed, student)
            if reason is None:
                self.records[up.id] = old
                continue
            if old is not None:
                regraded[reason] += 1
            todo.append(up)
        # What was reused, in submissions: a README beside them is no submission.
        skipped = sum(1 for r in self.records.values() if r.status != Status.IGNORED)

        # Until its new record lands, a submission graded again counts as not graded, and nothing
        # of its previous grading may be taken for part of the new one.
        for up in todo:
            for name in (store.RECORD, store.RESULTS, store.LOG):
                store.remove(self.out, up.id, name)
        self.publish()
        # What needs no grader (invalid, ignored) is recorded first, so the count left is honest; the
        # seconds earlier runs measured say how long the rest will take.
        queue = [up for up in todo if up.notebook is not None]
        measured = [r.seconds for r in self.records.values() if r.status == Status.GRADED and r.seconds]
        on_start(len(queue), skipped, sum(1 for up in todo if up.status == Status.INVALID), measured)
        for up in todo:
            if up.notebook is None:
                self.finish(self._record(up, up.status, up.message, up.message_zh), on_done)
        interrupted = self.stop.is_set()
        if queue and not interrupted:
            guard = watchdog.Watchdog() if use_watchdog else watchdog.NoWatchdog()
            self.env = {watchdog.BATCH_ENV: guard.token, **layout.thread_env(resources.threads_per_grading(jobs))}
            try:
                interrupted = not schedule.run_pool(
                    queue, self.grade_one, jobs, self.stop,
                    lambda up, record: record is not None and self.finish(record, on_done))
            finally:
                guard.close()
        self.settle_duplicates()
        self.publish()
        return BatchResult(self.ordered(), self.questions, skipped, interrupted or self.stop.is_set(),
                           dict(regraded), self.sandbox,
                           pending=[up.id for up in self.uploads if up.id not in self.records],
                           similar=self.similar())

    def similar(self) -> list:
        """Near-identical answers among the counted uploads, read while their copies are under .work/."""
        from . import similarity

        counted = {up.id: up.notebook for up in self.uploads
                   if up.notebook is not None and up.id in self.records and self.records[up.id].counted}
        return similarity.similar_pairs(counted)

    def _record(self, up: intake.Upload, status: str, message: str = "", message_zh: str = "", **more) -> Record:
        return Record(
            id=up.id, original_name=up.original_name, status=status, message=message, message_zh=message_zh,
            gradescope_id=up.gradescope_id, submitters=up.submitters, identity=list(up.identity),
            digest=store.resume_digest(up.digest, self.grading), grader_digest=self.grading,
            sandbox=more.pop("sandbox", "" if up.notebook is None else self.sandbox),
            counted=status != Status.IGNORED, **more,  # a README is nobody's grade
        )

    def grade_one(self, up: intake.Upload) -> Record | None:
        """Grade one upload; whatever goes wrong is this submission's row, not the whole batch's."""
        if self.stop.is_set():
            return None
        try:
            folder = store.folder(self.out, up.id)
            outcome = self.grade_fn(
                up.notebook, self.autograder_zip, folder, settings=self.settings, sandbox=self.sandbox,
                extra_files=list(up.extra_files), env=self.env, cancel=self.stop,
            )
            if outcome.status == Status.INTERRUPTED or (self.stop.is_set() and outcome.status != Status.GRADED):
                return None  # cut short by the stop: graded again next time
            if outcome.log:
                store.write(self.out, up.id, store.LOG, data=outcome.log)
            # Results cut short by the zip's own limits count as a failure to grade here, scores kept.
            status = STATUS_OF_STOP.get(outcome.stopped, outcome.status)
            if status not in RECORDED:
                status = Status.ERROR
            return self._record(
                up, status, " ".join(filter(None, [outcome.message, up.message])),
                " ".join(filter(None, [getattr(outcome, "message_zh", ""), up.message_zh])),
                scores={q: [float(s), float(p)] for q, (s, p) in outcome.scores.items()},
                seconds=round(outcome.seconds, 1), peak_memory_mb=round(outcome.peak_memory_mb),
                sandbox=getattr(outcome, "sandbox", "") or self.sandbox,
            )
        except Exception as e:  # a bug of the kit's, not the student's: its traceback goes to the log
            import traceback

            detail = ids.printable(f"{type(e).__name__}: {e}")[:500]
            try:
                store.write(self.out, up.id, store.LOG, data="".join(traceback.format_exception(e)))
            except OSError:
                pass  # the row below still says what happened
            return self._record(
                up, "error", f"Grading failed inside fashion-kit ({detail}); the traceback is in grading.log.",
                f"fashion-kit 批改時出錯（{detail}），錯誤的詳細紀錄在 grading.log。")

    def finish(self, record: Record, on_done) -> None:
        store.save(self.out, record)
        self.records[record.id] = record
        self.publish()
        on_done(record)

    def ordered(self) -> list[Record]:
        order = {up.id: i for i, up in enumerate(self.uploads)}
        return sorted(self.records.values(), key=lambda r: order.get(r.id, len(order)))

    def publish(self) -> None:
        """The gradebook from the records so far: rewritten whole and atomically, never half a row."""
        store.write(self.out, store.GRADEBOOK, data=exports.gradebook_csv(self.ordered(), self.questions))

    def settle_duplicates(self) -> None:
        """Flag every upload of a student who handed in more than one, and say which one counts and why."""
        groups = _same_student(self.uploads, self.owners(self.uploads) if self.owners else {})
        for group in groups:
            rows = [self.records[up.id] for up in group if up.id in self.records]
            if not rows:
                continue
            first = group[0].id
            counted, how = _counted(group, rows, self.duplicates)
            for r in rows:
                wanted = ("" if r.id == first else first, self.duplicates == "both" or r is counted, how)
                if (r.duplicate_of, r.counted, r.counted_by) != wanted:
                    r.duplicate_of, r.counted, r.counted_by = wanted
                    store.save(self.out, r)
        grouped = {up.id for group in groups for up in group}
        for r in self.records.values():  # a student who is no longer a duplicate
            if r.id not in grouped and r.status != Status.IGNORED and (r.duplicate_of or not r.counted or r.counted_by):
                r.duplicate_of, r.counted, r.counted_by = "", True, ""
                store.save(self.out, r)


def _counted(group: list[intake.Upload], rows: list[Record], policy: str) -> tuple[Record, str]:
    """Which of one student's uploads counts under ``policy`` (``--duplicates``), and how it was
    chosen, in words: the latest by the time the uploads carry (the LMS's, else the files'), or, when
    they carry none that tells them apart, by the order of their names."""
    order = {up.id: i for i, up in enumerate(group)}
    mine = [up for up in group if up.id in {r.id for r in rows}]
    times = [up.created for up in mine]
    timed = all(times) and len(set(times)) == len(times)
    if timed:
        basis = intake.LMS_TIME if all(up.created_by == intake.LMS_TIME for up in mine) else intake.FILE_TIME
        created = {up.id: up.created for up in mine}
        when = {r.id: (created[r.id], order[r.id]) for r in rows}
    else:
        basis = "the order of their names (the uploads carry no time that tells them apart)"
        when = {r.id: (0.0, order[r.id]) for r in rows}
    latest = max(rows, key=lambda r: when[r.id])
    if policy == "both":
        return latest, "both count (--duplicates both)"
    if policy == "highest":
        graded = [r for r in rows if r.status == Status.GRADED]
        if graded:
            return max(graded, key=lambda r: (r.total, when[r.id])), "the highest total (--duplicates highest)"
        return latest, f"none graded: the latest, by {basis}"
    return latest, f"the latest, by {basis}"


def _why_again(old: Record | None, digest: str, grading: str, force: bool, retry_failed: bool,
               student: str | None) -> str | None:
    """Why a submission must be graded (again), or None to reuse its record."""
    if old is None:
        return "new"
    if student is not None:
        return REASON_STUDENT
    if force:
        return REASON_FORCED
    if old.digest != digest:
        return REASON_GRADER if old.grader_digest != grading else REASON_UPLOAD
    if retry_failed and old.status in RETRYABLE:
        return REASON_RETRY
    return None


def _same_student(uploads: list[intake.Upload], owners: dict[str, set[str]]) -> list[list[intake.Upload]]:
    """Groups of two or more uploads sharing a student key (file name, SID, email or name, or a
    student of the roster ``owners`` matched them to)."""
    parent = list(range(len(uploads)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, up in enumerate(uploads):
        if up.status == Status.IGNORED:
            continue
        for key in up.student_keys | {"student:" + k for k in owners.get(up.id, ())}:
            if key in owner:
                parent[find(i)] = find(owner[key])
            else:
                owner[key] = i
    groups: dict[int, list[intake.Upload]] = {}
    for i, up in enumerate(uploads):
        if up.status != Status.IGNORED:
            groups.setdefault(find(i), []).append(up)
    return [sorted(g, key=lambda u: contract.natural_key(u.id)) for g in groups.values() if len(g) > 1]
