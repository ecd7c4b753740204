"""Otter plugin: grading is deterministic for TensorFlow/Keras too, and quiet.

Otter's own ``seed`` (otter_config.json) reseeds numpy and ``random`` before every cell, but not
TensorFlow, so weight initialisation and shuffling in ``fit`` would still vary between gradings. This
plugin puts one cell in front of the submission that seeds Keras (which seeds Python, numpy and
TensorFlow) with that same seed and turns on TensorFlow's op determinism, so reductions on several
CPU threads add up in the same order every time.

The same cell turns off Keras's interactive logging: nobody reads a graded notebook's progress bars,
and streaming one update per training step through the kernel costs seconds per grading.
"""

from __future__ import annotations

from otter.plugins import AbstractOtterPlugin

from . import kit_cell

SEED_CELL = """\
import keras as _fashion_kit_keras
import tensorflow as _fashion_kit_tf
_fashion_kit_keras.utils.set_random_seed({seed})
_fashion_kit_tf.config.experimental.enable_op_determinism()
_fashion_kit_keras.config.disable_interactive_logging()
del _fashion_kit_keras, _fashion_kit_tf
"""


class SeedTensorFlow(AbstractOtterPlugin):
    """Configured as ``{"...SeedTensorFlow": {"seed": N}}`` with the grading settings' seed (the
    same ``seed`` Otter uses for numpy); ``before_execution`` inserts the cell before the first one."""

    def before_execution(self, submission):
        source = SEED_CELL.format(seed=int(self.plugin_config["seed"]))
        if isinstance(submission, str):  # a .py submission
            return source + "\n" + submission
        submission.cells.insert(0, kit_cell(source))
        return submission
