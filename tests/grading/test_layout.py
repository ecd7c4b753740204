"""The folders of one grading (fashion_kit.grading.layout): what the work folder holds, what phase 1
may see of our environment, copies out of it that follow no link, and its removal however it is
shaped."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path


from fashion_kit import contract, data
from fashion_kit.grading import layout




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
