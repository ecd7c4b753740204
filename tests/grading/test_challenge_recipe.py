"""The challenge's entry: the recipe phase 1 leaves (grading/cells/challenge.py), read by the trusted
core as hostile JSON (grading/challenge_recipe.py) and trained by the grader's own trainer
(grading/trainer.py). The recipes are written the way the phase-1 cell writes them, from models Keras
builds here; nothing in the reader's tests trains."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from fashion_kit import contract as c
from fashion_kit import data
from fashion_kit.grading import challenge_recipe, core, evaluator, sandbox
from fashion_kit.grading.cells import challenge as challenge_cell
from fashion_kit.settings import Settings


def recipe_of(build, tmp_path: Path, *, run: bool = True, epochs=10, batch_size=64) -> Path:
    """The evidence folder the phase-1 cell leaves for a notebook whose build_challenge_model is ``build``."""
    evidence = tmp_path / "evidence"
    evidence.mkdir(exist_ok=True)
    cell = challenge_cell.CELL.format(folder=str(evidence), name=c.CHALLENGE_RECIPE_FILE)
    exec(cell, {"RUN_CHALLENGE": run, "build_challenge_model": build, "CHALLENGE_EPOCHS": epochs,
                "CHALLENGE_BATCH_SIZE": batch_size})
    return evidence


def read(evidence: Path, tmp_path: Path):
    return challenge_recipe.read(evidence, tmp_path)


def compiled(model):
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def reference():
    import keras

    return compiled(keras.Sequential([
        keras.Input((28, 28)), keras.layers.Reshape((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Flatten(), keras.layers.Dropout(0.3),
        keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10, activation="softmax")]))


def test_honest_recipes_as_keras_writes_them_are_read(tmp_path):
    import keras
    import tensorflow as tf

    def functional():
        inputs = keras.Input((28, 28))
        x = keras.layers.RandomTranslation(0.1, 0.1)(keras.layers.Reshape((28, 28, 1))(inputs))
        x = keras.layers.BatchNormalization()(keras.layers.Conv2D(16, 3, activation=tf.nn.relu)(x))
        outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(),
                      metrics=[keras.metrics.SparseCategoricalAccuracy()])
        return model

    for build in (reference, functional):
        found = read(recipe_of(build, tmp_path), tmp_path)
        assert found["epochs"] == 10 and found["batch_size"] == 64, build.__name__
        assert found["model"]["class_name"] in ("Sequential", "Functional")


def test_a_notebook_that_does_not_take_the_challenge_enters_nothing(tmp_path):
    assert read(recipe_of(reference, tmp_path, run=False), tmp_path) is None
    assert not (tmp_path / "evidence" / c.CHALLENGE_RECIPE_FILE).exists()


def refusal(build, tmp_path, **kwargs) -> challenge_recipe.Refused:
    with pytest.raises(challenge_recipe.Refused) as caught:
        read(recipe_of(build, tmp_path, **kwargs), tmp_path)
    message = str(caught.value)
    assert " / " in message and "Expected" in message, "one message, in both languages"
    return caught.value


def test_code_custom_objects_subclasses_and_fixed_weights_are_refused_each_with_its_message(tmp_path):
    import keras
    import numpy as np

    class Doubling(keras.layers.Layer):
        def call(self, x):
            return x * 2

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.flat, self.out = keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")

        def call(self, x):
            return self.out(self.flat(x))

    def my_relu(x):
        return keras.activations.relu(x)

    def sequential(*layers):
        return lambda: compiled(keras.Sequential([keras.Input((28, 28)), *layers, keras.layers.Flatten(),
                                                  keras.layers.Dense(10, activation="softmax")]))

    lookup = np.ones((784, 10), "float32")
    cases = {
        "custom": [sequential(Doubling()), sequential(keras.layers.Dense(8, activation=my_relu))],
        "lambda": [sequential(keras.layers.Lambda(lambda x: x * 2))],
        "subclassed": [lambda: compiled(Subclassed())],
        "constant": [sequential(keras.layers.Dense(4, kernel_initializer=keras.initializers.Constant(0.5))),
                     lambda: compiled(keras.Sequential([
                         keras.Input((28, 28)), keras.layers.Flatten(),
                         keras.layers.Dense(10, kernel_initializer=keras.initializers.Constant(lookup))]))],
        "not_compiled": [lambda: keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                                                   keras.layers.Dense(10)])],
    }
    for kind, builds in cases.items():
        for build in builds:
            assert refusal(build, tmp_path).kind == kind
    assert "Doubling" in str(refusal(cases["custom"][0], tmp_path))
    assert "my_relu" in str(refusal(cases["custom"][1], tmp_path))


def test_a_recipe_that_fails_or_is_no_recipe_says_what_was_found(tmp_path):
    def broken():
        raise RuntimeError("no model here")

    assert "no model here" in str(refusal(broken, tmp_path))
    assert refusal(reference, tmp_path, epochs="ten").kind == "garbage"
    assert refusal(reference, tmp_path, batch_size=0).kind == "garbage"
    assert refusal(lambda: "a string", tmp_path).kind == "failed"  # no to_json: phase 1 says so
    evidence = tmp_path / "evidence"
    target = evidence / c.CHALLENGE_RECIPE_FILE
    for payload, shown in ((b"{not json", "not JSON"), (b"[]", "not of type"),
                           (b"[" * 100000 + b"]" * 100000, "not JSON"),
                           (b" " * (challenge_recipe.MAX_RECIPE_BYTES + 1), "allowed")):
        target.write_bytes(payload)
        with pytest.raises(challenge_recipe.Refused, match=shown) as caught:
            read(evidence, tmp_path)
        assert caught.value.kind == "garbage"
    target.unlink()
    target.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(challenge_recipe.Refused):
        read(evidence, tmp_path)


def test_forged_recipes_naming_code_or_data_are_refused_without_keras():
    """What a notebook may write into the file by hand, past Keras's own to_json."""
    def model(*layers, compile_config=None):
        return {"model": {"module": "keras", "class_name": "Sequential", "registered_name": None,
                          "config": {"layers": list(layers)},
                          "compile_config": compile_config or {"optimizer": "adam", "loss": "mse"}},
                "epochs": 1, "batch_size": 32}

    def layer(class_name, module="keras.layers", **config):
        return {"module": module, "class_name": class_name, "config": config, "registered_name": None}

    forged = {
        "custom": [model(layer("Dense", module="os")), model(layer("system", module="os.path")),
                   model({"class_name": "Dense", "config": {}}),
                   model(layer("Dense"), compile_config={"optimizer": layer("Evil", module="__main__"), "loss": "x"})],
        "lambda": [model({"class_name": "__lambda__", "config": {"code": "AAAA"}})],
        "constant": [model(layer("Dense", weights=[[0.1] * 784] * 10)),
                     model(layer("IntegerLookup", vocabulary=list(range(1000))))],
        "subclassed": [{**model(), "model": {**model()["model"], "class_name": "MyModel"}}],
    }
    for kind, recipes in forged.items():
        for recipe in recipes:
            with pytest.raises(challenge_recipe.Refused) as caught:
                challenge_recipe.check(recipe)
            assert caught.value.kind == kind, recipe
    assert challenge_recipe.check(model(layer("Flatten"), layer("Dense", units=10)))


