"""`debar log archive`: moves each bucket stream's oldest records, those past their retention, to archive files,
then trims them from Redis. Only a prefix of a stream is archived (the first record still needed, or not yet in the
Merkle tree, stops it), so the stream in Redis continues from the last archived record; nothing is trimmed that was
not written and fsync'd. The tree keeps committing to the archived entries: `debar log verify --archive` reads
them back.

Then (`archive_tiles`) the Merkle tree's full level-0 tiles (256 leaf hashes, 8 KiB) whose leaves are all archived
records go the same way: written and fsync'd, then marked archived and removed from Redis in one script. A tile
holding any leaf not archived stays (a refusal kept while its restriction lasts, an objection or operation record,
whose streams are never archived, or the tree's last, growing tile). The levels above (every 8th, 1/256 of level
0 each) stay in Redis: the integrator's edge, the inclusion proofs of decisions still in Redis and the consistency
proofs of a witness that is not months behind never need an archived tile; a proof that would answers that its
tile is archived (ports.NodesArchived)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from debar.sanction.app.ports import Archive, DecisionLog, TreeStore
from debar.sanction.domain.log_records import LogEntry, decisions_of
from debar.sanction.domain.retention import RetentionPolicy
from debar.tlog.checkpoint import parse_checkpoint
from debar.tlog.note import parse_note

TILE_WIDTH = 256  # leaves in a level-0 tile (tlog-tiles' width)
PAGE = 1000  # integrated records read per round trip
BATCH = 512  # tiles (4 MiB) per file and per script call


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


async def archive_tiles(tree: TreeStore, log: DecisionLog, archive: Archive) -> int:
    """Moves every full level-0 tile whose leaves all belong to archived records to `archive`, then out of the
    tree's store; returns how many. Reads the whole leaf order (a record's stream and id tell whether it is
    archived: at or before its bucket's `archived_to`)."""
    archived_to: dict[str, str] = {}
    for bucket in await log.buckets():
        archived_to[log.stream(bucket)] = await log.archived_to(bucket)
    # Only tiles wholly before the latest signed checkpoint: the integrator resumes by proving the tree
    # consistent with it, which needs the leaves of the tile its size ends in.
    note = await tree.latest_checkpoint()
    signed = parse_checkpoint(parse_note(note).text).size if note is not None else 0
    full = min((await tree.state()).size, signed) // TILE_WIDTH
    done = await tree.archived_tiles()
    kept: set[int] = set()
    start = 0
    while True:
        page = await tree.records(start, PAGE)
        start += len(page)
        for record in page:
            cut = archived_to.get(record.stream, "")
            if not cut or _after(record.record_id, cut):
                last = record.first_leaf + max(record.count, 1) - 1
                kept.update(range(record.first_leaf // TILE_WIDTH, last // TILE_WIDTH + 1))
        if len(page) < PAGE:
            break
    movable = [t for t in range(full) if t not in kept and t not in done]
    moved = 0
    for at in range(0, len(movable), BATCH):
        batch = movable[at : at + BATCH]
        found = await tree.tiles(batch)
        tiles = {t: data for t, data in zip(batch, found, strict=True) if data is not None}
        if not tiles:
            continue
        archive.write_tiles(tiles)  # durable before Redis forgets them
        moved += await tree.forget_tiles(sorted(tiles))
    return moved
