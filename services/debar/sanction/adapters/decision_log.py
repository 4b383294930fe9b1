"""Reads the decision log from Redis: one record, a subject's decision locations, and whole streams for the
archive. Records are written by the check script (lua/decide.lua) in the same call that decides."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from redis.asyncio import Redis

from debar.common.circuit import CircuitBreaker
from debar.sanction.adapters.keys import Keys, hash_tag
from debar.sanction.adapters.redis_errors import unavailable_on_redis_error
from debar.sanction.adapters.replication import Replication
from debar.sanction.adapters.scripts import Scripts
from debar.sanction.domain.decisions import decision_id
from debar.sanction.domain.log_records import LogEntry, decisions_of, subject_buckets

_RAW = "surrogateescape"


def _entry(stream_id: bytes | str, raw: dict[bytes, bytes]) -> LogEntry:
    sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    # Bytes that are not UTF-8 (no writer of a stream writes them: an insider's record) are kept as they are, so that
    # the archive writes them back and verify rebuilds the same opaque leaf (sequenced_log.py).
    return LogEntry(sid, {k.decode(errors=_RAW): v.decode(errors=_RAW) for k, v in raw.items()})


def _newest_first_key(decision_id: str) -> tuple[int, int, str, int]:
    ms, seq, bucket, index = decision_id.split("-")
    return int(ms), int(seq), bucket, int(index)


class RedisDecisionLog:
    def __init__(
        self,
        client: Redis,
        keys: Keys,
        breaker: CircuitBreaker | None = None,
        replication: Replication | None = None,
        current_pseudonym: Callable[[str], str] | None = None,
    ) -> None:
        """`current_pseudonym`: a logged pseudonym's name under the current key, where `debar rekey` moved its
        list (forget_archived looks under both)."""
        self._redis = client
        self._current = current_pseudonym
        self._keys = keys
        self._breaker = breaker or CircuitBreaker()
        self._scripts = Scripts(client, ("trim",), replication)

    @unavailable_on_redis_error
    async def get(self, bucket: str, stream_id: str) -> LogEntry | None:
        found: Any = await self._redis.xrange(self._keys.log(bucket), stream_id, stream_id)
        return _entry(*found[0]) if found else None

    @unavailable_on_redis_error
    async def ids_for_subject(self, bucket: str, pseudonyms: Sequence[str], offset: int, count: int) -> list[str]:
        """Decision ids, newest first, across the subject's pseudonyms (a key rotation leaves decisions under the
        old one)."""
        ids: list[str] = []
        for pseudonym in pseudonyms:
            raw: Any = await self._redis.lrange(self._keys.subject_decisions(bucket, pseudonym), 0, offset + count - 1)
            ids += [i.decode() for i in raw]
        ids.sort(key=_newest_first_key, reverse=True)
        return ids[offset : offset + count]

    @unavailable_on_redis_error
    async def buckets(self) -> list[str]:
        found = set()
        async for key in self._redis.scan_iter(match=self._keys.log_pattern(), count=1000):
            found.add(hash_tag(key.decode() if isinstance(key, bytes) else key))
        return sorted(found)

    def stream(self, bucket: str) -> str:
        return self._keys.log(bucket)

    @unavailable_on_redis_error
    async def archived_to(self, bucket: str) -> str:
        """The stream id of the last archived record of the bucket's stream, "" when nothing was archived."""
        value: Any = await self._redis.get(self._keys.log_base(bucket))
        return value.decode().partition(" ")[0] if value else ""

    @unavailable_on_redis_error
    async def trim(self, bucket: str, first_id: str, last_id: str) -> int:
        """Removes the records from `first_id` to `last_id` (already archived); -1 if the stream changed."""
        ms, seq = last_id.split("-")
        keys = [self._keys.log(bucket), self._keys.log_base(bucket)]
        return int(await self._scripts.run("trim", keys, [first_id, last_id, f"{ms}-{int(seq) + 1}"]))

    @unavailable_on_redis_error
    async def forget_archived(self, bucket: str, records: Sequence[LogEntry], page: int = 1000) -> int:
        """Drops the decisions of `records` (archived and trimmed from the bucket's stream) from their subjects'
        decision lists; returns how many list items went. Each list key is the decision's own subject's (a
        batch's record may hold subjects of other buckets), under the logged pseudonym and its current one. LREM
        from the tail (count -1), where the oldest are; pipelined, `page` commands a round trip (on Redis Cluster
        the pipeline sends each node its own keys)."""
        removals = []
        for record in records:
            for i, (d, own) in enumerate(zip(decisions_of(record), subject_buckets(record, bucket), strict=True)):
                location, pseudonym = decision_id(record.stream_id, bucket, i), d["subject"]
                removals.append((self._keys.subject_decisions(own, pseudonym), location))
                moved = self._current(pseudonym) if self._current else pseudonym
                if moved != pseudonym:  # logged under an older key: re-keyed since, or not yet
                    removals.append((self._keys.subject_decisions(own, moved), location))
        removed = 0
        for start in range(0, len(removals), page):
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, location in removals[start : start + page]:
                    pipe.lrem(key, -1, location)
                removed += sum(int(n) for n in await pipe.execute())
        return removed

    def walk(self, bucket: str, page: int = 1000) -> AsyncIterator[LogEntry]:
        return stream_entries(self._redis, self._keys.log(bucket), page)

    async def unlisted(self, page: int = 1000) -> AsyncIterator[tuple[str, str, int]]:
        """Every decision of the buckets' streams that is on no decision list of its subject (the list of its own
        bucket, as `sb` names it, under the logged pseudonym or its current one): taken off behind the service's
        back, so that ListDecisions and the console no longer show it. One LPOS a list, pipelined `page` at a time;
        for `debar log verify` (ports.ListedDecisions), never on the check path."""
        for bucket in await self.buckets():
            stream = self._keys.log(bucket)
            asked: list[tuple[str, int, list[str]]] = []
            async for record in self.walk(bucket, page):
                try:
                    decisions = decisions_of(record)
                except ValueError:  # not the check script's: verify names it as unreadable
                    continue
                for i, (d, own) in enumerate(zip(decisions, subject_buckets(record, bucket), strict=True)):
                    pseudonym = d["subject"]
                    moved = self._current(pseudonym) if self._current else pseudonym
                    lists = [self._keys.subject_decisions(own, p) for p in dict.fromkeys((pseudonym, moved))]
                    asked.append((record.stream_id, i, lists))
                if len(asked) >= page:
                    async for found in self._not_on(stream, bucket, asked):
                        yield found
                    asked = []
            async for found in self._not_on(stream, bucket, asked):
                yield found

    async def _not_on(
        self, stream: str, bucket: str, asked: Sequence[tuple[str, int, list[str]]]
    ) -> AsyncIterator[tuple[str, str, int]]:
        if not asked:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream_id, i, lists in asked:
                for key in lists:
                    pipe.lpos(key, decision_id(stream_id, bucket, i))
            found: Any = await pipe.execute()
        at = 0
        for stream_id, i, lists in asked:
            if all(f is None for f in found[at : at + len(lists)]):
                yield stream, stream_id, i
            at += len(lists)


async def stream_entries(client: Redis, key: str, page: int = 1000) -> AsyncIterator[LogEntry]:
    """Every record of a stream (a bucket's, the objection log), oldest first, `page` a read."""
    start = "-"
    while True:
        batch: Any = await client.xrange(key, start, "+", count=page)
        for stream_id, raw in batch:
            yield _entry(stream_id, raw)
        if len(batch) < page:
            return
        ms, seq = batch[-1][0].decode().split("-")
        start = f"{ms}-{int(seq) + 1}"
