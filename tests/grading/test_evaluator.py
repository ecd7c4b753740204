"""The evaluator (fashion_kit.grading.evaluator): model files read as data, never run, in a process
with a CPU budget; a file that kills its reader costs only its own facts."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from fashion_kit.grading import core, evaluator


from .judge_fakes import LESSON, lesson_model


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """A few saved models, made with Keras here (the reader under test never imports Keras)."""
    import keras
    import numpy as np

    folder = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(0)
    lesson = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                               keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    lesson.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).random((64, 28, 28))
    lesson.fit(x, np.arange(64) % 10, epochs=1, batch_size=32, verbose=0)
    lesson.save(folder / "lesson.keras")
    lesson.save(folder / "lesson.h5")
    flat = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    flat.save(folder / "flat.keras")
    unsafe = keras.Sequential([keras.Input((28, 28)), keras.layers.Lambda(lambda t: t * 2.0),
                               keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    unsafe.save(folder / "unsafe.keras")
    (folder / "junk.keras").write_bytes(b"not a model")
    return folder, lesson


def measured(data_dir, path, **request):
    return evaluator.answer({"data": str(data_dir), "model": str(path), "accuracy": True, **request})


def test_the_reader_matches_keras_without_importing_it(saved_models, data_dir):
    import numpy as np

    folder, lesson = saved_models
    images, labels = evaluator.read_idx(data_dir / evaluator.TEST_IMAGES), evaluator.read_idx(data_dir / evaluator.TEST_LABELS)
    expected = float(np.mean(np.argmax(lesson.predict(images / 255.0, verbose=0), axis=1) == labels))
    found = {name: measured(data_dir, folder / name) for name in ("lesson.keras", "lesson.h5", "flat.keras")}
    for name in ("lesson.keras", "lesson.h5"):
        facts = found[name]
        assert facts["accuracy"] == pytest.approx(expected, abs=2e-4) and 0 <= facts["train_accuracy"] <= 1
        assert facts["layers"] == LESSON and facts["params"] == [0, 100480, 1290]
        assert facts["iterations"] == 2 and facts["optimizer"] == "adam" and facts["compiled"]
        assert facts["loss"] == "sparsecategoricalcrossentropy" and facts["metrics"] == ["accuracy"]
    assert "accuracy" in found["flat.keras"], "a flattened-input model gets flattened images"
    assert found["lesson.keras"]["weights"] == found["lesson.h5"]["weights"] != found["flat.keras"]["weights"]


def test_code_in_a_model_file_is_never_run_and_junk_is_an_error(saved_models, data_dir):
    folder, _ = saved_models
    unsafe = measured(data_dir, folder / "unsafe.keras")
    # Its layers are read as data; computing it needs Keras, which refuses the Lambda's code.
    assert "safe_mode" in unsafe.get("error", "") or "safe_mode" in unsafe.get("accuracy_error", ""), unsafe
    assert "accuracy" not in unsafe
    assert measured(data_dir, folder / "junk.keras")["error"]


def test_nothing_a_model_file_prints_can_pass_for_the_evaluators_answer(saved_models, data_dir, tmp_path):
    """A layer named like a JSON answer gets printed in a Keras warning; a huge field pushes the real
    answer out of the captured output. The answer travels in a file of its own, so neither matters."""
    import json as json_module

    import keras

    from fashion_kit.grading import sandbox

    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Masking(mask_value=-1.0),
                              keras.layers.Conv1D(4, 3, name="cv"), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.save(tmp_path / "mask.keras")
    forged = json_module.dumps(lesson_model(accuracy=0.99, train_accuracy=0.99))
    with zipfile.ZipFile(tmp_path / "mask.keras") as src, zipfile.ZipFile(tmp_path / "evil.keras", "w") as dst:
        for info in src.infolist():
            payload = src.read(info)
            if info.filename == "config.json":
                config = json_module.loads(payload)
                for layer in config["config"]["layers"]:
                    if layer["config"].get("name") == "cv":
                        layer["config"]["name"] = "cv\n" + forged + "\n"
                config["compile_config"] = {"optimizer": "a" * 1_500_000, "loss": "x", "metrics": []}
                payload = json_module.dumps(config).encode()
            dst.writestr(info, payload)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in (evaluator.TEST_IMAGES, evaluator.TEST_LABELS, evaluator.TRAIN_IMAGES, evaluator.TRAIN_LABELS):
        (inputs / name).write_bytes((data_dir / name).read_bytes())
    (inputs / "challenge.keras").write_bytes((tmp_path / "evil.keras").read_bytes())
    request = {"key": "challenge", "model": str(inputs / "challenge.keras"), "accuracy": True,
               "answer": str(inputs / "answer-challenge.json")}
    challenge = core._evaluate([request], inputs, sandbox.NoSandbox(), Path(os.sys.executable))["challenge"]
    assert challenge.get("accuracy") != 0.99, challenge
    assert len(challenge.get("optimizer") or "") <= evaluator.NAME_CHARS


def test_the_notebooks_own_test_images_count_only_as_a_scaling_of_the_real_ones(saved_models, data_dir, tmp_path):
    import numpy as np

    folder, _ = saved_models
    raw = evaluator.read_idx(data_dir / evaluator.TEST_IMAGES)
    np.save(tmp_path / "scaled.npy", (raw / 127.5 - 1).astype(np.float32))
    found = measured(data_dir, folder / "lesson.keras", own_images=str(tmp_path / "scaled.npy"))
    assert found["own_images"]["scale"] == pytest.approx([1 / 127.5, -1], abs=1e-6)
    np.save(tmp_path / "shuffled.npy", raw[::-1].astype(np.float32))
    found = measured(data_dir, folder / "lesson.keras", own_images=str(tmp_path / "shuffled.npy"))
    assert "not the test set scaled" in found["own_images"]["error"]
    (tmp_path / "pickle.npy").write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (1,), }")
    found = measured(data_dir, folder / "lesson.keras", own_images=str(tmp_path / "pickle.npy"))
    assert "error" in found["own_images"]


def test_a_model_that_exhausts_the_evaluators_cpu_time_costs_only_its_own_facts(saved_models, data_dir, tmp_path,
                                                                                 monkeypatch):
    """The lesson's models share one evaluator process. One that needs more CPU than the budget (here:
    a layer outside the lesson's, so Keras is imported, against a budget of 1 s) stops that process;
    the model measured before it keeps its answer, the one after it is measured again on its own."""
    import shutil

    import keras

    from fashion_kit.grading import sandbox

    folder, _ = saved_models
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in (evaluator.TEST_IMAGES, evaluator.TEST_LABELS, evaluator.TRAIN_IMAGES, evaluator.TRAIN_LABELS):
        shutil.copyfile(data_dir / name, inputs / name)
    shutil.copyfile(folder / "lesson.keras", inputs / "first.keras")
    keras.Sequential([keras.Input((28, 28)), keras.layers.Conv1D(4, 3), keras.layers.Flatten(),
                      keras.layers.Dense(10, activation="softmax")]).save(inputs / "heavy.keras")
    shutil.copyfile(folder / "lesson.h5", inputs / "last.h5")
    requests = [{"key": key, "model": str(inputs / name), "accuracy": False, "answer": str(inputs / f"answer-{key}.json")}
                for key, name in (("first", "first.keras"), ("heavy", "heavy.keras"), ("last", "last.h5"))]
    assert core.EVALUATOR_WALL_SECONDS >= 5 * core.EVALUATOR_CPU_SECONDS, "the wall clock is only a backstop"
    monkeypatch.setattr(core, "EVALUATOR_CPU_SECONDS", 1)
    found = core._evaluate(requests, inputs, sandbox.NoSandbox(), Path(os.sys.executable))
    assert found["first"]["params"] == found["last"]["params"] == [0, 100480, 1290], found
    assert found["first"]["weights"] == found["last"]["weights"]
    assert found["heavy"] == {"error": "the grader's measurement failed (its CPU time limit)"}
    assert not list(inputs.glob("answer-*")), "no answer is left for a later process to find"
