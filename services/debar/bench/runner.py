"""`debar bench`: Check and BatchCheck against a real sanction service and a private Redis, beside the same load
on an empty grpc.aio handler, in one run, so that the ratio is what counts (figures vary +-20 % run to run).

`debar bench railway`: RailwayService.CheckTicket (one BatchCheck of two measures per ticket) beside a direct
Check on the sanction service it asks, in one run: the extra hop should cost no more than the hop itself."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from debar.local.embedded_redis import EmbeddedRedis, free_port
from debar.v1 import (
    common_pb2,
    railway_pb2,
    railway_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    sanction_pb2,
    sanction_pb2_grpc,
)

START_TIMEOUT_S = 30.0  # every process SERVING within this, or the run stops
CALL_TIMEOUT_S = 10.0  # one call; bounds the tail of a load past its seconds
STOP_TIMEOUT_S = 15.0  # SIGTERM, then SIGKILL


@dataclass
class Figures:
    calls: int
    seconds: float
    latencies_ms: list[float]
    refused: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(frozen=True)
class Load:
    """One thing to load: `stub(channel).method(make(n))`; `refused(response)` counts the denials seen."""

    label: str
    address: str
    stub: Callable[[grpc.aio.Channel], Any]
    method: str
    make: Callable[[int], object]
    refused: Callable[[Any], bool] = lambda _: False


async def _load(path: Load, seconds: float, in_flight: int) -> Figures:
    """`in_flight` workers call back to back for `seconds`; failed calls are counted by status, not timed."""
    async with grpc.aio.insecure_channel(path.address) as channel:
        call = getattr(path.stub(channel), path.method)
        figures = Figures(0, 0.0, [])
        deadline = time.perf_counter() + seconds
        counter = 0

        async def worker() -> None:
            nonlocal counter
            while time.perf_counter() < deadline:
                counter += 1
                started = time.perf_counter()
                try:
                    response = await call(path.make(counter), timeout=CALL_TIMEOUT_S)
                except grpc.aio.AioRpcError as error:
                    name = error.code().name
                    figures.errors[name] = figures.errors.get(name, 0) + 1
                    continue
                figures.latencies_ms.append((time.perf_counter() - started) * 1000)
                figures.refused += path.refused(response)

        for _ in range(50):  # warm up connections and caches
            await call(path.make(0), timeout=CALL_TIMEOUT_S)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        figures.seconds = time.perf_counter() - started
        figures.calls = len(figures.latencies_ms)
        if not figures.calls:
            raise RuntimeError(f"{path.label}: no call succeeded ({figures.errors})")
        return figures


def measure(paths: Sequence[Load], seconds: float, in_flight: int) -> dict[str, Figures]:
    """Each path in turn, the same load, in this one run."""
    return {path.label: asyncio.run(_load(path, seconds, in_flight)) for path in paths}


def make_people(subjects: int) -> list[str]:
    """`subjects` distinct, valid resident identity numbers."""
    from stdnum.cn import ric

    people = []
    for i in range(subjects):
        body = f"110105{19500101 + (i % 28) + 100 * ((i // 28) % 12) + 10000 * (i // 336 % 50):08d}{i % 1000:03d}"
        people.append(body + ric.calc_check_digit(body + "0"))
    return people


def subject(person: str) -> common_pb2.Subject:
    return common_pb2.Subject(id_type=common_pb2.ID_TYPE_RIC, id=person)


def impose(sanction: str, people: Sequence[str]) -> None:
    """One subject in ten is restricted (every tenth, so that any run of calls meets about 10 % of them), under a
    court consumption order's default measures."""
    with grpc.insecure_channel(sanction) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        for i, person in enumerate(people[::10]):
            request = registry_pb2.ImposeRequest(
                source="court_consumption_order", source_id=f"bench-{i}", subject=subject(person),
                legal_basis="SPC Art. 3", authority="Bench Court", case_number=f"B-{i}")  # fmt: skip
            registry.Impose(request, timeout=CALL_TIMEOUT_S)


