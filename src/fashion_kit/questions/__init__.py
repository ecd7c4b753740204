"""The assignment's questions: one folder each in this package, found by this registry.

Each graded question is one folder (``q4_model/``, laid out as :mod:`.layout` says): its points and
settings, its text in both languages, its reference answer, its public test, its check and its
catalogue entries. The registry reads the folders in their numbers' order; nothing else lists the
questions. A question's check is ``check_<name>`` on the values ``collect_<name>`` collects, both in
its folder's ``check.py``: the one implementation the notebook's test (copied in by the build), the
grader's evidence cell and phase 2 all run.

The master notebook's question blocks are built from the folders (:mod:`.master`), so the points the
master declares are the folders' own; the autograder's test files carry them on, read by
:func:`points_in_tests` when a submission is graded.

Adding a question: one new folder; see docs/adding-a-question.md.

The registry is also the assignment's one door for the grading core, which imports nothing of the
checks directly (docs/architecture.md): besides each question's verdict (:meth:`Question.decide`)
it hands on the collectors' code for the grader's evidence cell (:func:`collectors_code`) and the
few facts of the checks the grader must share with them, named below.
"""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import check_code, layout
# What the grading core needs of the checks beyond a verdict: a model's facts cut exactly as the
# checks compare them (the evaluator measures the model files with these), the digests the evidence
# cell recognises the training set by, its switch that leaves measuring the models to phase 2, and
# the facts the notebook's checks and the grade share.
from ..checks import (MEASURED_BY_GRADER, OFFICIAL_DIGESTS, TRAINING_EXAMPLES, TRAINING_EXAMPLES_DIGEST,  # noqa: F401
                     compile_facts, function_name, input_shape_of, layer_rows, other_weights_problem,
                     weights_digest)
from ..contract import LANGUAGES, TESTS_DIR, natural_key
from ..errors import KitError


@dataclass(frozen=True)
class Question:
    name: str
    # What the grader checks, for people: (Traditional Chinese, English).
    checks: tuple[str, str]
    # True when the grade also needs the notebook's `model` as it was right after this question.
    snapshot: bool = False
    points: float = 1.0
    # Otter's other settings of the question's block (all_or_nothing, ...), as question.toml gives them.
    otter: dict = field(default_factory=dict, hash=False)
    folder: Path | None = None

    def describe(self, language: str) -> str:
        return self.checks[1] if language == "en" else self.checks[0]

    @property
    def collect(self) -> str:
        """The function of the question's check.py that collects its values."""
        return f"collect_{self.name}"

    @property
    def check(self) -> str:
        """The function of the question's check.py that decides it from its values."""
        return f"check_{self.name}"

    @property
    def module(self):
        """The question's check.py, imported."""
        return importlib.import_module(f"{__name__}.{self.name}.{Path(layout.CHECK_FILE).stem}")

    def decide(self, values, public: bool = False) -> tuple[float, list[str]]:
        """(fraction of the points, messages) of this question's check on ``values``."""
        return getattr(self.module, self.check)(values, public=public)


class BadQuestion(KitError, ValueError):
    """A question's folder does not say what the kit needs; the message says what and where."""


def read(folder: Path) -> Question:
    """The question of ``folder``, from its question.toml."""
    path = folder / layout.QUESTION_FILE
    try:
        found = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise BadQuestion(f"{path} is not valid TOML: {e}") from None
    described = found.pop("checks", None)
    points = found.pop("points", None)
    snapshot = found.pop("snapshot", False)
    if not isinstance(described, dict) or set(described) != set(LANGUAGES) \
            or not all(isinstance(v, str) and v for v in described.values()):
        raise BadQuestion(f"{path}: expected a [checks] table with one sentence for each of "
                          f"{', '.join(LANGUAGES)}, found {described!r}")
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
        raise BadQuestion(f"{path}: expected points = a positive number, found {points!r}")
    if not isinstance(snapshot, bool):
        raise BadQuestion(f"{path}: expected snapshot = true or false, found {snapshot!r}")
    if "name" in found:
        raise BadQuestion(f"{path}: expected no name = ...: the folder's name, {folder.name}, is the question's")
    return Question(folder.name, (described["zh-TW"], described["en"]), snapshot, float(points), found, folder)


