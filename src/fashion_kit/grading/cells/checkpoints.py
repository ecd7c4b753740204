"""Cells: a trail that lets grading survive a notebook stopped before it finishes.

Phase 1 keeps no results of its own: the checks' verdicts are the trail. If a notebook hangs, or its
kernel is killed for using too much memory, the trail up to there is what the student keeps, with a
word of why. A small cell goes in front of every code cell of the submission (and one after the last,
the questions checked at the very end included) that, inside the student's kernel, records in the
evidence folder

* ``running.json``: which of the student's code cells is about to run (its number and first line);
* ``checked.json``: the questions Otter has checked so far, in the order they were first checked,
  each with its score, its possible points, its message and the message of its public tests alone
  (Otter's "Public Tests" box), rewritten only when a new check has happened.

Both are plain JSON written by the student's kernel: the trusted phase validates them, caps every
score at the points the autograder's own tests give the question, and never executes anything from
them.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from ...contract import CHECKED_FILE, RUNNING_FILE
from . import is_kit_cell, kit_cell

# Long enough to recognise the cell, short enough for a one-line message.
FIRST_LINE_CHARS = 80
# A check's message is kept up to this length (the trusted phase caps it again).
MESSAGE_CHARS = 4000

# Defined once, under a name no student would use, so each marker cell is a single short call.
HELPER_CELL = """\
def __fashion_kit_checkpoint__(cell, first_line, folder={folder!r}):
    import json, os
    from otter.execute import Checker
    checked = Checker.get_results()
    if len(checked) != getattr(__fashion_kit_checkpoint__, "saved", -1):
        questions = {{}}
        for test in checked:
            questions[test.name] = {{"score": float(test.score), "possible": float(test.possible),
                                    "output": test.summary()[:{chars}],
                                    "public": test.summary(public_only=True)[:{chars}]}}
        with open(os.path.join(folder, "{checked}.partial"), "w", encoding="utf-8") as f:
            json.dump(questions, f, ensure_ascii=False)
        os.replace(os.path.join(folder, "{checked}.partial"), os.path.join(folder, "{checked}"))
        __fashion_kit_checkpoint__.saved = len(checked)
    with open(os.path.join(folder, "{running}"), "w", encoding="utf-8") as f:
        json.dump({{"cell": cell, "first_line": first_line}}, f, ensure_ascii=False)
"""

MARKER_CELL = "__fashion_kit_checkpoint__({cell!r}, {first_line!r})"


def first_line(source: str) -> str:
    line = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return line if len(line) <= FIRST_LINE_CHARS else line[: FIRST_LINE_CHARS - 1] + "…"


def apply(nb: nbformat.NotebookNode, folder: Path) -> None:
    """Insert the checkpoint cells; ``folder`` is the evidence folder."""
    folder = str(Path(folder).resolve())
    cells = [kit_cell(HELPER_CELL.format(folder=folder, checked=CHECKED_FILE, running=RUNNING_FILE,
                                         chars=MESSAGE_CHARS))]
    number = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and not is_kit_cell(cell):
            number += 1
            cells.append(kit_cell(MARKER_CELL.format(cell=number, first_line=first_line(cell.source))))
        cells.append(cell)
    cells.append(kit_cell(MARKER_CELL.format(cell=None, first_line="")))
    nb.cells = cells
