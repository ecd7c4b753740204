"""Question 1's check: collect_q1_load_data turns the notebook's variables into plain values and
check_q1_load_data decides from them (fashion_kit.checks says where this code runs)."""

from __future__ import annotations

# The helpers this question shares with the others (the build copies them into the notebook too).
from fashion_kit.checks import (
    array, describe_array, OFFICIAL_DIGESTS, SHAPES, unset, verdict)


def collect_q1_load_data(env) -> dict:
    return {name: describe_array(env.get(name)) for name in SHAPES}


def _shape_problem(name, found, shape):
    no_value = unset(name, found, 1)
    if no_value:
        return no_value
    if found.get("type") != "ndarray":
        return (f"{name} 應該是 NumPy 陣列，但現在是 {found.get('type')}。請檢查 load_data() 那一行。 / "
                f"Expected {name} to be a NumPy array, found {found.get('type')}. Check the load_data() line.")
    if found.get("shape") != list(shape):
        shown = tuple(found.get("shape") or ())
        return f"{name} 的形狀應該是 {shape}，但現在是 {shown}。 / Expected {name}.shape == {shape}, found {shown}."
    return None


def check_q1_load_data(values, public=False) -> tuple:
    problems = []
    for name, shape in SHAPES.items():
        problems.append(_shape_problem(name, array(values, name), shape))
    for name in ("training_labels", "test_labels"):
        found = array(values, name)
        if found.get("type") == "ndarray" and not (found.get("kind") in "iu" and found.get("min") == 0
                                                    and found.get("max") == 9):
            low, high = found.get("min", found.get("dtype")), found.get("max", found.get("dtype"))
            problems.append(f"{name} 應該是 0 到 9 的整數，但現在是 {low} 到 {high}。 / "
                            f"Expected {name} to hold the classes 0 to 9, found {low} to {high}.")
    if not public and not any(problems):
        wrong = [n for n in SHAPES if array(values, n).get("digest") != OFFICIAL_DIGESTS[n]]
        if wrong:
            problems.append(f"{', '.join(wrong)} 和 load_data() 讀到的資料不一樣。 / Expected the arrays "
                            f"load_data() returns, found other values in {', '.join(wrong)}.")
    return verdict([(1, next((p for p in problems if p), None))])
