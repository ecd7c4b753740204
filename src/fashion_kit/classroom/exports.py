"""What a batch's records become for other programs: the gradebook (CSV), and other exports.

Every cell a spreadsheet opens is neutralised first: a cell starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return is a formula to Excel, LibreOffice and Google Sheets, and a student's name
or a notebook's error message must never run as one (OWASP, "CSV Injection").
"""

from __future__ import annotations

import csv
import io

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
        "possible", "percent", "status", "message", "message_zh", "counted", "duplicate_of", "sandbox", "seconds",
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
            r.status, r.message, r.message_zh, "yes" if r.counted else "no", r.duplicate_of, r.sandbox,
            f"{r.seconds:.1f}",
        ]
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return BOM + buffer.getvalue()


# --- With a roster: one row per student, and the files an LMS imports ------------------------------
#
# Canvas ("Import" in the Gradebook) reads the columns of its own gradebook export: Student, ID, SIS
# User ID, SIS Login ID, Section, then one column per assignment; a "Points Possible" row may follow
# the header. It matches a student by any of its identifying columns, here the SIS User ID (the
# roster's student id). Moodle ("Import > CSV file") lets the instructor map one column to a user
# field (ID number -> useridnumber, or Email address -> useremail) and another to a grade item.
CANVAS_HEADER = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_POINTS_ROW = "Points Possible"
MOODLE_HEADER = ("ID number", "Email address")


def _field(item, name, default=None):
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


def _scores(record) -> dict:
    return _field(record, "scores", None) or {}


def total_of(record) -> float | None:
    """The record's points (bonus included), or None when grading produced no scores."""
    scores = _scores(record)
    return sum(float(s) for s, _ in scores.values()) if scores else None


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


def roster_gradebook_csv(rows, questions: list[str], possible: float) -> str:
    """The gradebook with a roster: one row per student (``roster.Row``), ``missing`` included.

    ``possible`` is the assignment's points (the autograder's questions); the bonus can take a total
    above it, and ``percent`` above 100.
    """
    out = [["sid", "name", "email", "id", "original_name", "matched_by", "uploads", *questions, "total",
            "possible", "percent", "status", "message", "duplicate_of"]]
    for row in rows:
        s, r = row.student, row.upload
        scores = _scores(r) if r is not None else {}
        total = total_of(r) if r is not None else None
        out.append([
            s.sid, s.name, s.email,
            _field(r, "id", "") if r is not None else "", _field(r, "original_name", "") if r is not None else "",
            row.matched_by, "; ".join(row.uploads),
            *[f"{float(scores[q][0]):g}" if q in scores else "" for q in questions],
            f"{total:g}" if total is not None else "", f"{possible:g}", percent(total, possible),
            row.status, _field(r, "message", "") if r is not None else "",
            _field(r, "duplicate_of", "") if r is not None else "",
        ])
    return _csv(out)


def lms_lines(rows=None, records=None) -> list[tuple[str, str, str, float | None]]:
    """(name, student id, email, total) per student, from roster rows or, without a roster, from the
    records' submitters (a record without submitters is named by its id)."""
    lines = []
    for row in rows or []:
        total = total_of(row.upload) if row.upload is not None else None
        lines.append((row.student.name, row.student.sid, row.student.email, total))
    for record in records or []:
        people = [p for p in (_field(record, "submitters", None) or []) if isinstance(p, dict)]
        for p in people or [{"name": _field(record, "id", "")}]:
            lines.append((str(p.get("name") or ""), str(p.get("sid") or ""), str(p.get("email") or ""),
                          total_of(record)))
    return lines


def canvas_csv(lines, assignment: str, possible: float) -> str:
    """Canvas's gradebook import: the assignment as one column, students by SIS User ID.

    A student without a total (no submission, or nothing graded) gets an empty cell, not a 0: whether
    that counts as missing is the course's policy, set in Canvas.
    """
    out = [[*CANVAS_HEADER, assignment], [CANVAS_POINTS_ROW, "", "", "", "", f"{possible:g}"]]
    for name, sid, _email, total in lines:
        out.append([name, "", sid, "", "", f"{total:g}" if total is not None else ""])
    return _csv(out)


def moodle_csv(lines, assignment: str) -> str:
    """Moodle's CSV grade import: an identifier (ID number, Email address) and the grade.

    Students without a total, or without an identifier, are left out, so the import changes nothing
    for them.
    """
    out = [[*MOODLE_HEADER, assignment]]
    for _name, sid, email, total in lines:
        if total is not None and (sid or email):
            out.append([sid, email, f"{total:g}"])
    return _csv(out)
