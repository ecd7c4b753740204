"""Whether a submission is to be graded at all: exactly one notebook, for this assignment.

The trusted core decides it from the upload itself, before phase 1 starts: a refusal is the grader's
word, so it never travels through a folder the student's code can write.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import layout

REFUSED_INTRO = "The grader could not grade this submission:"


def find_notebook(submission: Path) -> tuple[Path | None, str | None]:
    """The submission's one notebook, or None and why there is none to grade (Otter's words)."""
    found = sorted(p for p in submission.glob("*.ipynb") if p.is_file() and not p.is_symlink())
    if len(found) == 1:
        return found[0], None
    return None, "More than one .ipynb file found in submission" if found else "No gradable files found in submission"


def wrong_assignment(nb, assignment: str) -> str | None:
    """Otter's check of the notebook's assignment name (its message, which the kit's runner reads)."""
    meta = nb.get("metadata", {}) if isinstance(nb, dict) else {}
    otter = meta.get("otter", {}) if isinstance(meta, dict) else {}
    got = otter.get("assignment_name") if isinstance(otter, dict) else None
    if assignment and got != assignment:
        return f"Received submission for assignment '{got}' (this is assignment '{assignment}')"
    return None


def refusal(submission: Path, assignment: str, scratch: Path, max_bytes: int) -> str | None:
    """Why the submission in ``submission`` is not graded, as results.json says it, or None."""
    path, why = find_notebook(submission)
    if path is not None:
        target = scratch / ".admission.ipynb"
        problem = layout.copy_untrusted(submission, path.name, target, max_bytes)
        try:
            nb = json.loads(target.read_bytes().decode("utf-8-sig")) if problem is None else None
        except (ValueError, RecursionError):
            nb = None
        finally:
            target.unlink(missing_ok=True)
        why = f"The notebook could not be read as JSON ({problem or 'not a notebook'})" if nb is None else (
            wrong_assignment(nb, assignment))
    return f"{REFUSED_INTRO}\n\n{why}" if why else None
