"""`debar bench import`: loads a realistic feed through the real `debar import` code path into a private single
server and a private 3-master Redis Cluster, and prints restrictions/s and Redis memory per restriction. The import
signs with the log's key, as an operator's does (before 2026-12-02 the bench's ran unsigned).

Memory is `used_memory` after the import less that of the empty server (summed over the nodes of a cluster),
divided by the restrictions imported: records, index entries, texts, key overhead, everything; then broken down by
key family (MEMORY USAGE of every key). CPU per restriction: the importing process (the writer), its validating
worker processes, and Redis (used_cpu_user + used_cpu_sys), each over the import."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import resource
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from debar.bench.feed import write_feed
from debar.cli.import_cmd import import_file
from debar.common.settings import Settings
from debar.local.dev_keys import dev_log_origin, log_signing_key
from debar.local.embedded_redis import EmbeddedRedis
from debar.local.local_cluster import LocalCluster
from debar.sanction.adapters.redis_wiring import redis_adapters
from debar.sanction.adapters.witness_client import HttpWitnesses
from debar.sanction.bootstrap import build_integrator
from debar.sanction.domain.catalogue import load_default_catalogue

TARGET_RATE = 50_000  # restrictions/s
TARGET_BYTES = 300  # per restriction; 10 million in 3 GB
BENCH_KEYS = "bench:bench-only-pseudonym-secret-of-32-bytes"


@dataclass
class ImportFigures:
    label: str
    records: int
    seconds: float
    memory_bytes: int
    keys: int
    summary: str
    cpu_s: dict[str, float] = field(default_factory=dict)  # writer, workers, redis
    families: dict[str, tuple[int, int]] = field(default_factory=dict)  # key family -> (keys, bytes)
    commands_us: dict[str, float] = field(default_factory=dict)  # Redis's time by command over the import
    # After the log integrator has put every sequenced record in the Merkle tree and signed a checkpoint:
    integrated_memory_bytes: int = 0
    integrated_families: dict[str, tuple[int, int]] = field(default_factory=dict)
    integrator_cpu_s: float = 0.0
    integrator_redis_cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    @property
    def bytes_per_record(self) -> float:
        return self.memory_bytes / self.records


def _memory_and_keys(ports: list[int]) -> tuple[int, int]:
    memory = keys = 0
    for port in ports:
        with redis.Redis(port=port) as client:
            memory += int(client.info("memory")["used_memory"])
            keys += int(client.dbsize())
    return memory, keys


def _redis_cpu(ports: list[int]) -> float:
    total = 0.0
    for port in ports:
        with redis.Redis(port=port) as client:
            info = client.info("cpu")
            total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


def _command_usec(ports: list[int]) -> dict[str, float]:
    """Redis's own time by command (INFO commandstats usec, summed over nodes): EVALSHA is the scripts'."""
    out: dict[str, float] = {}
    for port in ports:
        with redis.Redis(port=port) as client:
            for name, stats in client.info("commandstats").items():
                out[name.removeprefix("cmdstat_")] = out.get(name.removeprefix("cmdstat_"), 0.0) + stats["usec"]
    return out


def _process_cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


_FAMILY = (
    (re.compile(rb":r:\{"), "restriction records (r)"),
    (re.compile(rb":s:\{"), "subject index (s)"),
    (re.compile(rb":log:\{"), "sequencing streams (log)"),
    (re.compile(rb":rh:\{"), "record histories (rh)"),
    (re.compile(rb"\{tlog\}"), "Merkle tree state ({tlog})"),
    (re.compile(rb":txt$"), "shared texts (txt)"),
)


def _families(ports: list[int]) -> dict[str, tuple[int, int]]:
    """Keys and MEMORY USAGE bytes by key family, summed over the nodes."""
    out: dict[str, list[int]] = {}
    for port in ports:
        with redis.Redis(port=port) as client:
            keys = list(client.scan_iter(count=10_000))
            with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.memory_usage(key, samples=0)
                sizes = pipe.execute()
            for key, size in zip(keys, sizes, strict=True):
                name = next((n for pattern, n in _FAMILY if pattern.search(key)), "other")
                counts = out.setdefault(name, [0, 0])
                counts[0] += 1
                counts[1] += int(size or 0)
    return {name: (n, size) for name, (n, size) in sorted(out.items(), key=lambda kv: -kv[1][1])}


@contextlib.contextmanager
def _server(kind: str, folder: Path) -> Iterator[tuple[str, list[int]]]:
    if kind == "cluster":
        with LocalCluster(folder / "cluster") as cluster:
            yield cluster.url, [node.port for node in cluster.nodes]
    else:
        with EmbeddedRedis(folder / "redis") as server:
            yield server.url, [server.port]


def measure_import(kind: str, feed: Path, records: int, folder: Path) -> ImportFigures:
    with _server(kind, folder) as (url, ports):
        empty_memory, _ = _memory_and_keys(ports)
        log_signing_key(folder / "log.key", dev_log_origin("debar"))  # the import signs with it, as an operator's
        settings = Settings.from_env({
            "DEBAR_REDIS_URL": url, "DEBAR_REDIS_CLUSTER": "true" if kind == "cluster" else "false",
            "DEBAR_PSEUDONYM_KEYS": BENCH_KEYS, "DEBAR_DATA_DIR": str(folder / "data"), "DEBAR_REDIS_TIMEOUT_S": "10",
            "DEBAR_LOG_SIGNING_KEY": str(folder / "log.key"),
        })  # fmt: skip
        printed = io.StringIO()
        cpu_before = (_process_cpu(resource.RUSAGE_SELF), _process_cpu(resource.RUSAGE_CHILDREN), _redis_cpu(ports))
        commands_before = _command_usec(ports)
        started = time.perf_counter()
        with contextlib.redirect_stdout(printed):
            status = asyncio.run(import_file(settings, str(feed), progress=False))
        seconds = time.perf_counter() - started
        # The workers have ended (the import shuts its pool down): their time is in RUSAGE_CHILDREN.
        cpu_after = (_process_cpu(resource.RUSAGE_SELF), _process_cpu(resource.RUSAGE_CHILDREN), _redis_cpu(ports))
        if status != 0:
            raise RuntimeError(f"bench import: the import failed ({status}): {printed.getvalue().strip()}")
        commands = {k: v - commands_before.get(k, 0.0) for k, v in _command_usec(ports).items()}
        memory, keys = _memory_and_keys(ports)
        families = _families(ports)
        cpu = {who: a - b for who, a, b in zip(("writer", "workers", "redis"), cpu_after, cpu_before, strict=True)}
        figures = ImportFigures(kind, records, seconds, memory - empty_memory, keys, printed.getvalue().strip(), cpu,
                                families, commands_us=commands)  # fmt: skip
        redis_before, started = _redis_cpu(ports), time.process_time()
        asyncio.run(_integrate(settings, url, folder))
        figures.integrator_cpu_s = time.process_time() - started
        figures.integrator_redis_cpu_s = _redis_cpu(ports) - redis_before
        figures.integrated_memory_bytes = _memory_and_keys(ports)[0] - empty_memory
        figures.integrated_families = _families(ports)
    return figures


async def _integrate(settings: Settings, url: str, folder: Path) -> None:
    """The log integrator (as every sanction server runs it) until every sequenced record is in the tree and a
    checkpoint is signed; checkpoints in a directory of the run, no witnesses."""
    adapters = redis_adapters(settings, url, load_default_catalogue())
    signer = log_signing_key(folder / "log.key", dev_log_origin("debar"))  # the key the import signed with
    try:
        async with HttpWitnesses([], 1.0) as witnesses:
            integrator = build_integrator(adapters, signer, witnesses)
            while True:
                await integrator.step()
                if not integrator.more_pending:
                    break
    finally:
        await adapters.close()


def run_import(records: int = 1_000_000, cluster_records: int | None = None, which: str = "both") -> int:
    kinds = ["single", "cluster"] if which == "both" else [which]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        feeds = {n: write_feed(folder / f"feed-{n}.jsonl", n) for n in {records, cluster_records or records}}
        print(f"feed: {', '.join(f'{n:,} restrictions ({p.stat().st_size / 1e6:.0f} MB)' for n, p in feeds.items())}"
              f" written in {time.perf_counter() - started:.1f} s")  # fmt: skip
        results = []
        for kind in kinds:
            n = (cluster_records or records) if kind == "cluster" else records
            results.append(measure_import(kind, feeds[n], n, folder / kind))
            f = results[-1]
            print(f"{kind}: {f.summary}; {f.seconds:.1f} s, {f.rate:,.0f} restrictions/s, "
                  f"{f.bytes_per_record:.0f} bytes/restriction, {f.keys:,} keys", flush=True)  # fmt: skip
            print("  CPU per restriction: " + ", ".join(f"{who} {s / n * 1e6:.1f} µs" for who, s in f.cpu_s.items())
                  + f" (total {sum(f.cpu_s.values()) / n * 1e6:.1f} µs: at most "
                  f"{n / sum(f.cpu_s.values()) * (os.cpu_count() or 1):,.0f}/s on {os.cpu_count()} cores)")  # fmt: skip
            top = sorted(f.commands_us.items(), key=lambda kv: -kv[1])[:5]
            print("  Redis by command (commandstats, per restriction): "
                  + ", ".join(f"{name} {us / n:.1f} µs" for name, us in top if us > 0))  # fmt: skip
            for name, (count, size) in f.families.items():
                print(f"  {name:<28}{count:>9,} keys{size / n:>8.1f} B/restriction")
            print(f"  integrated into the Merkle tree and signed: {f.integrator_cpu_s / n * 1e6:.1f} µs integrator, "
                  f"{f.integrator_redis_cpu_s / n * 1e6:.1f} µs Redis per restriction; then "
                  f"{f.integrated_memory_bytes / n:.0f} bytes/restriction:")  # fmt: skip
            for name, (count, size) in f.integrated_families.items():
                print(f"  {name:<28}{count:>9,} keys{size / n:>8.1f} B/restriction")
            streams = f.integrated_families.get("sequencing streams (log)", (0, 0))[1]
            print(f"  without the streams' copies of integrated records (what archiving them takes out): "
                  f"{(f.integrated_memory_bytes - streams) / n:.0f} bytes/restriction", flush=True)  # fmt: skip
    print(f"\n{'redis':<10}{'restrictions':>14}{'seconds':>10}{'restr./s':>11}{'bytes/restr.':>14}{'keys':>10}"
          f"{'10M at this size':>18}")  # fmt: skip
    for f in results:
        print(f"{f.label:<10}{f.records:>14,}{f.seconds:>10.1f}{f.rate:>11,.0f}{f.bytes_per_record:>14.0f}"
              f"{f.keys:>10,}{f.bytes_per_record * 1e7 / 2**30:>15.2f} GiB")  # fmt: skip
    print(f"\ntargets: import >= {TARGET_RATE:,} restrictions/s; <= {TARGET_BYTES} bytes of Redis memory per "
          "restriction (used_memory after the import less the empty server's, summed over nodes)")  # fmt: skip
    for f in results:
        rate_ok = "met" if f.rate >= TARGET_RATE else "NOT met"
        memory_ok = "met" if f.bytes_per_record <= TARGET_BYTES else "NOT met"
        print(f"{f.label}: rate {rate_ok}, memory {memory_ok}")
    return 0
