"""Grade one submission in two phases with a wall between them. The autograder's entry point.

``python -I -m fashion_kit.grading.core AUTOGRADER_DIR --sandbox KIND`` grades the Gradescope
layout in ``AUTOGRADER_DIR`` (``source/``, ``submission/``, ``results/``); Gradescope runs it as root
with ``--sandbox user``, local grading with bubblewrap.

1. Before anything of the student's runs, everything the grade depends on is fixed: the settings,
   the questions and their points (the autograder's own tests), the data's checksums. Nothing of it
   is read again later from a place the notebook could write. A submission that is not one notebook
   for this assignment is refused here (:mod:`admission`), and nothing of it runs.
2. Phase 1 (untrusted) runs the notebook (:mod:`phase1`) on a copy of the submission in a work
   folder, inside the sandbox, under the time, memory, process and disk limits; afterwards no
   process of it survives. The grader's own cells leave each question's values and the model
   snapshots there.
3. Phase 2 (trusted), the only judge, copies out what phase 1 left (as data, with size limits,
   following no link), trains the challenge's recipe when the notebook took the challenge (in a
   sandboxed trainer process that runs none of the student's code and sees no test image:
   :mod:`challenge_recipe`, :mod:`trainer`), measures the models in sandboxed evaluator processes,
   decides every question with the kit's checks (:mod:`verdicts`, through :mod:`fashion_kit.questions`) and
   writes ``results/results.json``, where phase 1 could never write.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ..errors import KitError
from .. import contract as c
from .. import data
from .. import questions as questions_module
from ..questions import Q_EVALUATE, WITH_SNAPSHOT
from .. import settings as settings_module
from ..settings import Settings
from . import admission, challenge_recipe, layout, phase1 as phase1_program, sandbox as sandboxes, supervise, verdicts
from ..statuses import CheckStatus, Stop

# What nbclient says when the kernel vanishes mid-cell; on Gradescope that is the out-of-memory killer.
KERNEL_DIED_SIGNS = ("DeadKernelError", "Kernel died")
# The models are measured by evaluator processes with a budget counted in CPU seconds (the lesson's
# models take about 2 together, the challenge's reference CNN about 40 with Keras's import), so
# machine load changes no grade. The wall-clock limit is only a backstop for a process
# that waits without computing; no measurement comes near it.
EVALUATOR_CPU_SECONDS = 300
EVALUATOR_WALL_SECONDS = 1800
EVALUATOR_MEMORY_MB = 2048
# The challenge's trainer: its CPU budget is the setting; the wall clock is only a backstop for a
# process that waits without computing (one busy core spends the budget in as many seconds).
TRAINER_WALL_FACTOR, TRAINER_WALL_MIN_SECONDS = 2, 300
# Where an evaluator writes its answer, in its own folder (never its output, which a model can reach).
ANSWER_FILE = "answer-{key}.json"
# Of phase 1's output, what the instructor sees in the log.
LOG_CHARS = 20000
# The kit's own tests set this to 1 in the core's environment for a quick fit where accuracy is not
# what they prove (:mod:`.cells.quick_fit`); no setting, notebook or upload reaches this environment.
QUICK_FIT_ENV = "FASHION_KIT_TEST_QUICK_FIT"


class AutograderBroken(KitError, RuntimeError):
    """The autograder itself is incomplete (its tests or data); no student is to blame."""


def grade(autograder_dir: Path, box: sandboxes.Sandbox, *, scratch: Path | None = None, log=print) -> dict:
    """Grade the submission in ``autograder_dir`` and write its results.json; returns it. The grading's
    settings are the ones the sandbox was built with, so its walls and the supervisor's limits agree."""
    autograder_dir = Path(autograder_dir).resolve()
    source = autograder_dir / c.WORK_SOURCE
    if os.geteuid() == 0:
        source.chmod(0o700)  # the hidden tests and the grader's data: root's alone (setup.sh does it too)
    settings = box.settings
    quick_fit = os.environ.get(QUICK_FIT_ENV) == "1"
    try:
        questions = questions_module.points_in_autograder(source / c.TESTS_DIR)
    except questions_module.NoQuestions as e:
        raise AutograderBroken(str(e)) from None
    data_dir = source / c.DATA_DIR
    wrong = data.problems(data_dir)
    if wrong:
        raise AutograderBroken("The autograder's Fashion-MNIST files are damaged: " + "; ".join(wrong))

    started_after = supervise.seconds_since_start()  # Python, imports and the sandbox's probes
    clock = [("start", time.monotonic())]
    tmp = Path(tempfile.mkdtemp(prefix="fashion-kit-grading-", dir=scratch))
    try:
        tmp.chmod(box.folder_mode)
        work, trusted = tmp / "work", tmp / "trusted"
        trusted.mkdir(mode=0o700)
        submission = autograder_dir / c.WORK_SUBMISSION
        refused = admission.refusal(submission, settings.assignment_name, trusted,
                                    int(settings.max_notebook_mb * 2**20))
        if refused is not None:  # the grader's own word: nothing of the student's runs
            log(refused)
            phase1, models, phase1_log = verdicts.Phase1(refused=refused), {}, ""
        else:
            phase1, models, phase1_log = run_phase1(work, trusted, source, submission, questions, data_dir, box,
                                                    clock, log, quick_fit=quick_fit)
        results = verdicts.decide(questions, phase1, models, settings, sandbox=box.name)
        if quick_fit:  # never a real grade: said where every reader of the grade looks
            results["extra_data"][c.QUICK_FIT_KEY] = True
        results["extra_data"][c.LANGUAGE_KEY] = notebook_language(submission, trusted)
        results[c.EXECUTION_TIME_KEY] = round(time.monotonic() - clock[0][1], 1)
        if phase1.stopped == Stop.ERROR:
            results["tests"].append({"name": "Autograder log (instructors only)", "status": CheckStatus.FAILED,
                                     "visibility": "hidden", "output": phase1_log[-5000:]})
        results_path = autograder_dir / c.RESULTS_DIR / c.RESULTS_FILE
        results_path.parent.mkdir(parents=True, exist_ok=True)
        partial = results_path.with_name(f".{c.RESULTS_FILE}.partial")  # replaced, never written through a link
        partial.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(partial, results_path)
        clock.append(("decide", time.monotonic()))
    finally:  # the grade is written first: nothing phase 1 left can stop it from being written
        layout.remove_tree(tmp)
    # One line for people and for benchmarks/run_benchmarks.py: where a grading's seconds went.
    log(f"fashion-kit timings: core_start={started_after:.2f} "
        + " ".join(f"{name}={t - before:.2f}" for (_, before), (name, t) in zip(clock, clock[1:])))
    return results


