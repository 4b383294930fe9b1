"""What every page of the console shares: its settings, the templates, reading a form (size-capped, CSRF-checked),
the client's address, who is signed in, and the headers every answer carries."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from ipaddress import IPv4Network, IPv6Network
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from debar.common.identifiers import mask_identifier
from debar.console import csrf, deadlines, views
from debar.console.accounts import Accounts, Reviewer, reviewer_of
from debar.console.sanction_client import SanctionClient
from debar.console.throttle import RateLimiter, client_address, trusted

MAX_FORM_BYTES = 64 * 1024  # a statement of 4000 characters, percent-encoded, fits with room to spare
MAX_FORM_FIELDS = 16
# Limits of the API (README, "Limits"): checked here too, so that the page can say so before anything is sent.
MAX_STATEMENT = 4000
MAX_CONTACT = 256
MAX_REASON = 1000
MAX_DECISION_ID = 64
SESSION_MAX_AGE_S = 8 * 3600
PERSON_GRANT_S = 15 * 60  # a verified lookup opens the decision's page for this long

# Strict: nothing but this site's own stylesheet; no script at all; forms post only here; never in a frame.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


@dataclass
class Console:
    """Everything the pages need, made once by the wiring (main.py) and kept in app.state.console."""

    client: SanctionClient
    sign_in: str  # "accounts" or "proxy"
    accounts: Accounts | None
    proxy_header: str
    proxies: tuple[IPv4Network | IPv6Network, ...]
    lookups: RateLimiter
    sign_ins: RateLimiter
    proxy_token_header: str = "X-Debar-Reviewer-Token"  # proxy sign-in: the reviewer's own token (their proof)
    clock: Callable[[], float] = time.time
    cache: dict[str, tuple[float, Any]] = field(default_factory=dict)

    def now(self) -> int:
        return int(self.clock())


def console_of(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


# --- templates --------------------------------------------------------------------------------------------------


def _environment() -> Environment:
    folder = resources.files("debar.console") / "templates"
    env = Environment(
        loader=FileSystemLoader(str(folder)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        when=deadlines.when,
        day=deadlines.day,
        deadline=deadlines.deadline,
        duration=deadlines.duration,
        state_words=views.state_words,
        mask=mask_identifier,
        MAX_STATEMENT=MAX_STATEMENT,
        MAX_CONTACT=MAX_CONTACT,
        MAX_REASON=MAX_REASON,
        MAX_DECISION_ID=MAX_DECISION_ID,
    )
    return env


TEMPLATES = _environment()


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page: the signed-in reviewer, a CSRF token for its forms and any one-time notice are always there."""
    console = console_of(request)
    body = TEMPLATES.get_template(template).render(
        request=request,
        reviewer=signed_in(request),
        sign_in=console.sign_in,
        csrf_field=Markup(f'<input type="hidden" name="{csrf.FIELD}" value="{csrf.token(request.session)}">'),
        notice=request.session.pop("notice", None),
        now=console.now(),
        **context,
    )
    return HTMLResponse(body, status_code=status)


def notice(request: Request, text: str) -> None:
    """Shown once, on the next page (after a redirect)."""
    request.session["notice"] = text


# --- forms ------------------------------------------------------------------------------------------------------


class FormRefused(Exception):
    """A POST that is not acted upon; `status` and `message` say why, on the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def form(request: Request) -> dict[str, str]:
    """The posted form (application/x-www-form-urlencoded, at most MAX_FORM_BYTES), after its CSRF token is checked
    against the session's. Raises FormRefused: nothing is done with a form that fails."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise FormRefused(415, "This page accepts only its own forms.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormRefused(413, "What you sent is too large for this form.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormRefused(413, "What you sent is too large for this form.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise FormRefused(400, "The form could not be read.") from None
    fields = dict(pairs)
    if not csrf.valid(request.session, fields.get(csrf.FIELD)):
        raise FormRefused(
            403,
            "This form has expired or did not come from this site (its security token is missing or does not "
            "match). Nothing was changed: reload the page and try again.",
        )
    return fields


def too_long(value: str, limit: int) -> bool:
    return len(value.strip()) > limit


# --- who is asking ----------------------------------------------------------------------------------------------


def peer_of(request: Request) -> str:
    return request.client.host if request.client else ""


def address_of(request: Request) -> str:
    console = console_of(request)
    return client_address(peer_of(request), request.headers.get("x-forwarded-for"), console.proxies)


def signed_in(request: Request) -> Reviewer | None:
    """The reviewer behind this request: in proxy mode the proxy's identity header (and the reviewer's signed token,
    their proof at the sanction service), believed only from a trusted proxy address; in accounts mode the
    session's sign-in, while its account is in the accounts file as it was then (same password hash)."""
    console = console_of(request)
    if console.sign_in == "proxy":
        if not trusted(peer_of(request), console.proxies):
            return None
        headers = request.headers
        return reviewer_of(headers.get(console.proxy_header, ""), proof=headers.get(console.proxy_token_header, ""))
    entry = request.session.get("reviewer")
    if not isinstance(entry, dict):
        return None
    # The signed cookie alone is not enough: it outlives neither the account nor its password (a reviewer removed
    # from the file, or a thief of their cookie after a reset, would else act as them for the cookie's 8 hours).
    accounts = console.accounts
    found = accounts.still_signed_in(entry.get("login"), entry.get("stamp")) if accounts is not None else None
    if found is None:
        request.session.pop("reviewer", None)
    return found


# --- headers on every answer ------------------------------------------------------------------------------------


class SecurityHeaders:
    """Adds the security headers to every answer, and Cache-Control: no-store to every page (they show personal
    data or a session's forms); only the stylesheet may be cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"cache-control" or static]
                headers += SECURITY_HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class HealthOnlyOn:
    """On the health port (DEBAR_HEALTH_PORT), only /healthz and /readyz answer; every other path is 404 there."""

    PATHS = ("/healthz", "/readyz")

    def __init__(self, app: ASGIApp, port: int) -> None:
        self.app = app
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") or ("", None)
        if self.port and scope["type"] == "http" and server[1] == self.port and scope["path"] not in self.PATHS:
            await PlainTextResponse("not found", status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)
