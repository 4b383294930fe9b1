"""The tree's incremental state: a compact range over [0, size), i.e. the roots of the perfect subtrees along the
tree's right edge, one per set bit of size, largest first. That is all an integrator needs to extend the tree and
compute its root, so it is what it persists between runs.

Serialized form (to_bytes / from_bytes), version 1: the byte 0x01, the size as 8 bytes big-endian, then the
popcount(size) hashes of 32 bytes, largest subtree first. At most 1 + 8 + 64 * 32 bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256

from debar.tlog.merkle import _NODE_PREFIX, EMPTY_ROOT, HASH_SIZE, NodeId, node_hash

_FORMAT_VERSION = 1
MAX_SIZE = (1 << 64) - 1


class CompactRange:
    """Mutable: append() extends it in place and reports each node it completed, so the caller can store them
    (every node, or only the levels its storage keeps) before persisting the new state."""

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if not 0 <= size <= MAX_SIZE:
            raise ValueError(f"size: {size} is outside 0..2**64-1")
        if len(hashes) != size.bit_count():
            raise ValueError(f"hashes: a tree of {size} leaves has {size.bit_count()} edge hashes, not {len(hashes)}")
        for i, h in enumerate(hashes):
            if len(h) != HASH_SIZE:
                raise ValueError(f"hashes[{i}]: {len(h)} bytes, not {HASH_SIZE}")
        self._size = size
        self._hashes = [bytes(h) for h in hashes]

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def nodes(self) -> list[NodeId]:
        """The node each edge hash is the hash of, in the same order."""
        nodes, start = [], 0
        for level in range(self._size.bit_length() - 1, -1, -1):
            if self._size >> level & 1:
                nodes.append(NodeId(level, start >> level))
                start += 1 << level
        return nodes

    def append(self, leaf_hash: bytes) -> list[tuple[NodeId, bytes]]:
        """Adds one leaf; returns the nodes it completed, the leaf itself (level 0) first, then each parent."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf_hash: {len(leaf_hash)} bytes, not {HASH_SIZE}")
        if self._size == MAX_SIZE:
            raise ValueError("size: the tree is full")
        acc, node = bytes(leaf_hash), NodeId(0, self._size)
        completed = [(node, acc)]
        # Each trailing set bit of the old size is a perfect subtree that the new leaf's subtree now pairs with.
        remaining = self._size
        while remaining & 1:
            acc = node_hash(self._hashes.pop(), acc)
            node = NodeId(node.level + 1, node.index >> 1)
            completed.append((node, acc))
            remaining >>= 1
        self._hashes.append(acc)
        self._size += 1
        return completed

    def extend(self, leaf_hashes: Iterable[bytes], levels_kept: int = 1) -> list[tuple[NodeId, bytes]]:
        """append() for each, in order, returning their nodes at the levels that are multiples of `levels_kept`
        (1: all of them, as append() does; a tile store that keeps every 8th level needs no others, and naming
        them was half the loop's work): the same nodes, at half append()'s cost per leaf (the integrator's loop)."""
        if levels_kept < 1:
            raise ValueError(f"levels_kept: {levels_kept} is not 1 or more")
        completed: list[tuple[NodeId, bytes]] = []
        add, hashes, size, node = completed.append, self._hashes, self._size, tuple.__new__  # NodeId() costs twice

        try:
            for h in leaf_hashes:
                if len(h) != HASH_SIZE:
                    raise ValueError(f"leaf_hash: {len(h)} bytes, not {HASH_SIZE}")
                if size == MAX_SIZE:
                    raise ValueError("size: the tree is full")
                acc, level, index = bytes(h), 0, size
                add((node(NodeId, (0, index)), acc))
                remaining = size
                while remaining & 1:
                    acc = sha256(_NODE_PREFIX + hashes.pop() + acc).digest()
                    level, index = level + 1, index >> 1
                    if not level % levels_kept:
                        add((node(NodeId, (level, index)), acc))
                    remaining >>= 1
                hashes.append(acc)
                size += 1
        finally:
            self._size = size
        return completed

    def root(self) -> bytes:
        if not self._hashes:
            return EMPTY_ROOT
        acc = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            acc = node_hash(left, acc)
        return acc

    def copy(self) -> CompactRange:
        return CompactRange(self._size, self._hashes)

    def to_bytes(self) -> bytes:
        return bytes([_FORMAT_VERSION]) + self._size.to_bytes(8, "big") + b"".join(self._hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactRange:
        if len(data) < 9 or data[0] != _FORMAT_VERSION:
            raise ValueError("compact range: not a version 1 serialization")
        size = int.from_bytes(data[1:9], "big")
        body = data[9:]
        if len(body) != size.bit_count() * HASH_SIZE:
            raise ValueError(f"compact range: {len(body)} hash bytes for a tree of {size} leaves")
        return cls(size, [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    def __hash__(self) -> int:
        return hash((self._size, tuple(self._hashes)))

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"
