"""``digest export --for SERVICE``: merge tags per mail service, payloads, golden files.

Regenerate the golden files (tests/golden/export/<service>/) after an intended change:

    DIGEST_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_export.py

then review the diff before committing it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html as _html
import json
import os
import re
import shutil
import socket
import tomllib
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conftest import CHROMIUM
from digest import export as ex
from digest import pipeline
from digest.cli import main
from digest.config import Config, Templates, parse
from digest.errors import ConfigError
from digest.model import PLACEHOLDERS, RenderedEmail, token

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "export"
SERVICES = ("mailchimp", "sendgrid", "postmark", "mailgun", "ses", "listmonk", "buttondown")
ARCHIVE = "https://example.com/newsletter/2026-W48/?utm_source=email&utm_medium=digest"
POSTAL = "Smith & Co, 1 Main St, Springfield <HQ>"

# Every merge tag the built-in presets use, as the service must receive it.
EXPECTED = {
    "mailchimp": {
        "unsubscribe_url": "*|UNSUB|*",
        "web_url": "*|ARCHIVE|*",
        "name": "*|FNAME|* *|LNAME|*",
        "first_name": "*|FNAME|*",
        "email": "*|EMAIL|*",
        "postal_address": "*|HTML:LIST_ADDRESS_HTML|*",
    },
    "sendgrid": {
        "unsubscribe_url": "{{{unsubscribe}}}",
        "name": "{{first_name}} {{last_name}}",
        "first_name": "{{first_name}}",
        "email": "{{email}}",
    },
    "postmark": {
        "unsubscribe_url": "{{{ pm:unsubscribe }}}",
        "name": "{{ name }}",
        "first_name": "{{ first_name }}",
        "email": "{{ email }}",
    },
    "mailgun": {
        "unsubscribe_url": "%unsubscribe_url%",
        "name": "%recipient.name%",
        "first_name": "%recipient.first_name%",
        "email": "%recipient.email%",
    },
    "ses": {
        "unsubscribe_url": "{{amazonSESUnsubscribeUrl}}",
        "name": "{{name}}",
        "first_name": "{{first_name}}",
        "email": "{{email}}",
    },
    "listmonk": {
        "unsubscribe_url": "{{ UnsubscribeURL }}",
        "web_url": "{{ MessageURL }}",
        "name": "{{ .Subscriber.Name }}",
        "first_name": "{{ .Subscriber.FirstName }}",
        "email": "{{ .Subscriber.Email }}",
    },
    "buttondown": {
        "unsubscribe_url": "{{ unsubscribe_url }}",
        "web_url": "{{ email.absolute_url }}",
        "name": "{{ subscriber.metadata.name }}",
        "first_name": "{{ subscriber.metadata.first_name }}",
        "email": "{{ subscriber.email }}",
    },
    "generic": {
        "unsubscribe_url": "{{ unsubscribe_url }}",
        "name": "{{ name }}",
        "first_name": "{{ first_name }}",
        "email": "{{ email }}",
    },
}
TEXT_ONLY = {"mailchimp": {"postal_address": "*|LIST:ADDRESS|*"}}
URL_PLACEHOLDERS = ("unsubscribe_url", "web_url")
# The only calls a payload may describe: each creates a draft campaign or a template.
CREATE_ENDPOINTS = (
    "/3.0/campaigns",  # Mailchimp: new campaigns are drafts ("save")
    "/3.0/campaigns/{campaign_id}/content",
    "/v3/marketing/singlesends",  # SendGrid: a Single Send is a draft until scheduled
    "api.postmarkapp.com/templates",
    "/v3/<domain>/templates",  # Mailgun: the newsletter's template, once
    "/v3/<domain>/templates/the-weekly-digest/versions",  # and a version per issue
    "/v2/email/templates",  # SES CreateEmailTemplate
    "/api/campaigns",  # listmonk: new campaigns are drafts
    "/v1/emails",  # Buttondown: only with status "draft" (checked below)
)


def t(name: str) -> str:
    return token(name)


def rendered_email() -> RenderedEmail:
    """A rendered issue shaped like render.py's output: tokens in href and in text."""
    html = (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8"><title>Digest #7</title>'
        "<style>@media (max-width:600px){.col{width:100%!important}}"
        "@media (prefers-color-scheme: dark){.bg{background:#111!important}}</style></head>"
        '<body class="bg"><div style="display:none;max-height:0;overflow:hidden">'
        "Three articles this week&#8199;&#847;</div>"
        f'<p style="font-size:14px"><a href="{t("web_url")}" style="color:#555">'
        "View in your browser</a></p>"
        f"<p>Hi {t('first_name')} ({t('name')}),</p>"
        '<h2><a href="https://example.com/posts/a?x=1&amp;y=2">A &amp; B</a></h2>'
        f'<p>Sent to {t("email")}. <a href="mailto:editor@example.com">Reply</a></p>'
        f'<p class="footer">{t("postal_address")}<br>'
        f'<a href="{t("unsubscribe_url")}" style="color:#555">Unsubscribe</a> · '
        f'<a href="{t("web_url")}">Archive</a></p>'
        "</body></html>\n"
    )
    text = (
        f"View in your browser: {t('web_url')}\n\n"
        f"Hi {t('first_name')} ({t('name')}),\n\n"
        "A & B\nhttps://example.com/posts/a?x=1&y=2\n\n"
        f"Sent to {t('email')}.\n{t('postal_address')}\n"
        f"Unsubscribe: {t('unsubscribe_url')}\n"
    )
    return RenderedEmail(
        issue_id="2026-W48",
        subject="The Weekly Digest #7: A & B",
        preheader="Three articles this week",
        html=html,
        text=text,
        defaults={"web_url": ARCHIVE, "postal_address": POSTAL},
    )


