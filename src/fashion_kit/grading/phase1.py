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


def without_network(otter_execute) -> None:
    """Make Otter's notebook run need no network, which the sandbox's filter refuses: the kernel's
    channels over Unix sockets (jupyter_client's ``transport="ipc"``), and no TCP log server.

    Otter builds the traitlets Config of its ExecutePreprocessor itself, and nbclient hands it on
    to the KernelManager, so the transport goes into that Config. The sockets' default paths are
    relative (``kernel-ipc-N``); Otter starts the kernel in its own folder, so both sides name the
    same files, and the paths stay short (a Unix socket's path has at most 107 bytes). The kernel's
    Otter logs are sent to a port nothing listens on (0): a handler that cannot connect drops them."""
    from traitlets.config import Config

    otter_execute.Config = lambda: Config(KernelManager={"transport": "ipc"})
    otter_execute.start_server = lambda: (("localhost", 0), lambda: None)


def main(work: str, seed: str) -> None:
    from .. import contract

    contract.skip_slow_optional_modules()
    import otter.execute
    from otter.run.run_autograder import main as otter_main

    without_network(otter.execute)

    evidence = Path(work) / EVIDENCE_DIR
    evidence.mkdir(exist_ok=True)
    otter_main(str(work), plugins=plugins.names(str(evidence), int(seed)))


if __name__ == "__main__":
    main(*sys.argv[1:3])
