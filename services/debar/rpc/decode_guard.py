"""A request that is not a valid message of its type (bad UTF-8 in a string field, a corrupt wire format) is the
caller's mistake: INVALID_ARGUMENT, not the UNKNOWN gRPC answers when a request deserializer raises."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from debar.rpc.interceptors import Behaviour, UnaryInterceptor


class _Undecodable:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class DecodeGuard(UnaryInterceptor):
    """Decodes unary requests itself; an undecodable one is refused with INVALID_ARGUMENT before any handler runs.
    Add it last, so that the interceptors before it (access control) still see the call first."""

    def applies(self, method: str, handler: grpc.RpcMethodHandler) -> bool:
        return handler.unary_unary is not None and handler.request_deserializer is not None

    def deserializer(self, handler: grpc.RpcMethodHandler) -> Callable[[bytes], Any] | None:
        return _tolerant(handler.request_deserializer)

    def wrap(self, method: str, behaviour: Behaviour) -> Behaviour:
        return _refusing_undecodable(behaviour)


def _tolerant(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def tolerant(raw: bytes) -> Any:
        try:
            return deserialize(raw)
        except DecodeError as error:
            return _Undecodable(str(error))

    return tolerant


def _refusing_undecodable(behaviour: Callable[[Any, Any], Awaitable[Any]]) -> Callable[[Any, Any], Awaitable[Any]]:
    # Not a coroutine of its own: the behaviour's awaitable is handed on as it is, so a call's task has one frame
    # fewer to pass through at every resumption (the chain's outermost wrapper is the coroutine grpc.aio awaits).
    def refusing(request: Any, context: grpc.aio.ServicerContext) -> Awaitable[Any]:
        if isinstance(request, _Undecodable):
            return context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request: is not a valid message: {request.reason}")
        return behaviour(request, context)

    return refusing
