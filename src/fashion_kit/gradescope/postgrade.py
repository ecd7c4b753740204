"""Grade test accuracy from the student's saved model file, outside the student's kernel.

Everything Otter checks runs inside the student's own Python kernel, where the student can replace
``model.evaluate``, ``numpy.mean`` or the grader itself. So after Otter has written
results/results.json, this module loads the saved model (``fashion_mnist_model.keras`` or ``.h5``)
in a fresh Python process with Keras's ``safe_mode``, measures its accuracy on the grader's own copy
of the test set (the Fashion-MNIST files bundled in this zip), and rewrites:

* ``q9_accuracy``: full points when that accuracy reaches ``min_test_accuracy`` (otter_config.json's
  ``fashion_kit`` section, the one place the threshold lives), otherwise none;
* ``q8_evaluate``: the half that checks ``test_acc`` really is the test accuracy is lost when the
  ``test_acc`` the notebook reported disagrees with the measured accuracy. The kernel-side hidden test
  of q8 stays as a cross-check against the in-memory model and records the reported value for us.

When the notebook also saved ``challenge_model.keras`` (the optional challenge), its accuracy goes
on the Gradescope leaderboard, and reaching ``challenge_bonus_threshold`` earns the extra-credit test
"Challenge bonus" worth ``challenge_bonus_points`` (both in the same ``fashion_kit`` section).

``evaluate_saved_model(path, data_dir)`` is the reusable measurement. Run as a script,
``postgrade.py evaluate DATA_DIR MODEL...`` prints one JSON line per model, ``{"accuracy": ...}`` or
``{"error": ...}``; that is how :func:`measure` calls it, once for all models.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parent
MODEL_FILES = ("fashion_mnist_model.keras", "fashion_mnist_model.h5")
CHALLENGE_FILE = "challenge_model.keras"
CHALLENGE_TEST, LEADERBOARD_NAME = "Challenge bonus", "Challenge test accuracy"
# Written by q8's hidden kernel-side test: the test_acc the notebook reported.
REPORTED_FILE = ".fashion_kit_reported.json"
ACCURACY_QUESTION, EVALUATE_QUESTION = "q9_accuracy", "q8_evaluate"
# test_acc from model.evaluate and argmax accuracy of the same weights agree to float rounding; a
# model evaluated on other data (the training set, an easy subset) misses by a percent or more.
AGREEMENT_TOLERANCE = 0.005
EVALUATION_TIMEOUT = 300
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"


def read_idx(path: Path):
    """An IDX file (the MNIST format) as a NumPy array: magic 0x0000 08 <ndim>, big-endian sizes."""
    import numpy as np

    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path.name} is not an unsigned-byte IDX file (header {raw[:4].hex()}).")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def test_set(data_dir: Path):
    data_dir = Path(data_dir)
    return read_idx(data_dir / TEST_IMAGES), read_idx(data_dir / TEST_LABELS)


def evaluate_saved_model(path: Path | str, data_dir: Path | str) -> float:
    """Test accuracy of the model saved at ``path`` on the Fashion-MNIST test set in ``data_dir``.

    Pixels are scaled to 0..1 as the assignment asks. A model built for flattened input (784 values)
    gets the images flattened: its structure is graded elsewhere, here only its predictions count.
    """
    import numpy as np
    import keras

    model = keras.models.load_model(str(path), safe_mode=True, compile=False)
    images, labels = test_set(Path(data_dir))
    x = images.astype("float32") / 255.0
    wanted = tuple(model.inputs[0].shape[1:])
    if wanted != x.shape[1:] and None not in wanted and int(np.prod(wanted)) == 28 * 28:
        x = x.reshape((-1,) + wanted)
    probabilities = np.asarray(model.predict(x, batch_size=1000, verbose=0))
    if probabilities.shape != (len(labels), 10):
        raise ValueError(f"the model outputs shape {probabilities.shape}; expected (10000, 10), one score per class")
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


@dataclass
class Measurement:
    """The out-of-kernel accuracy of a saved model, or why there is none."""

    model_file: str | None
    accuracy: float | None = None
    error: str = ""


def find_model(submission_dir: Path) -> Path | None:
    return next((submission_dir / n for n in MODEL_FILES if (submission_dir / n).is_file()), None)


def _json_line(line: str) -> dict | None:
    try:
        answer = json.loads(line)
    except ValueError:
        return None  # TensorFlow's own chatter
    return answer if isinstance(answer, dict) else None


def measure(paths: list[Path | None], data_dir: Path, timeout: float = EVALUATION_TIMEOUT) -> list[Measurement]:
    """Evaluate each saved model (None: not found) in one separate, isolated Python process."""
    found = [p for p in paths if p is not None]
    answers: dict[Path, dict] = {}
    if found:
        with tempfile.TemporaryDirectory(prefix="fashion-kit-postgrade-") as home:
            # -I: neither the submission folder nor PYTHON* variables can put modules on the path; a
            # fresh KERAS_HOME ignores any keras.json the notebook may have written.
            env = {**os.environ, "KERAS_HOME": home, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
            command = [sys.executable, "-I", str(Path(__file__).resolve()), "evaluate", str(data_dir)]
            try:
                proc = subprocess.run(
                    command + [str(p) for p in found], cwd=home, env=env, capture_output=True, text=True,
                    timeout=timeout, stdin=subprocess.DEVNULL,
                )
                lines = [a for a in map(_json_line, proc.stdout.splitlines()) if a is not None]
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                failure = {"error": f"the evaluation process failed ({tail[0]})"}
            except subprocess.TimeoutExpired:
                lines, failure = [], {"error": f"evaluating it took longer than {timeout:g} s"}
        answers = {p: (lines[i] if i < len(lines) else failure) for i, p in enumerate(found)}
    out = []
    for p in paths:
        if p is None:
            out.append(Measurement(None, error="no saved model file"))
        elif "accuracy" in answers[p]:
            out.append(Measurement(p.name, float(answers[p]["accuracy"])))
        else:
            out.append(Measurement(p.name, error=str(answers[p].get("error", "unknown error"))))
    return out


def reported_test_acc(submission_dir: Path) -> float | None:
    try:
        return float(json.loads((submission_dir / REPORTED_FILE).read_text())["test_acc"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def accuracy_feedback(m: Measurement, threshold: float) -> tuple[bool, str]:
    if m.accuracy is None:
        if m.model_file is None:
            return False, (
                "評分程式找不到 fashion_mnist_model.keras，所以無法評估你的模型。請完成第 7 題："
                "訓練後用 model.save(\"fashion_mnist_model.keras\") 存檔，再重新執行整份筆記本。 / "
                "Expected the saved model fashion_mnist_model.keras next to your notebook, found none, "
                "so the grader could not measure your model. Finish question 7: after training, save it "
                "with model.save(\"fashion_mnist_model.keras\") and run the whole notebook again."
            )
        return False, (
            f"評分程式讀不到你存的 {m.model_file}（{m.error}）。請用 model.save(...) 直接存 Keras 模型，"
            "不要在模型裡放 Lambda 層或自訂的程式。 / "
            f"Expected a Keras model the grader can load from {m.model_file}, found one it could not "
            f"use ({m.error}). Save the model itself with model.save(...), without Lambda layers or "
            "custom code."
        )
    if m.accuracy >= threshold:
        return True, (
            f"評分程式在自己的測試資料上量到你的模型準確率是 {m.accuracy:.4f}（門檻 {threshold:.2f}）。 / "
            f"The grader measured your saved model at {m.accuracy:.4f} test accuracy on its own copy of "
            f"the test set (needed {threshold:.2f})."
        )
    return False, (
        f"評分程式在自己的測試資料上量到你存的模型（{m.model_file}）準確率是 {m.accuracy:.4f}，"
        f"需要至少 {threshold:.2f}。請檢查正規化、模型結構和訓練的 epoch 數，並確定是在訓練之後才存檔。 / "
        f"Expected a test accuracy of at least {threshold:.2f}, found {m.accuracy:.4f} for your saved "
        f"model {m.model_file} on the grader's own copy of the test set. Check the normalisation, the "
        "layers and the number of epochs, and save the model after training."
    )


def agreement_feedback(m: Measurement, reported: float | None) -> str | None:
    """A message when the reported test_acc disagrees with the measured accuracy, else None."""
    if m.accuracy is None or reported is None or abs(reported - m.accuracy) <= AGREEMENT_TOLERANCE:
        return None
    return (
        f"你回報的 test_acc 是 {reported:.4f}，但評分程式量到你存的模型在測試資料上是 {m.accuracy:.4f}。"
        "請用 model.evaluate(test_images, test_labels) 算 test_acc，不要改動測試資料。 / "
        f"Expected test_acc to match the {m.accuracy:.4f} the grader measured for your saved model on "
        f"the test set, found {reported:.4f}. Compute it with model.evaluate(test_images, test_labels) "
        "on the unchanged test data."
    )


def _set_score(results: dict, test: dict, score: float, output: str) -> None:
    old = float(test.get("score", 0))
    test["score"] = round(score, 5)
    test["output"] = output
    if "score" in results:
        results["score"] = round(float(results["score"]) - old + score, 5)


def rewrite(results: dict, m: Measurement, threshold: float, reported: float | None) -> dict:
    """Replace the kernel's verdicts on q9 (and q8's agreement half) with the out-of-kernel ones."""
    tests = {t.get("name"): t for t in results.get("tests", [])}
    accuracy = tests.get(ACCURACY_QUESTION)
    if accuracy is not None and "max_score" in accuracy:
        passed, message = accuracy_feedback(m, threshold)
        _set_score(results, accuracy, float(accuracy["max_score"]) if passed else 0.0,
                   f"{ACCURACY_QUESTION}: {message}")
    evaluate, disagreement = tests.get(EVALUATE_QUESTION), agreement_feedback(m, reported)
    if evaluate is not None and "max_score" in evaluate and disagreement:
        capped = min(float(evaluate.get("score", 0)), float(evaluate["max_score"]) / 2)
        inside = evaluate.get("output", "").strip()
        _set_score(results, evaluate, capped,
                   f"{EVALUATE_QUESTION}: {disagreement}\n\n筆記本裡的檢查 / The checks inside your notebook:\n{inside}")
    return results


def add_challenge(results: dict, m: Measurement, settings: dict) -> dict:
    """Leaderboard column and, when configured, the extra-credit test for the optional challenge."""
    if m.accuracy is None:
        return results
    results["leaderboard"] = [{"name": LEADERBOARD_NAME, "value": round(m.accuracy, 4), "order": "desc"}]
    points = float(settings.get("challenge_bonus_points", 0))
    if points <= 0:
        return results
    needed = float(settings.get("challenge_bonus_threshold", 0.90))
    earned = points if m.accuracy >= needed else 0.0
    results.setdefault("tests", []).append({
        "name": CHALLENGE_TEST,
        "score": earned,
        "max_score": 0,  # extra credit: points above the assignment's total
        "visibility": "visible",
        "output": (
            f"挑戰模型的測試準確率是 {m.accuracy:.4f}（加分門檻 {needed:.2f}）。 / "
            f"Your challenge model scored {m.accuracy:.4f} test accuracy on the grader's test set "
            f"(bonus from {needed:.2f}): {earned:g} bonus point(s)."
        ),
    })
    if "score" in results:
        results["score"] = round(float(results["score"]) + earned, 5)
    return results


def main(autograder_dir: str | Path) -> None:
    """Rewrite results/results.json after Otter; leaves it alone if Otter wrote none."""
    autograder_dir = Path(autograder_dir)
    results_path = autograder_dir / "results" / "results.json"
    if not results_path.is_file():
        return
    settings = json.loads((SOURCE / "otter_config.json").read_text(encoding="utf-8"))["fashion_kit"]
    submission = autograder_dir / "submission"
    challenge = submission / CHALLENGE_FILE
    m, c = measure(
        [find_model(submission), challenge if challenge.is_file() else None], SOURCE / "data" / "fashion-mnist"
    )
    for what in (m, c):
        if what.model_file:
            print(f"postgrade: {what.model_file}: test accuracy {what.accuracy} {what.error}".rstrip())
    results = rewrite(
        json.loads(results_path.read_text(encoding="utf-8")), m,
        float(settings["min_test_accuracy"]), reported_test_acc(submission),
    )
    results = add_challenge(results, c, settings)
    results_path.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")


def _evaluate_command(data_dir: str, model_paths: list[str]) -> int:
    for path in model_paths:
        try:
            answer = {"accuracy": evaluate_saved_model(path, data_dir)}
        except Exception as e:  # whatever a broken or hostile file raises, report it as data
            answer = {"error": f"{type(e).__name__}: {e}"[:300]}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "evaluate":
        sys.exit(_evaluate_command(sys.argv[2], sys.argv[3:]))
    sys.exit(f"usage: {Path(sys.argv[0]).name} evaluate DATA_DIR MODEL_FILE...")
