"""Subscriptions (WatchService): subscribe at booking, be told when the standing changes, from any cause.

Cost. A registry write tells the `WatchHook` which subjects it touched; the hook finds in O(1) each whether any
subscription holds it (a per-subject set) and schedules those only. The judge loop (`keep_judging`) takes scheduled
subjects as they fall due and judges each in O(its subscriptions): reads its index once, evaluates every subscribed
measure, and for each whose standing differs from the one last told runs a real, logged check; the change is told
only when that logged decision differs too. It then schedules the subject's next validity-window boundary (a
restriction or permit starting or ending): time-driven changes are found from that sorted schedule, never by
scanning subscriptions. An overturned objection reaches the record through the Registry, so it is a write like
any other.

Safety. The hook schedules before the write too (a few seconds ahead, unless due sooner), so a crash or a Redis
error between the write and its post-write mark delays the change, never loses it; a claim is a lease, so a judge
that dies is replaced; telling is compare-and-set on the outcome last told, so two judges never tell one change
twice; changes are kept per owner in order, at least once, from any cursor within the retention."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace

from debar.common.errors import Conflict, DomainError, InvalidField, NotFound
from debar.common.times import checked_time
from debar.sanction.app.checker import RevisionFloor
from debar.sanction.app.ports import Decider, Due, RestrictionStore, StoreUnavailable, WatchStore
from debar.sanction.app.unavailable import unavailable_as
from debar.sanction.domain import four_eyes
from debar.sanction.domain import watch as rules
from debar.sanction.domain.catalogue import Catalogue
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.decisions import CheckQuery, LoggedCheck
from debar.sanction.domain.model import SubjectRef
from debar.sanction.domain.subjects import SubjectResolver
from debar.sanction.domain.watch import ChangeKind, Subscription, SubscriptionInput, Told

log = logging.getLogger("debar.watch")

DAY = 86_400
# The pre-write mark: a write that fails after it is judged this much later anyway.
SAFETY_DELAY_S = 5.0
CLAIM_LEASE_S = 5.0  # a judge that dies mid-claim delays its subjects this long; one slower is judged twice (harmless)
CLAIM_BATCH = 100
CHANGES_PAGE = 100
UNFINISHED_RETRY_S = 1
JUDGE_CONCURRENCY = 8  # subjects judged at once by one server (the Redis pool is shared with the checks)


@dataclass(frozen=True)
class WatchLimits:
    quota: int  # live subscriptions per owner
    retention_days: int
    heartbeat_s: float
    poll_s: float
    max_ahead_days: int

    @property
    def retention_s(self) -> int:
        return self.retention_days * DAY


@dataclass
class WatchStats:
    """Plain counters, exported by whoever wires metrics."""

    subscribed: int = 0
    judged: int = 0  # subjects judged
    decided: int = 0  # logged checks made because a standing seemed to differ
    restricted: int = 0  # changes told, by kind
    lifted: int = 0
    streams: int = 0  # Changes streams open now


@dataclass(frozen=True, slots=True)
class Heartbeat:
    cursor: str
    at_ms: int


class Signal:
    """Wakes every waiter at once (a change told, a subject scheduled, in this process)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout_s)


class WatchHook:
    """What the Registry calls around a write touching subjects (app/registry.py): before the write, the watched
    ones are scheduled a little ahead (unless due sooner), so that a write whose process dies before `after` is
    judged anyway; after it, the watched ones (asked again: a subscription may have been made meanwhile) are
    scheduled now. A subject no subscription holds costs one lookup each time, nothing more."""

    def __init__(self, store: WatchStore, clock: Callable[[], float], wake: Signal) -> None:
        self._store = store
        self._clock = clock
        self._wake = wake

    async def before(self, subjects: Sequence[SubjectRef]) -> None:
        watched = await self._store.watched(_distinct(subjects))
        if watched:
            await self._store.schedule(watched, self._clock() + SAFETY_DELAY_S, earlier_only=True)

    async def after(self, subjects: Sequence[SubjectRef]) -> None:
        watched = await self._store.watched(_distinct(subjects))
        if watched:
            await self._store.schedule(watched, self._clock())
            self._wake.fire()


def _distinct(subjects: Sequence[SubjectRef]) -> list[SubjectRef]:
    return list({(s.kind, s.bucket, s.pseudonym): s for s in subjects}.values())


