"""Acknowledged means replicated. Redis replicates asynchronously: a primary that dies can take with it writes it
had already answered, and a failover then promotes a replica that never had them. So every write the sanction
core acknowledges (a check's log record, a registry or objection write) is sent with `WAIT n timeout` (or, on a
server that has it, `WAITAOF local n timeout`: replicas fsync'd too) right behind it, in one pipeline on one
connection: one round trip, and WAIT counts exactly the writes of that connection. Fewer than n replicas in time:
NotReplicated, which the callers treat as a Redis that did not answer (a fail-closed check: UNAVAILABLE; a
fail-open one: the spool), never an acknowledged write that a failover could lose.

On Redis Cluster the pipeline goes to the node that owns the keys, through that node's own connection (never the
cluster pipeline's retry, which may send the WAIT to another node than the write): a MOVED answer teaches the
slot map and the pair is sent again to the new owner, an ASK goes to the importing node behind ASKING, and a dead
node marks the map stale, learned again (at most every MAP_REFRESH_S) before the next write."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.exceptions import AskError, MovedError, RedisClusterException, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from debar.sanction.adapters.keys import Keys
from debar.sanction.app.ports import NotReplicated, StoreUnavailable

log = logging.getLogger("debar.replication")

MAP_REFRESH_S = 0.25
Command = tuple[Any, ...]


class Replication:
    """`required`: replicas that must hold each write; None: 1 when the Redis has replicas (learned at the first
    write and kept: a replica lost later must not lower the bar; `has_replicas`: known to have them, as under
    Sentinel), else 0. `wait_ms`: how long a write waits for them."""

    def __init__(
        self, client: Redis | RedisCluster, keys: Keys, required: int | None, wait_ms: int, has_replicas: bool = False
    ) -> None:
        self._has = has_replicas
        self._redis = client
        self._keys = keys
        self._required = required
        self._wait_ms = wait_ms
        self._aof: dict[str, tuple[bool, int]] = {}  # node -> (has WAITAOF, numlocal)
        self._probe_tags: dict[str, str] = {}
        self._stale = False
        self._refreshed_at = 0.0
        self._lock = asyncio.Lock()
        self.short = 0  # writes refused for too few replicas (not health's probes): debar_writes_unreplicated

    @property
    def cluster(self) -> bool:
        return isinstance(self._redis, RedisCluster)

    async def required(self) -> int:
        if self._required is None:
            self._required = 1 if await self._has_replicas() else 0
            log.info("writes are acknowledged after %d replica(s) hold them", self._required)
        return self._required

    async def _has_replicas(self) -> bool:
        if isinstance(self._redis, RedisCluster):
            # CLUSTER NODES, not the client's map: it names a replica that is down too.
            nodes: Any = await self._redis.cluster_nodes()
            return any("slave" in str(node.get("flags", "")) for node in nodes.values())
        if self._has:
            return True
        info: Any = await self._redis.info("replication")
        return int(info.get("connected_slaves", 0)) > 0

    # -- writes ----------------------------------------------------------------------------------------------

    async def execute(
        self, commands: Sequence[Command], keys: Sequence[str], node: Any = None, counted: bool = True
    ) -> list[Any]:
        """Runs `commands` (their keys `keys`; on Cluster on `node`, else the owner of keys[0]) and returns their
        answers once enough replicas hold them. A command's error is raised (the first). `counted`: a refusal is
        counted in `short` (health's probe is not: it would count once a second while replicas are missing)."""
        needed = await self.required()
        if not needed:
            return await self._unreplicated(commands, node)
        if isinstance(self._redis, RedisCluster):
            results, waits = await self._on_cluster(self._redis, commands, keys, node, needed)
        else:
            results, waits = await self._on_server(commands, needed)
        try:
            self._check(results[len(commands) :], waits)
        except NotReplicated:
            if counted:
                self.short += 1
            raise
        return results[: len(commands)]

    async def _unreplicated(self, commands: Sequence[Command], node: Any) -> list[Any]:
        target = {"target_nodes": node} if node is not None else {}
        return [await self._redis.execute_command(*command, **target) for command in commands]

    async def _on_server(self, commands: Sequence[Command], needed: int) -> tuple[list[Any], list[Command]]:
        waits = await self._waits("", needed, None)
        async with self._redis.pipeline(transaction=False) as pipe:
            for command in (*commands, *waits):
                pipe.execute_command(*command)
            results = await pipe.execute(raise_on_error=False)
        _raise_first(results[: len(commands)])
        return list(results), waits

    async def _on_cluster(
        self, client: RedisCluster, commands: Sequence[Command], keys: Sequence[str], node: Any, needed: int
    ) -> tuple[list[Any], list[Command]]:
        await self._refresh_if_stale(client)
        if node is None or node.name not in {n.name for n in client.get_primaries()}:
            node = client.get_node_from_key(keys[0])
        asking = False
        for attempt in range(3):
            waits = await self._waits(node.name, needed, node)
            stack = [PipelineCommand(i, *c) for i, c in enumerate([*_asking(commands, asking), *waits])]
            try:
                await node.execute_pipeline(stack)
            except (RedisConnectionError, RedisTimeoutError, OSError):
                self._stale = True
                raise
            results = [c.result for c in stack][1 if asking else 0 :]
            redirect = next((r for r in results if isinstance(r, AskError)), None)  # MovedError is an AskError
            if redirect is None or attempt == 2:
                break
            if isinstance(redirect, MovedError):  # the slot has a new owner (a promoted replica): learn the map
                self._stale, self._refreshed_at, asking = True, 0.0, False
                await self._refresh_if_stale(client)
                node = client.get_node_from_key(keys[0])
            else:  # ASK: this one command goes to the node importing the slot
                node = client.get_node(host=redirect.host, port=redirect.port) or node
                asking = True
        if any(isinstance(r, (RedisConnectionError, RedisTimeoutError)) for r in results):
            self._stale = True
        _raise_first(results[: len(commands)])
        return results, waits

    async def _refresh_if_stale(self, client: RedisCluster) -> None:
        if not self._stale or time.monotonic() - self._refreshed_at < MAP_REFRESH_S:
            return
        async with self._lock:
            if not self._stale or time.monotonic() - self._refreshed_at < MAP_REFRESH_S:
                return
            self._refreshed_at = time.monotonic()
            try:
                await client.nodes_manager.initialize()
            except (RedisError, RedisClusterException, OSError) as error:
                raise StoreUnavailable(f"redis cluster: cannot learn the slot map ({error})") from error
            self._stale = False

    async def _waits(self, name: str, needed: int, node: ClusterNode | None) -> list[Command]:
        """WAIT for the replicas (they hold the write: a failover keeps it) and, where the server has WAITAOF and
        its AOF is on, WAITAOF for the primary's own fsync. Not WAITAOF on the replicas: they report their fsync
        about once a second, which would make every write wait up to that long."""
        aof = self._aof.get(name)
        if aof is None:
            aof = self._aof[name] = await self._server_facts(node)
        has_waitaof, numlocal = aof
        waits: list[Command] = [("WAIT", needed, self._wait_ms)]
        return [*waits, ("WAITAOF", 1, 0, self._wait_ms)] if has_waitaof and numlocal else waits

    async def _server_facts(self, node: ClusterNode | None) -> tuple[bool, int]:
        """Whether the server has WAITAOF (Redis 7.2+, Valkey), and whether its own AOF is on (WAITAOF refuses
        numlocal 1 without it)."""
        if node is not None:
            stack = [PipelineCommand(0, "INFO", "server"), PipelineCommand(1, "INFO", "persistence")]
            await node.execute_pipeline(stack)
            _raise_first([c.result for c in stack])
            server, persistence = (cast(dict[str, Any], c.result) for c in stack)
        else:
            server, persistence = await self._redis.info("server"), await self._redis.info("persistence")
        version = tuple(int(p) for p in str(server.get("redis_version", "0.0")).split(".")[:2])
        return version >= (7, 2), 1 if int(persistence.get("aof_enabled", 0)) else 0

    def _check(self, acks: Sequence[Any], waits: Sequence[Command]) -> None:
        refused = next((a for a in acks if isinstance(a, Exception)), None)
        if refused is not None:  # a server that refuses WAIT cannot say the write is safe: it is not acknowledged
            raise NotReplicated(f"redis: WAIT refused ({refused}): the write cannot be confirmed on a replica")
        replicas, needed = int(acks[0]), waits[0][1]
        local = int(acks[1][0]) if len(acks) > 1 else 1  # WAITAOF: [fsync'd here, fsync'd on replicas]
        if replicas < needed or local < 1:
            raise NotReplicated(
                f"redis: {replicas} of {needed} required replica(s) confirmed the write in {self._wait_ms} ms"
                + ("" if local else "; not fsync'd on the primary")
            )

    # -- health ----------------------------------------------------------------------------------------------

    async def probe(self) -> None:
        """Raises NotReplicated (or StoreUnavailable) unless every primary gets a write confirmed by enough
        replicas now: health must not say SERVING while every check would fail closed."""
        if not await self.required():
            return
        if isinstance(self._redis, RedisCluster):
            await self._refresh_if_stale(self._redis)
            for node in self._redis.get_primaries():
                key = self._keys.replication_probe(self._probe_tag(self._redis, node))
                await self.execute([("INCR", key)], [key], node, counted=False)
            return
        key = self._keys.replication_probe("0")
        await self.execute([("INCR", key)], [key], counted=False)

    def _probe_tag(self, client: RedisCluster, node: ClusterNode) -> str:
        """A tag whose probe key lives on `node` (found by trying tags: a few hundred at most)."""
        tag = self._probe_tags.get(node.name)
        if tag is None or _owner(client, self._keys.replication_probe(tag)) != node.name:
            tag = next(
                str(i) for i in range(100_000) if _owner(client, self._keys.replication_probe(str(i))) == node.name
            )
            self._probe_tags[node.name] = tag
        return tag


def _owner(client: RedisCluster, key: str) -> str:
    node = client.get_node_from_key(key)
    return node.name if node is not None else ""


def _asking(commands: Sequence[Command], asking: bool) -> list[Command]:
    return [("ASKING",), *commands] if asking else list(commands)


def _raise_first(results: Sequence[Any]) -> None:
    for result in results:
        if isinstance(result, Exception):
            raise result
