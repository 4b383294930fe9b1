"""The Merkle tree's storage in Redis (the TreeStore port), every key in the `{tlog}` slot (keys.TreeKeys): the
lease, the tree's edge and size, the per-stream cursors, the leaf order, and the node hashes of every 8th level
in tiles of 256 (tlog-tiles' layout: 32 bytes a leaf, plus 1/256 of that above). A node between stored levels is
recomputed from at most 128 hashes of the stored level below it; a proof reads its nodes in one pipelined round
trip. Every write is one script (lua/tree_commit.lua) that checks the lease owner and the expected size.

`debar log archive` moves full level-0 tiles whose leaves are all archived records to the archive folder
(lua/tree_archive.lua marks each in the `archived` bitmap as it deletes it): a proof that needs one raises
NodesArchived, never a wrong proof; the levels above (8, 16, ...) stay in Redis, so the integrator's edge, recent
inclusion proofs and consistency proofs whose sizes are outside the archived tiles work as before. The leaf
order's items up to the archive run's cursor, and the leaf index of archived records, leave in one script too
(lua/tree_order_archive.lua): `records` numbers items in the whole leaf order (lua/tree_order.lua reads them with
the cursor, atomically)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from debar.common.circuit import CircuitBreaker
from debar.sanction.adapters.keys import TILE_LEVELS, TILE_WIDTH, TreeKeys
from debar.sanction.adapters.redis_errors import unavailable_on_redis_error
from debar.sanction.adapters.replication import Replication
from debar.sanction.adapters.scripts import Scripts
from debar.sanction.app.ports import (
    IntegratedRecord,
    LeaseLost,
    NodesArchived,
    TreeConflict,
    TreeGrowth,
    TreeState,
)
from debar.tlog.compact import CompactRange
from debar.tlog.merkle import HASH_SIZE, NodeId, root
from debar.tlog.nodes import MissingNodes

_SCRIPTS = ("tree_commit", "tree_lease", "tree_checkpoint", "tree_archive", "tree_order", "tree_order_archive")


def record_field(stream: str, record_id: str) -> str:
    return f"{stream} {record_id}"


def record_item(record: IntegratedRecord) -> str:
    return f"{record.first_leaf} {record.count} {record.stream} {record.record_id}"


def parse_record_item(item: str) -> IntegratedRecord:
    first, count, stream, record_id = item.split(" ")
    return IntegratedRecord(stream, record_id, int(first), int(count))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisTreeStore:
    levels_kept = TILE_LEVELS  # a commit's nodes at other levels are passed over (the tiles have none)

    def __init__(
        self, client: Redis, keys: TreeKeys, breaker: CircuitBreaker | None = None,
        replication: Replication | None = None,
    ) -> None:  # fmt: skip
        """`replication`: a commit and a checkpoint return once enough replicas hold them (scripts.WRITES), so a
        checkpoint is never signed over a tree, or entries, that a failover could take back."""
        self._redis = client
        self._keys = keys
        self._breaker = breaker or CircuitBreaker()
        self._scripts = Scripts(client, _SCRIPTS, replication)

    @unavailable_on_redis_error
    async def hold_lease(self, owner: str, ttl_ms: int) -> bool:
        return int(await self._scripts.run("tree_lease", [self._keys.lease], [owner, ttl_ms, "hold"])) == 1

    @unavailable_on_redis_error
    async def release_lease(self, owner: str) -> None:
        await self._scripts.run("tree_lease", [self._keys.lease], [owner, 1, "release"])

    @unavailable_on_redis_error
    async def state(self) -> TreeState:
        fields: Any = await self._redis.hgetall(self._keys.state)
        cursors: Any = await self._redis.hgetall(self._keys.cursors)
        edge = CompactRange.from_bytes(fields[b"edge"]) if b"edge" in fields else CompactRange()
        if int(fields.get(b"size", b"0")) != edge.size:
            raise ValueError(f"{self._keys.state}: size {fields.get(b'size')!r} is not the edge's {edge.size}")
        return TreeState(edge, {_text(k): _text(v) for k, v in cursors.items()})

    @unavailable_on_redis_error
    async def commit(self, owner: str, growth: TreeGrowth) -> None:
        appends: dict[str, list[bytes]] = {}
        offsets: dict[str, int] = {}
        for node, digest in growth.nodes:
            if node.level % TILE_LEVELS:
                continue
            key = self._keys.tile(node.level, node.index // TILE_WIDTH)
            if key not in appends:
                appends[key] = []
                offsets[key] = (node.index % TILE_WIDTH) * HASH_SIZE
            appends[key].append(digest)
        keys = [self._keys.lease, self._keys.state, self._keys.cursors, self._keys.records, self._keys.leaf]
        args: list[Any] = [owner, growth.old_size, growth.edge.size, growth.edge.to_bytes(), growth.edge.root().hex()]
        args.append(len(growth.cursors))
        for stream, record_id in growth.cursors.items():
            args += [stream, record_id]
        args.append(len(growth.records))
        for record in growth.records:
            args += [record_item(record), record_field(record.stream, record.record_id), record.first_leaf]
        for key, digests in appends.items():
            keys.append(key)
            args += [offsets[key], b"".join(digests)]
        done = int(await self._scripts.run("tree_commit", keys, args))
        if done == -1:
            raise LeaseLost("the integrator's lease is not held by this owner")
        if done == -2:
            raise TreeConflict(f"the stored tree is not of size {growth.old_size}")
        if done == -3:
            raise TreeConflict(f"a stored tile's length does not match the tree of size {growth.old_size}")

    @unavailable_on_redis_error
    async def read_nodes(self, nodes: Sequence[NodeId]) -> list[bytes]:
        ranges = []
        async with self._redis.pipeline(transaction=False) as pipe:
            for node in nodes:
                stored = node.level - node.level % TILE_LEVELS
                span = node.level - stored
                first = node.index << span
                count = 1 << span
                key = self._keys.tile(stored, first // TILE_WIDTH)
                offset = (first % TILE_WIDTH) * HASH_SIZE
                pipe.getrange(key, offset, offset + count * HASH_SIZE - 1)
                ranges.append(count)
            found: Any = await pipe.execute()
        hashes = []
        for node, count, data in zip(nodes, ranges, found, strict=True):
            if len(data) != count * HASH_SIZE:
                if node.level < TILE_LEVELS and await self._archived(node.index >> (TILE_LEVELS - node.level)):
                    raise NodesArchived(
                        f"{node}: its leaves' tile {node.index >> (TILE_LEVELS - node.level)} was moved to the "
                        "archive (`debar log archive`)"
                    )
                raise MissingNodes(f"{node}: {len(data)} of {count * HASH_SIZE} bytes stored below it")
            hashes.append(root([data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]))
        return hashes

    @unavailable_on_redis_error
    async def first_leaf(self, stream: str, record_id: str) -> int | None:
        found: Any = await self._redis.hget(self._keys.leaf, record_field(stream, record_id))
        return None if found is None else int(found)

    @unavailable_on_redis_error
    async def records(self, start: int, count: int) -> list[IntegratedRecord]:
        _, items = await self._scripts.run("tree_order", [self._keys.order_base, self._keys.records], [start, count])
        return [parse_record_item(_text(item)) for item in items]

    @unavailable_on_redis_error
    async def order_base(self) -> int:
        return int(await self._redis.get(self._keys.order_base) or 0)

    @unavailable_on_redis_error
    async def unarchived(self) -> list[IntegratedRecord]:
        found: Any = await self._redis.hvals(self._keys.unarchived)
        return sorted((parse_record_item(_text(item)) for item in found), key=lambda r: r.first_leaf)

    @unavailable_on_redis_error
    async def forget_order(
        self, base: int, moved: int, archived: Sequence[IntegratedRecord], kept: Sequence[IntegratedRecord],
    ) -> int:  # fmt: skip
        keys = [self._keys.order_base, self._keys.records, self._keys.leaf, self._keys.unarchived]
        fields = [record_field(r.stream, r.record_id) for r in archived]
        args: list[Any] = [str(base), moved, len(fields), *fields, len(kept)]
        for record in kept:
            args += [record_field(record.stream, record.record_id), record_item(record)]
        args += [len(fields), *fields]
        done = int(await self._scripts.run("tree_order_archive", keys, args))
        if done < 0:
            raise TreeConflict(f"the leaf order moved on from item {base} (another archive run?): nothing forgotten")
        return done

    async def _archived(self, tile: int) -> bool:
        return int(await self._redis.getbit(self._keys.archived, tile)) == 1

    @unavailable_on_redis_error
    async def leaf_hashes(self, start: int, end: int) -> list[bytes | None]:
        tiles = range(start // TILE_WIDTH, (end - 1) // TILE_WIDTH + 1) if end > start else range(0)
        found = await self.tiles(tiles)
        out: list[bytes | None] = [None] * max(0, end - start)
        for tile, data in zip(tiles, found, strict=True):
            data = data or b""
            for i in range(len(data) // HASH_SIZE):
                index = tile * TILE_WIDTH + i
                if start <= index < end:
                    out[index - start] = data[i * HASH_SIZE : (i + 1) * HASH_SIZE]
        return out

    @unavailable_on_redis_error
    async def tiles(self, tiles: Sequence[int]) -> list[bytes | None]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for tile in tiles:
                pipe.get(self._keys.tile(0, tile))
            found: Any = await pipe.execute()
        return [None if data is None else bytes(data) for data in found]

    @unavailable_on_redis_error
    async def archived_tiles(self) -> set[int]:
        bitmap: Any = await self._redis.get(self._keys.archived)
        return {i * 8 + bit for i, byte in enumerate(bitmap or b"") if byte for bit in range(8) if byte & (0x80 >> bit)}

    @unavailable_on_redis_error
    async def forget_tiles(self, tiles: Sequence[int]) -> int:
        if not tiles:
            return 0
        keys = [self._keys.archived] + [self._keys.tile(0, tile) for tile in tiles]
        forgotten = int(await self._scripts.run("tree_archive", keys, [*tiles, TILE_WIDTH * HASH_SIZE]))
        if forgotten < 0:
            raise TreeConflict("a tile to forget is not full in Redis nor archived: nothing forgotten")
        return forgotten

    @unavailable_on_redis_error
    async def latest_checkpoint(self) -> bytes | None:
        found: Any = await self._redis.hget(self._keys.checkpoint, "note")
        return bytes(found) if found is not None else None

    @unavailable_on_redis_error
    async def put_checkpoint(self, owner: str, size: int, note: bytes) -> None:
        keys = [self._keys.lease, self._keys.checkpoint]
        if int(await self._scripts.run("tree_checkpoint", keys, [owner, size, note])) == -1:
            raise LeaseLost("the integrator's lease is not held by this owner")
