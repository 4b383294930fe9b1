"""The wiring every domain service shares: logging, the sanction client, the gRPC server and its health."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from debar.common import logs
from debar.common.server import GrpcServer
from debar.common.settings import Settings
from debar.common.tls import server_credentials
from debar.domain_common.health import readiness
from debar.domain_common.sanction_client import SanctionClient


async def run_domain_service(
    name: str,
    service_name: str,
    settings: Settings,
    register: Callable[[SanctionClient, grpc.aio.Server], None],
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serves `service_name` on settings.ports[name] until SIGTERM; asks the sanction service as `name`."""
    logs.configure(name, settings.log_format)
    credentials = server_credentials(settings)  # refuses an unsafe transport before anything starts
    client = SanctionClient.connect(settings.sanction_address, name, settings.sanction_timeout_s, settings)
    try:
        server = GrpcServer(
            settings.host, settings.ports[name], [service_name], settings.grace_s, credentials=credentials
        )
        register(client, server.server)
        await server.run(readiness(client), on_ready)
    finally:
        await client.close()
