"""Who is in the class: the roster file the instructor exports, read as the LMS wrote it.

Accepted, recognised by their header rows:

* a **Canvas** gradebook export (``Student, ID, SIS User ID, SIS Login ID, Section, ...``, or without
  the SIS columns when the course has no SIS data; Canvas's ``LastName, FirstName`` variant too). Its
  ``ID`` is Canvas's own user id, kept apart from the SIS User ID; its ``Points Possible`` row, its
  muted / manual-posting row and its Test Student (``Student, Test``) are not students;
* a **Moodle** participants or grades export (``First name, Last name, ID number, Email address``,
  ``Username`` when shown);
* a **Gradescope** roster (``First Name, Last Name, SID, Email``, or ``Name``);
* a plain spreadsheet (``student id`` / ``SID`` / ``學號``, ``name`` / ``姓名``, ``email`` / ``電子郵件``).

A name given as first and last name is written in the order people use: family name first and no
space for Chinese, Japanese and Korean names (``王`` + ``小明`` is 王小明), given name first otherwise.
Excel's byte-order mark, UTF-16 and ``;`` or tab delimiters are accepted, and extra columns ignored.
A file the kit cannot use stops with one :class:`RosterError` saying what was expected and found.

Without a roster file, a Gradescope export brings its own: the submitters in its metadata
(:func:`from_uploads`). Which upload is whose is :mod:`.matching`'s job.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..errors import KitError

# Header spellings, compared after folding case, spaces, dashes and underscores away.
SID_HEADERS = ("sisuserid", "studentid", "sid", "studentnumber", "studentno", "idnumber", "matriculationnumber",
               "學號", "學生編號", "學生學號", "id")
NAME_HEADERS = ("name", "studentname", "fullname", "student", "姓名", "學生姓名", "名字")
FIRST_NAME_HEADERS = ("firstname", "givenname", "名")
LAST_NAME_HEADERS = ("lastname", "surname", "familyname", "姓")
EMAIL_HEADERS = ("email", "emailaddress", "mail", "電子郵件", "電子郵件地址", "信箱", "電子信箱")
LOGIN_HEADERS = ("sisloginid", "username", "login", "loginid", "帳號", "使用者名稱")
SECTION_HEADERS = ("section", "sections", "group", "groups", "班級", "組別")
MAX_ROSTER_BYTES = 16 * 2**20
# Lines of a Canvas gradebook export that are about the assignments, not a student.
CANVAS_POINTS = "pointspossible"
CANVAS_NOTE_ROW = re.compile(r"^\s*(muted|manual posting.*)?\s*$", re.IGNORECASE)
# Canvas's Test Student (Student view), in its export as "Student, Test" with no SIS User ID.
CANVAS_TEST_STUDENT = ("student,test", "teststudent")
_CJK = re.compile(r"[\u1100-\u11ff\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]")


class RosterError(KitError, ValueError):
    """The roster file cannot be used; the message says what was expected and what was found."""


@dataclass(frozen=True)
class Student:
    sid: str = ""  # the school's student id: SIS User ID, Moodle's ID number, Gradescope's SID
    name: str = ""  # as people write it: "Anna Lee", "王小明"
    email: str = ""
    login: str = ""  # Canvas's SIS Login ID, Moodle's username
    canvas_id: str = ""  # Canvas's own user id: the ID column of a Canvas export
    section: str = ""
    sortable_name: str = ""  # "Lee, Anna", as Canvas's Student column writes it

    @property
    def key(self) -> str:
        """What names this student's files (feedback page): the first identifier they have."""
        return self.sid or self.login or self.email or self.canvas_id or self.name

    @property
    def label(self) -> str:
        """The student for people: ``Anna Lee (B10901002)``."""
        ident = self.sid or self.login or self.email or self.canvas_id
        if self.name and ident:
            return f"{self.name} ({ident})"
        return self.name or ident


# What Moodle's participants export writes in its Groups column for a student in no group.
NO_GROUP = ("nogroups",)


def section(cell: str) -> str:
    """A roster's section or group cell; Moodle's "No groups" is no section."""
    return "" if fold(cell) in NO_GROUP else cell


def fold(text: str) -> str:
    """A header or a name compared loosely: NFKC, case folded, spaces and punctuation gone."""
    return re.sub(r"[\s_\-.:/()]+", "", unicodedata.normalize("NFKC", text).casefold())


def is_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def full_name(first: str, last: str) -> str:
    """First and last name in the order people use: 王小明, but Anna Lee."""
    if first and last and (is_cjk(first) or is_cjk(last)):
        return last + first
    return " ".join(part for part in (first, last) if part)


def display_name(name: str) -> str:
    """Canvas's sortable "Lee, Anna" as people say it ("Anna Lee"); any other name as it is."""
    if name.count(",") == 1:
        last, first = (part.strip() for part in name.split(","))
        if first and last:
            return full_name(first, last)
    return name


def read(path: Path | str) -> list[Student]:
    """The students in a roster CSV file (see the module's docstring for the layouts)."""
    path = Path(path)
    return parse(_text(path), path.name)


def header(path: Path | str) -> list[str]:
    """The roster file's header row as written (a Canvas export's assignment columns among them)."""
    rows = _rows(_text(Path(path)), Path(path).name)
    return rows[0] if rows else []


def is_canvas_export(header_row: list[str]) -> bool:
    """Whether a roster's header row is that of Canvas's gradebook export."""
    return len(header_row) > 3 and _Columns(header_row).canvas


