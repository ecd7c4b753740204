"""The build: master → student/, solutions/, autograder.zip; deterministic, and all or nothing."""

import ast
import re
import zipfile

import pytest

from fashion_kit import assign, notebooks, paths
from fashion_kit.questions import NAMES

from .conftest import mutate


def test_build_writes_every_artifact(built):
    for lang in notebooks.LANGUAGES:
        assert built.student[lang].is_file()
        assert built.solutions[lang].is_file()
    assert built.autograder_zip.name == "autograder.zip"


def test_zip_carries_the_top_level_otter_config(built):
    with zipfile.ZipFile(built.autograder_zip) as zf:
        assert zf.read("otter_config.json") == paths.OTTER_CONFIG.read_bytes()


def test_zip_bundles_data_tests_and_entry_point(built):
    with zipfile.ZipFile(built.autograder_zip) as zf:
        names = set(zf.namelist())
    assert {"run_autograder", "setup.sh", "requirements.txt", "otter_config.json"} <= names
    assert {f"data/fashion-mnist/{f}" for f in assign.data.FILES} <= names
    assert {n for n in names if n.startswith("tests/q")} == {f"tests/{name}.py" for name in NAMES}


def test_grading_requirements_are_pinned(built):
    with zipfile.ZipFile(built.autograder_zip) as zf:
        lines = zf.read("requirements.txt").decode().split()
    assert lines and all("==" in line for line in lines)
    assert "tensorflow-cpu==2.21.0" in lines and "otter-grader==7.0.0" in lines


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_student_notebook_has_no_solutions_or_hidden_tests(built, lang):
    nb = notebooks.read(built.student[lang])
    assign.check_student_notebook(nb)  # raises on hidden tests or solution markers
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for solution_line in ('"sparse_categorical_crossentropy"', "784 * 128", "/ 255.0", "Dense(128"):
        assert solution_line not in code
    checks = [c.source for c in nb.cells if c.source.startswith("grader.check(")]
    assert len(checks) >= 9, "each question with public tests is followed by a grader.check cell"


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_solution_notebook_keeps_solutions(built, lang):
    code = "\n".join(c.source for c in notebooks.read(built.solutions[lang]).cells)
    assert "Dense(128" in code and "/ 255.0" in code


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_answer_key_is_the_student_notebook_with_every_blank_filled(built, lang):
    """Exactly a perfect submission: the student's cells, set-up and grader.check cells included,
    with the solution in each blank (it runs top to bottom: tests/test_notebooks.py)."""
    student = notebooks.read(built.student[lang])
    key = notebooks.read(built.solutions[lang])
    assert [c.cell_type for c in key.cells] == [c.cell_type for c in student.cells]
    filled = 0
    for mine, theirs in zip(key.cells, student.cells):
        if assign.ANSWER_TAG in theirs.metadata.get("tags", []):
            filled += 1
            blanks = [n for n in ast.walk(ast.parse(mine.source))
                      if isinstance(n, ast.Constant) and n.value is Ellipsis]
            assert not blanks and mine.source.strip(), f"an unfilled blank in the answer key:\n{mine.source}"
        else:
            assert mine.source == theirs.source
    assert filled >= 10
    assert sum(c.source.startswith("grader.check(") for c in key.cells) >= 9
    assert 'otter.Notebook(this_notebook())' in key.cells[2].source + key.cells[1].source


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_answer_key_carries_no_otter_markup_and_only_the_public_tests(built, lang):
    text = built.solutions[lang].read_text(encoding="utf-8")
    for marker in ("# SOLUTION", "BEGIN SOLUTION", "END SOLUTION", "BEGIN PROMPT", "END PROMPT",
                   "otter_assign_solution_cell", "otter_answer_cell", "BEGIN TEST CONFIG"):
        assert marker not in text, f"solutions/{lang} still shows {marker!r}"
    nb = notebooks.read(built.solutions[lang])
    student = notebooks.read(built.student[lang])
    # The student's own public tests, so the key's grader.check cells run wherever it is opened.
    assert nb.metadata.otter.tests == student.metadata.otter.tests
    for hidden in ("test_normalized_values", "test_model_parameters", "test_param_count_values"):
        assert hidden not in text
    assign.check_answer_key(nb)  # the build's own check agrees


# Otter's markup as a student or an instructor would see it in a cell.
VISIBLE_MARKUP = re.compile(r"<!--\s*(BEGIN|END) QUESTION\s*-->|#\s*(BEGIN|END) (SOLUTION|PROMPT|TESTS|QUESTION)|# SOLUTION\b")


@pytest.mark.parametrize("kind", ["student", "solutions"])
@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_generated_notebooks_carry_no_otter_markup_and_no_empty_cell(kind, lang):
    nb = notebooks.read(paths.ROOT / kind / lang / assign.NOTEBOOK)
    for i, cell in enumerate(nb.cells):
        assert cell.source.strip(), f"{kind}/{lang}: cell {i} is empty"
        found = VISIBLE_MARKUP.search(cell.source)
        assert not found, f"{kind}/{lang}: cell {i} shows {found.group()!r}"


def test_the_markup_checks_catch_question_markers_and_empty_cells():
    nb = notebooks.read(paths.ROOT / "student" / "en" / assign.NOTEBOOK)
    nb.cells[0].source = "<!-- BEGIN QUESTION -->\n\n" + nb.cells[0].source
    nb.cells.append(notebooks.nbformat.v4.new_markdown_cell(" "))
    assert VISIBLE_MARKUP.search(nb.cells[0].source)
    with pytest.raises(assign.BuildError, match="BEGIN QUESTION.*an empty cell"):
        assign.check_student_notebook(nb)
    cleaned = assign.without_otter_markup(nb)
    assert assign.otter_markup_in(cleaned, tags=()) == [] and len(cleaned.cells) == len(nb.cells) - 1


