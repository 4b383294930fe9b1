"""gRPC servicer of the real-estate service: proto in, rules, one BatchCheck, a verdict out."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc

from debar.common.grpc_errors import abort_with
from debar.domain_common.sanction_client import SanctionClient, ask
from debar.domain_common.verdict import build_verdict, timestamp_of
from debar.realestate import rules
from debar.sanction.domain.errors import DomainError
from debar.v1 import realestate_pb2, realestate_pb2_grpc, verdict_pb2


class RealEstateServicer(realestate_pb2_grpc.RealEstateServiceServicer):
    def __init__(self, sanction: SanctionClient, clock: Callable[[], float] = time.time) -> None:
        self._sanction = sanction
        self._clock = clock

    async def CheckPurchase(
        self, request: realestate_pb2.CheckPurchaseRequest, context: grpc.aio.ServicerContext
    ) -> verdict_pb2.Verdict:
        try:
            checks = rules.purchase_checks(request)
            responses = await ask(self._sanction, checks)
        except DomainError as error:
            await abort_with(context, error)
            raise
        return build_verdict(checks, responses, timestamp_of(self._clock()))
