"""C2SP signed notes (c2sp.org/signed-note): the format, signing, and opening with the keys one trusts. The keys
themselves (Ed25519, key ids, key strings) are in keys.py; cosignatures in cosignature.py.

Format decisions (the spec's, or the Go sumdb note package's where the spec says nothing):
- A note is UTF-8 text that ends in a newline, then a blank line, then one or more signature lines
  `— <key name> <base64(4-byte key id || signature)>` (U+2014, a space, the name, a space, the signature, a
  newline). No control character but the newline anywhere. The last blank line separates text from signatures.
- Opening a note: a signature line whose name and key id do not both match a given verifier is ignored; one that
  does match must verify or the whole note is refused; a note with no verified signature is refused. A key that
  signs twice counts once. Base64 must be canonical (encoding.py). At most MAX_SIGNATURES signature lines and
  MAX_NOTE_SIZE bytes (the spec asks verifiers to accept at least 16 signatures).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from debar.tlog.encoding import decode_base64, encode_base64
from debar.tlog.keys import KEY_ID_SIZE, InvalidKey, check_key_name

SIGNATURE_PREFIX = "\u2014 "  # em dash, space
MAX_SIGNATURES = 100
MAX_NOTE_SIZE = 1 << 20


class NoteError(ValueError):
    """A note that must not be trusted; the message says why."""


class MalformedNote(NoteError):
    pass


class UnverifiedNote(NoteError):
    """No signature from a known key."""


class BadSignature(NoteError):
    """A signature line from a known key that does not verify."""


class Verifier(Protocol):
    """Checks the signatures of one key: `signature` is what follows the key id in the signature line."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, text: bytes, signature: bytes) -> bool: ...


class Signer(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def sign(self, text: bytes) -> bytes: ...


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.key_id) != KEY_ID_SIZE or not self.signature:
            raise MalformedNote(f"signature by {self.name}: a 4-byte key id and a non-empty signature")

    def line(self) -> str:
        return f"{SIGNATURE_PREFIX}{self.name} {encode_base64(self.key_id + self.signature)}\n"

    @classmethod
    def parse_line(cls, line: str) -> Signature:
        """One signature line, without its newline."""
        if not line.startswith(SIGNATURE_PREFIX):
            raise MalformedNote(f"signature line {line[:40]!r}: does not start with an em dash and a space")
        parts = line[len(SIGNATURE_PREFIX) :].split(" ")
        if len(parts) != 2:
            raise MalformedNote(f"signature line {line[:40]!r}: not '— <name> <signature>'")
        name, encoded = parts
        try:
            check_key_name(name)
            raw = decode_base64(encoded)
        except ValueError as e:
            raise MalformedNote(f"signature line {line[:40]!r}: {e}") from e
        if len(raw) <= KEY_ID_SIZE:
            raise MalformedNote(f"signature by {name}: too short to hold a key id and a signature")
        return cls(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])


def check_text(text: str) -> str:
    """A note's text: ends in a newline, no control character but newlines, encodable as UTF-8."""
    if not text.endswith("\n"):
        raise MalformedNote("note text: does not end in a newline")
    if any(ch < " " and ch != "\n" for ch in text):
        raise MalformedNote("note text: has a control character other than newline")
    try:
        text.encode()
    except UnicodeEncodeError as e:
        raise MalformedNote("note text: not encodable as UTF-8") from e
    return text


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[Signature, ...] = ()

    def __post_init__(self) -> None:
        check_text(self.text)

    def with_signatures(self, *signatures: Signature) -> Note:
        """This note with more signature lines (a line already present is not repeated)."""
        merged = dict.fromkeys(self.signatures)
        merged.update(dict.fromkeys(signatures))
        return Note(self.text, tuple(merged))

    def to_bytes(self) -> bytes:
        if not self.signatures:
            raise MalformedNote("a note needs at least one signature")
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()


def sign_note(text: str, *signers: Signer) -> Note:
    body = check_text(text).encode()
    return Note(text, tuple(Signature(s.name, s.key_id, s.sign(body)) for s in signers))


def parse_note(data: bytes, *, max_size: int = MAX_NOTE_SIZE) -> Note:
    """The note's text and signature lines, structurally checked; nothing is verified yet."""
    if len(data) > max_size:
        raise MalformedNote(f"note: larger than {max_size} bytes")
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedNote("note: not UTF-8") from e
    if any(ch < " " and ch != "\n" for ch in decoded):
        raise MalformedNote("note: has a control character other than newline")
    split = decoded.rfind("\n\n")
    if split < 0:
        raise MalformedNote("note: no blank line before the signatures")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    return Note(text, parse_signature_lines(block))


def parse_signature_lines(block: str) -> tuple[Signature, ...]:
    """One or more newline-terminated signature lines (a note's tail, or a witness's response)."""
    if not block or not block.endswith("\n"):
        raise MalformedNote("note: the signature lines must be there and end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote(f"note: more than {MAX_SIGNATURES} signatures")
    return tuple(Signature.parse_line(line) for line in lines)


@dataclass(frozen=True)
class OpenedNote:
    """A note with at least one verified signature. `verified` holds one signature per known key that signed."""

    note: Note
    verified: tuple[Signature, ...]

    @property
    def text(self) -> str:
        return self.note.text

    def signed_by(self, verifier: Verifier) -> bool:
        return any(s.name == verifier.name and s.key_id == verifier.key_id for s in self.verified)


def open_note(data: bytes, verifiers: Iterable[Verifier], *, max_size: int = MAX_NOTE_SIZE) -> OpenedNote:
    return verify_note(parse_note(data, max_size=max_size), verifiers)


def verify_note(note: Note, verifiers: Iterable[Verifier]) -> OpenedNote:
    known: dict[tuple[str, bytes], Verifier] = {}
    for v in verifiers:
        existing = known.setdefault((v.name, v.key_id), v)
        if existing is not v and existing != v:
            raise InvalidKey(f"two verifiers share the name {v.name} and key id {v.key_id.hex()}")
    body = note.text.encode()
    verified: dict[tuple[str, bytes], Signature] = {}
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if not verifier.verify(body, sig.signature):
            raise BadSignature(f"the signature by {sig.name} (key {sig.key_id.hex()}) does not verify")
        verified.setdefault((sig.name, sig.key_id), sig)
    if not verified:
        raise UnverifiedNote("no signature from a known key")
    return OpenedNote(note, tuple(verified.values()))
