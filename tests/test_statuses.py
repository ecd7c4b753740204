"""The words for how a grading ended are declared once (fashion_kit.statuses); the class guide's table
of gradebook statuses names exactly those, the stop words in results.json are the Stop values, and no
module compares a status with the word written out."""

import ast
import re
from pathlib import Path

from fashion_kit import statuses
from fashion_kit.grading import stopped
from fashion_kit.statuses import CheckStatus, Status, Stop

PACKAGE = Path(statuses.__file__).parent
STATUS_WORDS = {*Status, *Stop, *CheckStatus}

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "grading-a-class.md"


def test_the_class_guide_lists_every_gradebook_status_once():
    text = GUIDE.read_text(encoding="utf-8")
    table = text[text.index("| status | meaning |"):].split("\n\n")[0]
    named = re.findall(r"^\| `([a-z-]+)` \| ", table, re.MULTILINE)
    assert named == [str(status) for status in statuses.RECORDED]


def test_every_stop_has_a_title_and_a_summary_in_both_languages():
    for stop in Stop:
        if stop is Stop.INTERRUPTED:
            continue  # an interrupted grading is graded again: no student reads about it
        assert " / " in stopped.TITLES[stop]
        zh, en = stopped.summary(stop, timeout_seconds=600, memory_limit_mb=4096)
        assert zh and en and zh != en
        assert zh != stopped.summary(Stop.ERROR, timeout_seconds=600, memory_limit_mb=4096)[0] or stop is Stop.ERROR


def test_each_stop_has_one_gradebook_status_and_the_words_mean_one_thing():
    assert set(statuses.STATUS_OF_STOP) == set(Stop)
    assert all(status in Status for status in statuses.STATUS_OF_STOP.values())
    # "memory" is a gradebook status only; the stops say which memory: the limit or a dead kernel.
    assert "memory" not in {str(stop) for stop in Stop}
    assert Stop.MEMORY_LIMIT == "memory-limit" and statuses.STATUS_OF_STOP[Stop.MEMORY_LIMIT] == Status.MEMORY
    assert statuses.RETRYABLE <= set(statuses.RECORDED) and statuses.NOT_FAILED <= set(statuses.RECORDED)


def test_statuses_are_compared_as_the_enums_never_as_words():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare) or "status" not in ast.unparse(node).lower():
                continue
            sides = [node.left, *node.comparators]
            sides += [item for side in sides if isinstance(side, (ast.Tuple, ast.List, ast.Set)) for item in side.elts]
            if any(isinstance(side, ast.Constant) and side.value in STATUS_WORDS for side in sides):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)}")
    assert not found


def test_an_english_feedback_page_shows_only_the_english_half_of_a_question_not_checked():
    from fashion_kit.classroom import feedback

    english = feedback.in_language(stopped.NOT_CHECKED, "en")
    assert english.startswith("Not checked") and not feedback._CJK_TEXT.search(english)
    assert "這一題沒有被檢查" in feedback.in_language(stopped.NOT_CHECKED, "zh-TW")
