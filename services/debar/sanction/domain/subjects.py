"""From an identifier as a caller gives it to a subject as stored."""

from __future__ import annotations

from debar.common.identifiers import (
    IdKind,
    InvalidIdentifier,
    Pseudonymiser,
    SubjectId,
    placement_bucket,
    validate_identifier,
)
from debar.sanction.domain.errors import InvalidField
from debar.sanction.domain.model import SubjectRef


class SubjectResolver:
    def __init__(self, pseudonymiser: Pseudonymiser) -> None:
        self._pseudonymiser = pseudonymiser

    def resolve(self, kind: IdKind | None, raw: str, field: str) -> SubjectRef:
        return self.ref(self.validate(kind, raw, field))

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
        return SubjectRef(subject.kind, self._pseudonymiser.pseudonym(subject), placement_bucket(subject))
