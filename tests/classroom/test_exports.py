"""canvas.csv and moodle.csv as their importers read them, and what a partial batch writes.

``canvas_import`` and ``moodle_import`` follow the matching rules of Canvas's
``lib/gradebook_importer.rb`` and Moodle's ``grade/import/csv/classes/load_data.php``: the header
checks, the rows skipped, the order identifiers are tried in, and Moodle's blank identifier cell that
keeps the previous row's user."""

from __future__ import annotations

import csv
import functools
import io
import re
import zipfile

import pytest

from fashion_kit.classroom import exports, matching, outputs, roster

from .classroom_fakes import Rec as Record
from .test_roster import CANVAS, CANVAS_CLASS, CANVAS_NO_SIS, CANVAS_NO_SIS_USER_ID, MOODLE, canvas_uploads

QUESTIONS = ["q1", "q2", "q3"]


def _rows(text: str) -> list[list[str]]:
    assert text.startswith(exports.BOM)
    return list(csv.reader(io.StringIO(text[1:])))


def canvas_import(text: str, course: list[roster.Student]) -> dict[str, str]:
    """Canvas user id -> the grade a Canvas gradebook import gives them, as gradebook_importer.rb reads."""
    rows = _rows(text)
    header = rows[0]
    assert len(header) > 3 and "Student" in header[0] and "ID" in header[1], "Canvas: Invalid header row"
    columns = 3
    sis_user = sis_login = None
    if re.search(r"SIS\s+Login\s+ID", header[2]):
        sis_login, columns = 2, 4
    elif re.search(r"SIS\s+User\s+ID", header[2]) and re.search(r"SIS\s+Login\s+ID", header[3]):
        sis_user, sis_login, columns = 2, 3, 5
    assert "Section" in header[columns - 1], "Canvas: Invalid header row (no Section before the assignments)"
    grades = {}
    for row in rows[1:]:
        if "Points Possible" in row[0] or all(re.match(r"^\s*(Muted|Manual Posting.*)?\s*$", c, re.I) for c in row):
            continue
        by = {s.canvas_id: s for s in course}
        student = by.get(row[1]) if row[1] else None
        if student is None and sis_user is not None and row[sis_user]:
            student = next((s for s in course if s.sid == row[sis_user]), None)
        if student is None and sis_login is not None and row[sis_login]:
            student = next((s for s in course if s.login == row[sis_login]), None)
        if student is None:
            student = next((s for s in course if row[0] in (s.name, s.sortable_name)), None)
        assert student is not None, f"Canvas would create a new, unknown student for {row}"
        assert student.canvas_id not in grades, f"two rows for {student}"
        grades[student.canvas_id] = row[columns]
    return grades


def moodle_import(text: str, users: list[roster.Student], field: str) -> dict[str, str]:
    """Moodle user -> grade, as load_data.php maps a column to ``field`` (sid, email or login): a blank
    identifier keeps the previous row's user."""
    rows = _rows(text)
    current, grades = None, {}
    for row in rows[1:]:
        if row[0]:
            matches = [u for u in users if getattr(u, field) == row[0]]
            assert matches, f"Moodle: no user with {field} {row[0]!r}: the import stops"
            current = matches[0]
        assert current is not None, "Moodle: a grade with no user"
        grades[current.key] = row[1]
    return grades


def graded(uploads):
    for i, u in enumerate(uploads):
        u["scores"] = {"q1": [1, 1], "q2": [i % 2, 1], "q3": [0, 1]}
    return uploads


