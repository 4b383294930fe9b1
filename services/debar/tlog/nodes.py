"""How proof generation reads node hashes from whatever storage the caller keeps.

Proof generation (proofs.py) needs a handful of perfect nodes (merkle.NodeId) and asks for all of them in one
call to a `ReadNodes` callback, so a store that keeps node hashes answers a proof in one round trip of
O(log n) hashes. This module adapts the usual storage layouts to that callback:
- every level kept (stride 1): each node is one stored hash;
- every `stride`-th level kept (stride 8 is tlog-tiles' layout: tiles of 256 hashes at levels 0, 8, 16, ...): a
  node between stored levels is recomputed from the 2**k stored hashes below it, at most 2**(stride-1);
- leaves only: a node is recomputed from its leaf hashes (fine for small trees and for tests, O(n) otherwise).
A store must only be asked for nodes whose leaves all exist; the proof functions never ask for others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from debar.tlog.merkle import HASH_SIZE, NodeId, fold_subtree, root, subtree_nodes

# Returns the hashes of the given nodes, in the same order.
ReadNodes = Callable[[Sequence[NodeId]], Sequence[bytes]]
# (level, first index, end index) -> the stored hashes of nodes [first, end) at that level, in order.
ReadLevelRange = Callable[[int, int, int], Sequence[bytes]]
# (first leaf, end leaf) -> the leaf hashes of [first, end), in order.
GetLeafHashes = Callable[[int, int], Sequence[bytes]]


class MissingNodes(LookupError):
    """The store did not return a hash for every node asked for: it is incomplete or was tampered with."""


def checked(read: ReadNodes, nodes: Sequence[NodeId]) -> list[bytes]:
    """Calls `read` and insists on one 32-byte hash per node."""
    hashes = list(read(nodes))
    if len(hashes) != len(nodes):
        raise MissingNodes(f"asked for {len(nodes)} node hashes, got {len(hashes)}")
    for node, h in zip(nodes, hashes, strict=True):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise MissingNodes(f"{node}: no 32-byte hash stored")
    return hashes


def reader_from_levels(read_range: ReadLevelRange, stride: int) -> ReadNodes:
    """A ReadNodes for storage that keeps the hashes of every level divisible by `stride` (1 = every level)."""
    if stride < 1:
        raise ValueError("stride: at least 1")
    return lambda nodes: [_from_level(node, node.level - node.level % stride, read_range) for node in nodes]


def reader_from_leaves(get_leaf_hashes: GetLeafHashes) -> ReadNodes:
    """A ReadNodes that recomputes every node from its leaf hashes."""

    def read_range(_level: int, first: int, end: int) -> Sequence[bytes]:
        return get_leaf_hashes(first, end)

    return lambda nodes: [_from_level(node, 0, read_range) for node in nodes]


def _from_level(node: NodeId, stored_level: int, read_range: ReadLevelRange) -> bytes:
    span = node.level - stored_level
    first = node.index << span
    below = list(read_range(stored_level, first, first + (1 << span)))
    if len(below) != 1 << span:
        raise MissingNodes(f"{node}: level {stored_level} holds {len(below)} of {1 << span} hashes")
    if any(not isinstance(h, bytes) or len(h) != HASH_SIZE for h in below):
        raise MissingNodes(f"{node}: level {stored_level} holds a hash that is not 32 bytes")
    return root(below)


def perfect_subtree_hash(level: int, index: int, get_leaf_hashes: GetLeafHashes) -> bytes:
    """The hash of the aligned subtree [index * 2**level, (index + 1) * 2**level) from its leaf hashes."""
    return checked(reader_from_leaves(get_leaf_hashes), [NodeId(level, index)])[0]


def subtree_hash(start: int, end: int, read: ReadNodes) -> bytes:
    """MTH(D[start:end]) for an aligned subtree (merkle.is_subtree), from the store's nodes."""
    nodes = subtree_nodes(start, end)
    return fold_subtree(checked(read, nodes))
