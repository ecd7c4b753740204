"""Grading a whole class: input discovery, supervision (time, memory, output), the gradebook,
resumption, the report, and one acceptance run of the CLI over a mixed class. Tests that grade for
real are marked slow; the rest use a fake grader (see tests/classroom/test_classroom.py for more)."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path

import nbformat
import psutil
import pytest

from fashion_kit import questions, run, settings as settings_module
from fashion_kit.classroom import batch, exports, intake, report, store
from fashion_kit.classroom.intake import InputError
from fashion_kit.grading import layout, supervise

from .. import gradescope_spec
from ..grading.accounts import ordinary_account, run_as
from . import classroom_fakes
from ..conftest import GRADING_JOBS, QUICK_FIT_ENV, QUICK_MIN_ACCURACY, TOTAL, TOTAL_SHOWN, mutate, with_settings

MB = 2**20
QUESTIONS = list(questions.NAMES)


def tiny(path: Path, *cells: str, assignment: str | None = "fashion_mnist") -> Path:
    """A notebook that needs no training: grading it takes seconds, not a minute."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    if assignment is not None:
        nb.metadata["otter"] = {"assignment_name": assignment}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def export_zip(path: Path, notebook: Path, *extra: tuple[str, str]) -> Path:
    """A zip laid out as grader.export() makes it."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(notebook, "fashion_mnist.ipynb")
        zf.writestr("__zip_filename__", path.name)
        for name, text in extra:
            zf.writestr(name, text)
    return path


def bad_inputs(folder: Path, good: Path) -> dict[str, str]:
    """Every kind of broken upload, and the words its message must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.ipynb").write_bytes(b"")
    (folder / "truncated.ipynb").write_text('{"cells": [', encoding="utf-8")
    (folder / "not_a_notebook.ipynb").write_text('{"name": "a JSON file"}', encoding="utf-8")
    (folder / "essay.pdf").write_bytes(b"%PDF-1.4 not a notebook")
    with zipfile.ZipFile(folder / "no_notebook.zip", "w") as zf:
        zf.writestr("answers.py", "x = 1")
    with zipfile.ZipFile(folder / "two_notebooks.zip", "w") as zf:
        zf.write(good, "fashion_mnist.ipynb")
        zf.write(good, "fashion_mnist (copy).ipynb")
    (folder / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with open(folder / "huge.ipynb", "wb") as f:
        f.truncate(3 * MB)  # over the 2 MB cap these tests use
    return {
        "empty": "is empty",
        "truncated": "not valid JSON",
        "not_a_notebook": "no 'cells'",
        "essay.pdf": "not a notebook (.ipynb) nor an exported zip",
        "no_notebook": "no notebook",
        "two_notebooks": "2 notebooks",
        "broken": "not a valid zip",
        "huge": "larger than the 2.0 MB limit",
    }


def gradebook(out: Path) -> list[dict]:
    with open(out / store.GRADEBOOK, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def by_id(rows: list[dict]) -> dict[str, dict]:
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), f"duplicated rows: {ids}"
    return {r["id"]: r for r in rows}


def discover(source: Path, out: Path, max_bytes: int) -> list[intake.Upload]:
    return intake.discover(source, out, max_bytes)


def tagged_processes(tag: str) -> list[psutil.Process]:
    """Processes (left over from a batch) whose environment carries ``tag``."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("FASHION_KIT_TEST_TAG") == tag:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def cli(*args: str, tag: str, quick: bool = False, **kwargs) -> subprocess.Popen:
    """``fashion-kit grade ARGS`` in a process of its own, its gradings tagged; ``quick``: with the
    tests' quick fit (conftest.QUICK_FIT_ENV)."""
    env = {**os.environ, "FASHION_KIT_TEST_TAG": tag, **(QUICK_FIT_ENV if quick else {})}
    return subprocess.Popen([sys.executable, "-m", "fashion_kit", "grade", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def limits(autograder_zip: Path, **overrides) -> settings_module.Settings:
    """The zip's settings with the limits these tests use."""
    values = {"timeout_seconds": 120, "memory_limit_mb": 4096, "max_notebook_mb": 2, **overrides}
    return settings_module.from_zip(autograder_zip).replace(**values)


# ---- discovery: no grading ----

def test_folder_of_notebooks_and_exports(tmp_path):
    good = tiny(tmp_path / "src" / "good.ipynb", "x = 1")
    folder = tmp_path / "class"
    tiny(folder / "alice.ipynb", "x = 1")
    export_zip(folder / "bob.zip", good, (".OTTER_LOG", "log"), ("model.keras", "weights"))
    tiny(folder / "carol" / "My notebook (1).ipynb", "x = 2")  # one folder per student
    tiny(folder / "dup.ipynb", "x = 3")
    export_zip(folder / "dup.zip", good)
    (folder / ".DS_Store").write_bytes(b"\0")
    tiny(folder / "__MACOSX" / "alice.ipynb", "x = 1")
    subs = {s.id: s for s in discover(folder, tmp_path / "out", 2 * MB)}
    assert sorted(subs) == ["alice", "bob", "carol", "dup", "dup-2"]
    assert all(not s.status and s.notebook.is_file() for s in subs.values())
    assert nbformat.read(str(subs["bob"].notebook), 4).cells[0].source == "x = 1"
    assert subs["bob"].digest == subs["dup-2"].digest != subs["dup"].digest
    assert (subs["dup"].original_name, subs["dup-2"].original_name) == ("dup.ipynb", "dup.zip")


def test_bad_inputs_are_submissions_with_a_problem(tmp_path):
    good = tiny(tmp_path / "good.ipynb", "x = 1")
    expected = bad_inputs(tmp_path / "class", good)
    subs = {s.id: s for s in discover(tmp_path / "class", tmp_path / "out", 2 * MB)}
    assert set(subs) == set(expected)
    assert subs["essay.pdf"].status == "ignored"  # a PDF beside the notebooks is listed, not a failure
    for name in set(expected) - {"essay.pdf"}:
        assert subs[name].status == "invalid" and subs[name].notebook is None, name
        assert expected[name] in subs[name].message, subs[name].message
        assert subs[name].message_zh, name


def gradescope_export(root: Path, good: Path) -> None:
    """A synthetic Gradescope "Export Submissions" archive, unpacked under ``root``."""
    (root / "submission_1001").mkdir(parents=True)
    (root / "submission_1001" / "fashion_mnist.ipynb").write_bytes(good.read_bytes())
    (root / "submission_1002").mkdir()
    export_zip(root / "submission_1002" / "fashion_mnist_2026_11_28T10_00_00.zip", good)
    (root / "submission_1003").mkdir()
    (root / "submission_1003" / "answers.txt").write_text("I could not finish", encoding="utf-8")
    (root / "submission_metadata.yml").write_text(
        "submission_1001:\n  :submitters:\n  - :name: Lin Mei\n    :sid: '41'\n    :email: mei@example.edu\n"
        "  :created_at: 2026-11-28 10:00:00 +0800\n  :score: 0.0\n"
        "submission_1002:\n  :submitters:\n  - :name: Chen Wei\n    :email: wei@example.edu\n"
        "  - :name: Wang Hao\n    :email: hao@example.edu\n"
        "submission_1003:\n  :submitters:\n  - :name: Lee Ann\n    :email: ann@example.edu\n"
        "submission_1004:\n  :submitters:\n  - :name: Kao Yu\n    :email: yu@example.edu\n",
        encoding="utf-8",
    )


@pytest.mark.parametrize("packed", ["zip", "folder"])
def test_gradescope_export(tmp_path, packed):
    good = tiny(tmp_path / "good.ipynb", "x = 1")
    export = tmp_path / "export" / "assignment_7_export"
    gradescope_export(export, good)
    source = export.parent
    if packed == "zip":
        source = tmp_path / "submissions.zip"
        with zipfile.ZipFile(source, "w") as zf:
            for path in sorted(export.rglob("*")):
                zf.write(path, path.relative_to(export.parent).as_posix())
    subs = {s.id: s for s in discover(source, tmp_path / "out", 2 * MB)}
    assert sorted(subs) == ["1001", "1002", "1003", "1004"]
    assert subs["1001"].submitters == [{"name": "Lin Mei", "email": "mei@example.edu", "sid": "41"}]
    assert [p["name"] for p in subs["1002"].submitters] == ["Chen Wei", "Wang Hao"]
    assert subs["1001"].gradescope_id == "1001"
    assert subs["1001"].digest == subs["1002"].digest and not subs["1002"].status
    assert "no notebook" in subs["1003"].message and "answers.txt" in subs["1003"].message
    assert "no files" in subs["1004"].message  # listed in the metadata, nothing uploaded


def test_unusable_sources_are_refused_clearly(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        discover(tmp_path / "nowhere", tmp_path / "out", MB)
    plain = tmp_path / "one.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("fashion_mnist.ipynb", "{}")
    with pytest.raises(InputError, match="not a Gradescope export"):
        discover(plain, tmp_path / "out", MB)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no submissions"):
        discover(tmp_path / "empty", tmp_path / "out", MB)


# ---- supervision pieces: no grading ----

def test_output_flood_is_capped(tmp_path):
    flood = "import os\nfor _ in range(800): os.write(1, b'x' * 65536)\nos.write(1, b'THE END')"
    proc = subprocess.Popen([sys.executable, "-c", flood], stdout=subprocess.PIPE)
    log = supervise.CappedLog(proc.stdout)
    proc.wait()
    log.join()
    text = log.text()
    assert len(text) < supervise.LOG_HEAD_BYTES + supervise.LOG_TAIL_BYTES + 200  # 50 MB went in
    assert "bytes of output dropped" in text and text.endswith("THE END")


def test_limits_come_from_the_zip_and_the_command_line(tmp_path, monkeypatch):
    zip_path = tmp_path / "ag.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("otter_config.json", json.dumps({"fashion_kit": {"timeout_seconds": 300, "memory_limit_mb": 3000}}))
        zf.writestr("tests/q1.py", 'name = "q1"\npoints = 1\n')
    seen = {}

    def grade_class(source, out, autograder_zip, **kwargs):
        seen.update(kwargs)
        raise batch.BatchError("stop here")

    monkeypatch.setattr(batch, "grade_class", grade_class)
    from fashion_kit import cli

    assert cli.main(["grade", str(tmp_path), "--autograder", str(zip_path), "--timeout", "60", "--no-sandbox"]) == 2
    grading = seen["settings"]
    assert (grading.timeout_seconds, grading.memory_limit_mb) == (60, 3000)  # the flag wins, the zip fills in
    assert seen["sandbox"] == "none"


def test_report_shows_rates_histogram_and_failures(tmp_path):
    full = {q: [1.0, 1.0] for q in QUESTIONS}
    half = {q: [1.0 if i % 2 else 0.0, 1.0] for i, q in enumerate(QUESTIONS)}
    records = [
        store.Record("a", "a.ipynb", "graded", scores=full), store.Record("b", "b.ipynb", "graded", scores=half),
        store.Record("c", "c.ipynb", "timeout", "Stopped after 900 s <slow>"),
    ]
    result = batch.BatchResult(records, QUESTIONS)
    assert report.pass_rates(records, QUESTIONS)["q1_load_data"] == 0.5
    assert report.pass_rates(records, QUESTIONS)["q2_class_names"] == 1.0
    page = report.html_report(result)
    images = [part.split('"', 1)[0] for part in page.split("data:image/png;base64,")[1:]]
    assert len(images) == 2 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "Stopped after 900 s &lt;slow&gt;" in page  # messages are escaped
    rows = list(csv.DictReader(io.StringIO(exports.gradebook_csv(records, QUESTIONS).lstrip(exports.BOM))))
    assert [(r["id"], r["total"], r["status"]) for r in rows] == [
        ("a", "10", "graded"), ("b", "5", "graded"), ("c", "", "timeout")]


def fake_autograder(path: Path, **config) -> Path:
    return classroom_fakes.fake_autograder(path, QUESTIONS, **config)


def test_bad_inputs_get_rows_without_starting_a_grader(tmp_path):
    def no_grading(*args, **kwargs):
        raise AssertionError("a submission that cannot be read must not be graded")

    good = tiny(tmp_path / "good.ipynb", "x = 1")
    expected = bad_inputs(tmp_path / "class", good)
    zip_path = fake_autograder(tmp_path / "ag.zip")
    result = batch.grade_class(tmp_path / "class", tmp_path / "out", zip_path, grade_fn=no_grading,
                               settings=limits(zip_path), use_watchdog=False)
    rows = by_id(gradebook(tmp_path / "out"))
    assert set(rows) == set(expected) and not result.all_graded
    for name, words in expected.items():
        status = "ignored" if name == "essay.pdf" else "invalid"
        assert rows[name]["status"] == status and words in rows[name]["message"], rows[name]
        assert json.loads((tmp_path / "out" / name / store.RECORD).read_text())["status"] == status


def test_a_grader_failure_is_one_row_not_a_crashed_batch(tmp_path):
    def fake_grade(notebook, autograder_zip, output_folder, **kwargs):
        if Path(output_folder).name == "b":
            raise OSError("disk full")
        return run.Outcome(str(notebook), "graded", scores={q: (1.0, 1.0) for q in QUESTIONS}, sandbox="none")

    for name in ("a", "b", "c"):
        tiny(tmp_path / "class" / f"{name}.ipynb", "x = 1")
    zip_path = fake_autograder(tmp_path / "ag.zip")
    result = batch.grade_class(tmp_path / "class", tmp_path / "out", zip_path, grade_fn=fake_grade,
                               use_watchdog=False)
    rows = by_id(gradebook(tmp_path / "out"))
    assert {k: (r["status"], r["total"]) for k, r in rows.items()} == {
        "a": ("graded", "10"), "b": ("error", ""), "c": ("graded", "10")}
    assert "disk full" in rows["b"]["message"] and not result.all_graded


def plant_trap(folder: str) -> None:
    """What a notebook can leave where the gradings' temporary folders go: a folder only its owner
    may write and enter (0300), a chain deeper than Python's recursion in it, bytes at the bottom."""
    current = os.open(tempfile.mkdtemp(dir=folder), os.O_RDONLY | os.O_DIRECTORY)
    os.fchmod(current, 0o300)
    for _ in range(1100):
        os.mkdir("d", dir_fd=current)
        below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=current)
        os.fchmod(below, 0o300)
        os.close(current)
        current = below
    fd = os.open("bytes", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=current)
    os.write(fd, b"x" * 65536)
    os.close(fd)
    os.close(current)


def test_what_no_clean_up_can_remove_stops_neither_this_batch_nor_the_next():
    # Graded by an ordinary account (as root everything can be removed): a killed batch left in
    # .work a folder of root's the account cannot empty, and each grading leaves a trap in its
    # temporary folder. Both batches finish, grade everything, and say what was left where.
    with ordinary_account() as (uid, gid):
        base = Path(tempfile.mkdtemp(prefix="fashion-kit-batch-"))
        try:
            for name in ("a", "b"):
                tiny(base / "class" / f"{name}.ipynb", "x = 1")
            zip_path = fake_autograder(base / "ag.zip")
            out = base / "out"
            theirs = out / store.WORK / "tmp" / "theirs"
            theirs.mkdir(parents=True)
            (theirs / "file").write_text("root's")
            for path in (base, base / "class", base / "class" / "a.ipynb", base / "class" / "b.ipynb", zip_path,
                         out, out / store.WORK, out / store.WORK / "tmp"):
                os.chown(path, uid, gid)

            def grade(notebook, autograder_zip, output_folder, **kwargs):
                plant_trap(tempfile.gettempdir())  # the batch's: in .work
                return run.Outcome(str(notebook), "graded", scores={q: (1.0, 1.0) for q in QUESTIONS},
                                   sandbox="none")

            def grade_the_class():
                result = batch.grade_class(base / "class", out, zip_path, grade_fn=grade, use_watchdog=False,
                                           jobs=1, force=True, stop=threading.Event())
                return {"rows": {r.id: r.status for r in result.records}, "left": result.left_on_disk,
                        "work": (out / store.WORK).exists()}

            first = run_as(uid, gid, grade_the_class)
            assert first["rows"] == {"a": "graded", "b": "graded"} and not first["work"], first
            [moved] = first["left"]
            assert Path(moved).parent == out / store.QUARANTINE and (Path(moved) / "tmp" / "theirs" / "file").exists()
            assert sorted(p.name for p in Path(moved).rglob("*")) == ["file", "theirs", "tmp"]  # the rest is gone
            second = run_as(uid, gid, grade_the_class)  # the quarantine is tried again, and still cannot go
            assert second == {**first, "left": [str(out / store.QUARANTINE)]}
            assert by_id(gradebook(out))["b"]["status"] == "graded"
        finally:
            layout.remove_tree(base)


# ---- supervision: tiny notebooks graded for real (seconds each, no training) ----

HOSTILE = {
    "fine": ("x = 1",),
    "kernel_kill": ("import os\nos.kill(os.getpid(), 9)",),
    "memory_bomb": ("blocks = []\nfor _ in range(120):\n    blocks.append(b'x' * 2**28)  # 30 GB",),
    "flood": ("while True:\n    print('x' * 10000)",),
}


@pytest.fixture(scope="module")
def hostile_batch(built, tmp_path_factory):
    """One batch over hostile notebooks beside a harmless one, with a low memory limit so the bomb is
    stopped quickly. (A hanging notebook is in the resumption test, with a short time limit.)"""
    work = tmp_path_factory.mktemp("hostile")
    for name, cells in HOSTILE.items():
        tiny(work / "class" / f"{name}.ipynb", *cells)
    tiny(work / "class" / "other_assignment.ipynb", "x = 1", assignment="hw03_regression")
    tiny(work / "class" / "no_assignment_name.ipynb", "x = 1", assignment=None)
    tag = uuid.uuid4().hex
    os.environ["FASHION_KIT_TEST_TAG"] = tag  # inherited by every process the batch starts
    try:
        grading = limits(built.autograder_zip, timeout_seconds=150, memory_limit_mb=3000)
        result = batch.grade_class(work / "class", work / "out", built.autograder_zip, jobs=2, settings=grading)
    finally:
        del os.environ["FASHION_KIT_TEST_TAG"]
    time.sleep(2)
    return result, work / "out", tag


@pytest.mark.slow
def test_each_disaster_gets_its_status(hostile_batch):
    result, out, _ = hostile_batch
    rows = by_id(gradebook(out))
    assert set(rows) == set(HOSTILE) | {"other_assignment", "no_assignment_name"}
    status = {k: r["status"] for k, r in rows.items()}
    assert status["fine"] == "graded" and rows["fine"]["total"] == "0" and rows["fine"]["possible"] == TOTAL_SHOWN
    assert status["kernel_kill"] == "error" and "kernel died" in rows["kernel_kill"]["message"]
    assert status["memory_bomb"] == "memory" and "limit of 3,000 MB" in rows["memory_bomb"]["message"]
    # A print flood fills the grader's memory with output, or runs out the clock: stopped either way.
    assert status["flood"] in ("memory", "timeout")
    assert status["other_assignment"] == "wrong-assignment" and "hw03_regression" in rows["other_assignment"]["message"]
    assert status["no_assignment_name"] == "wrong-assignment" and "no assignment name" in rows["no_assignment_name"]["message"]
    assert not result.all_graded


@pytest.mark.slow
def test_nothing_of_the_batch_survives_it(hostile_batch):
    _, out, tag = hostile_batch
    assert tagged_processes(tag) == []
    for folder in out.iterdir():
        if folder.is_dir():
            assert sum(f.stat().st_size for f in folder.iterdir()) < 2 * MB  # the flood was not kept


@pytest.mark.slow
def test_rerun_skips_what_is_recorded(hostile_batch, built):
    result, out, _ = hostile_batch
    grading = limits(built.autograder_zip, timeout_seconds=150, memory_limit_mb=3000)
    again = batch.grade_class(out.parent / "class", out, built.autograder_zip, settings=grading,
                              grade_fn=lambda *a, **k: pytest.fail("nothing should be graded again"))
    assert again.skipped == len(result.records)
    assert [r.status for r in again.records] == [r.status for r in result.records]


@pytest.mark.slow
def test_interrupted_batch_resumes_without_duplicates(built, tmp_path):
    """SIGKILL the batch once a first submission is recorded, then run it again: every submission
    gets exactly one row, what was recorded is not graded again, and no grading outlives the kill."""
    for i in range(4):
        tiny(tmp_path / "class" / f"student{i}.ipynb", f"x = {i}", assignment="another_course")
    tiny(tmp_path / "class" / "student9.ipynb", "import time\ntime.sleep(10**6)")
    (tmp_path / "class" / "student5.ipynb").write_text("{", encoding="utf-8")
    out, tag = tmp_path / "out", uuid.uuid4().hex
    # The same settings both times: a result is reused only when what grades it is unchanged.
    args = [str(tmp_path / "class"), "-o", str(out), "--autograder", str(built.autograder_zip),
            "--jobs", "1", "--timeout", "30"]
    proc = cli(*args, tag=tag)
    deadline = time.monotonic() + 300
    while not list(out.glob(f"student[0-4]/{store.RECORD}")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    first = {p.parent.name: p.stat().st_mtime_ns for p in out.glob(f"*/{store.RECORD}")}
    rows = by_id(gradebook(out))
    assert set(rows) == set(first) and all(r["status"] for r in rows.values())  # no half rows
    time.sleep(3)  # the watchdog sweeps what the killed batch left
    assert tagged_processes(tag) == []

    proc = cli(*args, tag=tag)
    output, _ = proc.communicate(timeout=600)
    rows = by_id(gradebook(out))
    assert set(rows) == {f"student{i}" for i in (0, 1, 2, 3, 5, 9)}, output
    assert {k: r["status"] for k, r in rows.items()} == {
        **{f"student{i}": "wrong-assignment" for i in range(4)}, "student5": "invalid", "student9": "timeout"}
    assert f"{len(first)} submissions already graded" in output
    for name, mtime in first.items():
        assert (out / name / store.RECORD).stat().st_mtime_ns == mtime, f"{name} was graded twice"
    assert proc.returncode == 1  # not everything could be graded
    assert (out / store.REPORT).is_file()


@pytest.mark.slow
def test_ctrl_c_stops_the_batch_and_says_how_to_resume(built, tmp_path):
    tiny(tmp_path / "class" / "slow.ipynb", "import time\ntime.sleep(10**6)")
    tag = uuid.uuid4().hex
    proc = cli(str(tmp_path / "class"), "-o", str(tmp_path / "out"), "--autograder", str(built.autograder_zip),
               tag=tag)
    time.sleep(8)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "Run the same command again" in output
    assert not (tmp_path / "out" / "slow" / store.RECORD).exists()  # not recorded: graded next time
    time.sleep(2)
    assert tagged_processes(tag) == []


# ---- acceptance: a mixed class through the CLI ----

@pytest.mark.slow
def test_grading_a_mixed_class(built, tmp_path):
    """Two notebooks that train; the rest are faulty, broken or hostile and fail fast."""
    solutions, students = built.solutions, built.student
    cls = tmp_path / "class"
    cls.mkdir()
    good_en = cls / "solution_en.ipynb"
    good_en.write_bytes(solutions["en"].read_bytes())
    export_zip(cls / "solution_zh_exported.zip", solutions["zh-TW"])  # as grader.export() hands it in
    no_fit = ("history = model.fit(training_images, training_labels, epochs=5)", "raise RuntimeError('no time')")
    mutate(solutions["en"], cls / "stopped_before_fit.ipynb", no_fit)
    mutate(solutions["zh-TW"], cls / "wrong_names" / "notebook.ipynb", no_fit, ('"Ankle boot"', '"Boot"'))
    (cls / "blank_zh.ipynb").write_bytes(students["zh-TW"].read_bytes())
    export_zip(cls / "blank_en.zip", students["en"], (".OTTER_LOG", "log"))
    other = nbformat.read(str(students["en"]), 4)
    other.metadata["otter"]["assignment_name"] = "hw02_regression"
    nbformat.write(other, str(cls / "other_homework.ipynb"))
    tiny(cls / "kernel_kill.ipynb", *HOSTILE["kernel_kill"])
    tiny(cls / "memory_bomb.ipynb", *HOSTILE["memory_bomb"])
    tiny(cls / "exit.ipynb", "import os\nos._exit(0)")
    tiny(cls / "no_assignment_name.ipynb", "x = 1", assignment=None)
    (cls / "My notebook (final).ipynb").write_bytes(students["en"].read_bytes())  # renamed by the student
    expected_bad = bad_inputs(cls, good_en)
    huge = nbformat.read(str(students["en"]), 4)  # a real notebook bloated with output
    huge.cells[0].outputs = [nbformat.v4.new_output("stream", text="x" * (3 * MB))]
    nbformat.write(huge, str(cls / "bloated.ipynb"))
    expected = {
        "solution_en": "graded", "solution_zh_exported": "graded", "stopped_before_fit": "graded",
        "wrong_names": "graded", "blank_zh": "graded", "blank_en": "graded",
        "My_notebook_final": "graded", "no_assignment_name": "wrong-assignment",
        "other_homework": "wrong-assignment", "kernel_kill": "error", "memory_bomb": "memory", "exit": "error",
        "bloated": "invalid", **{name: "ignored" if name == "essay.pdf" else "invalid" for name in expected_bad},
    }
    assert len(expected) >= 20

    out = tmp_path / "out"
    # The two solutions train with the tests' quick fit: what is proven is the class's path, not the accuracy.
    quick_zip = with_settings(built.autograder_zip, tmp_path / "autograder.zip", min_test_accuracy=QUICK_MIN_ACCURACY)
    args = [str(cls), "-o", str(out), "--autograder", str(quick_zip), "--jobs", str(GRADING_JOBS),
            "--max-notebook-mb", "2", "--memory-limit", "4096"]
    proc = cli(*args, tag=uuid.uuid4().hex, quick=True)
    output, _ = proc.communicate(timeout=1500)
    assert proc.returncode == 1, output  # some submissions could not be graded
    rows = by_id(gradebook(out))
    assert {k: r["status"] for k, r in rows.items()} == expected, output
    for name in ("solution_en", "solution_zh_exported"):
        assert rows[name]["total"] == rows[name]["possible"] == TOTAL_SHOWN, (name, rows[name])
    for name in ("blank_zh", "blank_en", "My_notebook_final"):
        assert rows[name]["total"] == "0"
    for name in ("stopped_before_fit", "wrong_names"):
        assert rows[name]["q6_fit"] == rows[name]["q9_accuracy"] == "0" and 0 < float(rows[name]["total"]) < TOTAL
    assert rows["wrong_names"]["q2_class_names"] == "0" and rows["stopped_before_fit"]["q2_class_names"] == "1"
    for name, results_file in ((n, out / n / "results.json") for n in ("solution_en", "blank_en")):
        assert gradescope_spec.problems(json.loads(results_file.read_text())) == [], name

    page = (out / store.REPORT).read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 2
    for name, status in expected.items():
        if status != "graded":
            assert name in page
    assert "2 with full marks" in output or "; 2 with full marks" in output

    # Run again: everything is recorded, so nothing is graded and the gradebook is unchanged.
    before = (out / store.GRADEBOOK).read_text(encoding="utf-8")
    proc = cli(*args, tag=uuid.uuid4().hex, quick=True)
    again, _ = proc.communicate(timeout=120)
    submissions = sum(1 for status in expected.values() if status != "ignored")  # a PDF is nobody's grade
    assert proc.returncode == 1 and f"{submissions} submissions already graded" in again
    assert (out / store.GRADEBOOK).read_text(encoding="utf-8") == before


# ---- end to end: a Gradescope export killed halfway, resumed, then regraded after a zip change ----

@pytest.mark.slow
def test_a_gradescope_export_killed_resumed_and_regraded(built, tmp_path):
    """11 submissions: one that trains (its student also uploaded a blank copy later), blanks (one
    as grader.export()'s zip), hostile and broken uploads. Killed with SIGKILL halfway, resumed, then
    graded again after the zip's q9 threshold is raised: every row is checked. (A timeout and the
    Chinese solution's full marks are the mixed class's, above: here they would only cost minutes.)"""
    solutions, students = built.solutions, built.student
    export = tmp_path / "assignment_1_export"
    uploads = {  # Gradescope id -> (student, how the upload is made)
        "101": ("Lin Mei", lambda d: shutil_copy(solutions["en"], d / "fashion_mnist.ipynb")),
        "102": ("Chen Wei", lambda d: export_zip(d / "fashion_mnist.zip", students["zh-TW"])),
        "103": ("Lee Ann", lambda d: shutil_copy(students["en"], d / "fashion_mnist.ipynb")),
        "104": ("Kao Yu", lambda d: shutil_copy(students["zh-TW"], d / "My notebook (final).ipynb")),
        "105": ("Wang Hao", lambda d: tiny(d / "nb.ipynb", *HOSTILE["kernel_kill"])),
        "106": ("Hsu Jie", lambda d: tiny(d / "nb.ipynb", "x = 1", assignment="hw03_regression")),
        "107": ("Tsai Lan", lambda d: (d / "nb.ipynb").write_text("[" * 200_000)),
        "108": ("Lo Ping", lambda d: (d / "fashion_mnist.zip").write_bytes(b"PK\x03\x04 not a zip")),
        "109": ("Wu Fen", lambda d: (d / "fashion_mnist.ipynb").write_bytes(b"")),
        "110": ("Lin Mei", lambda d: shutil_copy(students["en"], d / "fashion_mnist.ipynb")),  # a second, blank
        "112": ("Pan Rui", lambda d: (d / "answers.txt").write_text("I could not finish")),
    }
    metadata = []
    for gid, (name, make) in uploads.items():
        folder = export / f"submission_{gid}"
        folder.mkdir(parents=True)
        make(folder)
        sid = "B" + str(abs(hash(name)) % 10**6)
        created = "2026-11-28 10:00:00 +0800" if gid != "110" else "2026-11-28 12:00:00 +0800"
        metadata.append(f"submission_{gid}:\n  :created_at: {created}\n  :submitters:\n"
                        f"  - :name: {name}\n    :sid: '{sid}'\n    :email: {name.split()[1].lower()}@example.edu\n")
    (export / intake.METADATA).write_text("".join(metadata), encoding="utf-8")
    # The one notebook that trains does so with the tests' quick fit, graded at the quick threshold.
    zip_path = with_settings(built.autograder_zip, tmp_path / "autograder.zip", min_test_accuracy=QUICK_MIN_ACCURACY)
    out, tag = tmp_path / "out", uuid.uuid4().hex
    # Long enough for a training on a loaded 2-core machine.
    args = [str(export), "-o", str(out), "--autograder", str(zip_path), "--jobs", str(GRADING_JOBS),
            "--timeout", "150"]

    proc = cli(*args, tag=tag, quick=True)
    deadline = time.monotonic() + 900
    while len([p for p in out.glob(f"*/{store.RECORD}")
               if json.loads(p.read_text())["status"] not in ("invalid", "ignored")]) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.5)
    proc.kill()
    proc.wait()
    first = {p.parent.name: graded_part(p) for p in out.glob(f"*/{store.RECORD}")}
    time.sleep(3)  # the watchdog sweeps what the killed batch left
    assert tagged_processes(tag) == []

    proc = cli(*args, tag=tag, quick=True)
    output, _ = proc.communicate(timeout=1800)
    assert proc.returncode == 1, output  # some uploads cannot be graded
    assert f"{len(first)} submissions already graded" in output
    for name, grading in first.items():
        # Its duplicate flags may change (a second upload of the same student lands), its grading not.
        assert graded_part(out / name / store.RECORD) == grading, f"{name} was graded twice"
    assert not (out / store.WORK).exists()

    def check(rows: dict, threshold_raised: bool) -> None:
        assert set(rows) == set(uploads)
        status = {k: r["status"] for k, r in rows.items()}
        assert status == {
            "101": "graded", "102": "graded", "103": "graded", "104": "graded", "105": "error",
            "106": "wrong-assignment", "107": "invalid", "108": "invalid", "109": "invalid", "110": "graded",
            "112": "invalid"}, rows
        good = rows["101"]
        if threshold_raised:
            assert good["q9_accuracy"] == "0" and float(good["total"]) < float(good["possible"])
        else:
            assert good["total"] == good["possible"], good
        for blank in ("102", "103", "104", "110"):
            assert rows[blank]["total"] == "0", rows[blank]
        assert "nested more than" in rows["107"]["message"] and "not a valid zip" in rows["108"]["message"]
        assert "is empty" in rows["109"]["message"] and "answers.txt" in rows["112"]["message"]
        assert "hw03_regression" in rows["106"]["message"]
        # Lin Mei handed in twice: both rows kept, the later (blank) one counts by default.
        assert (rows["110"]["duplicate_of"], rows["110"]["counted"], rows["101"]["counted"]) == ("101", "yes", "no")
        assert all(r["duplicate_of"] == "" for k, r in rows.items() if k != "110")
        assert rows["101"]["submitters"] == "Lin Mei" and rows["101"]["emails"] == "mei@example.edu"
        assert {r["sandbox"] for k, r in rows.items() if status[k] not in ("invalid",)} <= {"bubblewrap", "user"}

    check(by_id(gradebook(out)), threshold_raised=False)

    with_settings(built.autograder_zip, zip_path, min_test_accuracy=0.99)  # the zip changes: q9 asks for 99%
    proc = cli(*args, tag=tag, quick=True)
    output, _ = proc.communicate(timeout=1800)
    assert proc.returncode == 1, output
    assert "graded again" in output and "the autograder zip" in output
    check(by_id(gradebook(out)), threshold_raised=True)


def graded_part(record_file: Path) -> dict:
    """A record without its duplicate flags (which upload counts, and by what rule): what one grading
    decided, and when."""
    record = json.loads(record_file.read_text(encoding="utf-8"))
    return {k: v for k, v in record.items() if k not in ("duplicate_of", "counted", "counted_by")}


def shutil_copy(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes())
    return target
