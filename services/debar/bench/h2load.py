"""A load generator in C: nghttp2's h2load (Debian: nghttp2-client), sending one prebuilt gRPC request (the
message in its 5-byte gRPC frame, the headers a gRPC client sends) over HTTP/2. It costs the machine a fraction of
the CPU per call the Python generator does, so on a machine whose cores the generator shares with the servers it
leaves the baseline the most room.

h2load knows HTTP, not gRPC: a call it counts as done may have ended with a non-zero grpc-status, and it keeps no
answer. The runner therefore counts what the server answered (debar's own per-code counters) and checks an answer
of every target itself."""

from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from debar.bench.generator import CALL_TIMEOUT_S, Load, Sample

WARM_UP = "300ms"  # a run of its own before the timed one, so the timed window holds no connection set-up
_REQUESTS = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                       r"(\d+) errored, (\d+) timeout")  # fmt: skip


def binary() -> str | None:
    return shutil.which("h2load")


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message: not compressed, 4-byte big-endian length, the bytes."""
    return b"\x00" + struct.pack(">I", len(message)) + message


def _millis(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


class H2Load:
    """The same `run` as generator.Generators: `processes` h2load threads, one connection each, the calls in
    flight split among them as HTTP/2 streams."""

    sees_grpc_status = False
    name = "h2load"

    def __init__(self, path: str) -> None:
        self._path = path
        self._folder = Path(tempfile.mkdtemp(prefix="debar-bench-h2load-"))

    def _command(self, load: Load, duration: str, processes: int, log: Path | None) -> list[str]:
        body = self._folder / f"{hashlib.sha256(load.request).hexdigest()[:16]}.bin"
        if not body.exists():
            body.write_bytes(grpc_frame(load.request))
        streams = max(1, load.in_flight // processes)
        headers = [("content-type", "application/grpc"), ("te", "trailers"),
                   ("grpc-timeout", f"{int(CALL_TIMEOUT_S)}S"), *load.metadata]  # fmt: skip
        return [
            self._path, "-t", str(processes), "-c", str(processes), "-m", str(streams), "-D", duration,
            "-d", str(body), *(arg for name, value in headers for arg in ("-H", f"{name}: {value}")),
            *(("--log-file", str(log)) if log else ()), f"http://{load.address}{load.method}",
        ]  # fmt: skip

    def _h2load(self, command: list[str]) -> tuple[str, float]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(command, capture_output=True, text=True, timeout=CALL_TIMEOUT_S + 600)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0 or not _REQUESTS.search(done.stdout):
            raise RuntimeError(f"h2load failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-500:]}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return done.stdout, cpu

    def run(
        self, load: Load, seconds: float, processes: int = 1, on_start: Callable[[], None] | None = None
    ) -> list[Sample]:
        processes = min(processes, load.in_flight)
        self._h2load(self._command(load, WARM_UP, processes, None))
        log = self._folder / "calls.log"
        log.unlink(missing_ok=True)
        if on_start is not None:
            on_start()
        out, cpu = self._h2load(self._command(load, _millis(seconds), processes, log))
        counts = _REQUESTS.search(out)
        assert counts is not None  # checked in _h2load
        started, done, succeeded, failed, errored, timeout = (int(counts[i]) for i in (2, 3, 4, 5, 6, 7))
        # one line per call: start (us since the epoch), HTTP status, microseconds to the end of the answer
        latencies = [int(line.split("\t")[2]) / 1e6 for line in log.read_text().splitlines() if line]
        errors = {name: n for name, n in (("HTTP failed", failed), ("HTTP errored", errored),
                                          ("HTTP timeout", timeout)) if n}  # fmt: skip
        if not succeeded:  # what the round's "no call was answered" then says (the calls left in flight, else none)
            errors["still unanswered at the window's end"] = started - done
        return [Sample(succeeded, seconds, latencies, cpu, errors)]

    def close(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> H2Load:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe(path: str) -> str:
    version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.strip()
    return f"{version or 'h2load'} ({os.path.realpath(path)})"
