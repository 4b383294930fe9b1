"""The console as an ASGI app: routes, sessions, headers, and the pages for what goes wrong (the sanction service
down: 503; anything unexpected: 500, never a stack trace)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from debar.console import person, reviewers
from debar.console.sanction_client import Busy, Refused, SanctionDown
from debar.console.web import SESSION_MAX_AGE_S, Console, HealthOnlyOn, SecurityHeaders, console_of, page

log = logging.getLogger("debar.console")


async def home(request: Request) -> Response:
    return page(request, "home.html")


async def healthz(request: Request) -> Response:
    """Liveness: the process answers (a sanction outage must not restart the console)."""
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    """Readiness: the console serves its pages, also while the sanction service is down (the person then gets the
    console's own 503 page, not a proxy's error); the body says whether the sanction service is SERVING."""
    serving = await console_of(request).client.serving()
    return JSONResponse({"console": "SERVING", "sanction": "SERVING" if serving else "NOT_SERVING"})


async def _sanction_down(request: Request, exc: Exception) -> Response:
    log.warning("sanction service unavailable: %s", exc)
    return page(
        request,
        "message.html",
        503,
        title="Temporarily unavailable",
        message="The restriction service cannot be reached right now. Nothing was changed; please try "
        "again in a few minutes.",
    )


async def _busy(request: Request, exc: Exception) -> Response:
    return page(request, "message.html", 429, title="Busy", message=str(exc))


async def _refused(request: Request, exc: Exception) -> Response:
    log.error("the sanction service refused the console: %s", exc)
    return page(
        request,
        "message.html",
        403,
        title="Refused",
        message="The restriction service refused this request. Nothing was changed.",
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    titles = {404: "No such page", 405: "Not allowed"}
    return page(
        request,
        "message.html",
        status,
        title=titles.get(status, "Error"),
        message="There is no such page here." if status == 404 else "That cannot be done here.",
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error serving %s %s", request.method, request.url.path)
    message = "Something went wrong on our side. Nothing more is shown here; the operators are told."
    return page(request, "message.html", 500, title="Something went wrong", message=message)


def build_app(console: Console, session_key: str, secure_cookies: bool, health_port: int = 0) -> Starlette:
    """`health_port`: a second port that answers /healthz and /readyz only (for probes that must reach the pod
    while its main port admits only the authenticating proxy)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await console.client.close()

    static = StaticFiles(directory=str(resources.files("debar.console") / "static"))
    routes = [
        Route("/", home),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/lookup", person.lookup_form, methods=["GET"]),
        Route("/lookup", person.lookup, methods=["POST"]),
        Route("/my-decision", person.my_decision, methods=["GET"]),
        Route("/my-decision/objection", person.file_objection, methods=["POST"]),
        Route("/my-decision/reconsideration", person.request_reconsideration, methods=["POST"]),
        Route("/my-decision/receipt", person.receipt, methods=["POST"]),
        Route("/my-decision/close", person.forget, methods=["POST"]),
        Route("/signin", reviewers.sign_in_form, methods=["GET"]),
        Route("/signin", reviewers.sign_in, methods=["POST"]),
        Route("/signout", reviewers.sign_out, methods=["POST"]),
        Route("/queue", reviewers.queue, methods=["GET"]),
        Route("/objections/{objection_id}", reviewers.objection, methods=["GET"]),
        Route("/objections/{objection_id}/{action}", reviewers.act, methods=["POST"]),
        Mount("/static", static, name="static"),
    ]
    middleware = [
        Middleware(HealthOnlyOn, port=health_port),
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=session_key,
            session_cookie="debar_console",
            max_age=SESSION_MAX_AGE_S,
            same_site="lax",
            https_only=secure_cookies,
        ),
    ]
    handlers = {
        SanctionDown: _sanction_down,
        Busy: _busy,
        Refused: _refused,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=lifespan)  # type: ignore[arg-type]
    app.state.console = console
    return app
