"""TOML file + environment -> a typed, validated ``Config``.

Every problem is reported at once with its dotted key; unknown keys are warnings.
Secrets are never in the file: the file names the environment variable that holds them.
Relative paths are resolved against the config file's folder.

How the settings are declared (issue 14: no pydantic, whose import and schema build cost
~100 ms on every command). Each ``[section]`` is a class deriving from ``_Section``,
which makes it a frozen dataclass (keyword arguments only, no ``@dataclass``
decorator); a key is a field with a type and a default. ``_build`` walks the fields,
checks each value's type and constraints, and collects every problem with its dotted key.
To add a section:

1. write ``class Bounces(_Section):`` with its keys, e.g.
   ``mailbox: str = ""``, ``days: int = key(7, ge=1, le=90)`` (bounds: ``ge``/``gt``/
   ``le``), ``url: str = key("", check=_https)`` (a ``check`` takes the value and returns
   it, maybe normalised, or raises ``ValueError`` with the message to show);
2. a type used by several keys carries its check: ``Email = Annotated[str, Check(_email)]``;
3. add ``bounces: Bounces = Bounces()`` to ``Config`` (a nested ``[a.b]`` table is a
   section-typed field of its section, as ``export.mailchimp``);
4. a relative path key goes into ``_PATHS``; a relation between keys into
   ``_cross_checks``; document every key in config.example.toml (a test checks it).

Types understood: ``str``, ``int``, ``float``, ``bool``, ``Path``, ``X | None``,
``Literal[...]``, ``tuple[X, ...]``, ``dict[K, V]``, a ``_Section`` and ``Annotated`` of
these. ``cfg.section.model_fields_set`` tells the keys the file gave; ``model_copy(update=)``
returns a changed copy (both as pydantic had them, so code written against them works).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError
from .text import ascii_url
from .values import Frozen

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")

_S = TypeVar("_S", bound="_Section")


@dataclass(frozen=True)
class Check:
    """A type's check, as ``Annotated[str, Check(fn)]``: ``fn`` returns the value or raises."""

    fn: typing.Callable[[Any], Any]


