"""The built autograder on real Fashion-MNIST: full marks, zero, and exactly the lost points."""

import pytest

from .. import gradescope_spec
from ..conftest import QUESTIONS

pytestmark = pytest.mark.slow



@pytest.mark.parametrize("lang", ["zh-TW", "en"])
def test_reference_solution_scores_full_marks(grader, core_submissions, lang):
    outcome = grader(f"solution-{lang}")
    assert outcome.status == "graded", outcome.message + outcome.log[-3000:]
    assert outcome.scores == {q: (p, p) for q, p in QUESTIONS.items()}
    # The suite's thread variables (tests/conftest.py) reached the grading's processes.
    assert "fashion-kit threads: TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1" in outcome.log


def test_blank_student_notebook_scores_zero_without_crashing(grader, core_submissions):
    outcome = grader("blank")
    assert outcome.status == "graded", outcome.message + outcome.log[-3000:]
    assert outcome.scores == {q: (0, p) for q, p in QUESTIONS.items()}


def test_dense64_loses_exactly_the_structure_points(grader, core_submissions):
    outcome = grader("dense64")
    expected = {q: (p, p) for q, p in QUESTIONS.items()}
    expected["q4_model"] = (0, 2)
    assert outcome.scores == expected


def test_feedback_says_what_is_wrong_in_both_languages(grader, core_submissions):
    """Phase 2 decides every question; each lost question's message says why, in Chinese and English."""
    import re

    results = grader("blank").results["tests"]
    lost = [t for t in results if t.get("max_score") and t["score"] < t["max_score"]]
    assert lost and "has no value yet" in next(t["output"] for t in results if t["name"] == "q1_load_data")
    for test in lost:
        assert re.search(r"[\u4e00-\u9fff]", test["output"]) and re.search(r"[A-Za-z]{4}", test["output"]), test


@pytest.mark.parametrize("name", ["solution-zh-TW", "blank", "dense64"])
def test_results_follow_gradescope_spec(grader, core_submissions, name):
    outcome = grader(name)
    assert gradescope_spec.problems(outcome.results) == []
    hidden = [t for t in outcome.results["tests"] if t.get("visibility") == "after_published"]
    assert hidden, "hidden results must appear once the instructor publishes grades"


def test_plain_otter_run_of_the_zip_gives_full_marks(grader, core_submissions):
    """Otter's own `otter run`, without the kit's runner, still grades the reference solution with full marks."""
    found = grader("otter-run-solution")
    assert gradescope_spec.problems(found) == []
    scores = {t["name"]: (t["score"], t["max_score"]) for t in found["tests"] if "max_score" in t}
    assert scores == {q: (p, p) for q, p in QUESTIONS.items()}
