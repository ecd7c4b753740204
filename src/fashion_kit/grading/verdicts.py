"""Phase 2, trusted, the only judge: decide each question and write Gradescope's results.

Every question is decided here by its check (:mod:`fashion_kit.checks`, reached through the
question registry), the same code the notebook's own ``grader.check`` runs, on values phase 1 handed over:
what the grader's cell collected right after the question was answered (read as untrusted JSON;
each check takes any value and counts what it does not expect for nothing) and, in their place
wherever the grader measured them itself, the facts of the model files (:mod:`evaluator`): the
snapshot saved at the question, the student's own file, the grader's own test and training sets,
and the challenge's model, which the grader trained itself from the notebook's recipe.
No score the kernel computed is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import contract as c
from ..questions import (BY_NAME, Q_ACCURACY, Q_COMPILE, Q_EVALUATE, Q_FIT, Q_MODEL, Q_SAVE_LOAD,
                         other_weights_problem)
from ..settings import Settings
from ..statuses import CheckStatus
from . import stopped
from .messages import clean_output

# A check's message as the student sees it is cut to this length.
MAX_OUTPUT_CHARS = 6000
NOT_CHECKED = stopped.NOT_CHECKED
# The student's model file, as the messages name it (.keras, or the older .h5).
STUDENT_FILE = "fashion_mnist_model"


@dataclass
class Phase1:
    """What phase 1 left, validated: each question's collected values and why it stopped."""

    values: dict = field(default_factory=dict)  # question -> what the grader's cell collected (JSON)
    refused: str | None = None  # why phase 1 would not grade the submission (e.g. the wrong notebook)
    stopped: str | None = None  # None, or a kind from stopped.py
    running_cell: dict | None = None


def text_of(value, limit: int = MAX_OUTPUT_CHARS) -> str:
    text = value if isinstance(value, str) else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def number_of(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)




# -- the grader's facts of the model files -----------------------------------------------------------

def model_facts(models: dict, key: str) -> dict:
    """The evaluator's facts about one model file, each of the expected type (anything else is
    dropped, so no value can crash a check or pass for another), or {"error": why there are none}."""
    found = models.get(key) if isinstance(models, dict) else None
    if not isinstance(found, dict):
        where = "the grader-trained challenge model" if key == "challenge" else (
            c.MODEL_FILES[0] if key == "student" else f"the snapshot after {key}")
        return {"error": f"no model ({where})"}
    if "error" in found:
        return {"error": text_of(str(found["error"]), 300)}
    clean: dict = {}
    layers = found.get("layers")
    if isinstance(layers, list):
        clean["layers"] = [list(x) for x in layers if isinstance(x, list) and len(x) == 3]
    params = found.get("params")
    if isinstance(params, list) and all(isinstance(p, int) and not isinstance(p, bool) for p in params):
        clean["params"] = params
    steps = found.get("iterations")
    clean["iterations"] = steps if isinstance(steps, int) and not isinstance(steps, bool) else None
    clean["compiled"] = found.get("compiled") is True
    shape = found.get("input")
    if isinstance(shape, list) and all(x is None or (isinstance(x, int) and not isinstance(x, bool)) for x in shape):
        clean["input"] = shape
    for key_ in ("optimizer", "loss", "loss_given", "weights"):
        clean[key_] = found.get(key_) if isinstance(found.get(key_), str) else None
    metrics = found.get("metrics")
    clean["metrics"] = [m for m in metrics if isinstance(m, str)] if isinstance(metrics, list) else []
    for key_ in ("accuracy", "train_accuracy"):
        value = number_of(found.get(key_))
        if value is not None and 0.0 <= value <= 1.0:
            clean[key_] = value
    own = found.get("own_images")
    if isinstance(own, dict) and number_of(own.get("accuracy")) is not None:
        clean["own_accuracy"] = number_of(own["accuracy"])
    training = found.get("training")
    if isinstance(training, dict):  # how far the grader's own training of the challenge went
        clean["training"] = {k: number_of(training.get(k)) for k in ("epochs", "steps", "cpu_seconds")}
        clean["training"]["time_is_up"] = training.get("time_is_up") is True
    return clean


