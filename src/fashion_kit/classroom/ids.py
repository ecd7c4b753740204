"""Safe submission ids: data for people and programs, and the name of a folder in the output.

An id is one path component made of letters, digits, ``.``, ``_`` and ``-`` (never starting with ``.``
or ``-``): Latin letters lose their accents (``José`` -> ``Jose``), and letters of other scripts are
kept as they are, in NFC (``王小明.ipynb`` -> ``王小明``), since a transliteration would be a guess and
``submission`` says nothing. It is unique among the batch's ids even ignoring case (macOS and Windows
folders ignore it), and never the name of one of the batch's own outputs (``gradebook.csv``,
``report.html``, ...). What the student uploaded and Gradescope's id are kept beside it as data, so
nothing an upload is called can name a path.
"""

from __future__ import annotations

import re
import unicodedata

from ..uploads import printable
from .store import OUTPUT_NAMES

MAX_LENGTH = 64
_OUTSIDE_ALPHABET = re.compile(r"[^\w.-]+")
# Names Windows refuses for a file whatever its extension: an output folder may be copied there.
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
FALLBACK = "submission"


def _letter(ch: str) -> str:
    """One character of an id: a Latin letter without its accent, a letter or digit of any other
    script as it is (full-width forms made narrow), anything else a space."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    # A space stands for "not in an id": base_id turns each run of them into one underscore.
    if plain.isascii():
        return "".join(c if c.isalnum() or c in "._-" else " " for c in plain) or " "
    if unicodedata.category(ch)[0] in "LN" and ch.isprintable():
        return unicodedata.normalize("NFKC", ch)
    return " "


def base_id(name: str) -> str:
    """The id ``name`` suggests: accents dropped, other scripts kept, anything else an underscore."""
    folded = "".join(_letter(ch) for ch in unicodedata.normalize("NFC", printable(name)))
    folded = unicodedata.normalize("NFC", folded)
    safe = _OUTSIDE_ALPHABET.sub("_", folded).strip("._-")[:MAX_LENGTH].rstrip("._-")
    if not safe or _reserved(safe):
        return f"{FALLBACK}_{safe}" if safe else FALLBACK
    return safe


def _reserved(candidate: str) -> bool:
    low = candidate.lower()
    return low in OUTPUT_NAMES or low.split(".", 1)[0] in _WINDOWS_DEVICES


def assign(names: list[str]) -> list[str]:
    """One safe id per name, in the same order: unique even ignoring case. Names are handled in
    sorted order, so the same uploads always get the same ids, however the folder lists them."""
    order = sorted(range(len(names)), key=lambda i: (printable(names[i]).casefold(), printable(names[i]), i))
    taken: set[str] = set()
    ids = [""] * len(names)
    for i in order:
        base = base_id(names[i])
        candidate, n = base, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{base[:MAX_LENGTH - 6]}-{n}"
        taken.add(candidate.lower())
        ids[i] = candidate
    return ids


def is_safe(candidate: str) -> bool:
    """Whether ``candidate`` could be an id (used to refuse ``--student`` values that are not)."""
    return bool(candidate) and base_id(candidate) == candidate