def _text(path: Path) -> str:
    """The roster file's text, whichever encoding Excel saved it in."""
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
    return text


class _Columns:
    """Where each field is in a header row, the LMS's own layout recognised first."""

    def __init__(self, header: list[str]):
        folded = [fold(h) for h in header]
        self.canvas = len(folded) > 3 and ((folded[0] == "student" and folded[1] == "id")
                                           or (folded[0] == "lastname" and folded[1] == "firstname"))

        def column(names):
            for name in names:
                if name in folded:
                    return folded.index(name)
            return None

        if self.canvas:
            # Canvas's "ID" is its own user id; the student id is the SIS User ID, if any.
            self.canvas_id = folded.index("id")
            self.sid = column(("sisuserid",))
            self.login = column(("sisloginid",))
            self.name = 0 if folded[0] == "student" else None
        else:
            self.canvas_id = None
            self.sid = column(SID_HEADERS)
            self.login = column(LOGIN_HEADERS)
            self.name = column(NAME_HEADERS)
        self.email = column(EMAIL_HEADERS)
        self.first, self.last = column(FIRST_NAME_HEADERS), column(LAST_NAME_HEADERS)
        self.section = column(SECTION_HEADERS)

    @property
    def identifying(self) -> bool:
        return any(c is not None for c in (self.sid, self.email, self.login, self.canvas_id))


def parse(text: str, where: str = "roster") -> list[Student]:
    """The students in a roster's text; see :func:`read`."""
    rows = _rows(text, where)
    if not rows:
        raise RosterError(f"The roster {where} is empty; expected a header row (student id, name, email) and a row per student.")
    columns = _Columns(rows[0])
    if not columns.identifying:
        found = ", ".join(repr(h) for h in rows[0][:8]) or "nothing"
        raise RosterError(f"The roster {where} has no student id or email column; expected a header row such as "
                          f"\"student id,name,email\", found {found}.")
    students, seen = [], {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue

        def cell(col):
            return row[col].strip() if col is not None and col < len(row) else ""

        if columns.canvas and (fold(row[0]).startswith(CANVAS_POINTS)
                               or all(CANVAS_NOTE_ROW.match(c) for c in row)):
            continue
        raw_name = cell(columns.name)
        name = display_name(raw_name) if raw_name else full_name(cell(columns.first), cell(columns.last))
        sortable = raw_name if columns.canvas and "," in raw_name else ""
        if columns.name is None and cell(columns.last) and cell(columns.first):
            # Kept as "Last, First": the split is what tells 王小明 (王 + 小明) from 小明王 when matching.
            sortable = f"{cell(columns.last)}, {cell(columns.first)}"
        student = Student(cell(columns.sid), name, cell(columns.email), cell(columns.login),
                          cell(columns.canvas_id), section(cell(columns.section)), sortable)
        if columns.canvas and fold(raw_name or sortable) in CANVAS_TEST_STUDENT and not student.sid:
            continue  # Canvas's Test Student: every course has one, no one's grade
        if not (student.sid or student.email or student.login or student.canvas_id):
            raise RosterError(f"The roster {where}, line {number}, has neither a student id nor an email; "
                              "expected at least one of them for every student.")
        if student.email and "@" not in student.email:
            raise RosterError(f"The roster {where}, line {number}: expected an email address, found {student.email!r}.")
        for kind, key in (("student id", identifier(student.sid)), ("email", identifier(student.email)),
                          ("login", identifier(student.login)), ("Canvas ID", identifier(student.canvas_id))):
            if key and (kind, key) in seen:
                raise RosterError(f"The roster {where} lists {kind} {key!r} twice (lines {seen[kind, key]} and "
                                  f"{number}); expected each student once.")
            if key:
                seen[kind, key] = number
        students.append(student)
    if not students:
        raise RosterError(f"The roster {where} has a header but no students; expected one row per student.")
    return students


def _rows(text: str, where: str) -> list[list[str]]:
    """The roster's rows, with whichever delimiter its first line uses; none for an empty file."""
    text = text.lstrip("\ufeff").lstrip("\r\n")
    if not text.strip():
        return []
    first_line = text.splitlines()[0]
    delimiter = max(",;\t", key=first_line.count) if any(d in first_line for d in ",;\t") else ","
    try:
        return list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as e:  # a NUL byte, a field of megabytes: not a roster a program wrote
        raise RosterError(f"The roster {where} is not a readable CSV file ({e}); expected a header row "
                          "(student id, name, email) and a row per student.") from None


def identifier(value: str) -> str:
    """An id, an email or a login compared loosely: NFKC (full-width digits), case folded, trimmed."""
    return unicodedata.normalize("NFKC", value).strip().casefold()


def from_uploads(uploads) -> list[Student]:
    """The roster a Gradescope export carries: every submitter named in its metadata, once each."""
    students, seen = [], set()
    for upload in uploads:
        for person in get(upload, "submitters", None) or []:
            if not isinstance(person, dict):
                continue
            student = Student(str(person.get("sid") or "").strip(), str(person.get("name") or "").strip(),
                              str(person.get("email") or "").strip())
            key = (identifier(student.sid), identifier(student.email))
            if (student.sid or student.email) and key not in seen:
                seen.add(key)
                students.append(student)
    return students


def get(item, name: str, default=None):
    """A field of a plain-data item: a mapping's key or an object's attribute."""
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)
