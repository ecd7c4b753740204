"""A class taken from an LMS and given back to it: Canvas's download names, its gradebook export as the
roster, one student's two uploads under different names, a late upload, a romanised name that matches
no one, a blank and a truncated notebook; then canvas.csv and feedback.zip read back as Canvas reads
them. With the fake grader: fast."""

from __future__ import annotations

import argparse
import csv
import io
import os
import zipfile
from pathlib import Path

import pytest

from fashion_kit import cli
from fashion_kit.classroom import batch, exports, feedback, intake, matching, outputs, report, roster
from fashion_kit.classroom.store import Record

from .classroom_fakes import FakeGrader, fake_autograder, write_notebook
from .test_exports import canvas_import

PATTERN = r"^[^_]+_(late_)?(?P<canvas_id>[0-9]+)_"
# A Canvas gradebook export (Grades > Export) with two assignments, one of them this one.
CANVAS_ROSTER = (
    "Student,ID,SIS User ID,SIS Login ID,Section,Homework 1 (8790),Fashion-MNIST (8801),Current Score\n"
    "    Points Possible,,,,,10.00,13.00,(read only)\n"
    "王小明,12346,B10901002,wangxm,ML,,,\n"
    '"Lee, Anna",12347,B10901003,alee,ML,,,\n'
    '"Smith, John",12351,B10901007,jsmith,ML,,,\n'
    '"Kim, Minjun",12353,B10901009,mkim,ML,,,\n'
    '"Tan, Wei",12355,B10901011,weitan,ML,,,\n'
    "林雅婷,12360,B10901020,linyt,ML,,,\n"
)
HOUR = 3600


