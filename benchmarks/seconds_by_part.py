"""What each part of a grading costs: the lesson from the plain script to the whole grading, a step at a time.

    python benchmarks/seconds_by_part.py [--rounds 2] [--only script kernel ...]

Each round runs every variant once, in the order below, so a noisy neighbour slows a whole round
alike; each variant's figure is its median over the rounds, and its ratio to the script the median
of the rounds' own ratios. Wall seconds, CPU seconds and peak resident memory are of the whole
process tree (run_benchmarks.timed).

* ``script``: the lesson's code as a plain script (lesson_script.py);
* ``kernel``: the reference solution run in a kernel by nbclient, as phase 1 runs it (no output kept,
  Unix sockets), with only the stand-in for Otter (grading_mode), so its checks cost nothing;
* ``kernel+seeding``: and the seeding cell (seeds, Keras quiet, ``verbose=0``);
* ``kernel+evidence``: and, instead of the seeding cell, the evidence cells (the fit recorder and each
  question's values and snapshots);
* ``kit``: phase 1's own program (every kit cell: the ones above, the challenge's, the checkpoints),
  no sandbox;
* ``kit+seccomp``: the same behind the seccomp filter only;
* ``kit+bubblewrap``: the same in bubblewrap, behind the seccomp filter, as grading runs it;
* ``fashion-kit run``: the whole grading (the core, the sandbox, phase 1, phase 2's measurement).

The table is printed and written to benchmarks/results/seconds-by-part.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from run_benchmarks import LESSON_SCRIPT, SOLUTION, grade_once, machine, timed  # noqa: E402

from fashion_kit import contract as c, data  # noqa: E402
from fashion_kit.grading import layout, sandbox, seccomp  # noqa: E402
from fashion_kit.settings import Settings  # noqa: E402

console = Console()
SEED = Settings().seed
KERNEL_WITH_PARTS = ROOT / "benchmarks" / "kernel_with_parts.py"
# The kit's cells a kernel variant inserts (phase 1's program inserts them all).
PARTS = {"kernel": (), "kernel+seeding": ("seeding",), "kernel+evidence": ("evidence",)}
VARIANTS = ("script", *PARTS, "kit", "kit+seccomp", "kit+bubblewrap", "fashion-kit run")


def work_folder(tmp: Path, name: str, dataset: Path) -> Path:
    """A work folder as the grading core makes one: the submission, the evidence folder, a home with
    the data set in its Keras cache."""
    source, submission, work = tmp / f"{name}-source", tmp / f"{name}-submission", tmp / name
    (source / c.DATA_DIR).mkdir(parents=True)
    for file in data.FILES:
        shutil.copyfile(dataset / file, source / c.DATA_DIR / file)
    submission.mkdir()
    shutil.copyfile(SOLUTION, submission / c.NOTEBOOK)
    layout.make_work_folder(work, source, submission)
    work.chmod(0o755)
    return work


def one(variant: str, tmp: Path, box: sandbox.Bubblewrap, dataset: Path):
    python = Path(sys.executable)
    if variant == "script":
        return timed([str(python), str(LESSON_SCRIPT)], tmp)
    if variant == "fashion-kit run":
        return grade_once(tmp)[0]
    work = work_folder(tmp, f"work-{time.monotonic_ns()}", dataset)
    env = layout.phase1_env(work, python)
    if variant in PARTS:
        argv = [str(python), "-I", str(KERNEL_WITH_PARTS), str(work), str(SEED), *PARTS[variant]]
    else:
        argv = [str(python), "-I", "-m", "fashion_kit.grading.phase1", str(work), str(SEED)]
    if variant == "kit+seccomp":
        argv = seccomp.command(argv)
    if variant == "kit+bubblewrap":
        box.prepare(work)
        argv = box.command(argv, work=work, env=env)
    try:
        return timed(argv, work, env=env, inherit=False)
    finally:
        box.kill_all()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every variant, after a warm-up of the script")
    parser.add_argument("--only", nargs="+", choices=VARIANTS, help="these variants only (the script always)")
    args = parser.parse_args()
    dataset = data.ensure()
    variants = [v for v in VARIANTS if v == "script" or not args.only or v in args.only]
    measured_on = f"{machine()}; {args.rounds} round(s); {time.strftime('%Y-%m-%d %H:%M')}"
    console.print(f"Measured on {measured_on}")
    runs: dict[str, list] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="fashion-kit-parts-") as name:
        tmp = Path(name)
        tmp.chmod(0o755)
        box = sandbox.Bubblewrap(Settings())
        console.log("warm-up: the lesson's script (disk caches, compiled bytecode)")
        timed([sys.executable, str(LESSON_SCRIPT)], tmp)
        for r in range(args.rounds):
            for variant in variants:
                console.log(f"round {r + 1}/{args.rounds}: {variant}")
                runs[variant].append(one(variant, tmp, box, dataset))
    gb = 1024 ** 3
    table = Table(title="seconds by part")
    header = ("variant", "wall s", "CPU s", "peak GB", "/ script wall", "/ script CPU", "each round: wall / CPU s")
    for col in header:
        table.add_column(col)
    rows = []
    for variant, found in runs.items():
        base = runs["script"]
        rows.append((
            variant, f"{statistics.median(x.seconds for x in found):.1f}", f"{statistics.median(x.cpu for x in found):.1f}",
            f"{statistics.median(x.peak for x in found) / gb:.2f}",
            f"{statistics.median(x.seconds / b.seconds for x, b in zip(found, base)):.2f}×",
            f"{statistics.median(x.cpu / b.cpu for x, b in zip(found, base)):.2f}×",
            ", ".join(f"{x.seconds:.1f} / {x.cpu:.1f}" for x in found)))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    md = [f"| {' | '.join(header)} |", "|" + "---|" * len(header)] + [f"| {' | '.join(row)} |" for row in rows]
    (out / "seconds-by-part.md").write_text(f"Measured on {measured_on}; load average {load} at the end\n\n"
                                            + "\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
