"""What a person writes in an objection (statement, contact, reconsideration statement), sealed at rest: AES-256-GCM
under a key ring (DEBAR_OBJECTION_KEYS, `kid:secret[,kid:secret]`, newest first), so that whoever reads Redis (a
backup, a replica, an operator's MONITOR) reads no one's words or phone number.

A sealed text is `kid:` + base64url(nonce || ciphertext || tag): the key id says which key of the ring opens it, so
the key can rotate (new first, old kept until every record was written again). Each AES key is derived from its
secret with HKDF-SHA256, so a secret may be any 32+ bytes. The nonce is 96 random bits per seal. The associated
data binds a sealed text to its place (the objection id and the field), so a sealed contact cannot be moved into
another objection, or into the statement, without failing to open."""

from __future__ import annotations

import base64
import binascii
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from debar.common.errors import DomainError
from debar.common.identifiers import PseudonymKey, parse_keys

NONCE_BYTES = 12
_KDF_INFO = b"debar objection sealing v1"


class Unreadable(DomainError):
    """Sealed data this process cannot open: under a key its ring does not hold, under another key with the same id,
    or altered. Nothing is returned in its place (fail closed); it reaches the caller as INTERNAL."""


def _aes_key(secret: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KDF_INFO).derive(secret)
    return AESGCM(derived)


class Sealer:
    def __init__(self, ring: list[PseudonymKey]) -> None:
        if not ring:
            raise ValueError("at least one objection key is needed")
        self._current = ring[0].key_id
        self._keys = {key.key_id: _aes_key(key.secret) for key in ring}

    @classmethod
    def from_spec(cls, spec: str) -> Sealer:
        return cls(parse_keys(spec, what="objection"))

    @property
    def current_key_id(self) -> str:
        return self._current

    def seal(self, text: str, record: str, field: str) -> str:
        """`text` sealed under the current key, bound to its record (an objection id) and field."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, text.encode(), _place(record, field))
        return f"{self._current}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, record: str, field: str) -> str:
        key_id, sep, body = sealed.partition(":")
        key = self._keys.get(key_id)
        if not sep or key is None:
            raise Unreadable(
                f"the {field} of {record} is sealed under objection key {key_id!r}, which DEBAR_OBJECTION_KEYS does "
                "not hold (keep every key still in use in the ring)"
            )
        try:
            raw = base64.urlsafe_b64decode(body)
            return key.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _place(record, field)).decode()
        except (InvalidTag, ValueError, binascii.Error):
            raise Unreadable(
                f"the {field} of {record} cannot be opened with objection key {key_id!r}: DEBAR_OBJECTION_KEYS holds "
                "another key under that id, or the record was altered"
            ) from None


def _place(record: str, field: str) -> bytes:
    return f"{record}\0{field}".encode()
