"""What the instructor takes away from a graded class: the roster and its matching, the gradebooks and
the files Canvas and Moodle import, the students' feedback pages, and the class report. All fast:
built from plain records and results.json contents, no grading."""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from markupsafe import escape
from hypothesis import given, settings
from hypothesis import strategies as st

from fashion_kit import contract
from fashion_kit.classroom import exports, feedback, matching, report, resources, roster

from .. import gradescope_spec
from .classroom_fakes import Rec

QUESTIONS = ["q1_load_data", "q2_class_names", "q3_normalize"]
HOSTILE = "<script>alert('x')</script> & \"quotes\""


def upload(id, status="graded", scores=None, submitters=(), original_name="", **extra):
    return {"id": id, "original_name": original_name or f"{id}.ipynb", "status": status, "message": "",
            "scores": scores or {}, "submitters": list(submitters), **extra}


# --- roster ------------------------------------------------------------------------------------------

ROSTER = "\ufeffStudent ID,Name,Email Address,Section\nB10901001,陳小明,ming@example.edu,A\n" \
         "B10901002,Anna Lee,anna@example.edu,A\nB10901003,Bo Wang,bo@example.edu,B\n"


def test_roster_reads_header_variants_bom_and_extra_columns(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER, encoding="utf-8")
    assert roster.read(path) == [
        roster.Student("B10901001", "陳小明", "ming@example.edu", section="A"),
        roster.Student("B10901002", "Anna Lee", "anna@example.edu", section="A"),
        roster.Student("B10901003", "Bo Wang", "bo@example.edu", section="B"),
    ]
    semicolons = "\n\n學號;姓名;電子郵件\nB1;王大同;wang@example.edu\n"
    assert roster.parse(semicolons) == [roster.Student("B1", "王大同", "wang@example.edu")]
    canvas_export = ("Student,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (301)\n"
                     "    Points Possible,,,,,10\n\"Lee, Anna\",1234,B10901002,alee,A,9\n")
    assert roster.parse(canvas_export) == [roster.Student("B10901002", "Anna Lee", "", login="alee", canvas_id="1234",
                                                          section="A", sortable_name="Lee, Anna")]
    split = "SIS User ID,ID,First name,Last name,E-mail\nS77,999,Ada,Lovelace,ada@example.edu\n"
    assert roster.parse(split) == [roster.Student("S77", "Ada Lovelace", "ada@example.edu", sortable_name="Lovelace, Ada")]


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("name,section\nAnna,A\n", "no student id or email column"),
    ("sid,name,email\n", "no students"),
    ("sid,name,email\nB1,Anna,anna@example.edu\nB1,Bo,bo@example.edu\n", "twice"),
    ("sid,name,email\n,Anna,\n", "neither a student id nor an email"),
    ("sid,name,email\nB1,Anna,not-an-address\n", "expected an email address"),
    ("sid,name,email\nB1,\"Anna" + "x" * 200_000 + "\",a@example.edu\n", "not a readable CSV"),
])
def test_a_bad_roster_is_one_clear_error(text, words):
    with pytest.raises(roster.RosterError, match=words):
        roster.parse(text)


def test_a_missing_or_binary_roster_file_is_one_clear_error(tmp_path):
    with pytest.raises(roster.RosterError, match="No roster at"):
        roster.read(tmp_path / "nope.csv")
    (tmp_path / "roster.xlsx").write_bytes(b"PK\x03\x04\xff\xfe\x00\xd8garbage\xff")
    with pytest.raises(roster.RosterError, match="not UTF-8"):
        roster.read(tmp_path / "roster.xlsx")


