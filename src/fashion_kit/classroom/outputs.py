"""Everything the instructor takes away from a graded class, written in one call at the end of a batch.

Next to the batch's own ``gradebook.csv`` (one row per upload), :func:`write` adds:

* ``students.csv``: one row per student of the roster, ``missing`` when nothing of theirs was found
  (only with a roster, given or carried by a Gradescope export);
* ``unmatched.csv``: the uploads that match no student, with the closest roster entries;
* ``canvas.csv`` and ``moodle.csv``: the totals in the layouts those systems import, with only the
  students they can identify (a file that would identify no one is not written, and the notes say why);
* ``feedback/<student>.html`` for every student (named by SID; without a roster, by upload id), and
  ``feedback.zip`` of them (named for Canvas's bulk upload when the roster gives Canvas user ids);
  pages of unmatched uploads in ``feedback/unmatched/``, not in the zip.

``canvas.csv`` takes the roster's own column for the assignment when the roster is Canvas's export,
and the LMS files and the pages apply the late policy (``late_penalty_percent``).

A batch that did not finish (interrupted, or uploads left to grade) writes ``students.partial.csv``
and ``unmatched.partial.csv`` instead, with ``pending`` for students whose upload may be among those
not graded yet, and no LMS file and no zip (earlier ones removed): nothing that looks final is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import contract, points, run
from ..questions import points_in_autograder
from ..statuses import Status
from . import exports, feedback, matching, roster
from .store import PARTIAL_TAKE_AWAY, TAKE_AWAY

STUDENTS, UNMATCHED, CANVAS, MOODLE, _ = TAKE_AWAY
STUDENTS_PARTIAL, UNMATCHED_PARTIAL = PARTIAL_TAKE_AWAY
# Every name this module writes at the top of the output folder: no submission id may take one
# (store.OUTPUT_NAMES holds them all).
NAMES = (STUDENTS, UNMATCHED, CANVAS, MOODLE, feedback.FOLDER, feedback.ZIP, *PARTIAL_TAKE_AWAY)


@dataclass
class Written:
    files: list[Path] = field(default_factory=list)
    rows: list[matching.Row] = field(default_factory=list)  # one per student, with a roster
    unmatched: list = field(default_factory=list)  # uploads no student matched
    closest: dict[str, list[roster.Student]] = field(default_factory=dict)  # unmatched id -> likely students
    notes: list[str] = field(default_factory=list)  # for the instructor: what was not written, and why
    partial: bool = False


def _atomic(path: Path, text: str) -> Path:
    if path.is_symlink():
        raise OSError(f"refused to write through the link {path}.")
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    tmp.replace(path)
    return path


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()


def _listed(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def write(out: Path | str, records, questions: list[str], *, assignment: str, possible: float,
          students: list[roster.Student] | None = None, results_of=None, language_of=None,
          pattern=None, pending: list[str] | None = None, interrupted: bool = False,
          roster_header: list[str] | None = None, late_penalty_percent: float = 0.0) -> Written:
    """Write the take-away files into ``out``.

    ``records`` are the batch's per-upload records; ``possible`` the assignment's points (the sum of
    :func:`fashion_kit.questions.points_in_autograder`); ``students`` the roster (``roster.read`` or
    ``roster.from_uploads``), None for none; ``pattern`` the ``--match`` expression. ``pending``
    names the uploads not graded yet and ``interrupted`` says the batch was stopped: either makes the
    output partial. ``roster_header`` is the roster file's header row: a Canvas export's own column
    for the assignment heads canvas.csv's. ``late_penalty_percent`` is taken off the totals of uploads
    the LMS marked late, in the LMS files and on the feedback pages. ``results_of(record)`` returns an upload's results.json content (or None) and
    ``language_of(record)`` its notebook's language; without them the pages say there are no
    results, in both languages.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # A file that was no submission at all (a README beside the notebooks) is nobody's work.
    records = [r for r in records if roster.get(r, "status") != Status.IGNORED]
    written = Written(partial=bool(pending) or interrupted)
    if written.partial:
        left = f"{len(pending)} upload(s) not graded yet" if pending else "the batch was interrupted"
        written.notes.append(f"The batch is not finished ({left}): {STUDENTS_PARTIAL} and {UNMATCHED_PARTIAL} "
                             f"are partial; {CANVAS}, {MOODLE} and {feedback.ZIP} are written once every upload "
                             "is graded. Run the same command again to carry on.")
    final_names = (STUDENTS, UNMATCHED, CANVAS, MOODLE, feedback.ZIP)
    for name in (final_names if written.partial else PARTIAL_TAKE_AWAY):
        _remove(out / name)  # an earlier run's files must not pass for this run's

    if students:
        written.rows, written.unmatched = matching.match(students, records, pattern, partial=written.partial)
        keys = matching.closest_keys(students)
        for u in written.unmatched:
            written.closest[str(roster.get(u, "id", ""))] = matching.closest(u, students, keys=keys)
        stu, unm = (STUDENTS_PARTIAL, UNMATCHED_PARTIAL) if written.partial else (STUDENTS, UNMATCHED)
        written.files.append(_atomic(out / stu, exports.roster_gradebook_csv(written.rows, questions, possible,
                                                                                     late_penalty_percent)))
        written.files.append(_atomic(out / unm, exports.unmatched_csv(
            written.unmatched, lambda u: written.closest.get(str(roster.get(u, "id", "")), []))))
        if written.unmatched:
            written.notes.append(f"{len(written.unmatched)} upload(s) match no student of the roster: see {unm}.")
        lines, unnamed = exports.lms_lines(rows=written.rows, late_penalty_percent=late_penalty_percent), []
    else:
        lines = exports.lms_lines(records=records, late_penalty_percent=late_penalty_percent)
        unnamed = [str(roster.get(r, "id", "")) for r in records
                   if roster.get(r, "counted", True) is not False and not (roster.get(r, "submitters", None) or [])]
    if written.partial:
        return written

    column, why = exports.canvas_column(roster_header or [], assignment)
    if why:
        written.notes.append(f"{CANVAS}: {why}.")
    for name, export in ((CANVAS, exports.canvas_csv(lines, column or assignment, possible, unnamed)),
                         (MOODLE, exports.moodle_csv(lines, assignment, unnamed))):
        if export.text is None:
            _remove(out / name)
            written.notes.append(f"{name} not written: {export.why}.")
            continue
        written.files.append(_atomic(out / name, export.text))
        if export.why:
            written.notes.append(f"{name}: {export.why}.")
        if export.left_out:
            written.notes.append(f"{name} leaves out {len(export.left_out)} it cannot identify: "
                                 f"{_listed(export.left_out)}.")
    _write_feedback(out, written, records, assignment, results_of, language_of, bool(students),
                    late_penalty_percent)
    return written


