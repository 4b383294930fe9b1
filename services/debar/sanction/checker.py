"""Answers checks: validates each, reads and logs them in one store call, and keeps the revision floor."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from debar.common.identifiers import IdKind
from debar.sanction.domain.catalogue import Catalogue
from debar.sanction.domain.decisions import CheckQuery, Decision
from debar.sanction.domain.errors import Conflict, DomainError, InvalidField, Unavailable
from debar.sanction.domain.subjects import SubjectResolver
from debar.sanction.ports import RestrictionStore, StoreUnavailable

# Checks about the distant past or future are almost always a unit mistake (ms for s) in the caller.
EARLIEST_AT = 946684800  # 2000-01-01
LATEST_AT = 4102444800  # 2100-01-01


@dataclass(frozen=True, slots=True)
class CheckInput:
    kind: IdKind | None
    id: str
    measure: str
    at: int | None  # None: now
    min_revision: int = 0


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
    ) -> None:
        self._store = store
        self._catalogue = catalogue
        self._resolver = resolver
        self._floor = floor
        self._clock = clock

    def parse(self, item: CheckInput, field: str = "") -> CheckQuery:
        prefix = f"{field}." if field else ""
        subject = self._resolver.resolve(item.kind, item.id, f"{prefix}subject")
        measure = self._catalogue.measure(item.measure, f"{prefix}measure")
        at = int(self._clock()) if item.at is None else item.at
        if not EARLIEST_AT <= at < LATEST_AT:
            raise InvalidField(f"{prefix}at", "must be between 2000-01-01 and 2100-01-01")
        return CheckQuery(subject, measure, at)

    async def check(self, items: Sequence[CheckInput], caller: str, field: str = "") -> list[Decision | DomainError]:
        """One result per item, in order: a decision, or the error for that item alone."""
        results: list[Decision | DomainError | None] = [None] * len(items)
        queries: list[tuple[int, CheckQuery]] = []
        for i, item in enumerate(items):
            try:
                queries.append((i, self.parse(item, field.format(i=i))))
            except InvalidField as error:
                results[i] = error
        if queries:
            await self._answer(items, queries, caller, results)
        return [r for r in results if r is not None]

    async def _answer(
        self,
        items: Sequence[CheckInput],
        queries: list[tuple[int, CheckQuery]],
        caller: str,
        results: list[Decision | DomainError | None],
    ) -> None:
        try:
            needed = max(items[i].min_revision for i, _ in queries)
            if needed > self._floor.value:
                await self._floor.refresh()
            fresh = [(i, q) for i, q in queries if items[i].min_revision <= self._floor.value]
            for i, _ in queries:
                if items[i].min_revision > self._floor.value:
                    results[i] = Conflict(
                        f"min_revision {items[i].min_revision} is ahead of the data (revision {self._floor.value})"
                    )
            if not fresh:
                return
            decisions = await self._store.decide(
                [q for _, q in fresh], caller, self._catalogue.version, self._floor.value
            )
        except StoreUnavailable:
            for i, _ in queries:
                results[i] = results[i] or Unavailable("restriction data is unreachable; try again shortly")
            return
        for (i, _), decision in zip(fresh, decisions, strict=True):
            results[i] = decision
