"""Checks asked and decisions given. A decision carries its why as captured when it was made."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from debar.common.errors import InvalidField
from debar.sanction.domain.catalogue import Measure
from debar.sanction.domain.model import IndexEntry, Outcome, SubjectRef

# "<log record id>-<chain bucket>-<index in the record>", e.g. 1764250000000-0-a3f-0: sortable by time.
# ASCII digits only: \d alone also matches other scripts' digits, which Redis cannot take as a stream id.
_DECISION_ID = re.compile(r"^(\d{1,15})-(\d{1,9})-([0-9a-f]{3})-(\d{1,5})\Z", re.ASCII)


@dataclass(frozen=True, slots=True)
class CheckQuery:
    subject: SubjectRef
    measure: Measure
    at: int


@dataclass(frozen=True, slots=True)
class LoggedCheck:
    """A check to decide and log: who asked (the authenticated caller, and the platform it asked for when it was
    delegated), and the data revision the answer will be read at (at least)."""

    query: CheckQuery
    caller: str
    revision: int
    on_behalf_of: str = ""  # the platform a domain service asked for (x-debar-on-behalf-of), else empty


class Degradation(Enum):
    NONE = "none"
    FAILED_OPEN_SPOOLED = "failed_open_spooled"


@dataclass(frozen=True, slots=True)
class Decision:
    decision_id: str
    query: CheckQuery
    outcome: Outcome
    grounds: tuple[IndexEntry, ...]
    exemption: IndexEntry | None
    decided_at_ms: int
    revision: int
    catalogue_version: str
    degradation: Degradation = Degradation.NONE


@dataclass(frozen=True, slots=True)
class DecisionAddress:
    """Where a decision lives: the log record (stream id) in the chain of `bucket`, at `index` in the record."""

    stream_id: str
    bucket: str
    index: int

    def __str__(self) -> str:
        return f"{self.stream_id}-{self.bucket}-{self.index}"


# A decision made while Redis was unreachable (a fail-open measure): "S<ms>-<token>-<bucket>". Once the spool is
# replayed it is also reachable under this id (the log maps it to the record that holds it).
_SPOOLED_ID = re.compile(r"^S(\d{1,15})-([0-9a-f]{8,32})-([0-9a-f]{3})\Z", re.ASCII)


def spooled_decision_id(decided_at_ms: int, token: str, bucket: str) -> str:
    return f"S{decided_at_ms}-{token}-{bucket}"


def spooled_bucket(value: str) -> str | None:
    """The bucket of a spooled decision id, or None when `value` is not one."""
    match = _SPOOLED_ID.match(value)
    return match[3] if match else None


@dataclass(frozen=True, slots=True)
class SpooledDecision:
    """A fail-open allow given while the log was unreachable, kept in a local file until it is replayed."""

    decision_id: str
    check: LoggedCheck
    decided_at_ms: int


def decision_id(stream_id: str, bucket: str, index: int) -> str:
    return f"{stream_id}-{bucket}-{index}"  # str(DecisionAddress(stream_id, bucket, index)), once per decision


def parse_decision_id(value: str, field: str = "decision_id") -> DecisionAddress:
    match = _DECISION_ID.match(value)
    if not match:
        raise InvalidField(field, "is not a decision id (like 1764250000000-0-a3f-0)")
    return DecisionAddress(f"{match[1]}-{match[2]}", match[3], int(match[4]))
