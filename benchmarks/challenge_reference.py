"""Measure the challenge's reference recipe as the grader trains it: CPU time, epochs, test accuracy.

Takes the challenge cells of the solution notebook (the settings and ``build_challenge_model``) with
``RUN_CHALLENGE`` switched on, leaves the recipe exactly as grading's phase 1 does (the kit's
challenge cell), reads it as the trusted core does, trains it with the grader's trainer process
(``--sandbox none``: the same process, without the wall) within ``challenge_cpu_seconds`` from
otter_config.json, and measures the trained model with the evaluator. Exits non-zero if the
reference misses the bonus threshold or its budget stopped it before its declared epochs.

    python benchmarks/challenge_reference.py [--lang en] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKERS = {"settings": "RUN_CHALLENGE = False", "build": "def build_challenge_model"}


def challenge_cells(notebook: Path) -> dict[str, str]:
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    found = {}
    for part, marker in MARKERS.items():
        sources = [c.source for c in nb.cells if c.cell_type == "code" and marker in c.source]
        if len(sources) != 1:
            sys.exit(f"{notebook}: expected one code cell containing {marker!r}, found {len(sources)}.")
        found[part] = sources[0]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", default="en", choices=["en", "zh-TW"])
    parser.add_argument("--json", type=Path, help="also write the measurements to this file")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "src"))
    from fashion_kit import contract, data, settings as settings_module
    from fashion_kit.grading import challenge_recipe, core, evaluator, sandbox
    from fashion_kit.grading.cells import challenge

    data_dir = data.ensure()
    import tensorflow as tf

    settings = settings_module.load(ROOT / "otter_config.json")
    cells = challenge_cells(ROOT / "solutions" / args.lang / "fashion_mnist.ipynb")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {"tf": tf}
        exec(cells["settings"], env)
        env["RUN_CHALLENGE"] = True
        exec(cells["build"], env)
        exec(challenge.CELL.format(folder=str(tmp), name=contract.CHALLENGE_RECIPE_FILE), env)
        recipe = challenge_recipe.read(tmp, tmp)
        started = time.perf_counter()
        trained = core.train_challenge(recipe, tmp / "challenge", data_dir,
                                       sandbox.NoSandbox(settings), Path(sys.executable))
        wall = time.perf_counter() - started
        if "model" not in trained:
            sys.exit(f"The grader's trainer made no model: {trained}")
        facts = evaluator.answer({"data": str(data_dir), "model": trained["model"],
                                  "accuracy": True})

    result = {
        "training_cpu_seconds": trained["cpu_seconds"],
        "trainer_wall_seconds": round(wall, 1),
        "budget_cpu_seconds": settings.challenge_cpu_seconds,
        "epochs_run": trained["epochs"],
        "epochs_declared": recipe["epochs"],
        "batch_size": recipe["batch_size"],
        "stopped_by_budget": trained["time_is_up"],
        "test_accuracy": round(facts["accuracy"], 4),
        "training_accuracy": round(facts["train_accuracy"], 4),
        "parameters": trained["params"],
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "machine": platform.machine(),
        "tensorflow": tf.__version__,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    ok = facts["accuracy"] >= settings.challenge_bonus_threshold and not trained["time_is_up"]
    if not ok:
        print(f"The reference misses the challenge: needs accuracy >= {settings.challenge_bonus_threshold} after "
              f"its {recipe['epochs']} epochs within {settings.challenge_cpu_seconds:g} CPU seconds.", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