# ---- the trainer: a tiny recipe, one step, in the grader's sandboxed process ------------------------------

def test_the_trainer_trains_a_recipe_from_fresh_weights_on_the_training_set_alone(tmp_path, data_dir):
    """A recipe of one Dense layer and one step (batch 60,000): the trainer's folder holds only the
    training files, it builds the model with fresh weights and stops at its CPU budget."""
    import keras

    def tiny():
        return compiled(keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                                          keras.layers.Dense(10, activation="softmax")]))

    recipe = read(recipe_of(tiny, tmp_path, epochs=2, batch_size=60000), tmp_path)
    # Below the setting's minimum (1 s), so that the first step is sure to use it up: set past the
    # settings' own validation, as no instructor's setting could.
    box = sandbox.NoSandbox(Settings().model_copy(update={"challenge_cpu_seconds": 1e-3}))
    found = core.train_challenge(recipe, tmp_path / "challenge", data_dir, box, Path(os.sys.executable))
    assert sorted(p.name for p in (tmp_path / "challenge").glob("*.gz")) == sorted(data.TRAINING_FILES)
    assert found["steps"] == 1 and found["time_is_up"] and found["epochs"] == 0, found
    facts = evaluator.answer({"data": str(data_dir), "model": found["model"], "accuracy": True,
                              "train_accuracy": False})
    assert 0 <= facts["accuracy"] <= 1 and "train_accuracy" not in facts, facts
    assert facts["params"] == [0, 7850]
    with zipfile.ZipFile(found["model"]) as saved:  # the weights only, not the optimizer's state
        assert not json.loads(saved.read("config.json")).get("compile_config")


def test_a_recipe_keras_cannot_build_is_refused_by_the_trainer(tmp_path, data_dir):
    recipe = {"model": {"module": "keras", "class_name": "Sequential", "registered_name": None,
                        "config": {"layers": [{"module": "keras.layers", "class_name": "NoSuchLayer",
                                               "config": {}, "registered_name": None}]},
                        "compile_config": {"optimizer": "adam", "loss": "mse"}}, "epochs": 1, "batch_size": 32}
    found = core.train_challenge(challenge_recipe.check(recipe), tmp_path / "challenge", data_dir,
                                 sandbox.NoSandbox(), Path(os.sys.executable))
    assert "refused" in found and "NoSuchLayer" in found["refused"], found
    assert not (tmp_path / "challenge" / "trained.keras").exists()


def test_the_trainer_starts_after_the_notebooks_folder_is_gone_and_only_for_a_notebook_that_finished(
        tmp_path, monkeypatch):
    """The work folder holds the notebook's copy of the data set (test images included, in its Keras
    cache, readable by the account the trainer runs as on Gradescope): it is removed first. A notebook
    stopped before its end never ran the challenge's cell: a recipe it left is not trained."""
    recipe = {"model": {"module": "keras", "class_name": "Sequential", "registered_name": None,
                        "config": {"layers": []}, "compile_config": {"optimizer": "adam", "loss": "mse"}},
              "epochs": 1, "batch_size": 32}
    calls = []

    def trainer(checked, folder, data_dir, box, python):
        calls.append(checked)
        assert not work.exists(), "the notebook's folder, and its copy of the test images, are gone"
        return {"error": "stand-in"}

    monkeypatch.setattr(core, "train_challenge", trainer)
    for finished in (True, False):
        work, trusted = tmp_path / str(finished) / "work", tmp_path / str(finished) / "trusted"
        cache = work / c.WORK_HOME / ".keras" / "datasets" / "fashion-mnist"
        cache.mkdir(parents=True)
        (cache / "t10k-images-idx3-ubyte.gz").write_bytes(b"test images")
        (work / c.EVIDENCE_DIR).mkdir()
        (work / c.EVIDENCE_DIR / c.CHALLENGE_RECIPE_FILE).write_text(json.dumps(recipe), encoding="utf-8")
        trusted.mkdir()
        found = core.measure(work, trusted, tmp_path, sandbox.NoSandbox(), Path(os.sys.executable),
                             challenge=finished)
        assert found == ({core.CHALLENGE: {"error": "stand-in"}} if finished else {}), found
    assert calls == [recipe]
