"""Which upload is whose: every student of the roster one row, every upload matched or listed apart.

An upload is matched, in this order, by

1. a submitter's SID, then email, in a Gradescope export's metadata;
2. the instructor's pattern (``--match REGEX``, like nbgrader's ``FileNameCollector``): a regular
   expression searched in the upload's original name, whose named groups (``sid``, ``email``,
   ``login``, ``canvas_id``, ``name``, ``first_name``, ``last_name``) say what they captured, e.g.
   ``^[^_]+_(late_)?(?P<canvas_id>[0-9]+)_`` for Canvas's ``leeanna_12345_67890_hw.ipynb``;
3. a student id, email or login found anywhere in the file name (``HW1_B10901001.ipynb``,
   ``hw1b10901001.ipynb``), never inside a longer run of digits or letters;
4. the student's name in the file name: in either order, with or without spaces, commas or
   underscores (``anna_lee``, ``lee_anna``, ``leeanna`` for "Lee, Anna"), a Chinese name with or
   without spaces (``王小明.ipynb``, ``作業_王小明.ipynb``, ``chen_meiling_hw3.ipynb`` for 陳美玲's
   roster name "Chen Meiling");
5. only for an upload whose name says nothing: an id, then a name, in the notebook's own metadata
   (its ``authors``, Colab's file name). The notebook is the student's to write, so it never outweighs
   what the LMS or the file name says; when it names another student, the row says so
   (:attr:`Row.conflict`) for the instructor to look at.

Within each source ids win over names. What fits several students matches none of them: it is listed
as unmatched, with the closest roster entries (a CJK name in its pinyin too, which only ever
suggests: many names read alike), for a person to decide. All functions are pure, over
plain data (dicts or objects with the same attribute names).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import PurePath

from pypinyin import lazy_pinyin

from .. import points
from ..contract import natural_key
from ..errors import KitError
from .roster import Student, full_name, get, identifier, is_cjk

MISSING = "missing"
# A student with no upload in a batch that did not finish: the upload may be among those not graded yet.
PENDING = "pending"
MIN_TOKEN = 3  # shorter ids and mailbox names ("a", "01") would fit any file name by chance
MIN_NAME = 4  # a Latin name key ("boli" for Bo Li); a CJK name needs 2 characters
# The pattern's named groups, and which field of a student each one is compared with.
PATTERN_GROUPS = {"sid": "sid", "student_id": "sid", "email": "email", "login": "login", "username": "login",
                  "canvas_id": "canvas_id", "name": "name", "first_name": "first_name", "last_name": "last_name"}
IDENTIFIERS = ("sid", "email", "login", "canvas_id")
_CJK_RUN = re.compile(r"([\u1100-\u11ff\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff]+)")
_SEPARATORS = re.compile(r"[\s_\-.,()\[\]{}+~#&!@'’]+")
# Canvas's *Download Submissions* names a late upload ``<name>_LATE_<user id>_<submission id>_<file>``
# (its case varies): the only lateness it tells, with no time.
_CANVAS_LATE = re.compile(r"^[^_]+_late_[0-9]+_", re.IGNORECASE)


class PatternError(KitError, ValueError):
    """The ``--match`` pattern is not usable; the message says why."""


@dataclass
class Row:
    """One student's line of the gradebook: the student and the upload that is theirs, if any."""

    student: Student
    upload: object | None = None  # the upload (a dict or a record object) chosen for this student
    matched_by: str = ""  # "sid", "email", "pattern", "file name" or "notebook metadata"
    conflict: str = ""  # the counted upload's metadata names another student: what it says
    uploads: list[str] = field(default_factory=list)  # ids of every upload that matched this student
    none_status: str = MISSING  # the status without an upload: missing, or pending in a partial batch

    @property
    def status(self) -> str:
        return self.none_status if self.upload is None else str(get(self.upload, "status", ""))


