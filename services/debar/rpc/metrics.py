"""Prometheus metrics shared by every service: the HTTP endpoint, and the per-method RPC latency and outcomes.
Each service's wiring creates one CollectorRegistry and passes it down; nothing here registers at import."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

# Check latency is sub-millisecond on a warm path and seconds when a deadline expires.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class RpcMetrics:
    """`debar_grpc_server_handling_seconds{method}` and `debar_grpc_server_handled_total{method,code}`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.latency = Histogram(
            "debar_grpc_server_handling_seconds",
            "Time to answer a unary gRPC call, by full method name",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.handled = Counter(
            "debar_grpc_server_handled",
            "Unary gRPC calls answered, by full method name and status code",
            ["method", "code"],
            registry=registry,
        )


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> Callable[[], None] | None:
    """Serves /metrics over HTTP on host:port in a daemon thread; returns how to stop it. Port 0: off (None)."""
    if port == 0:
        return None
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=2)

    return stop
