"""Failover soak (bounded in time, loopback only): load on Check, BatchCheck and the railway service while a Redis
master is SIGKILLed, on Sentinel (1 master, 2 replicas, 3 Sentinels) and on Redis Cluster (3 masters, 3 replicas);
its replica is promoted, the old master is restarted later. Every decision id returned to a client is in the log
afterwards, no call outlives its deadline, checks recover within the bound, the log verifies (`debar log verify`),
health follows. Then a replica cut off (SIGSTOP) with DEBAR_REDIS_MIN_REPLICAS above what is left: no fail-closed
check is answered while its log record is not replicated. Run with `-s` to see the figures."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from debar.local.embedded_redis import EmbeddedRedis
from debar.local.local_replicas import ReplicatedCluster, SentinelGroup, pause, resume
from debar.v1 import (
    common_pb2,
    decision_pb2,
    decision_pb2_grpc,
    railway_pb2,
    railway_pb2_grpc,
    registry_pb2_grpc,
    sanction_pb2,
    sanction_pb2_grpc,
)
from tests.support.keys import log_signing_key_file_for_tests
from tests.support.requests import check_request, impose_request, subject
from tests.support.servers import ServiceProcess, health_status, start_service, wait_for
from tests.support.subjects import new_ric

SPOOLED: set[str] = set()  # the ids answered as fail-open and spooled (DEGRADATION_FAILED_OPEN_SPOOLED)

KEYS = "t1:test-secret-one-at-least-32-bytes"
DEADLINE_S = 2.0
STEADY_S = 2.0
OPEN, CLOSED = "RAIL_TICKET_BAN", "RAIL_G_TRAIN"  # fails open (spooled) / fails closed (UNAVAILABLE)
SENTINEL_BOUND_S = 10.0
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]
CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


@dataclass
class Call:
    kind: str
    code: str
    started: float
    ended: float
    ids: list[str]
    degraded: bool  # failed, or answered only through the fail-open spool


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: list[Call] = field(default_factory=list)

    def record(self, kind: str, code: str, started: float, ids: list[str], degraded: bool) -> None:
        with self.lock:
            self.calls.append(Call(kind, code, started, time.monotonic(), ids, degraded))

    def codes(self) -> Counter[str]:
        return Counter(f"{c.kind} {c.code}" for c in self.calls)

    def ids(self) -> list[str]:
        return list(dict.fromkeys(i for c in self.calls for i in c.ids))

    def slowest(self) -> float:
        return max((c.ended - c.started for c in self.calls), default=0.0)

    def answered_closed_between(self, start: float, end: float) -> list[Call]:
        """Fail-closed checks asked after `start` and answered before `end`."""
        return [
            c for c in self.calls if c.kind.endswith(CLOSED) and c.code == "OK" and start < c.started < c.ended < end
        ]


def _checks(address: str, people: list[str], stop: threading.Event, tally: Tally) -> None:
    with grpc.insecure_channel(address) as channel:
        stub = sanction_pb2_grpc.SanctionServiceStub(channel)
        n = 0
        while not stop.is_set():
            n += 1
            measure = OPEN if n % 2 else CLOSED
            started = time.monotonic()
            try:
                answer = stub.Check(check_request(people[n % len(people)], measure), timeout=DEADLINE_S)
                spooled = answer.degradation == sanction_pb2.DEGRADATION_FAILED_OPEN_SPOOLED
                if spooled:
                    SPOOLED.add(answer.decision_id)
                tally.record(f"check {measure}", "OK", started, [answer.decision_id], spooled)
            except grpc.RpcError as error:
                tally.record(f"check {measure}", error.code().name, started, [], True)
                time.sleep(0.01)


def _batches(address: str, people: list[str], stop: threading.Event, tally: Tally) -> None:
    with grpc.insecure_channel(address) as channel:
        stub = sanction_pb2_grpc.SanctionServiceStub(channel)
        n = 0
        while not stop.is_set():
            n += 1
            items = [check_request(people[(n * 5 + k) % len(people)], CLOSED if k % 2 else OPEN) for k in range(4)]
            started = time.monotonic()
            try:
                answer = stub.BatchCheck(sanction_pb2.BatchCheckRequest(items=items), timeout=DEADLINE_S)
            except grpc.RpcError as error:
                tally.record("batch", error.code().name, started, [], True)
                time.sleep(0.01)
                continue
            ids = [r.response.decision_id for r in answer.results if r.HasField("response")]
            spooled_ids = [
                r.response.decision_id for r in answer.results
                if r.HasField("response") and r.response.degradation == sanction_pb2.DEGRADATION_FAILED_OPEN_SPOOLED
            ]  # fmt: skip
            SPOOLED.update(spooled_ids)
            errors = [r.error.code for r in answer.results if r.HasField("error")]
            # A closed item answered while its record is not replicated would show as an OK item: counted apart.
            closed_ok = [r for k, r in enumerate(answer.results) if k % 2 and r.HasField("response")]
            shown = "+".join(sorted({CODE_NAMES.get(e, str(e)) for e in errors}))
            tally.record(
                "batch", f"OK, items {shown}" if errors else "OK", started, ids,
                bool(errors) or bool(spooled_ids),
            )  # fmt: skip
            if closed_ok:
                tally.record(f"batch item {CLOSED}", "OK", started, [r.response.decision_id for r in closed_ok], False)
            if errors and set(errors) != {UNAVAILABLE}:
                tally.record("batch item", f"unexpected {set(errors)}", started, [], True)


def _tickets(address: str, people: list[str], stop: threading.Event, tally: Tally) -> None:
    with grpc.insecure_channel(address) as channel:
        stub = railway_pb2_grpc.RailwayServiceStub(channel)
        n = 0
        while not stop.is_set():
            n += 1
            request = railway_pb2.CheckTicketRequest(
                passenger=subject(people[n % len(people)]),
                train_number="G123",
                seat_class=railway_pb2.SEAT_CLASS_SECOND,
            )
            started = time.monotonic()
            try:
                verdict = stub.CheckTicket(request, timeout=DEADLINE_S)
                ids = list(verdict.decision_ids)
                SPOOLED.update(verdict.spooled_decision_ids)
                tally.record("ticket", "OK", started, ids, bool(verdict.spooled_decision_ids))
            except grpc.RpcError as error:
                tally.record("ticket", error.code().name, started, [], True)
                time.sleep(0.01)


class HealthWatch:
    """Polls the sanction service's health every 0.1 s, keeping each change with its time."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.changes: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            status = health_status(self.address)
            if not self.changes or self.changes[-1][1] != status:
                self.changes.append((time.monotonic(), status))
            time.sleep(0.1)

    def __enter__(self) -> HealthWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=3)

    def shown(self, origin: float) -> str:
        return ", ".join(f"{at - origin:+.1f}s {status}" for at, status in self.changes)


