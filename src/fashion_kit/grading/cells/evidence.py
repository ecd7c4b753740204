"""Cells: the evidence the trusted phase grades from, taken where each question is answered.

Right after a question's ``grader.check`` cell (or at the end, for a question whose check cell is
gone), a cell of the kit's collects what that question is decided on, with the same collectors the
checks use (:mod:`fashion_kit.checks`, copied into the cell through the question registry), and writes it as
``<question>.json`` in the evidence folder: the arrays' shapes, statistics and digests (q1, q3), the
class names (q2), the numbers (q8, q10), the history and every ``fit`` the model went through (q6).
For a question whose grade needs the model it also saves the notebook's ``model`` as
``<question>.keras``; at question 8 it keeps the notebook's own ``test_images`` too (so a notebook
that evaluated its own, differently scaled test images honestly is not taken for one that lied).
The first cell also records each call of ``fit`` (how many examples, which images, the batch size,
the validation split, the epochs and steps done, a digest of the weights it left), which is what q6
is decided on, and what q9 checks the evaluated model's weights against. NumPy arrays are recorded
as handed to ``fit``; any other input (a tensor, a tf.data pipeline, a PyDataset, a generator) from
inside training: the model's ``train_step`` hands each batch's images to the recorder as it trains
on them, so the record is what the model saw and the data are read once, by Keras.

The trusted phase reads these files after the notebook's processes are dead, as data only: the
model files with a reader that executes nothing, the values with JSON, the images with
``numpy.load(allow_pickle=False)``. A notebook can tamper with these cells too; what it cannot do is
make a wrong model look right: the grader measures the saved models itself. So the collectors
here leave the models unmeasured (no accuracy, no reading back of the saved file): phase 2 does it.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from ... import questions
from ...contract import MODEL_SNAPSHOT, QUESTION_VALUES, TEST_IMAGES_FILE
from ...questions import NAMES, Q_EVALUATE, WITH_SNAPSHOT
from . import is_kit_cell, kit_cell

# The collectors' code, run in a namespace of its own so no name of the notebook's is touched.
COLLECTORS = questions.collectors_code()

HELPER_CELL = """\
def __fashion_kit_setup__(code):
    import functools, inspect
    import keras
    import numpy as np
    namespace = {{}}
    exec(compile(code, "fashion_kit_checks", "exec"), namespace)
    fits = {{}}
    fit = keras.Model.fit
    signature = inspect.signature(fit)
    key_weights = namespace["key_weights"]()
    watching = []  # what the fit in progress has trained on (the innermost fit last)

    def observe(batch):
        # Called by the training step with each batch's images as it trains on them.
        if watching:
            seen = watching[-1]
            size = int(np.shape(batch)[0]) if np.ndim(batch) else 1
            keys = namespace["example_keys"](batch, key_weights)
            seen["batches"] += 1
            seen["examples"] += size
            seen["largest"] = max(seen["largest"], size)
            if keys is None:
                seen["other"] = True
            else:
                seen["keys"].append(keys)
        return np.int64(0)

    def watch(model):
        # The training step itself hands each batch to observe, so what is recorded is what the
        # model trained on, whatever fed it (a tf.data pipeline, a PyDataset, a generator), and
        # the data are read once, by Keras, as without the grader.
        if getattr(model.train_step, "__fashion_kit_watched__", False):
            return True
        if keras.backend.backend() != "tensorflow" or model.jit_compile:
            return False  # XLA cannot call back into Python
        import tensorflow as tf
        step = model.train_step

        def watched_step(data):
            x = data[0] if isinstance(data, (tuple, list)) else data
            # A stateful op runs in every step of the traced function although nothing uses its
            # result, beside the step's own work rather than before it.
            tf.numpy_function(observe, [tf.nest.flatten(x)[0]], tf.int64, stateful=True)
            return step(data)

        watched_step.__fashion_kit_watched__ = True
        model.train_step = watched_step
        model.train_function = None  # built again, around the watched step
        return True

    @functools.wraps(fit)
    def recorded_fit(self, *args, **kwargs):
        try:
            bound = signature.bind(self, *args, **kwargs).arguments
        except TypeError:  # wrong arguments: Keras's own error, as without the grader
            return fit(self, *args, **kwargs)
        x = bound.get("x")
        seen = {{"batches": 0, "examples": 0, "largest": 0, "keys": [], "other": False}}
        try:
            watched = not isinstance(x, np.ndarray) and watch(self)
        except Exception:
            watched = False
        watching.append(seen)
        try:
            history = fit(self, *args, **kwargs)
        finally:
            watching.pop()
        try:
            record = getattr(history, "history", {{}}) or {{}}
            done = len(record.get("loss") or [])
            steps = (getattr(history, "params", None) or {{}}).get("steps")
            if watched:
                keys = np.concatenate(seen["keys"]) if seen["keys"] else np.zeros(0)
                training = not seen["other"] and namespace["examples_digest"](keys) == {examples_digest!r}
                per_epoch = seen["examples"] // done if done else 0
                found = {{
                    "examples": min({training_examples}, per_epoch) if training else int(len(np.unique(keys))),
                    "images": "training_images" if training else "other",
                    "batch_size": seen["largest"],
                    "validation_split": float(bound.get("validation_split") or 0.0),
                    "epochs_done": done,
                    "steps": steps or (seen["batches"] // done if done else None),
                    "seen": seen["examples"],
                }}
            else:
                digest = namespace["describe_array"](x) if x is not None else {{}}
                official = {official!r}
                found = {{
                    "examples": int(len(x)) if hasattr(x, "__len__") else None,
                    "images": "training_images" if official in (digest.get("digest"), digest.get("digest_times_255")) else "other",
                    "batch_size": bound.get("batch_size") or 32,
                    "validation_split": float(bound.get("validation_split") or 0.0),
                    "epochs_done": done,
                    "steps": steps,
                }}
            # The weights this fit left: the model graded must still hold them (question 9).
            found["weights"] = namespace["weights_digest"](self.get_weights())
            fits.setdefault(id(self), []).append(found)
        except Exception:
            fits.setdefault(id(self), []).append({{"error": "not recorded"}})
        return history

    keras.Model.fit = recorded_fit
    return namespace, fits


__fashion_kit_checks__, __fashion_kit_fit_records__ = __fashion_kit_setup__({code!r})
del __fashion_kit_setup__


def __fashion_kit_evidence__(question, folder={folder!r}):
    import json, os
    import numpy as np
    found = globals()
    env = dict(found)
    model = found.get("model")
    env["__fashion_kit_fits__"] = __fashion_kit_fit_records__.get(id(model))
    env[{measured_by_grader!r}] = True  # phase 2 measures the saved models: not measured twice
    try:
        values = __fashion_kit_checks__["collect_" + question](env)
    except Exception as e:
        values = {{"error": type(e).__name__}}
    with open(os.path.join(folder, {values!r}.format(question=question)), "w", encoding="utf-8") as f:
        json.dump(values, f)
    if question in {snapshots!r} and model is not None and hasattr(model, "save"):
        try:
            model.save(os.path.join(folder, {snapshot!r}.format(question=question)))
        except Exception:
            pass  # nothing saved: the grader says so
    if question == {evaluate!r}:
        images = found.get("test_images")
        if isinstance(images, np.ndarray) and images.size == 10000 * 28 * 28:
            try:
                np.save(os.path.join(folder, {images!r}), images.astype(np.float32, copy=False))
            except Exception:
                pass
"""
EVIDENCE_CELL = "__fashion_kit_evidence__({question!r})"


def helper_cell(folder: str) -> str:
    """The first of the kit's evidence cells: the collectors, the fit recorder, the evidence function."""
    return HELPER_CELL.format(
        code=COLLECTORS, measured_by_grader=questions.MEASURED_BY_GRADER,
        official=questions.OFFICIAL_DIGESTS["training_images"],
        examples_digest=questions.TRAINING_EXAMPLES_DIGEST, training_examples=questions.TRAINING_EXAMPLES,
        folder=folder, values=QUESTION_VALUES, snapshots=list(WITH_SNAPSHOT), snapshot=MODEL_SNAPSHOT,
        evaluate=Q_EVALUATE, images=TEST_IMAGES_FILE)


def check_pattern(question: str) -> re.Pattern:
    return re.compile(r"grader\.check\(\s*['\"]" + re.escape(question) + r"['\"]\s*\)")


def apply(nb: nbformat.NotebookNode, folder: Path) -> None:
    """Insert the evidence cells; ``folder`` is the evidence folder."""
    folder = str(Path(folder).resolve())
    cells = [kit_cell(helper_cell(folder))]
    placed = set()
    for cell in nb.cells:
        cells.append(cell)
        if cell.cell_type != "code" or is_kit_cell(cell):
            continue
        for question in NAMES:
            if question not in placed and check_pattern(question).search(cell.source):
                placed.add(question)
                cells.append(kit_cell(EVIDENCE_CELL.format(question=question)))
    # A question whose check cell is gone is checked at the very end; its evidence is taken there.
    cells.extend(kit_cell(EVIDENCE_CELL.format(question=q)) for q in NAMES if q not in placed)
    nb.cells = cells
