"""Checkpoints: the spec's example, strict parsing of every line, and opening a signed, cosigned checkpoint with
the keys an auditor holds."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debar.tlog.checkpoint import Checkpoint, CheckpointError, open_checkpoint, parse_checkpoint, sign_checkpoint
from debar.tlog.cosignature import CosignatureSigner
from debar.tlog.keys import Ed25519Signer
from debar.tlog.merkle import EMPTY_ROOT
from debar.tlog.note import BadSignature, Note, NoteError, Signature, UnverifiedNote, parse_note

SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
ROOT = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
LOG = Ed25519Signer("debar.example/log", bytes(range(32)))
W1 = CosignatureSigner("witness.example/w1", bytes(range(1, 33)))
W2 = CosignatureSigner("witness.example/w2", bytes(range(2, 34)))
NOW = 1_700_000_000


def test_the_spec_example_body():
    checkpoint = parse_checkpoint(SPEC_BODY)
    assert checkpoint == Checkpoint("example.com/behind-the-sofa", 20852163, ROOT)
    assert checkpoint.body() == SPEC_BODY


def test_extension_lines_follow_the_root():
    checkpoint = Checkpoint("debar.example/log", 0, EMPTY_ROOT, ("ext one", "ext two"))
    body = checkpoint.body()
    assert body == f"debar.example/log\n0\n{base64.b64encode(EMPTY_ROOT).decode()}\next one\next two\n"
    assert parse_checkpoint(body) == checkpoint


ROOT_LINE = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("origin\n5\n" + ROOT_LINE, "no final newline"),
        ("origin\n5\n", "two lines"),
        ("\n5\n" + ROOT_LINE + "\n", "empty origin"),
        ("origin\n05\n" + ROOT_LINE + "\n", "leading zero"),
        ("origin\n00\n" + ROOT_LINE + "\n", "zero spelled twice"),
        ("origin\n+5\n" + ROOT_LINE + "\n", "sign"),
        ("origin\n-5\n" + ROOT_LINE + "\n", "negative"),
        ("origin\n 5\n" + ROOT_LINE + "\n", "space"),
        ("origin\n1_000\n" + ROOT_LINE + "\n", "underscore"),
        ("origin\n\u0665\n" + ROOT_LINE + "\n", "an Arabic-Indic digit"),
        ("origin\n0x10\n" + ROOT_LINE + "\n", "hex"),
        ("origin\n18446744073709551616\n" + ROOT_LINE + "\n", "2**64"),
        ("origin\n5\n" + ROOT_LINE[:-4] + "\n", "short root"),
        ("origin\n5\n" + base64.b64encode(bytes(33)).decode() + "\n", "long root"),
        ("origin\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n", "non-canonical base64"),
        ("origin\n5\n" + ROOT_LINE.rstrip("=") + "\n", "no padding"),
        ("origin\n5\n" + ROOT_LINE + "\n\n", "empty extension line"),
        ("origin\n5\n" + ROOT_LINE + "\next\n\n", "trailing blank line"),
        ("origin\n5\n" + ROOT_LINE + "\nbad\tline\n", "control character"),
    ],
)
def test_malformed_bodies_are_refused(body, why):
    with pytest.raises(CheckpointError):
        parse_checkpoint(body)


def test_the_largest_size_is_two_to_the_64_minus_one():
    assert parse_checkpoint(f"o\n{2**64 - 1}\n{ROOT_LINE}\n").size == 2**64 - 1
    with pytest.raises(CheckpointError):
        Checkpoint("o", 2**64, ROOT)
    with pytest.raises(CheckpointError):
        Checkpoint("o", 1, ROOT[:31])
    with pytest.raises(CheckpointError):
        Checkpoint("two\nlines", 1, ROOT)


lines = st.text(st.characters(min_codepoint=0x20, exclude_characters="\x7f"), min_size=1, max_size=30)


@settings(deadline=None)
@given(
    lines,
    st.integers(min_value=0, max_value=2**64 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(lines, max_size=3),
)
def test_every_checkpoint_round_trips(origin, size, root_hash, extensions):
    checkpoint = Checkpoint(origin, size, root_hash, tuple(extensions))
    assert parse_checkpoint(checkpoint.body()) == checkpoint


def signed(checkpoint: Checkpoint, *witnesses: CosignatureSigner) -> bytes:
    note = sign_checkpoint(checkpoint, LOG)
    body = checkpoint.body().encode()
    return note.with_signatures(*(w.cosign(body, NOW) for w in witnesses)).to_bytes()


CHECKPOINT = Checkpoint("debar.example/log", 1234, ROOT)


def test_a_signed_checkpoint_opens_with_the_log_key():
    opened = open_checkpoint(signed(CHECKPOINT), LOG.verifier())
    assert opened.checkpoint == CHECKPOINT
    assert opened.to_bytes() == signed(CHECKPOINT)


def test_a_checkpoint_from_another_log_or_key_is_refused():
    with pytest.raises(CheckpointError, match="origin"):
        open_checkpoint(signed(Checkpoint("other.example/log", 1, ROOT)), LOG.verifier())
    assert open_checkpoint(signed(Checkpoint("other.example/log", 1, ROOT)), LOG.verifier(), origin="other.example/log")
    impostor = Ed25519Signer("debar.example/log", bytes(range(5, 37)))
    with pytest.raises(UnverifiedNote):
        open_checkpoint(sign_checkpoint(CHECKPOINT, impostor).to_bytes(), LOG.verifier())


def test_a_witness_alone_does_not_make_a_checkpoint_valid():
    body = CHECKPOINT.body()
    only_cosigned = Note(body, (W1.cosign(body.encode(), NOW),)).to_bytes()
    with pytest.raises(UnverifiedNote, match="log key"):
        open_checkpoint(only_cosigned, LOG.verifier(), witnesses=[W1.verifier()])


def test_cosignatures_are_required_from_every_witness_by_default_or_a_quorum():
    witnesses = [W1.verifier(), W2.verifier()]
    both = open_checkpoint(signed(CHECKPOINT, W1, W2), LOG.verifier(), witnesses=witnesses)
    assert {s.name for s in both.verified} == {LOG.name, W1.name, W2.name}
    with pytest.raises(UnverifiedNote, match=r"witness\.example/w2"):
        open_checkpoint(signed(CHECKPOINT, W1), LOG.verifier(), witnesses=witnesses)
    assert open_checkpoint(signed(CHECKPOINT, W1), LOG.verifier(), witnesses=witnesses, quorum=1)
    with pytest.raises(UnverifiedNote):
        open_checkpoint(signed(CHECKPOINT), LOG.verifier(), witnesses=witnesses, quorum=1)


def test_a_broken_cosignature_refuses_the_checkpoint():
    note = parse_note(signed(CHECKPOINT, W1))
    log_sig, cosig = note.signatures
    broken = Signature(cosig.name, cosig.key_id, cosig.signature[:8] + bytes(64))
    data = Note(note.text, (log_sig, broken)).to_bytes()
    with pytest.raises(BadSignature):
        open_checkpoint(data, LOG.verifier(), witnesses=[W1.verifier()], quorum=0)


def test_one_changed_byte_anywhere_in_a_cosigned_checkpoint_is_refused():
    data = signed(CHECKPOINT, W1)
    for i in range(len(data)):
        for bit in range(8):
            changed = data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :]
            with pytest.raises((NoteError, CheckpointError)):
                open_checkpoint(changed, LOG.verifier(), witnesses=[W1.verifier()])
