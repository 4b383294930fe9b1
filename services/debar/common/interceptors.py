"""The one way debar's server interceptors wrap a unary method: each method's handler is built once (cached per
method) around the service's own behaviour. A subclass says which methods it wraps and how."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

Behaviour = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


class UnaryInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        self._handlers: dict[str, grpc.RpcMethodHandler | None] = {}

    def applies(self, method: str, handler: grpc.RpcMethodHandler) -> bool:
        """Whether to wrap this method (default: every unary one)."""
        return handler.unary_unary is not None

    def wrap(self, method: str, behaviour: Behaviour) -> Behaviour:
        raise NotImplementedError

    def deserializer(self, handler: grpc.RpcMethodHandler) -> Callable[[bytes], Any] | None:
        return handler.request_deserializer

    def other(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler | None:
        """The handler for a method not wrapped (default: unchanged)."""
        return handler

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if method not in self._handlers:
            if self.applies(method, handler):
                self._handlers[method] = grpc.unary_unary_rpc_method_handler(
                    self.wrap(method, handler.unary_unary),
                    request_deserializer=self.deserializer(handler),
                    response_serializer=handler.response_serializer,
                )
            else:
                self._handlers[method] = self.other(method, handler)
        return self._handlers[method]
