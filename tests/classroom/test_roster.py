"""Rosters as Canvas, Moodle and Gradescope export them (tests/classroom/lms_exports/ holds files shaped exactly
like their exports), and every upload of a class matched to its student."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from fashion_kit.classroom import matching, roster

EXPORTS = Path(__file__).parent / "lms_exports"
CANVAS, CANVAS_NO_SIS_USER_ID, CANVAS_NO_SIS, MOODLE = (
    EXPORTS / "canvas_gradebook.csv", EXPORTS / "canvas_gradebook_no_sis_user_id.csv",
    EXPORTS / "canvas_gradebook_no_sis.csv", EXPORTS / "moodle_participants.csv")
SECTION = "機器學習導論 (2026 秋)"


def upload(id, original_name=None, **extra):
    return {"id": id, "original_name": original_name or f"{id}.ipynb", "status": "graded",
            "scores": {"q1": [1, 1]}, "submitters": [], **extra}


def test_a_canvas_gradebook_export_is_a_roster_without_its_points_row_and_test_student():
    students = roster.read(CANVAS)
    assert len(students) == 11, "Points Possible and Student, Test are no students"
    assert "Test" not in " ".join(s.name for s in students)
    assert students[0] == roster.Student(sid="B10901001", name="Meiling Chen", email="", login="chenml",
                                         canvas_id="12345", section=SECTION, sortable_name="Chen, Meiling")
    assert students[1] == roster.Student("B10901002", "王小明", "", "wangxm", "12346", SECTION, "")
    assert students[5].name == "José García"


@pytest.mark.parametrize("path, sid, login", [(CANVAS_NO_SIS_USER_ID, "", "chenml"), (CANVAS_NO_SIS, "", "")])
def test_a_canvas_export_without_sis_columns_keeps_canvas_ids_apart_from_student_ids(path, sid, login):
    students = roster.read(path)
    assert len(students) == 11
    first = students[0]
    # Canvas's ID is its own user id: never taken for the student id.
    assert (first.canvas_id, first.sid, first.login, first.section) == ("12345", sid, login, SECTION)
    assert first.key == (login or "12345")


def test_a_moodle_participants_export_puts_chinese_family_names_first():
    students = roster.read(MOODLE)
    assert [(s.name, s.sid, s.email, s.section) for s in students] == [
        ("王小明", "B10901002", "wangxm@example.edu.tw", "第一組"),
        ("陳美玲", "B10901001", "chenml@example.edu.tw", "第一組"),
        ("Meiling Chen", "B10901012", "meiling.chen@example.edu.tw", "第二組"),
        ("Anna Lee", "", "anna.lee@example.edu.tw", "第二組"),
        ("歐陽大同", "B10901013", "ouyang@example.edu.tw", ""),  # Moodle's "No groups" is no section
    ]


def test_gradescope_and_plain_rosters():
    gradescope = "First Name,Last Name,SID,Email,Role,Sections\nAnna,Lee,B1,anna@example.edu,Student,A\n"
    assert roster.parse(gradescope) == [roster.Student("B1", "Anna Lee", "anna@example.edu", section="A",
                                                       sortable_name="Lee, Anna")]
    plain = "學號,姓名,電子郵件,帳號\nB2,陳 美玲,mei@example.edu,meichen\n"
    assert roster.parse(plain) == [roster.Student("B2", "陳 美玲", "mei@example.edu", login="meichen")]


# --- a class of uploads named the ways students and LMSs name them ---------------------------------

CANVAS_CLASS = {
    # upload id (as intake makes it from the file name) -> the file handed in
    "chen_meiling_hw3": "chen_meiling_hw3.ipynb",  # family name first, romanised
    "王小明": "王小明.ipynb",  # a Chinese name, no space
    "leeanna_12347_556677_fashion_mnist": "leeanna_12347_556677_fashion_mnist.ipynb",  # Canvas's download name
    "lin_mei": "Lin Mei.ipynb",  # given name first, a space
    "B10901005_fashion_mnist": "B10901005_fashion_mnist.ipynb",  # the SID
    "jose_garcia": "jose_garcia.ipynb",  # no accent in the file name
    "smithjohn_late_12351_667788_fashion_mnist-1": "smithjohn_late_12351_667788_fashion_mnist-1.ipynb",
    "mkim_hw": "mkim_hw.ipynb",  # the SIS login
    "notebook": "notebook.ipynb",  # says nothing; its metadata names the author
    "tan-wei_1": "tan-wei (1).ipynb",
    "untitled": "Untitled.ipynb",  # nobody's
}


def canvas_uploads():
    ups = [upload(i, name) for i, name in CANVAS_CLASS.items()]
    next(u for u in ups if u["id"] == "notebook")["identity"] = ["Jisoo Park"]
    return ups


def test_every_student_of_a_canvas_class_is_matched():
    rows, unmatched = matching.match(roster.read(CANVAS), canvas_uploads())
    got = {r.student.sortable_name or r.student.name: (r.upload or {}).get("id") for r in rows}
    assert got == {
        "Chen, Meiling": "chen_meiling_hw3", "王小明": "王小明", "Lee, Anna": "leeanna_12347_556677_fashion_mnist",
        "Lin, Mei": "lin_mei", "Huang, Jiahao": "B10901005_fashion_mnist", "García, José": "jose_garcia",
        "Smith, John": "smithjohn_late_12351_667788_fashion_mnist-1", "Nguyen, Thi Mai": None,
        "Kim, Minjun": "mkim_hw", "Park, Jisoo": "notebook", "Tan, Wei": "tan-wei_1",
    }
    assert [r.status for r in rows].count(matching.MISSING) == 1
    assert [u["id"] for u in unmatched] == ["untitled"]


def test_a_canvas_class_without_sis_data_is_matched_by_the_download_pattern():
    pattern = matching.compile_pattern(r"^[^_]+_(late_)?(?P<canvas_id>[0-9]+)_")
    students = roster.read(CANVAS_NO_SIS)
    # Canvas names a download <sortable name, word characters only, lower case>_<user id>_<id>_<file>.
    ups = [upload(f"u{i}", "_".join([re.sub(r"\W", "", s.sortable_name or s.name).lower(), s.canvas_id, str(700 + i),
                                     "hw.ipynb"])) for i, s in enumerate(students)]
    ups[6]["original_name"] = ups[6]["original_name"].replace("_12351", "_late_12351")
    rows, unmatched = matching.match(students, ups, pattern)
    assert unmatched == [] and all(r.matched_by == "pattern" for r in rows)
    assert [r.upload["id"] for r in rows] == [u["id"] for u in ups]


def test_a_moodle_class_with_chinese_names_in_either_form():
    students = roster.read(MOODLE)
    ups = [upload("王小明", "王小明.ipynb"), upload("x2", "作業三_陳美玲.ipynb"), upload("x3", "chen_meiling_hw3.ipynb"),
           upload("x4", "anna.lee.ipynb"), upload("x5", "歐陽 大同.ipynb")]
    rows, unmatched = matching.match(students, ups)
    assert [(r.student.name, r.upload["id"]) for r in rows] == [
        ("王小明", "王小明"), ("陳美玲", "x2"), ("Meiling Chen", "x3"), ("Anna Lee", "x4"), ("歐陽大同", "x5")]
    assert unmatched == []


def test_ids_are_found_anywhere_but_never_inside_a_longer_number():
    students = [roster.Student("109010", "A B", "ab@example.edu"), roster.Student("B10901001", "C D", "cd@example.edu")]
    rows, unmatched = matching.match(students, [upload("a", "hw1b10901001.ipynb"), upload("b", "hw_1090101.ipynb"),
                                                upload("c", "HW1-109010.ipynb")])
    assert [(r.upload or {}).get("id") for r in rows] == ["c", "a"]
    assert [u["id"] for u in unmatched] == ["b"]


def test_an_unmatched_upload_lists_the_closest_roster_entries():
    students = roster.read(CANVAS)
    closest = matching.closest(upload("x", "nguyen_thimai_hw.ipynb"), students)
    assert closest and closest[0].sid == "B10901008"
    assert matching.closest(upload("y", "zzzz.ipynb"), students) == []


def test_a_pattern_must_name_what_it_captures():
    with pytest.raises(matching.PatternError, match="named groups"):
        matching.compile_pattern(r"^(\d+)_")
    with pytest.raises(matching.PatternError, match="not a regular expression"):
        matching.compile_pattern(r"(?P<sid>")
    with pytest.raises(matching.PatternError, match="found studentid"):
        matching.compile_pattern(r"(?P<studentid>\d+)")
    assert matching.compile_pattern(None) is None


def test_a_partial_batch_says_pending_not_missing():
    rows, _ = matching.match(roster.read(MOODLE), [upload("王小明")], partial=True)
    assert [r.status for r in rows] == ["graded", "pending", "pending", "pending", "pending"]


# Names in any script, and a few common ones often enough that two students' names fold alike.
names = st.text(st.characters(codec="utf-8", categories=("L", "N", "Zs", "P"), exclude_characters="/\\"),
                min_size=1, max_size=12) | st.sampled_from(["Anna", "Lee", "Li", "王", "小明", "Chen", "Mei Ling", "José"])


def _file(first, last, order, sep):
    return {"first_last": f"{first}{sep}{last}", "last_first": f"{last}{sep}{first}", "sortable": f"{last}, {first}"}[order]


@settings(max_examples=200, deadline=None)
@given(people=st.lists(st.tuples(names, names), min_size=1, max_size=6, unique=True),
       order=st.sampled_from(["first_last", "last_first", "sortable"]), sep=st.sampled_from(["_", " ", "", "-", ", "]))
@example(people=[("Anna", "Lee"), ("Lee", "Anna")], order="first_last", sep="_")
@example(people=[("小明", "王"), ("王", "小明")], order="sortable", sep="")
@example(people=[("0", "ᄀ"), ("ᄀ", "0")], order="first_last", sep="_")
def test_a_file_named_after_a_student_never_matches_someone_else(people, order, sep):
    """Any roster of names, in any script: a file named after one student, in any order and with any
    separator, matches that student or (when names fold alike) nobody; never another student."""
    # As the roster reader records a first/last roster: the name as people write it and "Last, First".
    students = [roster.Student(sid=f"S{i:05d}", name=roster.full_name(first, last), sortable_name=f"{last}, {first}")
                for i, (first, last) in enumerate(people)]
    rows, _ = matching.match(students, [upload("x", f"{_file(*people[0], order, sep)}.ipynb")])
    assert [i for i, r in enumerate(rows) if r.upload is not None] in ([0], [])


latin = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=2, max_size=8)


@settings(max_examples=200, deadline=None)
@given(people=st.lists(st.tuples(latin, latin), min_size=1, max_size=6, unique=True),
       order=st.sampled_from(["first_last", "last_first", "sortable"]), sep=st.sampled_from(["_", " ", "", "-", ", "]))
def test_a_file_named_after_a_distinct_student_matches_that_student(people, order, sep):
    first, last = people[0]
    spelled = (first + last).casefold(), (last + first).casefold()
    others = [(f + l).casefold() for f, l in people[1:]] + [(l + f).casefold() for f, l in people[1:]]
    assume(not any(o in w for o in others for w in spelled))
    students = [roster.Student(sid=f"S{i:05d}", name=roster.full_name(f, l)) for i, (f, l) in enumerate(people)]
    rows, unmatched = matching.match(students, [upload("x", f"{_file(first, last, order, sep)}.ipynb")])
    assert [i for i, r in enumerate(rows) if r.upload is not None] == [0] and unmatched == []


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400))
def test_any_roster_text_reads_or_says_why(text):
    try:
        students = roster.parse(text)
    except roster.RosterError as e:
        assert str(e).startswith("The roster")
    else:
        assert students and all(s.sid or s.email or s.login or s.canvas_id for s in students)


def test_canvas_lastname_firstname_variant():
    text = "LastName,FirstName,ID,SIS User ID,SIS Login ID,Section,HW (1)\n    Points Possible,,,,,,10\n王,小明,7,B1,wxm,A,\n"
    assert roster.parse(text) == [roster.Student("B1", "王小明", "", "wxm", "7", "A", "王, 小明")]


def test_the_patterns_the_readme_and_docs_give_match_canvas_download_names():
    """The walk-through holds as written: its --match example picks the Canvas ID out of Canvas's names."""
    root = Path(__file__).parents[2]
    found = [m for doc in ("README.md", "docs/grading-a-class.md")
             for m in re.findall(r"--match '([^']+)'", (root / doc).read_text(encoding="utf-8"))]
    assert found
    for text in found:
        pattern = matching.compile_pattern(text)
        for name, canvas_id in (("leeanna_12347_556677_hw.ipynb", "12347"),
                                ("smithjohn_late_12351_667788_fashion_mnist-1.ipynb", "12351"),
                                ("王小明_12346_556679_fashion_mnist.ipynb", "12346")):
            assert pattern.search(name).group("canvas_id") == canvas_id