@dataclass
class _Process:
    label: str
    popen: subprocess.Popen[bytes]
    address: str


def _serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def _port_open(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=1)
        except grpc.FutureTimeoutError:
            return False
    return True


def _wait_ready(process: _Process, ready: Callable[[str], bool], deadline: float) -> None:
    while not ready(process.address):
        if process.popen.poll() is not None:
            raise RuntimeError(f"bench: {process.label} exited at start (code {process.popen.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: {process.label} not ready on {process.address} in {START_TIMEOUT_S:.0f} s")
        time.sleep(0.1)


def _stop(processes: Sequence[_Process]) -> None:
    for process in processes:
        if process.popen.poll() is None:
            process.popen.terminate()
    for process in processes:
        try:
            process.popen.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()


@contextmanager
def services(people: Sequence[str], *, empty: bool = False, railway: bool = False) -> Iterator[dict[str, str]]:
    """A private Redis, a sanction service on it with restrictions imposed on `people` (one in ten), and, if asked,
    an empty grpc.aio SanctionService and a railway service asking the sanction one. Yields their addresses; every
    process is stopped on the way out, whatever happened."""
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis") as redis:
        sanction = f"127.0.0.1:{free_port()}"
        # One client stands for every platform: the railway service's per-platform rate is off, the bench measures
        # the service, not one platform's allowance.
        env = {**os.environ, "DEBAR_REDIS_URL": redis.url, "DEBAR_SANCTION_PORT": sanction.rsplit(":", 1)[1],
               "DEBAR_SANCTION_ADDRESS": sanction, "DEBAR_DATA_DIR": tmp, "DEBAR_LOG_FORMAT": "json",
               "DEBAR_PLATFORM_RATE_CHECKS": "0"}  # fmt: skip
        processes: list[_Process] = []
        waits: list[tuple[_Process, Callable[[str], bool]]] = []
        try:

            def serve(name: str, address: str) -> None:
                popen = subprocess.Popen([sys.executable, "-m", "debar.cli.main", "serve", name],
                                         env={**env, f"DEBAR_{name.upper()}_PORT": address.rsplit(":", 1)[1]},
                                         stderr=subprocess.DEVNULL)  # fmt: skip
                processes.append(_Process(name, popen, address))
                waits.append((processes[-1], _serving))  # SERVING once Redis (or the sanction service) answers

            serve("sanction", sanction)
            addresses = {"sanction": sanction}
            if empty:
                addresses["empty"] = f"127.0.0.1:{free_port()}"
                popen = subprocess.Popen([sys.executable, "-m", "debar.bench.empty_server",
                                          addresses["empty"].rsplit(":", 1)[1]])  # fmt: skip
                processes.append(_Process("empty server", popen, addresses["empty"]))
                waits.append((processes[-1], _port_open))
            if railway:
                addresses["railway"] = f"127.0.0.1:{free_port()}"
                serve("railway", addresses["railway"])
            deadline = time.monotonic() + START_TIMEOUT_S
            for process, ready in waits:
                _wait_ready(process, ready, deadline)
            impose(sanction, people)
            yield addresses
        finally:
            _stop(processes)


def _check(people: Sequence[str]) -> Callable[[int], sanction_pb2.CheckRequest]:
    def one(n: int) -> sanction_pb2.CheckRequest:
        return sanction_pb2.CheckRequest(subject=subject(people[n % len(people)]), measure="RAIL_G_TRAIN")

    return one


def _denied(response: sanction_pb2.CheckResponse) -> bool:
    return bool(response.outcome == common_pb2.OUTCOME_DENY)


