"""gRPC servicer of the procurement service: proto in, rules, one BatchCheck, a verdict out."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc

from debar.domain_services.judge import Judge
from debar.domain_services.procurement import rules
from debar.domain_services.sanction_client import SanctionClient
from debar.v1 import procurement_pb2, procurement_pb2_grpc, verdict_pb2


class ProcurementServicer(procurement_pb2_grpc.ProcurementServiceServicer):
    def __init__(self, sanction: SanctionClient, clock: Callable[[], float] = time.time) -> None:
        self._judge = Judge(sanction, clock)

    async def CheckBidder(
        self, request: procurement_pb2.CheckBidderRequest, context: grpc.aio.ServicerContext
    ) -> verdict_pb2.Verdict:
        return await self._judge.verdict(context, lambda: rules.bidder_checks(request))
