"""Grading integrity: the judge (phase 2's verdicts), its evidence reader, and what phase 1 may leave.

The hostile submissions themselves (attacks graded end to end in both layouts) are in the catalogue
(tests/grading/catalogue/, test_catalogue.py); the checks on their own are in test_checks.py; this module
tests the pieces that decide a grade from what phase 1 left.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import nbformat
import pytest

from fashion_kit import assign, autograder_zip, checks, contract, data, notebooks, settings as settings_module
from fashion_kit.grading import core, evaluator, layout, verdicts
from fashion_kit.grading.cells import checkpoints, evidence, seeding
from fashion_kit.settings import Settings

from ..conftest import QUESTIONS

SETTINGS = Settings()
LESSON = [["Flatten", None, None], ["Dense", 128, "relu"], ["Dense", 10, "softmax"]]
TRAINED = "d" * 64  # the digest of the trained weights


def lesson_model(**changes) -> dict:
    facts = {"layers": LESSON, "params": [0, 100480, 1290], "iterations": 9375, "compiled": True,
             "optimizer": "adam", "loss": "sparsecategoricalcrossentropy", "metrics": ["accuracy"],
             "weights": TRAINED}
    return {**facts, **changes}


def models(**changes) -> dict:
    """The evaluator's facts of an honest notebook's model files; ``changes`` replace some (None: no file)."""
    found = {contract.Q_MODEL: lesson_model(iterations=0, weights="u" * 64),
             contract.Q_COMPILE: lesson_model(iterations=0, weights="u" * 64),
             contract.Q_FIT: lesson_model(), contract.Q_SAVE_LOAD: lesson_model(), "student": lesson_model(),
             contract.Q_EVALUATE: lesson_model(accuracy=0.8677, train_accuracy=0.8961)}
    found.update(changes)
    return {k: v for k, v in found.items() if v is not None}


def honest_values() -> dict:
    """What the grader's cells collect in an honest notebook (arrays as checks.describe_array gives them)."""
    def array(name, scaled):
        shape = list(checks.SHAPES[name])
        digest = checks.OFFICIAL_DIGESTS[name]
        if scaled:
            return {"type": "ndarray", "shape": shape, "dtype": "float64", "kind": "f", "min": 0.0, "max": 1.0,
                    "mean": 0.28, "digest": "s" * 64, "digest_times_255": digest}
        kind = "u"
        high = 255.0 if "images" in name else 9.0
        return {"type": "ndarray", "shape": shape, "dtype": "uint8", "kind": kind, "min": 0.0, "max": high,
                "mean": 1.0, "digest": digest, "digest_times_255": None}

    fit = {"examples": 60000, "images": "training_images", "batch_size": 32, "validation_split": 0.0,
           "epochs_done": 5, "steps": 1875}
    return {
        "q1_load_data": {n: array(n, False) for n in checks.SHAPES},
        "q2_class_names": {"class_names": list(checks.CLASS_NAMES)},
        "q3_normalize": {n: array(n, True) for n in ("training_images", "test_images")},
        "q4_model": {"model": {}}, "q5_compile": {"model": {}},
        "q6_fit": {"model": {}, "history": {"type": "History", "epochs": 5, "params": {"steps": 1875}}, "fits": [fit]},
        "q7_save_load": {"files": ["fashion_mnist_model.keras"], "loaded": {
            "type": "Sequential", "is_model": True, "is_the_model_itself": False, "same_weights": True}},
        "q8_evaluate": {"test_loss": {"kind": "real", "value": 0.36}, "test_acc": {"kind": "real", "value": 0.8677}},
        "q9_accuracy": {"model": {"type": "Sequential", "is_model": True}},
        "q10_param_count": {n: {"kind": "integer", "value": v} for n, v in
                            (("hidden_params", 100480), ("output_params", 1290), ("total_params", 101770))},
    }


def decided(values=None, found=None, settings=SETTINGS, **phase1) -> dict:
    phase1 = verdicts.Phase1(values=honest_values() if values is None else values, **phase1)
    return verdicts.decide({q: float(p) for q, p in QUESTIONS.items()}, phase1,
                           models() if found is None else found, settings, sandbox="bubblewrap")


