"""docs/adding-a-question.md, followed to the letter: its question is built from the page itself (the
master's cells from its table, the registry row and the check from its code) in a temporary copy of
the master, with no other edit anywhere, and the built assignment grades it."""

from __future__ import annotations

import re
import shutil

import nbformat
import pytest

from fashion_kit import assign, check_code, checks, notebooks, paths, questions
from fashion_kit.classroom import feedback
from fashion_kit.grading import verdicts

from .grading.judge_fakes import SETTINGS, honest_values, models

GUIDE = paths.ROOT / "docs" / "adding-a-question.md"
NAME = "q11_pixels"


def guide() -> tuple[list[tuple[str, str]], str, str]:
    """The page's master cells (kind, source), its registry row and its check code."""
    text = GUIDE.read_text(encoding="utf-8")
    cells = []
    for kind, content in re.findall(r"^\| (raw|code|markdown[^|]*) \| (.+) \|$", text, re.MULTILINE):
        parts = [a or b for a, b in re.findall(r"``(.+?)``|`([^`]+)`", content)]
        if kind == "code" and len(parts) == 2:  # a line and, on the next line, an indented one
            parts = [parts[0], "    " + parts[1]]
        cells.append((kind, "\n".join(parts)))
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    row = next(b for b in blocks if b.lstrip().startswith("Question("))
    code = next(b for b in blocks if "def check_" in b)
    return cells, row.strip().rstrip(","), code


def master_with_the_question(target):
    nb = notebooks.read(paths.MASTER)
    cells, _, _ = guide()
    made = []
    for kind, source in cells:
        if kind == "raw":
            made.append(nbformat.v4.new_raw_cell(source))
        elif kind == "code":
            made.append(nbformat.v4.new_code_cell(source))
        else:
            cell = nbformat.v4.new_markdown_cell(source)
            cell.metadata["tags"] = [re.search(r"lang:[\w-]+", kind).group()]
            made.append(cell)
    # After the last graded question's block, as the page says.
    q10 = next(i for i, c in enumerate(nb.cells) if c.cell_type == "raw" and "name: q10_param_count" in c.source)
    end_of_q10 = next(i for i in range(q10, len(nb.cells)) if nb.cells[i].source.strip() == "# END QUESTION")
    nb.cells[end_of_q10 + 1:end_of_q10 + 1] = made
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
    target.parent.mkdir(parents=True, exist_ok=True)
    notebooks.write(nb, target)
    return target


@pytest.fixture
def kit_with_the_question(tmp_path, monkeypatch, data_dir):
    _, row, code = guide()
    # The check, where checks.py would hold it: the module and the source the build copies from.
    source = tmp_path / "checks.py"
    shutil.copyfile(check_code.SOURCE, source)
    with source.open("a", encoding="utf-8") as f:
        f.write("\n\n" + code)
    monkeypatch.setattr(check_code, "SOURCE", source)
    check_code._definitions.cache_clear()
    namespace = vars(checks).copy()
    exec(compile(code, str(GUIDE), "exec"), namespace)
    for name in (f"collect_{NAME}", f"check_{NAME}"):
        monkeypatch.setattr(checks, name, namespace[name], raising=False)
    # The registry row, where questions.py would hold it.
    question = eval(row, {"Question": questions.Question})
    monkeypatch.setattr(questions, "QUESTIONS", (*questions.QUESTIONS, question))
    monkeypatch.setitem(questions.BY_NAME, NAME, question)
    monkeypatch.setattr(questions, "NAMES", (*questions.NAMES, NAME))
    master = master_with_the_question(tmp_path / "master" / "fashion_mnist.ipynb")
    yield master, assign.build(master=master, root=tmp_path / "kit", verify=False, progress=lambda _: None)
    check_code._definitions.cache_clear()


def test_the_guides_question_is_built_checked_and_graded(kit_with_the_question):
    master, built = kit_with_the_question
    # The registry and the master agree (what tests/test_questions.py checks of the real master).
    assert tuple(questions.points_in_master(master)) == questions.NAMES
    points = questions.points_in_autograder(built.autograder_zip)
    assert points[NAME] == 1.0 and list(points)[:-1] == list(questions.NAMES[:-1])
    # The student's notebook asks it and checks it, in each language.
    for lang, words in (("en", "How many pixels"), ("zh-TW", "一張圖片有幾個像素")):
        student = notebooks.read(built.student[lang])
        text = "\n".join(c.source for c in student.cells)
        assert words in text and f'grader.check("{NAME}")' in text and "pixels = ..." in text
    # The public test carries the check's own code and runs without the kit.
    test = check_code.expand('def test_pixels(pixels):\n    CHECK("q11_pixels", public=True)\n')
    for pixels, passes in ((28 * 28, True), (28 * 28 - 1, False)):
        env: dict = {}
        exec(test, env)
        if passes:
            env["test_pixels"](pixels)
        else:
            with pytest.raises(AssertionError, match="Expected pixels == 28 × 28 = 784, found 783"):
                env["test_pixels"](pixels)
    # Phase 2 decides it from the value the grader's cell hands over, and the page says what it checks.
    for pixels, score in ((784, 1.0), (783, 0.0)):
        values = {**honest_values(), NAME: checks.collect_q11_pixels({"pixels": pixels})}
        results = verdicts.decide(points, verdicts.Phase1(values=values), models(), SETTINGS, sandbox="bubblewrap")
        found = {t["name"]: t["score"] for t in results["tests"] if "max_score" in t}
        assert found[NAME] == score and results["score"] == sum(points.values()) - (1 - score)
    page = feedback.page({"id": "anna", "status": "graded"}, results, language="en")
    assert questions.BY_NAME[NAME].describe("en") in page
