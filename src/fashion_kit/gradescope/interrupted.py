"""results.json for a grading run that was stopped before Otter could write its own.

Three ways a run ends early: the time limit (``timeout_seconds``), the notebook's kernel dying (on
Gradescope almost always the out-of-memory killer), or the autograder itself failing. In each case the
student gets a message in both languages of the course saying what happened and which cell was running,
every question Otter checked before that keeps its score (from :mod:`checkpoints`), and the questions
never reached are listed with 0 points, so the total stays out of the assignment's full marks.
"""

from __future__ import annotations

import json
from pathlib import Path

import checkpoints

TIMEOUT, MEMORY, ERROR = "timeout", "memory", "error"
# Where results.json says, for programs rather than people, why the run was stopped (Gradescope keeps
# extra_data and shows it to nobody); fashion_kit.run reads it.
STOPPED_KEY = "fashion_kit_stopped"

TITLES = {
    TIMEOUT: "時間到了 / Time limit reached",
    MEMORY: "記憶體不足 / Out of memory",
    ERROR: "評分沒有完成 / Grading did not finish",
}

NOT_CHECKED = (
    "這一題沒有被檢查：評分在執行到這一題之前就停止了（請看最上面的說明）。\n"
    "Not checked: grading stopped before the notebook reached this question (see the message at the top)."
)


def _where(cell: dict | None) -> tuple[str, str]:
    if cell is None:
        return "在所有儲存格都執行完之後", "after all of your cells had run"
    line = cell["first_line"] or "(空白 / empty)"
    return (
        f"在第 {cell['cell']} 個程式碼儲存格（從上往下數；開頭是 `{line}`）執行時",
        f"while code cell {cell['cell']} (counting code cells from the top; it starts with `{line}`) was running",
    )


def duration(seconds: float) -> tuple[str, str]:
    """``seconds`` in the unit a person would use: (Chinese, English)."""
    if seconds < 120:
        return f"{seconds:g} 秒", f"{seconds:g} seconds"
    return f"{seconds / 60:.3g} 分鐘", f"{seconds / 60:.3g} minutes"


def message(kind: str, cell: dict | None, limit_seconds: float | None = None) -> str:
    """What happened, for the student: Traditional Chinese first, then English."""
    zh_where, en_where = _where(cell)
    if kind == TIMEOUT:
        zh_limit, en_limit = duration(limit_seconds)
        return (
            f"你的筆記本執行超過 {zh_limit}，所以自動評分程式{zh_where}把它停下來了。"
            "在這之前已經檢查過的題目都保留分數；後面沒有檢查到的題目是 0 分。\n"
            "請看看這個儲存格是不是有無窮迴圈、在等待輸入，或是訓練太多輪（epochs），修改後再重新上傳。\n\n"
            f"Your notebook ran for more than {en_limit}, so the autograder stopped it {en_where}. "
            "Questions checked before that keep their score; the questions it never reached get 0.\n"
            "Check that cell for an endless loop, a call waiting for input, or too many training epochs, "
            "then submit again."
        )
    if kind == MEMORY:
        return (
            f"你的筆記本{zh_where}突然停止了，最可能的原因是它用掉的記憶體超過評分環境的上限。"
            "在這之前已經檢查過的題目都保留分數；後面沒有檢查到的題目是 0 分。\n"
            "常見原因：把資料複製了很多份、模型太大，或 batch_size 太大。改小一點再重新上傳。\n\n"
            f"Your notebook stopped suddenly {en_where}, most likely because it used more memory than "
            "the grading machine has. Questions checked before that keep their score; the questions it "
            "never reached get 0.\n"
            "Common causes: many copies of the data, a very large model, or a very large batch_size. "
            "Make them smaller and submit again."
        )
    return (
        f"自動評分程式{zh_where}發生錯誤，沒辦法完成評分。在這之前已經檢查過的題目都保留分數。"
        "請把這個訊息告訴老師或助教。\n\n"
        f"The autograder hit an error {en_where} and could not finish grading. Questions checked before "
        "that keep their score. Please tell your instructor or TA."
    )


def results(kind: str, autograder_dir: Path, folder: Path, limit_seconds: float | None, log: str = "") -> dict:
    """The results.json for a run stopped for ``kind``, from the checkpoints saved in ``folder``."""
    from otter.nbmeta_config import NBMetadataConfig
    from otter.run.run_autograder.autograder_config import AutograderConfig
    from otter.test_files import create_test_file

    source = Path(autograder_dir) / "source"
    config = json.loads((source / "otter_config.json").read_text(encoding="utf-8"))
    ag_config = AutograderConfig(config)
    checked = checkpoints.checked_results(folder)
    out = checked.to_gradescope_dict(ag_config) if checked is not None and checked.results else {"tests": []}
    text = message(kind, checkpoints.running_cell(folder), limit_seconds)
    out["output"] = text
    out["extra_data"] = {**out.get("extra_data", {}), STOPPED_KEY: kind}
    out["tests"].insert(0, {"name": TITLES[kind], "status": "failed", "visibility": "visible", "output": text})

    done = set(checked.results) if checked is not None else set()
    hidden_visibility = "after_published" if ag_config.show_hidden else "hidden"
    for path in sorted(source.glob("tests/*.py"), key=_question_order):
        test = create_test_file(str(path), NBMetadataConfig())
        if test.name not in done:
            out["tests"].append({
                "name": test.name, "score": 0, "max_score": test.possible,
                "visibility": hidden_visibility, "output": NOT_CHECKED,
            })
    if kind == ERROR and log:
        # Only instructors see hidden tests: the traceback helps them, it would only confuse students.
        out["tests"].append({
            "name": "Autograder log (instructors only)", "status": "failed", "visibility": "hidden",
            "output": log[-5000:],
        })
    return out


def _question_order(path: Path) -> tuple:
    # q2 before q10: compare the number in the name, not the text.
    digits = "".join(ch for ch in path.stem.split("_")[0] if ch.isdigit())
    return (int(digits) if digits else 0, path.stem)
