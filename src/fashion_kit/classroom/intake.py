"""Find the uploads of a class, whatever shape they were handed in as, and read them defensively.

Accepted: a folder of notebooks, a folder of the zips ``grader.export()`` makes (or a mix, or one
sub-folder per student), and a Gradescope "Export Submissions" archive, zipped or unpacked: one
``submission_<id>/`` folder per submission next to a ``submission_metadata.yml``. Export mode is
chosen only when the folder itself, or the zip's root (possibly inside its one top-level folder), is
an export; a ``submission_metadata.yml`` deeper down is just a file in a student's folder.

Every upload is hostile until read: every reader (folder walk, zip, JSON, notebook, YAML) is guarded,
and sizes, counts and nesting are limited before anything is parsed. Whatever an upload holds, it
becomes exactly one :class:`Upload`: gradable (its notebook and model files copied into the output
folder's ``.work/``), ``invalid`` with a message in English and Traditional Chinese, or ``ignored``
(a README or a roster beside the submissions: listed, not a failure).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from ..errors import KitError
from .. import contract
from ..statuses import Status
from ..uploads import (MAX_JSON_DEPTH, Entry, Refused, check_notebook, json_depth_exceeds,
                       read_entry)
from . import ids, store

METADATA = "submission_metadata.yml"
GRADESCOPE_FOLDER = re.compile(r"submission_(.+)", re.S)
# Parts of a path that ride along in archives and folders but are never a submission.
IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__"}
# Limits applied before anything is parsed.
MAX_ENTRIES = 100_000  # files in the class's folder or zip
MAX_ENTRIES_IN_UPLOAD = 1_000  # files in one student's zip
MAX_FOLDER_DEPTH = 8
MAX_METADATA_BYTES = 16 * 2**20
MAX_MODEL_BYTES = 256 * 2**20  # a saved Keras model of this assignment is about 1.2 MB
MAX_FIELD_CHARS = 500  # a submitter's name, email or SID, as kept
NOTEBOOK_SUFFIX, ZIP_SUFFIX = ".ipynb", ".zip"
# Files handed to the grader beside the notebook, by their name in lower case.
EXTRA_FILES = {name.lower(): name for name in contract.SUBMITTED_FILES if name != contract.NOTEBOOK}


class InputError(KitError, ValueError):
    """The source is none of the accepted layouts; the message says what was expected and found."""


class Interrupted(Exception):
    """A stop was asked for while the uploads were being read."""


# Where an upload's time comes from, said wherever it decides which of a student's uploads counts.
LMS_TIME, FILE_TIME = "the submission time the LMS recorded", "the file's modification time"


@dataclass
class Upload:
    """One thing handed in: one gradebook row."""

    original_name: str  # what was uploaded, printable: a path, or a path inside the archive
    id_hint: str  # what the id is made from (the file's stem, the folder, Gradescope's id)
    gradescope_id: str = ""
    submitters: list[dict] = field(default_factory=list)
    created: float = 0.0  # when it was handed in (Gradescope's time, else the file's), for --duplicates
    created_by: str = ""  # what ``created`` is: LMS_TIME, FILE_TIME, or "" when nothing told it
    status: Status | str = ""  # "" (to grade), Status.INVALID or Status.IGNORED
    message: str = ""
    message_zh: str = ""
    notebook: Path | None = None  # the copy to grade, under .work/
    extra_files: list[Path] = field(default_factory=list)  # model files, each under its contract name
    digest: str = ""  # identifies the content, so a changed upload is graded again
    student_keys: set[str] = field(default_factory=set)  # two uploads sharing one are the same student
    identity: list[str] = field(default_factory=list)  # who the notebook's metadata says wrote it
    id: str = ""


MAX_IDENTITY = 10  # strings kept from a notebook's metadata, each of at most MAX_FIELD_CHARS


def identity_hints(raw: bytes) -> list[str]:
    """What a notebook's metadata says of its author, for matching it to a student: nbformat's
    ``authors`` (name, email), Colab's file name in Drive (``colab.name``), the ``title``. Data only."""
    try:
        meta = json.loads(raw.decode("utf-8-sig")).get("metadata") or {}
    except (ValueError, AttributeError, RecursionError):
        return []
    if not isinstance(meta, dict):
        return []
    found = []
    authors = meta.get("authors")
    for person in authors if isinstance(authors, list) else []:
        if isinstance(person, dict):
            found += [person.get("name"), person.get("email")]
    colab = meta.get("colab")
    found += [colab.get("name") if isinstance(colab, dict) else None, meta.get("title")]
    return [ids.printable(v.strip())[:MAX_FIELD_CHARS] for v in found if isinstance(v, str) and v.strip()][:MAX_IDENTITY]


