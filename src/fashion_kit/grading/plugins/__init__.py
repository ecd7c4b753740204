"""Otter plugins the grader runs in phase 1, inside the sandbox, around the student's notebook.

Each inserts cells of its own into the notebook before it runs. They make grading deterministic and
quiet (seeding), count each question where it is answered (in_place), leave a trail for a run that
is stopped (checkpoints) and leave the evidence the trusted phase reads (evidence). What they leave
is written by the student's kernel, so the trusted phase reads it as data and never trusts it blindly.
"""

from __future__ import annotations

import nbformat

# Cells the kit inserts carry this tag, so no other plugin mistakes them for the student's.
KIT_TAG = "fashion_kit"


def kit_cell(source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [KIT_TAG]
    return cell


def is_kit_cell(cell) -> bool:
    return KIT_TAG in cell.get("metadata", {}).get("tags", [])


def names(folder: str, seed: int) -> list:
    """Otter's plugin list for phase 1, in the order they must run; ``folder`` is the evidence folder."""
    here = __name__
    return [
        {f"{here}.seeding.SeedTensorFlow": {"seed": seed}},
        f"{here}.in_place.CheckEachQuestionInPlace",
        {f"{here}.evidence.Evidence": {"folder": folder}},
        {f"{here}.checkpoints.Checkpoints": {"folder": folder}},
    ]
