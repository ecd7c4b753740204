"""Parts of a test run as an ordinary account. The tests run as root, which reads, enters and removes
everything; an instructor grading on their own machine is no root, and a folder the notebook made
unreadable is unreadable to them. These helpers let a test be that instructor."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import subprocess
import traceback
from pathlib import Path

import pytest

from fashion_kit.grading import sandbox


@contextlib.contextmanager
def ordinary_account():
    """(uid, gid) of an account of this test run's own, removed afterwards (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("making an ordinary account to run as needs root")
    name = f"fk-plain-{os.getpid()}"
    try:
        pwd.getpwnam(name)
    except KeyError:
        sandbox.ensure_user(name)
    entry = pwd.getpwnam(name)
    try:
        yield entry.pw_uid, entry.pw_gid
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


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
