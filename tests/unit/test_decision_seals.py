"""Decision seals (domain/decision_seals.py): what a seal covers, and that nothing else passes for one."""

from __future__ import annotations

import pytest

from debar.common.identifiers import Placement
from debar.sanction.domain.decision_seals import (
    SEAL_INFO,
    DecisionSealer,
    Seal,
    parse_seals,
    seal_key,
    seal_matches,
)

KEY = seal_key("test-bucket-key-of-32-bytes-or-more")
Q1 = ("railway", "7", "RIC", "t1.abc", "RAIL_G_TRAIN", "1800000000")
Q2 = ("railway/agent-1", "7", "RIC", "t1.def", "RAIL_G_TRAIN", "1800000000")


def test_the_key_is_the_placement_derivation_of_the_bucket_key():
    assert Placement(b"test-bucket-key-of-32-bytes-or-more").derive(SEAL_INFO) == KEY
    assert seal_key("another-bucket-key-of-32-bytes-or-more") != KEY


def test_a_seal_matches_its_questions_in_its_bucket_only():
    sealer = DecisionSealer(KEY)
    [seal] = parse_seals(sealer.seal("0a1", [Q1, Q2]))
    assert seal.count == 2
    assert seal_matches(KEY, "0a1", seal, [Q1, Q2])
    assert not seal_matches(KEY, "0a2", seal, [Q1, Q2])  # moved to another bucket's stream
    assert not seal_matches(KEY, "0a1", seal, [Q2, Q1])  # reordered
    assert not seal_matches(KEY, "0a1", seal, [Q1])  # one dropped
    assert not seal_matches(seal_key("another-bucket-key-of-32-bytes-or-more"), "0a1", seal, [Q1, Q2])
    for field in range(6):  # any field of the question changed
        changed = list(Q2)
        changed[field] += "x"
        assert not seal_matches(KEY, "0a1", seal, [Q1, tuple(changed)])
    assert not seal_matches(KEY, "0a1", Seal(2, seal.nonce + "A", seal.mac), [Q1, Q2])  # another nonce


def test_field_boundaries_are_part_of_the_message():
    sealer = DecisionSealer(KEY)
    [seal] = parse_seals(sealer.seal("0a1", [("ab", "7", "RIC", "p", "M", "1")]))
    assert not seal_matches(KEY, "0a1", seal, [("a", "b7", "RIC", "p", "M", "1")])


def test_nonces_are_never_the_same_twice_and_a_replay_brings_its_own():
    sealer, other = DecisionSealer(KEY), DecisionSealer(KEY)
    nonces = {parse_seals(s.seal("0a1", [Q1]))[0].nonce for s in (sealer, other) for _ in range(1000)}
    assert len(nonces) == 2000
    [replayed] = parse_seals(sealer.seal("0a1", [Q1], nonce="abcdefghijklmnopqrstuvwxyz"))
    assert replayed.nonce == "abcdefghijklmnopqrstuvwxyz" and seal_matches(KEY, "0a1", replayed, [Q1])


def test_seals_of_a_record_are_parsed_in_order_and_garbage_is_named():
    sealer = DecisionSealer(KEY)
    field = "\x1d".join((sealer.seal("0a1", [Q1, Q2]), sealer.seal("0a1", [Q1])))
    assert [s.count for s in parse_seals(field)] == [2, 1]
    assert parse_seals("") == []
    for bad in ("x:abc:def", "0:abc:def", "2::def", "2:abc", "forged"):
        with pytest.raises(ValueError, match="not a seal"):
            parse_seals(bad)
