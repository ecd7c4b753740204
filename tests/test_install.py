"""The Makefile refuses a Python the pins cannot install, and says which Python is needed."""

import re
import subprocess
import sys
from importlib import metadata

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from fashion_kit import paths

CHECK = paths.ROOT / "tools" / "check_python.py"
PYPROJECT = paths.ROOT / "pyproject.toml"


def requires_python() -> SpecifierSet:
    return SpecifierSet(re.search(r'^requires-python\s*=\s*"([^"]+)"', PYPROJECT.read_text(), re.M)[1])


def lowest_accepted() -> Version:
    return min(Version(s.version) for s in requires_python() if s.operator in (">=", "=="))


def pins() -> dict[str, str]:
    found = {}
    for line in (paths.ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            found[name.strip()] = version.split(";")[0].strip()
    return found


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
