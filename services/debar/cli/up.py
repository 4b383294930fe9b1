"""`debar up`: the whole system on one machine, with the embedded Redis and the demo dataset."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from importlib import resources

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from debar.cli.services import available_services
from debar.common.embedded_redis import EmbeddedRedis
from debar.common.settings import Settings
from debar.sanction.bootstrap import build_core
from debar.sanction.importer import import_lines


def wait_serving(address: str, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
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


def up(settings: Settings, demo: bool = True) -> int:
    with EmbeddedRedis(settings.data_dir / "redis") as redis:
        print(f"redis     {redis.url} (embedded, data in {settings.data_dir / 'redis'})")
        if demo:
            print(f"demo data {asyncio.run(_load_demo(settings, redis.url))}")
        env = {**os.environ, "DEBAR_REDIS_URL": redis.url}
        children: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for name in available_services():
                children[name] = subprocess.Popen([sys.executable, "-m", "debar.cli.main", "serve", name], env=env)
            for name in children:
                address = f"{settings.host}:{settings.ports[name]}"
                if not wait_serving(address):
                    print(f"debar up: {name} did not become ready on {address}", file=sys.stderr)
                    return 1
                print(f"{name:<12}{address}")
            print("\nready. Try:\n  debar check --id-type RIC --id 11010519491231002X --measure RAIL_G_TRAIN")
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
