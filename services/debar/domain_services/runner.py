"""The four domain services in one table, and the wiring they share: logging, the sanction client, the gRPC server,
its health and metrics. A service itself is only its rules and its servicer (railway.py, hotel.py, ...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from prometheus_client import CollectorRegistry

from debar.common import logs
from debar.common.settings import Settings
from debar.domain_services.hotel import HotelServicer
from debar.domain_services.judge import Judge
from debar.domain_services.metrics import VerdictMetrics
from debar.domain_services.platform_rates import PlatformRates
from debar.domain_services.procurement import ProcurementServicer
from debar.domain_services.railway import RailwayServicer
from debar.domain_services.realestate import RealEstateServicer
from debar.domain_services.sanction_client import SanctionClient
from debar.rpc.callers import CallerInterceptor, identify_callers
from debar.rpc.metrics import RpcMetrics, serve_metrics
from debar.rpc.request_context import RequestInterceptor
from debar.rpc.server import GrpcServer, Readiness
from debar.rpc.tls import server_credentials
from debar.v1 import hotel_pb2_grpc, procurement_pb2_grpc, railway_pb2_grpc, realestate_pb2_grpc


@dataclass(frozen=True, slots=True)
class DomainService:
    grpc_service: str  # the full gRPC service name (a contract: clients, health and reflection name it)
    servicer: Callable[[Judge], Any]  # the service's servicer class, which answers every RPC of grpc_service
    add_to_server: Callable[[Any, grpc.aio.Server], None]  # the generated add_<Service>Servicer_to_server


# `debar serve NAME` and `debar up` take their names from here; NAME is also the port setting
# (DEBAR_<NAME>_PORT) and the caller name the sanction service knows the service by.
DOMAIN_SERVICES: dict[str, DomainService] = {
    "railway": DomainService(
        grpc_service="debar.v1.RailwayService",
        servicer=RailwayServicer,
        add_to_server=railway_pb2_grpc.add_RailwayServiceServicer_to_server,
    ),
    "hotel": DomainService(
        grpc_service="debar.v1.HotelService",
        servicer=HotelServicer,
        add_to_server=hotel_pb2_grpc.add_HotelServiceServicer_to_server,
    ),
    "realestate": DomainService(
        grpc_service="debar.v1.RealEstateService",
        servicer=RealEstateServicer,
        add_to_server=realestate_pb2_grpc.add_RealEstateServiceServicer_to_server,
    ),
    "procurement": DomainService(
        grpc_service="debar.v1.ProcurementService",
        servicer=ProcurementServicer,
        add_to_server=procurement_pb2_grpc.add_ProcurementServiceServicer_to_server,
    ),
}


async def serve(name: str, settings: Settings, on_ready: Callable[[int], None] | None = None) -> None:
    """Serves DOMAIN_SERVICES[name] on settings.ports[name] until SIGTERM; asks the sanction service as `name` on
    behalf of each caller (with each caller's own rate here), and is ready only while the sanction service says it
    is SERVING."""
    service = DOMAIN_SERVICES[name]
    logs.configure(name, settings.log_format)
    credentials = server_credentials(settings)  # refuses an unsafe transport before anything starts
    identify = identify_callers(settings, name)  # and a bad trust file
    registry = CollectorRegistry()
    verdicts = VerdictMetrics(registry, name)
    client = SanctionClient.connect(
        settings.sanction_address, name, settings.sanction_timeout_s, settings, on_error=verdicts.sanction_error
    )
    stop_metrics = None
    try:
        server = GrpcServer(
            settings.host, settings.ports[name], [service.grpc_service], settings.grace_s, credentials=credentials,
            interceptors=[
                RequestInterceptor(RpcMetrics(registry), on_response=verdicts.on_response),
                CallerInterceptor(identify),
            ],
            health_port=settings.health_port or None,
        )  # fmt: skip
        rates = PlatformRates(settings.platform_rate_checks, settings.platform_rate_window_s)
        service.add_to_server(service.servicer(Judge(client, rates=rates)), server.server)
        stop_metrics = serve_metrics(registry, settings.host, settings.metrics_port)
        await server.run(Readiness({"sanction": client.serving}), on_ready)
    finally:
        if stop_metrics is not None:
            stop_metrics()
        await client.close()