def _table(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def _canvas_user_id(file_name: str) -> str | None:
    """The user id Canvas's *Upload submission comments* takes from a file name: the first part, split
    on ``_``, made of digits only (the rest is ignored)."""
    return next((part for part in file_name.split("_") if part.isdigit()), None)


def _class(folder: Path) -> None:
    now = 1_800_000_000
    # 王小明 twice: first as 王小明.ipynb (three questions right), then, after the deadline, again
    # through Canvas (two right). The later one counts, although it scores less.
    first = write_notebook(folder / "王小明.ipynb", "a = 1", "b = 2", "c = 3")
    os.utime(first, (now, now))
    late = write_notebook(folder / "wangxiaoming_LATE_12346_556680_fashion_mnist.ipynb", "a = 1", "b = 2")
    os.utime(late, (now + HOUR, now + HOUR))
    write_notebook(folder / "leeanna_12347_556677_fashion_mnist.ipynb", "a = 1", "b = 2", "c = 3")
    (folder / "smithjohn_12351_556678_fashion_mnist.ipynb").write_bytes(b"")  # blank
    text = (folder / "leeanna_12347_556677_fashion_mnist.ipynb").read_text(encoding="utf-8")
    (folder / "kimminjun_12353_556679_fashion_mnist.ipynb").write_text(text[:len(text) // 2], encoding="utf-8")
    write_notebook(folder / "linyating_fashion_mnist.ipynb", "a = 1")  # renamed by the student: no Canvas id


def _grade(tmp_path: Path, monkeypatch, **config) -> tuple[int, Path]:
    from fashion_kit.classroom import grader

    monkeypatch.setattr(grader, "grade_function", lambda: FakeGrader())
    _class(tmp_path / "class")
    (tmp_path / "roster.csv").write_text("\ufeff" + CANVAS_ROSTER, encoding="utf-8")
    out = tmp_path / "graded"
    code = cli.main(["grade", str(tmp_path / "class"), "--output", str(out), "--roster", str(tmp_path / "roster.csv"),
                     "--autograder", str(fake_autograder(tmp_path / "autograder.zip", **config)),
                     "--match", PATTERN, "--no-sandbox", "--jobs", "1"])
    return code, out


def test_a_canvas_class_goes_back_to_canvas(tmp_path, monkeypatch, capsys):
    code, out = _grade(tmp_path, monkeypatch, late_penalty_percent=10)
    err = capsys.readouterr().err
    assert code == 1, "the blank and the truncated notebooks could not be graded"

    students = {row["name"]: row for row in _table(out / "students.csv")}
    assert len(students) == 6, "one row per student of the roster"
    wang = students["王小明"]
    late_id = "wangxiaoming_LATE_12346_556680_fashion_mnist"
    assert wang["id"] == late_id and wang["total"] == "2", "the later upload counts, not the higher"
    assert wang["uploads"] == f"{late_id} (counted); 王小明", "every upload listed, the counted one marked"
    assert "modification time" in wang["counted_by"]
    assert (wang["late"], wang["late_penalty"]) == ("yes", "0.2")
    assert students["Anna Lee"]["late"] == "" and students["Anna Lee"]["total"] == "3"
    assert students["John Smith"]["status"] == students["Minjun Kim"]["status"] == "invalid"
    assert students["Wei Tan"]["status"] == students["林雅婷"]["status"] == "missing", "a romanised name is no match"

    uploads = {row["id"]: row for row in _table(out / "gradebook.csv")}
    assert (uploads[late_id]["late"], uploads[late_id]["counted"]) == ("yes", "yes")
    assert (uploads["王小明"]["late"], uploads["王小明"]["counted"], uploads["王小明"]["duplicate_of"]) == ("", "no", late_id)

    canvas = (out / "canvas.csv").read_text(encoding="utf-8")
    header = next(csv.reader(io.StringIO(canvas.lstrip("\ufeff"))))
    assert header[-1] == "Fashion-MNIST (8801)", "the roster's own column: Canvas fills it, creates none"
    course = roster.read(tmp_path / "roster.csv")
    grades = canvas_import(canvas, course)
    assert grades == {"12346": "1.8", "12347": "3", "12351": "", "12353": "", "12355": "", "12360": ""}

    with zipfile.ZipFile(out / "feedback.zip") as zf:
        pages = {_canvas_user_id(name): zf.read(name).decode("utf-8") for name in zf.namelist()}
    assert sorted(pages) == sorted(s.canvas_id for s in course), "every page reaches its student in Canvas"
    assert "B10901002" in pages["12346"] and "遲交扣分 / late penalty 10 %: −0.2" in pages["12346"]
    assert "B10901003" in pages["12347"] and "遲交" not in pages["12347"]

    unmatched = _table(out / "unmatched.csv")
    assert [(u["id"], u["closest students"]) for u in unmatched] == [
        ("linyating_fashion_mnist", "林雅婷 (B10901020)")]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Students with several uploads" in page and "林雅婷 (B10901020)" in page
    # Scored: 王小明's counted upload, Anna's and the unmatched one; 王小明's other upload is not counted.
    assert "with scores (stopped runs&#39; partial scores included)</th><td>3<" in page, \
        "the statistics count each student once"
    assert not (out / ".lock").exists(), "nothing of the batch's own is left in the output"
    assert "assignment columns" not in err, "a column was found: no note"


def test_without_a_late_policy_the_lms_gets_the_total(tmp_path, monkeypatch):
    code, out = _grade(tmp_path, monkeypatch)
    grades = canvas_import((out / "canvas.csv").read_text(encoding="utf-8"), roster.read(tmp_path / "roster.csv"))
    assert grades["12346"] == "2"
    assert next(r for r in _table(out / "students.csv") if r["sid"] == "B10901002")["late_penalty"] == ""


# --- which of a student's uploads counts ------------------------------------------------------------

def _upload(upload_id: str, created: float = 0.0, created_by: str = "") -> intake.Upload:
    return intake.Upload(upload_id + ".ipynb", upload_id, created=created, created_by=created_by, id=upload_id)


def _record(upload_id: str, total: float) -> Record:
    return Record(upload_id, upload_id + ".ipynb", "graded", scores={"q1": [total, 3.0]})


@pytest.mark.parametrize("policy, times, counted, how", [
    ("latest", (2.0, 1.0), "a", "the latest, by " + intake.LMS_TIME),
    ("latest", (0.0, 0.0), "b", "the latest, by the order of their names (the uploads carry no time that tells them apart)"),
    ("latest", (5.0, 5.0), "b", "the latest, by the order of their names (the uploads carry no time that tells them apart)"),
    ("highest", (2.0, 1.0), "b", "the highest total (--duplicates highest)"),
])
def test_the_counted_upload_says_how_it_was_chosen(policy, times, counted, how):
    group = [_upload("a", times[0], intake.LMS_TIME if times[0] else ""),
             _upload("b", times[1], intake.LMS_TIME if times[1] else "")]
    rows = [_record("a", 1.0), _record("b", 2.0)]
    chosen, said = batch._counted(group, rows, policy)
    assert (chosen.id, said) == (counted, how)


def test_uploads_matched_to_one_student_are_one_students_whatever_their_names():
    course = [roster.Student("B1", "王小明", canvas_id="12346"), roster.Student("B2", "Anna Lee", canvas_id="12347")]
    uploads = [_upload("王小明"), _upload("wangxm_12346_1_hw"), _upload("leeanna_12347_2_hw")]
    owners = matching.owners(course, uploads, PATTERN)
    assert [[u.id for u in g] for g in batch._same_student(uploads, owners)] == [["wangxm_12346_1_hw", "王小明"]]
    assert batch._same_student(uploads, {}) == [], "without a roster, different names are different students"


# --- lateness --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, late", [
    ("chenmeiling_LATE_12346_556_fashion_mnist.ipynb", True),
    ("sub/leeanna_late_12347_556677_hw.ipynb", True),
    ("leeanna_12347_556677_late_hw.ipynb", False),
    ("late_homework.ipynb", False),
    ("chocolate_12_3_hw.ipynb", False),
])
def test_canvas_marks_a_late_upload_in_its_name(name, late):
    assert matching.is_late({"original_name": name}) is late


def test_a_late_penalty_takes_its_share_off_a_late_upload_only():
    late = {"original_name": "x_LATE_1_2_hw.ipynb", "scores": {"q1": [8.0, 10.0]}}
    on_time = {"original_name": "x_1_2_hw.ipynb", "scores": {"q1": [8.0, 10.0]}}
    assert (exports.lms_total(late, 25), exports.lms_total(on_time, 25), exports.lms_total(late, 0)) == (6.0, 8.0, 8.0)


# --- Canvas's and Moodle's files -------------------------------------------------------------------

def test_canvas_csv_takes_the_assignment_column_named_so_or_the_only_one():
    base = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert exports.canvas_column([*base, "Fashion-MNIST (8801)", "Current Score"], "fashion_mnist") == (
        "Fashion-MNIST (8801)", "")
    assert exports.canvas_column([*base, "HW 3 (8801)", "Current Score"], "fashion_mnist") == ("HW 3 (8801)", "")
    column, why = exports.canvas_column([*base, "HW 1 (1)", "HW 2 (2)"], "fashion_mnist")
    assert column is None and "2 assignment columns" in why and "rename" in why
    assert exports.canvas_column(["First name", "Last name", "ID number", "Email address", "HW (1)"], "hw") == (None, "")


def test_an_ambiguous_canvas_roster_is_said_and_the_assignment_name_used(tmp_path):
    course = [roster.Student("B1", "Anna Lee", canvas_id="1", sortable_name="Lee, Anna")]
    header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "HW 1 (1)", "HW 2 (2)"]
    written = outputs.write(tmp_path, [], ["q1"], assignment="fashion_mnist", possible=1, students=course,
                            roster_header=header)
    assert any(note.startswith("canvas.csv: the roster has 2 assignment columns") for note in written.notes)
    assert (tmp_path / "canvas.csv").read_text(encoding="utf-8").splitlines()[0].endswith(",fashion_mnist")