@pytest.mark.parametrize("path", [CANVAS, CANVAS_NO_SIS_USER_ID, CANVAS_NO_SIS])
def test_canvas_csv_from_a_canvas_roster_gives_every_student_their_grade(path):
    course = roster.read(path)
    pattern = matching.compile_pattern(r"^[^_]+_(late_)?(?P<canvas_id>[0-9]+)_")
    rows, _ = matching.match(course, graded(canvas_uploads()), pattern)
    export = exports.canvas_csv(exports.lms_lines(rows), "Fashion-MNIST", 13)
    table = _rows(export.text)
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Fashion-MNIST"]
    assert table[1] == ["Points Possible", "", "", "", "", "13"]
    # Canvas's own user id in ID; SIS User ID only when the export had one; login and section carried over.
    lee = next(line for line in table if line[1] == "12347")
    assert lee[0] == "Lee, Anna" and lee[4] == "機器學習導論 (2026 秋)"
    assert lee[2] == ("B10901003" if path == CANVAS else "") and lee[3] == ("" if path == CANVAS_NO_SIS else "alee")
    got = canvas_import(export.text, course)
    expected = {r.student.canvas_id: f"{sum(s for s, _ in r.upload['scores'].values()):g}" if r.upload else ""
                for r in rows}
    assert got == expected and len(got) == 11 and export.left_out == []
    # The same roster for Moodle: a Canvas export has no email; the identifier is what it does have.
    moodle = exports.moodle_csv(exports.lms_lines(rows), "Fashion-MNIST")
    header = {CANVAS: "ID number", CANVAS_NO_SIS_USER_ID: "Username", CANVAS_NO_SIS: None}[path]
    if header is None:
        assert moodle.text is None and "no student has an ID number, an email address or a username" in moodle.why
    else:
        assert _rows(moodle.text)[0] == [header, "Fashion-MNIST"] and all(line[0] for line in _rows(moodle.text)[1:])


def test_canvas_csv_from_a_registrar_roster_uses_the_sis_user_id():
    course = roster.parse("student id,name,email\nB10901,Anna Lee,anna@example.edu\n")
    rows, _ = matching.match(course, graded([{"id": "B10901_hw", "original_name": "B10901_hw.ipynb", "status": "graded"}]))
    table = _rows(exports.canvas_csv(exports.lms_lines(rows), "hw", 13).text)
    assert table[2] == ["Anna Lee", "", "B10901", "", "", "1"]


def test_moodle_csv_has_one_identifier_never_blank():
    users = roster.read(MOODLE)  # Anna Lee has no ID number
    ups = graded([{"id": n, "original_name": f"{n}.ipynb", "status": "graded"}
                  for n in ("王小明", "作業三_陳美玲", "chen_meiling_hw3", "anna.lee", "歐陽大同")])
    rows, unmatched = matching.match(users, ups)
    assert unmatched == []
    export = exports.moodle_csv(exports.lms_lines(rows), "Fashion-MNIST")
    table = _rows(export.text)
    # Every graded student has an email, one has no ID number: the email identifies them all.
    assert table[0] == ["Email address", "Fashion-MNIST"] and all(line[0] for line in table[1:])
    assert export.why == "identify users by Email address (useremail)" and export.left_out == []
    got = moodle_import(export.text, users, "email")
    assert got == {r.student.key: f"{sum(s for s, _ in r.upload['scores'].values()):g}" for r in rows}


def test_moodle_csv_leaves_out_a_student_it_cannot_name_and_says_so():
    users = [roster.Student("B1", "A", "a@example.edu"), roster.Student("B2", "B", ""), roster.Student("B3", "C", "")]
    lines = [exports.Line(u, 1.0) for u in users] + [exports.Line(roster.Student("", "D", "d@example.edu"), 2.0)]
    export = exports.moodle_csv(lines, "hw")
    assert _rows(export.text) == [["ID number", "hw"], ["B1", "1"], ["B2", "1"], ["B3", "1"]]
    assert export.left_out == ["D (d@example.edu)"]
    assert exports.moodle_csv([exports.Line(u, None) for u in users], "hw").text is None, "no total, no file"


Rec = functools.partial(Record, scores={"q1": [1.0, 1.0]})  # a graded upload of one question


