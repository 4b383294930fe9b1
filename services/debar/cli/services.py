"""Which module serves which service. A module is imported only when its service runs: starting one service
loads nothing of the others."""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import replace

from debar.common.settings import Settings

SERVICE_MODULES = {
    "sanction": "debar.sanction.main",
    "railway": "debar.domain_services.railway.main",
    "hotel": "debar.domain_services.hotel.main",
    "realestate": "debar.domain_services.realestate.main",
    "procurement": "debar.domain_services.procurement.main",
    "console": "debar.console.main",  # HTTP, not gRPC: see port_of and `debar up`
}
WEB_SERVICES = ("console",)


def available_services() -> list[str]:
    return list(SERVICE_MODULES)


def port_of(settings: Settings, name: str) -> int:
    return settings.console_port if name == "console" else settings.ports[name]


def run_service(name: str, settings: Settings, port: int | None = None) -> int:
    if port is not None and name == "console":
        settings = replace(settings, console_port=port)
    elif port is not None:
        settings = replace(settings, ports={**settings.ports, name: port})
    module = importlib.import_module(SERVICE_MODULES[name])
    asyncio.run(module.serve(settings))
    return 0
