"""The web demo in a real browser: Debian's chromium driven by Playwright against `stargan serve`.

Playwright downloads no browser here: it launches /usr/bin/chromium (``apt-get install
chromium``). The server runs as a user would start it, on loopback on a free port. Set
``STARGAN_UPDATE_SCREENSHOT=1`` to refresh docs/web_demo.png from this run.
"""

import base64
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from stargan.inference import PACKAGED_MODEL
from tiny_models import tiny_model_file

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """`stargan serve` on 127.0.0.1: the packaged model when installed, else a tiny one."""
    model = PACKAGED_MODEL if PACKAGED_MODEL.is_file() else None
    if model is None:
        model = tiny_model_file(tmp_path / "demo.safetensors", size=32)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "stargan", "serve", "--model", str(model), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/info", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"stargan serve did not start:\n{output}")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_upload_tick_and_see_the_translation(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    photo = tmp_path / "face.png"
    Image.new("RGB", (90, 110), (180, 140, 110)).save(photo)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 820})
            page.goto(server)
            page.wait_for_selector("#attrs input[data-label]")
            size = page.evaluate("fetch('/api/info').then(r => r.json())")["image_size"]

            page.set_input_files("#file", str(photo))
            page.wait_for_selector("img[data-testid=input]")
            first = page.locator("#attrs input[data-label]").first
            first.check()
            result = page.wait_for_selector("img[data-testid=result]", timeout=20_000)
            src = result.get_attribute("src")
            assert src and src.startswith("data:image/png;base64,")
            with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
                im.load()
                assert im.size == (size, size)
            assert "labels:" in page.inner_text("#source")
            assert page.locator("#grid").evaluate("img => img.naturalWidth") > size

            # Pick a sample face for the screenshot: the page re-translates it.
            before = page.get_attribute("img[data-testid=input]", "src")
            page.click("#samples button >> nth=0")
            page.wait_for_function(
                "b => document.querySelector('img[data-testid=input]').src !== b", arg=before
            )
            shot = tmp_path / "web_demo.png"
            page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("STARGAN_UPDATE_SCREENSHOT") == "1":
                shutil.copyfile(shot, ROOT / "docs" / "web_demo.png")

            # Usable at phone width: nothing wider than the screen.
            page.set_viewport_size({"width": 390, "height": 844})
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0
        finally:
            browser.close()