def run_phase1(work: Path, trusted: Path, source: Path, submission: Path, questions: dict[str, float],
               data_dir: Path, box: sandboxes.Sandbox, clock: list, log,
               quick_fit: bool = False) -> tuple[verdicts.Phase1, dict, str]:
    """Run the notebook in the sandbox (phase 1), then measure the models it left: what phase 1
    left, read as the student's data, the measured facts, and phase 1's output."""
    settings, python = box.settings, Path(sys.executable)
    layout.make_work_folder(work, source, submission)
    box.prepare(work)
    clock.append(("prepare", time.monotonic()))
    program = [str(python), "-I", "-m", "fashion_kit.grading.phase1", str(work), str(settings.seed)]
    if quick_fit:
        log(f"fashion-kit: {QUICK_FIT_ENV}=1: a test's quick fit, not a real grade")
        program.append(phase1_program.QUICK_FIT_ARGUMENT)
    if box.threads:
        log("fashion-kit threads: " + " ".join(f"{k}={v}" for k, v in box.threads.items()))
    command = box.command(program, work=work, env=layout.phase1_env(work, python))
    ran = supervise.run(
        command, cwd=work, env=None, timeout=settings.timeout_seconds,
        memory_limit_mb=settings.memory_limit_mb, max_processes=settings.max_processes,
        watch_folder=work, max_folder_mb=settings.max_work_folder_mb, on_stop=box.kill_all,
        held_memory=box.held_memory,
    )
    box.kill_all()  # whatever happened, nothing of phase 1 outlives this line
    clock.append(("phase1", time.monotonic()))
    log(ran.log[-LOG_CHARS:], end="" if ran.log.endswith("\n") else "\n")
    phase1 = read_phase1(work, trusted, questions, ran)
    # A stopped notebook never reached the challenge's cell: whatever recipe it left is nobody's.
    models = measure(work, trusted, data_dir, box, python, challenge=not phase1.stopped)  # and work is gone
    clock.append(("measure", time.monotonic()))
    return phase1, models, ran.log