def test_match_by_sid_email_and_file_name_with_a_missing_student_and_an_unmatched_upload():
    students = roster.parse(ROSTER)
    uploads = [
        upload("submission_1", scores={"q1_load_data": [1, 1]},
               submitters=[{"name": "Ming", "email": "other@example.edu", "sid": "b10901001"}]),  # by SID, any case
        upload("submission_2", scores={"q1_load_data": [0, 1]},
               submitters=[{"name": "A. Lee", "email": "ANNA@example.edu", "sid": ""}]),  # by email
        upload("stranger", original_name="someone_else.ipynb"),
    ]
    rows, unmatched = matching.match(students, uploads)
    assert [(r.student.sid, r.status, r.matched_by, r.upload and r.upload["id"]) for r in rows] == [
        ("B10901001", "graded", "sid", "submission_1"),
        ("B10901002", "graded", "email", "submission_2"),
        ("B10901003", matching.MISSING, "", None),
    ]
    assert [u["id"] for u in unmatched] == ["stranger"]

    by_file = [upload("x1", original_name="HW1_b10901003.ipynb"), upload("x2", original_name="anna_lee.zip"),
               upload("x3", original_name="bo.ipynb")]  # "bo" is too short to be anyone's mailbox by chance
    rows, unmatched = matching.match(students, by_file)
    assert [(r.student.sid, r.matched_by, r.uploads) for r in rows] == [
        ("B10901001", "", []), ("B10901002", "file name", ["x2"]), ("B10901003", "file name", ["x1"])]
    assert [u["id"] for u in unmatched] == ["x3"]


def test_a_file_name_that_fits_two_students_matches_neither_and_reuploads_keep_the_best():
    students = [roster.Student("S100", "Same Name", "a@example.edu"), roster.Student("S200", "Same Name", "b@example.edu")]
    rows, unmatched = matching.match(students, [upload("same_name")])
    assert all(r.status == matching.MISSING for r in rows) and [u["id"] for u in unmatched] == ["same_name"]

    first = upload("s100_v1", scores={"q1_load_data": [1, 1]})
    second = upload("s100_v2", scores={"q1_load_data": [0, 1]})
    rows, _ = matching.match(students, [second, first])
    assert rows[0].upload is first and rows[0].uploads == ["s100_v1", "s100_v2"]


def test_a_group_submission_counts_for_each_member_and_the_export_brings_its_own_roster():
    group = upload("submission_9", scores={"q1_load_data": [1, 1]}, submitters=[
        {"name": "Anna", "email": "anna@example.edu", "sid": "S1"}, {"name": "Bo", "email": "bo@example.edu", "sid": "S2"}])
    own = roster.from_uploads([group, upload("submission_10", submitters=[{"name": "Anna", "email": "anna@example.edu", "sid": "S1"}])])
    assert own == [roster.Student("S1", "Anna", "anna@example.edu"), roster.Student("S2", "Bo", "bo@example.edu")]
    rows, unmatched = matching.match(own, [group])
    assert [r.upload["id"] for r in rows] == ["submission_9", "submission_9"] and unmatched == []


# --- exports -----------------------------------------------------------------------------------------

def _rows(text: str) -> list[list[str]]:
    assert text.startswith(exports.BOM), "Excel needs the byte order mark to read UTF-8"
    return list(csv.reader(io.StringIO(text[1:])))


def matched_class():
    students = roster.parse("sid,name,email\nB1001,\"Lee, Anna\",anna@example.edu\nB1002,=HYPERLINK(\"x\"),bo@example.edu\n"
                            "B1003,Cy,cy@example.edu\n")
    graded = upload("anna", scores={"q1_load_data": [1, 1], "q2_class_names": [0.5, 1], "q3_normalize": [2, 2]},
                    submitters=[{"sid": "B1001"}])
    stopped = upload("bo", status="timeout", scores={"q1_load_data": [1, 1]}, submitters=[{"sid": "B1002"}],
                     message="Stopped after 900 s", duplicate_of="")
    return matching.match(students, [graded, stopped])


def test_the_roster_gradebook_has_a_row_per_student_with_percent_and_missing():
    rows, _ = matched_class()
    table = _rows(exports.roster_gradebook_csv(rows, QUESTIONS, possible=4))
    header = table[0]
    assert header[:3] == ["sid", "name", "email"] and {"percent", "status", "message", "duplicate_of"} <= set(header)
    got = [dict(zip(header, line)) for line in table[1:]]
    assert [(g["sid"], g["total"], g["percent"], g["status"]) for g in got] == [
        ("B1001", "3.5", "87.5", "graded"), ("B1002", "1", "25.0", "timeout"), ("B1003", "", "", "missing")]
    assert got[1]["name"] == "'=HYPERLINK(\"x\")", "a name is never a formula"


