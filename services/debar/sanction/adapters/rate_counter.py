"""Per-caller check counters in fixed windows, in Redis so that a limit holds across every sanction replica.

    {p}:rate:{rate:CALLER}:W   string  items checked by CALLER in window W; expires two windows after it starts

Each caller's counters carry their own hash tag (never a subject bucket's), so in Redis Cluster they spread by
caller and never share a slot with check data. One script call adds and sets the expiry atomically."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from debar.sanction.app.ports import RateCounterUnavailable

_ADD = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return n
"""


class RedisRateCounter:
    def __init__(self, client: Redis, prefix: str) -> None:
        self._prefix = prefix
        self._add = client.register_script(_ADD)

    def key(self, caller: str, window: int) -> str:
        return f"{self._prefix}:rate:{{rate:{caller}}}:{window}"

    async def add(self, caller: str, window: int, window_s: int, cost: int) -> int:
        try:
            return int(await self._add(keys=[self.key(caller, window)], args=[cost, 2 * window_s]))
        except RedisError as error:
            raise RateCounterUnavailable(str(error)) from error
