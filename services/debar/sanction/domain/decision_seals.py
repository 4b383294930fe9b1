"""Decision seals: the sanction service's word that it asked the questions a decision record answers.

Decisions are decided inside Redis (lua/decide.lua) and logged unsigned: an Ed25519 signature per decision would
cost the hot path more than the check (tlog/entry_signature.py). So a Redis insider could add a decision record no
platform ever asked for (a refusal of a person), or copy a genuine one, and the log would integrate it. What the
server knows before its script call is the question of each decision: who asked (the caller as logged), at which
data revision, about which subject (id type, pseudonym), for which measure, at which time. A seal is an HMAC-SHA256
(cut to 16 bytes) under a key derived from the bucket key (DEBAR_BUCKET_KEY, which the server and `debar log
verify` hold and a Redis insider does not) over those questions, the stream's bucket and a nonce used once.

One seal covers a group of consecutive decisions of one record (a BatchCheck's items counted against one rate: the
script decides or refuses them together), so a batch costs one HMAC per group, not per decision. The record holds
its seals in field `q`, GS-joined, each "count:nonce:mac" (nonce and mac in unpadded base64url), in decision order.
A replayed fail-open decision is sealed alone, its spool id as the nonce.

What a seal does not cover: the answer (outcome, grounds, exemption), which the script computes inside Redis; an
insider who rewrites a genuine decision's answer before the integrator takes it (the merge delay) is not stopped
by it. Anyone holding the bucket key can seal."""

from __future__ import annotations

import base64
import hmac
import itertools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from debar.common.identifiers import derive_from_bucket_key

SEAL_INFO = b"debar decision seal v1"  # the HKDF label of the seal key (Placement.derive(SEAL_INFO))
MAC_BYTES = 16
SEAL_SEP = "\x1d"  # between a record's seals (GS), as between its decisions
_US, _RS = "\x1f", "\x1e"

# A decision's question: caller (as logged), data revision, id type, subject pseudonym, measure, at (epoch seconds),
# each as the record holds it. None holds US, RS, GS or FS (the check script's separators), so the message below
# is unambiguous.
Question = Sequence[str]


def seal_key(bucket_key: str | bytes) -> bytes:
    """The same key as Placement(bucket_key).derive(SEAL_INFO)."""
    return derive_from_bucket_key(bucket_key, SEAL_INFO)


def message(bucket: str, nonce: str, questions: Sequence[Question]) -> bytes:
    """The bytes a seal's MAC is over: label, the stream's bucket, the nonce, then each question's fields."""
    return _RS.join(("debar decision seal v1", bucket, nonce, *(_US.join(q) for q in questions))).encode()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def mac(key: bytes, bucket: str, nonce: str, questions: Sequence[Question]) -> str:
    return _b64(hmac.digest(key, message(bucket, nonce, questions), "sha256")[:MAC_BYTES])


@dataclass(frozen=True)
class Seal:
    count: int  # decisions covered, from where the seal before left off
    nonce: str
    mac: str

    def text(self) -> str:
        return f"{self.count}:{self.nonce}:{self.mac}"


@dataclass(frozen=True)
class SealedDecisions:
    """What a decision record holds for its seals to be checked: its stream's bucket, each decision's question
    in order, and the record's field `q` as it is ("" when it has none)."""

    bucket: str
    questions: tuple[Question, ...]
    seals: str


def parse_seals(field: str) -> list[Seal]:
    """A record's field `q`; ValueError naming what is wrong with one that is not seals."""
    out: list[Seal] = []
    for text in field.split(SEAL_SEP) if field else ():
        count, _, rest = text.partition(":")
        nonce, _, tag = rest.partition(":")
        if not count.isdigit() or int(count) < 1 or not nonce or not tag:
            raise ValueError(f"not a seal: {text[:60]!r}")
        out.append(Seal(int(count), nonce, tag))
    return out


def seal_matches(key: bytes, bucket: str, seal: Seal, questions: Sequence[Question]) -> bool:
    return len(questions) == seal.count and hmac.compare_digest(seal.mac, mac(key, bucket, seal.nonce, questions))


class DecisionSealer:
    """The server's: seals groups of questions, each under a nonce of its own: 8 random bytes per process (two
    processes of a log's lifetime meet the same prefix with probability about starts^2 / 2^65), then a 4-byte
    counter; 16 base64url characters."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a decision seal key is 32 bytes")
        self._key = key
        self._prefix = secrets.token_bytes(8)
        self._counter = itertools.count()

    @staticmethod
    def for_bucket_key(bucket_key: str | bytes) -> DecisionSealer:
        return DecisionSealer(seal_key(bucket_key))

    def nonce(self) -> str:
        n = next(self._counter)
        if n >= 2**32:  # a new prefix every 4 billion groups
            self._prefix, self._counter = secrets.token_bytes(8), itertools.count(1)
            n = 0
        return _b64(self._prefix + n.to_bytes(4, "big"))

    def seal(self, bucket: str, questions: Sequence[Question], nonce: str | None = None) -> str:
        """A seal's text, as decide.lua and replay.lua put it in field `q`. `nonce`: a replay's spool id."""
        nonce = nonce or self.nonce()
        return f"{len(questions)}:{nonce}:{mac(self._key, bucket, nonce, questions)}"
