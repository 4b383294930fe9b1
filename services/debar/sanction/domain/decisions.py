"""Checks asked and decisions given. A decision carries its why as captured when it was made."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from debar.sanction.domain.catalogue import Measure
from debar.sanction.domain.errors import InvalidField
from debar.sanction.domain.model import IndexEntry, Outcome, SubjectRef

# "<log record id>-<chain bucket>-<index in the record>", e.g. 1764250000000-0-a3f-0: sortable by time.
_DECISION_ID = re.compile(r"^(\d{1,15})-(\d{1,9})-([0-9a-f]{3})-(\d{1,5})$")


@dataclass(frozen=True, slots=True)
class CheckQuery:
    subject: SubjectRef
    measure: Measure
    at: int


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


def decision_id(stream_id: str, bucket: str, index: int) -> str:
    return str(DecisionAddress(stream_id, bucket, index))


def parse_decision_id(value: str, field: str = "decision_id") -> DecisionAddress:
    match = _DECISION_ID.match(value)
    if not match:
        raise InvalidField(field, "is not a decision id (like 1764250000000-0-a3f-0)")
    return DecisionAddress(f"{match[1]}-{match[2]}", match[3], int(match[4]))