def _same_weights(a: dict, b: dict) -> bool:
    return "error" not in a and "error" not in b and a.get("weights") is not None and a.get("weights") == b.get("weights")


def saved_file(models: dict) -> bool | str:
    """True when the student's file loads and holds the weights of the model saved at question 7;
    else why not (the check's message)."""
    student = model_facts(models, "student")
    if "error" in student:
        return (f"評分程式讀不到你存的模型檔（{student['error']}）。請用 model.save(...) 直接存 Keras 模型。 / "
                f"Expected a model file the grader can load, found one it could not ({student['error']}). "
                "Save the model itself with model.save(...).")
    if _same_weights(student, model_facts(models, Q_SAVE_LOAD)):
        return True
    return other_weights_problem(STUDENT_FILE)


def same_model(models: dict) -> bool | str:
    """True when the model evaluated at question 8 is the one built at question 4 (same layers and
    parameters), trained at question 6 and saved at question 7 (same weights); else why not."""
    evaluated = model_facts(models, Q_EVALUATE)
    built = model_facts(models, Q_MODEL)
    same_layers = "error" not in evaluated and "error" not in built and (
        evaluated.get("layers"), evaluated.get("params")) == (built.get("layers"), built.get("params"))
    trained = [q for q in (Q_FIT, Q_SAVE_LOAD) if not _same_weights(evaluated, model_facts(models, q))]
    if same_layers and not trained:
        return True
    return ("評分的模型應該是第 4 題建立、第 6 題訓練、第 7 題存檔、第 8 題評估的同一個 model，但它們不一樣。 / "
            "Expected the model evaluated at question 8 to be the one built at question 4, trained at question "
            "6 and saved at question 7; found "
            + ("other layers than question 4's" if not same_layers else
               "other weights than at " + " and ".join(f"question {q[1:].split('_')[0]}" for q in trained)) + ".")


def fitted_weights(fits) -> str | None:
    """The digest of the weights the last recorded fit of the model left (phase 1's record, taken
    when the fit returned), or None."""
    last = fits[-1] if isinstance(fits, list) and fits else None
    found = last.get("weights") if isinstance(last, dict) else None
    return found if isinstance(found, str) else None


def trained_by_fit(models: dict, fits) -> bool | str:
    """True when the model evaluated at question 8 holds the weights its last fit left; else why not.
    Saving and loading back keeps them; set_weights, load_weights or assign after training do not."""
    if _same_weights(model_facts(models, Q_EVALUATE), {"weights": fitted_weights(fits)}):
        return True
    return ("評分的模型權重不是你的 model.fit(...) 訓練出來的：訓練之後，權重被換掉了（例如 set_weights、"
            "load_weights 或 assign）。存檔再讀回來沒有問題。 / Expected the evaluated model to hold the weights "
            "your model.fit(...) left, found other ones: they were replaced after training (set_weights, "
            "load_weights or assign, for example). Saving and loading back is fine.")


def phase2_values(name: str, kernel, models: dict, settings: Settings, evidence: dict | None = None):
    """The values question ``name`` is decided on: what the notebook's kernel collected, with the
    grader's own measurements in the place of the kernel's wherever it has them; ``evidence`` is
    every question's collected values (question 9 also needs question 6's record of the fits)."""
    values = dict(kernel) if isinstance(kernel, dict) else {}
    if name in (Q_MODEL, Q_COMPILE, Q_FIT):
        values["model"] = model_facts(models, name)
    elif name == Q_SAVE_LOAD:
        found = model_facts(models, "student")
        # The grader's own copy says whether the file was handed in, not the kernel.
        values["files"] = [] if found.get("error", "").startswith("no model") else [STUDENT_FILE]
        values["saved"] = saved_file(models)
    elif name == Q_EVALUATE:
        values["model"] = model_facts(models, Q_EVALUATE)
        values["measured"] = [values["model"][k] for k in ("accuracy", "own_accuracy") if k in values["model"]]
    elif name == Q_ACCURACY:
        values["model"] = model_facts(models, Q_EVALUATE)
        values["same_model"] = same_model(models)
        if values["same_model"] is True:
            fit = (evidence or {}).get(Q_FIT)
            values["same_model"] = trained_by_fit(models, fit.get("fits") if isinstance(fit, dict) else None)
        values["threshold"] = settings.min_test_accuracy
    return values


