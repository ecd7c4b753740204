"""Both answer keys run top to bottom in a real Jupyter kernel, as a student runs them, and every
picture cell draws its picture (saved as PNG files under the test's temporary folder). The zh-TW
notebook finds or installs a CJK font, and its pictures are drawn with it."""

import base64
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import warnings
import zipfile
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
KERAS_INPUT_WARNING = "Do not pass an `input_shape`"


# What a check shows when it passes or fails, in each notebook's language (the first cell's WORDS).
PASSED = {"zh-TW": "通過了！", "en": "passed!"}
NOT_PASSED = {"zh-TW": "還沒通過", "en": "did not pass"}
# Otter's own English words, which the zh-TW notebook must never show.
OTTER_WORDS = re.compile(r"passed!|results:|Test case|All test cases|failed|exported|Click")


def check_outputs(cell) -> str:
    """What a grader.check cell displayed (plain text and HTML)."""
    return "".join(str(out.get("data", {}).get("text/plain", "")) + str(out.get("data", {}).get("text/html", ""))
                   for out in cell.get("outputs", []))


def assert_check_passed(cell, lang: str) -> None:
    shown = check_outputs(cell)
    assert PASSED[lang] in shown and NOT_PASSED[lang] not in shown and "❌" not in shown, f"{cell.source}: {shown[:800]}"
    if lang == "zh-TW":
        assert not OTTER_WORDS.search(shown), f"{cell.source} shows Otter's English words: {shown[:800]}"


def execute(lang: str, workdir: Path):
    """Run solutions/<lang> (the answer key) on its own, in its own folder, under the file name
    Otter expects: its grader.check cells find the public tests in its own metadata."""
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
    assert len(picture_cells) >= 7, "first image, grid, curves, predictions, probabilities, confusion matrix, architecture"
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
    checks = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("grader.check")]
    assert len(checks) >= 10, "the notebook's grader.check cells and its check_all cell"
    for cell in checks:
        assert_check_passed(cell, lang)


@pytest.mark.slow
def test_chinese_pictures_use_a_chinese_font(executed):
    if importlib.util.find_spec("noto_cjk_sans_otc") is None:
        pytest.skip("no CJK font package installed (pip install -e '.[dev]' brings noto-cjk-sans-otc)")
    everything = "".join(text_outputs(c) for c in executed["zh-TW"].cells)
    assert NO_CJK_FONT not in everything
    assert MISSING_GLYPH not in everything, "matplotlib drew boxes for characters its fonts lack"


@pytest.mark.slow
@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_the_keras_input_warning_is_explained_and_quiet(executed, lang):
    nb = executed[lang]
    everything = "".join(text_outputs(c) for c in nb.cells)
    assert KERAS_INPUT_WARNING not in everything, "Keras 3's input_shape warning reached the student"
    assert "Flatten(input_shape=(28, 28))" in "".join(c.source for c in nb.cells), "the tutorial's line stays"


@pytest.mark.slow
def test_english_pictures_need_no_chinese_font(executed):
    everything = "".join(text_outputs(c) for c in executed["en"].cells)
    assert NO_CJK_FONT not in everything and MISSING_GLYPH not in everything


@pytest.mark.slow
@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_challenge_does_not_train_unless_switched_on(executed, lang):
    cell = next(c for c in executed[lang].cells if "class TimeBudget" in c.source)
    assert "RUN_CHALLENGE is False" in text_outputs(cell)


def helpers_source(lang: str = "en") -> str:
    """The picture helpers as ``lang``'s student notebook has them."""
    nb = notebooks.read(paths.ROOT / "student" / lang / assign.NOTEBOOK)
    return next(c.source for c in nb.cells if c.cell_type == "code" and "def say(" in c.source)


