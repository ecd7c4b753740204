"""The one call the batch makes to grade a notebook, and where it comes from.

The batch calls, with keyword arguments only::

    grade_fn(notebook, autograder_zip, output_folder, settings=..., sandbox="auto" | "none",
             extra_files=[...], env={...}, cancel=threading.Event) -> run.Outcome

and the function is passed in (``grade_class(..., grade_fn=...)``), so tests use a fake one.
:func:`grade_function` returns ``run.grade`` when it takes that call, and otherwise adapts the
grader that takes its limits as ``timeout``/``memory_limit_mb`` (it has no sandbox and no extra files).
"""

from __future__ import annotations

import inspect


def grade_function():
    from .. import run

    if "settings" in inspect.signature(run.grade).parameters:
        return run.grade
    return _limits_grader(run.grade)


def _limits_grader(grade):
    def call(notebook, autograder_zip, output_folder, *, settings, sandbox, extra_files, env, cancel):
        outcome = grade(notebook, autograder_zip, output_folder, timeout=settings.timeout_seconds, env=env,
                        memory_limit_mb=settings.memory_limit_mb, cancel=cancel)
        outcome.sandbox = "none"  # this grader runs the notebook without a sandbox, whatever was asked
        return outcome

    call.takes_extra_files = False
    return call
