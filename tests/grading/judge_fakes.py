"""What phase 1 hands over for an honest notebook, and the evaluator's facts of its models: the
judge's tests change a piece of it at a time."""

from __future__ import annotations



from fashion_kit import checks, questions
from fashion_kit.grading import verdicts
from fashion_kit.settings import Settings

from ..conftest import QUESTIONS


SETTINGS = Settings()
LESSON = [["Flatten", None, None], ["Dense", 128, "relu"], ["Dense", 10, "softmax"]]
TRAINED = "d" * 64  # the digest of the trained weights


def lesson_model(**changes) -> dict:
    facts = {"layers": LESSON, "input": [28, 28], "params": [0, 100480, 1290], "iterations": 9375, "compiled": True,
             "optimizer": "adam", "loss": "sparsecategoricalcrossentropy", "metrics": ["accuracy"],
             "weights": TRAINED}
    return {**facts, **changes}


def models(**changes) -> dict:
    """The evaluator's facts of an honest notebook's model files; ``changes`` replace some (None: no file)."""
    found = {questions.Q_MODEL: lesson_model(iterations=0, weights="u" * 64),
             questions.Q_COMPILE: lesson_model(iterations=0, weights="u" * 64),
             questions.Q_FIT: lesson_model(), questions.Q_SAVE_LOAD: lesson_model(), "student": lesson_model(),
             questions.Q_EVALUATE: lesson_model(accuracy=0.8677, train_accuracy=0.8961)}
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
           "epochs_done": 5, "steps": 1875, "weights": TRAINED}
    return {
        "q1_load_data": {n: array(n, False) for n in checks.SHAPES},
        "q2_class_names": {"class_names": list(checks.CLASS_NAMES)},
        "q3_normalize": {n: array(n, True) for n in ("training_images", "test_images")},
        "q4_model": {"model": lesson_model(iterations=0)}, "q5_compile": {"model": lesson_model(iterations=0)},
        "q6_fit": {"model": lesson_model(accuracy=0.8677, train_accuracy=0.8961), "history": {"type": "History", "epochs": 5, "params": {"steps": 1875}}, "fits": [fit]},
        "q7_save_load": {"files": ["fashion_mnist_model.keras"], "loaded": {
            "type": "Sequential", "is_model": True, "is_the_model_itself": False, "same_weights": True}, "saved": True},
        "q8_evaluate": {"test_loss": {"kind": "real", "value": 0.36}, "test_acc": {"kind": "real", "value": 0.8677},
                        "measured": [0.8677]},
        "q9_accuracy": {"model": lesson_model(accuracy=0.8677, train_accuracy=0.8961), "threshold": checks.MIN_TEST_ACCURACY},
        "q10_param_count": {n: {"kind": "integer", "value": v} for n, v in
                            (("hidden_params", 100480), ("output_params", 1290), ("total_params", 101770))},
    }


# The questions these fakes know an honest notebook's values of, with the master's points: the lesson's.
JUDGED = {q: float(p) for q, p in QUESTIONS.items() if q in honest_values()}
JUDGED_TOTAL = sum(JUDGED.values())


def decided(values=None, found=None, settings=SETTINGS, **phase1) -> dict:
    phase1 = verdicts.Phase1(values=honest_values() if values is None else values, **phase1)
    return verdicts.decide(JUDGED, phase1,
                           models() if found is None else found, settings, sandbox="bubblewrap")


def scores(results: dict) -> dict:
    return {t["name"]: t["score"] for t in results["tests"] if t.get("max_score")}


def output(results: dict, name: str) -> str:
    return next(t["output"] for t in results["tests"] if t["name"] == name)
