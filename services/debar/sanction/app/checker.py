"""Answers checks: validates each, reads and logs them in one store call, and keeps the revision floor."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from debar.common.errors import Conflict, DomainError, InvalidField, RateLimited, Unavailable
from debar.common.frozen import quick_init
from debar.common.identifiers import IdKind
from debar.common.times import checked_nanos, checked_time
from debar.sanction.app.failopen import FailOpen
from debar.sanction.app.ports import Decider, RateAsk, RestrictionStore, StoreUnavailable
from debar.sanction.domain.catalogue import Catalogue, FailurePolicy
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.decisions import CheckQuery, Decision, Degradation, LoggedCheck
from debar.sanction.domain.model import Outcome
from debar.sanction.domain.subjects import SubjectResolver

log = structlog.stdlib.get_logger("debar.checks")
_stdlib_log = logging.getLogger("debar.checks")  # looked up once: getLogger takes the logging lock


class CheckObserver(Protocol):
    """Told of every decision and of every check call the store could not answer (metrics, in the wiring)."""

    def decided(self, decisions: Sequence[Decision]) -> None: ...
    def store_unavailable(self) -> None: ...


@quick_init
@dataclass(frozen=True, slots=True)
class CheckInput:
    kind: IdKind | None
    id: str
    measure: str
    at: int | None  # None: now
    min_revision: int = 0
    at_nanos: int = 0  # of the request's Timestamp: only checked for range (a check is to the second)


@dataclass(frozen=True, slots=True)
class Asker:
    """Who asks a call's checks: the authenticated caller and, when it was delegated, the platform it asked for."""

    caller: str
    on_behalf_of: str = ""

    def logged(self, query: CheckQuery, revision: int) -> LoggedCheck:
        return LoggedCheck(query, self.caller, revision, self.on_behalf_of)


class RevisionFloor:
    """The newest data revision this process has seen. Writes bump the revision after their data is stored, so
    any read that starts after the floor was read reflects at least that revision."""

    def __init__(self, store: RestrictionStore) -> None:
        self._store = store
        self.value = 0

    async def refresh(self) -> int:
        self.value = max(self.value, await self._store.revision())
        return self.value

    def saw(self, revision: int) -> None:
        self.value = max(self.value, revision)


