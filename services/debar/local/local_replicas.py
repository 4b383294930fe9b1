"""Replicated Redis topologies of private server processes on free ports, for the failover tests (and anyone who
wants to watch a failover on a laptop): a master with replicas under Sentinels, and a Redis Cluster with one
replica per master. Every server keeps the embedded server's durability (AOF, fsync before each reply)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from debar.local.embedded_redis import EmbeddedRedis, find_server_binary, free_port
from debar.local.local_cluster import LocalCluster, _port_with_bus_port

# A replica that needs a full copy gets it at once: by default the primary waits 5 s for more replicas to share
# one transfer, and a restarted old master would be 5 s late to confirm writes.
SYNC_AT_ONCE = ("--repl-diskless-sync-delay", "0")


class SentinelGroup:
    """One master, `replicas` replicas and `sentinels` Sentinels watching them (quorum: a majority), which
    promote a replica `down_after_ms` after the master stops answering."""

    def __init__(
        self, data_dir: Path, *, replicas: int = 2, sentinels: int = 3, master_name: str = "debar",
        down_after_ms: int = 1000,
    ) -> None:  # fmt: skip
        self.data_dir = data_dir
        self.master_name = master_name
        self.down_after_ms = down_after_ms
        port = free_port()  # fixed before the start: the replicas' arguments name it
        self.servers = [EmbeddedRedis(data_dir / "server0", port, extra_args=SYNC_AT_ONCE)]
        self.servers += [
            EmbeddedRedis(data_dir / f"server{i}", extra_args=(*SYNC_AT_ONCE, "--replicaof", "127.0.0.1", str(port)))
            for i in range(1, replicas + 1)
        ]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self._sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def sentinels(self) -> str:
        """DEBAR_REDIS_SENTINELS for this group."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self, timeout_s: float = 20.0) -> SentinelGroup:
        for server in self.servers:
            server.start()
        quorum = len(self.sentinel_ports) // 2 + 1
        for i, port in enumerate(self.sentinel_ports):
            folder = self.data_dir / f"sentinel{i}"
            folder.mkdir(parents=True, exist_ok=True)
            config = folder / "sentinel.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder.resolve()}\nlogfile {(folder / 'sentinel.log').resolve()}\n"
                f"sentinel monitor {self.master_name} 127.0.0.1 {self.servers[0].port} {quorum}\n"
                f"sentinel down-after-milliseconds {self.master_name} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.master_name} 10000\n"
                f"sentinel parallel-syncs {self.master_name} {len(self.servers)}\n"
            )
            self._sentinels.append(
                subprocess.Popen([find_server_binary(), str(config), "--sentinel"], stdout=subprocess.DEVNULL)
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the Sentinel group did not come up (master, replicas and sentinels)")

    def _ready(self) -> bool:
        try:
            master = redis.Redis(port=self.servers[0].port)
            if int(master.info("replication").get("connected_slaves", 0)) < len(self.servers) - 1:
                return False
            master.incr("local-replicas:ready")  # synced replicas confirm a write (connected ones may still load)
            if int(master.execute_command("WAIT", len(self.servers) - 1, 100)) < len(self.servers) - 1:
                return False
            for port in self.sentinel_ports:
                fields: Any = redis.Redis(port=port).sentinel_master(self.master_name)
                if int(fields.get("num-other-sentinels", 0)) < len(self.sentinel_ports) - 1:
                    return False
                if int(fields.get("num-slaves", 0)) < len(self.servers) - 1:
                    return False
        except (redis.RedisError, OSError):
            return False
        return True

    def master_port(self) -> int | None:
        """The port of the master the Sentinels name now (None: none answers)."""
        for port in self.sentinel_ports:
            with contextlib.suppress(redis.RedisError, OSError):
                sentinel = redis.Redis(port=port, socket_timeout=0.5)
                found: Any = sentinel.sentinel_get_master_addr_by_name(self.master_name)
                return int(found[1])
        return None

    def server_on(self, port: int) -> EmbeddedRedis:
        return next(s for s in self.servers if s.port == port)

    def stop(self) -> None:
        for process in self._sentinels:
            if process.poll() is None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
            if process.poll() is None:
                process.kill()
        for server in self.servers:
            server.stop()

    def __enter__(self) -> SentinelGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ReplicatedCluster(LocalCluster):
    """A 3-master Redis Cluster with one replica per master (node i+3 replicates node i)."""

    def __init__(self, data_dir: Path, *, node_timeout_ms: int = 2000, extra_args: tuple[str, ...] = ()) -> None:
        super().__init__(data_dir, extra_args=(*SYNC_AT_ONCE, *extra_args), node_timeout_ms=node_timeout_ms)
        self.replicas = [
            EmbeddedRedis(
                data_dir / f"node{i + len(self.nodes)}", extra_args=self.options, choose_port=_port_with_bus_port
            )
            for i in range(len(self.nodes))
        ]

    def start(self, timeout_s: float = 30.0) -> ReplicatedCluster:
        super().start(timeout_s)
        masters = [redis.Redis(port=n.port) for n in self.nodes]
        ids = [m.execute_command("CLUSTER", "MYID").decode() for m in masters]
        for replica in self.replicas:
            replica.start()
            masters[0].execute_command("CLUSTER", "MEET", "127.0.0.1", replica.port)
        deadline = time.monotonic() + timeout_s
        clients = [redis.Redis(port=r.port) for r in self.replicas]
        while time.monotonic() < deadline:
            if all(len(c.execute_command("CLUSTER", "NODES").splitlines()) == 2 * len(self.nodes) for c in clients):
                break
            time.sleep(0.1)
        for client, master_id in zip(clients, ids, strict=True):
            client.execute_command("CLUSTER", "REPLICATE", master_id)
        while time.monotonic() < deadline:
            if all(_synced(m) for m in masters) and all(
                b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO") for c in clients
            ):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the replicated cluster did not come up")

    @property
    def all_nodes(self) -> list[EmbeddedRedis]:
        return [*self.nodes, *self.replicas]

    def role(self, node: EmbeddedRedis) -> str:
        """What the node says it is now: master, slave, or down."""
        try:
            return str(redis.Redis(port=node.port, socket_timeout=0.5).info("replication")["role"])
        except (redis.RedisError, OSError):
            return "down"

    def stop(self) -> None:
        for node in self.all_nodes:
            node.stop()


def _synced(master: redis.Redis) -> bool:
    """The master's one replica is online and has everything the master wrote."""
    info: Any = master.info("replication")
    replica = info.get("slave0")
    return (
        isinstance(replica, dict)
        and replica.get("state") == "online"
        and (int(replica.get("offset", -1)) == int(info.get("master_repl_offset", 0)))
    )


def pause(server: EmbeddedRedis) -> None:
    """SIGSTOP: the server keeps its connections but answers nothing (as behind a cut network)."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    stat = Path(f"/proc/{server.process.pid}/stat")
    deadline = time.monotonic() + 2
    while stat.exists() and stat.read_text().split(") ", 1)[1][:1] != "T" and time.monotonic() < deadline:
        time.sleep(0.001)  # stopped for sure before the caller counts from now


def resume(server: EmbeddedRedis) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGCONT)
