"""Grading integrity: accuracy measured outside the kernel, deterministic seeding, questions checked
where they are answered."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import nbformat
import pytest

from fashion_kit import assign, notebooks

from .test_grading import QUESTIONS

GRADESCOPE = Path(__file__).resolve().parents[1] / "src" / "fashion_kit" / "gradescope"
sys.path.insert(0, str(GRADESCOPE))

import check_in_place  # noqa: E402
import postgrade  # noqa: E402
import seeding  # noqa: E402


def otter_results(q8=1.0, q9=2.0, score=None) -> dict:
    tests = [{"name": q, "score": float(p), "max_score": float(p), "output": f"{q} results: All test cases passed!"}
             for q, p in QUESTIONS.items()]
    by_name = {t["name"]: t for t in tests}
    by_name["q8_evaluate"]["score"], by_name["q9_accuracy"]["score"] = q8, q9
    results = {"tests": tests}
    if score is not None:
        results["score"] = score
    return results


def scores(results: dict) -> dict:
    return {t["name"]: t["score"] for t in results["tests"] if "max_score" in t}


def test_test_set_is_read_from_the_bundled_idx_files(data_dir):
    images, labels = postgrade.test_set(data_dir)
    assert images.shape == (10000, 28, 28) and images.dtype.name == "uint8"
    assert labels.shape == (10000,) and set(labels.tolist()) == set(range(10))


def test_a_file_that_is_not_idx_is_refused(tmp_path):
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"PK\x03\x04 not an idx file")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        postgrade.read_idx(bad)


def test_accuracy_at_the_threshold_earns_q9_with_both_numbers_in_the_message():
    m = postgrade.Measurement("fashion_mnist_model.keras", 0.8512)
    results = postgrade.rewrite(otter_results(q9=0.0), m, 0.85, reported=0.8512)
    assert scores(results)["q9_accuracy"] == 2.0
    q9 = next(t for t in results["tests"] if t["name"] == "q9_accuracy")
    assert "0.8512" in q9["output"] and "0.85" in q9["output"]


def test_the_kernel_verdict_is_replaced_by_the_measured_accuracy():
    # The kernel said 2 points (a faked predict), the saved model says otherwise.
    m = postgrade.Measurement("fashion_mnist_model.keras", 0.31)
    results = postgrade.rewrite(otter_results(), m, 0.85, reported=0.31)
    assert scores(results)["q9_accuracy"] == 0.0
    q9 = next(t for t in results["tests"] if t["name"] == "q9_accuracy")
    assert "Expected a test accuracy of at least 0.85, found 0.3100" in q9["output"]


@pytest.mark.parametrize("m, says", [
    (postgrade.Measurement(None, error="no saved model file"), 'model.save("fashion_mnist_model.keras")'),
    (postgrade.Measurement("fashion_mnist_model.keras", error="ValueError: Lambda"), "could not use (ValueError: Lambda)"),
])
def test_a_missing_or_unloadable_model_scores_zero_and_says_what_to_do(m, says):
    results = postgrade.rewrite(otter_results(), m, 0.85, reported=None)
    assert scores(results)["q9_accuracy"] == 0.0
    assert says in next(t for t in results["tests"] if t["name"] == "q9_accuracy")["output"]


def test_a_reported_test_acc_that_disagrees_costs_the_hidden_half_of_q8_and_keeps_the_total():
    m = postgrade.Measurement("fashion_mnist_model.keras", 0.52)
    results = postgrade.rewrite(otter_results(score=13.0), m, 0.85, reported=0.99)
    assert scores(results)["q8_evaluate"] == 0.5 and scores(results)["q9_accuracy"] == 0.0
    assert results["score"] == 13.0 - 0.5 - 2.0
    q8 = next(t for t in results["tests"] if t["name"] == "q8_evaluate")
    assert "found 0.9900" in q8["output"] and "0.5200" in q8["output"]


def test_agreement_within_tolerance_changes_nothing():
    m = postgrade.Measurement("fashion_mnist_model.keras", 0.8693)
    results = postgrade.rewrite(otter_results(), m, 0.85, reported=0.8693 + postgrade.AGREEMENT_TOLERANCE / 2)
    assert scores(results) == {q: float(p) for q, p in QUESTIONS.items()}


def test_challenge_goes_on_the_leaderboard_and_earns_the_bonus_above_its_threshold():
    settings = {"challenge_bonus_points": 1, "challenge_bonus_threshold": 0.9}
    results = postgrade.add_challenge(otter_results(score=13.0), postgrade.Measurement("c", 0.9123), settings)
    assert results["leaderboard"] == [{"name": "Challenge test accuracy", "value": 0.9123, "order": "desc"}]
    bonus = next(t for t in results["tests"] if t["name"] == postgrade.CHALLENGE_TEST)
    assert (bonus["score"], bonus["max_score"], results["score"]) == (1.0, 0, 14.0)
    below = postgrade.add_challenge(otter_results(), postgrade.Measurement("c", 0.88), settings)
    assert next(t for t in below["tests"] if t["name"] == postgrade.CHALLENGE_TEST)["score"] == 0.0
    assert "leaderboard" not in postgrade.add_challenge(otter_results(), postgrade.Measurement(None), settings)


def test_saved_models_are_measured_in_a_separate_process_with_safe_mode(tmp_path, data_dir):
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    plain = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    plain.save(tmp_path / "plain.keras")
    flat = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    flat.save(tmp_path / "flat.keras")
    unsafe = keras.Sequential([keras.Input((28, 28)), keras.layers.Lambda(lambda x: x * 2.0),
                               keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    unsafe.save(tmp_path / "unsafe.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a model")

    images, labels = postgrade.test_set(data_dir)
    expected = float(np.mean(np.argmax(plain.predict(images / 255.0, verbose=0), axis=1) == labels))
    paths = [tmp_path / n for n in ("plain.keras", "flat.keras", "unsafe.keras", "junk.keras")] + [None]
    plain_m, flat_m, unsafe_m, junk_m, missing = postgrade.measure(paths, data_dir)
    assert plain_m.accuracy == pytest.approx(expected, abs=1e-4)
    assert flat_m.accuracy is not None  # flattened-input models get flattened images
    assert unsafe_m.accuracy is None and "safe_mode" in unsafe_m.error, unsafe_m.error
    assert junk_m.accuracy is None and junk_m.error
    assert missing.model_file is None and missing.accuracy is None


def test_seeding_plugin_puts_the_configured_seed_first(tmp_path):
    config = tmp_path / "otter_config.json"
    config.write_text(json.dumps({"seed": 1234}))
    cell = seeding.seed_cell(seeding.grading_seed(config))
    assert "set_random_seed(1234)" in cell.source and "enable_op_determinism()" in cell.source
    config.write_text(json.dumps({}))
    with pytest.raises(ValueError, match='must set "seed" to a whole number, found None'):
        seeding.grading_seed(config)


def test_the_seed_lives_in_otter_config_for_otter_and_the_plugin():
    from fashion_kit import paths

    config = json.loads(paths.OTTER_CONFIG.read_text())
    assert isinstance(config["seed"], int)
    run_otter = (paths.ROOT / "src" / "fashion_kit" / "gradescope" / "run_otter.py").read_text()
    for plugin in ("seeding.SeedTensorFlow", "check_in_place.CheckEachQuestionInPlace"):
        assert f'"{plugin}"' in run_otter, f"run_otter.py must load {plugin} for every grading"
    # Plain `otter run` cannot import them, so they must not be in the zip's config.
    assert not any("seeding" in str(p) or "check_in_place" in str(p) for p in config.get("plugins", []))


def test_check_all_cells_are_neutralised_so_each_question_counts_where_it_is_answered():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('grader.check("q1_load_data")'),
        nbformat.v4.new_code_cell("grader.check_all()"),
        nbformat.v4.new_code_cell("x = 1\n  grader.check_all()  \ny = 2"),
    ])
    out = check_in_place.CheckEachQuestionInPlace(None, None, None).before_execution(nb)
    assert [c.source for c in out.cells] == ['grader.check("q1_load_data")', "pass", "x = 1\npass\ny = 2"]


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
    outputs = [{t["name"]: t.get("output") for t in o.results["tests"]} for o in (first, second)]
    # q9's message carries the measured accuracy to four decimals.
    assert outputs[0]["q9_accuracy"] == outputs[1]["q9_accuracy"]


def test_postgrade_rewrites_results_json_in_the_gradescope_layout(tmp_path, data_dir):
    """postgrade.main as run_otter calls it: zip root in source/, the student's files in submission/.
    The challenge cells are otter_ignore'd, so challenge_model.keras arrives uploaded next to the
    notebook; it goes on the leaderboard."""
    import subprocess

    import keras

    from fashion_kit import paths, results as gradescope_results

    source, submission, out = (tmp_path / d for d in ("source", "submission", "results"))
    for folder in (source / "data", submission, out):
        folder.mkdir(parents=True)
    (source / "postgrade.py").write_bytes((GRADESCOPE / "postgrade.py").read_bytes())
    (source / "otter_config.json").write_bytes(paths.OTTER_CONFIG.read_bytes())
    (source / "data" / "fashion-mnist").symlink_to(data_dir)
    keras.utils.set_random_seed(0)
    untrained = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    untrained.save(submission / "fashion_mnist_model.keras")
    untrained.save(submission / "challenge_model.keras")
    (submission / postgrade.REPORTED_FILE).write_text(json.dumps({"test_acc": 0.99}))
    (out / "results.json").write_text(json.dumps(otter_results()))

    proc = subprocess.run([sys.executable, "-c", f"import postgrade; postgrade.main({str(tmp_path)!r})"],
                          cwd=source, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rewritten = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert scores(rewritten)["q9_accuracy"] == 0.0 and scores(rewritten)["q8_evaluate"] == 0.5
    board = rewritten["leaderboard"][0]
    assert board["name"] == "Challenge test accuracy" and 0 <= board["value"] < 0.5
    bonus = next(t for t in rewritten["tests"] if t["name"] == postgrade.CHALLENGE_TEST)
    assert bonus["score"] == 0 and bonus["max_score"] == 0
    assert gradescope_results.problems(rewritten) == []
