"""Replication's count of refused writes (debar_writes_unreplicated), on the session's real Redis (a single server or
a cluster, neither with replicas), asked for one replica: every write is refused, and counted; health's probe is
refused too, but not counted (it runs once a second while replicas are missing)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio.cluster import RedisCluster

from debar.local.embedded_redis import EmbeddedRedis
from debar.local.local_cluster import LocalCluster
from debar.sanction.adapters.keys import Keys
from debar.sanction.adapters.redis_client import make_client
from debar.sanction.adapters.replication import Replication
from debar.sanction.app.ports import NotReplicated


def test_a_write_too_few_replicas_confirm_is_refused_and_counted_and_a_probe_is_not(
    redis_server: EmbeddedRedis | LocalCluster,
) -> None:
    async def run() -> None:
        on_cluster = isinstance(redis_server, LocalCluster)
        client = make_client(redis_server.url, cluster=on_cluster, timeout_s=5, connections=2)
        if isinstance(client, RedisCluster):
            await client.initialize()  # the slot map, as the store learns it before its first write
        replication = Replication(client, Keys("repltest"), required=1, wait_ms=20)
        try:
            for n in (1, 2):
                with pytest.raises(NotReplicated, match="0 of 1 required replica"):
                    await replication.execute([("SET", "repltest:w", "1")], ["repltest:w"])
                assert replication.short == n
            with pytest.raises(NotReplicated):
                await replication.probe()
            assert replication.short == 2
        finally:
            await client.aclose()

    asyncio.run(run())