def test_canvas_csv_follows_the_gradebook_import_layout():
    rows, _ = matched_class()
    table = _rows(exports.canvas_csv(exports.lms_lines(rows), "Fashion-MNIST", 13).text)
    # Canvas's own export columns, then the assignment; the optional Points Possible row.
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Fashion-MNIST"]
    assert table[1] == ["Points Possible", "", "", "", "", "13"]
    assert table[2:] == [["Anna Lee", "", "B1001", "", "", "3.5"], ["'=HYPERLINK(\"x\")", "", "B1002", "", "", "1"],
                         ["Cy", "", "B1003", "", "", ""]]
    assert all(len(line) == 6 for line in table)


def test_moodle_csv_is_an_identifier_and_a_grade():
    rows, _ = matched_class()
    export = exports.moodle_csv(exports.lms_lines(rows), "Fashion-MNIST")
    # One identifier column: a blank identifier cell would give its grade to the row above's student.
    assert _rows(export.text) == [["ID number", "Fashion-MNIST"], ["B1001", "3.5"], ["B1002", "1"]]
    assert export.why == "identify users by ID number (useridnumber)" and export.left_out == []


def test_without_a_roster_each_submitter_is_a_line():
    group = upload("g", scores={"q1_load_data": [1, 1]}, submitters=[{"name": "A", "sid": "S1", "email": "a@x.edu"},
                                                                    {"name": "B", "sid": "S2", "email": "b@x.edu"}])
    folder = upload("plain_notebook", scores={"q1_load_data": [0, 1]})
    assert [(line.student.name, line.student.sid, line.total) for line in exports.lms_lines(records=[group, folder])] == [
        ("A", "S1", 1.0), ("B", "S2", 1.0)], "a record naming no one gives no line"
    moodle = _rows(exports.moodle_csv(exports.lms_lines(records=[group, folder]), "hw").text)
    assert [line[0] for line in moodle[1:]] == ["S1", "S2"]
    canvas = exports.canvas_csv(exports.lms_lines(records=[folder]), "hw", 4, unnamed=["plain_notebook"])
    assert canvas.text is None and canvas.left_out == ["plain_notebook"], "no row without an identifier"


# --- feedback ----------------------------------------------------------------------------------------

def results_json(challenge: bool = True) -> dict:
    tests = [
        {"name": "Public Tests", "visibility": "visible", "output": "q1_load_data results: All test cases passed!"},
        {"name": "q1_load_data", "score": 1.0, "max_score": 1.0, "visibility": "after_published",
         "output": "q1_load_data results: All test cases passed!"},
        {"name": "q2_class_names", "score": 0.0, "max_score": 1.0, "visibility": "after_published",
         "output": f"class_names[9] 應該是 \"Ankle boot\"。 / Expected class_names[9] == \"Ankle boot\", found {HOSTILE}."},
        {"name": "q3_normalize", "score": 1.0, "max_score": 2.0, "visibility": "after_published",
         "output": "q3_normalize: 一半 / half"},
        {"name": "secret_check", "score": 0.0, "max_score": 0.0, "visibility": "hidden", "output": "NEVER SHOWN"},
    ]
    measured = {"accuracy": 0.8712, "threshold": 0.85, "challenge_accuracy": None, "challenge_threshold": 0.9,
                "challenge_bonus": 0.0}
    out = {"tests": tests, "score": 2.0, "extra_data": {contract.MEASURED_KEY: measured}}
    if challenge:
        measured.update(challenge_accuracy=0.9123, challenge_bonus=1.0)
        tests.append({"name": contract.CHALLENGE_TEST, "score": 1.0, "max_score": 0, "visibility": "visible",
                      "output": "挑戰模型的測試準確率是 0.9123 / Your challenge model scored 0.9123"})
        out["leaderboard"] = [{"name": contract.LEADERBOARD_NAME, "value": 0.9123, "order": "desc"}]
        out["score"] = 3.0
    assert gradescope_spec.problems(out) == [], "the fixture is a valid Gradescope results.json"
    return out


class _Text(HTMLParser):
    """The texts of a page's message blocks, and whether it loads or runs anything."""

    def __init__(self):
        super().__init__()
        self.messages, self.active, self.tags = [], None, []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "pre" and "message" in (dict(attrs).get("class") or ""):
            self.active = []

    def handle_endtag(self, tag):
        if tag == "pre" and self.active is not None:
            self.messages.append("".join(self.active))
            self.active = None

    def handle_data(self, data):
        if self.active is not None:
            self.active.append(data)


