"""gRPC servicer of the real-estate service: proto in, rules, one BatchCheck, a verdict out."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc

from debar.domain_services.judge import Judge
from debar.domain_services.realestate import rules
from debar.domain_services.sanction_client import SanctionClient
from debar.v1 import realestate_pb2, realestate_pb2_grpc, verdict_pb2


class RealEstateServicer(realestate_pb2_grpc.RealEstateServiceServicer):
    def __init__(self, sanction: SanctionClient, clock: Callable[[], float] = time.time) -> None:
        self._judge = Judge(sanction, clock)

    async def CheckPurchase(
        self, request: realestate_pb2.CheckPurchaseRequest, context: grpc.aio.ServicerContext
    ) -> verdict_pb2.Verdict:
        return await self._judge.verdict(context, lambda: rules.purchase_checks(request))
