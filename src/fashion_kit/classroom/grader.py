"""The one call the batch makes to grade a notebook, and where it comes from.

The batch calls, with keyword arguments only::

    grade_fn(notebook, autograder_zip, output_folder, settings=..., sandbox="auto" | "none",
             extra_files=[...], env={...}, cancel=threading.Event) -> run.Outcome

The function is passed in (``grade_class(..., grade_fn=...)``) or found here, so tests replace it
with a fake one.
"""

from __future__ import annotations


def grade_function():
    from .. import run

    return run.grade
