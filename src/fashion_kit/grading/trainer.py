"""The challenge's trainer: the grader trains the notebook's recipe itself, in a process of its own.

``python -I -m fashion_kit.grading.trainer REQUEST`` builds the model the recipe describes (the
trusted core checked it: :mod:`challenge_recipe`) with Keras's own deserializer, ``safe_mode=True``
and no custom objects, so nothing of the student's code exists here to run: every weight starts
from Keras's initialisers, seeded with the grading's seed. It trains the model with the recipe's
epochs and batch size on the 60,000 training images, the only images its folder holds (the test
set is nowhere this process can read: not in its folder, not in a Keras cache), and stops as soon as
its budget of CPU seconds is used, even in the middle of an epoch, as the notebook's ``TimeBudget``
does with wall time. CPU seconds, not wall time: a loaded machine trains more slowly, but no less.
It writes the trained model without its optimizer's state (the evaluator measures it on the test
set, like any model) and an answer saying how far the training went, or why there is no model.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from . import evaluator

# Besides the training's budget: Keras's import, building the model and saving it (about 15 CPU
# seconds here; the limit is a backstop, the budget is enforced by the callback).
SETUP_CPU_SECONDS = 120


def train(request: dict) -> dict:
    """Build, train and save the model of ``request["recipe"]``; what happened, as data.

    request: {"data": folder holding the training files, "recipe": path of the checked recipe,
              "model": where the trained model goes, "cpu_seconds": the training's budget,
              "seed": the grading's seed}
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    recipe = json.loads(Path(request["recipe"]).read_text(encoding="utf-8"))
    keras.utils.set_random_seed(int(request["seed"]))
    try:
        model = keras.saving.deserialize_keras_object(recipe["model"], safe_mode=True)
        if not isinstance(model, keras.Model) or type(model).__name__ not in ("Sequential", "Functional"):
            raise TypeError(f"a {type(model).__name__}, not a Sequential or Functional model")
        foreign = [type(x).__name__ for x in _all_layers(model) if not type(x).__module__.startswith("keras.")]
        if foreign:
            raise TypeError(f"layers that are not Keras's own: {', '.join(foreign[:3])}")
        if model.optimizer is None or not model.compiled:
            raise TypeError("the model is not compiled")
    except Exception as e:  # the student reads why: Keras's words, without the exception's class
        return {"refused": _why(e)}
    data = Path(request["data"])
    images = evaluator.read_idx(data / evaluator.TRAIN_IMAGES).astype(np.float32) / np.float32(255.0)
    labels = evaluator.read_idx(data / evaluator.TRAIN_LABELS).astype(np.int64)
    images = evaluator.fit_input(images, model.inputs[0].shape[1:])
    budget = cpu_budget(keras, float(request["cpu_seconds"]))
    try:
        model.fit(images, labels, epochs=recipe["epochs"], batch_size=recipe["batch_size"], shuffle=True,
                  callbacks=[budget], verbose=0)
    except Exception as e:
        return {"error": f"training failed: {_why(e)}"}
    # The weights alone go on, in an uncompiled twin built from the same recipe: the optimizer's
    # state would triple the file and is not measured.
    trained = keras.saving.deserialize_keras_object({**recipe["model"], "compile_config": None}, safe_mode=True)
    trained.set_weights(model.get_weights())
    trained.save(request["model"])
    return {"epochs": budget.epochs, "steps": budget.steps, "cpu_seconds": round(budget.used, 1),
            "time_is_up": budget.time_is_up, "params": int(model.count_params())}


def _all_layers(model):
    """Every layer of ``model``, those of the models nested in it included."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def _why(e: BaseException) -> str:
    return (str(e) or type(e).__name__)[:300]


def cpu_budget(keras, seconds: float):
    """A Keras callback that stops training once ``seconds`` of this process's CPU time are used
    from the start of training, and counts the epochs and steps done. (Its class is made here:
    Keras is imported only in :func:`train`, once TensorFlow's log level is set.)"""

    class CPUBudget(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.used, self.time_is_up, self.epochs, self.steps = 0.0, False, 0, 0

        def on_train_begin(self, logs=None):
            self.start = time.process_time()

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            self.used = time.process_time() - self.start
            if self.used >= seconds:
                self.time_is_up = self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if not self.time_is_up:
                self.epochs += 1

    return CPUBudget()


def main(argv: list[str] | None = None) -> int:
    """``trainer REQUEST.json``: limits its own CPU time (the budget and SETUP_CPU_SECONDS), trains,
    and writes its answer to the request's ``answer`` file, whole or not at all."""
    import warnings

    argv = sys.argv[1:] if argv is None else argv
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    evaluator.limit_cpu(int(float(request["cpu_seconds"])) + SETUP_CPU_SECONDS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = train(request)
    evaluator.write_answer(Path(request["answer"]), found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