def test_a_partial_batch_writes_partial_files_and_no_lms_file(tmp_path):
    course = roster.read(MOODLE)
    # An earlier, finished run left final files: they must not pass for this run's.
    for name in ("canvas.csv", "moodle.csv", "students.csv", "unmatched.csv", "feedback.zip"):
        (tmp_path / name).write_text("old", encoding="utf-8")
    written = outputs.write(tmp_path, [Rec("王小明")], QUESTIONS, assignment="hw", possible=3, students=course,
                            pending=["chen_meiling_hw3"])
    assert written.partial and any("not finished" in n for n in written.notes)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["students.partial.csv", "unmatched.partial.csv"]
    table = _rows((tmp_path / "students.partial.csv").read_text(encoding="utf-8"))
    status = {line[1]: line[table[0].index("status")] for line in table[1:]}
    assert status == {"王小明": "graded", "陳美玲": "pending", "Meiling Chen": "pending", "Anna Lee": "pending",
                      "歐陽大同": "pending"}

    finished = outputs.write(tmp_path, [Rec("王小明")], QUESTIONS, assignment="hw", possible=3, students=course)
    assert not finished.partial and not (tmp_path / "students.partial.csv").exists()
    assert {"students.csv", "canvas.csv", "moodle.csv", "feedback.zip"} <= {p.name for p in tmp_path.iterdir()}


def _canvas_user_id(file_name: str) -> str | None:
    """The user id Canvas's *Upload submission comments* reads from a file name: the first part,
    split on ``_``, made of digits only."""
    return next((part for part in file_name.split("_") if part.isdigit()), None)


def test_feedback_zip_holds_one_page_per_student_of_the_roster_named_for_canvas(tmp_path):
    course = roster.read(CANVAS)
    records = [Rec(u["id"], original_name=u["original_name"], identity=u.get("identity", []))
               for u in canvas_uploads()]
    records.append(Rec("chen_meiling_hw3_old", original_name="chen_meiling_hw3_old.ipynb", counted=False,
                       duplicate_of="chen_meiling_hw3", scores={"q1": [0.0, 1.0]}))
    written = outputs.write(tmp_path, records, QUESTIONS, assignment="hw", possible=3, students=course)
    with zipfile.ZipFile(tmp_path / "feedback.zip") as zf:
        names = sorted(zf.namelist())
        assert len(names) == len(course), "one page per student, the superseded upload none"
        assert {_canvas_user_id(n): n for n in names} == {s.canvas_id: f"{s.canvas_id}_{s.sid}.html" for s in course}
        page = zf.read("12345_B10901001.html").decode("utf-8")
    assert (tmp_path / "feedback" / "B10901001.html").is_file(), "the folder's pages stay named by SID"
    assert "Meiling Chen" in page and "B10901001" in page and "chen_meiling_hw3<" in page
    assert [u.id for u in written.unmatched] == ["untitled"]
    assert (tmp_path / "feedback" / "unmatched" / "untitled.html").is_file()
    unmatched = _rows((tmp_path / "unmatched.csv").read_text(encoding="utf-8"))
    assert unmatched[0][-1] == "closest students" and unmatched[1][0] == "untitled"


# --- the command, as an instructor runs it -----------------------------------------------------------

def canvas_class(folder):
    """The Canvas class's uploads as files (a README beside them), each with as many cells as points."""
    import json

    from .classroom_fakes import write_notebook

    for i, (upload_id, name) in enumerate(CANVAS_CLASS.items()):
        path = write_notebook(folder / name, *[f"x = {k}" for k in range(1 + i % 3)])
        if upload_id == "notebook":
            nb = json.loads(path.read_text(encoding="utf-8"))
            nb["metadata"]["authors"] = [{"name": "Jisoo Park"}]
            path.write_text(json.dumps(nb), encoding="utf-8")
    (folder / "README.md").write_text("uploads downloaded from Canvas", encoding="utf-8")
    return folder


def grade(tmp_path, monkeypatch, fake, *extra):
    from fashion_kit import cli
    from fashion_kit.classroom import grader

    from .classroom_fakes import fake_autograder

    monkeypatch.setattr(grader, "grade_function", lambda: fake)
    out = tmp_path / "graded"
    code = cli.main(["grade", str(tmp_path / "class"), "--output", str(out), "--autograder",
                     str(fake_autograder(tmp_path / "autograder.zip")), "--roster", str(CANVAS), "--no-sandbox",
                     "--jobs", "1", *extra])
    return code, out


