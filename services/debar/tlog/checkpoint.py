"""C2SP checkpoints (c2sp.org/tlog-checkpoint): the tree head a log signs, as the text of a signed note.

Format decisions:
- Body: the origin line; the tree size in ASCII decimal with no leading zero (`0` for the empty tree); the
  standard, padded, canonical base64 of the 32-byte RFC 6962 root; then optional extension lines. Every line is
  non-empty and ends in a newline.
- Parsing is strict: at least three lines, no empty line, sizes 0..2**64-1, exactly 32 root bytes. The origin is
  only required to be non-empty (the spec forbids assuming more); open_checkpoint requires it to be the origin
  the caller expects, by default the log key's name (the spec's SHOULD: the log's key name matches the origin).
- Whether a size-0 checkpoint carries the empty tree's root is the witness's check (it answers 422), not the
  parser's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from debar.tlog.encoding import decode_base64, encode_base64
from debar.tlog.merkle import HASH_SIZE
from debar.tlog.note import (
    Note,
    Signature,
    Signer,
    UnverifiedNote,
    Verifier,
    parse_note,
    sign_note,
    verify_note,
)

MAX_SIZE = (1 << 64) - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(ValueError):
    """A note whose text is not a well-formed checkpoint, or not of the expected log."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for what, line in [("origin", self.origin)] + [(f"extension {i}", e) for i, e in enumerate(self.extensions)]:
            if not line or any(ch < " " for ch in line):
                raise CheckpointError(f"checkpoint {what}: must be a non-empty line without control characters")
        if not 0 <= self.size <= MAX_SIZE:
            raise CheckpointError(f"checkpoint size: {self.size} is outside 0..2**64-1")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointError("checkpoint root hash: not 32 bytes")

    def body(self) -> str:
        root = encode_base64(self.root_hash)
        return "".join(f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions))


def parse_checkpoint(text: str) -> Checkpoint:
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint: does not end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint: fewer than three lines (origin, size, root hash)")
    origin, size, root, *extensions = lines
    if not _DECIMAL.fullmatch(size):
        raise CheckpointError(f"checkpoint size: {size[:30]!r} is not a decimal number without leading zeros")
    try:
        root_hash = decode_base64(root)
    except ValueError as e:
        raise CheckpointError(f"checkpoint root hash: {e}") from e
    return Checkpoint(origin, int(size), root_hash, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> Note:
    return sign_note(checkpoint.body(), signer)


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint whose log signature (and the witnesses' asked for) verified. `note` keeps every signature line
    as received, unknown ones included."""

    checkpoint: Checkpoint
    note: Note
    verified: tuple[Signature, ...]

    def to_bytes(self) -> bytes:
        return self.note.to_bytes()


def open_checkpoint(
    data: bytes,
    log: Verifier,
    *,
    origin: str | None = None,
    witnesses: Sequence[Verifier] = (),
    quorum: int | None = None,
) -> SignedCheckpoint:
    """Verifies a signed checkpoint: the log's signature, and cosignatures from at least `quorum` of `witnesses`
    (all of them by default). Any signature line from one of these keys that fails refuses the whole note."""
    opened = verify_note(parse_note(data), [log, *witnesses])
    if not opened.signed_by(log):
        raise UnverifiedNote(f"not signed by the log key {log.name}")
    needed = len(witnesses) if quorum is None else quorum
    missing = [w.name for w in witnesses if not opened.signed_by(w)]
    if len(witnesses) - len(missing) < needed:
        cosigned = len(witnesses) - len(missing)
        raise UnverifiedNote(f"cosigned by {cosigned} of the {needed} witnesses needed; not by {', '.join(missing)}")
    checkpoint = parse_checkpoint(opened.text)
    expected = log.name if origin is None else origin
    if checkpoint.origin != expected:
        raise CheckpointError(f"checkpoint origin {checkpoint.origin!r} is not the expected {expected!r}")
    return SignedCheckpoint(checkpoint, opened.note, opened.verified)
