"""Where the kit's files live, relative to the repository root."""

import os
from pathlib import Path

from .contract import AUTOGRADER_ZIP_NAME, NOTEBOOK, OTTER_CONFIG_FILE

# FASHION_KIT_ROOT lets an installed (non-editable) kit work on a checkout elsewhere.
ROOT = Path(os.environ.get("FASHION_KIT_ROOT", Path(__file__).resolve().parents[2]))
# The lesson as its authors write it; the master Otter reads is built from it and the questions' folders.
LESSON = ROOT / "assignment" / "lesson.ipynb"
MASTER = ROOT / "assignment" / NOTEBOOK
OTTER_CONFIG = ROOT / OTTER_CONFIG_FILE
CONSTRAINTS = ROOT / "constraints.txt"
README = ROOT / "README.md"
AUTOGRADER_ZIP = ROOT / "autograder" / AUTOGRADER_ZIP_NAME
STUDENTS = ROOT / "student"  # the built student notebooks (the starter code), one folder per language
SOLUTIONS = ROOT / "solutions"  # the built answer keys, one folder per language
