"""The README's explorer pictures: docs/serve.png, a screenshot of `vaegen
serve` on the shipped model after a few interactions, and the median
interaction latency (pointer event to new pixels, from the page's own
Performance API timings) printed on stdout.

    PYTHONPATH=. VAEGEN_DATA_DIR=../shared/data/mnist .venv/bin/python tools/screenshots.py docs/serve.png

Uses Debian's Chromium through Playwright (the dev extra), launched by
tools/browser.py as the browser tests launch it (PYTHONPATH=. lets this
script import it, as `make screenshots` does).
"""

from __future__ import annotations

import statistics
import sys
import threading

from playwright.sync_api import sync_playwright

import vaegen
from tools.browser import launch
from vaegen.latent.map import encode_map
from vaegen.serve.app import Explorer
from vaegen.serve.server import make_server


def drag(page, box, points, steps_between: int = 6) -> None:
    """A pointer drag through `points` given as fractions of the element's box."""
    page.mouse.move(box["x"] + box["width"] * points[0][0], box["y"] + box["height"] * points[0][1])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        for i in range(1, steps_between + 1):
            t = i / steps_between
            page.mouse.move(box["x"] + box["width"] * (x0 + t * (x1 - x0)), box["y"] + box["height"] * (y0 + t * (y1 - y0)))
    page.mouse.up()


def explore(out: str) -> list[float]:
    """Play with the page (draw a 7, drag across the map, interpolate), save
    a screenshot to `out`, and return the latencies of the measured drag (ms)."""
    model = vaegen.load_model(threads=1)  # as vaegen serve runs it
    server = make_server("127.0.0.1", 0, Explorer(model, encode_map(model)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1600, "height": 800}, device_scale_factor=1)
        page.goto(server.url)
        page.wait_for_function("() => window.vaegen && window.vaegen.ready")
        # The whole page fits the viewport: nothing scrolls, so these boxes stay true.
        pad, view = page.locator("#pad").bounding_box(), page.locator("#map").bounding_box()
        drag(page, pad, [(0.3, 0.25), (0.72, 0.25), (0.45, 0.8)])  # a 7
        page.wait_for_function("() => window.vaegen.encodes > 0")
        page.wait_for_timeout(300)
        page.click("#set-a")
        drag(page, view, [(0.1, 0.1), (0.9, 0.9), (0.1, 0.9), (0.9, 0.1)], steps_between=40)
        page.evaluate("() => { window.vaegen.latencies.length = 0; }")
        drag(page, view, [(0.2, 0.5), (0.8, 0.5), (0.5, 0.2), (0.5, 0.8)], steps_between=40)
        page.wait_for_timeout(300)
        latencies = page.evaluate("() => window.vaegen.latencies")
        page.mouse.click(view["x"] + view["width"] * 0.79, view["y"] + view["height"] * 0.52)  # the zeros
        page.wait_for_timeout(300)
        page.click("#set-b")
        page.wait_for_timeout(600)
        page.screenshot(path=out, full_page=True)
        browser.close()
    server.shutdown()
    return latencies


def main(out: str) -> None:
    latencies = explore(out)
    print(f"wrote {out}; interaction latency over {len(latencies)} pointer moves: median "
          f"{statistics.median(latencies):.1f} ms, p90 {statistics.quantiles(latencies, n=10)[-1]:.1f} ms")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/serve.png")
