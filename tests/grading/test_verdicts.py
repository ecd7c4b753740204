"""Phase 2's verdicts (fashion_kit.grading.verdicts): every question decided by its check on the
values phase 1 handed over and on the grader's own measurement of the models; no score of the
kernel's is read. The hostile submissions themselves, graded end to end in both layouts, are in the
catalogue (catalogue/, test_catalogue.py); the checks on their own are in tests/test_checks.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from fashion_kit import checks, contract
from fashion_kit import settings as settings_module
from fashion_kit.grading import core, verdicts

from .. import gradescope_spec

from . import judge_fakes
from .judge_fakes import JUDGED, JUDGED_TOTAL, SETTINGS, decided, honest_values, lesson_model, models, output, scores


def test_honest_values_keep_every_point_and_record_the_sandbox():
    results = decided()
    assert scores(results) == JUDGED and results["score"] == JUDGED_TOTAL
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
    junk = {q: v for q, v in zip(JUDGED, ["x", 1, None, [1], {"model": 3}, {"fits": "a"}, {"files": 1},
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


def test_q9_needs_the_weights_the_fit_left():
    """Weights set after training (set_weights, load_weights, assign) in the same cell as the fit, so
    every snapshot holds them: the fit's own record of the weights it left differs."""
    values = honest_values()
    values["q6_fit"]["fits"][-1]["weights"] = "f" * 64
    replaced = decided(values, found=models(q8_evaluate=lesson_model(accuracy=0.9, train_accuracy=0.9)))
    assert scores(replaced)["q9_accuracy"] == 0 and scores(replaced)["q6_fit"] == 1
    message = output(replaced, "q9_accuracy")
    assert "set_weights" in message and "Saving and loading back is fine" in message and "存檔再讀回來" in message
    # Only the last fit counts: an earlier fit's weights were trained further.
    values["q6_fit"]["fits"] = [{**values["q6_fit"]["fits"][0], "weights": "e" * 64},
                                {**values["q6_fit"]["fits"][0], "weights": judge_fakes.TRAINED}]
    assert scores(decided(values))["q9_accuracy"] == 2
    # No record of the weights (no fit, an unreadable record): no accuracy credit.
    for fits in (None, [], [{"error": "not recorded"}], [{"weights": 5}]):
        values["q6_fit"]["fits"] = fits
        assert scores(decided(values))["q9_accuracy"] == 0, fits


def test_the_grader_trained_challenge_model_goes_on_the_leaderboard_and_earns_the_bonus():
    """The value is the grader's test accuracy of the model it trained itself from the recipe; its
    training accuracy plays no part (the grader trained it on the training images alone)."""
    def trained(test, epochs=10):
        return {"accuracy": test, "layers": [], "params": [],
                "training": {"epochs": epochs, "steps": 9380, "cpu_seconds": 113.7, "time_is_up": False}}

    results = decided(found=models(challenge=trained(0.9123)))
    assert results["leaderboard"] == [{"name": contract.LEADERBOARD_NAME, "value": 0.9123, "order": "desc"}]
    bonus = next(t for t in results["tests"] if t["name"] == contract.CHALLENGE_TEST)
    assert (bonus["score"], bonus["max_score"], results["score"]) == (1.0, 0, JUDGED_TOTAL + 1)
    assert "trained your build_challenge_model() itself" in bonus["output"] and "10 full epoch(s)" in bonus["output"]
    assert "評分程式用你的 build_challenge_model()" in bonus["output"]
    assert results["extra_data"][contract.MEASURED_KEY]["challenge_accuracy"] == 0.9123
    below = decided(found=models(challenge=trained(0.88)))
    assert results["score"] - below["score"] == 1.0 and "leaderboard" in below
    off = decided(found=models(challenge=trained(0.99)), settings=SETTINGS.replace(challenge_bonus_points=0))
    assert off["score"] == JUDGED_TOTAL and "leaderboard" in off
    assert "leaderboard" not in decided()
    assert not any(t["name"] == contract.CHALLENGE_TEST for t in decided()["tests"]), "no challenge, no word of it"
    # A refused recipe, or one the grader could not train or measure: the message, no entry, no bonus,
    # and the required questions lose nothing.
    for found, shown in (({"refused": "Expected Keras's built-in layers only, found a Lambda layer"}, "Lambda"),
                         ({"error": "training failed: ValueError: shapes"}, "training failed")):
        refused = decided(found=models(challenge=found))
        assert refused["score"] == JUDGED_TOTAL and "leaderboard" not in refused
        test = next(t for t in refused["tests"] if t["name"] == contract.CHALLENGE_TEST)
        assert test["score"] == 0 and shown in test["output"] and test["visibility"] == "visible"


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
    from .. import gradescope_spec as spec

    for found in (decided(), decided(stopped="disk"),
                  decided(found=models(challenge={"accuracy": 0.95})), decided(found=models(challenge={"refused": "x"}))):
        assert spec.problems(found) == []


