"""content/cache.py (issue 14): unchanged files are not read again, and a cache never
shows what a file no longer says."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest import config, content
from digest.content.cache import Cache
from digest.model import Collection

BERLIN = ZoneInfo("Europe/Berlin")
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=BERLIN)
AN_HOUR_AGO = NOW.timestamp() - 3600


def site(tmp_path: Path, base_url: str = "https://blog.example.com") -> config.Config:
    return config.parse(
        {
            "content": {"folder": "content"},
            "schedule": {"timezone": "Europe/Berlin"},
            "newsletter": {"base_url": base_url},
            "output": {"folder": "out"},
        },
        source=tmp_path / "config.toml",
    )


def write(folder: Path, name: str, text: str, when: float = 1_700_000_000) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.utime(path, (when, when))  # not "just written": a fresh file is never cached


def post(title: str, day: int) -> str:
    return f"---\ntitle: {title}\ndate: 2026-11-{day:02d}\n---\nSome text about {title}.\n"


def first_check(cfg: config.Config) -> list[str]:
    """A first ``check``-like read with a new cache, saved: its problems' messages."""
    cache = Cache.beside(cfg.output.folder)
    found = messages(content.load(cfg, now=NOW, cache=cache, articles=False))
    cache.save()
    return found


def two_folders(tmp_path: Path, days: int) -> Path:
    """A content folder with posts 1..days, the odd ones in f1/, the even ones in f0/."""
    folder = tmp_path / "content"
    for day in range(1, days + 1):
        write(folder, f"f{day % 2}/2026-11-{day:02d}-p{day}.md", post(f"Post {day}", day))
    return folder


def messages(col: Collection) -> list[str]:
    return [f"{p.path.name}: {p.message}" for p in col.problems]


