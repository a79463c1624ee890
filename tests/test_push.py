"""``digest export --push``: a contract test per mail service.

A local HTTP server on 127.0.0.1 plays each vendor: it checks every request (method, path,
auth header, body against the vendor's schema) and answers as the vendor documents,
error shapes included. Schemas:

* SendGrid (OpenAPI), SES (the SESv2 model from botocore) and Postmark (the request
  models of its SDK) are the vendors' own, read from ../shared/reference/vendor-api/
  beside the repository (see its README); without that folder those tests skip.
* Mailchimp, Mailgun, listmonk and Buttondown publish none under an open licence:
  tests/contracts/<service>.json are written from their documentation, each citing it.

No network but 127.0.0.1.
"""

from __future__ import annotations

import base64
import enum
import functools
import json
import re
import sys
import threading
import types
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from digest import export as ex
from digest import push as px
from digest.cli import main
from digest.config import Config, parse, settings
from digest.errors import ConfigError
from digest.ledger import Ledger
from test_export import GOLDEN_NOW, golden_config_file, rendered_email

ROOT = Path(__file__).resolve().parents[1]
VENDOR_API = ROOT.parent / "shared" / "reference" / "vendor-api"
CONTRACTS = Path(__file__).parent / "contracts"
SERVICES = ("mailchimp", "sendgrid", "postmark", "mailgun", "ses", "listmonk", "buttondown")
KEYS = {
    "mailchimp": "0123456789abcdef0123456789abcdef-us21",
    "sendgrid": "SG.test-key.sendgrid-secret",
    "postmark": "postmark-server-token-secret",
    "mailgun": "key-mailgun-secret",
    "listmonk": "listmonk-token-secret",
    "buttondown": "buttondown-key-secret",
}
AWS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "aws-secret-key-secret"}
NEEDS_SHARED = {"sendgrid", "ses", "postmark"}
# Endpoints that schedule or send, from the vendors' API references: a push calls none.
SEND_ENDPOINTS = (
    r"/3\.0/campaigns/[^/]+/actions/.*",  # Mailchimp send, schedule, test, replicate
    r"/v3/marketing/singlesends/[^/]+/schedule",  # SendGrid
    r"/v3/mail/send",
    r"/email(/.*)?",  # Postmark /email, /email/batch, /email/withTemplate, ...
    r"/v3/[^/]+/messages(\.mime)?",  # Mailgun
    r"/v2/email/outbound-(bulk-)?emails",  # SES SendEmail, SendBulkEmail
    r"/api/campaigns/\d+/(status|test)",  # listmonk start, schedule, test
    r"/api/tx",
    r"/v1/emails/[^/]+/send-draft",  # Buttondown
)


# --- the vendors' schemas ----------------------------------------------------------------


def _need_shared(service: str) -> None:
    if service in NEEDS_SHARED and not VENDOR_API.is_dir():
        pytest.skip(
            f"{service}: its API description is read from {VENDOR_API} (the vendors' "
            "published specs, kept outside the repository); that folder is absent"
        )


def _contract(service: str) -> dict[str, Any]:
    return json.loads((CONTRACTS / f"{service}.json").read_text(encoding="utf-8"))


