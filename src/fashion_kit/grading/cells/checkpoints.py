"""Cells: a trail that says where a notebook stopped before it finished.

If a notebook hangs, or its kernel is killed for using too much memory, the student must learn
which cell was running. A small cell goes in front of every code cell of the submission
(and one after the last) that, inside the student's kernel, records in the evidence folder
``running.json``: which of the student's code cells is about to run (its number and first line).
Every question answered before keeps its grade anyway: its values were handed over right after it
(:mod:`evidence`), and phase 2 decides it from them.

It is plain JSON written by the student's kernel: the trusted phase validates it, shows one line of
it, and never executes anything from it.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from ...contract import RUNNING_FILE
from . import is_kit_cell, kit_cell

# Long enough to recognise the cell, short enough for a one-line message.
FIRST_LINE_CHARS = 80

# Defined once, under a name no student would use, so each marker cell is a single short call.
HELPER_CELL = """\
def __fashion_kit_checkpoint__(cell, first_line, folder={folder!r}):
    import json, os
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
    cells = [kit_cell(HELPER_CELL.format(folder=folder, running=RUNNING_FILE))]
    number = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and not is_kit_cell(cell):
            number += 1
            cells.append(kit_cell(MARKER_CELL.format(cell=number, first_line=first_line(cell.source))))
        cells.append(cell)
    cells.append(kit_cell(MARKER_CELL.format(cell=None, first_line="")))
    nb.cells = cells
