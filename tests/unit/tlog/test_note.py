"""Signed notes: the spec's and the Go reference's published examples byte for byte, and every way a note can be
malformed, forged or signed by the wrong key."""

from __future__ import annotations

import base64

import pytest

from debar.tlog.keys import (
    Ed25519Signer,
    Ed25519Verifier,
    InvalidKey,
    parse_signer_key,
    parse_verifier_key,
)
from debar.tlog.note import (
    MAX_SIGNATURES,
    BadSignature,
    MalformedNote,
    Note,
    NoteError,
    Signature,
    UnverifiedNote,
    open_note,
    parse_note,
    sign_note,
)

# c2sp.org/signed-note's example.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n— example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
).encode()
# The Go golang.org/x/mod/sumdb/note package's documented example.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
).encode()

ALICE = Ed25519Signer(name="example.com/alice", seed=bytes(range(32)))
BOB = Ed25519Signer(name="example.com/bob", seed=bytes(range(1, 33)))


def test_the_spec_example_verifies():
    opened = open_note(SPEC_NOTE, [parse_verifier_key(SPEC_VKEY)])
    assert opened.text == "This is an example message.\n"
    assert [s.name for s in opened.verified] == ["example.com/foo"]


def test_the_go_reference_example_is_reproduced_byte_for_byte():
    signer = parse_signer_key(GO_SKEY)
    assert signer.verifier().verifier_key() == GO_VKEY
    assert signer.signer_key() == GO_SKEY
    assert sign_note(GO_TEXT, signer).to_bytes() == GO_NOTE
    assert open_note(GO_NOTE, [parse_verifier_key(GO_VKEY)]).text == GO_TEXT


def signed(text: str = "a text\n", *signers: Ed25519Signer) -> bytes:
    return sign_note(text, *(signers or (ALICE,))).to_bytes()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"a text\n\n\xe2\x80\x94 example.com/alice AAAAAAA=", "no final newline"),
        (b"a text\n\xe2\x80\x94 example.com/alice AAAAAAA=\n", "no blank line"),
        (b"a text\n\n", "no signatures"),
        (b"a text\r\n\n" + signed()[len(b"a text\n\n") :], "carriage return"),
        (b"a\ttext\n\n" + signed()[len(b"a text\n\n") :], "tab"),
        (b"a text\xff\n\n" + signed()[len(b"a text\n\n") :], "not UTF-8"),
        (b"a text\n\n- example.com/alice AAAAAAA=\n", "hyphen instead of em dash"),
        (b"a text\n\n\xe2\x80\x94example.com/alice AAAAAAA=\n", "no space after the dash"),
        (b"a text\n\n\xe2\x80\x94 example.com/alice  AAAAAAA=\n", "two spaces"),
        (b"a text\n\n\xe2\x80\x94 example.com/alice AAAAAAA= x\n", "trailing field"),
        (b"a text\n\n\xe2\x80\x94  AAAAAAA=\n", "empty name"),
        (b"a text\n\n\xe2\x80\x94 example.com/alice AAAAAA==\n", "4 bytes: no room for a signature"),
        (b"a text\n\n\xe2\x80\x94 example.com/alice AAAAAAB=\n", "non-canonical base64"),
        (b"a text\n\n\xe2\x80\x94 example.com/alice AAAA!AA=\n", "not base64"),
        (b"a text\n\n\xe2\x80\x94 example.com/alice AAAAAAA=\n\n", "blank line after the signatures"),
    ],
)
def test_malformed_notes_are_refused(data, why):
    with pytest.raises(MalformedNote):
        open_note(data, [ALICE.verifier()])


def test_limits_on_size_and_signature_count():
    one_line = signed()[len(b"a text\n\n") :]
    at_limit = b"a text\n\n" + one_line * MAX_SIGNATURES
    assert len(parse_note(at_limit).signatures) == MAX_SIGNATURES
    with pytest.raises(MalformedNote, match="more than"):
        parse_note(b"a text\n\n" + one_line * (MAX_SIGNATURES + 1))
    with pytest.raises(MalformedNote, match="larger"):
        parse_note(signed("x" * 2000 + "\n"), max_size=1000)


