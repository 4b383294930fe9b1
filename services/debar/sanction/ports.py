"""What the sanction service needs from storage. The Redis adapter implements it; tests may pass a fake."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

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
