"""The Merkle log's ports in memory (a sequenced log, the tree store with its lease, a checkpoint store, witnesses),
for unit tests of the integrator and the proofs. Held to what the Redis and directory adapters do where a use case
can tell: leases expire on the test's clock, commits check the owner and the size, every node is kept."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from debar.sanction.app.ports import (
    Cosigning,
    IntegratedRecord,
    LeaseLost,
    ProofFrom,
    SequencedRecord,
    StoreUnavailable,
    TreeConflict,
    TreeGrowth,
    TreeState,
    WitnessFailure,
    WitnessFailureKind,
)
from debar.tlog.checkpoint import parse_checkpoint
from debar.tlog.compact import CompactRange
from debar.tlog.merkle import NodeId, fold_subtree, subtree_nodes
from debar.tlog.nodes import MissingNodes
from debar.tlog.note import Note, parse_note


class MemorySequencedLog:
    def __init__(self) -> None:
        self.streams_: dict[str, list[SequencedRecord]] = {}
        self._next = 0
        self.down = False

    def add(self, stream: str, *entries: bytes) -> SequencedRecord:
        self._next += 1
        record = SequencedRecord(stream, f"{self._next}-0", tuple(entries))
        self.streams_.setdefault(stream, []).append(record)
        return record

    def _answer(self) -> None:
        if self.down:
            raise StoreUnavailable("memory: down")

    async def streams(self) -> list[str]:
        self._answer()
        return list(self.streams_)

    async def read_after(self, stream: str, after: str, count: int) -> list[SequencedRecord]:
        self._answer()
        records = self.streams_.get(stream, [])
        ids = [r.record_id for r in records]
        start = ids.index(after) + 1 if after in ids else 0
        return records[start : start + count]

    async def read_after_many(self, after: Mapping[str, str], count: int) -> dict[str, list[SequencedRecord]]:
        return {stream: await self.read_after(stream, cursor, count) for stream, cursor in after.items()}

    async def read(self, stream: str, record_id: str) -> SequencedRecord | None:
        self._answer()
        return next((r for r in self.streams_.get(stream, []) if r.record_id == record_id), None)

    async def locate(self, decision_id: str) -> tuple[str, str, int] | None:
        """Test ids: `<stream>/<record id>/<index>`."""
        self._answer()
        parts = decision_id.split("/")
        if len(parts) != 3:
            return None
        return parts[0], parts[1], int(parts[2])


class MemoryTreeStore:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.lease: tuple[str, float] | None = None
        self.edge = CompactRange()
        self.cursors: dict[str, str] = {}
        self.nodes: dict[NodeId, bytes] = {}
        self.archived: set[int] = set()
        self.record_list: list[IntegratedRecord] = []
        self.leaf: dict[tuple[str, str], int] = {}
        self.base = 0  # leaf-order items moved out (record_list holds the items from number `base`)
        self.waiting: dict[tuple[str, str], IntegratedRecord] = {}
        self.checkpoint: tuple[int, bytes] | None = None
        self.commits = 0

    def _holds(self, owner: str) -> bool:
        return self.lease is not None and self.lease[0] == owner and self.lease[1] > self._clock()

    async def hold_lease(self, owner: str, ttl_ms: int) -> bool:
        if self.lease is None or self.lease[1] <= self._clock() or self.lease[0] == owner:
            self.lease = (owner, self._clock() + ttl_ms / 1000)
            return True
        return False

    async def release_lease(self, owner: str) -> None:
        if self.lease and self.lease[0] == owner:
            self.lease = None

    levels_kept = 1  # every node

    async def state(self) -> TreeState:
        return TreeState(self.edge.copy(), dict(self.cursors))

    async def commit(self, owner: str, growth: TreeGrowth) -> None:
        if not self._holds(owner):
            raise LeaseLost(owner)
        if growth.old_size != self.edge.size:
            raise TreeConflict(f"size {self.edge.size}, not {growth.old_size}")
        self.nodes.update(growth.nodes)
        self.record_list += growth.records
        for r in growth.records:
            self.leaf[(r.stream, r.record_id)] = r.first_leaf
        self.cursors.update(growth.cursors)
        self.edge = growth.edge.copy()
        self.commits += 1

    async def read_nodes(self, nodes: Sequence[NodeId]) -> list[bytes]:
        out = []
        for node in nodes:
            if node not in self.nodes:
                raise MissingNodes(str(node))
            out.append(self.nodes[node])
        return out

    async def first_leaf(self, stream: str, record_id: str) -> int | None:
        return self.leaf.get((stream, record_id))

    async def records(self, start: int, count: int) -> list[IntegratedRecord]:
        first = max(start, self.base)
        return self.record_list[first - self.base : first - self.base + count - (first - start)]

    async def order_base(self) -> int:
        return self.base

    async def unarchived(self) -> list[IntegratedRecord]:
        return sorted(self.waiting.values(), key=lambda r: r.first_leaf)

    async def forget_order(
        self, base: int, moved: int, archived: Sequence[IntegratedRecord], kept: Sequence[IntegratedRecord]
    ) -> int:
        if base != self.base or len(self.record_list) < moved:
            raise TreeConflict(f"order base {self.base}, not {base}")
        del self.record_list[:moved]
        self.base += moved
        for r in archived:
            self.leaf.pop((r.stream, r.record_id), None)
            self.waiting.pop((r.stream, r.record_id), None)
        for r in kept:
            self.waiting[(r.stream, r.record_id)] = r
        return moved

    async def leaf_hashes(self, start: int, end: int) -> list[bytes | None]:
        return [self.nodes.get(NodeId(0, i)) for i in range(start, end)]

    async def tiles(self, tiles: Sequence[int]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for tile in tiles:
            hashes = [self.nodes.get(NodeId(0, tile * 256 + i)) for i in range(256)]
            known = [h for h in hashes if h is not None]
            out.append(b"".join(known) if known else None)
        return out

    async def archived_tiles(self) -> set[int]:
        return set(self.archived)

    async def forget_tiles(self, tiles: Sequence[int]) -> int:
        for tile in tiles:
            self.archived.add(tile)
            for i in range(256):
                self.nodes.pop(NodeId(0, tile * 256 + i), None)
        return len(tiles)

    async def latest_checkpoint(self) -> bytes | None:
        return self.checkpoint[1] if self.checkpoint else None

    async def put_checkpoint(self, owner: str, size: int, note: bytes) -> None:
        if not self._holds(owner):
            raise LeaseLost(owner)
        if self.checkpoint is None or self.checkpoint[0] <= size:
            self.checkpoint = (size, note)

    def root_of(self, start: int, end: int) -> bytes:
        return fold_subtree([self.nodes[n] for n in subtree_nodes(start, end)])


class MemoryCheckpoints:
    def __init__(self) -> None:
        self.notes: list[bytes] = []

    def append(self, note: bytes) -> None:
        if note not in self.notes:
            self.notes.append(note)

    def _sorted(self) -> list[bytes]:
        return sorted(self.notes, key=lambda n: parse_checkpoint(parse_note(n).text).size)

    def latest(self) -> bytes | None:
        ordered = self._sorted()
        return ordered[-1] if ordered else None

    def all(self) -> list[bytes]:
        return self._sorted()


class NoWitnesses:
    """No witness configured, or (down=True) one named `w1` that never answers."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.asked: list[tuple[int, int]] = []  # (old size, new size)

    async def cosign(self, note: Note, old_size: int, proof_from: ProofFrom) -> Cosigning:
        self.asked.append((old_size, parse_checkpoint(note.text).size))
        if self.down:
            failure = WitnessFailure("w1", WitnessFailureKind.UNREACHABLE, "connection refused")
            return Cosigning(note, (), (failure,))
        return Cosigning(note, (), ())
