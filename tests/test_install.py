"""The Makefile refuses a Python the pins cannot install, and says which Python is needed."""

import re
import subprocess
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from fashion_kit import autograder_zip, paths

CHECK = paths.ROOT / "tools" / "check_python.py"
PYPROJECT = paths.ROOT / "pyproject.toml"


def requires_python() -> SpecifierSet:
    return SpecifierSet(re.search(r'^requires-python\s*=\s*"([^"]+)"', PYPROJECT.read_text(), re.M)[1])


def lowest_accepted() -> Version:
    return min(Version(s.version) for s in requires_python() if s.operator in (">=", "=="))


def pins() -> dict[str, str]:
    return autograder_zip.pinned(paths.ROOT / "constraints.txt")


def requirements(name: str, extras=frozenset()) -> list[Requirement]:
    """``name``'s requirements that apply on this machine with ``extras``, from its installed metadata."""
    found = []
    for line in metadata.requires(name) or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
            found.append(req)
    return found


def runtime_closure(skip=()) -> dict[str, str]:
    """Every package an instructor's install (`make setup`: the kit without extras) brings, each with
    the package that asked for it; ``skip`` names (package, extra) requests not to follow."""
    found, todo = {}, [("fashion-kit", frozenset(), "")]
    while todo:
        name, extras, by = todo.pop()
        key = (canonicalize_name(name), extras)
        if key in found:
            continue
        found[key] = by
        for req in requirements(name, extras):
            wanted = frozenset(e for e in req.extras if (canonicalize_name(name), e) not in skip)
            todo.append((req.name, wanted, name))
    return {name: by for (name, _), by in found.items()}


def test_requires_python_covers_every_pinned_package():
    """Each pin installed here says which Pythons it supports: the kit's lowest must be one of them."""
    lowest, checked, too_new = lowest_accepted(), 0, []
    for name, version in pins().items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:  # a pin for another platform
            continue
        if dist.version != version:
            continue
        checked += 1
        needed = dist.metadata.get("Requires-Python")
        if needed and not SpecifierSet(needed).contains(lowest):
            too_new.append(f"{name}=={version} needs Python {needed}")
    assert checked > 50, "the pins should be installed in the test's environment"
    assert not too_new, f"pyproject.toml accepts Python {lowest}, but: {too_new}; raise requires-python"


def run_check(version: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK), str(PYPROJECT), version], capture_output=True, text=True)


@pytest.mark.parametrize("version", ["3.11.2", "3.10.12", "3.14.0"])
def test_a_python_outside_the_range_is_refused_by_name(version):
    result = run_check(version)
    assert result.returncode != 0
    assert str(requires_python()) in result.stderr.replace(" ", "") or ">=3.11.5" in result.stderr, result.stderr
    assert f"Python {version}" in result.stderr and "make PYTHON=" in result.stderr


def test_the_lowest_accepted_python_and_this_one_pass():
    assert run_check(str(lowest_accepted())).returncode == 0
    assert run_check(".".join(map(str, sys.version_info[:3]))).returncode == 0


def test_the_makefile_checks_before_it_makes_a_venv(tmp_path):
    venv = tmp_path / "venv"
    fake_python = tmp_path / "python3"
    # A stand-in interpreter that reports Debian 12's Python 3.11.2 to the check.
    fake_python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@" 3.11.2\n')
    fake_python.chmod(0o755)
    result = subprocess.run(["make", "-C", str(paths.ROOT), f"PYTHON={fake_python}", f"VENV={venv}", "setup"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "Python 3.11.2" in result.stderr and ">=3.11.5" in result.stderr, result.stderr
    assert not venv.exists()


def test_an_instructors_install_brings_no_jupyterlab_and_no_test_tools():
    """`make setup` installs what grading needs: JupyterLab, the notebook server and the test tools
    are extras ([notebook], [dev]). Playwright is no choice of the kit's: otter-grader 7.0.0 asks for
    nbconvert[webpdf], whose PDF export needs it (the Python package only; no browser is downloaded)."""
    runtime = runtime_closure()
    for extra_only in ("jupyterlab", "notebook", "jupyter", "pytest", "hypothesis", "pip-tools", "opencc"):
        assert extra_only not in runtime, f"{extra_only} comes with the runtime, asked for by {runtime[extra_only]}"
    assert {"ipykernel", "nbclient", "otter-grader", "tensorflow-cpu"} <= runtime.keys()
    assert "playwright" not in runtime_closure(skip={("otter-grader", "webpdf"), ("nbconvert", "webpdf")})
    assert "playwright" not in {canonicalize_name(r.name) for r in requirements("fashion-kit")}


def test_the_pins_are_generated_and_fit_the_build_backend():
    """constraints.txt is pip-compile's output (`make lock`), without hashes: pip's constraint mode
    with a hash checks hashes for everything, and the kit itself (`-e .`) has none. Its setuptools
    is one the build backend accepts, so the pins and pyproject.toml's build-system agree, and every
    version pyproject.toml declares is the one pinned."""
    text = (paths.ROOT / "constraints.txt").read_text()
    assert "pip-compile" in text and "make lock" in text, "regenerate it: make lock"
    found = pins()
    assert len(found) > 100 and "--hash=" not in text
    backend = re.search(r'^requires\s*=\s*\["setuptools([^"]*)"\]', PYPROJECT.read_text(), re.M)[1]
    assert Version(found["setuptools"]) in SpecifierSet(backend), (found["setuptools"], backend)
    declared = {canonicalize_name(r.name): r.specifier for r in requirements("fashion-kit", frozenset(
        {"dev", "cluster", "notebook"})) if r.specifier}
    mismatched = {n: (str(s), found.get(n)) for n, s in declared.items() if found.get(n) not in s}
    assert not mismatched, f"pyproject.toml and constraints.txt disagree: {mismatched}; run make lock"
