"""The witness's decision: it cosigns a log that only grows, and refuses, with the spec's status, a forked or
rolled-back log, a wrong old size, a bad proof, a bad signature, an unknown log and a malformed request."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debar.tlog.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from debar.tlog.compact import CompactRange
from debar.tlog.cosignature import CosignatureSigner, cosignature_timestamp
from debar.tlog.keys import Ed25519Signer
from debar.tlog.merkle import EMPTY_ROOT, NodeId, leaf_hash
from debar.tlog.note import BadSignature, Note, NoteError, Signature, parse_note
from debar.tlog.proofs import consistency_proof
from debar.tlog.witness import (
    MAX_PROOF_LINES,
    AddCheckpointRequest,
    BadRequest,
    Conflict,
    Cosigned,
    Forbidden,
    LogRecord,
    UnknownLog,
    Unprocessable,
    Witness,
    WitnessState,
    add_cosignatures,
    parse_add_checkpoint_request,
    parse_size_body,
)

ORIGIN = "debar.example/log"
LOG = Ed25519Signer(ORIGIN, bytes(range(32)))
OTHER_LOG = Ed25519Signer("other.example/log", bytes(range(7, 39)))
WITNESS_KEY = CosignatureSigner("witness.example/w1", bytes(range(1, 33)))
NOW = 1_700_000_000


def witness() -> Witness:
    return Witness(WITNESS_KEY, {ORIGIN: [LOG.verifier()], OTHER_LOG.name: [OTHER_LOG.verifier()]})


class Log:
    """A log as the integrator keeps it: entries, every node, the signing key."""

    def __init__(self, entries: list[bytes], signer: Ed25519Signer = LOG) -> None:
        self.signer = signer
        self.roots = [EMPTY_ROOT]
        self.nodes: dict[NodeId, bytes] = {}
        tree = CompactRange()
        for e in entries:
            self.nodes.update(tree.append(leaf_hash(e)))
            self.roots.append(tree.root())

    def checkpoint(self, size: int) -> bytes:
        return sign_checkpoint(Checkpoint(self.signer.name, size, self.roots[size]), self.signer).to_bytes()

    def proof(self, old: int, new: int) -> tuple[bytes, ...]:
        return tuple(consistency_proof(old, new, lambda nodes: [self.nodes[n] for n in nodes]))

    def request(self, old: int, new: int) -> AddCheckpointRequest:
        return AddCheckpointRequest(old, self.proof(old, new), self.checkpoint(new))


def entries(n: int, tag: bytes = b"") -> list[bytes]:
    return [b"entry %d%s" % (i, tag) for i in range(n)]


HONEST = Log(entries(40))


def cosigned_up_to(size: int) -> WitnessState:
    return witness().add_checkpoint(WitnessState(), HONEST.request(0, size), NOW).state


def test_first_contact_needs_no_proof_and_returns_a_verifiable_cosignature():
    result = witness().add_checkpoint(WitnessState(), HONEST.request(0, 5), NOW)
    assert isinstance(result, Cosigned)
    assert result.state.latest(ORIGIN) == LogRecord(5, HONEST.roots[5])
    assert result.checkpoint == Checkpoint(ORIGIN, 5, HONEST.roots[5])
    # The log adds the answer to its checkpoint; an auditor then checks both signatures.
    merged = add_cosignatures(parse_note(HONEST.checkpoint(5)), result.response_body(), WITNESS_KEY.verifier())
    opened = open_checkpoint(merged.to_bytes(), LOG.verifier(), witnesses=[WITNESS_KEY.verifier()])
    assert opened.checkpoint.size == 5
    assert merged == result.note
    [cosig] = [s for s in opened.verified if s.name == WITNESS_KEY.name]
    assert cosignature_timestamp(cosig) == NOW


def test_a_growing_log_is_cosigned_at_each_step_with_a_proof_from_the_last_size():
    state = WitnessState()
    for old, new in [(0, 3), (3, 8), (8, 8), (8, 21), (21, 40)]:
        result = witness().add_checkpoint(state, HONEST.request(old, new), NOW + new)
        assert result.state.latest(ORIGIN) == LogRecord(new, HONEST.roots[new])
        state = result.state


def test_a_forked_log_is_refused():
    """The log's key signs a tree that rewrote an entry the witness already cosigned over: no proof from the
    witness's stored root leads there, whatever the log sends."""
    state = cosigned_up_to(20)
    forked = Log([*entries(7), b"rewritten", *entries(40)[8:]])
    for new in (20, 21, 33, 40):
        with pytest.raises(Unprocessable) as refused:
            witness().add_checkpoint(state, forked.request(20, new), NOW)
        assert refused.value.status == 422
    # Nor does it help to send the honest log's proof with the forked checkpoint.
    honest_proof = AddCheckpointRequest(20, HONEST.proof(20, 33), forked.checkpoint(33))
    with pytest.raises(Unprocessable):
        witness().add_checkpoint(state, honest_proof, NOW)
    # Or to pretend the witness has seen nothing.
    with pytest.raises(Conflict) as conflict:
        witness().add_checkpoint(state, forked.request(0, 33), NOW)
    assert conflict.value.known_size == 20
    # The honest log is still cosigned afterwards: the refusals changed nothing.
    assert witness().add_checkpoint(state, HONEST.request(20, 33), NOW).state.latest(ORIGIN).size == 33


