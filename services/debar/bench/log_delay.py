"""The transparency log's figures in `debar bench`: under full Check load on the sanction service (the first mix,
sent by the run's generators), how long a decision takes from its answer to a signed checkpoint that includes it
(the integration delay, p50/p99), and the integrator's CPU per 1000 entries and share of one core.

- Delay: PROBES threads each ask one Check at a time beside the load, then GetDecisionProof every 10 ms until the
  receipt exists (as `reviewer:bench`: decisions:read, and any decision by its id); delay = receipt time - answer
  time, so each figure is up to 10 ms high. Each thread probes again 50 ms after its receipt came.
- CPU: the sanction server's own counters (debar_log_integrator_cpu_seconds_total: process CPU time of the
  integration steps that added leaves; debar_log_integrated_leaves_total), read before and after the window.
- CatchUp: before a round that must not share the machine with integration (and before each of debar's own, so
  that none pays for the one before), waits until the integrator has caught up with what earlier rounds sequenced:
  one more decision's receipt exists and no leaf was integrated for QUIET_S."""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from debar.bench.generator import Load, LoadGenerator
from debar.bench.targets import Server
from debar.rpc.callers import CALLER_HEADER
from debar.v1 import decision_pb2, decision_pb2_grpc, sanction_pb2, sanction_pb2_grpc

TARGET_DELAY_P99_S = 2.0
TARGET_CORE_SHARE = 0.10
POLL_S = 0.01
PROBE_EVERY_S = 0.05
PROBES = 8  # threads probing at once: enough samples for a p99 in a few seconds
QUIET_S = 1.0  # no leaf integrated for this long (four idle steps): caught up
CATCH_UP_TIMEOUT_S = 60.0
_COUNTER = re.compile(r"^(debar_log_integrated_leaves_total|debar_log_integrator_cpu_seconds_total) (\S+)$", re.M)


@dataclass
class LogFigures:
    seconds: float
    delays_s: list[float] = field(default_factory=list)
    leaves: float = 0.0
    cpu_s: float = 0.0
    lost: int = 0  # probes whose receipt never came within 10 s
    load_rate: float = 0.0

    def delay_ms(self, q: float) -> float:
        if not self.delays_s:
            return float("nan")
        ordered = sorted(self.delays_s)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def cpu_ms_per_1000(self) -> float:
        return 1000 * self.cpu_s / self.leaves * 1000 if self.leaves else float("nan")

    @property
    def core_share(self) -> float:
        return self.cpu_s / self.seconds if self.seconds else float("nan")

    def lines(self) -> list[str]:
        p50, p99 = self.delay_ms(0.5), self.delay_ms(0.99)
        return [
            f"  integration delay (answer -> in a signed checkpoint), {len(self.delays_s)} probes under "
            f"{self.load_rate:,.0f} Checks/s: p50 {p50:.0f} ms, p99 {p99:.0f} ms (p99 <= "
            f"{TARGET_DELAY_P99_S * 1000:.0f} ms): {'met' if p99 <= TARGET_DELAY_P99_S * 1000 else 'NOT met'}"
            + (f"; {self.lost} probes never integrated" if self.lost else ""),
            f"  integrator CPU: {self.cpu_ms_per_1000:.1f} ms per 1000 entries ({self.leaves:,.0f} entries), "
            f"{100 * self.core_share:.1f} % of one core (<= {100 * TARGET_CORE_SHARE:.0f} %): "
            f"{'met' if self.core_share <= TARGET_CORE_SHARE else 'NOT met'}",
        ]


def _counters(server: Server) -> tuple[float, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5) as answer:
        found = dict(_COUNTER.findall(answer.read().decode()))
    return float(found.get("debar_log_integrated_leaves_total", 0)), float(
        found.get("debar_log_integrator_cpu_seconds_total", 0)
    )


