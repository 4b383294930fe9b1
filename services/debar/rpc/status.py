"""Domain errors to gRPC status codes and back, in one place."""

from __future__ import annotations

import grpc

from debar.common.errors import (
    Aborted,
    AlreadyExists,
    Conflict,
    DomainError,
    InvalidField,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
)

_CODES: list[tuple[type[DomainError], grpc.StatusCode]] = [
    (InvalidField, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (Aborted, grpc.StatusCode.ABORTED),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (RateLimited, grpc.StatusCode.RESOURCE_EXHAUSTED),
]


def status_code_of(error: DomainError) -> grpc.StatusCode:
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def error_type_of(code: int) -> type[DomainError] | None:
    """The domain error a status code number stands for (as a BatchCheck item's google.rpc.Status carries it);
    None for a code no domain error maps to (INTERNAL, UNKNOWN, ...)."""
    for kind, status in _CODES:
        if status.value[0] == code:
            return kind
    return None


async def abort_with(context: grpc.aio.ServicerContext, error: DomainError) -> None:
    await context.abort(status_code_of(error), error.message)