def compile_pattern(text: str | None) -> re.Pattern | None:
    """``--match``: a regular expression with at least one of :data:`PATTERN_GROUPS` as a named group."""
    if not text:
        return None
    try:
        pattern = re.compile(text, re.IGNORECASE)
    except re.error as e:
        raise PatternError(f"--match {text!r} is not a regular expression ({e}).") from None
    groups = set(pattern.groupindex)
    unknown = groups - set(PATTERN_GROUPS)
    if unknown or not groups:
        raise PatternError(
            f"--match {text!r} needs named groups among {', '.join(f'(?P<{g}>...)' for g in PATTERN_GROUPS)}; "
            f"found {', '.join(sorted(unknown)) if unknown else 'none'}. Example for Canvas's downloads: "
            "'^[^_]+_(late_)?(?P<canvas_id>[0-9]+)_'.")
    return pattern


def _tokens(text: str) -> list[str]:
    """The words of a name, CJK runs apart from Latin ones (``王小明hw3`` -> 王小明, hw3)."""
    folded = fold_keep(text)
    words = []
    for part in _SEPARATORS.split(folded):
        words += [w for w in _CJK_RUN.split(part) if w]
    return words


def fold_keep(text: str) -> str:
    """Case and accents folded (``José`` and ``jose`` alike), full-width forms made narrow, separators
    kept (for finding ids inside a name)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return unicodedata.normalize("NFKC", plain).casefold()


def _stem(name: str) -> str:
    base = PurePath(str(name).replace("\\", "/")).name
    return re.sub(r"(\.ipynb)?(\.zip)?$", "", base, flags=re.IGNORECASE)


def name_keys(student: Student) -> set[str]:
    """The ways a file name may spell the student's name, folded: both orders, no separators."""
    keys = set()
    for name in filter(None, (student.name, student.sortable_name)):
        parts = [p for p in _SEPARATORS.split(fold_keep(name)) if p]
        if not parts:
            continue
        variants = {"".join(parts), "".join(reversed(parts)), "".join(parts[-1:] + parts[:-1]),
                    "".join(parts[1:] + parts[:1])}
        keys |= {v for v in variants if len(v) >= (2 if is_cjk(v) else MIN_NAME)}
    return keys


def _found(needle: str, haystack: str) -> bool:
    """``needle`` in ``haystack``, not inside a longer run of the same kind (digits, or letters)."""
    if not needle:
        return False

    def kind(ch: str) -> str:
        return "digit" if ch.isdigit() else "letter" if ch.isalpha() else "other"

    start = 0
    while (at := haystack.find(needle, start)) >= 0:
        before = haystack[at - 1] if at else ""
        after = haystack[at + len(needle)] if at + len(needle) < len(haystack) else ""
        if not (before and kind(before) == kind(needle[0]) != "other") and \
                not (after and kind(after) == kind(needle[-1]) != "other"):
            return True
        start = at + 1
    return False


class _Index:
    def __init__(self, roster: list[Student]):
        self.roster = roster
        self.by = {kind: {} for kind in IDENTIFIERS}
        for i, s in enumerate(roster):
            for kind in IDENTIFIERS:
                key = identifier(getattr(s, kind))
                if key:
                    self.by[kind].setdefault(key, set()).add(i)
        self.names = [name_keys(s) for s in roster]

    def lookup(self, kind: str, value: str) -> set[int]:
        return set(self.by[kind].get(identifier(value), set()))

    def by_name(self, name: str) -> set[int]:
        key = "".join(p for p in _SEPARATORS.split(fold_keep(name)) if p)
        return {i for i, keys in enumerate(self.names) if key and key in keys}


def _names(upload) -> list[str]:
    """What an upload is called: its file name as handed in, and its id."""
    return [t for t in (_stem(str(get(upload, key, "") or "")) for key in ("original_name", "id")) if t]


def _metadata(upload) -> list[str]:
    """What the notebook's own metadata says of its author (the student could have written anything)."""
    return [str(h) for h in (get(upload, "identity", None) or []) if isinstance(h, str) and h]


def is_late(upload) -> bool:
    """Whether the LMS marked the upload late in its file name (Canvas's ``_LATE_``)."""
    return bool(_CANVAS_LATE.match(PurePath(str(get(upload, "original_name", "") or "").replace("\\", "/")).name))


