"""Gradescope's entry point for this autograder (also used, unchanged, by local grading).

Before Otter runs the notebook, the Fashion-MNIST files bundled in this zip are put into the Keras
cache, so ``load_data()`` in the student's notebook never touches the network.

Otter grades in a child process, watched from here: when the notebook runs past ``timeout_seconds``
(otter_config.json, ``fashion_kit`` section; set below Gradescope's own limit, which would leave the
student nothing) or its kernel dies (the out-of-memory killer, on Gradescope), the child is stopped
and :mod:`interrupted` writes a results.json that says so, keeping every question checked before.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parent
sys.path.insert(0, str(SOURCE))

import fashion_kit_data  # noqa: E402  (bundled copy of fashion_kit/data.py)
import interrupted  # noqa: E402
import postgrade  # noqa: E402  (accuracy graded outside the student's kernel)


def settings() -> dict:
    """The kit's grading settings: the ``fashion_kit`` section of the zip's otter_config.json."""
    return json.loads((SOURCE / "otter_config.json").read_text(encoding="utf-8"))["fashion_kit"]


# Runs Otter in the child: this folder importable (for the plugins), the checkpoints plugin in front.
OTTER_CHILD = """\
import ctypes, json, os, signal, sys
if sys.platform.startswith("linux"):
    # Die with run_otter.py: if it is killed (a batch stopped, a local time limit), no orphan keeps
    # grading. 1 = PR_SET_PDEATHSIG; the parent check closes the race with a parent already gone.
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    if os.getppid() != int(sys.argv[4]):
        sys.exit("run_otter.py ended before grading started")
sys.path.insert(0, sys.argv[1])
from otter.run.run_autograder import main
main(sys.argv[2], plugins=json.loads(sys.argv[3]))
"""
# The kit's own Otter plugins live in this folder, which only this entry point puts on sys.path; they
# are passed here rather than listed in otter_config.json so that a plain `otter run` of the zip
# still works (without them: no TensorFlow seeding, check_all cells regrade).
KIT_PLUGINS = ["seeding.SeedTensorFlow", "check_in_place.CheckEachQuestionInPlace"]
# What nbclient says when the kernel vanishes mid-cell; on Gradescope that is the out-of-memory killer.
KERNEL_DIED = ("DeadKernelError", "Kernel died")


def grade(autograder_dir: str) -> None:
    """Run Otter's autograder on the submission; results/results.json is written whatever happens."""
    config = json.loads((SOURCE / "otter_config.json").read_text(encoding="utf-8"))
    timeout = settings().get("timeout_seconds")
    results_path = Path(autograder_dir) / "results" / "results.json"
    with tempfile.TemporaryDirectory(prefix="fashion-kit-checkpoints-") as folder:
        plugins = [{"checkpoints.Checkpoints": {"folder": folder}}, *KIT_PLUGINS, *config.get("plugins", [])]
        log_path = Path(folder) / "otter.log"
        with open(log_path, "w+", encoding="utf-8", errors="replace") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", OTTER_CHILD, str(SOURCE), str(autograder_dir), json.dumps(plugins),
                 str(os.getpid())],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopping it stops the kernel too
            )
            try:
                proc.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        log_text = log_path.read_text(encoding="utf-8", errors="replace")
        print(log_text, end="", flush=True)  # Gradescope shows instructors this process's stdout

        if timed_out:
            kind = interrupted.TIMEOUT
        elif results_path.is_file():
            return  # Otter's own results, including its "Autograder Error" for a wrong notebook
        elif proc.returncode == -signal.SIGKILL or any(s in log_text for s in KERNEL_DIED):
            kind = interrupted.MEMORY
        else:
            kind = interrupted.ERROR
        results = interrupted.results(kind, Path(autograder_dir), Path(folder), timeout, log_text)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=4, ensure_ascii=False), encoding="utf-8")
    print(f"\nfashion-kit: grading stopped ({kind}); wrote results for the questions checked before.")


def main(autograder_dir: str) -> None:
    fashion_kit_data.install(SOURCE / "data" / "fashion-mnist")
    grade(autograder_dir)
    postgrade.main(autograder_dir)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AUTOGRADER_DIR", "/autograder"))