def _json_schema_errors(root: dict[str, Any], ref: str, body: Any) -> list[str]:
    """Errors of ``body`` against the schema at ``ref`` inside ``root`` (its $refs too)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(
        {**root, "$ref": ref}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
        for e in validator.iter_errors(body)
    ]


def _unknown(body: dict[str, Any], known: Any, where: str) -> list[str]:
    return [f"{where}{k}: not a field of the API" for k in body if k not in known]


def _sendgrid_errors(body: Any) -> list[str]:
    doc = json.loads((VENDOR_API / "sendgrid-marketing-singlesends-v3.json").read_text())
    ref = "#/components/schemas/SinglesendRequest"
    errors = _json_schema_errors(doc, ref, body)
    props = doc["components"]["schemas"]["SinglesendRequest"]["properties"]
    errors += _unknown(body, props, "")
    errors += _unknown(
        body.get("email_config", {}), props["email_config"]["properties"], "email_config."
    )
    return errors


def _ses_errors(operation: str, params: dict[str, Any]) -> list[str]:
    from botocore.model import ServiceModel
    from botocore.validate import ParamValidator

    model = ServiceModel(json.loads((VENDOR_API / "ses-v2-service-2.json").read_text()))
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    return [report.generate_report()] if report.has_errors() else []


@functools.cache
def _postmark_models() -> dict[str, Any]:
    """The request models of Postmark's SDK, their package's own imports stubbed (its
    TemplateType enum has the two values Postmark documents: Standard and Layout)."""
    source = (VENDOR_API / "postmark-templates-schemas.py").read_text(encoding="utf-8")
    source = re.sub(r"^from \.+\w*(\.\w+)* import .*$", "", source, flags=re.M)
    module = types.ModuleType("_postmark_templates_schemas")
    module.__dict__.update(
        {
            "TemplateType": enum.Enum("TemplateType", {"Standard": "Standard", "Layout": "Layout"}),
            "TemplateAction": str,
            "TrackLinksOption": str,
            "Attachment": dict,
            "Header": dict,
            "SendResponse": dict,
        }
    )
    sys.modules[module.__name__] = module  # pydantic resolves annotations through it
    exec(
        compile(source, str(VENDOR_API / "postmark-templates-schemas.py"), "exec"), module.__dict__
    )
    return module.__dict__


def _postmark_errors(model_name: str, body: dict[str, Any]) -> list[str]:
    from pydantic import ValidationError

    model = _postmark_models()[model_name]
    aliases = {f.alias or name for name, f in model.model_fields.items()}
    errors = _unknown(body, aliases, "")
    try:
        model.model_validate(body)
    except ValidationError as exc:
        errors.append(str(exc))
    return errors


# --- a vendor on 127.0.0.1 ---------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def form(self) -> dict[str, str]:
        ctype = self.headers.get("content-type", "")
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + self.body
        )
        return {
            part.get_param("name", header="content-disposition"): part.get_payload(
                decode=True
            ).decode("utf-8")
            for part in message.iter_parts()
        }


Answer = tuple[int, dict[str, str], Any]


@dataclass
class Vendor:
    """A fake of one service: routes, its auth check, its error shapes, its drafts."""

    name: str
    auth: Callable[[Request], bool]
    unauthorized: Answer
    routes: list[tuple[str, str, Callable[..., Answer]]] = field(default_factory=list)
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    log: list[Request] = field(default_factory=list)
    # Answers to give before the real one, e.g. a 429 (then the routes answer).
    faults: list[Answer] = field(default_factory=list)

    def handle(self, req: Request) -> Answer:
        self.log.append(req)
        if self.faults:
            return self.faults.pop(0)
        if not self.auth(req):
            return self.unauthorized
        for method, pattern, handler in self.routes:
            m = re.fullmatch(pattern, req.path)
            if m and method == req.method:
                return handler(req, *m.groups())
        self.problems.append(f"{req.method} {req.path}: no such endpoint")
        return 404, {}, {"message": "not found"}

    def check(self, req: Request, errors: list[str]) -> list[str]:
        self.problems += [f"{req.method} {req.path}: {e}" for e in errors]
        return errors


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        req = Request(
            self.command,
            self.path,
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length),
        )
        status, headers, body = self.server.vendor.handle(req)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, vendor: Vendor) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.vendor = vendor

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def serve() -> Iterator[Callable[[Vendor], _Server]]:
    servers: list[_Server] = []

    def start(vendor: Vendor) -> _Server:
        server = _Server(vendor)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _basic(req: Request) -> tuple[str, str]:
    scheme, _, value = req.headers.get("authorization", "").partition(" ")
    if scheme != "Basic":
        return "", ""
    user, _, password = base64.b64decode(value).decode().partition(":")
    return user, password


def _json_body(req: Request) -> Any:
    if not req.headers.get("content-type", "").startswith("application/json"):
        return None
    return req.json


# --- the seven vendors, as their docs describe them ---------------------------------------


def mailchimp() -> Vendor:
    contract = _contract("mailchimp")

    def problem(status: int, title: str, detail: str, errors: list[Any] | None = None) -> Answer:
        body = {
            "type": "https://mailchimp.com/developer/marketing/docs/errors/",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": str(uuid.uuid4()),
        }
        if errors:
            body["errors"] = errors
        return status, {"Content-Type": "application/problem+json"}, body

    def invalid(req: Request, op: str) -> Answer | None:
        body = _json_body(req)
        errors = v.check(req, _json_schema_errors(contract, f"#/operations/{op}", body))
        if body is None or errors:
            return problem(
                400,
                "Invalid Resource",
                "The resource submitted could not be validated. For field-specific "
                "details, see the 'errors' array.",
                [{"field": e.split(":")[0], "message": e} for e in errors],
            )
        return None

    def create(req: Request) -> Answer:
        if bad := invalid(req, "POST /3.0/campaigns".replace("/", "~1")):
            return bad
        cid = uuid.uuid4().hex[:10]
        v.drafts[cid] = {**req.json, "id": cid, "web_id": 4711, "status": "save"}
        return 200, {}, v.drafts[cid]

    def get(req: Request, cid: str) -> Answer:
        if cid not in v.drafts:
            return problem(404, "Resource Not Found", "The requested resource could not be found.")
        return 200, {}, v.drafts[cid]

    def update(req: Request, cid: str) -> Answer:
        if bad := invalid(req, "PATCH /3.0/campaigns/{campaign_id}".replace("/", "~1")):
            return bad
        v.drafts[cid].update(req.json)
        return 200, {}, v.drafts[cid]

    def content(req: Request, cid: str) -> Answer:
        op = "PUT /3.0/campaigns/{campaign_id}/content".replace("/", "~1")
        if bad := invalid(req, op):
            return bad
        v.drafts[cid]["content"] = req.json
        return 200, {}, {"html": req.json["html"], "plain_text": req.json["plain_text"]}

    v = Vendor(
        "mailchimp",
        auth=lambda r: _basic(r)[1] == KEYS["mailchimp"],
        unauthorized=problem(
            401,
            "API Key Invalid",
            "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
        )[:3],
        routes=[
            ("POST", r"/3\.0/campaigns", create),
            ("GET", r"/3\.0/campaigns/(\w+)", get),
            ("PATCH", r"/3\.0/campaigns/(\w+)", update),
            ("PUT", r"/3\.0/campaigns/(\w+)/content", content),
        ],
    )
    return v


def sendgrid() -> Vendor:
    def errors_answer(status: int, errors: list[str]) -> Answer:
        return status, {}, {"errors": [{"field": e.split(":")[0], "message": e} for e in errors]}

    def create(req: Request) -> Answer:
        body = _json_body(req)
        if errors := v.check(req, _sendgrid_errors(body) if body is not None else ["not JSON"]):
            return errors_answer(400, errors)
        sid = str(uuid.uuid4())
        v.drafts[sid] = {**body, "id": sid, "status": "draft"}
        return 201, {}, v.drafts[sid]

    def get(req: Request, sid: str) -> Answer:
        if sid not in v.drafts:
            return 404, {}, {"errors": [{"field": None, "message": "resource not found"}]}
        return 200, {}, v.drafts[sid]

    def update(req: Request, sid: str) -> Answer:
        body = _json_body(req)
        if errors := v.check(req, _sendgrid_errors(body) if body is not None else ["not JSON"]):
            return errors_answer(400, errors)
        v.drafts[sid].update(body)
        return 202, {}, v.drafts[sid]

    v = Vendor(
        "sendgrid",
        auth=lambda r: r.headers.get("authorization") == f"Bearer {KEYS['sendgrid']}",
        unauthorized=(401, {}, {"errors": [{"field": None, "message": "authorization required"}]}),
        routes=[
            ("POST", r"/v3/marketing/singlesends", create),
            ("GET", r"/v3/marketing/singlesends/([\w-]+)", get),
            ("PATCH", r"/v3/marketing/singlesends/([\w-]+)", update),
        ],
    )
    return v


def postmark() -> Vendor:
    def answer(template: dict[str, Any]) -> Answer:
        keys = ("TemplateId", "Name", "Active", "Alias", "TemplateType", "LayoutTemplate")
        return 200, {}, {k: template.get(k) for k in keys}

    def body_of(req: Request, model: str) -> tuple[Any, Answer | None]:
        body = _json_body(req)
        errors = (
            ["Accept must be application/json"]
            if req.headers.get("accept") != "application/json"
            else []
        )
        errors += _postmark_errors(model, body) if isinstance(body, dict) else ["not JSON"]
        if v.check(req, errors):
            return None, (422, {}, {"ErrorCode": 1101, "Message": "; ".join(errors)})
        return body, None

    def create(req: Request) -> Answer:
        body, bad = body_of(req, "CreateTemplateRequest")
        if bad:
            return bad
        tid = 1000 + len(v.drafts)
        v.drafts[str(tid)] = {**body, "TemplateId": tid, "Active": True, "LayoutTemplate": None}
        return answer(v.drafts[str(tid)])

    def edit(req: Request, tid: str) -> Answer:
        body, bad = body_of(req, "EditTemplateRequest")
        if bad:
            return bad
        if tid not in v.drafts:
            return 404, {}, {"ErrorCode": 1101, "Message": f"Template {tid} not found."}
        v.drafts[tid].update(body)
        return answer(v.drafts[tid])

    v = Vendor(
        "postmark",
        auth=lambda r: r.headers.get("x-postmark-server-token") == KEYS["postmark"],
        unauthorized=(
            401,
            {},
            {
                "ErrorCode": 10,
                "Message": "No Account or Server API tokens were supplied in the HTTP headers.",
            },
        ),
        routes=[("POST", r"/templates", create), ("PUT", r"/templates/(\d+)", edit)],
    )
    return v


def mailgun(domain: str = "mg.example.com") -> Vendor:
    contract = _contract("mailgun")

    def form_of(req: Request, op: str) -> tuple[dict[str, str], Answer | None]:
        if not req.headers.get("content-type", "").startswith("multipart/form-data"):
            v.check(req, ["not multipart/form-data"])
            return {}, (400, {}, {"message": "expected multipart/form-data"})
        form = req.form
        errors = _json_schema_errors(contract, f"#/operations/{op.replace('/', '~1')}", form)
        if "headers" in form:
            errors += _json_schema_errors(contract, "#/headers", json.loads(form["headers"]))
        if v.check(req, errors):
            return form, (400, {}, {"message": "; ".join(errors)})
        return form, None

    def get(req: Request, d: str, name: str) -> Answer:
        if name not in v.drafts:
            return 404, {}, {"message": "template not found"}
        return 200, {}, {"template": {"name": name, "description": v.drafts[name]["description"]}}

    def create(req: Request, d: str) -> Answer:
        form, bad = form_of(req, "POST /v3/{domain}/templates")
        if bad:
            return bad
        if len(v.drafts) >= 100:
            return 400, {}, {"message": "template limit reached (100)"}
        v.drafts[form["name"]] = {"description": form.get("description", ""), "versions": {}}
        return 200, {}, {"message": "template has been stored", "template": {"name": form["name"]}}

    def version(req: Request, d: str, name: str) -> Answer:
        form, bad = form_of(req, "POST /v3/{domain}/templates/{name}/versions")
        if bad:
            return bad
        if name not in v.drafts:
            return 404, {}, {"message": "template not found"}
        versions = v.drafts[name]["versions"]
        if form["tag"] in versions:
            return 400, {}, {"message": f"version with tag {form['tag']} already exists"}
        if len(versions) >= 40:
            return 400, {}, {"message": "the number of versions exceeds the limit of 40"}
        versions[form["tag"]] = form
        return 200, {}, {"message": "new version of the template has been stored"}

    def update(req: Request, d: str, name: str, tag: str) -> Answer:
        form, bad = form_of(req, "PUT /v3/{domain}/templates/{name}/versions/{tag}")
        if bad:
            return bad
        if tag not in v.drafts.get(name, {}).get("versions", {}):
            return 404, {}, {"message": "version not found"}
        v.drafts[name]["versions"][tag].update(form)
        return 200, {}, {"message": "version has been updated"}

    d = re.escape(domain)
    v = Vendor(
        "mailgun",
        auth=lambda r: _basic(r) == ("api", KEYS["mailgun"]),
        unauthorized=(401, {"Content-Type": "text/plain"}, b"Forbidden"),
        routes=[
            ("GET", rf"/v3/({d})/templates/([\w-]+)", get),
            ("POST", rf"/v3/({d})/templates", create),
            ("POST", rf"/v3/({d})/templates/([\w-]+)/versions", version),
            ("PUT", rf"/v3/({d})/templates/([\w-]+)/versions/([\w-]+)", update),
        ],
    )
    return v


def ses(region: str = "eu-west-1") -> Vendor:
    def error(status: int, kind: str, message: str) -> Answer:
        return (
            status,
            {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazonaws.sesv2/"},
            {"message": message},
        )

    def signed(req: Request) -> bool:
        auth = req.headers.get("authorization", "")
        return (
            auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
            and f"/{region}/ses/aws4_request" in auth
            and "Signature=" in auth
            and "x-amz-date" in req.headers
        )

    def create(req: Request) -> Answer:
        body = _json_body(req)
        if errors := v.check(req, _ses_errors("CreateEmailTemplate", body or {})):
            return error(400, "BadRequestException", "; ".join(errors))
        if body["TemplateName"] in v.drafts:
            return error(
                409, "AlreadyExistsException", f"Template {body['TemplateName']} already exists."
            )
        v.drafts[body["TemplateName"]] = body
        return 200, {}, {}

    def update(req: Request, name: str) -> Answer:
        body = _json_body(req) or {}
        if errors := v.check(
            req, _ses_errors("UpdateEmailTemplate", {**body, "TemplateName": name})
        ):
            return error(400, "BadRequestException", "; ".join(errors))
        if name not in v.drafts:
            return error(404, "NotFoundException", f"Template {name} does not exist.")
        v.drafts[name].update(body)
        return 200, {}, {}

    v = Vendor(
        "ses",
        auth=signed,
        unauthorized=error(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        routes=[
            ("POST", r"/v2/email/templates", create),
            ("PUT", r"/v2/email/templates/([\w-]+)", update),
        ],
    )
    return v


def listmonk() -> Vendor:
    contract = _contract("listmonk")

    def body_of(req: Request, op: str) -> tuple[Any, Answer | None]:
        body = _json_body(req)
        errors = _json_schema_errors(contract, f"#/operations/{op.replace('/', '~1')}", body)
        if v.check(req, errors):
            lists = isinstance(body, dict) and not body.get("lists")
            return None, (400, {}, {"message": "Invalid list IDs." if lists else "; ".join(errors)})
        return body, None

    def create(req: Request) -> Answer:
        body, bad = body_of(req, "POST /api/campaigns")
        if bad:
            return bad
        cid = 7 + sum(r.method == "POST" for r in v.log)  # ids are never reused
        v.drafts[str(cid)] = {**body, "id": cid, "status": "draft"}
        return 200, {}, {"data": v.drafts[str(cid)]}

    def get(req: Request, cid: str) -> Answer:
        if cid not in v.drafts:
            return 404, {}, {"message": "Campaign not found."}
        return 200, {}, {"data": v.drafts[cid]}

    def update(req: Request, cid: str) -> Answer:
        body, bad = body_of(req, "PUT /api/campaigns/{id}")
        if bad:
            return bad
        v.drafts[cid].update(body)
        return 200, {}, {"data": v.drafts[cid]}

    v = Vendor(
        "listmonk",
        auth=lambda r: r.headers.get("authorization") == f"token digest:{KEYS['listmonk']}",
        unauthorized=(403, {}, {"message": "Invalid API credentials"}),
        routes=[
            ("POST", r"/api/campaigns", create),
            ("GET", r"/api/campaigns/(\d+)", get),
            ("PUT", r"/api/campaigns/(\d+)", update),
        ],
    )
    return v


def buttondown() -> Vendor:
    contract = _contract("buttondown")

    def body_of(req: Request, op: str) -> tuple[Any, Answer | None]:
        body = _json_body(req)
        errors = _json_schema_errors(contract, f"#/operations/{op.replace('/', '~1')}", body)
        if isinstance(body, dict) and body.get("status", "about_to_send") != "draft":
            errors.append(f"status {body.get('status', 'about_to_send (the default)')!r} sends it")
        if v.check(req, errors):
            return None, (400, {}, {"code": "invalid_request", "detail": "; ".join(errors)})
        return body, None

    def create(req: Request) -> Answer:
        body, bad = body_of(req, "POST /v1/emails")
        if bad:
            return bad
        eid = str(uuid.uuid4())
        v.drafts[eid] = {**body, "id": eid}
        return 201, {}, v.drafts[eid]

    def get(req: Request, eid: str) -> Answer:
        if eid not in v.drafts:
            return 404, {}, {"code": "not_found", "detail": "Not found."}
        return 200, {}, v.drafts[eid]

    def update(req: Request, eid: str) -> Answer:
        body, bad = body_of(req, "PATCH /v1/emails/{id}")
        if bad:
            return bad
        v.drafts[eid].update(body)
        return 200, {}, v.drafts[eid]

    v = Vendor(
        "buttondown",
        auth=lambda r: r.headers.get("authorization") == f"Token {KEYS['buttondown']}",
        unauthorized=(401, {}, {"detail": "Invalid token."}),
        routes=[
            ("POST", r"/v1/emails", create),
            ("GET", r"/v1/emails/([\w-]+)", get),
            ("PATCH", r"/v1/emails/([\w-]+)", update),
        ],
    )
    return v


VENDORS: dict[str, Callable[[], Vendor]] = {
    "mailchimp": mailchimp,
    "sendgrid": sendgrid,
    "postmark": postmark,
    "mailgun": mailgun,
    "ses": ses,
    "listmonk": listmonk,
    "buttondown": buttondown,
}


# --- config and keys --------------------------------------------------------------------

SETTINGS: dict[str, dict[str, Any]] = {
    "mailchimp": {"list_id": "a1b2c3d4e5"},
    "sendgrid": {
        "list_ids": ["5a3e0e2b-8c7d-4f1e-9b6a-2d4c8e0f1a3b"],
        "suppression_group_id": 4242,
        "sender_id": 1234567,
    },
    "postmark": {},
    "mailgun": {"domain": "mg.example.com"},
    "ses": {"region": "eu-west-1", "configuration_set": "newsletter", "contact_list": "readers"},
    "listmonk": {"list_ids": [3], "template_id": 5, "username": "digest"},
    "buttondown": {"template": "naked"},
}


def make_config(tmp_path: Path, url: str = "", **overrides: dict[str, Any]) -> Config:
    export = {s: {**SETTINGS[s], **overrides.get(s, {})} for s in SERVICES}
    if url:
        for settings in export.values():
            settings["api_url"] = url
    return parse(
        {
            "newsletter": {"name": "The Weekly Digest", "postal_address": "1 Main St"},
            "sender": {"name": "Ada", "email": "news@example.org"},
            "ledger": {"path": str(tmp_path / "digest.sqlite3")},
            "output": {"folder": str(tmp_path / "out")},
            "export": export,
        }
    )


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {
        "MAILCHIMP_API_KEY": KEYS["mailchimp"],
        "SENDGRID_API_KEY": KEYS["sendgrid"],
        "POSTMARK_SERVER_TOKEN": KEYS["postmark"],
        "MAILGUN_API_KEY": KEYS["mailgun"],
        "LISTMONK_API_TOKEN": KEYS["listmonk"],
        "BUTTONDOWN_API_KEY": KEYS["buttondown"],
        **AWS,
        # botocore reads nothing of this machine's and never asks an instance's metadata.
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1",  # the fake vendors are local, whatever proxy is set
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(k, raising=False)


def _push(cfg: Config, service: str, **kwargs: Any) -> px.Pushed:
    exp = ex.export(rendered_email(), cfg, service)
    return px.push_export(cfg, service, exp.issue_id, exp.payload, sleep=lambda s: None, **kwargs)


# --- the contract, per service ----------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_push_creates_then_updates_one_draft_the_api_accepts(
    service: str, tmp_path: Path, serve: Callable[[Vendor], _Server]
) -> None:
    _need_shared(service)
    vendor = VENDORS[service]()
    server = serve(vendor)
    cfg = make_config(tmp_path, server.url)

    first = _push(cfg, service)
    assert vendor.problems == []
    assert first.created and first.remote_id and first.remote_id != "None"
    assert first.service == service and first.where
    with Ledger(cfg.ledger.path) as ledger:
        assert ledger.export_draft("2026-W48", service) == first.remote_id
    created = len(vendor.log)

    second = _push(cfg, service)
    assert vendor.problems == []
    assert (second.remote_id, second.created) == (first.remote_id, False)
    assert len(vendor.drafts) == 1  # the same draft, updated
    again = vendor.log[created:]
    assert not [r for r in again if r.method == "POST" and not r.path.endswith("/versions")]
    assert all(KEYS.get(service, AWS["AWS_SECRET_ACCESS_KEY"]) not in r.path for r in vendor.log)


def test_mailchimp_draft_carries_the_html_text_and_audience(
    tmp_path: Path, serve: Callable[[Vendor], _Server]
) -> None:
    vendor = mailchimp()
    cfg = make_config(tmp_path, serve(vendor).url)
    pushed = _push(cfg, "mailchimp")
    draft = vendor.drafts[pushed.remote_id]
    assert draft["recipients"] == {"list_id": "a1b2c3d4e5"}
    assert "preview_text" not in draft["settings"]
    assert "*|UNSUB|*" in draft["content"]["html"] and "*|UNSUB|*" in draft["content"]["plain_text"]
    assert pushed.where == "https://admin.mailchimp.com/campaigns/edit?id=4711"


def test_ses_console_link_names_the_region_the_request_was_signed_for(
    tmp_path: Path, serve: Callable[[Vendor], _Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    _need_shared("ses")
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")  # no region in the settings
    vendor = ses("ap-southeast-2")  # accepts requests signed for that region only
    cfg = make_config(tmp_path, serve(vendor).url, ses={"region": ""})
    pushed = _push(cfg, "ses")
    assert vendor.problems == []
    assert pushed.where.startswith("https://ap-southeast-2.console.aws.amazon.com/")
    assert "region=ap-southeast-2" in pushed.where


def test_mailgun_one_template_per_newsletter_a_version_per_issue(
    tmp_path: Path, serve: Callable[[Vendor], _Server]
) -> None:
    vendor = mailgun()
    cfg = make_config(tmp_path, serve(vendor).url)
    _push(cfg, "mailgun")
    other = rendered_email()
    other = type(other)(**{**other.__dict__, "issue_id": "2026-W49"})
    exp = ex.export(other, cfg, "mailgun")
    pushed = px.push_export(cfg, "mailgun", exp.issue_id, exp.payload)
    assert vendor.problems == []
    assert list(vendor.drafts) == ["the-weekly-digest"]
    assert list(vendor.drafts["the-weekly-digest"]["versions"]) == ["2026-w48", "2026-w49"]
    assert pushed.remote_id == "the-weekly-digest/2026-w49"
    version = vendor.drafts["the-weekly-digest"]["versions"]["2026-w49"]
    assert "%recipient.email%" in version["template"] or "%unsubscribe_url%" in version["template"]


def test_listmonk_campaign_has_its_lists_and_template(
    tmp_path: Path, serve: Callable[[Vendor], _Server]
) -> None:
    vendor = listmonk()
    cfg = make_config(tmp_path, serve(vendor).url)
    pushed = _push(cfg, "listmonk")
    draft = vendor.drafts[pushed.remote_id]
    assert (draft["lists"], draft["template_id"], draft["status"]) == ([3], 5, "draft")
    assert pushed.where.endswith(f"/admin/campaigns/{pushed.remote_id}")


def test_listmonk_the_vendor_refuses_empty_lists(
    tmp_path: Path, serve: Callable[[Vendor], _Server]
) -> None:
    """The bug this fixes: the old payload's lists: [] is what listmonk answers 400 to."""
    vendor = listmonk()
    cfg = make_config(tmp_path, serve(vendor).url)
    payload = json.loads(ex.payload_json(ex.export(rendered_email(), cfg, "listmonk")))
    payload["requests"][0]["json"]["lists"] = []
    with pytest.raises(px.PushError) as err:
        px.push(cfg, "listmonk", payload)
    assert err.value.status == 400 and "Invalid list IDs." in str(err.value)