@dataclass
class Services:
    sanction: ServiceProcess
    railway: ServiceProcess
    env: dict[str, str]


def _services(env: dict[str, str], tmp_path: Path, logs_dir: Path, started: list[ServiceProcess]) -> Services:
    env = {"DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path / "data"), "DEBAR_PLAINTEXT": "true", **env}
    sanction = start_service("sanction", env, logs_dir)
    started.append(sanction)
    railway = start_service("railway", {**env, "DEBAR_SANCTION_ADDRESS": sanction.address}, logs_dir)
    started.append(railway)
    return Services(sanction, railway, env)


@contextlib.contextmanager
def _load(services: Services, people: list[str]) -> Iterator[Tally]:
    """Two Check clients, one BatchCheck client, two railway clients, until the block ends."""
    tally, stop = Tally(), threading.Event()
    sanction, railway = services.sanction.address, services.railway.address
    targets: list[tuple[Callable[..., None], str]] = [(_checks, sanction), (_checks, sanction), (_batches, sanction)]
    targets += [(_tickets, railway), (_tickets, railway)]
    workers = [threading.Thread(target=t, args=(a, people, stop, tally)) for t, a in targets]
    for worker in workers:
        worker.start()
    try:
        yield tally
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=DEADLINE_S + 2)


def _impose(address: str, people: list[str]) -> None:
    with grpc.insecure_channel(address) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        for person in people:
            registry.Impose(impose_request(person), timeout=5)


