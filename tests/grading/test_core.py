"""The grading core's entry point, started exactly as the autograder zip's run_autograder starts it."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from fashion_kit import settings as settings_module
from fashion_kit.grading import core, sandbox

RUN_AUTOGRADER = Path(core.__file__).resolve().parents[1] / "gradescope" / "run_autograder"


def run_autograder_arguments(autograder_dir: Path) -> list[str]:
    """The arguments run_autograder hands the core, with Gradescope's /autograder moved to ``autograder_dir``."""
    line = next(line for line in RUN_AUTOGRADER.read_text().splitlines() if line.startswith("exec "))
    words = shlex.split(line)
    args = words[words.index("fashion_kit.grading.core") + 1:]
    return [str(autograder_dir) if a == "/autograder" else a for a in args]


def test_without_settings_the_sandbox_and_the_grading_use_the_zips_otter_config(tmp_path, monkeypatch):
    source = tmp_path / "autograder" / "source"
    source.mkdir(parents=True)
    limits = {"max_processes": 100, "max_work_folder_mb": 64, "memory_limit_mb": 1024, "timeout_seconds": 60}
    (source / "otter_config.json").write_text(json.dumps({"fashion_kit": limits}), encoding="utf-8")
    args = run_autograder_arguments(tmp_path / "autograder")
    assert "--settings" not in args and re.fullmatch(r"--sandbox", args[1]), args
    made, graded = [], []

    def choose(kind, *, settings, probed):  # the user sandbox needs root and its account: record, then go without
        assert not probed, "on Gradescope nobody probed the sandbox before the core"
        made.append((kind, settings))
        return sandbox.NoSandbox(settings)

    monkeypatch.setattr(core.sandboxes, "choose", choose)
    monkeypatch.setattr(core.sandboxes, "adopt_orphans", lambda: None)
    monkeypatch.setattr(core, "grade", lambda folder, box, **kw: graded.append((Path(folder), box)))
    assert core.main(args) == 0
    expected = settings_module.load(source / "otter_config.json")
    assert made == [("user", expected)]
    ((folder, box),) = graded
    assert folder == tmp_path / "autograder" and box.settings == expected
    # The sandbox's own walls come from the same values the supervisor is given (box.settings).
    assert f"--fsize={64 * 2**20}" in sandbox._limits(box.settings)


def test_the_grading_processes_skip_jsonschemas_slow_optional_checker():
    """The core (and every grading process) imports jsonschema, whose optional IRI checker compiles a
    grammar at import: a second of CPU per grading that grading never uses."""
    import subprocess
    import sys

    for module in ("fashion_kit.grading.core", "fashion_kit.grading.evaluator", "fashion_kit.grading.phase1"):
        found = subprocess.run(
            [sys.executable, "-I", "-c", f"import sys, {module}, jsonschema; "
             "print(sorted(n for n in sys.modules if n.startswith('rfc3987_syntax') and sys.modules[n]))"],
            capture_output=True, text=True, check=True).stdout.strip()
        assert found == "[]", f"{module} imported {found}"


def test_a_caller_that_sets_no_thread_variables_is_graded(built, tmp_path):
    """Gradescope's run_autograder passes no thread variable (TensorFlow then chooses its own pools):
    the core grades as it does with them. Here an upload of another assignment, refused before
    anything of it runs."""
    import os
    import subprocess
    import sys

    from fashion_kit import contract, notebooks
    from fashion_kit.grading import layout

    folder = tmp_path / "autograder"
    layout.make_gradescope_folder(folder, built.autograder_zip, notebooks.nbformat.v4.new_notebook())
    env = {k: v for k, v in os.environ.items() if k not in layout.THREAD_VARIABLES}
    ran = subprocess.run([sys.executable, "-I", "-m", "fashion_kit.grading.core", str(folder), "--sandbox", "none",
                          "--scratch", str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    results = json.loads((folder / contract.RESULTS_DIR / contract.RESULTS_FILE).read_text(encoding="utf-8"))
    assert results["score"] == 0
