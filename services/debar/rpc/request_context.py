"""Per-call context for logs and metrics: a server interceptor that gives every unary call a request id (the
caller's `x-request-id` when it sends a sane one, else a new one), binds it and the method to every log line
logged while the call is served (contextvars), and times the call into RpcMetrics."""

from __future__ import annotations

import itertools
import os
import re
import secrets
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import grpc
import structlog

from debar.rpc.interceptors import Behaviour, UnaryInterceptor
from debar.rpc.metrics import RpcMetrics

REQUEST_ID_HEADER = "x-request-id"
log = structlog.stdlib.get_logger("debar.rpc")
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# Called with the full method name and the response of a call that succeeded (e.g. to count verdicts).
ResponseObserver = Callable[[str, Any], None]


# The request id of the call being served, beside structlog's binding of it: reading structlog's copies the whole
# context and walks every variable in it, on every call a domain service passes the id on.
_REQUEST_ID: ContextVar[str | None] = ContextVar("debar_request_id", default=None)


def bind_request_id(request_id: str) -> None:
    """Names the call being served by another id from here on (authz takes Envoy's x-request-id): on its log lines
    and for the services it calls. Not reset: the call's task, and its context, end with the call."""
    structlog.contextvars.bind_contextvars(request_id=request_id)
    _REQUEST_ID.set(request_id)


def current_request_id() -> str | None:
    """The request id of the call being served in this task, if any (to pass on to the services it calls)."""
    return _REQUEST_ID.get()


# A new request id: this process's random half and a counter (16 hex digits, as before); unique without asking the
# kernel for random bytes on every call. A request id only ties log lines together: nothing trusts it. A forked
# child draws a half of its own.
_PROCESS_PART = secrets.token_hex(4)
_numbers = itertools.count(1)


def _new_process_part() -> None:
    global _PROCESS_PART, _numbers
    _PROCESS_PART, _numbers = secrets.token_hex(4), itertools.count(1)


os.register_at_fork(after_in_child=_new_process_part)


def _request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str) and _SANE_ID.match(value):
            return value
    return f"{_PROCESS_PART}{next(_numbers) & 0xFFFFFFFF:08x}"


def _code_name(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
    if error is None:
        return "OK"
    return "CANCELLED" if isinstance(error, BaseException) and type(error).__name__ == "CancelledError" else "UNKNOWN"


class RequestInterceptor(UnaryInterceptor):
    """Put it first in the server's interceptors, so that the request id is bound (and the clock runs) around
    whatever the others do, access control included. Streaming calls (health Watch, reflection) pass untouched."""

    def __init__(self, metrics: RpcMetrics | None = None, on_response: ResponseObserver | None = None) -> None:
        super().__init__()
        self._metrics = metrics
        self._on_response = on_response

    def wrap(self, method: str, behaviour: Behaviour) -> Behaviour:
        return self._observe(method, behaviour)

    def _observe(self, method: str, behaviour: Behaviour) -> Behaviour:
        latency = self._metrics.latency.labels(method) if self._metrics else None
        handled = self._metrics.handled if self._metrics else None
        by_code: dict[str, Any] = {}  # the handled counter's child per status code, looked up once

        def count(code: str) -> None:
            child = by_code.get(code)
            if child is None and handled is not None:
                child = by_code[code] = handled.labels(method, code)
            if child is not None:
                child.inc()

        async def observed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            request_id = _request_id(context)
            tokens = structlog.contextvars.bind_contextvars(request_id=request_id, method=method)
            own = _REQUEST_ID.set(request_id)
            started = time.perf_counter()
            error: BaseException | None = None
            try:
                response = await behaviour(request, context)
                if self._on_response is not None:
                    self._on_response(method, response)
                return response
            except grpc.aio.AbortError as raised:  # the handler chose its status
                error = raised
                raise
            except Exception as raised:
                # A bug. grpc.aio would answer UNKNOWN with the exception's text (class names, addresses): the
                # caller gets INTERNAL and the request id; the traceback goes to our log.
                error = raised
                log.exception("unhandled error")
                await context.abort(grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})")
            except BaseException as raised:  # cancelled
                error = raised
                raise
            finally:
                if latency is not None:
                    latency.observe(time.perf_counter() - started)
                    count(_code_name(context, error))
                error = None  # this frame, in the error's traceback, must not hold the error (a cycle)
                structlog.contextvars.reset_contextvars(**tokens)
                _REQUEST_ID.reset(own)

        return observed
