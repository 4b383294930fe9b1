"""The one way debar's server interceptors wrap a unary method: each method's handler is built once (cached per
method) around the service's own behaviour. A subclass says which methods it wraps and how. A server applies them
with wrap_handlers (each handler wrapped as it is added); they still work as grpc.aio interceptors too."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
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
            self._handlers[method] = awaited(self.build(method, handler))
        return self._handlers[method]

    def build(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler | None:
        if not self.applies(method, handler):
            return self.other(method, handler)
        return grpc.unary_unary_rpc_method_handler(
            self.wrap(method, handler.unary_unary),
            request_deserializer=self.deserializer(handler),
            response_serializer=passing_bytes(handler.response_serializer),
        )


def passing_bytes(serialize: Callable[[Any], bytes] | None) -> Callable[[Any], bytes] | None:
    """The method's response serializer, taking prebuilt wire bytes too: a wrapped handler may answer with the
    bytes of its response message (e.g. Check, api/convert.check_answer), which are sent as they are."""
    if serialize is None or getattr(serialize, "passes_bytes", False):
        return serialize

    def serialized(response: Any) -> bytes:
        return response if response.__class__ is bytes else serialize(response)

    serialized.passes_bytes = True  # type: ignore[attr-defined]
    return serialized


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
        return freeing_refused(awaited(built))


def awaited(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler | None:
    """`handler` with a unary behaviour grpc.aio runs as a coroutine: an inner wrapper may be a plain function
    returning the awaitable (DecodeGuard's), which grpc.aio would run in its thread pool were it outermost."""
    if handler is None or handler.unary_unary is None or inspect.iscoroutinefunction(handler.unary_unary):
        return handler
    behaviour = handler.unary_unary

    async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await behaviour(request, context)

    return handler._replace(unary_unary=run)


def freeing_refused(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler | None:
    """`handler`, whose calls that end in an exception free their request when they end. grpc.aio keeps an aborted
    call's AbortError on the call's state, and the error's traceback held every frame it passed through, which hold
    the request and the call's context, which holds that state: a cycle, freed only by the cyclic collector, which
    a server runs seldom (common/heap.py), so refused calls of megabytes each piled up; a call cancelled (its
    deadline passed, its caller gone) made one too, through a frame that kept the CancelledError
    (tests/integration/test_refused_memory.py). Whatever ends a call goes on without its traceback or the error it
    was raised while handling (the caller gets a status and a message; a bug's traceback was logged inside, by
    request_context), and this frame lets go of the request and the context before it does. Unary methods and
    server streams written as async generators (WatchService.Changes); others unchanged."""
    if handler is None:
        return None
    if handler.unary_unary is not None:
        unary = handler.unary_unary

        async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await unary(request, context)
            except BaseException as ended:
                del request, context
                _unlink(ended)
                raise

        return handler._replace(unary_unary=run)
    if handler.unary_stream is not None and inspect.isasyncgenfunction(handler.unary_stream):
        stream = handler.unary_stream

        async def streamed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                async for item in stream(request, context):
                    yield item
            except BaseException as ended:
                del request, context
                _unlink(ended)
                raise

        return handler._replace(unary_stream=streamed)
    return handler


def _unlink(error: BaseException) -> None:
    error.__traceback__ = error.__context__ = error.__cause__ = None


class _Wrapped(grpc.GenericRpcHandler):
    """A generic handler whose methods' handlers are the interceptor's, built once per method."""

    def __init__(self, inner: grpc.GenericRpcHandler, interceptor: UnaryInterceptor) -> None:
        self._inner = inner
        self._interceptor = interceptor
        self._built: dict[str, grpc.RpcMethodHandler | None] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        if method in self._built:
            return self._built[method]
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None  # not this service's (and not kept: callers choose the names)
        built = self._built[method] = self._interceptor.build(method, handler)
        return built


def wrap_handlers(server: grpc.aio.Server, interceptor: UnaryInterceptor) -> None:
    """Every handler added to `server` from now on (generic or registered, as the generated add_*_to_server
    functions add both) is wrapped by `interceptor`: what a grpc.aio interceptor does, without the server awaiting
    the interceptor on every call to find the method's handler."""
    add_generic, add_registered = server.add_generic_rpc_handlers, server.add_registered_method_handlers

    def generic(handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        add_generic([_Wrapped(handler, interceptor) for handler in handlers])

    def registered(service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        built = {name: interceptor.build(f"/{service}/{name}", handler) for name, handler in handlers.items()}
        add_registered(service, {name: handler for name, handler in built.items() if handler is not None})

    server.add_generic_rpc_handlers = generic  # type: ignore[method-assign]
    server.add_registered_method_handlers = registered  # type: ignore[method-assign]