def config(tmp_path: Path, **extra: Any) -> Config:
    export = {"listmonk": {"list_ids": [3]}, **extra.pop("export", {})}
    raw: dict[str, Any] = {
        "export": export,
        "newsletter": {"name": "The Weekly Digest", "postal_address": POSTAL},
        "sender": {
            "name": 'Ada "The Editor" Lovelace',
            "email": "news@example.org",
            "reply_to": "editor@example.org",
        },
        "output": {"folder": str(tmp_path / "out")},
    }
    raw.update(extra)
    return parse(raw)


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return config(tmp_path)


def mangled(tag: str) -> set[str]:
    """Forms a tag takes when something escapes or encodes it on the way."""
    forms = {
        _html.escape(tag, quote=True),
        urllib.parse.quote(tag, safe=""),
        urllib.parse.quote(tag, safe="/:"),
        tag.replace("%", "%25"),
        tag.replace("|", "%7C"),
        tag.replace(" ", "%20"),
        tag.replace("{", "%7B").replace("}", "%7D"),
    }
    forms.discard(tag)
    return forms


# --- merge tags ------------------------------------------------------------------------


@pytest.mark.parametrize("service", [*SERVICES, "generic"])
def test_every_tag_is_byte_identical_in_href_and_text(cfg: Config, service: str) -> None:
    exp = ex.export(rendered_email(), cfg, service)
    tags = EXPECTED[service]
    text_tags = {**tags, **TEXT_ONLY.get(service, {})}
    assert "__digest_" not in exp.html and "__digest_" not in exp.text
    for name, tag in tags.items():
        if name in URL_PLACEHOLDERS:
            assert f'href="{tag}"' in exp.html, (service, name)
        else:
            assert tag in exp.html, (service, name)
        for bad in mangled(tag):
            assert bad not in exp.html, (service, name, bad)
    for name, tag in text_tags.items():
        assert tag in exp.text, (service, name)
        for bad in mangled(tag):
            assert bad not in exp.text, (service, name, bad)
    # The same bytes reach the service inside the payload.
    body = json.dumps(exp.payload, ensure_ascii=False)
    for tag in tags.values():
        assert json.dumps(tag, ensure_ascii=False)[1:-1] in body


@pytest.mark.parametrize("service", SERVICES)
def test_untagged_placeholders_keep_the_archive_url_and_postal_address(
    cfg: Config, service: str
) -> None:
    exp = ex.export(rendered_email(), cfg, service)
    tags = EXPECTED[service]
    if "web_url" not in tags:
        # Our own archive, escaped for the attribute, raw in the text part.
        assert f'href="{_html.escape(ARCHIVE)}"' in exp.html
        assert ARCHIVE in exp.text
    if "postal_address" not in tags:
        assert _html.escape(POSTAL) in exp.html and POSTAL not in exp.html
        assert POSTAL in exp.text


def test_mailchimp_has_unsub_and_its_address_tags(cfg: Config) -> None:
    exp = ex.export(rendered_email(), cfg, "mailchimp")
    assert 'href="*|UNSUB|*"' in exp.html
    assert "Unsubscribe: *|UNSUB|*" in exp.text
    assert "*|HTML:LIST_ADDRESS_HTML|*" in exp.html and "*|LIST:ADDRESS|*" not in exp.html
    assert "*|LIST:ADDRESS|*" in exp.text and "LIST_ADDRESS_HTML" not in exp.text
    content = exp.payload["requests"][1]["json"]
    assert "*|UNSUB|*" in content["html"] and "*|UNSUB|*" in content["plain_text"]


def test_content_around_the_tags_is_untouched(cfg: Config) -> None:
    r = rendered_email()
    for service in [*SERVICES, "generic"]:
        exp = ex.export(r, cfg, service)
        assert exp.html.startswith("<!doctype html>\n")
        assert "@media (prefers-color-scheme: dark)" in exp.html
        assert 'href="https://example.com/posts/a?x=1&amp;y=2"' in exp.html
        assert "https://example.com/posts/a?x=1&y=2" in exp.text


# --- payloads --------------------------------------------------------------------------


def _payload(cfg: Config, service: str) -> dict[str, Any]:
    exp = ex.export(rendered_email(), cfg, service)
    return json.loads(ex.payload_json(exp))


