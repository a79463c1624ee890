"""content.py: a blog's content folder -> Articles, bad files -> Problems.

Fixtures: tests/fixtures/content/<case>/..., one file per edge case, named after it.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from digest import config, content
from digest.content import fast_yaml
from digest.content.dates import name_date, parse_date
from digest.errors import ContentError
from digest.model import Collection

FIXTURES = Path(__file__).parent / "fixtures" / "content"
BERLIN = ZoneInfo("Europe/Berlin")
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=BERLIN)
BASE = "https://blog.example.com"


def make_cfg(folder: Path, tmp_path: Path, language: str = "en") -> config.Config:
    return config.parse(
        {
            "content": {"folder": str(folder)},
            "schedule": {"timezone": "Europe/Berlin", "day": "mon", "time": "09:00"},
            "newsletter": {"base_url": BASE, "language": language},
        },
        source=tmp_path / "config.toml",
    )


def load(folder: Path, tmp_path: Path, language: str = "en", **kw: object) -> Collection:
    cfg = make_cfg(folder, tmp_path, language)
    return content.load(cfg, now=NOW, **kw)  # type: ignore[arg-type]


def by_slug(col: Collection) -> dict[str, content.Article]:
    return {a.slug: a for a in col.articles}


def errors(col: Collection) -> list[str]:
    return [str(p) for p in col.problems if p.level == "error"]


def warnings(col: Collection) -> list[str]:
    return [str(p) for p in col.problems if p.level == "warning"]


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- blog layouts ----------------------------------------------------------------------


def test_jekyll_folder(tmp_path: Path) -> None:
    col = load(FIXTURES / "jekyll", tmp_path)
    arts = by_slug(col)
    assert errors(col) == []
    assert col.files == 3 and col.drafts == 1  # _drafts/ without a date is fine
    post = arts["jekyll-post"]
    assert post.title == "Jekyll: the classic layout"
    # "+0000" after a space is not a YAML timestamp; it is still read with its offset.
    assert post.date == dt.datetime(2026, 11, 18, 14, 2, 3, tzinfo=dt.UTC)
    assert post.author == "Ada Example"
    assert post.categories == ("tech", "business")  # Jekyll: a string splits at spaces
    assert post.tags == ("static sites", "ruby")
    assert post.summary == "A Jekyll post with a date and a space before its offset."
    assert post.url == f"{BASE}/jekyll-post/"
    only_name = arts["filename-date-only"]  # .markdown extension, date from the name
    assert only_name.date == dt.datetime(2026, 11, 19, tzinfo=BERLIN)
    assert only_name.path.suffix == ".markdown"


def test_hugo_folder_yaml_toml_bundle_and_draft(tmp_path: Path) -> None:
    col = load(FIXTURES / "hugo", tmp_path)
    arts = by_slug(col)
    assert errors(col) == []
    assert col.files == 4  # _index.md is a section page, not an article
    assert col.drafts == 1 and "hugo-draft" not in arts
    y = arts["hugo-yaml"]
    assert y.date == dt.datetime(2026, 11, 19, 9, 30, tzinfo=dt.UTC)
    assert y.tags == ("go", "static sites")  # a YAML block list (PyYAML path)
    assert y.categories == ("engineering",)
    assert y.weight == 2 and not y.featured
    t = arts["hugo-toml"]
    assert t.date == dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
    assert t.featured and t.author == "Grace Example"  # from [params]
    bundle = arts["bundle-post"]  # index.md in a folder: the folder names the slug
    assert bundle.url == f"{BASE}/bundle-post/"
    assert bundle.image == f"{BASE}/bundle-post/cover.jpg"
    assert bundle.image_alt == "A stack of paper bundles"
    assert f'src="{BASE}/bundle-post/diagram.png"' in bundle.html


def test_zola_folder_dates_from_name_path_and_folders(tmp_path: Path) -> None:
    col = load(FIXTURES / "zola", tmp_path)
    arts = by_slug(col)
    assert errors(col) == []
    assert col.files == 4
    named = arts["zola-named"]
    assert named.date == dt.datetime(2026, 11, 17, tzinfo=BERLIN)
    assert named.tags == ("rust", "zola") and named.categories == ("engineering",)
    assert named.author == "Linus Example"  # from [extra]
    path = arts["dated-path"]
    assert path.date == dt.datetime(2026, 11, 16, tzinfo=BERLIN)
    assert path.url == f"{BASE}/2026/11/16/dated-path/"
    assert arts["folder-dated"].date == dt.datetime(2026, 11, 15, tzinfo=BERLIN)
    assert arts["with-date"].date == dt.datetime(2026, 11, 20, tzinfo=BERLIN)  # TOML date


def test_pelican_metadata(tmp_path: Path) -> None:
    col = load(FIXTURES / "pelican", tmp_path)
    assert errors(col) == []
    assert col.drafts == 1  # Status: draft
    (post,) = col.articles
    assert post.slug == "my-pelican-post"
    assert post.title == "Pelican metadata"
    assert post.date == dt.datetime(2026, 11, 18, 10, 20, tzinfo=BERLIN)
    assert post.tags == ("pelican", "publishing")
    assert post.categories == ("Python",)
    assert post.author == "Alexis Example, Conan Example"
    assert post.summary == "Short version for index and feeds"
    assert post.body.strip() == "This is the content of a Pelican post."


def test_text_starting_like_metadata_is_body(tmp_path: Path) -> None:
    write(tmp_path / "c", "2026-11-20-note.md", "Note: this is prose.\n\n# Heading\n")
    (art,) = load(tmp_path / "c", tmp_path).articles
    assert art.title == "Heading"
    assert "Note: this is prose." in art.html


# --- formats ---------------------------------------------------------------------------


def test_yaml_1_1_traps(tmp_path: Path) -> None:
    col = load(FIXTURES / "yaml-1-1", tmp_path, language="no")
    (art,) = col.articles
    assert art.title == "No"  # not False
    assert art.lang == "no"  # Norwegian, not False
    assert art.tags == ("yes", "no", "on", "off")
    assert art.date == dt.datetime(2026, 11, 20, 9, 15, tzinfo=BERLIN)  # naive: local
    assert art.featured is True and art.weight == 3


def test_yaml_loader_keeps_text_and_datetimes() -> None:
    data = yaml.load(  # the PyYAML path, used when front matter is not flat
        "title: No\nsub: 1.10\nlist:\n  - on\n  - off\nwhen: 2026-11-20T14:02:03+01:00\n"
        "bad: 2026-13-45\nyes_: yes\nok: true\n",
        Loader=fast_yaml.yaml_loader(),
    )
    assert data["title"] == "No" and data["sub"] == "1.10"
    assert data["list"] == ["on", "off"] and data["yes_"] == "yes" and data["ok"] is True
    assert data["when"] == dt.datetime(
        2026, 11, 20, 14, 2, 3, tzinfo=dt.timezone(dt.timedelta(hours=1))
    )
    assert data["bad"] == "2026-13-45"  # reported later as an unreadable date


FLAT_VALUES = [
    "No", "Yes", "on", "off", "y", "n", "true", "True", "FALSE", "null", "~", "1.10", "0x1F",
    "1e3", "012", "+1", "-1", ".5", "12:30", "2026-11-20", "2026-11-20 14:02:03",
    "2026-11-20T14:02:03Z", "2026-11-20 14:02:03 +0000", "2026-11-20 14:02:03 +01:00",
    "2026-1-2 3:04:05", "2026-13-45", '"Quoted: yes"', "'It''s'", '"with # hash"', "'a # b'",
    "Hello # comment", "a: b", "Note:", "http://example.com/x?y=1#frag", "C# and F#",
    "50% off", "@home", "`x`", "foo:bar", "[a, b, \"c d\", 'e']", "[]",
    "[yes, no, 2026-11-20, null, true]", "[a, [b]]", "[a,b,]", "{a: 1}", "Über — 日本語 😀",
    "  spaced   value   ", "'unterminated", '"a \\"b\\""', "&a x", "!!str 2026", ">", "|",
    "- x", "a - b", "[ ]", "\"\"", "a'b", "[x:y]", "[-1, 2]", "%x", "x\\y", "=", "<<",
    "2026-11-20T14:02:03", "2026-11-20T14:02:03+01:00", "2026-11-20t14:02:03", "2026-02-30",
    "2026-11-20 14:02:03.123456789 +01:00", "2026-11-20T14:02:03.5-05", "2026-11-20T25:00:00",
]  # fmt: skip


@pytest.mark.parametrize("value", FLAT_VALUES)
def test_flat_yaml_fast_path_agrees_with_pyyaml(value: str) -> None:
    text = f"a: 1\n# comment\n\ntitle: {value}\nb: x\n"
    fast = fast_yaml.flat_yaml(text)
    if fast is None:
        return  # not trivially flat: PyYAML decides
    assert fast == yaml.load(text, Loader=fast_yaml.yaml_loader())


BLOCKS = [
    "tags:\n  - a\n  - b\n",
    "tags:\n- a\n- b\ntitle: x\n",
    "tags:\n  - a\n   - b\n",
    "tags:\n  - a: b\n",
    "tags:\n  - [x]\n",
    "tags:\n  - 'q'\n  - \"d\"\n  - yes\n  - 2026-11-20\n  - No\n",
    "tags:\n  -\n",
    "a:\n  b: c\n",
    "tags:\n  - a\n\n  - b\n",
    "tags:\n  - a\n# c\n  - b\n",
    "title: x\n  - a\n",
    "tags:\n  - a\ntitle:\n  - b\n",
    "tags:\n    - deep\n    - er\nx: 1\n",
    "tags:\n  - a # c\n",
    "tags:\n  - - a\n",
    'k: ["a: b"]\n',
]


@pytest.mark.parametrize("text", BLOCKS)
def test_flat_yaml_block_lists_agree_with_pyyaml(text: str) -> None:
    fast = fast_yaml.flat_yaml(text)
    if fast is not None:
        assert fast == yaml.load(text, Loader=fast_yaml.yaml_loader())


def test_flat_yaml_takes_the_common_front_matter() -> None:
    fm = (
        'title: "A title: with colon"\ndate: 2026-11-20 14:02:03 +0100\nauthor: Jane Doe\n'
        "tags: [cloud, ai, 'x']\ndraft: false\nsummary: It's fine.\n"
    )
    assert fast_yaml.flat_yaml(fm) == {
        "title": "A title: with colon",
        "date": "2026-11-20 14:02:03 +0100",  # parse_date reads the space-offset form
        "author": "Jane Doe",
        "tags": ["cloud", "ai", "x"],
        "draft": False,
        "summary": "It's fine.",
    }
    assert fast_yaml.flat_yaml("tags:\n  - a\n  - 'b'\n") == {"tags": ["a", "b"]}
    assert fast_yaml.flat_yaml("extra:\n  author: x\n") is None  # nesting: PyYAML


def test_bom_and_crlf(tmp_path: Path) -> None:
    col = load(FIXTURES / "formats", tmp_path)
    art = by_slug(col)["bom-crlf"]
    assert art.title == "BOM and CRLF"
    assert art.tags == ("windows", "notepad")
    assert "\r" not in art.body and "\r" not in art.html
    assert "<h2>Section</h2>" in art.html


def test_formats_folder(tmp_path: Path) -> None:
    col = load(FIXTURES / "formats", tmp_path)
    arts = by_slug(col)
    assert errors(col) == []
    assert arts["rfc-2822-date"].date == dt.datetime(2026, 11, 20, 14, 2, 3, tzinfo=dt.UTC)
    assert arts["deutsches-datum"].date == dt.datetime(2026, 11, 20, 14, 30, tzinfo=BERLIN)
    # An English newsletter leaves out the German and the Japanese post, quietly.
    assert "deutscher-artikel" not in arts and col.other_language == 2
    de = by_slug(load(FIXTURES / "formats", tmp_path, language="de"))["deutscher-artikel"]
    assert de.date == dt.datetime(2026, 11, 20, tzinfo=BERLIN) and de.lang == "de"
    ja = by_slug(load(FIXTURES / "formats", tmp_path, language="ja"))["日本語の記事"]
    assert ja.date == dt.datetime(2026, 11, 20, tzinfo=BERLIN)
    assert ja.url == f"{BASE}/%E6%97%A5%E6%9C%AC%E8%AA%9E%E3%81%AE%E8%A8%98%E4%BA%8B/"
    assert ja.words == 8  # 16 CJK characters count as 8 words
    heading = arts["title-from-heading"]
    assert heading.title == "The heading title"  # markup stripped
    assert "<h1>" not in heading.html  # shown apart, not twice
    nofm = arts["no-front-matter"]
    assert nofm.title == "A post without front matter"
    assert nofm.date == dt.datetime(2026, 11, 19, tzinfo=BERLIN)


def test_links_and_images_made_absolute(tmp_path: Path) -> None:
    col = load(FIXTURES / "formats", tmp_path)
    art = by_slug(col)["links-and-images"]
    url = f"{BASE}/essays/links-and-images/"
    assert art.url == url  # url: /essays/... below the base URL
    assert f'href="{BASE}/essays/other-post/"' in art.html
    assert f'href="{BASE}/about/"' in art.html
    assert 'href="https://example.org/x"' in art.html
    assert f'href="{url}#section"' in art.html
    assert 'href="mailto:someone@example.com"' in art.html
    assert f'src="{url}chart.png"' in art.html
    assert "{{ site.url }}" not in art.html
    assert art.image == f"{BASE}/img/cover.png" and art.image_alt == "A chain of links"
    path = "tests/fixtures/content/formats/links-and-images.md"
    assert any(
        w.endswith("relative link '{{ site.url }}/x' could not be made absolute; it was removed")
        and f"{path}:12:" in w
        for w in warnings(col)
    ), warnings(col)
    assert any(f"{path}:10:" in w and "'chart.png' has no alt text" in w for w in warnings(col))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20", dt.datetime(2026, 11, 20, tzinfo=BERLIN)),
        ("2026-11-20 14:02:03 +0000", dt.datetime(2026, 11, 20, 14, 2, 3, tzinfo=dt.UTC)),
        ("2026-11-20T14:02:03+01:00", dt.datetime(2026, 11, 20, 13, 2, 3, tzinfo=dt.UTC)),
        ("2026-11-20T14:02:03Z", dt.datetime(2026, 11, 20, 14, 2, 3, tzinfo=dt.UTC)),
        ("2026-11-20 14:02", dt.datetime(2026, 11, 20, 14, 2, tzinfo=BERLIN)),
        ("2026/11/20", dt.datetime(2026, 11, 20, tzinfo=BERLIN)),
        ("20.11.2026", dt.datetime(2026, 11, 20, tzinfo=BERLIN)),
        ("20.11.2026 14:30 Uhr", dt.datetime(2026, 11, 20, 14, 30, tzinfo=BERLIN)),
        ("2026年11月20日", dt.datetime(2026, 11, 20, tzinfo=BERLIN)),
        ("2026年11月20日 14時30分", dt.datetime(2026, 11, 20, 14, 30, tzinfo=BERLIN)),
        ("November 20, 2026", dt.datetime(2026, 11, 20, tzinfo=BERLIN)),
        ("Nov 20th, 2026 2:30 pm", dt.datetime(2026, 11, 20, 14, 30, tzinfo=BERLIN)),
        ("20. November 2026", dt.datetime(2026, 11, 20, tzinfo=BERLIN)),
        ("20 novembre 2026", dt.datetime(2026, 11, 20, tzinfo=BERLIN)),
        ("20 de noviembre de 2026", dt.datetime(2026, 11, 20, tzinfo=BERLIN)),
        ("3. März 2026", dt.datetime(2026, 3, 3, tzinfo=BERLIN)),
        ("Fri, 20 Nov 2026 14:02:03 +0000", dt.datetime(2026, 11, 20, 14, 2, 3, tzinfo=dt.UTC)),
        ("25/11/2026", dt.datetime(2026, 11, 25, tzinfo=BERLIN)),
        ("11/25/2026", dt.datetime(2026, 11, 25, tzinfo=BERLIN)),
        (dt.date(2026, 11, 20), dt.datetime(2026, 11, 20, tzinfo=BERLIN)),
        (dt.datetime(2026, 11, 20, 9), dt.datetime(2026, 11, 20, 9, tzinfo=BERLIN)),
    ],
)
def test_parse_date(text: object, expected: dt.datetime) -> None:
    got = parse_date(text, BERLIN)
    assert got == expected and got.tzinfo is not None


@pytest.mark.parametrize("text", ["next tuesday", "2026-13-45", "05/06/2026", "", "20 2026"])
def test_parse_date_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="date"):
        parse_date(text, BERLIN)


@pytest.mark.parametrize(
    ("stem", "day", "slug"),
    [
        ("2026-11-20-hello-world", dt.date(2026, 11, 20), "hello-world"),
        ("2026-11-20_zola-style", dt.date(2026, 11, 20), "zola-style"),
        ("20261120-compact", dt.date(2026, 11, 20), "compact"),
        ("2026年11月20日-日本語", dt.date(2026, 11, 20), "日本語"),
        ("20.11.2026-über-uns", dt.date(2026, 11, 20), "über-uns"),
        ("plain-slug", None, "plain-slug"),
        ("2026-is-the-year", None, "2026-is-the-year"),
    ],
)
def test_file_name_dates(stem: str, day: dt.date | None, slug: str) -> None:
    got_day, got_slug, _ = name_date(stem)
    assert (got_day, got_slug) == (day, slug)


def test_naive_dates_are_in_the_newsletter_timezone(tmp_path: Path) -> None:
    c = tmp_path / "c"
    write(c, "a.md", "---\ntitle: A\ndate: 2026-07-01 09:00:00\n---\nx\n")  # summer time
    write(c, "b.md", "---\ntitle: B\ndate: 2026-11-20\n---\nx\n")
    arts = by_slug(load(c, tmp_path))
    assert arts["a"].date.utcoffset() == dt.timedelta(hours=2)
    assert arts["a"].date == dt.datetime(2026, 7, 1, 7, tzinfo=dt.UTC)
    assert arts["b"].date == dt.datetime(2026, 11, 19, 23, tzinfo=dt.UTC)


def test_field_aliases_and_urls(tmp_path: Path) -> None:
    c = tmp_path / "c"
    write(
        c,
        "a.md",
        "---\ntitle: A\ndate: 2026-11-20\ndescription: From description.\n"
        "authors: [Ann, Bob]\ncategory: News\nimageAlt: Alt\nimage: https://cdn.example.com/a.png\n"
        "permalink: https://other.example.com/a.html\nlanguage: de_AT\n---\nx\n",
    )
    write(c, "d.md", "---\ntitle: D\ndate: 2026-11-20\nlang: en-GB\n---\nx\n")
    write(
        c,
        "b.md",
        "---\ntitle: B\ndate: 2026-11-20\nexcerpt: From excerpt.\nslug: Be Here\n---\nx\n",
    )
    write(c, "über uns.md", "---\ntitle: C\ndate: 2026-11-20\n---\nx\n")
    col = load(c, tmp_path)
    assert "a" not in by_slug(col) and col.other_language == 1  # de-AT in an English one
    assert by_slug(col)["d"].lang == "en-GB"  # English too
    arts = by_slug(load(c, tmp_path, language="de"))
    a = arts["a"]
    assert a.summary == "From description." and a.author == "Ann, Bob"
    assert a.categories == ("News",) and a.lang == "de-AT"
    assert a.image == "https://cdn.example.com/a.png" and a.image_alt == "Alt"
    assert a.url == "https://other.example.com/a.html"
    b = arts["Be-Here"]
    assert b.summary == "From excerpt." and b.url == f"{BASE}/Be-Here/"
    assert arts["über-uns"].url == f"{BASE}/%C3%BCber-uns/"


def test_unknown_field_types_warn_and_are_ignored(tmp_path: Path) -> None:
    c = tmp_path / "c"
    write(
        c,
        "2026-11-20-odd.md",
        "---\ntitle: [not, text]\nweight: heavy\nfeatured: maybe\ntags: {a: 1}\nlang: 'english!'\n"
        "image: javascript:alert(1)\n---\n# Heading title\n\nText.\n",
    )
    col = load(c, tmp_path)
    (art,) = col.articles
    assert art.title == "Heading title"  # the list title is ignored
    assert art.weight == 0 and not art.featured and art.tags == () and art.lang is None
    assert art.image is None
    msgs = warnings(col)
    for key, line in (("title", 2), ("weight", 3), ("featured", 4), ("tags", 5), ("lang", 6)):
        assert any(m.startswith(f"{c / '2026-11-20-odd.md'}:{line}: {key}") for m in msgs), (
            key,
            msgs,
        )
    assert any("image: 'javascript:alert(1)' is not an http(s) URL" in m for m in msgs)


def test_image_without_alt_warns(tmp_path: Path) -> None:
    c = tmp_path / "c"
    write(c, "2026-11-20-pic.md", "---\ntitle: Pic\nimage: pic.jpg\n---\nText.\n")
    col = load(c, tmp_path)
    (art,) = col.articles
    assert art.image == f"{BASE}/pic/pic.jpg" and art.image_alt is None
    assert [p.line for p in col.problems if "no alt text" in p.message] == [3]
    assert all(p.level == "warning" for p in col.problems)


def test_words_and_reading_time(tmp_path: Path) -> None:
    c = tmp_path / "c"
    write(c, "2026-11-20-long.md", "---\ntitle: Long\n---\n" + "word " * 690 + "\n")
    (art,) = load(c, tmp_path).articles
    assert art.words == 690 and art.reading_minutes == 3


# --- bad files, drafts, future ----------------------------------------------------------


def test_bad_files_are_reported_with_path_and_line_and_the_rest_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FIXTURES.parents[2])  # paths are shown relative to the working directory
    col = load(FIXTURES / "bad", tmp_path)
    assert [a.slug for a in col.articles] == ["good"]
    assert col.files == 13
    where = {}
    for p in col.problems:
        assert p.level == "error"
        where[p.path.name] = (p.line, p.message)
    d = "tests/fixtures/content/bad"
    assert str(col.problems[0]).startswith(f"{d}/")  # relative to the working directory
    expected = {
        "broken-yaml.md": (3, "broken YAML front matter"),
        "broken-toml.md": (3, "broken TOML front matter"),
        "unclosed-front-matter.md": (1, "never closed"),
        "no-title.md": (2, "no title"),
        "unparseable-date.md": (3, "cannot read the date 'next tuesday'"),
        "not-utf8.md": (2, "not UTF-8"),
        "not-utf8-body.md": (8, "not UTF-8"),
        "empty.md": (None, "empty file"),
        "whitespace-only.md": (None, "empty file"),
        "2026-13-45-impossible-date.md": (2, "impossible date"),
        "not-a-mapping.md": (2, "not a list of 'key: value' lines"),
    }
    assert set(where) == set(expected)
    assert col.pages == 1  # no-date.md: a page (no date anywhere), skipped, not "bad"
    for name, (line, fragment) in expected.items():
        assert where[name][0] == line, name
        assert fragment in where[name][1], (name, where[name])
    assert "broken-yaml.md:3: broken YAML" in "\n".join(map(str, col.problems))


def test_drafts_and_future_are_skipped_and_counted(tmp_path: Path) -> None:
    c = tmp_path / "c"
    write(c, "2026-11-20-live.md", "---\ntitle: Live\n---\nx\n")
    write(c, "2026-11-21-draft.md", "---\ntitle: Draft\ndraft: true\n---\nx\n")
    write(c, "2026-11-21-unpublished.md", "---\ntitle: U\npublished: false\n---\nx\n")
    write(c, "2027-01-15-future.md", "---\ntitle: Future\n---\nx\n")
    write(c, "soon.md", "---\ntitle: Soon\ndate: 2026-11-26 12:00:01\n---\nx\n")
    write(c, "now.md", "---\ntitle: Now\ndate: 2026-11-26 12:00:00\n---\nx\n")
    col = load(c, tmp_path)
    assert sorted(a.slug for a in col.articles) == ["live", "now"]
    assert (col.files, col.drafts, col.future) == (6, 2, 2)
    assert col.newest == NOW and col.oldest == dt.datetime(2026, 11, 20, tzinfo=BERLIN)


def test_walk_skips_what_is_not_an_article(tmp_path: Path) -> None:
    c = tmp_path / "c"
    write(c, "posts/2026-11-20-real.md", "---\ntitle: Real\n---\nx\n")
    write(c, ".git/2026-11-20-hidden.md", "---\ntitle: Hidden\n---\nx\n")
    write(c, ".2026-11-20-dotfile.md", "---\ntitle: Dot\n---\nx\n")
    write(c, "posts/_index.md", "---\ntitle: Section\n---\n")
    write(c, "posts/notes.txt", "not markdown")
    (c / "posts" / "loop").symlink_to(c, target_is_directory=True)  # a cycle of links
    os.mkfifo(c / "posts" / "2026-11-20-pipe.md")  # reading it would block forever
    col = load(c, tmp_path)
    assert [a.slug for a in col.articles] == ["real"] and col.files == 1


def test_missing_folder_is_a_content_error(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="content folder not found"):
        load(tmp_path / "nope", tmp_path)


# --- hostile content --------------------------------------------------------------------


def test_hostile_content_is_sanitized(tmp_path: Path) -> None:
    col = load(FIXTURES / "hostile", tmp_path)
    art = by_slug(col)["hostile"]
    html = art.html.lower()
    for bad in ("<script", "<iframe", "<style", "onerror", "onclick", "style=", "evil.example"):
        assert bad not in html, bad
    assert 'href="javascript' not in html and 'href="data:' not in html
    assert "alert('raw')" not in html and "alert('mixed')" not in html
    assert f'src="{BASE}/hostile/x.png"' in art.html


def test_title_line_breaks_are_folded(tmp_path: Path) -> None:
    art = by_slug(load(FIXTURES / "hostile", tmp_path))["hostile"]
    assert art.title == "Breaking Bcc: victim@example.com news"
    assert not any(ch in art.title for ch in "\r\n\t")


def test_script_and_style_text_is_not_in_titles(tmp_path: Path) -> None:
    col = by_slug(load(FIXTURES / "hostile", tmp_path))
    assert col["script-in-text"].title == "Scripts are never text"  # from the # heading
    assert col["script-in-title"].title == "News today"  # from the front matter
    for slug in ("script-in-text", "script-in-title"):
        assert "steal" not in col[slug].html and "alert(1)" not in col[slug].html


def test_template_syntax_stays_literal(tmp_path: Path) -> None:
    art = by_slug(load(FIXTURES / "hostile", tmp_path))["hostile"]
    assert "{{ 7*7 }}" in art.html and "{% if x %}y{% endif %}" in art.html
    assert "49" not in art.html


def test_emoji_and_right_to_left_text_preserved(tmp_path: Path) -> None:
    art = by_slug(load(FIXTURES / "hostile", tmp_path))["rtl-emoji"]
    assert art.title == "🎉 שלום עולם — مرحبا بالعالم"
    assert "🎉👩🏽\u200d💻" in art.html
    assert "שלום עולם, مرحبا بالعالم." in art.html


def with_content(cfg: config.Config, **settings: object) -> config.Config:
    return cfg.model_copy(update={"content": cfg.content.model_copy(update=settings)})


def test_one_megabyte_article_loads(tmp_path: Path) -> None:
    c = tmp_path / "c"
    para = (
        "A long article about **supply chains**, [logistics](/logistics/) and the cost of "
        "waiting for containers in a port that is already full. "
    ) * 8
    body = "\n\n".join(f"## Part {i}\n\n{para}" for i in range(1100))
    path = write(c, "2026-11-20-huge.md", f"---\ntitle: Huge\n---\n{body}\n")
    assert path.stat().st_size > 1_000_000
    started = time.perf_counter()
    cfg = with_content(make_cfg(c, tmp_path), max_file_kb=2048)
    (art,) = content.load(cfg, now=NOW).articles
    assert time.perf_counter() - started < 30
    assert art.words > 150_000  # the whole text counts toward reading time
    assert art.html.count(f'href="{BASE}/logistics/"') > 8 * 50  # links made absolute


def test_a_file_above_max_file_kb_is_skipped_with_a_warning(tmp_path: Path) -> None:
    c = tmp_path / "c"
    write(c, "2026-11-19-small.md", "# Small\n\nShort.\n")
    write(c, "2026-11-20-big.md", "# Big\n\n" + "word " * 250_000)  # 1.2 MB
    col = load(c, tmp_path)
    assert [a.slug for a in col.articles] == ["small"]
    (warning,) = warnings(col)
    assert "2026-11-20-big.md" in warning and "1,221 KB" in warning
    assert "content.max_file_kb (1,024 KB)" in warning
    col = content.load(with_content(make_cfg(c, tmp_path), max_file_kb=2048), now=NOW)
    assert sorted(a.slug for a in col.articles) == ["big", "small"]


def test_work_on_a_huge_table_does_not_grow_with_what_the_email_never_shows(
    tmp_path: Path,
) -> None:
    import tracemalloc

    c = tmp_path / "c"
    rows = "\n".join(f"| cell {n} | **b** {n} | [l](/p/{n}) | `c {n}` |" for n in range(36_000))
    table = f"| a | b | c | d |\n|---|---|---|---|\n{rows}\n"
    assert len(table) > 1_600_000
    write(c, "2026-11-20-table.md", "# Table\n\nA lede.\n\n" + table)
    cfg = with_content(make_cfg(c, tmp_path), max_file_kb=4096)
    tracemalloc.start()
    try:
        col = content.load(cfg, now=NOW)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Before: the whole table parsed and sanitized, ~700 MB traced; now the first 100 kB.
    assert peak < 150_000_000, f"{peak / 1e6:.0f} MB"
    (art,) = col.articles
    assert len(art.body) <= content.PARSE_CHARS and art.html.count("<tr>") < 3000
    assert art.words > 36_000 * 8  # every cell still counts toward reading time
    assert any("only the first" in w and "table.md" in w for w in warnings(col))


# --- the window fast path ----------------------------------------------------------------


def test_window_parses_only_the_window_and_calls_the_chooser_once(tmp_path: Path) -> None:
    c = tmp_path / "c"
    start = dt.datetime(2026, 11, 2, 10, tzinfo=BERLIN)
    for i in range(24):  # one article a day, 2026-11-02 .. 2026-11-25
        day = start + dt.timedelta(days=i)
        write(c, f"{day:%Y-%m-%d}-day-{i}.md", f"---\ntitle: Day {i}\n---\nText {i}.\n")
    write(c, "2026-11-25-draft.md", "---\ntitle: Draft\ndraft: true\n---\nx\n")
    write(c, "2027-01-15-future.md", "---\ntitle: Future\n---\nx\n")
    # Outside the window, a broken body is not read (only the front matter is) ...
    write(
        c,
        "2026-11-03-broken-body.md",
        b"---\ntitle: Broken body\n---\n" + b"ok\n" * 5000 + b"\xff\n",
    )
    calls: list[list[dt.datetime]] = []
    since = dt.datetime(2026, 11, 16, 9, tzinfo=BERLIN)
    until = dt.datetime(2026, 11, 23, 9, tzinfo=BERLIN)

    def choose(dates: Sequence[dt.datetime]) -> tuple[dt.datetime, dt.datetime]:
        calls.append(list(dates))
        return since, until

    col = load(c, tmp_path, window=choose)
    assert len(calls) == 1
    assert len(calls[0]) == 25 and calls[0] == sorted(calls[0])  # publishable only
    assert all(since <= a.date < until for a in col.articles)
    # Dates from file names are at midnight: 2026-11-17 .. 2026-11-23 00:00 are inside.
    assert sorted(a.slug for a in col.articles) == [f"day-{i}" for i in range(15, 22)]
    assert col.window == (since, until)
    assert (col.outside, col.drafts, col.future, col.files) == (18, 1, 1, 27)
    assert col.problems == ()
    # ... while a full load (digest check) reads every body and reports it.
    full = load(c, tmp_path)
    assert len(full.articles) == 24
    assert [p.path.name for p in full.problems] == ["2026-11-03-broken-body.md"]
    assert full.problems[0].line == 5004


def test_window_chooser_gets_no_dates_for_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    seen: list[Sequence[dt.datetime]] = []

    def choose(dates: Sequence[dt.datetime]) -> tuple[dt.datetime, dt.datetime]:
        seen.append(dates)
        return NOW, NOW

    col = load(tmp_path / "c", tmp_path, window=choose)
    assert [list(d) for d in seen] == [[]] and col.articles == () and col.oldest is None


# --- the bundled sample -----------------------------------------------------------------


def test_sample_content_builds_real_issues() -> None:
    from digest import issue as issues

    root = Path(__file__).resolve().parents[1]
    cfg = config.load(root / "config.example.toml")
    col = content.load(cfg, now=NOW)
    assert col.problems == ()
    assert len(col.articles) >= 8 and col.drafts == 1 and col.future == 1
    w48, w47 = issues.window_for_week(cfg, "2026-W48"), issues.window_for_week(cfg, "2026-W47")
    assert sum(w48.contains(a.date) for a in col.articles) >= 5
    assert sum(w47.contains(a.date) for a in col.articles) >= 3
    assert any(a.featured for a in col.articles)
    assert any(a.image and a.image_alt for a in col.articles)
    for art in col.articles:
        assert 380 <= art.words <= 620, (art.slug, art.words)
        for section in ("## Everyday User Impact", "## ROI for Business", "## Strategic Analysis"):
            assert section in art.body, (art.slug, section)
        assert art.body.count("\n- **") == 3, art.slug


@pytest.mark.parametrize("year", [2027, 2030, 2060])
def test_sample_latest_issue_stays_the_same_for_years(year: int) -> None:
    # The README's first command builds `--latest`: the sample's future-dated post must
    # stay in the future, or one day that command builds another (near empty) issue.
    from digest import pipeline

    root = Path(__file__).resolve().parents[1]
    cfg = config.load(root / "config.example.toml")
    later = dt.datetime(year, 6, 1, tzinfo=BERLIN)
    window, col = pipeline.gather(cfg, later, pipeline.Selection(latest=True))
    assert window.id == "2026-W48" and col.future == 1
    assert len(col.articles) >= 5


# --- what lies outside the content folder (issue 13) ------------------------------------


def test_symlinks_out_of_the_folder_are_skipped_with_a_warning(tmp_path: Path) -> None:
    c = tmp_path / "c"
    write(c, "2026-11-20-real.md", "---\ntitle: Real\n---\nx\n")
    secret = write(tmp_path / "private", "secrets.md", "# DB password\n\nhunter2 s3cr3t\n")
    write(tmp_path / "private" / "more", "2026-11-20-leak.md", "# Leak\n\nhunter2 too\n")
    (c / "2026-11-21-secret.md").symlink_to(secret)  # a post-shaped link to a secret
    (c / "linked").symlink_to(tmp_path / "private" / "more", target_is_directory=True)
    write(c, "inside/2026-11-19-target.md", "---\ntitle: Target\n---\nx\n")
    (c / "2026-11-22-alias.md").symlink_to(c / "inside" / "2026-11-19-target.md")
    col = load(c, tmp_path)
    assert sorted(a.slug for a in col.articles) == ["alias", "real", "target"]
    assert not any("hunter2" in a.body for a in col.articles)
    skipped = [w for w in warnings(col) if "outside the content folder" in w]
    assert len(skipped) == 2, warnings(col)
    assert any("2026-11-21-secret.md" in w for w in skipped)
    assert any("linked" in w for w in skipped)
    assert all("content.follow_symlinks_outside" in w for w in skipped)

    cfg = make_cfg(c, tmp_path)
    allowed = cfg.model_copy(
        update={"content": cfg.content.model_copy(update={"follow_symlinks_outside": True})}
    )
    col = content.load(allowed, now=NOW)
    assert sorted(a.slug for a in col.articles) == ["alias", "leak", "real", "secret", "target"]


def test_a_bad_language_field_is_reported_once(tmp_path: Path) -> None:
    write(tmp_path / "c", "2026-11-20-x.md", "---\ntitle: X\nlang: [en, de]\n---\nText.\n")
    col = load(tmp_path / "c", tmp_path)
    assert [m for m in warnings(col) if "lang: expected text" in m] == [
        f"{tmp_path / 'c' / '2026-11-20-x.md'}:3: lang: expected text, found a list; ignored"
    ]
