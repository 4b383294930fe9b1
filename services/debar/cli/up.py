"""`debar up`: the whole system on one machine, with the embedded Redis and the demo dataset."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from importlib import resources
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from debar.cli.services import available_services
from debar.common import tls
from debar.common.certs import write_dev_certs
from debar.common.embedded_redis import EmbeddedRedis
from debar.common.settings import Settings
from debar.sanction.bootstrap import build_core
from debar.sanction.importer import import_lines


def wait_serving(address: str, timeout_s: float = 20.0, settings: Settings | None = None) -> bool:
    deadline = time.monotonic() + timeout_s
    with tls.channel(settings or Settings(), address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                if (
                    stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    return True
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    return False


async def _load_demo(settings: Settings, url: str) -> str:
    demo = resources.files("debar").joinpath("data/demo.jsonl").read_bytes()
    core = build_core(settings, url)
    try:
        summary = await import_lines(demo.splitlines(), core.registry)
    finally:
        await core.close()
    return summary.line()


def _tls_env(certs: Path, name: str) -> dict[str, str]:
    return {"DEBAR_TLS_CA": str(certs / "ca.pem"), "DEBAR_TLS_CERT": str(certs / f"{name}.pem"),
            "DEBAR_TLS_KEY": str(certs / f"{name}-key.pem")}  # fmt: skip


def up(settings: Settings, demo: bool = True, certs: Path | None = None) -> int:
    """Plaintext on loopback, said explicitly (DEBAR_TLS_* are not passed on); with `certs`, mutual TLS with each
    service's own certificate from that `debar certs dev` folder (made there if missing)."""
    with EmbeddedRedis(settings.data_dir / "redis") as redis:
        print(f"redis     {redis.url} (embedded, data in {settings.data_dir / 'redis'})")
        if demo:
            print(f"demo data {asyncio.run(_load_demo(settings, redis.url))}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEBAR_TLS_")}
        env.update(DEBAR_REDIS_URL=redis.url, DEBAR_PLAINTEXT="false" if certs else "true")
        prober = replace(settings, tls_ca="", tls_cert="", tls_key="")
        if certs is not None:
            if not (certs / "ca.pem").exists():
                write_dev_certs(certs)
            prober = replace(prober, tls_ca=str(certs / "ca.pem"), tls_cert=str(certs / "bench.pem"),
                             tls_key=str(certs / "bench-key.pem"))  # fmt: skip
        children: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for name in available_services():
                child_env = {**env, **_tls_env(certs, name)} if certs else env
                children[name] = subprocess.Popen([sys.executable, "-m", "debar.cli.main", "serve", name],
                                                  env=child_env)  # fmt: skip
            for name in children:
                address = f"{settings.host}:{settings.ports[name]}"
                if not wait_serving(address, settings=prober):
                    print(f"debar up: {name} did not become ready on {address}", file=sys.stderr)
                    return 1
                print(f"{name:<12}{address}")
            tls_hint = " ".join(f"{k}={v}" for k, v in _tls_env(certs, "bench").items()) + " " if certs else ""
            print(
                f"\nready. Try:\n  {tls_hint}debar check --id-type RIC --id 11010519491231002X --measure RAIL_G_TRAIN"
            )
            print("Ctrl-C stops everything.")
            stop = {"now": False}
            signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
            try:
                while not stop["now"] and all(c.poll() is None for c in children.values()):
                    time.sleep(0.2)
            except KeyboardInterrupt:
                pass
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children.values():
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
    return 0
