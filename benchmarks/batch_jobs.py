"""How many submissions to grade at once (``fashion-kit grade --jobs``)? Measure it.

The same batch (copies of the reference solution, which trains) is graded with each ``--jobs``
value, from scratch each time. Printed per value: wall time, throughput, the CPU seconds one grading
costs, how many cores were busy on average, and the peak resident memory of one grading's process
tree (columns: wall s, per min = submissions per minute, s each = one grading's wall time, CPU s each,
cores busy, peak MB). Run it on an otherwise idle machine: other work on the machine makes every figure worse.

    python benchmarks/batch_jobs.py [--jobs 1 2 3] [--submissions 4] [--notebook solutions/en/fashion_mnist.ipynb]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fashion_kit import paths
from fashion_kit.classroom import batch


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every grading process, once it has ended
    return usage.ru_utime + usage.ru_stime


def run(jobs: int, notebook: Path, n: int, work: Path) -> dict:
    source, out = work / f"class-{jobs}", work / f"out-{jobs}"
    source.mkdir()
    for i in range(n):
        shutil.copy(notebook, source / f"student{i:02d}.ipynb")
    cpu, started = children_cpu(), time.monotonic()
    result = batch.grade_class(source, out, jobs=jobs)
    wall, cpu = time.monotonic() - started, children_cpu() - cpu
    bad = [r for r in result.records if r.status != "graded"]
    if bad:
        raise SystemExit(f"jobs={jobs}: {len(bad)} submissions were not graded: {bad[0].status} {bad[0].message}")
    return {
        "wall": wall, "per_min": n / wall * 60, "cpu_each": cpu / n, "cores": cpu / wall,
        "peak_mb": max(r.peak_memory_mb for r in result.records),
        "each": sum(r.seconds for r in result.records) / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--submissions", type=int, default=4, help="copies of the notebook per batch")
    parser.add_argument("--notebook", type=Path, default=paths.SOLUTIONS / "en" / "fashion_mnist.ipynb")
    args = parser.parse_args()
    console = Console()
    console.print(f"{os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}")
    table = Table("jobs", "wall s", "per min", "s each", "CPU s each", "cores busy", "peak MB")
    with tempfile.TemporaryDirectory(prefix="batch-jobs-") as tmp:
        for jobs in args.jobs:
            console.log(f"--jobs {jobs}: grading {args.submissions} submissions")
            m = run(jobs, args.notebook, args.submissions, Path(tmp))
            table.add_row(str(jobs), f"{m['wall']:.0f}", f"{m['per_min']:.2f}", f"{m['each']:.0f}",
                          f"{m['cpu_each']:.0f}", f"{m['cores']:.2f}", f"{m['peak_mb']:.0f}")
    console.print(table)
    console.print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
