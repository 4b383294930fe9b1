"""gRPC servicer of the railway service: proto in, rules, one BatchCheck, verdicts out."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc

from debar.domain_services.judge import Judge
from debar.domain_services.railway import rules
from debar.domain_services.sanction_client import SanctionClient
from debar.domain_services.verdict import build_verdicts
from debar.v1 import railway_pb2, railway_pb2_grpc, verdict_pb2


class RailwayServicer(railway_pb2_grpc.RailwayServiceServicer):
    def __init__(self, sanction: SanctionClient, clock: Callable[[], float] = time.time) -> None:
        self._judge = Judge(sanction, clock)

    async def CheckTicket(
        self, request: railway_pb2.CheckTicketRequest, context: grpc.aio.ServicerContext
    ) -> verdict_pb2.Verdict:
        return await self._judge.verdict(context, lambda: rules.ticket_checks(request))

    async def CheckOrder(
        self, request: railway_pb2.CheckOrderRequest, context: grpc.aio.ServicerContext
    ) -> railway_pb2.CheckOrderResponse:
        checks, responses = await self._judge.answers(context, lambda: rules.order_checks(request))
        return railway_pb2.CheckOrderResponse(
            verdicts=build_verdicts(len(request.tickets), checks, responses, self._judge.now())
        )
