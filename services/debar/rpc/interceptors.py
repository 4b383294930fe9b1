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
            self._handlers[method] = self.build(method, handler)
        return self._handlers[method]

    def build(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler | None:
        if not self.applies(method, handler):
            return self.other(method, handler)
        return grpc.unary_unary_rpc_method_handler(
            self.wrap(method, handler.unary_unary),
            request_deserializer=self.deserializer(handler),
            response_serializer=handler.response_serializer,
        )


class InterceptorChain(UnaryInterceptor):
    """Several UnaryInterceptors as one, first = outermost: the server then runs one interceptor per call instead
    of one each (every interceptor costs the aio server an extra await on every call)."""

    def __init__(self, *links: UnaryInterceptor) -> None:
        super().__init__()
        self._links = links

    def build(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler | None:
        built: grpc.RpcMethodHandler | None = handler
        for link in reversed(self._links):  # innermost first, each wraps what the inner ones built
            if built is None:
                return None
            built = link.build(method, built)
        return built