def test_payloads_are_valid_json_shaped_per_service(cfg: Config) -> None:
    r = rendered_email()
    subject, pre = r.subject, r.preheader
    sender = '"Ada \\"The Editor\\" Lovelace" <news@example.org>'

    p = _payload(cfg, "mailchimp")
    create, content = p["requests"]
    assert (create["method"], content["method"]) == ("POST", "PUT")
    assert create["url"].endswith("/3.0/campaigns")
    assert content["url"].endswith("/3.0/campaigns/{campaign_id}/content")
    assert create["json"]["type"] == "regular" and "recipients" not in create["json"]
    # No preview_text: the hidden preheader is the preview (Mailchimp would add a second).
    assert create["json"]["settings"] == {
        "subject_line": subject,
        "title": "The Weekly Digest 2026-W48",
        "from_name": 'Ada "The Editor" Lovelace',
        "reply_to": "editor@example.org",
    }
    assert set(content["json"]) == {"html", "plain_text"}

    (req,) = _payload(cfg, "sendgrid")["requests"]
    assert req["url"] == "https://api.sendgrid.com/v3/marketing/singlesends"
    assert req["json"]["name"] == "The Weekly Digest 2026-W48" and "send_to" not in req["json"]
    v = req["json"]["email_config"]
    assert (v["subject"], v["generate_plain_content"], v["editor"]) == (subject, False, "code")
    assert v["html_content"].startswith("<!doctype html>") and "Unsubscribe:" in v["plain_content"]
    assert "suppression_group_id" not in v and "sender_id" not in v

    (req,) = _payload(cfg, "postmark")["requests"]
    assert req["url"] == "https://api.postmarkapp.com/templates"
    b = req["json"]
    assert b["TemplateType"] == "Standard" and b["Alias"] == "digest-2026-W48"
    assert b["Subject"] == subject and "{{{ pm:unsubscribe }}}" in b["HtmlBody"]
    assert "{{{ pm:unsubscribe }}}" in b["TextBody"]

    template, version = _payload(cfg, "mailgun")["requests"]
    assert "json" not in template and template["url"].endswith("/v3/<domain>/templates")
    assert template["form"] == {"name": "the-weekly-digest", "description": "The Weekly Digest"}
    assert version["url"].endswith("/v3/<domain>/templates/the-weekly-digest/versions")
    f = version["form"]
    assert (f["tag"], f["active"]) == ("2026-w48", "yes") and "%unsubscribe_url%" in f["template"]
    assert json.loads(f["headers"]) == {
        "From": sender,
        "Reply-To": "editor@example.org",
        "Subject": subject,
    }

    (req,) = _payload(cfg, "ses")["requests"]
    assert req["url"].endswith("/v2/email/templates")
    assert req["json"]["TemplateName"] == "digest-2026-W48"
    tc = req["json"]["TemplateContent"]
    assert set(tc) == {"Subject", "Html", "Text"} and tc["Subject"] == subject
    assert (
        "{{amazonSESUnsubscribeUrl}}" in tc["Html"] and "{{amazonSESUnsubscribeUrl}}" in tc["Text"]
    )

    (req,) = _payload(cfg, "listmonk")["requests"]
    b = req["json"]
    assert req["url"].endswith("/api/campaigns")
    assert (b["type"], b["content_type"], b["from_email"]) == ("regular", "html", sender)
    assert b["subject"] == subject and "{{ UnsubscribeURL }}" in b["altbody"]
    assert b["lists"] == [3] and "template_id" not in b
    assert "status" not in b and "send_at" not in b

    (req,) = _payload(cfg, "buttondown")["requests"]
    b = req["json"]
    assert req["url"] == "https://api.buttondown.com/v1/emails"
    assert b["subject"] == subject and b["description"] == pre
    assert "{{ unsubscribe_url }}" in b["body"] and "template" not in b

    p = _payload(cfg, "generic")
    assert (p["subject"], p["preheader"]) == (subject, pre)
    assert p["from"] == {"name": 'Ada "The Editor" Lovelace', "email": "news@example.org"}
    assert p["placeholders"] == EXPECTED["generic"]
    assert "{{ unsubscribe_url }}" in p["html"] and "{{ unsubscribe_url }}" in p["text"]


def test_buttondown_payload_is_a_draft(cfg: Config) -> None:
    (req,) = _payload(cfg, "buttondown")["requests"]
    assert req["json"]["status"] == "draft"


@pytest.mark.parametrize("service", [*SERVICES, "generic"])
def test_payload_holds_no_secret_and_no_send_call(
    cfg: Config, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "hunter2-smtp")
    monkeypatch.setenv("DIGEST_SECRET", "s3cret-signing-key")
    text = ex.payload_json(ex.export(rendered_email(), cfg, service))
    assert "hunter2-smtp" not in text and "s3cret-signing-key" not in text
    assert "Authorization" not in text and "api_key" not in text.lower()
    for req in json.loads(text).get("requests", ()):
        # Creating only: no send/schedule/test endpoint, no status that sends.
        assert req["url"].endswith(CREATE_ENDPOINTS), req["url"]
        body = req.get("json") or req.get("form") or {}
        assert body.get("status", "draft") == "draft"


# --- files, determinism, no network ----------------------------------------------------


