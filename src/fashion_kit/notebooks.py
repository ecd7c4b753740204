"""Small notebook transformations shared by the build and the grader."""

from __future__ import annotations

import copy
import hashlib
import re

import nbformat

from .contract import LANGUAGES  # noqa: F401  (the build and the grader share them)
LANG_TAG = "lang:"
# Inside code cells shared by both languages: a whole-line comment "# [zh-TW] ..." or "# [en] ..."
# is kept (without its marker) only in that language's notebook, and the lines between
# "# BEGIN zh-TW" and "# END zh-TW" exist only in the zh-TW notebook. So the students of each
# language read comments in their language, and the code itself has one owner.
COMMENT_MARKER = re.compile(r"^(?P<indent>\s*)# \[(?P<lang>[A-Za-z-]+)\] ?(?P<text>.*)$")
BLOCK_MARKER = re.compile(r"^\s*# (?P<edge>BEGIN|END) (?P<lang>[A-Za-z]{2}(?:-[A-Za-z]+)?)\s*$")

# The kernelspec every notebook of the kit carries; Otter's init cell needs a submission to match it.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def cell_language(cell) -> str | None:
    for tag in cell.get("metadata", {}).get("tags", []):
        if tag.startswith(LANG_TAG):
            return tag[len(LANG_TAG):]
    return None


def code_for_language(source: str, lang: str) -> str:
    """``source`` with only ``lang``'s comments and blocks (see COMMENT_MARKER, BLOCK_MARKER)."""
    kept, block = [], None
    for number, line in enumerate(source.split("\n"), start=1):
        edge = BLOCK_MARKER.match(line)
        if edge and edge["lang"] in LANGUAGES:
            opening = edge["edge"] == "BEGIN"
            if opening == (block is not None) or (not opening and edge["lang"] != block):
                raise ValueError(f"line {number}: {line.strip()!r} does not pair with a BEGIN/END {edge['lang']} line")
            block = edge["lang"] if opening else None
            continue
        if block not in (None, lang):
            continue
        comment = COMMENT_MARKER.match(line)
        if comment and comment["lang"] in LANGUAGES:
            if comment["lang"] == lang:
                kept.append(f"{comment['indent']}# {comment['text']}".rstrip())
            continue
        kept.append(line)
    if block is not None:
        raise ValueError(f"# BEGIN {block} has no # END {block}")
    return "\n".join(kept)


def for_language(nb, lang: str):
    """The master with only ``lang``'s narrative: cells tagged for another language are dropped,
    and shared code cells keep only ``lang``'s comments and blocks."""
    if lang not in LANGUAGES:
        raise ValueError(f"Unknown language {lang!r}; expected one of {', '.join(LANGUAGES)}.")
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if cell_language(c) in (None, lang)]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = code_for_language(cell.source, lang)
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
