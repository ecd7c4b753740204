"""A cluster worker installs with the commands docs/grading-on-a-cluster.md gives, read from the guide
itself so that the two cannot drift: build the wheel in a copy of the clone, copy it with the
constraints to a "worker" folder, make a venv and install there."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fashion_kit import paths

GUIDE = paths.ROOT / "docs" / "grading-on-a-cluster.md"
WORKER = "lab2"


def guide_commands() -> list[tuple[str, str]]:
    """(machine, command) of each line of the bash block under "Installing a worker"."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("## Installing a worker", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    found = []
    for line in block.splitlines():
        machine, _, command = line.partition("$")
        found.append((machine.strip(), command.split("  #")[0].strip()))
    return found


def run_guide(tmp_path: Path, dry_run: bool) -> Path:
    """Run the guide's lines: yours in a copy of the clone, the worker's in its own folder with its
    own home. ``scp … host:`` becomes a copy into that folder. Returns the worker's home."""
    clone, worker, home = tmp_path / "clone", tmp_path / WORKER, tmp_path / "home"
    for folder in (worker, home):
        folder.mkdir()
    shutil.copytree(paths.ROOT, clone, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "dist", "build", "*.egg-info", "__pycache__", "autograder", "graded", "benchmarks", "tests"))
    env = {**os.environ, "HOME": str(home),
           # the clone's make uses the kit's venv; the worker's python3 is the interpreter running these tests
           "MAKEFLAGS": f"VENV={paths.ROOT / '.venv'}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    commands = guide_commands()
    assert [m for m, _ in commands] == ["you", "you", WORKER, WORKER], commands
    for machine, command in commands:
        if command.startswith("scp "):
            sources = shlex.split(command)[1:-1]
            assert shlex.split(command)[-1] == f"{WORKER}:"
            command = f"cp {' '.join(sources)} {shlex.quote(str(worker))}/"
        if dry_run and " install " in command:
            command += " --dry-run"
        done = subprocess.run(["bash", "-euc", command], cwd=clone if machine == "you" else worker, env=env,
                              capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, f"{machine}$ {command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        if dry_run and " install " in command:
            # Every pin holds: the resolver found one set, the kit's own extra included.
            assert "Would install" in done.stdout and "fashion-kit-" in done.stdout, done.stdout[-2000:]
            assert "distributed-" in done.stdout and "dask-jobqueue-" in done.stdout
    assert len(list(worker.glob("fashion_kit-*.whl"))) == 1
    return home


def test_the_guides_worker_install_resolves_with_the_constraints(tmp_path):
    run_guide(tmp_path, dry_run=True)


@pytest.mark.slow
def test_the_guides_worker_install_gives_a_worker_that_imports_the_kit(tmp_path):
    home = run_guide(tmp_path, dry_run=False)
    python = home / "fashion-kit" / "bin" / "python"
    done = subprocess.run([str(python), "-c", "import fashion_kit.classroom.cluster_worker, distributed, tensorflow; "
                           "from importlib.metadata import version; print(version('fashion-kit'))"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    from importlib.metadata import version

    assert done.stdout.strip() == version("fashion-kit")
    assert subprocess.run([str(home / "fashion-kit" / "bin" / "dask"), "worker", "--help"],
                          capture_output=True).returncode == 0