def test_fashion_kit_grade_a_canvas_class_every_student_matched(tmp_path, monkeypatch, capsys):
    from .classroom_fakes import FakeGrader

    canvas_class(tmp_path / "class")
    code, out = grade(tmp_path, monkeypatch, FakeGrader(), "--match", r"^[^_]+_(late_)?(?P<canvas_id>[0-9]+)_")
    assert code == 0
    err = capsys.readouterr().err
    # Not a terminal: a plain line per grading, with the time left from the gradings measured.
    assert "[1/11] " in err and "[11/11] " in err and "all graded" in err, err
    table = _rows((out / "students.csv").read_text(encoding="utf-8"))
    status = {line[1]: line[table[0].index("status")] for line in table[1:]}
    assert status.pop("Thi Mai Nguyen") == "missing" and set(status.values()) == {"graded"} and len(status) == 10
    by = {line[1]: line[table[0].index("matched_by")] for line in table[1:]}
    assert by["Anna Lee"] == by["John Smith"] == "pattern" and by["Jisoo Park"] == "notebook metadata"
    got = canvas_import((out / "canvas.csv").read_text(encoding="utf-8"), roster.read(CANVAS))
    assert len(got) == 11 and got["12352"] == "" and all(got[k] for k in got if k != "12352")
    with zipfile.ZipFile(out / "feedback.zip") as zf:
        assert sorted(_canvas_user_id(n) for n in zf.namelist()) == sorted(s.canvas_id for s in roster.read(CANVAS))
    assert (out / "王小明").is_dir(), "a Chinese file name gives a readable id"
    report = (out / "report.html").read_text(encoding="utf-8")
    assert report.index("Students without an upload") < report.index("Every submission")
    assert "Untitled.ipynb" in report and "Thi Mai Nguyen (B10901008)" in report
    assert "moodle.csv: identify users by ID number (useridnumber)." in err
    assert "10 submissions" not in err and "11 submissions: 11 graded" in err, "a README is no submission"


def test_an_interrupted_batch_says_its_outputs_are_partial(tmp_path, monkeypatch, capsys):
    import os
    import signal

    from .classroom_fakes import FakeGrader

    class StoppedAtTheSecond(FakeGrader):
        def __call__(self, *args, **kwargs):
            outcome = super().__call__(*args, **kwargs)
            if len(self.calls) == 2:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, during the second grading
            return outcome

    canvas_class(tmp_path / "class")
    code, out = grade(tmp_path, monkeypatch, StoppedAtTheSecond())
    assert code == 130
    names = {p.name for p in out.iterdir()}
    assert {"students.partial.csv", "unmatched.partial.csv"} <= names
    assert not names & {"canvas.csv", "moodle.csv", "feedback.zip", "students.csv"}
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "Partial results" in report
    assert "The batch is not finished" in capsys.readouterr().err
    table = _rows((out / "students.partial.csv").read_text(encoding="utf-8"))
    assert "pending" in [line[table[0].index("status")] for line in table[1:]]

    code, out = grade(tmp_path, monkeypatch, FakeGrader())  # run again: it finishes, and the files are final
    assert code == 0 and (out / "canvas.csv").is_file() and not (out / "students.partial.csv").exists()


def test_without_a_roster_nothing_unidentifiable_is_written(tmp_path, monkeypatch, capsys):
    from fashion_kit import cli
    from fashion_kit.classroom import grader

    from .classroom_fakes import FakeGrader, fake_autograder, write_notebook

    monkeypatch.setattr(grader, "grade_function", lambda: FakeGrader())
    write_notebook(tmp_path / "class" / "a.ipynb", "x = 1")
    code = cli.main(["grade", str(tmp_path / "class"), "--output", str(tmp_path / "out"), "--autograder",
                     str(fake_autograder(tmp_path / "autograder.zip")), "--no-sandbox", "--jobs", "1"])
    assert code == 0 and not (tmp_path / "out" / "canvas.csv").exists()
    assert "canvas.csv not written: no student has a Canvas ID" in capsys.readouterr().err


def test_a_bad_pattern_stops_before_grading(tmp_path, monkeypatch, capsys):
    from .classroom_fakes import FakeGrader

    canvas_class(tmp_path / "class")
    fake = FakeGrader()
    code, _ = grade(tmp_path, monkeypatch, fake, "--match", r"^(\d+)_")
    assert code == 2 and fake.calls == [] and "named groups" in capsys.readouterr().err
