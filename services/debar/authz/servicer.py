"""`envoy.service.auth.v3.Authorization/Check`: the route says what to check and where the subject is, one
BatchCheck asks the sanction service, and answers.py turns the verdict into what Envoy does with the request.

How each failure is answered, and why (an operator's view):
- The route's context_extensions are missing or wrong: a denied 500 naming the key to fix, never an allow. Not a
  400: the person did nothing wrong, and 4xx rates are the client's, while a 5xx is what an operator's alerts
  watch; not the Check call failing either: a failed call is what `failure_mode_allow: true` would let through,
  and it would read as an outage (503) rather than a route to fix. The same for a filter without
  `with_request_body` on a route that reads the body, and for debar's own scopes refusing this service.
- The request lacks a usable subject: 400 naming the header or body field: the caller's to fix.
- The sanction service cannot answer for a fail-closed measure: the Check call fails with UNAVAILABLE, so Envoy
  (with `failure_mode_allow: false`) answers its `status_on_error`: 503 as deploy/envoy configures it. A
  fail-open measure is answered by the sanction service itself (allowed, spooled, DEGRADATION_FAILED_OPEN_SPOOLED)
  and passes through as an allow carrying the spooled decision ids."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping

import grpc
import structlog
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc

from debar.authz import answers
from debar.authz.delegation import platform_of
from debar.authz.route import CHECK, MEASURES, RouteConfig, RouteMisconfigured, route_config
from debar.authz.subject import BadSubject, BodyNotSent, BodyTooLarge, find_subject
from debar.common.errors import InvalidField
from debar.common.identifiers import SubjectId
from debar.domain_services.checks import SubjectCheck
from debar.domain_services.sanction_client import SanctionClient, SanctionFailed, SanctionUnavailable, ask
from debar.domain_services.verdict import build_verdict
from debar.rpc import wire
from debar.rpc.callers import current_caller
from debar.rpc.request_context import bind_request_id

log = structlog.stdlib.get_logger("debar.authz")

SUBJECT_FIELD = "subject"  # how a sanction item error names the subject (SubjectCheck.subject_field)
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
# What a refused whole call says about this deployment, not about the request.
_OUR_IDENTITY_REFUSED = ("PERMISSION_DENIED", "UNAUTHENTICATED")

# Answer kinds, for the metric debar_authz_answers_total{answer}.
ALLOWED, REFUSED, BAD_REQUEST, MISCONFIGURED, RATE_LIMITED, UNAVAILABLE = (
    "allowed", "refused", "bad_request", "misconfigured", "rate_limited", "unavailable"
)  # fmt: skip


class AuthorizationServicer(external_auth_pb2_grpc.AuthorizationServicer):
    def __init__(
        self, sanction: SanctionClient, on_answer: Callable[[str], None] | None = None, *,
        platforms: Mapping[str, str] | None = None, clock: Callable[[], float] = time.time,
        proxies: frozenset[str] | None = None,
    ) -> None:  # fmt: skip
        """`on_answer`: told the kind of every answer (metrics). `platforms`: Envoy's downstream principals -> the
        platform identity each stands for, asked for by delegation (delegation.py); None or empty: authz alone.
        `proxies`: with platforms, the only callers answered (their principals are believed); None: any caller."""
        self._sanction = sanction
        self._on_answer = on_answer
        self._platforms = platforms or {}
        self._proxies = proxies
        self._clock = clock

    async def Check(
        self, request: external_auth_pb2.CheckRequest, context: grpc.aio.ServicerContext
    ) -> external_auth_pb2.CheckResponse:
        if (
            self._proxies is not None
            and (self._proxies or self._platforms)
            and (caller := current_caller()) not in self._proxies
        ):
            # Its source.principal is its own word: believed, it could be asked for as any mapped platform. And its
            # context_extensions are its word too: named proxies are the only callers even before any platform is
            # mapped, or a platform's own credential would choose any domain's measures, asked as authz alone.
            log.warning("refused: the caller is not a proxy of the platforms file", caller=caller)
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"caller {caller!r} is not a proxy named in DEBAR_AUTHZ_PLATFORMS_FILE (proxies): authz answers those",
            )
        attributes = request.attributes
        http = attributes.request.http
        if _SANE_REQUEST_ID.match(http.id):  # Envoy's x-request-id: one id in Envoy's, this and the sanction log
            bind_request_id(http.id)
        platform = platform_of(attributes)
        on_behalf_of = self._platforms.get(platform, "") if platform else ""
        structlog.contextvars.bind_contextvars(platform=platform, on_behalf_of=on_behalf_of, path=http.path[:128])
        try:
            route = route_config(attributes.context_extensions)
        except RouteMisconfigured as error:
            return self._misconfigured(f"context_extensions {error.key}", error.reason)
        try:
            subject = find_subject(http, route.subject)
        except BadSubject as error:
            return self._answer(BAD_REQUEST, answers.bad_subject(error.where, error.field, error.reason))
        except BodyNotSent as error:
            return self._misconfigured("ext_authz filter", str(error))
        except BodyTooLarge as error:
            return self._answer(BAD_REQUEST, answers.body_too_large(str(error)))
        return await self._judge(route, subject, on_behalf_of, context)

    async def _judge(
        self, route: RouteConfig, subject: SubjectId, platform: str, context: grpc.aio.ServicerContext
    ) -> external_auth_pb2.CheckResponse:
        checks = [
            SubjectCheck(subject, measure, None, 0, subject_field=SUBJECT_FIELD, at_field="at")
            for measure in route.measures
        ]
        try:
            responses = await ask(self._sanction, checks, on_behalf_of=platform)
        except InvalidField as error:
            if error.field.split(".")[0] == SUBJECT_FIELD:  # e.g. a minor on a list that never lists minors
                source = route.subject
                return self._answer(BAD_REQUEST, answers.bad_subject(source.where, source.field, error.reason))
            key = CHECK if route.rule_set else MEASURES  # an unknown measure: the catalogue does not have it
            return self._misconfigured(f"context_extensions {key}", error.message)
        except SanctionUnavailable as error:
            if error.code == "RESOURCE_EXHAUSTED":
                log.warning("rate limited by the sanction service")
                return self._answer(RATE_LIMITED, answers.rate_limited())
            if error.code in _OUR_IDENTITY_REFUSED:
                return self._misconfigured("debar authz", f"the sanction service refuses this service ({error.code})")
            self._count(UNAVAILABLE)
            await context.abort(grpc.StatusCode.UNAVAILABLE, error.message)
            raise  # not reached: abort raises
        except SanctionFailed as error:  # e.g. a measure this service's scopes do not cover
            return self._misconfigured("debar authz", error.message)
        verdict = build_verdict(checks, responses, wire.timestamp(self._clock()))
        if verdict.allowed:
            return self._answer(ALLOWED, answers.allowed(verdict))
        for refusal in verdict.refusals:  # masked subject only; the decision id leads to the rest
            log.info("refused", decision_id=refusal.decision_id, measure=refusal.measure, subject=refusal.subject)
        return self._answer(REFUSED, answers.refused(verdict))

    def _misconfigured(self, what: str, reason: str) -> external_auth_pb2.CheckResponse:
        log.warning("misconfigured", what=what, reason=reason)
        return self._answer(MISCONFIGURED, answers.misconfigured(what, reason))

    def _answer(self, kind: str, response: external_auth_pb2.CheckResponse) -> external_auth_pb2.CheckResponse:
        self._count(kind)
        return response

    def _count(self, kind: str) -> None:
        if self._on_answer is not None:
            self._on_answer(kind)
