"""What people read when the notebook's run was stopped before it could finish: every stop's words.

A run ends early at the time limit (``timeout_seconds``), when the notebook's kernel dies (on
Gradescope almost always the out-of-memory killer), when it starts more processes or writes more
than the limits allow, or when the autograder itself fails. The student gets a message in both
languages saying what happened and which cell was running; every question checked before keeps its
score and the questions never reached get 0 (:mod:`verdicts` builds the results).
"""

from __future__ import annotations

from ..statuses import Stop


TITLES = {
    Stop.TIMEOUT: "時間到了 / Time limit reached",
    Stop.KERNEL_DIED: "記憶體不足 / Out of memory",
    Stop.MEMORY_LIMIT: "記憶體不足 / Out of memory",
    Stop.PROCESSES: "程式開了太多行程 / Too many processes",
    Stop.DISK: "寫入太多檔案 / Too much written to disk",
    Stop.ERROR: "評分沒有完成 / Grading did not finish",
}



def summary(kind: str, *, timeout_seconds: float, memory_limit_mb: float) -> tuple[str, str]:
    """One line on why a run was stopped, for the instructor's terminal and gradebook: (Chinese, English)."""
    zh_time, en_time = duration(timeout_seconds)
    lines = {
        Stop.TIMEOUT: (f"執行超過 {zh_time}，筆記本被停下來了。", f"Stopped after {en_time}: the notebook did not finish in time."),
        Stop.KERNEL_DIED: ("筆記本執行時 kernel 停止了（某個儲存格讓它當掉、把它結束，或用掉太多記憶體）。",
                 "The notebook's kernel died while it ran (a cell crashed it, killed it or used too much memory)."),
        Stop.MEMORY_LIMIT: (f"筆記本用掉的記憶體超過上限 {memory_limit_mb:,.0f} MB，被停下來了。",
                       f"Stopped: the notebook used more memory than the limit of {memory_limit_mb:,.0f} MB."),
        Stop.PROCESSES: ("筆記本開了超過上限的行程，被停下來了。", "Stopped: the notebook started more processes than the grader allows."),
        Stop.DISK: ("筆記本寫入的資料超過上限，被停下來了。", "Stopped: the notebook wrote more to disk than the grader allows."),
        Stop.ERROR: ("筆記本執行時評分程式出錯了；請看 grading.log。", "The autograder failed while the notebook ran; see grading.log."),
    }
    return lines.get(kind, lines[Stop.ERROR])


# One line, Chinese / English, as every question's message: an English page keeps the English half.
NOT_CHECKED = ("這一題沒有被檢查：評分在執行到這一題之前就停止了（請看最上面的說明）。 / "
               "Not checked: grading stopped before the notebook reached this question (see the message at the top).")


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


def message(kind: str, cell: dict | None, limit_seconds: float | None = None,
            limit_mb: float | None = None) -> str:
    """What happened, for the student: Traditional Chinese first, then English."""
    zh_where, en_where = _where(cell)
    kept_zh = "在這之前已經檢查過的題目都保留分數；後面沒有檢查到的題目是 0 分。"
    kept_en = "Questions checked before that keep their score; the questions it never reached get 0."
    if kind == Stop.MEMORY_LIMIT:
        return (
            f"你的筆記本{zh_where}用掉的記憶體超過評分程式的上限 {limit_mb:,.0f} MB，所以被停下來了。{kept_zh}\n"
            "常見原因：把資料複製了很多份、模型太大，或 batch_size 太大。改小一點再重新上傳。\n\n"
            f"Your notebook used more memory than the grader's limit of {limit_mb:,.0f} MB {en_where}, so it "
            f"was stopped. {kept_en}\nCommon causes: many copies of the data, a very large model, or a very "
            "large batch_size. Make them smaller and submit again."
        )
    if kind == Stop.PROCESSES:
        return (
            f"你的筆記本{zh_where}一直開新的行程（process），超過評分環境的上限，所以被停下來了。{kept_zh}\n"
            "請不要在筆記本裡用 os.fork、subprocess 或 multiprocessing 開很多行程，修改後再重新上傳。\n\n"
            f"Your notebook kept starting new processes {en_where}, more than the grader allows, so it was "
            f"stopped. {kept_en}\nDo not start many processes (os.fork, subprocess, multiprocessing) in "
            "the notebook; fix it and submit again."
        )
    if kind == Stop.DISK:
        return (
            f"你的筆記本{zh_where}寫入的檔案太大或太多，超過評分環境的上限，所以被停下來了。{kept_zh}\n"
            "這份作業只需要存一個模型檔；請刪掉寫入大檔案的程式，修改後再重新上傳。\n\n"
            f"Your notebook wrote too much to disk {en_where}, more than the grader allows, so it was "
            f"stopped. {kept_en}\nThe assignment saves one model file; remove the code that writes large "
            "files and submit again."
        )
    if kind == Stop.TIMEOUT:
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
    if kind == Stop.KERNEL_DIED:
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
