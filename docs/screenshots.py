"""Screenshots of the sample issue for the README: 375 px wide (a phone), light and dark.

    .venv/bin/python docs/screenshots.py

Builds the sample (config.example.toml, the clock of the golden files), fills the
placeholders and photographs the top of the email in headless Chromium
(/usr/bin/chromium through Playwright). Nothing is fetched: every request but the file
itself is refused.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from digest import config, pipeline

ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)  # as the golden files
HEIGHT = 2400  # the top of the email: masthead, note, contents, the first articles


# The sample's article images are not on example.com: a neutral stand-in, 1088 x 560 (twice
# the content width, as the README advises).
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="1088" height="560">'
    '<rect width="1088" height="560" fill="#3b6e8f"/></svg>'
)


def serve(route: Any) -> None:
    url = route.request.url
    if url.startswith("file:"):
        route.continue_()
    elif url.startswith("https://example.com/") and url.endswith((".jpg", ".png", ".webp")):
        route.fulfill(status=200, content_type="image/svg+xml", body=SVG)
    else:
        route.abort()


def main() -> int:
    cfg = config.load(ROOT / "config.example.toml")
    built = pipeline.prepare(cfg, NOW, pipeline.Selection(latest=True))
    html, _ = built.rendered.fill({"unsubscribe_url": "https://example.com/u/token"})
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        page_file = Path(tmp) / "email.html"
        page_file.write_text(html, encoding="utf-8")
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        for scheme in ("light", "dark"):
            page = browser.new_page(viewport={"width": 375, "height": HEIGHT},
                                    color_scheme=scheme, device_scale_factor=1)  # fmt: skip
            page.route("**/*", serve)
            page.goto(page_file.as_uri())
            out = ROOT / "docs" / f"sample-375-{scheme}.png"
            page.screenshot(path=str(out))
            print(out.relative_to(ROOT))
            page.close()
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
