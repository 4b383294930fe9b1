"""Real servers for tests: a private Redis-compatible server, and debar services as separate processes on free
ports, started and stopped by the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from debar.local.embedded_redis import free_port
from tests.support.keys import log_signing_key_file_for_tests


def health_status(address: str, service: str = "", credentials: grpc.ChannelCredentials | None = None) -> str:
    with (
        grpc.insecure_channel(address) if credentials is None else grpc.secure_channel(address, credentials)
    ) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=1
            )
        except grpc.RpcError as error:
            return f"error:{error.code().name}"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def wait_for(predicate, timeout_s: float = 20.0, interval_s: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return False


@dataclass
class ServiceProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout_s)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_service(
    name: str,
    env: dict[str, str],
    log_dir: Path,
    wait_serving: bool = True,
    credentials: grpc.ChannelCredentials | None = None,
    port: int | None = None,
) -> ServiceProcess:
    """`credentials`: how to ask a service that serves mutual TLS whether it is SERVING. `port`: to restart a
    service where its clients expect it (default: a free one)."""
    port = port or free_port()
    log_path = log_dir / f"{name}-{port}-{time.monotonic_ns()}.log"
    full_env = {**os.environ, **env, f"DEBAR_{name.upper()}_PORT": str(port)}
    if name == "sanction":  # it refuses to start without the log's signing key
        full_env.setdefault("DEBAR_LOG_SIGNING_KEY", log_signing_key_file_for_tests())
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "debar.cli.main", "serve", name], env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    service = ServiceProcess(name, port, process, log_path)
    if wait_serving and not wait_for(
        lambda: health_status(service.address, credentials=credentials) == "SERVING" or process.poll() is not None
    ):
        service.stop(signal.SIGKILL)
        raise RuntimeError(f"{name} did not become SERVING:\n{service.log()}")
    if process.poll() is not None:
        raise RuntimeError(f"{name} exited at start:\n{service.log()}")
    return service