def scores(results: dict) -> dict:
    return {t["name"]: t["score"] for t in results["tests"] if t.get("max_score")}


def output(results: dict, name: str) -> str:
    return next(t["output"] for t in results["tests"] if t["name"] == name)


# -- the judge: every question decided by its check on handed-over values ------------------------------

def test_honest_values_keep_every_point_and_record_the_sandbox():
    results = decided()
    assert scores(results) == {q: float(p) for q, p in QUESTIONS.items()} and results["score"] == 13
    assert results["extra_data"][contract.SANDBOX_KEY] == "bubblewrap"
    assert results["extra_data"][contract.MEASURED_KEY]["accuracy"] == 0.8677


def test_the_kernel_cannot_claim_a_model_the_grader_did_not_read():
    # The kernel says it has the lesson's model; the snapshots the grader read say otherwise.
    wrong = lesson_model(layers=[["Flatten", None, None], ["Dense", 64, "relu"], ["Dense", 10, "softmax"]],
                         params=[0, 50240, 650], iterations=5625, optimizer="sgd")
    values = honest_values()
    values["q4_model"]["model"] = lesson_model()  # what a forging kernel would write
    results = decided(values, models(q4_model=wrong, q5_compile=wrong, q6_fit=wrong))
    got = scores(results)
    assert (got["q4_model"], got["q5_compile"], got["q6_fit"]) == (0, 0, 0)
    assert "Dense(64, relu)" in output(results, "q4_model") and "Dense(128, relu)" in output(results, "q4_model")
    assert "5625" in output(results, "q6_fit") and "9375" in output(results, "q6_fit")
    assert got["q9_accuracy"] == 0, "the evaluated model is not the one built at q4"


def test_q1_q2_q3_q10_are_decided_on_the_values_with_the_hidden_parts():
    values = honest_values()
    values["q2_class_names"]["class_names"][0] = "T-shirt"  # the public check passes, the full one does not
    values["q3_normalize"]["test_images"]["digest_times_255"] = "x" * 64  # right range, wrong pixels
    values["q10_param_count"] = {n: {"kind": "integer", "value": v} for n, v in
                                 (("hidden_params", 100352), ("output_params", 1280), ("total_params", 101632))}
    values["q1_load_data"]["test_labels"]["digest"] = "y" * 64
    got = scores(decided(values))
    assert (got["q1_load_data"], got["q2_class_names"], got["q3_normalize"], got["q10_param_count"]) == (0, 0, 0, 0)


@pytest.mark.parametrize("fits, iterations, ok", [
    ([dict(batch_size=32, steps=1875)], 9375, True),
    ([dict(batch_size=60000, steps=1)], 5, True),
    ([dict(batch_size=64, steps=750, validation_split=0.2)], 3750, True),  # 48,000 trained, batch 64
    ([dict(epochs_done=3), dict(epochs_done=2)], 9375, True),  # 3 + 2 epochs
    ([dict(examples=1, batch_size=32, steps=1)], 5, False),  # five steps on one image
    ([dict(images="other", examples=10000, steps=313)], 1565, False),  # the test set
    ([dict(epochs_done=1)], 9375, False),  # one epoch, then the step counter set to five epochs'
    ([dict()], 1875, False),
    (None, 9375, False),
])
def test_q6_is_five_epochs_of_steps_over_the_training_images(fits, iterations, ok):
    base = {"examples": 60000, "images": "training_images", "batch_size": 32, "validation_split": 0.0,
            "epochs_done": 5, "steps": 1875}
    values = honest_values()
    values["q6_fit"]["fits"] = None if fits is None else [{**base, **f} for f in fits]
    got = scores(decided(values, models(q6_fit=lesson_model(iterations=iterations))))
    assert got["q6_fit"] == (1 if ok else 0)


