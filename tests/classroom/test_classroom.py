"""Class grading, defect by defect: each test is a way real uploads broke the batch (a crash, a
lost or misfiled row, a write outside the output folder, a stale grade), with a fake grader so
nothing is graded for real."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from rich.console import Console

from fashion_kit import cli, run
from fashion_kit.classroom import batch, exports, grader, ids, intake, report, store
from fashion_kit.grading import supervise

from .classroom_fakes import (DAMAGE, FakeGrader, damage, fake_autograder, notebook_text, snapshot,
                              v3_notebook_text, write_notebook, zip_bytes)


def grade(source: Path, out: Path, zip_path: Path, fake: FakeGrader | None = None, **kwargs) -> batch.BatchResult:
    return batch.grade_class(source, out, zip_path, grade_fn=fake or FakeGrader(), use_watchdog=False, **kwargs)


def rows(out: Path) -> dict[str, dict]:
    raw = (out / store.GRADEBOOK).read_bytes()
    assert raw.startswith(exports.BOM.encode()), "the gradebook starts with a BOM (Excel reads it as UTF-8)"
    found = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    ids_seen = [r["id"] for r in found]
    assert len(ids_seen) == len({i.lower() for i in ids_seen}), ids_seen
    return {r["id"]: r for r in found}


@pytest.fixture
def zip_path(tmp_path) -> Path:
    return fake_autograder(tmp_path / "ag" / "autograder.zip")


@pytest.fixture
def fake(monkeypatch) -> FakeGrader:
    """A fake grader the CLI uses too."""
    fake = FakeGrader()
    monkeypatch.setattr(grader, "grade_function", lambda: fake)
    return fake


def gradescope_metadata(entries: dict[str, list[dict]]) -> str:
    lines = []
    for key, people in entries.items():
        lines.append(f"{json.dumps(key)}:\n  :submitters:")
        for p in people:
            lines.append("  - " + "\n    ".join(f":{k}: {json.dumps(v)}" for k, v in p.items()))
    return "\n".join(lines) + "\n"


# ---- ids are data, never paths ----

def test_gradescope_ids_cannot_name_a_path_outside_the_output(tmp_path, zip_path):
    root = tmp_path / "room"
    out = root / "a" / "out"
    export = root / "a" / "export"
    for canary in (root / "x", root / "a"):  # where out/../../x and out/.. would have written
        canary.mkdir(parents=True, exist_ok=True)
        (canary / store.RESULTS).write_text('{"score": 0, "tests": []}')  # valid: the suite checks them
        (canary / store.LOG).write_text("canary")
    write_notebook(export / "submission_.." / "nb.ipynb", "x = 1")
    write_notebook(export / "submission_1" / "nb.ipynb", "x = 1")
    (export / intake.METADATA).write_text(gradescope_metadata({
        "submission_../../x": [{"name": "Mallory", "sid": "1"}], "submission_..": [{"name": "Eve", "sid": "2"}],
        "submission_1": [{"name": "Ann", "sid": "3"}]}), encoding="utf-8")
    before = snapshot(root, skip=out)
    grade(export, out, zip_path)
    assert snapshot(root, skip=out) == before
    found = rows(out)
    assert sorted(r["gradescope_id"] for r in found.values()) == ["..", "../../x", "1"]
    for sub_id in found:
        assert ids.is_safe(sub_id) and (out / sub_id / store.RECORD).is_file()


def test_an_output_name_is_never_an_id(tmp_path, zip_path):
    cls = tmp_path / "class"
    for name in ("gradebook.csv", "report.html", "feedback", "record.json", "CON", "Gradebook.CSV"):
        write_notebook(cls / f"{name}.ipynb", "x = 1")
    out = tmp_path / "out"
    grade(cls, out, zip_path)
    found = rows(out)
    assert len(found) == 6
    assert not {i.lower() for i in found} & store.OUTPUT_NAMES
    assert (out / store.GRADEBOOK).is_file() and not (out / store.GRADEBOOK).is_dir()


def test_store_refuses_paths_outside_the_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(tmp_path)
    for parts in ((".."), ("..", "x"), ("link", "x"), ("a/../..", "x"), ("",)):
        with pytest.raises(store.OutsideOutput):
            store.write(out, *([parts] if isinstance(parts, str) else parts), data="x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ---- one bad file never crashes the batch ----

@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_zip_is_one_invalid_row(tmp_path, zip_path, kind):
    cls = tmp_path / "class"
    (cls).mkdir()
    (cls / "damaged.zip").write_bytes(damage(zip_bytes({"fashion_mnist.ipynb": notebook_text("x = 1")}), kind))
    write_notebook(cls / "fine.ipynb", "x = 1")
    result = grade(cls, tmp_path / "out", zip_path)
    found = rows(tmp_path / "out")
    assert set(found) == {"damaged", "fine"}
    assert found["fine"]["status"] == "graded"
    assert found["damaged"]["status"] == "invalid" and found["damaged"]["message"] and found["damaged"]["message_zh"]
    assert not result.all_graded


@pytest.mark.parametrize("kind", ["bad_crc", "encrypted", "unknown_compression", "larger_size"])
def test_a_damaged_member_of_a_gradescope_zip_is_one_invalid_row(tmp_path, zip_path, kind):
    notebook = notebook_text("x = 1")
    member = damage(zip_bytes({"export/submission_2/nb.ipynb": notebook}), kind)
    # The damaged member is the class zip's first; the rest of the export is sound.
    sound = zip_bytes({"export/submission_1/nb.ipynb": notebook,
                       "export/" + intake.METADATA: gradescope_metadata({"submission_1": [], "submission_2": []})})
    source = tmp_path / "class.zip"
    source.write_bytes(_join_zips(member, sound))
    grade(source, tmp_path / "out", zip_path)
    found = rows(tmp_path / "out")
    assert {k: r["status"] for k, r in found.items()} == {"1": "graded", "2": "invalid"}


def _join_zips(first: bytes, second: bytes) -> bytes:
    """One zip holding the members of both, each member's bytes (damage included) kept as they are."""
    import struct

    out, central, count = bytearray(), bytearray(), 0
    for raw in (first, second):
        cd = raw.find(b"PK\x01\x02")
        end = raw.rfind(b"PK\x05\x06")
        shift = len(out)
        out += raw[:cd]
        entries = bytearray(raw[cd:end])
        pos = 0
        while pos < len(entries):
            struct.pack_into("<I", entries, pos + 42, struct.unpack_from("<I", entries, pos + 42)[0] + shift)
            n, m, k = struct.unpack_from("<HHH", entries, pos + 28)
            pos += 46 + n + m + k
            count += 1
        central += entries
    offset = len(out)
    out += central
    out += b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, count, count, len(central), offset, 0)
    return bytes(out)


