"""Otter plugin that lets grading survive a submission that is stopped before it finishes.

Otter writes its results only once, after the last cell. If a notebook hangs, or its kernel is
killed for using too much memory, nothing is written and the student scores 0 with no word of why.
This plugin puts a small cell in front of every code cell of the submission (and one after the last)
that, inside the student's kernel, records

* ``running.json``: which of the student's code cells is about to run (its number and first line);
* ``checked.pkl``: the questions Otter has checked so far, pickled exactly as Otter pickles its final
  results, rewritten only when a new check has happened.

``run_otter.grade`` reads both after it had to stop the run, so every question checked before that
keeps its score and the message can name the cell that was running.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import nbformat
from otter.plugins import AbstractOtterPlugin

RUNNING = "running.json"
CHECKED = "checked.pkl"
# Long enough to recognise the cell, short enough for a one-line message.
FIRST_LINE_CHARS = 80

# Defined once, under a name no student would use, so each marker cell is a single short call.
HELPER_CELL = """\
def __fashion_kit_checkpoint__(cell, first_line, folder={folder!r}):
    import json, os, pickle
    from otter.execute import Checker
    from otter.test_files import GradingResults
    checked = Checker.get_results()
    if len(checked) != getattr(__fashion_kit_checkpoint__, "saved", -1):
        with open(os.path.join(folder, "{checked}.partial"), "wb") as f:
            pickle.dump(GradingResults(checked), f)
        os.replace(os.path.join(folder, "{checked}.partial"), os.path.join(folder, "{checked}"))
        __fashion_kit_checkpoint__.saved = len(checked)
    with open(os.path.join(folder, "{running}"), "w", encoding="utf-8") as f:
        json.dump({{"cell": cell, "first_line": first_line}}, f, ensure_ascii=False)
"""

MARKER_CELL = "__fashion_kit_checkpoint__({cell!r}, {first_line!r})"


def first_line(source: str) -> str:
    line = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return line if len(line) <= FIRST_LINE_CHARS else line[: FIRST_LINE_CHARS - 1] + "…"


def _hidden(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cell.metadata["tags"] = ["fashion_kit_checkpoint"]
    return cell


class Checkpoints(AbstractOtterPlugin):
    """Configured as ``{"checkpoints.Checkpoints": {"folder": PATH}}`` by ``run_otter.grade``."""

    def before_execution(self, submission):
        if not isinstance(submission, nbformat.NotebookNode):
            return submission  # a .py submission is one cell; there is nothing to mark
        folder = str(Path(self.plugin_config["folder"]).resolve())
        cells = [
            _hidden(nbformat.v4.new_code_cell(
                HELPER_CELL.format(folder=folder, checked=CHECKED, running=RUNNING)
            ))
        ]
        number = 0
        for cell in submission.cells:
            if cell.cell_type == "code":
                number += 1
                marker = MARKER_CELL.format(cell=number, first_line=first_line(cell.source))
                cells.append(_hidden(nbformat.v4.new_code_cell(marker)))
            cells.append(cell)
        cells.append(_hidden(nbformat.v4.new_code_cell(MARKER_CELL.format(cell=None, first_line=""))))
        submission.cells = cells
        return submission


def running_cell(folder: Path) -> dict | None:
    """``{"cell": n, "first_line": ...}`` of the student's code cell that was running, if any."""
    try:
        found = json.loads((folder / RUNNING).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if found.get("cell") is not None else None


def checked_results(folder: Path):
    """Otter's ``GradingResults`` for the questions checked before the run stopped, or None."""
    try:
        with open(folder / CHECKED, "rb") as f:
            return pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None
