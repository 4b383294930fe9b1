"""Signed bearer tokens for callers whose TLS ends in front of debar (a mesh or a proxy): `<caller>.<expiry>.<sig>`,
sig = base64url(HMAC-SHA256(key, "<caller>.<expiry>")), expiry in epoch seconds. Pure: the time is a parameter.

Everyone holding the key can mint a token for any caller: the key is a secret of debar and its own callers."""

from __future__ import annotations

import base64
import hashlib
import hmac

from debar.common.callers import CALLER_NAME

MAX_LIFETIME_S = 24 * 3600  # a token further in the future than this is refused: leaked tokens must die soon


class InvalidToken(ValueError):
    """The reason is safe to tell the caller."""


def _signature(key: str, payload: str) -> str:
    digest = hmac.new(key.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def mint(key: str, caller: str, expires_at: int) -> str:
    if not CALLER_NAME.match(caller):
        raise ValueError(f"caller name {caller!r} must match {CALLER_NAME.pattern}")
    payload = f"{caller}.{expires_at}"
    return f"{payload}.{_signature(key, payload)}"


def verify(key: str, token: str, now: float) -> str:
    """The caller the token names, or InvalidToken: malformed, bad signature, expired, or too far ahead."""
    parts = token.split(".")
    if len(parts) != 3 or not CALLER_NAME.match(parts[0]) or not parts[1].isdigit():
        raise InvalidToken("malformed token: expected <caller>.<expiry>.<signature>")
    caller, expiry, signature = parts
    if not hmac.compare_digest(signature, _signature(key, f"{caller}.{expiry}")):
        raise InvalidToken("token signature does not match")
    if int(expiry) <= now:
        raise InvalidToken("token expired")
    if int(expiry) > now + MAX_LIFETIME_S:
        raise InvalidToken(f"token expiry is more than {MAX_LIFETIME_S} s ahead")
    return caller


def bearer(metadata: object) -> str | None:
    """The token of an `authorization: Bearer <token>` header in gRPC metadata, if any."""
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer ") :].strip()
    return None
