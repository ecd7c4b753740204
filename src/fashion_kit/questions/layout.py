"""Where a question's files are: one folder per question in this package, named after the question.

A folder ``q<number>_<what>/`` (``q4_model``) is a question; the registry takes them in their
numbers' order. What a folder holds:

* ``question.toml``: its points (and Otter's other question settings, such as ``all_or_nothing``),
  whether its grade needs the ``model`` snapshot, and what its check looks at, in both languages;
* ``prompt.zh-TW.md`` and ``prompt.en.md``: the question's text in each language;
* ``solution.py``: the reference answer in Otter's solution markup (none when the grader measures
  the question itself);
* ``test.py``: the public test, whose ``CHECK(...)`` line the build replaces with the check's code;
* ``check.py``: ``collect_<name>`` and ``check_<name>``, self-contained but for the helpers of
  :mod:`fashion_kit.checks`;
* ``catalogue.json`` (optional): the question's fair variants and mistakes, which the catalogue
  (tests/grading/test_catalogue.py) grades, with the points each must lose;
* ``mistakes.json`` (optional): beginners' mistakes, with what the notebook's check and the grade
  must both say of them (tests/test_mistakes.py).

The last two are the tests' data: they stay in the repository and ship in no wheel or zip.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..contract import natural_key

FOLDER = Path(__file__).resolve().parent
NAME = re.compile(r"^q\d+_\w+$")
QUESTION_FILE = "question.toml"
CHECK_FILE = "check.py"
PROMPT_FILE = "prompt.{language}.md"
SOLUTION_FILE = "solution.py"
TEST_FILE = "test.py"
CATALOGUE_FILE = "catalogue.json"
MISTAKES_FILE = "mistakes.json"
# The tests' own data: read from the repository by the tests, never shipped (not in the kit's wheel,
# the autograder zip or an instructor's install).
TEST_DATA_FILES = (CATALOGUE_FILE, MISTAKES_FILE)


def folders(parent: Path = FOLDER) -> list[Path]:
    """Every question's folder in ``parent``, in the questions' order (q2 before q10)."""
    found = [p for p in parent.iterdir() if NAME.match(p.name) and (p / QUESTION_FILE).is_file()]
    return sorted(found, key=lambda p: natural_key(p.name))
