"""Build the assignment: master notebook → student/, solutions/ and autograder/autograder.zip.

Otter Assign does the splitting. Around it, the build
  * produces one student and one solution notebook per narrative language from the single master,
  * replaces Otter's heavy Gradescope set-up with the kit's lean one and bundles the data, so the
    zip grades offline,
  * makes every output byte-stable, so rebuilding an unchanged master changes no file,
  * grades the reference solution with the finished zip and refuses to publish anything unless it
    scores full marks.
Everything is built in a staging folder first; the committed folders change only on success.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import data, notebooks, paths, settings as settings_module
from .autograder_zip import BuildError, write_autograder_zip
from .contract import ANSWER_TAG, AUTOGRADER_ZIP_NAME, NOTEBOOK
from .questions import check_code
from .settings import Settings
from .statuses import Status


@dataclass
class BuildResult:
    student: dict[str, Path]
    solutions: dict[str, Path]
    autograder_zip: Path
    solution_results: dict | None


def _otter_assign(master: Path, out: Path) -> None:
    # Otter's own solution check runs against its own zip; ours runs later against the final zip.
    cmd = [sys.executable, "-m", "otter", "assign", "--no-run-tests", "--no-pdfs", str(master), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"otter assign failed on {master.name}:\n{proc.stdout}\n{proc.stderr}")


def _hidden_tests_in(nb) -> list[str]:
    from otter.test_files import ExceptionTestFile

    hidden = []
    for name, source in nb.metadata.get("otter", {}).get("tests", {}).items():
        for case in ExceptionTestFile.from_string(source, path=name).test_cases:
            if case.hidden:
                hidden.append(case.name)
    return hidden


def decimal(value: float) -> str:
    """A setting as the notebooks write it: an accuracy with two decimals (0.85, 0.90), more only
    when the value has more (0.845)."""
    shown = f"{value:.2f}"
    return shown if float(shown) == value else repr(value)


def with_settings(nb, settings: Settings):
    """``nb`` with its markdown cells rendered by Jinja2 against ``settings``: the master writes
    ``{{ min_test_accuracy | decimal }}`` where a sentence shows a setting, so the notebook states
    the value the autograder grades with. An unknown name stops the build."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["decimal"] = decimal
    values = settings.to_dict()
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            try:
                cell.source = env.from_string(cell.source).render(values)
            except jinja2.TemplateError as e:
                raise BuildError(f"A markdown cell of the master names a setting the kit does not have "
                                 f"({e}); expected one of {', '.join(values)}:\n{cell.source}") from e
    return nb


def assign_language(source_nb, lang: str, workdir: Path, settings: Settings):
    """Run Otter Assign on ``lang``'s view of the master, its sentences filled from ``settings``;
    returns (student notebook, answer key, otter zip). Otter's own autograder notebook, with its
    solution markup and every test in its metadata, stays here in the build's scratch folder."""
    work = workdir / lang
    (work / "master").mkdir(parents=True)
    # The master's tests say CHECK(question): each becomes the kit's own check code (check_code).
    view = check_code.expand_notebook(with_settings(notebooks.for_language(source_nb, lang), settings))
    notebooks.write(view, work / "master" / NOTEBOOK)
    _otter_assign(work / "master" / NOTEBOOK, work / "out")
    student = notebooks.read(work / "out" / "student" / NOTEBOOK)
    student = notebooks.normalize(without_otter_markup(localize_boilerplate(student, lang)))
    check_student_notebook(student)
    key = notebooks.normalize(answer_key(student, notebooks.read(work / "out" / "autograder" / NOTEBOOK)))
    check_answer_key(key)
    return student, key, next((work / "out" / "autograder").glob("*.zip"))


# Otter's own cells around the end of the notebook, in Traditional Chinese. Each English text must
# be found in the zh-TW notebook, so a new Otter wording stops the build instead of staying English.
OTTER_BOILERPLATE_ZH = {
    "To double-check your work, the cell below will rerun all of the autograder tests.":
        "想再確認一次的話，下面的儲存格會重新執行所有的自動檢查。",
    "## Submission": "## 匯出作業",
    "Make sure you have run all cells in your notebook in order before running the cell below, so "
    "that all images/graphs appear in the output. The cell below will generate a zip file for you "
    "to submit. **Please save before exporting!**":
        "執行下面的儲存格之前，請先依序執行筆記本裡的每一個儲存格，讓所有的圖都顯示出來。"
        "下面的儲存格會做出一個要上傳的 zip 檔。**匯出之前請先儲存！**",
    "# Save your notebook first, then run this cell to export your submission.":
        "# 先儲存筆記本，再執行這個儲存格，做出要上傳的檔案。",
}
# The export instructions in the master's ASSIGNMENT CONFIG are written "中文 / English"; each
# notebook keeps its own language's half.
INSTRUCTIONS_SEPARATOR = " / "