def _missing(address: str, ids: list[str]) -> list[tuple[str, str]]:
    """The ids a client was given that the log does not have (each asked until the spool's replay is done)."""
    missing = []
    with grpc.insecure_channel(address) as channel:
        decisions = decision_pb2_grpc.DecisionServiceStub(channel)
        for decision_id in ids:
            deadline = time.monotonic() + 10
            while True:
                try:
                    decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=decision_id), timeout=5)
                    break
                except grpc.RpcError as error:
                    if time.monotonic() > deadline:
                        missing.append((decision_id, error.code().name))
                        break
                    time.sleep(0.2)
    return missing


def _log_verify(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "log", "verify"], capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "DEBAR_LOG_SIGNING_KEY": log_signing_key_file_for_tests(), **env},
    )  # fmt: skip


def _recovery_s(tally: Tally, killed_at: float) -> float:
    """From the kill to the end of the last call that failed or was only spooled (checks and tickets answer
    normally from then on)."""
    ends = [c.ended for c in tally.calls if c.degraded and c.ended > killed_at]
    return max(ends, default=killed_at) - killed_at


def _print_figures(title: str, tally: Tally, missing: list[tuple[str, str]], extra: list[str]) -> None:
    print(f"\n{title} figures (2 shared cores, other engineers' tests running):")
    for key, count in sorted(tally.codes().items()):
        print(f"  {key:<40} {count}")
    ids = tally.ids()
    spooled = sum(1 for i in ids if i in SPOOLED)
    print(f"  decision ids returned {len(ids)} (spooled {spooled}), found in the log {len(ids) - len(missing)}")
    print(f"  slowest call {tally.slowest():.2f} s (deadline {DEADLINE_S} s)")
    for line in extra:
        print(f"  {line}")


def _assert_clean(tally: Tally, missing: list[tuple[str, str]], verified: subprocess.CompletedProcess[str]) -> None:
    assert not missing, missing[:5]
    codes = tally.codes()
    assert not [k for k in codes if "DEADLINE_EXCEEDED" in k or "unexpected" in k], codes
    assert tally.slowest() < DEADLINE_S
    assert {k.split(" ")[-1] for k in codes if not k.startswith("batch")} <= {"OK", "UNAVAILABLE"}, codes
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _refused_decision(address: str, person: str) -> str:
    with grpc.insecure_channel(address) as channel:
        answer = sanction_pb2_grpc.SanctionServiceStub(channel).Check(check_request(person, CLOSED), timeout=5)
    assert answer.outcome == common_pb2.OUTCOME_DENY, answer
    return str(answer.decision_id)


def _writes(address: str, person: str, refused_id: str) -> dict[str, str]:
    """A registry write and an objection write, each by its status."""
    objection = decision_pb2.FileObjectionRequest(decision_id=refused_id, statement="not me", contact="x@y.z")
    found = {}
    with grpc.insecure_channel(address) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        decisions = decision_pb2_grpc.DecisionServiceStub(channel)
        calls: dict[str, Callable[[], object]] = {
            "impose": lambda: registry.Impose(impose_request(person), timeout=DEADLINE_S),
            "objection": lambda: decisions.FileObjection(objection, timeout=DEADLINE_S),
        }
        for name, call in calls.items():
            try:
                call()
                found[name] = "OK"
            except grpc.RpcError as error:
                found[name] = error.code().name
    return found


def _stop_all(started: list[ServiceProcess]) -> Callable[[], None]:
    def stop() -> None:
        for service in reversed(started):
            service.stop()

    return stop


def _closed_ok_after(tally: Tally, moment: float) -> Callable[[], bool]:
    return lambda: bool(tally.answered_closed_between(moment, float("inf")))


def _timeline(tally: Tally, origin: float) -> str:
    """Calls by second from `origin` and outcome (shown when a wait fails)."""
    seconds: dict[int, Counter[str]] = {}
    for c in tally.calls:
        seconds.setdefault(int(c.ended - origin), Counter())[f"{c.kind} {c.code}"] += 1
    return "\n".join(f"{second:+d}s {dict(counts)}" for second, counts in sorted(seconds.items()))