def _write_feedback(out, written, records, assignment, results_of, language_of, with_roster,
                    late_penalty_percent=0.0) -> None:
    def language(record):
        return language_of(record) if language_of else feedback.DEFAULT_LANGUAGE

    def page(record, student=None):
        late = feedback.Late(exports.late_penalty(record, late_penalty_percent), late_penalty_percent) \
            if matching.is_late(record) else None
        return feedback.page(record, results_of(record) if results_of else None, language=language(record),
                             assignment=assignment, student=student, late=late)

    pages, apart, zipped = {}, {}, {}
    if with_roster:
        for row in written.rows:
            if row.upload is None:
                pages[row.student.key] = feedback.missing_page(row.student, assignment=assignment)
            else:
                pages[row.student.key] = page(row.upload, row.student)
            zipped[row.student.key] = feedback.upload_name(row.student, row.upload)
        for u in written.unmatched:
            apart[str(roster.get(u, "id", ""))] = page(u)
    else:
        for record in records:
            if roster.get(record, "counted", True) is not False:  # a superseded re-upload gets no page
                pages[str(roster.get(record, "id", ""))] = page(record)
    folder, bundle = feedback.write(out, pages, apart=apart, zip_names=zipped)
    written.files += [folder, bundle]


def for_batch(out: Path | str, result, autograder_zip: Path | str, settings,
              roster_file: Path | str | None = None, pattern=None) -> Written:
    """:func:`write` for a batch, as ``fashion-kit grade`` calls it.

    The roster is ``roster_file`` (``--roster``) when given, else the one a Gradescope export carries
    (none for a folder of notebooks); ``pattern`` is ``--match``; the points are the autograder's
    questions'; each upload's results.json is read from ``<out>/<id>/``; a record's ``language`` (if
    the batch keeps one) picks its page's language. A result that is ``interrupted`` or has
    ``pending`` uploads gives partial outputs. Raises :class:`roster.RosterError` for an unusable
    roster file and :class:`matching.PatternError` for an unusable pattern.
    """
    from .store import RESULTS

    out = Path(out)
    students = roster.read(roster_file) if roster_file else (roster.from_uploads(result.records) or None)
    header = roster.header(roster_file) if roster_file else []
    worth = points_in_autograder(autograder_zip)
    possible = sum(worth.get(q, 0.0) for q in result.questions) or sum(worth.values())
    if not possible:  # a zip whose test files name no points: what the graded questions were worth
        possible = max((points.possible(roster.get(r, "scores", None) or {}) for r in result.records), default=0.0)

    def results_of(record):
        return run.read_results(out / str(roster.get(record, "id", "")) / RESULTS)

    def language_of(record):
        # The grader records the notebook's language in results.json (contract.LANGUAGE_KEY).
        found = (results_of(record) or {}).get("extra_data") or {}
        language = roster.get(record, "language", None) or found.get(contract.LANGUAGE_KEY)
        return language if language in feedback.LANGUAGES else feedback.DEFAULT_LANGUAGE

    return write(out, result.records, list(result.questions), assignment=settings.assignment_name,
                 possible=possible, students=students, results_of=results_of, language_of=language_of,
                 pattern=matching.compile_pattern(pattern) if isinstance(pattern, str) else pattern,
                 pending=list(getattr(result, "pending", None) or []),
                 interrupted=bool(getattr(result, "interrupted", False)),
                 roster_header=header, late_penalty_percent=settings.late_penalty_percent)