def parsed(page: str) -> _Text:
    p = _Text()
    p.feed(page)
    return p


@pytest.mark.parametrize("language", ["zh-TW", "en"])
def test_a_feedback_page_says_what_results_json_says(language):
    res = results_json()
    record = {"id": "anna", "status": "graded", "message": "",
              "submitters": [{"name": HOSTILE, "email": "anna@example.edu", "sid": "B1001"}]}
    page = feedback.page(record, res, language=language, assignment="fashion_mnist")
    shown = parsed(page)
    # Every visible question's message, and nothing else: not Otter's public-checks summary, which
    # would say "All test cases passed!" of a question the grader scored 0.
    visible = [feedback.in_language(t["output"], language) for t in res["tests"]
               if t["visibility"] != "hidden" and t["name"] != feedback.PUBLIC_TESTS]
    assert sorted(shown.messages) == sorted(visible)
    if language == "en":
        assert 'Expected class_names[9] == "Ankle boot", found ' + HOSTILE + "." in shown.messages
        assert not any(feedback._CJK_TEXT.search(m) for m in shown.messages), "an English page is in English"
    else:
        assert [t["output"] for t in res["tests"] if t["name"] == "q2_class_names"][0] in shown.messages
    assert "NEVER SHOWN" not in page and "<script>" not in page
    assert not [t for t, a in shown.tags if t in ("script", "link", "img", "iframe") or "src" in a or "href" in a]
    assert "0.8712" in page and "0.85" in page and "0.9123" in page
    assert "3 / 4" in page, "total as Gradescope shows it (bonus included), out of the questions' points"
    assert "1 / 2" in page  # q3's partial score
    if language == "zh-TW":
        assert "評分回饋 / Grading feedback" in page and "達到門檻 / reached" in page and 'lang="zh-Hant-TW"' in page
    else:
        assert "Grading feedback" in page and "評分回饋" not in page and "達到門檻" not in page


def test_feedback_without_a_challenge_or_results_still_says_what_happened():
    page = feedback.page({"id": "bo", "status": "graded"}, results_json(challenge=False), language="en")
    assert "did not take the challenge" in page
    page = feedback.page({"id": "cy", "status": "invalid", "message": f"cy.ipynb is empty {HOSTILE}"}, None, language="zh-TW")
    assert parsed(page).messages == [f"cy.ipynb is empty {HOSTILE}"] and "沒有評分結果" in page


def test_feedback_pages_and_zip_per_student(tmp_path):
    pages = {sid: feedback.page({"id": sid, "status": "graded"}, results_json(), language=lang)
             for sid, lang in (("anna", "zh-TW"), ("bo", "en"), ("../evil", "en"))}
    folder, bundle = feedback.write(tmp_path, pages)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["_evil.html", "anna.html", "bo.html"], "a hostile id cannot leave the folder"
    with zipfile.ZipFile(bundle) as zf:
        assert sorted(zf.namelist()) == names
        assert zf.read("anna.html").decode("utf-8") == pages["anna"]


def test_the_notebook_language_comes_from_its_metadata(tmp_path):
    nb = tmp_path / "nb.ipynb"
    nb.write_text(json.dumps({"cells": [], "metadata": {"fashion_kit": {"language": "en"}}}), encoding="utf-8")
    assert feedback.language_of(nb) == "en"
    nb.write_text(json.dumps({"cells": [], "metadata": {"fashion_kit": {"language": "<b>klingon"}}}), encoding="utf-8")
    assert feedback.language_of(nb) == "zh-TW"
    assert feedback.language_of(tmp_path / "missing.ipynb") == "zh-TW"


# --- report ------------------------------------------------------------------------------------------

