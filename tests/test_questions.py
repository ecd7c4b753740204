"""The question registry agrees with the master notebook and with what people read about it."""

import re
import zipfile

import pytest

from fashion_kit import paths, questions


def test_registry_names_the_masters_graded_questions_in_order():
    assert tuple(questions.points_in_master(paths.MASTER)) == questions.NAMES


def test_every_graded_question_has_points_and_a_description_in_both_languages():
    points = questions.points_in_master(paths.MASTER)
    for question in questions.QUESTIONS:
        assert points[question.name] > 0, question.name
        zh, en = question.checks
        assert re.search(r"[\u4e00-\u9fff]", zh) and re.search(r"[a-z]", en), question.name
        assert question.describe("en") == en and question.describe("zh-TW") == zh


def test_the_readme_table_lists_each_question_with_the_masters_points():
    readme = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (q\d+_\w+) \|.*\| (\d+(?:\.\d+)?) \|$", readme, re.MULTILINE))
    assert {q: float(p) for q, p in rows.items()} == questions.points_in_master(paths.MASTER)


def test_the_questions_the_grader_treats_by_name_are_the_registrys():
    assert questions.WITH_SNAPSHOT == tuple(q.name for q in questions.QUESTIONS if q.snapshot)
    assert (questions.Q_MODEL, questions.Q_EVALUATE, questions.Q_ACCURACY) == ("q4_model", "q8_evaluate", "q9_accuracy")
    assert {questions.Q_ACCURACY, *questions.WITH_SNAPSHOT} <= set(questions.NAMES)


def test_blocks_are_read_with_their_settings(tmp_path):
    nb = tmp_path / "master.ipynb"
    nb.write_text('{"cells": [{"cell_type": "raw", "metadata": {}, "source": ["# BEGIN QUESTION\\n", '
                  '"name: q1_x\\n", "points: 2\\n", "all_or_nothing: true"]}, {"cell_type": "raw", "metadata": {}, '
                  '"source": "# BEGIN QUESTION\\nname: bonus\\nmanual: true\\npoints: 0.5"}], "metadata": {}, '
                  '"nbformat": 4, "nbformat_minor": 5}', encoding="utf-8")
    assert questions.blocks_in_master(nb) == [{"name": "q1_x", "points": 2, "all_or_nothing": True},
                                              {"name": "bonus", "manual": True, "points": 0.5}]
    assert questions.points_in_master(nb) == {"q1_x": 2.0}


def test_the_autograders_questions_are_read_from_its_test_files_without_running_them(tmp_path):
    path = tmp_path / "autograder.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("tests/q10_param_count.py", 'name = "q10_param_count"\npoints = 1\nraise SystemExit\n')
        zf.writestr("tests/q3_normalize.py", 'name = "q3_normalize"\npoints = 2\nall_or_nothing = True\n')
        zf.writestr("tests/__init__.py", "")
        zf.writestr("otter_config.json", "{}")
    assert list(questions.points_in_autograder(path).items()) == [("q3_normalize", 2.0), ("q10_param_count", 1.0)]
    zf = zipfile.ZipFile(path)
    zf.extractall(tmp_path / "unpacked")
    assert questions.points_in_autograder(tmp_path / "unpacked" / "tests") == questions.points_in_autograder(path)


@pytest.mark.parametrize("text", ["", "name = 'q1'", "points = 1", "name = f'q{1}'\npoints = 1", "def broken(:"])
def test_a_test_file_that_declares_no_question_is_refused_with_its_name(tmp_path, text):
    (tmp_path / "q1.py").write_text(text, encoding="utf-8")
    with pytest.raises(questions.NoQuestions, match=r"q1\.py declares no"):
        questions.points_in_autograder(tmp_path)
    with pytest.raises(questions.NoQuestions, match="not a readable autograder zip"):
        questions.points_in_autograder(tmp_path / "q1.py")
