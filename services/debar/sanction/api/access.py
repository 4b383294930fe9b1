"""Access control of the sanction service: who the caller is (by transport), for whom it acts (delegation),
whether it may call the method (a server interceptor), and, for checks, its rate and the measures it may check
(the servicer asks the CheckGate). The rules themselves are pure, in domain/access.py.

acting_identity() is the one way a servicer learns who acts in the call it serves: the reviewer, the registry
clerk. Never a name from the request."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar

import grpc
import structlog

from debar.common.callers import CALLER_NAME, LOCAL, PUBLIC_SERVICES, is_identity, is_person
from debar.common.errors import DomainError, InvalidField, PermissionDenied, RateLimited, Unavailable
from debar.common.identifiers import IdKind, SubjectId
from debar.common.settings import SettingsError
from debar.rpc.callers import ON_BEHALF_OF_HEADER, Identify, PrincipalProof, Unauthenticated, header
from debar.rpc.interceptors import Behaviour, UnaryInterceptor
from debar.rpc.status import abort_with, status_code_of
from debar.sanction.app.distinct import DistinctSubjects
from debar.sanction.app.ports import RateAsk, RateCounter, RateCounterUnavailable
from debar.sanction.domain.access import AccessPolicy, Grant, RateLimit, ScopesError, parse_policy
from debar.sanction.domain.catalogue import Catalogue
from debar.sanction.domain.subjects import SubjectResolver

log = logging.getLogger("debar.access")
# The audit log of reads: one line per read, in the service's log stream (JSON in deploy/), logger debar.audit.
audit = structlog.stdlib.get_logger("debar.audit")
MAX_AUDITED_SUBJECTS = 500  # a ListObjections page at most; the count is always given
MAX_CACHED_GRANTS = 4096  # callers' grants worked out once each (AccessInterceptor); emptied when full
T = TypeVar("T")

# The grant of the call being served: set by AccessInterceptor around the handler, in the handler's own task.
# No default: a handler served without the interceptor fails instead of running unscoped.
_GRANT: ContextVar[Grant] = ContextVar("debar_grant")


def current_grant() -> Grant:
    return _GRANT.get()


def acting_identity(claimed: str = "", field: str = "") -> str:
    """Who acts in the call being served: the authenticated identity, or the principal it acts for when delegated.
    `claimed`: a name the request carries in `field` (e.g. ReviewObjectionRequest.reviewer): empty means the
    acting identity; any other name is INVALID_ARGUMENT naming the field, so that no one acts under another name.
    A caller holding `delegate` that names no principal is PERMISSION_DENIED (but `local`): a role is no person; so
    is one naming a principal that is no person (a service's bare name, a platform), whose name nothing proves."""
    grant = current_grant()
    if grant.caller != LOCAL and not grant.on_behalf_of and AccessPolicy.may_delegate(grant):
        # A delegate (the console, a domain service) is a role, not a person: its own name would count as a second
        # reviewer or clerk in four eyes, so in an act that records who acted it must name the person it acts for.
        raise PermissionDenied(
            f"caller {grant.caller!r} holds delegate and acts only for the person it names ({ON_BEHALF_OF_HEADER})"
        )
    if grant.on_behalf_of and grant.on_behalf_of != LOCAL and not is_person(grant.on_behalf_of):
        # Only a person's name is proven (PrincipalProof): a service's or a platform's is the delegate's word, and
        # would let a delegate's credential alone be the second reviewer or clerk.
        raise PermissionDenied(
            f"caller {grant.caller!r} acts for {grant.on_behalf_of!r}, which is no person: an act that records who "
            "acted is done for a person only, with their proof"
        )
    actor = grant.actor
    if claimed and claimed != actor:
        # The claimed name is not repeated: it is the caller's input, of any length.
        raise InvalidField(field, f"must be empty or your own identity {actor!r}: no one acts under another name")
    return actor


@dataclass
class AccessStats:
    """Plain counters, exported by whoever wires metrics. `flagged`: refused-by-rate calls per rate key (the caller,
    or the caller for its principal: `railway/platform:12306`)."""

    unauthenticated: int = 0
    denied_calls: int = 0  # a method outside the caller's scopes
    denied_delegations: int = 0  # x-debar-on-behalf-of from a caller without the scope `delegate`
    denied_checks: int = 0  # a checked measure outside the caller's scopes (a Check, or one BatchCheck item)
    rate_limited: int = 0  # calls refused by the caller's rate
    limiter_failures: int = 0  # the counters did not answer (let through, or refused when failing closed)
    flagged: dict[str, int] = field(default_factory=dict)


class AccessInterceptor(UnaryInterceptor):
    """Identifies every call and refuses a method outside the caller's scopes (PERMISSION_DENIED, counted);
        health and reflection stay open. A server-streaming method (WatchService.Changes) is guarded the same way; any
    other streaming method is refused."""

    def __init__(
        self, identify: Identify, policy: AccessPolicy, stats: AccessStats, proofs: PrincipalProof | None = None
    ) -> None:
        """`proofs`: how a delegated call for a person proves that person (None: the delegate's word is taken, as in
        local mode or DEBAR_DELEGATION_PROOF=off)."""
        super().__init__()
        self._identify = identify
        self._proofs = proofs
        self._policy = policy
        self._stats = stats
        # The policy never changes while the server runs, so a caller's grant (and a delegate's for a principal) is
        # worked out once, not on every call (AccessPolicy.grant copies the entry, acting_for builds scope sets).
        # Bounded: in local and token modes the names come from the callers.
        self._grants: dict[str, Grant] = {}
        self._acting: dict[tuple[str, str], Grant] = {}

    def applies(self, method: str, handler: grpc.RpcMethodHandler) -> bool:
        return handler.unary_unary is not None and not method.startswith(PUBLIC_SERVICES)

    def other(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler | None:
        if method.startswith(PUBLIC_SERVICES):
            return handler
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._guard_stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
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
            token = _GRANT.set(await self._admit(method, context))
            try:
                return await behaviour(request, context)
            finally:
                _GRANT.reset(token)

        return guarded

    def _guard_stream(self, method: str, behaviour: Callable[..., Any]) -> Callable[..., Any]:
        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            _GRANT.set(await self._admit(method, context))  # this call's own task: gone with it
            async for item in behaviour(request, context):
                yield item

        return guarded

    def _grant(self, caller: str) -> Grant:
        grant = self._grants.get(caller)
        if grant is None:
            if len(self._grants) >= MAX_CACHED_GRANTS:
                self._grants.clear()
            grant = self._grants[caller] = self._policy.grant(caller)
        return grant

    def _acting_for(self, grant: Grant, principal: str) -> Grant:
        key = (grant.caller, principal)
        acting = self._acting.get(key)
        if acting is None:
            if len(self._acting) >= MAX_CACHED_GRANTS:
                self._acting.clear()
            acting = self._acting[key] = self._policy.acting_for(grant, principal)
        return acting

    async def _admit(self, method: str, context: grpc.aio.ServicerContext) -> Grant:
        """The call's grant, or the call aborted (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT)."""
        try:
            caller = self._identify(context)
        except Unauthenticated as error:
            self._stats.unauthenticated += 1
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(error))
        grant = self._grant(caller)
        principal = header(context.invocation_metadata(), ON_BEHALF_OF_HEADER)
        if principal is not None:
            if not self._policy.may_delegate(grant):
                self._stats.denied_delegations += 1
                log.warning("denied: caller %r may not act on behalf of others", caller)
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"caller {caller!r} may not act on behalf of others ({ON_BEHALF_OF_HEADER} needs the scope "
                    "delegate)",
                )
            if not is_identity(principal):
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"{ON_BEHALF_OF_HEADER}: must match {CALLER_NAME.pattern}"
                )
            if not self._policy.knows(principal):  # `local` is known in local mode only
                # Unnamed, it would be counted at the delegate's own rate, on a key of its own: any identity
                # the CA knows (an Envoy's, a tool's) asking through a domain service would get that service's.
                self._stats.denied_delegations += 1
                log.warning("denied: caller %r may not act on behalf of %r, named in no scopes entry", caller,
                            principal)  # fmt: skip
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"caller {caller!r} may not act on behalf of {principal!r}: the scopes file names no such "
                    "identity or group",
                )
            if principal != LOCAL and self._policy.may_delegate(self._grant(principal)):
                # The console naming itself (or another delegate) would act as a role again (acting_identity).
                self._stats.denied_delegations += 1
                log.warning("denied: caller %r may not act on behalf of %r, a delegate", caller, principal)
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"caller {caller!r} may not act on behalf of {principal!r}: a delegate acts for people and "
                    "platforms, not for a delegate",
                )
            if self._proofs is not None and self._proofs.needed_for(principal):
                # A delegate's credential is a role's: naming any reviewer would let one leaked console key act as
                # two and defeat four eyes. The person's own token, which the delegate cannot mint, must come too.
                try:
                    self._proofs(context.invocation_metadata(), principal)
                except Unauthenticated as error:
                    self._stats.unauthenticated += 1  # the person is not authenticated (the caller is)
                    log.warning("denied: caller %r acting for %r without their proof: %s", caller, principal, error)
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(error))
            grant = self._acting_for(grant, principal)
        if not self._policy.may_call(grant, method):
            self._stats.denied_calls += 1
            who = f"caller {caller!r}" + (f" for {grant.on_behalf_of!r}" if grant.on_behalf_of else "")
            log.warning("denied: %s may not call %s", who, method)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{who} may not call {method}")
        return grant


