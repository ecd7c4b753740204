"""The kit's layers (docs/architecture.md) hold: import-linter checks its contracts in pyproject.toml.

A module imports only from the layers below its own, no package's modules import each other in a
cycle, and the grading core reaches the checks only through the question registry. The contracts
are proven to bite: a copy of the kit with an arrow back up, a cycle and a direct import of the
checks breaks each of them. The question folders, which import-linter does not see, have a small test
of their own. The guide's table places every module the contracts place.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from fashion_kit import paths
from fashion_kit.questions import layout

PYPROJECT = paths.ROOT / "pyproject.toml"
PACKAGE = paths.ROOT / "src" / "fashion_kit"


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    """import-linter's verdict on the kit found in ``package_parent``, with the project's contracts."""
    command = [str(Path(sys.executable).with_name("lint-imports")), "--config", str(PYPROJECT), "--no-cache",
               "--no-logo"]
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(command, cwd=package_parent, env=env, capture_output=True, text=True, timeout=300)


def test_the_kit_keeps_its_layers():
    found = lint_imports(PACKAGE.parent)
    assert found.returncode == 0, found.stdout + found.stderr
    assert "0 broken" in found.stdout


def add_line(path: Path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_an_arrow_back_up_a_cycle_and_a_direct_import_of_the_checks_are_each_refused(tmp_path):
    copy = tmp_path / "fashion_kit"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    add_line(copy / "run.py", "from .classroom import intake  # noqa")  # a single grading through the class tooling
    add_line(copy / "contract.py", "from . import notebooks  # noqa")  # notebooks imports contract: a cycle
    add_line(copy / "grading" / "verdicts.py", "from .. import checks  # noqa")  # around the registry
    add_line(copy / "classroom" / "ids.py", "from . import intake  # noqa")  # intake imports ids: a cycle inside a package
    found = lint_imports(tmp_path)
    out = " ".join(found.stdout.split())  # import-linter wraps its lines
    assert found.returncode != 0
    assert "fashion_kit.run is not allowed to import fashion_kit.classroom" in out
    assert "fashion_kit.grading is not allowed to import fashion_kit.checks" in out
    assert "No cycles are allowed in fashion_kit." in out and "No cycles are allowed in fashion_kit.classroom." in out
    assert "Contracts: 0 kept, 3 broken." in out


def test_the_architecture_guide_names_every_module_of_the_layers():
    contracts = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    modules = {name for layer in layers for name in re.split(r"\s*[|:]\s*", layer)} - {"__main__"}
    guide = (paths.ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = guide[guide.index("| layer |"):guide.index("Why each rule")]
    named = set(re.findall(r"`(\w+)/?`", table))
    assert modules <= named, modules - named


def imports_of(path: Path, package_parent: Path) -> set[str]:
    """The modules ``path`` imports (and the names it imports from them, as ``module.name``), absolute."""
    package = path.relative_to(package_parent).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or "" if node.level == 0 else ".".join(
                [*package[:len(package) - node.level + 1], *([node.module] if node.module else [])])
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def question_folder_problems(package: Path) -> list[str]:
    """import-linter does not see the question folders (they have no __init__.py): a question's check
    imports nothing of the kit but the shared helpers (the build copies it into the notebooks, where
    no kit is), and only their public names (what a new question may count on), and no module imports
    a question's folder (the registry finds them by name)."""
    folders = layout.folders(package / "questions")
    checks = f"{package.name}.checks"
    problems = [f"{folder.name}/{layout.CHECK_FILE} imports {name}" for folder in folders
                for name in sorted(imports_of(folder / layout.CHECK_FILE, package.parent))
                if name.startswith(f"{package.name}.") and not name.startswith(checks)
                or name.startswith(f"{checks}._")]
    inside = {p for folder in folders for p in folder.rglob("*.py")}
    problems += [f"{path.relative_to(package)} imports {name}" for path in sorted(package.rglob("*.py"))
                 if path not in inside for name in sorted(imports_of(path, package.parent))
                 if re.match(rf"{package.name}\.questions\.q\d+_", name)]
    return problems


def test_a_questions_check_imports_only_the_shared_helpers_and_no_module_imports_a_question(tmp_path):
    assert question_folder_problems(PACKAGE) == []
    copy = tmp_path / "fashion_kit"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    add_line(copy / "questions" / "q1_load_data" / "check.py", "from fashion_kit import run  # noqa")
    add_line(copy / "questions" / "q2_class_names" / "check.py", "from fashion_kit.checks import _hidden  # noqa")
    add_line(copy / "grading" / "verdicts.py", "from ..questions.q6_fit import check  # noqa")
    assert question_folder_problems(copy) == ["q1_load_data/check.py imports fashion_kit.run",
                                              "q2_class_names/check.py imports fashion_kit.checks._hidden",
                                              "grading/verdicts.py imports fashion_kit.questions.q6_fit",
                                              "grading/verdicts.py imports fashion_kit.questions.q6_fit.check"]
