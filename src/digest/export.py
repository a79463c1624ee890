"""``RenderedEmail`` -> files and an API payload for a third-party mail service.

The issue is rendered once with neutral placeholder tokens (see ``render.PLACEHOLDERS``);
exporting only chooses, per service, the merge tag that stands in for each token and
substitutes it byte for byte (``RenderedEmail.fill(..., raw=True)``). Because the tags go
in after MJML and premailer have run, nothing can HTML-escape, URL-encode or rewrite them.

A placeholder a service cannot fill keeps the rendered default: the web version links to
our own archive, and the postal address is written literally.

Content is never a tag there either. In the HTML, render already wrote its template
syntax as character references. The text part, subject and preheader have no such
escape, and not every engine has one (Mailchimp, Mailgun's %name%): there each character
of content in the preset's ``guard`` stands between invisible WORD JOINERs (U+2060), so
``{{ 7*7 }}`` reads the same and no engine finds ``{{`` (see NOTES.md).

Export never sends anything and touches no network: ``payload.json`` describes the
request(s) that would create a campaign or template with this content, never one that
sends on creation.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .config import Config
from .errors import DigestError
from .files import write_atomic
from .model import GENERIC_TAGS, PLACEHOLDERS, RenderedEmail
from .render import TAG_LIKE
from .text import guard_text, html_data

log = logging.getLogger(__name__)

FILES = ("email.html", "email.txt", "subject.txt", "preheader.txt", "payload.json")


class UnknownService(DigestError):
    """``--for`` names no built-in service and no preset from the config."""

    exit_code = 2


@dataclass(frozen=True)
class Export:
    """One issue, ready for one service."""

    service: str
    issue_id: str
    subject: str
    preheader: str
    html: str
    text: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Preset:
    """How one service spells each placeholder, and the call that creates a draft there.

    ``tags`` maps placeholder names to merge tags, used in the HTML and in the text part;
    ``text_tags`` overrides some of them in the text part only. A placeholder without a
    tag (or with an empty one) keeps the rendered default value. ``guard``: the
    characters that open a tag in this service's template engine; in content in the
    text part, subject and preheader each stands between WORD JOINERs (U+2060).
    """

    name: str
    tags: Mapping[str, str]
    requests: Callable[[_Content], list[dict[str, Any]]]
    docs: str
    text_tags: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    guard: str = "{[|%$"  # an engine we do not know: every opener of templating.SYNTAX


@dataclass(frozen=True)
class _Content:
    """What a payload builder may use: the filled parts and the sender."""

    issue_id: str
    newsletter: str
    subject: str
    preheader: str
    html: str
    text: str
    from_name: str
    from_email: str
    reply_to: str

    @property
    def slug(self) -> str:
        """A name usable where services allow only letters, digits, '-' and '_'."""
        return "digest-" + re.sub(r"[^A-Za-z0-9_-]+", "-", self.issue_id).strip("-")

    @property
    def title(self) -> str:
        return f"{self.newsletter} {self.issue_id}"


def _request(method: str, url: str, body: dict[str, Any], *, form: bool = False) -> dict[str, Any]:
    # "json" for a JSON body, "form" for multipart/form-data fields (Mailgun).
    return {"method": method, "url": url, "form" if form else "json": body}


# --- the payloads ----------------------------------------------------------------------


def _mailchimp(c: _Content) -> list[dict[str, Any]]:
    # https://mailchimp.com/developer/marketing/api/campaigns/add-campaign/ then
    # https://mailchimp.com/developer/marketing/api/campaign-content/set-campaign-content/
    # A campaign is created as a draft ("save"); sending is a separate call.
    base = "https://<dc>.api.mailchimp.com/3.0"
    return [
        _request(
            "POST",
            f"{base}/campaigns",
            {
                "type": "regular",
                "settings": {
                    "subject_line": c.subject,
                    "preview_text": c.preheader,
                    "title": c.title,
                    "from_name": c.from_name,
                    "reply_to": c.reply_to,
                },
            },
        ),
        _request(
            "PUT",
            f"{base}/campaigns/{{campaign_id}}/content",
            {"html": c.html, "plain_text": c.text},
        ),
    ]


def _sendgrid(c: _Content) -> list[dict[str, Any]]:
    # https://www.twilio.com/docs/sendgrid/api-reference/transactional-templates/create-a-transactional-template
    # https://www.twilio.com/docs/sendgrid/api-reference/transactional-templates-versions/create-a-new-transactional-template-version
    # No preheader field: the hidden preheader in the HTML carries it.
    base = "https://api.sendgrid.com/v3"
    return [
        _request("POST", f"{base}/templates", {"name": c.title, "generation": "dynamic"}),
        _request(
            "POST",
            f"{base}/templates/{{template_id}}/versions",
            {
                "name": c.issue_id,
                "subject": c.subject,
                "html_content": c.html,
                "plain_content": c.text,
                "generate_plain_content": False,
                "editor": "code",
                "active": 1,
            },
        ),
    ]


def _postmark(c: _Content) -> list[dict[str, Any]]:
    # https://postmarkapp.com/developer/api/templates-api#create-template
    # No preheader field: the hidden preheader in the HTML carries it.
    return [
        _request(
            "POST",
            "https://api.postmarkapp.com/templates",
            {
                "Name": c.title,
                "Alias": c.slug,
                "Subject": c.subject,
                "HtmlBody": c.html,
                "TextBody": c.text,
                "TemplateType": "Standard",
            },
        )
    ]


def _mailgun(c: _Content) -> list[dict[str, Any]]:
    # https://documentation.mailgun.com/docs/mailgun/api-reference/openapi-final/tag/Templates/
    # multipart/form-data; "headers" is a JSON string (only From, Subject and Reply-To are
    # stored). Mailgun keeps one body per template version, so the text part is not sent.
    headers = {"Subject": c.subject, "From": _address(c.from_name, c.from_email)}
    if c.reply_to != c.from_email:
        headers["Reply-To"] = c.reply_to
    return [
        _request(
            "POST",
            "https://api.mailgun.net/v3/<domain>/templates",
            {
                "name": c.slug.lower(),
                "description": c.title,
                "template": c.html,
                "tag": c.issue_id.lower(),
                "headers": json.dumps(headers, ensure_ascii=False, sort_keys=True),
            },
            form=True,
        )
    ]


def _ses(c: _Content) -> list[dict[str, Any]]:
    # https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_CreateEmailTemplate.html
    # No preheader field: the hidden preheader in the HTML carries it.
    return [
        _request(
            "POST",
            "https://email.<region>.amazonaws.com/v2/email/templates",
            {
                "TemplateName": c.slug,
                "TemplateContent": {"Subject": c.subject, "Html": c.html, "Text": c.text},
            },
        )
    ]


def _listmonk(c: _Content) -> list[dict[str, Any]]:
    # https://listmonk.app/docs/apis/campaigns/#post-apicampaigns
    # A new campaign is a draft until its status is changed. No preheader field.
    return [
        _request(
            "POST",
            "https://<listmonk-host>/api/campaigns",
            {
                "name": c.title,
                "subject": c.subject,
                "lists": [],
                "from_email": _address(c.from_name, c.from_email),
                "type": "regular",
                "content_type": "html",
                "body": c.html,
                "altbody": c.text,
            },
        )
    ]


def _buttondown(c: _Content) -> list[dict[str, Any]]:
    # https://docs.buttondown.com/api-emails-create: creating an email sends it at once
    # unless its status is "draft". "description" is the preview text; there is no
    # plain-text field (Buttondown derives one).
    return [
        _request(
            "POST",
            "https://api.buttondown.com/v1/emails",
            {
                "subject": c.subject,
                "body": c.html,
                "description": c.preheader,
                "slug": c.slug.lower(),
                "status": "draft",
            },
        )
    ]


def _generic(c: _Content) -> list[dict[str, Any]]:
    return []


def _address(name: str, email: str) -> str:
    if not name:
        return email
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{email}>'


# --- the presets -----------------------------------------------------------------------

_PERSONAL_DATA = "Pass {keys} for each recipient in {where} when you send."

BUILTIN: Mapping[str, Preset] = MappingProxyType(
    {
        # https://mailchimp.com/help/all-the-merge-tags-cheat-sheet/ (UNSUB, ARCHIVE,
        # FNAME, LNAME, EMAIL, HTML:LIST_ADDRESS_HTML and its plain form LIST:ADDRESS).
        # Mailchimp refuses to send a campaign without *|UNSUB|*.
        "mailchimp": Preset(
            name="mailchimp",
            tags={
                "unsubscribe_url": "*|UNSUB|*",
                "web_url": "*|ARCHIVE|*",
                "name": "*|FNAME|* *|LNAME|*",
                "first_name": "*|FNAME|*",
                "email": "*|EMAIL|*",
                "postal_address": "*|HTML:LIST_ADDRESS_HTML|*",
            },
            text_tags={"postal_address": "*|LIST:ADDRESS|*"},
            guard="|",  # merge language: *|NAME|*, *|IF:...|*
            requests=_mailchimp,
            docs="https://mailchimp.com/developer/marketing/api/campaigns/",
            notes=(
                "Replace <dc> with your API key's data centre (e.g. us21).",
                "Add recipients.list_id (your audience) to the campaign before sending it.",
            ),
        ),
        # SendGrid dynamic templates: the unsubscribe link of the message's unsubscribe
        # group, "<%asm_group_unsubscribe_raw_url%>" (SendGrid docs, "Group Unsubscribes",
        # raw-URL substitution tags; sendgrid/docs#1514). The {{ }} fields are Handlebars
        # variables from dynamic_template_data. No web-version tag: our archive URL stays.
        "sendgrid": Preset(
            name="sendgrid",
            tags={
                "unsubscribe_url": "<%asm_group_unsubscribe_raw_url%>",
                "name": "{{name}}",
                "first_name": "{{first_name}}",
                "email": "{{email}}",
            },
            guard="{%",  # Handlebars {{ }}, substitution tags <%...%>
            requests=_sendgrid,
            docs="https://www.twilio.com/docs/sendgrid/api-reference/transactional-templates",
            notes=(
                "Send with asm.group_id set: without an unsubscribe group SendGrid leaves "
                "<%asm_group_unsubscribe_raw_url%> empty.",
                _PERSONAL_DATA.format(
                    keys="name, first_name and email", where="dynamic_template_data"
                ),
            ),
        ),
        # https://postmarkapp.com/support/article/1208-how-to-add-an-unsubscribe-link:
        # "{{{ pm:unsubscribe }}}" (inner spaces kept, triple braces so it is not escaped);
        # personal fields are Mustachio variables from the TemplateModel.
        "postmark": Preset(
            name="postmark",
            tags={
                "unsubscribe_url": "{{{ pm:unsubscribe }}}",
                "name": "{{ name }}",
                "first_name": "{{ first_name }}",
                "email": "{{ email }}",
            },
            guard="{",  # Mustachio {{ }}
            requests=_postmark,
            docs="https://postmarkapp.com/developer/api/templates-api",
            notes=(
                "Send through a Broadcasts message stream (/email/batchWithTemplates with "
                "TemplateAlias and MessageStream).",
                _PERSONAL_DATA.format(keys="name, first_name and email", where="TemplateModel"),
            ),
        ),
        # https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages
        # ("%unsubscribe_url%") and .../sending-messages/batch-sending ("%recipient.KEY%"
        # from recipient-variables); "%recipient_email%" is filled for mailing lists.
        "mailgun": Preset(
            name="mailgun",
            tags={
                "unsubscribe_url": "%unsubscribe_url%",
                "name": "%recipient.name%",
                "first_name": "%recipient.first_name%",
                "email": "%recipient_email%",
            },
            guard="{%",  # Handlebars templates, %recipient.x% variables
            requests=_mailgun,
            docs="https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/",
            notes=(
                "Replace <domain> with your sending domain; the body is multipart/form-data.",
                "Mailgun templates hold the HTML only: send email.txt as the text part.",
                _PERSONAL_DATA.format(keys="name and first_name", where="recipient-variables"),
            ),
        ),
        # https://docs.aws.amazon.com/ses/latest/dg/sending-email-subscription-management.html:
        # "{{amazonSESUnsubscribeUrl}}" is filled only by SendEmail with
        # ListManagementOptions; the other fields come from TemplateData (case-sensitive).
        "ses": Preset(
            name="ses",
            tags={
                "unsubscribe_url": "{{amazonSESUnsubscribeUrl}}",
                "name": "{{name}}",
                "first_name": "{{first_name}}",
                "email": "{{email}}",
            },
            guard="{",  # Handlebars
            requests=_ses,
            docs="https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_CreateEmailTemplate.html",
            notes=(
                "Replace <region>; sign the request with AWS SigV4 (e.g. aws sesv2 "
                "create-email-template --cli-input-json).",
                "Send with SendEmail and ListManagementOptions (a contact list), or "
                "{{amazonSESUnsubscribeUrl}} is not filled.",
                _PERSONAL_DATA.format(keys="name, first_name and email", where="TemplateData"),
            ),
        ),
        # https://listmonk.app/docs/templating/ (Go templates, case-sensitive, leading dot
        # on subscriber fields).
        "listmonk": Preset(
            name="listmonk",
            tags={
                "unsubscribe_url": "{{ UnsubscribeURL }}",
                "web_url": "{{ MessageURL }}",
                "name": "{{ .Subscriber.Name }}",
                "first_name": "{{ .Subscriber.FirstName }}",
                "email": "{{ .Subscriber.Email }}",
            },
            guard="{",  # Go templates
            requests=_listmonk,
            docs="https://listmonk.app/docs/apis/campaigns/",
            notes=(
                "Replace <listmonk-host> and fill in lists with your list IDs.",
                "Pick a campaign template (template_id) that does not add a second footer.",
            ),
        ),
        # https://docs.buttondown.com/using-templating (Django templates) and its template
        # variables page (github.com/buttondown/docs, template-variables.mdx):
        # unsubscribe_url, subscriber.email, subscriber.metadata.*, and the email's own
        # permalink email.absolute_url (older docs call it email_url).
        "buttondown": Preset(
            name="buttondown",
            tags={
                "unsubscribe_url": "{{ unsubscribe_url }}",
                "web_url": "{{ email.absolute_url }}",
                "name": "{{ subscriber.metadata.name }}",
                "first_name": "{{ subscriber.metadata.first_name }}",
                "email": "{{ subscriber.email }}",
            },
            guard="{",  # Django/Jinja {{ }}, {% %}, {# #}
            requests=_buttondown,
            docs="https://docs.buttondown.com/api-emails-create",
            notes=(
                'The payload has status "draft": creating it sends nothing. Review it in '
                "Buttondown, then send from there.",
                "name and first_name come from each subscriber's metadata.",
            ),
        ),
        # Neutral placeholders for any other tool: search and replace them. Web version and
        # postal address keep their real values. Same as what `digest build` writes.
        "generic": Preset(
            name="generic",
            tags=dict(GENERIC_TAGS),
            requests=_generic,
            docs="",
            guard="",  # what `digest build` writes: content as written (see the note)
        ),
    }
)


def presets(cfg: Config) -> dict[str, Preset]:
    """Built-in presets plus the config's ``[export.presets.NAME]``.

    A config preset with a built-in name changes only the tags it lists and keeps that
    service's payload; any other name gets the generic JSON.
    """
    found = dict(BUILTIN)
    for name, tags in sorted(cfg.export.presets.items()):
        base = found.get(name)
        if base is None:
            found[name] = Preset(name=name, tags=dict(tags), requests=_generic, docs="")
        else:
            found[name] = Preset(
                name=name,
                tags={**base.tags, **tags},
                text_tags={k: v for k, v in base.text_tags.items() if k not in tags},
                requests=base.requests,
                docs=base.docs,
                notes=base.notes,
                guard=base.guard,
            )
    return found


def services(cfg: Config) -> list[str]:
    return sorted(presets(cfg))


def preset_for(cfg: Config, service: str) -> Preset:
    known = presets(cfg)
    try:
        return known[service]
    except KeyError:
        raise UnknownService(
            f"--for {service!r}: not a known mail service; use one of {', '.join(sorted(known))}"
            " (or add [export.presets." + service + "] to the config)"
        ) from None


def export(rendered: RenderedEmail, cfg: Config, service: str) -> Export:
    """Fill the rendered email with ``service``'s merge tags and build its payload."""
    preset = preset_for(cfg, service)
    html_tags = _tags(preset.tags)
    text_tags = {**html_tags, **_tags(preset.text_tags)}
    # fill(raw=True) would insert the defaults raw too: escape those for the HTML part
    # ("Smith & Co" in a postal address, "&" in an archive URL), never the merge tags.
    # They are config text, so data like content: guarded the same way.
    escaped = {k: html_data(v) for k, v in rendered.defaults.items()}
    guarded = {k: guard_text(v, preset.guard) for k, v in rendered.defaults.items()}
    html, _ = rendered.fill({**escaped, **html_tags}, raw=True)
    _, text = rendered.fill({**guarded, **text_tags}, raw=True, guard=preset.guard)
    subject = guard_text(rendered.subject, preset.guard)
    preheader = guard_text(rendered.preheader, preset.guard)
    content = _Content(
        issue_id=rendered.issue_id,
        newsletter=cfg.newsletter.name,
        subject=subject,
        preheader=preheader,
        html=html,
        text=text,
        from_name=cfg.sender.name,
        from_email=cfg.sender.email,
        reply_to=cfg.sender.reply_to or cfg.sender.email,
    )
    payload: dict[str, Any] = {"service": preset.name, "issue": rendered.issue_id}
    if preset.requests is _generic:
        payload |= {
            "subject": content.subject,
            "preheader": content.preheader,
            "from": {"name": content.from_name, "email": content.from_email},
            "reply_to": content.reply_to,
            "placeholders": {k: html_tags[k] for k in PLACEHOLDERS if k in html_tags},
            "html": html,
            "text": text,
        }
    else:
        payload |= {"docs": preset.docs, "requests": preset.requests(content)}
    notes = list(preset.notes)
    if not preset.guard:
        notes += _unguarded_note(rendered)
    if notes:
        payload["notes"] = notes
    return Export(
        service=preset.name,
        issue_id=rendered.issue_id,
        subject=subject,
        preheader=preheader,
        html=html,
        text=text,
        payload=payload,
    )


