"""Access control of the sanction service: who the caller is (by transport), whether it may call the method (a
server interceptor), and, for checks, its rate and the measures it may check (the servicer asks the CheckGate).
The rules themselves are pure, in domain/access.py."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import grpc

from debar.common.callers import PUBLIC_SERVICES
from debar.common.errors import PermissionDenied, RateLimited
from debar.common.settings import SettingsError
from debar.rpc.callers import Identify, Unauthenticated
from debar.rpc.interceptors import Behaviour, UnaryInterceptor
from debar.sanction.app.ports import RateCounter, RateCounterUnavailable
from debar.sanction.domain.access import AccessPolicy, Grant, ScopesError, parse_policy
from debar.sanction.domain.catalogue import Catalogue

log = logging.getLogger("debar.access")

# The grant of the call being served: set by AccessInterceptor around the handler, in the handler's own task.
# No default: a handler served without the interceptor fails instead of running unscoped.
_GRANT: ContextVar[Grant] = ContextVar("debar_grant")


def current_grant() -> Grant:
    return _GRANT.get()


@dataclass
class AccessStats:
    """Plain counters, exported by whoever wires metrics. `flagged`: refused-by-rate calls per caller."""

    unauthenticated: int = 0
    denied_calls: int = 0  # a method outside the caller's scopes
    denied_checks: int = 0  # a checked measure outside the caller's scopes (a Check, or one BatchCheck item)
    rate_limited: int = 0  # calls refused by the caller's rate
    limiter_failures: int = 0  # the counters did not answer: let through (fail open)
    flagged: dict[str, int] = field(default_factory=dict)


class AccessInterceptor(UnaryInterceptor):
    """Identifies every call and refuses a method outside the caller's scopes (PERMISSION_DENIED, counted);
    health and reflection stay open. Streaming methods outside them are refused: none needs a scope yet."""

    def __init__(self, identify: Identify, policy: AccessPolicy, stats: AccessStats) -> None:
        super().__init__()
        self._identify = identify
        self._policy = policy
        self._stats = stats

    def applies(self, method: str, handler: grpc.RpcMethodHandler) -> bool:
        return handler.unary_unary is not None and not method.startswith(PUBLIC_SERVICES)

    def other(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler | None:
        if method.startswith(PUBLIC_SERVICES):
            return handler
        return grpc.unary_unary_rpc_method_handler(self._refuse_stream(method))

    def wrap(self, method: str, behaviour: Behaviour) -> Behaviour:
        return self._guard(method, behaviour)

    def _refuse_stream(self, method: str) -> Behaviour:
        async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
            self._stats.denied_calls += 1
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{method} is open to no caller")

        return refuse

    def _guard(self, method: str, behaviour: Behaviour) -> Behaviour:
        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                caller = self._identify(context)
            except Unauthenticated as error:
                self._stats.unauthenticated += 1
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(error))
            grant = self._policy.grant(caller)
            if not self._policy.may_call(grant, method):
                self._stats.denied_calls += 1
                log.warning("denied: caller %r may not call %s", caller, method)
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"caller {caller!r} may not call {method}")
            token = _GRANT.set(grant)
            try:
                return await behaviour(request, context)
            finally:
                _GRANT.reset(token)

        return guarded


class CheckGate:
    """For the servicer: the caller's check rate (Redis-backed, across replicas) and the measures it may check."""

    def __init__(
        self, policy: AccessPolicy, counter: RateCounter, stats: AccessStats, clock: Callable[[], float] = time.time
    ) -> None:
        self._policy = policy
        self._counter = counter
        self._stats = stats
        self._clock = clock

    async def admit(self, grant: Grant, cost: int) -> None:
        """Counts `cost` checked items against the caller's rate; RateLimited once past it (the caller is flagged).
        When the counters do not answer, the call goes on (fail open, counted): the check itself fails closed."""
        limit = grant.rate
        if limit is None or cost == 0:
            return
        try:
            count = await self._counter.add(grant.caller, limit.window(self._clock()), limit.window_s, cost)
        except RateCounterUnavailable as error:
            self._stats.limiter_failures += 1
            log.warning("rate limiter unavailable, letting %r through: %s", grant.caller, error)
            return
        if not limit.exceeded(count):
            return
        self._stats.rate_limited += 1
        self._stats.flagged[grant.caller] = self._stats.flagged.get(grant.caller, 0) + 1
        if not limit.exceeded(count - cost):  # the first refusal of this window: flag once, not per call
            log.warning(
                "flagged: caller %r asked for more than %d checks in %d s", grant.caller, limit.checks, limit.window_s
            )
        raise RateLimited(
            f"caller {grant.caller!r} may check at most {limit.checks} items per {limit.window_s} s; slow down"
        )

    def may_check(self, grant: Grant, measure: str) -> bool:
        if self._policy.may_check(grant, measure):
            return True
        self._stats.denied_checks += 1
        log.warning("denied: caller %r may not check %s", grant.caller, measure)
        return False

    @staticmethod
    def denial(grant: Grant, measure: str, field: str) -> PermissionDenied:
        return PermissionDenied(f"{field}: caller {grant.caller!r} may not check {measure}")


def load_policy(path: str, catalogue: Catalogue) -> AccessPolicy:
    """The scopes file at `path`, else the packaged data/scopes.json; a bad file stops the start (SettingsError)."""
    where = path or "data/scopes.json (packaged)"
    try:
        if path:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        else:
            data = json.loads(resources.files("debar").joinpath("data/scopes.json").read_text(encoding="utf-8"))
        return parse_policy(data, {code: m.checked_by for code, m in catalogue.measures.items()})
    except OSError as error:
        raise SettingsError(f"DEBAR_SCOPES_FILE: cannot read {where}: {error.strerror}") from None
    except (ValueError, ScopesError) as error:
        raise SettingsError(f"DEBAR_SCOPES_FILE {where}: {error}") from None
