"""From an identifier as a caller gives it to a subject as stored."""

from __future__ import annotations

import functools

from debar.common.errors import InvalidField
from debar.common.identifiers import (
    IdKind,
    InvalidIdentifier,
    Placement,
    Pseudonymiser,
    SubjectId,
    validate_identifier,
)
from debar.sanction.domain.model import SubjectRef


class SubjectResolver:
    def __init__(self, pseudonymiser: Pseudonymiser, placement: Placement, cache_size: int = 100_000) -> None:
        self._pseudonymiser = pseudonymiser
        self._placement = placement
        # Validation and the keyed hash are most of a check's own CPU; the same people are checked again and
        # again (a group order, a return ticket), so valid identifiers are remembered. Invalid ones are not.
        self._cached_ref = functools.lru_cache(maxsize=cache_size)(self._valid_ref)

    @property
    def placement(self) -> Placement:
        return self._placement

    def resolve(self, kind: IdKind | None, raw: str, field: str) -> SubjectRef:
        if kind is None:
            raise InvalidField(f"{field}.id_type", "must be ID_TYPE_RIC or ID_TYPE_USCC")
        try:
            return self._cached_ref(kind, raw)
        except InvalidIdentifier as error:
            raise InvalidField(f"{field}.id", error.reason) from None

    def _valid_ref(self, kind: IdKind, raw: str) -> SubjectRef:
        return self.ref(validate_identifier(kind, raw))

    @staticmethod
    def validate(kind: IdKind | None, raw: str, field: str) -> SubjectId:
        if kind is None:
            raise InvalidField(f"{field}.id_type", "must be ID_TYPE_RIC or ID_TYPE_USCC")
        try:
            return validate_identifier(kind, raw)
        except InvalidIdentifier as error:
            raise InvalidField(f"{field}.id", error.reason) from None

    def all_pseudonyms(self, subject: SubjectId) -> list[str]:
        return self._pseudonymiser.all_pseudonyms(subject)

    def ref(self, subject: SubjectId) -> SubjectRef:
        pseudonym, alias = self._pseudonymiser.pseudonym_and_alias(subject)
        return SubjectRef(subject.kind, pseudonym, self._placement.bucket(subject), alias)

    def same_subject(self, one: str, other: str) -> bool:
        """Two stored pseudonyms, under any keys of the ring, of the same subject."""
        return self._pseudonymiser.same_subject(one, other)

    def current(self, pseudonym: str) -> str:
        """The current pseudonym of a stored one (which may predate a key rotation)."""
        return self._pseudonymiser.forward(pseudonym)

    @property
    def current_key_id(self) -> str:
        return self._pseudonymiser.current_key_id

    def is_current(self, pseudonym: str) -> bool:
        return self._pseudonymiser.is_current(pseudonym)

    @property
    def staged_key_id(self) -> str:
        return self._pseudonymiser.staged_key_id
