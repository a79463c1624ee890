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

from .config import (
    ButtondownExport,
    Config,
    ListmonkExport,
    MailchimpExport,
    MailgunExport,
    SendgridExport,
    SesExport,
)
from .errors import ConfigError, DigestError
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
    # Notes that depend on [export.SERVICE] (which list, stream or template is set).
    setting_notes: Callable[[_Content], list[str]] | None = None


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
    settings: Any = None  # the service's [export.SERVICE] section, if it has one
    source: Path | None = None  # the config file, for errors

    def refuse(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.source or "config", [(key, message)])

    @property
    def slug(self) -> str:
        """A name usable where services allow only letters, digits, '-' and '_'."""
        return "digest-" + re.sub(r"[^A-Za-z0-9_-]+", "-", self.issue_id).strip("-")

    @property
    def title(self) -> str:
        return f"{self.newsletter} {self.issue_id}"


# Each service's API address when its settings name none (Mailchimp's depends on the
# key's data centre, SES's on the region, listmonk is the user's own).
DEFAULT_URLS = {
    "sendgrid": "https://api.sendgrid.com",
    "postmark": "https://api.postmarkapp.com",
    "mailgun": "https://api.mailgun.net",
    "buttondown": "https://api.buttondown.com",
}


def _cap(text: str, limit: int) -> str:
    """At most ``limit`` characters (an ellipsis marks a cut): names have API limits."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _request(method: str, url: str, body: dict[str, Any], *, form: bool = False) -> dict[str, Any]:
    # "json" for a JSON body, "form" for multipart/form-data fields (Mailgun).
    return {"method": method, "url": url, "form" if form else "json": body}


# --- the payloads ----------------------------------------------------------------------


def _mailchimp(c: _Content) -> list[dict[str, Any]]:
    # https://mailchimp.com/developer/marketing/api/campaigns/add-campaign/ then
    # https://mailchimp.com/developer/marketing/api/campaign-content/set-campaign-content/
    # A campaign is created as a draft ("save"); sending is a separate call.
    # No settings.preview_text: Mailchimp would insert it as a second hidden preheader
    # above ours (the HTML has no *|MC_PREVIEW_TEXT|*), and clients would show it twice.
    s: MailchimpExport = c.settings
    base = (s.api_url or "https://<dc>.api.mailchimp.com") + "/3.0"
    campaign: dict[str, Any] = {"type": "regular"}
    if s.list_id:
        campaign["recipients"] = {"list_id": s.list_id}
    campaign["settings"] = {
        "subject_line": c.subject,
        "title": c.title,
        "from_name": c.from_name,
        "reply_to": c.reply_to,
    }
    return [
        _request("POST", f"{base}/campaigns", campaign),
        _request(
            "PUT",
            f"{base}/campaigns/{{campaign_id}}/content",
            {"html": c.html, "plain_text": c.text},
        ),
    ]


def _sendgrid(c: _Content) -> list[dict[str, Any]]:
    # https://www.twilio.com/docs/sendgrid/api-reference/single-sends/create-single-send
    # A newsletter is a Marketing Single Send: a draft until it is scheduled (a separate
    # call). {{{unsubscribe}}} needs suppression_group_id or custom_unsubscribe_url.
    # name: 1 to 100 characters (SendGrid's OpenAPI, SinglesendRequest). No preheader
    # field: the hidden preheader in the HTML carries it.
    s: SendgridExport = c.settings
    base = (s.api_url or DEFAULT_URLS["sendgrid"]) + "/v3"
    email_config: dict[str, Any] = {
        "subject": c.subject,
        "html_content": c.html,
        "plain_content": c.text,
        "generate_plain_content": False,
        "editor": "code",
    }
    if s.suppression_group_id is not None:
        email_config["suppression_group_id"] = s.suppression_group_id
    if s.custom_unsubscribe_url:
        email_config["custom_unsubscribe_url"] = s.custom_unsubscribe_url
    if s.sender_id is not None:
        email_config["sender_id"] = s.sender_id
    body: dict[str, Any] = {"name": _cap(c.title, 100)}
    if s.list_ids:
        body["send_to"] = {"list_ids": list(s.list_ids)}
    body["email_config"] = email_config
    return [_request("POST", f"{base}/marketing/singlesends", body)]


def _postmark(c: _Content) -> list[dict[str, Any]]:
    # https://postmarkapp.com/developer/api/templates-api#create-template
    # No preheader field: the hidden preheader in the HTML carries it.
    return [
        _request(
            "POST",
            (c.settings.api_url or DEFAULT_URLS["postmark"]) + "/templates",
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


def _mailgun_template(c: _Content) -> str:
    s: MailgunExport = c.settings
    name = s.template or re.sub(r"[^a-z0-9_-]+", "-", c.newsletter.lower()).strip("-")
    return name or "digest"


def _mailgun(c: _Content) -> list[dict[str, Any]]:
    # https://documentation.mailgun.com/docs/mailgun/api-reference/openapi-final/tag/Templates/
    # Mailgun keeps at most 100 templates per domain and 40 versions per template: one
    # template per newsletter, created once, and one version per issue, tagged with the
    # issue id (the t:version of the send). multipart/form-data; "headers" is a JSON
    # string (only From, Subject and Reply-To are stored). A version holds one body, the
    # HTML: the text part goes with the send.
    s: MailgunExport = c.settings
    base = f"{s.api_url or DEFAULT_URLS['mailgun']}/v3/{s.domain or '<domain>'}/templates"
    name = _mailgun_template(c)
    headers = {"Subject": c.subject, "From": _address(c.from_name, c.from_email)}
    if c.reply_to != c.from_email:
        headers["Reply-To"] = c.reply_to
    return [
        _request("POST", base, {"name": name, "description": c.newsletter}, form=True),
        _request(
            "POST",
            f"{base}/{name}/versions",
            {
                "template": c.html,
                "tag": c.issue_id.lower(),
                "comment": c.title,
                "headers": json.dumps(headers, ensure_ascii=False, sort_keys=True),
                "active": "yes",
            },
            form=True,
        ),
    ]


def _ses(c: _Content) -> list[dict[str, Any]]:
    # https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_CreateEmailTemplate.html
    # No preheader field: the hidden preheader in the HTML carries it.
    return [
        _request(
            "POST",
            f"{_ses_base(c.settings)}/v2/email/templates",
            {
                "TemplateName": c.slug,
                "TemplateContent": {"Subject": c.subject, "Html": c.html, "Text": c.text},
            },
        )
    ]


def _ses_base(s: SesExport) -> str:
    return s.api_url or f"https://email.{s.region or '<region>'}.amazonaws.com"


def _listmonk(c: _Content) -> list[dict[str, Any]]:
    # https://listmonk.app/docs/apis/campaigns/#post-apicampaigns
    # A new campaign is a draft until its status is changed. No preheader field.
    # listmonk refuses an empty "lists" (HTTP 400 campaigns.fieldInvalidListIDs) and wraps
    # the body in its default template unless template_id names another one.
    s: ListmonkExport = c.settings
    if not s.list_ids:
        raise c.refuse(
            "export.listmonk.list_ids",
            "listmonk refuses a campaign without lists; set the ids of the lists to send "
            "to, e.g. list_ids = [1] (Lists in listmonk's admin shows them)",
        )
    body: dict[str, Any] = {
        "name": c.title,
        "subject": c.subject,
        "lists": list(s.list_ids),
        "from_email": _address(c.from_name, c.from_email),
        "type": "regular",
        "content_type": "html",
        "body": c.html,
        "altbody": c.text,
    }
    if s.template_id is not None:
        body["template_id"] = s.template_id
    return [_request("POST", f"{s.api_url or 'https://<listmonk-host>'}/api/campaigns", body)]


def _buttondown(c: _Content) -> list[dict[str, Any]]:
    # https://docs.buttondown.com/api-emails-create: creating an email sends it at once
    # unless its status is "draft". "description" is the preview text; there is no
    # plain-text field (Buttondown derives one).
    s: ButtondownExport = c.settings
    body = {
        "subject": c.subject,
        "body": c.html,
        "description": c.preheader,
        "slug": c.slug.lower(),
        "status": "draft",
    }
    if s.template:
        body["template"] = s.template
    return [_request("POST", f"{s.api_url or DEFAULT_URLS['buttondown']}/v1/emails", body)]


def _generic(c: _Content) -> list[dict[str, Any]]:
    return []


def _person(unsubscribe_url: str, name: str, first_name: str, email: str) -> dict[str, str]:
    """A service's merge tags for the unsubscribe link and the reader's fields."""
    return {
        "unsubscribe_url": unsubscribe_url,
        "name": name,
        "first_name": first_name,
        "email": email,
    }


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
        # Without *|UNSUB|* Mailchimp would still send, adding its own footer with an
        # unsubscribe link and the address: ours carries them, so there is one footer.
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
                "Leave the campaign's preview text empty: the hidden preheader in the HTML "
                "is the preview, and Mailchimp would add its preview text as a second one.",
            ),
            setting_notes=lambda c: (
                []
                if c.settings.list_id
                else [
                    "No audience: set [export.mailchimp] list_id, or pick the audience in "
                    "Mailchimp before sending."
                ]
            ),
        ),
        # SendGrid Marketing Campaigns, Single Sends (a newsletter, not a transactional
        # template): https://www.twilio.com/docs/sendgrid/ui/sending-email/editor#unsubscribe-links
        # "{{{unsubscribe}}}" (triple braces: not escaped) is the link of the Single Send's
        # suppression group or custom unsubscribe URL; first_name, last_name and email
        # are the contact's reserved fields. No web-version tag: our archive URL stays.
        "sendgrid": Preset(
            name="sendgrid",
            tags=_person(
                "{{{unsubscribe}}}", "{{first_name}} {{last_name}}", "{{first_name}}", "{{email}}"
            ),
            guard="{%",  # Handlebars {{ }}
            requests=_sendgrid,
            docs="https://www.twilio.com/docs/sendgrid/api-reference/single-sends",
            notes=(
                "The Single Send is a draft: schedule or send it in SendGrid (Marketing > "
                "Single Sends).",
            ),
            setting_notes=lambda c: [
                *(
                    []
                    if c.settings.suppression_group_id is not None
                    or c.settings.custom_unsubscribe_url
                    else [
                        "No unsubscribe setting: set [export.sendgrid] suppression_group_id "
                        "(or custom_unsubscribe_url), or SendGrid has no link for "
                        "{{{unsubscribe}}} and will not send."
                    ]
                ),
                *(
                    []
                    if c.settings.list_ids
                    else [
                        "No recipients: set [export.sendgrid] list_ids, or pick them in SendGrid."
                    ]
                ),
                *(
                    []
                    if c.settings.sender_id is not None
                    else ["No sender: set [export.sendgrid] sender_id, or pick it in SendGrid."]
                ),
            ],
        ),
        # https://postmarkapp.com/support/article/1208-how-to-add-an-unsubscribe-link:
        # "{{{ pm:unsubscribe }}}" (inner spaces kept, triple braces so it is not escaped);
        # personal fields are Mustachio variables from the TemplateModel.
        "postmark": Preset(
            name="postmark",
            tags=_person("{{{ pm:unsubscribe }}}", "{{ name }}", "{{ first_name }}", "{{ email }}"),
            guard="{",  # Mustachio {{ }}
            requests=_postmark,
            docs="https://postmarkapp.com/developer/api/templates-api",
            notes=(
                _PERSONAL_DATA.format(keys="name, first_name and email", where="TemplateModel"),
            ),
            setting_notes=lambda c: [
                f"Send through the Broadcasts message stream {c.settings.message_stream!r} "
                f"(/email/batchWithTemplates with TemplateAlias {c.slug!r} and MessageStream "
                f"{c.settings.message_stream!r}): {{{{{{ pm:unsubscribe }}}}}} works only there."
            ],
        ),
        # https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages
        # ("%unsubscribe_url%") and .../sending-messages/batch-sending ("%recipient.KEY%"
        # from recipient-variables, so the batch send passes "email" for each address).
        "mailgun": Preset(
            name="mailgun",
            tags=_person(
                "%unsubscribe_url%",
                "%recipient.name%",
                "%recipient.first_name%",
                "%recipient.email%",
            ),
            guard="{%",  # Handlebars templates, %recipient.x% variables
            requests=_mailgun,
            docs="https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/",
            notes=(
                "The bodies are multipart/form-data. The first call creates the newsletter's "
                "template, once; each issue is a new version of it.",
                "Mailgun keeps 100 templates per domain and 40 versions per template: delete "
                "old versions (DELETE .../versions/<tag>) before the 41st issue.",
                _PERSONAL_DATA.format(
                    keys="name, first_name and email", where="recipient-variables"
                ),
            ),
            setting_notes=lambda c: [
                *(
                    []
                    if c.settings.domain
                    else ["Replace <domain> (or set [export.mailgun] domain)."]
                ),
                f"Send with template={_mailgun_template(c)!r} and t:version="
                f"{c.issue_id.lower()!r} (the version tag of this issue), and pass the text "
                "part with the send (text=email.txt; t:text=yes would derive one from the "
                "HTML instead).",
            ],
        ),
        # https://docs.aws.amazon.com/ses/latest/dg/sending-email-subscription-management.html:
        # "{{amazonSESUnsubscribeUrl}}" is filled only by SendEmail with
        # ListManagementOptions; the other fields come from TemplateData (case-sensitive).
        "ses": Preset(
            name="ses",
            tags=_person("{{amazonSESUnsubscribeUrl}}", "{{name}}", "{{first_name}}", "{{email}}"),
            guard="{",  # Handlebars
            requests=_ses,
            docs="https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_CreateEmailTemplate.html",
            notes=(
                "Sign the request with AWS SigV4 (digest export --push, or aws sesv2 "
                "create-email-template --cli-input-json).",
                _PERSONAL_DATA.format(keys="name, first_name and email", where="TemplateData"),
            ),
            setting_notes=lambda c: _ses_notes(c.settings, c.slug),
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
            setting_notes=lambda c: [
                *(
                    []
                    if c.settings.api_url
                    else ["Replace <listmonk-host> (or set [export.listmonk] api_url)."]
                ),
                *(
                    []
                    if c.settings.template_id is not None
                    else [
                        "No template_id: listmonk's default template wraps the body in a "
                        "second document and adds a second footer. Make a template holding "
                        'only {{ template "content" . }} and set [export.listmonk] template_id.'
                    ]
                ),
            ],
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
            setting_notes=lambda c: (
                []
                if c.settings.template
                else [
                    "Buttondown wraps the body in its own template and adds its own footer, "
                    'a second unsubscribe link: set [export.buttondown] template = "naked" '
                    "(the HTML carries {{ unsubscribe_url }})."
                ]
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


def _ses_notes(s: SesExport, name: str) -> list[str]:
    notes = [] if s.region or s.api_url else ["Replace <region> (or set [export.ses] region)."]
    options = (
        f"ListManagementOptions ContactListName {s.contact_list!r}"
        + (f", TopicName {s.topic!r}" if s.topic else "")
        if s.contact_list
        else "ListManagementOptions (a contact list; set [export.ses] contact_list)"
    )
    config_set = (
        f"ConfigurationSetName {s.configuration_set!r}"
        if s.configuration_set
        else "a ConfigurationSetName for bounces and complaints ([export.ses] configuration_set)"
    )
    notes.append(
        f"Send with SendEmail, Template TemplateName {name!r}, {options} (else "
        f"{{{{amazonSESUnsubscribeUrl}}}} is not filled) and {config_set}."
    )
    return notes


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
                setting_notes=base.setting_notes,
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
        settings=cfg.export.service(preset.name),
        source=cfg.source,
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
    if preset.setting_notes is not None:
        notes += preset.setting_notes(content)
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


def folder_for(cfg: Config, exp: Export, out: Path | None = None, edition: str = "") -> Path:
    """``out/<issue-id>/<service>/`` under the output folder (an ``edition`` of a
    newsletter in several languages: ``out/<issue-id>/<lang>/<service>/``), or ``out``."""
    if out is not None:
        return out
    return cfg.output.folder / exp.issue_id / edition / exp.service
