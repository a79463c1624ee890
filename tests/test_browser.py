"""The rendered email in a real headless Chromium (Debian's /usr/bin/chromium via Playwright).

At 320 and 375 px (phones) and 600 px, light and dark, in English and in Arabic
(right to left): no horizontal overflow, no visible text under 14 px, every image with alt
text; the dark-mode rules apply when the reader prefers dark; a title that mixes Arabic
and Latin reads in the right order.
Nothing is fetched: the test serves the article images itself and blocks everything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import CHROMIUM
from digest import render
from test_render import make_article, make_config, make_issue, make_summary

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]

# A stand-in for every article image: 1100 x 560, wider than any phone.
SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="1100" height="560">'
    '<rect width="1100" height="560" fill="#3b6e8f"/></svg>'
)

# Every text node that is rendered (not display:none, not hidden, not transparent) with its
# computed font size; every image with its alt; the document's width.
MEASURE = """() => {
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el) continue;
    if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    const rects = [...range.getClientRects()].filter(r => r.width > 0 && r.height > 0);
    if (!rects.length) continue;
    texts.push({text: n.textContent.trim().slice(0, 40),
                size: parseFloat(getComputedStyle(el).fontSize)});
  }
  const imgs = [...document.images].map(i => ({src: i.src, alt: i.getAttribute('alt'),
                                                width: i.getBoundingClientRect().width}));
  return {scrollWidth: document.documentElement.scrollWidth,
          bodyScrollWidth: document.body.scrollWidth, texts, imgs};
}"""


@pytest.fixture(scope="module")
def email_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full issue with the awkward cases: images, groups, long words, RTL, emoji."""
    long_word = "Antidisestablishmentarianism" * 3
    issue = make_issue(
        groups={
            "Energy": [
                (make_article(1, image=True), make_summary(1)),
                (make_article(2, f"{long_word} and the grid"), make_summary(2, 0)),
            ],
            "Chips": [
                (make_article(3, "🚀 مرحبا بالعالم — שלום עולם", image=True), make_summary(3, 2)),
                (
                    make_article(4, url="https://example.com/posts/" + "x" * 120 + "/"),
                    make_summary(4, 1, text=f"See https://example.com/{'y' * 90} {long_word}"),
                ),
            ],
        },
        more=5,
    )
    r = render.render(issue, make_config())
    html, _ = r.fill({"unsubscribe_url": "https://example.com/u/token", "first_name": "Ada"})
    path = tmp_path_factory.mktemp("browser") / "email.html"
    path.write_text(html, encoding="utf-8")
    return path


