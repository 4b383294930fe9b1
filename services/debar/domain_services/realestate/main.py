"""Wiring of the real-estate service."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from debar.common.settings import Settings
from debar.domain_services.realestate.servicer import RealEstateServicer
from debar.domain_services.runner import run_domain_service
from debar.domain_services.sanction_client import SanctionClient
from debar.v1 import realestate_pb2_grpc

SERVICE_NAME = "debar.v1.RealEstateService"


def register(client: SanctionClient, server: grpc.aio.Server) -> None:
    realestate_pb2_grpc.add_RealEstateServiceServicer_to_server(RealEstateServicer(client), server)


async def serve(settings: Settings, on_ready: Callable[[int], None] | None = None) -> None:
    await run_domain_service("realestate", SERVICE_NAME, settings, register, on_ready)
