"""Creates the Redis client from settings: short explicit timeouts, a bounded blocking pool, one quick retry on a
broken connection (one that went stale across a Redis restart reconnects once instead of failing the call)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


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
