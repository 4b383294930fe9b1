"""What the sanction service needs from storage. The Redis adapter implements it; tests may pass a fake."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from debar.sanction.domain.chain import LogEntry
from debar.sanction.domain.decisions import Decision, LoggedCheck
from debar.sanction.domain.model import Exemption, IndexChange, IndexEntry, Restriction, SubjectRef


class StoreUnavailable(Exception):
    """Storage did not answer in time or at all."""


class Decider(Protocol):
    """Decides checks and logs them, in one store call."""

    async def decide(self, checks: Sequence[LoggedCheck], catalogue_version: str) -> list[Decision]: ...


class RestrictionStore(Protocol):
    async def ping(self) -> None: ...
    async def revision(self) -> int: ...
    async def bump_revision(self) -> int: ...
    async def decide(self, checks: Sequence[LoggedCheck], catalogue_version: str) -> list[Decision]: ...
    async def index_entries(self, subject: SubjectRef) -> list[IndexEntry]: ...
    async def apply_index(self, changes: Sequence[IndexChange]) -> int: ...
    async def get_restrictions(self, ids: Sequence[str]) -> list[Restriction | None]: ...
    async def put_restriction(self, restriction: Restriction) -> None: ...
    async def write_restrictions(self, restrictions: Sequence[Restriction], changes: Sequence[IndexChange]) -> int:
        """Records and their index changes together (the bulk path)."""
        ...

    async def get_exemption(self, subject: SubjectRef, exemption_id: str) -> Exemption | None: ...
    async def put_exemption(self, exemption: Exemption) -> None: ...
    async def add_import_counts(self, counts: Mapping[str, int]) -> None: ...
    async def import_counts(self) -> dict[str, int]: ...


class RateCounterUnavailable(Exception):
    """The rate counters did not answer: the limiter fails open (counted), since the check that follows fails
    closed on the same Redis anyway."""


class RateCounter(Protocol):
    async def add(self, caller: str, window: int, window_s: int, cost: int) -> int:
        """Adds `cost` to the caller's count in fixed window number `window`; the new count. Raises
        RateCounterUnavailable."""
        ...


class DecisionLog(Protocol):
    """The decision log as the readers, the archiver and `debar log verify` see it: chains of records per bucket."""

    async def get(self, bucket: str, stream_id: str) -> LogEntry | None: ...
    async def ids_for_subject(self, bucket: str, pseudonyms: Sequence[str], offset: int, count: int) -> list[str]: ...
    async def buckets(self) -> list[str]: ...
    async def head(self, bucket: str) -> str | None: ...
    async def base(self, bucket: str) -> tuple[str, str]: ...
    async def trim(self, bucket: str, first_id: str, last_id: str, last_hash: str) -> int: ...
    def walk(self, bucket: str, page: int = 1000) -> AsyncIterator[LogEntry]: ...


class LoggedTexts(Protocol):
    """What reading a logged decision needs from the restriction store: shared texts, replayed spool ids."""

    async def resolve_texts(self, refs: Sequence[str]) -> dict[str, str]: ...
    async def replayed_decision_id(self, bucket: str, spooled_id: str) -> str | None: ...


@dataclass
class RekeyCounts:
    index_fields: int = 0
    records: int = 0
    exemptions: int = 0
    decision_lists: int = 0
    raced: int = 0  # records changed by someone else while being re-keyed: the next run takes them


class Rekeyer(Protocol):
    """Moves every stored pseudonym not under the current key to it (`forward`)."""

    async def run(self, is_current: Callable[[str], bool], forward: Callable[[str], str]) -> RekeyCounts: ...
