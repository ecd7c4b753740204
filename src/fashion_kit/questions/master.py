"""The master notebook, composed: the lesson's hand-written narrative with each question's block.

``assignment/lesson.ipynb`` is the lesson as its authors write it, with one raw cell
``# QUESTION <name>`` where each graded question goes. Each question's block comes from its folder
(:mod:`.layout`), written in Otter Assign's format: ``# BEGIN QUESTION`` with the name, the points and
Otter's other settings, the text in each language (markdown cells tagged ``lang:zh-TW`` and
``lang:en``), the solution between ``# BEGIN SOLUTION`` and ``# END SOLUTION``, the public test
between ``# BEGIN TESTS`` and ``# END TESTS``, then ``# END QUESTION``. A question the lesson has no
place for goes after the last one that has. The result is the master Otter reads,
``assignment/fashion_mnist.ipynb``: built, committed, and proven by a test to match.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat

from .. import notebooks
from ..errors import KitError
from . import QUESTIONS, Question, layout

PLACEHOLDER = re.compile(r"^\s*#\s*QUESTION\s+(?P<name>\S+)\s*$")
LANG_TAG = "lang:{language}"


class BadLesson(KitError, ValueError):
    """The lesson names a question no folder holds, or names one twice."""


def _text(folder, name: str) -> str | None:
    """A file of the question's folder, without the one newline that ends a file; None when absent."""
    path = folder / name
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    return text[:-1] if text.endswith("\n") else text


def _settings_line(key: str, value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{key}: {json.dumps(value, ensure_ascii=False)}"


def block(question: Question, languages=("zh-TW", "en")) -> list:
    """The question's cells in Otter Assign's format, from its folder."""
    folder = question.folder
    header = ["# BEGIN QUESTION", f"name: {question.name}", _settings_line("points", question.points)]
    header += [_settings_line(k, v) for k, v in question.otter.items()]
    cells = [nbformat.v4.new_raw_cell("\n".join(header))]
    for language in languages:
        prompt = _text(folder, layout.PROMPT_FILE.format(language=language))
        if prompt is None:
            raise BadLesson(f"{folder / layout.PROMPT_FILE.format(language=language)} is missing: every "
                            f"question needs its text in {', '.join(languages)}.")
        cells.append(nbformat.v4.new_markdown_cell(prompt, metadata={"tags": [LANG_TAG.format(language=language)]}))
    solution = _text(folder, layout.SOLUTION_FILE)
    if solution is not None:
        cells += [nbformat.v4.new_raw_cell("# BEGIN SOLUTION"), nbformat.v4.new_code_cell(solution),
                  nbformat.v4.new_raw_cell("# END SOLUTION")]
    test = _text(folder, layout.TEST_FILE)
    if test is None:
        raise BadLesson(f"{folder / layout.TEST_FILE} is missing: every question needs its public test.")
    cells += [nbformat.v4.new_raw_cell("# BEGIN TESTS"), nbformat.v4.new_code_cell(test),
              nbformat.v4.new_raw_cell("# END TESTS"), nbformat.v4.new_raw_cell("# END QUESTION")]
    for i, cell in enumerate(cells):
        cell["id"] = f"{question.name.replace('_', '-')}-{i}"
    return cells


def placeholder(cell) -> str | None:
    """The question a cell of the lesson stands for, or None."""
    match = PLACEHOLDER.match(cell.source) if cell.cell_type == "raw" else None
    return match["name"] if match else None


def compose(lesson, questions: tuple[Question, ...] = QUESTIONS):
    """The master: ``lesson`` with each placeholder replaced by its question's block, and the
    questions it has no placeholder for after the last question."""
    by_name = {q.name: q for q in questions}
    named = [placeholder(c) for c in lesson.cells]
    unknown = [n for n in named if n and n not in by_name]
    twice = sorted({n for n in named if n and named.count(n) > 1})
    if unknown or twice:
        raise BadLesson(f"The lesson's `# QUESTION <name>` cells must each name one question folder once; found "
                        f"{', '.join(unknown) or 'no unknown name'} unknown and {', '.join(twice) or 'none'} "
                        f"twice. The folders: {', '.join(by_name)}.")
    master = nbformat.from_dict(json.loads(json.dumps(lesson)))
    cells, last = [], 0
    for cell, name in zip(lesson.cells, named):
        if name:
            cells += block(by_name[name])
            last = len(cells)
        else:
            cells.append(cell)
    cells[last:last] = [cell for q in questions if q.name not in named for cell in block(q)]
    master.cells = cells
    return master


def text(lesson_path: Path) -> str:
    """The master composed from the lesson at ``lesson_path``, as the file holds it."""
    return notebooks.dumps(compose(notebooks.read(lesson_path)))


def write(lesson_path: Path, master_path: Path) -> bool:
    """Compose the master from the lesson at ``lesson_path`` and write it to ``master_path`` when it
    changed; True when it did."""
    text_now = text(lesson_path)
    master_path = Path(master_path)
    if master_path.is_file() and master_path.read_text(encoding="utf-8") == text_now:
        return False
    master_path.write_text(text_now, encoding="utf-8", newline="\n")
    return True
