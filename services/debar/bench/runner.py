"""`debar bench`: Check and BatchCheck against a real sanction service and a private Redis, beside the same load
on an empty grpc.aio handler, in one run, so that the ratio is what counts (figures vary +-20 % run to run)."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from debar.common.embedded_redis import EmbeddedRedis, free_port
from debar.v1 import common_pb2, registry_pb2, registry_pb2_grpc, sanction_pb2, sanction_pb2_grpc


@dataclass
class Figures:
    calls: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _load(address: str, make: Callable[[int], object], method: str, seconds: float, in_flight: int) -> Figures:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = sanction_pb2_grpc.SanctionServiceStub(channel)
        call = getattr(stub, method)
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds
        counter = 0

        async def worker() -> None:
            nonlocal counter
            while time.perf_counter() < deadline:
                counter += 1
                started = time.perf_counter()
                await call(make(counter), timeout=10)
                latencies.append((time.perf_counter() - started) * 1000)

        for _ in range(50):  # warm up connections and caches
            await call(make(0), timeout=10)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return Figures(len(latencies), time.perf_counter() - started, latencies)


def _wait_port(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=20)


def run(seconds: float = 5.0, in_flight: int = 16, subjects: int = 10_000) -> int:
    from stdnum.cn import ric

    people = []
    for i in range(subjects):
        body = f"110105{19500101 + (i % 28) + 100 * ((i // 28) % 12) + 10000 * (i // 336 % 50):08d}{i % 1000:03d}"
        people.append(body + ric.calc_check_digit(body + "0"))
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis") as redis:
        sanction_port, empty_port = free_port(), free_port()
        env = {**os.environ, "DEBAR_REDIS_URL": redis.url, "DEBAR_SANCTION_PORT": str(sanction_port),
               "DEBAR_DATA_DIR": tmp, "DEBAR_LOG_FORMAT": "json"}  # fmt: skip
        procs = [
            subprocess.Popen([sys.executable, "-m", "debar.cli.main", "serve", "sanction"], env=env,
                             stderr=subprocess.DEVNULL),
            subprocess.Popen([sys.executable, "-m", "debar.bench.empty_server", str(empty_port)]),
        ]  # fmt: skip
        try:
            sanction, empty = f"127.0.0.1:{sanction_port}", f"127.0.0.1:{empty_port}"
            _wait_port(sanction)
            _wait_port(empty)
            time.sleep(1.5)  # health turns SERVING once Redis answers
            with grpc.insecure_channel(sanction) as channel:
                registry = registry_pb2_grpc.RegistryServiceStub(channel)
                for i, person in enumerate(people[: subjects // 10]):  # one subject in ten is restricted
                    registry.Impose(registry_pb2.ImposeRequest(
                        source="court_consumption_order", source_id=f"bench-{i}",
                        subject=common_pb2.Subject(id_type=common_pb2.ID_TYPE_RIC, id=person),
                        legal_basis="SPC Art. 3", authority="Bench Court", case_number=f"B-{i}"))  # fmt: skip

            def one(n: int) -> sanction_pb2.CheckRequest:
                return sanction_pb2.CheckRequest(
                    subject=common_pb2.Subject(id_type=common_pb2.ID_TYPE_RIC, id=people[n % subjects]),
                    measure="RAIL_G_TRAIN",
                )

            def batch(n: int) -> sanction_pb2.BatchCheckRequest:
                return sanction_pb2.BatchCheckRequest(items=[one(n * 100 + k) for k in range(100)])

            results = {}
            for label, address, make, method in [
                ("empty Check", empty, one, "Check"),
                ("debar Check", sanction, one, "Check"),
                ("empty BatchCheck(100)", empty, batch, "BatchCheck"),
                ("debar BatchCheck(100)", sanction, batch, "BatchCheck"),
            ]:
                results[label] = asyncio.run(_load(address, make, method, seconds, in_flight))
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=15)
    print(f"{'path':<24}{'calls/s':>10}{'subjects/s':>12}{'p50 ms':>9}{'p99 ms':>9}")
    for label, f in results.items():
        per = 100 if "Batch" in label else 1
        print(f"{label:<24}{f.rate:>10.0f}{f.rate * per:>12.0f}{f.pct(0.5):>9.2f}{f.pct(0.99):>9.2f}")
    check_ratio = results["debar Check"].rate / results["empty Check"].rate
    batch_rate = results["debar BatchCheck(100)"].rate * 100
    print(f"\nCheck ratio to the empty handler: {check_ratio:.2f} (target >= 0.8)")
    print(f"BatchCheck of 100: {batch_rate:.0f} subjects/s (target >= 100,000)")
    mean_ms = statistics.mean(results["debar Check"].latencies_ms)
    print(f"({in_flight} in flight, {seconds:.0f} s per path, {subjects} subjects, 1 in 10 restricted, "
          f"every decision logged; mean Check latency {mean_ms:.2f} ms)")  # fmt: skip
    return 0
