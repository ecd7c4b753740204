"""The English student notebook in JupyterLab, driven in headless Chromium: its first cells run
and a screenshot is saved. Opt-in: FASHION_KIT_BROWSER_TESTS=1 and Debian's /usr/bin/chromium
(Playwright drives that browser; it never downloads one)."""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fashion_kit import assign, paths

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
# The setup cells: otter's init, the imports, the language and the picture helpers.
FIRST_CODE_CELLS = 4

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(os.environ.get("FASHION_KIT_BROWSER_TESTS") != "1",
                       reason="opt-in: set FASHION_KIT_BROWSER_TESTS=1"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's chromium at {CHROMIUM}"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path, data_dir):
    """JupyterLab on localhost serving a folder with the English student notebook."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(paths.ROOT / "student" / "en" / assign.NOTEBOOK, work / assign.NOTEBOOK)
    settings = tmp_path / "lab-settings" / "@jupyterlab"
    # No "would you like news?" toast over the screenshot, and no fetching of news.
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false"}))
    # Every cell stays in the page, so outputs of cells scrolled out of view can be read.
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
         "--allow-root"],  # CI runs as root; the server listens on localhost only
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(tmp_path / 'jupyterlab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, token, work
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


def test_student_notebook_runs_its_first_cells_in_jupyterlab(jupyterlab, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    base, token, work = jupyterlab
    shots = Path(os.environ.get("FASHION_KIT_PICTURES_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    screenshot = shots / "jupyterlab-en.png"

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/{assign.NOTEBOOK}?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)

            page.locator(".jp-Notebook .jp-Cell").first.click()
            code_cells = page.locator(".jp-Notebook .jp-CodeCell")
            ran = 0
            while ran < FIRST_CODE_CELLS:
                active = page.locator(".jp-Notebook .jp-Cell.jp-mod-active")
                is_code = "jp-CodeCell" in (active.get_attribute("class") or "")
                page.keyboard.press("Escape")
                page.keyboard.press("Shift+Enter")
                ran += is_code
            # Each code cell shows its execution count once the kernel has run it.
            for i in range(FIRST_CODE_CELLS):
                prompt = code_cells.nth(i).locator(".jp-InputPrompt")
                sync_api.expect(prompt).to_have_text(f"[{i + 1}]:", timeout=180_000)
            versions = page.locator(".jp-Notebook .jp-OutputArea-output", has_text="TensorFlow")
            sync_api.expect(versions).to_have_count(1, timeout=30_000)
            error_count = page.locator(".jp-Notebook [data-mime-type='application/vnd.jupyter.error']").count()
            outputs = page.locator(".jp-Notebook .jp-OutputArea-output").all_inner_texts()
            page.locator(".jp-Notebook .jp-Cell").nth(2).scroll_into_view_if_needed()
            page.keyboard.press("Control+Home")  # the top of the notebook: the set-up cells and their outputs
            page.wait_for_timeout(500)
            page.screenshot(path=str(screenshot))
        finally:
            browser.close()

    assert error_count == 0, "a cell raised an error"
    text = "\n".join(outputs)
    assert "Traceback" not in text, text[-3000:]
    assert "TensorFlow" in text, f"the imports cell printed no versions:\n{text[-2000:]}"
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000
