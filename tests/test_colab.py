"""Run all on a stand-in for Google Colab: Colab's Python (3.12) and its pinned TensorFlow, Keras,
IPython, ipykernel and ipywidgets, a kernel whose shell is named like Colab's, and a stand-in
``google.colab._message`` that hands the open notebook to the first cell as Colab's front end does.
Otter is not installed beforehand: the first cell installs it, as on Colab.

Each answer key (the student notebook with every blank filled) runs top to bottom with nbclient;
no cell may end in an error, every check passes in the notebook's words, the export cell explains
Colab's download, and ipywidgets keeps Colab's version.

Colab's packages live in a venv cached outside the clone, under ~/.cache/fashion-kit (or
$XDG_CACHE_HOME/fashion-kit), made once per machine for each set of pins and Python (a few minutes);
each run adds a fresh small venv on top of it, so Otter's install is really tested each time.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import nbclient
import pytest

from fashion_kit import assign, data, notebooks, paths

from .conftest import cached_environment
from .test_notebooks import assert_check_passed

# What Colab runs (its Python and the versions it pins of the packages the notebook meets).
COLAB_PYTHON = "3.12"
COLAB_PINS = ["tensorflow==2.19.0", "keras==3.10.0", "ipython==7.34.0", "ipykernel==6.17.1",
              "ipywidgets==7.7.1", "matplotlib==3.10.0", "numpy==2.0.2", "pandas==2.2.2",
              "nbformat==5.10.4", "nbconvert==7.16.6", "jupyter-client==8.6.3", "requests==2.32.3",
              "Jinja2==3.1.6", "PyYAML==6.0.2", "packaging==24.2"]

pytestmark = pytest.mark.slow

# google.colab as far as the notebook meets it: the shell's class name (Otter and the first cell
# recognise Colab by it) and the front-end request for the open notebook.
# google stays a namespace package (no __init__.py), as on Colab: google.protobuf lives there too.
STAND_IN = {
    "google/colab/__init__.py": "",
    "google/colab/_shell.py": textwrap.dedent("""
        from ipykernel.zmqshell import ZMQInteractiveShell


        class Shell(ZMQInteractiveShell):
            pass
    """),
    "google/colab/_message.py": textwrap.dedent("""
        import json
        import os


        def blocking_request(request_type, request="", timeout_sec=5, parent=None):
            if request_type != "get_ipynb":
                raise ValueError(f"the stand-in answers get_ipynb only, not {request_type!r}")
            with open(os.environ["COLAB_STAND_IN_NOTEBOOK"], encoding="utf-8") as f:
                return {"ipynb": json.load(f)}
    """),
    "google/colab/_kernel_launcher.py": textwrap.dedent("""
        from ipykernel.ipkernel import IPythonKernel
        from ipykernel.kernelapp import IPKernelApp
        from traitlets import Type

        from google.colab._shell import Shell


        class Kernel(IPythonKernel):
            shell_class = Type(Shell)


        IPKernelApp.launch_instance(kernel_class=Kernel)
    """),
}


def colab_python() -> str:
    """A Python 3.12: FASHION_KIT_PYTHON312, python3.12 on PATH, or one of pyenv's."""
    candidates = [os.environ.get("FASHION_KIT_PYTHON312"), shutil.which(f"python{COLAB_PYTHON}")]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{COLAB_PYTHON}.*/bin/python{COLAB_PYTHON}")))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys, venv; print(sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == str(tuple(int(p) for p in COLAB_PYTHON.split("."))):
            return candidate
    pytest.skip(f"the Colab-like test needs Python {COLAB_PYTHON} (Colab's): none found on PATH or under "
                f"~/.pyenv; set FASHION_KIT_PYTHON312 to one")


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python*/site-packages"))


