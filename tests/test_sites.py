"""Real blogs, as their generators publish them: each post's URL, which files are posts,
languages, and template code that never reaches a reader.

The sites here are small and written for these tests; they reproduce structures found
in public blogs of each generator (a permalink rule, a folder layout, a front matter
shape), with text of our own. Each rule cites the generator's documentation.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from digest import config, content
from digest.model import Collection

NOW = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def load(folder: Path, tmp_path: Path, **settings: object) -> Collection:
    newsletter = settings.pop("newsletter", {})
    cfg = config.parse(
        {
            "content": {"folder": str(folder), **settings},
            "schedule": {"timezone": "UTC"},
            "newsletter": newsletter,
        },
        source=tmp_path / "digest.toml",
    )
    return content.load(cfg, now=NOW)


def by_name(col: Collection) -> dict[str, content.Article]:
    return {a.path.name: a for a in col.articles}


def shown(art: content.Article) -> str:
    return art.html + "\n" + art.title


# --- Jekyll: https://jekyllrb.com/docs/permalinks/ and /docs/posts/ ---------------------


def test_jekyll_collection_permalink_timezone_and_categories(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write(
        site,
        {
            "_config.yml": (
                "url: https://blog.example.org\ntimezone: America/Los_Angeles\n"
                "collections:\n  posts:\n    permalink: /news/:year/:month/:day/:title/\n"
            ),
            # 02:12 in Berlin is the evening before in Los Angeles: the URL shows that day.
            "_posts/2024-05-06-kettle-2-0-released.md": (
                "---\ntitle: Kettle 2.0 released\ndate: 2024-05-06 02:12:52 +0200\n---\n"
                "The new kettle boils faster.\n"
            ),
            "_posts/2024-05-20-no-date-in-front-matter.md": "---\ntitle: Plain\n---\nText.\n",
            "_posts/2024-06-01-own-permalink.md": (
                "---\ntitle: Moved\npermalink: /elsewhere/moved.html\n---\nText.\n"
            ),
            "_drafts/half-written.md": "---\ntitle: Half\n---\nNot yet.\n",
            "about.md": "---\ntitle: About\nlayout: page\n---\nWho we are.\n",
            "README.md": "# How to build this site\n",
        },
    )
    col = load(site, tmp_path)
    arts = by_name(col)
    base = "https://blog.example.org"
    assert (
        arts["2024-05-06-kettle-2-0-released.md"].url
        == f"{base}/news/2024/05/05/kettle-2-0-released/"
    )
    assert arts["2024-05-20-no-date-in-front-matter.md"].url == (
        f"{base}/news/2024/05/20/no-date-in-front-matter/"
    )
    assert arts["2024-06-01-own-permalink.md"].url == f"{base}/elsewhere/moved.html"
    assert set(arts) == {
        "2024-05-06-kettle-2-0-released.md",
        "2024-05-20-no-date-in-front-matter.md",
        "2024-06-01-own-permalink.md",
    }
    assert col.problems == ()  # the page, the draft and the README are no "bad files"
    assert col.pages == 1 and col.drafts == 1 and col.excluded == 1
    assert col.site is not None and col.site.startswith("Jekyll site (_config.yml)")


def test_jekyll_default_date_style_with_folder_categories(tmp_path: Path) -> None:
    # No permalink set: the "date" style, /:categories/:year/:month/:day/:title:output_ext.
    write(
        tmp_path / "site",
        {
            "_config.yml": "url: https://example.net\n",
            "releases/_posts/2024-03-02-Big-News.md": (
                "---\ntitle: Big news\ncategories: [Tools]\n---\nText.\n"
            ),
        },
    )
    (art,) = load(tmp_path / "site", tmp_path).articles
    assert art.url == "https://example.net/releases/tools/2024/03/02/Big-News.html"


def test_liquid_never_reaches_a_reader_and_links_resolve(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write(
        site,
        {
            "_config.yml": "url: https://example.net\npermalink: pretty\n",
            "_posts/2024-01-10-first.md": "---\ntitle: First\n---\nThe first post.\n",
            "_posts/2024-02-10-second.md": (
                "---\ntitle: Second\n---\n"
                "{% assign greeting = 'hi' %}See [the first]({% post_url 2024-01-10-first %}) "
                "and [the list]({% link _posts/2024-01-10-first.md %}) and "
                "[a gone one]({% link _posts/nope.md %}).\n"
                "Built with {{ site.name }} in {{ page.date | date: '%Y' }}.{: .note}\n\n"
                "{% raw %}Write {{ page.title }} to show a title.{% endraw %}\n\n"
                "{% highlight ruby %}\nputs 1\n{% endhighlight %}\n\n"
                "A claim.[^1]\n\n[^1]: The note.\n"
            ),
        },
    )
    arts = by_name(load(site, tmp_path))
    second = arts["2024-02-10-second.md"]
    html = second.html
    assert 'href="https://example.net/2024/01/10/first/"' in html  # post_url and link
    assert html.count("https://example.net/2024/01/10/first/") == 2
    assert "a gone one" in html and "nope" not in html  # not found: the text, unlinked
    assert "{% raw %}" not in html and "Write {{ page.title }} to show a title." in html
    assert "<pre><code>puts 1" in html
    for raw in ("{% assign", "{{ site.name", "page.date", "{:", "[^1]", "The note."):
        assert raw not in html, raw


# --- Hugo: https://gohugo.io/configuration/permalinks/, /content-management/urls/ -------


def test_hugo_permalinks_languages_and_shortcodes(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write(
        site,
        {
            "config/_default/hugo.toml": (
                'baseURL = "https://www.example.fr/"\ndefaultContentLanguage = "fr"\n'
                "removePathAccents = true\n"
                '[permalinks]\nposts = "/:year/:month/:day/:slug"\npages = "/:slug"\n'
            ),
            "config/_default/languages.toml": (
                '[fr]\ncontentDir = "content/fr"\n[en]\ncontentDir = "content/en"\n'
            ),
            "content/_index.md": "---\ntitle: Home\n---\n",
            "content/fr/posts/_index.md": "---\ntitle: Billets\n---\n",
            # :slug comes from the title (accents removed, punctuation dropped, "_" kept)
            "content/fr/posts/2021/2021-01-19-fichier.md": (
                '---\ntitle: "L\'histoire du fichier backup_label ?"\ndate: 2021-01-19\n---\n'
                "{{< message >}}Un encadré qui reste lisible.{{< /message >}}\n\n"
                'Voir [l\'autre]({{< ref "/posts/2021/2021-02-01-autre.md" >}}).\n'
            ),
            "content/fr/posts/2021/2021-02-01-autre.md": (
                "---\ntitle: Autre\nslug: Un-Autre\ndate: 2021-02-01\n---\nTexte.\n"
            ),
            "content/en/posts/2023-07-27-the-file.md": (
                "---\ntitle: The file, explained\ndate: 2023-07-27\n"
                "translationKey: fichier\n---\nThe English version.\n"
            ),
            "content/fr/pages/a-propos.md": "---\ntitle: À propos\n---\nQui suis-je.\n",
            "content/fr/posts/brouillon.md": "---\ntitle: Brouillon\ndraft: true\n---\n...\n",
            "themes/t/README.md": "---\ntitle: [broken\n---\n",
        },
    )
    french = by_name(load(site, tmp_path, newsletter={"language": "fr"}))
    a = french["2021-01-19-fichier.md"]
    assert a.url == "https://www.example.fr/2021/01/19/lhistoire-du-fichier-backup_label/"
    assert "Un encadré qui reste lisible." in a.html and "{{<" not in a.html
    assert 'href="https://www.example.fr/2021/02/01/un-autre/"' in a.html  # ref resolved
    assert set(french) == {"2021-01-19-fichier.md", "2021-02-01-autre.md"}  # no page, no draft
    english = load(site, tmp_path, newsletter={"language": "en"})
    (en,) = english.articles  # one language per newsletter: a translation never twice
    assert en.url == "https://www.example.fr/en/2023/07/27/the-file-explained/"
    assert english.other_language == 2 and english.problems == ()  # the theme is not read


def test_hugo_ugly_urls_and_url_front_matter(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write(
        site,
        {
            "hugo.toml": (
                'baseURL = "https://example.org/"\n'
                '[permalinks]\npost = "/:year/:month/:day/:slug/"\n[uglyURLs]\npost = true\n'
            ),
            "content/post/2022-5-9-renamed.md": (
                "---\ntitle: Something\nslug: PQ-Certs\ndate: 2022-05-09T00:00:00Z\n---\nx\n"
            ),
            "content/post/fixed.md": (
                "---\ntitle: Fixed\nurl: /special/place/\ndate: 2022-05-10\n---\nx\n"
            ),
        },
    )
    arts = by_name(load(site / "content", tmp_path))  # the content folder works too
    assert arts["2022-5-9-renamed.md"].url == "https://example.org/2022/05/09/pq-certs.html"
    assert arts["fixed.md"].url == "https://example.org/special/place/"


# --- Zola: https://www.getzola.org/documentation/content/page/ ------------------------


def test_zola_path_dates_in_names_internal_links(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write(
        site,
        {
            "config.toml": 'base_url = "https://blog.example.com"\ntitle = "A blog"\n',
            "content/_index.md": '+++\ntitle = "Blog"\n+++\n',
            "content/Tool-1.2.0.md": (
                '+++\ntitle = "Tool 1.2.0"\npath = "2025/03/06/Tool-1.2.0"\n+++\n'
                "See [the survey](@/inside/2025-02-01-survey.md#results).\n"
                '{{ youtube(id="abc") }}\n{% note() %}Kept text.{% end %}\n'
            ),
            "content/inside/2025-02-01-survey.md": '+++\ntitle = "Survey"\n+++\nResults.\n',
            "content/releases/latest.md": '+++\ntitle = "Latest"\ntemplate = "latest.html"\n+++\n',
        },
    )
    col = load(site, tmp_path)
    arts = by_name(col)
    tool = arts["Tool-1.2.0.md"]
    assert tool.url == "https://blog.example.com/2025/03/06/Tool-1.2.0/"  # case kept
    assert tool.date == dt.datetime(2025, 3, 6, tzinfo=dt.UTC)  # from path
    assert 'href="https://blog.example.com/inside/survey/#results"' in tool.html
    assert "Kept text." in tool.html and "youtube" not in tool.html and "{%" not in tool.html
    assert arts["2025-02-01-survey.md"].url == "https://blog.example.com/inside/survey/"
    assert "latest.md" not in arts and col.pages == 1 and col.problems == ()


# --- Pelican: https://docs.getpelican.com/en/latest/settings.html -------------------------


def test_pelican_article_url_filename_metadata_and_pages(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write(
        site,
        {
            "pelicanconf.py": (
                "import os\nSITEURL = ''\nPATH = 'content'\n"
                "ARTICLE_URL = 'blog/{date:%Y}/{date:%m}/{date:%d}/{slug}/'\n"
                "FILENAME_METADATA = r'(?P<date>\\d{4}-\\d{2}-\\d{2})-(?P<slug>.*)'\n"
                "THEME = os.path.join('themes', 'x')  # computed: not evaluated\n"
            ),
            "publishconf.py": "from pelicanconf import *\nSITEURL = 'https://writer.example'\n",
            "content/2016-07-31-a-game-i-wish-i-liked.markdown": (
                "Title: A game I wish I liked\nDate: 2016-07-31 17:40\nCategory: blog\n\n"
                "Prose. See [the other]({filename}/dev/2016-08-05-storing-things.markdown).\n"
            ),
            "content/dev/2016-08-05-storing-things.markdown": (
                "Title: Storing things\nDate: 2016-08-05 10:00\nTags: a, b\n\nBody.\n"
            ),
            "content/pages/about.markdown": "Title: About\n\nMe.\n",
        },
    )
    col = load(site, tmp_path)
    arts = by_name(col)
    game = arts["2016-07-31-a-game-i-wish-i-liked.markdown"]
    assert game.url == "https://writer.example/blog/2016/07/31/a-game-i-wish-i-liked/"
    assert 'href="https://writer.example/blog/2016/08/05/storing-things/"' in game.html
    assert arts["2016-08-05-storing-things.markdown"].tags == ("a", "b")
    assert col.pages == 1 and col.problems == ()


# --- no generator, MDX, patterns, clashes ------------------------------------------------


def test_without_a_site_text_stays_literal(tmp_path: Path) -> None:
    write(tmp_path / "c", {"2026-11-20-x.md": "---\ntitle: X\n---\nCompute {{ 7*7 }} here.\n"})
    (art,) = load(tmp_path / "c", tmp_path).articles
    assert "{{ 7*7 }}" in art.html
    assert load(tmp_path / "c", tmp_path).site is None


def test_mdx_imports_and_components(tmp_path: Path) -> None:
    write(
        tmp_path / "c",
        {
            "2026-11-20-note.mdx": (
                "---\ntitle: Note\ncategory: news\n---\nimport Box from '@/Box';\n\n"
                '<Box level="info" title="Heads up">Upgrade soon.</Box>\n\n'
                "{/* a comment */}\nAnd more.\n\n```js\nimport x from 'y';\n```\n"
            ),
        },
    )
    col = load(
        tmp_path / "c", tmp_path, url_pattern="https://site.example/en/blog/{category}/{stem}"
    )
    (art,) = col.articles
    assert art.url == "https://site.example/en/blog/news/2026-11-20-note"
    assert "Upgrade soon." in art.html and "<Box" not in art.html and "Box from" not in art.html
    assert "a comment" not in art.html and "import x from" in art.html  # code is code


def test_redirect_stubs_and_index_pages_are_no_bad_files(tmp_path: Path) -> None:
    write(
        tmp_path / "c",
        {
            "moved.md": "---\nredirect: /blog/elsewhere\n---\n",
            "all.md": "---\ntitle: Index\ntemplate: true\n---\n{{range .}}{{end}}\n",
            "2026-11-20-real.md": "---\ntitle: Real\n---\nText.\n",
            "LICENSE.md": "Free.\n",
        },
    )
    col = load(tmp_path / "c", tmp_path, url_pattern="/blog/{stem|x}")
    assert [a.path.name for a in col.articles] == ["2026-11-20-real.md"]
    assert col.problems == () and col.pages == 2 and col.excluded == 1


def test_two_articles_with_one_url_warn(tmp_path: Path) -> None:
    write(
        tmp_path / "c",
        {
            "2026-11-20-a.md": "---\ntitle: A\nslug: same\n---\nx\n",
            "2026-11-21-b.md": "---\ntitle: B\nslug: same\n---\nx\n",
        },
    )
    col = load(tmp_path / "c", tmp_path)
    (warning,) = [p for p in col.problems if p.level == "warning"]
    assert "same URL" in warning.message and "2026-11-20-a.md" in warning.message


def test_a_date_the_generator_accepts_falls_back_to_the_file_name(tmp_path: Path) -> None:
    write(
        tmp_path / "c",
        {"2024-04-19-update.md": "---\ntitle: U\ndate: 2024-04-19 10:00:00 0000 -0500\n---\nx\n"},
    )
    col = load(tmp_path / "c", tmp_path)
    (art,) = col.articles
    assert art.date == dt.datetime(2024, 4, 19, tzinfo=dt.UTC)
    assert [p.level for p in col.problems] == ["warning"]


def test_a_link_to_another_post_uses_that_posts_own_url_and_warns_once(tmp_path: Path) -> None:
    write(
        tmp_path / "c",
        {
            "2026-11-20-target.md": (
                "---\ntitle: [a, b]\nslug: hello world\n---\n# Target\n\nText.\n"
            ),
            "2026-11-21-linker.md": (
                "---\ntitle: Linker\n---\nSee [it]({% link 2026-11-20-target.md %}).\n"
            ),
        },
    )
    col = load(tmp_path / "c", tmp_path, template_code="liquid", url_pattern="/{slug}/")
    arts = by_name(col)
    target = arts["2026-11-20-target.md"].url
    assert target == "https://example.com/hello-world/"
    assert f'href="{target}"' in arts["2026-11-21-linker.md"].html
    title_warnings = [p for p in col.problems if "title: expected text" in p.message]
    assert len(title_warnings) == 1  # the target's own, not one more per link to it


def test_hugo_expiry_is_judged_at_the_issue_time_not_today(tmp_path: Path) -> None:
    # https://gohugo.io/content-management/front-matter/#expirydate
    site = tmp_path / "site"
    write(
        site,
        {
            "hugo.toml": 'baseURL = "https://example.org/"\n',
            "content/posts/offer.md": (
                "---\ntitle: Offer\ndate: 2026-11-20\nexpiryDate: 2026-11-25\n---\nx\n"
            ),
        },
    )
    cfg = config.parse(
        {"content": {"folder": str(site)}, "schedule": {"timezone": "UTC"}},
        source=tmp_path / "digest.toml",
    )
    before = content.load(cfg, now=dt.datetime(2026, 11, 24, tzinfo=dt.UTC))
    after = content.load(cfg, now=dt.datetime(2026, 11, 26, tzinfo=dt.UTC))
    assert [a.title for a in before.articles] == ["Offer"]
    assert after.articles == () and after.pages == 1
