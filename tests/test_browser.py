"""The explorer page in a real browser: Debian's Chromium driven by
Playwright for Python (never Playwright's own browser download), launched
by tools/browser.py as tools/screenshots.py launches it. Clicking
the map changes the decoded image, a stroke on the pad gets a
reconstruction, and the page logs no console error. Skipped, saying why,
where /usr/bin/chromium is absent."""

from __future__ import annotations

import os
import statistics

import pytest

import vaegen
from tests.support import start_server
from tools.browser import CHROMIUM, launch
from vaegen.latent.map import encode_map
from vaegen.serve.app import Explorer

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    os.environ.setdefault("PLAYWRIGHT_BROWSERS_PATH", "0")  # never look for (or fetch) its own browsers
    with sync_api.sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


def serve(bundle):
    """The explorer of `bundle` on a free port: yields its URL, then stops it."""
    model = vaegen.load_model(bundle, threads=1)
    server = start_server(Explorer(model, encode_map(model, limit=200)))
    yield server.url
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def url(tiny_bundle):
    yield from serve(tiny_bundle)


@pytest.fixture(scope="module")
def calibrated_url(prior_bundle):
    """The explorer of the tiny bundle with a prior and a calibration."""
    yield from serve(prior_bundle)


@pytest.fixture
def page(browser, url):
    yield from open_page(browser, url)


def open_page(browser, url, allow: str | None = None):
    """The page, loaded and ready; fails the test on any console error or page error
    (but those containing `allow`: a request the test makes fail on purpose)."""
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_function("() => window.vaegen && window.vaegen.ready", timeout=10000)
    yield page
    page.close()
    assert [e for e in errors if allow is None or allow not in e] == []


def draw_a_stroke(page) -> None:
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(box["x"] + box["width"] * (0.5 - 0.02 * i), box["y"] + box["height"] * (0.2 + 0.06 * i))
    page.mouse.up()


def canvas_png(page, element_id: str) -> str:
    return page.evaluate(f"document.getElementById('{element_id}').toDataURL()")


def test_clicking_the_map_decodes_that_point(page):
    before, decodes = canvas_png(page, "view"), page.evaluate("window.vaegen.decodes")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.15, box["y"] + box["height"] * 0.2)
    page.wait_for_function(f"() => window.vaegen.decodes > {decodes}", timeout=5000)
    first = canvas_png(page, "view")
    assert first != before
    page.mouse.click(box["x"] + box["width"] * 0.85, box["y"] + box["height"] * 0.8)
    page.wait_for_function(f"() => window.vaegen.decodes > {decodes + 1}", timeout=5000)
    assert canvas_png(page, "view") != first


def test_drawing_on_the_pad_shows_a_reconstruction(page):
    blank = canvas_png(page, "recon")
    draw_a_stroke(page)
    page.wait_for_function("() => window.vaegen.encodes > 0", timeout=5000)
    assert canvas_png(page, "recon") != blank
    # The finished stroke is scored: its bits/dim beside the reconstruction (the tiny bundle has no calibration).
    page.wait_for_function("() => window.vaegen.scores > 0", timeout=5000)
    text = page.locator("#score").inner_text()
    assert "bits/dim (k=10)" in text and "vaegen fit-prior" in text
    assert page.evaluate("document.getElementById('status').textContent") == "ready"


def test_a_calibrated_model_gives_the_drawing_its_percentile_and_verdict(browser, calibrated_url):
    for page in open_page(browser, calibrated_url):  # the page closes, its console checked, after the loop
        draw_a_stroke(page)
        page.wait_for_function("() => window.vaegen.scores > 0", timeout=5000)
        text = page.locator("#score").inner_text()
        assert "bits/dim (k=10)" in text and "complexity+latent: percentile" in text
        assert "like the training data" in text  # or "flagged: unlike the training data"
        page.click("#clear")
        assert page.locator("#score").inner_text() == ""


def test_interpolation_and_a_drag_on_the_map(page):
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5)
    page.click("#set-a")
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    for i in range(1, 31):  # a drag: decoded live as the pointer moves
        page.mouse.move(box["x"] + box["width"] * (0.2 + 0.02 * i), box["y"] + box["height"] * 0.5)
    page.mouse.up()
    page.wait_for_function("() => window.vaegen.latencies.length >= 5", timeout=5000)
    page.click("#set-b")
    page.wait_for_function("() => document.getElementById('strip').toDataURL().length > 3000", timeout=5000)
    latencies = page.evaluate("window.vaegen.latencies")
    assert statistics.median(latencies) < 250  # pointer event to new pixels, ms (generous: CI machines vary)


@pytest.fixture(scope="module")
def colour_url(colour_bundle):
    yield from serve(colour_bundle)


