"""One variant of seconds_by_part.py, in its own process: the notebook of a work folder run as phase 1
runs it (nbclient, a kernel on Unix sockets, no output kept), with the stand-in for Otter and only the
kit's cells named.

    python -I benchmarks/kernel_with_parts.py WORK SEED [seeding] [evidence]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from fashion_kit import contract as c
from fashion_kit.grading import phase1
from fashion_kit.grading.cells import evidence, grading_mode, seeding

PARTS = ("seeding", "evidence")


def main(work: str, seed: str, *parts: str) -> int:
    c.skip_slow_optional_modules()  # as phase 1's program does
    folder = Path(work)
    nb = nbformat.read(folder / c.WORK_SUBMISSION / c.NOTEBOOK, as_version=4)
    if "seeding" in parts:
        seeding.apply(nb, int(seed))
    if "evidence" in parts:
        evidence.apply(nb, folder / c.EVIDENCE_DIR)
    grading_mode.enter(nb)
    timings = phase1.Timings()
    phase1.execute(nb, folder / c.WORK_SUBMISSION, folder / c.WORK_HOME, timings)
    print(timings.line(), flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", help="a work folder as the grading core makes one")
    parser.add_argument("seed", help="the grading's seed")
    parser.add_argument("parts", nargs="*", help=f"the kit's cells to insert: any of {', '.join(PARTS)}")
    args = parser.parse_args()
    if set(args.parts) - set(PARTS):
        parser.error(f"unknown parts {sorted(set(args.parts) - set(PARTS))}; known: {', '.join(PARTS)}")
    sys.exit(main(args.work, args.seed, *args.parts))
