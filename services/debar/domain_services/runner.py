"""The wiring every domain service shares: logging, the sanction client, the gRPC server and its health."""

from __future__ import annotations

from collections.abc import Callable

import grpc
from prometheus_client import CollectorRegistry

from debar.common import logs
from debar.common.settings import Settings
from debar.domain_services.health import readiness
from debar.domain_services.metrics import VerdictMetrics
from debar.domain_services.sanction_client import SanctionClient
from debar.rpc.callers import CallerInterceptor, Identify
from debar.rpc.metrics import RpcMetrics, serve_metrics
from debar.rpc.request_context import RequestInterceptor
from debar.rpc.server import GrpcServer
from debar.rpc.tls import server_credentials


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
    registry = CollectorRegistry()
    verdicts = VerdictMetrics(registry, name)
    client = SanctionClient.connect(
        settings.sanction_address, name, settings.sanction_timeout_s, settings, on_error=verdicts.sanction_error
    )
    stop_metrics = None
    try:
        server = GrpcServer(
            settings.host, settings.ports[name], [service_name], settings.grace_s, credentials=credentials,
            interceptors=[
                RequestInterceptor(RpcMetrics(registry), on_response=verdicts.on_response),
                CallerInterceptor(Identify(settings.transport(), token_key=settings.token_key)),
            ],
            health_port=settings.health_port or None,
        )  # fmt: skip
        register(client, server.server)
        stop_metrics = serve_metrics(registry, settings.host, settings.metrics_port)
        await server.run(readiness(client), on_ready)
    finally:
        if stop_metrics is not None:
            stop_metrics()
        await client.close()