class CheckGate:
    """For the servicers: the caller's rate (Redis-backed, across replicas; checked items and reads count against
    it), the measures it may check, and the subjects it touched (the distinct-subjects figure).

    `counted_by_store`: a check's rate is counted by the store in the call that decides the checks (one round
    trip; the servicer asks `ask` for the RateAsk to pass to the checker, then `settle`); else `admit` counts it
    on the RateCounter first (`ask` does that itself and returns None). Reads are always counted by `admit`."""

    def __init__(
        self,
        policy: AccessPolicy,
        counter: RateCounter,
        stats: AccessStats,
        clock: Callable[[], float] = time.time,
        *,
        fail_closed: bool = False,
        distinct: DistinctSubjects | None = None,
        counted_by_store: bool = False,
    ) -> None:
        self._policy = policy
        self._counter = counter
        self._stats = stats
        self._clock = clock
        self._fail_closed = fail_closed
        self._distinct = distinct
        self._counted_by_store = counted_by_store

    async def admit(self, grant: Grant, cost: int) -> None:
        """Counts `cost` items against the caller's rate; RateLimited once past it (the caller is flagged). When the
        counters do not answer (counted): fail open, the call goes on (a check then fails closed on the same Redis
        unless its measure fails open); fail closed (DEBAR_RATE_LIMITER_FAILURE=closed), Unavailable."""
        limit = grant.rate
        if limit is None or cost == 0:
            return
        key = grant.rate_key
        try:
            count = await self._counter.add(key, limit.window(self._clock()), limit.window_s, cost)
        except RateCounterUnavailable as error:
            self._counters_failed(key, str(error))
            return
        self._judge(key, limit, count, cost)

    async def ask(self, grant: Grant, cost: int) -> RateAsk | None:
        """The call's rate to count with its checks, or None: no rate, or counted here already (by `admit`)."""
        limit = grant.rate
        if limit is None or cost == 0:
            return None
        if not self._counted_by_store:
            await self.admit(grant, cost)
            return None
        return RateAsk(
            grant.rate_key, limit.window(self._clock()), limit.window_s, cost, limit.checks,
            fail_closed=self._fail_closed,
        )  # fmt: skip

    def settle(self, grant: Grant, ask: RateAsk | None) -> None:
        """After the checks: RateLimited if the store found the call past its rate (as `admit` would have). A store
        that did not answer is the counters failing, as in `admit` (counted): fail open, the call goes on (its
        checks failed closed on their own, or allowed and spooled); fail closed, Unavailable (and the checker,
        told by the ask, spooled nothing)."""
        if ask is None or not ask.tried:
            return
        if ask.count is None:
            self._counters_failed(ask.key, "the store did not answer")
            return
        assert grant.rate is not None  # an ask is made for a rate
        self._judge(ask.key, grant.rate, ask.count, ask.cost)

    def _counters_failed(self, key: str, error: str) -> None:
        self._stats.limiter_failures += 1
        if self._fail_closed:
            log.warning("rate limiter unavailable, refusing %r (fail closed): %s", key, error)
            raise Unavailable("the rate counters are unreachable; try again shortly") from None
        log.warning("rate limiter unavailable, letting %r through: %s", key, error)

    def _judge(self, key: str, limit: RateLimit, count: int, cost: int) -> None:
        if not limit.exceeded(count):
            return
        self._stats.rate_limited += 1
        self._stats.flagged[key] = self._stats.flagged.get(key, 0) + 1
        if not limit.exceeded(count - cost):  # the first refusal of this window: flag once, not per call
            log.warning("flagged: caller %r asked for more than %d checks in %d s", key, limit.checks, limit.window_s)
        raise RateLimited(f"caller {key!r} may check at most {limit.checks} items per {limit.window_s} s; slow down")

    def saw(self, grant: Grant, pseudonyms: Iterable[str]) -> None:
        """The subjects this call checked or read, for `debar_distinct_subjects{caller}` (buffered, never waits)."""
        if self._distinct is not None:
            self._distinct.saw(grant.rate_key, pseudonyms)

    def may_check(self, grant: Grant, measure: str) -> bool:
        if self._policy.may_check(grant, measure):
            return True
        self._stats.denied_checks += 1
        log.warning("denied: caller %r may not check %s", grant.caller, measure)
        return False

    @staticmethod
    def denial(grant: Grant, measure: str, field: str) -> PermissionDenied:
        return PermissionDenied(f"{field}: caller {grant.caller!r} may not check {measure}")


