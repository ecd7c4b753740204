"""Grading integrity: the trusted phase's verdicts, its evidence reader, and what phase 1 may leave.

The hostile submissions themselves (attacks graded end to end in both layouts) are in the catalogue
(tests/catalogue/, test_catalogue.py); this module tests the pieces that decide a grade.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import nbformat
import pytest

from fashion_kit import assign, autograder_zip, contract, notebooks, settings as settings_module
from fashion_kit.grading import evaluator, layout, verdicts
from fashion_kit.grading.cells import checkpoints, evidence, grading_mode, in_place, seeding
from fashion_kit.settings import Settings

from .test_grading import QUESTIONS

SETTINGS = Settings()
LESSON = [["Flatten", None, None], ["Dense", 128, "relu"], ["Dense", 10, "softmax"]]


def lesson_model(**changes) -> dict:
    facts = {"layers": LESSON, "params": [0, 100480, 1290], "iterations": 9375, "compiled": True,
             "optimizer": "adam", "loss": "sparsecategoricalcrossentropy", "metrics": ["accuracy"],
             "accuracy": 0.8693}
    return {**facts, **changes}


def facts(**models) -> dict:
    found = {q: lesson_model() for q in contract.EVIDENCE_QUESTIONS}
    found["student"] = lesson_model()
    found.update(models)
    return {"models": {k: v for k, v in found.items() if v is not None},
            "same_weights": {f"student|{contract.Q_SAVE_LOAD}": True}, "own_images": None}


def all_passed(**scores) -> verdicts.Phase1:
    phase1 = verdicts.Phase1(reported_test_acc=0.8693)
    phase1.kernel = {q: verdicts.Kernel(float(scores.get(q, p)), f"{q} results: All test cases passed!")
                     for q, p in QUESTIONS.items()}
    return phase1


def decided(phase1=None, found=None, settings=SETTINGS) -> dict:
    return verdicts.decide({q: float(p) for q, p in QUESTIONS.items()}, phase1 or all_passed(),
                           found or facts(), settings, sandbox="bubblewrap")


def scores(results: dict) -> dict:
    return {t["name"]: t["score"] for t in results["tests"] if t.get("max_score")}


def output(results: dict, name: str) -> str:
    return next(t["output"] for t in results["tests"] if t["name"] == name)


# -- the verdicts: the lower of the kernel's and the evidence's ---------------------------------------

def test_honest_evidence_keeps_every_point_and_records_the_sandbox():
    results = decided()
    assert scores(results) == {q: float(p) for q, p in QUESTIONS.items()} and results["score"] == 13
    assert results["extra_data"][contract.SANDBOX_KEY] == "bubblewrap"
    assert results["extra_data"][contract.MEASURED_KEY]["accuracy"] == 0.8693


def test_a_patched_kernel_gains_nothing_the_evidence_contradicts():
    # The kernel said full marks for everything; the model it really had says otherwise.
    wrong = lesson_model(layers=[["Flatten", None, None], ["Dense", 64, "relu"], ["Dense", 10, "softmax"]],
                         params=[0, 50240, 650], iterations=5625, accuracy=0.41, optimizer="sgd")
    results = decided(found=facts(**{q: wrong for q in contract.EVIDENCE_QUESTIONS}))
    got = scores(results)
    assert (got["q4_model"], got["q5_compile"], got["q6_fit"], got["q9_accuracy"]) == (0, 0, 0, 0)
    assert got["q8_evaluate"] == 0.5  # it reported 0.8693 for a model measured at 0.41
    assert got["q1_load_data"] == 1 and got["q3_normalize"] == 2  # no evidence: the kernel's verdict stays
    assert "Dense(64, relu)" in output(results, "q4_model") and "Dense(128, relu)" in output(results, "q4_model")
    assert "5625" in output(results, "q6_fit") and "9375" in output(results, "q6_fit")


def test_evidence_never_raises_a_score_the_kernel_gave_less():
    results = decided(phase1=all_passed(q4_model=0, q9_accuracy=0, q8_evaluate=0.5))
    got = scores(results)
    assert (got["q4_model"], got["q9_accuracy"], got["q8_evaluate"]) == (0, 0, 0.5)
    assert output(results, "q4_model") == "q4_model results: All test cases passed!", "the kernel's own message"


def test_otters_error_blocks_become_the_tests_own_message():
    raw = ("q3_normalize results:\n    q3_normalize - 1 result:\n        ❌ Test case failed\n"
           "        Error at line 7 in test q3_normalize:\n"
           "                assert low == 0.0, f'...'\n"
           "        AssertionError: 應該在 0 到 1 之間 / Expected 0 to 1, found 0 to 255.")
    kernel = verdicts.read_kernel({"q3_normalize": {"score": 0, "output": raw}}, {"q3_normalize": 2.0})
    text = kernel["q3_normalize"].output
    assert "Expected 0 to 1, found 0 to 255." in text
    assert "Error at line" not in text and "assert low" not in text and "AssertionError" not in text


def test_kernel_scores_are_capped_at_the_autograders_own_points():
    phase1 = verdicts.Phase1(kernel=verdicts.read_kernel(
        {"q1_load_data": {"score": 100, "output": "x"}, "q2_class_names": {"score": -5},
         "q3_normalize": {"score": "2"}, "q99_bonus": {"score": 50}, "q10_param_count": ["nope"]},
        {q: float(p) for q, p in QUESTIONS.items()}))
    assert phase1.kernel["q1_load_data"].score == 1.0 and phase1.kernel["q2_class_names"].score == 0.0
    assert "q3_normalize" not in phase1.kernel and "q10_param_count" not in phase1.kernel
    assert "q99_bonus" not in phase1.kernel
    results = decided(phase1=phase1)
    assert results["score"] == 1 and "q99_bonus" not in scores(results)


@pytest.mark.parametrize("steps, five", [(9375, True), (5, True), (4690, True), (1875, True), (9380, False),
                                         (5625, False), (0, False), (None, False), (11250, False)])
def test_five_epochs_of_steps_for_any_batch_size(steps, five):
    # 4690 = 5 x 938 (batch 64); 5 = 5 x 1 (batch 60000); 5625 = 3 epochs at batch 32 and 11250 = 6;
    # 1875 = 5 x 375 (batch 160) is also one epoch at batch 32: steps alone cannot tell those apart.
    assert verdicts.five_epochs(steps) is five


def test_q8_agrees_with_the_notebooks_own_scaling_of_the_test_images():
    # Forgot / 255.0 everywhere: evaluate() ran on 0..255 images and said 0.71; the standard scaling
    # gives 0.10. That is an honest evaluation of its own test data: q8 keeps its point.
    found = facts(q8_evaluate=lesson_model(accuracy=0.10))
    found["own_images"] = {"scale": [1.0, 0.0], "accuracy": 0.71}
    phase1 = all_passed()
    phase1.reported_test_acc = 0.71
    assert scores(decided(phase1, found))["q8_evaluate"] == 1
    phase1.reported_test_acc = 0.99  # a number from nowhere
    results = decided(phase1, found)
    assert scores(results)["q8_evaluate"] == 0.5 and "0.9900" in output(results, "q8_evaluate")


def test_q7_needs_the_students_own_file_with_the_trained_weights():
    found = facts(student=None)
    assert scores(decided(found=found))["q7_save_load"] == 0
    found = facts(student={"error": "OSError: truncated file"})
    results = decided(found=found)
    assert scores(results)["q7_save_load"] == 0 and "truncated file" in output(results, "q7_save_load")
    found = facts()
    found["same_weights"][f"student|{contract.Q_SAVE_LOAD}"] = False
    assert scores(decided(found=found))["q7_save_load"] == 0


def test_missing_evidence_confirms_nothing():
    # No model at q7 to compare the file with, no model at q8 to measure: a patched kernel's "passed"
    # and a reported number earn nothing there.
    got = scores(decided(found=facts(q7_save_load=None, q8_evaluate=None)))
    assert (got["q7_save_load"], got["q8_evaluate"]) == (0, 0)


def test_facts_of_the_wrong_type_count_for_nothing_and_crash_nothing():
    weird = lesson_model(accuracy="0.99", iterations="9375", params=["100480"], layers="Dense")
    unnamed = lesson_model(layers=[[None, 128, None], ["Dense", None, "relu"]])
    assert scores(decided(found=facts(q4_model=unnamed)))["q4_model"] == 0
    got = scores(decided(found=facts(**{q: weird for q in contract.EVIDENCE_QUESTIONS})))
    assert got["q9_accuracy"] == 0 and got["q6_fit"] == 0 and got["q4_model"] == 0
    assert scores(decided(found=facts(q9_accuracy=lesson_model(accuracy=1.5))))["q9_accuracy"] == 0


def test_q9_is_the_measured_accuracy_against_the_threshold():
    at = decided(found=facts(q9_accuracy=lesson_model(accuracy=0.85)))
    assert scores(at)["q9_accuracy"] == 2 and "0.8500" in output(at, "q9_accuracy")
    below = decided(found=facts(q9_accuracy=lesson_model(accuracy=0.8499)))
    assert scores(below)["q9_accuracy"] == 0
    assert "Expected a test accuracy of at least 0.85, found 0.8499" in output(below, "q9_accuracy")
    stricter = decided(found=facts(q9_accuracy=lesson_model(accuracy=0.87)),
                       settings=SETTINGS.replace(min_test_accuracy=0.9))
    assert scores(stricter)["q9_accuracy"] == 0
    missing = decided(found=facts(q9_accuracy=None))
    assert scores(missing)["q9_accuracy"] == 0 and "found none" in output(missing, "q9_accuracy")


def test_challenge_goes_on_the_leaderboard_and_earns_the_bonus_above_its_threshold():
    results = decided(found=facts(challenge={"accuracy": 0.9123, "layers": [], "params": []}))
    assert results["leaderboard"] == [{"name": contract.LEADERBOARD_NAME, "value": 0.9123, "order": "desc"}]
    bonus = next(t for t in results["tests"] if t["name"] == contract.CHALLENGE_TEST)
    assert (bonus["score"], bonus["max_score"], results["score"]) == (1.0, 0, 14.0)
    below = decided(found=facts(challenge={"accuracy": 0.88, "layers": [], "params": []}))
    assert results["score"] - below["score"] == 1.0
    off = decided(found=facts(challenge={"accuracy": 0.99, "layers": [], "params": []}),
                  settings=SETTINGS.replace(challenge_bonus_points=0))
    assert off["score"] == 13 and "leaderboard" in off
    assert "leaderboard" not in decided()


def test_a_stopped_run_keeps_what_was_checked_and_names_the_cell():
    phase1 = verdicts.Phase1(stopped="timeout", running_cell={"cell": 12, "first_line": "import time"})
    phase1.kernel = {"q1_load_data": verdicts.Kernel(1.0, "ok")}
    results = decided(phase1)
    assert scores(results)["q1_load_data"] == 1 and results["score"] == 1
    assert results["extra_data"][contract.STOPPED_KEY] == "timeout"
    title = results["tests"][0]
    assert title["visibility"] == "visible" and "import time" in title["output"]
    assert "Not checked" in output(results, "q6_fit")


def test_a_refused_submission_is_passed_on_with_no_score():
    results = decided(verdicts.Phase1(refused="wrong notebook"))
    assert results["score"] == 0 and output(results, contract.OTTER_ERROR_TEST) == "wrong notebook"


def test_the_public_box_keeps_the_checks_order_and_only_known_questions():
    found = {"q2_class_names": {"score": 1, "public": "q2 passed"}, "q99": {"public": "forged"},
             "q1_load_data": {"score": 0, "public": "q1 failed"}, "q3_normalize": {"public": 3}}
    box = verdicts.read_public_box(found, {q: float(p) for q, p in QUESTIONS.items()})
    assert box == "q2 passed\n\nq1 failed"
    assert verdicts.read_public_box({"q1_load_data": {"score": 1}}, {"q1_load_data": 1.0}) is None
    assert verdicts.read_public_box(["nope"], {"q1_load_data": 1.0}) is None


def test_results_follow_gradescope_spec_in_every_shape():
    from . import gradescope_spec as spec

    for found in (decided(), decided(verdicts.Phase1(stopped="disk")),
                  decided(found=facts(challenge={"accuracy": 0.95, "layers": [], "params": []}))):
        assert spec.problems(found) == []


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


def test_the_reader_matches_keras_without_importing_it(saved_models, data_dir):
    import numpy as np

    folder, lesson = saved_models
    images, labels = evaluator.read_idx(data_dir / evaluator.TEST_IMAGES), evaluator.read_idx(data_dir / evaluator.TEST_LABELS)
    expected = float(np.mean(np.argmax(lesson.predict(images / 255.0, verbose=0), axis=1) == labels))
    request = {"data": str(data_dir), "models": {n: str(folder / n) for n in ("lesson.keras", "lesson.h5", "flat.keras")},
               "accuracy": ["lesson.keras", "lesson.h5", "flat.keras"], "same_weights": [["lesson.keras", "lesson.h5"]]}
    answer = evaluator.answer(request)
    for name in ("lesson.keras", "lesson.h5"):
        found = answer["models"][name]
        assert found["accuracy"] == pytest.approx(expected, abs=2e-4)
        assert found["layers"] == LESSON and found["params"] == [0, 100480, 1290]
        assert found["iterations"] == 2 and found["optimizer"] == "adam" and found["compiled"]
        assert found["loss"] == "sparsecategoricalcrossentropy" and found["metrics"] == ["accuracy"]
    assert "accuracy" in answer["models"]["flat.keras"], "a flattened-input model gets flattened images"
    assert answer["same_weights"]["lesson.keras|lesson.h5"] is True


def test_code_in_a_model_file_is_never_run_and_junk_is_an_error(saved_models, data_dir):
    folder, _ = saved_models
    answer = evaluator.answer({"data": str(data_dir), "models": {"unsafe": str(folder / "unsafe.keras"),
                                                                  "junk": str(folder / "junk.keras")},
                               "accuracy": ["unsafe", "junk"]})
    unsafe = answer["models"]["unsafe"]
    # Its layers are read as data; computing it needs Keras, which refuses the Lambda's code.
    assert [kind for kind, *_ in unsafe["layers"]] == ["Lambda", "Flatten", "Dense"]
    assert "safe_mode" in unsafe["accuracy_error"] and "accuracy" not in unsafe, unsafe
    assert answer["models"]["junk"]["error"]


def test_nothing_a_model_file_prints_can_pass_for_the_evaluators_answer(saved_models, data_dir, tmp_path):
    """A layer named like a JSON answer gets printed in a Keras warning; a huge field pushes the real
    answer out of the captured output. The answer travels in a file of its own, so neither matters."""
    import json as json_module

    import keras

    from fashion_kit.grading import core, sandbox

    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Masking(mask_value=-1.0),
                              keras.layers.Conv1D(4, 3, name="cv"), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.save(tmp_path / "mask.keras")
    good = lesson_model(accuracy=0.99)
    forged = json_module.dumps({"models": {"challenge": good}, "same_weights": {}, "own_images": None})
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
    for name in (evaluator.TEST_IMAGES, evaluator.TEST_LABELS):
        (inputs / name).write_bytes((data_dir / name).read_bytes())
    (inputs / "challenge.keras").write_bytes((tmp_path / "evil.keras").read_bytes())
    request = {"data": str(inputs), "models": {"challenge": str(inputs / "challenge.keras")}, "accuracy": ["challenge"]}
    found = core._evaluate(request, inputs, sandbox.NoSandbox(), Path(os.sys.executable))
    challenge = found["models"]["challenge"]
    assert challenge.get("accuracy") != 0.99, challenge
    assert len(challenge.get("optimizer") or "") <= evaluator.NAME_CHARS


def test_the_notebooks_own_test_images_count_only_as_a_scaling_of_the_real_ones(saved_models, data_dir, tmp_path):
    import numpy as np

    folder, _ = saved_models
    raw = evaluator.read_idx(data_dir / evaluator.TEST_IMAGES)
    request = {"data": str(data_dir), "models": {"m": str(folder / "lesson.keras")}, "accuracy": ["m"]}
    np.save(tmp_path / "scaled.npy", (raw / 127.5 - 1).astype(np.float32))
    answer = evaluator.answer({**request, "own_images": {"model": "m", "path": str(tmp_path / "scaled.npy")}})
    assert answer["own_images"]["scale"] == pytest.approx([1 / 127.5, -1], abs=1e-6)
    np.save(tmp_path / "shuffled.npy", raw[::-1].astype(np.float32))
    answer = evaluator.answer({**request, "own_images": {"model": "m", "path": str(tmp_path / "shuffled.npy")}})
    assert "not the test set scaled" in answer["own_images"]["error"]
    (tmp_path / "pickle.npy").write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (1,), }")
    answer = evaluator.answer({**request, "own_images": {"model": "m", "path": str(tmp_path / "pickle.npy")}})
    assert "error" in answer["own_images"]


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
    rest = [q for q in contract.EVIDENCE_QUESTIONS if q not in ("q4_model", "q9_accuracy")]
    assert sources[7:] == [f"__fashion_kit_evidence__({q!r})" for q in rest]
    assert str(tmp_path) in sources[0]


def test_checkpoints_are_plain_json_and_mark_only_the_students_cells(tmp_path):
    nb = notebook("a = 1", "b = 2")
    evidence.apply(nb, tmp_path)
    checkpoints.apply(nb, tmp_path)
    helper = nb.cells[0].source
    assert "pickle" not in helper and "json.dump" in helper and contract.CHECKED_FILE in helper
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


def test_check_all_cells_are_neutralised_so_each_question_counts_where_it_is_answered():
    nb = notebook('grader.check("q1_load_data")', "grader.check_all()", "x = 1\n  grader.check_all()  \ny = 2")
    in_place.apply(nb)
    assert [c.source for c in nb.cells] == ['grader.check("q1_load_data")', "pass", "x = 1\npass\ny = 2"]


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
    from fashion_kit.grading import core

    with zipfile.ZipFile(built.autograder_zip) as zf:
        zf.extractall(Path(built.autograder_zip).parent / "unzipped")
    questions = core.read_questions(Path(built.autograder_zip).parent / "unzipped" / "tests")
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


def test_the_notebooks_copy_of_the_settings_carries_no_secret(tmp_path):
    config = {"assignment_name": "fashion_mnist", "token": "gradescope-secret", "fashion_kit": {}}
    (tmp_path / "otter_config.json").write_text(json.dumps(config), encoding="utf-8")
    copy = json.loads(settings_module.without_secrets(tmp_path / "otter_config.json"))
    assert "token" not in copy and copy["assignment_name"] == "fashion_mnist"
