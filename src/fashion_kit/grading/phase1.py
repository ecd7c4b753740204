"""Phase 1, untrusted: run Otter on the notebook. This program runs inside the sandbox.

``python -I -m fashion_kit.grading.phase1 WORK SEED`` grades ``WORK/submission/`` with Otter, the way
Gradescope would (``WORK`` mirrors Gradescope's ``/autograder`` layout), with the kit's plugins in
front. Everything it writes — ``WORK/results/results.json`` and the evidence folder — is written
beside, and can be rewritten by, the student's code; the trusted phase reads it only as data.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..contract import EVIDENCE_DIR
from . import plugins


def main(work: str, seed: str) -> None:
    from .. import contract

    contract.skip_slow_optional_modules()
    from otter.run.run_autograder import main as otter_main

    evidence = Path(work) / EVIDENCE_DIR
    evidence.mkdir(exist_ok=True)
    otter_main(str(work), plugins=plugins.names(str(evidence), int(seed)))


if __name__ == "__main__":
    main(*sys.argv[1:3])
