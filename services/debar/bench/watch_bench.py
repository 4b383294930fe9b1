"""`debar bench watch`: subscriptions on a private Redis and a private `debar serve sanction`, over real gRPC:

- Impose throughput with no subscription held (fresh subjects);
- N subscriptions made through SubscribeBatch (1000 a call), and Redis `used_memory` per subscription (everything:
  the record, the owner's index, the subject's set, key overhead);
- Impose throughput with N held: on subjects no subscription holds, and on subscribed subjects (each Impose then
  makes a logged decision and a change);
- change delivery: an Impose on a subscribed subject, paced, with a Changes stream open; the time from sending the
  Impose to the change arriving (p50, p99, max), while N are held.

Server CPU per call comes from /proc (the machine is shared: wall-clock figures move with its load)."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import grpc
import redis
from stdnum.cn import ric

from debar.bench.targets import cpu_seconds
from debar.local.embedded_redis import EmbeddedRedis, free_port
from debar.v1 import common_pb2, registry_pb2, registry_pb2_grpc, watch_pb2, watch_pb2_grpc

OWNER = "platform:bench"
CLERK = (("x-debar-caller", "clerk:bench"),)
AS_OWNER = (("x-debar-caller", OWNER),)
MEASURE = "HOTEL_STAR_RATED"
BATCH = 1000
TARGET_DELIVERY_S = 1.0
WARM_UP = 20


def people(start: int, count: int) -> list[str]:
    """Distinct valid resident identity numbers (adults: born 1960 on), `count` of them from index `start`."""
    out = []
    for i in range(start, start + count):
        born = (date(1960, 1, 1) + timedelta(days=i // 1000)).strftime("%Y%m%d")
        body = f"110105{born}{i % 1000:03d}"
        out.append(body + ric.calc_check_digit(body + "0"))
    return out


def _subject(person: str) -> common_pb2.Subject:
    return common_pb2.Subject(id_type=common_pb2.ID_TYPE_RIC, id=person)


def _impose(person: str, i: int, tag: str) -> registry_pb2.ImposeRequest:
    request = registry_pb2.ImposeRequest(
        source="court_consumption_order", source_id=f"wb-{tag}-{i}", subject=_subject(person),
        legal_basis="SPC Art. 3", authority="Bench Court", case_number=f"WB-{tag}-{i}", measures=[MEASURE],
    )  # fmt: skip
    request.effective_from.FromSeconds(int(time.time()) - 86400)
    return request


@dataclass
class Rate:
    label: str
    calls: int
    seconds: float
    server_cpu_s: float

    def line(self) -> str:
        per_call_ms = 1e3 * self.server_cpu_s / self.calls
        return f"  {self.label:<46} {self.calls / self.seconds:8.0f} /s   server CPU {per_call_ms:6.2f} ms/call"


async def _imposes(address: str, pid: int, label: str, persons: Sequence[str], tag: str, in_flight: int = 16) -> Rate:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        requests = [_impose(p, i, tag) for i, p in enumerate(persons)]
        queue = list(reversed(requests))

        async def worker() -> None:
            while queue:
                await stub.Impose(queue.pop(), metadata=CLERK, timeout=30)

        cpu0, t0 = cpu_seconds(pid) or 0.0, time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        seconds, cpu = time.perf_counter() - t0, (cpu_seconds(pid) or 0.0) - cpu0
    return Rate(label, len(persons), seconds, cpu)


async def _subscribe(address: str, persons: Sequence[str], in_flight: int = 2) -> float:
    until = int(time.time()) + 30 * 86400
    async with grpc.aio.insecure_channel(address) as channel:
        stub = watch_pb2_grpc.WatchServiceStub(channel)
        batches = [persons[i : i + BATCH] for i in range(0, len(persons), BATCH)]
        queue = list(reversed(batches))
        done = 0
        retried: list[str] = []

        async def worker() -> None:
            nonlocal done
            while queue:
                batch = queue.pop()
                request = watch_pb2.SubscribeBatchRequest(
                    items=[
                        watch_pb2.SubscribeRequest(subject=_subject(p), measures=[MEASURE], tag=f"o-{p[-6:]}")
                        for p in batch
                    ]
                )
                for item in request.items:
                    item.until.FromSeconds(until)
                for attempt in range(5):  # a busy machine: a Redis call may pass DEBAR_REDIS_TIMEOUT_S now and then
                    try:
                        answer = await stub.SubscribeBatch(request, metadata=AS_OWNER, timeout=120)
                        break
                    except grpc.aio.AioRpcError as error:
                        if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == 4:
                            raise
                        retried.append(error.details() or "")
                        await asyncio.sleep(0.5)
                bad = [r.error.message for r in answer.results if r.HasField("error")]
                if bad:
                    raise RuntimeError(f"bench: subscribe failed: {bad[0]}")
                done += len(batch)
                if done % 50_000 < BATCH:
                    print(f"    {done} subscribed", file=sys.stderr, flush=True)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        if retried:
            print(f"  ({len(retried)} SubscribeBatch calls retried after UNAVAILABLE)", flush=True)
        return time.perf_counter() - t0


async def _delivery(address: str, persons: Sequence[str], pace_s: float) -> list[float]:
    """Subscribes `persons`, then imposes on each in turn, timing each change's arrival on an open stream."""
    until = int(time.time()) + 30 * 86400
    async with grpc.aio.insecure_channel(address) as channel:
        watch = watch_pb2_grpc.WatchServiceStub(channel)
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        request = watch_pb2.SubscribeBatchRequest(
            items=[watch_pb2.SubscribeRequest(subject=_subject(p), measures=[MEASURE]) for p in persons]
        )
        for item in request.items:
            item.until.FromSeconds(until)
        answer = await watch.SubscribeBatch(request, metadata=AS_OWNER)
        bad = [r.error.message for r in answer.results if r.HasField("error")]
        if bad:
            raise RuntimeError(f"bench: subscribe failed: {bad[0]}")
        ids = [r.subscription.subscription_id for r in answer.results]
        stream = watch.Changes(watch_pb2.ChangesRequest(after_cursor=f"{int(time.time() * 1000)}-0"), metadata=AS_OWNER)
        arrived: dict[str, float] = {}

        async def listen() -> None:
            async for change in stream:
                if change.kind == watch_pb2.CHANGE_KIND_BECAME_RESTRICTED:
                    arrived.setdefault(change.subscription_id, time.perf_counter())

        listener = asyncio.create_task(listen())
        await asyncio.sleep(0.5)
        sent: dict[str, float] = {}
        for i, (person, sid) in enumerate(zip(persons, ids, strict=True)):
            sent[sid] = time.perf_counter()
            await registry.Impose(_impose(person, i, "lat"), metadata=CLERK)
            await asyncio.sleep(pace_s)
        deadline = time.perf_counter() + 10
        while len(arrived) < len(ids) and time.perf_counter() < deadline:  # noqa: ASYNC110 (a bounded poll)
            await asyncio.sleep(0.05)
        stream.cancel()
        listener.cancel()
        missing = [s for s in ids if s not in arrived]
        if missing:
            print(f"  !! {len(missing)} changes did not arrive within 10 s", flush=True)
        return [arrived[s] - sent[s] for s in ids if s in arrived]


