"""Who is in the class, and which upload is whose.

A roster is a CSV file the instructor exports from the registrar or the LMS: a student id, a name and
an email per row. Header spellings vary (``Student ID``, ``SID``, ``學號``, ``Email Address``, ...), Excel
adds a byte-order mark and a semicolon delimiter in some locales, and exports carry extra columns; all
of that is accepted. A file the kit cannot use stops with one :class:`RosterError` saying what was
expected and what was found.

Without a roster file, a Gradescope export brings its own: the submitters (name, email, SID) in its
metadata, which :func:`from_uploads` collects.

:func:`match` pairs uploads with students by SID, then email, then file name, as pure functions over
plain data (dicts or objects with the same attribute names), so the batch can call it with whatever it
holds. Every student gets one row, ``missing`` when nothing of theirs was found; uploads that match no
one, or several people by file name alone, are returned apart, never guessed.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from ..errors import KitError
from ..contract import natural_key

MISSING = "missing"
# Header spellings, compared after folding case, spaces, dashes and underscores away.
# "SIS User ID" before a bare "ID": in a Canvas export, "ID" is Canvas's own number, not the student's.
SID_HEADERS = ("studentid", "sid", "sisuserid", "studentnumber", "studentno", "idnumber", "matriculationnumber",
               "學號", "學生編號", "學生學號", "id")
NAME_HEADERS = ("name", "studentname", "fullname", "student", "姓名", "學生姓名", "名字")
FIRST_NAME_HEADERS = ("firstname", "givenname", "名")
LAST_NAME_HEADERS = ("lastname", "surname", "familyname", "姓")
EMAIL_HEADERS = ("email", "emailaddress", "mail", "電子郵件", "電子郵件地址", "信箱", "電子信箱")
MAX_ROSTER_BYTES = 16 * 2**20
MIN_TOKEN = 3
# Lines of a Canvas gradebook export (usable as a roster) that are about the assignments, not a student.
CANVAS_EXTRA_ROWS = ("pointspossible", "manualposting", "muted")


class RosterError(KitError, ValueError):
    """The roster file cannot be used; the message says what was expected and what was found."""


@dataclass(frozen=True)
class Student:
    sid: str = ""
    name: str = ""
    email: str = ""


@dataclass
class Row:
    """One student's line of the gradebook: the student and the upload that is theirs, if any."""

    student: Student
    upload: object | None = None  # the upload (a dict or a record object) chosen for this student
    matched_by: str = ""  # "sid", "email" or "file name"
    uploads: list[str] = field(default_factory=list)  # ids of every upload that matched this student

    @property
    def status(self) -> str:
        return MISSING if self.upload is None else str(get(self.upload, "status", ""))


def get(item, name: str, default=None):
    """A field of a plain-data item: a mapping's key or an object's attribute."""
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


def _fold(header: str) -> str:
    return re.sub(r"[\s_\-.:/()]+", "", unicodedata.normalize("NFKC", header).casefold())


def _email_key(email: str) -> str:
    return email.strip().casefold()


def _sid_key(sid: str) -> str:
    return unicodedata.normalize("NFKC", sid).strip().casefold()