def test_q8_agrees_with_the_notebooks_own_scaling_of_the_test_images():
    # Forgot / 255.0 everywhere: evaluate() ran on 0..255 images and said 0.71; the standard scaling
    # gives 0.10. That is an honest evaluation of its own test data: q8 keeps its point.
    found = models(q8_evaluate=lesson_model(accuracy=0.10, train_accuracy=0.10, own_images={"accuracy": 0.71}))
    values = honest_values()
    values["q8_evaluate"]["test_acc"]["value"] = 0.71
    assert scores(decided(values, found))["q8_evaluate"] == 1
    values["q8_evaluate"]["test_acc"]["value"] = 0.99  # a number from nowhere
    results = decided(values, found)
    assert scores(results)["q8_evaluate"] == 0.5 and "0.9900" in output(results, "q8_evaluate")


def test_q7_needs_the_students_own_file_with_the_trained_weights_and_then_loading_it_back():
    assert scores(decided(found=models(student=None)))["q7_save_load"] == 0
    results = decided(found=models(student={"error": "OSError: truncated file"}))
    assert scores(results)["q7_save_load"] == 0 and "truncated file" in output(results, "q7_save_load")
    assert scores(decided(found=models(student=lesson_model(weights="u" * 64))))["q7_save_load"] == 0
    values = honest_values()
    values["q7_save_load"]["loaded"]["is_the_model_itself"] = True  # loaded_model = model
    assert scores(decided(values))["q7_save_load"] == 0.5


def test_missing_evidence_confirms_nothing():
    got = scores(decided(found=models(q7_save_load=None, q8_evaluate=None)))
    assert (got["q7_save_load"], got["q8_evaluate"], got["q9_accuracy"]) == (0, 0, 0)
    values = honest_values()
    del values["q2_class_names"]
    results = decided(values)
    assert scores(results)["q2_class_names"] == 0 and "was not checked" in output(results, "q2_class_names")


def test_values_of_the_wrong_type_count_for_nothing_and_crash_nothing():
    weird = lesson_model(accuracy="0.99", iterations="9375", params=["100480"], layers="Dense", compiled="yes",
                         weights=5)
    junk = {q: v for q, v in zip(QUESTIONS, ["x", 1, None, [1], {"model": 3}, {"fits": "a"}, {"files": 1},
                                            {"test_acc": "0.9"}, [], {"hidden_params": True}])}
    results = decided(junk, {q: weird for q in models()})
    assert results["score"] == 0
    assert scores(decided(found=models(q8_evaluate=lesson_model(accuracy=1.5))))["q9_accuracy"] == 0


def test_q9_is_the_evaluated_model_trained_on_the_training_set_against_the_threshold():
    at = decided(found=models(q8_evaluate=lesson_model(accuracy=0.85, train_accuracy=0.86)))
    assert scores(at)["q9_accuracy"] == 2 and "0.8500" in output(at, "q9_accuracy")
    below = decided(found=models(q8_evaluate=lesson_model(accuracy=0.8499, train_accuracy=0.86)))
    assert scores(below)["q9_accuracy"] == 0
    assert "Expected a test accuracy of at least 0.85, found 0.8499" in output(below, "q9_accuracy")
    stricter = decided(found=models(q8_evaluate=lesson_model(accuracy=0.87, train_accuracy=0.9)),
                       settings=SETTINGS.replace(min_test_accuracy=0.9))
    assert scores(stricter)["q9_accuracy"] == 0
    # Weights set from the test set: near-perfect there, no better than chance on the training set.
    memorised = decided(found=models(q8_evaluate=lesson_model(accuracy=0.99, train_accuracy=0.6)))
    assert scores(memorised)["q9_accuracy"] == 0 and "training set" in output(memorised, "q9_accuracy")
    # Another model evaluated than the one trained at q6 and saved at q7.
    other = decided(found=models(q8_evaluate=lesson_model(accuracy=0.9, train_accuracy=0.9, weights="o" * 64)))
    assert scores(other)["q9_accuracy"] == 0 and "question 6" in output(other, "q9_accuracy")


