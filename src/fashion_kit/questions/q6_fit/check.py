"""Question 6's check: collect_q6_fit turns the notebook's variables into plain values and
check_q6_fit decides from them (fashion_kit.checks says where this code runs)."""

from __future__ import annotations

import math

# The helpers this question shares with the others (the build copies them into the notebook too).
from fashion_kit.checks import (
    describe_history, EXPECTED_EPOCHS, measured_model, model_facts, no_model, trained_problem,
    TRAINING_EXAMPLES, verdict)


def collect_q6_fit(env) -> dict:
    fits = env.get("__fashion_kit_fits__")
    return {"model": measured_model(env), "history": describe_history(env.get("history")),
            "fits": fits if isinstance(fits, list) else None}


def five_epochs_of(fits, iterations):
    """Why the recorded fit() calls are not five epochs over the training images, or None. Each fit
    records the examples handed to it, whether they are the training images, its batch size, its
    validation split and the epochs and steps per epoch it did; the steps must be what that batch
    size takes over the examples actually fitted (after the split), and the optimizer's steps must be
    what the fits took."""
    unreadable = "fit 的紀錄看不懂。 / Expected a record of model.fit(...), found something else."
    if not isinstance(fits, list) or not fits:
        return "沒有看到 model.fit(...)。 / Expected a call of model.fit(...), found none."
    steps = epochs = 0
    for fit in fits:
        if not isinstance(fit, dict):
            return unreadable
        examples, batch, done, per_epoch = (fit.get(k) for k in ("examples", "batch_size", "epochs_done", "steps"))
        split = fit.get("validation_split") or 0.0
        if not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in (examples, batch, per_epoch)) \
                or not isinstance(done, int) or isinstance(done, bool) or done < 0 \
                or not isinstance(split, (int, float)) or not 0 <= split < 1:
            return unreadable
        if fit.get("images") != "training_images" or examples != TRAINING_EXAMPLES:
            return ("model.fit(...) 應該用全部的 training_images 和 training_labels 訓練。 / Expected model.fit(...) "
                    f"to train on the {TRAINING_EXAMPLES} training images, found {examples} other ones."
                    if fit.get("images") != "training_images" else
                    f"model.fit(...) 訓練了 {examples} 張圖片，不是全部的訓練資料。 / Expected model.fit(...) to "
                    f"train on the {TRAINING_EXAMPLES} training images, found {examples}.")
        # Keras keeps ceil(n × (1 − split)) examples for training; other rounding is accepted too.
        kept = {math.ceil(examples * (1 - split)), int(examples * (1 - split)), examples - int(examples * split)}
        if per_epoch not in {math.ceil(k / batch) for k in kept}:
            return (f"fit 每個 epoch 走了 {per_epoch} 步，和批次大小 {batch} 對不上。 / Expected "
                    f"{math.ceil(max(kept) / batch)} steps per epoch at batch size {batch}, found {per_epoch}.")
        steps += per_epoch * done
        epochs += done
    if len(fits) > 1 and epochs != EXPECTED_EPOCHS:
        return refit_problem(len(fits), epochs)
    if epochs != EXPECTED_EPOCHS:
        return (f"應該訓練 5 個 epoch，但 model.fit(...) 訓練了 {epochs} 個。 / Expected 5 epochs of training, "
                f"found {epochs}.")
    if iterations != steps:
        return (f"模型的最佳化器更新了 {iterations} 次，和 fit 的 {steps} 次不一樣。 / Expected the optimizer to have "
                f"taken the {steps} steps of those fits (9375 for 5 epochs at the default batch size), found "
                f"{iterations}.")
    return None


def refit_problem(runs, epochs):
    """The message for a model trained by more than one run of fit: each run continues training."""
    runs_zh = f"執行了 {runs} 次" if runs else "執行了不只一次"
    runs_en = f"ran {runs} times" if runs else "ran more than once"
    total_zh = f"，一共 {epochs} 個 epoch" if epochs else ""
    total_en = f" ({epochs} epochs in all)" if epochs else ""
    return (f"model.fit(...) {runs_zh}：每執行一次，都會接著訓練同一個模型{total_zh}，不會重新開始。要重新開始，"
            "請再執行第 4 題的儲存格（建立新的模型），然後執行第 5 題和第 6 題各一次。 / "
            f"model.fit(...) {runs_en}: each run continues training the same model{total_en}, it does not start "
            "over. To start over, run question 4's cell again (a new model), then questions 5 and 6 once each.")


def check_q6_fit(values, public=False) -> tuple:
    history = values.get("history") if isinstance(values, dict) else None
    history = history if isinstance(history, dict) else {}
    epochs = history.get("epochs")
    if history.get("type") == "NoneType":
        return verdict([(1, "history 還沒有值：model.fit(...) 沒有順利跑完（請看它的錯誤訊息），或是結果沒有存到 history"
                             "（history = model.fit(...)）。 / history has no value: model.fit(...) did not finish (read "
                             "its error message) or its result was not stored (history = model.fit(...)).")])
    if history.get("type") != "History":
        return verdict([(1, f"history 應該是 model.fit(...) 的傳回值，但現在是 {history.get('type')}。 / "
                             f"Expected history to be what model.fit(...) returns, found {history.get('type')}.")])
    if epochs != EXPECTED_EPOCHS:
        return verdict([(1, f"應該訓練 5 個 epoch，但 history 裡有 {epochs} 個。 / Expected 5 epochs in history, "
                             f"found {epochs}.")])
    model = model_facts(values)
    if "error" in model:
        return verdict([(1, no_model(model))])
    if public:
        # The notebook has no record of each fit: the optimizer's steps show a model trained by more
        # fits than history's, and its accuracies show a model trained on the test set.
        steps = (history.get("params") or {}).get("steps")
        if isinstance(steps, int) and isinstance(model.get("iterations"), int) \
                and model["iterations"] > steps * EXPECTED_EPOCHS:
            return verdict([(1, refit_problem(None, None))])
        if "accuracy" in model and "train_accuracy" in model:
            return verdict([(1, trained_problem(model))])
        return verdict([(1, None)])
    return verdict([(1, five_epochs_of(values.get("fits"), model.get("iterations")))])
