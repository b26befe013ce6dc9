"""A real browser clicks through the explorer served by `streamlit run` on 127.0.0.1 and saves a screenshot."""
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import APPS, ARTIFACTS, ROOT
from workbench.runs import RunStore

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium")
STORED_RUN = re.compile(r"^Stored run \d")  # the page's success message, not its "compare stored runs" label
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]


def stripes_png(side: int = 24) -> bytes:
    "A PNG smaller than OverLoCK's 32 px minimum: red and blue vertical stripes, 4 px wide."
    pixels = np.zeros((side, side, 3), dtype=np.uint8)
    pixels[:, np.arange(side) // 4 % 2 == 0] = (255, 0, 0)
    pixels[:, np.arange(side) // 4 % 2 == 1] = (0, 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def explorer(runs_root):
    port = free_port()
    env = dict(os.environ, WORKBENCH_RUNS=str(runs_root))
    cmd = [sys.executable, "-m", "streamlit", "run", str(APPS / "explorer.py"), "--server.headless", "true",
           "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("streamlit did not come up:\n" + server.stdout.read1().decode())
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (./dev test installs it)")
def test_click_through_explorer(explorer, runs_root):
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(explorer)
        # A fresh store: the page trains its small default experiment (live chart), then draws the run's charts.
        page.get_by_text("Grokking dynamics").first.wait_for(timeout=30_000)
        page.get_by_text("Inside a run").wait_for(timeout=180_000)
        charts = page.locator('[data-testid="stVegaLiteChart"]')
        charts.nth(3).wait_for(timeout=30_000)  # curves, two spectrum heatmaps, energies
        assert page.get_by_text("Traceback").count() == 0
        page.screenshot(path=str(ARTIFACTS / "explorer.png"), full_page=True)
        charts.nth(3).scroll_into_view_if_needed()  # Streamlit scrolls inside the page: show the spectra too
        page.screenshot(path=str(ARTIFACTS / "explorer-inside-a-run.png"))
        store = RunStore(runs_root)
        assert list(store.runs(experiment="grokking").status) == ["finished"]

        page.get_by_role("link", name="Run store").click()
        page.get_by_text("Run store").first.wait_for()
        page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=30_000)
        page.locator('[data-testid="stVegaLiteChart"]').first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "explorer-runs.png"), full_page=True)

        page.get_by_role("link", name="Grokking dynamics").click()
        page.get_by_text("Inside a run").wait_for(timeout=60_000)
        page.get_by_role("button", name="Train").click()  # a second run from the sidebar's default sliders
        for _ in range(300):
            if list(store.runs(experiment="grokking").status) == ["finished", "finished"]:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"the run started from the sidebar did not finish: {store.runs(experiment='grokking')}")
        page.get_by_text("Inside a run").wait_for(timeout=60_000)
        assert page.get_by_text("Traceback").count() == 0

        page.get_by_role("link", name="Top-down maps").click()  # random-init OverLoCK-XT on a sample photo
        page.get_by_role("heading", name="Dynamic kernels").wait_for(timeout=60_000)
        drawn = page.locator('[data-testid="stVegaLiteChart"] svg.marks')
        drawn.nth(5).wait_for(timeout=60_000)  # vega-embed drew all six: overview, affinity, regions, gate, context, kernels
        kernels = page.locator('[data-testid="stVegaLiteChart"]').nth(5)
        kernels.scroll_into_view_if_needed()
        box = kernels.bounding_box()
        kernel_panel = dict(x=box["x"] + box["width"] / 2, y=box["y"], width=box["width"] / 2, height=box["height"])
        before = page.screenshot(clip=kernel_panel)
        page.mouse.move(box["x"] + 0.12 * box["width"], box["y"] + 0.55 * box["height"])  # a pixel in the left panel
        page.wait_for_timeout(500)
        assert page.screenshot(clip=kernel_panel) != before, "hovering a pixel did not redraw the kernel panel"
        assert page.get_by_text("Traceback").count() == 0
        page.screenshot(path=str(ARTIFACTS / "explorer-top-down.png"))
        # An upload under OverLoCK's 32 px, picked in the sidebar: the caption and the maps follow the new image.
        overview = page.locator('[data-testid="stVegaLiteChart"]').first
        overview.scroll_into_view_if_needed()
        photo_overview = overview.screenshot()
        page.locator('[data-testid="stSelectbox"]').filter(has_text="image source").click()  # the sidebar's source
        page.get_by_role("option", name="upload").click()
        page.get_by_text("Upload a PNG or JPEG image in the sidebar.").wait_for(timeout=60_000)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
            files=[dict(name="stripes.png", mimeType="image/png", buffer=stripes_png())])
        page.locator('[data-testid="stImageCaption"]').filter(has_text="stripes.png").wait_for(timeout=60_000)
        drawn.nth(5).wait_for(timeout=60_000)
        page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=60_000)  # the rerun is done
        assert page.locator('[data-testid="stImageCaption"]').all_inner_texts() == ["stripes.png"]
        overview.scroll_into_view_if_needed()
        assert overview.screenshot() != photo_overview, "the overview map was not redrawn for the uploaded image"
        assert page.get_by_text("Traceback").count() == 0
        page.screenshot(path=str(ARTIFACTS / "explorer-top-down-upload.png"))

        page.get_by_role("link", name="Attention").click()  # random-init CoSwin (CIFAR) on a sample photo, first block
        page.get_by_role("heading", name="How local is each block?").wait_for(timeout=60_000)
        drawn.nth(2).wait_for(timeout=60_000)  # prediction bars, the query's map over the image, attention distance
        query_map = page.locator('[data-testid="stVegaLiteChart"]').nth(1)
        query_map.scroll_into_view_if_needed()
        before = query_map.screenshot()
        row_slider = page.locator('[data-testid="stSlider"]').filter(has_text="query point: row").get_by_role("slider")
        row_slider.focus()  # move the query point up: the map follows
        for _ in range(30):
            page.keyboard.press("ArrowLeft")
        page.wait_for_timeout(1000)
        page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=60_000)  # the rerun is done
        assert query_map.screenshot() != before, "moving the query point did not redraw the attention map"
        assert page.get_by_text("Traceback").count() == 0
        page.screenshot(path=str(ARTIFACTS / "explorer-attention.png"), full_page=True)

        page.get_by_role("link", name="Bias measures").click()  # an estimate started from the page, with progress
        page.get_by_role("heading", name="New estimate on MNIST").wait_for(timeout=60_000)
        page.get_by_role("button", name="Estimate").click()  # defaults: 10 ReLU MLPs on 100 digits, worker processes
        page.get_by_text("bits at ε = 0.04").wait_for(timeout=180_000)
        page.locator('[data-testid="stVegaLiteChart"] svg.marks').first.wait_for(timeout=60_000)  # the stored estimate
        assert page.get_by_text("Traceback").count() == 0
        page.screenshot(path=str(ARTIFACTS / "explorer-bias-measures.png"), full_page=True)
        page.get_by_role("tab", name="Generalization difficulty").click()  # the paper's tasks need no run
        page.locator('[data-testid="stVegaLiteChart"] svg.marks').filter(visible=True).first.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "explorer-difficulty.png"), full_page=True)
        estimates = store.runs(experiment="bias_estimate")
        assert list(estimates.status) == ["finished"] and estimates.summary.iloc[0]["n_hypotheses"] >= 3

        page.get_by_role("link", name="Simplicity & shortcuts").click()  # a small run from each of two views
        page.get_by_role("button", name="Train and randomize").click()  # LMS-5, 2,000 points, ≤ 10 epochs
        page.get_by_text(STORED_RUN).filter(visible=True).wait_for(timeout=120_000)
        page.locator('[data-testid="stVegaLiteChart"] svg.marks').filter(visible=True).first.wait_for(timeout=60_000)
        assert page.get_by_text("Traceback").count() == 0
        page.screenshot(path=str(ARTIFACTS / "explorer-simplicity-bias.png"), full_page=True)
        page.get_by_role("tab", name="Accuracy on the curve").click()
        page.get_by_role("button", name="Train the zoo").click()  # 2 strengths × 2 models × 2 learning rates
        page.get_by_text(STORED_RUN).filter(visible=True).wait_for(timeout=180_000)
        page.locator('[data-testid="stVegaLiteChart"] svg.marks').filter(visible=True).first.wait_for(timeout=60_000)
        assert page.get_by_text("Traceback").count() == 0
        page.screenshot(path=str(ARTIFACTS / "explorer-accuracy-on-the-curve.png"), full_page=True)
        for experiment in ("simplicity_bias", "accuracy_on_the_curve"):
            assert list(store.runs(experiment=experiment).status) == ["finished"], experiment

        page.get_by_role("link", name="Bias in representations").click()  # eight attributions of an Adult row
        page.get_by_text("the log-odds of income > 50K").wait_for(timeout=120_000)
        page.locator('[data-testid="stVegaLiteChart"] svg.marks').filter(visible=True).first.wait_for(timeout=120_000)
        assert page.get_by_text("Traceback").count() == 0
        page.screenshot(path=str(ARTIFACTS / "explorer-attributions.png"), full_page=True)
        page.get_by_role("tab", name="WEAT").click()
        page.get_by_role("button", name="Run the tests").click()  # Caliskan's ten tests on the word2vec subset
        page.get_by_text(STORED_RUN).filter(visible=True).wait_for(timeout=180_000)
        page.locator('[data-testid="stVegaLiteChart"] svg.marks').filter(visible=True).first.wait_for(timeout=60_000)
        assert page.get_by_text("Traceback").count() == 0
        page.screenshot(path=str(ARTIFACTS / "explorer-weat.png"), full_page=True)
        assert list(store.runs(experiment="contextual_bias").status) == ["finished"]
        browser.close()
    assert (ARTIFACTS / "explorer.png").stat().st_size > 10_000
    assert (ARTIFACTS / "explorer-top-down.png").stat().st_size > 10_000
    assert (ARTIFACTS / "explorer-top-down-upload.png").stat().st_size > 10_000
    assert (ARTIFACTS / "explorer-attention.png").stat().st_size > 10_000
    assert (ARTIFACTS / "explorer-bias-measures.png").stat().st_size > 10_000
    assert (ARTIFACTS / "explorer-accuracy-on-the-curve.png").stat().st_size > 10_000
    assert (ARTIFACTS / "explorer-weat.png").stat().st_size > 10_000
