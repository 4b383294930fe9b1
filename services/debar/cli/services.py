"""`debar serve NAME`: the sanction service, a domain service from domain_services/runner.py's table, authz
(Envoy's external authorization) or the web console. The sanction service's modules (Redis, the check scripts) and
the console's (Starlette, uvicorn) are imported only when that one runs."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from debar.common.settings import Settings
from debar.domain_services import runner

SANCTION = "sanction"
CONSOLE = "console"
AUTHZ = "authz"
WEB_SERVICES = (CONSOLE,)  # HTTP, not gRPC: their port is their own setting, their readiness GET /healthz


def available_services() -> list[str]:
    """Every service `debar up` starts, in the order it starts them: the sanction service first."""
    return [SANCTION, *runner.DOMAIN_SERVICES, AUTHZ, CONSOLE]


def port_of(settings: Settings, name: str) -> int:
    return settings.console_port if name == CONSOLE else settings.ports[name]


def run_service(name: str, settings: Settings, port: int | None = None) -> int:
    if port is not None and name == CONSOLE:
        settings = replace(settings, console_port=port)
    elif port is not None:
        settings = replace(settings, ports={**settings.ports, name: port})
    if name == SANCTION:
        from debar.sanction.main import serve

        _run_grpc(serve(settings))
    elif name == AUTHZ:
        from debar.authz.server import serve as serve_authz

        _run_grpc(serve_authz(settings))
    elif name == CONSOLE:
        from debar.console.main import serve as serve_console

        asyncio.run(serve_console(settings))
    else:
        _run_grpc(runner.serve(name, settings))
    return 0


def _run_grpc(main: Coroutine[Any, Any, None]) -> None:
    """A gRPC service on uvloop's event loop: the Redis client's and the event loop's own work per call cost less
    CPU there (grpc.aio polls its completion queue itself, on any loop). Plain asyncio where uvloop is missing."""
    from debar.rpc.server import exit_deadline

    exit_deadline()  # a SIGTERM ends this process within DEBAR_GRACE_S plus a few seconds, whatever holds it
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)