def challenge_verdict(models: dict, settings: Settings) -> tuple[float | None, float, str] | None:
    """(leaderboard value or None, bonus earned, message) of the challenge, or None when the notebook
    did not take it. The value is the grader's measured test accuracy of the model the grader
    trained from the notebook's recipe, on the training images only: no file of the student's and
    no weight from the notebook counts, so nothing but the recipe decides it."""
    found = models.get("challenge") if isinstance(models, dict) else None
    if not isinstance(found, dict):
        return None
    if isinstance(found.get("refused"), str):
        return None, 0.0, text_of(found["refused"], 1000)
    facts = model_facts(models, "challenge")
    if "accuracy" not in facts:
        why = facts.get("error") or "no accuracy"
        return None, 0.0, (f"評分程式沒辦法訓練或評估你的挑戰模型（{why}）。 / Expected the grader to train and "
                           f"measure your challenge model, found it could not ({why}).")
    value, threshold = facts["accuracy"], settings.challenge_bonus_threshold
    earned = settings.challenge_bonus_points if value >= threshold else 0.0
    training = facts.get("training") or {}
    epochs, seconds = training.get("epochs") or 0, training.get("cpu_seconds") or 0
    stop_zh = "，時間用完時停止" if training.get("time_is_up") else ""
    stop_en = ", stopped when the time was used" if training.get("time_is_up") else ""
    return value, earned, (
        f"評分程式用你的 build_challenge_model() 和訓練資料自己訓練了你的模型（{epochs:g} 個完整的 epoch，"
        f"CPU 時間 {seconds:.0f} 秒，上限 {settings.challenge_cpu_seconds:g} 秒{stop_zh}），"
        f"測試準確率是 {value:.4f}（加分門檻 {threshold:.2f}）。 / The grader trained your "
        f"build_challenge_model() itself on the training images ({epochs:g} full epoch(s), {seconds:.0f} of "
        f"{settings.challenge_cpu_seconds:g} CPU seconds{stop_en}); it scored {value:.4f} test accuracy on the "
        f"grader's test set (bonus from {threshold:.2f}): {earned:g} bonus point(s).")


# -- results.json --------------------------------------------------------------------------------------

def public_check(question, kernel_values, not_checked: str) -> tuple[str, str]:
    """(status, output) of the notebook's own check of a question, as the student saw it in Jupyter:
    the public part of the same check, on the values the notebook's kernel collected. It decides no
    points, so what the kernel collected is good enough here."""
    if question is None or kernel_values is None:
        return CheckStatus.FAILED, not_checked
    fraction, messages = question.decide(kernel_values, public=True)
    if fraction >= 1 and not messages:
        return CheckStatus.PASSED, f"{question.name}: 通過筆記本的檢查。 / {question.name} passes the notebook's check."
    return CheckStatus.FAILED, text_of(f"{question.name}: {clean_output(chr(10).join(messages))}")


VISIBILITY_WORDS = {  # when the scores are shown, in both languages (Gradescope's visibility values)
    "visible": ("分數已經在下面", "the scores are below"),
    "after_published": ("老師公布成績後會看到每一題的分數", "each question's score appears when your instructor publishes grades"),
    "after_due_date": ("截止時間過後會看到每一題的分數", "each question's score appears after the due date"),
    "hidden": ("分數由老師另外公布", "your instructor shares the scores separately"),
}


