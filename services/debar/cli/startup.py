"""How `debar up` knows its services started: a port is free before, and a service answers SERVING while its own
process still runs (a SERVING answer from a port whose process has exited came from someone else's server)."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from debar.common.settings import Settings
from debar.rpc import tls


def port_taken(host: str, port: int) -> bool:
    """Whether a server already listens there. SO_REUSEADDR as gRPC sets it, so a port left in TIME_WAIT by the
    last run counts as free."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return True
    return False


def start_failure(
    child: subprocess.Popen[bytes], host: str, port: int, prober: Settings, timeout_s: float = 20.0
) -> str | None:
    """None once the service on host:port answers SERVING and `child` (its process) still runs; else why not."""
    address = f"{host}:{port}"
    deadline = time.monotonic() + timeout_s
    with tls.channel(prober, address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if child.poll() is not None:
                why = ": the port is taken (another `debar up`?)" if port_taken(host, port) else " (its log is above)"
                return f"exited with code {child.returncode} before serving on {address}{why}"
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
            except grpc.RpcError:
                status = health_pb2.HealthCheckResponse.UNKNOWN
            if status == health_pb2.HealthCheckResponse.SERVING and child.poll() is None:
                return None
            time.sleep(0.1)
    return f"did not become ready on {address} in {timeout_s:.0f}s"


def http_start_failure(child: subprocess.Popen[bytes], host: str, port: int, timeout_s: float = 20.0) -> str | None:
    """As start_failure, for a web service: None once GET /healthz answers 200 while `child` still runs."""
    address = f"{host}:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            why = ": the port is taken (another `debar up`?)" if port_taken(host, port) else " (its log is above)"
            return f"exited with code {child.returncode} before serving on {address}{why}"
        try:
            with urllib.request.urlopen(f"http://{address}/healthz", timeout=1) as answer:
                if answer.status == 200 and child.poll() is None:
                    return None
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    return f"did not become ready on {address} in {timeout_s:.0f}s"