def test_a_note_signed_only_by_unknown_keys_is_refused():
    with pytest.raises(UnverifiedNote):
        open_note(signed("a text\n", BOB), [ALICE.verifier()])


def test_unknown_signatures_are_ignored_and_known_ones_reported():
    data = signed("a text\n", BOB, ALICE)
    opened = open_note(data, [ALICE.verifier()])
    assert [s.name for s in opened.verified] == ["example.com/alice"]
    assert opened.signed_by(ALICE.verifier()) and not opened.signed_by(BOB.verifier())
    assert len(opened.note.signatures) == 2, "unknown lines are kept, so the note can be passed on whole"


def test_same_name_other_key_and_same_id_other_name_are_unknown_keys():
    impostor = Ed25519Signer("example.com/alice", bytes(range(2, 34)))
    with pytest.raises(UnverifiedNote):
        open_note(signed("a text\n", impostor), [ALICE.verifier()])
    [sig] = parse_note(signed()).signatures
    renamed = Note("a text\n", (Signature("example.com/eve", sig.key_id, sig.signature),)).to_bytes()
    with pytest.raises(UnverifiedNote):
        open_note(renamed, [ALICE.verifier()])


def test_a_failing_signature_from_a_known_key_refuses_the_note_even_beside_a_good_one():
    good = parse_note(signed("a text\n", ALICE, BOB))
    alice, bob = good.signatures
    broken = Signature(bob.name, bob.key_id, bytes(64))
    data = Note("a text\n", (alice, broken)).to_bytes()
    with pytest.raises(BadSignature, match=r"example\.com/bob"):
        open_note(data, [ALICE.verifier(), BOB.verifier()])
    # Without Bob's key, his line is just unknown.
    assert open_note(data, [ALICE.verifier()]).verified == (alice,)


def test_one_changed_byte_anywhere_refuses_the_note():
    data = signed("origin.example/log\n42\nsome more text\n", ALICE, BOB)
    verifiers = [ALICE.verifier(), BOB.verifier()]
    assert open_note(data, verifiers)
    for i in range(len(data)):
        for bit in range(8):
            changed = data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :]
            with pytest.raises(NoteError):
                opened = open_note(changed, verifiers)
                # A changed name makes that line unknown: the note then lacks that key's signature.
                if len(opened.verified) < 2:
                    raise UnverifiedNote("one of the two keys no longer signs")


def test_a_signature_spelled_in_non_canonical_base64_is_refused():
    """The unused low bits of the last base64 digit change the text but not the decoded signature: such a
    changed note must not verify."""
    data = signed()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    text = data.decode()
    assert text.endswith("=\n")
    last = text[-3]
    respelled = text[:-3] + alphabet[alphabet.index(last) ^ 1] + text[-2:]
    assert respelled != text
    assert base64.b64decode(respelled.split(" ")[-1]) == base64.b64decode(text.split(" ")[-1])
    with pytest.raises(MalformedNote, match="canonical"):
        open_note(respelled.encode(), [ALICE.verifier()])


def test_a_repeated_signature_counts_once():
    [sig] = parse_note(signed()).signatures
    opened = open_note(
        Note("a text\n", (sig,)).with_signatures(sig).to_bytes() + sig.line().encode(), [ALICE.verifier()]
    )
    assert opened.verified == (sig,)


def test_two_different_verifiers_for_one_name_and_id_are_a_configuration_error():
    other = Ed25519Verifier("example.com/alice", BOB.public_key)
    object.__setattr__(other, "key_id", ALICE.key_id)
    with pytest.raises(InvalidKey, match="share"):
        open_note(signed(), [ALICE.verifier(), other])
    assert open_note(signed(), [ALICE.verifier(), ALICE.verifier()]).verified


def test_the_text_may_hold_blank_lines_and_the_last_one_separates():
    text = "first\n\nthird\n\n"
    data = signed(text)
    assert open_note(data, [ALICE.verifier()]).text == text


def test_signing_refuses_text_a_note_cannot_carry():
    for text in ("no newline", "a\rb\n", "nul\x00\n", "lone surrogate \ud800\n"):
        with pytest.raises(MalformedNote):
            sign_note(text, ALICE)
    with pytest.raises(MalformedNote, match="at least one signature"):
        Note("unsigned\n").to_bytes()
