"""Phase 2, trusted: decide each question from what phase 1 left, and write Gradescope's results.

Two verdicts meet here. The *in-kernel* verdict is what Otter's checks said inside the student's
kernel (the checkpoints' trail, written after every check); the student's code could have patched
those checks, so it is read as untrusted data: validated, every score capped at the points the
autograder's own tests give the question. The *evidence* verdict comes from files the grader
measured itself (:mod:`evaluator`): the model saved where each question was answered, the
student's own saved file, the grader's own test set. A question's score is the lower of the two;
questions without evidence (q1, q2, q3, q10) keep the in-kernel verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import contract as c
from ..settings import Settings
from . import stopped
from .messages import clean_output

# A check's message as the student sees it is cut to this length (it is written by their kernel).
MAX_OUTPUT_CHARS = 6000
NOT_CHECKED = stopped.NOT_CHECKED


@dataclass
class Kernel:
    """The in-kernel verdict of one question: its score and Otter's message."""

    score: float
    output: str


@dataclass
class Phase1:
    """What phase 1 left, validated: in-kernel verdicts, why it stopped, and what it reported."""

    kernel: dict[str, Kernel] = field(default_factory=dict)
    public_box: str | None = None  # Otter's "Public Tests" summary
    refused: str | None = None  # why phase 1 would not grade the submission (e.g. the wrong notebook)
    stopped: str | None = None  # None, or a kind from stopped.py
    running_cell: dict | None = None
    reported_test_acc: float | None = None