def test_answer_key_check_refuses_markup():
    nb = notebooks.read(paths.ROOT / "solutions" / "en" / assign.NOTEBOOK)
    nb.cells[-1].source = "x = 1  # SOLUTION"
    with pytest.raises(assign.BuildError, match="SOLUTION"):
        assign.check_answer_key(nb)


def test_solution_code_drops_otter_markup():
    source = ('fashion = 1\n# BEGIN SOLUTION NO PROMPT\nx = 2\n# END SOLUTION\n""" # BEGIN PROMPT\nx = ...\n'
              '""" # END PROMPT\ny = 3  # SOLUTION\nprint(x, y)')
    assert assign.solution_code(source) == "fashion = 1\nx = 2\ny = 3\nprint(x, y)"


def test_narrative_is_in_one_language_per_notebook(built):
    zh = "\n".join(c.source for c in notebooks.read(built.student["zh-TW"]).cells if c.cell_type == "markdown")
    en = "\n".join(c.source for c in notebooks.read(built.student["en"]).cells if c.cell_type == "markdown")
    assert "正規化" in zh and "Normalise" not in zh
    assert "Normalise" in en and "正規化" not in en


def test_rebuild_is_byte_identical(built, tmp_path):
    # Into a folder that does not exist yet: the build creates the layout itself.
    again = assign.build(root=tmp_path / "new" / "kit", verify=False, progress=lambda _: None)
    assert again.autograder_zip.read_bytes() == built.autograder_zip.read_bytes()
    for lang in notebooks.LANGUAGES:
        assert again.student[lang].read_bytes() == built.student[lang].read_bytes()
        assert again.solutions[lang].read_bytes() == built.solutions[lang].read_bytes()


def test_committed_notebooks_match_the_master(built):
    for kind, index in (("student", built.student), ("solutions", built.solutions)):
        for lang, fresh in index.items():
            committed = paths.ROOT / kind / lang / assign.NOTEBOOK
            assert committed.is_file(), f"{committed} is missing: run `fashion-kit assign`"
            assert committed.read_text(encoding="utf-8") == fresh.read_text(encoding="utf-8"), (
                f"{kind}/{lang} is out of date with the master: run `fashion-kit assign` and commit"
            )


def test_master_has_no_outputs():
    nb = notebooks.read(paths.MASTER)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_failing_solution_stops_the_build_and_writes_nothing(tmp_path):
    # A master whose own solution is wrong (it normalises by 128) must never be published.
    broken = mutate(paths.MASTER, tmp_path / "master" / assign.NOTEBOOK,
                    ("training_images = training_images / 255.0", "training_images = training_images / 128.0"),
                    ("history = model.fit(training_images, training_labels, epochs=5)",
                     "raise RuntimeError('stop early: this test needs no training')"))
    root = tmp_path / "root"
    with pytest.raises(assign.BuildError, match="does not pass its own tests"):
        assign.build(master=broken, root=root, verify=True, progress=lambda _: None)
    assert not root.exists() or not any(root.iterdir())


def _markdown(path) -> str:
    return "\n".join(c.source for c in notebooks.read(path).cells if c.cell_type == "markdown")


def test_the_notebooks_state_the_thresholds_the_settings_give(built, tmp_path):
    """An instructor who changes a threshold and rebuilds gets notebooks that say the new value,
    in both languages, and a zip that grades with it."""
    import json

    config = json.loads(paths.OTTER_CONFIG.read_text(encoding="utf-8"))
    config["fashion_kit"].update(min_test_accuracy=0.84, challenge_bonus_threshold=0.925)
    changed = tmp_path / "otter_config.json"
    changed.write_text(json.dumps(config), encoding="utf-8")
    rebuilt = assign.build(root=tmp_path / "kit", verify=False, progress=lambda _: None, config=changed)
    sentences = {"zh-TW": ("準確率達到 {} 就得分", "達到加分門檻 {} 就能加分"),
                 "en": ("You score if the accuracy reaches {}.", "above the bonus threshold ({})")}
    for lang, (q9, bonus) in sentences.items():
        for nb in (rebuilt.student[lang], rebuilt.solutions[lang]):
            text = _markdown(nb)
            assert q9.format("0.84") in text and bonus.format("0.925") in text, nb
            assert "0.85" not in text and "{{" not in text, nb
        default = _markdown(built.student[lang])
        assert q9.format("0.85") in default and bonus.format("0.90") in default
    with zipfile.ZipFile(rebuilt.autograder_zip) as zf:
        assert json.loads(zf.read("otter_config.json"))["fashion_kit"]["min_test_accuracy"] == 0.84


def test_a_master_naming_an_unknown_setting_stops_the_build(tmp_path):
    nb = notebooks.read(paths.MASTER)
    next(c for c in nb.cells if c.cell_type == "markdown").source += "\n{{ min_test_acuracy }}"
    with pytest.raises(assign.BuildError, match="min_test_acuracy.*expected one of"):
        assign.with_settings(nb, assign.settings_module.Settings())


def test_a_bad_setting_stops_the_build_before_any_work(tmp_path):
    bad = tmp_path / "otter_config.json"
    bad.write_text('{"fashion_kit": {"min_test_accuracy": 1.5}}', encoding="utf-8")
    with pytest.raises(assign.settings_module.SettingsError, match="min_test_accuracy must be a number from 0 to 1; found 1.5"):
        assign.build(root=tmp_path / "kit", verify=False, progress=lambda _: None, config=bad)
    assert not (tmp_path / "kit").exists()
