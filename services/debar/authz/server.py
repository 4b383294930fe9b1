"""Wiring of `debar serve authz`: the gRPC server (mTLS, tokens or local, as every debar server: the caller is the
Envoy), its health and metrics, and the sanction client it asks as `authz`. Ready only while the sanction service
says it is SERVING."""

from __future__ import annotations

from collections.abc import Callable

from envoy.service.auth.v3 import external_auth_pb2_grpc
from prometheus_client import CollectorRegistry, Counter

from debar.authz.delegation import load_platforms, require_proxies
from debar.authz.servicer import AuthorizationServicer
from debar.common import logs
from debar.common.settings import Settings
from debar.domain_services.metrics import VerdictMetrics
from debar.domain_services.sanction_client import SanctionClient
from debar.rpc.callers import CallerInterceptor, identify_callers
from debar.rpc.metrics import RpcMetrics, serve_metrics
from debar.rpc.request_context import RequestInterceptor
from debar.rpc.server import GrpcServer, Readiness
from debar.rpc.tls import server_credentials

NAME = "authz"  # the port setting (DEBAR_AUTHZ_PORT) and the caller name the sanction service knows it by
GRPC_SERVICE = "envoy.service.auth.v3.Authorization"


async def serve(settings: Settings, on_ready: Callable[[int], None] | None = None) -> None:
    logs.configure(NAME, settings.log_format)
    credentials = server_credentials(settings)  # refuses an unsafe transport before anything starts
    platforms_file = load_platforms(settings.authz_platforms_file)  # a bad file stops the start
    require_proxies(platforms_file, settings.transport())
    platforms, proxies = platforms_file
    registry = CollectorRegistry()
    errors = VerdictMetrics(registry, NAME)  # debar_sanction_errors_total{service="authz",code}
    answered = Counter(
        "debar_authz_answers", "Envoy checks answered, by answer (allowed, refused, bad_request, misconfigured, "
        "rate_limited, unavailable)", ["answer"], registry=registry,
    )  # fmt: skip
    client = SanctionClient.connect(
        settings.sanction_address, NAME, settings.sanction_timeout_s, settings, on_error=errors.sanction_error
    )
    stop_metrics = None
    try:
        server = GrpcServer(
            settings.host, settings.ports[NAME], [GRPC_SERVICE], settings.grace_s, credentials=credentials,
            interceptors=[
                RequestInterceptor(RpcMetrics(registry)),
                CallerInterceptor(identify_callers(settings, NAME)),
            ],
            health_port=settings.health_port or None,
        )  # fmt: skip
        servicer = AuthorizationServicer(
            client, lambda answer: answered.labels(answer).inc(), platforms=platforms, proxies=proxies
        )
        external_auth_pb2_grpc.add_AuthorizationServicer_to_server(servicer, server.server)
        stop_metrics = serve_metrics(registry, settings.host, settings.metrics_port)
        await server.run(Readiness({"sanction": client.serving}), on_ready)
    finally:
        if stop_metrics is not None:
            stop_metrics()
        await client.close()