def test_a_fork_at_the_same_size_is_refused():
    state = cosigned_up_to(20)
    forked = Log(entries(20, b"-forked"))
    with pytest.raises(Unprocessable, match="different roots"):
        witness().add_checkpoint(state, forked.request(20, 20), NOW)


def test_a_rolled_back_log_is_refused():
    state = cosigned_up_to(20)
    with pytest.raises(BadRequest) as refused:
        witness().add_checkpoint(state, AddCheckpointRequest(20, (), HONEST.checkpoint(12)), NOW)
    assert refused.value.status == 400
    with pytest.raises(Conflict):
        witness().add_checkpoint(state, HONEST.request(12, 12), NOW)


def test_a_wrong_old_size_gets_409_with_the_size_the_witness_knows():
    state = cosigned_up_to(20)
    with pytest.raises(Conflict) as refused:
        witness().add_checkpoint(state, HONEST.request(15, 30), NOW)
    assert refused.value.status == 409 and refused.value.known_size == 20
    assert refused.value.body() == b"20\n" and parse_size_body(refused.value.body()) == 20
    with pytest.raises(Conflict) as unknown:
        witness().add_checkpoint(WitnessState(), HONEST.request(15, 30), NOW)
    assert unknown.value.known_size == 0


def test_a_proof_that_does_not_verify_gets_422():
    state = cosigned_up_to(20)
    good = HONEST.request(20, 33)
    bad = AddCheckpointRequest(20, (bytes(32), *good.proof[1:]), good.checkpoint)
    with pytest.raises(Unprocessable):
        witness().add_checkpoint(state, bad, NOW)
    with pytest.raises(Unprocessable):
        witness().add_checkpoint(state, AddCheckpointRequest(20, good.proof[:-1], good.checkpoint), NOW)
    with pytest.raises(Unprocessable):
        witness().add_checkpoint(WitnessState(), AddCheckpointRequest(0, good.proof, good.checkpoint), NOW)


def test_size_zero_must_carry_the_empty_root():
    assert witness().add_checkpoint(WitnessState(), HONEST.request(0, 0), NOW).state.latest(ORIGIN) == LogRecord(
        0, EMPTY_ROOT
    )
    lying = sign_checkpoint(Checkpoint(ORIGIN, 0, HONEST.roots[1]), LOG).to_bytes()
    with pytest.raises(Unprocessable):
        witness().add_checkpoint(WitnessState(), AddCheckpointRequest(0, (), lying), NOW)


