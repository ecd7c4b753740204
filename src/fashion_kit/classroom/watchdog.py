"""A process apart from the batch that kills the batch's gradings once the batch is gone.

Each grading dies with the batch when it is stopped in an orderly way, and its first process also
when the batch is killed outright (SIGKILL). But Otter and the notebook's kernel run in sessions of
their own, further down; without this they would run on, unseen, beside the resumed batch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

# Every process of a batch's gradings inherits this variable; the watchdog finds them by it.
BATCH_ENV = "FASHION_KIT_BATCH"


class Watchdog:
    def __init__(self):
        self.token = uuid.uuid4().hex
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "fashion_kit.classroom.watchdog", "--watch", self.token],
            stdin=subprocess.PIPE, start_new_session=True,  # Ctrl-C in the terminal must not stop it
        )

    def close(self) -> None:
        self._proc.stdin.close()  # the same end-of-file it sees when the batch dies
        self._proc.wait()


class NoWatchdog:
    """For batches whose grader starts no process (a fake grader in tests)."""

    token = ""

    def close(self) -> None:
        pass


def sweep(token: str) -> int:
    """Kill every process whose environment carries this batch's token; returns how many."""
    import psutil

    killed = 0
    for p in psutil.process_iter():
        try:
            if p.pid != os.getpid() and p.environ().get(BATCH_ENV) == token:
                p.kill()
                killed += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return killed


if __name__ == "__main__" and sys.argv[1:2] == ["--watch"]:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the end of the batch ends the watch
    sys.stdin.buffer.read()  # returns when the batch closes the pipe or dies
    for _ in range(3):  # a process forked during a sweep is caught by the next
        if not sweep(sys.argv[2]):
            break
