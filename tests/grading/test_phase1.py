"""Phase 1's driver on tiny notebooks (no TensorFlow, a kernel of a few seconds): every cell runs,
the kernel talks over Unix sockets, no output is kept, the notebook's own checks do nothing and Otter
is never imported (phase 2 decides), and a notebook for another assignment is not run."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import psutil
import pytest

from fashion_kit import contract
from fashion_kit.grading import admission, phase1
from fashion_kit.grading.cells import checkpoints, grading_mode


def notebook(*cells) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[
        c if isinstance(c, nbformat.NotebookNode) else nbformat.v4.new_code_cell(c) for c in cells])


def work_folder(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A work folder laid out as the grading core makes it: submission, evidence, home."""
    work = tmp_path / "work"
    submission, evidence, home = work / contract.WORK_SUBMISSION, work / contract.EVIDENCE_DIR, work / contract.WORK_HOME
    for folder in (submission, evidence, home):
        folder.mkdir(parents=True)
    return work, submission, evidence


def test_grading_mode_drops_ignored_cells_and_puts_the_stand_in_first(tmp_path):
    _, _, evidence = work_folder(tmp_path)
    ignored = nbformat.v4.new_code_cell("print('a picture')")
    ignored.metadata["tags"] = ["otter_ignore"]
    ignored_by_metadata = nbformat.v4.new_code_cell("print('another picture')")
    ignored_by_metadata.metadata["otter"] = {"ignore": True}
    nb = notebook("x = 2", ignored, ignored_by_metadata, "grader.check_all()")
    checkpoints.apply(nb, evidence)
    grading_mode.enter(nb)
    sources = [c.source for c in nb.cells]
    assert sources[0] == grading_mode.STAND_IN_CELL
    assert "print('a picture')" not in sources and "print('another picture')" not in sources
    # The ignored cells keep their numbers: cell 4 is the student's fourth code cell.
    assert "__fashion_kit_checkpoint__(4, 'grader.check_all()')" in sources
    assert sources[-1] == "__fashion_kit_checkpoint__(None, '')"


def test_every_cell_runs_over_unix_sockets_and_no_output_is_kept(tmp_path, capsys):
    # Deeper than a Unix socket's path may be (107 bytes), as an instructor's output folder can be.
    work, submission, _ = work_folder(tmp_path / ("deep-" * 12))
    home = work / contract.WORK_HOME
    nb = notebook("x = 2\nprint('x' * 100000)", "raise ValueError('a mistake in this cell')",
                  "import json, os\n"
                  "json.dump({'x': x, 'cwd': os.getcwd()}, open('after.json', 'w'))\n"
                  "import ipykernel.connect\n"
                  "json.dump({'file': ipykernel.connect.get_connection_file(),"
                  " **json.load(open(ipykernel.connect.get_connection_file()))}, open('connection.json', 'w'))")
    timings = phase1.Timings(started_after=0.25)
    phase1.execute(nb, submission, home, timings)
    assert psutil.Process().children() == [], "the kernel is shut down"
    line = timings.line()
    assert line.startswith("fashion-kit phase 1: ") and " slowest: " in line
    said = dict(part.split("=") for part in line.removeprefix("fashion-kit phase 1: ").split(" slowest: ")[0].split())
    assert list(said) == ["program_start", "kernel_start", "kit_cells", "student_cells", "kernel_shutdown"]
    assert said["program_start"] == "0.25" and float(said["kernel_start"]) > 0 and float(said["student_cells"]) > 0
    assert 0 <= float(said["kernel_shutdown"]) < 30
    after = json.loads((submission / "after.json").read_text())
    assert after["x"] == 2 and Path(after["cwd"]) == submission, "the cell after the error ran, in the submission"
    connection = json.loads((submission / "connection.json").read_text())
    assert connection["transport"] == "ipc"
    assert (submission / connection["ip"]).resolve() == (home / phase1.SOCKETS).resolve()
    assert connection["file"] == str(home / phase1.CONNECTION_FILE)
    assert all(cell.get("outputs", []) == [] for cell in nb.cells), "no output is kept"
    logged = capsys.readouterr().out
    assert "ValueError: a mistake in this cell" in logged and "x" * 1000 not in logged


def test_the_notebook_is_prepared_while_the_kernel_starts(tmp_path):
    """The kit's cells are put in while the kernel boots in its own process; what the preparation
    changed is what runs, and a preparation that fails leaves no kernel behind."""
    work, submission, _ = work_folder(tmp_path)
    home = work / contract.WORK_HOME
    nb = notebook("x = 1")
    kernels = []

    def prepare(nb):
        kernels.append([p.pid for p in psutil.Process().children()])  # the kernel's process is there
        nb.cells.append(nbformat.v4.new_code_cell("open('prepared', 'w').write(str(x))"))

    phase1.execute(nb, submission, home, prepare=prepare)
    assert (submission / "prepared").read_text() == "1"
    assert kernels and kernels[0], "the kernel was started before the notebook was prepared"

    def fail(nb):
        raise ValueError("a preparation that fails")

    with pytest.raises(ValueError, match="a preparation that fails"):
        phase1.execute(notebook("x = 1"), submission, home, prepare=fail)
    assert psutil.Process().children() == [], "no kernel is left behind"


