"""Everything the instructor takes away from a graded class, written in one call at the end of a batch.

Next to the batch's own ``gradebook.csv`` (one row per upload), :func:`write` adds:

* ``students.csv``: one row per student of the roster, ``missing`` when nothing of theirs was found
  (only with a roster, given or carried by a Gradescope export);
* ``unmatched.csv``: the uploads that match no student, as gradebook rows (only with a roster);
* ``canvas.csv`` and ``moodle.csv``: the totals in the layouts those systems import;
* ``feedback/<id>.html`` for every upload and ``feedback.zip`` of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import contract
from ..questions import points_in_autograder
from . import exports, feedback, roster

from .store import TAKE_AWAY

STUDENTS, UNMATCHED, CANVAS, MOODLE, _ = TAKE_AWAY
# Every name this module writes at the top of the output folder: no submission id may take one
# (store.OUTPUT_NAMES holds them all).
NAMES = (STUDENTS, UNMATCHED, CANVAS, MOODLE, feedback.FOLDER, feedback.ZIP)
IGNORED = "ignored"


@dataclass
class Written:
    files: list[Path] = field(default_factory=list)
    rows: list[roster.Row] = field(default_factory=list)  # one per student, with a roster
    unmatched: list = field(default_factory=list)  # uploads no student matched


def _atomic(path: Path, text: str) -> Path:
    if path.is_symlink():
        raise OSError(f"refused to write through the link {path}.")
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    tmp.replace(path)
    return path


def write(out: Path | str, records, questions: list[str], *, assignment: str, possible: float,
          students: list[roster.Student] | None = None, results_of=None, language_of=None) -> Written:
    """Write the take-away files into ``out``.

    ``records`` are the batch's per-upload records; ``possible`` the assignment's points (the sum of
    :func:`fashion_kit.questions.points_in_autograder`); ``students`` the roster (``roster.read`` or
    ``roster.from_uploads``), None for none. ``results_of(record)`` returns an upload's results.json
    content (or None) and ``language_of(record)`` its notebook's language; without them the pages say
    there are no results, in both languages.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # A file that was no submission at all (a README beside the notebooks) is nobody's work.
    records = [r for r in records if roster.get(r, "status") != IGNORED]
    written = Written()
    if students:
        written.rows, written.unmatched = roster.match(students, records)
        written.files.append(_atomic(out / STUDENTS, exports.roster_gradebook_csv(written.rows, questions, possible)))
        written.files.append(_atomic(out / UNMATCHED, exports.gradebook_csv(written.unmatched, questions)))
        lines = exports.lms_lines(rows=written.rows)
    else:
        lines = exports.lms_lines(records=records)
    written.files.append(_atomic(out / CANVAS, exports.canvas_csv(lines, assignment, possible)))
    written.files.append(_atomic(out / MOODLE, exports.moodle_csv(lines, assignment)))
    pages = {}
    for record in records:
        sid = str(roster.get(record, "id", ""))
        language = language_of(record) if language_of else feedback.DEFAULT_LANGUAGE
        pages[sid] = feedback.page(record, results_of(record) if results_of else None, language=language,
                                   assignment=assignment)
    folder, bundle = feedback.write(out, pages)
    written.files += [folder, bundle]
    return written


def for_batch(out: Path | str, result, autograder_zip: Path | str, settings,
              roster_file: Path | str | None = None) -> Written:
    """:func:`write` for a finished batch, as ``fashion-kit grade`` calls it.

    The roster is ``roster_file`` (``--roster``) when given, else the one a Gradescope export carries
    (none for a folder of notebooks); the points are the autograder's questions'; each upload's
    results.json is read from ``<out>/<id>/``; a record's ``language`` (if the batch keeps one) picks
    its page's language. Raises :class:`roster.RosterError` for an unusable roster file.
    """
    from .store import RESULTS

    out = Path(out)
    students = roster.read(roster_file) if roster_file else (roster.from_uploads(result.records) or None)
    points = points_in_autograder(autograder_zip)
    possible = sum(points.get(q, 0.0) for q in result.questions) or sum(points.values())
    if not possible:  # a zip whose test files name no points: what the graded questions were worth
        possible = max((sum(float(p) for _, p in (roster.get(r, "scores", None) or {}).values())
                        for r in result.records), default=0.0)

    def results_of(record):
        return feedback.read_results(out / str(roster.get(record, "id", "")) / RESULTS)

    def language_of(record):
        # The grader records the notebook's language in results.json (contract.LANGUAGE_KEY).
        found = (results_of(record) or {}).get("extra_data") or {}
        language = roster.get(record, "language", None) or found.get(contract.LANGUAGE_KEY)
        return language if language in feedback.LANGUAGES else feedback.DEFAULT_LANGUAGE

    return write(out, result.records, list(result.questions), assignment=settings.assignment_name,
                 possible=possible, students=students, results_of=results_of, language_of=language_of)