def test_report_counts_partial_scores_lists_tied_hardest_and_the_leaderboard():
    records = [
        upload("a", scores={"q1_load_data": [1, 1], "q2_class_names": [0, 1], "q3_normalize": [0, 2]}, sandbox="bubblewrap"),
        upload("b", status="timeout", scores={"q1_load_data": [1, 1], "q2_class_names": [1, 1], "q3_normalize": [0, 2]},
               sandbox="none", message=HOSTILE),
        upload("c", status="invalid"),
        upload("d", scores={"q1_load_data": [1, 1], "q2_class_names": [0, 1], "q3_normalize": [2, 2]}, counted=False),
    ]
    result = SimpleNamespace(records=records, questions=QUESTIONS, skipped=0, interrupted=False)
    means = report.mean_scores(records, QUESTIONS)
    assert means["q2_class_names"] == (0.5, 1.0), "the stopped run's partial scores count; the duplicate does not"
    assert report.hardest(records, QUESTIONS) == (["q3_normalize"], 0.0)
    tied = [upload("x", scores={"q1_load_data": [0, 1], "q2_class_names": [0, 1], "q3_normalize": [2, 2]})]
    assert report.hardest(tied, QUESTIONS) == (["q1_load_data", "q2_class_names"], 0.0)

    boards = {"a": {"leaderboard": [{"name": contract.LEADERBOARD_NAME, "value": 0.91, "order": "desc"}]},
              "b": {"leaderboard": [{"name": contract.LEADERBOARD_NAME, "value": 0.93, "order": "desc"}]}}
    page = report.html_report(result, results_of=lambda r: boards.get(r["id"]))
    assert [e[0] for e in report.leaderboard_entries(records, lambda r: boards.get(r["id"]))] == ["b", "a"]
    assert "0.9300" in page and "without a sandbox" in page and "<table class=\"sortable\">" in page
    assert HOSTILE not in page and "&lt;script&gt;" in page
    assert page.count("<tr><td") >= 4, "one row per submission in the table"


def test_the_report_shows_hostile_student_text_as_text_everywhere():
    """Ids, file names, submitters, roster names, messages, the notebook's claim of another student and
    the code of similar answers all come from uploads: the report shows them, and runs only its own
    sorting script."""
    h = HOSTILE
    records = [upload(f"a{h}", original_name=f"{h}.ipynb", message=h, submitters=[{"name": h, "sid": h}],
                      scores={"q1_load_data": [1, 1]}, sandbox="none", counted_by=h),
               upload(f"b{h}", status="invalid", message=h)]
    student = SimpleNamespace(label=f"Ann {h}", email=h, section=h)
    rows = [SimpleNamespace(student=student, upload=None, uploads=[], conflict="", status="missing"),
            SimpleNamespace(student=student, upload=records[0], uploads=[f"a{h}", f"b{h}"], conflict=h)]
    written = SimpleNamespace(rows=rows, unmatched=[records[1]], closest={f"b{h}": [student]})
    cell = SimpleNamespace(label=h, similarity=1.0, code_a=h, code_b=h)
    pair = SimpleNamespace(a=f"a{h}", b=f"b{h}", similarity=1.0, cells=[cell])
    result = SimpleNamespace(records=records, questions=QUESTIONS[:1], similar=[pair])
    boards = {f"a{h}": {"leaderboard": [{"name": contract.LEADERBOARD_NAME, "value": 0.9}]}}
    page = report.html_report(result, title=h, results_of=lambda r: boards.get(r["id"]), roster=written)
    shown = parsed(page)
    assert h not in page and page.count("<script>") == 1, "only the report's own sorting script"
    assert [t for t, _ in shown.tags if t in ("script", "img")] == ["img", "img", "script"]
    assert all(a.get("src", "").startswith("data:image/png;base64,") for t, a in shown.tags if t == "img")
    assert page.count(str(escape(h))) >= 12, "each hostile text is on the page, escaped"


