"""A grading's points: each question's (score, possible) and their sums, computed here only.

A record's scores are ``{question: (score, possible)}``, read from results.json by
:func:`of_results`; the gradebook, the LMS files, the report, the terminal and the feedback pages add
them up with :func:`total` and :func:`possible`. The challenge bonus is no question (its test has no
points possible), so it is in neither sum: results.json's own ``score``, Gradescope's total, adds it.
"""

from __future__ import annotations


def of_results(results: dict) -> dict[str, tuple[float, float]]:
    """Each question's (score, possible) in a results.json; extra-credit tests are left out."""
    return {
        t["name"]: (float(t.get("score", 0)), float(t["max_score"]))
        for t in results.get("tests", [])
        if t.get("max_score")
    }


def total(scores) -> float:
    """The points earned: the sum of the questions' scores in ``{question: (score, possible)}``."""
    return sum(float(score) for score, _ in scores.values())


def possible(scores) -> float:
    """The points possible: the sum of the questions' maxima in ``{question: (score, possible)}``."""
    return sum(float(top) for _, top in scores.values())