def read_export(path: Path, out: Path, max_notebook_bytes: int) -> Upload:
    """A ``grader.export()`` zip given to ``fashion-kit run``, read exactly as the batch reads one: its
    notebook and model files copied under ``out/.work/``; a zip that cannot be graded comes back as an
    invalid :class:`Upload` saying why, in both languages."""
    reader = _Reader(out, max_notebook_bytes, None)
    st = path.stat()
    entry = Entry(path.name, st.st_size, lambda: open(path, "rb"), st.st_mtime)
    up = Upload(ids.printable(path.name), _stem(path.name))
    return reader._guarded(up, lambda: reader._from_zip(up, entry, [], (up.original_name, up.original_name)))


def _load_yaml(raw: bytes):
    """YAML, its flow nesting ([...], {...}) limited first: PyYAML's scanner is quadratic in it."""
    import yaml

    if json_depth_exceeds(raw):
        raise ValueError(f"it is nested more than {MAX_JSON_DEPTH} levels deep")
    return yaml.safe_load(raw)


# ---- the source's entries ----

def _ignored(name: str) -> bool:
    return any(part in IGNORED_PARTS or part.startswith(".") for part in _parts(name))


def _parts(name: str) -> list[str]:
    return [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]


def _folder_entries(root: Path, stop) -> list[Entry]:
    """Every file under ``root`` (links and devices listed, never followed), depth and count limited;
    each top-level folder also as a ``dir`` entry, so an empty one is still an upload."""
    found: list[Entry] = []
    pending = [(str(root), "", 0)]
    while pending:
        _check(stop)
        path, rel, depth = pending.pop()
        try:
            children = sorted(os.scandir(path), key=lambda d: d.name)
        except OSError:
            continue
        for child in children:
            if child.name in IGNORED_PARTS or child.name.startswith("."):
                continue
            if len(found) >= MAX_ENTRIES:
                raise InputError(f"{root} holds more than {MAX_ENTRIES:,} files; expected a class's submissions.")
            name = rel + child.name
            try:
                if child.is_symlink():
                    found.append(Entry(name, kind="link"))
                elif child.is_dir(follow_symlinks=False):
                    if depth == 0:
                        found.append(Entry(name, kind="dir"))
                    if depth < MAX_FOLDER_DEPTH:
                        pending.append((child.path, name + "/", depth + 1))
                elif child.is_file(follow_symlinks=False):
                    st = child.stat(follow_symlinks=False)
                    found.append(Entry(name, st.st_size, lambda p=child.path: open(p, "rb"), st.st_mtime))
                else:
                    found.append(Entry(name, kind="other"))
            except OSError:
                found.append(Entry(name, kind="other"))
    return sorted(found, key=lambda e: e.name)


def _zip_entries(zf: zipfile.ZipFile, limit: int) -> list[Entry]:
    infos = zf.infolist()
    if len(infos) > limit:
        raise Refused(f"the zip holds {len(infos):,} files; expected at most {limit:,}.",
                      f"zip 檔內有 {len(infos):,} 個檔案；最多應為 {limit:,} 個。")
    entries = []
    for info in infos:
        name = "/".join(_parts(info.filename))
        if info.is_dir() or not name or _ignored(name):
            continue
        try:
            mtime = dt.datetime(*info.date_time).timestamp()
        except (ValueError, OverflowError):
            mtime = 0.0
        entries.append(Entry(name, info.file_size, lambda info=info: zf.open(info), mtime, info))
    return entries


