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
tile is archived (ports.NodesArchived). The leaf order goes with them up to the run's cursor (`order_base`), and
the leaf index of the archived records; records passed but not archived are kept apart (`unarchived`), so the next
run reads only the leaf order since the cursor and those."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from debar.sanction.app.ports import Archive, DecisionLog, IntegratedRecord, TreeStore
from debar.sanction.domain.log_records import LogEntry, decisions_of
from debar.sanction.domain.retention import RetentionPolicy
from debar.tlog.checkpoint import parse_checkpoint
from debar.tlog.note import parse_note

TILE_WIDTH = 256  # leaves in a level-0 tile (tlog-tiles' width)
PAGE = 1000  # integrated records read per round trip
BATCH = 512  # tiles (4 MiB) per file and per script call
ORDER_BATCH = 10_000  # leaf-order items per file and per script call


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


@dataclass(frozen=True, slots=True)
class ArchivedTree:
    tiles: int  # level-0 tiles moved out of Redis
    order: int  # leaf-order items moved out of Redis (the cursor moved past them)
    unarchived: int  # records the cursor has passed that are not archived (their tiles stay)


async def archive_tiles(tree: TreeStore, log: DecisionLog, archive: Archive) -> ArchivedTree:
    """Moves every full level-0 tile whose leaves all belong to archived records to `archive`, then out of the
    tree's store, and the leaf order up to the last such tile with it. Reads only the leaf order after the
    previous run's cursor (`order_base`) and the records it left unarchived (`unarchived`), never the whole leaf
    order: a record's stream and id tell whether it is archived (at or before its bucket's `archived_to`).

    Each step is durable before the next, and each is idempotent, so a run killed at any point and run again
    converges: tiles written (fsync'd), then marked archived and deleted (one script); the leaf order written
    (fsync'd), then in one script trimmed from the list, the cursor moved past it, the archived records' leaf
    index deleted and the records not archived kept in `unarchived` (a compare-and-set on the cursor)."""
    archived_to: dict[str, str] = {}
    for bucket in await log.buckets():
        archived_to[log.stream(bucket)] = await log.archived_to(bucket)

    def is_archived(record: IntegratedRecord) -> bool:
        cut = archived_to.get(record.stream, "")
        return bool(cut) and not _after(record.record_id, cut)

    # Only tiles wholly before the latest signed checkpoint: the integrator resumes by proving the tree
    # consistent with it, which needs the leaves of the tile its size ends in.
    note = await tree.latest_checkpoint()
    signed = parse_checkpoint(parse_note(note).text).size if note is not None else 0
    boundary = min((await tree.state()).size, signed) // TILE_WIDTH * TILE_WIDTH
    base = await tree.order_base()
    waiting = await tree.unarchived()
    done = await tree.archived_tiles()
    # The new part of the leaf order: the records wholly before the boundary, from the cursor on.
    new: list[IntegratedRecord] = []
    passed = boundary  # every leaf before it is in a record the cursor passes (if the leaf order ends, all are)
    while True:
        page = await tree.records(base + len(new), PAGE)
        if page and new and page[0].first_leaf != new[-1].first_leaf + new[-1].count:
            raise ValueError("the leaf order changed while the archive run read it (another archive run?)")
        ends = [r for r in page if r.first_leaf + r.count <= boundary]
        new += ends
        if len(ends) < len(page):
            passed = min(page[len(ends)].first_leaf, boundary)
            break
        if len(page) < PAGE:
            break
    kept: set[int] = set()
    for record in [*waiting, *new]:
        if not is_archived(record):
            kept.update(_tiles_of(record))
    # Tiles wholly before `passed`: those the cursor reached this run, and those of records left unarchived by a
    # run before that are archived now.
    candidates = set(range((new[0].first_leaf if new else passed) // TILE_WIDTH, passed // TILE_WIDTH))
    candidates |= {t for r in waiting if is_archived(r) for t in _tiles_of(r)}
    movable = sorted(t for t in candidates if t not in kept and t not in done and t < passed // TILE_WIDTH)
    moved = 0
    for at in range(0, len(movable), BATCH):
        batch = movable[at : at + BATCH]
        found = await tree.tiles(batch)
        tiles = {t: data for t, data in zip(batch, found, strict=True) if data is not None}
        if not tiles:
            continue
        archive.write_tiles(tiles)  # durable before Redis forgets them
        moved += await tree.forget_tiles(sorted(tiles))
    # The leaf order the cursor passed, in batches: written (durable) before the store forgets it.
    left = [r for r in waiting if not is_archived(r)]
    freed = [r for r in waiting if is_archived(r)]
    order = 0
    for at in range(0, max(len(new), 1), ORDER_BATCH):
        items = new[at : at + ORDER_BATCH]
        if not items and not freed:
            break
        if items:
            archive.write_order(base + at, items)
        archived = [r for r in items if is_archived(r)] + (freed if at == 0 else [])
        order += await tree.forget_order(base + at, len(items), archived, [r for r in items if not is_archived(r)])
    left += [r for r in new if not is_archived(r)]
    return ArchivedTree(moved, order, len(left))


def _tiles_of(record: IntegratedRecord) -> range:
    last = record.first_leaf + max(record.count, 1) - 1
    return range(record.first_leaf // TILE_WIDTH, last // TILE_WIDTH + 1)