def test_challenge_goes_on_the_leaderboard_and_earns_the_bonus_only_when_trained_on_the_training_set():
    def cnn(test, train):
        return {"accuracy": test, "train_accuracy": train, "layers": [], "params": []}

    results = decided(found=models(challenge=cnn(0.9123, 0.93)))
    assert results["leaderboard"] == [{"name": contract.LEADERBOARD_NAME, "value": 0.9123, "order": "desc"}]
    bonus = next(t for t in results["tests"] if t["name"] == contract.CHALLENGE_TEST)
    assert (bonus["score"], bonus["max_score"], results["score"]) == (1.0, 0, 14.0)
    below = decided(found=models(challenge=cnn(0.88, 0.9)))
    assert results["score"] - below["score"] == 1.0
    off = decided(found=models(challenge=cnn(0.99, 0.99)), settings=SETTINGS.replace(challenge_bonus_points=0))
    assert off["score"] == 13 and "leaderboard" in off
    assert "leaderboard" not in decided()
    memorised = decided(found=models(challenge=cnn(0.99, 0.7)))
    assert memorised["score"] == 13 and "leaderboard" not in memorised
    # A challenge file that could not be measured costs the required questions nothing.
    failed = decided(found=models(challenge={"error": "the grader's measurement failed (its CPU time limit)"}))
    assert failed["score"] == 13


def test_a_stopped_run_keeps_what_was_answered_and_names_the_cell():
    values = {"q1_load_data": honest_values()["q1_load_data"]}
    results = decided(values, models(), stopped="timeout", running_cell={"cell": 12, "first_line": "import time"})
    assert scores(results)["q1_load_data"] == 1 and results["score"] == 1
    assert results["extra_data"][contract.STOPPED_KEY] == "timeout"
    title = results["tests"][0]
    assert title["visibility"] == "visible" and "import time" in title["output"]
    assert "Not checked" in output(results, "q6_fit")


def test_a_refused_submission_is_passed_on_with_no_score():
    results = decided(refused="wrong notebook")
    assert results["score"] == 0 and output(results, contract.OTTER_ERROR_TEST) == "wrong notebook"


def test_results_follow_gradescope_spec_in_every_shape():
    from . import gradescope_spec as spec

    for found in (decided(), decided(stopped="disk"),
                  decided(found=models(challenge={"accuracy": 0.95, "train_accuracy": 0.97}))):
        assert spec.problems(found) == []


def test_no_score_of_the_kernel_is_read_by_phase_2():
    """Otter's results and the checkpoints are written by the kernel; the judge reads neither."""
    source = Path(core.__file__).read_text(encoding="utf-8") + Path(verdicts.__file__).read_text(encoding="utf-8")
    assert "checked.json" not in source and "CHECKED_FILE" not in source
    assert '"score"' not in Path(core.__file__).read_text(encoding="utf-8")


# -- the evidence reader ------------------------------------------------------------------------------

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
    request = {"data": str(inputs), "model": str(inputs / "challenge.keras"), "accuracy": True}
    challenge = core._evaluate("challenge", request, inputs, sandbox.NoSandbox(), Path(os.sys.executable))
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


def test_an_evaluator_that_runs_out_of_cpu_time_fails_its_own_model_only(tmp_path):
    """The evaluator limits its own CPU seconds: a measurement that spins stops, whatever the load."""
    import subprocess
    import sys

    spin = "import resource, sys; resource.setrlimit(resource.RLIMIT_CPU, (1, 2))\nwhile True: pass"
    ran = subprocess.run([sys.executable, "-c", spin], timeout=60)
    assert ran.returncode in (-24, -9), "RLIMIT_CPU stops a spinning process (SIGXCPU)"
    assert core.EVALUATOR_WALL_SECONDS >= 5 * core.EVALUATOR_CPU_SECONDS, "the wall clock is only a backstop"


# -- copying out of the untrusted work folder ---------------------------------------------------------

