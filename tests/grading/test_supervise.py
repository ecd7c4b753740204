"""The supervisor's walk of the work folder: it sees what a path walk cannot (names past PATH_MAX),
takes what it cannot see for over the limit, and holds a descriptor per level at most."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from fashion_kit.grading import layout, supervise

from .accounts import chown_tree, ordinary_account, run_as

MB = 2**20
LONG_NAMES = [letter * 250 for letter in "abcdefghijklmnopqr"]  # 18 levels, 4,518 characters


def nested(top: Path, names: list[str], *, leaf_bytes: int = 0, mode: int | None = None) -> None:
    """Folders ``names`` nested in ``top`` (made with descriptors: the path may be too long for any
    call), with a file of ``leaf_bytes`` at the bottom; ``mode`` for each folder, if given."""
    current = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for name in names:
        os.mkdir(name, dir_fd=current)
        below = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=current)
        if mode is not None:
            os.fchmod(below, mode)
        os.close(current)
        current = below
    if leaf_bytes:
        fd = os.open("hoard", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=current)
        os.write(fd, b"x" * leaf_bytes)
        os.close(fd)
    os.close(current)


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def tree(tmp_path):
    """A folder for trees no path reaches; emptied by the kit's remover (the session's own look for
    results.json walks every temporary folder by path)."""
    folder = tmp_path / "tree"
    folder.mkdir()
    yield folder
    assert layout.remove_tree(folder) == []


def test_a_hoard_below_a_path_longer_than_path_max_is_measured(tree):
    work = tree / "work"
    work.mkdir()
    nested(work, LONG_NAMES, leaf_bytes=3 * MB)
    assert sum(len(n) + 1 for n in LONG_NAMES) > os.pathconf(work, "PC_PATH_MAX")
    before = open_descriptors()
    assert supervise.folder_over(work, 2 * MB)
    assert not supervise.folder_over(work, 8 * MB)
    assert open_descriptors() == before


def test_each_entry_below_a_long_path_is_walked_once(tree):
    nested(tree, LONG_NAMES, leaf_bytes=1)
    names = [name for _, name, _ in supervise.walk(tree, lambda st: True)]
    assert sorted(names) == sorted([*LONG_NAMES, "hoard"])


def test_a_chain_deeper_than_the_walk_may_go_is_unseen_and_leaks_no_descriptor(tree):
    nested(tree, ["d"] * 300)
    before = open_descriptors()
    with pytest.raises(supervise.Unseen, match="deeper than"):
        list(supervise.walk(tree, lambda st: True))
    assert supervise.folder_over(tree, 10 * 2**30)
    assert open_descriptors() == before
    # Left out, not raised, where the walk is only a clean-up's: the levels it may go are walked.
    assert len(list(supervise.walk(tree, lambda st: True, strict=False))) == supervise.MAX_FOLDER_DEPTH + 1


def test_an_entry_that_vanishes_during_the_walk_costs_nothing(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_bytes(b"x" * 4096)

    def descend(st):  # the first folder found is removed before the walk goes into it
        if not removed:
            victim = next(p for p in (tmp_path / "a", tmp_path / "b") if p.stat().st_ino == st.st_ino)
            (victim / "file").unlink()
            victim.rmdir()
            removed.append(victim.name)
        return True

    removed = []
    seen = [name for _, name, _ in supervise.walk(tmp_path, descend)]
    assert len(removed) == 1 and seen.count("file") == 1 and set(seen) == {"a", "b", "file"}


def test_the_entry_count_covers_the_walk_and_cuts_a_long_listing(tmp_path):
    for i in range(30):
        (tmp_path / f"f{i}").touch()
    assert len(list(supervise.walk(tmp_path, lambda st: True, max_entries=30))) == 30
    with pytest.raises(supervise.Unseen, match="more than 29 entries"):
        list(supervise.walk(tmp_path, lambda st: True, max_entries=29))


@pytest.fixture(scope="module")
def account():
    with ordinary_account() as ids:
        yield ids


def test_a_folder_the_grader_cannot_read_is_over_the_limit(account):
    # Graded by an ordinary account (bubblewrap on an instructor's machine), the notebook's files are
    # that account's; a folder it makes write-and-enter only (0300) cannot be listed, but can be
    # filled. Root would read it anyway: the walk runs as the account.
    base = Path(tempfile.mkdtemp(prefix="fashion-kit-walk-"))
    try:
        work = base / "work"
        (work / "trap").mkdir(parents=True)
        (work / "trap" / "small").write_bytes(b"x" * 4096)
        chown_tree(base, *account)

        def over() -> bool:
            return supervise.folder_over(work, 2**30)

        assert run_as(*account, over) is False
        (work / "trap").chmod(0o300)
        assert run_as(*account, over) is True
    finally:
        (work / "trap").chmod(0o700)
        shutil.rmtree(base)


def test_a_process_knows_how_long_it_has_existed():
    """The grading's timing lines count each process's start-up from its creation, to a clock tick."""
    import subprocess
    import sys

    code = ("import time; time.sleep(0.5); from fashion_kit.grading import supervise; "
            "print(supervise.seconds_since_start())")
    age = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert 0.5 <= age < 5
    assert supervise.seconds_since_start() > 0
