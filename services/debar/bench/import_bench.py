"""`debar bench import`: loads a realistic feed through the real `debar import` code path into a private single
server and a private 3-master Redis Cluster, and prints restrictions/s and Redis memory per restriction.

Memory is `used_memory` after the import less that of the empty server (summed over the nodes of a cluster),
divided by the restrictions imported: records, index entries, texts, key overhead, everything."""

from __future__ import annotations

import asyncio
import contextlib
import io
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from debar.bench.feed import write_feed
from debar.cli.import_cmd import import_file
from debar.common.settings import Settings
from debar.local.embedded_redis import EmbeddedRedis
from debar.local.local_cluster import LocalCluster

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
        settings = Settings.from_env({
            "DEBAR_REDIS_URL": url, "DEBAR_REDIS_CLUSTER": "true" if kind == "cluster" else "false",
            "DEBAR_PSEUDONYM_KEYS": BENCH_KEYS, "DEBAR_DATA_DIR": str(folder / "data"), "DEBAR_REDIS_TIMEOUT_S": "10",
        })  # fmt: skip
        printed = io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(printed):
            status = asyncio.run(import_file(settings, str(feed), progress=False))
        seconds = time.perf_counter() - started
        if status != 0:
            raise RuntimeError(f"bench import: the import failed ({status}): {printed.getvalue().strip()}")
        memory, keys = _memory_and_keys(ports)
    return ImportFigures(kind, records, seconds, memory - empty_memory, keys, printed.getvalue().strip())


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
