"""Question 10's check: collect_q10_param_count turns the notebook's variables into plain values and
check_q10_param_count decides from them (fashion_kit.checks says where this code runs)."""

from __future__ import annotations

# The helpers this question shares with the others (the build copies them into the notebook too).
from fashion_kit.checks import (
    plain_number)


def collect_q10_param_count(env) -> dict:
    return {name: plain_number(env.get(name)) for name in ("hidden_params", "output_params", "total_params")}


def check_q10_param_count(values, public=False) -> tuple:
    values = values if isinstance(values, dict) else {}
    found = {}
    for name in ("hidden_params", "output_params", "total_params"):
        number = values.get(name) if isinstance(values.get(name), dict) else {}
        if number.get("kind") != "integer":
            kind = number.get("type") or number.get("kind")
            return 0.0, [f"{name} 應該是整數，但現在是 {kind}。 / Expected {name} to be a whole number, found {kind}."]
        found[name] = number["value"]
    hidden, output, total = found["hidden_params"], found["output_params"], found["total_params"]
    # Inputs × neurons weights plus one bias per neuron, as the text above the question says.
    for name, value, inputs, neurons in (("hidden_params", hidden, 784, 128), ("output_params", output, 128, 10)):
        if value == inputs * neurons:
            return 0.0, [f"{name} 是 {value} = {inputs} × {neurons}：這只算了權重，還要加上每個神經元一個 bias（{neurons} 個）。 / "
                         f"{name} is {value} = {inputs} × {neurons}, the weights only: add one bias per neuron ({neurons})."]
        if value != inputs * neurons + neurons:
            return 0.0, [f"{name} 現在是 {value}，不對。這一層有 {inputs} 個輸入和 {neurons} 個神經元："
                         "參數 = 輸入數 × 神經元數 + 神經元數。 / "
                         f"{name} is {value}, which is off. This layer has {inputs} inputs and {neurons} neurons: "
                         "parameters = inputs × neurons + neurons."]
    if total != hidden + output:
        return 0.0, [f"total_params 應該等於 hidden_params + output_params，但現在是 {total} ≠ {hidden} + {output}。 / "
                     f"Expected total_params == hidden_params + output_params, found {total} != {hidden} + {output}."]
    return 1.0, []
