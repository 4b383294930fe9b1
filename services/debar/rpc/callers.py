"""Who is calling, by transport, for every debar server: the client certificate's common name (mtls), a signed
bearer token (token: TLS ends in front of debar), or the declared x-debar-caller header (local: plaintext on
loopback only). Whatever the transport, the name must be an identity (common/callers.py), or the call is
UNAUTHENTICATED. Health and reflection stay open to anyone who got through the transport.

A service that calls another on someone's behalf names them in x-debar-on-behalf-of (a domain service: the
platform that asked it); the sanction service believes that only from callers with the scope `delegate`. When the
one named is a person (reviewer:li, clerk:wang: common/callers.py is_person), the delegate's word is not enough:
the call must also carry that person's own signed token in x-debar-on-behalf-of-token (PrincipalProof), which the
delegate cannot mint, so that one leaked delegate credential cannot act as two reviewers."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import grpc
import structlog

from debar.common.callers import CALLER_NAME, LOCAL, PUBLIC_SERVICES, is_identity, is_person
from debar.common.settings import Settings
from debar.rpc.interceptors import Behaviour, UnaryInterceptor

if TYPE_CHECKING:  # token mode's modules load cryptography and PyJWT (~0.3 s a process): only when it is used
    from debar.rpc.trust import Trust

CALLER_HEADER = "x-debar-caller"
ON_BEHALF_OF_HEADER = "x-debar-on-behalf-of"
ON_BEHALF_OF_TOKEN_HEADER = "x-debar-on-behalf-of-token"

# The identity of the call being served, for a service that passes it on (CallerInterceptor sets it).
_CALLER: ContextVar[str] = ContextVar("debar_caller")


def current_caller() -> str | None:
    return _CALLER.get(None)


class Unauthenticated(Exception):
    pass


def header(metadata: object, name: str) -> str | None:
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if key == name:
            return value if isinstance(value, str) else ""
    return None


class Identify:
    """The caller's identity, by transport (see the module); `default_caller` when a local call names none.
    Token mode needs the trust file and this server's audience (`debar.<service>`)."""

    def __init__(
        self, transport: str, *, trust: Trust | None = None, audience: str = "", default_caller: str = LOCAL,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        if transport == "token" and (trust is None or not audience):
            raise ValueError("token mode needs the trust file and this server's audience")
        self._transport = transport
        self._trust = trust
        self._audience = audience
        self._default = default_caller
        self._clock = clock

    def __call__(self, context: grpc.aio.ServicerContext) -> str:
        if self._transport == "mtls":
            names = context.auth_context().get("x509_common_name") or []
            if len(names) != 1:
                raise Unauthenticated("a client certificate with one common name is required")
            name = bytes(names[0]).decode("utf-8", "replace")
            if not is_identity(name):
                raise Unauthenticated(f"the certificate's common name must be an identity ({CALLER_NAME.pattern})")
            return name
        if self._transport == "token" and self._trust is not None:
            from debar.rpc import tokens

            token = tokens.bearer(context.invocation_metadata())
            if token is None:
                raise Unauthenticated("a signed token is required: authorization: Bearer <JWT>")
            try:
                return tokens.verify(self._trust, token, self._audience, self._clock())
            except tokens.InvalidToken as error:
                raise Unauthenticated(str(error)) from None
        declared = header(context.invocation_metadata(), CALLER_HEADER)
        if declared is None:
            return self._default
        if not is_identity(declared):
            raise Unauthenticated(f"{CALLER_HEADER} must match {CALLER_NAME.pattern}")
        return declared


def identify_callers(settings: Settings, service: str) -> Identify:
    """How `service` knows its callers, from settings (reads the trust file in token mode; SettingsError if bad)."""
    transport = settings.transport()
    trust = None
    if transport == "token":
        from debar.rpc.trust import load_trust

        trust = load_trust(settings.token_trust_file)
    return Identify(transport, trust=trust, audience=f"debar.{service}", default_caller=settings.caller)


class PrincipalProof:
    """A delegated call for a person carries that person's proof: a token (rpc/tokens.py, the same rules as a
    caller's: trusted issuer allowed that subject, EdDSA, this server's audience, at most an hour, jti) whose subject
    is the identity named in x-debar-on-behalf-of. `trust` None: no issuer is trusted, so no person can be named."""

    def __init__(self, trust: Trust | None, audience: str, clock: Callable[[], float] = time.time) -> None:
        self._trust = trust
        self._audience = audience
        self._clock = clock

    @staticmethod
    def needed_for(principal: str) -> bool:
        return is_person(principal)

    def __call__(self, metadata: object, principal: str) -> None:
        """Returns when the call proves `principal`; else Unauthenticated, naming the header."""
        token = header(metadata, ON_BEHALF_OF_TOKEN_HEADER)
        if not token:
            raise Unauthenticated(
                f"acting for {principal!r} needs their own signed token in {ON_BEHALF_OF_TOKEN_HEADER}: a delegate's "
                "word is not proof of a person"
            )
        if self._trust is None:
            raise Unauthenticated(
                f"{ON_BEHALF_OF_TOKEN_HEADER}: no token issuer is trusted here (DEBAR_TOKEN_TRUST_FILE is not set)"
            )
        from debar.rpc import tokens

        try:
            subject = tokens.verify(self._trust, token, self._audience, self._clock())
        except tokens.InvalidToken as error:
            raise Unauthenticated(f"{ON_BEHALF_OF_TOKEN_HEADER}: {error}") from None
        if subject != principal:
            raise Unauthenticated(
                f"{ON_BEHALF_OF_TOKEN_HEADER}: the token is {subject!r}'s, not {principal!r}'s ({ON_BEHALF_OF_HEADER})"
            )


def principal_proofs(settings: Settings, service: str) -> PrincipalProof | None:
    """How `service` checks a delegate's proof of the person it acts for; None when it does not (local mode trusts
    every process on the machine; DEBAR_DELEGATION_PROOF=off). Reads the trust file (SettingsError if bad)."""
    if settings.delegation_proof == "off" or settings.transport() == "local":
        return None
    trust = None
    if settings.token_trust_file:
        from debar.rpc.trust import load_trust

        trust = load_trust(settings.token_trust_file)
    return PrincipalProof(trust, f"debar.{service}")


class CallerInterceptor(UnaryInterceptor):
    """For servers whose every authenticated caller may call every method (the domain services): refuses a call
    without an identity (UNAUTHENTICATED), names the caller on every log line about the call, and keeps it for
    current_caller(). The sanction service has its own, with scopes (sanction/api/access.py)."""

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
            _CALLER.set(caller)
            return await behaviour(request, context)

        return identified