def _check(stop) -> None:
    if stop is not None and stop.is_set():
        raise Interrupted()


# ---- discovery ----

def discover(source: Path | str, out: Path, max_notebook_bytes: int,
             stop: threading.Event | None = None) -> list[Upload]:
    """Every upload in ``source``, one :class:`Upload` each, with its safe id; gradable notebooks and
    their model files are copied to ``out/.work/<id>/``. Raises :class:`InputError` only for a source
    that is unusable as a whole, and :class:`Interrupted` if ``stop`` is set."""
    source = Path(source)
    reader = _Reader(out, max_notebook_bytes, stop)
    zf = None
    try:
        if source.is_dir():
            entries = _folder_entries(source, stop)
            root = _export_root_of_folder(source, entries)
        elif source.is_file():
            try:
                zf = zipfile.ZipFile(source)
                entries = _zip_entries(zf, MAX_ENTRIES)
            except (Refused, Exception) as e:
                raise InputError(
                    f"{ids.printable(str(source))} is neither a folder nor a readable zip file "
                    f"({type(e).__name__}); expected a folder of notebooks or exported zips, or a "
                    "Gradescope 'Export Submissions' archive.") from None
            root = _export_root(entries)
            if root is None:
                raise InputError(
                    f"{ids.printable(source.name)} is a zip but not a Gradescope export: its root has no "
                    f"{METADATA}. To grade zips made by grader.export(), put them in a folder and grade the folder.")
        elif source.exists():
            raise InputError(f"{ids.printable(str(source))} is neither a folder nor a zip file; expected a folder "
                             "of notebooks or exported zips, or a Gradescope 'Export Submissions' archive.")
        else:
            raise InputError(f"{ids.printable(str(source))} does not exist.")

        if root is None:
            uploads = reader.plain_folder(entries)
        else:
            uploads = reader.gradescope(entries, root)
    finally:
        if zf is not None:
            zf.close()
    if not uploads:
        raise InputError(f"{ids.printable(str(source))} holds no submissions (no files other than hidden ones).")
    for upload, sub_id in zip(uploads, ids.assign([u.id_hint for u in uploads])):
        upload.id = sub_id
    reader.place(uploads)
    return sorted(uploads, key=lambda u: contract.natural_key(u.id))


def _export_root(entries: list[Entry]) -> str | None:
    """Where an archive's Gradescope export starts: "" (its root), "<folder>/" (its one top-level
    folder), or None if it is no export."""
    if any(e.name == METADATA for e in entries):
        return ""
    tops = {_parts(e.name)[0] for e in entries}
    if len(tops) == 1:
        # An unpacked export's one folder: its metadata beside submission folders. A lone student
        # folder holding a metadata file but no submission folder is not one.
        top = tops.pop()
        has_metadata = any(e.name == f"{top}/{METADATA}" for e in entries)
        if has_metadata and any(GRADESCOPE_FOLDER.fullmatch(_parts(e.name)[1]) for e in entries
                                if len(_parts(e.name)) > 2):
            return top + "/"
    return None


def _export_root_of_folder(source: Path, entries: list[Entry]) -> str | None:
    if (source / METADATA).is_file() and not (source / METADATA).is_symlink():
        return ""
    return _export_root(entries)


