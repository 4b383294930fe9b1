"""gRPC servicer of the procurement service: proto in, rules, one BatchCheck, a verdict out."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc

from debar.common.grpc_errors import abort_with
from debar.domain_common.sanction_client import SanctionClient, ask
from debar.domain_common.verdict import build_verdict, timestamp_of
from debar.procurement import rules
from debar.sanction.domain.errors import DomainError
from debar.v1 import procurement_pb2, procurement_pb2_grpc, verdict_pb2


class ProcurementServicer(procurement_pb2_grpc.ProcurementServiceServicer):
    def __init__(self, sanction: SanctionClient, clock: Callable[[], float] = time.time) -> None:
        self._sanction = sanction
        self._clock = clock

    async def CheckBidder(
        self, request: procurement_pb2.CheckBidderRequest, context: grpc.aio.ServicerContext
    ) -> verdict_pb2.Verdict:
        try:
            checks = rules.bidder_checks(request)
            responses = await ask(self._sanction, checks)
        except DomainError as error:
            await abort_with(context, error)
            raise
        return build_verdict(checks, responses, timestamp_of(self._clock()))
