"""Shared fixtures: one build per test session, and notebooks graded in parallel, once each.

The tests mirror the package: tests/grading/ holds the grading core's (fashion_kit.grading),
tests/classroom/ the class tooling's (fashion_kit.classroom), and tests/ itself the rest (the build,
the notebooks, the registry, the settings, the command line)."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fashion_kit import assign, contract, data, notebooks, paths, questions, run
from fashion_kit.grading import core, layout
from fashion_kit.questions import layout as question_layout

from . import gradescope_spec

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist"
# Two gradings at once fill both cores of the reference machine; more only adds memory.
GRADING_JOBS = int(os.environ.get("FASHION_KIT_TEST_JOBS", "2"))
# Every graded question and its points, as the master declares them.
QUESTIONS = questions.points_in_master(paths.MASTER)
# Their sum: full marks, as a gradebook writes it.
TOTAL = sum(QUESTIONS.values())
TOTAL_SHOWN = f"{TOTAL:g}"
# The tests' quick fit (fashion_kit.grading.cells.quick_fit), for gradings whose claim is not the
# accuracy: five optimizer steps instead of 9,375, graded by a copy of the session's zip whose q9
# threshold is what five such steps reach (0.55-0.61 for the lesson's model, measured; chance is 0.1).
QUICK_FIT_ENV = {core.QUICK_FIT_ENV: "1"}
QUICK_MIN_ACCURACY = 0.3


def pytest_configure(config):
    if not os.environ.get(data.ENV_VAR) and SHARED_DATA.is_dir():
        os.environ[data.ENV_VAR] = str(SHARED_DATA)
    # The suite keeps every core busy with several processes at once (pytest-xdist's workers, each
    # grader's pool): every TensorFlow process it starts, the gradings' (the core passes these on)
    # and the notebooks' kernels, gets one thread per pool, as the batch gives each of its gradings
    # its share of the cores. Pools of one thread per core each would only compete for them.
    for name, value in layout.thread_env(1).items():
        os.environ.setdefault(name, value)


def pytest_itemcollected(item):
    """The units pytest-xdist hands its workers (`make test` runs with ``--dist loadgroup``): the
    tests that grade through the session's grader are one unit, so each notebook is still graded
    once, by one worker's pool, while the other workers run the rest; a module whose tests share a
    fixture of module scope (a JupyterLab, a notebook run, an account) is one unit, so it is made
    once; every other test is a unit of its own. xdist hands out the largest units first. (Marked as
    each test is collected: xdist reads the marks in its own pytest_collection_modifyitems.)"""
    fixtures = getattr(item, "_fixtureinfo", None)
    defs = fixtures.name2fixturedefs.values() if fixtures is not None else ()
    if "grader" in getattr(item, "fixturenames", ()):
        item.add_marker(pytest.mark.xdist_group("grader"))
    elif any(d[-1].scope == "module" for d in defs if d):
        item.add_marker(pytest.mark.xdist_group(item.module.__name__))


def pytest_collection_modifyitems(items):
    """The tests marked ``waits`` first, then those that ask for the session's reference gradings
    (``core_submissions``: real training), then the rest in their order (a stable sort, the same on
    each worker). The waiting gradings idle for minutes until a time limit stops them, which costs
    nothing while the other workers keep the cores busy; at the end of the run it would leave them
    idle, as would the long gradings."""
    items.sort(key=lambda item: (item.get_closest_marker("waits") is None,
                                 "core_submissions" not in getattr(item, "fixturenames", ())))


@pytest.fixture(scope="session", autouse=True)
def every_results_json_follows_gradescope_spec(tmp_path_factory):
    """After the session, every results.json any test left under the session's temporary folder
    (the graders' output folders) must follow Gradescope's specification."""
    yield
    broken = {}
    for path in sorted(tmp_path_factory.getbasetemp().rglob("results.json")):
        try:
            found = gradescope_spec.problems(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as e:
            found = [f"not valid JSON: {e}"]
        if found:
            broken[str(path)] = found
    assert not broken, f"results.json files that break Gradescope's specification: {broken}"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    source = os.environ.get(data.ENV_VAR)
    if not source:
        pytest.skip(f"{data.ENV_VAR} is not set; the tests need the Fashion-MNIST files offline")
    return Path(source)


@pytest.fixture(scope="session")
def built(tmp_path_factory, data_dir) -> assign.BuildResult:
    """The assignment built from the master into a scratch copy of the layout (not the repo).

    Once per run: pytest-xdist's workers (`make test-fast`) share their run's folder, where the first
    worker to get here builds and the others wait for its build and read it."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return assign.build(root=tmp_path_factory.mktemp("kit"), verify=False, progress=lambda _: None)
    shared = tmp_path_factory.getbasetemp().parent  # the run's folder; each worker's is inside it
    done = shared / "kit.pickle"
    with open(shared / "kit.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            result = assign.build(root=shared / "kit", verify=False, progress=lambda _: None)
            done.write_bytes(pickle.dumps(result))
    return pickle.loads(done.read_bytes())


def cache_home() -> Path:
    """The kit's cache outside any clone: $XDG_CACHE_HOME/fashion-kit, else ~/.cache/fashion-kit."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # the XDG spec ignores a relative one
    return base / "fashion-kit"


def cached_environment(name: str, inputs, build) -> Path:
    """``cache_home()/<name>-<hash of inputs>``, made by ``build(folder)`` the first time.

    For what depends on its pins alone, never on the clone: every clone (CI clones afresh each run)
    reuses one build per machine, and new inputs make a new key, so a new build. ``build`` writes into
    a temporary sibling that is renamed into place only once it returns, so an interrupted build leaves
    nothing that looks finished (a failed build removes its own folder; a killed one's is removed by
    the next build). A lock makes a second run wait for the first's build instead of making its own."""
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]
    final = cache_home() / f"{name}-{key}"
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if this process dies
        if not final.is_dir():
            partial = final.parent / f".{final.name}.partial"
            shutil.rmtree(partial, ignore_errors=True)  # an interrupted build's, since no one holds the lock
            try:
                build(partial)
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                raise
            partial.rename(final)
    return final


def folder_entries(file_name: str, schema: dict, folders=None) -> list[tuple[Path, dict]]:
    """The entries of each question folder's ``file_name`` (``{"entries": [...]}``, checked against
    ``schema``), each with its folder; ``folders``: the registry's unless given."""
    import jsonschema

    found = []
    for folder in question_layout.folders() if folders is None else folders:
        path = folder / file_name
        if path.is_file():
            doc = json.loads(path.read_text(encoding="utf-8"))
            jsonschema.validate(doc, schema)
            found += [(folder, entry) for entry in doc["entries"]]
    return found


def unique_names(entries: list[dict], what: str) -> list[dict]:
    """``entries``, after making sure no two share a name (each names a test)."""
    names = [e["name"] for e in entries]
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"two {what} share each of these names: {twice}"
    return entries


def mutate(source: Path, target: Path, *edits: tuple[str, str]) -> Path:
    """Copy a notebook, replacing code; each ``old`` must occur, so a stale edit fails loudly."""
    nb = notebooks.read(source)
    for old, new in edits:
        cells = [c for c in nb.cells if c.cell_type == "code" and old in c.source]
        assert cells, f"{old!r} is not in {source}"
        for cell in cells:
            cell.source = cell.source.replace(old, new)
    target.parent.mkdir(parents=True, exist_ok=True)
    notebooks.write(nb, target)
    return target


def with_settings(autograder_zip: Path, target: Path, **fashion_kit) -> Path:
    """A copy of ``autograder_zip`` whose otter_config.json has ``fashion_kit`` settings changed."""
    with zipfile.ZipFile(autograder_zip) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            payload = src.read(info)
            if info.filename == "otter_config.json":
                config = json.loads(payload)
                config["fashion_kit"].update(fashion_kit)
                payload = json.dumps(config, indent=4).encode()
            dst.writestr(info, payload)
    return target


def _graded_and_checked(notebook, autograder_zip, out, env) -> run.Outcome:
    """Grade, then hold every results.json the suite produces to Gradescope's specification."""
    outcome = run.grade(notebook, autograder_zip, out, env=env)
    if outcome.results is not None:
        quick = (env or {}).get(core.QUICK_FIT_ENV) == "1"
        assert outcome.results["extra_data"].get(contract.QUICK_FIT_KEY, False) is quick, "the switch took effect"
        found = gradescope_spec.problems(outcome.results)
        assert not found, f"{notebook}: results.json breaks Gradescope's specification: {found}"
    return outcome


class Grader:
    """Grades submissions with the session's autograder, in parallel, each notebook only once."""

    def __init__(self, zip_path: Path, workdir: Path):
        self.zip_path, self.workdir = zip_path, workdir
        self._pool = ThreadPoolExecutor(max_workers=GRADING_JOBS)
        self._futures = {}

    def submit(self, name: str, notebook: Path, autograder_zip: Path | None = None, env: dict | None = None,
               quick: bool = False):
        """Queue ``notebook`` under ``name``; ``autograder_zip`` and ``env`` override the session's;
        ``quick``: with the tests' quick fit and the quick zip's threshold."""
        if name not in self._futures:
            out = self.workdir / name
            if quick:
                autograder_zip, env = self.quick_zip, {**(env or {}), **QUICK_FIT_ENV}
            self._futures[name] = self._pool.submit(
                _graded_and_checked, notebook, autograder_zip or self.zip_path, out, env
            )
        return self._futures[name]

    @functools.cached_property
    def quick_zip(self) -> Path:
        return with_settings(self.zip_path, self.workdir / "quick-autograder.zip", min_test_accuracy=QUICK_MIN_ACCURACY)

    def submit_call(self, name: str, fn, *args):
        """Queue any other grading job (``fn(*args)``) in the same pool, so it runs in parallel too."""
        if name not in self._futures:
            self._futures[name] = self._pool.submit(fn, *args)
        return self._futures[name]

    def __call__(self, name: str, notebook: Path | None = None) -> run.Outcome:
        return self.submit(name, notebook).result()


@pytest.fixture(scope="session")
def grader(built, tmp_path_factory) -> Grader:
    g = Grader(built.autograder_zip, tmp_path_factory.mktemp("graded"))
    yield g
    g._pool.shutdown(cancel_futures=True)


@pytest.fixture(scope="session")
def core_submissions(built, grader, tmp_path_factory) -> dict[str, Path]:
    """The notebooks the core grading tests need, all queued at once so they grade in parallel."""
    work = tmp_path_factory.mktemp("submissions")
    solution = built.solutions["zh-TW"]
    subs = {
        "solution-zh-TW": solution,
        "solution-en": built.solutions["en"],
        "blank": built.student["zh-TW"],
        "dense64": mutate(solution, work / "dense64.ipynb", ("Dense(128", "Dense(64")),
    }
    # The English solution is the run's one reference grading with the lesson's real training; the
    # Chinese one proves its notebook grades the same, which the quick fit proves as well.
    for name, path in subs.items():
        grader.submit(name, path, quick=name == "solution-zh-TW")
    grader.submit_call("otter-run-solution", plain_otter_run, subs["solution-en"], built.autograder_zip,
                       work / "otter-run")
    return subs


def plain_otter_run(notebook: Path, autograder_zip: Path, out: Path) -> dict:
    """Otter's own `otter run` on the zip, with none of the kit's runner around it; its results.json."""
    out.mkdir(parents=True, exist_ok=True)
    otter = Path(sys.executable).parent / "otter"
    proc = subprocess.run([str(otter), "run", "-a", str(autograder_zip), "-o", str(out), str(notebook)],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "results.json").read_text(encoding="utf-8"))
