"""Measure the challenge's reference solution: test accuracy and training time on this machine.

Runs exactly the challenge cells of the solution notebook (the settings, ``build_challenge_model``
and the training cell with its time budget) with ``RUN_CHALLENGE`` switched on, after loading and
scaling the data as questions 1 and 3 do. The saved ``challenge_model.keras`` is then loaded back and
scored the way the autograder scores it. Exits non-zero if the reference misses the accuracy or the
budget.

    python benchmarks/challenge_reference.py [--lang en] [--json results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_ACCURACY = 0.90
MARKERS = {"settings": "RUN_CHALLENGE = False", "build": "def build_challenge_model", "train": "class TimeBudget"}


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
    from fashion_kit import data

    data.ensure()
    import numpy as np
    import tensorflow as tf
    from tensorflow import keras

    cells = challenge_cells(ROOT / "solutions" / args.lang / "fashion_mnist.ipynb")
    keras.utils.set_random_seed(42)
    (training_images, training_labels), (test_images, test_labels) = keras.datasets.fashion_mnist.load_data()
    env = {
        "np": np, "tf": tf, "keras": keras,
        "training_images": training_images / 255.0, "training_labels": training_labels,
        "test_images": test_images / 255.0, "test_labels": test_labels,
    }
    exec(cells["settings"], env)
    env["RUN_CHALLENGE"] = True
    exec(cells["build"], env)

    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        started = time.perf_counter()
        exec(cells["train"], env)
        wall = time.perf_counter() - started
        saved = keras.models.load_model("challenge_model.keras")
        guesses = np.argmax(saved.predict(test_images / 255.0, verbose=0), axis=1)
        saved_accuracy = float(np.mean(guesses == test_labels))
        trained = np.argmax(saved.predict(training_images / 255.0, verbose=0), axis=1)
        saved_training_accuracy = float(np.mean(trained == training_labels))

    result = {
        "training_seconds": round(env["budget"].used, 1),
        "cell_seconds": round(wall, 1),
        "budget_seconds": env["TIME_BUDGET_SECONDS"],
        "epochs_run": len(env["challenge_model"].history.history["loss"]),
        "epochs_allowed": env["CHALLENGE_EPOCHS"],
        "batch_size": env["CHALLENGE_BATCH_SIZE"],
        "test_accuracy": round(env["challenge_acc"], 4),
        "saved_model_test_accuracy": round(saved_accuracy, 4),
        "saved_model_training_accuracy": round(saved_training_accuracy, 4),
        "parameters": env["challenge_model"].count_params(),
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "machine": platform.machine(),
        "tensorflow": tf.__version__,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    ok = saved_accuracy >= TARGET_ACCURACY and result["training_seconds"] <= result["budget_seconds"]
    if not ok:
        print(f"The reference misses the challenge: needs accuracy >= {TARGET_ACCURACY} within "
              f"{result['budget_seconds']} s of training.", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
