"""Both solution notebooks run top to bottom in a real Jupyter kernel, as a student runs them, and
every picture cell draws its picture (saved as PNG files under the test's temporary folder)."""

import base64
import importlib.util
import os
import shutil
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbclient
import pytest

from fashion_kit import assign, data, notebooks, paths

# What the notebook prints when a picture could not be drawn or lacks its Chinese font.
PICTURE_FAILED = "This picture needs your answers above"
NO_CJK_FONT = "No Chinese font found"
MISSING_GLYPH = "missing from font"
PICTURE_CELL = "with picture():"


def execute(lang: str, workdir: Path):
    """Run solutions/<lang> in its own folder, under the file name Otter expects."""
    workdir.mkdir(parents=True)
    target = workdir / assign.NOTEBOOK
    shutil.copy(paths.ROOT / "solutions" / lang / assign.NOTEBOOK, target)
    nb = notebooks.read(target)
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    return nb


@pytest.fixture(scope="module")
def executed(data_dir, tmp_path_factory):
    data.ensure()
    root = tmp_path_factory.mktemp("executed")
    with ThreadPoolExecutor(max_workers=len(notebooks.LANGUAGES)) as pool:
        futures = {lang: pool.submit(execute, lang, root / lang) for lang in notebooks.LANGUAGES}
        return {lang: future.result() for lang, future in futures.items()}


def text_outputs(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif "text/plain" in out.get("data", {}):
            parts.append(out.data["text/plain"])
    return "".join(parts)


def save_pictures(nb, folder: Path) -> dict[int, list[Path]]:
    """Every PNG the notebook displayed, written to ``folder``, by cell index."""
    folder.mkdir(parents=True, exist_ok=True)
    saved = {}
    for i, cell in enumerate(nb.cells):
        for k, out in enumerate(cell.get("outputs", [])):
            png = out.get("data", {}).get("image/png")
            if png:
                path = folder / f"cell{i:03d}-{k}.png"
                path.write_bytes(base64.b64decode(png))
                saved.setdefault(i, []).append(path)
    return saved


@pytest.mark.slow
@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_solution_runs_top_to_bottom_and_draws_every_picture(executed, lang, tmp_path_factory):
    nb = executed[lang]
    folder = Path(os.environ.get("FASHION_KIT_PICTURES_DIR") or tmp_path_factory.mktemp("pictures")) / lang
    saved = save_pictures(nb, folder)
    picture_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and PICTURE_CELL in c.source]
    assert len(picture_cells) >= 6, "first image, grid, curves, predictions, confusion matrix, architecture"
    for i in picture_cells:
        output = text_outputs(nb.cells[i])
        assert PICTURE_FAILED not in output, f"cell {i} could not draw its picture:\n{output}"
        assert i in saved, f"cell {i} drew no image:\n{nb.cells[i].source}"
    for paths_ in saved.values():
        for path in paths_:
            assert path.is_file() and path.stat().st_size > 1000, f"{path} is empty"


@pytest.mark.slow
@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_grader_checks_pass_in_the_kernel(executed, lang):
    nb = executed[lang]
    checks = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("grader.check(")]
    assert checks, "the notebook has no grader.check cells"
    for cell in checks:
        shown = "".join(str(out.get("data", {}).get("text/plain", "")) + str(out.get("data", {}).get("text/html", ""))
                        for out in cell.outputs)
        assert "passed" in shown.lower() and "failed" not in shown.lower(), f"{cell.source}: {shown[:500]}"


@pytest.mark.slow
def test_chinese_pictures_use_a_chinese_font(executed):
    if importlib.util.find_spec("noto_cjk_sans_otc") is None:
        pytest.skip("no CJK font package installed (pip install -e '.[dev]' brings noto-cjk-sans-otc)")
    everything = "".join(text_outputs(c) for c in executed["zh-TW"].cells)
    assert NO_CJK_FONT not in everything
    assert MISSING_GLYPH not in everything, "matplotlib drew boxes for characters its fonts lack"


@pytest.mark.slow
def test_english_pictures_need_no_chinese_font(executed):
    everything = "".join(text_outputs(c) for c in executed["en"].cells)
    assert NO_CJK_FONT not in everything and MISSING_GLYPH not in everything


@pytest.mark.slow
@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_challenge_does_not_train_unless_switched_on(executed, lang):
    cell = next(c for c in executed[lang].cells if "class TimeBudget" in c.source)
    assert "RUN_CHALLENGE is False" in text_outputs(cell)


def helpers_source() -> str:
    master = notebooks.read(paths.MASTER)
    return next(c.source for c in master.cells if c.cell_type == "code" and "def find_cjk_font" in c.source)


