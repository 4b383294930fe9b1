"""Wires the sanction core's use cases (checker, registry, decision reader, objections, spool replay) from the
ports it is given: Redis and files in the server and the CLI (adapters/redis_wiring.py), memory in unit tests.
It knows no adapter."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from debar.common.identifiers import Placement, Pseudonymiser, parse_keys
from debar.common.settings import Settings
from debar.sanction.app.checker import Checker, CheckObserver, RevisionFloor
from debar.sanction.app.coalescer import CoalescingDecider
from debar.sanction.app.decision_reader import DecisionReader
from debar.sanction.app.failopen import FailOpen, SpoolReplay, SpoolStats
from debar.sanction.app.integrator import Integrator
from debar.sanction.app.log_proofs import LogProofs
from debar.sanction.app.objections import Objections
from debar.sanction.app.ports import Adapters, Witnesses
from debar.sanction.app.registry import Registry
from debar.sanction.app.watch import Watch, WatchLimits
from debar.sanction.domain.catalogue import Catalogue
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.subjects import SubjectResolver
from debar.tlog.note import Signer


@dataclass
class Core:
    catalogue: Catalogue
    resolver: SubjectResolver
    floor: RevisionFloor
    checker: Checker
    registry: Registry
    decisions: DecisionReader
    objections: Objections
    spool_replay: SpoolReplay
    log_proofs: LogProofs  # checkpoints, receipts, consistency proofs (the integrator builds the tree they read)
    adapters: Adapters  # the ports themselves, for what works on them directly (rate gate, `debar log`, rekey)
    watch: Watch | None = None  # subscriptions, when the adapters have a watch store

    async def close(self) -> None:
        await self.adapters.close()


def subject_resolver(settings: Settings) -> SubjectResolver:
    pseudonymiser = Pseudonymiser(parse_keys(settings.pseudonym_keys), settings.pseudonym_staged)
    return SubjectResolver(pseudonymiser, Placement(settings.bucket_key.encode()))


def watch_limits(settings: Settings) -> WatchLimits:
    return WatchLimits(
        quota=settings.watch_max_subscriptions, retention_days=settings.watch_retention_days,
        heartbeat_s=settings.watch_heartbeat_s, poll_s=settings.watch_poll_s,
        max_ahead_days=settings.dates_ahead_days,
    )  # fmt: skip


def build_core(
    adapters: Adapters,
    catalogue: Catalogue,
    resolver: SubjectResolver,
    observer: CheckObserver | None = None,
    clock: Callable[[], float] = time.time,
    watch_limits: WatchLimits | None = None,
) -> Core:
    """`observer`: told of every decision (the server's metrics). `clock`: every use case's now. `watch_limits`:
    with the adapters' watch store, subscriptions are wired, and every registry write tells them what it touched."""
    store = adapters.store
    floor = RevisionFloor(store)
    watch = None
    if adapters.watch_store is not None and watch_limits is not None:
        watch = Watch(adapters.watch_store, store, store, catalogue, resolver, floor, watch_limits, clock=clock)
    registry = Registry(store, catalogue, resolver, floor, clock=clock, watch=watch.hook if watch else None)
    ids = DecisionIds.for_placement(resolver.placement)  # decision ids that reveal nothing, keyed by the bucket key
    decisions = DecisionReader(adapters.decision_log, store, resolver, ids)
    spool_stats = SpoolStats()
    checker = Checker(
        store,
        catalogue,
        resolver,
        floor,
        clock=clock,
        decider=CoalescingDecider(store, catalogue.version),
        fail_open=FailOpen(adapters.spool, spool_stats, ids, clock=clock),
        observer=observer,
        ids=ids,
    )
    return Core(
        catalogue=catalogue,
        resolver=resolver,
        floor=floor,
        checker=checker,
        registry=registry,
        decisions=decisions,
        objections=Objections(adapters.objection_store, decisions, registry, catalogue, clock=clock),
        spool_replay=SpoolReplay(adapters.spool, store, spool_stats, catalogue.version),
        log_proofs=LogProofs(adapters.sequenced_log, adapters.tree),
        adapters=adapters,
        watch=watch,
    )


def build_integrator(adapters: Adapters, signer: Signer, witnesses: Witnesses, owner: str | None = None) -> Integrator:
    """The log integrator over the core's ports: run it as a task (Integrator.run), beside the servers or in a
    process of its own (integrator_process.py). `owner`: its name in the lease, default host/pid/random."""
    return Integrator(adapters.sequenced_log, adapters.tree, adapters.checkpoints, signer, witnesses, owner=owner)
