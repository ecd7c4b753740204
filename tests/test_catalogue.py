"""The catalogue of faulty submissions: every entry gets exactly the score it must get, per question.

tests/catalogue/catalogue.json describes each entry as edits of the reference solution; this module
turns them into notebooks, grades them all with the real autograder (queued at once, graded in
parallel by the session's ``grader``) and compares every question's score.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import nbformat
import pytest

from fashion_kit import assign, notebooks

from .test_grading import QUESTIONS

CATALOGUE = Path(__file__).resolve().parent / "catalogue" / "catalogue.json"
FIT = "history = model.fit(training_images, training_labels, epochs=5)"
# How each entry trains: its own fit, one step per epoch (five epochs in history, no real learning),
# or no fit at all. Entries whose verdict does not hinge on a trained model skip the minute of training.
TRAINING_EDITS = {
    "full": [],
    "quick": [{"replace": ["epochs=5)", "epochs=5, steps_per_epoch=1)"]}],
    "none": [{"replace": [FIT, "history = None"]}],
}
# Entries identical to a core grading share its cached result instead of grading twice.
SHARED_NAMES = {"dense64": "dense64"}

EDIT = {
    "oneOf": [
        {"type": "object", "required": ["replace"], "additionalProperties": False,
         "properties": {"replace": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}}},
        {"type": "object", "required": ["delete_cell"], "additionalProperties": False,
         "properties": {"delete_cell": {"type": "string", "minLength": 1}}},
        {"type": "object", "required": ["source"], "additionalProperties": False, "minProperties": 2,
         "maxProperties": 2, "properties": {"insert_before": {"type": "string", "minLength": 1},
                                            "insert_after": {"type": "string", "minLength": 1},
                                            "source": {"type": "string"}}},
    ]
}
SCHEMA = {
    "type": "object",
    "required": ["entries"],
    "properties": {"entries": {"type": "array", "minItems": 20, "items": {
        "type": "object",
        "required": ["name", "kind", "why", "training", "edits", "scores"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9-]+$"},
            "kind": {"enum": ["mistake", "crash", "fake", "equivalent"]},
            "why": {"type": "string", "minLength": 10},
            "training": {"enum": sorted(TRAINING_EDITS)},
            "edits": {"type": "array", "minItems": 1, "items": EDIT},
            "scores": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
        },
    }}},
}


class CatalogueError(ValueError):
    """An entry's edit does not fit the reference solution any more; the message names both."""


def load() -> list[dict]:
    doc = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    jsonschema.validate(doc, SCHEMA)
    return doc["entries"]


def _cells_with(nb, text: str, entry: str) -> list[int]:
    found = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and text in c.source]
    if not found:
        raise CatalogueError(f"{entry}: expected a code cell containing {text!r}, found none.")
    return found


def apply(nb, edits: list[dict], entry: str):
    """``nb`` with ``edits`` applied in order; an edit whose text is missing raises CatalogueError."""
    for edit in edits:
        if "replace" in edit:
            old, new = edit["replace"]
            for i in _cells_with(nb, old, entry):
                nb.cells[i].source = nb.cells[i].source.replace(old, new)
        elif "delete_cell" in edit:
            found = _cells_with(nb, edit["delete_cell"], entry)
            if len(found) != 1:
                raise CatalogueError(f"{entry}: expected one cell containing {edit['delete_cell']!r}, found {len(found)}.")
            del nb.cells[found[0]]
        else:
            anchor = edit.get("insert_before") or edit["insert_after"]
            found = _cells_with(nb, anchor, entry)
            at = found[0] if "insert_before" in edit else found[0] + 1
            nb.cells.insert(at, nbformat.v4.new_code_cell(edit["source"]))
    return nb


def mutant(entry: dict, base: Path, target: Path) -> Path:
    nb = apply(notebooks.read(base), TRAINING_EDITS[entry["training"]] + entry["edits"], entry["name"])
    for i, cell in enumerate(nb.cells):  # inserted cells need ids that are unique in the notebook
        cell["id"] = f"m{i:03d}"
    target.parent.mkdir(parents=True, exist_ok=True)
    notebooks.write(nb, target)
    return target


def grading_name(entry: dict) -> str:
    return SHARED_NAMES.get(entry["name"], f"catalogue-{entry['name']}")


ENTRIES = load()


def test_catalogue_is_well_formed():
    names = [e["name"] for e in ENTRIES]
    assert len(names) == len(set(names)), "entry names must be unique"
    for entry in ENTRIES:
        assert set(entry["scores"]) == set(QUESTIONS), f"{entry['name']}: scores must name every question"
        for question, score in entry["scores"].items():
            assert score <= QUESTIONS[question], f"{entry['name']}: {question} can score at most {QUESTIONS[question]}"
    kinds = {e["kind"] for e in ENTRIES}
    assert kinds == {"mistake", "crash", "fake", "equivalent"}
    for entry in ENTRIES:
        if entry["kind"] == "equivalent":
            assert entry["scores"] == QUESTIONS, f"{entry['name']}: an equivalent answer must get full marks"
        else:
            assert entry["scores"] != QUESTIONS, f"{entry['name']}: a faulty submission must lose points"


def test_every_edit_still_fits_the_reference_solution(tmp_path):
    base = Path(__file__).resolve().parents[1] / "solutions" / "en" / assign.NOTEBOOK
    for entry in ENTRIES:
        nb = notebooks.read(mutant(entry, base, tmp_path / f"{entry['name']}.ipynb"))
        assert nbformat.validate(nb) is None


def test_a_stale_edit_is_reported_with_what_was_expected(tmp_path):
    base = Path(__file__).resolve().parents[1] / "solutions" / "en" / assign.NOTEBOOK
    stale = {"name": "stale", "training": "full", "edits": [{"replace": ["Dense(999", "Dense(1"]}]}
    with pytest.raises(CatalogueError, match=r"stale: expected a code cell containing 'Dense\(999'"):
        mutant(stale, base, tmp_path / "stale.ipynb")


def selected_entries(session) -> list[dict]:
    """The entries this session will check (all of them, or those picked with -k)."""
    picked = {item.callspec.params["entry"]["name"] for item in session.items
              if item.originalname == "test_entry_gets_exactly_its_expected_scores"}
    return [e for e in ENTRIES if e["name"] in picked]


@pytest.fixture(scope="session")
def catalogue_submissions(request, built, grader, tmp_path_factory) -> dict[str, str]:
    """The selected entries built and queued at once, so the session's grader works through them in
    parallel."""
    work = tmp_path_factory.mktemp("catalogue")
    base = built.solutions["en"]
    names = {}
    for entry in selected_entries(request.session):
        names[entry["name"]] = grading_name(entry)
        grader.submit(names[entry["name"]], mutant(entry, base, work / f"{entry['name']}.ipynb"))
    return names


@pytest.mark.slow
@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_entry_gets_exactly_its_expected_scores(grader, catalogue_submissions, entry):
    outcome = grader(catalogue_submissions[entry["name"]])
    assert outcome.status == "graded", outcome.message + outcome.log[-3000:]
    found = {q: score for q, (score, _) in outcome.scores.items()}
    assert found == entry["scores"], (
        f"{entry['name']} ({entry['why']})\nexpected {entry['scores']}\nfound    {found}"
    )
