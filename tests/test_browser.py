"""Both student notebooks in JupyterLab, driven in headless Chromium as a student would use them: the
answers are typed into the blanks (taken from the answer key), Run All Cells runs the notebook, and
every grader.check passes and every picture renders. Screenshots of the notebook and of each
picture are saved under the test's temporary folder.

The test waits on the kernel's real state, read from Jupyter's REST API, and reads the results from
the notebook the browser saved, never from prompt text on the page. It needs Debian's chromium at
/usr/bin/chromium (Playwright drives it and never downloads a browser): in CI (CI=true) a missing
chromium fails the test; elsewhere the test is skipped with the command that installs it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from fashion_kit import assign, data, notebooks, paths

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_CHROMIUM = "apt-get update && apt-get install -y chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PICTURE_CELL = "with picture():"
PICTURE_FAILED = "This picture needs your answers above"
# Generous ceilings for a loaded 2-core machine; the test waits on state, these only stop a hang.
SERVER_START_SECONDS = 120
KERNEL_START_SECONDS = 180
RUN_ALL_SECONDS = 1200

# Typical mistakes, typed into a blank after Run All: (a piece of the right answer that finds the
# blank, the wrong code, words the check must show in each language). The class names and the
# arithmetic are in the notebook's own text, so the checks say exactly what is wrong.
MISTAKES = [
    ('class_names = [', 'class_names = ["Trouser", "T-shirt/top", "Pullover", "Dress", "Coat",\n'
                        '               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]',
     {"zh-TW": "表格寫的是 'T-shirt/top'", "en": "the table says 'T-shirt/top'"}),
    ("hidden_params =", "hidden_params = 784 * 128\noutput_params = 128 * 10\n"
                        "total_params = hidden_params + output_params",
     {"zh-TW": "還要加上每個神經元一個 bias", "en": "add one bias per neuron"}),
    # A typo after a good run: the old arrays are still in the kernel, and the check says so.
    ("load_data()", "fashion_mnist = tf.keras.datasets.fashion_mnist\n"
                    "(training_images, training_labels), (test_images, test_labels) = fashion_mnst.load_data()",
     {"zh-TW": "最後一次執行時出錯了", "en": "failed, so this check sees an old value"}),
]
# A cell edited after it ran and saved without running again: the check of the cell's question says
# the saved file is not what ran (the grade runs the saved file) and how to start over.
EDITED = ("training_images = training_images / 255.0", "training_images = training_images\ntest_images = test_images / 255.0",
          {"zh-TW": "Kernel > Restart Kernel and Run All Cells", "en": "Kernel > Restart Kernel and Run All Cells"})
# Where the zh-TW mistakes' screenshots go for docs/student-guide.md when this is set (docs/images).
SCREENSHOTS_ENV = "FASHION_KIT_SCREENSHOTS_DIR"
SCREENSHOT_NAMES = {"class_names = [": "zh-TW-mistake-class-names.png", "hidden_params =": "zh-TW-mistake-biases.png",
                    "load_data()": "zh-TW-mistake-old-value.png", EDITED[0]: "zh-TW-mistake-edited-after-run.png"}
PASSED = {"zh-TW": "通過了！", "en": "passed!"}
NOT_PASSED = {"zh-TW": "還沒通過", "en": "did not pass"}
OTTER_WORDS = re.compile(r"passed!|results:|Test case|All test cases|failed|exported|Click")
CJK = re.compile(r"[\u3400-\u9fff]")

# Heavy (JupyterLab, a browser and two trainings): a slow test too, so `make test-fast` leaves it out.
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"the browser test needs Debian's chromium at {CHROMIUM}: {INSTALL_CHROMIUM}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def chinese_fonts(folder: Path) -> dict:
    """Chromium's environment with the CJK font of the notebook's own font package added to the
    system's fonts (a fontconfig file of the test's own): without it, a machine without CJK fonts shows
    the zh-TW notebook's Chinese as boxes in the screenshots."""
    try:
        import noto_cjk_sans_otc
    except ImportError:
        return dict(os.environ)
    config = folder / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        f"  <dir>{Path(noto_cjk_sans_otc.FONT_PATH).parent}</dir>\n"
        f"  <cachedir>{folder / 'font-cache'}</cachedir>\n</fontconfig>\n", encoding="utf-8")
    return {**os.environ, "FONTCONFIG_FILE": str(config)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Jupyter:
    """A JupyterLab server on localhost and the parts of its REST API the test needs."""

    def __init__(self, base: str, token: str, root: Path):
        self.base, self.token, self.root = base, token, root

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.base}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def kernel_of(self, notebook_path: str) -> str | None:
        for session in self.api("sessions"):
            if session.get("path") == notebook_path and session.get("kernel"):
                return session["kernel"]["id"]
        return None

    def kernel_state(self, kernel_id: str) -> str:
        return self.api(f"kernels/{kernel_id}")["execution_state"]

    def saved_notebook(self, notebook_path: str, seconds: float = 30):
        """The notebook as saved; a read that meets a save still being written (the server answers
        500: the file is not whole yet) is tried again."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                model = self.api(f"contents/{notebook_path}?content=1&type=notebook")
                return notebooks.nbformat.from_dict(model["content"])
            except urllib.error.HTTPError as e:
                if e.code != 500 or time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    def stop_sessions(self) -> None:
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")


def wait_until(condition, seconds: float, what: str, poll: float = 1.0):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {seconds:.0f} s")
        time.sleep(poll)


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory, data_dir):
    """JupyterLab serving a folder per language, each with its student notebook."""
    data.ensure()
    tmp = tmp_path_factory.mktemp("jupyterlab")
    work = tmp / "work"
    for lang in notebooks.LANGUAGES:
        (work / lang).mkdir(parents=True)
        shutil.copy(paths.ROOT / "student" / lang / assign.NOTEBOOK, work / lang / assign.NOTEBOOK)
    settings = tmp / "lab-settings" / "@jupyterlab"
    # No "would you like news?" toast over the screenshots, and no fetching of news.
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false"}))
    # Every cell stays in the page, so each cell's output can be looked at and photographed.
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}
    log_path = tmp / "jupyterlab.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
         "--allow-root"],  # CI runs as root; the server listens on localhost only
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    server = Jupyter(f"http://127.0.0.1:{port}", token, work)

    def answering():
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab stopped:\n{log_path.read_text()[-3000:]}")
        try:
            return server.api("status") is not None
        except OSError:
            return False

    try:
        wait_until(answering, SERVER_START_SECONDS, "JupyterLab to answer", poll=0.5)
        yield server
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen) -> None:
    """End the server and the kernels it started (its whole process group)."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def answers(lang: str) -> dict[int, str]:
    """The blanks of the student notebook, by cell index, with the answer key's code for each."""
    student = notebooks.read(paths.ROOT / "student" / lang / assign.NOTEBOOK)
    key = notebooks.read(paths.ROOT / "solutions" / lang / assign.NOTEBOOK)
    return {i: key.cells[i].source for i, cell in enumerate(student.cells)
            if assign.ANSWER_TAG in cell.metadata.get("tags", [])}


