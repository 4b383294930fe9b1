"""gRPC servicer of the hotel service: proto in, rules, one BatchCheck, a verdict out."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc

from debar.domain_services.hotel import rules
from debar.domain_services.judge import Judge
from debar.domain_services.sanction_client import SanctionClient
from debar.v1 import hotel_pb2, hotel_pb2_grpc, verdict_pb2


class HotelServicer(hotel_pb2_grpc.HotelServiceServicer):
    def __init__(self, sanction: SanctionClient, clock: Callable[[], float] = time.time) -> None:
        self._judge = Judge(sanction, clock)

    async def CheckBooking(
        self, request: hotel_pb2.CheckBookingRequest, context: grpc.aio.ServicerContext
    ) -> verdict_pb2.Verdict:
        # An unrated hotel needs no check: the rules return none and the verdict is an allow.
        return await self._judge.verdict(context, lambda: rules.booking_checks(request))