def key(
    default: Any = dataclasses.MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    check: typing.Callable[[Any], Any] | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A key with constraints: bounds on a number, or a check on the value."""
    meta = {"ge": ge, "gt": gt, "le": le, "check": check}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


# A section is a plain class deriving from ``_Section``: a ``values.Frozen`` dataclass
# (its fields, ``dataclasses.fields``/``replace``, shared ``==``, ``hash`` and ``repr``)
# with one shared keyword ``__init__``, so nothing is generated and exec'd per class: for
# ~28 classes that was most of importing this module on every command (issue 14).
class _Section(Frozen):
    _dataclass_init = False
    # The keys the file gave (set by _build); a class-level default for sections made in code.
    _given: ClassVar[frozenset[str]] = frozenset()
    _init: ClassVar[tuple[tuple[str, Any, Any], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The shared __init__ sets the keys given or their defaults, nothing more.
        if hasattr(cls, "__post_init__") or not all(f.init for f in dataclasses.fields(cls)):
            raise TypeError(f"{cls.__name__}: a section has no __post_init__ or init=False key")
        cls._init = tuple(
            (f.name, f.default, f.default_factory) for f in dataclasses.fields(cls) if f.init
        )

    def __init__(self, **values: Any) -> None:
        for name, default, factory in self._init:
            if name in values:
                value = values.pop(name)
            elif default is not dataclasses.MISSING:
                value = default
            elif factory is not dataclasses.MISSING:
                value = factory()
            else:
                raise TypeError(f"{type(self).__name__}() missing keyword argument {name!r}")
            object.__setattr__(self, name, value)
        if values:
            raise TypeError(f"{type(self).__name__}() got unexpected keys: {', '.join(values)}")

    @property
    def model_fields_set(self) -> frozenset[str]:
        """The keys the config file gave for this section (not defaults)."""
        return self._given

    def model_copy(self: _S, *, update: dict[str, Any] | None = None) -> _S:
        """A copy with some keys changed (not checked again: for code and tests)."""
        new = dataclasses.replace(self, **(update or {}))
        object.__setattr__(new, "_given", self._given | frozenset(update or ()))
        return new


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


OneLine = Annotated[str, Check(_one_line)]
Email = Annotated[str, Check(_email)]
AbsoluteUrl = Annotated[str, Check(_absolute)]


class Newsletter(_Section):
    name: OneLine = "The Weekly Digest"
    description: str = "You get this email because you subscribed to our weekly digest."
    language: str = "en"
    # One edition per language (README, "Editions"): the first is the main language, which
    # ``language`` then defaults to (and must equal when both are given).
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

    @property
    def editions(self) -> tuple[str, ...]:
        """The languages of a newsletter with one edition per language, main one first;
        () for a newsletter in one language (``languages`` unset or of one)."""
        return self.languages if len(self.languages) > 1 else ()


class Sender(_Section):
    name: OneLine = "The Weekly Digest"
    email: Email = "newsletter@example.com"
    reply_to: Email = ""
    # Issue 12: Gmail's Feedback-ID header ("{issue}" is replaced by the issue id).
    feedback_id: OneLine = ""


def _tz(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{v!r} is not a known time zone; use an IANA name like 'Europe/Berlin'"
        ) from None
    return v


def _day(v: str) -> str:
    d = v.strip().lower()[:3]
    if d not in DAYS:
        raise ValueError(f"{v!r} is not a weekday; use one of {', '.join(DAYS)}")
    return d


def _time(v: str) -> str:
    if not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", v.strip()):
        raise ValueError(f"{v!r} is not a time of day; use 24-hour 'HH:MM', e.g. '09:00'")
    return v.strip()


class Schedule(_Section):
    timezone: str = key("UTC", check=_tz)
    day: str = key("mon", check=_day)
    time: str = key("09:00", check=_time)
    grace_hours: float = key(6.0, ge=0)

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


def _summarizer(v: str) -> str:
    v = v.strip()
    if v and not re.fullmatch(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*", v):
        raise ValueError(
            f"{v!r} is not a plug-in path; use 'package.module:function', "
            "or leave it empty for the built-in summarizer"
        )
    return v


class Content(_Section):
    folder: Path = Path("content")
    summary_words: int = key(60, ge=5, le=500)
    key_points: int = key(3, ge=0, le=10)
    max_articles: int = key(10, ge=1, le=200)
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
    summarizer: str = key("", check=_summarizer)

    # Issue 13: a link that resolves outside `folder` is skipped unless this is true.
    follow_symlinks_outside: bool = False
    # Issue 13: a larger article file is skipped with a warning (parsing is not free).
    max_file_kb: int = key(1024, ge=1, le=1_048_576)  # one read() of up to 1 GB


class Templates(_Section):
    folder: Path | None = None


class Output(_Section):
    folder: Path = Path("out")
    warn_kb: int = key(80, ge=1)
    max_kb: int = key(102, ge=1)


class Subscribers(_Section):
    file: Path = Path("subscribers.csv")


class LedgerSettings(_Section):
    path: Path = Path("digest.sqlite3")


class Delivery(_Section):
    transport: Literal["outbox", "smtp"] = "outbox"
    outbox: Path = Path("outbox")
    concurrency: int = key(4, ge=1, le=64)
    rate_per_second: float = key(0, ge=0)  # 0 = no limit
    rate_per_hour: int = key(0, ge=0)  # 0 = no limit
    max_attempts: int = key(5, ge=1, le=50)
    pause_after_failures: int = key(20, ge=1)
    retry_seconds: float = key(2.0, gt=0)  # first retry delay; doubles each time
    retry_max_seconds: float = key(300.0, gt=0)
    # Issue 14: `send --dry-run` writes the first this many messages and composes and
    # counts the rest (100,000 written messages are ~6 GB); 0 = write every one.
    dry_run_sample: int = key(100, ge=0)


class Smtp(_Section):
    host: str = "127.0.0.1"
    port: int = key(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password_env: str = "DIGEST_SMTP_PASSWORD"
    ca_file: Path | None = None
    timeout: float = key(30, gt=0)

    def password(self) -> str | None:
        return os.environ.get(self.password_env) if self.password_env else None


_HTTPS_URL = re.compile(r"(?i:https)://[^/\s<>\"\x00-\x1f\x7f]+[^\s<>\"\x00-\x1f\x7f]*")


def _unsubscribe_url(v: str) -> str:
    # https: one-click unsubscribe (RFC 8058) requires it, and Gmail and Yahoo ignore
    # the header without it. ASCII: it goes into a header as it is.
    if v and not _HTTPS_URL.fullmatch(v):
        raise ValueError(
            f"{v!r} is not an absolute https URL without spaces, "
            "e.g. 'https://example.com/newsletter/unsubscribe'"
        )
    return ascii_url(v) if v else v


class Unsubscribe(_Section):
    secret_env: str = "DIGEST_SECRET"
    url: str = key("", check=_unsubscribe_url)  # default: <newsletter.web_root>/unsubscribe
    mailto: Email = ""

    def secret(self) -> str | None:
        return os.environ.get(self.secret_env) if self.secret_env else None


def _dns_label(v: str) -> str:
    if v and not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", v):
        raise ValueError(f"{v!r} is not a DNS name (letters, digits, '-', '_', dots)")
    return v.lower()


def _folder_name(v: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", v):
        raise ValueError(f"{v!r}: use letters, digits, '-' and '_' only")
    return v


class Dkim(_Section):
    # Empty domain: messages are not signed. See signing.py.
    domain: str = key("", check=_dns_label)
    selector: str = key("", check=_dns_label)
    key_file: Path | None = None


class Bounces(_Section):
    # The envelope sender (Return-Path) of every message is <local>+<token>@<domain>;
    # "" = bounces@<the domain of sender.email>. See bounces.py.
    address: Email = ""
    delimiter: Literal["+", "-", "="] = "+"
    verp: bool = True
    soft_limit: int = key(3, ge=1)  # soft bounces that suppress a reader...
    soft_days: float = key(30, gt=0)  # ...within this many days
    maildir: Path | None = None  # the mailbox the bounce address delivers to
    imap_url: str = ""  # imaps://user@host/INBOX
    imap_password_env: str = "DIGEST_IMAP_PASSWORD"
    done_folder: str = key("digest-handled", check=_folder_name)  # handled bounces go here


def _root_path(v: str) -> str:
    v = v.rstrip("/")
    if v and not re.fullmatch(r"(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+", v):
        raise ValueError(f"{v!r} is not a URL path; use e.g. '/newsletter' (or '' for /)")
    return v


class Web(_Section):
    host: str = "127.0.0.1"
    port: int = key(8000, ge=1, le=65535)
    # Issue 13: limits against clients that hold connections open (slowloris), and the
    # path prefix the server answers under behind a reverse proxy.
    request_timeout: float = key(10, gt=0, le=300)  # to send a request's head
    keep_alive: int = key(5, ge=1, le=300)  # an idle kept-alive connection
    max_connections: int = key(256, ge=1)  # more are closed at once
    root_path: str = key("", check=_root_path)  # e.g. "/newsletter": routes under that prefix


class Subscribe(_Section):
    """Issue 16: the signup form of ``digest serve`` (double opt-in). Off by default."""

    enabled: bool = False  # GET/POST /subscribe and the confirmation links
    confirm_hours: float = key(48, gt=0, le=24 * 30)  # a confirmation link works this long
    per_address_per_hour: int = key(3, ge=1)  # confirmation mails to one address
    per_client_per_hour: int = key(20, ge=1)  # signups from one client address
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
    from .model import PLACEHOLDERS  # late: model's types are not needed to read a config

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


_PresetName = Annotated[str, Check(_preset_name)]
_Placeholder = Annotated[str, Check(_placeholder)]
_MergeTag = Annotated[str, Check(_merge_tag)]


def _env_name(v: str) -> str:
    if v and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v):
        raise ValueError(f"{v!r} is not an environment variable name, e.g. 'SENDGRID_API_KEY'")
    return v


_EnvName = Annotated[str, Check(_env_name)]


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


def _https(v: str) -> str:
    if v and not _HTTPS_URL.fullmatch(v):
        raise ValueError(f"{v!r} is not an absolute https URL")
    return v


class SendgridExport(_Service):
    key_env: _EnvName = "SENDGRID_API_KEY"
    list_ids: tuple[str, ...] = ()  # send_to.list_ids
    suppression_group_id: int | None = None  # the unsubscribe group {{{unsubscribe}}} uses
    custom_unsubscribe_url: str = key("", check=_https)  # or your own unsubscribe page
    sender_id: int | None = None  # a verified Sender (Marketing > Senders)


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
    presets: dict[_PresetName, dict[_Placeholder, _MergeTag]] = dataclasses.field(
        default_factory=dict
    )
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

    def edition(self, lang: str) -> Config:
        """This config for the edition in ``lang``: the same newsletter with ``lang`` as its
        language, so content, issue and render build that edition as they build any issue.
        ``newsletter.description`` is written in the main language: another edition says
        the catalog's sentence in its own (render._reason)."""
        news = self.newsletter
        if lang == news.language:
            return self
        edition = news.model_copy(update={"language": lang})
        object.__setattr__(edition, "_given", edition.model_fields_set - {"description"})
        new = dataclasses.replace(self, newsletter=edition)
        object.__setattr__(new, "_given", self.model_fields_set)
        return new


# --- the checker --------------------------------------------------------------------------

_INTERNAL = {"source", "warnings"}  # Config fields load() sets; never from the file
_Problems = list[tuple[str, str]]


class _Invalid(Exception):
    """A value that cannot be used; already recorded in the problems."""


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    # Resolved once per class: the annotations are strings (``from __future__``).
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, include_extras=True)
    return _HINTS[cls]


