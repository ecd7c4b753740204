"""Question 3's check: collect_q3_normalize turns the notebook's variables into plain values and
check_q3_normalize decides from them (fashion_kit.checks says where this code runs)."""

from __future__ import annotations

# The helpers this question shares with the others (the build copies them into the notebook too).
from fashion_kit.checks import (
    array, describe_array, OFFICIAL_DIGESTS, SHAPES, unset)


def collect_q3_normalize(env) -> dict:
    return {name: describe_array(env.get(name)) for name in ("training_images", "test_images")}


def check_q3_normalize(values, public=False) -> tuple:
    parts = []
    for name in ("training_images", "test_images"):
        found, shape = array(values, name), SHAPES[name]
        problem = unset(name, found, 3)
        if problem:
            pass
        elif found.get("type") != "ndarray" or found.get("shape") != list(shape):
            shown = found.get("shape") or found.get("type")
            problem = (f"{name} 應該仍是形狀 {shape} 的陣列。 / Expected {name} to still be an array of shape "
                       f"{shape}, found {tuple(shown) if isinstance(shown, list) else shown}.")
        elif found.get("kind") != "f":
            problem = (f"{name} 應該是小數（float），但現在是 {found.get('dtype')}：請在第 3 題的儲存格寫 "
                       f"{name} = {name} / 255.0。 / Expected {name} to hold decimals (float), found "
                       f"{found.get('dtype')}: write {name} = {name} / 255.0 in question 3's cell.")
        elif found.get("min") == 0.0 and abs((found.get("max") or 0) - 1 / 255) < 1e-6:
            high = found.get("max")
            problem = (f"{name} 的最大值是 {high:g}（= 1/255）：除了兩次 255，正規化的儲存格大概執行了兩次。"
                       "請從第 1 題的儲存格重新往下執行（或重新啟動並全部執行），這個儲存格只執行一次。 / "
                       f"{name} runs up to {high:g} (= 1/255): it was divided by 255 twice, probably because this "
                       "cell ran twice. Run the cells again from question 1 on (or restart and run all), this cell once.")
        elif not (found.get("min") == 0.0 and abs((found.get("max") or 0) - 1.0) < 1e-6):
            low, high = found.get("min"), found.get("max")
            problem = (f"{name} 的數值應該在 0 到 1 之間（最小 0，最大 1），但現在是 {low:g} 到 {high:g}。 / "
                       f"Expected {name} to run from 0 to 1, found {low:g} to {high:g}.")
        elif not public and found.get("digest_times_255") != OFFICIAL_DIGESTS[name]:
            problem = (f"{name} 應該等於原始畫素除以 255，且圖片順序不變。 / Expected {name} to equal the "
                       "original pixels divided by 255, in the original order; found other values. Divide the "
                       "loaded images by 255.0 exactly once.")
        parts.append((1, problem))
    problems = [p for _, p in parts if p]
    return (1.0 if not problems else 0.0), problems
