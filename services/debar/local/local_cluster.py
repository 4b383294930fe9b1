"""A real 3-master Redis Cluster of private server processes on free ports, made with CLUSTER ADDSLOTSRANGE and
CLUSTER MEET (no cluster-create tool needed). For tests and `debar bench import`; `extra_args` add server options
to every node."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import redis

from debar.local.embedded_redis import EmbeddedRedis, free_port

SLOT_RANGES = [(0, 5460), (5461, 10922), (10923, 16383)]


def _port_with_bus_port() -> int:
    """A free port whose cluster bus port (port + 10000) is a valid port and free too."""
    while True:
        port = free_port()
        if port + 10000 < 65536 and _is_free(port + 10000):
            return port


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class LocalCluster:
    def __init__(self, data_dir: Path, *, extra_args: tuple[str, ...] = (), node_timeout_ms: int = 2000) -> None:
        self.node_timeout_ms = node_timeout_ms
        self.options = (
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout",
            str(node_timeout_ms), *extra_args,
        )  # fmt: skip
        self.nodes = [
            EmbeddedRedis(data_dir / f"node{i}", extra_args=self.options, choose_port=_port_with_bus_port)
            for i in range(len(SLOT_RANGES))
        ]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self, timeout_s: float = 20.0) -> LocalCluster:
        for node in self.nodes:
            node.start()
        clients = [redis.Redis(port=n.port) for n in self.nodes]
        for client, (first, last) in zip(clients, SLOT_RANGES, strict=True):
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        for node in self.nodes[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO") for c in clients) and all(
                len(c.execute_command("CLUSTER", "NODES").splitlines()) == len(self.nodes) for c in clients
            ):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the local cluster did not reach cluster_state:ok")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