def settings(cls: type[_Section]) -> dict[str, Any]:
    """A section's keys a file may set -> their types (for docs and tests)."""
    hints = _hints(cls)
    return {
        f.name: hints[f.name]
        for f in dataclasses.fields(cls)
        if not (cls is Config and f.name in _INTERNAL)
    }


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, _Section)


def _describe(value: Any) -> str:
    kind = {bool: "true/false", dict: "a table", list: "a list"}.get(type(value))
    return kind or repr(value)


def _value(tp: Any, value: Any, dotted: str, problems: _Problems, unknown: list[str]) -> Any:
    """``value`` as type ``tp``; a problem is recorded and raises _Invalid."""

    def bad(message: str) -> _Invalid:
        problems.append((dotted, message))
        return _Invalid()

    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *extras = typing.get_args(tp)
        value = _value(base, value, dotted, problems, unknown)
        for extra in extras:
            if isinstance(extra, Check):
                try:
                    value = extra.fn(value)
                except ValueError as exc:
                    raise bad(str(exc)) from None
        return value
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return _value(options[0], value, dotted, problems, unknown)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed or isinstance(value, bool):
            raise bad(
                f"{_describe(value)} is not allowed; use one of {', '.join(map(repr, allowed))}"
            )
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise bad(f'{_describe(value)} is not a list; use e.g. ["a", "b"]')
        item = typing.get_args(tp)[0]
        items, failed = [], False
        for i, v in enumerate(value):
            try:
                items.append(_value(item, v, f"{dotted}.{i}", problems, unknown))
            except _Invalid:
                failed = True
        if failed:
            raise _Invalid()
        return tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise bad(f"{_describe(value)} is not a table; use [{dotted}] with keys below it")
        ktype, vtype = typing.get_args(tp)
        out, failed = {}, False
        for k, v in value.items():
            try:
                k = _value(ktype, k, f"{dotted}.{k}", problems, unknown)
                out[k] = _value(vtype, v, f"{dotted}.{k}", problems, unknown)
            except _Invalid:
                failed = True
        if failed:
            raise _Invalid()
        return out
    if _is_section(tp):
        if not isinstance(value, dict):
            raise bad(f"{_describe(value)} is not a table; use [{dotted}] with keys below it")
        return _build(tp, value, dotted + ".", problems, unknown)
    if tp is bool:
        if not isinstance(value, bool):
            raise bad(f"{_describe(value)} is not true or false")
        return value
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad(f"{_describe(value)} is not a whole number")
        return value
    if tp is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise bad(f"{_describe(value)} is not a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad(f"{_describe(value)} is not text; put it in quotes")
        return value
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise bad(f"{_describe(value)} is not a path; put it in quotes")
        return Path(value)
    raise TypeError(f"config.py: no checker for the type {tp!r} of {dotted}")  # our bug


def _bounds(meta: Any, value: Any) -> str | None:
    if meta.get("ge") is not None and value < meta["ge"]:
        return f"{value!r} is too small; use {meta['ge']} or more"
    if meta.get("gt") is not None and value <= meta["gt"]:
        return f"{value!r} is too small; use more than {meta['gt']}"
    if meta.get("le") is not None and value > meta["le"]:
        return f"{value!r} is too large; use {meta['le']} or less"
    return None


def _build(
    cls: type[_S], raw: dict[str, Any], prefix: str, problems: _Problems, unknown: list[str]
) -> _S:
    """One section from its table: every problem recorded, unknown keys listed."""
    hints = _hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    failed = False
    for name, value in raw.items():
        f = known.get(name)
        dotted = f"{prefix}{name}"
        if f is None or (cls is Config and name in _INTERNAL):
            unknown.append(dotted)
            continue
        try:
            value = _value(hints[name], value, dotted, problems, unknown)
            check = f.metadata.get("check")
            if check is not None:
                try:
                    value = check(value)
                except ValueError as exc:
                    problems.append((dotted, str(exc)))
                    raise _Invalid() from None
            message = _bounds(f.metadata, value) if f.metadata else None
            if message:
                problems.append((dotted, message))
                raise _Invalid()
        except _Invalid:
            failed = True
            continue
        values[name] = value
    if failed:
        raise _Invalid()
    section = cls(**values)
    object.__setattr__(section, "_given", frozenset(values))
    return section


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


def parse(raw: dict[str, Any], source: Path | None = None) -> Config:
    """Validate a raw dict (as read from TOML). Raises ConfigError with every problem."""
    base = source.parent if source else Path.cwd()
    problems: _Problems = []
    unknown: list[str] = []
    try:
        cfg = _build(Config, raw, "", problems, unknown)
    except _Invalid:
        raise ConfigError(source or "config", problems) from None
    updates: dict[str, Any] = {}
    for section, name in _PATHS:
        sect = getattr(cfg, section)
        value = getattr(sect, name)
        if value is not None and not value.is_absolute():
            updates.setdefault(section, {})[name] = (base / value).resolve()
    news = cfg.newsletter
    if news.languages and "language" not in news.model_fields_set:
        updates["newsletter"] = {"language": news.languages[0]}  # the main language
    for section, fields in updates.items():
        updates[section] = getattr(cfg, section).model_copy(update=fields)
    problems = _cross_checks(cfg, updates)
    if problems:
        raise ConfigError(source or "config", problems)
    warnings = tuple(
        f"{k}: unknown setting (ignored); check the spelling against config.example.toml"
        for k in unknown
    )
    new = dataclasses.replace(cfg, **updates, source=source, warnings=warnings)
    object.__setattr__(new, "_given", cfg.model_fields_set)
    return new


def _cross_checks(cfg: Config, resolved: dict[str, Any]) -> list[tuple[str, str]]:
    """Problems no single field shows: relations between fields, paths that must exist."""
    problems = _language_problems(cfg)
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


def _language_problems(cfg: Config) -> list[tuple[str, str]]:
    """``newsletter.languages``: language tags, one per primary language (routing is by
    primary subtag), the first equal to ``newsletter.language`` when both are given."""
    from .i18n import primary

    news, problems = cfg.newsletter, []
    seen: dict[str, str] = {}
    for lang in news.languages:
        if not _LANG_TAG.match(lang):
            problems.append(("newsletter.languages", f"{lang!r} is not a language code like "
                             "'en' or 'pt-BR'"))  # fmt: skip
        elif primary(lang) in seen:
            problems.append(("newsletter.languages", f"{seen[primary(lang)]!r} and {lang!r} "
                             "are one language to readers (routing is by the part before "
                             "'-'); keep one"))  # fmt: skip
        seen.setdefault(primary(lang), lang)
    if (
        news.languages
        and "language" in news.model_fields_set
        and news.language != news.languages[0]
    ):
        problems.append(("newsletter.languages", f"the first language is the main one and "
                         f"must be newsletter.language ({news.language!r}), not "
                         f"{news.languages[0]!r}; put {news.language!r} first, or remove "
                         "newsletter.language"))  # fmt: skip
    if news.editions and cfg.content.other_languages == "keep":
        problems.append(("content.other_languages", '"keep" puts every post in every '
                         'edition of newsletter.languages; use "skip" (the default)'))  # fmt: skip
    return problems


_LANG_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")

_FIRST_RUN_KEYS = (
    ("newsletter", "base_url"),
    ("newsletter", "postal_address"),
    ("sender", "email"),
    ("sender", "name"),
)


def _placeholder_ok(cfg: Config, section: str, key: str) -> bool:
    # The base URL's placeholder reaches no reader when the web version and unsubscribe
    # links have their own address (archive_url) and the articles a site's base URL.
    return (section, key) == ("newsletter", "base_url") and bool(cfg.newsletter.archive_url)


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
        elif not given and "example.com" in value and not _placeholder_ok(cfg, section, key):
            why = f"is not set, and its default ({value}) is a placeholder"
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
