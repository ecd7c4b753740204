"""What a batch's records become for other programs: the gradebook (CSV), and other exports.

Every cell a spreadsheet opens is neutralised first: a cell starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return is a formula to Excel, LibreOffice and Google Sheets, and a student's name
or a notebook's error message must never run as one (OWASP, "CSV Injection").
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from .. import points
from .matching import is_late
from .roster import Student, fold, is_canvas_export, is_cjk

# The characters OWASP lists as starting a formula in some spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Excel reads a CSV file as UTF-8 only when it starts with a byte order mark; without one, Chinese
# names show as mojibake.
BOM = "\ufeff"


def spreadsheet_safe(value) -> str:
    """``value`` as a cell no spreadsheet runs as a formula: a leading quote makes it plain text."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def gradebook_csv(records, questions: list[str]) -> str:
    """The gradebook, one row per record, in the order given; UTF-8 text starting with a BOM.

    Numbers the kit writes itself (scores, seconds) are never negative, so neutralising every cell
    changes none of them.
    """
    buffer = io.StringIO()
    # Rows end in CRLF (RFC 4180): the csv module quotes a cell holding a character of the line
    # ending, so a carriage return inside a name or a message cannot split a row.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([
        "id", "original_name", "gradescope_id", "submitters", "sids", "emails", *questions, "total",
        "possible", "percent", "status", "message", "message_zh", "counted", "duplicate_of", "late", "sandbox", "seconds",
    ])
    for r in records:
        # A run stopped part-way has the scores of the questions checked before: shown, as on Gradescope.
        scored = bool(r.scores)
        row = [
            r.id, r.original_name, r.gradescope_id,
            "; ".join(p.get("name", "") for p in r.submitters),
            "; ".join(p.get("sid", "") for p in r.submitters),
            "; ".join(p.get("email", "") for p in r.submitters),
            *[f"{r.scores[q][0]:g}" if q in r.scores else "" for q in questions],
            f"{r.total:g}" if scored else "", f"{r.possible:g}" if scored else "",
            percent(r.total, r.possible) if scored else "",
            r.status, r.message, r.message_zh, "yes" if r.counted else "no", r.duplicate_of, _yes(is_late(r)), r.sandbox,
            f"{r.seconds:.1f}",
        ]
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return BOM + buffer.getvalue()


# --- With a roster: one row per student, and the files an LMS imports ------------------------------
#
# Canvas (Grades > Import) reads the layout of its own gradebook export (lib/gradebook_importer.rb):
# the header must start with Student and ID, may carry SIS User ID followed by SIS Login ID, and ends
# its student columns with Section; a row whose first cell holds "Points Possible" describes the
# assignments. A row is matched by ID (Canvas's user id) first, then SIS User ID, then SIS Login ID,
# then by the Student cell against the user's name or sortable name ("Lee, Anna").
#
# Moodle (Grades > Import > CSV file, grade/import/csv) maps one column to one user field (ID number,
# email address or username). A row whose cell in that column is blank keeps the user of the row
# before it: its grade would land on another student, or the import stops. So moodle.csv carries one
# identifier column, of one kind, and only rows where it is filled.
CANVAS_HEADER = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_POINTS_ROW = "Points Possible"
# Moodle's user fields, in the order chosen when several would do: (column header, Student field).
MOODLE_IDENTIFIERS = (("ID number", "sid"), ("Email address", "email"), ("Username", "login"))
# What a partial batch's take-away files are called: never mistaken for the final ones.
PARTIAL = ".partial"


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def late_penalty(upload, percent_off: float) -> float:
    """The points taken off ``upload``'s total for being late: ``percent_off`` of it when the LMS
    marked it late, else 0."""
    total = total_of(upload) if upload is not None else None
    if not percent_off or total is None or not is_late(upload):
        return 0.0
    return round(total * percent_off / 100, 2)


def _field(item, name, default=None):
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


def _scores(record) -> dict:
    return _field(record, "scores", None) or {}


def total_of(record) -> float | None:
    """The record's points (its questions', without the challenge bonus), or None when grading
    produced no scores."""
    scores = _scores(record)
    return points.total(scores) if scores else None


def percent(total: float | None, possible: float | None) -> str:
    """``total`` as a percentage of ``possible``, one decimal; blank without a total."""
    if total is None or not possible:
        return ""
    return f"{100 * total / possible:.1f}"