# --- never a send -------------------------------------------------------------------------


def test_push_never_calls_a_send_or_schedule_endpoint(
    tmp_path: Path, serve: Callable[[Vendor], _Server]
) -> None:
    seen: list[tuple[str, str]] = []
    for service in SERVICES:
        if service in NEEDS_SHARED and not VENDOR_API.is_dir():
            continue
        vendor = VENDORS[service]()
        cfg = make_config(tmp_path / service, serve(vendor).url)
        _push(cfg, service)
        _push(cfg, service)
        seen += [(r.method, r.path) for r in vendor.log]
        for r in vendor.log:
            assert any(m == r.method and re.fullmatch(p, r.path) for m, p in px.ALLOWED[service]), (
                service,
                r.method,
                r.path,
            )
            body = _json_body(r) or (r.form if r.body else {})
            assert body.get("status", "draft") == "draft", (service, r.path)
            assert "send_at" not in body, (service, r.path)
    assert seen
    for method, path in seen:
        assert not any(re.fullmatch(p, path) for p in SEND_ENDPOINTS), (method, path)
    # And no allowed endpoint is one of them, whatever the ids.
    for service, allowed in px.ALLOWED.items():
        for _, pattern in allowed:
            sample = re.sub(r"\[\^/\]\+|\\d\+", "x1", pattern).replace("\\.", ".")
            assert not any(re.fullmatch(p, sample) for p in SEND_ENDPOINTS), (service, sample)