def test_deeply_nested_json_is_invalid_in_grade_and_run(tmp_path, zip_path, capsys):
    cls = tmp_path / "class"
    cls.mkdir()
    (cls / "deep.ipynb").write_text("[" * 200_000 + "]" * 200_000)
    (cls / "deep_object.ipynb").write_text('{"cells": ' + '{"a": ' * 200_000 + "1" + "}" * 200_001)
    grade(cls, tmp_path / "out", zip_path)
    found = rows(tmp_path / "out")
    assert {r["status"] for r in found.values()} == {"invalid"}
    assert all("nested more than" in r["message"] for r in found.values())
    assert cli.main(["run", str(cls / "deep.ipynb"), "--autograder", str(zip_path), "-o", str(tmp_path / "r")]) == 1
    assert "nested more than" in capsys.readouterr().err


def test_messages_with_markup_are_printed_as_text(tmp_path, zip_path, fake, capsys):
    cls = tmp_path / "class"
    cls.mkdir()
    (cls / "x.zip").write_bytes(zip_bytes({"[/x] [bold].ipynb": ""}))  # a file name cannot hold "/"
    code = cli.main(["grade", str(cls), "-o", str(tmp_path / "out"), "--autograder", str(zip_path), "--no-sandbox"])
    assert code == 1
    assert "[/x] [bold].ipynb is empty" in capsys.readouterr().err.replace("\n", " ")


def test_lone_surrogates_in_names_do_not_crash(tmp_path, zip_path, fake, capsys):
    cls = tmp_path / "class"
    cls.mkdir()
    odd = os.fsdecode(b"caf\xe9.ipynb")  # a Latin-1 name: a lone surrogate once decoded
    (cls / odd).write_text(notebook_text("x = 1"))
    (cls / os.fsdecode(b"\xff\xfe.ipynb")).write_text("")
    code = cli.main(["grade", str(cls), "-o", str(tmp_path / "out"), "--autograder", str(zip_path), "--no-sandbox"])
    assert code == 1
    found = rows(tmp_path / "out")
    assert len(found) == 2 and all(ids.is_safe(i) for i in found)
    assert "caf\ufffd.ipynb" in {r["original_name"] for r in found.values()}
    assert cli.main(["run", str(cls / os.fsdecode(b"\xff\xfe.ipynb")), "--autograder", str(zip_path),
                     "-o", str(tmp_path / "r")]) == 1
    assert "is empty" in capsys.readouterr().err


