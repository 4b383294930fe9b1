"""`debar serve NAME`: the sanction service, or a domain service from domain_services/runner.py's table. The
sanction service's modules (Redis, the check scripts) are imported only when it is the one that runs."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from debar.common.settings import Settings
from debar.domain_services import runner

SANCTION = "sanction"


def available_services() -> list[str]:
    """Every service `debar up` starts, in the order it starts them: the sanction service first."""
    return [SANCTION, *runner.DOMAIN_SERVICES]


def run_service(name: str, settings: Settings, port: int | None = None) -> int:
    if port is not None:
        settings = replace(settings, ports={**settings.ports, name: port})
    if name == SANCTION:
        from debar.sanction.main import serve

        asyncio.run(serve(settings))
    else:
        asyncio.run(runner.serve(name, settings))
    return 0