def font_setup_source() -> str:
    """The part of the zh-TW notebook's first cell that finds, or installs, a CJK font."""
    first = next(c.source for c in notebooks.read(paths.MASTER).cells if c.cell_type == "code")
    start = first.rindex("# BEGIN zh-TW", 0, first.index("def find_cjk_font"))
    block = first[start + len("# BEGIN zh-TW"):first.index("# END zh-TW", start)]
    assert "def find_cjk_font" in block
    return "import importlib.util\nimport sys\n" + notebooks.code_for_language(block, "zh-TW")


class Shell:
    """Stands in for IPython: records the %pip lines a cell runs instead of running them."""

    def __init__(self):
        self.magics = []

    def run_line_magic(self, name, line, _stack_depth=1):
        self.magics.append(f"%{name} {line}")

    def __str__(self):
        return "<ipykernel.zmqshell.ZMQInteractiveShell>"


def helpers_environment(lang: str, shell: Shell | None = None) -> dict:
    """The namespace of ``lang``'s notebook after its font set-up (zh-TW) and picture helpers ran."""
    import matplotlib
    import matplotlib.pyplot as plt
    import numpy as np
    from IPython.core.inputtransformer2 import TransformerManager

    matplotlib.use("Agg")
    shell = shell or Shell()
    env = {"LANG": lang, "plt": plt, "np": np, "get_ipython": lambda: shell}
    if lang == "zh-TW":
        exec(TransformerManager().transform_cell(font_setup_source()), env)
    exec(helpers_source(lang), env)
    return env


def render_with_helpers(lang: str, text: str, shell: Shell | None = None) -> tuple[dict, list[str]]:
    """Run the notebook's font set-up and picture helpers, draw ``text`` as a title, and return the
    helpers' namespace and matplotlib's warnings (a missing glyph is drawn as a box and warned about)."""
    import matplotlib
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = helpers_environment(lang, shell)
        fig = plt.figure()
        plt.title(env["say"](text, "English"))
        fig.canvas.draw()
        plt.close(fig)
    return env, [str(w.message) for w in caught]


def test_chinese_labels_render_with_a_cjk_font():
    if importlib.util.find_spec("noto_cjk_sans_otc") is None:
        pytest.skip("no CJK font package installed (pip install -e '.[dev]' brings noto-cjk-sans-otc)")
    shell = Shell()
    env, caught = render_with_helpers("zh-TW", "短靴 T 恤／上衣 準確率", shell)
    assert env["CJK_FONT"], "the helpers found no CJK font although noto-cjk-sans-otc is installed"
    assert not shell.magics, "a CJK font is there: the first cell must install nothing"
    assert env["label_names"]()[9] == "短靴"
    assert not [w for w in caught if MISSING_GLYPH in w], caught


def without_cjk_fonts(monkeypatch):
    """A computer with no Chinese font: only matplotlib's own DejaVu fonts, no font package."""
    from matplotlib import font_manager

    monkeypatch.setitem(sys.modules, "noto_cjk_sans_otc", None)
    monkeypatch.setattr(font_manager.fontManager, "ttflist",
                        [f for f in font_manager.fontManager.ttflist if f.name.startswith("DejaVu")])
    monkeypatch.setattr(font_manager.fontManager, "addfont", lambda path: None)


def test_without_a_cjk_font_the_first_cell_installs_the_pinned_one(monkeypatch, capsys):
    without_cjk_fonts(monkeypatch)
    shell = Shell()
    helpers_environment("zh-TW", shell)
    assert shell.magics == ["%pip install -q noto-cjk-sans-otc==0.0.1"]
    assert "noto-cjk-sans-otc==0.0.1" in (paths.ROOT / "constraints.txt").read_text(), "the same pin as the kit's"
    assert "安裝" in capsys.readouterr().out, "the cell says, in Chinese, that it installs a font"


def test_the_english_notebook_installs_no_font(monkeypatch):
    without_cjk_fonts(monkeypatch)
    shell = Shell()
    env = helpers_environment("en", shell)
    assert not shell.magics and env["CJK_FONT"] is None