def test_default_jobs_follows_cores_and_memory():
    per_job = resources.GRADING_PEAK_MB * resources.HEADROOM
    assert resources.default_jobs(cores=16, available_mb=64 * 1024) == min(16, int(64 * 1024 // per_job))
    assert resources.default_jobs(cores=2, available_mb=24 * 1024) == 2
    assert resources.default_jobs(cores=16, available_mb=per_job * 3.5) == 3
    assert resources.default_jobs(cores=8, available_mb=100) == 1, "always at least one"
    assert resources.default_jobs() >= 1


def test_the_counted_upload_is_the_students_grade_even_if_a_duplicate_scored_more():
    students = [roster.Student("S100", "Anna", "anna@example.edu")]
    counted = upload("s100_a", scores={"q1_load_data": [0, 1]}, submitters=[{"sid": "S100"}])
    duplicate = upload("s100_b", scores={"q1_load_data": [1, 1]}, submitters=[{"sid": "S100"}],
                       counted=False, duplicate_of="s100_a")
    rows, _ = matching.match(students, [duplicate, counted])
    assert rows[0].upload is counted and rows[0].uploads == ["s100_a", "s100_b"]


def test_a_page_without_results_shows_the_batch_message_in_the_notebook_language():
    record = {"id": "cy", "status": "invalid", "message": "cy.ipynb is empty.", "message_zh": "cy.ipynb 是空的。"}
    assert parsed(feedback.page(record, None, language="zh-TW")).messages == ["cy.ipynb 是空的。", "cy.ipynb is empty."]
    assert parsed(feedback.page(record, None, language="en")).messages == ["cy.ipynb is empty."]


def test_outputs_writes_every_takeaway_file(tmp_path):
    from fashion_kit.classroom import outputs

    students = roster.parse(ROSTER)
    records = [Rec("submission_1", scores={"q1_load_data": [1, 1]}, submitters=[{"name": "M", "email": "", "sid": "B10901001"}]),
               Rec("stray", original_name="stray.ipynb")]
    res = {"submission_1": results_json()}
    written = outputs.write(tmp_path, records, QUESTIONS, assignment="fashion_mnist", possible=4, students=students,
                            results_of=lambda r: res.get(r.id), language_of=lambda r: "en")
    names = {p.name for p in written.files}
    assert names == {"students.csv", "unmatched.csv", "canvas.csv", "moodle.csv", "feedback", "feedback.zip"}
    table = _rows((tmp_path / "students.csv").read_text(encoding="utf-8"))
    by_sid = {row[0]: dict(zip(table[0], row)) for row in table[1:]}
    assert by_sid["B10901002"]["status"] == "missing" and by_sid["B10901001"]["id"] == "submission_1"
    assert [row[0] for row in _rows((tmp_path / "unmatched.csv").read_text(encoding="utf-8"))[1:]] == ["stray"]
    assert [line[2] for line in _rows((tmp_path / "canvas.csv").read_text(encoding="utf-8"))[2:]] == [
        "B10901001", "B10901002", "B10901003"]
    with zipfile.ZipFile(tmp_path / "feedback.zip") as zf:
        # One page per student of the roster, named by SID; the stray upload is no one's yet.
        assert sorted(zf.namelist()) == ["B10901001.html", "B10901002.html", "B10901003.html"]
        assert "Expected class_names[9]" in zf.read("B10901001.html").decode("utf-8")
    assert (tmp_path / "feedback" / "unmatched" / "stray.html").is_file()


def test_ignored_files_are_nobodys_submission():
    records = [upload("anna", scores={"q1_load_data": [1, 1]}), upload("README.md", status="ignored")]
    result = SimpleNamespace(records=records, questions=QUESTIONS, skipped=0, interrupted=False)
    page = report.html_report(result)
    assert "other files, ignored" in page and "<tr><th>failed to grade</th><td>0</td></tr>" in page


def test_outputs_skip_ignored_files(tmp_path):
    from fashion_kit.classroom import outputs

    records = [Rec("anna", scores={"q1_load_data": [1, 1]}), Rec("README.md", status="ignored")]
    written = outputs.write(tmp_path, records, QUESTIONS, assignment="hw", possible=4)
    assert sorted(p.name for p in (tmp_path / "feedback").iterdir()) == ["anna.html"]
    # Without a roster or submitters nobody can be named: no LMS file, and a note saying why.
    assert not (tmp_path / "canvas.csv").exists() and not (tmp_path / "moodle.csv").exists()
    assert any(n.startswith("canvas.csv not written") for n in written.notes), written.notes


json_values = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=20)
test_boxes = st.lists(st.fixed_dictionaries({"name": json_values, "score": json_values, "max_score": json_values,
                                              "output": json_values, "visibility": json_values}), max_size=5)


@settings(max_examples=150, deadline=None)
@given(tests=test_boxes | json_values, extra=json_values, score=json_values)
def test_any_results_json_content_gives_a_page_and_never_unescaped_text(tests, extra, score):
    page = feedback.page({"id": "x", "status": "graded"}, {"tests": tests, "score": score, "extra_data": extra},
                         language="zh-TW")
    shown = parsed(page)
    assert not [t for t, _ in shown.tags if t in ("script", "img", "iframe", "object", "link")]


def test_for_batch_reads_the_roster_points_and_results_from_disk(tmp_path):
    from fashion_kit import settings as settings_module
    from fashion_kit.classroom import outputs

    zip_path = tmp_path / "autograder.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        for q, p in (("q1_load_data", 1), ("q2_class_names", 1), ("q3_normalize", 2)):
            zf.writestr(f"tests/{q}.py", f'name = "{q}"\npoints = {p}\n')
    out = tmp_path / "graded"
    (out / "submission_1").mkdir(parents=True)
    (out / "submission_1" / "results.json").write_text(json.dumps(results_json()), encoding="utf-8")
    records = [Rec("submission_1", scores={"q1_load_data": [1, 1]}, language="en",
                   submitters=[{"name": "Ming", "email": "ming@example.edu", "sid": "B10901001"}])]
    result = SimpleNamespace(records=records, questions=QUESTIONS)
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text(ROSTER, encoding="utf-8")

    written = outputs.for_batch(out, result, zip_path, settings_module.Settings(), roster_file)
    assert [r.status for r in written.rows] == ["graded", "missing", "missing"]
    assert _rows((out / "canvas.csv").read_text(encoding="utf-8"))[1][-1] == "4", "points from the zip's questions"
    page = (out / "feedback" / "B10901001.html").read_text(encoding="utf-8")
    assert "Expected class_names[9]" in page and "評分回饋" not in page, "results.json from disk, the record's language"

    own = outputs.for_batch(out, result, zip_path, settings_module.Settings())  # the export's own roster
    assert [(r.student.sid, r.status) for r in own.rows] == [("B10901001", "graded")]
    with pytest.raises(roster.RosterError):
        outputs.for_batch(out, result, zip_path, settings_module.Settings(), tmp_path / "missing.csv")


@pytest.mark.browser
def test_the_report_table_sorts_by_a_clicked_column(tmp_path):
    """The inline script, run by a real browser (Debian's chromium, driven by Playwright)."""
    from pathlib import Path

    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        message = "needs Debian's chromium at /usr/bin/chromium: apt-get update && apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    records = [upload(f"s{i}", scores={"q1_load_data": [a, 1], "q2_class_names": [b, 1]})
               for i, (a, b) in enumerate([(1, 0.5), (0, 1), (1, 1), (0, 0)], start=1)]
    records.append(upload("s10", status="invalid"))
    path = tmp_path / "report.html"
    path.write_text(report.html_report(SimpleNamespace(records=records, questions=QUESTIONS[:2])), encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())

        def column(i):
            return page.eval_on_selector_all("table.sortable tbody tr", f"rows => rows.map(r => r.cells[{i}].textContent)")

        page.click("table.sortable th:nth-child(7)")  # total: ascending, blanks first
        assert column(6) == ["", "0", "1", "1.5", "2"]
        page.click("table.sortable th:nth-child(7)")
        assert column(0) == ["s3", "s1", "s2", "s4", "s10"]
        page.click("table.sortable th:nth-child(1)")  # ids in natural order
        assert column(0) == ["s1", "s2", "s3", "s4", "s10"]
        browser.close()
    assert errors == []


