"""One vocabulary: each file name and layout name is written once (contract.py), and a record's
points are added up by one function (points.py)."""

from __future__ import annotations

import ast

from fashion_kit import contract, paths, points, run
from fashion_kit.classroom import exports, report
from fashion_kit.classroom.store import Record
from fashion_kit.questions import layout as question_layout
from fashion_kit.statuses import CheckStatus, Status

PACKAGE = paths.ROOT / "src" / "fashion_kit"
# The names the kit and its zip share, each owned by contract.py.
NAMES = {contract.NOTEBOOK, contract.AUTOGRADER_ZIP_NAME, contract.OTTER_CONFIG_FILE, contract.RESULTS_FILE,
         contract.DATA_DIR, *contract.MODEL_FILES, contract.TEST_IMAGES_FILE, contract.CHALLENGE_RECIPE_FILE}


def modules(*owners: str):
    """Every module of the kit but ``owners`` and the question folders' files (the notebook's own
    code: its answers, its tests, its checks), parsed."""
    for path in sorted(PACKAGE.rglob("*.py")):
        in_a_question = question_layout.NAME.match(path.parent.name) and path.parent.parent == question_layout.FOLDER
        if path.name not in owners and not in_a_question:
            yield path.relative_to(PACKAGE), ast.parse(path.read_text(encoding="utf-8"))


def test_file_and_layout_names_are_written_only_in_the_contract():
    # The checks are copied into the notebooks, where no kit is to import the name from; a question's
    # answer and test are the notebook's own code.
    found = [f"{path}:{node.lineno}: {node.value}" for path, tree in modules("contract.py", "checks.py")
             for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in NAMES]
    assert not found


def test_every_total_of_a_record_is_the_one_sum():
    scores = {"q1_load_data": (1.0, 1.0), "q3_normalize": (0.5, 2.0)}
    record = Record(id="anna", original_name="anna.ipynb", status=Status.GRADED,
                    scores={q: list(pair) for q, pair in scores.items()})
    outcome = run.Outcome("anna.ipynb", Status.GRADED, scores=scores)
    assert (points.total(scores), points.possible(scores)) == (1.5, 3.0)
    assert record.total == outcome.score == report.total_of(record) == exports.total_of(record) == 1.5
    assert record.possible == outcome.possible == report.possible_of(record) == 3.0
    assert exports.total_of(Record(id="bob", original_name="bob.ipynb", status=Status.INVALID)) is None


def test_the_challenge_bonus_is_no_question_of_a_records_points():
    results = {"score": 14, "tests": [
        {"name": "q1_load_data", "score": 1, "max_score": 1, "status": CheckStatus.PASSED},
        {"name": contract.PUBLIC_CHECK_TEST.format(question="q1_load_data"), "status": CheckStatus.PASSED},
        {"name": contract.CHALLENGE_TEST, "score": 1, "max_score": 0}]}
    assert points.of_results(results) == {"q1_load_data": (1.0, 1.0)}