def test_write_creates_the_five_files(cfg: Config, tmp_path: Path) -> None:
    exp = ex.export(rendered_email(), cfg, "postmark")
    folder = ex.write(exp, ex.folder_for(cfg, exp))
    assert folder == tmp_path / "out" / "2026-W48" / "postmark"
    assert sorted(p.name for p in folder.iterdir()) == sorted(ex.FILES)
    assert (folder / "subject.txt").read_text(encoding="utf-8") == exp.subject + "\n"
    assert (folder / "preheader.txt").read_text(encoding="utf-8") == exp.preheader + "\n"
    assert (folder / "email.html").read_bytes() == exp.html.encode("utf-8")
    assert (folder / "email.txt").read_bytes() == exp.text.encode("utf-8")
    assert json.loads((folder / "payload.json").read_text(encoding="utf-8")) == exp.payload
    other = ex.write(exp, ex.folder_for(cfg, exp, tmp_path / "elsewhere"))
    assert other == tmp_path / "elsewhere"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("service", [*SERVICES, "generic"])
def test_export_is_deterministic(cfg: Config, tmp_path: Path, service: str) -> None:
    a = ex.write(ex.export(rendered_email(), cfg, service), tmp_path / "a")
    first = _snapshot(a)
    ex.write(ex.export(rendered_email(), cfg, service), a)  # rerun over the same folder
    b = ex.write(ex.export(rendered_email(), cfg, service), tmp_path / "b")
    assert _snapshot(a) == first == _snapshot(b)


def test_export_touches_no_network(cfg: Config, tmp_path: Path, monkeypatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("export opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for service in [*SERVICES, "generic"]:
        ex.write(ex.export(rendered_email(), cfg, service), tmp_path / service)


# --- user presets and errors -----------------------------------------------------------


def test_user_preset_from_config(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        export={
            "presets": {
                "acme": {
                    "unsubscribe_url": "[[UNSUB_LINK]]",
                    "first_name": "[[FIRST|'there']]",
                    "web_url": "",  # empty: keep our archive URL
                },
                # A built-in name: only the listed tags change, the payload stays.
                "mailchimp": {
                    "first_name": "*|FNAME:there|*",
                    "postal_address": "*|LIST:ADDRESS|*",
                },
            }
        },
    )
    assert "acme" in ex.services(cfg)
    exp = ex.export(rendered_email(), cfg, "acme")
    assert 'href="[[UNSUB_LINK]]"' in exp.html and "Unsubscribe: [[UNSUB_LINK]]" in exp.text
    assert "Hi [[FIRST|'there']] (" in exp.html and "Hi [[FIRST|'there']] (" in exp.text
    assert f'href="{_html.escape(ARCHIVE)}"' in exp.html
    assert exp.payload["service"] == "acme"
    assert exp.payload["placeholders"] == {
        "unsubscribe_url": "[[UNSUB_LINK]]",
        "first_name": "[[FIRST|'there']]",
    }
    mc = ex.export(rendered_email(), cfg, "mailchimp")
    assert "Hi *|FNAME:there|* (*|FNAME|* *|LNAME|*)" in mc.html
    assert "*|LIST:ADDRESS|*" in mc.html and "*|LIST:ADDRESS|*" in mc.text
    assert 'href="*|UNSUB|*"' in mc.html and mc.payload["requests"][0]["method"] == "POST"


def test_user_preset_errors_name_the_dotted_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        config(
            tmp_path,
            export={
                "presets": {
                    "acme": {"unsubscribe": "x", "web_url": 'a" onclick="b'},
                    "Bad Name": {"email": "[[EMAIL]]"},
                }
            },
        )
    keys = [k for k, _ in err.value.problems]
    assert "export.presets.acme.unsubscribe" in keys
    assert "export.presets.acme.web_url" in keys
    assert "export.presets.Bad Name" in keys
    message = str(err.value)
    assert "'unsubscribe' is not a placeholder; use one of " + ", ".join(PLACEHOLDERS) in message


def test_unknown_service_lists_the_services(cfg: Config) -> None:
    with pytest.raises(ex.UnknownService) as err:
        ex.export(rendered_email(), cfg, "mailchimpp")
    message = str(err.value)
    for service in [*SERVICES, "generic"]:
        assert service in message
    assert err.value.exit_code == 2


def test_cli_unknown_service_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[newsletter]\nname = "X"\n', encoding="utf-8")
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "config.toml"), "export", "--for", "sendgird"]
    )
    assert result.exit_code == 2
    assert "'sendgird': not a known mail service; use one of buttondown, generic, " in result.output
    assert "Traceback" not in result.output


def test_every_builtin_preset_names_its_source() -> None:
    source = Path(ex.__file__).read_text(encoding="utf-8")
    for service in SERVICES:
        before = source.split(f'"{service}": Preset(')[0].rsplit("\n\n", 1)[-1]
        assert "http" in before, f"{service}: no vendor doc page in the comment above it"
        assert ex.BUILTIN[service].docs.startswith("https://")
    assert set(ex.BUILTIN) == {*SERVICES, "generic"}
    assert {s: dict(ex.BUILTIN[s].tags) for s in ex.BUILTIN} == EXPECTED


# --- end to end: the sample issue through render, export and the CLI -------------------

