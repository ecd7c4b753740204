"""Otter plugin: grading is deterministic for TensorFlow/Keras too, and quiet.

Otter's own ``seed`` (otter_config.json) reseeds numpy and ``random`` before every cell, but not
TensorFlow, so weight initialisation and shuffling in ``fit`` would still vary between gradings. This
plugin puts one cell in front of the submission that seeds Keras (which seeds Python, numpy and
TensorFlow) with that same seed. TensorFlow's op determinism is left off: on the CPU the lesson's ops
train bit for bit the same without it (measured, also under load; the determinism test grades twice),
and it made the lesson's training 2 s (12 %) slower.

The same cell turns off Keras's interactive logging: nobody reads a graded notebook's progress bars,
and streaming one update per training step through the kernel costs seconds per grading.
"""

from __future__ import annotations

from otter.plugins import AbstractOtterPlugin

from ...contract import SLOW_OPTIONAL_MODULES
from . import kit_cell

SEED_CELL = """\
import sys as _fashion_kit_sys
for _fashion_kit_name in {skip!r}:
    _fashion_kit_sys.modules.setdefault(_fashion_kit_name, None)
import keras as _fashion_kit_keras
_fashion_kit_keras.utils.set_random_seed({seed})
_fashion_kit_keras.config.disable_interactive_logging()
del _fashion_kit_keras, _fashion_kit_sys, _fashion_kit_name
"""


class SeedTensorFlow(AbstractOtterPlugin):
    """Configured as ``{"...SeedTensorFlow": {"seed": N}}`` with the grading settings' seed (the
    same ``seed`` Otter uses for numpy); ``before_execution`` inserts the cell before the first one."""

    def before_execution(self, submission):
        source = SEED_CELL.format(seed=int(self.plugin_config["seed"]), skip=SLOW_OPTIONAL_MODULES)
        if isinstance(submission, str):  # a .py submission
            return source + "\n" + submission
        submission.cells.insert(0, kit_cell(source))
        return submission
