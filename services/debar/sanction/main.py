"""Wiring of the sanction service: its adapters (on Redis), core and servicers, built here and nowhere else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from grpc_health.v1 import health_pb2
from prometheus_client import CollectorRegistry

from debar.common import logs
from debar.common.settings import Settings
from debar.local.embedded_redis import EmbeddedRedis
from debar.rpc.callers import identify_callers, principal_proofs
from debar.rpc.metrics import RpcMetrics, serve_metrics
from debar.rpc.request_context import RequestInterceptor
from debar.rpc.server import GrpcServer, Readiness, stop_tasks
from debar.rpc.tls import server_credentials
from debar.sanction.adapters.file_spool import spool_folder
from debar.sanction.adapters.redis_wiring import redis_adapters
from debar.sanction.adapters.witness_client import HttpWitnesses
from debar.sanction.api.access import AccessInterceptor, AccessStats, CheckGate, ReadGate, load_policy
from debar.sanction.api.decision_servicer import DecisionServicer
from debar.sanction.api.metrics import (
    CheckMetrics,
    DistinctCollector,
    ImportCollector,
    LogCollector,
    ObjectionCollector,
    ReplicationCollector,
    StatsCollector,
    WatchCollector,
)
from debar.sanction.api.servicers import RegistryServicer, SanctionServicer
from debar.sanction.api.watch_servicer import WatchServicer
from debar.sanction.app.distinct import DistinctSubjects, keep_flushing
from debar.sanction.app.failopen import keep_replaying
from debar.sanction.app.integrator import IntegratorHealth, IntegratorState
from debar.sanction.app.ports import StoreUnavailable
from debar.sanction.app.watch import keep_judging
from debar.sanction.bootstrap import build_core, build_integrator, subject_resolver, watch_limits
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.sanction.integrator_process import IntegratorProcess
from debar.v1 import decision_pb2_grpc, registry_pb2_grpc, sanction_pb2_grpc, watch_pb2_grpc

SERVICE_NAMES = [
    "debar.v1.SanctionService", "debar.v1.RegistryService", "debar.v1.DecisionService", "debar.v1.WatchService",
]  # fmt: skip

log = logging.getLogger("debar.failopen")
log_health = logging.getLogger("debar.integrator")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
CLOSE_S = 2.0  # at shutdown, the last distinct-subjects flush and closing the Redis client each wait no longer


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


LOG_HEALTH = "debar.log.integrator"  # grpc.health.v1 service names of the log's health (beside readiness)
WITNESS_HEALTH = "debar.log.witnesses"


async def report_log_health(server: GrpcServer, health: IntegratorHealth, interval_s: float = 1.0) -> None:
    """The integrator's health as two grpc.health.v1 services that readiness does not depend on (a log problem
    never stops checks): `debar.log.integrator` NOT_SERVING while it refuses the stored tree or the store does
    not answer, `debar.log.witnesses` NOT_SERVING while the latest checkpoint misses a witness's cosignature.
    Each change is logged with the details (state, sizes, which witness failed and why)."""
    last: dict[str, object] | None = None
    while True:
        details = health.details()
        integrating = health.healthy
        cosigned = not health.witness_failures
        await server.health.set(LOG_HEALTH, SERVING if integrating else NOT_SERVING)
        await server.health.set(WITNESS_HEALTH, SERVING if cosigned else NOT_SERVING)
        summary = {k: v for k, v in details.items() if k not in ("tree_size", "checkpoint_size")}
        if summary != last:
            (log_health.info if integrating and cosigned else log_health.warning)("log health %s", details)
            last = summary
        await asyncio.sleep(interval_s)


async def serve(settings: Settings, on_ready: Callable[[int], None] | None = None) -> None:
    logs.configure("sanction", settings.log_format)
    settings.check_keys()
    credentials = server_credentials(settings)  # refuses an unsafe transport before anything starts
    catalogue = load_default_catalogue()
    # A bad scopes or trust file, or one granting `local` outside local mode, stops the start here.
    policy = load_policy(settings.scopes_file, catalogue, local_mode=settings.transport() == "local")
    identify = identify_callers(settings, "sanction")
    proofs = principal_proofs(settings, "sanction")  # a delegate acting for a person brings the person's token
    signer = settings.log_signer()  # the log's key: missing or unreadable stops the start here, naming the setting
    witness_list = settings.log_witness_list()
    async with contextlib.AsyncExitStack() as stack:
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
        if core.adapters.writes_unreplicated is not None:
            registry.register(ReplicationCollector(core.adapters.writes_unreplicated))
        guard = AccessInterceptor(identify, policy, access, proofs)
        server = GrpcServer(
            settings.host, settings.ports["sanction"], SERVICE_NAMES, settings.grace_s,
            interceptors=[RequestInterceptor(RpcMetrics(registry)), guard],
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
        decision_servicer = DecisionServicer(core.decisions, core.objections, reads, core.log_proofs)
        decision_pb2_grpc.add_DecisionServiceServicer_to_server(decision_servicer, server.server)
        watch_pb2_grpc.add_WatchServiceServicer_to_server(
            WatchServicer(core.watch, core.catalogue, settings.max_batch_items, reads), server.server
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

        witnesses = await stack.enter_async_context(HttpWitnesses(witness_list, settings.log_witness_timeout_s))
        integrator = build_integrator(core.adapters, signer, witnesses)
        registry.register(LogCollector(integrator.health))
        stop_metrics = serve_metrics(registry, settings.host, settings.metrics_port)
        replaying = asyncio.create_task(keep_replaying(core.spool_replay))  # spooled decisions into the log
        tasks = [replaying]
        if settings.log_integrator == "on":  # the Merkle tree, checkpoints, witnesses: in a child process
            child = IntegratorProcess(integrator.health, url)
            tasks.append(asyncio.create_task(child.run()))
        elif settings.log_integrator == "inline":  # in this event loop, as a task beside the servers
            tasks.append(asyncio.create_task(integrator.run()))
        else:  # never takes the lease: entries are still sequenced, proofs served from the stored tree
            integrator.health.state = IntegratorState.OFF
            integrator.health.detail = "DEBAR_LOG_INTEGRATOR=off: another replica must integrate"
        tasks.append(asyncio.create_task(report_log_health(server, integrator.health)))
        tasks.append(asyncio.create_task(keep_flushing(distinct)))  # distinct subjects into Redis, once a second
        tasks.append(asyncio.create_task(keep_judging(core.watch)))  # subscribed subjects as they fall due
        try:
            await server.run(Readiness({"redis": redis_answers, "catalogue": catalogue_loaded}), on_ready)
        finally:
            # None ends on its own: cancelled is the only way out. Bounded: one must not hold the exit.
            await stop_tasks(tasks, "background tasks")
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_S):  # a paused Redis would hold it for the Redis timeout
                    await distinct.flush()  # the last second's subjects
            if stop_metrics is not None:
                stop_metrics()
            try:
                async with asyncio.timeout(CLOSE_S):
                    await core.close()
            except TimeoutError:
                log.warning("closing the Redis client took over %.0fs: left to the exit", CLOSE_S)
