"""Subject identifiers: validation, pseudonymisation and masking.

Only an exact, checksum-valid identifier may ever match a restriction, and a clear identifier is never stored:
records are keyed by a keyed hash (HMAC-SHA256) tagged with the id of the key that made it, so the key can rotate.
"""

from __future__ import annotations

import base64
import hmac
import time
from dataclasses import dataclass, field
from datetime import date
from enum import Enum

from stdnum.cn import ric, uscc
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)


class IdKind(Enum):
    RIC = "RIC"
    USCC = "USCC"

    # Members are singletons: identity hashing (in C) matches their equality; Enum's own __hash__ is Python code
    # that hashes the name, a measurable part of a batch's cache and counter look-ups.
    __hash__ = object.__hash__


class InvalidIdentifier(ValueError):
    """An identifier that must not be matched; `reason` is safe to show to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SubjectId:
    kind: IdKind
    number: str  # compact, upper-case, checksum-valid

    def __repr__(self) -> str:  # never print a clear identifier by accident
        return f"SubjectId({self.kind.value}, {mask_identifier(self.number)})"


def validate_identifier(kind: IdKind, raw: str) -> SubjectId:
    """Returns the compact identifier, or raises InvalidIdentifier saying why (length, format, checksum, date).
    An RIC whose region code is not in the bundled table is accepted: the table lags behind new regions."""
    if not raw:
        raise InvalidIdentifier("is empty")
    fast = _fast_ric(raw) if kind is IdKind.RIC else _fast_uscc(raw)
    if fast is not None:
        return SubjectId(kind, fast)
    try:
        number = _validate_ric(raw) if kind is IdKind.RIC else uscc.validate(raw)
    except ValidationError as error:
        raise InvalidIdentifier(f"is not a valid {kind.value}: {_REASONS.get(type(error), str(error))}") from None
    return SubjectId(kind, number.upper())


_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # python-stdnum's, in its order
_USCC_VALUES = {c: i for i, c in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def _fast_ric(raw: str) -> str | None:
    """The common case (18 ASCII characters, nothing to compact) checked directly: the compact number when it is
    valid, None when the full path must decide (and say why). Accepts exactly what `_validate_ric` accepts."""
    if len(raw) != 18 or not raw.isascii() or not raw.isalnum():
        return None
    number = raw.upper()
    body = number[:-1]
    if not body.isdigit():
        return None
    checksum = (1 - 2 * int(body, 13)) % 11
    if number[-1] != ("X" if checksum == 10 else str(checksum)):
        return None
    try:
        date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        return None
    if body[6:14] > _latest_birth_date():
        return None
    return number


_latest: tuple[int, str] = (-1, "")


def _latest_birth_date() -> str:
    """Today as YYYYMMDD in the earliest-rising time zone (UTC+14): no one is born after it. Worked out once a
    minute: every check asks."""
    global _latest
    minute = int(time.time() // 60)
    if _latest[0] != minute:
        _latest = (minute, time.strftime("%Y%m%d", time.gmtime(minute * 60 + 14 * 3600)))
    return _latest[1]


def ric_birth_date(number: str) -> date:
    """The birth date a valid (compact) RIC carries."""
    return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def _fast_uscc(raw: str) -> str | None:
    """As `_fast_ric`, for a USCC: the number when python-stdnum's `uscc.validate` would accept it unchanged."""
    if len(raw) != 18 or not raw.isascii() or not raw.isalnum():
        return None
    number = raw.upper()
    if not number[:8].isdigit():
        return None
    values = _USCC_VALUES
    total = 0
    for char, weight in zip(number[:-1], _USCC_WEIGHTS, strict=True):
        value = values.get(char)
        if value is None:
            return None
        total += value * weight
    if number[-1] != _USCC_ALPHABET[(31 - total) % 31] or number[-1] not in values:
        return None
    return number


def _validate_ric(raw: str) -> str:
    number = raw.upper() if len(raw) == 18 and raw.isalnum() else ric.compact(raw)  # compact: the slow path
    if len(number) != 18:
        raise InvalidLength()
    if not number[:-1].isdigit() or not number[:-1].isascii():
        raise InvalidFormat()
    if number[-1].upper() != ric.calc_check_digit(number):
        raise InvalidChecksum()
    try:
        ric.get_birth_date(number)
    except ValidationError:
        raise InvalidComponent("the birth date is not a real date") from None
    if number[6:14] > _latest_birth_date():
        raise InvalidComponent("the birth date is in the future")
    return number


