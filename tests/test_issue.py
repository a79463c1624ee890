"""digest.py: which articles make an issue, in which order, under which subject."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from digest import config
from digest import issue as issues
from digest.errors import ConfigError, NothingToSend
from digest.model import Article

TZ = "Europe/Berlin"


def cfg(**content: object) -> config.Config:
    return config.parse(
        {
            "newsletter": {"name": "Signal", "first_issue": "2026-W40"},
            "schedule": {"timezone": TZ, "day": "mon", "time": "09:00"},
            "content": {"summary_words": 20, **content},
        }
    )


def art(slug: str, when: str, **kw: object) -> Article:
    date = dt.datetime.fromisoformat(when)
    body = kw.pop("body", f"{slug.title()} is the lede of this article. It has two sentences.")
    return Article(
        path=Path(f"{slug}.md"),
        slug=slug,
        title=str(kw.pop("title", slug.replace("-", " ").title())),
        date=date,
        url=f"https://example.com/{slug}/",
        body=str(body),
        html=f"<p>{body}</p>",
        **kw,  # type: ignore[arg-type]
    )


WEEK48 = "2026-W48"  # sent Mon 2026-11-23 09:00 Berlin, covers 11-16 09:00 .. 11-23 09:00


def test_issue_holds_only_its_window_and_orders_featured_weight_then_newest() -> None:
    c = cfg()
    w = issues.window_for_week(c, WEEK48)
    arts = [
        art("old", "2026-11-16T08:59:59+01:00"),  # one second before the window opens
        art("first", "2026-11-16T09:00:00+01:00"),  # at the opening edge: in
        art("newest", "2026-11-22T20:00:00+01:00"),
        art("heavy", "2026-11-17T10:00:00+01:00", weight=2),
        art("light", "2026-11-18T10:00:00+01:00", weight=1),
        art("star", "2026-11-16T12:00:00+01:00", featured=True),
        art("next-week", "2026-11-23T09:00:00+01:00"),  # at the closing edge: next issue
    ]
    issue = issues.build_issue(c, w, arts, first=issues.window_for_week(c, "2026-W40"))
    assert [i.article.slug for i in issue.items] == ["star", "light", "heavy", "newest", "first"]
    assert issue.id == WEEK48
    assert issue.number == 9  # W40 is #1
    assert issue.subject == "Signal #9: Star"
    # The preheader follows the subject in the inbox: it does not repeat its title.
    assert issue.preheader.startswith("5 articles this week: Light; Heavy")
    assert "Star" not in issue.preheader


def test_cap_counts_the_rest_for_the_archive() -> None:
    c = cfg(max_articles=2)
    w = issues.window_for_week(c, WEEK48)
    arts = [art(f"a{i}", f"2026-11-{17 + i}T10:00:00+01:00") for i in range(5)]
    issue = issues.build_issue(c, w, arts)
    assert len(issue.items) == 2
    assert issue.more == 3
    # The rest are listed by title (in order), not only counted.
    assert [a.slug for a in issue.rest] == ["a2", "a1", "a0"]


def test_grouping_by_category_keeps_order_of_first_appearance() -> None:
    c = cfg(group_by="category")
    w = issues.window_for_week(c, WEEK48)
    arts = [
        art("a", "2026-11-20T10:00:00+01:00", categories=("AI",)),
        art("b", "2026-11-19T10:00:00+01:00", categories=("Chips",)),
        art("c", "2026-11-18T10:00:00+01:00", categories=("AI",)),
        art("d", "2026-11-17T10:00:00+01:00"),
    ]
    issue = issues.build_issue(c, w, arts)
    assert [(g.name, [i.article.slug for i in g.items]) for g in issue.groups] == [
        ("AI", ["a", "c"]),
        ("Chips", ["b"]),
        ("Other", ["d"]),
    ]


def test_empty_week_is_nothing_to_send() -> None:
    c = cfg()
    w = issues.window_for_week(c, WEEK48)
    with pytest.raises(NothingToSend, match="nothing to send for 2026-W48"):
        issues.build_issue(c, w, [art("late", "2026-12-01T10:00:00+01:00")])


def test_subject_is_one_line_and_titles_are_not_templates() -> None:
    c = cfg()
    w = issues.window_for_week(c, WEEK48)
    a = art("x", "2026-11-20T10:00:00+01:00", title="{{ 7*7 }} ways\r\nBcc: evil@example.com")
    issue = issues.build_issue(c, w, [a])
    assert "\r" not in issue.subject and "\n" not in issue.subject
    assert "{{ 7*7 }}" in issue.subject and "49" not in issue.subject


def test_week_option_validation() -> None:
    c = cfg()
    with pytest.raises(config.ConfigError, match="not an ISO week"):
        issues.window_for_week(c, "2026-48")
    with pytest.raises(config.ConfigError, match="has no week 53"):
        issues.window_for_week(c, "2027-W53")


def test_editor_note_of_the_week_is_read_and_not_an_article(tmp_path: Path) -> None:
    from digest import content

    folder = tmp_path / "content"
    (folder / "_notes").mkdir(parents=True)
    (folder / "a.md").write_text("---\ntitle: A\ndate: 2026-11-20T10:00:00+01:00\n---\nBody.\n")
    (folder / "_notes" / "2026-W48.md").write_text(
        "A short week: see [the archive](/newsletter/).\n\n- One\n- Two\n<script>x</script>\n"
    )
    c = cfg(folder=str(folder))
    now = dt.datetime(2026, 11, 23, 8, 0, tzinfo=c.schedule.tz)
    found = content.load(c, now=now)
    assert [a.slug for a in found.articles] == ["a"]  # the note is not an article
    issue = issues.build_issue(c, issues.window_for_week(c, WEEK48), found.articles)
    assert issue.note is not None
    assert 'href="https://example.com/newsletter/"' in issue.note.html
    assert "<script>" not in issue.note.html
    assert issue.note.paragraphs == ("A short week: see the archive.", "- One", "- Two")
    # Another week has none; an edition's own note comes first.
    assert issues.load_note(c, "2026-W47", "en") is None
    (folder / "_notes" / "2026-W48.de.md").write_text("Kurze Woche.\n")
    assert issues.load_note(c, WEEK48, "de").paragraphs == ("Kurze Woche.",)  # type: ignore[union-attr]


@pytest.mark.parametrize("key", ["subject", "preheader"])
def test_subject_and_preheader_templates_cannot_reach_python(key: str) -> None:
    escape = "{{ cycler.__init__.__globals__.os.popen('echo PWNED-$((6*7))').read() }}"
    c = config.parse(
        {"newsletter": {key: f"Hi {escape}"}, "schedule": {"timezone": TZ}},
        Path("/srv/nl/config.toml"),
    )
    w = issues.window_for_week(c, WEEK48)
    with pytest.raises(ConfigError) as info:
        issue = issues.build_issue(c, w, [art("a", "2026-11-20T10:00:00+01:00")])
        assert "PWNED-42" not in issue.subject + issue.preheader  # (before: the output)
    message = str(info.value)
    assert (
        f"newsletter.{key}" in message and "unsafe" in message and "/srv/nl/config.toml" in message
    )


def test_a_broken_subject_template_names_the_key() -> None:
    c = config.parse({"newsletter": {"subject": "{{ nmae }}"}, "schedule": {"timezone": TZ}})
    w = issues.window_for_week(c, WEEK48)
    with pytest.raises(ConfigError, match=r"newsletter\.subject: .*nmae"):
        issues.build_issue(c, w, [art("a", "2026-11-20T10:00:00+01:00")])


@pytest.mark.parametrize(
    ("lang", "one", "three"),
    [
        ("en", "1 article this week: ", "3 articles this week: "),
        ("fr", "1 article cette semaine : ", "3 articles cette semaine : "),  # one line: a space
        ("de", "1 Artikel diese Woche: ", "3 Artikel diese Woche: "),
        ("ar", "مقال واحد هذا الأسبوع: ", "3 مقالات هذا الأسبوع: "),
        ("zh", "本周1篇文章：", "本周3篇文章："),
    ],
)
def test_the_default_preheader_speaks_the_issues_language(lang: str, one: str, three: str) -> None:
    c = config.parse({"newsletter": {"name": "Signal", "language": lang}})
    w = issues.window_for_week(c, WEEK48)
    titles = ["Tide tables", "Harbour lights", "Net mending"]
    arts = [art(f"a{i}", f"2026-11-2{i}T10:00:00+01:00", title=t) for i, t in enumerate(titles)]
    assert issues.build_issue(c, w, arts[:1]).preheader.startswith(one)
    many = issues.build_issue(c, w, arts)
    # The subject names the top (newest) title: the preheader lists the other two.
    assert many.preheader.startswith(three) and "Net mending" not in many.preheader
    own = config.parse({"newsletter": {"language": lang, "preheader": "Fresh: {{ titles }}"}})
    assert issues.build_issue(own, w, arts).preheader.startswith("Fresh: ")
