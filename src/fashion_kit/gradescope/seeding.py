"""Otter plugin that makes grading deterministic for TensorFlow/Keras too.

Otter's own ``seed`` (otter_config.json) reseeds numpy and ``random`` before every cell, but not
TensorFlow, so weight initialisation and shuffling in ``fit`` would still vary between gradings. This
plugin puts one cell in front of the submission that seeds Keras (which seeds Python, numpy and
TensorFlow) with that same ``seed`` and turns on TensorFlow's op determinism, so reductions on several
CPU threads add up in the same order every time. It runs inside Otter, so it applies on Gradescope
exactly as in local grading.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from otter.plugins import AbstractOtterPlugin

CONFIG = Path(__file__).resolve().parent / "otter_config.json"

SEED_CELL = """\
import keras as _fashion_kit_keras
import tensorflow as _fashion_kit_tf
_fashion_kit_keras.utils.set_random_seed({seed})
_fashion_kit_tf.config.experimental.enable_op_determinism()
del _fashion_kit_keras, _fashion_kit_tf
"""


def grading_seed(config_path: Path = CONFIG) -> int:
    """The one seed of the assignment: Otter's top-level ``seed`` in otter_config.json."""
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if not isinstance(config.get("seed"), int):
        raise ValueError(f"{config_path} must set \"seed\" to a whole number, found {config.get('seed')!r}.")
    return config["seed"]


def seed_cell(seed: int):
    return nbformat.v4.new_code_cell(SEED_CELL.format(seed=int(seed)))


class SeedTensorFlow(AbstractOtterPlugin):
    """``before_execution``: insert the seeding cell before the student's first cell."""

    def before_execution(self, submission):
        if isinstance(submission, str):  # a .py submission
            return SEED_CELL.format(seed=grading_seed()) + "\n" + submission
        submission.cells.insert(0, seed_cell(grading_seed()))
        return submission
