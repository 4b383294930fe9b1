"""Wiring of the hotel service."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from debar.common.settings import Settings
from debar.domain_services.hotel.servicer import HotelServicer
from debar.domain_services.runner import run_domain_service
from debar.domain_services.sanction_client import SanctionClient
from debar.v1 import hotel_pb2_grpc

SERVICE_NAME = "debar.v1.HotelService"


def register(client: SanctionClient, server: grpc.aio.Server) -> None:
    hotel_pb2_grpc.add_HotelServiceServicer_to_server(HotelServicer(client), server)


async def serve(settings: Settings, on_ready: Callable[[int], None] | None = None) -> None:
    await run_domain_service("hotel", SERVICE_NAME, settings, register, on_ready)
