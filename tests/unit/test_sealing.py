"""Sealing objection texts: AES-GCM under a key ring, bound to the record and field it belongs to."""

from __future__ import annotations

import pytest

from debar.sanction.adapters.sealing import Sealer, Unreadable

RING = "k2:the-newer-objection-key-of-32-bytes,k1:the-older-objection-key-of-32-bytes"


def test_a_sealed_text_opens_only_in_its_place_and_under_its_key():
    sealer = Sealer.from_spec(RING)
    sealed = sealer.seal("+86 139 0000 1111", "O1230123456789ab", "contact")
    assert sealed.startswith("k2:") and "1111" not in sealed
    assert sealer.open(sealed, "O1230123456789ab", "contact") == "+86 139 0000 1111"
    assert sealer.seal("same", "O1", "statement") != sealer.seal("same", "O1", "statement")  # a fresh nonce each
    for record, field in [("O1230123456789ab", "statement"), ("O9990123456789ab", "contact")]:
        with pytest.raises(Unreadable, match="cannot be opened"):  # moved to another field or objection
            sealer.open(sealed, record, field)


def test_an_older_key_of_the_ring_still_opens_what_it_sealed():
    old = Sealer.from_spec(RING.split(",")[1])
    sealed = old.seal("statement", "O1", "statement")
    assert Sealer.from_spec(RING).open(sealed, "O1", "statement") == "statement"
    with pytest.raises(Unreadable, match="'k1', which DEBAR_OBJECTION_KEYS does not hold"):
        Sealer.from_spec(RING.split(",")[0]).open(sealed, "O1", "statement")


@pytest.mark.parametrize("tampered", ["k2:", "k2:!!!", "k2:AAAA", "nokeyid"])
def test_garbage_fails_closed(tampered):
    with pytest.raises(Unreadable):
        Sealer.from_spec(RING).open(tampered, "O1", "statement")


def test_short_keys_are_refused():
    with pytest.raises(ValueError, match="at least 32"):
        Sealer.from_spec("k1:short")
