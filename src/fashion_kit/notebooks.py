"""Small notebook transformations shared by the build and the grader."""

from __future__ import annotations

import copy
import hashlib

import nbformat

LANGUAGES = ("zh-TW", "en")
LANG_TAG = "lang:"

# The kernelspec every notebook of the kit carries; Otter's init cell needs a submission to match it.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def cell_language(cell) -> str | None:
    for tag in cell.get("metadata", {}).get("tags", []):
        if tag.startswith(LANG_TAG):
            return tag[len(LANG_TAG):]
    return None


def for_language(nb, lang: str):
    """The master with only ``lang``'s narrative: cells tagged for another language are dropped."""
    if lang not in LANGUAGES:
        raise ValueError(f"Unknown language {lang!r}; expected one of {', '.join(LANGUAGES)}.")
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if cell_language(c) in (None, lang)]
    for cell in nb.cells:
        tags = [t for t in cell.metadata.get("tags", []) if not t.startswith(LANG_TAG)]
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["fashion_kit"] = {"language": lang}
    return nb


def normalize(nb):
    """Make a generated notebook byte-stable: no outputs, counts or volatile metadata, and cell ids
    derived from position and content so an unchanged master rebuilds to identical files."""
    nb = copy.deepcopy(nb)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata.pop("widgets", None)
    nb.nbformat, nb.nbformat_minor = 4, 5
    for i, cell in enumerate(nb.cells):
        digest = hashlib.sha1(f"{i}:{cell.cell_type}:{cell.source}".encode()).hexdigest()[:8]
        cell["id"] = f"c{i:03d}-{digest}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    return nb


def read(path):
    return nbformat.read(str(path), as_version=4)


def dumps(nb) -> str:
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def write(nb, path):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(dumps(nb))
