"""The kit's words for how a grading ended, each with one meaning, declared once.

A run that ends before it finishes ends for one reason, a :class:`Stop`: the supervisor reports it,
the grading core passes it on, and results.json carries it as ``extra_data.fashion_kit_stopped``. A
submission ends in the gradebook with one :class:`Status`. Each test of results.json passed or failed,
a :class:`CheckStatus` (Gradescope's words). All are strings, so they are written to JSON and CSV as
they are and compare equal to the words read back.
"""

from __future__ import annotations

from enum import StrEnum


class Stop(StrEnum):
    """Why a run ended before it finished."""

    TIMEOUT = "timeout"  # the time limit (timeout_seconds)
    MEMORY_LIMIT = "memory-limit"  # stopped by the supervisor at the memory limit (memory_limit_mb)
    KERNEL_DIED = "kernel-died"  # the notebook's kernel died: on Gradescope almost always the out-of-memory killer
    PROCESSES = "processes"  # more processes and threads than max_processes
    DISK = "disk"  # more written to the work folder than max_work_folder_mb
    INTERRUPTED = "interrupted"  # cancelled: Ctrl-C, or the batch stopping
    ERROR = "error"  # the autograder itself failed


class Status(StrEnum):
    """What became of one submission, as the gradebook says it."""

    GRADED = "graded"  # it has scores (a run stopped part-way keeps the questions checked before)
    INVALID = "invalid"  # no notebook could be read from the upload
    WRONG_ASSIGNMENT = "wrong-assignment"  # a notebook made for another assignment
    TIMEOUT = "timeout"  # the whole grading ran out of time and left no results
    MEMORY = "memory"  # the whole grading was stopped at its memory limit
    ERROR = "error"  # the grading failed: the kernel died before any result, or the autograder broke
    IGNORED = "ignored"  # not a submission (a README beside them): listed, nobody's grade
    INTERRUPTED = "interrupted"  # cancelled before it finished: never recorded, graded on the next run


class CheckStatus(StrEnum):
    """Gradescope's status of one test in results.json: a question's score or its notebook check."""

    PASSED = "passed"
    FAILED = "failed"


# The statuses a gradebook row can have.
RECORDED = tuple(status for status in Status if status is not Status.INTERRUPTED)
# Statuses a re-run with --retry-failed grades again: they may pass with more time, memory or luck.
RETRYABLE = frozenset({Status.TIMEOUT, Status.MEMORY, Status.ERROR})
# Statuses that are not a failure to grade.
NOT_FAILED = frozenset({Status.GRADED, Status.IGNORED})
# The gradebook's status of a run stopped part-way, for each stop (the scores it has are kept).
STATUS_OF_STOP = {
    Stop.TIMEOUT: Status.TIMEOUT, Stop.MEMORY_LIMIT: Status.MEMORY, Stop.KERNEL_DIED: Status.ERROR,
    Stop.PROCESSES: Status.ERROR, Stop.DISK: Status.ERROR, Stop.ERROR: Status.ERROR,
    Stop.INTERRUPTED: Status.INTERRUPTED,
}
