"""RFC 6962 hashing and the incremental tree state: the published roots, the split rule, and that a tree grown
entry by entry, persisted and resumed anywhere, has the batch root."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debar.tlog.compact import CompactRange
from debar.tlog.merkle import (
    EMPTY_ROOT,
    NodeId,
    fold_subtree,
    is_subtree,
    leaf_hash,
    node_hash,
    root,
    split_point,
    subtree_nodes,
)
from tests.unit.tlog import reference
from tests.unit.tlog.vectors import LEAVES, ROOTS

LEAF_HASHES = [leaf_hash(e) for e in LEAVES]


def leaves(n: int) -> list[bytes]:
    return [n.to_bytes(4, "big") + b"entry" for n in range(n)]


def test_hashes_carry_the_rfc_6962_domain_prefixes():
    assert EMPTY_ROOT == hashlib.sha256(b"").digest() == ROOTS[0]
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest() == ROOTS[1]
    assert (
        node_hash(LEAF_HASHES[0], LEAF_HASHES[1]) == hashlib.sha256(b"\x01" + LEAF_HASHES[0] + LEAF_HASHES[1]).digest()
    )
    assert node_hash(LEAF_HASHES[0], LEAF_HASHES[1]) == ROOTS[2]


@pytest.mark.parametrize("n", range(len(ROOTS)))
def test_roots_of_the_published_tree(n):
    assert root(LEAF_HASHES[:n]) == ROOTS[n]
    assert reference.mth(LEAVES[:n]) == ROOTS[n]
    tree = CompactRange()
    tree.extend(LEAF_HASHES[:n])
    assert tree.root() == ROOTS[n]


def test_the_split_is_the_largest_power_of_two_below_the_size_not_the_midpoint():
    assert [split_point(n) for n in (2, 3, 4, 5, 6, 7, 8, 9, 1000)] == [1, 2, 2, 4, 4, 4, 4, 8, 512]
    assert split_point((1 << 63) + 1) == 1 << 63
    with pytest.raises(ValueError):
        split_point(1)


def test_a_subtree_is_its_perfect_nodes_folded_from_the_right():
    assert subtree_nodes(0, 8) == [NodeId(3, 0)]
    assert subtree_nodes(8, 13) == [NodeId(2, 2), NodeId(0, 12)]
    assert subtree_nodes(4, 7) == [NodeId(1, 2), NodeId(0, 6)]
    hashes = [leaf_hash(e) for e in leaves(13)]
    expected = root(hashes[8:13])
    parts = [root(hashes[n.start : n.end]) for n in subtree_nodes(8, 13)]
    assert fold_subtree(parts) == expected
    for start, end in [(1, 3), (2, 5), (4, 9), (0, 0), (3, 2)]:
        assert not is_subtree(start, end)
        with pytest.raises(ValueError):
            subtree_nodes(start, end)


@settings(deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=70))
def test_incremental_root_equals_batch_root_at_every_size(entries):
    hashes = [leaf_hash(e) for e in entries]
    tree = CompactRange()
    assert tree.root() == EMPTY_ROOT
    for n, h in enumerate(hashes, start=1):
        tree.append(h)
        assert tree.size == n
        assert tree.root() == root(hashes[:n]) == reference.mth(entries[:n])


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=60))
def test_a_persisted_state_resumes_where_it_stopped(stop, more):
    hashes = [leaf_hash(e) for e in leaves(stop + more)]
    first = CompactRange()
    first.extend(hashes[:stop])
    saved = first.to_bytes()
    assert len(saved) == 9 + 32 * stop.bit_count()
    resumed = CompactRange.from_bytes(saved)
    assert resumed == first
    resumed.extend(hashes[stop:])
    assert resumed.root() == root(hashes)


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=300))
def test_append_reports_every_node_it_completes_with_its_hash(n):
    hashes = [leaf_hash(e) for e in leaves(n)]
    tree = CompactRange()
    stored = {}
    for i, h in enumerate(hashes):
        completed = tree.append(h)
        assert completed[0] == (NodeId(0, i), h)
        stored.update(completed)
    # Every perfect node whose leaves exist was reported once, with the right hash.
    expected = {NodeId(level, index) for level in range(n.bit_length()) for index in range(n >> level)}
    assert set(stored) == expected
    for node, h in stored.items():
        assert h == root(hashes[node.start : node.end])
    # The state's edge hashes are the hashes of the nodes it names.
    assert [stored[node] for node in tree.nodes()] == list(tree.hashes)


def test_a_state_that_does_not_fit_its_size_is_refused():
    good = CompactRange()
    good.extend(LEAF_HASHES[:5])
    data = good.to_bytes()
    for bad in (data[:-1], data + b"\x00" * 32, b"\x02" + data[1:], data[:8], b""):
        with pytest.raises(ValueError):
            CompactRange.from_bytes(bad)
    with pytest.raises(ValueError, match="hashes"):
        CompactRange(3, [LEAF_HASHES[0]])
    with pytest.raises(ValueError, match="32"):
        CompactRange(1, [b"short"])
    with pytest.raises(ValueError, match="leaf_hash"):
        good.append(b"not a hash")


def test_copy_is_independent():
    tree = CompactRange()
    tree.extend(LEAF_HASHES[:3])
    snapshot = tree.copy()
    tree.append(LEAF_HASHES[3])
    assert snapshot.size == 3 and snapshot.root() == ROOTS[3]
    assert tree.root() == ROOTS[4]


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=300), st.integers(min_value=0, max_value=70))
def test_extending_reports_the_nodes_appending_one_by_one_does(start, count):
    """extend (the integrator's, per record) completes the very nodes, with the same hashes, in the same order,
    as append for each leaf; a wrong-sized hash is refused and leaves the range as it was before that leaf."""
    hashes = [leaf_hash(e) for e in leaves(start + count)]
    one, many = CompactRange(), CompactRange()
    one.extend(hashes[:start])
    many.extend(hashes[:start])
    appended = [node for h in hashes[start:] for node in one.append(h)]
    assert many.extend(hashes[start:]) == appended
    assert many == one and many.root() == root(hashes)
    extra = leaf_hash(b"one more")
    with pytest.raises(ValueError):
        many.extend([extra, b"short"])
    assert many.size == start + count + 1 and many.root() == root([*hashes, extra])


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=600), st.integers(min_value=0, max_value=300), st.sampled_from([2, 3, 8]))
def test_extending_for_a_store_of_some_levels_reports_exactly_those_nodes(start, count, levels_kept):
    """A tile store keeps every 8th level: extend(..., levels_kept) gives it the nodes at those levels, with their
    hashes, in order, as many as appending gives, and grows the range alike; a level that is not kept is never
    named, and levels_kept below 1 is refused."""
    hashes = [leaf_hash(e) for e in leaves(start + count)]
    every, some = CompactRange(), CompactRange()
    every.extend(hashes[:start])
    some.extend(hashes[:start], levels_kept)
    kept = [(node, h) for node, h in every.extend(hashes[start:]) if node.level % levels_kept == 0]
    assert some.extend(hashes[start:], levels_kept) == kept
    assert some == every and some.root() == root(hashes)
    with pytest.raises(ValueError, match="levels_kept"):
        some.extend(hashes[:1], 0)
