"""What the report's similar-submissions check costs for a class: time and peak memory of
``similarity.similar_pairs`` on generated notebooks (the student notebook with the reference
answers and some of the student's own, every 20th a copy of another with renamed variables).

    .venv/bin/python benchmarks/similarity.py            # a class of 200
    .venv/bin/python benchmarks/similarity.py --class-size 400
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from fashion_kit import paths
from fashion_kit.classroom import similarity

TEMPLATE = paths.STUDENTS / "en" / similarity.NOTEBOOK
REFERENCE = paths.SOLUTIONS / "en" / similarity.NOTEBOOK


def answers(rng: random.Random) -> list[str]:
    """The reference answers (nobody's own), with a student's own code in a few cells: each its own
    layer sizes, epochs, file name and extra checks, so two honest students rarely share a fingerprint."""
    cells = [code for _, code in similarity.answer_cells(REFERENCE)]
    units, epochs, seed = rng.randint(32, 512), rng.randint(3, 30), rng.randint(1, 10**6)
    own = {
        2: f"training_images = training_images.astype('float32') / {rng.choice([255, 255.0, 256])}\n"
           f"test_images = test_images.astype('float32') / {rng.choice([255, 255.0, 256])}\n"
           f"assert training_images.max() <= {rng.randint(1, 10**6)} and test_images.min() >= -{rng.randint(0, 10**6)}",
        3: f"keras.utils.set_random_seed({seed})\nmodel = tf.keras.models.Sequential([\n"
           f"    tf.keras.layers.Flatten(input_shape=(28, 28)),\n"
           f"    tf.keras.layers.Dense({units}, activation='relu'),\n"
           f"    tf.keras.layers.Dropout({rng.randint(1, 5) / 10}),\n"
           f"    tf.keras.layers.Dense(10, activation='softmax')])",
        5: f"history = model.fit(training_images, training_labels, epochs={epochs}, "
           f"batch_size={rng.choice([16, 32, 64, 128])}, validation_split={rng.randint(1, 3) / 10})",
        8: f"hidden_params = 28 * 28 * {units} + {units}\noutput_params = {units} * 10 + 10\n"
           f"total_params = hidden_params + output_params\nprint(hidden_params, output_params, total_params)",
    }
    for i in rng.sample(sorted(own), rng.randint(1, len(own))):
        cells[i] = own[i]
    return cells


def write_class(folder: Path, size: int, seed: int = 0) -> dict[str, Path]:
    """``size`` notebooks; every 20th copies the one before it, with some names changed."""
    rng = random.Random(seed)
    template = nbformat.read(TEMPLATE, as_version=4)
    slots = [c for c in template.cells if similarity.ANSWER_TAG in c.metadata.get("tags", [])]
    notebooks, previous = {}, []
    for i in range(size):
        name = f"s{i:03d}"
        if i % 20 == 19:
            codes = [code.replace("training_images", "x_train").replace("hidden_params", "h") for code in previous]
        else:
            codes = answers(rng)
        for cell, code in zip(slots, codes):
            cell.source = code
        notebooks[name] = folder / f"{name}.ipynb"
        nbformat.write(template, notebooks[name])
        previous = codes
    return notebooks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--class-size", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        notebooks = write_class(Path(folder), args.class_size)
        start = time.perf_counter()
        pairs = similarity.similar_pairs(notebooks)
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = args.class_size
    print(f"{n} notebooks, {n * (n - 1) // 2} pairs compared: {seconds:.1f} s, peak {peak:.0f} MiB (the whole process), "
          f"{len(pairs)} pair(s) flagged, {sum(1 for p in pairs if p.b == f's{int(p.a[1:]) + 1:03d}' and int(p.b[1:]) % 20 == 19)} of them the copies")
    return 0


if __name__ == "__main__":
    sys.exit(main())
