"""docs/adding-a-question.md, followed to the letter: a copy of the project gets the guide's question as
one new folder, made of the guide's own files, and no other edit anywhere. `fashion-kit assign` builds
the copy; the copy's own registry tests pass there; the student and solution notebooks ask the new
question in both languages; the autograder counts its point; and (slow) the copy's autograder gives
the reference solution full marks and the guide's mistake exactly one point less.

The copy runs its own code: a small virtual environment imports the kit from the copy's ``src/`` and
every other package from this one's, so the build, the grader and phase 2 see the new folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from fashion_kit import contract, notebooks, paths, questions
from fashion_kit.questions import layout

from .conftest import QUICK_FIT_ENV, QUICK_MIN_ACCURACY, with_settings
from .grading import test_catalogue

GUIDE = paths.ROOT / "docs" / "adding-a-question.md"
# A file of the new folder: its heading names it, the fenced block under it is its whole text.
FILE = re.compile(r"^### `(?P<folder>q\d+_\w+)/(?P<file>[\w.-]+)`\n.*?^```\w*\n(?P<text>.*?)^```$", re.M | re.S)
# What the copy leaves out: this venv, git, caches, build products.
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", "*.zip",
                                    ".import_linter_cache", "graded", "build")


def guide() -> tuple[str, dict[str, str]]:
    """The guide's question: its folder's name and its files' texts."""
    found = list(FILE.finditer(GUIDE.read_text(encoding="utf-8")))
    names = {m["folder"] for m in found}
    assert len(names) == 1, f"the guide's files must make one folder, found {names}"
    return names.pop(), {m["file"]: m["text"] for m in found}