# ---- nothing silently lost ----

def test_a_notebook_and_a_zip_of_the_same_name_are_two_rows(tmp_path, zip_path):
    cls = tmp_path / "class"
    write_notebook(cls / "bob.ipynb", "x = 1")
    (cls / "bob.ipynb.zip").write_bytes(zip_bytes({"fashion_mnist.ipynb": notebook_text("x = 1", "y = 2")}))
    for _ in range(2):  # and a re-run keeps both
        grade(cls, tmp_path / "out", zip_path)
        found = rows(tmp_path / "out")
        assert sorted(r["original_name"] for r in found.values()) == ["bob.ipynb", "bob.ipynb.zip"]
        assert {r["status"] for r in found.values()} == {"graded"}
        assert sorted(r["duplicate_of"] for r in found.values()) == ["", "bob"]


def test_a_metadata_file_in_a_student_folder_does_not_switch_modes(tmp_path, zip_path):
    cls = tmp_path / "class"
    write_notebook(cls / "alice.ipynb", "x = 1")
    write_notebook(cls / "bob.ipynb", "x = 1")
    write_notebook(cls / "carol" / "notebook.ipynb", "x = 1")
    (cls / "carol" / intake.METADATA).write_text("submission_1: {}\n")
    write_notebook(cls / "carol" / "submission_1" / "other.ipynb", "x = 1")
    grade(cls, tmp_path / "out", zip_path)
    found = rows(tmp_path / "out")
    assert set(found) == {"alice", "bob", "carol"}
    assert found["carol"]["status"] == "invalid" and "2 notebooks" in found["carol"]["message"]


def _two_of_alice(cls: Path) -> None:
    write_notebook(cls / "alice.ipynb", "x = 1")  # older, more cells
    os.utime(cls / "alice.ipynb", (1_000_000, 1_000_000))
    write_notebook(cls / "Alice.ipynb")  # newer, no cells
    os.utime(cls / "Alice.ipynb", (2_000_000, 2_000_000))
    write_notebook(cls / "bob.ipynb", "x = 1")


@pytest.mark.parametrize("choice, counted", [("latest", {"Alice"}), ("highest", {"alice-2"}),
                                             ("both", {"Alice", "alice-2"})])
def test_the_same_student_twice_is_flagged_and_the_instructor_chooses(tmp_path, zip_path, choice, counted):
    cls = tmp_path / "class"
    _two_of_alice(cls)
    grade(cls, tmp_path / "out", zip_path, duplicates=choice)
    found = rows(tmp_path / "out")
    assert {k: r["original_name"] for k, r in found.items()} == {
        "Alice": "Alice.ipynb", "alice-2": "alice.ipynb", "bob": "bob.ipynb"}
    assert {k: r["duplicate_of"] for k, r in found.items()} == {"Alice": "", "alice-2": "Alice", "bob": ""}
    assert {k for k, r in found.items() if r["counted"] == "yes"} == counted | {"bob"}


def test_two_gradescope_submissions_of_one_student_are_flagged(tmp_path, zip_path):
    export = tmp_path / "export"
    for n in (1, 2, 3):
        write_notebook(export / f"submission_{n}" / "nb.ipynb", *["x = 1"] * n)
    (export / intake.METADATA).write_text(gradescope_metadata({
        "submission_1": [{"name": "Lin Mei", "email": "mei@example.edu", "sid": "B1234"}],
        "submission_2": [{"name": "Lin Mei", "email": "MEI@example.edu", "sid": "b1234"}],
        "submission_3": [{"name": "Chen Wei", "email": "wei@example.edu", "sid": "B9"}]}), encoding="utf-8")
    grade(export, tmp_path / "out", zip_path, duplicates="highest")
    found = rows(tmp_path / "out")
    assert {k: r["duplicate_of"] for k, r in found.items()} == {"1": "", "2": "1", "3": ""}
    assert {k: r["counted"] for k, r in found.items()} == {"1": "no", "2": "yes", "3": "yes"}
    assert found["1"]["sids"] == "B1234" and found["1"]["emails"] == "mei@example.edu"
    record = json.loads((tmp_path / "out" / "1" / store.RECORD).read_text())
    assert record["submitters"] == [{"name": "Lin Mei", "email": "mei@example.edu", "sid": "B1234"}]


