"""Cells: grading is deterministic, for TensorFlow/Keras too, and quiet.

One cell in front of the submission seeds Keras (which seeds Python, numpy and TensorFlow) with the
grading settings' ``seed`` and, as Otter's ``seed`` always did, reseeds numpy and ``random`` with it
before every later cell (but a cell magic's), so a cell's random numbers do not depend on the cells
run before it. TensorFlow's op determinism is left off: on the CPU the lesson's ops train bit for bit
the same without it (measured, also under load; the determinism test grades twice), and it made the
lesson's training 2 s (12 %) slower.

The same cell makes Keras quiet: nobody reads a graded notebook's progress bars. Interactive logging
goes off, and ``fit``, ``evaluate`` and ``predict`` run with ``verbose=0`` whatever the notebook asks:
with ``verbose=1`` (the default in a notebook) Keras fetches the metrics after every training step
to update the bar, which made the lesson's ``fit`` about a third slower, whether or not the bar is
shown. What a fit computes (its History, its steps) does not depend on ``verbose``.
"""

from __future__ import annotations

import nbformat

from ...contract import SLOW_OPTIONAL_MODULES
from . import ARGUMENT_EDITOR, kit_cell

SEED_CELL = """\
import sys as _fashion_kit_sys
for _fashion_kit_name in {skip!r}:
    _fashion_kit_sys.modules.setdefault(_fashion_kit_name, None)
import keras as _fashion_kit_keras
_fashion_kit_keras.utils.set_random_seed({seed})
_fashion_kit_keras.config.disable_interactive_logging()


for _fashion_kit_name in ("fit", "evaluate", "predict"):
    setattr(_fashion_kit_keras.Model, _fashion_kit_name, __fashion_kit_edit_arguments__(
        getattr(_fashion_kit_keras.Model, _fashion_kit_name), lambda arguments: arguments.update(verbose=0)))


def __fashion_kit_reseed__(info, seed={seed}):
    if not info.raw_cell.startswith("%%"):
        import random, numpy
        numpy.random.seed(seed)
        random.seed(seed)


get_ipython().events.register("pre_run_cell", __fashion_kit_reseed__)
del _fashion_kit_keras, _fashion_kit_sys, _fashion_kit_name, __fashion_kit_edit_arguments__
"""


def apply(nb: nbformat.NotebookNode, seed: int) -> None:
    """Insert the seeding cell before the first one, with the grading settings' ``seed``."""
    nb.cells.insert(0, kit_cell(ARGUMENT_EDITOR + SEED_CELL.format(seed=int(seed), skip=SLOW_OPTIONAL_MODULES)))