class ReadGate:
    """Every read of the registry, the decision log and the objections (GetRestriction, ListRestrictions,
    GetDecision, ListDecisions, GetObjection, ListObjections; and FileObjection, RequestReconsideration, whose answers
    tell whose decision it is) counts one against the caller's rate, is written to the audit log (`debar.audit`:
    method, caller, principal, the pseudonyms of the subjects it showed, its status), and counts in the
    distinct-subjects figure. It also judges ownership: who must name the subject, and whether the
    subject named is the one of the record."""

    def __init__(self, gate: CheckGate, policy: AccessPolicy, resolver: SubjectResolver) -> None:
        self._gate = gate
        self._policy = policy
        self._resolver = resolver

    async def serve(
        self,
        context: grpc.aio.ServicerContext,
        method: str,
        read: Callable[[Grant], Awaitable[tuple[T, Sequence[str]]]],
        cost: int = 1,
    ) -> T:
        """Admits the call, runs `read` (its answer and the pseudonyms it shows), audits it, whatever its outcome:
        a refused or failed read is written too (a run of NOT_FOUND is someone guessing ids). `cost`: the items it
        counts against the caller's rate (a SubscribeBatch: its items)."""
        grant = current_grant()
        try:
            await self._gate.admit(grant, cost)
            answer, subjects = await read(grant)
        except DomainError as error:
            self._audit(grant, method, (), status_code_of(error).name)
            await abort_with(context, error)
            raise  # abort raises; this keeps the type checker sure of it
        self._audit(grant, method, subjects, "OK")
        return answer

    def _audit(self, grant: Grant, method: str, subjects: Sequence[str], status: str) -> None:
        unique = sorted(set(subjects))
        self._gate.saw(grant, unique)
        audit.info(
            "read", method=method, caller=grant.caller, on_behalf_of=grant.on_behalf_of, status=status,
            subjects=unique[:MAX_AUDITED_SUBJECTS], subject_count=len(unique),
        )  # fmt: skip

    def asked_pseudonym(self, kind: IdKind | None, raw_id: str) -> str:
        """The pseudonym of the subject a read asked about, for its audit line (the resolver remembers it: the
        read has just resolved the same identifier)."""
        return self._resolver.resolve(kind, raw_id, "subject").pseudonym

    def claimed_subject(self, grant: Grant, kind: IdKind | None, raw_id: str, given: bool) -> SubjectId | None:
        """The subject a request names (validated), or None when it names none and need not (a reviewer). A caller
        who must (see AccessPolicy.sees_every_subject) and names none: InvalidField on `subject`."""
        if not given:
            if self._policy.sees_every_subject(grant):
                return None
            raise InvalidField(
                "subject", "is required: give the identifier of the person or company the record is about"
            )
        return self._resolver.validate(kind, raw_id, "subject")

    def is_subject(self, claimed: SubjectId | None, kind: IdKind, pseudonym: str) -> bool:
        """Whether the record stored under (kind, pseudonym) is about `claimed` (under any key of the ring); no
        claim (a reviewer's call) always matches."""
        if claimed is None:
            return True
        return claimed.kind is kind and pseudonym in self._resolver.all_pseudonyms(claimed)


def load_policy(path: str, catalogue: Catalogue, *, local_mode: bool) -> AccessPolicy:
    """The scopes file at `path`, else the packaged data/scopes.json; a bad file stops the start (SettingsError), and
    so does one granting `local` outside local mode."""
    where = path or "data/scopes.json (packaged)"
    try:
        if path:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        else:
            data = json.loads(resources.files("debar").joinpath("data/scopes.json").read_text(encoding="utf-8"))
        return parse_policy(data, {code: m.checked_by for code, m in catalogue.measures.items()}, local_mode=local_mode)
    except OSError as error:
        raise SettingsError(f"DEBAR_SCOPES_FILE: cannot read {where}: {error.strerror}") from None
    except (ValueError, ScopesError) as error:
        raise SettingsError(f"DEBAR_SCOPES_FILE {where}: {error}") from None
