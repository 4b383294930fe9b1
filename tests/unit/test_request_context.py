"""The request interceptor's safety net: a bug in a handler answers INTERNAL with the request id, never grpc.aio's
UNKNOWN carrying the exception's own text; a status the handler chose passes untouched."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from debar.rpc.request_context import RequestInterceptor


class FakeContext:
    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-request-id", "req-42"),)

    def code(self) -> grpc.StatusCode | None:
        return self.aborted[0] if self.aborted else None

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise grpc.aio.AbortError()


async def test_a_bug_answers_internal_with_the_request_id_and_no_internals():
    async def buggy(request: Any, context: Any) -> Any:
        raise RuntimeError("Timeout reading from 10.0.0.7:6379")

    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        await RequestInterceptor().wrap("/debar.v1.X/Y", buggy)(object(), context)
    assert context.aborted == (grpc.StatusCode.INTERNAL, "internal error (request id req-42)")


async def test_a_status_the_handler_chose_passes_untouched():
    async def refusing(request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.NOT_FOUND, "no decision D1")

    context = FakeContext()
    with pytest.raises(grpc.aio.AbortError):
        await RequestInterceptor().wrap("/debar.v1.X/Y", refusing)(object(), context)
    assert context.aborted == (grpc.StatusCode.NOT_FOUND, "no decision D1")


async def test_the_decode_guard_alone_is_still_a_coroutine_grpc_awaits_and_refuses_an_undecodable_request():
    """The decode guard hands the method's awaitable on (no coroutine of its own): outermost, the chain makes the
    handler a coroutine function, which grpc.aio awaits in the call's task (not its thread pool)."""
    import inspect

    from debar.rpc.decode_guard import DecodeGuard
    from debar.rpc.interceptors import InterceptorChain
    from debar.v1 import sanction_pb2

    async def check(request: Any, context: Any) -> Any:
        return b"answer"

    handler = grpc.unary_unary_rpc_method_handler(
        check,
        request_deserializer=sanction_pb2.CheckRequest.FromString,
        response_serializer=sanction_pb2.CheckResponse.SerializeToString,
    )
    for chain in (InterceptorChain(DecodeGuard()), InterceptorChain(RequestInterceptor(), DecodeGuard())):
        built = chain.build("/debar.v1.SanctionService/Check", handler)
        assert built is not None and inspect.iscoroutinefunction(built.unary_unary)
        request = built.request_deserializer(sanction_pb2.CheckRequest(measure="RAIL_G_TRAIN").SerializeToString())
        context = FakeContext()
        assert await built.unary_unary(request, context) == b"answer"
        assert built.response_serializer(b"answer") == b"answer"  # prebuilt bytes pass as they are
        undecodable = built.request_deserializer(b"\x12\x02\xff\xfe")  # measure: invalid UTF-8
        with pytest.raises(grpc.aio.AbortError):
            await built.unary_unary(undecodable, context)
        assert context.aborted is not None and context.aborted[0] is grpc.StatusCode.INVALID_ARGUMENT
        assert context.aborted[1].startswith("request: is not a valid message")
