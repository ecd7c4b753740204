"""How many submissions this machine can grade at once: the default of ``fashion-kit grade --jobs``.

One grading keeps less than one core busy on average (starting Python, TensorFlow and the kernel is
serial; only training uses several cores), so one grading per core fills the processors. Each grading
also holds its own TensorFlow process tree in memory, so the count is capped by the memory available
now, divided by what one grading needs.
"""

from __future__ import annotations

import os

# Peak resident memory of one grading's whole process tree (the command, the grading core, Otter, the
# notebook's kernel, the evaluator), grading the reference solution: 1.69 GB, the median measured by
# benchmarks/run_benchmarks.py and recorded in benchmarks/README.md ("Latest figures").
GRADING_PEAK_MB = 1690
# Room above that peak for students' variations (a bigger layer, a larger batch), so a full machine
# does not start swapping when a few notebooks need more than the reference.
HEADROOM = 1.3


def usable_cores() -> int:
    """The cores this process may use, not all the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def threads_per_grading(jobs: int, cores: int | None = None) -> int:
    """Each grading's share of the cores when ``jobs`` run at once: the size of its thread pools."""
    return max(1, (cores or usable_cores()) // max(1, jobs))


def default_jobs(cores: int | None = None, available_mb: float | None = None) -> int:
    """Submissions to grade at once: one per core, as many as the available memory holds, at least 1."""
    if cores is None:
        cores = usable_cores()
    if available_mb is None:
        import psutil

        available_mb = psutil.virtual_memory().available / 2**20
    by_memory = int(available_mb // (GRADING_PEAK_MB * HEADROOM))
    return max(1, min(cores, by_memory))