def test_copies_out_of_the_work_folder_follow_no_link_and_respect_the_limit(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir(), out.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("the instructor's")
    (work / "model.keras").write_bytes(b"x" * 10)
    (work / "link.keras").symlink_to(secret)
    (work / "big.keras").write_bytes(b"x" * 2048)
    os.mkfifo(work / "pipe.keras")
    assert layout.copy_untrusted(work, "model.keras", out / "a", 1024) is None and (out / "a").read_bytes() == b"x" * 10
    assert layout.copy_untrusted(work, "link.keras", out / "b", 1024) is not None and not (out / "b").exists()
    assert "more than" in layout.copy_untrusted(work, "big.keras", out / "c", 1024)
    assert layout.copy_untrusted(work, "pipe.keras", out / "d", 1024) == "not a regular file"
    assert layout.copy_untrusted(work, "none.keras", out / "e", 1024) == "missing"
    (tmp_path / "evil").symlink_to(tmp_path)  # a linked folder is refused too
    assert layout.copy_untrusted(tmp_path / "evil", "secret.txt", out / "f", 1024) == "missing"
    (work / "deep.json").write_text("[" * 100000 + "]" * 100000)
    assert layout.read_untrusted_json(work, "deep.json", out) is None


def test_phase1_gets_none_of_our_environment(tmp_path):
    os.environ["FASHION_KIT_TEST_TOKEN"] = "secret"
    try:
        env = layout.phase1_env(tmp_path, Path("/usr/bin/python3"))
    finally:
        del os.environ["FASHION_KIT_TEST_TOKEN"]
    assert "FASHION_KIT_TEST_TOKEN" not in env and env["HOME"].startswith(str(tmp_path))
    assert all(value.startswith(str(tmp_path)) for key, value in env.items() if key in ("HOME", "TMPDIR", "KERAS_HOME"))


# -- the cells phase 1 inserts --------------------------------------------------------------------------

def notebook(*sources: str):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def test_evidence_is_taken_right_after_each_questions_check_and_at_the_end_when_it_is_missing(tmp_path):
    nb = notebook("model = build()", 'grader.check("q4_model")', "x = 1", "grader.check('q9_accuracy')")
    evidence.apply(nb, tmp_path)
    sources = [c.source for c in nb.cells]
    assert sources[2:4] == ['grader.check("q4_model")', "__fashion_kit_evidence__('q4_model')"]
    assert sources[5:7] == ["grader.check('q9_accuracy')", "__fashion_kit_evidence__('q9_accuracy')"]
    rest = [q for q in contract.QUESTIONS if q not in ("q4_model", "q9_accuracy")]
    assert sources[7:] == [f"__fashion_kit_evidence__({q!r})" for q in rest]
    assert str(tmp_path) in sources[0]


def test_the_evidence_cells_hand_over_each_questions_values_and_record_every_fit(tmp_path):
    """The kit's cells, run on a small notebook in this process (Keras, no Otter): each question's
    values as JSON, the snapshots, and the record of fit that q6 is decided on."""
    import keras
    import numpy as np

    code = ["import numpy as np\nimport keras\nclass_names = ['a'] * 10\nhidden_params = 784 * 128 + 128",
            "model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10)])\n"
            "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
            "history = model.fit(np.zeros((100, 28, 28)), np.zeros(100), epochs=2, batch_size=16, "
            "validation_split=0.2, verbose=0)", 'grader.check("q6_fit")']
    nb = notebook(*code)
    evidence.apply(nb, tmp_path)
    fit = keras.Model.fit
    env: dict = {"grader": type("Grader", (), {"check": staticmethod(lambda q: None)})()}
    try:
        for cell in nb.cells:
            exec(cell.source, env)
    finally:
        keras.Model.fit = fit
    q6 = json.loads((tmp_path / "q6_fit.json").read_text())
    assert q6["history"] == {"type": "History", "epochs": 2, "params": {"epochs": 2, "steps": 5, "verbose": 0}}
    assert q6["fits"] == [{"examples": 100, "images": "other", "batch_size": 16, "validation_split": 0.2,
                           "epochs_done": 2, "steps": 5}]
    assert q6["model"]["iterations"] == 10 and (tmp_path / "q6_fit.keras").is_file()
    assert json.loads((tmp_path / "q2_class_names.json").read_text()) == {"class_names": ["a"] * 10}
    assert json.loads((tmp_path / "q10_param_count.json").read_text())["hidden_params"] == {
        "kind": "integer", "value": 100480}
    assert not (tmp_path / "q2_class_names.keras").exists(), "only questions that need the model save it"
    assert "np" in env and "checks" not in env and "describe_array" not in env, "the notebook's names are untouched"
    assert isinstance(np.zeros(1), np.ndarray)


def test_the_work_folder_holds_nothing_of_the_autograders_but_the_data(built, tmp_path):
    """A notebook that reads every file it can reach finds no test and no setting (a token an
    instructor put in otter_config.json, say): the work folder gets the submission, the data set
    and empty folders, and phase 2 decides every question."""
    source, submission = tmp_path / "source", tmp_path / "submission"
    with zipfile.ZipFile(built.autograder_zip) as zf:
        zf.extractall(source)
    config = json.loads((source / "otter_config.json").read_text(encoding="utf-8"))
    (source / "otter_config.json").write_text(json.dumps({**config, "token": "gradescope-secret"}), encoding="utf-8")
    submission.mkdir()
    (submission / contract.NOTEBOOK).write_text("{}", encoding="utf-8")
    work = tmp_path / "work"
    layout.make_work_folder(work, source, submission)
    reachable = sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file())
    assert reachable == sorted([f"{contract.WORK_SUBMISSION}/{contract.NOTEBOOK}",
                                *(f"{contract.WORK_HOME}/.keras/datasets/fashion-mnist/{name}" for name in data.FILES)])
    assert not any(b"gradescope-secret" in (work / p).read_bytes() or b"def test_" in (work / p).read_bytes()
                   for p in reachable)


