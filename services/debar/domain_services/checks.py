"""The checks a domain service's rules ask the sanction service for, and the pure helpers around them.

No gRPC here: rules build `SubjectCheck`s from a request, and errors name the caller's own fields."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from debar.common.errors import InvalidField
from debar.common.identifiers import IdKind, InvalidIdentifier, SubjectId, validate_identifier
from debar.common.times import checked_time
from debar.rpc import wire
from debar.v1 import common_pb2


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
    kind = wire.id_kind(message.id_type)
    if kind is None:
        raise InvalidField(f"{field}.id_type", "must be ID_TYPE_RIC or ID_TYPE_USCC")
    if only is not None and kind is not only:
        raise InvalidField(f"{field}.id_type", f"must be ID_TYPE_{only.value}")
    try:
        return validate_identifier(kind, message.id)
    except InvalidIdentifier as error:
        raise InvalidField(f"{field}.id", error.reason) from None


def time_of(value: Timestamp, present: bool, field: str, *, required: bool = False) -> int | None:
    """Epoch seconds of an optional timestamp (None: now), checked for a plausible range: a time in the distant
    past or future is almost always a unit mistake (ms for s) in the caller."""
    if not present and required:
        raise InvalidField(field, "is required")
    seconds = wire.seconds(value, present, field)
    return None if seconds is None else checked_time(seconds, field)


def caller_field(check: SubjectCheck, item_field: str) -> str:
    """Maps a field of a sanction check item (`subject.id`, `at`) to the caller's field (`buyers[1].id`)."""
    head, _, rest = item_field.partition(".")
    if head == "subject":
        return f"{check.subject_field}.{rest}" if rest else check.subject_field
    if head == "at":
        return check.at_field
    return item_field
