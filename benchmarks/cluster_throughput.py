"""How fast does a class grade on a Dask cluster, and what does the cluster path cost per submission?

Two measurements, each printed as a table:

* **Throughput**: the same class graded by the local pool (``--jobs``, default 2) and by 2 and 4
  `dask worker` processes on the loopback (one thread each, separate processes, a real `dask
  scheduler`), submissions per minute. By default each "grading" is a stand-in that burns ``--work``
  CPU seconds in each of two child processes, as a real grading's training fills two cores; ``--real``
  grades copies of the reference solution with the real grader and sandbox instead (about a minute
  each). On one machine more workers cannot beat the local pool: they share the same cores.
* **Overhead**: a grader that does nothing, through the local pool and through one loopback worker;
  the difference per submission is what the cluster path adds (sending the files with the task,
  scheduling, the result back, storing it), and the start-up (connecting, the kit on the workers) is
  printed apart.

    python benchmarks/cluster_throughput.py [--submissions 8] [--work 10] [--workers 2 4] [--real]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fashion_kit import contract, paths, run, settings as settings_module
from fashion_kit.classroom import batch, cluster, cluster_tls

contract.skip_slow_optional_modules()
DASK = Path(sys.executable).parent / "dask"
BURN = "import sys, time\nend = time.process_time() + float(sys.argv[1])\nwhile time.process_time() < end:\n    pass\n"


def null_grader(notebook, autograder_zip, output_folder, *, settings, sandbox, extra_files, env, cancel):
    """Grades nothing: every question gets its point at once."""
    return run.Outcome(str(notebook), "graded", scores={"q1": (1.0, 1.0)}, sandbox="none")


def busy_grader(seconds: float):
    """A stand-in grading that costs ``seconds`` of CPU in each of two child processes (two cores'
    worth), so gradings that share cores take longer, as real ones do."""
    def grade(notebook, autograder_zip, output_folder, *, settings, sandbox, extra_files, env, cancel):
        procs = [subprocess.Popen([sys.executable, "-c", BURN, str(seconds)]) for _ in range(2)]
        for p in procs:
            p.wait()
        return run.Outcome(str(notebook), "graded", scores={"q1": (1.0, 1.0)}, sandbox="none")

    return grade


def fake_zip(path: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("otter_config.json", json.dumps({"fashion_kit": {}}))
        zf.writestr("tests/q1.py", 'name = "q1"\npoints = 1\n')  # what the batch reads of a test: its name and points
    return path


class Loopback:
    """A `dask scheduler` and ``n`` `dask worker` processes on 127.0.0.1, over TLS as the kit requires."""

    def __init__(self, work: Path, n: int):
        self.work, self.procs = work, []
        work.mkdir(parents=True, exist_ok=True)
        creds = cluster_tls.make(work / "tls")
        self.config = creds.ca_file.parent / cluster_tls.CONFIG_FILE
        tls = ["--tls-ca-file", str(creds.ca_file), "--tls-cert", str(creds.cert), "--tls-key", str(creds.key)]
        env = dict(os.environ)
        file = work / "scheduler.json"
        self.procs.append(subprocess.Popen([str(DASK), "scheduler", "--protocol", "tls", "--host", "127.0.0.1",
                                            "--port", "0", *tls, "--no-dashboard", "--scheduler-file", str(file)], env=env,
                                           start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.address = None
        while self.address is None:
            if self.procs[0].poll() is not None:
                raise SystemExit("the dask scheduler did not start; run `dask scheduler` by hand to see why")
            time.sleep(0.1)
            try:  # the scheduler may be half-way through writing it
                self.address = json.loads(file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                pass
        for i in range(n):
            self.procs.append(subprocess.Popen(
                [str(DASK), "worker", self.address, *tls, "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard",
                 "--local-directory", str(work / f"w{i}")], env=env, start_new_session=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(self.address, security=creds.security()) as client:
            client.wait_for_workers(n, timeout=300)

    def close(self) -> None:
        for p in self.procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def make_class(folder: Path, n: int, notebook: Path | None) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        if notebook is not None:
            shutil.copy(notebook, folder / f"student{i:02d}.ipynb")
        else:
            (folder / f"student{i:02d}.ipynb").write_text(json.dumps(
                {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")


def grade(work: Path, label: str, source: Path, zip_path: Path, grade_fn, *, jobs=None, workers=0,
          sandbox="none") -> dict:
    """One batch from scratch; wall time, and the cluster's start-up apart."""
    out = work / f"out-{label}"
    settings = settings_module.from_zip(zip_path)
    if not workers:
        started = time.monotonic()
        result = batch.grade_class(source, out, zip_path, grade_fn=grade_fn, settings=settings, sandbox=sandbox,
                                   jobs=jobs, use_watchdog=grade_fn is None)
        return check(result, time.monotonic() - started, 0.0, label)
    lc = Loopback(work / f"cluster-{label}", workers)
    try:
        stop, t0 = threading.Event(), time.monotonic()
        with cluster.session(lc.address, lc.config, zip_path, settings, sandbox, stop, grade_fn=grade_fn) as remote:
            startup, started = time.monotonic() - t0, time.monotonic()
            result = batch.grade_class(source, out, zip_path, grade_fn=remote, settings=settings, sandbox=sandbox,
                                       jobs=jobs or remote.in_flight(), stop=stop, use_watchdog=False)
            wall = time.monotonic() - started
    finally:
        lc.close()
    return check(result, wall, startup, label)