def test_checkpoints_are_plain_json_and_mark_only_the_students_cells(tmp_path):
    nb = notebook("a = 1", "b = 2")
    evidence.apply(nb, tmp_path)
    checkpoints.apply(nb, tmp_path)
    helper = nb.cells[0].source
    assert "pickle" not in helper and "json.dump" in helper
    markers = [c.source for c in nb.cells if c.source.startswith("__fashion_kit_checkpoint__(")]
    assert markers == ["__fashion_kit_checkpoint__(1, 'a = 1')", "__fashion_kit_checkpoint__(2, 'b = 2')",
                       "__fashion_kit_checkpoint__(None, '')"]


def test_seeding_uses_the_settings_seed_and_silences_progress_bars():
    nb = notebook("x = 1")
    seeding.apply(nb, 1234)
    first = nb.cells[0].source
    assert "set_random_seed(1234)" in first and "disable_interactive_logging()" in first
    assert '"pre_run_cell"' in first and "numpy.random.seed(seed)" in first, "reseeded before every cell"
    assert "rfc3987_syntax" in first, "the kernel skips the optional module that costs 0.75 s to import"


# -- one owner for settings, one manifest for the zip -------------------------------------------------

def test_settings_name_the_bad_key_and_what_was_found(tmp_path):
    with pytest.raises(settings_module.SettingsError, match=r"fashion_kit.min_test_accuracy must be a number from 0 to 1; found 1.5"):
        settings_module.parse({"fashion_kit": {"min_test_accuracy": 1.5}})
    with pytest.raises(settings_module.SettingsError, match="unknown setting fashion_kit.min_test_acuracy"):
        settings_module.parse({"fashion_kit": {"min_test_acuracy": 0.9}})
    with pytest.raises(settings_module.SettingsError, match="seed must be a whole number"):
        settings_module.parse({"seed": "42"})
    with pytest.raises(settings_module.SettingsError, match="does not exist"):
        settings_module.load(tmp_path / "otter_config.json")
    with pytest.raises(settings_module.SettingsError, match="timeout_seconds must be"):
        SETTINGS.replace(timeout_seconds=-1)
    assert SETTINGS.replace(timeout_seconds=60).fingerprint() != SETTINGS.fingerprint()
    assert SETTINGS.replace(timeout_seconds=None) == SETTINGS


def test_the_repositorys_settings_are_valid_and_are_what_the_zip_carries(built):
    from fashion_kit import paths

    assert settings_module.load(paths.OTTER_CONFIG) == settings_module.from_zip(built.autograder_zip)


def test_only_settings_py_reads_otter_config():
    """One owner for the settings: no other module of the kit opens otter_config.json."""
    import re

    package = Path(settings_module.__file__).parent
    parsing = re.compile(r"json\.loads?\([^\n]*(otter_config|OTTER_CONFIG)|(otter_config|OTTER_CONFIG)[^\n]*\.read_text\(")
    readers = sorted(p.relative_to(package).as_posix() for p in package.rglob("*.py")
                     if parsing.search(p.read_text(encoding="utf-8")))
    assert readers == [], f"parse otter_config.json through fashion_kit.settings, not in {readers}"


