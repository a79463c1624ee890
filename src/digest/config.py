"""TOML file + environment -> a typed, validated ``Config``.

Every problem is reported at once with its dotted key; unknown keys are warnings.
Secrets are never in the file: the file names the environment variable that holds them.
Relative paths are resolved against the config file's folder.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError
from .model import PLACEHOLDERS
from .text import ascii_url

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# Validators shared by several keys, as types.


def _one_line(v: str) -> str:
    if "\r" in v or "\n" in v:
        raise ValueError("must be a single line (no line breaks)")
    return v


def _email(v: str) -> str:
    if v and not _EMAIL.match(v):
        raise ValueError(f"{v!r} is not an email address")
    return v


def _absolute(v: str) -> str:
    if v and not re.match(r"^https?://[^/\s]+", v):
        raise ValueError(f"{v!r} is not an absolute http(s) URL, e.g. 'https://example.com'")
    return v.rstrip("/")


OneLine = Annotated[str, AfterValidator(_one_line)]
Email = Annotated[str, AfterValidator(_email)]
AbsoluteUrl = Annotated[str, AfterValidator(_absolute)]


class Newsletter(_Section):
    name: OneLine = "The Weekly Digest"
    description: str = "You get this email because you subscribed to our weekly digest."
    language: str = "en"
    # One edition per language: not yet (a clear error when more than one is given).
    languages: tuple[str, ...] = ()
    base_url: AbsoluteUrl = "https://example.com"
    archive_url: AbsoluteUrl = ""  # default: <base_url>/newsletter
    postal_address: str = ""
    first_issue: str = ""  # ISO week of issue #1; default: the week of the oldest article
    subject: OneLine = "{{ name }} #{{ number }}: {{ top_title }}"
    preheader: OneLine = (
        "{{ count }} article{{ 's' if count != 1 else '' }} this week: {{ titles }}"
    )

    @property
    def web_root(self) -> str:
        return self.archive_url or f"{self.base_url or 'https://example.com'}/newsletter"

    @property
    def base_url_set(self) -> bool:
        """Whether the config names the base URL; if not, a detected site's own is used."""
        return bool(self.base_url) and "base_url" in self.model_fields_set


class Sender(_Section):
    name: OneLine = "The Weekly Digest"
    email: Email = "newsletter@example.com"
    reply_to: Email = ""
    # Issue 12: Gmail's Feedback-ID header ("{issue}" is replaced by the issue id).
    feedback_id: OneLine = ""


class Schedule(_Section):
    timezone: str = "UTC"
    day: str = "mon"
    time: str = "09:00"
    grace_hours: float = Field(default=6.0, ge=0)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{v!r} is not a known time zone; use an IANA name like 'Europe/Berlin'"
            ) from None
        return v

    @field_validator("day")
    @classmethod
    def _day(cls, v: str) -> str:
        d = v.strip().lower()[:3]
        if d not in DAYS:
            raise ValueError(f"{v!r} is not a weekday; use one of {', '.join(DAYS)}")
        return d

    @field_validator("time")
    @classmethod
    def _time(cls, v: str) -> str:
        if not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", v.strip()):
            raise ValueError(f"{v!r} is not a time of day; use 24-hour 'HH:MM', e.g. '09:00'")
        return v.strip()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def weekday(self) -> int:
        return DAYS.index(self.day)

    @property
    def at(self) -> dt.time:
        h, m = self.time.split(":")
        return dt.time(int(h), int(m))