def read(path: Path | str) -> list[Student]:
    """The students in a roster CSV file (student id, name, email; any order, extra columns ignored)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RosterError(f"No roster at {path}; expected a CSV file with a student id, a name and an email per row.") from None
    except OSError as e:
        raise RosterError(f"The roster {path} cannot be read ({e.strerror or e}).") from e
    if len(raw) > MAX_ROSTER_BYTES:
        raise RosterError(f"The roster {path.name} is {len(raw) / 2**20:.0f} MB; expected a CSV file of at most "
                          f"{MAX_ROSTER_BYTES // 2**20} MB.")
    # Excel saves "CSV UTF-8" with a byte-order mark, and "Unicode text" as UTF-16 with one.
    encoding = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        raise RosterError(f"The roster {path.name} is not UTF-8 text; save it as \"CSV UTF-8\" and try again.") from None
    return parse(text, path.name)


def parse(text: str, where: str = "roster") -> list[Student]:
    """The students in a roster's text; see :func:`read`."""
    text = text.lstrip("\ufeff").lstrip("\r\n")
    if not text.strip():
        raise RosterError(f"The roster {where} is empty; expected a header row (student id, name, email) and a row per student.")
    first_line = text.splitlines()[0]
    delimiter = max(",;\t", key=first_line.count) if any(d in first_line for d in ",;\t") else ","
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as e:  # a NUL byte, a field of megabytes: not a roster a program wrote
        raise RosterError(f"The roster {where} is not a readable CSV file ({e}); expected a header row "
                          "(student id, name, email) and a row per student.") from None
    header = [_fold(h) for h in rows[0]]

    def column(names) -> int | None:
        for name in names:
            if name in header:
                return header.index(name)
        return None

    sid_col, email_col = column(SID_HEADERS), column(EMAIL_HEADERS)
    name_col, first_col, last_col = column(NAME_HEADERS), column(FIRST_NAME_HEADERS), column(LAST_NAME_HEADERS)
    if sid_col is None and email_col is None:
        found = ", ".join(repr(h) for h in rows[0][:8]) or "nothing"
        raise RosterError(f"The roster {where} has no student id or email column; expected a header row such as "
                          f"\"student id,name,email\", found {found}.")
    students, seen = [], {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue

        def cell(col):
            return row[col].strip() if col is not None and col < len(row) else ""

        name = cell(name_col) or " ".join(part for part in (cell(first_col), cell(last_col)) if part)
        student = Student(cell(sid_col), name, cell(email_col))
        if not student.sid and not student.email and _fold(name) in CANVAS_EXTRA_ROWS:
            continue
        if not student.sid and not student.email:
            raise RosterError(f"The roster {where}, line {number}, has neither a student id nor an email; "
                              "expected at least one of them for every student.")
        if student.email and "@" not in student.email:
            raise RosterError(f"The roster {where}, line {number}: expected an email address, found {student.email!r}.")
        for kind, key in (("student id", _sid_key(student.sid)), ("email", _email_key(student.email))):
            if key and (kind, key) in seen:
                raise RosterError(f"The roster {where} lists {kind} {key!r} twice (lines {seen[kind, key]} and "
                                  f"{number}); expected each student once.")
            if key:
                seen[kind, key] = number
        students.append(student)
    if not students:
        raise RosterError(f"The roster {where} has a header but no students; expected one row per student.")
    return students


def from_uploads(uploads) -> list[Student]:
    """The roster a Gradescope export carries: every submitter named in its metadata, once each."""
    students, seen = [], set()
    for upload in uploads:
        for person in get(upload, "submitters", None) or []:
            if not isinstance(person, dict):
                continue
            student = Student(str(person.get("sid") or "").strip(), str(person.get("name") or "").strip(),
                              str(person.get("email") or "").strip())
            key = (_sid_key(student.sid), _email_key(student.email))
            if (student.sid or student.email) and key not in seen:
                seen.add(key)
                students.append(student)
    return students


def _file_tokens(upload) -> set[str]:
    """The words of an upload's file names (``B10901234_hw1.ipynb`` -> b10901234, hw1, ...)."""
    names = [str(get(upload, key, "") or "") for key in ("original_name", "id")]
    tokens = set()
    for name in names:
        stem = PurePath(name.replace("\\", "/")).name
        stem = re.sub(r"\.(ipynb|zip)$", "", stem, flags=re.IGNORECASE)
        folded = unicodedata.normalize("NFKC", stem).casefold()
        if folded:
            tokens.add(folded)
            tokens.update(t for t in re.split(r"[\s_\-.,()\[\]]+", folded) if t)
    return tokens


def _name_key(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", unicodedata.normalize("NFKC", name).casefold())


def _matches(upload, students: list[Student]) -> tuple[list[int], str]:
    """Which students an upload belongs to, and by what: its submitters' SIDs, emails, then its file name."""
    people = [p for p in (get(upload, "submitters", None) or []) if isinstance(p, dict)]
    by_sid = {_sid_key(s.sid): i for i, s in enumerate(students) if s.sid}
    by_email = {_email_key(s.email): i for i, s in enumerate(students) if s.email}
    for kind, index, key in (("sid", by_sid, _sid_key), ("email", by_email, _email_key)):
        found = sorted({index[key(str(p.get(kind) or ""))] for p in people if key(str(p.get(kind) or "")) in index})
        if found:
            return found, kind
    tokens = _file_tokens(upload)
    if not tokens:
        return [], ""
    names = {_name_key(t) for t in tokens}
    found = set()
    for i, s in enumerate(students):
        sid = _sid_key(s.sid)
        local = _email_key(s.email).split("@")[0]
        # Very short ids and mailbox names ("a", "01") would fit any file name by chance.
        if (len(sid) >= MIN_TOKEN and sid in tokens) or (s.email and _email_key(s.email) in tokens) \
                or (len(local) >= MIN_TOKEN and local in tokens) or (s.name and _name_key(s.name) in names):
            found.add(i)
    return sorted(found), "file name" if found else ""


def _total(upload) -> float:
    scores = get(upload, "scores", None) or {}
    try:
        return sum(float(v[0]) for v in scores.values())
    except (TypeError, ValueError, IndexError):
        return 0.0


def _preference(upload):
    """Sort key of a student's uploads, best first: the one the batch counts as the student's grade
    (not a duplicate), then the highest total, then the earliest id."""
    return (get(upload, "counted", True) is False, -_total(upload), natural_key(str(get(upload, "id", ""))))


def match(roster: list[Student], uploads) -> tuple[list[Row], list]:
    """One :class:`Row` per student (``missing`` when no upload is theirs), and the unmatched uploads.

    A group submission (several submitters) counts for each of them. When several uploads belong to
    one student (a re-upload), the row takes the one the batch counts (``counted``, not a duplicate),
    else the one with the highest total, the earliest id on a tie; ``Row.uploads`` names them all.
    A file name that fits several students matches none of them: it is listed as unmatched, for a
    person to decide.
    """
    rows = [Row(student) for student in roster]
    unmatched = []
    for upload in uploads:
        found, how = _matches(upload, roster)
        if not found or (how == "file name" and len(found) > 1):
            unmatched.append(upload)
            continue
        for i in found:
            row = rows[i]
            row.uploads.append(str(get(upload, "id", "")))
            better = row.upload is None or _preference(upload) < _preference(row.upload)
            if better:
                row.upload, row.matched_by = upload, how
    for row in rows:
        row.uploads.sort(key=natural_key)
    return rows, unmatched
