"""Cells: the evidence the trusted phase grades from, saved where each question is answered.

Right after a question's ``grader.check`` cell (or at the end, for a question whose check cell is
gone), a cell of the kit's saves the notebook's ``model`` as ``<question>.keras`` in the evidence
folder. At question 8 it also keeps the ``test_acc`` the notebook reported and its own
``test_images`` (so a notebook that evaluated its own, differently scaled test images honestly is
not taken for one that lied). The trusted phase reads these files after the notebook's processes
are dead, as data only: the model files with a reader that executes nothing, the numbers with
JSON, the images with ``numpy.load(allow_pickle=False)``.

A notebook can of course tamper with these cells too; what it cannot do is make a wrong model look
right: the grader measures the saved model itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from ...contract import EVIDENCE_QUESTIONS, MODEL_SNAPSHOT, Q_EVALUATE, TEST_IMAGES_FILE, VALUES_FILE
from . import is_kit_cell, kit_cell

HELPER_CELL = """\
def __fashion_kit_evidence__(question, folder={folder!r}):
    import json, os
    import numpy as np
    found = globals()
    model = found.get("model")
    if model is not None and hasattr(model, "save"):
        try:
            model.save(os.path.join(folder, {snapshot!r}.format(question=question)))
        except Exception:
            pass  # nothing saved: the grader says so
    if question == {evaluate!r}:
        values = {{}}
        try:
            values["test_acc"] = float(found.get("test_acc"))
        except Exception:
            pass
        with open(os.path.join(folder, {values!r}), "w", encoding="utf-8") as f:
            json.dump(values, f)
        images = found.get("test_images")
        if isinstance(images, np.ndarray) and images.size == 10000 * 28 * 28:
            try:
                np.save(os.path.join(folder, {images!r}), images.astype(np.float32, copy=False))
            except Exception:
                pass
"""
EVIDENCE_CELL = "__fashion_kit_evidence__({question!r})"


def check_pattern(question: str) -> re.Pattern:
    return re.compile(r"grader\.check\(\s*['\"]" + re.escape(question) + r"['\"]\s*\)")


def apply(nb: nbformat.NotebookNode, folder: Path) -> None:
    """Insert the evidence cells; ``folder`` is the evidence folder."""
    folder = str(Path(folder).resolve())
    cells = [kit_cell(HELPER_CELL.format(
        folder=folder, snapshot=MODEL_SNAPSHOT, evaluate=Q_EVALUATE, values=VALUES_FILE,
        images=TEST_IMAGES_FILE,
    ))]
    placed = set()
    for cell in nb.cells:
        cells.append(cell)
        if cell.cell_type != "code" or is_kit_cell(cell):
            continue
        for question in EVIDENCE_QUESTIONS:
            if question not in placed and check_pattern(question).search(cell.source):
                placed.add(question)
                cells.append(kit_cell(EVIDENCE_CELL.format(question=question)))
    # A question whose check cell is gone is checked at the very end; its evidence is taken there.
    cells.extend(kit_cell(EVIDENCE_CELL.format(question=q)) for q in EVIDENCE_QUESTIONS if q not in placed)
    nb.cells = cells
