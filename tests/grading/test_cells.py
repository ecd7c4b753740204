"""The kit's cells phase 1 inserts into the notebook (fashion_kit.grading.cells): evidence taken
where each question is answered, checkpoints, seeding."""

from __future__ import annotations

import json
import math

import nbformat

from fashion_kit import questions
from fashion_kit.grading.cells import checkpoints, evidence, seeding




def notebook(*sources: str):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def test_evidence_is_taken_right_after_each_questions_check_and_at_the_end_when_it_is_missing(tmp_path):
    nb = notebook("model = build()", 'grader.check("q4_model")', "x = 1", "grader.check('q9_accuracy')")
    evidence.apply(nb, tmp_path)
    sources = [c.source for c in nb.cells]
    assert sources[2:4] == ['grader.check("q4_model")', "__fashion_kit_evidence__('q4_model')"]
    assert sources[5:7] == ["grader.check('q9_accuracy')", "__fashion_kit_evidence__('q9_accuracy')"]
    rest = [q for q in questions.NAMES if q not in ("q4_model", "q9_accuracy")]
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
    from fashion_kit.grading import evaluator
    left = evaluator.ModelFile(tmp_path / "q6_fit.keras").weights_digest()
    assert q6["fits"] == [{"examples": 100, "images": "other", "batch_size": 16, "validation_split": 0.2,
                           "epochs_done": 2, "steps": 5, "weights": left}]
    assert q6["model"]["iterations"] == 10 and (tmp_path / "q6_fit.keras").is_file()
    assert json.loads((tmp_path / "q2_class_names.json").read_text()) == {"class_names": ["a"] * 10}
    assert json.loads((tmp_path / "q10_param_count.json").read_text())["hidden_params"] == {
        "kind": "integer", "value": 100480}
    assert not (tmp_path / "q2_class_names.keras").exists(), "only questions that need the model save it"
    assert "np" in env and "checks" not in env and "describe_array" not in env, "the notebook's names are untouched"
    assert isinstance(np.zeros(1), np.ndarray)


def test_while_grading_the_kernel_leaves_measuring_the_models_to_phase_2(tmp_path, monkeypatch):
    """Phase 2 measures the saved models itself (accuracies, the saved file's weights), so the
    evidence cells do not predict or read the file back; the notebook's own check still measures."""
    import keras
    import numpy as np

    code = ["import numpy as np\nimport keras\n"
            "training_images, training_labels = np.zeros((60, 28, 28)), np.zeros(60, dtype=int)\n"
            "test_images, test_labels = np.zeros((10, 28, 28)), np.zeros(10, dtype=int)\n"
            "model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10)])\n"
            "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])\n"
            "history = model.fit(training_images, training_labels, epochs=1, verbose=0)\n"
            "model.save('fashion_mnist_model.keras')\n"
            "loaded_model = keras.models.load_model('fashion_mnist_model.keras')\n"
            "test_loss, test_acc = model.evaluate(test_images, test_labels, verbose=0)",
            'grader.check("q6_fit")', 'grader.check("q7_save_load")', 'grader.check("q8_evaluate")',
            'grader.check("q9_accuracy")']
    nb = notebook(*code)
    evidence.apply(nb, tmp_path / "evidence")
    (tmp_path / "evidence").mkdir()
    monkeypatch.chdir(tmp_path)
    fit, predict, load = keras.Model.fit, keras.Model.predict, keras.models.load_model
    measured = []

    def counted(name, method):
        def call(*args, **kwargs):
            measured.append(name)
            return method(*args, **kwargs)
        return call

    env: dict = {"grader": type("Grader", (), {"check": staticmethod(lambda q: None)})()}
    try:
        for cell in nb.cells:
            if cell.source.startswith("__fashion_kit_evidence__"):
                monkeypatch.setattr(keras.Model, "predict", counted("predict", predict))
                monkeypatch.setattr(keras.models, "load_model", counted("load_model", load))
            exec(cell.source, env)
            monkeypatch.setattr(keras.Model, "predict", predict)
            monkeypatch.setattr(keras.models, "load_model", load)
        values = {q: json.loads((tmp_path / "evidence" / f"{q}.json").read_text())
                  for q in ("q6_fit", "q7_save_load", "q8_evaluate", "q9_accuracy")}
        assert measured == [], "the evidence cells predicted or loaded a model: phase 2 does that"
        assert not {"accuracy", "train_accuracy"} & (values["q6_fit"]["model"].keys() | values["q9_accuracy"]["model"].keys())
        assert values["q8_evaluate"]["measured"] == [] and "saved" not in values["q7_save_load"]
        assert values["q7_save_load"]["loaded"]["same_weights"] is True  # what phase 2 cannot see is still taken
        # The notebook's own check, on the same variables, measures them.
        def collected(name):
            return getattr(questions.BY_NAME[name].module, f"collect_{name}")(env)
        assert {"accuracy", "train_accuracy"} <= collected("q9_accuracy")["model"].keys()
        assert len(collected("q8_evaluate")["measured"]) == 1
        assert collected("q7_save_load")["saved"] is True
    finally:
        keras.Model.fit = fit


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


