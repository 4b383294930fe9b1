"""Writers' signatures on log entries (tlog/entry_signature.py): what `debar log verify` accepts and refuses."""

from __future__ import annotations

from debar.tlog.encoding import encode_base64
from debar.tlog.entry_signature import chunk_signed_by, entry_signed_by, sign_chunk, sign_entry
from debar.tlog.keys import Ed25519Signer

ENTRY = b"debar-log-entry/1 registry\nat=1764250000\ncaller=clerk:wang\n"


def test_a_signature_verifies_only_with_its_key_on_its_bytes():
    log = Ed25519Signer.generate("debar.test/log")
    signature = sign_entry(log, ENTRY)
    assert entry_signed_by(log.verifier(), ENTRY, signature)
    other = Ed25519Signer.generate("debar.test/log")
    assert not entry_signed_by(other.verifier(), ENTRY, signature)  # same name, another key
    for i in range(len(ENTRY)):
        changed = bytearray(ENTRY)
        changed[i] ^= 0x01
        assert not entry_signed_by(log.verifier(), bytes(changed), signature), i


def test_garbage_and_signatures_of_other_messages_are_refused():
    log = Ed25519Signer.generate("debar.test/log")
    for bad in ("", "not base64!", encode_base64(b"\0" * 68), sign_entry(log, ENTRY)[:-4] + "AAA="):
        assert not entry_signed_by(log.verifier(), ENTRY, bad), bad
    # The key's plain signature on the same bytes (as on a note) is not an entry signature: the context differs.
    plain = encode_base64(log.key_id + log.sign(ENTRY))
    assert not entry_signed_by(log.verifier(), ENTRY, plain)


def test_a_chunk_signature_holds_its_entries_their_count_and_order():
    log = Ed25519Signer.generate("debar.test/log")
    entries = [ENTRY + b"target=R%d\n" % i for i in range(5)]
    signature = sign_chunk(log, entries)
    assert chunk_signed_by(log.verifier(), entries, signature)
    for tampered in (entries[1:], entries[:-1], [entries[1], entries[0], *entries[2:]], [*entries, entries[0]]):
        assert not chunk_signed_by(log.verifier(), tampered, signature)
    assert not chunk_signed_by(log.verifier(), entries, sign_entry(log, b"".join(entries)))  # not an entry's
    assert not chunk_signed_by(Ed25519Signer.generate("debar.test/log").verifier(), entries, signature)
