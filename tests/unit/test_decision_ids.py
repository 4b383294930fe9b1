"""Decision ids reveal nothing (domain/decision_ids.py): consecutive decisions share no visible structure, a changed
or guessed id stands for nothing, and only the key's holder can map an id to where the decision is."""

from __future__ import annotations

import os
from itertools import pairwise

import pytest

from debar.common.errors import InvalidField
from debar.common.identifiers import Placement
from debar.sanction.domain.decision_ids import DecisionIds, derive_key
from debar.sanction.domain.decisions import DecisionAddress

IDS = DecisionIds.for_bucket_key(b"k" * 32)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _bits(value: str) -> int:
    import base64

    return int.from_bytes(base64.b32decode(value.upper() + "======"), "big")


def test_an_id_maps_back_to_its_location_and_only_with_the_key():
    address = DecisionAddress("1764250000123-7", "a3f", 12)
    external = IDS.of(address)
    assert len(external) == 26 and external.isalnum() and external.islower()
    located = IDS.locate(external)
    assert located is not None and located.address == address
    assert DecisionIds.for_bucket_key(b"o" * 32).locate(external) is None
    assert IDS.of_internal(["1764250000123-7-a3f-12", "1-0-000-0"]) == [
        external,
        IDS.of(DecisionAddress("1-0", "000", 0)),
    ]
    assert DecisionIds.for_placement(Placement(b"k" * 32)).of(address) == external
    assert len(derive_key(b"k" * 32)) == 32


def test_consecutive_decisions_share_no_visible_structure():
    """Neighbours (next index, next record, next millisecond): about half of the 128 bits differ, no common prefix
    or suffix beyond chance."""
    ids = [IDS.external("1764250000123-0", "a3f", i) for i in range(200)]
    ids += [IDS.external(f"1764250000{123 + i}-0", "a3f", 0) for i in range(1, 200)]
    ids += [IDS.external(f"1764250000123-{i}", "a3f", 0) for i in range(1, 200)]
    assert len(set(ids)) == len(ids)
    distances = [bin(_bits(a) ^ _bits(b)).count("1") for a, b in pairwise(ids)]
    assert 56 < sum(distances) / len(distances) < 72
    assert max(_common_prefix(a, b) for a, b in pairwise(ids)) <= 4
    # no bit position is constant across them
    fixed_ones = fixed_zeros = (1 << 128) - 1
    for value in map(_bits, ids):
        fixed_ones &= value
        fixed_zeros &= ~value
    assert fixed_ones == 0 and fixed_zeros & ((1 << 128) - 1) == 0


def test_a_changed_or_guessed_id_stands_for_nothing():
    external = IDS.external("1764250000123-0", "a3f", 0)
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    for position in range(26):
        for c in alphabet:
            if c == external[position]:
                continue
            changed = external[:position] + c + external[position + 1 :]
            assert IDS.locate(changed) is None, changed
    for _ in range(2000):
        guess = "".join(alphabet[b % 32] for b in os.urandom(25)) + "a"
        assert IDS.locate(guess) is None


def test_a_spooled_id_has_96_random_bits_and_names_only_its_bucket():
    first, second = IDS.new_spooled("0ff"), IDS.new_spooled("0ff")
    assert first != second
    assert IDS.bucket_of(first) == "0ff"
    located = IDS.locate(first)
    assert located is not None and located.address is None


@pytest.mark.parametrize("bad", ["", "nonsense", "1-2-zzz", "1764250000000-0-a3f-0", "A" * 26, "a" * 27])
def test_a_value_not_shaped_like_an_id_is_invalid(bad):
    with pytest.raises(InvalidField):
        IDS.locate(bad)


def test_a_records_ids_are_each_decisions_id_as_aes_and_base32_make_it():
    """of_record and of_internal (one cipher pass, the integrator's and BatchCheck's) and the fast base32 (one
    block at a time, and many at once) give the very ids an independent AES-ECB + base64.b32encode gives: an id
    keeps meaning the same decision for ever."""
    import base64

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = derive_key(b"k" * 32)
    records = (
        ("1764250000123-7", "a3f", 100),
        ("1-0", "000", 1),
        ("281474976710655-16777215", "fff", 3),
        ("1764250000123-8", "001", 1100),
        ("1764250000124-0", "7a0", 8),
        ("1764250000124-1", "7a0", 7),
    )
    for stream_id, bucket, count in records:
        ms, seq = (int(p) for p in stream_id.split("-"))
        expected = []
        for i in range(count):
            plain = bytes([1]) + ms.to_bytes(6, "big") + seq.to_bytes(3, "big") + int(bucket, 16).to_bytes(2, "big")
            encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
            block = encryptor.update(plain + i.to_bytes(2, "big") + b"\0\0") + encryptor.finalize()
            expected.append(base64.b32encode(block).decode().rstrip("=").lower())
        assert IDS.of_record(stream_id, bucket, count) == expected
        assert [IDS.external(stream_id, bucket, i) for i in range(count)] == expected
        assert IDS.of_internal([f"{stream_id}-{bucket}-{i}" for i in range(count)]) == expected
    assert IDS.of_record("1-0", "000", 0) == []
    for bad in (("1-0", "000", 65537), ("x", "000", 1), ("1-0", "1000", 1)):
        with pytest.raises(ValueError):
            IDS.of_record(*bad)
