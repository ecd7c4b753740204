"""Phase 1, untrusted: run the student's notebook, with the kit's cells, in a kernel. This program
runs inside the sandbox.

``python -I -m fashion_kit.grading.phase1 WORK SEED [quick-fit]`` executes the notebook in
``WORK/submission/`` with nbclient, the kit's cells inserted (:mod:`.cells`), as Otter's grading
would: every cell runs, whatever the cells before it raised, and the notebook's own checks do
nothing (phase 2 decides). The kernel talks to this process over Unix sockets in the private home
(no network port), and no cell output is kept: what phase 2 reads is the evidence folder the kit's
cells write (the values each question is decided on, the model snapshots), beside, and rewritable
by, the student's code; the trusted phase reads it only as data. Whether the submission is graded at
all was decided before this program started (:mod:`.admission`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .. import contract as c

if TYPE_CHECKING:
    from nbformat import NotebookNode

KERNEL_NAME = "python3"  # as Otter grades: the environment's own Python kernel, whatever the notebook asks
# In the private home: the kernel's connection file, and its sockets beside it (kernel-1, kernel-2...).
CONNECTION_FILE, SOCKETS = "kernel.json", "kernel"
ERROR_CHARS = 300
# The log's timing line names this many of the slowest cells.
SLOWEST_CELLS = 5


def first_line(cell) -> str:
    return next((line.strip() for line in cell.source.splitlines() if line.strip()), "")[:60]


class Timings:
    """Where phase 1's seconds went, for the log: this program's start (the filter's trampoline, the
    imports, the kit's cells put in), the kernel's start, the kit's cells, the student's, the kernel's
    shutdown, and the slowest cells by their first line."""

    def __init__(self, started_after: float = 0.0):
        self.started_after = started_after
        self.started, self.cell_started, self.first_cell = time.monotonic(), None, None
        self.last_cell_ended: float | None = None
        self.kit = self.student = 0.0
        self.cells: list[tuple[float, str]] = []

    def cell_start(self, cell, cell_index):
        self.cell_started = time.monotonic()
        self.first_cell = self.first_cell or self.cell_started

    def cell_executed(self, cell, cell_index, execute_reply):
        from .cells import is_kit_cell

        self.last_cell_ended = time.monotonic()
        seconds = self.last_cell_ended - (self.cell_started or self.last_cell_ended)
        if is_kit_cell(cell):
            self.kit += seconds
        else:
            self.student += seconds
        self.cells.append((seconds, first_line(cell)))

    def line(self) -> str:
        now = time.monotonic()
        kernel = (self.first_cell or now) - self.started
        shutdown = now - (self.last_cell_ended or now)
        slowest = ", ".join(f"{s:.2f}={text!r}" for s, text in sorted(self.cells, reverse=True)[:SLOWEST_CELLS])
        return (f"fashion-kit phase 1: program_start={self.started_after:.2f} kernel_start={kernel:.2f} "
                f"kit_cells={self.kit:.2f} student_cells={self.student:.2f} kernel_shutdown={shutdown:.2f} "
                f"slowest: {slowest}")


def execute(nb, cwd: Path, home: Path, timings: Timings | None = None,
            prepare: Callable[[NotebookNode], None] | None = None) -> None:
    """Run every cell of ``nb`` in a new kernel started in ``cwd``; raises nbclient's DeadKernelError
    if the kernel dies. Nothing of the cells' output is kept; their errors are logged in one line.
    ``prepare(nb)``, if given, changes the notebook while the kernel starts in its own process."""
    import asyncio

    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    timings = timings or Timings()

    class Quiet(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            return None  # nobody reads a graded notebook's outputs: they would only cost memory

    def log_error(cell, cell_index, execute_reply):
        content = execute_reply.get("content", {})
        print(f"cell {first_line(cell)!r}: {content.get('ename')}: {str(content.get('evalue'))[:ERROR_CHARS]}",
              flush=True)

    # A Unix socket's path holds at most 107 bytes, fewer than a work folder's may take. The path is
    # given relative to the notebook's folder, the kernel's working folder and, while it runs, ours.
    sockets = os.path.relpath(home / SOCKETS, cwd)
    km = AsyncKernelManager(kernel_name=KERNEL_NAME, transport="ipc", ip=sockets,
                            connection_file=str(home / CONNECTION_FILE))
    client = Quiet(nb, km=km, timeout=None, allow_errors=True, record_timing=False, shutdown_kernel="immediate",
                   resources={"metadata": {"path": str(cwd)}}, on_cell_error=log_error,
                   on_cell_start=timings.cell_start, on_cell_executed=timings.cell_executed)

    async def run():
        await client.async_start_new_kernel()  # as nbclient would, which then uses this kernel
        if prepare is not None:
            try:
                prepare(nb)
            except BaseException:
                await km.shutdown_kernel(now=True)
                raise
        await client.async_execute(cleanup_kc=True)  # and the kernel is shut down: this client started it

    with contextlib.chdir(cwd):
        asyncio.run(run())


# The last argument that turns on the kit's tests' quick fit (:mod:`.cells.quick_fit`).
QUICK_FIT_ARGUMENT = "quick-fit"


def main(work: str, seed: str, *switches: str) -> int:
    c.skip_slow_optional_modules()
    import nbformat
    from nbclient.exceptions import DeadKernelError

    from . import admission, cells
    from .supervise import seconds_since_start

    work = Path(work).resolve()
    evidence, submission = work / c.EVIDENCE_DIR, work / c.WORK_SUBMISSION
    evidence.mkdir(exist_ok=True)
    path, why = admission.find_notebook(submission)
    if path is None:  # the trusted core checked this before; nothing to run
        print(why, flush=True)
        return 1
    nb = nbformat.read(path, as_version=4)
    timings = Timings(seconds_since_start())
    try:
        execute(nb, submission, work / c.WORK_HOME, timings, prepare=lambda nb: cells.prepare(
            nb, evidence=evidence, seed=int(seed), quick_fit=QUICK_FIT_ARGUMENT in switches))
    except DeadKernelError as e:
        print(f"DeadKernelError: {e}", flush=True)
        return 1
    finally:
        print(timings.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
