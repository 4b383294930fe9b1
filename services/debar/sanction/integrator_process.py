"""The log integrator in a child process of the sanction server (DEBAR_LOG_INTEGRATOR=on): its steps (reading
the streams, hashing leaves, signing checkpoints, asking witnesses, writing the checkpoint file) never hold up the
serving event loop. In the same loop they stalled it for up to tens of milliseconds a few times a second, which
was most of Check's p99 at 1 call in flight.

The server spawns it at start (`python -m debar.sanction.integrator_process`, the server's own environment; the
Redis URL it serves on is sent on the child's stdin, never put in an environment), restarts it when it exits
(after RESTART_S, doubling up to RESTART_MAX_S while it keeps dying early) and stops it with the server (SIGTERM,
then SIGKILL). The child reports its IntegratorHealth as one JSON line on stdout every REPORT_S; the server keeps it
in its own IntegratorHealth, so health `debar.log.integrator` and the debar_log_* metrics read as before. While no
child runs, the health says `unavailable`, naming the exit. The child ends when its stdin closes (the server died,
even by SIGKILL) and releases the lease on the way out; the lease in Redis makes one integrator active across all
replicas whatever happens to processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections import Counter
from typing import Any

from debar.common import logs
from debar.common.heap import collect_young_objects_less_often, freeze_startup_heap
from debar.common.settings import Settings
from debar.sanction.adapters.redis_wiring import redis_adapters
from debar.sanction.adapters.witness_client import HttpWitnesses
from debar.sanction.app.integrator import IntegratorHealth, IntegratorState, default_owner
from debar.sanction.app.ports import WitnessFailure, WitnessFailureKind
from debar.sanction.bootstrap import build_integrator
from debar.sanction.domain.catalogue import load_default_catalogue

log = logging.getLogger("debar.integrator")

REPORT_S = 0.5  # the child's health line, this often
RESTART_S = 1.0  # a child that exited is started again after this, doubled while it keeps dying within STABLE_S
RESTART_MAX_S = 30.0
STABLE_S = 60.0
STOP_S = 5.0  # SIGTERM, then SIGKILL after this
STOP_GRACE_S = 3.0  # the child's own bound on stopping (under STOP_S: it ends before the server must kill it)


def health_line(health: IntegratorHealth) -> bytes:
    report = {
        "state": health.state, "detail": health.detail, "tree_size": health.tree_size,
        "checkpoint_size": health.checkpoint_size, "checkpoint_at": health.checkpoint_at,
        "cosigned_by": list(health.cosigned_by),
        "witness_failures": [[f.witness, f.kind.value, f.detail, f.status] for f in health.witness_failures],
        "failures": [[w, k.value, n] for (w, k), n in health.failures.items()],
        "leaves": health.leaves, "cpu_s": health.cpu_s, "unreadable": health.unreadable,
    }  # fmt: skip
    return json.dumps(report).encode() + b"\n"


class ChildHealth:
    """The server's side: the child's reports into the server's IntegratorHealth; counters carry over restarts."""

    def __init__(self, health: IntegratorHealth) -> None:
        self.health = health
        self._base_leaves, self._base_cpu, self._base_unreadable = health.leaves, health.cpu_s, health.unreadable
        self._base_failures: Counter[tuple[str, WitnessFailureKind]] = Counter(health.failures)

    def child_started(self) -> None:
        h = self.health
        self._base_leaves, self._base_cpu, self._base_failures = h.leaves, h.cpu_s, Counter(h.failures)
        self._base_unreadable = h.unreadable

    def apply(self, line: bytes) -> None:
        report: dict[str, Any] = json.loads(line)
        h = self.health
        h.state, h.detail, h.tree_size = report["state"], report["detail"], report["tree_size"]
        h.checkpoint_size, h.checkpoint_at = report["checkpoint_size"], report["checkpoint_at"]
        h.cosigned_by = tuple(report["cosigned_by"])
        h.witness_failures = tuple(
            WitnessFailure(w, WitnessFailureKind(k), d, s) for w, k, d, s in report["witness_failures"]
        )
        failures = Counter(self._base_failures)
        for w, k, n in report["failures"]:
            failures[(w, WitnessFailureKind(k))] += n
        h.failures = failures
        h.leaves, h.cpu_s = self._base_leaves + report["leaves"], self._base_cpu + report["cpu_s"]
        h.unreadable = self._base_unreadable + report.get("unreadable", 0)


