"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures (signature type 0x01).

Format decisions (the spec's, or the Go sumdb note package's where the spec says nothing):
- A note is UTF-8 text that ends in a newline, then a blank line, then one or more signature lines
  `— <key name> <base64(4-byte key id || signature)>` (U+2014, a space, the name, a space, the signature, a
  newline). No control character but the newline anywhere. The last blank line separates text from signatures.
- Key names are non-empty, contain no Unicode space and no '+'. Key id = SHA-256(name || 0x0A || type byte ||
  public key)[:4], written as 8 lowercase hex digits in key strings.
- Verifier key: `<name>+<hex key id>+<base64(type byte || public key)>`. Signer key, a secret (the Go form; the spec
  defines none): `PRIVATE+KEY+<name>+<hex key id>+<base64(type byte || 32-byte Ed25519 seed)>`.
- Opening a note: a signature line whose name and key id do not both match a given verifier is ignored; one that
  does match must verify or the whole note is refused; a note with no verified signature is refused. Base64 must
  be canonical, so that no changed character decodes to the same bytes and slips through. At most MAX_SIGNATURES
  signature lines and MAX_NOTE_SIZE bytes (the spec asks verifiers to accept at least 16 signatures).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
SIGNER_KEY_PREFIX = "PRIVATE+KEY+"
MAX_SIGNATURES = 100
MAX_NOTE_SIZE = 1 << 20
KEY_ID_SIZE = 4
_ED25519_SIGNATURE_SIZE = 64
_ED25519_KEY_SIZE = 32


class NoteError(ValueError):
    """A note that must not be trusted; the message says why."""


class MalformedNote(NoteError):
    pass


class UnverifiedNote(NoteError):
    """No signature from a known key."""


class BadSignature(NoteError):
    """A signature line from a known key that does not verify."""


class InvalidKey(ValueError):
    """A key string or key name that is not of the documented form."""


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


def check_key_name(name: str) -> str:
    if not name or any(ch.isspace() or ch == "+" or ch < " " for ch in name):
        raise InvalidKey(f"key name {name!r}: must be non-empty, without spaces, '+' or control characters")
    return name


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()[:KEY_ID_SIZE]


def encode_verifier_key(name: str, signature_type: int, public_key: bytes) -> str:
    material = base64.b64encode(bytes([signature_type]) + public_key).decode()
    return f"{check_key_name(name)}+{key_id(name, signature_type, public_key).hex()}+{material}"


def decode_verifier_key(vkey: str, signature_type: int) -> tuple[str, bytes]:
    """The name and 32-byte public key of a verifier key of the given type; checks its key id."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise InvalidKey("verifier key: not of the form <name>+<key id>+<key>")
    return _decode_key_parts(*parts, signature_type=signature_type, what="verifier key", derive_public=False)


def encode_signer_key(name: str, signature_type: int, seed: bytes) -> str:
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    material = base64.b64encode(bytes([signature_type]) + seed).decode()
    return f"{SIGNER_KEY_PREFIX}{check_key_name(name)}+{key_id(name, signature_type, public).hex()}+{material}"


def decode_signer_key(skey: str, signature_type: int) -> tuple[str, bytes]:
    """The name and 32-byte Ed25519 seed of a signer key of the given type; checks its key id."""
    skey = skey.strip()
    if not skey.startswith(SIGNER_KEY_PREFIX):
        raise InvalidKey(f"signer key: does not start with {SIGNER_KEY_PREFIX}")
    parts = skey[len(SIGNER_KEY_PREFIX) :].split("+", 2)
    if len(parts) != 3:
        raise InvalidKey("signer key: not of the form PRIVATE+KEY+<name>+<key id>+<key>")
    return _decode_key_parts(*parts, signature_type=signature_type, what="signer key", derive_public=True)


def _decode_key_parts(
    name: str, hex_id: str, material_b64: str, *, signature_type: int, what: str, derive_public: bool
) -> tuple[str, bytes]:
    check_key_name(name)
    if len(hex_id) != 2 * KEY_ID_SIZE or any(c not in "0123456789abcdef" for c in hex_id):
        raise InvalidKey(f"{what}: key id {hex_id!r} is not 8 lowercase hex digits")
    try:
        material = decode_base64(material_b64)
    except ValueError as e:
        raise InvalidKey(f"{what}: key is not canonical base64") from e
    if len(material) != 1 + _ED25519_KEY_SIZE or material[0] != signature_type:
        raise InvalidKey(f"{what}: not a signature type 0x{signature_type:02x} Ed25519 key")
    key = material[1:]
    public = Ed25519PrivateKey.from_private_bytes(key).public_key().public_bytes_raw() if derive_public else key
    if key_id(name, signature_type, public).hex() != hex_id:
        raise InvalidKey(f"{what}: key id {hex_id} does not match the name and key")
    return name, key


@dataclass(frozen=True)
class Ed25519Verifier:
    name: str
    public_key: bytes
    key_id: bytes = field(init=False)
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        object.__setattr__(self, "key_id", key_id(self.name, ED25519, self.public_key))
        object.__setattr__(self, "_key", load_public_key(self.public_key))

    def verify(self, text: bytes, signature: bytes) -> bool:
        return verify_ed25519(self._key, signature, text)

    def verifier_key(self) -> str:
        return encode_verifier_key(self.name, ED25519, self.public_key)


class Ed25519Signer:
    """Holds a secret; its repr shows only the public side."""

    __slots__ = ("_key", "_name", "_public", "_seed", "key_id")

    def __init__(self, name: str, seed: bytes) -> None:
        check_key_name(name)
        if len(seed) != _ED25519_KEY_SIZE:
            raise InvalidKey("seed: an Ed25519 seed is 32 bytes")
        self._name, self._seed = name, bytes(seed)
        self._key = Ed25519PrivateKey.from_private_bytes(self._seed)
        self._public = self._key.public_key().public_bytes_raw()
        self.key_id = key_id(name, ED25519, self._public)

    @classmethod
    def generate(cls, name: str) -> Ed25519Signer:
        return cls(name, Ed25519PrivateKey.generate().private_bytes_raw())

    @property
    def name(self) -> str:
        return self._name

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, text: bytes) -> bytes:
        return self._key.sign(text)

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self._name, self._public)

    def signer_key(self) -> str:
        return encode_signer_key(self._name, ED25519, self._seed)

    def __repr__(self) -> str:
        return f"Ed25519Signer({self.verifier().verifier_key()!r})"


def parse_verifier_key(vkey: str) -> Ed25519Verifier:
    return Ed25519Verifier(*decode_verifier_key(vkey, ED25519))


def parse_signer_key(skey: str) -> Ed25519Signer:
    return Ed25519Signer(*decode_signer_key(skey, ED25519))


def generate_key(name: str) -> tuple[str, str]:
    """A new key pair as (signer key, verifier key) strings."""
    signer = Ed25519Signer.generate(name)
    return signer.signer_key(), signer.verifier().verifier_key()


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
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"

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


def load_public_key(public_key: bytes) -> Ed25519PublicKey:
    if len(public_key) != _ED25519_KEY_SIZE:
        raise InvalidKey("public key: an Ed25519 public key is 32 bytes")
    try:
        return Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError as e:
        raise InvalidKey("public key: not an Ed25519 public key") from e


def verify_ed25519(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    if len(signature) != _ED25519_SIGNATURE_SIZE:
        return False
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def decode_base64(encoded: str) -> bytes:
    """Standard base64 with padding, and only its canonical spelling."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError("not valid base64") from e
    if base64.b64encode(raw).decode() != encoded:
        raise ValueError("not canonical base64")
    return raw
