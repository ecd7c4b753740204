"""What the kit's two sides agree on, written once: the host tooling and the grader in the zip.

Both import this module (the zip installs the kit itself), so a name or a format changed here changes
on both sides at once. It holds the names of the files a grading reads and writes, the layout of the
untrusted work folder, the keys of results.json, and two small helpers
both sides need.

It imports nothing of the kit: every other module may import it (docs/architecture.md). The
questions' own names belong to the question registry (:mod:`fashion_kit.questions`).
"""

from __future__ import annotations

import re

NOTEBOOK = "fashion_mnist.ipynb"
# The autograder zip as the build writes it and Gradescope takes it, and the settings file it carries
# (the repository's own, copied as it is).
AUTOGRADER_ZIP_NAME = "autograder.zip"
OTTER_CONFIG_FILE = "otter_config.json"
# The tag Otter Assign gives the cells a student fills in.
ANSWER_TAG = "otter_answer_cell"
# The languages a notebook is handed out in (the build writes one into the notebook's metadata).
LANGUAGES = ("zh-TW", "en")
# What the student saves (question 7).
MODEL_FILES = ("fashion_mnist_model.keras", "fashion_mnist_model.h5")
# Files a student may hand in next to the notebook; anything else is ignored by the grader (the
# challenge's entry is no file: the grader trains the notebook's recipe itself).
SUBMITTED_FILES = (NOTEBOOK, *MODEL_FILES)

# results.json's extra_data: why a run was stopped (a statuses.Stop: timeout, memory-limit, kernel-died...),
# for programs.
STOPPED_KEY = "fashion_kit_stopped"
# results.json's extra_data: the sandbox the notebook ran in (bubblewrap, user, none).
SANDBOX_KEY = "fashion_kit_sandbox"
# results.json's extra_data: out-of-kernel measurements (accuracies), for reports and feedback.
MEASURED_KEY = "fashion_kit_measured"
# results.json's extra_data: true when the kit's tests graded with their quick fit (never a real grade).
QUICK_FIT_KEY = "fashion_kit_test_quick_fit"
# results.json's extra_data: the language of the submitted notebook (zh-TW, en), for feedback pages.
LANGUAGE_KEY = "fashion_kit_language"

# The test results.json holds, and no scores, when a submission cannot be graded (Otter's name for it).
OTTER_ERROR_TEST = "Autograder Error"
CHALLENGE_TEST, LEADERBOARD_NAME = "Challenge bonus", "Challenge test accuracy"
# Gradescope's field for how long the grading took: a measure of the machine, not of the submission
# (the one part of results.json that two gradings of the same notebook may not share).
EXECUTION_TIME_KEY = "execution_time"
# Beside each question's scored test, a test without points holding what the notebook's own check
# says of it: Gradescope can show it at once, while the scores wait for publication.
PUBLIC_CHECK_TEST = "{question} · 筆記本的檢查 / notebook check"

# Gradescope's layout of the autograder's folder: the zip unpacked in source/ (Otter's tests in
# source/tests, the data set in source/data/fashion-mnist), the student's files in submission/, and
# results/results.json, the grade. The phase-1 work folder mirrors it: a copy of what the notebook
# may see (the submission's files, a private home), and the only place it may write.
WORK_SOURCE, WORK_SUBMISSION, WORK_HOME = "source", "submission", "home"
TESTS_DIR = "tests"
DATA_DIR = "data/fashion-mnist"  # inside source/, as inside the zip: the four files of data.FILES
# Gradescope's own folder for results.json, beside source/ and submission/ (phase 1 never sees it).
RESULTS_DIR, RESULTS_FILE = "results", "results.json"
# Inside the work folder: what the kernel leaves for the trusted phase, read as data only.
EVIDENCE_DIR = "evidence"
RUNNING_FILE = "running.json"  # the student's code cell that is about to run
# Of every question, what the grader's cell collected right after it was answered (its collect_<question>).
QUESTION_VALUES = "{question}.json"
TEST_IMAGES_FILE = "test_images.npy"  # the notebook's own test_images at question 8
# The challenge's entry when the notebook takes it: what build_challenge_model() returned, as Keras's
# JSON of the model, with the epochs and batch size the notebook declares (grading.challenge_recipe).
CHALLENGE_RECIPE_FILE = "challenge_recipe.json"
# Of a question with evidence, the grader saves `model` right after the question is answered.
MODEL_SNAPSHOT = "{question}.keras"


# An optional format checker of jsonschema (Jupyter's server pulls it in) that compiles a grammar when
# it is imported: 0.75 s for every process that imports nbformat or Otter. Nothing in grading checks
# IRIs, so the grading processes go without it (jsonschema skips a checker that cannot be imported).
SLOW_OPTIONAL_MODULES = ("rfc3987_syntax",)


def skip_slow_optional_modules() -> None:
    import sys

    for name in SLOW_OPTIONAL_MODULES:
        sys.modules.setdefault(name, None)


def natural_key(text: str):
    """Sort q2 before q10 and student9 before student10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)]


# Linux kills a process whose parent died if it asked with PR_SET_PDEATHSIG (kept across exec). It is
# asked in this tiny first program rather than in a preexec_fn, which is unsafe with threads.
PDEATHSIG_TRAMPOLINE = """\
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit("the grading's parent died before it started")
os.execv(sys.argv[2], sys.argv[2:])
"""


def dying_with(parent_pid: int, command: list[str], python: str) -> list[str]:
    """``command``, made to die with the process ``parent_pid`` (Linux; elsewhere unchanged)."""
    import sys

    if not sys.platform.startswith("linux"):
        return command
    return [python, "-I", "-c", PDEATHSIG_TRAMPOLINE, str(parent_pid), *command]