def outputs_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        for mime in ("text/plain", "text/html"):
            parts.append(str(out.get("data", {}).get(mime, "")))
    return "".join(parts)


def errors_in(nb) -> list[str]:
    return [f"cell {i}: {out.get('ename')}: {out.get('evalue')}" for i, cell in enumerate(nb.cells)
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]


@pytest.mark.parametrize("lang", notebooks.LANGUAGES)
def test_student_fills_in_the_answers_and_everything_passes(jupyterlab, chromium, lang, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    notebook_path = f"{lang}/{assign.NOTEBOOK}"
    filled = answers(lang)
    shots = tmp_path / "screenshots"
    shots.mkdir()

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_FLAGS, headless=True,
                                    env=chinese_fonts(tmp_path))
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            sync_api.expect.set_options(timeout=120_000)  # a loaded machine renders slowly
            page.goto(f"{jupyterlab.base}/lab/tree/{notebook_path}?token={jupyterlab.token}")
            cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")
            sync_api.expect(cells.first).to_be_visible()
            kernel = wait_until(lambda: jupyterlab.kernel_of(notebook_path), KERNEL_START_SECONDS,
                                "the notebook's kernel to start")
            wait_until(lambda: jupyterlab.kernel_state(kernel) == "idle", KERNEL_START_SECONDS,
                       "the kernel to be idle")
            # Every cell in the page (no windowing), so the page's cells line up with the file's.
            sync_api.expect(cells).to_have_count(len(notebooks.read(paths.ROOT / "student" / lang / assign.NOTEBOOK).cells))

            # Type each answer into its blank, replacing the "...": the editor's own text input,
            # inserted whole so that no auto-indent or auto-closed bracket changes it.
            def type_into(index, code):
                editor = cells.nth(index).locator(".cm-content")
                editor.scroll_into_view_if_needed()
                editor.click()
                page.keyboard.press("ControlOrMeta+a")
                page.keyboard.insert_text(code)

            def typed_and_saved(sources: dict[int, str], what: str):
                """Type each source into its cell and save until the saved notebook holds them all.
                Each poll saves again (a save sent before the editor had passed on the text saves the
                old text); a cell whose text is still not saved after 30 s is typed once more, as a
                student would (a loaded machine can lose a click). A failure says what was saved."""
                for index, code in sources.items():
                    type_into(index, code)

                def unsaved():
                    page.keyboard.press("Escape")
                    page.keyboard.press("ControlOrMeta+s")
                    page.wait_for_timeout(500)
                    saved = jupyterlab.saved_notebook(notebook_path)
                    return {i: saved.cells[i].source for i, code in sources.items() if saved.cells[i].source != code}

                for seconds in (30, 60):
                    deadline = time.monotonic() + seconds
                    while (left := unsaved()) and time.monotonic() < deadline:
                        time.sleep(1)
                    if not left:
                        return
                    for index in left:
                        type_into(index, sources[index])
                dialogs = page.locator(".jp-Dialog")
                shown = dialogs.first.inner_text() if dialogs.count() else "none"
                pytest.fail(f"gave up waiting for {what}; saved instead: {left!r}; a dialog: {shown!r}")

            typed_and_saved(filled, "the typed answers to be saved")

            page.locator("#jp-MainMenu").get_by_text("Run", exact=True).click()
            page.get_by_text("Run All Cells", exact=True).click()

            def finished():
                # The kernel is idle and the saved notebook shows every code cell run (or an error).
                if jupyterlab.kernel_state(kernel) != "idle":
                    return None
                page.keyboard.press("Escape")
                page.keyboard.press("ControlOrMeta+s")
                page.wait_for_timeout(1000)  # the save request; its result is read below
                nb = jupyterlab.saved_notebook(notebook_path)
                code = [c for c in nb.cells if c.cell_type == "code"]
                if errors_in(nb) or all(c.execution_count is not None for c in code):
                    return nb
                return None

            nb = wait_until(finished, RUN_ALL_SECONDS, "Run All Cells to finish", poll=3.0)
            assert not errors_in(nb), "cells raised errors:\n" + "\n".join(errors_in(nb))

            picture_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and PICTURE_CELL in c.source]
            rendered = {}
            for i in picture_cells:
                image = cells.nth(i).locator(".jp-OutputArea-output img")
                sync_api.expect(image.first).to_be_visible()
                image.first.scroll_into_view_if_needed()
                rendered[i] = image.first.evaluate("img => img.complete && img.naturalWidth > 0")
                cells.nth(i).locator(".jp-OutputArea").screenshot(path=str(shots / f"{lang}-picture-cell{i:03d}.png"))
            cells.first.scroll_into_view_if_needed()  # the top of the notebook, for the screenshot
            page.screenshot(path=str(shots / f"{lang}-notebook.png"))

            def check_shown(index, before, what):
                """The output of the check below cell ``index`` once it ran (its count is not ``before``),
                read from the saved notebook, and its screenshot."""
                def checked():
                    if jupyterlab.kernel_state(kernel) != "idle":
                        return None
                    page.keyboard.press("Escape")
                    page.keyboard.press("ControlOrMeta+s")
                    page.wait_for_timeout(1000)
                    cell = jupyterlab.saved_notebook(notebook_path).cells[index + 1]
                    return cell if cell.execution_count not in (None, before) else None

                shown = outputs_text(wait_until(checked, 180, f"the check after {what!r}"))
                cells.nth(index + 1).screenshot(path=str(shots / f"{lang}-mistake-cell{index + 1:03d}.png"))
                if lang == "zh-TW":
                    shutil.copy(shots / f"{lang}-mistake-cell{index + 1:03d}.png", shots / SCREENSHOT_NAMES[what])
                return shown

            # A cell edited after it ran: edit question 3's cell, save without running it, run its check.
            mistakes_shown = {}
            index = next(i for i, code in filled.items() if EDITED[0] in code)
            before = jupyterlab.saved_notebook(notebook_path).cells[index + 1].execution_count
            typed_and_saved({index: EDITED[1]}, "the edited cell to be saved")
            cells.nth(index + 1).locator(".cm-content").click()
            page.keyboard.press("Shift+Enter")

            page.wait_for_timeout(1500)
            mistakes_shown[EDITED[0]] = check_shown(index, before, EDITED[0])
            # Put back as it ran, and saved: the mistakes below start clean.
            typed_and_saved({index: filled[index]}, "question 3's cell to be put back")

            # Now the mistakes: type each into its blank, run it and its check (Shift+Enter twice).
            for piece, wrong, _ in MISTAKES:
                index = next(i for i, code in filled.items() if piece in code)
                before = jupyterlab.saved_notebook(notebook_path).cells[index + 1].execution_count
                type_into(index, wrong)
                page.keyboard.press("Shift+Enter")
                # A cell that fails aborts the cells queued behind it: run the check once it is done.
                page.wait_for_timeout(1500)
                wait_until(lambda: jupyterlab.kernel_state(kernel) == "idle", 180, f"the cell with {piece!r} to run")
                page.keyboard.press("Shift+Enter")
                mistakes_shown[piece] = check_shown(index, before, piece)
        finally:
            browser.close()
            jupyterlab.stop_sessions()

    checks = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("grader.check")]
    assert len(checks) >= 10
    for cell in checks:
        shown = outputs_text(cell)
        assert PASSED[lang] in shown and "❌" not in shown, f"{cell.source}: {shown[:800]}"
        assert lang == "en" or not OTTER_WORDS.search(shown), f"{cell.source}: Otter's English in zh-TW: {shown[:800]}"
    if lang == "zh-TW" and os.environ.get(SCREENSHOTS_ENV):
        for name in SCREENSHOT_NAMES.values():
            shutil.copy(shots / name, Path(os.environ[SCREENSHOTS_ENV]) / name)
    for piece, _, words in MISTAKES + [EDITED]:
        shown = mistakes_shown[piece]
        assert NOT_PASSED[lang] in shown and "❌" in shown and words[lang] in shown, f"{piece}: {shown[:1500]}"
        if lang == "zh-TW":
            assert not OTTER_WORDS.search(shown), f"{piece}: Otter's English in zh-TW: {shown[:1500]}"
        else:
            assert not CJK.search(shown), f"{piece}: Chinese in the en notebook: {shown[:1500]}"
    assert len(picture_cells) >= 7, "first image, grid, curves, predictions, probabilities, confusion matrix, architecture"
    for i in picture_cells:
        assert any("image/png" in out.get("data", {}) for out in nb.cells[i].outputs), f"cell {i} drew nothing"
        assert PICTURE_FAILED not in outputs_text(nb.cells[i]), outputs_text(nb.cells[i])
        assert rendered[i], f"the picture of cell {i} did not render in the browser"
    for shot in shots.iterdir():
        assert shot.stat().st_size > 5_000, f"{shot} is empty"
