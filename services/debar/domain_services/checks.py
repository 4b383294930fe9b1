"""The checks a domain service's rules ask the sanction service for, and the pure helpers around them.

No gRPC here: rules build `SubjectCheck`s from a request, and errors name the caller's own fields."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from debar.common.errors import InvalidField
from debar.common.identifiers import IdKind, InvalidIdentifier, SubjectId, validate_identifier
from debar.common.times import checked_nanos, checked_time
from debar.v1 import common_pb2

_ID_KINDS = {common_pb2.ID_TYPE_RIC: IdKind.RIC, common_pb2.ID_TYPE_USCC: IdKind.USCC}

# Checks about the distant past or future are almost always a unit mistake (ms for s) in the caller.


@dataclass(frozen=True, slots=True)
class SubjectCheck:
    """Ask whether `subject` may do `measure`'s act at `at` (None: now).

    `subject_index` is the index the verdict reports (ticket, buyer, principal); `group` says which verdict the
    answer belongs to (a group order gives one verdict per ticket); `subject_field` and `at_field` are where the
    subject and the time sit in the caller's request, so an error names the caller's field."""

    subject: SubjectId
    measure: str
    at: int | None
    subject_index: int
    subject_field: str
    at_field: str
    group: int = 0


def subject_of(message: common_pb2.Subject, field: str, *, only: IdKind | None = None) -> SubjectId:
    """A checksum-valid identifier from the request, or InvalidField naming `field.id_type` / `field.id`."""
    kind = _ID_KINDS.get(message.id_type)
    if kind is None:
        raise InvalidField(f"{field}.id_type", "must be ID_TYPE_RIC or ID_TYPE_USCC")
    if only is not None and kind is not only:
        raise InvalidField(f"{field}.id_type", f"must be ID_TYPE_{only.value}")
    try:
        return validate_identifier(kind, message.id)
    except InvalidIdentifier as error:
        raise InvalidField(f"{field}.id", error.reason) from None


def time_of(value: Timestamp, present: bool, field: str, *, required: bool = False) -> int | None:
    """Epoch seconds of an optional timestamp (None: now), checked for a plausible range."""
    if not present:
        if required:
            raise InvalidField(field, "is required")
        return None
    checked_nanos(value.nanos, field)
    return checked_time(value.seconds, field)


def caller_field(check: SubjectCheck, item_field: str) -> str:
    """Maps a field of a sanction check item (`subject.id`, `at`) to the caller's field (`buyers[1].id`)."""
    head, _, rest = item_field.partition(".")
    if head == "subject":
        return f"{check.subject_field}.{rest}" if rest else check.subject_field
    if head == "at":
        return check.at_field
    return item_field
