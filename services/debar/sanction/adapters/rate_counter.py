"""Per-caller check counters in fixed windows, in Redis so that a limit holds across every sanction replica. The
counter key is Keys.rate; one `rate` script call adds and sets the expiry atomically."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from debar.sanction.adapters.keys import Keys
from debar.sanction.adapters.redis_client import Lanes
from debar.sanction.adapters.scripts import Scripts
from debar.sanction.app.ports import RateCounterUnavailable


class RedisRateCounter:
    def __init__(self, client: Redis, keys: Keys, lanes: Lanes | None = None) -> None:
        self._keys = keys
        self._scripts = Scripts(client, ("rate",), lanes=lanes)

    async def add(self, caller: str, window: int, window_s: int, cost: int) -> int:
        """The caller's count in `window` after adding `cost`; the counter expires two windows after it starts."""
        try:
            return int(await self._scripts.run("rate", [self._keys.rate(caller, window)], [cost, 2 * window_s]))
        except RedisError as error:
            raise RateCounterUnavailable(str(error)) from error
