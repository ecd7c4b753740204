"""Refuse a Python the kit's pins cannot install, before any venv is made.

Reads ``requires-python`` from pyproject.toml (the one place that states it; a test keeps it at or
above every pinned package's own Requires-Python) and compares this interpreter's version with it.
Standard library only, and syntax old Pythons still parse, so an unsupported Python gets a clear
sentence instead of a resolver error.
"""

import os
import re
import sys

OPERATORS = {
    ">=": lambda found, wanted: found >= wanted,
    "<=": lambda found, wanted: found <= wanted,
    ">": lambda found, wanted: found > wanted,
    "<": lambda found, wanted: found < wanted,
    "==": lambda found, wanted: found[:len(wanted)] == wanted,
    "!=": lambda found, wanted: found[:len(wanted)] != wanted,
}
CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)\s*$")


def requires_python(pyproject):
    with open(pyproject, encoding="utf-8") as f:
        match = re.search(r'^requires-python\s*=\s*"([^"]+)"', f.read(), re.M)
    if not match:
        raise SystemExit("no requires-python in %s" % pyproject)
    return match.group(1)


def unmet(specifier, found):
    """The clauses of ``specifier`` (such as ">=3.11.5,<3.14") that version ``found`` misses."""
    missed = []
    for clause in specifier.split(","):
        match = CLAUSE.match(clause)
        if not match:
            raise SystemExit("cannot read the clause %r of requires-python" % clause)
        wanted = tuple(int(part) for part in match.group(2).split("."))
        if not OPERATORS[match.group(1)](tuple(found), wanted):
            missed.append(clause.strip())
    return missed


def main(argv):
    pyproject = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "pyproject.toml")
    found = tuple(int(p) for p in argv[2].split(".")) if len(argv) > 2 else tuple(sys.version_info[:3])
    specifier = requires_python(pyproject)
    if unmet(specifier, found):
        return ("fashion-kit needs Python %s (requires-python in pyproject.toml: the versions every "
                "pin in constraints.txt installs on); %s is Python %s. Install a Python in that "
                "range and run: make PYTHON=/path/to/that/python3"
                % (specifier, sys.executable, ".".join(str(p) for p in found)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