def test_signatures_and_origins():
    request = HONEST.request(0, 5)
    with pytest.raises(UnknownLog) as unknown:
        w = Witness(WITNESS_KEY, {OTHER_LOG.name: [OTHER_LOG.verifier()]})
        w.add_checkpoint(WitnessState(), request, NOW)
    assert unknown.value.status == 404
    impostor = Log(entries(5), Ed25519Signer(ORIGIN, bytes(range(9, 41))))
    with pytest.raises(Forbidden) as forbidden:
        witness().add_checkpoint(WitnessState(), impostor.request(0, 5), NOW)
    assert forbidden.value.status == 403
    # A good log signature beside a failing line from the same key name and id: the note is malformed, 403.
    note = parse_note(request.checkpoint)
    [sig] = note.signatures
    tampered = Note(note.text, (sig, Signature(sig.name, sig.key_id, bytes(64)))).to_bytes()
    with pytest.raises(Forbidden):
        witness().add_checkpoint(WitnessState(), AddCheckpointRequest(0, (), tampered), NOW)
    # The other log's key cannot sign for this origin.
    cross = sign_checkpoint(Checkpoint(ORIGIN, 5, HONEST.roots[5]), OTHER_LOG).to_bytes()
    with pytest.raises(Forbidden):
        witness().add_checkpoint(WitnessState(), AddCheckpointRequest(0, (), cross), NOW)


def test_logs_are_tracked_separately():
    other = Log(entries(3, b"-other"), OTHER_LOG)
    state = cosigned_up_to(20)
    state = witness().add_checkpoint(state, other.request(0, 3), NOW).state
    assert state.latest(ORIGIN) == LogRecord(20, HONEST.roots[20])
    assert state.latest(OTHER_LOG.name) == LogRecord(3, other.roots[3])


def test_the_given_state_is_never_changed():
    state = cosigned_up_to(5)
    witness().add_checkpoint(state, HONEST.request(5, 9), NOW)
    assert state.latest(ORIGIN) == LogRecord(5, HONEST.roots[5])


def test_the_state_persists_as_json_and_unreadable_states_are_refused():
    state = cosigned_up_to(20).with_record("x", LogRecord(0, EMPTY_ROOT))
    data = state.to_json()
    assert WitnessState.from_json(data) == state
    assert WitnessState.from_json(WitnessState().to_json()) == WitnessState()
    root = base64.b64encode(EMPTY_ROOT).decode()
    for bad in (
        b"",
        b"{}",
        b'{"version": 2, "logs": {}}',
        b'{"version": 1, "logs": {"o": {"size": "5", "root_hash": "%s"}}}' % root.encode(),
        b'{"version": 1, "logs": {"o": {"size": -1, "root_hash": "%s"}}}' % root.encode(),
        b'{"version": 1, "logs": {"o": {"size": true, "root_hash": "%s"}}}' % root.encode(),
        b'{"version": 1, "logs": {"o": {"size": 5, "root_hash": "AAAA"}}}',
        b'{"version": 1, "logs": {"o": {"size": 5}}}',
        b'{"version": 1, "logs": []}',
    ):
        with pytest.raises(ValueError, match="witness state"):
            WitnessState.from_json(bad)