def test_pictures_fall_back_to_english_when_no_font_could_be_installed(monkeypatch):
    without_cjk_fonts(monkeypatch)  # and the install does nothing: offline, say
    env, caught = render_with_helpers("zh-TW", "短靴")
    assert env["CJK_FONT"] is None
    assert env["say"]("短靴", "Ankle boot") == "Ankle boot"
    assert env["label_names"]() == [str(i) for i in range(10)], "without class_names: the label numbers"
    env["class_names"] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "Ankle boot"]
    assert env["label_names"]()[9] == "Ankle boot"
    assert not [w for w in caught if MISSING_GLYPH in w], caught


# Run in a fresh virtual environment: the zh-TW first cell's font set-up, the picture helpers, and a
# Chinese title; prints what matplotlib resolved for each Chinese character.
FRESH_VENV_SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    import matplotlib
    matplotlib.use("Agg")
    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib.font_manager import FontProperties, fontManager
    from matplotlib.ft2font import FT2Font

    font_setup, helpers, text = json.load(open(sys.argv[1], encoding="utf-8"))
    system_cjk_font = any("CJK" in f.name or " TC" in f.name for f in fontManager.ttflist)
    shell = InteractiveShell.instance()
    for source in (font_setup, 'LANG = "zh-TW"\\nimport numpy as np\\nimport matplotlib.pyplot as plt', helpers):
        result = shell.run_cell(source)
        if not result.success:
            raise SystemExit(f"the cell failed: {result.error_in_exec or result.error_before_exec}")
    ns = shell.user_ns
    plt = ns["plt"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plt.figure()
        plt.title(ns["say"](text, "English"))
        fig.canvas.draw()
    candidates = fontManager._find_fonts_by_props(FontProperties(family=plt.rcParams["font.family"]))

    def drawn_with(character):
        for candidate in candidates:  # a FontPath (file and face of a collection), or a file name
            face = getattr(candidate, "face_index", 0)
            font = FT2Font(getattr(candidate, "path", candidate), face_index=face)
            if ord(character) in font.get_charmap():
                return font.family_name
        return None

    print("RESULT " + json.dumps({
        "cjk_font": ns["CJK_FONT"],
        "system_cjk_font": system_cjk_font,
        "font_package": __import__("importlib").util.find_spec("noto_cjk_sans_otc") is not None,
        "fonts": {c: drawn_with(c) for c in text if not c.isspace() and ord(c) > 0x2e80},
        "warnings": [str(w.message) for w in caught],
    }, ensure_ascii=False))
""")


@pytest.mark.slow
def test_a_fresh_environment_gets_a_cjk_font_from_the_first_cell(tmp_path):
    """No dev extras, no CJK font: the zh-TW first cell installs the pinned font package itself, and
    matplotlib then draws every Chinese character of a title with that font, without warnings."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-c", str(paths.ROOT / "constraints.txt"),
         "matplotlib", "ipython"], capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    probe = subprocess.run([str(python), "-c", "import noto_cjk_sans_otc"], capture_output=True)
    assert probe.returncode != 0, "the fresh environment must start without the font package"
    text = "短靴 準確率 第幾輪訓練"
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps([font_setup_source(), helpers_source("zh-TW"), text]), encoding="utf-8")
    script = tmp_path / "draw.py"
    script.write_text(FRESH_VENV_SCRIPT, encoding="utf-8")
    run = subprocess.run([str(python), str(script), str(inputs)], capture_output=True, text=True,
                         timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(run.stdout.split("RESULT ", 1)[1])
    if not result["system_cjk_font"]:  # a machine with a CJK font of its own needs no install
        assert "安裝 Noto Sans CJK 字型" in run.stdout, "the cell says in Chinese that it installs a font"
        assert result["cjk_font"] and result["font_package"], result
    assert result["cjk_font"], result
    assert all(font == result["cjk_font"] for font in result["fonts"].values()), result["fonts"]
    assert not [w for w in result["warnings"] if MISSING_GLYPH in w or "Glyph" in w], result["warnings"]


def test_picture_cells_say_what_is_missing_instead_of_failing(capsys):
    import matplotlib

    matplotlib.use("Agg")
    env, _ = render_with_helpers("en", "x")
    with env["picture"]():
        env["plot_history"](history)  # noqa: F821  (question 6 not done yet)
    assert PICTURE_FAILED in capsys.readouterr().out


class StandInShell:
    """What the first cell needs of IPython (display formatters, events), with the shell's name of a
    plain Jupyter kernel or of Colab's."""

    def __init__(self, colab: bool):
        from IPython.core.interactiveshell import InteractiveShell

        real = InteractiveShell.instance()
        self.display_formatter, self.events, self.colab = real.display_formatter, real.events, colab
        self.magics = []

    def run_line_magic(self, name, line, _stack_depth=1):
        self.magics.append(f"%{name} {line}")

    def set_custom_exc(self, exc_tuple, handler):
        self.custom_exceptions, self.custom_handler = exc_tuple, handler

    def showtraceback(self, exc_tuple=None, tb_offset=None):
        print(f"{exc_tuple[0].__name__}: {exc_tuple[1]}")

    def __str__(self):
        return "<google.colab._shell.Shell object>" if self.colab else "<ipykernel.zmqshell.ZMQInteractiveShell>"


def first_cell_environment(lang: str, folder: Path, monkeypatch, colab: bool = False,
                           saved_as: str = assign.NOTEBOOK) -> dict:
    """Run ``lang``'s student notebook's first cell in ``folder`` (with the notebook saved there as
    ``saved_as``, as in Jupyter, or fetched from a stand-in of Colab's front end), as a student's
    kernel would; its namespace. Whatever the cell installs into Otter and IPython is undone after
    the test."""
    import json
    import types

    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager
    from otter.check import utils as otter_utils
    from otter.test_files.exception_test import ExceptionTestFile

    student = notebooks.read(paths.ROOT / "student" / lang / assign.NOTEBOOK)
    init = next(c.source for c in student.cells if c.cell_type == "code")
    shell = StandInShell(colab)
    if colab:
        message = types.ModuleType("google.colab._message")
        message.blocking_request = lambda kind, request="", timeout_sec=5: (
            {"ipynb": json.loads(nbformat.writes(student))} if kind == "get_ipynb" else None)
        package = types.ModuleType("google.colab")
        package._message = message
        google = types.ModuleType("google")
        google.colab = package
        for name, module in (("google", google), ("google.colab", package), ("google.colab._message", message)):
            monkeypatch.setitem(sys.modules, name, module)
    else:
        notebooks.write(student, folder / saved_as)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setattr(otter_utils, "get_ipython", lambda: shell)
    monkeypatch.chdir(folder)
    monkeypatch.setattr(ExceptionTestFile, "_generate_error_message", ExceptionTestFile._generate_error_message)
    formatters = shell.display_formatter.formatters
    for mime in ("text/plain", "text/html"):
        monkeypatch.setattr(formatters[mime], "type_printers", dict(formatters[mime].type_printers))
    for event in ("pre_run_cell", "post_run_cell"):
        monkeypatch.setitem(shell.events.callbacks, event, list(shell.events.callbacks[event]))
    env = {"get_ipython": lambda: shell}
    exec(TransformerManager().transform_cell(init), env)
    env["shell"] = shell
    return env


def shown(env, value, mime: str = "text/plain") -> str:
    """What Jupyter displays for ``value`` (a check's result) in the kernel ``env`` came from."""
    data, _ = env["shell"].display_formatter.format(value, include=[mime])
    return data.get(mime, "")


def test_checks_work_on_colab(tmp_path, monkeypatch, capsys):
    """On Colab the notebook is not on disk and Otter refuses tests stored in its metadata: the first
    cell fetches the notebook from Colab's front end and writes the tests as files, which Otter
    accepts there. Colab is simulated: its shell's name and its front-end request."""
    from otter.check import utils as otter_utils

    env = first_cell_environment("en", tmp_path, monkeypatch, colab=True)
    student = notebooks.read(paths.ROOT / "student" / "en" / assign.NOTEBOOK)
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
    capsys.readouterr()
    assert grader.export(pdf=False) is None  # the export cell: no error on Colab, but the way to submit
    said = capsys.readouterr().out
    assert "File > Download > Download .ipynb" in said and "Gradescope" in said, said
    assert not list(tmp_path.glob("*.zip"))


TABLE = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.mark.parametrize("saved_as", ["fashion_mnist (1).ipynb", "Copy of fashion_mnist.ipynb"])
def test_a_renamed_notebooks_checks_and_export_work(saved_as, tmp_path, monkeypatch):
    """A second download or a copy has another file name: the checks read their tests from it all the
    same, and the export packs that file."""
    env = first_cell_environment("en", tmp_path, monkeypatch, saved_as=saved_as)
    env["class_names"] = list(TABLE)
    exec('result = grader.check("q2_class_names")', env)
    assert env["result"].passed_all
    env["display"] = lambda value: None
    exec("grader.export(pdf=False)", env)
    zips = list(tmp_path.glob("fashion_mnist_*.zip"))
    assert len(zips) == 1 and saved_as in zipfile.ZipFile(zips[0]).namelist()


def test_jupyters_own_name_for_the_notebook_wins_over_an_old_download(tmp_path, monkeypatch):
    (tmp_path / assign.NOTEBOOK).write_text("{}", encoding="utf-8")  # an old, broken download beside it
    env = first_cell_environment("en", tmp_path, monkeypatch, saved_as="fashion_mnist (2).ipynb")
    monkeypatch.setenv("JPY_SESSION_NAME", str(Path("course") / "fashion_mnist (2).ipynb"))
    assert env["this_notebook"]() == "fashion_mnist (2).ipynb"


def test_a_folder_without_the_notebook_says_so_in_the_notebooks_language(tmp_path, monkeypatch):
    env = first_cell_environment("zh-TW", tmp_path, monkeypatch)
    (tmp_path / assign.NOTEBOOK).unlink()
    with pytest.raises(FileNotFoundError, match="找不到這本筆記本的檔案"):
        env["this_notebook"]()


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_every_line_of_a_message_shows_in_the_notebooks_language(lang, tmp_path, monkeypatch):
    """Both image sets left unscaled: two messages, each "中文 / English". The en notebook shows each
    one's English only; zh-TW shows each Chinese line followed by its own English."""
    import numpy as np

    env = first_cell_environment(lang, tmp_path, monkeypatch)
    env["training_images"] = np.zeros((60000, 28, 28), dtype=np.uint8)
    env["test_images"] = np.zeros((10000, 28, 28), dtype=np.uint8)
    exec('result = grader.check("q3_normalize")', env)
    text = shown(env, env["result"])
    lines = [line.strip() for line in text.splitlines()[1:]]
    cjk = re.compile(r"[\u3400-\u9fff]")
    if lang == "en":
        assert len(lines) == 2 and not any(cjk.search(line) for line in lines), text
        assert lines[0].startswith("Expected training_images") and lines[1].startswith("Expected test_images"), text
    else:
        assert len(lines) == 4 and [bool(cjk.search(line)) for line in lines] == [True, False, True, False], text
        assert "training_images" in lines[0] and "training_images" in lines[1] and "test_images" in lines[2]
    html_text = shown(env, env["result"], "text/html")
    assert html_text.count("<p style='margin-left: 1.5em'>") == 2, html_text


def _ran(env, cell_id: str, code: str, error: Exception | None = None, value=None) -> None:
    """What IPython tells the first cell before and after a cell ran in Jupyter (the cell's id comes
    with it): ``error`` the cell raised, ``value`` its last expression's."""
    from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult

    info = ExecutionInfo(code, True, False, True, cell_id)
    env["shell"].events.trigger("pre_run_cell", info)
    result = ExecutionResult(info)
    result.error_in_exec, result.result = error, value
    env["shell"].events.trigger("post_run_cell", result)


def _answer_cell(folder: Path, starts: str):
    student = notebooks.read(folder / assign.NOTEBOOK)
    return student, next(c for c in student.cells if c.cell_type == "code" and c.source.startswith(starts))


RESTART = {"zh-TW": "Kernel > Restart Kernel and Run All Cells", "en": "Kernel > Restart Kernel and Run All Cells"}
ALL_PASSED = {"zh-TW": "全部的檢查都通過了", "en": "Every check passed"}


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_a_cell_edited_after_it_ran_is_no_pass(lang, tmp_path, monkeypatch):
    """Question 2's cell ran with the right names, then was edited and saved without running again:
    the grade runs the edited code, so neither the question's check nor check_all says passed; both
    say to save and restart and run all. Run again, the check passes."""
    from IPython.core.interactiveshell import ExecutionInfo

    env = first_cell_environment(lang, tmp_path, monkeypatch)
    student, answer = _answer_cell(tmp_path, "class_names = ")
    right = f"class_names = {TABLE!r}"
    _ran(env, answer.id, right)
    env["class_names"] = list(TABLE)
    answer.source = "class_names = []"  # edited after it ran, then saved (autosave or Ctrl+S)
    notebooks.write(student, tmp_path / assign.NOTEBOOK)
    later = os.path.getmtime(tmp_path / assign.NOTEBOOK) + 5
    os.utime(tmp_path / assign.NOTEBOOK, (later, later))
    check = next(c for c in student.cells if c.source.startswith('grader.check("q2_class_names")'))
    env["shell"].events.trigger("pre_run_cell", ExecutionInfo(check.source, True, False, True, check.id))
    exec('result = grader.check("q2_class_names")', env)
    text = shown(env, env["result"])
    assert not env["result"].passed_all and RESTART[lang] in text and "class_names = [" in text, text
    exec("results = grader.check_all()", env)
    summary = shown(env, env["results"])
    assert ALL_PASSED[lang] not in summary and RESTART[lang] in summary, summary

    _ran(env, answer.id, "class_names = []")  # run again: what ran is what is saved
    env["class_names"] = list(TABLE)
    exec('result = grader.check("q2_class_names")', env)
    assert env["result"].passed_all, shown(env, env["result"])


def test_a_cell_run_before_it_is_saved_still_passes_its_check(tmp_path, monkeypatch):
    """Typing, running and checking before the next save is the usual way: the check passes (the export
    and check_all still ask for a save)."""
    env = first_cell_environment("en", tmp_path, monkeypatch)
    _, answer = _answer_cell(tmp_path, "class_names = ")
    _ran(env, answer.id, f"class_names = {TABLE!r}")  # the file was saved before it ran
    env["class_names"] = list(TABLE)
    exec('result = grader.check("q2_class_names")', env)
    assert env["result"].passed_all, shown(env, env["result"])
    exec("results = grader.check_all()", env)
    assert "Save the notebook" in shown(env, env["results"])


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_a_blank_left_in_a_failed_cell_is_named(lang, tmp_path, monkeypatch):
    """Question 4 left as Sequential([...]): Keras refuses the ..., the cell fails and model never gets
    a value; the check says the ... is still to replace, not only that model has no value."""
    env = first_cell_environment(lang, tmp_path, monkeypatch)
    _, answer = _answer_cell(tmp_path, "model = tf.keras.models.Sequential(")
    assert "..." in answer.source
    _ran(env, answer.id, answer.source, error=ValueError("Only instances of `keras.Layer` can be added"))
    exec('result = grader.check("q4_model")', env)
    text = shown(env, env["result"])
    assert "model" in text and (("還是 ..." in text) if lang == "zh-TW" else ("model is still ..." in text)), text


class History:
    """What model.fit(...) returns, as far as the first cell reads it."""

    def __init__(self, steps, epochs, taken):
        import types

        self.params, self.history = {"steps": steps}, {"loss": [0.5] * epochs}
        self.model = types.SimpleNamespace(optimizer=types.SimpleNamespace(
            iterations=types.SimpleNamespace(numpy=lambda: taken)))


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_fit_run_again_says_training_goes_on(lang, tmp_path, monkeypatch, capsys):
    env = first_cell_environment(lang, tmp_path, monkeypatch)
    fit = "history = model.fit(training_images, training_labels, epochs=5)"
    capsys.readouterr()
    env["history"] = History(1875, 5, 1875 * 5)  # the first fit: nothing to say
    _ran(env, "fit-cell", fit)
    assert capsys.readouterr().out == ""
    env["history"] = History(1875, 5, 1875 * 6)  # after a 1-epoch fit
    _ran(env, "fit-cell", fit)
    said = capsys.readouterr().out
    assert "6" in said and ("第 4 題" in said if lang == "zh-TW" else "run question 4's cell again" in said), said


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_exporting_unsaved_work_makes_no_zip_and_says_how_to_save(lang, tmp_path, monkeypatch, capsys):
    env = first_cell_environment(lang, tmp_path, monkeypatch)
    env["display"] = lambda value: None
    student = notebooks.read(tmp_path / assign.NOTEBOOK)
    answer = next(c for c in student.cells if c.cell_type == "code" and c.source.startswith("class_names = "))
    _ran(env, answer.id, 'class_names = ["T-shirt/top", "Trouser"]')  # typed and run, never saved
    capsys.readouterr()
    exec("grader.export(pdf=False)", env)
    said = capsys.readouterr().out
    assert not list(tmp_path.glob("*.zip")), "no zip of the unsaved notebook"
    assert ("Ctrl+S" in said and "class_names" in said) and (("存檔" in said) if lang == "zh-TW" else ("Save" in said))

    answer.source = 'class_names = ["T-shirt/top", "Trouser"]'  # now saved
    notebooks.write(student, tmp_path / assign.NOTEBOOK)
    exec("grader.export(pdf=False)", env)
    assert len(list(tmp_path.glob("fashion_mnist_*.zip"))) == 1


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_a_typo_in_a_variables_name_is_pointed_out(lang, tmp_path, monkeypatch):
    """``trainig_images = training_images / 255.0``: the check sees the unscaled training_images and
    says so, and names the look-alike variable the student did set."""
    import numpy as np

    env = first_cell_environment(lang, tmp_path, monkeypatch)
    pixels = np.random.default_rng(0)
    env["training_images"] = pixels.integers(0, 256, (60000, 28, 28), dtype=np.uint8)
    env["trainig_images"] = env["training_images"] / 255.0
    env["test_images"] = pixels.integers(0, 256, (10000, 28, 28), dtype=np.uint8) / 255.0
    exec('result = grader.check("q3_normalize")', env)
    text = shown(env, env["result"])
    assert "trainig_images" in text and (("打錯字" in text) if lang == "zh-TW" else ("rename it to training_images" in text))
    env["training_images"] = env["trainig_images"]
    exec('result = grader.check("q3_normalize")', env)
    assert env["result"].passed_all, "a passing check says nothing of look-alike names"


def test_tensorflows_start_up_notes_are_turned_off_before_it_is_imported(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    first_cell_environment("en", tmp_path, monkeypatch)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_a_skipped_cell_is_named_by_the_name_error(lang, tmp_path, monkeypatch, capsys):
    """The drawing helpers' cell skipped: the picture cell's NameError says which cell defines picture
    (its number and title); a name no cell defines gets Python's error alone."""
    env = first_cell_environment(lang, tmp_path, monkeypatch)
    shell = env["shell"]
    student = notebooks.read(tmp_path / assign.NOTEBOOK)
    code = [c for c in student.cells if c.cell_type == "code"]
    helpers = next(i for i, c in enumerate(code, 1) if "def picture(" in c.source)
    assert NameError in shell.custom_exceptions
    capsys.readouterr()
    shell.custom_handler(shell, NameError, NameError("name 'picture' is not defined", name="picture"), None)
    said = capsys.readouterr().out
    title = "畫圖用的小工具" if lang == "zh-TW" else "Drawing helpers"
    assert f" {helpers} " in said and title in said and "picture" in said, said
    shell.custom_handler(shell, NameError, NameError("name 'trainig_images' is not defined", name="trainig_images"), None)
    assert capsys.readouterr().out.strip() == "NameError: name 'trainig_images' is not defined"


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_the_set_up_cell_asks_for_the_first_cell_when_it_did_not_run(lang, capsys):
    student = notebooks.read(paths.ROOT / "student" / lang / assign.NOTEBOOK)
    set_up = [c for c in student.cells if c.cell_type == "code"][1]
    asks = "第一個程式儲存格" if lang == "zh-TW" else "Run the first code cell"
    exec(set_up.source, {"grader": object()})
    assert asks not in capsys.readouterr().out
    exec(set_up.source, {})
    assert asks in capsys.readouterr().out


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_the_tensorflow_tutorials_names_get_rename_not_run_the_cell(lang, tmp_path, monkeypatch):
    """The TF tutorial's train_images instead of training_images: the cell ran fine, so the check says
    to rename it, not to run the cell again."""
    import numpy as np

    env = first_cell_environment(lang, tmp_path, monkeypatch)
    env["train_images"] = np.zeros((60000, 28, 28)) / 255.0
    env["test_images"] = np.zeros((10000, 28, 28)) / 255.0
    exec('result = grader.check("q3_normalize")', env)
    text = shown(env, env["result"])
    assert "train_images" in text and "training_images" in text, text
    assert ("還沒有值" not in text and "改成 training_images" in text) if lang == "zh-TW" else (
        "run the cell above" not in text and "rename it to training_images" in text), text


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_the_challenge_left_blank_or_without_return_says_what_to_change(lang, tmp_path, monkeypatch):
    env = first_cell_environment(lang, tmp_path, monkeypatch)

    def template():  # what Keras says of Sequential([...]), as the template is
        raise ValueError("Only instances of `keras.Layer` can be added to a Sequential model. Received: Ellipsis "
                         "(of type <class 'ellipsis'>)")

    with pytest.raises(ValueError, match="RUN_CHALLENGE") as blank:
        env["challenge_model_from"](template)
    assert "..." in str(blank.value) and "Keras.Layer" not in str(blank.value)
    with pytest.raises(TypeError, match="return model") as no_return:
        env["challenge_model_from"](lambda: None)
    assert "NoneType" in str(no_return.value)


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_one_hot_labels_in_a_picture_say_so(lang, capsys):
    import numpy as np

    env = helpers_environment(lang)
    env["training_labels"] = np.eye(10)[np.zeros(60000, dtype=int)]
    capsys.readouterr()
    with env["picture"]():
        env["show_training_grid"](np.zeros((60000, 28, 28)), env["training_labels"])
    said = capsys.readouterr().out
    assert "one-hot" in said and "(60000, 10)" in said and "to_categorical" in said, said


def test_cell_ids_that_are_not_the_files_compare_nothing(tmp_path, monkeypatch):
    """An editor whose cell ids are not the file's (none of them is in the saved notebook): nothing can
    be compared, so no cell counts as changed or deleted and the export makes its zip."""
    env = first_cell_environment("en", tmp_path, monkeypatch)
    env["display"] = lambda value: None
    _ran(env, "vscode-notebook-cell:/x#W1sZmlsZQ==", "class_names = []")
    assert env["changed_cells"](assign.NOTEBOOK) == []
    _, answer = _answer_cell(tmp_path, "class_names = ")
    _ran(env, answer.id, "class_names = []")
    assert len(env["changed_cells"](assign.NOTEBOOK)) == 2, "the file's ids: the edited cell and the unknown one"
