"""Objections for tests: moving one back in time, since the service's clock cannot be wound forward."""

from __future__ import annotations

import dataclasses
import time

import redis as redis_client

from debar.common.settings import DEV_OBJECTION_KEYS
from debar.sanction.adapters.keys import ObjectionKeys
from debar.sanction.adapters.objection_store import decode, encode
from debar.sanction.adapters.sealing import Sealer


def filed_days_ago(
    redis_url: str, objection_id: str, days: float, cluster: bool = False, objection_keys: str = DEV_OBJECTION_KEYS
) -> None:
    """The stored objection as if filed `days` ago: its review deadline moves with it, and its place in the
    index. On a Redis Cluster give `cluster` (the objection records live under one hash tag); `objection_keys`:
    the service's DEBAR_OBJECTION_KEYS (the records are sealed)."""
    client = (redis_client.RedisCluster if cluster else redis_client.Redis).from_url(redis_url)
    keys = ObjectionKeys()
    sealer = Sealer.from_spec(objection_keys)
    stored = decode(client.hget(keys.records(objection_id), objection_id), sealer)
    shift = int(time.time() - days * 86400) - stored.filed_at
    moved = dataclasses.replace(stored, filed_at=stored.filed_at + shift, review_due=stored.review_due + shift)
    history = tuple(dataclasses.replace(t, at=t.at + shift) if t.from_state is None else t for t in moved.history)
    moved = dataclasses.replace(moved, history=history)
    client.hset(keys.records(objection_id), objection_id, encode(moved, sealer))
    client.zadd(keys.state(moved.state), {objection_id: moved.listing_order})
    client.close()
