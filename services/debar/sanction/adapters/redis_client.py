"""Creates the Redis client from settings: short explicit timeouts, a bounded blocking pool, one quick retry on a
broken connection (one that went stale across a Redis restart reconnects once instead of failing the call).

Three shapes: one server (or one address in front of a managed primary), Redis Cluster (the client follows MOVED
and ASK and learns the slot map again after a failover), and a master with replicas under Sentinel (every new
connection asks the Sentinels where the master is, so after a failover the pool reconnects to the promoted
replica; a connection that meets a demoted master, READONLY, is dropped)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


class _SentinelBlockingPool(SentinelConnectionPool, BlockingConnectionPool):
    """The Sentinel pool (connections to whichever server is master now) with the blocking pool's bound: a burst
    waits up to the timeout for a connection instead of failing at once."""


def _retry() -> Retry:
    # Retry once on a broken connection (stale after a Redis restart or a failover), never on a timeout: a hung
    # Redis must cost one timeout, not two.
    return Retry(ExponentialBackoff(cap=0.05, base=0.005), retries=1, supported_errors=(RedisConnectionError,))


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