# ---- resume knows what graded it ----

def test_a_changed_autograder_or_setting_regrades_and_says_why(tmp_path, zip_path):
    cls = tmp_path / "class"
    write_notebook(cls / "a.ipynb", "x = 1")
    write_notebook(cls / "b.ipynb", "x = 1")
    out = tmp_path / "out"
    grade(cls, out, zip_path)
    fake = FakeGrader()
    again = grade(cls, out, zip_path, fake)
    assert fake.calls == [] and again.skipped == 2 and again.regraded == {}

    fake_autograder(zip_path, min_test_accuracy=0.9)  # a raised threshold
    fake = FakeGrader()
    again = grade(cls, out, zip_path, fake)
    assert fake.graded == ["a", "b"] and again.regraded == {batch.REASON_GRADER: 2}
    console = Console(record=True, width=200)
    report.print_summary(again, console)
    assert f"2 because {batch.REASON_GRADER}" in console.export_text()

    from fashion_kit import settings as settings_module

    fake = FakeGrader()
    longer = settings_module.from_zip(zip_path).replace(timeout_seconds=1000)
    again = grade(cls, out, zip_path, fake, settings=longer)
    assert fake.graded == ["a", "b"] and again.regraded == {batch.REASON_GRADER: 2}

    fake = FakeGrader()
    again = grade(cls, out, zip_path, fake, settings=longer, sandbox="none")
    assert fake.graded == ["a", "b"] and {r.sandbox for r in again.records} == {"none"}
    assert {r["sandbox"] for r in rows(out).values()} == {"none"}

    write_notebook(cls / "b.ipynb", "x = 2")
    fake = FakeGrader()
    again = grade(cls, out, zip_path, fake, settings=longer, sandbox="none")
    assert fake.graded == ["b"] and again.regraded == {batch.REASON_UPLOAD: 1}


def test_one_student_is_graded_again_on_request(tmp_path, zip_path):
    cls = tmp_path / "class"
    for name in ("a", "b", "c"):
        write_notebook(cls / f"{name}.ipynb", "x = 1")
    out = tmp_path / "out"
    grade(cls, out, zip_path)
    fake = FakeGrader()
    result = grade(cls, out, zip_path, fake, student="b")
    assert fake.graded == ["b"] and len(result.records) == 3 and set(rows(out)) == {"a", "b", "c"}
    with pytest.raises(batch.BatchError, match="No submission has the id"):
        grade(cls, out, zip_path, student="zed")
    with pytest.raises(batch.BatchError, match="--student"):
        grade(cls, out, zip_path, student="../a")


# ---- nothing left elsewhere ----

