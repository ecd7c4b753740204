"""One message per mistake: a failing check shows the test's own short message, Chinese with English
beside it, never Otter's copy of the test's source line, an exception's name or a traceback; and
every test meets any value with such a message instead of crashing."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from fashion_kit import notebooks, paths, questions
from fashion_kit.grading.messages import UNEXPECTED_VALUE, clean_output
from fashion_kit.questions import check_code

from .grading import test_catalogue

# Words a student must never read in a test's output.
RAW_ERROR = re.compile(r"Traceback|Error at line|\b[A-Z]\w*(?:Error|Exception)\b|\bStopIteration\b")
# Values a notebook can leave in a variable the tests read: missing (None), of the wrong kind, or
# of the right kind with the wrong content.
ODD_VALUES = [None, 0, 1.5, math.nan, True, "text", [], [None] * 10, (), {}, object(),
              np.zeros(3), np.zeros((2, 2)), np.array(["a"] * 10), np.zeros(0)]


def master_tests() -> dict[str, object]:
    """Every test function of the master, by name."""
    env: dict = {}
    for cell in notebooks.read(paths.MASTER).cells:
        if cell.cell_type == "code" and re.search(r"^def test_", cell.source, re.M):
            exec(check_code.expand(cell.source), env)  # the build writes each check's code in
    return {name: fn for name, fn in env.items() if name.startswith("test_") and callable(fn)}


def test_the_master_has_its_tests():
    assert len(master_tests()) >= len(questions.QUESTIONS)


@pytest.mark.parametrize("name", sorted(master_tests()))
def test_any_value_gets_a_bilingual_message_not_a_crash(name, tmp_path, monkeypatch):
    import inspect

    monkeypatch.chdir(tmp_path)  # a folder without the model files some tests look for
    test = master_tests()[name]
    arguments = list(inspect.signature(test).parameters)
    for value in ODD_VALUES:
        try:
            test(**{argument: value for argument in arguments})
        except AssertionError as failure:
            chinese, _, english = str(failure).partition(" / ")
            assert re.search(r"[\u4e00-\u9fff]", chinese) and re.search(r"[A-Za-z]{3}", english), (
                f"{name}({value!r}) failed with a message that is not 中文 / English: {str(failure)!r}")
        except Exception as error:  # noqa: BLE001 - exactly what the test must not do
            pytest.fail(f"{name}({value!r}) raised {type(error).__name__}: {error}; it must fail with a message")


OTTER_FAILURE = """q4_model results:
    q4_model - 1 result:
        ❌ Test case failed
        Error at line 14 in test q4_model:
                  assert found == [(128, "relu"), (10, "softmax")], (
        AssertionError: 兩個 Dense 層應該是 (128, relu) 和 (10, softmax)。 / Expected the Dense layers (128, relu) and (10, softmax).

    q4_model - 2 result:
        ❌ Test case failed
        Error at line 5 in test q4_model:
              dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
        AttributeError: 'NoneType' object has no attribute 'layers'"""


def test_clean_output_keeps_only_the_message():
    cleaned = clean_output(OTTER_FAILURE)
    assert "兩個 Dense 層應該是 (128, relu) 和 (10, softmax)。 / Expected the Dense layers" in cleaned
    assert UNEXPECTED_VALUE in cleaned
    assert not RAW_ERROR.search(cleaned), cleaned
    assert "assert found" not in cleaned and "model.layers" not in cleaned
    assert cleaned.count("❌ Test case failed") == 2 and cleaned.startswith("q4_model results:")


def test_clean_output_leaves_clean_text_alone():
    passed = "q1_load_data results: All test cases passed!"
    assert clean_output(passed) == passed
    once = clean_output(OTTER_FAILURE)
    assert clean_output(once) == once


def test_the_notebook_formatter_shows_one_message(tmp_path):
    """Otter's own failure report, with the notebook's formatter in place: the message once, no
    source line, no exception name."""
    from otter.test_files.exception_test import ExceptionTestFile

    original = ExceptionTestFile._generate_error_message
    first = next(c.source for c in notebooks.read(paths.MASTER).cells if c.cell_type == "code")
    formatter = first[first.index("def one_message"):first.index("ExceptionTestFile._generate_error_message =")]
    env: dict = {}
    exec(notebooks.code_for_language(formatter, "en"), env)
    source = ('from otter.test_files import test_case\nOK_FORMAT = False\nname = "q"\npoints = 1\n'
              '@test_case(points=None, hidden=False)\ndef test_a(x):\n'
              '    assert x == 1, "x 應該是 1。 / Expected x == 1."\n'
              '@test_case(points=None, hidden=False)\ndef test_b(x):\n    x.layers\n')
    try:
        ExceptionTestFile._generate_error_message = env["one_message"]
        test = ExceptionTestFile.from_string(source, path="q.py")
        test.run({"x": None})
    finally:
        ExceptionTestFile._generate_error_message = original
    summary = test.summary()
    assert summary.count("x 應該是 1。 / Expected x == 1.") == 1
    assert UNEXPECTED_VALUE in summary
    assert not RAW_ERROR.search(summary) and "assert x" not in summary, summary


def selected_entries(session) -> list[dict]:
    """The catalogue entries this session checks here (all of them, or those picked with -k)."""
    picked = {item.callspec.params["entry"]["name"] for item in session.items
              if item.originalname == "test_graded_feedback_has_no_raw_errors"}
    return [e for e in test_catalogue.ENTRIES if e["name"] in picked]


@pytest.fixture(scope="session")
def graded_outputs(request, built, grader, tmp_path_factory) -> dict[str, str]:
    """The selected entries queued at once; the names are tests/grading/test_catalogue.py's, so a session
    that runs both grades each entry once."""
    work = tmp_path_factory.mktemp("messages")
    return {entry["name"]: test_catalogue.submit(grader, entry, built.solutions["en"], work)
            for entry in selected_entries(request.session)}


@pytest.mark.slow
@pytest.mark.parametrize("entry", test_catalogue.ENTRIES, ids=[e["name"] for e in test_catalogue.ENTRIES])
def test_graded_feedback_has_no_raw_errors(grader, graded_outputs, entry):
    outcome = grader(graded_outputs[entry["name"]])
    assert outcome.status == "graded", outcome.message + outcome.log[-3000:]
    for test in outcome.results["tests"]:
        output = test.get("output", "")
        found = RAW_ERROR.search(output)
        assert not found, f"{entry['name']}: {test.get('name')} shows {found.group()!r}:\n{output[:2000]}"


@pytest.mark.parametrize("question", [q.name for q in questions.QUESTIONS])
def test_phase_2s_checks_meet_any_handed_over_value_with_a_bilingual_message(question):
    """The judge's checks read JSON written by the student's kernel: any value gets no points and
    a message in both languages, never a crash."""
    odd = [None, 0, "text", [], {}, {"model": 3}, {"model": {"error": "x"}}, {"class_names": [1] * 10},
           {"files": 1, "loaded": []}, {"test_acc": {"kind": "real", "value": "x"}}, {"fits": [{}], "history": {}}]
    check = questions.BY_NAME[question]
    for values in odd:
        fraction, messages = check.decide(values)
        assert fraction < 1 and messages, (question, values)
        for message in messages:
            chinese, _, english = message.partition(" / ")
            assert re.search(r"[\u4e00-\u9fff]", chinese) and re.search(r"[A-Za-z]{3}", english), (question, message)


def test_the_chinese_half_of_a_missing_model_message_holds_no_english_reason():
    from fashion_kit import checks

    zh, en = checks.no_model({"error": "no model (the snapshot after q4_model)"}).split(" / ", 1)
    assert not re.search(r"[A-Za-z]{3,}", zh.replace("model", "")), zh
    assert "the snapshot after q4_model" in en
