"""A student's feedback page: who it is for, in the notebook's language, nothing contradictory, and
what to do when nothing could be graded."""

from __future__ import annotations

import pytest
from markupsafe import escape  # how the pages' templates escape text

from fashion_kit import contract
from fashion_kit.classroom import feedback, roster

from .test_outputs import parsed

STUDENT = roster.Student("B10901002", "王小明", "wangxm@example.edu.tw")
BILINGUAL = "q9_accuracy：準確率 0.8123 未達門檻 0.85。 / q9_accuracy: accuracy 0.8123 is below the threshold 0.85."


def results(q9_score=0.0) -> dict:
    return {"score": 1.0 + q9_score, "tests": [
        {"name": feedback.PUBLIC_TESTS, "visibility": "visible",
         "output": "q1_load_data results: All test cases passed!\nq9_accuracy results: All test cases passed!"},
        {"name": "q1_load_data", "score": 1.0, "max_score": 1.0, "visibility": "after_published",
         "output": "q1_load_data results: All test cases passed!"},
        {"name": "q9_accuracy", "score": q9_score, "max_score": 2.0, "visibility": "after_published",
         "output": BILINGUAL},
    ], "extra_data": {contract.MEASURED_KEY: {"accuracy": 0.8123, "threshold": 0.85}}}


def test_the_page_names_the_student_and_their_sid():
    page = feedback.page({"id": "wang", "status": "graded"}, results(), language="zh-TW", student=STUDENT)
    assert "<th>學生 / Student</th><td>王小明</td>" in page and "<th>學號 / Student ID</th><td>B10901002</td>" in page
    assert "<title>評分回饋 / Grading feedback: B10901002</title>" in page


def test_no_notice_says_passed_above_a_question_scored_zero():
    page = feedback.page({"id": "wang", "status": "graded"}, results(q9_score=0.0), language="zh-TW")
    assert "All test cases passed!\nq9_accuracy" not in page and "q9_accuracy results: All test cases passed!" not in page
    assert "0 / 2" in page and BILINGUAL in parsed(page).messages


def test_an_english_page_is_in_english():
    page = feedback.page({"id": "anna", "status": "graded"}, results(), language="en",
                         student=roster.Student("B1", "Anna Lee"))
    shown = parsed(page)
    assert "q9_accuracy: accuracy 0.8123 is below the threshold 0.85." in shown.messages
    assert not feedback._CJK_TEXT.search(page.split("<body>")[1]), "no Chinese on an English page"


def test_a_line_without_an_english_half_is_kept_whole():
    assert feedback.in_language("只有中文", "en") == "只有中文"
    assert feedback.in_language("a / b", "en") == "a / b"
    assert feedback.in_language(BILINGUAL, "zh-TW") == BILINGUAL


@pytest.mark.parametrize("status", ["invalid", "wrong-assignment", "timeout", "memory", "error"])
@pytest.mark.parametrize("language", ["zh-TW", "en"])
def test_a_submission_not_graded_gets_advice(status, language):
    record = {"id": "x", "status": status, "message": "x.ipynb is not valid JSON (Expecting value: line 1).",
              "message_zh": "x.ipynb 不是有效的 JSON。"}
    page = feedback.page(record, None, language=language, student=STUDENT)
    zh, en = feedback.ADVICE[status]
    assert escape(en) in page and (escape(zh) in page) == (language == "zh-TW")
    assert ("What to do next" in page) and ("接下來怎麼做" in page) == (language == "zh-TW")


def test_a_graded_page_gets_no_advice_and_a_missing_student_a_page_of_their_own():
    assert "What to do next" not in feedback.page({"id": "x", "status": "graded"}, results(), language="en")
    page = feedback.missing_page(STUDENT, assignment="fashion_mnist")
    assert "王小明" in page and "B10901002" in page and "No submission of yours was found" in page


HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)> & \"q\""


@pytest.mark.parametrize("language", ["zh-TW", "en"])
def test_hostile_student_text_is_shown_as_text_never_as_markup(language):
    """A name, an id, a question's message, a batch message: whatever a student wrote comes out as the
    characters they typed, and the page gains no element."""
    student = roster.Student(f"B1{HOSTILE}", f"Anna {HOSTILE}", "anna@example.edu")
    boxes = results()
    boxes["tests"][2]["output"] = f"found {HOSTILE}"
    boxes["tests"].append({"name": f"notice {HOSTILE}", "visibility": "visible", "output": HOSTILE})
    graded = feedback.page({"id": f"id{HOSTILE}", "status": "graded"}, boxes, language=language,
                           student=student, assignment=HOSTILE)
    ungraded = feedback.page({"id": "x", "status": "invalid", "message": HOSTILE, "message_zh": HOSTILE,
                              "submitters": [{"name": HOSTILE, "sid": HOSTILE}]}, None, language=language)
    missing = feedback.missing_page(student, language=language, assignment=HOSTILE)
    for page in (graded, ungraded, missing):
        shown = parsed(page)
        assert "<script" not in page and "<img" not in page
        assert not [t for t, _ in shown.tags if t in ("script", "img")]
        assert str(escape(f"Anna {HOSTILE}")) in page or page is ungraded
    assert f"found {HOSTILE}" in parsed(graded).messages and HOSTILE in parsed(graded).messages
    assert HOSTILE in parsed(ungraded).messages
