"""Peak resident memory of grading, for the Gradescope "autograder resources" recommendation.

    python benchmarks/measure_memory.py

Measures, one after the other (never in parallel, so they do not disturb each other), the peak
resident memory of the whole process tree (psutil polling every 0.1 s) of

* the tutorial's code as a plain script (benchmarks/tutorial_verbatim.py): the student's own cost;
* grading the reference solution exactly as Gradescope does: a fresh build of the autograder zip,
  unzipped into ``source/``, the notebook in ``submission/``, and the zip's ``run_otter.py`` run on
  that folder (Otter, its notebook kernel and the post-grading check all count).

Prints a Markdown table for docs/gradescope.md.
"""

from __future__ import annotations

import json
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from run_benchmarks import timed  # noqa: E402  (wall time and peak tree RSS of one command)

from fashion_kit import assign, data, notebooks, run  # noqa: E402


def gradescope_layout(autograder_zip: Path, notebook: Path, folder: Path) -> Path:
    for sub in ("source", "submission", "results"):
        (folder / sub).mkdir(parents=True)
    (folder / "submission_metadata.json").write_text("{}")
    with zipfile.ZipFile(autograder_zip) as zf:
        zf.extractall(folder / "source")
    notebooks.write(run.prepare_submission(notebooks.read(notebook)), folder / "submission" / assign.NOTEBOOK)
    return folder


def main() -> int:
    data.ensure()
    gb = 2**30
    rows = []
    with tempfile.TemporaryDirectory(prefix="fashion-kit-memory-") as tmp:
        tmp = Path(tmp)
        seconds, peak = timed([sys.executable, str(HERE / "tutorial_verbatim.py")], cwd=tmp)
        rows.append(("tutorial code as a plain script", seconds, peak))
        print(f"measured: {rows[-1]}", flush=True)

        (tmp / "kit").mkdir()
        built = assign.build(root=tmp / "kit", verify=False, progress=lambda _: None)
        folder = gradescope_layout(built.autograder_zip, built.solutions["en"], tmp / "autograder")
        seconds, peak = timed([sys.executable, str(folder / "source" / "run_otter.py"), str(folder)], cwd=folder)
        results = json.loads((folder / "results" / "results.json").read_text())
        scores = run._scores(results)
        score, possible = sum(s for s, _ in scores.values()), sum(p for _, p in scores.values())
        if score < possible:  # a grading that stopped early would understate the memory it needs
            raise SystemExit(f"The reference solution scored {score:g}/{possible:g}; expected full marks.")
        rows.append((f"grading the reference solution (run_otter.py, {score:g}/{possible:g})", seconds, peak))

    print("| what | wall time | peak resident memory (process tree) |")
    print("| --- | --- | --- |")
    for what, seconds, peak in rows:
        print(f"| {what} | {seconds:.0f} s | {peak / gb:.2f} GiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
