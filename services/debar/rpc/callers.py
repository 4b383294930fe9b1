"""Who is calling, by transport, for every debar server: the client certificate's common name (mtls), a signed
bearer token (token: TLS ends in front of debar), or the declared x-debar-caller header (local: plaintext on
loopback only). Health and reflection stay open to anyone who got through the transport."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
import structlog

from debar.common.callers import CALLER_NAME, PUBLIC_SERVICES
from debar.rpc.interceptors import Behaviour, UnaryInterceptor
from debar.rpc.tokens import InvalidToken, bearer, verify

CALLER_HEADER = "x-debar-caller"


class Unauthenticated(Exception):
    pass


class Identify:
    """The caller's name, by transport (see the module); `default_caller` when a local call names none."""

    def __init__(
        self, transport: str, *, token_key: str = "", default_caller: str = "local",
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self._transport = transport
        self._token_key = token_key
        self._default = default_caller
        self._clock = clock

    def __call__(self, context: grpc.aio.ServicerContext) -> str:
        if self._transport == "mtls":
            names = context.auth_context().get("x509_common_name") or []
            if len(names) != 1:
                raise Unauthenticated("a client certificate with one common name is required")
            return bytes(names[0]).decode("utf-8", "replace")
        if self._transport == "token":
            token = bearer(context.invocation_metadata())
            if token is None:
                raise Unauthenticated("a signed token is required: authorization: Bearer <caller>.<expiry>.<sig>")
            try:
                return verify(self._token_key, token, self._clock())
            except InvalidToken as error:
                raise Unauthenticated(str(error)) from None
        for key, value in context.invocation_metadata() or ():
            if key == CALLER_HEADER:
                if not (isinstance(value, str) and CALLER_NAME.match(value)):
                    raise Unauthenticated(f"{CALLER_HEADER} must match {CALLER_NAME.pattern}")
                return value
        return self._default


class CallerInterceptor(UnaryInterceptor):
    """For servers whose every authenticated caller may call every method (the domain services): refuses a call
    without an identity (UNAUTHENTICATED) and names the caller on every log line about the call. The sanction
    service has its own, with scopes (sanction/access.py)."""

    def __init__(self, identify: Identify) -> None:
        super().__init__()
        self._identify = identify

    def applies(self, method: str, handler: grpc.RpcMethodHandler) -> bool:
        return handler.unary_unary is not None and not method.startswith(PUBLIC_SERVICES)

    def wrap(self, method: str, behaviour: Behaviour) -> Behaviour:
        async def identified(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                caller = self._identify(context)
            except Unauthenticated as error:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(error))
            # Not reset on the way out: the interceptors around this one log the call's outcome with it. grpc.aio
            # serves every call in its own task (own context), so the binding ends with the call.
            structlog.contextvars.bind_contextvars(caller=caller)
            return await behaviour(request, context)

        return identified
