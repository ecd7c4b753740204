"""The kit's errors that people read: one family, caught once where a command or the grading core
starts, each printed as its one clear message and turned into the command's exit code."""

from __future__ import annotations


class KitError(Exception):
    """Something the person running the kit can act on; the message says what was expected and what
    was found. ``exit_code`` is what a command exits with: 2 for a usage or input error."""

    exit_code = 2


class NotDone(KitError):
    """The work could not be done although the input was fine (a damaged data set, a failed build)."""

    exit_code = 1
