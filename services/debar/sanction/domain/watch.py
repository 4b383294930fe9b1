"""Subscriptions (WatchService): a platform's booking for a subject, until the travel or stay date, and the rules
that say when its standing changed. Pure: no Redis, no gRPC, no clock of its own.

A subscription remembers, per measure, the outcome last told (the standing at subscription is the baseline). A
subject is re-judged when a registry write touched it or when a validity window of its index opens or closes
(`next_boundary`, scheduled, never found by scanning); a change is told only when the logged decision's outcome
differs from the one last told, so a change is always a logged decision, objectionable like any refusal."""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from debar.common.errors import InvalidField, QuotaExceeded
from debar.common.identifiers import IdKind
from debar.sanction.domain.model import IndexEntry, Outcome, SubjectRef
from debar.sanction.domain.rules import evaluate

MAX_TAG = 128
# A subject's set naming a subscription not stored this long after it was made: an orphan (a Subscribe that failed
# halfway, or was refused by the quota and could not take it back), dropped.
ORPHAN_AFTER_S = 60
MAX_MEASURES = 32
# "W" + 20 hex characters: 80 random bits; the owner is not in it (each owner's ids live in its own keys).
_SUBSCRIPTION_ID = re.compile(r"^W[0-9a-f]{20}\Z", re.ASCII)
# A stream position: "<ms>-<seq>".
_CURSOR = re.compile(r"^(\d{1,15})-(\d{1,15})\Z", re.ASCII)
_CONTROL = re.compile("[\x00-\x1f\x7f]")


class ChangeKind(Enum):
    BECAME_RESTRICTED = "restricted"
    NO_LONGER_RESTRICTED = "lifted"


def new_subscription_id() -> str:
    return "W" + secrets.token_hex(10)


def check_subscription_id(value: str, field: str = "subscription_id") -> str:
    value = value.strip()
    if not _SUBSCRIPTION_ID.match(value):
        raise InvalidField(field, "is not a subscription id (W and 20 hex characters)")
    return value


def check_cursor(value: str, field: str = "after_cursor") -> tuple[int, int] | None:
    """None for empty (from the oldest retained); else (ms, seq)."""
    value = value.strip()
    if not value:
        return None
    match = _CURSOR.match(value)
    if not match:
        raise InvalidField(field, "is not a cursor (a value of Change.cursor, like 1764250000000-0)")
    return int(match[1]), int(match[2])


def check_tag(value: str, field: str = "tag") -> str:
    if len(value) > MAX_TAG:
        raise InvalidField(field, f"is longer than {MAX_TAG} characters")
    if _CONTROL.search(value):
        raise InvalidField(field, "contains control characters")
    return value


def check_until(until: int | None, now: int, max_ahead_s: int, field: str = "until") -> int:
    if until is None:
        raise InvalidField(field, "is required: the travel or stay date, when the subscription ends")
    if until <= now:
        raise InvalidField(field, "must be in the future")
    if until > now + max_ahead_s:
        raise InvalidField(field, f"must be within {max_ahead_s // 86400} days from now")
    return until


def owner_of(caller: str, on_behalf_of: str = "") -> str:
    """Whose subscriptions a call sees: the caller's, or, delegated, the caller's for that principal (as rates)."""
    return f"{caller}/{on_behalf_of}" if on_behalf_of else caller


def split_owner(owner: str) -> tuple[str, str]:
    """(caller, on_behalf_of) of an owner: who a change's logged decision was made for."""
    caller, _, principal = owner.partition("/")
    return caller, principal


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    owner: str
    subject: SubjectRef
    measures: tuple[str, ...]  # catalogue codes, catalogue order
    until: int
    tag: str
    created_at: int
    # measure -> the outcome last told (the baseline at first).
    told: Mapping[str, Outcome] = field(default_factory=dict)

    def live(self, now: int) -> bool:
        return now < self.until


@dataclass(frozen=True, slots=True)
class Difference:
    """A measure whose standing now differs from the one last told: to be decided (logged) and, if the logged
    decision agrees, told."""

    subscription: Subscription
    measure: str
    told: Outcome


def baseline(
    entries: Sequence[IndexEntry], masks: Mapping[str, int], at: int, alone_overrides: Collection[str] = frozenset()
) -> dict[str, Outcome]:
    """Each measure's standing at `at`, from the subject's index: what a subscription starts from.
    `alone_overrides`: as rules.evaluate takes it."""
    return {code: evaluate(entries, mask, at, alone_overrides).outcome for code, mask in masks.items()}


def differences(
    subscriptions: Iterable[Subscription], entries: Sequence[IndexEntry], masks: Mapping[str, int], at: int,
    alone_overrides: Collection[str] = frozenset(),
) -> list[Difference]:  # fmt: skip
    """The (subscription, measure) pairs whose standing at `at` is not the one last told."""
    out = []
    for sub in subscriptions:
        for code in sub.measures:
            told = sub.told.get(code, Outcome.ALLOW)
            if evaluate(entries, masks[code], at, alone_overrides).outcome is not told:
                out.append(Difference(sub, code, told))
    return out


def change_kind(told: Outcome, decided: Outcome) -> ChangeKind | None:
    if told is decided:
        return None
    return ChangeKind.BECAME_RESTRICTED if decided is Outcome.DENY else ChangeKind.NO_LONGER_RESTRICTED


def next_boundary(entries: Iterable[IndexEntry], mask: int, after: int, before: int) -> int | None:
    """The first time in (after, before) at which an index entry touching `mask` starts or ends: when the standing
    may change with no write. None when there is none before the subscriptions end."""
    times = [
        t
        for e in entries
        if e.mask & mask
        for t in (e.effective_from, e.effective_until)
        if t is not None and after < t < before
    ]
    return min(times) if times else None


def check_quota(held: int, adding: int, quota: int, owner: str) -> None:
    if held + adding > quota:
        raise QuotaExceeded(
            f"caller {owner!r} may hold at most {quota} subscriptions ({held} held); unsubscribe or wait for "
            "some to end"
        )


@dataclass(frozen=True, slots=True)
class SubscriptionInput:
    kind: IdKind | None
    id: str
    measures: Sequence[str]
    until: int | None
    tag: str = ""


@dataclass(frozen=True, slots=True)
class Told:
    """A change as kept for its owner (the cursor is the store's) and as streamed."""

    subscription_id: str
    tag: str
    measure: str
    kind: ChangeKind
    decision_id: str
    grounds: tuple[IndexEntry, ...]
    changed_at_ms: int
    cursor: str = ""
    genuine: bool = True  # False: held in the owner's stream but not written by the service (passed over, never told)


def subject_member(subject: SubjectRef) -> str:
    """The subject as the store's schedule names it: "<kind> <bucket> <pseudonym>[ <alias>]" (pseudonymised, never
    clear; the alias while a key rotation is under way, so that a judge also finds subscriptions made under it)."""
    text = f"{subject.kind.value} {subject.bucket} {subject.pseudonym}"
    return f"{text} {subject.alias}" if subject.alias else text


def subject_of_member(member: str) -> SubjectRef:
    kind, bucket, pseudonym, *alias = member.split(" ")
    return SubjectRef(IdKind(kind), pseudonym, bucket, alias[0] if alias else "")
