"""Grade one submission with the built autograder, exactly as Gradescope would.

The submission is laid out the way Gradescope lays it out (``source/`` from the autograder zip,
``submission/``, ``results/``) and the zip's own entry point, ``run_otter.py``, grades it in a child
process. What Otter trips on is fixed first: the notebook gets the assignment's file name and
kernelspec. The child runs in its own process group with a wall-clock limit, so a hanging notebook
is stopped and reported instead of blocking everything after it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from . import notebooks

NOTEBOOK = "fashion_mnist.ipynb"


@dataclass
class Outcome:
    """What grading one submission produced. ``status`` is one of graded, invalid, timeout, error."""

    submission: str
    status: str
    message: str = ""
    results: dict | None = None
    seconds: float = 0.0
    log: str = ""
    scores: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return sum(s for s, _ in self.scores.values())

    @property
    def possible(self) -> float:
        return sum(p for _, p in self.scores.values())


class SubmissionError(ValueError):
    """The file handed in is not a gradable notebook; the message says what was found."""


def load_submission(path: Path):
    """Read a submitted notebook, turning every way it can be broken into a clear message."""
    import nbformat

    if not path.is_file():
        raise SubmissionError(f"{path} does not exist.")
    raw = path.read_bytes()
    if not raw.strip():
        raise SubmissionError(f"{path.name} is empty; expected a Jupyter notebook (.ipynb).")
    try:
        content = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SubmissionError(f"{path.name} is not a Jupyter notebook: it is not valid JSON ({e}).") from e
    if not isinstance(content, dict) or "cells" not in content:
        raise SubmissionError(f"{path.name} is JSON but not a Jupyter notebook: it has no 'cells'.")
    try:
        return nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception as e:  # nbformat raises several unrelated types for malformed notebooks
        raise SubmissionError(f"{path.name} is not a valid Jupyter notebook: {e}") from e


def prepare_submission(nb):
    """Give the notebook the kernelspec the assignment uses; Otter's init cell needs it."""
    nb.metadata["kernelspec"] = dict(notebooks.KERNELSPEC)
    return nb


def _scores(results: dict) -> dict[str, tuple[float, float]]:
    return {
        t["name"]: (float(t.get("score", 0)), float(t["max_score"]))
        for t in results.get("tests", [])
        if "max_score" in t
    }


def grade(
    submission: Path | str,
    autograder_zip: Path | str,
    output_dir: Path | str | None = None,
    timeout: float | None = None,
    env: dict | None = None,
) -> Outcome:
    """Grade ``submission`` (a notebook) with ``autograder_zip``; never raises for a bad submission."""
    submission, started = Path(submission), time.monotonic()
    try:
        nb = prepare_submission(load_submission(submission))
    except SubmissionError as e:
        return Outcome(str(submission), "invalid", str(e))

    with tempfile.TemporaryDirectory(prefix="fashion-kit-grade-") as tmp:
        ag_dir = Path(tmp) / "autograder"
        for sub in ("source", "submission", "results"):
            (ag_dir / sub).mkdir(parents=True)
        (ag_dir / "submission_metadata.json").write_text("{}")
        with zipfile.ZipFile(autograder_zip) as zf:
            zf.extractall(ag_dir / "source")
        notebooks.write(nb, ag_dir / "submission" / NOTEBOOK)

        log_path = Path(tmp) / "grading.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [sys.executable, str(ag_dir / "source" / "run_otter.py"), str(ag_dir)],
                cwd=ag_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # its own process group, so the kernel dies with it
            )
            try:
                proc.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc)
        log_text = log_path.read_text(errors="replace")
        seconds = time.monotonic() - started

        results_path = ag_dir / "results" / "results.json"
        results = json.loads(results_path.read_text()) if results_path.is_file() else None
        if output_dir is not None and results is not None:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            shutil.copy(results_path, Path(output_dir) / "results.json")

    if timed_out:
        return Outcome(str(submission), "timeout", f"Stopped after {timeout:g} s.", results, seconds, log_text)
    if results is None:
        return Outcome(
            str(submission), "error", f"The autograder exited with code {proc.returncode} and wrote no results.",
            None, seconds, log_text,
        )
    return Outcome(str(submission), "graded", "", results, seconds, log_text, _scores(results))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def format_table(outcome: Outcome) -> str:
    """A per-question score table for the terminal."""
    if not outcome.scores:
        return f"{outcome.submission}: {outcome.status} {outcome.message}".rstrip()
    width = max(len(n) for n in outcome.scores) + 2
    lines = [f"{'question':<{width}}{'score':>7}{'max':>7}"]
    for name, (score, possible) in outcome.scores.items():
        mark = "" if score == possible else "  ✗"
        lines.append(f"{name:<{width}}{score:>7g}{possible:>7g}{mark}")
    lines.append(f"{'total':<{width}}{outcome.score:>7g}{outcome.possible:>7g}")
    return "\n".join(lines)