def test_for_batch_after_a_real_batch_with_a_fake_grader(tmp_path):
    """The batch's own records and result (intake, ignored files, ids), graded by a stand-in."""
    from fashion_kit import settings as settings_module
    from fashion_kit.classroom import batch, outputs

    from .classroom_fakes import FakeGrader, fake_autograder, write_notebook

    source = tmp_path / "class"
    write_notebook(source / "B10901001.ipynb", "a = 1", "b = 2", "c = 3")
    write_notebook(source / "anna_lee.ipynb", "a = 1")
    write_notebook(source / "who_is_this.ipynb", "a = 1", "b = 2")
    (source / "README.md").write_text("not a submission", encoding="utf-8")
    zip_path = fake_autograder(tmp_path / "autograder.zip")
    out = tmp_path / "graded"
    result = batch.grade_class(source, out, zip_path, grade_fn=FakeGrader(), jobs=1, use_watchdog=False)
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text(ROSTER, encoding="utf-8")

    written = outputs.for_batch(out, result, zip_path, settings_module.Settings(), roster_file)
    assert [(r.student.sid, r.status, r.matched_by) for r in written.rows] == [
        ("B10901001", "graded", "file name"), ("B10901002", "graded", "file name"), ("B10901003", "missing", "")]
    assert [str(roster.get(u, "id")) for u in written.unmatched] == ["who_is_this"]
    canvas = _rows((out / "canvas.csv").read_text(encoding="utf-8"))
    assert canvas[1][-1] == "3" and [line[-1] for line in canvas[2:]] == ["3", "1", ""]
    pages = sorted(p.name for p in (out / "feedback").glob("*.html"))
    assert pages == ["B10901001.html", "B10901002.html", "B10901003.html"], "a page per student; the README gets none"
    assert sorted(p.name for p in (out / "feedback" / "unmatched").iterdir()) == ["who_is_this.html"]