QUESTIONS = tuple(read(folder) for folder in layout.folders())
BY_NAME = {q.name: q for q in QUESTIONS}
NAMES = tuple(BY_NAME)
# The points possible: every question's points.
TOTAL = sum(q.points for q in QUESTIONS)
# The questions whose grade needs the `model` snapshot taken where each is answered, in order.
WITH_SNAPSHOT = tuple(q.name for q in QUESTIONS if q.snapshot)
# The questions the grading core treats by name: those it measures a model for.
Q_MODEL, Q_COMPILE, Q_FIT, Q_SAVE_LOAD, Q_EVALUATE = "q4_model", "q5_compile", "q6_fit", "q7_save_load", "q8_evaluate"
Q_ACCURACY = "q9_accuracy"  # measured on Q_EVALUATE's snapshot: the model the notebook evaluated

# Helpers of the checks that the grader's evidence cell runs beside the collectors: the fit recorder's
# keys and digests of what a fit trained on and of the weights it left.
EVIDENCE_HELPERS = ("describe_array", "key_weights", "example_keys", "examples_digest", "weights_digest")


def collectors_code() -> str:
    """The code of every question's collector and of :data:`EVIDENCE_HELPERS`, copied from the
    checks, for the grader's evidence cell."""
    return check_code.source_for(*(q.collect for q in QUESTIONS), *EVIDENCE_HELPERS)


# The master's question blocks: a raw cell `# BEGIN QUESTION` followed by YAML lines `key: value`.
_BLOCK = re.compile(r"^\s*#\s*BEGIN QUESTION\s*$", re.MULTILINE)
_LINE = re.compile(r"^\s*(\w+)\s*:\s*(.+?)\s*$")


def blocks_in_master(master: Path | str) -> list[dict]:
    """Every ``# BEGIN QUESTION`` block of the master notebook, as a dict of its settings, in order
    (the optional, manually graded challenge included)."""
    nb = json.loads(Path(master).read_text(encoding="utf-8"))
    found = []
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if cell.get("cell_type") != "raw" or not _BLOCK.search(source):
            continue
        block = {}
        for line in source.splitlines()[1:]:
            m = _LINE.match(line)
            if m:
                key, value = m.groups()
                block[key] = _value(value)
        found.append(block)
    return found


def _value(text: str):
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        return text


def points_in_master(master: Path | str) -> dict[str, float]:
    """The graded questions and their points, as the master declares them (manual questions left out)."""
    return {b["name"]: float(b.get("points", 0)) for b in blocks_in_master(master) if not b.get("manual")}


class NoQuestions(KitError, ValueError):
    """The autograder's tests are missing or do not declare their questions; the message says which."""


def points_in_tests(files) -> dict[str, float]:
    """The graded questions and their points, from the autograder's test files, in natural order.

    ``files`` gives each test file as (file name, its text). Otter's test files declare ``name`` and
    ``points`` as plain assignments, read here with ``ast``: nothing of them runs (importing Otter's
    loader would also keep pandas in the grading core's process)."""
    found = {}
    for filename, text in sorted(files, key=lambda item: natural_key(Path(item[0]).stem)):
        if Path(filename).stem == "__init__":
            continue
        name, points = _declared(text)
        if name is None:
            raise NoQuestions(f"{filename} declares no `name = \"...\"` and `points = N`; "
                              "rebuild the autograder with fashion-kit assign.")
        found[name] = points
    if not found:
        raise NoQuestions("the autograder holds no tests; rebuild it with fashion-kit assign.")
    return found


def points_in_autograder(path: Path | str) -> dict[str, float]:
    """:func:`points_in_tests` of an autograder zip or of its unpacked ``tests/`` folder."""
    import zipfile

    path = Path(path)
    if path.is_dir():
        return points_in_tests((p.name, p.read_text(encoding="utf-8")) for p in path.glob("*.py"))
    try:
        with zipfile.ZipFile(path) as zf:
            files = [(n, zf.read(n).decode("utf-8", "replace")) for n in zf.namelist()
                     if n.startswith(f"{TESTS_DIR}/") and n.endswith(".py") and n.count("/") == 1]
    except (OSError, zipfile.BadZipFile) as e:
        raise NoQuestions(f"{path} is not a readable autograder zip ({e}); build it again: fashion-kit assign") from None
    return points_in_tests(files)


def _declared(text: str) -> tuple[str | None, float | None]:
    import ast

    values = {}
    try:
        body = ast.parse(text).body
    except SyntaxError:
        return None, None
    for node in body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    name, points = values.get("name"), values.get("points")
    ok = isinstance(name, str) and isinstance(points, (int, float)) and not isinstance(points, bool)
    return (name, float(points)) if ok else (None, None)