STUDENT_FIRST_CELL_PARTS = """\
import importlib.util, sys
assert importlib.util.find_spec("otter") is not None  # so the first cell installs nothing
import otter
from otter.check.notebook import Notebook as OtterNotebook
from otter.check.utils import IPythonInterpreter
from otter.test_files import GradingResults
from otter.test_files.abstract_test import TestCaseResult, TestFile
from otter.test_files.exception_test import ExceptionTestFile
ExceptionTestFile._generate_error_message = lambda *args: "one message"
formatters = get_ipython().display_formatter.formatters
formatters["text/html"].for_type(TestFile, lambda result: result.name)

class Notebook(OtterNotebook):
    def check(self, question, global_env=None):
        result = super().check(question, global_env)
        if not type(self)._grading_mode:
            result.test_case_results = []
        return result

    def export(self, *args, **kwargs):
        if self.interpreter is IPythonInterpreter.COLAB:
            return
        super().export(*args, export_path="fashion_mnist.zip", display_link=False, **kwargs)

otter.Notebook = Notebook
grader = otter.Notebook("fashion_mnist.ipynb")
"""


@pytest.mark.parametrize("first_cell", [STUDENT_FIRST_CELL_PARTS, "import otter\ngrader = otter.Notebook()"],
                         ids=["the student notebook's first cell", "Otter's own two lines"])
def test_the_notebooks_checks_do_nothing_and_otter_is_never_imported(tmp_path, capsys, first_cell):
    work, submission, evidence = work_folder(tmp_path)
    nb = notebook(first_cell, "x = 2", 'result = grader.check("q1")\nresult', "grader.check_all()",
                  "grader.export(pdf=False)",
                  "import json, sys\n"
                  "json.dump({'otter': [type(m).__name__ for n, m in sys.modules.items() if n.split('.')[0] == 'otter'],"
                  " 'files': [type(m).__name__ for m in sys.modules.values() if (getattr(m, '__file__', None) or '').find('/otter/') >= 0],"
                  " 'result': repr(result), 'x': x}, open('after.json', 'w'))")
    checkpoints.apply(nb, evidence)
    grading_mode.enter(nb)
    phase1.execute(nb, submission, work / contract.WORK_HOME)
    assert "Error" not in capsys.readouterr().out, "no cell raised"
    after = json.loads((submission / "after.json").read_text())
    assert after["x"] == 2 and after["result"] == ""
    assert after["otter"] and set(after["otter"]) == {"StandInModule"} and after["files"] == [], "no module of Otter's loaded"
    assert sorted(p.name for p in submission.iterdir()) == ["after.json"], "export wrote nothing"
    assert json.loads((evidence / contract.RUNNING_FILE).read_text()) == {"cell": None, "first_line": ""}


def test_a_notebook_for_another_assignment_is_refused_before_anything_runs(tmp_path):
    """The trusted core decides a refusal from the upload itself (admission), so no file phase 1 can
    write is ever read as the grader's word."""
    work, submission, evidence = work_folder(tmp_path)
    nb = notebook("open('ran.txt', 'w').write('1')")
    nb.metadata["otter"] = {"assignment_name": "hw03_regression"}
    nbformat.write(nb, str(submission / contract.NOTEBOOK))
    scratch = tmp_path / "trusted"
    scratch.mkdir()
    message = admission.refusal(submission, "fashion_mnist", scratch, 2**20)
    assert message.startswith(admission.REFUSED_INTRO)
    assert "Received submission for assignment 'hw03_regression' (this is assignment 'fashion_mnist')" in message
    nb.metadata["otter"] = {"assignment_name": "fashion_mnist"}
    nbformat.write(nb, str(submission / contract.NOTEBOOK))
    assert admission.refusal(submission, "fashion_mnist", scratch, 2**20) is None
    assert list(scratch.iterdir()) == [], "the copy it read is gone"
    (submission / contract.NOTEBOOK).write_text("{not json", encoding="utf-8")
    assert "could not be read as JSON" in admission.refusal(submission, "fashion_mnist", scratch, 2**20)
    nbformat.write(nb, str(submission / "copy.ipynb"))
    assert admission.find_notebook(submission) == (None, "More than one .ipynb file found in submission")
    assert "More than one .ipynb" in admission.refusal(submission, "fashion_mnist", scratch, 2**20)
    assert not (submission / "ran.txt").exists() and list(evidence.iterdir()) == []
