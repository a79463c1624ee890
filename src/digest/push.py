"""``digest export --push``: create or update the draft of an issue at a mail service.

The export's payload is the single source of what is sent: each service's client sends
the bodies of the payload's requests to that service's API, keeps the id it answers with
(in the ledger, see ``push_export``) and updates that same draft when the issue is pushed
again. Every call is checked against a short list of create, read and update endpoints
(``ALLOWED``): a push never schedules or sends, and a draft that was scheduled or sent
meanwhile is left alone.

Requests that the service may not have seen (429, 5xx, no connection) are retried with
backoff, honouring Retry-After, a bounded number of times; any other refusal is a
``PushError`` carrying the vendor's own message. The API key is only ever in a header.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import logging
import os
import random
import re
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from . import __version__
from .config import (
    ButtondownExport,
    Config,
    ListmonkExport,
    MailchimpExport,
    MailgunExport,
    SesExport,
)
from .errors import ConfigError, DigestError
from .export import DEFAULT_URLS

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4  # one request and three retries
MAX_WAIT = 60.0  # seconds: the longest pause before a retry, whatever Retry-After says
TIMEOUT = 30.0

# The only calls a push makes, per service: (method, path) with ids as [^/]+. Schedule
# and send endpoints (Mailchimp /actions/send, SendGrid /schedule, listmonk /status,
# Postmark /email/..., Mailgun /messages, SES outbound-emails) are not here.
ALLOWED: Mapping[str, tuple[tuple[str, str], ...]] = {
    "mailchimp": (
        ("POST", r"/3\.0/campaigns"),
        ("GET", r"/3\.0/campaigns/[^/]+"),
        ("PATCH", r"/3\.0/campaigns/[^/]+"),
        ("PUT", r"/3\.0/campaigns/[^/]+/content"),
    ),
    "sendgrid": (
        ("POST", r"/v3/marketing/singlesends"),
        ("GET", r"/v3/marketing/singlesends/[^/]+"),
        ("PATCH", r"/v3/marketing/singlesends/[^/]+"),
    ),
    "postmark": (("POST", r"/templates"), ("PUT", r"/templates/[^/]+")),
    "mailgun": (
        ("GET", r"/v3/[^/]+/templates/[^/]+"),
        ("POST", r"/v3/[^/]+/templates"),
        ("POST", r"/v3/[^/]+/templates/[^/]+/versions"),
        ("PUT", r"/v3/[^/]+/templates/[^/]+/versions/[^/]+"),
    ),
    "ses": (("POST", r"/v2/email/templates"), ("PUT", r"/v2/email/templates/[^/]+")),
    "listmonk": (
        ("POST", r"/api/campaigns"),
        ("GET", r"/api/campaigns/\d+"),
        ("PUT", r"/api/campaigns/\d+"),
    ),
    "buttondown": (
        ("POST", r"/v1/emails"),
        ("GET", r"/v1/emails/[^/]+"),
        ("PATCH", r"/v1/emails/[^/]+"),
    ),
}
SERVICES = tuple(ALLOWED)


class PushError(DigestError):
    """A mail service refused a request or could not be reached. Names the service, the
    call and, when it answered, its status and its own message."""

    exit_code = 1

    def __init__(self, service: str, message: str, status: int | None = None) -> None:
        self.service = service
        self.status = status
        super().__init__(f"{service}: {message}")


@dataclass(frozen=True)
class Pushed:
    """The draft (or template) at the service: its id, and where to open it."""

    service: str
    remote_id: str
    created: bool  # False: an earlier push's draft was updated
    where: str


# --- HTTP with retries -----------------------------------------------------------------


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def vendor_message(resp: httpx.Response) -> str:
    """The service's own words from an error response, whatever its shape: Mailchimp's
    problem details, SendGrid's errors[], Postmark's Message/ErrorCode, Mailgun's,
    listmonk's and SES's message, Buttondown's detail."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text.strip()[:500] or resp.reason_phrase
    parts: list[str] = []
    kind = resp.headers.get("x-amzn-ErrorType", "").split(":")[0]
    if kind:
        parts.append(kind)
    if isinstance(body, dict):
        for key in ("title", "message", "Message", "detail", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                parts.append(value)
            elif isinstance(value, list):
                parts += [_one_error(e) for e in value]
        errors = body.get("errors")
        if isinstance(errors, list):
            parts += [_one_error(e) for e in errors]
        elif isinstance(errors, dict):
            parts += [f"{k}: {v}" for k, v in errors.items()]
        if "ErrorCode" in body:
            parts.append(f"ErrorCode {body['ErrorCode']}")
    elif isinstance(body, str):
        parts.append(body)
    return "; ".join(p for p in dict.fromkeys(parts) if p) or resp.reason_phrase


def _one_error(e: Any) -> str:
    if isinstance(e, dict):
        field = e.get("field") or ".".join(map(str, e.get("loc", ()))) or ""
        message = e.get("message") or e.get("msg") or e.get("detail") or ""
        return f"{field}: {message}" if field else str(message)
    return str(e)


class _Api:
    """One service's endpoint: allowed calls only, retries, vendor messages."""

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        client: httpx.Client,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.service = service
        self.base = base_url.rstrip("/")
        self.headers = {
            "User-Agent": f"digest/{__version__}",
            "Accept": "application/json",
            **(headers or {}),
        }
        self.auth = auth
        self.client = client
        self.sleep = sleep
        self.attempts = attempts

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        form: Mapping[str, str] | None = None,
        missing_ok: bool = False,
    ) -> httpx.Response | None:
        """Make one call; None for a 404 when ``missing_ok`` (a draft deleted at the
        service). Raises PushError for any other refusal."""
        if not any(m == method and re.fullmatch(p, path) for m, p in ALLOWED[self.service]):
            # A programming error, never the user's: stop before anything is sent.
            raise PushError(self.service, f"refusing {method} {path}: not a draft endpoint")
        # Mailgun takes multipart/form-data: fields as (no file name, value).
        files = {k: (None, v) for k, v in form.items()} if form is not None else None
        for attempt in range(1, self.attempts + 1):
            try:
                resp = self.client.request(
                    method,
                    self.base + path,
                    json=json,
                    files=files,
                    headers=self.headers,
                    auth=self.auth if self.auth is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing reached the service: safe to try again.
                if attempt == self.attempts:
                    raise PushError(self.service, f"cannot reach {self.base}: {exc}") from None
                self._pause(attempt, None, f"cannot connect ({exc})")
                continue
            except httpx.HTTPError as exc:
                # The request may have been applied: say so rather than repeat it.
                raise PushError(
                    self.service,
                    f"{method} {path}: {exc or type(exc).__name__}; check the service "
                    "for a draft before pushing again",
                ) from None
            status = resp.status_code
            if (status == 429 or status >= 500) and attempt < self.attempts:
                self._pause(attempt, resp.headers.get("Retry-After"), f"HTTP {status}")
                continue
            if status == 404 and missing_ok:
                return None
            if resp.is_success:
                return resp
            tries = f" (after {attempt} attempts)" if attempt > 1 else ""
            raise PushError(
                self.service,
                f"{method} {path}: HTTP {status}{tries}: {vendor_message(resp)}",
                status,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _pause(self, attempt: int, retry_after: str | None, why: str) -> None:
        wait = _retry_after(retry_after)
        if wait is None:
            wait = 2.0 ** (attempt - 1) * (1 + random.random() / 2)  # 1, 2, 4 s + jitter
        wait = min(wait, MAX_WAIT)
        log.warning("%s: %s; retrying in %.1f s", self.service, why, wait)
        self.sleep(wait)

    def json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        resp = self.call(method, path, **kwargs)
        if resp is None:
            return None
        try:
            body = resp.json()
        except ValueError:
            raise PushError(
                self.service, f"{method} {path}: the answer is not JSON: {resp.text[:200]!r}"
            ) from None
        return body if isinstance(body, dict) else {"data": body}


def _bodies(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(r.get("json") or r.get("form") or {}) for r in payload["requests"]]


def _not_a_draft(service: str, remote_id: str, status: Any) -> PushError:
    return PushError(
        service,
        f"{remote_id} is no longer a draft there (status {status!r}); digest does not "
        "change a scheduled or sent issue",
    )


def _gone(service: str, remote_id: str) -> None:
    log.warning("%s: the draft %s is gone; creating a new one", service, remote_id)


def _draft(
    api: _Api, service: str, path: str, remote: str | None, draft: str, *, nested: bool = False
) -> dict[str, Any] | None:
    """The earlier push's draft at ``path``, or None (never pushed, or deleted since:
    then a new one is made). A draft that was scheduled or sent meanwhile is left alone:
    PushError. ``nested``: the status is under ``data`` (listmonk)."""
    found = api.json("GET", path, missing_ok=True) if remote else None
    if remote and found is None:
        _gone(service, remote)
    if found is not None:
        status = ((found.get("data") or {}) if nested else found).get("status")
        if status != draft:
            raise _not_a_draft(service, str(remote), status)
    return found


# --- one client per service ------------------------------------------------------------
# Each takes the API, the payload's request bodies, the id of an earlier push (or None)
# and the service's settings; it returns (id, created, where to open it).

_Result = tuple[str, bool, str]


def _mailchimp(api: _Api, bodies: list[dict[str, Any]], remote: str | None, s: Any) -> _Result:
    # https://mailchimp.com/developer/marketing/api/campaigns/ (status "save" = draft)
    campaign, content = bodies
    created = True
    found = _draft(api, "mailchimp", f"/3.0/campaigns/{remote}", remote, "save")
    if found is not None:
        update = {k: v for k, v in campaign.items() if k != "type"}  # the type is fixed
        answer = api.json("PATCH", f"/3.0/campaigns/{remote}", json=update) or {}
        created = False
    else:
        answer = api.json("POST", "/3.0/campaigns", json=campaign) or {}
    campaign_id = str(answer.get("id") or remote)
    api.call("PUT", f"/3.0/campaigns/{campaign_id}/content", json=content)
    web_id = answer.get("web_id")
    where = (
        f"https://admin.mailchimp.com/campaigns/edit?id={web_id}"
        if web_id
        else "https://admin.mailchimp.com/campaigns/"
    )
    return campaign_id, created, where


def _sendgrid(api: _Api, bodies: list[dict[str, Any]], remote: str | None, s: Any) -> _Result:
    # https://www.twilio.com/docs/sendgrid/api-reference/single-sends (status "draft")
    (body,) = bodies
    path = f"/v3/marketing/singlesends/{remote}"
    found = _draft(api, "sendgrid", path, remote, "draft")
    if found is not None:
        api.json("PATCH", path, json=body)
        single_send, created = str(remote), False
    else:
        answer = api.json("POST", "/v3/marketing/singlesends", json=body) or {}
        single_send, created = str(answer.get("id")), True
    return single_send, created, f"https://mc.sendgrid.com/single-sends/{single_send}/editor"


def _postmark(api: _Api, bodies: list[dict[str, Any]], remote: str | None, s: Any) -> _Result:
    # https://postmarkapp.com/developer/api/templates-api (a template sends nothing)
    (body,) = bodies
    update = {k: v for k, v in body.items() if k != "TemplateType"}  # fixed at creation
    answer = (
        api.json("PUT", f"/templates/{remote}", json=update, missing_ok=True) if remote else None
    )
    if remote and answer is None:
        _gone("postmark", remote)
    created = answer is None
    if answer is None:
        answer = api.json("POST", "/templates", json=body) or {}
    template_id = str(answer.get("TemplateId") or remote)
    alias = answer.get("Alias") or body.get("Alias")
    return template_id, created, f"Postmark: your server > Templates > {alias} (id {template_id})"


def _mailgun(api: _Api, bodies: list[dict[str, Any]], remote: str | None, s: Any) -> _Result:
    # https://documentation.mailgun.com/docs/mailgun/api-reference/openapi-final/tag/Templates/
    # The newsletter's template once, then one version per issue (tag = issue id).
    template, version = bodies
    name, tag = template["name"], version["tag"]
    base = f"/v3/{s.domain}/templates"
    remote_id = f"{name}/{tag}"
    if remote == remote_id:
        update = {k: v for k, v in version.items() if k != "tag"}
        if api.call("PUT", f"{base}/{name}/versions/{tag}", form=update, missing_ok=True):
            return remote_id, False, _mailgun_where(s, name, tag)
        _gone("mailgun", remote_id)
    if api.call("GET", f"{base}/{name}", missing_ok=True) is None:
        api.call("POST", base, form=template)
    api.call("POST", f"{base}/{name}/versions", form=version)
    return remote_id, True, _mailgun_where(s, name, tag)


def _mailgun_where(s: MailgunExport, name: str, tag: str) -> str:
    return f"https://app.mailgun.com/ > Send > Templates > {name}, version {tag} ({s.domain})"


def _ses(api: _Api, bodies: list[dict[str, Any]], remote: str | None, s: Any) -> _Result:
    # https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_CreateEmailTemplate.html
    # and API_UpdateEmailTemplate.html; a template sends nothing.
    (body,) = bodies
    name = body["TemplateName"]
    update = {"TemplateContent": body["TemplateContent"]}
    created = True
    if remote and api.call("PUT", f"/v2/email/templates/{name}", json=update, missing_ok=True):
        created = False
    else:
        try:
            api.call("POST", "/v2/email/templates", json=body)
        except PushError as exc:
            if exc.status != 409:  # AlreadyExistsException: pushed before, ledger lost
                raise
            api.call("PUT", f"/v2/email/templates/{name}", json=update)
            created = False
    # The region the request was signed for (the settings, the AWS config or AWS_REGION).
    region = api.auth.region if isinstance(api.auth, _SigV4) else s.region or "us-east-1"
    where = (
        f"https://{region}.console.aws.amazon.com/ses/home?region={region}#/email-templates/{name}"
    )
    return name, created, where


def _listmonk(api: _Api, bodies: list[dict[str, Any]], remote: str | None, s: Any) -> _Result:
    # https://listmonk.app/docs/apis/campaigns/ (a new campaign's status is "draft")
    (body,) = bodies
    found = _draft(api, "listmonk", f"/api/campaigns/{remote}", remote, "draft", nested=True)
    if found is not None:
        api.json("PUT", f"/api/campaigns/{remote}", json=body)
        campaign_id, created = str(remote), False
    else:
        answer = api.json("POST", "/api/campaigns", json=body) or {}
        campaign_id, created = str((answer.get("data") or {}).get("id")), True
    return campaign_id, created, f"{api.base}/admin/campaigns/{campaign_id}"


def _buttondown(api: _Api, bodies: list[dict[str, Any]], remote: str | None, s: Any) -> _Result:
    # https://docs.buttondown.com/api-emails-create ("status" must say "draft")
    (body,) = bodies
    if body.get("status") != "draft":
        raise PushError("buttondown", "refusing an email whose status is not 'draft'")
    found = _draft(api, "buttondown", f"/v1/emails/{remote}", remote, "draft")
    if found is not None:
        api.json("PATCH", f"/v1/emails/{remote}", json=body)
        email_id, created = str(remote), False
    else:
        answer = api.json("POST", "/v1/emails", json=body) or {}
        email_id, created = str(answer.get("id")), True
    return email_id, created, f"https://buttondown.com/emails/{email_id}"


CLIENTS: Mapping[str, Callable[[_Api, list[dict[str, Any]], str | None, Any], _Result]] = {
    "mailchimp": _mailchimp,
    "sendgrid": _sendgrid,
    "postmark": _postmark,
    "mailgun": _mailgun,
    "ses": _ses,
    "listmonk": _listmonk,
    "buttondown": _buttondown,
}


# --- endpoints, keys and settings ------------------------------------------------------


class _SigV4(httpx.Auth):
    """AWS Signature Version 4 by botocore's signer, fresh for every attempt."""

    requires_request_body = True

    def __init__(self, credentials: Any, region: str) -> None:
        self.credentials = credentials
        self.region = region

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        aws = AWSRequest(
            method=request.method,
            url=str(request.url),
            data=request.content,
            headers={"Content-Type": request.headers.get("Content-Type", "application/json")},
        )
        SigV4Auth(self.credentials.get_frozen_credentials(), "ses", self.region).add_auth(aws)
        for name, value in aws.headers.items():
            request.headers[name] = value
        yield request


# (base URL, headers, auth) of one service, as endpoint() resolves it
Endpoint = tuple[str, dict[str, str], httpx.Auth | tuple[str, str] | None]


def _problem(cfg: Config, key: str, message: str) -> ConfigError:
    return ConfigError(cfg.source or "config", [(key, message)])


def endpoint(cfg: Config, service: str, api_url: str | None = None) -> Endpoint:
    """(base URL, headers, auth) for ``service``. Every missing key or setting is a
    ConfigError naming it, before any request is made."""
    settings = cfg.export.service(service)
    if service not in CLIENTS or settings is None:
        raise ConfigError(
            "--push",
            [("--push", f"cannot push to {service!r}; use one of {', '.join(SERVICES)}")],
        )
    section = f"export.{service}"
    base = (api_url or settings.api_url or DEFAULT_URLS.get(service, "")).rstrip("/")
    if service == "ses":
        assert isinstance(settings, SesExport)
        return _ses_endpoint(cfg, settings, base)
    key = settings.key()
    if key is None:
        var = settings.key_env or "(none)"
        raise _problem(
            cfg,
            f"{section}.key_env",
            f"the API key is not set: put it in the environment variable {var} "
            "(or name another one with key_env)",
        )
    if service == "mailchimp":
        assert isinstance(settings, MailchimpExport)
        if not base:
            dc = key.rpartition("-")[2]
            if not key.count("-") or not re.fullmatch(r"[a-z]+\d+", dc):
                raise _problem(
                    cfg,
                    f"{section}.api_url",
                    "the API key does not end in its data centre (-us21): set api_url = "
                    "'https://<dc>.api.mailchimp.com'",
                )
            base = f"https://{dc}.api.mailchimp.com"
        return base, {}, ("digest", key)
    if service == "sendgrid":
        return base, {"Authorization": f"Bearer {key}"}, None
    if service == "postmark":
        return base, {"X-Postmark-Server-Token": key}, None
    if service == "mailgun":
        assert isinstance(settings, MailgunExport)
        if not settings.domain:
            raise _problem(cfg, f"{section}.domain", "set your sending domain, e.g. mg.example.com")
        return base, {}, ("api", key)
    if service == "listmonk":
        assert isinstance(settings, ListmonkExport)
        if not base:
            raise _problem(
                cfg, f"{section}.api_url", "set your listmonk's address (or pass --api-url)"
            )
        if not settings.list_ids:
            raise _problem(cfg, f"{section}.list_ids", "listmonk refuses a campaign without lists")
        if not settings.username:
            raise _problem(cfg, f"{section}.username", "set the API user the token belongs to")
        return base, {"Authorization": f"token {settings.username}:{key}"}, None
    assert isinstance(settings, ButtondownExport)
    return base, {"Authorization": f"Token {key}"}, None


def _ses_endpoint(cfg: Config, s: SesExport, base: str) -> Endpoint:
    try:
        import botocore.session
    except ImportError:
        raise _problem(
            cfg,
            "export.ses",
            "pushing to SES signs with botocore: pip install 'digest[ses]'",
        ) from None
    session = botocore.session.get_session()
    region = s.region or session.get_config_variable("region") or os.environ.get("AWS_REGION")
    if not region:
        raise _problem(cfg, "export.ses.region", "set the SES region, e.g. 'eu-west-1'")
    credentials = session.get_credentials()
    if credentials is None:
        raise _problem(
            cfg,
            "export.ses",
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
        )
    return base or f"https://email.{region}.amazonaws.com", {}, _SigV4(credentials, region)


def push(
    cfg: Config,
    service: str,
    payload: Mapping[str, Any],
    *,
    remote_id: str | None = None,
    api_url: str | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    resolved: Endpoint | None = None,
) -> Pushed:
    """Create (or, given the id of an earlier push, update) the draft for ``payload``.
    ``resolved``: what ``endpoint`` returned, when the caller has it already."""
    base, headers, auth = resolved or endpoint(cfg, service, api_url)
    settings = cfg.export.service(service)
    # A caller's client stays open: the caller closes it.
    own = httpx.Client(timeout=TIMEOUT) if client is None else contextlib.nullcontext(client)
    with own as http:
        api = _Api(service, base, headers=headers, auth=auth, client=http, sleep=sleep)
        remote, created, where = CLIENTS[service](api, _bodies(payload), remote_id, settings)
    return Pushed(service=service, remote_id=remote, created=created, where=where)


def push_export(
    cfg: Config,
    service: str,
    issue_id: str,
    payload: Mapping[str, Any],
    *,
    api_url: str | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    resolved: Endpoint | None = None,
) -> Pushed:
    """``push`` with the draft's id kept in the ledger, so a second push updates it."""
    from .ledger import Ledger

    # Config problems before the ledger is touched.
    resolved = resolved or endpoint(cfg, service, api_url)
    with Ledger(cfg.ledger.path) as ledger:
        previous = ledger.export_draft(issue_id, service)
        pushed = push(
            cfg,
            service,
            payload,
            remote_id=previous,
            client=client,
            sleep=sleep,
            resolved=resolved,
        )
        ledger.record_export_draft(issue_id, service, pushed.remote_id)
    return pushed
