"""Grade one submission with the built autograder, exactly as Gradescope would.

The submission is laid out the way Gradescope lays it out (``source/`` from the autograder zip,
``submission/``, ``results/``) and the zip's own entry point, ``run_otter.py``, grades it in a child
process. What Otter trips on is fixed first: the notebook gets the assignment's file name and
kernelspec. The child runs in its own process group under a supervisor: a wall-clock limit, a memory
limit on the whole process tree (the grader and the notebook's kernel), and a cap on the output it
keeps. A notebook that hangs, eats memory or floods its output is stopped and reported instead of
blocking, or starving, everything after it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from . import notebooks
# The supervision lives in grading.supervise; these names are kept for the callers of this module.
from .grading.supervise import (  # noqa: F401
    LOG_HEAD_BYTES, LOG_TAIL_BYTES, POLL_SECONDS, _CappedLog, _kill_tree, _supervise, _tree, tree_rss,
)

NOTEBOOK = "fashion_mnist.ipynb"
# Otter writes this test, and no scores, when it refuses to grade a submission.
OTTER_ERROR_TEST = "Autograder Error"
# The key gradescope/interrupted.py sets in results.json's extra_data when the zip stopped a run.
STOPPED_KEY = "fashion_kit_stopped"
# The zip's run_otter.py stops Otter itself at timeout_seconds and writes results for the questions
# checked so far; the supervisor here kills only if that did not happen this much later.
INNER_STOP_GRACE_SECONDS = 60


@dataclass
class Outcome:
    """What grading one submission produced.

    ``status`` is one of: graded (results.json was written); invalid (not a gradable notebook);
    wrong-assignment (a notebook made for another assignment); timeout and memory (stopped from
    outside, at the time or memory limit); interrupted (grading was cancelled); error (the autograder
    died without results). ``message`` says what happened. A graded run that the zip's own
    run_otter.py had to stop carries partial results and says why in ``stopped``: timeout, memory
    (the kernel died) or error.
    """

    submission: str
    status: str
    message: str = ""
    results: dict | None = None
    seconds: float = 0.0
    log: str = ""
    scores: dict[str, tuple[float, float]] = field(default_factory=dict)
    peak_memory_mb: float = 0.0
    stopped: str = ""

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
    *,
    memory_limit_mb: float | None = None,
    cancel: threading.Event | None = None,
) -> Outcome:
    """Grade ``submission`` (a notebook) with ``autograder_zip``; never raises for a bad submission.

    ``timeout`` (seconds) and ``memory_limit_mb`` (resident memory of the grader and its kernel
    together) stop a grading that goes too far; setting ``cancel`` stops it from another thread.
    """
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
        inner_timeout = _inner_timeout(ag_dir / "source" / "otter_config.json", timeout)
        notebooks.write(nb, ag_dir / "submission" / NOTEBOOK)

        proc = subprocess.Popen(
            _dying_with_us([sys.executable, str(ag_dir / "source" / "run_otter.py"), str(ag_dir)]),
            cwd=ag_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group, apart from ours
        )
        log = _CappedLog(proc.stdout)
        try:
            outer = None if timeout is None else timeout + INNER_STOP_GRACE_SECONDS
            stopped, peak = _supervise(proc, outer, memory_limit_mb, cancel)
        finally:
            _kill_tree(proc)
            log.join()
        log_text = log.text()
        seconds = time.monotonic() - started

        results_path = ag_dir / "results" / "results.json"
        results = _read_results(results_path)
        if output_dir is not None and results is not None:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            shutil.copy(results_path, Path(output_dir) / "results.json")

    def outcome(status, message="", scores=None, stopped=""):
        return Outcome(str(submission), status, message, results, seconds, log_text, scores or {}, peak / 2**20,
                       stopped)

    if stopped == "timeout":
        return outcome("timeout", f"Stopped after {outer:g} s: the notebook did not finish in time.")
    if stopped == "memory":
        return outcome(
            "memory",
            f"Stopped: the notebook used {peak / 2**20:,.0f} MB, more than the limit of "
            f"{memory_limit_mb:,.0f} MB.",
        )
    if stopped == "interrupted":
        return outcome("interrupted", "Grading was cancelled before it finished.")
    if results is not None:
        tests = {t.get("name"): t for t in results.get("tests", [])}
        if OTTER_ERROR_TEST in tests:
            return _refused(tests[OTTER_ERROR_TEST].get("output", ""), outcome)
        # gradescope/interrupted.py marks a run the zip had to stop; its value is why.
        kind = (results.get("extra_data") or {}).get(STOPPED_KEY)
        if kind is not None:
            scores = _scores(results)
            points = sum(s for s, _ in scores.values())
            kept = f" The questions checked before that keep their {points:g} points." if points else ""
            messages = {
                "timeout": f"Stopped after {inner_timeout:g} s: the notebook did not finish in time.",
                "memory": "The notebook's kernel died while it ran (a cell crashed it, killed it or used too "
                          "much memory).",
                "error": "The autograder failed while the notebook ran; see grading.log.",
            }
            return outcome("graded", messages[kind] + kept, scores, stopped=kind)
        return outcome("graded", "", _scores(results))
    if "DeadKernelError" in log_text:
        return outcome("error", "The notebook's kernel died while it ran (a cell crashed or killed Python).")
    return outcome("error", f"The autograder exited with code {proc.returncode} and wrote no results.")


def _read_results(path: Path) -> dict | None:
    """results.json, or None if there is none or it was cut short (a run killed while writing it)."""
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return results if isinstance(results, dict) else None


def _inner_timeout(config_path: Path, timeout: float | None) -> float | None:
    """The zip's own time limit (run_otter.py reads it), lowered to ``timeout`` if that is shorter,
    so a grading stopped early still gets results for what was checked; returns the limit in force."""
    config = json.loads(config_path.read_text(encoding="utf-8"))
    inner = config.get("fashion_kit", {}).get("timeout_seconds")
    if timeout is not None and (inner is None or timeout < inner):
        config.setdefault("fashion_kit", {})["timeout_seconds"] = inner = timeout
        config_path.write_text(json.dumps(config, indent=4), encoding="utf-8")
    return inner


def _refused(otter_message: str, make) -> Outcome:
    """Turn Otter's refusal to grade (its "Autograder Error" test) into a status and a message."""
    found = re.search(r"Received submission for assignment '(.*?)' \(this is assignment '(.*?)'\)", otter_message)
    if found:
        got, expected = found.groups()
        what = "has no assignment name" if got == "None" else f"is for assignment '{got}'"
        return make(
            "wrong-assignment",
            f"This notebook {what}; expected the '{expected}' notebook (start from the student notebook).",
        )
    detail = otter_message.split("\n\n", 1)[-1].strip() or "no reason given"
    return make("error", f"Otter refused to grade the notebook: {detail}")


# Linux kills a process whose parent died if it asked with PR_SET_PDEATHSIG (kept across exec). It is
# asked here, in a tiny first program, rather than in a preexec_fn, which is unsafe with threads.
_PDEATHSIG_TRAMPOLINE = """\
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit("the grading's parent died before it started")
os.execv(sys.argv[2], sys.argv[2:])
"""


def _dying_with_us(command: list[str]) -> list[str]:
    """``command``, made to die with this process, so a killed batch leaves no grading behind."""
    if not sys.platform.startswith("linux"):
        return command
    return [sys.executable, "-c", _PDEATHSIG_TRAMPOLINE, str(os.getpid()), *command]


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
