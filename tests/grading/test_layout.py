"""The folders of one grading (fashion_kit.grading.layout): what the work folder holds, what phase 1
may see of our environment, copies out of it that follow no link, and its removal however it is
shaped, by the account that graded it."""

from __future__ import annotations

import json
import os
import resource
import tempfile
import zipfile
from pathlib import Path

import pytest

from fashion_kit import contract, data
from fashion_kit.grading import layout

from .accounts import ordinary_account, run_as




def test_copies_out_of_the_work_folder_follow_no_link_and_respect_the_limit(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir(), out.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("the instructor's")
    (work / "model.keras").write_bytes(b"x" * 10)
    (work / "link.keras").symlink_to(secret)
    (work / "big.keras").write_bytes(b"x" * 2048)
    os.mkfifo(work / "pipe.keras")
    assert layout.copy_untrusted(work, "model.keras", out / "a", 1024) is None and (out / "a").read_bytes() == b"x" * 10
    assert layout.copy_untrusted(work, "link.keras", out / "b", 1024) is not None and not (out / "b").exists()
    assert "more than" in layout.copy_untrusted(work, "big.keras", out / "c", 1024)
    assert layout.copy_untrusted(work, "pipe.keras", out / "d", 1024) == "not a regular file"
    assert layout.copy_untrusted(work, "none.keras", out / "e", 1024) == "missing"
    (tmp_path / "evil").symlink_to(tmp_path)  # a linked folder is refused too
    assert layout.copy_untrusted(tmp_path / "evil", "secret.txt", out / "f", 1024) == "missing"
    (work / "deep.json").write_text("[" * 100000 + "]" * 100000)
    assert layout.read_untrusted_json(work, "deep.json", out) is None


def test_phase1_gets_none_of_our_environment(tmp_path):
    os.environ["FASHION_KIT_TEST_TOKEN"] = "secret"
    try:
        env = layout.phase1_env(tmp_path, Path("/usr/bin/python3"))
    finally:
        del os.environ["FASHION_KIT_TEST_TOKEN"]
    assert "FASHION_KIT_TEST_TOKEN" not in env and env["HOME"].startswith(str(tmp_path))
    assert all(value.startswith(str(tmp_path)) for key, value in env.items() if key in ("HOME", "TMPDIR", "KERAS_HOME"))


def test_thread_variables_are_read_as_positive_whole_numbers_only():
    given = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "\u0663", "OMP_NUM_THREADS": "0",
             "OPENBLAS_NUM_THREADS": "-2", "MKL_NUM_THREADS": "two", "FASHION_KIT_TEST_TOKEN": "secret"}
    assert layout.threads_of(given) == {"TF_NUM_INTRAOP_THREADS": "1"}, "a positive whole number, in ASCII digits, or nothing"
    assert layout.threads_of({}) == {}, "a caller that sets none (Gradescope): TensorFlow's own choice"
    assert layout.thread_env(3) == {name: "3" for name in layout.THREAD_VARIABLES}


def test_the_work_folder_holds_nothing_of_the_autograders_but_the_data(built, tmp_path):
    """A notebook that reads every file it can reach finds no test and no setting (a token an
    instructor put in otter_config.json, say): the work folder gets the submission, the data set
    and empty folders, and phase 2 decides every question."""
    source, submission = tmp_path / "source", tmp_path / "submission"
    with zipfile.ZipFile(built.autograder_zip) as zf:
        zf.extractall(source)
    config = json.loads((source / "otter_config.json").read_text(encoding="utf-8"))
    (source / "otter_config.json").write_text(json.dumps({**config, "token": "gradescope-secret"}), encoding="utf-8")
    submission.mkdir()
    (submission / contract.NOTEBOOK).write_text("{}", encoding="utf-8")
    work = tmp_path / "work"
    layout.make_work_folder(work, source, submission)
    reachable = sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file())
    assert reachable == sorted([f"{contract.WORK_SUBMISSION}/{contract.NOTEBOOK}",
                                *(f"{contract.WORK_HOME}/.keras/datasets/fashion-mnist/{name}" for name in data.FILES)])
    assert not any(b"gradescope-secret" in (work / p).read_bytes() or b"def test_" in (work / p).read_bytes()
                   for p in reachable)


def test_a_tree_too_deep_for_python_is_still_removed(tmp_path):
    root = tmp_path / "left-behind"
    fd = os.open(tmp_path, os.O_RDONLY)
    os.mkdir("left-behind", dir_fd=fd)
    current = os.open("left-behind", os.O_RDONLY, dir_fd=fd)
    for _ in range(3000):  # deeper than Python's recursion limit; built with openat, as a notebook could
        os.mkdir("d", dir_fd=current)
        nxt = os.open("d", os.O_RDONLY, dir_fd=current)
        os.close(current)
        current = nxt
    os.close(current)
    os.close(fd)
    layout.remove_tree(root)
    assert not root.exists()


