"""The question registry: its folders, the master built from them, and what people read about it."""

import re
import zipfile

import nbformat
import pytest

from fashion_kit import notebooks, paths, questions
from fashion_kit.questions import layout, master, readme


def test_registry_names_the_masters_graded_questions_in_order_with_the_folders_points():
    assert questions.points_in_master(paths.MASTER) == {q.name: q.points for q in questions.QUESTIONS}
    assert questions.NAMES == tuple(f.name for f in layout.folders())
    assert questions.NAMES.index("q10_param_count") == questions.NAMES.index("q9_accuracy") + 1, "numbers' order"


def test_the_committed_master_is_the_lesson_with_each_questions_block():
    """fashion-kit assign writes the master from the lesson and the folders; a stale one is caught."""
    built = notebooks.dumps(master.compose(notebooks.read(paths.LESSON)))
    assert paths.MASTER.read_text(encoding="utf-8") == built, "run: .venv/bin/fashion-kit assign --no-verify"


def _lesson(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_raw_cell(c) if c.startswith("# QUESTION") else nbformat.v4.new_markdown_cell(c)
                for c in cells]
    return nb


def test_a_question_without_its_place_in_the_lesson_follows_the_last_question():
    q1, q2 = questions.BY_NAME["q1_load_data"], questions.BY_NAME["q2_class_names"]
    composed = master.compose(_lesson("intro", "# QUESTION q1_load_data", "challenge"), (q1, q2))
    sources = [c.source for c in composed.cells]
    begins = [i for i, s in enumerate(sources) if s.startswith("# BEGIN QUESTION")]
    assert [sources[i].split("\n")[1] for i in begins] == ["name: q1_load_data", "name: q2_class_names"]
    assert sources[0] == "intro" and sources[-1] == "challenge" and sources[-2] == "# END QUESTION"
    assert "# QUESTION q1_load_data" not in sources


def test_a_lesson_naming_a_question_no_folder_holds_or_one_twice_is_refused():
    with pytest.raises(master.BadLesson, match="q99_nothing unknown"):
        master.compose(_lesson("# QUESTION q99_nothing"))
    with pytest.raises(master.BadLesson, match="q1_load_data twice"):
        master.compose(_lesson("# QUESTION q1_load_data", "# QUESTION q1_load_data"))


def test_a_question_folder_that_does_not_say_what_it_checks_or_its_points_is_refused(tmp_path):
    folder = tmp_path / "q1_x"
    folder.mkdir()
    (folder / layout.QUESTION_FILE).write_text('points = 1\n[checks]\nen = "x"\n', encoding="utf-8")
    with pytest.raises(questions.BadQuestion, match="one sentence for each of zh-TW, en"):
        questions.read(folder)
    (folder / layout.QUESTION_FILE).write_text('points = "one"\n[checks]\nen = "x"\nzh-TW = "x"\n', encoding="utf-8")
    with pytest.raises(questions.BadQuestion, match="expected points = a positive number, found 'one'"):
        questions.read(folder)
    (folder / layout.QUESTION_FILE).write_text('points = 1\nname = "q2_y"\n[checks]\nen = "x"\nzh-TW = "x"\n',
                                               encoding="utf-8")
    with pytest.raises(questions.BadQuestion, match="the folder's name, q1_x, is the question's"):
        questions.read(folder)
    assert hash(questions.BY_NAME["q4_model"]) == hash(questions.BY_NAME["q4_model"])


def test_every_graded_question_has_points_and_a_description_in_both_languages():
    points = questions.points_in_master(paths.MASTER)
    for question in questions.QUESTIONS:
        assert points[question.name] > 0, question.name
        zh, en = question.checks
        assert re.search(r"[\u4e00-\u9fff]", zh) and re.search(r"[a-z]", en), question.name
        assert question.describe("en") == en and question.describe("zh-TW") == zh


def test_the_readme_table_lists_each_question_with_the_masters_points():
    text = paths.README.read_text(encoding="utf-8")
    assert f"{readme.BEGIN}\n{readme.table()}\n{readme.END}" in text, "run: .venv/bin/fashion-kit assign --no-verify"
    rows = dict(re.findall(r"^\| (q\d+_\w+) \|.*\| (\d+(?:\.\d+)?) \|$", text, re.MULTILINE))
    assert {q: float(p) for q, p in rows.items()} == questions.points_in_master(paths.MASTER)
    assert f"| **{questions.TOTAL:g}** |" in text


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


def test_no_guide_states_the_total_or_the_number_of_questions_in_its_prose():
    """The README's table, which fashion-kit assign writes from the folders, is where the total is: a
    new question leaves no guide wrong. Transcripts (code blocks and inline code) show output as is."""
    total, count = f"{questions.TOTAL:g}", len(questions.QUESTIONS)
    stated = re.compile(rf"\b{total}(\.0)? points\b|\b{total}(\.0)? ?/ ?{total}(\.0)?\b|\b0 ?/ ?{total}\b"
                        rf"|\bof {total}\b|\b{count} questions\b")
    code = re.compile(r"^```.*?^```|`[^`\n]*`", re.M | re.S)
    text = paths.README.read_text(encoding="utf-8")
    texts = {"README.md": text[:text.index(readme.BEGIN)] + text[text.index(readme.END):]}
    texts |= {f"docs/{p.name}": p.read_text(encoding="utf-8") for p in (paths.ROOT / "docs").glob("*.md")}
    found = [f"{name}: {m[0]!r}" for name, text in texts.items() for m in stated.finditer(code.sub("", text))]
    assert found == []
