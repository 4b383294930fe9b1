"""Wiring of the procurement service."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from debar.common.settings import Settings
from debar.domain_services.procurement.servicer import ProcurementServicer
from debar.domain_services.runner import run_domain_service
from debar.domain_services.sanction_client import SanctionClient
from debar.v1 import procurement_pb2_grpc

SERVICE_NAME = "debar.v1.ProcurementService"


def register(client: SanctionClient, server: grpc.aio.Server) -> None:
    procurement_pb2_grpc.add_ProcurementServiceServicer_to_server(ProcurementServicer(client), server)


async def serve(settings: Settings, on_ready: Callable[[int], None] | None = None) -> None:
    await run_domain_service("procurement", SERVICE_NAME, settings, register, on_ready)
