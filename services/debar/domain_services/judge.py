"""What every domain servicer does with a request: its rules name the checks, one BatchCheck answers them, and a
domain error (bad input, sanction service unreachable) becomes the matching gRPC status."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from debar.common.errors import DomainError
from debar.domain_services.checks import SubjectCheck
from debar.domain_services.sanction_client import SanctionClient, ask
from debar.domain_services.verdict import build_verdict
from debar.rpc import wire
from debar.rpc.status import abort_with
from debar.v1 import sanction_pb2, verdict_pb2


class Judge:
    def __init__(self, sanction: SanctionClient, clock: Callable[[], float] = time.time) -> None:
        self._sanction = sanction
        self._clock = clock

    def now(self) -> Timestamp:
        return wire.timestamp(self._clock())

    async def answers(
        self, context: grpc.aio.ServicerContext, make_checks: Callable[[], Sequence[SubjectCheck]]
    ) -> tuple[Sequence[SubjectCheck], list[sanction_pb2.CheckResponse]]:
        try:
            checks = make_checks()
            return checks, await ask(self._sanction, checks)
        except DomainError as error:
            await abort_with(context, error)
            raise

    async def verdict(
        self, context: grpc.aio.ServicerContext, make_checks: Callable[[], Sequence[SubjectCheck]]
    ) -> verdict_pb2.Verdict:
        checks, responses = await self.answers(context, make_checks)
        return build_verdict(checks, responses, self.now())
