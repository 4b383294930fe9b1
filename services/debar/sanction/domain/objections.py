"""Objections to a refusal, as pure rules: the states an objection moves through, who may move it, and the
deadlines each step starts. The record stays in force while an objection is open; upholding it leaves the person
one reconsideration; overturning it takes two reviewers (four eyes: one credential alone never takes a record out
of force): the first resolves, a different one confirms, and only then is the record corrected (by the use case).

    filed -> under review -> upheld | awaiting confirmation
    awaiting confirmation -> overturned (confirmed by another reviewer) | upheld (any reviewer keeps the record)
    upheld -> reconsideration (once, before reconsideration_request_due) -> upheld | awaiting confirmation

Deadlines, as a court clerk reads them: the review deadline is met by the first resolution (the reviewer decided
in time; the confirmation is the court's own check on that decision, not a second review). The correction deadline
starts at the first resolution too and keeps running while the confirmation is awaited: the person was promised a
corrected record within so many working days of the decision, and the court's internal check must fit inside that
promise, so an overturn left unconfirmed becomes overdue rather than waiting unseen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum

from debar.common.errors import Conflict, InvalidField, PermissionDenied
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
    OVERTURNED = "overturned"  # confirmed by a second reviewer: the record is corrected
    RECONSIDERATION = "reconsideration"
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # overturned by one reviewer; the record stays in force


OPEN_STATES = frozenset(
    {
        ObjectionState.FILED,
        ObjectionState.UNDER_REVIEW,
        ObjectionState.RECONSIDERATION,
        ObjectionState.AWAITING_CONFIRMATION,
    }
)
# The states a resolution (ResolveObjection) moves to: its actor is the reviewer whose resolution stands.
_RESOLVED_STATES = frozenset({ObjectionState.UPHELD, ObjectionState.AWAITING_CONFIRMATION})


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
    def resolution(self) -> Transition | None:
        """The resolution that stands or awaits confirmation: the last move into upheld or awaiting confirmation
        (None before any)."""
        return next((t for t in reversed(self.history) if t.to_state in _RESOLVED_STATES), None)

    @property
    def resolved_by(self) -> str:
        found = self.resolution
        return found.actor if found else ""

    @property
    def confirmed_by(self) -> str:
        """The reviewer who confirmed the overturn; "" unless overturned."""
        if self.state is not ObjectionState.OVERTURNED:
            return ""
        last = self.history[-1]
        return last.actor if last.from_state is ObjectionState.AWAITING_CONFIRMATION else ""

    @property
    def due(self) -> int | None:
        """The deadline that matters in the current state; None once nothing is due (overturned and corrected)."""
        if self.state is ObjectionState.AWAITING_CONFIRMATION and self.correction_due is not None:
            return self.correction_due  # the review deadline was met by the first resolution
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
        """Late on the authority's side: not decided by review_due, or overturned (confirmed or awaiting
        confirmation) but not corrected by correction_due. An upheld objection is never overdue: the reconsideration
        deadline is the person's."""
        if self.state is ObjectionState.AWAITING_CONFIRMATION:
            return self.correction_due is not None and now > self.correction_due
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
    """Upheld: the record stands (one reviewer is enough to keep a record in force, also to decline an overturn
    that awaits confirmation). Overturned: awaiting a second reviewer's confirmation; the correction deadline
    starts now."""
    if outcome is None:
        raise InvalidField("outcome", "must be OBJECTION_OUTCOME_UPHELD or OBJECTION_OUTCOME_OVERTURNED")
    reviewer = text(reviewer, "reviewer", MAX_ACTOR)
    reason = text(reason, "reason", MAX_REASON)
    awaiting = objection.state is ObjectionState.AWAITING_CONFIRMATION
    if awaiting and outcome is ObjectionOutcome.OVERTURNED:
        raise Conflict(
            f"objection {objection.id} is already resolved as overturned by {objection.resolved_by}; a different "
            "reviewer confirms it (ConfirmResolution)"
        )
    if not awaiting and objection.state not in (ObjectionState.UNDER_REVIEW, ObjectionState.RECONSIDERATION):
        raise _refuse(objection, "resolve", "under_review, reconsideration or awaiting_confirmation")
    if outcome is ObjectionOutcome.UPHELD:
        due = now + objection.rules.reconsideration_request_days * DAY
        # Upheld after a reconsideration: the deadline shown stays the one that applied (none is left to use).
        return _move(
            objection, ObjectionState.UPHELD, reviewer, reason, now, correction_due=None,
            reconsideration_request_due=objection.reconsideration_request_due if objection.reconsidered else due,
        )  # fmt: skip
    return _move(
        objection, ObjectionState.AWAITING_CONFIRMATION, reviewer, reason, now,
        correction_due=add_working_days(now, objection.rules.correction_working_days),
    )  # fmt: skip


def same_reviewer(a: str, b: str) -> bool:
    """Names typed by people (the reviewer field) compare without case or spacing: "Judge  Li" is "judge li"."""
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def confirm(objection: Objection, reviewer: str, now: int) -> Objection:
    """The second pair of eyes: a reviewer other than the one who resolved it confirms the overturn, and the record
    may then be corrected. The same reviewer is refused (PermissionDenied: it is who asks, not the objection's
    state, that is wrong; another reviewer's identical request succeeds). The correction deadline set at the first
    resolution stays."""
    reviewer = text(reviewer, "reviewer", MAX_ACTOR)
    if objection.state is not ObjectionState.AWAITING_CONFIRMATION:
        raise _refuse(objection, "confirm", "awaiting_confirmation")
    first = objection.resolved_by
    if same_reviewer(reviewer, first):
        raise PermissionDenied(
            f"objection {objection.id} was resolved by {first}; a different reviewer must confirm it"
        )
    return _move(objection, ObjectionState.OVERTURNED, reviewer, f"confirmed the overturn by {first}", now)


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