def notebook_language(submission: Path, scratch: Path) -> str | None:
    """The language the submitted notebook was handed out in (the build writes it into its metadata),
    read from the upload itself, which phase 1 never touches."""
    found = layout.read_untrusted_json(submission, c.NOTEBOOK, scratch)
    for key in ("metadata", "fashion_kit", "language"):
        found = found.get(key) if isinstance(found, dict) else None
    return found if found in c.LANGUAGES else None


def read_phase1(work: Path, trusted: Path, questions: dict[str, float], ran: supervise.Supervised) -> verdicts.Phase1:
    """What phase 1 left, read as the student's data: each question's collected values and, when it
    did not finish, why it stopped (and in which cell). No score of the kernel's is read, and nothing
    it wrote is taken as the grader's word: phase 2 decides every question."""
    evidence = work / c.EVIDENCE_DIR
    phase1 = verdicts.Phase1()
    finished = ran.stopped is None and ran.returncode == 0
    for name in questions:
        found = layout.read_untrusted_json(evidence, c.QUESTION_VALUES.format(question=name), trusted)
        if found is not None:
            phase1.values[name] = found
    if not finished:
        phase1.stopped = _why_stopped(ran)
        cell = layout.read_untrusted_json(evidence, c.RUNNING_FILE, trusted)
        if isinstance(cell, dict) and isinstance(cell.get("cell"), int):
            first = cell.get("first_line")
            phase1.running_cell = {"cell": cell["cell"], "first_line": verdicts.text_of(first, 80)}
    return phase1


def _why_stopped(ran: supervise.Supervised) -> Stop:
    if ran.stopped in (Stop.TIMEOUT, Stop.MEMORY_LIMIT, Stop.PROCESSES, Stop.DISK):
        return ran.stopped
    if ran.stopped is None and (ran.returncode == -9 or any(s in ran.log for s in KERNEL_DIED_SIGNS)):
        return Stop.KERNEL_DIED
    return Stop.ERROR


def measure(work: Path, trusted: Path, data_dir: Path, box: sandboxes.Sandbox, python: Path, *,
            challenge: bool = True) -> dict:
    """Copy the models and the challenge's recipe out of the work folder, remove the work folder,
    train the recipe, and measure the models in evaluator processes: {key: facts or {"error": ...}}
    for the snapshots, the student's file and the grader-trained challenge model."""
    # Beside the trusted folder, not in it: the evaluator runs as the sandbox's identity, which must
    # enter this folder (on Gradescope, the unprivileged account cannot pass the 0700 trusted folder).
    inputs = trusted.parent / "inputs"
    inputs.mkdir()
    models, found = {}, {}
    wanted = [(work / c.EVIDENCE_DIR, c.MODEL_SNAPSHOT.format(question=q), q) for q in WITH_SNAPSHOT]
    wanted += [(work / c.WORK_SUBMISSION, name, "student") for name in c.MODEL_FILES]
    for folder, name, key in wanted:
        if key in models:
            continue  # the student's .keras wins over an .h5 of the same model
        target = inputs / f"{key}{Path(name).suffix}"
        problem = layout.copy_untrusted(folder, name, target, layout.MAX_MODEL_BYTES)
        if problem is None:
            models[key] = target
        elif problem != "missing":
            found[key] = {"error": f"{name}: {problem}"}
    own = None
    if Q_EVALUATE in models and layout.copy_untrusted(
            work / c.EVIDENCE_DIR, c.TEST_IMAGES_FILE, inputs / c.TEST_IMAGES_FILE, layout.MAX_IMAGES_BYTES) is None:
        own = str(inputs / c.TEST_IMAGES_FILE)
    try:
        recipe = challenge_recipe.read(work / c.EVIDENCE_DIR, trusted) if challenge else None
    except challenge_recipe.Refused as e:
        recipe, found[CHALLENGE] = None, {"refused": str(e)}
    # The notebook's copy of the data set (its Keras cache, test images included) goes before the
    # trainer starts: in Gradescope's layout the trainer runs as the same account as the notebook.
    layout.remove_tree(work)
    training = {}
    if recipe is not None:
        training = train_challenge(recipe, trusted.parent / "challenge", data_dir, box, python)
        trained = inputs / "challenge.keras"
        problem = _take_trained(training, trained)
        if problem is None:
            models[CHALLENGE] = trained
        else:
            found[CHALLENGE] = problem
    if models:
        for name in data.FILES:
            shutil.copyfile(data_dir / name, inputs / name)
        box.prepare(inputs)
    requests = [{"key": key, "model": str(models[key]), "answer": str(inputs / ANSWER_FILE.format(key=key)),
                 "accuracy": key in (Q_EVALUATE, CHALLENGE), "train_accuracy": key != CHALLENGE,
                 "own_images": own if key == Q_EVALUATE else None}
                for key in models]
    # The lesson's models share one process (its start costs more than their measurement); the
    # challenge's model gets one of its own, measured last, so it can cost only the challenge.
    for group in ([r for r in requests if r["key"] != CHALLENGE], [r for r in requests if r["key"] == CHALLENGE]):
        if group:
            found.update(_evaluate(group, inputs, box, python))
    if CHALLENGE in models and isinstance(found.get(CHALLENGE), dict):  # how far the grader's training went
        found[CHALLENGE]["training"] = {k: v for k, v in training.items() if k != "model"}
    return found


