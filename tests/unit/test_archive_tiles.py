"""Which level-0 tiles `debar log archive` moves out of the tree's store (app/archive.archive_tiles): full tiles
whose leaves are all archived records, wholly before the latest signed checkpoint; a tile holding a record not
archived, or a record of a stream that is never archived, stays."""

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
    moved = asyncio.run(archive_tiles(tree, log, archive))  # type: ignore[arg-type]
    assert moved == 2 and sorted(archive.tiles) == [0, 2]
    assert tree.archived == {0, 2}
    assert all(len(tile) == 256 * 32 for tile in archive.tiles.values())
    assert asyncio.run(tree.leaf_hashes(0, 3)) == [None, None, None]
    assert asyncio.run(tree.leaf_hashes(256, 257))[0] is not None
    # Again: nothing more (the tiles left hold a leaf not archived, or end past the checkpoint).
    assert asyncio.run(archive_tiles(tree, log, archive)) == 0  # type: ignore[arg-type]