class _Reader:
    def __init__(self, out: Path, max_notebook_bytes: int, stop):
        self.out, self.max_bytes, self.stop = out, max_notebook_bytes, stop
        self.count = 0

    # -- layouts --

    def plain_folder(self, entries: list[Entry]) -> list[Upload]:
        """Top-level files are one upload each; a sub-folder is one upload holding its files."""
        groups: dict[str, list[Entry]] = {}
        for e in entries:
            groups.setdefault(_parts(e.name)[0], []).append(e)
        uploads = []
        for top, files in groups.items():
            _check(self.stop)
            created = max((f.mtime for f in files), default=0.0)
            up = Upload(ids.printable(top), _stem(top), created=created, created_by=FILE_TIME if created else "",
                        student_keys={"name:" + _stem(top).casefold()})
            uploads.append(self._guarded(up, lambda up=up, top=top, files=files: self._top_level(up, top, files)))
        return uploads

    def gradescope(self, entries: list[Entry], root: str) -> list[Upload]:
        metadata, warning = self._metadata(entries, root)
        folders: dict[str, list[Entry]] = {}
        loose: dict[str, list[Entry]] = {}
        for e in entries:
            if not e.name.startswith(root):
                continue
            rest = e.name[len(root):]
            top = _parts(rest)[0]
            if rest == METADATA:
                continue
            if GRADESCOPE_FOLDER.fullmatch(top) and (e.kind == "dir" or "/" in rest):
                folders.setdefault(top, []).append(e)
            else:
                loose.setdefault(top, []).append(e)
        for key in metadata:
            if GRADESCOPE_FOLDER.fullmatch(key):
                folders.setdefault(key, [])
        uploads = []
        for folder, files in folders.items():
            _check(self.stop)
            gradescope_id = GRADESCOPE_FOLDER.fullmatch(folder).group(1)
            shown = root + folder

            up = Upload(ids.printable(shown), ids.printable(gradescope_id), ids.printable(gradescope_id))
            details = metadata.get(folder)
            up.submitters = _submitters(details)
            up.created = _created(details) or max((f.mtime for f in files), default=0.0)
            up.created_by = LMS_TIME if _created(details) else FILE_TIME if up.created else ""
            up.student_keys = {k for p in up.submitters for k in _person_keys(p)}
            if warning:
                up.message, up.message_zh = warning
            where = (f"Gradescope submission {ids.printable(gradescope_id)}",
                     f"Gradescope 繳交 {ids.printable(gradescope_id)}")
            files = [f for f in files if f.kind != "dir"]
            uploads.append(self._guarded(up, lambda up=up, files=files, where=where: self._from_files(up, files, where)))
        for top, files in loose.items():
            _check(self.stop)
            uploads.append(self._ignore(root + top, "in the Gradescope export but not a submission folder",
                                        "在 Gradescope 匯出檔中，但不是繳交資料夾", files))
        return uploads

    def _metadata(self, entries, root) -> tuple[dict, tuple[str, str] | None]:
        """Gradescope's metadata; an unreadable one is a warning on every row, not a stop."""
        entry = next((e for e in entries if e.name == root + METADATA), None)
        try:
            meta = _load_yaml(read_entry(entry, MAX_METADATA_BYTES)) if entry else {}
            if meta is None:
                meta = {}
            if not isinstance(meta, dict):
                raise ValueError(f"expected a mapping of submission folders, found {type(meta).__name__}")
            return {str(k): v for k, v in meta.items()}, None
        except Exception as e:  # YAML errors, deep nesting (RecursionError), a damaged member...
            detail = ids.printable(f"{type(e).__name__}: {e}")[:200]
            return {}, (f"{METADATA} could not be read ({detail}); submitters are unknown.",
                        f"無法讀取 {METADATA}（{detail}）；繳交者不明。")

    def _top_level(self, up: Upload, top: str, files: list[Entry]) -> Upload:
        shown = up.original_name
        lone = len(files) == 1 and files[0].name == top
        if lone and files[0].kind == "file":
            entry = files[0]
            suffix = PurePosixPath(top.lower()).suffix
            if suffix == NOTEBOOK_SUFFIX:
                return self._notebook(up, entry, [])
            if suffix == ZIP_SUFFIX:
                return self._from_zip(up, entry, [], (shown, shown))
            return self._ignore(top, "not a notebook (.ipynb) nor an exported zip (.zip)",
                                "不是筆記本（.ipynb）也不是匯出的 zip 檔", files)
        if lone and files[0].kind in ("link", "other"):
            read_entry(files[0], 0)  # raises: a link or a device, refused with its message
        up.id_hint = top
        return self._from_files(up, [f for f in files if f.kind != "dir"], (f"the folder {shown}/", f"資料夾 {shown}/"))

    # -- one upload --

    def _guarded(self, up: Upload, read: Callable[[], Upload]) -> Upload:
        """``read()``, but whatever goes wrong inside becomes this upload's row, never the batch's."""
        try:
            return read()
        except Interrupted:
            raise
        except Refused as e:
            return self._invalid(up, e)
        except Exception as e:
            detail = ids.printable(f"{type(e).__name__}: {e}")[:300]
            return self._invalid(up, Refused(f"{up.original_name} could not be read ({detail}).",
                                             f"無法讀取 {up.original_name}（{detail}）。"))

    def _invalid(self, up: Upload, why: Refused) -> Upload:
        up.status, up.notebook, up.extra_files = Status.INVALID, None, []
        # A warning already there (unreadable metadata) is kept after the reason.
        up.message = " ".join(filter(None, [why.en, up.message]))
        up.message_zh = " ".join(filter(None, [why.zh, up.message_zh]))
        up.digest = _digest(Status.INVALID, up.original_name, why.en)
        return up

    def _ignore(self, top: str, en: str, zh: str, files: list[Entry]) -> Upload:
        shown = ids.printable(top)
        up = Upload(shown, _stem(top), status=Status.IGNORED)
        up.message = f"{shown}: {en}; ignored."
        up.message_zh = f"{shown}：{zh}；已略過。"
        up.digest = _digest(Status.IGNORED, shown, *[f"{f.name}:{f.size}" for f in files])
        return up

    def _from_files(self, up: Upload, files: list[Entry], where: tuple[str, str], prefix: str = "") -> Upload:
        """The one notebook among ``files`` (directly, or inside the one zip there), with the model
        files found beside it."""
        notebooks = [e for e in files if e.base.lower().endswith(NOTEBOOK_SUFFIX)]
        models = [e for e in files if e.base.lower() in EXTRA_FILES]
        listing = ", ".join(ids.printable(e.base) for e in files[:8]) + (", ..." if len(files) > 8 else "")
        if len(notebooks) == 1:
            return self._notebook(up, notebooks[0], models, prefix)
        if len(notebooks) > 1:
            raise Refused(f"{where[0]} holds {len(notebooks)} notebooks ({listing}); expected exactly one.",
                          f"{where[1]} 內有 {len(notebooks)} 個筆記本（{listing}）；應該只有一個。")
        zips = [e for e in files if e.base.lower().endswith(ZIP_SUFFIX)]
        if len(zips) == 1:
            name = ids.printable(zips[0].base)
            return self._from_zip(up, zips[0], models, (f"{where[0]}: {name}", f"{where[1]}：{name}"))
        raise Refused(f"{where[0]} holds no notebook (.ipynb); found {listing or 'no files'}.",
                      f"{where[1]} 內沒有筆記本（.ipynb）；找到的是：{listing or '沒有檔案'}。")

    def _from_zip(self, up: Upload, entry: Entry, models: list[Entry], where: tuple[str, str]) -> Upload:
        """A student's export zip: copied into .work/ (size limited), then opened there."""
        limit = 4 * self.max_bytes + MAX_MODEL_BYTES
        payload = read_entry(entry, limit)
        spooled = store.write(self.out, store.WORK, "zips", f"{self._next()}.zip", data=payload)
        try:
            with zipfile.ZipFile(spooled) as inner:
                files = _zip_entries(inner, MAX_ENTRIES_IN_UPLOAD)
                inside = {e.base.lower() for e in files}
                # A model file beside the zip and one inside it: the one inside travels with its notebook.
                outside = [m for m in models if m.base.lower() not in inside]
                if any(e.base.lower().endswith(ZIP_SUFFIX) and not e.base.lower().endswith(NOTEBOOK_SUFFIX)
                       for e in files) and not any(e.base.lower().endswith(NOTEBOOK_SUFFIX) for e in files):
                    raise Refused(f"{where[0]} holds another zip and no notebook; expected the zip "
                                  "grader.export() makes.",
                                  f"{where[1]} 內是另一個 zip 檔而沒有筆記本；應為 grader.export() 產生的 zip 檔。")
                return self._from_files(up, files + outside, where, prefix=f"{up.original_name}: ")
        except zipfile.BadZipFile:
            raise Refused(f"{where[0]} is not a valid zip file.", f"{where[1]} 不是有效的 zip 檔。") from None
        finally:
            spooled.unlink(missing_ok=True)

    def _notebook(self, up: Upload, entry: Entry, models: list[Entry], prefix: str = "") -> Upload:
        # Messages name what the student handed in: the file, or the file inside their zip.
        shown = prefix + ids.printable(entry.name)
        raw = read_entry(entry, self.max_bytes)
        graded, _ = check_notebook(raw, shown)
        up.identity = identity_hints(raw)
        n = self._next()
        h = hashlib.sha256(b"notebook\0" + raw)
        up.notebook = store.write(self.out, store.WORK, "uploads", n, contract.NOTEBOOK, data=graded)
        seen = set()
        for model in sorted(models, key=lambda m: m.name):
            canonical = EXTRA_FILES[model.base.lower()]
            if canonical in seen:
                continue
            seen.add(canonical)
            payload = read_entry(model, MAX_MODEL_BYTES)
            h.update(b"\0" + canonical.encode() + b"\0" + hashlib.sha256(payload).digest())
            up.extra_files.append(store.write(self.out, store.WORK, "uploads", n, canonical, data=payload))
        up.digest = h.hexdigest()
        return up

    def _next(self) -> str:
        self.count += 1
        return str(self.count)

    def place(self, uploads: list[Upload]) -> None:
        """Move each gradable upload's copies to ``.work/<id>/``, named by the safe id."""
        for up in uploads:
            if up.notebook is None:
                continue
            target = store.folder(self.out, store.WORK, up.id)
            moved = []
            for path in [up.notebook, *up.extra_files]:
                dest = target / path.name
                os.replace(path, dest)
                moved.append(dest)
            up.notebook, up.extra_files = moved[0], moved[1:]
        store.remove(self.out, store.WORK, "uploads")
        store.remove(self.out, store.WORK, "zips")


