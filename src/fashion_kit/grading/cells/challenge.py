"""Cell: the challenge's entry, taken after the notebook's last cell.

A notebook that takes the challenge (``RUN_CHALLENGE = True``) enters the recipe its
``build_challenge_model()`` returns, not a model it trained: this cell calls the function once and
writes what Keras says of the returned model (``model.to_json()``, which holds the layers, their
settings and the compile settings) with the notebook's ``CHALLENGE_EPOCHS`` and
``CHALLENGE_BATCH_SIZE`` to the evidence folder. No weights leave the kernel: the grader builds the
model again from this configuration and trains it itself (:mod:`..challenge_recipe`,
:mod:`..trainer`). A notebook that does not take the challenge costs nothing here.

The file is written by the student's kernel; the trusted phase reads it as hostile JSON.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from ...contract import CHALLENGE_RECIPE_FILE
from . import kit_cell

# The same names the notebook's challenge section declares.
CELL = """\
def __fashion_kit_challenge__(folder={folder!r}):
    import json, os
    found = globals()
    if found.get("RUN_CHALLENGE") is not True or not callable(found.get("build_challenge_model")):
        return
    try:
        model = found["build_challenge_model"]()
        if not callable(getattr(model, "to_json", None)):
            raise TypeError(f"build_challenge_model() returned {{type(model).__name__}}, not a Keras model")
        try:
            config = json.loads(model.to_json())
        except Exception:  # a subclassed model: the grader refuses it by its class
            config = {{"class_name": type(model).__name__, "module": type(model).__module__, "config": {{}}}}
        recipe = {{"model": config, "epochs": found.get("CHALLENGE_EPOCHS"),
                   "batch_size": found.get("CHALLENGE_BATCH_SIZE")}}
        text = json.dumps(recipe)
    except Exception as e:
        text = json.dumps({{"error": (str(e) or type(e).__name__)[:300]}})
    with open(os.path.join(folder, {name!r}), "w", encoding="utf-8") as f:
        f.write(text)


__fashion_kit_challenge__()
del __fashion_kit_challenge__
"""


def apply(nb: nbformat.NotebookNode, folder: Path) -> None:
    """Append the challenge's cell; ``folder`` is the evidence folder."""
    nb.cells.append(kit_cell(CELL.format(folder=str(Path(folder).resolve()), name=CHALLENGE_RECIPE_FILE)))