CHALLENGE = "challenge"  # the key of the grader-trained challenge model among the measured ones


def _take_trained(training: dict, target: Path) -> dict | None:
    """Copy the trainer's model to ``target``; None when done, else the challenge's facts saying why
    there is no model to measure ({"refused": the student's message} or {"error": ...})."""
    if "refused" in training:  # Keras itself would not build it: the trainer's words, said for students
        return {"refused": str(challenge_recipe.Refused("unbuildable", str(training["refused"])))}
    if "model" not in training:
        return {"error": str(training.get("error") or "the grader's training made no model")}
    trained = Path(training["model"])
    problem = layout.copy_untrusted(trained.parent, trained.name, target, layout.MAX_MODEL_BYTES)
    return None if problem is None else {"error": f"the trained model: {problem}"}


def train_challenge(recipe: dict, folder: Path, data_dir: Path, box: sandboxes.Sandbox, python: Path) -> dict:
    """Train ``recipe`` (checked) in a sandboxed trainer process whose folder holds the training
    files only: {"model": path of the trained model, "epochs": ..., ...}, or {"refused": ...} /
    {"error": ...}."""
    settings = box.settings
    folder.mkdir()
    for name in data.TRAINING_FILES:  # the training set, never the test set
        shutil.copyfile(data_dir / name, folder / name)
    (folder / "recipe.json").write_text(json.dumps(recipe), encoding="utf-8")
    answer = folder / "answer.json"
    request = folder / "request.json"
    request.write_text(json.dumps({
        "data": str(folder), "recipe": str(folder / "recipe.json"), "model": str(folder / "trained.keras"),
        "answer": str(answer), "cpu_seconds": settings.challenge_cpu_seconds, "seed": settings.seed,
    }), encoding="utf-8")
    box.prepare(folder)
    command = box.command([str(python), "-I", "-m", "fashion_kit.grading.trainer", str(request)],
                          work=folder, env=_sandboxed_env(folder))
    ran = supervise.run(command, cwd=folder, env=None, timeout=trainer_wall_seconds(settings),
                        memory_limit_mb=settings.memory_limit_mb,
                        on_stop=box.kill_all, held_memory=box.held_memory)
    box.kill_all()
    found = layout.read_untrusted_json(folder, answer.name, folder.parent)
    if not isinstance(found, dict):
        return {"error": f"the grader's training of your recipe failed ({_why_failed(ran)})"}
    if "refused" not in found and "error" not in found:
        found["model"] = str(folder / "trained.keras")
    return found


def trainer_wall_seconds(settings: Settings) -> float:
    """The longest the challenge's training may take on the clock (a grading's time beyond the
    notebook's own limit)."""
    return max(TRAINER_WALL_MIN_SECONDS, TRAINER_WALL_FACTOR * settings.challenge_cpu_seconds)


