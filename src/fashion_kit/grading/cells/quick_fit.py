"""Cells, for the kit's own tests only: a quick fit, where a test proves something else than accuracy.

With this cell every ``fit`` on arrays trains with the whole array as one batch: five epochs are five
optimizer steps over all 60,000 images instead of 9,375, so the fit's record (the images, the epochs,
steps that match the batch size) is the one an honest fit leaves and question 6's evidence holds,
while the model learns little. A tf.data pipeline, a PyDataset or a generator trains as it asks.

Only the grading core turns it on, from its own environment (``core.QUICK_FIT_ENV``): never a
notebook (its kernel's environment is not the core's), an upload or the autograder's settings (no
setting names it). A grading made with it says so in results.json and in its log.
"""

from __future__ import annotations

import nbformat

from . import ARGUMENT_EDITOR, is_kit_cell, kit_cell

QUICK_FIT_CELL = ARGUMENT_EDITOR + """\
def __fashion_kit_one_batch__(arguments):
    x = arguments.get("x")
    if getattr(x, "ndim", 0) and arguments.get("steps_per_epoch") is None:
        arguments["batch_size"] = len(x)


import keras as _fashion_kit_keras
_fashion_kit_keras.Model.fit = __fashion_kit_edit_arguments__(_fashion_kit_keras.Model.fit, __fashion_kit_one_batch__)
del _fashion_kit_keras, __fashion_kit_edit_arguments__, __fashion_kit_one_batch__
"""


def apply(nb: nbformat.NotebookNode) -> None:
    """Insert the quick-fit cell after the kit's leading cells, so it wraps their ``fit`` and the
    evidence recorder sees the batch size it trains with."""
    first_students = next((i for i, cell in enumerate(nb.cells) if not is_kit_cell(cell)), len(nb.cells))
    nb.cells.insert(first_students, kit_cell(QUICK_FIT_CELL))
