"""What every domain servicer does with a request: its rules name the checks, one BatchCheck answers them, and a
domain error (bad input, sanction service unreachable) becomes the matching gRPC status."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import grpc

from debar.common.errors import DomainError, RateLimited
from debar.domain_services.checks import SubjectCheck
from debar.domain_services.platform_rates import PlatformRates
from debar.domain_services.sanction_client import SanctionClient, SanctionUnavailable, ask
from debar.domain_services.verdict import build_verdict, build_verdicts
from debar.rpc import wire
from debar.rpc.callers import current_caller
from debar.rpc.status import abort_with
from debar.v1 import sanction_pb2, verdict_pb2

Rules = Callable[[], Sequence[SubjectCheck]]  # a service's rules applied to the request being served


class Judge:
    def __init__(
        self, sanction: SanctionClient, clock: Callable[[], float] = time.time, rates: PlatformRates | None = None
    ) -> None:
        """`rates`: each calling platform's own rate here (its checks are counted before any is asked)."""
        self._sanction = sanction
        self._clock = clock
        self._rates = rates or PlatformRates(0, 1)

    async def verdict(self, context: grpc.aio.ServicerContext, rules: Rules) -> verdict_pb2.Verdict:
        """One verdict on every check the rules name."""
        checks, responses = await self._answers(context, rules)
        return build_verdict(checks, responses, wire.timestamp(self._clock()))

    async def verdicts(self, context: grpc.aio.ServicerContext, groups: int, rules: Rules) -> list[verdict_pb2.Verdict]:
        """One verdict per group of checks (SubjectCheck.group), all asked in the same BatchCheck."""
        checks, responses = await self._answers(context, rules)
        return build_verdicts(groups, checks, responses, wire.timestamp(self._clock()))

    async def _answers(
        self, context: grpc.aio.ServicerContext, rules: Rules
    ) -> tuple[Sequence[SubjectCheck], list[sanction_pb2.CheckResponse]]:
        try:
            checks = rules()
            caller = current_caller() or ""
            self._rates.admit(caller, len(checks))
            return checks, await ask(self._sanction, checks, on_behalf_of=caller)
        except SanctionUnavailable as error:
            if error.code == "RESOURCE_EXHAUSTED":  # the caller's own rate at the sanction service (delegated)
                await abort_with(context, RateLimited(error.message))
            await abort_with(context, error)
            raise
        except DomainError as error:
            await abort_with(context, error)
            raise
