"""`debar log archive`: moves each bucket stream's oldest records, those past their retention, to archive files,
then trims them from Redis. Only a prefix of a stream is archived (the first record still needed, or not yet in the
Merkle tree, stops it), so the stream in Redis continues from the last archived record; nothing is trimmed that was
not written and fsync'd. The tree keeps committing to the archived entries: `debar log verify --archive` reads
them back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from debar.sanction.app.ports import Archive, DecisionLog
from debar.sanction.domain.log_records import LogEntry, decisions_of
from debar.sanction.domain.retention import RetentionPolicy


@dataclass(frozen=True, slots=True)
class ArchivedStream:
    bucket: str
    records: int
    decisions: int
    trimmed: bool


def _after(stream_id: str, cursor: str | None) -> bool:
    if cursor is None:
        return True
    return tuple(map(int, stream_id.split("-"))) > tuple(map(int, cursor.split("-")))


async def archive_log(
    log: DecisionLog,
    archive: Archive,
    policy: RetentionPolicy,
    now: int,
    integrated: Callable[[str], str | None] = lambda stream: None,
) -> list[ArchivedStream]:
    """`integrated(stream)`: the last record id of the stream in the Merkle tree; a record after it is never
    archived (the integrator reads the streams, not the archive: it would never be in the tree)."""
    done = []
    for bucket in await log.buckets():
        records: list[LogEntry] = []
        cursor = integrated(log.stream(bucket))
        async for record in log.walk(bucket):
            if not policy.archivable(record, now) or _after(record.stream_id, cursor):
                break
            records.append(record)
        if not records:
            continue
        archive.write(bucket, records)
        trimmed = await log.trim(bucket, records[0].stream_id, records[-1].stream_id)
        if trimmed >= 0:
            await log.forget_archived(bucket, records)
        decisions = sum(len(decisions_of(r)) for r in records)
        done.append(ArchivedStream(bucket, len(records), decisions, trimmed >= 0))
    return done