class Watch:
    def __init__(
        self,
        store: WatchStore,
        index: RestrictionStore,
        decider: Decider,
        catalogue: Catalogue,
        resolver: SubjectResolver,
        floor: RevisionFloor,
        limits: WatchLimits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._index = index
        self._decider = decider
        self._catalogue = catalogue
        self._alone_overrides = four_eyes.one_identity_sources(catalogue)  # the check rule's (domain/rules.py)
        self._resolver = resolver
        self._ids = DecisionIds.for_placement(resolver.placement)  # a change names its decision as a check does
        self._floor = floor
        self.limits = limits
        self._clock = clock
        self.wake = Signal()  # the judge loop: something was scheduled
        self.told = Signal()  # the change streams: something was told
        self.hook = WatchHook(store, clock, self.wake)
        self.stats = WatchStats()

    # -- subscribing ---------------------------------------------------------------------------------------

    def _build(self, owner: str, item: SubscriptionInput, field: str, now: int) -> Subscription:
        prefix = f"{field}." if field else ""
        subject = self._resolver.resolve(item.kind, item.id, f"{prefix}subject")
        if not item.measures:
            raise InvalidField(f"{prefix}measures", "name at least one measure")
        if len(item.measures) > rules.MAX_MEASURES:
            raise InvalidField(f"{prefix}measures", f"at most {rules.MAX_MEASURES}")
        for i, code in enumerate(item.measures):
            self._catalogue.measure(code, f"{prefix}measures[{i}]")
        measures = tuple(self._catalogue.codes_of(self._catalogue.mask_of(tuple(item.measures))))
        until = item.until if item.until is None else checked_time(item.until, f"{prefix}until")
        until = rules.check_until(until, now, self.limits.max_ahead_days * DAY, f"{prefix}until")
        tag = rules.check_tag(item.tag, f"{prefix}tag")
        return Subscription(rules.new_subscription_id(), owner, subject, measures, until, tag, now)

    @unavailable_as("subscription data")
    async def subscribe(self, owner: str, items: Sequence[SubscriptionInput], field: str = "") -> list[
        Subscription | DomainError
    ]:  # fmt: skip
        """One result per item, in order. The standing now is each subscription's baseline: changes are told from
        it on."""
        now = int(self._clock())
        results: list[Subscription | DomainError] = []
        built: list[Subscription] = []
        for i, item in enumerate(items):
            try:
                sub = self._build(owner, item, field.format(i=i), now)
            except DomainError as error:
                results.append(error)
                continue
            results.append(sub)
            built.append(sub)
        if not built:
            return results
        # Order matters: the subjects' sets first, the baseline read after. A write stored before the baseline is
        # read is in it; one stored after finds the set when it asks (WatchHook.after) and has the subject judged.
        await self._store.hold(built)
        entries = await self._index.index_entries_many([s.subject for s in built])
        based = {
            s.id: replace(s, told=rules.baseline(found, self._masks(s.measures), now, self._alone_overrides))
            for s, found in zip(built, entries, strict=True)
        }
        held = await self._store.add(owner, list(based.values()), self.limits.quota, now)
        if held is not None:
            await self._store.release(built)
            try:
                rules.check_quota(held, len(based), self.limits.quota, owner)
            except DomainError as error:
                return [error if isinstance(r, Subscription) else r for r in results]
        self.stats.subscribed += len(based)
        return [based[r.id] if isinstance(r, Subscription) else r for r in results]

    @unavailable_as("subscription data")
    async def unsubscribe(self, owner: str, subscription_id: str) -> None:
        sid = rules.check_subscription_id(subscription_id)
        if not await self._store.remove(owner, sid, int(self._clock())):
            raise NotFound(f"no subscription {sid} of yours")

    def _masks(self, measures: Sequence[str]) -> dict[str, int]:
        return {code: self._catalogue.measure(code).mask for code in measures}

    # -- judging -------------------------------------------------------------------------------------------

    async def judge(self, subject: SubjectRef) -> int | None:
        """Tells every change of the subject's standing for its subscriptions; the next time it may change on its
        own (None: not before they end). A subscription still being made is judged again shortly: the write that
        scheduled the subject may have come after its baseline."""
        now = int(self._clock())
        if not self._resolver.is_current(subject.pseudonym):  # named under a key being rotated out: look under both
            subject = replace(subject, pseudonym=self._resolver.current(subject.pseudonym), alias=subject.pseudonym)
        subs, unfinished = await self._store.subscriptions_of(subject, now)
        self.stats.judged += 1
        again = now + UNFINISHED_RETRY_S if unfinished else None
        if not subs:
            return again
        entries = await self._index.index_entries(subject)
        masks = self._masks(sorted({c for s in subs for c in s.measures}))
        differences = rules.differences(subs, entries, masks, now, self._alone_overrides)
        if differences:
            checks = []
            for d in differences:
                caller, principal = rules.split_owner(d.subscription.owner)
                query = CheckQuery(subject, self._catalogue.measure(d.measure), now)
                checks.append(LoggedCheck(query, caller, self._floor.value, principal))
            decisions = await self._decider.decide(checks, self._catalogue.version, (), self._ids.of_record)
            self.stats.decided += len(decisions)
            for d, decision in zip(differences, decisions, strict=True):
                kind = rules.change_kind(d.told, decision.outcome)
                if kind is None:
                    continue
                change = Told(
                    d.subscription.id, d.subscription.tag, d.measure, kind, decision.decision_id, decision.grounds,
                    decision.decided_at_ms,
                )  # fmt: skip
                cursor = await self._store.tell(
                    d.subscription, d.measure, d.told, decision.outcome, change, self.limits.retention_s
                )
                if cursor is not None:
                    if kind is ChangeKind.BECAME_RESTRICTED:
                        self.stats.restricted += 1
                    else:
                        self.stats.lifted += 1
                    self.told.fire()
        mask = 0
        for m in masks.values():
            mask |= m
        boundary = rules.next_boundary(entries, mask, now, max(s.until for s in subs))
        return min(t for t in (boundary, again) if t is not None) if boundary or again else None

    async def judge_due(self) -> int:
        """Judges the subjects due now, several at once (each subject is claimed by one judge only, so its changes
        stay in order); how many."""
        due = await self._store.claim(self._clock(), CLAIM_LEASE_S, CLAIM_BATCH)
        for at in range(0, len(due), JUDGE_CONCURRENCY):
            await asyncio.gather(*(self._judge_one(item) for item in due[at : at + JUDGE_CONCURRENCY]))
        return len(due)

    async def _judge_one(self, item: Due) -> None:
        try:
            next_at = await self.judge(item.subject)
        except StoreUnavailable:
            raise
        except Exception:  # one subject's failure must not stop the others: its claim lapses, it is retried
            log.exception("judging a watched subject failed; retried after the lease")
            return
        await self._store.done(item, next_at, self._clock())

    # -- telling -------------------------------------------------------------------------------------------

    def _start(self, after_cursor: str) -> str:
        position = rules.check_cursor(after_cursor)
        if position is None:
            return ""
        oldest_ms = int(self._clock() * 1000) - self.limits.retention_s * 1000
        if position[0] < oldest_ms:
            raise Conflict(
                f"after_cursor is older than the {self.limits.retention_days} days changes are kept; "
                "re-check every booking, then listen from an empty cursor"
            )
        return f"{position[0]}-{position[1]}"

    async def follow(self, owner: str, after_cursor: str) -> AsyncIterator[Told | Heartbeat]:
        """The owner's changes after the cursor, then live, with a heartbeat when idle; ends only when the caller
        stops reading. Raises InvalidField or Conflict (a cursor past the retention) before the first item."""
        position = self._start(after_cursor)
        quiet_since = time.monotonic()
        self.stats.streams += 1
        try:
            async for item in self._follow(owner, position, quiet_since):
                yield item
        finally:
            self.stats.streams -= 1

    async def _follow(self, owner: str, position: str, quiet_since: float) -> AsyncIterator[Told | Heartbeat]:
        while True:
            try:
                page = await self._store.changes(owner, position, CHANGES_PAGE)
            except StoreUnavailable:
                page = []  # the stream stays open; heartbeats stop only if this lasts (the client sees no beat)
                await asyncio.sleep(self.limits.poll_s)
            for change in page:
                if not change.genuine:
                    log.warning(
                        "watch: change %s of %s's stream was not written by the service (its MAC does not match): "
                        "written into Redis behind its back, not told", change.cursor, owner,
                    )  # fmt: skip
                    position = change.cursor
                    continue
                yield change
                position = change.cursor
            if page:
                quiet_since = time.monotonic()
                continue
            if time.monotonic() - quiet_since >= self.limits.heartbeat_s:
                yield Heartbeat(position, int(self._clock() * 1000))
                quiet_since = time.monotonic()
            wait = min(self.limits.poll_s, max(0.0, self.limits.heartbeat_s - (time.monotonic() - quiet_since)))
            await self.told.wait(wait)


async def keep_judging(watch: Watch) -> None:
    """The judge loop of a sanction server (every replica may run one: claims are leases)."""
    while True:
        try:
            judged = await watch.judge_due()
        except StoreUnavailable as error:
            log.warning("watch: Redis unreachable, judging paused: %s", error)
            judged = 0
        if judged < CLAIM_BATCH:
            await watch.wake.wait(watch.limits.poll_s)
