"""Question 5's check: collect_q5_compile turns the notebook's variables into plain values and
check_q5_compile decides from them (fashion_kit.checks says where this code runs)."""

from __future__ import annotations

# The helpers this question shares with the others (the build copies them into the notebook too).
from fashion_kit.checks import (
    ACCURACY_NAMES, model_facts, model_of, no_model, verdict)


def collect_q5_compile(env) -> dict:
    return {"model": model_of(env)}


def check_q5_compile(values, public=False) -> tuple:
    model = model_facts(values)
    if "error" in model:
        return verdict([(1, no_model(model))])
    if not model.get("compiled"):
        return verdict([(1, "model 還沒有 compile：請執行第 5 題的 model.compile(...)，括號裡的 ... 要換成 optimizer、"
                             "loss 和 metrics 三個設定。 / Expected a compiled model, found one that was never compiled: "
                             "run question 5's model.compile(...), with the ... replaced by the optimizer, loss and "
                             "metrics settings.")])
    optimizer, loss = model.get("optimizer"), model.get("loss")
    given = model.get("loss_given") if isinstance(model.get("loss_given"), str) else loss
    metrics = model.get("metrics") if isinstance(model.get("metrics"), list) else []
    if optimizer != "adam":
        return verdict([(1, f"optimizer 應該是 adam，但現在是 {optimizer}。 / Expected optimizer adam, found {optimizer}.")])
    if loss != "sparsecategoricalcrossentropy":
        return verdict([(1, f"loss 應該是 sparse_categorical_crossentropy（標籤是整數），但現在是 {given}。 / "
                             f"Expected loss sparse_categorical_crossentropy (the labels are integers), found {given}.")])
    if not any(m in ACCURACY_NAMES for m in metrics):
        return verdict([(1, f"metrics 應該包含 accuracy，但現在是 {metrics}：請寫 metrics=[\"accuracy\"]（用名字寫，"
                             "不要只照順序放）。 / Expected metrics to include accuracy, found "
                             f"{metrics}: write metrics=[\"accuracy\"] (by name, not by position).")])
    return verdict([(1, None)])
