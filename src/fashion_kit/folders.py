"""The instructor's output folders: private to the instructor, or shared read-only with one group.

Gradings keep students' notebooks, their grades and, while they run, the sandboxes' work folders
below the output folder. Files inside keep the usual modes; the folder itself is the gate: no other
account may pass it (mode 0700), or only the members of ``group``, to read (mode 0750).
"""

from __future__ import annotations

import grp
import os
from pathlib import Path

from .errors import KitError

PRIVATE, GROUP_READABLE = 0o700, 0o750


class FolderError(KitError, ValueError):
    """The output folder cannot be made private (or shared as asked); the message says why."""


def make_private(folder: Path | str, group: str | None = None) -> Path:
    """Create ``folder`` if needed and close it to every other account (to all but ``group``'s
    members, who may read). Refused, with the reason, for a folder of someone else's."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gid = -1
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise FolderError(f"--group {group!r}: no such group on this machine; expected a group whose "
                              "members (teaching assistants) may read the output folder.") from None
    try:
        if gid != -1:
            os.chown(folder, -1, gid)
        folder.chmod(GROUP_READABLE if group else PRIVATE)
    except PermissionError:
        raise FolderError(f"{folder} belongs to another account, so it cannot be made private; choose a folder "
                          "of your own with --output.") from None
    return folder