def summary(public: dict[str, tuple[str, str]], settings: Settings) -> str:
    """The box at the top of a Gradescope result (Markdown): how many questions pass the notebook's
    own checks, and when the scores follow."""
    passed = sum(1 for status, _ in public.values() if status == CheckStatus.PASSED)
    zh, en = VISIBILITY_WORDS[settings.score_visibility]
    if settings.check_visibility == "visible":
        count_zh = f"**{len(public)} 題中有 {passed} 題通過筆記本的檢查。**"
        count_en = f"**{passed} of {len(public)} questions pass your notebook's checks.**"
        more_zh, more_en = "評分程式還會檢查更多（例如用自己的測試資料量準確率）", (
            "The grader checks more than the notebook does (for example the accuracy, on its own test set)")
    else:
        count_zh, count_en, more_zh, more_en = "**已收到你的筆記本，評分完成。**", "**Your notebook was graded.**", "", ""
    lines_zh = [count_zh, f"{more_zh}；{zh}。" if more_zh else f"{zh}。"]
    lines_en = [count_en, f"{more_en}; {en}." if more_en else f"{en[0].upper()}{en[1:]}."]
    return "\n\n".join([" ".join(lines_zh), " ".join(lines_en)])


def decide(questions: dict[str, float], phase1: Phase1, models: dict, settings: Settings,
           *, sandbox: str) -> dict:
    """The final results.json (Gradescope's format) for one submission."""
    results: dict = {"tests": [], "stdout_visibility": settings.log_visibility, "output_format": "md",
                     "test_output_format": "simple_format", "extra_data": {c.SANDBOX_KEY: sandbox}}
    if phase1.refused is not None:
        results["tests"].append({"name": c.OTTER_ERROR_TEST, "output": phase1.refused})
        results["score"] = 0
        return results
    if phase1.stopped:
        text = stopped.message(phase1.stopped, phase1.running_cell, settings.timeout_seconds,
                               settings.memory_limit_mb)
        results["extra_data"][c.STOPPED_KEY] = phase1.stopped
        results["tests"].append({"name": stopped.TITLES[phase1.stopped], "status": CheckStatus.FAILED,
                                 "visibility": "visible", "output": text})
    total, public = 0.0, {}
    for name, possible in questions.items():
        question = BY_NAME.get(name)
        if name not in phase1.values or question is None:
            score, output = 0.0, (NOT_CHECKED if phase1.stopped else
                                  f"{name}: 這一題沒有被檢查。 / {name} was not checked.")
        else:
            fraction, messages = question.decide(phase2_values(name, phase1.values[name], models, settings, phase1.values))
            score = round(possible * max(0.0, min(1.0, float(fraction))), 5)
            shown = clean_output("\n".join(messages)) if messages else "All test cases passed!"
            output = text_of(f"{name}: {shown}" if messages else f"{name} results: {shown}")
        public[name] = public_check(question, phase1.values.get(name), output)
        total += score
        results["tests"].append({"name": c.PUBLIC_CHECK_TEST.format(question=name), "status": public[name][0],
                                 "visibility": settings.check_visibility, "output": public[name][1]})
        results["tests"].append({"name": name, "score": score, "max_score": possible,
                                 "status": CheckStatus.PASSED if score >= possible else CheckStatus.FAILED,
                                 "visibility": settings.score_visibility, "output": output})
    # A stopped run's notice first: it says why the rest looks as it does.
    results["output"] = "\n\n".join(filter(None, [
        stopped.message(phase1.stopped, phase1.running_cell, settings.timeout_seconds, settings.memory_limit_mb)
        if phase1.stopped else "", summary(public, settings)]))
    evaluated = model_facts(models, Q_EVALUATE)
    measured = {"accuracy": evaluated.get("accuracy"), "train_accuracy": evaluated.get("train_accuracy"),
                "threshold": settings.min_test_accuracy, "challenge_accuracy": None,
                "challenge_threshold": settings.challenge_bonus_threshold, "challenge_bonus": 0.0}
    challenge = challenge_verdict(models, settings)
    if challenge is not None:
        value, earned, text = challenge
        measured["challenge_accuracy"], measured["challenge_bonus"] = value, earned
        total += earned
        if value is not None:
            results["leaderboard"] = [{"name": c.LEADERBOARD_NAME, "value": round(value, 4), "order": "desc"}]
        results["tests"].append({"name": c.CHALLENGE_TEST, "score": earned, "max_score": 0,
                                 "visibility": "visible", "output": text})
    results["extra_data"][c.MEASURED_KEY] = measured
    results["score"] = round(total, 5)
    return results