def run(seconds: float = 5.0, in_flight: int = 16, subjects: int = 10_000) -> int:
    people = make_people(subjects)
    one = _check(people)

    def batch(n: int) -> sanction_pb2.BatchCheckRequest:
        return sanction_pb2.BatchCheckRequest(items=[one(n * 100 + k) for k in range(100)])

    with services(people, empty=True) as at:
        sanction_stub, empty, sanction = sanction_pb2_grpc.SanctionServiceStub, at["empty"], at["sanction"]
        results = measure([
            Load("empty Check", empty, sanction_stub, "Check", one),
            Load("debar Check", sanction, sanction_stub, "Check", one),
            Load("empty BatchCheck(100)", empty, sanction_stub, "BatchCheck", batch),
            Load("debar BatchCheck(100)", sanction, sanction_stub, "BatchCheck", batch),
        ], seconds, in_flight)  # fmt: skip
    print(f"{'path':<24}{'calls/s':>10}{'subjects/s':>12}{'p50 ms':>9}{'p99 ms':>9}")
    for label, f in results.items():
        per = 100 if "Batch" in label else 1
        print(f"{label:<24}{f.rate:>10.0f}{f.rate * per:>12.0f}{f.pct(0.5):>9.2f}{f.pct(0.99):>9.2f}")
    _print_errors(results)
    check_ratio = results["debar Check"].rate / results["empty Check"].rate
    batch_rate = results["debar BatchCheck(100)"].rate * 100
    print(f"\nCheck ratio to the empty handler: {check_ratio:.2f} (target >= 0.8)")
    print(f"BatchCheck of 100: {batch_rate:.0f} subjects/s (target >= 100,000)")
    mean_ms = statistics.mean(results["debar Check"].latencies_ms)
    print(f"({in_flight} in flight, {seconds:.0f} s per path, {subjects} subjects, 1 in 10 restricted, "
          f"every decision logged; mean Check latency {mean_ms:.2f} ms)")  # fmt: skip
    return 0


def run_railway(seconds: float = 5.0, in_flight: int = 16, subjects: int = 10_000) -> int:
    people = make_people(subjects)
    one = _check(people)

    def pair(n: int) -> sanction_pb2.BatchCheckRequest:  # what the railway service asks for one G-train ticket
        person = subject(people[n % len(people)])
        return sanction_pb2.BatchCheckRequest(items=[sanction_pb2.CheckRequest(subject=person, measure=name)
                                                     for name in ("RAIL_G_TRAIN", "RAIL_TICKET_BAN")])  # fmt: skip

    def ticket(n: int) -> railway_pb2.CheckTicketRequest:
        return railway_pb2.CheckTicketRequest(
            passenger=subject(people[n % len(people)]), train_number="G123", seat_class=railway_pb2.SEAT_CLASS_SECOND
        )

    def batch_denied(response: sanction_pb2.BatchCheckResponse) -> bool:
        return any(_denied(result.response) for result in response.results)

    with services(people, railway=True) as at:
        sanction_stub, sanction = sanction_pb2_grpc.SanctionServiceStub, at["sanction"]
        results = measure([
            Load("direct Check", sanction, sanction_stub, "Check", one, _denied),
            Load("direct BatchCheck(2)", sanction, sanction_stub, "BatchCheck", pair, batch_denied),
            Load("railway CheckTicket", at["railway"], railway_pb2_grpc.RailwayServiceStub, "CheckTicket", ticket,
                  lambda verdict: not verdict.allowed),
        ], seconds, in_flight)  # fmt: skip
    print(f"{'path':<24}{'verdicts/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'refused':>9}")
    for label, f in results.items():
        print(f"{label:<24}{f.rate:>11.0f}{f.pct(0.5):>9.2f}{f.pct(0.99):>9.2f}{f.refused / f.calls:>9.1%}")
    _print_errors(results)
    ratio = results["railway CheckTicket"].rate / results["direct Check"].rate
    print(f"\nCheckTicket ratio to a direct Check: {ratio:.2f} (target >= 0.5)")
    print(f"({in_flight} in flight, {seconds:.0f} s per path, {subjects} subjects, 1 in 10 restricted, every "
          "decision logged;\n G-train second class: each CheckTicket is one BatchCheck of RAIL_G_TRAIN + "
          "RAIL_TICKET_BAN)")  # fmt: skip
    return 0


def _print_errors(results: dict[str, Figures]) -> None:
    for label, f in results.items():
        if f.errors:
            print(f"{label}: failed calls, not counted above: {f.errors}")