def test_the_zip_carries_the_kit_as_a_wheel_and_knows_what_it_was_built_from(built, tmp_path):
    with zipfile.ZipFile(built.autograder_zip) as zf:
        names = zf.namelist()
        wheels = [n for n in names if n.endswith(".whl")]
        assert len(wheels) == 1
        (tmp_path / wheels[0]).write_bytes(zf.read(wheels[0]))
    with zipfile.ZipFile(tmp_path / wheels[0]) as wheel:
        inside = wheel.namelist()
    assert "fashion_kit/grading/core.py" in inside and "fashion_kit/contract.py" in inside
    assert not any("__pycache__" in n for n in inside)
    assert autograder_zip.stale_reasons(built.autograder_zip) == []
    changed = tmp_path / "master.ipynb"
    changed.write_text(Path(assign.paths.MASTER).read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert autograder_zip.stale_reasons(built.autograder_zip, changed) == ["the master notebook changed since the zip was built"]


def test_every_evidence_question_is_a_question_of_the_autograder(built):
    from fashion_kit.questions import points_in_autograder

    questions = points_in_autograder(built.autograder_zip)
    assert set(contract.EVIDENCE_QUESTIONS) <= questions.keys()
    assert questions == {q: float(p) for q, p in QUESTIONS.items()}


# -- slow: the whole thing ----------------------------------------------------------------------------

@pytest.mark.slow
def test_grading_the_same_submission_twice_gives_identical_results(built, grader, tmp_path_factory):
    """Without the notebook's own set_random_seed, only the grader's seeding makes training repeatable."""
    nb = notebooks.read(built.solutions["en"])
    seeded = [c for c in nb.cells if c.cell_type == "code" and "keras.utils.set_random_seed(42)" in c.source]
    assert seeded, "the reference solution no longer seeds Keras itself; update this test"
    for cell in seeded:
        cell.source = cell.source.replace("keras.utils.set_random_seed(42)", "pass")
    path = tmp_path_factory.mktemp("determinism") / assign.NOTEBOOK
    notebooks.write(nb, path)
    first, second = grader.submit("unseeded-1", path), grader.submit("unseeded-2", path)
    first, second = first.result(), second.result()
    assert first.status == second.status == "graded", first.log[-3000:] + second.log[-3000:]
    assert first.scores == second.scores == {q: (p, p) for q, p in QUESTIONS.items()}
    measured = [o.results["extra_data"][contract.MEASURED_KEY]["accuracy"] for o in (first, second)]
    assert measured[0] == measured[1] and measured[0] >= 0.85
    assert first.sandbox == "bubblewrap"
    assert json.dumps(first.results, sort_keys=True) == json.dumps(second.results, sort_keys=True)


@pytest.mark.slow
def test_machine_load_changes_no_grade(built, tmp_path):
    """The same submission graded on an otherwise idle machine, then with both cores kept busy by
    other processes: the same results.json (each model's measurement is counted in CPU seconds)."""
    import subprocess
    import sys

    from fashion_kit import run

    first = run.grade(built.solutions["en"], built.autograder_zip, tmp_path / "idle")
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        second = run.grade(built.solutions["en"], built.autograder_zip, tmp_path / "loaded")
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    assert first.status == second.status == "graded", first.log[-3000:] + second.log[-3000:]
    assert first.score == first.possible
    assert json.dumps(first.results, sort_keys=True) == json.dumps(second.results, sort_keys=True)


def test_a_tree_too_deep_for_python_is_still_removed(tmp_path):
    root = tmp_path / "left-behind"
    fd = os.open(tmp_path, os.O_RDONLY)
    os.mkdir("left-behind", dir_fd=fd)
    current = os.open("left-behind", os.O_RDONLY, dir_fd=fd)
    for _ in range(3000):  # deeper than Python's recursion limit; built with openat, as a notebook could
        os.mkdir("d", dir_fd=current)
        nxt = os.open("d", os.O_RDONLY, dir_fd=current)
        os.close(current)
        current = nxt
    os.close(current)
    os.close(fd)
    layout.remove_tree(root)
    assert not root.exists()


