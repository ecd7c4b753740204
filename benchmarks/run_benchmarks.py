"""Measure what grading costs on top of the student's own code, and how fast a class grades.

    python benchmarks/run_benchmarks.py            # every figure, median of 3 runs
    python benchmarks/run_benchmarks.py --quick    # 1 run each, smaller batch (a smoke test)

Each figure is the median of several runs, and runs of the things being compared are interleaved
(script, grading, script, grading, ...) so that a noisy neighbour hurts all of them alike. The
table is printed and written to benchmarks/results/latest.md; copy it into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fashion_kit import data, paths  # noqa: E402
from fashion_kit.classroom import resources  # noqa: E402
from fashion_kit.grading import layout, supervise  # noqa: E402

SOLUTION = paths.SOLUTIONS / "en" / "fashion_mnist.ipynb"
console = Console()


class PeakMemory:
    """Polls a process and all its descendants: keeps the peak sum of their resident memory and, at
    the peak, what each process held (its program and module, and its resident bytes); and each
    process's CPU seconds (user and system, its waited-for children's included) as last seen."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.interval, self.peak, self.at_peak = pid, interval, 0, []
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            held = _each_process(self.pid, self.cpu)
            total = sum(rss for _, rss in held)
            if total > self.peak:
                self.peak, self.at_peak = total, held
            self._stop.wait(self.interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def _each_process(pid: int, cpu: dict[int, float]) -> list[tuple[str, int]]:
    """(what it runs, resident bytes) of ``pid`` and each of its descendants; records each one's CPU
    seconds in ``cpu``."""
    held = []
    for p in supervise.tree(pid):  # the tree the grader's own supervisor counts
        try:
            cmdline, rss, times = p.cmdline(), p.memory_info().rss, p.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        cpu[p.pid] = times.user + times.system
        name = Path(cmdline[0]).name if cmdline else p.name()
        if name.startswith("python"):  # a Python program: its module, or its script
            module = next((cmdline[i + 1] for i, w in enumerate(cmdline[:-1]) if w == "-m"), None)
            script = next((w for w in cmdline[1:] if not w.startswith("-")), "")
            name = module or Path(script).name[:30]
        held.append((name, rss))
    return held


@dataclass
class Run:
    """One command's cost: wall seconds, peak resident bytes of its whole tree, CPU seconds (user
    and system) of the whole tree, and what each process held at the peak."""

    seconds: float
    peak: int
    cpu: float
    at_peak: list[tuple[str, int]]


def timed(cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True, inherit: bool = True) -> Run:
    """Run ``cmd`` and measure it. CPU seconds are the sum over the tree's processes as last polled
    (a process's last 0.1 s may be missed): on a shared machine they vary less than wall seconds,
    since the time another tenant takes is nobody's CPU time here. ``env`` is added to this
    process's environment, or is the whole environment when ``inherit`` is false."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env={**(os.environ if inherit else {}), **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meter = PeakMemory(proc.pid)
    code = proc.wait()
    seconds, peak = time.monotonic() - start, meter.stop()
    if check and code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {code}")
    return Run(seconds, peak, sum(meter.cpu.values()), meter.at_peak)


LESSON_SCRIPT = ROOT / "benchmarks" / "lesson_script.py"
# Written to the log by the grading core (grading/core.py): seconds per stage of one grading; and by
# phase 1 (grading/phase1.py): the kernel's start, the kit's cells, the student's, the slowest cells.
STAGES = re.compile(r"^fashion-kit timings: (.*)$", re.MULTILINE)
PHASE1 = re.compile(r"^fashion-kit phase 1: (.*?) slowest: (.*)$", re.MULTILINE)


def grade_once(work: Path) -> tuple[Run, dict[str, float]]:
    """One `fashion-kit run` of the reference solution: its cost and stage times (and, under
    "memory at peak", what each process held at the peak)."""
    out = work / "kit-out"
    cmd = [str(Path(sys.executable).parent / "fashion-kit"), "run", str(SOLUTION), "--output", str(out)]
    run = timed(cmd, work, check=False)
    log = (out / "grading.log").read_text(encoding="utf-8", errors="replace") if (out / "grading.log").is_file() else ""
    if not (out / "results.json").is_file():
        raise RuntimeError(f"grading the reference solution failed:\n{log[-3000:]}")
    found = STAGES.findall(log)
    stages = {k: float(v) for k, v in (part.split("=") for part in found[-1].split())} if found else {}
    if stages:  # fashion-kit run's own start and end, and the autograder's unpacking
        stages["outside the core"] = round(run.seconds - sum(stages.values()), 2)
    inside = PHASE1.findall(log)
    if inside:
        parts, slowest = inside[-1]
        stages.update({f"phase1: {k}": float(v) for k, v in (part.split("=") for part in parts.split())})
        stages["slowest"] = slowest
    stages["memory at peak"] = ", ".join(f"{name} {rss / 2**20:.0f} MB"
                                         for name, rss in sorted(run.at_peak, key=lambda x: -x[1]))
    return run, stages


def bench_single(pairs: int, work: Path) -> dict[str, list]:
    """A warm-up of each, then ``pairs`` alternating pairs: the lesson's script, then one grading."""
    bare = [sys.executable, str(LESSON_SCRIPT)]
    console.log("warm-up: the lesson's script and one grading (disk caches, compiled bytecode)")
    timed(bare, work)
    grade_once(work)
    runs = {"script": [], "kit": [], "stages": []}
    for i in range(pairs):
        console.log(f"pair {i + 1}/{pairs}: the lesson's script")
        runs["script"].append(timed(bare, work))
        console.log(f"pair {i + 1}/{pairs}: fashion-kit run of the reference solution")
        run, stages = grade_once(work)
        runs["kit"].append(run)
        runs["stages"].append(stages)
    return runs


# The yardstick of a class on this machine: the lesson's script once per submission, ``jobs`` at a
# time, each in a folder of its own (one process tree, so its CPU and peak memory are measured whole).
SCRIPTS_AT_ONCE = """\
import subprocess, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
n, jobs, script, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
def one(i):
    folder = work / f"script{i:02d}"
    folder.mkdir(exist_ok=True)
    subprocess.run([sys.executable, script], cwd=folder, check=True, stdout=subprocess.DEVNULL)
with ThreadPoolExecutor(jobs) as pool:
    list(pool.map(one, range(n)))
"""


def bench_batch(n: int, jobs: int, work: Path) -> dict[str, Run]:
    """``fashion-kit grade`` of ``n`` copies of the reference solution at ``jobs`` at once, and the
    lesson's script ``n`` times, ``jobs`` at a time: as a student runs it (TensorFlow's own thread
    pools, one thread per core each) and with the share of the cores the batch gives each grading
    (``classroom/resources.py``); scripts first, then the batch."""
    folder = work / "class"
    folder.mkdir(exist_ok=True)
    for i in range(n):
        shutil.copy(SOLUTION, folder / f"student{i:02d}.ipynb")
    console.log(f"batch: the lesson's script {n} times, {jobs} at a time")
    scripts = timed([sys.executable, "-c", SCRIPTS_AT_ONCE, str(n), str(jobs), str(LESSON_SCRIPT), str(work)], work)
    share = resources.threads_per_grading(jobs)
    console.log(f"batch: the lesson's script {n} times, {jobs} at a time, {share} thread(s) per pool each")
    shared = timed([sys.executable, "-c", SCRIPTS_AT_ONCE, str(n), str(jobs), str(LESSON_SCRIPT), str(work)], work,
                   env=layout.thread_env(share))
    console.log(f"batch: fashion-kit grade of {n} submissions, --jobs {jobs}")
    kit = timed([str(Path(sys.executable).parent / "fashion-kit"), "grade", str(folder), "--jobs", str(jobs),
                 "--output", str(work / "batch-out"), "--force"], work)
    return {"scripts": scripts, "shared": shared, "kit": kit, "share": share}


def bench_build(repeats: int, work: Path) -> list[float]:
    out = []
    for i in range(repeats):
        console.log(f"build {i + 1}/{repeats}")
        root = work / f"build{i}"
        cmd = [sys.executable, "-c",
               "import sys; from pathlib import Path; from fashion_kit import assign; "
               "assign.build(root=Path(sys.argv[1]), verify=False, progress=lambda _: None)", str(root)]
        out.append(timed(cmd, work).seconds)
    return out


def bench_cold_setup(work: Path) -> float:
    """A fresh virtual environment from the pins to the first successful build."""
    console.log("cold setup: fresh venv, pip install, first build")
    venv = work / "cold-venv"
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + ["-c", str(paths.CONSTRAINTS), str(ROOT)], check=True, cwd=work)
    subprocess.run([str(venv / "bin" / "python"), "-c",
                    "import sys; from pathlib import Path; from fashion_kit import assign; "
                    "assign.build(root=Path(sys.argv[1]), verify=False, progress=lambda _: None)",
                    str(work / "cold-build")], check=True, cwd=work,
                   env={**os.environ, "FASHION_KIT_ROOT": str(ROOT)})
    return time.monotonic() - start


