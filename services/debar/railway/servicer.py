"""gRPC servicer of the railway service: proto in, rules, one BatchCheck, verdicts out."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc

from debar.common.grpc_errors import abort_with
from debar.domain_common.sanction_client import SanctionClient, ask
from debar.domain_common.verdict import build_verdict, build_verdicts, timestamp_of
from debar.railway import rules
from debar.sanction.domain.errors import DomainError
from debar.v1 import railway_pb2, railway_pb2_grpc, verdict_pb2


class RailwayServicer(railway_pb2_grpc.RailwayServiceServicer):
    def __init__(self, sanction: SanctionClient, clock: Callable[[], float] = time.time) -> None:
        self._sanction = sanction
        self._clock = clock

    async def CheckTicket(
        self, request: railway_pb2.CheckTicketRequest, context: grpc.aio.ServicerContext
    ) -> verdict_pb2.Verdict:
        try:
            checks = rules.ticket_checks(request)
            responses = await ask(self._sanction, checks)
        except DomainError as error:
            await abort_with(context, error)
            raise
        return build_verdict(checks, responses, timestamp_of(self._clock()))

    async def CheckOrder(
        self, request: railway_pb2.CheckOrderRequest, context: grpc.aio.ServicerContext
    ) -> railway_pb2.CheckOrderResponse:
        try:
            checks = rules.order_checks(request)
            responses = await ask(self._sanction, checks)
        except DomainError as error:
            await abort_with(context, error)
            raise
        verdicts = build_verdicts(len(request.tickets), checks, responses, timestamp_of(self._clock()))
        return railway_pb2.CheckOrderResponse(verdicts=verdicts)
