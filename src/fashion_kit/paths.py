"""Where the kit's files live, relative to the repository root."""

import os
from pathlib import Path

# FASHION_KIT_ROOT lets an installed (non-editable) kit work on a checkout elsewhere.
ROOT = Path(os.environ.get("FASHION_KIT_ROOT", Path(__file__).resolve().parents[2]))
MASTER = ROOT / "assignment" / "fashion_mnist.ipynb"
OTTER_CONFIG = ROOT / "otter_config.json"
CONSTRAINTS = ROOT / "constraints.txt"
AUTOGRADER_ZIP = ROOT / "autograder" / "autograder.zip"
STUDENTS = ROOT / "student"  # the built student notebooks (the starter code), one folder per language
SOLUTIONS = ROOT / "solutions"  # the built answer keys, one folder per language