def test_a_draft_scheduled_meanwhile_is_left_alone(
    tmp_path: Path, serve: Callable[[Vendor], _Server]
) -> None:
    vendor = buttondown()
    cfg = make_config(tmp_path, serve(vendor).url)
    pushed = _push(cfg, "buttondown")
    vendor.drafts[pushed.remote_id]["status"] = "scheduled"
    with pytest.raises(px.PushError, match="no longer a draft"):
        _push(cfg, "buttondown")
    assert vendor.log[-1].method == "GET"


def test_a_draft_deleted_at_the_service_is_created_again(
    tmp_path: Path, serve: Callable[[Vendor], _Server]
) -> None:
    vendor = listmonk()
    cfg = make_config(tmp_path, serve(vendor).url)
    first = _push(cfg, "listmonk")
    vendor.drafts.clear()
    second = _push(cfg, "listmonk")
    assert second.created and second.remote_id != first.remote_id
    with Ledger(cfg.ledger.path) as ledger:
        assert ledger.export_draft("2026-W48", "listmonk") == second.remote_id


# --- retries and errors -------------------------------------------------------------------


def test_429_and_5xx_are_retried_honouring_retry_after(
    tmp_path: Path, serve: Callable[[Vendor], _Server]
) -> None:
    vendor = buttondown()
    vendor.faults = [
        (429, {"Retry-After": "2"}, {"detail": "Request was throttled."}),
        (503, {}, b"upstream unavailable"),
    ]
    cfg = make_config(tmp_path, serve(vendor).url)
    waits: list[float] = []
    exp = ex.export(rendered_email(), cfg, "buttondown")
    pushed = px.push_export(cfg, "buttondown", exp.issue_id, exp.payload, sleep=waits.append)
    assert pushed.created and len(vendor.drafts) == 1
    assert waits[0] == 2.0 and 1.0 <= waits[1] <= 3.0


