"""The checks' own code, copied where the kit is not installed: the notebook's tests and the grader's cells.

:mod:`fashion_kit.checks` is the one implementation of every question's check. A student's computer
has no kit, so the build copies into each public test exactly the functions that test calls (and
what they use, found by name), and the grader's evidence cell carries the functions that collect the
values. One source, copied: the copies cannot drift from it.

A test cell of the master that says ``CHECK("q1_load_data", public=True)`` (alone on its line,
inside a test function) becomes, in the built notebook, the check's code followed by
``assert`` on its verdict.
"""

from __future__ import annotations

import ast
import re
import textwrap
from functools import lru_cache
from pathlib import Path

from .. import checks
from . import layout

# The helpers every question's check may use; a question's check.py imports them from here.
COMMON = Path(checks.__file__)
MARKER = re.compile(r"^(?P<indent>[ \t]+)CHECK\((?P<args>[^)]*)\)[ \t]*$", re.MULTILINE)


def sources() -> tuple[Path, ...]:
    """The files the checks' code is copied from: the shared helpers, then each question's check.py."""
    return (COMMON, *(folder / layout.CHECK_FILE for folder in layout.folders()))


def _kit_import(node: ast.ImportFrom) -> bool:
    """An import of the kit's own helpers: the copy brings their definitions instead."""
    return node.level > 0 or (node.module or "").split(".")[0] == COMMON.parent.name


@lru_cache(maxsize=4)
def _definitions(files: tuple[Path, ...]) -> tuple[list[str], dict[str, tuple[str, set[str]]]]:
    """The files' imports, and each top-level name with its code and the names it uses."""
    imports, found = [], {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        for node in tree.body:
            code = ast.get_source_segment(text, node)
            if isinstance(node, ast.ImportFrom) and (node.module == "__future__" or _kit_import(node)):
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if code not in imports:
                    imports.append(code)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                found[node.name] = (code, {n.id for n in ast.walk(node) if isinstance(n, ast.Name)})
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                used = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)} if node.value else set()
                for target in targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = (code, used)
    return imports, found


def source_for(*names: str) -> str:
    """The code of ``names`` (functions or constants of the checks) and of everything they use, in
    the order of :func:`sources`, after their imports."""
    imports, found = _definitions(sources())
    missing = [n for n in names if n not in found]
    if missing:
        raise KeyError(f"no check defines {', '.join(missing)}")
    wanted, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        todo.extend(n for n in found[name][1] if n in found)
    seen, parts = set(), list(imports)
    for name, (code, _) in found.items():
        if name in wanted and code not in seen:
            seen.add(code)
            parts.append(code)
    return "\n\n".join(parts) + "\n"


def expand_check(question: str, public: bool, indent: str) -> str:
    """The lines that replace ``CHECK(question, public=...)`` in a test function: the check's code,
    then an assertion on its verdict with its messages."""
    collect, check = f"collect_{question}", f"check_{question}"
    body = ("__fashion_kit_values__ = dict(locals())\n"
            + source_for(collect, check)
            + f"__fashion_kit_fraction__, __fashion_kit_messages__ = {check}({collect}(__fashion_kit_values__), "
              f"public={public})\n"
              "assert __fashion_kit_fraction__ == 1, '\\n'.join(__fashion_kit_messages__)\n")
    return textwrap.indent(body, indent, lambda line: True).rstrip("\n")


def _arguments(text: str) -> tuple[str, bool]:
    call = ast.parse(f"f({text})", mode="eval").body
    question = ast.literal_eval(call.args[0])
    public = next((ast.literal_eval(k.value) for k in call.keywords if k.arg == "public"), False)
    return question, bool(public)


def expand(source: str) -> str:
    """``source`` (a test cell of the master) with every ``CHECK(...)`` line replaced by its code."""
    def replace(match: re.Match) -> str:
        question, public = _arguments(match["args"])
        return expand_check(question, public, match["indent"])

    return MARKER.sub(replace, source)


def expand_notebook(nb):
    """The master ``nb`` with the checks' code in its test cells (changed in place, and returned)."""
    for cell in nb.cells:
        if cell.cell_type == "code" and MARKER.search(cell.source):
            cell.source = expand(cell.source)
    return nb