class Content(_Section):
    folder: Path = Path("content")
    summary_words: int = Field(default=60, ge=5, le=500)
    key_points: int = Field(default=3, ge=0, le=10)
    max_articles: int = Field(default=10, ge=1, le=200)
    group_by: Literal["", "tag", "category"] = ""
    # "auto": find the site's generator (Jekyll, Hugo, Zola, Pelican) and follow its rules
    # for URLs, posts and template code; "none": read the folder as plain Markdown.
    site: Literal["auto", "none"] = "auto"
    # Overrides every generator's rule: {year} {month} {day} {slug} {stem} {title} {lang}
    # {section} {category} {path}, below newsletter.base_url (or absolute).
    url_pattern: str = ""
    # Template code in article text, expanded as the generator would (never run): "auto"
    # (the detected site's), "none", "liquid", "hugo", "tera", "pelican" or "go".
    template_code: Literal["auto", "none", "liquid", "hugo", "tera", "pelican", "go"] = "auto"
    # Posts in another language than newsletter.language: left out ("skip") or kept.
    other_languages: Literal["skip", "keep"] = "skip"
    exclude: tuple[str, ...] = (
        "README*", "readme*", "LICENSE*", "CHANGELOG*", "CONTRIBUTING*", "CODE_OF_CONDUCT*",
        "SECURITY*", "404.*", "_index.*",
    )  # fmt: skip
    # Issue 12 (an issue a reader can skim): editor's notes, <notes>/<issue-id>.md
    # (default <folder>/_notes), and the first article shown larger.
    notes: Path | None = None
    lead: bool = True

    @property
    def notes_folder(self) -> Path:
        return self.notes if self.notes is not None else self.folder / "_notes"

    # "package.module:function" (issue 12): a summarizer plug-in; "" = the built-in one.
    summarizer: str = ""

    @field_validator("summarizer")
    @classmethod
    def _summarizer(cls, v: str) -> str:
        v = v.strip()
        if v and not re.fullmatch(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*", v):
            raise ValueError(
                f"{v!r} is not a plug-in path; use 'package.module:function', "
                "or leave it empty for the built-in summarizer"
            )
        return v

    # Issue 13: a link that resolves outside `folder` is skipped unless this is true.
    follow_symlinks_outside: bool = False
    # Issue 13: a larger article file is skipped with a warning (parsing is not free).
    max_file_kb: int = Field(default=1024, ge=1, le=1_048_576)  # one read() of up to 1 GB


class Templates(_Section):
    folder: Path | None = None


class Output(_Section):
    folder: Path = Path("out")
    warn_kb: int = Field(default=80, ge=1)
    max_kb: int = Field(default=102, ge=1)


class Subscribers(_Section):
    file: Path = Path("subscribers.csv")


class LedgerSettings(_Section):
    path: Path = Path("digest.sqlite3")


class Delivery(_Section):
    transport: Literal["outbox", "smtp"] = "outbox"
    outbox: Path = Path("outbox")
    concurrency: int = Field(default=4, ge=1, le=64)
    rate_per_second: float = Field(default=0, ge=0)  # 0 = no limit
    rate_per_hour: int = Field(default=0, ge=0)  # 0 = no limit
    max_attempts: int = Field(default=5, ge=1, le=50)
    pause_after_failures: int = Field(default=20, ge=1)
    retry_seconds: float = Field(default=2.0, gt=0)  # first retry delay; doubles each time
    retry_max_seconds: float = Field(default=300.0, gt=0)


class Smtp(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password_env: str = "DIGEST_SMTP_PASSWORD"
    ca_file: Path | None = None
    timeout: float = Field(default=30, gt=0)

    def password(self) -> str | None:
        return os.environ.get(self.password_env) if self.password_env else None


_HTTPS_URL = re.compile(r"(?i:https)://[^/\s<>\"\x00-\x1f\x7f]+[^\s<>\"\x00-\x1f\x7f]*")


class Unsubscribe(_Section):
    secret_env: str = "DIGEST_SECRET"
    url: str = ""  # default: <newsletter.web_root>/unsubscribe
    mailto: Email = ""

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        # https: one-click unsubscribe (RFC 8058) requires it, and Gmail and Yahoo ignore
        # the header without it. ASCII: it goes into a header as it is.
        if v and not _HTTPS_URL.fullmatch(v):
            raise ValueError(
                f"{v!r} is not an absolute https URL without spaces, "
                "e.g. 'https://example.com/newsletter/unsubscribe'"
            )
        return ascii_url(v) if v else v

    def secret(self) -> str | None:
        return os.environ.get(self.secret_env) if self.secret_env else None


class Dkim(_Section):
    # Empty domain: messages are not signed. See signing.py.
    domain: str = ""
    selector: str = ""
    key_file: Path | None = None

    @field_validator("domain", "selector")
    @classmethod
    def _label(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", v):
            raise ValueError(f"{v!r} is not a DNS name (letters, digits, '-', '_', dots)")
        return v.lower()


class Bounces(_Section):
    # The envelope sender (Return-Path) of every message is <local>+<token>@<domain>;
    # "" = bounces@<the domain of sender.email>. See bounces.py.
    address: str = ""
    delimiter: Literal["+", "-", "="] = "+"
    verp: bool = True
    soft_limit: int = Field(default=3, ge=1)  # soft bounces that suppress a reader...
    soft_days: float = Field(default=30, gt=0)  # ...within this many days
    maildir: Path | None = None  # the mailbox the bounce address delivers to
    imap_url: str = ""  # imaps://user@host/INBOX
    imap_password_env: str = "DIGEST_IMAP_PASSWORD"
    done_folder: str = "digest-handled"  # handled bounces are moved here

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        if v and not _EMAIL.match(v):
            raise ValueError(f"{v!r} is not an email address")
        return v

    @field_validator("done_folder")
    @classmethod
    def _folder(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", v):
            raise ValueError(f"{v!r}: use letters, digits, '-' and '_' only")
        return v


class Web(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Issue 13: limits against clients that hold connections open (slowloris), and the
    # path prefix the server answers under behind a reverse proxy.
    request_timeout: float = Field(default=10, gt=0, le=300)  # to send a request's head
    keep_alive: int = Field(default=5, ge=1, le=300)  # an idle kept-alive connection
    max_connections: int = Field(default=256, ge=1)  # more are closed at once
    root_path: str = ""  # e.g. "/newsletter": routes and links under that prefix

    @field_validator("root_path")
    @classmethod
    def _root_path(cls, v: str) -> str:
        v = v.rstrip("/")
        if v and not re.fullmatch(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+", v):
            raise ValueError(f"{v!r} is not a URL path; use e.g. '/newsletter' (or '' for /)")
        return v


class Subscribe(_Section):
    """Issue 16: the signup form of ``digest serve`` (double opt-in). Off by default."""

    enabled: bool = False  # GET/POST /subscribe and the confirmation links
    confirm_hours: float = Field(default=48, gt=0, le=24 * 30)  # a confirmation link works
    per_address_per_hour: int = Field(default=3, ge=1)  # confirmation mails to one address
    per_client_per_hour: int = Field(default=20, ge=1)  # signups from one client address
    # The header the reverse proxy puts the client's address in ("x-real-ip",
    # "x-forwarded-for": its last value is used); "" = the connection's peer address.
    client_header: str = ""
    subject: OneLine = "Confirm your subscription to {name}"


def _preset_name(v: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", v):
        raise ValueError(
            f"{v!r} is not a usable preset name; use lower-case letters, digits, '-' and '_'"
        )
    return v


def _placeholder(v: str) -> str:
    if v not in PLACEHOLDERS:
        raise ValueError(f"{v!r} is not a placeholder; use one of {', '.join(PLACEHOLDERS)}")
    return v


def _merge_tag(v: str) -> str:
    # A tag may stand inside href="...": a double quote or a line break would break the HTML.
    if '"' in v or "\r" in v or "\n" in v:
        raise ValueError(
            f"{v!r} must be one line without double quotes (it may stand inside an "
            'href="..."); use single quotes inside the tag'
        )
    return v


_PresetName = Annotated[str, AfterValidator(_preset_name)]
_Placeholder = Annotated[str, AfterValidator(_placeholder)]
_MergeTag = Annotated[str, AfterValidator(_merge_tag)]


def _env_name(v: str) -> str:
    if v and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
        raise ValueError(f"{v!r} is not an environment variable name, e.g. 'SENDGRID_API_KEY'")
    return v


_EnvName = Annotated[str, AfterValidator(_env_name)]


class _Service(_Section):
    """``[export.SERVICE]``: what ``digest export --for SERVICE [--push]`` needs from you.

    The API key is never in the file: ``key_env`` names the environment variable holding
    it. ``api_url`` replaces the vendor's endpoint (an EU region, a self-hosted server).
    """

    key_env: _EnvName = ""
    api_url: AbsoluteUrl = ""

    def key(self) -> str | None:
        return (os.environ.get(self.key_env) or None) if self.key_env else None


class MailchimpExport(_Service):
    key_env: _EnvName = "MAILCHIMP_API_KEY"
    list_id: str = ""  # the audience (recipients.list_id)


class SendgridExport(_Service):
    key_env: _EnvName = "SENDGRID_API_KEY"
    list_ids: tuple[str, ...] = ()  # send_to.list_ids
    suppression_group_id: int | None = None  # the unsubscribe group {{{unsubscribe}}} uses
    custom_unsubscribe_url: str = ""  # or your own unsubscribe page
    sender_id: int | None = None  # a verified Sender (Marketing > Senders)

    @field_validator("custom_unsubscribe_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not _HTTPS_URL.fullmatch(v):
            raise ValueError(f"{v!r} is not an absolute https URL")
        return v


class PostmarkExport(_Service):
    key_env: _EnvName = "POSTMARK_SERVER_TOKEN"
    message_stream: str = "broadcast"  # a Broadcasts stream of the server


class MailgunExport(_Service):
    key_env: _EnvName = "MAILGUN_API_KEY"
    domain: str = ""  # your sending domain, e.g. "mg.example.com"
    template: str = ""  # one template per newsletter; default: from newsletter.name


class SesExport(_Service):
    key_env: _EnvName = ""  # SES signs with the AWS credential chain (AWS_ACCESS_KEY_ID, ...)
    region: str = ""  # default: $AWS_REGION
    configuration_set: str = ""
    contact_list: str = ""  # ListManagementOptions: fills {{amazonSESUnsubscribeUrl}}
    topic: str = ""


class ListmonkExport(_Service):
    key_env: _EnvName = "LISTMONK_API_TOKEN"
    username: str = ""  # the API user the token belongs to
    list_ids: tuple[int, ...] = ()  # required: listmonk refuses a campaign without lists
    template_id: int | None = None  # a campaign template holding only the content


class ButtondownExport(_Service):
    key_env: _EnvName = "BUTTONDOWN_API_KEY"
    template: str = ""  # "naked": no Buttondown wrapper around our HTML, no second footer


class ExportSettings(_Section):
    # [export.presets.NAME]: placeholder name -> that service's merge tag ("" = keep the
    # rendered default). A built-in service name overrides only the tags given.
    presets: dict[_PresetName, dict[_Placeholder, _MergeTag]] = Field(default_factory=dict)
    # [export.SERVICE]: lists, templates and the API key's variable, for each service.
    mailchimp: MailchimpExport = MailchimpExport()
    sendgrid: SendgridExport = SendgridExport()
    postmark: PostmarkExport = PostmarkExport()
    mailgun: MailgunExport = MailgunExport()
    ses: SesExport = SesExport()
    listmonk: ListmonkExport = ListmonkExport()
    buttondown: ButtondownExport = ButtondownExport()

    def service(self, name: str) -> _Service | None:
        """The ``[export.NAME]`` settings of a built-in service, else None."""
        found = getattr(self, name, None) if name != "presets" else None
        return found if isinstance(found, _Service) else None


class Config(_Section):
    newsletter: Newsletter = Newsletter()
    sender: Sender = Sender()
    schedule: Schedule = Schedule()
    content: Content = Content()
    templates: Templates = Templates()
    output: Output = Output()
    subscribers: Subscribers = Subscribers()
    ledger: LedgerSettings = LedgerSettings()
    delivery: Delivery = Delivery()
    smtp: Smtp = Smtp()
    unsubscribe: Unsubscribe = Unsubscribe()
    web: Web = Web()
    subscribe: Subscribe = Subscribe()
    export: ExportSettings = ExportSettings()
    dkim: Dkim = Dkim()
    bounces: Bounces = Bounces()

    # Set by load(): where the file was, and keys we did not recognise.
    source: Path | None = None
    warnings: tuple[str, ...] = ()

    @property
    def unsubscribe_url(self) -> str:
        return self.unsubscribe.url.rstrip("/") or f"{self.newsletter.web_root}/unsubscribe"


_PATHS = {
    ("content", "folder"),
    ("templates", "folder"),
    ("output", "folder"),
    ("subscribers", "file"),
    ("ledger", "path"),
    ("delivery", "outbox"),
    ("smtp", "ca_file"),
    ("content", "notes"),
    ("dkim", "key_file"),
    ("bounces", "maildir"),
}


def _unknown_keys(raw: dict[str, Any], model: type[BaseModel], prefix: str = "") -> list[str]:
    found = []
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        field = model.model_fields.get(key)
        if field is None or key in ("source", "warnings"):
            found.append(dotted)
            continue
        sub = field.annotation
        if isinstance(value, dict) and isinstance(sub, type) and issubclass(sub, BaseModel):
            found += _unknown_keys(value, sub, dotted + ".")
    return found


def parse(raw: dict[str, Any], source: Path | None = None) -> Config:
    """Validate a raw dict (as read from TOML). Raises ConfigError with every problem."""
    base = source.parent if source else Path.cwd()
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            # A dict key that fails validation is reported at "<key>.[key]": drop the marker.
            key = ".".join(str(p) for p in err["loc"] if p != "[key]")
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "literal_error":
                msg = f"{err['input']!r} is not allowed; {msg[0].lower()}{msg[1:]}"
            problems.append((key, msg))
        raise ConfigError(source or "config", problems) from None
    updates: dict[str, Any] = {}
    for section, key in _PATHS:
        sect = getattr(cfg, section)
        value = getattr(sect, key)
        if value is not None and not value.is_absolute():
            updates.setdefault(section, {})[key] = (base / value).resolve()
    for section, fields in updates.items():
        updates[section] = getattr(cfg, section).model_copy(update=fields)
    problems = _cross_checks(cfg, updates)
    if problems:
        raise ConfigError(source or "config", problems)
    warnings = tuple(
        f"{k}: unknown setting (ignored); check the spelling against config.example.toml"
        for k in _unknown_keys(raw, Config)
    )
    return cfg.model_copy(update={**updates, "source": source, "warnings": warnings})


def _cross_checks(cfg: Config, resolved: dict[str, Any]) -> list[tuple[str, str]]:
    """Problems no single field shows: relations between fields, paths that must exist."""
    problems = []
    if len(cfg.newsletter.languages) > 1:
        problems.append(
            (
                "newsletter.languages",
                "one edition per language is not yet supported; set newsletter.language "
                "and run one config per language (each with its own ledger)",
            )
        )
    templates = resolved.get("templates", cfg.templates).folder
    if templates is not None and not templates.is_dir():
        problems.append(
            ("templates.folder", f"{str(templates)!r} is not a folder; create it or remove the key")
        )
    sendgrid = cfg.export.sendgrid
    if sendgrid.suppression_group_id is not None and sendgrid.custom_unsubscribe_url:
        problems.append(
            (
                "export.sendgrid.custom_unsubscribe_url",
                "set either suppression_group_id or custom_unsubscribe_url, not both",
            )
        )
    dkim = resolved.get("dkim", cfg.dkim)
    if dkim.domain or dkim.selector or dkim.key_file:
        for key in ("domain", "selector", "key_file"):
            if not getattr(dkim, key):
                problems.append((f"dkim.{key}", "missing: DKIM signing needs domain, selector "
                                 "and key_file (or remove the [dkim] section)"))  # fmt: skip
        if dkim.key_file and not dkim.key_file.is_file():
            problems.append(("dkim.key_file", f"{str(dkim.key_file)!r} is not a file; create "
                             "the key (see README, DKIM) or fix the path"))  # fmt: skip
    if cfg.output.warn_kb > cfg.output.max_kb:
        problems.append(
            ("output.warn_kb", f"{cfg.output.warn_kb} is above output.max_kb ({cfg.output.max_kb})")
        )
    return problems


_FIRST_RUN_KEYS = (
    ("newsletter", "base_url"),
    ("newsletter", "postal_address"),
    ("sender", "email"),
    ("sender", "name"),
)


def first_run_values(cfg: Config) -> list[tuple[str, str]]:
    """(key, problem) for each value still as ``digest init`` or the example wrote it: a
    TODO marker, or the bundled example's own value (a copied example config). A real
    send refuses while any is left (``sending``)."""
    from .files import bundled

    try:
        example = tomllib.loads(bundled("config.example.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        example = {}
    found = []
    for section, key in _FIRST_RUN_KEYS:
        value = str(getattr(getattr(cfg, section), key))
        given = key in getattr(cfg, section).model_fields_set
        if "todo" in value.lower():
            why = "still says TODO"
        elif given and value and value == str(example.get(section, {}).get(key, "")):
            why = f"is the example's value ({value})"
        else:
            continue
        found.append((f"{section}.{key}", f"{why}; set your own before a real send"))
    return found


def load(path: Path | str) -> Config:
    """Read and validate a TOML config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            path, [("", "file not found; pass --config or create one with 'digest init'")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [("", f"cannot read it: {exc}")]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [("", f"not valid TOML: {exc}")]) from None
    return parse(raw, path.resolve())
