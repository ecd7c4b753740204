"""A feedback page for each student: what the grader checked, and what it found.

``feedback/<student>.html`` is one self-contained file (inline CSS, no scripts, no external assets, a
Content-Security-Policy that forbids loading anything), readable offline and safe to upload to an LMS
or send by mail. It names the student (name and SID) and is written in the notebook's language: a
Chinese notebook's page in Chinese with English beside it, an English notebook's in English only (the
grader's bilingual messages shown by their English half). It is built only from
the submission's ``results.json``, Gradescope's own format, so it says exactly what Gradescope shows
once grades are published: every question's result box that is not ``hidden``, with its score and its
message, the accuracy the grader measured against the threshold, and the challenge result. Otter's
"Public Tests" summary box is left out when the questions have their own rows: it reports only the
public checks, and would say "All test cases passed!" above a question the grader scored 0. A
submission that could not be graded gets what to do next.
``feedback.zip`` bundles the pages for upload, each named so the LMS's bulk upload finds its student
(:func:`upload_name`): ``<Canvas user id>_<SID>.html`` for Canvas, Moodle's participant id and
feedback plugin first for an upload that came from Moodle's download.
An upload the LMS marked late says so, with what the late policy took off its total.

Everything on the page comes from a student's notebook or from messages quoting it, so every text is
escaped; nothing is trusted to be HTML.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .. import contract, pages, points, questions
from ..statuses import Status
from .roster import get
from .store import FEEDBACK, FEEDBACK_ZIP

FOLDER, ZIP = FEEDBACK, FEEDBACK_ZIP
UNMATCHED = "unmatched"  # feedback/unmatched/: pages of uploads no student of the roster matched
LANGUAGES = contract.LANGUAGES  # the notebook languages; zh-TW pages carry English too
DEFAULT_LANGUAGE = LANGUAGES[0]
PUBLIC_TESTS = "Public Tests"  # Otter's box of the public checks' results

# Words on the page: (Traditional Chinese, English).
LABELS = {
    "title": ("評分回饋", "Grading feedback"),
    "student": ("學生", "Student"),
    "submission": ("繳交編號", "Submission"),
    "total": ("總分", "Total"),
    "question": ("題目", "Question"),
    "score": ("分數", "Score"),
    "checked": ("檢查了什麼", "What was checked"),
    "message": ("評分訊息", "Message"),
    "accuracy": ("測試準確率", "Test accuracy"),
    "measured": ("評分程式用自己的測試資料量到的準確率", "Measured by the grader on its own copy of the test set"),
    "threshold": ("門檻", "threshold"),
    "reached": ("達到門檻", "reached"),
    "not_reached": ("未達門檻", "not reached"),
    "not_measured": ("沒有量到（見第 9 題的訊息）", "not measured (see question 9's message)"),
    "challenge": ("挑戰題", "Challenge"),
    "no_challenge": ("這份筆記本沒有參加挑戰（RUN_CHALLENGE = True 和 build_challenge_model()）。",
                     "This notebook did not take the challenge (RUN_CHALLENGE = True and build_challenge_model())."),
    "bonus": ("加分", "bonus"),
    "notices": ("評分說明", "Notices"),
    "no_results": ("這份繳交沒有評分結果。", "This submission has no grading results."),
    "status": ("狀態", "Status"),
    "not_graded": ("沒有評分", "not graded"),
    "sid": ("學號", "Student ID"),
    "advice": ("接下來怎麼做", "What to do next"),
    "missing": ("沒有收到你這份作業的繳交。", "No submission of yours was found for this assignment."),
    "late": ("遲交", "Late"),
    "late_marked": ("系統標記這份繳交為遲交。", "The course site marked this submission late."),
    "late_penalty": ("遲交扣分", "late penalty"),
    "after_penalty": ("扣分後總分", "total after the penalty"),
}
# Otter's own words in a question's message, which it writes in English only: (English, Chinese).
OTTER_PHRASES = (("All test cases passed!", "所有測試都通過了！"),)

# What a student can do about a submission that was not graded, by the gradebook's status.
ADVICE = {
    Status.INVALID: ("用 Jupyter 或 Colab 打開你的筆記本，確認它打得開、程式能從頭執行，存檔後再繳交那個 .ipynb 檔"
                "（或 grader.export() 產生的 zip 檔）。",
                "Open your notebook in Jupyter or Colab, check that it opens and runs from the top, save it, "
                "then hand in that .ipynb file (or the zip grader.export() makes)."),
    Status.WRONG_ASSIGNMENT: ("這份筆記本不是這次作業的。請重新下載這次作業的筆記本，把你的答案貼進去再繳交。",
                         "This notebook is not this assignment's. Download this assignment's notebook again, "
                         "put your answers in it, and hand it in."),
    Status.TIMEOUT: ("筆記本執行太久，超過了時間限制。請檢查有沒有無窮迴圈，或訓練的 epoch 是否比題目要求的多。",
                "Your notebook ran longer than the time limit. Look for a loop that never ends, or training "
                "for more epochs than the question asks."),
    Status.MEMORY: ("筆記本用掉的記憶體超過限制。請不要建立比題目要求更大的模型或資料。",
               "Your notebook used more memory than allowed. Do not build larger models or data than the "
               "questions ask for."),
    Status.ERROR: ("執行時程式當掉了。請在 Jupyter 裡選「重新啟動並執行全部」，找出出錯的儲存格修好後再繳交。",
              "Your notebook crashed while it ran. In Jupyter, use Restart & Run All, fix the cell that "
              "fails, then hand it in again."),
}
_CJK_TEXT = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\u3000-\u303f\uff00-\uffef]")


def language_of(notebook) -> str:
    """The language a notebook was handed out in (its ``fashion_kit.language`` metadata), else zh-TW.

    ``notebook`` is a path or an already-parsed notebook dict; whatever it holds, the answer is one
    of :data:`LANGUAGES`.
    """
    try:
        nb = notebook if isinstance(notebook, dict) else json.loads(Path(notebook).read_text(encoding="utf-8"))
        lang = nb["metadata"]["fashion_kit"]["language"]
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_LANGUAGE
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def _label(key: str, language: str) -> str:
    zh, en = LABELS[key]
    return en if language == "en" else f"{zh} / {en}"


def _number(value) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError, OverflowError):
        return "?"


def _float(value) -> float:
    """A score as a number; anything else counts as 0 (a page is written whatever the file holds)."""
    try:
        number = float(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return number if number == number else 0.0  # NaN


def _ratio(value):
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number == number else None


def in_language(text: str, language: str) -> str:
    """``text`` for a page in ``language``: on an English page, a grader's bilingual line ("中文 / English")
    keeps only its English part; on a Chinese page, Otter's English-only words get their Chinese
    beside them; anything else is shown as it is."""
    if language != "en":
        for english, chinese in OTTER_PHRASES:
            if chinese not in text:
                text = text.replace(english, f"{chinese} / {english}")
        return text
    if not _CJK_TEXT.search(text):
        return text
    lines = []
    for line in text.split("\n"):
        parts = [p for p in line.split(" / ")]
        english = [p for p in parts if not _CJK_TEXT.search(p)]
        lines.append(" / ".join(english) if len(parts) > 1 and english else line)
    return "\n".join(lines)


def _students(record) -> str:
    people = get(record, "submitters", None) or []
    if isinstance(people, str):
        return people
    names = []
    for p in people:
        if isinstance(p, dict):
            name, email, sid = (str(p.get(k) or "") for k in ("name", "email", "sid"))
            names.append(" ".join(part for part in (name, f"<{email}>" if email else "", f"({sid})" if sid else "") if part))
    return "; ".join(names)


def _is_public_check(test: dict) -> bool:
    name = str(test.get("name", ""))
    return name == PUBLIC_TESTS or any(name == contract.PUBLIC_CHECK_TEST.format(question=q) for q in questions.NAMES)


def visible_tests(results: dict) -> list[dict]:
    """The result boxes a student sees once grades are published: all but the ``hidden`` ones."""
    tests = results.get("tests")
    return [t for t in tests if isinstance(t, dict) and t.get("visibility") != "hidden"] if isinstance(tests, list) else []


def measured(results: dict) -> dict:
    extra = results.get("extra_data") or {}
    value = extra.get(contract.MEASURED_KEY) if isinstance(extra, dict) else None
    return value if isinstance(value, dict) else {}


def _accuracy_line(value, threshold, language: str) -> str:
    value, threshold = _ratio(value), _ratio(threshold)
    if value is None or threshold is None:
        return _label("not_measured", language)
    verdict = _label("reached" if value >= threshold else "not_reached", language)
    return f"{value:.4f} ({_label('threshold', language)} {threshold:.2f}): {verdict}"


def _labels(language: str) -> dict[str, str]:
    return {key: _label(key, language) for key in LABELS}


def _who(student, record) -> list[tuple[str, str]]:
    """The page's first rows, as keys of LABELS and values: the student (name, then SID), else the
    submitters the upload names."""
    rows = []
    if student is not None:
        if student.name:
            rows.append(("student", student.name))
        ident = student.sid or student.login or student.email or student.canvas_id
        if ident:
            rows.append(("sid", ident))
    elif record is not None and _students(record):
        rows.append(("student", _students(record)))
    return rows


def _render(language: str, page_id: str, *, assignment: str, who, submission=None, total=None, late=None,
            status="", notice="", messages=(), advice=None, graded=False, **graded_parts) -> str:
    L = _labels(language)
    return pages.render(
        "feedback.html", language=language, L=L, page_id=page_id, assignment=assignment,
        who=[(L[key], value) for key, value in who], submission=submission, total=total, late=late,
        status=status, notice=notice, messages=list(messages), advice=advice, graded=graded, **graded_parts)


def missing_page(student, *, language: str = DEFAULT_LANGUAGE, assignment: str = "") -> str:
    """The page of a student of the roster who handed in nothing that was found."""
    language = language if language in LANGUAGES else DEFAULT_LANGUAGE
    return _render(language, student.key, assignment=assignment, who=_who(student, None),
                   notice=_label("missing", language))


@dataclass
class Late:
    """An upload the LMS marked late: the points the late policy takes off, and its share in percent."""

    penalty: float = 0.0
    percent: float = 0.0


def _late(late: Late | None, total, language: str) -> str | None:
    """What the late row says: the upload was late, and what the late policy took off the total."""
    if late is None:
        return None
    L = lambda key: _label(key, language)  # noqa: E731
    text = L("late_marked")
    if late.penalty:
        text += (f" {L('late_penalty')} {_number(late.percent)} %: −{_number(late.penalty)}; "
                 f"{L('after_penalty')} {_number(_float(total) - late.penalty)}")
    return text


def page(record, results: dict | None, *, language: str = DEFAULT_LANGUAGE, assignment: str = "",
         student=None, late: Late | None = None) -> str:
    """The feedback page of one submission: ``record`` (its id, submitters, status, message), its
    ``results.json`` content (None when grading produced none), with a roster the ``student`` (a
    ``roster.Student``) it is the grade of, and ``late`` when the LMS marked it late."""
    language = language if language in LANGUAGES else DEFAULT_LANGUAGE
    T = lambda text: in_language(str(text), language)  # noqa: E731
    sid = str(get(record, "id", None) or get(record, "submission", ""))
    page_id = student.key if student is not None else sid
    status, message = str(get(record, "status", "") or ""), str(get(record, "message", "") or "")
    common = dict(assignment=assignment, who=_who(student, record), submission=sid, advice=_advice(status, language))
    if results is None:
        # The batch words its own messages in both languages: the Chinese one first on a zh-TW page.
        message_zh = str(get(record, "message_zh", "") or "")
        messages = ([message_zh] if language != "en" and message_zh else []) + ([message] if message else [])
        return _render(language, page_id, **common, late=_late(late, 0, language),
                       status=status or _label("not_graded", language), notice=_label("no_results", language),
                       messages=messages)

    tests = visible_tests(results) if isinstance(results, dict) else []
    results = results if isinstance(results, dict) else {}
    scored = [t for t in tests if "max_score" in t and t.get("name") != contract.CHALLENGE_TEST]
    possible = points.possible({str(t.get("name", "")): (_float(t.get("score")), _float(t.get("max_score")))
                                for t in scored})
    # Gradescope's total, as the student saw it there: the questions' points and the challenge bonus.
    total = results.get("score", sum(_float(t.get("score")) for t in tests if "max_score" in t))

    # The notebook's own checks (and Otter's box of them) say nothing the questions' rows do not, and
    # may pass a question the grader scored 0; results.json's top box only counts them for Gradescope.
    notices = [(str(t.get("name", "")), T(t.get("output", ""))) for t in tests
               if "max_score" not in t and not (scored and _is_public_check(t))]
    rows = []
    for t in scored:
        name = str(t.get("name", ""))
        question = questions.BY_NAME.get(name)
        zh, en = question.checks if question else ("", "")
        score, top = _float(t.get("score")), _float(t.get("max_score"))
        rows.append({"name": name, "css": "full" if score >= top else ("part" if score > 0 else "none"),
                     "score": f"{_number(score)} / {_number(top)}", "checked_zh": zh if language != "en" else "",
                     "checked_en": en, "message": T(t.get("output", ""))})

    m = measured(results)
    challenge = next((t for t in tests if t.get("name") == contract.CHALLENGE_TEST), None)
    if m.get("challenge_accuracy") is None and challenge is None:
        challenge_text = _label("no_challenge", language)
    else:
        line = _accuracy_line(m.get("challenge_accuracy"), m.get("challenge_threshold"), language)
        bonus = m.get("challenge_bonus", challenge.get("score") if challenge else None)
        challenge_text = line + (f"; {_label('bonus', language)} {_number(bonus)}" if bonus is not None else "")
    return _render(
        language, page_id, **common, total=f"{_number(total)} / {_number(possible)}",
        late=_late(late, total, language), status=status if status and status != Status.GRADED else "", graded=True,
        notices=notices, rows=rows, accuracy=_accuracy_line(m.get("accuracy"), m.get("threshold"), language),
        challenge=challenge_text, challenge_output=T(challenge.get("output", "")) if challenge is not None else None)


def _advice(status: str, language: str) -> list[str] | None:
    """What a student can do about a submission that was not graded, line by line (None if graded)."""
    if status not in ADVICE:
        return None
    zh, en = ADVICE[status]
    return [en] if language == "en" else [zh, en]


def file_name(submission_id: str) -> str:
    """``<id>.html``, with anything that could leave the folder or confuse a file system replaced."""
    safe = re.sub(r"[^\w.\-]+", "_", submission_id).strip(".") or "submission"
    return f"{safe}.html"


# Moodle's *Download all submissions* gives each student a folder `<full name>_<participant id>_
# assignsubmission_<plugin>[_]`: the participant id is the one its feedback import reads back.
MOODLE_SUBMISSION = re.compile(r"^(?P<name>[^/_]+)_(?P<participant>\d+)_assignsubmission_[a-z]+_?(?:/|$)")


def moodle_participant(original_name: str) -> tuple[str, str] | None:
    """(full name, participant id) of an upload that came from Moodle's download, else None."""
    found = MOODLE_SUBMISSION.match(str(original_name or "").replace("\\", "/"))
    return (found["name"], found["participant"]) if found else None


