"""The catalogue of beginner mistakes: what the notebook's own check says, and what the grade says.

Each question folder's mistakes.json (src/fashion_kit/questions/<name>/) describes the beginner
mistakes of its question as edits of the solution's answer cells (the code cell before each
``grader.check``), with the exact message the student must read in the notebook's check and on the
feedback page (each line "中文 / English"; ``{n}`` stands for a measured number), and the score phase 2
gives. The messages are reviewed there, as text, beside the question's own check.

Each entry's answer cells run in this process, the way the grader's kernel runs them: the grader's
own evidence cells (the fit recorder, and after each question the collector that writes its values
and the model snapshot) run between them. After each question the master's own test function of the
question (the notebook's ``grader.check``) runs on the kernel's variables. Phase 2 then decides every
question from the evidence, the models measured by the grader's evaluator: the notebook's check and
the grade must agree on every question the entry reaches (a public check never says "passed" for
what the grade fails, nor fails what the grade passes). Only entries whose claim needs a trained
model train for real; the others train five one-step epochs (the whole training set as one batch).
The cells after the entry's question (or its ``again_after``) are not run.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from pathlib import Path

import jsonschema
import nbformat
import pytest

from fashion_kit import checks, contract, data, notebooks, paths, questions
from fashion_kit.grading import evaluator, verdicts
from fashion_kit.grading.cells import evidence
from fashion_kit.questions import BY_NAME, check_code, layout, points_in_master
from fashion_kit.settings import Settings

from .conftest import folder_entries, unique_names

FIT = "history = model.fit(training_images, training_labels, epochs=5)"
QUICK_FIT = "history = model.fit(training_images, training_labels, epochs=5, batch_size=60000)"
MESSAGE = {"type": "array", "items": {"type": "string", "pattern": " / "}}
# A question folder's mistakes.json: at least one entry, each about the folder's question.
ENTRY = {
    "type": "object", "additionalProperties": False,
    "required": ["name", "why", "edits", "public", "grade"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9-]+$"},
        "why": {"type": "string", "minLength": 10},
        "training": {"enum": ["full", "quick"]},
        "edits": {"type": "array", "items": {"type": "array", "items": {"type": "string"}, "minItems": 2,
                                             "maxItems": 2}},
        # Model files an earlier run left in the folder.
        "files": {"type": "object", "additionalProperties": {"enum": ["untrained model"]}},
        # The question's check is run once more after this question's cell (a check run again later).
        "again_after": {"enum": sorted(BY_NAME)},
        # What the notebook's own check of the folder's question says: [] when it passes.
        "public": MESSAGE,
        "grade": {"type": "object", "additionalProperties": False, "required": ["score", "messages"],
                  "properties": {"score": {"type": "number", "minimum": 0}, "messages": MESSAGE}},
    },
}
FOLDER_SCHEMA = {"type": "object", "required": ["entries"], "additionalProperties": False,
                 "properties": {"entries": {"type": "array", "minItems": 1, "items": ENTRY}}}


def load(folders=None) -> list[dict]:
    """The mistakes of each question folder (``folders``: the registry's), each with its folder's
    name as its ``question``."""
    entries = [{**entry, "question": folder.name}
               for folder, entry in folder_entries(layout.MISTAKES_FILE, FOLDER_SCHEMA, folders)]
    return unique_names(entries, "mistakes")


def test_a_question_folders_mistakes_are_read_as_its_own(tmp_path):
    entry = next(e for e in load() if e["question"] == "q10_param_count")
    folder = tmp_path / "q10_param_count"
    folder.mkdir()
    own = {k: v for k, v in entry.items() if k != "question"}
    (folder / layout.MISTAKES_FILE).write_text(json.dumps({"entries": [{**own, "name": "from-the-folder"}]}),
                                               encoding="utf-8")
    assert load([folder])[-1] == {**entry, "name": "from-the-folder"}
    (folder / layout.MISTAKES_FILE).write_text(json.dumps({"entries": [entry]}), encoding="utf-8")
    with pytest.raises(jsonschema.ValidationError, match="question"):
        load([folder])  # the folder says which question: an entry does not


def answer_cells() -> list[tuple[str | None, str]]:
    """The solution's code the student writes, in order: (question, its answer cell); the set-up cell
    that imports TensorFlow comes first, with no question."""
    cells = nbformat.read(paths.SOLUTIONS / "en" / contract.NOTEBOOK, as_version=4).cells
    found: list[tuple[str | None, str]] = []
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        if "import tensorflow as tf" in cell.source and not found:
            found.append((None, cell.source))
        match = re.match(r'grader\.check\("(\w+)"\)', cell.source.strip())
        if match and cells[i - 1].cell_type == "code":
            found.append((match[1], cells[i - 1].source))
        elif match:
            found.append((match[1], ""))
    return found


def master_checks() -> dict[str, object]:
    """The master's test function of each question (the notebook's ``grader.check``), by question."""
    found, env = {}, {}
    for cell in notebooks.read(paths.MASTER).cells:
        question = re.search(r'CHECK\("(\w+)"', cell.source) if cell.cell_type == "code" else None
        if question:
            exec(check_code.expand(cell.source), env)
            name = re.search(r"^def (test_\w+)", cell.source, re.M)[1]
            found[question[1]] = env[name]
    return found


def notebook_check(test, env) -> list[str]:
    """What the notebook's check says: [] when it passes, else its message's lines. Otter hands each
    parameter of the test the variable of that name (None when there is none)."""
    try:
        test(**{name: env.get(name) for name in inspect.signature(test).parameters})
    except AssertionError as failure:
        return str(failure).splitlines()
    return []


def run_entry(entry: dict, folder: Path, monkeypatch) -> tuple[dict, dict, dict]:
    """Run the entry's answer cells with the grader's evidence cells; (the notebook's check of each
    question reached, the evidence values, the grader's measured models)."""
    import keras

    monkeypatch.chdir(folder)
    monkeypatch.setattr(keras.Model, "fit", keras.Model.fit)  # the recorder patches it: undone after
    cells = answer_cells()
    for old, new in entry["edits"]:
        where = [i for i, (_, code) in enumerate(cells) if old in code]
        assert where, f"{entry['name']}: no answer cell holds {old!r}"
        cells[where[0]] = (cells[where[0]][0], cells[where[0]][1].replace(old, new, 1))
    if entry.get("training") != "full":
        cells = [(question, code.replace(FIT, QUICK_FIT)) for question, code in cells]
    for name in entry.get("files", {}):  # a file left in the folder by an earlier run
        keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")]).save(folder / name)
    proof = folder / "evidence"
    proof.mkdir()
    env: dict = {}
    exec(evidence.helper_cell(str(proof)), env)
    tests, public = master_checks(), {}
    # The cells after the last question the entry is about are not run: its claim is decided there.
    last = max(questions.NAMES.index(entry["question"]), questions.NAMES.index(entry.get("again_after", entry["question"])))
    cells = [(q, code) for q, code in cells if q is None or questions.NAMES.index(q) <= last]
    for question, code in cells:
        try:
            exec(compile(code, f"<{question}>", "exec"), env)
        except Exception:  # noqa: BLE001 - the student's cell fails; the notebook goes on
            pass
        if question is None:
            continue
        if question in tests:
            public[question] = notebook_check(tests[question], env)
        exec(evidence.EVIDENCE_CELL.format(question=question), env)
        if question == entry.get("again_after"):
            public[entry["question"]] = notebook_check(tests[entry["question"]], env)
    values = {q: json.loads((proof / contract.QUESTION_VALUES.format(question=q)).read_text())
              for q in public if (proof / contract.QUESTION_VALUES.format(question=q)).exists()}
    return public, values, measured_models(folder, proof)


def measured_models(folder: Path, proof: Path) -> dict:
    """The grader's evaluator's facts of each snapshot and of the student's file, as core.measure asks."""
    found = {}
    own = proof / contract.TEST_IMAGES_FILE
    wanted = [(proof / contract.MODEL_SNAPSHOT.format(question=q), q) for q in questions.WITH_SNAPSHOT]
    wanted += [(folder / name, "student") for name in contract.MODEL_FILES]
    for path, key in wanted:
        if key in found or not path.exists():
            continue
        found[key] = evaluator.answer({"data": os.environ[data.ENV_VAR], "model": str(path),
                                       "accuracy": key == questions.Q_EVALUATE,
                                       "own_images": str(own) if key == questions.Q_EVALUATE and own.exists() else None})
    return found


def matches(expected: list[str], found: list[str]) -> bool:
    """The messages are the same, ``{n}`` standing for any number."""
    if len(expected) != len(found):
        return False
    for want, got in zip(expected, found):
        pattern = "".join(r"-?\d+(?:\.\d+)?" if part == "{n}" else re.escape(part)
                          for part in re.split(r"(\{n\})", want))
        if not re.fullmatch(pattern, got):
            return False
    return True


@pytest.fixture(scope="module")
def offline_data(data_dir):
    data.install(data_dir)
    return data_dir


# Slow, every entry: each runs the lesson's cells with Keras in this process (a fit, the grader's
# evaluator), seconds each even with the one-step fit; make test-fast leaves them to make test.
@pytest.mark.slow
@pytest.mark.parametrize("entry", [pytest.param(e, id=e["name"]) for e in load()])
def test_the_notebooks_check_and_the_grade_say_the_same(entry, offline_data, tmp_path, monkeypatch):
    public, values, models = run_entry(entry, tmp_path, monkeypatch)
    settings = Settings()
    points = points_in_master(paths.MASTER)
    question = entry["question"]
    grades = {}
    for name in public:
        fraction, messages = BY_NAME[name].decide(verdicts.phase2_values(name, values.get(name), models, settings,
                                                                         values))
        grades[name] = (round(points[name] * fraction, 5), messages if fraction < 1 else [])
    assert question in public, f"{entry['name']}: the notebook never reached {question}'s check"
    assert matches(entry["public"], public[question]), (
        f"{entry['name']}: the notebook's check of {question} says\n" + "\n".join(public[question]))
    score, messages = grades[question]
    assert score == entry["grade"]["score"], f"{entry['name']}: {question} scores {score}: {messages}"
    assert matches(entry["grade"]["messages"], messages), (
        f"{entry['name']}: the grade of {question} says\n" + "\n".join(messages))
    disagree = {name: (public[name], grades[name]) for name in public
                if (not public[name]) != (grades[name][0] == points[name])}
    assert not disagree, f"{entry['name']}: the notebook's check and the grade disagree on {disagree}"


def test_every_message_is_chinese_then_english():
    for entry in load():
        for line in entry["public"] + entry["grade"]["messages"]:
            chinese, _, english = line.partition(" / ")
            assert re.search(r"[\u4e00-\u9fff]", chinese) and not re.search(r"[\u4e00-\u9fff]", english), line