class IntegratorProcess:
    """Runs (`run`, a task of the server) and supervises the child; `pid` is the running child's, or None."""

    def __init__(self, health: IntegratorHealth, redis_url: str, restart_s: float = RESTART_S) -> None:
        self._health = ChildHealth(health)
        self._redis_url = redis_url
        self._restart_s = restart_s
        self.pid: int | None = None
        self.starts = 0

    async def run(self) -> None:
        wait_s = self._restart_s
        while True:
            started = time.monotonic()
            code = await self._run_once()
            h = self._health.health
            h.state = IntegratorState.UNAVAILABLE
            h.detail = f"the integrator process exited (code {code}); starting it again in {wait_s:.0f} s"
            log.warning("log integrator: %s", h.detail)
            await asyncio.sleep(wait_s)
            wait_s = self._restart_s if time.monotonic() - started > STABLE_S else min(wait_s * 2, RESTART_MAX_S)

    async def _run_once(self) -> int:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "debar.sanction.integrator_process",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self.pid, self.starts = child.pid, self.starts + 1
        self._health.child_started()
        assert child.stdin is not None and child.stdout is not None
        try:
            child.stdin.write(json.dumps({"redis_url": self._redis_url}).encode() + b"\n")
            with contextlib.suppress(ConnectionError):
                await child.stdin.drain()
            async for line in child.stdout:
                try:
                    self._health.apply(line)
                except (ValueError, KeyError, TypeError) as error:
                    log.warning("log integrator: unreadable health line from the child: %s", error)
            return await child.wait()
        finally:
            self.pid = None
            if child.returncode is None:  # cancelled: the server stops
                await _stop(child)


async def _stop(child: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.terminate()
    try:
        await asyncio.shield(asyncio.wait_for(child.wait(), STOP_S))
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            child.kill()


# -- the child --------------------------------------------------------------------------------------------------


async def _child(settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    first = await reader.readline()
    if not first:
        return  # the server went before telling us anything
    redis_url: str = json.loads(first)["redis_url"]
    catalogue = load_default_catalogue()
    adapters = redis_adapters(settings, redis_url, catalogue)
    async with HttpWitnesses(settings.log_witness_list(), settings.log_witness_timeout_s) as witnesses:
        # Named in the lease after the server it serves (host/server pid/random), as when it ran inside it.
        witnesses.warm()
        integrator = build_integrator(adapters, settings.log_signer(), witnesses, default_owner(os.getppid()))
        freeze_startup_heap()
        collect_young_objects_less_often()
        running = asyncio.create_task(integrator.run())
        loop.add_signal_handler(signal.SIGTERM, running.cancel)
        loop.add_signal_handler(signal.SIGINT, running.cancel)
        orphaned = asyncio.create_task(reader.read())  # EOF: the server is gone
        out = sys.stdout.buffer
        try:
            while not running.done():
                out.write(health_line(integrator.health))
                out.flush()
                await asyncio.wait({running, orphaned}, timeout=REPORT_S, return_when=asyncio.FIRST_COMPLETED)
                if orphaned.done():
                    log.warning("log integrator: the sanction server is gone; stopping")
                    break
        except BrokenPipeError:
            pass
        finally:
            orphaned.cancel()
            running.cancel()
            # It releases the lease on the way out. Whatever a step does (CI once saw failing steps loop without
            # ever suspending, out of reach of the cancellation), past the grace the process ends regardless and
            # the lease expires by itself.
            await asyncio.wait({running}, timeout=STOP_GRACE_S)
            if not running.done():
                log.error("log integrator: did not stop within %.0f s; exiting (its lease expires by itself)",
                          STOP_GRACE_S)  # fmt: skip
                os._exit(3)
            with contextlib.suppress(asyncio.CancelledError):
                await running  # done: a failure it ended with is raised, as it was
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await adapters.close()


def main() -> int:
    settings = Settings.from_env()
    logs.configure("integrator", settings.log_format)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_child(settings))
    else:
        uvloop.run(_child(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
