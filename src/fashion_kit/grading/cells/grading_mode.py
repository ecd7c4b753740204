"""Cells: Otter's checks in grading mode inside the kernel, without Otter's driver process.

The student's ``grader = otter.Notebook(...)`` and ``grader.check("qN")`` cells run as they do in
Jupyter; a cell of the kit's in front of everything puts Otter's ``Notebook`` in grading mode (the
checks run the grading's tests and are recorded; ``export`` and ``check_all`` do nothing), and the
questions no cell checked are checked at the very end. The rest of what Otter's own preparation did
to a notebook stays too: cells tagged ``otter_ignore`` are not run, and a cell whose metadata names
tests (``otter: {tests: [...]}``) is followed by their checks. The verdicts reach the trusted phase
through the checkpoints' trail (:mod:`.checkpoints`).
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from . import kit_cell

IGNORE_TAG = "otter_ignore"  # Otter's tag for a cell that is not run when grading
NOTEBOOK = "__fashion_kit_otter_notebook__"

ENTER_CELL = """\
from otter import Notebook as {notebook}
import sys as _fashion_kit_sys
{notebook}.init_grading_mode({tests!r})
_fashion_kit_sys.path.append({cwd!r})
del _fashion_kit_sys
"""
CHECK_THE_REST_CELL = """\
from otter.execute import Checker as _fashion_kit_checker
for _fashion_kit_test in {tests!r}:
    _fashion_kit_checker.check_if_not_already_checked(_fashion_kit_test)
del _fashion_kit_checker, _fashion_kit_test
"""


def test_files(tests: Path) -> list[str]:
    """The tests' paths, in the order Otter checks them at the end (sorted by path)."""
    return sorted(str(path) for path in Path(tests).resolve().glob("*.py"))


def check_the_rest(nb: nbformat.NotebookNode, tests: Path) -> None:
    """At the end, check every question no cell has checked (Otter's last cell did the same)."""
    nb.cells.append(kit_cell(CHECK_THE_REST_CELL.format(tests=test_files(tests))))


def enter(nb: nbformat.NotebookNode, tests: Path, cwd: Path) -> None:
    """Drop the ignored cells, add the checks cell metadata asks for, and enter grading mode first;
    ``cwd`` is the folder the notebook runs in (on ``sys.path``, as Otter puts it there)."""
    cells = []
    for cell in nb.cells:
        metadata = cell.get("metadata", {})
        otter = metadata.get("otter", {}) if isinstance(metadata.get("otter"), dict) else {}
        if IGNORE_TAG in metadata.get("tags", []) or otter.get("ignore", False):
            continue
        cells.append(cell)
        if otter.get("tests"):
            cells.append(kit_cell("".join(f"{NOTEBOOK}().check({test!r})\n" for test in otter["tests"])))
    tests = str(Path(tests).resolve())
    cells.insert(0, kit_cell(ENTER_CELL.format(notebook=NOTEBOOK, tests=tests, cwd=str(Path(cwd).resolve()))))
    nb.cells = cells