_REASONS = {
    InvalidLength: "it must have 18 characters",
    InvalidFormat: "it has characters that are not allowed",
    InvalidChecksum: "the check character does not match",
}


def mask_identifier(number: str) -> str:
    """Keeps the first 3 and the last character: enough for a person to recognise their own number."""
    if len(number) <= 4:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 4) + number[-1]


def mask_name(name: str, *, organisation: bool) -> str:
    """Masks a display name: a person keeps the family name's first character, an organisation its first
    two and last two characters (enough to tell which company a refusal is about, too little to look one up)."""
    name = name.strip()
    if not name:
        return ""
    if organisation:
        if len(name) <= 4:
            return name[0] + "*" * (len(name) - 1)
        return name[:2] + "*" * (len(name) - 4) + name[-2:]
    return name[0] + "*" * max(len(name) - 1, 1)


MIN_KEY_BYTES = 32  # 256 bits: a keyed hash is no stronger than its key, and a short one can be guessed


@dataclass(frozen=True, slots=True)
class PseudonymKey:
    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:  # names the key, never its secret
            raise ValueError(f"key {self.key_id!r} is {len(self.secret)} bytes: at least {MIN_KEY_BYTES} are needed")


class Pseudonymiser:
    """Keyed hash of identifiers, over a ring of keys (first = current, last = the first ever used).

    The pseudonym under the oldest key is HMAC(key, "TYPE:number"); under each newer key it is the HMAC of the
    previous pseudonym. So a rotation needs no clear identifier: `debar rekey` turns every stored pseudonym into
    the current one with `forward`, and a leaked old key alone no longer links stored data to anyone. The ring
    therefore keeps every key ever used (all are needed to compute the current pseudonym from an identifier).

    `staged`: the id of the newest key when it is only being introduced. Replicas roll over to a new ring one by
    one; while some write under the old key and others already under the new one, each must read under both. A
    staged key is read but not written: the current key is the one after it. A rotation is then two restarts,
    staged first, then current, and only after the second has reached every replica may `debar rekey` run."""

    DIGEST_BYTES = 12  # 96 bits: no collisions at national scale; 16 base64url characters, short keys in Redis

    def __init__(self, keys: list[PseudonymKey], staged: str = "") -> None:
        if not keys:
            raise ValueError("at least one pseudonymisation key is needed")
        if len({k.key_id for k in keys}) != len(keys):
            raise ValueError("pseudonymisation key ids must be distinct")
        if staged and (staged != keys[0].key_id or len(keys) < 2):
            raise ValueError(f"the staged key {staged!r} must be the newest of a ring of two or more keys")
        self._keys = keys
        self._oldest_first = list(reversed(keys))
        self._position = {k.key_id: i for i, k in enumerate(self._oldest_first)}
        self._current = 1 if staged else 0  # index in `keys` (newest first) of the key writes use
        self.staged_key_id = staged

    @property
    def current_key_id(self) -> str:
        return self._keys[self._current].key_id

    @staticmethod
    def _hash(key: PseudonymKey, message: bytes) -> str:
        digest = hmac.digest(key.secret, message, "sha256")[: Pseudonymiser.DIGEST_BYTES]  # one-shot: C, no objects
        return f"{key.key_id}.{base64.urlsafe_b64encode(digest).decode()}"

    def chain(self, subject: SubjectId) -> list[str]:
        """The subject's pseudonym under each key of the ring, current first."""
        value = self._hash(self._oldest_first[0], f"{subject.kind.value}:{subject.number}".encode())
        chain = [value]
        for key in self._oldest_first[1:]:
            value = self._hash(key, value.encode())
            chain.append(value)
        return list(reversed(chain))

    def pseudonym(self, subject: SubjectId) -> str:
        return self.chain(subject)[self._current]

    def pseudonym_and_alias(self, subject: SubjectId) -> tuple[str, str]:
        """The pseudonym writes use, and the one other key's a read must also look under ("" with one key): the
        previous key's after a rotation (until `debar rekey` moves the rest), the staged key's while staged."""
        chain = self.chain(subject)
        if len(chain) == 1:
            return chain[0], ""
        return (chain[1], chain[0]) if self._current else (chain[0], chain[1])

    def all_pseudonyms(self, subject: SubjectId) -> list[str]:
        """Under every key of the ring, current first: what a read must look under during a rotation."""
        return self.chain(subject)

    def is_current(self, pseudonym: str) -> bool:
        """Under the key writes use, or under the staged one (written by replicas already past it): either is where
        the subject's data may stay."""
        return key_id_of(pseudonym) in (self.current_key_id, self.staged_key_id or self.current_key_id)

    def forward(self, pseudonym: str) -> str:
        """The current pseudonym of whoever had `pseudonym` under an older key of the ring."""
        return self._forward(pseudonym, len(self._keys) - self._current)

    def same_subject(self, one: str, other: str) -> bool:
        """Whether two stored pseudonyms, under any keys of the ring (staged included), name the same subject: both
        moved forward to the newest key."""
        return self._forward(one, len(self._keys)) == self._forward(other, len(self._keys))

    def _forward(self, pseudonym: str, until: int) -> str:
        """`pseudonym` hashed forward through the keys up to position `until` (oldest first, exclusive)."""
        position = self._position.get(key_id_of(pseudonym))
        if position is None:
            raise ValueError(f"pseudonym under a key that is not in the ring: {key_id_of(pseudonym)!r}")
        value = pseudonym
        for key in self._oldest_first[position + 1 : until]:
            value = self._hash(key, value.encode())
        return value


