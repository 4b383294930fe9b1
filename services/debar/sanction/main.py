"""Wiring of the sanction service: its adapters (on Redis), core and servicers, built here and nowhere else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from debar.common import logs
from debar.common.settings import Settings
from debar.local.embedded_redis import EmbeddedRedis
from debar.rpc.callers import identify_callers
from debar.rpc.metrics import RpcMetrics, serve_metrics
from debar.rpc.request_context import RequestInterceptor
from debar.rpc.server import GrpcServer, Readiness, stop_tasks
from debar.rpc.tls import server_credentials
from debar.sanction.adapters.file_spool import spool_folder
from debar.sanction.adapters.redis_wiring import redis_adapters
from debar.sanction.api.access import AccessInterceptor, AccessStats, CheckGate, ReadGate, load_policy
from debar.sanction.api.decision_servicer import DecisionServicer
from debar.sanction.api.metrics import (
    CheckMetrics,
    DistinctCollector,
    ImportCollector,
    ObjectionCollector,
    StatsCollector,
    WatchCollector,
)
from debar.sanction.api.servicers import RegistryServicer, SanctionServicer
from debar.sanction.api.watch_servicer import WatchServicer
from debar.sanction.app.distinct import DistinctSubjects, keep_flushing
from debar.sanction.app.failopen import keep_replaying
from debar.sanction.app.ports import StoreUnavailable
from debar.sanction.app.watch import keep_judging
from debar.sanction.bootstrap import build_core, subject_resolver, watch_limits
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.v1 import decision_pb2_grpc, registry_pb2_grpc, sanction_pb2_grpc, watch_pb2_grpc

SERVICE_NAMES = [
    "debar.v1.SanctionService", "debar.v1.RegistryService", "debar.v1.DecisionService", "debar.v1.WatchService",
]  # fmt: skip

log = logging.getLogger("debar.failopen")
CLOSE_S = 2.0  # at shutdown, closing the Redis client (its pool and lanes) waits no longer


def _warn_of_unsorted_spool(data_dir: Path, ours: Path) -> None:
    """Spool files from before each Redis had its own spool folder are not replayed: whose log they belong to is
    not known here. An operator who knows moves them into that service's folder."""
    unsorted = sorted((data_dir / "spool").glob("*.jsonl"))
    if unsorted:
        log.warning(
            "%d spool file(s) in %s are not replayed (written before one spool folder per Redis); "
            "if they belong to this service's Redis, move them into %s",
            len(unsorted), data_dir / "spool", ours,
        )  # fmt: skip


async def serve(settings: Settings, on_ready: Callable[[int], None] | None = None) -> None:
    logs.configure("sanction", settings.log_format)
    settings.check_keys()
    credentials = server_credentials(settings)  # refuses an unsafe transport before anything starts
    catalogue = load_default_catalogue()
    # A bad scopes or trust file, or one granting `local` outside local mode, stops the start here.
    policy = load_policy(settings.scopes_file, catalogue, local_mode=settings.transport() == "local")
    identify = identify_callers(settings, "sanction")
    with contextlib.ExitStack() as stack:
        url = settings.redis_location or stack.enter_context(EmbeddedRedis(settings.data_dir / "redis")).url
        registry = CollectorRegistry()
        check_metrics = CheckMetrics(registry)
        core = build_core(
            redis_adapters(settings, url, catalogue), catalogue, subject_resolver(settings), observer=check_metrics,
            watch_limits=watch_limits(settings),
        )  # fmt: skip
        _warn_of_unsorted_spool(settings.data_dir, spool_folder(settings.data_dir, url, settings.redis_prefix))
        access = AccessStats()
        registry.register(StatsCollector(core.spool_replay.stats, access))
        registry.register(ObjectionCollector(core.objections.counts, asyncio.get_running_loop()))
        registry.register(ImportCollector(core.registry.import_counts, asyncio.get_running_loop()))
        assert core.watch is not None  # the Redis adapters have a watch store
        registry.register(WatchCollector(core.watch.stats))
        server = GrpcServer(
            settings.host, settings.ports["sanction"], SERVICE_NAMES, settings.grace_s,
            interceptors=[RequestInterceptor(RpcMetrics(registry)), AccessInterceptor(identify, policy, access)],
            credentials=credentials, health_port=settings.health_port or None,
        )  # fmt: skip
        distinct = DistinctSubjects(core.adapters.subject_tally)
        registry.register(DistinctCollector(distinct.counts, asyncio.get_running_loop(), ttl_s=5.0))
        # Check rates are counted by the decide script, in the call that decides the checks (redis_store.decide).
        gate = CheckGate(
            policy, core.adapters.rate_counter, access,
            fail_closed=settings.rate_limiter_failure == "closed", distinct=distinct, counted_by_store=True,
        )  # fmt: skip
        reads = ReadGate(gate, policy, core.resolver)
        sanction_pb2_grpc.add_SanctionServiceServicer_to_server(
            SanctionServicer(core.checker, core.catalogue, settings.max_batch_items, gate), server.server
        )
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(RegistryServicer(core.registry, reads), server.server)
        decision_servicer = DecisionServicer(core.decisions, core.objections, reads)
        decision_pb2_grpc.add_DecisionServiceServicer_to_server(decision_servicer, server.server)
        watch_pb2_grpc.add_WatchServiceServicer_to_server(
            WatchServicer(core.watch, core.catalogue, settings.max_batch_items), server.server
        )

        async def redis_answers() -> bool:
            try:
                await core.floor.refresh()  # doubles as the periodic refresh of the revision floor
                if core.adapters.replicas_confirm is not None:
                    # Too few replicas confirm writes: every acknowledged write would fail, so not SERVING.
                    await core.adapters.replicas_confirm()
            except StoreUnavailable:
                check_metrics.redis_error("health")
                raise
            return True

        async def catalogue_loaded() -> bool:
            return bool(core.catalogue.measures)

        stop_metrics = serve_metrics(registry, settings.host, settings.metrics_port)
        replaying = asyncio.create_task(keep_replaying(core.spool_replay))  # spooled decisions into the log
        counting = asyncio.create_task(keep_flushing(distinct))  # distinct subjects into Redis, once a second
        judging = asyncio.create_task(keep_judging(core.watch))  # subscribed subjects as they fall due
        try:
            await server.run(Readiness({"redis": redis_answers, "catalogue": catalogue_loaded}), on_ready)
        finally:
            # None ends on its own: cancelled is the only way out. Bounded: one must not hold the exit.
            await stop_tasks([replaying, counting, judging], "background tasks")
            if stop_metrics is not None:
                stop_metrics()
            try:
                async with asyncio.timeout(CLOSE_S):
                    await core.close()
            except TimeoutError:
                log.warning("closing the Redis client took over %.0fs: left to the exit", CLOSE_S)
