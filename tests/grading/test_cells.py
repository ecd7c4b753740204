"""The kit's cells phase 1 inserts into the notebook (fashion_kit.grading.cells): evidence taken
where each question is answered, checkpoints, seeding."""

from __future__ import annotations

import json

import nbformat

from fashion_kit import contract
from fashion_kit.grading.cells import checkpoints, evidence, seeding




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
