"""Wiring of the sanction service: the only place that builds its clients and servicers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from debar.common import logs
from debar.common.embedded_redis import EmbeddedRedis
from debar.common.server import GrpcServer, Readiness
from debar.common.settings import Settings
from debar.sanction.bootstrap import build_core
from debar.sanction.decision_servicer import DecisionServicer
from debar.sanction.servicer import RegistryServicer, SanctionServicer
from debar.v1 import decision_pb2_grpc, registry_pb2_grpc, sanction_pb2_grpc

SERVICE_NAMES = ["debar.v1.SanctionService", "debar.v1.RegistryService", "debar.v1.DecisionService"]


async def serve(settings: Settings, on_ready: Callable[[int], None] | None = None) -> None:
    logs.configure("sanction", settings.log_format)
    settings.check_pseudonym_key()
    with contextlib.ExitStack() as stack:
        url = settings.redis_url or stack.enter_context(EmbeddedRedis(settings.data_dir / "redis")).url
        core = build_core(settings, url)
        server = GrpcServer(settings.host, settings.ports["sanction"], SERVICE_NAMES, settings.grace_s)
        sanction_pb2_grpc.add_SanctionServiceServicer_to_server(
            SanctionServicer(core.checker, core.catalogue, settings.max_batch_items, settings.caller),
            server.server,
        )
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(RegistryServicer(core.registry), server.server)
        decision_pb2_grpc.add_DecisionServiceServicer_to_server(DecisionServicer(core.decisions), server.server)  # type: ignore[abstract]

        async def redis_answers() -> bool:
            await core.floor.refresh()  # doubles as the periodic refresh of the revision floor
            return True

        async def catalogue_loaded() -> bool:
            return bool(core.catalogue.measures)

        try:
            await server.run(Readiness({"redis": redis_answers, "catalogue": catalogue_loaded}), on_ready)
        finally:
            await core.close()
