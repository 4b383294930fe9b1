"""The check path's lanes (redis_client.Lanes) on a real Redis: a lane whose connection Redis dropped (a restart, a
failover, CLIENT KILL) sends its command once more on a fresh connection and answers; a Redis that does not answer
costs one timeout, never a retry."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from debar.local.embedded_redis import EmbeddedRedis
from debar.sanction.adapters.redis_client import Lanes, make_client


@pytest.fixture
def server(tmp_path: Any) -> Any:
    with EmbeddedRedis(tmp_path / "redis") as redis:
        yield redis


async def test_a_lane_whose_connection_was_dropped_answers_on_a_fresh_one(server: EmbeddedRedis):
    client = make_client(server.url, cluster=False, timeout_s=2, connections=2)
    lanes = Lanes(client, 1, 2.0)
    try:
        assert await lanes.execute("SET", "k", "v") == b"OK"  # raw replies: no response callbacks on a lane
        lane_id = await lanes.execute("CLIENT", "ID")
        # Redis drops the lane's connection (as a restart or a failover would): the next command must still answer.
        assert await client.execute_command("CLIENT", "KILL", "ID", lane_id) == 1
        assert await lanes.execute("GET", "k") == b"v"
        assert await lanes.execute("CLIENT", "ID") != lane_id  # answered on a new connection of the same lane
    finally:
        await lanes.aclose()
        await client.aclose()


async def test_a_redis_that_does_not_answer_costs_one_timeout(server: EmbeddedRedis):
    client = make_client(server.url, cluster=False, timeout_s=0.5, connections=2)
    lanes = Lanes(client, 1, 0.5)
    assert server.process is not None
    try:
        assert await lanes.execute("PING") in (b"PONG", "PONG")
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(RedisTimeoutError):
                await lanes.execute("PING")
            took = time.monotonic() - started
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert 0.4 <= took < 0.9, f"{took:.2f} s: one timeout of 0.5 s, not a retry's second"
        assert await lanes.execute("PING") in (b"PONG", "PONG")  # the lane connects afresh once Redis answers again
    finally:
        await lanes.aclose()
        await client.aclose()