def _memory(port: int) -> int:
    with redis.Redis(port=port) as client:
        return int(client.info("memory")["used_memory"])


def _due(port: int) -> int:
    with redis.Redis(port=port) as client:
        return int(client.zcount("debar:watch:due", "-inf", time.time()))  # due now (not a later window's boundary)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_watch(subscriptions: int, imposes: int, deliveries: int) -> int:
    load = os.getloadavg()[0]
    print(f"debar bench watch: {subscriptions} subscriptions, {imposes} imposes per throughput figure, "
          f"{deliveries} timed deliveries; load average {load:.1f} on {os.cpu_count()} cores")  # fmt: skip
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedRedis(Path(tmp) / "redis") as server,
        open(Path(tempfile.gettempdir()) / "debar-bench-watch-server.log", "wb") as server_log,
    ):
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DEBAR_")},
            "DEBAR_REDIS_URL": server.url, "DEBAR_DATA_DIR": tmp, "DEBAR_SANCTION_PORT": str(port),
            "DEBAR_WATCH_MAX_SUBSCRIPTIONS": str(subscriptions + deliveries + WARM_UP + 10), "DEBAR_LOG_FORMAT": "json",
            # The embedded Redis fsyncs every write (appendfsync always): on a shared disk a batch's fsync can stall it
            # past the default 0.5 s, which would open the circuit; a bench measures, it does not test outages.
            "DEBAR_REDIS_TIMEOUT_S": "5",
        }  # fmt: skip
        popen = subprocess.Popen(
            [sys.executable, "-m", "debar.cli.main", "serve", "sanction"], env=env, stderr=server_log
        )
        try:
            address = f"127.0.0.1:{port}"
            with grpc.insecure_channel(address) as channel:
                grpc.channel_ready_future(channel).result(timeout=30)
            time.sleep(1)
            pool = people(0, subscriptions + 3 * imposes + deliveries + 2 * WARM_UP)
            subscribed, rest = pool[:subscriptions], pool[subscriptions:]
            fresh_a, fresh_b, latency = rest[:imposes], rest[imposes : 2 * imposes], rest[2 * imposes :]
            warm, latency = latency[:WARM_UP], latency[WARM_UP:]
            asyncio.run(_imposes(address, popen.pid, "warm-up", warm, "w"))  # scripts loaded, caches filled
            rates = [asyncio.run(_imposes(address, popen.pid, "Impose, no subscription held", fresh_a, "a"))]
            before = _memory(server.port)
            seconds = asyncio.run(_subscribe(address, subscribed))
            while _due(server.port):  # nothing should be due: subscribing schedules no judging
                time.sleep(0.2)
            held = _memory(server.port) - before
            rates.append(asyncio.run(_imposes(
                address, popen.pid, f"Impose, {subscriptions} held, subject unsubscribed", fresh_b, "b")))  # fmt: skip
            hot = subscribed[:imposes]
            rates.append(asyncio.run(_imposes(
                address, popen.pid, f"Impose, {subscriptions} held, subject subscribed", hot, "c")))  # fmt: skip
            # Each of those made a change: the judge loop's backlog after a burst of writes on watched subjects.
            t0, backlog = time.perf_counter(), _due(server.port)
            while _due(server.port):
                time.sleep(0.05)
            drained = time.perf_counter() - t0
            asyncio.run(_delivery(address, latency[:WARM_UP], 0.05))  # the first stream and change: not counted
            times = asyncio.run(_delivery(address, latency[WARM_UP : WARM_UP + deliveries], 0.05))
        finally:
            popen.terminate()
            popen.wait(timeout=20)
    print(
        f"  subscribed {subscriptions} in {seconds:.1f} s ({subscriptions / seconds:.0f}/s, SubscribeBatch of {BATCH})"
    )
    print(f"  Redis memory per subscription: {held / subscriptions:.0f} bytes (used_memory delta, everything)")
    for rate in rates:
        print(rate.line())
    if times:
        p99 = _percentile(times, 0.99)
        met = "met" if p99 <= TARGET_DELIVERY_S else "NOT met"
        print(f"  change delivery with {subscriptions} held: p50 {1e3 * statistics.median(times):.0f} ms, "
              f"p99 {1e3 * p99:.0f} ms, max {1e3 * max(times):.0f} ms over {len(times)} "
              f"(target p99 <= {TARGET_DELIVERY_S:.0f} s: {met})")  # fmt: skip
    print(f"  after that burst: {backlog} subjects still due, judged (each a logged decision and a change) in "
          f"{drained:.1f} s")  # fmt: skip
    print(f"  load average after: {os.getloadavg()[0]:.1f}")
    return 0
