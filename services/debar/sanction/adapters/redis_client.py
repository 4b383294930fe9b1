"""Creates the Redis client from settings: short explicit timeouts, a bounded blocking pool, one quick retry on a
broken connection (one that went stale across a Redis restart reconnects once instead of failing the call).

`Lanes`: a few connections of the check path's own, beside the pool, for its one script call per check. A command
through the client costs redis-py's per-command machinery (pool checkout under a condition, a task per socket
write for the write timeout, observability hooks) about as much CPU as the round trip itself; on a lane it costs
redis-py's Connection (its RESP packing, the hiredis parser, the same Retry) and one timeout around the call."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def make_client(url: str, *, cluster: bool, timeout_s: float, connections: int) -> Redis:
    # Retry once on a broken connection (stale after a Redis restart), never on a timeout: a hung Redis must
    # cost one timeout, not two.
    retry = Retry(ExponentialBackoff(cap=0.05, base=0.005), retries=1, supported_errors=(RedisConnectionError,))
    if cluster:
        return RedisCluster.from_url(  # type: ignore[return-value]
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=retry,
            max_connections=connections,
        )  # fmt: skip
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=connections,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=retry,
    )
    return Redis(connection_pool=pool)


def lane_count(connections: int) -> int:
    """Of DEBAR_REDIS_CONNECTIONS, how many are the check path's lanes (the rest is the pool's)."""
    return connections // 2


class Lanes:
    """Up to `count` connections of their own (made on first use), each carrying one command at a time; when every
    lane is busy a command goes through the client's pool as usual. On Redis Cluster (or with no lanes) every
    command goes through the client: a lane talks to one server."""

    def __init__(self, client: Redis | RedisCluster, count: int, timeout_s: float) -> None:
        self._client = client
        self._count = 0 if isinstance(client, RedisCluster) else count
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
            return await lane.retry.call_with_retry(
                lambda: self._once(lane, args), lambda error: lane.disconnect(nowait=True)
            )
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
