"""Parts of a test run as an ordinary account. The tests run as root, which reads, enters and removes
everything; an instructor grading on their own machine is no root, and a folder the notebook made
unreadable is unreadable to them. These helpers let a test be that instructor."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from fashion_kit.grading import sandbox


@contextlib.contextmanager
def temporary_account(prefix: str = "fk-plain"):
    """The name of an account of this test run's own (``<prefix>-<pid>``: test runs at the same time
    never share one) that may reach this Python, which lives under /root (mode 0700) here; its ACL
    entries and the account are removed afterwards. Needs root, and setfacl."""
    if os.geteuid() != 0:
        pytest.skip("making an ordinary account to run as needs root")
    if shutil.which("setfacl") is None:
        pytest.skip("setfacl is not installed (Debian/Ubuntu: apt-get install acl); the account cannot reach "
                    "this Python without it")
    name = f"{prefix}-{os.getpid()}"
    sandbox.ensure_user(name)
    opened = sandbox.grant_traverse(Path(sys.executable).resolve(), name)
    try:
        yield name
    finally:
        revoke_traverse(opened, name)
        subprocess.run(["userdel", name], check=False, capture_output=True)


@contextlib.contextmanager
def ordinary_account():
    """(uid, gid) of a :func:`temporary_account`, to run parts of a test as (a module imported late is
    read as the account)."""
    with temporary_account() as name:
        entry = pwd.getpwnam(name)
        yield entry.pw_uid, entry.pw_gid


def revoke_traverse(folders: list[Path], account: str) -> None:
    """Undo :func:`sandbox.grant_traverse`: the account's ACL entries go, and the mask setfacl added
    with them when no other named entry is left."""
    for folder in folders:
        subprocess.run(["setfacl", "-x", f"u:{account}", str(folder)], check=True)
        rest = subprocess.run(["getfacl", "--skip-base", "--omit-header", str(folder)], capture_output=True,
                              text=True).stdout
        if not any(line.startswith(("user:", "group:")) and line.split(":")[1] for line in rest.splitlines()):
            subprocess.run(["setfacl", "-b", str(folder)], check=True)


def chown_tree(top: Path, uid: int, gid: int) -> None:
    """Give ``top`` and everything in it to the account."""
    os.chown(top, uid, gid)
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def run_as(uid: int, gid: int, function, *args):
    """``function(*args)`` in a forked child that has become the account (no groups, no capability);
    its result, which must be JSON. What it raised is raised here as an AssertionError, with its
    traceback."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # only async-signal-safe work until the identity is changed, then plain Python
        code = 0
        try:
            os.close(read)
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            answer = {"result": function(*args)}
        except BaseException:
            answer, code = {"error": traceback.format_exc()}, 1
        try:
            os.write(write, json.dumps(answer).encode())
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        raw = f.read()
    os.waitpid(pid, 0)
    answer = json.loads(raw or b'{"error": "the child died without an answer"}')
    if "error" in answer:
        raise AssertionError("as the account:\n" + answer["error"])
    return answer["result"]