def test_a_colour_model_takes_a_chosen_or_dropped_picture(browser, colour_url, tmp_path):
    from tests.support import write_colour_folder

    folder = write_colour_folder(tmp_path / "pictures", 3, size=48, seed=5)
    picture = sorted(folder.rglob("*.png"))[0]
    for page in open_page(browser, colour_url):
        assert page.locator("#pad").is_hidden() and page.locator("#pad-title").inner_text() == "Encode a picture"
        blank = canvas_png(page, "recon")
        page.set_input_files("#file", str(picture))  # chosen from disk
        page.wait_for_function("() => window.vaegen.encodes > 0", timeout=5000)
        assert canvas_png(page, "recon") != blank and page.locator("#file-name").inner_text() == picture.name
        colours = page.evaluate("""() => {
            const d = document.getElementById('input').getContext('2d').getImageData(0, 0, 84, 84).data;
            let spread = 0;
            for (let i = 0; i < d.length; i += 4) spread = Math.max(spread, Math.abs(d[i] - d[i + 2]), Math.abs(d[i] - d[i + 1]));
            return spread; }""")
        assert colours > 60  # the model input is drawn in colour, not grey
        first = canvas_png(page, "input")
        dropped = sorted(folder.rglob("*.png"))[1]
        page.evaluate("""async ([bytes, name]) => {
            const file = new File([new Uint8Array(bytes)], name, { type: 'image/png' });
            const transfer = new DataTransfer();
            transfer.items.add(file);
            document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true }));
        }""", [list(dropped.read_bytes()), dropped.name])
        page.wait_for_function("() => window.vaegen.encodes > 1", timeout=5000)
        assert canvas_png(page, "input") != first
        page.wait_for_function("() => window.vaegen.scores > 1", timeout=5000)
        assert "bits/dim" in page.locator("#score").inner_text()


def test_a_grey_model_takes_a_file_as_well_as_a_drawing(browser, url, tmp_path):
    from PIL import Image

    img = Image.new("L", (28, 28), 0)
    img.paste(255, (12, 4, 16, 24))
    img.save(tmp_path / "one.png")
    (tmp_path / "bad.png").write_text("not an image")
    for page in open_page(browser, url, allow="400 (Bad Request)"):
        assert page.locator("#pad").is_visible()
        page.set_input_files("#file", str(tmp_path / "one.png"))
        page.wait_for_function("() => window.vaegen.encodes > 0", timeout=5000)
        page.set_input_files("#file", str(tmp_path / "bad.png"))  # a 400 with a one-line reason, shown; the page goes on
        page.wait_for_function("() => document.getElementById('status').textContent.includes('bad.png')", timeout=5000)
        assert "not an image" in page.locator("#status").inner_text()


@pytest.fixture(scope="module")
def emoji_url():
    """The explorer of the shipped emoji model, on the map its bundle carries (it needs no dataset)."""
    from vaegen.bundle.read import shipped_model_dir
    from vaegen.bundle.records import read_map

    model = vaegen.load_model(shipped_model_dir("emoji"), threads=1)
    server = start_server(Explorer(model, read_map(model.bundle)))
    yield server.url
    server.shutdown()
    server.server_close()


def test_the_shipped_emoji_model_decodes_map_clicks_and_encodes_a_dropped_emoji(browser, emoji_url, tmp_path):
    from PIL import Image, ImageDraw

    picture = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(picture).ellipse([6, 6, 58, 58], fill=(250, 200, 40, 255))  # a yellow face, no features
    picture.save(tmp_path / "face.png")
    for page in open_page(browser, emoji_url):
        info = page.evaluate("fetch('/api/info').then((r) => r.json())")
        assert info["image_shape"] == [3, 64, 64] and info["drawing"] is False and len(info["points"]["x"]) > 100
        before, decodes = canvas_png(page, "view"), page.evaluate("window.vaegen.decodes")
        box = page.locator("#map").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
        page.wait_for_function(f"() => window.vaegen.decodes > {decodes}", timeout=5000)
        assert canvas_png(page, "view") != before
        page.evaluate("""async (bytes) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], 'face.png', { type: 'image/png' }));
            document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true }));
        }""", list((tmp_path / "face.png").read_bytes()))
        page.wait_for_function("() => window.vaegen.encodes > 0", timeout=10000)
        recon = page.evaluate("""() => {
            const d = document.getElementById('recon').getContext('2d').getImageData(0, 0, 84, 84).data;
            const at = (x, y) => [...d.slice(4 * (y * 84 + x), 4 * (y * 84 + x) + 3)];
            return { centre: at(42, 42), corner: at(2, 2) }; }""")
        r, g, b = recon["centre"]
        assert r > 150 and g > 100 and b < r - 60  # the disc comes back yellow-orange
        assert max(recon["corner"]) - min(recon["corner"]) < 40  # on the grey ground
        page.wait_for_function("() => window.vaegen.scores > 0", timeout=10000)