def test_retries_are_bounded_and_the_vendor_message_shown(
    tmp_path: Path, serve: Callable[[Vendor], _Server]
) -> None:
    vendor = sendgrid() if VENDOR_API.is_dir() else buttondown()
    busy = {"errors": [{"field": None, "message": "too many requests"}]}
    vendor.faults = [(429, {"Retry-After": "3600"}, busy)] * 10
    cfg = make_config(tmp_path, serve(vendor).url)
    waits: list[float] = []
    exp = ex.export(rendered_email(), cfg, vendor.name)
    with pytest.raises(px.PushError) as err:
        px.push_export(cfg, vendor.name, exp.issue_id, exp.payload, sleep=waits.append)
    assert len(vendor.log) == px.MAX_ATTEMPTS and waits == [px.MAX_WAIT] * (px.MAX_ATTEMPTS - 1)
    assert "HTTP 429" in str(err.value) and f"after {px.MAX_ATTEMPTS} attempts" in str(err.value)


@pytest.mark.parametrize(
    ("service", "words"),
    [
        ("mailchimp", "API Key Invalid; Your API key may be invalid"),
        ("sendgrid", "authorization required"),
        ("postmark", "No Account or Server API tokens"),
        ("mailgun", "Forbidden"),
        ("listmonk", "Invalid API credentials"),
        ("buttondown", "Invalid token."),
        ("ses", "UnrecognizedClientException; The security token"),
    ],
)
def test_a_refused_key_shows_the_vendor_message_and_never_the_key(
    service: str,
    words: str,
    tmp_path: Path,
    serve: Callable[[Vendor], _Server],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _need_shared(service)
    vendor = VENDORS[service]()
    cfg = make_config(tmp_path, serve(vendor).url)
    wrong = "wrong-key-do-not-print-us21"
    for var in ("MAILCHIMP_API_KEY", "SENDGRID_API_KEY", "POSTMARK_SERVER_TOKEN"):
        monkeypatch.setenv(var, wrong)
    for var in ("MAILGUN_API_KEY", "LISTMONK_API_TOKEN", "BUTTONDOWN_API_KEY"):
        monkeypatch.setenv(var, wrong)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDWRONG")
    with pytest.raises(px.PushError) as err:
        _push(cfg, service)
    assert words in str(err.value) and wrong not in str(err.value)
    assert err.value.status in (401, 403)


def test_a_vendor_validation_error_names_the_field(
    tmp_path: Path, serve: Callable[[Vendor], _Server]
) -> None:
    vendor = mailchimp()
    cfg = make_config(tmp_path, serve(vendor).url)
    payload = json.loads(ex.payload_json(ex.export(rendered_email(), cfg, "mailchimp")))
    payload["requests"][0]["json"]["type"] = "weekly"
    with pytest.raises(px.PushError) as err:
        px.push(cfg, "mailchimp", payload)
    assert "HTTP 400: Invalid Resource" in str(err.value) and "type:" in str(err.value)


@pytest.mark.parametrize(
    ("service", "override", "key"),
    [
        ("sendgrid", {"key_env": "NO_SUCH_VARIABLE"}, "export.sendgrid.key_env"),
        ("listmonk", {"username": ""}, "export.listmonk.username"),
        ("listmonk", {"list_ids": []}, "export.listmonk.list_ids"),
        ("mailgun", {"domain": ""}, "export.mailgun.domain"),
        ("ses", {"region": ""}, "export.ses.region"),
    ],
)
def test_a_missing_key_or_setting_is_a_config_error_before_any_request(
    service: str,
    override: dict[str, Any],
    key: str,
    tmp_path: Path,
    serve: Callable[[Vendor], _Server],
) -> None:
    vendor = (
        VENDORS[service]()
        if service not in NEEDS_SHARED
        else Vendor("x", lambda r: True, (200, {}, {}))
    )
    cfg = make_config(tmp_path, serve(vendor).url, **{service: override})
    payload = {"requests": [{"json": {}}]}
    with pytest.raises(ConfigError) as err:
        px.push_export(cfg, service, "2026-W48", payload)
    assert err.value.problems[0][0] == key
    assert vendor.log == []


def test_listmonk_without_an_address_needs_api_url(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    with pytest.raises(ConfigError) as err:
        px.endpoint(cfg, "listmonk")
    assert err.value.problems[0][0] == "export.listmonk.api_url"
    assert (
        px.endpoint(cfg, "listmonk", "https://lists.example.com/")[0] == "https://lists.example.com"
    )


def test_mailchimp_endpoint_from_the_key_data_centre(tmp_path: Path) -> None:
    base, _, auth = px.endpoint(make_config(tmp_path), "mailchimp")
    assert base == "https://us21.api.mailchimp.com" and auth == ("digest", KEYS["mailchimp"])
    assert px.endpoint(make_config(tmp_path), "mailchimp", "http://127.0.0.1:9")[0] == (
        "http://127.0.0.1:9"
    )


# --- the command ---------------------------------------------------------------------------


def test_cli_push_creates_then_updates_and_never_prints_the_key(
    tmp_path: Path, serve: Callable[[Vendor], _Server]
) -> None:
    vendor = buttondown()
    server = serve(vendor)
    config_file = golden_config_file(tmp_path)
    args = [
        "--config",
        str(config_file),
        "--now",
        GOLDEN_NOW.isoformat(),
        "export",
        "--for",
        "buttondown",
        "--latest",
        "--out",
        str(tmp_path / "bd"),
        "--push",
        "--api-url",
        server.url,
    ]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    (email_id,) = vendor.drafts
    assert f"Created the draft at buttondown: id {email_id}" in first.output
    assert f"open: https://buttondown.com/emails/{email_id}" in first.output
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0, second.output
    assert f"Updated the draft at buttondown: id {email_id}" in second.output
    assert vendor.problems == [] and len(vendor.drafts) == 1
    for result in (first, second):
        assert KEYS["buttondown"] not in result.output


def test_cli_push_config_errors_exit_2_before_any_request(
    tmp_path: Path, serve: Callable[[Vendor], _Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    vendor = buttondown()
    server = serve(vendor)
    monkeypatch.delenv("BUTTONDOWN_API_KEY")
    base = ["--config", str(golden_config_file(tmp_path)), "--now", GOLDEN_NOW.isoformat()]
    result = CliRunner().invoke(
        main, [*base, "export", "--for", "buttondown", "--push", "--api-url", server.url]
    )
    assert result.exit_code == 2, result.output
    assert "export.buttondown.key_env" in result.output and "BUTTONDOWN_API_KEY" in result.output
    assert vendor.log == [] and not (tmp_path / "out").exists()
    generic = CliRunner().invoke(main, [*base, "export", "--for", "generic", "--push"])
    assert generic.exit_code == 2 and "cannot push to 'generic'" in generic.output
    lone = CliRunner().invoke(main, [*base, "export", "--for", "ses", "--api-url", server.url])
    assert lone.exit_code == 2 and "--api-url goes with --push" in lone.output


def test_example_config_documents_every_service_setting() -> None:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for service in SERVICES:
        assert f"# [export.{service}]" in text, service
        section = text.split(f"# [export.{service}]")[1].split("# [export.")[0]
        model = type(parse({}).export.service(service))
        for key in settings(model):
            assert f"# {key} =" in section, f"export.{service}.{key} is not documented"