def run(*command, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def colab_packages() -> Path:
    """The venv with Colab's pinned packages, cached per machine and keyed by the pins and the Python.

    The venv is built under a temporary name and then renamed, so its own scripts name a folder that
    is gone; nothing runs them: each run's venv reads only its site-packages (see colab_kernel)."""
    python = colab_python()
    identity = run(python, "-c", "import sys; print(sys.version); print(sys.base_prefix)").stdout

    def build(venv: Path) -> None:
        run(python, "-m", "venv", venv)
        run(venv / "bin" / "python", "-m", "pip", "install", "-q", *COLAB_PINS, timeout=3600)

    return cached_environment("colab-like", [identity, COLAB_PINS], build)


@pytest.fixture
def colab_kernel(colab_packages, tmp_path, monkeypatch) -> tuple[str, Path]:
    """A kernel named colab-like: a fresh venv on top of Colab's packages, without Otter, with the
    stand-in google.colab; its Python."""
    venv = tmp_path / "venv"
    run(colab_python(), "-m", "venv", venv)
    stand_in = tmp_path / "stand-in"
    for name, source in STAND_IN.items():
        (stand_in / name).parent.mkdir(parents=True, exist_ok=True)
        (stand_in / name).write_text(source, encoding="utf-8")
    (site_packages(venv) / "colab_like.pth").write_text(f"{stand_in}\n{site_packages(colab_packages)}\n")
    python = venv / "bin" / "python"
    probe = run(python, "-c", "import importlib.util as u; print(u.find_spec('otter') is None, u.find_spec('tensorflow') is not None)")
    assert probe.stdout.split() == ["True", "True"], "Colab's packages, and no Otter yet"
    spec = tmp_path / "jupyter" / "kernels" / "colab-like"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "google.colab._kernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "colab-like", python


def errors_in(nb) -> list[str]:
    return [f"cell {i}: {out.get('ename')}: {out.get('evalue')}" for i, cell in enumerate(nb.cells)
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]


def text_of(cell) -> str:
    return "".join(out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
                   for out in cell.get("outputs", []))


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_run_all_on_colab_ends_without_an_error(colab_kernel, data_dir, lang, tmp_path, monkeypatch):
    kernel_name, python = colab_kernel
    monkeypatch.setenv("KERAS_HOME", os.environ.get("KERAS_HOME") or str(paths.ROOT / ".cache" / "keras"))
    data.ensure()  # the data set in Keras's cache, where load_data() finds it offline
    content = tmp_path / "content"  # Colab's working folder
    content.mkdir()
    key = paths.ROOT / "solutions" / lang / assign.NOTEBOOK
    monkeypatch.setenv("COLAB_STAND_IN_NOTEBOOK", str(key))
    nb = notebooks.read(key)
    client = nbclient.NotebookClient(nb, timeout=1800, kernel_name=kernel_name, allow_errors=True,
                                     resources={"metadata": {"path": str(content)}})
    client.execute()

    assert not errors_in(nb), "Run all ended in errors on Colab:\n" + "\n".join(errors_in(nb))
    everything = "".join(text_of(c) for c in nb.cells)
    assert "TensorFlow 2.19.0 / Keras 3.10.0" in everything, "Colab's own TensorFlow and Keras were used"
    first = text_of(nb.cells[next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")])
    assert ("不需要重新啟動" if lang == "zh-TW" else "no restart") in first, "a word on pip's restart note"
    checks = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("grader.check")]
    assert len(checks) >= 10
    for cell in checks:
        assert_check_passed(cell, lang)
    export = next(c for c in nb.cells if c.cell_type == "code" and "grader.export(" in c.source)
    assert "File > Download > Download .ipynb" in text_of(export) or "檔案 > 下載 > 下載 .ipynb" in text_of(export)
    assert sorted(p.stem for p in (content / "tests").glob("*.py")) == sorted(nb.metadata.otter.tests)
    widgets = run(python, "-c", "import ipywidgets; print(ipywidgets.__version__)").stdout.strip()
    assert widgets == "7.7.1", f"installing Otter upgraded Colab's ipywidgets to {widgets}"