def _by_pattern(upload, index: _Index, pattern: re.Pattern) -> set[int]:
    for text in filter(None, (str(get(upload, "original_name", "") or ""), str(get(upload, "id", "") or ""))):
        found = pattern.search(text.replace("\\", "/"))
        if not found:
            continue
        groups = {PATTERN_GROUPS[g]: v for g, v in found.groupdict().items() if v}
        hits = None
        for kind in IDENTIFIERS:
            if kind in groups:
                got = index.lookup(kind, groups[kind])
                hits = got if hits is None else hits & got
        name = groups.get("name") or full_name(groups.get("first_name", ""), groups.get("last_name", ""))
        if name:
            got = index.by_name(name) | index.by_name(full_name(groups.get("last_name", ""), groups.get("first_name", "")))
            hits = got if hits is None else hits & got
        if hits:
            return hits
    return set()


def _by_identifiers(texts: list[str], index: _Index) -> set[int]:
    folded = [fold_keep(t) for t in texts]
    found = set()
    for i, s in enumerate(index.roster):
        for kind in ("sid", "login", "email"):
            value = fold_keep(getattr(s, kind).strip())
            candidates = [value] + ([value.split("@")[0]] if "@" in value else [])
            if any(len(c) >= MIN_TOKEN and any(_found(c, t) for t in folded) for c in candidates):
                found.add(i)
    return found


def _by_names(texts: list[str], index: _Index) -> set[int]:
    grams = set()
    for text in texts:
        words = _tokens(text)
        for n in range(1, len(words) + 1):
            grams |= {"".join(words[k:k + n]) for k in range(len(words) - n + 1)}
    joined = ["".join(_SEPARATORS.split(fold_keep(t))) for t in texts]
    found = set()
    for i, keys in enumerate(index.names):
        if keys & grams or any(is_cjk(k) and any(k in j for j in joined) for k in keys):
            found.add(i)
    return found


def _matches(upload, index: _Index, pattern: re.Pattern | None) -> tuple[set[int], str]:
    people = [p for p in (get(upload, "submitters", None) or []) if isinstance(p, dict)]
    for kind in ("sid", "email"):
        found = set().union(*(index.lookup(kind, str(p.get(kind) or "")) for p in people)) if people else set()
        if found:
            return found, kind
    if pattern is not None:
        found = _by_pattern(upload, index, pattern)
        if found:
            return found, "pattern"
    for texts, how in ((_names(upload), "file name"), (_metadata(upload), "notebook metadata")):
        for finder in (_by_identifiers, _by_names):
            found = finder(texts, index)
            if found:
                return found, how
    return set(), ""


def _metadata_conflict(upload, found: set[int], index: _Index) -> str:
    """What the upload's metadata says, when it names students other than those it was matched to."""
    hints = _metadata(upload)
    claimed = _by_identifiers(hints, index) or _by_names(hints, index)
    if not claimed or claimed & found:
        return ""
    names = ", ".join(index.roster[i].label for i in sorted(claimed))
    return f"the notebook's metadata names {names} ({'; '.join(hints)[:120]})"


def _total(upload) -> float:
    scores = get(upload, "scores", None) or {}
    try:
        return points.total(scores)
    except (TypeError, ValueError, IndexError):
        return 0.0


def _preference(upload):
    """Sort key of a student's uploads, best first: the one the batch counts as the student's grade
    (not a duplicate), then the highest total, then the earliest id."""
    return (get(upload, "counted", True) is False, -_total(upload), natural_key(str(get(upload, "id", ""))))