def test_while_grading_keras_trains_evaluates_and_predicts_without_progress_output():
    """The seeding cell, run in this process: a notebook's fit(..., verbose=1) (or its default) trains
    with verbose=0, exactly as it would with it; a call Keras would refuse still gets Keras's own
    error."""
    import keras
    import numpy as np
    import pytest

    nb = notebook("x = 1")
    seeding.apply(nb, 7)
    saved = {name: getattr(keras.Model, name) for name in ("fit", "evaluate", "predict")}
    shell = type("Shell", (), {"events": type("Events", (), {"register": staticmethod(lambda *a: None)})()})()
    try:
        exec(nb.cells[0].source, {"get_ipython": lambda: shell})
        x, y = np.random.default_rng(0).random((64, 28, 28)), np.arange(64) % 10

        def trained(**how):
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10)])
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            return model, model.fit(x, y, epochs=2, batch_size=16, **how)

        model, history = trained(verbose=1)
        loss = model.evaluate(x, y, verbose=1)
        assert model.predict(x[:4], verbose=1).shape == (4, 10)
        assert history.params["verbose"] == 0 and history.params["steps"] == 4
        _, default = trained()
        assert history.history == default.history, "what a fit computes does not depend on verbose"
        assert np.isfinite(loss).all()
        with pytest.raises(TypeError, match="epoch"):
            model.fit(x, y, epoch=5)  # a typo: Keras's own message names it
    finally:
        for name, method in saved.items():
            setattr(keras.Model, name, method)
        keras.config.enable_interactive_logging()


def test_a_fit_records_what_its_training_step_trained_on_whatever_fed_it(tmp_path):
    """A tf.data pipeline (with or without repeat), a PyDataset, a generator, a tensor: the record is
    what the training step saw (the distinct images, all examples, the largest batch, the steps), the
    training is the same as without the grader's cell, and the weights the fit left have the digest
    the grader's evaluator computes from the saved model."""
    import keras
    import numpy as np
    import tensorflow as tf

    from fashion_kit.grading import evaluator

    images = np.random.default_rng(0).integers(0, 256, (200, 28, 28)).astype("uint8") / 255.0
    labels = np.arange(200) % 10

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return images[i * 32:(i + 1) * 32], labels[i * 32:(i + 1) * 32]

    def generator():
        while True:
            for i in range(0, 200, 50):
                yield images[i:i + 50], labels[i:i + 50]

    def dataset():
        return tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(200, seed=1)

    forms = {  # how to fit, and (batch size, steps per epoch, examples seen in 2 epochs)
        "tf.data": (lambda m: m.fit(dataset().batch(32), epochs=2, verbose=0), (32, 7, 400)),
        "repeat": (lambda m: m.fit(dataset().repeat().batch(64), steps_per_epoch=4, epochs=2, verbose=0), (64, 4, 512)),
        "PyDataset": (lambda m: m.fit(Batches(), epochs=2, verbose=0), (32, 7, 400)),
        "generator": (lambda m: m.fit(generator(), steps_per_epoch=4, epochs=2, verbose=0), (50, 4, 400)),
        "tensor": (lambda m: m.fit(tf.constant(images), tf.constant(labels), epochs=2, batch_size=16, verbose=0), (16, 13, 400)),
    }

    def model():
        keras.utils.set_random_seed(3)
        m = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return m

    unwatched = {name: how(model()).history for name, (how, _) in forms.items() if name in ("tf.data", "generator")}
    nb = notebook()
    evidence.apply(nb, tmp_path)
    fit, env = keras.Model.fit, {}
    try:
        exec(nb.cells[0].source, env)
        for name, (how, (batch, steps, seen)) in forms.items():
            m = model()
            history = how(m)
            [record] = env["__fashion_kit_fit_records__"][id(m)]
            assert record.pop("weights") == evaluator.ModelFile(_saved(m, tmp_path / f"{name}.keras")).weights_digest()
            assert record == {"examples": 200, "images": "other", "batch_size": batch, "validation_split": 0.0,
                              "epochs_done": 2, "steps": steps, "seen": seen}, name
            assert int(m.optimizer.iterations.numpy()) == 2 * steps
            if name in unwatched:
                assert history.history == unwatched[name], "the grader's cell changes no training"
    finally:
        keras.Model.fit = fit


