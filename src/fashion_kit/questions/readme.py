"""The README's table of the questions, written from the folders (``fashion-kit assign`` keeps it so).

The table sits between two comment lines of the README; everything around it is hand-written.
"""

from __future__ import annotations

from pathlib import Path

from . import QUESTIONS, TOTAL, Question

BEGIN = "<!-- the questions: written by fashion-kit assign from src/fashion_kit/questions/ -->"
END = "<!-- end of the questions -->"


def _points(value: float) -> str:
    return f"{value:g}"


def table(questions: tuple[Question, ...] = QUESTIONS, total: float = TOTAL) -> str:
    """The questions as a Markdown table: name, what the grader checks, points, and the total."""
    rows = ["| question | what the grader checks | points |", "|---|---|---|"]
    rows += [f"| {q.name} | {q.describe('en')} | {_points(q.points)} |" for q in questions]
    rows.append(f"| **total** | | **{_points(total)}** |")
    return "\n".join(rows)


def with_table(readme: Path) -> str:
    """The README's text with :func:`table` between its two comment lines."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{readme} has no place for the questions' table: expected the lines {BEGIN!r} and {END!r}")
    return f"{text[:start]}{BEGIN}\n{table()}\n{text[end:]}"


def write(readme: Path) -> bool:
    """Put :func:`table` between the README's two comment lines when it changed; True when it did."""
    updated = with_table(readme)
    if updated == readme.read_text(encoding="utf-8"):
        return False
    readme.write_text(updated, encoding="utf-8", newline="\n")
    return True
