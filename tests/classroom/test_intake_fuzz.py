"""Property-based test of class intake: whatever the uploads are (random folder trees, damaged zips,
deep JSON, names with Unicode, lone surrogates, ``..``, leading dashes, output names), the batch
raises nothing, gives exactly one row per upload, writes and deletes nothing outside its output
folder (a canary tree around it proves it), and a second run changes nothing. A fake grader stands
in for the real one, so this runs in the fast suite."""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import zipfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from fashion_kit import statuses
from fashion_kit.classroom import batch, ids, intake, store

from .classroom_fakes import DAMAGE, FakeGrader, damage, fake_autograder, notebook_text, snapshot, \
    v3_notebook_text, zip_bytes

NOTEBOOK = notebook_text("x = 1", "y = 2").encode()
HOSTILE_NAMES = [
    "alice.ipynb", "Alice.ipynb", "ALICE.IPYNB", "bob.ipynb", "bob.ipynb.zip", "bob.zip", "-rf.ipynb", "--help.ipynb",
    "..ipynb", "...", "gradebook.csv.ipynb", "report.html.ipynb", "feedback", "feedback.ipynb", "record.json",
    ".work", ".lock", ".hidden.ipynb", "__MACOSX", "README.md", "roster.csv", "submission_..", "submission_1",
    "submission_../../x", intake.METADATA, "陳小明.ipynb", "e\u0301.ipynb", "\u202eexe.ipynb", "CON.ipynb",
    "a b (1).ipynb", "[/x].ipynb", "=HYPERLINK(1).ipynb", "fashion_mnist.ipynb", "challenge_model.keras",
    "fashion_mnist_model.h5", "x.zip", os.fsdecode(b"caf\xe9.ipynb"), os.fsdecode(b"\xff\xfe"),
]


def _usable(name: str) -> bool:
    try:
        raw = os.fsencode(name)
    except UnicodeEncodeError:
        return False
    return bool(raw) and b"/" not in raw and b"\0" not in raw and raw not in (b".", b"..") and len(raw) < 200


file_names = st.one_of(
    st.sampled_from(HOSTILE_NAMES),
    st.text(min_size=1, max_size=10).map(lambda t: t + st_suffix(t)),
    st.binary(min_size=1, max_size=10).map(os.fsdecode),  # bytes in no encoding: lone surrogates
).filter(_usable)


def st_suffix(text: str) -> str:
    return (".ipynb", ".zip", "", ".txt")[len(text) % 4]


member_names = st.one_of(st.sampled_from([n for n in HOSTILE_NAMES if "/" not in n] + [
    "../../escape.ipynb", "/abs.ipynb", "dir/nb.ipynb", "a\\b.ipynb"]), st.text(min_size=1, max_size=8))

small_contents = st.one_of(
    st.just(NOTEBOOK), st.just(v3_notebook_text("x = 1").encode()), st.just(b""), st.just(b"{"),
    st.just(b'{"name": "json, not a notebook"}'), st.just(b'{"nbformat": 2, "cells": []}'),
    st.integers(50, 50_000).map(lambda n: b"[" * n + b"]" * n),
    st.binary(max_size=64),
)


@st.composite
def zips(draw) -> bytes:
    members = draw(st.dictionaries(member_names, small_contents, max_size=4))
    compression = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    try:
        raw = zip_bytes(members, compression)
    except (ValueError, UnicodeEncodeError, IndexError):  # names zipfile cannot write ("\0")
        raw = zip_bytes({"fashion_mnist.ipynb": NOTEBOOK})
    kind = draw(st.sampled_from([None, *DAMAGE]))
    if kind is not None and members:
        raw = damage(raw, kind)
    return raw


contents = st.one_of(small_contents, zips(), zips().map(lambda z: zip_bytes({"inner.zip": z})))


def metadata_for(draw, names: list[str]) -> bytes:
    """Gradescope's metadata, sound or not, naming some of the folders and some that are not there."""
    keys = [n for n in names if n.startswith("submission_")] + draw(
        st.lists(st.sampled_from(["submission_9", "submission_../../x", "submission_\ud800", "other"]), max_size=2))
    people = st.lists(st.fixed_dictionaries({
        ":name": st.sampled_from(["Lin Mei", "=cmd|' /C calc'!A0", "\ud800", "陳小明"]),
        ":email": st.sampled_from(["mei@example.edu", "MEI@example.edu", "@evil"]),
        ":sid": st.sampled_from(["B1", "b1", "+1", ""])}), max_size=2)
    mapping = {k: {":submitters": draw(people)} for k in keys}
    choice = draw(st.sampled_from(["sound", "sound", "junk", "deep", "list"]))
    if choice == "junk":
        return draw(st.binary(max_size=40))
    if choice == "deep":
        return b"a: " + b"[" * 5000 + b"]" * 5000
    if choice == "list":
        return b"- 1\n- 2\n"
    return yaml.safe_dump(mapping, allow_unicode=False).encode("utf-8", "surrogatepass")