def _stem(name: str) -> str:
    base = _parts(name)[-1] if _parts(name) else name
    low = base.lower()
    for suffix in (NOTEBOOK_SUFFIX + ZIP_SUFFIX, ZIP_SUFFIX, NOTEBOOK_SUFFIX):
        if low.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return base


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(ids.printable(p) for p in parts).encode()).hexdigest()


def _field(details: dict, key: str) -> str:
    value = details.get(f":{key}", details.get(key, ""))
    return ids.printable("" if value is None else str(value))[:MAX_FIELD_CHARS]


def _submitters(details) -> list[dict]:
    """Gradescope writes Ruby-style keys (``:submitters``, ``:name``, ``:email``, ``:sid``); plain keys
    are accepted too."""
    if not isinstance(details, dict):
        return []
    people = details.get(":submitters", details.get("submitters")) or []
    return [
        {key: _field(person, key) for key in ("name", "email", "sid")}
        for person in (people if isinstance(people, list) else [])[:50]
        if isinstance(person, dict)
    ]


def _person_keys(person: dict) -> set[str]:
    keys = set()
    for key in ("sid", "email", "name"):
        if person.get(key, "").strip():
            keys.add(f"{key}:{person[key].strip().casefold()}")
    return keys


def _created(details) -> float:
    if not isinstance(details, dict):
        return 0.0
    value = details.get(":created_at", details.get("created_at"))
    try:
        if isinstance(value, dt.datetime):
            return value.timestamp()
        if isinstance(value, str):
            return dt.datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S %z").timestamp()
    except (ValueError, OverflowError, OSError):
        pass
    return 0.0
