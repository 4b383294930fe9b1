"""Objections for tests: moving one back in time, since the service's clock cannot be wound forward."""

from __future__ import annotations

import dataclasses
import time

import redis as redis_client

from debar.sanction.adapters.keys import ObjectionKeys
from debar.sanction.adapters.objection_store import decode, encode


def filed_days_ago(redis_url: str, objection_id: str, days: float, cluster: bool = False) -> None:
    """The stored objection as if filed `days` ago: its review deadline moves with it, and its place in the
    index. On a Redis Cluster give `cluster` (the objection records live under one hash tag)."""
    client = (redis_client.RedisCluster if cluster else redis_client.Redis).from_url(redis_url)
    keys = ObjectionKeys()
    stored = decode(client.hget(keys.records(objection_id), objection_id))
    shift = int(time.time() - days * 86400) - stored.filed_at
    moved = dataclasses.replace(stored, filed_at=stored.filed_at + shift, review_due=stored.review_due + shift)
    history = tuple(dataclasses.replace(t, at=t.at + shift) if t.from_state is None else t for t in moved.history)
    moved = dataclasses.replace(moved, history=history)
    client.hset(keys.records(objection_id), objection_id, encode(moved))
    client.zadd(keys.state(moved.state), {objection_id: moved.listing_order})
    client.close()
