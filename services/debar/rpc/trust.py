"""The token trust file (DEBAR_TOKEN_TRUST_FILE): which issuers a server believes, by their Ed25519 public key,
and which identities each may issue tokens for. An issuer cannot stretch its key beyond its list: a domain
service's key names only that service, a platform's only that platform, the operator's `platform:*`.

    {"issuers": {
       "railway":  {"public_key": "<base64 of the 32-byte Ed25519 public key>", "subjects": ["railway"]},
       "operator": {"public_key": "...", "subjects": ["platform:*"]}}}

Subjects are exact identities or groups (`kind:*`); `local`, the identity of local mode, cannot be issued."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from debar.common.callers import CALLER_NAME, LOCAL, covers, is_identity, is_name_or_group
from debar.common.settings import SettingsError

ED25519_PUBLIC_KEY_BYTES = 32


class TrustError(ValueError):
    """The trust file is wrong; the message names the issuer and the field."""


@dataclass(frozen=True)
class Issuer:
    name: str
    public_key: Ed25519PublicKey
    subjects: tuple[str, ...]  # exact identities and groups

    def may_issue(self, subject: str) -> bool:
        return any(covers(pattern, subject) for pattern in self.subjects)


@dataclass(frozen=True)
class Trust:
    issuers: Mapping[str, Issuer]


def public_key_text(key: Ed25519PublicKey) -> str:
    """How the trust file writes a public key: base64 of its 32 raw bytes."""
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def trust_entry(public_key: Ed25519PublicKey, subjects: list[str]) -> dict[str, object]:
    return {"public_key": public_key_text(public_key), "subjects": subjects}


def _public_key(where: str, text: object) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
    except binascii.Error:
        raw = b""
    if len(raw) != ED25519_PUBLIC_KEY_BYTES:
        raise TrustError(f"{where}.public_key: expected base64 of a {ED25519_PUBLIC_KEY_BYTES}-byte Ed25519 key")
    return Ed25519PublicKey.from_public_bytes(raw)


def _subjects(where: str, subjects: object) -> tuple[str, ...]:
    if not isinstance(subjects, list) or not subjects:
        raise TrustError(f"{where}.subjects: expected a non-empty list of identities or groups (kind:*)")
    for subject in subjects:
        if not is_name_or_group(subject):
            raise TrustError(f"{where}.subjects: {subject!r} is neither an identity nor a group (kind:*)")
        if subject == LOCAL:
            raise TrustError(f"{where}.subjects: {LOCAL!r} is the identity of local mode; no issuer may issue it")
    return tuple(subjects)


def parse_trust(data: object) -> Trust:
    if not isinstance(data, dict) or not isinstance(data.get("issuers"), dict) or set(data) - {"issuers", "_comment"}:
        raise TrustError('expected {"issuers": {"<issuer>": {"public_key": "...", "subjects": [...]}}}')
    issuers = {}
    for name, entry in data["issuers"].items():
        where = f"issuers.{name}"
        if not is_identity(name):
            raise TrustError(f"{where}: an issuer name must match {CALLER_NAME.pattern}")
        if not isinstance(entry, dict) or set(entry) != {"public_key", "subjects"}:
            raise TrustError(f"{where}: expected an object with 'public_key' and 'subjects'")
        issuers[name] = Issuer(name, _public_key(where, entry["public_key"]), _subjects(where, entry["subjects"]))
    return Trust(issuers)


def load_trust(path: str) -> Trust:
    """The trust file at `path`; a missing or bad file stops the start (SettingsError)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_trust(json.load(handle))
    except OSError as error:
        raise SettingsError(f"DEBAR_TOKEN_TRUST_FILE: cannot read {path}: {error.strerror}") from None
    except (ValueError, TrustError) as error:
        raise SettingsError(f"DEBAR_TOKEN_TRUST_FILE {path}: {error}") from None