def key_id_of(pseudonym: str) -> str:
    """The id of the ring's key a stored pseudonym was made under ("<key id>.<digest>")."""
    return pseudonym.partition(".")[0]


BUCKET_HEX_CHARS = 3


class Placement:
    """Where a subject's data lives: one of 4096 buckets, the Redis Cluster hash tag of every key of the subject's
    (index, decision list), so it is seen by anyone who sees a key (a decision id hides it: it is inside the id's
    keyed permutation, sanction/domain/decision_ids.py).

    A keyed hash (HMAC-SHA256) of the identifier, so that only the key's holder can compute a person's bucket from
    their ID number: unkeyed, the 12 bits in a key would tell anyone who knows a number which slot holds that
    person's data. Its key is separate from the pseudonymisation keys and is never rotated: the bucket decides
    which slot (and, in a cluster, which node) holds a subject's index, sequencing stream and lists, and the key of
    every decision id given out is derived from it (`derive`), so a new bucket key would move every subject's data
    and orphan every id. Rotating the pseudonym key moves nothing because the bucket does not depend on it."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the bucket key is {len(key)} bytes: at least {MIN_KEY_BYTES} are needed")
        self._key = key

    def __repr__(self) -> str:
        return "Placement(<key>)"

    def derive(self, info: bytes, length: int = 32) -> bytes:
        """A key for another purpose, derived from the bucket key (derive_from_bucket_key): e.g. the key of
        decision ids (sanction/domain/decision_ids.py), which must never change either."""
        return derive_from_bucket_key(self._key, info, length)

    def bucket(self, subject: SubjectId) -> str:
        digest = hmac.digest(self._key, f"{subject.kind.value}:{subject.number}".encode(), "sha256")
        return digest.hex()[:BUCKET_HEX_CHARS]


def derive_from_bucket_key(bucket_key: str | bytes, info: bytes, length: int = 32) -> bytes:
    """A key for one purpose, derived from the bucket key: HKDF-SHA256, no salt, `info` the purpose's label (decision
    ids, decision seals, watch changes' MACs), so that one secret serves them all and none reveals another."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    raw = bucket_key.encode() if isinstance(bucket_key, str) else bucket_key
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(raw)


def parse_keys(spec: str, what: str = "pseudonymisation") -> list[PseudonymKey]:
    """Parses a key ring `kid:secret[,kid:secret...]` (first = current); every secret at least MIN_KEY_BYTES.
    `what` names the ring in errors, which never repeat a secret."""
    keys = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        key_id, sep, secret = part.partition(":")
        if not sep or not key_id or not secret:
            raise ValueError(f"{what} keys must look like 'kid:secret[,kid:secret]'")
        if not key_id.isalnum():
            raise ValueError(f"{what} key id {key_id!r} must be letters and digits")
        keys.append(PseudonymKey(key_id, secret.encode()))
    if not keys:
        raise ValueError(f"no {what} key configured")
    return keys
