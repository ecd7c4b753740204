"""Only one batch writes to an output folder at a time.

The lock is ``flock`` on ``<out>/.lock``, held while the batch runs and removed when it ends, so a
finished output folder holds only what the batch wrote for people. The file is removed while still
locked; a batch that opened it just before then finds, once it holds the lock, that its file is no
longer the one at that path, and takes the lock again on the new one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import KitError
from . import store

ATTEMPTS = 3  # each lost only to a batch that finished in between


class Busy(KitError, RuntimeError):
    """Another batch holds the output folder."""


class OutputLock:
    def __init__(self, out: Path):
        self._path = store.inside(out, store.LOCK)
        for _ in range(ATTEMPTS):
            if self._path.is_symlink():
                self._path.unlink()
            self._file = open(self._path, "w")
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._file.close()
                raise Busy(f"Another `fashion-kit grade` is writing to {out}; wait for it or use another --output.") from None
            if self._holds_path():
                return
            self._file.close()
        raise Busy(f"Other batches keep starting and ending on {out}; run one at a time.")

    def _holds_path(self) -> bool:
        """Whether the locked file is still the one at the lock's path (not removed by a batch that ended)."""
        try:
            here = os.stat(self._path, follow_symlinks=False)
        except FileNotFoundError:
            return False
        mine = os.fstat(self._file.fileno())
        return (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)

    def release(self) -> None:
        try:
            if self._holds_path():
                self._path.unlink()
        finally:
            self._file.close()  # closing the file releases the lock, also when the process dies

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
