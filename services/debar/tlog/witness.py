"""A witness's decision on c2sp.org/tlog-witness add-checkpoint, and the log's side of the exchange, as pure
logic: no server, no storage, no clock (the caller passes `now`).

Format decisions (the spec's):
- Request body: `old <size>\\n`, at most 63 lines of base64 consistency-proof hashes, an empty line, then the
  signed checkpoint. Success answers the cosignature line(s); a 409 answers the size the witness last cosigned,
  in decimal and a newline, as `text/x.tlog.size`.
- Refusals carry the spec's HTTP status: 400 a malformed request, or an old size above the checkpoint's; 403 no
  valid signature from the log's key, or a failing one; 404 an origin the witness does not follow; 409 an old
  size that is not the size it last cosigned (0 when it never did); 422 a consistency proof that fails, a size-0
  checkpoint without the empty root, a non-empty proof from size 0, the same size with another root.
- The witness checks the proof against the root *it* stored, never one the client sends, so a log that forked
  (rewrote entries the witness already cosigned over) has no way to a cosignature.
- State (WitnessState): per origin, the size and root of the last checkpoint cosigned, as JSON. The caller must
  make check-and-store atomic: hold one lock per witness (or compare-and-set the stored state) around
  add_checkpoint and the write of `Cosigned.state`, and answer only after that write is durable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from debar.tlog.checkpoint import MAX_SIZE, Checkpoint, CheckpointError, parse_checkpoint
from debar.tlog.cosignature import CosignatureSigner
from debar.tlog.encoding import decode_base64, encode_base64
from debar.tlog.merkle import EMPTY_ROOT, HASH_SIZE
from debar.tlog.note import (
    Note,
    NoteError,
    Signature,
    Verifier,
    parse_note,
    parse_signature_lines,
    verify_note,
)
from debar.tlog.proofs import InvalidProof, verify_consistency

MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"
_OLD_LINE = re.compile(r"old (0|[1-9][0-9]*)")
_SIZE_BODY = re.compile(rb"(0|[1-9][0-9]*)\n")
_STATE_VERSION = 1


class Refusal(Exception):
    """The witness will not cosign; `status` is the HTTP status the spec gives this case."""

    status: ClassVar[int]

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(Refusal):
    status = 400


class Forbidden(Refusal):
    status = 403


class UnknownLog(Refusal):
    status = 404


class Conflict(Refusal):
    status = 409

    def __init__(self, known_size: int) -> None:
        super().__init__(f"the last checkpoint cosigned for this log has size {known_size}")
        self.known_size = known_size

    def body(self) -> bytes:
        return b"%d\n" % self.known_size


class Unprocessable(Refusal):
    status = 422


@dataclass(frozen=True)
class LogRecord:
    """What a witness remembers of one log: the last checkpoint it cosigned."""

    size: int
    root_hash: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.size <= MAX_SIZE or len(self.root_hash) != HASH_SIZE:
            raise ValueError("log record: a size in 0..2**64-1 and a 32-byte root hash")


class WitnessState:
    """Immutable: add_checkpoint returns the next state, which the caller persists before answering."""

    __slots__ = ("_records",)

    def __init__(self, records: Mapping[str, LogRecord] | None = None) -> None:
        self._records = MappingProxyType(dict(records or {}))

    @property
    def records(self) -> Mapping[str, LogRecord]:
        return self._records

    def latest(self, origin: str) -> LogRecord | None:
        return self._records.get(origin)

    def with_record(self, origin: str, record: LogRecord) -> WitnessState:
        return WitnessState({**self._records, origin: record})

    def to_json(self) -> bytes:
        logs = {o: {"size": r.size, "root_hash": encode_base64(r.root_hash)} for o, r in self._records.items()}
        return json.dumps({"version": _STATE_VERSION, "logs": logs}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> WitnessState:
        try:
            doc = json.loads(data)
            if doc["version"] != _STATE_VERSION:
                raise ValueError(f"version {doc['version']!r}")
            records = {}
            for origin, r in doc["logs"].items():
                if not isinstance(origin, str) or type(r["size"]) is not int:
                    raise ValueError(f"log {origin!r}: size is not an integer")
                records[origin] = LogRecord(r["size"], decode_base64(r["root_hash"]))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"witness state: unreadable ({e})") from e
        return cls(records)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WitnessState) and dict(self._records) == dict(other._records)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._records.items())))

    def __repr__(self) -> str:
        return f"WitnessState({dict(self._records)!r})"


@dataclass(frozen=True)
class AddCheckpointRequest:
    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: bytes

    def to_bytes(self) -> bytes:
        lines = [f"old {self.old_size}\n", *(encode_base64(h) + "\n" for h in self.proof), "\n"]
        return "".join(lines).encode() + self.checkpoint


def parse_add_checkpoint_request(body: bytes) -> AddCheckpointRequest:
    end = body.find(b"\n\n")
    if end < 0:
        raise BadRequest("request: no empty line before the checkpoint")
    try:
        header = body[: end + 1].decode("ascii")
    except UnicodeDecodeError as e:
        raise BadRequest("request: the old size and proof lines are not ASCII") from e
    old_line, *proof_lines = header[:-1].split("\n")
    matched = _OLD_LINE.fullmatch(old_line)
    if not matched or int(matched[1]) > MAX_SIZE:
        raise BadRequest("request: the first line is not 'old <size>'")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise BadRequest(f"request: more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for i, line in enumerate(proof_lines):
        try:
            h = decode_base64(line)
        except ValueError as e:
            raise BadRequest(f"request: proof line {i + 1} is not base64") from e
        if len(h) != HASH_SIZE:
            raise BadRequest(f"request: proof line {i + 1} is not a 32-byte hash")
        proof.append(h)
    return AddCheckpointRequest(int(matched[1]), tuple(proof), body[end + 2 :])


@dataclass(frozen=True)
class Cosigned:
    checkpoint: Checkpoint
    cosignature: Signature
    # The next state, to persist before answering.
    state: WitnessState
    # The submitted note with the cosignature added: what a witness serves to monitors for this log.
    note: Note

    def response_body(self) -> bytes:
        return self.cosignature.line().encode()


class Witness:
    """A witness key and the logs it follows (origin -> the log's verifier keys)."""

    def __init__(self, cosigner: CosignatureSigner, logs: Mapping[str, Sequence[Verifier]]) -> None:
        self._cosigner = cosigner
        self._logs = {origin: tuple(keys) for origin, keys in logs.items()}

    @property
    def cosigner(self) -> CosignatureSigner:
        return self._cosigner

    def add_checkpoint(self, state: WitnessState, request: AddCheckpointRequest, now: int) -> Cosigned:
        note, checkpoint = _read_checkpoint(request.checkpoint)
        log_keys = self._logs.get(checkpoint.origin)
        if log_keys is None:
            raise UnknownLog(f"this witness does not follow the log {checkpoint.origin!r}")
        try:
            verify_note(note, log_keys)
        except NoteError as e:
            raise Forbidden(f"the checkpoint is not validly signed by the log: {e}") from e
        if request.old_size > checkpoint.size:
            raise BadRequest(f"old size {request.old_size} is above the checkpoint's size {checkpoint.size}")
        known = state.latest(checkpoint.origin) or LogRecord(0, EMPTY_ROOT)
        if request.old_size != known.size:
            raise Conflict(known.size)
        try:
            verify_consistency(known.size, checkpoint.size, known.root_hash, checkpoint.root_hash, request.proof)
        except InvalidProof as e:
            raise Unprocessable(f"not consistent with the checkpoint of size {known.size} cosigned before: {e}") from e
        cosignature = self._cosigner.cosign(note.text.encode(), now)
        return Cosigned(
            checkpoint=checkpoint,
            cosignature=cosignature,
            state=state.with_record(checkpoint.origin, LogRecord(checkpoint.size, checkpoint.root_hash)),
            note=note.with_signatures(cosignature),
        )


def _read_checkpoint(data: bytes) -> tuple[Note, Checkpoint]:
    try:
        note = parse_note(data)
        return note, parse_checkpoint(note.text)
    except (NoteError, CheckpointError) as e:
        raise BadRequest(f"checkpoint: {e}") from e


# The log's side: what an integrator does with a witness's answers.


def parse_size_body(body: bytes) -> int:
    """The size in a 409 answer."""
    matched = _SIZE_BODY.fullmatch(body)
    if not matched or int(matched[1]) > MAX_SIZE:
        raise ValueError("a 409 body is a decimal size and a newline")
    return int(matched[1])


def add_cosignatures(note: Note, response: bytes, witness: Verifier) -> Note:
    """The note with the witness's cosignature from its 200 answer, verified first. Lines from other keys in the
    answer are dropped; an answer with no valid cosignature from this witness is an error."""
    try:
        lines = parse_signature_lines(response.decode("utf-8"))
    except (UnicodeDecodeError, NoteError) as e:
        raise NoteError(f"witness {witness.name}: the answer is not signature lines") from e
    mine = [s for s in lines if s.name == witness.name and s.key_id == witness.key_id]
    if not mine:
        raise NoteError(f"witness {witness.name}: the answer holds no cosignature from its key")
    opened = verify_note(Note(note.text, tuple(mine)), [witness])
    return note.with_signatures(*opened.verified)