class Checker:
    def __init__(
        self,
        store: RestrictionStore,
        catalogue: Catalogue,
        resolver: SubjectResolver,
        floor: RevisionFloor,
        clock: Callable[[], float] = time.time,
        decider: Decider | None = None,
        fail_open: FailOpen | None = None,
        observer: CheckObserver | None = None,
        ids: DecisionIds | None = None,
    ) -> None:
        """`ids`: how decisions are named outside (default: from the resolver's bucket key)."""
        self._ids = ids or DecisionIds.for_placement(resolver.placement)
        self._fail_open = fail_open
        self._observer = observer
        self._store = store
        self._decider: Decider = decider or store
        self._catalogue = catalogue
        self._resolver = resolver
        self._floor = floor
        self._clock = clock

    def parse(self, item: CheckInput, field: str = "") -> CheckQuery:
        if not field:  # the fields' names are only for the errors
            subject = self._resolver.resolve(item.kind, item.id, "subject")
            measure = self._catalogue.measure(item.measure)
            at = int(self._clock()) if item.at is None else item.at
            checked_nanos(item.at_nanos, "at")
            return CheckQuery(subject, measure, checked_time(at, "at"))
        prefix = f"{field}."
        subject = self._resolver.resolve(item.kind, item.id, f"{prefix}subject")
        measure = self._catalogue.measure(item.measure, f"{prefix}measure")
        at = int(self._clock()) if item.at is None else item.at
        checked_nanos(item.at_nanos, f"{prefix}at")
        return CheckQuery(subject, measure, checked_time(at, f"{prefix}at"))

    async def check(
        self, items: Sequence[CheckInput], caller: str, field: str = "", positions: Sequence[int] | None = None,
        on_behalf_of: str = "", rate: RateAsk | None = None,
    ) -> list[Decision | DomainError]:  # fmt: skip
        """One result per item, in order: a decision, or the error for that item alone. `positions`: each item's
        index in the caller's request, for the error fields (default: its place in `items`). `on_behalf_of`: the
        platform a delegated caller asked for, logged with the caller. `rate`: the call's items to count against
        its caller's rate in the same store call (see RateAsk); past it, no item is decided (each is RateLimited)."""
        asker = Asker(caller, on_behalf_of)
        results: list[Decision | DomainError | None] = [None] * len(items)
        queries: list[tuple[int, CheckQuery]] = []
        parse = self.parse
        for i, item in enumerate(items):
            try:
                queries.append((i, parse(item)))
            except InvalidField:  # parsed again, to name the field (its name costs more than the check itself)
                try:
                    parse(item, field.format(i=i if positions is None else positions[i]))
                except InvalidField as error:
                    results[i] = error
                else:
                    raise
        if queries:
            await self._answer(items, queries, asker, results, rate)
        answered = [r for r in results if r is not None]
        self._report([r for r in answered if isinstance(r, Decision)], asker)
        return answered

    def _report(self, decisions: list[Decision], asker: Asker) -> None:
        """Logs a call's refusals and spooled allows in one info line (the decision log in Redis is the record;
        a line per decision made logging the largest cost of a batch), and each decision at debug. Subjects
        appear by pseudonym only."""
        if self._observer is not None and decisions:
            self._observer.decided(decisions)
        notable = [d for d in decisions if d.outcome is Outcome.DENY or d.degradation is not Degradation.NONE]
        if notable:
            log.info(
                "decisions", caller=asker.caller, on_behalf_of=asker.on_behalf_of, decided=len(decisions),
                denied=[d.decision_id for d in notable if d.outcome is Outcome.DENY],
                spooled=[d.decision_id for d in notable if d.degradation is not Degradation.NONE],
            )  # fmt: skip
        if _stdlib_log.isEnabledFor(logging.DEBUG):
            for d in decisions:
                log.debug(
                    "decision", decision_id=d.decision_id, outcome=d.outcome.value, measure=d.query.measure.code,
                    subject=d.query.subject.pseudonym, caller=asker.caller, on_behalf_of=asker.on_behalf_of,
                    degradation=d.degradation.value,
                    grounds=[g.id for g in d.grounds],
                )  # fmt: skip

    async def _answer(
        self,
        items: Sequence[CheckInput],
        queries: list[tuple[int, CheckQuery]],
        asker: Asker,
        results: list[Decision | DomainError | None],
        rate: RateAsk | None = None,
    ) -> None:
        try:
            needed = max(items[i].min_revision for i, _ in queries)
            if needed > self._floor.value:
                await self._floor.refresh()
            floor = self._floor.value
            fresh = queries
            if needed > floor:  # some ask for data newer than the floor, even refreshed
                fresh = [(i, q) for i, q in queries if items[i].min_revision <= floor]
                for i, _ in queries:
                    if items[i].min_revision > floor:
                        results[i] = Conflict(
                            f"min_revision {items[i].min_revision} is ahead of the data (revision {floor})"
                        )
            if not fresh:
                return
            caller, on_behalf_of = asker.caller, asker.on_behalf_of  # Asker.logged, without a call per check
            logged = [LoggedCheck(q, caller, floor, on_behalf_of) for _, q in fresh]
            # The store names decisions by their external ids, which reveal nothing (domain/decision_ids.py).
            decisions = await self._decider.decide(
                logged, self._catalogue.version, [rate] * len(fresh) if rate else (), self._ids.of_record
            )
        except StoreUnavailable:
            if self._observer is not None:
                self._observer.store_unavailable()
            if rate is not None and rate.fail_closed:
                # The rate could not be counted and its limiter fails closed: the call is refused (UNAVAILABLE),
                # so nothing is allowed, nor spooled, for it.
                for i, _ in queries:
                    results[i] = results[i] or Unavailable("the rate counters are unreachable; try again shortly")
                return
            self._degrade(queries, asker, results)
            return
        if rate is not None and rate.refused:
            for i, _ in fresh:
                results[i] = RateLimited(
                    f"caller {rate.key!r} may check at most {rate.limit} items per {rate.window_s} s; slow down"
                )
            return
        for (i, _), decision in zip(fresh, decisions, strict=True):
            results[i] = decision

    def _degrade(
        self, queries: list[tuple[int, CheckQuery]], asker: Asker, results: list[Decision | DomainError | None]
    ) -> None:
        """Redis is unreachable: fail-open measures allow and spool; the rest (and all, if the spool fails too)
        get UNAVAILABLE, never an allow."""
        unanswered = [(i, q) for i, q in queries if results[i] is None]
        open_ = [(i, q) for i, q in unanswered if q.measure.failure_policy is FailurePolicy.OPEN]
        if open_ and self._fail_open is not None:
            checks = [asker.logged(q, self._floor.value) for _, q in open_]
            try:
                for (i, _), decision in zip(
                    open_, self._fail_open.allow_and_spool(checks, self._catalogue.version), strict=True
                ):
                    results[i] = decision
            except OSError:
                pass
        for i, _ in unanswered:
            results[i] = results[i] or Unavailable("restriction data is unreachable; try again shortly")
