"""Ed25519 checkpoint cosignatures (type 0x04): key ids and timestamps as published, the exact signed message, and
that a cosignature is not mistaken for, or forged from, a plain note signature."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from debar.tlog.cosignature import (
    MAX_TIMESTAMP,
    CosignatureSigner,
    cosignature_timestamp,
    cosigned_message,
    generate_cosigner_key,
    parse_cosigner_key,
    parse_cosigner_signer_key,
)
from debar.tlog.keys import Ed25519Signer, InvalidKey, parse_verifier_key
from debar.tlog.note import (
    BadSignature,
    MalformedNote,
    Note,
    Signature,
    UnverifiedNote,
    open_note,
    parse_note,
    sign_note,
)

BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
WITNESS = CosignatureSigner("witness.example/w1", bytes(range(32)))
LOG = Ed25519Signer("example.com/behind-the-sofa", bytes(range(100, 132)))
NOW = 1_700_000_000


def cosigned(text: str = BODY, timestamp: int = NOW) -> bytes:
    return sign_note(text, LOG).with_signatures(WITNESS.cosign(text.encode(), timestamp)).to_bytes()


def test_a_published_witness_key_has_the_type_4_key_id():
    # A real witness's verifier key (from transparency-dev/formats' tests): its id only checks out with type 0x04.
    verifier = parse_cosigner_key("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
    assert verifier.key_id.hex() == "da77ade7"
    assert verifier.key_id == hashlib.sha256(b"remora.n621.de\n\x04" + verifier.public_key).digest()[:4]


def test_a_published_cosignature_timestamp_reads_back():
    raw = base64.b64decode(
        "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
    )
    assert cosignature_timestamp(Signature("w", raw[:4], raw[4:])) == 1727964367
    with pytest.raises(MalformedNote):
        cosignature_timestamp(Signature("w", raw[:4], raw[4:-1]))


def test_the_signed_message_is_header_time_line_and_the_whole_body():
    sig = WITNESS.cosign(BODY.encode(), NOW)
    assert sig.name == "witness.example/w1" and sig.key_id == WITNESS.key_id
    assert sig.signature[:8] == NOW.to_bytes(8, "big")
    message = f"cosignature/v1\ntime {NOW}\n{BODY}".encode()
    assert cosigned_message(BODY.encode(), NOW) == message
    Ed25519PublicKey.from_public_bytes(WITNESS.public_key).verify(sig.signature[8:], message)  # raises if not


def test_a_cosigned_checkpoint_opens_with_the_witness_key_and_reports_its_time():
    opened = open_note(cosigned(), [LOG.verifier(), WITNESS.verifier()])
    assert opened.signed_by(WITNESS.verifier()) and opened.signed_by(LOG.verifier())
    [cosig] = [s for s in opened.verified if s.name == WITNESS.name]
    assert cosignature_timestamp(cosig) == NOW


def test_a_changed_timestamp_or_body_breaks_the_cosignature():
    note = parse_note(cosigned())
    log_sig, cosig = note.signatures
    later = Signature(cosig.name, cosig.key_id, (NOW + 1).to_bytes(8, "big") + cosig.signature[8:])
    with pytest.raises(BadSignature):
        open_note(Note(BODY, (log_sig, later)).to_bytes(), [WITNESS.verifier()])
    with_extension = BODY + "an extension line\n"
    moved = Note(with_extension, (cosig,)).to_bytes()
    with pytest.raises(BadSignature):
        open_note(moved, [WITNESS.verifier()])


def test_extension_lines_are_covered():
    text = BODY + "extension\n"
    data = cosigned(text)
    assert open_note(data, [WITNESS.verifier()]).text == text
    tampered = data.replace(b"extension", b"extensioN")
    with pytest.raises(BadSignature):
        open_note(tampered, [WITNESS.verifier()])


def test_the_same_key_as_a_plain_note_key_is_another_key_id():
    """A type 0x01 verifier of the witness's key does not accept its cosignatures, nor the reverse."""
    plain = Ed25519Signer(WITNESS.name, bytes(range(32)))
    assert plain.public_key == WITNESS.public_key and plain.key_id != WITNESS.key_id
    with pytest.raises(UnverifiedNote):
        open_note(cosigned(), [plain.verifier()])
    with pytest.raises(UnverifiedNote):
        open_note(sign_note(BODY, plain).to_bytes(), [WITNESS.verifier()])


def test_a_plain_signature_relabelled_as_a_cosignature_does_not_verify():
    plain = Ed25519Signer(WITNESS.name, bytes(range(32)))
    [sig] = parse_note(sign_note(BODY, plain).to_bytes()).signatures
    relabelled = Signature(WITNESS.name, WITNESS.key_id, sig.signature)
    with pytest.raises(BadSignature):
        open_note(Note(BODY, (relabelled,)).to_bytes(), [WITNESS.verifier()])


def test_timestamps_must_be_in_range():
    for bad in (0, -1):
        with pytest.raises(ValueError, match="timestamp"):
            WITNESS.cosign(BODY.encode(), bad)
    with pytest.raises(ValueError, match="timestamp"):
        WITNESS.cosign(BODY.encode(), MAX_TIMESTAMP + 1)
    assert WITNESS.cosign(BODY.encode(), MAX_TIMESTAMP)
    sig = WITNESS.cosign(BODY.encode(), NOW)
    too_late = Signature(sig.name, sig.key_id, (MAX_TIMESTAMP + 1).to_bytes(8, "big") + sig.signature[8:])
    assert not WITNESS.verifier().verify(BODY.encode(), too_late.signature)
    with pytest.raises(MalformedNote):
        cosignature_timestamp(too_late)


def test_cosigner_key_strings_round_trip_and_are_not_note_keys():
    skey, vkey = generate_cosigner_key("witness.example/w2")
    signer, verifier = parse_cosigner_signer_key(skey), parse_cosigner_key(vkey)
    assert verifier == signer.verifier() and verifier.verifier_key() == vkey and signer.signer_key() == skey
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == 0x04
    assert skey.split("+", 4)[4] not in repr(signer)
    with pytest.raises(InvalidKey):
        parse_verifier_key(vkey)
    with pytest.raises(InvalidKey):
        parse_cosigner_key(LOG.verifier().verifier_key())
