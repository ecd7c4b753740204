"""Question 8's check: collect_q8_evaluate turns the notebook's variables into plain values and
check_q8_evaluate decides from them (fashion_kit.checks says where this code runs)."""

from __future__ import annotations

# The helpers this question shares with the others (the build copies them into the notebook too).
from fashion_kit.checks import (
    accuracy_of, AGREEMENT_TOLERANCE, MEASURED_BY_GRADER, model_facts, no_model, plain_number)


def collect_q8_evaluate(env) -> dict:
    found = {"test_loss": plain_number(env.get("test_loss")), "test_acc": plain_number(env.get("test_acc"))}
    measured = None if env.get(MEASURED_BY_GRADER) else accuracy_of(
        env.get("model"), env.get("test_images"), env.get("test_labels"))
    found["measured"] = [] if measured is None else [measured]
    return found


def check_q8_evaluate(values, public=False) -> tuple:
    """The reported test_acc must be the evaluated model's accuracy on the test set: measured by the
    grader on the standard scaling or on the notebook's own test_images; half the points when it is
    not, nothing when there is no model to measure."""
    values = values if isinstance(values, dict) else {}
    for name in ("test_acc", "test_loss"):
        found = values.get(name) if isinstance(values.get(name), dict) else {}
        if found.get("type") in ("list", "tuple") and found.get("length") == 2:
            return 0.0, [f"{name} 現在是兩個數字的串列（損失和準確率）：model.evaluate(...) 會傳回兩個值，請把它們分開存："
                         "test_loss, test_acc = model.evaluate(test_images, test_labels)。 / "
                         f"{name} holds a list of two numbers (the loss and the accuracy): model.evaluate(...) returns "
                         "both, so unpack them: test_loss, test_acc = model.evaluate(test_images, test_labels)."]
        if found.get("kind") not in ("integer", "real") or found.get("value") is None:
            return 0.0, [f"{name} 應該是一個數字，但現在是 {found.get('type')}。 / Expected {name} to be a number, "
                         f"found {found.get('type')}."]
    reported = values["test_acc"]["value"]
    if not 0.0 <= reported <= 1.0:
        return 0.0, [f"test_acc 應該在 0 到 1 之間，但現在是 {reported}。 / Expected 0 <= test_acc <= 1, found {reported}."]
    measured = [x for x in (values.get("measured") or []) if isinstance(x, (int, float)) and not isinstance(x, bool)]
    if not measured:
        model = model_facts(values)
        return 0.0, [no_model(model if "error" in model else {"error": "no accuracy"})]
    if any(abs(reported - x) <= AGREEMENT_TOLERANCE for x in measured):
        return 1.0, []
    return 0.5, [f"你回報的 test_acc 是 {reported:.4f}，但這個模型在測試資料上的準確率是 {measured[0]:.4f}。"
                 "請用 model.evaluate(test_images, test_labels) 算 test_acc，不要改動測試資料。 / Expected test_acc "
                 f"to match your model's accuracy on the test set, {measured[0]:.4f}, found {reported:.4f}. Compute "
                 "it with model.evaluate(test_images, test_labels) on the test data."]
