"""The same submission gets the same results.json: graded twice, and idle against loaded."""

from __future__ import annotations

import json
import os

import pytest

from fashion_kit import assign, contract, notebooks

from ..conftest import QUESTIONS, QUICK_FIT_ENV, QUICK_MIN_ACCURACY


def graded(results: dict) -> str:
    """results.json as the grade it records: all of it but how long the grading took."""
    return json.dumps({k: v for k, v in results.items() if k != contract.EXECUTION_TIME_KEY}, sort_keys=True)


@pytest.mark.slow
def test_grading_the_same_submission_twice_gives_identical_results(built, grader, tmp_path_factory):
    """Without the notebook's own set_random_seed, only the grader's seeding makes training repeatable.
    With the tests' quick fit (five steps over the shuffled 60,000 images): unseeded, the first
    weights alone would already differ."""
    nb = notebooks.read(built.solutions["en"])
    seeded = [c for c in nb.cells if c.cell_type == "code" and "keras.utils.set_random_seed(42)" in c.source]
    assert seeded, "the reference solution no longer seeds Keras itself; update this test"
    for cell in seeded:
        cell.source = cell.source.replace("keras.utils.set_random_seed(42)", "pass")
    path = tmp_path_factory.mktemp("determinism") / assign.NOTEBOOK
    notebooks.write(nb, path)
    first, second = grader.submit("unseeded-1", path, quick=True), grader.submit("unseeded-2", path, quick=True)
    first, second = first.result(), second.result()
    assert first.status == second.status == "graded", first.log[-3000:] + second.log[-3000:]
    assert first.scores == second.scores == {q: (p, p) for q, p in QUESTIONS.items()}
    measured = [o.results["extra_data"][contract.MEASURED_KEY]["accuracy"] for o in (first, second)]
    assert measured[0] == measured[1] and measured[0] >= QUICK_MIN_ACCURACY
    assert first.sandbox == "bubblewrap"
    assert graded(first.results) == graded(second.results)


@pytest.mark.slow
def test_machine_load_changes_no_grade(built, grader, tmp_path):
    """The reference solution graded while other processes keep every core busy gets the same
    results.json as its grading under the suite's usual load (each model's measurement is counted
    in CPU seconds). Both with the tests' quick fit: the claim is the grade's independence of the
    load, not the accuracy (the session's real reference grading proves that)."""
    import subprocess
    import sys

    from fashion_kit import run

    # The session's quick grading of the reference solution (core_submissions queues it under this
    # name), graded here when this test runs by itself, as `make test` runs it.
    first = grader.submit("solution-zh-TW", built.solutions["zh-TW"], quick=True).result()
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        second = run.grade(built.solutions["zh-TW"], grader.quick_zip, tmp_path / "loaded", env=QUICK_FIT_ENV)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    assert first.status == second.status == "graded", first.log[-3000:] + second.log[-3000:]
    assert first.score == first.possible
    assert graded(first.results) == graded(second.results)