def _evaluate(requests: list[dict], inputs: Path, box: sandboxes.Sandbox, python: Path) -> dict:
    """{key: facts} of the models ``requests`` name, measured in order by one evaluator process; what
    went wrong, as data. A file that kills its reader costs only its own facts: the evaluator writes
    each answer as soon as it has it, so the first one missing is the model it died on, and the
    ones after it are measured again, each in a process of its own."""
    ran, answers = _run_evaluator(requests, inputs, box, python)
    missing = [r for r in requests if r["key"] not in answers]
    if missing:
        answers[missing[0]["key"]] = {"error": _failure(ran)}
        for request in missing[1:]:
            alone, answer = _run_evaluator([request], inputs, box, python)
            answers[request["key"]] = answer.get(request["key"]) or {"error": _failure(alone)}
    return answers


def _run_evaluator(requests: list[dict], inputs: Path, box: sandboxes.Sandbox, python: Path):
    """One evaluator process for ``requests``: how it ran, and the answers it wrote."""
    request_file = inputs / f"request-{requests[0]['key']}.json"
    request_file.write_text(json.dumps({"data": str(inputs), "models": requests}), encoding="utf-8")
    command = box.command(
        [str(python), "-I", "-m", "fashion_kit.grading.evaluator", str(request_file), str(EVALUATOR_CPU_SECONDS)],
        work=inputs, env=_sandboxed_env(inputs),
    )
    ran = supervise.run(command, cwd=inputs, env=None, timeout=EVALUATOR_WALL_SECONDS,
                        memory_limit_mb=EVALUATOR_MEMORY_MB, on_stop=box.kill_all, held_memory=box.held_memory)
    box.kill_all()
    answers = {}
    for request in requests:
        answer_name = Path(request["answer"]).name
        answer = layout.read_untrusted_json(inputs, answer_name, inputs.parent)  # written whole, or not at all
        (inputs / answer_name).unlink(missing_ok=True)
        if isinstance(answer, dict):
            answers[request["key"]] = answer
    return ran, answers


def _sandboxed_env(folder: Path) -> dict[str, str]:
    """The whole environment of a sandboxed process of the grader's (evaluator, trainer) in ``folder``."""
    return {"HOME": str(folder), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TF_CPP_MIN_LOG_LEVEL": "3",
            "CUDA_VISIBLE_DEVICES": "", "KERAS_HOME": str(folder / ".keras"), "MPLBACKEND": "Agg"}


def _why_failed(ran: supervise.Supervised) -> str:
    return ran.stopped or ("its CPU time limit" if ran.returncode in (-24, -9) else f"exit code {ran.returncode}")


def _failure(ran: supervise.Supervised) -> str:
    return f"the grader's measurement failed ({_why_failed(ran)})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fashion_kit.grading.core", description=__doc__.splitlines()[0])
    p.add_argument("autograder_dir", nargs="?", default="/autograder")
    p.add_argument("--sandbox", default="auto", choices=("auto", "bubblewrap", "user", "none"))
    p.add_argument("--settings", help="a JSON file of settings to use instead of source/otter_config.json")
    p.add_argument("--scratch", help="folder for temporary files (default: the system's)")
    p.add_argument("--probed", action="store_true",
                   help="the caller has just found this sandbox working here (fashion-kit run does): not checked again")
    args = p.parse_args(argv)
    try:
        # The settings first: the sandbox is built with the same limits the supervisor enforces.
        if args.settings:
            settings = Settings().replace(**json.loads(Path(args.settings).read_text(encoding="utf-8")))
        else:
            settings = settings_module.load(Path(args.autograder_dir) / c.WORK_SOURCE / c.OTTER_CONFIG_FILE)
        box = sandboxes.choose(args.sandbox, settings=settings, probed=args.probed)
        if box.name == "none":
            sandboxes.adopt_orphans()  # this process's own: what the notebook leaves becomes ours to kill
        grade(Path(args.autograder_dir), box, scratch=Path(args.scratch) if args.scratch else None)
    except sandboxes.SandboxBreach as e:
        print(f"fashion-kit: {e}; no grade was decided.", file=sys.stderr)
        return e.exit_code
    except KitError as e:  # the settings, the sandbox or the autograder itself: nobody's grade
        print(f"fashion-kit: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