@st.composite
def class_trees(draw) -> tuple[dict, bool]:
    """A class folder: name -> bytes (a file) or {name: bytes} (a folder); and whether it is made a
    Gradescope export (its metadata at the root)."""
    tree: dict = {}
    for name in draw(st.lists(file_names, min_size=0, max_size=6, unique_by=os.fsencode)):
        if draw(st.booleans()):
            tree[name] = draw(contents)
        else:
            inner = draw(st.lists(file_names, min_size=0, max_size=3, unique_by=os.fsencode))
            tree[name] = {n: draw(contents) for n in inner if n != intake.METADATA or draw(st.booleans())}
    export = draw(st.booleans())
    if export:
        tree[intake.METADATA] = metadata_for(draw, list(tree))
    elif intake.METADATA in tree and not isinstance(tree[intake.METADATA], dict):
        del tree[intake.METADATA]
    return tree, export


def build(folder: Path, tree: dict, outside: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in tree.items():
        path = folder / name
        if isinstance(value, dict):
            build(path, value, outside)
        else:
            path.write_bytes(value)
    # A link out of the class folder: read as a link, never followed.
    if not (folder / "link.ipynb").exists():
        (folder / "link.ipynb").symlink_to(outside / "secret.ipynb")


def visible(name: str) -> bool:
    return not (name.startswith(".") or name in intake.IGNORED_PARTS)


def holds_a_file(folder: Path) -> bool:
    """Whether anything visible (a file or a link) is in ``folder`` or below."""
    for child in folder.iterdir():
        if visible(child.name) and (child.is_symlink() or not child.is_dir() or holds_a_file(child)):
            return True
    return False


def expected_rows(source: Path) -> int:
    """Uploads, counted from the tree alone: each visible top-level entry, or in a Gradescope export
    each submission folder, each other entry, and each submission the metadata names with no folder."""
    top = [p for p in source.iterdir() if visible(p.name)]
    if len(top) == 1 and top[0].is_dir() and not top[0].is_symlink() and (top[0] / intake.METADATA).is_file() \
            and any(p.name.startswith("submission_") and not p.is_symlink() and p.is_dir() and holds_a_file(p)
                    for p in top[0].iterdir()):
        return expected_rows(top[0])  # an unpacked export in its one folder
    if not (source / intake.METADATA).is_file():
        return len(top)
    folders = {p.name for p in top if p.is_dir() and not p.is_symlink() and re.fullmatch(r"submission_.+", p.name, re.S)}
    others = [p for p in top if p.name != intake.METADATA and p.name not in folders]
    raw = (source / intake.METADATA).read_bytes()
    try:  # nesting this deep is refused unread by intake (and parsing it takes PyYAML minutes)
        meta = None if b"[" * 200 in raw else yaml.safe_load(raw)
    except Exception:
        meta = None
    keys = {str(k) for k in meta} if isinstance(meta, dict) else set()
    named = {k for k in keys if re.fullmatch(r"submission_.+", k, re.S)}
    return len(folders | named) + len(others)


def gradebook_rows(out: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO((out / store.GRADEBOOK).read_bytes().decode("utf-8-sig"), newline="")))


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(case=class_trees())
def test_intake_never_crashes_loses_or_writes_outside(tmp_path, case):
    tree, _ = case
    room = Path(tempfile.mkdtemp(dir=tmp_path))
    (room / "canary").mkdir()
    (room / "canary" / "secret.ipynb").write_bytes(NOTEBOOK)
    (room / "canary" / store.RESULTS).write_text('{"score": 0, "tests": []}')
    (room / "x").mkdir()  # where an id of ../../x would have pointed
    (room / "x" / store.LOG).write_text("canary")
    source, out = room / "class", room / "out"
    build(source, tree, room / "canary")
    zip_path = fake_autograder(room / "canary" / "autograder.zip")
    before = snapshot(room, skip=out)
    expected = expected_rows(source)

    fake = FakeGrader()
    try:
        result = batch.grade_class(source, out, zip_path, grade_fn=fake, use_watchdog=False)
    except intake.InputError:
        assert expected == 0, "a source with uploads was refused"
        assert snapshot(room, skip=out) == before
        return
    rows = gradebook_rows(out)
    assert len(rows) == len(result.records) == expected
    found = [r["id"] for r in rows]
    assert len({i.lower() for i in found}) == len(found) and all(ids.is_safe(i) for i in found)
    assert not {i.lower() for i in found} & store.OUTPUT_NAMES
    for row in rows:
        assert row["status"] in statuses.RECORDED
        assert row["status"] == "graded" or (row["message"] and row["message_zh"]), row
    assert len(fake.calls) == sum(1 for r in rows if r["status"] == "graded")
    assert snapshot(room, skip=out) == before
    # Every temporary folder of the gradings was under the output folder's .work/, now gone.
    assert all(Path(call["tempdir"]).is_relative_to(out.resolve() / store.WORK) for call in fake.calls)
    assert not (out / store.WORK).exists()

    first = snapshot(out)
    again = FakeGrader()
    batch.grade_class(source, out, zip_path, grade_fn=again, use_watchdog=False)
    assert again.calls == [], "a second run graded again what was recorded"
    assert snapshot(out) == first
    assert snapshot(room, skip=out) == before