def localize_boilerplate(nb, lang: str):
    """``nb`` (Otter's student notebook for ``lang``) with Otter's generated cells in ``lang``."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        halves = [line.split(INSTRUCTIONS_SEPARATOR) for line in cell.source.split("\n")]
        if cell.cell_type == "markdown" and "## Submission" in cell.source:
            pick = 0 if lang == "zh-TW" else 1
            cell.source = "\n".join(h[pick] if len(h) == 2 else INSTRUCTIONS_SEPARATOR.join(h) for h in halves)
    if lang != "zh-TW":
        return nb
    for english, chinese in OTTER_BOILERPLATE_ZH.items():
        cells = [c for c in nb.cells if english in c.source]
        if len(cells) != 1:
            raise BuildError(
                f"Expected Otter's text {english!r} in exactly one cell of the zh-TW notebook, found "
                f"{len(cells)}: update OTTER_BOILERPLATE_ZH in assign.py for this Otter version."
            )
        cells[0].source = cells[0].source.replace(english, chinese)
    return nb


# Otter's question markers in markdown cells: its PDF export reads them, this kit makes no PDF.
QUESTION_MARKER = re.compile(r"^<!-- (BEGIN|END) QUESTION -->\n?", re.M)


def without_otter_markup(nb):
    """``nb`` without Otter's question markers and without the empty cells Otter leaves behind."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = QUESTION_MARKER.sub("", cell.source).strip("\n")
    nb.cells = [c for c in nb.cells if c.source.strip()]
    return nb


SOLUTION_LINE_MARKERS = ("# BEGIN SOLUTION", "# BEGIN SOLUTION NO PROMPT", "# END SOLUTION")
SOLUTION_SUFFIX = re.compile(r"\s*# SOLUTION\s*$")


def solution_code(source: str) -> str:
    """The code of one of Otter's solution cells without Otter's markup: no BEGIN/END SOLUTION
    lines, no ``# SOLUTION`` suffixes and no ``\"\"\" # BEGIN PROMPT`` strings."""
    kept, in_prompt = [], False
    for line in source.split("\n"):
        stripped = line.strip()
        if stripped.startswith('""" # BEGIN PROMPT'):
            in_prompt = True
        elif stripped.startswith('""" # END PROMPT'):
            in_prompt = False
        elif not in_prompt and stripped not in SOLUTION_LINE_MARKERS:
            kept.append(SOLUTION_SUFFIX.sub("", line))
    return "\n".join(kept).strip("\n")


SOLUTION_TAG = "otter_assign_solution_cell"


def answer_key(student, otter_autograder_nb):
    """The student notebook with every blank filled by its solution: exactly a perfect submission
    (set-up cell and ``grader.check`` cells included), without Otter's markup. It keeps the student
    notebook's public tests, so its ``grader.check`` cells run where it is opened; the hidden tests
    live in the autograder only."""
    solutions = [solution_code(c.source) for c in otter_autograder_nb.cells
                 if SOLUTION_TAG in c.metadata.get("tags", [])]
    blanks = [c for c in student.cells if ANSWER_TAG in c.metadata.get("tags", [])]
    if len(solutions) != len(blanks):
        raise BuildError(f"Expected one solution for each of the {len(blanks)} blanks of the student "
                         f"notebook, found {len(solutions)} solution cells.")
    key = copy.deepcopy(student)
    for cell, solution in zip((c for c in key.cells if ANSWER_TAG in c.metadata.get("tags", [])), solutions):
        cell.source = solution
        tags = [t for t in cell.metadata["tags"] if t != ANSWER_TAG]
        if tags:
            cell.metadata["tags"] = tags
        else:
            del cell.metadata["tags"]
    return key


def check_student_notebook(nb) -> None:
    """A student notebook must carry neither hidden tests nor solution code."""
    hidden = _hidden_tests_in(nb)
    if hidden:
        raise BuildError(f"The student notebook contains hidden tests: {', '.join(hidden)}")
    # The answer cells keep their tag: it marks the blanks (the browser test types into them).
    found = otter_markup_in(nb, tags=(SOLUTION_TAG,))
    if found:
        raise BuildError(f"The student notebook still contains Otter's markup: {found}")


OTTER_MARKUP = ("# SOLUTION", "BEGIN SOLUTION", "END SOLUTION", "BEGIN PROMPT", "END PROMPT",
                "BEGIN TESTS", "BEGIN QUESTION", "END QUESTION")


