"""Question 4's check: collect_q4_model turns the notebook's variables into plain values and
check_q4_model decides from them (fashion_kit.checks says where this code runs)."""

from __future__ import annotations

# The helpers this question shares with the others (the build copies them into the notebook too).
from fashion_kit.checks import (
    EXPECTED_LAYERS, EXPECTED_PARAMS, IMAGE_SHAPE, model_facts, model_of, no_model, verdict)


def collect_q4_model(env) -> dict:
    return {"model": model_of(env)}


def structure_problem(model):
    """Why a model's facts are not the lesson's model, or None. The messages never print the
    parameter counts: they are question 10's answers."""
    if "error" in model:
        return no_model(model)
    layers = model.get("layers") if isinstance(model.get("layers"), list) else []
    params = model.get("params") if isinstance(model.get("params"), list) else []
    dense = [p for row, p in zip(layers, params) if isinstance(row, list) and row[:1] == ["Dense"]]
    shape = model.get("input")
    if layers != EXPECTED_LAYERS:
        shown = ", ".join(f"{row[0]}" + (f"({row[1]}, {row[2]})" if row[1] else "") for row in layers
                          if isinstance(row, list) and len(row) == 3) or "nothing"
        return (f"model 的層應該依序是 Flatten、Dense(128, relu)、Dense(10, softmax)；現在是 {shown}。請檢查第 4 題的儲存格。 / "
                f"Expected model's layers to be Flatten, Dense(128, relu), Dense(10, softmax); found {shown}. "
                "Check question 4's cell.")
    if shape is None or not any(dense):
        return ("model 還不知道輸入圖片的大小（模型還沒有建好，所以還沒有參數）：第一層請寫 "
                "Flatten(input_shape=(28, 28))。 / model does not know the size of its input yet (it is not built, so "
                "it has no parameters): write the first layer as Flatten(input_shape=(28, 28)).")
    if shape != IMAGE_SHAPE:
        shown = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
        return (f"model 的輸入形狀是 {shown}，但每張圖片是 28×28：第一層請寫 Flatten(input_shape=(28, 28))。 / "
                f"Expected model to take the 28×28 images, found the input shape {shown}: write the first layer "
                "as Flatten(input_shape=(28, 28)).")
    if dense != EXPECTED_PARAMS:
        return ("Dense 層的參數數量和課程的模型不一樣：每一層只要設定神經元數和 activation。 / Expected the Dense "
                "layers of the lesson, found other numbers of parameters: give each layer only its units and "
                "activation.")
    return None


def check_q4_model(values, public=False) -> tuple:
    model = model_facts(values)
    # No model at all (the notebook's variable is unset, the grader found no snapshot): question 4's cell
    # did not finish, most often because its ... is still there (Keras refuses Sequential([...])).
    if model.get("error") == "model is NoneType" or str(model.get("error")).startswith("no model"):
        return verdict([(1, "model 還沒有值：第 4 題的儲存格沒有順利跑完。請把儲存格裡的 ... 換成上面說明的三層，再執行一次，"
                             "直到沒有錯誤。 / model has no value yet: question 4's cell did not finish. Replace the ... "
                             "in it with the three layers described above and run it again until it finishes without "
                             "an error.")])
    return verdict([(1, structure_problem(model))])