def test_the_spec_example_request_parses_and_requests_round_trip():
    body = (
        b"old 20852014\n"
        b"PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
        b"jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
        b"5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
        b"/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
        b"\n"
        b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
        b"\xe2\x80\x94 example.com/behind-the-sofa "
        b"Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    )
    request = parse_add_checkpoint_request(body)
    assert request.old_size == 20852014 and len(request.proof) == 4
    assert request.checkpoint.startswith(b"example.com/behind-the-sofa\n")
    assert request.to_bytes() == body
    ours = HONEST.request(5, 33)
    assert parse_add_checkpoint_request(ours.to_bytes()) == ours
    first = HONEST.request(0, 5)
    assert first.to_bytes().startswith(b"old 0\n\n") and parse_add_checkpoint_request(first.to_bytes()) == first


CHECKPOINT = HONEST.checkpoint(5)
HASH_LINE = base64.b64encode(bytes(32))


@pytest.mark.parametrize(
    "body",
    [
        b"old 5\n" + CHECKPOINT,
        b"old 05\n\n" + CHECKPOINT,
        b"old -1\n\n" + CHECKPOINT,
        b"old  5\n\n" + CHECKPOINT,
        b"new 5\n\n" + CHECKPOINT,
        b"old 18446744073709551616\n\n" + CHECKPOINT,
        b"old 5\n" + HASH_LINE[:-4] + b"\n\n" + CHECKPOINT,
        b"old 5\n" + base64.b64encode(bytes(33)) + b"\n\n" + CHECKPOINT,
        b"old 5\nnot base64!\n\n" + CHECKPOINT,
        b"old 5\n" + (HASH_LINE + b"\n") * (MAX_PROOF_LINES + 1) + b"\n" + CHECKPOINT,
        b"old \xd9\xa5\n\n" + CHECKPOINT,
    ],
)
def test_malformed_requests_get_400(body):
    with pytest.raises(BadRequest):
        parse_add_checkpoint_request(body)


@pytest.mark.parametrize(
    "checkpoint",
    [
        b"",
        b"not a note",
        CHECKPOINT[:-1],
        CHECKPOINT.replace(b"\n5\n", b"\nfive\n"),
        b"origin\n5\n\n" + CHECKPOINT[-90:],
    ],
)
def test_a_malformed_checkpoint_gets_400(checkpoint):
    with pytest.raises(BadRequest):
        witness().add_checkpoint(WitnessState(), AddCheckpointRequest(0, (), checkpoint), NOW)


def test_the_log_keeps_only_valid_cosignatures_from_the_witness_it_asked():
    note = parse_note(HONEST.checkpoint(5))
    body = note.text.encode()
    good = WITNESS_KEY.cosign(body, NOW)
    stranger = CosignatureSigner("witness.example/stranger", bytes(range(3, 35))).cosign(body, NOW)
    merged = add_cosignatures(note, (stranger.line() + good.line()).encode(), WITNESS_KEY.verifier())
    assert merged.signatures == (*note.signatures, good)
    forged = Signature(good.name, good.key_id, good.signature[:8] + bytes(64))
    with pytest.raises(BadSignature):
        add_cosignatures(note, forged.line().encode(), WITNESS_KEY.verifier())
    for junk in (b"", b"200 OK\n", stranger.line().encode(), b"\xff\n"):
        with pytest.raises(NoteError):
            add_cosignatures(note, junk, WITNESS_KEY.verifier())


@pytest.mark.parametrize("body", [b"", b"20", b"020\n", b"-1\n", b"20\n\n", b" 20\n"])
def test_a_409_body_is_a_size_and_a_newline(body):
    with pytest.raises(ValueError):
        parse_size_body(body)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=8), st.data())
def test_any_growth_is_cosigned_and_any_fork_after_it_is_refused(steps, data):
    sizes = [0]
    for step in steps:
        sizes.append(sizes[-1] + step)
    log = Log(entries(sizes[-1] + 12))
    state, known = WitnessState(), 0
    for size in sizes[1:]:
        state = witness().add_checkpoint(state, log.request(known, size), NOW).state
        known = size
    assert state.latest(ORIGIN) == LogRecord(known, log.roots[known])
    if known == 0:
        return
    changed = data.draw(st.integers(min_value=0, max_value=known - 1))
    forked_entries = entries(known + 12)
    forked_entries[changed] = b"rewritten"
    forked = Log(forked_entries)
    new = data.draw(st.integers(min_value=known, max_value=known + 12))
    with pytest.raises(Unprocessable):
        witness().add_checkpoint(state, forked.request(known, new), NOW)
