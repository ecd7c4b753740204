"""The batch's records on disk, and the one way anything is written into the output folder.

Each finished submission is kept in ``<out>/<id>/``: ``record.json`` (the gradebook row), Otter's
``results.json`` and a capped ``grading.log``. ``record.json`` is written last and atomically: it is
the proof that a submission is done. Every write and every removal goes through :func:`inside`, which
refuses a path outside the output folder, links included.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .. import points
from ..contract import RESULTS_FILE
from ..statuses import NOT_FAILED

RECORD = "record.json"
RESULTS = RESULTS_FILE
LOG = "grading.log"
GRADEBOOK = "gradebook.csv"
REPORT = "report.html"
FEEDBACK = "feedback"
WORK = ".work"  # temporary copies and the grader's scratch folders; removed at start and end
LOCK = ".lock"
# What a clean-up could not remove is moved here (it would block the next run where it was), for the
# instructor to delete; each batch tries to remove it again.
QUARANTINE = ".quarantine"
# No submission id may be one of these (compared ignoring case).
# The take-away files written next to the gradebook (outputs.py): no submission id may take one either.
FEEDBACK_ZIP = "feedback.zip"
TAKE_AWAY = ("students.csv", "unmatched.csv", "canvas.csv", "moodle.csv", FEEDBACK_ZIP)
# What a batch that did not finish writes instead of the first two (the others are not written then).
PARTIAL_TAKE_AWAY = ("students.partial.csv", "unmatched.partial.csv")
OUTPUT_NAMES = {n.lower() for n in (RECORD, RESULTS, LOG, GRADEBOOK, REPORT, FEEDBACK, WORK, LOCK, QUARANTINE,
                                    *TAKE_AWAY, *PARTIAL_TAKE_AWAY)}



class OutsideOutput(ValueError):
    """A path that would leave the output folder: refused, whatever asked for it."""


@dataclass
class Record:
    """One gradebook row, as kept in ``<out>/<id>/record.json``."""

    id: str
    original_name: str  # what was uploaded (a path, or a path inside the archive), for people
    status: str
    message: str = ""  # English
    message_zh: str = ""  # Traditional Chinese (Taiwan), where a student reads it
    gradescope_id: str = ""
    submitters: list[dict] = field(default_factory=list)  # [{"name", "email", "sid"}]
    scores: dict[str, list[float]] = field(default_factory=dict)  # question -> [score, possible]
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    digest: str = ""  # the upload, the autograder zip, the settings and the sandbox, hashed together
    grader_digest: str = ""  # the autograder zip, the settings and the sandbox alone: says why a regrade
    sandbox: str = ""
    duplicate_of: str = ""  # the id of the first upload of the same student, if this is another
    counted: bool = True  # whether this row is the student's grade (see --duplicates)
    counted_by: str = ""  # for a student's several uploads: how the counted one was chosen
    identity: list[str] = field(default_factory=list)  # the notebook metadata's author, for the roster

    @property
    def total(self) -> float:
        return points.total(self.scores)

    @property
    def possible(self) -> float:
        return points.possible(self.scores)

    @property
    def who(self) -> str:
        """The submitters for people: "Name <email> (SID)", joined."""
        parts = []
        for p in self.submitters:
            text = p.get("name", "") or p.get("email", "")
            if p.get("email") and p.get("name"):
                text += f" <{p['email']}>"
            if p.get("sid"):
                text += f" ({p['sid']})"
            parts.append(text)
        return "; ".join(parts)

    @property
    def failed(self) -> bool:
        return self.status not in NOT_FAILED


def inside(out: Path, *parts: str) -> Path:
    """``out/parts...``, refused unless it stays inside ``out`` once links are followed."""
    root = Path(os.path.realpath(out))
    path = root.joinpath(*parts)
    parent = Path(os.path.realpath(path.parent))
    if any(p in ("", ".", "..") or "/" in p or "\0" in p for p in parts) or not (
        parent == root or root in parent.parents
    ):
        raise OutsideOutput(f"refused to write {path}: it is outside the output folder {root}.")
    return parent / path.name


def write(out: Path, *parts: str, data: str | bytes) -> Path:
    """Write ``data`` to ``out/parts...`` atomically (the old content or the new, never a part)."""
    path = inside(out, *parts)
    if path.is_symlink():
        raise OutsideOutput(f"refused to write through the link {path}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with open(tmp, "wb") as f:
        f.write(raw)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def folder(out: Path, *parts: str) -> Path:
    """The folder ``out/parts...``, created; refused if outside ``out`` or a link."""
    path = inside(out, *parts)
    if path.is_symlink():
        raise OutsideOutput(f"refused to use the link {path} as a folder.")
    path.mkdir(parents=True, exist_ok=True)
    return path


def remove(out: Path, *parts: str) -> list[str]:
    """Remove the file or folder ``out/parts...`` if it is there (a link is removed, never followed),
    whatever a grading left in it; never raises for what it finds. What cannot be removed is moved
    into ``out/.quarantine/`` and reported; returns where it went ([] when all is gone)."""
    from ..grading.layout import remove_tree

    path = inside(out, *parts)
    quarantine = None if parts[0] == QUARANTINE else inside(out, QUARANTINE)
    return remove_tree(path, quarantine)


def save(out: Path, record: Record) -> None:
    write(out, record.id, RECORD, data=json.dumps(asdict(record), indent=2, ensure_ascii=False) + "\n")


def load(out: Path, sub_id: str) -> Record | None:
    """The record of ``sub_id``, or None if there is none or it is not one this version wrote."""
    try:
        raw = json.loads(inside(out, sub_id, RECORD).read_text(encoding="utf-8"))
        known = {f.name for f in fields(Record)}
        if not isinstance(raw, dict) or set(raw) - known:
            return None
        return Record(**raw)
    except (OSError, ValueError, TypeError, OutsideOutput):
        return None  # missing, or left by another version: grade again


def grader_digest(autograder_zip: Path, settings_fingerprint: str, sandbox: str) -> str:
    """What grades a notebook: the autograder zip's bytes, the settings and the sandbox kind."""
    h = hashlib.sha256()
    with open(autograder_zip, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            h.update(chunk)
    h.update(b"\0settings\0" + settings_fingerprint.encode() + b"\0sandbox\0" + sandbox.encode())
    return h.hexdigest()


def resume_digest(upload_digest: str, grading: str) -> str:
    """A record is reused only if this matches: the upload and what grades it, hashed together."""
    return hashlib.sha256(f"{upload_digest}\0{grading}".encode()).hexdigest()