def test_a_chinese_name_is_its_own_sortable_name_in_canvas_csv():
    moodle = roster.parse("First name,Last name,ID number,Email address,Groups\n小明,王,B1,w@x.edu,No groups\n"
                          "Anna,Lee,B2,a@x.edu,G1\n")
    assert [(s.section, exports.canvas_name(s)) for s in moodle] == [("", "王小明"), ("G1", "Lee, Anna")]


def test_the_feedback_zip_names_a_page_by_canvas_user_id_first():
    numeric_sid = roster.Student("0812345", "Anna Lee", canvas_id="12347")
    assert _canvas_user_id(feedback.canvas_upload_name(numeric_sid)) == "12347"
    assert feedback.canvas_upload_name(roster.Student("B1", "Anna Lee")) == "B1.html"


# --- romanised names -------------------------------------------------------------------------------

MOODLE_ROSTER = ("First name,Last name,ID number,Email address\n美玲,陳,B10901001,chenml@x.edu\n"
                 "小明,王,B10901002,wangxm@x.edu\n美齡,陳,B10901003,chenml2@x.edu\nAnna,Lee,B10901004,alee@x.edu\n")


def test_a_romanised_file_name_suggests_the_chinese_names_it_may_be_and_matches_none():
    course = roster.parse(MOODLE_ROSTER)
    upload = {"id": "x", "original_name": "chenmeiling_LATE_12346_556_fashion_mnist.ipynb"}
    rows, unmatched = matching.match(course, [upload], PATTERN)
    assert unmatched == [upload], "陳美玲 and 陳美齡 read alike: pinyin alone names no one"
    assert {s.name for s in matching.closest(upload, course)} == {"陳美玲", "陳美齡"}
    typo = {"id": "y", "original_name": "wangxiaomin_hw.ipynb"}
    assert [s.name for s in matching.closest(typo, course)] == ["王小明"], "a letter missing is still close"


