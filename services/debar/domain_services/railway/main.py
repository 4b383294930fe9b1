"""Wiring of the railway service."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from debar.common.settings import Settings
from debar.domain_services.railway.servicer import RailwayServicer
from debar.domain_services.runner import run_domain_service
from debar.domain_services.sanction_client import SanctionClient
from debar.v1 import railway_pb2_grpc

SERVICE_NAME = "debar.v1.RailwayService"


def register(client: SanctionClient, server: grpc.aio.Server) -> None:
    railway_pb2_grpc.add_RailwayServiceServicer_to_server(RailwayServicer(client), server)


async def serve(settings: Settings, on_ready: Callable[[int], None] | None = None) -> None:
    await run_domain_service("railway", SERVICE_NAME, settings, register, on_ready)