# ---- removal as the grader's own account, of what phase 1 can make ------------------------------------


@pytest.fixture(scope="module")
def account():
    with ordinary_account() as ids:
        yield ids


@pytest.fixture
def shared(account):
    """A folder of the account's, where it can make trees (pytest's own are closed to others)."""
    base = Path(tempfile.mkdtemp(prefix="fashion-kit-remove-"))
    os.chown(base, *account)
    yield base
    assert layout.remove_tree(base) == []  # as root


def plant_trap(top: str) -> None:
    """What a notebook can leave in its work folder: a folder it may write and enter but not list
    (0300) with bytes in it, a chain 1,100 deep below it (0300, the deepest one 0000), and folders
    nested past PATH_MAX; with a link to a file outside."""
    here = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    os.mkdir("trap", dir_fd=here)
    trap = os.open("trap", os.O_RDONLY | os.O_DIRECTORY, dir_fd=here)
    fd = os.open("bytes", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=trap)
    os.write(fd, b"x" * 65536)
    os.close(fd)
    current = os.dup(trap)
    for level in range(1100):
        os.mkdir("d", dir_fd=current)
        below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=current)
        if level % 100 == 0:
            os.close(os.open("file", os.O_WRONLY | os.O_CREAT, 0o400, dir_fd=below))
        os.fchmod(below, 0o300)
        os.close(current)
        current = below
    os.fchmod(current, 0o000)
    os.close(current)
    current = os.dup(here)
    for letter in "abcdefghijklmnopqr":
        os.mkdir(letter * 250, dir_fd=current)
        below = os.open(letter * 250, os.O_RDONLY | os.O_DIRECTORY, dir_fd=current)
        os.close(current)
        current = below
    os.symlink(os.environ.get("CANARY", "/etc/passwd"), "link", dir_fd=current)
    os.close(current)
    os.fchmod(trap, 0o300)
    os.close(trap)
    os.close(here)


def test_a_trap_of_the_graders_own_account_is_removed_by_that_account(account, shared):
    canary = shared.parent / f"{shared.name}-canary"
    canary.write_text("outside")
    try:
        work = shared / "work"
        work.mkdir()
        os.chown(work, *account)
        os.environ["CANARY"] = str(canary)
        run_as(*account, plant_trap, str(work))
        assert run_as(*account, os.access, str(work / "trap"), os.R_OK) is False  # it cannot list it
        assert run_as(*account, lambda: layout.remove_tree(work)) == []
        assert not work.exists() and canary.read_text() == "outside"
    finally:
        os.environ.pop("CANARY", None)
        canary.unlink()


def test_a_tree_too_deep_for_the_descriptors_allowed_is_removed(tmp_path):
    nested = tmp_path / "deep"
    nested.mkdir()
    current = os.open(nested, os.O_RDONLY)
    for _ in range(500):
        os.mkdir("d", dir_fd=current)
        below = os.open("d", os.O_RDONLY, dir_fd=current)
        os.close(current)
        current = below
    os.close(current)

    def remove_with_few_descriptors():
        # Room for the remover's own folders and a few more: a walk holding one per level would fail.
        highest = max(map(int, os.listdir("/proc/self/fd")))
        resource.setrlimit(resource.RLIMIT_NOFILE, (highest + layout.REMOVE_OPEN_FOLDERS + 8,) * 2)
        return layout.remove_tree(nested)

    assert run_as(0, 0, remove_with_few_descriptors) == []
    assert not nested.exists()


def test_what_cannot_be_removed_is_moved_into_the_quarantine_and_reported(account, shared, capfd):
    work = shared / "work"
    (work / "theirs").mkdir(parents=True)
    (work / "theirs" / "file").write_text("root's, in a folder of root's: no ordinary account removes it")
    (work / "mine").mkdir()
    (work / "mine" / "file").write_text("the account's")
    for path in (work, work / "mine", work / "mine" / "file"):
        os.chown(path, *account)
    (work / "mine").chmod(0o300)
    quarantine = shared / "quarantine"
    left = run_as(*account, lambda: layout.remove_tree(work, quarantine))
    assert len(left) == 1 and Path(left[0]).parent == quarantine and Path(left[0]).name.endswith("-work")
    assert not work.exists()
    kept = Path(left[0])
    assert sorted(p.name for p in kept.iterdir()) == ["theirs"]  # the rest was removed
    assert (kept / "theirs" / "file").exists()
    assert f"{kept} is left on disk" in capfd.readouterr().err
    # Without a quarantine it stays where it is, said so, and nothing raises.
    assert run_as(*account, lambda: layout.remove_tree(kept)) == [str(kept)] and kept.exists()