def python_running(src: Path, where: Path) -> Path:
    """A Python that imports the kit from ``src`` and every other package from this environment."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, capture_output=True)
    python = where / "bin" / "python"
    found = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           check=True, capture_output=True, text=True).stdout.strip()
    # Read in name order: the copy first, so its fashion_kit is the one imported.
    Path(found, "a-kit.pth").write_text(f"{src}\n", encoding="utf-8")
    Path(found, "b-packages.pth").write_text(f"{sysconfig.get_paths()['purelib']}\n", encoding="utf-8")
    return python


class Project:
    def __init__(self, root: Path, python: Path, name: str, env: dict[str, str]):
        self.root, self.python, self.name, self.env = root, python, name, env

    def run(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.python), *args], cwd=self.root, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def project(tmp_path_factory, data_dir) -> Project:
    base = tmp_path_factory.mktemp("guide")
    root = base / "project"
    shutil.copytree(paths.ROOT, root, ignore=NOT_COPIED)
    name, files = guide()
    folder = root / "src" / "fashion_kit" / "questions" / name
    folder.mkdir()
    for file, text in files.items():
        (folder / file).write_text(text, encoding="utf-8")
    # Nothing of this session's pytest reaches the copy's: not its options (PYTEST_ADDOPTS may name
    # this run's --basetemp, which the copy's pytest would empty) nor xdist's worker variables.
    env = {k: v for k, v in os.environ.items()
           if k not in ("FASHION_KIT_ROOT", "PYTHONPATH") and not k.startswith("PYTEST_")}
    copy = Project(root, python_running(root / "src", base / "venv"), name, env)
    built = copy.run("-m", "fashion_kit", "assign", "--no-verify")
    assert built.returncode == 0, built.stdout + built.stderr
    return copy


def test_the_guide_makes_one_new_question_folder_with_every_file():
    name, files = guide()
    assert layout.NAME.match(name) and name not in questions.NAMES
    assert set(files) == {layout.QUESTION_FILE, layout.CHECK_FILE, layout.PROMPT_FILE.format(language="zh-TW"),
                          layout.PROMPT_FILE.format(language="en"), layout.SOLUTION_FILE, layout.TEST_FILE,
                          layout.CATALOGUE_FILE}


def test_the_copy_runs_its_own_kit(project):
    found = project.run("-c", "import fashion_kit; print(fashion_kit.__file__)")
    assert found.stdout.strip() == str(project.root / "src" / "fashion_kit" / "__init__.py"), found.stderr


def test_the_built_notebooks_ask_and_check_the_new_question_in_each_language(project):
    _, files = guide()
    def cells(*parts: str) -> list[str]:
        return [c.source for c in notebooks.read(project.root.joinpath(*parts)).cells]

    for lang in contract.LANGUAGES:
        prompt = files[layout.PROMPT_FILE.format(language=lang)].strip()
        student, solution = cells("student", lang, contract.NOTEBOOK), cells("solutions", lang, contract.NOTEBOOK)
        for found in (student, solution):
            assert prompt in found and f'grader.check("{project.name}")' in found
        answer = "first_prediction = int(np.argmax(model.predict(test_images[:1], verbose=0)[0]))"
        assert "first_prediction = ..." in student and answer in solution
        assert not any(answer in c for c in student)
    # After the last question that has its place in the lesson, before the next part of the lesson.
    begins = [s for s in cells("assignment", contract.NOTEBOOK) if s.startswith("# BEGIN QUESTION")]
    assert [s.split("\n")[1] for s in begins][-3:] == ["name: q10_param_count", f"name: {project.name}", "name: challenge"]


def test_the_autograder_and_the_readme_count_the_new_point(project):
    points = questions.points_in_autograder(project.root / "autograder" / contract.AUTOGRADER_ZIP_NAME)
    assert points == {**{q.name: q.points for q in questions.QUESTIONS}, project.name: 1.0}
    readme = (project.root / "README.md").read_text(encoding="utf-8")
    assert f"| {project.name} |" in readme and f"| **{questions.TOTAL + 1:g}** |" in readme


def test_the_copys_own_registry_message_and_catalogue_tests_pass_there(project):
    """What the fast suite checks of a question, run in the copy: the master, the README, the
    registry's folders, the new check's bilingual message for any value, and the guide's catalogue
    entry (well formed, its edit fits the reference solution)."""
    found = project.run("-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/test_questions.py",
                        "tests/test_messages.py", "tests/grading/test_catalogue.py", "-m", "not slow", "-x")
    assert found.returncode == 0, found.stdout[-4000:] + found.stderr[-2000:]
    assert project.name in project.run("-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                                       "tests/test_messages.py").stdout


@pytest.mark.slow
def test_the_reference_gets_full_marks_and_the_guides_mistake_loses_its_point(project, tmp_path):
    """Graded by the copy's autograder with the tests' quick fit (the accuracy is not the claim)."""
    built = project.root / "autograder" / contract.AUTOGRADER_ZIP_NAME
    quick = with_settings(built, tmp_path / "quick.zip", min_test_accuracy=QUICK_MIN_ACCURACY)
    points = questions.points_in_autograder(built)
    reference = project.root / "solutions" / "en" / contract.NOTEBOOK
    folders = [project.root / "src" / "fashion_kit" / "questions" / project.name]
    (mistake,) = test_catalogue.load(folders)[-1:]
    assert mistake["scores"] == {project.name: 0}
    wrong = test_catalogue.mutant(mistake, reference, tmp_path / "mistake" / contract.NOTEBOOK)
    graded = {}
    for label, notebook in (("reference", reference), ("mistake", wrong)):
        out = tmp_path / label
        found = project.run("-m", "fashion_kit", "run", str(notebook), "--autograder", str(quick), "--no-sandbox",
                            "--output", str(out), env=QUICK_FIT_ENV)
        results = json.loads((out / contract.RESULTS_FILE).read_text(encoding="utf-8"))
        graded[label] = {t["name"]: t["score"] for t in results["tests"] if t.get("max_score")}
        assert graded[label], found.stdout + found.stderr
    assert graded["reference"] == points and sum(points.values()) == questions.TOTAL + 1
    assert graded["mistake"] == {**points, **mistake["scores"]}
