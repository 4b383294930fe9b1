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