def test_sentinel_failover_loses_no_acknowledged_decision(tmp_path, logs_dir, request):
    group = SentinelGroup(tmp_path / "redis")
    request.addfinalizer(group.stop)
    group.start()
    started: list[ServiceProcess] = []
    request.addfinalizer(_stop_all(started))
    env = {"DEBAR_REDIS_SENTINELS": group.sentinels, "DEBAR_REDIS_SENTINEL_MASTER": group.master_name}
    services = _services(env, tmp_path, logs_dir, started)
    people = [new_ric() for _ in range(40)]
    _impose(services.sanction.address, people[:10])
    old = group.servers[0]
    restarted = EmbeddedRedis(old.data_dir, old.port)  # as it was started: the Sentinels make it a replica
    request.addfinalizer(restarted.stop)
    with HealthWatch(services.sanction.address) as health, _load(services, people) as tally:
        time.sleep(STEADY_S)
        killed_at = time.monotonic()
        old.stop(kill=True)
        assert wait_for(lambda: group.master_port() not in (None, old.port), timeout_s=SENTINEL_BOUND_S)
        promoted_s = time.monotonic() - killed_at
        assert wait_for(_closed_ok_after(tally, time.monotonic()), timeout_s=SENTINEL_BOUND_S), _timeline(
            tally, killed_at
        )
        time.sleep(STEADY_S)
        restarted.start()
        restarted_s = time.monotonic() - killed_at
        time.sleep(STEADY_S)
    recovery_s = _recovery_s(tally, killed_at)
    missing = _missing(services.sanction.address, tally.ids())
    verified = _log_verify(services.env)
    _print_figures(
        "Sentinel failover (1 master, 2 replicas, 3 Sentinels, down-after 1 s)", tally, missing,
        [f"replica promoted {promoted_s:.1f} s after the kill; old master restarted at {restarted_s:.1f} s",
         f"checks recovered {recovery_s:.1f} s after the kill (bound {SENTINEL_BOUND_S:.0f} s)",
         f"health: {health.shown(killed_at)}", verified.stdout.strip()],
    )  # fmt: skip
    _assert_clean(tally, missing, verified)
    assert tally.codes()[f"check {CLOSED} OK"] > 50 and tally.codes()["ticket OK"] > 20
    assert recovery_s < SENTINEL_BOUND_S
    assert "NOT_SERVING" in {status for at, status in health.changes if at > killed_at}
    assert health.changes[-1][1] == "SERVING"


def test_cluster_failover_loses_no_acknowledged_decision(tmp_path, logs_dir, request):
    cluster = ReplicatedCluster(tmp_path / "cluster", node_timeout_ms=2000)
    request.addfinalizer(cluster.stop)
    cluster.start()
    bound_s = cluster.node_timeout_ms / 1000 + 5
    started: list[ServiceProcess] = []
    request.addfinalizer(_stop_all(started))
    env = {"DEBAR_REDIS_CLUSTER": "true", "DEBAR_REDIS_URL": cluster.nodes[0].url}
    services = _services(env, tmp_path, logs_dir, started)
    people = [new_ric() for _ in range(40)]
    _impose(services.sanction.address, people[:10])
    victim, its_replica = cluster.nodes[1], cluster.replicas[1]
    restarted = EmbeddedRedis(victim.data_dir, victim.port, extra_args=cluster.options)
    request.addfinalizer(restarted.stop)
    with HealthWatch(services.sanction.address) as health, _load(services, people) as tally:
        time.sleep(STEADY_S)
        killed_at = time.monotonic()
        victim.stop(kill=True)
        assert wait_for(lambda: cluster.role(its_replica) == "master", timeout_s=bound_s)
        promoted_s = time.monotonic() - killed_at
        # The promoted replica has no replica of its own until the old master is back (as a Kubernetes pod
        # restarts): till then its shard's writes cannot be replicated, so they are refused, never acknowledged.
        restarted.start()
        restarted_s = time.monotonic() - killed_at
        assert wait_for(_closed_ok_after(tally, time.monotonic()), timeout_s=bound_s)
        time.sleep(STEADY_S * 1.5)
    recovery_s = _recovery_s(tally, killed_at)
    missing = _missing(services.sanction.address, tally.ids())
    verified = _log_verify(services.env)
    _print_figures(
        f"Cluster failover (3 masters, 3 replicas, node timeout {cluster.node_timeout_ms} ms)", tally, missing,
        [f"replica promoted {promoted_s:.1f} s after the kill; old master restarted at {restarted_s:.1f} s "
         f"(role now: {cluster.role(restarted)})",
         f"checks recovered {recovery_s:.1f} s after the kill (bound: node timeout + 5 s = {bound_s:.0f} s)",
         f"health: {health.shown(killed_at)}", verified.stdout.strip()],
    )  # fmt: skip
    _assert_clean(tally, missing, verified)
    assert tally.codes()[f"check {CLOSED} OK"] > 50 and tally.codes()["ticket OK"] > 20
    assert recovery_s < bound_s
    assert "NOT_SERVING" in {status for at, status in health.changes if at > killed_at}
    assert health.changes[-1][1] == "SERVING"


