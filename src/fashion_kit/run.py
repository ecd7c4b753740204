"""Grade one submission locally with a built autograder zip, exactly as Gradescope would.

The zip is unpacked into Gradescope's layout (``source/``, ``submission/``, ``results/``) and the
grading core (:mod:`fashion_kit.grading.core`) grades it in a child process, in two phases: the
notebook sandboxed (bubblewrap here; ``sandbox="none"`` only when the instructor asks for it), the
grade decided outside. The child itself is supervised too, as a backstop: a grading that outlives
its own limits, or is cancelled, is stopped and reported instead of blocking everything after it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import nbformat

from . import contract, notebooks, points, settings as settings_module, uploads
from .grading import core, layout, sandbox as sandboxes, stopped, supervise
from .settings import Settings
from .statuses import Status, Stop

NOTEBOOK = contract.NOTEBOOK
# The core stops the notebook at the settings' time limit and then measures for a few seconds; the
# supervisor here steps in only if that has not happened this much later.
OUTER_GRACE_SECONDS = 120
# ... and above the notebook's memory limit by this much (the core and its evaluator).
OUTER_MEMORY_MARGIN_MB = 1024
# The core watches the notebook every supervise.POLL_SECONDS; this watch is the backstop for the
# trusted core, and looks five times less often: each look walks the machine's process table, about
# a second of CPU over one grading at the core's rate, taken from the notebook's training.
OUTER_POLL_SECONDS = 1.0


@dataclass
class Outcome:
    """What grading one submission produced.

    ``status`` is one of: graded (results.json was written); invalid (not a gradable notebook);
    wrong-assignment (a notebook made for another assignment); timeout and memory (stopped from
    outside, at the time or memory limit); interrupted (grading was cancelled); error (the autograder
    failed without results): a :class:`~fashion_kit.statuses.Status`. ``message`` says what happened.
    A graded run whose notebook had to be stopped carries partial results and says why in
    ``stopped``, a :class:`~fashion_kit.statuses.Stop`. ``sandbox`` is the isolation the notebook
    ran in: bubblewrap, user or none.
    """

    submission: str
    status: Status
    message: str = ""
    results: dict | None = None
    seconds: float = 0.0
    log: str = ""
    scores: dict[str, tuple[float, float]] = field(default_factory=dict)
    peak_memory_mb: float = 0.0
    stopped: Stop | str = ""  # "" when the notebook ran to its end
    sandbox: str = ""
    message_zh: str = ""  # the message in Traditional Chinese, when there is one

    @property
    def score(self) -> float:
        return points.total(self.scores)

    @property
    def possible(self) -> float:
        return points.possible(self.scores)


def prepare_submission(nb):
    """Give the notebook the kernelspec the assignment uses; Otter's init cell needs it."""
    nb.metadata["kernelspec"] = dict(notebooks.KERNELSPEC)
    return nb


def grade(
    submission: Path | str,
    autograder_zip: Path | str,
    output_dir: Path | str | None = None,
    *,
    settings: Settings | None = None,
    sandbox: str = "auto",
    extra_files: Sequence[Path | str] = (),
    env: dict | None = None,
    cancel: threading.Event | None = None,
    workdir: Path | str | None = None,
) -> Outcome:
    """Grade ``submission`` (a notebook) with ``autograder_zip``; never raises for a bad submission.

    ``settings`` default to the zip's own; ``sandbox`` is "auto" (bubblewrap, refused with
    :class:`~fashion_kit.grading.sandbox.SandboxUnavailable` when it is missing) or "none".
    ``extra_files`` go next to the notebook (the student's saved model); only
    the names the assignment knows are used. Temporary files go under ``workdir`` if given.
    Setting ``cancel`` stops the grading from another thread.
    """
    # Absolute: the grading core runs in a folder of its own.
    submission, autograder_zip = Path(submission).absolute(), Path(autograder_zip).absolute()
    workdir = Path(workdir).absolute() if workdir is not None else None
    settings = settings or settings_module.from_zip(autograder_zip)
    box = sandboxes.choose(sandbox, settings=settings)  # refuse before any work if it is missing
    try:  # the one check of a notebook, the same as the batch's for an upload
        checked, _ = uploads.read_notebook_file(submission, int(settings.max_notebook_mb * 2**20))
    except uploads.Refused as e:
        return Outcome(str(submission), Status.INVALID, e.en, message_zh=e.zh, sandbox=box.name)
    nb = prepare_submission(nbformat.reads(checked.decode("utf-8"), as_version=4))

    with tempfile.TemporaryDirectory(prefix="fashion-kit-grade-", dir=workdir) as tmp:
        tmp = Path(tmp).absolute()
        # Only the Gradescope layout's account may pass through to its work folder (the core makes it
        # in here), and neither list this folder nor enter the Gradescope layout beside it.
        tmp.chmod(box.folder_mode)
        ag_dir = tmp / "autograder"
        ag_dir.mkdir(mode=0o700)
        layout.make_gradescope_folder(ag_dir, autograder_zip, nb, extra_files)
        settings_file = tmp / "settings.json"
        settings_file.write_text(json.dumps(settings.to_dict()), encoding="utf-8")

        command = [sys.executable, "-I", "-m", "fashion_kit.grading.core", str(ag_dir),
                   "--sandbox", box.name, "--settings", str(settings_file), "--scratch", str(tmp), "--probed"]
        ran = supervise.run(
            command, cwd=tmp, env={**os.environ, **(env or {})},
            timeout=outer_seconds(settings),
            memory_limit_mb=settings.memory_limit_mb + OUTER_MEMORY_MARGIN_MB, cancel=cancel,
            poll_seconds=OUTER_POLL_SECONDS,
        )
        results_path = ag_dir / contract.RESULTS_DIR / contract.RESULTS_FILE
        results = read_results(results_path)
        if output_dir is not None and results is not None:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            shutil.copy(results_path, Path(output_dir) / contract.RESULTS_FILE)
    return outcome_of(str(submission), results, ran, settings, box.name)


