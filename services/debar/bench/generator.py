"""The load generator: processes of their own, never the measuring one, sending one prebuilt request (bytes, with
identity serializers: nothing is built or parsed per call) from `in_flight` workers back to back.

Each process lives for the whole run and keeps one channel per address. A load is warmed up, then every process
says it is ready and all start on the same word from the parent, so their timed windows overlap."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

import grpc

CALL_TIMEOUT_S = 10.0  # one call; bounds the tail of a load past its seconds
WARM_UP_S = 0.3  # every worker calling, before the clock starts: connections, caches, the server's code paths
REPLY_TIMEOUT_S = 60.0  # a generator that says nothing for this long has failed


@dataclass(frozen=True)
class Load:
    """What to send: `request` (serialized) to `method` on `address`, `in_flight` calls at a time."""

    address: str
    method: str  # e.g. /debar.v1.SanctionService/Check
    request: bytes
    in_flight: int
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass
class Sample:
    """What one generator process saw in its timed window: answered calls are timed, failed ones counted."""

    calls: int
    seconds: float
    latencies_s: list[float]
    cpu_s: float  # this process's own CPU in the window, to show how busy the generator was
    errors: dict[str, int] = field(default_factory=dict)
    last_response: bytes = b""  # one answer, to check what was being answered without parsing every one

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


async def _call_back_to_back(call: Any, load: Load, metadata: grpc.aio.Metadata, until: float) -> Sample:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    last = b""

    async def worker() -> None:
        nonlocal last
        clock = time.perf_counter
        while (started := clock()) < until:
            try:
                last = await call(load.request, timeout=CALL_TIMEOUT_S, metadata=metadata)
            except grpc.aio.AioRpcError as error:
                errors[error.code().name] += 1
                continue
            latencies.append(clock() - started)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(load.in_flight)))
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    return Sample(len(latencies), seconds, latencies, cpu_s, dict(errors), last)


async def _run(load: Load, seconds: float, conn: Connection, channels: dict[str, grpc.aio.Channel]) -> Sample:
    if load.address not in channels:
        channels[load.address] = grpc.aio.insecure_channel(load.address)
    call = channels[load.address].unary_unary(load.method)  # no serializers: bytes in, bytes out
    metadata = grpc.aio.Metadata(*load.metadata)
    await _call_back_to_back(call, load, metadata, time.perf_counter() + WARM_UP_S)
    conn.send("ready")
    if conn.recv() is None:  # else "go": every process starts together
        raise _Stopped
    return await _call_back_to_back(call, load, metadata, time.perf_counter() + seconds)


class LoadGenerator(Protocol):
    """What the rounds need of a generator (this module's Generators, or h2load.H2Load)."""

    sees_grpc_status: bool  # False: a call it counts may have failed; the server's own counts must say
    name: str

    def run(
        self, load: Load, seconds: float, processes: int = 1, on_start: Callable[[], None] | None = None
    ) -> list[Sample]: ...


class _Stopped(Exception):
    """Told to stop while waiting for "go" (another generator failed)."""


def _serve_jobs(conn: Connection) -> None:
    """The generator process: runs the loads it is sent until it is sent None."""
    loop = asyncio.new_event_loop()
    channels: dict[str, grpc.aio.Channel] = {}
    try:
        while (job := conn.recv()) is not None:
            load, seconds = job
            try:
                conn.send(loop.run_until_complete(_run(load, seconds, conn, channels)))
            except _Stopped:
                break
            except Exception as error:  # reported to the parent, which stops the run
                conn.send(RuntimeError(f"generator: {type(error).__name__}: {error}"))
    finally:
        for channel in channels.values():
            loop.run_until_complete(channel.close())
        loop.close()


class Generators:
    """Up to `most` generator processes, started on first use (spawned: a fresh interpreter, not a fork of one
    that holds gRPC state), stopped by `close`."""

    sees_grpc_status = True
    name = "python"

    def __init__(self, most: int) -> None:
        self._most = most
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[tuple[Any, Connection]] = []

    def _ensure(self, count: int) -> list[Connection]:
        if count > self._most:
            raise ValueError(f"at most {self._most} generator processes, not {count}")
        while len(self._processes) < count:
            ours, theirs = self._context.Pipe()
            process = self._context.Process(target=_serve_jobs, args=(theirs,), daemon=True)
            process.start()
            theirs.close()
            self._processes.append((process, ours))
        return [conn for _, conn in self._processes[:count]]

    @staticmethod
    def _reply(conn: Connection) -> Any:
        try:
            if not conn.poll(REPLY_TIMEOUT_S):
                raise RuntimeError(f"generator: no word in {REPLY_TIMEOUT_S:.0f} s")
            reply = conn.recv()
        except (EOFError, OSError):
            raise RuntimeError("generator: the process died (see its error above)") from None
        if isinstance(reply, Exception):
            raise reply
        return reply

    def run(
        self, load: Load, seconds: float, processes: int = 1, on_start: Callable[[], None] | None = None
    ) -> list[Sample]:
        """`load.in_flight` split across `processes` (never more processes than calls in flight); `on_start()` is
        called once all are warm, just before they start, so the caller can read counters at the same moment."""
        processes = min(processes, load.in_flight)
        shares = [load.in_flight // processes + (i < load.in_flight % processes) for i in range(processes)]
        conns = self._ensure(processes)
        for conn, share in zip(conns, shares, strict=True):
            conn.send((Load(load.address, load.method, load.request, share, load.metadata), seconds))
        for conn in conns:
            if self._reply(conn) != "ready":
                raise RuntimeError("generator: expected ready")
        if on_start is not None:
            on_start()
        for conn in conns:
            conn.send("go")
        return [self._reply(conn) for conn in conns]

    def close(self) -> None:
        for _, conn in self._processes:
            with contextlib.suppress(BrokenPipeError, OSError):
                conn.send(None)
        for process, _ in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        self._processes.clear()

    def __enter__(self) -> Generators:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