def test_a_cut_off_replica_fails_closed_under_min_replicas(tmp_path, logs_dir, request):
    """Two replicas, DEBAR_REDIS_MIN_REPLICAS=2, one replica stopped (its connections stay open, it answers
    nothing: a cut network): no fail-closed check is answered while it is away, the fail-open ones are spooled,
    health says NOT_SERVING; once it is back, checks resume by themselves and every id is in the log."""
    group = SentinelGroup(tmp_path / "redis")
    request.addfinalizer(group.stop)
    group.start()
    request.addfinalizer(lambda: resume(group.servers[2]))
    started: list[ServiceProcess] = []
    request.addfinalizer(_stop_all(started))
    env = {"DEBAR_REDIS_SENTINELS": group.sentinels, "DEBAR_REDIS_SENTINEL_MASTER": group.master_name,
           "DEBAR_REDIS_MIN_REPLICAS": "2"}  # fmt: skip
    services = _services(env, tmp_path, logs_dir, started)
    people = [new_ric() for _ in range(40)]
    _impose(services.sanction.address, people[:10])
    refused_id = _refused_decision(services.sanction.address, people[0])
    with HealthWatch(services.sanction.address) as health, _load(services, people) as tally:
        time.sleep(STEADY_S)
        pause(group.servers[2])  # returns once the process is stopped: a write from now on cannot reach it
        paused_at = time.monotonic()
        time.sleep(STEADY_S)
        writes_cut_off = _writes(services.sanction.address, people[1], refused_id)
        time.sleep(STEADY_S)
        resumed_at = time.monotonic()  # a call answered before this had its record confirmed without the replica
        resume(group.servers[2])
        assert wait_for(_closed_ok_after(tally, resumed_at), timeout_s=10)
        time.sleep(STEADY_S)
        writes_back = _writes(services.sanction.address, people[1], refused_id)
        wait_for(lambda: health.changes[-1][1] == "SERVING", timeout_s=10)  # asserted below, with the figures
    answered_unreplicated = tally.answered_closed_between(paused_at, resumed_at)
    during = [c for c in tally.calls if paused_at < c.started and c.ended < resumed_at]
    spooled = sum(1 for c in during for i in c.ids if i in SPOOLED)
    refused = sum(1 for c in during if c.code == "UNAVAILABLE" or "items" in c.code)
    recovery_s = _recovery_s(tally, resumed_at)
    missing = _missing(services.sanction.address, tally.ids())
    verified = _log_verify(services.env)
    _print_figures(
        "Replica cut off (SIGSTOP) with DEBAR_REDIS_MIN_REPLICAS=2 of 2", tally, missing,
        [f"while cut off ({resumed_at - paused_at:.1f} s): fail-closed checks answered {len(answered_unreplicated)}, "
         f"calls refused {refused}, fail-open decisions spooled {spooled}",
         f"registry and objection writes while cut off: {writes_cut_off}; once it is back: {writes_back}",
         f"checks recovered {recovery_s:.1f} s after the replica came back",
         f"health: {health.shown(paused_at)}", verified.stdout.strip()],
    )  # fmt: skip
    _assert_clean(tally, missing, verified)
    assert not answered_unreplicated, [(c.kind, c.started - paused_at, c.ended - paused_at, c.ids)
                                       for c in answered_unreplicated]  # fmt: skip
    assert refused > 0 and spooled > 0
    assert writes_cut_off == {"impose": "UNAVAILABLE", "objection": "UNAVAILABLE"}
    # A write refused as not replicated may still be on the master (WAIT cannot take it back); resent, an Impose is
    # the same record (OK, unchanged) and a filing meets itself: ALREADY_EXISTS naming its id is the answer then.
    assert writes_back["impose"] == "OK"
    assert writes_back["objection"] in {"OK", "ALREADY_EXISTS"}, writes_back
    assert "NOT_SERVING" in {status for at, status in health.changes if paused_at < at < resumed_at + 0.5}
    assert health.changes[-1][1] == "SERVING"
