"""The assignment's questions: the kit's one table of them.

Each graded question of the master notebook (a ``# BEGIN QUESTION`` block) has one row here: its
name, what its check looks at (the feedback pages' "what it checks" column, in both languages) and
whether its grade needs the ``model`` snapshot the grader saves where the question is answered. Its
check is ``checks.check_<name>`` on the values ``checks.collect_<name>`` collects: the one
implementation the notebook's test (copied in by the build), the grader's evidence cell and phase 2
all run.
Points are not repeated here: they live in the master's ``points:`` lines, read by
:func:`points_in_master` when the kit is built and tested, and from the autograder's own test files
when a submission is graded. A fast test keeps this table and the master's blocks the same.

Adding a question: its block in the master, a row here, its collect_/check_ pair in checks.py, and (when it has a wrong answer worth
pinning) a catalogue entry; see docs/adding-a-question.md.

The registry is also the assignment's one door for the grading core, which imports nothing of the
checks directly (docs/architecture.md): besides each question's verdict (:meth:`Question.decide`)
it hands on the collectors' code for the grader's evidence cell (:func:`collectors_code`) and the
few facts of the checks the grader must share with them, named below.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from . import check_code, checks
# What the grading core needs of the checks beyond a verdict: a model's facts cut exactly as the
# checks compare them (the evaluator measures the model files with these), the digests the evidence
# cell recognises the training set by, its switch that leaves measuring the models to phase 2, and
# the facts the notebook's checks and the grade share.
from .checks import (MEASURED_BY_GRADER, OFFICIAL_DIGESTS, TRAINING_EXAMPLES, TRAINING_EXAMPLES_DIGEST,  # noqa: F401
                     compile_facts, function_name, input_shape_of, layer_rows, other_weights_problem,
                     weights_digest)
from .contract import TESTS_DIR, natural_key
from .errors import KitError


@dataclass(frozen=True)
class Question:
    name: str
    # What the grader checks, for people: (Traditional Chinese, English).
    checks: tuple[str, str]
    # True when the grade also needs the notebook's `model` as it was right after this question.
    snapshot: bool = False

    def describe(self, language: str) -> str:
        return self.checks[1] if language == "en" else self.checks[0]

    @property
    def collect(self) -> str:
        """The function of :mod:`fashion_kit.checks` that collects this question's values."""
        return f"collect_{self.name}"

    @property
    def check(self) -> str:
        """The function of :mod:`fashion_kit.checks` that decides this question from its values."""
        return f"check_{self.name}"

    def decide(self, values, public: bool = False) -> tuple[float, list[str]]:
        """(fraction of the points, messages) of this question's check on ``values``."""
        return getattr(checks, self.check)(values, public=public)


QUESTIONS = (
    Question("q1_load_data", ("用 load_data() 載入 Fashion-MNIST：四個陣列的形狀與標籤 0 到 9",
                              "Fashion-MNIST loaded with load_data(): the four arrays' shapes and labels 0 to 9")),
    Question("q2_class_names", ("依標籤順序列出 10 個類別名稱（標籤 9 是 Ankle boot）",
                                "the 10 class names in label order (label 9 is Ankle boot)")),
    Question("q3_normalize", ("兩組圖片都除以 255.0，數值在 0 到 1 之間",
                              "both image sets divided by 255.0, values from 0 to 1")),
    Question("q4_model", ("模型依序是 Flatten(28×28)、Dense(128, relu)、Dense(10, softmax)（全對才給分）",
                          "the model Flatten(28×28) → Dense(128, relu) → Dense(10, softmax) (all or nothing)"),
             snapshot=True),
    Question("q5_compile", ("compile 用 adam、sparse_categorical_crossentropy 與 accuracy",
                            "compiled with adam, sparse_categorical_crossentropy and accuracy"), snapshot=True),
    Question("q6_fit", ("訓練 5 個 epoch，並保留 history", "trained for 5 epochs, history kept"), snapshot=True),
    Question("q7_save_load", ("存成 fashion_mnist_model.keras，再讀回成 loaded_model",
                              "saved as fashion_mnist_model.keras and loaded back as loaded_model"), snapshot=True),
    Question("q8_evaluate", ("用 model.evaluate(...) 算出 test_loss 與 test_acc",
                             "test_loss and test_acc from model.evaluate(...)"), snapshot=True),
    # Measured on question 8's snapshot: the model the notebook evaluated.
    Question("q9_accuracy", ("評分程式用自己的測試資料評估你訓練的模型，準確率要達到門檻",
                             "the grader evaluates your trained model on its own copy of the test set; "
                             "it must reach the threshold")),
    Question("q10_param_count", ("手算參數數量：784×128+128、128×10+10 與總和",
                                 "the parameter count by hand: 784×128+128, 128×10+10 and their sum")),
)
BY_NAME = {q.name: q for q in QUESTIONS}
NAMES = tuple(BY_NAME)
# The questions whose grade needs the `model` snapshot taken where each is answered, in order.
WITH_SNAPSHOT = tuple(q.name for q in QUESTIONS if q.snapshot)
# The questions the grading core treats by name: those it measures a model for.
Q_MODEL, Q_COMPILE, Q_FIT, Q_SAVE_LOAD, Q_EVALUATE = WITH_SNAPSHOT
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
