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
}


def available_services() -> list[str]:
    return list(SERVICE_MODULES)


def run_service(name: str, settings: Settings, port: int | None = None) -> int:
    if port is not None:
        settings = replace(settings, ports={**settings.ports, name: port})
    module = importlib.import_module(SERVICE_MODULES[name])
    asyncio.run(module.serve(settings))
    return 0