def _saved(model, path):
    model.save(path)
    return path


def test_the_keys_of_the_training_images_have_the_recorded_digest_however_they_are_scaled(data_dir):
    """What a fit saw is the training set when its images' keys have checks.TRAINING_EXAMPLES_DIGEST:
    the pixels as loaded, / 255 in float64 or float32, in any order and batching, repeated or not."""
    import numpy as np

    from fashion_kit import checks
    from fashion_kit.grading import evaluator

    training = evaluator.read_idx(data_dir / evaluator.TRAIN_IMAGES)
    weights = checks.key_weights()
    order = np.random.default_rng(0).permutation(60000)

    def digest(images, batch=32):
        return checks.examples_digest(np.concatenate(
            [checks.example_keys(images[i:i + batch], weights) for i in range(0, len(images), batch)]))

    assert digest(training, 60000) == checks.TRAINING_EXAMPLES_DIGEST
    assert digest((training / 255.0)[order]) == checks.TRAINING_EXAMPLES_DIGEST
    assert digest(np.concatenate([training, training[:100]]).astype("float32") / 255, 64) == checks.TRAINING_EXAMPLES_DIGEST
    assert digest(training[1:]) != checks.TRAINING_EXAMPLES_DIGEST
    assert digest(evaluator.read_idx(data_dir / evaluator.TEST_IMAGES)) != checks.TRAINING_EXAMPLES_DIGEST
    assert digest(training / 127.5 - 1) != checks.TRAINING_EXAMPLES_DIGEST
    assert checks.example_keys(np.zeros((4, 10)), weights) is None
    assert checks.example_keys(np.array(["a", "b"]), weights) is None


def test_the_tests_quick_fit_trains_arrays_as_one_batch_and_q6_still_holds(tmp_path):
    """The tests' quick fit, in the order phase 1 prepares the cells (run here without the stand-in
    for Otter): a fit on arrays trains as one batch per epoch, the recorder sees that batch size, and
    q6's rule (steps that match the batch size, the optimizer's steps those of the fits) holds. Without
    the switch a notebook that sets the environment variable itself still trains at its own batch size."""
    import keras
    import numpy as np

    from fashion_kit.grading import cells, core
    from fashion_kit.grading.cells import quick_fit

    source = (f"import os\nos.environ[{core.QUICK_FIT_ENV!r}] = '1'\nimport numpy as np, keras\n"
              "model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10)])\n"
              "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
              "history = model.fit(np.zeros((100, 28, 28)), np.zeros(100), epochs=3, verbose=1)")
    shell = type("Shell", (), {"events": type("Events", (), {"register": staticmethod(lambda *a: None)})()})()
    saved = {name: getattr(keras.Model, name) for name in ("fit", "evaluate", "predict")}

    def fitted(quick: bool, folder):
        folder.mkdir()
        nb = cells.prepare(notebook(source, 'grader.check("q6_fit")'), evidence=folder, seed=1, quick_fit=quick)
        env = {"get_ipython": lambda: shell, "grader": type("G", (), {"check": staticmethod(lambda q: None)})()}
        try:
            for cell in nb.cells:
                if not cell.source.startswith("def __fashion_kit_stand_in_for_otter__"):
                    exec(cell.source, env)
        finally:
            for name, method in saved.items():
                setattr(keras.Model, name, method)
            keras.config.enable_interactive_logging()
        q6 = json.loads((folder / "q6_fit.json").read_text())
        [fit] = q6["fits"]
        assert fit["steps"] == math.ceil(fit["examples"] / fit["batch_size"]), "q6: steps that match the batch"
        return fit, q6["model"]["iterations"]

    quick, iterations = fitted(True, tmp_path / "quick")
    assert (quick["batch_size"], quick["steps"], iterations) == (100, 1, 3)
    plain, iterations = fitted(False, tmp_path / "plain")
    assert (plain["batch_size"], plain["steps"], iterations) == (32, 4, 12), "the notebook cannot turn it on"
    sources = [c.source for c in cells.prepare(notebook("x = 1"), evidence=tmp_path, seed=1).cells]
    with_switch = [c.source for c in cells.prepare(notebook("x = 1"), evidence=tmp_path, seed=1, quick_fit=True).cells]
    assert quick_fit.QUICK_FIT_CELL not in sources and quick_fit.QUICK_FIT_CELL in with_switch
