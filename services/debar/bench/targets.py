"""The processes a benchmark measures, started and stopped by it: a private Redis, debar's own services
(`debar serve sanction`, `debar serve railway`) on it, and the bare baselines. Nothing of the caller's
environment's DEBAR_* settings is passed on: a benchmark runs on its own private servers, in local mode."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from debar.bench.bare_server import KINDS, SCRIPTED, Answers, write_answers
from debar.local.dev_keys import log_signing_key
from debar.local.embedded_redis import EmbeddedRedis, find_server_binary, free_port
from debar.local.local_replicas import SYNC_AT_ONCE

START_TIMEOUT_S = 30.0  # every process ready within this, or the run stops
STOP_TIMEOUT_S = 15.0  # SIGTERM, then SIGKILL
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Server:
    label: str
    popen: subprocess.Popen[bytes]
    address: str
    metrics_port: int = 0  # debar's own services: GET /metrics, for what they answered by status code

    @property
    def pid(self) -> int:
        return self.popen.pid


@dataclass
class Debar:
    """A private Redis and debar's services on it."""

    redis_pid: int
    sanction: Server
    railway: Server | None
    redis_url: str = ""


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU a process has used so far, every thread counted, and its child processes' (the sanction
    server's log integrator runs in one): those running, and those ended and waited for (Linux /proc); None
    elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime, stime, cutime, cstime (fields 14-17 of stat(5)): cutime/cstime hold the children waited for
    ticks = sum(int(f) for f in fields[11:15])
    for child in _children(pid):
        ticks += round((cpu_seconds(child) or 0.0) * _CLOCK_TICKS)
    return ticks / _CLOCK_TICKS


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def machine_busy_seconds() -> float | None:
    """CPU time every core of the machine has spent busy so far (Linux /proc/stat); None elsewhere."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(f) for f in stat.readline().split()[1:9]]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


_HANDLED = re.compile(r"^debar_grpc_server_handled_total\{(?P<labels>[^}]*)\} (?P<count>\S+)$", re.MULTILINE)


def handled(server: Server, method: str) -> dict[str, float]:
    """How many calls of `method` the server has answered so far, by status code (its Prometheus counters)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    counts: dict[str, float] = {}
    for match in _HANDLED.finditer(text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("method") == method:
            counts[labels.get("code", "")] = float(match["count"])
    return counts


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


def _wait_ready(servers: Sequence[tuple[Server, Callable[[str], bool]]]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    for server, ready in servers:
        while not ready(server.address):
            if server.popen.poll() is not None:
                raise RuntimeError(f"bench: {server.label} exited at start (code {server.popen.returncode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"bench: {server.label} not ready on {server.address} in {START_TIMEOUT_S:.0f} s")
            time.sleep(0.1)


def _stop(servers: Sequence[Server]) -> None:
    for server in servers:
        if server.popen.poll() is None:
            server.popen.terminate()
    for server in servers:
        try:
            server.popen.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.popen.kill()
            server.popen.wait()


@contextmanager
def _stopped_on_exit() -> Iterator[list[Server]]:
    servers: list[Server] = []
    try:
        yield servers
    finally:
        _stop(servers)


def _private_env(**settings: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("DEBAR_")}, **settings}


def redis_server() -> str:
    """Which server the private Redis runs (the embedded one `debar up` starts), e.g. `valkey-server v=9.1.2`:
    figures depend on it, so a run names it."""
    binary = find_server_binary()
    try:
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        version = []
    return " ".join([Path(binary).name, *(v for v in version if v.startswith("v="))])


@contextmanager
def debar(*, railway: bool = False, integrator: bool | str = True) -> Iterator[Debar]:
    """A private Redis (appendfsync always, as `debar up` runs it) and `debar serve sanction` on it; with
    `railway`, `debar serve railway` asking that sanction service; without `integrator`, the sanction service with
    DEBAR_LOG_INTEGRATOR=off (its decisions sequenced, never integrated: the same service without the log's
    integrator; a string: that DEBAR_LOG_INTEGRATOR, e.g. `inline`). Stopped on the way out, whatever happened."""
    mode = integrator if isinstance(integrator, str) else "on" if integrator else "off"
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedRedis(Path(tmp) / "redis") as redis,
        _stopped_on_exit() as servers,
    ):
        sanction = f"127.0.0.1:{free_port()}"
        key = Path(tmp) / "log-signing.key"
        log_signing_key(key, "debar.bench/log")  # the log integrator signs checkpoints as the service does
        env = _private_env(DEBAR_REDIS_URL=redis.url, DEBAR_SANCTION_ADDRESS=sanction, DEBAR_DATA_DIR=tmp,
                           DEBAR_LOG_SIGNING_KEY=str(key), DEBAR_LOG_INTEGRATOR=mode,
                           DEBAR_LOG_FORMAT="json",
                           DEBAR_PLATFORM_RATE_CHECKS="0")  # fmt: skip

        def serve(name: str, address: str) -> Server:
            metrics_port = free_port()
            popen = subprocess.Popen([sys.executable, "-m", "debar.cli.main", "serve", name],
                                     env={**env, f"DEBAR_{name.upper()}_PORT": address.rsplit(":", 1)[1],
                                          "DEBAR_METRICS_PORT": str(metrics_port)},
                                     stderr=subprocess.DEVNULL)  # fmt: skip
            servers.append(Server(name, popen, address, metrics_port))
            return servers[-1]

        started = [serve("sanction", sanction)]
        if railway:
            started.append(serve("railway", f"127.0.0.1:{free_port()}"))
        _wait_ready([(server, _serving) for server in started])  # SERVING once Redis (or sanction) answers
        assert redis.process is not None
        yield Debar(redis.process.pid, started[0], started[1] if railway else None, redis.url)


@dataclass
class Replicated:
    redis_pid: int
    replica_pid: int
    sanction: dict[int, Server]  # by the replicas each acknowledges after (DEBAR_REDIS_MIN_REPLICAS)


@contextmanager
def replicated() -> Iterator[Replicated]:
    """A private master with one replica (appendfsync always on both) and two `debar serve sanction` on it: one
    acknowledging a write once the master has it (DEBAR_REDIS_MIN_REPLICAS=0), one once the replica has it too
    (=1). Stopped on the way out, whatever happened."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedRedis(Path(tmp) / "master", extra_args=SYNC_AT_ONCE) as master,
        EmbeddedRedis(
            Path(tmp) / "replica", extra_args=(*SYNC_AT_ONCE, "--replicaof", "127.0.0.1", str(master.port))
        ) as replica,
        _stopped_on_exit() as servers,
    ):
        key = Path(tmp) / "log-signing.key"
        log_signing_key(key, "debar.bench/log")  # one log: whichever server holds the integrator's lease signs
        for required in (0, 1):
            address, metrics_port = f"127.0.0.1:{free_port()}", free_port()
            env = _private_env(DEBAR_REDIS_URL=master.url, DEBAR_REDIS_MIN_REPLICAS=str(required),
                               DEBAR_DATA_DIR=f"{tmp}/data{required}", DEBAR_LOG_FORMAT="json",
                               DEBAR_LOG_SIGNING_KEY=str(key),
                               DEBAR_PLATFORM_RATE_CHECKS="0", DEBAR_SANCTION_PORT=address.rsplit(":", 1)[1],
                               DEBAR_METRICS_PORT=str(metrics_port))  # fmt: skip
            popen = subprocess.Popen([sys.executable, "-m", "debar.cli.main", "serve", "sanction"], env=env,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
            servers.append(Server("sanction", popen, address, metrics_port))
        _wait_ready([(server, _serving) for server in servers])  # SERVING once the replica confirms writes
        assert master.process is not None and replica.process is not None
        yield Replicated(master.process.pid, replica.process.pid, {0: servers[0], 1: servers[1]})


@contextmanager
def bare_servers(answers: Answers) -> Iterator[dict[str, Server]]:
    """One bare server of each kind (bare_server.py), answering `answers`."""
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        servers = stack.enter_context(_stopped_on_exit())
        path = write_answers(Path(tmp) / "answers.json", answers)
        for kind in KINDS:
            address = f"127.0.0.1:{free_port()}"
            popen = subprocess.Popen([sys.executable, "-m", "debar.bench.bare_server", kind,
                                      address.rsplit(":", 1)[1], str(path)])  # fmt: skip
            servers.append(Server(f"bare {kind}", popen, address))
        _wait_ready([(server, _port_open) for server in servers])
        yield {kind: server for kind, server in zip(KINDS, servers, strict=True)}


FLOOR = "floor: aio + 1 script call"


@contextmanager
def floor_server(answers: Answers, redis_url: str) -> Iterator[Server]:
    """The bare aio handler that awaits one script call on `redis_url` before each answer (bare_server.py)."""
    with tempfile.TemporaryDirectory() as tmp, _stopped_on_exit() as servers:
        path = write_answers(Path(tmp) / "answers.json", answers)
        address = f"127.0.0.1:{free_port()}"
        popen = subprocess.Popen([sys.executable, "-m", "debar.bench.bare_server", SCRIPTED,
                                  address.rsplit(":", 1)[1], str(path), redis_url])  # fmt: skip
        servers.append(Server(FLOOR, popen, address))
        _wait_ready([(servers[0], _port_open)])
        yield servers[0]
