"""The checks (fashion_kit.checks): one implementation, copied into the notebook's tests by the build.

The public tests must run where the kit is not installed; the reader of model files must agree with
Keras on every way the lesson's model can be written.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from fashion_kit import checks, questions
from fashion_kit.questions import check_code
from fashion_kit.questions.q1_load_data.check import check_q1_load_data, collect_q1_load_data
from fashion_kit.questions.q2_class_names.check import check_q2_class_names
from fashion_kit.questions.q3_normalize.check import check_q3_normalize, collect_q3_normalize
from fashion_kit.questions.q4_model.check import check_q4_model
from fashion_kit.questions.q5_compile.check import check_q5_compile, collect_q5_compile
from fashion_kit.questions.q6_fit.check import check_q6_fit
from fashion_kit.questions.q7_save_load.check import check_q7_save_load
from fashion_kit.questions.q8_evaluate.check import check_q8_evaluate
from fashion_kit.questions.q9_accuracy.check import check_q9_accuracy
from fashion_kit.questions.q10_param_count.check import check_q10_param_count


def test_every_question_of_the_registry_has_its_collect_and_check():
    for question in questions.QUESTIONS:
        assert callable(getattr(question.module, question.collect)) and callable(getattr(question.module, question.check))
        fraction, messages = question.decide({})  # nothing handed over: no points, and a message
        assert fraction == 0 and messages, question.name


@pytest.mark.parametrize("scale", [lambda x: x / 255.0, lambda x: x / 255, lambda x: np.divide(x, 255),
                                   lambda x: x.astype("float32") / 255, lambda x: x.astype("float32") * (1 / 255)])
def test_dividing_by_255_in_any_honest_way_gives_the_same_digest(scale):
    raw = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    assert checks.describe_array(scale(raw))["digest_times_255"] == checks.describe_array(raw)["digest"]
    assert checks.describe_array(raw / 254.0)["digest_times_255"] != checks.describe_array(raw)["digest"]
    assert checks.describe_array(raw)["digest_times_255"] is None, "integers are not scaled pixels"


def test_public_checks_are_the_full_checks_without_their_hidden_parts():
    scaled = {"type": "ndarray", "shape": [60000, 28, 28], "kind": "f", "dtype": "float64", "min": 0.0, "max": 1.0,
              "digest_times_255": "x" * 64}
    values = {"training_images": scaled, "test_images": {**scaled, "shape": [10000, 28, 28]}}
    assert check_q3_normalize(values, public=True)[0] == 1 and check_q3_normalize(values)[0] == 0
    names = list(checks.CLASS_NAMES)
    names[0] = "tshirt"  # the table is above the question: the public check compares every name too
    fraction, messages = check_q2_class_names({"class_names": names}, public=True)
    assert fraction == 0 and "label 0 is 'tshirt'" in messages[0]
    weights_only = {n: {"kind": "integer", "value": v} for n, v in (("hidden_params", 100352), ("output_params", 1290),
                                                                     ("total_params", 101642))}
    fraction, messages = check_q10_param_count(weights_only, public=True)
    assert fraction == 0 and "add one bias per neuron (128)" in messages[0]


def test_a_missing_or_unfilled_or_twice_scaled_value_says_what_to_do():
    assert "has no value yet: run question 1's cell" in check_q1_load_data(
        collect_q1_load_data({}), public=True)[1][0]
    assert "is still ...: replace" in check_q3_normalize(
        collect_q3_normalize({"training_images": ...}), public=True)[1][0]
    raw = np.random.default_rng(0).integers(0, 256, (60000, 28, 28), dtype=np.uint8)
    raw[0, 0, 0], raw[0, 0, 1] = 0, 255
    twice = {"training_images": raw / 255.0 / 255.0, "test_images": raw[:10000] / 255.0}
    assert "divided by 255 twice" in check_q3_normalize(collect_q3_normalize(twice), public=True)[1][0]


def test_names_are_read_the_way_keras_writes_them():
    function = {"module": "builtins", "class_name": "function", "config": "softmax_v2", "registered_name": "function"}
    assert checks.function_name(function) == "softmax" and checks.function_name("ReLU") == "relu"
    loss = {"module": "keras.losses", "class_name": "SparseCategoricalCrossentropy", "config": {"name": "x"}}
    assert checks.compile_facts({"optimizer": "adam", "loss": loss, "metrics": [[{
        "class_name": "function", "config": "sparse_categorical_accuracy"}]]})["metrics"] == ["sparsecategoricalaccuracy"]


def test_the_notebooks_public_tests_carry_the_checks_and_run_without_the_kit(tmp_path):
    """The code the build writes into a public test names no kit module and runs in a Python where
    importing fashion_kit fails."""
    tests = {q.name: check_code.expand(f"def test_it(class_names, hidden_params, output_params, total_params):\n"
                                       f"    CHECK({q.name!r}, public=True)\n") for q in questions.QUESTIONS}
    assert all("fashion_kit." not in text and "import fashion_kit" not in text for text in tests.values())
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\nsys.modules['fashion_kit'] = None\n" + tests["q2_class_names"] + tests["q10_param_count"].replace(
            "def test_it", "def test_it10") +
        "\ntest_it(['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', "
        "'Ankle boot'], 0, 0, 0)\ntest_it10(None, 100480, 1290, 101770)\n"
        "try:\n    test_it10(None, 100480, 1290, 4)\nexcept AssertionError as e:\n    print('FAILED', e)\n", encoding="utf-8")
    ran = subprocess.run([sys.executable, "-I", str(script)], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert "FAILED total_params 應該等於" in ran.stdout and "Expected total_params == hidden_params" in ran.stdout


# -- the reader and Keras agree ------------------------------------------------------------------------

def _variants():
    import keras
    import tensorflow as tf

    def lesson(hidden=tf.nn.relu, output=tf.nn.softmax):
        return keras.Sequential([keras.layers.Input((28, 28)), keras.layers.Flatten(),
                                 keras.layers.Dense(128, activation=hidden), keras.layers.Dense(10, activation=output)])

    inputs = keras.Input((28, 28))
    x = keras.layers.Dense(128, activation="relu")(keras.layers.Flatten()(inputs))
    functional = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    return {
        "tf.nn": (lesson(), dict(loss=keras.losses.SparseCategoricalCrossentropy(),
                                 metrics=[keras.metrics.SparseCategoricalAccuracy()])),
        "keras.activations": (lesson(keras.activations.relu, keras.activations.softmax),
                              dict(loss=keras.losses.sparse_categorical_crossentropy,
                                   metrics=[keras.metrics.sparse_categorical_accuracy])),
        "functional": (functional, dict(loss="sparse_categorical_crossentropy", metrics=["accuracy"])),
        "strings": (lesson("relu", "softmax"), dict(loss="sparse_categorical_crossentropy", metrics=["acc"])),
    }


@pytest.fixture(scope="module")
def variants(tmp_path_factory, data_dir):
    import keras

    from fashion_kit.grading import evaluator

    folder = tmp_path_factory.mktemp("variants")
    images = evaluator.read_idx(data_dir / evaluator.TEST_IMAGES)[:2000] / 255.0
    labels = evaluator.read_idx(data_dir / evaluator.TEST_LABELS)[:2000]
    found = {}
    keras.utils.set_random_seed(1)
    for name, (model, compiled) in _variants().items():
        model.compile(optimizer="adam", **compiled)
        model.fit(images, labels, epochs=1, batch_size=200, verbose=0)
        model.save(folder / f"{name}.keras")
        found[name] = (folder / f"{name}.keras", model, checks.describe_model(model))
    return found


@pytest.mark.parametrize("name", ["tf.nn", "keras.activations", "functional", "strings"])
def test_the_reader_and_keras_agree_on_every_way_of_writing_the_lesson(variants, data_dir, name):
    from fashion_kit.grading import evaluator

    path, model, live = variants[name]
    facts = evaluator.answer({"data": str(data_dir), "model": str(path), "accuracy": True})
    images = evaluator.read_idx(data_dir / evaluator.TEST_IMAGES) / 255.0
    labels = evaluator.read_idx(data_dir / evaluator.TEST_LABELS)
    expected = float(np.mean(np.argmax(model.predict(images, verbose=0), axis=1) == labels))
    assert facts["accuracy"] == pytest.approx(expected, abs=2e-4)
    for key in ("layers", "input", "params", "compiled", "optimizer", "loss", "loss_given", "metrics", "iterations"):
        assert facts[key] == live[key], key  # the file read as data, the live model: the same facts
    assert check_q4_model({"model": facts}) == (1.0, [])
    assert check_q5_compile({"model": facts}) == (1.0, [])


def _rewritten(source, target, change):
    import h5py
    import io
    import zipfile

    with zipfile.ZipFile(source) as zf:
        config = json.loads(zf.read("config.json"))
        weights = io.BytesIO(zf.read("model.weights.h5"))
    with h5py.File(weights, "a") as f:
        config = change(config, f) or config
    with zipfile.ZipFile(source) as zf, zipfile.ZipFile(target, "w") as out:
        for info in zf.infolist():
            payload = {"config.json": json.dumps(config).encode(), "model.weights.h5": weights.getvalue()}.get(
                info.filename, zf.read(info))
            out.writestr(info, payload)
    return target


def _flatten_kernel(config, f):
    kernel = np.array(f["layers/dense/vars/0"])
    del f["layers/dense/vars/0"]
    f["layers/dense/vars/0"] = kernel.reshape(-1)  # the right count, the wrong shape


def _no_bias(config, f):
    layer = next(x for x in config["config"]["layers"] if x["class_name"] == "Dense")
    layer["config"]["use_bias"] = False  # the file still holds a bias


def _transposed(config, f):
    kernel = np.array(f["layers/dense/vars/0"])
    del f["layers/dense/vars/0"]
    f["layers/dense/vars/0"] = kernel.T.copy()


@pytest.mark.parametrize("change", [_flatten_kernel, _no_bias, _transposed])
def test_the_reader_refuses_what_keras_refuses_to_load(variants, data_dir, tmp_path, change):
    import keras

    from fashion_kit.grading import evaluator

    path = _rewritten(variants["strings"][0], tmp_path / "changed.keras", change)
    with pytest.raises(Exception):
        keras.models.load_model(path, compile=False)
    facts = evaluator.answer({"data": str(data_dir), "model": str(path), "accuracy": True})
    assert "error" in facts and "accuracy" not in facts, facts


def test_public_checks_decide_from_the_notebooks_own_measurements():
    """Where the grade measures the model, the notebook's check measures it on the notebook's arrays:
    the same rule on the values each has."""
    model = {"layers": checks.EXPECTED_LAYERS, "input": [28, 28], "params": [0, 100480, 1290], "iterations": 9375}
    history = {"type": "History", "epochs": 5, "params": {"steps": 1875}}
    on_test = {**model, "accuracy": 0.89, "train_accuracy": 0.84}  # fitted to the test set
    assert "far more accurate on the test set" in check_q6_fit(
        {"model": on_test, "history": history}, public=True)[1][0]
    twice = {**model, "iterations": 9375 + 1875}  # fit ran again: the optimizer took more steps than history's
    fraction, messages = check_q6_fit({"model": twice, "history": history}, public=True)
    assert fraction == 0 and "continues training" in messages[0] and "question 4's cell again" in messages[0]
    assert check_q6_fit({"model": {**model, "accuracy": 0.87, "train_accuracy": 0.89},
                                "history": history}, public=True) == (1.0, [])
    number = {"kind": "real", "value": 0.95}  # evaluated on the training set
    fraction, messages = check_q8_evaluate({"test_loss": number, "test_acc": number, "measured": [0.87]},
                                                  public=True)
    assert fraction == 0.5 and "0.8700" in messages[0]
    fraction, messages = check_q8_evaluate({"test_loss": {"type": "NoneType"},
                                                   "test_acc": {"type": "list", "length": 2}}, public=True)
    assert fraction == 0 and "test_loss, test_acc = model.evaluate" in messages[0]
    untrained = {**model, "accuracy": 0.1, "train_accuracy": 0.1}
    assert check_q9_accuracy({"model": untrained, "threshold": 0.85}, public=True)[0] == 0
    assert check_q9_accuracy({"model": {**model, "accuracy": 0.87, "train_accuracy": 0.89},
                                     "threshold": 0.85}, public=True) == (1.0, [])


def test_q7s_check_wants_the_file_of_this_run_and_a_model_read_back_from_it():
    loaded = {"type": "Sequential", "is_model": True, "is_the_model_itself": True, "same_weights": None}
    fraction, messages = check_q7_save_load({"files": ["f"], "saved": True, "loaded": loaded}, public=True)
    assert fraction == 0.5 and "found model itself" in messages[0]
    old = check_q7_save_load({"files": ["f"], "saved": "old file / old file", "loaded": {
        **loaded, "is_the_model_itself": False, "same_weights": True}}, public=True)
    assert old == (0.0, ["old file / old file"])


def test_q10s_chinese_line_has_the_numbers_of_the_english_one():
    values = {n: {"kind": "integer", "value": v} for n, v in (("hidden_params", 100480), ("output_params", 1290),
                                                                ("total_params", 101771))}
    chinese, _, english = check_q10_param_count(values, public=True)[1][0].partition(" / ")
    assert "101771" in chinese and "101771" in english


def test_an_h5_save_leaves_q5s_check_passing(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(tmp_path / "fashion_mnist_model.h5")  # Keras drops the optimizer from the live compile config
    assert check_q5_compile(collect_q5_compile({"model": model}), public=True) == (1.0, [])


@pytest.mark.parametrize("facts", [{"error": "model is NoneType"}, {"error": "no model (the snapshot after q4_model)"}])
def test_no_model_at_question_4_names_the_blank_in_its_cell(facts):
    """The notebook's unset model and the grader's missing snapshot: the same words, which name the ...
    of question 4's cell; a model that exists but cannot be read keeps the general message."""
    fraction, [message] = check_q4_model({"model": facts})
    assert fraction == 0 and "..." in message and "第 4 題的儲存格" in message and "question 4's cell" in message
    _, [other] = check_q4_model({"model": {"error": "Sequential: TypeError"}})
    assert "..." not in other and "Sequential: TypeError" in other