def upload_name(student, upload=None) -> str:
    """A student's page's name in the zip, so that the LMS's bulk upload attaches it to them: Canvas's
    (:func:`canvas_upload_name`) when the roster gave a Canvas user id; Moodle's when the upload came
    from Moodle's download (its *Upload multiple feedback files in a zip* splits a name on ``_`` and
    reads the participant id second, then the feedback plugin, ``assignfeedback_file``, then the file's
    name); else the page's own name."""
    moodle = moodle_participant(get(upload, "original_name", "")) if upload is not None else None
    if not student.canvas_id.isdigit() and moodle is not None:
        name, participant = moodle
        return f"{name}_{participant}_assignfeedback_file_{file_name(student.key)}"
    return canvas_upload_name(student)


def canvas_upload_name(student) -> str:
    """A student's page's name in the zip: ``<Canvas user id>_<SID>.html`` when the roster gave a
    Canvas user id, else the page's own name.

    Canvas's *Upload submission comments* splits a file name on ``_`` and takes its first part made of
    digits only for the user id, ignoring the rest; the id goes first, so an all-digit SID after it
    is never taken for one."""
    own = file_name(student.key)
    return f"{student.canvas_id}_{own}" if student.canvas_id.isdigit() else own


def write(out: Path | str, pages: dict[str, str], zip_name: str | None = ZIP,
          apart: dict[str, str] | None = None, zip_names: dict[str, str] | None = None) -> tuple[Path, Path | None]:
    """Write ``{name: html}`` to ``<out>/feedback/<name>.html`` and bundle them in ``<out>/<zip_name>``
    (no zip when ``zip_name`` is None), each under its ``zip_names`` entry if it has one (see
    :func:`canvas_upload_name`), else its file's name; ``apart`` pages (uploads that are no one's,
    yet) go to ``<out>/feedback/unmatched/``, never into the zip.

    The folder and the zip hold exactly these pages (the zip sorted, with fixed timestamps): a page of
    an earlier run that is no longer wanted is removed. Returns the folder and the zip.
    """
    out = Path(out)
    folder = out / FOLDER
    if folder.is_symlink():
        raise OSError(f"refused to write feedback pages through the link {folder}.")
    folder.mkdir(parents=True, exist_ok=True)
    wanted = _write_pages(folder, pages)
    other = folder / UNMATCHED
    if other.is_symlink():
        raise OSError(f"refused to write feedback pages through the link {other}.")
    if apart:
        other.mkdir(exist_ok=True)
        _write_pages(other, apart)
    elif other.is_dir():
        _write_pages(other, {})
    if zip_name is None:
        return folder, None
    tmp = out / f".{zip_name}.tmp"
    named = {sid: (zip_names or {}).get(sid) or wanted[sid] for sid in wanted}
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for sid in sorted(named, key=lambda s: named[s]):
            info = zipfile.ZipInfo(named[sid], date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, pages[sid].encode("utf-8"))
    tmp.replace(out / zip_name)
    return folder, out / zip_name


def _write_pages(folder: Path, pages: dict[str, str]) -> dict[str, str]:
    """``{name: html}`` as files in ``folder`` (stale pages there removed); returns name -> file name."""
    names: dict[str, str] = {}
    for sid in sorted(pages, key=contract.natural_key):
        name = file_name(sid)
        stem, n = name[:-5], 2
        while name in names.values():  # two ids that differ only in unsafe characters
            name, n = f"{stem}-{n}.html", n + 1
        names[sid] = name
        tmp = folder / f".{name}.tmp"
        tmp.write_text(pages[sid], encoding="utf-8")
        tmp.replace(folder / name)  # replaces a planted link rather than writing through it
    for old in folder.glob("*.html"):
        if old.name not in names.values():
            old.unlink()
    return names