def match(roster: list[Student], uploads, pattern: re.Pattern | str | None = None,
          partial: bool = False) -> tuple[list[Row], list]:
    """One :class:`Row` per student (``missing`` when no upload is theirs; ``pending`` when the batch
    is ``partial``), and the unmatched uploads.

    A group submission (several submitters) counts for each of them. When several uploads belong to
    one student (a re-upload), the row takes the one the batch counts (``counted``, not a duplicate),
    else the one with the highest total, the earliest id on a tie; ``Row.uploads`` names them all.
    A file name that fits several students matches none of them.
    """
    if isinstance(pattern, str):
        pattern = compile_pattern(pattern)
    index = _Index(roster)
    rows = [Row(student, none_status=PENDING if partial else MISSING) for student in roster]
    unmatched = []
    for upload in uploads:
        found, how = _matches(upload, index, pattern)
        if not found or (how in ("file name", "pattern") and len(found) > 1):
            unmatched.append(upload)
            continue
        for i in sorted(found):
            row = rows[i]
            row.uploads.append(str(get(upload, "id", "")))
            if row.upload is None or _preference(upload) < _preference(row.upload):
                row.upload, row.matched_by = upload, how
                row.conflict = _metadata_conflict(upload, found, index)
    for row in rows:
        row.uploads.sort(key=natural_key)
    return rows, unmatched


def owners(roster: list[Student], uploads, pattern: re.Pattern | str | None = None) -> dict[str, set[str]]:
    """Upload id -> the keys (:attr:`Student.key`) of the students it is matched to, for the uploads
    :func:`match` gives someone: the batch's duplicates are found by student, whatever the files are
    called."""
    rows, _ = match(roster, uploads, pattern)
    found: dict[str, set[str]] = {}
    for row in rows:
        for upload_id in row.uploads:
            found.setdefault(upload_id, set()).add(row.student.key)
    return found


def romanised(name: str) -> set[str]:
    """A CJK name as a romanised file name may spell it, in toneless pinyin, in both orders
    (陳美玲: ``chenmeiling``, ``meilingchen``). Only for suggestions: several characters share one
    reading, so pinyin alone never identifies a student."""
    chars = [c for c in name if is_cjk(c)]
    if len(chars) < 2:
        return set()
    syllables = [s.casefold() for s in lazy_pinyin("".join(chars))]
    return {"".join(syllables), "".join(syllables[1:] + syllables[:1])}


def _bigrams(text: str) -> frozenset[str]:
    return frozenset(text[i:i + 2] for i in range(len(text) - 1)) or frozenset([text])


def _similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Dice's coefficient of two strings' character pairs: 1 for the same pairs, 0 for none shared.
    Cheap enough for every part of every name against every roster entry of a large class."""
    return 2 * len(a & b) / (len(a) + len(b))


def closest_keys(roster: list[Student]) -> list[list[frozenset[str]]]:
    """Each student's names and ids as character pairs, for :func:`closest`."""
    keys = []
    for s in roster:
        found = name_keys(s) | romanised(s.name) | {identifier(getattr(s, k)).split("@")[0]
                                                   for k in ("sid", "login", "email")}
        keys.append([k for k in found if len(k) >= MIN_TOKEN])
    return keys


def _likeness(key: str, piece: str) -> float:
    """How alike two spellings are: the better of their shared character pairs (Dice's coefficient,
    which forgives swapped parts) and difflib's ratio (which forgives a letter typed wrong)."""
    dice = _similarity(_bigrams(key), _bigrams(piece))
    matcher = difflib.SequenceMatcher(None, key, piece)
    return max(dice, matcher.ratio() if matcher.real_quick_ratio() > dice else 0.0)


def closest(upload, roster: list[Student], n: int = 3, cutoff: float = 0.7, keys=None) -> list[Student]:
    """The roster entries whose ids or names (a CJK name in pinyin too) look most like a part of the
    upload's name, best first.
    ``keys`` (:func:`closest_keys`) saves computing them again for every upload."""
    pieces = set()
    for text in _names(upload) + _metadata(upload):
        words = _tokens(text)
        pieces |= {"".join(words[k:k + m]) for m in range(1, len(words) + 1) for k in range(len(words) - m + 1)}
    pieces = [p for p in pieces if len(p) >= MIN_TOKEN]
    scored = []
    for s, student_keys in zip(roster, keys or closest_keys(roster)):
        best = max((_likeness(k, p) for k in student_keys for p in pieces), default=0.0)
        if best >= cutoff:
            scored.append((best, s))
    scored.sort(key=lambda pair: -pair[0])
    return [s for _, s in scored[:n]]
