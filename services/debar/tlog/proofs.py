"""Inclusion and consistency proofs: generation as RFC 6962 2.1.1 (PATH) and 2.1.2 (PROOF, SUBPROOF) define them,
from stored nodes; verification exactly as RFC 9162 2.1.3.2 and 2.1.4.2 describe it.

Format decisions:
- A proof is a list of 32-byte hashes in the RFC's order (from the leaf, or from the old tree's edge, upwards).
- What RFC 9162's verification leaves to the caller: the consistency proof between a tree and itself, and from
  the empty tree, is empty, and verifying it checks the roots instead (equal sizes need equal roots; the empty
  tree's root must be SHA-256 of the empty string). A one-leaf tree's inclusion proof is empty too.
- Generation is planned first (which subtrees, hence which perfect nodes), then every node is read in one call to
  the caller's nodes.ReadNodes, then the proof is assembled: one storage round trip of O(log n) hashes.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from debar.tlog.merkle import EMPTY_ROOT, HASH_SIZE, NodeId, fold_subtree, node_hash, split_point, subtree_nodes
from debar.tlog.nodes import ReadNodes, checked


class InvalidProof(ValueError):
    """The proof does not show what it claims; the message says where it broke."""


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """The subtrees [start, end) whose hashes make up a proof, in proof order."""

    subtrees: tuple[tuple[int, int], ...]

    @property
    def nodes(self) -> tuple[NodeId, ...]:
        """Every perfect node the proof needs, each once."""
        return tuple(dict.fromkeys(n for start, end in self.subtrees for n in subtree_nodes(start, end)))

    def assemble(self, hashes: Mapping[NodeId, bytes]) -> list[bytes]:
        return [fold_subtree([hashes[n] for n in subtree_nodes(start, end)]) for start, end in self.subtrees]

    def read(self, read: ReadNodes) -> list[bytes]:
        nodes = self.nodes
        return self.assemble(dict(zip(nodes, checked(read, nodes), strict=True)))


def inclusion_plan(index: int, size: int) -> ProofPlan:
    if not 0 <= index < size:
        raise ValueError(f"index: {index} is not a leaf of a tree of {size}")
    subtrees = []
    lo, hi = 0, size
    while hi - lo > 1:
        middle = lo + split_point(hi - lo)
        if index < middle:
            subtrees.append((middle, hi))
            hi = middle
        else:
            subtrees.append((lo, middle))
            lo = middle
    return ProofPlan(tuple(reversed(subtrees)))


def consistency_plan(old_size: int, new_size: int) -> ProofPlan:
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old_size: {old_size} is not within 0..new_size ({new_size})")
    if old_size in (0, new_size):
        return ProofPlan(())
    subtrees = []
    lo, hi = 0, new_size
    # SUBPROOF's flag: whether the old tree's hash so far is a node the verifier already has (its root).
    whole_old_tree = True
    while old_size != hi:
        middle = lo + split_point(hi - lo)
        if old_size <= middle:
            subtrees.append((middle, hi))
            hi = middle
        else:
            subtrees.append((lo, middle))
            lo = middle
            whole_old_tree = False
    if not whole_old_tree:
        subtrees.append((lo, hi))
    return ProofPlan(tuple(reversed(subtrees)))


def inclusion_proof(index: int, size: int, read: ReadNodes) -> list[bytes]:
    return inclusion_plan(index, size).read(read)


def consistency_proof(old_size: int, new_size: int, read: ReadNodes) -> list[bytes]:
    return consistency_plan(old_size, new_size).read(read)


def root_from_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.3.2 up to the final comparison: the root the proof leads to."""
    _check_hash("leaf hash", leaf_hash)
    _check_proof_hashes(proof)
    if not 0 <= index < size:
        raise InvalidProof(f"leaf index {index} is not within a tree of {size}")
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise InvalidProof("the proof is longer than the path from the leaf to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProof("the proof is shorter than the path from the leaf to the root")
    return r


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    _check_hash("root hash", root)
    if not hmac.compare_digest(root_from_inclusion(leaf_hash, index, size, proof), root):
        raise InvalidProof(f"the inclusion proof of leaf {index} does not lead to the root of the tree of {size}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 2.1.4.2, with the cases it leaves out (equal sizes, the empty old tree) handled first."""
    _check_hash("old root hash", old_root)
    _check_hash("new root hash", new_root)
    _check_proof_hashes(proof)
    if not 0 <= old_size <= new_size:
        raise InvalidProof(f"old size {old_size} is not within 0..{new_size}: a log only grows")
    if old_size == 0:
        if proof:
            raise InvalidProof("the empty tree is consistent with any tree; its proof must be empty")
        if not hmac.compare_digest(old_root, EMPTY_ROOT):
            raise InvalidProof("the old root is not the empty tree's root")
        if new_size == 0 and not hmac.compare_digest(new_root, EMPTY_ROOT):
            raise InvalidProof("the new root is not the empty tree's root")
        return
    if old_size == new_size:
        if proof:
            raise InvalidProof("a tree is consistent with itself; that proof must be empty")
        if not hmac.compare_digest(old_root, new_root):
            raise InvalidProof(f"two different roots for the same size {old_size}")
        return
    _verify_consistency_rfc9162(old_size, new_size, old_root, new_root, list(proof))


def _verify_consistency_rfc9162(
    first: int, second: int, first_hash: bytes, second_hash: bytes, path: list[bytes]
) -> None:
    if not path:
        raise InvalidProof("the consistency proof is empty")
    if first & (first - 1) == 0:
        # The old tree is a perfect subtree of the new one: its root is the proof's starting node.
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise InvalidProof("the consistency proof is longer than it can be for these sizes")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProof("the consistency proof is shorter than it must be for these sizes")
    if not hmac.compare_digest(fr, first_hash):
        raise InvalidProof(f"the consistency proof does not lead to the old root (size {first})")
    if not hmac.compare_digest(sr, second_hash):
        raise InvalidProof(f"the consistency proof does not lead to the new root (size {second})")


def _check_hash(what: str, h: bytes) -> None:
    if not isinstance(h, bytes) or len(h) != HASH_SIZE:
        raise InvalidProof(f"{what}: not a 32-byte hash")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for i, h in enumerate(proof):
        _check_hash(f"proof[{i}]", h)
