"""Signed bearer tokens for callers whose TLS ends in front of debar (a mesh or a proxy): JWTs signed with EdDSA
(Ed25519, RFC 8037) by the issuer's own private key, checked against the trust file (rpc/trust.py).

A token names its issuer (`iss`), the identity it speaks for (`sub`, which the issuer must be allowed to issue),
the one service it is for (`aud` = `debar.<service>`, a string: a token for the railway service is refused by the
sanction service, and so is one whose `aud` lists several), when it was made and when it ends (`iat`, `exp`: at
most MAX_LIFETIME_S apart, and never further ahead), and an id (`jti`). Times are checked here, on the `now`
given, with LEEWAY_S of clock skew."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from debar.common.callers import CALLER_NAME, is_identity
from debar.common.settings import SettingsError
from debar.rpc.trust import Trust

ALGORITHM = "EdDSA"
MAX_LIFETIME_S = 3600  # a leaked token dies within the hour
LEEWAY_S = 30
_REQUIRED = ["iss", "sub", "aud", "iat", "exp", "jti"]


class InvalidToken(ValueError):
    """The reason is safe to tell the caller."""


def audience_of(service: str) -> str:
    return f"debar.{service}"  # as rpc/callers.py: identify_callers names a server's own


def mint(
    key: Ed25519PrivateKey, issuer: str, subject: str, audience: str, now: float, ttl_s: int = MAX_LIFETIME_S
) -> str:
    if not is_identity(subject):
        raise ValueError(f"subject {subject!r} must match {CALLER_NAME.pattern}")
    if not 0 < ttl_s <= MAX_LIFETIME_S:
        raise ValueError(f"a token lives at most {MAX_LIFETIME_S} s, not {ttl_s}")
    import jwt  # here, not at the top: PyJWT loads every algorithm's backend (~0.3 s), which only token mode needs

    issued = int(now)
    claims = {"iss": issuer, "sub": subject, "aud": audience, "iat": issued, "exp": issued + ttl_s,
              "jti": secrets.token_urlsafe(12)}  # fmt: skip
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def _claims(token: str) -> dict[str, Any]:
    import jwt

    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise InvalidToken("malformed token: expected a JWT (header.claims.signature)") from None


def _second(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidToken(f"token {name} must be an integer of seconds")
    return value


def verify(trust: Trust, token: str, audience: str, now: float) -> str:
    """The identity the token speaks for, or InvalidToken: malformed, from an issuer not trusted or not allowed
    that subject, badly signed, for another audience, expired, or living longer than MAX_LIFETIME_S."""
    import jwt

    issuer_name = _claims(token).get("iss")  # unverified: it only picks the key to verify with
    issuer = trust.issuers.get(issuer_name) if isinstance(issuer_name, str) else None
    if issuer is None:
        named = f" {issuer_name!r}" if is_identity(issuer_name) else ""  # never echo arbitrary input
        raise InvalidToken(f"token issuer{named} is not trusted here")
    try:
        claims = jwt.decode(
            token, issuer.public_key, algorithms=[ALGORITHM], audience=audience, issuer=issuer.name,
            # strict_aud: `aud` is this one service, not a list naming it too (a token for two could be replayed).
            options={"require": _REQUIRED, "verify_exp": False, "verify_iat": False, "verify_nbf": False,
                     "strict_aud": True},
        )  # fmt: skip
    except jwt.InvalidAudienceError:
        raise InvalidToken(f"token is not for this service (audience must be {audience!r})") from None
    except jwt.MissingRequiredClaimError as error:
        raise InvalidToken(f"token lacks the {error.claim!r} claim") from None
    except jwt.InvalidSignatureError:
        raise InvalidToken("token signature does not match its issuer's key") from None
    except jwt.PyJWTError as error:
        raise InvalidToken(f"token refused: {error}") from None
    issued, expires = _second(claims, "iat"), _second(claims, "exp")
    if expires <= now - LEEWAY_S:
        raise InvalidToken("token expired")
    if issued > now + LEEWAY_S:
        raise InvalidToken("token issued in the future")
    if "nbf" in claims and _second(claims, "nbf") > now + LEEWAY_S:  # PyJWT's own check is off (it reads its clock)
        raise InvalidToken("token is not valid yet (nbf)")
    if expires - issued > MAX_LIFETIME_S or expires > now + MAX_LIFETIME_S + LEEWAY_S:
        raise InvalidToken(f"token lives longer than {MAX_LIFETIME_S} s")
    subject = claims["sub"]
    if not is_identity(subject):
        raise InvalidToken(f"token subject must match {CALLER_NAME.pattern}")
    if not issuer.may_issue(subject):
        raise InvalidToken(f"issuer {issuer.name!r} may not issue tokens for {subject!r}")
    return str(subject)


def bearer(metadata: object) -> str | None:
    """The token of an `authorization: Bearer <token>` header in gRPC metadata, if any."""
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer ") :].strip()
    return None


class Signer:
    """A service's own tokens for the calls it makes: one token reused until it nears its end, so that calls do not
    pay a signature each."""

    def __init__(
        self, key: Ed25519PrivateKey, issuer: str, subject: str, audience: str, ttl_s: int = 300,
        clock: Callable[[], float] | None = None,
    ) -> None:  # fmt: skip
        self._key, self._issuer, self._subject, self._audience, self._ttl_s = key, issuer, subject, audience, ttl_s
        self._clock = clock or time.time
        self._token, self._renew_at = "", 0.0

    def token(self) -> str:
        now = self._clock()
        if now >= self._renew_at:
            self._token = mint(self._key, self._issuer, self._subject, self._audience, now, self._ttl_s)
            self._renew_at = now + self._ttl_s / 2
        return self._token


# --- key files -------------------------------------------------------------------------------------------------


def new_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def write_signing_key(path: Path, key: Ed25519PrivateKey) -> None:
    """PEM (PKCS#8), readable by its owner only; the same format as `openssl genpkey -algorithm ed25519`."""
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def load_signing_key(path: str, setting: str = "DEBAR_TOKEN_SIGNING_KEY") -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as error:
        raise SettingsError(f"{setting}: cannot read {path}: {error.strerror}") from None
    except (ValueError, TypeError):
        raise SettingsError(f"{setting}: {path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SettingsError(f"{setting}: {path} is not an Ed25519 key (`debar tokens keypair` makes one)")
    return key