def _unguarded_note(rendered: RenderedEmail) -> list[str]:
    """A note when content in the text part, subject or preheader reads as a tag."""
    found = [*TAG_LIKE.findall(rendered.subject), *TAG_LIKE.findall(rendered.preheader)]
    if rendered.marked_text:
        # What the marked text still shows is the templates' own; the rest is content.
        extra = Counter(TAG_LIKE.findall(rendered.text))
        extra.subtract(TAG_LIKE.findall(rendered.marked_text))
        found += [tag for tag, n in extra.items() if n > 0]
    if not found:
        return []
    unique = list(dict.fromkeys(found))
    shown = ", ".join(map(repr, unique[:3])) + (", ..." if len(unique) > 3 else "")
    return [
        f"Content has template syntax ({shown}): email.txt, subject.txt and preheader.txt "
        "keep it as written (the HTML shows it as text). A mail service that reads them "
        "as templates would evaluate it: export --for that service instead."
    ]


def _tags(tags: Mapping[str, str]) -> dict[str, str]:
    # An empty tag means "no tag": the rendered default (archive URL, postal address) stays.
    return {k: v for k, v in tags.items() if k in PLACEHOLDERS and v}


def payload_json(exp: Export) -> str:
    return json.dumps(exp.payload, indent=2, ensure_ascii=False) + "\n"


def write(exp: Export, folder: Path) -> Path:
    """Write the five files into ``folder``. Same input, same bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in (
        ("email.html", exp.html),
        ("email.txt", exp.text),
        ("subject.txt", exp.subject + "\n"),
        ("preheader.txt", exp.preheader + "\n"),
        ("payload.json", payload_json(exp)),
    ):
        write_atomic(folder / name, data)
    log.debug("exported %s for %s to %s", exp.issue_id, exp.service, folder)
    return folder


def folder_for(cfg: Config, exp: Export, out: Path | None = None) -> Path:
    """``out/<issue-id>/<service>/`` under the output folder, or ``out`` itself."""
    return out if out is not None else cfg.output.folder / exp.issue_id / exp.service
