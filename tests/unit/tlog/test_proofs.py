"""Inclusion and consistency proofs: the published RFC 6962 proofs, generation against a naive reference for
random sizes and storage layouts, and verification that fails for any changed byte, index, size or root."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debar.tlog.compact import CompactRange
from debar.tlog.merkle import EMPTY_ROOT, NodeId, leaf_hash, root
from debar.tlog.nodes import (
    MissingNodes,
    ReadNodes,
    perfect_subtree_hash,
    reader_from_leaves,
    reader_from_levels,
    subtree_hash,
)
from debar.tlog.proofs import (
    InvalidProof,
    consistency_plan,
    consistency_proof,
    inclusion_plan,
    inclusion_proof,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)
from tests.unit.tlog import reference
from tests.unit.tlog.vectors import CONSISTENCY, INCLUSION, LEAVES, ROOTS

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


class Store:
    """What an integrator would keep: every node append() reported, read back through a counting callback."""

    def __init__(self, entries: list[bytes]) -> None:
        self.entries = entries
        self.leaf_hashes = [leaf_hash(e) for e in entries]
        self.tree = CompactRange()
        self.nodes: dict[NodeId, bytes] = {}
        for h in self.leaf_hashes:
            self.nodes.update(self.tree.append(h))
        self.calls: list[int] = []

    def read(self, nodes):
        self.calls.append(len(nodes))
        return [self.nodes[n] for n in nodes]

    def read_level(self, level, first, end):
        return [self.nodes[NodeId(level, i)] for i in range(first, end)]

    def root(self, size: int) -> bytes:
        return root(self.leaf_hashes[:size])


def entries(n: int) -> list[bytes]:
    return [b"entry %d" % i for i in range(n)]


PUBLISHED = Store(LEAVES)


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION)
def test_published_inclusion_proofs(index, size, expected):
    assert inclusion_proof(index, size, PUBLISHED.read) == expected
    assert reference.path(index, LEAVES[:size]) == expected
    verify_inclusion(PUBLISHED.leaf_hashes[index], index, size, expected, ROOTS[size])


@pytest.mark.parametrize(("old", "new", "expected"), CONSISTENCY)
def test_published_consistency_proofs(old, new, expected):
    assert consistency_proof(old, new, PUBLISHED.read) == expected
    assert reference.proof(old, LEAVES[:new]) == expected
    verify_consistency(old, new, ROOTS[old], ROOTS[new], expected)


def inclusion_forgeries(index, size, proof, root_hash, leaf):
    """Everything an attacker might try with a genuine proof: each must fail."""
    yield "index - 1", (leaf, index - 1, size, proof, root_hash)
    yield "index + 1", (leaf, index + 1, size, proof, root_hash)
    yield "index ^ 2", (leaf, index ^ 2, size, proof, root_hash)
    yield "size * 2", (leaf, index, size * 2, proof, root_hash)
    yield "size // 2", (leaf, index, size // 2, proof, root_hash)
    yield "wrong leaf", (leaf_hash(b"not this"), index, size, proof, root_hash)
    yield "empty root", (leaf, index, size, proof, EMPTY_ROOT)
    yield "other root", (leaf, index, size, proof, SOME_HASH)
    yield "trailing root", (leaf, index, size, [*proof, root_hash], root_hash)
    yield "preceding root", (leaf, index, size, [root_hash, *proof], root_hash)
    yield "short hash appended", (leaf, index, size, [*proof, b""], root_hash)
    for i in range(len(proof)):
        for bit in (0, 3, 7):
            flipped = list(proof)
            flipped[i] = bytes([flipped[i][0] ^ (1 << bit)]) + flipped[i][1:]
            yield f"proof[{i}] bit {bit}", (leaf, index, size, flipped, root_hash)
        yield f"proof[{i}] truncated", (leaf, index, size, [*proof[:i], proof[i][:31], *proof[i + 1 :]], root_hash)
    if proof:
        yield "last removed", (leaf, index, size, proof[:-1], root_hash)
    if len(proof) > 1:
        yield "inserted", (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root_hash)
        yield "swapped", (leaf, index, size, [proof[1], proof[0], *proof[2:]], root_hash)


def consistency_forgeries(old, new, proof, old_root, new_root):
    yield "old - 1", (old - 1, new, old_root, new_root, proof)
    yield "old + 1", (old + 1, new, old_root, new_root, proof)
    yield "old ^ 2", (old ^ 2, new, old_root, new_root, proof)
    yield "new * 2", (old, new * 2, old_root, new_root, proof)
    yield "new // 2", (old, new // 2, old_root, new_root, proof)
    yield "wrong old root", (old, new, SOME_HASH, new_root, proof)
    yield "wrong new root", (old, new, old_root, SOME_HASH, proof)
    yield "swapped roots", (old, new, new_root, old_root, proof)
    yield "empty proof", (old, new, old_root, new_root, [])
    yield "trailing old root", (old, new, old_root, new_root, [*proof, old_root])
    yield "trailing new root", (old, new, old_root, new_root, [*proof, new_root])
    yield "preceding old root", (old, new, old_root, new_root, [old_root, *proof])
    yield "preceding new root", (old, new, old_root, new_root, [new_root, *proof])
    yield "preceding proof[0]", (old, new, old_root, new_root, [proof[0], *proof])
    yield "truncated", (old, new, old_root, new_root, proof[:-1])
    for i in range(len(proof)):
        for bit in (0, 4, 7):
            flipped = list(proof)
            flipped[i] = bytes([flipped[i][0] ^ (1 << bit)]) + flipped[i][1:]
            yield f"proof[{i}] bit {bit}", (old, new, old_root, new_root, flipped)


def assert_all_refused(verify, forgeries):
    accepted = []
    for name, args in forgeries:
        try:
            verify(*args)
        except InvalidProof:
            continue
        accepted.append(name)
    assert accepted == [], f"accepted forged proofs: {accepted}"


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_published_inclusion_proofs_refuse_every_forgery(index, size, proof):
    leaf = PUBLISHED.leaf_hashes[index]
    assert_all_refused(verify_inclusion, inclusion_forgeries(index, size, proof, ROOTS[size], leaf))


@pytest.mark.parametrize(("old", "new", "proof"), [v for v in CONSISTENCY if v[2]])
def test_published_consistency_proofs_refuse_every_forgery(old, new, proof):
    assert_all_refused(verify_consistency, consistency_forgeries(old, new, proof, ROOTS[old], ROOTS[new]))


def test_trivial_consistency_is_checked_on_the_roots():
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [])
    verify_consistency(3, 3, ROOTS[3], ROOTS[3], [])
    refused = [
        ("same size, other root", (3, 3, ROOTS[3], ROOTS[4], [])),
        ("same size, proof not empty", (3, 3, ROOTS[3], ROOTS[3], [EMPTY_ROOT])),
        ("from empty, proof not empty", (0, 5, EMPTY_ROOT, ROOTS[5], [EMPTY_ROOT])),
        ("from empty, old root is not the empty root", (0, 5, ROOTS[1], ROOTS[5], [])),
        ("empty to empty, new root is not the empty root", (0, 0, EMPTY_ROOT, ROOTS[1], [])),
        ("empty to empty, neither root is the empty root", (0, 0, ROOTS[1], ROOTS[1], [])),
        ("shrinking", (5, 3, ROOTS[5], ROOTS[3], [])),
        ("negative", (-1, 3, ROOTS[0], ROOTS[3], [])),
        ("growing with no proof", (1, 2, ROOTS[1], ROOTS[2], [])),
        ("root not a hash", (3, 3, b"short", b"short", [])),
    ]
    assert_all_refused(verify_consistency, refused)


def test_inclusion_outside_the_tree_is_refused():
    h = PUBLISHED.leaf_hashes[0]
    assert_all_refused(
        verify_inclusion,
        [
            ("empty tree", (h, 0, 0, [], EMPTY_ROOT)),
            ("index = size", (h, 1, 1, [], h)),
            ("negative index", (h, -1, 1, [], h)),
            ("leaf not a hash", (b"x", 0, 1, [], b"x")),
        ],
    )
    assert root_from_inclusion(h, 0, 1, []) == h


def test_generation_refuses_positions_outside_the_tree():
    with pytest.raises(ValueError, match="index"):
        inclusion_plan(5, 5)
    with pytest.raises(ValueError, match="index"):
        inclusion_plan(0, 0)
    with pytest.raises(ValueError, match="old_size"):
        consistency_plan(6, 5)
    with pytest.raises(ValueError, match="old_size"):
        consistency_plan(-1, 5)
    assert consistency_plan(0, 5).subtrees == () and consistency_plan(5, 5).subtrees == ()


sizes = st.integers(min_value=1, max_value=600)


@settings(max_examples=150, deadline=None)
@given(sizes, st.data())
def test_every_generated_inclusion_proof_verifies_and_no_forgery_does(size, data):
    store = Store(entries(size))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = inclusion_proof(index, size, store.read)
    assert proof == reference.path(index, store.entries)
    assert store.calls == [len(inclusion_plan(index, size).nodes)], "one read per proof"
    verify_inclusion(store.leaf_hashes[index], index, size, proof, store.root(size))
    forgeries = inclusion_forgeries(index, size, proof, store.root(size), store.leaf_hashes[index])
    assert_all_refused(verify_inclusion, forgeries)


@settings(max_examples=150, deadline=None)
@given(sizes, st.data())
def test_every_generated_consistency_proof_verifies_and_no_forgery_does(new, data):
    store = Store(entries(new))
    old = data.draw(st.integers(min_value=0, max_value=new))
    proof = consistency_proof(old, new, store.read)
    assert proof == reference.proof(old, store.entries)
    verify_consistency(old, new, store.root(old), store.root(new), proof)
    if proof:
        assert_all_refused(verify_consistency, consistency_forgeries(old, new, proof, store.root(old), store.root(new)))


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=2, max_value=400), st.data())
def test_a_forked_log_has_no_consistency_proof(new, data):
    """Change one entry the old tree holds: no proof from the old root verifies against the new one."""
    old = data.draw(st.integers(min_value=1, max_value=new - 1))
    changed = data.draw(st.integers(min_value=0, max_value=old - 1))
    honest = Store(entries(new))
    forked_entries = entries(new)
    forked_entries[changed] = b"rewritten"
    forked = Store(forked_entries)
    forged = consistency_proof(old, new, forked.read)
    with pytest.raises(InvalidProof):
        verify_consistency(old, new, honest.root(old), forked.root(new), forged)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=1100), st.sampled_from([1, 2, 3, 8]), st.data())
def test_proofs_from_sparse_levels_are_the_same(size, stride, data):
    """A store that keeps only every stride-th level (8: tlog-tiles) or only leaves serves identical proofs."""
    store = Store(entries(size))
    sparse = {n: h for n, h in store.nodes.items() if n.level % stride == 0}
    read_sparse = reader_from_levels(
        lambda level, first, end: [sparse[NodeId(level, i)] for i in range(first, end)], stride
    )
    read_leaves = reader_from_leaves(lambda first, end: store.leaf_hashes[first:end])
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    old = data.draw(st.integers(min_value=0, max_value=size))
    expected_inclusion = inclusion_proof(index, size, store.read)
    expected_consistency = consistency_proof(old, size, store.read)
    for read in (read_sparse, read_leaves):
        assert inclusion_proof(index, size, read) == expected_inclusion
        assert consistency_proof(old, size, read) == expected_consistency


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=1 << 62), st.data())
def test_proofs_read_a_logarithmic_number_of_nodes(size, data):
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    old = data.draw(st.integers(min_value=0, max_value=size))
    bound = 2 * size.bit_length()
    assert len(inclusion_plan(index, size).subtrees) <= size.bit_length()
    assert len(inclusion_plan(index, size).nodes) <= bound
    assert len(consistency_plan(old, size).nodes) <= bound
    for plan in (inclusion_plan(index, size), consistency_plan(old, size)):
        assert all(n.end <= size for n in plan.nodes), "only nodes whose leaves exist"


def test_subtree_hashes_from_the_store():
    store = Store(entries(21))
    assert subtree_hash(16, 21, store.read) == root(store.leaf_hashes[16:21])
    assert subtree_hash(0, 21, store.read) == store.root(21)
    get = lambda first, end: store.leaf_hashes[first:end]  # noqa: E731
    assert perfect_subtree_hash(3, 1, get) == root(store.leaf_hashes[8:16])
    assert perfect_subtree_hash(0, 20, get) == store.leaf_hashes[20]


def test_a_store_missing_nodes_is_an_error_not_a_wrong_proof():
    store = Store(entries(10))
    short: ReadNodes = lambda nodes: [store.nodes[n] for n in nodes][:-1]  # noqa: E731
    with pytest.raises(MissingNodes):
        inclusion_proof(3, 10, short)
    corrupt: ReadNodes = lambda nodes: [b"x" for _ in nodes]  # noqa: E731
    with pytest.raises(MissingNodes):
        consistency_proof(3, 10, corrupt)
    with pytest.raises(MissingNodes):
        perfect_subtree_hash(2, 2, lambda first, end: store.leaf_hashes[first:end])  # leaves 8..11 do not all exist
    with pytest.raises(MissingNodes):
        reader_from_levels(lambda level, first, end: [b"short"] * (end - first), 8)([NodeId(1, 0)])