def render_with_helpers(lang: str, text: str) -> tuple[dict, list[str]]:
    """Run the notebook's picture helpers, draw ``text`` as a title, and return the helpers'
    namespace and matplotlib's warnings (a missing glyph is drawn as a box and warned about)."""
    import matplotlib
    import matplotlib.pyplot as plt
    import numpy as np

    matplotlib.use("Agg")
    env = {"LANG": lang, "plt": plt, "np": np}
    with matplotlib.rc_context(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(helpers_source(), env)
        fig = plt.figure()
        plt.title(env["say"](text, "English"))
        fig.canvas.draw()
        plt.close(fig)
    return env, [str(w.message) for w in caught]


def test_chinese_labels_render_with_a_cjk_font():
    if importlib.util.find_spec("noto_cjk_sans_otc") is None:
        pytest.skip("no CJK font package installed (pip install -e '.[dev]' brings noto-cjk-sans-otc)")
    env, caught = render_with_helpers("zh-TW", "短靴 T 恤／上衣 準確率")
    assert env["CJK_FONT"], "the helpers found no CJK font although noto-cjk-sans-otc is installed"
    assert env["label_names"]()[9] == "短靴"
    assert not [w for w in caught if MISSING_GLYPH in w], caught


def test_pictures_fall_back_to_english_without_a_cjk_font(monkeypatch):
    from matplotlib import font_manager

    # A computer with no Chinese font: only matplotlib's own DejaVu fonts, no font package.
    monkeypatch.setitem(sys.modules, "noto_cjk_sans_otc", None)
    monkeypatch.setattr(font_manager.fontManager, "ttflist",
                        [f for f in font_manager.fontManager.ttflist if f.name.startswith("DejaVu")])
    monkeypatch.setattr(font_manager.fontManager, "addfont", lambda path: None)
    env, caught = render_with_helpers("zh-TW", "短靴")
    assert env["CJK_FONT"] is None
    assert env["say"]("短靴", "Ankle boot") == "Ankle boot"
    assert env["label_names"]() == [str(i) for i in range(10)], "without class_names: the label numbers"
    env["class_names"] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "Ankle boot"]
    assert env["label_names"]()[9] == "Ankle boot"
    assert not [w for w in caught if MISSING_GLYPH in w], caught


def test_picture_cells_say_what_is_missing_instead_of_failing(capsys):
    import matplotlib

    matplotlib.use("Agg")
    env, _ = render_with_helpers("en", "x")
    with env["picture"]():
        env["plot_history"](history)  # noqa: F821  (question 6 not done yet)
    assert PICTURE_FAILED in capsys.readouterr().out


def test_checks_work_on_colab(tmp_path, monkeypatch):
    """On Colab the notebook is not on disk and Otter refuses tests stored in its metadata: the first
    cell fetches the notebook from Colab's front end and writes the tests as files, which Otter
    accepts there. Colab is simulated: its shell's name and its front-end request."""
    import json
    import types

    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager
    from otter.check import utils as otter_utils

    student = notebooks.read(paths.ROOT / "student" / "en" / assign.NOTEBOOK)
    init = next(c.source for c in student.cells if c.cell_type == "code" and "otter.Notebook(" in c.source)

    class ColabShell:
        def __str__(self):
            return "<google.colab._shell.Shell object>"

    message = types.ModuleType("google.colab._message")
    message.blocking_request = lambda kind, request="", timeout_sec=5: (
        {"ipynb": json.loads(nbformat.writes(student))} if kind == "get_ipynb" else None)
    colab = types.ModuleType("google.colab")
    colab._message = message
    google = types.ModuleType("google")
    google.colab = colab
    for name, module in (("google", google), ("google.colab", colab), ("google.colab._message", message)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(otter_utils, "get_ipython", ColabShell)
    monkeypatch.chdir(tmp_path)

    env = {"get_ipython": ColabShell}
    exec(TransformerManager().transform_cell(init), env)
    grader = env["grader"]
    assert grader.interpreter is otter_utils.IPythonInterpreter.COLAB
    assert sorted(p.stem for p in (tmp_path / "tests").glob("*.py")) == sorted(student.metadata.otter.tests)

    env["class_names"] = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    exec('result = grader.check("q2_class_names")', env)
    assert env["result"].grade == 1, env["result"]
    env["class_names"] = ["?"] * 10
    exec('result = grader.check("q2_class_names")', env)
    assert env["result"].grade < 1
    with pytest.raises(RuntimeError, match="Colab"):
        grader.export()  # why the notebook tells Colab students to download the .ipynb instead
