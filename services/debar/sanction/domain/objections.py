"""Objections to a refusal, as pure rules: the states an objection moves through, who may move it, and the
deadlines each step starts. The record stays in force while an objection is open; overturning it corrects the
record (done by the use case), upholding it leaves the person one reconsideration.

    filed -> under review -> upheld | overturned
    upheld -> reconsideration (once, before reconsideration_request_due) -> upheld | overturned
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum

from debar.common.errors import Conflict, InvalidField
from debar.sanction.domain.calendar import DAY, add_working_days
from debar.sanction.domain.catalogue import ObjectionRules
from debar.sanction.domain.model import SubjectRef

MAX_STATEMENT = 4000
MAX_CONTACT = 256
MAX_ACTOR = 128
MAX_REASON = 1000
# The objection id starts with the decision's bucket, so that an objection is stored beside its decision's
# other objections and "one objection per decision" can be checked in one atomic step.
# Beyond any deadline (2286-11-20): listing_order of objections with nothing left due.
NOTHING_DUE = 10_000_000_000
_OBJECTION_ID = re.compile(r"^O([0-9a-f]{3})[0-9a-f]{12}\Z")
SUBJECT_ACTOR = "subject"  # the person objecting, as the actor of filing and of asking for reconsideration


class ObjectionState(Enum):
    FILED = "filed"
    UNDER_REVIEW = "under_review"
    UPHELD = "upheld"  # the objection was rejected; the record stands
    OVERTURNED = "overturned"  # the record was corrected
    RECONSIDERATION = "reconsideration"


OPEN_STATES = frozenset({ObjectionState.FILED, ObjectionState.UNDER_REVIEW, ObjectionState.RECONSIDERATION})


class ObjectionOutcome(Enum):
    UPHELD = "upheld"
    OVERTURNED = "overturned"


@dataclass(frozen=True, slots=True)
class Transition:
    from_state: ObjectionState | None  # None: the filing
    to_state: ObjectionState
    actor: str
    reason: str
    at: int


@dataclass(frozen=True, slots=True)
class Objection:
    id: str
    decision_id: str
    subject: SubjectRef  # the person the refused decision was about: a correction lifts only their link
    restriction_ids: tuple[str, ...]
    source: str  # the source of the decision's first ground; its rules give the deadlines
    rules: ObjectionRules  # as at filing: the deadlines promised then hold
    state: ObjectionState
    statement: str
    contact: str
    filed_at: int
    review_due: int  # from filing; from the request once in reconsideration
    correction_due: int | None = None
    reconsideration_request_due: int | None = None
    corrected_at: int | None = None
    history: tuple[Transition, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def reconsidered(self) -> bool:
        return any(t.to_state is ObjectionState.RECONSIDERATION for t in self.history)

    @property
    def due(self) -> int | None:
        """The deadline that matters in the current state; None once nothing is due (overturned and corrected)."""
        if self.state is ObjectionState.OVERTURNED and self.correction_due is not None:
            return None if self.corrected_at is not None else self.correction_due
        if self.state is ObjectionState.UPHELD and self.reconsideration_request_due is not None:
            return self.reconsideration_request_due
        return self.review_due

    @property
    def listing_order(self) -> int:
        """Where its state's index puts it: by the deadline that matters, soonest first; one with nothing left
        due goes after every deadline, by when it was closed, so that a query for what is late never meets the
        growing pile of corrected objections."""
        due = self.due
        return due if due is not None else NOTHING_DUE + (self.corrected_at or 0)

    def overdue(self, now: int) -> bool:
        """Late on the authority's side: not decided by review_due, or overturned but not corrected in time.
        An upheld objection is never overdue: the reconsideration deadline is the person's."""
        if self.is_open:
            return now > self.review_due
        if self.state is ObjectionState.OVERTURNED:
            return self.corrected_at is None and self.correction_due is not None and now > self.correction_due
        return False


@dataclass(frozen=True, slots=True)
class ListingCursor:
    """Where a page of a listing ended: the last objection's listing order and id (the index's own order)."""

    order: int
    objection_id: str


_PAGE_TOKEN = re.compile(r"^(\d{1,11})\.(O[0-9a-f]{15})\Z")


@dataclass(frozen=True, slots=True)
class Listed:
    """One place in a state's index: its order there, the id, and the record (None if it vanished meanwhile)."""

    order: int
    objection_id: str
    objection: Objection | None


def page_token(last: Listed) -> str:
    """From the index's own order, not the record's: a record changed since the index was read must not move
    the next page's start."""
    return f"{last.order}.{last.objection_id}"


def parse_page_token(token: str) -> ListingCursor | None:
    if not token:
        return None
    found = _PAGE_TOKEN.match(token)
    if found is None:
        raise InvalidField("page_token", "is not a token this service gave")
    return ListingCursor(int(found[1]), found[2])


