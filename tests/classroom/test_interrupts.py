"""SIGINT or SIGTERM at any moment of `fashion-kit grade` (start-up, discovery, scheduling,
grading, writing) stops it promptly, leaves no grading running and no temporary folder, says how
to resume, and the next run carries on to a complete gradebook. Run at many points, with both
signals, while other processes keep both cores busy; the grader is a fake one that starts a child
process, as the real one does, so the whole test takes well under a minute."""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest

from fashion_kit.classroom import store

from .classroom_fakes import fake_autograder, write_notebook

STUDENTS = 16
# When the signal is sent, as a share of how long one whole run takes on this machine right now
# (measured first): from Python's own start-up through discovery and grading to the last writes.
# Each point is met twice, once by each signal.
POINTS = (0.03, 0.2, 0.4, 0.6, 0.8, 0.95)
# A stopped batch that is still running after this long is hung, not slow.
HUNG_SECONDS = 30

DRIVER = textwrap.dedent('''
    """fashion-kit, with a fake grader that runs a child process for each grading, as the real one does."""
    import os, subprocess, sys
    from dataclasses import dataclass, field
    from fashion_kit import cli
    from fashion_kit.classroom import grader

    @dataclass
    class Outcome:  # what run.Outcome carries, without importing the real grader
        submission: str
        status: str
        message: str = ""
        seconds: float = 0.0
        log: str = ""
        scores: dict = field(default_factory=dict)
        peak_memory_mb: float = 0.0
        stopped: str = ""
        sandbox: str = "none"

    def fake(notebook, autograder_zip, output_folder, *, settings, sandbox, extra_files, env, cancel):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], env={**os.environ, **env})
        try:
            if cancel.wait(0.1):
                return Outcome(str(notebook), "interrupted")
            return Outcome(str(notebook), "graded", scores={"q1": (1.0, 1.0)})
        finally:
            child.kill()
            child.wait()

    grader.grade_function = lambda: fake
    sys.exit(cli.main(sys.argv[1:]))
''')


def tagged(tag: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("FASHION_KIT_TEST_TAG") == tag and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def gone(tag: str, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while tagged(tag):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def gradebook_ids(out: Path) -> list[str]:
    text = (out / store.GRADEBOOK).read_bytes().decode("utf-8-sig")
    return [row["id"] for row in csv.DictReader(io.StringIO(text, newline="")) if row["status"] == "graded"]


@pytest.fixture
def busy_cores():
    """Two processes that keep both cores busy for the length of the test."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    yield
    for hog in hogs:
        hog.kill()
        hog.wait()


@pytest.mark.busy
def test_a_signal_at_any_moment_stops_the_batch_cleanly(tmp_path, busy_cores):
    for i in range(STUDENTS):
        write_notebook(tmp_path / "class" / f"student{i:02d}.ipynb", "x = 1")
    zip_path = fake_autograder(tmp_path / "autograder.zip", questions=["q1"])
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    out = tmp_path / "out"
    command = [sys.executable, str(driver), "grade", str(tmp_path / "class"), "-o", str(out),
               "--autograder", str(zip_path), "--no-sandbox", "--jobs", "2"]
    started = time.monotonic()
    whole = subprocess.run(command, env={**os.environ, "FASHION_KIT_TEST_TAG": uuid.uuid4().hex},
                           capture_output=True, timeout=120)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    length = time.monotonic() - started
    stopped, codes = 0, []
    for i, point in enumerate(POINTS * 2):
        delay = point * length
        sig = (signal.SIGINT, signal.SIGTERM)[(i + i // len(POINTS)) % 2]
        if i < 2 * len(POINTS) - 1:
            shutil.rmtree(out, ignore_errors=True)  # a whole class to grade; the last one resumes
        tag = uuid.uuid4().hex
        proc = subprocess.Popen(command, env={**os.environ, "FASHION_KIT_TEST_TAG": tag},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(delay)
        proc.send_signal(sig)
        try:
            output, _ = proc.communicate(timeout=HUNG_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            pytest.fail(f"{sig.name} after {delay} s: still running {HUNG_SECONDS} s later\n{output}")
        where = f"{sig.name} after {delay} s (exit {proc.returncode}):\n{output}"
        codes.append((delay, sig.name, proc.returncode))
        assert gone(tag), f"{where}\ngradings left running: {tagged(tag)}"
        assert not (out / store.WORK).exists(), where
        if proc.returncode == 130:
            stopped += 1
            assert "Run the same command again" in output, where
        elif proc.returncode == 0:  # the class was graded before the signal came
            assert len(gradebook_ids(out)) == STUDENTS, where
        else:  # killed by the signal itself: only while Python was still starting, before main() ran
            assert proc.returncode == -sig, where
            assert ", in main" not in output and "classroom" not in output, where
    assert stopped >= len(POINTS) * 2 // 3, f"too few signals met a running batch: {codes}"

    tag = uuid.uuid4().hex
    done = subprocess.run(command, env={**os.environ, "FASHION_KIT_TEST_TAG": tag}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(gradebook_ids(out)) == [f"student{i:02d}" for i in range(STUDENTS)]
    assert gone(tag)