def otter_markup_in(nb, tags=(ANSWER_TAG, SOLUTION_TAG)) -> list[str]:
    """Otter's markup left in ``nb``: markers in its cells, "an empty cell" for each empty one, and
    any of ``tags`` on a cell."""
    text = "\n".join(c.source for c in nb.cells)
    found = [marker for marker in OTTER_MARKUP if marker in text]
    found += ["an empty cell" for c in nb.cells if not c.source.strip()]
    found += [tag for tag in tags if any(tag in c.metadata.get("tags", []) for c in nb.cells)]
    return found


def check_answer_key(nb) -> None:
    """An answer key must carry no Otter markup and no hidden tests."""
    found = otter_markup_in(nb)
    if found:
        raise BuildError(f"The answer key still contains Otter's markup: {found}")
    hidden = _hidden_tests_in(nb)
    if hidden:
        raise BuildError(f"The answer key contains hidden tests: {', '.join(hidden)}")


def build(
    master: Path | None = None,
    root: Path | None = None,
    verify: bool = True,
    progress=print,
    config: Path | None = None,
) -> BuildResult:
    """Regenerate student/, solutions/ and autograder/ under ``root`` from ``master`` and the
    settings of ``config`` (the repository's otter_config.json unless given)."""
    root = Path(root or paths.ROOT)
    master = Path(master or paths.MASTER)
    config = Path(config or paths.OTTER_CONFIG)
    settings = settings_module.load(config)  # a bad setting stops the build before any work
    data_dir = data.ensure()
    source_nb = notebooks.read(master)

    with tempfile.TemporaryDirectory(prefix="fashion-kit-build-") as tmp:
        stage = Path(tmp) / "stage"
        student, solutions = {}, {}
        otter_zip = None
        for lang in notebooks.LANGUAGES:
            progress(f"otter assign ({lang})")
            stu, sol, lang_zip = assign_language(source_nb, lang, Path(tmp), settings)
            for kind, nb, index in (("student", stu, student), ("solutions", sol, solutions)):
                target = stage / kind / lang / NOTEBOOK
                target.parent.mkdir(parents=True, exist_ok=True)
                notebooks.write(nb, target)
                index[lang] = root / kind / lang / NOTEBOOK
            if otter_zip is None:
                # The tests are code, identical in every language: one autograder serves them all.
                otter_zip = lang_zip
                (stage / "autograder").mkdir(parents=True)
                write_autograder_zip(otter_zip, stage / "autograder" / AUTOGRADER_ZIP_NAME, data_dir, master, config)

        results = None
        if verify:
            from . import run
            from .grading import sandbox as sandboxes

            try:  # the reference solution is the instructor's own code: a sandbox is welcome, not needed
                sandboxes.choose("auto")
                sandbox = "auto"
            except sandboxes.SandboxUnavailable:
                sandbox = "none"
            progress("grading the reference solution with the new autograder")
            outcome = run.grade(
                stage / "solutions" / notebooks.LANGUAGES[0] / NOTEBOOK, stage / "autograder" / AUTOGRADER_ZIP_NAME,
                sandbox=sandbox,
            )
            results = outcome.results
            if outcome.status != Status.GRADED or outcome.score < outcome.possible:
                raise BuildError(
                    "The reference solution does not pass its own tests, so nothing was written.\n"
                    + run.format_table(outcome)
                )

        for kind in ("student", "solutions", "autograder"):
            dest = root / kind
            for lang_dir in (stage / kind).iterdir():
                target = dest / lang_dir.name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
                dest.mkdir(parents=True, exist_ok=True)
                shutil.move(str(lang_dir), str(target))

    return BuildResult(student, solutions, root / "autograder" / AUTOGRADER_ZIP_NAME, results)


def expected_notebooks(master: Path | None = None, settings: Settings | None = None) -> dict[str, str]:
    """What the build would write for each committed notebook, as text, without grading anything.
    Used to prove the committed student/ and solutions/ match the master and the settings."""
    settings = settings or settings_module.load(paths.OTTER_CONFIG)
    with tempfile.TemporaryDirectory() as tmp:
        source_nb = notebooks.read(Path(master or paths.MASTER))
        out = {}
        for lang in notebooks.LANGUAGES:
            student, solution, _ = assign_language(source_nb, lang, Path(tmp), settings)
            out[f"student/{lang}/{NOTEBOOK}"] = notebooks.dumps(student)
            out[f"solutions/{lang}/{NOTEBOOK}"] = notebooks.dumps(solution)
        return out
