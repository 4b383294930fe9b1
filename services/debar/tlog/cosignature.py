"""C2SP checkpoint cosignatures (c2sp.org/tlog-cosignature), the Ed25519 kind: signature type 0x04.

Format decisions (the spec's):
- Key id = SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4]; the verifier key is the signed-note form with
  type byte 0x04: `<name>+<hex key id>+<base64(0x04 || public key)>`. The signer key uses the note signer form
  with type byte 0x04 (our choice; the spec defines none).
- A cosignature is a note signature line whose bytes after the key id are an 8-byte big-endian POSIX timestamp
  (at most 2**63 - 1) followed by the 64-byte Ed25519 signature of
  `cosignature/v1\\ntime <timestamp>\\n` || the checkpoint's note text (its body, final newline included).
- The message does not name the cosigner, so one key must never serve two cosigner names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from debar.tlog.keys import (
    SeededSigner,
    check_key_name,
    decode_signer_key,
    decode_verifier_key,
    encode_verifier_key,
    key_id,
    load_public_key,
    verify_ed25519,
)
from debar.tlog.note import MalformedNote, Signature

COSIGNATURE_V1 = 0x04
HEADER = b"cosignature/v1\n"
MAX_TIMESTAMP = (1 << 63) - 1
_TIMESTAMP_SIZE = 8
_SIGNATURE_SIZE = 64


def cosigned_message(text: bytes, timestamp: int) -> bytes:
    """What the cosigner signs: the header line, the time line, then the checkpoint's note text."""
    _check_timestamp(timestamp)
    return HEADER + b"time %d\n" % timestamp + text


def cosignature_timestamp(signature: Signature) -> int:
    """The time a cosignature line says it was made (whoever made it: check it first)."""
    if len(signature.signature) != _TIMESTAMP_SIZE + _SIGNATURE_SIZE:
        raise MalformedNote(f"signature by {signature.name}: not a timestamped Ed25519 cosignature")
    timestamp = int.from_bytes(signature.signature[:_TIMESTAMP_SIZE], "big")
    if timestamp > MAX_TIMESTAMP:
        raise MalformedNote(f"signature by {signature.name}: timestamp beyond 2**63 - 1")
    return timestamp


@dataclass(frozen=True)
class CosignatureVerifier:
    """A note verifier (note.Verifier) for one witness's cosignatures."""

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_key_name(self.name)
        object.__setattr__(self, "_key", load_public_key(self.public_key))
        object.__setattr__(self, "key_id", key_id(self.name, COSIGNATURE_V1, self.public_key))

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != _TIMESTAMP_SIZE + _SIGNATURE_SIZE:
            return False
        timestamp = int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        return verify_ed25519(self._key, signature[_TIMESTAMP_SIZE:], cosigned_message(text, timestamp))

    def verifier_key(self) -> str:
        return encode_verifier_key(self.name, COSIGNATURE_V1, self.public_key)


class CosignatureSigner(SeededSigner):
    """A witness's key: cosigns checkpoints with a timestamp (cosignature/v1)."""

    __slots__ = ()
    ALGORITHM = COSIGNATURE_V1

    def cosign(self, text: bytes, timestamp: int) -> Signature:
        """The cosignature line over a checkpoint's note text, made at `timestamp` (POSIX seconds, > 0)."""
        if timestamp <= 0:
            raise ValueError("timestamp: a cosignature's time must be after the epoch")
        signed = self._key.sign(cosigned_message(text, timestamp))
        return Signature(self._name, self.key_id, timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + signed)

    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self._name, self._public)


def parse_cosigner_key(vkey: str) -> CosignatureVerifier:
    return CosignatureVerifier(*decode_verifier_key(vkey, COSIGNATURE_V1))


def parse_cosigner_signer_key(skey: str) -> CosignatureSigner:
    return CosignatureSigner(*decode_signer_key(skey, COSIGNATURE_V1))


def generate_cosigner_key(name: str) -> tuple[str, str]:
    """A new witness key pair as (signer key, verifier key) strings."""
    signer = CosignatureSigner.generate(name)
    return signer.signer_key(), signer.verifier().verifier_key()


def _check_timestamp(timestamp: int) -> None:
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"timestamp: {timestamp} is outside 0..2**63-1")
