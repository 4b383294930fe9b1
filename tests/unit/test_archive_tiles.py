"""Which level-0 tiles `debar log archive` moves out of the tree's store (app/archive.archive_tiles): full tiles
whose leaves are all archived records, wholly before the latest signed checkpoint; a tile holding a record not
archived, or a record of a stream that is never archived, stays. The leaf order goes with them up to the run's
cursor, and the leaf index of archived records; the next run reads only what is new since the cursor, plus the
records it passed but could not archive (which free their tiles once archived)."""

from __future__ import annotations

import asyncio

from debar.sanction.app.archive import archive_tiles
from debar.sanction.app.ports import IntegratedRecord
from debar.tlog.checkpoint import Checkpoint, sign_checkpoint
from debar.tlog.compact import CompactRange
from debar.tlog.keys import Ed25519Signer
from debar.tlog.merkle import leaf_hash
from tests.support.memory import ManualClock, MemoryArchive
from tests.support.memory_tlog import MemoryTreeStore


class _Log:
    """A decision log's archive marks only (pure logic: which records `debar log archive` has moved)."""

    def __init__(self, archived_to: dict[str, str]) -> None:
        self._to = archived_to

    async def buckets(self) -> list[str]:
        return sorted(self._to)

    def stream(self, bucket: str) -> str:
        return f"log:{bucket}"

    async def archived_to(self, bucket: str) -> str:
        return self._to[bucket]


def _tree(records: list[tuple[str, str, int]], signed: int) -> MemoryTreeStore:
    tree = MemoryTreeStore(ManualClock(0.0))
    edge = CompactRange()
    for stream, record_id, count in records:
        tree.record_list.append(IntegratedRecord(stream, record_id, edge.size, count))
        tree.nodes.update(edge.extend(leaf_hash(f"{stream} {record_id} {i}".encode()) for i in range(count)))
    tree.edge = edge
    note = sign_checkpoint(Checkpoint("test/log", signed, b"\0" * 32), Ed25519Signer.generate("test/log"))
    tree.checkpoint = (signed, note.to_bytes())
    return tree


def test_only_full_tiles_of_archived_records_before_the_signed_checkpoint_leave():
    records = [
        ("log:aaa", "1-0", 256),  # tile 0: archived
        ("log:bbb", "2-0", 200),  # tile 1: archived, with a record of the objection log: kept
        ("objlog", "3-0", 1),
        ("log:aaa", "4-0", 55),
        ("log:bbb", "5-0", 256),  # tile 2: archived
        ("log:aaa", "6-0", 256),  # tile 3: archived, but the signed checkpoint ends inside it
        ("log:bbb", "7-0", 256),  # tile 4: not archived yet, beyond the checkpoint
    ]
    tree = _tree(records, signed=3 * 256 + 10)
    archive = MemoryArchive()
    log = _Log({"aaa": "6-0", "bbb": "5-0"})
    for r in tree.record_list:
        tree.leaf[(r.stream, r.record_id)] = r.first_leaf
    moved = asyncio.run(archive_tiles(tree, log, archive))  # type: ignore[arg-type]
    assert moved.tiles == 2 and sorted(archive.tiles) == [0, 2]
    assert tree.archived == {0, 2}
    assert all(len(tile) == 256 * 32 for tile in archive.tiles.values())
    assert asyncio.run(tree.leaf_hashes(0, 3)) == [None, None, None]
    assert asyncio.run(tree.leaf_hashes(256, 257))[0] is not None
    # The leaf order up to the checkpoint's last full tile left with them (the record ending inside tile 3 is
    # where the cursor stops); the objection record stays in `unarchived`, its leaf index with it.
    assert moved.order == 5 and tree.base == 5 and [r.record_id for r in tree.record_list] == ["6-0", "7-0"]
    assert [archive.order[i].record_id for i in range(5)] == ["1-0", "2-0", "3-0", "4-0", "5-0"]
    assert list(tree.waiting) == [("objlog", "3-0")] and moved.unarchived == 1
    assert set(tree.leaf) == {("objlog", "3-0"), ("log:aaa", "6-0"), ("log:bbb", "7-0")}
    # Again: nothing more (the tiles left hold a leaf not archived, or end past the checkpoint).
    again = asyncio.run(archive_tiles(tree, log, archive))  # type: ignore[arg-type]
    assert (again.tiles, again.order) == (0, 0)


class _CountingTree(MemoryTreeStore):
    read: int = 0

    async def records(self, start: int, count: int) -> list[IntegratedRecord]:
        page = await super().records(start, count)
        self.read += len(page)
        return page


def test_a_run_reads_only_the_leaf_order_since_its_cursor_and_a_kept_record_frees_its_tile_once_archived():
    records = [("log:aaa", f"{i}-0", 16) for i in range(1, 33)]  # tiles 0, 1: 16 records each
    records[3] = ("log:bbb", "4-0", 16)  # tile 0 holds a record of another bucket, not archived yet
    tree = _tree(records, signed=2 * 256)
    counting = _CountingTree(ManualClock(0.0))
    counting.__dict__.update(tree.__dict__)
    archive = MemoryArchive()
    log = _Log({"aaa": "32-0", "bbb": ""})
    first = asyncio.run(archive_tiles(counting, log, archive))  # type: ignore[arg-type]
    assert (first.tiles, first.order, first.unarchived) == (1, 32, 1) and counting.archived == {1}
    assert counting.read == 32
    # Nothing new: the second run reads no leaf-order item (only the one record it left, from `unarchived`).
    counting.read = 0
    log = _Log({"aaa": "32-0", "bbb": "4-0"})  # that record is archived now: its tile goes
    second = asyncio.run(archive_tiles(counting, log, archive))  # type: ignore[arg-type]
    assert counting.read == 0
    assert (second.tiles, second.order, second.unarchived) == (1, 0, 0) and counting.archived == {0, 1}
    assert counting.waiting == {} and counting.leaf == {}
    assert [archive.order[i].record_id for i in range(32)] == [r[1] for r in records]
