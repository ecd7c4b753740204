"""Gradescope's entry point for this autograder (also used, unchanged, by local grading).

Before Otter runs the notebook, the Fashion-MNIST files bundled in this zip are put into the Keras
cache, so ``load_data()`` in the student's notebook never touches the network.
"""

import json
import os
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent
sys.path.insert(0, str(SOURCE))

import fashion_kit_data  # noqa: E402  (bundled copy of fashion_kit/data.py)
import postgrade  # noqa: E402  (accuracy graded outside the student's kernel)


def settings() -> dict:
    """The kit's grading settings: the ``fashion_kit`` section of the zip's otter_config.json."""
    return json.loads((SOURCE / "otter_config.json").read_text(encoding="utf-8"))["fashion_kit"]


def grade(autograder_dir: str) -> None:
    """Run Otter's autograder on the submission; it writes results/results.json."""
    from otter.run.run_autograder import main as run_autograder

    run_autograder(autograder_dir)


def main(autograder_dir: str) -> None:
    fashion_kit_data.install(SOURCE / "data" / "fashion-mnist")
    grade(autograder_dir)
    postgrade.main(autograder_dir)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AUTOGRADER_DIR", "/autograder"))
