"""Distinct subjects per caller and hour (SubjectTally) in Redis: a HyperLogLog per caller-hour (PFADD, PFCOUNT)
and a set naming the hour's callers, all under the hour's own hash tag (one slot per hour in Redis Cluster: a
flush is one pipelined call, once a second per replica), kept two hours.

PFCOUNT goes into the pipeline as a raw command: redis-py's cluster pipeline refuses `pipe.pfcount` outright (a
multi-key PFCOUNT may span slots; ours name one key each, all in the hour's slot), and that refusal is a
RedisClusterException, which redis_errors reads as a cluster failing over: on Redis Cluster every read of the
counts was StoreUnavailable and the figure stayed 0."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from redis.asyncio import Redis

from debar.common.circuit import CircuitBreaker
from debar.sanction.adapters.keys import Keys
from debar.sanction.adapters.redis_errors import unavailable_on_redis_error
from debar.sanction.app.distinct import HOUR_S

KEEP_S = 2 * HOUR_S


class RedisSubjectTally:
    def __init__(self, client: Redis, keys: Keys, breaker: CircuitBreaker) -> None:
        self._redis = client
        self._keys = keys
        self._breaker = breaker

    @unavailable_on_redis_error
    async def add(self, hour: int, seen: Mapping[str, Sequence[str]]) -> None:
        callers = self._keys.distinct_callers(hour)
        async with self._redis.pipeline(transaction=False) as pipe:
            for caller, pseudonyms in seen.items():
                if not pseudonyms:
                    continue
                key = self._keys.distinct(hour, caller)
                pipe.pfadd(key, *pseudonyms)
                pipe.expire(key, KEEP_S)
                pipe.sadd(callers, caller)
            pipe.expire(callers, KEEP_S)
            await pipe.execute()

    @unavailable_on_redis_error
    async def counts(self, hour: int) -> dict[str, int]:
        callers = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in await self._redis.smembers(
            self._keys.distinct_callers(hour)
        ))  # fmt: skip
        if not callers:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for caller in callers:
                pipe.execute_command("PFCOUNT", self._keys.distinct(hour, caller))  # one key: see the docstring
            found = await pipe.execute()
        return {caller: int(count) for caller, count in zip(callers, found, strict=True)}