def test_a_second_check_reads_from_the_cache_and_finds_the_same_problems(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "content"
    for day in range(1, 21):
        write(folder, f"2026-11-{day:02d}-post.md", post(f"Post {day}", day))
    write(folder, "2026-11-21-bad.md", "---\ndate: 2026-11-21\n---\n\nno title here\n")
    write(folder, "2026-11-22-same.md", post("Post 3", 3).replace("2026-11-03", "2026-11-22"))
    (folder / "2026-11-22-same.md").rename(folder / "2026-11-22-post.md")  # same URL
    cfg = site(tmp_path)

    first = Cache.beside(cfg.output.folder)
    cold = content.load(cfg, now=NOW, cache=first, articles=False)
    first.save()
    assert (tmp_path / "out" / ".cache" / "content.pickle").stat().st_mode & 0o077 == 0

    again = Cache.beside(cfg.output.folder)  # a new process: from the file
    warm = content.load(cfg, now=NOW, cache=again, articles=False)
    assert again.hits == 22 and again.misses == 0
    assert messages(warm) == messages(cold)
    assert any("no title" in m for m in messages(warm))
    assert warm.files == cold.files and warm.articles == ()
    # A read of every article keeps none whole: only an issue's few are (see below).
    full = content.load(cfg, now=NOW, cache=again)
    assert {a.title for a in full.articles} >= {"Post 1", "Post 20"}
    assert full.articles[0].html.startswith("<p>Some text about")


def test_an_edited_file_a_new_file_and_a_deleted_file_are_seen(tmp_path: Path) -> None:
    folder = tmp_path / "content"
    write(folder, "a.md", post("Alpha", 2))
    write(folder, "b.md", post("Beta", 3))
    cfg = site(tmp_path)
    assert first_check(cfg) == []

    write(folder, "a.md", "---\ndate: 2026-11-02\n---\n\n", when=AN_HOUR_AGO)  # no title now
    write(folder, "c.md", "---\ntitle: [unclosed\n---\n")
    (folder / "b.md").unlink()
    cache = Cache.beside(cfg.output.folder)
    col = content.load(cfg, now=NOW, cache=cache, articles=False)
    found = messages(col)
    assert any(m.startswith("a.md:") for m in found) and any(m.startswith("c.md:") for m in found)
    cached = {name for f in cache.folders.values() for name in f.names}
    assert col.files == 2 and cached == {"a.md", "c.md"}


def test_a_changed_setting_or_a_broken_cache_file_is_not_trusted(tmp_path: Path) -> None:
    folder = tmp_path / "content"
    write(folder, "2026-11-02-alpha.md", post("Alpha", 2))
    cfg = site(tmp_path)
    cache = Cache.beside(cfg.output.folder)
    content.load(cfg, now=NOW, cache=cache)
    cache.save()

    moved = site(tmp_path, "https://news.example.org")
    again = Cache.beside(moved.output.folder)
    col = content.load(moved, now=NOW, cache=again)
    assert again.hits == 0
    assert col.articles[0].url.startswith("https://news.example.org/")

    (tmp_path / "out" / ".cache" / "content.pickle").write_bytes(b"\x80\x05garbage")
    broken = Cache.beside(cfg.output.folder)
    assert content.load(cfg, now=NOW, cache=broken).articles[0].title == "Alpha"


def test_digest_check_twice_from_the_command_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from digest.cli import main

    folder = tmp_path / "content"
    write(folder, "2026-11-23-alpha.md", post("Alpha", 23))
    write(folder, "2026-11-24-nodate.md", "---\ntitle: x\ndate: someday\n---\ntext\n")
    (tmp_path / "config.toml").write_text(
        '[newsletter]\nbase_url = "https://blog.example.com"\npostal_address = "1 Street"\n'
        '[schedule]\ntimezone = "Europe/Berlin"\n[content]\nfolder = "content"\n'
    )
    args = ["--config", str(tmp_path / "config.toml"), "--now", "2026-11-29T20:00:00+01:00"]
    first = CliRunner().invoke(main, [*args, "check"])
    second = CliRunner().invoke(main, [*args, "check"])
    assert "someday" in first.output and first.output == second.output
    assert first.exit_code == second.exit_code
    assert (tmp_path / "out" / ".cache" / "content.pickle").exists()


def test_a_window_keeps_only_light_scans_and_links_to_older_posts_resolve(
    tmp_path: Path,
) -> None:
    # Issue 14: with a window, a file outside it is kept as a small tuple (no front
    # matter), in memory and in the cache; the window's files and a link's target are
    # scanned again, so the articles are the same with a cold cache, a warm one and none.
    folder = tmp_path / "content"
    for day in range(1, 21):
        write(folder, f"2026-11-{day:02d}-post.md", post(f"Post {day}", day))
    write(
        folder,
        "2026-11-24-linker.md",
        "---\ntitle: Linker\ndate: 2026-11-24\nslug: my link\n---\n"
        "See [the first]({% link 2026-11-01-post.md %}) and [gone]({% link nope.md %}).\n",
    )
    cfg = config.parse(
        {
            "content": {"folder": "content", "template_code": "liquid", "url_pattern": "/{slug}/"},
            "schedule": {"timezone": "Europe/Berlin"},
            "newsletter": {"base_url": "https://blog.example.com"},
            "output": {"folder": "out"},
        },
        source=tmp_path / "config.toml",
    )

    def window(dates: object) -> tuple[dt.datetime, dt.datetime]:
        return dt.datetime(2026, 11, 20, tzinfo=BERLIN), NOW

    def load(cache: Cache | None) -> Collection:
        return content.load(cfg, now=NOW, window=window, cache=cache)

    none = load(None)
    cold_cache = Cache.beside(cfg.output.folder)
    cold = load(cold_cache)
    cold_cache.save()
    warm_cache = Cache.beside(cfg.output.folder)
    warm = load(warm_cache)
    assert warm_cache.hits == 21 and warm_cache.misses == 0
    assert none.articles == cold.articles == warm.articles
    assert [a.title for a in warm.articles] == ["Linker", "Post 20"]
    assert 'href="https://blog.example.com/post/"' in warm.articles[0].html
    assert messages(none) == messages(cold) == messages(warm)
    # No front matter is kept: a row is columns (role, date, draft, language), or a Light.
    rows = [f.light(i) for f in warm_cache.folders.values() for i in range(len(f.names))]
    assert len(rows) == 21 and all(isinstance(r, content.cache.Light) for r in rows)
    assert all(isinstance(r, content.cache.Light) for f in warm_cache.folders.values()
               for r in f.odd.values())  # fmt: skip


_BUILD_AGAIN = """
import datetime as dt, json, sys
from pathlib import Path
from digest import config, pipeline
cfg = config.load(sys.argv[1])
now = dt.datetime.fromisoformat(sys.argv[2])
(Path(cfg.output.folder) / ".cache" / "render.json").unlink(missing_ok=True)  # compile again
built = pipeline.prepare(cfg, now, pipeline.Selection(latest=True), pipeline.cache_for(cfg))
libraries = [m for m in ("markdown_it", "syntok", "babel") if m in sys.modules]
summaries = [i.summary.text for g in built.issue.groups for i in g.items]
print(json.dumps([libraries, summaries, built.rendered.html]))
"""


def test_an_issue_built_again_reads_and_summarizes_only_what_changed(tmp_path: Path) -> None:
    """Issue 14: the articles of the last issue are kept whole with their summaries and
    dates, so building it again after a template or config edit parses, summarizes and
    formats nothing (the Markdown, sentence and CLDR libraries are not even imported),
    with the same email; after an edit to a post, that post is read again."""
    import json
    import subprocess
    import sys

    folder = tmp_path / "content"
    for day in range(18, 25):
        write(
            folder,
            f"2026-11-{day:02d}-post.md",
            f"---\ntitle: Post {day}\ndate: 2026-11-{day:02d}\n---\n"
            f"The first sentence of post {day} says what changed. A second one adds why"
            " (in brackets, which only syntok splits).\n",
        )
    (tmp_path / "config.toml").write_text(
        '[newsletter]\nname = "Weekly"\nbase_url = "https://blog.example.com"\n'
        '[sender]\nfrom = "Weekly <news@example.com>"\n'
        '[content]\nfolder = "content"\n[output]\nfolder = "out"\n'
        '[schedule]\ntimezone = "Europe/Berlin"\n',
        encoding="utf-8",
    )

    def build() -> tuple[list[str], list[str], str]:
        out = subprocess.run(
            [sys.executable, "-c", _BUILD_AGAIN, str(tmp_path / "config.toml"), NOW.isoformat()],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        ).stdout
        libraries, summaries, html = json.loads(out)
        return libraries, summaries, html

    first = build()
    assert first[0] == ["markdown_it", "syntok", "babel"]
    assert "post 24 says what changed" in first[1][0] and "November 24, 2026" in first[2]
    again = build()
    assert again[0] == [] and again[1:] == first[1:]
    # An edited post (dated in the past, so its stat is trusted) is read and summarized again.
    write(
        folder,
        "2026-11-24-post.md",
        "---\ntitle: Post 24\ndate: 2026-11-24\n---\nNow the lede says something else.\n",
        when=1_700_000_100,
    )
    edited = build()
    assert "markdown_it" in edited[0] and "babel" not in edited[0]
    assert edited[1][0] == "Now the lede says something else." and edited[1][1:] == first[1][1:]
    assert "Now the lede says something else." in edited[2] and "post 24 says" not in edited[2]


def test_a_post_linked_under_two_names_is_two_articles_cold_and_warm(tmp_path: Path) -> None:
    # One file, two names (a symlink inside the folder): one path and stat, but two
    # names and two URLs. The issue's articles kept whole are kept per name.
    folder = tmp_path / "content"
    write(folder, "2026-11-24-post.md", post("Post 24", 24))
    (folder / "2026-11-24-alias.md").symlink_to("2026-11-24-post.md")
    cfg = site(tmp_path)

    def window(dates: object) -> tuple[dt.datetime, dt.datetime]:
        return dt.datetime(2026, 11, 20, tzinfo=BERLIN), NOW

    urls = []
    for _ in range(3):  # no cache file, then written, then read
        cache = Cache.beside(cfg.output.folder)
        col = content.load(cfg, now=NOW, window=window, cache=cache)
        cache.save()
        urls.append(sorted(a.url for a in col.articles))
    assert urls[0] == urls[1] == urls[2]
    assert len(urls[0]) == 2 and urls[0][0] != urls[0][1]
    assert any("alias" in u for u in urls[0]) and any("/post" in u for u in urls[0])


def test_the_walk_by_folder_descriptor_finds_what_the_walk_by_path_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where folders cannot be opened by descriptor (Windows), the walk goes by path; both
    # find the same files with the same stats, links and skipped links included.
    folder = tmp_path / "content"
    for day in range(1, 6):
        write(folder, f"posts/2026/2026-11-{day:02d}-post.md", post(f"Post {day}", day))
    write(folder, ".hidden/x.md", post("Hidden", 7))
    (folder / "posts" / "linked.md").symlink_to("2026/2026-11-01-post.md")
    (folder / "outside.md").symlink_to(tmp_path / "elsewhere.md")
    write(tmp_path, "elsewhere.md", post("Elsewhere", 8))

    def walk() -> list[tuple[str, tuple[int, ...]]]:
        walk = content._walk(str(folder), stats=True)
        found, skipped, total = list(walk.folders), walk.skipped, walk.total
        assert total == 6 and len(skipped) == 1
        assert "outside the content folder" in skipped[0].message
        return [
            (f.rel + name, (f.path(i), *f.stamps[4 * i : 4 * i + 4]))
            for f in found for i, name in enumerate(f.names)
        ]  # fmt: skip

    by_fd = walk()
    monkeypatch.setattr(content, "_WALK_BY_FD", False)
    by_path = walk()
    assert by_fd == by_path and len(by_fd) == 6
    posts = {f"posts/2026/2026-11-{day:02d}-post.md" for day in range(1, 6)}
    assert {rel for rel, _ in by_fd} == {*posts, "posts/linked.md"}
    linked = dict(by_fd)["posts/linked.md"]
    assert linked == dict(by_fd)["posts/2026/2026-11-01-post.md"]  # the link is read as its target
    assert all(st[1] > 0 and st[4] > 0 for _, st in by_fd)  # every file stat'ed


def test_the_cache_is_keyed_by_all_of_digests_code_and_the_reading_libraries() -> None:
    # The last issue's articles are kept whole: any module of digest (text.py sanitizes
    # and cuts titles) and the Markdown, HTML and YAML libraries shape them.
    from digest.content.cache import code_version

    stamp = code_version()
    for part in ("digest/text.py:", "digest/model.py:", "content/html.py:", "markdown_it", "nh3"):
        assert part in stamp, part


def test_the_exclusion_shortcut_decides_as_the_patterns_do() -> None:
    # content.exclude is checked by name and by path; the shortcut (a pattern that
    # starts with a plain character) must never change which files are left out.
    import fnmatch

    names = [
        "README.md", "readme.md", "docs/README.md", "posts/2026-11-20-post.md", "404.md",
        "_index.md", "sec/_index.md", "LICENSE", "CHANGELOG.md", "drafts/x.md",
        "Readme.md", "a/SECURITY.md", "SECURITYx/post.md", "posts/README/x.md",
    ]  # fmt: skip
    for patterns in [
        config.Content().exclude,
        ("drafts/*",),
        ("*.draft.md", "README*"),
        ("[Rr]eadme*",),
        ("",),
        (),
    ]:
        excluded = content._excluder(patterns)
        for rel in names:
            name = rel.rsplit("/", 1)[-1]
            expected = any(
                fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(rel, p) for p in patterns
            )
            folder = rel[: len(rel) - len(name)]
            assert excluded(folder, name) == expected, (patterns, rel)


def test_the_scan_kept_in_columns_gives_back_what_the_scan_found(tmp_path: Path) -> None:
    # Issue 14: a folder's scans are kept as columns (a name, a stamp, two instants and
    # a few bytes a file), not an object a file. Dates in several zones, before 1970,
    # in the hour a DST change repeats, drafts, pages, an expiry, a warning, another
    # language, future posts and a file too fresh to trust come back as they were read.
    folder = tmp_path / "content"
    dated = {
        "posts/a.md": "2026-11-02",  # no zone: the schedule's (Berlin, winter)
        "posts/b.md": "2026-07-02T08:30:00",  # Berlin, summer
        "posts/c.md": "2026-11-03T10:00:00+05:30",
        "posts/d.md": "2026-11-04T10:00:00Z",
        "posts/e.md": "1969-07-20T20:17:40.123456+00:00",
        "posts/f.md": "2026-10-25T02:30:00",  # Berlin's repeated hour
        "posts/g.md": "2027-01-01",  # future
        "old/h.md": "2019-05-05",
    }
    for name, when in dated.items():
        write(folder, name, f"---\ntitle: T {name}\ndate: {when}\n---\nText.\n")
    write(folder, "posts/draft.md", "---\ntitle: D\ndate: 2026-11-05\ndraft: true\n---\nx\n")
    write(folder, "posts/undated-draft.md", "---\ntitle: U\ndraft: true\n---\nx\n")
    write(folder, "about.md", "---\ntitle: About\n---\nA page.\n")
    write(
        folder, "posts/exp.md", "---\ntitle: E\ndate: 2026-11-01\nexpiryDate: 2026-11-10\n---\nx\n"
    )
    write(folder, "posts/warn.md", "---\ntitle: W\ndate: 2026-11-06\nexpiryDate: someday\n---\nx\n")
    write(folder, "posts/fr.md", "---\ntitle: F\ndate: 2026-11-07\nlang: fr\n---\nx\n")
    write(folder, "posts/bad.md", "---\ntitle: [unclosed\n---\n")
    write(folder, "posts/fresh.md", post("Fresh", 8), when=dt.datetime.now().timestamp())
    # Rows kept whole (an expiry, a warning) as the next future post and the newest.
    soon = "---\ntitle: S\ndate: 2026-12-20T08:00:00+01:00\nexpiryDate: 2027-06-01\n---\nx\n"
    write(folder, "posts/soon.md", soon)
    write(folder, "late.md", "---\ntitle: L\ndate: 2026-11-25\nexpiryDate: soon\n---\nx\n")
    cfg = config.parse(
        {
            "content": {"folder": "content"},
            "schedule": {"timezone": "Europe/Berlin"},
            "newsletter": {"base_url": "https://blog.example.com", "language": "en"},
            "output": {"folder": "out"},
        },
        source=tmp_path / "config.toml",
    )

    def window(dates: object) -> tuple[dt.datetime, dt.datetime]:
        return dt.datetime(1960, 1, 1, tzinfo=dt.UTC), NOW

    def shown(when: dt.datetime | None) -> object:
        return when and (when, when.utcoffset(), when.tzname(), when.fold)

    def facts(col: Collection) -> tuple[object, ...]:
        dates = [shown(a.date) for a in col.articles]
        return (col, dates, shown(col.oldest), shown(col.newest), shown(col.next_future))

    none = content.load(cfg, now=NOW, window=window)
    cache = Cache.beside(cfg.output.folder)
    cold = content.load(cfg, now=NOW, window=window, cache=cache)
    cache.save()
    warm_cache = Cache.beside(cfg.output.folder)
    warm = content.load(cfg, now=NOW, window=window, cache=warm_cache)
    assert facts(none) == facts(cold) == facts(warm)
    assert warm_cache.misses == 1  # the fresh file only: read again, not trusted
    assert (warm.drafts, warm.future, warm.other_language, warm.pages) == (2, 2, 1, 2)
    assert {a.path.name for a in warm.articles} == {
        "a.md", "b.md", "c.md", "d.md", "e.md", "f.md", "h.md", "warn.md", "fresh.md",
        "late.md",
    }  # fmt: skip
    for col in (none, cold, warm):
        assert col.next_future == dt.datetime(2026, 12, 20, 7, tzinfo=dt.UTC)
        assert col.newest == dt.datetime(2026, 11, 25, tzinfo=BERLIN)
        assert col.oldest == dt.datetime(1969, 7, 20, 20, 17, 40, 123456, tzinfo=dt.UTC)
    assert any("warn.md" in str(p.path) for p in warm.problems)
    assert any("bad.md" in str(p.path) for p in warm.problems)
    # Every row as the scan read it.
    for f in warm_cache.folders.values():
        for i, name in enumerate(f.names):
            scanned = content.cache.light(
                content._scan(f.path(i), f.rel + name, content._Context.of(cfg, folder))
            )
            row = f.light(i)
            assert row == scanned and shown(row.date) == shown(scanned.date), name

    # One file edited among many: only it is read again, and the issue sees the change.
    write(folder, "posts/c.md", "---\ntitle: C2\ndate: 2026-11-09\n---\nText.\n", when=AN_HOUR_AGO)
    again_cache = Cache.beside(cfg.output.folder)
    again = content.load(cfg, now=NOW, window=window, cache=again_cache)
    assert again_cache.misses == 2  # c.md, and the fresh file again
    assert "C2" in {a.title for a in again.articles}
    assert facts(again) == facts(content.load(cfg, now=NOW, window=window))


def test_fixed_offsets_do_not_pile_up_in_a_folder_run_after_run(tmp_path: Path) -> None:
    # A new process makes new timezone objects for "+02:00"; the cached folder's zone
    # table must match them by offset and name, not grow by one each run (then overflow
    # into whole rows).
    folder = tmp_path / "content"
    for day in range(1, 6):
        write(
            folder,
            f"p{day}.md",
            f"---\ntitle: P{day}\ndate: 2026-11-0{day}T10:00:00+02:00\n---\nx\n",
        )
    cfg = site(tmp_path)
    for run in range(4):
        content.dates._ZONES.clear()  # as in a new process
        if run:
            write(
                folder, "p1.md", f"---\ntitle: P1 {run}\ndate: 2026-11-01T10:00:00+02:00\n---\nx\n"
            )
        cache = Cache.beside(cfg.output.folder)
        col = content.load(cfg, now=NOW, cache=cache, articles=False)
        cache.save()
        assert col.oldest == dt.datetime(2026, 11, 1, 8, tzinfo=dt.UTC)
        (record,) = cache.folders.values()
        assert len(record.zones) == 1 and not record.odd, run


def test_a_damaged_parse_record_in_the_cache_is_parsed_again_not_a_crash(tmp_path: Path) -> None:
    folder = tmp_path / "content"
    write(folder, "a.md", post("Alpha", 2))
    write(folder, "b.md", "---\ndate: 2026-11-03\n---\n\nno title\n")
    cfg = site(tmp_path)
    first = first_check(cfg)
    cache = Cache.beside(cfg.output.folder)
    content.load(cfg, now=NOW, cache=cache, articles=False)  # reads the records
    (record,) = cache.folders.values()
    state = list(record.__getstate__())
    state[-1] = state[-1][: len(state[-1]) // 2]  # the parse results, cut short
    record.__setstate__(tuple(state))
    cache.put_folder(record)  # (the cache hands out copies of records kept in its file)
    cache.save()
    again = Cache.beside(cfg.output.folder)
    assert messages(content.load(cfg, now=NOW, cache=again, articles=False)) == first
    assert first and any("no title" in m for m in first)


def test_the_walk_gives_folders_in_path_order_one_at_a_time(tmp_path: Path) -> None:
    # Folders come as their paths sort ("a-b/" before "a/" before "a/c/"): the order the
    # cache's records and ties between equal dates follow, whatever the file system's.
    folder = tmp_path / "content"
    for rel in ["b/x.md", "a/c/x.md", "a-b/x.md", "a/x.md", "x.md", "a/c d/x.md", "A/x.md"]:
        write(folder, rel, post("X", 2))
    walk = content._walk(str(folder), stats=True)
    rels = [f.rel for f in walk.folders]
    assert rels == sorted(rels) == ["", "A/", "a-b/", "a/", "a/c d/", "a/c/", "b/"]
    assert walk.total == 7


def test_a_damaged_folder_record_is_read_again_from_the_files(tmp_path: Path) -> None:
    # The cache keeps one record per folder, read when the scan reaches it: a damaged
    # one costs that folder a new scan, never a crash or a wrong answer.
    folder = two_folders(tmp_path, 8)
    write(folder, "f0/broken.md", "---\ntitle: [unclosed\n---\n")
    cfg = site(tmp_path)
    first = first_check(cfg)
    path = tmp_path / "out" / ".cache" / "content.pickle"
    data = bytearray(path.read_bytes())
    at = data.index(b"p2.md")  # inside folder f0/'s record
    data[at - 40 : at + 40] = b"\xff" * 80
    path.write_bytes(bytes(data))
    again = Cache.beside(cfg.output.folder)
    col = content.load(cfg, now=NOW, cache=again, articles=False)
    assert messages(col) == first and any("broken.md" in m for m in messages(col))
    assert again.misses == 5 and again.hits == 4  # f0/ scanned again, f1/ from the cache
    again.save()
    third = Cache.beside(cfg.output.folder)
    content.load(cfg, now=NOW, cache=third, articles=False)
    assert third.misses == 0  # mended in the file


def test_a_windowed_scan_keeps_nothing_of_the_files_outside_the_window(tmp_path: Path) -> None:
    # Issue 14: the memory a cached build's scan holds does not grow with the articles
    # outside the issue's window: about 8 bytes a post remain (for choosing the window)
    # and a few hundred a folder (where its record lies).
    import tracemalloc

    def peak(files: int) -> int:
        base = tmp_path / str(files)
        for n in range(files):
            name = f"y{n // 100:02d}/2025-{n % 12 + 1:02d}-{n % 28 + 1:02d}-p{n}.md"
            write(base / "content", name, post(f"Post {n}", 1).replace("2026-11", "2025-01"))
        write(base / "content", "2026-11-24-new.md", post("New", 24))
        cfg = site(base)

        def window(dates: Sequence[dt.datetime]) -> tuple[dt.datetime, dt.datetime]:
            return dates[-1] - dt.timedelta(days=7), dates[-1] + dt.timedelta(seconds=1)

        cache = Cache.beside(cfg.output.folder)
        content.load(cfg, now=NOW, window=window, cache=cache)
        cache.save()
        cache = Cache.beside(cfg.output.folder)
        tracemalloc.start()
        try:
            col = content.load(cfg, now=NOW, window=window, cache=cache)
            used = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert [a.title for a in col.articles] == ["New"] and cache.misses == 0
        return used

    small, large = peak(200), peak(4000)
    assert large - small < 40 * 3800, (small, large)  # (it was ~190 bytes a file)


def test_a_save_that_cannot_replace_the_file_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file read is closed before it is replaced (Windows replaces no open file); if
    # the replace still fails, the records are read from the old file again, and a later
    # save writes them.
    folder = two_folders(tmp_path, 6)
    cfg = site(tmp_path)
    expected = first_check(cfg)

    cache = Cache.beside(cfg.output.folder)
    content.load(cfg, now=NOW, cache=cache, articles=False)  # reads the file
    write(folder, "f0/2026-11-20-new.md", "---\ndate: 2026-11-20\n---\n\nno title\n")

    def refused(src: object, dst: object) -> None:
        raise PermissionError("the file is in use")

    with monkeypatch.context() as m:
        m.setattr(os, "replace", refused)
        col = content.load(cfg, now=NOW, cache=cache, articles=False)
        cache.save()  # fails quietly
    assert cache.misses == 1 and any("new.md" in msg for msg in messages(col))
    again = content.load(cfg, now=NOW, cache=cache, articles=False)  # the same cache
    assert messages(again) == messages(col) and cache.misses == 1
    cache.save()
    fresh = Cache.beside(cfg.output.folder)
    assert messages(content.load(cfg, now=NOW, cache=fresh, articles=False)) == messages(col)
    assert fresh.misses == 0 and len(messages(col)) == len(expected) + 1
