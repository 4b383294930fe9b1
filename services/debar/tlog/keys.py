"""Ed25519 keys for signed notes: key ids, the key strings operators configure, signers and verifiers.

Format decisions (c2sp.org/signed-note's, and the Go sumdb note package's where the spec says nothing):
- Key names are non-empty and contain no Unicode space, no '+' and no control character.
- Key id = SHA-256(name || 0x0A || signature type byte || public key)[:4], written as 8 lowercase hex digits.
- Verifier key: `<name>+<hex key id>+<base64(type byte || public key)>`. Signer key, a secret (the Go form; the spec
  defines none): `PRIVATE+KEY+<name>+<hex key id>+<base64(type byte || 32-byte Ed25519 seed)>`. Surrounding
  whitespace (a key file's final newline) is ignored; anything else off the form is refused.
- Type 0x01 is a plain Ed25519 note signature (here); 0x04, a timestamped cosignature, is in cosignature.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from debar.tlog.encoding import decode_base64, encode_base64

ED25519 = 0x01
SIGNER_KEY_PREFIX = "PRIVATE+KEY+"
KEY_ID_SIZE = 4
# An Ed25519 seed and public key are both 32 bytes.
ED25519_KEY_SIZE = 32
_SIGNATURE_SIZE = 64


class InvalidKey(ValueError):
    """A key string or key name that is not of the documented form."""


def check_key_name(name: str) -> str:
    if not name or any(ch.isspace() or ch == "+" or ch < " " for ch in name):
        raise InvalidKey(f"key name {name!r}: must be non-empty, without spaces, '+' or control characters")
    return name


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()[:KEY_ID_SIZE]


def encode_verifier_key(name: str, signature_type: int, public_key: bytes) -> str:
    material = encode_base64(bytes([signature_type]) + public_key)
    return f"{check_key_name(name)}+{key_id(name, signature_type, public_key).hex()}+{material}"


def decode_verifier_key(vkey: str, signature_type: int) -> tuple[str, bytes]:
    """The name and 32-byte public key of a verifier key of the given type; checks its key id."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise InvalidKey("verifier key: not of the form <name>+<key id>+<key>")
    return _decode_key_parts(*parts, signature_type=signature_type, what="verifier key", derive_public=False)


def encode_signer_key(name: str, signature_type: int, seed: bytes) -> str:
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    material = encode_base64(bytes([signature_type]) + seed)
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
    if len(material) != 1 + ED25519_KEY_SIZE or material[0] != signature_type:
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


class SeededSigner:
    """An Ed25519 key held as its seed, for the signature type ALGORITHM (a subclass says which and what it
    signs). Holds a secret; its repr shows only the public side."""

    __slots__ = ("_key", "_name", "_public", "_seed", "key_id")
    ALGORITHM = ED25519

    def __init__(self, name: str, seed: bytes) -> None:
        check_key_name(name)
        if len(seed) != ED25519_KEY_SIZE:
            raise InvalidKey("seed: an Ed25519 seed is 32 bytes")
        self._name, self._seed = name, bytes(seed)
        self._key = Ed25519PrivateKey.from_private_bytes(self._seed)
        self._public = self._key.public_key().public_bytes_raw()
        self.key_id = key_id(name, self.ALGORITHM, self._public)

    @classmethod
    def generate(cls, name: str) -> Self:
        return cls(name, Ed25519PrivateKey.generate().private_bytes_raw())

    @property
    def name(self) -> str:
        return self._name

    @property
    def public_key(self) -> bytes:
        return self._public

    def signer_key(self) -> str:
        return encode_signer_key(self._name, self.ALGORITHM, self._seed)

    def __repr__(self) -> str:
        vkey = encode_verifier_key(self._name, self.ALGORITHM, self._public)
        return f"{type(self).__name__}({vkey!r})"


class Ed25519Signer(SeededSigner):
    """A log's key: signs checkpoint notes."""

    __slots__ = ()

    def sign(self, text: bytes) -> bytes:
        return self._key.sign(text)

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self._name, self._public)


def parse_verifier_key(vkey: str) -> Ed25519Verifier:
    return Ed25519Verifier(*decode_verifier_key(vkey, ED25519))


def parse_signer_key(skey: str) -> Ed25519Signer:
    return Ed25519Signer(*decode_signer_key(skey, ED25519))


def generate_key(name: str) -> tuple[str, str]:
    """A new key pair as (signer key, verifier key) strings."""
    signer = Ed25519Signer.generate(name)
    return signer.signer_key(), signer.verifier().verifier_key()


def load_public_key(public_key: bytes) -> Ed25519PublicKey:
    if len(public_key) != ED25519_KEY_SIZE:
        raise InvalidKey("public key: an Ed25519 public key is 32 bytes")
    try:
        return Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError as e:
        raise InvalidKey("public key: not an Ed25519 public key") from e


def verify_ed25519(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    if len(signature) != _SIGNATURE_SIZE:
        return False
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
