"""`fashion-kit run` for real, as the README gives it: a relative notebook path, the default output
folder, the built autograder and the local sandbox. The training is five real epochs of one step each
(the whole training set as one batch), so this end-to-end grading fits the fast subset."""

from __future__ import annotations

import json
import shutil

import pytest

from fashion_kit import cli
from fashion_kit import run as run_module
from fashion_kit.grading import sandbox

from .conftest import mutate
from .conftest import QUESTIONS

FIT = "history = model.fit(training_images, training_labels, epochs=5)"


@pytest.fixture
def quick_solution(built, tmp_path):
    folder = tmp_path / "class"
    return mutate(built.solutions["en"], folder / "anna.ipynb", (FIT, FIT.replace("epochs=5)", "epochs=5, batch_size=60000)")))


def test_run_a_relative_notebook_with_the_default_output(built, quick_solution, monkeypatch, capsys):
    try:
        sandbox.choose("auto")
    except sandbox.SandboxUnavailable as e:
        pytest.skip(f"local grading needs bubblewrap: {e}")
    monkeypatch.chdir(quick_solution.parent)
    commands, supervised = [], run_module.supervise.run
    monkeypatch.setattr(run_module.supervise, "run", lambda command, **k: commands.append(command) or supervised(command, **k))
    code = cli.main(["run", quick_solution.name, "--autograder", str(built.autograder_zip)])
    assert len(commands) == 1 and "--probed" in commands[0], "the core is told the sandbox was just probed"
    out = quick_solution.parent / "graded" / "anna"
    printed = capsys.readouterr()
    assert code == cli.EXIT_GRADED, printed.out + printed.err + (out / "grading.log").read_text()[-3000:]
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    scores = {t["name"]: t["score"] for t in results["tests"] if t["name"] in QUESTIONS}
    # Five one-step epochs are a real five-epoch fit (q6), far from the accuracy threshold (q9).
    assert scores == {**QUESTIONS, "q9_accuracy": 0}, scores
    assert {p.name for p in out.iterdir()} == {"results.json", "grading.log", "feedback.html"}
    # Phase 1 logs each cell that raised: none of the answer key's does, its Otter cells included
    # (Otter is a stand-in while grading).
    log = (out / "grading.log").read_text(encoding="utf-8")
    assert "fashion-kit phase 1:" in log and not [line for line in log.splitlines() if line.startswith("cell ")], log
    assert "results:" in printed.out + printed.err
    shutil.rmtree(out)