def open_page(browser: Any, path: Path, width: int, scheme: str = "light") -> tuple[Any, list]:
    page = browser.new_page(viewport={"width": width, "height": 800}, color_scheme=scheme)
    requested: list[str] = []

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith("file:"):
            r.continue_()
        elif url.startswith("https://example.com/images/"):
            requested.append(url)
            r.fulfill(status=200, content_type="image/svg+xml", body=SVG)
        else:
            requested.append(url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, requested


MIXED = "كيف يغيّر GPT-5 عمل فرق البرمجة"


@pytest.fixture(scope="module")
def arabic_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Arabic issue: a mixed-direction title, an English article, images, the rest."""
    issue = make_issue(
        [
            (make_article(1, MIXED, image=True, author="عمر منصور"), make_summary(1, 0, "نص.")),
            (make_article(2, "Grid batteries reshape the evening peak", lang="en"),
             make_summary(2, 2)),
            (make_article(3, "مراكز البيانات تدفئ البيوت", image=True), make_summary(3, 1)),
            (make_article(4, "البنوك تودّع كلمات المرور"), make_summary(4, 0)),
        ],
        lang="ar",
        more=2,
    )  # fmt: skip
    r = render.render(issue, make_config())
    html, _ = r.fill({"unsubscribe_url": "https://example.com/u/token"})
    path = tmp_path_factory.mktemp("browser-ar") / "email.html"
    path.write_text(html, encoding="utf-8")
    return path


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [320, 375, 600])
@pytest.mark.parametrize("which", ["email_file", "arabic_file"])
def test_layout_fonts_and_alt_text(
    browser: Any, request: pytest.FixtureRequest, which: str, width: int, scheme: str
) -> None:
    email_file = request.getfixturevalue(which)
    page, requested = open_page(browser, email_file, width, scheme)
    try:
        m = page.evaluate(MEASURE)
    finally:
        page.close()
    assert m["scrollWidth"] <= width, f"horizontal overflow: {m['scrollWidth']} > {width}"
    assert m["bodyScrollWidth"] <= width
    assert len(m["texts"]) > 20  # the measurement saw the email
    small = [t for t in m["texts"] if t["size"] < 14]
    assert not small, f"text under 14 px: {small[:5]}"
    assert len(m["imgs"]) == 2
    for img in m["imgs"]:
        assert (img["alt"] or "").strip(), f"image without alt: {img['src']}"
        assert 0 < img["width"] <= width - 2 * 20  # scaled down to the column, with margins
    # Only the images were requested (and served by the test), nothing else.
    assert all(u.startswith("https://example.com/images/") for u in requested), requested


def test_dark_mode_rules_apply(browser: Any, email_file: Path) -> None:
    colors = """() => ({
      body: getComputedStyle(document.body).backgroundColor,
      card: getComputedStyle(document.querySelector('div.card')).backgroundColor,
      table: getComputedStyle(document.querySelector('div.card > table')).backgroundColor,
      title: getComputedStyle(document.querySelector('.title a')).color,
    })"""
    light, _ = open_page(browser, email_file, 375, "light")
    dark, _ = open_page(browser, email_file, 375, "dark")
    try:
        lc, dc = light.evaluate(colors), dark.evaluate(colors)
    finally:
        light.close()
        dark.close()

    def lum(css: str) -> float:
        r, g, b = (int(x) for x in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255

    assert lum(lc["card"]) > 0.9 and lum(lc["title"]) < 0.3
    assert lum(dc["card"]) < 0.2 and lum(dc["table"]) < 0.2 and lum(dc["body"]) < 0.2
    assert lum(dc["title"]) > 0.8


def test_right_to_left_reads_in_order(browser: Any, arabic_file: Path) -> None:
    """Where words land on screen: Arabic from the right, "GPT-5" kept whole and in
    order inside it, the English article left to right, the date isolated."""
    probe = """(mixed) => {
      const title = [...document.querySelectorAll('.title')].find(h => h.textContent === mixed);
      const node = title.querySelector('a').firstChild;
      const box = (start, end) => {
        const r = document.createRange();
        r.setStart(node, start); r.setEnd(node, end);
        return r.getBoundingClientRect();
      };
      const first = box(0, 3), latin = box(mixed.indexOf('GPT'), mixed.indexOf('GPT') + 5);
      const english = [...document.querySelectorAll('.title')].find(h => h.lang === 'en');
      return {
        dir: getComputedStyle(document.body.firstElementChild).direction,
        align: getComputedStyle(title).textAlign,
        firstRight: first.right, latinRight: latin.right,
        titleRight: title.getBoundingClientRect().right,
        englishDir: getComputedStyle(english).direction,
        bdi: document.querySelector('.dateline bdi').textContent,
      };
    }"""
    page, _ = open_page(browser, arabic_file, 375)
    try:
        got = page.evaluate(probe, MIXED)
        page.screenshot(path=str(arabic_file.with_suffix(".png")))
    finally:
        page.close()
    assert got["dir"] == "rtl"
    assert got["align"] in ("right", "start")
    # The first word (logical order) is the rightmost; the Latin run sits to its left.
    assert got["firstRight"] > got["latinRight"]
    assert abs(got["firstRight"] - got["titleRight"]) < 40
    assert got["englishDir"] == "ltr"
    assert got["bdi"] == "23 نوفمبر 2026"
