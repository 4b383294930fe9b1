"""The domain services' one way to the sanction service: a reused channel, a deadline on every call, who calls
(this service: by its certificate, its own signed token, or its name in local mode) and for whom (the platform that
asked: x-debar-on-behalf-of), and failures turned into domain errors (never into an allow)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from debar.common.errors import DomainError, InvalidField, Unavailable
from debar.common.settings import Settings
from debar.domain_services.checks import SubjectCheck, caller_field
from debar.rpc import tls, wire
from debar.rpc.callers import CALLER_HEADER, ON_BEHALF_OF_HEADER
from debar.rpc.request_context import REQUEST_ID_HEADER, current_request_id
from debar.rpc.status import error_type_of
from debar.v1 import common_pb2, sanction_pb2, sanction_pb2_grpc

if TYPE_CHECKING:  # token mode's module loads cryptography and PyJWT: only when a signing key is set
    from debar.rpc.tokens import Signer

log = logging.getLogger("debar.sanction_client")

SANCTION_SERVICE = "debar.v1.SanctionService"
HEALTH_DEADLINE_S = 0.5
TOKEN_LIFETIME_S = 300  # renewed halfway

_ITEM_FIELD = re.compile(r"^items\[(\d+)\]\.(\S+): (.*)$", re.DOTALL)
# Reconnect quickly once the sanction service is back, instead of gRPC's default backoff of up to two minutes.
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


class SanctionUnavailable(Unavailable):
    """The sanction service did not answer in time, or said it cannot: the check is refused, not allowed. `code`:
    the gRPC status name the call failed with (UNAVAILABLE for an item whose data is unreachable)."""

    def __init__(self, message: str, code: str = "UNAVAILABLE") -> None:
        super().__init__(message)
        self.code = code


class SanctionFailed(DomainError):
    """The sanction service answered something this service cannot use (a bug on one side): INTERNAL."""


class SanctionClient:
    def __init__(
        self, channel: grpc.aio.Channel, caller: str, timeout_s: float, signer: Signer | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        """With mTLS the server knows the caller by this process's certificate; `signer`: this service's own signed
        tokens (TLS ends in front of the sanction service); else the x-debar-caller header (local mode). `on_error`:
        told the status code name of every failed BatchCheck (metrics)."""
        self._on_error = on_error
        self._channel = channel
        self._stub = sanction_pb2_grpc.SanctionServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)
        self._caller = caller
        self._signer = signer
        self._timeout_s = timeout_s

    @classmethod
    def connect(
        cls, address: str, caller: str, timeout_s: float, settings: Settings | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> SanctionClient:  # fmt: skip
        """Called from a service's wiring, inside its event loop; the channel is reused for every call. With
        `settings`: mTLS with this process's certificate when configured, else tokens signed with
        DEBAR_TOKEN_SIGNING_KEY (as `caller`, for the sanction service) when it is set."""
        if settings is None:
            channel = grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
            return cls(channel, caller, timeout_s, on_error=on_error)
        signer = None
        if settings.token_signing_key and not settings.tls:
            from debar.rpc.tokens import Signer, audience_of, load_signing_key

            key = load_signing_key(settings.token_signing_key)
            issuer = settings.token_issuer or caller
            signer = Signer(key, issuer, caller, audience_of("sanction"), TOKEN_LIFETIME_S)
        return cls(tls.aio_channel(settings, address, _CHANNEL_OPTIONS), caller, timeout_s, signer, on_error)

    def _metadata(self, on_behalf_of: str = "") -> tuple[tuple[str, str], ...]:
        """Who calls, and the request id of the call being served, so both services' logs share it; with
        `on_behalf_of`, for whom (see batch_check)."""
        request_id = current_request_id()
        extra: tuple[tuple[str, str], ...] = ((REQUEST_ID_HEADER, request_id),) if request_id else ()
        if on_behalf_of:
            extra = (*extra, (ON_BEHALF_OF_HEADER, on_behalf_of))
        if self._signer is not None:
            return (("authorization", f"Bearer {self._signer.token()}"), *extra)
        return ((CALLER_HEADER, self._caller), *extra)

    async def batch_check(
        self, items: list[sanction_pb2.CheckRequest], on_behalf_of: str = ""
    ) -> list[sanction_pb2.BatchResult]:
        """One result per item, in order. Raises SanctionUnavailable when the service cannot be asked.

        `on_behalf_of`: the platform this service asks for, sent as x-debar-on-behalf-of (issue 11's delegation:
        the sanction service honours it only from callers with the `delegate` scope)."""
        try:
            response = await self._stub.BatchCheck(
                sanction_pb2.BatchCheckRequest(items=items), timeout=self._timeout_s,
                metadata=self._metadata(on_behalf_of),
            )  # fmt: skip
        except grpc.aio.AioRpcError as error:
            log.warning("sanction BatchCheck of %d checks failed: %s", len(items), error.code().name)
            if self._on_error is not None:
                self._on_error(error.code().name)
            code = error.code().name
            if code == "RESOURCE_EXHAUSTED":  # the rate of the caller (or of the platform it asks for) there
                raise SanctionUnavailable(f"the sanction service refused: {error.details()}", code) from None
            raise SanctionUnavailable(f"restriction checks are unavailable ({code}); try again", code) from None
        if len(response.results) != len(items):
            if self._on_error is not None:
                self._on_error("MISMATCH")
            raise SanctionFailed(f"the sanction service answered {len(response.results)} of {len(items)} checks")
        return list(response.results)

    async def serving(self) -> bool:
        """Readiness: the sanction service says it is SERVING."""
        try:
            answer = await self._health.Check(
                health_pb2.HealthCheckRequest(service=SANCTION_SERVICE),
                timeout=min(HEALTH_DEADLINE_S, self._timeout_s),
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        await self._channel.close()


def check_request(check: SubjectCheck) -> sanction_pb2.CheckRequest:
    return sanction_pb2.CheckRequest(
        subject=common_pb2.Subject(id_type=wire.id_type(check.subject.kind), id=check.subject.number),
        measure=check.measure,
        at=wire.timestamp(check.at),  # None (now): unset
    )


async def ask(
    client: SanctionClient, checks: Sequence[SubjectCheck], on_behalf_of: str = ""
) -> list[sanction_pb2.CheckResponse]:
    """Every check in ONE batch; the answers in the same order, or the first item's error as a domain error."""
    if not checks:
        return []
    results = await client.batch_check([check_request(c) for c in checks], on_behalf_of)
    return responses_for(checks, results)


