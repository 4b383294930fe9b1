"""Restrictions, the role links that carry them to persons, exemptions, and decisions. Times are whole epoch
seconds (UTC); `None` as an end means "until lifted"."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum

from debar.common.identifiers import IdKind


class Role(IntEnum):
    DEBTOR = 1
    LEGAL_REPRESENTATIVE = 2
    PRINCIPAL = 3
    DIRECTLY_RESPONSIBLE = 4
    ACTUAL_CONTROLLER = 5


class Status(Enum):
    PUBLICITY = "publicity"
    ACTIVE = "active"
    DISPUTED = "disputed"
    LIFTED = "lifted"
    EXPIRED = "expired"


class Outcome(Enum):
    ALLOW = "ALLOW"
    DENY = "DENY"

    __hash__ = object.__hash__  # as IdKind's (common/identifiers.py)


def _short_id(prefix: str, material: str) -> str:
    digest = hashlib.sha256(material.encode()).digest()
    return prefix + base64.b32encode(digest[:10]).decode()  # 80 bits, 16 characters


def restriction_id(source: str, source_id: str) -> str:
    """Deterministic, so that importing or imposing the same source record twice is idempotent."""
    return _short_id("R", f"{source}\0{source_id}")


def exemption_id(subject_pseudonym: str, measure: str, effective_from: int, document_number: str) -> str:
    return _short_id("X", f"{subject_pseudonym}\0{measure}\0{effective_from}\0{document_number}")


@dataclass(frozen=True, slots=True)
class SubjectRef:
    """A subject as stored: never the clear identifier. `bucket` places its data (see the Redis adapter)."""

    kind: IdKind
    pseudonym: str
    bucket: str
    # The pseudonym under the previous key while a key rotation is under way (its data may not be re-keyed yet):
    # reads look under both. Not part of the subject's identity.
    alias: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class PrincipalLink:
    subject: SubjectRef
    role: Role
    masked_name: str
    lifted_at: int | None = None
    lift_reason: str = ""


@dataclass(frozen=True, slots=True)
class PendingLift:
    """A lift asked for and not confirmed yet (four eyes: see domain/four_eyes.py): the restriction stays in force
    until a second registry identity confirms it."""

    asked_by: str
    asked_at: int
    reason: str
    document_number: str


@dataclass(frozen=True, slots=True)
class Restriction:
    id: str
    source: str
    source_id: str
    list_version: str
    subject: SubjectRef
    masked_name: str
    measures: tuple[str, ...]
    legal_basis: str
    authority: str
    case_number: str
    document_number: str
    decided_on: str
    effective_from: int
    effective_until: int | None
    principals: tuple[PrincipalLink, ...] = ()
    created_at: int = 0
    updated_at: int = 0
    lifted_at: int | None = None
    lift_reason: str = ""
    disputed: bool = False
    lift_document_number: str = ""  # the court decision that lifted it
    lifted_by: str = ""  # who asked for the lift
    lift_confirmed_by: str = ""  # who confirmed it ("" when the source needs no confirmation)
    pending_lift: PendingLift | None = None
    # Lifted as a correction (an objection overturned and confirmed): the record was wrong from the start for its
    # subject, so it denies at no checked time, where a lift ends it at the lift (earlier times still deny: a debt
    # paid today was owed yesterday).
    corrected: bool = False

    def status(self, at: int) -> Status:
        if self.lifted_at is not None:
            return Status.LIFTED
        if self.effective_until is not None and at >= self.effective_until:
            return Status.EXPIRED
        if at < self.effective_from:
            return Status.PUBLICITY
        return Status.DISPUTED if self.disputed else Status.ACTIVE

    def same_content(self, other: Restriction) -> bool:
        """Equal but for bookkeeping timestamps: re-importing it is not a write."""
        return replace(self, created_at=0, updated_at=0) == replace(other, created_at=0, updated_at=0)


@dataclass(frozen=True, slots=True)
class Exemption:
    id: str
    subject: SubjectRef
    measure: str
    effective_from: int
    effective_until: int
    authority: str
    reason: str
    document_number: str
    created_at: int = 0
    granted_by: str = ""
    confirmed_by: str = ""
    # Awaiting a second registry identity's confirmation: stored, but not in the index, so no check honours it.
    pending: bool = False


class EntryKind(Enum):
    RESTRICTION = "R"
    EXEMPTION = "X"


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """What a check reads about one subject: one restriction reaching it (directly or through a role), or one
    exemption. Only what a ground needs, so that one read answers a check."""

    kind: EntryKind
    id: str
    role: Role | None
    mask: int
    effective_from: int
    effective_until: int | None
    source: str = ""
    via: str = ""
    legal_basis: str = ""
    authority: str = ""
    case_number: str = ""
    # An exemption confirmed by a second registry identity: only such a permit overrides a restriction of a source
    # whose lifts need confirmation (domain/rules.py; domain/four_eyes.py). False for one granted by one identity.
    confirmed: bool = False

    def covers(self, mask: int, at: int) -> bool:
        return (
            bool(self.mask & mask)
            and self.effective_from <= at
            and (self.effective_until is None or at < self.effective_until)
        )


@dataclass(frozen=True, slots=True)
class Evaluation:
    outcome: Outcome
    grounds: tuple[IndexEntry, ...] = ()
    exemption: IndexEntry | None = None
    overridden: tuple[IndexEntry, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class IndexChange:
    """Put (entry set) or drop (entry None) one entry of one subject's index."""

    subject: SubjectRef
    kind: EntryKind
    entry_id: str
    role: Role | None
    entry: IndexEntry | None
