"""The kit's cells around the student's notebook, inserted before phase 1 runs it in the sandbox.

Each module is one transformation of the notebook (an ``nbformat`` node, changed in place):
grading is deterministic and quiet (seeding), the notebook's own checks cost nothing
(grading_mode), the evidence the trusted phase measures is saved where each question is answered
(evidence), the challenge's recipe is taken after the last cell (challenge) and a trail survives a
run that is stopped (checkpoints). What they leave is written by the student's kernel, so the
trusted phase reads it as data and never trusts it blindly. :func:`prepare` applies them in the
one order that works.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

# Cells the kit inserts carry this tag, so no other transformation mistakes them for the student's.
KIT_TAG = "fashion_kit"


# Kernel-side code the kit's cells share: wraps a Keras method so that ``edit`` changes its bound
# arguments before each call; a call Keras would refuse gets Keras's own error, as without the grader.
ARGUMENT_EDITOR = """\
def __fashion_kit_edit_arguments__(method, edit):
    import functools, inspect
    signature = inspect.signature(method)

    @functools.wraps(method)
    def edited(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:  # wrong arguments: Keras's own error, as without the grader
            return method(*args, **kwargs)
        edit(bound.arguments)
        return method(*bound.args, **bound.kwargs)
    return edited


"""


def kit_cell(source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [KIT_TAG]
    return cell


def is_kit_cell(cell) -> bool:
    return KIT_TAG in cell.get("metadata", {}).get("tags", [])


def prepare(nb: nbformat.NotebookNode, *, evidence: Path, seed: int, quick_fit: bool = False) -> nbformat.NotebookNode:
    """The notebook phase 1 executes: the student's ``nb`` with the kit's cells; ``evidence`` is
    the evidence folder. ``quick_fit`` is the kit's tests' switch (:mod:`.quick_fit`)."""
    from . import challenge, checkpoints, evidence as evidence_cells, grading_mode, quick_fit as quick_fit_cells, seeding

    seeding.apply(nb, seed)
    if quick_fit:
        quick_fit_cells.apply(nb)
    evidence_cells.apply(nb, evidence)
    challenge.apply(nb, evidence)  # after every question's evidence: it can cost only the challenge
    checkpoints.apply(nb, evidence)
    # Last, as Otter does it: cells tagged otter_ignore go (their checkpoints numbered them, so a
    # cell's number is the one the student sees), and the stand-in for Otter is in place before
    # anything else runs.
    grading_mode.enter(nb)
    return nb
