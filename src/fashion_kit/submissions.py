"""Find the submissions of a class, whatever shape they were handed in as.

Accepted: a folder of notebooks, a folder of the zips ``grader.export()`` makes (or a mix, or one
sub-folder per student), and a Gradescope "Export Submissions" archive, zipped or unpacked: one
``submission_<id>/`` folder per submission next to a ``submission_metadata.yml`` (possibly all inside
one top-level folder). Each submission gets a stable id (the file's stem, or Gradescope's submission
id) and its notebook is copied out under that id, so the grader always sees ``fashion_mnist.ipynb``.
Anything that holds no single notebook becomes a submission with a ``problem`` instead of an error:
one bad upload never stops the class from being graded.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

METADATA = "submission_metadata.yml"
GRADESCOPE_FOLDER = re.compile(r"submission_(.+)")
# Files that ride along in archives but are never a submission.
IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__"}
# An export zip holds the notebook and a few small files; anything much larger is not one.
MAX_NESTED_ZIP_FACTOR = 4


class InputError(ValueError):
    """The source is none of the accepted layouts; the message says what was expected and found."""


@dataclass
class Submission:
    id: str
    source: str  # what was handed in, for people: a path, or a path inside the archive
    notebook: Path | None = None  # the copy to grade; None when there is a problem
    problem: str = ""  # why it cannot be graded
    digest: str = ""  # identifies the content, so a changed re-submission is graded again
    submitters: str = ""  # from Gradescope's metadata: "Name <email>; ..."


@dataclass
class _Entry:
    """A file in a folder or an archive: its path (POSIX, relative), its size and how to read it."""

    name: str
    size: int
    open: Callable[[], io.BufferedIOBase]

    def read(self, limit: int) -> bytes:
        """At most ``limit`` + 1 bytes, so a size that lies (zip headers can) is still caught."""
        with self.open() as f:
            return f.read(limit + 1)


def discover(source: Path | str, workdir: Path | str, max_notebook_bytes: int) -> list[Submission]:
    """Every submission in ``source``, each notebook copied to ``workdir/<id>.ipynb``."""
    source, workdir = Path(source), Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        entries = _folder_entries(source)
    elif source.is_file() and zipfile.is_zipfile(source):
        entries = _zip_entries(zipfile.ZipFile(source))
    elif source.exists():
        raise InputError(
            f"{source} is neither a folder nor a zip file; expected a folder of notebooks or exported "
            "zips, or a Gradescope 'Export Submissions' archive."
        )
    else:
        raise InputError(f"{source} does not exist.")

    metadata = [e for e in entries if PurePosixPath(e.name).name == METADATA and e.name.count("/") <= 1]
    if metadata:
        found = _gradescope(entries, metadata[0], max_notebook_bytes)
    elif source.is_dir():
        found = _plain_folder(entries, max_notebook_bytes)
    else:
        raise InputError(
            f"{source.name} is a zip but not a Gradescope export: it has no {METADATA}. To grade "
            "zips made by grader.export(), put them in a folder and grade the folder."
        )
    if not found:
        raise InputError(f"{source} holds no submissions (no files other than hidden ones).")

    for sub, payload in found:
        if payload is not None:
            sub.notebook = workdir / f"{sub.id}.ipynb"
            sub.notebook.write_bytes(payload)
    return [sub for sub, _ in found]


def _ignored(name: str) -> bool:
    return any(part in IGNORED_PARTS or part.startswith(".") for part in PurePosixPath(name).parts)


def _folder_entries(folder: Path) -> list[_Entry]:
    return [
        _Entry(path.relative_to(folder).as_posix(), path.stat().st_size, lambda path=path: open(path, "rb"))
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not _ignored(path.relative_to(folder).as_posix())
    ]


def _zip_entries(zf: zipfile.ZipFile) -> list[_Entry]:
    return [
        _Entry(info.filename, info.file_size, lambda info=info: zf.open(info))
        for info in zf.infolist()
        if not info.is_dir() and not _ignored(info.filename)
    ]


def _plain_folder(entries: list[_Entry], max_bytes: int) -> list[tuple[Submission, bytes | None]]:
    """Top-level files are one submission each; a sub-folder is one submission holding its files."""
    groups: dict[str, list[_Entry]] = defaultdict(list)
    for e in entries:
        groups[e.name.split("/", 1)[0]].append(e)
    is_file = {name: len(files) == 1 and files[0].name == name for name, files in groups.items()}
    ids = {name: PurePosixPath(name).stem if is_file[name] else name for name in groups}
    taken = defaultdict(int)
    for sub_id in ids.values():
        taken[sub_id] += 1
    found = []
    for name, files in groups.items():
        sub_id = ids[name] if taken[ids[name]] == 1 else name  # notes.ipynb and notes.zip keep suffixes
        if is_file[name]:
            found.append(_from_file(sub_id, files[0], max_bytes))
        else:
            found.append(_from_files(Submission(sub_id, name), files, f"the folder {name}/", max_bytes))
    return sorted(found, key=lambda pair: natural_key(pair[0].id))


def _gradescope(entries: list[_Entry], metadata: _Entry, max_bytes: int) -> list[tuple[Submission, bytes | None]]:
    import yaml

    root = str(PurePosixPath(metadata.name).parent)
    prefix = "" if root == "." else root + "/"
    try:
        meta = yaml.safe_load(metadata.read(16 * 2**20)) or {}
    except yaml.YAMLError as e:
        raise InputError(f"{metadata.name} is not valid YAML: {e}") from e
    if not isinstance(meta, dict):
        raise InputError(f"{metadata.name} should map submission folders to their details; found {type(meta).__name__}.")

    folders: dict[str, list[_Entry]] = {name: [] for name in meta if GRADESCOPE_FOLDER.fullmatch(str(name))}
    for e in entries:
        if e.name.startswith(prefix) and "/" in e.name[len(prefix):]:
            folder = e.name[len(prefix):].split("/", 1)[0]
            if GRADESCOPE_FOLDER.fullmatch(folder):
                folders.setdefault(folder, []).append(e)
    found = []
    for folder, files in folders.items():
        sub = Submission(GRADESCOPE_FOLDER.fullmatch(folder).group(1), prefix + folder)
        sub.submitters = _submitters(meta.get(folder))
        found.append(_from_files(sub, files, f"Gradescope submission {sub.id}", max_bytes))
    return sorted(found, key=lambda pair: natural_key(pair[0].id))


def _submitters(details) -> str:
    """Gradescope writes Ruby-style keys (``:submitters``, ``:name``); plain keys are accepted too."""
    if not isinstance(details, dict):
        return ""
    people = details.get(":submitters", details.get("submitters")) or []
    out = []
    for person in people if isinstance(people, list) else []:
        if isinstance(person, dict):
            name = person.get(":name", person.get("name", ""))
            email = person.get(":email", person.get("email", ""))
            out.append(f"{name} <{email}>" if email else str(name))
    return "; ".join(out)


def _from_file(sub_id: str, entry: _Entry, max_bytes: int) -> tuple[Submission, bytes | None]:
    sub = Submission(sub_id, entry.name)
    suffix = PurePosixPath(entry.name).suffix.lower()
    if suffix == ".ipynb":
        return _notebook(sub, entry, max_bytes)
    if suffix == ".zip":
        return _from_zip(sub, entry, entry.name, max_bytes)
    return _problem(
        sub, f"{entry.name} is not a notebook: expected a .ipynb file or the .zip grader.export() makes, "
        f"found a {suffix or 'file without an extension'} file.", entry.name, entry.size,
    )


def _from_files(sub: Submission, files: list[_Entry], where: str, max_bytes: int, nested: bool = False):
    """The one notebook among ``files`` (directly, or inside the one zip there)."""
    notebooks = [e for e in files if e.name.lower().endswith(".ipynb")]
    if len(notebooks) == 1:
        return _notebook(sub, notebooks[0], max_bytes)
    listing = ", ".join(PurePosixPath(e.name).name for e in files[:8]) + (", ..." if len(files) > 8 else "")
    if len(notebooks) > 1:
        return _problem(
            sub, f"{where} holds {len(notebooks)} notebooks ({listing}); expected exactly one.",
            *[x for e in files for x in (e.name, e.size)],
        )
    zips = [e for e in files if e.name.lower().endswith(".zip")]
    if len(zips) == 1 and not nested:
        return _from_zip(sub, zips[0], f"{where}: {PurePosixPath(zips[0].name).name}", max_bytes)
    return _problem(
        sub, f"{where} holds no notebook (.ipynb); found {listing or 'no files'}.",
        *[x for e in files for x in (e.name, e.size)],
    )


def _from_zip(sub: Submission, entry: _Entry, where: str, max_bytes: int):
    limit = MAX_NESTED_ZIP_FACTOR * max_bytes
    if entry.size > limit:
        return _problem(sub, f"{where} is {_mb(entry.size)}; an exported submission is far smaller "
                        f"(limit {_mb(limit)}).", entry.name, entry.size)
    payload = entry.read(limit)
    try:
        inner = zipfile.ZipFile(io.BytesIO(payload))
        files = _zip_entries(inner)
    except zipfile.BadZipFile:
        return _problem(sub, f"{where} is not a valid zip file.", entry.name, entry.size)
    return _from_files(sub, files, where, max_bytes, nested=True)


def _notebook(sub: Submission, entry: _Entry, max_bytes: int):
    if entry.size > max_bytes:
        return _problem(
            sub, f"{PurePosixPath(entry.name).name} is {_mb(entry.size)}, larger than the "
            f"{_mb(max_bytes)} limit (a notebook for this assignment is normally well under 1 MB); clear "
            "its outputs and save it again.", entry.name, entry.size,
        )
    payload = entry.read(max_bytes)
    if len(payload) > max_bytes:  # the archive understated the size
        return _problem(sub, f"{PurePosixPath(entry.name).name} is larger than the {_mb(max_bytes)} limit.",
                        entry.name, entry.size)
    sub.digest = hashlib.sha256(payload).hexdigest()
    return sub, payload


def _problem(sub: Submission, message: str, *identity) -> tuple[Submission, None]:
    sub.problem = message
    sub.digest = hashlib.sha256(repr(identity).encode()).hexdigest()
    return sub, None


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


def natural_key(text: str):
    """Sort q2 before q10 and student9 before student10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)]
