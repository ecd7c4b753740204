"""Question 9's check: collect_q9_accuracy turns the notebook's variables into plain values and
check_q9_accuracy decides from them (fashion_kit.checks says where this code runs)."""

from __future__ import annotations

# The helpers this question shares with the others (the build copies them into the notebook too).
from fashion_kit.checks import (
    measured_model, MIN_TEST_ACCURACY, model_facts, no_model, trained_problem)


def collect_q9_accuracy(env) -> dict:
    return {"model": measured_model(env), "threshold": MIN_TEST_ACCURACY}


def check_q9_accuracy(values, public=False) -> tuple:
    """The evaluated model (question 8's) is the one built at question 4 and trained at question 6
    (saved at question 7), trained on the training set, and reaches the threshold on the grader's
    test set."""
    values = values if isinstance(values, dict) else {}
    model = model_facts(values)
    if "error" in model:
        return 0.0, [no_model(model)]
    if public and not isinstance(model.get("accuracy"), (int, float)):
        return 0.0, ["model 沒辦法判斷 test_images 的類別：請先讓上面的題目都順利執行完，沒有錯誤。 / Expected model "
                     "to classify test_images, found it could not: run the questions above until they finish "
                     "without an error."]
    if not public and values.get("same_model") is not True:
        return 0.0, [values.get("same_model") if isinstance(values.get("same_model"), str) else
                     "評分的模型應該是第 4 題建立、第 6 題訓練、第 8 題評估的同一個 model。 / Expected the model "
                     "evaluated at question 8 to be the one built at question 4 and trained at question 6."]
    problem = trained_problem(model)
    if problem:
        return 0.0, [problem]
    threshold, value = values.get("threshold"), model.get("accuracy")
    if not isinstance(threshold, (int, float)):
        return 0.0, ["沒有門檻。 / Expected a threshold, found none."]
    if public:  # measured on the notebook's own test arrays, against the default threshold
        if value >= threshold:
            return 1.0, []
        return 0.0, [f"你的模型在測試資料上的準確率是 {value:.4f}，需要至少 {threshold:.2f}（老師可能另外設定門檻）。請檢查"
                     f"正規化、模型結構和訓練的 epoch 數。 / Expected a test accuracy of at least {threshold:.2f} (unless "
                     f"your instructor set another threshold), found {value:.4f} on your test_images. Check the "
                     "normalisation, the layers and the number of epochs."]
    if value >= threshold:
        return 1.0, [f"評分程式在自己的測試資料上量到你的模型準確率是 {value:.4f}（門檻 {threshold:.2f}）。 / The grader "
                     f"measured your model at {value:.4f} test accuracy on its own copy of the test set (needed "
                     f"{threshold:.2f})."]
    return 0.0, [f"評分程式在自己的測試資料上量到你的模型準確率是 {value:.4f}，需要至少 {threshold:.2f}。請檢查正規化、"
                 f"模型結構和訓練的 epoch 數。 / Expected a test accuracy of at least {threshold:.2f}, found "
                 f"{value:.4f} on the grader's own copy of the test set. Check the normalisation, the layers and "
                 "the number of epochs."]
