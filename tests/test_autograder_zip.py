"""The autograder zip (fashion_kit.autograder_zip): the kit inside it as a wheel, what it was built
from, and the questions it carries."""

from __future__ import annotations

import zipfile
from pathlib import Path


from fashion_kit import assign, autograder_zip

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