def test_a_utf16_roster_with_its_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "roster.txt"
    path.write_bytes("學號\t姓名\t電子郵件\nB1001\t王大同\twang@example.edu\n".encode("utf-16"))
    assert roster.read(path) == [roster.Student("B1001", "王大同", "wang@example.edu")]
    (tmp_path / "big5.csv").write_bytes("學號,姓名,email\nB1001,王大同,wang@example.edu\n".encode("big5"))
    with pytest.raises(roster.RosterError, match="not UTF-8"):
        roster.read(tmp_path / "big5.csv")


def test_fashion_kit_grade_writes_the_take_away_files_with_the_roster(tmp_path, monkeypatch):
    """The command itself, roster in hand: students.csv with the missing student, the LMS files, a
    feedback page per upload, and no id that could be one of those names."""
    from fashion_kit import cli
    from fashion_kit.classroom import grader

    from .classroom_fakes import FakeGrader, fake_autograder, write_notebook

    monkeypatch.setattr(grader, "grade_function", lambda: FakeGrader())
    source = tmp_path / "class"
    write_notebook(source / "B10901001.ipynb", "a = 1", "b = 2", "c = 3")
    write_notebook(source / "canvas.csv.ipynb", "a = 1")
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text(ROSTER, encoding="utf-8")
    out = tmp_path / "graded"
    code = cli.main(["grade", str(source), "--output", str(out), "--autograder",
                     str(fake_autograder(tmp_path / "autograder.zip")), "--roster", str(roster_file),
                     "--no-sandbox", "--jobs", "1"])
    assert code == 0
    students = (out / "students.csv").read_text(encoding="utf-8-sig")
    assert "B10901003" in students and "missing" in students
    assert (out / "canvas.csv").is_file() and (out / "moodle.csv").is_file() and (out / "feedback.zip").is_file()
    assert (out / "canvas.csv").read_text(encoding="utf-8-sig").count("\n") >= 4, "header, points and a row each"
    pages = sorted(p.name for p in (out / "feedback").glob("*.html"))
    assert pages == ["B10901001.html", "B10901002.html", "B10901003.html"], pages
    assert [p.name for p in (out / "feedback" / "unmatched").iterdir()] == ["submission_canvas.csv.html"]


def test_fashion_kit_grade_refuses_an_unreadable_roster_before_grading(tmp_path, monkeypatch):
    from fashion_kit import cli
    from fashion_kit.classroom import grader

    from .classroom_fakes import fake_autograder, write_notebook

    def never(*args, **kwargs):
        raise AssertionError("nothing may be graded with a broken roster")

    monkeypatch.setattr(grader, "grade_function", lambda: never)
    write_notebook(tmp_path / "class" / "a.ipynb", "a = 1")
    (tmp_path / "roster.csv").write_bytes("學號,姓名\nB1,王\n".encode("big5"))
    code = cli.main(["grade", str(tmp_path / "class"), "--output", str(tmp_path / "out"), "--autograder",
                     str(fake_autograder(tmp_path / "autograder.zip")), "--roster", str(tmp_path / "roster.csv"),
                     "--no-sandbox"])
    assert code == 2