def outer_seconds(settings: Settings) -> float:
    """How long the whole grading of one submission may take before the supervisor here steps in:
    the notebook's limit, the challenge's training, and the grace for measuring."""
    return settings.timeout_seconds + core.trainer_wall_seconds(settings) + OUTER_GRACE_SECONDS


def outcome_of(submission: str, results: dict | None, ran: supervise.Supervised, settings: Settings,
               sandbox: str) -> Outcome:
    """Turn what the grading left into an :class:`Outcome` with a status and a message."""
    def outcome(status, message="", found=None, stopped="", message_zh=""):
        return Outcome(submission, status, message, results, ran.seconds, ran.log, found or {},
                       ran.peak_rss_bytes / 2**20, stopped, sandbox, message_zh)

    outer = outer_seconds(settings)
    if ran.stopped == Stop.TIMEOUT:
        return outcome(Status.TIMEOUT, f"Stopped after {outer:g} s: the notebook did not finish in time.")
    if ran.stopped == Stop.MEMORY_LIMIT:
        return outcome(Status.MEMORY, f"Stopped: the grading used {ran.peak_rss_bytes / 2**20:,.0f} MB, more than "
                                 f"the limit of {settings.memory_limit_mb + OUTER_MEMORY_MARGIN_MB:,.0f} MB.")
    if ran.stopped == Stop.INTERRUPTED:
        return outcome(Status.INTERRUPTED, "Grading was cancelled before it finished.")
    if results is None:
        tail = ran.log.strip().splitlines()[-1:] or ["no output"]
        return outcome(Status.ERROR, f"The autograder exited with code {ran.returncode} and wrote no results "
                                f"({tail[0][:300]}).")
    tests = {t.get("name"): t for t in results.get("tests", [])}
    if contract.OTTER_ERROR_TEST in tests:
        return _refused(tests[contract.OTTER_ERROR_TEST].get("output", ""), outcome)
    kind = (results.get("extra_data") or {}).get(contract.STOPPED_KEY)
    found = points.of_results(results)
    if kind is not None:
        kept = points.total(found)
        zh, en = stopped.summary(kind, timeout_seconds=settings.timeout_seconds,
                                 memory_limit_mb=settings.memory_limit_mb)
        if kept:
            zh += f"之前檢查過的題目保留 {kept:g} 分。"
            en += f" The questions checked before that keep their {kept:g} points."
        return outcome(Status.GRADED, en, found, stopped=kind, message_zh=zh)
    return outcome(Status.GRADED, "", found)


def read_results(path: Path | str) -> dict | None:
    """A results.json's content, or None if there is none, it was cut short (a run killed while
    writing it) or it holds no object. The kit's one reader of results files."""
    try:
        results = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return results if isinstance(results, dict) else None


def _refused(otter_message: str, make) -> Outcome:
    """Turn Otter's refusal to grade (its "Autograder Error" test) into a status and a message."""
    import re

    found = re.search(r"Received submission for assignment '(.*?)' \(this is assignment '(.*?)'\)", otter_message)
    if found:
        got, expected = found.groups()
        what = "has no assignment name" if got == "None" else f"is for assignment '{got}'"
        return make(
            Status.WRONG_ASSIGNMENT,
            f"This notebook {what}; expected the '{expected}' notebook (start from the student notebook).",
        )
    detail = otter_message.split("\n\n", 1)[-1].strip() or "no reason given"
    return make(Status.ERROR, f"Otter refused to grade the notebook: {detail}")


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
