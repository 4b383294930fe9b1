"""Checks asked and decisions given. A decision carries its why as captured when it was made."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from debar.common.errors import InvalidField
from debar.common.frozen import quick_init
from debar.sanction.domain.catalogue import Measure
from debar.sanction.domain.model import IndexEntry, Outcome, SubjectRef

# A decision's location in the log, "<log record id>-<bucket>-<index in the record>", e.g. 1764250000000-0-a3f-0:
# how the log's own lists keep it. It is never shown: callers know a decision by its external id, a keyed
# permutation of the location (domain/decision_ids.py).
# ASCII digits only: \d alone also matches other scripts' digits, which Redis cannot take as a stream id.
_DECISION_ID = re.compile(r"^(\d{1,15})-(\d{1,9})-([0-9a-f]{3})-(\d{1,5})\Z", re.ASCII)


@quick_init
@dataclass(frozen=True, slots=True)
class CheckQuery:
    subject: SubjectRef
    measure: Measure
    at: int


@quick_init
@dataclass(frozen=True, slots=True)
class LoggedCheck:
    """A check to decide and log: who asked (the authenticated caller, and the platform it asked for when it was
    delegated), and the data revision the answer will be read at (at least)."""

    query: CheckQuery
    caller: str
    revision: int
    on_behalf_of: str = ""  # the platform a domain service asked for (x-debar-on-behalf-of), else empty

    @property
    def logged_caller(self) -> str:
        """Who asked, as the log record keeps it: "caller/platform" when delegated, else the caller (identities
        hold no "/": common/callers.py)."""
        return f"{self.caller}/{self.on_behalf_of}" if self.on_behalf_of else self.caller


class Degradation(Enum):
    NONE = "none"
    FAILED_OPEN_SPOOLED = "failed_open_spooled"

    __hash__ = object.__hash__  # as IdKind's (common/identifiers.py)


@quick_init
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
    """Where a decision lives: the log record (stream id) in the stream of `bucket`, at `index` in the record."""

    stream_id: str
    bucket: str
    index: int

    def __str__(self) -> str:
        return f"{self.stream_id}-{self.bucket}-{self.index}"


@dataclass(frozen=True, slots=True)
class SpooledDecision:
    """A fail-open allow given while the log was unreachable, kept in a local file until it is replayed; its id is
    an external one with 96 random bits (DecisionIds.new_spooled), under which the replayed decision is found."""

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
