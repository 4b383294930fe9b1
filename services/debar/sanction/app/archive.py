"""`debar log archive`: moves each bucket stream's oldest records, those past their retention, to archive files,
then trims them from Redis. Only a prefix of a stream is archived (the first record still needed stops it), so the
stream in Redis continues from the last archived record; nothing is trimmed that was not written and fsync'd.
The Merkle tree keeps committing to the archived entries (`debar log verify --archive` reads them back), so a
record is archived only once the tree has integrated it: the prefix stops at the first record it has not."""

from __future__ import annotations

from dataclasses import dataclass

from debar.sanction.app.ports import Archive, DecisionLog, TreeStore
from debar.sanction.domain.log_records import LogEntry, decisions_of
from debar.sanction.domain.retention import RetentionPolicy


@dataclass(frozen=True, slots=True)
class ArchivedStream:
    bucket: str
    records: int
    decisions: int
    trimmed: bool


async def _integrated_prefix(tree: TreeStore, stream: str, records: list[LogEntry]) -> int:
    """How many of `records` (a stream's first ones, in order) the tree has integrated: the integrator takes each
    stream in order, so they are a prefix, found by bisection."""
    low, high = 0, len(records)  # records[:low] integrated; records[high:] not
    while low < high:
        middle = (low + high) // 2
        if await tree.first_leaf(stream, records[middle].stream_id) is None:
            high = middle
        else:
            low = middle + 1
    return low


async def archive_log(
    log: DecisionLog, archive: Archive, policy: RetentionPolicy, now: int, tree: TreeStore | None = None
) -> list[ArchivedStream]:
    """`tree`: archive only what it has integrated (None: no Merkle log to wait for, e.g. in unit tests)."""
    done = []
    for bucket in await log.buckets():
        records: list[LogEntry] = []
        async for record in log.walk(bucket):
            if not policy.archivable(record, now):
                break
            records.append(record)
        if records and tree is not None:
            records = records[: await _integrated_prefix(tree, log.stream(bucket), records)]
        if not records:
            continue
        archive.write(bucket, records)
        trimmed = await log.trim(bucket, records[0].stream_id, records[-1].stream_id)
        decisions = sum(len(decisions_of(r)) for r in records)
        done.append(ArchivedStream(bucket, len(records), decisions, trimmed >= 0))
    return done