def test_no_score_of_the_kernel_is_read_by_phase_2():
    """Otter's results and the checkpoints are written by the kernel; the judge reads neither."""
    source = Path(core.__file__).read_text(encoding="utf-8") + Path(verdicts.__file__).read_text(encoding="utf-8")
    assert "checked.json" not in source and "CHECKED_FILE" not in source
    assert '"score"' not in Path(core.__file__).read_text(encoding="utf-8")


def _shown_before_publication(results: dict) -> list[dict]:
    return [t for t in results["tests"] if t.get("visibility", results.get("visibility", "visible")) == "visible"]


def test_a_student_who_forgot_to_normalise_sees_why_on_gradescope_before_grades_are_published():
    values = honest_values()
    values["q3_normalize"] = {n: values["q1_load_data"][n] for n in ("training_images", "test_images")}
    results = decided(values)
    shown = _shown_before_publication(results)
    assert shown and all("max_score" not in t for t in shown), "no score before publication (the default)"
    q3 = next(t for t in shown if t["name"] == contract.PUBLIC_CHECK_TEST.format(question="q3_normalize"))
    assert q3["status"] == "failed" and "255" in q3["output"] and "uint8" in q3["output"]
    q2 = next(t for t in shown if t["name"] == contract.PUBLIC_CHECK_TEST.format(question="q2_class_names"))
    assert q2["status"] == "passed"
    assert "of 10 questions pass your notebook's checks" in results["output"] and results["output_format"] == "md"
    assert "publishes grades" in results["output"] and "老師公布成績" in results["output"]


@pytest.mark.parametrize("check_visibility", settings_module.VISIBILITIES)
@pytest.mark.parametrize("score_visibility", settings_module.VISIBILITIES)
def test_every_visibility_setting_gives_results_gradescope_accepts(check_visibility, score_visibility):
    chosen = SETTINGS.replace(check_visibility=check_visibility, score_visibility=score_visibility,
                              log_visibility=score_visibility)
    results = decided(settings=chosen)
    assert gradescope_spec.problems(results) == []
    for test in results["tests"]:
        if test["name"] in JUDGED:
            assert test["visibility"] == score_visibility and test["status"] == "passed"
        elif test["name"] != contract.CHALLENGE_TEST:
            assert test["visibility"] == check_visibility, test["name"]
    assert results["stdout_visibility"] == score_visibility
    assert len([t for t in results["tests"] if t["name"] in JUDGED]) == len(JUDGED)
    assert scores(results) == JUDGED, "the checks' tests carry no points"


def test_otters_display_keys_are_refused_with_the_kits_setting_to_use():
    with pytest.raises(settings_module.SettingsError, match=r"show_hidden is Otter's setting.*fashion_kit\.score_visibility"):
        settings_module.parse({"show_hidden": True})
    with pytest.raises(settings_module.SettingsError, match=r"score_visibility must be one of hidden, after_due_date"):
        settings_module.parse({"fashion_kit": {"score_visibility": "later"}})


def test_an_honest_kernels_values_pass_every_notebook_check_on_the_feedback_page():
    results = decided()
    assert "10 of 10 questions pass your notebook's checks" in results["output"]


def test_the_notebooks_threshold_is_the_default_setting():
    assert SETTINGS.min_test_accuracy == checks.MIN_TEST_ACCURACY


@pytest.mark.parametrize("question, change, words", [
    # Flatten(input_shape=(784,)): the lesson's layers and parameter counts, not its input.
    ("q4_model", {"input": [784]}, "28×28 images, found the input shape (784,)"),
    ("q5_compile", {"loss": "categoricalcrossentropy", "loss_given": "categorical_crossentropy"},
     "found categorical_crossentropy."),
])
def test_the_notebooks_check_and_the_grade_fail_the_same_model_with_the_same_words(question, change, words):
    broken = lesson_model(iterations=0, **change)
    values = honest_values()
    values[question]["model"] = broken
    results = decided(values, models(**{question: broken}))
    assert scores(results)[question] == 0 and words in output(results, question)
    public = next(t for t in results["tests"] if t["name"] == contract.PUBLIC_CHECK_TEST.format(question=question))
    assert public["status"] == "failed" and words in public["output"]
    assert "100480" not in output(results, question), "q4's and q5's messages never give away q10's answer"