def _csv(rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return BOM + buffer.getvalue()


def roster_gradebook_csv(rows, questions: list[str], possible: float, late_penalty_percent: float = 0.0) -> str:
    """The gradebook with a roster: one row per student (``matching.Row``), ``missing`` included.

    ``possible`` is the assignment's points (the autograder's questions); the bonus can take a total
    above it, and ``percent`` above 100. ``total`` is what the grader gave; ``late`` says the LMS
    marked the counted upload late, ``late_penalty`` what the late policy takes off it (the LMS
    files carry the total less that); ``counted_by`` why that upload is the student's grade.
    """
    out = [["sid", "name", "email", "login", "section", "id", "original_name", "matched_by", "uploads", *questions,
            "total", "possible", "percent", "status", "message", "duplicate_of", "counted_by", "late", "late_penalty",
            "check"]]
    for row in rows:
        s, r = row.student, row.upload
        scores = _scores(r) if r is not None else {}
        total = total_of(r) if r is not None else None
        out.append([
            s.sid, s.name, s.email, s.login, s.section,
            _field(r, "id", "") if r is not None else "", _field(r, "original_name", "") if r is not None else "",
            row.matched_by, _uploads(row),
            *[f"{float(scores[q][0]):g}" if q in scores else "" for q in questions],
            f"{total:g}" if total is not None else "", f"{possible:g}", percent(total, possible),
            row.status, _field(r, "message", "") if r is not None else "",
            _field(r, "duplicate_of", "") if r is not None else "",
            _field(r, "counted_by", "") if r is not None else "",
            _yes(r is not None and is_late(r)),
            f"{penalty:g}" if (penalty := late_penalty(r, late_penalty_percent)) else "",
            row.conflict,
        ])
    return _csv(out)


def _uploads(row) -> str:
    """Every upload of the student's, the one that is their grade marked when there are several."""
    chosen = str(_field(row.upload, "id", "")) if row.upload is not None else ""
    return "; ".join(f"{u} (counted)" if u == chosen and len(row.uploads) > 1 else u for u in row.uploads)


def unmatched_csv(uploads, closest_of) -> str:
    """The uploads no student matched, with the closest roster entries (``closest_of(upload)``)."""
    out = [["id", "original_name", "gradescope_id", "submitters", "status", "total", "closest students"]]
    for u in uploads:
        people = [p for p in (_field(u, "submitters", None) or []) if isinstance(p, dict)]
        total = total_of(u)
        out.append([_field(u, "id", ""), _field(u, "original_name", ""), _field(u, "gradescope_id", "") or "",
                    "; ".join(str(p.get("name") or p.get("email") or p.get("sid") or "") for p in people),
                    _field(u, "status", ""), f"{total:g}" if total is not None else "",
                    "; ".join(s.label for s in closest_of(u))])
    return _csv(out)


@dataclass
class Line:
    """One student's total, for an LMS."""

    student: Student
    total: float | None


@dataclass
class Export:
    """An LMS file: its text, or None when it would identify no one, and whom it leaves out."""

    text: str | None
    left_out: list[str] = field(default_factory=list)  # students (labels) the file cannot name
    why: str = ""  # why it is not written, or what identifies the students in it


def lms_total(upload, late_penalty_percent: float = 0.0) -> float | None:
    """What an LMS gets for ``upload``: its total less the late penalty, None without scores."""
    total = total_of(upload) if upload is not None else None
    return None if total is None else round(total - late_penalty(upload, late_penalty_percent), 2)


def lms_lines(rows=None, records=None, late_penalty_percent: float = 0.0) -> list[Line]:
    """A :class:`Line` per student, from roster rows or, without a roster, from the counted records'
    submitters (a record without submitters identifies no one and gives no line); each total less
    the late penalty."""
    lines = [Line(row.student, lms_total(row.upload, late_penalty_percent)) for row in rows or []]
    for record in records or []:
        if _field(record, "counted", True) is False:
            continue  # a superseded re-upload: the counted one is the student's grade
        for p in _field(record, "submitters", None) or []:
            if isinstance(p, dict):
                lines.append(Line(Student(str(p.get("sid") or ""), str(p.get("name") or ""), str(p.get("email") or "")),
                                  lms_total(record, late_penalty_percent)))
    return lines


# An assignment's column in Canvas's gradebook export: "Fashion-MNIST (8801)", its title and its id.
_CANVAS_ASSIGNMENT = re.compile(r"^(?P<title>.+?)\s*\((?P<id>[0-9]+)\)\s*$")


def canvas_column(header: list[str], assignment: str) -> tuple[str | None, str]:
    """The column of a Canvas gradebook export's ``header`` that is ``assignment`` (None for another
    roster), and a note when there is none to choose.

    Canvas's importer finds an assignment by ``Name (id)``, then by its title, else creates a new
    one: so canvas.csv must carry the roster's own header. It is the assignment column whose title is
    ``assignment`` (case, spaces and dashes aside), else the only assignment column; several and none
    named so: None, and the note says why.
    """
    if not is_canvas_export(header):
        return None, ""
    columns = [h for h in header[len(CANVAS_HEADER):] if _CANVAS_ASSIGNMENT.match(h)]
    named = [h for h in columns if fold(_CANVAS_ASSIGNMENT.match(h)["title"]) == fold(assignment)]
    if len(named) == 1:
        return named[0], ""
    if len(columns) == 1:
        return columns[0], ""
    if not columns:
        return None, ""
    return None, (f"the roster has {len(columns)} assignment columns and none is uniquely named {assignment!r} "
                  f"({', '.join(columns[:5])}); the column is {assignment!r}, which Canvas imports as a new "
                  "assignment: rename it to the assignment's header (Name (id)) before importing")


def canvas_name(student: Student) -> str:
    """The Student cell as Canvas writes it: its sortable name ("Lee, Anna"); a CJK name written with
    no space has no sortable form but itself (王小明, never "王, 小明")."""
    if student.name and is_cjk(student.name) and " " not in student.name.strip():
        return student.name
    return student.sortable_name or student.name


def canvas_csv(lines: list[Line], assignment: str, possible: float, unnamed: list[str] = ()) -> Export:
    """Canvas's gradebook import: the assignment as one column, a row per student Canvas can find.

    ``ID`` is Canvas's user id when the roster came from Canvas; ``SIS User ID`` the student id; ``SIS
    Login ID`` and ``Section`` as the roster had them; ``Student`` the name as Canvas writes it. A
    student without a total (no submission, or nothing graded) gets an empty cell, not a 0: whether
    that counts as missing is the course's policy, set in Canvas. ``unnamed`` are uploads no one could
    be named for: they cannot be imported and are listed in ``left_out``.
    """
    out = [[*CANVAS_HEADER, assignment], [CANVAS_POINTS_ROW, "", "", "", "", f"{possible:g}"]]
    left_out = list(unnamed)
    for line in lines:
        s = line.student
        if not (s.canvas_id or s.sid or s.login):
            left_out.append(s.label)
            continue
        out.append([canvas_name(s), s.canvas_id, s.sid, s.login, s.section,
                    f"{line.total:g}" if line.total is not None else ""])
    if len(out) == 2:
        return Export(None, left_out, "no student has a Canvas ID, an SIS User ID or an SIS Login ID "
                                      "(give --roster, e.g. the gradebook exported from Canvas)")
    return Export(_csv(out), left_out)


def moodle_csv(lines: list[Line], assignment: str, unnamed: list[str] = ()) -> Export:
    """Moodle's CSV grade import: one identifier column and the grade, for students with a total.

    The identifier is the kind most of them have (ID number, then email address, then username on a
    tie); a student without one, and a student without a total, has no row, so the import changes
    nothing for them. ``why`` names the identifier to map under *Identify user by*.
    """
    graded = [line for line in lines if line.total is not None]
    if not graded:
        return Export(None, list(unnamed), "no student has a total yet")
    header, kind = max(MOODLE_IDENTIFIERS, key=lambda pair: (sum(1 for line in graded if getattr(line.student, pair[1])),
                                                             -MOODLE_IDENTIFIERS.index(pair)))
    rows = [[getattr(line.student, kind), f"{line.total:g}"] for line in graded if getattr(line.student, kind)]
    left_out = list(unnamed) + [line.student.label for line in graded if not getattr(line.student, kind)]
    if not rows:
        return Export(None, left_out, "no student has an ID number, an email address or a username "
                                      "(give --roster, e.g. the participants exported from Moodle)")
    field_name = {"sid": "useridnumber", "email": "useremail", "login": "username"}[kind]
    return Export(_csv([[header, assignment], *rows]), left_out, f"identify users by {header} ({field_name})")