def _receipt(address: str, request: bytes, timeout_s: float) -> bool:
    """One Check, then its receipt asked for every 50 ms until it exists (True) or `timeout_s` passed; as a reviewer
    of its own (a reviewer's reads count against its rate: the delay probes' reviewer:bench keeps its whole)."""
    with grpc.insecure_channel(address) as channel:
        answer = sanction_pb2_grpc.SanctionServiceStub(channel).Check(
            sanction_pb2.CheckRequest.FromString(request), metadata=((CALLER_HEADER, "bench"),), timeout=10
        )
        asked = decision_pb2.GetDecisionProofRequest(decision_id=answer.decision_id)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                decision_pb2_grpc.DecisionServiceStub(channel).GetDecisionProof(
                    asked, metadata=((CALLER_HEADER, "reviewer:bench-catch-up"),), timeout=10
                )
                return True
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
            time.sleep(PROBE_EVERY_S)
    return False


@dataclass
class CatchUp:
    """Called before a round: returns once `sanction`'s integrator has integrated what earlier rounds sequenced
    (or CATCH_UP_TIMEOUT_S passed); `waits_s` keeps how long each call waited."""

    sanction: Server
    check_request: bytes
    waits_s: list[float] = field(default_factory=list)

    def __call__(self) -> None:
        started = time.monotonic()
        deadline = started + CATCH_UP_TIMEOUT_S
        if _receipt(self.sanction.address, self.check_request, CATCH_UP_TIMEOUT_S):
            leaves = _counters(self.sanction)[0]
            quiet_since = time.monotonic()
            while time.monotonic() - quiet_since < QUIET_S and time.monotonic() < deadline:
                time.sleep(0.1)
                now = _counters(self.sanction)[0]
                if now != leaves:
                    leaves, quiet_since = now, time.monotonic()
        self.waits_s.append(time.monotonic() - started)


def _probe(address: str, request: bytes, stop: threading.Event, figures: LogFigures) -> None:
    with grpc.insecure_channel(address) as channel:
        checks = sanction_pb2_grpc.SanctionServiceStub(channel)
        decisions = decision_pb2_grpc.DecisionServiceStub(channel)
        check = sanction_pb2.CheckRequest.FromString(request)
        probes = 0
        while not stop.is_set():
            answer = checks.Check(check, metadata=((CALLER_HEADER, "bench"),), timeout=10)
            answered = time.monotonic()
            asked = decision_pb2.GetDecisionProofRequest(decision_id=answer.decision_id)
            # A reviewer's reads are rated (1200 items a minute): polling as one reviewer ran past it and counted
            # RESOURCE_EXHAUSTED as receipts never given. Each probe asks as a reviewer of its own.
            probes += 1
            reviewer = (CALLER_HEADER, f"reviewer:bench-{threading.get_ident() % 1000}-{probes}")
            while True:
                try:
                    decisions.GetDecisionProof(asked, metadata=(reviewer,), timeout=10)
                    figures.delays_s.append(time.monotonic() - answered)
                    break
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() - answered > 10:
                        figures.lost += 1
                        break
                time.sleep(POLL_S)
            stop.wait(PROBE_EVERY_S)


def measure_log(
    generators: LoadGenerator, load: Load, processes: int, sanction: Server, seconds: float,
    progress: Callable[[str], None] = lambda _: None,
) -> LogFigures:  # fmt: skip
    """`load` (the first Check mix, on the sanction service) for `seconds`, with the probes beside it."""
    progress("the log: integration delay and integrator CPU under Check load")
    figures = LogFigures(seconds)
    stop = threading.Event()
    before: list[tuple[float, float]] = []
    probes = [
        threading.Thread(target=_probe, args=(sanction.address, load.request, stop, figures), daemon=True)
        for _ in range(PROBES)
    ]

    def started() -> None:
        before.append(_counters(sanction))
        for probe in probes:
            probe.start()

    samples = generators.run(load, seconds, processes, on_start=started)
    stop.set()
    for probe in probes:
        probe.join(timeout=15)
    leaves, cpu = _counters(sanction)
    figures.leaves, figures.cpu_s = leaves - before[0][0], cpu - before[0][1]
    figures.load_rate = sum(s.rate for s in samples)
    return figures