def responses_for(
    checks: Sequence[SubjectCheck], results: Sequence[sanction_pb2.BatchResult]
) -> list[sanction_pb2.CheckResponse]:
    responses = []
    for i, (check, result) in enumerate(zip(checks, results, strict=True)):
        if result.WhichOneof("result") == "error":
            raise item_error(check, i, result.error.code, result.error.message)
        response = result.response
        if response.outcome not in (common_pb2.OUTCOME_ALLOW, common_pb2.OUTCOME_DENY):
            raise SanctionFailed(f"check {i} came back without an outcome")
        responses.append(response)
    return responses


def item_error(check: SubjectCheck, index: int, code: int, message: str) -> DomainError:
    """One failed item fails the caller's request: bad input names the caller's field, unreachable data is
    unavailable, and anything else (e.g. a measure this service may not check) is a failure on our side."""
    kind = error_type_of(code)
    if kind is InvalidField:
        found = _ITEM_FIELD.match(message)
        if found and int(found.group(1)) == index:
            return InvalidField(caller_field(check, found.group(2)), found.group(3))
        return InvalidField(check.subject_field, message)
    if kind is Unavailable:
        return SanctionUnavailable("restriction data is unreachable; try again shortly")
    return SanctionFailed(f"a restriction check failed: {message}")
