"""Which module serves which service. A domain service appears here when it lands."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
from dataclasses import replace

from debar.common.settings import Settings

SERVICE_MODULES = {
    "sanction": "debar.sanction.main",
    "railway": "debar.railway.main",
    "hotel": "debar.hotel.main",
    "realestate": "debar.realestate.main",
    "procurement": "debar.procurement.main",
}


def available_services() -> list[str]:
    found = []
    for name, module in SERVICE_MODULES.items():
        try:
            if importlib.util.find_spec(module) is not None:
                found.append(name)
        except ModuleNotFoundError:
            pass
    return found


def run_service(name: str, settings: Settings, port: int | None = None) -> int:
    if name not in available_services():
        print(f"debar: the {name} service is not part of this build yet")
        return 2
    if port is not None:
        settings = replace(settings, ports={**settings.ports, name: port})
    module = importlib.import_module(SERVICE_MODULES[name])
    asyncio.run(module.serve(settings))
    return 0