def median(values):
    return statistics.median(values)


def spread(ratios: list[float]) -> str:
    """The median of the pairs' ratios and their range: on a shared machine one pair says little."""
    return f"{median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"


def machine() -> str:
    """What the figures were measured on, and how busy it was."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    from importlib.metadata import PackageNotFoundError, version

    tf = "none"
    for name in ("tensorflow", "tensorflow-cpu"):
        try:
            tf = version(name)
        except PackageNotFoundError:
            continue
    bwrap = shutil.which("bwrap")
    bwrap = subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout.strip() if bwrap else "no bwrap"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.node()}: {psutil.cpu_count()} cores ({cpu}), "
            f"{psutil.virtual_memory().total / 1024 ** 3:.0f} GB, {platform.machine()}, Linux {platform.release()}, "
            f"Python {platform.python_version()}, TensorFlow {tf}, {bwrap}; load average {load} at the start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="pairs of (script, grading), after a warm-up")
    parser.add_argument("--single-only", action="store_true", help="only the grading-against-script pairs")
    parser.add_argument("--batch", type=int, default=8, help="submissions in the batch comparison")
    parser.add_argument("--jobs", type=int, default=2, help="gradings (and scripts) at once in the batch comparison")
    parser.add_argument("--quick", action="store_true", help="1 run each, batch of 4, no cold setup")
    parser.add_argument("--skip-cold", action="store_true", help="skip the fresh-venv measurement")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.batch, args.skip_cold = 1, 4, True

    data.ensure()
    if not paths.AUTOGRADER_ZIP.is_file():
        console.print("Build the autograder first: fashion-kit assign")
        return 2

    gb = 1024 ** 3
    rows: list[tuple[str, str, str, str]] = []
    measured_on = f"{machine()}; {args.repeats} alternating pair(s) after a warm-up; {time.strftime('%Y-%m-%d %H:%M')}"
    console.print(f"Measured on {measured_on}")

    def report():
        """Print and write the table so far: a stage that fails later never loses earlier figures."""
        table = Table(title="fashion-kit benchmark")
        for col in ("measure", "time / rate", "peak memory", "target"):
            table.add_column(col)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        md = ["| measure | time / rate | peak memory | target |", "|---|---|---|---|"]
        md += [f"| {' | '.join(r)} |" for r in rows]
        out = ROOT / "benchmarks" / "results"
        out.mkdir(exist_ok=True)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        (out / "latest.md").write_text(f"Measured on {measured_on}; load average {load} at the end\n\n"
                                       + "\n".join(md) + "\n")
        console.print(f"written to {out / 'latest.md'}")

    with tempfile.TemporaryDirectory(prefix="fashion-kit-bench-") as tmp:
        work = Path(tmp)
        single = bench_single(args.repeats, work)
        script, kit = single["script"], single["kit"]
        script_s, kit_s = median([r.seconds for r in script]), median([r.seconds for r in kit])
        script_m, kit_m = median([r.peak for r in script]), median([r.peak for r in kit])
        script_c, kit_c = median([r.cpu for r in script]), median([r.cpu for r in kit])
        # Each ratio is the median of the pairs' own ratios: a pair shares its neighbours' noise.
        wall = spread([k.seconds / b.seconds for b, k in zip(script, kit)])
        memory = spread([k.peak / b.peak for b, k in zip(script, kit)])
        cpu = spread([k.cpu / b.cpu for b, k in zip(script, kit)])
        rows += [
            ("the lesson's code as a plain script (benchmarks/lesson_script.py)",
             f"{script_s:.1f} s ({script_c:.1f} s CPU)", f"{script_m / gb:.2f} GB", ""),
            ("fashion-kit run solutions/en (sandboxed, two phases)", f"{kit_s:.1f} s ({kit_c:.1f} s CPU)",
             f"{kit_m / gb:.2f} GB", ""),
            ("grading / bare (median of the pairs' ratios, their range)", f"{wall} wall, {cpu} CPU", memory,
             "≤ 1.10 wall, ≤ 1.10 CPU, ≤ 1.10 memory"),
            ("ratio of the medians", f"{kit_s / script_s:.2f}× wall, {kit_c / script_c:.2f}× CPU",
             f"{kit_m / script_m:.2f}×", ""),
        ]
        texts = ("slowest", "memory at peak")
        for name in (single["stages"][0] if single["stages"] else {}):
            if name not in texts:
                rows.append((f"  of one grading: {name}", f"{median([st[name] for st in single['stages']]):.2f} s", "", ""))
        for name in texts:
            if single["stages"] and name in single["stages"][-1]:
                rows.append((f"  the last grading's {name}", "", single["stages"][-1][name], ""))
        for i, (b, k) in enumerate(zip(script, kit), 1):
            rows.append((f"  pair {i}: script / grading", f"{b.seconds:.1f} s / {k.seconds:.1f} s wall, "
                         f"{b.cpu:.1f} s / {k.cpu:.1f} s CPU", f"{b.peak / gb:.2f} / {k.peak / gb:.2f} GB", ""))
        report()
        if args.single_only:
            return 0

        batch = bench_batch(args.batch, args.jobs, work)
        scripts, shared, graded = batch["scripts"], batch["shared"], batch["kit"]

        def throughput(run: Run) -> str:
            return f"{run.seconds:.1f} s ({run.cpu:.1f} s CPU), {args.batch / run.seconds * 60:.2f} /min"

        rows += [
            (f"batch of {args.batch}: the lesson's script, {args.jobs} at a time", throughput(scripts),
             f"{scripts.peak / gb:.2f} GB", ""),
            (f"the same, {batch['share']} thread(s) per pool each (the batch's share of the cores)", throughput(shared),
             f"{shared.peak / gb:.2f} GB", ""),
            (f"batch of {args.batch}: fashion-kit grade --jobs {args.jobs}", throughput(graded),
             f"{graded.peak / gb:.2f} GB", ""),
            ("batch / scripts", f"{graded.seconds / scripts.seconds:.2f}× wall, {graded.cpu / scripts.cpu:.2f}× CPU",
             f"{graded.peak / scripts.peak:.2f}×", "≤ 1.10"),
            ("batch / scripts with the same share", f"{graded.seconds / shared.seconds:.2f}× wall, "
             f"{graded.cpu / shared.cpu:.2f}× CPU", f"{graded.peak / shared.peak:.2f}×", ""),
        ]
        report()

        build = bench_build(args.repeats, work)
        rows.append(("build (master → student, solutions, zip)", f"{median(build):.1f} s", "", "≤ 120 s"))
        report()
        if not args.skip_cold:
            rows.append(("cold setup (fresh venv → first build)", f"{bench_cold_setup(work):.0f} s", "", ""))
            report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