# --- small things ----------------------------------------------------------------------------------

def test_the_mean_chart_ends_at_100_percent_unless_a_bonus_passes_it():
    assert report.share_axis([40.0, 100.0]) == (100.0, "mean score (% of the question's points)")
    end, label = report.share_axis([40.0, 120.0])
    assert end == 120.0 and "above 100 % with the bonus" in label


def test_a_passed_question_reads_in_both_languages_on_a_chinese_page():
    text = "q1_load_data results: All test cases passed!"
    assert feedback.in_language(text, "zh-TW") == "q1_load_data results: 所有測試都通過了！ / All test cases passed!"
    assert feedback.in_language(text, "en") == text


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_help_is_plain_text():
    helps = {p.prog: p.format_help() for p in _parsers(cli.parser())}
    assert len(helps) > 3
    assert {prog: text for prog, text in helps.items() if "`" in text or "](" in text} == {}


def test_the_late_policy_grades_nothing_again():
    from fashion_kit.settings import Settings

    assert Settings().replace(late_penalty_percent=10).fingerprint() == Settings().fingerprint()
    assert Settings().replace(min_test_accuracy=0.8).fingerprint() != Settings().fingerprint()


def test_the_output_lock_is_gone_when_the_batch_ends_and_still_keeps_a_second_batch_out(tmp_path):
    from fashion_kit.classroom import lock

    with lock.OutputLock(tmp_path):
        assert (tmp_path / ".lock").exists()
        with pytest.raises(lock.Busy):
            lock.OutputLock(tmp_path)
    assert not (tmp_path / ".lock").exists()


def _moodle_import(file_name: str) -> tuple[str, str, str] | None:
    """(participant id, plugin, file name) as Moodle's *Upload multiple feedback files in a zip* reads
    a zip member's path part (assignfeedback_file's importer: split on ``_`` into at most five parts,
    the second the participant id, then the plugin's type and name, the rest the file's name)."""
    info = file_name.split("_", 4)
    if len(info) < 4 or not info[1].isdigit():
        return None
    return info[1], f"{info[2]}_{info[3]}", info[4] if len(info) == 5 else ""


def test_a_moodle_class_gets_a_feedback_zip_moodle_attaches_to_each_participant(tmp_path, monkeypatch):
    """Moodle's *Download all submissions* gives each student a folder named with their participant
    id: the feedback zip names each page so Moodle's import finds that id and its own file plugin."""
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text("First name,Last name,ID number,Email address\n美玲,陳,B10901001,chenml@x.edu\n"
                           "Anna,Lee,B10901003,anna@x.edu\n", encoding="utf-8")
    submissions = tmp_path / "submissions"
    write_notebook(submissions / "陳美玲_2345_assignsubmission_file" / "fashion_mnist.ipynb", "a = 1")
    write_notebook(submissions / "Anna Lee_2346_assignsubmission_file_" / "fashion_mnist.ipynb", "a = 1", "b = 2")
    zip_path = fake_autograder(tmp_path / "ag.zip")
    monkeypatch.setattr("fashion_kit.classroom.grader.grade_function", lambda: FakeGrader())
    out = tmp_path / "graded"
    assert cli.main(["grade", str(submissions), "--roster", str(roster_file), "--output", str(out),
                     "--autograder", str(zip_path)]) == 0
    with zipfile.ZipFile(out / "feedback.zip") as zf:
        read = {_moodle_import(name) for name in zf.namelist()}
    assert read == {("2345", "assignfeedback_file", "B10901001.html"),
                    ("2346", "assignfeedback_file", "B10901003.html")}
