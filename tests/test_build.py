"""The build: master → student/, solutions/, autograder.zip; deterministic, and all or nothing."""

import zipfile

import pytest

from fashion_kit import assign, notebooks, paths

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
    assert {"run_autograder", "run_otter.py", "setup.sh", "requirements.txt", "fashion_kit_data.py"} <= names
    assert {f"data/fashion-mnist/{f}" for f in assign.data.FILES} <= names
    questions = {n for n in names if n.startswith("tests/q")}
    assert len(questions) == 10


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
