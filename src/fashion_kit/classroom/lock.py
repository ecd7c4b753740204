"""Only one batch writes to an output folder at a time."""

from __future__ import annotations

import fcntl
from pathlib import Path

from ..errors import KitError
from . import store


class Busy(KitError, RuntimeError):
    """Another batch holds the output folder."""


class OutputLock:
    def __init__(self, out: Path):
        path = store.inside(out, store.LOCK)
        if path.is_symlink():
            path.unlink()
        self._file = open(path, "w")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise Busy(f"Another `fashion-kit grade` is writing to {out}; wait for it or use another --output.") from None

    def release(self) -> None:
        self._file.close()  # closing the file releases the lock, also when the process dies

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