def test_temporary_files_live_under_the_output_and_are_removed(tmp_path, zip_path, monkeypatch):
    system_tmp = tmp_path / "system-tmp"  # this test's own: other workers of the suite share the real one
    system_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(system_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    cls = tmp_path / "class"
    write_notebook(cls / "a.ipynb", "x = 1")
    (cls / "b.zip").write_bytes(zip_bytes({"fashion_mnist.ipynb": notebook_text("x = 1")}))
    out = tmp_path / "out"
    (out / store.WORK / "copies").mkdir(parents=True)  # left by a batch that was killed
    (out / store.WORK / "copies" / "alice.ipynb").write_text("a student's notebook")
    fake = FakeGrader()
    grade(cls, out, zip_path, fake)
    for call in fake.calls:
        assert call["notebook"].is_relative_to(out.resolve() / store.WORK)
        assert Path(call["tempdir"]).is_relative_to(out.resolve() / store.WORK)
    assert not (out / store.WORK).exists()
    assert tempfile.gettempdir() == str(system_tmp)  # restored
    assert os.listdir(system_tmp) == []


# ---- smaller ----

def test_gradebook_cells_cannot_run_as_formulas(tmp_path, zip_path):
    export = tmp_path / "export"
    write_notebook(export / "submission_1" / "nb.ipynb", "x = 1")
    (export / "submission_2").mkdir()
    (export / "submission_2" / "=HYPERLINK(\"http---evil\").ipynb").write_text("")
    (export / intake.METADATA).write_text(gradescope_metadata({
        "submission_1": [{"name": "=HYPERLINK(\"http://evil\",\"x\")", "email": "@evil", "sid": "+1"}],
        "submission_2": [{"name": "-2+3", "email": "\tx", "sid": "\r1"}]}), encoding="utf-8")
    grade(export, tmp_path / "out", zip_path)
    for row in rows(tmp_path / "out").values():
        for cell in row.values():
            assert not cell.startswith(exports.FORMULA_STARTS), (cell, row)
    assert rows(tmp_path / "out")["1"]["submitters"] == "'=HYPERLINK(\"http://evil\",\"x\")"


def test_files_that_are_no_submission_are_ignored_not_failed(tmp_path, zip_path, fake):
    cls = tmp_path / "class"
    write_notebook(cls / "alice.ipynb", "x = 1")
    for name in ("README.md", "roster.csv", "notes.txt", "essay.pdf"):
        (cls / name).write_text("not a submission")
    out = tmp_path / "out"
    assert cli.main(["grade", str(cls), "-o", str(out), "--autograder", str(zip_path), "--no-sandbox"]) == 0
    found = rows(out)
    assert {k: r["status"] for k, r in found.items()} == {
        "alice": "graded", "README.md": "ignored", "roster.csv": "ignored", "notes.txt": "ignored",
        "essay.pdf": "ignored"}
    assert {k for k, r in found.items() if r["counted"] == "yes"} == {"alice"}


def test_model_files_travel_with_their_notebook(tmp_path, zip_path):
    cls = tmp_path / "class"
    write_notebook(cls / "folder" / "my work.ipynb", "x = 1")
    (cls / "folder" / "challenge_model.keras").write_bytes(b"challenge-in-folder")
    (cls / "folder" / "fashion_mnist_model.keras").write_bytes(b"model-in-folder")
    (cls / "exported.zip").write_bytes(zip_bytes({"fashion_mnist.ipynb": notebook_text("x = 1"),
                                                  "Fashion_MNIST_Model.keras": b"keras-in-zip",
                                                  "challenge_model.keras": b"no entry",
                                                  "fashion_mnist_model.h5": b"h5-in-zip"}))
    write_notebook(cls / "plain.ipynb", "x = 1")
    fake = FakeGrader()
    grade(cls, tmp_path / "out", zip_path, fake)
    extra = {call["output"].name: call["extra"] for call in fake.calls}
    assert extra == {
        "folder": {"fashion_mnist_model.keras": b"model-in-folder"},
        "exported": {"fashion_mnist_model.keras": b"keras-in-zip", "fashion_mnist_model.h5": b"h5-in-zip"},
        "plain": {},
    }
    export = tmp_path / "export"
    write_notebook(export / "submission_7" / "nb.ipynb", "x = 1")
    (export / "submission_7" / "fashion_mnist_model.keras").write_bytes(b"gradescope")
    (export / intake.METADATA).write_text("submission_7: {}\n")
    fake = FakeGrader()
    grade(export, tmp_path / "out2", zip_path, fake)
    assert fake.calls[0]["extra"] == {"fashion_mnist_model.keras": b"gradescope"}


def test_messages_name_what_was_uploaded(tmp_path, zip_path):
    cls = tmp_path / "class"
    cls.mkdir()
    (cls / "alice.zip").write_bytes(zip_bytes({"fashion_mnist.ipynb": ""}))
    (cls / "bob.ipynb").write_text("{")
    grade(cls, tmp_path / "out", zip_path)
    found = rows(tmp_path / "out")
    assert found["alice"]["original_name"] == "alice.zip"
    assert "alice.zip" in found["alice"]["message"] and "fashion_mnist.ipynb is empty" in found["alice"]["message"]
    assert found["bob"]["message"].startswith("bob.ipynb is not a Jupyter notebook")
    assert not any(store.WORK in r["message"] or ".zip.ipynb" in r["message"] for r in found.values())


def test_a_version_3_notebook_is_converted_not_refused(tmp_path, zip_path, monkeypatch):
    cls = tmp_path / "class"
    cls.mkdir()
    (cls / "old.ipynb").write_text(v3_notebook_text("x = 1", "y = 2"))
    fake = FakeGrader()
    grade(cls, tmp_path / "out", zip_path, fake)
    assert rows(tmp_path / "out")["old"]["status"] == "graded" and rows(tmp_path / "out")["old"]["q2"] == "1"
    seen = []

    def core(command, **kwargs):  # what the grading core would be handed in Gradescope's layout
        folder = Path(command[command.index("fashion_kit.grading.core") + 1])
        seen.append(json.loads((folder / "submission" / "fashion_mnist.ipynb").read_text(encoding="utf-8")))
        return supervise.Supervised(None, 1, 0, "", 0.0)

    monkeypatch.setattr(run.supervise, "run", core)
    cli.main(["run", str(cls / "old.ipynb"), "--autograder", str(zip_path), "-o", str(tmp_path / "r"), "--no-sandbox"])
    assert seen[0]["nbformat"] == 4 and len(seen[0]["cells"]) == 2


def test_run_takes_a_notebook_named_like_an_option(tmp_path, zip_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("-rf.ipynb").write_text(notebook_text("x = 1"))
    seen = []
    monkeypatch.setattr(run, "grade", lambda path, *a, **k: seen.append(Path(path).read_text())
                        or run.Outcome(str(path), "graded", scores={"q1": (1.0, 1.0)}))
    assert cli.main(["run", "-rf.ipynb", "--autograder", str(zip_path)]) == 0
    assert cli.main(["run", "--autograder", str(zip_path), "--", "-rf.ipynb"]) == 0
    assert len(seen) == 2 and Path("-rf.ipynb").is_file()


def test_run_reports_a_folder_as_a_folder(tmp_path, zip_path, capsys):
    assert cli.main(["run", str(tmp_path), "--autograder", str(zip_path)]) == 2
    # The console wraps at its width, so a longer temporary path moves the line breaks.
    assert "is a folder" in " ".join(capsys.readouterr().err.split())


def test_run_refuses_a_huge_file_without_reading_it(tmp_path, zip_path, capsys):
    huge = tmp_path / "huge.ipynb"
    with open(huge, "wb") as f:
        f.truncate(300 * 2**20)
    tracemalloc.start()
    try:
        code = cli.main(["run", str(huge), "--autograder", str(zip_path), "-o", str(tmp_path / "r")])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 1 and "larger than the" in capsys.readouterr().err
    assert peak < 50 * 2**20


def test_a_second_batch_on_the_same_output_is_refused(tmp_path, zip_path, fake, capsys):
    from fashion_kit.classroom import lock

    write_notebook(tmp_path / "class" / "a.ipynb", "x = 1")
    (tmp_path / "out").mkdir()
    with lock.OutputLock(tmp_path / "out"):
        assert cli.main(["grade", str(tmp_path / "class"), "-o", str(tmp_path / "out"),
                         "--autograder", str(zip_path), "--no-sandbox"]) == 2
    assert "Another `fashion-kit grade`" in capsys.readouterr().err


def test_a_bug_in_the_kit_is_one_row_with_its_traceback_in_the_log(tmp_path, zip_path):
    class Broken(FakeGrader):
        def __call__(self, *args, **kwargs):
            raise TypeError("grade() got an unexpected keyword argument 'cancel'")

    write_notebook(tmp_path / "in" / "anna.ipynb", "x = 1")
    result = grade(tmp_path / "in", tmp_path / "out", zip_path, Broken())
    (record,) = result.records
    assert record.status == "error" and "grading.log" in record.message and "TypeError" in record.message
    log = (tmp_path / "out" / record.id / store.LOG).read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in log and "in __call__" in log


def test_the_output_folder_is_the_instructors_alone_or_shared_read_only_with_a_group(tmp_path, zip_path):
    """Students' notebooks, grades and the gradings in flight: no other local account may reach them."""
    import grp
    import stat

    from fashion_kit import folders

    cls = tmp_path / "class"
    write_notebook(cls / "a.ipynb", "x = 1")
    seen = []

    class Looking(FakeGrader):
        def __call__(self, notebook, *args, **kwargs):
            seen.append(stat.S_IMODE((out / store.WORK).stat().st_mode))
            return super().__call__(notebook, *args, **kwargs)

    out = tmp_path / "graded"
    out.mkdir(mode=0o755)
    grade(cls, out, zip_path, Looking())
    assert stat.S_IMODE(out.stat().st_mode) == folders.PRIVATE and seen == [folders.PRIVATE]

    group = grp.getgrgid(os.getgid()).gr_name if os.getgid() else "nogroup"
    shared = grade(cls, tmp_path / "shared", zip_path, group=group)
    assert shared.all_graded
    info = (tmp_path / "shared").stat()
    assert stat.S_IMODE(info.st_mode) == folders.GROUP_READABLE and info.st_gid == grp.getgrnam(group).gr_gid
    with pytest.raises(batch.BatchError, match="no such group"):
        grade(cls, tmp_path / "other", zip_path, group="no-such-group-here")