def objection_id(decision_bucket: str, token: str) -> str:
    value = f"O{decision_bucket}{token}"
    if not _OBJECTION_ID.match(value):
        raise ValueError(f"not an objection id: {value!r}")
    return value


def parse_objection_id(value: str, field: str = "objection_id") -> str:
    """Returns the bucket the objection is stored in, or raises InvalidField."""
    match = _OBJECTION_ID.match(value)
    if not match:
        raise InvalidField(field, "is not an objection id (like O3a7f0c1d2e3b4a59)")
    return match[1]


def text(value: str, field: str, limit: int, *, multiline: bool = False) -> str:
    """A required free text: stripped, within `limit`, no control characters (line breaks only if multiline)."""
    value = value.strip()
    if not value:
        raise InvalidField(field, "is required")
    if len(value) > limit:
        raise InvalidField(field, f"is longer than {limit} characters")
    allowed = "\n\r\t" if multiline else ""
    if any(ord(c) < 32 and c not in allowed for c in value) or "\x7f" in value:
        raise InvalidField(field, "contains control characters")
    return value


def _refuse(objection: Objection, action: str, allowed: str) -> Conflict:
    return Conflict(f"objection {objection.id} is {objection.state.value}; {action} only from {allowed}")


def _move(objection: Objection, to: ObjectionState, actor: str, reason: str, now: int, **changes: object) -> Objection:
    step = Transition(objection.state, to, actor, reason, now)
    return replace(objection, state=to, history=(*objection.history, step), **changes)  # type: ignore[arg-type]


def file(
    *,
    id: str,
    decision_id: str,
    subject: SubjectRef,
    restriction_ids: tuple[str, ...],
    source: str,
    rules: ObjectionRules,
    statement: str,
    contact: str,
    now: int,
) -> Objection:
    statement = text(statement, "statement", MAX_STATEMENT, multiline=True)
    contact = text(contact, "contact", MAX_CONTACT)
    return Objection(
        id=id,
        decision_id=decision_id,
        subject=subject,
        restriction_ids=tuple(dict.fromkeys(restriction_ids)),
        source=source,
        rules=rules,
        state=ObjectionState.FILED,
        statement=statement,
        contact=contact,
        filed_at=now,
        review_due=now + rules.review_days * DAY,
        history=(Transition(None, ObjectionState.FILED, SUBJECT_ACTOR, "objection filed", now),),
    )


def review(objection: Objection, reviewer: str, now: int) -> Objection:
    reviewer = text(reviewer, "reviewer", MAX_ACTOR)
    if objection.state is not ObjectionState.FILED:
        raise _refuse(objection, "review", "filed")
    return _move(objection, ObjectionState.UNDER_REVIEW, reviewer, "taken under review", now)


def resolve(objection: Objection, outcome: ObjectionOutcome | None, reviewer: str, reason: str, now: int) -> Objection:
    if outcome is None:
        raise InvalidField("outcome", "must be OBJECTION_OUTCOME_UPHELD or OBJECTION_OUTCOME_OVERTURNED")
    reviewer = text(reviewer, "reviewer", MAX_ACTOR)
    reason = text(reason, "reason", MAX_REASON)
    if objection.state not in (ObjectionState.UNDER_REVIEW, ObjectionState.RECONSIDERATION):
        raise _refuse(objection, "resolve", "under_review or reconsideration")
    if outcome is ObjectionOutcome.UPHELD:
        due = now + objection.rules.reconsideration_request_days * DAY
        # Upheld after a reconsideration: the deadline shown stays the one that applied (none is left to use).
        return _move(
            objection, ObjectionState.UPHELD, reviewer, reason, now,
            reconsideration_request_due=objection.reconsideration_request_due if objection.reconsidered else due,
        )  # fmt: skip
    return _move(
        objection, ObjectionState.OVERTURNED, reviewer, reason, now,
        correction_due=add_working_days(now, objection.rules.correction_working_days),
    )  # fmt: skip


def request_reconsideration(objection: Objection, statement: str, now: int) -> Objection:
    statement = text(statement, "statement", MAX_STATEMENT, multiline=True)
    if objection.state is not ObjectionState.UPHELD:
        raise _refuse(objection, "reconsideration", "upheld")
    if objection.reconsidered or objection.reconsideration_request_due is None:
        raise Conflict(f"objection {objection.id} was already reconsidered; a reconsideration is asked once")
    if now > objection.reconsideration_request_due:
        raise Conflict(f"objection {objection.id}: the deadline to ask for reconsideration has passed")
    return _move(
        objection, ObjectionState.RECONSIDERATION, SUBJECT_ACTOR, statement, now,
        review_due=now + objection.rules.reconsideration_decision_days * DAY,
    )  # fmt: skip


def mark_corrected(objection: Objection, now: int) -> Objection:
    return replace(objection, corrected_at=now)