GOLDEN_NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)  # as tests/test_render.py
SAMPLE_CONFIG = ROOT / "config.example.toml"
# The sample config plus what each service needs ([export.SERVICE]), so the golden
# payloads show every field a configured export sends.
GOLDEN_EXPORT = """
[export.mailchimp]
list_id = "a1b2c3d4e5"

[export.sendgrid]
list_ids = ["5a3e0e2b-8c7d-4f1e-9b6a-2d4c8e0f1a3b"]
suppression_group_id = 4242
sender_id = 1234567

[export.mailgun]
domain = "mg.example.com"

[export.ses]
region = "eu-west-1"
configuration_set = "newsletter"
contact_list = "readers"
topic = "weekly"

[export.listmonk]
api_url = "https://lists.example.com"
list_ids = [3]
template_id = 5

[export.buttondown]
template = "naked"
"""


def golden_config_file(folder: Path) -> Path:
    """The golden config as a file in ``folder`` (content from the repository)."""
    path = folder / "config.toml"
    text = SAMPLE_CONFIG.read_text(encoding="utf-8").replace(
        'folder = "content"', f'folder = "{ROOT / "content"}"'
    )
    path.write_text(text + GOLDEN_EXPORT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sample() -> tuple[Config, RenderedEmail]:
    """The sample issue (`digest --config config.example.toml export --latest`), rendered,
    with the golden [export.SERVICE] settings."""
    raw = tomllib.loads(SAMPLE_CONFIG.read_text(encoding="utf-8") + GOLDEN_EXPORT)
    cfg = parse(raw, SAMPLE_CONFIG.resolve())
    built = pipeline.prepare(cfg, GOLDEN_NOW, pipeline.Selection(latest=True))
    return cfg, built.rendered


@pytest.mark.parametrize("service", [*SERVICES, "generic"])
def test_sample_issue_matches_golden_files(
    sample: tuple[Config, RenderedEmail], service: str, tmp_path: Path
) -> None:
    cfg, rendered = sample
    folder = ex.write(ex.export(rendered, cfg, service), tmp_path)
    golden = GOLDEN / rendered.issue_id / service
    if os.environ.get("DIGEST_REGEN_GOLDEN"):
        if golden.exists():
            shutil.rmtree(golden)
        shutil.copytree(folder, golden)
    assert golden.is_dir(), f"no golden files; run DIGEST_REGEN_GOLDEN=1 pytest {__file__}"
    assert sorted(p.name for p in golden.iterdir()) == sorted(ex.FILES)
    for name in ex.FILES:
        assert (folder / name).read_bytes() == (golden / name).read_bytes(), (
            f"{service}/{name} differs from {golden / name}; if intended, regenerate "
            "(see the module docstring) and review the diff"
        )


def test_golden_folders_match_the_services(sample: tuple[Config, RenderedEmail]) -> None:
    _, rendered = sample
    assert [p.name for p in GOLDEN.iterdir()] == [rendered.issue_id], "stale golden folders"
    services = sorted(p.name for p in (GOLDEN / rendered.issue_id).iterdir())
    assert services == sorted([*SERVICES, "generic"])


def _hrefs(html: str) -> list[str]:
    """href values exactly as written in the document (no entity decoding)."""
    return re.findall(r'href="([^"]*)"', html)


@pytest.mark.parametrize("service", [*SERVICES, "generic"])
def test_sample_issue_tags_survive_render_and_export(
    sample: tuple[Config, RenderedEmail], service: str
) -> None:
    cfg, rendered = sample
    exp = ex.export(rendered, cfg, service)
    tags = EXPECTED[service]
    hrefs = _hrefs(exp.html)
    assert hrefs.count(tags["unsubscribe_url"]) == 1, hrefs
    web = tags.get("web_url", _html.escape(rendered.defaults["web_url"]))
    assert hrefs.count(web) == 2  # "View in your browser" at the top and in the footer
    assert not [h for h in hrefs if "__digest_" in h or "%7C" in h or "%25" in h]
    lines = exp.text.splitlines()
    assert tags["unsubscribe_url"] in lines
    assert tags.get("web_url", rendered.defaults["web_url"]) in lines
    postal = {**tags, **TEXT_ONLY.get(service, {})}.get(
        "postal_address", rendered.defaults["postal_address"]
    )
    assert postal in lines
    assert "__digest_" not in exp.html + exp.text


PERSONAL_FOOTER = """\
    <mj-section>
      <mj-column>
        <mj-text>
          <p>Hi {{ ph.first_name }} ({{ ph.name }}), this goes to {{ ph.email }}.</p>
          <p><a href="{{ ph.unsubscribe_url }}">Unsubscribe</a>
             <a href="{{ ph.web_url }}">Web</a> {{ ph.postal_address }}</p>
          <p>{% raw %}<a href="*|UPDATE_PROFILE|*">Preferences</a>
             <a href="<%asm_preferences_raw_url%>">Manage</a>
             <a href="%mailing_list_unsubscribe_url%">Leave</a>
             <a href="{{ manage_subscription_url }}">Portal</a>{% endraw %}</p>
        </mj-text>
      </mj-column>
    </mj-section>
"""
PERSONAL_TEXT = """\
Hi {{ ph.first_name }} ({{ ph.name }}), this goes to {{ ph.email }}.
Unsubscribe: {{ ph.unsubscribe_url }}
Web: {{ ph.web_url }}
{{ ph.postal_address }}
{% raw %}*|UPDATE_PROFILE|* <%asm_preferences_raw_url%> %mailing_list_unsubscribe_url%{% endraw %}
"""
LITERAL = (
    "*|UPDATE_PROFILE|*",
    "<%asm_preferences_raw_url%>",
    "%mailing_list_unsubscribe_url%",
    "{{ manage_subscription_url }}",
)


def test_personal_fields_and_literal_tags_in_user_templates(
    sample: tuple[Config, RenderedEmail], tmp_path: Path
) -> None:
    """A user's own templates: every placeholder, and merge tags written in literally."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "footer.mjml.j2").write_text(PERSONAL_FOOTER, encoding="utf-8")
    (templates / "email.txt.j2").write_text(PERSONAL_TEXT, encoding="utf-8")
    cfg = sample[0].model_copy(update={"templates": Templates(folder=templates)})
    rendered = pipeline.prepare(cfg, GOLDEN_NOW, pipeline.Selection(latest=True)).rendered
    for service in [*SERVICES, "generic"]:
        exp = ex.export(rendered, cfg, service)
        tags = EXPECTED[service]
        text_tags = {**tags, **TEXT_ONLY.get(service, {})}
        hrefs = _hrefs(exp.html)
        for literal in LITERAL:
            assert literal in hrefs, (service, literal)
        for literal in LITERAL[:3]:
            assert literal in exp.text, (service, literal)
        assert tags["unsubscribe_url"] in hrefs
        for name in ("name", "first_name", "email"):
            assert tags[name] in exp.html and tags[name] in exp.text, (service, name)
            for bad in mangled(tags[name]):
                assert bad not in exp.html, (service, name, bad)
        assert (
            f"Hi {text_tags['first_name']} ({text_tags['name']}), "
            f"this goes to {text_tags['email']}." in exp.text
        )


# --- content is never a tag at the mail service ---------------------------------------

# Every engine's syntax at once, in every field of an article, the group, subject and
# preheader (test_render.hostile_issue), with the personal footer's literal tags around.
SYNTAXES = (
    "{{ 7*7 }}",
    "*|FNAME|*",
    "%recipient.first_name%",
    "{{{ x }}}",
    "{% if x %}",
    "<%asm_group_unsubscribe_raw_url%>",
    "[[FIRSTNAME]]",
    "${x}",
    "$5$",
)
CONTENT_SYNTAX = " ".join(SYNTAXES)
# What each service's template engine acts on: written from the vendors' docs, not from
# export.py's guard table.
HANDLEBARS = r"\{\{"
ENGINES = {
    "mailchimp": r"\*\|[^|*]*\|\*",
    "sendgrid": HANDLEBARS + r"|<%",
    "postmark": HANDLEBARS,
    # %recipient.x%, %unsubscribe_url%, ...; a percent-escape (%C3%BC) names no variable.
    "mailgun": HANDLEBARS + r"|%(?![0-9A-Fa-f]{2})[A-Za-z_][\w.]*%",
    "ses": HANDLEBARS,
    "listmonk": HANDLEBARS,
    "buttondown": HANDLEBARS + r"|\{%|\{#",
}
ACME = {"unsubscribe_url": "[[UNSUB]]", "first_name": "[[FIRSTNAME|there]]"}
ENGINES["acme"] = "|".join([*ENGINES.values(), r"\[\[", r"\$\{", r"\$\w+\$"])


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, RenderedEmail]:
    from digest.render import render
    from test_render import hostile_issue

    templates = tmp_path_factory.mktemp("templates")
    (templates / "footer.mjml.j2").write_text(PERSONAL_FOOTER, encoding="utf-8")
    cfg = config(
        tmp_path_factory.mktemp("out"),
        templates={"folder": str(templates)},
        export={"presets": {"acme": ACME}},
    )
    return cfg, render(hostile_issue(CONTENT_SYNTAX), cfg)


def _without(text: str, tags: Any) -> str:
    for tag in sorted(tags, key=len, reverse=True):
        text = text.replace(tag, "")
    return text


def _placed(part: str, tags: Mapping[str, str], literal: Any, seq: str) -> int:
    """How often ``seq`` is in a part only because of the tags export put in for the
    placeholder tokens and the template's literal tags."""
    by_tags = sum(part.count(token(name)) * tag.count(seq) for name, tag in tags.items())
    return by_tags + sum(lit.count(seq) for lit in literal)


@pytest.mark.parametrize("service", [*SERVICES, "acme", "generic"])
def test_content_syntax_is_never_a_tag_at_the_service(
    hostile: tuple[Config, RenderedEmail], service: str
) -> None:
    cfg, rendered = hostile
    exp = ex.export(rendered, cfg, service)
    tags = ACME if service == "acme" else EXPECTED[service]
    text_tags = {**tags, **TEXT_ONLY.get(service, {})}
    # HTML, every service: the content's syntax is nowhere (a sequence is there exactly as
    # often as the service's own tags and the template's literal ones put it there); those
    # tags are byte for byte.
    for seq in SYNTAXES:
        for form in {seq, _html.escape(seq)}:
            assert exp.html.count(form) == _placed(rendered.html, tags, LITERAL, form), form
    hrefs = _hrefs(exp.html)
    assert tags["unsubscribe_url"] in hrefs and all(t in hrefs for t in LITERAL)
    assert all(tag in exp.html for tag in tags.values())
    body = re.sub(
        r"<style\b.*?</style>|<!--\[if.*?(<!\[endif\]-->|<!-->)", "", exp.html, flags=re.S
    )
    engines = ENGINES.values() if service == "generic" else [ENGINES[service]]
    for engine in engines:
        assert not re.findall(engine, _without(body, [*tags.values(), *LITERAL])), engine
    # Text part, subject, preheader: no tag for this service's engine; readers see the same
    # text (U+2060 is invisible). Generic keeps them as written (and says so).
    if service != "generic":
        for seq in [seq for seq in SYNTAXES if re.search(ENGINES[service], seq)]:
            assert exp.text.count(seq) == _placed(rendered.text, text_tags, (), seq), seq
        for part in (_without(exp.text, text_tags.values()), exp.subject, exp.preheader):
            assert not re.findall(ENGINES[service], part), (service, part)
    assert exp.text.replace("\u2060", "") == rendered.fill(text_tags, raw=True)[1]
    assert exp.subject.replace("\u2060", "") == rendered.subject == f"Subject {CONTENT_SYNTAX}"
    assert exp.preheader.replace("\u2060", "") == rendered.preheader
    assert f"Why {CONTENT_SYNTAX} is 49" in " ".join(exp.text.replace("\u2060", "").split())
    # The service receives exactly these parts (Mailgun and Buttondown take no text part).
    body_json = json.dumps(exp.payload, ensure_ascii=False)
    no_text = ("mailgun", "buttondown", "acme")
    parts = [exp.html, exp.subject] if service in no_text else [exp.html, exp.text, exp.subject]
    for part in parts:
        assert json.dumps(part, ensure_ascii=False)[1:-1] in body_json, service


def test_generic_export_notes_content_syntax_and_keeps_it(
    hostile: tuple[Config, RenderedEmail],
) -> None:
    cfg, rendered = hostile
    exp = ex.export(rendered, cfg, "generic")
    assert exp.text == rendered.fill(EXPECTED["generic"], raw=True)[1]
    assert f"Why {CONTENT_SYNTAX} is 49" in " ".join(exp.text.split())
    assert exp.subject == rendered.subject
    (note,) = [n for n in exp.payload["notes"] if "template syntax" in n]
    assert "'{{ 7*7 }}'" in note and "export --for" in note
    assert "notes" not in ex.export(rendered_email(), cfg, "generic").payload


def test_config_text_in_the_html_and_text_is_data(tmp_path: Path) -> None:
    postal = "ACME {{ x }} | *|FNAME|*"
    cfg = config(tmp_path, newsletter={"postal_address": postal})
    r = dataclasses.replace(
        rendered_email(), defaults={"web_url": ARCHIVE, "postal_address": postal}
    )
    for service in ("sendgrid", "postmark", "mailgun", "ses", "listmonk", "buttondown"):
        exp = ex.export(r, cfg, service)
        assert "ACME &#123;&#123; x &#125;&#125; &#124; *&#124;FNAME&#124;*" in exp.html
        assert "ACME \u2060{\u2060{\u2060 x }} | *|FNAME|*" in exp.text
    assert f"\n{postal}\n" in ex.export(r, cfg, "generic").text


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_chromium_shows_content_as_written_and_links_work(
    hostile: tuple[Config, RenderedEmail],
    browser: Any,
    tmp_path: Path,
) -> None:
    """What a reader's mail app shows: the characters, and links to the article's URL."""
    from test_render import HOSTILE_URL

    cfg, rendered = hostile
    read = """(url) => ({
      title: document.title,
      text: document.body.innerText,
      hidden: document.body.firstElementChild.textContent,
      links: [...document.querySelectorAll('.title a, p.cta a')].map(a => a.href),
      expected: new URL(url).href,
    })"""
    for service in [*SERVICES, "generic"]:
        path = tmp_path / f"{service}.html"
        ex.write(ex.export(rendered, cfg, service), tmp_path / service)
        path.write_bytes((tmp_path / service / "email.html").read_bytes())
        page = browser.new_page()
        page.route(
            "**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort()
        )
        try:
            page.goto(path.as_uri())
            got = page.evaluate(read, HOSTILE_URL)
        finally:
            page.close()
        assert got["title"] == f"Subject {CONTENT_SYNTAX}", service
        assert got["hidden"].startswith(f"Pre {CONTENT_SYNTAX}"), service
        for shown in ("Why {} is 49", "Summary {} end", "Lead {0}: Point {0}", "Ann {}"):
            assert shown.format(CONTENT_SYNTAX) in got["text"], (service, shown)
        assert "%20" in got["expected"] and "&#" not in got["expected"]
        assert got["links"][:2] == [got["expected"]] * 2, service


def _cli(*args: str, config: Path = SAMPLE_CONFIG) -> Any:
    return CliRunner().invoke(
        main, ["--config", str(config), "--now", GOLDEN_NOW.isoformat(), *args]
    )


def test_cli_export_writes_the_golden_files(
    sample: tuple[Config, RenderedEmail], tmp_path: Path
) -> None:
    _, rendered = sample
    golden = GOLDEN / rendered.issue_id / "mailchimp"
    config_file = golden_config_file(tmp_path)
    result = _cli(
        "export",
        "--for",
        "mailchimp",
        "--latest",
        "--out",
        str(tmp_path / "mc"),
        config=config_file,
    )
    assert result.exit_code == 0, result.output
    assert f"Exported {rendered.issue_id} for mailchimp" in result.output
    assert "note: " in result.output
    assert _snapshot(tmp_path / "mc") == _snapshot(golden)
    # --issue picks the same issue; a second run writes the same bytes.
    again = _cli(
        "export",
        "--for",
        "mailchimp",
        "--issue",
        rendered.issue_id,
        "--out",
        str(tmp_path / "mc"),
        config=config_file,
    )
    assert again.exit_code == 0, again.output
    assert _snapshot(tmp_path / "mc") == _snapshot(golden)


def test_cli_export_stdout_prints_the_html_alone(
    sample: tuple[Config, RenderedEmail], tmp_path: Path
) -> None:
    _, rendered = sample
    golden = GOLDEN / rendered.issue_id / "buttondown" / "email.html"
    result = _cli("export", "--for", "buttondown", "--week", rendered.issue_id, "--stdout")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == golden.read_bytes()


def test_cli_export_default_folder_and_nothing_to_send(tmp_path: Path) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        SAMPLE_CONFIG.read_text(encoding="utf-8")
        .replace('folder = "content"', f'folder = "{ROOT / "content"}"')
        .replace('folder = "out"', f'folder = "{tmp_path / "out"}"'),
        encoding="utf-8",
    )
    base = ["--config", str(config_file), "--now", GOLDEN_NOW.isoformat(), "export"]
    result = CliRunner().invoke(main, [*base, "--for", "ses", "--latest"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out" / "2026-W48" / "ses"
    assert sorted(p.name for p in folder.iterdir()) == sorted(ex.FILES)
    empty = CliRunner().invoke(main, [*base, "--for", "ses", "--week", "2026-W30"])
    assert empty.exit_code == 10 and "nothing to send" in empty.output
    clash = CliRunner().invoke(
        main, [*base, "--for", "ses", "--week", "2026-W47", "--issue", "2026-W48"]
    )
    assert clash.exit_code == 2


def test_generic_export_is_what_build_writes(
    sample: tuple[Config, RenderedEmail], tmp_path: Path
) -> None:
    cfg, rendered = sample
    built = pipeline.prepare(cfg, GOLDEN_NOW, pipeline.Selection(latest=True))
    folder = pipeline.write_build(cfg, built, tmp_path)
    exp = ex.export(rendered, cfg, "generic")
    assert (folder / "email.html").read_text(encoding="utf-8") == exp.html
    assert (folder / "email.txt").read_text(encoding="utf-8") == exp.text


# --- what each API would refuse ----------------------------------------------------------


def test_listmonk_export_refuses_without_list_ids(tmp_path: Path) -> None:
    cfg = config(tmp_path, export={"listmonk": {"list_ids": []}})
    with pytest.raises(ConfigError) as err:
        ex.export(rendered_email(), cfg, "listmonk")
    assert err.value.problems[0][0] == "export.listmonk.list_ids"
    assert err.value.exit_code == 2
    ok = config(tmp_path, export={"listmonk": {"list_ids": [3, 4], "template_id": 5}})
    (req,) = _payload(ok, "listmonk")["requests"]
    assert (req["json"]["lists"], req["json"]["template_id"]) == ([3, 4], 5)
    assert not [
        n
        for n in ex.export(rendered_email(), ok, "listmonk").payload.get("notes", [])
        if "template_id" in n
    ]


def test_sendgrid_single_send_name_fits_the_api_limit(tmp_path: Path) -> None:
    cfg = config(tmp_path, newsletter={"name": "N" * 140, "postal_address": POSTAL})
    (req,) = _payload(cfg, "sendgrid")["requests"]
    assert len(req["json"]["name"]) == 100 and req["json"]["name"].endswith("\u2026")


def test_sendgrid_unsubscribe_settings_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        config(
            tmp_path,
            export={
                "sendgrid": {
                    "suppression_group_id": 1,
                    "custom_unsubscribe_url": "https://example.com/unsub",
                }
            },
        )
    assert err.value.problems[0][0] == "export.sendgrid.custom_unsubscribe_url"


def test_buttondown_without_template_warns_about_its_wrapper(cfg: Config) -> None:
    notes = ex.export(rendered_email(), cfg, "buttondown").payload["notes"]
    assert any('template = "naked"' in n for n in notes)
