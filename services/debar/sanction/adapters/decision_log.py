"""Reads the decision log from Redis: one record, a subject's decision ids, and whole chains for verification.
Records are written by the check script (lua/decide.lua) in the same call that decides."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from redis.asyncio import Redis

from debar.sanction.adapters.keys import Keys
from debar.sanction.domain.chain import LogEntry


def _entry(stream_id: bytes | str, raw: dict[bytes, bytes]) -> LogEntry:
    sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    return LogEntry(sid, {k.decode(): v.decode() for k, v in raw.items()})


def _newest_first_key(decision_id: str) -> tuple[int, int, str, int]:
    ms, seq, bucket, index = decision_id.split("-")
    return int(ms), int(seq), bucket, int(index)


class RedisDecisionLog:
    def __init__(self, client: Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    async def get(self, bucket: str, stream_id: str) -> LogEntry | None:
        found: Any = await self._redis.xrange(self._keys.log(bucket), stream_id, stream_id)
        return _entry(*found[0]) if found else None

    async def ids_for_subject(self, bucket: str, pseudonyms: Sequence[str], offset: int, count: int) -> list[str]:
        """Decision ids, newest first, across the subject's pseudonyms (a key rotation leaves decisions under the
        old one)."""
        ids: list[str] = []
        for pseudonym in pseudonyms:
            raw: Any = await self._redis.lrange(self._keys.subject_decisions(bucket, pseudonym), 0, offset + count - 1)
            ids += [i.decode() for i in raw]
        ids.sort(key=_newest_first_key, reverse=True)
        return ids[offset : offset + count]

    async def buckets(self) -> list[str]:
        prefix = self._keys.log("")[:-1]  # "debar:log:{"
        found = set()
        async for key in self._redis.scan_iter(match=self._keys.log_pattern(), count=1000):
            name = key.decode() if isinstance(key, bytes) else key
            found.add(name[len(prefix) : -1])
        return sorted(found)

    async def head(self, bucket: str) -> str | None:
        value: Any = await self._redis.get(self._keys.log_head(bucket))
        return value.decode() if value else None

    async def walk(self, bucket: str, page: int = 1000) -> AsyncIterator[LogEntry]:
        start = "-"
        while True:
            batch: Any = await self._redis.xrange(self._keys.log(bucket), start, "+", count=page)
            for stream_id, raw in batch:
                yield _entry(stream_id, raw)
            if len(batch) < page:
                return
            last = batch[-1][0].decode()
            ms, seq = last.split("-")
            start = f"{ms}-{int(seq) + 1}"
