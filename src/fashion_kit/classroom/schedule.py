"""Running gradings side by side, and stopping them at any moment.

SIGINT (Ctrl-C) and SIGTERM only set an event (:class:`Interrupts`): an exception raised wherever
the main thread happens to be could land inside the thread pool's own locks (``submit``, ``wait``)
and leave them held, so that shutting the pool down waits for ever. Everything that runs long checks
the event instead: discovery between uploads, the scheduler between polls, each grading through its
``cancel`` argument.
"""

from __future__ import annotations

import signal
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable, Iterable

# How often the scheduler looks at the stop event while gradings run.
POLL_SECONDS = 0.2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """While active, SIGINT and SIGTERM set ``event`` (and remember which came) instead of raising.

    Only the main thread can install signal handlers; elsewhere this does nothing but hold the event.
    """

    def __init__(self, event: threading.Event | None = None):
        self.event = event or threading.Event()
        self.received: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame):
        self.received = signum
        self.event.set()

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def run_pool(items: Iterable, work: Callable, jobs: int, stop: threading.Event,
             on_result: Callable) -> bool:
    """``work(item)`` for every item, ``jobs`` at a time, ``on_result(item, result)`` in this thread as
    each finishes. Items are handed to the pool only when a worker is free, so a stop leaves nothing
    queued; ``work`` must return (not raise) and give up soon once ``stop`` is set. Returns whether
    every item ran (False: stopped)."""
    queue = list(items)
    pending: dict = {}
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade")
    try:
        while (queue or pending) and not stop.is_set():
            while queue and len(pending) < jobs:
                item = queue.pop(0)
                pending[pool.submit(work, item)] = item
            finished, _ = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in finished:
                on_result(pending.pop(future), future.result())
    except BaseException:
        stop.set()  # whatever broke the loop, the gradings in flight must not run on
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    # What finished while the batch was stopping is kept: a grading completed is not thrown away.
    for future, item in pending.items():
        if future.done() and not future.cancelled() and future.exception() is None:
            on_result(item, future.result())
    return not queue and not stop.is_set()
