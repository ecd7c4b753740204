"""Question 2's check: collect_q2_class_names turns the notebook's variables into plain values and
check_q2_class_names decides from them (fashion_kit.checks says where this code runs)."""

from __future__ import annotations

# The helpers this question shares with the others (the build copies them into the notebook too).
from fashion_kit.checks import (
    CLASS_NAMES, plain_list, verdict)


def collect_q2_class_names(env) -> dict:
    names = env.get("class_names")
    found = plain_list(names)
    if isinstance(found, dict) and isinstance(names, (list, tuple)) and any(x is Ellipsis for x in names):
        found["unfilled"] = True
    return {"class_names": found}


def check_q2_class_names(values, public=False) -> tuple:
    names = values.get("class_names") if isinstance(values, dict) else None
    if isinstance(names, dict) and names.get("type") == "list" and names.get("unfilled"):
        return verdict([(1, "class_names 裡還是 ...：請把 ... 換成上表的 10 個英文名稱，每個都用引號括起來，例如 "
                             "\"T-shirt/top\"。 / class_names still holds ...: replace the ... with the 10 names from "
                             "the table, each in quotes, such as \"T-shirt/top\".")])
    if not isinstance(names, list) or len(names) != 10:
        found = f" of length {len(names)}" if isinstance(names, list) else ""
        kind = "list" if isinstance(names, list) else (names or {}).get("type", "nothing") if isinstance(names, dict) else "nothing"
        return verdict([(1, "class_names 應該是有 10 個名稱的串列。 / Expected class_names to be a list of 10 "
                             f"names, found {kind}{found}.")])
    if names[9] != "Ankle boot":
        return verdict([(1, f'class_names[9] 應該是 "Ankle boot"，但現在是 {names[9]!r}。 / '
                             f'Expected class_names[9] == "Ankle boot", found {names[9]!r}.')])
    wrong = [i for i, (got, want) in enumerate(zip(names, CLASS_NAMES)) if got.strip().lower() != want.lower()]
    if wrong:  # the public check and the grade compare the same: the table is above the question
        return verdict([(1, f"標籤 {wrong} 的名稱和表格不一樣：例如標籤 {wrong[0]} 現在是 {names[wrong[0]]!r}，表格寫的是 "
                             f"{CLASS_NAMES[wrong[0]]!r}。請對照表格檢查拼字和順序。 / Expected the table's names in "
                             f"label order; labels {wrong} differ (label {wrong[0]} is {names[wrong[0]]!r}, the table "
                             f"says {CLASS_NAMES[wrong[0]]!r}). Check the spelling and order.")])
    return verdict([(1, None)])
