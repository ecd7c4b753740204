"""Pairs of submissions whose answers are near-identical, for the instructor to look at in the report.

Only what a student wrote counts: the notebook's answer cells (tagged ``otter_answer_cell``, as the
student notebook hands them out). Their code is compared with copydetect's winnowed fingerprints
(the method of MOSS), after copydetect's own filtering, so renamed variables, functions and strings,
comments and layout change nothing. Every fingerprint that also occurs in the starter code (the
student notebooks, ``student/*/fashion_mnist.ipynb``) or in the reference answers
(``solutions/*/fashion_mnist.ipynb``) is left out, as copydetect's boilerplate: blank notebooks, and
students who both wrote the reference answer, share nothing of their own.

A pair is flagged when the share of one student's own code (copydetect's similarity: overlapping
tokens over the tokens that are left) that also appears in the other's is at least
:data:`THRESHOLD`. It is a pointer for a person, never a verdict: nothing in the grades changes.

Cost: each notebook is fingerprinted once, then every pair compared (n·(n-1)/2 set intersections);
``benchmarks/similarity.py`` measures it for a class of 200.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from .. import paths
from ..contract import ANSWER_TAG, NOTEBOOK

# Share of a student's own answer code also found in another's at or above which a pair is flagged.
# Answers copied with renamed variables score about 1.0; two honest answers of the same shape that
# differ only in their numbers (layer sizes, epochs) share long runs of tokens and score up to about
# 0.7 (benchmarks/similarity.py), which is not worth an instructor's time.
THRESHOLD = 0.8
# copydetect's defaults: a match must be at least NOISE characters of filtered code, and one of
# GUARANTEE or more is always found (the winnowing window is their difference plus one).
NOISE, GUARANTEE = 25, 30
CHECK = "grader.check("


@dataclass
class Cell:
    label: str  # the question the cell answers (the grader.check after it), else "answer cell N"
    code_a: str
    code_b: str
    similarity: float  # of the two cells alone, the larger share


@dataclass
class Pair:
    a: str  # submission ids
    b: str
    similarity: float  # the larger of the two students' shares
    cells: list[Cell] = field(default_factory=list)  # the answer cells with code in common, in order


def templates() -> list[Path]:
    """The notebooks whose answer cells are no student's own: the starter code and the reference."""
    return sorted(paths.STUDENTS.glob(f"*/{NOTEBOOK}")) + sorted(paths.SOLUTIONS.glob(f"*/{NOTEBOOK}"))


def answer_cells(notebook: Path) -> list[tuple[str, str]]:
    """(label, code) of each answer cell; [] for a notebook that cannot be read. The answer cells are
    those tagged as such; in a notebook without the tags (the reference answers are built without
    them, and an editor may drop them), the code cell just before each question's check."""
    try:
        cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells") or []
    except (OSError, ValueError, AttributeError):
        return []
    code_cells = []
    for c in cells:
        if isinstance(c, dict) and c.get("cell_type") == "code":
            source = c.get("source") or ""
            metadata = c.get("metadata") if isinstance(c.get("metadata"), dict) else {}
            code_cells.append(("".join(source) if isinstance(source, list) else str(source),
                               ANSWER_TAG in (metadata.get("tags") or [])))
    tagged = any(is_answer for _, is_answer in code_cells)
    out, pending = [], []
    for i, (source, is_answer) in enumerate(code_cells):
        if source.startswith(CHECK):
            if not tagged and i and not code_cells[i - 1][0].startswith(CHECK):
                pending.append(code_cells[i - 1][0])
            name = source.split('"')[1] if '"' in source else source
            out += [(name, code) for code in pending]
            pending = []
        elif is_answer:
            pending.append(source)
    return out + [(f"answer cell {len(out) + i + 1}", code) for i, code in enumerate(pending)]


def _fingerprint(code: str, boilerplate):
    from copydetect import CodeFingerprint

    return CodeFingerprint("answers.py", NOISE, GUARANTEE - NOISE + 1, boilerplate=boilerplate,
                           language="python", fp=io.StringIO(code))


def _joined(cells: list[tuple[str, str]]) -> str:
    return "\n".join(code for _, code in cells)


def boilerplate_of(notebooks: list[Path]):
    """copydetect's boilerplate: every k-gram hash of the templates' answer cells (window 1), each
    alone and all of a notebook's joined, as a student's are."""
    import numpy as np
    from copydetect import CodeFingerprint

    hashes = []
    for nb in notebooks:
        cells = answer_cells(nb)
        for code in [code for _, code in cells] + [_joined(cells)]:
            hashes.extend(CodeFingerprint("template.py", NOISE, 1, language="python", fp=io.StringIO(code)).hashes)
    return np.unique(np.array(hashes, dtype=np.int64))


def _own(cells: list[tuple[str, str]], given: set[str]) -> list[tuple[str, str]]:
    """The cells a student changed: one left as handed out (or as the reference) joins nothing to
    its neighbours."""
    return [(label, code) for label, code in cells if code.strip() not in given]


def _share(first, second) -> float:
    from copydetect import compare_files

    _, (one, two), _ = compare_files(first, second)
    return float(max(one, two))


def similar_pairs(notebooks: dict[str, Path], template_notebooks: list[Path] | None = None,
                  threshold: float = THRESHOLD) -> list[Pair]:
    """The pairs of ``notebooks`` (submission id -> notebook) at or above ``threshold``, most similar
    first. Without a template (the student notebooks are not built) nothing is compared: every blank
    answer would look copied."""
    template_notebooks = templates() if template_notebooks is None else template_notebooks
    if not template_notebooks:
        return []
    boilerplate = boilerplate_of(template_notebooks)
    given = {code.strip() for nb in template_notebooks for _, code in answer_cells(nb)}
    students = {}
    for sid, nb in notebooks.items():
        cells = _own(answer_cells(nb), given)
        if cells:
            students[sid] = _Student(cells, _fingerprint(_joined(cells), boilerplate), boilerplate)
    pairs = []
    for a, b in combinations(sorted(students), 2):
        first, second = students[a], students[b]
        if len(first.whole.hashes) and len(second.whole.hashes):
            share = _share(first.whole, second.whole)
            if share >= threshold:
                pairs.append(Pair(a, b, share, _common_cells(first, second)))
    return sorted(pairs, key=lambda p: (-p.similarity, p.a, p.b))


class _Student:
    """One student's own answers: fingerprinted once, whole and question by question (the latter
    only when a pair is flagged)."""

    def __init__(self, cells: list[tuple[str, str]], whole, boilerplate):
        self.whole, self.boilerplate = whole, boilerplate
        self.answers: dict[str, list[str]] = {}
        for label, code in cells:
            self.answers.setdefault(label, []).append(code)
        self._prints: dict[str, object] = {}

    def code(self, label: str) -> str:
        return "\n".join(self.answers.get(label, []))

    def fingerprint(self, label: str):
        if label not in self._prints:
            self._prints[label] = _fingerprint(self.code(label), self.boilerplate)
        return self._prints[label]


def _common_cells(first: _Student, second: _Student) -> list[Cell]:
    """The answers to one question, side by side, that share code of their own, in question order."""
    found = []
    for label in first.answers:
        if label in second.answers:
            share = _share(first.fingerprint(label), second.fingerprint(label))
            if share > 0:
                found.append(Cell(label, first.code(label), second.code(label), share))
    return found
