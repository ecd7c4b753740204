"""Cells: grading mode, where the notebook's own checks cost nothing.

Phase 2 decides every question, so while grading the student's ``grader = otter.Notebook(...)`` and
``grader.check("qN")`` cells have nothing to do: a cell of the kit's in front of everything puts a
stand-in for Otter in the kernel's import system. ``import otter`` and ``from otter.... import X``
then give objects that accept any call and do nothing (a check, ``check_all``, ``export``; a
subclass of ``otter.Notebook`` works too, as the student notebook's first cell makes one). The
kernel never imports Otter (seconds of imports and tens of megabytes beside the training), and it
needs no test file: nothing of the autograder's tests is in the notebook's reach.

The rest of what Otter's grading mode does to a notebook stays: cells tagged ``otter_ignore`` (or
with ``otter: {ignore: true}`` in their metadata) are not run.
"""

from __future__ import annotations

import nbformat

from . import kit_cell

IGNORE_TAG = "otter_ignore"  # Otter's tag for a cell that is not run when grading

STAND_IN_CELL = """\
def __fashion_kit_stand_in_for_otter__():
    import importlib.abc, importlib.machinery, sys, types

    class AnyAttribute(type):
        # A class attribute the notebook reads (IPythonInterpreter.COLAB, say) is a stand-in too.
        def __getattr__(cls, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return Nothing

    class Nothing(metaclass=AnyAttribute):
        # Every class and function of Otter's, and what they return: accepts anything, does nothing.
        _grading_mode = True

        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, *args, **kwargs):
            return Nothing()

        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return Nothing()

        def __iter__(self):
            return iter(())

        def __repr__(self):
            return ""

        # Named, so a subclass's super().check(...) finds them.
        check = check_all = export = to_pdf = submit = run_plugin = add_plugin_files = __call__

    class StandInModule(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return Nothing

    class StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path=None, target=None):
            if name == "otter" or name.startswith("otter."):
                return importlib.machinery.ModuleSpec(name, self, is_package=True)
            return None

        def create_module(self, spec):
            return StandInModule(spec.name)

        def exec_module(self, module):
            pass

    for name in [name for name in sys.modules if name == "otter" or name.startswith("otter.")]:
        del sys.modules[name]
    sys.meta_path.insert(0, StandInFinder())


__fashion_kit_stand_in_for_otter__()
del __fashion_kit_stand_in_for_otter__
"""


def ignored(cell) -> bool:
    metadata = cell.get("metadata", {})
    otter = metadata.get("otter", {}) if isinstance(metadata.get("otter"), dict) else {}
    return IGNORE_TAG in metadata.get("tags", []) or bool(otter.get("ignore", False))


def enter(nb: nbformat.NotebookNode) -> None:
    """Drop the cells Otter does not run when grading, and put the stand-in for Otter first."""
    nb.cells = [kit_cell(STAND_IN_CELL), *(cell for cell in nb.cells if not ignored(cell))]
