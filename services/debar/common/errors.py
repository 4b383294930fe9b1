"""Domain errors. Each maps to one gRPC status in the servicer; none of them knows about gRPC."""

from __future__ import annotations


class DomainError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidField(DomainError):
    """Bad input: names the field (dotted path, as in the request) and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    """The request is well-formed but the record's state does not allow it (FAILED_PRECONDITION)."""


class Aborted(DomainError):
    """Other writes to the same record kept coming between reading it and writing it: the write did not take effect,
    and the call may be made again (ABORTED)."""


class AlreadyExists(DomainError):
    """The thing asked to be made exists already (ALREADY_EXISTS); the message names it by id only."""


class Unavailable(DomainError):
    """A dependency (Redis) is unreachable and the measure fails closed."""


class PermissionDenied(DomainError):
    """The caller's scopes do not cover the call or the measure (PERMISSION_DENIED)."""


class RateLimited(DomainError):
    """The caller asked for more checks than its rate allows (RESOURCE_EXHAUSTED)."""


class QuotaExceeded(RateLimited):
    """The caller holds as many of something as it may (e.g. subscriptions): RESOURCE_EXHAUSTED too."""
