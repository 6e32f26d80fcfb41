"""The one browser vaegen drives: Debian's /usr/bin/chromium, headless,
launched through Playwright (the dev extra) and never Playwright's own
browser download. tools/screenshots.py and tests/test_browser.py both launch
it from here.

Imports only the standard library; the caller brings Playwright's
`sync_playwright()` context and passes it in.
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def launch(playwright):
    """The system's Chromium, headless, from a running `sync_playwright()`."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