def test_a_notebooks_metadata_never_outweighs_its_file_name():
    """Carol's notebook whose metadata claims Bob's email is Carol's, flagged; Bob is missing."""
    students = [roster.Student("B1", "Carol Chen", "carol.chen@example.edu"),
                roster.Student("B2", "Bob Lee", "bob.lee@example.edu")]
    carol = upload("carol_chen", "carol_chen.ipynb")
    carol["identity"] = ["Carol Chen", "bob.lee@example.edu"]
    rows, unmatched = matching.match(students, [carol])
    assert unmatched == []
    assert [(r.student.name, r.upload and r.upload["id"], r.matched_by) for r in rows] == [
        ("Carol Chen", "carol_chen", "file name"), ("Bob Lee", None, "")]
    assert "Bob Lee" in rows[0].conflict and "bob.lee@example.edu" in rows[0].conflict
    assert rows[1].status == matching.MISSING


def test_a_notebook_whose_name_says_nothing_is_matched_by_its_metadata_without_a_flag():
    students = [roster.Student("B1", "Carol Chen", "carol.chen@example.edu")]
    anonymous = upload("notebook", "notebook.ipynb")
    anonymous["identity"] = ["Carol Chen", "carol.chen@example.edu"]
    rows, _ = matching.match(students, [anonymous])
    assert (rows[0].upload["id"], rows[0].matched_by, rows[0].conflict) == ("notebook", "notebook metadata", "")
