"""RFC 6962 / RFC 9162 Merkle tree hashing, SHA-256.

Format decisions:
- leaf hash = SHA-256(0x00 || entry); interior node = SHA-256(0x01 || left || right); the empty tree's root is
  SHA-256 of the empty string (RFC 6962 2.1).
- A tree of n > 1 leaves splits at the largest power of two strictly below n, never at the midpoint.
- A *node* is named (level, index): the perfect subtree of 2**level leaves that starts at leaf index * 2**level.
  Level 0 nodes are the leaf hashes. A node's hash never changes once its last leaf exists, so storage may keep
  any subset of the nodes (every level, every eighth level as tlog-tiles does, or only the leaves) for good.
- Every subtree the RFC's proofs mention, [start, end) with start a multiple of the power of two at or above
  end - start, is a run of perfect nodes of decreasing size; its hash folds those nodes from the right.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two strictly below `size` (size >= 2): where RFC 6962 splits a tree."""
    if size < 2:
        raise ValueError(f"size: a tree of {size} leaves does not split")
    return 1 << ((size - 1).bit_length() - 1)


class NodeId(NamedTuple):
    """The perfect subtree of 2**level leaves starting at leaf `index << level`. A tuple, because the integrator
    makes about two per entry and a frozen dataclass costs ten times as much to build."""

    level: int
    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose: tlog-tiles calls it the index

    @property
    def start(self) -> int:
        return self.index << self.level

    @property
    def end(self) -> int:
        return (self.index + 1) << self.level

    def __str__(self) -> str:
        return f"node (level {self.level}, index {self.index})"


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over the given hashes, straight from the RFC's recursive definition (a batch computation; the
    incremental one is compact.CompactRange). The hashes may be nodes of any one level: 2**k nodes of level l
    give the node of level l + k above them."""
    if not leaf_hashes:
        return EMPTY_ROOT
    return _mth(leaf_hashes, 0, len(leaf_hashes))


def _mth(hashes: Sequence[bytes], start: int, end: int) -> bytes:
    if end - start == 1:
        return hashes[start]
    middle = start + split_point(end - start)
    return node_hash(_mth(hashes, start, middle), _mth(hashes, middle, end))


def is_subtree(start: int, end: int) -> bool:
    """Whether [start, end) is a subtree in the RFC's sense: non-empty, and start aligned to the power of two
    at or above its size (so its hash is MTH of those leaves with no straddling)."""
    if not 0 <= start < end:
        return False
    return start % (1 << (end - start - 1).bit_length()) == 0


def subtree_nodes(start: int, end: int) -> list[NodeId]:
    """The perfect nodes, largest first, that make up the subtree [start, end)."""
    if not is_subtree(start, end):
        raise ValueError(f"[{start}, {end}) is not an aligned subtree")
    nodes = []
    while start < end:
        level = (end - start).bit_length() - 1
        nodes.append(NodeId(level, start >> level))
        start += 1 << level
    return nodes


def fold_subtree(node_hashes: Sequence[bytes]) -> bytes:
    """The hash of a subtree from the hashes of its subtree_nodes, in that order: the smallest two join first,
    as the RFC's split rule puts them."""
    if not node_hashes:
        raise ValueError("a subtree has at least one node")
    acc = node_hashes[-1]
    for left in reversed(node_hashes[:-1]):
        acc = node_hash(left, acc)
    return acc