def text_of(value, limit: int = MAX_OUTPUT_CHARS) -> str:
    text = value if isinstance(value, str) else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def number_of(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def read_kernel(found, questions: dict[str, float]) -> dict[str, Kernel]:
    """In-kernel verdicts from untrusted data: ``found`` maps question -> {"score", "output"}.
    Unknown questions are dropped, scores capped to 0..possible, anything malformed ignored."""
    out = {}
    if not isinstance(found, dict):
        return out
    for name, possible in questions.items():
        entry = found.get(name)
        score = number_of(entry.get("score")) if isinstance(entry, dict) else None
        if score is not None:
            out[name] = Kernel(min(max(score, 0.0), possible), clean_output(text_of(entry.get("output"))))
    return out


def read_public_box(found, questions: dict[str, float]) -> str | None:
    """Otter's "Public Tests" box from untrusted checkpoints: each checked question's public
    message, in the order they were first checked."""
    if not isinstance(found, dict):
        return None
    parts = [text_of(entry.get("public")) for name, entry in found.items()
             if name in questions and isinstance(entry, dict) and isinstance(entry.get("public"), str)]
    return clean_output(text_of("\n\n".join(parts))) if parts else None


# -- evidence verdicts: (points, message) --------------------------------------------------------------

def _model(facts: dict, question: str) -> dict | None:
    """The evaluator's facts about one model, each of the expected type (anything else is dropped,
    so no value can crash a verdict or pass for another)."""
    found = facts.get("models", {}).get(question) if isinstance(facts.get("models"), dict) else None
    if not isinstance(found, dict):
        return None
    if "error" in found:
        return {"error": text_of(str(found["error"]), 300)}
    clean: dict = {}
    layers = found.get("layers")
    if isinstance(layers, list):
        clean["layers"] = [list(x) for x in layers if isinstance(x, (list, tuple)) and len(x) == 3]
    params = found.get("params")
    if isinstance(params, list) and all(isinstance(p, int) and not isinstance(p, bool) for p in params):
        clean["params"] = params
    steps = found.get("iterations")
    clean["iterations"] = steps if isinstance(steps, int) and not isinstance(steps, bool) else None
    clean["compiled"] = found.get("compiled") is True
    for key in ("optimizer", "loss"):
        clean[key] = found.get(key) if isinstance(found.get(key), str) else None
    metrics = found.get("metrics")
    clean["metrics"] = [m for m in metrics if isinstance(m, str)] if isinstance(metrics, list) else []
    accuracy = number_of(found.get("accuracy"))
    if accuracy is not None and 0.0 <= accuracy <= 1.0:
        clean["accuracy"] = accuracy
    elif "accuracy" in found or "accuracy_error" in found:
        clean["accuracy_error"] = text_of(str(found.get("accuracy_error", "no accuracy")), 300)
    return clean


def _no_model(question: str, found: dict | None) -> str:
    if found is None:
        return (f"評分程式在這一題之後找不到名為 model 的 Keras 模型，所以沒辦法確認這一題。 / "
                f"Expected a Keras model named `model` after this question, found none, so the grader "
                f"could not confirm {question}.")
    return (f"評分程式讀不到這一題之後存下的 model（{found['error']}）。 / "
            f"Expected the grader to read your `model` after this question, but it could not "
            f"({found['error']}).")


def _snapshot(facts: dict, question: str) -> tuple[dict | None, tuple[float, str] | None]:
    """The facts of the model saved at ``question``, or the verdict when there are none to judge."""
    m = _model(facts, question)
    if m is None or "error" in m:
        return None, (0.0, _no_model(question, m))
    return m, None


def structure(facts: dict, possible: float, settings: Settings) -> tuple[float, str | None]:
    m, none = _snapshot(facts, c.Q_MODEL)
    if none:
        return none
    layers = [tuple(x) for x in m.get("layers", [])]
    dense = [p for (kind, *_), p in zip(layers, m.get("params", [])) if kind == "Dense"]
    if layers == [tuple(x) for x in c.EXPECTED_LAYERS] and dense == list(c.EXPECTED_PARAMS):
        return possible, None
    shown = ", ".join(f"{kind}" + (f"({units}, {act})" if units else "") for kind, units, act in layers)
    return 0.0, (f"評分程式讀到的模型是 {shown}，參數 {dense}；應該是 Flatten、Dense(128, relu)、"
                 f"Dense(10, softmax)，參數 [100480, 1290]。 / Expected Flatten, Dense(128, relu), "
                 f"Dense(10, softmax) with [100480, 1290] parameters; the grader read {shown} with {dense}.")


def compiled(facts: dict, possible: float, settings: Settings) -> tuple[float, str | None]:
    m, none = _snapshot(facts, c.Q_COMPILE)
    if none:
        return none
    if not m.get("compiled"):
        return 0.0, "評分程式讀到的模型沒有 compile。 / Expected a compiled model; the grader read one that was never compiled."
    ok = (m.get("optimizer") == "adam" and m.get("loss") == "sparsecategoricalcrossentropy"
          and any(x in ("accuracy", "acc", "sparse_categorical_accuracy", "sparsecategoricalaccuracy")
                  for x in m.get("metrics", [])))
    if ok:
        return possible, None
    found = f"optimizer={m.get('optimizer')}, loss={m.get('loss')}, metrics={m.get('metrics')}"
    return 0.0, (f"評分程式讀到的 compile 設定是 {found}。 / Expected adam, sparse_categorical_crossentropy "
                 f"and accuracy; the grader read {found}.")


def five_epochs(steps: int | None) -> bool:
    """Whether ``steps`` optimizer steps are exactly 5 epochs over the 60,000 training images, for
    some batch size (9375 with Keras's default of 32)."""
    if not isinstance(steps, int) or steps <= 0 or steps % c.EXPECTED_EPOCHS:
        return False
    per_epoch = steps // c.EXPECTED_EPOCHS
    batch = math.ceil(c.TRAINING_EXAMPLES / per_epoch)
    return math.ceil(c.TRAINING_EXAMPLES / batch) == per_epoch


def trained(facts: dict, possible: float, settings: Settings) -> tuple[float, str | None]:
    m, none = _snapshot(facts, c.Q_FIT)
    if none:
        return none
    steps = m.get("iterations")
    if five_epochs(steps):
        return possible, None
    return 0.0, (f"評分程式讀到模型的最佳化器總共更新了 {steps} 次，不是在 60,000 張訓練圖片上訓練 5 個 epoch "
                 f"的次數（批次大小 32 時是 9375 次）。請只呼叫一次 fit，epochs=5。 / Expected the optimizer to "
                 f"have taken 5 epochs' worth of steps over the 60,000 training images (9375 with the default "
                 f"batch size); the grader read {steps}. Call fit once, with epochs=5.")


def saved_file(facts: dict, possible: float, settings: Settings) -> tuple[float, str | None]:
    student = _model(facts, "student")
    if student is None:
        return 0.0, ("評分程式找不到 fashion_mnist_model.keras。 / Expected the file fashion_mnist_model.keras "
                     "next to your notebook, found none.")
    if "error" in student:
        return 0.0, (f"評分程式讀不到你存的模型檔（{student['error']}）。請用 model.save(...) 直接存 Keras 模型。 / "
                     f"Expected a model file the grader can load, found one it could not ({student['error']}). "
                     "Save the model itself with model.save(...).")
    _, none = _snapshot(facts, c.Q_SAVE_LOAD)
    if none:
        return none  # nothing to compare the file with
    same = (facts.get("same_weights") or {}).get(f"student|{c.Q_SAVE_LOAD}")
    if same is True:
        return possible, None
    return 0.0, ("你存的模型檔和訓練好的 model 權重不一樣：請在訓練之後才存檔。 / Expected your saved file to hold "
                 "the weights of your trained model, found different ones: save after training.")


def evaluated(facts: dict, possible: float, settings: Settings, reported: float | None) -> tuple[float, str | None]:
    """q8: the reported test_acc must be the model's accuracy on the test set, measured on the
    standard preprocessing or on the notebook's own scaling of the test images."""
    m = _model(facts, c.Q_EVALUATE)
    if m is None or "error" in m or "accuracy" not in m:
        # Nothing measured, nothing confirmed: a reported number alone earns no point.
        return 0.0, _no_model(c.Q_EVALUATE, m if m is None or "error" in m else
                              {"error": m.get("accuracy_error", "no accuracy")})
    measured = [m["accuracy"]]
    own = facts.get("own_images") if isinstance(facts.get("own_images"), dict) else {}
    own_accuracy = number_of(own.get("accuracy"))
    if own_accuracy is not None:
        measured.append(own_accuracy)
    if reported is not None and any(abs(reported - x) <= c.AGREEMENT_TOLERANCE for x in measured):
        return possible, None
    shown = "無 / none" if reported is None else f"{reported:.4f}"
    return possible / 2, (
        f"你回報的 test_acc 是 {shown}，但評分程式量到這個模型在測試資料上的準確率是 {measured[0]:.4f}。"
        "請用 model.evaluate(test_images, test_labels) 算 test_acc，不要改動測試資料。 / "
        f"Expected test_acc to match the {measured[0]:.4f} the grader measured for your model on the test "
        f"set, found {shown}. Compute it with model.evaluate(test_images, test_labels) on the test data.")


def accuracy(facts: dict, possible: float, settings: Settings) -> tuple[float, str]:
    threshold = settings.min_test_accuracy
    m, none = _snapshot(facts, c.Q_ACCURACY)
    if none:
        return none
    if "accuracy" not in m:
        error = m.get("accuracy_error", "")
        return 0.0, (f"評分程式沒辦法用你的模型預測測試資料（{error}）。 / Expected a model that predicts the "
                     f"10 classes of the test images, found one the grader could not evaluate ({error}).")
    value = m["accuracy"]
    if value >= threshold:
        return possible, (f"評分程式在自己的測試資料上量到你的模型準確率是 {value:.4f}（門檻 {threshold:.2f}）。 / "
                          f"The grader measured your model at {value:.4f} test accuracy on its own copy of the "
                          f"test set (needed {threshold:.2f}).")
    return 0.0, (f"評分程式在自己的測試資料上量到你的模型準確率是 {value:.4f}，需要至少 {threshold:.2f}。請檢查正規化、"
                 f"模型結構和訓練的 epoch 數。 / Expected a test accuracy of at least {threshold:.2f}, found "
                 f"{value:.4f} on the grader's own copy of the test set. Check the normalisation, the layers and "
                 "the number of epochs.")


def evidence_verdict(question: str, facts: dict, possible: float, settings: Settings, phase1: Phase1):
    if question == c.Q_EVALUATE:
        return evaluated(facts, possible, settings, phase1.reported_test_acc)
    return {
        c.Q_MODEL: structure, c.Q_COMPILE: compiled, c.Q_FIT: trained,
        c.Q_SAVE_LOAD: saved_file, c.Q_ACCURACY: accuracy,
    }[question](facts, possible, settings)


# -- results.json --------------------------------------------------------------------------------------

def decide(questions: dict[str, float], phase1: Phase1, facts: dict, settings: Settings,
           *, sandbox: str) -> dict:
    """The final results.json (Gradescope's format) for one submission."""
    results: dict = {"tests": [], "stdout_visibility": "after_published",
                     "extra_data": {c.SANDBOX_KEY: sandbox}}
    if phase1.refused is not None:
        results["tests"].append({"name": c.OTTER_ERROR_TEST, "output": phase1.refused})
        results["score"] = 0
        return results
    if phase1.stopped:
        text = stopped.message(phase1.stopped, phase1.running_cell, settings.timeout_seconds,
                               settings.memory_limit_mb)
        results["output"] = text
        results["extra_data"][c.STOPPED_KEY] = phase1.stopped
        results["tests"].append({"name": stopped.TITLES[phase1.stopped], "status": "failed",
                                 "visibility": "visible", "output": text})
    if phase1.public_box is not None:
        results["tests"].append({"name": "Public Tests", "visibility": "visible", "output": phase1.public_box,
                                 "status": "passed" if "All test cases passed" in phase1.public_box else "failed"})
    total = 0.0
    for name, possible in questions.items():
        kernel = phase1.kernel.get(name)
        if kernel is None:
            score, output = 0.0, (NOT_CHECKED if phase1.stopped else
                                  f"{name}: 這一題沒有被檢查。 / {name} was not checked.")
        else:
            score, output = kernel.score, kernel.output
            if name in c.EVIDENCE_QUESTIONS:
                points, message = evidence_verdict(name, facts, possible, settings, phase1)
                if name == c.Q_ACCURACY:
                    output = f"{name}: {message}"  # the measurement is the whole verdict
                elif message and points < score:
                    output = f"{name}: {message}\n\n筆記本裡的檢查 / The checks inside your notebook:\n{output}"
                score = min(score, points)
        total += score
        results["tests"].append({"name": name, "score": round(score, 5), "max_score": possible,
                                 "visibility": "after_published", "output": output})
    measured = {"accuracy": (_model(facts, c.Q_ACCURACY) or {}).get("accuracy"),
                "threshold": settings.min_test_accuracy, "challenge_accuracy": None,
                "challenge_threshold": settings.challenge_bonus_threshold, "challenge_bonus": 0.0}
    challenge = _model(facts, "challenge")
    if challenge is not None and "accuracy" in challenge:
        value = challenge["accuracy"]
        measured["challenge_accuracy"] = value
        results["leaderboard"] = [{"name": c.LEADERBOARD_NAME, "value": round(value, 4), "order": "desc"}]
        if settings.challenge_bonus_points > 0:
            earned = settings.challenge_bonus_points if value >= settings.challenge_bonus_threshold else 0.0
            measured["challenge_bonus"] = earned
            total += earned
            results["tests"].append({
                "name": c.CHALLENGE_TEST, "score": earned, "max_score": 0, "visibility": "visible",
                "output": (f"挑戰模型的測試準確率是 {value:.4f}（加分門檻 {settings.challenge_bonus_threshold:.2f}）。 / "
                           f"Your challenge model scored {value:.4f} test accuracy on the grader's test set "
                           f"(bonus from {settings.challenge_bonus_threshold:.2f}): {earned:g} bonus point(s)."),
            })
    results["extra_data"][c.MEASURED_KEY] = measured
    results["score"] = round(total, 5)
    return results
