"""Creates the Redis client from settings: short explicit timeouts, a bounded blocking pool, one quick retry on a
broken connection (one that went stale across a Redis restart reconnects once instead of failing the call).

Three shapes: one server (or one address in front of a managed primary), Redis Cluster (the client follows MOVED
and ASK and learns the slot map again after a failover), and a master with replicas under Sentinel (every new
connection asks the Sentinels where the master is, so after a failover the pool reconnects to the promoted
replica; a connection that meets a demoted master, READONLY, is dropped).

`Lanes`: a few connections of the check path's own, beside the pool, for its one script call per check. A command
through the client costs redis-py's per-command machinery (pool checkout under a condition, a task per socket
write for the write timeout, observability hooks) about as much CPU as the round trip itself; on a lane it costs
redis-py's Connection (its RESP packing, the hiredis parser, the same Retry) and one timeout around the call."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class _SentinelBlockingPool(SentinelConnectionPool, BlockingConnectionPool):
    """The Sentinel pool (connections to whichever server is master now) with the blocking pool's bound: a burst
    waits up to the timeout for a connection instead of failing at once."""


_BACKOFF_CAP_S, _BACKOFF_BASE_S = 0.05, 0.005
RETRY_AFTER_S = min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2)  # what the Retry below waits before its one retry


def _retry() -> Retry:
    # Retry once on a broken connection (stale after a Redis restart or a failover), never on a timeout: a hung
    # Redis must cost one timeout, not two.
    return Retry(
        ExponentialBackoff(cap=_BACKOFF_CAP_S, base=_BACKOFF_BASE_S), retries=1,
        supported_errors=(RedisConnectionError,),
    )  # fmt: skip


def make_client(
    url: str, *, cluster: bool, timeout_s: float, connections: int, sentinels: Sequence[tuple[str, int]] = (),
    sentinel_master: str = "",
) -> Redis:  # fmt: skip
    """`sentinels`: find the master `sentinel_master` through them; `url` (may be empty) then gives only the
    master's password, database and scheme (rediss: TLS)."""
    if sentinels:
        return _sentinel_client(url, sentinels, sentinel_master, timeout_s, connections)
    if cluster:
        return RedisCluster.from_url(  # type: ignore[return-value]
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=_retry(),
            max_connections=connections,
        )  # fmt: skip
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=connections,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=_retry(),
    )
    return Redis(connection_pool=pool)


def _sentinel_client(
    url: str, sentinels: Sequence[tuple[str, int]], master: str, timeout_s: float, connections: int
) -> Redis:
    parsed = urlsplit(url) if url else None
    options: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    sentinel = Sentinel(list(sentinels), sentinel_kwargs=dict(options), **options)
    master_options: dict[str, Any] = {**options, "retry": _retry(), "max_connections": connections,
                                      "timeout": timeout_s}  # fmt: skip
    if parsed is not None:
        if parsed.password:
            master_options["password"] = unquote(parsed.password)
        if parsed.username:
            master_options["username"] = unquote(parsed.username)
        if parsed.path.strip("/"):
            master_options["db"] = int(parsed.path.strip("/"))
        if parsed.scheme == "rediss":
            master_options["ssl"] = True
    return sentinel.master_for(master, redis_class=Redis, connection_pool_class=_SentinelBlockingPool, **master_options)


def lane_count(connections: int) -> int:
    """Of DEBAR_REDIS_CONNECTIONS, how many are the check path's lanes (the rest is the pool's)."""
    return connections // 2


class Lanes:
    """Up to `count` connections of their own (made on first use), each carrying one command at a time; when every
    lane is busy a command goes through the client's pool as usual. On Redis Cluster or under Sentinel (or with no
    lanes) every command goes through the client: a lane talks to one fixed server."""

    def __init__(self, client: Redis | RedisCluster, count: int, timeout_s: float) -> None:
        self._client = client
        # Not under Sentinel either: its pool's connections find the master themselves, lanes are kept simple.
        plain = not isinstance(client, RedisCluster) and not isinstance(client.connection_pool, SentinelConnectionPool)
        self._count = count if plain else 0
        self._timeout_s = timeout_s
        self._free: list[AbstractConnection] = []
        self._all: list[AbstractConnection] = []

    def _new(self) -> AbstractConnection:
        pool = self._client.connection_pool  # type: ignore[union-attr]
        # No socket timeout of its own: redis-py would then run every write in a task of its own (wait_for);
        # the call's one timeout below bounds the write and the read together.
        lane: AbstractConnection = pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})
        self._all.append(lane)
        return lane

    async def execute(self, *args: Any) -> Any:
        if self._free:
            lane = self._free.pop()
        elif len(self._all) < self._count:
            lane = self._new()
        else:
            return await self._client.execute_command(*args)
        try:
            try:
                return await self._once(lane, args)
            except RedisConnectionError:
                # The client's Retry, spelled out for a lane (its call_with_retry costs two closures and a coroutine
                # on every call, failing or not): a broken connection is dropped and the command sent once more, on
                # a fresh one, after the same backoff; a timeout is never retried.
                await lane.disconnect(nowait=True)
            await asyncio.sleep(RETRY_AFTER_S)
            try:
                return await self._once(lane, args)
            except RedisConnectionError:
                await lane.disconnect(nowait=True)
                raise
        finally:
            self._free.append(lane)

    async def _once(self, lane: AbstractConnection, args: Sequence[Any]) -> Any:
        try:
            async with asyncio.timeout(self._timeout_s):
                await lane.send_packed_command(lane.pack_command(*args), check_health=False)
                return await lane.read_response()
        except TimeoutError:
            # A timeout mid-call leaves the connection out of step with Redis: redis-py closed it (it does on any
            # interruption of a read or a write); the next call on this lane connects afresh.
            await lane.disconnect(nowait=True)
            raise RedisTimeoutError(f"Timeout after {self._timeout_s} s talking to Redis") from None

    async def aclose(self) -> None:
        for lane in self._all:
            await lane.disconnect()
        self._all.clear()
        self._free.clear()
