"""The autograder zip (fashion_kit.autograder_zip): the kit inside it as a wheel, what it was built
from, and the questions it carries."""

from __future__ import annotations

import tomllib
import zipfile
from fnmatch import fnmatch
from pathlib import Path

from fashion_kit import assign, autograder_zip, paths
from fashion_kit.questions import layout as question_layout

from .conftest import QUESTIONS


def test_the_zip_carries_the_kit_as_a_wheel_and_knows_what_it_was_built_from(built, tmp_path):
    with zipfile.ZipFile(built.autograder_zip) as zf:
        names = zf.namelist()
        wheels = [n for n in names if n.endswith(".whl")]
        assert len(wheels) == 1
        (tmp_path / wheels[0]).write_bytes(zf.read(wheels[0]))
    with zipfile.ZipFile(tmp_path / wheels[0]) as wheel:
        inside = wheel.namelist()
    assert "fashion_kit/grading/core.py" in inside and "fashion_kit/contract.py" in inside
    assert not any("__pycache__" in n for n in inside)
    assert autograder_zip.stale_reasons(built.autograder_zip) == []
    changed = tmp_path / "master.ipynb"
    changed.write_text(Path(assign.paths.MASTER).read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert autograder_zip.stale_reasons(built.autograder_zip, changed) == ["the master notebook changed since the zip was built"]


def test_every_evidence_question_is_a_question_of_the_autograder(built):
    from fashion_kit.questions import WITH_SNAPSHOT, points_in_autograder

    questions = points_in_autograder(built.autograder_zip)
    assert set(WITH_SNAPSHOT) <= questions.keys()
    assert questions == {q: float(p) for q, p in QUESTIONS.items()}


def test_nothing_a_zip_carries_or_says_turns_on_the_tests_quick_fit(built, tmp_path):
    """The quick fit is the kit's tests' switch, read from the grading core's environment only: the
    zip's scripts never set it (Gradescope runs them as they are), and a zip whose settings name it is
    refused like any unknown setting."""
    import json

    import pytest

    from fashion_kit import settings
    from fashion_kit.grading import core

    with zipfile.ZipFile(built.autograder_zip) as zf:
        texts = {n: zf.read(n) for n in zf.namelist() if not n.endswith((".whl", ".gz", ".npy"))}
    assert texts and not [n for n, text in texts.items() if core.QUICK_FIT_ENV.encode() in text]
    config = json.loads(texts["otter_config.json"])
    config["fashion_kit"][core.QUICK_FIT_ENV] = "1"
    (tmp_path / "otter_config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(settings.SettingsError, match=f"unknown setting fashion_kit.{core.QUICK_FIT_ENV}"):
        settings.load(tmp_path / "otter_config.json")


def test_the_kits_wheel_and_its_install_leave_out_the_question_folders_test_data(tmp_path):
    """A question folder's catalogue.json and mistakes.json are the tests' data: neither the wheel the
    zip carries (so a changed test entry leaves the zip up to date) nor the package data an install
    takes (pyproject.toml) holds them; every other file of a question folder is in both."""
    package = autograder_zip.PACKAGE
    folders = question_layout.folders()
    test_data = {p for f in folders for n in question_layout.TEST_DATA_FILES if (p := f / n).is_file()}
    assert test_data, "no question folder has test data: nothing to prove"
    own = {p for f in folders for p in f.iterdir() if p.is_file() and p not in test_data}
    with zipfile.ZipFile(autograder_zip.kit_wheel(tmp_path)) as wheel:
        inside = set(wheel.namelist())
    def named(path: Path) -> str:
        return path.relative_to(package.parent).as_posix()

    assert {named(p) for p in own} <= inside and not {named(p) for p in test_data} & inside
    declared = tomllib.loads((paths.ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = declared["tool"]["setuptools"]["package-data"]["fashion_kit"]
    def installed(path: Path) -> bool:
        return path.suffix == ".py" or any(fnmatch(path.relative_to(package).as_posix(), g) for g in globs)

    assert all(installed(p) for p in own) and not any(installed(p) for p in test_data)
