"""Phase 1's driver on tiny notebooks (no TensorFlow, a kernel of a few seconds): every cell runs,
the kernel talks over Unix sockets, no output is kept, the checks run in Otter's grading mode where
they are placed (their verdicts only tell the student: phase 2 decides), and a notebook for another
assignment is not run."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import psutil

from fashion_kit import contract
from fashion_kit.grading import phase1
from fashion_kit.grading.cells import checkpoints, grading_mode, in_place, is_kit_cell

TEST_FILE = """\
from otter.test_files import test_case
OK_FORMAT = False
name = {name!r}
points = {points}
@test_case(points=None, hidden=False)
def test_public(x):
    open({log!r}, "a").write({name!r} + ":" + repr(x) + "\n")  # where and on what it ran
    assert x == 2, "x 應該是 2。 / Expected x == 2, found " + repr(x)
@test_case(points=None, hidden=True)
def test_hidden(x):
    assert x > 0
"""


def notebook(*cells) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[
        c if isinstance(c, nbformat.NotebookNode) else nbformat.v4.new_code_cell(c) for c in cells])


def work_folder(tmp_path: Path, **points: int) -> tuple[Path, Path, Path, Path]:
    """A work folder laid out as the grading core makes it: tests, submission, evidence, home."""
    work = tmp_path / "work"
    tests, submission = work / contract.WORK_SOURCE / "tests", work / contract.WORK_SUBMISSION
    evidence, home = work / contract.EVIDENCE_DIR, work / contract.WORK_HOME
    for folder in (tests, submission, evidence, home):
        folder.mkdir(parents=True)
    for name, value in points.items():
        (tests / f"{name}.py").write_text(TEST_FILE.format(name=name, points=value, log=str(submission / "checks.log")), encoding="utf-8")
    return work, tests, submission, evidence


def test_grading_mode_drops_ignored_cells_adds_metadata_checks_and_checks_the_rest_last(tmp_path):
    _, tests, submission, evidence = work_folder(tmp_path, q1=1, q2=1)
    ignored = nbformat.v4.new_code_cell("print('a picture')")
    ignored.metadata["tags"] = ["otter_ignore"]
    graded_here = nbformat.v4.new_markdown_cell("**Question 2** is checked by the grader.")
    graded_here.metadata["otter"] = {"tests": ["q2"]}
    nb = notebook("x = 2", ignored, graded_here, "grader.check_all()")
    in_place.apply(nb)
    grading_mode.check_the_rest(nb, tests)
    checkpoints.apply(nb, evidence)
    grading_mode.enter(nb, tests, submission)
    sources = [c.source for c in nb.cells]
    assert "init_grading_mode(" + repr(str(tests.resolve())) + ")" in sources[0]
    assert "print('a picture')" not in sources, "an otter_ignore cell is not run"
    # The ignored cell keeps its number: cell 3 is the student's third code cell.
    assert "__fashion_kit_checkpoint__(3, 'pass')" in sources
    after = sources.index(graded_here.source) + 1
    assert sources[after] == f"{grading_mode.NOTEBOOK}().check('q2')\n" and is_kit_cell(nb.cells[after])
    assert "check_if_not_already_checked" in sources[-2] and str(tests.resolve() / "q1.py") in sources[-2]
    assert sources[-1] == "__fashion_kit_checkpoint__(None, '')", "the trail is written after the last checks"


def test_every_cell_runs_over_unix_sockets_and_no_output_is_kept(tmp_path, capsys):
    # Deeper than a Unix socket's path may be (107 bytes), as an instructor's output folder can be.
    work, _, submission, _ = work_folder(tmp_path / ("deep-" * 12))
    home = work / contract.WORK_HOME
    nb = notebook("x = 2\nprint('x' * 100000)", "raise ValueError('a mistake in this cell')",
                  "import json, os\n"
                  "json.dump({'x': x, 'cwd': os.getcwd()}, open('after.json', 'w'))\n"
                  "import ipykernel.connect\n"
                  "json.dump({'file': ipykernel.connect.get_connection_file(),"
                  " **json.load(open(ipykernel.connect.get_connection_file()))}, open('connection.json', 'w'))")
    phase1.execute(nb, submission, home)
    assert psutil.Process().children() == [], "the kernel is shut down"
    after = json.loads((submission / "after.json").read_text())
    assert after["x"] == 2 and Path(after["cwd"]) == submission, "the cell after the error ran, in the submission"
    connection = json.loads((submission / "connection.json").read_text())
    assert connection["transport"] == "ipc"
    assert (submission / connection["ip"]).resolve() == (home / phase1.SOCKETS).resolve()
    assert connection["file"] == str(home / phase1.CONNECTION_FILE)
    assert all(cell.get("outputs", []) == [] for cell in nb.cells), "no output is kept"
    logged = capsys.readouterr().out
    assert "ValueError: a mistake in this cell" in logged and "x" * 1000 not in logged


def test_the_checks_run_in_the_kernel_where_they_are_placed_and_the_rest_at_the_end(tmp_path):
    work, tests, submission, evidence = work_folder(tmp_path, q1=1, q2=2, q3=1)
    graded_here = nbformat.v4.new_markdown_cell("q3 is checked here")
    graded_here.metadata["otter"] = {"tests": ["q3"]}
    nb = notebook("import otter\ngrader = otter.Notebook()", "x = 2", 'grader.check("q2")', graded_here,
                  "x = -1", "grader.check_all()")
    in_place.apply(nb)
    grading_mode.check_the_rest(nb, tests)
    checkpoints.apply(nb, evidence)
    grading_mode.enter(nb, tests, submission)
    phase1.execute(nb, submission, work / contract.WORK_HOME)
    assert json.loads((evidence / contract.RUNNING_FILE).read_text()) == {"cell": None, "first_line": ""}


def test_a_notebook_for_another_assignment_is_not_run(tmp_path):
    work, _, submission, evidence = work_folder(tmp_path)
    nb = notebook("open('ran.txt', 'w').write('1')")
    nb.metadata["otter"] = {"assignment_name": "hw03_regression"}
    nbformat.write(nb, str(submission / contract.NOTEBOOK))
    assert phase1.main(str(work), "42", "fashion_mnist") == 0
    message = json.loads((evidence / contract.REFUSED_FILE).read_text(encoding="utf-8"))["message"]
    assert "Received submission for assignment 'hw03_regression' (this is assignment 'fashion_mnist')" in message
    assert not (submission / "ran.txt").exists()
    nbformat.write(nb, str(submission / "copy.ipynb"))
    assert phase1.find_notebook(submission) == (None, "More than one .ipynb file found in submission")