def check(result, wall: float, startup: float, label: str) -> dict:
    bad = [r for r in result.records if r.status != "graded"]
    if bad:
        raise SystemExit(f"{label}: {len(bad)} submissions were not graded: {bad[0].status} {bad[0].message}")
    return {"wall": wall, "startup": startup, "n": len(result.records)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=8, help="submissions per throughput batch")
    parser.add_argument("--work", type=float, default=10.0, help="CPU seconds on each of two cores per stand-in grading")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--jobs", type=int, default=2, help="the local pool's --jobs")
    parser.add_argument("--overhead-submissions", type=int, default=40)
    parser.add_argument("--real", action="store_true", help="grade the reference solution for real (slow)")
    args = parser.parse_args()
    console = Console()
    console.print(f"{os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}")
    work = Path(tempfile.mkdtemp(prefix="fashion-kit-cluster-bench-"))
    try:
        if args.real:
            zip_path, grade_fn, notebook, sandbox = paths.AUTOGRADER_ZIP, None, paths.SOLUTIONS / "en" / contract.NOTEBOOK, "auto"
        else:  # the stand-in graders travel to the workers by value (cloudpickle)
            zip_path, grade_fn, notebook, sandbox = fake_zip(work / "ag.zip"), busy_grader(args.work), None, "none"
        make_class(work / "class", args.submissions, notebook)
        table = Table("where", "submissions", "wall s", "per min", "start-up s")
        runs = [("local pool", 0)] + [(f"{n} loopback workers", n) for n in args.workers]
        for label, n in runs:
            r = grade(work, label.replace(" ", "-"), work / "class", zip_path, grade_fn, jobs=args.jobs if not n else None,
                      workers=n, sandbox=sandbox)
            table.add_row(label, str(r["n"]), f"{r['wall']:.1f}", f"{r['n'] / r['wall'] * 60:.1f}", f"{r['startup']:.1f}")
            console.print(table)

        make_class(work / "tiny", args.overhead_submissions, None)
        zip_path = fake_zip(work / "null.zip")
        local = grade(work, "null-local", work / "tiny", zip_path, null_grader, jobs=1)
        remote = grade(work, "null-cluster", work / "tiny", zip_path, null_grader, jobs=1, workers=1)
        n = args.overhead_submissions
        overhead = Table("grader that does nothing", "submissions", "wall s", "s each", "start-up s")
        overhead.add_row("local pool, 1 at a time", str(n), f"{local['wall']:.2f}", f"{local['wall'] / n:.3f}", "-")
        overhead.add_row("1 loopback worker, 1 at a time", str(n), f"{remote['wall']:.2f}", f"{remote['wall'] / n:.3f}",
                         f"{remote['startup']:.1f}")
        console.print(overhead)
        console.print(f"cluster overhead per submission: {(remote['wall'] - local['wall']) / n:.3f} s "
                      f"(target at most 2 s); once per batch: {remote['startup']:.1f} s")
        console.print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
