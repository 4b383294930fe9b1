"""Base64 as every format here spells it: RFC 4648 standard alphabet with padding, and only the canonical spelling
when reading, so that no changed character can decode to the same bytes (a signed note must not survive an edit)."""

from __future__ import annotations

import base64
import binascii


def encode_base64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def decode_base64(encoded: str) -> bytes:
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError("not valid base64") from e
    if base64.b64encode(raw).decode() != encoded:
        raise ValueError("not canonical base64")
    return raw
